/*
 * The TCP io beneath a connection (sw_io_ops_t, sw_conn.h): a libuv TCP
 * handle.  Writes are tried directly and only the part the kernel
 * refused is copied into a queued request; the read buffer is shared by
 * every connection (the loop is single-threaded and a read is handed up
 * through the layers, which copy what they keep, before read_cb
 * returns).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>
#include <skywave/sw_server.h>

/* 64 kB lets one read take several TLS records. */
#define SW_TCP_READ_BUF  65536

static char  sw_tcp_read_buf[SW_TCP_READ_BUF];

typedef struct sw_tcp_io_s {
    uv_tcp_t   *tcp;
    sw_conn_t  *conn;
    size_t      pending;    /* queued for the kernel */
} sw_tcp_io_t;

/* A queued write: the bytes the kernel did not take at once. */
typedef struct sw_tcp_wreq_s {
    uv_write_t    req;
    sw_tcp_io_t  *io;
    size_t        len;
    char          data[];
} sw_tcp_wreq_t;

static void
sw_tcp_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    buf->base = sw_tcp_read_buf;
    buf->len = sizeof(sw_tcp_read_buf);
}

static void
sw_tcp_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sw_tcp_io_t *io = stream->data;
    char         text[160];

    if (nread > 0) {
        sw_conn_io_input(io->conn, buf->base, (size_t) nread);
    } else if (nread == UV_EOF) {
        sw_conn_io_eof(io->conn);
    } else if (nread < 0) {
        snprintf(text, sizeof(text), "read error: %s",
                 uv_strerror((int) nread));
        sw_conn_io_error(io->conn, (int) nread, text);
    }
    /* nread == 0: nothing this time (EAGAIN). */
}

static int
sw_tcp_read(void *p, bool on)
{
    sw_tcp_io_t *io = p;

    if (!on) {
        uv_read_stop((uv_stream_t *) io->tcp);
        return 0;
    }
    return uv_read_start((uv_stream_t *) io->tcp, sw_tcp_alloc_cb,
                         sw_tcp_read_cb);
}

static void
sw_tcp_write_cb(uv_write_t *req, int status)
{
    sw_tcp_wreq_t *w = (sw_tcp_wreq_t *) req;
    sw_tcp_io_t   *io = w->io;
    char           text[160];

    io->pending -= w->len;
    free(w);
    if (status != 0) {
        if (status != UV_ECANCELED) {
            snprintf(text, sizeof(text), "write error: %s",
                     uv_strerror(status));
            sw_conn_io_error(io->conn, status, text);
        }
        return;
    }
    if (io->pending == 0) {
        sw_conn_io_drained(io->conn);
    }
}

static int
sw_tcp_write(void *p, const char *data, size_t len)
{
    sw_tcp_io_t   *io = p;
    sw_tcp_wreq_t *w;
    uv_buf_t       buf;
    int            n;

    /* Nothing queued: let the kernel take what it can without a copy. */
    if (io->pending == 0) {
        buf = uv_buf_init((char *) data, (unsigned int) len);
        n = uv_try_write((uv_stream_t *) io->tcp, &buf, 1);
        if (n > 0) {
            data += n;
            len -= (size_t) n;
            if (len == 0) {
                return 0;
            }
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            return n;
        }
    }
    w = sw_alloc(sizeof(*w) + len);
    w->io = io;
    w->len = len;
    memcpy(w->data, data, len);
    buf = uv_buf_init(w->data, (unsigned int) len);
    n = uv_write(&w->req, (uv_stream_t *) io->tcp, &buf, 1, sw_tcp_write_cb);
    if (n != 0) {
        free(w);
        return n;
    }
    io->pending += len;
    return 0;
}

static size_t
sw_tcp_pending(void *p)
{
    return ((sw_tcp_io_t *) p)->pending;
}

static void
sw_tcp_shutdown_cb(uv_shutdown_t *req, int status)
{
    sw_tcp_io_t *io = req->data;

    free(req);
    sw_conn_io_shutdown_done(io->conn, status);
}

/* uv_shutdown waits for the write queue, then sends FIN. */
static int
sw_tcp_shutdown(void *p)
{
    sw_tcp_io_t    *io = p;
    uv_shutdown_t  *req = sw_alloc(sizeof(*req));
    int             rc;

    req->data = io;
    rc = uv_shutdown(req, (uv_stream_t *) io->tcp, sw_tcp_shutdown_cb);
    if (rc != 0) {
        free(req);
    }
    return rc;
}

static void
sw_tcp_close_cb(uv_handle_t *handle)
{
    sw_tcp_io_t *io = handle->data;

    sw_conn_io_closed(io->conn);
    free(io->tcp);
    free(io);
}

/* Queued writes are cancelled: their callbacks run before ours. */
static void
sw_tcp_close(void *p)
{
    sw_tcp_io_t *io = p;

    uv_close((uv_handle_t *) io->tcp, sw_tcp_close_cb);
}

static void
sw_tcp_peer(void *p, char *out, size_t size)
{
    sw_tcp_io_t             *io = p;
    struct sockaddr_storage  ss;
    char                     host[INET6_ADDRSTRLEN];
    int                      len = sizeof(ss);

    if (uv_tcp_getpeername(io->tcp, (struct sockaddr *) &ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;

        uv_ip4_name(sin, host, sizeof(host));
        snprintf(out, size, "%s:%u", host, (unsigned) ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;

        uv_ip6_name(sin6, host, sizeof(host));
        snprintf(out, size, "[%s]:%u", host,
                 (unsigned) ntohs(sin6->sin6_port));
    }
}

static int
sw_tcp_fd(void *p)
{
    sw_tcp_io_t *io = p;
    uv_os_fd_t   fd;

    if (uv_fileno((const uv_handle_t *) io->tcp, &fd) != 0) {
        return -1;
    }
    return fd;
}

/* Sent or not, what TCP has not had acknowledged (SIOCOUTQ, tcp(7)). */
static size_t
sw_tcp_unconfirmed(void *p)
{
#ifdef SIOCOUTQ
    int fd = sw_tcp_fd(p), n = 0;

    if (fd < 0 || ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0) {
        return 0;
    }
    return (size_t) n;
#else
    (void) p;
    return 0;       /* handed to the kernel counts as confirmed */
#endif
}

static const sw_io_ops_t sw_tcp_io_ops = {
    .name = "tcp",
    .write = sw_tcp_write,
    .pending = sw_tcp_pending,
    .read = sw_tcp_read,
    .shutdown = sw_tcp_shutdown,
    .close = sw_tcp_close,
    .peer = sw_tcp_peer,
    .fd = sw_tcp_fd,
    .unconfirmed = sw_tcp_unconfirmed,
};

sw_conn_t *
sw_conn_new(uv_tcp_t *tcp, const sw_conn_cb_t *cb, void *ud)
{
    sw_tcp_io_t *io = sw_calloc(1, sizeof(*io));

    io->tcp = tcp;
    tcp->data = io;
    /* no callback reaches the io before sw_conn_new_io returns */
    io->conn = sw_conn_new_io(tcp->loop, &sw_tcp_io_ops, io, cb, ud);
    return io->conn;
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

/* ---------------------------------------------------------- listeners --- */

struct sw_listener_s {
    uv_tcp_t      tcp;
    sw_accept_pt  cb;
    void         *ud;
    char          who[32];
    char          desc[64];
};

static void
sw_tcp_free_handle(uv_handle_t *h)
{
    free(h);
}

void
sw_tcp_refuse(uv_tcp_t *tcp)
{
    uv_close((uv_handle_t *) tcp, sw_tcp_free_handle);
}

static void
sw_listener_on_connection(uv_stream_t *server, int status)
{
    sw_listener_t           *ls = server->data;
    struct sockaddr_storage  ss;
    int                      len = sizeof(ss);
    char                     ip[INET6_ADDRSTRLEN] = "?";
    uv_tcp_t                *tcp;

    if (status < 0) {
        sw_log_warn("%s %s: accept: %s", ls->who, ls->desc,
                    uv_strerror(status));
        return;
    }
    tcp = sw_alloc(sizeof(*tcp));
    uv_tcp_init(server->loop, tcp);
    if (uv_accept(server, (uv_stream_t *) tcp) != 0) {
        sw_tcp_refuse(tcp);
        return;
    }
    if (uv_tcp_getpeername(tcp, (struct sockaddr *) &ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *) &ss, ip, sizeof(ip));
            /* an IPv4 peer on a dual-stack socket */
            if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.')) {
                memmove(ip, ip + 7, strlen(ip + 7) + 1);
            }
        } else {
            uv_ip4_name((struct sockaddr_in *) &ss, ip, sizeof(ip));
        }
    }
    uv_tcp_nodelay(tcp, 1);
    ls->cb(ls, tcp, ip, ls->ud);
}

sw_listener_t *
sw_listener_new(const char *who, const char *ip, int port, int backlog,
                sw_accept_pt cb, void *ud)
{
    sw_listener_t *ls = sw_calloc(1, sizeof(*ls));
    int            rc;

    ls->cb = cb;
    ls->ud = ud;
    snprintf(ls->who, sizeof(ls->who), "%s", who);
    snprintf(ls->desc, sizeof(ls->desc), strchr(ip, ':') ? "[%s]:%d"
             : "%s:%d", ip, port);
    uv_tcp_init(sw_loop(), &ls->tcp);
    ls->tcp.data = ls;
    rc = sw_tcp_listen(&ls->tcp, ip, port, backlog,
                       sw_listener_on_connection);
    if (rc == 0) {
        return ls;
    }
    if (rc == UV_EINVAL) {
        sw_log_error("%s: '%s' is not an IP address", who, ip);
    } else {
        sw_log_error("%s: cannot listen on %s: %s", who, ls->desc,
                     uv_strerror(rc));
    }
    sw_listener_close(ls);
    return NULL;
}

static void
sw_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

void
sw_listener_close(sw_listener_t *ls)
{
    if (ls != NULL) {
        uv_close((uv_handle_t *) &ls->tcp, sw_listener_closed);
    }
}

const char *
sw_listener_desc(const sw_listener_t *ls)
{
    return ls->desc;
}

int
sw_listener_fd(const sw_listener_t *ls)
{
    uv_os_fd_t fd;

    return uv_fileno((const uv_handle_t *) &ls->tcp, &fd) == 0 ? fd : -1;
}
