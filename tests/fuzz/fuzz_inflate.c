/*
 * Fuzz target: the DEFLATE layer's inflate side (core/sw_deflate.c) with
 * the peer link's default preset dictionary (core/sw_link_dict.c), as a
 * peer link receives compressed bytes; built with FUZZ_ZSTD (fuzz_zstd),
 * the zstd layer's decompressing side (core/sw_zstd.c) with the trained
 * dictionary (core/sw_link_zdict.c) instead.
 *
 * The layer runs on a real connection (one end of a socketpair: nothing
 * is read from it, the input goes to the layer's on_read directly), three
 * times per input: all at once; in three chunks; and in three chunks with
 * reading paused after every piece of output and resumed afterwards, so
 * that input kept while paused is worked through too.  All three must
 * hand up the same bytes and agree on whether the stream was broken.
 * Output is counted and hashed, not kept: memory stays bounded whatever
 * the input inflates to.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

#include "sw_conn_int.h"
#include "sw_link_int.h"
#include "fuzz.h"

#ifdef FUZZ_ZSTD
#define FUZZ_LAYER      SW_LAYER_ZSTD
#define FUZZ_START(c)   sw_conn_start_zstd(c, 19, sw_link_zdict, \
                                           sw_link_zdict_len)
#else
#define FUZZ_LAYER      SW_LAYER_DEFLATE
#define FUZZ_START(c)   sw_conn_start_deflate(c, 9, sw_link_default_dict, \
                                              sw_link_default_dict_len)
#endif

typedef struct {
    uint64_t  out_len;
    uint64_t  out_hash;
    bool      pause;        /* pause after each delivery */
    bool      closed;
    bool      failed;       /* closed with an error */
} fuzz_run_t;

static void
fuzz_on_data(sw_conn_t *c, const char *data, size_t len, void *ud)
{
    fuzz_run_t *r = ud;
    size_t      i;

    for (i = 0; i < len; i++) {
        r->out_hash = (r->out_hash ^ (uint8_t) data[i]) * 1099511628211ULL;
    }
    r->out_len += len;
    if (r->pause) {
        sw_conn_pause_read(c, true);
    }
}

static void
fuzz_on_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
    fuzz_run_t *r = ud;

    r->closed = true;
    r->failed = error != 0;
}

static const sw_conn_cb_t fuzz_cb = {
    fuzz_on_data, NULL, NULL, fuzz_on_closed
};

/*
 * Lets the loop turn until nothing more comes out: past 256 kB a read
 * yields (sw_conn_yield) and goes on at the next turn, as in the server.
 */
static void
fuzz_turns(sw_conn_t *c, fuzz_run_t *r)
{
    uint64_t before;
    int      n;

    /* a turn may close it (a data error): c is gone once r->closed */
    for (n = 0; n < 100000 && !r->closed && sw_conn_writable(c); n++) {
        before = r->out_len;
        uv_run(sw_loop(), UV_RUN_NOWAIT);
        if (r->out_len == before) {
            break;
        }
    }
}

static void
fuzz_run(const uint8_t *data, size_t size, const size_t cut[2],
         fuzz_run_t *r)
{
    uv_tcp_t    *tcp;
    sw_conn_t   *c;
    sw_layer_t  *l;
    size_t       start = 0, end, i;
    int          sv[2];

    r->out_hash = 14695981039346656037ULL;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        abort();
    }
    tcp = sw_alloc(sizeof(*tcp));
    if (uv_tcp_init(sw_loop(), tcp) != 0 || uv_tcp_open(tcp, sv[0]) != 0) {
        abort();
    }
    c = sw_conn_new(tcp, &fuzz_cb, r);
    if (FUZZ_START(c) != SW_OK) {
        abort();
    }
    l = sw_conn_find_layer(c, FUZZ_LAYER);
    /* a connection that failed reads nothing more (sw_conn_fail stopped
     * reading from the socket) */
    for (i = 0; i < 3 && !r->closed && sw_conn_writable(c); i++) {
        end = i < 2 ? cut[i] : size;
        if (end > start) {
            l->on_read(l, (const char *) data + start, end - start);
        }
        start = end;
        fuzz_turns(c, r);
        /* resume until everything kept has gone up (or the stream broke) */
        while (r->pause && !r->closed && sw_conn_writable(c)
               && !sw_conn_reading(c))
        {
            uint64_t before = r->out_len;

            sw_conn_pause_read(c, false);
            fuzz_turns(c, r);
            if (r->out_len == before) {
                break;      /* nothing more came out */
            }
        }
    }
    if (!r->closed) {
        sw_conn_close(c, false);    /* idempotent */
    }
    uv_run(sw_loop(), UV_RUN_DEFAULT);
    if (!r->closed) {
        abort();        /* the closed callback always comes */
    }
    close(sv[1]);
}

/* Chunking or pausing must not change what comes out. */
static void
fuzz_compare(const fuzz_run_t *whole, const fuzz_run_t *r, const char *how,
             const size_t cut[2])
{
    if (r->out_len == whole->out_len && r->out_hash == whole->out_hash
        && r->failed == whole->failed)
    {
        return;
    }
#ifdef FUZZ_ZSTD
    /*
     * zstd streams a raw block out as its bytes come, and reports no
     * output from a call that fails, so how much of a broken stream goes
     * up before the error may depend on the reads (the layer decodes a
     * block per call, which narrows it).  The verdict may not differ, nor
     * anything of an unbroken stream.
     */
    if (r->failed && whole->failed) {
        return;
    }
#endif
    fprintf(stderr, "inflate at once: %llu bytes out%s; %s (cut at %zu, "
            "%zu): %llu bytes out%s\n",
            (unsigned long long) whole->out_len,
            whole->failed ? ", failed" : "", how, cut[0], cut[1],
            (unsigned long long) r->out_len, r->failed ? ", failed" : "");
    abort();
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
    fuzz_run_t  whole, split, paused;
    size_t      none[2] = { size, size }, cut[2];

    memset(&whole, 0, sizeof(whole));
    memset(&split, 0, sizeof(split));
    memset(&paused, 0, sizeof(paused));
    paused.pause = true;
    sw_fuzz_cuts(data, size, 0, cut);

    fuzz_run(data, size, none, &whole);
    fuzz_run(data, size, cut, &split);
    fuzz_run(data, size, cut, &paused);

    fuzz_compare(&whole, &split, "in three chunks", cut);
    fuzz_compare(&whole, &paused, "in three chunks, pausing", cut);
    return 0;
}
