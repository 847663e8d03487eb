/* Private to the core library (not installed). */
#ifndef SW_CORE_INT_H
#define SW_CORE_INT_H

#include <skywave/sw_hook.h>

/* A hook not in the global registry (filter chains build on these). */
sw_hook_t *sw_hook_new_private(const char *name);
void sw_hook_free_private(sw_hook_t *h);
const char *sw_hook_name(const sw_hook_t *h);

#endif
