/*
 * Fuzz target: JID parsing and preparation (core/sw_jid.c, RFC 7622).
 *
 * The input, up to its first NUL byte (a JID comes from an XML attribute
 * or a config string, neither of which can hold one), is parsed as a
 * whole JID and prepared as each kind of part.  Checked besides memory
 * safety: parts are 1..1023 bytes; bare and full are built from the
 * parts; and preparation is idempotent, so that a prepared JID compares
 * equal to itself prepared again (RFC 7622 §3.1: comparisons are of
 * prepared parts; a JID that changes on a second pass would route and
 * compare differently at the next server).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#include "fuzz.h"

static void
fuzz_fail(const char *what, const char *in, const char *out)
{
    fprintf(stderr, "%s: '%s' -> '%s'\n", what, in, out ? out : "(null)");
    abort();
}

static void
fuzz_part_len(const char *part, const char *in)
{
    size_t n;

    if (part == NULL) {
        return;
    }
    n = strlen(part);
    if (n == 0 || n > 1023) {
        fuzz_fail("part of bad length", in, part);
    }
}

static void
fuzz_check_jid(sw_pool_t *pool, const sw_jid_t *j, const char *in)
{
    const char *bare, *full;
    sw_jid_t   *again;

    if (j->domain == NULL) {
        fuzz_fail("no domain", in, NULL);
    }
    fuzz_part_len(j->node, in);
    fuzz_part_len(j->domain, in);
    fuzz_part_len(j->resource, in);
    bare = j->node ? sw_pool_printf(pool, "%s@%s", j->node, j->domain)
                   : j->domain;
    full = j->resource ? sw_pool_printf(pool, "%s/%s", bare, j->resource)
                       : bare;
    if (strcmp(bare, j->bare) != 0 || strcmp(full, j->full) != 0) {
        fuzz_fail("bare or full not built from the parts", in, j->full);
    }

    again = sw_jid_new(pool, j->full);
    if (again == NULL || strcmp(again->full, j->full) != 0) {
        fuzz_fail("a prepared JID does not prepare to itself", j->full,
                  again ? again->full : NULL);
    }
    again = sw_jid_make(pool, j->node, j->domain, j->resource);
    if (again == NULL || !sw_jid_eq_full(again, j)) {
        fuzz_fail("sw_jid_make of the parts differs", j->full,
                  again ? again->full : NULL);
    }
    again = sw_jid_copy(pool, j);
    if (!sw_jid_eq_full(again, j) || !sw_jid_eq_bare(again, j)) {
        fuzz_fail("sw_jid_copy differs", j->full, again->full);
    }
}

/* prep(prep(s)) == prep(s) */
static void
fuzz_check_prep(sw_pool_t *pool, const char *(*prep)(sw_pool_t *,
                                                      const char *),
                const char *name, const char *in)
{
    const char *once = prep(pool, in), *twice;

    if (once == NULL) {
        return;
    }
    fuzz_part_len(once, in);
    twice = prep(pool, once);
    if (twice == NULL || strcmp(once, twice) != 0) {
        fprintf(stderr, "%s is not idempotent\n", name);
        fuzz_fail(name, once, twice);
    }
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
    sw_pool_t  *pool = sw_pool_new(0);
    char       *s = sw_pool_strndup(pool, (const char *) data, size);
    sw_jid_t   *j;

    j = sw_jid_new(pool, s);
    if (j != NULL) {
        fuzz_check_jid(pool, j, s);
    }
    fuzz_check_prep(pool, sw_jid_nodeprep, "nodeprep", s);
    fuzz_check_prep(pool, sw_jid_nameprep, "nameprep", s);
    fuzz_check_prep(pool, sw_jid_resourceprep, "resourceprep", s);
    sw_pool_free(pool);
    return 0;
}
