/* Test-only module built with a wrong ABI number: must be refused. */
#include "config.h"

#include <stdlib.h>

#include <skywave/skywave.h>

static int
mod_badabi_load(sw_module_ctx_t *mc)
{
    /* Never reached: the loader refuses before calling anything. */
    abort();
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI + 1,
    .signature = SW_MODULE_SIGNATURE,
    .name = "badabi",
    .load = mod_badabi_load,
};
