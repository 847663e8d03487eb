/*
 * Test-only module: requires testdep, declares options of several types
 * (some allowed per host) and hooks "route/local" to take messages, so
 * tests drive the module API for real.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

typedef struct {
    const char  *greeting;
    int64_t      count;
    bool         enabled;
    double       interval;
} mod_testmod_conf_t;

typedef struct {
    sw_module_ctx_t *mc;
    int              delivered;
} mod_testmod_state_t;

static const sw_option_t mod_testmod_options[] = {
    { "testmod_greeting", SW_OPT_STRING,
      offsetof(mod_testmod_conf_t, greeting),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, SW_OPT_RELOADABLE, 0, 0, "hello",
      NULL, "what the module says" },
    { "testmod_count", SW_OPT_INT, offsetof(mod_testmod_conf_t, count),
      SW_SCOPE_GLOBAL, 0, 1, 10, "3", NULL, "a bounded integer" },
    { "testmod_enabled", SW_OPT_BOOL, offsetof(mod_testmod_conf_t, enabled),
      SW_SCOPE_GLOBAL | SW_SCOPE_HOST, 0, 0, 0, "true", NULL, "a flag" },
    { "testmod_interval", SW_OPT_DURATION,
      offsetof(mod_testmod_conf_t, interval), SW_SCOPE_GLOBAL, 0,
      100, 3600000, "30s", NULL, "a duration" },
    SW_OPTION_END
};

static const char *const mod_testmod_requires[] = { "testdep", NULL };

/* Takes messages for a local host whose conf has testmod_enabled. */
static int
mod_testmod_route(void *data, void *ud)
{
    sw_route_event_t    *ev = data;
    mod_testmod_state_t *st = ud;
    mod_testmod_conf_t  *conf = sw_module_conf(st->mc, ev->host->name);

    if (!conf->enabled || ev->stanza->kind != SW_STANZA_MESSAGE) {
        return SW_DECLINED;
    }
    st->delivered++;
    return SW_OK;
}

static int
mod_testmod_load(sw_module_ctx_t *mc)
{
    mod_testmod_state_t *st;

    /* The loader must have loaded our requirement first. */
    if (sw_service_get("testdep", 1) == NULL) {
        sw_log_error("testmod: service testdep missing at load");
        return SW_ERROR;
    }
    st = sw_calloc(1, sizeof(*st));
    st->mc = mc;
    mc->data = st;
    sw_hook_declare("testmod/ping", "test-only event");
    if (sw_service_provide(&mc->owner, "testmod", 1, st) != SW_OK) {
        return SW_ERROR;
    }
    return sw_hook_add(&mc->owner, "route/local", 0, mod_testmod_route, st);
}

static int
mod_testmod_check(sw_module_ctx_t *mc)
{
    mod_testmod_conf_t *conf = mc->conf;

    if (strcmp(conf->greeting, "forbidden") == 0) {
        sw_log_error("testmod: testmod_greeting may not be \"forbidden\"");
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_testmod_stop(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
    free(mc->data);
    mc->data = NULL;
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "testmod",
    .help = "test-only: exercises options, hooks, services, requires",
    .requires = mod_testmod_requires,
    .options = mod_testmod_options,
    .conf_size = sizeof(mod_testmod_conf_t),
    .load = mod_testmod_load,
    .check = mod_testmod_check,
    .stop = mod_testmod_stop,
};
