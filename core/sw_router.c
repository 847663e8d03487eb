/* The router: local host, or remote domain through whatever link claims it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_router.h>
#include <skywave/sw_filter.h>
#include <skywave/sw_hook.h>
#include <skywave/sw_log.h>

#include "sw_core_int.h"

typedef struct sw_host_entry_s sw_host_entry_t;

struct sw_host_entry_s {
    sw_host_entry_t *next;
    sw_host_t        host;
};

static sw_host_entry_t *sw_hosts;
static sw_hook_t       *sw_router_ev_local;
static sw_hook_t       *sw_router_ev_remote;
static sw_chain_t      *sw_router_inbound;
static sw_chain_t      *sw_router_preroute;
static sw_chain_t      *sw_router_deliver_remote;

void
sw_router_init(void)
{
    sw_router_ev_local = sw_hook_declare("route/local",
        "a stanza for a local host (VirtualHost or Component): the module "
        "serving that host delivers it");
    sw_router_ev_remote = sw_hook_declare("route/remote",
        "a stanza for a remote domain: a peer link or s2s that serves the "
        "domain takes it");
    sw_router_inbound = sw_chain_declare("inbound");
    sw_router_preroute = sw_chain_declare("preroute");
    sw_chain_declare("deliver");
    sw_router_deliver_remote = sw_chain_declare("deliver_remote");
}

void
sw_router_shutdown(void)
{
    sw_host_entry_t *h, *next;

    for (h = sw_hosts; h != NULL; h = next) {
        next = h->next;
        free((char *) h->host.name);
        free((char *) h->host.kind);
        free(h);
    }
    sw_hosts = NULL;
    sw_router_ev_local = NULL;
    sw_router_ev_remote = NULL;
    sw_router_inbound = NULL;
    sw_router_preroute = NULL;
    sw_router_deliver_remote = NULL;
}

sw_host_t *
sw_host_add(const char *name, const char *kind)
{
    sw_host_entry_t *h;

    if (sw_host_find(name) != NULL) {
        return NULL;
    }
    h = sw_calloc(1, sizeof(*h));
    h->host.name = sw_strdup(name);
    h->host.kind = sw_strdup(kind);
    h->next = sw_hosts;
    sw_hosts = h;
    return &h->host;
}

sw_host_t *
sw_host_find(const char *domain)
{
    sw_host_entry_t *h;

    for (h = sw_hosts; h != NULL; h = h->next) {
        if (strcmp(h->host.name, domain) == 0) {
            return &h->host;
        }
    }
    return NULL;
}

void
sw_host_each(void (*fn)(sw_host_t *h, void *ud), void *ud)
{
    sw_host_entry_t *h;

    for (h = sw_hosts; h != NULL; h = h->next) {
        fn(&h->host, ud);
    }
}

void
sw_route_bounce(sw_stanza_t *st, const char *condition, const char *text)
{
    sw_stanza_t *reply = NULL;

    /* No sender to tell, or an IQ response (RFC 6120 §8.2.3: results
     * and errors are never answered): drop. */
    if (st->from != NULL
        && !(st->kind == SW_STANZA_IQ && st->type != NULL
             && strcmp(st->type, "result") == 0))
    {
        reply = sw_stanza_error_reply(st, NULL, condition, text);
    }
    sw_log_debug("bounce %s %s -> %s: %s%s", sw_stanza_kind_name(st->kind),
                 st->from ? st->from->full : "?",
                 st->to ? st->to->full : "?", condition,
                 reply ? "" : " (not answered)");
    sw_stanza_unref(st);
    if (reply != NULL) {
        sw_route(reply);
    }
}

/*
 * Runs chain c over *stp.  true: the stanza goes on; false: it was dealt
 * with (dropped, bounced or taken), and *rc says how.
 */
static bool
sw_route_chain(sw_chain_t *c, sw_stanza_t **stp, const sw_origin_t *origin,
               int *rc)
{
    const char *cond = NULL;

    switch (sw_chain_run(c, stp, (void *) origin, &cond)) {
    case SW_DROP:
        sw_stanza_unref(*stp);
        *rc = SW_DECLINED;
        return false;
    case SW_BOUNCE:
        sw_route_bounce(*stp, cond, NULL);
        *rc = SW_OK;
        return false;
    case SW_TAKEN:
        *rc = SW_OK;
        return false;
    case SW_PASS:
        break;
    }
    return true;
}

int
sw_route_from(sw_stanza_t *st, const sw_origin_t *origin)
{
    static const sw_origin_t internal = { SW_ORIGIN_INTERNAL, NULL, NULL };
    sw_route_event_t  ev;
    int               rc;

    if (sw_router_preroute == NULL) {
        sw_router_init();
    }
    if (origin == NULL) {
        origin = &internal;
    }
    if (origin->kind != SW_ORIGIN_INTERNAL
        && !sw_route_chain(sw_router_inbound, &st, origin, &rc))
    {
        return rc;
    }
    if (!sw_route_chain(sw_router_preroute, &st, origin, &rc)) {
        return rc;
    }

    /* RFC 6120 §10.3: no 'to' means the sender's own server or account. */
    if (st->to != NULL) {
        ev.domain = st->to->domain;
    } else if (st->from != NULL) {
        ev.domain = st->from->domain;
    } else {
        sw_log_warn("router: dropped a stanza with neither 'to' nor 'from'");
        sw_stanza_unref(st);
        return SW_DECLINED;
    }
    ev.stanza = st;
    ev.origin = origin;
    ev.host = sw_host_find(ev.domain);
    if (ev.host != NULL) {
        rc = sw_hook_fire(sw_router_ev_local, &ev);
        if (rc == SW_DECLINED) {
            /* RFC 6120 §8.3.3.19 */
            sw_route_bounce(st, "service-unavailable", NULL);
            return SW_OK;
        }
    } else {
        if (!sw_route_chain(sw_router_deliver_remote, &st, origin, &rc)) {
            return rc;
        }
        /* a filter may have replaced it (sw_stanza_writable) */
        ev.stanza = st;
        ev.domain = st->to != NULL ? st->to->domain
                    : st->from != NULL ? st->from->domain : ev.domain;
        rc = sw_hook_fire(sw_router_ev_remote, &ev);
        if (rc == SW_DECLINED) {
            /* RFC 6120 §8.3.3.16 */
            sw_route_bounce(st, "remote-server-not-found", NULL);
            return SW_OK;
        }
    }
    sw_stanza_unref(st);
    return SW_OK;
}

int
sw_route(sw_stanza_t *st)
{
    return sw_route_from(st, NULL);
}
