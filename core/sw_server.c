/* sw_server: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
