/*
 * Private to the link layer (core/sw_link*.c): the link's state, shared
 * by its three parts --
 *
 *   sw_link.c        the state machine: connections, hello, acks, input
 *                    and output, timers, the life cycle
 *   sw_link_queue.c  the outbound queue (bounds, folding, expiry, paging
 *                    from storage) and the storage batch of a loop turn
 *   sw_link_conf.c   peer options, the preset dictionary, TLS set-up
 */
#ifndef SW_LINK_INT_H
#define SW_LINK_INT_H

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

#define SW_LINK_TICK_MS        1000
#define SW_LINK_SIMUL_MS       5000    /* opens closer than this are
                                          simultaneous; later ones replace */
#define SW_LINK_FALLBACK_SLOW  10      /* an idle end that leaves opening
                                          to a peer seen opening tries
                                          again this many times
                                          peer_reconnect_max later */
#define SW_LINK_HOLDOFF_MS     1000    /* an idle end whose connections
                                           lose simultaneous opens waits
                                           this much beyond the head
                                           start (peer_head_start) */
#define SW_LINK_RTT_WINDOW_MS  300000  /* the path RTT is the least sample
                                          of the last one or two windows */

/*
 * Memory.  A queue may hold peer_queue_max_bytes (32 MB) for a peer that
 * is away for days; only its head stays in memory (peer_queue_memory),
 * the rest is read back from storage a page at a time when it is sent,
 * and what was read is freed once written.  Output goes to the
 * connection a chunk at a time while less than a window waits for the
 * kernel; the rest follows when that drains.
 */
#define SW_LINK_PAGE_BYTES     (256 * 1024)
#define SW_LINK_OUT_CHUNK      (64 * 1024)
#define SW_LINK_OUT_WINDOW     (256 * 1024)

/*
 * Sequence numbers.  Each run starts numbering at least at the clock's
 * base (ms since 2020 x 1024), so a database restored from a backup, or
 * recreated, never numbers new stanzas with numbers the peer has already
 * delivered: a run would have to number more than 1024 stanzas a
 * millisecond to overtake the next run's base.  Numbers a peer sends are
 * bounded by SW_LINK_SEQ_MAX, far above any base, far below overflow.
 */
#define SW_LINK_SEQ_EPOCH      1577836800LL     /* 2020-01-01T00:00:00Z */
#define SW_LINK_SEQ_PER_MS     1024
#define SW_LINK_SEQ_MAX        (1ULL << 62)

typedef struct sw_link_item_mem_s {
    uint64_t          seq;
    int64_t           expires;
    double            sent_at;      /* loop time of the last write */
    bool              resent;       /* written more than once: its ack
                                       is no round-trip sample (Karn) */
    int64_t           queued;       /* unix seconds when queued */
    char             *xml;          /* NULL: in storage only (paged out) */
    size_t            len;
    sw_stanza_kind_e  kind;
    bool              evict;        /* past the memory budget: xml is
                                       freed once durable, or written */
    uint64_t          batch;        /* sw_link_batch_gen when pushed */
    char             *sender;       /* bare JID (or domain): byte bounds */
    char             *addr;         /* "from\0to" as routed (full JIDs;
                                       "" when absent): filters see them
                                       without parsing (sw_link_queued_t) */
    bool              state;        /* presence state (sw_link_is_state) */
} sw_link_qitem_t;

typedef struct sw_transport_reg_s sw_transport_reg_t;

typedef struct {                        /* a sorted set of numbers */
    uint64_t *v;
    size_t    n, cap;
} sw_link_seqs_t;

struct sw_transport_reg_s {
    sw_transport_reg_t   *next;
    sw_transport_t        t;            /* a copy */
    sw_block_transport_t  bt;           /* a block transport: t runs the
                                           adapter of sw_link_block.c */
    bool                  block;
    bool                  started;
};

typedef struct sw_link_block_s sw_link_block_t;

typedef struct {                        /* plain XEP-0361: a batch ends */
    uint64_t end;                       /* ... at this wire offset */
    uint64_t seq;                       /* ... with this stanza */
} sw_link_mark_t;

struct sw_link_s {
    sw_link_t        *next;
    char             *name;
    sw_peer_conf_t    conf;
    const sw_transport_t *tp;
    sw_link_block_t  *block;            /* a block transport's state */
    sw_tls_ctx_t     *tls;
    char             *dict;             /* preset dictionary */
    size_t            dict_len;

    sw_conn_t        *conn;
    sw_xmlstream_t   *xs;
    sw_conn_t        *drain;            /* the loser of a simultaneous
                                           open: read, never written */
    sw_xmlstream_t   *drain_xs;
    uint64_t          drain_next;       /* its in_next */
    uint64_t          drain_since;
    bool              drain_proven;     /* it was live, or sent a hello */
    uint64_t          drain_written;    /* our stanzas up to this went on
                                         * it: held from the live one
                                         * (sw_link_held_back); 0: none */
    uint64_t          drain_hold_until; /* ... until then at the latest */
    bool              ack_soon;         /* a stanza came on the drained
                                         * connection: ack it at once */
    sw_conn_t        *pend;             /* a new connection they opened,
                                           not proven yet (see attach) */
    sw_xmlstream_t   *pend_xs;
    uint64_t          pend_since;
    uint64_t          pend_first;       /* seq our hello gave it */
    uint64_t          pend_ack;         /* ack our hello gave it */
    bool              pend_judge;       /* a simultaneous open or a
                                           reconnect: its hello says */
    bool              pend_drained;     /* judged the former while its
                                           data was being parsed */
    bool              we_opened;
    bool              connecting;
    bool              holdoff;          /* the retry timer is a hold-off */
    bool              passive;          /* the retry timer is an idle
                                           end's fallback: it leaves
                                           opening to the peer */
    bool              peer_opens;       /* it opened one to us since
                                           we started */
    double            probe_gap;        /* s between refused probes */
    uint64_t          probe_at;         /* loop ms: no probe before */
    uint64_t          probe_said;       /* loop ms: last probe logged */
    bool              dirty;            /* output waits for the batch */

    sw_link_qitem_t  *q;                /* unacknowledged, ascending seq */
    size_t            q_head, q_n, q_cap;
    size_t            q_kind[SW_STANZA_OTHER + 1];  /* q_n by kind */
    size_t            q_bytes;          /* XML bytes of the queue */
    size_t            q_mem;            /* ... of them in memory */
    sw_link_seqs_t    q_evict;          /* to page out at commit */
    sw_log_rl_t       rl_full;
    sw_hash_t        *q_sender_bytes;   /* sender -> size_t * */
    uint64_t          next_out;         /* seq of the next new stanza */
    uint64_t          run_base;         /* next_out when this run began */
    uint64_t          sent_max;         /* highest seq ever written (or
                                           loaded: may have been written) */
    uint64_t          written;          /* last seq written on this conn */
    uint64_t          in_next;          /* seq of the next inbound stanza */
    uint64_t          in_delivered;     /* last inbound seq delivered */
    uint64_t          in_durable;       /* ... and committed: what we ack */
    uint64_t          in_acked;         /* last h we sent */
    uint64_t          in_durable_at;    /* loop ms in_durable last grew */
    uv_timer_t        ack_timer;        /* a delayed ack is due */
    sw_link_seqs_t    live;             /* inbound above in_durable: */
    sw_link_seqs_t    held;             /* messages that reached a client,
                                           and the rest (sw_link_deliver) */

    uv_timer_t        retry;            /* reconnect backoff */
    uv_timer_t        probe_timer;      /* the next probe is due */
    double            backoff;
    uint64_t          last_rx;          /* loop ms of the last bytes in */
    uint64_t          last_tx;
    uint64_t          conn_since;       /* loop ms the connection came */

    sw_chain_t       *out_chain;        /* "outbound" */
    sw_chain_t       *in_chain;         /* "inbound" */
    bool              up;               /* link/up fired, link/down not */

    /* peer_protocol = "xep0361": no numbers, no acks (doc/peer-links.md) */
    sw_conn_t        *in_conn;          /* the peer's own connection while
                                           we send on ours */
    sw_xmlstream_t   *in_xs;
    sw_conn_t        *rx_conn;          /* the one being parsed */
    sw_link_mark_t   *marks;            /* written, not confirmed by TCP */
    size_t            marks_n, marks_cap;
    bool              peer_closed;      /* it ended the stream */

    sw_link_stats_t   st;
    bool              ever_up;
    bool              first_conn;       /* conn is the first since start */
    double            rtt_min;          /* least ack RTT: the path's own */
    double            rtt_min_next;     /* ... of the current window */
    double            rtt_saved;        /* rtt_min as last stored */
    uint64_t          rtt_window;       /* loop ms the window started */
};

/* The path round trip kept across restarts (generic key-value store). */
#define SW_LINK_STORE_RTT      "link_rtt"

/* Defined in sw_link.c. */
extern sw_link_t *sw_links;
extern sw_transport_reg_t *sw_transports;
extern sw_hash_t *sw_link_domains;
extern uv_check_t sw_link_batch;
extern uv_timer_t sw_link_tick;
extern bool sw_link_running;
extern bool sw_link_in_tx;
extern uint64_t sw_link_batch_gen;
extern sw_log_rl_t sw_link_rl_store;
extern sw_stanza_t **sw_link_held;
extern size_t sw_link_held_n, sw_link_held_cap;
extern sw_owner_t sw_link_owner;
extern sw_link_t *sw_link_routing;
extern bool sw_link_routing_live;
extern bool sw_link_routing_unstored;
extern char sw_link_local[256];
extern sw_hook_t *sw_link_ev_up;
extern sw_hook_t *sw_link_ev_down;
extern sw_hook_t *sw_link_ev_gap;

static inline bool
sw_link_plain(const sw_link_t *l)
{
    return l->conf.protocol == SW_LINK_PROTOCOL_XEP0361;
}

/* sw_link_zdict.c: the default zstd dictionary (tools/train-link-dict) */
extern const unsigned char sw_link_zdict[];
extern const size_t sw_link_zdict_len;
extern const unsigned sw_link_zdict_id;

sw_storage_t *sw_link_store(void);
const sw_transport_t *sw_transport_find(const char *name);
sw_transport_reg_t *sw_transport_add(const char *name);
void sw_transports_start_all(int *rc);
void sw_transports_stop_all(void);
bool sw_link_is_state(const sw_stanza_t *st);
/* sw_link_fold.c: the built-in presence folding filter on l's chain */
void sw_link_fold_install(sw_link_t *l);
/* sw_link_block.c */
extern const sw_transport_t sw_link_block_adapter;
void sw_link_block_free(sw_link_t *l);
/* c is a connection over blocks on which the peer's blocks arrived. */
bool sw_link_block_heard(const sw_conn_t *c);
bool sw_link_seqs_has(const sw_link_seqs_t *q, uint64_t seq);
void sw_link_seqs_remove(sw_link_seqs_t *q, uint64_t seq);
void sw_link_seqs_add(sw_link_seqs_t *q, uint64_t seq);
sw_link_qitem_t *sw_link_q_at(sw_link_t *l, size_t i);
void sw_link_q_unload(sw_link_t *l, sw_link_qitem_t *it);
size_t sw_link_q_find_above(sw_link_t *l, uint64_t seq);
int sw_link_q_page_in(sw_link_t *l, size_t i, size_t bytes);
void sw_link_q_remove(sw_link_t *l, size_t i);
void sw_link_batch_begin(void);
int sw_link_route(void *data, void *ud);
void sw_link_live_advance(sw_link_t *l);
void sw_link_on_batch(uv_check_t *h);
void sw_link_drop(sw_link_t *l, const char *why, bool reset);
void sw_link_connect(sw_link_t *l);
void sw_link_expire(sw_link_t *l, int64_t now);
int sw_link_load(sw_link_t *l);
int sw_link_tls_setup(sw_link_t *l);

#endif
