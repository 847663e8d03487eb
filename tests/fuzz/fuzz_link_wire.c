/*
 * Fuzz target: the peer link's control elements (core/sw_link_wire.c).
 *
 * The input is a peer's byte stream: it goes through the XML stream
 * parser with the implied XEP-0361 header, as sw_link_attach sets it up,
 * in three chunks, and every element it yields goes to
 * sw_link_wire_parse.  The answer is checked against a reference written
 * from doc/peer-links.md: numbers are decimal digits only, 1 or more of
 * them, at most 2^62; seq is at least 1; h is required.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

#include "sw_link_wire.h"
#include "fuzz.h"

/* The reference: SW_OK, SW_DECLINED (absent) or SW_ERROR. */
static int
fuzz_ref_number(const sw_xml_t *el, const char *name, uint64_t *out)
{
    const char *s = sw_xml_attr(el, name);
    uint64_t    v = 0;

    if (s == NULL) {
        return SW_DECLINED;
    }
    if (*s == '\0') {
        return SW_ERROR;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return SW_ERROR;
        }
        if (v > (SW_LINK_WIRE_SEQ_MAX - (uint64_t) (*s - '0')) / 10) {
            return SW_ERROR;      /* above the bound (never wraps) */
        }
        v = v * 10 + (uint64_t) (*s - '0');
    }
    *out = v;
    return SW_OK;
}

static void
fuzz_mismatch(const sw_xml_t *el, const char *what)
{
    char *s = sw_xml_to_string(el, NULL);

    fprintf(stderr, "sw_link_wire_parse: %s for %s\n", what, s);
    free(s);
    abort();
}

static void
fuzz_check(const sw_xml_t *el)
{
    sw_link_wire_t  w;
    uint64_t        seq = 0, next = 0, ack = 0;
    int             rc, rs, rn, ra, want;
    bool            is_link;

    memset(&w, 0xa5, sizeof(w));
    rc = sw_link_wire_parse(el, &w);

    is_link = el->ns != NULL && strcmp(el->ns, SW_NS_LINK) == 0;
    if (!is_link || (strcmp(el->name, "link") != 0
                     && strcmp(el->name, "a") != 0))
    {
        if (rc != SW_DECLINED) {
            fuzz_mismatch(el, "not SW_DECLINED");
        }
        return;
    }

    if (strcmp(el->name, "a") == 0) {
        uint64_t d = 0;
        int      rd;

        ra = fuzz_ref_number(el, "h", &ack);
        rd = fuzz_ref_number(el, "d", &d);
        want = ra == SW_OK && rd != SW_ERROR
               && (rd != SW_OK || d <= SW_LINK_WIRE_DELAY_MAX)
               ? SW_OK : SW_ERROR;
        if (rc != want) {
            fuzz_mismatch(el, "wrong verdict on <a/>");
        }
        if (rc == SW_OK && (w.kind != SW_LINK_WIRE_ACK || w.ack != ack
                            || !w.has_ack || w.delay != (rd == SW_OK ? d : 0)))
        {
            fuzz_mismatch(el, "wrong <a/> result");
        }
        return;
    }

    rs = fuzz_ref_number(el, "seq", &seq);
    rn = fuzz_ref_number(el, "next", &next);
    ra = fuzz_ref_number(el, "ack", &ack);
    want = rs == SW_OK && seq > 0 && rn != SW_ERROR && ra != SW_ERROR
           ? SW_OK : SW_ERROR;
    if (rc != want) {
        fuzz_mismatch(el, "wrong verdict on <link/>");
    }
    if (rc != SW_OK) {
        return;
    }
    if (w.seq != seq || w.has_next != (rn == SW_OK)
        || w.has_ack != (ra == SW_OK)
        || (w.has_next && w.next != next) || (w.has_ack && w.ack != ack)
        || w.kind != (w.has_ack ? SW_LINK_WIRE_HELLO
                                : SW_LINK_WIRE_RENUMBER))
    {
        fuzz_mismatch(el, "wrong <link/> result");
    }
}

static void
fuzz_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    sw_xml_t *c;

    fuzz_check(el);
    /* nested ones too: more elements per input */
    for (c = el->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM) {
            fuzz_check(c);
        }
    }
    sw_pool_free(pool);
}

static const sw_xmlstream_cb_t fuzz_cb = {
    NULL, fuzz_on_element, NULL, NULL
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sw_fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sw_xml_limits_t  lim;
    sw_xmlstream_t  *xs;
    size_t           cut[2], start = 0, end, i;

    /* as sw_link_attach does (no server running: the parser's
     * defaults, which are the options' defaults) */
    sw_server_xml_limits(&lim);
    xs = sw_xmlstream_new(&lim, &fuzz_cb, NULL);
    sw_xmlstream_imply_open(xs, SW_NS_SERVER);
    sw_fuzz_cuts(data, size, 0, cut);
    for (i = 0; i < 3; i++) {
        end = i < 2 ? cut[i] : size;
        if (sw_xmlstream_feed(xs, (const char *) data + start, end - start,
                              NULL) != SW_OK)
        {
            break;
        }
        start = end;
    }
    sw_xmlstream_free(xs);
    return 0;
}
