/*
 * Parsing the peer link's control elements (sw_link_wire.h).  Pure: no
 * link state, no logging; sw_link.c decides what a malformed element
 * costs (a protocol error that closes the connection).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/sw_link.h>

#include "sw_link_wire.h"

/*
 * A sequence number attribute: SW_OK with *out set, SW_DECLINED when
 * absent, SW_ERROR when not plain decimal digits within
 * SW_LINK_WIRE_SEQ_MAX (strtoull alone would take "-1" for 2^64 - 1, and
 * skip leading blanks).
 */
static int
sw_link_wire_number(const sw_xml_t *el, const char *name, uint64_t *out)
{
    const char          *s = sw_xml_attr(el, name);
    char                *end;
    unsigned long long   v;

    if (s == NULL) {
        return SW_DECLINED;
    }
    if (*s < '0' || *s > '9') {
        return SW_ERROR;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > SW_LINK_WIRE_SEQ_MAX) {
        return SW_ERROR;
    }
    *out = v;
    return SW_OK;
}

int
sw_link_wire_parse(const sw_xml_t *el, sw_link_wire_t *out)
{
    sw_link_wire_t  w;
    int             rc;

    if (el->ns == NULL || strcmp(el->ns, SW_NS_LINK) != 0) {
        return SW_DECLINED;
    }
    memset(&w, 0, sizeof(w));

    if (strcmp(el->name, "a") == 0) {
        w.kind = SW_LINK_WIRE_ACK;
        if (sw_link_wire_number(el, "h", &w.ack) != SW_OK) {
            return SW_ERROR;
        }
        w.has_ack = true;
        rc = sw_link_wire_number(el, "d", &w.delay);
        if (rc == SW_ERROR || w.delay > SW_LINK_WIRE_DELAY_MAX) {
            return SW_ERROR;
        }
        *out = w;
        return SW_OK;
    }
    if (strcmp(el->name, "link") != 0) {
        return SW_DECLINED;
    }

    /* Numbering starts at 1: seq 0 would make "delivered up to seq - 1"
     * wrap around. */
    if (sw_link_wire_number(el, "seq", &w.seq) != SW_OK || w.seq == 0) {
        return SW_ERROR;
    }
    rc = sw_link_wire_number(el, "next", &w.next);
    if (rc == SW_ERROR) {
        return SW_ERROR;
    }
    w.has_next = rc == SW_OK;
    rc = sw_link_wire_number(el, "ack", &w.ack);
    if (rc == SW_ERROR) {
        return SW_ERROR;
    }
    w.has_ack = rc == SW_OK;
    w.kind = w.has_ack ? SW_LINK_WIRE_HELLO : SW_LINK_WIRE_RENUMBER;
    *out = w;
    return SW_OK;
}
