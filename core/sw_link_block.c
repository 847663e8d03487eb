/*
 * Links over block transports (sw_block_transport_t, sw_link.h).
 *
 * The link layer speaks a byte stream (TLS, DEFLATE, the link protocol);
 * a block transport carries bounded blocks, each confirmed, rejected or
 * expired.  This adapter is an io (sw_io_ops_t) beneath an ordinary
 * connection: what the connection writes in one loop turn is cut into
 * blocks of at most the transport's MTU, each with a small header
 *
 *   version (1) | connection id (2, big-endian) | index (varint)
 *
 * (the version byte's top bit: the sender opened the connection), and
 * the far end hands the payloads of one connection up in index order.  A connection's blocks must all arrive: DEFLATE cannot be
 * decoded past a missing block.  So a block reported rejected or
 * expired, or one missing at the far end (an index skipped), ends that
 * connection; the link layer opens the next (a new id, block 0 first),
 * whose DEFLATE starts afresh from the preset dictionary, and sends
 * again every stanza the peer has not acknowledged.  The peer drops what
 * it had already (the numbers, as after any reconnect).
 *
 * Both directions of a connection carry its id, and the opener bit tells
 * whose it is: only a block 0 the peer marks as its own, with an id not
 * open here, is a new connection from the peer (sw_link_attach decides,
 * as for TCP, which one the link keeps).  A connection ends without a
 * word to the far end; the far end learns it from the next connection
 * (sw_link_attach replaces a block connection that has carried the
 * peer's blocks), from the blocks it stops getting, or from its own
 * blocks' outcomes.  Without the bit, the peer's answers on a connection
 * we had ended would look like a new one from it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_conn.h>
#include <skywave/sw_link.h>
#include <skywave/sw_log.h>
#include <skywave/sw_server.h>

#include "sw_link_int.h"

#define SW_BLOCK_VERSION    1
#define SW_BLOCK_OPENER     0x80        /* in the version byte */
#define SW_BLOCK_HDR_MAX    8           /* 1 + 2 + a varint of 32 bits */
#define SW_BLOCK_MTU_MIN    64
/* Input kept while the connection does not read (the transport has
 * confirmed it: it cannot be refused); beyond this the connection ends
 * and the peer sends it again on the next. */
#define SW_BLOCK_IN_MAX     (1024 * 1024)

typedef struct sw_block_io_s  sw_block_io_t;
typedef struct sw_block_out_s sw_block_out_t;

/* A block the transport did not take yet (it said it was busy). */
struct sw_block_out_s {
    sw_block_out_t *next;
    size_t          len;
    unsigned char   data[];
};

struct sw_block_io_s {
    sw_block_io_t   *next;              /* the link's connections */
    sw_link_block_t *lb;
    sw_conn_t       *conn;
    uint16_t         id;
    bool             ours;              /* we opened it */
    uint32_t         out_index;
    uint32_t         in_index;
    size_t           payload_max;
    unsigned char   *fill;              /* the block being filled */
    size_t           fill_len;
    sw_block_out_t  *busy, **busy_tail;
    size_t           busy_bytes;
    char            *in;                /* kept while not reading */
    size_t           in_len;
    bool             reading;
    bool             closed;
    bool             attach;            /* we opened it: attach it */
    uv_check_t       check;             /* the turn's output: a block */
    uv_timer_t       timer;             /* deferred attach, input, close */
    int              handles;
};

typedef struct {
    uint64_t id;
    uint16_t conn;
    bool     ours;
} sw_block_flight_t;

struct sw_link_block_s {
    sw_link_t          *link;
    sw_transport_reg_t *reg;
    sw_block_io_t      *ios;
    uint64_t            next_id;
    sw_block_flight_t  *flight;         /* sent, outcome not known */
    size_t              n_flight, cap_flight;
    sw_log_rl_t         rl;
};

static const sw_io_ops_t sw_block_io_ops;

static void
sw_block_noop_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
}

static const sw_conn_cb_t sw_block_noop_cb = {
    .closed = sw_block_noop_closed,
};

static sw_link_block_t *
sw_block_state(sw_link_t *l)
{
    if (l->block == NULL) {
        l->block = sw_calloc(1, sizeof(*l->block));
        l->block->link = l;
        l->block->reg = l->tp->data;
    }
    return l->block;
}

static bool
sw_block_is_block_link(const sw_link_t *l)
{
    return l->tp != NULL && l->tp->connect == sw_link_block_adapter.connect;
}

/* ---------------------------------------------------------- sending --- */

static void
sw_block_flight_add(sw_link_block_t *lb, uint64_t id, uint16_t conn,
                    bool ours)
{
    if (lb->n_flight == lb->cap_flight) {
        lb->cap_flight = lb->cap_flight ? 2 * lb->cap_flight : 16;
        lb->flight = sw_realloc(lb->flight,
                                lb->cap_flight * sizeof(*lb->flight));
    }
    lb->flight[lb->n_flight].id = id;
    lb->flight[lb->n_flight].conn = conn;
    lb->flight[lb->n_flight].ours = ours;
    lb->n_flight++;
}

/* Hands one block to the transport: 0, UV_EAGAIN (busy) or an error. */
static int
sw_block_send(sw_block_io_t *io, const unsigned char *b, size_t len)
{
    sw_link_block_t *lb = io->lb;
    uint64_t         id = ++lb->next_id;
    int              rc;

    rc = lb->reg->bt.send(lb->reg->bt.data, lb->link, id, b, len);
    if (rc == SW_OK) {
        sw_block_flight_add(lb, id, io->id, io->ours);
        return 0;
    }
    return rc == SW_AGAIN ? UV_EAGAIN : UV_EIO;
}

/* The block being filled goes out (or waits behind busy ones). */
static int
sw_block_emit(sw_block_io_t *io)
{
    unsigned char   hdr[SW_BLOCK_HDR_MAX];
    size_t          h = 0, len;
    uint32_t        v = io->out_index;
    sw_block_out_t *o;
    int             rc;

    if (io->fill_len == 0) {
        return 0;
    }
    hdr[h++] = SW_BLOCK_VERSION | (io->ours ? SW_BLOCK_OPENER : 0);
    hdr[h++] = (unsigned char) (io->id >> 8);
    hdr[h++] = (unsigned char) (io->id & 0xff);
    do {
        hdr[h++] = (unsigned char) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    io->out_index++;
    len = h + io->fill_len;
    o = sw_alloc(sizeof(*o) + len);
    o->next = NULL;
    o->len = len;
    memcpy(o->data, hdr, h);
    memcpy(o->data + h, io->fill, io->fill_len);
    io->fill_len = 0;
    if (io->busy == NULL) {
        rc = sw_block_send(io, o->data, o->len);
        if (rc != UV_EAGAIN) {
            free(o);
            return rc;
        }
    }
    *io->busy_tail = o;
    io->busy_tail = &o->next;
    io->busy_bytes += o->len;
    return 0;
}

/* Busy blocks go to the transport while it takes them. */
static void
sw_block_push(sw_block_io_t *io)
{
    sw_block_out_t *o;
    bool            had = io->busy != NULL;
    int             rc;

    while (!io->closed && (o = io->busy) != NULL) {
        rc = sw_block_send(io, o->data, o->len);
        if (rc == UV_EAGAIN) {
            return;
        }
        io->busy = o->next;
        if (io->busy == NULL) {
            io->busy_tail = &io->busy;
        }
        io->busy_bytes -= o->len;
        free(o);
        if (rc != 0) {
            sw_conn_io_error(io->conn, rc, "the block transport cannot "
                             "send");
            return;
        }
    }
    if (had && !io->closed && io->fill_len == 0) {
        sw_conn_io_drained(io->conn);
    }
}

/* End of the loop turn: what was written in it goes as one block. */
static void
sw_block_on_check(uv_check_t *h)
{
    sw_block_io_t *io = h->data;
    int            rc;

    uv_check_stop(h);
    if (io->closed) {
        return;
    }
    rc = sw_block_emit(io);
    if (rc != 0) {
        sw_conn_io_error(io->conn, rc, "the block transport cannot send");
    } else if (io->busy == NULL) {
        /* all handed on: whoever waits for room may go on (a spare call
         * costs the link one look at its queue) */
        sw_conn_io_drained(io->conn);
    }
}

static int
sw_block_write(void *p, const char *data, size_t len)
{
    sw_block_io_t *io = p;
    size_t         n;
    int            rc;

    if (io->closed) {
        return UV_EPIPE;
    }
    while (len > 0) {
        n = io->payload_max - io->fill_len;
        if (n > len) {
            n = len;
        }
        memcpy(io->fill + io->fill_len, data, n);
        io->fill_len += n;
        data += n;
        len -= n;
        if (io->fill_len == io->payload_max) {
            rc = sw_block_emit(io);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (io->fill_len > 0) {
        uv_check_start(&io->check, sw_block_on_check);
    }
    return 0;
}

static int
sw_block_flush(void *p)
{
    sw_block_io_t *io = p;

    return io->closed ? UV_EPIPE : sw_block_emit(io);
}

static size_t
sw_block_pending(void *p)
{
    sw_block_io_t *io = p;

    return io->fill_len + io->busy_bytes;
}

/* ---------------------------------------------------------- reading --- */

static void
sw_block_on_timer(uv_timer_t *t)
{
    sw_block_io_t *io = t->data;
    sw_link_t     *l = io->lb->link;
    char          *in;
    size_t         n;

    if (io->closed) {
        return;
    }
    if (io->attach) {
        io->attach = false;
        sw_link_attach(l, io->conn, true);
    }
    if (!io->closed && io->reading && io->in_len > 0) {
        in = io->in;
        n = io->in_len;
        io->in = NULL;
        io->in_len = 0;
        sw_conn_io_input(io->conn, in, n);
        free(in);
    }
}

static int
sw_block_read(void *p, bool on)
{
    sw_block_io_t *io = p;

    io->reading = on;
    if (on && io->in_len > 0) {
        /* from the loop: never into the layers that are asking */
        uv_timer_start(&io->timer, sw_block_on_timer, 0, 0);
    }
    return 0;
}

static void
sw_block_input(sw_block_io_t *io, const unsigned char *data, size_t len)
{
    if (io->reading && io->in_len == 0) {
        sw_conn_io_input(io->conn, (const char *) data, len);
        return;
    }
    if (io->in_len + len > SW_BLOCK_IN_MAX) {
        sw_conn_io_error(io->conn, UV_ENOBUFS, "more input waits than "
                         "the connection reads");
        return;
    }
    io->in = sw_realloc(io->in, io->in_len + len);
    memcpy(io->in + io->in_len, data, len);
    io->in_len += len;
}

/* --------------------------------------------------------- life cycle --- */

static void
sw_block_handle_closed(uv_handle_t *h)
{
    sw_block_io_t *io = h->data;

    if (--io->handles == 0) {
        free(io->fill);
        free(io->in);
        free(io);
    }
}

static void
sw_block_on_closed(uv_timer_t *t)
{
    sw_block_io_t *io = t->data;

    sw_conn_io_closed(io->conn);
    uv_close((uv_handle_t *) &io->check, sw_block_handle_closed);
    uv_close((uv_handle_t *) &io->timer, sw_block_handle_closed);
}

static void
sw_block_close(void *p)
{
    sw_block_io_t  *io = p;
    sw_block_io_t **pp;
    sw_block_out_t *o;

    io->closed = true;
    for (pp = &io->lb->ios; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == io) {
            *pp = io->next;
            break;
        }
    }
    while ((o = io->busy) != NULL) {
        io->busy = o->next;
        free(o);
    }
    io->busy_tail = &io->busy;
    io->busy_bytes = 0;
    io->fill_len = 0;
    uv_check_stop(&io->check);
    uv_timer_start(&io->timer, sw_block_on_closed, 0, 0);
}

static void
sw_block_peer(void *p, char *out, size_t size)
{
    sw_block_io_t *io = p;

    snprintf(out, size, "%s:%04x", io->lb->reg->bt.name, io->id);
}

static const sw_io_ops_t sw_block_io_ops = {
    .name = "block",
    .write = sw_block_write,
    .pending = sw_block_pending,
    .flush = sw_block_flush,
    .read = sw_block_read,
    .close = sw_block_close,
    .peer = sw_block_peer,
};

static sw_block_io_t *
sw_block_io_new(sw_link_block_t *lb, uint16_t id, bool ours)
{
    sw_block_io_t *io = sw_calloc(1, sizeof(*io));
    size_t         mtu = lb->reg->bt.mtu(lb->reg->bt.data, lb->link);

    if (mtu < SW_BLOCK_MTU_MIN) {
        sw_log_rl_warn(&lb->rl, "link %s: block transport '%s' has an MTU "
                       "of %zu bytes; using %d", sw_link_name(lb->link),
                       lb->reg->bt.name, mtu, SW_BLOCK_MTU_MIN);
        mtu = SW_BLOCK_MTU_MIN;
    }
    io->lb = lb;
    io->id = id;
    io->ours = ours;
    io->payload_max = mtu - SW_BLOCK_HDR_MAX;
    io->fill = sw_alloc(io->payload_max);
    io->busy_tail = &io->busy;
    uv_check_init(sw_loop(), &io->check);
    uv_timer_init(sw_loop(), &io->timer);
    io->check.data = io;
    io->timer.data = io;
    io->handles = 2;
    io->next = lb->ios;
    lb->ios = io;
    io->conn = sw_conn_new_io(sw_loop(), &sw_block_io_ops, io,
                              &sw_block_noop_cb, NULL);
    return io;
}

static sw_block_io_t *
sw_block_io_find(sw_link_block_t *lb, uint16_t id, bool ours)
{
    sw_block_io_t *io;

    for (io = lb->ios; io != NULL; io = io->next) {
        if (io->id == id && io->ours == ours && !io->closed) {
            return io;
        }
    }
    return NULL;
}

/* The adapter as the link's transport: a connection is a new id. */
static int
sw_block_connect(void *data, sw_link_t *l)
{
    sw_link_block_t *lb = sw_block_state(l);
    sw_block_io_t   *io;
    uint16_t         id;

    (void) data;
    do {
        uv_random(NULL, NULL, &id, sizeof(id), 0, NULL);
    } while (id == 0 || sw_block_io_find(lb, id, true) != NULL);
    io = sw_block_io_new(lb, id, true);
    /* the link hears of it from the loop, as of a TCP connect */
    io->attach = true;
    uv_timer_start(&io->timer, sw_block_on_timer, 0, 0);
    return SW_OK;
}

/* A block transport reports loss itself: never probe. */
static int
sw_block_stalled(void *data, sw_link_t *l, sw_conn_t *c)
{
    return 0;
}

const sw_transport_t sw_link_block_adapter = {
    .name = "block",
    .connect = sw_block_connect,
    .stalled = sw_block_stalled,
};

/* --------------------------------------------- from the transport --- */

void
sw_block_received(sw_link_t *l, const void *block, size_t len)
{
    const unsigned char *b = block;
    sw_link_block_t     *lb;
    sw_block_io_t       *io;
    uint32_t             index = 0;
    uint16_t             id;
    size_t               h = 3;
    int                  shift = 0;
    bool                 theirs;

    if (!sw_block_is_block_link(l)) {
        return;
    }
    lb = sw_block_state(l);
    if (len < 4 || (b[0] & ~SW_BLOCK_OPENER) != SW_BLOCK_VERSION) {
        sw_log_rl_warn(&lb->rl, "link %s: dropped a block that is not a "
                       "link block (%zu bytes)", l->name, len);
        return;
    }
    id = (uint16_t) (b[1] << 8 | b[2]);
    theirs = (b[0] & SW_BLOCK_OPENER) != 0;    /* the peer opened it */
    for (;;) {
        if (h == len || shift > 28) {
            sw_log_rl_warn(&lb->rl, "link %s: dropped a block with a bad "
                           "header", l->name);
            return;
        }
        index |= (uint32_t) (b[h] & 0x7f) << shift;
        shift += 7;
        if ((b[h++] & 0x80) == 0) {
            break;
        }
    }
    io = sw_block_io_find(lb, id, !theirs);
    if (io == NULL) {
        /* only the peer's own block 0 opens a connection: the rest is on
         * one that ended here */
        if (!theirs || index != 0 || !sw_link_running) {
            sw_log_debug("link %s: block %u of connection %04x, which is "
                         "not open here: dropped", l->name, index, id);
            return;
        }
        io = sw_block_io_new(lb, id, false);
        if (sw_link_attach(l, io->conn, false) != SW_OK || io->closed) {
            return;
        }
    }
    if (index < io->in_index) {
        return;                         /* the transport's own repeat */
    }
    if (index > io->in_index) {
        char text[120];

        snprintf(text, sizeof(text), "block %u of connection %04x lost "
                 "(%u came next)", io->in_index, id, index);
        sw_conn_io_error(io->conn, UV_EPROTO, text);
        return;
    }
    io->in_index++;
    if (len > h) {
        sw_block_input(io, b + h, len - h);
    }
}

void
sw_block_result(sw_link_t *l, uint64_t id, sw_block_result_e result)
{
    sw_link_block_t *lb = l->block;
    sw_block_io_t   *io;
    sw_block_flight_t conn;
    size_t           i;
    char             text[120];

    if (lb == NULL || !sw_block_is_block_link(l)) {
        return;
    }
    for (i = 0; i < lb->n_flight && lb->flight[i].id != id; i++) {
    }
    if (i == lb->n_flight) {
        return;
    }
    conn = lb->flight[i];
    memmove(&lb->flight[i], &lb->flight[i + 1],
            (lb->n_flight - i - 1) * sizeof(*lb->flight));
    lb->n_flight--;
    if (result == SW_BLOCK_DELIVERED) {
        return;
    }
    io = sw_block_io_find(lb, conn.conn, conn.ours);
    if (io == NULL) {
        return;                         /* that connection is over */
    }
    snprintf(text, sizeof(text), "block %llu %s by the transport",
             (unsigned long long) id,
             result == SW_BLOCK_REJECTED ? "rejected" : "expired");
    sw_conn_io_error(io->conn, result == SW_BLOCK_REJECTED
                     ? UV_ECONNREFUSED : UV_ETIMEDOUT, text);
}

void
sw_block_ready(sw_link_t *l)
{
    sw_block_io_t *io, *next;

    if (l->block == NULL || !sw_block_is_block_link(l)) {
        return;
    }
    for (io = l->block->ios; io != NULL; io = next) {
        next = io->next;
        sw_block_push(io);
    }
}

bool
sw_link_block_heard(const sw_conn_t *c)
{
    const sw_block_io_t *io;

    if (c == NULL || sw_conn_io_ops(c) != &sw_block_io_ops) {
        return false;
    }
    io = sw_conn_io(c);
    return io->in_index > 0;
}

void
sw_link_block_free(sw_link_t *l)
{
    if (l->block == NULL) {
        return;
    }
    free(l->block->flight);
    free(l->block);
    l->block = NULL;
}
