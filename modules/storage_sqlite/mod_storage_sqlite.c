/* mod_storage_sqlite: not written yet. */
#include "config.h"
#include <skywave/skywave.h>
