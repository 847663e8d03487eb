/* Private to the core library (not installed). */
#ifndef SW_CORE_INT_H
#define SW_CORE_INT_H

#include <skywave/sw_hook.h>

/* A hook not in the global registry (filter chains build on these). */
sw_hook_t *sw_hook_new_private(const char *name);
void sw_hook_free_private(sw_hook_t *h);
const char *sw_hook_name(const sw_hook_t *h);

/* sw_session_send handed a stanza to a session (sw_link.c tracks which
 * of a peer's messages reached clients before their count committed). */
void sw_link_handed_to_session(void);

#endif
