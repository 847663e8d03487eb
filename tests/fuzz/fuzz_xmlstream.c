/*
 * Fuzz target: the XML stream parser (core/sw_xmlstream.c) and the
 * serializer behind every stanza it delivers (core/sw_xml.c).
 *
 * Each input is parsed three ways:
 *   1. as a client stream (the input brings its own header), with the
 *      server's default limits, fed in three chunks; an element named
 *      <success/> or <proceed/> pauses the parser and the rest is fed to
 *      a fresh document after sw_xmlstream_reset, as c2s does after SASL
 *      and STARTTLS (RFC 6120 §6.4.6, §5.4.3.3), and <restart/> resets it
 *      from the callback;
 *   2. with an implied header (XEP-0361, as peer links do) and tight
 *      limits, so that the limit checks run, split elsewhere;
 *   3. as one fragment (sw_xml_parse).
 * Every element delivered is serialized, parsed back and serialized
 * again: a stanza relayed must mean what it meant, so both texts must be
 * equal.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#include "fuzz.h"

typedef struct {
    sw_xmlstream_t *xs;
    unsigned        elements;
} fuzz_xs_t;

/* Does the tree hold an element in the streams namespace?  Those are
 * written with the "stream:" prefix that only a stream header declares,
 * so they cannot be parsed back as a lone fragment. */
static bool
fuzz_has_stream_ns(const sw_xml_t *e)
{
    const sw_xml_t *c;

    if (e->ns != NULL && strcmp(e->ns, SW_NS_STREAMS) == 0) {
        return true;
    }
    for (c = e->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM && fuzz_has_stream_ns(c)) {
            return true;
        }
    }
    return false;
}

static void
fuzz_round_trip(const sw_xml_t *e)
{
    sw_pool_t  *pool;
    sw_xml_t   *back;
    char       *one, *two;
    const char *err = NULL;

    one = sw_xml_to_string(e, NULL);
    if (fuzz_has_stream_ns(e)) {
        free(one);
        return;
    }
    pool = sw_pool_new(0);
    back = sw_xml_parse(pool, one, strlen(one), &err);
    if (back == NULL) {
        fprintf(stderr, "serialized element does not parse (%s):\n%s\n",
                err ? err : "?", one);
        abort();
    }
    two = sw_xml_to_string(back, NULL);
    if (strcmp(one, two) != 0) {
        fprintf(stderr, "serialization changed on a round trip:\n%s\n%s\n",
                one, two);
        abort();
    }
    free(two);
    free(one);
    sw_pool_free(pool);
}

static void
fuzz_on_open(void *ud, sw_xml_t *header)
{
    char *s = sw_xml_to_string(header, SW_NS_CLIENT);

    free(s);
}

static void
fuzz_on_element(void *ud, sw_xml_t *el, sw_pool_t *pool)
{
    fuzz_xs_t *f = ud;

    f->elements++;
    fuzz_round_trip(el);
    if (strcmp(el->name, "success") == 0 || strcmp(el->name, "proceed") == 0)
    {
        sw_xmlstream_pause(f->xs);
    } else if (strcmp(el->name, "restart") == 0) {
        sw_xmlstream_reset(f->xs);
    }
    sw_pool_free(pool);
}

static void
fuzz_on_close(void *ud)
{
}

static void
fuzz_on_error(void *ud, const char *cond, const char *text)
{
    if (cond == NULL || text == NULL) {
        abort();
    }
}

static const sw_xmlstream_cb_t fuzz_cb = {
    fuzz_on_open, fuzz_on_element, fuzz_on_close, fuzz_on_error
};

/* Feeds one chunk to the end, with a reset after each pause. */
static int
fuzz_feed(fuzz_xs_t *f, const char *data, size_t len)
{
    size_t used;
    int    rc;

    for ( ;; ) {
        used = 0;
        rc = sw_xmlstream_feed(f->xs, data, len, &used);
        if (used > len) {
            abort();
        }
        if (rc != SW_AGAIN) {
            return rc;
        }
        sw_xmlstream_reset(f->xs);
        data += used;
        len -= used;
        if (len == 0) {
            return SW_OK;
        }
    }
}

static void
fuzz_stream(const uint8_t *data, size_t size, bool implied,
            const sw_xml_limits_t *lim, uint64_t salt)
{
    fuzz_xs_t  f = { NULL, 0 };
    size_t     cut[2], start = 0, i;
    const char *d = (const char *) data;

    f.xs = sw_xmlstream_new(lim, &fuzz_cb, &f);
    if (implied) {
        sw_xmlstream_imply_open(f.xs, SW_NS_SERVER);
    }
    sw_fuzz_cuts(data, size, salt, cut);
    for (i = 0; i < 3; i++) {
        size_t end = i < 2 ? cut[i] : size;
        int    rc = fuzz_feed(&f, d + start, end - start);

        start = end;
        if (rc == SW_ERROR || rc == SW_DONE) {
            break;
        }
    }
    sw_xmlstream_free(f.xs);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sw_fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* What sw_server_xml_limits gives with the core's defaults. */
    static const sw_xml_limits_t def = { 256 * 1024, 32, 64 };
    /* The least the options allow (max_stanza_size, max_xml_depth,
     * max_xml_attributes in sw_server.c). */
    static const sw_xml_limits_t tight = { 4096, 4, 4 };
    sw_pool_t  *pool;
    sw_xml_t   *root;

    fuzz_stream(data, size, false, &def, 0);
    fuzz_stream(data, size, true, &tight, 0x5eed);

    pool = sw_pool_new(0);
    root = sw_xml_parse(pool, (const char *) data, size, NULL);
    if (root != NULL) {
        fuzz_round_trip(root);
    }
    sw_pool_free(pool);
    return 0;
}
