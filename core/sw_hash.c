/* String-keyed hash table: open addressing, linear probing, tombstones. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_hash.h>

typedef struct {
    char   *key;        /* NULL: empty; sw_hash_tomb: deleted */
    void   *value;
    size_t  hash;
} sw_hash_slot_t;

struct sw_hash_s {
    sw_hash_slot_t *slots;
    size_t          cap;        /* power of two */
    size_t          count;      /* live entries */
    size_t          used;       /* live + tombstones */
};

static char sw_hash_tomb[1];

static size_t
sw_hash_str(const char *s)
{
    size_t h = 14695981039346656037ULL;     /* FNV-1a */

    while (*s) {
        h ^= (unsigned char) *s++;
        h *= 1099511628211ULL;
    }
    return h;
}

sw_hash_t *
sw_hash_new(size_t hint)
{
    sw_hash_t *h = sw_calloc(1, sizeof(*h));

    h->cap = 8;
    while (h->cap < hint * 2) {
        h->cap *= 2;
    }
    h->slots = sw_calloc(h->cap, sizeof(*h->slots));
    return h;
}

void
sw_hash_free(sw_hash_t *h)
{
    size_t i;

    if (h == NULL) {
        return;
    }
    for (i = 0; i < h->cap; i++) {
        if (h->slots[i].key != NULL && h->slots[i].key != sw_hash_tomb) {
            free(h->slots[i].key);
        }
    }
    free(h->slots);
    free(h);
}

static sw_hash_slot_t *
sw_hash_lookup(const sw_hash_t *h, const char *key, size_t hash)
{
    size_t i = hash & (h->cap - 1);

    for (;;) {
        sw_hash_slot_t *s = &h->slots[i];

        if (s->key == NULL) {
            return NULL;
        }
        if (s->key != sw_hash_tomb && s->hash == hash
            && strcmp(s->key, key) == 0)
        {
            return s;
        }
        i = (i + 1) & (h->cap - 1);
    }
}

static void
sw_hash_grow(sw_hash_t *h)
{
    sw_hash_slot_t *old = h->slots;
    size_t          oldcap = h->cap, i;

    if (h->count * 2 >= h->cap) {
        h->cap *= 2;
    }
    h->slots = sw_calloc(h->cap, sizeof(*h->slots));
    h->used = h->count;
    for (i = 0; i < oldcap; i++) {
        if (old[i].key != NULL && old[i].key != sw_hash_tomb) {
            size_t j = old[i].hash & (h->cap - 1);

            while (h->slots[j].key != NULL) {
                j = (j + 1) & (h->cap - 1);
            }
            h->slots[j] = old[i];
        }
    }
    free(old);
}

void
sw_hash_set(sw_hash_t *h, const char *key, void *value)
{
    size_t          hash = sw_hash_str(key), i;
    sw_hash_slot_t *s = sw_hash_lookup(h, key, hash);

    if (s != NULL) {
        if (value != NULL) {
            s->value = value;
        } else {
            free(s->key);
            s->key = sw_hash_tomb;
            s->value = NULL;
            h->count--;
        }
        return;
    }
    if (value == NULL) {
        return;
    }
    if ((h->used + 1) * 4 > h->cap * 3) {
        sw_hash_grow(h);
    }
    for (i = hash & (h->cap - 1); h->slots[i].key != NULL
         && h->slots[i].key != sw_hash_tomb; i = (i + 1) & (h->cap - 1))
    {
        /* find a free or deleted slot */
    }
    if (h->slots[i].key == NULL) {
        h->used++;
    }
    h->slots[i].key = sw_strdup(key);
    h->slots[i].value = value;
    h->slots[i].hash = hash;
    h->count++;
}

void *
sw_hash_get(const sw_hash_t *h, const char *key)
{
    sw_hash_slot_t *s = sw_hash_lookup(h, key, sw_hash_str(key));

    return s ? s->value : NULL;
}

size_t
sw_hash_count(const sw_hash_t *h)
{
    return h->count;
}

void
sw_hash_each(const sw_hash_t *h,
             void (*fn)(const char *key, void *value, void *ud), void *ud)
{
    size_t i;

    for (i = 0; i < h->cap; i++) {
        if (h->slots[i].key != NULL && h->slots[i].key != sw_hash_tomb) {
            fn(h->slots[i].key, h->slots[i].value, ud);
        }
    }
}
