/*
 * mod_presence_cache: presence of remote contacts answered here.
 *
 * When a client comes online, its server probes every contact it is
 * subscribed to (RFC 6121 §4.3.1): one probe per remote contact across
 * the link, and the answers back; on a 2400 bit/s link, seconds per
 * contact.  This module keeps the latest presence each remote contact's
 * server sent over a peer link (its broadcasts and its answers to
 * probes, both addressed to a bare JID: §4.2.2, §4.3.2), and answers a
 * probe for a contact it knows from that, at once; the probe never
 * crosses.  A contact it knows nothing of (or no longer knows: see
 * below) is probed as usual, and the answer fills the cache.
 *
 * Exact while the peer's stream is: the link delivers every presence in
 * order and exactly once, queued across outages and restarts, so each
 * update reaches the cache.  What breaks that:
 *   - stanzas expired in the peer's queue (peer_expire_presence):
 *     link/gap (the peer's numbering skips; also after its restart)
 *     forgets everything learnt over that link;
 *   - the peer server restarted (a kill -9 ends its users' sessions with
 *     no unavailable presence): on start, this module tells each Skywave
 *     peer, with a presence of type unavailable from each of its domains
 *     carrying <reset xmlns='urn:skywave:presence-cache:0'/>, and a cache
 *     that receives one forgets every contact of that domain (a server
 *     without the module ignores a presence to its domain, RFC 6121
 *     §8.5.1); a plain XEP-0361 peer is never sent one, so contacts
 *     behind one are cached only with presence_cache_plain_peers;
 *   - this server restarting: the cache lives in memory and starts
 *     empty, knowingly: the first login probes, as without it.
 * A contact is answered for only once its server has told all its
 * resources: the answer to a probe that crossed, or what follows its
 * approval of a subscription (RFC 6121 §3.1.5); a presence seen without
 * either (the cache just started) may leave other resources out.
 * Directed presence (to a full JID) is not what the contact shows its
 * roster, and is not cached.  The cache answers any local user whose
 * roster says it is subscribed to the contact (mod_im probes only
 * those), with what the contact last broadcast.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#define MOD_PC_NS_RESET "urn:skywave:presence-cache:0"

typedef struct mod_pc_conf_s {
    size_t  max_bytes;
    bool    plain_peers;
} mod_pc_conf_t;

/*
 * One remote contact (a bare JID).  Its resources are all known only
 * once its server has told them all: the answer to a probe, or what it
 * sends after approving a subscription (RFC 6121 §3.1.5, §4.3.2); from
 * then on its broadcasts keep the set exact.  Until then (presence seen
 * without a probe before it: other resources may be online) the cache
 * tracks it but does not answer for it.
 */
typedef struct mod_pc_contact_s {
    char       *peer;           /* the link it came over */
    sw_hash_t  *resources;      /* full JID -> char * (presence XML) */
    size_t      bytes;
    bool        asked;          /* a probe or an approval went by */
    bool        complete;       /* every resource is known */
} mod_pc_contact_t;

typedef struct mod_pc_s {
    sw_module_ctx_t *mc;
    sw_hash_t       *contacts;  /* bare JID -> mod_pc_contact_t */
    size_t           bytes;
    uint64_t         answered;  /* probes answered here */
    uint64_t         passed;    /* probes that crossed: contact unknown */
    sw_log_rl_t      rl;
} mod_pc_t;

static mod_pc_t *mod_pc;        /* for the link/gap handler's lookups */

/* ----------------------------------------------------------- cache --- */

static void
mod_pc_free_value(const char *key, void *value, void *ud)
{
    size_t *bytes = ud;

    (void) key;
    if (bytes != NULL) {
        *bytes += strlen(value);
    }
    free(value);
}

static void
mod_pc_contact_free(mod_pc_contact_t *c)
{
    sw_hash_each(c->resources, mod_pc_free_value, NULL);
    sw_hash_free(c->resources);
    free(c->peer);
    free(c);
}

static void
mod_pc_forget(mod_pc_t *pc, const char *bare)
{
    mod_pc_contact_t *c = sw_hash_get(pc->contacts, bare);

    if (c != NULL) {
        pc->bytes -= c->bytes;
        sw_hash_set(pc->contacts, bare, NULL);
        mod_pc_contact_free(c);
    }
}

typedef struct mod_pc_match_s {
    const char  *peer;          /* forget what came over this link... */
    const char  *domain;        /* ...or what belongs to this domain */
    char       **keys;
    size_t       n;
} mod_pc_match_t;

static void
mod_pc_collect(const char *key, void *value, void *ud)
{
    mod_pc_match_t   *m = ud;
    mod_pc_contact_t *c = value;
    const char       *at = strchr(key, '@');

    if ((m->peer != NULL && strcmp(c->peer, m->peer) == 0)
        || (m->domain != NULL && at != NULL
            && strcmp(at + 1, m->domain) == 0))
    {
        m->keys[m->n++] = sw_strdup(key);
    }
}

static size_t
mod_pc_forget_matching(mod_pc_t *pc, const char *peer, const char *domain)
{
    mod_pc_match_t m = { peer, domain, NULL, 0 };
    size_t         i;

    m.keys = sw_calloc(sw_hash_count(pc->contacts) + 1, sizeof(char *));
    sw_hash_each(pc->contacts, mod_pc_collect, &m);
    for (i = 0; i < m.n; i++) {
        mod_pc_forget(pc, m.keys[i]);
        free(m.keys[i]);
    }
    free(m.keys);
    return m.n;
}

/* The presence as it is kept: no 'to', no 'id' (both are the copy's). */
static char *
mod_pc_serialize(const sw_stanza_t *st)
{
    sw_pool_t *pool = sw_pool_new(512);
    sw_xml_t  *x = sw_xml_copy(pool, st->xml);
    sw_xml_attr_t **a;
    char      *s;

    for (a = &x->attrs; *a != NULL; ) {
        if ((*a)->ns == NULL && (strcmp((*a)->name, "to") == 0
                                 || strcmp((*a)->name, "id") == 0))
        {
            *a = (*a)->next;
        } else {
            a = &(*a)->next;
        }
    }
    s = sw_xml_to_string(x, NULL);      /* with its xmlns: parsed alone */
    sw_pool_free(pool);
    return s;
}

/*
 * Learns from a presence the peer sent: an available one (a resource's
 * state), an unavailable one (from a full JID: that resource went; from
 * the bare JID: the contact is offline, as the answer to a probe says).
 * The contact is known from then on; known and without resources means
 * offline.
 */
/* The contact bare, made if new (NULL: the cache is full). */
static mod_pc_contact_t *
mod_pc_contact(mod_pc_t *pc, const char *peer, const char *bare)
{
    const mod_pc_conf_t *conf = pc->mc->conf;
    mod_pc_contact_t    *c = sw_hash_get(pc->contacts, bare);

    if (c != NULL) {
        return c;
    }
    if (pc->bytes + 512 > conf->max_bytes) {
        sw_log_rl_warn(&pc->rl, "presence_cache: full (%zu bytes, "
                       "presence_cache_max): %s is not cached", pc->bytes,
                       bare);
        return NULL;
    }
    c = sw_calloc(1, sizeof(*c));
    c->peer = sw_strdup(peer);
    c->resources = sw_hash_new(2);
    c->bytes = strlen(bare) + 64;
    pc->bytes += c->bytes;
    sw_hash_set(pc->contacts, bare, c);
    return c;
}

static void
mod_pc_learn(mod_pc_t *pc, sw_link_t *link, const sw_stanza_t *st)
{
    const mod_pc_conf_t *conf = pc->mc->conf;
    mod_pc_contact_t    *c;
    const char          *bare = st->from->bare;
    char                *xml, *old;
    size_t               freed = 0;

    c = mod_pc_contact(pc, sw_link_name(link), bare);
    if (c == NULL) {
        return;
    }
    if (c->asked) {
        /* the answer: the whole set comes now, in one go */
        c->asked = false;
        c->complete = true;
    }
    if (st->type == NULL) {
        if (st->from->resource == NULL) {
            return;         /* available from a bare JID: not a resource */
        }
        xml = mod_pc_serialize(st);
        if (pc->bytes + strlen(xml) > conf->max_bytes) {
            free(xml);
            mod_pc_forget(pc, bare);    /* half known is not known */
            return;
        }
        old = sw_hash_get(c->resources, st->from->full);
        if (old != NULL) {
            c->bytes -= strlen(old);
            pc->bytes -= strlen(old);
            free(old);
        }
        sw_hash_set(c->resources, st->from->full, xml);
        c->bytes += strlen(xml);
        pc->bytes += strlen(xml);
        return;
    }
    /* unavailable */
    if (st->from->resource == NULL) {
        c->complete = true;             /* every resource: none */
        sw_hash_each(c->resources, mod_pc_free_value, &freed);
        sw_hash_free(c->resources);
        c->resources = sw_hash_new(2);
    } else if ((old = sw_hash_get(c->resources, st->from->full)) != NULL) {
        freed = strlen(old);
        sw_hash_set(c->resources, st->from->full, NULL);
        free(old);
    }
    c->bytes -= freed;
    pc->bytes -= freed;
}

/* --------------------------------------------------------- filters --- */

/* Is st a peer's reset (its server started: every contact there went)? */
static bool
mod_pc_is_reset(const sw_stanza_t *st)
{
    return st->type != NULL && strcmp(st->type, "unavailable") == 0
           && st->from->node == NULL
           && sw_xml_child(st->xml, MOD_PC_NS_RESET, "reset") != NULL;
}

/* A link's inbound chain: presence from the peer's users, as it passes. */
static sw_verdict_e
mod_pc_inbound(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    mod_pc_t          *pc = ud;
    sw_link_t         *link = ctx;
    const sw_stanza_t *st = *stp;
    mod_pc_contact_t  *c;
    size_t             n;

    (void) cond;
    if (st->kind != SW_STANZA_PRESENCE || st->from == NULL
        || st->to == NULL)
    {
        return SW_PASS;
    }
    if (mod_pc_is_reset(st)) {
        n = mod_pc_forget_matching(pc, NULL, st->from->domain);
        sw_log_info("presence_cache: %s restarted: %zu contacts there "
                    "forgotten", st->from->domain, n);
        return SW_DROP;
    }
    if (st->from->node != NULL && st->type != NULL
        && strcmp(st->type, "subscribed") == 0)
    {
        /* §3.1.5: the contact's presence follows, every resource */
        c = mod_pc_contact(pc, sw_link_name(link), st->from->bare);
        if (c != NULL) {
            c->asked = true;
        }
        return SW_PASS;
    }
    if (st->from->node == NULL || st->to->resource != NULL
        || (st->type != NULL && strcmp(st->type, "unavailable") != 0))
    {
        return SW_PASS;     /* directed, or not a state */
    }
    mod_pc_learn(pc, link, st);
    return SW_PASS;
}

typedef struct mod_pc_answer_s {
    const sw_stanza_t *probe;
    size_t             n;
} mod_pc_answer_t;

static void
mod_pc_answer_one(const char *full, void *value, void *ud)
{
    mod_pc_answer_t *a = ud;
    sw_stanza_t     *st = sw_stanza_parse(value, strlen(value));

    (void) full;
    if (st == NULL) {
        return;
    }
    sw_stanza_set_to(st, a->probe->from);
    sw_route(st);
    a->n++;
}

/*
 * A link's outbound chain: a probe of a local user for a contact the
 * cache knows is answered here (RFC 6121 §4.3.2: the contact's available
 * resources, or unavailable from its bare JID), and never crosses.
 */
static sw_verdict_e
mod_pc_outbound(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    mod_pc_t          *pc = ud;
    const sw_stanza_t *st = *stp;
    mod_pc_contact_t  *c;
    mod_pc_answer_t    a = { st, 0 };
    sw_stanza_t       *off;
    sw_xml_t          *x;
    sw_pool_t         *pool;

    (void) cond;
    if (st->kind != SW_STANZA_PRESENCE || st->type == NULL
        || strcmp(st->type, "probe") != 0 || st->to == NULL
        || st->to->resource != NULL || st->from == NULL
        || sw_host_find(st->from->domain) == NULL)
    {
        return SW_PASS;
    }
    c = sw_hash_get(pc->contacts, st->to->bare);
    if (c == NULL || !c->complete) {
        /* the answer will make it complete */
        c = mod_pc_contact(pc, sw_link_name(ctx), st->to->bare);
        if (c != NULL) {
            c->asked = true;
        }
        pc->passed++;
        return SW_PASS;
    }
    sw_hash_each(c->resources, mod_pc_answer_one, &a);
    if (a.n == 0) {
        pool = sw_pool_new(256);
        x = sw_xml_new(pool, st->xml->ns, "presence");
        sw_xml_set_attr(x, "type", "unavailable");
        sw_xml_set_attr(x, "from", st->to->bare);
        sw_xml_set_attr(x, "to", st->from->full);
        off = sw_stanza_new(pool, x, NULL);
        if (off != NULL) {
            sw_route(off);
        } else {
            sw_pool_free(pool);
        }
    }
    pc->answered++;
    sw_log_debug("presence_cache: probe of %s for %s answered here (%zu "
                 "resources)", st->from->bare, st->to->bare, a.n);
    return SW_DROP;
}

/* ---------------------------------------------------------- events --- */

static int
mod_pc_on_gap(void *data, void *ud)
{
    sw_link_event_t *ev = data;
    size_t           n;

    (void) ud;
    n = mod_pc_forget_matching(mod_pc, ev->peer, NULL);
    if (n > 0) {
        sw_log_info("presence_cache: link %s: %s: %zu contacts forgotten "
                    "(probed again when asked)", ev->peer, ev->reason, n);
    }
    return SW_DECLINED;
}

typedef struct mod_pc_reset_s {
    sw_link_t *link;
} mod_pc_reset_t;

static void
mod_pc_reset_host(sw_host_t *h, void *ud)
{
    mod_pc_reset_t         *r = ud;
    const sw_peer_conf_t   *pcf = sw_link_conf(r->link);
    sw_pool_t              *pool;
    sw_xml_t               *x;
    sw_stanza_t            *st;

    if (strcmp(h->kind, "host") != 0 || pcf->domains == NULL
        || pcf->domains[0] == NULL)
    {
        return;
    }
    pool = sw_pool_new(256);
    x = sw_xml_new(pool, SW_NS_SERVER, "presence");
    sw_xml_set_attr(x, "type", "unavailable");
    sw_xml_set_attr(x, "from", h->name);
    sw_xml_set_attr(x, "to", pcf->domains[0]);
    sw_xml_add(x, MOD_PC_NS_RESET, "reset");
    st = sw_stanza_new(pool, x, NULL);
    if (st == NULL) {
        sw_pool_free(pool);
        return;
    }
    sw_route(st);
}

static void
mod_pc_reset_link(sw_link_t *l, void *ud)
{
    mod_pc_reset_t r = { l };

    (void) ud;
    if (sw_link_conf(l)->protocol == SW_LINK_PROTOCOL_XEP0361) {
        return;
    }
    sw_host_each(mod_pc_reset_host, &r);
}

/* Once the link queues are loaded: our users are all offline now. */
static int
mod_pc_on_started(void *data, void *ud)
{
    (void) data;
    (void) ud;
    sw_link_each(mod_pc_reset_link, NULL);
    return SW_DECLINED;
}

/* ------------------------------------------------------- lifecycle --- */

static void
mod_pc_link(sw_link_t *l, void *ud)
{
    mod_pc_t            *pc = ud;
    const mod_pc_conf_t *conf = pc->mc->conf;

    if (sw_link_conf(l)->protocol == SW_LINK_PROTOCOL_XEP0361
        && !conf->plain_peers)
    {
        return;             /* no reset would come from it: not exact */
    }
    /* inbound after the policies (what they drop is not learnt),
     * outbound before them (a probe answered here costs nothing) */
    sw_chain_add(sw_link_chain(l, "inbound"), &pc->mc->owner,
                 "presence_cache", -100, mod_pc_inbound, pc);
    sw_chain_add(sw_link_chain(l, "outbound"), &pc->mc->owner,
                 "presence_cache", 200, mod_pc_outbound, pc);
}

static int
mod_pc_load(sw_module_ctx_t *mc)
{
    mod_pc_t *pc = sw_calloc(1, sizeof(*pc));

    pc->mc = mc;
    pc->contacts = sw_hash_new(64);
    mc->data = pc;
    mod_pc = pc;
    return SW_OK;
}

static int
mod_pc_start(sw_module_ctx_t *mc)
{
    mod_pc_t *pc = mc->data;

    sw_link_each(mod_pc_link, pc);
    if (sw_hook_add(&mc->owner, "link/gap", 0, mod_pc_on_gap, pc) != SW_OK
        || sw_hook_add(&mc->owner, "server/started", 0, mod_pc_on_started,
                       pc) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_pc_free_contact(const char *key, void *value, void *ud)
{
    (void) key;
    (void) ud;
    mod_pc_contact_free(value);
}

static void
mod_pc_stop(sw_module_ctx_t *mc)
{
    mod_pc_t *pc = mc->data;

    sw_owner_release(&mc->owner);
    if (pc != NULL) {
        sw_log_info("presence_cache: %llu probes answered here, %llu "
                    "crossed", (unsigned long long) pc->answered,
                    (unsigned long long) pc->passed);
        sw_hash_each(pc->contacts, mod_pc_free_contact, NULL);
        sw_hash_free(pc->contacts);
        free(pc);
    }
    mc->data = NULL;
    mod_pc = NULL;
}

static const sw_option_t mod_pc_options[] = {
    { "presence_cache_max", SW_OPT_SIZE,
      offsetof(mod_pc_conf_t, max_bytes), SW_SCOPE_GLOBAL, 0, 4096,
      (int64_t) 1024 * 1024 * 1024, "16M", NULL,
      "bytes of cached presence; contacts past it are probed as usual" },
    { "presence_cache_plain_peers", SW_OPT_BOOL,
      offsetof(mod_pc_conf_t, plain_peers), SW_SCOPE_GLOBAL, 0, 0, 0,
      "false", NULL, "also cache contacts behind peer_protocol = "
      "\"xep0361\" peers (they send no reset when they restart: a "
      "contact may show online after its server died)" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "presence_cache",
    .help = "remote contacts' presence answered here, no probe crossing "
            "the link",
    .options = mod_pc_options,
    .conf_size = sizeof(mod_pc_conf_t),
    .load = mod_pc_load,
    .start = mod_pc_start,
    .stop = mod_pc_stop,
};
