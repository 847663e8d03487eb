/* Filter chains: order, verdicts, copy-on-write, owners. */
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

#include "sw_core_int.h"

static sw_stanza_t *
msg(const char *xml)
{
    sw_stanza_t *st = sw_stanza_parse(xml, strlen(xml));

    assert_non_null(st);
    return st;
}

typedef struct {
    char          log[16];
    int           n;
    sw_stanza_t  *taken;
} run_t;

static void
trace(run_t *r, char c)
{
    r->log[r->n++] = c;
    r->log[r->n] = '\0';
}

static sw_verdict_e
f_pass(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    trace(ctx, 'p');
    return SW_PASS;
}

static sw_verdict_e
f_drop_chatstates(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    trace(ctx, 'd');
    if (sw_xml_child((*stp)->xml, "http://jabber.org/protocol/chatstates",
                     NULL) != NULL
        && sw_xml_child((*stp)->xml, NULL, "body") == NULL)
    {
        return SW_DROP;
    }
    return SW_PASS;
}

static sw_verdict_e
f_strip_html(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    sw_xml_t *html;

    trace(ctx, 's');
    html = sw_xml_child((*stp)->xml, "http://jabber.org/protocol/xhtml-im",
                        "html");
    if (html != NULL) {
        sw_stanza_t *st = sw_stanza_writable(stp);

        sw_xml_unlink(sw_xml_child(st->xml,
                                   "http://jabber.org/protocol/xhtml-im",
                                   "html"));
    }
    return SW_PASS;
}

static sw_verdict_e
f_bounce_iq(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    trace(ctx, 'b');
    if ((*stp)->kind == SW_STANZA_IQ) {
        *cond = "service-unavailable";
        return SW_BOUNCE;
    }
    return SW_PASS;
}

static sw_verdict_e
f_take(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    run_t *r = ctx;

    trace(r, 't');
    r->taken = *stp;
    return SW_TAKEN;
}

static void
test_chain_order_and_verdicts(void **state)
{
    sw_chain_t  *c = sw_chain_new("test");
    sw_owner_t   o;
    run_t        r = { "", 0, NULL };
    sw_stanza_t *st;
    const char  *cond = NULL;

    sw_owner_init(&o, "t");
    sw_chain_add(c, &o, "pass", 0, f_pass, NULL);
    sw_chain_add(c, &o, "drop", 50, f_drop_chatstates, NULL);
    sw_chain_add(c, &o, "strip", 10, f_strip_html, NULL);
    sw_chain_add(c, &o, "bounce", 5, f_bounce_iq, NULL);
    assert_int_equal(sw_chain_count(c), 4);

    st = msg("<message xmlns='jabber:client' to='a@b'><composing "
             "xmlns='http://jabber.org/protocol/chatstates'/></message>");
    assert_int_equal(sw_chain_run(c, &st, &r, &cond), SW_DROP);
    assert_string_equal(r.log, "d");
    sw_stanza_unref(st);

    r.n = 0;
    st = msg("<iq xmlns='jabber:client' type='get' id='1' to='a@b'>"
             "<query xmlns='jabber:iq:version'/></iq>");
    assert_int_equal(sw_chain_run(c, &st, &r, &cond), SW_BOUNCE);
    assert_string_equal(r.log, "dsb");
    assert_string_equal(cond, "service-unavailable");
    sw_stanza_unref(st);

    r.n = 0;
    st = msg("<message xmlns='jabber:client' to='a@b'><body>hi</body>"
             "</message>");
    assert_int_equal(sw_chain_run(c, &st, &r, &cond), SW_PASS);
    assert_string_equal(r.log, "dsbp");
    sw_stanza_unref(st);

    sw_owner_release(&o);
    assert_int_equal(sw_chain_count(c), 0);
    sw_chain_free(c);
}

static void
test_writable_copies_shared_stanza(void **state)
{
    sw_chain_t  *c = sw_chain_new("fold");
    sw_owner_t   o;
    run_t        r = { "", 0, NULL };
    sw_stanza_t *st, *orig, *shared;
    char        *s;

    sw_owner_init(&o, "t");
    sw_chain_add(c, &o, "strip", 0, f_strip_html, NULL);
    orig = msg("<message xmlns='jabber:client' to='a@b'><body>x</body>"
               "<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
               "xmlns='http://www.w3.org/1999/xhtml'>x</body></html>"
               "</message>");
    /* Shared (as a routed stanza is): the filter must work on a copy. */
    shared = sw_stanza_ref(orig);
    st = shared;
    assert_int_equal(sw_chain_run(c, &st, &r, NULL), SW_PASS);
    assert_ptr_not_equal(st, orig);
    assert_null(sw_xml_child(st->xml, "http://jabber.org/protocol/xhtml-im",
                             "html"));
    assert_non_null(sw_xml_child(orig->xml,
                                 "http://jabber.org/protocol/xhtml-im",
                                 "html"));
    assert_int_equal(orig->refs, 1);
    s = sw_xml_to_string(st->xml, "jabber:client");
    assert_string_equal(s, "<message to='a@b'><body>x</body></message>");
    free(s);
    sw_stanza_unref(st);
    sw_stanza_unref(orig);
    sw_owner_release(&o);
    sw_chain_free(c);
}

static void
test_taken_consumes(void **state)
{
    sw_chain_t  *c = sw_chain_new("take");
    run_t        r = { "", 0, NULL };
    sw_stanza_t *st, *orig;

    sw_chain_add(c, NULL, "take", 0, f_take, NULL);
    sw_chain_add(c, NULL, "pass", -1, f_pass, NULL);
    orig = st = msg("<presence xmlns='jabber:client'/>");
    assert_int_equal(sw_chain_run(c, &st, &r, NULL), SW_TAKEN);
    assert_null(st);
    assert_ptr_equal(r.taken, orig);
    assert_string_equal(r.log, "t");
    sw_stanza_unref(r.taken);
    sw_chain_free(c);
}

static void
test_declared_chains(void **state)
{
    sw_chain_t *a = sw_chain_declare("inbound");

    assert_ptr_equal(sw_chain_declare("inbound"), a);
    assert_ptr_equal(sw_chain_find("inbound"), a);
    assert_null(sw_chain_find("nope"));
    assert_string_equal(sw_chain_name(a), "inbound");
    sw_chain_shutdown();
    assert_null(sw_chain_find("inbound"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_order_and_verdicts),
        cmocka_unit_test(test_writable_copies_shared_stanza),
        cmocka_unit_test(test_taken_consumes),
        cmocka_unit_test(test_declared_chains),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
