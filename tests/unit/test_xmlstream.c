/* Unit tests: the incremental XML stream parser. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

#define HDR_CLIENT \
    "<stream:stream to='example.com' xmlns='jabber:client'" \
    " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'" \
    " xml:lang='en'>"

/* What the callbacks saw, as one string, plus counters. */
typedef struct rec_s {
    sw_xmlstream_t *s;
    sw_buf_t        log;
    int             opens, elems, closes, errors;
    char            cond[64];
    const char     *pause_on;   /* element name to pause after */
    bool            reset_too;  /* also reset in that callback */
} rec_t;

static void
rec_open(void *ud, sw_xml_t *hdr)
{
    rec_t *r = ud;
    char  *s = sw_xml_to_string(hdr, NULL);

    r->opens++;
    sw_buf_printf(&r->log, "OPEN %s xmlns=%s\n", s,
                  sw_xml_attr(hdr, "xmlns") ? sw_xml_attr(hdr, "xmlns")
                                            : "(none)");
    free(s);
}

/* Character data comes out as one text node per run, whatever the
 * feed sizes were, and every node is linked consistently. */
static void
check_tree(const sw_xml_t *e)
{
    const sw_xml_t *c, *prev = NULL;

    for (c = e->first; c != NULL; prev = c, c = c->next) {
        assert_ptr_equal(c->parent, e);
        assert_ptr_equal(c->prev, prev);
        assert_ptr_equal(c->pool, e->pool);
        if (c->type == SW_XML_TEXT) {
            assert_true(prev == NULL || prev->type != SW_XML_TEXT);
            assert_int_equal(strlen(c->text), c->text_len);
        } else {
            check_tree(c);
        }
    }
    assert_ptr_equal(e->last, prev);
}

static void
rec_element(void *ud, sw_xml_t *e, sw_pool_t *pool)
{
    rec_t *r = ud;
    char  *s = sw_xml_to_string(e, SW_NS_CLIENT);

    assert_ptr_equal(e->pool, pool);
    check_tree(e);
    assert_null(e->parent);
    r->elems++;
    sw_buf_printf(&r->log, "%s\n", s);
    free(s);
    if (r->pause_on != NULL && strcmp(e->name, r->pause_on) == 0) {
        sw_xmlstream_pause(r->s);
        if (r->reset_too) {
            sw_xmlstream_reset(r->s);
        }
    }
    sw_pool_free(pool);
}

static void
rec_close(void *ud)
{
    rec_t *r = ud;

    r->closes++;
    sw_buf_append_str(&r->log, "CLOSE\n");
}

static void
rec_error(void *ud, const char *cond, const char *text)
{
    rec_t *r = ud;

    assert_non_null(text);
    r->errors++;
    snprintf(r->cond, sizeof(r->cond), "%s", cond);
    sw_buf_printf(&r->log, "ERROR %s\n", cond);
}

static const sw_xmlstream_cb_t rec_cb = {
    rec_open, rec_element, rec_close, rec_error
};

static void
rec_init(rec_t *r, const sw_xml_limits_t *lim)
{
    memset(r, 0, sizeof(*r));
    sw_buf_init(&r->log);
    r->s = sw_xmlstream_new(lim, &rec_cb, r);
}

static void
rec_done(rec_t *r)
{
    sw_xmlstream_free(r->s);
    sw_buf_free(&r->log);
}

/* Feeds all of data in pieces of step bytes; returns the last rc. */
static int
feed_steps(rec_t *r, const char *data, size_t len, size_t step)
{
    size_t off, n, used;
    int    rc = SW_OK;

    for (off = 0; off < len; off += n) {
        n = len - off < step ? len - off : step;
        rc = sw_xmlstream_feed(r->s, data + off, n, &used);
        if (rc != SW_OK) {
            return rc;
        }
        assert_int_equal(used, n);
    }
    return rc;
}

/* ------------------------------------------------ a realistic stream */

static const char client_stream[] =
    "<?xml version='1.0'?>" HDR_CLIENT "\n"
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>phone</resource></bind></iq>"
    " \n <presence><show>away</show>"
    "<status>Gone &amp; back &lt;soon&gt; &#x263A; \xe2\x98\x83</status>"
    "<c xmlns=\"http://jabber.org/protocol/caps\" hash='sha-1' node='n'"
    " ver='v=='/></presence>\n\n"
    "<message to='juliet@example.com/balcony' type='chat' id='m1'>"
    "<body>Wherefore art thou, Romeo? ' \" &apos;</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<x xmlns='jabber:x:data' type='submit'><field var='a'>"
    "<value>1</value></field></x></message>"
    "   "
    "<message><body><![CDATA[<b>bold</b> & ]]>more</body></message>"
    "\n \n"
    "</stream:stream>";

static const char client_expected[] =
    "OPEN <stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
    " to='example.com' version='1.0' xml:lang='en'/> xmlns=jabber:client\n"
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<resource>phone</resource></bind></iq>\n"
    "<presence><show>away</show>"
    "<status>Gone &amp; back &lt;soon&gt; \xe2\x98\xba \xe2\x98\x83</status>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n'"
    " ver='v=='/></presence>\n"
    "<message to='juliet@example.com/balcony' type='chat' id='m1'>"
    "<body>Wherefore art thou, Romeo? ' \" '</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<x xmlns='jabber:x:data' type='submit'><field var='a'>"
    "<value>1</value></field></x></message>\n"
    "<message><body>&lt;b&gt;bold&lt;/b&gt; &amp; more</body></message>\n"
    "CLOSE\n";

static void
test_client_stream_whole(void **state)
{
    rec_t  r;
    size_t used = 0;

    rec_init(&r, NULL);
    assert_int_equal(sw_xmlstream_feed(r.s, client_stream,
                                       sizeof(client_stream) - 1, &used),
                     SW_DONE);
    assert_int_equal(used, sizeof(client_stream) - 1);
    assert_string_equal(r.log.data, client_expected);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.elems, 4);
    assert_int_equal(r.closes, 1);
    assert_int_equal(r.errors, 0);
    /* Closed: more input is ignored. */
    assert_int_equal(sw_xmlstream_feed(r.s, "<a/>", 4, NULL), SW_DONE);
    assert_int_equal(r.elems, 4);
    rec_done(&r);
}

static void
test_client_stream_every_split(void **state)
{
    size_t len = sizeof(client_stream) - 1, k, used;
    rec_t  r;
    int    rc;

    for (k = 1; k < len; k++) {
        rec_init(&r, NULL);
        rc = sw_xmlstream_feed(r.s, client_stream, k, &used);
        assert_int_equal(rc, SW_OK);
        assert_int_equal(used, k);
        rc = sw_xmlstream_feed(r.s, client_stream + k, len - k, &used);
        assert_int_equal(rc, SW_DONE);
        assert_int_equal(used, len - k);
        if (strcmp(r.log.data, client_expected) != 0) {
            fail_msg("split at %zu: got\n%s", k, r.log.data);
        }
        rec_done(&r);
    }
}

static void
test_client_stream_bytewise(void **state)
{
    rec_t r;

    rec_init(&r, NULL);
    assert_int_equal(feed_steps(&r, client_stream, sizeof(client_stream) - 1,
                                1), SW_DONE);
    assert_string_equal(r.log.data, client_expected);
    rec_done(&r);

    /* Odd sizes too. */
    rec_init(&r, NULL);
    assert_int_equal(feed_steps(&r, client_stream, sizeof(client_stream) - 1,
                                7), SW_DONE);
    assert_string_equal(r.log.data, client_expected);
    rec_done(&r);
}

static void
test_server_stream_ns(void **state)
{
    rec_t       r;
    const char *in =
        "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
        " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        "<db:result from='a' to='b'>key</db:result>"
        "<message from='x@a' to='y@b'><body>hi</body></message>";

    rec_init(&r, NULL);
    assert_int_equal(sw_xmlstream_feed(r.s, in, strlen(in), NULL), SW_OK);
    assert_string_equal(r.log.data,
        "OPEN <stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
        " version='1.0'/> xmlns=jabber:server\n"
        "<result xmlns='jabber:server:dialback' from='a' to='b'>key</result>\n"
        "<message from='x@a' to='y@b'><body>hi</body></message>\n");
    rec_done(&r);
}

/* --------------------------------------------------------- errors */

static void
expect_error(const sw_xml_limits_t *lim, const char *in, size_t step,
             const char *cond)
{
    rec_t r;
    int   rc;

    rec_init(&r, lim);
    rc = feed_steps(&r, in, strlen(in), step);
    if (rc != SW_ERROR) {
        fail_msg("no error for (step %zu): %s\nlog: %s", step, in, r.log.data);
    }
    assert_int_equal(r.errors, 1);
    assert_string_equal(r.cond, cond);
    /* Dead from now on, silently. */
    assert_int_equal(sw_xmlstream_feed(r.s, "<a/>", 4, NULL), SW_ERROR);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT, strlen(HDR_CLIENT),
                                       NULL), SW_ERROR);
    assert_int_equal(r.errors, 1);
    rec_done(&r);
}

static void
expect_error_all(const sw_xml_limits_t *lim, const char *in,
                 const char *cond)
{
    expect_error(lim, in, strlen(in), cond);
    expect_error(lim, in, 1, cond);
    expect_error(lim, in, 5, cond);
}

static void
test_not_well_formed(void **state)
{
    expect_error_all(NULL, HDR_CLIENT "<message><body>x</message>",
                     "not-well-formed");
    expect_error_all(NULL, HDR_CLIENT "<message a='1' a='2'/>",
                     "not-well-formed");
    expect_error_all(NULL, HDR_CLIENT "<p:message/>", "not-well-formed");
    expect_error_all(NULL, HDR_CLIENT "<message>\xc3\x28</message>",
                     "not-well-formed");
    expect_error_all(NULL, "junk junk", "not-well-formed");
    expect_error_all(NULL, HDR_CLIENT "</message>", "not-well-formed");
}

static void
test_restricted(void **state)
{
    rec_t       r;
    const char *laughs =
        "<?xml version='1.0'?>"
        "<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
        "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
        "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
        "<!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>"
        "<!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>"
        "<!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>"
        "<!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>"
        "<!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>"
        "<!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>"
        "]>" HDR_CLIENT "<message><body>&lol9;</body></message>";

    expect_error_all(NULL, laughs, "restricted-xml");
    expect_error_all(NULL, "<!DOCTYPE stream:stream>" HDR_CLIENT,
                     "restricted-xml");
    expect_error_all(NULL, HDR_CLIENT "<?evil x?>", "restricted-xml");
    expect_error_all(NULL, "<?evil x?>" HDR_CLIENT, "restricted-xml");
    expect_error_all(NULL, HDR_CLIENT "<!-- hi -->", "restricted-xml");
    expect_error_all(NULL, HDR_CLIENT "<message><!-- x --></message>",
                     "restricted-xml");
    expect_error_all(NULL, HDR_CLIENT "<message>&nbsp;</message>",
                     "restricted-xml");

    /* No stanza came out of the billion laughs, and nothing was built. */
    rec_init(&r, NULL);
    assert_int_equal(sw_xmlstream_feed(r.s, laughs, strlen(laughs), NULL),
                     SW_ERROR);
    assert_int_equal(r.opens, 0);
    assert_int_equal(r.elems, 0);
    assert_string_equal(r.log.data, "ERROR restricted-xml\n");
    rec_done(&r);
}

static void
test_encoding(void **state)
{
    rec_t       r;
    const char *ok = "<?xml version='1.0' encoding='utf-8'?>" HDR_CLIENT
                     "<presence/>";

    expect_error_all(NULL, "<?xml version='1.0' encoding='ISO-8859-1'?>"
                     HDR_CLIENT, "unsupported-encoding");
    expect_error_all(NULL, "<?xml version='1.0' encoding='UTF-16'?>"
                     HDR_CLIENT, "unsupported-encoding");

    rec_init(&r, NULL);
    assert_int_equal(feed_steps(&r, ok, strlen(ok), 3), SW_OK);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.elems, 1);
    rec_done(&r);
}

static void
test_invalid_namespace(void **state)
{
    expect_error_all(NULL,
                     "<stream:stream xmlns='jabber:client'"
                     " xmlns:stream='urn:wrong'>", "invalid-namespace");
    expect_error_all(NULL, "<stream xmlns='jabber:client'>",
                     "invalid-namespace");
    expect_error_all(NULL,
                     "<stream:features xmlns='jabber:client'"
                     " xmlns:stream='http://etherx.jabber.org/streams'>",
                     "invalid-namespace");
}

static char *
repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char  *s = malloc(hl + n + tl + 1);

    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static void
test_stanza_size(void **state)
{
    sw_xml_limits_t lim = { 1024, 0, 0 };
    rec_t           r;
    char           *big, *ok, *open_tag, *spaces;
    size_t          off, used;
    int             rc;

    big = repeat(HDR_CLIENT "<message><body>", 'x', 2000, "</body></message>");
    expect_error_all(&lim, big, "policy-violation");
    expect_error(&lim, big, 100, "policy-violation");
    free(big);

    /* Just under the limit passes, and the count restarts per stanza. */
    ok = repeat("<message><body>", 'y', 900, "</body></message>");
    rec_init(&r, &lim);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT, strlen(HDR_CLIENT),
                                       NULL), SW_OK);
    for (off = 0; off < 5; off++) {
        assert_int_equal(feed_steps(&r, ok, strlen(ok), 64), SW_OK);
        assert_int_equal(sw_xmlstream_feed(r.s, ok, strlen(ok), NULL), SW_OK);
    }
    assert_int_equal(r.elems, 10);
    assert_int_equal(r.errors, 0);
    rec_done(&r);
    free(ok);

    /* Whitespace between stanzas (keepalives) counts against the limit
     * until the next stanza, so a stream of nothing but whitespace (an
     * inflated gigabyte of it) ends too; each stanza restarts the count. */
    spaces = repeat("", ' ', 900, "<presence/>");
    rec_init(&r, &lim);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT, strlen(HDR_CLIENT),
                                       NULL), SW_OK);
    for (off = 0; off < 5; off++) {
        assert_int_equal(feed_steps(&r, spaces, strlen(spaces), 100), SW_OK);
    }
    assert_int_equal(r.elems, 5);
    assert_int_equal(r.errors, 0);
    rec_done(&r);
    free(spaces);
    spaces = repeat(HDR_CLIENT, ' ', 5000, "");
    expect_error_all(&lim, spaces, "policy-violation");
    free(spaces);

    /* A start tag that never ends: caught once the unparsed input passes
     * the limit, not when memory runs out. */
    open_tag = repeat("<message to='", 'z', 100, "");
    rec_init(&r, &lim);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT, strlen(HDR_CLIENT),
                                       NULL), SW_OK);
    assert_int_equal(sw_xmlstream_feed(r.s, open_tag, strlen(open_tag),
                                       &used), SW_OK);
    rc = SW_OK;
    for (off = strlen(open_tag); off < 100000 && rc == SW_OK; off += 100) {
        rc = sw_xmlstream_feed(r.s, open_tag + 13, 100, &used);
    }
    assert_int_equal(rc, SW_ERROR);
    assert_true(off <= lim.max_stanza_bytes + 100);
    assert_true(off > lim.max_stanza_bytes);
    assert_string_equal(r.cond, "policy-violation");
    rec_done(&r);

    /* Same for a stream header that never ends. */
    rec_init(&r, &lim);
    rc = sw_xmlstream_feed(r.s, "<stream:stream a='", 18, NULL);
    for (off = 18; off < 100000 && rc == SW_OK; off += 100) {
        rc = sw_xmlstream_feed(r.s, open_tag + 13, 100, NULL);
    }
    assert_int_equal(rc, SW_ERROR);
    assert_true(off <= lim.max_stanza_bytes + 100);
    assert_string_equal(r.cond, "policy-violation");
    rec_done(&r);
    free(open_tag);
}

static void
test_depth_and_attrs(void **state)
{
    sw_xml_limits_t lim = { 0, 4, 3 };
    rec_t           r;
    const char     *ok = HDR_CLIENT
                         "<message a='1' b='2' c='3'><a><b/></a></message>";

    rec_init(&r, &lim);
    assert_int_equal(sw_xmlstream_feed(r.s, ok, strlen(ok), NULL), SW_OK);
    assert_int_equal(r.elems, 1);
    rec_done(&r);

    expect_error_all(&lim, HDR_CLIENT "<message><a><b><c/></b></a></message>",
                     "policy-violation");
    expect_error_all(&lim, HDR_CLIENT "<message a='1' b='2' c='3' d='4'/>",
                     "policy-violation");
    /* Namespace declarations are not attributes; xml:lang is one. */
    rec_init(&r, &lim);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT, strlen(HDR_CLIENT),
                                       NULL), SW_OK);
    assert_int_equal(sw_xmlstream_feed(r.s,
        "<m xmlns='u' xmlns:p='v' a='1' b='2' xml:lang='x'/>", 51, NULL),
        SW_OK);
    assert_int_equal(r.elems, 1);
    rec_done(&r);
}

/* ----------------------------------------------------- pause, reset */

static const char sasl_server[] =
    "<stream:stream from='example.com' id='s1' xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    "<?xml version='1.0'?>"
    "<stream:stream from='example.com' id='s2' xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    "</stream:features>";

static const char sasl_expected[] =
    "OPEN <stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
    " from='example.com' id='s1' version='1.0'/> xmlns=jabber:client\n"
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>\n"
    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n"
    "OPEN <stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
    " from='example.com' id='s2' version='1.0'/> xmlns=jabber:client\n"
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    "</stream:features>\n";

/* Offset just after <success .../> in sasl_server. */
static size_t
success_end(void)
{
    const char *p = strstr(sasl_server, "<success");

    return (size_t) (strstr(p, "/>") + 2 - sasl_server);
}

static void
test_pause_reset(void **state)
{
    rec_t  r;
    size_t len = sizeof(sasl_server) - 1, used = 0, at = success_end();

    rec_init(&r, NULL);
    r.pause_on = "success";
    assert_int_equal(sw_xmlstream_feed(r.s, sasl_server, len, &used),
                     SW_AGAIN);
    assert_int_equal(used, at);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.elems, 2);

    /* Without a reset the parser refuses, silently. */
    assert_int_equal(sw_xmlstream_feed(r.s, sasl_server + used, len - used,
                                       NULL), SW_ERROR);
    assert_int_equal(r.errors, 0);

    sw_xmlstream_reset(r.s);
    r.pause_on = NULL;
    assert_int_equal(sw_xmlstream_feed(r.s, sasl_server + used, len - used,
                                       &used), SW_OK);
    assert_int_equal(used, len - at);
    assert_string_equal(r.log.data, sasl_expected);
    rec_done(&r);
}

/* A client that ends <auth/> with a newline: the newline comes before the
 * next document's XML declaration and must not break it. */
static void
test_whitespace_before_new_document(void **state)
{
    static const char first[] = "<?xml version='1.0'?>" HDR_CLIENT
                                "<auth xmlns='urn:ietf:params:xml:ns:"
                                "xmpp-sasl' mechanism='PLAIN'>AA==</auth>";
    static const char rest[] = "\n \r\n<?xml version='1.0'?>" HDR_CLIENT
                               "<presence/>";
    rec_t  r;
    size_t used;

    rec_init(&r, NULL);
    r.pause_on = "auth";
    assert_int_equal(sw_xmlstream_feed(r.s, first, sizeof(first) - 1,
                                       &used), SW_AGAIN);
    sw_xmlstream_reset(r.s);
    r.pause_on = NULL;
    /* byte by byte too: the whitespace may arrive alone */
    assert_int_equal(feed_steps(&r, rest, sizeof(rest) - 1, 1), SW_OK);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.opens, 2);
    assert_non_null(strstr(r.log.data, "<presence/>"));
    rec_done(&r);
}

static void
test_pause_reset_every_split(void **state)
{
    size_t   len = sizeof(sasl_server) - 1, k, used, at = success_end();
    sw_buf_t rest;
    rec_t    r;
    int      rc;

    sw_buf_init(&rest);
    for (k = 1; k < len; k++) {
        rec_init(&r, NULL);
        r.pause_on = "success";
        /* Half the runs reset from inside the callback. */
        r.reset_too = (k % 2) == 0;
        sw_buf_reset(&rest);

        rc = sw_xmlstream_feed(r.s, sasl_server, k, &used);
        if (k < at) {
            assert_int_equal(rc, SW_OK);
            assert_int_equal(used, k);
            rc = sw_xmlstream_feed(r.s, sasl_server + k, len - k, &used);
            assert_int_equal(rc, SW_AGAIN);
            assert_int_equal(k + used, at);
            sw_buf_append(&rest, sasl_server + k + used, len - k - used);
        } else {
            assert_int_equal(rc, SW_AGAIN);
            assert_int_equal(used, at);
            sw_buf_append(&rest, sasl_server + used, k - used);
            sw_buf_append(&rest, sasl_server + k, len - k);
        }
        if (!r.reset_too) {
            sw_xmlstream_reset(r.s);
        }
        r.pause_on = NULL;
        assert_int_equal(sw_xmlstream_feed(r.s, rest.data, rest.len, &used),
                         SW_OK);
        if (strcmp(r.log.data, sasl_expected) != 0) {
            fail_msg("split at %zu: got\n%s", k, r.log.data);
        }
        rec_done(&r);
    }
    sw_buf_free(&rest);
}

static void
reset_only_element(void *ud, sw_xml_t *e, sw_pool_t *pool)
{
    rec_t *r = ud;
    bool   success = strcmp(e->name, "success") == 0;

    rec_element(ud, e, pool);
    if (success) {
        sw_xmlstream_reset(r->s);
    }
}

/* A reset from a callback without a pause goes on in the same feed. */
static void
test_reset_only(void **state)
{
    sw_xmlstream_cb_t cb = rec_cb;
    rec_t             r;
    size_t            used;

    cb.element = reset_only_element;
    memset(&r, 0, sizeof(r));
    sw_buf_init(&r.log);
    r.s = sw_xmlstream_new(NULL, &cb, &r);
    assert_int_equal(sw_xmlstream_feed(r.s, sasl_server,
                                       sizeof(sasl_server) - 1, &used),
                     SW_OK);
    assert_int_equal(used, sizeof(sasl_server) - 1);
    assert_string_equal(r.log.data, sasl_expected);
    rec_done(&r);
}

static void
test_close_callback(void **state)
{
    rec_t       r;
    size_t      used;
    const char *in = HDR_CLIENT "<presence/></stream:stream>trailing";

    rec_init(&r, NULL);
    assert_int_equal(sw_xmlstream_feed(r.s, in, strlen(in), &used), SW_DONE);
    assert_int_equal(used, strlen(in) - strlen("trailing"));
    assert_int_equal(r.closes, 1);
    assert_int_equal(r.elems, 1);
    /* A reset opens a new document on the same object. */
    sw_xmlstream_reset(r.s);
    assert_int_equal(sw_xmlstream_feed(r.s, HDR_CLIENT "<iq/>",
                                       strlen(HDR_CLIENT "<iq/>"), NULL),
                     SW_OK);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.elems, 2);
    rec_done(&r);
}

static void
ns_element(void *ud, sw_xml_t *e, sw_pool_t *pool)
{
    rec_t *r = ud;

    sw_buf_printf(&r->log, "[%s]", e->ns ? e->ns : "(null)");
    rec_element(ud, e, pool);
}

static void
test_imply_open(void **state)
{
    sw_xmlstream_cb_t cb = rec_cb;
    rec_t             r;
    const char       *in =
        "<message from='a@x' to='b@y'><body>x</body></message>"
        "\n<iq type='get' id='1'><query xmlns='jabber:iq:version'/></iq>"
        "<stream:error><host-unknown"
        " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";

    cb.element = ns_element;
    memset(&r, 0, sizeof(r));
    sw_buf_init(&r.log);
    r.s = sw_xmlstream_new(NULL, &cb, &r);
    sw_xmlstream_imply_open(r.s, SW_NS_SERVER);
    assert_int_equal(feed_steps(&r, in, strlen(in), 3), SW_OK);
    assert_int_equal(r.opens, 0);
    assert_string_equal(r.log.data,
        "[jabber:server]<message from='a@x' to='b@y'><body>x</body>"
        "</message>\n"
        "[jabber:server]<iq type='get' id='1'>"
        "<query xmlns='jabber:iq:version'/></iq>\n"
        "[http://etherx.jabber.org/streams]<stream:error><host-unknown"
        " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>\n");

    /* The implied root closes like a real one. */
    assert_int_equal(sw_xmlstream_feed(r.s, "</stream:stream>", 16, NULL),
                     SW_DONE);
    assert_int_equal(r.closes, 1);
    rec_done(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_stream_whole),
        cmocka_unit_test(test_whitespace_before_new_document),
        cmocka_unit_test(test_client_stream_every_split),
        cmocka_unit_test(test_client_stream_bytewise),
        cmocka_unit_test(test_server_stream_ns),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_restricted),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_invalid_namespace),
        cmocka_unit_test(test_stanza_size),
        cmocka_unit_test(test_depth_and_attrs),
        cmocka_unit_test(test_pause_reset),
        cmocka_unit_test(test_pause_reset_every_split),
        cmocka_unit_test(test_reset_only),
        cmocka_unit_test(test_close_callback),
        cmocka_unit_test(test_imply_open),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
