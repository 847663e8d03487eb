/*
 * mod_muc: the module, its services (one per Component naming it), the
 * dispatch of what reaches a service, service discovery (XEP-0045 §6)
 * and the rooms' storage.  Occupants, messages and configuration are in
 * mod_muc_room.c.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "mod_muc.h"

typedef struct {
    sw_module_ctx_t   *mc;
    mod_muc_service_t *services;
} mod_muc_t;

/* ----------------------------------------------------------- helpers --- */

/* Routes the stanza x (in pool) as the service's own. */
void
mod_muc_send(sw_pool_t *pool, sw_xml_t *x)
{
    sw_stanza_t *st = sw_stanza_new(pool, x, NULL);

    if (st == NULL) {
        sw_pool_free(pool);
        return;
    }
    sw_route(st);
}

/* Answers st with cond (its RFC 6120 type); never an error to an error. */
void
mod_muc_error(const sw_stanza_t *st, const char *cond)
{
    if (st->type != NULL && strcmp(st->type, "error") == 0) {
        return;
    }
    sw_route(sw_stanza_error_reply(st, NULL, cond, NULL));
}

static const char *const mod_muc_aff_names[] = {
    "outcast", "none", "member", "admin", "owner"
};

const char *
mod_muc_aff_name(mod_muc_aff_e a)
{
    return mod_muc_aff_names[a + 1];
}

const char *
mod_muc_role_name(mod_muc_role_e r)
{
    static const char *const names[] = {
        "none", "visitor", "participant", "moderator"
    };

    return names[r];
}

int
mod_muc_aff_parse(const char *s)
{
    int i;

    for (i = 0; i < 5; i++) {
        if (strcmp(s, mod_muc_aff_names[i]) == 0) {
            return i - 1;
        }
    }
    return -2;
}

/* Affiliations are kept as aff + 2 so that none (0) is not NULL. */
mod_muc_aff_e
mod_muc_aff(const mod_muc_room_t *r, const char *bare)
{
    intptr_t v = (intptr_t) sw_hash_get(r->affs, bare);

    return v == 0 ? MOD_MUC_AFF_NONE : (mod_muc_aff_e) (v - 2);
}

void
mod_muc_set_aff(mod_muc_room_t *r, const char *bare, mod_muc_aff_e a)
{
    const char *name = mod_muc_aff_name(a);

    sw_hash_set(r->affs, bare,
                a == MOD_MUC_AFF_NONE ? NULL : (void *) (intptr_t) (a + 2));
    if (r->conf.persistent) {
        r->svc->st->map_set(r->svc->st, MOD_MUC_STORE_AFFS, r->svc->domain,
                            r->node, bare,
                            a == MOD_MUC_AFF_NONE ? NULL : name,
                            strlen(name));
    }
}

/* ------------------------------------------------------ gone later --- */

typedef struct mod_muc_gone_s {
    struct mod_muc_gone_s *next;
    char                  *room;
    char                  *jid;
} mod_muc_gone_t;

#define MOD_MUC_GONE_MAX 1024           /* waiting at most: more are lost */

static void
mod_muc_on_gone(uv_timer_t *t)
{
    static const int gone[] = { 110, 333, 0 };     /* §9.? "error kick" */
    mod_muc_service_t *svc = t->data;
    mod_muc_gone_t    *g = svc->gone, *next;

    svc->gone = NULL;
    svc->n_gone = 0;
    for (; g != NULL; g = next) {
        mod_muc_room_t *r = sw_hash_get(svc->rooms, g->room);
        mod_muc_occ_t  *o = r ? mod_muc_occ_by_jid(r, g->jid) : NULL;

        next = g->next;
        if (o != NULL) {
            mod_muc_leave(r, o, NULL, gone, NULL);
        }
        free(g->room);
        free(g->jid);
        free(g);
    }
}

void
mod_muc_gone_later(mod_muc_service_t *svc, const char *node, const char *jid)
{
    mod_muc_gone_t *g;

    if (svc->n_gone >= MOD_MUC_GONE_MAX) {
        return;
    }
    g = sw_calloc(1, sizeof(*g));
    g->room = sw_strdup(node);
    g->jid = sw_strdup(jid);
    g->next = svc->gone;
    svc->gone = g;
    svc->n_gone++;
    if (svc->gone_timer == NULL) {
        svc->gone_timer = sw_calloc(1, sizeof(*svc->gone_timer));
        uv_timer_init(sw_loop(), svc->gone_timer);
        svc->gone_timer->data = svc;
    }
    if (!uv_is_active((uv_handle_t *) svc->gone_timer)) {
        uv_timer_start(svc->gone_timer, mod_muc_on_gone, 0, 0);
    }
}

static void
mod_muc_free_handle(uv_handle_t *h)
{
    free(h);
}

/* ---------------------------------------------------- IQ forwarding --- */

static void
mod_muc_fwd_clear(mod_muc_fwd_t *f)
{
    free(f->requester);
    free(f->target);
    free(f->orig_id);
    free(f->from);
    memset(f, 0, sizeof(*f));
}

/*
 * XEP-0045 §17.4 (bizrules-iq): an IQ to an occupant JID goes to that
 * occupant's real JID, from the sender's occupant JID and under an id of
 * the room's, so that neither learns the other's real JID; its answer
 * goes back the same way.  An occupant behind another node (XEP-0289) is
 * asked through that node, at its occupant JID there, which passes the
 * IQ on the same way (XEP-0289 routes private messages so; IQs follow).
 */
void
mod_muc_fwd_request(mod_muc_room_t *r, const mod_muc_occ_t *from,
                    const mod_muc_occ_t *to, const sw_stanza_t *st)
{
    mod_muc_service_t *svc = r->svc;
    uint64_t           n = ++svc->fwd_n;
    mod_muc_fwd_t     *f = &svc->fwd[n % MOD_MUC_FWD_MAX];
    sw_pool_t         *pool = sw_pool_new(sw_pool_used(st->pool) + 256);
    sw_xml_t          *x = sw_xml_copy(pool, st->xml);
    char               buf[1024];

    mod_muc_fwd_clear(f);               /* the oldest, unanswered, goes */
    f->n = n;
    f->requester = sw_strdup(st->from->full);
    if (to->node != NULL) {
        snprintf(buf, sizeof(buf), "%s/%s", to->node, to->nick);
        f->target = sw_strdup(buf);
    } else {
        f->target = sw_strdup(to->jid);
    }
    f->orig_id = sw_strdup(st->id ? st->id : "");
    snprintf(buf, sizeof(buf), "%s/%s", r->jid, to->nick);
    f->from = sw_strdup(buf);
    snprintf(buf, sizeof(buf), "%s/%s", r->jid, from->nick);
    sw_xml_set_attr(x, "from", buf);
    sw_xml_set_attr(x, "to", f->target);
    mod_muc_strip(x, MOD_MUC_NS_FMUC, "fmuc", NULL);
    if (to->node != NULL) {
        mod_muc_fmuc_mark(x, from->jid);
    }
    snprintf(buf, sizeof(buf), "muc%llu", (unsigned long long) n);
    sw_xml_set_attr(x, "id", buf);
    mod_muc_send(pool, x);
}

void
mod_muc_fwd_response(mod_muc_service_t *svc, const sw_stanza_t *st)
{
    unsigned long long n;
    char               tail;
    mod_muc_fwd_t     *f;
    sw_pool_t         *pool;
    sw_xml_t          *x;

    if (st->id == NULL || sscanf(st->id, "muc%llu%c", &n, &tail) != 1) {
        return;
    }
    f = &svc->fwd[n % MOD_MUC_FWD_MAX];
    if (f->n != n || strcmp(st->from->full, f->target) != 0) {
        return;                         /* not ours, or long forgotten */
    }
    pool = sw_pool_new(sw_pool_used(st->pool) + 256);
    x = sw_xml_copy(pool, st->xml);
    sw_xml_set_attr(x, "from", f->from);
    sw_xml_set_attr(x, "to", f->requester);
    sw_xml_set_attr(x, "id", f->orig_id);
    mod_muc_fwd_clear(f);
    mod_muc_send(pool, x);
}

/* ------------------------------------------------------------- rooms --- */

mod_muc_room_t *
mod_muc_room_new(mod_muc_service_t *svc, const char *node)
{
    mod_muc_room_t *r = sw_calloc(1, sizeof(*r));
    size_t          n = strlen(node) + strlen(svc->domain) + 2;

    r->svc = svc;
    r->node = sw_strdup(node);
    r->jid = sw_alloc(n);
    snprintf(r->jid, n, "%s@%s", node, svc->domain);
    r->affs = sw_hash_new(8);
    r->conf.name = sw_strdup("");
    r->conf.desc = sw_strdup("");
    r->conf.public = true;
    r->conf.change_subject = true;
    r->conf.history = svc->conf->history_length;
    sw_hash_set(svc->rooms, node, r);
    return r;
}

static void
mod_muc_room_free(mod_muc_room_t *r)
{
    free(r->node);
    free(r->jid);
    free(r->conf.name);
    free(r->conf.desc);
    free(r->conf.password);
    free(r->conf.fmuc_node);
    for (; r->n_nodes > 0; r->n_nodes--) {
        free(r->nodes[r->n_nodes - 1]);
    }
    free(r->nodes);
    free(r->nodes_replica);
    free(r->subject);
    free(r->subject_by);
    sw_hash_free(r->affs);
    mod_muc_fmuc_seen_free(r);
    free(r);
}

/* The room goes, with its history and what is stored of it; it has no
 * occupants left. */
void
mod_muc_room_destroy(mod_muc_room_t *r)
{
    sw_storage_t *st = r->svc->st;

    sw_log_debug("muc: room %s destroyed", r->jid);
    st->map_set(st, MOD_MUC_STORE_ROOMS, r->svc->domain, "rooms", r->node,
                NULL, 0);
    st->map_clear(st, MOD_MUC_STORE_AFFS, r->svc->domain, r->node);
    st->archive_delete(st, MOD_MUC_STORE_HIST, r->svc->domain, r->node, 0, 0,
                       NULL);
    mod_muc_fmuc_clear(r);
    sw_hash_set(r->svc->rooms, r->node, NULL);
    mod_muc_room_free(r);
}

static void
mod_muc_save_aff(const char *bare, void *v, void *ud)
{
    mod_muc_room_t *r = ud;
    const char     *name = mod_muc_aff_name((mod_muc_aff_e) ((intptr_t) v - 2));

    r->svc->st->map_set(r->svc->st, MOD_MUC_STORE_AFFS, r->svc->domain,
                        r->node, bare, name, strlen(name));
}

static void
mod_muc_flag(sw_xml_t *x, const char *name, bool v)
{
    sw_xml_set_attr(x, name, v ? "1" : "0");
}

/* A persistent room's configuration and subject go to storage; a room
 * that stopped being persistent leaves it. */
void
mod_muc_room_save(mod_muc_room_t *r)
{
    sw_storage_t *st = r->svc->st;
    sw_pool_t    *pool;
    sw_xml_t     *x;
    char         *text, num[32];

    if (!r->conf.persistent) {
        st->map_set(st, MOD_MUC_STORE_ROOMS, r->svc->domain, "rooms", r->node,
                    NULL, 0);
        st->map_clear(st, MOD_MUC_STORE_AFFS, r->svc->domain, r->node);
        return;
    }
    pool = sw_pool_new(1024);
    x = sw_xml_new(pool, NULL, "room");
    sw_xml_set_attr(x, "name", r->conf.name);
    sw_xml_set_attr(x, "desc", r->conf.desc);
    if (r->conf.password != NULL) {
        sw_xml_set_attr(x, "password", r->conf.password);
    }
    mod_muc_flag(x, "public", r->conf.public);
    mod_muc_flag(x, "members_only", r->conf.members_only);
    mod_muc_flag(x, "moderated", r->conf.moderated);
    mod_muc_flag(x, "whois_anyone", r->conf.whois_anyone);
    mod_muc_flag(x, "change_subject", r->conf.change_subject);
    mod_muc_flag(x, "locked", r->locked);
    snprintf(num, sizeof(num), "%lld", (long long) r->conf.max_users);
    sw_xml_set_attr(x, "max_users", num);
    snprintf(num, sizeof(num), "%lld", (long long) r->conf.history);
    sw_xml_set_attr(x, "history", num);
    if (r->conf.fmuc_node != NULL) {
        sw_xml_set_attr(x, "fmuc_node", r->conf.fmuc_node);
        mod_muc_flag(x, "fmuc_replica", r->conf.fmuc_replica);
    }
    if (r->subject != NULL) {
        sw_xml_t *s = sw_xml_add(x, NULL, "subject");

        sw_xml_set_attr(s, "by", r->subject_by ? r->subject_by : "");
        sw_xml_add_text(s, r->subject, strlen(r->subject));
    }
    text = sw_xml_to_string(x, NULL);
    st->map_set(st, MOD_MUC_STORE_ROOMS, r->svc->domain, "rooms", r->node,
                text, strlen(text));
    free(text);
    sw_hash_each(r->affs, mod_muc_save_aff, r);
    sw_pool_free(pool);
}

static bool
mod_muc_flag_get(const sw_xml_t *x, const char *name)
{
    const char *v = sw_xml_attr(x, name);

    return v != NULL && strcmp(v, "1") == 0;
}

static int
mod_muc_load_aff(const char *field, const char *data, size_t len, void *ud)
{
    mod_muc_room_t *r = ud;
    int             a = mod_muc_aff_parse(data);

    (void) len;
    if (a >= MOD_MUC_OUTCAST && a != MOD_MUC_AFF_NONE) {
        sw_hash_set(r->affs, field, (void *) (intptr_t) (a + 2));
    }
    return SW_OK;
}

static int
mod_muc_load_room(const char *field, const char *data, size_t len, void *ud)
{
    mod_muc_service_t *svc = ud;
    sw_pool_t         *pool = sw_pool_new(len + 512);
    sw_xml_t          *x = sw_xml_parse(pool, data, len, NULL);
    sw_xml_t          *s;
    mod_muc_room_t    *r;
    const char        *v;

    if (x == NULL) {
        sw_log_error("muc: %s: stored room %s is not readable; skipped",
                     svc->domain, field);
        sw_pool_free(pool);
        return SW_OK;
    }
    r = mod_muc_room_new(svc, field);
    free(r->conf.name);
    free(r->conf.desc);
    v = sw_xml_attr(x, "name");
    r->conf.name = sw_strdup(v ? v : "");
    v = sw_xml_attr(x, "desc");
    r->conf.desc = sw_strdup(v ? v : "");
    v = sw_xml_attr(x, "password");
    r->conf.password = v ? sw_strdup(v) : NULL;
    r->conf.persistent = true;
    r->conf.public = mod_muc_flag_get(x, "public");
    r->conf.members_only = mod_muc_flag_get(x, "members_only");
    r->conf.moderated = mod_muc_flag_get(x, "moderated");
    r->conf.whois_anyone = mod_muc_flag_get(x, "whois_anyone");
    r->conf.change_subject = mod_muc_flag_get(x, "change_subject");
    r->locked = mod_muc_flag_get(x, "locked");
    v = sw_xml_attr(x, "max_users");
    r->conf.max_users = v ? strtoll(v, NULL, 10) : 0;
    v = sw_xml_attr(x, "fmuc_node");
    r->conf.fmuc_node = v ? sw_strdup(v) : NULL;
    r->conf.fmuc_replica = mod_muc_flag_get(x, "fmuc_replica");
    v = sw_xml_attr(x, "history");
    r->conf.history = v ? strtoll(v, NULL, 10) : svc->conf->history_length;
    if ((s = sw_xml_child(x, NULL, "subject")) != NULL) {
        r->subject = sw_strdup(sw_xml_text(s));
        v = sw_xml_attr(s, "by");
        r->subject_by = sw_strdup(v ? v : "");
    }
    svc->st->map_each(svc->st, MOD_MUC_STORE_AFFS, svc->domain, field,
                      mod_muc_load_aff, r);
    mod_muc_fmuc_load(r);
    sw_pool_free(pool);
    return SW_OK;
}

/* ---------------------------------------------------------- services --- */

/* XEP-0421 §4: occupant ids hash a secret of the service's own; it is
 * made once and kept, so ids survive restarts. */
static int
mod_muc_secret(mod_muc_service_t *svc)
{
    sw_pool_t          *pool = sw_pool_new(256);
    sw_storage_value_t  v;
    unsigned char       raw[32];
    size_t              i;

    if (svc->st->kv_get(svc->st, MOD_MUC_STORE_KEYS, svc->domain,
                        "occupant-id", pool, &v) == SW_OK
        && v.len == sizeof(svc->secret) - 1)
    {
        memcpy(svc->secret, v.data, v.len);
        sw_pool_free(pool);
        return SW_OK;
    }
    sw_pool_free(pool);
    if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) != 0) {
        return SW_ERROR;
    }
    for (i = 0; i < sizeof(raw); i++) {
        snprintf(svc->secret + 2 * i, 3, "%02x", raw[i]);
    }
    return svc->st->kv_set(svc->st, MOD_MUC_STORE_KEYS, svc->domain,
                           "occupant-id", svc->secret,
                           sizeof(svc->secret) - 1);
}

static void
mod_muc_service_add(sw_host_t *h, void *ud)
{
    mod_muc_t         *m = ud;
    mod_muc_service_t *svc;

    if (strcmp(h->kind, "muc") != 0) {
        return;
    }
    svc = sw_calloc(1, sizeof(*svc));
    svc->mc = m->mc;
    svc->host = h;
    svc->domain = h->name;
    svc->conf = sw_module_conf(m->mc, h->name);
    svc->rooms = sw_hash_new(64);
    svc->st = sw_storage();
    svc->next = m->services;
    m->services = svc;
    h->data = svc;
}

/* XEP-0045 §6.1, §6.2: what the service is, and its public rooms. */
typedef struct {
    sw_xml_t   *q;
    bool        hidden_too;
} mod_muc_items_t;

static void
mod_muc_add_room_item(const char *node, void *v, void *ud)
{
    mod_muc_room_t  *r = v;
    mod_muc_items_t *it = ud;
    sw_xml_t        *item;

    (void) node;
    if (!r->conf.public || r->locked) {
        return;
    }
    item = sw_xml_add(it->q, NULL, "item");
    sw_xml_set_attr(item, "jid", r->jid);
    if (r->conf.name[0] != '\0') {
        sw_xml_set_attr(item, "name", r->conf.name);
    }
}

static void
mod_muc_service_iq(mod_muc_service_t *svc, sw_stanza_t *st)
{
    const char  *ns = st->payload && st->payload->ns ? st->payload->ns : "";
    sw_stanza_t *r;
    sw_xml_t    *q, *x;

    if (strcmp(st->type, "get") != 0 || st->payload == NULL
        || sw_xml_attr(st->payload, "node") != NULL)
    {
        mod_muc_error(st, strcmp(ns, MOD_MUC_NS_INFO) == 0
                          || strcmp(ns, MOD_MUC_NS_ITEMS) == 0
                      ? "item-not-found" : "service-unavailable");
        return;
    }
    if (strcmp(ns, MOD_MUC_NS_INFO) == 0) {
        r = sw_stanza_iq_result(st);
        q = sw_xml_add(r->xml, MOD_MUC_NS_INFO, "query");
        x = sw_xml_add(q, NULL, "identity");
        sw_xml_set_attr(x, "category", "conference");
        sw_xml_set_attr(x, "type", "text");
        sw_xml_set_attr(x, "name", svc->conf->name);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                        MOD_MUC_NS_INFO);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                        MOD_MUC_NS_ITEMS);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var", MOD_MUC_NS);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                        MOD_MUC_NS_PING);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                        MOD_MUC_NS_SID);
        sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var",
                        MOD_MUC_NS_OID);
        sw_iq_reply(r);
    } else if (strcmp(ns, MOD_MUC_NS_ITEMS) == 0) {
        mod_muc_items_t it;

        r = sw_stanza_iq_result(st);
        it.q = sw_xml_add(r->xml, MOD_MUC_NS_ITEMS, "query");
        it.hidden_too = false;
        sw_hash_each(svc->rooms, mod_muc_add_room_item, &it);
        sw_iq_reply(r);
    } else if (strcmp(ns, MOD_MUC_NS_PING) == 0) {
        sw_iq_reply(sw_stanza_iq_result(st));
    } else {
        mod_muc_error(st, "service-unavailable");
    }
}

/* ---------------------------------------------------------- dispatch --- */

static bool
mod_muc_is_response(const sw_stanza_t *st)
{
    return st->kind == SW_STANZA_IQ && st->type != NULL
           && (strcmp(st->type, "result") == 0
               || strcmp(st->type, "error") == 0);
}

/* Everything for a service's domain is the service's: nothing here goes
 * on to the server's own handlers (mod_server would answer disco as a
 * server). */
static int
mod_muc_route_local(void *data, void *ud)
{
    sw_route_event_t  *ev = data;
    sw_stanza_t       *st = ev->stanza;
    mod_muc_service_t *svc;
    mod_muc_room_t    *r;

    (void) ud;
    if (strcmp(ev->host->kind, "muc") != 0 || ev->host->data == NULL) {
        return SW_DECLINED;
    }
    svc = ev->host->data;
    if (st->from == NULL) {
        return SW_OK;
    }
    if (st->kind == SW_STANZA_IQ
        && (st->type == NULL || (strcmp(st->type, "get") != 0
                                 && strcmp(st->type, "set") != 0
                                 && strcmp(st->type, "result") != 0
                                 && strcmp(st->type, "error") != 0)))
    {
        mod_muc_error(st, "bad-request");       /* RFC 6120 §8.2.3 */
        return SW_OK;
    }
    if (mod_muc_is_response(st)) {
        if (st->to != NULL && st->to->resource != NULL) {
            mod_muc_fwd_response(svc, st);     /* an occupant's answer */
        }
        return SW_OK;           /* RFC 6120 §8.2.3: never answered */
    }
    if (st->to == NULL || st->to->node == NULL) {
        if (st->kind == SW_STANZA_IQ) {
            mod_muc_service_iq(svc, st);
        } else if (st->kind == SW_STANZA_MESSAGE) {
            mod_muc_error(st, "service-unavailable");
        }
        return SW_OK;           /* presence to the service: nothing to do */
    }
    r = sw_hash_get(svc->rooms, st->to->node);
    if (mod_muc_fmuc_in(svc, r, st, ev->origin) != SW_DECLINED) {
        return SW_OK;           /* XEP-0289: from another node */
    }
    if (st->kind == SW_STANZA_PRESENCE) {
        return mod_muc_room_presence(svc, r, st);
    }
    if (r == NULL) {
        mod_muc_error(st, "item-not-found");    /* §6.4: no such room */
        return SW_OK;
    }
    if (st->kind == SW_STANZA_MESSAGE) {
        return mod_muc_room_message(r, st);
    }
    if (st->kind == SW_STANZA_IQ) {
        return mod_muc_room_iq(r, st);
    }
    return SW_OK;
}

/* ------------------------------------------------------------ module --- */

static void
mod_muc_restarted(const char *node, void *v, void *ud)
{
    (void) node;
    (void) ud;
    mod_muc_fmuc_restarted(v);
}

/* The federated rooms' neighbours hear of the restart once the links are
 * up with their stored queues (a stanza to a link before that has
 * nowhere to be kept). */
static int
mod_muc_on_started(void *event, void *ud)
{
    mod_muc_t         *m = ud;
    mod_muc_service_t *svc;

    (void) event;
    for (svc = m->services; svc != NULL; svc = svc->next) {
        sw_hash_each(svc->rooms, mod_muc_restarted, NULL);
    }
    return SW_OK;
}

static int
mod_muc_load(sw_module_ctx_t *mc)
{
    mod_muc_t *m = sw_calloc(1, sizeof(*m));

    m->mc = mc;
    mc->data = m;
    if (sw_storage() == NULL) {
        sw_log_error("muc: no storage service (set storage = \"sqlite\")");
        return SW_ERROR;
    }
    sw_host_each(mod_muc_service_add, m);
    if (m->services == NULL) {
        sw_log_warn("muc: loaded, but no Component \"...\" \"muc\" names it");
    }
    /* above the core's IQ dispatcher (-100) and mod_im */
    if (sw_hook_add(&mc->owner, "server/started", 0, mod_muc_on_started, m)
        != SW_OK)
    {
        return SW_ERROR;
    }
    return sw_hook_add(&mc->owner, "route/local", 50, mod_muc_route_local,
                       m);
}

static int
mod_muc_start(sw_module_ctx_t *mc)
{
    mod_muc_t         *m = mc->data;
    mod_muc_service_t *svc;

    for (svc = m->services; svc != NULL; svc = svc->next) {
        if (mod_muc_secret(svc) != SW_OK) {
            sw_log_error("muc: %s: cannot make the occupant-id secret",
                         svc->domain);
            return SW_ERROR;
        }
        svc->st->map_each(svc->st, MOD_MUC_STORE_ROOMS, svc->domain,
                          "rooms", mod_muc_load_room, svc);
        sw_log_info("muc: %s: %zu persistent rooms", svc->domain,
                    sw_hash_count(svc->rooms));
    }
    return SW_OK;
}

static void
mod_muc_free_room(const char *node, void *v, void *ud)
{
    mod_muc_room_t *r = v;
    mod_muc_occ_t  *o, *next;

    (void) node;
    (void) ud;
    for (o = r->occs; o != NULL; o = next) {
        next = o->next;
        mod_muc_occ_free(o);
    }
    mod_muc_room_free(r);
}

static void
mod_muc_stop(sw_module_ctx_t *mc)
{
    mod_muc_t         *m = mc->data;
    mod_muc_service_t *svc, *next;

    sw_owner_release(&mc->owner);
    if (m == NULL) {
        return;
    }
    for (svc = m->services; svc != NULL; svc = next) {
        size_t i;

        next = svc->next;
        svc->host->data = NULL;
        for (i = 0; i < MOD_MUC_FWD_MAX; i++) {
            mod_muc_fwd_clear(&svc->fwd[i]);
        }
        while (svc->gone != NULL) {
            mod_muc_gone_t *g = svc->gone;

            svc->gone = g->next;
            free(g->room);
            free(g->jid);
            free(g);
        }
        if (svc->gone_timer != NULL) {
            uv_timer_stop(svc->gone_timer);
            uv_close((uv_handle_t *) svc->gone_timer, mod_muc_free_handle);
        }
        sw_hash_each(svc->rooms, mod_muc_free_room, NULL);
        sw_hash_free(svc->rooms);
        free(svc);
    }
    free(m);
    mc->data = NULL;
}

static const sw_option_t mod_muc_options[] = {
    { "muc_name", SW_OPT_STRING, offsetof(mod_muc_conf_t, name),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, 0, 0, 0, "Chatrooms", NULL,
      "the service's name in service discovery" },
    { "muc_max_rooms", SW_OPT_INT, offsetof(mod_muc_conf_t, max_rooms),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 1, 10000000,
      "10000", NULL, "rooms a service holds at most (a join that would "
      "create one more gets <resource-constraint/>)" },
    { "muc_max_occupants", SW_OPT_INT,
      offsetof(mod_muc_conf_t, max_occupants),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 1, 100000,
      "1000", NULL, "occupants of one room at most, whatever its "
      "muc#roomconfig_maxusers" },
    { "muc_history_length", SW_OPT_INT,
      offsetof(mod_muc_conf_t, history_length),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 0, 1000,
      "20", NULL, "messages of history a new room sends a joining user "
      "(muc#maxhistoryfetch; its owner may change it)" },
    { "muc_history_max", SW_OPT_INT, offsetof(mod_muc_conf_t, history_max),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 0, 1000,
      "100", NULL, "the most an owner may set muc#maxhistoryfetch to" },
    { "muc_archive_max", SW_OPT_INT, offsetof(mod_muc_conf_t, archive_max),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 1, 10000000,
      "1000", NULL, "messages kept in a room's archive (the oldest go "
      "first)" },
    { "peer_fmuc", SW_OPT_STRLIST, offsetof(mod_muc_conf_t, fmuc),
      SW_SCOPE_PEER, SW_OPT_RELOADABLE, 0, 0, NULL, NULL,
      "the peer's rooms (room@service) or MUC services whose rooms may "
      "federate with rooms here (XEP-0289), both ways" },
    { "muc_room_locking", SW_OPT_BOOL, offsetof(mod_muc_conf_t, locking),
      SW_SCOPE_GLOBAL | SW_SCOPE_COMPONENT, SW_OPT_RELOADABLE, 0, 0, "true",
      NULL, "a new room is locked until its owner configures it or "
      "accepts the defaults (XEP-0045 §10.1)" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "muc",
    .help = "XEP-0045 multi-user chat service (Component \"...\" \"muc\")",
    .options = mod_muc_options,
    .conf_size = sizeof(mod_muc_conf_t),
    .load = mod_muc_load,
    .start = mod_muc_start,
    .stop = mod_muc_stop,
};
