/*
 * Client sessions: the registry of bound resources, shared by every module
 * that delivers to local users (IM, carbons, MUC, stream management).
 * mod_c2s creates sessions; the registry is core so any module can find
 * them without linking to c2s.
 *
 * Events (data is sw_session_t *):
 *   "session/bound"     resource bound (RFC 6120 §7), registered here
 *   "session/closing"   about to be unregistered (send unavailable, etc.)
 */
#ifndef SKYWAVE_SW_SESSION_H
#define SKYWAVE_SW_SESSION_H

#include <skywave/sw_core.h>
#include <skywave/sw_jid.h>
#include <skywave/sw_stanza.h>

#define SW_SESSION_SLOTS 8

typedef struct sw_session_s    sw_session_t;
typedef struct sw_session_vt_s sw_session_vt_t;

struct sw_session_vt_s {
    /* Writes st (borrowed) to the client.  SW_OK or SW_ERROR. */
    int  (*send)(sw_session_t *s, sw_stanza_t *st);
    /* Ends the session with a stream error condition (NULL: plain close). */
    void (*close)(sw_session_t *s, const char *condition, const char *text);
};

struct sw_session_s {
    const sw_session_vt_t *vt;
    void                  *transport;   /* the owning module's connection */
    sw_pool_t             *pool;        /* lives as long as the session */
    sw_owner_t             owner;       /* registrations tied to it */
    const sw_jid_t        *jid;         /* full JID once bound, else NULL */
    const char            *host;        /* the VirtualHost */
    uint64_t               id;          /* unique, for logs */

    /* RFC 6121 state, kept by the IM module. */
    int                    priority;    /* of the last available presence */
    bool                   available;   /* sent initial presence */
    bool                   interested;  /* requested the roster (§2.1.6) */
    sw_stanza_t           *presence;    /* last broadcast presence (ref) */

    /* Per-module state: a module takes a slot with sw_session_slot(). */
    void                  *slots[SW_SESSION_SLOTS];
    sw_session_t          *next_resource;   /* same bare JID */
};

/* A slot index for a module's per-session state; SW_ERROR if none left. */
int sw_session_slot(const char *owner_name);

/* Registers a bound session.  If the full JID is taken, the old session
 * is returned in *old (the caller decides: RFC 6120 §7.7.2.2). */
int sw_session_register(sw_session_t *s, sw_session_t **old);
void sw_session_unregister(sw_session_t *s);
/* The session with this full JID, or NULL. */
sw_session_t *sw_session_find(const sw_jid_t *full);
/* All resources of a bare JID (linked by next_resource), or NULL. */
sw_session_t *sw_sessions_of(const char *bare);
size_t sw_session_count(void);
/* Runs the "deliver" chain then the session's send.  Borrows st. */
int sw_session_send(sw_session_t *s, sw_stanza_t *st);
void sw_session_each(void (*fn)(sw_session_t *s, void *ud), void *ud);

#endif
