/*
 * String-keyed hash table (open addressing, linear probing).  Keys are
 * copied; values are borrowed pointers.
 */
#ifndef SKYWAVE_SW_HASH_H
#define SKYWAVE_SW_HASH_H

#include <skywave/sw_core.h>

typedef struct sw_hash_s sw_hash_t;

sw_hash_t *sw_hash_new(size_t hint);
void sw_hash_free(sw_hash_t *h);
/* Sets key to value (replacing); value NULL removes the key. */
void sw_hash_set(sw_hash_t *h, const char *key, void *value);
void *sw_hash_get(const sw_hash_t *h, const char *key);
size_t sw_hash_count(const sw_hash_t *h);
/* Calls fn for every entry; fn must not change the table. */
void sw_hash_each(const sw_hash_t *h,
                  void (*fn)(const char *key, void *value, void *ud),
                  void *ud);

#endif
