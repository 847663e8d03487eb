/*
 * Declared options: defaults, typed conversion of config entries into a
 * conf struct, the check for entries nobody claimed, and --list-options.
 * A value of the wrong type or out of range is an error naming file and
 * line; nothing is clamped or ignored (STYLE.md).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_config.h>
#include <skywave/sw_log.h>

#define SW_OPT_ERRLEN  512

/* Why a value was refused: "expected ..., got ...". */
typedef struct sw_opt_err_s {
    char  msg[SW_OPT_ERRLEN];
} sw_opt_err_t;

static void
sw_opt_err(sw_opt_err_t *err, const char *fmt, ...) SW_PRINTF(2, 3);

static void
sw_opt_err(sw_opt_err_t *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static const char *const sw_opt_type_names[] = {
    "boolean", "integer", "size", "duration", "string", "path", "enum",
    "string list"
};

const char *
sw_opt_type_name(sw_opt_type_e t)
{
    if ((unsigned) t >= sizeof(sw_opt_type_names) / sizeof(char *)) {
        return "unknown";
    }
    return sw_opt_type_names[t];
}

const sw_option_t *
sw_option_find(const sw_option_t *opts, const char *name)
{
    for ( ; opts != NULL && opts->name != NULL; opts++) {
        if (strcmp(opts->name, name) == 0) {
            return opts;
        }
    }
    return NULL;
}

/* ------------------------------------------------------- describing --- */

/* The given value as the admin wrote it: 70000, "verbose", a table. */
static void
sw_opt_describe(const sw_cval_t *v, char *buf, size_t size)
{
    switch (v->type) {
    case SW_CVAL_BOOL:
        snprintf(buf, size, "%s", v->b ? "true" : "false");
        break;
    case SW_CVAL_NUMBER:
        snprintf(buf, size, "%.14g", v->num);
        break;
    case SW_CVAL_STRING:
        snprintf(buf, size, "\"%.200s\"", v->str);
        break;
    case SW_CVAL_LIST:
        snprintf(buf, size, "a list");
        break;
    case SW_CVAL_TABLE:
        snprintf(buf, size, "a table");
        break;
    }
}

/* Bytes in the largest unit that divides them: 262144 -> "256k". */
static void
sw_opt_size_text(int64_t bytes, char *buf, size_t size)
{
    static const char units[] = "GMk";
    int64_t           mult = 1024 * 1024 * 1024;
    int               i;

    for (i = 0; i < 3; i++, mult /= 1024) {
        if (bytes != 0 && bytes % mult == 0) {
            snprintf(buf, size, "%lld%c", (long long) (bytes / mult),
                     units[i]);
            return;
        }
    }
    snprintf(buf, size, "%lld", (long long) bytes);
}

/* Milliseconds in the largest unit that divides them: 300000 -> "5m". */
static void
sw_opt_ms_text(int64_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0) {
        snprintf(buf, size, "%lldh", (long long) (ms / 3600000));
    } else if (ms != 0 && ms % 60000 == 0) {
        snprintf(buf, size, "%lldm", (long long) (ms / 60000));
    } else if (ms != 0 && ms % 1000 == 0) {
        snprintf(buf, size, "%llds", (long long) (ms / 1000));
    } else {
        snprintf(buf, size, "%lldms", (long long) ms);
    }
}

static bool
sw_opt_bounded(const sw_option_t *opt)
{
    return opt->min != 0 || opt->max != 0;
}

/* ------------------------------------------------------- converting --- */

static int
sw_opt_to_int(const sw_option_t *opt, const sw_cval_t *v, int64_t *out,
              sw_opt_err_t *err)
{
    char got[256];

    sw_opt_describe(v, got, sizeof(got));
    if (v->type != SW_CVAL_NUMBER || v->num != floor(v->num)
        || v->num < -9.2e18 || v->num > 9.2e18)
    {
        goto bad;
    }
    *out = (int64_t) v->num;
    if (sw_opt_bounded(opt) && (*out < opt->min || *out > opt->max)) {
        goto bad;
    }
    return SW_OK;

bad:
    if (sw_opt_bounded(opt)) {
        sw_opt_err(err, "expected an integer from %lld to %lld, got %s",
                   (long long) opt->min, (long long) opt->max, got);
    } else {
        sw_opt_err(err, "expected an integer, got %s", got);
    }
    return SW_ERROR;
}

/* 4096, "4096", "4k", "4K", "2M", "1G" (1024 multiples). */
static int
sw_opt_to_size(const sw_option_t *opt, const sw_cval_t *v, size_t *out,
               sw_opt_err_t *err)
{
    char        got[256], lo[32], hi[32];
    const char *p;
    uint64_t    n = 0, mult = 1;
    double      d;

    sw_opt_describe(v, got, sizeof(got));
    if (v->type == SW_CVAL_NUMBER) {
        d = v->num;
        if (d < 0 || d != floor(d) || d > 9.0e18) {
            goto bad;
        }
        n = (uint64_t) d;
    } else if (v->type == SW_CVAL_STRING) {
        p = v->str;
        if (*p < '0' || *p > '9') {
            goto bad;
        }
        for ( ; *p >= '0' && *p <= '9'; p++) {
            if (n > (UINT64_MAX - 9) / 10) {
                goto bad;
            }
            n = n * 10 + (uint64_t) (*p - '0');
        }
        switch (*p) {
        case '\0':
            break;
        case 'k':
        case 'K':
            mult = 1024;
            p++;
            break;
        case 'M':
            mult = 1024 * 1024;
            p++;
            break;
        case 'G':
            mult = 1024 * 1024 * 1024;
            p++;
            break;
        default:
            goto bad;
        }
        if (*p != '\0' || n > UINT64_MAX / mult
            || n * mult > (uint64_t) INT64_MAX || n * mult > SIZE_MAX)
        {
            goto bad;
        }
        n *= mult;
    } else {
        goto bad;
    }
    if (sw_opt_bounded(opt)
        && ((int64_t) n < opt->min || (int64_t) n > opt->max))
    {
        sw_opt_size_text(opt->min, lo, sizeof(lo));
        sw_opt_size_text(opt->max, hi, sizeof(hi));
        sw_opt_err(err, "expected a size from %s to %s, got %s", lo, hi,
                   got);
        return SW_ERROR;
    }
    *out = (size_t) n;
    return SW_OK;

bad:
    sw_opt_err(err, "expected a size (a number of bytes, or a string such "
               "as \"256k\", \"2M\", \"1G\"), got %s", got);
    return SW_ERROR;
}

/* 1.5 (seconds), "500ms", "30s", "5m", "2h". */
static int
sw_opt_to_duration(const sw_option_t *opt, const sw_cval_t *v, double *out,
                   sw_opt_err_t *err)
{
    char        got[256], lo[32], hi[32];
    char       *end;
    const char *p;
    double      d, ms;

    sw_opt_describe(v, got, sizeof(got));
    if (v->type == SW_CVAL_NUMBER) {
        d = v->num;
    } else if (v->type == SW_CVAL_STRING) {
        p = v->str;
        if (!((*p >= '0' && *p <= '9') || *p == '.')) {
            goto bad;
        }
        d = strtod(p, &end);
        if (end == p) {
            goto bad;
        }
        if (strcmp(end, "ms") == 0) {
            d /= 1000;
        } else if (strcmp(end, "s") == 0 || *end == '\0') {
            /* seconds */
        } else if (strcmp(end, "m") == 0) {
            d *= 60;
        } else if (strcmp(end, "h") == 0) {
            d *= 3600;
        } else {
            goto bad;
        }
    } else {
        goto bad;
    }
    if (!isfinite(d) || d < 0) {
        goto bad;
    }
    ms = d * 1000;
    if (sw_opt_bounded(opt)
        && (ms < (double) opt->min || ms > (double) opt->max))
    {
        sw_opt_ms_text(opt->min, lo, sizeof(lo));
        sw_opt_ms_text(opt->max, hi, sizeof(hi));
        sw_opt_err(err, "expected a duration from %s to %s, got %s", lo, hi,
                   got);
        return SW_ERROR;
    }
    *out = d;
    return SW_OK;

bad:
    sw_opt_err(err, "expected a duration (seconds, or a string such as "
               "\"500ms\", \"30s\", \"5m\", \"2h\"), got %s", got);
    return SW_ERROR;
}

static int
sw_opt_to_enum(const sw_option_t *opt, const sw_cval_t *v, int *out,
               sw_opt_err_t *err)
{
    char    got[256];
    size_t  len;
    int     i;

    if (v->type == SW_CVAL_STRING && opt->choices != NULL) {
        for (i = 0; opt->choices[i] != NULL; i++) {
            if (strcmp(opt->choices[i], v->str) == 0) {
                *out = i;
                return SW_OK;
            }
        }
    }
    sw_opt_describe(v, got, sizeof(got));
    snprintf(err->msg, sizeof(err->msg), "expected one of ");
    for (i = 0; opt->choices != NULL && opt->choices[i] != NULL; i++) {
        len = strlen(err->msg);
        snprintf(err->msg + len, sizeof(err->msg) - len, "%s\"%s\"",
                 i ? ", " : "", opt->choices[i]);
    }
    len = strlen(err->msg);
    snprintf(err->msg + len, sizeof(err->msg) - len, ", got %s", got);
    return SW_ERROR;
}

static int
sw_opt_to_strlist(const sw_cval_t *v, const char ***out, sw_pool_t *pool,
                  sw_opt_err_t *err)
{
    const char **list;
    char         got[256];
    size_t       i;

    if (v->type == SW_CVAL_STRING) {
        list = sw_pool_alloc(pool, 2 * sizeof(char *));
        list[0] = sw_pool_strdup(pool, v->str);
        list[1] = NULL;
        *out = list;
        return SW_OK;
    }
    if (v->type != SW_CVAL_LIST) {
        sw_opt_describe(v, got, sizeof(got));
        sw_opt_err(err, "expected a list of strings, got %s", got);
        return SW_ERROR;
    }
    list = sw_pool_alloc(pool, (v->n + 1) * sizeof(char *));
    for (i = 0; i < v->n; i++) {
        if (v->items[i]->type != SW_CVAL_STRING) {
            sw_opt_describe(v->items[i], got, sizeof(got));
            sw_opt_err(err, "expected a list of strings, got %s as item "
                       "%zu", got, i + 1);
            return SW_ERROR;
        }
        list[i] = sw_pool_strdup(pool, v->items[i]->str);
    }
    list[v->n] = NULL;
    *out = list;
    return SW_OK;
}

/*
 * Converts v for opt and stores it at conf + opt->offset.  dir resolves
 * relative paths (NULL: keep them as written).
 */
static int
sw_opt_store(const sw_option_t *opt, const sw_cval_t *v, void *conf,
             const char *dir, sw_pool_t *pool, sw_opt_err_t *err)
{
    char         *field = (char *) conf + opt->offset;
    char          got[256];
    int64_t       i64;
    size_t        sz;
    double        d;
    int           e;
    const char  **list;

    switch (opt->type) {
    case SW_OPT_BOOL:
        if (v->type != SW_CVAL_BOOL) {
            sw_opt_describe(v, got, sizeof(got));
            sw_opt_err(err, "expected true or false, got %s", got);
            return SW_ERROR;
        }
        *(bool *) field = v->b;
        return SW_OK;

    case SW_OPT_INT:
        if (sw_opt_to_int(opt, v, &i64, err) != SW_OK) {
            return SW_ERROR;
        }
        *(int64_t *) field = i64;
        return SW_OK;

    case SW_OPT_SIZE:
        if (sw_opt_to_size(opt, v, &sz, err) != SW_OK) {
            return SW_ERROR;
        }
        *(size_t *) field = sz;
        return SW_OK;

    case SW_OPT_DURATION:
        if (sw_opt_to_duration(opt, v, &d, err) != SW_OK) {
            return SW_ERROR;
        }
        *(double *) field = d;
        return SW_OK;

    case SW_OPT_STRING:
    case SW_OPT_PATH:
        if (v->type != SW_CVAL_STRING
            || (opt->type == SW_OPT_PATH && v->str[0] == '\0'))
        {
            sw_opt_describe(v, got, sizeof(got));
            sw_opt_err(err, "expected a %s, got %s",
                       opt->type == SW_OPT_PATH ? "non-empty path"
                                                : "string", got);
            return SW_ERROR;
        }
        if (opt->type == SW_OPT_PATH && v->str[0] != '/' && dir != NULL) {
            *(const char **) field = sw_pool_printf(pool, "%s%s%s", dir,
                dir[0] != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/",
                v->str);
        } else {
            *(const char **) field = sw_pool_strdup(pool, v->str);
        }
        return SW_OK;

    case SW_OPT_ENUM:
        if (sw_opt_to_enum(opt, v, &e, err) != SW_OK) {
            return SW_ERROR;
        }
        *(int *) field = e;
        return SW_OK;

    case SW_OPT_STRLIST:
        if (sw_opt_to_strlist(v, &list, pool, err) != SW_OK) {
            return SW_ERROR;
        }
        *(const char ***) field = list;
        return SW_OK;
    }
    sw_opt_err(err, "option has an unknown type %d", (int) opt->type);
    return SW_ERROR;
}

/* ---------------------------------------------------------- defaults --- */

/* A default, read as config text of the option's type. */
static sw_cval_t *
sw_opt_parse_default(const sw_option_t *opt, sw_pool_t *pool)
{
    sw_cval_t  *v = sw_pool_calloc(pool, sizeof(*v));
    const char *s = opt->def, *p, *comma;
    char       *end;
    size_t      n, i;

    switch (opt->type) {
    case SW_OPT_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
            v->type = SW_CVAL_BOOL;
            v->b = s[0] == 't';
            return v;
        }
        break;

    case SW_OPT_INT:
    case SW_OPT_SIZE:
    case SW_OPT_DURATION:
        v->num = strtod(s, &end);
        if (end != s && *end == '\0') {
            v->type = SW_CVAL_NUMBER;
            return v;
        }
        break;

    case SW_OPT_STRLIST:
        /* "a,b,c"; "" is the empty list */
        v->type = SW_CVAL_LIST;
        n = *s ? 1 : 0;
        for (p = s; *p; p++) {
            n += *p == ',';
        }
        v->n = n;
        v->items = sw_pool_calloc(pool, sizeof(sw_cval_t *) * (n ? n : 1));
        for (i = 0, p = s; i < n; i++) {
            comma = strchr(p, ',');
            if (comma == NULL) {
                comma = p + strlen(p);
            }
            while (p < comma && (*p == ' ' || *p == '\t')) {
                p++;
            }
            end = (char *) comma;
            while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }
            v->items[i] = sw_pool_calloc(pool, sizeof(sw_cval_t));
            v->items[i]->type = SW_CVAL_STRING;
            v->items[i]->str = sw_pool_strndup(pool, p, (size_t) (end - p));
            p = *comma ? comma + 1 : comma;
        }
        return v;

    default:
        break;
    }
    v->type = SW_CVAL_STRING;
    v->str = s;
    return v;
}

static void
sw_opt_zero(const sw_option_t *opt, void *conf)
{
    char *field = (char *) conf + opt->offset;

    switch (opt->type) {
    case SW_OPT_BOOL:
        *(bool *) field = false;
        break;
    case SW_OPT_INT:
        *(int64_t *) field = 0;
        break;
    case SW_OPT_SIZE:
        *(size_t *) field = 0;
        break;
    case SW_OPT_DURATION:
        *(double *) field = 0;
        break;
    case SW_OPT_ENUM:
        *(int *) field = 0;
        break;
    case SW_OPT_STRING:
    case SW_OPT_PATH:
        *(const char **) field = NULL;
        break;
    case SW_OPT_STRLIST:
        *(const char ***) field = NULL;
        break;
    }
}

int
sw_options_defaults(const sw_option_t *opts, void *conf, sw_pool_t *pool)
{
    const sw_option_t *opt;
    sw_opt_err_t       err;
    int                rc = SW_OK;

    for (opt = opts; opt != NULL && opt->name != NULL; opt++) {
        if (opt->def == NULL) {
            sw_opt_zero(opt, conf);
            continue;
        }
        /* a bad default is a bug in the declaring code: say so loudly */
        if (sw_opt_store(opt, sw_opt_parse_default(opt, pool), conf, NULL,
                         pool, &err) != SW_OK)
        {
            sw_log_error("option '%s': bad default \"%s\": %s", opt->name,
                         opt->def, err.msg);
            rc = SW_ERROR;
        }
    }
    return rc;
}

/* ------------------------------------------------------------- apply --- */

static void
sw_opt_section_desc(const sw_csection_t *sec, char *buf, size_t size)
{
    switch (sec->scope) {
    case SW_SCOPE_HOST:
        snprintf(buf, size, "VirtualHost \"%s\"", sec->name);
        break;
    case SW_SCOPE_COMPONENT:
        snprintf(buf, size, "Component \"%s\"", sec->name);
        break;
    case SW_SCOPE_PEER:
        snprintf(buf, size, "Peer \"%s\"", sec->name);
        break;
    default:
        snprintf(buf, size, "the global section");
        break;
    }
}

/* "global, VirtualHost" */
static void
sw_opt_scopes_text(unsigned scope, char *buf, size_t size)
{
    static const char *const names[] = {
        "global", "VirtualHost", "Component", "Peer"
    };
    size_t i, len;

    buf[0] = '\0';
    for (i = 0; i < 4; i++) {
        if (scope & (1u << i)) {
            len = strlen(buf);
            snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                     names[i]);
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, size, "nowhere");
    }
}

void
sw_config_note_options(sw_config_t *cfg, const sw_option_t *opts)
{
    const sw_option_t **known;
    size_t              i, cap;

    for (i = 0; i < cfg->n_known; i++) {
        if (cfg->known[i] == opts) {
            return;
        }
    }
    /* grow at powers of two: the pool cannot realloc */
    if (cfg->n_known == 0 || (cfg->n_known >= 4
                              && (cfg->n_known & (cfg->n_known - 1)) == 0))
    {
        cap = cfg->n_known ? cfg->n_known * 2 : 4;
        known = sw_pool_alloc(cfg->pool, cap * sizeof(*known));
        if (cfg->n_known) {
            memcpy(known, cfg->known, cfg->n_known * sizeof(*known));
        }
        cfg->known = known;
    }
    cfg->known[cfg->n_known++] = opts;
}

void
sw_config_error(const sw_config_t *cfg, int line, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0) {
        sw_log_error("%s:%d: %s", cfg->file, line, msg);
    } else {
        sw_log_error("%s: %s", cfg->file, msg);
    }
}

static bool
sw_opt_is_set(sw_config_t *cfg, sw_csection_t *sec, const sw_option_t *opt)
{
    if (sw_config_entry(sec, opt->name) != NULL) {
        return true;
    }
    return sec != &cfg->sections[0] && (opt->scope & SW_SCOPE_GLOBAL)
           && sw_config_entry(&cfg->sections[0], opt->name) != NULL;
}

int
sw_options_apply(const sw_option_t *opts, void *conf, sw_config_t *cfg,
                 sw_csection_t *sec, sw_pool_t *pool)
{
    const sw_option_t *opt;
    sw_centry_t       *e;
    sw_opt_err_t       err;
    char               desc[300], allowed[64];
    size_t             i;
    int                rc = SW_OK;

    sw_config_note_options(cfg, opts);
    sw_opt_section_desc(sec, desc, sizeof(desc));

    for (i = 0; i < sec->n_entries; i++) {
        e = &sec->entries[i];
        opt = sw_option_find(opts, e->key);
        if (opt == NULL) {
            continue;
        }
        /* claimed even when wrong, so it is not reported as unknown too */
        e->claimed = true;
        if (!(opt->scope & sec->scope)) {
            sw_opt_scopes_text(opt->scope, allowed, sizeof(allowed));
            sw_config_error(cfg, e->line, "option '%s' is not allowed in %s "
                       "(allowed: %s)", e->key, desc, allowed);
            rc = SW_ERROR;
            continue;
        }
        if (sw_opt_store(opt, e->val, conf, cfg->dir, pool, &err) != SW_OK) {
            sw_config_error(cfg, e->line, "option '%s': %s", e->key, err.msg);
            rc = SW_ERROR;
        }
    }

    for (opt = opts; opt != NULL && opt->name != NULL; opt++) {
        if (!(opt->flags & SW_OPT_REQUIRED) || !(opt->scope & sec->scope)) {
            continue;
        }
        /* a global-or-narrower option may be set per section instead */
        if (sec->scope == SW_SCOPE_GLOBAL && (opt->scope & ~SW_SCOPE_GLOBAL)) {
            continue;
        }
        if (!sw_opt_is_set(cfg, sec, opt)) {
            sw_config_error(cfg, sec->line, "missing required option '%s' in %s",
                       opt->name, desc);
            rc = SW_ERROR;
        }
    }
    return rc;
}

/* ------------------------------------------------------- unclaimed --- */

/* Optimal string alignment distance (a swap of neighbours counts 1). */
static size_t
sw_opt_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, cost, best;
    size_t *d, w = lb + 1;

    if (la > 64 || lb > 64) {
        return (size_t) -1;
    }
    d = sw_alloc((la + 1) * w * sizeof(size_t));
    for (i = 0; i <= la; i++) {
        d[i * w] = i;
    }
    for (j = 0; j <= lb; j++) {
        d[j] = j;
    }
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = a[i - 1] != b[j - 1];
            best = d[(i - 1) * w + j] + 1;
            if (d[i * w + j - 1] + 1 < best) {
                best = d[i * w + j - 1] + 1;
            }
            if (d[(i - 1) * w + j - 1] + cost < best) {
                best = d[(i - 1) * w + j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1]
                && d[(i - 2) * w + j - 2] + 1 < best)
            {
                best = d[(i - 2) * w + j - 2] + 1;
            }
            d[i * w + j] = best;
        }
    }
    best = d[la * w + lb];
    free(d);
    return best;
}

static const char *
sw_opt_suggest(sw_config_t *cfg, const char *key)
{
    const sw_option_t *opt;
    const char        *best = NULL;
    size_t             i, dist, best_dist = 3;

    for (i = 0; i < cfg->n_known; i++) {
        for (opt = cfg->known[i]; opt->name != NULL; opt++) {
            dist = sw_opt_distance(key, opt->name);
            /* two edits make any two-letter name look like any other */
            if (dist < best_dist && dist < strlen(key)) {
                best = opt->name;
                best_dist = dist;
            }
        }
    }
    return best;
}

int
sw_config_check_unclaimed(sw_config_t *cfg)
{
    sw_csection_t *sec;
    sw_centry_t   *e;
    const char    *near;
    char           desc[300];
    size_t         s, i;
    int            rc = SW_OK;

    for (s = 0; s < cfg->n_sections; s++) {
        sec = &cfg->sections[s];
        sw_opt_section_desc(sec, desc, sizeof(desc));
        for (i = 0; i < sec->n_entries; i++) {
            e = &sec->entries[i];
            if (e->claimed) {
                continue;
            }
            near = sw_opt_suggest(cfg, e->key);
            if (near != NULL) {
                sw_config_error(cfg, e->line, "unknown option '%s' in %s; did "
                           "you mean '%s'?", e->key, desc, near);
            } else {
                sw_config_error(cfg, e->line, "unknown option '%s' in %s", e->key,
                           desc);
            }
            rc = SW_ERROR;
        }
    }
    return rc;
}

/* ------------------------------------------------------------- print --- */

static void
sw_opt_bounds_text(const sw_option_t *opt, char *buf, size_t size)
{
    char   lo[32], hi[32];
    size_t len;
    int    i;

    buf[0] = '\0';
    if (opt->type == SW_OPT_ENUM && opt->choices != NULL) {
        snprintf(buf, size, " [");
        for (i = 0; opt->choices[i] != NULL; i++) {
            len = strlen(buf);
            snprintf(buf + len, size - len, "%s%s", i ? "|" : "",
                     opt->choices[i]);
        }
        len = strlen(buf);
        snprintf(buf + len, size - len, "]");
        return;
    }
    if (!sw_opt_bounded(opt)) {
        return;
    }
    switch (opt->type) {
    case SW_OPT_INT:
        snprintf(lo, sizeof(lo), "%lld", (long long) opt->min);
        snprintf(hi, sizeof(hi), "%lld", (long long) opt->max);
        break;
    case SW_OPT_SIZE:
        sw_opt_size_text(opt->min, lo, sizeof(lo));
        sw_opt_size_text(opt->max, hi, sizeof(hi));
        break;
    case SW_OPT_DURATION:
        sw_opt_ms_text(opt->min, lo, sizeof(lo));
        sw_opt_ms_text(opt->max, hi, sizeof(hi));
        break;
    default:
        return;
    }
    snprintf(buf, size, " [%s..%s]", lo, hi);
}

void
sw_options_print(const sw_option_t *opts, const char *owner, void *fp)
{
    const sw_option_t *opt;
    FILE              *out = fp;
    char               scope[64], def[256], bounds[256];
    int                wn = 4, wd = 7, ws = 5, n = 0, len;

    /* column widths from the content */
    for (opt = opts; opt != NULL && opt->name != NULL; opt++, n++) {
        len = (int) strlen(opt->name);
        wn = len > wn ? len : wn;
        len = opt->def ? (int) strlen(opt->def) + 2 : 10;
        wd = len > wd ? len : wd;
        sw_opt_scopes_text(opt->scope, scope, sizeof(scope));
        len = (int) strlen(scope);
        ws = len > ws ? len : ws;
    }
    fprintf(out, "%s: %d option%s\n", owner ? owner : "options", n,
            n == 1 ? "" : "s");
    if (n == 0) {
        return;
    }
    fprintf(out, "  %-*s  %-11s  %-*s  %-*s  %-6s  %s\n", wn, "NAME",
            "TYPE", wd, "DEFAULT", ws, "SCOPE", "RELOAD", "HELP");
    for (opt = opts; opt->name != NULL; opt++) {
        if (opt->def != NULL) {
            snprintf(def, sizeof(def), "\"%s\"", opt->def);
        } else {
            snprintf(def, sizeof(def), "%s", opt->flags & SW_OPT_REQUIRED
                                             ? "(required)" : "-");
        }
        sw_opt_scopes_text(opt->scope, scope, sizeof(scope));
        sw_opt_bounds_text(opt, bounds, sizeof(bounds));
        fprintf(out, "  %-*s  %-11s  %-*s  %-*s  %-6s  %s%s\n", wn,
                opt->name, sw_opt_type_name(opt->type), wd, def, ws, scope,
                opt->flags & SW_OPT_RELOADABLE ? "yes" : "no",
                opt->help ? opt->help : "", bounds);
    }
}
