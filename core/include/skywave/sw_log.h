/* Logging with levels.  One line per call, to stderr or a file. */
#ifndef SKYWAVE_SW_LOG_H
#define SKYWAVE_SW_LOG_H

#include <time.h>

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

/*
 * Rate-limited logging for lines a remote party can cause at will
 * (refused connections, unknown addresses): at most SW_LOG_RL_BURST lines
 * per minute per limiter; the next line after a quiet spell says how many
 * were suppressed.  Zero-initialise the limiter.
 */
#define SW_LOG_RL_BURST 10
typedef struct sw_log_rl_s {
    time_t      window;         /* start of the current minute */
    unsigned    count;          /* lines in it */
    unsigned    suppressed;
} sw_log_rl_t;
void sw_log_rl(sw_log_rl_t *rl, sw_log_level_e level, const char *fmt, ...)
    SW_PRINTF(3, 4);

#define sw_log_rl_error(rl, ...) sw_log_rl(rl, SW_LOG_ERROR, __VA_ARGS__)
#define sw_log_rl_warn(rl, ...) sw_log_rl(rl, SW_LOG_WARN, __VA_ARGS__)
#define sw_log_rl_info(rl, ...) sw_log_rl(rl, SW_LOG_INFO, __VA_ARGS__)

#define sw_log_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)
#define sw_log_warn(...)  sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_log_info(...)  sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_log_debug(...) \
    do { if (sw_log_get_level() >= SW_LOG_DEBUG) sw_log(SW_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
