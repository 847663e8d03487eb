/* sw_deflate: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
