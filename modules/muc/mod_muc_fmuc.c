/*
 * mod_muc_fmuc: Federated MUC (XEP-0289) across peer links.
 *
 * A room configured with a node to join (fmuc_node) is a joining node:
 * its occupants' presence goes to the joined node at their nick
 * (room@a/nick), each message of theirs once to the joined node's bare
 * JID, all with an <fmuc from='real JID'/> payload.  The joined node
 * answers the first with its occupants, history and subject (to the
 * joining node's bare JID) and from then on sends it each message and
 * presence of occupants not behind it, once.  So a groupchat message
 * crosses each link once, whatever the number of occupants behind it,
 * and a user joining a node that is in the set reads the history there.
 *
 * The peer link is durable and exactly-once: during a partition both
 * nodes go on (primary-primary) and what each queued reaches the other
 * when the link is back, in order, with the delay stamp the link puts on
 * a message that waited.  In primary-replica mode the joining
 * node shows its users' messages only when the joined node echoes them,
 * so every node sees one order.
 *
 * Nodes that are not neighbours never talk; a node relays to its other
 * neighbours, never back to where a stanza came from.  A node restarted
 * says so (an unavailable presence from its bare JID: its occupants go);
 * a joined node that does not know the occupant a joining node speaks
 * for (it restarted) answers <left/>, and the joining node joins again.
 * Only rooms or MUC services listed in the Peer's peer_fmuc federate,
 * and only over that peer's link.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mod_muc.h"

/* ------------------------------------------------------------ trust --- */

typedef struct {
    const char *domain;
    sw_link_t  *found;
} mod_muc_find_t;

static void
mod_muc_find_link(sw_link_t *l, void *ud)
{
    mod_muc_find_t     *f = ud;
    const char *const  *d;

    for (d = sw_link_conf(l)->domains; d != NULL && *d != NULL; d++) {
        if (strcmp(*d, f->domain) == 0) {
            f->found = l;
        }
    }
}

/* The peer link serving node's domain, or NULL. */
static sw_link_t *
mod_muc_fmuc_link(const char *node)
{
    mod_muc_find_t f;
    const char    *at = strchr(node, '@');

    f.domain = at ? at + 1 : node;
    f.found = NULL;
    sw_link_each(mod_muc_find_link, &f);
    return f.found;
}

bool
mod_muc_fmuc_trusted(mod_muc_service_t *svc, const char *node)
{
    sw_link_t          *l = mod_muc_fmuc_link(node);
    const char         *at = strchr(node, '@');
    mod_muc_conf_t     *conf;
    const char *const  *e;

    if (l == NULL || at == NULL) {
        return false;
    }
    conf = sw_module_conf(svc->mc, sw_link_name(l));
    for (e = conf->fmuc; e != NULL && *e != NULL; e++) {
        if (strcmp(*e, node) == 0 || strcmp(*e, at + 1) == 0) {
            return true;
        }
    }
    return false;
}

/* --------------------------------------------------------- neighbours --- */

#define MOD_MUC_STORE_FNODES "muc_fmuc_nodes"
#define MOD_MUC_FMUC_MAX_NODES 64     /* nodes that may join one room */
#define MOD_MUC_STORE_FOCCS  "muc_fmuc_occupants"

static bool
mod_muc_is_parent(const mod_muc_room_t *r, const char *node)
{
    return r->conf.fmuc_node != NULL && strcmp(r->conf.fmuc_node, node) == 0;
}

static ssize_t
mod_muc_child(const mod_muc_room_t *r, const char *node)
{
    size_t i;

    for (i = 0; i < r->n_nodes; i++) {
        if (strcmp(r->nodes[i], node) == 0) {
            return (ssize_t) i;
        }
    }
    return -1;
}

/* Calls fn for every neighbouring node but except. */
static void
mod_muc_each_node(mod_muc_room_t *r, const char *except,
                  void (*fn)(mod_muc_room_t *r, const char *node, void *ud),
                  void *ud)
{
    size_t i;

    if (r->conf.fmuc_node != NULL && r->fmuc_joined
        && (except == NULL || strcmp(except, r->conf.fmuc_node) != 0))
    {
        fn(r, r->conf.fmuc_node, ud);
    }
    for (i = 0; i < r->n_nodes; i++) {
        if (except == NULL || strcmp(except, r->nodes[i]) != 0) {
            fn(r, r->nodes[i], ud);
        }
    }
}

void
mod_muc_fmuc_mark(sw_xml_t *x, const char *from)
{
    sw_xml_t *f = sw_xml_add(x, MOD_MUC_NS_FMUC, "fmuc");

    if (from != NULL) {
        sw_xml_set_attr(f, "from", from);
    }
}

/* A node-level notice (<left/>, <reject/>) from room r to node. */
static void
mod_muc_fmuc_notice(const char *room, const char *node, const char *what,
                    const char *text)
{
    sw_pool_t *pool = sw_pool_new(512);
    sw_xml_t  *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_xml_t  *f, *e;

    sw_xml_set_attr(p, "from", room);
    sw_xml_set_attr(p, "to", node);
    f = sw_xml_add(p, MOD_MUC_NS_FMUC, "fmuc");
    e = sw_xml_add(f, NULL, what);
    if (text != NULL) {
        sw_xml_add_text(e, text, strlen(text));
    }
    mod_muc_send(pool, p);
}

/* ---------------------------------------------------------- presence --- */

typedef struct {
    const mod_muc_occ_t  *o;
    const sw_xml_t       *src;
    const mod_muc_pres_t *how;
} mod_muc_fpres_t;

/* What history a join to the joined node asks for: what came after the
 * newest this node holds (the overlap of one second is told apart when
 * it comes), or the room's usual history when it holds none. */
static void
mod_muc_fmuc_want(mod_muc_room_t *r, sw_xml_t *x)
{
    sw_storage_t       *st = r->svc->st;
    sw_archive_query_t  q;
    sw_archive_item_t  *items;
    sw_pool_t          *tmp = sw_pool_new(2048);
    size_t              n;
    char                stamp[32];

    memset(&q, 0, sizeof(q));
    q.max = 1;
    q.last = true;
    if (st->archive_query(st, MOD_MUC_STORE_HIST, r->svc->domain, r->node,
                          &q, tmp, &items, &n) == SW_OK && n == 1)
    {
        mod_muc_stamp(items[0].when, stamp, sizeof(stamp));
        sw_xml_set_attr(sw_xml_add(x, NULL, "history"), "since", stamp);
    }
    sw_pool_free(tmp);
}

static void
mod_muc_fmuc_presence_one(mod_muc_room_t *r, const char *node, void *ud)
{
    mod_muc_fpres_t *fp = ud;
    const mod_muc_occ_t *o = fp->o;
    const mod_muc_pres_t *how = fp->how;
    sw_pool_t       *pool = sw_pool_new(1024);
    sw_xml_t        *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_xml_t        *x, *item, *c;
    char             buf[1024], num[8];
    size_t           i;
    bool             parent = mod_muc_is_parent(r, node);

    snprintf(buf, sizeof(buf), "%s/%s", r->jid, o->nick);
    sw_xml_set_attr(p, "from", buf);
    /* to the joined node at the nick (a join there), else its bare JID */
    snprintf(buf, sizeof(buf), "%s/%s", node, o->nick);
    sw_xml_set_attr(p, "to", parent ? buf : node);
    if (how->unavailable) {
        sw_xml_set_attr(p, "type", "unavailable");
    }
    for (c = fp->src ? fp->src->first : NULL; c != NULL; c = c->next) {
        if (c->type != SW_XML_ELEM
            || (c->ns != NULL && (strcmp(c->ns, MOD_MUC_NS) == 0
                                  || strcmp(c->ns, MOD_MUC_NS_USER) == 0
                                  || strcmp(c->ns, MOD_MUC_NS_FMUC) == 0
                                  || strcmp(c->ns, MOD_MUC_NS_OID) == 0)))
        {
            continue;
        }
        if (how->unavailable && strcmp(c->name, "status") != 0) {
            continue;
        }
        sw_xml_append(p, sw_xml_copy(pool, c));
    }
    if (parent && !how->unavailable && r->fmuc_want) {
        /* the node's join (or join again): the one presence there that
         * asks for the room's state, XEP-0045 §7.2's <x/> */
        mod_muc_fmuc_want(r, sw_xml_add(p, MOD_MUC_NS, "x"));
        r->fmuc_want = false;
    }
    x = sw_xml_add(p, MOD_MUC_NS_USER, "x");
    item = sw_xml_add(x, NULL, "item");
    sw_xml_set_attr(item, "affiliation",
                    mod_muc_aff_name(mod_muc_aff(r, o->bare)));
    sw_xml_set_attr(item, "role", how->unavailable && how->new_nick == NULL
                                  ? "none" : mod_muc_role_name(o->role));
    sw_xml_set_attr(item, "jid", o->jid);
    if (how->new_nick != NULL) {
        sw_xml_set_attr(item, "nick", how->new_nick);
    }
    if (how->actor != NULL) {
        sw_xml_set_attr(sw_xml_add(item, NULL, "actor"), "nick", how->actor);
    }
    if (how->reason != NULL) {
        sw_xml_add_text(sw_xml_add(item, NULL, "reason"), how->reason,
                        strlen(how->reason));
    }
    for (i = 0; how->codes != NULL && how->codes[i] != 0; i++) {
        if (how->codes[i] != 110 && how->codes[i] != 100
            && how->codes[i] != 201)
        {
            snprintf(num, sizeof(num), "%d", how->codes[i]);
            sw_xml_set_attr(sw_xml_add(x, NULL, "status"), "code", num);
        }
    }
    mod_muc_fmuc_mark(p, o->jid);
    if (parent && r->conf.fmuc_replica) {
        sw_xml_set_attr(sw_xml_child(p, MOD_MUC_NS_FMUC, "fmuc"), "mode",
                        "replica");
    }
    mod_muc_send(pool, p);
}

/* The first local occupant's join makes this node join its joined node:
 * from then on presence goes there too. */
static void
mod_muc_fmuc_join(mod_muc_room_t *r)
{
    if (r->conf.fmuc_node == NULL || r->fmuc_joined) {
        return;
    }
    if (!mod_muc_fmuc_trusted(r->svc, r->conf.fmuc_node)) {
        sw_log_warn("muc: %s: not joining %s: no Peer's peer_fmuc names it",
                    r->jid, r->conf.fmuc_node);
        return;
    }
    r->fmuc_joined = true;
    r->fmuc_want = true;
    sw_log_info("muc: %s joins %s (XEP-0289)", r->jid, r->conf.fmuc_node);
}

void
mod_muc_fmuc_presence(mod_muc_room_t *r, const mod_muc_occ_t *o,
                      const sw_xml_t *src, const mod_muc_pres_t *how,
                      const char *except)
{
    mod_muc_fpres_t fp = { o, src, how };

    if (o->node == NULL && !how->unavailable) {
        mod_muc_fmuc_join(r);
    }
    mod_muc_each_node(r, except, mod_muc_fmuc_presence_one, &fp);
}

/* ---------------------------------------------------------- messages --- */

/*
 * Resync exactly once (XEP-0289 with XEP-0359): a history item is named
 * across the set by the stanza id its origin node gave it, which crosses
 * with it; a node that holds the item already does not take it again.
 * The names of the newest MOD_MUC_SEEN_MAX items are kept in memory, read
 * from the archive when a node first sends here (a join asks for history
 * from the newest item held, so the overlap is among those).
 */
#define MOD_MUC_SEEN_MAX 512

/* The origin's stanza id in m: the first whose by is not `not_by` (a
 * node's history carries the origin's and the node's own), else the
 * first.  False when m has none or a malformed one. */
static bool
mod_muc_fmuc_origin(const sw_xml_t *m, const char *not_by,
                    char by[MOD_MUC_JID_MAX], char id[MOD_MUC_SID_MAX])
{
    const sw_xml_t *c, *pick = NULL;

    for (c = sw_xml_child(m, MOD_MUC_NS_SID, "stanza-id"); c != NULL;
         c = sw_xml_next_match(c, MOD_MUC_NS_SID, "stanza-id"))
    {
        const char *b = sw_xml_attr(c, "by");

        if (pick == NULL) {
            pick = c;
        }
        if (b != NULL && strcmp(b, not_by) != 0) {
            pick = c;
            break;
        }
    }
    if (pick == NULL || sw_xml_attr(pick, "by") == NULL
        || sw_xml_attr(pick, "id") == NULL
        || strlen(sw_xml_attr(pick, "by")) >= MOD_MUC_JID_MAX
        || strlen(sw_xml_attr(pick, "id")) >= MOD_MUC_SID_MAX
        || *sw_xml_attr(pick, "id") == '\0')
    {
        return false;
    }
    strcpy(by, sw_xml_attr(pick, "by"));
    strcpy(id, sw_xml_attr(pick, "id"));
    return true;
}

static void
mod_muc_fmuc_sid(sw_xml_t *m, const char *by, const char *id)
{
    sw_xml_t *sid = sw_xml_add(m, MOD_MUC_NS_SID, "stanza-id");

    sw_xml_set_attr(sid, "id", id);
    sw_xml_set_attr(sid, "by", by);
}

static void
mod_muc_fmuc_seen_put(mod_muc_room_t *r, const char *by, const char *id)
{
    char   key[MOD_MUC_JID_MAX + MOD_MUC_SID_MAX + 2];
    char **slot = &r->seen_ring[r->seen_next];

    snprintf(key, sizeof(key), "%s %s", by, id);
    if (sw_hash_get(r->seen, key) != NULL) {
        return;
    }
    if (*slot != NULL) {
        sw_hash_set(r->seen, *slot, NULL);
        free(*slot);
    }
    *slot = sw_strdup(key);
    sw_hash_set(r->seen, *slot, r);
    r->seen_next = (r->seen_next + 1) % MOD_MUC_SEEN_MAX;
}

void
mod_muc_fmuc_seen_add(mod_muc_room_t *r, const char *by, const char *id)
{
    if (r->seen != NULL && by != NULL && id != NULL
        && strlen(by) < MOD_MUC_JID_MAX && strlen(id) < MOD_MUC_SID_MAX)
    {
        mod_muc_fmuc_seen_put(r, by, id);
    }
}

void
mod_muc_fmuc_seen_free(mod_muc_room_t *r)
{
    size_t i;

    if (r->seen == NULL) {
        return;
    }
    for (i = 0; i < MOD_MUC_SEEN_MAX; i++) {
        free(r->seen_ring[i]);
    }
    free(r->seen_ring);
    sw_hash_free(r->seen);
    r->seen = NULL;
    r->seen_ring = NULL;
}

/* Whether the room holds the item named (by, id); the names are read
 * from the archive the first time. */
static bool
mod_muc_fmuc_seen(mod_muc_room_t *r, const char *by, const char *id)
{
    char key[MOD_MUC_JID_MAX + MOD_MUC_SID_MAX + 2];

    if (r->seen == NULL) {
        sw_storage_t       *st = r->svc->st;
        sw_archive_query_t  q;
        sw_archive_item_t  *items;
        sw_pool_t          *tmp = sw_pool_new(16384);
        size_t              n, i;
        char                b[MOD_MUC_JID_MAX], d[MOD_MUC_SID_MAX];

        r->seen = sw_hash_new(2 * MOD_MUC_SEEN_MAX);
        r->seen_ring = sw_calloc(MOD_MUC_SEEN_MAX, sizeof(char *));
        r->seen_next = 0;
        memset(&q, 0, sizeof(q));
        q.max = MOD_MUC_SEEN_MAX;
        q.last = true;
        if (st->archive_query(st, MOD_MUC_STORE_HIST, r->svc->domain,
                              r->node, &q, tmp, &items, &n) == SW_OK)
        {
            for (i = 0; i < n; i++) {
                sw_xml_t *m = sw_xml_parse(tmp, items[i].data, items[i].len,
                                           NULL);

                if (m != NULL && mod_muc_fmuc_origin(m, r->jid, b, d)) {
                    mod_muc_fmuc_seen_put(r, b, d);
                } else {
                    snprintf(d, sizeof(d), "%lld", (long long) items[i].id);
                    mod_muc_fmuc_seen_put(r, r->jid, d);
                }
            }
        }
        sw_pool_free(tmp);
    }
    snprintf(key, sizeof(key), "%s %s", by, id);
    return sw_hash_get(r->seen, key) != NULL;
}

typedef struct {
    const mod_muc_occ_t *o;
    const sw_xml_t      *m;
} mod_muc_fmsg_t;

static void
mod_muc_fmuc_message_one(mod_muc_room_t *r, const char *node, void *ud)
{
    mod_muc_fmsg_t *fm = ud;
    sw_pool_t      *pool = sw_pool_new(1024);
    sw_xml_t       *m = sw_xml_copy(pool, fm->m);
    char            from[1024];

    char            by[MOD_MUC_JID_MAX], id[MOD_MUC_SID_MAX];
    bool            origin = mod_muc_fmuc_origin(m, r->jid, by, id);

    /* the one stanza id that crosses is the origin's, which names the
     * message at every node; occupant ids are each node's own */
    mod_muc_strip(m, MOD_MUC_NS_SID, "stanza-id", NULL);
    if (origin) {
        mod_muc_fmuc_sid(m, by, id);
    }
    mod_muc_strip(m, MOD_MUC_NS_OID, "occupant-id", NULL);
    mod_muc_strip(m, MOD_MUC_NS_FMUC, "fmuc", NULL);
    snprintf(from, sizeof(from), "%s/%s", r->jid, fm->o->nick);
    sw_xml_set_attr(m, "from", from);
    sw_xml_set_attr(m, "to", node);
    sw_xml_set_attr(m, "type", "groupchat");
    mod_muc_fmuc_mark(m, fm->o->jid);
    mod_muc_send(pool, m);
}

void
mod_muc_fmuc_message(mod_muc_room_t *r, const mod_muc_occ_t *o,
                     const sw_xml_t *m, const char *except)
{
    mod_muc_fmsg_t fm = { o, m };

    mod_muc_each_node(r, except, mod_muc_fmuc_message_one, &fm);
}

void
mod_muc_fmuc_message_to(mod_muc_room_t *r, const mod_muc_occ_t *o,
                        const sw_xml_t *m, const char *node)
{
    mod_muc_fmsg_t fm = { o, m };

    mod_muc_fmuc_message_one(r, node, &fm);
}

static void
mod_muc_fmuc_reset_one(mod_muc_room_t *r, const char *node, void *ud)
{
    sw_pool_t *pool = sw_pool_new(256);
    sw_xml_t  *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");

    (void) ud;
    sw_xml_set_attr(p, "from", r->jid);
    sw_xml_set_attr(p, "to", node);
    sw_xml_set_attr(p, "type", "unavailable");
    mod_muc_fmuc_mark(p, NULL);
    mod_muc_send(pool, p);
}

/* After a restart the occupants this server had are gone: every
 * neighbour hears it (the joined node, and nodes that had joined). */
void
mod_muc_fmuc_restarted(mod_muc_room_t *r)
{
    size_t i;

    if (r->conf.fmuc_node != NULL) {
        mod_muc_fmuc_reset_one(r, r->conf.fmuc_node, NULL);
    }
    for (i = 0; i < r->n_nodes; i++) {
        mod_muc_fmuc_reset_one(r, r->nodes[i], NULL);
    }
}

/* The occupants here join the joined node (again). */
void
mod_muc_fmuc_rejoin(mod_muc_room_t *r)
{
    static const int none[] = { 0 };
    mod_muc_occ_t   *o;
    mod_muc_pres_t   how;

    memset(&how, 0, sizeof(how));
    how.codes = none;
    r->fmuc_want = true;
    for (o = r->occs; o != NULL; o = o->next) {
        if (o->node == NULL) {
            mod_muc_fmuc_presence(r, o, o->pres, &how, NULL);
        }
    }
}

void
mod_muc_fmuc_private(mod_muc_room_t *r, const mod_muc_occ_t *from,
                     const mod_muc_occ_t *to, const sw_xml_t *m)
{
    sw_pool_t *pool = sw_pool_new(1024);
    sw_xml_t  *c = sw_xml_copy(pool, m);
    char       buf[1024];

    mod_muc_strip(c, MOD_MUC_NS_FMUC, "fmuc", NULL);
    snprintf(buf, sizeof(buf), "%s/%s", r->jid, from->nick);
    sw_xml_set_attr(c, "from", buf);
    snprintf(buf, sizeof(buf), "%s/%s", to->node, to->nick);
    sw_xml_set_attr(c, "to", buf);
    mod_muc_fmuc_mark(c, from->jid);
    mod_muc_send(pool, c);
}

/* ------------------------------------------------------------ state --- */

/*
 * A joined node keeps which nodes joined it and who is behind them, so
 * that after its restart what they send still has somewhere to go
 * (what a joining node keeps it learns again by joining).
 */
void
mod_muc_fmuc_keep(mod_muc_room_t *r, const mod_muc_occ_t *o, bool present)
{
    sw_storage_t *st = r->svc->st;
    sw_pool_t    *pool;
    sw_xml_t     *x;
    char         *text;

    if (o->node == NULL || mod_muc_is_parent(r, o->node)) {
        return;
    }
    if (!present) {
        st->map_set(st, MOD_MUC_STORE_FOCCS, r->svc->domain, r->node,
                    o->nick, NULL, 0);
        return;
    }
    pool = sw_pool_new(1024);
    x = sw_xml_new(pool, NULL, "occupant");
    sw_xml_set_attr(x, "jid", o->jid);
    sw_xml_set_attr(x, "node", o->node);
    if (o->pres != NULL) {
        sw_xml_append(x, sw_xml_copy(pool, o->pres));
    }
    text = sw_xml_to_string(x, NULL);
    st->map_set(st, MOD_MUC_STORE_FOCCS, r->svc->domain, r->node, o->nick,
                text, strlen(text));
    free(text);
    sw_pool_free(pool);
}

static void
mod_muc_fmuc_keep_node(mod_muc_room_t *r, const char *node, int replica)
{
    sw_storage_t *st = r->svc->st;

    st->map_set(st, MOD_MUC_STORE_FNODES, r->svc->domain, r->node, node,
                replica < 0 ? NULL : replica ? "replica" : "primary",
                replica ? strlen("replica") : strlen("primary"));
}

static void
mod_muc_fmuc_add_node(mod_muc_room_t *r, const char *node, bool replica)
{
    r->nodes = sw_realloc(r->nodes, (r->n_nodes + 1) * sizeof(*r->nodes));
    r->nodes_replica = sw_realloc(r->nodes_replica, (r->n_nodes + 1)
                                  * sizeof(*r->nodes_replica));
    r->nodes_replica[r->n_nodes] = replica;
    r->nodes[r->n_nodes++] = sw_strdup(node);
}

static int
mod_muc_fmuc_load_node(const char *field, const char *data, size_t len,
                       void *ud)
{
    (void) len;
    mod_muc_fmuc_add_node(ud, field, strcmp(data, "replica") == 0);
    return SW_OK;
}

static int
mod_muc_fmuc_load_occ(const char *field, const char *data, size_t len,
                      void *ud)
{
    mod_muc_room_t *r = ud;
    sw_pool_t      *pool = sw_pool_new(len + 256);
    sw_xml_t       *x = sw_xml_parse(pool, data, len, NULL);
    sw_jid_t       *j;
    mod_muc_occ_t  *o;
    const char     *node = x ? sw_xml_attr(x, "node") : NULL;

    if (x == NULL || node == NULL || sw_xml_attr(x, "jid") == NULL
        || (j = sw_jid_new(pool, sw_xml_attr(x, "jid"))) == NULL
        || mod_muc_child(r, node) < 0 || mod_muc_occ_by_nick(r, field))
    {
        sw_pool_free(pool);
        return SW_OK;
    }
    o = sw_calloc(1, sizeof(*o));
    o->nick = sw_strdup(field);
    o->jid = sw_strdup(j->full);
    o->bare = sw_strdup(j->bare);
    o->node = sw_strdup(node);
    mod_muc_occ_id(r, o->bare, o->id);
    o->role = mod_muc_role_for(r, mod_muc_aff(r, o->bare));
    mod_muc_occ_set_presence(o, sw_xml_child(x, NULL, "presence")
                                ? sw_xml_child(x, NULL, "presence") : x);
    mod_muc_occ_link(r, o);
    sw_pool_free(pool);
    return SW_OK;
}

void
mod_muc_fmuc_load(mod_muc_room_t *r)
{
    sw_storage_t *st = r->svc->st;

    st->map_each(st, MOD_MUC_STORE_FNODES, r->svc->domain, r->node,
                 mod_muc_fmuc_load_node, r);
    st->map_each(st, MOD_MUC_STORE_FOCCS, r->svc->domain, r->node,
                 mod_muc_fmuc_load_occ, r);
}

void
mod_muc_fmuc_clear(mod_muc_room_t *r)
{
    sw_storage_t *st = r->svc->st;

    st->map_clear(st, MOD_MUC_STORE_FNODES, r->svc->domain, r->node);
    st->map_clear(st, MOD_MUC_STORE_FOCCS, r->svc->domain, r->node);
}

/* ------------------------------------------------------ node changes --- */

/* Every occupant behind node leaves (that node left or restarted). */
static void
mod_muc_fmuc_drop_node(mod_muc_room_t *r, const char *node)
{
    static const int gone[] = { 0 };
    mod_muc_occ_t   *o, *next;
    mod_muc_pres_t   how;
    char            *n = sw_strdup(node);
    ssize_t          i;

    if ((i = mod_muc_child(r, n)) >= 0) {
        free(r->nodes[i]);
        r->n_nodes--;
        r->nodes[i] = r->nodes[r->n_nodes];
        r->nodes_replica[i] = r->nodes_replica[r->n_nodes];
        mod_muc_fmuc_keep_node(r, n, -1);
    }
    if (mod_muc_is_parent(r, n)) {
        r->fmuc_joined = false;
    }
    for (o = r->occs; o != NULL; o = next) {
        next = o->next;
        if (o->node != NULL && strcmp(o->node, n) == 0) {
            memset(&how, 0, sizeof(how));
            how.codes = gone;
            how.from_node = n;
            how.unavailable = true;
            mod_muc_presence_all(r, o, NULL, &how);
            mod_muc_fmuc_keep(r, o, false);
            mod_muc_occ_unlink(r, o);
            mod_muc_occ_free(o);
        }
    }
    free(n);
}

/* The room goes (its owner destroyed it): the occupants behind other
 * nodes are let go without a word to them here (their own nodes say it),
 * and the nodes that joined it hear it left. */
void
mod_muc_fmuc_detach(mod_muc_room_t *r)
{
    mod_muc_occ_t *o, *next;

    for (o = r->occs; o != NULL; o = next) {
        next = o->next;
        if (o->node != NULL) {
            mod_muc_fmuc_keep(r, o, false);
            mod_muc_occ_unlink(r, o);
            mod_muc_occ_free(o);
        }
    }
    while (r->n_nodes > 0) {
        char *n = r->nodes[--r->n_nodes];

        mod_muc_fmuc_notice(r->jid, n, "left", NULL);
        mod_muc_fmuc_keep_node(r, n, -1);
        free(n);
    }
    r->fmuc_joined = false;
}

/* This node leaves the set: its last local occupant went.  The occupants
 * behind the joined node are forgotten, without a word to anyone (there
 * is nobody here to tell); the joined node saw the last leave. */
void
mod_muc_fmuc_forget(mod_muc_room_t *r)
{
    mod_muc_occ_t *o, *next;

    for (o = r->occs; o != NULL; o = next) {
        next = o->next;
        if (o->node != NULL && mod_muc_is_parent(r, o->node)) {
            mod_muc_occ_unlink(r, o);
            mod_muc_occ_free(o);
        }
    }
    r->fmuc_joined = false;
}

/* A joining node is new here: it gets the room as a joining user does,
 * every occupant not behind it, the history its join asked for, the
 * subject (XEP-0289 §"Joining"). */
static void
mod_muc_fmuc_welcome(mod_muc_room_t *r, const char *node,
                     const sw_xml_t *want)
{
    static const int none[] = { 0 };
    mod_muc_occ_t   *o;
    mod_muc_pres_t   how;
    mod_muc_fpres_t  fp;

    memset(&how, 0, sizeof(how));
    how.codes = none;
    for (o = r->occs; o != NULL; o = o->next) {
        if (o->node == NULL || strcmp(o->node, node) != 0) {
            fp.o = o;
            fp.src = o->pres;
            fp.how = &how;
            mod_muc_fmuc_presence_one(r, node, &fp);
        }
    }
    mod_muc_history(r, node, want, true);
    mod_muc_subject_to(r, node, true);
}

/* The status codes of a removal another node made (kick, ban...); with
 * 110 when the occupant is this node's own. */
static size_t
mod_muc_fmuc_codes(const sw_xml_t *x, int *codes, size_t max, bool self)
{
    const sw_xml_t *s;
    size_t          n = 0;

    if (self) {
        codes[n++] = 110;
    }
    for (s = x ? sw_xml_child(x, NULL, "status") : NULL;
         s != NULL && n + 1 < max; s = sw_xml_next_match(s, NULL, "status"))
    {
        int c = atoi(sw_xml_attr(s, "code") ? sw_xml_attr(s, "code") : "0");

        if (c == 301 || c == 307 || c == 321 || c == 333) {
            codes[n++] = c;
        }
    }
    codes[n] = 0;
    return n;
}

/* The stanza error conditions a refused join may carry across
 * (XEP-0045 §7.2), with their types; anything else reads as forbidden. */
static const struct {
    const char *cond;
    const char *type;
} mod_muc_fmuc_refusals[] = {
    { "conflict", "cancel" },                   /* §7.2.8 */
    { "forbidden", "auth" },                    /* §7.2.7 */
    { "registration-required", "auth" },        /* §7.2.6 */
    { "service-unavailable", "wait" },          /* §7.2.10 */
    { "jid-malformed", "modify" },
};

static size_t
mod_muc_fmuc_refusal(const char *cond)
{
    size_t i;

    for (i = 0; cond != NULL && i < sizeof(mod_muc_fmuc_refusals)
                                       / sizeof(mod_muc_fmuc_refusals[0]); i++) {
        if (strcmp(cond, mod_muc_fmuc_refusals[i].cond) == 0) {
            return i;
        }
    }
    return 1;
}

/* A presence error from room/nick to to, the fmuc payload when it goes
 * to another node. */
static void
mod_muc_fmuc_error(mod_muc_room_t *r, const char *nick, const char *to,
                   const char *cond, bool node)
{
    sw_pool_t *pool = sw_pool_new(512);
    sw_xml_t  *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_xml_t  *e;
    size_t     i = mod_muc_fmuc_refusal(cond);
    char       buf[1024];

    snprintf(buf, sizeof(buf), "%s/%s", r->jid, nick);
    sw_xml_set_attr(p, "from", buf);
    sw_xml_set_attr(p, "to", to);
    sw_xml_set_attr(p, "type", "error");
    if (node) {
        mod_muc_fmuc_mark(p, NULL);
    } else {
        sw_xml_add(p, MOD_MUC_NS, "x");
    }
    e = sw_xml_add(p, NULL, "error");
    sw_xml_set_attr(e, "type", mod_muc_fmuc_refusals[i].type);
    sw_xml_add(e, "urn:ietf:params:xml:ns:xmpp-stanzas",
               mod_muc_fmuc_refusals[i].cond);
    mod_muc_send(pool, p);
}

/*
 * A local occupant the joined node would not have: a nick taken there
 * while the two were apart (the joined node's occupant stays: XEP-0289
 * §"Open issues", the node with the local user tells it and removes it),
 * or the joined room's own rules (a ban, members only, full).  The user
 * hears it as a refused join (XEP-0045 §7.2), the occupants here see it
 * leave.  Returns false when the room went with it.
 */
static bool
mod_muc_fmuc_refused(mod_muc_room_t *r, mod_muc_occ_t *o, const char *node,
                     const char *cond)
{
    static const int self[] = { 110, 0 };

    mod_muc_fmuc_error(r, o->nick, o->jid, cond, false);
    sw_log_info("muc: %s: %s refused %s (%s) at %s", r->jid, node, o->nick,
                mod_muc_fmuc_refusals[mod_muc_fmuc_refusal(cond)].cond,
                o->jid);
    return mod_muc_leave(r, o, NULL, self, NULL);
}

/*
 * Whether this room lets in the occupant a joining node brings, by this
 * room's own rules (XEP-0289 §"Administration": each node keeps its own
 * affiliation lists).  The peer agreement vouches for the node, not for
 * whom it claims to carry: never an account of a domain served here
 * (that is a local user, who joins here), never an outcast, only members
 * when members-only, not beyond the room's size.  The room's password
 * is the node's to ask of its own users; the node itself is admitted by
 * the agreement.  Returns NULL or the XEP-0045 §7.2 condition.
 */
static const char *
mod_muc_fmuc_admit(mod_muc_room_t *r, const sw_jid_t *real)
{
    mod_muc_aff_e aff = mod_muc_aff(r, real->bare);
    int64_t       max = r->conf.max_users > 0
                        && r->conf.max_users < r->svc->conf->max_occupants
                        ? r->conf.max_users : r->svc->conf->max_occupants;

    if (sw_host_find(real->domain) != NULL || aff == MOD_MUC_OUTCAST) {
        return "forbidden";
    }
    if (r->conf.members_only && aff < MOD_MUC_MEMBER) {
        return "registration-required";
    }
    if ((int64_t) r->n_occs >= max) {
        return "service-unavailable";
    }
    return NULL;
}

static int
mod_muc_fmuc_presence_in(mod_muc_room_t *r, sw_stanza_t *st,
                         const char *node, const char *real)
{
    const char     *nick = st->from->resource;
    const sw_xml_t *ux = sw_xml_child(st->xml, MOD_MUC_NS_USER, "x");
    const sw_xml_t *item = ux ? sw_xml_child(ux, NULL, "item") : NULL;
    bool            unavailable = st->type != NULL
                                  && strcmp(st->type, "unavailable") == 0;
    mod_muc_occ_t  *o = mod_muc_occ_by_nick(r, nick);
    mod_muc_pres_t  how;
    int             codes[8];
    sw_jid_t       *rj;

    if (nick == NULL || strlen(node) + strlen(nick) + 2 > MOD_MUC_JID_MAX
        || strlen(r->jid) + strlen(nick) + 2 > MOD_MUC_JID_MAX)
    {
        return SW_OK;           /* JIDs this long would not be formed */
    }
    memset(&how, 0, sizeof(how));
    how.from_node = node;
    if (item != NULL) {
        const sw_xml_t *a = sw_xml_child(item, NULL, "actor");

        how.actor = a ? sw_xml_attr(a, "nick") : NULL;
        how.reason = sw_xml_child_text(item, NULL, "reason");
        how.new_nick = unavailable ? sw_xml_attr(item, "nick") : NULL;
    }
    if (o != NULL && o->node == NULL && real != NULL
        && strcmp(real, o->jid) == 0)
    {
        /* one of ours: removed over there (a kick at another node
         * applies here, XEP-0289 §"Administration"), or a role shown
         * there (cosmetic), or our own presence come back: not again */
        if (unavailable && how.new_nick == NULL) {
            mod_muc_fmuc_codes(ux, codes, 8, true);
            how.codes = codes;
            mod_muc_leave_how(r, o, NULL, &how);
        }
        return SW_OK;
    }
    if (o != NULL && o->node == NULL && mod_muc_is_parent(r, node)
        && !unavailable)
    {
        /* the joined node's occupant came first */
        if (!mod_muc_fmuc_refused(r, o, node, "conflict")
            || !r->fmuc_joined)
        {
            return SW_OK;               /* the room, or the set, is left */
        }
        o = NULL;
    }
    if (o != NULL && (o->node == NULL || strcmp(o->node, node) != 0)) {
        if (!unavailable) {
            /* the same nick behind two nodes: the joining node's is
             * refused, and that node tells its user */
            char buf[1024];

            snprintf(buf, sizeof(buf), "%s/%s", node, nick);
            mod_muc_fmuc_error(r, nick, buf, "conflict", true);
        }
        return SW_OK;
    }
    if (unavailable) {
        if (o != NULL) {
            char *room = sw_strdup(r->jid);

            if (how.new_nick != NULL) {
                free(room);
                if (mod_muc_occ_by_nick(r, how.new_nick) != NULL
                    || strlen(r->jid) + strlen(how.new_nick) + 2
                       > MOD_MUC_JID_MAX)
                {
                    return SW_OK;       /* not over someone here */
                }
                mod_muc_presence_all(r, o, NULL, &how);     /* §7.6 */
                mod_muc_fmuc_keep(r, o, false);
                free(o->nick);
                o->nick = sw_strdup(how.new_nick);
                mod_muc_fmuc_keep(r, o, true);
                return SW_OK;
            }
            how.codes = codes;
            mod_muc_fmuc_codes(ux, codes, 8, false);
            if (!mod_muc_leave_how(r, o, NULL, &how)) {
                /* the room went with its last occupant */
                mod_muc_fmuc_notice(room, node, "left", NULL);
                free(room);
                return SW_OK;
            }
            free(room);
        }
        if (mod_muc_child(r, node) >= 0) {
            for (o = r->occs; o != NULL; o = o->next) {
                if (o->node != NULL && strcmp(o->node, node) == 0) {
                    return SW_OK;
                }
            }
            /* nobody behind it any more: it left the set */
            mod_muc_fmuc_drop_node(r, node);
            mod_muc_fmuc_notice(r->jid, node, "left", NULL);
        }
        return SW_OK;
    }
    if (o == NULL) {
        rj = real != NULL ? sw_jid_new(st->pool, real) : NULL;
        if (rj == NULL || rj->resource == NULL) {
            return SW_OK;
        }
        if (mod_muc_child(r, node) >= 0) {
            const char *no = mod_muc_fmuc_admit(r, rj);

            if (no != NULL) {
                char buf[1024];

                sw_log_warn("muc: %s: %s (%s) from %s not let in: %s",
                            r->jid, nick, rj->full, node, no);
                snprintf(buf, sizeof(buf), "%s/%s", node, nick);
                mod_muc_fmuc_error(r, nick, buf, no, true);
                return SW_OK;
            }
        }
        o = sw_calloc(1, sizeof(*o));
        o->nick = sw_strdup(nick);
        o->jid = sw_strdup(rj->full);
        o->bare = sw_strdup(rj->bare);
        o->node = sw_strdup(node);
        mod_muc_occ_id(r, o->bare, o->id);
        o->role = mod_muc_role_for(r, mod_muc_aff(r, o->bare));
        mod_muc_occ_link(r, o);
    }
    mod_muc_occ_set_presence(o, st->xml);
    mod_muc_fmuc_keep(r, o, true);
    mod_muc_presence_all(r, o, o->pres, &how);
    return SW_OK;
}

static int
mod_muc_fmuc_message_in(mod_muc_room_t *r, sw_stanza_t *st,
                        const char *node, const char *real)
{
    const char     *nick = st->from->resource;
    mod_muc_occ_t  *o = nick ? mod_muc_occ_by_nick(r, nick) : NULL;
    const sw_xml_t *delay = sw_xml_child(st->xml, MOD_MUC_NS_DELAY, "delay");
    int64_t         when = (int64_t) time(NULL);
    mod_muc_occ_t   tmp;
    ssize_t         child = mod_muc_child(r, node);
    sw_pool_t      *pool;
    sw_xml_t       *m;
    char            by[MOD_MUC_JID_MAX], id[MOD_MUC_SID_MAX];
    bool            origin = mod_muc_fmuc_origin(st->xml, node, by, id);

    if (st->type == NULL || strcmp(st->type, "groupchat") != 0) {
        /* a private message through the set (XEP-0289 §"Private") */
        mod_muc_occ_t *to = st->to->resource
                            ? mod_muc_occ_by_nick(r, st->to->resource)
                            : NULL;

        if (o == NULL || o->node == NULL || strcmp(o->node, node) != 0
            || to == NULL)
        {
            return SW_OK;
        }
        if (to->node != NULL) {
            mod_muc_fmuc_private(r, o, to, st->xml);
        } else {
            char buf[1024];

            pool = sw_pool_new(sw_pool_used(st->pool) + 256);
            m = sw_xml_copy(pool, st->xml);
            mod_muc_strip(m, MOD_MUC_NS_FMUC, "fmuc", NULL);
            snprintf(buf, sizeof(buf), "%s/%s", r->jid, o->nick);
            sw_xml_set_attr(m, "from", buf);
            sw_xml_set_attr(m, "to", to->jid);
            mod_muc_send(pool, m);
        }
        return SW_OK;
    }
    if (delay != NULL && sw_xml_attr(delay, "stamp") != NULL) {
        int64_t t = mod_muc_parse_stamp(sw_xml_attr(delay, "stamp"));

        when = t > 0 ? t : when;
    }
    if (o != NULL && o->node == NULL) {
        /* our own occupant's message: as the primary's echo, a replica
         * shows it now; otherwise it came back and is not shown again */
        if (!(mod_muc_is_parent(r, node) && r->conf.fmuc_replica)) {
            return SW_OK;
        }
    } else if (o != NULL && strcmp(o->node, node) != 0) {
        return SW_OK;           /* not that node's to speak for */
    } else if (o == NULL) {
        /* history, or the subject, from before we joined: its author
         * need not be here */
        const char *body = sw_xml_child_text(st->xml, NULL, "body");
        sw_jid_t   *rj = real ? sw_jid_new(st->pool, real) : NULL;

        if (!mod_muc_is_parent(r, node) && child < 0) {
            return SW_OK;
        }
        if (nick == NULL) {
            const char *s = sw_xml_child_text(st->xml, NULL, "subject");

            if (s != NULL && body == NULL) {
                free(r->subject);
                free(r->subject_by);
                r->subject = sw_strdup(s);
                r->subject_by = sw_strdup("");
                mod_muc_room_save(r);
            }
            return SW_OK;
        }
        memset(&tmp, 0, sizeof(tmp));
        tmp.nick = (char *) nick;
        tmp.jid = (char *) (rj ? rj->full : "");
        tmp.bare = (char *) (rj ? rj->bare : "");
        tmp.node = (char *) node;
        mod_muc_occ_id(r, tmp.bare, tmp.id);
        o = &tmp;
    }
    if (origin && mod_muc_fmuc_seen(r, by, id)) {
        /* held here already: history a join asked for overlaps what this
         * node has, or a node sent back what came from here */
        sw_log_debug("muc: %s: %s's %s %s is here already", r->jid, node,
                     by, id);
        return SW_OK;
    }
    pool = sw_pool_new(sw_pool_used(st->pool) + 512);
    m = sw_xml_copy(pool, st->xml);
    mod_muc_strip(m, MOD_MUC_NS_FMUC, "fmuc", NULL);
    mod_muc_strip(m, MOD_MUC_NS_SID, "stanza-id", NULL);
    if (origin) {
        mod_muc_fmuc_sid(m, by, id);
    }
    mod_muc_strip(m, MOD_MUC_NS_OID, "occupant-id", NULL);
    mod_muc_deliver(r, o, m, node,
                    child >= 0 && r->nodes_replica[child], when);
    sw_pool_free(pool);
    return SW_OK;
}

/* An IQ from a node's occupant to one here (XEP-0045 §17.4 through the
 * set): passed on as an occupant's is; answered with an error when it
 * cannot be (RFC 6120 §8.2.3: an IQ always gets an answer). */
static int
mod_muc_fmuc_iq_in(mod_muc_room_t *r, sw_stanza_t *st, const char *node)
{
    mod_muc_occ_t *from, *to;

    if (r == NULL) {
        mod_muc_error(st, "item-not-found");
        return SW_OK;
    }
    from = st->from->resource ? mod_muc_occ_by_nick(r, st->from->resource)
                              : NULL;
    to = st->to->resource ? mod_muc_occ_by_nick(r, st->to->resource) : NULL;
    if (from == NULL || from->node == NULL || strcmp(from->node, node) != 0)
    {
        mod_muc_error(st, "not-acceptable");    /* not that node's */
        return SW_OK;
    }
    if (to == NULL || (to->node != NULL && strcmp(to->node, node) == 0)) {
        mod_muc_error(st, "item-not-found");
        return SW_OK;
    }
    mod_muc_fwd_request(r, from, to, st);
    return SW_OK;
}

int
mod_muc_fmuc_in(mod_muc_service_t *svc, mod_muc_room_t *r, sw_stanza_t *st,
                const sw_origin_t *origin)
{
    const sw_xml_t *fm = sw_xml_child(st->xml, MOD_MUC_NS_FMUC, "fmuc");
    const sw_xml_t *mx;
    const char     *node, *real;
    sw_link_t      *l;

    if (fm == NULL || origin->kind != SW_ORIGIN_LINK || st->from == NULL
        || st->from->node == NULL)
    {
        return SW_DECLINED;
    }
    node = st->from->bare;
    real = sw_xml_attr(fm, "from");
    l = mod_muc_fmuc_link(node);
    if (l != origin->link || !mod_muc_fmuc_trusted(svc, node)) {
        sw_log_warn("muc: %s: federation refused to %s (not in the Peer's "
                    "peer_fmuc)", st->to->bare, node);
        if (st->kind == SW_STANZA_PRESENCE && st->type == NULL) {
            mod_muc_fmuc_notice(st->to->bare, node, "reject",
                                "Not federated with this room");
        } else if (st->kind == SW_STANZA_IQ) {
            mod_muc_error(st, "forbidden");
        }
        return SW_OK;
    }
    if (st->kind == SW_STANZA_IQ) {
        if (r != NULL && !mod_muc_is_parent(r, node)
            && mod_muc_child(r, node) < 0)
        {
            r = NULL;           /* a node that is not ours to answer */
        }
        if (r != NULL && mod_muc_is_parent(r, node) && !r->fmuc_joined) {
            r = NULL;
        }
        return mod_muc_fmuc_iq_in(r, st, node);
    }
    if (st->kind == SW_STANZA_PRESENCE && st->from->resource == NULL) {
        const sw_xml_t *rej = sw_xml_child(fm, NULL, "reject");

        if (r == NULL) {
            return SW_OK;
        }
        if (rej != NULL) {
            sw_log_warn("muc: %s: %s refused federation: %s", r->jid, node,
                        sw_xml_text(rej));
            mod_muc_fmuc_drop_node(r, node);
        } else if (sw_xml_child(fm, NULL, "left") != NULL
                   || (st->type != NULL
                       && strcmp(st->type, "unavailable") == 0))
        {
            /* <left/>: the joined node has no occupant of ours (it
             * restarted, or we had left); unavailable: that node
             * restarted, and who was behind it is gone.  A joining node
             * with occupants joins again. */
            bool rejoin = mod_muc_is_parent(r, node) && r->n_local > 0
                          && (r->fmuc_joined
                              || sw_xml_child(fm, NULL, "left") == NULL);

            mod_muc_fmuc_drop_node(r, node);
            if (rejoin) {
                mod_muc_fmuc_rejoin(r);
            }
        }
        return SW_OK;
    }
    if (r == NULL) {
        if (st->kind == SW_STANZA_PRESENCE && st->type == NULL) {
            mod_muc_fmuc_notice(st->to->bare, node, "reject",
                                "No such room");
        }
        return SW_OK;
    }
    if (mod_muc_is_parent(r, node) && !r->fmuc_joined) {
        return SW_OK;           /* we left the set: nothing of it is ours */
    }
    if (st->kind == SW_STANZA_PRESENCE) {
        if (st->type != NULL && strcmp(st->type, "error") == 0) {
            /* our occupant refused over there: a nick collision, or
             * that room's rules */
            mod_muc_occ_t  *o = st->to->resource
                                ? mod_muc_occ_by_nick(r, st->to->resource)
                                : NULL;
            const sw_xml_t *e = sw_xml_child(st->xml, NULL, "error");
            const sw_xml_t *c = e ? sw_xml_child(e, "urn:ietf:params:xml:"
                                                 "ns:xmpp-stanzas", NULL)
                                  : NULL;
            const char     *cond = c ? c->name : NULL;

            if (o != NULL && o->node == NULL && mod_muc_is_parent(r, node))
            {
                mod_muc_fmuc_refused(r, o, node, cond);
            }
            return SW_OK;
        }
        mx = sw_xml_child(st->xml, MOD_MUC_NS, "x");
        if (st->type == NULL && !mod_muc_is_parent(r, node)
            && mod_muc_child(r, node) < 0)
        {
            const char     *mode = sw_xml_attr(fm, "mode");

            if (r->locked || r->conf.fmuc_node != NULL
                || r->n_nodes >= MOD_MUC_FMUC_MAX_NODES)
            {
                mod_muc_fmuc_notice(r->jid, node, "reject", r->locked
                                    ? "The room is locked"
                                    : r->conf.fmuc_node != NULL
                                    ? "This node joins another"
                                    : "Too many nodes");
                return SW_OK;
            }
            mod_muc_fmuc_add_node(r, node, mode != NULL
                                           && strcmp(mode, "replica") == 0);
            mod_muc_fmuc_keep_node(r, node,
                                   r->nodes_replica[r->n_nodes - 1]);
            sw_log_info("muc: %s: %s joined (XEP-0289%s)", r->jid, node,
                        r->nodes_replica[r->n_nodes - 1] ? ", a replica"
                                                         : "");
            mod_muc_fmuc_welcome(r, node, mx ? sw_xml_child(mx, NULL,
                                                            "history")
                                             : NULL);
        } else if (!mod_muc_is_parent(r, node) && mod_muc_child(r, node) < 0)
        {
            return SW_OK;
        } else if (st->type == NULL && mx != NULL
                   && mod_muc_child(r, node) >= 0)
        {
            /* a node known here joins again (we restarted and it dropped
             * what it had of the set): the room again, with what is
             * behind the other nodes, and the history it missed */
            sw_log_info("muc: %s: %s joined again", r->jid, node);
            mod_muc_fmuc_welcome(r, node, sw_xml_child(mx, NULL, "history"));
        }
        return mod_muc_fmuc_presence_in(r, st, node, real);
    }
    if (!mod_muc_is_parent(r, node) && mod_muc_child(r, node) < 0) {
        /* a joining node we do not know (we restarted): join again */
        if (st->from->resource != NULL) {
            mod_muc_fmuc_notice(r->jid, node, "left", NULL);
        }
        return SW_OK;
    }
    if (st->kind == SW_STANZA_MESSAGE) {
        return mod_muc_fmuc_message_in(r, st, node, real);
    }
    return SW_OK;
}
