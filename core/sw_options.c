/* sw_options: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
