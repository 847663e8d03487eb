/*
 * mod_carbons: XEP-0280 Message Carbons.  A client that enables carbons
 * gets a copy of every chat message its account receives on another
 * resource (<received/>) and of every one its other resources send
 * (<sent/>), so a conversation reads the same on the phone and the
 * laptop.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/mod_im_api.h>

#define MOD_CARBONS_NS      "urn:xmpp:carbons:2"
#define MOD_CARBONS_NS_FWD  "urn:xmpp:forward:0"
#define MOD_CARBONS_NS_HINT "urn:xmpp:hints"

typedef struct {
    sw_module_ctx_t *mc;
    int              slot;      /* session slot: non-NULL when enabled */
} mod_carbons_t;

static bool
mod_carbons_enabled(const mod_carbons_t *cb, const sw_session_t *s)
{
    return s->slots[cb->slot] != NULL;
}

/* XEP-0280 §6: which messages are copied. */
static bool
mod_carbons_eligible(const sw_stanza_t *st)
{
    const sw_xml_t *x = st->xml;

    if (st->kind != SW_STANZA_MESSAGE
        /* §7: the sender opted out */
        || sw_xml_child(x, MOD_CARBONS_NS, "private") != NULL
        || sw_xml_child(x, MOD_CARBONS_NS_HINT, "no-copy") != NULL
        /* never a carbon of a carbon */
        || sw_xml_child(x, MOD_CARBONS_NS, "received") != NULL
        || sw_xml_child(x, MOD_CARBONS_NS, "sent") != NULL)
    {
        return false;
    }
    if (st->type == NULL || strcmp(st->type, "normal") == 0) {
        return sw_xml_child(x, NULL, "body") != NULL;
    }
    return strcmp(st->type, "chat") == 0;
}

/* <message from=bare to=full type=..><DIR><forwarded>orig</></></message> */
static void
mod_carbons_copy(sw_session_t *to, const sw_stanza_t *st, const char *dir)
{
    sw_pool_t   *pool = sw_pool_new(sw_pool_used(st->pool) + 512);
    sw_xml_t    *m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_t    *fwd;
    sw_stanza_t *copy;

    sw_xml_set_attr(m, "from", to->jid->bare);
    sw_xml_set_attr(m, "to", to->jid->full);
    sw_xml_set_attr(m, "type", st->type ? st->type : "normal");
    fwd = sw_xml_add(sw_xml_add(m, MOD_CARBONS_NS, dir), MOD_CARBONS_NS_FWD,
                     "forwarded");
    sw_xml_append(fwd, sw_xml_copy(pool, st->xml));
    copy = sw_stanza_new(pool, m, NULL);
    if (copy == NULL) {
        sw_pool_free(pool);
        return;
    }
    sw_session_send(to, copy);
    sw_stanza_unref(copy);
}

/* Received carbons: to every enabled resource that did not get it. */
static int
mod_carbons_delivered(void *data, void *ud)
{
    sw_im_delivered_t *ev = data;
    mod_carbons_t     *cb = ud;
    sw_session_t      *s;
    size_t             i;

    if (ev->n == 0 || !mod_carbons_eligible(ev->stanza)) {
        return SW_DECLINED;
    }
    for (s = sw_sessions_of(ev->bare); s != NULL; s = s->next_resource) {
        bool got = false;

        for (i = 0; i < ev->n; i++) {
            got = got || ev->sessions[i] == s;
        }
        if (!got && mod_carbons_enabled(cb, s)) {
            mod_carbons_copy(s, ev->stanza, "received");
        }
    }
    return SW_DECLINED;
}

/* Sent carbons: what a local session sends goes to its siblings. */
static sw_verdict_e
mod_carbons_sent(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    mod_carbons_t *cb = ud;
    sw_stanza_t   *st = *stp;
    sw_session_t  *from, *s;

    if (st->from == NULL || st->from->resource == NULL
        || !mod_carbons_eligible(st)
        || (from = sw_session_find(st->from)) == NULL)
    {
        return SW_PASS;
    }
    for (s = sw_sessions_of(st->from->bare); s != NULL; s = s->next_resource)
    {
        if (s != from && mod_carbons_enabled(cb, s)
            /* a message to oneself already reaches that resource */
            && !(st->to != NULL && sw_jid_eq_full(st->to, s->jid)))
        {
            mod_carbons_copy(s, st, "sent");
        }
    }
    return SW_PASS;
}

/* XEP-0280 §4: <enable/> and <disable/> for the sending session. */
static int
mod_carbons_iq(void *data, void *ud)
{
    sw_iq_event_t *ev = data;
    mod_carbons_t *cb = ud;
    sw_session_t  *s = ev->stanza->from ? sw_session_find(ev->stanza->from)
                                        : NULL;
    const char    *what = ev->stanza->payload->name;

    if (strcmp(ev->stanza->type, "set") != 0 || s == NULL
        || (strcmp(what, "enable") != 0 && strcmp(what, "disable") != 0))
    {
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                          NULL));
        return SW_OK;
    }
    s->slots[cb->slot] = strcmp(what, "enable") == 0 ? (void *) cb : NULL;
    sw_iq_reply(sw_stanza_iq_result(ev->stanza));
    return SW_OK;
}

static int
mod_carbons_load(sw_module_ctx_t *mc)
{
    mod_carbons_t *cb = sw_calloc(1, sizeof(*cb));

    cb->mc = mc;
    mc->data = cb;
    cb->slot = sw_session_slot("carbons");
    if (cb->slot == SW_ERROR) {
        return SW_ERROR;
    }
    sw_iq_add_feature(&mc->owner, MOD_CARBONS_NS);
    if (sw_iq_handle(&mc->owner, SW_IQ_SELF, MOD_CARBONS_NS, mod_carbons_iq,
                     cb) != SW_OK
        || sw_hook_add(&mc->owner, SW_IM_EV_DELIVERED, 0,
                       mod_carbons_delivered, cb) != SW_OK
        || sw_chain_add(sw_chain_declare("preroute"), &mc->owner, "carbons",
                        -10, mod_carbons_sent, cb) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_carbons_stop(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
    free(mc->data);
    mc->data = NULL;
}

static const char *const mod_carbons_requires[] = { "im", NULL };

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "carbons",
    .help = "XEP-0280 message carbons",
    .requires = mod_carbons_requires,
    .load = mod_carbons_load,
    .stop = mod_carbons_stop,
};
