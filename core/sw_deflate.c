/*
 * The DEFLATE layer: one long-lived zlib stream (RFC 1950 around RFC 1951)
 * each way, as XEP-0138 "zlib" and the peer links use it.  Writes are
 * compressed without flushing so a batch of stanzas shares one sync flush
 * (sw_conn_flush); a long window lets repeated stanzas cost a few bytes.
 *
 * A preset dictionary primes both windows.  The zlib header names the
 * sender's dictionary by its Adler-32 (RFC 1950 §2.2, FDICT/DICTID), so a
 * receiver configured with another dictionary can say so plainly instead
 * of failing on garbage.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <skywave/sw_buf.h>
#include <skywave/sw_conn.h>
#include <skywave/sw_log.h>

#include "sw_conn_int.h"

#define SW_DEFLATE_CHUNK  16384
/* Inflated bytes handed up per read before yielding to the loop: 1 kB
 * of input can inflate to 1 MB, so input alone bounds nothing. */
#define SW_DEFLATE_TURN   (256 * 1024)

typedef struct sw_deflate_s {
    sw_layer_t   layer;
    z_stream     zout;
    z_stream     zin;
    char        *dict;          /* ours, kept for Z_NEED_DICT */
    size_t       dict_len;
    uLong        dict_id;       /* Adler-32 of dict */
    sw_buf_t     in;            /* compressed input kept while paused */
    sw_buf_t     out;           /* output before the flush (bounded) */
    unsigned     dirty:1;       /* written since the last sync flush */
} sw_deflate_t;

/*
 * Runs deflate and hands its output down.  Output made without a flush
 * (the zlib header of a new stream, full blocks) waits for the flush, up
 * to a chunk: with TCP_NODELAY every write below is a segment, and the
 * 6 header bytes alone before the first batch cost a packet's headers
 * (and on a half-duplex radio, a turn).
 */
static int
sw_deflate_run(sw_deflate_t *d, int flush)
{
    unsigned char  out[SW_DEFLATE_CHUNK];
    size_t         have;
    int            rc;

    do {
        d->zout.next_out = out;
        d->zout.avail_out = sizeof(out);
        rc = deflate(&d->zout, flush);
        if (rc == Z_STREAM_ERROR) {
            sw_conn_fail(d->layer.conn, UV_EPROTO, "DEFLATE error: %s",
                         d->zout.msg ? d->zout.msg : "stream error");
            return SW_ERROR;
        }
        have = sizeof(out) - d->zout.avail_out;
        if (have > 0) {
            sw_buf_append(&d->out, out, have);
        }
    } while (d->zout.avail_out == 0);

    if (d->out.len == 0
        || (flush == Z_NO_FLUSH && d->out.len < SW_DEFLATE_CHUNK))
    {
        return SW_OK;
    }
    have = d->out.len;
    d->out.len = 0;
    return sw_conn_layer_down(&d->layer, d->out.data, have);
}

static int
sw_deflate_write(sw_layer_t *l, const char *data, size_t len)
{
    sw_deflate_t  *d = (sw_deflate_t *) l;
    int            rc;

    if (len == 0) {
        return SW_OK;
    }
    d->zout.next_in = (Bytef *) data;
    d->zout.avail_in = (uInt) len;
    rc = sw_deflate_run(d, Z_NO_FLUSH);
    d->zout.next_in = NULL;
    d->zout.avail_in = 0;
    d->dirty = 1;
    return rc;
}

static int
sw_deflate_flush(sw_layer_t *l)
{
    sw_deflate_t  *d = (sw_deflate_t *) l;

    /*
     * The cheapest flush after which the receiver can decode everything
     * sent: Z_PARTIAL_FLUSH ends the block with an empty fixed-code block
     * (10 bits, RFC 1951 §3.2.6) instead of Z_SYNC_FLUSH's empty stored
     * block (byte alignment plus 4 bytes).  20 short messages flushed one
     * by one: 298 bytes instead of 368.  Skipped when nothing was written.
     */
    if (d->dirty) {
        if (sw_deflate_run(d, Z_PARTIAL_FLUSH) != SW_OK) {
            return SW_ERROR;
        }
        d->dirty = 0;
    }
    if (l->below != NULL && l->below->flush != NULL) {
        return l->below->flush(l->below);
    }
    return SW_OK;
}

/* The peer's stream names a dictionary: ours must be the same one. */
static int
sw_deflate_need_dict(sw_deflate_t *d)
{
    sw_conn_t  *c = d->layer.conn;
    uLong       peer_id = d->zin.adler;

    if (d->dict == NULL) {
        sw_conn_fail(c, UV_EPROTO,
                     "DEFLATE dictionary mismatch: peer uses adler32 "
                     "0x%08lx, ours is none", peer_id);
        return SW_ERROR;
    }
    if (peer_id != d->dict_id) {
        sw_conn_fail(c, UV_EPROTO,
                     "DEFLATE dictionary mismatch: peer uses adler32 "
                     "0x%08lx, ours is 0x%08lx", peer_id, d->dict_id);
        return SW_ERROR;
    }
    if (inflateSetDictionary(&d->zin, (const Bytef *) d->dict,
                             (uInt) d->dict_len) != Z_OK)
    {
        sw_conn_fail(c, UV_EPROTO, "DEFLATE: cannot set dictionary");
        return SW_ERROR;
    }
    return SW_OK;
}

static int
sw_deflate_inflate(sw_deflate_t *d)
{
    sw_conn_t      *c = d->layer.conn;
    unsigned char   out[SW_DEFLATE_CHUNK];
    size_t          have, turn = 0;
    int             rc;

    while (sw_conn_reading(c)) {
        if (turn >= SW_DEFLATE_TURN) {
            sw_conn_yield(c);       /* the rest waits for the next turn */
            break;
        }
        d->zin.next_out = out;
        d->zin.avail_out = sizeof(out);
        rc = inflate(&d->zin, Z_SYNC_FLUSH);

        if (rc == Z_NEED_DICT) {
            if (sw_deflate_need_dict(d) != SW_OK) {
                return SW_ERROR;
            }
            continue;
        }

        /*
         * What was inflated before an error goes up first: otherwise the
         * bytes delivered from a stream that breaks would depend on how
         * TCP cut it into reads (found by tests/fuzz/fuzz_inflate).
         */
        have = sizeof(out) - d->zin.avail_out;
        turn += have;
        if (have > 0) {
            sw_conn_layer_up(&d->layer, (const char *) out, have);
        }

        if (rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR || rc == Z_MEM_ERROR) {
            sw_conn_fail(c, UV_EPROTO, "DEFLATE data error from peer: %s",
                         d->zin.msg ? d->zin.msg : zError(rc));
            return SW_ERROR;
        }

        if (rc == Z_STREAM_END) {
            /* The peer ended its stream (Z_FINISH); a new one may follow
             * on the same connection. */
            inflateReset(&d->zin);
            continue;
        }
        if (rc == Z_BUF_ERROR
            || (d->zin.avail_in == 0 && d->zin.avail_out != 0))
        {
            break;      /* all input used and all output handed up */
        }
    }
    return SW_OK;
}

static int
sw_deflate_on_read(sw_layer_t *l, const char *data, size_t len)
{
    sw_deflate_t  *d = (sw_deflate_t *) l;
    const char    *src;
    size_t         src_len, used;
    int            rc;

    if (data != NULL && len > 0 && d->in.len > 0) {
        sw_buf_append(&d->in, data, len);
    }
    if (d->in.len > 0) {
        src = d->in.data;
        src_len = d->in.len;
    } else {
        src = data;
        src_len = data != NULL ? len : 0;
    }

    d->zin.next_in = (Bytef *) src;
    d->zin.avail_in = (uInt) src_len;
    rc = sw_deflate_inflate(d);
    used = src_len - d->zin.avail_in;
    d->zin.next_in = NULL;
    d->zin.avail_in = 0;

    /* Keep what was not inflated (paused or closing); data is borrowed. */
    if (src == d->in.data && d->in.len > 0) {
        sw_buf_consume(&d->in, used);
    } else if (used < src_len) {
        sw_buf_append(&d->in, src + used, src_len - used);
    }
    if (d->in.len == 0) {
        sw_buf_free(&d->in);
    }
    return rc;
}

static void
sw_deflate_free(sw_layer_t *l)
{
    sw_deflate_t  *d = (sw_deflate_t *) l;

    deflateEnd(&d->zout);
    inflateEnd(&d->zin);
    sw_buf_free(&d->in);
    sw_buf_free(&d->out);
    free(d->dict);
    free(d);
}

int
sw_conn_start_deflate(sw_conn_t *c, int level, const void *dict,
                      size_t dict_len)
{
    sw_deflate_t  *d;
    int            rc;

    if (sw_conn_find_layer(c, SW_LAYER_DEFLATE) != NULL) {
        sw_log_error("conn %s: DEFLATE already started", sw_conn_peer(c));
        return SW_ERROR;
    }
    if (!sw_conn_writable(c)) {
        return SW_ERROR;
    }
    if (dict != NULL && (dict_len == 0 || dict_len > UINT32_MAX)) {
        sw_log_error("conn %s: bad DEFLATE dictionary length %zu",
                     sw_conn_peer(c), dict_len);
        return SW_ERROR;
    }

    d = sw_calloc(1, sizeof(*d));
    d->layer.kind = SW_LAYER_DEFLATE;
    d->layer.write = sw_deflate_write;
    d->layer.on_read = sw_deflate_on_read;
    d->layer.flush = sw_deflate_flush;
    d->layer.free = sw_deflate_free;
    sw_buf_init(&d->in);
    sw_buf_init(&d->out);

    /* zlib format (windowBits 15), not raw: its header carries DICTID. */
    rc = deflateInit2(&d->zout, level, Z_DEFLATED, 15, 8,
                      Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        sw_log_error("conn %s: DEFLATE level %d: %s", sw_conn_peer(c),
                     level, zError(rc));
        free(d);
        return SW_ERROR;
    }
    rc = inflateInit(&d->zin);
    if (rc != Z_OK) {
        sw_log_error("conn %s: inflate: %s", sw_conn_peer(c), zError(rc));
        deflateEnd(&d->zout);
        free(d);
        return SW_ERROR;
    }

    if (dict != NULL) {
        d->dict = sw_alloc(dict_len);
        memcpy(d->dict, dict, dict_len);
        d->dict_len = dict_len;
        d->dict_id = adler32(adler32(0L, Z_NULL, 0), (const Bytef *) dict,
                             (uInt) dict_len);
        rc = deflateSetDictionary(&d->zout, (const Bytef *) dict,
                                  (uInt) dict_len);
        if (rc != Z_OK) {
            sw_log_error("conn %s: DEFLATE dictionary: %s", sw_conn_peer(c),
                         zError(rc));
            sw_deflate_free(&d->layer);
            return SW_ERROR;
        }
    }

    sw_conn_push_layer(c, &d->layer);
    return SW_OK;
}
