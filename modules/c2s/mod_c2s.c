/*
 * mod_c2s: the client service (RFC 6120).  Listens on 5222 (STARTTLS) and
 * 5223 (direct TLS, XEP-0368), negotiates TLS, SASL and resource binding,
 * then hands stanzas to the router with a verified 'from' and delivers
 * what the router gives its sessions.  IM semantics (rosters, presence,
 * message delivery rules) live in mod_im.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "mod_c2s.h"

#define MOD_C2S_HEADER_FMT                                                  \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "            \
    "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s' "    \
    "version='1.0' xml:lang='en'>"

static const sw_session_vt_t mod_c2s_session_vt;
static int mod_c2s_on_stopping(void *data, void *ud);
static void mod_c2s_free(mod_c2s_conn_t *c);
static void mod_c2s_hibernate(mod_c2s_conn_t *c);
static void mod_c2s_sm_overflow(mod_c2s_conn_t *c);

/* ------------------------------------------------------------ output --- */

void
mod_c2s_send_xml(mod_c2s_conn_t *c, const sw_xml_t *x)
{
    sw_buf_t *b = &c->c2s->out;

    if (c->state == MOD_C2S_CLOSING || c->conn == NULL) {
        return;
    }
    sw_buf_reset(b);
    sw_xml_serialize(x, b, SW_NS_CLIENT);
    sw_conn_write(c->conn, b->data, b->len);
}

static void
mod_c2s_send_raw(mod_c2s_conn_t *c, const char *s)
{
    if (c->state != MOD_C2S_CLOSING && c->conn != NULL) {
        sw_conn_write(c->conn, s, strlen(s));
    }
}

static void
mod_c2s_send_header(mod_c2s_conn_t *c, const char *from)
{
    char hdr[512];

    uv_random(NULL, NULL, hdr, 9, 0, NULL);
    snprintf(c->stream_id, sizeof(c->stream_id),
             "%02x%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned char) hdr[0], (unsigned char) hdr[1],
             (unsigned char) hdr[2], (unsigned char) hdr[3],
             (unsigned char) hdr[4], (unsigned char) hdr[5],
             (unsigned char) hdr[6], (unsigned char) hdr[7],
             (unsigned char) hdr[8]);
    snprintf(hdr, sizeof(hdr), MOD_C2S_HEADER_FMT, c->stream_id, from);
    mod_c2s_send_raw(c, hdr);
    c->header_sent = true;
}

/*
 * The session is over (not merely its connection): unregister it, so
 * mod_im broadcasts unavailable, and hand unacknowledged stanzas back to
 * the router.  Synchronous, so it happens while every module is loaded.
 */
static void
mod_c2s_session_end(mod_c2s_conn_t *c)
{
    if (c->sess_ended) {
        return;
    }
    c->sess_ended = true;
    sw_session_unregister(&c->sess);
    sw_owner_release(&c->sess.owner);
    mod_c2s_sm_flush(c);
}

/* Our close tag; the session ends; the connection closes once flushed. */
static void
mod_c2s_finish(mod_c2s_conn_t *c)
{
    mod_c2s_send_raw(c, "</stream:stream>");
    c->state = MOD_C2S_CLOSING;
    mod_c2s_session_end(c);
    if (c->conn != NULL) {
        sw_conn_close(c->conn, true);
    }
}

/* RFC 6120 §4.9: error, close tag, then close the connection. */
void
mod_c2s_stream_error(mod_c2s_conn_t *c, const char *cond, const char *text)
{
    sw_pool_t *pool;
    sw_xml_t  *e;

    if (c->state == MOD_C2S_CLOSING || c->conn == NULL) {
        return;
    }
    if (!c->header_sent) {
        /* RFC 6120 §4.9.1.2: open a stream first so the error is read */
        mod_c2s_send_header(c, c->host ? c->host : "localhost");
    }
    pool = sw_pool_new(256);
    e = sw_xml_new(pool, SW_NS_STREAMS, "error");
    sw_xml_add(e, SW_NS_STREAM_ERRORS, cond);
    if (text != NULL) {
        sw_xml_t *t = sw_xml_add(e, SW_NS_STREAM_ERRORS, "text");

        sw_xml_set_attr_ns(t, SW_NS_XML, "lang", "en");
        sw_xml_set_text(t, text);
    }
    mod_c2s_send_xml(c, e);
    sw_pool_free(pool);
    sw_log_info("c2s %llu (%s): stream error <%s/>%s%s",
                (unsigned long long) c->sess.id, sw_conn_peer(c->conn), cond,
                text ? ": " : "", text ? text : "");
    mod_c2s_finish(c);
}

static void
mod_c2s_close(mod_c2s_conn_t *c)
{
    if (c->state == MOD_C2S_CLOSING) {
        return;
    }
    if (!c->header_sent) {
        mod_c2s_send_header(c, c->host ? c->host : "localhost");
    }
    mod_c2s_finish(c);
}

/* ---------------------------------------------------------- features --- */

static void
mod_c2s_send_features(mod_c2s_conn_t *c)
{
    mod_c2s_conf_t *conf = sw_module_conf(c->c2s->mc, c->host);
    sw_pool_t      *pool = sw_pool_new(512);
    sw_xml_t       *f = sw_xml_new(pool, SW_NS_STREAMS, "features");

    if (!c->authed) {
        /* RFC 6120 §5.3.1: while TLS is mandatory, offer only TLS */
        if (!c->secured && c->c2s->tls != NULL) {
            sw_xml_t *tls = sw_xml_add(f, MOD_C2S_NS_TLS, "starttls");

            if (conf->require_encryption) {
                sw_xml_add(tls, NULL, "required");
            }
        }
        if (c->secured || !conf->require_encryption) {
            mod_c2s_sasl_features(c, f);
        }
    } else {
        sw_xml_add(f, MOD_C2S_NS_BIND, "bind");
        /* RFC 3921 session establishment, optional since RFC 6121 */
        sw_xml_add(sw_xml_add(f, MOD_C2S_NS_SESSION, "session"), NULL,
                   "optional");
        sw_xml_add(f, MOD_C2S_NS_SM, "sm");                /* XEP-0198 §2 */
        sw_hook_fire_name(SW_C2S_EV_FEATURES, f);
    }
    mod_c2s_send_xml(c, f);
    sw_pool_free(pool);
}

/* ------------------------------------------------------ stream input --- */

static void
mod_c2s_on_open(void *ud, sw_xml_t *hdr)
{
    mod_c2s_conn_t *c = ud;
    const char     *to = sw_xml_attr(hdr, "to");
    const char     *version = sw_xml_attr(hdr, "version");
    const char     *host;
    sw_host_t      *h;

    const char     *ns = sw_xml_attr(hdr, "xmlns");

    if (c->state != MOD_C2S_WAIT_HEADER) {
        mod_c2s_stream_error(c, "not-well-formed", "second stream header");
        return;
    }
    /* RFC 6120 §4.8.2: the content namespace of a client stream */
    if (ns == NULL || strcmp(ns, SW_NS_CLIENT) != 0) {
        mod_c2s_stream_error(c, "invalid-namespace",
                             "the default namespace must be jabber:client");
        return;
    }
    /* RFC 6120 §4.7.1: 'to' names the service we must be */
    host = to ? sw_jid_nameprep(c->sess.pool, to) : NULL;
    h = host ? sw_host_find(host) : NULL;
    if (h == NULL || strcmp(h->kind, "host") != 0) {
        mod_c2s_stream_error(c, "host-unknown",
                             to ? "this server does not serve that domain"
                                : "the stream header has no 'to'");
        return;
    }
    if (c->host != NULL && strcmp(c->host, host) != 0) {
        /* RFC 6120 §4.3.2: the same service on every restart */
        mod_c2s_stream_error(c, "host-unknown", "domain changed on restart");
        return;
    }
    c->host = host;
    c->sess.host = host;
    mod_c2s_send_header(c, host);
    /* RFC 6120 §4.7.5: no version means 0.9; we speak only 1.x */
    if (version == NULL || strncmp(version, "1.", 2) != 0) {
        mod_c2s_stream_error(c, "unsupported-version",
                             "XMPP 1.0 is required");
        return;
    }
    c->state = c->sess.jid ? MOD_C2S_BOUND : MOD_C2S_OPEN;
    mod_c2s_send_features(c);
}

static void
mod_c2s_on_close(void *ud)
{
    mod_c2s_conn_t *c = ud;

    /* XEP-0198 §7: a closed stream ends the session, resumable or not */
    c->clean_close = true;
    mod_c2s_close(c);
}

static void
mod_c2s_on_error(void *ud, const char *cond, const char *text)
{
    mod_c2s_stream_error(ud, cond, text);
}

static void
mod_c2s_starttls(mod_c2s_conn_t *c, sw_xml_t *el)
{
    sw_pool_t *pool;
    sw_xml_t  *x;

    if (c->secured || c->authed || c->c2s->tls == NULL) {
        /* RFC 6120 §5.4.2.2: <failure/>, then close */
        pool = sw_pool_new(128);
        x = sw_xml_new(pool, MOD_C2S_NS_TLS, "failure");
        mod_c2s_send_xml(c, x);
        sw_pool_free(pool);
        mod_c2s_send_raw(c, "</stream:stream>");
        c->state = MOD_C2S_CLOSING;
        sw_conn_close(c->conn, true);
        return;
    }
    pool = sw_pool_new(128);
    x = sw_xml_new(pool, MOD_C2S_NS_TLS, "proceed");
    mod_c2s_send_xml(c, x);
    sw_pool_free(pool);
    /* The bytes after <starttls/> are TLS: stop parsing right here. */
    c->state = MOD_C2S_STARTTLS;
    sw_xmlstream_pause(c->xs);
}

static void
mod_c2s_iq_result_xml(mod_c2s_conn_t *c, sw_xml_t *iq, sw_xml_t *payload)
{
    sw_pool_t  *pool = sw_pool_new(256);
    sw_xml_t   *r = sw_xml_new(pool, SW_NS_CLIENT, "iq");
    const char *id = sw_xml_attr(iq, "id");

    sw_xml_set_attr(r, "type", "result");
    if (id != NULL) {
        sw_xml_set_attr(r, "id", id);
    }
    if (payload != NULL) {
        sw_xml_append(r, sw_xml_copy(pool, payload));
    }
    mod_c2s_send_xml(c, r);
    sw_pool_free(pool);
}

static void
mod_c2s_iq_error_xml(mod_c2s_conn_t *c, sw_xml_t *iq, const char *cond,
                     const char *text)
{
    sw_pool_t  *pool = sw_pool_new(256);
    sw_xml_t   *r = sw_xml_new(pool, SW_NS_CLIENT, "iq");
    sw_xml_t   *e;
    const char *id = sw_xml_attr(iq, "id");

    sw_xml_set_attr(r, "type", "error");
    if (id != NULL) {
        sw_xml_set_attr(r, "id", id);
    }
    e = sw_xml_add(r, NULL, "error");
    sw_xml_set_attr(e, "type", sw_stanza_error_type(cond));
    sw_xml_add(e, SW_NS_STANZA_ERRORS, cond);
    if (text != NULL) {
        sw_xml_set_text(sw_xml_add(e, SW_NS_STANZA_ERRORS, "text"), text);
    }
    mod_c2s_send_xml(c, r);
    sw_pool_free(pool);
}

/* RFC 6120 §7: resource binding.  A taken resource is given to the new
 * session and the old one is closed with <conflict/> (§7.7.2.2 allows
 * either; a client reconnecting over a flaky link wants its name back). */
/* Resources bound for jid's account. */
static size_t
mod_c2s_resources(const sw_jid_t *jid)
{
    sw_session_t *r;
    size_t        n = 0;

    for (r = sw_sessions_of(jid->bare); r != NULL; r = r->next_resource) {
        n++;
    }
    return n;
}

static void
mod_c2s_bind(mod_c2s_conn_t *c, sw_xml_t *iq, sw_xml_t *bind)
{
    const char   *want = sw_xml_child_text(bind, MOD_C2S_NS_BIND, "resource");
    char          rnd[24];
    unsigned char r[8];
    sw_jid_t     *jid;
    sw_session_t *old;
    sw_pool_t    *pool;
    sw_xml_t     *b;

    if (want == NULL || *want == '\0') {
        /* RFC 6120 §7.6.1: the server generates one */
        uv_random(NULL, NULL, r, sizeof(r), 0, NULL);
        snprintf(rnd, sizeof(rnd), "sw-%02x%02x%02x%02x%02x%02x", r[0], r[1],
                 r[2], r[3], r[4], r[5]);
        want = rnd;
    }
    jid = sw_jid_make(c->sess.pool, c->user, c->host, want);
    if (jid == NULL) {
        /* RFC 6120 §7.7.2.1 */
        mod_c2s_iq_error_xml(c, iq, "bad-request", "invalid resource");
        return;
    }
    if (sw_session_find(jid) == NULL
        && mod_c2s_resources(jid) >= (size_t) c->c2s->conf->max_resources)
    {
        /* RFC 6120 §7.6.2.1, §13.12 item 3 */
        mod_c2s_iq_error_xml(c, iq, "resource-constraint",
                             "too many resources bound for this account");
        return;
    }
    c->sess.jid = jid;
    if (sw_session_register(&c->sess, &old) == SW_DECLINED) {
        old->vt->close(old, "conflict", "Replaced by a new connection");
        if (sw_session_register(&c->sess, &old) != SW_OK) {
            c->sess.jid = NULL;
            mod_c2s_iq_error_xml(c, iq, "conflict", NULL);
            return;
        }
    }
    c->state = MOD_C2S_BOUND;
    if (c->timer != NULL) {
        uv_timer_stop(c->timer);
    }
    pool = sw_pool_new(256);
    b = sw_xml_new(pool, MOD_C2S_NS_BIND, "bind");
    sw_xml_set_text(sw_xml_add(b, NULL, "jid"), jid->full);
    mod_c2s_iq_result_xml(c, iq, b);
    sw_pool_free(pool);
    sw_log_info("c2s %llu (%s): bound %s", (unsigned long long) c->sess.id,
                sw_conn_peer(c->conn), jid->full);
}

/* A stanza from a bound client: check and stamp 'from', then route. */
static void
mod_c2s_stanza(mod_c2s_conn_t *c, sw_xml_t *el, sw_pool_t *pool)
{
    const char  *err = NULL;
    const char  *from = sw_xml_attr(el, "from");
    sw_stanza_t *st;
    sw_jid_t     fj;
    bool         malformed_to = false;
    sw_origin_t  origin = { SW_ORIGIN_SESSION, NULL, NULL };

    /* RFC 6120 §8.1.2.1: 'from' must be the client's own JID, if given */
    if (from != NULL) {
        if (sw_jid_parse(pool, from, &fj) != SW_OK
            || (strcmp(fj.full, c->sess.jid->full) != 0
                && strcmp(fj.full, c->sess.jid->bare) != 0))
        {
            sw_pool_free(pool);
            mod_c2s_stream_error(c, "invalid-from", NULL);
            return;
        }
    }
    sw_xml_set_attr(el, "from", c->sess.jid->full);
    st = sw_stanza_new(pool, el, &err);
    if (st == NULL) {
        /* RFC 6120 §8.3.3.8: only 'to' can be malformed now */
        sw_xml_set_attr(el, "to", NULL);
        malformed_to = true;
        st = sw_stanza_new(pool, el, NULL);
        if (st == NULL) {
            sw_pool_free(pool);
            return;
        }
    }
    if (malformed_to) {
        sw_route_bounce(st, "jid-malformed", NULL);
        return;
    }
    origin.kind = SW_ORIGIN_SESSION;
    origin.session = &c->sess;
    sw_route_from(st, &origin);
}

static void
mod_c2s_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    mod_c2s_conn_t *c = ud;
    sw_xml_t       *bind;

    if (c->state == MOD_C2S_CLOSING) {
        sw_pool_free(pool);
        return;
    }
    if (el->ns != NULL && strcmp(el->ns, MOD_C2S_NS_TLS) == 0
        && strcmp(el->name, "starttls") == 0)
    {
        mod_c2s_starttls(c, el);
        sw_pool_free(pool);
        return;
    }
    if (el->ns != NULL && strcmp(el->ns, MOD_C2S_NS_SM) == 0) {
        if (!c->authed) {
            mod_c2s_stream_error(c, "not-authorized", NULL);
        } else {
            mod_c2s_sm_element(c, el);
        }
        sw_pool_free(pool);
        return;
    }
    if (el->ns != NULL && strcmp(el->ns, MOD_C2S_NS_SASL) == 0) {
        if (c->authed) {
            mod_c2s_stream_error(c, "policy-violation",
                                 "already authenticated");
        } else {
            mod_c2s_sasl_element(c, el);
        }
        sw_pool_free(pool);
        return;
    }
    if (el->ns == NULL || strcmp(el->ns, SW_NS_CLIENT) != 0
        || (strcmp(el->name, "message") && strcmp(el->name, "presence")
            && strcmp(el->name, "iq")))
    {
        /* RFC 6120 §4.9.3.10 / §4.9.3.23 */
        sw_pool_free(pool);
        mod_c2s_stream_error(c, el->ns && strcmp(el->ns, SW_NS_CLIENT) != 0
                                && strcmp(el->name, "message")
                                && strcmp(el->name, "presence")
                                && strcmp(el->name, "iq")
                                ? "unsupported-stanza-type"
                                : "invalid-namespace", NULL);
        return;
    }
    if (!c->authed) {
        sw_pool_free(pool);
        mod_c2s_stream_error(c, "not-authorized",
                             "authenticate before sending stanzas");
        return;
    }
    if (c->state != MOD_C2S_BOUND) {
        bind = strcmp(el->name, "iq") == 0
               ? sw_xml_child(el, MOD_C2S_NS_BIND, "bind") : NULL;
        if (bind != NULL && sw_xml_attr(el, "type") != NULL
            && strcmp(sw_xml_attr(el, "type"), "set") == 0)
        {
            mod_c2s_bind(c, el, bind);
        } else {
            mod_c2s_iq_error_xml(c, el, "not-authorized",
                                 "bind a resource first");
        }
        sw_pool_free(pool);
        return;
    }
    if (c->sm_enabled) {
        c->sm_in++;     /* XEP-0198 §4: handled once we take it */
    }
    if (strcmp(el->name, "iq") == 0
        && sw_xml_child(el, MOD_C2S_NS_SESSION, "session") != NULL
        && sw_xml_attr(el, "to") == NULL)
    {
        /* RFC 3921 §3: a no-op today, answered for old clients */
        mod_c2s_iq_result_xml(c, el, NULL);
        sw_pool_free(pool);
        return;
    }
    mod_c2s_stanza(c, el, pool);
}

/* -------------------------------------------------------- connection --- */

static void
mod_c2s_timer_free(uv_handle_t *h)
{
    free(h);
}

static void
mod_c2s_release(mod_c2s_t *c2s)
{
    sw_tls_ctx_free(c2s->tls);
    mod_c2s_sasl_free(c2s);
    mod_c2s_guard_free(c2s);
    sw_buf_free(&c2s->out);
    free(c2s);
}

/* Frees what the connection object holds; the session must be over (or
 * never started).  The socket is gone or belongs to someone else. */
static void
mod_c2s_free(mod_c2s_conn_t *c)
{
    mod_c2s_t *c2s = c->c2s;

    if (c->sess.presence != NULL) {
        sw_stanza_unref(c->sess.presence);
        c->sess.presence = NULL;
    }
    mod_c2s_sasl_end(c);
    mod_c2s_sm_flush(c);
    if (c->timer != NULL) {
        uv_close((uv_handle_t *) c->timer, mod_c2s_timer_free);
    }
    if (c->xs != NULL) {
        sw_xmlstream_free(c->xs);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c2s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    sw_pool_free(c->sess.pool);
    free(c);
    if (c2s->stopping && c2s->conns == NULL && c2s->mc->data == NULL) {
        mod_c2s_release(c2s);
    }
}

static void
mod_c2s_on_resume_timeout(uv_timer_t *t)
{
    mod_c2s_conn_t *c = t->data;

    sw_log_info("c2s %llu: %s was not resumed in time; session ended",
                (unsigned long long) c->sess.id, c->sess.jid->full);
    c->state = MOD_C2S_CLOSING;
    mod_c2s_session_end(c);
    mod_c2s_free(c);
}

/*
 * The unacknowledged queue passed c2s_sm_max_bytes: a client that does
 * not acknowledge, or a session nobody resumes, may not hold more.  A
 * connected one is closed (XEP-0198 §7 lets the server end it); a
 * hibernating one ends at the next loop turn (we are inside routing),
 * and its queue goes where an ended session's goes (offline storage, or
 * back to the senders).
 */
static void
mod_c2s_sm_overflow(mod_c2s_conn_t *c)
{
    sw_log_warn("c2s %llu: %s holds %zu bytes of unacknowledged stanzas, "
                "more than c2s_sm_max_bytes: ending the session",
                (unsigned long long) c->sess.id,
                c->sess.jid ? c->sess.jid->full : "?", c->sm_bytes);
    c->sm_resumable = false;
    if (c->conn != NULL) {
        mod_c2s_stream_error(c, "policy-violation",
                             "too many unacknowledged stanzas");
    } else if (c->timer != NULL) {
        uv_timer_stop(c->timer);
        uv_timer_start(c->timer, mod_c2s_on_resume_timeout, 0, 0);
    }
}

/* XEP-0198 §5: the connection broke; keep the session for a while. */
static void
mod_c2s_hibernate(mod_c2s_conn_t *c)
{
    if (c->xs != NULL) {
        sw_xmlstream_free(c->xs);
        c->xs = NULL;
    }
    uv_timer_stop(c->timer);
    uv_timer_start(c->timer, mod_c2s_on_resume_timeout,
                   (uint64_t) c->c2s->conf->resume_timeout * 1000, 0);
    sw_log_info("c2s %llu: %s waits %llds for resumption with %zu stanzas "
                "unacknowledged", (unsigned long long) c->sess.id,
                c->sess.jid->full, (long long) c->c2s->conf->resume_timeout,
                c->sm_queued);
}

void
mod_c2s_detach(mod_c2s_conn_t *c, const char *cond, const char *text)
{
    sw_conn_t *conn = c->conn;
    sw_buf_t  *b = &c->c2s->out;

    if (conn == NULL) {
        return;
    }
    sw_buf_reset(b);
    sw_buf_printf(b, "<stream:error><%s xmlns='%s'/><text xmlns='%s'>%s"
                  "</text></stream:error></stream:stream>", cond,
                  SW_NS_STREAM_ERRORS, SW_NS_STREAM_ERRORS, text);
    sw_conn_write(conn, b->data, b->len);
    sw_conn_set_data(conn, NULL);
    sw_conn_close(conn, true);
    c->conn = NULL;
    mod_c2s_guard_disconnect(c->c2s, c->addr);
    if (c->xs != NULL) {
        sw_xmlstream_free(c->xs);
        c->xs = NULL;
    }
}

void
mod_c2s_adopt(mod_c2s_conn_t *sess, mod_c2s_conn_t *shell)
{
    sess->conn = shell->conn;
    sess->xs = shell->xs;
    sess->addr = shell->addr ? sw_pool_strdup(sess->sess.pool, shell->addr)
                             : NULL;
    sw_conn_set_data(sess->conn, sess);
    sw_xmlstream_set_data(sess->xs, sess);
    sess->secured = shell->secured;
    sess->header_sent = shell->header_sent;
    sess->clean_close = false;
    sess->state = MOD_C2S_BOUND;
    memcpy(sess->stream_id, shell->stream_id, sizeof(sess->stream_id));
    uv_timer_stop(sess->timer);
    shell->conn = NULL;
    shell->xs = NULL;
    shell->moved_to = sess;
    shell->state = MOD_C2S_CLOSING;
}

static void
mod_c2s_on_data(sw_conn_t *conn, const char *data, size_t len, void *ud)
{
    mod_c2s_conn_t *c = ud, *to;
    sw_xmlstream_t *xs;
    size_t          used;
    int             rc;

    while (c != NULL && len > 0 && c->state != MOD_C2S_CLOSING) {
        xs = c->xs;
        rc = sw_xmlstream_feed(xs, data, len, &used);
        if (c->moved_to != NULL) {
            /* XEP-0198 resumption moved this stream to another session
             * while parsing: the shell goes, the rest goes there. */
            to = c->moved_to;
            mod_c2s_free(c);
            if (rc == SW_AGAIN && len > used) {
                mod_c2s_on_data(conn, data + used, len - used, to);
            }
            return;
        }
        if (rc != SW_AGAIN) {
            return;     /* SW_OK; SW_DONE and SW_ERROR closed already */
        }
        data += used;
        len -= used;
        if (c->state == MOD_C2S_STARTTLS) {
            /* Whitespace after <starttls/> still belongs to the XML stream
             * (some clients end every element with a newline); the TLS
             * ClientHello starts at the first other byte. */
            while (len > 0 && (*data == ' ' || *data == '\n'
                               || *data == '\r' || *data == '\t'))
            {
                data++;
                len--;
            }
            /* RFC 6120 §5.4.3.3: a fresh stream follows the handshake */
            sw_conn_start_tls(c->conn, c->c2s->tls, true, NULL, data, len);
            return;
        }
        if (c->reset_pending) {
            /* RFC 6120 §6.4.6: after SASL success, a new stream, with
             * the limits of an authenticated one */
            sw_xml_limits_t lim;

            c->reset_pending = false;
            sw_server_xml_limits(&lim);
            sw_xmlstream_set_limits(c->xs, &lim);
            sw_xmlstream_reset(c->xs);
            c->state = MOD_C2S_WAIT_HEADER;
        }
    }
}

static void
mod_c2s_on_secured(sw_conn_t *conn, void *ud)
{
    mod_c2s_conn_t *c = ud;

    if (c == NULL) {
        return;
    }
    c->secured = true;
    c->state = MOD_C2S_WAIT_HEADER;
    c->header_sent = false;
    sw_xmlstream_reset(c->xs);
    sw_log_debug("c2s %llu (%s): %s", (unsigned long long) c->sess.id,
                 sw_conn_peer(conn), sw_conn_tls_desc(conn));
}

static void
mod_c2s_on_closed(sw_conn_t *conn, int error, const char *reason, void *ud)
{
    mod_c2s_conn_t *c = ud;

    if (c == NULL) {
        return;     /* detached: its session lives on elsewhere */
    }
    sw_log_info("c2s %llu (%s): closed%s%s", (unsigned long long) c->sess.id,
                sw_conn_peer(conn), reason ? ": " : "", reason ? reason : "");
    c->conn = NULL;
    mod_c2s_guard_disconnect(c->c2s, c->addr);
    if (!c->sess_ended && c->state == MOD_C2S_BOUND && c->sm_resumable
        && !c->clean_close && !c->c2s->stopping)
    {
        mod_c2s_hibernate(c);
        return;
    }
    c->state = MOD_C2S_CLOSING;
    mod_c2s_session_end(c);
    mod_c2s_free(c);
}

static void
mod_c2s_on_timeout(uv_timer_t *t)
{
    mod_c2s_conn_t *c = t->data;

    if (c->state != MOD_C2S_BOUND) {
        mod_c2s_stream_error(c, "connection-timeout",
                             "stream negotiation took too long");
    }
}

static const sw_conn_cb_t mod_c2s_conn_cb = {
    .data = mod_c2s_on_data,
    .secured = mod_c2s_on_secured,
    .closed = mod_c2s_on_closed,
};

static const sw_xmlstream_cb_t mod_c2s_xs_cb = {
    .open = mod_c2s_on_open,
    .element = mod_c2s_on_element,
    .close = mod_c2s_on_close,
    .error = mod_c2s_on_error,
};

static void
mod_c2s_on_connection(sw_listener_t *ls, uv_tcp_t *tcp, const char *ip,
                      void *ud)
{
    mod_c2s_listener_t *l = ud;
    mod_c2s_t          *c2s = l->c2s;
    mod_c2s_conn_t     *c;
    sw_xml_limits_t     lim;
    sw_pool_t          *pool;
    const char         *addr;

    if (c2s->stopping) {
        sw_tcp_refuse(tcp);
        return;
    }
    pool = sw_pool_new(256);
    addr = sw_pool_strdup(pool, ip);
    if (mod_c2s_guard_connect(c2s, addr) != SW_OK) {
        sw_pool_free(pool);
        sw_tcp_refuse(tcp);
        return;
    }
    c = sw_calloc(1, sizeof(*c));
    c->addr = addr;
    c->c2s = c2s;
    c->sess.vt = &mod_c2s_session_vt;
    c->sess.transport = c;
    c->sess.pool = pool;
    c->sess.id = ++c2s->next_id;
    sw_owner_init(&c->sess.owner, "c2s session");
    /*
     * Before authentication only negotiation elements come, all small:
     * whoever can reach the port gets small limits (RFC 6120 §13.12),
     * and the full ones after SASL success.
     */
    sw_server_xml_limits(&lim);
    if (lim.max_stanza_bytes > c2s->conf->preauth_stanza_size) {
        lim.max_stanza_bytes = c2s->conf->preauth_stanza_size;
    }
    lim.max_elements = MOD_C2S_PREAUTH_ELEMENTS;
    c->xs = sw_xmlstream_new(&lim, &mod_c2s_xs_cb, c);
    c->conn = sw_conn_new(tcp, &mod_c2s_conn_cb, c);
    sw_conn_set_max_pending(c->conn, c2s->conf->max_send_buffer);
    c->next = c2s->conns;
    if (c->next != NULL) {
        c->next->prev = c;
    }
    c2s->conns = c;
    c->timer = sw_alloc(sizeof(*c->timer));
    uv_timer_init(tcp->loop, c->timer);
    c->timer->data = c;
    uv_timer_start(c->timer, mod_c2s_on_timeout,
                   (uint64_t) (c2s->conf->negotiation_timeout * 1000), 0);
    sw_log_debug("c2s %llu: connection from %s on %s",
                  (unsigned long long) c->sess.id, sw_conn_peer(c->conn),
                  sw_listener_desc(ls));
    if (l->direct_tls) {
        sw_conn_start_tls(c->conn, c2s->tls, true, NULL, NULL, 0);
    }
}

/* ----------------------------------------------------------- session --- */

static int
mod_c2s_session_send(sw_session_t *s, sw_stanza_t *st)
{
    mod_c2s_conn_t *c = s->transport;

    if (c->sess_ended) {
        return SW_ERROR;
    }
    if (c->sm_enabled) {
        /* kept until acknowledged; sent now unless hibernating */
        mod_c2s_sm_queue(c, st);
        if (mod_c2s_sm_over(c)) {
            mod_c2s_sm_overflow(c);
            return SW_OK;
        }
    } else if (c->state != MOD_C2S_BOUND) {
        return SW_ERROR;
    }
    mod_c2s_send_xml(c, st->xml);
    return SW_OK;
}

static void
mod_c2s_session_close(sw_session_t *s, const char *cond, const char *text)
{
    mod_c2s_conn_t *c = s->transport;

    if (c->conn == NULL) {
        /* hibernating (XEP-0198): no stream to close, just end it */
        c->state = MOD_C2S_CLOSING;
        mod_c2s_session_end(c);
        mod_c2s_free(c);
    } else if (cond != NULL) {
        mod_c2s_stream_error(c, cond, text);
    } else {
        mod_c2s_close(c);
    }
}

static const sw_session_vt_t mod_c2s_session_vt = {
    .send = mod_c2s_session_send,
    .close = mod_c2s_session_close,
};

/* ------------------------------------------------------------ module --- */

static int
mod_c2s_listen(mod_c2s_t *c2s, const char *iface, int port, bool tls)
{
    mod_c2s_listener_t *l;

    if (c2s->n_listeners == MOD_C2S_MAX_LISTENERS) {
        sw_log_error("c2s: too many listeners (at most %d)",
                     MOD_C2S_MAX_LISTENERS);
        return SW_ERROR;
    }
    l = sw_calloc(1, sizeof(*l));
    l->c2s = c2s;
    l->direct_tls = tls;
    c2s->listeners[c2s->n_listeners++] = l;
    l->ls = sw_listener_new("c2s", iface, port, 128, mod_c2s_on_connection,
                            l);
    if (l->ls == NULL) {
        return SW_ERROR;
    }
    sw_log_info("c2s: listening on %s%s", sw_listener_desc(l->ls),
                tls ? " (direct TLS)" : "");
    return SW_OK;
}

typedef struct {
    const char *names[64];
    size_t      n;
} mod_c2s_names_t;

static void
mod_c2s_collect_host(sw_host_t *h, void *ud)
{
    mod_c2s_names_t *n = ud;

    if (strcmp(h->kind, "host") == 0 && n->n < 63) {
        n->names[n->n++] = h->name;
    }
}

/* The configured certificate, or one made for every VirtualHost on first
 * start and kept in data_dir. */
static int
mod_c2s_tls_setup(mod_c2s_t *c2s)
{
    const sw_core_conf_t *core = sw_core_conf();
    mod_c2s_conf_t       *conf = c2s->conf;
    char                  cert[4096], key[4096];
    struct stat           sb;

    if (conf->certificate != NULL || conf->key != NULL) {
        if (conf->certificate == NULL || conf->key == NULL) {
            sw_log_error("c2s: set both c2s_certificate and c2s_key");
            return SW_ERROR;
        }
        c2s->tls = sw_tls_ctx_new(conf->certificate, conf->key);
        return c2s->tls ? SW_OK : SW_ERROR;
    }
    snprintf(cert, sizeof(cert), "%s/c2s-selfsigned.crt",
             core->data_dir ? core->data_dir : ".");
    snprintf(key, sizeof(key), "%s/c2s-selfsigned.key",
             core->data_dir ? core->data_dir : ".");
    if (stat(cert, &sb) != 0 || stat(key, &sb) != 0) {
        mod_c2s_names_t names = { { NULL }, 0 };

        sw_host_each(mod_c2s_collect_host, &names);
        if (names.n == 0) {
            names.names[names.n++] = "localhost";
        }
        sw_log_info("c2s: no certificate configured; generating a "
                    "self-signed one for %s%s in %s", names.names[0],
                    names.n > 1 ? " and the other hosts" : "", cert);
        if (sw_tls_make_self_signed(cert, key, names.names) != SW_OK) {
            return SW_ERROR;
        }
    }
    c2s->tls = sw_tls_ctx_new(cert, key);
    return c2s->tls ? SW_OK : SW_ERROR;
}

/*
 * The secret decoy credentials derive from (RFC 5802 §9), kept in
 * data_dir so that an unknown name gets the same salt after a restart.
 */
static int
mod_c2s_decoy_setup(mod_c2s_t *c2s)
{
    const sw_core_conf_t *core = sw_core_conf();
    char                  path[4096];
    ssize_t               n;
    int                   fd;

    snprintf(path, sizeof(path), "%s/c2s-sasl-decoy.key",
             core->data_dir ? core->data_dir : ".");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, c2s->decoy_secret, sizeof(c2s->decoy_secret));
        close(fd);
        if (n == (ssize_t) sizeof(c2s->decoy_secret)) {
            return SW_OK;
        }
        sw_log_error("c2s: %s is damaged (%zd bytes; remove it to make a "
                     "new one)", path, n);
        return SW_ERROR;
    }
    if (gnutls_rnd(GNUTLS_RND_KEY, c2s->decoy_secret,
                   sizeof(c2s->decoy_secret)) < 0)
    {
        sw_log_error("c2s: no random bytes for %s", path);
        return SW_ERROR;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0
        || write(fd, c2s->decoy_secret, sizeof(c2s->decoy_secret))
           != (ssize_t) sizeof(c2s->decoy_secret)
        || fsync(fd) != 0)
    {
        sw_log_error("c2s: cannot write %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return SW_ERROR;
    }
    close(fd);
    return SW_OK;
}

static int
mod_c2s_load(sw_module_ctx_t *mc)
{
    mod_c2s_t *c2s = sw_calloc(1, sizeof(*c2s));

    c2s->mc = mc;
    c2s->conf = mc->conf;
    sw_buf_init(&c2s->out);
    mc->data = c2s;
    sw_hook_declare(SW_C2S_EV_FEATURES, "building a client's stream "
                    "features after authentication; data: sw_xml_t *");
    if (sw_hook_add(&mc->owner, "server/stopping", 0, mod_c2s_on_stopping,
                    c2s) != SW_OK)
    {
        return SW_ERROR;
    }
    return mod_c2s_sasl_init(c2s);
}

static int
mod_c2s_check(sw_module_ctx_t *mc)
{
    mod_c2s_conf_t *conf = mc->conf;

    if ((conf->certificate == NULL) != (conf->key == NULL)) {
        sw_log_error("c2s: set both c2s_certificate and c2s_key, or "
                     "neither (a self-signed certificate is then made)");
        return SW_ERROR;
    }
    if (sw_storage() == NULL) {
        return SW_ERROR;    /* logged: c2s needs accounts */
    }
    if (conf->port == 0 && conf->tls_port == 0) {
        sw_log_warn("c2s: both c2s_port and c2s_direct_tls_port are 0: "
                    "clients cannot connect");
    }
    return SW_OK;
}

static int
mod_c2s_start(sw_module_ctx_t *mc)
{
    mod_c2s_t          *c2s = mc->data;
    const char *const  *i;

    if (mod_c2s_tls_setup(c2s) != SW_OK || mod_c2s_decoy_setup(c2s) != SW_OK)
    {
        return SW_ERROR;
    }
    for (i = c2s->conf->interfaces; i != NULL && *i != NULL; i++) {
        if ((c2s->conf->port
             && mod_c2s_listen(c2s, *i, (int) c2s->conf->port, false))
            || (c2s->conf->tls_port
                && mod_c2s_listen(c2s, *i, (int) c2s->conf->tls_port, true)))
        {
            return SW_ERROR;
        }
    }
    return SW_OK;
}

/*
 * Ends every session: before the other modules stop (the "server/stopping"
 * event), so unacknowledged stanzas still reach mod_im's offline storage.
 */
static void
mod_c2s_end_all(mod_c2s_t *c2s)
{
    mod_c2s_conn_t *c, *next;

    c2s->stopping = true;
    for (c = c2s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->conn == NULL) {
            c->state = MOD_C2S_CLOSING;
            mod_c2s_session_end(c);
            mod_c2s_free(c);
        } else {
            /* RFC 6120 §4.9.3.19: tell every client we are going away */
            mod_c2s_stream_error(c, "system-shutdown", NULL);
        }
    }
}

static int
mod_c2s_on_stopping(void *data, void *ud)
{
    mod_c2s_end_all(ud);
    return SW_DECLINED;
}

static void
mod_c2s_stop(sw_module_ctx_t *mc)
{
    mod_c2s_t      *c2s = mc->data;
    size_t          i;

    if (c2s == NULL) {
        return;
    }
    mod_c2s_end_all(c2s);
    for (i = 0; i < c2s->n_listeners; i++) {
        sw_listener_close(c2s->listeners[i]->ls);
        free(c2s->listeners[i]);
    }
    c2s->n_listeners = 0;
    sw_owner_release(&mc->owner);
    mc->data = NULL;
    /* Connections finish closing (TLS close_notify) in the loop; the last
     * one to go releases the module state. */
    if (c2s->conns == NULL) {
        mod_c2s_release(c2s);
    }
}

static const sw_option_t mod_c2s_options[] = {
    { "c2s_interfaces", SW_OPT_STRLIST,
      offsetof(mod_c2s_conf_t, interfaces), SW_SCOPE_GLOBAL, 0, 0, 0,
      "0.0.0.0,::", NULL, "addresses to listen on" },
    { "c2s_port", SW_OPT_INT, offsetof(mod_c2s_conf_t, port),
      SW_SCOPE_GLOBAL, 0, 0, 65535, "5222", NULL,
      "port for STARTTLS connections (0: none)" },
    { "c2s_direct_tls_port", SW_OPT_INT, offsetof(mod_c2s_conf_t, tls_port),
      SW_SCOPE_GLOBAL, 0, 0, 65535, "5223", NULL,
      "port for direct TLS connections, XEP-0368 (0: none)" },
    { "c2s_require_encryption", SW_OPT_BOOL,
      offsetof(mod_c2s_conf_t, require_encryption),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 0, 0, "true", NULL,
      "refuse authentication before TLS" },
    { "c2s_certificate", SW_OPT_PATH, offsetof(mod_c2s_conf_t, certificate),
      SW_SCOPE_GLOBAL, 0, 0, 0, NULL, NULL,
      "PEM certificate chain (unset: self-signed, made at first start)" },
    { "c2s_key", SW_OPT_PATH, offsetof(mod_c2s_conf_t, key),
      SW_SCOPE_GLOBAL, 0, 0, 0, NULL, NULL, "PEM private key" },
    { "c2s_negotiation_timeout", SW_OPT_DURATION,
      offsetof(mod_c2s_conf_t, negotiation_timeout), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 1000, 3600000, "60s", NULL,
      "time allowed from connect to bound resource" },
    { "c2s_sasl_mechanisms", SW_OPT_STRLIST,
      offsetof(mod_c2s_conf_t, mechanisms), SW_SCOPE_GLOBAL | SW_SCOPE_HOST,
      SW_OPT_RELOADABLE, 0, 0,
      "SCRAM-SHA-256-PLUS,SCRAM-SHA-256,SCRAM-SHA-1-PLUS,SCRAM-SHA-1,PLAIN",
      NULL, "SASL mechanisms offered, in order (PLAIN only over TLS)" },
    { "c2s_resume_timeout", SW_OPT_INT,
      offsetof(mod_c2s_conf_t, resume_timeout), SW_SCOPE_GLOBAL, 0, 0,
      86400, "300", NULL, "seconds a broken session waits to be resumed, "
      "XEP-0198 (0: no resumption)" },
    { "c2s_sasl_attempts", SW_OPT_INT, offsetof(mod_c2s_conf_t, sasl_attempts),
      SW_SCOPE_GLOBAL, 0, 1, 100, "3", NULL,
      "failed authentications before the stream is closed" },
    { "c2s_preauth_stanza_size", SW_OPT_SIZE,
      offsetof(mod_c2s_conf_t, preauth_stanza_size), SW_SCOPE_GLOBAL,
      0, 1024, 1024 * 1024, "16k", NULL,
      "largest element accepted before authentication" },
    { "c2s_max_resources", SW_OPT_INT,
      offsetof(mod_c2s_conf_t, max_resources), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 1, 10000, "10", NULL,
      "resources one account may bind at once (more get "
      "<resource-constraint/>)" },
    { "c2s_sm_max_bytes", SW_OPT_SIZE,
      offsetof(mod_c2s_conf_t, sm_max_bytes), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 0, (int64_t) 1 << 40, "4M", NULL,
      "memory of stanzas a session holds unacknowledged (XEP-0198), "
      "connected or waiting to be resumed; past it the session ends and "
      "they go to offline storage (0: no bound)" },
    { "c2s_max_send_buffer", SW_OPT_SIZE,
      offsetof(mod_c2s_conf_t, max_send_buffer), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 0, (int64_t) 1 << 30, "1M", NULL,
      "bytes waiting for a client that does not read before its "
      "connection is closed (0: no bound)" },
    { "c2s_auth_ban_failures", SW_OPT_INT,
      offsetof(mod_c2s_conf_t, auth_ban_failures), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 0, 1000000, "20", NULL,
      "failed authentications from one address within c2s_auth_ban_time "
      "that ban it for c2s_auth_ban_time (0: never ban)" },
    { "c2s_auth_ban_time", SW_OPT_DURATION,
      offsetof(mod_c2s_conf_t, auth_ban_time), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 1000, 604800000, "1h", NULL,
      "how long failures are counted, and how long a ban lasts" },
    { "c2s_max_connections", SW_OPT_INT,
      offsetof(mod_c2s_conf_t, max_connections), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 0, 10000000, "100000", NULL,
      "client connections open at once, in all (0: no limit)" },
    { "c2s_max_connections_per_address", SW_OPT_INT,
      offsetof(mod_c2s_conf_t, max_connections_per_address), SW_SCOPE_GLOBAL,
      SW_OPT_RELOADABLE, 0, 10000000, "100", NULL,
      "client connections open at once from one source address (0: no "
      "limit)" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "c2s",
    .help = "client connections: TLS, SASL, resource binding (RFC 6120)",
    .options = mod_c2s_options,
    .conf_size = sizeof(mod_c2s_conf_t),
    .load = mod_c2s_load,
    .check = mod_c2s_check,
    .start = mod_c2s_start,
    .stop = mod_c2s_stop,
};
