/*
 * Fuzz target: SASL message parsing in a GNU SASL server session, set up
 * and answered as mod_c2s does (modules/c2s/mod_c2s_sasl.c): SCRAM-SHA-256,
 * SCRAM-SHA-1, their -PLUS variants, and PLAIN.
 *
 * Input: one byte choosing the mechanism (its low bits) and whether the
 * messages travel base64-encoded through gsasl_step64 as in <auth/> and
 * <response/> (bit 7), then up to three client messages separated by
 * 0xff bytes (never part of UTF-8).  In the second and third message,
 * "%r" stands for the nonce the server sent and a final "%p" for a
 * correct ClientProof for alice (password "pencil"), so that the fuzzer
 * gets past the nonce and proof checks to what follows them (RFC 5802
 * §3, §5.1); tests/fuzz/corpus/sasl/ has complete exchanges.
 *
 * Credentials are fixed: alice has a SCRAM credential of each hash with
 * a fixed salt; any other name gets the decoy of sw_scram_cred_decoy
 * with a fixed secret, as an unknown account does on the server
 * (RFC 5802 §9).  PLAIN is checked with sw_scram_cred_verify for alice
 * and refused for a decoy without the key derivation the server would
 * spend on it (4096 rounds of PBKDF2 per input would make the target
 * too slow to be useful).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gsasl.h>

#include <skywave/skywave.h>
#include <skywave/sw_storage.h>

#include "fuzz.h"

#define FUZZ_PASSWORD   "pencil"
#define FUZZ_SALT       "skywave-fuzz-slt"
#define FUZZ_ITER       16      /* cheap for PLAIN; only a number to SCRAM */
#define FUZZ_SEP        0xff

typedef struct {
    const char      *name;      /* "SHA-1", "SHA-256" */
    Gsasl_hash       hash;
    sw_scram_cred_t  cred;      /* alice's: keys in hex, salt in base64 */
    char             client_key[GSASL_HASH_MAX_SIZE];
    char             stored_key[GSASL_HASH_MAX_SIZE];
} fuzz_alice_t;

typedef struct {
    sw_pool_t        *pool;
    const char       *hash;     /* the SCRAM hash of the mechanism */
    bool              plus;
    sw_scram_cred_t  *cred;     /* looked up for cred_user */
    const char       *cred_user;
    bool              found;
} fuzz_sess_t;

static Gsasl        *fuzz_gsasl;
static sw_pool_t    *fuzz_pool;
static fuzz_alice_t  fuzz_alice[2] = {
    { "SHA-1", GSASL_HASH_SHA1, { 0 }, { 0 }, { 0 } },
    { "SHA-256", GSASL_HASH_SHA256, { 0 }, { 0 }, { 0 } },
};
static const char   *fuzz_mechs[] = {
    "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS"
};
static const unsigned char fuzz_decoy_secret[32] =
    "skywave fuzz decoy secret 32 b!";

static fuzz_alice_t *
fuzz_alice_for(const char *hash)
{
    return strcmp(hash, "SHA-1") == 0 ? &fuzz_alice[0] : &fuzz_alice[1];
}

static void
fuzz_hex(char *dst, const char *src, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < n; i++) {
        dst[2 * i] = digits[(unsigned char) src[i] >> 4];
        dst[2 * i + 1] = digits[(unsigned char) src[i] & 0x0f];
    }
    dst[2 * n] = '\0';
}

/* As mod_c2s_sasl_lookup: the authid's credential, or a decoy. */
static sw_scram_cred_t *
fuzz_lookup(fuzz_sess_t *fs, Gsasl_session *s, const char *hash)
{
    const char *authid = gsasl_property_fast(s, GSASL_AUTHID);
    const char *user;

    if (authid == NULL) {
        return NULL;
    }
    user = sw_jid_nodeprep(fs->pool, authid);
    if (user == NULL) {
        return NULL;
    }
    if (fs->cred != NULL && strcmp(fs->cred_user, user) == 0
        && strcmp(fs->cred->hash, hash) == 0)
    {
        return fs->cred;
    }
    fs->cred_user = user;
    if (strcmp(user, "alice") == 0) {
        fs->cred = &fuzz_alice_for(hash)->cred;
        fs->found = true;
        return fs->cred;
    }
    fs->cred = sw_pool_calloc(fs->pool, sizeof(*fs->cred));
    fs->found = false;
    if (sw_scram_cred_decoy(fs->pool, fuzz_decoy_secret,
                            sizeof(fuzz_decoy_secret), hash, "example.net",
                            user, fs->cred) != SW_OK)
    {
        fs->cred = NULL;
    }
    return fs->cred;
}

/* As mod_c2s_sasl_set_key (sw_scram_key_base64). */
static int
fuzz_set_key(Gsasl_session *s, Gsasl_property prop, const char *hex)
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
fuzz_cb(Gsasl *ctx, Gsasl_session *s, Gsasl_property prop)
{
    fuzz_sess_t     *fs = s ? gsasl_session_hook_get(s) : NULL;
    sw_scram_cred_t *cr;
    char             iter[16];
    const char      *pw;

    if (fs == NULL) {
        return GSASL_NO_CALLBACK;
    }
    switch (prop) {
    case GSASL_SCRAM_ITER:
    case GSASL_SCRAM_SALT:
    case GSASL_SCRAM_STOREDKEY:
    case GSASL_SCRAM_SERVERKEY:
        if (fs->hash == NULL) {
            return GSASL_NO_CALLBACK;
        }
        cr = fuzz_lookup(fs, s, fs->hash);
        if (cr == NULL) {
            return GSASL_NO_CALLBACK;
        }
        if (prop == GSASL_SCRAM_ITER) {
            snprintf(iter, sizeof(iter), "%u", cr->iterations);
            gsasl_property_set(s, prop, iter);
            return GSASL_OK;
        }
        if (prop == GSASL_SCRAM_SALT) {
            gsasl_property_set(s, prop, cr->salt);
            return GSASL_OK;
        }
        return fuzz_set_key(s, prop, prop == GSASL_SCRAM_STOREDKEY
                                     ? cr->stored_key : cr->server_key);

    case GSASL_VALIDATE_SIMPLE:
        pw = gsasl_property_fast(s, GSASL_PASSWORD);
        cr = fuzz_lookup(fs, s, "SHA-256");
        if (cr != NULL && pw != NULL && fs->found
            && sw_scram_cred_verify(cr, pw))
        {
            return GSASL_OK;
        }
        return GSASL_AUTHENTICATION_ERROR;

    case GSASL_CB_TLS_UNIQUE:
    case GSASL_CB_TLS_EXPORTER:
        if (!fs->plus) {
            return GSASL_NO_CALLBACK;
        }
        gsasl_property_set(s, prop, "c2t5d2F2ZSBmdXp6IGNoYW5uZWwgYmluZGluZw==");
        return GSASL_OK;

    default:
        return GSASL_NO_CALLBACK;
    }
}

/* Replaces every "%r" in msg by nonce; returns new (free). */
static char *
fuzz_put_nonce(const char *msg, size_t len, const char *nonce, size_t *out_len)
{
    sw_buf_t    b;
    size_t      i;

    sw_buf_init(&b);
    for (i = 0; i < len; i++) {
        if (msg[i] == '%' && i + 1 < len && msg[i + 1] == 'r'
            && nonce != NULL)
        {
            sw_buf_append_str(&b, nonce);
            i++;
        } else {
            sw_buf_append(&b, msg + i, 1);
        }
    }
    sw_buf_append(&b, "", 1);
    *out_len = b.len - 1;
    return sw_buf_steal(&b, NULL);
}

/*
 * Replaces a final ",p=%p" by alice's ClientProof over the AuthMessage
 * (RFC 5802 §3): client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof.
 */
static char *
fuzz_put_proof(char *msg, size_t *len, const char *first, size_t first_len,
               const char *server_first, const char *hash)
{
    fuzz_alice_t    *a = fuzz_alice_for(hash);
    gnutls_mac_algorithm_t mac = a->hash == GSASL_HASH_SHA1
                                 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256;
    size_t           hlen = gsasl_hash_length(a->hash), i, bare;
    char             sig[GSASL_HASH_MAX_SIZE], proof[GSASL_HASH_MAX_SIZE];
    char            *b64 = NULL;
    sw_buf_t         am, out;
    const char      *comma;

    if (*len < 5 || memcmp(msg + *len - 5, ",p=%p", 5) != 0
        || server_first == NULL)
    {
        return msg;
    }
    /* client-first-message-bare: after the GS2 header's two commas */
    comma = memchr(first, ',', first_len);
    comma = comma ? memchr(comma + 1, ',', first_len
                           - (size_t) (comma + 1 - first)) : NULL;
    if (comma == NULL) {
        return msg;
    }
    bare = (size_t) (comma + 1 - first);
    sw_buf_init(&am);
    sw_buf_append(&am, first + bare, first_len - bare);
    sw_buf_append_str(&am, ",");
    sw_buf_append_str(&am, server_first);
    sw_buf_append_str(&am, ",");
    sw_buf_append(&am, msg, *len - 5);
    if (gnutls_hmac_fast(mac, a->stored_key, hlen, am.data, am.len, sig)
        != 0)
    {
        sw_buf_free(&am);
        return msg;
    }
    sw_buf_free(&am);
    for (i = 0; i < hlen; i++) {
        proof[i] = (char) (a->client_key[i] ^ sig[i]);
    }
    if (gsasl_base64_to(proof, hlen, &b64, NULL) != GSASL_OK) {
        return msg;
    }
    sw_buf_init(&out);
    sw_buf_append(&out, msg, *len - 2);
    sw_buf_append_str(&out, b64);
    sw_buf_append(&out, "", 1);
    gsasl_free(b64);
    free(msg);
    *len = out.len - 1;
    return sw_buf_steal(&out, NULL);
}

/* One step, raw or through base64 as <auth/> carries it.  *out is the
 * server's message, decoded (gsasl_free), or NULL. */
static int
fuzz_step(Gsasl_session *s, bool b64, const char *msg, size_t len,
          char **out, size_t *out_len)
{
    char   *in64 = NULL, *out64 = NULL;
    int     rc;

    *out = NULL;
    *out_len = 0;
    if (!b64) {
        return gsasl_step(s, msg, len, out, out_len);
    }
    if (gsasl_base64_to(msg, len, &in64, NULL) != GSASL_OK) {
        return GSASL_BASE64_ERROR;
    }
    rc = gsasl_step64(s, in64, &out64);
    gsasl_free(in64);
    if (out64 != NULL) {
        if (gsasl_base64_from(out64, strlen(out64), out, out_len)
            != GSASL_OK)
        {
            abort();    /* the server's own output must decode */
        }
        gsasl_free(out64);
    }
    return rc;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char    salted[GSASL_HASH_MAX_SIZE], server_key[GSASL_HASH_MAX_SIZE];
    char    hex[2 * GSASL_HASH_MAX_SIZE + 1];
    char   *b64;
    size_t  i, hlen;

    sw_fuzz_quiet();
    if (gsasl_init(&fuzz_gsasl) != GSASL_OK) {
        abort();
    }
    gsasl_callback_set(fuzz_gsasl, fuzz_cb);
    fuzz_pool = sw_pool_new(0);
    for (i = 0; i < 2; i++) {
        fuzz_alice_t *a = &fuzz_alice[i];

        hlen = gsasl_hash_length(a->hash);
        if (gsasl_scram_secrets_from_password(a->hash, FUZZ_PASSWORD,
                                              FUZZ_ITER, FUZZ_SALT,
                                              strlen(FUZZ_SALT), salted,
                                              a->client_key, server_key,
                                              a->stored_key) != GSASL_OK
            || gsasl_base64_to(FUZZ_SALT, strlen(FUZZ_SALT), &b64, NULL)
               != GSASL_OK)
        {
            abort();
        }
        a->cred.hash = a->name;
        a->cred.iterations = FUZZ_ITER;
        a->cred.salt = sw_pool_strdup(fuzz_pool, b64);
        gsasl_free(b64);
        fuzz_hex(hex, a->stored_key, hlen);
        a->cred.stored_key = sw_pool_strdup(fuzz_pool, hex);
        fuzz_hex(hex, server_key, hlen);
        a->cred.server_key = sw_pool_strdup(fuzz_pool, hex);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sess_t     fs;
    Gsasl_session  *s;
    const char     *mech, *p, *end, *sep;
    const char     *first = NULL, *authid, *authzid, *user;
    char           *msg, *out, *server_first = NULL, *nonce = NULL;
    size_t          first_len = 0, len, out_len, i;
    bool            b64;
    int             rc = GSASL_NEEDS_MORE;

    if (size < 1) {
        return 0;
    }
    mech = fuzz_mechs[(data[0] & 0x7f) % 5];
    b64 = (data[0] & 0x80) != 0;
    memset(&fs, 0, sizeof(fs));
    fs.pool = sw_pool_new(0);
    fs.hash = strstr(mech, "SHA-256") ? "SHA-256"
              : strstr(mech, "SHA-1") ? "SHA-1" : NULL;
    fs.plus = strstr(mech, "-PLUS") != NULL;

    /* as mod_c2s_sasl_element does for <auth/> */
    if (gsasl_server_start(fuzz_gsasl, mech, &s) != GSASL_OK) {
        abort();
    }
    gsasl_session_hook_set(s, &fs);
    gsasl_property_set(s, GSASL_SERVICE, "xmpp");
    gsasl_property_set(s, GSASL_HOSTNAME, "example.net");

    p = (const char *) data + 1;
    end = (const char *) data + size;
    for (i = 0; i < 3 && rc == GSASL_NEEDS_MORE; i++) {
        sep = i < 2 ? memchr(p, FUZZ_SEP, (size_t) (end - p)) : NULL;
        len = (size_t) ((sep ? sep : end) - p);
        msg = fuzz_put_nonce(p, len, nonce, &len);
        if (server_first != NULL) {
            msg = fuzz_put_proof(msg, &len, first, first_len, server_first,
                                 fs.hash);
        }
        rc = fuzz_step(s, b64, msg, len, &out, &out_len);
        if (rc == GSASL_NEEDS_MORE && fs.hash != NULL && server_first == NULL
            && out != NULL && out_len > 2 && strncmp(out, "r=", 2) == 0)
        {
            /* server-first-message "r=nonce,s=salt,i=n", the answer to
             * the client-first-message just sent (an empty initial
             * response may come before it) */
            server_first = sw_pool_strndup(fs.pool, out, out_len);
            nonce = sw_pool_strndup(fs.pool, server_first + 2,
                                    strcspn(server_first + 2, ","));
            first = sw_pool_strndup(fs.pool, msg, len);
            first_len = len;
        }
        free(msg);
        gsasl_free(out);
        if (sep == NULL) {
            break;
        }
        p = sep + 1;
    }

    if (rc == GSASL_OK) {
        /* what mod_c2s_sasl_step does next */
        authid = gsasl_property_fast(s, GSASL_AUTHID);
        authzid = gsasl_property_fast(s, GSASL_AUTHZID);
        user = authid ? sw_jid_nodeprep(fs.pool, authid) : NULL;
        if (user != NULL && fs.cred != NULL && fs.found
            && strcmp(fs.cred_user, user) == 0 && authzid != NULL
            && *authzid != '\0' && strcmp(authzid, authid) != 0)
        {
            sw_jid_t *z = sw_jid_new(fs.pool, authzid);

            (void) (z != NULL && z->node != NULL && z->resource == NULL
                    && strcmp(z->node, user) == 0
                    && strcmp(z->domain, "example.net") == 0);
        }
    }
    gsasl_finish(s);
    sw_pool_free(fs.pool);
    return 0;
}
