/*
 * The zstd layer: one long-lived zstd frame each way, for peer links
 * whose ends both choose it (peer_codec = "zstd").  Like the DEFLATE
 * layer, writes are compressed without flushing and a batch of stanzas
 * shares one flush (ZSTD_e_flush ends a block; the frame and its window
 * go on), so a stanza like the ones before it costs a few bytes.
 *
 * Memory is bounded both ways: our window, hash and chain tables are
 * 2^17 whatever the level (level 19's own tables would take some 80 MB a
 * connection), and a peer's frame asking for a window above 2^20 is
 * refused.  The dictionary's ID is in each frame header: a peer with
 * another dictionary, or none, or one compressing with DEFLATE, is told
 * apart and named in the log instead of failing on garbage.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include <skywave/sw_buf.h>
#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>

#include "sw_conn_int.h"

#define SW_ZSTD_CHUNK       16384
#define SW_ZSTD_TURN        (256 * 1024)    /* as SW_DEFLATE_TURN */
#define SW_ZSTD_LOG         17              /* our window and tables */
#define SW_ZSTD_PEER_LOG    20              /* the most a peer may ask */

typedef struct sw_zstd_s {
    sw_layer_t   layer;
    ZSTD_CCtx   *cc;
    ZSTD_DCtx   *dc;
    unsigned     dict_id;       /* 0: none */
    bool         header_seen;   /* the peer's frame header was checked */
    size_t       hint;          /* input that completes the next block
                                   (zstd's own hint; 1 at a frame start) */
    sw_buf_t     in;            /* compressed input kept while paused */
    sw_buf_t     out;           /* output before the flush (bounded) */
    unsigned     dirty:1;
} sw_zstd_t;

static int
sw_zstd_run(sw_zstd_t *z, const char *data, size_t len,
            ZSTD_EndDirective mode)
{
    unsigned char   buf[SW_ZSTD_CHUNK];
    ZSTD_inBuffer   in = { data, len, 0 };
    ZSTD_outBuffer  out;
    size_t          rc, have;

    do {
        out.dst = buf;
        out.size = sizeof(buf);
        out.pos = 0;
        rc = ZSTD_compressStream2(z->cc, &out, &in, mode);
        if (ZSTD_isError(rc)) {
            sw_conn_fail(z->layer.conn, UV_EPROTO, "zstd error: %s",
                         ZSTD_getErrorName(rc));
            return SW_ERROR;
        }
        if (out.pos > 0) {
            sw_buf_append(&z->out, buf, out.pos);
        }
        /* continue: until the input is taken; flush: until rc is 0 */
    } while (mode == ZSTD_e_continue ? in.pos < in.size : rc != 0);

    if (z->out.len == 0
        || (mode == ZSTD_e_continue && z->out.len < SW_ZSTD_CHUNK))
    {
        return SW_OK;       /* held for the flush: one segment */
    }
    have = z->out.len;
    z->out.len = 0;
    return sw_conn_layer_down(&z->layer, z->out.data, have);
}

static int
sw_zstd_write(sw_layer_t *l, const char *data, size_t len)
{
    sw_zstd_t *z = (sw_zstd_t *) l;

    if (len == 0) {
        return SW_OK;
    }
    z->dirty = 1;
    return sw_zstd_run(z, data, len, ZSTD_e_continue);
}

static int
sw_zstd_flush(sw_layer_t *l)
{
    sw_zstd_t *z = (sw_zstd_t *) l;

    if (z->dirty) {
        if (sw_zstd_run(z, NULL, 0, ZSTD_e_flush) != SW_OK) {
            return SW_ERROR;
        }
        z->dirty = 0;
    }
    if (l->below != NULL && l->below->flush != NULL) {
        return l->below->flush(l->below);
    }
    return SW_OK;
}

/*
 * The first bytes from the peer: a zstd frame header naming our
 * dictionary (RFC 8878 §3.1.1.1: the magic number, the frame header
 * descriptor, the window descriptor unless Single_Segment_flag, then a
 * Dictionary_ID of 0, 1, 2 or 4 bytes, little-endian).  SW_AGAIN while
 * too few bytes have come to tell.
 */
static int
sw_zstd_check_header(sw_zstd_t *z, const char *src, size_t len)
{
    static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
    static const size_t        did_size[4] = { 0, 1, 2, 4 };
    const unsigned char       *p = (const unsigned char *) src;
    sw_conn_t                 *c = z->layer.conn;
    size_t                     need, did, i;
    unsigned                   id = 0;

    if (len > 0 && p[0] == 0x78) {
        sw_conn_fail(c, UV_EPROTO, "zstd: the peer compresses with DEFLATE "
                     "(both ends need the same peer_codec)");
        return SW_ERROR;
    }
    for (i = 0; i < 4 && i < len; i++) {
        if (p[i] != magic[i]) {
            sw_conn_fail(c, UV_EPROTO, "zstd: the peer's stream is not "
                         "zstd (both ends need the same peer_codec and "
                         "peer_compression)");
            return SW_ERROR;
        }
    }
    if (len < 5) {
        return SW_AGAIN;
    }
    did = did_size[p[4] & 3];
    need = 5 + ((p[4] & 0x20) ? 0 : 1) + did;
    if (len < need) {
        return SW_AGAIN;
    }
    for (i = 0; i < did; i++) {
        id |= (unsigned) p[need - did + i] << (8 * i);
    }
    if (id != z->dict_id) {
        sw_conn_fail(c, UV_EPROTO, "zstd dictionary mismatch: the peer "
                     "uses ID 0x%08x, ours is 0x%08x (peer_dictionary "
                     "must be the same at both ends)", id, z->dict_id);
        return SW_ERROR;
    }
    z->header_seen = true;
    return SW_OK;
}

static int
sw_zstd_decompress(sw_zstd_t *z, ZSTD_inBuffer *in)
{
    sw_conn_t      *c = z->layer.conn;
    unsigned char   buf[SW_ZSTD_CHUNK];
    ZSTD_outBuffer  out;
    ZSTD_inBuffer   part;
    size_t          rc, turn = 0;

    while (sw_conn_reading(c)) {
        if (turn >= SW_ZSTD_TURN) {
            sw_conn_yield(c);       /* the rest waits for the next turn */
            break;
        }
        /*
         * At most what completes the block under way: zstd does not
         * report output made in a call that then fails, so a call that
         * decoded several blocks and broke on the last would deliver
         * nothing, and what a broken stream delivers would depend on how
         * TCP cut it into reads (found by tests/fuzz/fuzz_zstd).  Block
         * by block, what came before the bad block always goes up.
         */
        out.dst = buf;
        out.size = sizeof(buf);
        out.pos = 0;
        part.src = (const char *) in->src + in->pos;
        part.size = in->size - in->pos;
        part.pos = 0;
        if (part.size > z->hint) {
            part.size = z->hint;
        }
        rc = ZSTD_decompressStream(z->dc, &out, &part);
        in->pos += part.pos;
        if (!ZSTD_isError(rc)) {
            z->hint = rc;
        }
        turn += out.pos;
        if (out.pos > 0) {
            sw_conn_layer_up(&z->layer, (const char *) buf, out.pos);
        }
        if (ZSTD_isError(rc)) {
            sw_conn_fail(c, UV_EPROTO, "zstd data error from peer: %s",
                         ZSTD_getErrorName(rc));
            return SW_ERROR;
        }
        if (rc == 0) {
            /* the peer ended its frame; a new one checks its header */
            z->header_seen = false;
            z->hint = 1;        /* a new frame: its header first */
            break;
        }
        if (in->pos == in->size && out.pos < out.size) {
            break;      /* all input used and all output handed up */
        }
    }
    return SW_OK;
}

static int
sw_zstd_on_read(sw_layer_t *l, const char *data, size_t len)
{
    sw_zstd_t     *z = (sw_zstd_t *) l;
    const char    *src;
    size_t         src_len, used = 0;
    ZSTD_inBuffer  in;
    int            rc = SW_OK;

    if (data != NULL && len > 0 && z->in.len > 0) {
        sw_buf_append(&z->in, data, len);
    }
    if (z->in.len > 0) {
        src = z->in.data;
        src_len = z->in.len;
    } else {
        src = data;
        src_len = data != NULL ? len : 0;
    }

    while (rc == SW_OK && used < src_len && sw_conn_reading(l->conn)) {
        if (!z->header_seen) {
            rc = sw_zstd_check_header(z, src + used, src_len - used);
            if (rc == SW_AGAIN) {
                rc = SW_OK;
                break;          /* keep it for more bytes */
            }
            if (rc != SW_OK) {
                break;
            }
        }
        in.src = src + used;
        in.size = src_len - used;
        in.pos = 0;
        rc = sw_zstd_decompress(z, &in);
        used += in.pos;
        if (in.pos == 0) {
            break;
        }
    }

    /*
     * Output the decoder still holds (reading paused, or yielded, right
     * after a call that filled our buffer) goes up now, not when the
     * peer's next bytes come (found by tests/fuzz/fuzz_zstd).
     */
    if (rc == SW_OK && used == src_len && z->header_seen
        && sw_conn_reading(l->conn))
    {
        in.src = "";                /* no input, not NULL (UBSan) */
        in.size = 0;
        in.pos = 0;
        rc = sw_zstd_decompress(z, &in);
    }

    /* Keep what was not decompressed (paused, or a header cut short). */
    if (src == z->in.data && z->in.len > 0) {
        sw_buf_consume(&z->in, used);
    } else if (used < src_len) {
        sw_buf_append(&z->in, src + used, src_len - used);
    }
    if (z->in.len == 0) {
        sw_buf_free(&z->in);
    }
    return rc;
}

static void
sw_zstd_free(sw_layer_t *l)
{
    sw_zstd_t *z = (sw_zstd_t *) l;

    ZSTD_freeCCtx(z->cc);
    ZSTD_freeDCtx(z->dc);
    sw_buf_free(&z->in);
    sw_buf_free(&z->out);
    free(z);
}

int
sw_conn_start_zstd(sw_conn_t *c, int level, const void *dict,
                   size_t dict_len)
{
    sw_zstd_t *z;
    size_t     rc = 0;

    if (sw_conn_find_layer(c, SW_LAYER_ZSTD) != NULL
        || sw_conn_find_layer(c, SW_LAYER_DEFLATE) != NULL)
    {
        sw_log_error("conn %s: compression already started",
                     sw_conn_peer(c));
        return SW_ERROR;
    }
    if (!sw_conn_writable(c)) {
        return SW_ERROR;
    }
    z = sw_calloc(1, sizeof(*z));
    z->layer.kind = SW_LAYER_ZSTD;
    z->layer.write = sw_zstd_write;
    z->layer.on_read = sw_zstd_on_read;
    z->layer.flush = sw_zstd_flush;
    z->layer.free = sw_zstd_free;
    sw_buf_init(&z->in);
    sw_buf_init(&z->out);
    z->cc = ZSTD_createCCtx();
    z->dc = ZSTD_createDCtx();
    if (z->cc == NULL || z->dc == NULL) {
        sw_log_error("conn %s: zstd: out of memory", sw_conn_peer(c));
        sw_zstd_free(&z->layer);
        return SW_ERROR;
    }
    if (ZSTD_isError(rc = ZSTD_CCtx_setParameter(z->cc,
                                                 ZSTD_c_compressionLevel,
                                                 level))
        || ZSTD_isError(rc = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_windowLog,
                                                    SW_ZSTD_LOG))
        || ZSTD_isError(rc = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_hashLog,
                                                    SW_ZSTD_LOG))
        || ZSTD_isError(rc = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_chainLog,
                                                    SW_ZSTD_LOG))
        || ZSTD_isError(rc = ZSTD_CCtx_setParameter(z->cc,
                                                    ZSTD_c_checksumFlag, 0))
        || ZSTD_isError(rc = ZSTD_DCtx_setParameter(z->dc,
                                                    ZSTD_d_windowLogMax,
                                                    SW_ZSTD_PEER_LOG))
        || (dict != NULL
            && (ZSTD_isError(rc = ZSTD_CCtx_loadDictionary(z->cc, dict,
                                                           dict_len))
                || ZSTD_isError(rc = ZSTD_DCtx_loadDictionary(z->dc, dict,
                                                              dict_len)))))
    {
        sw_log_error("conn %s: zstd level %d: %s", sw_conn_peer(c), level,
                     ZSTD_getErrorName(rc));
        sw_zstd_free(&z->layer);
        return SW_ERROR;
    }
    z->dict_id = dict != NULL ? ZSTD_getDictID_fromDict(dict, dict_len) : 0;
    z->hint = 1;
    sw_conn_push_layer(c, &z->layer);
    return SW_OK;
}
