/*
 * Storage interface, provided as the service "storage" by a storage module
 * (mod_storage_sqlite is the embedded default).  Calls are synchronous and
 * short (SQLite in WAL mode answers from the page cache); a networked
 * backend will add an asynchronous variant under a new version.
 *
 * Credentials are SCRAM secrets only (RFC 5802 §3): salt, iteration count,
 * StoredKey and ServerKey per hash.  Plain passwords are never stored.
 *
 * All functions return SW_OK, SW_DECLINED (no such user/item; for create:
 * already exists) or SW_ERROR (the backend failed; it logged why).
 */
#ifndef SKYWAVE_SW_STORAGE_H
#define SKYWAVE_SW_STORAGE_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>

#define SW_STORAGE_SERVICE "storage"
#define SW_STORAGE_VERSION 5

typedef struct sw_scram_cred_s {
    const char *hash;           /* "SHA-1" or "SHA-256" */
    unsigned    iterations;
    const char *salt;           /* base64 */
    const char *stored_key;     /* hex */
    const char *server_key;     /* hex */
} sw_scram_cred_t;

typedef enum sw_sub_e {        /* RFC 6121 §2.1.2.5 */
    SW_SUB_NONE = 0,
    SW_SUB_TO,
    SW_SUB_FROM,
    SW_SUB_BOTH,
} sw_sub_e;

typedef struct sw_roster_item_s {
    const char  *jid;           /* bare JID, prepared */
    const char  *name;          /* NULL if none */
    sw_sub_e     sub;
    bool         ask;           /* outbound subscribe pending: ask='subscribe' */
    bool         pending_in;    /* inbound subscribe awaiting approval */
    bool         approved;      /* pre-approved (RFC 6121 §3.4) */
    const char **groups;        /* NULL-terminated, may be NULL */
} sw_roster_item_t;

typedef struct sw_offline_msg_s {
    int64_t     id;
    int64_t     stamp;          /* unix seconds when stored */
    const char *xml;            /* serialized stanza */
} sw_offline_msg_t;

/* A stanza waiting in a peer link's durable outbound queue. */
typedef struct sw_link_item_s {
    uint64_t    seq;            /* link sequence number, from 1 */
    int64_t     stamp;          /* unix seconds when queued */
    int64_t     expires;        /* unix seconds; 0: never */
    const char *xml;            /* serialized stanza */
    size_t      len;            /* strlen(xml) */
} sw_link_item_t;

/* A stored value (generic stores): bytes, with a NUL after them. */
typedef struct sw_storage_value_s {
    const char *data;
    size_t      len;
} sw_storage_value_t;

/* An archive item (generic stores). */
typedef struct sw_archive_item_s {
    int64_t     id;             /* assigned by the store, increasing */
    int64_t     when;           /* unix seconds, as given */
    const char *with;           /* as given; NULL: none */
    const char *data;           /* the value, with a NUL after it */
    size_t      len;
} sw_archive_item_t;

/*
 * What an archive query selects: items with start <= when <= end, after_id
 * < id < before_id, and the given with, oldest first; 0 or NULL leaves a
 * bound out.  max (0: no bound) keeps the first max of them, or with
 * last the last max (still oldest first): "the newest 20" is { .max =
 * 20, .last = true }, and the page before them { .max = 20, .last =
 * true, .before_id = first id of those }.
 */
typedef struct sw_archive_query_s {
    int64_t     start, end;
    int64_t     after_id, before_id;
    const char *with;
    size_t      max;
    bool        last;
} sw_archive_query_t;

typedef struct sw_storage_s sw_storage_t;

struct sw_storage_s {
    unsigned version;           /* SW_STORAGE_VERSION */
    void    *self;

    /* Users.  creds: one per hash (n entries). */
    int (*user_create)(sw_storage_t *s, const char *host, const char *user,
                       const sw_scram_cred_t *creds, size_t n);
    int (*user_set_creds)(sw_storage_t *s, const char *host,
                          const char *user, const sw_scram_cred_t *creds,
                          size_t n);
    int (*user_delete)(sw_storage_t *s, const char *host, const char *user);
    int (*user_exists)(sw_storage_t *s, const char *host, const char *user);
    /* Credential for one hash; strings in pool. */
    int (*user_get_cred)(sw_storage_t *s, const char *host, const char *user,
                         const char *hash, sw_pool_t *pool,
                         sw_scram_cred_t *out);
    /* Calls fn for each user of host, sorted. */
    int (*user_list)(sw_storage_t *s, const char *host,
                     void (*fn)(const char *user, void *ud), void *ud);

    /* Rosters (RFC 6121 §2).  The version increases with every change. */
    int (*roster_get)(sw_storage_t *s, const char *host, const char *user,
                      sw_pool_t *pool, sw_roster_item_t **items, size_t *n,
                      uint64_t *version);
    int (*roster_get_item)(sw_storage_t *s, const char *host,
                           const char *user, const char *jid,
                           sw_pool_t *pool, sw_roster_item_t *out);
    /* Inserts or replaces item; *version gets the new roster version. */
    int (*roster_set)(sw_storage_t *s, const char *host, const char *user,
                      const sw_roster_item_t *item, uint64_t *version);
    int (*roster_remove)(sw_storage_t *s, const char *host, const char *user,
                         const char *jid, uint64_t *version);

    /* Offline messages (RFC 6121 §8.5.2.2.1), oldest first.  A user
     * holding max_per_user messages, or max_bytes_per_user bytes with this
     * one, is full: SW_DECLINED (0: no bound). */
    int (*offline_push)(sw_storage_t *s, const char *host, const char *user,
                        const char *xml, size_t len, size_t max_per_user,
                        size_t max_bytes_per_user);
    int (*offline_fetch)(sw_storage_t *s, const char *host, const char *user,
                         sw_pool_t *pool, sw_offline_msg_t **msgs, size_t *n);
    /* Deletes fetched messages with id <= upto (after delivery). */
    int (*offline_delete)(sw_storage_t *s, const char *host, const char *user,
                          int64_t upto);
    int (*offline_count)(sw_storage_t *s, const char *host, const char *user,
                         size_t *n);

    /*
     * Peer links (version 2): per peer, a durable outbound queue of
     * numbered stanzas and two counters that survive restarts: the next
     * outbound sequence number and the last inbound one delivered.
     */
    /* Appends a stanza with sequence seq (the caller numbers them). */
    int (*link_queue_push)(sw_storage_t *s, const char *peer, uint64_t seq,
                           const char *xml, size_t len, int64_t expires);
    /*
     * Queued stanzas of peer with seq >= from, ascending, up to and
     * including the one whose XML takes the total to max_bytes or past
     * it (so at least one when there is one; 0: no bound).  Version 4:
     * the link layer keeps only the head of a queue in memory and pages
     * the rest in with this.
     */
    int (*link_queue_load)(sw_storage_t *s, const char *peer,
                           uint64_t from, size_t max_bytes,
                           sw_pool_t *pool, sw_link_item_t **items,
                           size_t *n);
    /* Deletes queued stanzas with seq <= upto (acknowledged). */
    int (*link_queue_ack)(sw_storage_t *s, const char *peer, uint64_t upto);
    /* Deletes one queued stanza (expired). */
    int (*link_queue_remove)(sw_storage_t *s, const char *peer,
                             uint64_t seq);
    /* Counters; both 0 for a peer never seen. */
    int (*link_state_get)(sw_storage_t *s, const char *peer,
                          uint64_t *next_out, uint64_t *in_delivered);
    int (*link_state_set)(sw_storage_t *s, const char *peer,
                          uint64_t next_out, uint64_t in_delivered);
    /* Groups the calls until commit into one transaction (one fsync per
     * loop turn instead of one per stanza); not nested. */
    int (*begin)(sw_storage_t *s);
    int (*commit)(sw_storage_t *s);

    /*
     * Generic stores (version 5), for any module without a change here:
     * each module keeps its data under store names of its own
     * ("muc_rooms", "presence_cache"), per host ("" for server-wide
     * data).  Values are bytes (XML, JSON...); a caller bounds what it
     * stores.  Results are copied into pool.  SW_DECLINED: nothing there.
     */
    /* Key-value: one value per key. */
    int (*kv_get)(sw_storage_t *s, const char *store, const char *host,
                  const char *key, sw_pool_t *pool, sw_storage_value_t *out);
    /* Sets key's value; data NULL deletes the key. */
    int (*kv_set)(sw_storage_t *s, const char *store, const char *host,
                  const char *key, const void *data, size_t len);
    /* Map: key -> field -> value (a room's affiliations, a user's
     * cached presences). */
    int (*map_get)(sw_storage_t *s, const char *store, const char *host,
                   const char *key, const char *field, sw_pool_t *pool,
                   sw_storage_value_t *out);
    /* Sets one field; data NULL deletes it. */
    int (*map_set)(sw_storage_t *s, const char *store, const char *host,
                   const char *key, const char *field, const void *data,
                   size_t len);
    /* Calls fn for each field of key, sorted by field; fn returns SW_OK
     * to go on, anything else stops (and is returned). */
    int (*map_each)(sw_storage_t *s, const char *store, const char *host,
                    const char *key,
                    int (*fn)(const char *field, const char *data,
                              size_t len, void *ud),
                    void *ud);
    /* Deletes every field of key. */
    int (*map_clear)(sw_storage_t *s, const char *store, const char *host,
                     const char *key);
    /* Archive: append-only items of key (a room's history, a user's
     * messages), each with a time and an optional "with" (a JID). */
    int (*archive_append)(sw_storage_t *s, const char *store,
                          const char *host, const char *key, int64_t when,
                          const char *with, const void *data, size_t len,
                          int64_t *id);
    int (*archive_query)(sw_storage_t *s, const char *store,
                         const char *host, const char *key,
                         const sw_archive_query_t *q, sw_pool_t *pool,
                         sw_archive_item_t **items, size_t *n);
    /* Deletes the items of key with id <= upto_id (0: any id) and
     * when < before (0: any time); both 0 deletes them all.  *deleted
     * (may be NULL) gets how many. */
    int (*archive_delete)(sw_storage_t *s, const char *store,
                          const char *host, const char *key,
                          int64_t upto_id, int64_t before, size_t *deleted);
};

/* Convenience: the provided storage, or NULL (logged) when none is loaded. */
sw_storage_t *sw_storage(void);

/*
 * Derives SCRAM credentials for password (GNU SASL,
 * gsasl_scram_secrets_from_password) with a fresh random salt.  hash is
 * "SHA-1" or "SHA-256"; strings in pool.  SW_OK or SW_ERROR.
 */
int sw_scram_cred_make(sw_pool_t *pool, const char *hash, const char *password,
                       unsigned iterations, sw_scram_cred_t *out);
/*
 * A decoy credential for an account that does not exist (RFC 5802 §9):
 * salt and keys derived from secret, the host and the user, so the same
 * name always gets the same salt, with the default iteration count.  A
 * server that runs the exchange on it to the end answers an unknown
 * account exactly as a wrong password, in content and in time.
 * Strings in pool.  SW_OK or SW_ERROR.
 */
int sw_scram_cred_decoy(sw_pool_t *pool, const void *secret,
                        size_t secret_len, const char *hash,
                        const char *host, const char *user,
                        sw_scram_cred_t *out);
/* A stored key (hex) in base64, as GNU SASL's SCRAM properties want it;
 * new (free()), or NULL when hex is not hex. */
char *sw_scram_key_base64(const char *hex);
/* Checks password against a stored credential (for SASL PLAIN). */
bool sw_scram_cred_verify(const sw_scram_cred_t *cred, const char *password);

#endif
