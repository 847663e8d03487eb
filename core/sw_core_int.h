/* Private to the core library (not installed). */
#ifndef SW_CORE_INT_H
#define SW_CORE_INT_H

#include <skywave/sw_hook.h>
#include <skywave/sw_server.h>

/* A hook not in the global registry (filter chains build on these). */
sw_hook_t *sw_hook_new_private(const char *name);
void sw_hook_free_private(sw_hook_t *h);
const char *sw_hook_name(const sw_hook_t *h);

/* sw_session_send handed a stanza to a session (sw_link.c tracks which
 * of a peer's messages reached clients before their count committed). */
void sw_link_handed_to_session(void);

/* sw_context.c: the shared context, set by sw_server.c. */
sw_core_conf_t *sw_core_conf_rw(void);
void sw_context_set_config(sw_config_t *cfg);
uv_loop_t *sw_loop_if_made(void);       /* NULL before sw_loop() */
void sw_loop_forget(void);              /* after uv_loop_close */

#endif
