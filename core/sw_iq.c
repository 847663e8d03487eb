/* IQ dispatch by payload namespace (see sw_iq.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

typedef struct sw_feature_s sw_feature_t;

struct sw_feature_s {
    sw_feature_t *next;
    char         *var;
    sw_owner_t   *owner;
    sw_cleanup_t *cleanup;
};

static const char *const sw_iq_scope_names[] = { "host", "self", "bare" };
static sw_feature_t      *sw_features;
static sw_owner_t         sw_iq_owner;
static bool               sw_iq_ready;

static void
sw_iq_event_name(char *buf, size_t n, sw_iq_scope_e scope, const char *ns)
{
    snprintf(buf, n, "iq/%s/%s", sw_iq_scope_names[scope], ns);
}

int
sw_iq_handle(sw_owner_t *owner, sw_iq_scope_e scope, const char *ns,
             sw_hook_pt fn, void *ud)
{
    char       name[512];
    sw_hook_t *h;

    sw_iq_event_name(name, sizeof(name), scope, ns);
    h = sw_hook_declare(name, NULL);
    return sw_hook_add_h(owner, h, 0, fn, ud);
}

void
sw_iq_reply(sw_stanza_t *reply)
{
    if (reply != NULL) {
        sw_route(reply);
    }
}

/* The core's route/local handler for IQ get/set (priority -100: modules
 * that want IQs first, e.g. a component, hook above it). */
static int
sw_iq_route(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sw_stanza_t      *st = ev->stanza;
    sw_iq_event_t     iq;
    sw_iq_scope_e     scope;
    sw_hook_t        *h;
    char              name[512];

    if (st->kind != SW_STANZA_IQ || st->type == NULL
        || (strcmp(st->type, "get") != 0 && strcmp(st->type, "set") != 0))
    {
        return SW_DECLINED;
    }
    if (st->to != NULL && st->to->resource != NULL) {
        return SW_DECLINED;     /* to a full JID: the session layer's */
    }
    /* RFC 6120 §8.2.3: a get/set has exactly one payload child */
    if (st->payload == NULL || sw_xml_count_children(st->xml) != 1) {
        sw_route_bounce(sw_stanza_ref(st), "bad-request", NULL);
        return SW_OK;
    }
    if (st->to == NULL || (st->from != NULL && st->to->node != NULL
                           && strcmp(st->to->bare, st->from->bare) == 0))
    {
        scope = SW_IQ_SELF;
    } else if (st->to->node == NULL) {
        scope = SW_IQ_HOST;
    } else {
        scope = SW_IQ_BARE;
    }
    iq.stanza = st;
    iq.host = ev->host;
    iq.ns = st->payload->ns ? st->payload->ns : "";
    sw_iq_event_name(name, sizeof(name), scope, iq.ns);
    h = sw_hook_find(name);
    if (h != NULL && sw_hook_fire(h, &iq) != SW_DECLINED) {
        return SW_OK;
    }
    /* RFC 6120 §8.4: nobody here understands the payload */
    sw_route_bounce(sw_stanza_ref(st), "service-unavailable", NULL);
    return SW_OK;
}

static void
sw_iq_remove_feature(void *data)
{
    sw_feature_t **pp;

    for (pp = &sw_features; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == data) {
            *pp = (*pp)->next;
            free(((sw_feature_t *) data)->var);
            free(data);
            return;
        }
    }
}

void
sw_iq_add_feature(sw_owner_t *owner, const char *var)
{
    sw_feature_t *f = sw_calloc(1, sizeof(*f));

    f->var = sw_strdup(var);
    f->owner = owner;
    f->next = sw_features;
    sw_features = f;
    if (owner != NULL) {
        f->cleanup = sw_owner_on_release(owner, sw_iq_remove_feature, f);
    }
}

void
sw_iq_each_feature(void (*fn)(const char *var, void *ud), void *ud)
{
    sw_feature_t *f;

    for (f = sw_features; f != NULL; f = f->next) {
        fn(f->var, ud);
    }
}

void
sw_iq_init(void)
{
    if (sw_iq_ready) {
        return;
    }
    sw_owner_init(&sw_iq_owner, "core iq");
    sw_hook_add(&sw_iq_owner, "route/local", -100, sw_iq_route, NULL);
    sw_iq_ready = true;
}

void
sw_iq_shutdown(void)
{
    sw_feature_t *f, *next;

    sw_owner_release(&sw_iq_owner);
    for (f = sw_features; f != NULL; f = next) {
        next = f->next;
        if (f->owner != NULL) {
            sw_owner_forget(f->owner, f->cleanup);
        }
        free(f->var);
        free(f);
    }
    sw_features = NULL;
    sw_iq_ready = false;
}
