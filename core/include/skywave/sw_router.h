/*
 * The router decides where a stanza goes: a local host (VirtualHost or
 * Component, each served by a module), or a remote domain (the peer link
 * layer or standard s2s claims it through the "route/remote" event).
 *
 * Events fired (data is sw_route_event_t):
 *   "route/local"   stanza addressed to a local host; the module serving
 *                   that host handles it (c2s session manager, MUC).
 *   "route/remote"  stanza for a non-local domain; a link that serves the
 *                   domain takes it.  Unhandled: bounced
 *                   <remote-server-not-found/> (RFC 6120 §8.3.3.15).
 */
#ifndef SKYWAVE_SW_ROUTER_H
#define SKYWAVE_SW_ROUTER_H

#include <skywave/sw_core.h>
#include <skywave/sw_stanza.h>

typedef struct sw_host_s sw_host_t;

struct sw_host_s {
    const char *name;       /* the domain */
    const char *kind;       /* "host" (VirtualHost) or the component module */
    void       *data;       /* owner module's per-host state */
};

/*
 * Where a stanza entered the server.  Filters on the global chains get it
 * as their ctx; route events carry it.
 */
typedef struct sw_session_s sw_session_t;
typedef struct sw_link_s    sw_link_t;

typedef enum sw_origin_kind_e {
    SW_ORIGIN_INTERNAL = 0,     /* the server's own: a module, a bounce */
    SW_ORIGIN_SESSION,          /* a client's session */
    SW_ORIGIN_LINK,             /* a peer link */
} sw_origin_kind_e;

typedef struct sw_origin_s {
    sw_origin_kind_e  kind;
    sw_session_t     *session;  /* SW_ORIGIN_SESSION */
    sw_link_t        *link;     /* SW_ORIGIN_LINK */
} sw_origin_t;

typedef struct sw_route_event_s {
    sw_stanza_t       *stanza;  /* borrowed; a handler that keeps it
                                   takes a ref */
    sw_host_t         *host;    /* the local host, or NULL for remote */
    const char        *domain;  /* destination domain */
    const sw_origin_t *origin;  /* never NULL */
} sw_route_event_t;

/* Registers a local domain (VirtualHost or Component).  Returns it. */
sw_host_t *sw_host_add(const char *name, const char *kind);
sw_host_t *sw_host_find(const char *domain);
void sw_host_each(void (*fn)(sw_host_t *h, void *ud), void *ud);

/*
 * Routes st (takes the reference), which entered at origin (NULL: the
 * server's own).  The global chains, each with the origin as ctx:
 *
 *   "inbound"         a stanza that entered from a client session or a
 *                     peer link (not the server's own)
 *   "preroute"        every stanza
 *   "deliver_remote"  a stanza for a remote domain, before "route/remote"
 *
 * ("deliver" runs per session, in sw_session_send.)  Then "route/local"
 * or "route/remote" fires.  A stanza nobody takes is bounced with the
 * fitting error (service-unavailable for a local host,
 * remote-server-not-found for a remote one).  Returns SW_OK if delivered
 * or bounced, SW_DECLINED if dropped.
 */
int sw_route_from(sw_stanza_t *st, const sw_origin_t *origin);
/* sw_route_from(st, NULL): a stanza of the server's own. */
int sw_route(sw_stanza_t *st);
/* Answers st with an error (takes the reference); drops errors. */
void sw_route_bounce(sw_stanza_t *st, const char *condition, const char *text);


#endif
