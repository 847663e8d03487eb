/* Unit tests: XML trees, serializer, sw_xml_parse. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

#define NS_OOB   "jabber:x:oob"
#define NS_TLS   "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL  "urn:ietf:params:xml:ns:xmpp-sasl"

/* Parses s into pool, failing the test if it does not parse. */
static sw_xml_t *
parse_ok(sw_pool_t *pool, const char *s)
{
    const char *err = NULL;
    sw_xml_t   *x = sw_xml_parse(pool, s, strlen(s), &err);

    if (x == NULL) {
        fail_msg("parse failed (%s): %s", err ? err : "?", s);
    }
    return x;
}

/* Serializes x and compares with want. */
static void
assert_xml(const sw_xml_t *x, const char *in_ns, const char *want)
{
    char *got = sw_xml_to_string(x, in_ns);

    assert_string_equal(got, want);
    free(got);
}

static void
parse_fails(const char *s, const char *want_err)
{
    sw_pool_t  *pool = sw_pool_new(0);
    const char *err = NULL;

    assert_null(sw_xml_parse(pool, s, strlen(s), &err));
    assert_non_null(err);
    assert_string_equal(err, want_err);
    sw_pool_free(pool);
}

static void
test_escape(void **state)
{
    sw_buf_t    b;
    const char *s = "a&b<c>d'e\"f";

    sw_buf_init(&b);
    sw_xml_escape(&b, s, strlen(s), false);
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d'e\"f");
    sw_buf_reset(&b);
    sw_xml_escape(&b, s, strlen(s), true);
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&apos;e&quot;f");
    sw_buf_reset(&b);
    /* Length is honoured, not the NUL. */
    sw_xml_escape(&b, s, 3, false);
    assert_string_equal(b.data, "a&amp;b");
    /* What a reader would normalise is written as references (found by
     * tests/fuzz/fuzz_xmlstream: &#13; came back as LF). */
    sw_buf_reset(&b);
    sw_xml_escape(&b, "a\r\nb\tc", 6, false);
    assert_string_equal(b.data, "a&#13;\nb\tc");
    sw_buf_reset(&b);
    sw_xml_escape(&b, "a\r\nb\tc", 6, true);
    assert_string_equal(b.data, "a&#13;&#10;b&#9;c");
    sw_buf_free(&b);
}

/* CR in text, and TAB, LF, CR in values, survive a round trip. */
static void
test_escape_whitespace_round_trip(void **state)
{
    sw_pool_t  *pool = sw_pool_new(0);
    sw_xml_t   *e, *back;
    char       *s;

    e = sw_xml_new(pool, "jabber:client", "message");
    sw_xml_set_attr(e, "id", "1\t2\n3\r4");
    sw_xml_set_text(e, "line\r\nnext\r");
    s = sw_xml_to_string(e, NULL);
    back = sw_xml_parse(pool, s, strlen(s), NULL);
    assert_non_null(back);
    assert_string_equal(sw_xml_attr(back, "id"), "1\t2\n3\r4");
    assert_string_equal(sw_xml_text(back), "line\r\nnext\r");
    free(s);
    sw_pool_free(pool);
}

static void
test_roundtrip_escaping(void **state)
{
    sw_pool_t  *pool = sw_pool_new(0), *p2 = sw_pool_new(0);
    const char *nasty = "x & y < z > w ' q \" ]]> end";
    sw_xml_t   *m, *body, *back;
    char       *s1, *s2;

    m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_set_attr(m, "to", "a&b'c\"d<e>@example.com");
    body = sw_xml_add(m, NULL, "body");
    sw_xml_add_text(body, nasty, strlen(nasty));

    s1 = sw_xml_to_string(m, SW_NS_CLIENT);
    assert_string_equal(s1,
        "<message to='a&amp;b&apos;c&quot;d&lt;e&gt;@example.com'>"
        "<body>x &amp; y &lt; z &gt; w ' q \" ]]&gt; end</body></message>");

    /* Outside a stream the namespace has to be declared. */
    free(s1);
    s1 = sw_xml_to_string(m, NULL);
    back = parse_ok(p2, s1);
    assert_string_equal(back->ns, SW_NS_CLIENT);
    assert_string_equal(sw_xml_attr(back, "to"), "a&b'c\"d<e>@example.com");
    assert_string_equal(sw_xml_child_text(back, SW_NS_CLIENT, "body"), nasty);
    s2 = sw_xml_to_string(back, NULL);
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);

    /* Character references and "-quoted attributes parse too. */
    back = parse_ok(p2, "<a b=\"&#x27;&#39;&quot;\">&#x3c;&#60;&amp;</a>");
    assert_string_equal(sw_xml_attr(back, "b"), "''\"");
    assert_string_equal(sw_xml_text(back), "<<&");
    sw_pool_free(pool);
    sw_pool_free(p2);
}

static void
test_utf8(void **state)
{
    sw_pool_t  *pool = sw_pool_new(0);
    const char *txt = "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9d\x84\x9e "
                      "\xe4\xb8\xad\xe6\x96\x87";
    sw_xml_t   *x;
    char       *s;

    x = parse_ok(pool, "<body xmlns='jabber:client' n='\xc3\xa9'>"
                       "h\xc3\xa9llo &#x2603; &#x1D11E; "
                       "\xe4\xb8\xad\xe6\x96\x87</body>");
    assert_string_equal(sw_xml_text(x), txt);
    assert_string_equal(sw_xml_attr(x, "n"), "\xc3\xa9");
    s = sw_xml_to_string(x, SW_NS_CLIENT);
    /* Non-ASCII is written as UTF-8, not as references. */
    assert_non_null(strstr(s, txt));
    free(s);

    /* Invalid UTF-8 is not well-formed. */
    parse_fails("<a>\xc3\x28</a>", "not-well-formed");
    parse_fails("<a>\xff</a>", "not-well-formed");
    sw_pool_free(pool);
}

static void
test_default_ns(void **state)
{
    sw_pool_t *pool = sw_pool_new(0);
    sw_xml_t  *m, *x, *fwd, *inner, *bare;

    m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_set_attr(m, "to", "juliet@example.com");
    sw_xml_add_text(sw_xml_add(m, NULL, "body"), "hi", 2);
    x = sw_xml_add(m, NS_OOB, "x");
    sw_xml_add_text(sw_xml_add(x, NULL, "url"), "http://u", 8);
    assert_string_equal(sw_xml_child(x, NULL, "url")->ns, NS_OOB);

    assert_xml(m, SW_NS_CLIENT,
               "<message to='juliet@example.com'><body>hi</body>"
               "<x xmlns='jabber:x:oob'><url>http://u</url></x></message>");
    assert_xml(m, NULL,
               "<message xmlns='jabber:client' to='juliet@example.com'>"
               "<body>hi</body>"
               "<x xmlns='jabber:x:oob'><url>http://u</url></x></message>");

    /* A stanza nested in another namespace gets its own declaration
     * back (XEP-0297 forwarding). */
    fwd = sw_xml_add(m, "urn:xmpp:forward:0", "forwarded");
    inner = sw_xml_add(fwd, SW_NS_CLIENT, "message");
    sw_xml_add(inner, NULL, "body");
    /* An element in no namespace under a default one needs xmlns=''. */
    bare = sw_xml_add(m, "", "bare");
    bare->ns = NULL;
    assert_xml(m, SW_NS_CLIENT,
               "<message to='juliet@example.com'><body>hi</body>"
               "<x xmlns='jabber:x:oob'><url>http://u</url></x>"
               "<forwarded xmlns='urn:xmpp:forward:0'>"
               "<message xmlns='jabber:client'><body/></message>"
               "</forwarded><bare xmlns=''/></message>");
    sw_pool_free(pool);
}

static void
test_client_server_same(void **state)
{
    sw_pool_t *pool = sw_pool_new(0);
    sw_xml_t  *m;

    m = parse_ok(pool, "<message xmlns='jabber:server' from='a@x' to='b@y'>"
                       "<body>x</body><thread>t</thread></message>");
    assert_string_equal(m->ns, SW_NS_SERVER);
    assert_string_equal(sw_xml_child(m, NULL, "body")->ns, SW_NS_SERVER);

    /* RFC 6120 §4.8.3: moves from s2s to c2s unchanged. */
    assert_xml(m, SW_NS_CLIENT,
               "<message from='a@x' to='b@y'><body>x</body>"
               "<thread>t</thread></message>");
    assert_xml(m, SW_NS_SERVER,
               "<message from='a@x' to='b@y'><body>x</body>"
               "<thread>t</thread></message>");
    /* Elsewhere it keeps its own namespace. */
    assert_xml(m, "jabber:component:accept",
               "<message xmlns='jabber:server' from='a@x' to='b@y'>"
               "<body>x</body><thread>t</thread></message>");

    /* Child search treats them as one namespace too. */
    assert_non_null(sw_xml_child(m, SW_NS_CLIENT, "body"));
    assert_string_equal(sw_xml_child_text(m, SW_NS_CLIENT, "thread"), "t");
    assert_null(sw_xml_child(m, NS_OOB, "body"));
    sw_pool_free(pool);
}

static void
test_stream_prefix(void **state)
{
    sw_pool_t *pool = sw_pool_new(0), *p2 = sw_pool_new(0);
    sw_xml_t  *f, *mechs, *e, *back;
    char      *s;

    f = sw_xml_new(pool, SW_NS_STREAMS, "features");
    sw_xml_add(sw_xml_add(f, NS_TLS, "starttls"), NULL, "required");
    mechs = sw_xml_add(f, NS_SASL, "mechanisms");
    sw_xml_add_text(sw_xml_add(mechs, NULL, "mechanism"), "PLAIN", 5);
    assert_xml(f, SW_NS_CLIENT,
               "<stream:features>"
               "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
               "<required/></starttls>"
               "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
               "<mechanism>PLAIN</mechanism></mechanisms>"
               "</stream:features>");

    e = sw_xml_new(pool, SW_NS_STREAMS, "error");
    sw_xml_add(e, SW_NS_STREAM_ERRORS, "not-well-formed");
    assert_xml(e, SW_NS_SERVER,
               "<stream:error><not-well-formed "
               "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
               "</stream:error>");

    /* Standalone, the prefix is declared so the output parses. */
    s = sw_xml_to_string(f, NULL);
    back = parse_ok(p2, s);
    free(s);
    assert_string_equal(back->ns, SW_NS_STREAMS);
    assert_string_equal(back->name, "features");
    assert_string_equal(sw_xml_child(back, NS_SASL, "mechanisms")
                        ->first->ns, NS_SASL);
    assert_xml(back, SW_NS_CLIENT,
               "<stream:features>"
               "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
               "<required/></starttls>"
               "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
               "<mechanism>PLAIN</mechanism></mechanisms>"
               "</stream:features>");
    sw_pool_free(pool);
    sw_pool_free(p2);
}

static void
test_xml_lang_and_ns_attrs(void **state)
{
    sw_pool_t *pool = sw_pool_new(0), *p2 = sw_pool_new(0);
    sw_xml_t  *b, *back;
    char      *s;

    b = parse_ok(pool, "<body xmlns='jabber:client' xml:lang='de'>x</body>");
    assert_string_equal(sw_xml_attr_ns(b, SW_NS_XML, "lang"), "de");
    assert_null(sw_xml_attr(b, "lang"));
    assert_xml(b, SW_NS_CLIENT, "<body xml:lang='de'>x</body>");

    sw_xml_set_attr_ns(b, "urn:x", "foo", "1");
    sw_xml_set_attr(b, "plain", "p");
    sw_xml_set_attr_ns(b, "urn:y", "baz", "3");
    sw_xml_set_attr_ns(b, "urn:x", "bar", "2'");
    assert_xml(b, SW_NS_CLIENT,
               "<body xml:lang='de' xmlns:ns1='urn:x' ns1:foo='1' plain='p'"
               " xmlns:ns2='urn:y' ns2:baz='3' ns1:bar='2&apos;'>x</body>");

    s = sw_xml_to_string(b, NULL);
    back = parse_ok(p2, s);
    free(s);
    assert_string_equal(sw_xml_attr_ns(back, "urn:x", "foo"), "1");
    assert_string_equal(sw_xml_attr_ns(back, "urn:x", "bar"), "2'");
    assert_string_equal(sw_xml_attr_ns(back, "urn:y", "baz"), "3");
    assert_string_equal(sw_xml_attr_ns(back, SW_NS_XML, "lang"), "de");
    assert_string_equal(sw_xml_attr(back, "plain"), "p");
    assert_null(sw_xml_attr(back, "foo"));
    assert_null(sw_xml_attr_ns(back, "urn:y", "foo"));

    /* Prefixed input resolves to namespaces. */
    back = parse_ok(p2, "<a:q xmlns:a='urn:a' xmlns:b='urn:b' b:k='v'>"
                        "<a:r/><s/></a:q>");
    assert_string_equal(back->ns, "urn:a");
    assert_string_equal(back->name, "q");
    assert_string_equal(sw_xml_attr_ns(back, "urn:b", "k"), "v");
    assert_string_equal(back->first->ns, "urn:a");
    assert_null(back->last->ns);
    assert_xml(back, NULL,
               "<q xmlns='urn:a' xmlns:ns1='urn:b' ns1:k='v'>"
               "<r/><s xmlns=''/></q>");
    sw_pool_free(pool);
    sw_pool_free(p2);
}

static void
test_attrs(void **state)
{
    sw_pool_t *pool = sw_pool_new(0);
    sw_xml_t  *e = sw_xml_new(pool, SW_NS_CLIENT, "iq");
    char       buf[8];

    sw_xml_set_attr(e, "type", "get");
    sw_xml_set_attr(e, "id", "1");
    sw_xml_set_attr(e, "to", "x");
    assert_string_equal(sw_xml_attr(e, "id"), "1");

    /* Replace keeps position; the value is copied. */
    strcpy(buf, "set");
    sw_xml_set_attr(e, "type", buf);
    buf[0] = 'X';
    assert_string_equal(sw_xml_attr(e, "type"), "set");
    assert_xml(e, SW_NS_CLIENT, "<iq type='set' id='1' to='x'/>");

    sw_xml_set_attr(e, "id", NULL);
    assert_null(sw_xml_attr(e, "id"));
    assert_xml(e, SW_NS_CLIENT, "<iq type='set' to='x'/>");
    sw_xml_set_attr(e, "type", NULL);
    sw_xml_set_attr(e, "to", NULL);
    sw_xml_set_attr(e, "nothere", NULL);
    assert_null(e->attrs);
    assert_xml(e, SW_NS_CLIENT, "<iq/>");

    /* Namespaced and plain attributes with one name are distinct. */
    sw_xml_set_attr(e, "a", "plain");
    sw_xml_set_attr_ns(e, "urn:n", "a", "ns");
    assert_string_equal(sw_xml_attr(e, "a"), "plain");
    assert_string_equal(sw_xml_attr_ns(e, "urn:n", "a"), "ns");
    sw_xml_set_attr_ns(e, "urn:n", "a", NULL);
    assert_null(sw_xml_attr_ns(e, "urn:n", "a"));
    assert_string_equal(sw_xml_attr(e, "a"), "plain");
    sw_pool_free(pool);
}

static void
test_copy_independent(void **state)
{
    sw_pool_t *p1 = sw_pool_new(0), *p2 = sw_pool_new(0);
    sw_xml_t  *orig, *copy;
    char      *before, *s;

    orig = parse_ok(p1, "<message xmlns='jabber:client' to='a' xml:lang='en'>"
                        "<body>one &amp; two</body>"
                        "<x xmlns='urn:x' xmlns:p='urn:p' p:q='1'><y/>tail"
                        "</x></message>");
    before = sw_xml_to_string(orig, NULL);

    copy = sw_xml_copy(p2, orig);
    assert_ptr_equal(copy->pool, p2);
    assert_null(copy->parent);
    assert_ptr_not_equal(copy->name, orig->name);
    s = sw_xml_to_string(copy, NULL);
    assert_string_equal(s, before);
    free(s);

    /* Changing the copy leaves the original alone, and vice versa. */
    sw_xml_set_attr(copy, "to", "b");
    sw_xml_set_text(sw_xml_child(copy, NULL, "body"), "changed");
    sw_xml_unlink(sw_xml_child(copy, "urn:x", "x"));
    s = sw_xml_to_string(orig, NULL);
    assert_string_equal(s, before);
    free(s);

    /* The copy lives on when the original's pool is gone (valgrind
     * checks no pointer into p1 survives). */
    sw_pool_free(p1);
    assert_xml(copy, SW_NS_CLIENT,
               "<message to='b' xml:lang='en'><body>changed</body>"
               "</message>");
    free(before);
    sw_pool_free(p2);
}

static void
test_child_search(void **state)
{
    sw_pool_t *pool = sw_pool_new(0);
    sw_xml_t  *q, *c;
    int        n;

    q = parse_ok(pool, "<query xmlns='jabber:iq:roster'>text"
                       "<item jid='a'/><group/>more"
                       "<item jid='b'/><item xmlns='urn:other' jid='c'/>"
                       "<item jid='d'/></query>");
    assert_int_equal(sw_xml_count_children(q), 5);

    c = sw_xml_child(q, NULL, NULL);
    assert_non_null(c);
    assert_string_equal(c->name, "item");   /* text nodes are skipped */
    assert_string_equal(sw_xml_child(q, NULL, "group")->name, "group");
    assert_null(sw_xml_child(q, NULL, "nothing"));
    assert_null(sw_xml_child(q, "urn:none", NULL));
    assert_string_equal(sw_xml_attr(sw_xml_child(q, "urn:other", NULL),
                                    "jid"), "c");

    n = 0;
    for (c = sw_xml_child(q, "jabber:iq:roster", "item"); c != NULL;
         c = sw_xml_next_match(c, "jabber:iq:roster", "item"))
    {
        n++;
        assert_string_not_equal(sw_xml_attr(c, "jid"), "c");
    }
    assert_int_equal(n, 3);
    n = 0;
    for (c = sw_xml_child(q, NULL, "item"); c != NULL;
         c = sw_xml_next_match(c, NULL, "item"))
    {
        n++;
    }
    assert_int_equal(n, 4);

    /* Text of direct text children only. */
    assert_string_equal(sw_xml_text(q), "textmore");
    assert_string_equal(sw_xml_child_text(q, NULL, "group"), "");
    assert_null(sw_xml_child_text(q, NULL, "none"));
    sw_pool_free(pool);
}

static void
test_text_and_tree_ops(void **state)
{
    sw_pool_t *p1 = sw_pool_new(0), *p2 = sw_pool_new(0);
    sw_xml_t  *a, *b, *t, *other, *moved, *tn;

    a = sw_xml_new(p1, "urn:a", "a");
    t = sw_xml_add_text(a, "ab", 2);
    assert_ptr_equal(sw_xml_add_text(a, "cd", 2), t);  /* merged */
    assert_int_equal(t->text_len, 4);
    assert_string_equal(sw_xml_text(a), "abcd");

    b = sw_xml_add(a, NULL, "b");
    sw_xml_add_text(a, "ef", 2);
    assert_string_equal(sw_xml_text(a), "abcdef");
    assert_xml(a, NULL, "<a xmlns='urn:a'>abcd<b/>ef</a>");

    /* Unlink from the middle keeps both text nodes (not merged). */
    sw_xml_unlink(b);
    assert_null(b->parent);
    assert_int_equal(sw_xml_count_children(a), 0);
    assert_string_equal(sw_xml_text(a), "abcdef");
    assert_xml(a, NULL, "<a xmlns='urn:a'>abcdef</a>");

    /* Append within the pool moves the node itself. */
    moved = sw_xml_append(a, b);
    assert_ptr_equal(moved, b);
    assert_ptr_equal(a->last, b);
    assert_ptr_equal(b->parent, a);

    /* From another pool it is copied in. */
    other = sw_xml_new(p2, "urn:o", "o");
    sw_xml_set_attr(other, "k", "v");
    moved = sw_xml_append(a, other);
    assert_ptr_not_equal(moved, other);
    assert_ptr_equal(moved->pool, p1);
    assert_ptr_equal(a->last, moved);
    assert_xml(a, NULL,
               "<a xmlns='urn:a'>abcdef<b/><o xmlns='urn:o' k='v'/></a>");

    /* Moving the first child to the end relinks the siblings. */
    tn = a->first;
    assert_string_equal(tn->text, "abcd");
    sw_xml_append(a, tn);
    assert_string_equal(a->first->text, "ef");
    assert_ptr_equal(a->first->next, b);
    assert_ptr_equal(a->last, tn);
    assert_null(a->first->prev);
    assert_null(a->last->next);
    assert_xml(a, NULL,
               "<a xmlns='urn:a'>ef<b/><o xmlns='urn:o' k='v'/>abcd</a>");

    sw_xml_set_text(a, "new");
    assert_int_equal(sw_xml_count_children(a), 0);
    assert_xml(a, NULL, "<a xmlns='urn:a'>new</a>");
    sw_xml_set_text(a, "");
    assert_null(a->first);
    assert_xml(a, NULL, "<a xmlns='urn:a'/>");
    sw_pool_free(p1);
    sw_pool_free(p2);
}

static void
test_parse_errors(void **state)
{
    sw_pool_t *pool = sw_pool_new(0);
    sw_xml_t  *x;

    parse_fails("<a><b></a>", "not-well-formed");
    parse_fails("<a/><b/>", "not-well-formed");
    parse_fails("text<a/>", "not-well-formed");
    parse_fails("", "not-well-formed");
    parse_fails("<a", "not-well-formed");
    parse_fails("<p:a/>", "not-well-formed");       /* unbound prefix */
    parse_fails("<a x='1' x='2'/>", "not-well-formed");
    parse_fails("<!DOCTYPE a><a/>", "restricted-xml");
    parse_fails("<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", "restricted-xml");
    parse_fails("<a><!-- c --></a>", "restricted-xml");
    parse_fails("<a><?pi x?></a>", "restricted-xml");
    parse_fails("<a>&nbsp;</a>", "restricted-xml");
    parse_fails("<?xml version='1.0' encoding='ISO-8859-1'?><a/>",
                "unsupported-encoding");

    /* Trailing whitespace and an UTF-8 declaration are fine. */
    x = parse_ok(pool, "<?xml version='1.0' encoding='utf-8'?>\n<a/>\n");
    assert_string_equal(x->name, "a");
    x = parse_ok(pool, "<a><![CDATA[<b>&]]></a>");
    assert_string_equal(sw_xml_text(x), "<b>&");
    assert_null(sw_xml_parse(pool, "<a>", 3, NULL));    /* err optional */
    sw_pool_free(pool);
}

/*
 * An element in the reserved XML namespace is written with its "xml:"
 * prefix: that namespace may not be declared as the default one, so
 * <am xmlns='http://www.w3.org/XML/1998/namespace'/> would not parse back
 * (found by tests/fuzz/fuzz_xmlstream, corpus/xmlstream/xml-prefix-elem).
 */
static void
test_xml_prefix_element(void **state)
{
    sw_pool_t *pool = sw_pool_new(0), *p2 = sw_pool_new(0);
    sw_xml_t  *x, *back;
    char      *s;

    x = parse_ok(pool, "<m xmlns='jabber:server'><xml:am xml:lang='en'>"
                       "<b/>t</xml:am></m>");
    assert_string_equal(x->first->ns, SW_NS_XML);
    assert_xml(x, SW_NS_SERVER,
               "<m><xml:am xml:lang='en'><b/>t</xml:am></m>");
    s = sw_xml_to_string(x->first, NULL);
    assert_string_equal(s, "<xml:am xml:lang='en'><b xmlns='jabber:server'/>"
                           "t</xml:am>");
    back = parse_ok(p2, s);
    free(s);
    assert_string_equal(back->ns, SW_NS_XML);
    assert_string_equal(back->name, "am");
    assert_string_equal(back->first->ns, SW_NS_SERVER);
    sw_pool_free(pool);
    sw_pool_free(p2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_whitespace_round_trip),
        cmocka_unit_test(test_roundtrip_escaping),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_default_ns),
        cmocka_unit_test(test_client_server_same),
        cmocka_unit_test(test_stream_prefix),
        cmocka_unit_test(test_xml_lang_and_ns_attrs),
        cmocka_unit_test(test_xml_prefix_element),
        cmocka_unit_test(test_attrs),
        cmocka_unit_test(test_copy_independent),
        cmocka_unit_test(test_child_search),
        cmocka_unit_test(test_text_and_tree_ops),
        cmocka_unit_test(test_parse_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
