/* The registry of bound client sessions, by bare JID then resource. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/sw_hash.h>

#include "sw_core_int.h"

static sw_hash_t   *sw_sessions;        /* bare JID -> first resource */
static size_t       sw_n_sessions;
static const char  *sw_slot_owners[SW_SESSION_SLOTS];
static sw_chain_t  *sw_session_deliver;
static sw_owner_t   sw_session_owner;
static bool         sw_session_ready;

/*
 * The default for anything addressed to a bound full JID: hand it to that
 * session.  mod_im hooks above this for the RFC 6121 rules (bare JIDs,
 * unavailable resources, offline storage).
 */
static int
sw_session_route(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sw_session_t     *s;

    if (ev->stanza->to == NULL || ev->stanza->to->resource == NULL
        || (s = sw_session_find(ev->stanza->to)) == NULL)
    {
        return SW_DECLINED;
    }
    sw_session_send(s, ev->stanza);
    return SW_OK;
}

void
sw_session_init(void)
{
    if (sw_sessions == NULL) {
        sw_sessions = sw_hash_new(64);
    }
    sw_hook_declare("session/bound", "a client bound a resource "
                    "(RFC 6120 §7); data: sw_session_t");
    sw_hook_declare("session/closing", "a bound session is ending; "
                    "data: sw_session_t");
    sw_session_deliver = sw_chain_declare("deliver");
    if (!sw_session_ready) {
        sw_owner_init(&sw_session_owner, "core sessions");
        sw_hook_add(&sw_session_owner, "route/local", -50, sw_session_route,
                    NULL);
        sw_session_ready = true;
    }
}

void
sw_session_shutdown(void)
{
    sw_owner_release(&sw_session_owner);
    sw_session_ready = false;
    sw_hash_free(sw_sessions);
    sw_sessions = NULL;
    sw_n_sessions = 0;
    memset(sw_slot_owners, 0, sizeof(sw_slot_owners));
    sw_session_deliver = NULL;
}

int
sw_session_slot(const char *owner_name)
{
    int i;

    for (i = 0; i < SW_SESSION_SLOTS; i++) {
        if (sw_slot_owners[i] == NULL
            || strcmp(sw_slot_owners[i], owner_name) == 0)
        {
            sw_slot_owners[i] = owner_name;
            return i;
        }
    }
    sw_log_error("%s: no free session slot (%d in use)", owner_name,
                 SW_SESSION_SLOTS);
    return SW_ERROR;
}

sw_session_t *
sw_sessions_of(const char *bare)
{
    return sw_sessions ? sw_hash_get(sw_sessions, bare) : NULL;
}

sw_session_t *
sw_session_find(const sw_jid_t *full)
{
    sw_session_t *s;

    if (full->resource == NULL) {
        return NULL;
    }
    for (s = sw_sessions_of(full->bare); s != NULL; s = s->next_resource) {
        if (strcmp(s->jid->resource, full->resource) == 0) {
            return s;
        }
    }
    return NULL;
}

int
sw_session_register(sw_session_t *s, sw_session_t **old)
{
    sw_session_t *first;

    if (sw_sessions == NULL) {
        sw_session_init();
    }
    *old = sw_session_find(s->jid);
    if (*old != NULL) {
        return SW_DECLINED;
    }
    first = sw_hash_get(sw_sessions, s->jid->bare);
    s->next_resource = first;
    sw_hash_set(sw_sessions, s->jid->bare, s);
    sw_n_sessions++;
    sw_hook_fire_name("session/bound", s);
    return SW_OK;
}

void
sw_session_unregister(sw_session_t *s)
{
    sw_session_t **pp, *first;

    if (s->jid == NULL || sw_sessions == NULL) {
        return;
    }
    first = sw_hash_get(sw_sessions, s->jid->bare);
    for (pp = &first; *pp != NULL; pp = &(*pp)->next_resource) {
        if (*pp == s) {
            sw_hook_fire_name("session/closing", s);
            *pp = s->next_resource;
            s->next_resource = NULL;
            sw_hash_set(sw_sessions, s->jid->bare, first);
            sw_n_sessions--;
            return;
        }
    }
}

size_t
sw_session_count(void)
{
    return sw_n_sessions;
}

int
sw_session_send(sw_session_t *s, sw_stanza_t *st)
{
    const char *cond = NULL;
    int         rc;

    sw_stanza_ref(st);
    if (sw_session_deliver != NULL) {
        switch (sw_chain_run(sw_session_deliver, &st, s, &cond)) {
        case SW_PASS:
            break;
        case SW_BOUNCE:
            sw_route_bounce(st, cond, NULL);
            return SW_DECLINED;
        case SW_DROP:
            sw_stanza_unref(st);
            return SW_DECLINED;
        case SW_TAKEN:
            return SW_OK;
        }
    }
    rc = s->vt->send(s, st);
    if (rc == SW_OK) {
        sw_link_handed_to_session();
    }
    sw_stanza_unref(st);
    return rc;
}

typedef struct {
    void (*fn)(sw_session_t *s, void *ud);
    void  *ud;
} sw_session_each_t;

static void
sw_session_each_bare(const char *key, void *value, void *ud)
{
    sw_session_each_t *e = ud;
    sw_session_t      *s, *next;

    for (s = value; s != NULL; s = next) {
        next = s->next_resource;
        e->fn(s, e->ud);
    }
}

void
sw_session_each(void (*fn)(sw_session_t *s, void *ud), void *ud)
{
    sw_session_each_t e = { fn, ud };

    if (sw_sessions != NULL) {
        sw_hash_each(sw_sessions, sw_session_each_bare, &e);
    }
}
