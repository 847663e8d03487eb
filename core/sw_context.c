/*
 * What every part of the core shares, below the server's life cycle
 * (sw_server.c) and the layers it starts (links, sessions): the loop,
 * the core options, the configuration in force, and whether this
 * process only checks its configuration.  sw_server.c sets them; the
 * rest only reads them, so nothing below calls back up into the server.
 */
#include "config.h"

#include <skywave/skywave.h>

#include "sw_core_int.h"

static struct {
    uv_loop_t       *loop;
    sw_core_conf_t   conf;
    sw_config_t     *cfg;
    bool             checking;
} sw_ctx;

uv_loop_t *
sw_loop(void)
{
    if (sw_ctx.loop == NULL) {
        sw_ctx.loop = uv_default_loop();
    }
    return sw_ctx.loop;
}

uv_loop_t *
sw_loop_if_made(void)
{
    return sw_ctx.loop;
}

void
sw_loop_forget(void)
{
    sw_ctx.loop = NULL;
}

const sw_core_conf_t *
sw_core_conf(void)
{
    return &sw_ctx.conf;
}

sw_core_conf_t *
sw_core_conf_rw(void)
{
    return &sw_ctx.conf;
}

sw_config_t *
sw_server_config(void)
{
    return sw_ctx.cfg;
}

void
sw_context_set_config(sw_config_t *cfg)
{
    sw_ctx.cfg = cfg;
}

void
sw_server_xml_limits(sw_xml_limits_t *out)
{
    out->max_stanza_bytes = sw_ctx.conf.max_stanza_size;
    out->max_depth = (unsigned) sw_ctx.conf.max_depth;
    out->max_attrs = (unsigned) sw_ctx.conf.max_attrs;
    out->max_elements = (unsigned) sw_ctx.conf.max_elements;
}

void
sw_server_set_checking(bool checking)
{
    sw_ctx.checking = checking;
}

bool
sw_server_checking(void)
{
    return sw_ctx.checking;
}
