/* Stanzas: summary, copy-on-write, error replies (RFC 6120 §8.3). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

static sw_stanza_t *
parse(const char *xml)
{
    return sw_stanza_parse(xml, strlen(xml));
}

static void
assert_xml(const sw_stanza_t *st, const char *want)
{
    char *s = sw_xml_to_string(st->xml, SW_NS_CLIENT);

    assert_string_equal(s, want);
    free(s);
}

static void
test_summary(void **state)
{
    sw_stanza_t *st = parse("<iq xmlns='jabber:client' type='get' id='a1' "
                            "to='Example.NET' from='Juliet@example.com/"
                            "balcony'><query xmlns='jabber:iq:roster'/>"
                            "</iq>");

    assert_non_null(st);
    assert_int_equal(st->kind, SW_STANZA_IQ);
    assert_string_equal(st->type, "get");
    assert_string_equal(st->id, "a1");
    assert_string_equal(st->to->full, "example.net");       /* prepared */
    assert_string_equal(st->from->bare, "juliet@example.com");
    assert_string_equal(st->from->resource, "balcony");
    assert_non_null(st->payload);
    assert_string_equal(st->payload->ns, "jabber:iq:roster");
    assert_string_equal(sw_stanza_kind_name(st->kind), "iq");
    sw_stanza_unref(st);

    st = parse("<presence xmlns='jabber:server'/>");
    assert_int_equal(st->kind, SW_STANZA_PRESENCE);
    assert_null(st->to);
    assert_null(st->type);
    assert_null(st->payload);
    sw_stanza_unref(st);

    st = parse("<r xmlns='urn:xmpp:sm:3'/>");
    assert_int_equal(st->kind, SW_STANZA_OTHER);
    sw_stanza_unref(st);
    /* A message in a foreign namespace is not a stanza. */
    st = parse("<message xmlns='urn:example'/>");
    assert_int_equal(st->kind, SW_STANZA_OTHER);
    sw_stanza_unref(st);
}

static void
test_bad_jid_is_jid_malformed(void **state)
{
    sw_pool_t  *pool = sw_pool_new(0);
    const char *err = NULL;
    const char *xml = "<message xmlns='jabber:client' to='a@b@c'/>";
    sw_xml_t   *x = sw_xml_parse(pool, xml, strlen(xml), NULL);

    assert_non_null(x);
    assert_null(sw_stanza_new(pool, x, &err));
    assert_string_equal(err, "jid-malformed");
    sw_pool_free(pool);             /* still ours after a failure */
    assert_null(parse("<message xmlns='jabber:client' from='@x'/>"));
    assert_null(parse("<message xmlns='jabber:client'><unclosed>"));
}

static void
test_error_reply(void **state)
{
    sw_stanza_t *st = parse("<message xmlns='jabber:client' id='m&amp;1' "
                            "to='romeo@example.net' from='juliet@example.com"
                            "/balcony' type='chat'><body>secret</body>"
                            "</message>");
    sw_stanza_t *r = sw_stanza_error_reply(st, NULL, "service-unavailable",
                                           "gone & away");

    assert_non_null(r);
    assert_xml(r, "<message id='m&amp;1' type='error' "
                  "to='juliet@example.com/balcony' from='romeo@example.net'>"
                  "<error type='cancel'><service-unavailable "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone &amp; "
                  "away</text></error></message>");
    assert_string_equal(r->to->full, "juliet@example.com/balcony");
    assert_string_equal(r->type, "error");
    /* RFC 6120 §8.3.1: never an error in reply to an error */
    assert_null(sw_stanza_error_reply(r, NULL, "bad-request", NULL));
    sw_stanza_unref(r);
    sw_stanza_unref(st);

    assert_string_equal(sw_stanza_error_type("not-authorized"), "auth");
    assert_string_equal(sw_stanza_error_type("resource-constraint"), "wait");
    assert_string_equal(sw_stanza_error_type("jid-malformed"), "modify");
    assert_string_equal(sw_stanza_error_type("no-such-thing"), "cancel");
}

static void
test_iq_result(void **state)
{
    sw_stanza_t *st = parse("<iq xmlns='jabber:client' type='get' id='p' "
                            "to='example.net' from='a@example.net/r'><ping "
                            "xmlns='urn:xmpp:ping'/></iq>");
    sw_stanza_t *r = sw_stanza_iq_result(st);

    assert_xml(r, "<iq id='p' type='result' to='a@example.net/r' "
                  "from='example.net'/>");
    sw_stanza_unref(r);
    sw_stanza_unref(st);
}

static void
test_writable_and_setters(void **state)
{
    sw_stanza_t *st = parse("<message xmlns='jabber:client' to='a@x'/>");
    sw_stanza_t *p = st, *shared;
    sw_jid_t    *j;

    /* Sole owner: no copy. */
    assert_ptr_equal(sw_stanza_writable(&p), st);
    shared = sw_stanza_ref(st);
    p = shared;
    assert_ptr_not_equal(sw_stanza_writable(&p), st);
    assert_int_equal(st->refs, 1);
    j = sw_jid_new(p->pool, "b@y/z");
    sw_stanza_set_to(p, j);
    sw_stanza_set_from(p, NULL);
    assert_string_equal(p->to->full, "b@y/z");
    assert_xml(p, "<message to='b@y/z'/>");
    assert_xml(st, "<message to='a@x'/>");      /* original untouched */
    sw_stanza_unref(p);
    sw_stanza_unref(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_bad_jid_is_jid_malformed),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_iq_result),
        cmocka_unit_test(test_writable_and_setters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
