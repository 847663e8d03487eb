/*
 * Incremental XML stream parser (expat, namespace-aware).
 *
 * The stream root is <stream:stream>; every depth-1 element is delivered as
 * a complete tree in its own pool (a stanza, or a stream-level element such
 * as <starttls/>).  RFC 6120 §11.1 restrictions are enforced: a DOCTYPE,
 * processing instruction, comment, or entity declaration ends the stream
 * with <restricted-xml/>; a non-UTF-8 encoding declaration with
 * <unsupported-encoding/>; malformed input with <not-well-formed/>; limits
 * exceeded with <policy-violation/> (RFC 6120 §4.9.3.14).
 */
#ifndef SKYWAVE_SW_XMLSTREAM_H
#define SKYWAVE_SW_XMLSTREAM_H

#include <skywave/sw_core.h>
#include <skywave/sw_xml.h>

typedef struct sw_xmlstream_s sw_xmlstream_t;

typedef struct sw_xml_limits_s {
    size_t   max_stanza_bytes;  /* bytes of one depth-1 element, or of
                                   input without a complete event; 0 = 256k */
    unsigned max_depth;         /* element depth incl. stream root; 0 = 32 */
    unsigned max_attrs;         /* attributes per element; 0 = 64 */
    unsigned max_elements;      /* elements in one depth-1 element (the
                                   tree built for it); 0 = 5000 */
} sw_xml_limits_t;

typedef struct sw_xmlstream_cb_s {
    /* Stream header (root element, no children), borrowed for the call.
     * Its default namespace declaration (the content namespace, RFC 6120
     * §4.8.2), if any, is the attribute "xmlns" (no namespace); the
     * serializer never writes that attribute. */
    void (*open)(void *ud, sw_xml_t *header);
    /* A depth-1 element; takes: the callee owns pool (frees it). */
    void (*element)(void *ud, sw_xml_t *elem, sw_pool_t *pool);
    /* </stream:stream> received. */
    void (*close)(void *ud);
    /* Fatal stream error: condition is an RFC 6120 §4.9.3 element name
     * ("not-well-formed", "restricted-xml", "policy-violation",
     * "invalid-namespace", "unsupported-encoding", "bad-format"); text is
     * a human-readable detail.  No further callbacks follow. */
    void (*error)(void *ud, const char *condition, const char *text);
} sw_xmlstream_cb_t;

/* Returns new.  lim NULL = defaults.  cb is copied. */
sw_xmlstream_t *sw_xmlstream_new(const sw_xml_limits_t *lim,
                                 const sw_xmlstream_cb_t *cb, void *ud);
void sw_xmlstream_free(sw_xmlstream_t *s);

/*
 * Feeds bytes.  Returns:
 *   SW_OK     all bytes consumed;
 *   SW_AGAIN  a callback called sw_xmlstream_pause(): parsing stopped right
 *             after the element that callback got, *used tells how many
 *             bytes of data were consumed; the rest belongs to what comes
 *             next (TLS after <proceed/>, or a new stream after SASL);
 *   SW_DONE   the peer closed the stream (close callback ran);
 *   SW_ERROR  a stream error (error callback ran).
 * used may be NULL.  Callbacks may call sw_xmlstream_pause/reset but not
 * free the parser.  After SW_AGAIN, call sw_xmlstream_reset before feeding
 * again (feeding first returns SW_ERROR).  A reset from a callback without
 * a pause goes on parsing the rest of data as the new document.
 */
int sw_xmlstream_feed(sw_xmlstream_t *s, const char *data, size_t len,
                      size_t *used);
/* Changes the ud passed to callbacks (a stream moving to another owner,
 * as in XEP-0198 resumption); takes effect with the next callback. */
void sw_xmlstream_set_data(sw_xmlstream_t *s, void *ud);
/* New limits (copied; 0 fields take the defaults), from the next element
 * on: c2s holds a stream to smaller ones before authentication. */
void sw_xmlstream_set_limits(sw_xmlstream_t *s, const sw_xml_limits_t *lim);
/* Changes the callbacks (copied), from the next callback on; may be
 * called from a callback. */
void sw_xmlstream_set_callbacks(sw_xmlstream_t *s,
                                const sw_xmlstream_cb_t *cb);
/* From a callback: stop after the current element (see SW_AGAIN). */
void sw_xmlstream_pause(sw_xmlstream_t *s);
/* Starts a fresh document (RFC 6120 §5.4.3.3 after TLS, §6.4.6 after
 * SASL).  Safe to call from a callback or after SW_AGAIN. */
void sw_xmlstream_reset(sw_xmlstream_t *s);
/*
 * XEP-0361: the stream header is implied.  Makes the parser behave as if
 * <stream:stream xmlns='default_ns' xmlns:stream='...'> had been received
 * (no open callback); depth-1 elements then default to default_ns.
 */
/* Not from a callback.  A later sw_xmlstream_reset forgets it. */
void sw_xmlstream_imply_open(sw_xmlstream_t *s, const char *default_ns);

#endif
