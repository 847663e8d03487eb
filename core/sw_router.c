/* sw_router: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
