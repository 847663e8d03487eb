/*
 * Filter policies (sw_policy.h): one sandboxed lua_State per policy.
 *
 * The sandbox is the config's (sw_lua_safe_libs: the safe base functions,
 * string without the pattern functions, table without move, math), with
 * print going to the log; an allocator with a cap; a count hook that
 * ends a call past its instruction budget.  The hook runs between Lua
 * instructions only, so nothing that loops inside one C call is offered.
 *
 * Handles are full userdata holding a pointer that the caller clears
 * when the call returns, so a handle kept in a global raises a clean
 * error when used later, never touches freed memory.
 *
 * A chain's entry may be a rule table instead of a function (the
 * declarative form for admins): the rules are compiled, by Lua code in
 * this file, into a function over the same stanza API, so both forms do
 * exactly the same thing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include <skywave/skywave.h>
#include <skywave/sw_policy.h>

#include "sw_core_int.h"

#define SW_POLICY_MEM_DEFAULT    (4u * 1024 * 1024)
#define SW_POLICY_INSNS_DEFAULT  1000000u
#define SW_POLICY_HOOK_COUNT     1000       /* instructions per count hook */
#define SW_POLICY_MAX_FILE       (1u * 1024 * 1024)

#define SW_POLICY_STANZA_MT  "skywave.stanza"
#define SW_POLICY_LINK_MT    "skywave.link"

static const char *const sw_policy_chains[] = {
    "outbound", "inbound", "preroute", "deliver", NULL
};
#define SW_POLICY_N_CHAINS 4

struct sw_policy_s {
    lua_State     *L;
    char          *name;
    char          *path;
    unsigned       refs;
    size_t         mem_used;
    size_t         mem_limit;
    unsigned       ticks;           /* count hooks left in this call */
    unsigned       max_ticks;
    int            fn[SW_POLICY_N_CHAINS];     /* registry refs */
    sw_verdict_e   on_error;
    const char    *on_error_cond;
    uint64_t       failures;
    sw_log_rl_t    rl;
};

/* What a stanza handle points at while its call runs. */
typedef struct sw_policy_st_s {
    sw_stanza_t  **stp;             /* NULL once the call returned */
} sw_policy_st_t;

typedef struct sw_policy_link_s {
    sw_link_t     *link;            /* NULL once the call returned */
} sw_policy_link_t;

static sw_policy_t *
sw_policy_of(lua_State *L)
{
    void *ud;

    lua_getallocf(L, &ud);
    return ud;
}

/* ---------------------------------------------------------- sandbox --- */

static void *
sw_policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sw_policy_t *p = ud;
    void        *q;

    if (ptr == NULL) {
        osize = 0;      /* osize is a type tag for new blocks */
    }
    if (nsize == 0) {
        free(ptr);
        p->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && p->mem_used - osize + nsize > p->mem_limit) {
        return NULL;    /* Lua collects, then raises a memory error */
    }
    q = realloc(ptr, nsize);
    if (q == NULL) {
        return NULL;
    }
    p->mem_used = p->mem_used - osize + nsize;
    return q;
}

static void
sw_policy_hook(lua_State *L, lua_Debug *ar)
{
    sw_policy_t *p = sw_policy_of(L);

    if (p->ticks == 0 || --p->ticks == 0) {
        p->ticks = 0;   /* stays spent: every later hook raises again */
        lua_getinfo(L, "Sl", ar);
        lua_pushfstring(L, "%s:%d: more than %d instructions in one call "
                        "(a loop that never ends?)", ar->short_src,
                        ar->currentline,
                        (int) (p->max_ticks * SW_POLICY_HOOK_COUNT));
        lua_error(L);
    }
}

static int
sw_policy_print(lua_State *L)
{
    sw_policy_t *p = sw_policy_of(L);
    luaL_Buffer  b;
    int          i, n = lua_gettop(L);

    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
        if (i > 1) {
            luaL_addchar(&b, ' ');
        }
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    sw_log_info("policy %s: %s", p->name, lua_tostring(L, -1));
    return 0;
}

/* ---------------------------------------------------- stanza handle --- */

static sw_stanza_t *
sw_policy_check_st(lua_State *L, sw_policy_st_t **hp)
{
    sw_policy_st_t *h = luaL_checkudata(L, 1, SW_POLICY_STANZA_MT);

    if (h->stp == NULL || *h->stp == NULL) {
        luaL_error(L, "a stanza handle used after its call returned");
    }
    if (hp != NULL) {
        *hp = h;
    }
    return *h->stp;
}

static void
sw_policy_push_str(lua_State *L, const char *s)
{
    if (s != NULL) {
        lua_pushstring(L, s);
    } else {
        lua_pushnil(L);
    }
}

static int
sw_policy_st_kind(lua_State *L)
{
    lua_pushstring(L, sw_stanza_kind_name(sw_policy_check_st(L, NULL)->kind));
    return 1;
}

static int
sw_policy_st_type(lua_State *L)
{
    sw_policy_push_str(L, sw_policy_check_st(L, NULL)->type);
    return 1;
}

static int
sw_policy_st_id(lua_State *L)
{
    sw_policy_push_str(L, sw_policy_check_st(L, NULL)->id);
    return 1;
}

static int
sw_policy_st_to(lua_State *L)
{
    sw_stanza_t *st = sw_policy_check_st(L, NULL);

    sw_policy_push_str(L, st->to ? st->to->full : NULL);
    return 1;
}

static int
sw_policy_st_from(lua_State *L)
{
    sw_stanza_t *st = sw_policy_check_st(L, NULL);

    sw_policy_push_str(L, st->from ? st->from->full : NULL);
    return 1;
}

static int
sw_policy_st_attr(lua_State *L)
{
    sw_stanza_t *st = sw_policy_check_st(L, NULL);

    sw_policy_push_str(L, sw_xml_attr(st->xml, luaL_checkstring(L, 2)));
    return 1;
}

static int
sw_policy_st_payload_ns(lua_State *L)
{
    sw_stanza_t *st = sw_policy_check_st(L, NULL);

    sw_policy_push_str(L, st->payload ? st->payload->ns : NULL);
    return 1;
}

bool
sw_policy_sel_match(const sw_policy_sel_t *s, const sw_xml_t *stanza,
                    const sw_xml_t *c)
{
    const char *ns;

    if (c->type != SW_XML_ELEM) {
        return false;
    }
    if (s->name != NULL && strcmp(s->name, c->name) != 0) {
        return false;
    }
    if (s->any_ns) {
        return true;
    }
    ns = s->ns != NULL ? s->ns : stanza->ns;
    if (ns == NULL || c->ns == NULL) {
        return ns == c->ns;
    }
    return strcmp(ns, c->ns) == 0;
}

/* Arguments (name, ns) at idx, idx + 1. */
static void
sw_policy_sel_args(lua_State *L, int idx, sw_policy_sel_t *s)
{
    s->name = luaL_optstring(L, idx, NULL);
    s->ns = luaL_optstring(L, idx + 1, NULL);
    s->any_ns = s->ns == NULL && s->name == NULL;
}

/* A selector string: "name", "{ns}" or "{ns}name"; points into text. */
static bool
sw_policy_sel_parse(lua_State *L, const char *text, sw_policy_sel_t *s)
{
    const char *close;

    s->any_ns = false;
    if (text[0] != '{') {
        s->name = text;
        s->ns = NULL;
        return text[0] != '\0' && strchr(text, '}') == NULL;
    }
    close = strchr(text, '}');
    if (close == NULL || close == text + 1) {
        return false;
    }
    lua_pushlstring(L, text + 1, (size_t) (close - text - 1));
    s->ns = lua_tostring(L, -1);        /* anchored on the stack */
    s->name = close[1] != '\0' ? close + 1 : NULL;
    return true;
}

static int
sw_policy_st_child(lua_State *L)
{
    sw_stanza_t     *st = sw_policy_check_st(L, NULL);
    sw_policy_sel_t  s;
    const sw_xml_t  *c;

    sw_policy_sel_args(L, 2, &s);
    for (c = st->xml->first; c != NULL; c = c->next) {
        if (sw_policy_sel_match(&s, st->xml, c)) {
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    lua_pushboolean(L, 0);
    return 1;
}

static int
sw_policy_st_text(lua_State *L)
{
    sw_stanza_t     *st = sw_policy_check_st(L, NULL);
    sw_policy_sel_t  s;
    const sw_xml_t  *c;

    sw_policy_sel_args(L, 2, &s);
    for (c = st->xml->first; c != NULL; c = c->next) {
        if (sw_policy_sel_match(&s, st->xml, c)) {
            lua_pushstring(L, sw_xml_text(c));
            return 1;
        }
    }
    lua_pushnil(L);
    return 1;
}

/* The child elements in document order, as { name = , ns = } tables. */
static int
sw_policy_st_children(lua_State *L)
{
    sw_stanza_t    *st = sw_policy_check_st(L, NULL);
    const sw_xml_t *c;
    lua_Integer     i = 0;

    lua_newtable(L);
    for (c = st->xml->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM) {
            lua_createtable(L, 0, 2);
            lua_pushstring(L, c->name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, c->ns ? c->ns : "");
            lua_setfield(L, -2, "ns");
            lua_rawseti(L, -2, ++i);
        }
    }
    return 1;
}

/* Removes the children for which keep(selectors) says so; the count. */
static int
sw_policy_st_remove(lua_State *L, sw_policy_st_t *h,
                    const sw_policy_sel_t *sels, size_t n, bool keep)
{
    const sw_stanza_t *st = *h->stp;

    if (st->kind == SW_STANZA_IQ && st->type != NULL
        && (strcmp(st->type, "get") == 0 || strcmp(st->type, "set") == 0))
    {
        /* RFC 6120 §8.2.3: a request has exactly one payload */
        return luaL_error(L, "an IQ request is not folded: bounce it");
    }
    lua_pushinteger(L, (lua_Integer) sw_policy_fold(h->stp, sels, n, keep));
    return 1;
}

size_t
sw_policy_fold(sw_stanza_t **stp, const sw_policy_sel_t *sels, size_t n,
               bool keep)
{
    sw_stanza_t *st = sw_stanza_writable(stp);
    sw_xml_t    *c, *next;
    size_t       i, removed = 0;
    bool         match;

    for (c = st->xml->first; c != NULL; c = next) {
        next = c->next;
        if (c->type != SW_XML_ELEM) {
            /* whitespace between children goes with keep (only what is
             * listed stays); strip leaves it */
            if (keep) {
                sw_xml_unlink(c);
            }
            continue;
        }
        match = false;
        for (i = 0; i < n && !match; i++) {
            match = sw_policy_sel_match(&sels[i], st->xml, c);
        }
        if (match != keep) {
            sw_xml_unlink(c);
            removed++;
        }
    }
    if (removed > 0 && st->kind == SW_STANZA_IQ) {
        sw_stanza_reparse(st);          /* the payload may have gone */
    }
    return removed;
}

/* st:strip(name, ns) or st:strip("{ns}name") */
static int
sw_policy_st_strip(lua_State *L)
{
    sw_policy_st_t  *h;
    sw_policy_sel_t  s;

    sw_policy_check_st(L, &h);
    if (lua_gettop(L) == 2 && lua_type(L, 2) == LUA_TSTRING
        && lua_tostring(L, 2)[0] == '{')
    {
        if (!sw_policy_sel_parse(L, lua_tostring(L, 2), &s)) {
            return luaL_argerror(L, 2, "not \"{ns}name\" or \"{ns}\"");
        }
    } else {
        sw_policy_sel_args(L, 2, &s);
        if (s.name == NULL && s.ns == NULL) {
            return luaL_argerror(L, 2, "strip what?");
        }
    }
    return sw_policy_st_remove(L, h, &s, 1, false);
}

/* st:keep{ "body", "{ns}name", "{ns}" ... } or st:keep("body", ...) */
static int
sw_policy_st_keep(lua_State *L)
{
    sw_policy_st_t  *h;
    sw_policy_sel_t  sels[64];
    size_t           n = 0;
    int              i, top;
    const char      *text;

    sw_policy_check_st(L, &h);
    if (lua_type(L, 2) == LUA_TTABLE) {
        top = (int) lua_rawlen(L, 2);
        if (top > (int) (sizeof(sels) / sizeof(sels[0]))) {
            return luaL_error(L, "keep: more than %d selectors",
                              (int) (sizeof(sels) / sizeof(sels[0])));
        }
        luaL_checkstack(L, top, NULL);
        for (i = 1; i <= top; i++) {
            lua_rawgeti(L, 2, i);
        }
        lua_remove(L, 2);
    }
    top = lua_gettop(L);
    if (top - 1 > (int) (sizeof(sels) / sizeof(sels[0]))) {
        return luaL_error(L, "keep: more than %d selectors",
                          (int) (sizeof(sels) / sizeof(sels[0])));
    }
    /* each "{ns}..." selector anchors its namespace on the stack */
    luaL_checkstack(L, top, NULL);
    for (i = 2; i <= top; i++) {
        text = luaL_checkstring(L, i);
        if (!sw_policy_sel_parse(L, text, &sels[n])) {
            return luaL_argerror(L, i, "not \"name\", \"{ns}name\" or "
                                 "\"{ns}\"");
        }
        n++;
    }
    return sw_policy_st_remove(L, h, sels, n, true);
}

static int
sw_policy_st_xml(lua_State *L)
{
    sw_stanza_t *st = sw_policy_check_st(L, NULL);
    char        *s = sw_xml_to_string(st->xml, st->xml->ns);

    lua_pushstring(L, s);
    free(s);
    return 1;
}

static int
sw_policy_st_tostring(lua_State *L)
{
    sw_policy_st_t *h = luaL_checkudata(L, 1, SW_POLICY_STANZA_MT);

    lua_pushstring(L, h->stp != NULL ? "stanza" : "stanza (call returned)");
    return 1;
}

static const luaL_Reg sw_policy_st_methods[] = {
    { "kind", sw_policy_st_kind },
    { "type", sw_policy_st_type },
    { "id", sw_policy_st_id },
    { "to", sw_policy_st_to },
    { "from", sw_policy_st_from },
    { "attr", sw_policy_st_attr },
    { "payload_ns", sw_policy_st_payload_ns },
    { "child", sw_policy_st_child },
    { "text", sw_policy_st_text },
    { "children", sw_policy_st_children },
    { "strip", sw_policy_st_strip },
    { "keep", sw_policy_st_keep },
    { "xml", sw_policy_st_xml },
    { NULL, NULL },
};

/* ------------------------------------------------------ link handle --- */

static sw_link_t *
sw_policy_check_link(lua_State *L)
{
    sw_policy_link_t *h = luaL_checkudata(L, 1, SW_POLICY_LINK_MT);

    if (h->link == NULL) {
        luaL_error(L, "a link handle used after its call returned");
    }
    return h->link;
}

static int
sw_policy_link_name(lua_State *L)
{
    lua_pushstring(L, sw_link_name(sw_policy_check_link(L)));
    return 1;
}

static int
sw_policy_link_up(lua_State *L)
{
    lua_pushboolean(L, sw_link_is_up(sw_policy_check_link(L)));
    return 1;
}

static int
sw_policy_link_queued(lua_State *L)
{
    sw_link_stats_t s;

    sw_link_stats(sw_policy_check_link(L), &s);
    lua_pushinteger(L, (lua_Integer) s.queued);
    return 1;
}

static int
sw_policy_link_rtt(lua_State *L)
{
    double rtt = sw_link_path_rtt(sw_policy_check_link(L));

    if (rtt > 0) {
        lua_pushnumber(L, rtt);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

static const luaL_Reg sw_policy_link_methods[] = {
    { "name", sw_policy_link_name },
    { "up", sw_policy_link_up },
    { "queued", sw_policy_link_queued },
    { "rtt", sw_policy_link_rtt },
    { NULL, NULL },
};

static void
sw_policy_metatable(lua_State *L, const char *name, const luaL_Reg *methods,
                    lua_CFunction tostring)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    if (tostring != NULL) {
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* ------------------------------------------------------- rule tables --- */

/*
 * The declarative form, compiled to a function over the stanza API.
 * Unknown keys and wrong types are errors naming the key.
 */
static const char sw_policy_rules_lua[] =
"local chain, rules = ...\n"
"local CS = 'http://jabber.org/protocol/chatstates'\n"
"local known = { drop_chat_states = 'boolean', drop_presence = 'boolean',\n"
"  iq_allow = 'table', message_keep = 'table', message_strip = 'table',\n"
"  presence_fold = 'string' }\n"
"for k, v in pairs(rules) do\n"
"  if type(k) ~= 'string' or not known[k] then\n"
"    error(chain .. ': unknown rule ' .. tostring(k), 0)\n"
"  end\n"
"  if type(v) ~= known[k] then\n"
"    error(chain .. '.' .. k .. ': a ' .. known[k] .. ' is needed, not a '\n"
"          .. type(v), 0)\n"
"  end\n"
"end\n"
"local function list(k)\n"
"  local t = rules[k]\n"
"  if t == nil then return nil end\n"
"  for i, v in ipairs(t) do\n"
"    if type(v) ~= 'string' then\n"
"      error(chain .. '.' .. k .. '[' .. i .. ']: a string is needed', 0)\n"
"    end\n"
"  end\n"
"  return t\n"
"end\n"
"local iq_allow, keep, strip = list('iq_allow'), list('message_keep'),\n"
"  list('message_strip')\n"
"-- a folded message keeps its body and, if it is one, its error\n"
"if keep then\n"
"  local k = { 'body', 'error' }\n"
"  for _, v in ipairs(keep) do k[#k + 1] = v end\n"
"  keep = k\n"
"end\n"
"-- folded presence keeps what MUC, FMUC and the presence cache's\n"
"-- reset need, and its error\n"
"local MUC = { '{http://jabber.org/protocol/muc}',\n"
"  '{http://jabber.org/protocol/muc#user}',\n"
"  '{http://isode.com/protocol/fmuc}',\n"
"  '{urn:skywave:presence-cache:0}', 'error' }\n"
"local show = { 'show', 'status', 'priority' }\n"
"for _, v in ipairs(MUC) do show[#show + 1] = v end\n"
"local allowed = {}\n"
"for _, ns in ipairs(iq_allow or {}) do allowed[ns] = true end\n"
"local fold = rules.presence_fold\n"
"if fold ~= nil and fold ~= 'show' and fold ~= 'available' then\n"
"  error(chain .. '.presence_fold: \"show\" or \"available\", not \"'\n"
"        .. fold .. '\"', 0)\n"
"end\n"
"local drop_cs, drop_presence = rules.drop_chat_states, rules.drop_presence\n"
"-- what a standalone notification may carry besides its chat state\n"
"local minor = { ['urn:xmpp:hints'] = true, ['urn:xmpp:sid:0'] = true,\n"
"  [CS] = true }\n"
"local function standalone(st)\n"
"  for _, c in ipairs(st:children()) do\n"
"    if not minor[c.ns] and c.name ~= 'thread' then return false end\n"
"  end\n"
"  return true\n"
"end\n"
"return function(st)\n"
"  local kind = st:kind()\n"
"  if kind == 'message' then\n"
"    if drop_cs and st:child(nil, CS) then\n"
"      if standalone(st) then return 'drop' end\n"
"      st:strip(nil, CS)\n"
"    end\n"
"    if keep then st:keep(keep) end\n"
"    if strip then for _, s in ipairs(strip) do st:strip(s) end end\n"
"  elseif kind == 'presence' then\n"
"    if drop_presence then return 'drop' end\n"
"    if fold == 'show' then st:keep(show)\n"
"    elseif fold == 'available' then st:keep(MUC) end\n"
"  elseif kind == 'iq' and iq_allow then\n"
"    local t = st:type()\n"
"    if (t == 'get' or t == 'set') and not allowed[st:payload_ns() or ''] then\n"
"      return 'bounce', 'service-unavailable'\n"
"    end\n"
"  end\n"
"  return 'pass'\n"
"end\n";

/* ------------------------------------------------------- life cycle --- */

static void
sw_policy_err(char *err, size_t errlen, const char *fmt, const char *a,
              const char *b)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, fmt, a, b);
    }
}

static int
sw_policy_chain_index(const char *chain)
{
    int i;

    for (i = 0; sw_policy_chains[i] != NULL; i++) {
        if (strcmp(sw_policy_chains[i], chain) == 0) {
            return i;
        }
    }
    return -1;
}

/*
 * Runs in protected mode on the loaded chunk (index 1), with the
 * environment table at index 2: calls it, checks the table it returns and
 * keeps its chain functions in the registry.
 */
static int
sw_policy_setup(lua_State *L)
{
    sw_policy_t *p = sw_policy_of(L);
    const char  *key, *v;
    int          i, t;

    lua_pushvalue(L, 1);
    lua_call(L, 0, 1);
    if (lua_type(L, -1) != LUA_TTABLE) {
        return luaL_error(L, "%s: the policy must return a table of chain "
                          "functions, not %s", p->path,
                          luaL_typename(L, -1));
    }
    t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            return luaL_error(L, "%s: the policy's table has a key that is "
                              "not a name", p->path);
        }
        key = lua_tostring(L, -2);
        if (strcmp(key, "name") == 0) {
            if (lua_type(L, -1) != LUA_TSTRING) {
                return luaL_error(L, "%s: name must be a string", p->path);
            }
            free(p->name);
            p->name = sw_strdup(lua_tostring(L, -1));
        } else if (strcmp(key, "on_error") == 0) {
            v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(v, "pass") == 0) {
                p->on_error = SW_PASS;
            } else if (strcmp(v, "drop") == 0) {
                p->on_error = SW_DROP;
            } else if (strcmp(v, "bounce") == 0) {
                p->on_error = SW_BOUNCE;
            } else {
                return luaL_error(L, "%s: on_error must be \"pass\", "
                                  "\"drop\" or \"bounce\"", p->path);
            }
        } else if ((i = sw_policy_chain_index(key)) >= 0) {
            if (lua_type(L, -1) == LUA_TTABLE) {
                /* a rule table: compile it */
                if (luaL_loadbufferx(L, sw_policy_rules_lua,
                                     sizeof(sw_policy_rules_lua) - 1,
                                     "=rules", "t") != LUA_OK)
                {
                    return lua_error(L);
                }
                lua_pushvalue(L, 2);            /* the sandbox */
                lua_setupvalue(L, -2, 1);
                lua_pushstring(L, key);
                lua_pushvalue(L, -3);
                if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
                    return luaL_error(L, "%s: %s", p->path,
                                      lua_tostring(L, -1));
                }
                lua_replace(L, -2);             /* the function for it */
            } else if (lua_type(L, -1) != LUA_TFUNCTION) {
                return luaL_error(L, "%s: %s must be a function or a rule "
                                  "table, not %s", p->path, key,
                                  luaL_typename(L, -1));
            }
            lua_pushvalue(L, -1);
            p->fn[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        } else {
            return luaL_error(L, "%s: unknown field \"%s\" (chains: "
                              "outbound, inbound, preroute, deliver; also "
                              "name, on_error)", p->path, key);
        }
        lua_pop(L, 1);
    }
    return 0;
}

typedef struct sw_policy_boot_s {
    const char *text;
    size_t      len;
    const char *chunk;
} sw_policy_boot_t;

/* In protected mode: the handles' metatables, the chunk (text only) and
 * its environment (the safe libraries, print to the log); then setup. */
static int
sw_policy_boot(lua_State *L)
{
    sw_policy_boot_t *b = lua_touserdata(L, 1);

    lua_settop(L, 0);
    sw_policy_metatable(L, SW_POLICY_STANZA_MT, sw_policy_st_methods,
                        sw_policy_st_tostring);
    sw_policy_metatable(L, SW_POLICY_LINK_MT, sw_policy_link_methods, NULL);
    if (luaL_loadbufferx(L, b->text, b->len, b->chunk, "t") != LUA_OK) {
        return lua_error(L);
    }
    lua_newtable(L);
    sw_lua_safe_libs(L, -1);
    lua_pushcfunction(L, sw_policy_print);
    lua_setfield(L, -2, "print");
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    lua_pushvalue(L, -1);
    lua_setupvalue(L, 1, 1);            /* the chunk's _ENV */
    return sw_policy_setup(L);          /* chunk at 1, environment at 2 */
}

sw_policy_t *
sw_policy_load_string(const char *name, const char *text, size_t len,
                      const sw_policy_limits_t *lim, char *err,
                      size_t errlen)
{
    sw_policy_t       *p = sw_calloc(1, sizeof(*p));
    sw_policy_boot_t   boot;
    const char        *base;
    lua_State         *L;
    char               chunk[256];
    int                i;

    p->refs = 1;
    p->path = sw_strdup(name);
    base = strrchr(name, '/');
    p->name = sw_strdup(base != NULL ? base + 1 : name);
    p->mem_limit = lim != NULL && lim->memory > 0 ? lim->memory
                                                   : SW_POLICY_MEM_DEFAULT;
    p->max_ticks = (lim != NULL && lim->instructions > 0
                    ? lim->instructions : SW_POLICY_INSNS_DEFAULT)
                   / SW_POLICY_HOOK_COUNT;
    if (p->max_ticks == 0) {
        p->max_ticks = 1;
    }
    p->on_error = SW_PASS;
    p->on_error_cond = "policy-violation";
    for (i = 0; i < SW_POLICY_N_CHAINS; i++) {
        p->fn[i] = LUA_NOREF;
    }
    L = lua_newstate(sw_policy_alloc, p);
    if (L == NULL) {
        sw_policy_err(err, errlen, "%s: cannot create a Lua state%s", name,
                      "");
        sw_policy_unref(p);
        return NULL;
    }
    p->L = L;
    lua_sethook(L, sw_policy_hook, LUA_MASKCOUNT, SW_POLICY_HOOK_COUNT);
    snprintf(chunk, sizeof(chunk), "@%s", name);
    boot.text = text;
    boot.len = len;
    boot.chunk = chunk;
    p->ticks = p->max_ticks;
    /* all of it protected: memory may run out anywhere (a small cap) */
    lua_pushcfunction(L, sw_policy_boot);
    lua_pushlightuserdata(L, &boot);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        sw_policy_err(err, errlen, "%s%s", lua_type(L, -1) == LUA_TSTRING
                      ? lua_tostring(L, -1) : "an error that is not a string",
                      "");
        sw_policy_unref(p);
        return NULL;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    return p;
}

sw_policy_t *
sw_policy_load(const char *path, const sw_policy_limits_t *lim, char *err,
               size_t errlen)
{
    FILE        *fp = fopen(path, "r");
    sw_policy_t *p;
    char        *text;
    size_t       len;

    if (fp == NULL) {
        sw_policy_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    text = sw_alloc(SW_POLICY_MAX_FILE + 1);
    len = fread(text, 1, SW_POLICY_MAX_FILE + 1, fp);
    if (ferror(fp) || len > SW_POLICY_MAX_FILE) {
        sw_policy_err(err, errlen, "%s: %s", path, ferror(fp)
                      ? "cannot read it" : "larger than 1 MB");
        fclose(fp);
        free(text);
        return NULL;
    }
    fclose(fp);
    p = sw_policy_load_string(path, text, len, lim, err, errlen);
    free(text);
    return p;
}

sw_policy_t *
sw_policy_ref(sw_policy_t *p)
{
    p->refs++;
    return p;
}

void
sw_policy_unref(sw_policy_t *p)
{
    if (p == NULL || --p->refs > 0) {
        return;
    }
    if (p->L != NULL) {
        lua_close(p->L);
    }
    free(p->name);
    free(p->path);
    free(p);
}

const char *
sw_policy_name(const sw_policy_t *p)
{
    return p->name;
}

const char *
sw_policy_path(const sw_policy_t *p)
{
    return p->path;
}

bool
sw_policy_has(const sw_policy_t *p, const char *chain)
{
    int i = sw_policy_chain_index(chain);

    return i >= 0 && p->fn[i] != LUA_NOREF;
}

size_t
sw_policy_memory(const sw_policy_t *p)
{
    return p->mem_used;
}

uint64_t
sw_policy_failures(const sw_policy_t *p)
{
    return p->failures;
}

/* ------------------------------------------------------------- calls --- */

static sw_verdict_e
sw_policy_failed(sw_policy_t *p, const char *chain, const char *why,
                 const char **cond)
{
    p->failures++;
    sw_log_rl_error(&p->rl, "policy %s (%s): %s: %s", p->name, chain, why,
                    p->on_error == SW_PASS ? "passed"
                    : p->on_error == SW_DROP ? "dropped" : "bounced");
    if (p->on_error == SW_BOUNCE && cond != NULL) {
        *cond = p->on_error_cond;
    }
    return p->on_error;
}

typedef struct sw_policy_handles_s {
    sw_stanza_t **stp;
    sw_link_t    *link;
} sw_policy_handles_t;

/* In protected mode: the call's stanza and link handles (or nil). */
static int
sw_policy_handles(lua_State *L)
{
    sw_policy_handles_t *hs = lua_touserdata(L, 1);
    sw_policy_st_t      *sh;
    sw_policy_link_t    *lh;

    sh = lua_newuserdatauv(L, sizeof(*sh), 0);
    sh->stp = NULL;
    luaL_setmetatable(L, SW_POLICY_STANZA_MT);
    sh->stp = hs->stp;
    if (hs->link != NULL) {
        lh = lua_newuserdatauv(L, sizeof(*lh), 0);
        lh->link = NULL;
        luaL_setmetatable(L, SW_POLICY_LINK_MT);
        lh->link = hs->link;
    } else {
        lua_pushnil(L);
    }
    return 2;
}

sw_verdict_e
sw_policy_run(sw_policy_t *p, const char *chain, sw_stanza_t **stp,
              sw_link_t *link, const char **cond)
{
    lua_State           *L = p->L;
    sw_policy_handles_t  hs;
    sw_policy_st_t      *sh;
    sw_policy_link_t    *lh;
    sw_verdict_e         v;
    const char          *verdict, *c;
    int                  i = sw_policy_chain_index(chain), rc;

    if (i < 0 || p->fn[i] == LUA_NOREF) {
        return SW_PASS;
    }
    lua_settop(L, 0);
    if (!lua_checkstack(L, 8)) {
        return sw_policy_failed(p, chain, "no stack", cond);
    }
    /* The handles are made in protected mode (the state may be at its
     * memory cap) and stay at 1 and 2, below the call, so that they can
     * be cleared when it returns. */
    hs.stp = stp;
    hs.link = link;
    p->ticks = p->max_ticks;
    lua_pushcfunction(L, sw_policy_handles);
    lua_pushlightuserdata(L, &hs);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        v = sw_policy_failed(p, chain, lua_type(L, -1) == LUA_TSTRING
                             ? lua_tostring(L, -1) : "no memory", cond);
        lua_settop(L, 0);
        return v;
    }
    sh = lua_touserdata(L, 1);
    lh = lua_touserdata(L, 2);          /* NULL: nil, no link */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->fn[i]);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    rc = lua_pcall(L, 2, 2, 0);
    sh->stp = NULL;
    if (lh != NULL) {
        lh->link = NULL;
    }
    if (rc != LUA_OK) {
        c = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
            : "an error that is not a string";
        v = sw_policy_failed(p, chain, c, cond);
        lua_settop(L, 0);
        return v;
    }
    v = SW_PASS;
    verdict = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (lua_isnil(L, -2) || (verdict != NULL && strcmp(verdict, "pass") == 0))
    {
        v = SW_PASS;
    } else if (verdict != NULL && strcmp(verdict, "drop") == 0) {
        v = SW_DROP;
    } else if (verdict != NULL && strcmp(verdict, "bounce") == 0) {
        c = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        c = c == NULL ? "policy-violation"      /* RFC 6120 §8.3.3.12 */
                      : sw_stanza_condition(c);
        if (c == NULL) {
            v = sw_policy_failed(p, chain, "bounce with a condition RFC "
                                 "6120 does not define", cond);
            lua_settop(L, 0);
            return v;
        }
        if (cond != NULL) {
            *cond = c;          /* static: the Lua string may be collected */
        }
        v = SW_BOUNCE;
    } else {
        v = sw_policy_failed(p, chain, "the verdict is not \"pass\", "
                             "\"drop\" or \"bounce\"", cond);
    }
    lua_settop(L, 0);
    return v;
}

sw_verdict_e
sw_policy_filter(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    sw_policy_filter_t *f = ud;

    return sw_policy_run(f->policy, f->chain, stp,
                         f->link_ctx ? ctx : NULL, cond);
}
