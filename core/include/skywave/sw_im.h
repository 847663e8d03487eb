/*
 * Events of the IM module (mod_im) that other modules build on: carbons
 * (XEP-0280) and, later, archiving.  The data structures live in the SDK
 * so modules never include each other's headers.
 */
#ifndef SKYWAVE_SW_IM_H
#define SKYWAVE_SW_IM_H

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

/*
 * "c2s/features": building the stream features a client sees after
 * authentication (data: sw_xml_t * of <stream:features/>), so modules
 * advertise what they add (roster versioning, pre-approval).
 */
#define SW_C2S_EV_FEATURES "c2s/features"

#endif
