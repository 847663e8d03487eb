/* sw_stanza: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
