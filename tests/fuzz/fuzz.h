/*
 * Shared by the libFuzzer targets (doc/testing.md): quiet logging and
 * input-dependent split points.  Header only; each target is one .c file.
 */
#ifndef SW_FUZZ_H
#define SW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <skywave/sw_log.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void
sw_fuzz_log_sink(sw_log_level_e level, const char *line, void *ud)
{
    /* a log line per rejected input would drown libFuzzer's output */
}

/* Log lines are formatted (so that their code runs) but not written. */
static SW_UNUSED void
sw_fuzz_quiet(void)
{
    sw_log_set_level(SW_LOG_DEBUG);
    sw_log_set_sink(sw_fuzz_log_sink, NULL);
}

/* FNV-1a: a stable function of the input that picks split points. */
static SW_UNUSED uint64_t
sw_fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037ULL;
    size_t   i;

    for (i = 0; i < size; i++) {
        h = (h ^ data[i]) * 1099511628211ULL;
    }
    return h;
}

/*
 * Splits size bytes into three chunks at points that depend on the input
 * (and on salt, so that two passes over one input split differently):
 * cut[0] <= cut[1] <= size; chunks are [0, cut[0]), [cut[0], cut[1]),
 * [cut[1], size).  Any chunk may be empty.
 */
static SW_UNUSED void
sw_fuzz_cuts(const uint8_t *data, size_t size, uint64_t salt, size_t cut[2])
{
    uint64_t h = sw_fuzz_hash(data, size) ^ salt;
    size_t   a, b;

    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
    a = (size_t) (h % (size + 1));
    b = (size_t) ((h >> 32) % (size + 1));
    cut[0] = a < b ? a : b;
    cut[1] = a < b ? b : a;
}

#endif
