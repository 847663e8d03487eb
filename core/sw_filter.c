/* sw_filter: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
