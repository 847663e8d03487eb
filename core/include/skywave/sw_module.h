/*
 * Modules: libtool modules (mod_NAME.la) loaded with libltdl.  Each exports
 * one descriptor named "sw_module", checked for ABI version and build
 * signature before anything else in it runs.
 */
#ifndef SKYWAVE_SW_MODULE_H
#define SKYWAVE_SW_MODULE_H

#include <skywave/sw_core.h>
#include <skywave/sw_config.h>

/* Bumped whenever a public struct or function signature changes. */
#define SW_MODULE_ABI 4

#define SW_STR_(x) #x
#define SW_STR(x)  SW_STR_(x)
/* What must match between the server and a module beyond the ABI number. */
#define SW_MODULE_SIGNATURE \
    "skywave/abi" SW_STR(SW_MODULE_ABI) "/ptr" SW_STR(__SIZEOF_POINTER__) \
    "/long" SW_STR(__SIZEOF_LONG__)

typedef struct sw_module_s     sw_module_t;
typedef struct sw_module_ctx_s sw_module_ctx_t;

struct sw_module_s {
    unsigned             abi;        /* SW_MODULE_ABI */
    const char          *signature;  /* SW_MODULE_SIGNATURE */
    const char          *name;       /* "c2s": matches mod_c2s.la */
    const char          *help;       /* one line for --list-modules */
    const char *const   *requires;   /* other modules, NULL-terminated */
    const sw_option_t   *options;    /* declared options (may be NULL) */
    size_t               conf_size;  /* core allocates and fills */
    int   (*load)(sw_module_ctx_t *mc);   /* register hooks, services */
    int   (*check)(sw_module_ctx_t *mc);  /* cross-field validation (-t) */
    int   (*start)(sw_module_ctx_t *mc);  /* open listeners, connect */
    void  (*stop)(sw_module_ctx_t *mc);   /* flush, close; also after a
                                             load without a start (data
                                             may be NULL) */
    /* Config reloaded (SIGHUP): reloadable options already updated. */
    void  (*reload)(sw_module_ctx_t *mc);
};

struct sw_module_ctx_s {
    const sw_module_t  *module;
    sw_owner_t          owner;       /* hooks, filters, services, timers */
    void               *conf;        /* global conf (conf_size bytes) */
    void               *data;        /* the module's own state */
    void               *handle;      /* lt_dlhandle; NULL when built in */
    struct sw_module_host_conf_s *hosts;  /* per-VirtualHost confs */
};

/*
 * The conf that applies to host (VirtualHost, Component or Peer name):
 * the global conf overlaid with what that section sets.  host NULL or
 * unknown: the global conf.
 */
void *sw_module_conf(sw_module_ctx_t *mc, const char *host);

/* Loaded modules, by name; NULL if not loaded. */
sw_module_ctx_t *sw_module_find(const char *name);

/*
 * Loads one module file by name from the search path (libltdl; tries
 * mod_NAME.la then mod_NAME.so) and checks its descriptor.  Returns the
 * context, or NULL after logging why (not found, no descriptor, ABI or
 * signature mismatch: "module 'x' was built for ABI 2, this server has 1").
 */
sw_module_ctx_t *sw_module_open(const char *name);
/* Closes a module opened with sw_module_open and never loaded. */
void sw_module_close(sw_module_ctx_t *mc);

/* Calls fn for each loaded module in load order. */
void sw_modules_each(void (*fn)(sw_module_ctx_t *mc, void *ud), void *ud);

/*
 * Services: modules talk through versioned service tables, never by
 * linking to each other.  provide registers api under name (removed when
 * owner is released); get returns it if version >= min_version.
 */
int sw_service_provide(sw_owner_t *owner, const char *name, unsigned version,
                       const void *api);
const void *sw_service_get(const char *name, unsigned min_version);

#endif
