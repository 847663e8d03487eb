/*
 * mod_muc_room: a room's occupants (XEP-0045 §7: join, presence, nick
 * change, leave), its messages (groupchat §7.4 with XEP-0359 stanza ids
 * and XEP-0421 occupant ids, the subject §8.1, private messages §7.5),
 * its history (§7.2.15, kept in the archive) and what is asked of it
 * (service discovery §6.4, the owner's configuration §10.1-§10.2 and
 * destruction §10.9, self-ping XEP-0410).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "mod_muc.h"

/* --------------------------------------------------------- occupants --- */

mod_muc_occ_t *
mod_muc_occ_by_jid(const mod_muc_room_t *r, const char *jid)
{
    mod_muc_occ_t *o;

    for (o = r->occs; o != NULL && strcmp(o->jid, jid) != 0; o = o->next) {
    }
    return o;
}

mod_muc_occ_t *
mod_muc_occ_by_nick(const mod_muc_room_t *r, const char *nick)
{
    mod_muc_occ_t *o;

    for (o = r->occs; o != NULL && strcmp(o->nick, nick) != 0; o = o->next) {
    }
    return o;
}

/* XEP-0421 §4: the same for a real bare JID in one room, opaque. */
void
mod_muc_occ_id(const mod_muc_room_t *r, const char *bare, char out[33])
{
    unsigned char   d[32];
    char           *in;
    size_t          n = strlen(r->svc->secret) + strlen(r->jid)
                        + strlen(bare) + 3;
    int             i;

    in = sw_alloc(n);
    snprintf(in, n, "%s\n%s\n%s", r->svc->secret, r->jid, bare);
    gnutls_hash_fast(GNUTLS_DIG_SHA256, in, strlen(in), d);
    free(in);
    for (i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

void
mod_muc_occ_free(mod_muc_occ_t *o)
{
    free(o->node);
    free(o->nick);
    free(o->jid);
    free(o->bare);
    sw_pool_free(o->pres_pool);
    free(o);
}

void
mod_muc_occ_unlink(mod_muc_room_t *r, mod_muc_occ_t *o)
{
    mod_muc_occ_t **pp;

    for (pp = &r->occs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            r->n_occs--;
            r->n_local -= o->node == NULL;
            return;
        }
    }
}

void
mod_muc_occ_link(mod_muc_room_t *r, mod_muc_occ_t *o)
{
    o->next = r->occs;
    r->occs = o;
    r->n_occs++;
    r->n_local += o->node == NULL;
}

/* Keeps the occupant's presence, without what was for the room (§7.2). */
void
mod_muc_occ_set_presence(mod_muc_occ_t *o, const sw_xml_t *x)
{
    sw_pool_t *pool = sw_pool_new(1024);
    sw_xml_t  *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_xml_t  *c;

    for (c = x->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM && c->ns != NULL
            && (strcmp(c->ns, MOD_MUC_NS) == 0
                || strcmp(c->ns, MOD_MUC_NS_USER) == 0
                || strcmp(c->ns, MOD_MUC_NS_FMUC) == 0
                || strcmp(c->ns, MOD_MUC_NS_OID) == 0))   /* XEP-0421 §4 */
        {
            continue;
        }
        sw_xml_append(p, sw_xml_copy(pool, c));
    }
    sw_pool_free(o->pres_pool);
    o->pres_pool = pool;
    o->pres = p;
}

/* ---------------------------------------------------------- presence --- */


/* occ's presence as `to` (an occupant) sees it. */
static void
mod_muc_presence_to(const mod_muc_room_t *r, const mod_muc_occ_t *occ,
                    const mod_muc_occ_t *to, const sw_xml_t *src,
                    const mod_muc_pres_t *how)
{
    sw_pool_t *pool = sw_pool_new(1024);
    sw_xml_t  *p = sw_xml_new(pool, SW_NS_CLIENT, "presence");
    sw_xml_t  *x, *item, *c;
    char       from[1024], num[8];
    size_t     i;

    snprintf(from, sizeof(from), "%s/%s", r->jid, occ->nick);
    sw_xml_set_attr(p, "from", from);
    sw_xml_set_attr(p, "to", to->jid);
    if (how->unavailable) {
        sw_xml_set_attr(p, "type", "unavailable");
    }
    if (to->node != NULL) {
        sw_pool_free(pool);     /* its own node tells it (XEP-0289) */
        return;
    }
    for (c = src ? src->first : NULL; c != NULL; c = c->next) {
        if (c->type != SW_XML_ELEM
            || (c->ns != NULL && (strcmp(c->ns, MOD_MUC_NS) == 0
                                  || strcmp(c->ns, MOD_MUC_NS_USER) == 0
                                  || strcmp(c->ns, MOD_MUC_NS_FMUC) == 0)))
        {
            continue;
        }
        if (how->unavailable && (c->ns == NULL || strcmp(c->ns, SW_NS_CLIENT)
                                 != 0 || strcmp(c->name, "status") != 0))
        {
            continue;           /* leaving: only a status text goes on */
        }
        sw_xml_append(p, sw_xml_copy(pool, c));
    }
    x = sw_xml_add(p, MOD_MUC_NS_USER, "x");
    item = sw_xml_add(x, NULL, "item");
    sw_xml_set_attr(item, "affiliation",
                    mod_muc_aff_name(mod_muc_aff(r, occ->bare)));
    sw_xml_set_attr(item, "role", how->unavailable && how->new_nick == NULL
                                  ? "none" : mod_muc_role_name(occ->role));
    /* §7.2.3, §7.2.4: the real JID to moderators, or to all when the
     * room is non-anonymous */
    if (r->conf.whois_anyone || to->role == MOD_MUC_MODERATOR || to == occ) {
        sw_xml_set_attr(item, "jid", occ->jid);
    }
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
    if (how->extra != NULL) {
        sw_xml_append(x, sw_xml_copy(pool, how->extra));
    }
    for (i = 0; how->codes != NULL && how->codes[i] != 0; i++) {
        /* 110 only to the occupant itself (§7.2.3) */
        if (how->codes[i] == 110 && to != occ) {
            continue;
        }
        if ((how->codes[i] == 100 || how->codes[i] == 201) && to != occ) {
            continue;
        }
        snprintf(num, sizeof(num), "%d", how->codes[i]);
        sw_xml_set_attr(sw_xml_add(x, NULL, "status"), "code", num);
    }
    sw_xml_set_attr(sw_xml_add(p, MOD_MUC_NS_OID, "occupant-id"), "id",
                    occ->id);
    mod_muc_send(pool, p);
}

void
mod_muc_presence_all(const mod_muc_room_t *r, const mod_muc_occ_t *occ,
                     const sw_xml_t *src, const mod_muc_pres_t *how)
{
    const mod_muc_occ_t *o;

    for (o = r->occs; o != NULL; o = o->next) {
        mod_muc_presence_to(r, occ, o, src, how);
    }
    mod_muc_fmuc_presence((mod_muc_room_t *) r, occ, src, how,
                          how->from_node);
}

/* ----------------------------------------------------------- history --- */

void
mod_muc_stamp(int64_t when, char *buf, size_t size)
{
    time_t    t = (time_t) when;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* XEP-0082 §3.3: CCYY-MM-DDThh:mm:ss[.sss]TZD; -1 when it is not one. */
int64_t
mod_muc_parse_stamp(const char *s)
{
    struct tm  tm;
    int        n = 0, tzh = 0, tzm = 0;
    char       sign;
    const char *p;
    time_t     t;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6
        || n != 19)
    {
        return -1;
    }
    p = s + n;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
        }
    }
    if (strcmp(p, "Z") == 0) {
        sign = '+';
    } else if ((p[0] == '+' || p[0] == '-')
               && sscanf(p + 1, "%2d:%2d%n", &tzh, &tzm, &n) == 2
               && p[1 + n] == '\0')
    {
        sign = p[0];
    } else {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t == (time_t) -1) {
        return -1;
    }
    return (int64_t) t - (sign == '+' ? 1 : -1) * (tzh * 3600 + tzm * 60);
}

/* §7.2.15: the room's history to a new occupant, as limited by what it
 * asked (<history/> in its join) and the room's muc#maxhistoryfetch. */
void
mod_muc_history(mod_muc_room_t *r, const char *to, const sw_xml_t *want,
                bool node)
{
    sw_storage_t       *st = r->svc->st;
    sw_archive_query_t  q;
    sw_archive_item_t  *items;
    sw_pool_t          *tmp;
    size_t              n, i, first = 0;
    int64_t             maxchars = -1;
    const char         *v;

    memset(&q, 0, sizeof(q));
    q.max = (size_t) r->conf.history;
    q.last = true;
    if (want != NULL) {
        if ((v = sw_xml_attr(want, "maxstanzas")) != NULL
            && strtoll(v, NULL, 10) < (long long) q.max)
        {
            q.max = strtoll(v, NULL, 10) > 0 ? (size_t) strtoll(v, NULL, 10)
                                             : 0;
        }
        if ((v = sw_xml_attr(want, "maxchars")) != NULL) {
            maxchars = strtoll(v, NULL, 10);
            maxchars = maxchars < 0 ? 0 : maxchars;
        }
        if ((v = sw_xml_attr(want, "seconds")) != NULL) {
            q.start = (int64_t) time(NULL) - strtoll(v, NULL, 10);
        }
        if ((v = sw_xml_attr(want, "since")) != NULL) {
            int64_t since = mod_muc_parse_stamp(v);

            if (since >= 0 && since > q.start) {
                q.start = since;
            }
        }
    }
    if (q.max == 0 || maxchars == 0) {
        return;
    }
    tmp = sw_pool_new(4096);
    if (st->archive_query(st, MOD_MUC_STORE_HIST, r->svc->domain, r->node, &q,
                          tmp, &items, &n) != SW_OK)
    {
        sw_pool_free(tmp);
        return;
    }
    if (maxchars > 0) {
        /* counted from the newest back; each with its <delay/> (~110) */
        int64_t total = 0;

        for (i = n; i > 0; i--) {
            total += (int64_t) items[i - 1].len + 110;
            if (total > maxchars) {
                first = i;
                break;
            }
        }
    }
    for (i = first; i < n; i++) {
        sw_pool_t *pool = sw_pool_new(items[i].len + 512);
        sw_xml_t  *m = sw_xml_parse(pool, items[i].data, items[i].len, NULL);
        sw_xml_t  *d;
        char       stamp[32], id[32];

        if (m == NULL) {
            sw_pool_free(pool);
            continue;
        }
        sw_xml_set_attr(m, "to", to);
        snprintf(id, sizeof(id), "%lld", (long long) items[i].id);
        d = sw_xml_add(m, MOD_MUC_NS_SID, "stanza-id");
        sw_xml_set_attr(d, "id", id);
        sw_xml_set_attr(d, "by", r->jid);
        mod_muc_stamp(items[i].when, stamp, sizeof(stamp));
        d = sw_xml_add(m, MOD_MUC_NS_DELAY, "delay");
        sw_xml_set_attr(d, "from", r->jid);
        sw_xml_set_attr(d, "stamp", stamp);
        if (node) {
            d = sw_xml_add(m, MOD_MUC_NS_FMUC, "fmuc");
            sw_xml_set_attr(d, "from", items[i].with ? items[i].with : "");
        }
        mod_muc_send(pool, m);
    }
    sw_pool_free(tmp);
}

/* Keeps the archive of a room to muc_archive_max messages, checked every
 * 64 appends. */
static void
mod_muc_trim(mod_muc_room_t *r)
{
    sw_storage_t       *st = r->svc->st;
    sw_archive_query_t  q;
    sw_archive_item_t  *items;
    sw_pool_t          *tmp;
    size_t              n, keep = (size_t) r->svc->conf->archive_max;

    if (++r->appended < 64) {
        return;
    }
    r->appended = 0;
    memset(&q, 0, sizeof(q));
    q.max = keep + 64;
    q.last = true;
    tmp = sw_pool_new(16384);
    if (st->archive_query(st, MOD_MUC_STORE_HIST, r->svc->domain, r->node, &q,
                          tmp, &items, &n) == SW_OK && n > keep)
    {
        st->archive_delete(st, MOD_MUC_STORE_HIST, r->svc->domain, r->node,
                           items[n - keep - 1].id, 0, NULL);
    }
    sw_pool_free(tmp);
}

/* §7.2.16: the subject, last of a join; empty when there is none. */
void
mod_muc_subject_to(const mod_muc_room_t *r, const char *to, bool node)
{
    sw_pool_t *pool = sw_pool_new(512);
    sw_xml_t  *m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_t  *s;
    char       from[1024];

    if (r->subject_by != NULL && r->subject_by[0] != '\0') {
        snprintf(from, sizeof(from), "%s/%s", r->jid, r->subject_by);
        sw_xml_set_attr(m, "from", from);
    } else {
        sw_xml_set_attr(m, "from", r->jid);
    }
    sw_xml_set_attr(m, "to", to);
    sw_xml_set_attr(m, "type", "groupchat");
    s = sw_xml_add(m, NULL, "subject");
    if (r->subject != NULL && r->subject[0] != '\0') {
        sw_xml_add_text(s, r->subject, strlen(r->subject));
    }
    if (node) {
        sw_xml_add(m, MOD_MUC_NS_FMUC, "fmuc");
    }
    mod_muc_send(pool, m);
}

/* ------------------------------------------------------ join & leave --- */

/* §5.1.2: the role an affiliation enters with. */
mod_muc_role_e
mod_muc_role_for(const mod_muc_room_t *r, mod_muc_aff_e aff)
{
    return aff >= MOD_MUC_ADMIN ? MOD_MUC_MODERATOR
           : r->conf.moderated && aff < MOD_MUC_MEMBER ? MOD_MUC_VISITOR
           : MOD_MUC_PARTICIPANT;
}

static int
mod_muc_join(mod_muc_service_t *svc, mod_muc_room_t *r, sw_stanza_t *st)
{
    const sw_xml_t *mx = sw_xml_child(st->xml, MOD_MUC_NS, "x");
    const char     *nick = st->to->resource;
    bool            created = false;
    mod_muc_aff_e   aff;
    mod_muc_occ_t  *o, *same;
    int             codes[4], nc = 0;
    int64_t         max;
    mod_muc_pres_t  how;

    if (r == NULL) {
        if ((int64_t) sw_hash_count(svc->rooms) >= svc->conf->max_rooms) {
            mod_muc_error(st, "resource-constraint");
            return SW_OK;
        }
        r = mod_muc_room_new(svc, st->to->node);
        r->locked = svc->conf->locking;
        mod_muc_set_aff(r, st->from->bare, MOD_MUC_OWNER);
        created = true;
        sw_log_info("muc: %s created by %s", r->jid, st->from->bare);
    }
    aff = mod_muc_aff(r, st->from->bare);
    same = mod_muc_occ_by_nick(r, nick);
    /* §10.1: a locked room is there for its owner only */
    if (r->locked && aff != MOD_MUC_OWNER) {
        mod_muc_error(st, "item-not-found");
        return SW_OK;
    }
    if (aff == MOD_MUC_OUTCAST) {                       /* §7.2.7 */
        mod_muc_error(st, "forbidden");
        return SW_OK;
    }
    if (r->conf.members_only && aff < MOD_MUC_MEMBER) { /* §7.2.6 */
        mod_muc_error(st, "registration-required");
        return SW_OK;
    }
    if (same != NULL && (strcmp(same->bare, st->from->bare) != 0
                         || same->node != NULL))
    {
        mod_muc_error(st, "conflict");                  /* §7.2.8 */
        return SW_OK;
    }
    if (r->conf.password != NULL && aff != MOD_MUC_OWNER
        && (mx == NULL || sw_xml_child_text(mx, NULL, "password") == NULL
            || strcmp(sw_xml_child_text(mx, NULL, "password"),
                      r->conf.password) != 0))
    {
        mod_muc_error(st, "not-authorized");            /* §7.2.5 */
        return SW_OK;
    }
    max = r->conf.max_users > 0 && r->conf.max_users < svc->conf->max_occupants
          ? r->conf.max_users : svc->conf->max_occupants;
    if (same == NULL && (int64_t) r->n_occs >= max && aff < MOD_MUC_ADMIN) {
        sw_route(sw_stanza_error_reply(st, "wait", "service-unavailable",
                                       NULL));          /* §7.2.10 */
        return SW_OK;
    }
    if (same != NULL) {
        /*
         * The same account under the same nick from another resource: a
         * client back after its connection broke, whose old session's
         * presence never said goodbye.  The occupant moves to the new
         * resource instead of being refused.
         */
        free(same->jid);
        same->jid = sw_strdup(st->from->full);
        o = same;
    } else {
        o = sw_calloc(1, sizeof(*o));
        o->nick = sw_strdup(nick);
        o->jid = sw_strdup(st->from->full);
        o->bare = sw_strdup(st->from->bare);
        mod_muc_occ_id(r, o->bare, o->id);
        o->role = mod_muc_role_for(r, aff);
        mod_muc_occ_link(r, o);
    }
    mod_muc_occ_set_presence(o, st->xml);
    /* §7.2.3: the others' presence first */
    memset(&how, 0, sizeof(how));
    {
        mod_muc_occ_t *e;

        for (e = r->occs; e != NULL; e = e->next) {
            if (e != o) {
                mod_muc_presence_to(r, e, o, e->pres, &how);
            }
        }
    }
    if (r->conf.whois_anyone) {
        codes[nc++] = 100;
    }
    codes[nc++] = 110;
    if (created) {
        codes[nc++] = 201;
    }
    codes[nc] = 0;
    how.codes = codes;
    if (same != NULL) {
        mod_muc_presence_to(r, o, o, o->pres, &how);
    } else {
        mod_muc_presence_all(r, o, o->pres, &how);
    }
    if (!created) {
        mod_muc_history(r, o->jid, mx ? sw_xml_child(mx, NULL, "history")
                                      : NULL, false);
    }
    mod_muc_subject_to(r, o->jid, false);
    return SW_OK;
}

/* The occupant leaves (§7.14) or is removed; a temporary room with
 * nobody left goes (§10.1.4). */
bool
mod_muc_leave_how(mod_muc_room_t *r, mod_muc_occ_t *o, const sw_xml_t *src,
                  mod_muc_pres_t *how)
{
    how->unavailable = true;
    mod_muc_presence_all(r, o, src, how);
    mod_muc_fmuc_keep(r, o, false);
    mod_muc_occ_unlink(r, o);
    mod_muc_occ_free(o);
    if (r->n_local == 0 && r->fmuc_joined) {
        mod_muc_fmuc_forget(r);         /* XEP-0289: this node leaves */
    }
    if (r->n_occs == 0 && !r->conf.persistent) {
        mod_muc_room_destroy(r);
        return false;
    }
    return true;
}

bool
mod_muc_leave(mod_muc_room_t *r, mod_muc_occ_t *o, const sw_xml_t *src,
              const int *codes, const sw_xml_t *extra)
{
    mod_muc_pres_t how;

    memset(&how, 0, sizeof(how));
    how.codes = codes;
    how.extra = extra;
    return mod_muc_leave_how(r, o, src, &how);
}

/* §7.6: a new nick for an occupant. */
static void
mod_muc_nick_change(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st)
{
    static const int leave_codes[] = { 303, 110, 0 };
    static const int self_codes[] = { 110, 0 };
    const char      *nick = st->to->resource;
    mod_muc_pres_t   how;

    if (mod_muc_occ_by_nick(r, nick) != NULL) {
        mod_muc_error(st, "conflict");
        return;
    }
    memset(&how, 0, sizeof(how));
    how.unavailable = true;
    how.codes = leave_codes;
    how.new_nick = nick;
    mod_muc_presence_all(r, o, NULL, &how);
    free(o->nick);
    o->nick = sw_strdup(nick);
    mod_muc_occ_set_presence(o, st->xml);
    memset(&how, 0, sizeof(how));
    how.codes = self_codes;
    mod_muc_presence_all(r, o, o->pres, &how);
}

int
mod_muc_room_presence(mod_muc_service_t *svc, mod_muc_room_t *r,
                      sw_stanza_t *st)
{
    static const int self[] = { 110, 0 };
    mod_muc_occ_t   *o;

    if (st->from == NULL || st->from->resource == NULL) {
        return SW_OK;
    }
    o = r != NULL ? mod_muc_occ_by_jid(r, st->from->full) : NULL;
    if (st->type != NULL && strcmp(st->type, "error") == 0) {
        /* the occupant's server says it is gone: a ghost no longer */
        if (o != NULL) {
            mod_muc_gone_later(svc, r->node, o->jid);
        }
        return SW_OK;
    }
    if (st->type != NULL && strcmp(st->type, "unavailable") == 0) {
        if (o != NULL) {
            mod_muc_leave(r, o, st->xml, self, NULL);
        }
        return SW_OK;
    }
    if (st->type != NULL) {
        return SW_OK;           /* subscriptions, probes: not for a room */
    }
    if (st->to->resource == NULL
        || strlen(st->to->bare) + strlen(st->to->resource) + 2
           > MOD_MUC_JID_MAX)
    {
        mod_muc_error(st, "jid-malformed");             /* §7.2.1 */
        return SW_OK;
    }
    if (o == NULL) {
        return mod_muc_join(svc, r, st);
    }
    if (strcmp(o->nick, st->to->resource) != 0) {
        mod_muc_nick_change(r, o, st);
        return SW_OK;
    }
    /* §7.7: a change of availability, to everyone */
    {
        mod_muc_pres_t how;

        memset(&how, 0, sizeof(how));
        how.codes = self;
        mod_muc_occ_set_presence(o, st->xml);
        mod_muc_presence_all(r, o, o->pres, &how);
    }
    return SW_OK;
}

/* ---------------------------------------------------------- messages --- */

/* Errors that say the occupant's client is gone (XEP-0045 §7.? ghost
 * users; the conditions servers bounce with when nobody is there). */
static bool
mod_muc_gone_error(const sw_stanza_t *st)
{
    static const char *const gone[] = {
        "gone", "item-not-found", "recipient-unavailable",
        "remote-server-not-found", "remote-server-timeout",
        "service-unavailable", NULL
    };
    const sw_xml_t *e = sw_xml_child(st->xml, NULL, "error");
    const sw_xml_t *c;
    size_t          i;

    for (c = e ? e->first : NULL; c != NULL; c = c->next) {
        for (i = 0; c->type == SW_XML_ELEM && gone[i] != NULL; i++) {
            if (strcmp(c->name, gone[i]) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* A copy of m for each occupant. */
void
mod_muc_broadcast(const mod_muc_room_t *r, const sw_xml_t *m)
{
    const mod_muc_occ_t *o;

    for (o = r->occs; o != NULL; o = o->next) {
        sw_pool_t *pool;
        sw_xml_t  *c;

        if (o->node != NULL) {
            continue;           /* its own node tells it (XEP-0289) */
        }
        pool = sw_pool_new(1024);
        c = sw_xml_copy(pool, m);

        sw_xml_set_attr(c, "to", o->jid);
        mod_muc_send(pool, c);
    }
}

/* Removes the children of x in ns named name whose attribute `by` is by
 * (any when by is NULL). */
void
mod_muc_strip(sw_xml_t *x, const char *ns, const char *name, const char *by)
{
    sw_xml_t *c, *next;

    for (c = x->first; c != NULL; c = next) {
        next = c->next;
        if (c->type == SW_XML_ELEM && c->ns != NULL && strcmp(c->ns, ns) == 0
            && strcmp(c->name, name) == 0
            && (by == NULL || (sw_xml_attr(c, "by") != NULL
                               && strcmp(sw_xml_attr(c, "by"), by) == 0)))
        {
            sw_xml_unlink(c);
        }
    }
}

/*
 * A groupchat message of o's, already allowed, reaches the room: a
 * subject is taken, a body archived (at `when`, its origin's time) with
 * a stanza id, and m goes to every occupant of this server's and to the
 * other nodes but from_node (XEP-0289), to from_node too when echo (a
 * replica waits for that).  m, in a pool of the caller's, is changed.
 */
void
mod_muc_deliver(mod_muc_room_t *r, const mod_muc_occ_t *o, sw_xml_t *m,
                const char *from_node, bool echo, int64_t when)
{
    const sw_xml_t *subject = sw_xml_child(m, NULL, "subject");
    bool            body = sw_xml_child(m, NULL, "body") != NULL;
    char            from[1024];

    if (subject != NULL && !body) {
        free(r->subject);
        free(r->subject_by);
        r->subject = sw_strdup(sw_xml_text(subject));
        r->subject_by = sw_strdup(o->nick);
        mod_muc_room_save(r);
    }
    snprintf(from, sizeof(from), "%s/%s", r->jid, o->nick);
    sw_xml_set_attr(m, "from", from);
    sw_xml_set_attr(m, "to", NULL);
    sw_xml_set_attr(sw_xml_add(m, MOD_MUC_NS_OID, "occupant-id"), "id",
                    o->id);
    if (body) {
        sw_storage_t   *sto = r->svc->st;
        sw_xml_t       *delay = sw_xml_child(m, MOD_MUC_NS_DELAY, "delay");
        /* from another node: the id its origin gave it (XEP-0289 with
         * XEP-0359), kept with it; from here, ours is the origin's */
        const sw_xml_t *origin = sw_xml_child(m, MOD_MUC_NS_SID,
                                              "stanza-id");
        char           *text;
        int64_t         id = 0;
        char            num[32];

        /* stored without a delay: history gets one of its own, at when */
        if (delay != NULL) {
            sw_xml_unlink(delay);
        }
        text = sw_xml_to_string(m, NULL);       /* with its xmlns */
        if (delay != NULL) {
            sw_xml_append(m, delay);
        }

        if (sto->archive_append(sto, MOD_MUC_STORE_HIST, r->svc->domain,
                                r->node, when, o->bare, text, strlen(text),
                                &id) == SW_OK)
        {
            sw_xml_t *sid = sw_xml_add(m, MOD_MUC_NS_SID, "stanza-id");

            snprintf(num, sizeof(num), "%lld", (long long) id);
            sw_xml_set_attr(sid, "id", num);
            sw_xml_set_attr(sid, "by", r->jid);
            if (origin != NULL) {
                mod_muc_fmuc_seen_add(r, sw_xml_attr(origin, "by"),
                                      sw_xml_attr(origin, "id"));
            } else {
                mod_muc_fmuc_seen_add(r, r->jid, num);
            }
            mod_muc_trim(r);
        }
        free(text);
    }
    mod_muc_broadcast(r, m);
    mod_muc_fmuc_message(r, o, m, echo ? NULL : from_node);
}

/* §7.4, §8.1: a message to all occupants, or a new subject. */
static int
mod_muc_groupchat(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st)
{
    const sw_xml_t *subject = sw_xml_child(st->xml, NULL, "subject");
    bool            body = sw_xml_child(st->xml, NULL, "body") != NULL;
    sw_pool_t      *pool;
    sw_xml_t       *m;

    if (o->role < MOD_MUC_PARTICIPANT) {
        mod_muc_error(st, "forbidden");         /* §7.4: no voice */
        return SW_OK;
    }
    if (subject != NULL && !body && !r->conf.change_subject
        && o->role != MOD_MUC_MODERATOR)
    {
        mod_muc_error(st, "forbidden");         /* §8.1 */
        return SW_OK;
    }
    pool = sw_pool_new(sw_pool_used(st->pool) + 512);
    m = sw_xml_copy(pool, st->xml);
    /* XEP-0359 §5 and XEP-0421 §4: what claims to be ours is not; nor
     * is an id a client claims another node gave (the nodes tell their
     * messages apart by them) */
    mod_muc_strip(m, MOD_MUC_NS_SID, "stanza-id", NULL);
    mod_muc_strip(m, MOD_MUC_NS_OID, "occupant-id", NULL);
    mod_muc_strip(m, MOD_MUC_NS_FMUC, "fmuc", NULL);
    mod_muc_strip(m, MOD_MUC_NS_DELAY, "delay", NULL);  /* it is live */
    if (r->conf.fmuc_node != NULL && r->conf.fmuc_replica && r->fmuc_joined)
    {
        /* XEP-0289 primary-replica: the primary's echo is what counts */
        mod_muc_fmuc_message_to(r, o, m, r->conf.fmuc_node);
    } else {
        mod_muc_deliver(r, o, m, NULL, false, (int64_t) time(NULL));
    }
    sw_pool_free(pool);
    return SW_OK;
}

/* §7.5: to one occupant, through the room. */
static int
mod_muc_private(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st)
{
    mod_muc_occ_t *to = mod_muc_occ_by_nick(r, st->to->resource);
    sw_pool_t     *pool;
    sw_xml_t      *m;
    char           from[1024];

    if (st->type != NULL && strcmp(st->type, "groupchat") == 0) {
        mod_muc_error(st, "bad-request");
        return SW_OK;
    }
    if (to == NULL) {
        mod_muc_error(st, "item-not-found");
        return SW_OK;
    }
    if (to->node != NULL) {
        mod_muc_fmuc_private(r, o, to, st->xml);
        return SW_OK;
    }
    pool = sw_pool_new(sw_pool_used(st->pool) + 512);
    m = sw_xml_copy(pool, st->xml);
    mod_muc_strip(m, MOD_MUC_NS_FMUC, "fmuc", NULL);
    mod_muc_strip(m, MOD_MUC_NS_OID, "occupant-id", NULL);
    snprintf(from, sizeof(from), "%s/%s", r->jid, o->nick);
    sw_xml_set_attr(m, "from", from);
    sw_xml_set_attr(m, "to", to->jid);
    if (sw_xml_child(m, MOD_MUC_NS_USER, "x") == NULL) {
        sw_xml_add(m, MOD_MUC_NS_USER, "x");
    }
    mod_muc_send(pool, m);
    return SW_OK;
}

int
mod_muc_room_message(mod_muc_room_t *r, sw_stanza_t *st)
{
    mod_muc_occ_t   *o = mod_muc_occ_by_jid(r, st->from->full);

    if (st->type != NULL && strcmp(st->type, "error") == 0) {
        if (o != NULL && mod_muc_gone_error(st)) {
            mod_muc_gone_later(r->svc, r->node, o->jid);
        }
        return SW_OK;
    }
    if (st->to->resource == NULL
        && (st->type == NULL || strcmp(st->type, "groupchat") != 0)
        && sw_xml_child(st->xml, MOD_MUC_NS_USER, "x") != NULL)
    {
        return mod_muc_invite(r, o, st);        /* §7.8.2: o may be NULL */
    }
    if (o == NULL) {
        mod_muc_error(st, "not-acceptable");    /* §7.4, §7.5 */
        return SW_OK;
    }
    if (st->to->resource != NULL) {
        return mod_muc_private(r, o, st);
    }
    if (st->type != NULL && strcmp(st->type, "groupchat") == 0) {
        return mod_muc_groupchat(r, o, st);
    }
    {
        const sw_xml_t *form = sw_xml_child(st->xml, MOD_MUC_NS_DATA, "x");

        if (form != NULL) {
            return mod_muc_voice(r, o, st, form);     /* §7.13, §8.6 */
        }
    }
    mod_muc_error(st, "bad-request");
    return SW_OK;
}

/* ---------------------------------------------- owner: configuration --- */

static sw_xml_t *
mod_muc_field(sw_xml_t *form, const char *var, const char *type,
              const char *label, const char *value)
{
    sw_xml_t *f = sw_xml_add(form, NULL, "field");

    sw_xml_set_attr(f, "var", var);
    sw_xml_set_attr(f, "type", type);
    if (label != NULL) {
        sw_xml_set_attr(f, "label", label);
    }
    if (value != NULL) {
        sw_xml_add_text(sw_xml_add(f, NULL, "value"), value, strlen(value));
    }
    return f;
}

static void
mod_muc_option(sw_xml_t *f, const char *label, const char *value)
{
    sw_xml_t *o = sw_xml_add(f, NULL, "option");

    sw_xml_set_attr(o, "label", label);
    sw_xml_add_text(sw_xml_add(o, NULL, "value"), value, strlen(value));
}

/* §10.2: the configuration form with the room's values. */
static void
mod_muc_config_form(const mod_muc_room_t *r, sw_xml_t *q)
{
    sw_xml_t *x = sw_xml_add(q, MOD_MUC_NS_DATA, "x");
    sw_xml_t *f;
    char      num[32];

    sw_xml_set_attr(x, "type", "form");
    sw_xml_add_text(sw_xml_add(x, NULL, "title"), "Room configuration", 18);
    mod_muc_field(x, "FORM_TYPE", "hidden", NULL, MOD_MUC_NS_CONFIG);
    mod_muc_field(x, "muc#roomconfig_roomname", "text-single",
                  "Natural-language room name", r->conf.name);
    mod_muc_field(x, "muc#roomconfig_roomdesc", "text-single",
                  "Short description of the room", r->conf.desc);
    mod_muc_field(x, "muc#roomconfig_persistentroom", "boolean",
                  "Make room persistent", r->conf.persistent ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_publicroom", "boolean",
                  "Make room publicly searchable",
                  r->conf.public ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_membersonly", "boolean",
                  "Make room members-only", r->conf.members_only ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_moderatedroom", "boolean",
                  "Make room moderated", r->conf.moderated ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_changesubject", "boolean",
                  "Allow occupants to change the subject",
                  r->conf.change_subject ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_passwordprotectedroom", "boolean",
                  "Password required to enter",
                  r->conf.password ? "1" : "0");
    mod_muc_field(x, "muc#roomconfig_roomsecret", "text-private", "Password",
                  r->conf.password ? r->conf.password : "");
    snprintf(num, sizeof(num), "%lld", (long long) r->conf.max_users);
    f = mod_muc_field(x, "muc#roomconfig_maxusers", "list-single",
                      "Maximum number of occupants",
                      r->conf.max_users ? num : "none");
    mod_muc_option(f, "10", "10");
    mod_muc_option(f, "20", "20");
    mod_muc_option(f, "50", "50");
    mod_muc_option(f, "100", "100");
    mod_muc_option(f, "None", "none");
    f = mod_muc_field(x, "muc#roomconfig_whois", "list-single",
                      "Who may discover real JIDs",
                      r->conf.whois_anyone ? "anyone" : "moderators");
    mod_muc_option(f, "Moderators only", "moderators");
    mod_muc_option(f, "Anyone", "anyone");
    snprintf(num, sizeof(num), "%lld", (long long) r->conf.history);
    mod_muc_field(x, "muc#maxhistoryfetch", "text-single",
                  "Maximum number of history messages returned by the room",
                  num);
    /* XEP-0289 defines no configuration: these are Skywave's */
    mod_muc_field(x, "fmuc_node", "jid-single",
                  "Federate: the room on a peer server this room joins as "
                  "a node (XEP-0289)",
                  r->conf.fmuc_node ? r->conf.fmuc_node : "");
    f = mod_muc_field(x, "fmuc_mode", "list-single",
                      "Federation mode",
                      r->conf.fmuc_replica ? "primary-replica"
                                           : "primary-primary");
    mod_muc_option(f, "Both nodes work when apart", "primary-primary");
    mod_muc_option(f, "This node shows what the other echoes",
                   "primary-replica");
}

static int
mod_muc_bool(const char *v, bool *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        *out = true;
    } else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
        *out = false;
    } else {
        return SW_ERROR;
    }
    return SW_OK;
}

static int
mod_muc_count(const char *v, int64_t max, int64_t *out)
{
    char      *end;
    long long  n;

    if (strcmp(v, "none") == 0 || strcmp(v, "") == 0) {
        *out = 0;
        return SW_OK;
    }
    n = strtoll(v, &end, 10);
    if (*end != '\0' || n < 0 || n > max) {
        return SW_ERROR;
    }
    *out = n;
    return SW_OK;
}

/* §10.2: a submitted form; nothing changes unless all of it is valid.
 * Returns NULL or the error condition. */
static const char *
mod_muc_config_submit(mod_muc_room_t *r, const sw_xml_t *x)
{
    mod_muc_rconf_t  c = r->conf;
    const sw_xml_t  *f;
    const char      *secret = NULL;
    const char      *fmuc_node = NULL;
    int              protect = -1;

    for (f = sw_xml_child(x, NULL, "field"); f != NULL;
         f = sw_xml_next_match(f, NULL, "field"))
    {
        const char *var = sw_xml_attr(f, "var");
        const char *v = sw_xml_child_text(f, NULL, "value");
        bool        b;
        int         rc = SW_OK;

        if (var == NULL) {
            return "bad-request";
        }
        v = v ? v : "";
        if (strcmp(var, "FORM_TYPE") == 0) {
            if (strcmp(v, MOD_MUC_NS_CONFIG) != 0) {
                return "bad-request";
            }
        } else if (strcmp(var, "muc#roomconfig_roomname") == 0) {
            c.name = (char *) v;
        } else if (strcmp(var, "muc#roomconfig_roomdesc") == 0) {
            c.desc = (char *) v;
        } else if (strcmp(var, "muc#roomconfig_persistentroom") == 0) {
            rc = mod_muc_bool(v, &c.persistent);
        } else if (strcmp(var, "muc#roomconfig_publicroom") == 0) {
            rc = mod_muc_bool(v, &c.public);
        } else if (strcmp(var, "muc#roomconfig_membersonly") == 0) {
            rc = mod_muc_bool(v, &c.members_only);
        } else if (strcmp(var, "muc#roomconfig_moderatedroom") == 0) {
            rc = mod_muc_bool(v, &c.moderated);
        } else if (strcmp(var, "muc#roomconfig_changesubject") == 0) {
            rc = mod_muc_bool(v, &c.change_subject);
        } else if (strcmp(var, "muc#roomconfig_passwordprotectedroom")
                   == 0)
        {
            rc = mod_muc_bool(v, &b);
            protect = b;
        } else if (strcmp(var, "muc#roomconfig_roomsecret") == 0) {
            secret = v;
        } else if (strcmp(var, "muc#roomconfig_maxusers") == 0) {
            rc = mod_muc_count(v, r->svc->conf->max_occupants, &c.max_users);
        } else if (strcmp(var, "muc#roomconfig_whois") == 0) {
            if (strcmp(v, "anyone") == 0) {
                c.whois_anyone = true;
            } else if (strcmp(v, "moderators") == 0) {
                c.whois_anyone = false;
            } else {
                rc = SW_ERROR;
            }
        } else if (strcmp(var, "muc#maxhistoryfetch") == 0) {
            rc = mod_muc_count(v, r->svc->conf->history_max, &c.history);
        } else if (strcmp(var, "fmuc_node") == 0) {
            fmuc_node = v;
        } else if (strcmp(var, "fmuc_mode") == 0) {
            if (strcmp(v, "primary-replica") == 0) {
                c.fmuc_replica = true;
            } else if (strcmp(v, "primary-primary") == 0) {
                c.fmuc_replica = false;
            } else {
                rc = SW_ERROR;
            }
        }
        /* fields this service does not offer are ignored */
        if (rc != SW_OK) {
            return "not-acceptable";
        }
    }
    if (protect == 1 && (secret ? secret : c.password) == NULL) {
        return "not-acceptable";        /* protected, but by nothing */
    }
    if (fmuc_node != NULL && fmuc_node[0] != '\0') {
        sw_jid_t *j = sw_jid_new(x->pool, fmuc_node);

        /* a room on a peer whose agreement lets it federate */
        if (j == NULL || j->node == NULL || j->resource != NULL
            || strcmp(j->domain, r->svc->domain) == 0
            || !mod_muc_fmuc_trusted(r->svc, j->bare))
        {
            return "not-acceptable";
        }
        fmuc_node = j->bare;
    }
    /* all valid: apply */
    c.name = sw_strdup(c.name);
    c.desc = sw_strdup(c.desc);
    if (fmuc_node != NULL
        && (fmuc_node[0] == '\0' ? r->conf.fmuc_node != NULL
            : r->conf.fmuc_node == NULL
              || strcmp(fmuc_node, r->conf.fmuc_node) != 0))
    {
        /* a new node to join, or none: the old one hears we are gone */
        c.fmuc_node = fmuc_node[0] != '\0' ? sw_strdup(fmuc_node) : NULL;
        if (r->conf.fmuc_node != NULL) {
            mod_muc_fmuc_restarted(r);
            mod_muc_fmuc_forget(r);
        }
    } else {
        c.fmuc_node = r->conf.fmuc_node ? sw_strdup(r->conf.fmuc_node)
                                        : NULL;
    }
    if (protect == 0 || (secret != NULL && secret[0] == '\0')) {
        c.password = NULL;
    } else {
        c.password = sw_strdup(secret ? secret : c.password);
    }
    free(r->conf.name);
    free(r->conf.desc);
    free(r->conf.password);
    free(r->conf.fmuc_node);
    r->conf = c;
    return NULL;
}

/* §10.2.1: occupants learn that the configuration changed. */
static void
mod_muc_config_changed(const mod_muc_room_t *r)
{
    sw_pool_t *pool = sw_pool_new(512);
    sw_xml_t  *m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_t  *x;

    sw_xml_set_attr(m, "from", r->jid);
    sw_xml_set_attr(m, "type", "groupchat");
    x = sw_xml_add(m, MOD_MUC_NS_USER, "x");
    sw_xml_set_attr(sw_xml_add(x, NULL, "status"), "code", "104");
    mod_muc_broadcast(r, m);
    sw_pool_free(pool);
}

/* §10.9: everyone leaves with the <destroy/> the owner sent (or an empty
 * one), and the room goes. */
static void
mod_muc_room_kill(mod_muc_room_t *r, const sw_xml_t *destroy)
{
    static const int self[] = { 110, 0 };
    sw_pool_t       *pool = sw_pool_new(512);
    sw_xml_t        *d = destroy ? sw_xml_copy(pool, destroy)
                                 : sw_xml_new(pool, MOD_MUC_NS_USER,
                                              "destroy");

    d->ns = MOD_MUC_NS_USER;
    r->conf.persistent = false;     /* the last to leave takes it along */
    mod_muc_fmuc_detach(r);
    if (r->occs == NULL) {
        mod_muc_room_destroy(r);
        sw_pool_free(pool);
        return;
    }
    while (mod_muc_leave(r, r->occs, NULL, self, d)) {
        /* until the last (local or not) takes the room along */
    }
    sw_pool_free(pool);
}

static int
mod_muc_owner_iq(mod_muc_room_t *r, sw_stanza_t *st)
{
    const sw_xml_t *q = st->payload;
    const sw_xml_t *x = sw_xml_child(q, MOD_MUC_NS_DATA, "x");
    const sw_xml_t *destroy = sw_xml_child(q, NULL, "destroy");
    const char     *type = x ? sw_xml_attr(x, "type") : NULL;
    const char     *err;
    sw_stanza_t    *res;
    bool            was_locked = r->locked;

    if (mod_muc_aff(r, st->from->bare) != MOD_MUC_OWNER) {
        mod_muc_error(st, "forbidden");                 /* §10.1.? */
        return SW_OK;
    }
    if (strcmp(st->type, "get") == 0) {
        res = sw_stanza_iq_result(st);
        mod_muc_config_form(r, sw_xml_add(res->xml, MOD_MUC_NS_OWNER,
                                          "query"));
        sw_iq_reply(res);
        return SW_OK;
    }
    if (destroy != NULL) {                              /* §10.9 */
        sw_iq_reply(sw_stanza_iq_result(st));
        if (r->occs == NULL) {
            mod_muc_room_destroy(r);
        } else {
            mod_muc_room_kill(r, destroy);
        }
        return SW_OK;
    }
    if (x == NULL || type == NULL) {
        mod_muc_error(st, "bad-request");
        return SW_OK;
    }
    if (strcmp(type, "cancel") == 0) {
        sw_iq_reply(sw_stanza_iq_result(st));
        if (was_locked) {                       /* §10.1.3: no room then */
            if (r->occs == NULL) {
                mod_muc_room_destroy(r);
            } else {
                mod_muc_room_kill(r, NULL);
            }
        }
        return SW_OK;
    }
    if (strcmp(type, "submit") != 0) {
        mod_muc_error(st, "bad-request");
        return SW_OK;
    }
    if ((err = mod_muc_config_submit(r, x)) != NULL) {
        mod_muc_error(st, err);
        return SW_OK;
    }
    r->locked = false;
    mod_muc_room_save(r);
    sw_iq_reply(sw_stanza_iq_result(st));
    if (r->conf.fmuc_node != NULL && !r->fmuc_joined) {
        mod_muc_fmuc_rejoin(r);     /* XEP-0289: the node joins now */
    }
    if (!was_locked) {
        mod_muc_config_changed(r);
    }
    if (r->occs == NULL && !r->conf.persistent) {
        mod_muc_room_destroy(r);
    }
    return SW_OK;
}

/* ------------------------------------------------------------- disco --- */

static void
mod_muc_feature(sw_xml_t *q, const char *var)
{
    sw_xml_set_attr(sw_xml_add(q, NULL, "feature"), "var", var);
}

/* §6.4: what the room is. */
static void
mod_muc_room_info(const mod_muc_room_t *r, sw_stanza_t *st)
{
    sw_stanza_t *res = sw_stanza_iq_result(st);
    sw_xml_t    *q = sw_xml_add(res->xml, MOD_MUC_NS_INFO, "query");
    sw_xml_t    *id = sw_xml_add(q, NULL, "identity");
    sw_xml_t    *x;
    char         num[32];

    sw_xml_set_attr(id, "category", "conference");
    sw_xml_set_attr(id, "type", "text");
    sw_xml_set_attr(id, "name", r->conf.name[0] ? r->conf.name : r->node);
    mod_muc_feature(q, MOD_MUC_NS);
    mod_muc_feature(q, r->conf.public ? "muc_public" : "muc_hidden");
    mod_muc_feature(q, r->conf.persistent ? "muc_persistent"
                                          : "muc_temporary");
    mod_muc_feature(q, r->conf.members_only ? "muc_membersonly"
                                            : "muc_open");
    mod_muc_feature(q, r->conf.moderated ? "muc_moderated"
                                         : "muc_unmoderated");
    mod_muc_feature(q, r->conf.whois_anyone ? "muc_nonanonymous"
                                            : "muc_semianonymous");
    mod_muc_feature(q, r->conf.password ? "muc_passwordprotected"
                                        : "muc_unsecured");
    mod_muc_feature(q, MOD_MUC_NS_SID);
    mod_muc_feature(q, MOD_MUC_NS_OID);
    mod_muc_feature(q, MOD_MUC_NS_PING);
    mod_muc_feature(q, "urn:xmpp:mam:2");
    x = sw_xml_add(q, MOD_MUC_NS_DATA, "x");
    sw_xml_set_attr(x, "type", "result");
    mod_muc_field(x, "FORM_TYPE", "hidden", NULL,
                  "http://jabber.org/protocol/muc#roominfo");
    mod_muc_field(x, "muc#roominfo_description", "text-single", NULL,
                  r->conf.desc);
    snprintf(num, sizeof(num), "%zu", r->n_occs);
    mod_muc_field(x, "muc#roominfo_occupants", "text-single", NULL, num);
    mod_muc_field(x, "muc#roominfo_subject", "text-single", NULL,
                  r->subject ? r->subject : "");
    mod_muc_field(x, "muc#roomconfig_changesubject", "boolean", NULL,
                  r->conf.change_subject ? "1" : "0");
    sw_iq_reply(res);
}

int
mod_muc_room_iq(mod_muc_room_t *r, sw_stanza_t *st)
{
    const char    *ns = st->payload && st->payload->ns ? st->payload->ns : "";
    mod_muc_occ_t *o;

    if (st->payload == NULL) {
        mod_muc_error(st, "bad-request");
        return SW_OK;
    }
    if (st->to->resource != NULL) {
        /* XEP-0410: a client checks it is still joined */
        o = mod_muc_occ_by_jid(r, st->from->full);
        if (strcmp(ns, MOD_MUC_NS_PING) == 0 && o != NULL
            && strcmp(o->nick, st->to->resource) == 0)
        {
            sw_iq_reply(sw_stanza_iq_result(st));
        } else if (o == NULL) {
            mod_muc_error(st, "not-acceptable");
        } else {
            mod_muc_occ_t *to = mod_muc_occ_by_nick(r, st->to->resource);

            if (to == NULL) {
                mod_muc_error(st, "item-not-found");
            } else {
                mod_muc_fwd_request(r, o, to, st);    /* §17.4 */
            }
        }
        return SW_OK;
    }
    /* §10.1: a locked room is its owner's alone */
    if (r->locked && mod_muc_aff(r, st->from->bare) != MOD_MUC_OWNER) {
        mod_muc_error(st, "item-not-found");
        return SW_OK;
    }
    if (strcmp(ns, MOD_MUC_NS_INFO) == 0 && strcmp(st->type, "get") == 0) {
        if (sw_xml_attr(st->payload, "node") != NULL) {
            mod_muc_error(st, "item-not-found");
        } else {
            mod_muc_room_info(r, st);
        }
    } else if (strcmp(ns, MOD_MUC_NS_ITEMS) == 0
               && strcmp(st->type, "get") == 0)
    {
        /* §6.5: the occupants are not listed (semi-anonymous rooms) */
        sw_stanza_t *res = sw_stanza_iq_result(st);

        sw_xml_add(res->xml, MOD_MUC_NS_ITEMS, "query");
        sw_iq_reply(res);
    } else if (strcmp(ns, MOD_MUC_NS_OWNER) == 0) {
        return mod_muc_owner_iq(r, st);
    } else if (strcmp(ns, MOD_MUC_NS_PING) == 0) {
        sw_iq_reply(sw_stanza_iq_result(st));
    } else if (strcmp(ns, MOD_MUC_NS_ADMIN) == 0) {
        return mod_muc_admin_iq(r, st);
    } else if (strcmp(ns, "urn:xmpp:mam:2") == 0) {
        return mod_muc_mam_iq(r, st);
    } else {
        mod_muc_error(st, "service-unavailable");
    }
    return SW_OK;
}
