/* Test-only module with a foreign build signature: must be refused. */
#include "config.h"

#include <stdlib.h>

#include <skywave/skywave.h>

static int
mod_badsig_load(sw_module_ctx_t *mc)
{
    abort();
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = "skywave/abi1/ptr4/long4",
    .name = "badsig",
    .load = mod_badsig_load,
};
