/*
 * Filter chains, built on private hooks: the hook machinery already keeps
 * handlers sorted by priority, tied to owners, and safe to change while
 * running.  A filter's PASS maps to SW_DECLINED (go on), anything else to
 * SW_OK (stop) with the verdict kept in the run state.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_filter.h>
#include <skywave/sw_log.h>

#include "sw_core_int.h"

typedef struct sw_filter_s sw_filter_t;

struct sw_filter_s {
    sw_filter_t   *next;        /* all filters of the chain, for freeing */
    char          *name;
    sw_filter_pt   fn;
    void          *ud;
};

struct sw_chain_s {
    sw_chain_t    *next;        /* declared chains */
    sw_hook_t     *hook;
    sw_filter_t   *filters;
    bool           declared;
};

typedef struct sw_chain_run_s {
    sw_stanza_t  **stp;
    void          *ctx;
    const char    *cond;
    sw_verdict_e   verdict;
    const char    *by;          /* the filter that decided */
} sw_chain_run_t;

static sw_chain_t *sw_chains;

sw_chain_t *
sw_chain_new(const char *name)
{
    sw_chain_t *c = sw_calloc(1, sizeof(*c));

    c->hook = sw_hook_new_private(name);
    return c;
}

void
sw_chain_free(sw_chain_t *c)
{
    sw_filter_t *f, *next;

    if (c == NULL) {
        return;
    }
    sw_hook_free_private(c->hook);
    for (f = c->filters; f != NULL; f = next) {
        next = f->next;
        free(f->name);
        free(f);
    }
    free(c);
}

sw_chain_t *
sw_chain_find(const char *name)
{
    sw_chain_t *c;

    for (c = sw_chains; c != NULL; c = c->next) {
        if (strcmp(sw_hook_name(c->hook), name) == 0) {
            return c;
        }
    }
    return NULL;
}

sw_chain_t *
sw_chain_declare(const char *name)
{
    sw_chain_t *c = sw_chain_find(name);

    if (c == NULL) {
        c = sw_chain_new(name);
        c->declared = true;
        c->next = sw_chains;
        sw_chains = c;
    }
    return c;
}

const char *
sw_chain_name(const sw_chain_t *c)
{
    return sw_hook_name(c->hook);
}

static int
sw_filter_call(void *data, void *ud)
{
    sw_chain_run_t *run = data;
    sw_filter_t    *f = ud;
    sw_verdict_e    v;

    v = f->fn(run->stp, run->ctx, f->ud, &run->cond);
    if (v == SW_PASS) {
        return SW_DECLINED;
    }
    run->verdict = v;
    run->by = f->name;
    return SW_OK;
}

int
sw_chain_add(sw_chain_t *c, sw_owner_t *owner, const char *filter_name,
             int priority, sw_filter_pt fn, void *ud)
{
    sw_filter_t *f = sw_calloc(1, sizeof(*f));

    f->name = sw_strdup(filter_name ? filter_name : "?");
    f->fn = fn;
    f->ud = ud;
    f->next = c->filters;
    c->filters = f;
    return sw_hook_add_h(owner, c->hook, priority, sw_filter_call, f);
}

size_t
sw_chain_count(const sw_chain_t *c)
{
    return sw_hook_count(c->hook);
}

sw_verdict_e
sw_chain_run(sw_chain_t *c, sw_stanza_t **stp, void *ctx, const char **cond)
{
    sw_chain_run_t run = { stp, ctx, NULL, SW_PASS, NULL };

    sw_hook_fire(c->hook, &run);
    if (run.verdict == SW_BOUNCE && run.cond == NULL) {
        run.cond = "undefined-condition";   /* RFC 6120 §8.3.3.21 */
    }
    if (run.verdict == SW_TAKEN) {
        *stp = NULL;
    }
    if (run.verdict != SW_PASS) {
        sw_log_debug("chain %s: filter %s: %s", sw_chain_name(c), run.by,
                     run.verdict == SW_DROP ? "drop"
                     : run.verdict == SW_BOUNCE ? "bounce" : "taken");
    }
    if (cond != NULL) {
        *cond = run.cond;
    }
    return run.verdict;
}

void
sw_chain_shutdown(void)
{
    sw_chain_t *c, *next;

    for (c = sw_chains; c != NULL; c = next) {
        next = c->next;
        sw_chain_free(c);
    }
    sw_chains = NULL;
}
