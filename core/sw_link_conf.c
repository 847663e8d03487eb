/*
 * Peer links' configuration (see sw_link_int.h): the Peer options, the
 * preset dictionary, TLS set-up, and the links made from the config.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sw_core_int.h"
#include "sw_link_int.h"
#include "sw_link_wire.h"

static const char *const sw_link_initiate_names[] = {
    "both", "us", "them", NULL
};

static const char *const sw_link_protocol_names[] = {
    "skywave", "xep0361", NULL
};

static const char *const sw_link_codec_names[] = {
    "deflate", "zstd", NULL
};

static const char *const sw_link_fold_names[] = {
    "full", "always", "never", NULL
};

#define SW_PEER_OPT(n, t, f, fl, lo, hi, d, ch, h) \
    { n, t, offsetof(sw_peer_conf_t, f), SW_SCOPE_PEER, fl, lo, hi, d, ch, h }

const sw_option_t sw_peer_options[] = {
    SW_PEER_OPT("peer_domains", SW_OPT_STRLIST, domains, SW_OPT_REQUIRED,
                0, 0, NULL, NULL, "domains the peer speaks for (its server, "
                "its MUC service...): all share this link"),
    SW_PEER_OPT("peer_transport", SW_OPT_STRING, transport, 0, 0, 0, "tcp",
                NULL, "transport module that carries the link"),
    SW_PEER_OPT("peer_initiate", SW_OPT_ENUM, initiate, 0, 0, 0, "both",
                sw_link_initiate_names, "who opens the connection"),
    SW_PEER_OPT("peer_protocol", SW_OPT_ENUM, protocol, 0, 0, 0, "skywave",
                sw_link_protocol_names, "\"skywave\": numbered stanzas, "
                "acknowledged, nothing lost (both ends Skywave); "
                "\"xep0361\": plain XEP-0361, stanzas only, done when TCP "
                "delivered them"),
    SW_PEER_OPT("peer_compression", SW_OPT_BOOL, compression, 0, 0, 0,
                "true", NULL, "DEFLATE both ways (both ends must agree; "
                "off by default with peer_protocol = \"xep0361\")"),
    SW_PEER_OPT("peer_codec", SW_OPT_ENUM, codec, 0, 0, 0, "deflate",
                sw_link_codec_names, "how peer_compression compresses: "
                "\"deflate\" (zlib) or \"zstd\" (both ends the same)"),
    SW_PEER_OPT("peer_compression_level", SW_OPT_INT, compression_level, 0,
                1, 19, "9", NULL, "1-9 with DEFLATE (default 9), 1-19 with "
                "zstd (default 19)"),
    SW_PEER_OPT("peer_dictionary", SW_OPT_STRING, dictionary, 0, 0, 0,
                "default", NULL, "preset DEFLATE dictionary: \"default\" "
                "(built in), \"none\", or a file; both ends the same"),
    SW_PEER_OPT("peer_queue_max", SW_OPT_INT, queue_max, 0, 1, 10000000,
                "100000", NULL, "stanzas of all kinds waiting for the peer; "
                "past it they are treated as past their own kind's bound"),
    SW_PEER_OPT("peer_queue_max_message", SW_OPT_INT, queue_max_message, 0,
                1, 10000000, "100000", NULL, "messages waiting for the "
                "peer; more are bounced with resource-constraint"),
    SW_PEER_OPT("peer_queue_max_presence", SW_OPT_INT, queue_max_presence,
                0, 1, 10000000, "1000", NULL, "presence waiting for the "
                "peer; past it a new presence replaces the waiting one from "
                "the same sender to the same address, or is dropped "
                "(subscription requests are bounced)"),
    SW_PEER_OPT("peer_queue_max_iq", SW_OPT_INT, queue_max_iq, 0, 1,
                10000000, "1000", NULL, "IQs waiting for the peer; more "
                "requests are bounced with resource-constraint"),
    SW_PEER_OPT("peer_queue_max_bytes", SW_OPT_SIZE, queue_max_bytes, 0,
                4096, (int64_t) 1 << 40, "32M", NULL, "bytes of stanzas "
                "waiting for the peer (memory and disk); past it they are "
                "treated as past their own kind's bound"),
    SW_PEER_OPT("peer_queue_max_sender_bytes", SW_OPT_SIZE,
                queue_max_sender_bytes, 0, 1024, (int64_t) 1 << 40, "2M",
                NULL, "bytes of stanzas from one sender (bare JID) waiting "
                "for the peer, so that one user cannot fill the queue"),
    SW_PEER_OPT("peer_queue_memory", SW_OPT_SIZE, queue_memory, 0, 0,
                (int64_t) 1 << 40, "1M", NULL, "bytes of the queue kept in "
                "memory (its head); the rest is read back from the database "
                "as it is sent"),
    SW_PEER_OPT("peer_fold_presence", SW_OPT_ENUM, fold_presence, 0, 0, 0,
                "full", sw_link_fold_names, "a newer presence from the same "
                "sender to the same address replaces one still waiting: "
                "\"full\" when the queue is full, \"always\", or "
                "\"never\""),
    SW_PEER_OPT("peer_expire_message", SW_OPT_DURATION, expire_message, 0,
                1000, 365LL * 86400 * 1000, "168h", NULL,
                "a message not delivered by then is bounced"),
    SW_PEER_OPT("peer_expire_presence", SW_OPT_DURATION, expire_presence, 0,
                1000, 365LL * 86400 * 1000, "1h", NULL,
                "queued presence older than this is dropped"),
    SW_PEER_OPT("peer_expire_iq", SW_OPT_DURATION, expire_iq, 0,
                1000, 86400LL * 1000, "10m", NULL,
                "an IQ request not delivered by then is bounced"),
    SW_PEER_OPT("peer_keepalive", SW_OPT_DURATION, keepalive, 0,
                1000, 3600LL * 1000, "60s", NULL, "idle time before an ack "
                "is sent as a keepalive; three times it with nothing "
                "received closes the connection"),
    SW_PEER_OPT("peer_reconnect_min", SW_OPT_DURATION, reconnect_min, 0,
                100, 3600LL * 1000, "1s", NULL, "first retry delay"),
    SW_PEER_OPT("peer_reconnect_max", SW_OPT_DURATION, reconnect_max, 0,
                100, 3600LL * 1000, "30s", NULL, "longest retry delay; also when an idle end "
                "that left opening to the peer tries again (ten times it "
                "once the peer has opened a connection to us)"),
    SW_PEER_OPT("peer_ack_timeout", SW_OPT_DURATION, ack_timeout, 0,
                500, 3600LL * 1000, "10s", NULL, "a stanza unacknowledged "
                "this long makes us open a fresh connection beside the "
                "current one, which may be dead without TCP knowing"),
    SW_PEER_OPT("peer_ack_delay", SW_OPT_DURATION, ack_delay, 0, 0,
                60LL * 1000, "5s", NULL, "longest an ack waits for a "
                "stanza going the other way to ride with (at most half the "
                "ack timeout: three path round trips); 0: at once"),
    SW_PEER_OPT("peer_probe_interval", SW_OPT_DURATION, probe_interval, 0,
                0, 600LL * 1000, "0", NULL, "while the link seems down, a "
                "new connection attempt this often once a path round trip "
                "is known, never under half of it (0: three round trips, "
                "at least 2 s): the link is found on average half of it "
                "after it returns, for SYNs this often while the link is "
                "up and the peer silent (doc/peer-links.md)"),
    SW_PEER_OPT("peer_head_start", SW_OPT_DURATION, head_start, 0, 0,
                600LL * 1000, "2s", NULL, "with nothing to send and both "
                "ends allowed to open, how long we leave the peer to open "
                "first (at least two path round trips; the end whose "
                "connection would lose a simultaneous open waits 1 s "
                "more), so that the end with stanzas waiting opens alone; "
                "0: the winning end opens at once"),
    SW_PEER_OPT("peer_tls", SW_OPT_BOOL, tls, 0, 0, 0, "false", NULL,
                "TLS from the first byte, both certificates checked "
                "against peer_tls_pin"),
    SW_PEER_OPT("peer_tls_certificate", SW_OPT_PATH, tls_certificate, 0, 0,
                0, NULL, NULL, "our certificate (PEM); unset: a "
                "self-signed one made in data_dir"),
    SW_PEER_OPT("peer_tls_key", SW_OPT_PATH, tls_key, 0, 0, 0, NULL, NULL,
                "our private key (PEM)"),
    SW_PEER_OPT("peer_tls_pin", SW_OPT_STRING, tls_pin, 0, 0, 0, NULL, NULL,
                "SHA-256 fingerprint of the peer's certificate (hex)"),
    SW_PEER_OPT("peer_tls_ca", SW_OPT_PATH, tls_ca, 0, 0, 0, NULL, NULL,
                "CA certificates (PEM): the peer's certificate must chain to "
                "one and name its first peer_domains entry"),
    SW_OPTION_END
};

static void
sw_link_first_host(sw_host_t *h, void *ud)
{
    /* sw_host_each walks newest first: the last "host" seen is the
     * first VirtualHost of the config */
    if (strcmp(h->kind, "host") == 0) {
        snprintf(sw_link_local, sizeof(sw_link_local), "%s", h->name);
    }
}

static int
sw_link_read_dict(sw_link_t *l, const sw_config_t *cfg)
{
    const char *name = l->conf.dictionary;
    bool        zstd = l->conf.codec == SW_LINK_CODEC_ZSTD;
    char        path[4096];
    FILE       *fp;
    long        n;

    if (name == NULL || strcmp(name, "none") == 0) {
        return SW_OK;
    }
    if (strcmp(name, "default") == 0 && l->conf.codec == SW_LINK_CODEC_ZSTD) {
        l->dict = sw_alloc(sw_link_zdict_len);
        memcpy(l->dict, sw_link_zdict, sw_link_zdict_len);
        l->dict_len = sw_link_zdict_len;
        return SW_OK;
    }
    if (strcmp(name, "default") == 0) {
        l->dict = sw_strndup(sw_link_default_dict, sw_link_default_dict_len);
        l->dict_len = sw_link_default_dict_len;
        return SW_OK;
    }
    /* relative to the config file, like every path option */
    snprintf(path, sizeof(path), "%s%s%s", name[0] == '/' ? "" : cfg->dir,
             name[0] == '/' ? "" : "/", name);
    fp = fopen(path, "rb");
    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0
        || n > (zstd ? 131072 : 32768) || fseek(fp, 0, SEEK_SET) != 0)
    {
        sw_log_error("link %s: peer_dictionary %s: %s", l->name,
                     path, fp == NULL ? strerror(errno) : zstd
                     ? "not a readable file of at most 128 kB (the zstd "
                       "window)"
                     : "not a readable file of at most 32 kB (the DEFLATE "
                       "window)");
        if (fp != NULL) {
            fclose(fp);
        }
        return SW_ERROR;
    }
    l->dict = sw_alloc((size_t) n + 1);
    l->dict_len = fread(l->dict, 1, (size_t) n, fp);
    fclose(fp);
    return SW_OK;
}

/* 64 hex digits, optionally in pairs separated by colons. */
static bool
sw_link_pin_valid(const char *pin)
{
    size_t digits = 0;

    for (; *pin != '\0'; pin++) {
        if (*pin == ':') {
            if (digits == 0 || digits % 2 != 0 || pin[1] == '\0') {
                return false;
            }
            continue;
        }
        if (!((*pin >= '0' && *pin <= '9') || (*pin >= 'a' && *pin <= 'f')
              || (*pin >= 'A' && *pin <= 'F')))
        {
            return false;
        }
        digits++;
    }
    return digits == 64;
}

/* The defaults that depend on other options of the section. */
void
sw_peer_conf_defaults(sw_peer_conf_t *c, sw_csection_t *sec)
{
    if (c->protocol == SW_LINK_PROTOCOL_XEP0361
        && sw_config_entry(sec, "peer_compression") == NULL)
    {
        /* XEP-0361 itself has no compression */
        c->compression = false;
    }
    if (c->codec == SW_LINK_CODEC_ZSTD
        && sw_config_entry(sec, "peer_compression_level") == NULL)
    {
        c->compression_level = 19;
    }
}

int
sw_links_configure(sw_config_t *cfg)
{
    size_t i;
    int    rc = SW_OK;

    sw_link_domains = sw_hash_new(16);
    sw_owner_init(&sw_link_owner, "core links");
    sw_link_ev_up = sw_hook_declare("link/up", "a peer link's connection "
        "is live (with TLS: the peer was verified); data sw_link_event_t");
    sw_link_ev_down = sw_hook_declare("link/down", "a peer link's live "
        "connection closed; data sw_link_event_t, with the reason");
    sw_link_ev_gap = sw_hook_declare("link/gap", "the peer's numbering "
        "skips: stanzas expired in its queue, or it restarted; data "
        "sw_link_event_t");
    for (i = 1; i < cfg->n_sections; i++) {
        sw_csection_t     *sec = &cfg->sections[i];
        sw_link_t         *l;
        const char *const *d;

        if (sec->scope != SW_SCOPE_PEER) {
            continue;
        }
        l = sw_calloc(1, sizeof(*l));
        l->name = sw_strdup(sec->name);
        l->out_chain = sw_chain_new("outbound");
        l->in_chain = sw_chain_new("inbound");
        sw_link_fold_install(l);
        l->next = sw_links;
        sw_links = l;
        if (sw_options_defaults(sw_peer_options, &l->conf, cfg->pool) != SW_OK
            || sw_options_apply(sw_peer_options, &l->conf, cfg, sec,
                                cfg->pool) != SW_OK)
        {
            rc = SW_ERROR;
            continue;
        }
        sw_peer_conf_defaults(&l->conf, sec);
        if (l->conf.codec == SW_LINK_CODEC_DEFLATE
            && l->conf.compression_level > 9)
        {
            sw_config_error(cfg, sec->line, "Peer \"%s\": "
                            "peer_compression_level %lld is above DEFLATE's "
                            "9 (up to 19 with peer_codec = \"zstd\")",
                            l->name, (long long) l->conf.compression_level);
            rc = SW_ERROR;
        }
        if (l->conf.reconnect_max < l->conf.reconnect_min) {
            sw_config_error(cfg, sec->line, "Peer \"%s\": peer_reconnect_max "
                            "is less than peer_reconnect_min", l->name);
            rc = SW_ERROR;
        }
        for (d = l->conf.domains; d != NULL && *d != NULL; d++) {
            if (sw_host_find(*d) != NULL) {
                sw_config_error(cfg, sec->line, "Peer \"%s\": domain %s is "
                                "also served here", l->name, *d);
                rc = SW_ERROR;
            } else if (sw_hash_get(sw_link_domains, *d) != NULL) {
                sw_config_error(cfg, sec->line, "Peer \"%s\": domain %s "
                                "belongs to another Peer too", l->name, *d);
                rc = SW_ERROR;
            } else {
                sw_hash_set(sw_link_domains, *d, l);
            }
        }
        if (l->conf.tls_pin != NULL && !sw_link_pin_valid(l->conf.tls_pin)) {
            sw_config_error(cfg, sec->line, "Peer \"%s\": peer_tls_pin "
                            "\"%s\" is not a SHA-256 fingerprint (64 hex "
                            "digits, colons allowed)", l->name,
                            l->conf.tls_pin);
            rc = SW_ERROR;
        }
        if (sw_link_read_dict(l, cfg) != SW_OK) {
            rc = SW_ERROR;
        }
        uv_timer_init(sw_loop(), &l->retry);
        l->retry.data = l;
        uv_timer_init(sw_loop(), &l->ack_timer);
        l->ack_timer.data = l;
        uv_timer_init(sw_loop(), &l->probe_timer);
        l->probe_timer.data = l;
        l->backoff = l->conf.reconnect_min;
    }
    if (sw_links != NULL) {
        sw_hook_add(&sw_link_owner, "route/remote", 0, sw_link_route, NULL);
    }
    sw_host_each(sw_link_first_host, NULL);
    return rc;
}

/* TLS for a link: our certificate (made on first start if none is
 * configured) and the peer's pinned fingerprint. */
int
sw_link_tls_setup(sw_link_t *l)
{
    const sw_core_conf_t *core = sw_core_conf();
    const char           *cert = l->conf.tls_certificate;
    const char           *key = l->conf.tls_key;
    const char           *names[2] = { sw_link_local, NULL };
    char                  c[4096], k[4096], *fp;
    FILE                 *f;

    if (!l->conf.tls) {
        return SW_OK;
    }
    if ((cert == NULL) != (key == NULL)) {
        sw_log_error("link %s: set both peer_tls_certificate and "
                     "peer_tls_key, or neither", l->name);
        return SW_ERROR;
    }
    if (cert == NULL) {
        snprintf(c, sizeof(c), "%s/link-selfsigned.crt", core->data_dir);
        snprintf(k, sizeof(k), "%s/link-selfsigned.key", core->data_dir);
        cert = c;
        key = k;
        if ((f = fopen(c, "r")) != NULL) {
            fclose(f);
        } else if (sw_tls_make_self_signed(c, k, names) != SW_OK) {
            return SW_ERROR;
        }
    }
    fp = sw_tls_cert_fingerprint(cert);
    if (l->conf.tls_pin == NULL && l->conf.tls_ca == NULL) {
        sw_log_error("link %s: peer_tls needs peer_tls_pin (the SHA-256 "
                     "fingerprint of the peer's certificate; ours is %s) or "
                     "peer_tls_ca", l->name, fp ? fp : "unreadable");
        free(fp);
        return SW_ERROR;
    }
    l->tls = sw_tls_ctx_new(cert, key);
    if (l->tls == NULL || sw_tls_ctx_resumable(l->tls) != SW_OK) {
        free(fp);
        return SW_ERROR;
    }
    if (l->conf.tls_pin != NULL
        && sw_tls_ctx_pin_peer(l->tls, l->conf.tls_pin) != SW_OK)
    {
        sw_log_error("link %s: peer_tls_pin is not a SHA-256 fingerprint "
                     "(64 hex digits)", l->name);
        free(fp);
        return SW_ERROR;
    }
    if (l->conf.tls_ca != NULL
        && sw_tls_ctx_trust_ca(l->tls, l->conf.tls_ca, l->conf.domains[0])
           != SW_OK)
    {
        free(fp);
        return SW_ERROR;
    }
    sw_log_info("link %s: TLS; our certificate's SHA-256 is %s", l->name,
                fp ? fp : "?");
    free(fp);
    return SW_OK;
}
