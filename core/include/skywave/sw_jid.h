/*
 * JIDs (RFC 7622 address format).  Preparation uses libidn's stringprep
 * profiles Nodeprep, Nameprep and Resourceprep (the RFC 6122 profiles;
 * RFC 7622's PRECIS classes are a superset for practically all input).
 */
#ifndef SKYWAVE_SW_JID_H
#define SKYWAVE_SW_JID_H

#include <skywave/sw_core.h>
#include <skywave/sw_pool.h>

typedef struct sw_jid_s {
    const char *node;      /* NULL if absent */
    const char *domain;    /* never NULL; lower-cased, no trailing dot */
    const char *resource;  /* NULL if absent */
    const char *bare;      /* "node@domain" or "domain" */
    const char *full;      /* bare plus "/resource" when present */
} sw_jid_t;

/*
 * Parses and prepares s into out (strings allocated in pool).  Returns
 * SW_OK, or SW_ERROR for an invalid JID (empty part, part over 1023
 * bytes, prohibited character, bad domain label) — RFC 7622 §3.
 */
int sw_jid_parse(sw_pool_t *pool, const char *s, sw_jid_t *out);
/* Like sw_jid_parse but returns a new sw_jid_t in pool, or NULL. */
sw_jid_t *sw_jid_new(sw_pool_t *pool, const char *s);
/* Builds from already-separated parts (node, resource may be NULL). */
sw_jid_t *sw_jid_make(sw_pool_t *pool, const char *node, const char *domain,
                      const char *resource);
/* Copies a JID into another pool. */
sw_jid_t *sw_jid_copy(sw_pool_t *pool, const sw_jid_t *j);
bool sw_jid_eq_full(const sw_jid_t *a, const sw_jid_t *b);
bool sw_jid_eq_bare(const sw_jid_t *a, const sw_jid_t *b);

/* Preparation of a single part; returns a prepared copy in pool or NULL. */
const char *sw_jid_nodeprep(sw_pool_t *pool, const char *s);
const char *sw_jid_nameprep(sw_pool_t *pool, const char *s);
const char *sw_jid_resourceprep(sw_pool_t *pool, const char *s);

#endif
