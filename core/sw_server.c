/*
 * The running server: one libuv loop, the core options, hosts, modules,
 * signals (SIGHUP reloads, SIGTERM/SIGINT stop gracefully).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

#ifndef SW_STATE_DIR
#define SW_STATE_DIR "/var/lib/skywave"
#endif

static const char *const sw_log_level_names[] = {
    "error", "warn", "info", "debug", NULL
};

#define SW_CORE_OPT(n, t, f, sc, fl, lo, hi, d, ch, h) \
    { n, t, offsetof(sw_core_conf_t, f), sc, fl, lo, hi, d, ch, h }

const sw_option_t sw_core_options[] = {
    SW_CORE_OPT("modules", SW_OPT_STRLIST, modules, SW_SCOPE_GLOBAL, 0,
                0, 0, NULL, NULL, "modules to load, in addition to those "
                "they require"),
    SW_CORE_OPT("storage", SW_OPT_STRING, storage, SW_SCOPE_GLOBAL, 0,
                0, 0, "sqlite", NULL, "storage backend: loads "
                "mod_storage_NAME before the other modules (\"none\": no "
                "storage)"),
    SW_CORE_OPT("module_path", SW_OPT_STRING, module_path, SW_SCOPE_GLOBAL,
                0, 0, 0, NULL, NULL, "extra directories (colon-separated) "
                "searched for modules before the installed ones"),
    SW_CORE_OPT("data_dir", SW_OPT_PATH, data_dir, SW_SCOPE_GLOBAL, 0,
                0, 0, SW_STATE_DIR, NULL, "directory for the database, "
                "generated certificates and other state"),
    SW_CORE_OPT("log_file", SW_OPT_PATH, log_file, SW_SCOPE_GLOBAL, 0,
                0, 0, NULL, NULL, "log to this file instead of stderr"),
    SW_CORE_OPT("log_level", SW_OPT_ENUM, log_level, SW_SCOPE_GLOBAL,
                SW_OPT_RELOADABLE, 0, 0, "info", sw_log_level_names,
                "least severe level logged"),
    SW_CORE_OPT("pid_file", SW_OPT_PATH, pid_file, SW_SCOPE_GLOBAL, 0,
                0, 0, NULL, NULL, "write the process id here"),
    SW_CORE_OPT("max_stanza_size", SW_OPT_SIZE, max_stanza_size,
                SW_SCOPE_GLOBAL, 0, 4096, 64 * 1024 * 1024, "256k", NULL,
                "largest stanza accepted on any stream "
                "(RFC 6120 §13.12: at least 10000 bytes recommended)"),
    SW_CORE_OPT("max_xml_depth", SW_OPT_INT, max_depth, SW_SCOPE_GLOBAL, 0,
                4, 1000, "32", NULL, "deepest element nesting accepted, "
                "stream root included"),
    SW_CORE_OPT("max_xml_attributes", SW_OPT_INT, max_attrs,
                SW_SCOPE_GLOBAL, 0, 4, 10000, "64", NULL,
                "most attributes accepted on one element"),
    SW_CORE_OPT("max_stanza_elements", SW_OPT_INT, max_elements,
                SW_SCOPE_GLOBAL, 0, 16, 1000000, "5000", NULL,
                "most elements in one stanza (each is a tree node in "
                "memory)"),
    SW_OPTION_END
};

static struct {
    sw_config_t     *old_cfgs[16];  /* kept: reloaded values point in */
    size_t           n_old;
    const char      *path;
    uv_signal_t      sig[3];
    bool             signals;
    bool             running;
    bool             modules_started;
    bool             modules_stopped;   /* stop() ran for all of them */
} sw_srv;

static int
sw_mkdir_p(const char *path)
{
    char   *p = sw_strdup(path), *s;
    int     rc = SW_OK;

    for (s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;

            *s = '\0';
            if (mkdir(p, 0750) != 0 && errno != EEXIST) {
                rc = SW_ERROR;
                break;
            }
            *s = c;
            if (c == '\0') {
                break;
            }
        }
    }
    free(p);
    return rc;
}

/* Registers every VirtualHost and Component as a local host. */
static int
sw_server_add_hosts(sw_config_t *cfg)
{
    size_t i;
    int    rc = SW_OK;

    for (i = 1; i < cfg->n_sections; i++) {
        sw_csection_t *sec = &cfg->sections[i];
        sw_pool_t     *tmp;
        const char    *name;

        if (sec->scope != SW_SCOPE_HOST && sec->scope != SW_SCOPE_COMPONENT) {
            continue;
        }
        tmp = sw_pool_new(256);
        name = sw_jid_nameprep(tmp, sec->name);
        if (name == NULL || strcmp(name, sec->name) != 0) {
            sw_log_error("%s:%d: %s \"%s\": %s", cfg->file, sec->line,
                         sec->scope == SW_SCOPE_HOST ? "VirtualHost"
                                                     : "Component",
                         sec->name, name ? "write the domain in its "
                         "canonical (lower-case) form" : "not a valid domain");
            rc = SW_ERROR;
        } else {
            sw_host_add(name, sec->scope == SW_SCOPE_HOST ? "host"
                                                          : sec->component);
        }
        sw_pool_free(tmp);
    }
    return rc;
}

/* The modules list, and the module of every Component not in it:
 * Component "conference.example.net" "muc" loads mod_muc by itself. */
static const char **
sw_server_module_names(sw_config_t *cfg)
{
    const char *const *mods = sw_core_conf()->modules;
    const char       **names;
    size_t             n = 0, i, j;

    for (i = 0; mods != NULL && mods[i] != NULL; i++) {
    }
    names = sw_pool_calloc(cfg->pool, (i + cfg->n_sections + 1)
                                      * sizeof(*names));
    for (i = 0; mods != NULL && mods[i] != NULL; i++) {
        names[n++] = mods[i];
    }
    for (i = 1; i < cfg->n_sections; i++) {
        const char *c = cfg->sections[i].component;

        if (cfg->sections[i].scope != SW_SCOPE_COMPONENT || c == NULL) {
            continue;
        }
        for (j = 0; j < n && strcmp(names[j], c) != 0; j++) {
        }
        if (j == n) {
            names[n++] = c;
        }
    }
    return names;
}

/* The storage backend first: modules find it as the "storage" service. */
static int
sw_server_load_modules(sw_config_t *cfg)
{
    const char *first[2] = { NULL, NULL };
    char        name[128];

    if (sw_core_conf()->storage != NULL && strcmp(sw_core_conf()->storage, "none")) {
        snprintf(name, sizeof(name), "storage_%s", sw_core_conf()->storage);
        first[0] = name;
        if (sw_modules_load(first, cfg) != SW_OK) {
            return SW_ERROR;
        }
    }
    return sw_modules_load(sw_server_module_names(cfg), cfg);
}

int
sw_server_init(const char *path, const char *text)
{
    sw_config_t *cfg;

    sw_router_init();
    sw_session_init();
    sw_iq_init();
    sw_hook_declare("server/started", "all modules started, loop running");
    sw_hook_declare("server/stopping", "graceful shutdown begins");
    sw_hook_declare("server/reloaded", "configuration re-read (SIGHUP)");

    cfg = path ? sw_config_load(path) : sw_config_load_string("(string)",
                                                               text);
    if (cfg == NULL) {
        return SW_ERROR;
    }
    sw_context_set_config(cfg);
    sw_srv.path = path;
    if (sw_options_defaults(sw_core_options, sw_core_conf_rw(), cfg->pool)
            != SW_OK
        || sw_options_apply(sw_core_options, sw_core_conf_rw(), cfg,
                            sw_config_global(cfg), cfg->pool) != SW_OK)
    {
        return SW_ERROR;
    }
    sw_log_set_level((sw_log_level_e) sw_core_conf()->log_level);
    if (sw_core_conf()->log_file != NULL
        && sw_log_open(sw_core_conf()->log_file) != SW_OK)
    {
        sw_log_error("log_file %s: %s", sw_core_conf()->log_file,
                     strerror(errno));
        return SW_ERROR;
    }
    if (sw_core_conf()->module_path != NULL) {
        sw_module_set_path(sw_core_conf()->module_path);
    }
    /* Storage modules open their files at load: the state dir first. */
    if (sw_core_conf()->data_dir != NULL && sw_mkdir_p(sw_core_conf()->data_dir)) {
        sw_log_error("data_dir %s: cannot create: %s", sw_core_conf()->data_dir,
                     strerror(errno));
        return SW_ERROR;
    }
    if (sw_server_add_hosts(cfg) != SW_OK) {
        return SW_ERROR;
    }
    if (sw_server_load_modules(cfg) != SW_OK) {
        return SW_ERROR;
    }
    if (sw_links_configure(cfg) != SW_OK) {
        return SW_ERROR;
    }
    if (sw_config_check_unclaimed(cfg) != SW_OK) {
        return SW_ERROR;
    }
    return SW_OK;
}

int
sw_server_check(void)
{
    return sw_modules_check();
}

static void
sw_server_on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        sw_log_info("SIGHUP: reloading configuration");
        sw_server_reload();
        return;
    }
    sw_log_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sw_server_shutdown();
}

static void
sw_server_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

void
sw_server_shutdown(void)
{
    size_t i;

    if (!sw_srv.running) {
        return;
    }
    sw_srv.running = false;
    sw_hook_fire_name("server/stopping", NULL);
    sw_links_stop();
    /* Modules close their sessions and listeners (each session sends
     * </stream:stream>, RFC 6120 §4.4); the loop then runs until every
     * connection has flushed and closed. */
    if (sw_srv.modules_started) {
        sw_modules_stop();
        sw_srv.modules_started = false;
        sw_srv.modules_stopped = true;
    }
    for (i = 0; i < 3 && sw_srv.signals; i++) {
        uv_close((uv_handle_t *) &sw_srv.sig[i], NULL);
    }
    sw_srv.signals = false;
}

int
sw_server_run(void)
{
    static const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
    uv_loop_t       *loop = sw_loop();
    size_t           i;
    FILE            *fp;

    if (sw_core_conf()->pid_file != NULL) {
        fp = fopen(sw_core_conf()->pid_file, "w");
        if (fp == NULL) {
            sw_log_error("pid_file %s: %s", sw_core_conf()->pid_file,
                         strerror(errno));
            return SW_ERROR;
        }
        fprintf(fp, "%ld\n", (long) getpid());
        fclose(fp);
    }
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < 3; i++) {
        uv_signal_init(loop, &sw_srv.sig[i]);
        uv_signal_start(&sw_srv.sig[i], sw_server_on_signal, signums[i]);
    }
    sw_srv.signals = true;
    sw_srv.running = true;
    if (sw_modules_start() != SW_OK) {
        sw_srv.modules_started = true;
        sw_server_shutdown();
        uv_run(loop, UV_RUN_DEFAULT);
        return SW_ERROR;
    }
    sw_srv.modules_started = true;
    if (sw_links_start() != SW_OK) {
        sw_server_shutdown();
        uv_run(loop, UV_RUN_DEFAULT);
        return SW_ERROR;
    }
    sw_log_info("skywave %s started (pid %ld)", PACKAGE_VERSION,
                (long) getpid());
    sw_hook_fire_name("server/started", NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    sw_log_info("skywave stopped");
    if (sw_core_conf()->pid_file != NULL) {
        unlink(sw_core_conf()->pid_file);
    }
    return SW_OK;
}

/* Size of the conf field an option type fills. */
static size_t
sw_opt_field_size(sw_opt_type_e t)
{
    switch (t) {
    case SW_OPT_BOOL:     return sizeof(bool);
    case SW_OPT_INT:      return sizeof(int64_t);
    case SW_OPT_SIZE:     return sizeof(size_t);
    case SW_OPT_DURATION: return sizeof(double);
    case SW_OPT_ENUM:     return sizeof(int);
    default:              return sizeof(void *);
    }
}

/* Copies the reloadable options from fresh into live; logs the others
 * that changed (they need a restart). */
static void
sw_options_reload(const sw_option_t *opts, void *live, const void *fresh,
                  const char *owner)
{
    const sw_option_t *o;

    for (o = opts; o != NULL && o->name != NULL; o++) {
        size_t n = sw_opt_field_size(o->type);
        char  *l = (char *) live + o->offset;
        const char *f = (const char *) fresh + o->offset;
        bool   same;

        if (o->type == SW_OPT_STRING || o->type == SW_OPT_PATH) {
            const char *a = *(const char *const *) l;
            const char *b = *(const char *const *) f;

            same = (a == b) || (a && b && strcmp(a, b) == 0);
        } else if (o->type == SW_OPT_STRLIST) {
            const char *const *a = *(const char *const *const *) l;
            const char *const *b = *(const char *const *const *) f;

            for (same = true; same && a && b && *a && *b; a++, b++) {
                same = strcmp(*a, *b) == 0;
            }
            same = same && (a == b || (a && b && !*a && !*b));
        } else {
            same = memcmp(l, f, n) == 0;
        }
        if (same) {
            continue;
        }
        if (o->flags & SW_OPT_RELOADABLE) {
            memcpy(l, f, n);
            sw_log_info("reload: %s option '%s' updated", owner, o->name);
        } else {
            sw_log_warn("reload: %s option '%s' changed; it takes effect "
                        "at the next restart", owner, o->name);
        }
    }
}

typedef struct {
    sw_config_t *cfg;
    int          rc;
} sw_reload_ctx_t;

static void
sw_server_reload_module(sw_module_ctx_t *mc, void *ud)
{
    sw_reload_ctx_t   *rc = ud;
    const sw_module_t *m = mc->module;
    void              *fresh;
    size_t             i;

    if (m->options == NULL || m->conf_size == 0) {
        return;
    }
    fresh = sw_pool_calloc(rc->cfg->pool, m->conf_size);
    sw_options_defaults(m->options, fresh, rc->cfg->pool);
    if (sw_options_apply(m->options, fresh, rc->cfg, sw_config_global(rc->cfg),
                         rc->cfg->pool) != SW_OK)
    {
        rc->rc = SW_ERROR;
        return;
    }
    sw_options_reload(m->options, mc->conf, fresh, m->name);
    for (i = 1; i < rc->cfg->n_sections; i++) {
        sw_csection_t *sec = &rc->cfg->sections[i];
        void          *live = sw_module_conf(mc, sec->name);
        void          *hfresh;

        if (sec->scope != SW_SCOPE_HOST && sec->scope != SW_SCOPE_COMPONENT
            && sec->scope != SW_SCOPE_PEER)
        {
            continue;
        }
        /* Applied even to a section added since the start, so that its
         * entries are checked (and claimed); only known ones reload. */
        hfresh = sw_pool_alloc(rc->cfg->pool, m->conf_size);
        memcpy(hfresh, fresh, m->conf_size);
        if (sw_options_apply(m->options, hfresh, rc->cfg, sec, rc->cfg->pool)
            != SW_OK)
        {
            rc->rc = SW_ERROR;
            continue;
        }
        if (live != mc->conf) {
            sw_options_reload(m->options, live, hfresh, m->name);
        }
    }
}

/* The core's options of each Peer section: checked (and claimed); a
 * changed one takes effect at the next restart, as does a Peer added or
 * removed. */
static void
sw_server_reload_peers(sw_config_t *cfg, sw_reload_ctx_t *rc)
{
    size_t i;

    for (i = 1; i < cfg->n_sections; i++) {
        sw_csection_t *sec = &cfg->sections[i];
        sw_link_t     *l;
        void          *fresh;
        char           owner[300];

        if (sec->scope != SW_SCOPE_PEER) {
            continue;
        }
        fresh = sw_pool_calloc(cfg->pool, sizeof(sw_peer_conf_t));
        if (sw_options_defaults(sw_peer_options, fresh, cfg->pool) != SW_OK
            || sw_options_apply(sw_peer_options, fresh, cfg, sec, cfg->pool)
               != SW_OK)
        {
            rc->rc = SW_ERROR;
            continue;
        }
        sw_peer_conf_defaults(fresh, sec);
        l = sw_link_find(sec->name);
        if (l == NULL) {
            sw_log_warn("reload: Peer \"%s\" is new; it is linked at the "
                        "next restart", sec->name);
            continue;
        }
        snprintf(owner, sizeof(owner), "Peer \"%s\"", sec->name);
        /* nothing of a Peer's is reloadable yet: this only logs what
         * changed (the live conf is never written) */
        sw_options_reload(sw_peer_options, (void *) sw_link_conf(l), fresh,
                          owner);
    }
}

static void
sw_server_reload_notify(sw_module_ctx_t *mc, void *ud)
{
    if (mc->module->reload != NULL) {
        mc->module->reload(mc);
    }
}

int
sw_server_reload(void)
{
    sw_config_t     *cfg;
    sw_core_conf_t   fresh;
    sw_reload_ctx_t  rc;

    if (sw_srv.path == NULL) {
        return SW_DECLINED;
    }
    cfg = sw_config_load(sw_srv.path);
    if (cfg == NULL) {
        sw_log_error("reload failed: keeping the running configuration");
        return SW_ERROR;
    }
    memset(&fresh, 0, sizeof(fresh));
    sw_options_defaults(sw_core_options, &fresh, cfg->pool);
    rc.cfg = cfg;
    rc.rc = sw_options_apply(sw_core_options, &fresh, cfg,
                             sw_config_global(cfg), cfg->pool);
    if (rc.rc == SW_OK) {
        sw_server_reload_peers(cfg, &rc);
        sw_modules_each(sw_server_reload_module, &rc);
    }
    if (rc.rc == SW_OK && sw_config_check_unclaimed(cfg) != SW_OK) {
        rc.rc = SW_ERROR;
    }
    if (rc.rc != SW_OK) {
        sw_log_error("reload failed: keeping the running configuration");
        sw_config_free(cfg);
        return SW_ERROR;
    }
    sw_options_reload(sw_core_options, sw_core_conf_rw(), &fresh, "core");
    sw_log_set_level((sw_log_level_e) sw_core_conf()->log_level);
    /* Reopen the log so rotation by rename works with SIGHUP. */
    if (sw_core_conf()->log_file != NULL) {
        sw_log_open(sw_core_conf()->log_file);
    }
    /* Reloaded strings point into the new config: keep it, and the old
     * ones that non-reloadable values still point into. */
    if (sw_srv.n_old < sizeof(sw_srv.old_cfgs) / sizeof(sw_srv.old_cfgs[0])) {
        sw_srv.old_cfgs[sw_srv.n_old++] = sw_server_config();
        sw_context_set_config(cfg);
    } else {
        sw_log_warn("reload: too many reloads kept in memory; restart "
                    "skywaved to release them");
        sw_context_set_config(cfg);
    }
    sw_modules_each(sw_server_reload_notify, NULL);
    sw_hook_fire_name("server/reloaded", NULL);
    sw_log_info("configuration reloaded");
    return SW_OK;
}

void
sw_server_free(void)
{
    size_t i;

    /* Modules loaded but never started (skywavectl, skywaved -t, a
     * config error after loading) are stopped too: stop() frees what
     * load() allocated (doc/module-api.md). */
    if (!sw_srv.modules_stopped) {
        sw_modules_stop();
    }
    sw_srv.modules_started = false;
    sw_modules_unload();
    if (sw_loop_if_made() != NULL) {
        uv_walk(sw_loop(), sw_server_walk_close, NULL);
        uv_run(sw_loop(), UV_RUN_DEFAULT);
        uv_loop_close(sw_loop());
        sw_loop_forget();
    }
    sw_links_free();        /* after the loop: its timers live in links */
    sw_iq_shutdown();
    sw_session_shutdown();
    sw_router_shutdown();
    sw_chain_shutdown();
    sw_hook_shutdown();
    for (i = 0; i < sw_srv.n_old; i++) {
        sw_config_free(sw_srv.old_cfgs[i]);
    }
    sw_config_free(sw_server_config());
    sw_context_set_config(NULL);
    sw_log_open(NULL);
    memset(&sw_srv, 0, sizeof(sw_srv));
}
