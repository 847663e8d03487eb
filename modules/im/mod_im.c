/*
 * mod_im: module descriptor, options, the "route/local" dispatcher and
 * helpers shared by the roster, presence and message parts (see mod_im.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mod_im.h"

/* Above the core's IQ dispatcher (-100): full-JID IQs are ours. */
#define MOD_IM_PRIORITY         0
/* Below everything: swallows IQ responses nobody claimed. */
#define MOD_IM_PRIORITY_LAST    -200
/* Before link-layer filters see client presence. */
#define MOD_IM_PREROUTE_PRIORITY 100

/* ---------------------------------------------------------- helpers --- */

void
mod_im_route(mod_im_t *im, sw_stanza_t *st)
{
    (void) im;
    sw_route(st);       /* the server's own: the preroute filter lets it pass */
}

int
mod_im_send(sw_session_t *s, sw_stanza_t *st)
{
    return sw_session_send(s, st);
}

bool
mod_im_user_exists(mod_im_t *im, const sw_jid_t *jid)
{
    if (jid->node == NULL) {
        return false;
    }
    /* A bound session proves the account without asking storage. */
    if (sw_sessions_of(jid->bare) != NULL) {
        return true;
    }
    return im->st->user_exists(im->st, jid->domain, jid->node) == SW_OK;
}

mod_im_sess_t *
mod_im_sess(mod_im_t *im, sw_session_t *s)
{
    mod_im_sess_t *is = s->slots[im->slot];

    if (is == NULL) {
        is = sw_pool_calloc(s->pool, sizeof(*is));
        s->slots[im->slot] = is;
    }
    return is;
}

mod_im_conf_t *
mod_im_conf(mod_im_t *im, const char *host)
{
    return sw_module_conf(im->mc, host);
}

/* A private copy of st readdressed to 'to' (and 'from' if not NULL). */
sw_stanza_t *
mod_im_copy_to(sw_stanza_t *st, const sw_jid_t *to, const sw_jid_t *from)
{
    sw_stanza_t *c = sw_stanza_ref(st);

    sw_stanza_writable(&c);
    sw_stanza_set_to(c, to);
    if (from != NULL) {
        sw_stanza_set_from(c, from);
    }
    return c;
}

sw_stanza_t *
mod_im_presence_new(const char *type, const char *from, const char *to)
{
    sw_pool_t   *pool = sw_pool_new(256);
    sw_xml_t    *x = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_stanza_t *st;

    if (type != NULL) {
        sw_xml_set_attr(x, "type", type);
    }
    if (from != NULL) {
        sw_xml_set_attr(x, "from", from);
    }
    if (to != NULL) {
        sw_xml_set_attr(x, "to", to);
    }
    st = sw_stanza_new(pool, x, NULL);
    if (st == NULL) {
        sw_pool_free(pool);
    }
    return st;
}

/* ------------------------------------------------------- dispatching --- */

static int
mod_im_route_local(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    mod_im_t         *im = ud;
    sw_stanza_t      *st = ev->stanza;

    if (strcmp(ev->host->kind, "host") != 0) {
        return SW_DECLINED;         /* a component's */
    }
    if (st->to == NULL || st->to->node == NULL) {
        /* To the server itself: presence to the domain (directed, or a
         * client with no 'to' that a filter let through) has nobody to
         * reach; messages and IQs are for other handlers or a bounce. */
        return st->kind == SW_STANZA_PRESENCE ? SW_OK : SW_DECLINED;
    }
    switch (st->kind) {
    case SW_STANZA_MESSAGE:
        return mod_im_message_in(im, st);
    case SW_STANZA_PRESENCE:
        return mod_im_presence_in(im, st);
    case SW_STANZA_IQ:
        return mod_im_iq_in(im, st);
    default:
        return SW_DECLINED;
    }
}

/*
 * IQ responses to a local host or bare JID (replies to roster pushes
 * come back to the account, RFC 6121 §2.1.6) that nobody claimed: a
 * response is never answered (RFC 6120 §8.2.3), so drop it here instead
 * of letting the router bounce it.
 */
static int
mod_im_route_responses(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sw_stanza_t      *st = ev->stanza;

    (void) ud;
    if (st->kind == SW_STANZA_IQ && st->type != NULL
        && (strcmp(st->type, "result") == 0
            || strcmp(st->type, "error") == 0))
    {
        return SW_OK;
    }
    return SW_DECLINED;
}

static int
mod_im_session_closing(void *data, void *ud)
{
    mod_im_presence_closing(ud, data);
    return SW_DECLINED;     /* others may want to know too */
}

/* ------------------------------------------------------------ module --- */

/* RFC 6121 §2.6.1 roster versioning and §3.4 pre-approval are ours. */
static int
mod_im_features(void *data, void *ud)
{
    sw_xml_t *f = data;

    sw_xml_add(f, "urn:xmpp:features:rosterver", "ver");
    sw_xml_add(f, "urn:xmpp:features:pre-approval", "sub");
    return SW_DECLINED;
}

static int
mod_im_load(sw_module_ctx_t *mc)
{
    mod_im_t *im;

    im = sw_calloc(1, sizeof(*im));
    im->mc = mc;
    mc->data = im;
    im->offline_sent = sw_hash_new(16);
    im->st = sw_storage();
    if (im->st == NULL) {
        sw_log_error("im: no storage service (set storage = \"sqlite\")");
        return SW_ERROR;
    }
    im->slot = sw_session_slot("im");
    if (im->slot == SW_ERROR) {
        return SW_ERROR;
    }
    sw_hook_declare(SW_IM_EV_DELIVERED, "a message for a local account was "
                    "handed to its sessions (or stored); data: "
                    "sw_im_delivered_t");
    if (sw_hook_add(&mc->owner, SW_C2S_EV_FEATURES, 0, mod_im_features,
                    im) != SW_OK
        || sw_hook_add(&mc->owner, "route/local", MOD_IM_PRIORITY,
                    mod_im_route_local, im) != SW_OK
        || sw_hook_add(&mc->owner, "route/local", MOD_IM_PRIORITY_LAST,
                       mod_im_route_responses, im) != SW_OK
        || sw_hook_add(&mc->owner, "session/closing", 0,
                       mod_im_session_closing, im) != SW_OK
        || sw_chain_add(sw_chain_declare("preroute"), &mc->owner, "im",
                        MOD_IM_PREROUTE_PRIORITY, mod_im_presence_out, im)
           != SW_OK
        || sw_iq_handle(&mc->owner, SW_IQ_SELF, MOD_IM_NS_ROSTER,
                        mod_im_roster_iq, im) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_im_free_value(const char *key, void *value, void *ud)
{
    (void) key;
    (void) ud;
    free(value);
}

static void
mod_im_stop(sw_module_ctx_t *mc)
{
    mod_im_t *im = mc->data;

    sw_owner_release(&mc->owner);
    if (im != NULL) {
        mod_im_offline_stop(im);
        sw_hash_each(im->offline_sent, mod_im_free_value, NULL);
        sw_hash_free(im->offline_sent);
    }
    free(im);
    mc->data = NULL;
}

static const sw_option_t mod_im_options[] = {
    { "im_offline_max_bytes", SW_OPT_SIZE,
      offsetof(mod_im_conf_t, offline_max_bytes),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 0,
      (int64_t) 1 << 40, "1M", NULL,
      "bytes of offline messages kept per user (0: no bound; when full, "
      "senders get <service-unavailable/>)" },
    { "im_offline_max", SW_OPT_INT, offsetof(mod_im_conf_t, offline_max),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 0, 1000000,
      "1000", NULL,
      "offline messages kept per user (0: none; when full, senders get "
      "service-unavailable)" },
    { "im_roster_max_items", SW_OPT_INT, offsetof(mod_im_conf_t, roster_max),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 1, 100000,
      "1000", NULL, "roster items a user may have" },
    { "im_roster_max_name", SW_OPT_INT, offsetof(mod_im_conf_t, name_max),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 1, 65535,
      "1023", NULL,
      "bytes in a roster item name or group name (RFC 6121 §2.3.3)" },
    SW_OPTION_END
};

/* Storage comes from the core's "storage" option, whatever backend. */
static const char *const mod_im_requires[] = { "c2s", NULL };

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "im",
    .help = "rosters, presence and message delivery (RFC 6121)",
    .requires = mod_im_requires,
    .options = mod_im_options,
    .conf_size = sizeof(mod_im_conf_t),
    .load = mod_im_load,
    .stop = mod_im_stop,
};
