/*
 * mod_im: messages and IQs for local accounts (RFC 6121 §8.5), offline
 * storage and its delivery (XEP-0160) with XEP-0203 delay stamps.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mod_im.h"

#define MOD_IM_NS_CHATSTATES "http://jabber.org/protocol/chatstates"

static bool
mod_im_is(const char *type, const char *want)
{
    return type != NULL && strcmp(type, want) == 0;
}

static void
mod_im_bounce(sw_stanza_t *st, const char *cond)
{
    sw_route_bounce(sw_stanza_ref(st), cond, NULL);
}

/* XEP-0160 §3: a chat state alone is not worth keeping. */
static bool
mod_im_worth_storing(const sw_stanza_t *st)
{
    const sw_xml_t *c;

    for (c = st->xml->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM
            && (c->ns == NULL || strcmp(c->ns, MOD_IM_NS_CHATSTATES) != 0))
        {
            return true;
        }
    }
    return false;
}

/* RFC 6121 §8.5.2.2.1: no available resource for a chat/normal message. */
static void
mod_im_offline_store(mod_im_t *im, sw_stanza_t *st)
{
    mod_im_conf_t *conf = mod_im_conf(im, st->to->domain);
    char          *xml;
    int            rc;

    if (!mod_im_worth_storing(st)) {
        return;
    }
    if (conf->offline_max == 0) {
        mod_im_bounce(st, "service-unavailable");
        return;
    }
    /* written with its xmlns so it parses back on its own */
    xml = sw_xml_to_string(st->xml, NULL);
    rc = im->st->offline_push(im->st, st->to->domain, st->to->node, xml,
                              strlen(xml), (size_t) conf->offline_max,
                              conf->offline_max_bytes);
    free(xml);
    if (rc != SW_OK) {
        /* full (SW_DECLINED) or failed: the sender must know */
        sw_log_debug("im: offline store for %s refused (%s)", st->to->bare,
                     rc == SW_DECLINED ? "full" : "error");
        mod_im_bounce(st, "service-unavailable");
    } else if (st->from != NULL && sw_host_find(st->from->domain) != NULL) {
        /* From a local user: if the batch it joined fails, the sender
         * hears of it.  From a peer: the peer sends it again, as it is
         * not acknowledged then. */
        sw_link_batch_hold(st);
    }
}

/* Tells other modules (carbons) where a message went. */
static void
mod_im_delivered(sw_stanza_t *st, sw_session_t **to, size_t n)
{
    sw_im_delivered_t ev = { st, st->to->bare, to, n };

    sw_hook_fire_name(SW_IM_EV_DELIVERED, &ev);
}

/* RFC 6121 §8.5.2: a message to a local bare JID (or treated as one). */
static int
mod_im_message_bare(mod_im_t *im, sw_stanza_t *st, const char *type)
{
    sw_session_t *r, *to[MOD_IM_MAX_FANOUT];
    int           best = -1;
    size_t        n = 0;
    bool          headline = mod_im_is(type, "headline");

    if (mod_im_is(type, "error")) {
        return SW_OK;           /* §8.5.2.1.1, §8.5.2.2.1: ignored */
    }
    if (!mod_im_user_exists(im, st->to)) {
        mod_im_bounce(st, "service-unavailable");           /* §8.5.1 */
        return SW_OK;
    }
    if (mod_im_is(type, "groupchat")) {
        mod_im_bounce(st, "service-unavailable");
        return SW_OK;
    }
    for (r = sw_sessions_of(st->to->bare); r != NULL; r = r->next_resource) {
        if (r->available && r->priority > best) {
            best = r->priority;
        }
    }
    if (best >= 0) {
        /* §8.5.2.1.1: chat and normal to the most available resources
         * (every one with the highest priority), headline to all with a
         * non-negative priority */
        for (r = sw_sessions_of(st->to->bare); r != NULL;
             r = r->next_resource)
        {
            if (r->available && r->priority >= 0
                && (headline || r->priority == best))
            {
                if (mod_im_send(r, st) == SW_OK && n < MOD_IM_MAX_FANOUT) {
                    to[n++] = r;
                }
            }
        }
        mod_im_delivered(st, to, n);
        return SW_OK;
    }
    if (!headline) {
        /* chat, normal and unknown types (treated as normal, §5.2.2) */
        mod_im_offline_store(im, st);
        mod_im_delivered(st, NULL, 0);
    }
    return SW_OK;
}

int
mod_im_message_in(mod_im_t *im, sw_stanza_t *st)
{
    const char   *type = st->type != NULL ? st->type : "normal";
    sw_session_t *s;

    if (st->to->resource != NULL) {
        s = sw_session_find(st->to);
        if (s != NULL) {
            if (mod_im_send(s, st) == SW_OK) {              /* §8.5.3.1 */
                mod_im_delivered(st, &s, 1);
            }
            return SW_OK;
        }
        /* §8.5.3.2.1 */
        if (mod_im_is(type, "error")) {
            return SW_OK;
        }
        if (mod_im_is(type, "groupchat")) {
            mod_im_bounce(st, "service-unavailable");
            return SW_OK;
        }
    }
    return mod_im_message_bare(im, st, type);
}

/* IQs to a full JID (RFC 6121 §8.5.3); to a bare JID the core's IQ
 * dispatcher answers on the account's behalf. */
int
mod_im_iq_in(mod_im_t *im, sw_stanza_t *st)
{
    sw_session_t *s;

    (void) im;
    if (st->to->resource == NULL) {
        return SW_DECLINED;
    }
    s = sw_session_find(st->to);
    if (s != NULL) {
        mod_im_send(s, st);                                 /* §8.5.3.1 */
        return SW_OK;
    }
    if (!mod_im_is(st->type, "result") && !mod_im_is(st->type, "error")) {
        mod_im_bounce(st, "service-unavailable");       /* §8.5.3.2.1 */
    }
    return SW_OK;
}

#define MOD_IM_OFFLINE_RETRY_MS 2000

/* Deletes user's offline messages up to id upto, committed at once. */
static int
mod_im_offline_delete(mod_im_t *im, const char *domain, const char *node,
                      int64_t upto)
{
    if (im->st->offline_delete(im->st, domain, node, upto) != SW_OK) {
        return SW_ERROR;
    }
    return sw_link_commit();
}

static void
mod_im_offline_key(const char *key, void *value, void *ud)
{
    char ***keys = ud;

    (void) value;
    *(*keys)++ = sw_strdup(key);
}

/* Deletions that failed are tried again every few seconds: until one
 * succeeds, a kill -9 would forget what was sent. */
static void
mod_im_offline_on_retry(uv_timer_t *t)
{
    mod_im_t *im = t->data;
    char    **keys, **end, **k, *at;
    int64_t  *sent;

    if (im == NULL) {
        return;
    }
    keys = sw_calloc(sw_hash_count(im->offline_sent) + 1, sizeof(*keys));
    end = keys;
    sw_hash_each(im->offline_sent, mod_im_offline_key, &end);
    for (k = keys; k < end; k++) {
        sent = sw_hash_get(im->offline_sent, *k);
        at = strchr(*k, '@');
        if (at != NULL) {
            *at = '\0';
            if (mod_im_offline_delete(im, at + 1, *k, *sent) == SW_OK) {
                *at = '@';
                sw_hash_set(im->offline_sent, *k, NULL);
                free(sent);
                sw_log_info("im: offline messages for %s sent earlier are "
                            "deleted now", *k);
            }
        }
        free(*k);
    }
    free(keys);
    if (sw_hash_count(im->offline_sent) == 0) {
        uv_timer_stop(t);
    }
}

static void
mod_im_offline_free_timer(uv_handle_t *h)
{
    free(h);
}

void
mod_im_offline_stop(mod_im_t *im)
{
    if (im->offline_retry != NULL) {
        im->offline_retry->data = NULL;
        uv_timer_stop(im->offline_retry);
        uv_close((uv_handle_t *) im->offline_retry,
                 mod_im_offline_free_timer);
        im->offline_retry = NULL;
    }
}

/*
 * XEP-0160 §4: stored messages go to the first resource that becomes
 * available with a non-negative priority, then are deleted.  The
 * deletion is committed at once; when it fails (the disk is full) the
 * messages stay stored, and the ids already sent are remembered here so
 * that the next login does not get them again; the deletion is tried
 * again every few seconds (a kill -9 before it succeeds forgets them).
 */
void
mod_im_offline_deliver(mod_im_t *im, sw_session_t *s)
{
    sw_offline_msg_t *msgs;
    sw_stanza_t      *st;
    sw_pool_t        *pool = sw_pool_new(1024);
    sw_xml_t         *d;
    struct tm         tm;
    time_t            t;
    int64_t           upto = 0;
    int64_t          *sent = sw_hash_get(im->offline_sent, s->jid->bare);
    size_t            n = 0, i;
    char              stamp[32];

    if (im->st->offline_fetch(im->st, s->jid->domain, s->jid->node, pool,
                              &msgs, &n) != SW_OK)
    {
        sw_pool_free(pool);
        return;
    }
    for (i = 0; i < n; i++) {
        if (sent != NULL && msgs[i].id <= *sent) {
            upto = msgs[i].id;          /* out already, not deleted */
            continue;
        }
        st = sw_stanza_parse(msgs[i].xml, strlen(msgs[i].xml));
        if (st != NULL) {
            /* XEP-0203 §3: when and where it was delayed */
            t = (time_t) msgs[i].stamp;
            gmtime_r(&t, &tm);
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
            d = sw_xml_add(st->xml, MOD_IM_NS_DELAY, "delay");
            sw_xml_set_attr(d, "from", s->jid->domain);
            sw_xml_set_attr(d, "stamp", stamp);
            if (mod_im_send(s, st) == SW_ERROR) {
                sw_stanza_unref(st);
                break;          /* the rest waits for the next login */
            }
            sw_stanza_unref(st);
        } else {
            sw_log_warn("im: dropping unreadable offline message %lld "
                        "for %s", (long long) msgs[i].id, s->jid->bare);
        }
        upto = msgs[i].id;
    }
    if (upto > 0) {
        if (mod_im_offline_delete(im, s->jid->domain, s->jid->node, upto)
            == SW_OK)
        {
            if (sent != NULL) {
                sw_hash_set(im->offline_sent, s->jid->bare, NULL);
                free(sent);
            }
        } else {
            sw_log_error("im: offline messages for %s were sent but not "
                         "deleted; they are kept, and not sent again",
                         s->jid->bare);
            if (sent == NULL) {
                sent = sw_calloc(1, sizeof(*sent));
                sw_hash_set(im->offline_sent, s->jid->bare, sent);
            }
            *sent = upto;
            if (im->offline_retry == NULL) {
                im->offline_retry = sw_calloc(1, sizeof(uv_timer_t));
                uv_timer_init(sw_loop(), im->offline_retry);
                im->offline_retry->data = im;
            }
            if (!uv_is_active((uv_handle_t *) im->offline_retry)) {
                uv_timer_start(im->offline_retry, mod_im_offline_on_retry,
                               MOD_IM_OFFLINE_RETRY_MS,
                               MOD_IM_OFFLINE_RETRY_MS);
            }
        }
    }
    sw_pool_free(pool);
}
