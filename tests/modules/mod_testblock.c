/*
 * Test-only block transport (sw_block_transport_t): carries a link's
 * blocks as UDP datagrams on 127.0.0.1, and behaves like a radio
 * subnetwork that confirms, rejects or loses each block:
 *
 *   testblock_port        our UDP port (global)
 *   testblock_peer_port   the peer's (Peer scope); it names the link a
 *                         datagram came from
 *   testblock_mtu         the largest block; a larger one is rejected and
 *                         logged "testblock: OVER MTU"
 *   testblock_loss        percent of blocks lost on the way (reported
 *                         expired after testblock_expire)
 *   testblock_reject      percent of blocks rejected at once
 *   testblock_delay       one-way delay of blocks and confirmations
 *   testblock_window      blocks in flight before it says busy
 *   testblock_seed        the losses' random sequence
 *   testblock_lose_first  this side's first N blocks are lost (beside
 *                         testblock_loss): a loss at a chosen moment
 *
 * Datagrams: 'B' + id (8 bytes) + block, and 'A' + id (a confirmation).
 * At stop it logs its counts: "testblock: sent N, lost N, rejected N,
 * delivered N, expired N, busy N, largest N, received N".
 *
 * No config.h: built against the SDK headers alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

typedef struct {
    int64_t port;
    int64_t peer_port;
    int64_t mtu;
    int64_t loss;
    int64_t reject;
    double  delay;
    double  expire;
    int64_t window;
    int64_t seed;
    int64_t lose_first;
} testblock_conf_t;

typedef struct testblock_s testblock_t;
typedef struct testblock_out_s testblock_out_t;

/* A block in flight, or a datagram waiting out its delay. */
struct testblock_out_s {
    testblock_out_t *next;
    testblock_t     *tb;
    sw_link_t       *link;
    uint64_t         id;
    uv_timer_t       timer;
    int              what;          /* see testblock_on_timer */
    size_t           len;
    char             data[];        /* the datagram, for a delayed send */
};

enum { TB_SEND, TB_EXPIRE, TB_REJECT };

struct testblock_s {
    sw_module_ctx_t *mc;
    uv_udp_t        *udp;           /* freed by its close callback */
    testblock_out_t *out;           /* everything with a timer */
    uint64_t         rng;
    uint64_t         sent, lost, rejected, delivered, expired, busy;
    uint64_t         received, largest;
};

static testblock_conf_t *
testblock_conf(testblock_t *tb, sw_link_t *l)
{
    return sw_module_conf(tb->mc, l != NULL ? sw_link_name(l) : NULL);
}

static unsigned
testblock_rand100(testblock_t *tb)
{
    /* xorshift64: the run repeats with the seed */
    tb->rng ^= tb->rng << 13;
    tb->rng ^= tb->rng >> 7;
    tb->rng ^= tb->rng << 17;
    return (unsigned) (tb->rng % 100);
}

static size_t
testblock_in_flight(testblock_t *tb, sw_link_t *l)
{
    testblock_out_t *o;
    size_t           n = 0;

    for (o = tb->out; o != NULL; o = o->next) {
        n += o->link == l && o->what == TB_EXPIRE;
    }
    return n;
}

static void
testblock_free_handle(uv_handle_t *h)
{
    free(h);
}

static void
testblock_free_out(uv_handle_t *h)
{
    free(h->data);
}

static void
testblock_unlink(testblock_out_t *o)
{
    testblock_out_t **pp;

    for (pp = &o->tb->out; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    uv_close((uv_handle_t *) &o->timer, testblock_free_out);
}

static void
testblock_sendto(testblock_t *tb, int port, const char *data, size_t len)
{
    struct sockaddr_in sa;
    uv_buf_t           buf = uv_buf_init((char *) data, (unsigned) len);

    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_udp_try_send(tb->udp, &buf, 1, (const struct sockaddr *) &sa);
}

static void testblock_on_timer(uv_timer_t *t);

static testblock_out_t *
testblock_later(testblock_t *tb, sw_link_t *l, uint64_t id, int what,
                double seconds, const char *data, size_t len)
{
    testblock_out_t *o = sw_calloc(1, sizeof(*o) + len);

    o->tb = tb;
    o->link = l;
    o->id = id;
    o->what = what;
    o->len = len;
    if (len > 0) {
        memcpy(o->data, data, len);
    }
    uv_timer_init(sw_loop(), &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, testblock_on_timer,
                   (uint64_t) (seconds * 1000), 0);
    o->next = tb->out;
    tb->out = o;
    return o;
}

static void
testblock_on_timer(uv_timer_t *t)
{
    testblock_out_t  *o = t->data;
    testblock_t      *tb = o->tb;
    testblock_conf_t *pc;

    switch (o->what) {
    case TB_SEND:
        pc = testblock_conf(tb, o->link);
        testblock_sendto(tb, (int) pc->peer_port, o->data, o->len);
        testblock_unlink(o);
        return;
    case TB_REJECT:
        testblock_unlink(o);
        sw_block_result(o->link, o->id, SW_BLOCK_REJECTED);
        return;
    case TB_EXPIRE:
        tb->expired++;
        testblock_unlink(o);
        sw_block_result(o->link, o->id, SW_BLOCK_EXPIRED);
        sw_block_ready(o->link);
        return;
    }
}

static size_t
testblock_mtu(void *data, sw_link_t *l)
{
    return (size_t) testblock_conf(data, NULL)->mtu;
}

static int
testblock_send(void *data, sw_link_t *l, uint64_t id, const void *block,
               size_t len)
{
    testblock_t      *tb = data;
    testblock_conf_t *c = testblock_conf(tb, NULL);
    char             *d;

    if (testblock_in_flight(tb, l) >= (size_t) c->window) {
        tb->busy++;
        return SW_AGAIN;
    }
    tb->sent++;
    if (len > tb->largest) {
        tb->largest = len;
    }
    if (len > (size_t) c->mtu) {
        sw_log_error("testblock: OVER MTU: a block of %zu bytes (MTU %lld)",
                     len, (long long) c->mtu);
        tb->rejected++;
        testblock_later(tb, l, id, TB_REJECT, 0, NULL, 0);
        return SW_OK;
    }
    if (testblock_rand100(tb) < (unsigned) c->reject) {
        tb->rejected++;
        testblock_later(tb, l, id, TB_REJECT, 0, NULL, 0);
        return SW_OK;
    }
    /* the outcome: a confirmation, or this timer running out */
    testblock_later(tb, l, id, TB_EXPIRE, c->expire, NULL, 0);
    if (tb->sent <= (uint64_t) c->lose_first
        || testblock_rand100(tb) < (unsigned) c->loss)
    {
        tb->lost++;
        return SW_OK;
    }
    d = malloc(9 + len);
    d[0] = 'B';
    memcpy(d + 1, &id, 8);
    memcpy(d + 9, block, len);
    testblock_later(tb, l, id, TB_SEND, c->delay, d, 9 + len);
    free(d);
    return SW_OK;
}

typedef struct {
    testblock_t *tb;
    int          port;
    sw_link_t   *found;
} testblock_match_t;

static void
testblock_match(sw_link_t *l, void *ud)
{
    testblock_match_t *m = ud;

    if (strcmp(sw_link_conf(l)->transport, "testblock") == 0
        && testblock_conf(m->tb, l)->peer_port == m->port)
    {
        m->found = l;
    }
}

static void
testblock_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char space[65536];

    buf->base = space;
    buf->len = sizeof(space);
}

static void
testblock_on_recv(uv_udp_t *udp, ssize_t n, const uv_buf_t *buf,
                  const struct sockaddr *from, unsigned flags)
{
    testblock_t       *tb = udp->data;
    testblock_match_t  m = { tb, 0, NULL };
    testblock_out_t   *o;
    testblock_conf_t  *c;
    uint64_t           id;
    char               ack[9];

    if (n < 9 || from == NULL || from->sa_family != AF_INET) {
        return;
    }
    m.port = ntohs(((const struct sockaddr_in *) from)->sin_port);
    sw_link_each(testblock_match, &m);
    if (m.found == NULL) {
        return;
    }
    memcpy(&id, buf->base + 1, 8);
    c = testblock_conf(tb, m.found);
    if (buf->base[0] == 'B') {
        tb->received++;
        ack[0] = 'A';
        memcpy(ack + 1, &id, 8);
        testblock_later(tb, m.found, id, TB_SEND, c->delay, ack, 9);
        sw_block_received(m.found, buf->base + 9, (size_t) n - 9);
        return;
    }
    if (buf->base[0] != 'A') {
        return;
    }
    for (o = tb->out; o != NULL; o = o->next) {
        if (o->what == TB_EXPIRE && o->id == id && o->link == m.found) {
            tb->delivered++;
            testblock_unlink(o);
            sw_block_result(m.found, id, SW_BLOCK_DELIVERED);
            sw_block_ready(m.found);
            return;
        }
    }
}

static int
testblock_start(void *data)
{
    testblock_t       *tb = data;
    testblock_conf_t  *c = testblock_conf(tb, NULL);
    struct sockaddr_in sa;
    int                rc;

    tb->udp = sw_alloc(sizeof(*tb->udp));
    uv_udp_init(sw_loop(), tb->udp);
    tb->udp->data = tb;
    uv_ip4_addr("127.0.0.1", (int) c->port, &sa);
    rc = uv_udp_bind(tb->udp, (const struct sockaddr *) &sa, 0);
    if (rc == 0) {
        rc = uv_udp_recv_start(tb->udp, testblock_alloc,
                               testblock_on_recv);
    }
    if (rc != 0) {
        sw_log_error("testblock: cannot use UDP port %lld: %s",
                     (long long) c->port, uv_strerror(rc));
        return SW_ERROR;
    }
    sw_log_info("testblock: on UDP port %lld, MTU %lld, loss %lld%%, "
                "reject %lld%%", (long long) c->port, (long long) c->mtu,
                (long long) c->loss, (long long) c->reject);
    return SW_OK;
}

static void
testblock_stop(void *data)
{
    testblock_t *tb = data;

    sw_log_info("testblock: sent %llu, lost %llu, rejected %llu, "
                "delivered %llu, expired %llu, busy %llu, largest %llu, "
                "received %llu", (unsigned long long) tb->sent,
                (unsigned long long) tb->lost,
                (unsigned long long) tb->rejected,
                (unsigned long long) tb->delivered,
                (unsigned long long) tb->expired,
                (unsigned long long) tb->busy,
                (unsigned long long) tb->largest,
                (unsigned long long) tb->received);
    while (tb->out != NULL) {
        testblock_unlink(tb->out);
    }
    if (tb->udp != NULL) {
        uv_close((uv_handle_t *) tb->udp, testblock_free_handle);
        tb->udp = NULL;
    }
}

static int
testblock_load(sw_module_ctx_t *mc)
{
    testblock_t         *tb = sw_calloc(1, sizeof(*tb));
    sw_block_transport_t bt = {
        .name = "testblock",
        .data = tb,
        .start = testblock_start,
        .stop = testblock_stop,
        .mtu = testblock_mtu,
        .send = testblock_send,
    };

    tb->mc = mc;
    mc->data = tb;
    return sw_block_transport_register(&mc->owner, &bt);
}

static int
testblock_mstart(sw_module_ctx_t *mc)
{
    testblock_t *tb = mc->data;

    tb->rng = (uint64_t) testblock_conf(tb, NULL)->seed * 2654435761u + 1;
    return SW_OK;
}

static void
testblock_unload(sw_module_ctx_t *mc)
{
    free(mc->data);
    mc->data = NULL;
}

#define TB_OPT(n, t, f, scope, lo, hi, def, help) \
    { n, t, offsetof(testblock_conf_t, f), scope, 0, lo, hi, def, NULL, help }

static const sw_option_t testblock_options[] = {
    TB_OPT("testblock_port", SW_OPT_INT, port, SW_SCOPE_GLOBAL, 1, 65535,
           "5399", "our UDP port"),
    TB_OPT("testblock_peer_port", SW_OPT_INT, peer_port, SW_SCOPE_PEER, 1,
           65535, "5399", "the peer's UDP port"),
    TB_OPT("testblock_mtu", SW_OPT_INT, mtu, SW_SCOPE_GLOBAL, 16, 65000,
           "2048", "largest block"),
    TB_OPT("testblock_loss", SW_OPT_INT, loss, SW_SCOPE_GLOBAL, 0, 100, "0",
           "percent of blocks lost"),
    TB_OPT("testblock_reject", SW_OPT_INT, reject, SW_SCOPE_GLOBAL, 0, 100,
           "0", "percent of blocks rejected"),
    TB_OPT("testblock_delay", SW_OPT_DURATION, delay, SW_SCOPE_GLOBAL, 0,
           60000, "0s", "one-way delay"),
    TB_OPT("testblock_expire", SW_OPT_DURATION, expire, SW_SCOPE_GLOBAL, 10,
           600000, "2s", "a block not confirmed by then expired"),
    TB_OPT("testblock_window", SW_OPT_INT, window, SW_SCOPE_GLOBAL, 1, 10000,
           "8", "blocks in flight before busy"),
    TB_OPT("testblock_seed", SW_OPT_INT, seed, SW_SCOPE_GLOBAL, 0,
           2147483647, "1", "seed of the losses"),
    TB_OPT("testblock_lose_first", SW_OPT_INT, lose_first, SW_SCOPE_GLOBAL,
           0, 1000000, "0", "this side's first N blocks are lost"),
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "testblock",
    .help = "test-only: a block transport over UDP with loss and rejection",
    .options = testblock_options,
    .conf_size = sizeof(testblock_conf_t),
    .load = testblock_load,
    .start = testblock_mstart,
    .stop = testblock_unload,
};
