/*
 * Filter policies: Lua modules returning a table of functions named
 * after filter chains ("outbound", "inbound" per link; "preroute",
 * "deliver" for the server's own chains).  Each function gets borrowed
 * handles to the stanza and, on a link's chains, the link; it returns
 * "pass" (or nothing), "drop", or "bounce" with an RFC 6120 §8.3.3
 * condition.  doc/policies.md describes the stanza API.
 *
 * Each policy has its own lua_State: a memory cap, an instruction budget
 * per call, text chunks only, no io, os, debug, load, require, pcall.  A
 * call that fails (a Lua error, the budget, the memory cap, a verdict
 * that is not one) gets the policy's on_error verdict (its table's
 * on_error field: "pass" by default), logged at most once a minute.
 */
#ifndef SKYWAVE_SW_POLICY_H
#define SKYWAVE_SW_POLICY_H

#include <skywave/sw_core.h>
#include <skywave/sw_filter.h>
#include <skywave/sw_link.h>
#include <skywave/sw_stanza.h>

typedef struct sw_policy_s sw_policy_t;

typedef struct sw_policy_limits_s {
    size_t    memory;           /* bytes the state may hold; 0: 4M */
    unsigned  instructions;     /* per call (and for loading); 0: 1000000 */
} sw_policy_limits_t;

/*
 * Loads the policy in file path (text only).  NULL on error, with a
 * message naming the file and line in err.  Checks the returned table:
 * a function or a rule table for each chain it names, nothing it does
 * not know.
 */
sw_policy_t *sw_policy_load(const char *path, const sw_policy_limits_t *lim,
                            char *err, size_t errlen);
/* The same from text; name is what messages call it. */
sw_policy_t *sw_policy_load_string(const char *name, const char *text,
                                   size_t len, const sw_policy_limits_t *lim,
                                   char *err, size_t errlen);
sw_policy_t *sw_policy_ref(sw_policy_t *p);
void sw_policy_unref(sw_policy_t *p);

/* policy.name, or the file's name without its directory. */
const char *sw_policy_name(const sw_policy_t *p);
const char *sw_policy_path(const sw_policy_t *p);
/* Whether the policy has a function for chain. */
bool sw_policy_has(const sw_policy_t *p, const char *chain);
/* Bytes its state holds now. */
size_t sw_policy_memory(const sw_policy_t *p);

/*
 * Runs the policy's function for chain over *stp (a filter's contract:
 * the stanza may be replaced through sw_stanza_writable).  link is the
 * link whose chain runs, or NULL.  A chain the policy has no function
 * for passes.  On SW_BOUNCE *cond is the condition.
 */
sw_verdict_e sw_policy_run(sw_policy_t *p, const char *chain,
                           sw_stanza_t **stp, sw_link_t *link,
                           const char **cond);

/*
 * Folding, shared by the policies' st:strip/st:keep and mod_filter's C
 * filters (so both do byte for byte the same).  A selector: name (NULL:
 * any) in ns (NULL: the stanza's own, jabber:client or jabber:server);
 * any_ns: in any namespace.
 */
typedef struct sw_policy_sel_s {
    const char *name;
    const char *ns;
    bool        any_ns;
} sw_policy_sel_t;

bool sw_policy_sel_match(const sw_policy_sel_t *s, const sw_xml_t *stanza,
                         const sw_xml_t *child);
/* Removes the child elements that match a selector (keep false) or that
 * match none (keep true: the whitespace between children goes too);
 * makes *stp writable first.  Returns how many elements went.  The
 * caller never folds an IQ request (RFC 6120 §8.2.3). */
size_t sw_policy_fold(sw_stanza_t **stp, const sw_policy_sel_t *sels,
                      size_t n, bool keep);

/* Calls that failed so far (errors, budget, memory): for tests and stats. */
uint64_t sw_policy_failures(const sw_policy_t *p);

/* A filter (sw_filter_pt) running policy ud on the chain it is added to
 * under the name chain_name; ctx is the link on per-link chains. */
typedef struct sw_policy_filter_s {
    sw_policy_t *policy;
    const char  *chain;         /* "outbound", "inbound", ... */
    bool         link_ctx;      /* ctx is an sw_link_t */
} sw_policy_filter_t;

sw_verdict_e sw_policy_filter(sw_stanza_t **stp, void *ctx, void *ud,
                              const char **cond);

#endif
