/*
 * IQ dispatch by payload namespace.  The core takes every IQ get/set
 * routed to a local host and fires one event by whom it addresses:
 *
 *   "iq/host/NS"  to the server domain itself (disco, ping, version)
 *   "iq/self/NS"  with no 'to', or to the sender's own bare JID (roster)
 *   "iq/bare/NS"  to another local account's bare JID (on its behalf)
 *
 * A handler returns SW_OK when it answered (or took) the IQ.  An IQ
 * nobody handles gets <service-unavailable/> (RFC 6120 §8.4), except one
 * to a full JID, which goes on to the session layer.
 */
#ifndef SKYWAVE_SW_IQ_H
#define SKYWAVE_SW_IQ_H

#include <skywave/sw_core.h>
#include <skywave/sw_router.h>
#include <skywave/sw_hook.h>
#include <skywave/sw_stanza.h>

typedef struct sw_iq_event_s {
    sw_stanza_t *stanza;    /* borrowed */
    sw_host_t   *host;
    const char  *ns;        /* payload namespace */
} sw_iq_event_t;

typedef enum sw_iq_scope_e {
    SW_IQ_HOST = 0,
    SW_IQ_SELF,
    SW_IQ_BARE,
} sw_iq_scope_e;

/* Registers fn for IQs of ns in scope (declares the event). */
int sw_iq_handle(sw_owner_t *owner, sw_iq_scope_e scope, const char *ns,
                 sw_hook_pt fn, void *ud);
/* Sends a reply built by the handler (takes the reference). */
void sw_iq_reply(sw_stanza_t *reply);
/* Features advertised in disco#info of the host (XEP-0030). */
void sw_iq_add_feature(sw_owner_t *owner, const char *var);
void sw_iq_each_feature(void (*fn)(const char *var, void *ud), void *ud);

#endif
