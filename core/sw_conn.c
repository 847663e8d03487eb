/*
 * Connections: a libuv TCP socket under a stack of layers (sw_conn_int.h).
 *
 * Memory per idle connection is kept small on purpose: the read buffer is
 * shared by all connections (the loop is single-threaded and read_cb
 * consumes it before returning), writes are tried directly and only the
 * part the kernel refused is copied into a queued request, and layers
 * free their input buffers once they are empty.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>

#include "sw_conn_int.h"

/*
 * One read buffer for every connection: a read is handed up through the
 * layers (which copy what they must keep) before read_cb returns, and the
 * core runs one loop in one thread (DESIGN.md), so it is never shared by
 * two reads at once.  64 kB lets one read take several TLS records.
 */
#define SW_CONN_READ_BUF  65536

static char  sw_conn_read_buf[SW_CONN_READ_BUF];

typedef enum sw_conn_state_e {
    SW_CONN_OPEN = 0,
    SW_CONN_FLUSHING,      /* closing: layers emit their last bytes */
    SW_CONN_SHUTDOWN,      /* closing: uv_shutdown waits for the queue */
    SW_CONN_CLOSING,       /* uv_close called; closed callback pending */
} sw_conn_state_e;

struct sw_conn_s {
    uv_tcp_t         *tcp;
    sw_conn_cb_t      cb;
    void             *ud;
    sw_layer_t       *top;
    sw_layer_t       *bottom;
    uint64_t          bytes_in;
    uint64_t          bytes_out;
    size_t            pending;
    size_t            max_pending;  /* 0: no bound */
    char             *reason;
    int               error;
    sw_conn_state_e   state;
    unsigned          paused:1;
    unsigned          yielded:1;   /* a layer asked to go on next turn */
    uv_idle_t        *yield_idle;   /* resumes a yielded read */
    unsigned          in_read;     /* depth of deliveries under way */
    char              peer[64];
};

/* A queued write: the bytes the kernel did not take at once. */
typedef struct sw_conn_wreq_s {
    uv_write_t   req;
    sw_conn_t   *conn;
    size_t       len;
    char         data[];
} sw_conn_wreq_t;

static void sw_conn_close_handle(sw_conn_t *c);

static void
sw_conn_set_peer(sw_conn_t *c)
{
    struct sockaddr_storage  ss;
    char                     host[INET6_ADDRSTRLEN];
    int                      len = sizeof(ss);

    strcpy(c->peer, "?");
    if (uv_tcp_getpeername(c->tcp, (struct sockaddr *) &ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;

        uv_ip4_name(sin, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
                 (unsigned) ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;

        uv_ip6_name(sin6, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
                 (unsigned) ntohs(sin6->sin6_port));
    }
}

static void
sw_conn_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    buf->base = sw_conn_read_buf;
    buf->len = sizeof(sw_conn_read_buf);
}

static void
sw_conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sw_conn_t  *c = stream->data;

    if (nread > 0) {
        c->bytes_in += (uint64_t) nread;
        c->in_read++;
        if (c->bottom != NULL) {
            c->bottom->on_read(c->bottom, buf->base, (size_t) nread);
        } else if (sw_conn_reading(c) && c->cb.data != NULL) {
            c->cb.data(c, buf->base, (size_t) nread, c->ud);
        }
        c->in_read--;
        return;
    }
    if (nread == UV_EOF) {
        sw_conn_peer_closed(c, "connection closed by peer");
    } else if (nread < 0) {
        sw_conn_fail(c, (int) nread, "read error: %s",
                     uv_strerror((int) nread));
    }
    /* nread == 0: nothing this time (EAGAIN). */
}

sw_conn_t *
sw_conn_new(uv_tcp_t *tcp, const sw_conn_cb_t *cb, void *ud)
{
    sw_conn_t  *c;
    int         rc;

    c = sw_calloc(1, sizeof(*c));
    c->tcp = tcp;
    c->cb = *cb;
    c->ud = ud;
    tcp->data = c;
    sw_conn_set_peer(c);

    rc = uv_read_start((uv_stream_t *) tcp, sw_conn_alloc_cb,
                       sw_conn_read_cb);
    if (rc != 0) {
        sw_conn_fail(c, rc, "cannot read from %s: %s", c->peer,
                     uv_strerror(rc));
    }
    return c;
}

/* ------------------------------------------------------------ writes --- */

static void
sw_conn_write_cb(uv_write_t *req, int status)
{
    sw_conn_wreq_t  *w = (sw_conn_wreq_t *) req;
    sw_conn_t       *c = w->conn;

    c->pending -= w->len;
    if (status == 0) {
        c->bytes_out += w->len;
    } else if (status != UV_ECANCELED) {
        sw_conn_fail(c, status, "write error: %s", uv_strerror(status));
    }
    free(w);

    /* Only a queue that was waiting is reported as drained: writes the
     * kernel took at once never made anyone wait. */
    if (status == 0 && c->pending == 0 && c->state == SW_CONN_OPEN
        && c->cb.drained != NULL)
    {
        c->cb.drained(c, c->ud);
    }
}

static int
sw_conn_sock_write(sw_conn_t *c, const char *data, size_t len)
{
    sw_conn_wreq_t  *w;
    uv_buf_t         buf;
    int              n;

    if (!sw_conn_writable(c)) {
        return SW_ERROR;
    }
    if (len == 0) {
        return SW_OK;
    }

    /* Nothing queued: let the kernel take what it can without a copy. */
    if (c->pending == 0) {
        buf = uv_buf_init((char *) data, (unsigned int) len);
        n = uv_try_write((uv_stream_t *) c->tcp, &buf, 1);
        if (n > 0) {
            c->bytes_out += (uint64_t) n;
            data += n;
            len -= (size_t) n;
            if (len == 0) {
                return SW_OK;
            }
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            sw_conn_fail(c, n, "write error: %s", uv_strerror(n));
            return SW_ERROR;
        }
    }

    w = sw_alloc(sizeof(*w) + len);
    w->conn = c;
    w->len = len;
    memcpy(w->data, data, len);
    buf = uv_buf_init(w->data, (unsigned int) len);
    n = uv_write(&w->req, (uv_stream_t *) c->tcp, &buf, 1, sw_conn_write_cb);
    if (n != 0) {
        free(w);
        sw_conn_fail(c, n, "write error: %s", uv_strerror(n));
        return SW_ERROR;
    }
    c->pending += len;
    if (c->max_pending != 0 && c->pending > c->max_pending) {
        /* a reader that does not read holds our memory: let it go */
        sw_conn_fail(c, UV_ENOBUFS, "slow reader: %zu bytes unsent, more "
                     "than the %zu allowed", c->pending, c->max_pending);
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

int
sw_conn_flush(sw_conn_t *c)
{
    if (c->state != SW_CONN_OPEN) {
        return SW_ERROR;
    }
    if (c->top != NULL && c->top->flush != NULL) {
        return c->top->flush(c->top);
    }
    return SW_OK;
}

size_t
sw_conn_pending(const sw_conn_t *c)
{
    return c->pending;
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

static void
sw_conn_close_cb(uv_handle_t *handle)
{
    sw_conn_t   *c = handle->data;
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
    free(c->tcp);
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
    uv_read_stop((uv_stream_t *) c->tcp);
    /* Queued writes are cancelled: their callbacks run before ours. */
    uv_close((uv_handle_t *) c->tcp, sw_conn_close_cb);
}

static void
sw_conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    sw_conn_t  *c = req->data;

    free(req);
    if (status < 0 && status != UV_ECANCELED) {
        sw_conn_set_reason(c, status, uv_strerror(status));
    }
    if (c->state != SW_CONN_CLOSING) {
        sw_conn_close_handle(c);
    }
}

void
sw_conn_close(sw_conn_t *c, bool flush)
{
    sw_layer_t     *l;
    uv_shutdown_t  *req;

    if (c->state != SW_CONN_OPEN) {
        /* A hard close cuts short an orderly one that is still waiting. */
        if (!flush && c->state == SW_CONN_SHUTDOWN) {
            sw_conn_close_handle(c);
        }
        return;
    }

    c->state = SW_CONN_FLUSHING;
    uv_read_stop((uv_stream_t *) c->tcp);

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

    if (!flush) {
        sw_conn_close_handle(c);
        return;
    }

    /* uv_shutdown waits for the write queue, then sends FIN. */
    req = sw_alloc(sizeof(*req));
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *) c->tcp, sw_conn_shutdown_cb) != 0) {
        free(req);
        sw_conn_close_handle(c);
        return;
    }
    c->state = SW_CONN_SHUTDOWN;
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
        rc = uv_read_start((uv_stream_t *) c->tcp, sw_conn_alloc_cb,
                           sw_conn_read_cb);
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
        uv_read_stop((uv_stream_t *) c->tcp);
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
        uv_idle_init(c->tcp->loop, c->yield_idle);
        c->yield_idle->data = c;
    }
    c->yielded = 1;
    uv_read_stop((uv_stream_t *) c->tcp);
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
    return c->bytes_out;
}

int
sw_conn_tcp_stalled(const sw_conn_t *c)
{
#if defined(TCP_INFO) && defined(__linux__)
    struct tcp_info ti;
    socklen_t       len = sizeof(ti);
    uv_os_fd_t      fd;

    if (uv_fileno((const uv_handle_t *) c->tcp, &fd) != 0
        || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    {
        return -1;
    }
    /* tcpi_retransmits: timeouts since the last ACK that moved on */
    return ti.tcpi_unacked > 0 && ti.tcpi_retransmits > 0;
#else
    (void) c;
    return -1;
#endif
}

int
sw_ip_addr(const char *ip, int port, struct sockaddr_storage *sa)
{
    int rc = strchr(ip, ':') != NULL
             ? uv_ip6_addr(ip, port, (struct sockaddr_in6 *) sa)
             : uv_ip4_addr(ip, port, (struct sockaddr_in *) sa);

    return rc == 0 ? SW_OK : SW_ERROR;
}

int
sw_tcp_listen(uv_tcp_t *tcp, const char *ip, int port, int backlog,
              uv_connection_cb cb)
{
    struct sockaddr_storage sa;
    int                     rc;

    if (sw_ip_addr(ip, port, &sa) != SW_OK) {
        return UV_EINVAL;
    }
    rc = uv_tcp_bind(tcp, (struct sockaddr *) &sa,
                     sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *) tcp, backlog, cb);
    }
    return rc;
}
