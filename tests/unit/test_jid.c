/*
 * JID parsing and preparation (RFC 7622 §3 vectors, libidn profiles).
 *
 * Where the stringprep profiles (RFC 6122) and the PRECIS profiles of
 * RFC 7622 disagree, the tests assert what the profiles this server uses
 * actually do, and say so.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <idna.h>
#include <stringprep.h>

#include <skywave/skywave.h>
#include <skywave/sw_jid.h>

typedef struct {
    const char  *in;
    const char  *node;
    const char  *domain;
    const char  *resource;
    const char  *bare;
    const char  *full;
} test_jid_vec_t;

static const test_jid_vec_t test_jid_valid[] = {
    /* RFC 7622 §3.5, table 1 */
    { "juliet@example.com", "juliet", "example.com", NULL,
      "juliet@example.com", "juliet@example.com" },
    { "juliet@example.com/foo", "juliet", "example.com", "foo",
      "juliet@example.com", "juliet@example.com/foo" },
    { "juliet@example.com/foo bar", "juliet", "example.com", "foo bar",
      "juliet@example.com", "juliet@example.com/foo bar" },
    { "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar",
      "juliet@example.com", "juliet@example.com/foo@bar" },
    { "foo\\20bar@example.com", "foo\\20bar", "example.com", NULL,
      "foo\\20bar@example.com", "foo\\20bar@example.com" },
    { "fussball@example.com", "fussball", "example.com", NULL,
      "fussball@example.com", "fussball@example.com" },
    /* Nodeprep case-folds U+00DF to "ss" (B.2); PRECIS would keep it */
    { "fu\xc3\x9f" "ball@example.com", "fussball", "example.com", NULL,
      "fussball@example.com", "fussball@example.com" },
    { "\xcf\x80@example.com", "\xcf\x80", "example.com", NULL,
      "\xcf\x80@example.com", "\xcf\x80@example.com" },
    { "\xce\xa3@example.com/foo", "\xcf\x83", "example.com", "foo",
      "\xcf\x83@example.com", "\xcf\x83@example.com/foo" },
    { "\xcf\x83@example.com/foo", "\xcf\x83", "example.com", "foo",
      "\xcf\x83@example.com", "\xcf\x83@example.com/foo" },
    /* Nodeprep folds final sigma too (PRECIS keeps U+03C2 distinct) */
    { "\xcf\x82@example.com/foo", "\xcf\x83", "example.com", "foo",
      "\xcf\x83@example.com", "\xcf\x83@example.com/foo" },
    { "king@example.com/\xe2\x99\x9a", "king", "example.com", "\xe2\x99\x9a",
      "king@example.com", "king@example.com/\xe2\x99\x9a" },
    { "example.com", NULL, "example.com", NULL,
      "example.com", "example.com" },
    { "example.com/foobar", NULL, "example.com", "foobar",
      "example.com", "example.com/foobar" },
    { "a.example.com/b@example.net", NULL, "a.example.com", "b@example.net",
      "a.example.com", "a.example.com/b@example.net" },

    /*
     * Table 2 examples that the RFC 6122 profiles accept: #18 (leading space
     * in a resource is fine for Resourceprep), #20 (U+2163 maps to "iv"
     * under Nodeprep), #21 (symbols are not prohibited by Nodeprep).
     */
    { "juliet@example.com/ foo", "juliet", "example.com", " foo",
      "juliet@example.com", "juliet@example.com/ foo" },
    { "henry\xe2\x85\xa3@example.com", "henryiv", "example.com", NULL,
      "henryiv@example.com", "henryiv@example.com" },
    { "\xe2\x99\x9a@example.com", "\xe2\x99\x9a", "example.com", NULL,
      "\xe2\x99\x9a@example.com", "\xe2\x99\x9a@example.com" },

    /* domains: trailing dot, case, IP literals, IDNs */
    { "EXAMPLE.com.", NULL, "example.com", NULL,
      "example.com", "example.com" },
    { "JuLiEt@ExAmPlE.CoM/BalCony", "juliet", "example.com", "BalCony",
      "juliet@example.com", "juliet@example.com/BalCony" },
    { "[::1]", NULL, "[::1]", NULL, "[::1]", "[::1]" },
    { "u@[2001:DB8::1]/r", "u", "[2001:db8::1]", "r",
      "u@[2001:db8::1]", "u@[2001:db8::1]/r" },
    { "user@192.0.2.1/r", "user", "192.0.2.1", "r",
      "user@192.0.2.1", "user@192.0.2.1/r" },
    { "user@192.0.2.1.", "user", "192.0.2.1", NULL,
      "user@192.0.2.1", "user@192.0.2.1" },
    { "x@localhost", "x", "localhost", NULL, "x@localhost", "x@localhost" },
    { "x@ex-ample.com", "x", "ex-ample.com", NULL,
      "x@ex-ample.com", "x@ex-ample.com" },
    { "x@123.example", "x", "123.example", NULL,
      "x@123.example", "x@123.example" },
    { "x@b\xc3\xbc" "cher.example", "x", "b\xc3\xbc" "cher.example", NULL,
      "x@b\xc3\xbc" "cher.example", "x@b\xc3\xbc" "cher.example" },
    { "x@B\xc3\x9c" "CHER.Example", "x", "b\xc3\xbc" "cher.example", NULL,
      "x@b\xc3\xbc" "cher.example", "x@b\xc3\xbc" "cher.example" },
    /* RFC 7622 §3.2.1: A-labels become U-labels */
    { "x@XN--bcher-kva.example", "x", "b\xc3\xbc" "cher.example", NULL,
      "x@b\xc3\xbc" "cher.example", "x@b\xc3\xbc" "cher.example" },
    /* IDNA2003 dots: U+3002, U+FF0E, and U+FF61 as the trailing dot */
    { "x@example\xe3\x80\x82" "com", "x", "example.com", NULL,
      "x@example.com", "x@example.com" },
    { "x@example\xef\xbc\x8e" "com\xef\xbd\xa1", "x", "example.com", NULL,
      "x@example.com", "x@example.com" },
    /* bidi is checked per label: an Arabic TLD after an LTR label */
    { "x@example.\xd8\xa7\xd8\xa8", "x", "example.\xd8\xa7\xd8\xa8", NULL,
      "x@example.\xd8\xa7\xd8\xa8", "x@example.\xd8\xa7\xd8\xa8" },
    /* "<" + U+0338 composes to U+226E under NFKC: not a prohibited '<' */
    { "a<\xcc\xb8" "b@example.com", "a\xe2\x89\xae" "b", "example.com", NULL,
      "a\xe2\x89\xae" "b@example.com", "a\xe2\x89\xae" "b@example.com" },
    /* B.1: U+00AD maps to nothing */
    { "soft\xc2\xadhyphen@example.com", "softhyphen", "example.com", NULL,
      "softhyphen@example.com", "softhyphen@example.com" },
    /* everything after the first '/' is the resource */
    { "a@b/c/d@e", "a", "b", "c/d@e", "a@b", "a@b/c/d@e" },
};

static const char *const test_jid_invalid[] = {
    "", "@", "/", "@example.com", "user@", "user@/res", "example.com/",
    "/foobar", "@example.com/", "juliet@example.com/", ".", "user@.",
    "juliet@example..com", "user@.example.com", "user@example.com..",
    "\"juliet\"@example.com", "foo bar@example.com", "a:b@example.com",
    "a&b@example.com", "a'b@example.com", "a<b@example.com",
    "a>b@example.com", "a\x01@example.com", "a\x7f@example.com",
    "user@example.com/a\x01", "user@example.com/a\x7f",
    "user@exa mple.com", "user@exa_mple.com", "user@-example.com",
    "user@example-.com", "user@exa!mple.com", "user@ex@mple.com",
    "user@[::1", "user@[zzz]", "user@[]", "user@[::1]x", "user@[1.2.3.4]",
    "user@[fe80::1%eth0]", "user@::1", "user@1.2.3", "user@300.1.1.1",
    "user@1.2.3.4.5",
    /* a fake A-label */
    "user@xn--zzzz.example",
    /* U+2024 becomes '.' under NFKC: not a way to smuggle a separator */
    "user@a\xe2\x80\xa4" "b.example",
    /* mixed directions in one label (RFC 3454 §6) */
    "user@\xd8\xa7" "a.example",
    /* invalid UTF-8 */
    "a\xff@example.com", "a\xc3@example.com", "user@example.com/\xc3",
    "user@exampl\xe9.com",
    /* parts that map to nothing */
    "\xc2\xad@example.com", "user@example.com/\xc2\xad",
    "user@\xc2\xad.example",
    /* fullwidth '@' maps to a prohibited '@' in the node */
    "a\xef\xbc\xa0" "b@example.com",
};

static int
test_setup(void **state)
{
    *state = sw_pool_new(0);
    return 0;
}

static int
test_teardown(void **state)
{
    sw_pool_free(*state);
    return 0;
}

static void
test_assert_str(const char *got, const char *want)
{
    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static void
test_valid_vectors(void **state)
{
    sw_pool_t  *pool = *state;
    sw_jid_t    j;
    size_t      i;

    for (i = 0; i < sizeof(test_jid_valid) / sizeof(test_jid_valid[0]); i++) {
        const test_jid_vec_t *v = &test_jid_valid[i];

        print_message("valid: %s\n", v->in);
        memset(&j, 0, sizeof(j));
        assert_int_equal(sw_jid_parse(pool, v->in, &j), SW_OK);
        test_assert_str(j.node, v->node);
        test_assert_str(j.domain, v->domain);
        test_assert_str(j.resource, v->resource);
        test_assert_str(j.bare, v->bare);
        test_assert_str(j.full, v->full);
    }
}

static void
test_invalid_vectors(void **state)
{
    sw_pool_t  *pool = *state;
    sw_jid_t    j;
    size_t      i;

    for (i = 0; i < sizeof(test_jid_invalid) / sizeof(test_jid_invalid[0]);
         i++)
    {
        print_message("invalid: %s\n", test_jid_invalid[i]);
        /* the output is left alone on failure */
        memset(&j, 0x5a, sizeof(j));
        assert_int_equal(sw_jid_parse(pool, test_jid_invalid[i], &j),
                         SW_ERROR);
        assert_ptr_equal(j.domain, (const char *) (uintptr_t)
                         0x5a5a5a5a5a5a5a5aULL);
        assert_null(sw_jid_new(pool, test_jid_invalid[i]));
    }
    assert_int_equal(sw_jid_parse(pool, NULL, &j), SW_ERROR);
    assert_null(sw_jid_new(pool, NULL));
}

/* A string of n copies of unit (which is ulen bytes), plus tail. */
static char *
test_repeat(const char *unit, size_t n, const char *tail)
{
    size_t  ulen = strlen(unit), tlen = strlen(tail), i;
    char   *s = malloc(ulen * n + tlen + 1);

    assert_non_null(s);
    for (i = 0; i < n; i++) {
        memcpy(s + i * ulen, unit, ulen);
    }
    memcpy(s + ulen * n, tail, tlen + 1);
    return s;
}

static void
test_jid_check_len(sw_pool_t *pool, const char *fmt, const char *part,
                   bool valid)
{
    char       *s;
    sw_jid_t    j;
    int         n;

    n = snprintf(NULL, 0, fmt, part);
    s = malloc((size_t) n + 1);
    assert_non_null(s);
    snprintf(s, (size_t) n + 1, fmt, part);
    assert_int_equal(sw_jid_parse(pool, s, &j), valid ? SW_OK : SW_ERROR);
    free(s);
}

static void
test_lengths(void **state)
{
    sw_pool_t  *pool = *state;
    char       *p, *d, *l;
    sw_jid_t    j;

    /* RFC 7622 §3.1: 1023 bytes per part, after preparation */
    p = test_repeat("a", 1023, "");
    test_jid_check_len(pool, "%s@example.com", p, true);
    test_jid_check_len(pool, "user@example.com/%s", p, true);
    free(p);
    p = test_repeat("a", 1024, "");
    test_jid_check_len(pool, "%s@example.com", p, false);
    test_jid_check_len(pool, "user@example.com/%s", p, false);
    free(p);

    /* bytes, not characters: 511 x U+00E9 + "a" is 1023 bytes */
    p = test_repeat("\xc3\xa9", 511, "a");
    test_jid_check_len(pool, "%s@example.com", p, true);
    test_jid_check_len(pool, "user@example.com/%s", p, true);
    free(p);
    p = test_repeat("\xc3\xa9", 512, "");
    test_jid_check_len(pool, "%s@example.com", p, false);
    test_jid_check_len(pool, "user@example.com/%s", p, false);
    free(p);

    /* the limit applies to the prepared form: U+00DF grows to "ss" */
    p = test_repeat("a", 1021, "\xc3\x9f@example.com");
    assert_int_equal(sw_jid_parse(pool, p, &j), SW_OK);
    assert_int_equal(strlen(j.node), 1023);
    free(p);
    p = test_repeat("a", 1022, "\xc3\x9f@example.com");
    assert_int_equal(sw_jid_parse(pool, p, &j), SW_ERROR);
    free(p);

    /* ...and long input that maps to almost nothing is fine */
    p = test_repeat("\xc2\xad", 3000, "x@example.com/r");
    assert_int_equal(sw_jid_parse(pool, p, &j), SW_OK);
    assert_string_equal(j.full, "x@example.com/r");
    free(p);
    p = test_repeat("\xc2\xad", 3000, "R");
    assert_string_equal(sw_jid_resourceprep(pool, p), "R");
    free(p);

    /* a label is 1..63 bytes (RFC 1034 §3.1) */
    p = test_repeat("a", 63, ".example.com");
    test_jid_check_len(pool, "user@%s", p, true);
    free(p);
    p = test_repeat("a", 64, ".example.com");
    test_jid_check_len(pool, "user@%s", p, false);
    free(p);
    /* an IDN label counts in its ACE form: 60 x U+00FC is far over 63 */
    p = test_repeat("\xc3\xbc", 60, ".example");
    test_jid_check_len(pool, "user@%s", p, false);
    free(p);

    /* the whole domain: 16 labels of 63 plus 15 dots is 1023 bytes */
    p = test_repeat("c", 63, "");
    l = test_repeat("b", 63, ".");
    d = test_repeat(l, 15, p);
    assert_int_equal(strlen(d), 1023);
    test_jid_check_len(pool, "user@%s", d, true);
    test_jid_check_len(pool, "user@%s.", d, true);
    test_jid_check_len(pool, "user@%s.c", d, false);
    test_jid_check_len(pool, "user@%s/r", d, true);
    free(l);
    free(d);
    free(p);
}

static void
test_make(void **state)
{
    sw_pool_t  *pool = *state;
    sw_jid_t   *j, *k;

    j = sw_jid_make(pool, "Juliet", "Example.COM.", "Balcony");
    assert_non_null(j);
    assert_string_equal(j->node, "juliet");
    assert_string_equal(j->domain, "example.com");
    assert_string_equal(j->resource, "Balcony");
    assert_string_equal(j->bare, "juliet@example.com");
    assert_string_equal(j->full, "juliet@example.com/Balcony");

    k = sw_jid_new(pool, "JULIET@example.com/Balcony");
    assert_non_null(k);
    assert_true(sw_jid_eq_full(j, k));

    j = sw_jid_make(pool, NULL, "example.com", NULL);
    assert_non_null(j);
    assert_null(j->node);
    assert_null(j->resource);
    assert_string_equal(j->bare, "example.com");
    assert_string_equal(j->full, "example.com");

    j = sw_jid_make(pool, "\xce\xa3", "b\xc3\xbc" "cher.example", "a/b@c");
    assert_non_null(j);
    assert_string_equal(j->full, "\xcf\x83@b\xc3\xbc" "cher.example/a/b@c");

    j = sw_jid_make(pool, NULL, "[::1]", "r");
    assert_non_null(j);
    assert_string_equal(j->full, "[::1]/r");

    assert_null(sw_jid_make(pool, "a b", "example.com", NULL));
    assert_null(sw_jid_make(pool, "a@b", "example.com", NULL));
    assert_null(sw_jid_make(pool, "a/b", "example.com", NULL));
    assert_null(sw_jid_make(pool, "", "example.com", NULL));
    assert_null(sw_jid_make(pool, "a", "example.com", ""));
    assert_null(sw_jid_make(pool, "a", "example.com", "x\x01"));
    assert_null(sw_jid_make(pool, "a", NULL, NULL));
    assert_null(sw_jid_make(pool, "a", "", NULL));
    assert_null(sw_jid_make(pool, "a", "exa mple.com", NULL));
    assert_null(sw_jid_make(pool, "a", "example.com/r", NULL));
    assert_null(sw_jid_make(pool, "a", "b@example.com", NULL));
}

static void
test_equality(void **state)
{
    sw_pool_t  *pool = *state;
    sw_jid_t   *a, *b, *c, *d, *e;

    a = sw_jid_new(pool, "Juliet@Example.com/balcony");
    b = sw_jid_new(pool, "juliet@EXAMPLE.COM./balcony");
    c = sw_jid_new(pool, "juliet@example.com/Balcony");
    d = sw_jid_new(pool, "juliet@example.com");
    e = sw_jid_new(pool, "romeo@example.com/balcony");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_non_null(e);

    assert_true(sw_jid_eq_full(a, b));
    assert_true(sw_jid_eq_bare(a, b));
    /* resources are case-sensitive (Resourceprep does no case mapping) */
    assert_false(sw_jid_eq_full(a, c));
    assert_true(sw_jid_eq_bare(a, c));
    assert_false(sw_jid_eq_full(a, d));
    assert_true(sw_jid_eq_bare(a, d));
    assert_false(sw_jid_eq_full(a, e));
    assert_false(sw_jid_eq_bare(a, e));

    assert_true(sw_jid_eq_full(a, a));
    assert_true(sw_jid_eq_full(NULL, NULL));
    assert_false(sw_jid_eq_full(a, NULL));
    assert_false(sw_jid_eq_bare(NULL, a));

    /* "node" vs domain-only with the same text are different JIDs */
    a = sw_jid_new(pool, "example.com/x");
    b = sw_jid_new(pool, "x@example.com");
    assert_false(sw_jid_eq_full(a, b));
    assert_false(sw_jid_eq_bare(a, b));

    /* Σ, σ and ς all fold to σ under Nodeprep */
    a = sw_jid_new(pool, "\xce\xa3@example.com");
    b = sw_jid_new(pool, "\xcf\x82@example.com");
    assert_true(sw_jid_eq_bare(a, b));
}

static void
test_copy(void **state)
{
    sw_pool_t  *pool = *state, *other;
    sw_jid_t   *a, *c;

    other = sw_pool_new(0);
    a = sw_jid_new(other, "juliet@example.com/balcony");
    assert_non_null(a);
    c = sw_jid_copy(pool, a);
    assert_non_null(c);
    assert_ptr_not_equal(c->full, a->full);
    sw_pool_free(other);  /* the copy owns its strings */

    assert_string_equal(c->node, "juliet");
    assert_string_equal(c->domain, "example.com");
    assert_string_equal(c->resource, "balcony");
    assert_string_equal(c->bare, "juliet@example.com");
    assert_string_equal(c->full, "juliet@example.com/balcony");

    other = sw_pool_new(0);
    a = sw_jid_new(other, "example.com");
    c = sw_jid_copy(pool, a);
    sw_pool_free(other);
    assert_null(c->node);
    assert_null(c->resource);
    assert_string_equal(c->bare, "example.com");
    assert_string_equal(c->full, "example.com");

    assert_null(sw_jid_copy(pool, NULL));
}

static void
test_part_prep(void **state)
{
    sw_pool_t  *pool = *state;

    test_assert_str(sw_jid_nodeprep(pool, "JuLiEt"), "juliet");
    test_assert_str(sw_jid_nodeprep(pool, "fu\xc3\x9f" "ball"), "fussball");
    test_assert_str(sw_jid_nodeprep(pool, "\xce\xa3"), "\xcf\x83");
    test_assert_str(sw_jid_nodeprep(pool, "a\\40b"), "a\\40b");
    test_assert_str(sw_jid_nodeprep(pool, ""), NULL);
    test_assert_str(sw_jid_nodeprep(pool, NULL), NULL);
    test_assert_str(sw_jid_nodeprep(pool, "a@b"), NULL);
    test_assert_str(sw_jid_nodeprep(pool, "a b"), NULL);
    test_assert_str(sw_jid_nodeprep(pool, "\xc2\xad"), NULL);

    test_assert_str(sw_jid_nameprep(pool, "EXAMPLE.COM."), "example.com");
    test_assert_str(sw_jid_nameprep(pool, "[::1]"), "[::1]");
    test_assert_str(sw_jid_nameprep(pool, "192.0.2.1"), "192.0.2.1");
    test_assert_str(sw_jid_nameprep(pool, "xn--bcher-kva"),
                    "b\xc3\xbc" "cher");
    test_assert_str(sw_jid_nameprep(pool, "\xef\xbc\xa1\xef\xbc\xa2"), "ab");
    test_assert_str(sw_jid_nameprep(pool, ""), NULL);
    test_assert_str(sw_jid_nameprep(pool, "."), NULL);
    test_assert_str(sw_jid_nameprep(pool, NULL), NULL);
    test_assert_str(sw_jid_nameprep(pool, "exa mple"), NULL);
    test_assert_str(sw_jid_nameprep(pool, "a..b"), NULL);

    test_assert_str(sw_jid_resourceprep(pool, "Foo Bar"), "Foo Bar");
    test_assert_str(sw_jid_resourceprep(pool, "a/b@c"), "a/b@c");
    test_assert_str(sw_jid_resourceprep(pool, "Foo\xe2\x85\xa3"), "FooIV");
    test_assert_str(sw_jid_resourceprep(pool, ""), NULL);
    test_assert_str(sw_jid_resourceprep(pool, NULL), NULL);
    test_assert_str(sw_jid_resourceprep(pool, "\x01"), NULL);
}

typedef enum {
    TEST_NODE = 0,
    TEST_LABEL,
    TEST_RESOURCE
} test_part_e;

/* libidn, called directly, as the reference. */
static const char *
test_reference(test_part_e part, const char *s, char *buf, size_t cap)
{
    const Stringprep_profile  *profile;
    char                      *ace;
    int                        rc;

    profile = part == TEST_NODE ? stringprep_xmpp_nodeprep
              : part == TEST_LABEL ? stringprep_nameprep
              : stringprep_xmpp_resourceprep;

    assert_true(strlen(s) < cap);
    strcpy(buf, s);
    if (stringprep(buf, cap, 0, profile) != STRINGPREP_OK || buf[0] == '\0') {
        return NULL;
    }
    if (part != TEST_LABEL) {
        return buf;
    }

    /* a domain label also has to pass ToASCII with the STD3 rules */
    ace = NULL;
    rc = idna_to_ascii_8z(buf, &ace,
                          IDNA_ALLOW_UNASSIGNED | IDNA_USE_STD3_ASCII_RULES);
    if (rc != IDNA_SUCCESS || strlen(ace) > 63) {
        free(ace);
        return NULL;
    }
    free(ace);
    return buf;
}

/*
 * A label is checked as the first label of a domain, so that an all-digit
 * label is not taken for a bad IPv4 address.
 */
static const char *
test_ours(sw_pool_t *pool, test_part_e part, const char *s)
{
    char         dom[2048];
    const char  *r;
    size_t       n;

    switch (part) {
    case TEST_NODE:
        return sw_jid_nodeprep(pool, s);
    case TEST_LABEL:
        snprintf(dom, sizeof(dom), "%s.example", s);
        r = sw_jid_nameprep(pool, dom);
        if (r == NULL) {
            return NULL;
        }
        n = strlen(r);
        assert_true(n > 8);
        assert_string_equal(r + n - 8, ".example");
        return sw_pool_strndup(pool, r, n - 8);
    default:
        return sw_jid_resourceprep(pool, s);
    }
}

static void
test_agree(sw_pool_t *pool, test_part_e part, const char *s)
{
    char         ref[2048], slow[2048];
    const char  *want, *got, *got_slow;

    want = test_reference(part, s, ref, sizeof(ref));
    got = test_ours(pool, part, s);
    if ((want == NULL) != (got == NULL)
        || (want != NULL && strcmp(want, got) != 0))
    {
        fail_msg("part %d, \"%s\": libidn %s%s%s, ours %s%s%s", (int) part, s,
                 want ? "\"" : "", want ? want : "invalid", want ? "\"" : "",
                 got ? "\"" : "", got ? got : "invalid", got ? "\"" : "");
    }

    /* the same text with a U+00AD (mapped to nothing) takes the slow path */
    snprintf(slow, sizeof(slow), "%s\xc2\xad", s);
    got_slow = test_ours(pool, part, slow);
    if ((got == NULL) != (got_slow == NULL)
        || (got != NULL && strcmp(got, got_slow) != 0))
    {
        fail_msg("part %d, \"%s\": fast path %s, slow path %s", (int) part, s,
                 got ? got : "invalid", got_slow ? got_slow : "invalid");
    }
}

static void
test_fast_path_agrees(void **state)
{
    sw_pool_t      *pool = *state;
    char            s[32];
    int             c, part, i, n, k;
    unsigned int    seed = 12345;

    for (part = TEST_NODE; part <= TEST_RESOURCE; part++) {
        /* every ASCII character, inside, first and last */
        for (c = 1; c < 0x80; c++) {
            if (part == TEST_LABEL && c == '.') {
                continue;  /* a separator, not part of a label */
            }
            snprintf(s, sizeof(s), "x%cY", c);
            test_agree(pool, (test_part_e) part, s);
            snprintf(s, sizeof(s), "%cab", c);
            test_agree(pool, (test_part_e) part, s);
            snprintf(s, sizeof(s), "Ab%c", c);
            test_agree(pool, (test_part_e) part, s);
            snprintf(s, sizeof(s), "%c", c);
            test_agree(pool, (test_part_e) part, s);
        }

        /* pseudo-random mixed-case ASCII strings */
        for (i = 0; i < 2000; i++) {
            n = 1 + (int) ((seed = seed * 1103515245u + 12345u) >> 16) % 20;
            for (k = 0; k < n; k++) {
                seed = seed * 1103515245u + 12345u;
                c = 0x21 + (int) ((seed >> 16) % 94);
                /* mostly letters and digits, so that many are valid */
                if ((seed >> 8) % 4 != 0) {
                    c = "abcXYZmnoPQR0189-_"[(seed >> 20) % 18];
                }
                s[k] = (char) (part == TEST_LABEL && c == '.' ? 'q' : c);
            }
            s[n] = '\0';
            test_agree(pool, (test_part_e) part, s);
        }
    }
}

static void
test_mixed_case_same_as_lower(void **state)
{
    sw_pool_t  *pool = *state;
    sw_jid_t   *a, *b;
    size_t      i;
    static const char *const pairs[][2] = {
        { "JuLiEt@ExAmPlE.CoM/Res", "juliet@example.com/Res" },
        /* non-ASCII forces stringprep on the whole part */
        { "JUL\xc3\x89T@EXAMPL\xc3\x89.COM",
          "jul\xc3\xa9t@exampl\xc3\xa9.com" },
        { "\xce\xa3\xce\xa3@example.com", "\xcf\x83\xcf\x83@example.com" },
        { "JULIET\xc2\xad@EXAMPLE\xc2\xad.COM/R", "juliet@example.com/R" },
        { "\xef\xbc\xaa\xef\xbd\x95liet@example.com", "juliet@example.com" },
    };

    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        a = sw_jid_new(pool, pairs[i][0]);
        b = sw_jid_new(pool, pairs[i][1]);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a->full, b->full);
        assert_string_equal(a->full, pairs[i][1]);
        assert_true(sw_jid_eq_full(a, b));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_vectors,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_vectors,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_lengths,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_make,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_equality,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_copy,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_part_prep,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_fast_path_agrees,
                                        test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_mixed_case_same_as_lower,
                                        test_setup, test_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
