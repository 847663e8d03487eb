/*
 * Incremental XML stream parser on expat, and sw_xml_parse (which uses the
 * same restricted expat setup on a single fragment).
 *
 * Depths: the stream root is depth 1, a stanza depth 2.  In fragment mode
 * (sw_xml_parse) there is no stream root and the fragment is depth 1;
 * "top" is the depth of the parent of a delivered tree (1 or 0).
 *
 * Byte accounting (memory bound): every position is an offset in the bytes
 * fed to the current expat parser.  While inside a delivered tree, its size
 * counts from its start tag; between trees, the bytes fed since the last
 * complete event count (so an endless start tag, which expat buffers, is
 * caught too).  Both are held to max_stanza_bytes, checked in the handlers
 * and after each XML_Parse, so memory stays near the limit plus one chunk.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include <skywave/sw_xmlstream.h>
#include <skywave/sw_log.h>

/*
 * Expat 2.6.0 defers re-parsing a partial token until "enough" new input
 * arrives, which would hold back a stanza fed in small pieces.  Distros
 * backport it without bumping the version, so look for the symbol at run
 * time: a weak reference is NULL with an older libexpat.
 */
#pragma weak XML_SetReparseDeferralEnabled
XMLPARSEAPI(XML_Bool)
XML_SetReparseDeferralEnabled(XML_Parser parser, XML_Bool enabled);

/* Separates namespace URI and local name in expat names; cannot occur in
 * either (it is not an XML character). */
#define SW_XMLSTREAM_NSSEP      '\x01'

#define SW_XMLSTREAM_MAX_BYTES  (256 * 1024)
#define SW_XMLSTREAM_MAX_DEPTH  32
#define SW_XMLSTREAM_MAX_ATTRS  64
#define SW_XMLSTREAM_MAX_ELEMENTS 5000

struct sw_xmlstream_s {
    XML_Parser         parser;
    sw_xml_limits_t    lim;
    sw_xmlstream_cb_t  cb;
    void              *ud;

    unsigned           depth;       /* open elements */
    unsigned           n_elems;     /* in the tree being built */
    unsigned           top;         /* depth of a delivered tree's parent */
    sw_pool_t         *pool;        /* tree being built (NULL if none) */
    sw_xml_t          *root;        /* its root */
    sw_xml_t          *cur;         /* innermost open element */
    sw_buf_t           text;        /* character data not yet in the tree */
    char              *default_ns;  /* header's xmlns declaration */
    bool               default_set;

    uint64_t           fed;         /* bytes given to this expat parser */
    uint64_t           mark;        /* end of the last complete event */
    uint64_t           elem_start;  /* start of the tree being built */
    uint64_t           stop_off;    /* end of the event we stopped after */

    const char        *err_cond;    /* stream error to report, static */
    char              *err_text;

    unsigned           in_feed:1;
    unsigned           stopped:1;   /* XML_StopParser was called */
    unsigned           pause_req:1;
    unsigned           reset_req:1;
    unsigned           closed:1;
    unsigned           failed:1;
    unsigned           implied:1;   /* XEP-0361: no open callback */
    unsigned           fragment:1;  /* sw_xml_parse */
    sw_pool_t         *frag_pool;   /* fragment mode: caller's pool */
    sw_xml_t          *frag_root;   /* fragment mode: the result */
};

static void sw_xmlstream_start(void *ud, const XML_Char *name,
                               const XML_Char **atts);
static void sw_xmlstream_end(void *ud, const XML_Char *name);

/* ------------------------------------------------------------- helpers */

/*
 * Offset of the current event's start.  Only called from handlers, where
 * the event lies within the last limit-plus-one-chunk bytes fed, so the
 * distance back from s->fed is small: computing it modulo 2^32 keeps a
 * 32-bit XML_Index (expat without XML_LARGE_SIZE) correct on long streams.
 */
static uint64_t
sw_xmlstream_event_start(sw_xmlstream_t *s)
{
    XML_Index idx = XML_GetCurrentByteIndex(s->parser);
    uint32_t  back;

    if (sizeof(XML_Index) >= sizeof(uint64_t)) {
        return idx >= 0 ? (uint64_t) idx : s->fed;
    }
    back = (uint32_t) s->fed - (uint32_t) idx;
    return s->fed - back;
}

static uint64_t
sw_xmlstream_event_end(sw_xmlstream_t *s)
{
    int cnt = XML_GetCurrentByteCount(s->parser);

    return sw_xmlstream_event_start(s) + (uint64_t) (cnt > 0 ? cnt : 0);
}

/* Records a stream error and stops expat; reported once feed returns. */
static void
sw_xmlstream_fail(sw_xmlstream_t *s, const char *cond, const char *text)
{
    if (s->err_cond != NULL) {
        return;
    }
    s->err_cond = cond;
    free(s->err_text);
    s->err_text = sw_strdup(text);
    if (!s->stopped) {
        s->stopped = 1;
        XML_StopParser(s->parser, XML_FALSE);
    }
}

/* After a callback: honour a pause or reset it asked for. */
static void
sw_xmlstream_after_cb(sw_xmlstream_t *s)
{
    if ((s->pause_req || s->reset_req) && !s->stopped) {
        s->stop_off = sw_xmlstream_event_end(s);
        s->stopped = 1;
        XML_StopParser(s->parser, XML_FALSE);
    }
}

/* max_stanza_bytes, for the tree being built or input without an event. */
static bool
sw_xmlstream_over(sw_xmlstream_t *s, uint64_t pos)
{
    uint64_t base = s->pool != NULL ? s->elem_start : s->mark;

    if (pos > base && pos - base > s->lim.max_stanza_bytes) {
        sw_xmlstream_fail(s, "policy-violation",
                          "stanza size limit exceeded");
        return true;
    }
    return false;
}

/* Splits an expat name "uri\1local" into pool strings. */
static const char *
sw_xmlstream_split(sw_pool_t *pool, const XML_Char *name, const char **ns)
{
    const char *sep = strchr(name, SW_XMLSTREAM_NSSEP);

    if (sep == NULL) {
        *ns = NULL;
        return sw_pool_strdup(pool, name);
    }
    *ns = sw_pool_strndup(pool, name, (size_t) (sep - name));
    return sw_pool_strdup(pool, sep + 1);
}

/* A new element in pool from expat's name and attributes. */
static sw_xml_t *
sw_xmlstream_elem(sw_pool_t *pool, const sw_xml_t *parent,
                  const XML_Char *name, const XML_Char **atts)
{
    sw_xml_t       *e;
    sw_xml_attr_t  *a, **tail;
    const char     *ns;
    size_t          i;

    e = sw_xml_new(pool, NULL, NULL);
    e->name = sw_xmlstream_split(pool, name, &ns);
    if (parent != NULL && ns != NULL && parent->ns != NULL
        && strcmp(ns, parent->ns) == 0)
    {
        e->ns = parent->ns;     /* share: the usual case */
    } else {
        e->ns = ns;
    }

    tail = &e->attrs;
    for (i = 0; atts[i] != NULL; i += 2) {
        a = sw_pool_calloc(pool, sizeof(*a));
        a->name = sw_xmlstream_split(pool, atts[i], &a->ns);
        a->value = sw_pool_strdup(pool, atts[i + 1]);
        *tail = a;
        tail = &a->next;
    }
    return e;
}

static void
sw_xmlstream_flush_text(sw_xmlstream_t *s)
{
    if (s->text.len > 0 && s->cur != NULL) {
        sw_xml_add_text(s->cur, s->text.data, s->text.len);
    }
    sw_buf_reset(&s->text);
}

/* ------------------------------------------------------ expat handlers */

static void
sw_xmlstream_open_root(sw_xmlstream_t *s, const XML_Char *name,
                       const XML_Char **atts)
{
    sw_pool_t  *pool;
    sw_xml_t   *hdr;

    /* RFC 6120 §4.9.3.10: the root must be the streams namespace's
     * <stream/>; anything else cannot be an XMPP stream. */
    if (strcmp(name, SW_NS_STREAMS "\x01stream") != 0) {
        sw_xmlstream_fail(s, "invalid-namespace",
                          "root is not <stream:stream/>");
        return;
    }
    s->mark = sw_xmlstream_event_end(s);
    if (s->implied || s->cb.open == NULL) {
        return;
    }

    pool = sw_pool_new(512);
    hdr = sw_xmlstream_elem(pool, NULL, name, atts);
    if (s->default_set) {
        /* The content namespace (RFC 6120 §4.8.2), for the consumer to
         * check; see sw_xmlstream.h. */
        sw_xml_set_attr(hdr, "xmlns",
                        s->default_ns != NULL ? s->default_ns : "");
    }
    s->cb.open(s->ud, hdr);
    sw_pool_free(pool);
    sw_xmlstream_after_cb(s);
}

static void
sw_xmlstream_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    sw_xmlstream_t *s = ud;
    sw_xml_t       *e;
    size_t          n;

    if (s->stopped) {
        return;
    }

    for (n = 0; atts[n] != NULL; n += 2) {
        /* count */
    }
    if (n / 2 > s->lim.max_attrs) {
        sw_xmlstream_fail(s, "policy-violation", "too many attributes");
        return;
    }
    if (s->depth + 1 > s->lim.max_depth) {
        sw_xmlstream_fail(s, "policy-violation", "elements nested too deep");
        return;
    }

    if (s->depth == 0 && !s->fragment) {
        s->depth++;
        sw_xmlstream_open_root(s, name, atts);
        return;
    }

    if (s->depth == s->top) {
        s->n_elems = 0;
    }
    /* Each element costs a tree node: bound them, not only the bytes
     * (RFC 6120 §13.12: 256 kB of <a/> is 60 000 nodes). */
    if (++s->n_elems > s->lim.max_elements) {
        sw_xmlstream_fail(s, "policy-violation",
                          "too many elements in one stanza");
        return;
    }
    if (s->depth == s->top) {
        s->elem_start = sw_xmlstream_event_start(s);
        s->pool = s->fragment ? s->frag_pool : sw_pool_new(0);
        sw_buf_reset(&s->text);
        e = sw_xmlstream_elem(s->pool, NULL, name, atts);
        s->root = e;
    } else {
        sw_xmlstream_flush_text(s);
        e = sw_xmlstream_elem(s->pool, s->cur, name, atts);
        sw_xml_append(s->cur, e);
    }
    s->cur = e;
    s->depth++;
    sw_xmlstream_over(s, sw_xmlstream_event_end(s));
}

static void
sw_xmlstream_end(void *ud, const XML_Char *name)
{
    sw_xmlstream_t *s = ud;
    sw_xml_t       *root;
    sw_pool_t      *pool;
    uint64_t        end;

    if (s->stopped) {
        return;
    }

    end = sw_xmlstream_event_end(s);
    s->depth--;

    if (s->depth == 0 && !s->fragment) {
        /* </stream:stream> (RFC 6120 §4.4) */
        s->closed = 1;
        s->stop_off = end;
        s->stopped = 1;
        XML_StopParser(s->parser, XML_FALSE);
        if (s->cb.close != NULL) {
            s->cb.close(s->ud);
        }
        return;
    }

    sw_xmlstream_flush_text(s);
    if (s->depth > s->top) {
        s->cur = s->cur->parent;
        sw_xmlstream_over(s, end);
        return;
    }

    if (sw_xmlstream_over(s, end)) {
        return;
    }
    root = s->root;
    pool = s->pool;
    s->root = NULL;
    s->cur = NULL;
    s->pool = NULL;
    s->mark = end;

    if (s->fragment) {
        s->frag_root = root;    /* sw_xml_parse returns it */
        return;
    }
    if (s->cb.element != NULL) {
        s->cb.element(s->ud, root, pool);
    } else {
        sw_pool_free(pool);
    }
    sw_xmlstream_after_cb(s);
}

static void
sw_xmlstream_chars(void *ud, const XML_Char *data, int len)
{
    sw_xmlstream_t *s = ud;

    if (s->stopped) {
        return;
    }
    if (s->pool == NULL) {
        /* Between stanzas: whitespace keepalives (RFC 6120 §4.6.1).  They
         * count against the stanza size limit until the next element, so
         * a stream of nothing but whitespace ends too (an inflated
         * gigabyte of it would otherwise hold the loop). */
        sw_xmlstream_over(s, sw_xmlstream_event_end(s));
        return;
    }
    sw_buf_append(&s->text, data, (size_t) len);
    sw_xmlstream_over(s, sw_xmlstream_event_end(s));
}

static void
sw_xmlstream_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    sw_xmlstream_t *s = ud;

    if (s->depth == 0 && prefix == NULL && !s->stopped) {
        free(s->default_ns);
        s->default_ns = uri != NULL ? sw_strdup(uri) : NULL;
        s->default_set = 1;
    }
}

static void
sw_xmlstream_xmldecl(void *ud, const XML_Char *version,
                     const XML_Char *encoding, int standalone)
{
    sw_xmlstream_t *s = ud;

    /* RFC 6120 §11.6: UTF-8 only; §4.9.3.22 */
    if (encoding != NULL && strcasecmp(encoding, "UTF-8") != 0) {
        sw_xmlstream_fail(s, "unsupported-encoding",
                          "only UTF-8 is supported");
    }
}

/* RFC 6120 §11.1: no DOCTYPE, and so no entity declarations either. */
static void
sw_xmlstream_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                     const XML_Char *pubid, int has_internal_subset)
{
    sw_xmlstream_fail(ud, "restricted-xml", "DOCTYPE is not allowed");
}

static void
sw_xmlstream_entity(void *ud, const XML_Char *name, int is_param,
                    const XML_Char *value, int value_len,
                    const XML_Char *base, const XML_Char *sysid,
                    const XML_Char *pubid, const XML_Char *notation)
{
    sw_xmlstream_fail(ud, "restricted-xml",
                      "entity declarations are not allowed");
}

/* RFC 6120 §11.1 */
static void
sw_xmlstream_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    sw_xmlstream_fail(ud, "restricted-xml",
                      "processing instructions are not allowed");
}

/* RFC 6120 §11.1 */
static void
sw_xmlstream_comment(void *ud, const XML_Char *data)
{
    sw_xmlstream_fail(ud, "restricted-xml", "comments are not allowed");
}

/* ---------------------------------------------------------- lifecycle */

static void
sw_xmlstream_drop_tree(sw_xmlstream_t *s)
{
    if (s->pool != NULL && !s->fragment) {
        sw_pool_free(s->pool);
    }
    s->pool = NULL;
    s->root = NULL;
    s->cur = NULL;
    sw_buf_reset(&s->text);
}

static void
sw_xmlstream_start_doc(sw_xmlstream_t *s)
{
    XML_Parser p;

    if (s->parser != NULL) {
        XML_ParserFree(s->parser);
    }
    sw_xmlstream_drop_tree(s);
    free(s->default_ns);
    free(s->err_text);
    s->default_ns = NULL;
    s->err_text = NULL;
    s->err_cond = NULL;
    s->default_set = 0;
    s->depth = 0;
    s->fed = 0;
    s->mark = 0;
    s->elem_start = 0;
    s->stop_off = 0;
    s->stopped = 0;
    s->pause_req = 0;
    s->reset_req = 0;
    s->closed = 0;
    s->failed = 0;
    s->implied = 0;

    /* Forcing UTF-8 makes expat ignore a declared encoding; the XML
     * declaration handler rejects any other (RFC 6120 §11.6). */
    p = XML_ParserCreateNS("UTF-8", SW_XMLSTREAM_NSSEP);
    if (p == NULL) {
        sw_log_error("xmlstream: out of memory creating expat parser");
        abort();
    }
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, sw_xmlstream_start, sw_xmlstream_end);
    XML_SetCharacterDataHandler(p, sw_xmlstream_chars);
    XML_SetStartNamespaceDeclHandler(p, sw_xmlstream_ns_start);
    XML_SetXmlDeclHandler(p, sw_xmlstream_xmldecl);
    XML_SetStartDoctypeDeclHandler(p, sw_xmlstream_doctype);
    XML_SetEntityDeclHandler(p, sw_xmlstream_entity);
    XML_SetProcessingInstructionHandler(p, sw_xmlstream_pi);
    XML_SetCommentHandler(p, sw_xmlstream_comment);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    /* A stanza must be delivered as soon as its end tag arrives, even
     * when it came in byte by byte. */
    if (XML_SetReparseDeferralEnabled != NULL) {
        XML_SetReparseDeferralEnabled(p, XML_FALSE);
    }
    s->parser = p;
}

/* lim (NULL: all defaults) with the defaults where it has 0. */
static void
sw_xmlstream_limits(sw_xml_limits_t *out, const sw_xml_limits_t *lim)
{
    if (lim != NULL) {
        *out = *lim;
    }
    if (out->max_stanza_bytes == 0) {
        out->max_stanza_bytes = SW_XMLSTREAM_MAX_BYTES;
    }
    if (out->max_depth == 0) {
        out->max_depth = SW_XMLSTREAM_MAX_DEPTH;
    }
    if (out->max_elements == 0) {
        out->max_elements = SW_XMLSTREAM_MAX_ELEMENTS;
    }
    if (out->max_attrs == 0) {
        out->max_attrs = SW_XMLSTREAM_MAX_ATTRS;
    }
}

sw_xmlstream_t *
sw_xmlstream_new(const sw_xml_limits_t *lim, const sw_xmlstream_cb_t *cb,
                 void *ud)
{
    sw_xmlstream_t *s = sw_calloc(1, sizeof(*s));

    sw_xmlstream_limits(&s->lim, lim);
    if (cb != NULL) {
        s->cb = *cb;
    }
    s->ud = ud;
    s->top = 1;
    sw_buf_init(&s->text);
    sw_xmlstream_start_doc(s);
    return s;
}

void
sw_xmlstream_free(sw_xmlstream_t *s)
{
    if (s == NULL) {
        return;
    }
    sw_xmlstream_drop_tree(s);
    XML_ParserFree(s->parser);
    sw_buf_free(&s->text);
    free(s->default_ns);
    free(s->err_text);
    free(s);
}

void
sw_xmlstream_pause(sw_xmlstream_t *s)
{
    s->pause_req = 1;
}

void
sw_xmlstream_reset(sw_xmlstream_t *s)
{
    if (s->in_feed) {
        /* expat is on the stack: reset once XML_Parse returns. */
        s->reset_req = 1;
        return;
    }
    sw_xmlstream_start_doc(s);
}

/* ----------------------------------------------------------- feeding */

static const char *
sw_xmlstream_expat_cond(enum XML_Error code)
{
    switch (code) {
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_PARAM_ENTITY_REF:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
        /* RFC 6120 §11.1: only the predefined entities exist. */
        return "restricted-xml";
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
        return "unsupported-encoding";
    default:
        return "not-well-formed";
    }
}

/* Reports a pending error once (no callbacks after it). */
static int
sw_xmlstream_report(sw_xmlstream_t *s)
{
    s->failed = 1;
    sw_xmlstream_drop_tree(s);
    sw_log_debug("xmlstream: %s: %s", s->err_cond,
                 s->err_text != NULL ? s->err_text : "");
    if (s->cb.error != NULL) {
        s->cb.error(s->ud, s->err_cond,
                    s->err_text != NULL ? s->err_text : "");
    }
    return SW_ERROR;
}

/* One XML_Parse over data; SW_OK when all of it was taken. */
static int
sw_xmlstream_parse(sw_xmlstream_t *s, const char *data, size_t len,
                   bool final, size_t *used)
{
    enum XML_Status st;
    uint64_t        before = s->fed;
    char            detail[128];

    s->fed += len;
    st = XML_Parse(s->parser, data, (int) len, final);

    if (s->err_cond != NULL) {
        *used = len;
        return SW_ERROR;
    }
    if (st == XML_STATUS_ERROR && !s->stopped) {
        enum XML_Error code = XML_GetErrorCode(s->parser);

        snprintf(detail, sizeof(detail), "%s at line %lu",
                 XML_ErrorString(code),
                 (unsigned long) XML_GetCurrentLineNumber(s->parser));
        sw_xmlstream_fail(s, sw_xmlstream_expat_cond(code), detail);
        *used = len;
        return SW_ERROR;
    }
    if (s->stopped) {
        /* The event we stopped after ends in this chunk. */
        *used = s->stop_off > before ? (size_t) (s->stop_off - before) : 0;
        return SW_AGAIN;
    }

    *used = len;
    if (sw_xmlstream_over(s, s->fed)) {
        return SW_ERROR;
    }
    return SW_OK;
}

static int sw_xmlstream_feed_doc(sw_xmlstream_t *s, const char *data,
                                 size_t len, size_t *used);

int
sw_xmlstream_feed(sw_xmlstream_t *s, const char *data, size_t len,
                  size_t *used)
{
    size_t skip = 0, dummy;
    int    rc;

    if (used == NULL) {
        used = &dummy;
    }
    /*
     * Whitespace before a new document still belongs to the old stream
     * (a client that ends <auth/> with a newline, then opens the stream
     * that follows SASL success): XML allows nothing before the
     * declaration, so it is passed over here.
     */
    if (s->fed == 0 && !s->implied && !s->failed && !s->stopped) {
        while (skip < len && (data[skip] == ' ' || data[skip] == '\n'
                              || data[skip] == '\r' || data[skip] == '\t'))
        {
            skip++;
        }
    }
    rc = sw_xmlstream_feed_doc(s, data + skip, len - skip, used);
    *used += skip;
    return rc;
}

static int
sw_xmlstream_feed_doc(sw_xmlstream_t *s, const char *data, size_t len,
                      size_t *used)
{
    size_t off = 0, n, chunk, dummy;
    int    rc;

    if (used == NULL) {
        used = &dummy;
    }
    *used = 0;
    if (s->failed) {
        return SW_ERROR;
    }
    if (s->closed) {
        return SW_DONE;
    }
    if (s->stopped) {
        /* Paused: the rest of the input belongs to a new document. */
        sw_log_error("xmlstream: fed after pause without reset");
        return SW_ERROR;
    }

    s->in_feed = 1;
    for ( ;; ) {
        /*
         * Slices of at most the stanza limit (expat takes an int length),
         * so the checks between slices bound expat's buffer near twice
         * the limit even when a huge chunk arrives at once.
         */
        chunk = len - off;
        if (chunk > s->lim.max_stanza_bytes) {
            chunk = s->lim.max_stanza_bytes < 65536
                    ? 65536 : s->lim.max_stanza_bytes;
            if (chunk > len - off) {
                chunk = len - off;
            }
        }
        if (chunk > (1u << 30)) {
            chunk = 1u << 30;
        }
        rc = sw_xmlstream_parse(s, data + off, chunk, false, &n);
        off += n;

        if (rc == SW_ERROR) {
            s->in_feed = 0;
            *used = off;
            return sw_xmlstream_report(s);
        }
        if (rc == SW_OK) {
            if (off < len) {
                continue;
            }
            s->in_feed = 0;
            *used = off;
            return SW_OK;
        }

        /* Stopped after an event: close, pause and/or reset. */
        if (s->closed && !s->reset_req) {
            s->in_feed = 0;
            *used = off;
            return SW_DONE;
        }
        if (s->reset_req) {
            bool pause = s->pause_req;

            s->in_feed = 0;
            sw_xmlstream_start_doc(s);
            s->in_feed = 1;
            if (!pause && off < len) {
                continue;       /* the rest starts the new document */
            }
            s->in_feed = 0;
            *used = off;
            return pause ? SW_AGAIN : SW_OK;
        }
        s->in_feed = 0;
        *used = off;
        return SW_AGAIN;
    }
}

void
sw_xmlstream_imply_open(sw_xmlstream_t *s, const char *default_ns)
{
    sw_buf_t b;
    size_t   n;

    if (s->in_feed) {
        /* expat is on the stack; this is set up before feeding. */
        sw_log_error("xmlstream: imply_open called from a callback");
        return;
    }
    sw_xmlstream_start_doc(s);
    s->implied = 1;

    /* XEP-0361: the header exists only in our parser's view. */
    sw_buf_init(&b);
    sw_buf_append_str(&b, "<stream:stream");
    if (default_ns != NULL) {
        sw_buf_append_str(&b, " xmlns='");
        sw_xml_escape(&b, default_ns, strlen(default_ns), true);
        sw_buf_append_str(&b, "'");
    }
    sw_buf_append_str(&b, " xmlns:stream='" SW_NS_STREAMS "'>");
    s->in_feed = 1;
    if (sw_xmlstream_parse(s, b.data, b.len, false, &n) != SW_OK) {
        /* Only a bad default_ns (a caller bug) can get here. */
        s->in_feed = 0;
        sw_xmlstream_report(s);
    }
    s->in_feed = 0;
    sw_buf_free(&b);
}

/* -------------------------------------------------------- sw_xml_parse */

sw_xml_t *
sw_xml_parse(sw_pool_t *pool, const char *data, size_t len, const char **err)
{
    sw_xmlstream_t *s;
    sw_xml_t       *root = NULL;
    const char     *cond = "policy-violation";
    size_t          n;

    s = sw_xmlstream_new(NULL, NULL, NULL);
    s->fragment = 1;
    s->top = 0;
    s->frag_pool = pool;
    /* The caller already holds all of it: no stanza size limit. */
    s->lim.max_stanza_bytes = (size_t) -1;

    if (len <= (1u << 30)) {
        s->in_feed = 1;
        if (sw_xmlstream_parse(s, data, len, true, &n) == SW_OK) {
            root = s->frag_root;
        }
        cond = s->err_cond != NULL ? s->err_cond : "not-well-formed";
    }
    if (root == NULL && err != NULL) {
        *err = cond;            /* a static condition name */
    }
    sw_xmlstream_free(s);
    return root;
}

void
sw_xmlstream_set_data(sw_xmlstream_t *s, void *ud)
{
    s->ud = ud;
}

void
sw_xmlstream_set_limits(sw_xmlstream_t *s, const sw_xml_limits_t *lim)
{
    size_t frag = s->lim.max_stanza_bytes;

    sw_xmlstream_limits(&s->lim, lim);
    if (s->fragment) {
        s->lim.max_stanza_bytes = frag;
    }
}

void
sw_xmlstream_set_callbacks(sw_xmlstream_t *s, const sw_xmlstream_cb_t *cb)
{
    s->cb = *cb;
}
