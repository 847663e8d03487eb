/*
 * The TLS layer (GnuTLS) and TLS contexts.
 *
 * GnuTLS never touches the socket: its push function hands ciphertext to
 * the layer below, its pull function reads the ciphertext the layer below
 * gave us and reports EAGAIN when there is none, so the handshake and
 * record processing run inside the loop's read callbacks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <skywave/sw_buf.h>
#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>

#include "sw_conn_int.h"

/* TLS 1.2 and 1.3 only (RFC 8996 deprecates 1.0 and 1.1). */
#define SW_TLS_PRIORITY  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Largest plaintext in one record (RFC 8446 §5.1). */
#define SW_TLS_RECORD_MAX  16384

/* 0-RTT: what a resuming client may send before the handshake, and how
 * many tickets the server remembers against replay. */
#define SW_TLS_EARLY_MAX   16384
#define SW_TLS_SEEN_MAX    1024

/*
 * The anti-replay window (RFC 8446 §8.2): how far the server's view of a
 * ticket's age may run ahead of the client's.  That gap is the ticket's
 * trip to the client plus the ClientHello's trip back, queueing included:
 * seconds on Iridium, more on HF, where GnuTLS's 10 s refused 0-RTT.
 */
#define SW_TLS_REPLAY_WINDOW_MS  300000

typedef struct sw_tls_seen_s {
    time_t          expires;
    size_t          len;
    unsigned char  *key;
} sw_tls_seen_t;

struct sw_tls_ctx_s {
    gnutls_certificate_credentials_t  cred;
    gnutls_priority_t                 prio;
    unsigned char                     pin[32];    /* peer's SHA-256 */
    bool                              pinned;     /* verify the peer */
    bool                              pin_set;    /* pin holds a value */
    char                             *ca_name;    /* CA-checked peer name */
    bool                              resumable;  /* tickets both ways */
    gnutls_datum_t                    ticket_key; /* ours, as a server */
    gnutls_datum_t                    resume;     /* last ticket, client */
    gnutls_anti_replay_t              anti_replay;
    sw_tls_seen_t                    *seen;       /* its memory */
    size_t                            n_seen;
};

typedef struct sw_tls_s {
    sw_layer_t                        layer;
    gnutls_session_t                  session;
    gnutls_certificate_credentials_t  own_cred;   /* client without ctx */
    sw_buf_t                          in;         /* ciphertext kept */
    const char                       *cur;        /* ciphertext of this read */
    size_t                            cur_len;
    sw_buf_t                          early_out;  /* written before secured */
    unsigned                          server:1;
    unsigned                          handshaken:1;
    unsigned                          bye_sent:1;
    unsigned                          ticket:1;   /* one came: keep it */
    unsigned                          deferred:1; /* client: starts at the
                                                     first flush, with its
                                                     data as 0-RTT */
    size_t                            zero_rtt;   /* early_out sent so */
    char                              desc[64];
} sw_tls_t;

/* ------------------------------------------------------------- pinning --- */

static void
sw_tls_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The peer's certificate must be the pinned one (SHA-256 of its DER). */
static int
sw_tls_verify(gnutls_session_t session)
{
    sw_tls_ctx_t         *ctx = gnutls_session_get_ptr(session);
    sw_tls_t             *t = gnutls_transport_get_ptr(session);
    const gnutls_datum_t *certs;
    unsigned              n = 0;
    unsigned char         fp[32];
    char                  hex[65];

    if (ctx->ca_name != NULL) {
        unsigned       status = 0;
        gnutls_datum_t why = { NULL, 0 };

        /* RFC 6125 name check plus the chain, against the trusted CAs */
        if (gnutls_certificate_verify_peers3(session, ctx->ca_name, &status)
                != 0
            || status != 0)
        {
            gnutls_certificate_verification_status_print(
                status, GNUTLS_CRT_X509, &why, 0);
            sw_log_warn("conn %s: TLS: refused the peer's certificate for "
                        "%s: %s", sw_conn_peer(t->layer.conn), ctx->ca_name,
                        why.data ? (const char *) why.data : "not valid");
            gnutls_free(why.data);
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
        if (!ctx->pin_set) {
            return 0;
        }
    }
    certs = gnutls_certificate_get_peers(session, &n);
    if (certs == NULL || n == 0) {
        sw_log_warn("conn %s: TLS: the peer presented no certificate, and "
                    "its certificate is pinned", sw_conn_peer(t->layer.conn));
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, fp)
            != 0
        || memcmp(fp, ctx->pin, sizeof(fp)) != 0)
    {
        sw_tls_hex(fp, sizeof(fp), hex);
        sw_log_warn("conn %s: TLS: refused the peer's certificate: its "
                    "SHA-256 fingerprint %s is not the pinned one",
                    sw_conn_peer(t->layer.conn), hex);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    return 0;
}

int
sw_tls_ctx_pin_peer(sw_tls_ctx_t *ctx, const char *sha256)
{
    size_t i = 0;
    int    hi = -1, v;

    for (; *sha256 != '\0'; sha256++) {
        char ch = *sha256;

        if (ch == ':' || ch == ' ') {
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            v = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            v = ch - 'a' + 10;
        } else if (ch >= 'A' && ch <= 'F') {
            v = ch - 'A' + 10;
        } else {
            return SW_ERROR;
        }
        if (hi < 0) {
            hi = v;
        } else {
            if (i == sizeof(ctx->pin)) {
                return SW_ERROR;
            }
            ctx->pin[i++] = (unsigned char) (hi << 4 | v);
            hi = -1;
        }
    }
    if (i != sizeof(ctx->pin) || hi >= 0) {
        return SW_ERROR;
    }
    ctx->pinned = true;
    ctx->pin_set = true;
    return SW_OK;
}

int
sw_tls_ctx_trust_ca(sw_tls_ctx_t *ctx, const char *ca_file,
                    const char *peer_name)
{
    int rc = gnutls_certificate_set_x509_trust_file(ctx->cred, ca_file,
                                                    GNUTLS_X509_FMT_PEM);

    if (rc <= 0) {
        sw_log_error("TLS: no CA certificate loaded from %s: %s", ca_file,
                     rc < 0 ? gnutls_strerror(rc) : "the file has none");
        return SW_ERROR;
    }
    free(ctx->ca_name);
    ctx->ca_name = sw_strdup(peer_name);
    ctx->pinned = true;     /* "verify the peer" */
    return SW_OK;
}

char *
sw_tls_cert_fingerprint(const char *cert_file)
{
    gnutls_datum_t     pem = { NULL, 0 }, der = { NULL, 0 };
    gnutls_x509_crt_t  crt = NULL;
    unsigned char      fp[32];
    char              *hex = NULL;

    if (gnutls_load_file(cert_file, &pem) == 0
        && gnutls_x509_crt_init(&crt) == 0
        && gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0
        && gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) == 0
        && gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, fp) == 0)
    {
        hex = sw_alloc(65);
        sw_tls_hex(fp, sizeof(fp), hex);
    }
    if (crt != NULL) {
        gnutls_x509_crt_deinit(crt);
    }
    gnutls_free(pem.data);
    gnutls_free(der.data);
    return hex;
}

/* ----------------------------------------------------------- transport --- */

static ssize_t
sw_tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    sw_tls_t  *t = ptr;

    if (sw_conn_layer_down(&t->layer, data, len) != SW_OK) {
        gnutls_transport_set_errno(t->session, EPIPE);
        return -1;
    }
    return (ssize_t) len;
}

static ssize_t
sw_tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
    sw_tls_t  *t = ptr;
    size_t     n;

    if (t->in.len > 0) {
        n = size < t->in.len ? size : t->in.len;
        memcpy(data, t->in.data, n);
        sw_buf_consume(&t->in, n);
        return (ssize_t) n;
    }
    if (t->cur_len > 0) {
        n = size < t->cur_len ? size : t->cur_len;
        memcpy(data, t->cur, n);
        t->cur += n;
        t->cur_len -= n;
        return (ssize_t) n;
    }
    gnutls_transport_set_errno(t->session, EAGAIN);
    return -1;
}

/* Without this GnuTLS would select() on the transport pointer as an fd. */
static int
sw_tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    sw_tls_t  *t = ptr;

    return t->in.len + t->cur_len > 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- layer --- */

static void
sw_tls_fail(sw_tls_t *t, int rc, const char *what)
{
    sw_conn_t  *c = t->layer.conn;

    if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        sw_conn_fail(c, rc, "%s: TLS alert from peer: %s", what,
                     gnutls_alert_get_name(gnutls_alert_get(t->session)));
        return;
    }
    /* Tell the peer why, if the socket still takes bytes. */
    if (sw_conn_writable(c) && rc != GNUTLS_E_PUSH_ERROR) {
        gnutls_alert_send_appropriate(t->session, rc);
    }
    sw_conn_fail(c, rc, "%s: %s", what, gnutls_strerror(rc));
}

static int
sw_tls_send(sw_tls_t *t, const char *data, size_t len)
{
    ssize_t  n;

    while (len > 0) {
        n = gnutls_record_send(t->session, data, len);
        if (n == GNUTLS_E_INTERRUPTED) {
            continue;
        }
        if (n < 0) {
            /* Push never says EAGAIN (the socket queues), so any error
             * here is final. */
            sw_tls_fail(t, (int) n, "TLS send");
            return SW_ERROR;
        }
        data += n;
        len -= (size_t) n;
    }
    return SW_OK;
}

static void
sw_tls_set_desc(sw_tls_t *t)
{
    const char  *proto, *cipher;

    proto = gnutls_protocol_get_name(gnutls_protocol_get_version(t->session));
    cipher = gnutls_cipher_get_name(gnutls_cipher_get(t->session));
    snprintf(t->desc, sizeof(t->desc), "%s/%s%s%s", proto ? proto : "TLS",
             cipher ? cipher : "?",
             gnutls_session_is_resumed(t->session) ? ", resumed" : "",
             gnutls_session_get_flags(t->session) & GNUTLS_SFLAGS_EARLY_DATA
             ? ", 0-RTT" : "");
}

/*
 * TLS 1.3 sends tickets after the handshake (RFC 8446 §4.6.1).  The hook
 * only notes one came: gnutls_session_get_data2() called in it would read
 * on from the transport itself, swallowing application records into
 * GnuTLS's buffers behind our back.  sw_tls_keep_ticket() takes it after
 * the record layer has returned.
 */
static int
sw_tls_on_ticket(gnutls_session_t session, unsigned htype, unsigned when,
                 unsigned incoming, const gnutls_datum_t *msg)
{
    sw_tls_t *t = gnutls_transport_get_ptr(session);

    (void) htype;
    (void) when;
    (void) incoming;
    (void) msg;
    t->ticket = 1;
    return 0;
}

/* Keeps the newest ticket, so the next connection made with this
 * context resumes. */
static void
sw_tls_keep_ticket(sw_tls_t *t)
{
    sw_tls_ctx_t   *ctx = gnutls_session_get_ptr(t->session);
    gnutls_datum_t  data = { NULL, 0 };

    t->ticket = 0;
    if (ctx != NULL && gnutls_session_get_data2(t->session, &data) == 0) {
        gnutls_free(ctx->resume.data);
        ctx->resume = data;
    }
}

/* Ciphertext we hold that GnuTLS has not pulled yet. */
static size_t
sw_tls_unread(const sw_tls_t *t)
{
    return t->cur_len + t->in.len;
}

/*
 * A server hands up early data (0-RTT) as it comes, before the client's
 * Finished: that is its point.  It is sealed with a key from the ticket
 * the peer got in a fully verified handshake, and replay is refused by
 * the ticket memory (links are also immune: sequence numbers).
 */
static void
sw_tls_early_up(sw_tls_t *t)
{
    char     buf[SW_TLS_RECORD_MAX];
    ssize_t  n;

    if (!t->server) {
        return;
    }
    while (sw_conn_reading(t->layer.conn)
           && (n = gnutls_record_recv_early_data(t->session, buf,
                                                 sizeof(buf))) > 0)
    {
        sw_conn_layer_up(&t->layer, buf, (size_t) n);
    }
}

static int sw_tls_process(sw_tls_t *t);

/* A resuming client's first flush: what was written so far rides in the
 * first flight as early data (RFC 8446 §2.3), then the handshake. */
static int
sw_tls_start_deferred(sw_tls_t *t)
{
    size_t   max = gnutls_record_get_max_early_data_size(t->session);
    size_t   n = t->early_out.len < max ? t->early_out.len : max;
    ssize_t  sent;

    t->deferred = 0;
    if (n > 0) {
        /* GnuTLS 3.7 returns 0 once it holds all of it, later ones n */
        sent = gnutls_record_send_early_data(t->session, t->early_out.data,
                                             n);
        if (sent == 0 || sent == (ssize_t) n) {
            t->zero_rtt = n;
            sw_log_debug("conn %s: TLS: %zu bytes as early data",
                         sw_conn_peer(t->layer.conn), n);
        }
    }
    return sw_tls_process(t);
}

static int
sw_tls_handshake(sw_tls_t *t)
{
    sw_conn_t  *c = t->layer.conn;
    int         rc;

    for ( ;; ) {
        size_t left = sw_tls_unread(t);

        rc = gnutls_handshake(t->session);
        if (rc == GNUTLS_E_SUCCESS) {
            break;
        }
        if (rc == GNUTLS_E_AGAIN) {
            sw_tls_early_up(t);
            /* Also what skipping a record returns (early data sealed
             * with a ticket we cannot open): go on while it reads. */
            if (sw_tls_unread(t) > 0 && sw_tls_unread(t) < left) {
                continue;
            }
            return SW_AGAIN;
        }
        if (gnutls_error_is_fatal(rc)) {
            sw_tls_fail(t, rc, "TLS handshake failed");
            return SW_ERROR;
        }
        /* Warning alerts and interruptions: go on. */
    }

    t->handshaken = 1;
    sw_tls_early_up(t);
    sw_tls_set_desc(t);
    sw_log_debug("conn %s: %s", sw_conn_peer(c), t->desc);

    if (t->zero_rtt > 0) {
        if (gnutls_session_get_flags(t->session) & GNUTLS_SFLAGS_EARLY_DATA) {
            sw_buf_consume(&t->early_out, t->zero_rtt);
        } else {
            /* refused (RFC 8446 §4.2.10): it all goes again now */
            sw_log_info("conn %s: TLS: the peer refused early data (%zu "
                        "bytes): sent again", sw_conn_peer(c), t->zero_rtt);
        }
        t->zero_rtt = 0;
    }
    /* What the user wrote during the handshake goes first. */
    if (t->early_out.len > 0) {
        rc = sw_tls_send(t, t->early_out.data, t->early_out.len);
        sw_buf_free(&t->early_out);
        if (rc != SW_OK) {
            return SW_ERROR;
        }
    }
    sw_conn_secured(c);
    return SW_OK;
}

static int
sw_tls_process(sw_tls_t *t)
{
    sw_conn_t  *c = t->layer.conn;
    char        buf[SW_TLS_RECORD_MAX];
    ssize_t     n;
    int         rc;

    if (!t->handshaken) {
        rc = sw_tls_handshake(t);
        if (rc != SW_OK) {
            return rc == SW_AGAIN ? SW_OK : rc;
        }
    }

    while (sw_conn_reading(c)) {
        size_t left = sw_tls_unread(t);

        n = gnutls_record_recv(t->session, buf, sizeof(buf));
        if (n > 0) {
            sw_conn_layer_up(&t->layer, buf, (size_t) n);
            continue;
        }
        if (n == 0) {
            /* close_notify: an orderly end (RFC 8446 §6.1). */
            sw_conn_peer_closed(c, "TLS close_notify from peer");
            return SW_DONE;
        }
        if (n == GNUTLS_E_AGAIN) {
            /* Also what a post-handshake message (a TLS 1.3 ticket, a
             * key update) returns: records behind it wait in our
             * buffers, so go on until the ciphertext is used up. */
            if ((sw_tls_unread(t) > 0 && sw_tls_unread(t) < left)
                || gnutls_record_check_pending(t->session) > 0)
            {
                continue;
            }
            break;
        }
        if (gnutls_error_is_fatal((int) n)) {
            sw_tls_fail(t, (int) n, "TLS receive");
            return SW_ERROR;
        }
        /* Non-fatal: warning alerts, a renegotiation request (refused by
         * ignoring it), post-handshake messages.  Go on. */
    }
    if (t->ticket) {
        sw_tls_keep_ticket(t);
    }
    return SW_OK;
}

static int
sw_tls_on_read(sw_layer_t *l, const char *data, size_t len)
{
    sw_tls_t  *t = (sw_tls_t *) l;
    int        rc;

    if (data != NULL && len > 0) {
        if (t->in.len > 0) {
            sw_buf_append(&t->in, data, len);
        } else {
            t->cur = data;
            t->cur_len = len;
        }
    }

    rc = t->deferred ? sw_tls_start_deferred(t) : sw_tls_process(t);

    /* Keep what GnuTLS did not read (a partial record, or the rest while
     * paused); the read buffer is borrowed. */
    if (t->cur_len > 0) {
        sw_buf_append(&t->in, t->cur, t->cur_len);
    }
    t->cur = NULL;
    t->cur_len = 0;
    if (t->in.len == 0) {
        sw_buf_free(&t->in);
    }
    return rc;
}

static int
sw_tls_write(sw_layer_t *l, const char *data, size_t len)
{
    sw_tls_t  *t = (sw_tls_t *) l;

    if (!t->handshaken) {
        sw_buf_append(&t->early_out, data, len);
        return SW_OK;
    }
    return sw_tls_send(t, data, len);
}

static int
sw_tls_flush(sw_layer_t *l)
{
    sw_tls_t  *t = (sw_tls_t *) l;

    if (t->deferred && sw_tls_start_deferred(t) == SW_ERROR) {
        return SW_ERROR;
    }
    if (l->below != NULL && l->below->flush != NULL) {
        return l->below->flush(l->below);
    }
    return SW_OK;
}

static void
sw_tls_shutdown(sw_layer_t *l)
{
    sw_tls_t  *t = (sw_tls_t *) l;

    if (t->handshaken && !t->bye_sent && sw_conn_writable(l->conn)) {
        t->bye_sent = 1;
        /* SHUT_WR: send close_notify, do not wait for the peer's. */
        gnutls_bye(t->session, GNUTLS_SHUT_WR);
    }
}

static void
sw_tls_free(sw_layer_t *l)
{
    sw_tls_t  *t = (sw_tls_t *) l;

    gnutls_deinit(t->session);
    if (t->own_cred != NULL) {
        gnutls_certificate_free_credentials(t->own_cred);
    }
    sw_buf_free(&t->in);
    sw_buf_free(&t->early_out);
    free(t);
}

static sw_tls_t *
sw_tls_get(const sw_conn_t *c)
{
    return (sw_tls_t *) sw_conn_find_layer(c, SW_LAYER_TLS);
}

/*
 * Resumption (RFC 8446 §2.2): a server issues tickets sealed with the
 * context's key; a client offers the last ticket it got.  A resumed
 * handshake carries no certificates: it proves the peer is the one that
 * passed the full check when the ticket was issued.  A peer that does
 * not take the ticket (restarted, key changed) gets a full handshake.
 */
static int
sw_tls_resumption(sw_tls_t *t, sw_tls_ctx_t *ctx, bool server)
{
    if (server) {
        gnutls_anti_replay_enable(t->session, ctx->anti_replay);
        gnutls_record_set_max_early_data_size(t->session, SW_TLS_EARLY_MAX);
        return gnutls_session_ticket_enable_server(t->session,
                                                   &ctx->ticket_key);
    }
    gnutls_handshake_set_hook_function(t->session,
                                       GNUTLS_HANDSHAKE_NEW_SESSION_TICKET,
                                       GNUTLS_HOOK_POST, sw_tls_on_ticket);
    if (ctx->resume.size > 0
        && gnutls_session_set_data(t->session, ctx->resume.data,
                                   ctx->resume.size) != GNUTLS_E_SUCCESS)
    {
        /* stale or damaged: forget it, a full handshake follows */
        gnutls_free(ctx->resume.data);
        ctx->resume.data = NULL;
        ctx->resume.size = 0;
    } else if (ctx->resume.size > 0) {
        t->deferred = 1;
    }
    return GNUTLS_E_SUCCESS;
}

/* ---------------------------------------------------------- public API --- */

int
sw_conn_start_tls(sw_conn_t *c, sw_tls_ctx_t *ctx, bool server,
                  const char *server_name, const char *early,
                  size_t early_len)
{
    sw_tls_t                          *t;
    gnutls_certificate_credentials_t   cred;
    int                                rc;

    if (sw_tls_get(c) != NULL) {
        sw_log_error("conn %s: TLS already started", sw_conn_peer(c));
        return SW_ERROR;
    }
    if (server && ctx == NULL) {
        sw_log_error("conn %s: TLS server needs a certificate",
                     sw_conn_peer(c));
        return SW_ERROR;
    }
    if (!sw_conn_writable(c)) {
        return SW_ERROR;        /* closing */
    }

    t = sw_calloc(1, sizeof(*t));
    t->layer.kind = SW_LAYER_TLS;
    t->layer.write = sw_tls_write;
    t->layer.on_read = sw_tls_on_read;
    t->layer.flush = sw_tls_flush;
    t->layer.shutdown = sw_tls_shutdown;
    t->layer.free = sw_tls_free;
    t->server = server;
    sw_buf_init(&t->in);
    sw_buf_init(&t->early_out);

    rc = gnutls_init(&t->session,
                     (server ? GNUTLS_SERVER : GNUTLS_CLIENT)
                     | GNUTLS_NONBLOCK
                     | (ctx != NULL && ctx->resumable
                        ? GNUTLS_ENABLE_EARLY_DATA : 0));
    if (rc != GNUTLS_E_SUCCESS) {
        sw_log_error("conn %s: gnutls_init: %s", sw_conn_peer(c),
                     gnutls_strerror(rc));
        free(t);
        return SW_ERROR;
    }

    if (ctx != NULL) {
        cred = ctx->cred;
        rc = gnutls_priority_set(t->session, ctx->prio);
        gnutls_session_set_ptr(t->session, ctx);
        if (rc == GNUTLS_E_SUCCESS && ctx->pinned) {
            /* Both ends present and check certificates; the check runs
             * inside the handshake, so nothing is sent to a wrong peer. */
            gnutls_session_set_verify_function(t->session, sw_tls_verify);
            if (server) {
                gnutls_certificate_server_set_request(t->session,
                                                      GNUTLS_CERT_REQUIRE);
            }
        }
        if (rc == GNUTLS_E_SUCCESS && ctx->resumable) {
            rc = sw_tls_resumption(t, ctx, server);
        }
    } else {
        /* A client with nothing to present and, without a CA to check
         * against, nothing to verify (links pin certificates above). */
        rc = gnutls_certificate_allocate_credentials(&t->own_cred);
        if (rc == GNUTLS_E_SUCCESS) {
            rc = gnutls_priority_set_direct(t->session, SW_TLS_PRIORITY,
                                            NULL);
        }
        cred = t->own_cred;
    }
    if (rc == GNUTLS_E_SUCCESS) {
        rc = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, cred);
    }
    if (rc == GNUTLS_E_SUCCESS && !server && server_name != NULL) {
        /* SNI (RFC 6066 §3), so the server picks the right certificate. */
        rc = gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, server_name,
                                    strlen(server_name));
    }
    if (rc != GNUTLS_E_SUCCESS) {
        sw_log_error("conn %s: TLS setup: %s", sw_conn_peer(c),
                     gnutls_strerror(rc));
        sw_tls_free(&t->layer);
        return SW_ERROR;
    }

    gnutls_transport_set_ptr(t->session, t);
    gnutls_transport_set_push_function(t->session, sw_tls_push);
    gnutls_transport_set_pull_function(t->session, sw_tls_pull);
    gnutls_transport_set_pull_timeout_function(t->session,
                                               sw_tls_pull_timeout);

    sw_conn_push_layer(c, &t->layer);

    /* A client speaks first (ClientHello) -- a resuming one at its first
     * flush, with what it wrote by then; a server may already hold the
     * start of a ClientHello. */
    if (t->deferred) {
        return SW_OK;
    }
    return sw_tls_on_read(&t->layer, early, early_len) == SW_ERROR
           ? SW_ERROR : SW_OK;
}

bool
sw_conn_is_tls(const sw_conn_t *c)
{
    return sw_tls_get(c) != NULL;
}

bool
sw_conn_tls_done(const sw_conn_t *c)
{
    sw_tls_t *t = sw_tls_get(c);

    return t == NULL || t->handshaken;
}

char *
sw_conn_channel_binding(sw_conn_t *c, const char *type)
{
    sw_tls_t                  *t = sw_tls_get(c);
    gnutls_channel_binding_t   cbt;
    gnutls_datum_t             cb, b64;
    char                      *out;
    int                        rc;

    if (t == NULL || !t->handshaken || type == NULL) {
        return NULL;
    }
    if (strcmp(type, "tls-exporter") == 0) {
        cbt = GNUTLS_CB_TLS_EXPORTER;               /* RFC 9266 */
    } else if (strcmp(type, "tls-unique") == 0) {
        cbt = GNUTLS_CB_TLS_UNIQUE;                 /* RFC 5929 §3 */
    } else if (strcmp(type, "tls-server-end-point") == 0) {
        cbt = GNUTLS_CB_TLS_SERVER_END_POINT;       /* RFC 5929 §4 */
    } else {
        return NULL;
    }

    rc = gnutls_session_channel_binding(t->session, cbt, &cb);
    if (rc != GNUTLS_E_SUCCESS) {
        return NULL;
    }
    rc = gnutls_base64_encode2(&cb, &b64);
    gnutls_free(cb.data);
    if (rc != GNUTLS_E_SUCCESS) {
        return NULL;
    }
    out = sw_strndup((const char *) b64.data, b64.size);
    gnutls_free(b64.data);
    return out;
}

const char *
sw_conn_tls_desc(const sw_conn_t *c)
{
    sw_tls_t  *t = sw_tls_get(c);

    if (t == NULL) {
        return "plaintext";
    }
    return t->handshaken ? t->desc : "TLS handshake";
}

/* ------------------------------------------------------------- contexts --- */

sw_tls_ctx_t *
sw_tls_ctx_new(const char *cert_file, const char *key_file)
{
    sw_tls_ctx_t  *ctx;
    const char    *err = NULL;
    int            rc;

    ctx = sw_calloc(1, sizeof(*ctx));
    rc = gnutls_certificate_allocate_credentials(&ctx->cred);
    if (rc != GNUTLS_E_SUCCESS) {
        sw_log_error("TLS credentials: %s", gnutls_strerror(rc));
        free(ctx);
        return NULL;
    }
    rc = gnutls_certificate_set_x509_key_file2(ctx->cred, cert_file,
                                               key_file, GNUTLS_X509_FMT_PEM,
                                               NULL, 0);
    if (rc < 0) {
        sw_log_error("TLS: cannot load certificate %s with key %s: %s",
                     cert_file, key_file, gnutls_strerror(rc));
        goto failed;
    }
    rc = gnutls_priority_init2(&ctx->prio, SW_TLS_PRIORITY, &err, 0);
    if (rc != GNUTLS_E_SUCCESS) {
        sw_log_error("TLS priority \"%s\" (at \"%s\"): %s", SW_TLS_PRIORITY,
                     err ? err : "?", gnutls_strerror(rc));
        goto failed;
    }
    return ctx;

failed:
    gnutls_certificate_free_credentials(ctx->cred);
    free(ctx);
    return NULL;
}

/*
 * GnuTLS's anti-replay memory for 0-RTT (RFC 8446 §8.2): a ClientHello
 * seen before within its window is refused early data (a full handshake
 * follows, nothing is lost).
 */
static int
sw_tls_seen_add(void *ptr, time_t expires, const gnutls_datum_t *key,
                const gnutls_datum_t *data)
{
    sw_tls_ctx_t *ctx = ptr;
    time_t        now = time(NULL);
    size_t        i, j;

    (void) data;
    for (i = j = 0; i < ctx->n_seen; i++) {
        sw_tls_seen_t *e = &ctx->seen[i];

        if (e->expires < now) {
            free(e->key);
            continue;
        }
        if (e->len == key->size && memcmp(e->key, key->data, e->len) == 0) {
            /* keep the rest as they are: entries i.. stay */
            for (; i < ctx->n_seen; i++) {
                ctx->seen[j++] = ctx->seen[i];
            }
            ctx->n_seen = j;
            return GNUTLS_E_DB_ENTRY_EXISTS;
        }
        ctx->seen[j++] = *e;
    }
    ctx->n_seen = j;
    if (ctx->n_seen == SW_TLS_SEEN_MAX) {
        return GNUTLS_E_DB_ENTRY_EXISTS;    /* full: no 0-RTT for now */
    }
    if (ctx->seen == NULL) {
        ctx->seen = sw_calloc(SW_TLS_SEEN_MAX, sizeof(*ctx->seen));
    }
    ctx->seen[ctx->n_seen].expires = expires;
    ctx->seen[ctx->n_seen].len = key->size;
    ctx->seen[ctx->n_seen].key = sw_alloc(key->size);
    memcpy(ctx->seen[ctx->n_seen].key, key->data, key->size);
    ctx->n_seen++;
    return 0;
}

int
sw_tls_ctx_resumable(sw_tls_ctx_t *ctx)
{
    int rc;

    if (ctx->resumable) {
        return SW_OK;
    }
    rc = gnutls_session_ticket_key_generate(&ctx->ticket_key);
    if (rc == GNUTLS_E_SUCCESS) {
        rc = gnutls_anti_replay_init(&ctx->anti_replay);
    }
    if (rc != GNUTLS_E_SUCCESS) {
        sw_log_error("TLS: no session tickets: %s", gnutls_strerror(rc));
        return SW_ERROR;
    }
    gnutls_anti_replay_set_window(ctx->anti_replay, SW_TLS_REPLAY_WINDOW_MS);
    gnutls_anti_replay_set_add_function(ctx->anti_replay, sw_tls_seen_add);
    gnutls_anti_replay_set_ptr(ctx->anti_replay, ctx);
    ctx->resumable = true;
    return SW_OK;
}

void
sw_tls_ctx_free(sw_tls_ctx_t *ctx)
{
    size_t i;

    if (ctx == NULL) {
        return;
    }
    if (ctx->ticket_key.data != NULL) {
        gnutls_memset(ctx->ticket_key.data, 0, ctx->ticket_key.size);
        gnutls_free(ctx->ticket_key.data);
    }
    gnutls_free(ctx->resume.data);
    if (ctx->anti_replay != NULL) {
        gnutls_anti_replay_deinit(ctx->anti_replay);
    }
    for (i = 0; i < ctx->n_seen; i++) {
        free(ctx->seen[i].key);
    }
    free(ctx->seen);
    gnutls_priority_deinit(ctx->prio);
    gnutls_certificate_free_credentials(ctx->cred);
    free(ctx->ca_name);
    free(ctx);
}

/* ---------------------------------------------------- self-signed certs --- */

/* Writes data to path atomically (temporary file, then rename) with mode. */
static int
sw_tls_write_file(const char *path, const gnutls_datum_t *data, mode_t mode)
{
    size_t   len = strlen(path) + sizeof(".XXXXXX");
    char    *tmp = sw_alloc(len);
    size_t   off = 0;
    ssize_t  n;
    int      fd;

    snprintf(tmp, len, "%s.XXXXXX", path);
    fd = mkstemp(tmp);      /* created 0600: the key is never readable */
    if (fd < 0) {
        sw_log_error("cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return SW_ERROR;
    }
    while (off < data->size) {
        n = write(fd, data->data + off, data->size - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto failed;
        }
        off += (size_t) n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        goto failed;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto failed;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto failed;
    }
    free(tmp);
    return SW_OK;

failed:
    sw_log_error("cannot write %s: %s", path, strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    free(tmp);
    return SW_ERROR;
}

int
sw_tls_make_self_signed(const char *cert_file, const char *key_file,
                        const char *const *names)
{
    gnutls_x509_privkey_t   key = NULL;
    gnutls_x509_crt_t       crt = NULL;
    gnutls_datum_t          cert_pem = { NULL, 0 }, key_pem = { NULL, 0 };
    unsigned char           serial[16], key_id[64];
    size_t                  key_id_len = sizeof(key_id);
    time_t                  now = time(NULL);
    const char *const      *name;
    const char             *step;
    int                     rc, ret = SW_ERROR;

    if (names == NULL || names[0] == NULL || names[0][0] == '\0') {
        sw_log_error("self-signed certificate: no name given");
        return SW_ERROR;
    }

    step = "key";
    rc = gnutls_x509_privkey_init(&key);
    if (rc < 0) {
        goto failed;
    }
    rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(
                                          GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (rc < 0) {
        goto failed;
    }

    step = "certificate";
    rc = gnutls_x509_crt_init(&crt);
    if (rc < 0) {
        goto failed;
    }
    rc = gnutls_x509_crt_set_version(crt, 3);
    if (rc < 0) {
        goto failed;
    }

    /* RFC 5280 §4.1.2.2: positive, unique, at most 20 octets. */
    step = "serial";
    rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    if (rc < 0) {
        goto failed;
    }
    serial[0] = (unsigned char) ((serial[0] & 0x7f) | 0x01);
    rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    if (rc < 0) {
        goto failed;
    }

    /* Valid from an hour ago (clock skew) for ten years. */
    step = "validity";
    rc = gnutls_x509_crt_set_activation_time(crt, now - 3600);
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_expiration_time(crt,
                                                 now + 3653L * 24 * 3600);
    }
    if (rc < 0) {
        goto failed;
    }

    step = "names";
    rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                       names[0], strlen(names[0]));
    if (rc < 0) {
        goto failed;
    }
    for (name = names; *name != NULL; name++) {
        rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
                                                  *name, strlen(*name),
                                                  GNUTLS_FSAN_APPEND);
        if (rc < 0) {
            goto failed;
        }
    }

    step = "extensions";
    rc = gnutls_x509_crt_set_key(crt, key);
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
                                                 0);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT,
                                                 0);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_get_key_id(crt, 0, key_id, &key_id_len);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_len);
    }
    if (rc < 0) {
        goto failed;
    }

    step = "signature";
    rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    if (rc < 0) {
        goto failed;
    }

    step = "export";
    rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem);
    if (rc >= 0) {
        rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                               GNUTLS_PKCS_PLAIN, &key_pem);
    }
    if (rc < 0) {
        goto failed;
    }

    /* The key first: a certificate without its key is useless. */
    if (sw_tls_write_file(key_file, &key_pem, 0600) == SW_OK
        && sw_tls_write_file(cert_file, &cert_pem, 0644) == SW_OK)
    {
        ret = SW_OK;
    }
    goto done;

failed:
    sw_log_error("self-signed certificate for %s: %s: %s", names[0], step,
                 gnutls_strerror(rc));

done:
    if (key_pem.data != NULL) {
        gnutls_memset(key_pem.data, 0, key_pem.size);
        gnutls_free(key_pem.data);
    }
    gnutls_free(cert_pem.data);
    if (crt != NULL) {
        gnutls_x509_crt_deinit(crt);
    }
    if (key != NULL) {
        gnutls_x509_privkey_deinit(key);
    }
    return ret;
}
