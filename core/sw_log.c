/* Logging: one line per message with time and level. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <skywave/sw_log.h>

static const char *const sw_log_names[] = { "error", "warn", "info", "debug" };

static sw_log_level_e  sw_log_level = SW_LOG_INFO;
static FILE           *sw_log_fp;
static sw_log_sink_pt  sw_log_sink;
static void           *sw_log_sink_ud;

void
sw_log(sw_log_level_e level, const char *fmt, ...)
{
    char            line[2048];
    char            stamp[32];
    struct timespec ts;
    struct tm       tm;
    va_list         ap;
    FILE           *fp;

    if (level > sw_log_level && sw_log_sink == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (sw_log_sink != NULL) {
        sw_log_sink(level, line, sw_log_sink_ud);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fp = sw_log_fp ? sw_log_fp : stderr;
    fprintf(fp, "%s.%03ldZ %-5s %s\n", stamp, ts.tv_nsec / 1000000L,
            sw_log_names[level], line);
    fflush(fp);
}

void
sw_log_rl(sw_log_rl_t *rl, sw_log_level_e level, const char *fmt, ...)
{
    char     line[2048];
    time_t   now = time(NULL);
    va_list  ap;

    if (level > sw_log_level && sw_log_sink == NULL) {
        return;
    }
    if (now - rl->window >= 60) {
        rl->window = now;
        rl->count = 0;
    }
    if (rl->count >= SW_LOG_RL_BURST) {
        rl->suppressed++;
        return;
    }
    rl->count++;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (rl->suppressed != 0) {
        sw_log(level, "%s (and %u more like it suppressed)", line,
               rl->suppressed);
        rl->suppressed = 0;
    } else {
        sw_log(level, "%s", line);
    }
}

void
sw_log_set_level(sw_log_level_e level)
{
    sw_log_level = level;
}

sw_log_level_e
sw_log_get_level(void)
{
    return sw_log_level;
}

int
sw_log_level_parse(const char *name, sw_log_level_e *out)
{
    size_t i;

    for (i = 0; i < sizeof(sw_log_names) / sizeof(sw_log_names[0]); i++) {
        if (strcmp(name, sw_log_names[i]) == 0) {
            *out = (sw_log_level_e) i;
            return SW_OK;
        }
    }
    return SW_ERROR;
}

int
sw_log_open(const char *path)
{
    FILE *fp;

    if (path == NULL) {
        if (sw_log_fp != NULL) {
            fclose(sw_log_fp);
        }
        sw_log_fp = NULL;
        return SW_OK;
    }
    fp = fopen(path, "a");
    if (fp == NULL) {
        return SW_ERROR;
    }
    if (sw_log_fp != NULL) {
        fclose(sw_log_fp);
    }
    sw_log_fp = fp;
    return SW_OK;
}

void
sw_log_set_sink(sw_log_sink_pt fn, void *ud)
{
    sw_log_sink = fn;
    sw_log_sink_ud = ud;
}
