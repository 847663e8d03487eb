/* sw_config: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
