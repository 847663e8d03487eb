/*
 * mod_c2s SASL (RFC 6120 §6) through GNU SASL: SCRAM-SHA-256 and
 * SCRAM-SHA-1 with their -PLUS channel-binding variants, and PLAIN over
 * TLS.  SCRAM verifies against stored StoredKey/ServerKey only; an
 * unknown user gets a random salt from GNU SASL and fails at the end like
 * a wrong password, so accounts cannot be probed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mod_c2s.h"

/*
 * The credential looked up for the exchange under way, in the session
 * pool.  SCRAM asks for four properties, so it is kept; but only for the
 * authentication identity and hash it was looked up for, and it dies with
 * the exchange (mod_c2s_sasl_end): a restarted <auth/> names another user.
 */
typedef struct {
    sw_scram_cred_t cred;
    const char     *user;       /* nodeprep'd authid */
    const char     *hash;
    bool            found;      /* false: a decoy (RFC 5802 §9) */
} mod_c2s_sasl_cred_t;

/*
 * The stored credential of the exchange's authid, or a decoy for an
 * account that does not exist, so that the exchange runs to its end the
 * same way (same salt every time for a name, same iteration count, same
 * work) and fails like a wrong password.  NULL when there is no usable
 * authid or the decoy cannot be made.
 */
static mod_c2s_sasl_cred_t *
mod_c2s_sasl_lookup(mod_c2s_conn_t *c, Gsasl_session *s, const char *hash)
{
    mod_c2s_sasl_cred_t *mc = c->sasl_cred;
    sw_storage_t        *st;
    const char          *authid = gsasl_property_fast(s, GSASL_AUTHID);
    const char          *user;

    if (authid == NULL) {
        return NULL;
    }
    user = sw_jid_nodeprep(c->sess.pool, authid);
    if (user == NULL) {
        return NULL;
    }
    if (mc != NULL && strcmp(mc->user, user) == 0
        && strcmp(mc->hash, hash) == 0)
    {
        return mc;
    }
    mc = sw_pool_calloc(c->sess.pool, sizeof(*mc));
    mc->user = user;
    mc->hash = hash;
    st = sw_storage();
    if (st != NULL
        && st->user_get_cred(st, c->host, user, hash, c->sess.pool, &mc->cred)
           == SW_OK)
    {
        mc->found = true;
    } else if (sw_scram_cred_decoy(c->sess.pool, c->c2s->decoy_secret,
                                   sizeof(c->c2s->decoy_secret), hash,
                                   c->host, user, &mc->cred) != SW_OK)
    {
        return NULL;
    }
    c->sasl_cred = mc;
    return mc;
}

static int
mod_c2s_sasl_set_cb(Gsasl_session *s, mod_c2s_conn_t *c, Gsasl_property prop,
                    const char *type)
{
    char *cb = sw_conn_channel_binding(c->conn, type);

    if (cb == NULL) {
        return GSASL_NO_CALLBACK;
    }
    gsasl_property_set(s, prop, cb);
    free(cb);
    return GSASL_OK;
}

/*
 * Storage keeps keys in hex (as gsasl.h documents the properties), but
 * GNU SASL 2.2's SCRAM server decodes GSASL_SCRAM_STOREDKEY/SERVERKEY as
 * base64 (lib/scram/server.c, extract_serverkey): convert here.
 */
static int
mod_c2s_sasl_set_key(Gsasl_session *s, Gsasl_property prop, const char *hex)
{
    char *b64 = sw_scram_key_base64(hex);

    if (b64 == NULL) {
        return GSASL_NO_CALLBACK;
    }
    gsasl_property_set(s, prop, b64);
    free(b64);
    return GSASL_OK;
}

static int
mod_c2s_sasl_cb(Gsasl *ctx, Gsasl_session *s, Gsasl_property prop)
{
    mod_c2s_conn_t      *c = s ? gsasl_session_hook_get(s) : NULL;
    mod_c2s_sasl_cred_t *cr;
    char                 iter[16];

    if (c == NULL) {
        return GSASL_NO_CALLBACK;
    }
    switch (prop) {
    case GSASL_SCRAM_ITER:
    case GSASL_SCRAM_SALT:
    case GSASL_SCRAM_STOREDKEY:
    case GSASL_SCRAM_SERVERKEY:
        if (c->sasl_hash == NULL) {
            return GSASL_NO_CALLBACK;
        }
        cr = mod_c2s_sasl_lookup(c, s, c->sasl_hash);
        if (cr == NULL) {
            return GSASL_NO_CALLBACK;
        }
        if (prop == GSASL_SCRAM_ITER) {
            snprintf(iter, sizeof(iter), "%u", cr->cred.iterations);
            gsasl_property_set(s, prop, iter);
        } else if (prop == GSASL_SCRAM_SALT) {
            gsasl_property_set(s, prop, cr->cred.salt);
        } else {
            return mod_c2s_sasl_set_key(s, prop,
                                        prop == GSASL_SCRAM_STOREDKEY
                                        ? cr->cred.stored_key
                                        : cr->cred.server_key);
        }
        return GSASL_OK;

    case GSASL_VALIDATE_SIMPLE: {
        const char *pw = gsasl_property_fast(s, GSASL_PASSWORD);

        /* A decoy costs the same key derivation as a real account. */
        cr = mod_c2s_sasl_lookup(c, s, "SHA-256");
        if (cr != NULL && pw != NULL && sw_scram_cred_verify(&cr->cred, pw)
            && cr->found)
        {
            return GSASL_OK;
        }
        return GSASL_AUTHENTICATION_ERROR;
    }

    case GSASL_CB_TLS_UNIQUE:
    case GSASL_CB_TLS_EXPORTER:
        /*
         * RFC 5802 §6: a client flag 'y' ("I could bind, but you cannot")
         * must fail only if we really offered binding; where we did not
         * offer -PLUS we say we have none, so 'y' is accepted.
         */
        if (!c->sasl_plus && !c->cb_offered) {
            return GSASL_NO_CALLBACK;
        }
        return mod_c2s_sasl_set_cb(s, c, prop,
                                   prop == GSASL_CB_TLS_UNIQUE
                                   ? "tls-unique" : "tls-exporter");
    default:
        return GSASL_NO_CALLBACK;
    }
}

int
mod_c2s_sasl_init(mod_c2s_t *c2s)
{
    int rc = gsasl_init(&c2s->gsasl);

    if (rc != GSASL_OK) {
        sw_log_error("c2s: GNU SASL: %s", gsasl_strerror(rc));
        return SW_ERROR;
    }
    gsasl_callback_set(c2s->gsasl, mod_c2s_sasl_cb);
    return SW_OK;
}

void
mod_c2s_sasl_free(mod_c2s_t *c2s)
{
    if (c2s->gsasl != NULL) {
        gsasl_done(c2s->gsasl);
        c2s->gsasl = NULL;
    }
}

void
mod_c2s_sasl_end(mod_c2s_conn_t *c)
{
    if (c->sasl != NULL) {
        gsasl_finish(c->sasl);
        c->sasl = NULL;
    }
    /* What was looked up belongs to the exchange that ended. */
    c->sasl_cred = NULL;
}

/* Is mech offered on this connection right now? */
static bool
mod_c2s_sasl_offered(mod_c2s_conn_t *c, const char *mech)
{
    mod_c2s_conf_t    *conf = sw_module_conf(c->c2s->mc, c->host);
    const char *const *m;
    size_t             n = strlen(mech);

    for (m = conf->mechanisms; m != NULL && *m != NULL; m++) {
        if (strcmp(*m, mech) != 0) {
            continue;
        }
        if (!gsasl_server_support_p(c->c2s->gsasl, mech)) {
            return false;
        }
        /* PLAIN sends the password: only inside TLS (RFC 6120 §13.8) */
        if (strcmp(mech, "PLAIN") == 0 && !c->secured) {
            return false;
        }
        if (n > 5 && strcmp(mech + n - 5, "-PLUS") == 0) {
            /*
             * A client that sees -PLUS without XEP-0440 assumes
             * tls-unique (RFC 5929), which TLS 1.3 does not define; so
             * -PLUS is offered only where tls-unique exists.  A client
             * asking for tls-exporter (RFC 9266) still gets it.
             */
            char *cb = c->secured
                       ? sw_conn_channel_binding(c->conn, "tls-unique")
                       : NULL;

            free(cb);
            return cb != NULL;
        }
        return true;
    }
    return false;
}

void
mod_c2s_sasl_features(mod_c2s_conn_t *c, sw_xml_t *features)
{
    mod_c2s_conf_t    *conf = sw_module_conf(c->c2s->mc, c->host);
    const char *const *m;
    sw_xml_t          *mechs = sw_xml_add(features, MOD_C2S_NS_SASL,
                                          "mechanisms");

    c->cb_offered = false;
    for (m = conf->mechanisms; m != NULL && *m != NULL; m++) {
        if (mod_c2s_sasl_offered(c, *m)) {
            sw_xml_set_text(sw_xml_add(mechs, NULL, "mechanism"), *m);
            if (strstr(*m, "-PLUS") != NULL) {
                c->cb_offered = true;
            }
        }
    }
}

static void
mod_c2s_sasl_reply(mod_c2s_conn_t *c, const char *name, const char *cond,
                   const char *text)
{
    sw_pool_t *pool = sw_pool_new(256);
    sw_xml_t  *x = sw_xml_new(pool, MOD_C2S_NS_SASL, name);

    if (cond != NULL) {
        sw_xml_add(x, NULL, cond);
    } else if (text != NULL) {
        /* RFC 6120 §6.4.2: an empty payload is sent as "=" */
        sw_xml_set_text(x, *text ? text : "=");
    }
    mod_c2s_send_xml(c, x);
    sw_pool_free(pool);
}

static void
mod_c2s_sasl_fail(mod_c2s_conn_t *c, const char *cond)
{
    mod_c2s_conf_t *conf = c->c2s->conf;

    mod_c2s_sasl_end(c);
    mod_c2s_guard_failure(c->c2s, c->addr);
    sw_log_info("c2s %llu (%s): authentication failed: %s",
                (unsigned long long) c->sess.id, sw_conn_peer(c->conn), cond);
    mod_c2s_sasl_reply(c, "failure", cond, NULL);
    if (++c->sasl_failures >= conf->sasl_attempts) {
        mod_c2s_stream_error(c, "policy-violation",
                             "too many failed authentication attempts");
    }
}

static void
mod_c2s_sasl_step(mod_c2s_conn_t *c, const char *in)
{
    char       *out = NULL;
    const char          *authid, *authzid;
    const char          *user;
    mod_c2s_sasl_cred_t *cr;
    int                  rc;

    rc = gsasl_step64(c->sasl, in, &out);
    if (rc == GSASL_NEEDS_MORE) {
        mod_c2s_sasl_reply(c, "challenge", NULL, out ? out : "");
        gsasl_free(out);
        return;
    }
    if (rc != GSASL_OK) {
        gsasl_free(out);
        sw_log_debug("c2s %llu: GNU SASL: %s", (unsigned long long) c->sess.id,
                     gsasl_strerror(rc));
        /* RFC 6120 §6.5.7 malformed-request, §6.5.10 not-authorized */
        mod_c2s_sasl_fail(c, rc == GSASL_MECHANISM_PARSE_ERROR
                             || rc == GSASL_BASE64_ERROR
                             ? "malformed-request" : "not-authorized");
        return;
    }
    authid = gsasl_property_fast(c->sasl, GSASL_AUTHID);
    authzid = gsasl_property_fast(c->sasl, GSASL_AUTHZID);
    user = authid ? sw_jid_nodeprep(c->sess.pool, authid) : NULL;
    cr = c->sasl_cred;
    /*
     * Whatever the mechanism said, the identity that succeeds must be the
     * one whose stored credential this exchange checked: never a decoy,
     * never a credential looked up for another name.
     */
    if (user == NULL || cr == NULL || !cr->found
        || strcmp(cr->user, user) != 0)
    {
        gsasl_free(out);
        mod_c2s_sasl_fail(c, "not-authorized");
        return;
    }
    /* RFC 6120 §6.3.8: we only let users act as themselves.  GNU SASL's
     * PLAIN fills an empty authzid with the authid: that is the same. */
    if (authzid != NULL && *authzid != '\0' && strcmp(authzid, authid) != 0) {
        sw_jid_t *z = sw_jid_new(c->sess.pool, authzid);

        if (z == NULL || z->node == NULL || z->resource != NULL
            || strcmp(z->node, user) != 0 || strcmp(z->domain, c->host) != 0)
        {
            gsasl_free(out);
            mod_c2s_sasl_fail(c, "invalid-authzid");
            return;
        }
    }
    /* SCRAM's server-final message rides in <success/> (RFC 6120 §6.3.10) */
    mod_c2s_sasl_reply(c, "success", NULL, out && *out ? out : NULL);
    gsasl_free(out);
    sw_log_info("c2s %llu (%s): authenticated %s@%s with %s",
                (unsigned long long) c->sess.id, sw_conn_peer(c->conn), user,
                c->host, gsasl_mechanism_name(c->sasl));
    mod_c2s_sasl_end(c);
    c->authed = true;
    c->user = user;
    /* The client now opens a new stream over the same connection. */
    c->reset_pending = true;
    c->header_sent = false;
    sw_xmlstream_pause(c->xs);
}

void
mod_c2s_sasl_element(mod_c2s_conn_t *c, sw_xml_t *el)
{
    mod_c2s_conf_t *conf = sw_module_conf(c->c2s->mc, c->host);
    const char     *mech, *text;

    if (strcmp(el->name, "auth") == 0) {
        mech = sw_xml_attr(el, "mechanism");
        if (mod_c2s_guard_banned(c->c2s, c->addr)) {
            /* RFC 6120 §13.7.2 (ejabberd's mod_fail2ban does the same) */
            mod_c2s_stream_error(c, "policy-violation",
                                 "too many failed authentications from "
                                 "your address; try again later");
            return;
        }
        if (!c->secured && conf->require_encryption) {
            mod_c2s_sasl_fail(c, "encryption-required");   /* §6.5.3 */
            return;
        }
        if (mech == NULL || !mod_c2s_sasl_offered(c, mech)) {
            mod_c2s_sasl_fail(c, "invalid-mechanism");     /* §6.5.6 */
            return;
        }
        mod_c2s_sasl_end(c);
        if (gsasl_server_start(c->c2s->gsasl, mech, &c->sasl) != GSASL_OK) {
            c->sasl = NULL;
            mod_c2s_sasl_fail(c, "temporary-auth-failure");
            return;
        }
        gsasl_session_hook_set(c->sasl, c);
        gsasl_property_set(c->sasl, GSASL_SERVICE, "xmpp");
        gsasl_property_set(c->sasl, GSASL_HOSTNAME, c->host);
        c->sasl_plus = strstr(mech, "-PLUS") != NULL;
        c->sasl_hash = strstr(mech, "SHA-256") ? "SHA-256"
                       : strstr(mech, "SHA-1") ? "SHA-1" : NULL;
        text = sw_xml_text(el);
        /* RFC 6120 §6.4.2: "=" is an empty initial response */
        mod_c2s_sasl_step(c, strcmp(text, "=") == 0 ? "" : text);
    } else if (strcmp(el->name, "response") == 0) {
        if (c->sasl == NULL) {
            mod_c2s_sasl_fail(c, "malformed-request");
            return;
        }
        text = sw_xml_text(el);
        mod_c2s_sasl_step(c, strcmp(text, "=") == 0 ? "" : text);
    } else if (strcmp(el->name, "abort") == 0) {
        mod_c2s_sasl_fail(c, "aborted");                    /* §6.4.4 */
    } else {
        mod_c2s_stream_error(c, "unsupported-stanza-type", NULL);
    }
}
