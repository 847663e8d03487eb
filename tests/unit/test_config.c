/* Config reading (sandboxed Lua) and declared options. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <skywave/skywave.h>

/* ------------------------------------------------------ log capture --- */

#define TEST_MAX_LINES 32

static char test_lines[TEST_MAX_LINES][1024];
static int  test_n_lines;

static void
test_sink(sw_log_level_e level, const char *line, void *ud)
{
    (void) ud;
    if (level == SW_LOG_ERROR && test_n_lines < TEST_MAX_LINES) {
        snprintf(test_lines[test_n_lines++], sizeof(test_lines[0]), "%s",
                 line);
    }
}

static int
test_setup(void **state)
{
    (void) state;
    test_n_lines = 0;
    sw_log_set_sink(test_sink, NULL);
    return 0;
}

static int
test_teardown(void **state)
{
    (void) state;
    sw_log_set_sink(NULL, NULL);
    return 0;
}

static void
test_dump_lines(void)
{
    int i;

    for (i = 0; i < test_n_lines; i++) {
        print_message("  logged: %s\n", test_lines[i]);
    }
}

/* Some error line equals want exactly (exact) or begins with it. */
static void
test_assert_logged(const char *want, bool exact)
{
    int i;

    for (i = 0; i < test_n_lines; i++) {
        if (exact ? strcmp(test_lines[i], want) == 0
                  : strncmp(test_lines[i], want, strlen(want)) == 0)
        {
            return;
        }
    }
    print_message("expected a log line %s: %s\n",
                  exact ? "equal to" : "starting with", want);
    test_dump_lines();
    fail();
}

static void
test_load_fails(const char *text, const char *want_prefix)
{
    sw_config_t *cfg;

    test_n_lines = 0;
    cfg = sw_config_load_string("cfg.lua", text);
    if (cfg != NULL) {
        print_message("config loaded but should not: %s\n", text);
        sw_config_free(cfg);
        fail();
    }
    test_assert_logged(want_prefix, false);
}

/* ---------------------------------------------------- reading files --- */

static const char test_text[] =
    "-- a config with every form\n"                             /* 1 */
    "log_level = \"info\"\n"                                    /* 2 */
    "modules = {\n"                                             /* 3 */
    "    \"c2s\", \"s2s\",\n"                                   /* 4 */
    "}\n"                                                       /* 5 */
    "ratio = 1.5\n"                                             /* 6 */
    "tls = { key = \"a.key\", cert = \"a.pem\", more = { x = true } }\n"
    "port = 5222\n"                                             /* 8 */
    "twice = port * 2\n"                                        /* 9 */
    "VirtualHost \"example.net\" {\n"                           /* 10 */
    "    c2s_require_encryption = true,\n"                      /* 11 */
    "\n"                                                        /* 12 */
    "    c2s_port = 5223,\n"                                    /* 13 */
    "}\n"                                                       /* 14 */
    "after_block = \"global\"\n"                                /* 15 */
    "VirtualHost \"other.net\"\n"                               /* 16 */
    "c2s_require_encryption = false\n"                          /* 17 */
    "copy = log_level .. \"!\"\n"                               /* 18 */
    "Component \"muc.example.net\" \"muc\" { max_rooms = 10 }\n"/* 19 */
    "Peer \"hq\" {\n"                                           /* 20 */
    "    address = \"10.0.0.1\",\n"                             /* 21 */
    "}\n"                                                       /* 22 */
    "Component \"ext.example.net\"\n"                           /* 23 */
    "secret = \"s\"\n"                                          /* 24 */
    "c2s_port = 1\n";                                           /* 25 */

static void
test_read_sections(void **state)
{
    sw_config_t   *cfg;
    sw_csection_t *g, *s;
    sw_centry_t   *e;
    sw_cval_t     *v;

    (void) state;
    cfg = sw_config_load_string("cfg.lua", test_text);
    if (cfg == NULL) {
        test_dump_lines();
    }
    assert_non_null(cfg);
    assert_int_equal(test_n_lines, 0);
    assert_string_equal(cfg->file, "cfg.lua");
    assert_int_equal(cfg->n_sections, 6);

    g = sw_config_global(cfg);
    assert_ptr_equal(g, &cfg->sections[0]);
    assert_int_equal(g->scope, SW_SCOPE_GLOBAL);
    assert_null(g->name);
    assert_int_equal(g->n_entries, 7);

    e = sw_config_entry(g, "log_level");
    assert_non_null(e);
    assert_int_equal(e->line, 2);
    assert_int_equal(e->val->type, SW_CVAL_STRING);
    assert_string_equal(e->val->str, "info");
    assert_false(e->claimed);

    /* Lua says line 5 (where the value ends); we want the key's line */
    e = sw_config_entry(g, "modules");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->val->type, SW_CVAL_LIST);
    assert_int_equal(e->val->n, 2);
    assert_string_equal(e->val->items[0]->str, "c2s");
    assert_string_equal(e->val->items[1]->str, "s2s");

    e = sw_config_entry(g, "ratio");
    assert_int_equal(e->val->type, SW_CVAL_NUMBER);
    assert_true(e->val->num == 1.5);

    e = sw_config_entry(g, "tls");
    assert_int_equal(e->line, 7);
    v = e->val;
    assert_int_equal(v->type, SW_CVAL_TABLE);
    assert_int_equal(v->n, 3);
    assert_string_equal(v->keys[0], "cert");     /* sorted */
    assert_string_equal(v->items[0]->str, "a.pem");
    assert_string_equal(v->keys[1], "key");
    assert_string_equal(v->keys[2], "more");
    assert_int_equal(v->items[2]->type, SW_CVAL_TABLE);
    assert_string_equal(v->items[2]->keys[0], "x");
    assert_int_equal(v->items[2]->items[0]->type, SW_CVAL_BOOL);
    assert_true(v->items[2]->items[0]->b);

    /* reading a global set earlier */
    e = sw_config_entry(g, "twice");
    assert_int_equal(e->line, 9);
    assert_true(e->val->num == 10444);

    /* after a block, assignments are global again */
    e = sw_config_entry(g, "after_block");
    assert_non_null(e);
    assert_int_equal(e->line, 15);

    s = sw_config_section(cfg, SW_SCOPE_HOST, "example.net");
    assert_non_null(s);
    assert_int_equal(s->line, 10);
    assert_int_equal(s->n_entries, 2);
    e = sw_config_entry(s, "c2s_require_encryption");
    assert_int_equal(e->line, 11);
    assert_int_equal(e->val->type, SW_CVAL_BOOL);
    assert_true(e->val->b);
    e = sw_config_entry(s, "c2s_port");
    assert_int_equal(e->line, 13);
    assert_true(e->val->num == 5223);

    s = sw_config_section(cfg, SW_SCOPE_HOST, "other.net");
    assert_non_null(s);
    assert_int_equal(s->line, 16);
    assert_int_equal(s->n_entries, 2);
    e = sw_config_entry(s, "c2s_require_encryption");
    assert_int_equal(e->line, 17);
    assert_false(e->val->b);
    /* a global read from inside a section */
    e = sw_config_entry(s, "copy");
    assert_int_equal(e->line, 18);
    assert_string_equal(e->val->str, "info!");

    s = sw_config_section(cfg, SW_SCOPE_COMPONENT, "muc.example.net");
    assert_non_null(s);
    assert_string_equal(s->component, "muc");
    assert_int_equal(s->line, 19);
    e = sw_config_entry(s, "max_rooms");
    assert_non_null(e);
    assert_int_equal(e->line, 19);  /* on the section's own line */

    s = sw_config_section(cfg, SW_SCOPE_PEER, "hq");
    assert_non_null(s);
    assert_int_equal(s->line, 20);
    assert_null(s->component);
    e = sw_config_entry(s, "address");
    assert_int_equal(e->line, 21);
    assert_string_equal(e->val->str, "10.0.0.1");

    s = sw_config_section(cfg, SW_SCOPE_COMPONENT, "ext.example.net");
    assert_non_null(s);
    assert_null(s->component);
    assert_int_equal(sw_config_entry(s, "secret")->line, 24);
    assert_int_equal(sw_config_entry(s, "c2s_port")->line, 25);

    assert_null(sw_config_section(cfg, SW_SCOPE_HOST, "hq"));
    assert_null(sw_config_section(cfg, SW_SCOPE_HOST, "nowhere.net"));
    assert_null(sw_config_entry(g, "nothing"));
    sw_config_free(cfg);
}

/* The block heuristic must not take a later section's line for a key. */
static void
test_block_line_heuristic(void **state)
{
    sw_config_t   *cfg;
    sw_csection_t *a, *b;

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "VirtualHost \"a\" { x = 1,\n"                      /* 1 */
        "  -- y comes later\n"                              /* 2 */
        "  y = {\n"                                         /* 3 */
        "    1, 2 },\n"                                     /* 4 */
        "}\n"                                               /* 5 */
        "VirtualHost \"b\"\n"                               /* 6 */
        "x = 2\n");                                         /* 7 */
    assert_non_null(cfg);
    a = sw_config_section(cfg, SW_SCOPE_HOST, "a");
    b = sw_config_section(cfg, SW_SCOPE_HOST, "b");
    assert_int_equal(sw_config_entry(a, "x")->line, 1);
    assert_int_equal(sw_config_entry(a, "y")->line, 3);
    assert_int_equal(sw_config_entry(b, "x")->line, 7);
    sw_config_free(cfg);
}

static void
test_syntax_error(void **state)
{
    (void) state;
    test_load_fails("a = 1\nb = = 2\n", "cfg.lua:2: unexpected symbol");
    test_load_fails("a = 1\n\nVirtualHost \"x\" {\n  y = 1\n  z = 2\n}\n",
                    "cfg.lua:5: '}' expected (to close '{' at line 3)");
    /* binary chunks are refused */
    test_load_fails("\x1bLua", "cfg.lua: attempt to load a binary chunk");
}

static void
test_runtime_error(void **state)
{
    (void) state;
    test_load_fails("a = 1\n\nundefined_fn()\n",
                    "cfg.lua:3: attempt to call a nil value "
                    "(global 'undefined_fn')");
    /* error without a position gets the line the hook saw */
    test_load_fails("a = 1\nerror('boom', 0)\n", "cfg.lua:2: boom");
    test_load_fails("a = 1\nerror({})\n",
                    "cfg.lua:2: error object is a table value");
    test_load_fails("VirtualHost()\n", "cfg.lua:1: VirtualHost expects a "
                    "name (a non-empty string), got no value");
    test_load_fails("Peer \"p\" (42)\n", "cfg.lua:1: Peer \"p\": expected "
                    "a table of options, got number");
    test_load_fails("VirtualHost \"p\" { 1, 2 }\n", "cfg.lua:1: "
                    "VirtualHost \"p\": options must be written as "
                    "name = value");
    test_load_fails("Component \"c\" \"muc\" \"x\"\n", "cfg.lua:1: "
                    "Component \"c\": expected a table of options");
}

static void
test_instruction_budget(void **state)
{
    (void) state;
    test_load_fails("a = 1\nwhile true do end\n",
                    "cfg.lua:2: the config ran more than 10000000 "
                    "instructions");
    test_load_fails("local function f()\n  return f()\nend\n"
                    "a = 1\nf()\n",
                    "cfg.lua:2: the config ran more than");
}

/*
 * What the budget hook cannot see: work inside one C call, and work per
 * instruction.  Each of these ran for minutes, without end, or out of
 * memory under tests/fuzz/fuzz_config before the fix (reproducers in
 * tests/fuzz/corpus/config/hang-* and oom-*).
 */
static void
test_time_budget(void **state)
{
    sw_config_t *cfg;
    sw_centry_t *e;

    (void) state;
    /* backtracking patterns and quadratic plain find: not offered */
    test_load_fails("a = 1\nx = ('a'):rep(100000):find(('.-'):rep(30))\n",
                    "cfg.lua:2: attempt to call a nil value (method "
                    "'find')");
    test_load_fails("x = string.gsub('a', 'a', 'b')\n", "cfg.lua:1: "
                    "attempt to call a nil value (field 'gsub')");
    test_load_fails("x = string.match('a', 'a')\n", "cfg.lua:1: attempt "
                    "to call a nil value (field 'match')");
    test_load_fails("x = string.gmatch('a', 'a')\n", "cfg.lua:1: attempt "
                    "to call a nil value (field 'gmatch')");
    test_load_fails("x = table.move({}, 1, 1e15, 2)\n", "cfg.lua:1: "
                    "attempt to call a nil value (field 'move')");
    /* the strings' metatable is not handed out (its __len, __newindex
     * would let table.insert loop in C) */
    test_load_fails("getmetatable('').__index = nil\n", "cfg.lua:1: "
                    "attempt to index a boolean value");
    /* each instruction copies 8 MB: within the instruction budget, but
     * not within the time budget */
    test_load_fails("local s = ('x'):rep(8000000)\n"
                    "while true do local t = s .. 'y' end\n",
                    "cfg.lua:2: the config ran for more than 2000 ms");
    /* a table used many times over: 30^7 values to copy */
    test_load_fails("local a = { 1 }\n"
                    "for i = 1, 7 do\n"
                    "  local b = {}\n"
                    "  for j = 1, 30 do b[j] = a end\n"
                    "  a = b\n"
                    "end\n"
                    "x = a\n",
                    "cfg.lua:7: option 'x");

    /* string.rep of nothing is nothing, at once */
    cfg = sw_config_load_string("cfg.lua", "x = string.rep('', 1e15)\n"
                                "y = ('ab'):rep(3, ',')\n");
    assert_non_null(cfg);
    e = sw_config_entry(sw_config_global(cfg), "x");
    assert_string_equal(e->val->str, "");
    e = sw_config_entry(sw_config_global(cfg), "y");
    assert_string_equal(e->val->str, "ab,ab,ab");
    sw_config_free(cfg);
}

static void
test_memory_cap(void **state)
{
    (void) state;
    test_load_fails("a = 1\nlocal s = 'x'\nfor i = 1, 40 do s = s .. s end\n",
                    "cfg.lua:3: the config uses more than 16 MB of memory");
    test_load_fails("a = 1\n\nlocal s = string.rep('x', 1 << 30)\n",
                    "cfg.lua:3: the config uses more than 16 MB");
    test_load_fails("local t = {}\n"
                    "for i = 1, 1e9 do t[i] = {} end\n",
                    "cfg.lua:2: the config uses more than 16 MB");
}

static void
test_sandbox(void **state)
{
    (void) state;
    test_load_fails("a = 1\nio.open('/etc/passwd')\n",
                    "cfg.lua:2: attempt to index a nil value (global 'io')");
    test_load_fails("os.exit(1)\n",
                    "cfg.lua:1: attempt to index a nil value (global 'os')");
    test_load_fails("x = 1\nrequire('socket')\n", "cfg.lua:2: attempt to "
                    "call a nil value (global 'require')");
    test_load_fails("load('x = 1')()\n", "cfg.lua:1: attempt to call a nil "
                    "value (global 'load')");
    test_load_fails("dofile('/etc/passwd')\n", "cfg.lua:1: attempt to call "
                    "a nil value (global 'dofile')");
    test_load_fails("loadfile('/etc/passwd')\n", "cfg.lua:1: attempt to "
                    "call a nil value (global 'loadfile')");
    test_load_fails("debug.getinfo(1)\n", "cfg.lua:1: attempt to index a "
                    "nil value (global 'debug')");
    test_load_fails("package.loadlib('x', 'y')\n", "cfg.lua:1: attempt to "
                    "index a nil value (global 'package')");
    test_load_fails("rawset(_G, 'x', 1)\n", "cfg.lua:1: attempt to call a "
                    "nil value (global 'rawset')");
    test_load_fails("pcall(print)\n", "cfg.lua:1: attempt to call a nil "
                    "value (global 'pcall')");
    test_load_fails("collectgarbage()\n", "cfg.lua:1: attempt to call a "
                    "nil value (global 'collectgarbage')");
    test_load_fails("\nsetmetatable(_G, nil)\n", "cfg.lua:2: attempt to call "
                    "a nil value (global 'setmetatable')");
    test_load_fails("\ngetmetatable(_G).__newindex = nil\n", "cfg.lua:2: "
                    "attempt to index a boolean value");
    test_load_fails("string.dump(function() end)\nio = 1\n"
                    "local x = io.open\n",
                    "cfg.lua:3: attempt to index a number value");
}

static void
test_sandbox_allows_libraries(void **state)
{
    sw_config_t *cfg;
    sw_centry_t *e;

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "local hosts = {}\n"
        "for i = 1, 3 do hosts[#hosts + 1] = string.format('h%d', i) end\n"
        "names = table.concat(hosts, ',')\n"
        "biggest = math.max(3, 9, 4)\n"
        "kind = type(names)\n"
        "_G.via_g = 'yes'\n"
        "modules = { 'c2s' }\n"
        "table.insert(modules, 'muc')\n"
        "VirtualHost 'h'\n"
        "table.insert(modules, 'pep')\n"
        "port = 5222\n"
        "port_copy = port + 1\n");
    assert_non_null(cfg);
    /* reading a global gives the value itself: changes to it count */
    e = sw_config_entry(sw_config_global(cfg), "modules");
    assert_int_equal(e->line, 7);
    assert_int_equal(e->val->n, 3);
    assert_string_equal(e->val->items[0]->str, "c2s");
    assert_string_equal(e->val->items[1]->str, "muc");
    assert_string_equal(e->val->items[2]->str, "pep");
    /* a value set earlier in the same section */
    e = sw_config_entry(sw_config_section(cfg, SW_SCOPE_HOST, "h"),
                        "port_copy");
    assert_true(e->val->num == 5223);
    e = sw_config_entry(sw_config_global(cfg), "names");
    assert_string_equal(e->val->str, "h1,h2,h3");
    e = sw_config_entry(sw_config_global(cfg), "biggest");
    assert_true(e->val->num == 9);
    e = sw_config_entry(sw_config_global(cfg), "kind");
    assert_string_equal(e->val->str, "string");
    e = sw_config_entry(sw_config_global(cfg), "via_g");
    assert_non_null(e);
    assert_int_equal(e->line, 6);
    sw_config_free(cfg);
}

static void
test_duplicates(void **state)
{
    (void) state;
    test_load_fails("VirtualHost \"a\"\nx = 1\nVirtualHost \"a\"\n",
                    "cfg.lua:3: VirtualHost \"a\" declared twice "
                    "(first at line 1)");
    test_load_fails("Peer \"p\" { }\n\nPeer \"p\" { }\n",
                    "cfg.lua:3: Peer \"p\" declared twice (first at "
                    "line 1)");
    test_load_fails("x = 1\ny = 2\nx = 3\n",
                    "cfg.lua:3: option 'x' set twice in the global section "
                    "(first at line 1)");
    test_load_fails("Component \"c\" \"m\"\n  a = 1\n\n  a = 2\n",
                    "cfg.lua:4: option 'a' set twice in Component \"c\" "
                    "(first at line 2)");
}

static void
test_duplicates_distinct_ok(void **state)
{
    sw_config_t *cfg;

    (void) state;
    /* same name in another scope, same key in another section: fine */
    cfg = sw_config_load_string("cfg.lua",
        "x = 1\nVirtualHost \"a\"\nx = 2\nPeer \"a\" { x = 3 }\n");
    assert_non_null(cfg);
    assert_int_equal(cfg->n_sections, 3);
    sw_config_free(cfg);
}

static void
test_unsupported_values(void **state)
{
    (void) state;
    test_load_fails("x = 1\nf = function() end\n",
                    "cfg.lua:2: option 'f': unsupported value type function");
    test_load_fails("m = { 1, a = 2 }\n", "cfg.lua:1: option 'm': "
                    "unsupported value type table with both named and "
                    "numbered entries");
    test_load_fails("l = {\n  'a',\n  print,\n}\n", "cfg.lua:1: option "
                    "'l[2]': unsupported value type function");
    test_load_fails("VirtualHost \"h\" {\n  t = { ok = 1,\n  "
                    "bad = print } }\n", "cfg.lua:2: option 't.bad': "
                    "unsupported value type function");
    test_load_fails("x = nil\n", "cfg.lua:1: option 'x': unsupported value "
                    "type nil");
    test_load_fails("local t = {}\nt.t = t\nx = t\n", "cfg.lua:3: option "
                    "'x.t.t.t.t.t.t.t.t': tables nested more than 8 deep");
    test_load_fails("s = 'a\\0b'\n", "cfg.lua:1: option 's': string "
                    "contains a NUL byte");
}

/* ------------------------------------------------------------ options --- */

typedef struct test_conf_s {
    bool          enabled;
    int64_t       port;
    size_t        buffer;
    double        timeout;
    const char   *server_name;
    const char   *data_dir;
    int           level;
    const char  **modules;
    const char   *address;
} test_conf_t;

static const char *const test_levels[] = {
    "error", "warn", "info", "debug", NULL
};

#define TEST_GH (SW_SCOPE_GLOBAL | SW_SCOPE_HOST)

static const sw_option_t test_opts[] = {
    { "enabled", SW_OPT_BOOL, offsetof(test_conf_t, enabled), TEST_GH,
      SW_OPT_RELOADABLE, 0, 0, "true", NULL, "Serve this host" },
    { "c2s_port", SW_OPT_INT, offsetof(test_conf_t, port), TEST_GH, 0,
      1, 65535, "5222", NULL, "Client port" },
    { "buffer", SW_OPT_SIZE, offsetof(test_conf_t, buffer), TEST_GH, 0,
      1024, 1024 * 1024, "256k", NULL, "Read buffer" },
    { "timeout", SW_OPT_DURATION, offsetof(test_conf_t, timeout), TEST_GH,
      SW_OPT_RELOADABLE, 100, 300000, "30s", NULL, "Idle timeout" },
    { "server_name", SW_OPT_STRING, offsetof(test_conf_t, server_name),
      TEST_GH, 0, 0, 0, "skywave", NULL, "Name" },
    { "data_dir", SW_OPT_PATH, offsetof(test_conf_t, data_dir),
      SW_SCOPE_GLOBAL, 0, 0, 0, "/var/lib/skywave", NULL, "Data" },
    { "log_level", SW_OPT_ENUM, offsetof(test_conf_t, level),
      SW_SCOPE_GLOBAL, SW_OPT_RELOADABLE, 0, 0, "info", test_levels,
      "Log level" },
    { "modules", SW_OPT_STRLIST, offsetof(test_conf_t, modules),
      SW_SCOPE_GLOBAL, 0, 0, 0, "c2s, s2s", NULL, "Modules to load" },
    SW_OPTION_END
};

static const sw_option_t test_peer_opts[] = {
    { "address", SW_OPT_STRING, offsetof(test_conf_t, address),
      SW_SCOPE_PEER, SW_OPT_REQUIRED, 0, 0, NULL, NULL, "Peer address" },
    { "buffer", SW_OPT_SIZE, offsetof(test_conf_t, buffer),
      SW_SCOPE_PEER | SW_SCOPE_GLOBAL, SW_OPT_REQUIRED, 0, 0, NULL, NULL,
      "Peer buffer" },
    SW_OPTION_END
};

static void
test_defaults(void **state)
{
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    memset(&conf, 0xa5, sizeof(conf));
    assert_int_equal(sw_options_defaults(test_opts, &conf, pool), SW_OK);
    assert_true(conf.enabled);
    assert_int_equal(conf.port, 5222);
    assert_int_equal(conf.buffer, 256 * 1024);
    assert_true(conf.timeout == 30.0);
    assert_string_equal(conf.server_name, "skywave");
    assert_string_equal(conf.data_dir, "/var/lib/skywave");
    assert_int_equal(conf.level, 2);
    assert_non_null(conf.modules);
    assert_string_equal(conf.modules[0], "c2s");
    assert_string_equal(conf.modules[1], "s2s");
    assert_null(conf.modules[2]);

    /* no default: zeroed */
    memset(&conf, 0xa5, sizeof(conf));
    assert_int_equal(sw_options_defaults(test_peer_opts, &conf, pool),
                     SW_OK);
    assert_null(conf.address);
    assert_int_equal(conf.buffer, 0);
    sw_pool_free(pool);
}

static void
test_bad_default(void **state)
{
    static const sw_option_t bad[] = {
        { "n", SW_OPT_INT, 0, SW_SCOPE_GLOBAL, 0, 1, 10, "20", NULL, "" },
        SW_OPTION_END
    };
    int64_t    n;
    sw_pool_t *pool = sw_pool_new(0);

    (void) state;
    assert_int_equal(sw_options_defaults(bad, &n, pool), SW_ERROR);
    test_assert_logged("option 'n': bad default \"20\": expected an integer "
                       "from 1 to 10, got 20", true);
    sw_pool_free(pool);
}

static void
test_apply_values(void **state)
{
    sw_config_t *cfg;
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);
    char         want[4200];

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "enabled = false\n"
        "c2s_port = 5269\n"
        "buffer = \"2M\"\n"
        "timeout = \"500ms\"\n"
        "server_name = \"sky\"\n"
        "data_dir = \"data/sky\"\n"
        "log_level = \"debug\"\n"
        "modules = { \"a\", \"b\", \"c\" }\n"
        "VirtualHost \"h\"\n"
        "buffer = 4096\n"
        "timeout = 1.5\n"
        "c2s_port = 65535\n");
    assert_non_null(cfg);
    assert_int_equal(sw_options_defaults(test_opts, &conf, pool), SW_OK);
    /* out of the (1k..1M) bounds for buffer: "2M" must fail, rest apply */
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                                      sw_config_global(cfg), pool),
                     SW_ERROR);
    test_assert_logged("cfg.lua:3: option 'buffer': expected a size from 1k "
                       "to 1M, got \"2M\"", true);
    assert_int_equal(test_n_lines, 1);
    assert_false(conf.enabled);
    assert_int_equal(conf.port, 5269);
    assert_true(conf.timeout == 0.5);
    assert_string_equal(conf.server_name, "sky");
    snprintf(want, sizeof(want), "%s/data/sky", cfg->dir);
    assert_string_equal(conf.data_dir, want);
    assert_int_equal(conf.level, 3);
    assert_string_equal(conf.modules[2], "c");
    assert_null(conf.modules[3]);
    assert_true(sw_config_entry(sw_config_global(cfg), "enabled")->claimed);

    test_n_lines = 0;
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_HOST, "h"), pool),
                     SW_OK);
    assert_int_equal(test_n_lines, 0);
    assert_int_equal(conf.buffer, 4096);
    assert_true(conf.timeout == 1.5);
    assert_int_equal(conf.port, 65535);
    assert_int_equal(sw_config_check_unclaimed(cfg), SW_OK);
    sw_config_free(cfg);
    sw_pool_free(pool);
}

/* One value of one option: SW_OK or the logged message. */
static int
test_apply_one(const char *text, test_conf_t *conf, sw_pool_t *pool)
{
    sw_config_t *cfg;
    int          rc;

    test_n_lines = 0;
    cfg = sw_config_load_string("cfg.lua", text);
    assert_non_null(cfg);
    sw_options_defaults(test_opts, conf, pool);
    rc = sw_options_apply(test_opts, conf, cfg, sw_config_global(cfg), pool);
    sw_config_free(cfg);
    return rc;
}

static void
test_apply_ok(const char *text, test_conf_t *conf, sw_pool_t *pool)
{
    if (test_apply_one(text, conf, pool) != SW_OK) {
        print_message("refused: %s\n", text);
        test_dump_lines();
        fail();
    }
}

static void
test_apply_err(const char *text, const char *want)
{
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    if (test_apply_one(text, &conf, pool) != SW_ERROR) {
        print_message("accepted: %s\n", text);
        fail();
    }
    test_assert_logged(want, true);
    sw_pool_free(pool);
}

static void
test_sizes_and_durations(void **state)
{
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    test_apply_ok("buffer = '4k'", &conf, pool);
    assert_int_equal(conf.buffer, 4096);
    test_apply_ok("buffer = '4K'", &conf, pool);
    assert_int_equal(conf.buffer, 4096);
    test_apply_ok("buffer = '1M'", &conf, pool);
    assert_int_equal(conf.buffer, 1024 * 1024);
    test_apply_ok("buffer = '2048'", &conf, pool);
    assert_int_equal(conf.buffer, 2048);
    test_apply_ok("timeout = '5m'", &conf, pool);
    assert_true(conf.timeout == 300.0);
    test_apply_ok("timeout = '30s'", &conf, pool);
    assert_true(conf.timeout == 30.0);
    test_apply_ok("timeout = '0.1s'", &conf, pool);
    assert_true(conf.timeout > 0.0999 && conf.timeout < 0.1001);
    test_apply_ok("timeout = 2", &conf, pool);
    assert_true(conf.timeout == 2.0);
    sw_pool_free(pool);

    /* a size without bounds can be large: G suffix */
    {
        static const sw_option_t big[] = {
            { "quota", SW_OPT_SIZE, 0, SW_SCOPE_GLOBAL, 0, 0, 0, "1G", NULL,
              "" },
            { "ttl", SW_OPT_DURATION, sizeof(size_t), SW_SCOPE_GLOBAL, 0, 0,
              0, "2h", NULL, "" },
            SW_OPTION_END
        };
        struct { size_t quota; double ttl; } c;

        pool = sw_pool_new(0);
        assert_int_equal(sw_options_defaults(big, &c, pool), SW_OK);
        assert_int_equal(c.quota, (size_t) 1 << 30);
        assert_true(c.ttl == 7200.0);
        sw_pool_free(pool);
    }
}

static void
test_option_errors(void **state)
{
    (void) state;
    test_apply_err("\nenabled = 'yes'\n", "cfg.lua:2: option 'enabled': "
                   "expected true or false, got \"yes\"");
    test_apply_err("enabled = 1\n", "cfg.lua:1: option 'enabled': "
                   "expected true or false, got 1");
    test_apply_err("x = 1\n\n\n\n\n\nc2s_port = 70000\n", "cfg.lua:7: "
                   "option 'c2s_port': expected an integer from 1 to 65535, "
                   "got 70000");
    test_apply_err("c2s_port = 0\n", "cfg.lua:1: option 'c2s_port': "
                   "expected an integer from 1 to 65535, got 0");
    test_apply_err("c2s_port = 52.5\n", "cfg.lua:1: option 'c2s_port': "
                   "expected an integer from 1 to 65535, got 52.5");
    test_apply_err("c2s_port = '5222'\n", "cfg.lua:1: option 'c2s_port': "
                   "expected an integer from 1 to 65535, got \"5222\"");
    test_apply_err("log_level = 'verbose'\n", "cfg.lua:1: option "
                   "'log_level': expected one of \"error\", \"warn\", "
                   "\"info\", \"debug\", got \"verbose\"");
    test_apply_err("buffer = '10X'\n", "cfg.lua:1: option 'buffer': "
                   "expected a size (a number of bytes, or a string such "
                   "as \"256k\", \"2M\", \"1G\"), got \"10X\"");
    test_apply_err("buffer = '10m'\n", "cfg.lua:1: option 'buffer': "
                   "expected a size (a number of bytes, or a string such "
                   "as \"256k\", \"2M\", \"1G\"), got \"10m\"");
    test_apply_err("buffer = '4kk'\n", "cfg.lua:1: option 'buffer': "
                   "expected a size (a number of bytes, or a string such "
                   "as \"256k\", \"2M\", \"1G\"), got \"4kk\"");
    test_apply_err("buffer = -4096\n", "cfg.lua:1: option 'buffer': "
                   "expected a size (a number of bytes, or a string such "
                   "as \"256k\", \"2M\", \"1G\"), got -4096");
    test_apply_err("buffer = 512\n", "cfg.lua:1: option 'buffer': "
                   "expected a size from 1k to 1M, got 512");
    test_apply_err("timeout = '5 minutes'\n", "cfg.lua:1: option 'timeout': "
                   "expected a duration (seconds, or a string such as "
                   "\"500ms\", \"30s\", \"5m\", \"2h\"), got \"5 minutes\"");
    test_apply_err("timeout = '1d'\n", "cfg.lua:1: option 'timeout': "
                   "expected a duration (seconds, or a string such as "
                   "\"500ms\", \"30s\", \"5m\", \"2h\"), got \"1d\"");
    test_apply_err("timeout = true\n", "cfg.lua:1: option 'timeout': "
                   "expected a duration (seconds, or a string such as "
                   "\"500ms\", \"30s\", \"5m\", \"2h\"), got true");
    test_apply_err("timeout = '10m'\n", "cfg.lua:1: option 'timeout': "
                   "expected a duration from 100ms to 5m, got \"10m\"");
    test_apply_err("timeout = 0.05\n", "cfg.lua:1: option 'timeout': "
                   "expected a duration from 100ms to 5m, got 0.05");
    test_apply_err("server_name = 42\n", "cfg.lua:1: option 'server_name': "
                   "expected a string, got 42");
    test_apply_err("data_dir = ''\n", "cfg.lua:1: option 'data_dir': "
                   "expected a non-empty path, got \"\"");
    test_apply_err("modules = { 'a', 5 }\n", "cfg.lua:1: option 'modules': "
                   "expected a list of strings, got 5 as item 2");
    test_apply_err("modules = { a = 'b' }\n", "cfg.lua:1: option "
                   "'modules': expected a list of strings, got a table");
}

static void
test_strlist_single_and_path_absolute(void **state)
{
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    test_apply_ok("modules = 'only'\ndata_dir = '/srv/sky'\n", &conf, pool);
    assert_string_equal(conf.modules[0], "only");
    assert_null(conf.modules[1]);
    assert_string_equal(conf.data_dir, "/srv/sky");
    test_apply_ok("modules = {}\n", &conf, pool);
    assert_non_null(conf.modules);
    assert_null(conf.modules[0]);
    sw_pool_free(pool);
}

static void
test_wrong_scope(void **state)
{
    sw_config_t *cfg;
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "VirtualHost \"example.net\"\n"
        "modules = { \"c2s\" }\n"
        "Peer \"hq\" {\n"
        "    c2s_port = 1,\n"
        "}\n");
    assert_non_null(cfg);
    sw_options_defaults(test_opts, &conf, pool);
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_HOST, "example.net"),
                     pool), SW_ERROR);
    test_assert_logged("cfg.lua:2: option 'modules' is not allowed in "
                       "VirtualHost \"example.net\" (allowed: global)", true);
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_PEER, "hq"), pool),
                     SW_ERROR);
    test_assert_logged("cfg.lua:4: option 'c2s_port' is not allowed in "
                       "Peer \"hq\" (allowed: global, VirtualHost)", true);
    /* wrong scope is an error, but not an unknown option as well */
    test_n_lines = 0;
    assert_int_equal(sw_config_check_unclaimed(cfg), SW_OK);
    assert_int_equal(test_n_lines, 0);
    sw_config_free(cfg);
    sw_pool_free(pool);
}

static void
test_unknown_options(void **state)
{
    sw_config_t *cfg;
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "log_levle = \"info\"\n"
        "VirtualHost \"example.net\"\n"
        "c2s_prot = 5222\n"
        "zzz_totally = 1\n"
        "c2s_port = 5222\n");
    assert_non_null(cfg);
    sw_options_defaults(test_opts, &conf, pool);
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_global(cfg), pool), SW_OK);
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_HOST, "example.net"),
                     pool), SW_OK);
    /* applying twice notes the table once */
    assert_int_equal(cfg->n_known, 1);
    test_n_lines = 0;
    assert_int_equal(sw_config_check_unclaimed(cfg), SW_ERROR);
    assert_int_equal(test_n_lines, 3);
    test_assert_logged("cfg.lua:1: unknown option 'log_levle' in the global "
                       "section; did you mean 'log_level'?", true);
    test_assert_logged("cfg.lua:3: unknown option 'c2s_prot' in VirtualHost "
                       "\"example.net\"; did you mean 'c2s_port'?", true);
    test_assert_logged("cfg.lua:4: unknown option 'zzz_totally' in "
                       "VirtualHost \"example.net\"", true);
    sw_config_free(cfg);
    sw_pool_free(pool);
}

static void
test_note_options_grows(void **state)
{
    static sw_option_t tables[10][2];
    sw_config_t *cfg;
    char         names[10][16];
    int          i;

    (void) state;
    cfg = sw_config_load_string("cfg.lua", "opt_nine = 1\n");
    assert_non_null(cfg);
    for (i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "opt_%d", i);
        memset(tables[i], 0, sizeof(tables[i]));
        tables[i][0].name = names[i];
        sw_config_note_options(cfg, tables[i]);
    }
    assert_int_equal(cfg->n_known, 10);
    for (i = 0; i < 10; i++) {
        assert_ptr_equal(cfg->known[i], tables[i]);
    }
    test_n_lines = 0;
    assert_int_equal(sw_config_check_unclaimed(cfg), SW_ERROR);
    /* "opt_nine" is 3+ edits from any opt_N: no suggestion */
    test_assert_logged("cfg.lua:1: unknown option 'opt_nine' in the global "
                       "section", true);
    sw_config_free(cfg);
}

static void
test_required(void **state)
{
    sw_config_t *cfg;
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    cfg = sw_config_load_string("cfg.lua",
        "x = 1\n"
        "Peer \"hq\" {\n"
        "    buffer = 4096,\n"
        "}\n"
        "Peer \"field\" { address = \"10.1.1.1\" }\n");
    assert_non_null(cfg);
    sw_options_defaults(test_peer_opts, &conf, pool);
    /* globally, buffer may still come from each Peer: no error */
    assert_int_equal(sw_options_apply(test_peer_opts, &conf, cfg,
                     sw_config_global(cfg), pool), SW_OK);
    assert_int_equal(test_n_lines, 0);
    assert_int_equal(sw_options_apply(test_peer_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_PEER, "hq"), pool),
                     SW_ERROR);
    assert_int_equal(test_n_lines, 1);
    test_assert_logged("cfg.lua:2: missing required option 'address' in "
                       "Peer \"hq\"", true);
    test_n_lines = 0;
    assert_int_equal(sw_options_apply(test_peer_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_PEER, "field"), pool),
                     SW_ERROR);
    assert_int_equal(test_n_lines, 1);
    test_assert_logged("cfg.lua:5: missing required option 'buffer' in "
                       "Peer \"field\"", true);
    assert_string_equal(conf.address, "10.1.1.1");
    sw_config_free(cfg);

    /* set globally satisfies a Peer */
    test_n_lines = 0;
    cfg = sw_config_load_string("cfg.lua",
        "buffer = '1k'\nPeer \"field\" { address = \"10.1.1.1\" }\n");
    assert_non_null(cfg);
    assert_int_equal(sw_options_apply(test_peer_opts, &conf, cfg,
                     sw_config_section(cfg, SW_SCOPE_PEER, "field"), pool),
                     SW_OK);
    assert_int_equal(test_n_lines, 0);
    sw_config_free(cfg);
    sw_pool_free(pool);
}

static void
test_print_and_lookup(void **state)
{
    char   *buf = NULL;
    size_t  len = 0;
    FILE   *fp;

    (void) state;
    assert_ptr_equal(sw_option_find(test_opts, "timeout"), &test_opts[3]);
    assert_null(sw_option_find(test_opts, "timeou"));
    assert_string_equal(sw_opt_type_name(SW_OPT_INT), "integer");
    assert_string_equal(sw_opt_type_name(SW_OPT_SIZE), "size");
    assert_string_equal(sw_opt_type_name(SW_OPT_STRLIST), "string list");
    assert_string_equal(sw_opt_type_name((sw_opt_type_e) 99), "unknown");

    fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    sw_options_print(test_opts, "mod_test", fp);
    sw_options_print(test_peer_opts, "mod_peer", fp);
    fclose(fp);
    assert_non_null(strstr(buf, "mod_test: 8 options\n"));
    assert_non_null(strstr(buf, "NAME"));
    assert_non_null(strstr(buf, "c2s_port"));
    assert_non_null(strstr(buf, "\"5222\""));
    assert_non_null(strstr(buf, "global, VirtualHost"));
    assert_non_null(strstr(buf, "Client port [1..65535]"));
    assert_non_null(strstr(buf, "Read buffer [1k..1M]"));
    assert_non_null(strstr(buf, "Idle timeout [100ms..5m]"));
    assert_non_null(strstr(buf, "Log level [error|warn|info|debug]"));
    assert_non_null(strstr(buf, "(required)"));
    assert_non_null(strstr(buf, "mod_peer: 2 options\n"));
    /* the reloadable column */
    assert_non_null(strstr(buf, "yes"));
    free(buf);
}

/* ------------------------------------------------------- real files --- */

static void
test_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void
test_load_file(void **state)
{
    char         tmpl[] = "/tmp/sw_test_config_XXXXXX";
    char         path[1024], longdir[512], want[2048];
    const char  *dir;
    sw_config_t *cfg;
    test_conf_t  conf;
    sw_pool_t   *pool = sw_pool_new(0);

    (void) state;
    dir = mkdtemp(tmpl);
    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/skywave.cfg.lua", dir);
    test_write(path, "data_dir = \"state\"\n"
                     "VirtualHost \"example.net\" {\n"
                     "    c2s_port = 5222,\n"
                     "}\n");
    cfg = sw_config_load(path);
    assert_non_null(cfg);
    assert_string_equal(cfg->file, path);
    assert_string_equal(cfg->dir, dir);
    sw_options_defaults(test_opts, &conf, pool);
    assert_int_equal(sw_options_apply(test_opts, &conf, cfg,
                     sw_config_global(cfg), pool), SW_OK);
    snprintf(want, sizeof(want), "%s/state", dir);
    assert_string_equal(conf.data_dir, want);
    assert_int_equal(sw_config_entry(sw_config_section(cfg, SW_SCOPE_HOST,
                     "example.net"), "c2s_port")->line, 3);
    sw_config_free(cfg);

    /* a path longer than Lua's short source still shows in full */
    snprintf(longdir, sizeof(longdir), "%s/a-rather-long-directory-name-"
             "so-that-lua-would-cut-the-chunk-name", dir);
    assert_int_equal(mkdir(longdir, 0700), 0);
    snprintf(path, sizeof(path), "%s/skywave.cfg.lua", longdir);
    test_write(path, "a = 1\nb = = 2\n");
    test_n_lines = 0;
    assert_null(sw_config_load(path));
    snprintf(want, sizeof(want), "%s:2: unexpected symbol near '='", path);
    test_assert_logged(want, true);
    unlink(path);
    rmdir(longdir);

    snprintf(path, sizeof(path), "%s/skywave.cfg.lua", dir);
    unlink(path);
    test_n_lines = 0;
    assert_null(sw_config_load(path));
    snprintf(want, sizeof(want), "%s: cannot open: ", path);
    test_assert_logged(want, false);
    rmdir(dir);
    sw_pool_free(pool);
}

/* A relative file name is anchored to the current directory. */
static void
test_relative_dir(void **state)
{
    sw_config_t *cfg;
    char         cwd[4096], want[4200];

    (void) state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    cfg = sw_config_load_string("etc/skywave.cfg.lua", "x = 1\n");
    assert_non_null(cfg);
    snprintf(want, sizeof(want), "%s/etc", cwd);
    assert_string_equal(cfg->dir, want);
    sw_config_free(cfg);
    cfg = sw_config_load_string("/skywave.cfg.lua", "x = 1\n");
    assert_string_equal(cfg->dir, "/");
    sw_config_free(cfg);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_read_sections),
        T(test_block_line_heuristic),
        T(test_syntax_error),
        T(test_runtime_error),
        T(test_instruction_budget),
        T(test_time_budget),
        T(test_memory_cap),
        T(test_sandbox),
        T(test_sandbox_allows_libraries),
        T(test_duplicates),
        T(test_duplicates_distinct_ok),
        T(test_unsupported_values),
        T(test_defaults),
        T(test_bad_default),
        T(test_apply_values),
        T(test_sizes_and_durations),
        T(test_option_errors),
        T(test_strlist_single_and_path_absolute),
        T(test_wrong_scope),
        T(test_unknown_options),
        T(test_note_options_grows),
        T(test_required),
        T(test_print_and_lookup),
        T(test_load_file),
        T(test_relative_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
