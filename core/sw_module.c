/* sw_module: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
