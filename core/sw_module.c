/*
 * The module loader (libltdl) and the service registry.
 *
 * A module is refused before any of its code runs when its descriptor's
 * ABI number or build signature differs from the server's: reading two
 * fields of a const struct is all we do with a module we do not trust yet.
 */
#include "config.h"

#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_module.h>
#include <skywave/sw_log.h>
#include <skywave/sw_router.h>

#include "sw_core_int.h"

#ifndef SW_MODULE_DIR
#define SW_MODULE_DIR "/usr/local/lib/skywave"
#endif

typedef struct sw_module_host_conf_s {
    struct sw_module_host_conf_s *next;
    const char                   *host;
    void                         *conf;
} sw_module_host_conf_t;

typedef struct sw_service_s sw_service_t;

struct sw_service_s {
    sw_service_t  *next;
    char          *name;
    unsigned       version;
    const void    *api;
    sw_owner_t    *owner;
};

static sw_module_ctx_t **sw_modules;    /* load order */
static size_t            sw_n_modules;
static sw_pool_t        *sw_module_pool;    /* confs */
static char             *sw_module_path;
static bool              sw_ltdl_ready;
static sw_service_t     *sw_services;

static int
sw_ltdl_init(void)
{
    const char *env;
    sw_buf_t    path;

    if (!sw_ltdl_ready) {
        if (lt_dlinit() != 0) {
            sw_log_error("cannot initialise libltdl: %s", lt_dlerror());
            return SW_ERROR;
        }
        sw_ltdl_ready = true;
    }
    /* Order: SKYWAVE_MODULE_PATH, the configured path, the install dir. */
    sw_buf_init(&path);
    env = getenv("SKYWAVE_MODULE_PATH");
    if (env != NULL && *env) {
        sw_buf_printf(&path, "%s:", env);
    }
    if (sw_module_path != NULL && *sw_module_path) {
        sw_buf_printf(&path, "%s:", sw_module_path);
    }
    sw_buf_append_str(&path, SW_MODULE_DIR);
    lt_dlsetsearchpath(path.data);
    sw_buf_free(&path);
    return SW_OK;
}

void
sw_module_set_path(const char *path)
{
    free(sw_module_path);
    sw_module_path = sw_strdup(path);
    if (sw_ltdl_ready) {
        sw_ltdl_init();
    }
}

sw_module_ctx_t *
sw_module_find(const char *name)
{
    size_t i;

    for (i = 0; i < sw_n_modules; i++) {
        if (strcmp(sw_modules[i]->module->name, name) == 0) {
            return sw_modules[i];
        }
    }
    return NULL;
}

static bool
sw_module_name_ok(const char *name)
{
    const char *p;

    if (*name == '\0' || strlen(name) > 64) {
        return false;
    }
    for (p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_'))
        {
            return false;
        }
    }
    return true;
}

sw_module_ctx_t *
sw_module_open(const char *name)
{
    char               file[128];
    lt_dlhandle        h;
    const sw_module_t *m;
    sw_module_ctx_t   *mc;

    if (!sw_module_name_ok(name)) {
        sw_log_error("module '%s': invalid name (use a-z, 0-9 and _)", name);
        return NULL;
    }
    if (sw_ltdl_init() != SW_OK) {
        return NULL;
    }
    snprintf(file, sizeof(file), "mod_%s", name);
    h = lt_dlopenext(file);
    if (h == NULL) {
        sw_log_error("module '%s': cannot load %s (search path %s): %s",
                     name, file, lt_dlgetsearchpath(), lt_dlerror());
        return NULL;
    }
    m = lt_dlsym(h, "sw_module");
    if (m == NULL) {
        sw_log_error("module '%s': %s has no 'sw_module' descriptor", name,
                     file);
        goto refuse;
    }
    if (m->abi != SW_MODULE_ABI) {
        sw_log_error("module '%s': built for module ABI %u, this server "
                     "has ABI %u; rebuild it against this server's SDK",
                     name, m->abi, SW_MODULE_ABI);
        goto refuse;
    }
    if (m->signature == NULL || strcmp(m->signature, SW_MODULE_SIGNATURE)) {
        sw_log_error("module '%s': build signature \"%s\" does not match "
                     "the server's \"%s\"; rebuild it against this "
                     "server's SDK", name,
                     m->signature ? m->signature : "(none)",
                     SW_MODULE_SIGNATURE);
        goto refuse;
    }
    if (m->name == NULL || strcmp(m->name, name) != 0) {
        sw_log_error("module '%s': its descriptor calls it '%s'", name,
                     m->name ? m->name : "(null)");
        goto refuse;
    }
    mc = sw_calloc(1, sizeof(*mc));
    mc->module = m;
    mc->handle = h;
    sw_owner_init(&mc->owner, m->name);
    return mc;

refuse:
    lt_dlclose(h);
    return NULL;
}

static void
sw_module_ctx_free(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
    /* SKYWAVE_NO_DLCLOSE keeps modules mapped at exit, so valgrind can
     * name the functions in a module's leak reports. */
    if (mc->handle != NULL && getenv("SKYWAVE_NO_DLCLOSE") == NULL) {
        lt_dlclose(mc->handle);
    }
    free(mc);
}

void
sw_module_close(sw_module_ctx_t *mc)
{
    sw_module_ctx_free(mc);
}

static void
sw_module_append(sw_module_ctx_t *mc)
{
    sw_modules = sw_realloc(sw_modules,
                            (sw_n_modules + 1) * sizeof(*sw_modules));
    sw_modules[sw_n_modules++] = mc;
}

/* Depth-first: requirements first; stack detects cycles. */
static int
sw_module_resolve(const char *name, const char **stack, size_t depth)
{
    sw_module_ctx_t    *mc;
    const char *const  *r;
    size_t              i;

    if (sw_module_find(name) != NULL) {
        return SW_OK;
    }
    for (i = 0; i < depth; i++) {
        if (strcmp(stack[i], name) == 0) {
            sw_log_error("module '%s': dependency cycle (%s requires it "
                         "again)", name, stack[depth - 1]);
            return SW_ERROR;
        }
    }
    if (depth >= 32) {
        sw_log_error("module '%s': dependencies nested too deeply", name);
        return SW_ERROR;
    }
    mc = sw_module_open(name);
    if (mc == NULL) {
        if (depth > 0) {
            sw_log_error("module '%s' is required by '%s'", name,
                         stack[depth - 1]);
        }
        return SW_ERROR;
    }
    stack[depth] = mc->module->name;
    for (r = mc->module->requires; r != NULL && *r != NULL; r++) {
        if (sw_module_resolve(*r, stack, depth + 1) != SW_OK) {
            sw_module_ctx_free(mc);
            return SW_ERROR;
        }
    }
    sw_module_append(mc);
    return SW_OK;
}

static int
sw_module_configure(sw_module_ctx_t *mc, sw_config_t *cfg)
{
    const sw_module_t     *m = mc->module;
    sw_module_host_conf_t *hc;
    size_t                 i;
    int                    rc = SW_OK;

    if (m->conf_size == 0 || m->options == NULL) {
        return SW_OK;
    }
    mc->conf = sw_pool_calloc(sw_module_pool, m->conf_size);
    if (sw_options_defaults(m->options, mc->conf, sw_module_pool) != SW_OK) {
        sw_log_error("module '%s': bad option defaults", m->name);
        return SW_ERROR;
    }
    if (cfg == NULL) {
        return SW_OK;
    }
    if (sw_options_apply(m->options, mc->conf, cfg, sw_config_global(cfg),
                         sw_module_pool) != SW_OK)
    {
        rc = SW_ERROR;
    }
    /* Each VirtualHost/Component/Peer gets the global conf overlaid with
     * its own section, so a module asks for one host's (or one peer's)
     * view in one call. */
    for (i = 1; i < cfg->n_sections; i++) {
        sw_csection_t *sec = &cfg->sections[i];

        if (sec->scope != SW_SCOPE_HOST && sec->scope != SW_SCOPE_COMPONENT
            && sec->scope != SW_SCOPE_PEER)
        {
            continue;
        }
        hc = sw_pool_calloc(sw_module_pool, sizeof(*hc));
        hc->host = sec->name;
        hc->conf = sw_pool_alloc(sw_module_pool, m->conf_size);
        memcpy(hc->conf, mc->conf, m->conf_size);
        if (sw_options_apply(m->options, hc->conf, cfg, sec, sw_module_pool)
            != SW_OK)
        {
            rc = SW_ERROR;
        }
        hc->next = mc->hosts;
        mc->hosts = hc;
    }
    return rc;
}

void *
sw_module_conf(sw_module_ctx_t *mc, const char *host)
{
    sw_module_host_conf_t *hc;

    if (host != NULL) {
        for (hc = mc->hosts; hc != NULL; hc = hc->next) {
            if (strcmp(hc->host, host) == 0) {
                return hc->conf;
            }
        }
    }
    return mc->conf;
}

int
sw_modules_load(const char *const *names, sw_config_t *cfg)
{
    const char *stack[33];
    size_t      i, first = sw_n_modules;
    int         rc = SW_OK;

    if (sw_module_pool == NULL) {
        sw_module_pool = sw_pool_new(4096);
    }
    for (; names != NULL && *names != NULL; names++) {
        if (sw_module_resolve(*names, stack, 0) != SW_OK) {
            rc = SW_ERROR;
        }
    }
    if (rc != SW_OK) {
        return rc;
    }
    for (i = first; i < sw_n_modules; i++) {
        if (sw_module_configure(sw_modules[i], cfg) != SW_OK) {
            rc = SW_ERROR;
        }
    }
    if (rc != SW_OK) {
        return rc;
    }
    for (i = first; i < sw_n_modules; i++) {
        sw_module_ctx_t *mc = sw_modules[i];

        if (mc->module->load != NULL && mc->module->load(mc) != SW_OK) {
            sw_log_error("module '%s' failed to load", mc->module->name);
            return SW_ERROR;
        }
        sw_log_debug("module '%s' loaded", mc->module->name);
    }
    return SW_OK;
}

int
sw_modules_check(void)
{
    size_t i;
    int    rc = SW_OK;

    for (i = 0; i < sw_n_modules; i++) {
        sw_module_ctx_t *mc = sw_modules[i];

        if (mc->module->check != NULL && mc->module->check(mc) != SW_OK) {
            rc = SW_ERROR;
        }
    }
    return rc;
}

int
sw_modules_start(void)
{
    size_t i;

    for (i = 0; i < sw_n_modules; i++) {
        sw_module_ctx_t *mc = sw_modules[i];

        if (mc->module->start != NULL && mc->module->start(mc) != SW_OK) {
            sw_log_error("module '%s' failed to start", mc->module->name);
            return SW_ERROR;
        }
    }
    return SW_OK;
}

void
sw_modules_stop(void)
{
    size_t i;

    for (i = sw_n_modules; i > 0; i--) {
        sw_module_ctx_t *mc = sw_modules[i - 1];

        if (mc->module->stop != NULL) {
            mc->module->stop(mc);
        }
        sw_owner_release(&mc->owner);
    }
}

void
sw_modules_unload(void)
{
    size_t i;

    for (i = sw_n_modules; i > 0; i--) {
        sw_module_ctx_free(sw_modules[i - 1]);
    }
    free(sw_modules);
    sw_modules = NULL;
    sw_n_modules = 0;
    sw_pool_free(sw_module_pool);
    sw_module_pool = NULL;
    if (sw_ltdl_ready) {
        lt_dlexit();
        sw_ltdl_ready = false;
    }
}

void
sw_modules_each(void (*fn)(sw_module_ctx_t *mc, void *ud), void *ud)
{
    size_t i;

    for (i = 0; i < sw_n_modules; i++) {
        fn(sw_modules[i], ud);
    }
}

static void
sw_service_withdraw(void *data)
{
    sw_service_t **pp;

    for (pp = &sw_services; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == data) {
            sw_service_t *s = *pp;

            *pp = s->next;
            free(s->name);
            free(s);
            return;
        }
    }
}

int
sw_service_provide(sw_owner_t *owner, const char *name, unsigned version,
                   const void *api)
{
    sw_service_t *s;

    for (s = sw_services; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            sw_log_error("%s: service '%s' is already provided by %s",
                         owner && owner->name ? owner->name : "core", name,
                         s->owner && s->owner->name ? s->owner->name
                                                    : "core");
            return SW_ERROR;
        }
    }
    s = sw_calloc(1, sizeof(*s));
    s->name = sw_strdup(name);
    s->version = version;
    s->api = api;
    s->owner = owner;
    s->next = sw_services;
    sw_services = s;
    if (owner != NULL) {
        sw_owner_on_release(owner, sw_service_withdraw, s);
    }
    return SW_OK;
}

const void *
sw_service_get(const char *name, unsigned min_version)
{
    sw_service_t *s;

    for (s = sw_services; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return s->version >= min_version ? s->api : NULL;
        }
    }
    return NULL;
}
