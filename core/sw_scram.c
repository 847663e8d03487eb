/* sw_scram: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
