/* sw_jid: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
