/* Arena allocator: chunks that grow geometrically, freed all at once. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_pool.h>

#define SW_POOL_ALIGN     (_Alignof(max_align_t))
#define SW_POOL_DEFAULT   1024
#define SW_POOL_MAX_CHUNK (64 * 1024)

typedef struct sw_pool_chunk_s sw_pool_chunk_t;

struct sw_pool_chunk_s {
    sw_pool_chunk_t *next;
    size_t           size;  /* usable bytes after the header */
    size_t           used;
    max_align_t      data[];
};

struct sw_pool_s {
    sw_pool_chunk_t *chunks;    /* current chunk first */
    size_t           next_size;
    size_t           used;      /* total handed out */
};

static sw_pool_chunk_t *
sw_pool_chunk_new(size_t size)
{
    sw_pool_chunk_t *c = sw_alloc(sizeof(*c) + size);

    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

sw_pool_t *
sw_pool_new(size_t first_chunk)
{
    sw_pool_t *p = sw_alloc(sizeof(*p));

    p->next_size = first_chunk ? first_chunk : SW_POOL_DEFAULT;
    p->chunks = NULL;
    p->used = 0;
    return p;
}

void
sw_pool_free(sw_pool_t *p)
{
    sw_pool_chunk_t *c, *next;

    if (p == NULL) {
        return;
    }
    for (c = p->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(p);
}

void *
sw_pool_alloc(sw_pool_t *p, size_t n)
{
    sw_pool_chunk_t *c = p->chunks;
    size_t           need = (n + SW_POOL_ALIGN - 1) & ~(SW_POOL_ALIGN - 1);
    void            *r;

    if (need == 0) {
        need = SW_POOL_ALIGN;
    }
    if (c == NULL || c->size - c->used < need) {
        size_t size = p->next_size;

        if (size < need) {
            size = need;
        }
        c = sw_pool_chunk_new(size);
        /* Keep the fuller chunk behind: big one-off blocks do not waste
         * the space left in the current chunk. */
        if (p->chunks != NULL && size == need) {
            c->next = p->chunks->next;
            p->chunks->next = c;
            c->used = need;
            p->used += n;
            return (char *) c->data;
        }
        c->next = p->chunks;
        p->chunks = c;
        if (p->next_size < SW_POOL_MAX_CHUNK) {
            p->next_size *= 2;
        }
    }
    r = (char *) c->data + c->used;
    c->used += need;
    p->used += n;
    return r;
}

void *
sw_pool_calloc(sw_pool_t *p, size_t n)
{
    void *r = sw_pool_alloc(p, n);

    memset(r, 0, n);
    return r;
}

char *
sw_pool_strndup(sw_pool_t *p, const char *s, size_t n)
{
    char *d = sw_pool_alloc(p, n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
sw_pool_strdup(sw_pool_t *p, const char *s)
{
    return s ? sw_pool_strndup(p, s, strlen(s)) : NULL;
}

char *
sw_pool_printf(sw_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    int     n;
    char   *d;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return sw_pool_strdup(p, "");
    }
    d = sw_pool_alloc(p, (size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return d;
}

size_t
sw_pool_used(const sw_pool_t *p)
{
    return p->used;
}
