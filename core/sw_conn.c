/*
 * Connections: a byte stream (an io: sw_conn_tcp.c for TCP, or a
 * transport's own) under a stack of layers (sw_conn_int.h).
 *
 * Memory per idle connection is kept small on purpose: layers free their
 * input buffers once they are empty, and the TCP io shares one read
 * buffer between all connections and copies only what the kernel
 * refused to take at once.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>

#include "sw_conn_int.h"

typedef enum sw_conn_state_e {
    SW_CONN_OPEN = 0,
    SW_CONN_FLUSHING,      /* closing: layers emit their last bytes */
    SW_CONN_SHUTDOWN,      /* closing: the io writes out, then ends */
    SW_CONN_CLOSING,       /* io closing; closed callback pending */
} sw_conn_state_e;

struct sw_conn_s {
    uv_loop_t         *loop;
    const sw_io_ops_t *ops;
    void              *io;
    sw_conn_cb_t       cb;
    void              *ud;
    sw_layer_t        *top;
    sw_layer_t        *bottom;
    uint64_t           bytes_in;
    uint64_t           bytes_given;  /* handed to the io */
    size_t             max_pending;  /* 0: no bound */
    char              *reason;
    int                error;
    sw_conn_state_e    state;
    unsigned           paused:1;
    unsigned           yielded:1;    /* a layer asked to go on next turn */
    uv_idle_t         *yield_idle;   /* resumes a yielded read */
    unsigned           in_read;      /* depth of deliveries under way */
    char               peer[64];
};

static void sw_conn_close_handle(sw_conn_t *c);

static void
sw_conn_set_peer(sw_conn_t *c)
{
    strcpy(c->peer, "?");
    if (c->ops->peer != NULL) {
        c->ops->peer(c->io, c->peer, sizeof(c->peer));
    }
}

/* ------------------------------------------------- from the io below --- */

void
sw_conn_io_input(sw_conn_t *c, const char *data, size_t len)
{
    if (len == 0 || c->state == SW_CONN_CLOSING) {
        return;
    }
    c->bytes_in += (uint64_t) len;
    c->in_read++;
    if (c->bottom != NULL) {
        c->bottom->on_read(c->bottom, data, len);
    } else if (sw_conn_reading(c) && c->cb.data != NULL) {
        c->cb.data(c, data, len, c->ud);
    }
    c->in_read--;
}

void
sw_conn_io_eof(sw_conn_t *c)
{
    sw_conn_peer_closed(c, "connection closed by peer");
}

void
sw_conn_io_error(sw_conn_t *c, int error, const char *reason)
{
    sw_conn_fail(c, error, "%s", reason);
}

void
sw_conn_io_drained(sw_conn_t *c)
{
    /* Only a queue that was waiting is reported as drained: writes the
     * io took at once never made anyone wait. */
    if (c->state == SW_CONN_OPEN && c->cb.drained != NULL) {
        c->cb.drained(c, c->ud);
    }
}

sw_conn_t *
sw_conn_new_io(uv_loop_t *loop, const sw_io_ops_t *ops, void *io,
               const sw_conn_cb_t *cb, void *ud)
{
    sw_conn_t  *c;
    int         rc;

    c = sw_calloc(1, sizeof(*c));
    c->loop = loop;
    c->ops = ops;
    c->io = io;
    c->cb = *cb;
    c->ud = ud;
    sw_conn_set_peer(c);

    rc = ops->read(io, true);
    if (rc != 0) {
        sw_conn_fail(c, rc, "cannot read from %s: %s", c->peer,
                     uv_strerror(rc));
    }
    return c;
}

/* ------------------------------------------------------------ writes --- */

static int
sw_conn_sock_write(sw_conn_t *c, const char *data, size_t len)
{
    size_t  pending;
    int     rc;

    if (!sw_conn_writable(c)) {
        return SW_ERROR;
    }
    if (len == 0) {
        return SW_OK;
    }
    rc = c->ops->write(c->io, data, len);
    if (rc != 0) {
        sw_conn_fail(c, rc, "write error: %s", uv_strerror(rc));
        return SW_ERROR;
    }
    c->bytes_given += len;
    pending = c->ops->pending(c->io);
    if (c->max_pending != 0 && pending > c->max_pending) {
        /* a reader that does not read holds our memory: let it go */
        sw_conn_fail(c, UV_ENOBUFS, "slow reader: %zu bytes unsent, more "
                     "than the %zu allowed", pending, c->max_pending);
        return SW_ERROR;
    }
    return SW_OK;
}

void
sw_conn_set_max_pending(sw_conn_t *c, size_t bytes)
{
    c->max_pending = bytes;
}

int
sw_conn_write(sw_conn_t *c, const void *data, size_t len)
{
    if (c->state != SW_CONN_OPEN) {
        return SW_ERROR;
    }
    if (c->top != NULL) {
        return c->top->write(c->top, data, len);
    }
    return sw_conn_sock_write(c, data, len);
}

/* The io's own flush point (a block transport cuts a block here). */
static int
sw_conn_io_flush(sw_conn_t *c)
{
    int rc;

    if (c->ops->flush == NULL || !sw_conn_writable(c)) {
        return SW_OK;
    }
    rc = c->ops->flush(c->io);
    if (rc != 0) {
        sw_conn_fail(c, rc, "write error: %s", uv_strerror(rc));
        return SW_ERROR;
    }
    return SW_OK;
}

int
sw_conn_flush(sw_conn_t *c)
{
    if (c->state != SW_CONN_OPEN) {
        return SW_ERROR;
    }
    if (c->top != NULL && c->top->flush != NULL
        && c->top->flush(c->top) != SW_OK)
    {
        return SW_ERROR;
    }
    return sw_conn_io_flush(c);
}

size_t
sw_conn_pending(const sw_conn_t *c)
{
    return c->ops->pending(c->io);
}

/* ------------------------------------------------------------ layers --- */

void
sw_conn_push_layer(sw_conn_t *c, sw_layer_t *l)
{
    l->conn = c;
    l->above = NULL;
    l->below = c->top;
    if (c->top != NULL) {
        c->top->above = l;
    } else {
        c->bottom = l;
    }
    c->top = l;
}

sw_layer_t *
sw_conn_find_layer(const sw_conn_t *c, sw_layer_kind_e kind)
{
    sw_layer_t  *l;

    for (l = c->top; l != NULL; l = l->below) {
        if (l->kind == kind) {
            return l;
        }
    }
    return NULL;
}

int
sw_conn_layer_down(sw_layer_t *l, const char *data, size_t len)
{
    if (l->below != NULL) {
        return l->below->write(l->below, data, len);
    }
    return sw_conn_sock_write(l->conn, data, len);
}

int
sw_conn_layer_up(sw_layer_t *l, const char *data, size_t len)
{
    sw_conn_t  *c = l->conn;

    if (l->above != NULL) {
        return l->above->on_read(l->above, data, len);
    }
    if (sw_conn_reading(c) && c->cb.data != NULL && len > 0) {
        c->cb.data(c, data, len, c->ud);
    }
    return SW_OK;
}

bool
sw_conn_reading(const sw_conn_t *c)
{
    return c->state == SW_CONN_OPEN && !c->paused && !c->yielded;
}

bool
sw_conn_writable(const sw_conn_t *c)
{
    return c->state == SW_CONN_OPEN || c->state == SW_CONN_FLUSHING;
}

void
sw_conn_secured(sw_conn_t *c)
{
    if (c->state == SW_CONN_OPEN && c->cb.secured != NULL) {
        c->cb.secured(c, c->ud);
    }
}

/* ----------------------------------------------------------- closing --- */

static void
sw_conn_set_reason(sw_conn_t *c, int error, const char *reason)
{
    if (c->reason == NULL) {
        c->error = error;
        c->reason = sw_strdup(reason);
    }
}

void
sw_conn_fail(sw_conn_t *c, int error, const char *fmt, ...)
{
    va_list  ap;
    char     text[256];

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    if (c->reason == NULL) {
        sw_log_debug("conn %s: %s", c->peer, text);
    }
    sw_conn_set_reason(c, error, text);
    if (c->state != SW_CONN_CLOSING) {
        sw_conn_close_handle(c);
    }
}

void
sw_conn_peer_closed(sw_conn_t *c, const char *reason)
{
    sw_conn_set_reason(c, 0, reason);
    sw_conn_close(c, true);
}

void
sw_conn_io_closed(sw_conn_t *c)
{
    sw_layer_t  *l, *next;

    if (c->cb.closed != NULL) {
        c->cb.closed(c, c->error, c->reason ? c->reason : "closed locally",
                     c->ud);
    }
    for (l = c->bottom; l != NULL; l = next) {
        next = l->above;
        l->free(l);
    }
    free(c->reason);
    free(c);
}

static void
sw_conn_free_handle(uv_handle_t *h)
{
    free(h);
}

static void
sw_conn_close_handle(sw_conn_t *c)
{
    if (c->yield_idle != NULL) {
        uv_close((uv_handle_t *) c->yield_idle, sw_conn_free_handle);
        c->yield_idle = NULL;
    }
    c->state = SW_CONN_CLOSING;
    c->ops->read(c->io, false);
    /* Queued writes are dropped; sw_conn_io_closed() follows from the
     * loop. */
    c->ops->close(c->io);
}

void
sw_conn_io_shutdown_done(sw_conn_t *c, int error)
{
    if (error < 0 && error != UV_ECANCELED) {
        sw_conn_set_reason(c, error, uv_strerror(error));
    }
    if (c->state != SW_CONN_CLOSING) {
        sw_conn_close_handle(c);
    }
}

void
sw_conn_close_reset(sw_conn_t *c)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    int           fd = sw_conn_fd(c);

    if (fd >= 0 && c->state == SW_CONN_OPEN) {
        /* not a socket (a pipe): an ordinary close */
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    sw_conn_close(c, false);
}

void
sw_conn_close(sw_conn_t *c, bool flush)
{
    sw_layer_t     *l;

    if (c->state != SW_CONN_OPEN) {
        /* A hard close cuts short an orderly one that is still waiting. */
        if (!flush && c->state == SW_CONN_SHUTDOWN) {
            sw_conn_close_handle(c);
        }
        return;
    }

    c->state = SW_CONN_FLUSHING;
    c->ops->read(c->io, false);

    if (flush && c->top != NULL && c->top->flush != NULL) {
        c->top->flush(c->top);
    }
    /* TLS close_notify (RFC 8446 §6.1); it goes after the flushed data. */
    for (l = c->top; l != NULL && c->state == SW_CONN_FLUSHING; l = l->below) {
        if (l->shutdown != NULL) {
            l->shutdown(l);
        }
    }
    if (c->state != SW_CONN_FLUSHING) {
        return;     /* a layer failed and closed the handle */
    }
    if (flush && sw_conn_io_flush(c) != SW_OK) {
        return;
    }
    if (!flush || c->ops->shutdown == NULL) {
        sw_conn_close_handle(c);
        return;
    }

    /* The io writes out its queue, then ends its output (TCP: FIN) and
     * calls sw_conn_io_shutdown_done(). */
    c->state = SW_CONN_SHUTDOWN;
    if (c->ops->shutdown(c->io) != 0) {
        sw_conn_close_handle(c);
    }
}

/* ------------------------------------------------------------- misc --- */

/*
 * Reading resumes: layers kept what arrived meanwhile and hand it up
 * first, in order from the socket up.  Not when resumed from inside a
 * delivery on this connection: the layers under way see the flag and go
 * on themselves, and re-entering them would reorder their input.
 */
static void
sw_conn_go_on(sw_conn_t *c)
{
    sw_layer_t  *l;
    int          rc;

    if (!sw_conn_reading(c)) {
        return;
    }
    if (c->in_read == 0) {
        c->in_read++;
        for (l = c->bottom; l != NULL && sw_conn_reading(c); l = l->above) {
            l->on_read(l, NULL, 0);
        }
        c->in_read--;
    }
    if (sw_conn_reading(c)) {
        rc = c->ops->read(c->io, true);
        if (rc != 0) {
            sw_conn_fail(c, rc, "cannot read: %s", uv_strerror(rc));
        }
    }
}

void
sw_conn_pause_read(sw_conn_t *c, bool pause)
{
    if (c->state != SW_CONN_OPEN || (bool) c->paused == pause) {
        return;
    }
    if (pause) {
        c->paused = 1;
        c->ops->read(c->io, false);
        return;
    }

    c->paused = 0;
    sw_conn_go_on(c);
}

/*
 * An idle handle, not a 0 ms timer: libuv 1.44 (Debian 12) runs a timer
 * started from its own callback again in the same pass, so a connection
 * that yields from a timer goes on without the loop ever polling (a
 * client's ping waited 0.2 s behind an inflate bomb).  Idle handles run
 * once per loop iteration, and make that iteration's poll not block.
 */
static void
sw_conn_on_yield(uv_idle_t *h)
{
    sw_conn_t *c = h->data;

    uv_idle_stop(h);
    c->yielded = 0;
    sw_conn_go_on(c);
}

void
sw_conn_yield(sw_conn_t *c)
{
    if (c->state != SW_CONN_OPEN || c->yielded) {
        return;
    }
    if (c->yield_idle == NULL) {
        c->yield_idle = sw_alloc(sizeof(*c->yield_idle));
        uv_idle_init(c->loop, c->yield_idle);
        c->yield_idle->data = c;
    }
    c->yielded = 1;
    c->ops->read(c->io, false);
    uv_idle_start(c->yield_idle, sw_conn_on_yield);
}

void
sw_conn_set_data(sw_conn_t *c, void *ud)
{
    c->ud = ud;
}

void
sw_conn_set_callbacks(sw_conn_t *c, const sw_conn_cb_t *cb, void *ud)
{
    c->cb = *cb;
    c->ud = ud;
}

const char *
sw_conn_peer(const sw_conn_t *c)
{
    if (c->peer[0] == '?') {
        /* not connected yet when made (TCP Fast Open defers the SYN to
         * the first write): ask again */
        sw_conn_set_peer((sw_conn_t *) c);
    }
    return c->peer;
}

uint64_t
sw_conn_bytes_in(const sw_conn_t *c)
{
    return c->bytes_in;
}

uint64_t
sw_conn_bytes_out(const sw_conn_t *c)
{
    return c->bytes_given - c->ops->pending(c->io);
}

uint64_t
sw_conn_bytes_confirmed(const sw_conn_t *c)
{
    uint64_t out = sw_conn_bytes_out(c);
    size_t   unconfirmed;

    if (c->ops->unconfirmed == NULL) {
        return out;
    }
    unconfirmed = c->ops->unconfirmed(c->io);
    return unconfirmed < out ? out - unconfirmed : 0;
}

uint64_t
sw_conn_bytes_given(const sw_conn_t *c)
{
    return c->bytes_given;
}

int
sw_conn_fd(const sw_conn_t *c)
{
    return c->ops->fd != NULL ? c->ops->fd(c->io) : -1;
}

void *
sw_conn_io(const sw_conn_t *c)
{
    return c->io;
}

const sw_io_ops_t *
sw_conn_io_ops(const sw_conn_t *c)
{
    return c->ops;
}
