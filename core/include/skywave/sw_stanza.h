/*
 * Stanzas: an element tree plus a summary parsed once (kind, type, to,
 * from, id, IQ payload), so routing and filters never re-parse strings.
 * Reference-counted; a routed stanza is shared and must not be changed in
 * place: sw_stanza_writable() gives a private copy when it is shared.
 */
#ifndef SKYWAVE_SW_STANZA_H
#define SKYWAVE_SW_STANZA_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>
#include <skywave/sw_xml.h>
#include <skywave/sw_jid.h>

typedef enum sw_stanza_kind_e {
    SW_STANZA_MESSAGE = 0,
    SW_STANZA_PRESENCE,
    SW_STANZA_IQ,
    SW_STANZA_OTHER,        /* not a stanza (nonza) */
} sw_stanza_kind_e;

typedef struct sw_stanza_s {
    sw_pool_t        *pool;         /* owns xml and all summary strings */
    sw_xml_t         *xml;
    unsigned          refs;
    sw_stanza_kind_e  kind;
    const char       *type;         /* type attribute or NULL */
    const char       *id;
    sw_jid_t         *to;           /* NULL if absent */
    sw_jid_t         *from;         /* NULL if absent */
    const sw_xml_t   *payload;      /* iq: the one child element, or NULL */
} sw_stanza_t;

/*
 * Wraps xml (takes pool) and parses the summary.  Returns the stanza, or
 * NULL when to/from is not a valid JID: then *err (if not NULL) is set to
 * "jid-malformed" and the pool is still the caller's.
 */
sw_stanza_t *sw_stanza_new(sw_pool_t *pool, sw_xml_t *xml, const char **err);
/* Parses text (tests, stored stanzas).  Returns new or NULL. */
sw_stanza_t *sw_stanza_parse(const char *text, size_t len);
sw_stanza_t *sw_stanza_ref(sw_stanza_t *st);
void sw_stanza_unref(sw_stanza_t *st);
/* Makes *stp private (copies if shared) so it may be modified. */
sw_stanza_t *sw_stanza_writable(sw_stanza_t **stp);
/* After changing to/from/type attributes of a writable stanza. */
int sw_stanza_reparse(sw_stanza_t *st);
/* Sets to/from (NULL removes) on a writable stanza, keeping the summary. */
void sw_stanza_set_to(sw_stanza_t *st, const sw_jid_t *to);
void sw_stanza_set_from(sw_stanza_t *st, const sw_jid_t *from);

/*
 * Builds the error reply to st (RFC 6120 §8.3): to/from swapped,
 * type='error', the original children kept, and
 * <error type='etype'><condition xmlns='...stanzas'/><text/></error>.
 * Returns NULL when st is itself an error (never answer an error with an
 * error, RFC 6120 §8.3.1).  text may be NULL.
 */
sw_stanza_t *sw_stanza_error_reply(const sw_stanza_t *st, const char *etype,
                                   const char *condition, const char *text);
/* The default error type for a defined condition (RFC 6120 §8.3.3). */
const char *sw_stanza_error_type(const char *condition);
/* The defined condition's name as a static string, or NULL if RFC 6120
 * §8.3.3 does not define it. */
const char *sw_stanza_condition(const char *condition);
/* Builds an empty result IQ to an IQ get/set (RFC 6120 §8.2.3). */
sw_stanza_t *sw_stanza_iq_result(const sw_stanza_t *iq);

const char *sw_stanza_kind_name(sw_stanza_kind_e kind);

#endif
