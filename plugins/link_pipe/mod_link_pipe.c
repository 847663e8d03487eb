/*
 * mod_link_pipe: a peer link over a command's standard input and output.
 *
 * For each connection the link layer asks for, the transport runs the
 * Peer's link_pipe_command (with /bin/sh -c 'exec COMMAND') and carries
 * the link's bytes through the command: what the link writes goes to its
 * standard input, what it prints is the peer's side.  The command moves
 * the bytes: `socat - /dev/ttyS0,raw,b9600` for a serial radio modem,
 * `ssh relay socat - TCP:peer:5270`, `socat - TCP:peer:7000`, or the
 * listening half on the other server (`socat TCP-LISTEN:7000 -`).  The
 * link layer does the rest as over TCP: DEFLATE, TLS if configured, the
 * numbered queue, acks, reconnects (a command that exits ends the
 * connection; the link runs it again after its back-off).
 *
 * Built as a third party builds a transport: against the installed SDK
 * with `pkg-config skywave` alone (plugins/link_pipe/Makefile); no
 * config.h, no in-tree header.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

/* How long a command has after SIGTERM before SIGKILL. */
#define LINK_PIPE_KILL_MS 2000
/*
 * util-linux's setpriv sets the parent-death signal before it execs the
 * shell, so a command does not outlive a skywaved killed with -9 (and
 * hold the modem a restarted one needs).  Without it, a command still
 * ends when it reads end-of-file on its standard input (socat does).
 */
#define LINK_PIPE_SETPRIV "/usr/bin/setpriv"

typedef struct {
    const char *command;
} link_pipe_conf_t;

typedef struct link_pipe_s    link_pipe_t;
typedef struct link_pipe_io_s link_pipe_io_t;

struct link_pipe_s {
    sw_module_ctx_t *mc;
    link_pipe_io_t  *ios;               /* every command running */
    bool             unloaded;          /* freed with the last io */
};

struct link_pipe_io_s {
    link_pipe_io_t *next;
    link_pipe_t    *lp;
    sw_link_t      *link;
    sw_conn_t      *conn;
    uv_process_t    proc;
    uv_pipe_t       in;                 /* the command's stdin: we write */
    uv_pipe_t       out;                /* its stdout: we read */
    uv_timer_t      timer;              /* attach; then SIGKILL */
    size_t          pending;
    int             handles;            /* open: freed at 0 */
    bool            exited;
    bool            closing;
    bool            attach;
};

typedef struct {
    uv_write_t      req;
    link_pipe_io_t *io;
    size_t          len;
    char            data[];
} link_pipe_wreq_t;

static char link_pipe_buf[65536];

static void link_pipe_closed_one(uv_handle_t *h);

/* ------------------------------------------------------------ the io --- */

static void
link_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = link_pipe_buf;
    buf->len = sizeof(link_pipe_buf);
}

static void
link_pipe_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    link_pipe_io_t *io = s->data;
    char            text[128];

    if (n > 0) {
        sw_conn_io_input(io->conn, buf->base, (size_t) n);
    } else if (n == UV_EOF) {
        sw_conn_io_eof(io->conn);
    } else if (n < 0) {
        snprintf(text, sizeof(text), "reading the command: %s",
                 uv_strerror((int) n));
        sw_conn_io_error(io->conn, (int) n, text);
    }
}

static int
link_pipe_read(void *p, bool on)
{
    link_pipe_io_t *io = p;

    if (!on) {
        uv_read_stop((uv_stream_t *) &io->out);
        return 0;
    }
    return uv_read_start((uv_stream_t *) &io->out, link_pipe_alloc,
                         link_pipe_on_read);
}

static void
link_pipe_on_write(uv_write_t *req, int status)
{
    link_pipe_wreq_t *w = (link_pipe_wreq_t *) req;
    link_pipe_io_t   *io = w->io;
    char              text[128];

    io->pending -= w->len;
    free(w);
    if (status != 0) {
        if (status != UV_ECANCELED) {
            snprintf(text, sizeof(text), "writing to the command: %s",
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
link_pipe_write(void *p, const char *data, size_t len)
{
    link_pipe_io_t   *io = p;
    link_pipe_wreq_t *w;
    uv_buf_t          buf;
    int               n;

    if (io->pending == 0) {
        buf = uv_buf_init((char *) data, (unsigned) len);
        n = uv_try_write((uv_stream_t *) &io->in, &buf, 1);
        if (n > 0) {
            data += n;
            len -= (size_t) n;
            if (len == 0) {
                return 0;
            }
        } else if (n != UV_EAGAIN) {
            return n;
        }
    }
    w = sw_alloc(sizeof(*w) + len);
    w->io = io;
    w->len = len;
    memcpy(w->data, data, len);
    buf = uv_buf_init(w->data, (unsigned) len);
    n = uv_write(&w->req, (uv_stream_t *) &io->in, &buf, 1,
                 link_pipe_on_write);
    if (n != 0) {
        free(w);
        return n;
    }
    io->pending += len;
    return 0;
}

static size_t
link_pipe_pending(void *p)
{
    return ((link_pipe_io_t *) p)->pending;
}

static void
link_pipe_on_shutdown(uv_shutdown_t *req, int status)
{
    link_pipe_io_t *io = req->data;

    free(req);
    sw_conn_io_shutdown_done(io->conn, status);
}

/* Orderly end: the command reads end-of-file once the rest is written. */
static int
link_pipe_shutdown(void *p)
{
    link_pipe_io_t *io = p;
    uv_shutdown_t  *req = sw_alloc(sizeof(*req));
    int             rc;

    req->data = io;
    rc = uv_shutdown(req, (uv_stream_t *) &io->in, link_pipe_on_shutdown);
    if (rc != 0) {
        free(req);
    }
    return rc;
}

static void
link_pipe_on_kill(uv_timer_t *t)
{
    link_pipe_io_t *io = t->data;

    if (!io->exited) {
        sw_log_warn("link %s: the command (pid %d) outlived SIGTERM: "
                    "SIGKILL", sw_link_name(io->link), io->proc.pid);
        uv_process_kill(&io->proc, SIGKILL);
    }
}

/*
 * Close: the pipes now; the process handle once the command has exited
 * (SIGTERM, then SIGKILL), so that it is reaped.  The connection hears
 * of it when every handle has closed.
 */
static void
link_pipe_close(void *p)
{
    link_pipe_io_t *io = p;

    io->closing = true;
    uv_close((uv_handle_t *) &io->in, link_pipe_closed_one);
    uv_close((uv_handle_t *) &io->out, link_pipe_closed_one);
    if (io->exited) {
        uv_close((uv_handle_t *) &io->proc, link_pipe_closed_one);
        uv_close((uv_handle_t *) &io->timer, link_pipe_closed_one);
        return;
    }
    uv_process_kill(&io->proc, SIGTERM);
    uv_timer_start(&io->timer, link_pipe_on_kill, LINK_PIPE_KILL_MS, 0);
}

static void
link_pipe_peer(void *p, char *out, size_t size)
{
    link_pipe_io_t *io = p;

    snprintf(out, size, "pipe:pid %d", io->proc.pid);
}

static const sw_io_ops_t link_pipe_io_ops = {
    .name = "pipe",
    .write = link_pipe_write,
    .pending = link_pipe_pending,
    .read = link_pipe_read,
    .shutdown = link_pipe_shutdown,
    .close = link_pipe_close,
    .peer = link_pipe_peer,
};

/* ------------------------------------------------------ life cycle --- */

static void
link_pipe_forget(link_pipe_io_t *io)
{
    link_pipe_io_t **pp;

    for (pp = &io->lp->ios; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == io) {
            *pp = io->next;
            return;
        }
    }
}

static void
link_pipe_closed_one(uv_handle_t *h)
{
    link_pipe_io_t *io = h->data;

    link_pipe_t    *lp = io->lp;

    if (--io->handles > 0) {
        return;
    }
    link_pipe_forget(io);
    if (io->conn != NULL) {
        sw_conn_io_closed(io->conn);
    }
    free(io);
    if (lp->unloaded && lp->ios == NULL) {
        free(lp);
    }
}

static void
link_pipe_on_exit(uv_process_t *proc, int64_t status, int signo)
{
    link_pipe_io_t *io = proc->data;
    char            text[128];

    io->exited = true;
    if (signo == SIGTERM && io->closing) {
        snprintf(text, sizeof(text), "the command (pid %d) ended",
                 proc->pid);
    } else if (signo != 0) {
        snprintf(text, sizeof(text), "the command (pid %d) was killed by "
                 "signal %d", proc->pid, signo);
    } else {
        snprintf(text, sizeof(text), "the command (pid %d) exited with "
                 "status %lld", proc->pid, (long long) status);
    }
    sw_log_info("link %s: %s", sw_link_name(io->link), text);
    if (io->closing) {
        uv_timer_stop(&io->timer);
        uv_close((uv_handle_t *) &io->proc, link_pipe_closed_one);
        uv_close((uv_handle_t *) &io->timer, link_pipe_closed_one);
        return;
    }
    /* What it printed before it exited was read or is lost with it;
     * the link sends again what the peer did not acknowledge. */
    sw_conn_io_error(io->conn, UV_EPIPE, text);
}

static void
link_pipe_on_attach(uv_timer_t *t)
{
    link_pipe_io_t *io = t->data;

    if (io->attach && !io->closing) {
        io->attach = false;
        sw_link_attach(io->link, io->conn, true);
    }
}

static void
link_pipe_noop_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
}

static const sw_conn_cb_t link_pipe_noop_cb = {
    .closed = link_pipe_noop_closed,
};

static int
link_pipe_connect(void *data, sw_link_t *link)
{
    link_pipe_t             *lp = data;
    link_pipe_conf_t        *conf = sw_module_conf(lp->mc,
                                                   sw_link_name(link));
    link_pipe_io_t          *io;
    uv_process_options_t     opt;
    uv_stdio_container_t     stdio[3];
    char                    *cmd;
    char                    *args[8];
    int                      rc, n = 0;

    if (conf->command == NULL || conf->command[0] == '\0') {
        sw_log_error("link %s: link_pipe_command is not set",
                     sw_link_name(link));
        return SW_ERROR;
    }
    io = sw_calloc(1, sizeof(*io));
    io->lp = lp;
    io->link = link;
    uv_pipe_init(sw_loop(), &io->in, 0);
    uv_pipe_init(sw_loop(), &io->out, 0);
    uv_timer_init(sw_loop(), &io->timer);
    io->in.data = io->out.data = io->timer.data = io->proc.data = io;

    cmd = sw_alloc(strlen(conf->command) + 6);
    sprintf(cmd, "exec %s", conf->command);     /* SIGTERM reaches it */
    if (access(LINK_PIPE_SETPRIV, X_OK) == 0) {
        args[n++] = LINK_PIPE_SETPRIV;
        args[n++] = "--pdeathsig";
        args[n++] = "TERM";
        args[n++] = "--";
    }
    args[n++] = "/bin/sh";
    args[n++] = "-c";
    args[n++] = cmd;
    args[n] = NULL;
    memset(&opt, 0, sizeof(opt));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *) &io->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *) &io->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    opt.file = args[0];
    opt.args = args;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.exit_cb = link_pipe_on_exit;
    rc = uv_spawn(sw_loop(), &io->proc, &opt);
    free(cmd);
    io->next = lp->ios;
    lp->ios = io;
    if (rc != 0) {
        sw_log_error("link %s: cannot run link_pipe_command: %s",
                     sw_link_name(link), uv_strerror(rc));
        io->handles = 4;
        io->closing = true;
        uv_close((uv_handle_t *) &io->in, link_pipe_closed_one);
        uv_close((uv_handle_t *) &io->out, link_pipe_closed_one);
        uv_close((uv_handle_t *) &io->timer, link_pipe_closed_one);
        uv_close((uv_handle_t *) &io->proc, link_pipe_closed_one);
        return SW_ERROR;
    }
    io->handles = 4;
    sw_log_info("link %s: running '%s' (pid %d)", sw_link_name(link),
                conf->command, io->proc.pid);
    io->conn = sw_conn_new_io(sw_loop(), &link_pipe_io_ops, io,
                              &link_pipe_noop_cb, NULL);
    /* the link hears of it from the loop, as of a TCP connect */
    io->attach = true;
    uv_timer_start(&io->timer, link_pipe_on_attach, 0, 0);
    return SW_OK;
}

/* The server stops: commands still starting are ended (the link layer
 * has closed the connections it took). */
static void
link_pipe_stop(void *data)
{
    link_pipe_t    *lp = data;
    link_pipe_io_t *io;

    for (io = lp->ios; io != NULL; io = io->next) {
        if (io->attach && !io->closing) {
            io->attach = false;
            sw_conn_close(io->conn, false);
        }
    }
}

/*
 * A pipe cannot tell a dead path from a slow one, and a second command
 * beside a live one (a probe) would fight it for the same modem or
 * session: never probe; the keepalive ends a dead connection.
 */
static int
link_pipe_stalled(void *data, sw_link_t *link, sw_conn_t *conn)
{
    return 0;
}

static int
link_pipe_load(sw_module_ctx_t *mc)
{
    link_pipe_t    *lp = sw_calloc(1, sizeof(*lp));
    sw_transport_t  t = {
        .name = "pipe",
        .data = lp,
        .stop = link_pipe_stop,
        .connect = link_pipe_connect,
        .stalled = link_pipe_stalled,
    };

    lp->mc = mc;
    mc->data = lp;
    return sw_transport_register(&mc->owner, &t);
}

/* Commands may still be ending (their handles close after this): the
 * state goes with the last of them. */
static void
link_pipe_unload(sw_module_ctx_t *mc)
{
    link_pipe_t *lp = mc->data;

    mc->data = NULL;
    if (lp == NULL) {
        return;
    }
    lp->unloaded = true;
    if (lp->ios == NULL) {
        free(lp);
    }
}

static const sw_option_t link_pipe_options[] = {
    { "link_pipe_command", SW_OPT_STRING,
      offsetof(link_pipe_conf_t, command), SW_SCOPE_PEER, 0, 0, 0, NULL,
      NULL, "command that carries the link on its stdin and stdout "
      "(run with /bin/sh -c 'exec COMMAND')" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "link_pipe",
    .help = "peer links over a command's standard input and output",
    .options = link_pipe_options,
    .conf_size = sizeof(link_pipe_conf_t),
    .load = link_pipe_load,
    .stop = link_pipe_unload,
};
