/*
 * Private to the connection layers (sw_conn.c, sw_tls.c, sw_deflate.c).
 *
 * A connection is a socket under a stack of layers.  Each layer is a
 * small object: write() takes bytes from above and hands its output to
 * the layer below (sw_conn_layer_down), on_read() takes bytes from below
 * and hands its output up (sw_conn_layer_up).  The socket is below the
 * bottom layer and the user callbacks are above the top one.
 */
#ifndef SW_CONN_INT_H
#define SW_CONN_INT_H

#include <skywave/sw_conn.h>

typedef struct sw_layer_s sw_layer_t;

typedef enum sw_layer_kind_e {
    SW_LAYER_TLS = 1,
    SW_LAYER_DEFLATE,
    SW_LAYER_ZSTD,
} sw_layer_kind_e;

struct sw_layer_s {
    sw_layer_kind_e  kind;
    sw_conn_t       *conn;
    sw_layer_t      *below;     /* toward the socket; NULL: the socket */
    sw_layer_t      *above;     /* toward the user; NULL: the user */

    /* Bytes from above (consumed or copied before return). */
    int   (*write)(sw_layer_t *l, const char *data, size_t len);
    /*
     * Bytes from below (borrowed for the call).  data NULL: only work
     * through what was kept while reading was paused.  A layer stops
     * handing bytes up as soon as sw_conn_reading() is false and keeps
     * the rest of its input for later.
     */
    int   (*on_read)(sw_layer_t *l, const char *data, size_t len);
    /* Pushes out anything held back (DEFLATE sync flush). */
    int   (*flush)(sw_layer_t *l);
    /* Orderly end of the layer's own stream (TLS close_notify). */
    void  (*shutdown)(sw_layer_t *l);
    void  (*free)(sw_layer_t *l);
};

/* Puts l on top of the stack (takes l). */
void sw_conn_push_layer(sw_conn_t *c, sw_layer_t *l);
/* The topmost layer of that kind, or NULL. */
sw_layer_t *sw_conn_find_layer(const sw_conn_t *c, sw_layer_kind_e kind);

/* Output of layer l going down: to the next layer or the socket. */
int sw_conn_layer_down(sw_layer_t *l, const char *data, size_t len);
/* Output of layer l going up: to the next layer or the data callback. */
int sw_conn_layer_up(sw_layer_t *l, const char *data, size_t len);

/* May bytes go up now (not paused, not closing)? */
bool sw_conn_reading(const sw_conn_t *c);
/* From a layer that has handed up enough for one loop turn: reading stops
 * now (sw_conn_reading turns false, the layer keeps the rest) and goes on
 * at the next turn, so one connection cannot hold the loop. */
void sw_conn_yield(sw_conn_t *c);
/* Is the socket still able to take bytes? */
bool sw_conn_writable(const sw_conn_t *c);
/* Calls the secured callback. */
void sw_conn_secured(sw_conn_t *c);
/*
 * Records error and reason (the first one wins) and closes without
 * flushing.  The closed callback follows from the loop, never from here.
 */
void sw_conn_fail(sw_conn_t *c, int error, const char *fmt, ...)
    SW_PRINTF(3, 4);
/*
 * Records the reason for an orderly close by the peer (error 0) and
 * closes, letting pending output go first.
 */
void sw_conn_peer_closed(sw_conn_t *c, const char *reason);

#endif
