/*
 * mod_muc_admin: what moderators, admins and owners do to others
 * (XEP-0045 §8 roles by nick: kick, voice; §9 and §10.3-§10.8
 * affiliations by bare JID: ban, membership, moderator, admin and owner
 * status, and their lists) and mediated invitations (§7.8.2).
 *
 * A request changes everything it names or nothing: every item is
 * checked before the first is applied.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mod_muc.h"

#define MOD_MUC_MAX_AFFS 10000          /* affiliations per room */
#define MOD_MUC_INVITES_MAX 5           /* invitations per stanza */

typedef struct {
    mod_muc_occ_t *target;      /* a role change: the occupant */
    const char    *bare;        /* an affiliation change: whose */
    int            role;        /* -1: none asked */
    int            aff;         /* -2: none asked */
    const char    *reason;
} mod_muc_change_t;

static int
mod_muc_role_parse(const char *s)
{
    static const char *const names[] = {
        "none", "visitor", "participant", "moderator", NULL
    };
    int i;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

typedef struct {
    size_t owners;
} mod_muc_count_t;

static void
mod_muc_count_owner(const char *bare, void *v, void *ud)
{
    mod_muc_count_t *c = ud;

    (void) bare;
    if ((intptr_t) v - 2 == MOD_MUC_OWNER) {
        c->owners++;
    }
}

/* One <item/> of a set request, checked against what actor may do;
 * NULL when it may, else the error condition. */
static const char *
mod_muc_check(mod_muc_room_t *r, const mod_muc_occ_t *actor,
              mod_muc_aff_e actor_aff, const sw_xml_t *item, sw_pool_t *pool,
              mod_muc_change_t *c)
{
    const char    *nick = sw_xml_attr(item, "nick");
    const char    *jid = sw_xml_attr(item, "jid");
    const char    *role = sw_xml_attr(item, "role");
    const char    *aff = sw_xml_attr(item, "affiliation");
    mod_muc_aff_e  taff;

    memset(c, 0, sizeof(*c));
    c->role = -1;
    c->aff = -2;
    c->reason = sw_xml_child_text(item, NULL, "reason");
    if ((role == NULL) == (aff == NULL)) {
        return "bad-request";
    }
    if (role != NULL) {
        if ((c->role = mod_muc_role_parse(role)) < 0 || nick == NULL) {
            return "bad-request";
        }
        if (actor == NULL || actor->role != MOD_MUC_MODERATOR) {
            return "forbidden";
        }
        if ((c->target = mod_muc_occ_by_nick(r, nick)) == NULL) {
            return "item-not-found";
        }
        taff = mod_muc_aff(r, c->target->bare);
        if (c->role == MOD_MUC_MODERATOR
            || c->target->role == MOD_MUC_MODERATOR)
        {
            /* §9.6, §9.7: moderator status is the admins' to give */
            if (actor_aff < MOD_MUC_ADMIN) {
                return "forbidden";
            }
            if (c->role < MOD_MUC_MODERATOR && taff >= MOD_MUC_ADMIN) {
                return "not-allowed";
            }
        }
        if (c->role == MOD_MUC_ROLE_NONE && c->target == actor) {
            return "conflict";                          /* §8.2 */
        }
        /* §8.2, §8.4: never against a higher affiliation */
        if (c->role < MOD_MUC_PARTICIPANT
            && (taff > actor_aff || taff >= MOD_MUC_ADMIN))
        {
            return "not-allowed";
        }
        return NULL;
    }
    if ((c->aff = mod_muc_aff_parse(aff)) < MOD_MUC_OUTCAST) {
        return "bad-request";
    }
    if (jid != NULL) {
        sw_jid_t *j = sw_jid_new(pool, jid);

        if (j == NULL) {
            return "jid-malformed";
        }
        c->bare = j->bare;
    } else if (nick != NULL && mod_muc_occ_by_nick(r, nick) != NULL) {
        c->bare = mod_muc_occ_by_nick(r, nick)->bare;
    } else {
        return nick != NULL ? "item-not-found" : "bad-request";
    }
    if (actor_aff < MOD_MUC_ADMIN) {
        return "forbidden";
    }
    taff = mod_muc_aff(r, c->bare);
    if (taff == MOD_MUC_AFF_NONE && c->aff != MOD_MUC_AFF_NONE
        && sw_hash_count(r->affs) >= MOD_MUC_MAX_AFFS)
    {
        return "resource-constraint";   /* the lists are bounded too */
    }
    /* §9.1: an admin cannot touch an admin or an owner; §10.3-§10.7:
     * owner and admin status are the owners' */
    if (taff >= MOD_MUC_ADMIN && actor_aff < MOD_MUC_OWNER) {
        return "not-allowed";
    }
    if (c->aff >= MOD_MUC_ADMIN && actor_aff < MOD_MUC_OWNER) {
        return "forbidden";
    }
    if (taff == MOD_MUC_OWNER && c->aff != MOD_MUC_OWNER) {
        mod_muc_count_t n = { 0 };

        sw_hash_each(r->affs, mod_muc_count_owner, &n);
        if (n.owners <= 1) {
            return "conflict";          /* §10.6: the last owner stays */
        }
    }
    return NULL;
}

/* Applies one checked change; false when the room went with it. */
static bool
mod_muc_apply(mod_muc_room_t *r, const char *actor, mod_muc_change_t *c)
{
    static const int kicked[] = { 110, 307, 0 };
    static const int banned[] = { 110, 301, 0 };
    static const int unmember[] = { 110, 321, 0 };
    static const int self[] = { 110, 0 };
    mod_muc_pres_t   how;
    mod_muc_occ_t   *o;

    memset(&how, 0, sizeof(how));
    how.actor = actor;
    how.reason = c->reason;
    if (c->target != NULL) {
        if (c->role == MOD_MUC_ROLE_NONE) {                /* §8.2 */
            how.codes = kicked;
            return mod_muc_leave_how(r, c->target, NULL, &how);
        }
        c->target->role = (mod_muc_role_e) c->role;        /* §8.3-§8.5 */
        how.codes = self;
        mod_muc_presence_all(r, c->target, c->target->pres, &how);
        return true;
    }
    mod_muc_set_aff(r, c->bare, (mod_muc_aff_e) c->aff);
    /* each of that account's occupants (their JIDs first: a leave may
     * take others along, this node leaving a federation) */
    {
        char   *jids[16];
        size_t  n = 0, i;
        bool    alive = true;

        for (o = r->occs; o != NULL && n < 16; o = o->next) {
            if (strcmp(o->bare, c->bare) == 0) {
                jids[n++] = sw_strdup(o->jid);
            }
        }
        for (i = 0; i < n; i++) {
            if (alive && (o = mod_muc_occ_by_jid(r, jids[i])) != NULL) {
                if (c->aff == MOD_MUC_OUTCAST                   /* §9.1 */
                    || (r->conf.members_only
                        && c->aff < MOD_MUC_MEMBER))            /* §9.4 */
                {
                    how.codes = c->aff == MOD_MUC_OUTCAST ? banned
                                                          : unmember;
                    alive = mod_muc_leave_how(r, o, NULL, &how);
                } else {
                    o->role = mod_muc_role_for(r, (mod_muc_aff_e) c->aff);
                    how.codes = self;
                    mod_muc_presence_all(r, o, o->pres, &how);
                }
            }
            free(jids[i]);
        }
        return alive;
    }
}

/* §9.5, §8.5, §9.8, §10.5, §10.8: who has an affiliation or a role. */
typedef struct {
    sw_xml_t             *q;
    const mod_muc_room_t *r;
    int                   aff;
} mod_muc_list_t;

static void
mod_muc_list_aff(const char *bare, void *v, void *ud)
{
    mod_muc_list_t *l = ud;
    sw_xml_t       *item;

    if ((intptr_t) v - 2 != l->aff) {
        return;
    }
    item = sw_xml_add(l->q, NULL, "item");
    sw_xml_set_attr(item, "affiliation", mod_muc_aff_name(l->aff));
    sw_xml_set_attr(item, "jid", bare);
}

static void
mod_muc_admin_list(mod_muc_room_t *r, const mod_muc_occ_t *actor,
                   mod_muc_aff_e actor_aff, sw_stanza_t *st)
{
    const sw_xml_t *item = sw_xml_child(st->payload, NULL, "item");
    const char     *aff = item ? sw_xml_attr(item, "affiliation") : NULL;
    const char     *role = item ? sw_xml_attr(item, "role") : NULL;
    sw_stanza_t    *res;
    mod_muc_list_t  l;
    int             want;

    if (item == NULL || (aff == NULL) == (role == NULL)) {
        mod_muc_error(st, "bad-request");
        return;
    }
    if (aff != NULL) {
        want = mod_muc_aff_parse(aff);
        if (want < MOD_MUC_OUTCAST || want == MOD_MUC_AFF_NONE) {
            mod_muc_error(st, "bad-request");
            return;
        }
        if (actor_aff < MOD_MUC_ADMIN) {
            mod_muc_error(st, "forbidden");
            return;
        }
        res = sw_stanza_iq_result(st);
        l.q = sw_xml_add(res->xml, MOD_MUC_NS_ADMIN, "query");
        l.r = r;
        l.aff = want;
        sw_hash_each(r->affs, mod_muc_list_aff, &l);
        sw_iq_reply(res);
        return;
    }
    want = mod_muc_role_parse(role);
    if (want <= MOD_MUC_ROLE_NONE) {
        mod_muc_error(st, "bad-request");
        return;
    }
    if (actor == NULL || actor->role != MOD_MUC_MODERATOR) {
        mod_muc_error(st, "forbidden");
        return;
    }
    res = sw_stanza_iq_result(st);
    l.q = sw_xml_add(res->xml, MOD_MUC_NS_ADMIN, "query");
    {
        const mod_muc_occ_t *o;

        for (o = r->occs; o != NULL; o = o->next) {
            sw_xml_t *it;

            if ((int) o->role != want) {
                continue;
            }
            it = sw_xml_add(l.q, NULL, "item");
            sw_xml_set_attr(it, "affiliation",
                            mod_muc_aff_name(mod_muc_aff(r, o->bare)));
            sw_xml_set_attr(it, "jid", o->jid);
            sw_xml_set_attr(it, "nick", o->nick);
            sw_xml_set_attr(it, "role", mod_muc_role_name(o->role));
        }
    }
    sw_iq_reply(res);
}

int
mod_muc_admin_iq(mod_muc_room_t *r, sw_stanza_t *st)
{
    mod_muc_occ_t    *actor = mod_muc_occ_by_jid(r, st->from->full);
    mod_muc_aff_e     actor_aff = mod_muc_aff(r, st->from->bare);
    const sw_xml_t   *item;
    mod_muc_change_t  changes[32];
    size_t            n = 0, i;
    const char       *err = NULL;
    char             *actor_nick;

    if (strcmp(st->type, "get") == 0) {
        mod_muc_admin_list(r, actor, actor_aff, st);
        return SW_OK;
    }
    for (item = sw_xml_child(st->payload, NULL, "item"); item != NULL;
         item = sw_xml_next_match(item, NULL, "item"))
    {
        if (n == sizeof(changes) / sizeof(changes[0])) {
            err = "resource-constraint";
            break;
        }
        if ((err = mod_muc_check(r, actor, actor_aff, item, st->pool,
                                 &changes[n++])) != NULL)
        {
            break;
        }
    }
    if (err == NULL && n == 0) {
        err = "bad-request";
    }
    if (err != NULL) {
        mod_muc_error(st, err);
        return SW_OK;
    }
    sw_iq_reply(sw_stanza_iq_result(st));
    actor_nick = actor ? sw_strdup(actor->nick) : NULL;
    for (i = 0; i < n; i++) {
        /* a change may have removed an occupant a later item names */
        if (changes[i].target != NULL) {
            mod_muc_occ_t *o;

            for (o = r->occs; o != NULL && o != changes[i].target;
                 o = o->next) {
            }
            if (o == NULL) {
                continue;
            }
        }
        if (!mod_muc_apply(r, actor_nick, &changes[i])) {
            break;                      /* the room is gone */
        }
    }
    free(actor_nick);
    return SW_OK;
}

/* ------------------------------------------------------- invitations --- */

/* §7.8.2: an occupant invites through the room; §7.8.2 (decline): the
 * invitee's answer goes back to whoever invited. */
int
mod_muc_invite(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st)
{
    const sw_xml_t *x = sw_xml_child(st->xml, MOD_MUC_NS_USER, "x");
    const sw_xml_t *inv = sw_xml_child(x, NULL, "invite");
    const sw_xml_t *dec = sw_xml_child(x, NULL, "decline");
    const sw_xml_t *e = inv ? inv : dec;
    sw_jid_t       *to;
    size_t          n_sent = 0;

    if (e == NULL) {
        mod_muc_error(st, o ? "bad-request" : "not-acceptable");
        return SW_OK;
    }
    if (inv != NULL && o == NULL) {
        mod_muc_error(st, "not-acceptable");
        return SW_OK;
    }
    if (inv != NULL && r->conf.members_only
        && mod_muc_aff(r, o->bare) < MOD_MUC_ADMIN)
    {
        mod_muc_error(st, "forbidden");
        return SW_OK;
    }
    for (; e != NULL && n_sent < (inv ? MOD_MUC_INVITES_MAX : 1);
         e = sw_xml_next_match(e, NULL, e->name), n_sent++)
    {
        const char *reason = sw_xml_child_text(e, NULL, "reason");
        sw_pool_t  *pool;
        sw_xml_t   *m, *mx, *d;

        if (sw_xml_attr(e, "to") == NULL
            || (to = sw_jid_new(st->pool, sw_xml_attr(e, "to"))) == NULL)
        {
            mod_muc_error(st, "jid-malformed");
            return SW_OK;
        }
        if (inv != NULL && r->conf.members_only
            && mod_muc_aff(r, to->bare) == MOD_MUC_AFF_NONE
            && sw_hash_count(r->affs) < MOD_MUC_MAX_AFFS)
        {
            mod_muc_set_aff(r, to->bare, MOD_MUC_MEMBER);
        }
        pool = sw_pool_new(1024);
        m = sw_xml_new(pool, SW_NS_CLIENT, "message");
        sw_xml_set_attr(m, "from", r->jid);
        sw_xml_set_attr(m, "to", to->full);
        if (st->id != NULL) {
            sw_xml_set_attr(m, "id", st->id);
        }
        mx = sw_xml_add(m, MOD_MUC_NS_USER, "x");
        d = sw_xml_add(mx, NULL, inv ? "invite" : "decline");
        sw_xml_set_attr(d, "from", inv ? o->jid : st->from->bare);
        if (reason != NULL) {
            sw_xml_add_text(sw_xml_add(d, NULL, "reason"), reason,
                            strlen(reason));
        }
        if (inv != NULL && r->conf.password != NULL) {
            sw_xml_add_text(sw_xml_add(mx, NULL, "password"),
                            r->conf.password, strlen(r->conf.password));
        }
        mod_muc_send(pool, m);
    }
    return SW_OK;
}

/* ------------------------------------------------------------- voice --- */

#define MOD_MUC_NS_REQUEST "http://jabber.org/protocol/muc#request"
#define MOD_MUC_VOICE_GAP  60           /* one request a minute */

static const char *
mod_muc_form_value(const sw_xml_t *x, const char *var)
{
    const sw_xml_t *f;

    for (f = sw_xml_child(x, NULL, "field"); f != NULL;
         f = sw_xml_next_match(f, NULL, "field"))
    {
        const char *v = sw_xml_attr(f, "var");

        if (v != NULL && strcmp(v, var) == 0) {
            return sw_xml_child_text(f, NULL, "value");
        }
    }
    return NULL;
}

static void
mod_muc_voice_field(sw_xml_t *x, const char *var, const char *type,
                    const char *label, const char *value)
{
    sw_xml_t *f = sw_xml_add(x, NULL, "field");

    sw_xml_set_attr(f, "var", var);
    sw_xml_set_attr(f, "type", type);
    if (label != NULL) {
        sw_xml_set_attr(f, "label", label);
    }
    sw_xml_add_text(sw_xml_add(f, NULL, "value"), value, strlen(value));
}

int
mod_muc_voice(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st,
              const sw_xml_t *form)
{
    const char    *ft = mod_muc_form_value(form, "FORM_TYPE");
    const char    *allow = mod_muc_form_value(form, "muc#request_allow");
    const char    *type = sw_xml_attr(form, "type");
    mod_muc_occ_t *m;
    int64_t        now = (int64_t) time(NULL);

    if (ft == NULL || strcmp(ft, MOD_MUC_NS_REQUEST) != 0 || type == NULL
        || strcmp(type, "submit") != 0)
    {
        mod_muc_error(st, "bad-request");
        return SW_OK;
    }
    if (allow != NULL) {
        /* §8.6: a moderator's answer */
        const char    *nick = mod_muc_form_value(form, "muc#roomnick");
        mod_muc_occ_t *t = nick ? mod_muc_occ_by_nick(r, nick) : NULL;

        if (o->role != MOD_MUC_MODERATOR) {
            mod_muc_error(st, "forbidden");
            return SW_OK;
        }
        if (t != NULL && t->role == MOD_MUC_VISITOR
            && (strcmp(allow, "true") == 0 || strcmp(allow, "1") == 0))
        {
            static const int self[] = { 110, 0 };
            mod_muc_pres_t   how;

            memset(&how, 0, sizeof(how));
            how.codes = self;
            how.actor = o->nick;
            t->role = MOD_MUC_PARTICIPANT;
            mod_muc_presence_all(r, t, t->pres, &how);
        }
        return SW_OK;
    }
    /* §7.13: a visitor asks; each moderator here gets the form */
    if (o->role != MOD_MUC_VISITOR || now - o->voice_asked < MOD_MUC_VOICE_GAP)
    {
        return SW_OK;                   /* nothing to ask, or asked */
    }
    o->voice_asked = now;
    for (m = r->occs; m != NULL; m = m->next) {
        sw_pool_t *pool;
        sw_xml_t  *msg, *x;

        if (m->role != MOD_MUC_MODERATOR || m->node != NULL) {
            continue;
        }
        pool = sw_pool_new(1024);
        msg = sw_xml_new(pool, SW_NS_CLIENT, "message");
        sw_xml_set_attr(msg, "from", r->jid);
        sw_xml_set_attr(msg, "to", m->jid);
        x = sw_xml_add(msg, MOD_MUC_NS_DATA, "x");
        sw_xml_set_attr(x, "type", "form");
        sw_xml_add_text(sw_xml_add(x, NULL, "title"), "Voice request", 13);
        mod_muc_voice_field(x, "FORM_TYPE", "hidden", NULL,
                            MOD_MUC_NS_REQUEST);
        mod_muc_voice_field(x, "muc#role", "list-single", "Requested role",
                            "participant");
        mod_muc_voice_field(x, "muc#jid", "jid-single", "User ID", o->jid);
        mod_muc_voice_field(x, "muc#roomnick", "text-single",
                            "Room Nickname", o->nick);
        mod_muc_voice_field(x, "muc#request_allow", "boolean",
                            "Grant voice to this person?", "false");
        mod_muc_send(pool, msg);
    }
    return SW_OK;
}
