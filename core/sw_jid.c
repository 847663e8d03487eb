/*
 * JIDs: splitting and preparation (RFC 7622 §3).
 *
 * Parts are prepared with libidn's stringprep profiles (Nodeprep,
 * Resourceprep from RFC 6122 appendices; Nameprep per label, as IDNA2003
 * ToASCII does), with unassigned code points allowed (flags 0, the same as
 * libidn's stringprep_xmpp_nodeprep() macros).
 *
 * Most JIDs a server sees are plain ASCII, so an ASCII part skips stringprep
 * and is mapped here.  For ASCII input the profiles reduce to: map A-Z to
 * a-z (Nodeprep, Nameprep; B.2), and prohibit C.1.1/C.2.1 and the XMPP
 * extras (Nodeprep) or C.2.1 (Resourceprep); NFKC and the bidi rule leave
 * ASCII alone and B.1 holds no ASCII code point.  A part with any non-ASCII
 * byte goes to stringprep whole: NFKC can compose an ASCII character with a
 * following combining mark ("<" U+0338 is U+226E), so an ASCII character
 * that is prohibited on its own is not always prohibited in context.
 *
 * All strings of one JID are carved from a single pool allocation.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <idna.h>
#include <stringprep.h>

#include <skywave/sw_jid.h>

/* RFC 7622 §3.1: each part is 1 to 1023 octets once prepared. */
#define SW_JID_MAX        1023
#define SW_JID_BUF        (SW_JID_MAX + 1)
/* RFC 1034 §3.1: a label is at most 63 octets (in its ACE form). */
#define SW_JID_LABEL_MAX  63

#define SW_JID_IDNA_FLAGS (IDNA_ALLOW_UNASSIGNED | IDNA_USE_STD3_ASCII_RULES)

typedef enum {
    SW_JID_NODE = 0,
    SW_JID_LABEL,
    SW_JID_RESOURCE
} sw_jid_part_e;

static bool
sw_jid_is_ascii(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] >= 0x80) {
            return false;
        }
    }
    return true;
}

/*
 * The stringprep profile applied to ASCII input.  Writes the result to dst
 * (SW_JID_BUF bytes) and returns its length, SW_ERROR if stringprep would
 * refuse it, or SW_DECLINED if s is not pure ASCII.
 */
static int
sw_jid_prep_ascii(const char *s, size_t len, sw_jid_part_e part, char *dst)
{
    size_t         i;
    unsigned char  c;

    if (!sw_jid_is_ascii(s, len)) {
        return SW_DECLINED;
    }
    if (len > SW_JID_MAX) {
        return SW_ERROR;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        /* C.2.1: ASCII control characters (not prohibited by Nameprep) */
        if ((c < 0x20 || c == 0x7f) && part != SW_JID_LABEL) {
            return SW_ERROR;
        }

        if (part == SW_JID_NODE
            && (c == ' ' || strchr("\"&'/:<>@", c) != NULL))
        {
            /* C.1.1 and the Nodeprep extras (RFC 6122 A.5, RFC 7622 §3.3.1) */
            return SW_ERROR;
        }

        if (part != SW_JID_RESOURCE && c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';  /* B.2 */
        }

        dst[i] = (char) c;
    }

    dst[len] = '\0';
    return (int) len;
}

/*
 * Prepares one part (or one domain label) into dst, which holds SW_JID_BUF
 * bytes.  Returns the prepared length (0 if everything mapped to nothing)
 * or SW_ERROR.
 */
static int
sw_jid_prep(const char *s, size_t len, sw_jid_part_e part, char *dst)
{
    const Stringprep_profile  *profile;
    char                      *buf, *tmp;
    size_t                     cap, n;
    int                        rc;

    rc = sw_jid_prep_ascii(s, len, part, dst);
    if (rc != SW_DECLINED) {
        return rc;
    }

    switch (part) {
    case SW_JID_NODE:
        profile = stringprep_xmpp_nodeprep;
        break;
    case SW_JID_LABEL:
        profile = stringprep_nameprep;
        break;
    default:
        profile = stringprep_xmpp_resourceprep;
        break;
    }

    /*
     * stringprep works in place.  Input longer than a part may still shrink
     * below the limit (B.1 maps some code points to nothing), so such input
     * gets a temporary buffer of its own size; this is never the common case.
     */
    tmp = NULL;
    buf = dst;
    cap = SW_JID_BUF;
    if (len >= SW_JID_BUF) {
        tmp = sw_alloc(len + 1);
        buf = tmp;
        cap = len + 1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';

    /* fails on invalid UTF-8 too (STRINGPREP_ICONV_ERROR) */
    rc = stringprep(buf, cap, 0, profile);
    n = (rc == STRINGPREP_OK) ? strlen(buf) : 0;

    if (rc != STRINGPREP_OK || n > SW_JID_MAX) {
        free(tmp);
        return SW_ERROR;
    }
    if (tmp != NULL) {
        memcpy(dst, tmp, n + 1);
        free(tmp);
    }
    return (int) n;
}

/* STD3 host name rules for an ASCII label (RFC 1123 §2.1, RFC 3490 §4.1). */
static int
sw_jid_label_ldh(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > SW_JID_LABEL_MAX) {
        return SW_ERROR;
    }
    if (s[0] == '-' || s[len - 1] == '-') {
        return SW_ERROR;
    }
    for (i = 0; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return SW_ERROR;
        }
    }
    return SW_OK;
}

/* A prepared non-ASCII label must convert to an ACE label of 1..63 bytes. */
static int
sw_jid_label_unicode(const char *s)
{
    char    *ace;
    size_t   n;
    int      rc;

    /*
     * NFKC can produce a dot (U+2024 ONE DOT LEADER); idna_to_ascii_8z
     * would split on it and accept the pieces, so a dot is refused here.
     */
    if (strchr(s, '.') != NULL || strstr(s, "\xe3\x80\x82") != NULL) {
        return SW_ERROR;
    }

    ace = NULL;
    rc = idna_to_ascii_8z(s, &ace, SW_JID_IDNA_FLAGS);
    n = (rc == IDNA_SUCCESS && ace != NULL) ? strlen(ace) : 0;
    free(ace);

    if (rc != IDNA_SUCCESS || n == 0 || n > SW_JID_LABEL_MAX) {
        return SW_ERROR;
    }
    return SW_OK;
}

/*
 * RFC 7622 §3.2.1: A-labels are converted to U-labels.  A label that only
 * looks like one ("xn--" that does not decode and round-trip) is refused.
 * s is in dst; the prepared U-label replaces it.
 */
static int
sw_jid_label_alabel(char *dst)
{
    char  *u;
    int    rc, n;

    u = NULL;
    rc = idna_to_unicode_8z8z(dst, &u, SW_JID_IDNA_FLAGS);
    if (rc != IDNA_SUCCESS || u == NULL || strcmp(u, dst) == 0) {
        free(u);
        return SW_ERROR;
    }

    n = sw_jid_prep(u, strlen(u), SW_JID_LABEL, dst);
    free(u);

    if (n <= 0 || sw_jid_is_ascii(dst, (size_t) n)
        || sw_jid_label_unicode(dst) != SW_OK)
    {
        return SW_ERROR;
    }
    return n;
}

/* Prepares and checks one domain label into dst; returns its length. */
static int
sw_jid_label(const char *s, size_t len, char *dst)
{
    int  n;

    n = sw_jid_prep(s, len, SW_JID_LABEL, dst);
    if (n <= 0) {
        return SW_ERROR;
    }

    if (!sw_jid_is_ascii(dst, (size_t) n)) {
        return sw_jid_label_unicode(dst) == SW_OK ? n : SW_ERROR;
    }
    if (n >= 4 && memcmp(dst, "xn--", 4) == 0) {
        return sw_jid_label_alabel(dst);
    }
    return sw_jid_label_ldh(dst, (size_t) n) == SW_OK ? n : SW_ERROR;
}

/*
 * Length of the label separator ending at s[len - 1], 0 if none.  IDNA2003
 * (RFC 3490 §3.1) treats U+3002, U+FF0E and U+FF61 as dots too.
 */
static size_t
sw_jid_dot_before(const char *s, size_t len)
{
    if (len >= 1 && s[len - 1] == '.') {
        return 1;
    }
    if (len >= 3
        && (memcmp(s + len - 3, "\xe3\x80\x82", 3) == 0
            || memcmp(s + len - 3, "\xef\xbc\x8e", 3) == 0
            || memcmp(s + len - 3, "\xef\xbd\xa1", 3) == 0))
    {
        return 3;
    }
    return 0;
}

/* Length of the label separator starting at s (len bytes left), 0 if none. */
static size_t
sw_jid_dot_at(const char *s, size_t len)
{
    if (len >= 1 && s[0] == '.') {
        return 1;
    }
    if (len >= 3
        && (memcmp(s, "\xe3\x80\x82", 3) == 0
            || memcmp(s, "\xef\xbc\x8e", 3) == 0
            || memcmp(s, "\xef\xbd\xa1", 3) == 0))
    {
        return 3;
    }
    return 0;
}

/* RFC 7622 §3.2 and RFC 6874: "[" IPv6address "]", lower-cased into dst. */
static int
sw_jid_domain_ip6(const char *s, size_t len, char *dst)
{
    char             inner[INET6_ADDRSTRLEN];
    struct in6_addr  addr;
    size_t           i;

    if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(inner)) {
        return SW_ERROR;
    }
    memcpy(inner, s + 1, len - 2);
    inner[len - 2] = '\0';

    /* refuses zone identifiers ("%eth0") as well */
    if (inet_pton(AF_INET6, inner, &addr) != 1) {
        return SW_ERROR;
    }

    for (i = 0; i < len; i++) {
        dst[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + ('a' - 'A') : s[i];
    }
    dst[len] = '\0';
    return (int) len;
}

/*
 * Prepares a domainpart into dst (SW_JID_BUF bytes); returns its length or
 * SW_ERROR.  RFC 7622 §3.2.
 */
static int
sw_jid_domain(const char *s, size_t len, char *dst)
{
    char            label[SW_JID_BUF];
    struct in_addr  addr4;
    size_t          pos, end, dot, out, i;
    int             n;
    bool            numeric;

    /* §3.2: one trailing dot goes before any other canonicalization */
    len -= sw_jid_dot_before(s, len);
    if (len == 0) {
        return SW_ERROR;
    }

    if (s[0] == '[') {
        return sw_jid_domain_ip6(s, len, dst);
    }

    out = 0;
    pos = 0;
    for ( ;; ) {
        /* separators are matched before preparation (§3.1 note) */
        end = pos;
        dot = 0;
        while (end < len && (dot = sw_jid_dot_at(s + end, len - end)) == 0) {
            end++;
        }

        if (end == pos) {
            return SW_ERROR;  /* empty label: "a..b", ".a", "a.." */
        }

        /* labels are prepared one by one, as IDNA2003 ToASCII does */
        n = sw_jid_label(s + pos, end - pos, label);
        if (n < 0) {
            return SW_ERROR;
        }
        if (out + (out ? 1 : 0) + (size_t) n > SW_JID_MAX) {
            return SW_ERROR;
        }
        if (out) {
            dst[out++] = '.';
        }
        memcpy(dst + out, label, (size_t) n);
        out += (size_t) n;

        if (end == len) {
            break;
        }
        pos = end + dot;
        if (pos == len) {
            return SW_ERROR;  /* a second trailing dot */
        }
    }
    dst[out] = '\0';

    /*
     * All digits and dots: only a valid IPv4 address (RFC 3986 §3.2.2) makes
     * sense; "1.2.3" or "300.1.1.1" is neither an address nor a host name.
     */
    numeric = true;
    for (i = 0; i < out; i++) {
        if (!((dst[i] >= '0' && dst[i] <= '9') || dst[i] == '.')) {
            numeric = false;
            break;
        }
    }
    if (numeric && inet_pton(AF_INET, dst, &addr4) != 1) {
        return SW_ERROR;
    }

    return (int) out;
}

/*
 * Fills j from prepared parts: one pool allocation for node, domain,
 * resource, bare and full.  node and resource may be NULL.
 */
static void
sw_jid_build(sw_pool_t *pool, sw_jid_t *j, const char *node, size_t nlen,
             const char *domain, size_t dlen, const char *res, size_t rlen)
{
    size_t   blen, size;
    char    *p, *bare;

    blen = (node ? nlen + 1 : 0) + dlen;
    size = (node ? nlen + 1 : 0) + dlen + 1 + blen + 1;
    if (res != NULL) {
        size += rlen + 1 + blen + 1 + rlen + 1;
    }
    p = sw_pool_alloc(pool, size);

    j->node = NULL;
    if (node != NULL) {
        memcpy(p, node, nlen);
        p[nlen] = '\0';
        j->node = p;
        p += nlen + 1;
    }

    memcpy(p, domain, dlen);
    p[dlen] = '\0';
    j->domain = p;
    p += dlen + 1;

    bare = p;
    if (node != NULL) {
        memcpy(p, node, nlen);
        p += nlen;
        *p++ = '@';
    }
    memcpy(p, domain, dlen);
    p += dlen;
    *p++ = '\0';
    j->bare = bare;
    j->full = bare;

    j->resource = NULL;
    if (res != NULL) {
        memcpy(p, res, rlen);
        p[rlen] = '\0';
        j->resource = p;
        p += rlen + 1;

        memcpy(p, bare, blen);
        p[blen] = '/';
        memcpy(p + blen + 1, res, rlen);
        p[blen + 1 + rlen] = '\0';
        j->full = p;
    }
}

int
sw_jid_parse(sw_pool_t *pool, const char *s, sw_jid_t *out)
{
    char         node[SW_JID_BUF], domain[SW_JID_BUF], res[SW_JID_BUF];
    const char  *slash, *at, *dom, *end;
    int          nlen, dlen, rlen;

    if (s == NULL) {
        return SW_ERROR;
    }

    /* §3.2: the resource starts at the first '/', the node ends at the
     * first '@' before it ("a.example.com/b@example.net") */
    slash = strchr(s, '/');
    end = slash ? slash : s + strlen(s);
    at = memchr(s, '@', (size_t) (end - s));

    nlen = 0;
    dom = s;
    if (at != NULL) {
        nlen = sw_jid_prep(s, (size_t) (at - s), SW_JID_NODE, node);
        if (nlen <= 0) {
            return SW_ERROR;
        }
        dom = at + 1;
    }

    dlen = sw_jid_domain(dom, (size_t) (end - dom), domain);
    if (dlen < 0) {
        return SW_ERROR;
    }

    rlen = 0;
    if (slash != NULL) {
        rlen = sw_jid_prep(slash + 1, strlen(slash + 1), SW_JID_RESOURCE, res);
        if (rlen <= 0) {
            return SW_ERROR;
        }
    }

    sw_jid_build(pool, out, at ? node : NULL, (size_t) nlen,
                 domain, (size_t) dlen, slash ? res : NULL, (size_t) rlen);
    return SW_OK;
}

sw_jid_t *
sw_jid_new(sw_pool_t *pool, const char *s)
{
    sw_jid_t   tmp, *j;

    if (sw_jid_parse(pool, s, &tmp) != SW_OK) {
        return NULL;
    }
    j = sw_pool_alloc(pool, sizeof(*j));
    *j = tmp;
    return j;
}

sw_jid_t *
sw_jid_make(sw_pool_t *pool, const char *node, const char *domain,
            const char *resource)
{
    char       nbuf[SW_JID_BUF], dbuf[SW_JID_BUF], rbuf[SW_JID_BUF];
    sw_jid_t  *j;
    int        nlen, dlen, rlen;

    if (domain == NULL) {
        return NULL;
    }

    nlen = 0;
    if (node != NULL) {
        nlen = sw_jid_prep(node, strlen(node), SW_JID_NODE, nbuf);
        if (nlen <= 0) {
            return NULL;
        }
    }

    dlen = sw_jid_domain(domain, strlen(domain), dbuf);
    if (dlen < 0) {
        return NULL;
    }

    rlen = 0;
    if (resource != NULL) {
        rlen = sw_jid_prep(resource, strlen(resource), SW_JID_RESOURCE, rbuf);
        if (rlen <= 0) {
            return NULL;
        }
    }

    j = sw_pool_alloc(pool, sizeof(*j));
    sw_jid_build(pool, j, node ? nbuf : NULL, (size_t) nlen,
                 dbuf, (size_t) dlen, resource ? rbuf : NULL, (size_t) rlen);
    return j;
}

sw_jid_t *
sw_jid_copy(sw_pool_t *pool, const sw_jid_t *j)
{
    sw_jid_t  *c;

    if (j == NULL) {
        return NULL;
    }
    c = sw_pool_alloc(pool, sizeof(*c));
    sw_jid_build(pool, c, j->node, j->node ? strlen(j->node) : 0,
                 j->domain, strlen(j->domain),
                 j->resource, j->resource ? strlen(j->resource) : 0);
    return c;
}

bool
sw_jid_eq_full(const sw_jid_t *a, const sw_jid_t *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    /* RFC 7622 §3.2.3, §3.3.3: prepared parts compare octet for octet */
    return strcmp(a->full, b->full) == 0;
}

bool
sw_jid_eq_bare(const sw_jid_t *a, const sw_jid_t *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    return strcmp(a->bare, b->bare) == 0;
}

/*
 * The part functions return NULL for an empty result as well: no JID part
 * may be empty (RFC 7622 §3.1).
 */
const char *
sw_jid_nodeprep(sw_pool_t *pool, const char *s)
{
    char  buf[SW_JID_BUF];
    int   n;

    if (s == NULL) {
        return NULL;
    }
    n = sw_jid_prep(s, strlen(s), SW_JID_NODE, buf);
    return n > 0 ? sw_pool_strndup(pool, buf, (size_t) n) : NULL;
}

/* The whole domainpart: trailing dot, IP literals, per-label Nameprep. */
const char *
sw_jid_nameprep(sw_pool_t *pool, const char *s)
{
    char  buf[SW_JID_BUF];
    int   n;

    if (s == NULL) {
        return NULL;
    }
    n = sw_jid_domain(s, strlen(s), buf);
    return n > 0 ? sw_pool_strndup(pool, buf, (size_t) n) : NULL;
}

const char *
sw_jid_resourceprep(sw_pool_t *pool, const char *s)
{
    char  buf[SW_JID_BUF];
    int   n;

    if (s == NULL) {
        return NULL;
    }
    n = sw_jid_prep(s, strlen(s), SW_JID_RESOURCE, buf);
    return n > 0 ? sw_pool_strndup(pool, buf, (size_t) n) : NULL;
}
