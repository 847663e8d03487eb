/* Growable byte buffer. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_buf.h>

static char sw_buf_empty[1];

void
sw_buf_init(sw_buf_t *b)
{
    b->data = sw_buf_empty;
    b->len = 0;
    b->cap = 0;
}

void
sw_buf_free(sw_buf_t *b)
{
    if (b->cap) {
        free(b->data);
    }
    sw_buf_init(b);
}

void
sw_buf_reset(sw_buf_t *b)
{
    b->len = 0;
    if (b->cap) {
        b->data[0] = '\0';
    }
}

static void
sw_buf_reserve(sw_buf_t *b, size_t extra)
{
    size_t cap;

    if (b->len + extra + 1 <= b->cap) {
        return;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    if (b->cap == 0) {
        b->data = sw_alloc(cap);
        b->data[0] = '\0';
    } else {
        b->data = sw_realloc(b->data, cap);
    }
    b->cap = cap;
}

void
sw_buf_append(sw_buf_t *b, const void *data, size_t n)
{
    if (n == 0) {
        return;
    }
    sw_buf_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
sw_buf_append_str(sw_buf_t *b, const char *s)
{
    sw_buf_append(b, s, strlen(s));
}

void
sw_buf_printf(sw_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        return;
    }
    sw_buf_reserve(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void
sw_buf_consume(sw_buf_t *b, size_t n)
{
    if (n >= b->len) {
        sw_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *
sw_buf_steal(sw_buf_t *b, size_t *len)
{
    char *d;

    if (len != NULL) {
        *len = b->len;
    }
    d = b->cap ? b->data : sw_strdup("");
    sw_buf_init(b);
    return d;
}
