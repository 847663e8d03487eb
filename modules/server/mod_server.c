/*
 * mod_server: what the server itself answers: service discovery
 * (XEP-0030) for its domains and accounts, XMPP ping (XEP-0199) and
 * software version (XEP-0092).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <skywave/skywave.h>

#define MOD_SERVER_NS_INFO    "http://jabber.org/protocol/disco#info"
#define MOD_SERVER_NS_ITEMS   "http://jabber.org/protocol/disco#items"
#define MOD_SERVER_NS_PING    "urn:xmpp:ping"
#define MOD_SERVER_NS_VERSION "jabber:iq:version"

typedef struct {
    bool        show_os;
    const char *name;
} mod_server_conf_t;

typedef struct {
    sw_module_ctx_t *mc;
} mod_server_t;

static void
mod_server_add_feature(const char *var, void *ud)
{
    sw_xml_set_attr(sw_xml_add(ud, NULL, "feature"), "var", var);
}

/* XEP-0030 §3.1: disco#info on the server's domain. */
static int
mod_server_disco_info(void *data, void *ud)
{
    sw_iq_event_t *ev = data;
    mod_server_t  *srv = ud;
    sw_stanza_t   *r;
    sw_xml_t      *q, *id;
    mod_server_conf_t *conf = sw_module_conf(srv->mc, ev->host->name);

    if (strcmp(ev->stanza->type, "get") != 0) {
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                          NULL));
        return SW_OK;
    }
    if (sw_xml_attr(ev->stanza->payload, "node") != NULL) {
        /* XEP-0030 §3.2: no nodes here */
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL,
                                          "item-not-found", NULL));
        return SW_OK;
    }
    r = sw_stanza_iq_result(ev->stanza);
    q = sw_xml_add(r->xml, MOD_SERVER_NS_INFO, "query");
    id = sw_xml_add(q, NULL, "identity");
    sw_xml_set_attr(id, "category", "server");
    sw_xml_set_attr(id, "type", "im");
    sw_xml_set_attr(id, "name", conf->name);
    sw_iq_each_feature(mod_server_add_feature, q);
    sw_iq_reply(r);
    return SW_OK;
}

/* XEP-0030 §4: items of the server (its components). */
typedef struct {
    sw_xml_t   *q;
    const char *host;
} mod_server_items_t;

static void
mod_server_add_item(sw_host_t *h, void *ud)
{
    mod_server_items_t *it = ud;
    size_t              n = strlen(it->host), m = strlen(h->name);

    /* Components under this domain ("muc.example.net") are its items. */
    if (strcmp(h->kind, "host") != 0 && m > n + 1
        && strcmp(h->name + m - n, it->host) == 0 && h->name[m - n - 1] == '.')
    {
        sw_xml_set_attr(sw_xml_add(it->q, NULL, "item"), "jid", h->name);
    }
}

static int
mod_server_disco_items(void *data, void *ud)
{
    sw_iq_event_t      *ev = data;
    sw_stanza_t        *r;
    mod_server_items_t  it;

    if (strcmp(ev->stanza->type, "get") != 0) {
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                          NULL));
        return SW_OK;
    }
    r = sw_stanza_iq_result(ev->stanza);
    it.q = sw_xml_add(r->xml, MOD_SERVER_NS_ITEMS, "query");
    it.host = ev->host->name;
    sw_host_each(mod_server_add_item, &it);
    sw_iq_reply(r);
    return SW_OK;
}

/* XEP-0030 §3.1 for an account: the server answers for the bare JID. */
static int
mod_server_disco_account(void *data, void *ud)
{
    sw_iq_event_t *ev = data;
    sw_stanza_t   *r;
    sw_xml_t      *q, *id;

    if (strcmp(ev->stanza->type, "get") != 0) {
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                          NULL));
        return SW_OK;
    }
    r = sw_stanza_iq_result(ev->stanza);
    q = sw_xml_add(r->xml, MOD_SERVER_NS_INFO, "query");
    id = sw_xml_add(q, NULL, "identity");
    sw_xml_set_attr(id, "category", "account");
    sw_xml_set_attr(id, "type", "registered");
    sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                    MOD_SERVER_NS_INFO);
    sw_iq_reply(r);
    return SW_OK;
}

/* XEP-0199 §4.2: a pong is an empty result. */
static int
mod_server_ping(void *data, void *ud)
{
    sw_iq_event_t *ev = data;

    sw_iq_reply(strcmp(ev->stanza->type, "get") == 0
                ? sw_stanza_iq_result(ev->stanza)
                : sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                        NULL));
    return SW_OK;
}

/* XEP-0092 */
static int
mod_server_version(void *data, void *ud)
{
    sw_iq_event_t     *ev = data;
    mod_server_t      *srv = ud;
    mod_server_conf_t *conf = sw_module_conf(srv->mc, ev->host->name);
    sw_stanza_t       *r;
    sw_xml_t          *q;
    struct utsname     u;

    if (strcmp(ev->stanza->type, "get") != 0) {
        sw_iq_reply(sw_stanza_error_reply(ev->stanza, NULL, "bad-request",
                                          NULL));
        return SW_OK;
    }
    r = sw_stanza_iq_result(ev->stanza);
    q = sw_xml_add(r->xml, MOD_SERVER_NS_VERSION, "query");
    sw_xml_set_text(sw_xml_add(q, NULL, "name"), "Skywave");
    sw_xml_set_text(sw_xml_add(q, NULL, "version"), PACKAGE_VERSION);
    /* XEP-0092 §5: the OS is optional and can help an attacker */
    if (conf->show_os && uname(&u) == 0) {
        sw_xml_set_text(sw_xml_add(q, NULL, "os"), u.sysname);
    }
    sw_iq_reply(r);
    return SW_OK;
}

static int
mod_server_load(sw_module_ctx_t *mc)
{
    mod_server_t *srv = sw_calloc(1, sizeof(*srv));
    sw_owner_t   *o = &mc->owner;

    srv->mc = mc;
    mc->data = srv;
    sw_iq_add_feature(o, MOD_SERVER_NS_INFO);
    sw_iq_add_feature(o, MOD_SERVER_NS_ITEMS);
    sw_iq_add_feature(o, MOD_SERVER_NS_PING);
    sw_iq_add_feature(o, MOD_SERVER_NS_VERSION);
    if (sw_iq_handle(o, SW_IQ_HOST, MOD_SERVER_NS_INFO,
                     mod_server_disco_info, srv)
        || sw_iq_handle(o, SW_IQ_HOST, MOD_SERVER_NS_ITEMS,
                        mod_server_disco_items, srv)
        || sw_iq_handle(o, SW_IQ_SELF, MOD_SERVER_NS_INFO,
                        mod_server_disco_account, srv)
        || sw_iq_handle(o, SW_IQ_BARE, MOD_SERVER_NS_INFO,
                        mod_server_disco_account, srv)
        || sw_iq_handle(o, SW_IQ_HOST, MOD_SERVER_NS_PING, mod_server_ping,
                        srv)
        || sw_iq_handle(o, SW_IQ_SELF, MOD_SERVER_NS_PING, mod_server_ping,
                        srv)
        || sw_iq_handle(o, SW_IQ_HOST, MOD_SERVER_NS_VERSION,
                        mod_server_version, srv))
    {
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_server_stop(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
    free(mc->data);
    mc->data = NULL;
}

static const sw_option_t mod_server_options[] = {
    { "server_name", SW_OPT_STRING, offsetof(mod_server_conf_t, name),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 0, 0, "Skywave",
      NULL, "name in the server's disco#info identity" },
    { "server_version_os", SW_OPT_BOOL, offsetof(mod_server_conf_t, show_os),
      SW_SCOPE_GLOBAL, SW_OPT_RELOADABLE, 0, 0, "false", NULL,
      "include the operating system in version replies (XEP-0092)" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "server",
    .help = "disco (XEP-0030), ping (XEP-0199), version (XEP-0092)",
    .options = mod_server_options,
    .conf_size = sizeof(mod_server_conf_t),
    .load = mod_server_load,
    .stop = mod_server_stop,
};
