/*
 * XML element trees.  A tree lives in one sw_pool_t: nodes are never freed
 * one by one, the pool is.  Namespaces are resolved: every element carries
 * its namespace URI, never a prefix.
 */
#ifndef SKYWAVE_SW_XML_H
#define SKYWAVE_SW_XML_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>
#include <skywave/sw_buf.h>

typedef struct sw_xml_s      sw_xml_t;
typedef struct sw_xml_attr_s sw_xml_attr_t;

typedef enum sw_xml_node_e {
    SW_XML_ELEM = 0,
    SW_XML_TEXT,
} sw_xml_node_e;

struct sw_xml_attr_s {
    sw_xml_attr_t *next;
    const char    *ns;      /* NULL: no namespace (the usual case) */
    const char    *name;    /* local name */
    const char    *value;   /* unescaped UTF-8 */
};

struct sw_xml_s {
    sw_xml_node_e  type;
    sw_pool_t     *pool;
    sw_xml_t      *parent;
    sw_xml_t      *next;    /* siblings */
    sw_xml_t      *prev;
    sw_xml_t      *first;   /* children (elements and text nodes) */
    sw_xml_t      *last;
    const char    *ns;      /* element: namespace URI, NULL if none */
    const char    *name;    /* element: local name; text: NULL */
    sw_xml_attr_t *attrs;   /* element: in document order */
    const char    *text;    /* text node: unescaped UTF-8, NUL-terminated */
    size_t         text_len;
};

/* Returns a new element in pool (no parent). */
sw_xml_t *sw_xml_new(sw_pool_t *pool, const char *ns, const char *name);
/* Appends a new element child; ns NULL means the parent's namespace. */
sw_xml_t *sw_xml_add(sw_xml_t *parent, const char *ns, const char *name);
/* Appends text (copied); merges with a preceding text node. */
sw_xml_t *sw_xml_add_text(sw_xml_t *parent, const char *text, size_t len);
/* Appends an existing node (from the same pool, or copied if not). */
sw_xml_t *sw_xml_append(sw_xml_t *parent, sw_xml_t *child);
/* Unlinks node from its parent (memory stays in the pool). */
void sw_xml_unlink(sw_xml_t *node);
/* Deep copy into pool. */
sw_xml_t *sw_xml_copy(sw_pool_t *pool, const sw_xml_t *node);

/* Attributes without namespace; value NULL removes.  Value is copied. */
void sw_xml_set_attr(sw_xml_t *e, const char *name, const char *value);
void sw_xml_set_attr_ns(sw_xml_t *e, const char *ns, const char *name,
                        const char *value);
const char *sw_xml_attr(const sw_xml_t *e, const char *name);
const char *sw_xml_attr_ns(const sw_xml_t *e, const char *ns,
                           const char *name);

/*
 * First element child matching ns and name (either NULL = any), or NULL.
 * sw_xml_next_match continues after a previous match with the same test.
 */
sw_xml_t *sw_xml_child(const sw_xml_t *e, const char *ns, const char *name);
sw_xml_t *sw_xml_next_match(const sw_xml_t *prev, const char *ns,
                            const char *name);
/* Number of element children. */
size_t sw_xml_count_children(const sw_xml_t *e);
/* Concatenated text of the direct text children; "" if none.  Borrowed
 * when there is at most one text node, else allocated in e's pool. */
const char *sw_xml_text(const sw_xml_t *e);
/* Text of the first child ns:name, or NULL if there is no such child. */
const char *sw_xml_child_text(const sw_xml_t *e, const char *ns,
                              const char *name);
/* Replaces all children by one text node. */
void sw_xml_set_text(sw_xml_t *e, const char *text);

/*
 * Serializes node into out.  in_ns is the default namespace in scope where
 * the output goes (e.g. the stream's "jabber:client"); the element gets an
 * xmlns declaration only when its namespace differs.  jabber:client and
 * jabber:server count as the same content namespace (RFC 6120 §4.8.3), so a
 * stanza moves between c2s and s2s without rewriting.  Elements in
 * SW_NS_STREAMS are written with the "stream:" prefix, which the stream
 * header declares.  Attributes in SW_NS_XML use "xml:"; other namespaced
 * attributes get a generated prefix declared on their element.
 * Attribute values are quoted with ' and escaped (&amp; &lt; &gt; &apos;
 * &quot;, and TAB, LF, CR as character references, which a reader would
 * otherwise turn into spaces); text escapes & < > and CR (which a reader
 * would turn into LF).
 */
void sw_xml_serialize(const sw_xml_t *node, sw_buf_t *out, const char *in_ns);
/* Convenience: returns a new NUL-terminated string (free()). */
char *sw_xml_to_string(const sw_xml_t *node, const char *in_ns);
/* Appends s[0..len) escaped for text (attr=false) or a '-quoted value. */
void sw_xml_escape(sw_buf_t *out, const char *s, size_t len, bool attr);

/*
 * Parses one complete XML document (a fragment such as a stanza) into pool,
 * with the same restrictions as the stream parser.  For tests, tools and
 * stored stanzas.  Returns the root or NULL (with *err set to a static
 * message when err is not NULL).
 */
sw_xml_t *sw_xml_parse(sw_pool_t *pool, const char *data, size_t len,
                       const char **err);

#endif
