/* Logging with levels.  One line per call, to stderr or a file. */
#ifndef SKYWAVE_SW_LOG_H
#define SKYWAVE_SW_LOG_H

#include <skywave/sw_core.h>

typedef enum sw_log_level_e {
    SW_LOG_ERROR = 0,
    SW_LOG_WARN,
    SW_LOG_INFO,
    SW_LOG_DEBUG,
} sw_log_level_e;

void sw_log(sw_log_level_e level, const char *fmt, ...) SW_PRINTF(2, 3);
void sw_log_set_level(sw_log_level_e level);
sw_log_level_e sw_log_get_level(void);
/* "error", "warn", "info", "debug" -> level; SW_ERROR if unknown. */
int sw_log_level_parse(const char *name, sw_log_level_e *out);
/* path NULL = stderr.  SW_OK or SW_ERROR (errno set). */
int sw_log_open(const char *path);
/* Tests: capture log lines instead of writing them (fn NULL restores). */
typedef void (*sw_log_sink_pt)(sw_log_level_e level, const char *line,
                               void *ud);
void sw_log_set_sink(sw_log_sink_pt fn, void *ud);

#define sw_log_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)
#define sw_log_warn(...)  sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_log_info(...)  sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_log_debug(...) \
    do { if (sw_log_get_level() >= SW_LOG_DEBUG) sw_log(SW_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
