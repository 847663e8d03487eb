/*
 * Fuzz target: the config reader (core/sw_config.c: the Lua sandbox and
 * the conversion of what it set into sections) and the typed options
 * applied to it (core/sw_options.c), as sw_server_init does.
 *
 * The input is the config text: read from memory (sw_config_load_string)
 * when it holds no NUL byte, else written to a temporary file and read
 * with sw_config_load, which takes any bytes.  The file is unlinked at
 * once and read through /proc/self/fd, so that nothing is left behind
 * when libFuzzer kills the target (a hang, a crash).  The core's options are
 * applied to the global section and to every VirtualHost, the peer
 * options to every Peer section, then unclaimed entries are reported.
 *
 * The sandbox must bound time as well as memory: a config that runs for
 * long inside one call into the string library is a hang here
 * (libFuzzer's -timeout).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"
#include <skywave/sw_link.h>

#include "fuzz.h"

static char fuzz_path[64];
static int  fuzz_fd = -1;

static sw_config_t *
fuzz_load(const uint8_t *data, size_t size)
{
    sw_config_t *cfg;
    char        *text;

    if (memchr(data, '\0', size) == NULL) {
        text = sw_strndup((const char *) data, size);
        cfg = sw_config_load_string("fuzz.cfg.lua", text);
        free(text);
        return cfg;
    }
    if (ftruncate(fuzz_fd, 0) != 0
        || pwrite(fuzz_fd, data, size, 0) != (ssize_t) size)
    {
        abort();
    }
    return sw_config_load(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmp[] = "/tmp/sw-fuzz-config-XXXXXX";

    sw_fuzz_quiet();
    fuzz_fd = mkstemp(tmp);
    if (fuzz_fd < 0 || unlink(tmp) != 0) {
        abort();
    }
    snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sw_config_t    *cfg;
    sw_core_conf_t  core;
    sw_peer_conf_t  peer;
    sw_csection_t  *sec;
    size_t          i;

    cfg = fuzz_load(data, size);
    if (cfg == NULL) {
        return 0;
    }
    sw_options_defaults(sw_core_options, &core, cfg->pool);
    sw_options_apply(sw_core_options, &core, cfg, sw_config_global(cfg),
                     cfg->pool);
    for (i = 1; i < cfg->n_sections; i++) {
        sec = &cfg->sections[i];
        if (sec->scope == SW_SCOPE_PEER) {
            sw_options_defaults(sw_peer_options, &peer, cfg->pool);
            sw_options_apply(sw_peer_options, &peer, cfg, sec, cfg->pool);
        } else {
            sw_options_apply(sw_core_options, &core, cfg, sec, cfg->pool);
        }
    }
    sw_config_check_unclaimed(cfg);
    sw_config_free(cfg);
    return 0;
}
