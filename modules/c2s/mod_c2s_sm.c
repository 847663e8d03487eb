/*
 * XEP-0198 stream management for client sessions: acks, and resumption
 * of a session whose connection broke (a flaky LAN, a radio hop).  While
 * a session waits to be resumed it stays bound: stanzas for it queue,
 * unacknowledged, and are sent when the client comes back.  A session
 * that ends with stanzas unacknowledged gives them back to the router
 * (XEP-0198 §5: like a stanza to an unavailable resource), so mod_im
 * delivers them to another resource or stores them offline.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mod_c2s.h"

#define MOD_C2S_SM_REQUEST_EVERY 5      /* unacked stanzas before <r/> */

static void
mod_c2s_sm_send(mod_c2s_conn_t *c, const char *name, const char *h,
                const char *id, const char *max, const char *cond)
{
    sw_pool_t *pool = sw_pool_new(256);
    sw_xml_t  *x = sw_xml_new(pool, MOD_C2S_NS_SM, name);

    if (h != NULL) {
        sw_xml_set_attr(x, "h", h);
    }
    if (id != NULL) {
        sw_xml_set_attr(x, name[0] == 'e' ? "id" : "previd", id);
    }
    if (max != NULL) {
        sw_xml_set_attr(x, "resume", "true");
        sw_xml_set_attr(x, "max", max);
    }
    if (cond != NULL) {
        sw_xml_add(x, SW_NS_STANZA_ERRORS, cond);
    }
    mod_c2s_send_xml(c, x);
    sw_pool_free(pool);
}

static void
mod_c2s_sm_failed(mod_c2s_conn_t *c, const char *cond)
{
    mod_c2s_sm_send(c, "failed", NULL, NULL, NULL, cond);
}

/* Drops acknowledged stanzas: the client has handled up to h. */
static int
mod_c2s_sm_ack(mod_c2s_conn_t *c, uint32_t h)
{
    uint32_t n = h - c->sm_acked;       /* mod 2^32, XEP-0198 §4 */

    if (n > c->sm_queued) {
        return SW_ERROR;
    }
    while (n-- > 0) {
        mod_c2s_sm_item_t *it = &c->sm_queue[c->sm_head];

        sw_stanza_unref(it->stanza);
        it->stanza = NULL;
        c->sm_bytes -= it->size;
        c->sm_head = (c->sm_head + 1) % c->sm_cap;
        c->sm_queued--;
        c->sm_acked++;
    }
    return SW_OK;
}

static bool
mod_c2s_sm_parse_h(sw_xml_t *el, uint32_t *h)
{
    const char    *s = sw_xml_attr(el, "h");
    char          *end;
    unsigned long  v;

    if (s == NULL || *s == '\0') {
        return false;
    }
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > 0xffffffffUL) {
        return false;
    }
    *h = (uint32_t) v;
    return true;
}

static void
mod_c2s_sm_request(mod_c2s_conn_t *c)
{
    sw_pool_t *pool = sw_pool_new(64);

    mod_c2s_send_xml(c, sw_xml_new(pool, MOD_C2S_NS_SM, "r"));
    sw_pool_free(pool);
}

void
mod_c2s_sm_queue(mod_c2s_conn_t *c, sw_stanza_t *st)
{
    mod_c2s_sm_item_t *it;

    if (c->sm_queued == c->sm_cap) {
        size_t             cap = c->sm_cap ? c->sm_cap * 2 : 8, i;
        mod_c2s_sm_item_t *q = sw_calloc(cap, sizeof(*q));

        for (i = 0; i < c->sm_queued; i++) {
            q[i] = c->sm_queue[(c->sm_head + i) % c->sm_cap];
        }
        free(c->sm_queue);
        c->sm_queue = q;
        c->sm_cap = cap;
        c->sm_head = 0;
    }
    it = &c->sm_queue[(c->sm_head + c->sm_queued) % c->sm_cap];
    it->stanza = sw_stanza_ref(st);
    it->stamp = time(NULL);
    it->size = sizeof(*it) + sw_pool_used(st->pool);
    c->sm_bytes += it->size;
    c->sm_queued++;
    c->sm_out++;
    if (c->conn != NULL && c->sm_queued % MOD_C2S_SM_REQUEST_EVERY == 0) {
        mod_c2s_sm_request(c);
    }
}

bool
mod_c2s_sm_over(const mod_c2s_conn_t *c)
{
    size_t max = c->c2s->conf->sm_max_bytes;

    return max != 0 && c->sm_bytes > max;
}

/* XEP-0198 §3: after resource binding, once. */
static void
mod_c2s_sm_enable(mod_c2s_conn_t *c, sw_xml_t *el)
{
    mod_c2s_conf_t *conf = c->c2s->conf;
    const char     *resume = sw_xml_attr(el, "resume");
    unsigned char   r[12];
    char            max[24];
    int             i;

    if (c->state != MOD_C2S_BOUND) {
        mod_c2s_sm_failed(c, "unexpected-request");
        return;
    }
    if (c->sm_enabled) {
        mod_c2s_stream_error(c, "policy-violation",
                             "stream management is already enabled");
        return;
    }
    c->sm_enabled = true;
    c->sm_in = c->sm_out = c->sm_acked = 0;
    if (resume != NULL && (strcmp(resume, "true") == 0
                           || strcmp(resume, "1") == 0)
        && conf->resume_timeout > 0)
    {
        uv_random(NULL, NULL, r, sizeof(r), 0, NULL);
        c->sm_id = sw_pool_alloc(c->sess.pool, 2 * sizeof(r) + 1);
        for (i = 0; i < (int) sizeof(r); i++) {
            snprintf(c->sm_id + 2 * i, 3, "%02x", r[i]);
        }
        c->sm_resumable = true;
        snprintf(max, sizeof(max), "%lld", (long long) conf->resume_timeout);
        mod_c2s_sm_send(c, "enabled", NULL, c->sm_id, max, NULL);
    } else {
        mod_c2s_sm_send(c, "enabled", NULL, NULL, NULL, NULL);
    }
}

static mod_c2s_conn_t *
mod_c2s_sm_find(mod_c2s_t *c2s, const char *id)
{
    mod_c2s_conn_t *c;

    for (c = c2s->conns; c != NULL; c = c->next) {
        if (c->sm_id != NULL && strcmp(c->sm_id, id) == 0
            && c->state != MOD_C2S_CLOSING)
        {
            return c;
        }
    }
    return NULL;
}

/* XEP-0198 §5: the new connection c takes the place of old's. */
static void
mod_c2s_sm_resume(mod_c2s_conn_t *c, sw_xml_t *el)
{
    const char     *previd = sw_xml_attr(el, "previd");
    mod_c2s_conn_t *old;
    uint32_t        h;
    char            hs[16];
    size_t          i;

    if (!c->authed || c->state == MOD_C2S_BOUND || c->sm_enabled) {
        mod_c2s_sm_failed(c, "unexpected-request");
        return;
    }
    if (previd == NULL || !mod_c2s_sm_parse_h(el, &h)) {
        mod_c2s_sm_failed(c, "bad-request");
        return;
    }
    old = mod_c2s_sm_find(c->c2s, previd);
    /* Only the same account may take a session over. */
    if (old == NULL || old == c || strcmp(old->user, c->user) != 0
        || strcmp(old->host, c->host) != 0)
    {
        mod_c2s_sm_failed(c, "item-not-found");
        return;
    }
    if (mod_c2s_sm_ack(old, h) != SW_OK) {
        mod_c2s_sm_failed(c, "unexpected-request");
        return;
    }
    if (old->conn != NULL) {
        /* XEP-0198 §5: the old stream is still open: <conflict/> */
        mod_c2s_detach(old, "conflict", "the session was resumed elsewhere");
    }
    mod_c2s_adopt(old, c);
    snprintf(hs, sizeof(hs), "%u", old->sm_in);
    mod_c2s_sm_send(old, "resumed", hs, old->sm_id, NULL, NULL);
    /* Resend what the client has not handled, oldest first. */
    for (i = 0; i < old->sm_queued; i++) {
        mod_c2s_send_xml(old,
                         old->sm_queue[(old->sm_head + i) % old->sm_cap]
                             .stanza->xml);
    }
    if (old->sm_queued > 0) {
        mod_c2s_sm_request(old);
    }
    sw_log_info("c2s %llu (%s): resumed %s with %zu stanzas to resend",
                (unsigned long long) old->sess.id, sw_conn_peer(old->conn),
                old->sess.jid->full, old->sm_queued);
}

void
mod_c2s_sm_element(mod_c2s_conn_t *c, sw_xml_t *el)
{
    uint32_t h;
    char     hs[16];

    if (strcmp(el->name, "r") == 0 && c->sm_enabled) {
        /* "handled" must mean durable: stanzas for peer links first */
        sw_link_commit();
        snprintf(hs, sizeof(hs), "%u", c->sm_in);
        mod_c2s_sm_send(c, "a", hs, NULL, NULL, NULL);
    } else if (strcmp(el->name, "a") == 0 && c->sm_enabled) {
        if (!mod_c2s_sm_parse_h(el, &h)) {
            mod_c2s_stream_error(c, "bad-format", "<a/> without a valid h");
        } else if (mod_c2s_sm_ack(c, h) != SW_OK) {
            /* XEP-0198 §6 */
            mod_c2s_stream_error(c, "undefined-condition",
                                 "handled-count-too-high");
        }
    } else if (strcmp(el->name, "enable") == 0) {
        mod_c2s_sm_enable(c, el);
    } else if (strcmp(el->name, "resume") == 0) {
        mod_c2s_sm_resume(c, el);
    } else if (strcmp(el->name, "r") == 0 || strcmp(el->name, "a") == 0) {
        mod_c2s_stream_error(c, "unsupported-stanza-type",
                             "stream management is not enabled");
    } else {
        mod_c2s_stream_error(c, "unsupported-stanza-type", NULL);
    }
}

/*
 * The session is over: what the client never acknowledged goes back to
 * the router, as if sent to an unavailable resource (XEP-0198 §4): mod_im
 * then tries other resources or offline storage.  Messages keep their
 * first delivery time (XEP-0203); IQ requests get an error; the rest
 * (presence, IQ responses) is current state the client re-learns.
 */
void
mod_c2s_sm_flush(mod_c2s_conn_t *c)
{
    char       stamp[32];
    struct tm  tm;

    while (c->sm_queued > 0) {
        mod_c2s_sm_item_t *it = &c->sm_queue[c->sm_head];
        sw_stanza_t       *st = it->stanza;

        it->stanza = NULL;
        c->sm_bytes -= it->size;
        c->sm_head = (c->sm_head + 1) % c->sm_cap;
        c->sm_queued--;
        if (st->kind == SW_STANZA_MESSAGE
            && (st->type == NULL || strcmp(st->type, "error") != 0))
        {
            sw_stanza_writable(&st);
            if (sw_xml_child(st->xml, "urn:xmpp:delay", "delay") == NULL) {
                sw_xml_t *d = sw_xml_add(st->xml, "urn:xmpp:delay", "delay");

                gmtime_r(&it->stamp, &tm);
                strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
                sw_xml_set_attr(d, "from", c->host);
                sw_xml_set_attr(d, "stamp", stamp);
            }
            sw_route(st);
        } else if (st->kind == SW_STANZA_IQ && st->type != NULL
                   && (strcmp(st->type, "get") == 0
                       || strcmp(st->type, "set") == 0))
        {
            sw_route_bounce(st, "recipient-unavailable", NULL);
        } else {
            sw_stanza_unref(st);
        }
    }
    free(c->sm_queue);
    c->sm_queue = NULL;
    c->sm_cap = 0;
}
