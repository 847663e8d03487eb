/*
 * The module loader with real test-only modules (tests/modules): order of
 * requirements, options per host, ABI and signature refusal, services,
 * owners released at stop.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

/* Mirrors tests/modules/mod_testmod.c's conf (a test knows its module). */
typedef struct {
    const char  *greeting;
    int64_t      count;
    bool         enabled;
    double       interval;
} testmod_conf_t;

static char logbuf[8192];

static void
sink(sw_log_level_e level, const char *line, void *ud)
{
    if (level <= SW_LOG_WARN) {
        strncat(logbuf, line, sizeof(logbuf) - strlen(logbuf) - 2);
        strcat(logbuf, "\n");
    }
}

static int
setup(void **state)
{
    logbuf[0] = '\0';
    sw_log_set_sink(sink, NULL);
    sw_module_set_path(SW_TEST_BUILDDIR "/tests/modules");
    sw_router_init();
    return 0;
}

static int
teardown(void **state)
{
    sw_modules_stop();
    sw_modules_unload();
    sw_router_shutdown();
    sw_chain_shutdown();
    sw_hook_shutdown();
    sw_log_set_sink(NULL, NULL);
    return 0;
}

static void
test_requires_load_first_and_options_apply(void **state)
{
    static const char cfgtext[] =
        "testmod_count = 7\n"
        "testmod_greeting = 'hi all'\n"
        "VirtualHost 'example.net'\n"
        "testmod_greeting = 'hi net'\n"
        "testmod_enabled = false\n"
        "VirtualHost 'example.org' { }\n";
    const char      *names[] = { "testmod", NULL };
    sw_config_t     *cfg = sw_config_load_string("t.cfg.lua", cfgtext);
    sw_module_ctx_t *tm, *td;
    testmod_conf_t  *g, *net, *org;

    assert_non_null(cfg);
    assert_int_equal(sw_modules_load(names, cfg), SW_OK);
    td = sw_module_find("testdep");
    tm = sw_module_find("testmod");
    assert_non_null(td);
    assert_non_null(tm);
    /* testmod's load() fails unless testdep's service exists already */
    assert_non_null(sw_service_get("testdep", 1));
    assert_null(sw_service_get("testdep", 2));
    assert_non_null(sw_service_get("testmod", 1));

    g = tm->conf;
    assert_string_equal(g->greeting, "hi all");
    assert_int_equal(g->count, 7);
    assert_true(g->enabled);
    assert_true(g->interval > 29.9 && g->interval < 30.1);   /* default */
    net = sw_module_conf(tm, "example.net");
    assert_string_equal(net->greeting, "hi net");
    assert_false(net->enabled);
    assert_int_equal(net->count, 7);                    /* inherited */
    org = sw_module_conf(tm, "example.org");
    assert_string_equal(org->greeting, "hi all");
    assert_ptr_equal(sw_module_conf(tm, "unknown.host"), g);
    assert_int_equal(sw_config_check_unclaimed(cfg), SW_OK);
    assert_int_equal(sw_modules_check(), SW_OK);

    /* Stopping releases the owner: services and hooks are gone. */
    sw_modules_stop();
    assert_null(sw_service_get("testmod", 1));
    assert_int_equal(sw_hook_count(sw_hook_find("route/local")), 0);
    sw_config_free(cfg);
}

static void
test_hook_registered_by_module_routes(void **state)
{
    static const char cfgtext[] = "VirtualHost 'example.net'\n";
    const char      *names[] = { "testmod", NULL };
    sw_config_t     *cfg = sw_config_load_string("t.cfg.lua", cfgtext);
    const char      *xml = "<message xmlns='jabber:client' "
                           "to='u@example.net' from='v@example.net/r'/>";
    int             *delivered;

    assert_non_null(cfg);
    sw_host_add("example.net", "host");
    assert_int_equal(sw_modules_load(names, cfg), SW_OK);
    assert_int_equal(sw_hook_count(sw_hook_find("route/local")), 1);
    sw_route(sw_stanza_parse(xml, strlen(xml)));
    /* mod_testmod's state starts with its ctx pointer, then the count */
    delivered = (int *) ((char *) sw_module_find("testmod")->data
                         + sizeof(void *));
    assert_int_equal(*delivered, 1);
    sw_config_free(cfg);
}

static void
test_wrong_abi_refused(void **state)
{
    char want[128];

    assert_null(sw_module_open("badabi"));
    snprintf(want, sizeof(want), "module 'badabi': built for module ABI %d,"
             " this server has ABI %d", SW_MODULE_ABI + 1, SW_MODULE_ABI);
    assert_non_null(strstr(logbuf, want));
    assert_null(sw_module_find("badabi"));
}

static void
test_wrong_signature_refused(void **state)
{
    assert_null(sw_module_open("badsig"));
    assert_non_null(strstr(logbuf, "module 'badsig': build signature "
                                   "\"skywave/abi1/ptr4/long4\" does not "
                                   "match"));
}

static void
test_missing_module_named(void **state)
{
    const char *names[] = { "nosuchmodule", NULL };

    assert_int_equal(sw_modules_load(names, NULL), SW_ERROR);
    assert_non_null(strstr(logbuf, "module 'nosuchmodule': cannot load "
                                   "mod_nosuchmodule"));
    assert_null(sw_module_open("../etc/passwd"));
    assert_non_null(strstr(logbuf, "invalid name"));
}

static void
test_bad_option_value_names_file_and_line(void **state)
{
    static const char cfgtext[] = "\n\ntestmod_count = 70\n";
    const char  *names[] = { "testmod", NULL };
    sw_config_t *cfg = sw_config_load_string("bad.cfg.lua", cfgtext);

    assert_non_null(cfg);
    assert_int_equal(sw_modules_load(names, cfg), SW_ERROR);
    assert_non_null(strstr(logbuf, "bad.cfg.lua:3:"));
    assert_non_null(strstr(logbuf, "testmod_count"));
    sw_config_free(cfg);
}

static void
test_option_in_wrong_scope(void **state)
{
    static const char cfgtext[] = "VirtualHost 'example.net'\n"
                                  "testmod_count = 2\n";
    const char  *names[] = { "testmod", NULL };
    sw_config_t *cfg = sw_config_load_string("scope.cfg.lua", cfgtext);

    assert_non_null(cfg);
    assert_int_equal(sw_modules_load(names, cfg), SW_ERROR);
    assert_non_null(strstr(logbuf, "scope.cfg.lua:2:"));
    sw_config_free(cfg);
}

static void
test_check_hook_reports(void **state)
{
    static const char cfgtext[] = "testmod_greeting = 'forbidden'\n";
    const char  *names[] = { "testmod", NULL };
    sw_config_t *cfg = sw_config_load_string("t.cfg.lua", cfgtext);

    assert_non_null(cfg);
    assert_int_equal(sw_modules_load(names, cfg), SW_OK);
    assert_int_equal(sw_modules_check(), SW_ERROR);
    assert_non_null(strstr(logbuf, "may not be \"forbidden\""));
    sw_config_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_requires_load_first_and_options_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_registered_by_module_routes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_abi_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_signature_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_module_named, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_option_value_names_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_in_wrong_scope, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_hook_reports, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
