/* mod_c2s: private declarations shared by its files. */
#ifndef MOD_C2S_H
#define MOD_C2S_H

#include <gsasl.h>
#include <time.h>

#include <skywave/skywave.h>
#include <skywave/mod_c2s_api.h>

#define MOD_C2S_NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define MOD_C2S_NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define MOD_C2S_NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define MOD_C2S_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define MOD_C2S_NS_SM      "urn:xmpp:sm:3"

#define MOD_C2S_MAX_LISTENERS 8
/* Elements in one element before authentication (<auth/>, <starttls/>,
 * <enable/>, <resume/>: a handful). */
#define MOD_C2S_PREAUTH_ELEMENTS 32

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
    int64_t            resume_timeout;
    int64_t            auth_ban_failures;
    double             auth_ban_time;
    int64_t            max_connections;
    int64_t            max_connections_per_address;
    size_t             preauth_stanza_size;
    size_t             sm_max_bytes;
    int64_t            max_resources;
    size_t             max_send_buffer;
} mod_c2s_conf_t;

typedef struct mod_c2s_s      mod_c2s_t;
typedef struct mod_c2s_conn_s mod_c2s_conn_t;

/* An unacknowledged stanza (XEP-0198). */
typedef struct mod_c2s_sm_item_s {
    sw_stanza_t *stanza;
    time_t       stamp;         /* first sent, for XEP-0203 delay */
    size_t       size;          /* memory it holds (its pool) */
} mod_c2s_sm_item_t;

typedef struct mod_c2s_listener_s {
    sw_listener_t *ls;
    mod_c2s_t     *c2s;
    bool           direct_tls;  /* XEP-0368 */
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
    sw_hash_t          *addrs;      /* address -> mod_c2s_addr_t (guard) */
    uint64_t            n_conns;    /* open connections */
    sw_log_rl_t         rl_limit;   /* refused connections */
    unsigned char       decoy_secret[32];   /* RFC 5802 §9 decoys */
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
    const char       *addr;         /* source address, no port */
    Gsasl_session    *sasl;
    const char       *sasl_hash;    /* "SHA-1", "SHA-256" for SCRAM */
    int               sasl_failures;
    bool              sasl_plus;    /* the mechanism binds the channel */
    bool              cb_offered;   /* we advertised a -PLUS mechanism */
    void             *sasl_cred;    /* credential cache for the exchange */
    uv_timer_t       *timer;        /* negotiation deadline, then the
                                       resumption deadline */
    char              stream_id[24];
    bool              clean_close;  /* the client sent </stream:stream> */
    bool              sess_ended;   /* unregistered, queue handed back */
    mod_c2s_conn_t   *moved_to;     /* resumed: this shell's stream went
                                       to that session */

    /* XEP-0198 */
    bool              sm_enabled;
    bool              sm_resumable;
    char             *sm_id;        /* SM-ID, in sess.pool */
    uint32_t          sm_in;        /* h: stanzas handled from the client */
    uint32_t          sm_out;       /* stanzas sent to the client */
    uint32_t          sm_acked;     /* last h the client sent */
    mod_c2s_sm_item_t *sm_queue;    /* ring of unacknowledged stanzas */
    size_t            sm_head;
    size_t            sm_queued;
    size_t            sm_cap;
    size_t            sm_bytes;     /* memory of the queued stanzas */
};

/* mod_c2s_sasl.c */
int mod_c2s_sasl_init(mod_c2s_t *c2s);
void mod_c2s_sasl_free(mod_c2s_t *c2s);
/* Appends <mechanisms/> for this connection to features. */
void mod_c2s_sasl_features(mod_c2s_conn_t *c, sw_xml_t *features);
/* Handles <auth/>, <response/>, <abort/>. */
void mod_c2s_sasl_element(mod_c2s_conn_t *c, sw_xml_t *el);
void mod_c2s_sasl_end(mod_c2s_conn_t *c);

/* mod_c2s_guard.c: limits per source address */
/* SW_OK, or SW_DECLINED (logged): close the new connection. */
int mod_c2s_guard_connect(mod_c2s_t *c2s, const char *addr);
void mod_c2s_guard_disconnect(mod_c2s_t *c2s, const char *addr);
void mod_c2s_guard_failure(mod_c2s_t *c2s, const char *addr);
bool mod_c2s_guard_banned(mod_c2s_t *c2s, const char *addr);
void mod_c2s_guard_free(mod_c2s_t *c2s);
const char *mod_c2s_guard_addr(sw_pool_t *pool, const char *peer);

/* mod_c2s_sm.c */
void mod_c2s_sm_element(mod_c2s_conn_t *c, sw_xml_t *el);
void mod_c2s_sm_queue(mod_c2s_conn_t *c, sw_stanza_t *st);
void mod_c2s_sm_flush(mod_c2s_conn_t *c);
/* Whether the unacknowledged queue is past c2s_sm_max_bytes. */
bool mod_c2s_sm_over(const mod_c2s_conn_t *c);

/* mod_c2s.c, used by the SASL and SM parts */
void mod_c2s_send_xml(mod_c2s_conn_t *c, const sw_xml_t *x);
void mod_c2s_stream_error(mod_c2s_conn_t *c, const char *cond,
                          const char *text);
/* Closes c's connection with a stream error but keeps the session. */
void mod_c2s_detach(mod_c2s_conn_t *c, const char *cond, const char *text);
/* Moves shell's connection and stream into the hibernating session. */
void mod_c2s_adopt(mod_c2s_conn_t *sess, mod_c2s_conn_t *shell);

#endif
