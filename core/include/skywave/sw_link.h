/*
 * Peer links (XEP-0361 zero-handshake server-to-server).
 *
 * A Peer section of the config is an a-priori agreement with another
 * server: the domains it speaks for, how to reach it, who may open the
 * connection.  The link layer (core) does everything transports share:
 * a durable outbound queue with sequence numbers, acknowledgements that
 * survive reconnects and restarts, DEFLATE, batching, counters.  A
 * transport (mod_link_tcp, later STANAG 5066) only opens connections and
 * identifies the peer, then hands the connection to sw_link_attach().
 *
 * On the wire (doc/peer-links.md): no stream header, features or SASL;
 * each side's first element is
 *   <link xmlns='urn:skywave:link:0' seq='N' ack='H'/>
 * ("my next stanza is number N; I delivered yours up to H"), followed at
 * once by stanzas, numbered implicitly N, N+1, ...  Acks are
 * <a xmlns='urn:skywave:link:0' h='H'/>.  Nothing waits for the peer.
 */
#ifndef SKYWAVE_SW_LINK_H
#define SKYWAVE_SW_LINK_H

#include <skywave/sw_core.h>
#include <skywave/sw_config.h>
#include <skywave/sw_conn.h>
#include <skywave/sw_stanza.h>

#define SW_NS_LINK "urn:skywave:link:0"

typedef struct sw_link_s sw_link_t;

typedef enum sw_link_initiate_e {
    SW_LINK_INITIATE_BOTH = 0,
    SW_LINK_INITIATE_US,
    SW_LINK_INITIATE_THEM,
} sw_link_initiate_e;

/* How a link compresses (peer_codec; both ends the same). */
typedef enum sw_link_codec_e {
    SW_LINK_CODEC_DEFLATE = 0,
    SW_LINK_CODEC_ZSTD,
} sw_link_codec_e;

/* What runs over the connection (doc/peer-links.md). */
typedef enum sw_link_protocol_e {
    SW_LINK_PROTOCOL_SKYWAVE = 0,   /* numbered stanzas, hello, acks */
    SW_LINK_PROTOCOL_XEP0361,       /* plain XEP-0361: stanzas only */
} sw_link_protocol_e;

/* The agreement: the core's options of a Peer section. */
typedef struct sw_peer_conf_s {
    const char *const *domains;         /* the peer speaks for these */
    const char        *transport;       /* a transport's name: "tcp" */
    int                initiate;        /* sw_link_initiate_e */
    bool               compression;
    int64_t            compression_level;
    const char        *dictionary;      /* "default", "none" or a file */
    int64_t            queue_max;       /* stanzas of all kinds */
    double             expire_message;  /* seconds in the queue */
    double             expire_presence;
    double             expire_iq;
    double             keepalive;
    double             reconnect_min;
    double             reconnect_max;
    double             ack_timeout;     /* unacked this long: probe */
    bool               tls;             /* TLS from the first byte */
    const char        *tls_certificate; /* ours (unset: self-signed) */
    const char        *tls_key;
    const char        *tls_pin;         /* the peer's SHA-256 */
    const char        *tls_ca;          /* or: CAs for the peer's domain */
    /* bounds per kind (added last: earlier fields keep their offsets) */
    int64_t            queue_max_message;
    int64_t            queue_max_presence;
    int64_t            queue_max_iq;
    size_t             queue_max_bytes;         /* XML bytes, in all */
    size_t             queue_max_sender_bytes;  /* ... from one sender */
    size_t             queue_memory;            /* ... kept in memory */
    int                fold_presence;   /* sw_link_fold_e */
    int                protocol;        /* sw_link_protocol_e */
    double             ack_delay;       /* longest an ack waits, s */
    int                codec;           /* sw_link_codec_e */
    double             probe_interval;  /* s between attempts; 0: auto */
    double             head_start;      /* an idle end waits, s */
} sw_peer_conf_t;

typedef enum sw_link_fold_e {
    SW_LINK_FOLD_FULL = 0,      /* when the queue is full (default) */
    SW_LINK_FOLD_ALWAYS,        /* whenever a newer one comes */
    SW_LINK_FOLD_NEVER,
} sw_link_fold_e;

/*
 * A byte transport (doc/transport-api.md): it opens connections to the
 * peer and identifies the connections the peer opens, then hands each to
 * sw_link_attach(); the link layer runs TLS, DEFLATE and the link
 * protocol over it.  A connection wraps a TCP socket (sw_conn_new) or any
 * byte stream (sw_conn_new_io).  The struct is copied at registration;
 * data is passed back to every call.
 */
typedef struct sw_transport_s {
    const char *name;                   /* peer_transport = "name" */
    void       *data;                   /* the transport's own state */
    /* Optional: the links are configured and every module started:
     * listen.  SW_OK, or SW_ERROR (logged: the server does not start). */
    int   (*start)(void *data);
    /* Optional: the server is stopping, before any module stops: stop
     * listening and cancel attempts in flight. */
    void  (*stop)(void *data);
    /* Starts connecting to the link's peer (asynchronous): later the
     * transport calls sw_link_attach() or sw_link_connect_failed().
     * SW_ERROR: not even started (the link retries later). */
    int   (*connect)(void *data, sw_link_t *link);
    /*
     * Optional liveness: whether the transport finds the path to the
     * peer dead although conn is open (TCP: a retransmission timeout
     * since the last acknowledgement).  1 dead, 0 alive, -1 unknown.
     * When an ack is overdue and this is not 0, the link opens a fresh
     * connection to probe; on a slow link that still delivers, probes
     * would only take its capacity.
     */
    int   (*stalled)(void *data, sw_link_t *link, sw_conn_t *conn);
    /*
     * Optional: the peer's own new connection is live, so the attempts
     * in flight to it (a probe, kept unanswered ones) are not needed:
     * close them.  Without it they complete and the link switches to
     * the one the simultaneous-open rule keeps, the queue sent on both.
     */
    void  (*cancel)(void *data, sw_link_t *link);
    /*
     * Optional: the path's round trip in seconds as the transport has
     * measured it on conn (TCP: the kernel's min_rtt), 0 when it has
     * none.  Asked once a second; the link takes it when it is longer
     * than its own from acks: an end that only receives has none, and
     * without it would ack as if the path were fast (on half-duplex
     * HF, an ack a second, each costing turnarounds), and a stored one
     * may come from another bearer.
     */
    double (*path_rtt)(void *data, sw_link_t *link, sw_conn_t *conn);
} sw_transport_t;

/* A transport module registers itself at load (the struct is copied).
 * SW_ERROR when the name is taken. */
int sw_transport_register(sw_owner_t *owner, const sw_transport_t *t);

/*
 * Block transports carry bounded blocks with a per-block outcome, not a
 * byte stream (STANAG 5066: U_PDUs up to an MTU, each confirmed,
 * rejected or expired by the node).  The link layer runs a connection
 * over them (core/sw_link_block.c, doc/transport-api.md): what it writes
 * in one loop turn, a batch of stanzas compressed with DEFLATE, goes out
 * as one block when it fits the MTU, else as several.  Every block of a
 * connection must arrive, in order: a block reported rejected or
 * expired, or one missing at the far end, ends that connection, and the
 * next one starts DEFLATE afresh (the preset dictionary) and sends again
 * every stanza not acknowledged.  So the DEFLATE stream is never decoded
 * past a lost block, and every stanza arrives once, in order.
 */
typedef enum sw_block_result_e {
    SW_BLOCK_DELIVERED = 0,     /* the far end confirmed it */
    SW_BLOCK_REJECTED,          /* refused (by the node or the peer) */
    SW_BLOCK_EXPIRED,           /* not confirmed in time: lost */
} sw_block_result_e;

typedef struct sw_block_transport_s {
    const char *name;                   /* peer_transport = "name" */
    void       *data;                   /* the transport's own state */
    int     (*start)(void *data);       /* optional, as sw_transport_t */
    void    (*stop)(void *data);        /* optional */
    /* The largest block it carries to the link's peer (>= 64 bytes). */
    size_t  (*mtu)(void *data, sw_link_t *link);
    /*
     * Sends one block (len <= mtu; borrowed for the call) to the link's
     * peer; id names it.  SW_OK: taken, and sw_block_result() follows
     * for it exactly once, later (never from inside this call).
     * SW_AGAIN: busy (flow control), nothing taken: call sw_block_ready()
     * when it can take more.  SW_ERROR: cannot; the connection ends.
     */
    int     (*send)(void *data, sw_link_t *link, uint64_t id,
                    const void *block, size_t len);
} sw_block_transport_t;

int sw_block_transport_register(sw_owner_t *owner,
                                const sw_block_transport_t *t);
/* A block from the link's peer (borrowed for the call). */
void sw_block_received(sw_link_t *l, const void *block, size_t len);
/* The outcome of block id. */
void sw_block_result(sw_link_t *l, uint64_t id, sw_block_result_e result);
/* A busy transport can take blocks again. */
void sw_block_ready(sw_link_t *l);

const char *sw_link_name(const sw_link_t *l);
const sw_peer_conf_t *sw_link_conf(const sw_link_t *l);
sw_link_t *sw_link_find(const char *peer);
void sw_link_each(void (*fn)(sw_link_t *l, void *ud), void *ud);

/*
 * Events (data is sw_link_event_t *), declared when the links are
 * configured (before modules start):
 *   "link/up"    the peer's connection is live (with TLS: once the
 *                peer's certificate was verified)
 *   "link/down"  the live connection closed; reason says why
 */
typedef struct sw_link_event_s {
    sw_link_t  *link;
    const char *peer;           /* the Peer section's name */
    const char *reason;         /* link/down: for logs; link/up: NULL */
} sw_link_event_t;

bool sw_link_is_up(const sw_link_t *l);

/*
 * The link's own filter chains (sw_filter.h), with the link as ctx:
 *   "outbound"  a stanza for the peer, before it is queued
 *   "inbound"   a stanza from the peer, before it is routed (after the
 *               duplicate check: it runs once per stanza)
 * A module adds its filters in start() (sw_link_each); they are removed
 * with the module's owner.  NULL for any other name.
 */
typedef struct sw_chain_s sw_chain_t;
sw_chain_t *sw_link_chain(sw_link_t *l, const char *name);

/*
 * The queue, for filters on the outbound chain (folding, policies): what
 * waits for the peer, without parsing it again.  Only stanzas not yet
 * written are shown: one on the wire may be delivered already.
 */
typedef struct sw_link_queued_s {
    uint64_t          seq;
    sw_stanza_kind_e  kind;
    bool              state;    /* presence without a type, or unavailable */
    const char       *from;     /* full JIDs as routed; NULL: none */
    const char       *to;
    size_t            len;      /* XML bytes */
} sw_link_queued_t;

/* Calls fn for each stanza not yet written, oldest first, until fn
 * returns false (q is valid during the call only). */
void sw_link_queue_each(sw_link_t *l,
                        bool (*fn)(const sw_link_queued_t *q, void *ud),
                        void *ud);
/* Takes a stanza not yet written out of the queue (superseded), in the
 * turn's storage batch.  SW_OK; SW_DECLINED when written or not there. */
int sw_link_queue_remove(sw_link_t *l, uint64_t seq);
/* Whether st, len bytes of XML, would pass a bound of the queue now. */
bool sw_link_queue_full(sw_link_t *l, const sw_stanza_t *st, size_t len);

/*
 * A transport has a connection to the peer and has identified it: the
 * link takes the connection (its callbacks are replaced).  we_opened:
 * this server initiated it.  Returns SW_OK, or SW_DECLINED when the link
 * keeps the connection it has (simultaneous open, see doc) and reads this
 * one to its end, or closed it.
 */
int sw_link_attach(sw_link_t *l, sw_conn_t *conn, bool we_opened);
/* A connection attempt failed (refused, unreachable): the peer's host
 * answered, so the link is live and the next attempt waits a backoff. */
void sw_link_connect_failed(sw_link_t *l, const char *reason);
/*
 * An attempt got no answer by its deadline (sw_link_connect_deadline):
 * the path is down.  The transport keeps the attempt open (its SYN may
 * be on the way, or its answer), and the link starts the next one at
 * once, without backoff: on a dead link a SYN costs nothing, and the
 * attempt in flight when the link returns decides how soon it is used.
 */
void sw_link_connect_unanswered(sw_link_t *l);
/*
 * Whether an attempt unanswered at its deadline is worth keeping: not at
 * an end with nothing to send and no connection, on a link both ends may
 * open (the peer opens when it has something; this end's SYNs would only
 * crowd the link when it returns).  The transport closes such an attempt
 * before it calls sw_link_connect_unanswered, which then starts none.
 */
bool sw_link_keep_unanswered(const sw_link_t *l);
/*
 * Instead of an attempt, when sw_link_keep_unanswered() is false: the
 * peer's own connection is on its way (TCP: half open at our listener),
 * so this idle end leaves the opening to it, as after an unanswered
 * attempt.  The transport's connect() calls it and returns SW_OK.
 */
void sw_link_peer_opening(sw_link_t *l);
/*
 * The transport learned that the path to the peer may be back (an
 * interface came up, a route appeared: netlink for TCP, a radio's link
 * state).  A link without a connection connects at once, whatever its
 * backoff; one with unacknowledged stanzas probes at once with a new
 * connection beside the old, which may have died with the path.  The
 * transport closes its attempts in flight first (made into the dead
 * path, their retransmissions would only crowd the returning link).
 */
void sw_link_path_up(sw_link_t *l);
/*
 * How long a transport should let one connect attempt run before the
 * next starts beside it, once the link has a measured RTT: the Peer's
 * peer_probe_interval when set (at least half the RTT), else three
 * round trips (at least 2 s), so probes after an outage put a fresh SYN
 * on the link every few seconds instead of following TCP's SYN back-off;
 * 0 when nothing is measured yet (the transport's own default applies).
 */
double sw_link_connect_deadline(const sw_link_t *l);
/* The least round trip measured on the link's path, in seconds; 0 when
 * none is known. */
double sw_link_path_rtt(const sw_link_t *l);
/* Whether the link's connection is one of ours that has heard nothing
 * yet (with TCP Fast Open it is attached before its SYN is answered). */
bool sw_link_unconfirmed(const sw_link_t *l);
/*
 * Whether a new connection attached at once (Fast Open) may replace the
 * current one: not when that is unconfirmed and probes come faster than
 * its answer could (peer_probe_interval under two round trips: each
 * would close the one before it unanswered).  The transport then makes
 * an ordinary attempt, attached only when it completes.
 */
bool sw_link_may_replace(const sw_link_t *l);

typedef struct sw_link_stats_s {
    bool     up;
    uint64_t stanzas_out;       /* written, retransmissions included */
    uint64_t stanzas_in;        /* delivered */
    uint64_t duplicates_in;     /* received again after a reconnect */
    uint64_t bytes_out;         /* XML before compression */
    uint64_t bytes_in;
    uint64_t wire_out;          /* at the socket */
    uint64_t wire_in;
    uint64_t reconnects;        /* connections after the first */
    uint64_t protocol_errors;   /* connections closed for bad link data */
    uint64_t queued;            /* unacknowledged */
    double   rtt;               /* seconds, from acks (smoothed); 0 unknown */
    uint64_t folded;            /* presence taken out for a newer one */
} sw_link_stats_t;

void sw_link_stats(const sw_link_t *l, sw_link_stats_t *out);

/* The built-in preset dictionary (peer_dictionary = "default"). */
extern const char   sw_link_default_dict[];
extern const size_t sw_link_default_dict_len;
extern const char   sw_link_default_dict_name[];

/*
 * Commits the link layer's open storage batch now.  Stanzas for peers are
 * committed once per loop turn; anyone about to promise that stanzas are
 * safe (a XEP-0198 <a/> to a client) calls this first.  SW_OK: everything
 * of the batch is on stable storage.  SW_ERROR: none of it is (logged);
 * whatever it held was bounced to its senders or will be sent again by
 * the peers it came from, so it is still correct to count those stanzas
 * as handled.
 */
int sw_link_commit(void);
/*
 * Binds st (a reference is taken) to the open storage batch: a module
 * that wrote it to storage inside the batch (an offline message) has it
 * bounced with resource-constraint if the batch fails to commit.  No-op
 * outside a batch (the write was committed on its own).
 */
void sw_link_batch_hold(sw_stanza_t *st);
/*
 * The next storage write reports its own outcome (a roster change a
 * client is answered about): the open batch is committed first, so the
 * write runs in a transaction of its own and an answer never promises
 * what a failed batch rolled back.  While a peer's stanza is routed the
 * batch covers the write (a failed batch makes the peer send it again):
 * nothing is done then.
 */
void sw_link_batch_end(void);


#endif
