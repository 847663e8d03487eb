/* The running server: its loop, its core configuration, its state. */
#ifndef SKYWAVE_SW_SERVER_H
#define SKYWAVE_SW_SERVER_H

#include <uv.h>
#include <skywave/sw_core.h>
#include <skywave/sw_config.h>
#include <skywave/sw_xmlstream.h>

/* The core's own options (the global section and VirtualHost sections). */
typedef struct sw_core_conf_s {
    const char *const *modules;     /* modules to load */
    const char        *storage;     /* storage backend: loads
                                       mod_storage_NAME first */
    const char        *module_path; /* extra module directories */
    const char        *data_dir;    /* state: database, generated certs */
    const char        *log_file;    /* NULL = stderr */
    int                log_level;   /* sw_log_level_e */
    const char        *pid_file;
    size_t             max_stanza_size;
    int64_t            max_depth;
    int64_t            max_attrs;
    int64_t            max_elements;
} sw_core_conf_t;

uv_loop_t *sw_loop(void);
const sw_core_conf_t *sw_core_conf(void);
sw_config_t *sw_server_config(void);
/* The parser limits configured for streams. */
void sw_server_xml_limits(sw_xml_limits_t *out);
/* Asks the loop to stop gracefully (modules' stop() runs). */
void sw_server_shutdown(void);
/* The core's declared options (for --list-options). */
extern const sw_option_t sw_core_options[];

/* This process only checks the configuration (skywaved -t, skywavectl):
 * modules change nothing on disk then. */
bool sw_server_checking(void);

#endif
