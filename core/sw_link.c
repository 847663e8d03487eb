/*
 * The peer link layer (see sw_link.h and doc/peer-links.md).
 *
 * Durability: a stanza for a peer is numbered and written to storage
 * before it is written to the connection; storage writes of one loop turn
 * share one transaction, committed in a check handle, and only then is
 * the batch written and flushed (one DEFLATE sync flush per batch).  The
 * receiver persists the last sequence number it delivered, so after a
 * reconnect or a restart of either side everything unacknowledged is sent
 * again at once and the receiver drops what it already had.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

#include "sw_core_int.h"
#include "sw_link_wire.h"

#define SW_LINK_TICK_MS        1000
#define SW_LINK_SIMUL_MS       5000    /* opens closer than this are
                                          simultaneous; later ones replace */
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
    char             *xml;          /* NULL: in storage only (paged out) */
    size_t            len;
    sw_stanza_kind_e  kind;
    bool              evict;        /* past the memory budget: xml is
                                       freed once durable, or written */
    uint64_t          batch;        /* sw_link_batch_gen when pushed */
    char             *sender;       /* bare JID (or domain): byte bounds */
    char             *fold;         /* presence state: "from\0to" (full
                                       JIDs), for folding; else NULL */
} sw_link_qitem_t;

typedef struct sw_transport_reg_s sw_transport_reg_t;

typedef struct {                        /* a sorted set of numbers */
    uint64_t *v;
    size_t    n, cap;
} sw_link_seqs_t;

struct sw_transport_reg_s {
    sw_transport_reg_t   *next;
    const sw_transport_t *t;
};

struct sw_link_s {
    sw_link_t        *next;
    char             *name;
    sw_peer_conf_t    conf;
    const sw_transport_t *tp;
    sw_tls_ctx_t     *tls;
    char             *dict;             /* preset dictionary */
    size_t            dict_len;

    sw_conn_t        *conn;
    sw_xmlstream_t   *xs;
    sw_conn_t        *pend;             /* a new connection they opened,
                                           not proven yet (see attach) */
    sw_xmlstream_t   *pend_xs;
    uint64_t          pend_since;
    uint64_t          pend_first;       /* seq our hello gave it */
    uint64_t          pend_ack;         /* ack our hello gave it */
    bool              we_opened;
    bool              connecting;
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
    sw_link_seqs_t    live;             /* inbound above in_durable: */
    sw_link_seqs_t    held;             /* messages that reached a client,
                                           and the rest (sw_link_deliver) */

    uv_timer_t        retry;            /* reconnect backoff */
    double            backoff;
    uint64_t          last_rx;          /* loop ms of the last bytes in */
    uint64_t          last_tx;
    uint64_t          conn_since;       /* loop ms the connection came */

    sw_link_stats_t   st;
    bool              ever_up;
    double            rtt_min;          /* least ack RTT: the path's own */
    double            rtt_min_next;     /* ... of the current window */
    uint64_t          rtt_window;       /* loop ms the window started */
};

static sw_link_t          *sw_links;
static sw_transport_reg_t *sw_transports;
static sw_hash_t          *sw_link_domains;     /* domain -> link */
static uv_check_t          sw_link_batch;
static uv_timer_t          sw_link_tick;
static bool                sw_link_running;
static bool                sw_link_in_tx;       /* storage batch open */
static uint64_t            sw_link_batch_gen = 1;  /* + 1 per commit */
static sw_log_rl_t         sw_link_rl_store;
static sw_stanza_t       **sw_link_held;        /* durable with the batch */
static size_t              sw_link_held_n, sw_link_held_cap;
static sw_owner_t          sw_link_owner;
static sw_link_t          *sw_link_routing;     /* its inbound stanza is */
static bool                sw_link_routing_live;  /* ... being routed, and
                                                     reached a session */
static char                sw_link_local[256];  /* our first VirtualHost */

static void sw_link_on_batch(uv_check_t *h);
static void sw_link_drop(sw_link_t *l, const char *why);
static void sw_link_promote(sw_link_t *l);
static void sw_link_protocol_error(sw_link_t *l, const char *fmt, ...)
    SW_PRINTF(2, 3);

static const char *const sw_link_initiate_names[] = {
    "both", "us", "them", NULL
};

#define SW_PEER_OPT(n, t, f, fl, lo, hi, d, ch, h) \
    { n, t, offsetof(sw_peer_conf_t, f), SW_SCOPE_PEER, fl, lo, hi, d, ch, h }

const sw_option_t sw_peer_options[] = {
    SW_PEER_OPT("peer_domains", SW_OPT_STRLIST, domains, SW_OPT_REQUIRED,
                0, 0, NULL, NULL, "domains the peer speaks for (its server, "
                "its MUC service...): all share this link"),
    SW_PEER_OPT("peer_transport", SW_OPT_STRING, transport, 0, 0, 0, "tcp",
                NULL, "transport module that carries the link"),
    SW_PEER_OPT("peer_initiate", SW_OPT_ENUM, initiate, 0, 0, 0, "both",
                sw_link_initiate_names, "who opens the connection"),
    SW_PEER_OPT("peer_compression", SW_OPT_BOOL, compression, 0, 0, 0,
                "true", NULL, "DEFLATE both ways (both ends must agree)"),
    SW_PEER_OPT("peer_compression_level", SW_OPT_INT, compression_level, 0,
                1, 9, "9", NULL, "zlib level"),
    SW_PEER_OPT("peer_dictionary", SW_OPT_STRING, dictionary, 0, 0, 0,
                "default", NULL, "preset DEFLATE dictionary: \"default\" "
                "(built in), \"none\", or a file; both ends the same"),
    SW_PEER_OPT("peer_queue_max", SW_OPT_INT, queue_max, 0, 1, 10000000,
                "100000", NULL, "stanzas of all kinds waiting for the peer; "
                "past it they are treated as past their own kind's bound"),
    SW_PEER_OPT("peer_queue_max_message", SW_OPT_INT, queue_max_message, 0,
                1, 10000000, "100000", NULL, "messages waiting for the "
                "peer; more are bounced with resource-constraint"),
    SW_PEER_OPT("peer_queue_max_presence", SW_OPT_INT, queue_max_presence,
                0, 1, 10000000, "1000", NULL, "presence waiting for the "
                "peer; past it a new presence replaces the waiting one from "
                "the same sender to the same address, or is dropped "
                "(subscription requests are bounced)"),
    SW_PEER_OPT("peer_queue_max_iq", SW_OPT_INT, queue_max_iq, 0, 1,
                10000000, "1000", NULL, "IQs waiting for the peer; more "
                "requests are bounced with resource-constraint"),
    SW_PEER_OPT("peer_queue_max_bytes", SW_OPT_SIZE, queue_max_bytes, 0,
                4096, (int64_t) 1 << 40, "32M", NULL, "bytes of stanzas "
                "waiting for the peer (memory and disk); past it they are "
                "treated as past their own kind's bound"),
    SW_PEER_OPT("peer_queue_max_sender_bytes", SW_OPT_SIZE,
                queue_max_sender_bytes, 0, 1024, (int64_t) 1 << 40, "2M",
                NULL, "bytes of stanzas from one sender (bare JID) waiting "
                "for the peer, so that one user cannot fill the queue"),
    SW_PEER_OPT("peer_queue_memory", SW_OPT_SIZE, queue_memory, 0, 0,
                (int64_t) 1 << 40, "1M", NULL, "bytes of the queue kept in "
                "memory (its head); the rest is read back from the database "
                "as it is sent"),
    SW_PEER_OPT("peer_expire_message", SW_OPT_DURATION, expire_message, 0,
                1000, 365LL * 86400 * 1000, "168h", NULL,
                "a message not delivered by then is bounced"),
    SW_PEER_OPT("peer_expire_presence", SW_OPT_DURATION, expire_presence, 0,
                1000, 365LL * 86400 * 1000, "1h", NULL,
                "queued presence older than this is dropped"),
    SW_PEER_OPT("peer_expire_iq", SW_OPT_DURATION, expire_iq, 0,
                1000, 86400LL * 1000, "10m", NULL,
                "an IQ request not delivered by then is bounced"),
    SW_PEER_OPT("peer_keepalive", SW_OPT_DURATION, keepalive, 0,
                1000, 3600LL * 1000, "60s", NULL, "idle time before an ack "
                "is sent as a keepalive; three times it with nothing "
                "received closes the connection"),
    SW_PEER_OPT("peer_reconnect_min", SW_OPT_DURATION, reconnect_min, 0,
                100, 3600LL * 1000, "1s", NULL, "first retry delay"),
    SW_PEER_OPT("peer_reconnect_max", SW_OPT_DURATION, reconnect_max, 0,
                100, 3600LL * 1000, "30s", NULL, "longest retry delay"),
    SW_PEER_OPT("peer_ack_timeout", SW_OPT_DURATION, ack_timeout, 0,
                500, 3600LL * 1000, "10s", NULL, "a stanza unacknowledged "
                "this long makes us open a fresh connection beside the "
                "current one, which may be dead without TCP knowing"),
    SW_PEER_OPT("peer_tls", SW_OPT_BOOL, tls, 0, 0, 0, "false", NULL,
                "TLS from the first byte, both certificates checked "
                "against peer_tls_pin"),
    SW_PEER_OPT("peer_tls_certificate", SW_OPT_PATH, tls_certificate, 0, 0,
                0, NULL, NULL, "our certificate (PEM); unset: a "
                "self-signed one made in data_dir"),
    SW_PEER_OPT("peer_tls_key", SW_OPT_PATH, tls_key, 0, 0, 0, NULL, NULL,
                "our private key (PEM)"),
    SW_PEER_OPT("peer_tls_pin", SW_OPT_STRING, tls_pin, 0, 0, 0, NULL, NULL,
                "SHA-256 fingerprint of the peer's certificate (hex)"),
    SW_PEER_OPT("peer_tls_ca", SW_OPT_PATH, tls_ca, 0, 0, 0, NULL, NULL,
                "CA certificates (PEM): the peer's certificate must chain to "
                "one and name its first peer_domains entry"),
    SW_OPTION_END
};

static sw_storage_t *
sw_link_store(void)
{
    const sw_storage_t *s = sw_service_get(SW_STORAGE_SERVICE,
                                           SW_STORAGE_VERSION);

    return (sw_storage_t *) s;
}

/* --------------------------------------------------------- registry --- */

int
sw_transport_register(sw_owner_t *owner, const sw_transport_t *t)
{
    sw_transport_reg_t *r = sw_calloc(1, sizeof(*r));

    r->t = t;
    r->next = sw_transports;
    sw_transports = r;
    (void) owner;       /* transports live until exit, like modules */
    return SW_OK;
}

static const sw_transport_t *
sw_transport_find(const char *name)
{
    sw_transport_reg_t *r;

    for (r = sw_transports; r != NULL; r = r->next) {
        if (strcmp(r->t->name, name) == 0) {
            return r->t;
        }
    }
    return NULL;
}

const char *
sw_link_name(const sw_link_t *l)
{
    return l->name;
}

const sw_peer_conf_t *
sw_link_conf(const sw_link_t *l)
{
    return &l->conf;
}

sw_link_t *
sw_link_find(const char *peer)
{
    sw_link_t *l;

    for (l = sw_links; l != NULL; l = l->next) {
        if (strcmp(l->name, peer) == 0) {
            return l;
        }
    }
    return NULL;
}

void
sw_link_each(void (*fn)(sw_link_t *l, void *ud), void *ud)
{
    sw_link_t *l;

    for (l = sw_links; l != NULL; l = l->next) {
        fn(l, ud);
    }
}

void
sw_link_stats(const sw_link_t *l, sw_link_stats_t *out)
{
    *out = l->st;
    out->up = l->conn != NULL;
    out->queued = l->q_n;
    if (l->conn != NULL) {
        out->wire_out += sw_conn_bytes_out(l->conn);
        out->wire_in += sw_conn_bytes_in(l->conn);
    }
}

/* ------------------------------------------------------------ queue --- */

/* Drops the numbers up to upto. */
static void
sw_link_seqs_forget(sw_link_seqs_t *q, uint64_t upto)
{
    size_t i = 0;

    while (i < q->n && q->v[i] <= upto) {
        i++;
    }
    if (i > 0) {
        memmove(q->v, q->v + i, (q->n - i) * sizeof(*q->v));
        q->n -= i;
    }
}

/* The index of the first number above seq (q->n if none). */
static size_t
sw_link_seqs_above(const sw_link_seqs_t *q, uint64_t seq)
{
    size_t lo = 0, hi = q->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (q->v[mid] <= seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool
sw_link_seqs_has(const sw_link_seqs_t *q, uint64_t seq)
{
    size_t i = sw_link_seqs_above(q, seq);

    return i > 0 && q->v[i - 1] == seq;
}

static void
sw_link_seqs_remove(sw_link_seqs_t *q, uint64_t seq)
{
    size_t i = sw_link_seqs_above(q, seq);

    if (i > 0 && q->v[i - 1] == seq) {
        memmove(q->v + i - 1, q->v + i, (q->n - i) * sizeof(*q->v));
        q->n--;
    }
}

/* Adds seq, in order (after a failed batch, a stanza may come again
 * below numbers added the first time). */
static void
sw_link_seqs_add(sw_link_seqs_t *q, uint64_t seq)
{
    size_t i = sw_link_seqs_above(q, seq);

    if (i > 0 && q->v[i - 1] == seq) {
        return;
    }
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 64;
        q->v = sw_realloc(q->v, q->cap * sizeof(*q->v));
    }
    memmove(q->v + i + 1, q->v + i, (q->n - i) * sizeof(*q->v));
    q->v[i] = seq;
    q->n++;
}

static sw_link_qitem_t *
sw_link_q_at(sw_link_t *l, size_t i)
{
    return &l->q[(l->q_head + i) % l->q_cap];
}

/* A queued stanza's kind from its serialized form, which starts with
 * the element's own name (no prolog, no prefix in jabber:server). */
static sw_stanza_kind_e
sw_link_kind_of(const char *xml)
{
    static const struct {
        const char       *open;
        sw_stanza_kind_e  kind;
    } names[] = {
        { "<message", SW_STANZA_MESSAGE },
        { "<presence", SW_STANZA_PRESENCE },
        { "<iq", SW_STANZA_IQ },
    };
    size_t i, n;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = strlen(names[i].open);
        if (strncmp(xml, names[i].open, n) == 0 && xml[n] != '\0'
            && strchr(" />", xml[n]) != NULL)
        {
            return names[i].kind;
        }
    }
    return SW_STANZA_OTHER;
}

/* Bytes queued from sender: a counter in l->q_sender_bytes, made when
 * make is set. */
static size_t *
sw_link_sender_bytes(sw_link_t *l, const char *sender, bool make)
{
    size_t *n;

    if (l->q_sender_bytes == NULL) {
        l->q_sender_bytes = sw_hash_new(16);
    }
    n = sw_hash_get(l->q_sender_bytes, sender);
    if (n == NULL && make) {
        n = sw_calloc(1, sizeof(*n));
        sw_hash_set(l->q_sender_bytes, sender, n);
    }
    return n;
}

/* The sender a queued stanza counts against: its bare JID, or its domain
 * for a server's own stanza; new. */
static char *
sw_link_sender_of(const sw_stanza_t *st)
{
    if (st == NULL || st->from == NULL) {
        return sw_strdup("");
    }
    return sw_strdup(st->from->node != NULL ? st->from->bare
                                            : st->from->domain);
}

/* Presence that only says how an entity is: the newest supersedes. */
static bool
sw_link_is_state(const sw_stanza_t *st)
{
    return st->kind == SW_STANZA_PRESENCE
           && (st->type == NULL || strcmp(st->type, "unavailable") == 0);
}

/* What folding compares (sw_link_fold): "from\0to" for presence state
 * between two full addresses, else NULL; new. */
static char *
sw_link_fold_key(const sw_stanza_t *st)
{
    size_t  f, t;
    char   *key;

    if (st == NULL || !sw_link_is_state(st) || st->from == NULL
        || st->to == NULL)
    {
        return NULL;
    }
    f = strlen(st->from->full) + 1;
    t = strlen(st->to->full) + 1;
    key = sw_alloc(f + t);
    memcpy(key, st->from->full, f);
    memcpy(key + f, st->to->full, t);
    return key;
}

/* Frees a durable item's xml: it is read back from storage when needed. */
static void
sw_link_q_unload(sw_link_t *l, sw_link_qitem_t *it)
{
    if (it->xml != NULL) {
        l->q_mem -= it->len;
        free(it->xml);
        it->xml = NULL;
    }
}

/* Appends a stanza (st: parsed, for its sender and fold key; NULL if it
 * did not parse).  Its xml stays in memory until it is durable; past the
 * memory budget it is paged out then. */
static sw_link_qitem_t *
sw_link_q_append(sw_link_t *l, uint64_t seq, int64_t expires, char *xml,
                 size_t len, const sw_stanza_t *st)
{
    sw_link_qitem_t *it;

    if (l->q_n == l->q_cap) {
        size_t           cap = l->q_cap ? l->q_cap * 2 : 16, i;
        sw_link_qitem_t *q = sw_calloc(cap, sizeof(*q));

        for (i = 0; i < l->q_n; i++) {
            q[i] = *sw_link_q_at(l, i);
        }
        free(l->q);
        l->q = q;
        l->q_cap = cap;
        l->q_head = 0;
    }
    it = &l->q[(l->q_head + l->q_n) % l->q_cap];
    it->seq = seq;
    it->expires = expires;
    it->xml = xml;
    it->len = len;
    it->sent_at = 0;
    it->kind = sw_link_kind_of(xml);
    it->batch = sw_link_batch_gen;
    it->sender = sw_link_sender_of(st);
    it->fold = sw_link_fold_key(st);
    it->evict = l->q_mem + len > l->conf.queue_memory;
    l->q_n++;
    l->q_kind[it->kind]++;
    l->q_bytes += len;
    l->q_mem += len;
    *sw_link_sender_bytes(l, it->sender, true) += len;
    return it;
}

/* The index of the first item numbered above seq, or l->q_n. */
static size_t
sw_link_q_find_above(sw_link_t *l, uint64_t seq)
{
    size_t lo = 0, hi = l->q_n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (sw_link_q_at(l, mid)->seq <= seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The index of the item numbered seq, or l->q_n. */
static size_t
sw_link_q_find(sw_link_t *l, uint64_t seq)
{
    size_t i = seq > 0 ? sw_link_q_find_above(l, seq - 1) : 0;

    return i < l->q_n && sw_link_q_at(l, i)->seq == seq ? i : l->q_n;
}

/*
 * Reads item i back from storage, with what follows it up to bytes.
 * Read items count as past the budget: freed once written.  SW_OK,
 * SW_ERROR (storage failed: try later) or SW_DECLINED (item i is not in
 * storage).
 */
static int
sw_link_q_page_in(sw_link_t *l, size_t i, size_t bytes)
{
    sw_storage_t   *s = sw_link_store();
    sw_pool_t      *pool;
    sw_link_item_t *items;
    size_t          n = 0, k, j = i;

    if (s == NULL) {
        return SW_ERROR;
    }
    pool = sw_pool_new(bytes + 4096);
    if (s->link_queue_load(s, l->name, sw_link_q_at(l, i)->seq, bytes, pool,
                           &items, &n) != SW_OK)
    {
        sw_pool_free(pool);
        return SW_ERROR;
    }
    for (k = 0; k < n && j < l->q_n; k++) {
        sw_link_qitem_t *it;

        while (j < l->q_n && sw_link_q_at(l, j)->seq < items[k].seq) {
            j++;
        }
        if (j == l->q_n) {
            break;
        }
        it = sw_link_q_at(l, j);
        if (it->seq == items[k].seq && it->xml == NULL
            && it->len == items[k].len)
        {
            it->xml = sw_strndup(items[k].xml, items[k].len);
            it->evict = true;
            l->q_mem += it->len;
        }
    }
    sw_pool_free(pool);
    return sw_link_q_at(l, i)->xml != NULL ? SW_OK : SW_DECLINED;
}

/*
 * A queued stanza parsed back, to be bounced.  sw_link_route wrote it in
 * jabber:server's scope, without an xmlns; parsed on its own it would be
 * in no namespace, and the sender's client would get <message xmlns=''>,
 * which no client takes for a message.  So it is parsed in that scope.
 */
static sw_stanza_t *
sw_link_q_stanza(sw_link_t *l, size_t i)
{
    static const char open[] = "<q xmlns='" SW_NS_SERVER "'>";
    static const char close[] = "</q>";
    sw_link_qitem_t *it = sw_link_q_at(l, i);
    sw_pool_t       *pool;
    sw_buf_t         b;
    sw_xml_t        *q, *x;
    sw_stanza_t     *st = NULL;

    if (it->xml == NULL && sw_link_q_page_in(l, i, 1) != SW_OK) {
        sw_log_error("link %s: stanza %llu could not be read back from "
                     "storage", l->name, (unsigned long long) it->seq);
        return NULL;
    }
    pool = sw_pool_new(it->len + 512);

    sw_buf_init(&b);
    sw_buf_append(&b, open, sizeof(open) - 1);
    sw_buf_append(&b, it->xml, it->len);
    sw_buf_append(&b, close, sizeof(close) - 1);
    q = sw_xml_parse(pool, b.data, b.len, NULL);
    sw_buf_free(&b);
    x = q != NULL ? sw_xml_child(q, NULL, NULL) : NULL;
    if (x != NULL) {
        sw_xml_unlink(x);
        st = sw_stanza_new(pool, x, NULL);
    }
    if (st == NULL) {
        sw_pool_free(pool);
    }
    return st;
}

/* Takes item i out of the queue (memory only; storage is the caller's). */
static void
sw_link_q_remove(sw_link_t *l, size_t i)
{
    sw_link_qitem_t *it = sw_link_q_at(l, i);
    size_t          *n = sw_link_sender_bytes(l, it->sender, false);

    l->q_kind[it->kind]--;
    l->q_bytes -= it->len;
    if (n != NULL) {
        *n -= it->len;
        if (*n == 0) {
            sw_hash_set(l->q_sender_bytes, it->sender, NULL);
            free(n);
        }
    }
    free(it->sender);
    free(it->fold);
    sw_link_q_unload(l, it);
    if (i == 0) {
        l->q_head = (l->q_head + 1) % l->q_cap;
    } else {
        for (; i + 1 < l->q_n; i++) {
            *sw_link_q_at(l, i) = *sw_link_q_at(l, i + 1);
        }
    }
    l->q_n--;
}

/* Groups this loop turn's storage writes in one transaction.  Outside
 * the running loop (start-up, shutdown) each write commits on its own. */
static void
sw_link_batch_begin(void)
{
    sw_storage_t *s = sw_link_store();

    if (!sw_link_running) {
        return;
    }
    if (!sw_link_in_tx && s != NULL && s->begin(s) == SW_OK) {
        sw_link_in_tx = true;
    }
    uv_check_start(&sw_link_batch, sw_link_on_batch);
}

/*
 * A round trip measured from an ack.  The smoothed value (counters) has
 * the queueing of a busy link in it; timers use the least recent sample,
 * the path's own round trip, as BBR's min-RTT filter does.
 */
static void
sw_link_rtt_sample(sw_link_t *l, double sample)
{
    uint64_t now = uv_now(sw_loop());

    l->st.rtt = l->st.rtt == 0 ? sample : 0.875 * l->st.rtt + 0.125 * sample;
    if (now - l->rtt_window > SW_LINK_RTT_WINDOW_MS) {
        /* a new window: forget samples older than the last one */
        l->rtt_min = l->rtt_min_next > 0 ? l->rtt_min_next : l->rtt_min;
        l->rtt_min_next = 0;
        l->rtt_window = now;
    }
    if (l->rtt_min_next == 0 || sample < l->rtt_min_next) {
        l->rtt_min_next = sample;
    }
    if (l->rtt_min == 0 || sample < l->rtt_min) {
        l->rtt_min = sample;
    }
}

/* The peer handled everything up to h (XEP-0198 style). */
static void
sw_link_acked(sw_link_t *l, uint64_t h)
{
    sw_storage_t *s = sw_link_store();
    double        now = uv_now(sw_loop()) / 1000.0;
    bool          any = false;

    while (l->q_n > 0 && sw_link_q_at(l, 0)->seq <= h) {
        sw_link_qitem_t *it = sw_link_q_at(l, 0);

        if (it->seq == h && it->sent_at > 0) {
            sw_link_rtt_sample(l, now - it->sent_at);
        }
        sw_link_q_remove(l, 0);
        any = true;
    }
    if (any && s != NULL) {
        sw_link_batch_begin();
        s->link_queue_ack(s, l->name, h);
    }
}

static double
sw_link_expiry(const sw_link_t *l, const sw_stanza_t *st)
{
    switch (st->kind) {
    case SW_STANZA_PRESENCE:
        /* subscription requests and approvals are state changes the
         * other side keeps: as long as a message, then bounced */
        return sw_link_is_state(st) ? l->conf.expire_presence
                                    : l->conf.expire_message;
    case SW_STANZA_IQ:       return l->conf.expire_iq;
    default:                 return l->conf.expire_message;
    }
}

/* A chat state alone is news only now (XEP-0085 §5.4): never queued. */
static bool
sw_link_is_ephemeral(const sw_stanza_t *st)
{
    return st->kind == SW_STANZA_MESSAGE
           && sw_xml_child(st->xml, NULL, "body") == NULL
           && sw_xml_child(st->xml, "http://jabber.org/protocol/chatstates",
                           NULL) != NULL;
}


/*
 * Makes room for presence state st: takes out the oldest waiting
 * presence state from the same sender to the same address that has not
 * been written yet (one written may be delivered already).  The new one
 * goes to the end of the queue, so order between the two entities holds
 * (RFC 6120 §10.1); the gap it leaves is renumbered on the wire.
 */
static bool
sw_link_fold(sw_link_t *l, const sw_stanza_t *st)
{
    sw_storage_t *s = sw_link_store();
    size_t        i;

    if (st->from == NULL || st->to == NULL) {
        return false;
    }
    for (i = 0; i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);

        if (it->fold == NULL || it->seq <= l->written) {
            continue;
        }
        if (strcmp(it->fold, st->from->full) == 0
            && strcmp(it->fold + strlen(it->fold) + 1, st->to->full) == 0)
        {
            if (s != NULL) {
                sw_link_batch_begin();
                s->link_queue_remove(s, l->name, it->seq);
            }
            sw_link_q_remove(l, i);
            return true;
        }
    }
    return false;
}

/*
 * The queue bounds (peer_queue_max, peer_queue_max_KIND).  Returns true
 * when st was dealt with here (bounced or dropped) and is not queued.
 */
static bool
sw_link_bounded(sw_link_t *l, sw_stanza_t *st, size_t len)
{
    int64_t  kind_max;
    size_t  *mine;
    char    *sender;
    bool     bytes_ok;

    switch (st->kind) {
    case SW_STANZA_PRESENCE: kind_max = l->conf.queue_max_presence; break;
    case SW_STANZA_IQ:       kind_max = l->conf.queue_max_iq; break;
    default:                 kind_max = l->conf.queue_max_message; break;
    }
    sender = sw_link_sender_of(st);
    mine = sw_link_sender_bytes(l, sender, false);
    free(sender);
    bytes_ok = l->q_bytes + len <= l->conf.queue_max_bytes
               && (mine != NULL ? *mine : 0) + len
                  <= l->conf.queue_max_sender_bytes;
    if (bytes_ok && l->q_n < (size_t) l->conf.queue_max
        && l->q_kind[st->kind] < (size_t) kind_max)
    {
        return false;
    }
    if (sw_link_is_state(st)) {
        if (sw_link_fold(l, st)) {
            return false;
        }
        sw_log_info("link %s: queue full: dropped presence from %s", l->name,
                    st->from ? st->from->full : "(none)");
        return true;
    }
    sw_log_rl_warn(&l->rl_full, "link %s: queue full (%zu stanzas, %zu %s, "
                   "%zu bytes, %zu from %s)", l->name, l->q_n,
                   l->q_kind[st->kind], sw_stanza_kind_name(st->kind),
                   l->q_bytes, mine != NULL ? *mine : 0,
                   st->from ? st->from->bare : "(none)");
    /* RFC 6120 §8.3.3.18; the router never answers an error or a result */
    sw_route_bounce(sw_stanza_ref(st), "resource-constraint",
                    "the link to that server is backed up");
    return true;
}

static void sw_link_connect(sw_link_t *l);

/* route/remote: stanzas for a domain a peer speaks for. */
static int
sw_link_route(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sw_link_t        *l = sw_hash_get(sw_link_domains, ev->domain);
    sw_storage_t     *s = sw_link_store();
    sw_stanza_t      *st = ev->stanza;
    sw_buf_t          b;
    int64_t           expires;
    uint64_t          seq;

    if (l == NULL) {
        return SW_DECLINED;
    }
    if (sw_link_is_ephemeral(st) && l->conn == NULL) {
        return SW_OK;
    }
    sw_buf_init(&b);
    sw_xml_serialize(st->xml, &b, SW_NS_SERVER);
    if (sw_link_bounded(l, st, b.len)) {
        sw_buf_free(&b);
        return SW_OK;
    }
    seq = l->next_out;
    expires = (int64_t) time(NULL) + (int64_t) sw_link_expiry(l, st);
    if (s != NULL) {
        sw_link_batch_begin();
    }
    if (s != NULL) {
        if (!sw_link_in_tx
            || s->link_queue_push(s, l->name, seq, b.data, b.len, expires)
                != SW_OK
            || s->link_state_set(s, l->name, seq + 1, l->in_durable)
                != SW_OK)
        {
            /*
             * Not on stable storage, so not taken: the sender hears of it
             * (RFC 6120 §8.3.3.18) and a client's XEP-0198 count covers
             * a bounced stanza, never a lost one.
             */
            sw_log_rl_error(&sw_link_rl_store, "link %s: could not store a "
                            "stanza for the peer; bounced to its sender",
                            l->name);
            sw_buf_free(&b);
            sw_route_bounce(sw_stanza_ref(st), "resource-constraint",
                            "the server cannot store the message now");
            return SW_OK;
        }
    }
    l->next_out++;
    {
        size_t           len;
        char            *xml = sw_buf_steal(&b, &len);
        sw_link_qitem_t *it = sw_link_q_append(l, seq, expires, xml, len, st);

        if (it->evict) {
            sw_link_seqs_add(&l->q_evict, seq);
        }
    }
    l->dirty = true;
    if (l->conn == NULL) {
        sw_link_connect(l);
    }
    return SW_OK;
}

/* ----------------------------------------------------------- output --- */

static void
sw_link_write(sw_link_t *l, const char *data, size_t len)
{
    sw_conn_write(l->conn, data, len);
    l->st.bytes_out += len;
    l->last_tx = uv_now(sw_loop());
}

static void
sw_link_send_ack(sw_link_t *l)
{
    char buf[96];

    if (l->conn == NULL) {
        return;
    }
    /* an ack promises stable storage: only what was committed */
    snprintf(buf, sizeof(buf), "<a xmlns='" SW_NS_LINK "' h='%llu'/>",
             (unsigned long long) l->in_durable);
    sw_link_write(l, buf, strlen(buf));
    l->in_acked = l->in_durable;
    l->dirty = true;
}

/*
 * Writes what the peer has not seen on this connection, a chunk at a
 * time (each flushed), while less than a window waits for the kernel;
 * sw_link_on_drained goes on from there.  Paged-out stanzas are read
 * back a page at a time.
 */
static void
sw_link_output(sw_link_t *l)
{
    double  now = uv_now(sw_loop()) / 1000.0;
    size_t  i, chunk = 0;
    char    mark[96];
    int     rc;

    l->dirty = false;
    if (l->conn == NULL || sw_conn_pending(l->conn) > SW_LINK_OUT_WINDOW) {
        return;
    }
    for (i = sw_link_q_find_above(l, l->written); i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);

        if (chunk >= SW_LINK_OUT_CHUNK) {
            sw_conn_flush(l->conn);
            chunk = 0;
            if (l->conn == NULL
                || sw_conn_pending(l->conn) > SW_LINK_OUT_WINDOW)
            {
                return;     /* the rest when it drains */
            }
        }
        if (sw_link_in_tx && it->batch == sw_link_batch_gen) {
            /*
             * Not committed yet (a connection came up in the turn that
             * queued it): it goes after the commit, or is bounced if the
             * commit fails.  Written now, the peer could deliver a
             * stanza whose sender is told it was not taken.
             */
            l->dirty = true;
            break;
        }
        if (it->xml == NULL
            && (rc = sw_link_q_page_in(l, i, SW_LINK_PAGE_BYTES)) != SW_OK)
        {
            if (rc == SW_ERROR) {
                sw_log_rl_error(&sw_link_rl_store, "link %s: could not read "
                                "the queue back from storage; retrying",
                                l->name);
                l->dirty = true;
                break;
            }
            sw_log_error("link %s: stanza %llu is not in storage any more; "
                         "left out", l->name, (unsigned long long) it->seq);
            sw_link_q_remove(l, i);
            i--;
            continue;
        }
        if (it->seq != l->written + 1) {
            /* a gap (an expired stanza): renumber the peer */
            snprintf(mark, sizeof(mark), "<link xmlns='" SW_NS_LINK
                     "' seq='%llu'/>", (unsigned long long) it->seq);
            sw_link_write(l, mark, strlen(mark));
        }
        sw_link_write(l, it->xml, it->len);
        chunk += it->len;
        if (it->evict) {
            sw_link_q_unload(l, it);
        }
        it->sent_at = now;
        l->written = it->seq;
        if (it->seq > l->sent_max) {
            l->sent_max = it->seq;
        }
        l->st.stanzas_out++;
    }
    sw_conn_flush(l->conn);
}

void
sw_link_batch_hold(sw_stanza_t *st)
{
    if (!sw_link_in_tx) {
        return;         /* written in its own transaction, committed */
    }
    if (sw_link_held_n == sw_link_held_cap) {
        sw_link_held_cap = sw_link_held_cap ? 2 * sw_link_held_cap : 16;
        sw_link_held = sw_realloc(sw_link_held,
                                  sw_link_held_cap * sizeof(*sw_link_held));
    }
    sw_link_held[sw_link_held_n++] = sw_stanza_ref(st);
}

/*
 * Messages that reached clients in a batch that failed stay in l->live
 * until their count is durable; a kill -9 before that forgets them, and
 * the peer's copies are delivered again.  The count need not wait for
 * the peer to send them again (after a reconnect, the whole queue over a
 * slow link): once a tick it moves over them, up to the first stanza
 * that must be delivered again (l->held), so it commits within a second
 * of the disk having room again.  Numbers in between that are in
 * neither set were never sent (the peer renumbered): nothing to wait for.
 */
static void
sw_link_live_advance(sw_link_t *l)
{
    sw_storage_t *s = sw_link_store();
    size_t        i = sw_link_seqs_above(&l->live, l->in_delivered);
    size_t        h = sw_link_seqs_above(&l->held, l->in_delivered);
    uint64_t      d = l->in_delivered;

    while (i < l->live.n
           && (h == l->held.n || l->live.v[i] < l->held.v[h]))
    {
        d = l->live.v[i++];
    }
    if (s == NULL || d == l->in_delivered) {
        return;
    }
    sw_link_batch_begin();
    if (sw_link_in_tx
        && s->link_state_set(s, l->name, l->next_out, d) == SW_OK)
    {
        l->in_delivered = d;            /* what comes again is dropped */
    }
}

void
sw_link_batch_end(void)
{
    if (sw_link_routing == NULL) {
        sw_link_commit();
    }
}

void
sw_link_handed_to_session(void)
{
    if (sw_link_routing != NULL) {
        sw_link_routing_live = true;
    }
}

/*
 * The batch did not reach stable storage, and SQLite rolled all of it
 * back.  Nothing of it may be acknowledged as durable: stanzas queued
 * for peers in it are taken out and bounced to their senders, stanzas
 * held by modules (offline messages) are bounced, and what peers sent in
 * it is not acknowledged: their connections are closed, so that they
 * send it all again (some of it may be delivered twice: never lost).
 */
static void
sw_link_batch_failed(void)
{
    sw_link_t   *l;
    sw_stanza_t *st;
    size_t       i, bounced = 0;

    for (l = sw_links; l != NULL; l = l->next) {
        for (i = l->q_n; i > 0; i--) {
            sw_link_qitem_t *it = sw_link_q_at(l, i - 1);

            if (it->batch != sw_link_batch_gen) {
                continue;
            }
            st = sw_link_q_stanza(l, i - 1);
            sw_link_q_remove(l, i - 1);
            if (st != NULL) {
                sw_route_bounce(st, "resource-constraint",
                                "the server could not store the message");
                bounced++;
            }
        }
        if (l->in_delivered != l->in_durable) {
            sw_log_error("link %s: stanzas %llu..%llu from the peer were "
                         "not stored; closing the connection so that it "
                         "sends them again (%zu messages among them "
                         "reached clients already: not delivered again)",
                         l->name, (unsigned long long) l->in_durable + 1,
                         (unsigned long long) l->in_delivered, l->live.n);
            l->in_delivered = l->in_durable;
            if (l->xs != NULL) {
                sw_xmlstream_pause(l->xs);
            }
            sw_link_drop(l, "storage failed");
        }
    }
    for (i = 0; i < sw_link_held_n; i++) {
        sw_route_bounce(sw_link_held[i], "resource-constraint",
                        "the server could not store the message");
        bounced++;
    }
    sw_link_held_n = 0;
    sw_log_error("storage: a batch did not reach stable storage; %zu "
                 "stanzas bounced to their senders, nothing acknowledged",
                 bounced);
}

/* The batch is durable: the stanzas in it past the memory budget are
 * read back from storage when they are sent. */
static void
sw_link_page_out(sw_link_t *l)
{
    size_t i, j;

    for (i = 0; i < l->q_evict.n; i++) {
        j = sw_link_q_find(l, l->q_evict.v[i]);
        if (j < l->q_n && sw_link_q_at(l, j)->evict) {
            sw_link_q_unload(l, sw_link_q_at(l, j));
        }
    }
    l->q_evict.n = 0;
}

int
sw_link_commit(void)
{
    sw_storage_t *s = sw_link_store();
    sw_link_t    *l;
    size_t        i;
    int           rc = SW_OK;

    if (!sw_link_in_tx) {
        return SW_OK;
    }
    sw_link_in_tx = false;
    if (s == NULL || s->commit(s) != SW_OK) {
        sw_link_batch_failed();
        rc = SW_ERROR;
    } else {
        for (l = sw_links; l != NULL; l = l->next) {
            l->in_durable = l->in_delivered;
            sw_link_seqs_forget(&l->live, l->in_durable);
            sw_link_seqs_forget(&l->held, l->in_durable);
            sw_link_page_out(l);
        }
        for (i = 0; i < sw_link_held_n; i++) {
            sw_stanza_unref(sw_link_held[i]);
        }
        sw_link_held_n = 0;
    }
    for (l = sw_links; l != NULL; l = l->next) {
        l->q_evict.n = 0;
    }
    sw_link_batch_gen++;
    return rc;
}

/* Once per loop turn: commit the storage batch, then send. */
static void
sw_link_on_batch(uv_check_t *h)
{
    sw_link_t *l;

    uv_check_stop(h);
    sw_link_commit();
    for (l = sw_links; l != NULL; l = l->next) {
        /*
         * One ack per batch of received stanzas, right after their count
         * is committed: written in the same instant as TCP's own ACK, it
         * rides in that segment instead of costing another one later
         * (measured: a separate ack 200 ms later made B->A the heavier
         * direction), and round-trip times measured from acks are true.
         */
        if (l->conn != NULL && l->in_durable != l->in_acked) {
            sw_link_send_ack(l);
        }
        if (l->dirty) {
            sw_link_output(l);
        }
    }
}

/* ------------------------------------------------------------ input --- */

/* The wire parser's bound must be the link's own. */
_Static_assert(SW_LINK_WIRE_SEQ_MAX == SW_LINK_SEQ_MAX,
               "sw_link_wire.h and sw_link.c disagree on SW_LINK_SEQ_MAX");

static bool
sw_link_speaks_for(const sw_link_t *l, const char *domain)
{
    return sw_hash_get(sw_link_domains, domain) == l;
}

static void
sw_link_deliver(sw_link_t *l, sw_xml_t *el, sw_pool_t *pool)
{
    sw_storage_t *s = sw_link_store();
    uint64_t      seq = l->in_next;
    sw_stanza_t  *st;
    sw_host_t    *h;
    const char   *err = NULL;
    sw_stanza_kind_e kind;

    if (seq > SW_LINK_SEQ_MAX) {
        sw_pool_free(pool);
        sw_link_protocol_error(l, "stanza number beyond %llu",
                               (unsigned long long) SW_LINK_SEQ_MAX);
        return;
    }
    l->in_next++;
    if (seq <= l->in_delivered) {
        /* sent again after a reconnect: we have it already */
        l->st.duplicates_in++;
        sw_pool_free(pool);
        return;
    }
    /*
     * The count goes into this turn's batch before the stanza goes on;
     * it is acknowledged at the end of the turn, once committed.  When
     * it cannot even be written, the stanza is not delivered and the
     * connection is closed: the peer sends it again later.
     */
    if (s != NULL) {
        sw_link_batch_begin();
    }
    if (s == NULL || !sw_link_in_tx
        || s->link_state_set(s, l->name, l->next_out, seq) != SW_OK)
    {
        sw_log_rl_error(&sw_link_rl_store, "link %s: cannot record stanza "
                        "%llu from the peer: not delivered; closing the "
                        "connection so that it sends it again", l->name,
                        (unsigned long long) seq);
        l->in_next--;
        sw_pool_free(pool);
        if (l->xs != NULL) {
            sw_xmlstream_pause(l->xs);
        }
        sw_link_drop(l, "storage failed");
        return;
    }
    l->in_delivered = seq;
    if (sw_link_seqs_has(&l->live, seq)) {
        /*
         * Sent again after a batch that failed to commit, and it had
         * reached a client then: once is enough.  Its count is in this
         * batch; when that commits, it is acknowledged like any other.
         */
        l->st.duplicates_in++;
        sw_pool_free(pool);
        return;
    }
    l->st.stanzas_in++;
    sw_link_seqs_add(&l->held, seq);    /* until it proves live below */

    st = sw_stanza_new(pool, el, &err);
    if (st == NULL) {
        sw_log_warn("link %s: dropped a stanza with a malformed address",
                    l->name);
        sw_pool_free(pool);
        return;
    }
    if (st->kind == SW_STANZA_OTHER) {
        sw_log_warn("link %s: dropped <%s/>, not a stanza", l->name,
                    el->name);
        sw_stanza_unref(st);
        return;
    }
    /* XEP-0361 §4: validate as standard s2s would for these domains. */
    if (st->from == NULL || !sw_link_speaks_for(l, st->from->domain)) {
        sw_log_warn("link %s: refused a stanza from '%s': the agreement "
                    "does not let this peer speak for that domain", l->name,
                    st->from ? st->from->full : "(none)");
        sw_stanza_unref(st);
        return;
    }
    h = st->to ? sw_host_find(st->to->domain) : NULL;
    if (h == NULL) {
        /* RFC 6120 §8.3.3.16: we do not serve that domain */
        sw_route_bounce(st, "item-not-found", NULL);
        return;
    }
    /*
     * A message handed to a client's session is out before its count
     * commits.  If the batch fails, the peer sends it again, and it
     * would reach the client again, once per failed batch (a full disk:
     * every reconnect).  So the messages that reached a session are
     * remembered until their count is durable, and not delivered again.
     * Messages only: a message goes either to sessions or to offline
     * storage, never both, so one that reached a session lost nothing
     * to the rollback; presence may also have written the roster.
     */
    kind = st->kind;
    sw_link_routing = l;
    sw_link_routing_live = false;
    sw_route(st);
    sw_link_routing = NULL;
    if (sw_link_routing_live && kind == SW_STANZA_MESSAGE) {
        sw_link_seqs_add(&l->live, seq);
        sw_link_seqs_remove(&l->held, seq);
    }
}

/*
 * The peer broke the link protocol: log, close the connection and read
 * nothing more from it.  The queue stays as it is; what it holds is sent
 * again on the next connection.
 */
static void
sw_link_protocol_error(sw_link_t *l, const char *fmt, ...)
{
    char    why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    sw_log_error("link %s: protocol error: %s; closing the connection, "
                 "%zu stanzas stay queued", l->name, why, l->q_n);
    l->st.protocol_errors++;
    if (l->xs != NULL) {
        sw_xmlstream_pause(l->xs);
    }
    sw_link_drop(l, "protocol error");
}

/*
 * An acknowledgement from the peer, checked before it deletes anything:
 * a number we never sent is a protocol error, except a number from
 * before this run that we have no record of, which means our own
 * database went back (restored from a backup, or recreated) while the
 * peer delivered those stanzas: logged loudly, and honoured.
 */
static int
sw_link_take_ack(sw_link_t *l, uint64_t h, const char *what)
{
    if (h > l->sent_max) {
        if (h >= l->run_base) {
            sw_link_protocol_error(l, "%s acknowledges stanza %llu, but we "
                                   "have sent only up to %llu", what,
                                   (unsigned long long) h,
                                   (unsigned long long) l->sent_max);
            return SW_ERROR;
        }
        sw_log_error("link %s: the peer has delivered our stanzas up to "
                     "%llu, beyond the %llu we know of: our database went "
                     "back (restored from a backup or recreated); "
                     "numbering goes on from %llu", l->name,
                     (unsigned long long) h,
                     (unsigned long long) l->sent_max,
                     (unsigned long long) l->next_out);
        l->sent_max = h;
    }
    sw_link_acked(l, h);
    return SW_OK;
}

/*
 * <link seq='S' next='N' ack='A'/>: the hello at the start of each
 * connection ("my first stanza here is S, my next new one N, I have
 * delivered yours up to A"), or with seq alone, a renumbering after a gap.
 */
static void
sw_link_on_hello(sw_link_t *l, const sw_xml_t *el)
{
    sw_link_wire_t w;
    uint64_t    seq, next, ack;
    sw_storage_t *s;

    if (sw_link_wire_parse(el, &w) != SW_OK) {
        sw_link_protocol_error(l, "malformed <link/> (seq '%s', next '%s', "
                               "ack '%s')",
                               sw_xml_attr(el, "seq") ?: "",
                               sw_xml_attr(el, "next") ?: "",
                               sw_xml_attr(el, "ack") ?: "");
        return;
    }
    seq = w.seq;
    next = w.next;
    ack = w.ack;
    if (w.kind == SW_LINK_WIRE_RENUMBER) {
        /* a renumbering after a gap moves forward only */
        if (seq < l->in_next) {
            sw_link_protocol_error(l, "<link seq='%llu'/> goes back from "
                                   "%llu", (unsigned long long) seq,
                                   (unsigned long long) l->in_next);
            return;
        }
        l->in_next = seq;
        return;
    }
    if (w.has_next && next < seq) {
        sw_link_protocol_error(l, "<link/> says seq %llu but next %llu",
                               (unsigned long long) seq,
                               (unsigned long long) next);
        return;
    }
    if (w.has_next && l->in_delivered >= next) {
        /*
         * We delivered numbers the peer has not given out yet: its
         * numbering went back (its database restored or recreated on a
         * build without clock-based numbering, or its clock and its
         * database both went back).  Take its numbering from what it
         * sends now; whatever it sends again that we had is delivered a
         * second time, which is better than dropping what is new.
         */
        sw_log_error("link %s: the peer's numbering went back: its next "
                     "stanza is %llu but we delivered up to %llu; "
                     "resynchronising at %llu (stanzas it sends again may "
                     "be delivered twice)", l->name,
                     (unsigned long long) next,
                     (unsigned long long) l->in_delivered,
                     (unsigned long long) seq);
        l->in_delivered = seq - 1;
        if (l->in_durable > l->in_delivered) {
            l->in_durable = l->in_delivered;
        }
        l->live.n = l->held.n = 0;  /* numbers of the old numbering */
        l->in_acked = l->in_durable;
        s = sw_link_store();
        if (s != NULL) {
            sw_link_batch_begin();
            s->link_state_set(s, l->name, l->next_out, l->in_delivered);
        }
    }
    l->in_next = seq;
    sw_link_take_ack(l, ack, "the peer's <link/>");
}

static void
sw_link_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_t *l = ud;
    sw_link_wire_t w;

    if (el->ns != NULL && strcmp(el->ns, SW_NS_LINK) == 0) {
        if (strcmp(el->name, "link") == 0) {
            sw_link_on_hello(l, el);
        } else if (strcmp(el->name, "a") == 0) {
            if (sw_link_wire_parse(el, &w) != SW_OK) {
                sw_link_protocol_error(l, "malformed <a h='%s'/>",
                                       sw_xml_attr(el, "h") ?: "");
            } else {
                sw_link_take_ack(l, w.ack, "<a/>");
            }
        }
        sw_pool_free(pool);
    } else {
        sw_link_deliver(l, el, pool);
    }
    if (sw_link_running) {
        uv_check_start(&sw_link_batch, sw_link_on_batch);
    }
}

static void
sw_link_on_close(void *ud)
{
    sw_link_drop(ud, "the peer closed the stream");
}

static void
sw_link_on_error(void *ud, const char *cond, const char *text)
{
    sw_link_t *l = ud;
    char       why[256];

    snprintf(why, sizeof(why), "stream error %s: %s", cond, text);
    sw_link_drop(l, why);
}

static const sw_xmlstream_cb_t sw_link_xs_cb = {
    NULL, sw_link_on_element, sw_link_on_close, sw_link_on_error
};

static void
sw_link_on_data(sw_conn_t *c, const char *data, size_t len, void *ud)
{
    sw_link_t *l = ud;

    l->st.bytes_in += len;
    if (c == l->pend) {
        /* may be promoted while parsing: the parser goes with it */
        sw_xmlstream_feed(l->pend_xs, data, len, NULL);
        return;
    }
    l->last_rx = uv_now(sw_loop());
    if (l->xs != NULL) {
        sw_xmlstream_feed(l->xs, data, len, NULL);
    }
}

static void sw_link_schedule_retry(sw_link_t *l);

static void
sw_link_on_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
    sw_link_t *l = ud;

    if (l == NULL) {
        return;
    }
    l->st.wire_out += sw_conn_bytes_out(c);
    l->st.wire_in += sw_conn_bytes_in(c);
    if (c == l->pend) {
        sw_log_info("link %s: the new connection closed before it proved "
                    "to be the peer's%s%s; the live one stays", l->name,
                    reason ? ": " : "", reason ? reason : "");
        l->pend = NULL;
        sw_xmlstream_free(l->pend_xs);
        l->pend_xs = NULL;
        return;
    }
    sw_log_info("link %s: connection closed%s%s (%zu stanzas "
                "unacknowledged)", l->name, reason ? ": " : "",
                reason ? reason : "", l->q_n);
    l->conn = NULL;
    if (l->xs != NULL) {
        sw_xmlstream_free(l->xs);
        l->xs = NULL;
    }
    sw_link_schedule_retry(l);
}

static void
sw_link_on_secured(sw_conn_t *c, void *ud)
{
    sw_link_t *l = ud;

    if (l != NULL && c == l->pend) {
        sw_link_promote(l);     /* the TLS handshake proved the peer */
    }
    if (l != NULL) {
        sw_log_info("link %s: up (%s, %s, peer verified)",
                    l->name, sw_conn_peer(c), sw_conn_tls_desc(c));
    }
}

/* What waited for the kernel went out: the next chunk of the queue. */
static void
sw_link_on_drained(sw_conn_t *c, void *ud)
{
    sw_link_t *l = ud;

    if (l != NULL && c == l->conn && l->q_n > 0
        && sw_link_q_at(l, l->q_n - 1)->seq > l->written)
    {
        sw_link_output(l);
    }
}

static const sw_conn_cb_t sw_link_conn_cb = {
    .data = sw_link_on_data,
    .secured = sw_link_on_secured,
    .drained = sw_link_on_drained,
    .closed = sw_link_on_closed,
};

/* Closes the connection (the retry logic takes it from there). */
static void
sw_link_drop(sw_link_t *l, const char *why)
{
    if (l->conn == NULL) {
        return;
    }
    sw_log_warn("link %s: dropping the connection: %s", l->name, why);
    sw_conn_close(l->conn, true);
}

/* ------------------------------------------------------- connecting --- */

static bool
sw_link_may_open(const sw_link_t *l)
{
    return l->conf.initiate != SW_LINK_INITIATE_THEM;
}

static void
sw_link_connect(sw_link_t *l)
{
    if (!sw_link_running || l->conn != NULL || l->connecting
        || !sw_link_may_open(l) || uv_is_active((uv_handle_t *) &l->retry))
    {
        return;
    }
    l->connecting = true;
    if (l->tp->connect(l) != SW_OK) {
        l->connecting = false;
        sw_link_schedule_retry(l);
    }
}

static void
sw_link_on_retry(uv_timer_t *t)
{
    sw_link_connect(t->data);
}

static void
sw_link_schedule_retry(sw_link_t *l)
{
    double   jitter, delay;
    uint32_t r;

    if (!sw_link_running || !sw_link_may_open(l) || l->conn != NULL) {
        return;
    }
    /* Backoff with ±20% jitter, so two ends do not retry in lockstep. */
    uv_random(NULL, NULL, &r, sizeof(r), 0, NULL);
    jitter = 0.8 + 0.4 * (r / 4294967295.0);
    delay = l->backoff * jitter;
    l->backoff *= 2;
    if (l->backoff > l->conf.reconnect_max) {
        l->backoff = l->conf.reconnect_max;
    }
    uv_timer_start(&l->retry, sw_link_on_retry, (uint64_t) (delay * 1000),
                   0);
}

double
sw_link_connect_deadline(const sw_link_t *l)
{
    double t = 3 * l->rtt_min;

    if (l->rtt_min <= 0) {
        return 0;
    }
    return t < 2.0 ? 2.0 : t;
}

void
sw_link_connect_failed(sw_link_t *l, const char *reason)
{
    l->connecting = false;
    sw_log_info("link %s: connecting failed: %s", l->name, reason);
    sw_link_schedule_retry(l);
}

/* Simultaneous open: both ends keep the connection opened by the end
 * whose first local domain sorts first (doc/peer-links.md). */
static bool
sw_link_prefer_ours(const sw_link_t *l)
{
    const char *ours = sw_link_local;
    const char *theirs = l->conf.domains[0];

    return strcmp(ours, theirs) < 0;
}

/*
 * Makes conn (its layers set up, xs its parser) the link's connection:
 * the old one, if any, is closed, and everything starts at once: our
 * hello, then the queue; nothing waits.
 */
/* Our <link/> hello for a new connection into buf; its length, with
 * *first set to the seq it gives. */
static size_t
sw_link_hello(sw_link_t *l, char *buf, size_t size, uint64_t *first)
{
    *first = l->q_n > 0 ? sw_link_q_at(l, 0)->seq : l->next_out;
    return (size_t) snprintf(buf, size, "<link xmlns='" SW_NS_LINK
                             "' seq='%llu' next='%llu' ack='%llu'/>",
                             (unsigned long long) *first,
                             (unsigned long long) l->next_out,
                             (unsigned long long) l->in_durable);
}

/*
 * Makes conn (its layers set up, xs its parser) the link's connection:
 * the old one, if any, is closed, and everything starts at once: our
 * hello (unless it went out while conn was pending), then the queue;
 * nothing waits.
 */
static void
sw_link_take(sw_link_t *l, sw_conn_t *conn, sw_xmlstream_t *xs,
             bool we_opened, bool hello_sent)
{
    char      hello[200];
    size_t    n;
    uint64_t  first;

    if (l->conn != NULL) {
        sw_log_info("link %s: switching to the new connection", l->name);
        l->st.wire_out += sw_conn_bytes_out(l->conn);
        l->st.wire_in += sw_conn_bytes_in(l->conn);
        sw_conn_set_data(l->conn, NULL);
        sw_conn_close(l->conn, false);
        l->conn = NULL;
        sw_xmlstream_free(l->xs);
        l->xs = NULL;
    }
    uv_timer_stop(&l->retry);
    l->conn = conn;
    l->xs = xs;
    l->we_opened = we_opened;
    l->in_next = l->in_delivered + 1;   /* until the peer says otherwise */
    n = sw_link_hello(l, hello, sizeof(hello), &first);
    if (hello_sent) {
        /* what went in the hello then; a gap since is renumbered */
        first = l->pend_first;
    }
    l->written = first - 1;
    l->backoff = l->conf.reconnect_min;
    l->last_rx = l->last_tx = l->conn_since = uv_now(sw_loop());
    if (l->ever_up) {
        l->st.reconnects++;
    }
    l->ever_up = true;
    sw_log_info("link %s: %s (%s, %s); resending %zu stanzas from %llu",
                l->name, l->tls ? "connected, TLS handshake under way" : "up",
                sw_conn_peer(conn), we_opened ? "we opened" : "they opened",
                l->q_n, (unsigned long long) first);
    if (hello_sent) {
        l->in_acked = l->pend_ack;
    } else {
        sw_link_write(l, hello, n);
        l->in_acked = l->in_durable;
    }
    sw_link_output(l);
}

/* The pending connection proved to be the peer's: it replaces the live
 * one, and its parser goes on with the link's own callbacks. */
static void
sw_link_promote(sw_link_t *l)
{
    sw_conn_t      *conn = l->pend;
    sw_xmlstream_t *xs = l->pend_xs;

    l->pend = NULL;
    l->pend_xs = NULL;
    sw_xmlstream_set_callbacks(xs, &sw_link_xs_cb);
    sw_link_take(l, conn, xs, false, true);
}

static void
sw_link_pend_close(sw_link_t *l, const char *why)
{
    sw_log_warn("link %s: closing a new connection from %s: %s; the live "
                "one stays", l->name, sw_conn_peer(l->pend), why);
    sw_xmlstream_pause(l->pend_xs);
    sw_conn_close(l->pend, false);
}

/* The first element on a pending connection must be a valid hello. */
static void
sw_link_pend_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_t      *l = ud;
    sw_link_wire_t  w;

    if (sw_link_wire_parse(el, &w) == SW_OK && w.kind == SW_LINK_WIRE_HELLO)
    {
        sw_link_promote(l);
        sw_link_on_element(l, el, pool);
        return;
    }
    sw_pool_free(pool);
    sw_link_pend_close(l, "it did not start with a valid <link/> hello");
}

static void
sw_link_pend_on_close(void *ud)
{
    sw_link_pend_close(ud, "the stream ended");
}

static void
sw_link_pend_on_error(void *ud, const char *cond, const char *text)
{
    (void) text;
    sw_link_pend_close(ud, cond);
}

static const sw_xmlstream_cb_t sw_link_pend_xs_cb = {
    .element = sw_link_pend_on_element,
    .close = sw_link_pend_on_close,
    .error = sw_link_pend_on_error,
};

int
sw_link_attach(sw_link_t *l, sw_conn_t *conn, bool we_opened)
{
    sw_xml_limits_t lim;
    sw_xmlstream_t *xs;
    bool            pending = false;

    if (we_opened) {
        l->connecting = false;
    }
    if (l->conn != NULL) {
        /* Opens by both ends within a few seconds are simultaneous: both
         * ends keep the same one.  A later one, or a second one by the
         * same end, is a reconnect or a probe by an end that found the
         * old connection dead: it replaces the old. */
        bool keep_new = we_opened == l->we_opened
                        || uv_now(sw_loop()) - l->conn_since > SW_LINK_SIMUL_MS
                        || we_opened == sw_link_prefer_ours(l);

        if (!keep_new) {
            sw_log_info("link %s: simultaneous open: keeping the existing "
                        "connection", l->name);
            sw_conn_set_callbacks(conn, &sw_link_conn_cb, NULL);
            sw_conn_close(conn, false);
            return SW_DECLINED;
        }
        /*
         * One we opened went to the peer's configured address.  One they
         * opened has only its source address to show: it replaces the
         * live connection once it has proved more, by a TLS handshake
         * (with the pin or CA check) or, on a plain link, by a valid
         * <link/> hello as its first element.  Until then it is pending
         * and we send it nothing.
         */
        pending = !we_opened;
    }
    if (l->pend != NULL) {
        /* one pending at a time: the newest */
        sw_link_pend_close(l, "a newer one came");
        sw_conn_set_data(l->pend, NULL);
        l->pend = NULL;
        sw_xmlstream_free(l->pend_xs);
        l->pend_xs = NULL;
    }
    sw_conn_set_callbacks(conn, &sw_link_conn_cb, l);
    /* socket <- TLS <- DEFLATE <- XML: what we write now waits inside
     * TLS until the handshake (and the pin check) succeeds */
    if (l->tls != NULL
        && sw_conn_start_tls(conn, l->tls, !we_opened, NULL, NULL, 0)
           != SW_OK)
    {
        sw_log_error("link %s: cannot start TLS", l->name);
        sw_conn_close(conn, false);
        return SW_ERROR;
    }
    if (l->conf.compression
        && sw_conn_start_deflate(conn, (int) l->conf.compression_level,
                                 l->dict, l->dict_len) != SW_OK)
    {
        sw_log_error("link %s: cannot start DEFLATE", l->name);
        sw_conn_close(conn, false);
        return SW_ERROR;
    }
    sw_server_xml_limits(&lim);
    xs = sw_xmlstream_new(&lim, pending ? &sw_link_pend_xs_cb
                                        : &sw_link_xs_cb, l);
    /* XEP-0361: no stream header; the implied one is jabber:server */
    sw_xmlstream_imply_open(xs, SW_NS_SERVER);
    if (pending) {
        char    hello[200];
        size_t  n = sw_link_hello(l, hello, sizeof(hello), &l->pend_first);

        l->pend = conn;
        l->pend_xs = xs;
        l->pend_since = uv_now(sw_loop());
        l->pend_ack = l->in_durable;
        sw_log_info("link %s: a new connection from %s waits to prove it "
                    "is the peer's", l->name, sw_conn_peer(conn));
        /*
         * Our hello goes at once (numbers only, nothing of the queue):
         * the peer's own checks (its DEFLATE dictionary, its TLS) then
         * see this side too, and say so in its log.
         */
        sw_conn_write(conn, hello, n);
        sw_conn_flush(conn);
        l->st.bytes_out += n;
        return SW_OK;
    }
    sw_link_take(l, conn, xs, we_opened, false);
    return SW_OK;
}

/* ----------------------------------------------------------- timers --- */

static void
sw_link_expire(sw_link_t *l, int64_t now)
{
    sw_storage_t *s = sw_link_store();
    size_t        i;

    /* Only what the peer has not been sent can expire: a stanza already
     * on the wire may have been delivered (its ack is on the way). */
    for (i = 0; i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);
        sw_stanza_t     *st;

        if (it->seq <= l->written || it->expires == 0 || it->expires > now) {
            continue;
        }
        st = sw_link_q_stanza(l, i);
        if (s != NULL) {
            sw_link_batch_begin();
            s->link_queue_remove(s, l->name, it->seq);
        }
        sw_log_info("link %s: stanza %llu expired in the queue", l->name,
                    (unsigned long long) it->seq);
        sw_link_q_remove(l, i);
        i--;                /* item i is the next one now */
        if (st != NULL) {
            if (sw_link_is_state(st)) {
                sw_stanza_unref(st);    /* old state: just drop it */
            } else {
                /* RFC 6120 §8.3.3.17 */
                sw_route_bounce(st, "remote-server-timeout",
                                "the link to that server was down too long");
            }
        }
    }
}

/*
 * Counters for operators: data_dir/links.json, rewritten atomically every
 * few seconds; `skywavectl links` prints it.
 */
static void
sw_link_write_stats(void)
{
    const sw_core_conf_t *core = sw_core_conf();
    char                  path[4096], tmp[4200];
    sw_link_stats_t       st;
    sw_link_t            *l;
    FILE                 *fp;

    if (core->data_dir == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/links.json", core->data_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        return;
    }
    fprintf(fp, "{\"time\": %lld, \"links\": [", (long long) time(NULL));
    for (l = sw_links; l != NULL; l = l->next) {
        sw_link_stats(l, &st);
        fprintf(fp, "%s\n  {\"peer\": \"%s\", \"up\": %s, "
                "\"queued\": %llu, \"stanzas_out\": %llu, "
                "\"stanzas_in\": %llu, \"duplicates_in\": %llu, "
                "\"bytes_out\": %llu, \"bytes_in\": %llu, "
                "\"wire_out\": %llu, \"wire_in\": %llu, "
                "\"reconnects\": %llu, \"protocol_errors\": %llu, "
                "\"rtt\": %.3f}",
                l == sw_links ? "" : ",", l->name, st.up ? "true" : "false",
                (unsigned long long) st.queued,
                (unsigned long long) st.stanzas_out,
                (unsigned long long) st.stanzas_in,
                (unsigned long long) st.duplicates_in,
                (unsigned long long) st.bytes_out,
                (unsigned long long) st.bytes_in,
                (unsigned long long) st.wire_out,
                (unsigned long long) st.wire_in,
                (unsigned long long) st.reconnects,
                (unsigned long long) st.protocol_errors, st.rtt);
    }
    fprintf(fp, "\n]}\n");
    if (fclose(fp) == 0) {
        rename(tmp, path);
    }
}

/* How long an ack may take before we suspect the connection: three
 * path round trips (at least 2 s), at most peer_ack_timeout. */
static double
sw_link_ack_timeout(const sw_link_t *l)
{
    double t = 3 * l->rtt_min;

    if (l->rtt_min <= 0) {
        return l->conf.ack_timeout;
    }
    if (t < 2.0) {
        t = 2.0;
    }
    return t < l->conf.ack_timeout ? t : l->conf.ack_timeout;
}

static void
sw_link_on_tick(uv_timer_t *t)
{
    static unsigned ticks;

    uint64_t   now = uv_now(sw_loop());
    int64_t    wall = (int64_t) time(NULL);
    sw_link_t *l;

    for (l = sw_links; l != NULL; l = l->next) {
        sw_link_expire(l, wall);
        sw_link_live_advance(l);
        if (l->pend != NULL
            && now - l->pend_since > (uint64_t) (1000 * l->conf.keepalive))
        {
            l->pend_since = now;        /* closing: say it once */
            sw_link_pend_close(l, "it proved nothing in time");
        }
        if (l->conn == NULL) {
            if (l->q_n > 0) {
                sw_link_connect(l);
            }
            continue;
        }
        if (l->q_n > 0 && sw_link_q_at(l, 0)->sent_at > 0
            && !l->connecting && sw_link_may_open(l)
            && now / 1000.0 - sw_link_q_at(l, 0)->sent_at
               > sw_link_ack_timeout(l)
            && sw_conn_tcp_stalled(l->conn) != 0)
        {
            /*
             * The notes' lesson (tcp-over-constrained-links.md): after an
             * outage TCP resumes only at its next backed-off retransmission,
             * up to a minute later.  A fresh connection gets through as
             * soon as the link is back; the queue is resent on it.  Only
             * when TCP itself has timed out, though: on a slow link that
             * still delivers (HF, half duplex, a long queue) probes would
             * take its capacity and every one would fail.
             */
            sw_log_info("link %s: stanza %llu unacknowledged for %.0fs: "
                        "probing with a new connection", l->name,
                        (unsigned long long) sw_link_q_at(l, 0)->seq,
                        now / 1000.0 - sw_link_q_at(l, 0)->sent_at);
            l->connecting = true;
            if (l->tp->connect(l) != SW_OK) {
                l->connecting = false;
            }
        }
        if (now - l->last_rx > (uint64_t) (3000 * l->conf.keepalive)) {
            sw_link_drop(l, "nothing received for three keepalive periods");
        } else if (now - l->last_tx > (uint64_t) (1000 * l->conf.keepalive))
        {
            sw_link_send_ack(l);        /* doubles as a keepalive */
        }
    }
    if (++ticks % 5 == 0) {
        sw_link_write_stats();
    }
    uv_check_start(&sw_link_batch, sw_link_on_batch);
}

/* -------------------------------------------------------- lifecycle --- */

static void
sw_link_first_host(sw_host_t *h, void *ud)
{
    /* sw_host_each walks newest first: the last "host" seen is the
     * first VirtualHost of the config */
    if (strcmp(h->kind, "host") == 0) {
        snprintf(sw_link_local, sizeof(sw_link_local), "%s", h->name);
    }
}

static int
sw_link_read_dict(sw_link_t *l, const sw_config_t *cfg)
{
    const char *name = l->conf.dictionary;
    char        path[4096];
    FILE       *fp;
    long        n;

    if (name == NULL || strcmp(name, "none") == 0) {
        return SW_OK;
    }
    if (strcmp(name, "default") == 0) {
        l->dict = sw_strndup(sw_link_default_dict, sw_link_default_dict_len);
        l->dict_len = sw_link_default_dict_len;
        return SW_OK;
    }
    /* relative to the config file, like every path option */
    snprintf(path, sizeof(path), "%s%s%s", name[0] == '/' ? "" : cfg->dir,
             name[0] == '/' ? "" : "/", name);
    fp = fopen(path, "rb");
    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0
        || n > 32768 || fseek(fp, 0, SEEK_SET) != 0)
    {
        sw_log_error("link %s: peer_dictionary %s: %s", l->name,
                     path, fp ? "not a readable file of at "
                     "most 32 kB (the DEFLATE window)" : strerror(errno));
        if (fp != NULL) {
            fclose(fp);
        }
        return SW_ERROR;
    }
    l->dict = sw_alloc((size_t) n + 1);
    l->dict_len = fread(l->dict, 1, (size_t) n, fp);
    fclose(fp);
    return SW_OK;
}

/* 64 hex digits, optionally in pairs separated by colons. */
static bool
sw_link_pin_valid(const char *pin)
{
    size_t digits = 0;

    for (; *pin != '\0'; pin++) {
        if (*pin == ':') {
            if (digits == 0 || digits % 2 != 0 || pin[1] == '\0') {
                return false;
            }
            continue;
        }
        if (!((*pin >= '0' && *pin <= '9') || (*pin >= 'a' && *pin <= 'f')
              || (*pin >= 'A' && *pin <= 'F')))
        {
            return false;
        }
        digits++;
    }
    return digits == 64;
}

int
sw_links_configure(sw_config_t *cfg)
{
    size_t i;
    int    rc = SW_OK;

    sw_link_domains = sw_hash_new(16);
    sw_owner_init(&sw_link_owner, "core links");
    for (i = 1; i < cfg->n_sections; i++) {
        sw_csection_t     *sec = &cfg->sections[i];
        sw_link_t         *l;
        const char *const *d;

        if (sec->scope != SW_SCOPE_PEER) {
            continue;
        }
        l = sw_calloc(1, sizeof(*l));
        l->name = sw_strdup(sec->name);
        l->next = sw_links;
        sw_links = l;
        if (sw_options_defaults(sw_peer_options, &l->conf, cfg->pool) != SW_OK
            || sw_options_apply(sw_peer_options, &l->conf, cfg, sec,
                                cfg->pool) != SW_OK)
        {
            rc = SW_ERROR;
            continue;
        }
        if (l->conf.reconnect_max < l->conf.reconnect_min) {
            sw_config_error(cfg, sec->line, "Peer \"%s\": peer_reconnect_max "
                            "is less than peer_reconnect_min", l->name);
            rc = SW_ERROR;
        }
        for (d = l->conf.domains; d != NULL && *d != NULL; d++) {
            if (sw_host_find(*d) != NULL) {
                sw_config_error(cfg, sec->line, "Peer \"%s\": domain %s is "
                                "also served here", l->name, *d);
                rc = SW_ERROR;
            } else if (sw_hash_get(sw_link_domains, *d) != NULL) {
                sw_config_error(cfg, sec->line, "Peer \"%s\": domain %s "
                                "belongs to another Peer too", l->name, *d);
                rc = SW_ERROR;
            } else {
                sw_hash_set(sw_link_domains, *d, l);
            }
        }
        if (l->conf.tls_pin != NULL && !sw_link_pin_valid(l->conf.tls_pin)) {
            sw_config_error(cfg, sec->line, "Peer \"%s\": peer_tls_pin "
                            "\"%s\" is not a SHA-256 fingerprint (64 hex "
                            "digits, colons allowed)", l->name,
                            l->conf.tls_pin);
            rc = SW_ERROR;
        }
        if (sw_link_read_dict(l, cfg) != SW_OK) {
            rc = SW_ERROR;
        }
        uv_timer_init(sw_loop(), &l->retry);
        l->retry.data = l;
        l->backoff = l->conf.reconnect_min;
    }
    if (sw_links != NULL) {
        sw_hook_add(&sw_link_owner, "route/remote", 0, sw_link_route, NULL);
    }
    sw_host_each(sw_link_first_host, NULL);
    return rc;
}

/* The least first number of a run: see SW_LINK_SEQ_PER_MS. */
static uint64_t
sw_link_seq_base(void)
{
    struct timespec ts;
    int64_t         ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = ((int64_t) ts.tv_sec - SW_LINK_SEQ_EPOCH) * 1000
         + ts.tv_nsec / 1000000;
    return ms > 0 ? (uint64_t) ms * SW_LINK_SEQ_PER_MS : 1;
}

/* After the modules loaded (transports registered): check transports,
 * load the durable state. */
static int
sw_link_load(sw_link_t *l)
{
    sw_storage_t   *s = sw_link_store();
    sw_pool_t      *pool;
    sw_link_item_t *items;
    size_t          n = 0, i, total = 0;
    uint64_t        base, from = 0;

    l->tp = sw_transport_find(l->conf.transport);
    if (l->tp == NULL) {
        sw_log_error("link %s: no transport '%s' (load mod_link_%s)",
                     l->name, l->conf.transport, l->conf.transport);
        return SW_ERROR;
    }
    if (s == NULL || s->link_queue_load == NULL) {
        sw_log_error("link %s: the storage module has no link queues",
                     l->name);
        return SW_ERROR;
    }
    if (s->link_state_get(s, l->name, &l->next_out, &l->in_delivered)
        != SW_OK)
    {
        return SW_ERROR;
    }
    /* a page at a time: only the head stays in memory */
    for (;;) {
        pool = sw_pool_new(SW_LINK_PAGE_BYTES + 4096);
        if (s->link_queue_load(s, l->name, from, SW_LINK_PAGE_BYTES, pool,
                               &items, &n) != SW_OK)
        {
            sw_pool_free(pool);
            return SW_ERROR;
        }
        if (n == 0) {
            sw_pool_free(pool);
            break;
        }
        for (i = 0; i < n; i++) {
            sw_stanza_t     *st = sw_stanza_parse(items[i].xml, items[i].len);
            sw_link_qitem_t *it;

            it = sw_link_q_append(l, items[i].seq, items[i].expires,
                                  sw_strndup(items[i].xml, items[i].len),
                                  items[i].len, st);
            if (st != NULL) {
                sw_stanza_unref(st);
            }
            /* durable already: no batch of this run may bounce it */
            it->batch = 0;
            if (it->evict) {
                sw_link_q_unload(l, it);
            }
            if (items[i].seq >= l->next_out) {
                l->next_out = items[i].seq + 1;
            }
            from = items[i].seq + 1;
        }
        total += n;
        sw_pool_free(pool);
    }
    l->sent_max = l->next_out > 0 ? l->next_out - 1 : 0;
    /* What the last run wrote may have been delivered: like what the
     * last connection wrote, it does not expire (sw_link_expire). */
    l->written = l->sent_max;
    l->in_durable = l->in_delivered;
    base = sw_link_seq_base();
    if (l->next_out < base) {
        l->next_out = base;
    }
    l->run_base = l->next_out;
    sw_log_info("link %s: %zu stanzas queued from before; next out %llu, "
                "delivered in %llu", l->name, total,
                (unsigned long long) l->next_out,
                (unsigned long long) l->in_delivered);
    return SW_OK;
}

/* TLS for a link: our certificate (made on first start if none is
 * configured) and the peer's pinned fingerprint. */
static int
sw_link_tls_setup(sw_link_t *l)
{
    const sw_core_conf_t *core = sw_core_conf();
    const char           *cert = l->conf.tls_certificate;
    const char           *key = l->conf.tls_key;
    const char           *names[2] = { sw_link_local, NULL };
    char                  c[4096], k[4096], *fp;
    FILE                 *f;

    if (!l->conf.tls) {
        return SW_OK;
    }
    if ((cert == NULL) != (key == NULL)) {
        sw_log_error("link %s: set both peer_tls_certificate and "
                     "peer_tls_key, or neither", l->name);
        return SW_ERROR;
    }
    if (cert == NULL) {
        snprintf(c, sizeof(c), "%s/link-selfsigned.crt", core->data_dir);
        snprintf(k, sizeof(k), "%s/link-selfsigned.key", core->data_dir);
        cert = c;
        key = k;
        if ((f = fopen(c, "r")) != NULL) {
            fclose(f);
        } else if (sw_tls_make_self_signed(c, k, names) != SW_OK) {
            return SW_ERROR;
        }
    }
    fp = sw_tls_cert_fingerprint(cert);
    if (l->conf.tls_pin == NULL && l->conf.tls_ca == NULL) {
        sw_log_error("link %s: peer_tls needs peer_tls_pin (the SHA-256 "
                     "fingerprint of the peer's certificate; ours is %s) or "
                     "peer_tls_ca", l->name, fp ? fp : "unreadable");
        free(fp);
        return SW_ERROR;
    }
    l->tls = sw_tls_ctx_new(cert, key);
    if (l->tls == NULL || sw_tls_ctx_resumable(l->tls) != SW_OK) {
        free(fp);
        return SW_ERROR;
    }
    if (l->conf.tls_pin != NULL
        && sw_tls_ctx_pin_peer(l->tls, l->conf.tls_pin) != SW_OK)
    {
        sw_log_error("link %s: peer_tls_pin is not a SHA-256 fingerprint "
                     "(64 hex digits)", l->name);
        free(fp);
        return SW_ERROR;
    }
    if (l->conf.tls_ca != NULL
        && sw_tls_ctx_trust_ca(l->tls, l->conf.tls_ca, l->conf.domains[0])
           != SW_OK)
    {
        free(fp);
        return SW_ERROR;
    }
    sw_log_info("link %s: TLS; our certificate's SHA-256 is %s", l->name,
                fp ? fp : "?");
    free(fp);
    return SW_OK;
}

int
sw_links_start(void)
{
    sw_link_t *l;

    if (sw_links == NULL) {
        return SW_OK;
    }
    for (l = sw_links; l != NULL; l = l->next) {
        if (sw_link_load(l) != SW_OK || sw_link_tls_setup(l) != SW_OK) {
            return SW_ERROR;
        }
    }
    uv_check_init(sw_loop(), &sw_link_batch);
    uv_timer_init(sw_loop(), &sw_link_tick);
    uv_timer_start(&sw_link_tick, sw_link_on_tick, SW_LINK_TICK_MS,
                   SW_LINK_TICK_MS);
    sw_link_running = true;
    for (l = sw_links; l != NULL; l = l->next) {
        sw_link_connect(l);     /* zero handshake: be ready at once */
    }
    return SW_OK;
}

void
sw_links_stop(void)
{
    sw_link_t    *l;

    if (!sw_link_running) {
        return;
    }
    sw_link_commit();
    sw_link_running = false;
    for (l = sw_links; l != NULL; l = l->next) {
        uv_timer_stop(&l->retry);
        if (l->pend != NULL) {
            sw_conn_close(l->pend, false);
        }
        if (l->conn != NULL) {
            sw_link_send_ack(l);
            sw_link_write(l, "</stream:stream>", 16);
            sw_conn_close(l->conn, true);
        }
    }
    sw_link_write_stats();
    uv_timer_stop(&sw_link_tick);
    uv_close((uv_handle_t *) &sw_link_tick, NULL);
    uv_close((uv_handle_t *) &sw_link_batch, NULL);
}

void
sw_links_free(void)
{
    sw_link_t          *l, *next;
    sw_transport_reg_t *r, *rn;
    size_t              i;

    sw_owner_release(&sw_link_owner);
    for (i = 0; i < sw_link_held_n; i++) {
        sw_stanza_unref(sw_link_held[i]);
    }
    free(sw_link_held);
    sw_link_held = NULL;
    sw_link_held_n = sw_link_held_cap = 0;
    for (l = sw_links; l != NULL; l = next) {
        next = l->next;
        while (l->q_n > 0) {
            sw_link_q_remove(l, 0);
        }
        if (l->q_sender_bytes != NULL) {
            sw_hash_free(l->q_sender_bytes);
        }
        free(l->q);
        free(l->live.v);
        free(l->held.v);
        free(l->q_evict.v);
        free(l->dict);
        sw_tls_ctx_free(l->tls);
        free(l->name);
        if (l->pend_xs != NULL) {
            sw_xmlstream_free(l->pend_xs);
        }
        if (l->xs != NULL) {
            sw_xmlstream_free(l->xs);
        }
        free(l);
    }
    sw_links = NULL;
    sw_hash_free(sw_link_domains);
    sw_link_domains = NULL;
    for (r = sw_transports; r != NULL; r = rn) {
        rn = r->next;
        free(r);
    }
    sw_transports = NULL;
}
