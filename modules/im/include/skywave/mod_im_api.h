/*
 * mod_im's events, for the modules that build on it: carbons (XEP-0280)
 * and, later, archiving.  Installed with the SDK; mod_im owns it, so the
 * core knows nothing of it.
 */
#ifndef SKYWAVE_MOD_IM_API_H
#define SKYWAVE_MOD_IM_API_H

#include <skywave/sw_session.h>
#include <skywave/sw_stanza.h>

/*
 * "im/message/delivered": a message for a local account was handed to
 * some of its sessions (RFC 6121 §8.5).  n is 0 when it went to offline
 * storage instead.  Handlers must not keep the array.
 */
#define SW_IM_EV_DELIVERED "im/message/delivered"

typedef struct sw_im_delivered_s {
    sw_stanza_t   *stanza;      /* borrowed */
    const char    *bare;        /* the account */
    sw_session_t **sessions;    /* the sessions that got it */
    size_t         n;
} sw_im_delivered_t;

#endif
