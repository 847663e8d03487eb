/* Test-only module: provides the service "testdep", required by testmod. */
#include "config.h"

#include <stdlib.h>

#include <skywave/skywave.h>

typedef struct {
    unsigned version;
    int      loads;
} mod_testdep_api_t;

static int
mod_testdep_load(sw_module_ctx_t *mc)
{
    mod_testdep_api_t *api = sw_calloc(1, sizeof(*api));

    api->version = 1;
    api->loads = 1;
    mc->data = api;
    return sw_service_provide(&mc->owner, "testdep", 1, api);
}

static void
mod_testdep_stop(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
    free(mc->data);
    mc->data = NULL;
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "testdep",
    .help = "test-only: a dependency",
    .load = mod_testdep_load,
    .stop = mod_testdep_stop,
};
