/*
 * Reading the config file: the Lua text runs in a sandboxed state whose
 * global table records every assignment as a (key, line) entry of the
 * current section, keeping the Lua value aside.  When the chunk has run,
 * the final values become plain C data in cfg->pool (so a list read back
 * and changed with table.insert counts) and the Lua state is closed.
 *
 * The sandbox: only the safe parts of the base library plus string, table
 * and math (no io, os, debug, package, load, dofile, pcall); text chunks
 * only; an allocator with a memory cap; an instruction budget, so that a
 * loop that never ends is an error instead of a hang; and a time budget,
 * checked by the same hook, because one instruction can copy megabytes
 * (s .. "x" on a string near the memory cap).  The hook runs only between
 * Lua instructions, never inside a C function, so library functions whose
 * running time the config controls are left out (sw_cfg_setup), as is
 * setmetatable: finalizers (__gc) run with hooks off.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include <skywave/sw_config.h>
#include <skywave/sw_log.h>

#include "sw_core_int.h"

#define SW_CFG_MEM_LIMIT     (16u * 1024 * 1024)
#define SW_CFG_HOOK_COUNT    100        /* instructions per count hook */
#define SW_CFG_MAX_TICKS     100000     /* x HOOK_COUNT = 10M instructions */
#define SW_CFG_MAX_MS        2000       /* a real config takes milliseconds */
#define SW_CFG_MAX_DEPTH     8          /* nested tables in one value */
/* What the final values may make as C data: a table can be used many
 * times over (a = {b, b, b...}, b = {c, c, c...}), so the copy is not
 * bounded by the Lua memory cap (20 such tables of 8 levels: 20^8). */
#define SW_CFG_MAX_VALUES    100000
#define SW_CFG_MAX_BYTES     SW_CFG_MEM_LIMIT
#define SW_CFG_MAX_FILE      (4u * 1024 * 1024)
#define SW_CFG_SCAN_BACK     200        /* lines, for the line heuristic */

typedef struct sw_cfg_ctx_s {
    sw_config_t  *cfg;
    const char   *text;
    size_t        len;
    size_t       *line_off;     /* line_off[i]: offset of line i + 1 */
    int           n_lines;
    size_t       *entry_cap;    /* capacity of sections[i].entries */
    size_t        section_cap;
    size_t        cur;          /* section that global assignments go to */
    size_t        mem_used;
    int           store;        /* registry ref: section -> key -> value */
    unsigned      ticks;
    double        deadline;     /* sw_cfg_now() when time is up */
    size_t        values;       /* converted so far (SW_CFG_MAX_VALUES) */
    size_t        bytes;        /* ... and their strings' bytes */
    bool          too_big;
    int           line;         /* last line the line hook saw */
    bool          failed;
    char          short_src[LUA_IDSIZE];
} sw_cfg_ctx_t;

static sw_cfg_ctx_t *
sw_cfg_ctx(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ud;
}

/* ---------------------------------------------------------- sandbox --- */

/*
 * The allocator refuses to grow past the cap; Lua then collects garbage
 * and, if that is not enough, raises a memory error.
 */
static void *
sw_cfg_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sw_cfg_ctx_t *ctx = ud;
    void         *p;

    if (ptr == NULL) {
        osize = 0;      /* osize is a type tag for new blocks */
    }
    if (nsize == 0) {
        free(ptr);
        ctx->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && ctx->mem_used - osize + nsize > SW_CFG_MEM_LIMIT) {
        return NULL;
    }
    p = realloc(ptr, nsize);
    if (p == NULL) {
        return NULL;
    }
    ctx->mem_used = ctx->mem_used - osize + nsize;
    return p;
}

/* Seconds on a clock that only goes forward (vDSO: cheap enough for
 * every count event). */
static double
sw_cfg_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * Line events keep the last line run, so that errors without a position
 * (memory errors, error(x, 0)) can still name one; count events spend the
 * instruction and time budgets.  HOOK_COUNT instructions copy at most a
 * few hundred megabytes (each is bounded by the memory cap), so the time
 * budget is overrun by well under a second.
 */
static void
sw_cfg_hook(lua_State *L, lua_Debug *ar)
{
    sw_cfg_ctx_t *ctx = sw_cfg_ctx(L);

    if (ar->event == LUA_HOOKLINE) {
        ctx->line = ar->currentline;
        return;
    }
    if (++ctx->ticks >= SW_CFG_MAX_TICKS) {
        /* in a hook, level 0 is the running function: build the position */
        lua_getinfo(L, "Sl", ar);
        lua_pushfstring(L, "%s:%d: the config ran more than %d instructions "
                        "(a loop that never ends?)", ar->short_src,
                        ar->currentline, SW_CFG_HOOK_COUNT * SW_CFG_MAX_TICKS);
        lua_error(L);
    }
    if (sw_cfg_now() > ctx->deadline) {
        lua_getinfo(L, "Sl", ar);
        lua_pushfstring(L, "%s:%d: the config ran for more than %d ms",
                        ar->short_src, ar->currentline, SW_CFG_MAX_MS);
        lua_error(L);
    }
}

/* Line of the Lua code that called the running C function. */
static int
sw_cfg_caller_line(lua_State *L)
{
    lua_Debug ar;

    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)
        && ar.currentline > 0)
    {
        return ar.currentline;
    }
    return sw_cfg_ctx(L)->line;
}

/* ------------------------------------------------------ diagnostics --- */

static const char *
sw_cfg_scope_word(sw_scope_e scope)
{
    switch (scope) {
    case SW_SCOPE_HOST:
        return "VirtualHost";
    case SW_SCOPE_COMPONENT:
        return "Component";
    case SW_SCOPE_PEER:
        return "Peer";
    default:
        return "global";
    }
}

/* For messages: VirtualHost "a", or the global section. */
static void
sw_cfg_section_desc(const sw_csection_t *sec, char *buf, size_t size)
{
    if (sec->name == NULL) {
        snprintf(buf, size, "the global section");
    } else {
        snprintf(buf, size, "%s \"%s\"", sw_cfg_scope_word(sec->scope),
                 sec->name);
    }
}

static void
sw_cfg_error(sw_cfg_ctx_t *ctx, int line, const char *fmt, ...)
    SW_PRINTF(3, 4);

static void
sw_cfg_error(sw_cfg_ctx_t *ctx, int line, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sw_config_error(ctx->cfg, line, "%s", msg);
    ctx->failed = true;
}

/*
 * Logs an error message from Lua.  Lua names the chunk by its short
 * source (long paths are cut); the message is given the full file name,
 * and a position from the line hook if it has none.
 */
static void
sw_cfg_lua_error(sw_cfg_ctx_t *ctx, lua_State *L, int status)
{
    const char *msg;
    size_t      n;

    if (status == LUA_ERRMEM) {
        sw_cfg_error(ctx, ctx->line, "the config uses more than %u MB of "
                     "memory", SW_CFG_MEM_LIMIT / (1024 * 1024));
        return;
    }
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
        sw_cfg_error(ctx, ctx->line, "error object is a %s value",
                     luaL_typename(L, -1));
        return;
    }
    n = strlen(ctx->short_src);
    if (strncmp(msg, ctx->short_src, n) == 0 && msg[n] == ':'
        && msg[n + 1] >= '0' && msg[n + 1] <= '9')
    {
        sw_log_error("%s%s", ctx->cfg->file, msg + n);
        ctx->failed = true;
        return;
    }
    sw_cfg_error(ctx, ctx->line, "%s", msg);
}

/* ------------------------------------------------ line heuristics --- */

static void
sw_cfg_index_lines(sw_cfg_ctx_t *ctx)
{
    size_t i;
    int    n = 1;

    for (i = 0; i < ctx->len; i++) {
        if (ctx->text[i] == '\n') {
            n++;
        }
    }
    ctx->line_off = sw_alloc(sizeof(size_t) * (size_t) n);
    ctx->n_lines = n;
    ctx->line_off[0] = 0;
    n = 1;
    for (i = 0; i < ctx->len; i++) {
        if (ctx->text[i] == '\n') {
            ctx->line_off[n++] = i + 1;
        }
    }
}

/* Does line (1-based) begin with optional blanks, the word, then c? */
static bool
sw_cfg_line_starts(sw_cfg_ctx_t *ctx, int line, const char *word,
                   const char *then)
{
    size_t p, end, wl = strlen(word);

    if (line < 1 || line > ctx->n_lines) {
        return false;
    }
    p = ctx->line_off[line - 1];
    end = line < ctx->n_lines ? ctx->line_off[line] : ctx->len;
    while (p < end && (ctx->text[p] == ' ' || ctx->text[p] == '\t')) {
        p++;
    }
    if (end - p < wl || memcmp(ctx->text + p, word, wl) != 0) {
        return false;
    }
    p += wl;
    while (p < end && (ctx->text[p] == ' ' || ctx->text[p] == '\t')) {
        p++;
    }
    if (p >= end || ctx->text[p] == '\0'
        || strchr(then, ctx->text[p]) == NULL)
    {
        return false;
    }
    /* "key == x" is a comparison, not an assignment */
    return !(ctx->text[p] == '=' && p + 1 < end && ctx->text[p + 1] == '=');
}

static bool
sw_cfg_line_is_assignment(sw_cfg_ctx_t *ctx, int line, const char *key)
{
    return sw_cfg_line_starts(ctx, line, key, "=");
}

static bool
sw_cfg_line_opens_section(sw_cfg_ctx_t *ctx, int line)
{
    return sw_cfg_line_starts(ctx, line, "VirtualHost", "\"'([")
           || sw_cfg_line_starts(ctx, line, "Component", "\"'([")
           || sw_cfg_line_starts(ctx, line, "Peer", "\"'([");
}

/*
 * Lua gives an assignment the line where its value ends, so for
 *   modules = {
 *       "c2s",
 *   }
 * it says 3.  Look back for the line that starts with "modules =", not
 * past the start of a section.
 */
static int
sw_cfg_assignment_line(sw_cfg_ctx_t *ctx, int line, const char *key)
{
    int l;

    for (l = line; l > 0 && l > line - SW_CFG_SCAN_BACK; l--) {
        if (sw_cfg_line_is_assignment(ctx, l, key)) {
            return l;
        }
        if (l != line && sw_cfg_line_opens_section(ctx, l)) {
            break;
        }
    }
    return line;
}

/*
 * Entries of a block have no line of their own: take the first line after
 * the section's that starts with "key =", stopping at the next section.
 * A key written on the section's line itself gets the section's line.
 */
static int
sw_cfg_block_line(sw_cfg_ctx_t *ctx, int sec_line, const char *key)
{
    int l;

    for (l = sec_line; l <= ctx->n_lines; l++) {
        if (l != sec_line && sw_cfg_line_opens_section(ctx, l)) {
            break;
        }
        if (sw_cfg_line_is_assignment(ctx, l, key)) {
            return l;
        }
    }
    return sec_line;
}

/* ------------------------------------------------------------ values --- */

typedef struct sw_cfg_pair_s {
    const char  *key;
    sw_cval_t   *val;
} sw_cfg_pair_t;

static int
sw_cfg_pair_cmp(const void *a, const void *b)
{
    const sw_cfg_pair_t *x = a;
    const sw_cfg_pair_t *y = b;

    return strcmp(x->key, y->key);
}

/*
 * Converts the Lua value at idx.  On an unsupported value, logs
 * "option 'path': unsupported value type T" and returns NULL.
 */
static sw_cval_t *
sw_cfg_to_cval(sw_cfg_ctx_t *ctx, lua_State *L, int idx, const char *path,
               int line, int depth)
{
    sw_pool_t     *pool = ctx->cfg->pool;
    sw_cval_t     *v, *item;
    sw_cfg_pair_t *pairs;
    const char    *s, *kind;
    char           sub[256];
    size_t         len, n, n_str, n_int, i;
    lua_Integer    k, max_k;

    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        ctx->bytes += lua_rawlen(L, idx);
    }
    if (++ctx->values > SW_CFG_MAX_VALUES || ctx->bytes > SW_CFG_MAX_BYTES) {
        if (!ctx->too_big) {
            sw_cfg_error(ctx, line, "option '%s': the config's values make "
                         "more than %d items or %u MB (a table used many "
                         "times over?)", path, SW_CFG_MAX_VALUES,
                         SW_CFG_MAX_BYTES / (1024 * 1024));
        }
        ctx->too_big = true;
        return NULL;
    }
    v = sw_pool_calloc(pool, sizeof(*v));

    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        v->type = SW_CVAL_BOOL;
        v->b = lua_toboolean(L, idx);
        return v;

    case LUA_TNUMBER:
        v->type = SW_CVAL_NUMBER;
        v->num = lua_tonumber(L, idx);
        return v;

    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if (memchr(s, '\0', len) != NULL) {
            sw_cfg_error(ctx, line, "option '%s': string contains a NUL "
                         "byte", path);
            return NULL;
        }
        v->type = SW_CVAL_STRING;
        v->str = sw_pool_strndup(pool, s, len);
        return v;

    case LUA_TTABLE:
        break;

    default:
        sw_cfg_error(ctx, line, "option '%s': unsupported value type %s",
                     path, luaL_typename(L, idx));
        return NULL;
    }

    if (depth >= SW_CFG_MAX_DEPTH) {
        sw_cfg_error(ctx, line, "option '%s': tables nested more than %d "
                     "deep", path, SW_CFG_MAX_DEPTH);
        return NULL;
    }

    /* first pass: what kind of keys */
    n = n_str = n_int = 0;
    max_k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        n++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            n_str++;
        } else if (lua_isinteger(L, -1) && (k = lua_tointeger(L, -1)) > 0) {
            n_int++;
            max_k = k > max_k ? k : max_k;
        }
    }
    if (n_str != n && (n_int != n || (size_t) max_k != n)) {
        kind = n_str + n_int == n && n_str > 0 ? "table with both named and "
               "numbered entries" : "table with keys other than names or "
               "1..n";
        sw_cfg_error(ctx, line, "option '%s': unsupported value type %s",
                     path, kind);
        return NULL;
    }

    v->n = n;
    v->items = sw_pool_calloc(pool, sizeof(sw_cval_t *) * (n ? n : 1));
    if (n_str != n || n == 0) {
        v->type = SW_CVAL_LIST;
        for (i = 0; i < n; i++) {
            lua_rawgeti(L, idx, (lua_Integer) i + 1);
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
            item = sw_cfg_to_cval(ctx, L, -1, sub, line, depth + 1);
            lua_pop(L, 1);
            if (item == NULL) {
                return NULL;
            }
            v->items[i] = item;
        }
        return v;
    }

    /* named entries, sorted by key so that printing is stable */
    v->type = SW_CVAL_TABLE;
    v->keys = sw_pool_calloc(pool, sizeof(char *) * n);
    pairs = sw_pool_calloc(pool, sizeof(*pairs) * n);
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        s = lua_tostring(L, -2);
        snprintf(sub, sizeof(sub), "%s.%s", path, s);
        item = sw_cfg_to_cval(ctx, L, -1, sub, line, depth + 1);
        lua_pop(L, 1);
        if (item == NULL) {
            lua_pop(L, 1);
            return NULL;
        }
        pairs[i].key = sw_pool_strdup(pool, s);
        pairs[i].val = item;
        i++;
    }
    qsort(pairs, n, sizeof(*pairs), sw_cfg_pair_cmp);
    for (i = 0; i < n; i++) {
        v->keys[i] = pairs[i].key;
        v->items[i] = pairs[i].val;
    }
    return v;
}

/* ---------------------------------------------------------- sections --- */

static size_t
sw_cfg_add_section(sw_cfg_ctx_t *ctx, sw_scope_e scope, const char *name,
                   int line)
{
    sw_config_t   *cfg = ctx->cfg;
    sw_csection_t *sections;
    size_t         cap;

    if (cfg->n_sections == ctx->section_cap) {
        cap = ctx->section_cap ? ctx->section_cap * 2 : 8;
        sections = sw_pool_calloc(cfg->pool, sizeof(*sections) * cap);
        if (cfg->n_sections) {
            memcpy(sections, cfg->sections,
                   sizeof(*sections) * cfg->n_sections);
        }
        cfg->sections = sections;
        ctx->entry_cap = sw_realloc(ctx->entry_cap, sizeof(size_t) * cap);
        ctx->section_cap = cap;
    }
    ctx->entry_cap[cfg->n_sections] = 0;
    sections = &cfg->sections[cfg->n_sections];
    memset(sections, 0, sizeof(*sections));
    sections->scope = scope;
    sections->name = sw_pool_strdup(cfg->pool, name);
    sections->line = line;
    return cfg->n_sections++;
}

/*
 * Records key in section si; false (after logging) if it is there already.
 * The value stays in the Lua store until the chunk has run.
 */
static bool
sw_cfg_add_entry(sw_cfg_ctx_t *ctx, size_t si, const char *key, int line)
{
    sw_csection_t *sec = &ctx->cfg->sections[si];
    sw_centry_t   *e;
    size_t         cap;
    char           desc[300];

    e = sw_config_entry(sec, key);
    if (e != NULL) {
        sw_cfg_section_desc(sec, desc, sizeof(desc));
        sw_cfg_error(ctx, line, "option '%s' set twice in %s (first at "
                     "line %d)", key, desc, e->line);
        return false;
    }
    if (sec->n_entries == ctx->entry_cap[si]) {
        cap = ctx->entry_cap[si] ? ctx->entry_cap[si] * 2 : 8;
        e = sw_pool_calloc(ctx->cfg->pool, sizeof(*e) * cap);
        if (sec->n_entries) {
            memcpy(e, sec->entries, sizeof(*e) * sec->n_entries);
        }
        sec->entries = e;
        ctx->entry_cap[si] = cap;
    }
    e = &sec->entries[sec->n_entries++];
    e->key = sw_pool_strdup(ctx->cfg->pool, key);
    e->val = NULL;
    e->line = line;
    e->claimed = false;
    return true;
}

/* Pushes the store table of section si, creating it on first use. */
static void
sw_cfg_push_store(lua_State *L, size_t si)
{
    sw_cfg_ctx_t *ctx = sw_cfg_ctx(L);

    lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->store);
    if (lua_rawgeti(L, -1, (lua_Integer) si + 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, (lua_Integer) si + 1);
    }
    lua_remove(L, -2);
}

/* Keeps the value at idx as section si's key. */
static void
sw_cfg_keep(lua_State *L, size_t si, const char *key, int idx)
{
    idx = lua_absindex(L, idx);
    sw_cfg_push_store(L, si);
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, key);
    lua_pop(L, 1);
}

/* __newindex of the environment: every global assignment lands here. */
static int
sw_cfg_newindex(lua_State *L)
{
    sw_cfg_ctx_t *ctx = sw_cfg_ctx(L);
    const char   *key;
    int           line;

    if (lua_type(L, 2) != LUA_TSTRING) {
        return luaL_error(L, "only names can be set in the config");
    }
    key = lua_tostring(L, 2);
    line = sw_cfg_assignment_line(ctx, sw_cfg_caller_line(L), key);
    if (sw_cfg_add_entry(ctx, ctx->cur, key, line)) {
        sw_cfg_keep(L, ctx->cur, key, 3);
    }
    return 0;
}

/*
 * __index: a value set earlier (current section, then global), else the
 * library.  It is the value itself, not a copy, so that
 * table.insert(modules, "muc") changes what the config says.
 */
static int
sw_cfg_index(lua_State *L)
{
    sw_cfg_ctx_t *ctx = sw_cfg_ctx(L);

    if (lua_type(L, 2) == LUA_TSTRING) {
        sw_cfg_push_store(L, ctx->cur);
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) != LUA_TNIL) {
            return 1;
        }
        lua_pop(L, 2);
        if (ctx->cur != 0) {
            sw_cfg_push_store(L, 0);
            lua_pushvalue(L, 2);
            if (lua_rawget(L, -2) != LUA_TNIL) {
                return 1;
            }
            lua_pop(L, 2);
        }
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

/* The block call: Section "name" { key = value, ... }. */
static int
sw_cfg_block(lua_State *L)
{
    sw_cfg_ctx_t  *ctx = sw_cfg_ctx(L);
    size_t         si = (size_t) lua_tointeger(L, lua_upvalueindex(1));
    sw_csection_t *sec = &ctx->cfg->sections[si];
    const char    *key;
    char           desc[300];
    int            line;

    sw_cfg_section_desc(sec, desc, sizeof(desc));
    if (lua_type(L, 1) != LUA_TTABLE) {
        return luaL_error(L, "%s: expected a table of options, got %s",
                          desc, luaL_typename(L, 1));
    }
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return luaL_error(L, "%s: options must be written as "
                              "name = value", desc);
        }
        key = lua_tostring(L, -2);
        line = sw_cfg_block_line(ctx, sec->line, key);
        if (sw_cfg_add_entry(ctx, si, key, line)) {
            sw_cfg_keep(L, si, key, -1);
        }
        lua_pop(L, 1);
    }
    /* a block is closed: what follows is global again */
    ctx->cur = 0;
    return 0;
}

static void
sw_cfg_push_block(lua_State *L, size_t si)
{
    lua_pushinteger(L, (lua_Integer) si);
    lua_pushcclosure(L, sw_cfg_block, 1);
}

/* Opens a section; returns its index, or raises a Lua error. */
static size_t
sw_cfg_open_section(lua_State *L, sw_scope_e scope)
{
    sw_cfg_ctx_t  *ctx = sw_cfg_ctx(L);
    sw_csection_t *old;
    const char    *name;
    int            line;

    if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0) {
        luaL_error(L, "%s expects a name (a non-empty string), got %s",
                   sw_cfg_scope_word(scope), luaL_typename(L, 1));
    }
    name = lua_tostring(L, 1);
    line = sw_cfg_caller_line(L);
    old = sw_config_section(ctx->cfg, scope, name);
    if (old != NULL) {
        sw_cfg_error(ctx, line, "%s \"%s\" declared twice (first at line "
                     "%d)", sw_cfg_scope_word(scope), name, old->line);
    }
    ctx->cur = sw_cfg_add_section(ctx, scope, name, line);
    return ctx->cur;
}

static int
sw_cfg_virtualhost(lua_State *L)
{
    sw_cfg_push_block(L, sw_cfg_open_section(L, SW_SCOPE_HOST));
    return 1;
}

static int
sw_cfg_peer(lua_State *L)
{
    sw_cfg_push_block(L, sw_cfg_open_section(L, SW_SCOPE_PEER));
    return 1;
}

/* Component "name" "module" { ... }: the second call takes the module
 * name, or directly the block. */
static int
sw_cfg_component_module(lua_State *L)
{
    sw_cfg_ctx_t  *ctx = sw_cfg_ctx(L);
    size_t         si = (size_t) lua_tointeger(L, lua_upvalueindex(1));
    sw_csection_t *sec = &ctx->cfg->sections[si];

    if (lua_type(L, 1) == LUA_TTABLE) {
        /* same upvalue (the section index) as a block closure */
        return sw_cfg_block(L);
    }
    if (lua_type(L, 1) != LUA_TSTRING || lua_rawlen(L, 1) == 0) {
        return luaL_error(L, "Component \"%s\": expected a module name or "
                          "a table of options, got %s", sec->name,
                          luaL_typename(L, 1));
    }
    sec->component = sw_pool_strdup(ctx->cfg->pool, lua_tostring(L, 1));
    sw_cfg_push_block(L, si);
    return 1;
}

static int
sw_cfg_component(lua_State *L)
{
    size_t si = sw_cfg_open_section(L, SW_SCOPE_COMPONENT);

    lua_pushinteger(L, (lua_Integer) si);
    lua_pushcclosure(L, sw_cfg_component_module, 1);
    return 1;
}

/*
 * The library visible to the config: an allow-list, so that anything new
 * in a future Lua base library stays out until someone looks at it.
 * pcall and xpcall are out because they could catch the budget and
 * memory errors and keep going.
 */
static const char *const sw_cfg_base_allowed[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "print",
    "rawequal", "rawget", "rawlen", "select", "tonumber", "tostring", "type",
    "_VERSION", NULL
};

/*
 * Taken out of string and table: they run inside one C call for as long
 * as the config likes, where the budget hook cannot stop them.  Pattern
 * matching backtracks (("a"):rep(1e5):find((".-"):rep(30) .. "b")) and
 * plain find is quadratic; table.move loops over any range it is given.
 * The string functions go from the library table itself, which is also
 * the strings' method table.
 */
static const char *const sw_cfg_string_denied[] = {
    "find", "match", "gmatch", "gsub", NULL
};
static const char *const sw_cfg_table_denied[] = {
    "move", NULL
};

/* string.rep, except that an empty result comes at once: Lua's own loops
 * n times even when there is nothing to copy (string.rep("", 1e15)). */
static int
sw_cfg_str_rep(lua_State *L)
{
    size_t      len, sep_len;
    lua_Integer n;

    luaL_checklstring(L, 1, &len);
    n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &sep_len);
    if (n <= 0 || (len == 0 && (sep_len == 0 || n == 1))) {
        lua_pushliteral(L, "");
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static void
sw_cfg_deny(lua_State *L, int idx, const char *const *names)
{
    idx = lua_absindex(L, idx);
    for (; *names != NULL; names++) {
        lua_pushnil(L);
        lua_setfield(L, idx, *names);
    }
}

/*
 * Fills the table at idx with the sandbox's libraries: the safe parts of
 * the base library, string, table and math.  Shared with the filter
 * policies (sw_policy.c), which run under the same rules.
 */
void
sw_lua_safe_libs(lua_State *L, int idx)
{
    const char *const *name;

    idx = lua_absindex(L, idx);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    for (name = sw_cfg_base_allowed; *name != NULL; name++) {
        lua_getfield(L, -1, *name);
        lua_setfield(L, idx, *name);
    }
    lua_pop(L, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
    sw_cfg_deny(L, -1, sw_cfg_string_denied);
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, sw_cfg_str_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_setfield(L, idx, LUA_STRLIBNAME);
    /* getmetatable("") would hand out the strings' metatable */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
    sw_cfg_deny(L, -1, sw_cfg_table_denied);
    lua_setfield(L, idx, LUA_TABLIBNAME);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
    lua_setfield(L, idx, LUA_MATHLIBNAME);
}

static int
sw_cfg_setup(lua_State *L)
{
    lua_newtable(L);
    sw_cfg_ctx(L)->store = luaL_ref(L, LUA_REGISTRYINDEX);

    /* upvalue of __index: the library table; index 1 on the stack */
    lua_newtable(L);
    sw_lua_safe_libs(L, 1);

    lua_pushcfunction(L, sw_cfg_virtualhost);
    lua_setfield(L, 1, "VirtualHost");
    lua_pushcfunction(L, sw_cfg_component);
    lua_setfield(L, 1, "Component");
    lua_pushcfunction(L, sw_cfg_peer);
    lua_setfield(L, 1, "Peer");

    /* the environment: always empty, so that every access is seen */
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, LUA_GNAME);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, sw_cfg_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, sw_cfg_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");     /* getmetatable(_G) hides it */
    lua_setmetatable(L, -2);
    return 1;
}

/*
 * After the chunk has run: the final value of every entry becomes C data.
 * Run protected, as walking Lua tables may raise a memory error.
 */
static int
sw_cfg_convert_all(lua_State *L)
{
    sw_cfg_ctx_t  *ctx = sw_cfg_ctx(L);
    sw_csection_t *sec;
    sw_centry_t   *e;
    size_t         si, i;

    for (si = 0; si < ctx->cfg->n_sections; si++) {
        sec = &ctx->cfg->sections[si];
        sw_cfg_push_store(L, si);
        for (i = 0; i < sec->n_entries && !ctx->too_big; i++) {
            e = &sec->entries[i];
            lua_getfield(L, -1, e->key);
            e->val = sw_cfg_to_cval(ctx, L, -1, e->key, e->line, 0);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* ------------------------------------------------------------ loading --- */

/*
 * The directory of the file, for relative SW_OPT_PATH values.  A relative
 * path is anchored now: the daemon may change directory later.
 */
static void
sw_cfg_set_dir(sw_config_t *cfg, const char *path)
{
    const char *slash = strrchr(path, '/');
    int         n = slash ? (int) (slash - path) : 0;
    char        cwd[4096];

    if (slash == path) {
        cfg->dir = "/";
    } else if (path[0] == '/') {
        cfg->dir = sw_pool_strndup(cfg->pool, path, (size_t) n);
    } else if (getcwd(cwd, sizeof(cwd)) == NULL) {
        cfg->dir = slash ? sw_pool_strndup(cfg->pool, path, (size_t) n)
                         : ".";
    } else if (slash != NULL) {
        cfg->dir = sw_pool_printf(cfg->pool, "%s/%.*s", cwd, n, path);
    } else {
        cfg->dir = sw_pool_strdup(cfg->pool, cwd);
    }
}

/* Lua's short name for the chunk, to recognise positions in messages. */
static void
sw_cfg_short_src(sw_cfg_ctx_t *ctx, lua_State *L, const char *chunkname)
{
    lua_Debug ar;

    ctx->short_src[0] = '\0';
    if (luaL_loadbufferx(L, "", 0, chunkname, "t") == LUA_OK) {
        lua_getinfo(L, ">S", &ar);
        snprintf(ctx->short_src, sizeof(ctx->short_src), "%s",
                 ar.short_src);
    } else {
        lua_pop(L, 1);
    }
}

static sw_config_t *
sw_cfg_run(const char *name, const char *text, size_t len)
{
    sw_pool_t    *pool;
    sw_config_t  *cfg;
    sw_cfg_ctx_t  ctx;
    lua_State    *L;
    const char   *chunkname;
    int           status;

    pool = sw_pool_new(4096);
    cfg = sw_pool_calloc(pool, sizeof(*cfg));
    cfg->pool = pool;
    cfg->file = sw_pool_strdup(pool, name);
    sw_cfg_set_dir(cfg, name);

    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = cfg;
    ctx.text = text;
    ctx.len = len;
    sw_cfg_index_lines(&ctx);
    sw_cfg_add_section(&ctx, SW_SCOPE_GLOBAL, NULL, 0);

    L = lua_newstate(sw_cfg_alloc, &ctx);
    if (L == NULL) {
        sw_cfg_error(&ctx, 0, "cannot create a Lua state");
        goto done;
    }
    chunkname = sw_pool_printf(pool, "@%s", name);
    sw_cfg_short_src(&ctx, L, chunkname);

    lua_pushcfunction(L, sw_cfg_setup);
    status = lua_pcall(L, 0, 1, 0);
    if (status != LUA_OK) {
        sw_cfg_lua_error(&ctx, L, status);
        goto done;
    }
    status = luaL_loadbufferx(L, text, len, chunkname, "t");
    if (status != LUA_OK) {
        sw_cfg_lua_error(&ctx, L, status);
        goto done;
    }
    lua_insert(L, -2);
    lua_setupvalue(L, -2, 1);       /* _ENV */

    ctx.deadline = sw_cfg_now() + SW_CFG_MAX_MS / 1000.0;
    lua_sethook(L, sw_cfg_hook, LUA_MASKCOUNT | LUA_MASKLINE,
                SW_CFG_HOOK_COUNT);
    status = lua_pcall(L, 0, 0, 0);
    lua_sethook(L, NULL, 0, 0);
    if (status != LUA_OK) {
        sw_cfg_lua_error(&ctx, L, status);
        goto done;
    }
    lua_pushcfunction(L, sw_cfg_convert_all);
    status = lua_pcall(L, 0, 0, 0);
    if (status != LUA_OK) {
        sw_cfg_lua_error(&ctx, L, status);
    }

done:
    if (L != NULL) {
        lua_close(L);
    }
    free(ctx.line_off);
    free(ctx.entry_cap);
    if (ctx.failed) {
        sw_pool_free(pool);
        return NULL;
    }
    return cfg;
}

sw_config_t *
sw_config_load(const char *path)
{
    sw_config_t *cfg;
    FILE        *fp;
    char        *text;
    size_t       len, cap, n;

    fp = fopen(path, "rb");
    if (fp == NULL) {
        sw_log_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    cap = 8192;
    len = 0;
    text = sw_alloc(cap);
    for ( ;; ) {
        if (len == cap) {
            if (cap >= SW_CFG_MAX_FILE) {
                sw_log_error("%s: larger than %u bytes", path,
                             SW_CFG_MAX_FILE);
                free(text);
                fclose(fp);
                return NULL;
            }
            cap *= 2;
            text = sw_realloc(text, cap);
        }
        n = fread(text + len, 1, cap - len, fp);
        if (n == 0) {
            break;
        }
        len += n;
    }
    if (ferror(fp)) {
        sw_log_error("%s: cannot read: %s", path, strerror(errno));
        free(text);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    cfg = sw_cfg_run(path, text, len);
    free(text);
    return cfg;
}

sw_config_t *
sw_config_load_string(const char *name, const char *text)
{
    return sw_cfg_run(name, text, strlen(text));
}

void
sw_config_free(sw_config_t *cfg)
{
    if (cfg != NULL) {
        sw_pool_free(cfg->pool);
    }
}

sw_csection_t *
sw_config_global(sw_config_t *cfg)
{
    return &cfg->sections[0];
}

sw_csection_t *
sw_config_section(sw_config_t *cfg, sw_scope_e scope, const char *name)
{
    size_t i;

    if (scope == SW_SCOPE_GLOBAL) {
        return &cfg->sections[0];
    }
    for (i = 1; i < cfg->n_sections; i++) {
        if (cfg->sections[i].scope == scope
            && strcmp(cfg->sections[i].name, name) == 0)
        {
            return &cfg->sections[i];
        }
    }
    return NULL;
}

sw_centry_t *
sw_config_entry(sw_csection_t *sec, const char *key)
{
    size_t i;

    for (i = 0; i < sec->n_entries; i++) {
        if (strcmp(sec->entries[i].key, key) == 0) {
            return &sec->entries[i];
        }
    }
    return NULL;
}
