/*
 * The outbound queue of a peer link and the storage batch of a loop
 * turn (see sw_link_int.h, doc/peer-links.md): numbering, bounds in
 * stanzas and bytes, folding of presence, expiry, the head kept in
 * memory and the rest paged from storage, and the one transaction per
 * loop turn whose commit is what an ack promises.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sw_core_int.h"
#include "sw_link_int.h"
#include "sw_link_wire.h"

sw_storage_t *
sw_link_store(void)
{
    const sw_storage_t *s = sw_service_get(SW_STORAGE_SERVICE,
                                           SW_STORAGE_VERSION);

    return (sw_storage_t *) s;
}

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

bool
sw_link_seqs_has(const sw_link_seqs_t *q, uint64_t seq)
{
    size_t i = sw_link_seqs_above(q, seq);

    return i > 0 && q->v[i - 1] == seq;
}

void
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
void
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

sw_link_qitem_t *
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
bool
sw_link_is_state(const sw_stanza_t *st)
{
    return st->kind == SW_STANZA_PRESENCE
           && (st->type == NULL || strcmp(st->type, "unavailable") == 0);
}

/* "from\0to" of a queued stanza (full JIDs; "" for one it has not),
 * for filters (sw_link_queued_t); new, or NULL when st did not parse. */
static char *
sw_link_addr_key(const sw_stanza_t *st)
{
    const char *from, *to;
    size_t      f, t;
    char       *key;

    if (st == NULL) {
        return NULL;
    }
    from = st->from != NULL ? st->from->full : "";
    to = st->to != NULL ? st->to->full : "";
    f = strlen(from) + 1;
    t = strlen(to) + 1;
    key = sw_alloc(f + t);
    memcpy(key, from, f);
    memcpy(key + f, to, t);
    return key;
}

/* Frees a durable item's xml: it is read back from storage when needed. */
void
sw_link_q_unload(sw_link_t *l, sw_link_qitem_t *it)
{
    if (it->xml != NULL) {
        l->q_mem -= it->len;
        free(it->xml);
        it->xml = NULL;
    }
}

/* Appends a stanza (st: parsed, for its sender and addresses; NULL if it
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
    it->resent = false;
    it->queued = (int64_t) time(NULL);
    it->kind = sw_link_kind_of(xml);
    it->batch = sw_link_batch_gen;
    it->sender = sw_link_sender_of(st);
    it->addr = sw_link_addr_key(st);
    it->state = st != NULL && sw_link_is_state(st);
    it->evict = l->q_mem + len > l->conf.queue_memory;
    l->q_n++;
    l->q_kind[it->kind]++;
    l->q_bytes += len;
    l->q_mem += len;
    *sw_link_sender_bytes(l, it->sender, true) += len;
    return it;
}

/* The index of the first item numbered above seq, or l->q_n. */
size_t
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
int
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
void
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
    free(it->addr);
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
void
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
 * The queue bounds (peer_queue_max, peer_queue_max_KIND).  Returns true
 * when st was dealt with here (bounced or dropped) and is not queued.
 */
bool
sw_link_queue_full(sw_link_t *l, const sw_stanza_t *st, size_t len)
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
    return !(bytes_ok && l->q_n < (size_t) l->conf.queue_max
             && l->q_kind[st->kind] < (size_t) kind_max);
}

void
sw_link_queue_each(sw_link_t *l,
                   bool (*fn)(const sw_link_queued_t *q, void *ud), void *ud)
{
    sw_link_queued_t q;
    size_t           i;

    for (i = 0; i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);

        if (it->seq <= l->written) {
            continue;               /* on the wire: may be delivered */
        }
        q.seq = it->seq;
        q.kind = it->kind;
        q.state = it->state;
        q.from = it->addr != NULL && it->addr[0] != '\0' ? it->addr : NULL;
        q.to = it->addr != NULL ? it->addr + strlen(it->addr) + 1 : NULL;
        if (q.to != NULL && q.to[0] == '\0') {
            q.to = NULL;
        }
        q.len = it->len;
        if (!fn(&q, ud)) {
            return;
        }
    }
}

int
sw_link_queue_remove(sw_link_t *l, uint64_t seq)
{
    sw_storage_t *s = sw_link_store();
    size_t        i;

    for (i = 0; i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);

        if (it->seq != seq) {
            continue;
        }
        if (it->seq <= l->written) {
            return SW_DECLINED;
        }
        if (s != NULL) {
            sw_link_batch_begin();
            s->link_queue_remove(s, l->name, it->seq);
        }
        sw_link_q_remove(l, i);
        return SW_OK;
    }
    return SW_DECLINED;
}

static bool
sw_link_bounded(sw_link_t *l, sw_stanza_t *st, size_t len)
{
    size_t  *mine;
    char    *sender;

    if (!sw_link_queue_full(l, st, len)) {
        return false;
    }
    if (sw_link_is_state(st)) {
        /* the fold filter made room if it could (sw_link_fold.c) */
        sw_log_info("link %s: queue full: dropped presence from %s", l->name,
                    st->from ? st->from->full : "(none)");
        return true;
    }
    sender = sw_link_sender_of(st);
    mine = sw_link_sender_bytes(l, sender, false);
    free(sender);
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

/* Queues st (borrowed) for the peer: numbered, stored, bounded. */
static void
sw_link_enqueue(sw_link_t *l, sw_stanza_t *st)
{
    sw_storage_t     *s = sw_link_store();
    sw_buf_t          b;
    int64_t           expires;
    uint64_t          seq;

    sw_buf_init(&b);
    sw_xml_serialize(st->xml, &b, SW_NS_SERVER);
    if (sw_link_bounded(l, st, b.len)) {
        sw_buf_free(&b);
        return;
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
            sw_buf_free(&b);
            if (sw_link_routing != NULL && !sw_link_plain(sw_link_routing)) {
                /*
                 * Caused by a stanza from a peer that keeps what we do
                 * not acknowledge: that one is not acknowledged
                 * (sw_link_uncount) and comes again.  No bounce: it
                 * could not be stored either, and would tell the sender
                 * of a failure when the stanza is only late.
                 */
                sw_link_routing_unstored = true;
                return;
            }
            sw_log_rl_error(&sw_link_rl_store, "link %s: could not store a "
                            "stanza for the peer; bounced to its sender",
                            l->name);
            sw_route_bounce(sw_stanza_ref(st), "resource-constraint",
                            "the server cannot store the message now");
            return;
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
}

/* route/remote: stanzas for a domain a peer speaks for. */
int
sw_link_route(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sw_link_t        *l = sw_hash_get(sw_link_domains, ev->domain);
    sw_stanza_t      *st;
    const char       *cond = NULL;

    (void) ud;
    if (l == NULL) {
        return SW_DECLINED;
    }
    if (sw_link_is_ephemeral(ev->stanza) && l->conn == NULL) {
        return SW_OK;
    }
    st = sw_stanza_ref(ev->stanza);     /* the chain's to change or take */
    switch (sw_chain_run(l->out_chain, &st, l, &cond)) {
    case SW_DROP:
        sw_stanza_unref(st);
        return SW_OK;
    case SW_BOUNCE:
        sw_route_bounce(st, cond, NULL);
        return SW_OK;
    case SW_TAKEN:
        return SW_OK;
    case SW_PASS:
        break;
    }
    sw_link_enqueue(l, st);
    sw_stanza_unref(st);
    return SW_OK;
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
void
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
            sw_link_drop(l, "storage failed", false);
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
            if (l->in_durable != l->in_delivered) {
                l->in_durable_at = uv_now(sw_loop());
            }
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

void
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
int
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
    if (l->conf.protocol == SW_LINK_PROTOCOL_XEP0361
        && l->tp->connect == sw_link_block_adapter.connect)
    {
        sw_log_error("link %s: peer_protocol \"xep0361\" needs a stream "
                     "transport; '%s' carries blocks, which only Skywave's "
                     "own protocol can recover from", l->name,
                     l->conf.transport);
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
    if (s->kv_get != NULL) {
        sw_storage_value_t v;

        pool = sw_pool_new(256);
        if (s->kv_get(s, SW_LINK_STORE_RTT, "", l->name, pool, &v) == SW_OK
            && v.len > 0 && v.len < 32)
        {
            double rtt = strtod(v.data, NULL);

            if (rtt > 0 && rtt < 600) {
                l->rtt_min = l->rtt_saved = rtt;
                l->rtt_window = uv_now(sw_loop());
                sw_log_info("link %s: path round trip %.2f s, as last "
                            "measured", l->name, rtt);
            }
        }
        sw_pool_free(pool);
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
            it->queued = items[i].stamp;
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
