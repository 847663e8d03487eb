/*
 * mod_filter: what crosses each peer link, decided by the admin.
 *
 * Per Peer (or for every peer, globally): filter_outbound and
 * filter_inbound name Lua policies (sw_policy.h) run on the link's
 * chains in the order given; the C filters (filter_drop_chat_states,
 * filter_drop_presence, filter_iq_allow, filter_message_keep,
 * filter_message_strip, filter_presence_fold) do the common cases on the
 * outbound chain without Lua, exactly as a policy's rule table of the
 * same keys does (byte for byte: the test suite compares them).
 * filter_preroute (global) puts policies on the server's preroute chain
 * (every stanza routed); filter_deliver (global, or per VirtualHost) on
 * the deliver chain, for the sessions of each host (every stanza handed
 * to a client).
 *
 * A policy name without a slash is one of the standard library's
 * (SW_POLICY_DIR/NAME.lua); a path is relative to the config file's
 * directory.  A policy that does not load is a config error naming the
 * file and line.  SIGHUP loads every policy again: one that fails keeps
 * the running version (logged).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#ifndef SW_POLICY_DIR
#define SW_POLICY_DIR "/usr/share/skywave/policies"
#endif

#define MOD_FILTER_NS_CS    "http://jabber.org/protocol/chatstates"
#define MOD_FILTER_MAX_SELS 64

enum { MOD_FILTER_FOLD_NONE = 0, MOD_FILTER_FOLD_SHOW,
       MOD_FILTER_FOLD_AVAILABLE };

static const char *const mod_filter_folds[] = {
    "none", "show", "available", NULL
};

typedef struct mod_filter_conf_s {
    const char *const *outbound;
    const char *const *inbound;
    const char *const *preroute;
    const char *const *deliver;
    bool               drop_chat_states;
    bool               drop_presence;
    const char *const *iq_allow;
    const char *const *message_keep;
    const char *const *message_strip;
    int                presence_fold;
    size_t             memory;
    int64_t            instructions;
} mod_filter_conf_t;

/* One policy on one chain. */
typedef struct mod_filter_slot_s mod_filter_slot_t;
struct mod_filter_slot_s {
    mod_filter_slot_t  *next;
    sw_policy_filter_t  pf;
    char               *path;       /* resolved */
    char               *where;      /* "peer b, outbound" */
    char               *host;       /* deliver: only this host's sessions */
};

typedef struct mod_filter_sels_s {
    sw_policy_sel_t   v[MOD_FILTER_MAX_SELS];   /* ns owned */
    size_t            n;
} mod_filter_sels_t;

/* One peer's C filter rules. */
typedef struct mod_filter_rules_s mod_filter_rules_t;
struct mod_filter_rules_s {
    mod_filter_rules_t *next;
    bool                drop_cs;
    bool                drop_presence;
    const char *const  *iq_allow;   /* NULL: every IQ passes */
    bool                keep;       /* message_keep is set */
    mod_filter_sels_t   keep_sels;
    mod_filter_sels_t   strip_sels;
    int                 fold;
};

typedef struct mod_filter_s {
    sw_module_ctx_t    *mc;
    mod_filter_slot_t  *slots;
    mod_filter_rules_t *rules;
    sw_policy_limits_t  limits;
} mod_filter_t;

/* ------------------------------------------------------- C filters --- */

static bool
mod_filter_sel_parse(const char *text, sw_policy_sel_t *s)
{
    const char *close;

    s->any_ns = false;
    if (text[0] != '{') {
        s->name = text;
        s->ns = NULL;
        return text[0] != '\0' && strchr(text, '}') == NULL;
    }
    close = strchr(text, '}');
    if (close == NULL || close == text + 1) {
        return false;
    }
    s->ns = sw_strndup(text + 1, (size_t) (close - text - 1));
    s->name = close[1] != '\0' ? close + 1 : NULL;
    return true;
}

static int
mod_filter_sels_add(mod_filter_sels_t *sels, const char *text)
{
    if (sels->n == MOD_FILTER_MAX_SELS
        || !mod_filter_sel_parse(text, &sels->v[sels->n]))
    {
        return SW_ERROR;
    }
    sels->n++;
    return SW_OK;
}

static void
mod_filter_sels_free(mod_filter_sels_t *sels)
{
    size_t i;

    for (i = 0; i < sels->n; i++) {
        free((char *) sels->v[i].ns);
    }
    sels->n = 0;
}

/* XEP-0085 §5.5 notifications: nothing but chat states, thread, hints
 * and ids (the same test as the policies' rule). */
static bool
mod_filter_standalone(const sw_stanza_t *st)
{
    const sw_xml_t *c;

    for (c = st->xml->first; c != NULL; c = c->next) {
        if (c->type != SW_XML_ELEM || strcmp(c->name, "thread") == 0) {
            continue;
        }
        if (c->ns == NULL
            || (strcmp(c->ns, MOD_FILTER_NS_CS) != 0
                && strcmp(c->ns, "urn:xmpp:hints") != 0
                && strcmp(c->ns, "urn:xmpp:sid:0") != 0))
        {
            return false;
        }
    }
    return true;
}

/* What every peer's rules share: chat states; what folded presence
 * keeps (room payloads, the presence cache's reset and an error; and
 * show, status, priority). */
static mod_filter_sels_t mod_filter_cs, mod_filter_muc, mod_filter_show;

static void
mod_filter_shared_init(void)
{
    static const char *const muc[] = {
        "{http://jabber.org/protocol/muc}",
        "{http://jabber.org/protocol/muc#user}",
        "{http://isode.com/protocol/fmuc}",
        "{urn:skywave:presence-cache:0}",   /* a restarted server's reset */
        "error", NULL
    };
    const char *const *m;

    mod_filter_sels_add(&mod_filter_cs, "{" MOD_FILTER_NS_CS "}");
    mod_filter_sels_add(&mod_filter_show, "show");
    mod_filter_sels_add(&mod_filter_show, "status");
    mod_filter_sels_add(&mod_filter_show, "priority");
    for (m = muc; *m != NULL; m++) {
        mod_filter_sels_add(&mod_filter_muc, *m);
        mod_filter_sels_add(&mod_filter_show, *m);
    }
}

static void
mod_filter_shared_free(void)
{
    mod_filter_sels_free(&mod_filter_cs);
    mod_filter_sels_free(&mod_filter_muc);
    mod_filter_sels_free(&mod_filter_show);
}

static sw_verdict_e
mod_filter_rules_run(sw_stanza_t **stp, void *ctx, void *ud,
                     const char **cond)
{
    mod_filter_rules_t *r = ud;
    sw_stanza_t        *st = *stp;
    const char *const  *ns;
    const char         *p;

    (void) ctx;
    switch (st->kind) {
    case SW_STANZA_MESSAGE:
        if (r->drop_cs && sw_xml_child(st->xml, MOD_FILTER_NS_CS, NULL)) {
            if (mod_filter_standalone(st)) {
                return SW_DROP;
            }
            sw_policy_fold(stp, mod_filter_cs.v, mod_filter_cs.n, false);
        }
        if (r->keep) {
            sw_policy_fold(stp, r->keep_sels.v, r->keep_sels.n, true);
        }
        if (r->strip_sels.n > 0) {
            sw_policy_fold(stp, r->strip_sels.v, r->strip_sels.n, false);
        }
        break;
    case SW_STANZA_PRESENCE:
        if (r->drop_presence) {
            return SW_DROP;
        }
        if (r->fold == MOD_FILTER_FOLD_SHOW) {
            sw_policy_fold(stp, mod_filter_show.v, mod_filter_show.n, true);
        } else if (r->fold == MOD_FILTER_FOLD_AVAILABLE) {
            sw_policy_fold(stp, mod_filter_muc.v, mod_filter_muc.n, true);
        }
        break;
    case SW_STANZA_IQ:
        if (r->iq_allow != NULL && st->type != NULL
            && (strcmp(st->type, "get") == 0 || strcmp(st->type, "set") == 0))
        {
            p = st->payload != NULL && st->payload->ns != NULL
                ? st->payload->ns : "";
            for (ns = r->iq_allow; *ns != NULL; ns++) {
                if (strcmp(*ns, p) == 0) {
                    return SW_PASS;
                }
            }
            *cond = "service-unavailable";      /* RFC 6120 §8.3.3.19 */
            return SW_BOUNCE;
        }
        break;
    default:
        break;
    }
    return SW_PASS;
}

/* The C filter rules of one peer's conf; NULL when it sets none. */
static mod_filter_rules_t *
mod_filter_rules_new(const mod_filter_conf_t *conf, const char *peer)
{
    mod_filter_rules_t *r;
    const char *const  *s;

    if (!conf->drop_chat_states && !conf->drop_presence
        && conf->iq_allow == NULL && conf->message_keep == NULL
        && conf->message_strip == NULL
        && conf->presence_fold == MOD_FILTER_FOLD_NONE)
    {
        return NULL;
    }
    r = sw_calloc(1, sizeof(*r));
    r->drop_cs = conf->drop_chat_states;
    r->drop_presence = conf->drop_presence;
    r->iq_allow = conf->iq_allow;
    r->fold = conf->presence_fold;
    if (conf->message_keep != NULL) {
        r->keep = true;
        /* a folded message keeps its body and, in an error, the error */
        mod_filter_sels_add(&r->keep_sels, "body");
        mod_filter_sels_add(&r->keep_sels, "error");
        for (s = conf->message_keep; *s != NULL; s++) {
            if (mod_filter_sels_add(&r->keep_sels, *s) != SW_OK) {
                sw_log_error("filter: peer %s: filter_message_keep: \"%s\" "
                             "is not \"name\", \"{ns}name\" or \"{ns}\" (or "
                             "there are more than %d)", peer, *s,
                             MOD_FILTER_MAX_SELS - 2);
                goto failed;
            }
        }
    }
    for (s = conf->message_strip; s != NULL && *s != NULL; s++) {
        if (mod_filter_sels_add(&r->strip_sels, *s) != SW_OK) {
            sw_log_error("filter: peer %s: filter_message_strip: \"%s\" is "
                         "not \"name\", \"{ns}name\" or \"{ns}\" (or there "
                         "are more than %d)", peer, *s, MOD_FILTER_MAX_SELS);
            goto failed;
        }
    }
    return r;

failed:
    mod_filter_sels_free(&r->keep_sels);
    mod_filter_sels_free(&r->strip_sels);
    free(r);
    return NULL;
}

/* -------------------------------------------------------- policies --- */

/* The file a configured policy name stands for. */
static char *
mod_filter_resolve(const char *name)
{
    sw_config_t *cfg = sw_server_config();
    const char  *dir;
    sw_buf_t     b;

    sw_buf_init(&b);
    if (strchr(name, '/') == NULL) {
        dir = getenv("SKYWAVE_POLICY_DIR");
        sw_buf_printf(&b, "%s/%s%s", dir != NULL ? dir : SW_POLICY_DIR, name,
                      strlen(name) > 4
                      && strcmp(name + strlen(name) - 4, ".lua") == 0
                      ? "" : ".lua");
    } else if (name[0] == '/' || cfg == NULL || cfg->dir == NULL) {
        sw_buf_printf(&b, "%s", name);
    } else {
        sw_buf_printf(&b, "%s/%s", cfg->dir, name);
    }
    return sw_buf_steal(&b, NULL);
}

/* "file:line: " of the option's entry in the peer's section or the
 * global one, for error messages. */
static void
mod_filter_where(sw_scope_e scope, const char *name, const char *key,
                 char *buf, size_t size)
{
    sw_config_t   *cfg = sw_server_config();
    sw_csection_t *sec = NULL;
    sw_centry_t   *e = NULL;

    buf[0] = '\0';
    if (cfg == NULL) {
        return;
    }
    if (name != NULL) {
        sec = sw_config_section(cfg, scope, name);
        e = sec != NULL ? sw_config_entry(sec, key) : NULL;
    }
    if (e == NULL) {
        e = sw_config_entry(sw_config_global(cfg), key);
    }
    if (e != NULL) {
        snprintf(buf, size, "%s:%d: ", cfg->file, e->line);
    }
}

/* The deliver chain (ctx: the session) for one host's sessions. */
static sw_verdict_e
mod_filter_deliver_host(sw_stanza_t **stp, void *ctx, void *ud,
                        const char **cond)
{
    mod_filter_slot_t  *slot = ud;
    const sw_session_t *s = ctx;

    if (s == NULL || s->jid == NULL
        || strcmp(s->jid->domain, slot->host) != 0)
    {
        return SW_PASS;
    }
    return sw_policy_run(slot->pf.policy, "deliver", stp, NULL, cond);
}

static int
mod_filter_attach_to(mod_filter_t *f, const char *peer, const char *host,
                     const char *key, const char *const *names,
                     sw_chain_t *chain, const char *chain_name,
                     bool link_ctx)
{
    mod_filter_slot_t *slot;
    sw_policy_t       *p;
    char               err[1024], where[512], label[256];
    int                prio = 50;

    for (; names != NULL && *names != NULL; names++, prio--) {
        char *path = mod_filter_resolve(*names);

        p = sw_policy_load(path, &f->limits, err, sizeof(err));
        if (p == NULL) {
            mod_filter_where(host ? SW_SCOPE_HOST : SW_SCOPE_PEER,
                             host ? host : peer, key, where, sizeof(where));
            sw_log_error("%s%s: %s", where, key, err);
            free(path);
            return SW_ERROR;
        }
        if (!sw_policy_has(p, chain_name)) {
            mod_filter_where(host ? SW_SCOPE_HOST : SW_SCOPE_PEER,
                             host ? host : peer, key, where, sizeof(where));
            sw_log_warn("%s%s: %s has no %s function: it does nothing "
                        "there", where, key, path, chain_name);
        }
        slot = sw_calloc(1, sizeof(*slot));
        slot->pf.policy = p;
        slot->pf.chain = chain_name;
        slot->pf.link_ctx = link_ctx;
        slot->path = path;
        snprintf(label, sizeof(label), "%s%s%s%s",
                 peer ? "peer " : host ? "host " : "",
                 peer ? peer : host ? host : "",
                 peer || host ? ", " : "", chain_name);
        slot->host = host != NULL ? sw_strdup(host) : NULL;
        slot->where = sw_strdup(label);
        slot->next = f->slots;
        f->slots = slot;
        if (chain != NULL
            && sw_chain_add(chain, &f->mc->owner, sw_policy_name(p), prio,
                            host ? mod_filter_deliver_host : sw_policy_filter,
                            host ? (void *) slot : (void *) &slot->pf)
               != SW_OK)
        {
            return SW_ERROR;
        }
    }
    return SW_OK;
}

/* Loads the policies of one option and adds them to chain; peer names a
 * Peer section, host a VirtualHost (the deliver chain, for its sessions
 * only), neither the global section. */
static int
mod_filter_attach(mod_filter_t *f, const char *peer, const char *key,
                  const char *const *names, sw_chain_t *chain,
                  const char *chain_name, bool link_ctx)
{
    return mod_filter_attach_to(f, peer, NULL, key, names, chain,
                                chain_name, link_ctx);
}

/* One peer: its policies and C filters on its link's chains (link NULL
 * while only checking: the policies load, nothing is attached). */
static int
mod_filter_peer(mod_filter_t *f, const char *peer, sw_link_t *link)
{
    const mod_filter_conf_t *conf = sw_module_conf(f->mc, peer);
    mod_filter_rules_t      *r;

    if (mod_filter_attach(f, peer, "filter_outbound", conf->outbound,
                          link ? sw_link_chain(link, "outbound") : NULL,
                          "outbound", true) != SW_OK
        || mod_filter_attach(f, peer, "filter_inbound", conf->inbound,
                             link ? sw_link_chain(link, "inbound") : NULL,
                             "inbound", true) != SW_OK)
    {
        return SW_ERROR;
    }
    if (conf->message_keep != NULL && conf->message_strip != NULL) {
        sw_log_warn("filter: peer %s: filter_message_keep and "
                    "filter_message_strip both set: keep runs first", peer);
    }
    r = mod_filter_rules_new(conf, peer);
    if (r == NULL) {
        return conf->message_keep != NULL || conf->message_strip != NULL
               ? SW_ERROR : SW_OK;
    }
    r->next = f->rules;
    f->rules = r;
    /* before the policies: what the C filters drop costs no Lua call */
    if (link != NULL
        && sw_chain_add(sw_link_chain(link, "outbound"), &f->mc->owner,
                        "filter", 100, mod_filter_rules_run, r) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

typedef struct mod_filter_each_s {
    mod_filter_t *f;
    int           rc;
} mod_filter_each_t;

static void
mod_filter_link(sw_link_t *l, void *ud)
{
    mod_filter_each_t *e = ud;

    if (e->rc == SW_OK && mod_filter_peer(e->f, sw_link_name(l), l) != SW_OK)
    {
        e->rc = SW_ERROR;
    }
}

static void
mod_filter_free_all(mod_filter_t *f)
{
    mod_filter_slot_t  *s;
    mod_filter_rules_t *r;

    while ((s = f->slots) != NULL) {
        f->slots = s->next;
        sw_policy_unref(s->pf.policy);
        free(s->path);
        free(s->where);
        free(s->host);
        free(s);
    }
    while ((r = f->rules) != NULL) {
        f->rules = r->next;
        mod_filter_sels_free(&r->keep_sels);
        mod_filter_sels_free(&r->strip_sels);
        free(r);
    }
}

/* While checking (skywaved -t) every policy is loaded, so that a broken
 * one is reported; when running they load at start, with the links. */
static int
mod_filter_check(sw_module_ctx_t *mc)
{
    mod_filter_t  *f = mc->data;
    sw_config_t   *cfg = sw_server_config();
    size_t         i;
    int            rc = SW_OK;

    if (!sw_server_checking() || cfg == NULL) {
        return SW_OK;
    }
    for (i = 1; i < cfg->n_sections && rc == SW_OK; i++) {
        if (cfg->sections[i].scope == SW_SCOPE_PEER) {
            rc = mod_filter_peer(f, cfg->sections[i].name, NULL);
        }
    }
    if (rc == SW_OK) {
        const mod_filter_conf_t *conf = mc->conf;

        rc = mod_filter_attach(f, NULL, "filter_preroute", conf->preroute,
                               NULL, "preroute", false);
    }
    for (i = 1; i < cfg->n_sections && rc == SW_OK; i++) {
        if (cfg->sections[i].scope == SW_SCOPE_HOST) {
            const mod_filter_conf_t *hc =
                sw_module_conf(mc, cfg->sections[i].name);

            rc = mod_filter_attach_to(f, NULL, cfg->sections[i].name,
                                      "filter_deliver", hc->deliver, NULL,
                                      "deliver", false);
        }
    }
    mod_filter_free_all(f);
    return rc;
}

static int
mod_filter_load(sw_module_ctx_t *mc)
{
    const mod_filter_conf_t *conf = mc->conf;
    mod_filter_t            *f = sw_calloc(1, sizeof(*f));

    f->mc = mc;
    if (mod_filter_cs.n == 0) {
        mod_filter_shared_init();
    }
    f->limits.memory = conf->memory;
    f->limits.instructions = (unsigned) conf->instructions;
    mc->data = f;
    return SW_OK;
}

/* A VirtualHost's deliver policies (its own, or the global ones), for
 * its sessions. */
static void
mod_filter_host(sw_host_t *h, void *ud)
{
    mod_filter_each_t       *e = ud;
    const mod_filter_conf_t *conf;

    if (e->rc != SW_OK || strcmp(h->kind, "host") != 0) {
        return;
    }
    conf = sw_module_conf(e->f->mc, h->name);
    e->rc = mod_filter_attach_to(e->f, NULL, h->name, "filter_deliver",
                                 conf->deliver, sw_chain_declare("deliver"),
                                 "deliver", false);
}

static int
mod_filter_start(sw_module_ctx_t *mc)
{
    mod_filter_t            *f = mc->data;
    const mod_filter_conf_t *conf = mc->conf;
    mod_filter_each_t        e = { f, SW_OK };

    sw_link_each(mod_filter_link, &e);
    if (e.rc != SW_OK
        || mod_filter_attach(f, NULL, "filter_preroute", conf->preroute,
                             sw_chain_declare("preroute"), "preroute", false)
           != SW_OK)
    {
        return SW_ERROR;
    }
    sw_host_each(mod_filter_host, &e);
    return e.rc;
}

/* SIGHUP: every policy is read again; one that fails keeps running. */
static void
mod_filter_reload(sw_module_ctx_t *mc)
{
    mod_filter_t      *f = mc->data;
    mod_filter_slot_t *s;
    sw_policy_t       *p;
    char               err[1024];

    for (s = f->slots; s != NULL; s = s->next) {
        p = sw_policy_load(s->path, &f->limits, err, sizeof(err));
        if (p == NULL) {
            sw_log_error("filter: %s: keeping the running policy %s: %s",
                         s->where, sw_policy_name(s->pf.policy), err);
            continue;
        }
        sw_policy_unref(s->pf.policy);
        s->pf.policy = p;
        sw_log_info("filter: %s: policy %s reloaded", s->where,
                    sw_policy_name(p));
    }
}

static void
mod_filter_stop(sw_module_ctx_t *mc)
{
    mod_filter_t *f = mc->data;

    sw_owner_release(&mc->owner);
    if (f != NULL) {
        mod_filter_free_all(f);
        free(f);
    }
    mc->data = NULL;
    mod_filter_shared_free();
}

#define MOD_FILTER_PEER (SW_SCOPE_GLOBAL | SW_SCOPE_PEER)

static const sw_option_t mod_filter_options[] = {
    { "filter_outbound", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, outbound), MOD_FILTER_PEER, 0, 0, 0, NULL,
      NULL, "policies run on what goes to the peer, in order (a standard "
      "policy's name, or a file)" },
    { "filter_inbound", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, inbound), MOD_FILTER_PEER, 0, 0, 0, NULL,
      NULL, "policies run on what comes from the peer, in order" },
    { "filter_preroute", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, preroute), SW_SCOPE_GLOBAL, 0, 0, 0, NULL,
      NULL, "policies run on every stanza the server routes" },
    { "filter_deliver", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, deliver), SW_SCOPE_GLOBAL | SW_SCOPE_HOST,
      0, 0, 0, NULL, NULL, "policies run on every stanza handed to a "
      "client session (in a VirtualHost: that host's sessions)" },
    { "filter_drop_chat_states", SW_OPT_BOOL,
      offsetof(mod_filter_conf_t, drop_chat_states), MOD_FILTER_PEER, 0, 0,
      0, "false", NULL, "XEP-0085 notifications stay here; messages with "
      "a body lose only their chat state" },
    { "filter_drop_presence", SW_OPT_BOOL,
      offsetof(mod_filter_conf_t, drop_presence), MOD_FILTER_PEER, 0, 0, 0,
      "false", NULL, "no presence goes to the peer (message-only)" },
    { "filter_iq_allow", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, iq_allow), MOD_FILTER_PEER, 0, 0, 0, NULL,
      NULL, "IQ requests go to the peer only with these payload "
      "namespaces; others are answered <service-unavailable/> here" },
    { "filter_message_keep", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, message_keep), MOD_FILTER_PEER, 0, 0, 0,
      NULL, NULL, "a message keeps only these children (\"name\", "
      "\"{ns}name\", \"{ns}\"), and always its body" },
    { "filter_message_strip", SW_OPT_STRLIST,
      offsetof(mod_filter_conf_t, message_strip), MOD_FILTER_PEER, 0, 0, 0,
      NULL, NULL, "children taken out of a message (\"name\", "
      "\"{ns}name\", \"{ns}\")" },
    { "filter_presence_fold", SW_OPT_ENUM,
      offsetof(mod_filter_conf_t, presence_fold), MOD_FILTER_PEER, 0, 0, 0,
      "none", mod_filter_folds, "presence keeps only show, status and "
      "priority (show), or nothing (available); room payloads stay" },
    { "filter_policy_memory", SW_OPT_SIZE,
      offsetof(mod_filter_conf_t, memory), SW_SCOPE_GLOBAL, 0, 65536,
      (int64_t) 1024 * 1024 * 1024, "4M", NULL,
      "memory one policy's Lua state may hold" },
    { "filter_policy_instructions", SW_OPT_INT,
      offsetof(mod_filter_conf_t, instructions), SW_SCOPE_GLOBAL, 0, 1000,
      1000000000, "1000000", NULL,
      "Lua instructions one call of a policy may run" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "filter",
    .help = "what crosses each peer link: Lua policies and C filters",
    .options = mod_filter_options,
    .conf_size = sizeof(mod_filter_conf_t),
    .load = mod_filter_load,
    .check = mod_filter_check,
    .start = mod_filter_start,
    .reload = mod_filter_reload,
    .stop = mod_filter_stop,
};
