/*
 * Private to mod_storage_sqlite: the module state, its prepared
 * statements and the helpers the files of the module share
 * (mod_storage_sqlite.c: schema, accounts, rosters, offline, link
 * queues, open and migrate; mod_storage_sqlite_stores.c: the generic
 * key-value, map and archive stores).
 */
#ifndef MOD_STORAGE_SQLITE_H
#define MOD_STORAGE_SQLITE_H

#include <time.h>

#include <sqlite3.h>

#include <skywave/skywave.h>

typedef enum mod_storage_sqlite_stmt_e {
    MOD_SQL_BEGIN = 0,
    MOD_SQL_BEGIN_READ,
    MOD_SQL_COMMIT,
    MOD_SQL_ROLLBACK,
    MOD_SQL_SAVEPOINT,
    MOD_SQL_RELEASE,
    MOD_SQL_ROLLBACK_TO,
    MOD_SQL_USER_INSERT,
    MOD_SQL_USER_EXISTS,
    MOD_SQL_USER_DELETE,
    MOD_SQL_USER_LIST,
    MOD_SQL_CRED_INSERT,
    MOD_SQL_CRED_GET,
    MOD_SQL_CRED_DELETE_ALL,
    MOD_SQL_ROSTER_LIST,
    MOD_SQL_ROSTER_ITEM,
    MOD_SQL_ROSTER_UPSERT,
    MOD_SQL_ROSTER_DELETE,
    MOD_SQL_ROSTER_DELETE_ALL,
    MOD_SQL_ROSTER_BUMP,
    MOD_SQL_ROSTER_VERSION,
    MOD_SQL_OFFLINE_INSERT,
    MOD_SQL_OFFLINE_COUNT,
    MOD_SQL_OFFLINE_LIST,
    MOD_SQL_OFFLINE_DELETE,
    MOD_SQL_OFFLINE_DELETE_ALL,
    MOD_SQL_LINK_PUSH,
    MOD_SQL_LINK_LOAD,
    MOD_SQL_LINK_ACK,
    MOD_SQL_LINK_REMOVE,
    MOD_SQL_LINK_STATE_GET,
    MOD_SQL_LINK_STATE_SET,
    MOD_SQL_KV_GET,
    MOD_SQL_KV_SET,
    MOD_SQL_KV_DELETE,
    MOD_SQL_MAP_GET,
    MOD_SQL_MAP_SET,
    MOD_SQL_MAP_DELETE,
    MOD_SQL_MAP_LIST,
    MOD_SQL_MAP_CLEAR,
    MOD_SQL_ARCHIVE_APPEND,
    MOD_SQL_ARCHIVE_FIRST,
    MOD_SQL_ARCHIVE_LAST,
    MOD_SQL_ARCHIVE_DELETE,
    MOD_SQL_N
} mod_storage_sqlite_stmt_e;

typedef struct mod_storage_sqlite_sql_s {
    const char  *purpose;           /* for error messages */
    const char  *sql;
    bool         grows;             /* adds data: refused while low */
} mod_storage_sqlite_sql_t;

/* Indexed by mod_storage_sqlite_stmt_e. */
extern const mod_storage_sqlite_sql_t mod_storage_sqlite_sql[MOD_SQL_N];

typedef struct mod_storage_sqlite_s {
    sw_storage_t    api;            /* api.self points back here */
    sqlite3        *db;
    char           *path;
    sqlite3_stmt   *stmt[MOD_SQL_N];
    bool            txn;            /* the caller's begin() is open */
    char           *reserve_path;   /* the space kept for deletions */
    size_t          reserve;        /* its size; 0: none */
    bool            reserved;       /* the file holds its space now */
    bool            low;            /* disk full: only shrinking writes */
    time_t          low_checked;    /* when free space was last looked at */
} mod_storage_sqlite_t;

/* Logs that purpose failed, with SQLite's message. */
void mod_storage_sqlite_fail(mod_storage_sqlite_t *st, const char *purpose);
/* The statement, reset and unbound, ready for binding. */
sqlite3_stmt *mod_storage_sqlite_stmt(mod_storage_sqlite_t *st,
                                      mod_storage_sqlite_stmt_e id);
/* SQLITE_ROW or SQLITE_DONE; anything else logged and reset. */
int mod_storage_sqlite_step(mod_storage_sqlite_t *st,
                            mod_storage_sqlite_stmt_e id);
/* Ends use of a statement (it holds no lock between calls). */
void mod_storage_sqlite_done(mod_storage_sqlite_t *st,
                             mod_storage_sqlite_stmt_e id);
/* Runs a statement without result rows; SW_OK or SW_ERROR. */
int mod_storage_sqlite_exec(mod_storage_sqlite_t *st,
                            mod_storage_sqlite_stmt_e id);
/* A write transaction for one operation (a savepoint inside the
 * caller's batch), ended with mod_storage_sqlite_end(st, rc). */
int mod_storage_sqlite_begin(mod_storage_sqlite_t *st);
int mod_storage_sqlite_end(mod_storage_sqlite_t *st, int rc);
/* Binds text, or NULL. */
void mod_storage_sqlite_bind_text(sqlite3_stmt *s, int i, const char *text);

/* mod_storage_sqlite_stores.c: fills the generic stores' calls. */
void mod_storage_sqlite_stores_api(sw_storage_t *api);

#endif
