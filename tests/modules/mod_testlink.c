/*
 * Test-only module: uses the link layer's seams as a policy module would,
 * and logs what it sees, for tests/integration/test_seams.py.
 *
 *   - link/up, link/down: "testlink: up PEER" / "testlink: down PEER (R)"
 *   - each link's "outbound" chain: a message whose body starts with
 *     "drop:" is dropped, "bounce:" bounced with <not-acceptable/>,
 *     "tag:" gets <tagged xmlns='urn:test:link'/> before it is queued
 *   - each link's "inbound" chain: a message whose body starts with
 *     "in-drop:" is dropped
 *   - the global "inbound" chain: a message whose body starts with
 *     "origin?" is logged with its origin ("testlink: origin session",
 *     "... link PEER")
 *
 * No config.h: tests/sdk/check-sdk builds this file as a third party
 * would, against the installed SDK alone.
 */
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

static bool
mod_testlink_body_is(const sw_stanza_t *st, const char *prefix)
{
    sw_xml_t   *b;
    const char *text;

    if (st->kind != SW_STANZA_MESSAGE
        || (b = sw_xml_child(st->xml, NULL, "body")) == NULL
        || (text = sw_xml_text(b)) == NULL)
    {
        return false;
    }
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static sw_verdict_e
mod_testlink_out(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    (void) ud;
    if (mod_testlink_body_is(*stp, "drop:")) {
        sw_log_info("testlink: dropped on %s's outbound chain",
                    sw_link_name(ctx));
        return SW_DROP;
    }
    if (mod_testlink_body_is(*stp, "bounce:")) {
        *cond = "not-acceptable";
        return SW_BOUNCE;
    }
    if (mod_testlink_body_is(*stp, "tag:")) {
        sw_stanza_writable(stp);
        sw_xml_add((*stp)->xml, "urn:test:link", "tagged");
    }
    return SW_PASS;
}

static sw_verdict_e
mod_testlink_in(sw_stanza_t **stp, void *ctx, void *ud, const char **cond)
{
    (void) ud;
    (void) cond;
    if (mod_testlink_body_is(*stp, "in-drop:")) {
        sw_log_info("testlink: dropped on %s's inbound chain",
                    sw_link_name(ctx));
        return SW_DROP;
    }
    return SW_PASS;
}

static sw_verdict_e
mod_testlink_origin(sw_stanza_t **stp, void *ctx, void *ud,
                    const char **cond)
{
    const sw_origin_t *o = ctx;

    (void) ud;
    (void) cond;
    if (mod_testlink_body_is(*stp, "origin?")) {
        sw_log_info("testlink: origin %s%s",
                    o->kind == SW_ORIGIN_SESSION ? "session"
                    : o->kind == SW_ORIGIN_LINK ? "link " : "internal",
                    o->kind == SW_ORIGIN_LINK ? sw_link_name(o->link) : "");
    }
    return SW_PASS;
}

static int
mod_testlink_event(void *data, void *ud)
{
    sw_link_event_t *ev = data;

    if (ud != NULL) {
        sw_log_info("testlink: up %s", ev->peer);
    } else {
        sw_log_info("testlink: down %s (%s)", ev->peer, ev->reason);
    }
    return SW_OK;
}

static void
mod_testlink_each(sw_link_t *l, void *ud)
{
    sw_module_ctx_t *mc = ud;

    sw_chain_add(sw_link_chain(l, "outbound"), &mc->owner, "testlink", 0,
                 mod_testlink_out, NULL);
    sw_chain_add(sw_link_chain(l, "inbound"), &mc->owner, "testlink", 0,
                 mod_testlink_in, NULL);
}

static int
mod_testlink_start(sw_module_ctx_t *mc)
{
    sw_link_each(mod_testlink_each, mc);
    if (sw_chain_add(sw_chain_declare("inbound"), &mc->owner, "testlink", 0,
                     mod_testlink_origin, NULL) != SW_OK
        || sw_hook_add(&mc->owner, "link/up", 0, mod_testlink_event,
                       (void *) 1) != SW_OK
        || sw_hook_add(&mc->owner, "link/down", 0, mod_testlink_event,
                       NULL) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

static void
mod_testlink_stop(sw_module_ctx_t *mc)
{
    sw_owner_release(&mc->owner);
}

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "testlink",
    .help = "test-only: filters on link chains, link events, origins",
    .start = mod_testlink_start,
    .stop = mod_testlink_stop,
};
