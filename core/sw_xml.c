/*
 * XML element trees in a pool, and their serializer.  The parser lives in
 * sw_xmlstream.c next to the stream parser, because both share the one
 * restricted expat setup (RFC 6120 §11.1).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_xml.h>

/* The only namespace that gets its own prefix in our output. */
#define SW_XML_STREAM_PREFIX "stream:"

static bool
sw_xml_is_content_ns(const char *ns)
{
    return strcmp(ns, SW_NS_CLIENT) == 0 || strcmp(ns, SW_NS_SERVER) == 0;
}

/*
 * Namespace equality where NULL and "" both mean "no namespace", and
 * jabber:client equals jabber:server: they are one content namespace seen
 * from c2s and s2s (RFC 6120 §4.8.3).
 */
static bool
sw_xml_same_ns(const char *a, const char *b)
{
    if (a != NULL && *a == '\0') {
        a = NULL;
    }
    if (b != NULL && *b == '\0') {
        b = NULL;
    }
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a == b || strcmp(a, b) == 0) {
        return true;
    }
    return sw_xml_is_content_ns(a) && sw_xml_is_content_ns(b);
}

static bool
sw_xml_matches(const sw_xml_t *e, const char *ns, const char *name)
{
    if (e->type != SW_XML_ELEM) {
        return false;
    }
    if (name != NULL && strcmp(e->name, name) != 0) {
        return false;
    }
    return ns == NULL || sw_xml_same_ns(e->ns, ns);
}

/* Links child (already in parent's pool, without a parent) as last. */
static void
sw_xml_link(sw_xml_t *parent, sw_xml_t *child)
{
    child->parent = parent;
    child->next = NULL;
    child->prev = parent->last;
    if (parent->last != NULL) {
        parent->last->next = child;
    } else {
        parent->first = child;
    }
    parent->last = child;
}

sw_xml_t *
sw_xml_new(sw_pool_t *pool, const char *ns, const char *name)
{
    sw_xml_t *e = sw_pool_calloc(pool, sizeof(*e));

    e->type = SW_XML_ELEM;
    e->pool = pool;
    e->ns = sw_pool_strdup(pool, ns);
    e->name = sw_pool_strdup(pool, name);
    return e;
}

sw_xml_t *
sw_xml_add(sw_xml_t *parent, const char *ns, const char *name)
{
    sw_xml_t *e;

    e = sw_xml_new(parent->pool, NULL, name);
    if (ns == NULL || (parent->ns != NULL && strcmp(ns, parent->ns) == 0)) {
        /* Share the parent's string: most children are in its namespace. */
        e->ns = parent->ns;
    } else {
        e->ns = sw_pool_strdup(parent->pool, ns);
    }
    sw_xml_link(parent, e);
    return e;
}

sw_xml_t *
sw_xml_add_text(sw_xml_t *parent, const char *text, size_t len)
{
    sw_xml_t *t = parent->last;
    char     *s;

    if (t != NULL && t->type == SW_XML_TEXT) {
        /* Keep one text node per run, as a parser would produce. */
        s = sw_pool_alloc(parent->pool, t->text_len + len + 1);
        memcpy(s, t->text, t->text_len);
        memcpy(s + t->text_len, text, len);
        s[t->text_len + len] = '\0';
        t->text = s;
        t->text_len += len;
        return t;
    }

    t = sw_pool_calloc(parent->pool, sizeof(*t));
    t->type = SW_XML_TEXT;
    t->pool = parent->pool;
    t->text = sw_pool_strndup(parent->pool, text, len);
    t->text_len = len;
    sw_xml_link(parent, t);
    return t;
}

sw_xml_t *
sw_xml_append(sw_xml_t *parent, sw_xml_t *child)
{
    if (child->pool != parent->pool) {
        child = sw_xml_copy(parent->pool, child);
    } else {
        sw_xml_unlink(child);
    }
    if (child->type == SW_XML_TEXT && parent->last != NULL
        && parent->last->type == SW_XML_TEXT)
    {
        return sw_xml_add_text(parent, child->text, child->text_len);
    }
    sw_xml_link(parent, child);
    return child;
}

void
sw_xml_unlink(sw_xml_t *node)
{
    sw_xml_t *parent = node->parent;

    if (parent == NULL) {
        return;
    }
    if (node->prev != NULL) {
        node->prev->next = node->next;
    } else {
        parent->first = node->next;
    }
    if (node->next != NULL) {
        node->next->prev = node->prev;
    } else {
        parent->last = node->prev;
    }
    node->parent = NULL;
    node->next = NULL;
    node->prev = NULL;
}

sw_xml_t *
sw_xml_copy(sw_pool_t *pool, const sw_xml_t *node)
{
    sw_xml_t            *e;
    const sw_xml_t      *c;
    const sw_xml_attr_t *a;
    sw_xml_attr_t       *na, **tail;

    e = sw_pool_calloc(pool, sizeof(*e));
    e->type = node->type;
    e->pool = pool;
    if (node->type == SW_XML_TEXT) {
        e->text = sw_pool_strndup(pool, node->text, node->text_len);
        e->text_len = node->text_len;
        return e;
    }
    e->ns = sw_pool_strdup(pool, node->ns);
    e->name = sw_pool_strdup(pool, node->name);

    tail = &e->attrs;
    for (a = node->attrs; a != NULL; a = a->next) {
        na = sw_pool_calloc(pool, sizeof(*na));
        na->ns = sw_pool_strdup(pool, a->ns);
        na->name = sw_pool_strdup(pool, a->name);
        na->value = sw_pool_strdup(pool, a->value);
        *tail = na;
        tail = &na->next;
    }

    for (c = node->first; c != NULL; c = c->next) {
        sw_xml_link(e, sw_xml_copy(pool, c));
    }
    return e;
}

/* ------------------------------------------------------------ attributes */

static bool
sw_xml_attr_is(const sw_xml_attr_t *a, const char *ns, const char *name)
{
    if (strcmp(a->name, name) != 0) {
        return false;
    }
    if (ns == NULL || a->ns == NULL) {
        return ns == a->ns;
    }
    return strcmp(ns, a->ns) == 0;
}

void
sw_xml_set_attr(sw_xml_t *e, const char *name, const char *value)
{
    sw_xml_set_attr_ns(e, NULL, name, value);
}

void
sw_xml_set_attr_ns(sw_xml_t *e, const char *ns, const char *name,
                   const char *value)
{
    sw_xml_attr_t *a, **pa;

    for (pa = &e->attrs; *pa != NULL; pa = &(*pa)->next) {
        a = *pa;
        if (!sw_xml_attr_is(a, ns, name)) {
            continue;
        }
        if (value == NULL) {
            *pa = a->next;
        } else {
            a->value = sw_pool_strdup(e->pool, value);
        }
        return;
    }
    if (value == NULL) {
        return;
    }

    /* New attributes go last so document order survives a round trip. */
    a = sw_pool_calloc(e->pool, sizeof(*a));
    a->ns = sw_pool_strdup(e->pool, ns);
    a->name = sw_pool_strdup(e->pool, name);
    a->value = sw_pool_strdup(e->pool, value);
    *pa = a;
}

const char *
sw_xml_attr(const sw_xml_t *e, const char *name)
{
    return sw_xml_attr_ns(e, NULL, name);
}

const char *
sw_xml_attr_ns(const sw_xml_t *e, const char *ns, const char *name)
{
    const sw_xml_attr_t *a;

    for (a = e->attrs; a != NULL; a = a->next) {
        if (sw_xml_attr_is(a, ns, name)) {
            return a->value;
        }
    }
    return NULL;
}

/* ------------------------------------------------------- children, text */

sw_xml_t *
sw_xml_child(const sw_xml_t *e, const char *ns, const char *name)
{
    sw_xml_t *c;

    for (c = e->first; c != NULL; c = c->next) {
        if (sw_xml_matches(c, ns, name)) {
            return c;
        }
    }
    return NULL;
}

sw_xml_t *
sw_xml_next_match(const sw_xml_t *prev, const char *ns, const char *name)
{
    sw_xml_t *c;

    for (c = prev->next; c != NULL; c = c->next) {
        if (sw_xml_matches(c, ns, name)) {
            return c;
        }
    }
    return NULL;
}

size_t
sw_xml_count_children(const sw_xml_t *e)
{
    const sw_xml_t *c;
    size_t          n = 0;

    for (c = e->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_ELEM) {
            n++;
        }
    }
    return n;
}

const char *
sw_xml_text(const sw_xml_t *e)
{
    const sw_xml_t *c, *only = NULL;
    size_t          len = 0, ntext = 0;
    char           *s, *p;

    for (c = e->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_TEXT) {
            only = c;
            len += c->text_len;
            ntext++;
        }
    }
    if (ntext == 0) {
        return "";
    }
    if (ntext == 1) {
        return only->text;
    }

    s = sw_pool_alloc(e->pool, len + 1);
    p = s;
    for (c = e->first; c != NULL; c = c->next) {
        if (c->type == SW_XML_TEXT) {
            memcpy(p, c->text, c->text_len);
            p += c->text_len;
        }
    }
    *p = '\0';
    return s;
}

const char *
sw_xml_child_text(const sw_xml_t *e, const char *ns, const char *name)
{
    const sw_xml_t *c = sw_xml_child(e, ns, name);

    return c != NULL ? sw_xml_text(c) : NULL;
}

void
sw_xml_set_text(sw_xml_t *e, const char *text)
{
    while (e->first != NULL) {
        sw_xml_unlink(e->first);
    }
    if (text != NULL && *text != '\0') {
        sw_xml_add_text(e, text, strlen(text));
    }
}

/* ------------------------------------------------------------ serializer */

void
sw_xml_escape(sw_buf_t *out, const char *s, size_t len, bool attr)
{
    const char *run = s, *end = s + len, *rep;

    for (; s < end; s++) {
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            /* Needed in text too: "]]>" must never appear unescaped. */
            rep = "&gt;";
            break;
        case '\'':
            rep = attr ? "&apos;" : NULL;
            break;
        case '"':
            rep = attr ? "&quot;" : NULL;
            break;
        case '\r':
            /* A literal CR reaches the reader as LF (XML 1.0 §2.11): a CR
             * that came as &#13; must leave as one. */
            rep = "&#13;";
            break;
        case '\n':
        case '\t':
            /* In a value they would become spaces (XML 1.0 §3.3.3). */
            rep = !attr ? NULL : *s == '\n' ? "&#10;" : "&#9;";
            break;
        default:
            rep = NULL;
            break;
        }
        if (rep == NULL) {
            continue;
        }
        sw_buf_append(out, run, (size_t) (s - run));
        sw_buf_append_str(out, rep);
        run = s + 1;
    }
    sw_buf_append(out, run, (size_t) (end - run));
}

static void
sw_xml_put_attr(sw_buf_t *out, const char *prefix, unsigned n,
                const char *name, const char *value)
{
    sw_buf_append_str(out, " ");
    if (prefix != NULL) {
        if (n > 0) {
            sw_buf_printf(out, "%s%u:", prefix, n);
        } else {
            sw_buf_printf(out, "%s:", prefix);
        }
    }
    sw_buf_append_str(out, name);
    sw_buf_append_str(out, "='");
    sw_xml_escape(out, value, strlen(value), true);
    sw_buf_append_str(out, "'");
}

static bool
sw_xml_attr_needs_prefix(const sw_xml_attr_t *a)
{
    return a->ns != NULL && *a->ns != '\0' && strcmp(a->ns, SW_NS_XML) != 0;
}

/*
 * Number of the generated prefix ("ns1", "ns2"...) for attribute a: one
 * per distinct namespace URI on the element, in order of first use.  New
 * is set when a is the first attribute using its URI, so the caller
 * declares each prefix once.
 */
static unsigned
sw_xml_attr_prefix(const sw_xml_t *e, const sw_xml_attr_t *a, bool *new)
{
    const sw_xml_attr_t *b, *c;
    unsigned             n = 0;

    for (b = e->attrs; b != a; b = b->next) {
        if (!sw_xml_attr_needs_prefix(b)) {
            continue;
        }
        for (c = e->attrs; c != b; c = c->next) {
            if (sw_xml_attr_needs_prefix(c) && strcmp(c->ns, b->ns) == 0) {
                break;
            }
        }
        if (c != b) {
            continue;           /* b's URI already has a number */
        }
        n++;
        if (strcmp(b->ns, a->ns) == 0) {
            *new = false;
            return n;
        }
    }
    *new = true;
    return n + 1;
}

static void
sw_xml_put_attrs(const sw_xml_t *e, sw_buf_t *out)
{
    const sw_xml_attr_t *a;
    unsigned             n;
    bool                 new;

    for (a = e->attrs; a != NULL; a = a->next) {
        if (a->ns == NULL || *a->ns == '\0') {
            /*
             * The stream parser records the header's default namespace
             * declaration as "xmlns"; the serializer writes declarations
             * from the tree's namespaces instead.
             */
            if (strcmp(a->name, "xmlns") != 0) {
                sw_xml_put_attr(out, NULL, 0, a->name, a->value);
            }
        } else if (strcmp(a->ns, SW_NS_XML) == 0) {
            /* The xml: prefix is bound by definition (XML Namespaces §3). */
            sw_xml_put_attr(out, "xml", 0, a->name, a->value);
        } else {
            n = sw_xml_attr_prefix(e, a, &new);
            if (new) {
                sw_buf_printf(out, " xmlns:ns%u='", n);
                sw_xml_escape(out, a->ns, strlen(a->ns), true);
                sw_buf_append_str(out, "'");
            }
            sw_xml_put_attr(out, "ns", n, a->name, a->value);
        }
    }
}

static void
sw_xml_put_node(const sw_xml_t *n, sw_buf_t *out, const char *in_ns,
                bool top)
{
    const sw_xml_t *c;
    const char     *child_ns = in_ns;
    const char     *prefix;
    bool            streams;

    if (n->type == SW_XML_TEXT) {
        sw_xml_escape(out, n->text, n->text_len, false);
        return;
    }

    streams = n->ns != NULL && strcmp(n->ns, SW_NS_STREAMS) == 0;
    /*
     * An element in the reserved XML namespace keeps its "xml:" prefix:
     * the namespace is bound to it by definition and may not be made the
     * default one (Namespaces in XML 1.0 §3).
     */
    prefix = streams ? SW_XML_STREAM_PREFIX
           : n->ns != NULL && strcmp(n->ns, SW_NS_XML) == 0 ? "xml:" : NULL;
    sw_buf_append_str(out, "<");
    if (prefix != NULL) {
        /*
         * The stream header binds "stream:", so the default namespace in
         * scope does not change: <stream:features/> children in another
         * namespace get their own xmlns below.
         */
        sw_buf_append_str(out, prefix);
        sw_buf_append_str(out, n->name);
        if (streams && top && in_ns == NULL) {
            /* Written outside any stream: declare it for a reader. */
            sw_buf_append_str(out, " xmlns:stream='" SW_NS_STREAMS "'");
        }
    } else {
        sw_buf_append_str(out, n->name);
        if (!sw_xml_same_ns(n->ns, in_ns)) {
            sw_buf_append_str(out, " xmlns='");
            if (n->ns != NULL) {
                sw_xml_escape(out, n->ns, strlen(n->ns), true);
            }
            sw_buf_append_str(out, "'");
            child_ns = n->ns;
        }
    }
    sw_xml_put_attrs(n, out);

    if (n->first == NULL) {
        sw_buf_append_str(out, "/>");
        return;
    }
    sw_buf_append_str(out, ">");
    for (c = n->first; c != NULL; c = c->next) {
        sw_xml_put_node(c, out, child_ns, false);
    }
    sw_buf_append_str(out, "</");
    if (prefix != NULL) {
        sw_buf_append_str(out, prefix);
    }
    sw_buf_append_str(out, n->name);
    sw_buf_append_str(out, ">");
}

void
sw_xml_serialize(const sw_xml_t *node, sw_buf_t *out, const char *in_ns)
{
    sw_xml_put_node(node, out, in_ns, true);
}

char *
sw_xml_to_string(const sw_xml_t *node, const char *in_ns)
{
    sw_buf_t b;

    sw_buf_init(&b);
    sw_xml_serialize(node, &b, in_ns);
    return sw_buf_steal(&b, NULL);
}
