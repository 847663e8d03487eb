/*
 * SCRAM credentials (RFC 5802 §3) derived with GNU SASL, and the
 * convenience accessor for the storage service.
 *
 * Only the derived secrets are kept: StoredKey = H(ClientKey) lets the
 * server check a client proof, ServerKey lets it sign its answer, and
 * neither lets anybody log in as the user when the database leaks.
 */
#include "config.h"

#include <string.h>

#include <gsasl.h>
#include <gnutls/crypto.h>

#include <skywave/sw_log.h>
#include <skywave/sw_module.h>
#include <skywave/sw_storage.h>

/* Salt length in bytes: RFC 5802 asks for a random salt per user. */
#define SW_SCRAM_SALT_LEN        16
/* RFC 5802 §5.1 ("i" of at least 4096), and what RFC 7677 recommends. */
#define SW_SCRAM_DEF_ITERATIONS  4096

sw_storage_t *
sw_storage(void)
{
    const void  *api;

    api = sw_service_get(SW_STORAGE_SERVICE, SW_STORAGE_VERSION);
    if (api == NULL) {
        sw_log_error("no storage module is loaded (service \"%s\" "
                     "version %d)", SW_STORAGE_SERVICE, SW_STORAGE_VERSION);
        return NULL;
    }

    /* Service tables are registered const; the storage table carries
     * its own state through self, so callers get a mutable pointer. */
    return (sw_storage_t *) (uintptr_t) api;
}

static int
sw_scram_hash_parse(const char *name, Gsasl_hash *out)
{
    if (name == NULL) {
        return SW_ERROR;
    }
    if (strcmp(name, "SHA-1") == 0) {
        *out = GSASL_HASH_SHA1;
        return SW_OK;
    }
    if (strcmp(name, "SHA-256") == 0) {
        *out = GSASL_HASH_SHA256;
        return SW_OK;
    }
    return SW_ERROR;
}

static void
sw_scram_hex(char *dst, const unsigned char *src, size_t n)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0x0f];
    }
    dst[2 * n] = '\0';
}

/*
 * Derives StoredKey and ServerKey (hex, lower case) for password with the
 * raw salt.  stored and server must hold 2 * GSASL_HASH_MAX_SIZE + 1.
 */
static int
sw_scram_derive(Gsasl_hash hash, const char *password, unsigned iterations,
                const char *salt, size_t salt_len, char *stored,
                char *server)
{
    char    salted[GSASL_HASH_MAX_SIZE];
    char    client_key[GSASL_HASH_MAX_SIZE];
    char    server_key[GSASL_HASH_MAX_SIZE];
    char    stored_key[GSASL_HASH_MAX_SIZE];
    size_t  hlen;
    int     rc;

    /* The password goes through SASLprep inside GNU SASL (RFC 5802 §2.2),
     * so derivation here matches what the SCRAM mechanism computes. */
    rc = gsasl_scram_secrets_from_password(hash, password, iterations,
                                           salt, salt_len, salted,
                                           client_key, server_key,
                                           stored_key);
    if (rc != GSASL_OK) {
        sw_log_error("scram: cannot derive secrets: %s",
                     gsasl_strerror(rc));
        return SW_ERROR;
    }

    hlen = gsasl_hash_length(hash);
    sw_scram_hex(stored, (const unsigned char *) stored_key, hlen);
    sw_scram_hex(server, (const unsigned char *) server_key, hlen);

    /* The salted password is as good as the password for SCRAM. */
    memset(salted, 0, sizeof(salted));
    memset(client_key, 0, sizeof(client_key));
    return SW_OK;
}

int
sw_scram_cred_make(sw_pool_t *pool, const char *hash, const char *password,
                   unsigned iterations, sw_scram_cred_t *out)
{
    Gsasl_hash  h;
    char        salt[SW_SCRAM_SALT_LEN];
    char        stored[2 * GSASL_HASH_MAX_SIZE + 1];
    char        server[2 * GSASL_HASH_MAX_SIZE + 1];
    char       *b64;
    size_t      b64_len;
    int         rc;

    if (sw_scram_hash_parse(hash, &h) != SW_OK) {
        sw_log_error("scram: unsupported hash \"%s\"",
                     hash ? hash : "(null)");
        return SW_ERROR;
    }
    if (password == NULL) {
        sw_log_error("scram: no password given");
        return SW_ERROR;
    }
    if (iterations == 0) {
        iterations = SW_SCRAM_DEF_ITERATIONS;
    }

    rc = gsasl_nonce(salt, sizeof(salt));
    if (rc != GSASL_OK) {
        sw_log_error("scram: cannot get random salt: %s",
                     gsasl_strerror(rc));
        return SW_ERROR;
    }

    if (sw_scram_derive(h, password, iterations, salt, sizeof(salt),
                        stored, server)
        != SW_OK)
    {
        return SW_ERROR;
    }

    rc = gsasl_base64_to(salt, sizeof(salt), &b64, &b64_len);
    if (rc != GSASL_OK) {
        sw_log_error("scram: cannot encode salt: %s", gsasl_strerror(rc));
        return SW_ERROR;
    }

    out->hash = h == GSASL_HASH_SHA1 ? "SHA-1" : "SHA-256";
    out->iterations = iterations;
    out->salt = sw_pool_strndup(pool, b64, b64_len);
    out->stored_key = sw_pool_strdup(pool, stored);
    out->server_key = sw_pool_strdup(pool, server);
    gsasl_free(b64);
    return SW_OK;
}

/* HMAC-SHA-256(secret, label NUL hash NUL host NUL user), first n bytes. */
static int
sw_scram_decoy_bytes(const void *secret, size_t secret_len, const char *label,
                     const char *hash, const char *host, const char *user,
                     unsigned char *out, size_t n)
{
    gnutls_hmac_hd_t  h;
    unsigned char     mac[32];
    const char       *parts[4] = { label, hash, host, user };
    size_t            i;

    if (n > sizeof(mac)
        || gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, secret, secret_len) < 0)
    {
        return SW_ERROR;
    }
    for (i = 0; i < 4; i++) {
        const char *p = parts[i] ? parts[i] : "";

        gnutls_hmac(h, p, strlen(p) + 1);
    }
    gnutls_hmac_deinit(h, mac);
    memcpy(out, mac, n);
    memset(mac, 0, sizeof(mac));
    return SW_OK;
}

int
sw_scram_cred_decoy(sw_pool_t *pool, const void *secret, size_t secret_len,
                    const char *hash, const char *host, const char *user,
                    sw_scram_cred_t *out)
{
    Gsasl_hash     h;
    unsigned char  salt[SW_SCRAM_SALT_LEN], key[GSASL_HASH_MAX_SIZE];
    char           hex[2 * GSASL_HASH_MAX_SIZE + 1];
    char          *b64;
    size_t         b64_len, hlen;

    if (sw_scram_hash_parse(hash, &h) != SW_OK || secret == NULL) {
        return SW_ERROR;
    }
    hlen = gsasl_hash_length(h);
    if (sw_scram_decoy_bytes(secret, secret_len, "salt", hash, host, user,
                             salt, sizeof(salt)) != SW_OK
        || gsasl_base64_to((char *) salt, sizeof(salt), &b64, &b64_len)
           != GSASL_OK)
    {
        return SW_ERROR;
    }
    out->hash = h == GSASL_HASH_SHA1 ? "SHA-1" : "SHA-256";
    out->iterations = SW_SCRAM_DEF_ITERATIONS;
    out->salt = sw_pool_strndup(pool, b64, b64_len);
    gsasl_free(b64);
    if (sw_scram_decoy_bytes(secret, secret_len, "stored", hash, host, user,
                             key, hlen) != SW_OK)
    {
        return SW_ERROR;
    }
    sw_scram_hex(hex, key, hlen);
    out->stored_key = sw_pool_strdup(pool, hex);
    if (sw_scram_decoy_bytes(secret, secret_len, "server", hash, host, user,
                             key, hlen) != SW_OK)
    {
        return SW_ERROR;
    }
    sw_scram_hex(hex, key, hlen);
    out->server_key = sw_pool_strdup(pool, hex);
    return SW_OK;
}

/* Constant time, so a timing probe learns nothing about StoredKey. */
static bool
sw_scram_equal(const char *a, const char *b, size_t n)
{
    unsigned char  diff;
    size_t         i;

    diff = 0;
    for (i = 0; i < n; i++) {
        diff |= (unsigned char) (a[i] ^ b[i]);
    }
    return diff == 0;
}

bool
sw_scram_cred_verify(const sw_scram_cred_t *cred, const char *password)
{
    Gsasl_hash  h;
    char        stored[2 * GSASL_HASH_MAX_SIZE + 1];
    char        server[2 * GSASL_HASH_MAX_SIZE + 1];
    char        want[2 * GSASL_HASH_MAX_SIZE + 1];
    char       *salt;
    size_t      salt_len, hlen, i;
    bool        ok;
    int         rc;

    if (cred == NULL || password == NULL || cred->salt == NULL
        || cred->stored_key == NULL || cred->iterations == 0)
    {
        return false;
    }
    if (sw_scram_hash_parse(cred->hash, &h) != SW_OK) {
        sw_log_error("scram: stored credential has unsupported hash \"%s\"",
                     cred->hash ? cred->hash : "(null)");
        return false;
    }

    hlen = gsasl_hash_length(h);
    if (strlen(cred->stored_key) != 2 * hlen) {
        sw_log_error("scram: stored %s StoredKey has a wrong length",
                     cred->hash);
        return false;
    }
    /* Stored keys may come from other tools in upper case. */
    for (i = 0; i < 2 * hlen; i++) {
        char  c = cred->stored_key[i];

        want[i] = (c >= 'A' && c <= 'F') ? (char) (c - 'A' + 'a') : c;
    }
    want[2 * hlen] = '\0';

    rc = gsasl_base64_from(cred->salt, strlen(cred->salt), &salt,
                           &salt_len);
    if (rc != GSASL_OK) {
        sw_log_error("scram: stored salt is not base64: %s",
                     gsasl_strerror(rc));
        return false;
    }

    ok = sw_scram_derive(h, password, cred->iterations, salt, salt_len,
                         stored, server)
         == SW_OK
         && sw_scram_equal(stored, want, 2 * hlen);

    gsasl_free(salt);
    memset(stored, 0, sizeof(stored));
    return ok;
}

char *
sw_scram_key_base64(const char *hex)
{
    char   *bin = NULL, *b64 = NULL, *out;
    size_t  n;

    if (gsasl_hex_from(hex, &bin, &n) != GSASL_OK
        || gsasl_base64_to(bin, n, &b64, NULL) != GSASL_OK)
    {
        gsasl_free(bin);
        return NULL;
    }
    gsasl_free(bin);
    out = sw_strdup(b64);
    gsasl_free(b64);
    return out;
}
