/*
 * mod_im: the roster protocol (RFC 6121 §2): get with versioning (§2.6),
 * set (§2.3, §2.4), remove (§2.5) and pushes to interested resources
 * (§2.1.6).  Items live in storage; the storage hands out the version.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mod_im.h"

static const char *const mod_im_sub_names[] = { "none", "to", "from",
                                                "both" };

/*
 * RFC 6121 §3.1.3: an inbound request from someone not in the roster is
 * noted but MUST NOT create a roster item until approved.  Storage keeps
 * the note as an item with only pending_in set (and nothing the user
 * could have given it), which the roster protocol never shows.
 */
bool
mod_im_roster_visible(const sw_roster_item_t *item)
{
    return !(item->sub == SW_SUB_NONE && !item->ask && !item->approved
             && item->pending_in && item->name == NULL
             && (item->groups == NULL || item->groups[0] == NULL));
}

int
mod_im_roster_get_item(mod_im_t *im, const sw_jid_t *user,
                       const char *contact, sw_pool_t *pool,
                       sw_roster_item_t *item, bool *exists)
{
    int rc;

    memset(item, 0, sizeof(*item));
    rc = im->st->roster_get_item(im->st, user->domain, user->node, contact,
                                 pool, item);
    if (rc == SW_OK) {
        *exists = true;
        return SW_OK;
    }
    memset(item, 0, sizeof(*item));
    item->jid = sw_pool_strdup(pool, contact);
    *exists = false;
    return rc == SW_DECLINED ? SW_OK : SW_ERROR;
}

static void
mod_im_roster_item_xml(sw_xml_t *query, const sw_roster_item_t *item,
                       bool removed)
{
    sw_xml_t           *x = sw_xml_add(query, NULL, "item");
    const char *const  *g;

    sw_xml_set_attr(x, "jid", item->jid);
    if (removed) {
        sw_xml_set_attr(x, "subscription", "remove");
        return;
    }
    if (item->name != NULL) {
        sw_xml_set_attr(x, "name", item->name);
    }
    sw_xml_set_attr(x, "subscription", mod_im_sub_names[item->sub]);
    if (item->ask) {
        sw_xml_set_attr(x, "ask", "subscribe");
    }
    if (item->approved) {
        sw_xml_set_attr(x, "approved", "true");     /* §2.1.2.1 */
    }
    for (g = item->groups; g != NULL && *g != NULL; g++) {
        sw_xml_set_text(sw_xml_add(x, NULL, "group"), *g);
    }
}

/* RFC 6121 §2.1.6: a roster push to every interested resource. */
void
mod_im_roster_push(mod_im_t *im, const sw_jid_t *user,
                   const sw_roster_item_t *item, bool removed,
                   uint64_t version)
{
    sw_session_t *s;
    sw_stanza_t  *st;
    sw_pool_t    *pool;
    sw_xml_t     *iq, *q;
    char          buf[32];

    for (s = sw_sessions_of(user->bare); s != NULL; s = s->next_resource) {
        if (!s->interested) {
            continue;
        }
        pool = sw_pool_new(512);
        iq = sw_xml_new(pool, SW_NS_CLIENT, "iq");
        sw_xml_set_attr(iq, "type", "set");
        snprintf(buf, sizeof(buf), "push%" PRIu64, ++im->push_id);
        sw_xml_set_attr(iq, "id", buf);
        sw_xml_set_attr(iq, "to", s->jid->full);
        q = sw_xml_add(iq, MOD_IM_NS_ROSTER, "query");
        snprintf(buf, sizeof(buf), "%" PRIu64, version);
        sw_xml_set_attr(q, "ver", buf);
        mod_im_roster_item_xml(q, item, removed);
        st = sw_stanza_new(pool, iq, NULL);
        if (st == NULL) {
            sw_pool_free(pool);
            continue;
        }
        mod_im_send(s, st);
        sw_stanza_unref(st);
    }
}

/*
 * Stores item after a subscription change and, when push is set, pushes
 * it if the user can see it.  A note of an inbound request that is no
 * longer pending leaves nothing behind.
 */
int
mod_im_roster_store(mod_im_t *im, const sw_jid_t *user,
                    const sw_roster_item_t *item, bool was_visible, bool push)
{
    uint64_t ver = 0;
    bool     empty;

    empty = item->sub == SW_SUB_NONE && !item->ask && !item->pending_in
            && !item->approved;
    sw_link_batch_end();        /* a push must not promise a rollback */
    if (empty && !was_visible) {
        if (im->st->roster_remove(im->st, user->domain, user->node,
                                  item->jid, &ver) == SW_ERROR)
        {
            return SW_ERROR;
        }
        return SW_OK;
    }
    if (im->st->roster_set(im->st, user->domain, user->node, item, &ver)
        != SW_OK)
    {
        return SW_ERROR;
    }
    if (push && (was_visible || mod_im_roster_visible(item))) {
        mod_im_roster_push(im, user, item, false, ver);
    }
    return SW_OK;
}

static void
mod_im_roster_error(sw_stanza_t *iq, const char *cond, const char *text)
{
    sw_route_bounce(sw_stanza_ref(iq), cond, text);
}

/* RFC 6121 §2.2, §2.6.3 */
static void
mod_im_roster_get(mod_im_t *im, sw_stanza_t *iq, const sw_jid_t *user)
{
    sw_roster_item_t *items;
    sw_session_t     *s;
    sw_stanza_t      *r;
    sw_pool_t        *pool = sw_pool_new(1024);
    const char       *ver = sw_xml_attr(iq->payload, "ver");
    sw_xml_t         *q;
    uint64_t          version = 0;
    size_t            n = 0, i;
    char              cur[32];

    if (im->st->roster_get(im->st, user->domain, user->node, pool, &items,
                           &n, &version) == SW_ERROR)
    {
        sw_pool_free(pool);
        mod_im_roster_error(iq, "internal-server-error", NULL);
        return;
    }
    s = sw_session_find(iq->from);
    if (s != NULL) {
        s->interested = true;       /* §2.1.6: wants pushes from now on */
    }
    r = sw_stanza_iq_result(iq);
    snprintf(cur, sizeof(cur), "%" PRIu64, version);
    /* §2.6.3: the client's copy is current: an empty result */
    if (ver == NULL || strcmp(ver, cur) != 0) {
        q = sw_xml_add(r->xml, MOD_IM_NS_ROSTER, "query");
        if (ver != NULL) {
            sw_xml_set_attr(q, "ver", cur);
        }
        for (i = 0; i < n; i++) {
            if (mod_im_roster_visible(&items[i])) {
                mod_im_roster_item_xml(q, &items[i], false);
            }
        }
    }
    sw_pool_free(pool);
    sw_iq_reply(r);
}

/* RFC 6121 §2.5: removing an item cancels both subscriptions. */
static void
mod_im_roster_remove(mod_im_t *im, sw_stanza_t *iq, const sw_jid_t *user,
                     const char *contact)
{
    sw_roster_item_t  item;
    sw_pool_t        *pool = sw_pool_new(512);
    uint64_t          ver = 0;
    bool              exists;

    if (mod_im_roster_get_item(im, user, contact, pool, &item, &exists)
        != SW_OK)
    {
        mod_im_roster_error(iq, "internal-server-error", NULL);
        goto done;
    }
    if (!exists || !mod_im_roster_visible(&item)) {
        mod_im_roster_error(iq, "item-not-found", NULL);    /* §2.5.3 */
        goto done;
    }
    /* removed first, so the contact's answers find nothing to change */
    sw_link_batch_end();
    if (im->st->roster_remove(im->st, user->domain, user->node, contact,
                              &ver) == SW_ERROR)
    {
        mod_im_roster_error(iq, "internal-server-error", NULL);
        goto done;
    }
    mod_im_roster_push(im, user, &item, true, ver);
    sw_iq_reply(sw_stanza_iq_result(iq));
    if (item.sub == SW_SUB_TO || item.sub == SW_SUB_BOTH || item.ask) {
        mod_im_subscription_out(im, user, "unsubscribe", contact, NULL);
    }
    if (item.sub == SW_SUB_FROM || item.sub == SW_SUB_BOTH
        || item.pending_in)
    {
        mod_im_subscription_out(im, user, "unsubscribed", contact, NULL);
    }

done:
    sw_pool_free(pool);
}

/* RFC 6121 §2.3, §2.4: add or update name and groups. */
static void
mod_im_roster_set(mod_im_t *im, sw_stanza_t *iq, const sw_jid_t *user)
{
    mod_im_conf_t    *conf = mod_im_conf(im, user->domain);
    sw_roster_item_t  item, *items;
    sw_pool_t        *pool;
    sw_xml_t         *x, *g;
    sw_jid_t         *cj;
    const char       *name, *sub, *text;
    const char      **groups;
    uint64_t          ver = 0;
    size_t            n, i, j;
    bool              exists;

    x = sw_xml_child(iq->payload, MOD_IM_NS_ROSTER, "item");
    if (x == NULL || sw_xml_next_match(x, MOD_IM_NS_ROSTER, "item") != NULL)
    {
        mod_im_roster_error(iq, "bad-request", "exactly one item, please");
        return;
    }
    pool = sw_pool_new(1024);
    cj = sw_xml_attr(x, "jid") ? sw_jid_new(pool, sw_xml_attr(x, "jid"))
                               : NULL;
    if (cj == NULL || cj->resource != NULL) {
        mod_im_roster_error(iq, "bad-request", "the item needs a bare jid");
        goto done;
    }
    sub = sw_xml_attr(x, "subscription");
    if (sub != NULL && strcmp(sub, "remove") == 0) {
        mod_im_roster_remove(im, iq, user, cj->bare);
        goto done;
    }
    /* other 'subscription' and 'ask' values from a client are ignored
     * (§2.1.2.5, §2.3.2) */
    name = sw_xml_attr(x, "name");
    if (name != NULL && strlen(name) > (size_t) conf->name_max) {
        mod_im_roster_error(iq, "not-acceptable", "name too long");
        goto done;
    }
    n = 0;
    for (g = sw_xml_child(x, MOD_IM_NS_ROSTER, "group"); g != NULL;
         g = sw_xml_next_match(g, MOD_IM_NS_ROSTER, "group"))
    {
        n++;
    }
    groups = sw_pool_calloc(pool, (n + 1) * sizeof(*groups));
    i = 0;
    for (g = sw_xml_child(x, MOD_IM_NS_ROSTER, "group"); g != NULL;
         g = sw_xml_next_match(g, MOD_IM_NS_ROSTER, "group"))
    {
        text = sw_xml_text(g);
        if (*text == '\0' || strlen(text) > (size_t) conf->name_max) {
            mod_im_roster_error(iq, "not-acceptable",
                                *text ? "group name too long"
                                      : "empty group name");
            goto done;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(groups[j], text) == 0) {
                mod_im_roster_error(iq, "bad-request", "duplicate group");
                goto done;
            }
        }
        groups[i++] = text;
    }
    if (mod_im_roster_get_item(im, user, cj->bare, pool, &item, &exists)
        != SW_OK)
    {
        mod_im_roster_error(iq, "internal-server-error", NULL);
        goto done;
    }
    if (!exists) {
        if (im->st->roster_get(im->st, user->domain, user->node, pool,
                               &items, &n, &ver) == SW_OK
            && n >= (size_t) conf->roster_max)
        {
            mod_im_roster_error(iq, "not-allowed", "roster full");
            goto done;
        }
    }
    item.jid = cj->bare;
    item.name = name && *name ? name : NULL;
    item.groups = groups;
    sw_link_batch_end();        /* the result must not promise a rollback */
    if (im->st->roster_set(im->st, user->domain, user->node, &item, &ver)
        != SW_OK)
    {
        mod_im_roster_error(iq, "internal-server-error", NULL);
        goto done;
    }
    mod_im_roster_push(im, user, &item, false, ver);
    sw_iq_reply(sw_stanza_iq_result(iq));

done:
    sw_pool_free(pool);
}

int
mod_im_roster_iq(void *data, void *ud)
{
    sw_iq_event_t *ev = data;
    mod_im_t      *im = ud;
    sw_stanza_t   *iq = ev->stanza;
    sw_jid_t      *user;
    sw_pool_t     *pool;

    if (strcmp(ev->host->kind, "host") != 0) {
        return SW_DECLINED;
    }
    if (iq->from == NULL || iq->from->node == NULL
        || sw_session_find(iq->from) == NULL)
    {
        /* §2.3.3: only the account's own resources touch its roster */
        mod_im_roster_error(iq, "forbidden", NULL);
        return SW_OK;
    }
    if (iq->payload->name == NULL || strcmp(iq->payload->name, "query") != 0)
    {
        mod_im_roster_error(iq, "bad-request", NULL);
        return SW_OK;
    }
    pool = sw_pool_new(256);
    user = sw_jid_make(pool, iq->from->node, iq->from->domain, NULL);
    if (strcmp(iq->type, "get") == 0) {
        mod_im_roster_get(im, iq, user);
    } else {
        mod_im_roster_set(im, iq, user);
    }
    sw_pool_free(pool);
    return SW_OK;
}
