/*
 * Connection pipeline tests: a client sw_conn and a server sw_conn on
 * loopback, one uv loop, every wait bounded by a timer so a hang fails.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <zlib.h>

#include <skywave/skywave.h>

#define T_TIMEOUT_MS  20000
#define T_LARGE       (1024 * 1024)

typedef struct harness_s harness_t;

typedef struct side_s {
    harness_t   *h;
    bool         server;
    sw_conn_t   *conn;
    uv_tcp_t    *tcp;
    sw_buf_t     rx;
    unsigned     data_calls;
    unsigned     secured;
    unsigned     drained;
    unsigned     closed;
    int          close_error;
    char         close_reason[256];
    char        *cb_exporter;       /* channel binding seen when secured */
    uv_timer_t   resume_timer;

    /* behaviour */
    bool         echo;
    unsigned     pause_every;       /* pause in every Nth data callback */
    bool         tls_at_once;
    bool         deflate;
    const char  *dict;
    bool         starttls;          /* negotiate with <starttls/> */
    const char  *reply;             /* written back once, raw */
    size_t       reply_len;
} side_t;

struct harness_s {
    uv_loop_t      loop;
    uv_tcp_t       listener;
    uv_timer_t     timeout;
    uv_timer_t     sleep;
    uv_connect_t   connect_req;
    bool           timed_out;
    bool           slept;
    side_t         server;
    side_t         client;
    bool           small_buffers;
    bool           pipelined_starttls;  /* client starts TLS unasked */
};

/*
 * Every callback the tests wait on stops the loop, so t_run_until checks
 * its condition again at once: uv_run(UV_RUN_ONCE) runs due timers first
 * and would then still block in poll until the next event.
 */
#define t_wake(h)  uv_stop(&(h)->loop)

/* Made once for the TLS tests. */
static char           t_dir[64];
static char           t_cert[128];
static char           t_key[128];
static sw_tls_ctx_t  *t_ctx;

static void
t_log_sink(sw_log_level_e level, const char *line, void *ud)
{
    (void) level;
    (void) line;
    (void) ud;
}

/* ------------------------------------------------------------ callbacks --- */

static void
t_resume_cb(uv_timer_t *timer)
{
    side_t  *s = timer->data;

    t_wake(s->h);
    if (s->conn != NULL) {
        sw_conn_pause_read(s->conn, false);
    }
}

static void
t_start_tls(side_t *s, const char *early, size_t early_len)
{
    int  rc;

    rc = sw_conn_start_tls(s->conn, s->server ? t_ctx : NULL, s->server,
                           s->server ? NULL : "localhost", early, early_len);
    assert_int_equal(rc, SW_OK);
    assert_true(sw_conn_is_tls(s->conn));
}

static void
t_data(sw_conn_t *c, const char *data, size_t len, void *ud)
{
    side_t      *s = ud;
    const char  *m;

    s->data_calls++;
    t_wake(s->h);

    if (s->starttls && !sw_conn_is_tls(c)) {
        if (s->server) {
            m = memmem(data, len, "<starttls/>", 11);
            if (m != NULL) {
                /* RFC 6120 §5.4.2.3: <proceed/>, then the handshake;
                 * anything after <starttls/> is the ClientHello. */
                if (!s->h->pipelined_starttls) {
                    sw_conn_write(c, "<proceed/>", 10);
                }
                m += 11;
                t_start_tls(s, m, len - (size_t) (m - data));
                return;
            }
        } else if (memmem(data, len, "<proceed/>", 10) != NULL) {
            t_start_tls(s, NULL, 0);
            return;
        }
    }

    sw_buf_append(&s->rx, data, len);
    if (s->reply != NULL) {
        assert_int_equal(sw_conn_write(c, s->reply, s->reply_len), SW_OK);
        s->reply = NULL;
    }
    if (s->echo) {
        assert_int_equal(sw_conn_write(c, data, len), SW_OK);
        assert_int_equal(sw_conn_flush(c), SW_OK);
    }
    if (s->pause_every != 0 && s->data_calls % s->pause_every == 0) {
        sw_conn_pause_read(c, true);
        uv_timer_start(&s->resume_timer, t_resume_cb, 1, 0);
    }
}

static void
t_secured(sw_conn_t *c, void *ud)
{
    side_t  *s = ud;

    s->secured++;
    t_wake(s->h);
    free(s->cb_exporter);
    s->cb_exporter = sw_conn_channel_binding(c, "tls-exporter");
    if (s->deflate && s->starttls) {
        assert_int_equal(sw_conn_start_deflate(c, 6, s->dict,
                                               s->dict ? strlen(s->dict)
                                                       : 0),
                         SW_OK);
    }
}

static void
t_drained(sw_conn_t *c, void *ud)
{
    side_t  *s = ud;

    (void) c;
    s->drained++;
    t_wake(s->h);
}

static void
t_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
    side_t  *s = ud;

    assert_ptr_equal(c, s->conn);
    s->closed++;
    t_wake(s->h);
    s->close_error = error;
    snprintf(s->close_reason, sizeof(s->close_reason), "%s",
             reason ? reason : "(null)");
    s->conn = NULL;
}

static const sw_conn_cb_t  t_cb = {
    .data = t_data, .secured = t_secured, .drained = t_drained,
    .closed = t_closed,
};

/* Layers a side starts as soon as its connection exists. */
static void
t_side_begin(side_t *s, uv_tcp_t *tcp)
{
    s->tcp = tcp;
    s->conn = sw_conn_new(tcp, &t_cb, s);
    assert_non_null(s->conn);
    if (s->tls_at_once) {
        t_start_tls(s, NULL, 0);
    }
    if (s->deflate && !s->starttls) {
        assert_int_equal(sw_conn_start_deflate(s->conn, 6, s->dict,
                                               s->dict ? strlen(s->dict)
                                                       : 0),
                         SW_OK);
    }
}

static void
t_on_connection(uv_stream_t *listener, int status)
{
    harness_t  *h = listener->data;
    uv_tcp_t   *tcp;

    assert_int_equal(status, 0);
    assert_null(h->server.conn);
    t_wake(h);
    tcp = sw_alloc(sizeof(*tcp));
    assert_int_equal(uv_tcp_init(&h->loop, tcp), 0);
    assert_int_equal(uv_accept(listener, (uv_stream_t *) tcp), 0);
    if (h->small_buffers) {
        int  size = 16384;

        assert_int_equal(uv_recv_buffer_size((uv_handle_t *) tcp, &size), 0);
    }
    t_side_begin(&h->server, tcp);
}

static void
t_on_connect(uv_connect_t *req, int status)
{
    harness_t  *h = req->data;

    assert_int_equal(status, 0);
    t_wake(h);
    if (h->small_buffers) {
        int  size = 16384;

        /* Small kernel buffers, so 1 MB must wait in our write queue. */
        assert_int_equal(uv_send_buffer_size((uv_handle_t *) req->handle,
                                             &size), 0);
    }
    t_side_begin(&h->client, (uv_tcp_t *) req->handle);
}

static void
t_timeout_cb(uv_timer_t *timer)
{
    harness_t  *h = timer->data;

    h->timed_out = true;
    uv_stop(&h->loop);
}

static void
t_sleep_cb(uv_timer_t *timer)
{
    harness_t  *h = timer->data;

    h->slept = true;
    t_wake(h);
}

/* -------------------------------------------------------------- harness --- */

typedef bool (*t_pred_pt)(harness_t *h);

static void
t_run_until(harness_t *h, t_pred_pt pred)
{
    while (!pred(h) && !h->timed_out) {
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    if (h->timed_out) {
        fprintf(stderr, "timeout: server rx %zu calls %u closed %u; "
                "client rx %zu closed %u pending %zu\n",
                h->server.rx.len, h->server.data_calls, h->server.closed,
                h->client.rx.len, h->client.closed,
                h->client.conn ? sw_conn_pending(h->client.conn) : 0);
    }
    assert_false(h->timed_out);
}

static bool
t_slept(harness_t *h)
{
    return h->slept;
}

static void
t_run_for(harness_t *h, uint64_t ms)
{
    h->slept = false;
    uv_update_time(&h->loop);
    uv_timer_start(&h->sleep, t_sleep_cb, ms, 0);
    t_run_until(h, t_slept);
}

static bool
t_connected(harness_t *h)
{
    return h->server.conn != NULL && h->client.conn != NULL;
}

static bool
t_both_secured(harness_t *h)
{
    return h->server.secured > 0 && h->client.secured > 0;
}

static bool
t_both_closed(harness_t *h)
{
    return h->server.closed > 0 && h->client.closed > 0;
}

static void
t_side_init(harness_t *h, side_t *s, bool server)
{
    memset(s, 0, sizeof(*s));
    s->h = h;
    s->server = server;
    sw_buf_init(&s->rx);
    uv_timer_init(&h->loop, &s->resume_timer);
    s->resume_timer.data = s;
}

static harness_t *
t_harness_new(void)
{
    harness_t  *h = sw_calloc(1, sizeof(*h));

    assert_int_equal(uv_loop_init(&h->loop), 0);
    t_side_init(h, &h->server, true);
    t_side_init(h, &h->client, false);
    uv_timer_init(&h->loop, &h->timeout);
    h->timeout.data = h;
    uv_timer_init(&h->loop, &h->sleep);
    h->sleep.data = h;
    return h;
}

/* Listens, connects, and runs until both sides have a sw_conn. */
static void
t_harness_connect(harness_t *h)
{
    struct sockaddr_in  addr;
    struct sockaddr_in  bound;
    int                 len = sizeof(bound);
    uv_tcp_t           *tcp;

    uv_timer_start(&h->timeout, t_timeout_cb, T_TIMEOUT_MS, 0);

    assert_int_equal(uv_tcp_init(&h->loop, &h->listener), 0);
    h->listener.data = h;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&h->listener,
                                 (const struct sockaddr *) &addr, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&h->listener,
                                        (struct sockaddr *) &bound, &len), 0);
    assert_int_equal(uv_listen((uv_stream_t *) &h->listener, 8,
                               t_on_connection), 0);

    tcp = sw_alloc(sizeof(*tcp));
    assert_int_equal(uv_tcp_init(&h->loop, tcp), 0);
    h->connect_req.data = h;
    assert_int_equal(uv_tcp_connect(&h->connect_req, tcp,
                                    (const struct sockaddr *) &bound,
                                    t_on_connect), 0);
    t_run_until(h, t_connected);
}

static void
t_side_free(side_t *s)
{
    sw_buf_free(&s->rx);
    free(s->cb_exporter);
}

/* Closes what is still open, then checks the loop holds nothing. */
static void
t_harness_free(harness_t *h)
{
    if (h->server.conn != NULL) {
        sw_conn_close(h->server.conn, false);
    }
    if (h->client.conn != NULL) {
        sw_conn_close(h->client.conn, false);
    }
    t_run_until(h, t_both_closed);
    assert_int_equal(h->server.closed, 1);
    assert_int_equal(h->client.closed, 1);

    uv_close((uv_handle_t *) &h->listener, NULL);
    uv_close((uv_handle_t *) &h->timeout, NULL);
    uv_close((uv_handle_t *) &h->sleep, NULL);
    uv_close((uv_handle_t *) &h->server.resume_timer, NULL);
    uv_close((uv_handle_t *) &h->client.resume_timer, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    t_side_free(&h->server);
    t_side_free(&h->client);
    free(h);
}

/* Runs until side s has received want bytes. */
static size_t  t_want;
static side_t *t_want_side;

static bool
t_have_bytes(harness_t *h)
{
    (void) h;
    return t_want_side->rx.len >= t_want || t_want_side->closed;
}

static void
t_wait_bytes(harness_t *h, side_t *s, size_t want)
{
    t_want = want;
    t_want_side = s;
    t_run_until(h, t_have_bytes);
    assert_int_equal(s->closed, 0);
}

static void
t_write(side_t *s, const char *data, size_t len)
{
    assert_int_equal(sw_conn_write(s->conn, data, len), SW_OK);
    assert_int_equal(sw_conn_flush(s->conn), SW_OK);
}

/* Round trip: client writes, server echoes, client checks. */
static void
t_echo_round(harness_t *h, const char *msg)
{
    size_t  len = strlen(msg);
    size_t  before = h->client.rx.len;

    t_write(&h->client, msg, len);
    t_wait_bytes(h, &h->client, before + len);
    assert_int_equal(h->client.rx.len, before + len);
    assert_memory_equal(h->client.rx.data + before, msg, len);
}

/* ---------------------------------------------------------------- tests --- */

static void
test_plain_echo(void **state)
{
    harness_t   *h = t_harness_new();
    const char  *msg = "<message to='a@b'><body>hello</body></message>";
    size_t       len = strlen(msg);

    (void) state;
    h->server.echo = true;
    t_harness_connect(h);

    assert_false(sw_conn_is_tls(h->client.conn));
    assert_string_equal(sw_conn_tls_desc(h->client.conn), "plaintext");
    assert_null(sw_conn_channel_binding(h->client.conn, "tls-exporter"));
    assert_int_equal(strncmp(sw_conn_peer(h->server.conn), "127.0.0.1:", 10),
                     0);
    assert_int_equal(strncmp(sw_conn_peer(h->client.conn), "127.0.0.1:", 10),
                     0);
    /* Flush without layers is a no-op that succeeds. */
    assert_int_equal(sw_conn_flush(h->client.conn), SW_OK);

    t_echo_round(h, msg);
    assert_memory_equal(h->server.rx.data, msg, len);
    assert_int_equal(sw_conn_bytes_out(h->client.conn), len);
    assert_int_equal(sw_conn_bytes_in(h->server.conn), len);
    assert_int_equal(sw_conn_bytes_out(h->server.conn), len);
    assert_int_equal(sw_conn_bytes_in(h->client.conn), len);
    assert_int_equal(sw_conn_pending(h->client.conn), 0);

    t_echo_round(h, "second");
    assert_int_equal(sw_conn_bytes_in(h->client.conn), len + 6);
    t_harness_free(h);
}

static void
t_fill(char *buf, size_t len, bool hex)
{
    uint32_t  x = 2463534242u;
    size_t    i;

    /* xorshift: position-dependent, so a lost, repeated or reordered
     * chunk shows.  Raw bytes do not compress; hex digits compress to
     * about half, so each compressed read inflates to several chunks. */
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = hex ? "0123456789abcdef"[x & 0xf] : (char) (x & 0xff);
    }
}

/*
 * 1 MB from client to server while the server does not read: the write
 * queue must fill (pending > 0), then drain once the server reads, and
 * every byte must arrive in order over several reads.
 */
static void
t_large(harness_t *h)
{
    char    *big = sw_alloc(T_LARGE);
    size_t   off, n;
    uint64_t out_before;

    t_fill(big, T_LARGE, h->client.deflate);
    if (h->client.tls_at_once) {
        t_run_until(h, t_both_secured);
    }
    out_before = sw_conn_bytes_out(h->client.conn);

    sw_conn_pause_read(h->server.conn, true);
    for (off = 0; off < T_LARGE; off += n) {
        n = T_LARGE - off < 65536 ? T_LARGE - off : 65536;
        assert_int_equal(sw_conn_write(h->client.conn, big + off, n), SW_OK);
    }
    assert_int_equal(sw_conn_flush(h->client.conn), SW_OK);
    assert_true(sw_conn_pending(h->client.conn) > 0);

    t_run_for(h, 50);
    assert_int_equal(h->server.rx.len, 0);
    assert_true(sw_conn_pending(h->client.conn) > 0);
    assert_int_equal(h->client.drained, 0);

    sw_conn_pause_read(h->server.conn, false);
    t_wait_bytes(h, &h->server, T_LARGE);
    assert_int_equal(h->server.rx.len, T_LARGE);
    assert_memory_equal(h->server.rx.data, big, T_LARGE);
    assert_true(h->server.data_calls > 1);

    /* The queue drained and everything was counted at the socket. */
    assert_int_equal(sw_conn_pending(h->client.conn), 0);
    assert_true(h->client.drained >= 1);
    if (!h->client.tls_at_once && !h->client.deflate) {
        assert_int_equal(sw_conn_bytes_out(h->client.conn) - out_before,
                         T_LARGE);
        assert_int_equal(sw_conn_bytes_in(h->server.conn), T_LARGE);
    } else if (h->client.deflate) {
        /* Hex text: DEFLATE saves more than TLS adds. */
        assert_true(sw_conn_bytes_out(h->client.conn) - out_before
                    < T_LARGE * 7 / 10);
    } else {
        assert_true(sw_conn_bytes_out(h->client.conn) - out_before
                    > T_LARGE);
    }
    assert_int_equal(sw_conn_bytes_in(h->server.conn),
                     sw_conn_bytes_out(h->client.conn));
    free(big);
}

static void
test_plain_large(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->small_buffers = true;
    h->server.pause_every = 5;
    t_harness_connect(h);
    t_large(h);
    t_harness_free(h);
}

/* Runs cmd, returns its output (new) or NULL if it failed. */
static char *
t_popen(const char *cmd)
{
    FILE      *f = popen(cmd, "r");
    sw_buf_t   out;
    char       buf[4096];
    size_t     n;

    if (f == NULL) {
        return NULL;
    }
    sw_buf_init(&out);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        sw_buf_append(&out, buf, n);
    }
    if (pclose(f) != 0) {
        sw_buf_free(&out);
        return NULL;
    }
    return sw_buf_steal(&out, &n);
}

static gnutls_x509_crt_t
t_crt_load(const char *path)
{
    gnutls_x509_crt_t  crt;
    gnutls_datum_t     pem;

    assert_int_equal(gnutls_load_file(path, &pem), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM),
                     0);
    gnutls_free(pem.data);
    return crt;
}

static void
t_crt_expect_cn(gnutls_x509_crt_t crt, const char *cn)
{
    char    buf[256];
    size_t  len = sizeof(buf);

    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt,
                                                   GNUTLS_OID_X520_COMMON_NAME,
                                                   0, 0, buf, &len), 0);
    assert_string_equal(buf, cn);
}

/* The subject alternative names hold DNS names first, then second. */
static void
t_crt_expect_dns_pair(gnutls_x509_crt_t crt, const char *first,
                      const char *second)
{
    char          buf[256];
    size_t        len;
    unsigned int  i;
    int           type;
    bool          prev = false, found = false;

    for (i = 0; ; i++) {
        len = sizeof(buf) - 1;
        type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, NULL);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            break;
        }
        assert_true(type >= 0);
        buf[len] = '\0';
        if (prev && type == GNUTLS_SAN_DNSNAME && strcmp(buf, second) == 0) {
            found = true;
        }
        prev = type == GNUTLS_SAN_DNSNAME && strcmp(buf, first) == 0;
    }
    assert_true(found);
}

/* The extended key usage lists first, then second. */
static void
t_crt_expect_purpose_pair(gnutls_x509_crt_t crt, const char *first,
                          const char *second)
{
    char          oid[128];
    size_t        len;
    unsigned int  i;
    int           rc;
    bool          prev = false, found = false;

    for (i = 0; ; i++) {
        len = sizeof(oid);
        rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &len, NULL);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            break;
        }
        assert_true(rc >= 0);
        if (prev && strcmp(oid, second) == 0) {
            found = true;
        }
        prev = strcmp(oid, first) == 0;
    }
    assert_true(found);
}

/* crt, trusted as its own anchor, verifies for the key purpose. */
static void
t_crt_expect_verifies(gnutls_x509_crt_t crt, const char *purpose)
{
    gnutls_x509_trust_list_t  tl;
    gnutls_x509_crt_t         anchor;
    gnutls_typed_vdata_st     vdata;
    gnutls_datum_t            der;
    unsigned int              status = (unsigned int) -1;

    /* the list takes the anchor, so it gets a copy of its own */
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&anchor), 0);
    assert_int_equal(gnutls_x509_crt_import(anchor, &der,
                                            GNUTLS_X509_FMT_DER), 0);
    gnutls_free(der.data);

    assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
    assert_int_equal(gnutls_x509_trust_list_add_cas(tl, &anchor, 1, 0), 1);

    memset(&vdata, 0, sizeof(vdata));
    vdata.type = GNUTLS_DT_KEY_PURPOSE_OID;
    vdata.data = (unsigned char *) purpose;
    assert_int_equal(gnutls_x509_trust_list_verify_crt2(tl, &crt, 1, &vdata,
                                                        1, 0, &status, NULL),
                     0);
    assert_int_equal(status, 0);
    gnutls_x509_trust_list_deinit(tl, 1);
}

/* The public key derived from the key file is the certificate's. */
static void
t_key_expect_matches(const char *path_key, gnutls_x509_crt_t crt)
{
    gnutls_privkey_t  key;
    gnutls_pubkey_t   from_key, from_crt;
    gnutls_datum_t    pem, a, b;

    assert_int_equal(gnutls_load_file(path_key, &pem), 0);
    assert_int_equal(gnutls_privkey_init(&key), 0);
    assert_int_equal(gnutls_privkey_import_x509_raw(key, &pem,
                                                    GNUTLS_X509_FMT_PEM,
                                                    NULL, 0), 0);
    gnutls_free(pem.data);

    assert_int_equal(gnutls_pubkey_init(&from_key), 0);
    assert_int_equal(gnutls_pubkey_import_privkey(from_key, key, 0, 0), 0);
    assert_int_equal(gnutls_pubkey_init(&from_crt), 0);
    assert_int_equal(gnutls_pubkey_import_x509(from_crt, crt, 0), 0);

    assert_int_equal(gnutls_pubkey_export2(from_key, GNUTLS_X509_FMT_DER, &a),
                     0);
    assert_int_equal(gnutls_pubkey_export2(from_crt, GNUTLS_X509_FMT_DER, &b),
                     0);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);

    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(from_key);
    gnutls_pubkey_deinit(from_crt);
    gnutls_privkey_deinit(key);
}

static void
test_self_signed(void **state)
{
    const char *const  names[] = { "example.net", "conference.example.net",
                                   NULL };
    struct stat        st;
    char               path_cert[160], path_key[160], cmd[512];
    char              *text;
    sw_tls_ctx_t      *ctx;
    gnutls_x509_crt_t  crt;
    gnutls_datum_t     x, y;
    gnutls_ecc_curve_t curve;
    unsigned int       usage, ca;

    (void) state;
    snprintf(path_cert, sizeof(path_cert), "%s/ss.crt", t_dir);
    snprintf(path_key, sizeof(path_key), "%s/ss.key", t_dir);
    assert_int_equal(sw_tls_make_self_signed(path_cert, path_key, names),
                     SW_OK);

    assert_int_equal(stat(path_key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(path_cert, &st), 0);
    assert_true(st.st_size > 100);

    /* The pair loads; a wrong key path is refused. */
    ctx = sw_tls_ctx_new(path_cert, path_key);
    assert_non_null(ctx);
    sw_tls_ctx_free(ctx);
    assert_null(sw_tls_ctx_new(path_cert, "/nonexistent/key.pem"));
    assert_int_equal(sw_tls_make_self_signed(path_cert, path_key,
                                             (const char *const[]){ NULL }),
                     SW_ERROR);

    /* GnuTLS's X.509 parser reads back what was written. */
    crt = t_crt_load(path_cert);
    assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
    t_crt_expect_cn(crt, "example.net");
    t_crt_expect_dns_pair(crt, "example.net", "conference.example.net");

    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, NULL),
                     GNUTLS_PK_ECDSA);
    assert_int_equal(gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y), 0);
    assert_int_equal(curve, GNUTLS_ECC_CURVE_SECP256R1);     /* prime256v1 */
    gnutls_free(x.data);
    gnutls_free(y.data);

    assert_true(gnutls_x509_crt_get_key_usage(crt, &usage, NULL) >= 0);
    assert_true(usage & GNUTLS_KEY_DIGITAL_SIGNATURE);
    assert_false(usage & GNUTLS_KEY_KEY_ENCIPHERMENT);
    t_crt_expect_purpose_pair(crt, GNUTLS_KP_TLS_WWW_SERVER,
                              GNUTLS_KP_TLS_WWW_CLIENT);
    assert_true(gnutls_x509_crt_get_basic_constraints(crt, NULL, &ca,
                                                      NULL) >= 0);
    assert_int_equal(ca, 0);                                  /* CA:FALSE */

    /* Still valid nine years from now. */
    assert_true(gnutls_x509_crt_get_expiration_time(crt)
                >= time(NULL) + 9L * 365 * 24 * 3600);

    /* Self-signed: verifies against itself, for a TLS server. */
    t_crt_expect_verifies(crt, GNUTLS_KP_TLS_WWW_SERVER);

    /* The key matches the certificate. */
    t_key_expect_matches(path_key, crt);
    gnutls_x509_crt_deinit(crt);

    /* Two runs give two different serials and keys. */
    {
        char  other_cert[176], other_key[176], *a, *b;

        snprintf(other_cert, sizeof(other_cert), "%s/ss2.crt", t_dir);
        snprintf(other_key, sizeof(other_key), "%s/ss2.key", t_dir);
        assert_int_equal(sw_tls_make_self_signed(other_cert, other_key,
                                                 names), SW_OK);
        snprintf(cmd, sizeof(cmd), "cat %s", path_cert);
        a = t_popen(cmd);
        snprintf(cmd, sizeof(cmd), "cat %s", other_cert);
        b = t_popen(cmd);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_not_equal(a, b);
        free(a);
        free(b);
        unlink(other_cert);
        unlink(other_key);
    }

    /* No temporary files left behind: only ss.crt and ss.key. */
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '^ss' ", t_dir);
    text = t_popen(cmd);
    assert_non_null(text);
    assert_string_equal(text, "2\n");
    free(text);
    unlink(path_cert);
    unlink(path_key);
}

static void
t_check_tls_session(harness_t *h)
{
    char  *cs, *cc, *us, *uc;

    assert_int_equal(h->server.secured, 1);
    assert_int_equal(h->client.secured, 1);
    assert_true(sw_conn_is_tls(h->server.conn));
    assert_true(sw_conn_is_tls(h->client.conn));
    assert_int_equal(strncmp(sw_conn_tls_desc(h->client.conn), "TLS1.", 5),
                     0);
    assert_string_equal(sw_conn_tls_desc(h->client.conn),
                        sw_conn_tls_desc(h->server.conn));

    /* RFC 9266: both ends derive the same tls-exporter value. */
    cs = sw_conn_channel_binding(h->server.conn, "tls-exporter");
    cc = sw_conn_channel_binding(h->client.conn, "tls-exporter");
    assert_non_null(cs);
    assert_non_null(cc);
    assert_true(strlen(cs) >= 40);      /* 32 bytes in base64 */
    assert_string_equal(cs, cc);
    assert_non_null(h->server.cb_exporter);
    assert_string_equal(h->server.cb_exporter, cs);
    assert_string_equal(h->client.cb_exporter, cc);

    /* tls-unique: equal on both ends where it exists (not in TLS 1.3). */
    us = sw_conn_channel_binding(h->server.conn, "tls-unique");
    uc = sw_conn_channel_binding(h->client.conn, "tls-unique");
    if (us != NULL || uc != NULL) {
        assert_non_null(us);
        assert_non_null(uc);
        assert_string_equal(us, uc);
        assert_string_not_equal(us, cs);
    }
    assert_null(sw_conn_channel_binding(h->client.conn, "tls-bogus"));
    free(cs);
    free(cc);
    free(us);
    free(uc);
}

static void
test_tls(void **state)
{
    harness_t  *h = t_harness_new();
    const char *msg =
        "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>";

    (void) state;
    h->server.echo = true;
    h->server.tls_at_once = true;
    h->client.tls_at_once = true;
    t_harness_connect(h);
    assert_string_equal(sw_conn_tls_desc(h->client.conn), "TLS handshake");
    /* Written before the handshake ends: held, then sent encrypted. */
    assert_int_equal(sw_conn_write(h->client.conn, "early;", 6), SW_OK);
    t_run_until(h, t_both_secured);
    t_check_tls_session(h);

    t_wait_bytes(h, &h->client, 6);
    assert_memory_equal(h->client.rx.data, "early;", 6);
    t_echo_round(h, msg);
    assert_int_equal(h->server.rx.len, 6 + strlen(msg));
    /* Records cost more than the plaintext. */
    assert_true(sw_conn_bytes_out(h->client.conn) > 6 + strlen(msg) + 100);
    assert_int_equal(sw_conn_bytes_out(h->client.conn),
                     sw_conn_bytes_in(h->server.conn));

    /* A second start is refused. */
    assert_int_equal(sw_conn_start_tls(h->client.conn, NULL, false, NULL,
                                       NULL, 0), SW_ERROR);
    t_harness_free(h);
}

static void
t_starttls(bool pipelined)
{
    harness_t  *h = t_harness_new();

    h->server.starttls = true;
    h->client.starttls = true;
    h->server.echo = true;
    h->pipelined_starttls = pipelined;
    t_harness_connect(h);

    if (pipelined) {
        /* The ClientHello follows <starttls/> at once; the server reads
         * both in one go and must hand the rest to the handshake. */
        sw_conn_pause_read(h->server.conn, true);
        assert_int_equal(sw_conn_write(h->client.conn, "<starttls/>", 11),
                         SW_OK);
        t_start_tls(&h->client, NULL, 0);
        t_run_for(h, 50);
        sw_conn_pause_read(h->server.conn, false);
    } else {
        assert_int_equal(sw_conn_write(h->client.conn, "<starttls/>", 11),
                         SW_OK);
    }
    t_run_until(h, t_both_secured);
    if (pipelined) {
        assert_int_equal(h->server.data_calls, 1);
    }
    t_check_tls_session(h);
    assert_int_equal(h->server.rx.len, 0);
    t_echo_round(h, "<message><body>after starttls</body></message>");
    t_harness_free(h);
}

static void
test_starttls(void **state)
{
    (void) state;
    t_starttls(false);
}

static void
test_starttls_pipelined(void **state)
{
    (void) state;
    t_starttls(true);
}

static const char t_stanza[] =
    "<message from='alice@example.net/phone' to='bob@example.org' "
    "type='chat' id='m-%04u' xmlns='jabber:client'><body>Position report "
    "%u: all units holding at checkpoint bravo.</body><active "
    "xmlns='http://jabber.org/protocol/chatstates'/></message>";

static const char t_dict_a[] =
    "<message from='' to='' type='chat' id='' xmlns='jabber:client'>"
    "<body></body><active xmlns='http://jabber.org/protocol/chatstates'/>"
    "</message><presence/><iq type='result' id=''/>";

static const char t_dict_b[] =
    "<presence><show>away</show><status></status></presence>"
    "<iq type='get' id=''><query xmlns='jabber:iq:roster'/></iq>";

static void
t_deflate_exchange(harness_t *h, unsigned count)
{
    sw_buf_t  text;
    unsigned  i;
    uint64_t  out_before = sw_conn_bytes_out(h->client.conn);
    size_t    rx_before = h->server.rx.len;

    sw_buf_init(&text);
    for (i = 0; i < count; i++) {
        sw_buf_printf(&text, t_stanza, i, i);
    }

    /* Compressed but not flushed: the receiver has nothing to parse. */
    assert_int_equal(sw_conn_write(h->client.conn, text.data, text.len),
                     SW_OK);
    t_run_for(h, 30);
    assert_int_equal(h->server.rx.len, rx_before);

    assert_int_equal(sw_conn_flush(h->client.conn), SW_OK);
    t_wait_bytes(h, &h->server, rx_before + text.len);
    assert_int_equal(h->server.rx.len, rx_before + text.len);
    assert_memory_equal(h->server.rx.data + rx_before, text.data, text.len);

    /* Echoed back through the server's own deflate stream. */
    t_wait_bytes(h, &h->client, rx_before + text.len);
    assert_memory_equal(h->client.rx.data + rx_before, text.data, text.len);

    /* Repetitive XML: far fewer bytes on the socket than plaintext. */
    if (!h->client.tls_at_once) {
        assert_true(sw_conn_bytes_out(h->client.conn) - out_before
                    < text.len / 4);
    }
    sw_buf_free(&text);
}

static void
test_deflate(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.deflate = h->client.deflate = true;
    h->server.echo = true;
    t_harness_connect(h);
    t_deflate_exchange(h, 200);
    /* A second batch reuses the long-lived window. */
    t_deflate_exchange(h, 20);
    /* Flush with nothing written costs nothing. */
    {
        uint64_t  out = sw_conn_bytes_out(h->client.conn);

        assert_int_equal(sw_conn_flush(h->client.conn), SW_OK);
        assert_int_equal(sw_conn_bytes_out(h->client.conn), out);
    }
    assert_int_equal(sw_conn_start_deflate(h->client.conn, 6, NULL, 0),
                     SW_ERROR);
    t_harness_free(h);
}

/* One short stanza: a shared dictionary makes it much cheaper. */
static uint64_t
t_one_stanza_cost(const char *dict)
{
    harness_t  *h = t_harness_new();
    char        text[512];
    int         len;
    uint64_t    cost;

    h->server.deflate = h->client.deflate = true;
    h->server.dict = h->client.dict = dict;
    t_harness_connect(h);
    len = snprintf(text, sizeof(text), t_stanza, 1u, 1u);
    t_write(&h->client, text, (size_t) len);
    t_wait_bytes(h, &h->server, (size_t) len);
    assert_memory_equal(h->server.rx.data, text, (size_t) len);
    cost = sw_conn_bytes_out(h->client.conn);
    t_harness_free(h);
    return cost;
}

static void
test_deflate_dict(void **state)
{
    harness_t  *h = t_harness_new();
    uint64_t    with, without;

    (void) state;
    h->server.deflate = h->client.deflate = true;
    h->server.dict = h->client.dict = t_dict_a;
    h->server.echo = true;
    t_harness_connect(h);
    t_deflate_exchange(h, 100);
    t_harness_free(h);

    with = t_one_stanza_cost(t_dict_a);
    without = t_one_stanza_cost(NULL);
    assert_true(with < without);
}

/* The dictionary id of RFC 1950 §2.2: the Adler-32 of the dictionary. */
static unsigned long
t_adler32(const char *s)
{
    return adler32(adler32(0L, Z_NULL, 0), (const Bytef *) s,
                   (uInt) strlen(s));
}

static void
t_dict_mismatch(const char *server_dict, const char *client_dict)
{
    harness_t  *h = t_harness_new();
    char        want[128];
    unsigned long  peer_id;

    h->server.deflate = h->client.deflate = true;
    h->server.dict = server_dict;
    h->client.dict = client_dict;
    t_harness_connect(h);

    t_write(&h->client, "<presence/>", 11);
    t_run_until(h, t_both_closed);

    peer_id = t_adler32(client_dict);
    if (server_dict != NULL) {
        snprintf(want, sizeof(want),
                 "DEFLATE dictionary mismatch: peer uses adler32 0x%08lx, "
                 "ours is 0x%08lx", peer_id, t_adler32(server_dict));
    } else {
        snprintf(want, sizeof(want),
                 "DEFLATE dictionary mismatch: peer uses adler32 0x%08lx, "
                 "ours is none", peer_id);
    }
    assert_string_equal(h->server.close_reason, want);
    assert_int_not_equal(h->server.close_error, 0);
    assert_int_equal(h->server.rx.len, 0);
    assert_int_equal(h->client.closed, 1);
    assert_int_equal(h->server.closed, 1);
    t_harness_free(h);
}

static void
test_deflate_dict_mismatch(void **state)
{
    (void) state;
    t_dict_mismatch(t_dict_a, t_dict_b);
    t_dict_mismatch(NULL, t_dict_b);
}

static void
test_deflate_garbage(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.deflate = true;
    t_harness_connect(h);
    t_write(&h->client, "this is not a zlib stream", 25);
    t_run_until(h, t_both_closed);
    assert_int_not_equal(h->server.close_error, 0);
    assert_non_null(strstr(h->server.close_reason, "DEFLATE data error"));
    t_harness_free(h);
}

static void
test_tls_deflate(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.tls_at_once = h->client.tls_at_once = true;
    h->server.deflate = h->client.deflate = true;
    h->server.dict = h->client.dict = t_dict_a;
    h->server.echo = true;
    t_harness_connect(h);
    t_run_until(h, t_both_secured);
    t_check_tls_session(h);
    t_deflate_exchange(h, 100);
    t_harness_free(h);
}

/* STARTTLS, then compression negotiated inside TLS (XEP-0138 order). */
static void
test_starttls_then_deflate(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.starttls = h->client.starttls = true;
    h->server.deflate = h->client.deflate = true;
    h->server.echo = true;
    t_harness_connect(h);
    assert_int_equal(sw_conn_write(h->client.conn, "<starttls/>", 11),
                     SW_OK);
    t_run_until(h, t_both_secured);
    t_deflate_exchange(h, 50);
    t_harness_free(h);
}

static void
test_tls_deflate_large(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->small_buffers = true;
    h->server.tls_at_once = h->client.tls_at_once = true;
    h->server.deflate = h->client.deflate = true;
    h->server.pause_every = 3;
    t_harness_connect(h);
    t_large(h);
    t_harness_free(h);
}

static void
test_tls_large(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->small_buffers = true;
    h->server.tls_at_once = h->client.tls_at_once = true;
    h->server.pause_every = 2;
    t_harness_connect(h);
    t_large(h);
    t_harness_free(h);
}

/* The client writes and closes at once: the flush must deliver first. */
static void
t_close_flush(harness_t *h, const char *peer_reason)
{
    char  *big = sw_alloc(200000);

    t_fill(big, 200000, false);
    assert_int_equal(sw_conn_write(h->client.conn, big, 200000), SW_OK);
    sw_conn_close(h->client.conn, true);
    /* Idempotent; writing after close is refused. */
    sw_conn_close(h->client.conn, true);
    assert_int_equal(sw_conn_write(h->client.conn, "x", 1), SW_ERROR);

    t_run_until(h, t_both_closed);
    assert_int_equal(h->client.closed, 1);
    assert_int_equal(h->client.close_error, 0);
    assert_string_equal(h->client.close_reason, "closed locally");
    assert_int_equal(h->server.closed, 1);
    assert_int_equal(h->server.close_error, 0);
    assert_string_equal(h->server.close_reason, peer_reason);
    assert_int_equal(h->server.rx.len, 200000);
    assert_memory_equal(h->server.rx.data, big, 200000);
    free(big);
}

static void
test_close_plain(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->small_buffers = true;
    t_harness_connect(h);
    t_close_flush(h, "connection closed by peer");
    t_harness_free(h);
}

static void
test_close_tls_deflate(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.tls_at_once = h->client.tls_at_once = true;
    h->server.deflate = h->client.deflate = true;
    t_harness_connect(h);
    t_run_until(h, t_both_secured);
    t_close_flush(h, "TLS close_notify from peer");
    t_harness_free(h);
}

/* A hard close by the peer: closed with error 0, exactly once. */
static void
test_peer_close_hard(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.echo = true;
    t_harness_connect(h);
    t_echo_round(h, "hi");
    sw_conn_close(h->server.conn, false);
    t_run_until(h, t_both_closed);
    assert_int_equal(h->client.close_error, 0);
    assert_string_equal(h->client.close_reason, "connection closed by peer");
    assert_int_equal(h->server.close_error, 0);
    t_harness_free(h);
}

/* The peer resets the connection: closed with the libuv error. */
static void
test_peer_reset(void **state)
{
    harness_t      *h = t_harness_new();
    struct linger   lg = { 1, 0 };
    uv_os_fd_t      fd;

    (void) state;
    h->server.echo = true;
    t_harness_connect(h);
    t_echo_round(h, "before reset");

    /* SO_LINGER 0: close() sends RST instead of FIN. */
    assert_int_equal(uv_fileno((uv_handle_t *) h->client.tcp, &fd), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                     0);
    sw_conn_close(h->client.conn, false);
    t_run_until(h, t_both_closed);
    assert_int_equal(h->server.close_error, UV_ECONNRESET);
    assert_non_null(strstr(h->server.close_reason, "reset by peer"));
    assert_int_equal(h->client.close_error, 0);
    t_harness_free(h);
}

/* A TLS client against a plaintext echo server: its own ClientHello
 * comes back, and the handshake fails with a readable reason. */
static void
test_tls_failure(void **state)
{
    harness_t  *h = t_harness_new();

    (void) state;
    h->server.echo = true;
    h->client.tls_at_once = true;
    t_harness_connect(h);
    t_run_until(h, t_both_closed);
    assert_int_equal(h->client.secured, 0);
    assert_int_not_equal(h->client.close_error, 0);
    assert_non_null(strstr(h->client.close_reason, "TLS"));
    t_harness_free(h);
}

/* The peer answers the ClientHello with a fatal alert. */
static void
test_tls_alert_from_peer(void **state)
{
    harness_t  *h = t_harness_new();
    /* Alert record: fatal (2), handshake_failure (40); RFC 8446 §6. */
    static const char alert[] = "\x15\x03\x03\x00\x02\x02\x28";

    (void) state;
    h->server.reply = alert;
    h->server.reply_len = sizeof(alert) - 1;
    h->client.tls_at_once = true;
    t_harness_connect(h);
    t_run_until(h, t_both_closed);
    assert_int_equal(h->client.secured, 0);
    assert_int_not_equal(h->client.close_error, 0);
    assert_non_null(strstr(h->client.close_reason, "TLS alert from peer: "));
    assert_non_null(strstr(h->client.close_reason, "andshake"));
    t_harness_free(h);
}

/* Bytes that are not TLS reach a TLS server: it answers with an alert
 * and closes with a readable reason. */
static void
test_tls_bad_record(void **state)
{
    harness_t  *h = t_harness_new();
    /* An application-data record where a ClientHello must come. */
    static const char junk[] = "\x17\x03\x03\x00\x05hello";

    (void) state;
    h->server.tls_at_once = true;
    t_harness_connect(h);
    t_write(&h->client, junk, sizeof(junk) - 1);
    t_run_until(h, t_both_closed);
    assert_int_equal(h->server.secured, 0);
    assert_int_not_equal(h->server.close_error, 0);
    assert_non_null(strstr(h->server.close_reason, "TLS handshake failed"));
    /* The alert record (type 21, RFC 8446 §6) reached the client. */
    assert_true(h->client.rx.len >= 7);
    assert_int_equal((unsigned char) h->client.rx.data[0], 0x15);
    t_harness_free(h);
}

/* -------------------------------------------------------------- fixture --- */

static int
t_group_setup(void **state)
{
    const char *const  names[] = { "localhost", NULL };
    struct stat        st;

    (void) state;
    sw_log_set_sink(t_log_sink, NULL);
    snprintf(t_dir, sizeof(t_dir), "/tmp/sw-test-conn-XXXXXX");
    if (mkdtemp(t_dir) == NULL) {
        return -1;
    }
    snprintf(t_cert, sizeof(t_cert), "%s/cert.pem", t_dir);
    snprintf(t_key, sizeof(t_key), "%s/key.pem", t_dir);
    if (sw_tls_make_self_signed(t_cert, t_key, names) != SW_OK) {
        return -1;
    }
    if (stat(t_key, &st) != 0 || (st.st_mode & 0777) != 0600) {
        return -1;
    }
    t_ctx = sw_tls_ctx_new(t_cert, t_key);
    return t_ctx != NULL ? 0 : -1;
}

static int
t_group_teardown(void **state)
{
    (void) state;
    sw_tls_ctx_free(t_ctx);
    unlink(t_cert);
    unlink(t_key);
    rmdir(t_dir);
    sw_log_set_sink(NULL, NULL);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_echo),
        cmocka_unit_test(test_plain_large),
        cmocka_unit_test(test_self_signed),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_starttls_pipelined),
        cmocka_unit_test(test_deflate),
        cmocka_unit_test(test_deflate_dict),
        cmocka_unit_test(test_deflate_dict_mismatch),
        cmocka_unit_test(test_deflate_garbage),
        cmocka_unit_test(test_tls_deflate),
        cmocka_unit_test(test_starttls_then_deflate),
        cmocka_unit_test(test_tls_large),
        cmocka_unit_test(test_tls_deflate_large),
        cmocka_unit_test(test_close_plain),
        cmocka_unit_test(test_close_tls_deflate),
        cmocka_unit_test(test_peer_close_hard),
        cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_tls_failure),
        cmocka_unit_test(test_tls_bad_record),
        cmocka_unit_test(test_tls_alert_from_peer),
    };

    return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
