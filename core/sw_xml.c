/* sw_xml: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
