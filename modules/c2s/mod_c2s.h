/* mod_c2s: private declarations shared by its files. */
#ifndef MOD_C2S_H
#define MOD_C2S_H

#include <gsasl.h>

#include <skywave/skywave.h>

#define MOD_C2S_NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define MOD_C2S_NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define MOD_C2S_NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define MOD_C2S_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

#define MOD_C2S_MAX_LISTENERS 8

typedef struct mod_c2s_conf_s {
    const char *const *interfaces;
    int64_t            port;
    int64_t            tls_port;
    bool               require_encryption;
    const char        *certificate;
    const char        *key;
    double             negotiation_timeout;
    const char *const *mechanisms;
    int64_t            sasl_attempts;
} mod_c2s_conf_t;

typedef struct mod_c2s_s      mod_c2s_t;
typedef struct mod_c2s_conn_s mod_c2s_conn_t;

typedef struct mod_c2s_listener_s {
    uv_tcp_t    tcp;
    mod_c2s_t  *c2s;
    bool        direct_tls;     /* XEP-0368 */
    char        desc[64];
} mod_c2s_listener_t;

struct mod_c2s_s {
    sw_module_ctx_t    *mc;
    mod_c2s_conf_t     *conf;
    mod_c2s_listener_t *listeners[MOD_C2S_MAX_LISTENERS];
    size_t              n_listeners;
    sw_tls_ctx_t       *tls;
    Gsasl              *gsasl;
    mod_c2s_conn_t     *conns;      /* every connection */
    uint64_t            next_id;
    bool                stopping;
    sw_buf_t            out;        /* serialization scratch */
};

typedef enum mod_c2s_state_e {
    MOD_C2S_WAIT_HEADER = 0,    /* before the (next) stream header */
    MOD_C2S_OPEN,               /* header exchanged, negotiating */
    MOD_C2S_STARTTLS,           /* <proceed/> sent, TLS to start */
    MOD_C2S_BOUND,              /* resource bound: stanzas flow */
    MOD_C2S_CLOSING,            /* </stream:stream> sent */
} mod_c2s_state_e;

struct mod_c2s_conn_s {
    mod_c2s_conn_t   *next, *prev;
    mod_c2s_t        *c2s;
    sw_conn_t        *conn;
    sw_xmlstream_t   *xs;
    sw_session_t      sess;         /* sess.transport == this */
    mod_c2s_state_e   state;
    bool              header_sent;
    bool              secured;
    bool              authed;
    bool              reset_pending;    /* after SASL success */
    const char       *host;         /* VirtualHost (in sess.pool) */
    const char       *user;         /* authenticated node */
    Gsasl_session    *sasl;
    const char       *sasl_hash;    /* "SHA-1", "SHA-256" for SCRAM */
    int               sasl_failures;
    bool              sasl_plus;    /* the mechanism binds the channel */
    bool              cb_offered;   /* we advertised a -PLUS mechanism */
    void             *sasl_cred;    /* credential cache for the exchange */
    uv_timer_t       *timer;        /* negotiation deadline */
    char              stream_id[24];
};

/* mod_c2s_sasl.c */
int mod_c2s_sasl_init(mod_c2s_t *c2s);
void mod_c2s_sasl_free(mod_c2s_t *c2s);
/* Appends <mechanisms/> for this connection to features. */
void mod_c2s_sasl_features(mod_c2s_conn_t *c, sw_xml_t *features);
/* Handles <auth/>, <response/>, <abort/>. */
void mod_c2s_sasl_element(mod_c2s_conn_t *c, sw_xml_t *el);
void mod_c2s_sasl_end(mod_c2s_conn_t *c);

/* mod_c2s.c, used by the SASL part */
void mod_c2s_send_xml(mod_c2s_conn_t *c, const sw_xml_t *x);
void mod_c2s_stream_error(mod_c2s_conn_t *c, const char *cond,
                          const char *text);

#endif
