/* sw_tls: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
