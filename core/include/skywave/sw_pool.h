/*
 * Arena allocator.  Every stanza owns one pool; freeing the pool frees the
 * whole element tree.  Small first chunk so idle sessions stay small.
 */
#ifndef SKYWAVE_SW_POOL_H
#define SKYWAVE_SW_POOL_H

#include <skywave/sw_core.h>

typedef struct sw_pool_s sw_pool_t;

/* Returns new; first_chunk is a size hint (0 = default 1 kB). */
sw_pool_t *sw_pool_new(size_t first_chunk);
void sw_pool_free(sw_pool_t *p);
/* Memory from p, aligned for any type, never NULL, freed with p. */
void *sw_pool_alloc(sw_pool_t *p, size_t n);
void *sw_pool_calloc(sw_pool_t *p, size_t n);
char *sw_pool_strdup(sw_pool_t *p, const char *s);       /* NULL -> NULL */
char *sw_pool_strndup(sw_pool_t *p, const char *s, size_t n);
char *sw_pool_printf(sw_pool_t *p, const char *fmt, ...) SW_PRINTF(2, 3);
/* Bytes handed out so far (for limits and statistics). */
size_t sw_pool_used(const sw_pool_t *p);

#endif
