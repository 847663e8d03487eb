/* Allocation that never returns NULL, and owners (undo lists). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_core.h>

struct sw_cleanup_s {
    sw_cleanup_t  *next;
    sw_cleanup_pt  fn;
    void          *data;
};

static void
sw_alloc_fail(size_t n)
{
    fprintf(stderr, "skywave: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
sw_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        sw_alloc_fail(n);
    }
    return p;
}

void *
sw_calloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);

    if (p == NULL) {
        sw_alloc_fail(nmemb * n);
    }
    return p;
}

void *
sw_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        sw_alloc_fail(n);
    }
    return q;
}

char *
sw_strdup(const char *s)
{
    return s ? sw_strndup(s, strlen(s)) : NULL;
}

char *
sw_strndup(const char *s, size_t n)
{
    char *d = sw_alloc(n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void
sw_owner_init(sw_owner_t *o, const char *name)
{
    o->name = name;
    o->cleanups = NULL;
}

sw_cleanup_t *
sw_owner_on_release(sw_owner_t *o, sw_cleanup_pt fn, void *data)
{
    sw_cleanup_t *c = sw_alloc(sizeof(*c));

    c->fn = fn;
    c->data = data;
    c->next = o->cleanups;
    o->cleanups = c;
    return c;
}

void
sw_owner_forget(sw_owner_t *o, sw_cleanup_t *c)
{
    sw_cleanup_t **pp;

    for (pp = &o->cleanups; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            free(c);
            return;
        }
    }
}

void
sw_owner_release(sw_owner_t *o)
{
    sw_cleanup_t *c;

    /* A cleanup may register or forget others: take one at a time. */
    while ((c = o->cleanups) != NULL) {
        o->cleanups = c->next;
        c->fn(c->data);
        free(c);
    }
}
