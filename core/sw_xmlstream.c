/* sw_xmlstream: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
