/*
 * Presence folding: a built-in filter on each link's outbound chain.
 *
 * A presence (available or unavailable, no other type) from one full JID
 * to another supersedes the one still waiting in the queue from the same
 * sender to the same address: that one is taken out, and the new one
 * goes to the end of the queue, so the order between the two entities
 * holds (RFC 6120 §10.1) and the peer gets the latest state, once.  Only
 * stanzas not yet written are folded: one on the wire may be delivered.
 * peer_fold_presence chooses when: "full" (the default) only when the
 * queue is at a bound, so a full queue still takes state changes,
 * "always" on every newer presence (a slow link sends only the latest),
 * "never".  The filter runs after every other (lowest priority): a
 * policy that drops a presence never costs the one waiting.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <skywave/sw_filter.h>
#include <skywave/sw_link.h>
#include <skywave/sw_log.h>

#include "sw_link_int.h"

#define SW_LINK_FOLD_PRIORITY  (INT_MIN / 2)
/* "full" folds a little before the byte bounds bite: the new presence's
 * own size is not known before it is serialized. */
#define SW_LINK_FOLD_SLACK     4096

typedef struct {
    const sw_stanza_t *st;
    uint64_t           found;
} sw_link_fold_find_t;

static bool
sw_link_fold_match(const sw_link_queued_t *q, void *ud)
{
    sw_link_fold_find_t *f = ud;

    if (q->state && q->from != NULL && q->to != NULL
        && strcmp(q->from, f->st->from->full) == 0
        && strcmp(q->to, f->st->to->full) == 0)
    {
        f->found = q->seq;
        return false;
    }
    return true;
}

static sw_verdict_e
sw_link_fold_filter(sw_stanza_t **stp, void *ctx, void *ud,
                    const char **cond)
{
    sw_link_t           *l = ctx;
    sw_link_fold_find_t  f = { *stp, 0 };

    if (l->conf.fold_presence == SW_LINK_FOLD_NEVER
        || !sw_link_is_state(f.st) || f.st->from == NULL || f.st->to == NULL)
    {
        return SW_PASS;
    }
    if (l->conf.fold_presence == SW_LINK_FOLD_FULL
        && !sw_link_queue_full(l, f.st, SW_LINK_FOLD_SLACK))
    {
        return SW_PASS;
    }
    sw_link_queue_each(l, sw_link_fold_match, &f);
    if (f.found != 0 && sw_link_queue_remove(l, f.found) == SW_OK) {
        l->st.folded++;
        sw_log_debug("link %s: presence %llu from %s folded into a newer "
                     "one", l->name, (unsigned long long) f.found,
                     f.st->from->full);
    }
    return SW_PASS;
}

void
sw_link_fold_install(sw_link_t *l)
{
    sw_chain_add(l->out_chain, &sw_link_owner, "fold_presence",
                 SW_LINK_FOLD_PRIORITY, sw_link_fold_filter, NULL);
}
