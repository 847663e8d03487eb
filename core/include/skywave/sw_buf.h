/* Growable byte buffer. */
#ifndef SKYWAVE_SW_BUF_H
#define SKYWAVE_SW_BUF_H

#include <skywave/sw_core.h>

typedef struct sw_buf_s {
    char   *data;   /* always NUL-terminated when len > 0 or after init */
    size_t  len;
    size_t  cap;
} sw_buf_t;

void sw_buf_init(sw_buf_t *b);
void sw_buf_free(sw_buf_t *b);
void sw_buf_reset(sw_buf_t *b);                 /* len = 0, keeps memory */
void sw_buf_append(sw_buf_t *b, const void *data, size_t n);
void sw_buf_append_str(sw_buf_t *b, const char *s);
void sw_buf_printf(sw_buf_t *b, const char *fmt, ...) SW_PRINTF(2, 3);
void sw_buf_consume(sw_buf_t *b, size_t n);     /* drop n bytes from front */
/* Takes the memory out of b (caller frees with free()); b is re-initialised. */
char *sw_buf_steal(sw_buf_t *b, size_t *len);

#endif
