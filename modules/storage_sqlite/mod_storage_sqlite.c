/*
 * mod_storage_sqlite: the embedded storage backend.  Provides the service
 * "storage" (sw_storage.h) on one SQLite database in WAL mode, so readers
 * never wait for the writer and a crash loses at most the last
 * transaction.
 *
 * The schema is versioned with PRAGMA user_version: each migration step
 * runs in its own transaction and bumps the version in it, so a database
 * is always at exactly one known version.  A database written by a newer
 * server is refused rather than guessed at.
 *
 * All statements are prepared once at load and kept in the module state
 * (mc->data); every statement is reset right after use so no read
 * transaction stays open between calls.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <skywave/skywave.h>

#include "mod_storage_sqlite.h"

typedef struct mod_storage_sqlite_conf_s {
    const char  *path;
    double       busy_timeout;      /* seconds */
    int          synchronous;       /* index into mod_storage_sqlite_sync */
    size_t       reserve;           /* bytes kept for deletions */
} mod_storage_sqlite_conf_t;

static const char *const mod_storage_sqlite_sync[] = {
    "off", "normal", "full", NULL
};

static const sw_option_t mod_storage_sqlite_options[] = {
    { "storage_sqlite_path", SW_OPT_PATH,
      offsetof(mod_storage_sqlite_conf_t, path), SW_SCOPE_GLOBAL, 0, 0, 0,
      "skywave.db", NULL,
      "database file; a relative default lives in data_dir" },
    { "storage_sqlite_busy_timeout", SW_OPT_DURATION,
      offsetof(mod_storage_sqlite_conf_t, busy_timeout), SW_SCOPE_GLOBAL, 0,
      0, 600000, "5s", NULL,
      "how long to wait for another process holding the database lock" },
    { "storage_sqlite_synchronous", SW_OPT_ENUM,
      offsetof(mod_storage_sqlite_conf_t, synchronous), SW_SCOPE_GLOBAL, 0,
      0, 0, "full", mod_storage_sqlite_sync,
      "fsync policy: full (every commit is on the disk before anything is "
      "acknowledged), normal (survives a crash of skywaved, not of the "
      "machine or its power) or off" },
    { "storage_sqlite_reserve", SW_OPT_SIZE,
      offsetof(mod_storage_sqlite_conf_t, reserve), SW_SCOPE_GLOBAL, 0,
      0, (double) (1024 * 1024 * 1024), "1M", NULL,
      "disk space held beside the database (a .reserve file) and given "
      "up when the disk fills, so that deletions and acknowledgements "
      "still commit; 0: none" },
    SW_OPTION_END
};

/* ---------------------------------------------------------- schema --- */

typedef struct mod_storage_sqlite_migration_s {
    int          version;           /* user_version after this step */
    const char  *purpose;
    const char  *sql;
} mod_storage_sqlite_migration_t;

/*
 * Ordered; append new steps, never edit a released one.  Roster groups
 * are one column joined with U+001F: XML 1.0 cannot carry that character,
 * so no group name can contain it.  roster_versions has no foreign key on
 * purpose: it outlives a deleted account, so a re-created account never
 * hands out a roster version a client may still have cached
 * (RFC 6121 §2.6).
 */
static const mod_storage_sqlite_migration_t mod_storage_sqlite_migrations[] = {
    { 1, "create the initial schema",
      "CREATE TABLE users ("
      " host TEXT NOT NULL, user TEXT NOT NULL,"
      " created INTEGER NOT NULL,"
      " PRIMARY KEY (host, user)) WITHOUT ROWID;"
      "CREATE TABLE scram_creds ("
      " host TEXT NOT NULL, user TEXT NOT NULL, hash TEXT NOT NULL,"
      " iterations INTEGER NOT NULL, salt TEXT NOT NULL,"
      " stored_key TEXT NOT NULL, server_key TEXT NOT NULL,"
      " PRIMARY KEY (host, user, hash),"
      " FOREIGN KEY (host, user) REFERENCES users (host, user)"
      "  ON DELETE CASCADE) WITHOUT ROWID;"
      "CREATE TABLE roster_items ("
      " host TEXT NOT NULL, user TEXT NOT NULL, jid TEXT NOT NULL,"
      " name TEXT, sub INTEGER NOT NULL DEFAULT 0,"
      " ask INTEGER NOT NULL DEFAULT 0,"
      " pending_in INTEGER NOT NULL DEFAULT 0,"
      " approved INTEGER NOT NULL DEFAULT 0,"
      " groups TEXT,"
      " PRIMARY KEY (host, user, jid),"
      " FOREIGN KEY (host, user) REFERENCES users (host, user)"
      "  ON DELETE CASCADE) WITHOUT ROWID;"
      "CREATE TABLE roster_versions ("
      " host TEXT NOT NULL, user TEXT NOT NULL,"
      " version INTEGER NOT NULL,"
      " PRIMARY KEY (host, user)) WITHOUT ROWID;"
      "CREATE TABLE offline ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " host TEXT NOT NULL, user TEXT NOT NULL,"
      " stamp INTEGER NOT NULL, xml TEXT NOT NULL,"
      " FOREIGN KEY (host, user) REFERENCES users (host, user)"
      "  ON DELETE CASCADE);"
      "CREATE INDEX offline_by_user ON offline (host, user, id);" },
    /* Peer links: rows are keyed by the link's own sequence numbers, so
     * a queue is read and acknowledged in order without a rowid. */
    { 2, "add durable peer link queues",
      "CREATE TABLE link_queue ("
      " peer TEXT NOT NULL, seq INTEGER NOT NULL,"
      " stamp INTEGER NOT NULL, expires INTEGER NOT NULL DEFAULT 0,"
      " xml TEXT NOT NULL,"
      " PRIMARY KEY (peer, seq)) WITHOUT ROWID;"
      "CREATE TABLE link_state ("
      " peer TEXT NOT NULL PRIMARY KEY,"
      " next_out INTEGER NOT NULL DEFAULT 0,"
      " in_delivered INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;" },
    /* Generic stores (sw_storage.h, version 5): one table per kind, for
     * every module; the archive's ids are its own (AUTOINCREMENT: never
     * reused after a delete, so a client's "after id N" stays true). */
    { 3, "add the generic key-value, map and archive stores",
      "CREATE TABLE store_kv ("
      " store TEXT NOT NULL, host TEXT NOT NULL, key TEXT NOT NULL,"
      " value BLOB NOT NULL,"
      " PRIMARY KEY (store, host, key)) WITHOUT ROWID;"
      "CREATE TABLE store_map ("
      " store TEXT NOT NULL, host TEXT NOT NULL, key TEXT NOT NULL,"
      " field TEXT NOT NULL, value BLOB NOT NULL,"
      " PRIMARY KEY (store, host, key, field)) WITHOUT ROWID;"
      "CREATE TABLE store_archive ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " store TEXT NOT NULL, host TEXT NOT NULL, key TEXT NOT NULL,"
      " stamp INTEGER NOT NULL, with_jid TEXT, value BLOB NOT NULL);"
      "CREATE INDEX store_archive_by_key"
      " ON store_archive (store, host, key, id);"
      "CREATE INDEX store_archive_by_time"
      " ON store_archive (store, host, key, stamp);" },
};

#define MOD_STORAGE_SQLITE_N_MIGRATIONS \
    (sizeof(mod_storage_sqlite_migrations) \
     / sizeof(mod_storage_sqlite_migrations[0]))

/* ------------------------------------------------------- statements --- */



/* Indexed by mod_storage_sqlite_stmt_e. */
const mod_storage_sqlite_sql_t mod_storage_sqlite_sql[MOD_SQL_N] = {
    /* IMMEDIATE takes the write lock up front, so a read-then-write
     * transaction cannot fail half way with SQLITE_BUSY. */
    [MOD_SQL_BEGIN] = { "begin transaction", "BEGIN IMMEDIATE" },
    [MOD_SQL_BEGIN_READ] = { "begin read transaction", "BEGIN" },
    [MOD_SQL_COMMIT] = { "commit transaction", "COMMIT" },
    [MOD_SQL_ROLLBACK] = { "roll back transaction", "ROLLBACK" },
    /* Inside the caller's begin/commit each operation is a savepoint, so
     * a failed one undoes only itself. */
    [MOD_SQL_SAVEPOINT] = { "begin savepoint", "SAVEPOINT mod_op" },
    [MOD_SQL_RELEASE] = { "release savepoint", "RELEASE mod_op" },
    [MOD_SQL_ROLLBACK_TO] = { "roll back savepoint", "ROLLBACK TO mod_op" },
    [MOD_SQL_USER_INSERT] = { "create user",
        "INSERT INTO users (host, user, created) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (host, user) DO NOTHING", true },
    [MOD_SQL_USER_EXISTS] = { "look up user",
        "SELECT 1 FROM users WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_USER_DELETE] = { "delete user",
        "DELETE FROM users WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_USER_LIST] = { "list users",
        "SELECT user FROM users WHERE host = ?1 ORDER BY user" },
    [MOD_SQL_CRED_INSERT] = { "store credential",
        "INSERT OR REPLACE INTO scram_creds (host, user, hash, iterations,"
        " salt, stored_key, server_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
    [MOD_SQL_CRED_GET] = { "read credential",
        "SELECT hash, iterations, salt, stored_key, server_key"
        " FROM scram_creds WHERE host = ?1 AND user = ?2 AND hash = ?3" },
    [MOD_SQL_CRED_DELETE_ALL] = { "delete credentials",
        "DELETE FROM scram_creds WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_ROSTER_LIST] = { "read roster",
        "SELECT jid, name, sub, ask, pending_in, approved, groups"
        " FROM roster_items WHERE host = ?1 AND user = ?2 ORDER BY jid" },
    [MOD_SQL_ROSTER_ITEM] = { "read roster item",
        "SELECT jid, name, sub, ask, pending_in, approved, groups"
        " FROM roster_items WHERE host = ?1 AND user = ?2 AND jid = ?3" },
    [MOD_SQL_ROSTER_UPSERT] = { "store roster item",
        "INSERT INTO roster_items (host, user, jid, name, sub, ask,"
        " pending_in, approved, groups)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (host, user, jid) DO UPDATE SET"
        " name = excluded.name, sub = excluded.sub, ask = excluded.ask,"
        " pending_in = excluded.pending_in, approved = excluded.approved,"
        " groups = excluded.groups", true },
    [MOD_SQL_ROSTER_DELETE] = { "remove roster item",
        "DELETE FROM roster_items WHERE host = ?1 AND user = ?2"
        " AND jid = ?3" },
    [MOD_SQL_ROSTER_DELETE_ALL] = { "delete roster",
        "DELETE FROM roster_items WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_ROSTER_BUMP] = { "increase roster version",
        "INSERT INTO roster_versions (host, user, version)"
        " VALUES (?1, ?2, 1) ON CONFLICT (host, user)"
        " DO UPDATE SET version = version + 1" },
    [MOD_SQL_ROSTER_VERSION] = { "read roster version",
        "SELECT version FROM roster_versions WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_OFFLINE_INSERT] = { "store offline message",
        "INSERT INTO offline (host, user, stamp, xml)"
        " VALUES (?1, ?2, ?3, ?4)", true },
    [MOD_SQL_OFFLINE_COUNT] = { "count offline messages",
        "SELECT count(*), coalesce(sum(length(CAST(xml AS BLOB))), 0)"
        " FROM offline WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_OFFLINE_LIST] = { "read offline messages",
        "SELECT id, stamp, xml FROM offline WHERE host = ?1 AND user = ?2"
        " ORDER BY id" },
    [MOD_SQL_OFFLINE_DELETE] = { "delete offline messages",
        "DELETE FROM offline WHERE host = ?1 AND user = ?2 AND id <= ?3" },
    [MOD_SQL_OFFLINE_DELETE_ALL] = { "delete all offline messages",
        "DELETE FROM offline WHERE host = ?1 AND user = ?2" },
    [MOD_SQL_LINK_PUSH] = { "queue stanza for peer",
        "INSERT INTO link_queue (peer, seq, stamp, expires, xml)"
        " VALUES (?1, ?2, ?3, ?4, ?5)", true },
    [MOD_SQL_LINK_LOAD] = { "read peer queue",
        "SELECT seq, stamp, expires, xml FROM link_queue WHERE peer = ?1"
        " AND seq >= ?2 ORDER BY seq" },
    [MOD_SQL_LINK_ACK] = { "acknowledge peer queue",
        "DELETE FROM link_queue WHERE peer = ?1 AND seq <= ?2" },
    [MOD_SQL_LINK_REMOVE] = { "remove queued stanza",
        "DELETE FROM link_queue WHERE peer = ?1 AND seq = ?2" },
    [MOD_SQL_LINK_STATE_GET] = { "read peer link state",
        "SELECT next_out, in_delivered FROM link_state WHERE peer = ?1" },
    [MOD_SQL_LINK_STATE_SET] = { "store peer link state",
        "INSERT INTO link_state (peer, next_out, in_delivered)"
        " VALUES (?1, ?2, ?3) ON CONFLICT (peer) DO UPDATE SET"
        " next_out = excluded.next_out,"
        " in_delivered = excluded.in_delivered" },
    /* generic stores (mod_storage_sqlite_stores.c) */
    [MOD_SQL_KV_GET] = { "read key-value store",
        "SELECT value FROM store_kv WHERE store = ?1 AND host = ?2"
        " AND key = ?3" },
    [MOD_SQL_KV_SET] = { "write key-value store",
        "INSERT INTO store_kv (store, host, key, value)"
        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (store, host, key)"
        " DO UPDATE SET value = excluded.value", true },
    [MOD_SQL_KV_DELETE] = { "delete from key-value store",
        "DELETE FROM store_kv WHERE store = ?1 AND host = ?2 AND key = ?3" },
    [MOD_SQL_MAP_GET] = { "read map store",
        "SELECT value FROM store_map WHERE store = ?1 AND host = ?2"
        " AND key = ?3 AND field = ?4" },
    [MOD_SQL_MAP_SET] = { "write map store",
        "INSERT INTO store_map (store, host, key, field, value)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (store, host, key, field)"
        " DO UPDATE SET value = excluded.value", true },
    [MOD_SQL_MAP_DELETE] = { "delete from map store",
        "DELETE FROM store_map WHERE store = ?1 AND host = ?2 AND key = ?3"
        " AND field = ?4" },
    [MOD_SQL_MAP_LIST] = { "list map store",
        "SELECT field, value FROM store_map WHERE store = ?1 AND host = ?2"
        " AND key = ?3 ORDER BY field" },
    [MOD_SQL_MAP_CLEAR] = { "clear map store key",
        "DELETE FROM store_map WHERE store = ?1 AND host = ?2"
        " AND key = ?3" },
    [MOD_SQL_ARCHIVE_APPEND] = { "append to archive",
        "INSERT INTO store_archive (store, host, key, stamp, with_jid,"
        " value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", true },
    /* NULL leaves a bound out; LIMIT -1 is none */
    [MOD_SQL_ARCHIVE_FIRST] = { "query archive",
        "SELECT id, stamp, with_jid, value FROM store_archive"
        " WHERE store = ?1 AND host = ?2 AND key = ?3"
        " AND (?4 IS NULL OR stamp >= ?4) AND (?5 IS NULL OR stamp <= ?5)"
        " AND (?6 IS NULL OR id > ?6) AND (?7 IS NULL OR id < ?7)"
        " AND (?8 IS NULL OR with_jid = ?8) ORDER BY id LIMIT ?9" },
    [MOD_SQL_ARCHIVE_LAST] = { "query archive",
        "SELECT id, stamp, with_jid, value FROM store_archive"
        " WHERE store = ?1 AND host = ?2 AND key = ?3"
        " AND (?4 IS NULL OR stamp >= ?4) AND (?5 IS NULL OR stamp <= ?5)"
        " AND (?6 IS NULL OR id > ?6) AND (?7 IS NULL OR id < ?7)"
        " AND (?8 IS NULL OR with_jid = ?8) ORDER BY id DESC LIMIT ?9" },
    [MOD_SQL_ARCHIVE_DELETE] = { "delete from archive",
        "DELETE FROM store_archive WHERE store = ?1 AND host = ?2"
        " AND key = ?3 AND (?4 IS NULL OR id <= ?4)"
        " AND (?5 IS NULL OR stamp < ?5)" },
};


#define MOD_GROUP_SEP '\x1f'

/* --------------------------------------------------------- helpers --- */

void
mod_storage_sqlite_fail(mod_storage_sqlite_t *st, const char *purpose)
{
    sw_log_error("storage_sqlite: %s failed (%s): %s", purpose, st->path,
                 sqlite3_errmsg(st->db));
}

/* Returns the statement, reset and unbound, ready for binding. */
sqlite3_stmt *
mod_storage_sqlite_stmt(mod_storage_sqlite_t *st,
                        mod_storage_sqlite_stmt_e id)
{
    sqlite3_stmt  *s = st->stmt[id];

    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/*
 * A full disk must not stop the writes that free space or finish work
 * already done: deleting offline messages a client has been sent,
 * trimming a queue the peer acknowledged, the link's counters.  Without
 * them a message sent while the disk is full is sent again after a
 * restart.  A file of storage_sqlite_reserve bytes beside the database
 * holds space for them.  When SQLite first finds the disk full the
 * reserve is given up and the store goes low: statements that add data
 * are refused at once (their callers bounce, as for a full disk) and the
 * rest run in the space the reserve held.  Once the file system has room
 * for the reserve twice over, it is taken again and the store is whole.
 */
static void
mod_storage_sqlite_reserve_take(mod_storage_sqlite_t *st)
{
    int  fd, rc;

    fd = open(st->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        sw_log_warn("storage_sqlite: cannot create %s: %s",
                    st->reserve_path, strerror(errno));
        return;
    }
    rc = posix_fallocate(fd, 0, (off_t) st->reserve);
    if (rc == 0 && ftruncate(fd, (off_t) st->reserve) != 0) {
        rc = errno;                 /* one left by a larger setting */
    }
    close(fd);
    if (rc != 0) {
        unlink(st->reserve_path);
        if (!st->low) {
            sw_log_warn("storage_sqlite: cannot reserve %zu bytes in %s "
                        "(%s): a full disk will also stop deletions",
                        st->reserve, st->reserve_path, strerror(rc));
        }
        return;
    }
    st->reserved = true;
}

static void
mod_storage_sqlite_go_low(mod_storage_sqlite_t *st)
{
    if (st->low || st->reserve == 0) {
        return;
    }
    st->low = true;
    st->low_checked = time(NULL);
    if (st->reserved) {
        unlink(st->reserve_path);
        st->reserved = false;
    }
    sw_log_error("storage_sqlite: the disk holding %s is full: new data is "
                 "refused until there is room again; deletions and "
                 "acknowledgements go on in the %zu reserved bytes",
                 st->path, st->reserve);
}

/* Whether a low store has room again (looked at once a second). */
static bool
mod_storage_sqlite_roomy(mod_storage_sqlite_t *st)
{
    struct statvfs  vfs;
    time_t          now = time(NULL);

    if (now == st->low_checked) {
        return false;
    }
    st->low_checked = now;
    if (statvfs(st->path, &vfs) != 0
        || (double) vfs.f_bavail * (double) vfs.f_frsize
           < 2.0 * (double) st->reserve)
    {
        return false;
    }
    mod_storage_sqlite_reserve_take(st);
    if (!st->reserved) {
        return false;
    }
    st->low = false;
    sw_log_info("storage_sqlite: there is room on the disk holding %s "
                "again: new data is accepted", st->path);
    return true;
}

/*
 * Steps a statement.  Returns SQLITE_ROW or SQLITE_DONE; anything else is
 * logged with the statement's purpose and the statement is reset.
 */
int
mod_storage_sqlite_step(mod_storage_sqlite_t *st,
                        mod_storage_sqlite_stmt_e id)
{
    int  rc;

    if (st->low && mod_storage_sqlite_sql[id].grows
        && !mod_storage_sqlite_roomy(st))
    {
        sw_log_debug("storage_sqlite: %s refused: the disk is full",
                     mod_storage_sqlite_sql[id].purpose);
        sqlite3_reset(st->stmt[id]);
        return SQLITE_FULL;
    }
    rc = sqlite3_step(st->stmt[id]);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        return rc;
    }
    mod_storage_sqlite_fail(st, mod_storage_sqlite_sql[id].purpose);
    sqlite3_reset(st->stmt[id]);
    if ((rc & 0xff) == SQLITE_FULL) {
        mod_storage_sqlite_go_low(st);
    }
    return rc;
}

/* Ends use of a statement so it holds no lock between calls. */
void
mod_storage_sqlite_done(mod_storage_sqlite_t *st,
                        mod_storage_sqlite_stmt_e id)
{
    sqlite3_reset(st->stmt[id]);
}

/* Runs a statement without result rows; SW_OK or SW_ERROR. */
int
mod_storage_sqlite_exec(mod_storage_sqlite_t *st,
                        mod_storage_sqlite_stmt_e id)
{
    int  rc;

    rc = mod_storage_sqlite_step(st, id);
    mod_storage_sqlite_done(st, id);
    return rc == SQLITE_DONE ? SW_OK : SW_ERROR;
}

/*
 * Once the caller's transaction is open, an error such as SQLITE_FULL or
 * SQLITE_IOERR may make SQLite roll all of it back.  Every later call then
 * fails until commit() ends it, rather than quietly committing the rest of
 * the batch one statement at a time.
 */
static int
mod_storage_sqlite_txn_check(mod_storage_sqlite_t *st)
{
    if (st->txn && sqlite3_get_autocommit(st->db)) {
        sw_log_error("storage_sqlite: the open transaction on %s was rolled "
                     "back after an earlier error; call commit to end it",
                     st->path);
        return SW_ERROR;
    }
    return SW_OK;
}

/*
 * A transaction for one operation: write takes the lock, read is a
 * consistent snapshot without it.  Inside the caller's transaction it is
 * a savepoint instead, as SQLite transactions do not nest.
 */
static int
mod_storage_sqlite_begin_op(mod_storage_sqlite_t *st,
                            mod_storage_sqlite_stmt_e id)
{
    if (st->txn) {
        if (mod_storage_sqlite_txn_check(st) != SW_OK) {
            return SW_ERROR;
        }
        id = MOD_SQL_SAVEPOINT;
    }
    mod_storage_sqlite_stmt(st, id);
    return mod_storage_sqlite_exec(st, id);
}

int
mod_storage_sqlite_begin(mod_storage_sqlite_t *st)
{
    return mod_storage_sqlite_begin_op(st, MOD_SQL_BEGIN);
}

static int
mod_storage_sqlite_begin_read(mod_storage_sqlite_t *st)
{
    return mod_storage_sqlite_begin_op(st, MOD_SQL_BEGIN_READ);
}

static int
mod_storage_sqlite_commit(mod_storage_sqlite_t *st)
{
    mod_storage_sqlite_stmt(st, MOD_SQL_COMMIT);
    if (mod_storage_sqlite_exec(st, MOD_SQL_COMMIT) != SW_OK) {
        /* A failed COMMIT may leave the transaction open. */
        if (!sqlite3_get_autocommit(st->db)) {
            mod_storage_sqlite_stmt(st, MOD_SQL_ROLLBACK);
            mod_storage_sqlite_exec(st, MOD_SQL_ROLLBACK);
        }
        return SW_ERROR;
    }
    return SW_OK;
}

/* Ends a savepoint with rc: keeps its changes on SW_OK, else undoes them. */
static int
mod_storage_sqlite_end_savepoint(mod_storage_sqlite_t *st, int rc)
{
    /* An error may already have rolled back the whole transaction, and
     * the savepoint with it. */
    if (sqlite3_get_autocommit(st->db)) {
        if (rc == SW_OK) {
            mod_storage_sqlite_txn_check(st);       /* logs */
            rc = SW_ERROR;
        }
        return rc;
    }
    if (rc != SW_OK) {
        mod_storage_sqlite_stmt(st, MOD_SQL_ROLLBACK_TO);
        mod_storage_sqlite_exec(st, MOD_SQL_ROLLBACK_TO);
    }
    /* RELEASE after ROLLBACK TO too: the latter keeps the savepoint. */
    mod_storage_sqlite_stmt(st, MOD_SQL_RELEASE);
    if (mod_storage_sqlite_exec(st, MOD_SQL_RELEASE) != SW_OK) {
        return SW_ERROR;
    }
    return rc;
}

/* Ends a transaction with rc: commits on SW_OK, else rolls back. */
int
mod_storage_sqlite_end(mod_storage_sqlite_t *st, int rc)
{
    if (st->txn) {
        return mod_storage_sqlite_end_savepoint(st, rc);
    }
    if (rc == SW_OK) {
        return mod_storage_sqlite_commit(st);
    }
    if (!sqlite3_get_autocommit(st->db)) {
        mod_storage_sqlite_stmt(st, MOD_SQL_ROLLBACK);
        mod_storage_sqlite_exec(st, MOD_SQL_ROLLBACK);
    }
    return rc;
}

void
mod_storage_sqlite_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text == NULL) {
        sqlite3_bind_null(s, i);
    } else {
        sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
    }
}

static sqlite3_stmt *
mod_storage_sqlite_user_stmt(mod_storage_sqlite_t *st,
                             mod_storage_sqlite_stmt_e id, const char *host,
                             const char *user)
{
    sqlite3_stmt  *s = mod_storage_sqlite_stmt(st, id);

    mod_storage_sqlite_bind_text(s, 1, host);
    mod_storage_sqlite_bind_text(s, 2, user);
    return s;
}

static char *
mod_storage_sqlite_column(sw_pool_t *pool, sqlite3_stmt *s, int col)
{
    const unsigned char  *text;

    text = sqlite3_column_text(s, col);
    if (text == NULL) {
        return NULL;
    }
    return sw_pool_strndup(pool, (const char *) text,
                           (size_t) sqlite3_column_bytes(s, col));
}

/* SW_OK if the user exists, SW_DECLINED if not, SW_ERROR. */
static int
mod_storage_sqlite_user_check(mod_storage_sqlite_t *st, const char *host,
                              const char *user)
{
    int  rc;

    mod_storage_sqlite_user_stmt(st, MOD_SQL_USER_EXISTS, host, user);
    rc = mod_storage_sqlite_step(st, MOD_SQL_USER_EXISTS);
    mod_storage_sqlite_done(st, MOD_SQL_USER_EXISTS);
    if (rc == SQLITE_ROW) {
        return SW_OK;
    }
    return rc == SQLITE_DONE ? SW_DECLINED : SW_ERROR;
}

static int
mod_storage_sqlite_creds_insert(mod_storage_sqlite_t *st, const char *host,
                                const char *user,
                                const sw_scram_cred_t *creds, size_t n)
{
    sqlite3_stmt  *s;
    size_t         i;

    for (i = 0; i < n; i++) {
        const sw_scram_cred_t  *c = &creds[i];

        if (c->hash == NULL || c->salt == NULL || c->stored_key == NULL
            || c->server_key == NULL)
        {
            sw_log_error("storage_sqlite: incomplete credential for %s@%s",
                         user, host);
            return SW_ERROR;
        }
        s = mod_storage_sqlite_user_stmt(st, MOD_SQL_CRED_INSERT, host,
                                         user);
        mod_storage_sqlite_bind_text(s, 3, c->hash);
        sqlite3_bind_int64(s, 4, (sqlite3_int64) c->iterations);
        mod_storage_sqlite_bind_text(s, 5, c->salt);
        mod_storage_sqlite_bind_text(s, 6, c->stored_key);
        mod_storage_sqlite_bind_text(s, 7, c->server_key);
        if (mod_storage_sqlite_exec(st, MOD_SQL_CRED_INSERT) != SW_OK) {
            return SW_ERROR;
        }
    }
    return SW_OK;
}

/* ----------------------------------------------------------- users --- */

static int
mod_storage_sqlite_user_create(sw_storage_t *s, const char *host,
                               const char *user,
                               const sw_scram_cred_t *creds, size_t n)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }

    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_USER_INSERT, host, user);
    sqlite3_bind_int64(q, 3, (sqlite3_int64) time(NULL));
    rc = mod_storage_sqlite_exec(st, MOD_SQL_USER_INSERT);
    if (rc == SW_OK && sqlite3_changes(st->db) == 0) {
        rc = SW_DECLINED;           /* already exists */
    }
    if (rc == SW_OK) {
        rc = mod_storage_sqlite_creds_insert(st, host, user, creds, n);
    }
    return mod_storage_sqlite_end(st, rc);
}

static int
mod_storage_sqlite_user_set_creds(sw_storage_t *s, const char *host,
                                  const char *user,
                                  const sw_scram_cred_t *creds, size_t n)
{
    mod_storage_sqlite_t  *st = s->self;
    int                    rc;

    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }

    /* Replace all hashes, so a password change leaves no old secret. */
    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc == SW_OK) {
        mod_storage_sqlite_user_stmt(st, MOD_SQL_CRED_DELETE_ALL, host, user);
        rc = mod_storage_sqlite_exec(st, MOD_SQL_CRED_DELETE_ALL);
    }
    if (rc == SW_OK) {
        rc = mod_storage_sqlite_creds_insert(st, host, user, creds, n);
    }
    return mod_storage_sqlite_end(st, rc);
}

static int
mod_storage_sqlite_user_delete(sw_storage_t *s, const char *host,
                               const char *user)
{
    static const mod_storage_sqlite_stmt_e  steps[] = {
        MOD_SQL_CRED_DELETE_ALL, MOD_SQL_ROSTER_DELETE_ALL,
        MOD_SQL_OFFLINE_DELETE_ALL, MOD_SQL_USER_DELETE
    };
    mod_storage_sqlite_t  *st = s->self;
    size_t                 i;
    int                    rc;

    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }

    /* Explicit deletes rather than relying on ON DELETE CASCADE alone:
     * the result must not depend on a connection pragma. */
    rc = SW_OK;
    for (i = 0; rc == SW_OK && i < sizeof(steps) / sizeof(steps[0]); i++) {
        mod_storage_sqlite_user_stmt(st, steps[i], host, user);
        rc = mod_storage_sqlite_exec(st, steps[i]);
    }
    if (rc == SW_OK && sqlite3_changes(st->db) == 0) {
        rc = SW_DECLINED;           /* the users row was not there */
    }
    return mod_storage_sqlite_end(st, rc);
}

static int
mod_storage_sqlite_user_exists(sw_storage_t *s, const char *host,
                               const char *user)
{
    return mod_storage_sqlite_user_check(s->self, host, user);
}

static int
mod_storage_sqlite_user_get_cred(sw_storage_t *s, const char *host,
                                 const char *user, const char *hash,
                                 sw_pool_t *pool, sw_scram_cred_t *out)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_CRED_GET, host, user);
    mod_storage_sqlite_bind_text(q, 3, hash);
    rc = mod_storage_sqlite_step(st, MOD_SQL_CRED_GET);
    if (rc != SQLITE_ROW) {
        mod_storage_sqlite_done(st, MOD_SQL_CRED_GET);
        return rc == SQLITE_DONE ? SW_DECLINED : SW_ERROR;
    }

    out->hash = mod_storage_sqlite_column(pool, q, 0);
    out->iterations = (unsigned) sqlite3_column_int64(q, 1);
    out->salt = mod_storage_sqlite_column(pool, q, 2);
    out->stored_key = mod_storage_sqlite_column(pool, q, 3);
    out->server_key = mod_storage_sqlite_column(pool, q, 4);
    mod_storage_sqlite_done(st, MOD_SQL_CRED_GET);
    return SW_OK;
}

static int
mod_storage_sqlite_user_list(sw_storage_t *s, const char *host,
                             void (*fn)(const char *user, void *ud), void *ud)
{
    mod_storage_sqlite_t  *st = s->self;
    sw_pool_t             *pool;
    char                 **users;
    size_t                 n, cap, i;
    int                    rc;

    /* Collect first: fn may call back into storage, and a statement
     * stepped half way would hold a read transaction open meanwhile. */
    pool = sw_pool_new(0);
    cap = 16;
    n = 0;
    users = sw_alloc(cap * sizeof(char *));

    mod_storage_sqlite_stmt(st, MOD_SQL_USER_LIST);
    mod_storage_sqlite_bind_text(st->stmt[MOD_SQL_USER_LIST], 1, host);
    while ((rc = mod_storage_sqlite_step(st, MOD_SQL_USER_LIST))
           == SQLITE_ROW)
    {
        if (n == cap) {
            cap *= 2;
            users = sw_realloc(users, cap * sizeof(char *));
        }
        users[n++] = mod_storage_sqlite_column(pool,
                                               st->stmt[MOD_SQL_USER_LIST], 0);
    }
    mod_storage_sqlite_done(st, MOD_SQL_USER_LIST);

    if (rc == SQLITE_DONE) {
        for (i = 0; i < n; i++) {
            fn(users[i], ud);
        }
    }
    free(users);
    sw_pool_free(pool);
    return rc == SQLITE_DONE ? SW_OK : SW_ERROR;
}

/* ---------------------------------------------------------- roster --- */

static const char **
mod_storage_sqlite_groups_split(sw_pool_t *pool, const char *joined)
{
    const char  **groups;
    const char   *p, *sep;
    size_t        n, i;

    if (joined == NULL) {
        return NULL;
    }
    n = 1;
    for (p = joined; *p; p++) {
        n += *p == MOD_GROUP_SEP;
    }
    groups = sw_pool_alloc(pool, (n + 1) * sizeof(char *));
    p = joined;
    for (i = 0; i < n; i++) {
        sep = strchr(p, MOD_GROUP_SEP);
        if (sep == NULL) {
            sep = p + strlen(p);
        }
        groups[i] = sw_pool_strndup(pool, p, (size_t) (sep - p));
        p = sep + 1;
    }
    groups[n] = NULL;
    return groups;
}

/*
 * Returns the joined groups (malloc'd), or NULL for none.  *rc is SW_ERROR
 * when a group name cannot be stored.
 */
static char *
mod_storage_sqlite_groups_join(const char **groups, int *rc)
{
    sw_buf_t   b;
    char      *joined;
    size_t     i;

    *rc = SW_OK;
    if (groups == NULL || groups[0] == NULL) {
        return NULL;
    }
    sw_buf_init(&b);
    for (i = 0; groups[i]; i++) {
        if (strchr(groups[i], MOD_GROUP_SEP) != NULL) {
            sw_log_error("storage_sqlite: roster group name contains "
                         "U+001F, which XML cannot carry");
            sw_buf_free(&b);
            *rc = SW_ERROR;
            return NULL;
        }
        if (i > 0) {
            sw_buf_append(&b, "\x1f", 1);
        }
        sw_buf_append_str(&b, groups[i]);
    }
    /* Copied: a buffer that stayed empty ("" as the only group) points
     * to static storage. */
    joined = sw_strndup(b.data, b.len);
    sw_buf_free(&b);
    return joined;
}

static void
mod_storage_sqlite_roster_row(sw_pool_t *pool, sqlite3_stmt *q,
                              sw_roster_item_t *out)
{
    int64_t  sub;

    out->jid = mod_storage_sqlite_column(pool, q, 0);
    out->name = mod_storage_sqlite_column(pool, q, 1);
    sub = sqlite3_column_int64(q, 2);
    out->sub = (sub >= SW_SUB_NONE && sub <= SW_SUB_BOTH)
               ? (sw_sub_e) sub : SW_SUB_NONE;
    out->ask = sqlite3_column_int(q, 3) != 0;
    out->pending_in = sqlite3_column_int(q, 4) != 0;
    out->approved = sqlite3_column_int(q, 5) != 0;
    out->groups = mod_storage_sqlite_groups_split(
                      pool, (const char *) sqlite3_column_text(q, 6));
}

/* The current roster version (0 if never changed); SW_OK or SW_ERROR. */
static int
mod_storage_sqlite_roster_version(mod_storage_sqlite_t *st, const char *host,
                                  const char *user, uint64_t *version)
{
    int  rc;

    mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_VERSION, host, user);
    rc = mod_storage_sqlite_step(st, MOD_SQL_ROSTER_VERSION);
    *version = rc == SQLITE_ROW
               ? (uint64_t) sqlite3_column_int64(
                     st->stmt[MOD_SQL_ROSTER_VERSION], 0)
               : 0;
    mod_storage_sqlite_done(st, MOD_SQL_ROSTER_VERSION);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SW_OK : SW_ERROR;
}

/* Inside a transaction: bumps the version and reads it back. */
static int
mod_storage_sqlite_roster_bump(mod_storage_sqlite_t *st, const char *host,
                               const char *user, uint64_t *version)
{
    uint64_t  v;

    mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_BUMP, host, user);
    if (mod_storage_sqlite_exec(st, MOD_SQL_ROSTER_BUMP) != SW_OK
        || mod_storage_sqlite_roster_version(st, host, user, &v) != SW_OK)
    {
        return SW_ERROR;
    }
    if (version) {
        *version = v;
    }
    return SW_OK;
}

static int
mod_storage_sqlite_roster_get(sw_storage_t *s, const char *host,
                              const char *user, sw_pool_t *pool,
                              sw_roster_item_t **items, size_t *n,
                              uint64_t *version)
{
    mod_storage_sqlite_t  *st = s->self;
    sw_roster_item_t      *list;
    sqlite3_stmt          *q;
    size_t                 count, cap;
    int                    rc;

    *items = NULL;
    *n = 0;

    /* One read transaction, so items and version agree. */
    if (mod_storage_sqlite_begin_read(st) != SW_OK) {
        return SW_ERROR;
    }
    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc != SW_OK) {
        return mod_storage_sqlite_end(st, rc);
    }

    cap = 8;
    count = 0;
    list = sw_pool_alloc(pool, cap * sizeof(sw_roster_item_t));
    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_LIST, host, user);
    while ((rc = mod_storage_sqlite_step(st, MOD_SQL_ROSTER_LIST))
           == SQLITE_ROW)
    {
        if (count == cap) {
            sw_roster_item_t  *bigger;

            bigger = sw_pool_alloc(pool, 2 * cap * sizeof(sw_roster_item_t));
            memcpy(bigger, list, cap * sizeof(sw_roster_item_t));
            list = bigger;
            cap *= 2;
        }
        mod_storage_sqlite_roster_row(pool, q, &list[count++]);
    }
    mod_storage_sqlite_done(st, MOD_SQL_ROSTER_LIST);
    if (rc != SQLITE_DONE) {
        return mod_storage_sqlite_end(st, SW_ERROR);
    }

    if (version) {
        rc = mod_storage_sqlite_roster_version(st, host, user, version);
        if (rc != SW_OK) {
            return mod_storage_sqlite_end(st, rc);
        }
    }
    rc = mod_storage_sqlite_end(st, SW_OK);
    if (rc == SW_OK) {
        *items = list;
        *n = count;
    }
    return rc;
}

static int
mod_storage_sqlite_roster_get_item(sw_storage_t *s, const char *host,
                                   const char *user, const char *jid,
                                   sw_pool_t *pool, sw_roster_item_t *out)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_ITEM, host, user);
    mod_storage_sqlite_bind_text(q, 3, jid);
    rc = mod_storage_sqlite_step(st, MOD_SQL_ROSTER_ITEM);
    if (rc == SQLITE_ROW) {
        mod_storage_sqlite_roster_row(pool, q, out);
    }
    mod_storage_sqlite_done(st, MOD_SQL_ROSTER_ITEM);
    if (rc == SQLITE_ROW) {
        return SW_OK;
    }
    return rc == SQLITE_DONE ? SW_DECLINED : SW_ERROR;
}

static int
mod_storage_sqlite_roster_set(sw_storage_t *s, const char *host,
                              const char *user, const sw_roster_item_t *item,
                              uint64_t *version)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    char                  *groups;
    int                    rc;

    if (item->jid == NULL) {
        sw_log_error("storage_sqlite: roster item without a JID for %s@%s",
                     user, host);
        return SW_ERROR;
    }
    groups = mod_storage_sqlite_groups_join(item->groups, &rc);
    if (rc != SW_OK) {
        return SW_ERROR;
    }
    if (mod_storage_sqlite_begin(st) != SW_OK) {
        free(groups);
        return SW_ERROR;
    }

    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc == SW_OK) {
        q = mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_UPSERT, host,
                                         user);
        mod_storage_sqlite_bind_text(q, 3, item->jid);
        mod_storage_sqlite_bind_text(q, 4, item->name);
        sqlite3_bind_int(q, 5, (int) item->sub);
        sqlite3_bind_int(q, 6, item->ask);
        sqlite3_bind_int(q, 7, item->pending_in);
        sqlite3_bind_int(q, 8, item->approved);
        mod_storage_sqlite_bind_text(q, 9, groups);
        rc = mod_storage_sqlite_exec(st, MOD_SQL_ROSTER_UPSERT);
    }
    if (rc == SW_OK) {
        rc = mod_storage_sqlite_roster_bump(st, host, user, version);
    }
    rc = mod_storage_sqlite_end(st, rc);
    free(groups);
    return rc;
}

static int
mod_storage_sqlite_roster_remove(sw_storage_t *s, const char *host,
                                 const char *user, const char *jid,
                                 uint64_t *version)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }

    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_ROSTER_DELETE, host, user);
    mod_storage_sqlite_bind_text(q, 3, jid);
    rc = mod_storage_sqlite_exec(st, MOD_SQL_ROSTER_DELETE);
    if (rc == SW_OK && sqlite3_changes(st->db) == 0) {
        rc = SW_DECLINED;           /* no such item (or user) */
    }
    if (rc == SW_OK) {
        rc = mod_storage_sqlite_roster_bump(st, host, user, version);
    }
    return mod_storage_sqlite_end(st, rc);
}

/* --------------------------------------------------------- offline --- */

static int
mod_storage_sqlite_offline_count_locked(mod_storage_sqlite_t *st,
                                        const char *host, const char *user,
                                        size_t *n, size_t *bytes)
{
    int  rc;

    mod_storage_sqlite_user_stmt(st, MOD_SQL_OFFLINE_COUNT, host, user);
    rc = mod_storage_sqlite_step(st, MOD_SQL_OFFLINE_COUNT);
    if (rc == SQLITE_ROW) {
        *n = (size_t) sqlite3_column_int64(st->stmt[MOD_SQL_OFFLINE_COUNT],
                                           0);
        if (bytes != NULL) {
            *bytes = (size_t) sqlite3_column_int64(
                st->stmt[MOD_SQL_OFFLINE_COUNT], 1);
        }
    }
    mod_storage_sqlite_done(st, MOD_SQL_OFFLINE_COUNT);
    return rc == SQLITE_ROW ? SW_OK : SW_ERROR;
}

static int
mod_storage_sqlite_offline_push(sw_storage_t *s, const char *host,
                                const char *user, const char *xml,
                                size_t len, size_t max_per_user,
                                size_t max_bytes_per_user)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    size_t                 count, bytes = 0;
    int                    rc;

    if (len > (size_t) INT32_MAX) {
        sw_log_error("storage_sqlite: offline message for %s@%s too large",
                     user, host);
        return SW_ERROR;
    }
    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }

    rc = mod_storage_sqlite_user_check(st, host, user);
    /* A full store is SW_DECLINED: the caller bounces the message
     * (RFC 6121 §8.5.2.2.1) instead of silently dropping it. */
    if (rc == SW_OK && (max_per_user > 0 || max_bytes_per_user > 0)) {
        rc = mod_storage_sqlite_offline_count_locked(st, host, user, &count,
                                                     &bytes);
        if (rc == SW_OK
            && ((max_per_user > 0 && count >= max_per_user)
                || (max_bytes_per_user > 0
                    && bytes + len > max_bytes_per_user)))
        {
            rc = SW_DECLINED;
        }
    }
    if (rc == SW_OK) {
        q = mod_storage_sqlite_user_stmt(st, MOD_SQL_OFFLINE_INSERT, host,
                                         user);
        sqlite3_bind_int64(q, 3, (sqlite3_int64) time(NULL));
        sqlite3_bind_text(q, 4, xml, (int) len, SQLITE_STATIC);
        rc = mod_storage_sqlite_exec(st, MOD_SQL_OFFLINE_INSERT);
    }
    return mod_storage_sqlite_end(st, rc);
}

static int
mod_storage_sqlite_offline_fetch(sw_storage_t *s, const char *host,
                                 const char *user, sw_pool_t *pool,
                                 sw_offline_msg_t **msgs, size_t *n)
{
    mod_storage_sqlite_t  *st = s->self;
    sw_offline_msg_t      *list;
    sqlite3_stmt          *q;
    size_t                 count, cap;
    int                    rc;

    *msgs = NULL;
    *n = 0;

    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc != SW_OK) {
        return rc;
    }

    cap = 8;
    count = 0;
    list = sw_pool_alloc(pool, cap * sizeof(sw_offline_msg_t));
    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_OFFLINE_LIST, host, user);
    while ((rc = mod_storage_sqlite_step(st, MOD_SQL_OFFLINE_LIST))
           == SQLITE_ROW)
    {
        sw_offline_msg_t  *m;

        if (count == cap) {
            sw_offline_msg_t  *bigger;

            bigger = sw_pool_alloc(pool, 2 * cap * sizeof(sw_offline_msg_t));
            memcpy(bigger, list, cap * sizeof(sw_offline_msg_t));
            list = bigger;
            cap *= 2;
        }
        m = &list[count++];
        m->id = sqlite3_column_int64(q, 0);
        m->stamp = sqlite3_column_int64(q, 1);
        m->xml = mod_storage_sqlite_column(pool, q, 2);
    }
    mod_storage_sqlite_done(st, MOD_SQL_OFFLINE_LIST);
    if (rc != SQLITE_DONE) {
        return SW_ERROR;
    }
    *msgs = list;
    *n = count;
    return SW_OK;
}

static int
mod_storage_sqlite_offline_delete(sw_storage_t *s, const char *host,
                                  const char *user, int64_t upto)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc != SW_OK) {
        return rc;
    }
    q = mod_storage_sqlite_user_stmt(st, MOD_SQL_OFFLINE_DELETE, host, user);
    sqlite3_bind_int64(q, 3, (sqlite3_int64) upto);
    return mod_storage_sqlite_exec(st, MOD_SQL_OFFLINE_DELETE);
}

static int
mod_storage_sqlite_offline_count(sw_storage_t *s, const char *host,
                                 const char *user, size_t *n)
{
    mod_storage_sqlite_t  *st = s->self;
    int                    rc;

    *n = 0;
    rc = mod_storage_sqlite_user_check(st, host, user);
    if (rc != SW_OK) {
        return rc;
    }
    return mod_storage_sqlite_offline_count_locked(st, host, user, n, NULL);
}

/* ------------------------------------------------------ peer links --- */

/*
 * Queue rows are ordered by seq in SQLite's signed 64-bit integers, so a
 * sequence number must fit in one; the counters in link_state are stored
 * bit for bit and need no such bound.
 */
static int
mod_storage_sqlite_link_seq(const char *peer, uint64_t seq)
{
    if (seq == 0 || seq > (uint64_t) INT64_MAX) {
        sw_log_error("storage_sqlite: sequence number %llu for peer %s "
                     "out of range", (unsigned long long) seq, peer);
        return SW_ERROR;
    }
    return SW_OK;
}

static sqlite3_stmt *
mod_storage_sqlite_peer_stmt(mod_storage_sqlite_t *st,
                             mod_storage_sqlite_stmt_e id, const char *peer)
{
    sqlite3_stmt  *s = mod_storage_sqlite_stmt(st, id);

    mod_storage_sqlite_bind_text(s, 1, peer);
    return s;
}

static int
mod_storage_sqlite_link_queue_push(sw_storage_t *s, const char *peer,
                                   uint64_t seq, const char *xml, size_t len,
                                   int64_t expires)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;

    if (mod_storage_sqlite_txn_check(st) != SW_OK
        || mod_storage_sqlite_link_seq(peer, seq) != SW_OK)
    {
        return SW_ERROR;
    }
    if (len > (size_t) INT32_MAX) {
        sw_log_error("storage_sqlite: stanza for peer %s too large", peer);
        return SW_ERROR;
    }
    /* One statement: atomic by itself, and inside the caller's
     * transaction a failure (a duplicate seq) undoes only this row. */
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_PUSH, peer);
    sqlite3_bind_int64(q, 2, (sqlite3_int64) seq);
    sqlite3_bind_int64(q, 3, (sqlite3_int64) time(NULL));
    sqlite3_bind_int64(q, 4, (sqlite3_int64) expires);
    sqlite3_bind_text(q, 5, xml, (int) len, SQLITE_STATIC);
    return mod_storage_sqlite_exec(st, MOD_SQL_LINK_PUSH);
}

static int
mod_storage_sqlite_link_queue_load(sw_storage_t *s, const char *peer,
                                   uint64_t from, size_t max_bytes,
                                   sw_pool_t *pool, sw_link_item_t **items,
                                   size_t *n)
{
    mod_storage_sqlite_t  *st = s->self;
    sw_link_item_t        *list;
    sqlite3_stmt          *q;
    size_t                 count, cap, bytes = 0;
    int                    rc = SQLITE_DONE;

    *items = NULL;
    *n = 0;
    if (mod_storage_sqlite_txn_check(st) != SW_OK) {
        return SW_ERROR;
    }

    cap = 16;
    count = 0;
    list = sw_pool_alloc(pool, cap * sizeof(sw_link_item_t));
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_LOAD, peer);
    sqlite3_bind_int64(q, 2, (sqlite3_int64) (from > INT64_MAX ? INT64_MAX
                                                                : from));
    while ((max_bytes == 0 || bytes < max_bytes)
           && (rc = mod_storage_sqlite_step(st, MOD_SQL_LINK_LOAD))
              == SQLITE_ROW)
    {
        sw_link_item_t  *it;

        if (count == cap) {
            sw_link_item_t  *bigger;

            bigger = sw_pool_alloc(pool, 2 * cap * sizeof(sw_link_item_t));
            memcpy(bigger, list, cap * sizeof(sw_link_item_t));
            list = bigger;
            cap *= 2;
        }
        it = &list[count++];
        it->seq = (uint64_t) sqlite3_column_int64(q, 0);
        it->stamp = sqlite3_column_int64(q, 1);
        it->expires = sqlite3_column_int64(q, 2);
        it->xml = mod_storage_sqlite_column(pool, q, 3);
        it->len = strlen(it->xml);
        bytes += it->len;
    }
    mod_storage_sqlite_done(st, MOD_SQL_LINK_LOAD);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return SW_ERROR;
    }
    *items = list;
    *n = count;
    return SW_OK;
}

static int
mod_storage_sqlite_link_queue_ack(sw_storage_t *s, const char *peer,
                                  uint64_t upto)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;

    if (mod_storage_sqlite_txn_check(st) != SW_OK) {
        return SW_ERROR;
    }
    /* No stored seq exceeds INT64_MAX, so a larger upto means all. */
    if (upto > (uint64_t) INT64_MAX) {
        upto = (uint64_t) INT64_MAX;
    }
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_ACK, peer);
    sqlite3_bind_int64(q, 2, (sqlite3_int64) upto);
    return mod_storage_sqlite_exec(st, MOD_SQL_LINK_ACK);
}

static int
mod_storage_sqlite_link_queue_remove(sw_storage_t *s, const char *peer,
                                     uint64_t seq)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    if (mod_storage_sqlite_txn_check(st) != SW_OK) {
        return SW_ERROR;
    }
    if (seq == 0 || seq > (uint64_t) INT64_MAX) {
        return SW_DECLINED;         /* never stored */
    }
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_REMOVE, peer);
    sqlite3_bind_int64(q, 2, (sqlite3_int64) seq);
    rc = mod_storage_sqlite_exec(st, MOD_SQL_LINK_REMOVE);
    if (rc == SW_OK && sqlite3_changes(st->db) == 0) {
        rc = SW_DECLINED;
    }
    return rc;
}

static int
mod_storage_sqlite_link_state_get(sw_storage_t *s, const char *peer,
                                  uint64_t *next_out, uint64_t *in_delivered)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;
    int                    rc;

    *next_out = 0;
    *in_delivered = 0;
    if (mod_storage_sqlite_txn_check(st) != SW_OK) {
        return SW_ERROR;
    }
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_STATE_GET, peer);
    rc = mod_storage_sqlite_step(st, MOD_SQL_LINK_STATE_GET);
    if (rc == SQLITE_ROW) {
        *next_out = (uint64_t) sqlite3_column_int64(q, 0);
        *in_delivered = (uint64_t) sqlite3_column_int64(q, 1);
    }
    mod_storage_sqlite_done(st, MOD_SQL_LINK_STATE_GET);
    /* A peer never seen starts from 0/0. */
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SW_OK : SW_ERROR;
}

static int
mod_storage_sqlite_link_state_set(sw_storage_t *s, const char *peer,
                                  uint64_t next_out, uint64_t in_delivered)
{
    mod_storage_sqlite_t  *st = s->self;
    sqlite3_stmt          *q;

    if (mod_storage_sqlite_txn_check(st) != SW_OK) {
        return SW_ERROR;
    }
    q = mod_storage_sqlite_peer_stmt(st, MOD_SQL_LINK_STATE_SET, peer);
    sqlite3_bind_int64(q, 2, (sqlite3_int64) next_out);
    sqlite3_bind_int64(q, 3, (sqlite3_int64) in_delivered);
    return mod_storage_sqlite_exec(st, MOD_SQL_LINK_STATE_SET);
}

/*
 * The caller's transaction: one fsync per loop turn instead of one per
 * stanza.  BEGIN IMMEDIATE takes the write lock now, so no call inside
 * can fail half way with SQLITE_BUSY.
 */
static int
mod_storage_sqlite_txn_begin(sw_storage_t *s)
{
    mod_storage_sqlite_t  *st = s->self;

    if (st->txn) {
        sw_log_error("storage_sqlite: begin while a transaction is open on "
                     "%s; transactions do not nest", st->path);
        return SW_ERROR;
    }
    mod_storage_sqlite_stmt(st, MOD_SQL_BEGIN);
    if (mod_storage_sqlite_exec(st, MOD_SQL_BEGIN) != SW_OK) {
        return SW_ERROR;
    }
    st->txn = true;
    return SW_OK;
}

static int
mod_storage_sqlite_txn_commit(sw_storage_t *s)
{
    mod_storage_sqlite_t  *st = s->self;

    if (!st->txn) {
        sw_log_error("storage_sqlite: commit without begin on %s",
                     st->path);
        return SW_ERROR;
    }
    /* The transaction is over either way: a failed COMMIT rolls back. */
    st->txn = false;
    if (sqlite3_get_autocommit(st->db)) {
        sw_log_error("storage_sqlite: commit on %s: the transaction was "
                     "rolled back after an earlier error", st->path);
        return SW_ERROR;
    }
    return mod_storage_sqlite_commit(st);
}

/* ------------------------------------------------- open and migrate --- */

/* Runs SQL text that returns no rows we need; logs on failure. */
static int
mod_storage_sqlite_exec_text(mod_storage_sqlite_t *st, const char *purpose,
                             const char *sql)
{
    char  *err = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        sw_log_error("storage_sqlite: %s failed (%s): %s", purpose,
                     st->path, err ? err : sqlite3_errmsg(st->db));
        sqlite3_free(err);
        return SW_ERROR;
    }
    return SW_OK;
}

/* Reads a single integer pragma. */
static int
mod_storage_sqlite_pragma_int(mod_storage_sqlite_t *st, const char *sql,
                              const char *purpose, int64_t *out)
{
    sqlite3_stmt  *q;
    int            rc;

    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
        mod_storage_sqlite_fail(st, purpose);
        return SW_ERROR;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(q, 0);
    } else {
        mod_storage_sqlite_fail(st, purpose);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? SW_OK : SW_ERROR;
}

static int
mod_storage_sqlite_set_wal(mod_storage_sqlite_t *st)
{
    sqlite3_stmt          *q;
    const unsigned char   *mode;
    int                    rc;

    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &q,
                           NULL)
        != SQLITE_OK)
    {
        mod_storage_sqlite_fail(st, "set journal mode");
        return SW_ERROR;
    }
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        mod_storage_sqlite_fail(st, "set journal mode");
        sqlite3_finalize(q);
        return SW_ERROR;
    }
    /* The pragma answers with the mode in effect, which is not WAL on
     * file systems without shared memory support. */
    mode = sqlite3_column_text(q, 0);
    if (mode == NULL || strcmp((const char *) mode, "wal") != 0) {
        sw_log_warn("storage_sqlite: %s: journal mode is %s, not wal; "
                    "readers will wait for writers", st->path,
                    mode ? (const char *) mode : "unknown");
    }
    sqlite3_finalize(q);
    return SW_OK;
}

static int
mod_storage_sqlite_migrate(mod_storage_sqlite_t *st)
{
    const mod_storage_sqlite_migration_t  *m;
    int64_t                                have;
    int                                    latest;
    size_t                                 i;
    char                                   bump[64];

    if (mod_storage_sqlite_pragma_int(st, "PRAGMA user_version",
                                      "read schema version", &have)
        != SW_OK)
    {
        return SW_ERROR;
    }

    latest = mod_storage_sqlite_migrations[
                 MOD_STORAGE_SQLITE_N_MIGRATIONS - 1].version;
    if (have > latest) {
        sw_log_error("storage_sqlite: database %s has schema version %lld, "
                     "newer than this server understands (%d); refusing to "
                     "use it", st->path, (long long) have, latest);
        return SW_ERROR;
    }

    for (i = 0; i < MOD_STORAGE_SQLITE_N_MIGRATIONS; i++) {
        m = &mod_storage_sqlite_migrations[i];
        if (m->version <= have) {
            continue;
        }
        sw_log_info("storage_sqlite: %s: schema version %d: %s", st->path,
                    m->version, m->purpose);

        /* The version moves in the same transaction as the step, so a
         * crash leaves the database at the previous version, intact. */
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d",
                 m->version);
        if (mod_storage_sqlite_exec_text(st, "begin migration",
                                         "BEGIN IMMEDIATE")
            != SW_OK)
        {
            return SW_ERROR;
        }
        if (mod_storage_sqlite_exec_text(st, m->purpose, m->sql) != SW_OK
            || mod_storage_sqlite_exec_text(st, "set schema version", bump)
               != SW_OK
            || mod_storage_sqlite_exec_text(st, "commit migration",
                                            "COMMIT")
               != SW_OK)
        {
            if (!sqlite3_get_autocommit(st->db)) {
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            }
            return SW_ERROR;
        }
    }
    return SW_OK;
}

static void
mod_storage_sqlite_close(mod_storage_sqlite_t *st)
{
    size_t  i;

    if (st->txn) {
        /* sqlite3_close() rolls it back. */
        sw_log_warn("storage_sqlite: %s closed with a transaction open; "
                    "its changes are lost", st->path);
    }
    for (i = 0; i < MOD_SQL_N; i++) {
        sqlite3_finalize(st->stmt[i]);      /* NULL is a no-op */
        st->stmt[i] = NULL;
    }
    if (st->db && sqlite3_close(st->db) != SQLITE_OK) {
        sw_log_error("storage_sqlite: closing %s failed: %s", st->path,
                     sqlite3_errmsg(st->db));
    }
    st->db = NULL;
    free(st->reserve_path);
    free(st->path);
    free(st);
}

/* The database path: a relative path lives in the core's data_dir. */
static char *
mod_storage_sqlite_path(const mod_storage_sqlite_conf_t *conf)
{
    const sw_core_conf_t  *core;
    size_t                 dlen;
    char                  *path;

    core = sw_core_conf();
    if (conf->path[0] == '/' || core == NULL || core->data_dir == NULL
        || core->data_dir[0] == '\0')
    {
        return sw_strdup(conf->path);
    }
    dlen = strlen(core->data_dir);
    path = sw_alloc(dlen + strlen(conf->path) + 2);
    memcpy(path, core->data_dir, dlen);
    path[dlen] = '/';
    strcpy(path + dlen + 1, conf->path);
    return path;
}

static const sw_storage_t mod_storage_sqlite_api = {
    .version = SW_STORAGE_VERSION,
    .self = NULL,
    .user_create = mod_storage_sqlite_user_create,
    .user_set_creds = mod_storage_sqlite_user_set_creds,
    .user_delete = mod_storage_sqlite_user_delete,
    .user_exists = mod_storage_sqlite_user_exists,
    .user_get_cred = mod_storage_sqlite_user_get_cred,
    .user_list = mod_storage_sqlite_user_list,
    .roster_get = mod_storage_sqlite_roster_get,
    .roster_get_item = mod_storage_sqlite_roster_get_item,
    .roster_set = mod_storage_sqlite_roster_set,
    .roster_remove = mod_storage_sqlite_roster_remove,
    .offline_push = mod_storage_sqlite_offline_push,
    .offline_fetch = mod_storage_sqlite_offline_fetch,
    .offline_delete = mod_storage_sqlite_offline_delete,
    .offline_count = mod_storage_sqlite_offline_count,
    .link_queue_push = mod_storage_sqlite_link_queue_push,
    .link_queue_load = mod_storage_sqlite_link_queue_load,
    .link_queue_ack = mod_storage_sqlite_link_queue_ack,
    .link_queue_remove = mod_storage_sqlite_link_queue_remove,
    .link_state_get = mod_storage_sqlite_link_state_get,
    .link_state_set = mod_storage_sqlite_link_state_set,
    .begin = mod_storage_sqlite_txn_begin,
    .commit = mod_storage_sqlite_txn_commit,
};

/* Owner cleanup and stop(): whichever comes first closes the database. */
static void
mod_storage_sqlite_release(void *data)
{
    sw_module_ctx_t  *mc = data;

    if (mc->data != NULL) {
        mod_storage_sqlite_close(mc->data);
        mc->data = NULL;
    }
}

/*
 * The database and its WAL and shared-memory files hold every account's
 * secrets and every queued message: owner only.  SQLite gives -wal and
 * -shm the mode of the database file, so creating that one 0600 is
 * enough; files left by older versions are tightened.
 */
static int
mod_storage_sqlite_private(const char *path)
{
    static const char *const  ext[] = { "", "-wal", "-shm" };
    char                      f[4200];
    struct stat               sb;
    size_t                    i;
    int                       fd;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        sw_log_error("storage_sqlite: cannot open database %s: %s", path,
                     strerror(errno));
        return SW_ERROR;
    }
    close(fd);
    for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        snprintf(f, sizeof(f), "%s%s", path, ext[i]);
        if (stat(f, &sb) == 0 && (sb.st_mode & 077) != 0) {
            sw_log_warn("storage_sqlite: %s was readable by others; "
                        "made it owner-only (0600)", f);
            if (chmod(f, sb.st_mode & 0700) != 0) {
                sw_log_error("storage_sqlite: chmod %s: %s", f,
                             strerror(errno));
                return SW_ERROR;
            }
        }
    }
    return SW_OK;
}

/*
 * Checking a configuration changes nothing on disk: the database is read
 * without locks or journal files (immutable), only to see that it is
 * one this build can use; a missing one is fine if its directory exists.
 */
static int
mod_storage_sqlite_check_file(mod_storage_sqlite_t *st)
{
    char          *uri, *dir, *slash;
    int64_t        have = 0;
    int            rc, want;
    struct stat    sb;

    if (stat(st->path, &sb) != 0) {
        dir = sw_strdup(st->path);
        slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
        rc = stat(slash != NULL ? (*dir ? dir : "/") : ".", &sb);
        if (rc != 0 || !S_ISDIR(sb.st_mode)) {
            sw_log_error("storage_sqlite: no directory for database %s",
                         st->path);
            free(dir);
            return SW_ERROR;
        }
        free(dir);
        sw_log_info("storage_sqlite: %s will be created at start",
                    st->path);
        return SW_OK;
    }
    uri = sqlite3_mprintf("file:%s?mode=ro&immutable=1", st->path);
    rc = sqlite3_open_v2(uri, &st->db, SQLITE_OPEN_READONLY
                         | SQLITE_OPEN_URI, NULL);
    sqlite3_free(uri);
    if (rc != SQLITE_OK
        || mod_storage_sqlite_pragma_int(st, "PRAGMA user_version",
                                         "read schema version", &have)
           != SW_OK)
    {
        sw_log_error("storage_sqlite: cannot read database %s: %s",
                     st->path, st->db ? sqlite3_errmsg(st->db)
                                      : sqlite3_errstr(rc));
        return SW_ERROR;
    }
    want = mod_storage_sqlite_migrations[
        MOD_STORAGE_SQLITE_N_MIGRATIONS - 1].version;
    if (have > want) {
        sw_log_error("storage_sqlite: database %s has schema version %lld, "
                     "newer than this build's %d", st->path,
                     (long long) have, want);
        return SW_ERROR;
    }
    if (have < want) {
        sw_log_info("storage_sqlite: %s will be migrated from schema "
                    "version %lld to %d at start", st->path,
                    (long long) have, want);
    }
    return SW_OK;
}

static int
mod_storage_sqlite_load(sw_module_ctx_t *mc)
{
    const mod_storage_sqlite_conf_t  *conf = mc->conf;
    mod_storage_sqlite_t             *st;
    char                              pragma[64];
    size_t                            i;
    int                               rc;

    if (conf->path == NULL || conf->path[0] == '\0') {
        sw_log_error("storage_sqlite: storage_sqlite_path is empty");
        return SW_ERROR;
    }

    st = sw_calloc(1, sizeof(*st));
    st->path = mod_storage_sqlite_path(conf);
    if (sw_server_checking()) {
        rc = mod_storage_sqlite_check_file(st);
        if (rc != SW_OK) {
            goto failed;
        }
        goto provide;
    }
    if (mod_storage_sqlite_private(st->path) != SW_OK) {
        goto failed;
    }

    /* No SQLITE_OPEN_CREATE of directories: a missing data_dir is a
     * configuration mistake the admin should see, not paper over. */
    rc = sqlite3_open_v2(st->path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        sw_log_error("storage_sqlite: cannot open database %s: %s",
                     st->path, st->db ? sqlite3_errmsg(st->db)
                                      : sqlite3_errstr(rc));
        goto failed;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, (int) (conf->busy_timeout * 1000.0));

    snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = %s",
             mod_storage_sqlite_sync[conf->synchronous]);
    /* The first statement really opens the file: a path that cannot be
     * opened fails here, and the message names it. */
    if (mod_storage_sqlite_set_wal(st) != SW_OK
        || mod_storage_sqlite_exec_text(st, "enable foreign keys",
                                        "PRAGMA foreign_keys = ON")
           != SW_OK
        || mod_storage_sqlite_exec_text(st, "set synchronous", pragma)
           != SW_OK
        || mod_storage_sqlite_migrate(st) != SW_OK)
    {
        goto failed;
    }

    st->reserve = conf->reserve;
    if (st->reserve > 0) {
        size_t n = strlen(st->path) + sizeof(".reserve");

        st->reserve_path = sw_alloc(n);
        snprintf(st->reserve_path, n, "%s.reserve", st->path);
        mod_storage_sqlite_reserve_take(st);
    }

    for (i = 0; i < MOD_SQL_N; i++) {
        if (sqlite3_prepare_v3(st->db, mod_storage_sqlite_sql[i].sql, -1,
                               SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL)
            != SQLITE_OK)
        {
            sw_log_error("storage_sqlite: cannot prepare \"%s\" (%s): %s",
                         mod_storage_sqlite_sql[i].purpose, st->path,
                         sqlite3_errmsg(st->db));
            goto failed;
        }
    }

provide:
    st->api = mod_storage_sqlite_api;
    st->api.self = st;
    mod_storage_sqlite_stores_api(&st->api);
    mc->data = st;

    /* Tools such as skywavectl load modules without starting or stopping
     * them; releasing the owner (which unload always does) closes the
     * database then.  Registered before the service, so the service is
     * withdrawn first. */
    sw_owner_on_release(&mc->owner, mod_storage_sqlite_release, mc);
    if (sw_service_provide(&mc->owner, SW_STORAGE_SERVICE,
                           SW_STORAGE_VERSION, &st->api)
        != SW_OK)
    {
        return SW_ERROR;            /* the owner's release closes it */
    }

    sw_log_info("storage_sqlite: using %s", st->path);
    return SW_OK;

failed:
    mod_storage_sqlite_close(st);
    return SW_ERROR;
}

static void
mod_storage_sqlite_stop(sw_module_ctx_t *mc)
{
    mod_storage_sqlite_release(mc);
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "storage_sqlite",
    .help = "embedded SQLite storage: users, rosters, offline messages, "
            "peer link queues",
    .requires = NULL,
    .options = mod_storage_sqlite_options,
    .conf_size = sizeof(mod_storage_sqlite_conf_t),
    .load = mod_storage_sqlite_load,
    .stop = mod_storage_sqlite_stop,
};
