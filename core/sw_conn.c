/* sw_conn: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
