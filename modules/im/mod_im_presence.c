/*
 * mod_im: presence (RFC 6121 §3, §4).  Outbound presence from a local
 * client is taken on the "preroute" chain: broadcast (§4.2, §4.4, §4.5),
 * directed presence (§4.6) and subscription management as the user
 * (Appendix A.2).  Inbound presence for a local account arrives on
 * "route/local": subscription handling as the contact (Appendix A.3),
 * probes (§4.3.2) and delivery (§8.5).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mod_im.h"

static bool
mod_im_is(const char *type, const char *want)
{
    return type != NULL && strcmp(type, want) == 0;
}

static bool
mod_im_is_subscription(const char *type)
{
    return mod_im_is(type, "subscribe") || mod_im_is(type, "subscribed")
           || mod_im_is(type, "unsubscribe")
           || mod_im_is(type, "unsubscribed");
}

static sw_jid_t *
mod_im_bare(sw_pool_t *pool, const sw_jid_t *j)
{
    return sw_jid_make(pool, j->node, j->domain, NULL);
}

/* RFC 6121 §4.7.2.3: -128..127, 0 when absent. */
static int
mod_im_priority(const sw_stanza_t *st)
{
    const char *t = sw_xml_child_text(st->xml, NULL, "priority");
    long        v;

    if (t == NULL) {
        return 0;
    }
    v = strtol(t, NULL, 10);
    return v < -128 ? -128 : v > 127 ? 127 : (int) v;
}

static bool
mod_im_has_from(sw_sub_e sub)
{
    return sub == SW_SUB_FROM || sub == SW_SUB_BOTH;
}

static bool
mod_im_has_to(sw_sub_e sub)
{
    return sub == SW_SUB_TO || sub == SW_SUB_BOTH;
}

/*
 * A subscription gains (on) or loses one direction (RFC 6121 Appendix A:
 * the same state changes, whether the user or the contact acts).  dir
 * is SW_SUB_TO (the user sees the contact) or SW_SUB_FROM.
 */
static sw_sub_e
mod_im_sub_set(sw_sub_e sub, sw_sub_e dir, bool on)
{
    bool to = mod_im_has_to(sub), from = mod_im_has_from(sub);

    if (dir == SW_SUB_TO) {
        to = on;
    } else {
        from = on;
    }
    return to && from ? SW_SUB_BOTH : to ? SW_SUB_TO
           : from ? SW_SUB_FROM : SW_SUB_NONE;
}

static void
mod_im_route_new(mod_im_t *im, const char *type, const char *from,
                 const char *to, const char *id)
{
    sw_stanza_t *st = mod_im_presence_new(type, from, to);

    if (st == NULL) {
        return;
    }
    if (id != NULL) {
        sw_xml_set_attr(st->xml, "id", id);
        st->id = sw_xml_attr(st->xml, "id");
    }
    mod_im_route(im, st);
}

/* Sends st, readdressed to 'to', to every available resource of user. */
static void
mod_im_to_resources(const sw_jid_t *user, sw_stanza_t *st,
                    const sw_jid_t *from, const sw_session_t *except)
{
    sw_session_t *r;
    sw_stanza_t  *c;

    c = mod_im_copy_to(st, user, from);
    for (r = sw_sessions_of(user->bare); r != NULL; r = r->next_resource) {
        if (r->available && r != except) {
            mod_im_send(r, c);
        }
    }
    sw_stanza_unref(c);
}

/* ------------------------------------------------------- directed --- */

static bool
mod_im_directed_remove(mod_im_t *im, sw_session_t *s, const char *jid)
{
    mod_im_sess_t      *is = mod_im_sess(im, s);
    mod_im_directed_t **pp;

    for (pp = &is->directed; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->jid, jid) == 0) {
            mod_im_directed_t *d = *pp;

            *pp = d->next;
            free(d);
            is->n_directed--;
            return true;
        }
    }
    return false;
}

static void
mod_im_directed_add(mod_im_t *im, sw_session_t *s, const char *jid)
{
    mod_im_sess_t     *is = mod_im_sess(im, s);
    mod_im_directed_t *d;

    for (d = is->directed; d != NULL; d = d->next) {
        if (strcmp(d->jid, jid) == 0) {
            return;
        }
    }
    if (is->n_directed >= MOD_IM_DIRECTED_MAX) {
        /* still sent; only its end will not be sent for the client */
        sw_log_rl_warn(&im->rl_directed, "im: %s has directed presence to "
                       "%d entities; %s not tracked", s->jid->full,
                       MOD_IM_DIRECTED_MAX, jid);
        return;
    }
    d = sw_alloc(sizeof(*d) + strlen(jid) + 1);
    strcpy(d->jid, jid);
    d->next = is->directed;
    is->directed = d;
    is->n_directed++;
}

/* RFC 6121 §4.6.2: directed presence reaches one entity only. */
static void
mod_im_directed(mod_im_t *im, sw_session_t *s, sw_stanza_t *st)
{
    sw_roster_item_t  item;
    sw_pool_t        *pool;
    sw_jid_t         *user;
    bool              exists;

    mod_im_route(im, sw_stanza_ref(st));
    if (mod_im_is(st->type, "unavailable")) {
        mod_im_directed_remove(im, s, st->to->full);
        return;
    }
    if (strcmp(st->to->bare, s->jid->bare) == 0) {
        return;
    }
    /* A subscribed contact learns of unavailability by broadcast; anyone
     * else must get it from the directed list (§4.6.3). */
    pool = sw_pool_new(512);
    user = mod_im_bare(pool, s->jid);
    if (!s->available
        || mod_im_roster_get_item(im, user, st->to->bare, pool, &item,
                                  &exists) != SW_OK
        || !exists || !mod_im_has_from(item.sub))
    {
        mod_im_directed_add(im, s, st->to->full);
    }
    sw_pool_free(pool);
}

/* ------------------------------------------------------ broadcast --- */

/*
 * RFC 6121 §4.2.2, §4.4.2, §4.5.2: st (no 'to') goes to every contact
 * with a subscription from the user; initial presence also probes the
 * contacts the user is subscribed to (§4.2.2, §4.3.1).  On initial
 * presence, *pending gets the items with a pending inbound request.
 */
static void
mod_im_broadcast(mod_im_t *im, sw_session_t *s, sw_stanza_t *st,
                 bool initial)
{
    sw_roster_item_t *items;
    sw_stanza_t      *c;
    sw_host_t        *h;
    sw_pool_t        *pool = sw_pool_new(1024);
    sw_jid_t         *user, *cj;
    uint64_t          ver;
    size_t            n = 0, i;

    user = mod_im_bare(pool, s->jid);
    if (im->st->roster_get(im->st, user->domain, user->node, pool, &items,
                           &n, &ver) != SW_OK)
    {
        n = 0;
    }
    for (i = 0; i < n; i++) {
        cj = sw_jid_new(pool, items[i].jid);
        if (cj == NULL) {
            continue;
        }
        if (mod_im_has_from(items[i].sub)) {
            c = mod_im_copy_to(st, cj, NULL);
            mod_im_route(im, c);
        }
        if (initial && mod_im_has_to(items[i].sub)) {
            /* A local contact answers straight to the new resource; a
             * remote one gets the bare JID (§4.3.1). */
            h = sw_host_find(cj->domain);
            mod_im_route_new(im, "probe",
                             h != NULL && strcmp(h->kind, "host") == 0
                             ? s->jid->full : user->bare,
                             cj->bare, NULL);
        }
        if (initial && items[i].pending_in) {
            /* §3.1.3: a request not yet answered is delivered again */
            c = mod_im_presence_new("subscribe", cj->bare, user->bare);
            if (c != NULL) {
                mod_im_send(s, c);
                sw_stanza_unref(c);
            }
        }
    }
    sw_pool_free(pool);
}

static void
mod_im_available(mod_im_t *im, sw_session_t *s, sw_stanza_t *st)
{
    sw_session_t *r;
    sw_stanza_t  *c;
    sw_pool_t    *pool;
    bool          initial = !s->available;
    int           old_priority = s->priority;

    s->available = true;
    s->priority = mod_im_priority(st);
    if (s->presence != NULL) {
        sw_stanza_unref(s->presence);
    }
    s->presence = sw_stanza_ref(st);

    mod_im_broadcast(im, s, st, initial);
    /* §4.2.2: to all the user's available resources, this one too */
    pool = sw_pool_new(256);
    mod_im_to_resources(mod_im_bare(pool, s->jid), st, NULL, NULL);
    sw_pool_free(pool);
    if (initial) {
        /* ... and the other resources' presence to the new one */
        for (r = sw_sessions_of(s->jid->bare); r != NULL;
             r = r->next_resource)
        {
            if (r != s && r->available && r->presence != NULL) {
                c = mod_im_copy_to(r->presence, s->jid, NULL);
                mod_im_send(s, c);
                sw_stanza_unref(c);
            }
        }
    }
    /* RFC 6121 §8.5.2.2.1, XEP-0160 §4: a non-negative priority makes
     * the resource eligible for stored messages */
    if (s->priority >= 0 && (initial || old_priority < 0)) {
        mod_im_offline_deliver(im, s);
    }
}

/* RFC 6121 §4.5.2, §4.6.3: unavailable to contacts, own resources and
 * everyone the session sent directed presence to. */
static void
mod_im_unavailable(mod_im_t *im, sw_session_t *s, sw_stanza_t *st)
{
    mod_im_sess_t     *is = mod_im_sess(im, s);
    mod_im_directed_t *d;
    sw_stanza_t       *c;
    sw_jid_t          *to;
    sw_pool_t         *pool = sw_pool_new(256);

    if (s->available) {
        s->available = false;
        mod_im_broadcast(im, s, st, false);
        mod_im_to_resources(mod_im_bare(pool, s->jid), st, NULL, s);
    }
    while ((d = is->directed) != NULL) {
        to = sw_jid_new(pool, d->jid);
        if (to != NULL) {
            c = mod_im_copy_to(st, to, NULL);
            mod_im_route(im, c);
        }
        is->directed = d->next;
        free(d);
    }
    is->n_directed = 0;
    if (s->presence != NULL) {
        sw_stanza_unref(s->presence);
        s->presence = NULL;
    }
    sw_pool_free(pool);
}

void
mod_im_presence_closing(mod_im_t *im, sw_session_t *s)
{
    mod_im_sess_t *is = mod_im_sess(im, s);
    sw_stanza_t   *st;

    if (!s->available && is->directed == NULL) {
        return;
    }
    /* §4.5.2: the server sends unavailable on the client's behalf */
    st = mod_im_presence_new("unavailable", s->jid->full, NULL);
    if (st != NULL) {
        mod_im_unavailable(im, s, st);
        sw_stanza_unref(st);
    }
    s->available = false;
}

/* ------------------------------------------------- subscriptions --- */

static void
mod_im_share_presence(mod_im_t *im, const sw_jid_t *user,
                      const sw_jid_t *contact, bool available)
{
    sw_session_t *r;

    for (r = sw_sessions_of(user->bare); r != NULL; r = r->next_resource) {
        if (!r->available) {
            continue;
        }
        if (available && r->presence != NULL) {
            mod_im_route(im, mod_im_copy_to(r->presence, contact, NULL));
        } else if (!available) {
            mod_im_route_new(im, "unavailable", r->jid->full, contact->bare,
                             NULL);
        }
    }
}

/*
 * The user sends a subscription stanza (RFC 6121 Appendix A.2, tables
 * 2-5).  orig is what the client sent (NULL when the roster removal of
 * §2.5.2 sends it: then only the contact is told).
 */
void
mod_im_subscription_out(mod_im_t *im, const sw_jid_t *user,
                        const char *type, const char *contact,
                        sw_stanza_t *orig)
{
    sw_roster_item_t  item;
    sw_pool_t        *pool = sw_pool_new(512);
    sw_jid_t         *cj;
    bool              exists, vis, changed = false, route = false;
    bool              share = false, unshare = false;

    cj = sw_jid_new(pool, contact);
    if (cj == NULL) {
        goto done;
    }
    if (orig == NULL) {
        route = true;
        unshare = mod_im_is(type, "unsubscribed");
        goto send;
    }
    if (mod_im_roster_get_item(im, user, contact, pool, &item, &exists)
        != SW_OK)
    {
        goto done;
    }
    vis = exists && mod_im_roster_visible(&item);

    if (mod_im_is(type, "subscribe")) {                     /* table 2 */
        route = true;
        if (!item.ask
            && (item.sub == SW_SUB_NONE || item.sub == SW_SUB_FROM))
        {
            item.ask = true;
            changed = true;
        }
    } else if (mod_im_is(type, "unsubscribe")) {            /* table 3 */
        route = true;
        if (item.ask || mod_im_has_to(item.sub)) {
            item.ask = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_TO, false);
            changed = true;
        }
    } else if (mod_im_is(type, "subscribed")) {             /* table 4 */
        if (item.pending_in) {
            item.pending_in = false;
            item.approved = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_FROM, true);
            changed = route = share = true;
        } else if (!mod_im_has_from(item.sub) && !item.approved) {
            item.approved = true;                           /* §3.4 */
            changed = true;
        }
    } else {                                                /* table 5 */
        if (item.pending_in || mod_im_has_from(item.sub)) {
            item.pending_in = false;
            item.approved = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_FROM, false);
            changed = route = unshare = true;
        } else if (item.approved) {
            item.approved = false;                          /* §3.4 */
            changed = true;
        }
    }
    if (changed) {
        mod_im_roster_store(im, user, &item, vis, true);
    }

send:
    if (route) {
        /* §3.1.2: stamped with the user's bare JID, to the contact's */
        mod_im_route(im, orig != NULL
                         ? mod_im_copy_to(orig, cj, user)
                         : mod_im_presence_new(type, user->bare, cj->bare));
    }
    if (share) {
        /* §3.1.5: the new subscriber gets the user's current presence */
        mod_im_share_presence(im, user, cj, true);
    }
    if (unshare) {
        /* §3.2.1: and a former one learns the user is gone */
        mod_im_share_presence(im, user, cj, false);
    }

done:
    sw_pool_free(pool);
}

/* A contact's subscription stanza for a local user (Appendix A.3,
 * tables 6-9). */
static void
mod_im_subscription_in(mod_im_t *im, sw_stanza_t *st)
{
    sw_roster_item_t  item;
    sw_pool_t        *pool = sw_pool_new(512);
    sw_jid_t         *user, *cj;
    const char       *type = st->type, *reply = NULL;
    bool              exists, vis, changed = false, deliver = false;
    bool              share = false, quiet = false;

    user = mod_im_bare(pool, st->to);
    cj = st->from->node != NULL ? mod_im_bare(pool, st->from)
                                : sw_jid_make(pool, NULL, st->from->domain,
                                              NULL);
    if (user == NULL || cj == NULL) {
        goto done;
    }
    if (!mod_im_user_exists(im, user)) {
        /* §3.1.3: no such account: decline the request */
        if (mod_im_is(type, "subscribe")) {
            mod_im_route_new(im, "unsubscribed", user->bare, cj->bare, NULL);
        }
        goto done;
    }
    if (mod_im_roster_get_item(im, user, cj->bare, pool, &item, &exists)
        != SW_OK)
    {
        goto done;
    }
    vis = exists && mod_im_roster_visible(&item);

    if (mod_im_is(type, "subscribe")) {                     /* table 6 */
        if (mod_im_has_from(item.sub)) {
            reply = "subscribed";
        } else if (item.approved) {
            /* §3.4: pre-approved: answered without asking the user */
            item.approved = false;
            item.pending_in = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_FROM, true);
            changed = share = true;
            reply = "subscribed";
        } else if (!item.pending_in) {
            /*
             * §3.1.3: the request is delivered; the contact's roster
             * shows nothing of a pending inbound request, so nothing in
             * it changed and no roster push is due (a client that takes
             * every push for a state change would be out of step).
             */
            item.pending_in = true;
            changed = deliver = quiet = true;
        }
    } else if (mod_im_is(type, "unsubscribe")) {            /* table 7 */
        if (item.pending_in || mod_im_has_from(item.sub)) {
            item.pending_in = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_FROM, false);
            changed = deliver = true;
            reply = "unsubscribed";
        }
    } else if (mod_im_is(type, "subscribed")) {             /* table 8 */
        if (item.ask) {
            item.ask = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_TO, true);
            changed = deliver = true;
        }
    } else {                                                /* table 9 */
        if (item.ask || mod_im_has_to(item.sub)) {
            item.ask = false;
            item.sub = mod_im_sub_set(item.sub, SW_SUB_TO, false);
            changed = deliver = true;
        }
    }
    if (changed) {
        mod_im_roster_store(im, user, &item, vis, !quiet);
    }
    if (deliver) {
        /* to available resources; an undelivered subscribe stays
         * pending and is delivered at the next login */
        mod_im_to_resources(user, st, cj, NULL);
    }
    if (reply != NULL) {
        mod_im_route_new(im, reply, user->bare, cj->bare, NULL);
    }
    if (share) {
        mod_im_share_presence(im, user, cj, true);
    }

done:
    sw_pool_free(pool);
}

/* RFC 6121 §4.3.2: a probe for a local user's presence. */
static void
mod_im_probe(mod_im_t *im, sw_stanza_t *st)
{
    sw_roster_item_t  item;
    sw_session_t     *r;
    sw_pool_t        *pool = sw_pool_new(512);
    sw_jid_t         *user;
    bool              exists;
    size_t            n = 0;

    user = mod_im_bare(pool, st->to);
    if (strcmp(user->bare, st->from->bare) != 0) {
        if (!mod_im_user_exists(im, user)
            || mod_im_roster_get_item(im, user, st->from->bare, pool,
                                      &item, &exists) != SW_OK
            || !exists || !mod_im_has_from(item.sub))
        {
            /* not authorized: no presence leak, from the bare JID */
            mod_im_route_new(im, "unsubscribed", user->bare, st->from->bare,
                             st->id);
            goto done;
        }
    }
    if (st->to->resource != NULL) {
        /* only about that resource, and only that it is there */
        r = sw_session_find(st->to);
        mod_im_route_new(im, r != NULL && r->available ? NULL
                                                       : "unavailable",
                         st->to->full, st->from->full, st->id);
        goto done;
    }
    for (r = sw_sessions_of(user->bare); r != NULL; r = r->next_resource) {
        if (r->available && r->presence != NULL) {
            mod_im_route(im, mod_im_copy_to(r->presence, st->from, NULL));
            n++;
        }
    }
    if (n == 0) {
        mod_im_route_new(im, "unavailable", user->bare, st->from->full,
                         st->id);
    }

done:
    sw_pool_free(pool);
}

/* Presence addressed to a local account (RFC 6121 §8.5). */
int
mod_im_presence_in(mod_im_t *im, sw_stanza_t *st)
{
    sw_session_t *s;
    sw_pool_t    *pool;

    if (st->from == NULL) {
        return SW_OK;
    }
    if (mod_im_is_subscription(st->type)) {
        /* §3.1.3 and §8.5.3.2.2: to a full JID counts as the bare JID */
        mod_im_subscription_in(im, st);
        return SW_OK;
    }
    if (mod_im_is(st->type, "probe")) {
        mod_im_probe(im, st);
        return SW_OK;
    }
    if (st->type != NULL && !mod_im_is(st->type, "unavailable")
        && !mod_im_is(st->type, "error"))
    {
        return SW_OK;
    }
    if (st->to->resource != NULL) {
        /* §8.5.3.1; no such resource: silently ignored (§8.5.3.2.2) */
        s = sw_session_find(st->to);
        if (s != NULL) {
            mod_im_send(s, st);
        }
        return SW_OK;
    }
    /* §8.5.2.1.2: all available resources; none or no account: ignored
     * (§8.5.2.2.2, §8.5.1) */
    pool = sw_pool_new(256);
    mod_im_to_resources(mod_im_bare(pool, st->to), st, NULL, NULL);
    sw_pool_free(pool);
    return SW_OK;
}

/* ------------------------------------------------------- outbound --- */

sw_verdict_e
mod_im_presence_out(sw_stanza_t **stp, void *ctx, void *ud,
                    const char **cond)
{
    mod_im_t          *im = ud;
    const sw_origin_t *origin = ctx;
    sw_stanza_t       *st = *stp;
    sw_session_t      *s;
    sw_jid_t          *user;

    /* a client's own presence only: the server's, and what peers send,
     * pass (c2s stamped 'from' with the session's full JID) */
    if (origin == NULL || origin->kind != SW_ORIGIN_SESSION
        || st->kind != SW_STANZA_PRESENCE || st->from == NULL
        || st->from->resource == NULL)
    {
        return SW_PASS;
    }
    s = origin->session;
    if (st->type == NULL || mod_im_is(st->type, "unavailable")) {
        if (st->to != NULL) {
            mod_im_directed(im, s, st);
        } else if (st->type == NULL) {
            mod_im_available(im, s, st);
        } else {
            mod_im_unavailable(im, s, st);
        }
    } else if (mod_im_is_subscription(st->type)) {
        /* §3.1.2: to a bare JID, from the user's bare JID; one to the
         * user's own account would change nothing */
        if (st->to != NULL && strcmp(st->to->bare, st->from->bare) != 0) {
            user = mod_im_bare(st->pool, st->from);
            mod_im_subscription_out(im, user, st->type, st->to->bare, st);
        }
    } else if (mod_im_is(st->type, "error")) {
        if (st->to != NULL) {
            mod_im_route(im, sw_stanza_ref(st));
        }
    } else if (!mod_im_is(st->type, "probe")) {
        /* RFC 6120 §8.3.3.1; probes are the server's (§4.3) and dropped */
        *cond = "bad-request";
        return SW_BOUNCE;
    }
    sw_stanza_unref(st);
    *stp = NULL;
    return SW_TAKEN;
}
