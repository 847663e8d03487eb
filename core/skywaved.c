/* skywaved: the Skywave XMPP server. */
#include "config.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

#ifndef SW_SYSCONF_DIR
#define SW_SYSCONF_DIR "/etc/skywave"
#endif

static void
skywaved_usage(FILE *fp)
{
    fprintf(fp,
        "Usage: skywaved [options]\n"
        "  -c, --config FILE   configuration file (default "
        SW_SYSCONF_DIR "/skywave.cfg.lua)\n"
        "  -t, --test          check the configuration and modules, then "
        "exit\n"
        "      --list-options  print every option of the core and of the\n"
        "                      modules found in the module path\n"
        "      --list-events   print the events modules can hook (those of\n"
        "                      the modules the configuration loads)\n"
        "  -M, --module-path D also search directory D for modules\n"
        "  -V, --version       print the version\n"
        "  -h, --help          this text\n");
}

static void
skywaved_print_event(const char *name, const char *help, void *ud)
{
    printf("%-24s %s\n", name, help);
}

static void
skywaved_print_module(sw_module_ctx_t *mc, void *ud)
{
    const sw_module_t *m = mc->module;

    if (m->options != NULL) {
        sw_options_print(m->options, m->name, stdout);
    } else {
        printf("\n[%s] no options\n", m->name);
    }
}

/* Prints the options of every mod_*.la in the given directories. */
static void
skywaved_load_all_modules(const char *path)
{
    char *dirs = sw_strdup(path), *save = NULL, *d;

    for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        DIR             *dir = opendir(d);
        struct dirent   *e;
        sw_module_ctx_t *mc;

        if (dir == NULL) {
            continue;
        }
        while ((e = readdir(dir)) != NULL) {
            size_t  n = strlen(e->d_name);
            char    name[128];

            if (n > 7 && n < sizeof(name) + 7
                && strncmp(e->d_name, "mod_", 4) == 0
                && strcmp(e->d_name + n - 3, ".la") == 0)
            {
                memcpy(name, e->d_name + 4, n - 7);
                name[n - 7] = '\0';
                /* Options are declared in the descriptor: no need to run
                 * the module's load() to list them. */
                mc = sw_module_open(name);
                if (mc != NULL) {
                    skywaved_print_module(mc, NULL);
                    sw_module_close(mc);
                }
            }
        }
        closedir(dir);
    }
    free(dirs);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "test", no_argument, NULL, 't' },
        { "list-options", no_argument, NULL, 'O' },
        { "list-events", no_argument, NULL, 'E' },
        { "module-path", required_argument, NULL, 'M' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = SW_SYSCONF_DIR "/skywave.cfg.lua";
    const char *mpath = NULL;
    bool        test = false, list_options = false, list_events = false;
    int         c, rc;

    while ((c = getopt_long(argc, argv, "c:tM:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 't': test = true; break;
        case 'O': list_options = true; break;
        case 'E': list_events = true; break;
        case 'M': mpath = optarg; break;
        case 'V': printf("skywaved %s\n", PACKAGE_VERSION); return 0;
        case 'h': skywaved_usage(stdout); return 0;
        default: skywaved_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "skywaved: unexpected argument '%s'\n", argv[optind]);
        skywaved_usage(stderr);
        return 2;
    }
    if (mpath != NULL) {
        sw_module_set_path(mpath);
    }

    if (list_options) {
        const char *env = getenv("SKYWAVE_MODULE_PATH");
        sw_buf_t    path;

        sw_router_init();
        sw_options_print(sw_core_options, "core", stdout);
        sw_options_print(sw_peer_options, "core: Peer sections", stdout);
        sw_buf_init(&path);
        sw_buf_printf(&path, "%s:%s:%s", env ? env : "", mpath ? mpath : "",
                      SW_MODULE_DIR);
        skywaved_load_all_modules(path.data);
        sw_buf_free(&path);
        sw_server_free();
        return 0;
    }

    sw_server_set_checking(test || list_events);
    rc = sw_server_init(config, NULL);
    if (rc == SW_OK) {
        rc = sw_server_check();
    }
    if (list_events && rc == SW_OK) {
        sw_hook_each(skywaved_print_event, NULL);
    } else if (test) {
        fprintf(rc == SW_OK ? stdout : stderr, "skywaved: configuration %s "
                "%s\n", config, rc == SW_OK ? "is OK" : "has errors");
    } else if (rc == SW_OK) {
        rc = sw_server_run();
    }
    sw_server_free();
    return rc == SW_OK ? 0 : 1;
}
