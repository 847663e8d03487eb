/*
 * The peer link's control elements, parsed apart from any link state
 * (doc/peer-links.md "On the wire"), so that the parser can be fuzzed on
 * its own (tests/fuzz/fuzz_link_wire.c).  Private to the core: not
 * installed.
 *
 *   <link xmlns='urn:skywave:link:0' seq='S' next='N' ack='A'/>
 *       a connection's hello ("my first stanza here is S, my next new one
 *       N, I have delivered yours up to A"); next is optional;
 *   <link xmlns='urn:skywave:link:0' seq='S'/>
 *       without ack: a renumbering after a gap (next, if any, is ignored);
 *   <a xmlns='urn:skywave:link:0' h='H' d='D'/>
 *       an acknowledgement; d (optional) says it was held D ms after
 *       stanza H arrived, waiting for traffic to ride on.
 */
#ifndef SW_LINK_WIRE_H
#define SW_LINK_WIRE_H

#include <skywave/sw_core.h>
#include <skywave/sw_xml.h>

/* The largest number a peer may send: the same bound as SW_LINK_SEQ_MAX
 * in sw_link.c (checked there), far above any clock-based base, far
 * below overflow. */
#define SW_LINK_WIRE_SEQ_MAX  (1ULL << 62)
/* The longest hold an ack may report (d=''), in ms. */
#define SW_LINK_WIRE_DELAY_MAX  3600000

typedef enum sw_link_wire_kind_e {
    SW_LINK_WIRE_HELLO = 1,     /* <link seq ack [next]/> */
    SW_LINK_WIRE_RENUMBER,      /* <link seq/> without ack */
    SW_LINK_WIRE_ACK,           /* <a h/> */
} sw_link_wire_kind_e;

typedef struct sw_link_wire_s {
    sw_link_wire_kind_e  kind;
    uint64_t             seq;       /* HELLO, RENUMBER: >= 1 */
    uint64_t             next;      /* HELLO with has_next */
    uint64_t             ack;       /* HELLO: ack; ACK: h */
    bool                 has_next;  /* next='' was there (and valid) */
    bool                 has_ack;   /* ack='' or h='' was there */
    uint64_t             delay;     /* ACK: d, ms (0 when absent) */
} sw_link_wire_t;

/*
 * Parses el (borrowed) into *out.  Returns SW_OK; SW_DECLINED for an
 * element that is not a link control element (another namespace, or
 * another name in SW_NS_LINK: ignored, for later versions); SW_ERROR for
 * a malformed one: a number that is not plain decimal digits within
 * SW_LINK_WIRE_SEQ_MAX ("-1", "+5", " 7", "", 2^64 - 1 are all refused),
 * a missing or zero seq, a missing h, a d beyond SW_LINK_WIRE_DELAY_MAX.
 * *out is set only on SW_OK.
 */
int sw_link_wire_parse(const sw_xml_t *el, sw_link_wire_t *out);

#endif
