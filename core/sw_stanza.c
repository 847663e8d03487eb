/* Stanzas: a tree plus a summary parsed once. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_stanza.h>
#include <skywave/sw_log.h>

static bool
sw_stanza_is_content_ns(const char *ns)
{
    /* RFC 6120 §4.8.3: jabber:client and jabber:server are the content
     * namespaces; XEP-0114 components use jabber:component:accept. */
    return ns == NULL || strcmp(ns, SW_NS_CLIENT) == 0
           || strcmp(ns, SW_NS_SERVER) == 0
           || strcmp(ns, "jabber:component:accept") == 0;
}

static int
sw_stanza_summarize(sw_stanza_t *st, const char **err)
{
    sw_xml_t   *x = st->xml;
    const char *to, *from;

    st->kind = SW_STANZA_OTHER;
    if (sw_stanza_is_content_ns(x->ns)) {
        if (strcmp(x->name, "message") == 0) {
            st->kind = SW_STANZA_MESSAGE;
        } else if (strcmp(x->name, "presence") == 0) {
            st->kind = SW_STANZA_PRESENCE;
        } else if (strcmp(x->name, "iq") == 0) {
            st->kind = SW_STANZA_IQ;
        }
    }
    st->type = sw_xml_attr(x, "type");
    st->id = sw_xml_attr(x, "id");
    st->to = NULL;
    st->from = NULL;
    st->payload = st->kind == SW_STANZA_IQ ? sw_xml_child(x, NULL, NULL)
                                           : NULL;
    to = sw_xml_attr(x, "to");
    from = sw_xml_attr(x, "from");
    /* RFC 6120 §8.1.1.1, §8.1.2.1: an invalid address is jid-malformed */
    if (to != NULL && (st->to = sw_jid_new(st->pool, to)) == NULL) {
        goto malformed;
    }
    if (from != NULL && (st->from = sw_jid_new(st->pool, from)) == NULL) {
        goto malformed;
    }
    return SW_OK;

malformed:
    if (err != NULL) {
        *err = "jid-malformed";
    }
    return SW_ERROR;
}

sw_stanza_t *
sw_stanza_new(sw_pool_t *pool, sw_xml_t *xml, const char **err)
{
    sw_stanza_t *st = sw_pool_calloc(pool, sizeof(*st));

    st->pool = pool;
    st->xml = xml;
    st->refs = 1;
    if (sw_stanza_summarize(st, err) != SW_OK) {
        return NULL;
    }
    return st;
}

sw_stanza_t *
sw_stanza_parse(const char *text, size_t len)
{
    sw_pool_t   *pool = sw_pool_new(len + 256);
    sw_xml_t    *x = sw_xml_parse(pool, text, len, NULL);
    sw_stanza_t *st;

    if (x == NULL || (st = sw_stanza_new(pool, x, NULL)) == NULL) {
        sw_pool_free(pool);
        return NULL;
    }
    return st;
}

sw_stanza_t *
sw_stanza_ref(sw_stanza_t *st)
{
    st->refs++;
    return st;
}

void
sw_stanza_unref(sw_stanza_t *st)
{
    if (st != NULL && --st->refs == 0) {
        sw_pool_free(st->pool);     /* st lives in its own pool */
    }
}

static sw_stanza_t *
sw_stanza_copy(const sw_stanza_t *st)
{
    sw_pool_t   *pool = sw_pool_new(sw_pool_used(st->pool) + 256);
    sw_stanza_t *c = sw_pool_calloc(pool, sizeof(*c));

    c->pool = pool;
    c->xml = sw_xml_copy(pool, st->xml);
    c->refs = 1;
    c->kind = st->kind;
    c->type = sw_xml_attr(c->xml, "type");
    c->id = sw_xml_attr(c->xml, "id");
    c->to = st->to ? sw_jid_copy(pool, st->to) : NULL;
    c->from = st->from ? sw_jid_copy(pool, st->from) : NULL;
    c->payload = c->kind == SW_STANZA_IQ ? sw_xml_child(c->xml, NULL, NULL)
                                         : NULL;
    return c;
}

sw_stanza_t *
sw_stanza_writable(sw_stanza_t **stp)
{
    sw_stanza_t *st = *stp;

    if (st->refs > 1) {
        *stp = sw_stanza_copy(st);
        sw_stanza_unref(st);
    }
    return *stp;
}

int
sw_stanza_reparse(sw_stanza_t *st)
{
    return sw_stanza_summarize(st, NULL);
}

void
sw_stanza_set_to(sw_stanza_t *st, const sw_jid_t *to)
{
    sw_xml_set_attr(st->xml, "to", to ? to->full : NULL);
    st->to = to ? sw_jid_copy(st->pool, to) : NULL;
}

void
sw_stanza_set_from(sw_stanza_t *st, const sw_jid_t *from)
{
    sw_xml_set_attr(st->xml, "from", from ? from->full : NULL);
    st->from = from ? sw_jid_copy(st->pool, from) : NULL;
}

/* RFC 6120 §8.3.3: the error type each defined condition usually has. */
static const char *const sw_stanza_error_types[][2] = {
    { "bad-request",             "modify" },
    { "conflict",                "cancel" },
    { "feature-not-implemented", "cancel" },
    { "forbidden",               "auth" },
    { "gone",                    "cancel" },
    { "internal-server-error",   "cancel" },
    { "item-not-found",          "cancel" },
    { "jid-malformed",           "modify" },
    { "not-acceptable",          "modify" },
    { "not-allowed",             "cancel" },
    { "not-authorized",          "auth" },
    { "policy-violation",        "modify" },
    { "recipient-unavailable",   "wait" },
    { "redirect",                "modify" },
    { "registration-required",   "auth" },
    { "remote-server-not-found", "cancel" },
    { "remote-server-timeout",   "wait" },
    { "resource-constraint",     "wait" },
    { "service-unavailable",     "cancel" },
    { "subscription-required",   "auth" },
    { "undefined-condition",     "cancel" },
    { "unexpected-request",      "wait" },
};

const char *
sw_stanza_error_type(const char *condition)
{
    size_t i;

    for (i = 0; i < sizeof(sw_stanza_error_types)
                    / sizeof(sw_stanza_error_types[0]); i++)
    {
        if (strcmp(sw_stanza_error_types[i][0], condition) == 0) {
            return sw_stanza_error_types[i][1];
        }
    }
    return "cancel";
}

const char *
sw_stanza_condition(const char *condition)
{
    size_t i;

    for (i = 0; i < sizeof(sw_stanza_error_types)
                    / sizeof(sw_stanza_error_types[0]); i++)
    {
        if (strcmp(sw_stanza_error_types[i][0], condition) == 0) {
            return sw_stanza_error_types[i][0];
        }
    }
    return NULL;
}

/* A new stanza of the same element name, to/from swapped, same id. */
static sw_stanza_t *
sw_stanza_reply_shell(const sw_stanza_t *st, const char *type)
{
    sw_pool_t   *pool = sw_pool_new(512);
    sw_xml_t    *x = sw_xml_new(pool, st->xml->ns, st->xml->name);
    const char  *to = sw_xml_attr(st->xml, "from");
    const char  *from = sw_xml_attr(st->xml, "to");

    if (st->id != NULL) {
        sw_xml_set_attr(x, "id", st->id);
    }
    sw_xml_set_attr(x, "type", type);
    if (to != NULL) {
        sw_xml_set_attr(x, "to", to);
    }
    if (from != NULL) {
        sw_xml_set_attr(x, "from", from);
    }
    return sw_stanza_new(pool, x, NULL);
}

sw_stanza_t *
sw_stanza_error_reply(const sw_stanza_t *st, const char *etype,
                      const char *condition, const char *text)
{
    sw_stanza_t *r;
    sw_xml_t    *e;

    /* RFC 6120 §8.3.1: never answer an error with an error */
    if (st->type != NULL && strcmp(st->type, "error") == 0) {
        return NULL;
    }
    /*
     * The original payload MAY be included (RFC 6120 §8.3.1); we leave it
     * out: on a 2400 bit/s link echoing a message body back costs as much
     * as the message did, and the id tells the sender which one failed.
     */
    r = sw_stanza_reply_shell(st, "error");
    if (r == NULL) {
        return NULL;
    }
    e = sw_xml_add(r->xml, NULL, "error");
    sw_xml_set_attr(e, "type",
                    etype ? etype : sw_stanza_error_type(condition));
    sw_xml_add(e, SW_NS_STANZA_ERRORS, condition);
    if (text != NULL) {
        sw_xml_set_text(sw_xml_add(e, SW_NS_STANZA_ERRORS, "text"), text);
    }
    return r;
}

sw_stanza_t *
sw_stanza_iq_result(const sw_stanza_t *iq)
{
    return sw_stanza_reply_shell(iq, "result");
}

const char *
sw_stanza_kind_name(sw_stanza_kind_e kind)
{
    static const char *const names[] = { "message", "presence", "iq",
                                         "other" };

    return kind <= SW_STANZA_OTHER ? names[kind] : "other";
}
