#include "config.h"
#include <skywave/skywave.h>
