/*
 * Connections: a byte stream (an "io") under a stack of layers.
 *
 *   io <-> [TLS (GnuTLS)] <-> [DEFLATE (zlib)] <-> user callbacks
 *
 * Bytes written by the user go down through each layer to the io; bytes
 * read go up.  Layers are pushed on top of the io at run time (STARTTLS:
 * sw_conn_start_tls after <proceed/>; XEP-0361 links push TLS at once).
 * c2s and peer links use this.  The io is a TCP socket (sw_conn_new) or
 * anything a module supplies through sw_io_ops_t (sw_conn_new_io): a
 * pipe to a command, a serial line, the block transport adapter of the
 * link layer.  doc/transport-api.md has a worked example.
 */
#ifndef SKYWAVE_SW_CONN_H
#define SKYWAVE_SW_CONN_H

#include <uv.h>
#include <skywave/sw_core.h>

typedef struct sw_conn_s    sw_conn_t;
typedef struct sw_tls_ctx_s sw_tls_ctx_t;

typedef struct sw_conn_cb_s {
    /* Plaintext bytes from the top layer (borrowed for the call). */
    void (*data)(sw_conn_t *c, const char *data, size_t len, void *ud);
    /* TLS handshake finished (for both sides). */
    void (*secured)(sw_conn_t *c, void *ud);
    /* All written bytes were handed to the kernel (backpressure). */
    void (*drained)(sw_conn_t *c, void *ud);
    /* The connection is closed: error is 0 for an orderly close by either
     * side, else a libuv or GnuTLS error code; reason is text for logs.
     * c is freed right after this returns. */
    void (*closed)(sw_conn_t *c, int error, const char *reason, void *ud);
} sw_conn_cb_t;

/* Parses an IPv4 or IPv6 literal (no brackets) with port into sa.
 * SW_OK, or SW_ERROR when ip is not an address. */
int sw_ip_addr(const char *ip, int port, struct sockaddr_storage *sa);
/*
 * Binds tcp (initialised on its loop) to ip:port and listens.  IPv6
 * sockets are v6-only, so "0.0.0.0" and "::" can both be bound.  Returns
 * 0, UV_EINVAL for a bad address, or the libuv error of bind/listen.
 */
int sw_tcp_listen(uv_tcp_t *tcp, const char *ip, int port, int backlog,
                  uv_connection_cb cb);

/*
 * A TCP listener on ip:port (IPv6 v6-only, as sw_tcp_listen).  Each
 * accepted socket (TCP_NODELAY set) goes to cb with the peer's address
 * in words ("192.0.2.1", "2001:db8::1"); cb takes the handle: wraps it
 * (sw_conn_new) or refuses it (sw_tcp_refuse).  who names the owner in
 * logs ("c2s: listening on ..." is the caller's to log; failures are
 * logged here: "c2s: cannot listen on 127.0.0.1:5222: address already
 * in use").  NULL after logging why.
 */
typedef struct sw_listener_s sw_listener_t;
typedef void (*sw_accept_pt)(sw_listener_t *ls, uv_tcp_t *tcp,
                             const char *ip, void *ud);
sw_listener_t *sw_listener_new(const char *who, const char *ip, int port,
                               int backlog, sw_accept_pt cb, void *ud);
/* Stops listening; freed from the loop. */
void sw_listener_close(sw_listener_t *ls);
/* "192.0.2.1:5222" or "[::1]:5222". */
const char *sw_listener_desc(const sw_listener_t *ls);
/* The listening socket (socket options), or -1. */
int sw_listener_fd(const sw_listener_t *ls);
/* Closes and frees an accepted handle that is not wanted. */
void sw_tcp_refuse(uv_tcp_t *tcp);

/* Wraps an accepted or connected handle (takes tcp, allocated with
 * sw_alloc and initialised on loop).  Starts reading. */
sw_conn_t *sw_conn_new(uv_tcp_t *tcp, const sw_conn_cb_t *cb, void *ud);

/*
 * An io: the byte stream beneath the layers.  The connection calls these
 * with the io pointer given to sw_conn_new_io; the io reports back with
 * the sw_conn_io_* calls below.  Errors are negative libuv codes (an
 * io's own failures map to the nearest one: UV_EPIPE, UV_EIO...).
 */
typedef struct sw_io_ops_s {
    const char *name;                       /* for logs: "tcp", "pipe" */
    /* Takes len > 0 bytes, copying what it does not hand on at once.
     * 0, or an error: the connection fails with it. */
    int    (*write)(void *io, const char *data, size_t len);
    /* Bytes taken by write and not yet handed on (to the kernel, the
     * device).  Bounded by sw_conn_set_max_pending(); when it falls to 0
     * after being more, the io calls sw_conn_io_drained(). */
    size_t (*pending)(void *io);
    /* Optional: the end of a batch (sw_conn_flush); a block io cuts a
     * block here.  0 or an error. */
    int    (*flush)(void *io);
    /* Start (on) or stop delivering input with sw_conn_io_input().  0 or
     * an error. */
    int    (*read)(void *io, bool on);
    /* Optional: orderly end.  Write out what is pending, end the output
     * (TCP: FIN), then call sw_conn_io_shutdown_done().  0, or an error
     * (the connection then closes at once).  Without it a flushing close
     * is a close. */
    int    (*shutdown)(void *io);
    /* Close now, dropping pending output.  Later, from a loop callback,
     * never from inside this call, the io calls sw_conn_io_closed() once,
     * and then frees itself: the connection is gone after that call. */
    void   (*close)(void *io);
    /* Optional: the far end in words, for logs ("1.2.3.4:5678"). */
    void   (*peer)(void *io, char *out, size_t size);
    /* Optional: a file descriptor (socket options, TCP_INFO), or -1. */
    int    (*fd)(void *io);
    /* Optional: of the bytes handed on, how many the far end has not
     * confirmed yet (TCP: sent or not, not acknowledged).  Without it,
     * bytes handed on count as confirmed. */
    size_t (*unconfirmed)(void *io);
} sw_io_ops_t;

/*
 * A connection over io (ops must outlive it).  Nothing calls back into
 * the io before this returns except ops->peer and ops->read(io, true),
 * so the io can learn its connection from the return value.  loop runs
 * the connection's own timers (sw_loop()).
 */
sw_conn_t *sw_conn_new_io(uv_loop_t *loop, const sw_io_ops_t *ops, void *io,
                          const sw_conn_cb_t *cb, void *ud);
/* From the io: bytes read (borrowed for the call). */
void sw_conn_io_input(sw_conn_t *c, const char *data, size_t len);
/* From the io: the far end ended its output (an orderly close). */
void sw_conn_io_eof(sw_conn_t *c);
/* From the io: it failed; the connection closes (error < 0). */
void sw_conn_io_error(sw_conn_t *c, int error, const char *reason);
/* From the io: pending output fell to 0. */
void sw_conn_io_drained(sw_conn_t *c);
/* From the io: the shutdown asked for is done (error 0) or failed. */
void sw_conn_io_shutdown_done(sw_conn_t *c, int error);
/* From the io, once, after close: c is freed here. */
void sw_conn_io_closed(sw_conn_t *c);
/* The io given to sw_conn_new_io (for TCP: internal), and its ops. */
void *sw_conn_io(const sw_conn_t *c);
const sw_io_ops_t *sw_conn_io_ops(const sw_conn_t *c);
/* The io's file descriptor, or -1. */
int sw_conn_fd(const sw_conn_t *c);
/* Writes bytes (copied) through the layers.  SW_OK or SW_ERROR. */
int sw_conn_write(sw_conn_t *c, const void *data, size_t len);
/* Flushes layers (DEFLATE: a partial flush, after which the peer can
 * decode everything written so far); no-op without them. */
int sw_conn_flush(sw_conn_t *c);
/* Bytes queued for the kernel and not yet written. */
size_t sw_conn_pending(const sw_conn_t *c);
/* Closes the connection (closed callback with UV_ENOBUFS, "slow reader")
 * when more than bytes wait for the kernel; 0 (the default): no bound. */
void sw_conn_set_max_pending(sw_conn_t *c, size_t bytes);
/*
 * Closes: flushes pending output (when flush), then TLS close_notify and
 * the socket.  The closed callback follows.  Idempotent.
 */
void sw_conn_close(sw_conn_t *c, bool flush);
/*
 * Closes at once, throwing away what the kernel still holds to send: a
 * socket sends a reset instead of retransmitting it (and a FIN) for
 * minutes (SO_LINGER 0, socket(7)).  For a connection that is dead or
 * replaced, whose unacknowledged data goes again elsewhere: over a slow
 * link the retransmissions into a dead peer take channel time.
 */
void sw_conn_close_reset(sw_conn_t *c);
/* Stop/resume reading (flow control). */
void sw_conn_pause_read(sw_conn_t *c, bool pause);
void sw_conn_set_data(sw_conn_t *c, void *ud);
/* Hands the connection to another owner (a transport to the link layer):
 * new callbacks (copied) and user data. */
void sw_conn_set_callbacks(sw_conn_t *c, const sw_conn_cb_t *cb, void *ud);
/* "1.2.3.4:5678" or "[::1]:5678". */
const char *sw_conn_peer(const sw_conn_t *c);
uint64_t sw_conn_bytes_in(const sw_conn_t *c);   /* at the io */
uint64_t sw_conn_bytes_out(const sw_conn_t *c);  /* handed on by the io */
/* Of them, those the far end confirmed (TCP: acknowledged; see
 * sw_io_ops_t.unconfirmed). */
uint64_t sw_conn_bytes_confirmed(const sw_conn_t *c);
/* Bytes given to the io so far, pending ones too: after sw_conn_flush,
 * the offset at which everything written before it ends on the wire. */
uint64_t sw_conn_bytes_given(const sw_conn_t *c);

/*
 * TLS.  server true: accept a handshake with ctx's certificate.  Bytes
 * already read but not consumed above (rare: a client that pipelines its
 * ClientHello after <starttls/>) are passed in early/early_len.  A client
 * whose ctx holds a ticket (sw_tls_ctx_resumable) sends its ClientHello at
 * the first sw_conn_flush(), with what was written by then as early data.
 */
int sw_conn_start_tls(sw_conn_t *c, sw_tls_ctx_t *ctx, bool server,
                      const char *server_name,
                      const char *early, size_t early_len);
bool sw_conn_is_tls(const sw_conn_t *c);
/* False while a TLS handshake is under way; true without TLS. */
bool sw_conn_tls_done(const sw_conn_t *c);
/* tls-exporter (RFC 9266) or tls-unique channel binding data, base64, for
 * SCRAM-*-PLUS; NULL when unavailable.  Returns new (free()). */
char *sw_conn_channel_binding(sw_conn_t *c, const char *type);
/* "TLS1.3/AES-256-GCM", for logs. */
const char *sw_conn_tls_desc(const sw_conn_t *c);

/* DEFLATE layer (RFC 1951 in a zlib stream, one long-lived window each
 * way).  dict: optional preset dictionary (both ends the same). */
int sw_conn_start_deflate(sw_conn_t *c, int level, const void *dict,
                          size_t dict_len);
/* zstd layer (RFC 8878: one long-lived frame each way, a block per
 * flush).  dict: optional dictionary (both ends the same; its ID is
 * checked in the peer's frame header). */
int sw_conn_start_zstd(sw_conn_t *c, int level, const void *dict,
                       size_t dict_len);

/*
 * TLS contexts.  Loads a PEM certificate chain and key.  Returns new, or
 * NULL after logging why.
 */
sw_tls_ctx_t *sw_tls_ctx_new(const char *cert_file, const char *key_file);
void sw_tls_ctx_free(sw_tls_ctx_t *ctx);
/*
 * Pins the peer: both ends of a connection made with ctx present their
 * certificates, and the handshake fails unless the peer's certificate has
 * this SHA-256 fingerprint (64 hex digits; colons allowed).  SW_OK, or
 * SW_ERROR for a malformed fingerprint.
 */
int sw_tls_ctx_pin_peer(sw_tls_ctx_t *ctx, const char *sha256);
/*
 * TLS 1.3 session resumption for the connections made with ctx: as a
 * server it issues tickets (sealed with a key made here, for the life of
 * the process), as a client it keeps the newest ticket and offers it on
 * the next connection, which then carries no certificates.
 */
int sw_tls_ctx_resumable(sw_tls_ctx_t *ctx);
/*
 * Verifies the peer against the CA certificates in ca_file (PEM): the
 * chain, and that the certificate is for peer_name (RFC 6125).  Both ends
 * present certificates.  Combined with a pin, both must hold.
 */
int sw_tls_ctx_trust_ca(sw_tls_ctx_t *ctx, const char *ca_file,
                        const char *peer_name);
/* SHA-256 fingerprint (hex) of a PEM certificate file; new, or NULL. */
char *sw_tls_cert_fingerprint(const char *cert_file);
/*
 * Generates a self-signed certificate (ECDSA P-256, 10 years) for the
 * given names and writes cert and key PEM files (key mode 0600).
 * SW_OK or SW_ERROR (logged).
 */
int sw_tls_make_self_signed(const char *cert_file, const char *key_file,
                            const char *const *names);

#endif
