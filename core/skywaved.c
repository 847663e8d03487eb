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
        "      --policy-test POLICY [--chain NAME]\n"
        "                      run the filter policy over the stanzas on\n"
        "                      standard input; print a verdict per stanza\n"
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

/* ------------------------------------------------- --policy-test --- */

typedef struct skywaved_ptest_s {
    sw_policy_t *policy;
    const char  *chain;
    const char  *ns;            /* the stream's content namespace */
    unsigned     n;
    unsigned     bad;
    bool         failed;
} skywaved_ptest_t;

static void
skywaved_ptest_open(void *ud, sw_xml_t *header)
{
    (void) ud;
    (void) header;
}

static void
skywaved_ptest_print(const sw_xml_t *x, const char *ns)
{
    char *s = sw_xml_to_string(x, ns);

    printf(" %s", s);
    free(s);
}

static void
skywaved_ptest_element(void *ud, sw_xml_t *elem, sw_pool_t *pool)
{
    skywaved_ptest_t *t = ud;
    sw_stanza_t      *st, *reply;
    const char       *err = NULL, *cond = NULL;
    sw_verdict_e      v;
    uint64_t          failures = sw_policy_failures(t->policy);

    t->n++;
    st = sw_stanza_new(pool, elem, &err);
    if (st == NULL) {
        printf("%u invalid %s\n", t->n, err ? err : "stanza");
        sw_pool_free(pool);
        t->bad++;
        return;
    }
    v = sw_policy_run(t->policy, t->chain, &st, NULL, &cond);
    if (sw_policy_failures(t->policy) != failures) {
        printf("%u error, on_error: ", t->n);
    } else {
        printf("%u ", t->n);
    }
    switch (v) {
    case SW_PASS:
        printf("pass");
        skywaved_ptest_print(st->xml, t->ns);
        break;
    case SW_DROP:
        printf("drop");
        break;
    case SW_BOUNCE:
        printf("bounce %s", cond);
        reply = sw_stanza_error_reply(st, NULL, cond, NULL);
        if (reply != NULL) {
            skywaved_ptest_print(reply->xml, t->ns);
            sw_stanza_unref(reply);
        }
        break;
    default:
        printf("taken");
        break;
    }
    printf("\n");
    sw_stanza_unref(st);
}

static void
skywaved_ptest_close(void *ud)
{
    (void) ud;
}

static void
skywaved_ptest_error(void *ud, const char *condition, const char *text)
{
    skywaved_ptest_t *t = ud;

    fprintf(stderr, "skywaved: standard input after stanza %u: %s%s%s\n",
            t->n, condition, text ? ": " : "", text ? text : "");
    t->failed = true;
}

/*
 * skywaved --policy-test POLICY [--chain NAME] < stanzas.xml: the
 * stanzas (top-level elements, in jabber:client unless they say
 * otherwise) go through the policy's chain one by one; a line per
 * stanza: its number, the verdict and what would be sent (the stanza as
 * folded, or the error a bounce returns).  Exit status 1 if the policy
 * does not load or the input is not XML.
 */
static int
skywaved_policy_test(const char *path, const char *chain)
{
    static const char *const chains[] = {
        "outbound", "inbound", "preroute", "deliver", NULL
    };
    static const char head[] = "<stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const sw_xmlstream_cb_t cb = {
        skywaved_ptest_open, skywaved_ptest_element, skywaved_ptest_close,
        skywaved_ptest_error
    };
    skywaved_ptest_t  t = { NULL, chain, SW_NS_CLIENT, 0, 0, false };
    sw_xmlstream_t   *xs;
    char              err[1024], buf[65536];
    size_t            n, used;
    int               i;

    t.policy = sw_policy_load(path, NULL, err, sizeof(err));
    if (t.policy == NULL) {
        fprintf(stderr, "skywaved: %s\n", err);
        return 1;
    }
    for (i = 0; t.chain == NULL && chains[i] != NULL; i++) {
        if (sw_policy_has(t.policy, chains[i])) {
            t.chain = chains[i];
        }
    }
    if (t.chain == NULL || !sw_policy_has(t.policy, t.chain)) {
        fprintf(stderr, "skywaved: %s has no %s chain\n", path,
                t.chain ? t.chain : "filter");
        sw_policy_unref(t.policy);
        return 1;
    }
    printf("# policy %s, chain %s, Lua state %zu bytes\n",
           sw_policy_name(t.policy), t.chain, sw_policy_memory(t.policy));
    xs = sw_xmlstream_new(NULL, &cb, &t);
    sw_xmlstream_feed(xs, head, sizeof(head) - 1, &used);
    while (!t.failed && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        if (sw_xmlstream_feed(xs, buf, n, &used) != SW_OK) {
            t.failed = true;
        }
    }
    sw_xmlstream_free(xs);
    printf("# %u stanzas, %llu policy errors\n", t.n,
           (unsigned long long) sw_policy_failures(t.policy));
    sw_policy_unref(t.policy);
    return t.failed ? 1 : 0;
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
        { "policy-test", required_argument, NULL, 'P' },
        { "chain", required_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = SW_SYSCONF_DIR "/skywave.cfg.lua";
    const char *mpath = NULL, *policy = NULL, *chain = NULL;
    bool        test = false, list_options = false, list_events = false;
    int         c, rc;

    while ((c = getopt_long(argc, argv, "c:tM:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 't': test = true; break;
        case 'O': list_options = true; break;
        case 'E': list_events = true; break;
        case 'M': mpath = optarg; break;
        case 'P': policy = optarg; break;
        case 'C': chain = optarg; break;
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
    if (chain != NULL && policy == NULL) {
        fprintf(stderr, "skywaved: --chain goes with --policy-test\n");
        return 2;
    }
    if (policy != NULL) {
        return skywaved_policy_test(policy, chain);
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
