/*
 * Configuration: one Lua file run in a sandbox (no io, os, require, load).
 *
 *   log_level = "info"                      -- global options
 *   modules = { "c2s", "storage_sqlite" }
 *   VirtualHost "example.net" {             -- block form ...
 *       c2s_require_encryption = true,
 *   }
 *   VirtualHost "other.net"                 -- ... or Prosody form: the
 *   c2s_require_encryption = false          --     options below belong to it
 *   Component "muc.example.net" "muc" { }
 *   Peer "hq" { address = "10.0.0.1" }
 *
 * A bare section call (Prosody form) makes later global assignments belong
 * to that section until the next section call; a block call puts its
 * table's entries into the section and switches back to the global
 * section.  Reading a global gives the value set earlier in the current
 * section, else in the global section.
 *
 * Reading the file gives raw sections of (key, value, line).  Consumers
 * (the core, each module, the link layer) apply their declared options
 * (sw_option_t) to sections; every entry nobody claims is an error naming
 * file and line, as is a wrong type, an out-of-range value, or an option in
 * a scope that does not allow it.  Values are never clamped or ignored.
 */
#ifndef SKYWAVE_SW_CONFIG_H
#define SKYWAVE_SW_CONFIG_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>

/* Where an option may appear (bit set). */
typedef enum sw_scope_e {
    SW_SCOPE_GLOBAL    = 1u << 0,
    SW_SCOPE_HOST      = 1u << 1,   /* VirtualHost */
    SW_SCOPE_COMPONENT = 1u << 2,   /* Component */
    SW_SCOPE_PEER      = 1u << 3,   /* Peer */
} sw_scope_e;

typedef enum sw_opt_type_e {
    SW_OPT_BOOL = 0,    /* bool */
    SW_OPT_INT,         /* int64_t, bounded by min/max */
    SW_OPT_SIZE,        /* size_t bytes: 4096 or "4k", "2M", "1G" */
    SW_OPT_DURATION,    /* double seconds: 1.5 or "500ms", "30s", "5m", "2h" */
    SW_OPT_STRING,      /* const char * (owned by the config) */
    SW_OPT_PATH,        /* const char *, relative paths resolved against
                           the config file's directory */
    SW_OPT_ENUM,        /* int: index into choices */
    SW_OPT_STRLIST,     /* const char *const * NULL-terminated; a single
                           string is accepted as a one-element list */
} sw_opt_type_e;

#define SW_OPT_RELOADABLE  (1u << 0)    /* SIGHUP applies a new value */
#define SW_OPT_REQUIRED    (1u << 1)    /* no default: must be set */

typedef struct sw_option_s {
    const char         *name;
    sw_opt_type_e       type;
    size_t              offset;     /* offsetof(conf struct, field) */
    unsigned            scope;      /* sw_scope_e bits */
    unsigned            flags;
    int64_t             min, max;   /* INT, SIZE (bytes), DURATION (ms);
                                       min == max == 0: unbounded */
    const char         *def;        /* default, written as in config text
                                       ("true", "5222", "256k", "30s",
                                       "a,b" for lists); NULL = unset */
    const char *const  *choices;    /* ENUM: NULL-terminated */
    const char         *help;       /* one line */
} sw_option_t;

#define SW_OPTION_END { NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL }

/* Raw values as the Lua file gave them. */
typedef enum sw_cval_type_e {
    SW_CVAL_BOOL = 0,
    SW_CVAL_NUMBER,
    SW_CVAL_STRING,
    SW_CVAL_LIST,       /* Lua sequence 1..n */
    SW_CVAL_TABLE,      /* string keys */
} sw_cval_type_e;

typedef struct sw_cval_s sw_cval_t;
struct sw_cval_s {
    sw_cval_type_e   type;
    bool             b;
    double           num;
    const char      *str;
    size_t           n;        /* LIST and TABLE: number of items */
    sw_cval_t      **items;    /* LIST and TABLE values */
    const char     **keys;     /* TABLE keys */
};

typedef struct sw_centry_s {
    const char *key;
    sw_cval_t  *val;
    int         line;
    bool        claimed;       /* set when some option table used it */
} sw_centry_t;

typedef struct sw_csection_s {
    sw_scope_e    scope;
    const char   *name;        /* host, component or peer name; NULL global */
    const char   *component;   /* Component's module name */
    int           line;
    sw_centry_t  *entries;
    size_t        n_entries;
} sw_csection_t;

typedef struct sw_config_s {
    sw_pool_t      *pool;
    const char     *file;      /* path as given */
    const char     *dir;       /* directory of file, for SW_OPT_PATH */
    sw_csection_t  *sections;  /* sections[0] is the global section */
    size_t          n_sections;
    /* Option tables applied so far, for "did you mean" hints. */
    const sw_option_t **known;
    size_t          n_known;
} sw_config_t;

/*
 * Reads a config file.  Returns new, or NULL after logging
 * "FILE:LINE: message" (syntax errors, runtime errors, duplicate
 * sections, a key set twice in one section, unsupported value types).
 */
sw_config_t *sw_config_load(const char *path);
/* Same from a string; name stands for the file name in messages. */
sw_config_t *sw_config_load_string(const char *name, const char *text);
void sw_config_free(sw_config_t *cfg);

sw_csection_t *sw_config_global(sw_config_t *cfg);
/* The section of that scope and name, or NULL. */
sw_csection_t *sw_config_section(sw_config_t *cfg, sw_scope_e scope,
                                 const char *name);
sw_centry_t *sw_config_entry(sw_csection_t *sec, const char *key);

/* Fills conf with the options' defaults (strings live in pool). */
int sw_options_defaults(const sw_option_t *opts, void *conf, sw_pool_t *pool);
/*
 * Applies the entries of sec that opts declares to conf, marking them
 * claimed.  An entry whose name is declared but whose scope does not allow
 * sec->scope is an error.  Also checks that SW_OPT_REQUIRED options whose
 * scope includes sec->scope were set in sec (or in the global section, if
 * the option may appear there); in the global section, a required option
 * that other scopes allow too is left to those sections.  Strings and
 * lists are copied into pool.  Notes opts in cfg (sw_config_note_options).
 * Logs every error as "FILE:LINE: ..." and returns SW_ERROR if there was
 * any.
 */
int sw_options_apply(const sw_option_t *opts, void *conf,
                     sw_config_t *cfg, sw_csection_t *sec, sw_pool_t *pool);
/*
 * Remembers an option table (borrowed: must outlive cfg) so that
 * sw_config_check_unclaimed can suggest a near name.  sw_options_apply
 * calls it; call it directly for a table applied to no section.
 */
void sw_config_note_options(sw_config_t *cfg, const sw_option_t *opts);
/*
 * Logs each unclaimed entry as unknown, with "did you mean 'x'?" when a
 * noted option is within edit distance 2; SW_ERROR if any.
 */
int sw_config_check_unclaimed(sw_config_t *cfg);
/* Logs "FILE:LINE: message" (or "FILE: message" when line <= 0), for
 * errors found in a config value, e.g. by a module's check(). */
void sw_config_error(const sw_config_t *cfg, int line, const char *fmt, ...)
    SW_PRINTF(3, 4);
const sw_option_t *sw_option_find(const sw_option_t *opts, const char *name);
/* Human text for a type ("integer", "size", ...). */
const char *sw_opt_type_name(sw_opt_type_e t);
/* Writes the option table for --list-options. */
void sw_options_print(const sw_option_t *opts, const char *owner, void *fp);

#endif
