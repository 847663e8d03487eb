/* Private to the core library (not installed). */
#ifndef SW_CORE_INT_H
#define SW_CORE_INT_H

#include <skywave/sw_hook.h>
#include <skywave/skywave.h>

/* A hook not in the global registry (filter chains build on these). */
sw_hook_t *sw_hook_new_private(const char *name);
void sw_hook_free_private(sw_hook_t *h);
const char *sw_hook_name(const sw_hook_t *h);

/* sw_session_send handed a stanza to a session (sw_link.c tracks which
 * of a peer's messages reached clients before their count committed). */
void sw_link_handed_to_session(void);

/* sw_config.c: the sandbox's libraries into the table at idx (the config
 * and the filter policies share them). */
struct lua_State;
void sw_lua_safe_libs(struct lua_State *L, int idx);

/* sw_context.c: the shared context, set by sw_server.c. */
sw_core_conf_t *sw_core_conf_rw(void);
void sw_context_set_config(sw_config_t *cfg);
uv_loop_t *sw_loop_if_made(void);       /* NULL before sw_loop() */
void sw_loop_forget(void);              /* after uv_loop_close */

/*
 * The core's life cycle: private to the core, skywaved, skywavectl and
 * the tests; modules and plugins never call these (the installed SDK
 * does not declare them).
 */

/* (sw_filter.h) */
void sw_chain_shutdown(void);

/* (sw_hook.h) */
/* Frees all hooks (process exit, tests). */
void sw_hook_shutdown(void);

/* (sw_iq.h) */
void sw_iq_init(void);
void sw_iq_shutdown(void);

/* (sw_link.h) */
/* Core life cycle (sw_server.c). */
extern const sw_option_t sw_peer_options[];
int sw_links_configure(sw_config_t *cfg);
/* Defaults that depend on other options of the Peer section. */
void sw_peer_conf_defaults(sw_peer_conf_t *c, sw_csection_t *sec);
int sw_links_start(void);
void sw_links_stop(void);
void sw_links_free(void);

/* (sw_module.h) */
/* Search path: colon-separated directories, tried before the default. */
void sw_module_set_path(const char *path);

/* (sw_module.h) */
/*
 * Loads names and everything they require, in dependency order (a
 * required module loads first; a cycle is an error).  Then applies config
 * (global and per-host sections) and calls each load().  SW_OK/SW_ERROR.
 */
int sw_modules_load(const char *const *names, sw_config_t *cfg);
int sw_modules_check(void);
int sw_modules_start(void);
/* Stops in reverse order, releases owners, closes handles. */
void sw_modules_stop(void);
void sw_modules_unload(void);

/* (sw_router.h) */
/* Declares the router's events and chains; core start-up. */
void sw_router_init(void);
void sw_router_shutdown(void);

/* (sw_session.h) */
void sw_session_init(void);
void sw_session_shutdown(void);

/*
 * Life cycle (used by skywaved and by tests that run a server in-process):
 * init reads the config (path NULL: the config text given), applies the
 * core options, registers hosts and loads modules; check runs every
 * module's check(); run starts modules and the loop until shutdown; free
 * releases everything.  Each returns SW_OK or SW_ERROR after logging.
 */
int sw_server_init(const char *path, const char *text);
/*
 * Before init: this process only checks the configuration (skywaved -t,
 * skywavectl check, skywavectl links).  Modules then change nothing on
 * disk: storage opens its database read-only, or not at all when it does
 * not exist yet.
 */
void sw_server_set_checking(bool checking);
int sw_server_check(void);
int sw_server_run(void);
/* Re-reads the config and applies reloadable options (SIGHUP). */
int sw_server_reload(void);
void sw_server_free(void);

#endif
