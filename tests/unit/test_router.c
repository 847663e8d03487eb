/* Router: local vs remote, bounces, never an error to an error. */
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

typedef struct {
    int          local, remote;
    char         last[512];     /* the last stanza delivered anywhere */
    char         last_domain[64];
    bool         remote_serves; /* does the "link" serve example.org? */
} sink_t;

static void
record(sink_t *s, sw_route_event_t *ev)
{
    char *x = sw_xml_to_string(ev->stanza->xml, "jabber:server");

    snprintf(s->last, sizeof(s->last), "%s", x);
    free(x);
    snprintf(s->last_domain, sizeof(s->last_domain), "%s", ev->domain);
}

static int
on_local(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sink_t           *s = ud;

    if (strcmp(ev->host->name, "example.net") != 0) {
        return SW_DECLINED;     /* nobody serves other.net: bounce */
    }
    s->local++;
    record(s, ev);
    return SW_OK;
}

static int
on_remote(void *data, void *ud)
{
    sw_route_event_t *ev = data;
    sink_t           *s = ud;

    if (!s->remote_serves || strcmp(ev->domain, "example.org") != 0) {
        return SW_DECLINED;
    }
    s->remote++;
    record(s, ev);
    return SW_OK;
}

static sink_t     sink;
static sw_owner_t owner;

static int
setup(void **state)
{
    memset(&sink, 0, sizeof(sink));
    sw_router_init();
    sw_host_add("example.net", "host");
    sw_host_add("other.net", "host");
    sw_owner_init(&owner, "test");
    assert_int_equal(sw_hook_add(&owner, "route/local", 0, on_local, &sink),
                     SW_OK);
    assert_int_equal(sw_hook_add(&owner, "route/remote", 0, on_remote, &sink),
                     SW_OK);
    return 0;
}

static int
teardown(void **state)
{
    sw_owner_release(&owner);
    sw_router_shutdown();
    sw_chain_shutdown();
    sw_hook_shutdown();
    return 0;
}

static void
route(const char *xml)
{
    sw_stanza_t *st = sw_stanza_parse(xml, strlen(xml));

    assert_non_null(st);
    sw_route(st);
}

static void
test_local_delivery(void **state)
{
    route("<message xmlns='jabber:server' from='a@example.org/r' "
          "to='b@example.net' id='m1'><body>hi</body></message>");
    assert_int_equal(sink.local, 1);
    assert_int_equal(sink.remote, 0);
    assert_string_equal(sink.last_domain, "example.net");
    assert_non_null(strstr(sink.last, "<body>hi</body>"));
}

static void
test_remote_delivery(void **state)
{
    sink.remote_serves = true;
    route("<message xmlns='jabber:server' from='b@example.net/r' "
          "to='a@example.org' id='m2'><body>yo</body></message>");
    assert_int_equal(sink.remote, 1);
    assert_int_equal(sink.local, 0);
}

static void
test_unserved_remote_bounces_to_sender(void **state)
{
    /* No link serves example.org: the sender (local) gets an error. */
    route("<message xmlns='jabber:server' from='b@example.net/r' "
          "to='a@example.org' id='m3'><body>lost</body></message>");
    assert_int_equal(sink.local, 1);
    assert_non_null(strstr(sink.last, "type='error'"));
    assert_non_null(strstr(sink.last, "id='m3'"));
    assert_non_null(strstr(sink.last, "to='b@example.net/r'"));
    assert_non_null(strstr(sink.last, "<remote-server-not-found "
                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
    assert_non_null(strstr(sink.last, "type='cancel'"));
    /* The body is not echoed back over the link. */
    assert_null(strstr(sink.last, "lost"));
}

static void
test_unserved_local_host_bounces(void **state)
{
    sink.remote_serves = true;
    route("<iq xmlns='jabber:server' type='get' id='q1' "
          "from='a@example.org/r' to='other.net'>"
          "<query xmlns='jabber:iq:version'/></iq>");
    assert_int_equal(sink.remote, 1);
    assert_non_null(strstr(sink.last, "<service-unavailable"));
    assert_non_null(strstr(sink.last, "to='a@example.org/r'"));
    assert_non_null(strstr(sink.last, "from='other.net'"));
}

static void
test_error_is_never_answered(void **state)
{
    /* An error nobody takes is dropped, not bounced (RFC 6120 §8.3.1). */
    route("<message xmlns='jabber:server' type='error' "
          "from='b@example.net/r' to='a@example.org' id='e1'/>");
    assert_int_equal(sink.local + sink.remote, 0);
}

static sw_verdict_e
f_drop_all_presence(sw_stanza_t **stp, void *ctx, void *ud, const char **c)
{
    return (*stp)->kind == SW_STANZA_PRESENCE ? SW_DROP : SW_PASS;
}

static void
test_preroute_chain(void **state)
{
    sw_chain_add(sw_chain_find("preroute"), &owner, "nopresence", 0,
                 f_drop_all_presence, NULL);
    route("<presence xmlns='jabber:server' from='a@example.org/r' "
          "to='b@example.net'/>");
    route("<message xmlns='jabber:server' from='a@example.org/r' "
          "to='b@example.net'/>");
    assert_int_equal(sink.local, 1);
    assert_non_null(strstr(sink.last, "<message"));
}

/* Which chains saw which origin, one letter each: I(nbound),
 * P(reroute), R (deliver_remote), then s/l/i for the origin's kind. */
static char seen[64];

static sw_verdict_e
f_note(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    const sw_origin_t *o = ctx;
    size_t             n = strlen(seen);

    (void) stp;
    (void) cond;
    assert_non_null(o);
    if (n + 2 < sizeof(seen)) {
        seen[n] = *(const char *) ud;
        seen[n + 1] = o->kind == SW_ORIGIN_SESSION ? 's'
                      : o->kind == SW_ORIGIN_LINK ? 'l' : 'i';
        seen[n + 2] = '\0';
    }
    return SW_PASS;
}

static sw_verdict_e
f_drop_remote(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    (void) stp;
    (void) ctx;
    (void) ud;
    *cond = "not-allowed";
    return SW_BOUNCE;
}

static void
route_from(const char *xml, sw_origin_kind_e kind)
{
    sw_stanza_t *st = sw_stanza_parse(xml, strlen(xml));
    sw_origin_t  o = { kind, NULL, NULL };

    assert_non_null(st);
    seen[0] = '\0';
    sw_route_from(st, &o);
}

static void
test_origin_and_chains(void **state)
{
    static const char in = 'I', pre = 'P', rem = 'R';

    sw_chain_add(sw_chain_find("inbound"), &owner, "in", 0, f_note,
                 (void *) &in);
    sw_chain_add(sw_chain_find("preroute"), &owner, "pre", 0, f_note,
                 (void *) &pre);
    sw_chain_add(sw_chain_find("deliver_remote"), &owner, "rem", 0, f_note,
                 (void *) &rem);
    sink.remote_serves = true;

    /* entered from a session, local: inbound then preroute */
    route_from("<message xmlns='jabber:server' from='a@example.net/r' "
               "to='b@example.net'/>", SW_ORIGIN_SESSION);
    assert_string_equal(seen, "IsPs");
    assert_int_equal(sink.local, 1);
    /* from a link, for a remote domain: all three */
    route_from("<message xmlns='jabber:server' from='a@example.net/r' "
               "to='b@example.org'/>", SW_ORIGIN_LINK);
    assert_string_equal(seen, "IlPlRl");
    assert_int_equal(sink.remote, 1);
    /* the server's own (sw_route): no inbound */
    seen[0] = '\0';
    route("<message xmlns='jabber:server' from='example.net' "
          "to='b@example.org'/>");
    assert_string_equal(seen, "PiRi");
    assert_int_equal(sink.remote, 2);

    /* deliver_remote can refuse: the sender hears of it */
    sw_chain_add(sw_chain_find("deliver_remote"), &owner, "no", -1,
                 f_drop_remote, NULL);
    route_from("<message xmlns='jabber:server' from='a@example.net/r' "
               "to='b@example.org' id='x'/>", SW_ORIGIN_SESSION);
    assert_int_equal(sink.remote, 2);
    assert_int_equal(sink.local, 2);            /* the error, to a@ */
    assert_non_null(strstr(sink.last, "<not-allowed"));
}

static void
test_hosts(void **state)
{
    assert_non_null(sw_host_find("example.net"));
    assert_null(sw_host_find("example.org"));
    assert_null(sw_host_add("example.net", "host"));    /* duplicate */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_delivery, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unserved_remote_bounces_to_sender,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unserved_local_host_bounces,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_is_never_answered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_preroute_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_and_chains, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
    };

    sw_log_set_level(SW_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
