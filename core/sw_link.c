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

#include "sw_core_int.h"
#include "sw_link_int.h"
#include "sw_link_wire.h"

/* The layer's state (extern in sw_link_int.h). */
sw_link_t          *sw_links;
sw_transport_reg_t *sw_transports;
sw_hash_t          *sw_link_domains;     /* domain -> link */
uv_check_t          sw_link_batch;
uv_timer_t          sw_link_tick;
bool                sw_link_running;
bool                sw_link_in_tx;       /* storage batch open */
uint64_t            sw_link_batch_gen = 1;  /* + 1 per commit */
sw_log_rl_t         sw_link_rl_store;
sw_stanza_t       **sw_link_held;        /* durable with the batch */
size_t              sw_link_held_n, sw_link_held_cap;
sw_owner_t          sw_link_owner;
sw_link_t          *sw_link_routing;     /* its inbound stanza is */
bool                sw_link_routing_live;  /* ... being routed, and
                                              reached a session */
bool                sw_link_routing_unstored;  /* ... or caused a stanza
                                              that could not be stored */
char                sw_link_local[256];  /* our first VirtualHost */
sw_hook_t          *sw_link_ev_up;
sw_hook_t          *sw_link_ev_down;
sw_hook_t          *sw_link_ev_gap;

static void sw_link_promote(sw_link_t *l);
static void sw_link_take(sw_link_t *l, sw_conn_t *conn, sw_xmlstream_t *xs,
                         bool we_opened, bool hello_sent);
static void sw_link_route_in(sw_link_t *l, sw_stanza_t *st);
static void sw_link_drain_end(sw_link_t *l, const char *why);
static double sw_link_ack_timeout(const sw_link_t *l);
static void sw_link_protocol_error(sw_link_t *l, const char *fmt, ...)
    SW_PRINTF(2, 3);

/* --------------------------------------------------------- registry --- */

bool
sw_link_is_up(const sw_link_t *l)
{
    return l->up;
}

sw_chain_t *
sw_link_chain(sw_link_t *l, const char *name)
{
    if (strcmp(name, "outbound") == 0) {
        return l->out_chain;
    }
    if (strcmp(name, "inbound") == 0) {
        return l->in_chain;
    }
    return NULL;
}

/*
 * link/gap: the peer's numbering skips what we delivered last.  Either
 * stanzas expired in its queue, or it restarted and began a new run
 * (sw_link_seq_base); the receiver cannot tell which.  Whoever mirrors
 * the peer's state (a presence cache) must learn it again either way.
 */
static void
sw_link_gap(sw_link_t *l, uint64_t seq)
{
    sw_link_event_t ev = { l, l->name, "the peer's numbering skips "
                           "(stanzas expired there, or it restarted)" };

    if (l->in_delivered == 0 || seq <= l->in_delivered + 1) {
        return;     /* the first contact, or nothing missing */
    }
    sw_log_debug("link %s: the peer's numbering goes from %llu to %llu",
                 l->name, (unsigned long long) l->in_delivered,
                 (unsigned long long) seq);
    sw_hook_fire(sw_link_ev_gap, &ev);
}

/* link/up and link/down, once each way. */
static void
sw_link_set_up(sw_link_t *l, bool up, const char *reason)
{
    sw_link_event_t ev = { l, l->name, up ? NULL : reason };

    if (l->up == up) {
        return;
    }
    l->up = up;
    sw_hook_fire(up ? sw_link_ev_up : sw_link_ev_down, &ev);
}

sw_transport_reg_t *
sw_transport_add(const char *name)
{
    sw_transport_reg_t *r;

    if (name == NULL || sw_transport_find(name) != NULL) {
        sw_log_error("a transport named '%s' is registered already",
                     name ? name : "(null)");
        return NULL;
    }
    r = sw_calloc(1, sizeof(*r));
    r->next = sw_transports;
    sw_transports = r;
    return r;
}

int
sw_transport_register(sw_owner_t *owner, const sw_transport_t *t)
{
    sw_transport_reg_t *r = sw_transport_add(t->name);

    if (r == NULL) {
        return SW_ERROR;
    }
    r->t = *t;
    (void) owner;       /* transports live until exit, like modules */
    return SW_OK;
}

int
sw_block_transport_register(sw_owner_t *owner,
                            const sw_block_transport_t *t)
{
    sw_transport_reg_t *r;

    if (t->mtu == NULL || t->send == NULL) {
        sw_log_error("block transport '%s': mtu and send are required",
                     t->name ? t->name : "(null)");
        return SW_ERROR;
    }
    r = sw_transport_add(t->name);
    if (r == NULL) {
        return SW_ERROR;
    }
    r->bt = *t;
    r->block = true;
    r->t = sw_link_block_adapter;
    r->t.name = r->bt.name;
    r->t.data = r;
    (void) owner;
    return SW_OK;
}

const sw_transport_t *
sw_transport_find(const char *name)
{
    sw_transport_reg_t *r;

    for (r = sw_transports; r != NULL; r = r->next) {
        if (strcmp(r->t.name, name) == 0) {
            return &r->t;
        }
    }
    return NULL;
}

void
sw_transports_start_all(int *rc)
{
    sw_transport_reg_t *r;
    int               (*start)(void *);
    void               *data;

    for (r = sw_transports; r != NULL && *rc == SW_OK; r = r->next) {
        start = r->block ? r->bt.start : r->t.start;
        data = r->block ? r->bt.data : r->t.data;
        if (start != NULL && start(data) != SW_OK) {
            sw_log_error("transport '%s' failed to start", r->t.name);
            *rc = SW_ERROR;
            return;
        }
        r->started = true;
    }
}

void
sw_transports_stop_all(void)
{
    sw_transport_reg_t *r;
    void              (*stop)(void *);

    for (r = sw_transports; r != NULL; r = r->next) {
        if (!r->started) {
            continue;
        }
        r->started = false;
        stop = r->block ? r->bt.stop : r->t.stop;
        if (stop != NULL) {
            stop(r->block ? r->bt.data : r->t.data);
        }
    }
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

/* The path round trip is kept across restarts: a restarted server
 * probes at the path's pace at once, not at the unknown path's. */
static void
sw_link_rtt_save(sw_link_t *l)
{
    sw_storage_t *s = sw_link_store();
    char          v[32];
    int           n;

    if (s == NULL || s->kv_set == NULL || l->rtt_min <= 0
        || (l->rtt_saved > 0 && l->rtt_min > 0.8 * l->rtt_saved
            && l->rtt_min < 1.25 * l->rtt_saved))
    {
        return;
    }
    n = snprintf(v, sizeof(v), "%.3f", l->rtt_min);
    if (s->kv_set(s, SW_LINK_STORE_RTT, "", l->name, v, (size_t) n)
        == SW_OK)
    {
        l->rtt_saved = l->rtt_min;
    }
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
    sw_link_rtt_save(l);
}

/*
 * The transport's own measure of the path (TCP: the kernel's least
 * round trip on the connection).  Ours comes from acks, which include
 * the peer's commit, so the transport's is never above the truth: when
 * it is above ours, ours is stale (stored from another bearer, or
 * never measured: an end that only receives gets no ack of its own) and
 * the transport's replaces it.  A faster path is left to the acks.
 * It may also be inflated: the kernel's least round trip comes from few
 * samples when a connection is young, and a peer that delays its ACKs
 * or a queue at the handshake lengthens them all.  Since probing (three
 * round trips) and an attempt's life (two) follow it, and nothing but
 * acks would bring it down, it is taken at most as half the ack
 * timeout: a path slower than that would make every ack late anyway.
 */
static void
sw_link_rtt_from_transport(sw_link_t *l)
{
    double said, r, cap = l->conf.ack_timeout / 2;

    if (l->tp == NULL || l->tp->path_rtt == NULL || l->conn == NULL) {
        return;
    }
    said = l->tp->path_rtt(l->tp->data, l, l->conn);
    r = said > cap ? cap : said;
    if (r > 0 && r > l->rtt_min) {
        sw_log_debug("link %s: path round trip %.3f s (the transport "
                     "said %.3f s%s; was %.3f)", l->name, r, said,
                     said > cap ? ", above half the ack timeout" : "",
                     l->rtt_min);
        l->rtt_min = r;
        if (l->rtt_min_next > 0 && l->rtt_min_next < r) {
            l->rtt_min_next = r;
        }
        sw_link_rtt_save(l);
    }
}

/*
 * After a simultaneous open, what we wrote on the connection that lost
 * is read by the peer to its end (doc/peer-links.md, "One connection"):
 * written again on the kept one at once, every such stanza crossed the
 * link twice (cold starts with stanzas waiting at both ends).  So it
 * waits for the peer's ack instead, and so does everything behind it
 * (order), until the drained connection ends or an ack timeout has
 * passed; then what is unacknowledged goes as before.  Nothing is
 * skipped: only what the peer acknowledged is left out (a renumbering
 * forward, sw_link_output), so this needs nothing new of the peer.
 */
static bool
sw_link_held_back(const sw_link_t *l, uint64_t seq)
{
    return l->drain_written > 0 && l->drain != NULL
           && seq <= l->drain_written
           && uv_now(sw_loop()) < l->drain_hold_until;
}

static void
sw_link_hold_end(sw_link_t *l)
{
    if (l->drain_written > 0) {
        l->drain_written = 0;
        l->dirty = true;
        sw_link_batch_begin();
    }
}

/* The peer handled everything up to h (XEP-0198 style); it held the
 * ack held seconds before sending it.  A stanza written more than once
 * gives no round-trip sample (Karn's rule, RFC 6298 §3): its ack may be
 * for the first copy, arriving just after the second left (on hf-ip a
 * probe's resend, then the ack of the first copy 30 ms later, stored a
 * round trip of 0.03 s: a restarted server then probed every 2 s, each
 * probe's SYN with its queue 1.7 s of the channel). */
static void
sw_link_acked(sw_link_t *l, uint64_t h, double held)
{
    sw_storage_t *s = sw_link_store();
    double        now = uv_now(sw_loop()) / 1000.0;
    bool          any = false;

    while (l->q_n > 0 && sw_link_q_at(l, 0)->seq <= h) {
        sw_link_qitem_t *it = sw_link_q_at(l, 0);

        if (it->seq == h && it->sent_at > 0 && !it->resent
            && !sw_link_plain(l) && now - it->sent_at - held > 0)
        {
            sw_link_rtt_sample(l, now - it->sent_at - held);
        }
        sw_link_q_remove(l, 0);
        any = true;
    }
    if (l->drain_written > 0 && h >= l->drain_written) {
        sw_link_hold_end(l);            /* read from the drained one */
    }
    if (any && s != NULL) {
        sw_link_batch_begin();
        s->link_queue_ack(s, l->name, h);
    }
}

/* ----------------------------------------------------------- output --- */

static void
sw_link_write(sw_link_t *l, const char *data, size_t len)
{
    sw_conn_write(l->conn, data, len);
    l->st.bytes_out += len;
    l->last_tx = uv_now(sw_loop());
}

/*
 * Our ack, into the connection's output.  It says how long it was held
 * after the stanza it names arrived, so that the peer's round-trip
 * samples stay the path's own.
 */
static void
sw_link_write_ack(sw_link_t *l)
{
    uint64_t now = uv_now(sw_loop());
    uint64_t held = now > l->in_durable_at ? now - l->in_durable_at : 0;
    char     buf[128];

    uv_timer_stop(&l->ack_timer);
    if (l->conn == NULL || sw_link_plain(l)) {
        return;
    }
    /* an ack promises stable storage: only what was committed */
    if (held > 0 && held <= SW_LINK_WIRE_DELAY_MAX
        && l->in_durable != l->in_acked)
    {
        snprintf(buf, sizeof(buf), "<a xmlns='" SW_NS_LINK "' h='%llu' "
                 "d='%llu'/>", (unsigned long long) l->in_durable,
                 (unsigned long long) held);
    } else {
        snprintf(buf, sizeof(buf), "<a xmlns='" SW_NS_LINK "' h='%llu'/>",
                 (unsigned long long) l->in_durable);
    }
    sw_link_write(l, buf, strlen(buf));
    l->in_acked = l->in_durable;
    l->ack_soon = false;
}

static void
sw_link_send_ack(sw_link_t *l)
{
    if (l->conn == NULL || sw_link_plain(l)) {
        return;
    }
    sw_link_write_ack(l);
    l->dirty = true;
}

/* How long our ack may wait for stanzas going the other way: at most
 * half of the peer's patience, three path round trips (at least 2 s). */
static uint64_t
sw_link_ack_delay_ms(const sw_link_t *l)
{
    double limit = 3 * l->rtt_min;

    if (limit < 2.0) {
        limit = 2.0;
    }
    if (limit > l->conf.ack_timeout) {
        limit = l->conf.ack_timeout;
    }
    limit /= 2;
    return (uint64_t) (1000 * (l->conf.ack_delay < limit ? l->conf.ack_delay
                                                         : limit));
}

static void
sw_link_on_ack_timer(uv_timer_t *t)
{
    sw_link_t *l = t->data;

    if (l->conn != NULL && l->in_durable != l->in_acked) {
        sw_link_write_ack(l);
        sw_conn_flush(l->conn);
    }
}

/*
 * The end of a chunk or batch.  A plain XEP-0361 peer acknowledges
 * nothing: what TCP delivered is done (standard S2S without stream
 * management), so the wire offset where the batch ends is noted, and
 * sw_link_confirm() drops the stanzas once TCP has had it acknowledged.
 */
static void
sw_link_flush(sw_link_t *l)
{
    sw_link_mark_t *m;

    sw_conn_flush(l->conn);
    if (!sw_link_plain(l) || l->conn == NULL
        || (l->marks_n > 0 && l->marks[l->marks_n - 1].seq >= l->written))
    {
        return;
    }
    if (l->marks_n == l->marks_cap) {
        l->marks_cap = l->marks_cap ? 2 * l->marks_cap : 16;
        l->marks = sw_realloc(l->marks, l->marks_cap * sizeof(*l->marks));
    }
    m = &l->marks[l->marks_n++];
    m->end = sw_conn_bytes_given(l->conn);
    m->seq = l->written;
}

/* Plain XEP-0361: the stanzas whose bytes TCP has delivered are done. */
static void
sw_link_confirm(sw_link_t *l)
{
    uint64_t done, seq = 0;
    size_t   i = 0;

    if (!sw_link_plain(l) || l->conn == NULL || l->marks_n == 0) {
        return;
    }
    done = sw_conn_bytes_confirmed(l->conn);
    while (i < l->marks_n && l->marks[i].end <= done) {
        seq = l->marks[i++].seq;
    }
    if (i == 0) {
        return;
    }
    l->marks_n -= i;
    memmove(l->marks, l->marks + i, l->marks_n * sizeof(*l->marks));
    sw_link_acked(l, seq, 0);
}

/*
 * A stanza out.  A message that waited (the link was down, or it goes
 * again after a reconnect) longer than SW_LINK_LATE_S carries the time
 * it was queued (XEP-0203), so that its recipient shows when it was
 * said, unless it has a delay of its own.  Skywave's link only: a plain
 * peer gets the stanza as it came.
 */
#define SW_LINK_LATE_S 10

static void
sw_link_write_item(sw_link_t *l, const sw_link_qitem_t *it)
{
    static const char end[] = "</message>";
    const size_t      n = sizeof(end) - 1;
    char              d[400], stamp[32], dom[256];
    time_t            t = (time_t) it->queued;
    struct tm         tm;
    const char       *from = it->addr ? it->addr : "";
    const char       *at = strchr(from, '@');
    size_t            k;

    /* from: the sender's domain, the server that held it */
    from = at != NULL ? at + 1 : from;
    k = strcspn(from, "/");
    if (k >= sizeof(dom)) {
        k = 0;
    }
    memcpy(dom, from, k);
    dom[k] = '\0';
    if (k == 0 || strpbrk(dom, "'<&\"") != NULL
        || it->kind != SW_STANZA_MESSAGE || sw_link_plain(l)
        || it->queued <= 0
        || (int64_t) time(NULL) - it->queued <= SW_LINK_LATE_S
        || it->len < n || memcmp(it->xml + it->len - n, end, n) != 0
        || memmem(it->xml, it->len, "urn:xmpp:delay", 14) != NULL
        || memmem(it->xml, it->len, "type='error'", 12) != NULL)
    {
        sw_link_write(l, it->xml, it->len);
        return;
    }
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(d, sizeof(d), "<delay xmlns='urn:xmpp:delay' from='%s' "
             "stamp='%s'/>", dom, stamp);
    sw_link_write(l, it->xml, it->len - n);
    sw_link_write(l, d, strlen(d));
    sw_link_write(l, end, n);
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
    if (sw_link_plain(l) && !sw_conn_tls_done(l->conn)) {
        /* the batch offsets must be those on the wire: after the
         * handshake (sw_link_on_secured goes on) */
        l->dirty = true;
        return;
    }
    for (i = sw_link_q_find_above(l, l->written); i < l->q_n; i++) {
        sw_link_qitem_t *it = sw_link_q_at(l, i);

        if (sw_link_held_back(l, it->seq)) {
            break;          /* sw_link_hold_end goes on */
        }
        if (chunk >= SW_LINK_OUT_CHUNK) {
            sw_link_flush(l);
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
        if (it->seq != l->written + 1 && !sw_link_plain(l)) {
            /* a gap (an expired stanza): renumber the peer */
            snprintf(mark, sizeof(mark), "<link xmlns='" SW_NS_LINK
                     "' seq='%llu'/>", (unsigned long long) it->seq);
            sw_link_write(l, mark, strlen(mark));
        }
        if (l->in_durable != l->in_acked) {
            sw_link_write_ack(l);       /* rides with the stanzas */
        }
        sw_link_write_item(l, it);
        chunk += it->len;
        if (it->evict) {
            sw_link_q_unload(l, it);
        }
        it->resent = it->resent || it->sent_at > 0;
        it->sent_at = now;
        l->written = it->seq;
        if (it->seq > l->sent_max) {
            l->sent_max = it->seq;
        }
        l->st.stanzas_out++;
    }
    sw_link_flush(l);
}

/* Once per loop turn: commit the storage batch, then send. */
void
sw_link_on_batch(uv_check_t *h)
{
    sw_link_t *l;

    uv_check_stop(h);
    sw_link_commit();
    for (l = sw_links; l != NULL; l = l->next) {
        /*
         * Acks are coalesced.  One ack per batch of received stanzas cost
         * a segment each way per stanza (the ack, and TCP's ACK of it) on
         * chat paced as people type.  Now an ack goes with our next
         * stanzas if any come within peer_ack_delay (at most half the
         * peer's ack timeout), at once when stanzas are waiting to be
         * written now or 64 are unacknowledged, else when the delay is
         * up.  It still names only what is committed.
         */
        if (l->conn != NULL && l->in_durable != l->in_acked) {
            uint64_t delay = sw_link_ack_delay_ms(l);

            if (delay == 0 || l->ack_soon
                || l->in_durable - l->in_acked >= 64
                || (l->dirty && l->q_n > 0
                    && sw_link_q_at(l, l->q_n - 1)->seq > l->written))
            {
                sw_link_send_ack(l);
            } else if (!uv_is_active((uv_handle_t *) &l->ack_timer)) {
                uv_timer_start(&l->ack_timer, sw_link_on_ack_timer, delay,
                               0);
            }
        }
        sw_link_confirm(l);
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

/*
 * Plain XEP-0361: what standard S2S does with a stream it cannot accept
 * (RFC 6120 §4.9): a stream error, the stream's end, and the connection
 * closed once they are out.  The queue is untouched.
 */
static void
sw_link_stream_error(sw_link_t *l, const char *cond, const char *why)
{
    sw_conn_t  *c = l->rx_conn;
    char        buf[256];
    int         n;

    sw_log_warn("link %s: %s; answering with stream error <%s/> and "
                "closing the connection", l->name, why, cond);
    l->st.protocol_errors++;
    if (c == NULL) {
        return;
    }
    n = snprintf(buf, sizeof(buf), "<stream:error><%s xmlns='"
                 SW_NS_STREAM_ERRORS "'/></stream:error></stream:stream>",
                 cond);
    if (c == l->conn) {
        sw_link_write(l, buf, (size_t) n);
        sw_xmlstream_pause(l->xs);
    } else {
        sw_conn_write(c, buf, (size_t) n);
        if (c == l->in_conn) {
            sw_xmlstream_pause(l->in_xs);
        }
    }
    l->rx_conn = NULL;
    sw_conn_close(c, true);
}

/*
 * Stops reading what the peer sends and closes the connection it came
 * on, so that the peer sends again what we have not acknowledged.  On
 * the connection being drained the live one goes too: the next one
 * starts from our durable count (doc/peer-links.md, "One connection").
 */
static void
sw_link_unread(sw_link_t *l)
{
    if (l->rx_conn != NULL && l->rx_conn == l->drain) {
        sw_xmlstream_pause(l->drain_xs);
        sw_conn_close(l->drain, false);
    } else if (l->xs != NULL) {
        sw_xmlstream_pause(l->xs);
    }
    sw_link_drop(l, "storage failed", false);
}

/*
 * The stanza numbered seq was counted (sw_link_count_in) but something it
 * caused could not be stored: a message for an offline user while the
 * disk is full is bounced, and the bounce cannot be queued for the link
 * back either.  Acknowledged, it would be lost; so the count goes back
 * to before (in this batch, which may commit for the stanzas before it),
 * seq stays held (sw_link_live_advance never moves past it) and the
 * connection closes: the peer sends it again, and again, until the disk
 * has room.  What it had already caused may happen twice (a groupchat
 * message reaching local occupants): never lost.
 */
static void
sw_link_uncount(sw_link_t *l, uint64_t seq, uint64_t before)
{
    sw_storage_t *s = sw_link_store();

    l->in_delivered = before;
    l->in_next = seq;
    if (s != NULL && sw_link_in_tx
        && s->link_state_set(s, l->name, l->next_out, before) != SW_OK)
    {
        /* the batch is likely to fail too; if it commits, a restart
         * before the peer sends seq again would take it as delivered */
        sw_log_error("link %s: cannot take back the count of stanza %llu",
                     l->name, (unsigned long long) seq);
    }
    sw_log_rl_error(&sw_link_rl_store, "link %s: stanza %llu from the peer "
                    "caused one that could not be stored: not acknowledged; "
                    "closing the connection so that it sends it again",
                    l->name, (unsigned long long) seq);
    sw_link_unread(l);
}

/*
 * The link's own count of a stanza from the peer (not with a plain
 * XEP-0361 peer): false when it is not to be delivered (delivered before,
 * or the count could not be stored).
 */
static bool
sw_link_count_in(sw_link_t *l, sw_pool_t *pool)
{
    sw_storage_t *s = sw_link_store();
    uint64_t      seq = l->in_next;

    if (seq > SW_LINK_SEQ_MAX) {
        sw_pool_free(pool);
        sw_link_protocol_error(l, "stanza number beyond %llu",
                               (unsigned long long) SW_LINK_SEQ_MAX);
        return false;
    }
    l->in_next++;
    if (seq <= l->in_delivered) {
        /* sent again after a reconnect: we have it already */
        l->st.duplicates_in++;
        sw_pool_free(pool);
        return false;
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
        sw_link_unread(l);
        return false;
    }
    l->in_delivered = seq;
    if (l->rx_conn != NULL && l->rx_conn == l->drain) {
        /* the peer holds this back from the live connection until we
         * ack it (sw_link_held_back): no ack delay */
        l->ack_soon = true;
    }
    if (sw_link_seqs_has(&l->live, seq)) {
        /*
         * Sent again after a batch that failed to commit, and it had
         * reached a client then: once is enough.  Its count is in this
         * batch; when that commits, it is acknowledged like any other.
         */
        l->st.duplicates_in++;
        sw_pool_free(pool);
        return false;
    }
    sw_link_seqs_add(&l->held, seq);    /* until it proves live below */
    return true;
}

static void
sw_link_deliver(sw_link_t *l, sw_xml_t *el, sw_pool_t *pool)
{
    uint64_t      seq = l->in_next;
    uint64_t      before = l->in_delivered;
    bool          plain = sw_link_plain(l);
    sw_stanza_t  *st;
    const char   *err = NULL;
    sw_stanza_kind_e kind;
    char          why[600];
    const char   *cond;

    if (!plain && !sw_link_count_in(l, pool)) {
        return;
    }
    l->st.stanzas_in++;
    /*
     * XEP-0361 §4: an invalid stanza is handled as standard S2S would.
     * With a plain peer that is a stream error (RFC 6120 §4.9.3.7
     * improper-addressing, .9 invalid-from, .24 unsupported-stanza-type).  A
     * Skywave peer keeps what we have not acknowledged and would send it
     * again on every connection, so there it is logged and dropped.
     */
    st = sw_stanza_new(pool, el, &err);
    if (st == NULL) {
        if (plain) {
            snprintf(why, sizeof(why), "a <%.64s/> with a malformed "
                     "address", el->name);
            sw_pool_free(pool);
            sw_link_stream_error(l, "improper-addressing", why);
            return;
        }
        sw_log_warn("link %s: dropped a stanza with a malformed address",
                    l->name);
        sw_pool_free(pool);
        return;
    }
    if (st->kind == SW_STANZA_OTHER) {
        snprintf(why, sizeof(why), "<%.64s xmlns='%.200s'/> is not a "
                 "stanza", el->name, el->ns ? el->ns : "");
        sw_stanza_unref(st);
        if (plain) {
            sw_link_stream_error(l, "unsupported-stanza-type", why);
            return;
        }
        sw_log_warn("link %s: dropped it: %s", l->name, why);
        return;
    }
    if (st->from == NULL || !sw_link_speaks_for(l, st->from->domain)) {
        snprintf(why, sizeof(why), "refused a stanza from '%.300s': the "
                 "agreement does not let this peer speak for that domain",
                 st->from ? st->from->full : "(none)");
        cond = st->from ? "invalid-from" : "improper-addressing";
        sw_stanza_unref(st);
        if (plain) {
            sw_link_stream_error(l, cond, why);
            return;
        }
        sw_log_warn("link %s: %s", l->name, why);
        return;
    }
    if (plain && st->to == NULL) {
        sw_stanza_unref(st);
        sw_link_stream_error(l, "improper-addressing", "a stanza without "
                             "'to'");
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
    sw_link_routing_unstored = false;
    sw_link_route_in(l, st);
    sw_link_routing = NULL;
    if (plain) {
        return;
    }
    if (sw_link_routing_unstored) {
        sw_link_uncount(l, seq, before);
    } else if (sw_link_routing_live && kind == SW_STANZA_MESSAGE) {
        sw_link_seqs_add(&l->live, seq);
        sw_link_seqs_remove(&l->held, seq);
    }
}

/* A peer's stanza (taken), checked, goes to its local destination. */
static void
sw_link_route_in(sw_link_t *l, sw_stanza_t *st)
{
    sw_origin_t   origin = { SW_ORIGIN_LINK, NULL, NULL };
    const char   *err = NULL;

    if (st->to == NULL || sw_host_find(st->to->domain) == NULL) {
        /* RFC 6120 §8.3.3.7: we do not serve that domain */
        sw_route_bounce(st, "item-not-found", NULL);
        return;
    }
    switch (sw_chain_run(l->in_chain, &st, l, &err)) {
    case SW_DROP:
        sw_stanza_unref(st);
        return;
    case SW_BOUNCE:
        sw_route_bounce(st, err, NULL);
        return;
    case SW_TAKEN:
        return;
    case SW_PASS:
        break;
    }
    origin.link = l;
    sw_route_from(st, &origin);
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
    l->st.protocol_errors++;
    if (l->rx_conn != NULL && l->rx_conn == l->drain) {
        sw_log_error("link %s: protocol error on the connection being "
                     "drained: %s; closing it", l->name, why);
        sw_xmlstream_pause(l->drain_xs);
        sw_conn_close(l->drain, false);
        return;
    }
    sw_log_error("link %s: protocol error: %s; closing the connection, "
                 "%zu stanzas stay queued", l->name, why, l->q_n);
    if (l->xs != NULL) {
        sw_xmlstream_pause(l->xs);
    }
    sw_link_drop(l, "protocol error", false);
}

/*
 * An acknowledgement from the peer, checked before it deletes anything:
 * a number we never sent is a protocol error, except a number from
 * before this run that we have no record of, which means our own
 * database went back (restored from a backup, or recreated) while the
 * peer delivered those stanzas: logged loudly, and honoured.
 */
static int
sw_link_take_ack(sw_link_t *l, uint64_t h, double held, const char *what)
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
    sw_link_acked(l, h, held);
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
        sw_link_gap(l, seq);
        l->in_next = seq;
        return;
    }
    if (w.has_next && next < seq) {
        sw_link_protocol_error(l, "<link/> says seq %llu but next %llu",
                               (unsigned long long) seq,
                               (unsigned long long) next);
        return;
    }
    if (w.has_next && l->in_delivered >= next && l->rx_conn != NULL
        && l->rx_conn == l->drain)
    {
        /*
         * The connection being drained is older news than the live one:
         * the peer opened it before it queued what the live one has
         * delivered since.  Not a numbering that went back: nothing on
         * it is new (the peer sends all it has not seen acknowledged on
         * the live one), and resynchronising would deliver it twice.
         */
        sw_link_drain_end(l, "it is behind the live connection");
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
        sw_hook_fire(sw_link_ev_gap, &(sw_link_event_t) {
                         l, l->name, "the peer's numbering went back" });
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
    sw_link_gap(l, seq);
    l->in_next = seq;
    sw_link_take_ack(l, ack, 0, "the peer's <link/>");
}

static void
sw_link_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_t *l = ud;
    sw_link_wire_t w;

    if (el->ns != NULL && strcmp(el->ns, SW_NS_LINK) == 0
        && sw_link_plain(l))
    {
        sw_pool_free(pool);
        sw_link_stream_error(l, "unsupported-stanza-type", "the peer "
                             "speaks Skywave's acknowledged link protocol "
                             "(set the same peer_protocol at both ends)");
        return;
    }
    if (el->ns != NULL && strcmp(el->ns, SW_NS_LINK) == 0) {
        if (strcmp(el->name, "link") == 0) {
            sw_link_on_hello(l, el);
        } else if (strcmp(el->name, "a") == 0) {
            if (sw_link_wire_parse(el, &w) != SW_OK) {
                sw_link_protocol_error(l, "malformed <a h='%s'/>",
                                       sw_xml_attr(el, "h") ?: "");
            } else {
                sw_link_take_ack(l, w.ack, w.delay / 1000.0, "<a/>");
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

/*
 * The peer's </stream:stream>: ours in answer (XEP-0361 §4, RFC 6120
 * §4.4), then the connection closes once it is out.  A Skywave peer gets
 * our last ack before it; what it has not acknowledged stays queued.
 */
static void
sw_link_on_close(void *ud)
{
    sw_link_t *l = ud;
    sw_conn_t *c = l->rx_conn;

    if (c == NULL) {
        return;
    }
    sw_log_info("link %s: the peer closed the stream; closing ours "
                "(%zu stanzas unacknowledged)", l->name, l->q_n);
    if (c == l->conn) {
        if (l->in_durable != l->in_acked) {
            sw_link_send_ack(l);        /* what is committed already */
        }
        sw_link_write(l, "</stream:stream>", 16);
        l->peer_closed = true;
    } else {
        sw_conn_write(c, "</stream:stream>", 16);
    }
    l->rx_conn = NULL;
    sw_conn_close(c, true);
}

static void
sw_link_on_error(void *ud, const char *cond, const char *text)
{
    sw_link_t *l = ud;
    char       why[256];

    snprintf(why, sizeof(why), "stream error %s: %s", cond, text);
    sw_link_drop(l, why, false);
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
        uint64_t live_next = l->in_next;

        /* may be promoted while parsing (the parser goes with it), or
         * drained (sw_link_pend_judge: the rest of this feed then runs
         * on the drain's numbering, as below) */
        l->pend_drained = false;
        sw_xmlstream_feed(l->pend_xs, data, len, NULL);
        if (l->pend_drained) {
            l->pend_drained = false;
            l->rx_conn = NULL;
            l->drain_next = l->in_next;
            l->in_next = live_next;
        }
        return;
    }
    if (c == l->drain) {
        /* its own numbering; what it carries that is new is delivered,
         * the rest is dropped as sent twice (sw_link_count_in) */
        uint64_t live_next = l->in_next;

        l->in_next = l->drain_next;
        l->rx_conn = c;
        sw_xmlstream_feed(l->drain_xs, data, len, NULL);
        l->rx_conn = NULL;
        l->drain_next = l->in_next;
        l->in_next = live_next;
        return;
    }
    l->last_rx = uv_now(sw_loop());
    l->rx_conn = c;
    if (c == l->in_conn) {
        sw_xmlstream_feed(l->in_xs, data, len, NULL);
    } else if (l->xs != NULL) {
        sw_xmlstream_feed(l->xs, data, len, NULL);
    }
    l->rx_conn = NULL;
    sw_link_confirm(l);
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
    if (c == l->drain) {
        l->drain = NULL;
        sw_xmlstream_free(l->drain_xs);
        l->drain_xs = NULL;
        sw_link_hold_end(l);    /* unread, maybe: on the live one now */
        return;
    }
    if (c == l->in_conn) {
        sw_log_info("link %s: the peer's own connection closed%s%s",
                    l->name, reason ? ": " : "", reason ? reason : "");
        l->in_conn = NULL;
        sw_xmlstream_free(l->in_xs);
        l->in_xs = NULL;
        return;
    }
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
    l->marks_n = 0;     /* unconfirmed: sent again on the next one */
    if (l->in_conn != NULL) {
        /* plain XEP-0361: the peer's own connection carries ours too */
        sw_conn_t      *in = l->in_conn;
        sw_xmlstream_t *xs = l->in_xs;

        l->in_conn = NULL;
        l->in_xs = NULL;
        sw_link_take(l, in, xs, false, false);
        return;
    }
    sw_link_set_up(l, false, reason != NULL ? reason : "closed");
    sw_link_schedule_retry(l);
}

static void
sw_link_on_secured(sw_conn_t *c, void *ud)
{
    sw_link_t *l = ud;

    if (l != NULL && c == l->pend && !l->pend_judge) {
        sw_link_promote(l);     /* the TLS handshake proved the peer */
    }
    if (l != NULL && c == l->pend) {
        return;                 /* its hello decides (sw_link_pend_judge) */
    }
    if (l != NULL) {
        sw_log_info("link %s: up (%s, %s, peer verified)",
                    l->name, sw_conn_peer(c), sw_conn_tls_desc(c));
        if (c == l->conn) {
            sw_link_set_up(l, true, NULL);
            if (sw_link_plain(l)) {
                sw_link_output(l);      /* held for the handshake */
            }
        }
    }
}

/* What waited for the kernel went out: the next chunk of the queue. */
static void
sw_link_on_drained(sw_conn_t *c, void *ud)
{
    sw_link_t *l = ud;

    if (l != NULL && c == l->conn) {
        sw_link_confirm(l);
    }
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

/* Closes the connection (the retry logic takes it from there).  reset:
 * the connection seems dead, and what its kernel holds is thrown away
 * (sw_conn_close_reset) rather than retransmitted into the link. */
void
sw_link_drop(sw_link_t *l, const char *why, bool reset)
{
    if (l->conn == NULL) {
        return;
    }
    sw_log_warn("link %s: dropping the connection: %s", l->name, why);
    if (reset) {
        sw_conn_close_reset(l->conn);
    } else {
        /* nothing to flush (an orderly close of a connection whose
         * handshake never completed would wait for it) */
        sw_conn_close(l->conn, false);
    }
}

/* ------------------------------------------------------- connecting --- */

static bool
sw_link_may_open(const sw_link_t *l)
{
    return l->conf.initiate != SW_LINK_INITIATE_THEM;
}

static bool sw_link_prefer_ours(const sw_link_t *l);
static void sw_link_on_retry(uv_timer_t *t);

/* Nothing to send on a link both ends may open (Skywave's protocol): the
 * peer opens when it has something, and this end need not. */
static bool
sw_link_idle_end(const sw_link_t *l)
{
    return l->q_n == 0 && !sw_link_plain(l)
           && l->conf.initiate == SW_LINK_INITIATE_BOTH;
}

bool
sw_link_keep_unanswered(const sw_link_t *l)
{
    return l->conn != NULL || !sw_link_idle_end(l);
}

/*
 * An idle end's attempt went unanswered: the path is down.  Attempts
 * kept into a dead path put their SYNs, and the answers to them, on the
 * link when it returns, in the way of the connection of the end that has
 * stanzas waiting (on hf-ip both ends' retransmissions filled the
 * half-duplex channel for 20 s before a cold start's first stanza
 * crossed).  So this end stops: the peer opens when it has something to
 * send; this end opens when it has, when the host says the path is back
 * (sw_link_path_up: after the head start), and otherwise once
 * peer_reconnect_max later, for a peer that never opens (a "them" there
 * against our "both", a misconfiguration; doc/peer-links.md); ten times
 * that once the peer has opened a connection to us since we started.
 */
static void
sw_link_leave_to_peer(sw_link_t *l, const char *why)
{
    double   delay;
    uint32_t r;

    uv_random(NULL, NULL, &r, sizeof(r), 0, NULL);
    delay = l->conf.reconnect_max * (0.8 + 0.4 * (r / 4294967295.0));
    if (l->peer_opens) {
        delay *= SW_LINK_FALLBACK_SLOW;
    }
    sw_log_info("link %s: %s, and nothing to send: leaving it to the peer "
                "to open (we try again in %.0f s, or when we have "
                "something to send)", l->name, why, delay);
    l->holdoff = false;
    l->passive = true;
    uv_timer_start(&l->retry, sw_link_on_retry, (uint64_t) (delay * 1000),
                   0);
}

void
sw_link_connect(sw_link_t *l)
{
    if (!sw_link_running || l->conn != NULL || l->connecting
        || !sw_link_may_open(l))
    {
        return;
    }
    if (uv_is_active((uv_handle_t *) &l->retry)) {
        if (!(l->holdoff || l->passive) || l->q_n == 0) {
            return;
        }
        uv_timer_stop(&l->retry);   /* something to send: now */
    }
    /*
     * One connection, opened once: when both ends may open and we have
     * nothing to send, the peer's connection is given a head start
     * before we open ours: peer_head_start (2 s) or two path round
     * trips if longer (its handshake must reach us: on vhf 1 s was 0.1 s
     * short), 1 s more when the peer's would win a simultaneous open, so
     * that an end with stanzas waiting opens alone: on a half-duplex
     * channel two ends opening at once queue their SYNs, answers and
     * hellos behind each other's.  Something queued meanwhile opens at
     * once (above).  A head start of 0 lets the winning end open at once.
     */
    if (!l->holdoff && !l->passive && sw_link_idle_end(l)) {
        uint64_t ms = 0;

        if (l->conf.head_start > 0) {
            ms = (uint64_t) (2000 * l->rtt_min);
            if (ms < (uint64_t) (1000 * l->conf.head_start)) {
                ms = (uint64_t) (1000 * l->conf.head_start);
            }
        }
        if (!sw_link_prefer_ours(l)) {
            ms += SW_LINK_HOLDOFF_MS;
        }
        if (ms > 0) {
            l->holdoff = true;
            uv_timer_start(&l->retry, sw_link_on_retry, ms, 0);
            return;
        }
    }
    l->holdoff = false;
    l->passive = false;
    l->connecting = true;
    if (l->tp->connect(l->tp->data, l) != SW_OK) {
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
    if (sw_link_plain(l) && l->peer_closed && l->q_n == 0) {
        /* it ended the stream: the next stanza for it opens one */
        return;
    }
    l->holdoff = false;
    l->passive = false;
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
        return 0;       /* an unknown path: not faster than the default */
    }
    if (l->conf.probe_interval > 0) {
        /* not under half a round trip: with TCP's own SYN retries each
         * attempt puts several SYNs on the link (300 ms on Iridium, with
         * no round trip known, filled it with SYNs and nothing crossed) */
        return l->conf.probe_interval > l->rtt_min / 2
               ? l->conf.probe_interval : l->rtt_min / 2;
    }
    return t < 2.0 ? 2.0 : t;
}

double
sw_link_path_rtt(const sw_link_t *l)
{
    return l->rtt_min;
}

bool
sw_link_unconfirmed(const sw_link_t *l)
{
    return l->conn != NULL && l->we_opened && l->last_rx == l->conn_since;
}

bool
sw_link_may_replace(const sw_link_t *l)
{
    double d = sw_link_connect_deadline(l);

    if (!sw_link_unconfirmed(l) || d <= 0) {
        return true;
    }
    /* its answer would have come by then */
    return l->rtt_min > 0 ? d >= 2 * l->rtt_min : d >= l->conf.ack_timeout;
}

void
sw_link_connect_failed(sw_link_t *l, const char *reason)
{
    uint64_t now = uv_now(sw_loop());

    l->connecting = false;
    sw_log_info("link %s: connecting failed: %s", l->name, reason);
    if (l->conn != NULL) {
        /* a probe the peer's host refused: the link is live, so probing
         * backs off as reconnecting does (its cost on a live link) */
        l->probe_gap = l->probe_gap <= 0 ? l->conf.reconnect_min
                                         : 2 * l->probe_gap;
        if (l->probe_gap > l->conf.reconnect_max) {
            l->probe_gap = l->conf.reconnect_max;
        }
        l->probe_at = now + (uint64_t) (1000 * l->probe_gap);
        return;
    }
    sw_link_schedule_retry(l);
}

void
sw_link_path_up(sw_link_t *l)
{
    if (!sw_link_running || !sw_link_may_open(l)) {
        return;
    }
    if (l->conn == NULL) {
        sw_log_info("link %s: the path may be back: connecting now",
                    l->name);
        l->backoff = l->conf.reconnect_min;
        if (uv_is_active((uv_handle_t *) &l->retry) && !l->holdoff) {
            uv_timer_stop(&l->retry);
        }
        l->passive = false;         /* idle: the head start applies */
        l->connecting = false;      /* the transport closed the old */
        sw_link_connect(l);
        return;
    }
    if (l->q_n > 0 && sw_link_q_at(l, 0)->sent_at > 0) {
        sw_log_info("link %s: the path may be back: probing with a new "
                    "connection (%zu stanzas unacknowledged)", l->name,
                    l->q_n);
        l->probe_gap = 0;
        l->probe_at = 0;
        l->connecting = true;
        if (l->tp->connect(l->tp->data, l) != SW_OK) {
            l->connecting = false;
        }
    }
}

static void sw_link_probe_check(sw_link_t *l, uint64_t now);

void
sw_link_connect_unanswered(sw_link_t *l)
{
    bool next = l->conn == NULL && sw_link_running && sw_link_may_open(l)
                && !uv_is_active((uv_handle_t *) &l->retry);

    l->connecting = false;
    if (next && !sw_link_keep_unanswered(l)) {
        /* the transport closed it */
        sw_link_leave_to_peer(l, "no answer");
        return;
    }
    sw_log_debug("link %s: no answer yet; the attempt stays open while "
                 "the next starts", l->name);
    if (next) {
        sw_link_connect(l);
    } else if (l->conn != NULL && sw_link_running) {
        /* with a connection, probing goes on at once (not at the next
         * tick: peer_probe_interval may be shorter than a tick) */
        sw_link_probe_check(l, uv_now(sw_loop()));
    }
}

/*
 * The transport saw the peer's connection on its way instead of opening
 * ours (mod_link_tcp: half open at our listener).  On hf-ip an idle
 * end's attempt 2 s after the host said the path was back, beside the
 * sender's half-done handshake, put a SYN a second on the half-duplex
 * channel for 8 s while the sender's ACK and stanza waited (a cold start
 * 12.8 s against a floor of 8.7 s).
 */
void
sw_link_peer_opening(sw_link_t *l)
{
    l->connecting = false;
    if (l->conn != NULL || !sw_link_running
        || uv_is_active((uv_handle_t *) &l->retry))
    {
        return;
    }
    sw_link_leave_to_peer(l, "the peer's connection to us is half open");
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

/* Ends the drained connection (not from inside its parser). */
static void
sw_link_drain_close(sw_link_t *l)
{
    if (l->drain == NULL) {
        return;
    }
    l->st.wire_out += sw_conn_bytes_out(l->drain);
    l->st.wire_in += sw_conn_bytes_in(l->drain);
    sw_conn_set_data(l->drain, NULL);
    sw_conn_close(l->drain, false);
    sw_xmlstream_free(l->drain_xs);
    l->drain = NULL;
    l->drain_xs = NULL;
    sw_link_hold_end(l);
}

static sw_xmlstream_t *sw_link_layers(sw_link_t *l, sw_conn_t *conn,
                                      bool we_opened,
                                      const sw_xmlstream_cb_t *cb);

/*
 * The connection that lost a simultaneous open is read, never written,
 * for a while: what the peer wrote on it before it learned of the other
 * (the first stanzas after a cold start, typically) is delivered now
 * instead of a round trip later, when the peer has sent it again on the
 * kept one.  Its stanzas are numbered as on any connection, so whatever
 * arrives on both is delivered once.  xs is its parser, or NULL for a
 * connection that has none yet.
 */
static void
sw_link_drain_end(sw_link_t *l, const char *why)
{
    sw_log_info("link %s: closing the connection being drained: %s",
                l->name, why);
    sw_xmlstream_pause(l->drain_xs);
    sw_conn_close(l->drain, false);
}

/*
 * A connection the peer opened proves it is the peer's (beyond its
 * source address, XEP-0361 §5) with a valid <link/> hello as its first
 * element: a pending one before it replaces the live one, a drained one
 * before anything it carries counts.
 */
#define SW_LINK_NO_HELLO "it did not start with a valid <link/> hello"

static bool
sw_link_is_hello(const sw_xml_t *el)
{
    sw_link_wire_t w;

    return sw_link_wire_parse(el, &w) == SW_OK
           && w.kind == SW_LINK_WIRE_HELLO;
}

static void
sw_link_drain_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_t *l = ud;

    if (!l->drain_proven) {
        if (!sw_link_is_hello(el)) {
            sw_pool_free(pool);
            sw_link_drain_end(l, SW_LINK_NO_HELLO);
            return;
        }
        l->drain_proven = true;
    }
    sw_link_on_element(l, el, pool);
}

static void
sw_link_drain_on_error(void *ud, const char *cond, const char *text)
{
    char why[256];

    snprintf(why, sizeof(why), "stream error %s: %s", cond, text);
    sw_link_drain_end(ud, why);
}

static const sw_xmlstream_cb_t sw_link_drain_xs_cb = {
    NULL, sw_link_drain_on_element, sw_link_on_close, sw_link_drain_on_error
};

static void
sw_link_drain(sw_link_t *l, sw_conn_t *conn, sw_xmlstream_t *xs,
              bool we_opened, uint64_t next)
{
    sw_link_drain_close(l);
    l->drain_proven = xs != NULL;
    if (xs == NULL) {
        xs = sw_link_layers(l, conn, we_opened, &sw_link_drain_xs_cb);
        if (xs == NULL) {
            return;
        }
    } else {
        sw_xmlstream_set_callbacks(xs, &sw_link_drain_xs_cb);
    }
    l->drain = conn;
    l->drain_xs = xs;
    l->drain_next = next;
    l->drain_since = uv_now(sw_loop());
}

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
 * Whether a connection opened by the other end than the current one is
 * part of one simultaneous open with it (doc/peer-links.md, "One
 * connection"), not a reconnect that replaces it: opens within
 * SW_LINK_SIMUL_MS of each other, or, when ours is the first since we
 * started and nothing at all has come on it, within three ack timeouts
 * (or path round trips, if longer) more.  On hf-ip both ends' opens at
 * a cold start arrived 20 s apart: the SYNs, the kernel's
 * retransmissions of them (1 s apart), their answers and the hellos
 * queue behind each other on a half-duplex channel.  Judged a reconnect,
 * each end kept another connection, and the two replaced each other for
 * minutes.  Not later: ours may then be a probe sent into an outage,
 * and a restarted peer's connection must replace it at once, not be
 * read beside it.  Were ours dead, the peer's would be read (drained)
 * until its drain ends, and the next would replace ours.
 */
static bool
sw_link_simultaneous_late(const sw_link_t *l)
{
    uint64_t age = uv_now(sw_loop()) - l->conn_since;
    double   more = 3 * (l->rtt_min > l->conf.ack_timeout
                         ? l->rtt_min : l->conf.ack_timeout);

    return age > SW_LINK_SIMUL_MS && l->first_conn && sw_link_unconfirmed(l)
           && age <= SW_LINK_SIMUL_MS + (uint64_t) (1000 * more);
}

static bool
sw_link_simultaneous(const sw_link_t *l)
{
    return uv_now(sw_loop()) - l->conn_since <= SW_LINK_SIMUL_MS
           || sw_link_simultaneous_late(l);
}

/* Closes the live connection, to be replaced: what its kernel still
 * holds goes again on the new one, and retransmitted into a peer that may
 * be gone (restarted, or the connection dead) it would take link time. */
static void
sw_link_close_live(sw_link_t *l)
{
    l->st.wire_out += sw_conn_bytes_out(l->conn);
    l->st.wire_in += sw_conn_bytes_in(l->conn);
    sw_conn_set_data(l->conn, NULL);
    sw_conn_close_reset(l->conn);
    l->conn = NULL;
    sw_xmlstream_free(l->xs);
    l->xs = NULL;
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

    if (l->conn != NULL && !sw_link_plain(l) && l->block == NULL
        && sw_link_simultaneous(l))
    {
        uint64_t written = l->written;
        bool     live = l->tp->stalled != NULL
                        && l->tp->stalled(l->tp->data, l, l->conn) == 0;

        sw_log_info("link %s: switching to the new connection "
                    "(simultaneous open), reading the old one to its end",
                    l->name);
        sw_link_drain(l, l->conn, l->xs, l->we_opened, l->in_next);
        l->conn = NULL;
        l->xs = NULL;
        /* what went on it waits for the peer's ack there
         * (sw_link_held_back); not when its handshake is unanswered or
         * it is timing out: then the peer may never read it */
        if (live && l->drain != NULL && l->q_n > 0
            && written >= sw_link_q_at(l, 0)->seq)
        {
            l->drain_written = written;
            l->drain_hold_until = uv_now(sw_loop())
                                  + (uint64_t) (1000
                                                * sw_link_ack_timeout(l));
        }
    }
    if (l->conn != NULL) {
        sw_log_info("link %s: switching to the new connection", l->name);
        sw_link_close_live(l);
    }
    uv_timer_stop(&l->retry);
    l->holdoff = false;
    l->probe_gap = 0;
    l->probe_at = 0;
    l->probe_said = 0;
    if (!we_opened && l->tp->cancel != NULL) {
        /* the peer reached us: our own attempts would only compete for
         * the link with this connection, and then replace it */
        l->tp->cancel(l->tp->data, l);
        l->connecting = false;
    }
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
    l->marks_n = 0;
    l->peer_closed = false;
    l->backoff = l->conf.reconnect_min;
    l->last_rx = l->last_tx = l->conn_since = uv_now(sw_loop());
    if (l->ever_up) {
        l->st.reconnects++;
    }
    l->first_conn = !l->ever_up;
    l->ever_up = true;
    sw_log_info("link %s: %s (%s, %s); resending %zu stanzas from %llu",
                l->name, l->tls ? "connected, TLS handshake under way" : "up",
                sw_conn_peer(conn), we_opened ? "we opened" : "they opened",
                l->q_n, (unsigned long long) first);
    if (hello_sent) {
        l->in_acked = l->pend_ack;
    } else {
        if (!sw_link_plain(l)) {
            sw_link_write(l, hello, n);
        }
        l->in_acked = l->in_durable;    /* a plain peer gets no acks */
    }
    if (!l->tls) {
        sw_link_set_up(l, true, NULL);  /* with TLS: once verified */
    }
    if (l->conn == conn) {
        sw_link_output(l);
        if (we_opened) {
            /* Fast Open: attached before the SYN is answered; the
             * probing cadence goes on from here */
            sw_link_probe_check(l, uv_now(sw_loop()));
        }
    }
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

/*
 * The peer's connection came late in our first connection's extended
 * simultaneous-open window (sw_link_simultaneous_late): its hello says
 * which it is.  If it acknowledges a stanza we still hold, the peer got
 * it, whether on our connection or on one before (its acks lost): the
 * peer heard from us before it opened this one, which is then a
 * reconnect (it restarted, or found ours dead) and replaces ours.
 * Judged as a simultaneous open instead, it was read to its end while
 * our message sat on our connection to the peer's previous process: on
 * hf-ip a restarted receiver got it 42 s after the link came back, not
 * 10.  Otherwise the opens crossed, and it is read to its end (drained)
 * as in any simultaneous open.  Returns whether it was drained (el
 * handled).
 */
static bool
sw_link_pend_judge(sw_link_t *l, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_wire_t  w;
    sw_conn_t      *conn = l->pend;
    sw_xmlstream_t *xs = l->pend_xs;

    l->pend_judge = false;
    if (l->conn == NULL) {
        return false;                   /* ours has gone: it is the one */
    }
    if (sw_link_wire_parse(el, &w) == SW_OK && w.has_ack && l->q_n > 0
        && sw_link_q_at(l, 0)->seq <= w.ack && w.ack <= l->sent_max)
    {
        sw_log_info("link %s: the peer's new connection acknowledges "
                    "stanza %llu, which we still held: the peer heard us "
                    "before it opened it, a reconnect, not a simultaneous "
                    "open; switching to it", l->name,
                    (unsigned long long) w.ack);
        sw_link_close_live(l);
        return false;
    }
    sw_log_info("link %s: simultaneous open: keeping the existing "
                "connection, reading the new one to its end", l->name);
    l->pend = NULL;
    l->pend_xs = NULL;
    sw_link_drain(l, conn, xs, false, l->in_delivered + 1);
    /* the rest of this feed runs on the drain's numbering (on_data) */
    l->pend_drained = true;
    l->in_next = l->drain_next;
    l->rx_conn = conn;
    sw_link_drain_on_element(l, el, pool);
    return true;
}

static void
sw_link_pend_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_link_t      *l = ud;
    sw_link_wire_t  w;
    sw_conn_t      *conn;

    if (sw_link_is_hello(el)) {
        bool judged = l->pend_judge;

        if (judged && sw_link_pend_judge(l, el, pool)) {
            return;                     /* drained */
        }
        /*
         * What the peer says it delivered goes out of the queue before
         * the rest is sent again on this connection (a restarted peer
         * whose acks were lost has them already: on Iridium each costs
         * a fraction of a second).  A number beyond what we sent is
         * left to the hello's own handling, on the connection it names.
         */
        if (sw_link_wire_parse(el, &w) == SW_OK && w.has_ack
            && w.ack <= l->sent_max)
        {
            sw_link_acked(l, w.ack, 0);
        }
        conn = l->pend;
        sw_link_promote(l);
        if (judged && l->tls && l->conn == conn && sw_conn_tls_done(conn)) {
            /* verified while its hello was awaited (sw_link_on_secured) */
            sw_log_info("link %s: up (%s, %s, peer verified)", l->name,
                        sw_conn_peer(conn), sw_conn_tls_desc(conn));
            sw_link_set_up(l, true, NULL);
        }
        sw_link_on_element(l, el, pool);
        return;
    }
    sw_pool_free(pool);
    sw_link_pend_close(l, SW_LINK_NO_HELLO);
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

/*
 * The layers of a link connection: socket <- TLS <- DEFLATE <- XML.
 * What we write before the TLS handshake (and its pin check) succeeds
 * waits inside TLS.  Returns its parser, or NULL after closing it.
 */
static sw_xmlstream_t *
sw_link_layers(sw_link_t *l, sw_conn_t *conn, bool we_opened,
               const sw_xmlstream_cb_t *cb)
{
    sw_xml_limits_t lim;
    sw_xmlstream_t *xs;

    sw_conn_set_callbacks(conn, &sw_link_conn_cb, l);
    if (l->tls != NULL
        && sw_conn_start_tls(conn, l->tls, !we_opened, NULL, NULL, 0)
           != SW_OK)
    {
        sw_log_error("link %s: cannot start TLS", l->name);
        sw_conn_close(conn, false);
        return NULL;
    }
    if (l->conf.compression
        && (l->conf.codec == SW_LINK_CODEC_ZSTD
            ? sw_conn_start_zstd(conn, (int) l->conf.compression_level,
                                 l->dict, l->dict_len)
            : sw_conn_start_deflate(conn, (int) l->conf.compression_level,
                                    l->dict, l->dict_len)) != SW_OK)
    {
        sw_log_error("link %s: cannot start compression", l->name);
        sw_conn_close(conn, false);
        return NULL;
    }
    sw_server_xml_limits(&lim);
    xs = sw_xmlstream_new(&lim, cb, l);
    /* XEP-0361: no stream header; the implied one is jabber:server */
    sw_xmlstream_imply_open(xs, SW_NS_SERVER);
    return xs;
}

/*
 * A plain XEP-0361 peer (§4): a connection is identified by its source
 * address or its TLS certificate alone, so a new one from the same end
 * replaces the old.  When both ends opened one, each sends on its own
 * and receives on the other's ("both TCP connections SHOULD be used
 * unidirectional with messages sent on the connection opened by the
 * message sender only").
 */
static int
sw_link_attach_plain(sw_link_t *l, sw_conn_t *conn, bool we_opened)
{
    sw_xmlstream_t *xs = sw_link_layers(l, conn, we_opened, &sw_link_xs_cb);
    sw_conn_t      *old;
    sw_xmlstream_t *old_xs;

    if (xs == NULL) {
        return SW_ERROR;
    }
    if (l->conn != NULL && we_opened != l->we_opened) {
        if (we_opened) {
            /* ours carries our stanzas; theirs is kept for theirs */
            old = l->conn;
            old_xs = l->xs;
            l->conn = NULL;
            l->xs = NULL;
        } else {
            old = conn;
            old_xs = xs;
        }
        if (l->in_conn != NULL) {
            sw_conn_set_data(l->in_conn, NULL);
            sw_conn_close(l->in_conn, false);
            sw_xmlstream_free(l->in_xs);
        }
        l->in_conn = old;
        l->in_xs = old_xs;
        sw_log_info("link %s: the peer opened a connection too: each end "
                    "sends on its own", l->name);
        if (!we_opened) {
            return SW_OK;
        }
    }
    sw_link_take(l, conn, xs, we_opened, false);
    return SW_OK;
}

int
sw_link_attach(sw_link_t *l, sw_conn_t *conn, bool we_opened)
{
    sw_xmlstream_t *xs;
    bool            pending = false;
    bool            judge = false;

    if (we_opened) {
        l->connecting = false;
    } else {
        l->peer_opens = true;
    }
    if (sw_link_plain(l)) {
        return sw_link_attach_plain(l, conn, we_opened);
    }
    if (l->conn != NULL) {
        /* Opens by both ends within a few seconds are simultaneous: both
         * ends keep the same one.  A later one, or a second one by the
         * same end, is a reconnect or a probe by an end that found the
         * old connection dead: it replaces the old.  So does the peer's
         * new connection over blocks once the old one carried its blocks:
         * a block connection ends without a word to the far end, and a
         * peer opens another only when it has ended its last. */
        bool keep_new = we_opened == l->we_opened
                        || !sw_link_simultaneous(l)
                        || we_opened == sw_link_prefer_ours(l)
                        || sw_link_block_heard(l->conn);

        judge = !keep_new && !we_opened && l->block == NULL
                && sw_link_simultaneous_late(l);
        if (!keep_new && !judge) {
            sw_log_info("link %s: simultaneous open: keeping the existing "
                        "connection, reading the new one to its end",
                        l->name);
            if (l->block == NULL) {
                sw_link_drain(l, conn, NULL, we_opened,
                              l->in_delivered + 1);
            } else {
                sw_conn_set_callbacks(conn, &sw_link_conn_cb, NULL);
                sw_conn_close(conn, false);
            }
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
    xs = sw_link_layers(l, conn, we_opened, pending ? &sw_link_pend_xs_cb
                                                    : &sw_link_xs_cb);
    if (xs == NULL) {
        return SW_ERROR;
    }
    if (pending) {
        char    hello[200];
        size_t  n = sw_link_hello(l, hello, sizeof(hello), &l->pend_first);

        l->pend = conn;
        l->pend_xs = xs;
        l->pend_since = uv_now(sw_loop());
        l->pend_ack = l->in_durable;
        l->pend_judge = judge;
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
                "\"rtt\": %.3f, \"folded\": %llu}",
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
                (unsigned long long) st.protocol_errors, st.rtt,
                (unsigned long long) st.folded);
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
sw_link_on_probe_timer(uv_timer_t *t)
{
    sw_link_t *l = t->data;

    if (sw_link_running && l->conn != NULL) {
        sw_link_probe_check(l, uv_now(sw_loop()));
    }
}

/*
 * With a connection and stanzas it has not acknowledged for the ack
 * timeout, a new connection beside it (see below), or, while our own
 * connection has heard nothing, one every connect deadline; at most one
 * attempt at a time, the next when the last went unanswered.
 */
static void
sw_link_probe_check(sw_link_t *l, uint64_t now)
{
    bool   due = false;
    double d;

    if (l->q_n == 0 || sw_link_q_at(l, 0)->sent_at <= 0 || l->connecting
        || !sw_link_may_open(l) || now < l->probe_at)
    {
        return;
    }
    if (sw_link_unconfirmed(l)) {
        /*
         * A connection of ours that has heard nothing yet: with Fast
         * Open it is attached at once, before its SYN is answered, so
         * this is where the probing cadence goes on (peer_probe_interval,
         * or the connect deadline) while TCP has not seen the handshake
         * through.
         */
        uint64_t at;

        d = sw_link_connect_deadline(l);
        if (d <= 0) {
            d = sw_link_ack_timeout(l);
        }
        at = l->conn_since + (uint64_t) (1000 * d);
        if (now < at) {
            uv_timer_start(&l->probe_timer, sw_link_on_probe_timer,
                           at - now, 0);
            return;
        }
        due = l->tp->stalled != NULL
              && l->tp->stalled(l->tp->data, l, l->conn) > 0;
    }
    if (!due) {
        due = now / 1000.0 - sw_link_q_at(l, 0)->sent_at
              > sw_link_ack_timeout(l)
              && (l->tp->stalled == NULL
                  || l->tp->stalled(l->tp->data, l, l->conn) != 0);
    }
    if (due) {
        /*
         * The notes' lesson (tcp-over-constrained-links.md): after an
         * outage TCP resumes only at its next backed-off retransmission,
         * up to a minute later.  A fresh connection gets through as
         * soon as the link is back; the queue is resent on it.  Only
         * when TCP itself has timed out, though: on a slow link that
         * still delivers (HF, half duplex, a long queue) probes would
         * take its capacity and every one would fail.
         */
        if (l->probe_said == 0 || now - l->probe_said >= 60000) {
            /* once a minute: probes may go several a second */
            sw_log_info("link %s: stanza %llu unacknowledged for %.0fs: "
                        "probing with a new connection", l->name,
                        (unsigned long long) sw_link_q_at(l, 0)->seq,
                        now / 1000.0 - sw_link_q_at(l, 0)->sent_at);
            l->probe_said = now;
        }
        l->connecting = true;
        if (l->tp->connect(l->tp->data, l) != SW_OK) {
            l->connecting = false;
        }
    }
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
        if (l->drain_written > 0 && now >= l->drain_hold_until) {
            sw_link_hold_end(l);        /* no ack: sent again */
        }
        if (l->drain != NULL
            && now - l->drain_since > SW_LINK_SIMUL_MS
               + (uint64_t) (3000 * l->rtt_min))
        {
            sw_link_drain_close(l);
        }
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
        sw_link_rtt_from_transport(l);
        sw_link_probe_check(l, now);
        if (sw_link_plain(l)) {
            /* a plain peer may say nothing for hours; TCP tells when a
             * connection is dead (the probes above), and RFC 6120
             * §4.6.1's whitespace keeps middleboxes from forgetting it */
            sw_link_confirm(l);
            if (l->conn != NULL
                && now - l->last_tx > (uint64_t) (1000 * l->conf.keepalive))
            {
                sw_link_write(l, " ", 1);
                sw_conn_flush(l->conn);
            }
        } else if (now - l->last_rx > (uint64_t) (3000 * l->conf.keepalive))
        {
            sw_link_drop(l, "nothing received for three keepalive periods",
                         true);
        } else if (l->block != NULL && sw_link_unconfirmed(l)
                   && now - l->conn_since
                      > (uint64_t) (1000 * sw_link_ack_timeout(l)))
        {
            /*
             * The peer answers a block connection's first block at once
             * (its hello).  Silence means it ended the connection (its
             * own block on it was lost), and took another one that we
             * refused as a simultaneous open; each end would write on a
             * connection the other has ended, every block confirmed by
             * the transport and dropped on arrival, until the keepalive
             * above (three periods).  A block link never probes.
             */
            sw_link_drop(l, "nothing heard on it from the peer within an "
                         "ack timeout", false);
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

int
sw_links_start(void)
{
    sw_link_t *l;
    int        rc = SW_OK;

    for (l = sw_links; l != NULL; l = l->next) {
        if (sw_link_load(l) != SW_OK || sw_link_tls_setup(l) != SW_OK) {
            return SW_ERROR;
        }
    }
    /* after the queues loaded: a peer's connection may come at once */
    sw_transports_start_all(&rc);
    if (rc != SW_OK || sw_links == NULL) {
        return rc;
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
        sw_transports_stop_all();
        return;
    }
    sw_link_commit();
    sw_link_running = false;
    for (l = sw_links; l != NULL; l = l->next) {
        uv_timer_stop(&l->retry);
        uv_timer_stop(&l->ack_timer);
        uv_timer_stop(&l->probe_timer);
        if (l->pend != NULL) {
            sw_conn_close(l->pend, false);
        }
        if (l->in_conn != NULL) {
            sw_conn_write(l->in_conn, "</stream:stream>", 16);
            sw_conn_close(l->in_conn, true);
        }
        if (l->drain != NULL) {
            sw_conn_close(l->drain, false);
        }
        if (l->conn != NULL && sw_link_unconfirmed(l)) {
            /* a Fast Open connection never answered: its writes wait
             * for a handshake that may never come, and so would an
             * orderly close */
            sw_conn_close(l->conn, false);
        } else if (l->conn != NULL) {
            sw_link_send_ack(l);
            sw_link_write(l, "</stream:stream>", 16);
            sw_conn_close(l->conn, true);
        }
    }
    /* after the goodbyes above went to them */
    sw_transports_stop_all();
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
        sw_link_block_free(l);
        sw_chain_free(l->out_chain);
        sw_chain_free(l->in_chain);
        free(l->dict);
        sw_tls_ctx_free(l->tls);
        free(l->name);
        if (l->pend_xs != NULL) {
            sw_xmlstream_free(l->pend_xs);
        }
        if (l->xs != NULL) {
            sw_xmlstream_free(l->xs);
        }
        if (l->in_xs != NULL) {
            sw_xmlstream_free(l->in_xs);
        }
        if (l->drain_xs != NULL) {
            sw_xmlstream_free(l->drain_xs);
        }
        free(l->marks);
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
