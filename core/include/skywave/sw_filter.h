/*
 * Filter chains: fixed points where stanzas pass through filters in
 * priority order (higher first).  The core walks the chain, so no filter
 * can forget to call the next.  A filter that changes a stanza calls
 * sw_stanza_writable() first.
 *
 * Verdicts: PASS (go on), DROP (discard silently), BOUNCE (the core builds
 * the error reply with *cond, never answering an error with an error),
 * TAKEN (the filter now owns the stanza reference).
 */
#ifndef SKYWAVE_SW_FILTER_H
#define SKYWAVE_SW_FILTER_H

#include <skywave/sw_core.h>
#include <skywave/sw_stanza.h>

typedef enum sw_verdict_e {
    SW_PASS = 0,
    SW_DROP,
    SW_BOUNCE,
    SW_TAKEN,
} sw_verdict_e;

typedef struct sw_chain_s sw_chain_t;

/*
 * A filter.  *stp is the stanza (the filter may replace it via
 * sw_stanza_writable); ctx is what the chain's runner passes (a session,
 * a link); on SW_BOUNCE the filter sets *cond to an RFC 6120 §8.3.3
 * condition.
 */
typedef sw_verdict_e (*sw_filter_pt)(sw_stanza_t **stp, void *ctx, void *ud,
                                     const char **cond);

/* Global fixed points: "inbound", "preroute", "deliver", "deliver_remote". */
sw_chain_t *sw_chain_declare(const char *name);
sw_chain_t *sw_chain_find(const char *name);
/* A private chain (per link, per session); free with sw_chain_free. */
sw_chain_t *sw_chain_new(const char *name);
void sw_chain_free(sw_chain_t *c);
const char *sw_chain_name(const sw_chain_t *c);

int sw_chain_add(sw_chain_t *c, sw_owner_t *owner, const char *filter_name,
                 int priority, sw_filter_pt fn, void *ud);
size_t sw_chain_count(const sw_chain_t *c);

/*
 * Runs the chain over *stp.  On SW_DROP and SW_BOUNCE the stanza is still
 * the caller's (it decides what to do; sw_route_bounce helps); on SW_TAKEN
 * *stp was consumed and is set to NULL.
 */
sw_verdict_e sw_chain_run(sw_chain_t *c, sw_stanza_t **stp, void *ctx,
                          const char **cond);

#endif
