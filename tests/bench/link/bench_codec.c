/*
 * Bytes on the link per codec, offline: the peer link's two codecs as
 * the link runs them (a long-lived stream, one flush per batch; here a
 * batch is one stanza, as chat paced by people typing is), over the
 * stanzas on standard input, one per line.  bench_codec.sh builds it and
 * feeds it the link benchmark's conversation.
 *
 * DEFLATE: zlib level 9, Z_PARTIAL_FLUSH, the default preset dictionary
 * (core/sw_link_dict.c).  zstd: ZSTD_e_flush, window and tables 2^17 as
 * core/sw_zstd.c sets them, with and without the trained dictionary
 * (core/sw_link_zdict.c), at levels 3, 9 and 19.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

extern const unsigned char sw_link_zdict[];
extern const size_t        sw_link_zdict_len;
extern const char          sw_link_default_dict[];
extern const size_t        sw_link_default_dict_len;

static char  **lines;
static size_t  n;

static size_t batch = 1;     /* stanzas per flush */

static size_t
deflate_bytes(int level, int dict)
{
    unsigned char out[65536];
    z_stream      z;
    size_t        i, total = 0;

    memset(&z, 0, sizeof(z));
    deflateInit2(&z, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY);
    if (dict) {
        deflateSetDictionary(&z, (const Bytef *) sw_link_default_dict,
                             (uInt) sw_link_default_dict_len);
    }
    for (i = 0; i < n; i++) {
        z.next_in = (Bytef *) lines[i];
        z.avail_in = (uInt) strlen(lines[i]);
        z.next_out = out;
        z.avail_out = sizeof(out);
        deflate(&z, (i + 1) % batch == 0 || i + 1 == n ? Z_PARTIAL_FLUSH
                                                       : Z_NO_FLUSH);
        total += sizeof(out) - z.avail_out;
    }
    deflateEnd(&z);
    return total;
}

static size_t
zstd_bytes(int level, int dict)
{
    unsigned char   out[65536];
    ZSTD_CCtx      *c = ZSTD_createCCtx();
    size_t          i, r, total = 0;

    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 17);
    ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, 17);
    ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, 17);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    if (dict) {
        ZSTD_CCtx_loadDictionary(c, sw_link_zdict, sw_link_zdict_len);
    }
    for (i = 0; i < n; i++) {
        ZSTD_inBuffer  in = { lines[i], strlen(lines[i]), 0 };
        ZSTD_outBuffer o = { out, sizeof(out), 0 };

        ZSTD_EndDirective mode = (i + 1) % batch == 0 || i + 1 == n
                                 ? ZSTD_e_flush : ZSTD_e_continue;

        do {
            r = ZSTD_compressStream2(c, &o, &in, mode);
        } while (mode == ZSTD_e_flush ? r != 0 && !ZSTD_isError(r)
                                      : in.pos < in.size);
        total += o.pos;
    }
    ZSTD_freeCCtx(c);
    return total;
}

int
main(void)
{
    static const int levels[] = { 3, 9, 19 };
    char            *line = NULL;
    size_t           cap = 0, raw = 0, i, base;
    ssize_t          len;

    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') {
            line[--len] = '\0';
        }
        if (len == 0) {
            continue;
        }
        lines = realloc(lines, (n + 1) * sizeof(*lines));
        lines[n++] = strdup(line);
        raw += (size_t) len;
    }
    free(line);
    if (n == 0) {
        fprintf(stderr, "bench_codec: no stanzas on standard input\n");
        return 1;
    }
    for (batch = 1; batch <= 10; batch += 9) {
        base = deflate_bytes(9, 1);
        printf("%zu stanzas, %zu bytes of XML, a flush after %s\n\n", n,
               raw, batch == 1 ? "each" : "every 10");
        printf("%-28s | %8s | %8s | %s\n", "codec", "bytes", "B/stanza",
               "vs DEFLATE");
        printf("-----------------------------+----------+----------+------"
               "-----\n");
        printf("%-28s | %8zu | %8.1f | %+.1f %%\n", "deflate 9, dictionary",
               base, (double) base / n, 0.0);
        printf("%-28s | %8zu | %8.1f | %+.1f %%\n", "deflate 9, none",
               deflate_bytes(9, 0), (double) deflate_bytes(9, 0) / n,
               100.0 * ((double) deflate_bytes(9, 0) / base - 1));
        for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
            size_t d = zstd_bytes(levels[i], 1);
            size_t nd = zstd_bytes(levels[i], 0);
            char   name[64];

            snprintf(name, sizeof(name), "zstd %d, trained dictionary",
                     levels[i]);
            printf("%-28s | %8zu | %8.1f | %+.1f %%\n", name, d,
                   (double) d / n, 100.0 * ((double) d / base - 1));
            snprintf(name, sizeof(name), "zstd %d, none", levels[i]);
            printf("%-28s | %8zu | %8.1f | %+.1f %%\n", name, nd,
                   (double) nd / n, 100.0 * ((double) nd / base - 1));
        }
        printf("\n");
    }
    return 0;
}
