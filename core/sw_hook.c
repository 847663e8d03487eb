/* sw_hook: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
