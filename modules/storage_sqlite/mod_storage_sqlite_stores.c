/*
 * mod_storage_sqlite: the generic stores of sw_storage.h (version 5), a
 * key-value store, a map (key -> field -> value) and an append-only
 * archive with time and id ranges, one table each (schema step 3).  Any
 * module keeps its data in them under store names of its own, so a new
 * module needs no change here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mod_storage_sqlite.h"

/* Values are bound as blobs: at most what an int length can say. */
static int
mod_stores_check_len(const char *what, const char *store, size_t len)
{
    if (len > (size_t) INT32_MAX) {
        sw_log_error("storage_sqlite: a %s value of %zu bytes for store "
                     "'%s' is too large", what, len, store);
        return SW_ERROR;
    }
    return SW_OK;
}

static sqlite3_stmt *
mod_stores_stmt(mod_storage_sqlite_t *st, mod_storage_sqlite_stmt_e id,
                const char *store, const char *host, const char *key)
{
    sqlite3_stmt *q = mod_storage_sqlite_stmt(st, id);

    mod_storage_sqlite_bind_text(q, 1, store);
    mod_storage_sqlite_bind_text(q, 2, host != NULL ? host : "");
    mod_storage_sqlite_bind_text(q, 3, key);
    return q;
}

/* A blob column copied into pool, with a NUL after it. */
static const char *
mod_stores_blob(sw_pool_t *pool, sqlite3_stmt *q, int col, size_t *len)
{
    const void *b = sqlite3_column_blob(q, col);
    size_t      n = (size_t) sqlite3_column_bytes(q, col);
    char       *out = sw_pool_alloc(pool, n + 1);

    if (n > 0) {
        memcpy(out, b, n);
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Room for one more item in v (n used, *cap allocated), from pool. */
static sw_archive_item_t *
mod_stores_grow(sw_pool_t *pool, sw_archive_item_t *v, size_t n,
                size_t *cap)
{
    sw_archive_item_t *bigger;

    if (n < *cap) {
        return v;
    }
    *cap = *cap ? 2 * *cap : 16;
    bigger = sw_pool_alloc(pool, *cap * sizeof(*v));
    if (n > 0) {
        memcpy(bigger, v, n * sizeof(*v));
    }
    return bigger;
}

/* One value by a read statement whose first column is the value. */
static int
mod_stores_read_one(mod_storage_sqlite_t *st, mod_storage_sqlite_stmt_e id,
                    sw_pool_t *pool, sw_storage_value_t *out)
{
    sqlite3_stmt *q = st->stmt[id];
    int           rc = mod_storage_sqlite_step(st, id);

    out->data = NULL;
    out->len = 0;
    if (rc == SQLITE_ROW) {
        out->data = mod_stores_blob(pool, q, 0, &out->len);
    }
    mod_storage_sqlite_done(st, id);
    return rc == SQLITE_ROW ? SW_OK : rc == SQLITE_DONE ? SW_DECLINED
                                                        : SW_ERROR;
}

/* A write in a transaction of its own (a savepoint in the caller's). */
static int
mod_stores_write(mod_storage_sqlite_t *st, mod_storage_sqlite_stmt_e id)
{
    int rc;

    /* the statement is bound; begin uses other statements */
    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }
    rc = mod_storage_sqlite_exec(st, id);
    return mod_storage_sqlite_end(st, rc);
}

/* ------------------------------------------------------- key-value --- */

static int
mod_stores_kv_get(sw_storage_t *s, const char *store, const char *host,
                  const char *key, sw_pool_t *pool, sw_storage_value_t *out)
{
    mod_storage_sqlite_t *st = s->self;

    mod_stores_stmt(st, MOD_SQL_KV_GET, store, host, key);
    return mod_stores_read_one(st, MOD_SQL_KV_GET, pool, out);
}

static int
mod_stores_kv_set(sw_storage_t *s, const char *store, const char *host,
                  const char *key, const void *data, size_t len)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;

    if (data == NULL) {
        mod_stores_stmt(st, MOD_SQL_KV_DELETE, store, host, key);
        return mod_stores_write(st, MOD_SQL_KV_DELETE);
    }
    if (mod_stores_check_len("key-value", store, len) != SW_OK) {
        return SW_ERROR;
    }
    q = mod_stores_stmt(st, MOD_SQL_KV_SET, store, host, key);
    sqlite3_bind_blob(q, 4, data, (int) len, SQLITE_STATIC);
    return mod_stores_write(st, MOD_SQL_KV_SET);
}

/* ------------------------------------------------------------- map --- */

static int
mod_stores_map_get(sw_storage_t *s, const char *store, const char *host,
                   const char *key, const char *field, sw_pool_t *pool,
                   sw_storage_value_t *out)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;

    q = mod_stores_stmt(st, MOD_SQL_MAP_GET, store, host, key);
    mod_storage_sqlite_bind_text(q, 4, field);
    return mod_stores_read_one(st, MOD_SQL_MAP_GET, pool, out);
}

static int
mod_stores_map_set(sw_storage_t *s, const char *store, const char *host,
                   const char *key, const char *field, const void *data,
                   size_t len)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;

    if (data == NULL) {
        q = mod_stores_stmt(st, MOD_SQL_MAP_DELETE, store, host, key);
        mod_storage_sqlite_bind_text(q, 4, field);
        return mod_stores_write(st, MOD_SQL_MAP_DELETE);
    }
    if (mod_stores_check_len("map", store, len) != SW_OK) {
        return SW_ERROR;
    }
    q = mod_stores_stmt(st, MOD_SQL_MAP_SET, store, host, key);
    mod_storage_sqlite_bind_text(q, 4, field);
    sqlite3_bind_blob(q, 5, data, (int) len, SQLITE_STATIC);
    return mod_stores_write(st, MOD_SQL_MAP_SET);
}

/*
 * The fields are read into a pool first and fn runs after the statement
 * is reset: fn may call the storage again (even this store) without
 * meeting a statement that is still stepping.
 */
static int
mod_stores_map_each(sw_storage_t *s, const char *store, const char *host,
                    const char *key,
                    int (*fn)(const char *field, const char *data,
                              size_t len, void *ud),
                    void *ud)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;
    sw_pool_t            *pool = sw_pool_new(0);
    sw_archive_item_t    *v = NULL;     /* with = field */
    size_t                n = 0, cap = 0, i;
    int                   rc;

    q = mod_stores_stmt(st, MOD_SQL_MAP_LIST, store, host, key);
    while ((rc = mod_storage_sqlite_step(st, MOD_SQL_MAP_LIST))
           == SQLITE_ROW)
    {
        v = mod_stores_grow(pool, v, n, &cap);
        v[n].with = sw_pool_strdup(pool,
                                   (const char *) sqlite3_column_text(q, 0));
        v[n].data = mod_stores_blob(pool, q, 1, &v[n].len);
        n++;
    }
    mod_storage_sqlite_done(st, MOD_SQL_MAP_LIST);
    if (rc != SQLITE_DONE) {
        sw_pool_free(pool);
        return SW_ERROR;
    }
    rc = SW_OK;
    for (i = 0; i < n && rc == SW_OK; i++) {
        rc = fn(v[i].with, v[i].data, v[i].len, ud);
    }
    sw_pool_free(pool);
    return rc;
}

static int
mod_stores_map_clear(sw_storage_t *s, const char *store, const char *host,
                     const char *key)
{
    mod_storage_sqlite_t *st = s->self;

    mod_stores_stmt(st, MOD_SQL_MAP_CLEAR, store, host, key);
    return mod_stores_write(st, MOD_SQL_MAP_CLEAR);
}

/* --------------------------------------------------------- archive --- */

static int
mod_stores_archive_append(sw_storage_t *s, const char *store,
                          const char *host, const char *key, int64_t when,
                          const char *with, const void *data, size_t len,
                          int64_t *id)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;
    int                   rc;

    if (mod_stores_check_len("archive", store, len) != SW_OK
        || mod_storage_sqlite_begin(st) != SW_OK)
    {
        return SW_ERROR;
    }
    q = mod_stores_stmt(st, MOD_SQL_ARCHIVE_APPEND, store, host, key);
    sqlite3_bind_int64(q, 4, (sqlite3_int64) when);
    mod_storage_sqlite_bind_text(q, 5, with);
    sqlite3_bind_blob(q, 6, data != NULL ? data : "", (int) len,
                      SQLITE_STATIC);
    rc = mod_storage_sqlite_exec(st, MOD_SQL_ARCHIVE_APPEND);
    if (rc == SW_OK && id != NULL) {
        *id = (int64_t) sqlite3_last_insert_rowid(st->db);
    }
    return mod_storage_sqlite_end(st, rc);
}

static void
mod_stores_bind_bound(sqlite3_stmt *q, int i, int64_t v)
{
    if (v == 0) {
        sqlite3_bind_null(q, i);
    } else {
        sqlite3_bind_int64(q, i, (sqlite3_int64) v);
    }
}

static int
mod_stores_archive_query(sw_storage_t *s, const char *store,
                         const char *host, const char *key,
                         const sw_archive_query_t *aq, sw_pool_t *pool,
                         sw_archive_item_t **items, size_t *n)
{
    mod_storage_sqlite_t     *st = s->self;
    mod_storage_sqlite_stmt_e id = aq->last ? MOD_SQL_ARCHIVE_LAST
                                            : MOD_SQL_ARCHIVE_FIRST;
    sw_archive_item_t        *v = NULL, *it, tmp;
    sqlite3_stmt             *q;
    size_t                    count = 0, cap = 0, i;
    const unsigned char      *with;
    int                       rc;

    *items = NULL;
    *n = 0;
    q = mod_stores_stmt(st, id, store, host, key);
    mod_stores_bind_bound(q, 4, aq->start);
    mod_stores_bind_bound(q, 5, aq->end);
    mod_stores_bind_bound(q, 6, aq->after_id);
    mod_stores_bind_bound(q, 7, aq->before_id);
    mod_storage_sqlite_bind_text(q, 8, aq->with);
    sqlite3_bind_int64(q, 9, aq->max > 0 && aq->max < (size_t) INT64_MAX
                             ? (sqlite3_int64) aq->max : -1);
    while ((rc = mod_storage_sqlite_step(st, id)) == SQLITE_ROW) {
        v = mod_stores_grow(pool, v, count, &cap);
        it = &v[count++];
        it->id = sqlite3_column_int64(q, 0);
        it->when = sqlite3_column_int64(q, 1);
        with = sqlite3_column_text(q, 2);
        it->with = with != NULL ? sw_pool_strdup(pool, (const char *) with)
                                : NULL;
        it->data = mod_stores_blob(pool, q, 3, &it->len);
    }
    mod_storage_sqlite_done(st, id);
    if (rc != SQLITE_DONE) {
        return SW_ERROR;
    }
    if (aq->last) {
        /* read newest first to take the last max: oldest first again */
        for (i = 0; i < count / 2; i++) {
            tmp = v[i];
            v[i] = v[count - 1 - i];
            v[count - 1 - i] = tmp;
        }
    }
    *items = v;
    *n = count;
    return SW_OK;
}

static int
mod_stores_archive_delete(sw_storage_t *s, const char *store,
                          const char *host, const char *key,
                          int64_t upto_id, int64_t before, size_t *deleted)
{
    mod_storage_sqlite_t *st = s->self;
    sqlite3_stmt         *q;
    int                   rc;

    if (mod_storage_sqlite_begin(st) != SW_OK) {
        return SW_ERROR;
    }
    q = mod_stores_stmt(st, MOD_SQL_ARCHIVE_DELETE, store, host, key);
    mod_stores_bind_bound(q, 4, upto_id);
    mod_stores_bind_bound(q, 5, before);
    rc = mod_storage_sqlite_exec(st, MOD_SQL_ARCHIVE_DELETE);
    if (rc == SW_OK && deleted != NULL) {
        *deleted = (size_t) sqlite3_changes(st->db);
    }
    return mod_storage_sqlite_end(st, rc);
}

void
mod_storage_sqlite_stores_api(sw_storage_t *api)
{
    api->kv_get = mod_stores_kv_get;
    api->kv_set = mod_stores_kv_set;
    api->map_get = mod_stores_map_get;
    api->map_set = mod_stores_map_set;
    api->map_each = mod_stores_map_each;
    api->map_clear = mod_stores_map_clear;
    api->archive_append = mod_stores_archive_append;
    api->archive_query = mod_stores_archive_query;
    api->archive_delete = mod_stores_archive_delete;
}
