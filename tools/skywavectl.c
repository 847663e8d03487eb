/*
 * skywavectl: operator commands against a server's configuration and
 * storage: adduser, passwd, deluser, listusers, check.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

#ifndef SW_SYSCONF_DIR
#define SW_SYSCONF_DIR "/etc/skywave"
#endif

#define SKYWAVECTL_ITERATIONS 4096

static void
skywavectl_usage(FILE *fp)
{
    fprintf(fp,
        "Usage: skywavectl [-c FILE] COMMAND [ARGS]\n"
        "  adduser JID        create an account (password from stdin or "
        "prompt)\n"
        "  passwd JID         change an account's password\n"
        "  deluser JID        delete an account with its roster and "
        "offline messages\n"
        "  listusers HOST     list the accounts of a VirtualHost\n"
        "  check              check the configuration (like skywaved -t)\n"
        "  links              peer link counters of the running server\n"
        "Options:\n"
        "  -c, --config FILE  configuration file (default "
        SW_SYSCONF_DIR "/skywave.cfg.lua)\n");
}

/* Reads a password: one line from stdin, or twice at a terminal prompt. */
static char *
skywavectl_password(void)
{
    char            a[1024], b[1024];
    struct termios  t, saved;
    bool            tty = isatty(STDIN_FILENO);
    size_t          n;

    if (tty) {
        tcgetattr(STDIN_FILENO, &saved);
        t = saved;
        t.c_lflag &= ~(tcflag_t) ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
        fputs("Password: ", stderr);
    }
    if (fgets(a, sizeof(a), stdin) == NULL) {
        a[0] = '\0';
    }
    if (tty) {
        fputs("\nAgain: ", stderr);
        if (fgets(b, sizeof(b), stdin) == NULL) {
            b[0] = '\0';
        }
        fputs("\n", stderr);
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "skywavectl: the passwords differ\n");
            return NULL;
        }
    }
    n = strcspn(a, "\r\n");
    a[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "skywavectl: empty password\n");
        return NULL;
    }
    return sw_strdup(a);
}

/* Splits and prepares user@host; the host must be a VirtualHost. */
static int
skywavectl_account(sw_pool_t *pool, const char *arg, sw_jid_t *jid)
{
    sw_host_t *h;

    if (sw_jid_parse(pool, arg, jid) != SW_OK || jid->node == NULL
        || jid->resource != NULL)
    {
        fprintf(stderr, "skywavectl: '%s' is not an account JID "
                "(user@host)\n", arg);
        return SW_ERROR;
    }
    h = sw_host_find(jid->domain);
    if (h == NULL || strcmp(h->kind, "host") != 0) {
        fprintf(stderr, "skywavectl: '%s' is not a VirtualHost in the "
                "configuration\n", jid->domain);
        return SW_ERROR;
    }
    return SW_OK;
}

static int
skywavectl_make_creds(sw_pool_t *pool, const char *password,
                      sw_scram_cred_t creds[2])
{
    if (sw_scram_cred_make(pool, "SHA-256", password, SKYWAVECTL_ITERATIONS,
                           &creds[0]) != SW_OK
        || sw_scram_cred_make(pool, "SHA-1", password, SKYWAVECTL_ITERATIONS,
                              &creds[1]) != SW_OK)
    {
        fprintf(stderr, "skywavectl: cannot derive SCRAM credentials\n");
        return SW_ERROR;
    }
    return SW_OK;
}

static void
skywavectl_print_user(const char *user, void *ud)
{
    printf("%s@%s\n", user, (const char *) ud);
}

static int
skywavectl_run(const char *cmd, const char *arg)
{
    sw_storage_t    *st = sw_storage();
    sw_pool_t       *pool = sw_pool_new(1024);
    sw_scram_cred_t  creds[2];
    sw_jid_t         jid;
    char            *pw = NULL;
    int              rc = SW_ERROR;

    if (st == NULL) {
        fprintf(stderr, "skywavectl: no storage module in the "
                "configuration (add \"storage_sqlite\" to modules)\n");
        goto done;
    }
    if (strcmp(cmd, "listusers") == 0) {
        if (sw_host_find(arg) == NULL) {
            fprintf(stderr, "skywavectl: '%s' is not a VirtualHost in the "
                    "configuration\n", arg);
            goto done;
        }
        rc = st->user_list(st, arg, skywavectl_print_user, (void *) arg);
        goto done;
    }
    if (skywavectl_account(pool, arg, &jid) != SW_OK) {
        goto done;
    }
    if (strcmp(cmd, "deluser") == 0) {
        rc = st->user_delete(st, jid.domain, jid.node);
        if (rc == SW_DECLINED) {
            fprintf(stderr, "skywavectl: no account %s\n", jid.bare);
        } else if (rc == SW_OK) {
            printf("deleted %s\n", jid.bare);
        }
        goto done;
    }
    if (strcmp(cmd, "passwd") == 0
        && st->user_exists(st, jid.domain, jid.node) != SW_OK)
    {
        fprintf(stderr, "skywavectl: no account %s\n", jid.bare);
        rc = SW_DECLINED;
        goto done;
    }
    if ((pw = skywavectl_password()) == NULL
        || skywavectl_make_creds(pool, pw, creds) != SW_OK)
    {
        goto done;
    }
    if (strcmp(cmd, "adduser") == 0) {
        rc = st->user_create(st, jid.domain, jid.node, creds, 2);
        if (rc == SW_DECLINED) {
            fprintf(stderr, "skywavectl: %s exists already\n", jid.bare);
        } else if (rc == SW_OK) {
            printf("created %s\n", jid.bare);
        }
    } else {
        rc = st->user_set_creds(st, jid.domain, jid.node, creds, 2);
        if (rc == SW_OK) {
            printf("password changed for %s\n", jid.bare);
        }
    }

done:
    if (pw != NULL) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    sw_pool_free(pool);
    return rc;
}

/* Prints data_dir/links.json (rewritten by the server every 5 s) as a
 * table: stanzas out/in, wire bytes each way and the compression ratio
 * (XML bytes over wire bytes). */
static int
skywavectl_links(void)
{
    const sw_core_conf_t *core = sw_core_conf();
    char                  path[4096], line[1024];
    FILE                 *fp;

    snprintf(path, sizeof(path), "%s/links.json",
             core->data_dir ? core->data_dir : ".");
    fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "skywavectl: %s: no link counters (is skywaved "
                "running with a Peer configured?)\n", path);
        return SW_ERROR;
    }
    printf("%-16s %-4s %7s %9s %9s %6s %10s %10s %8s %6s %6s %7s\n",
           "PEER", "UP", "QUEUED", "OUT", "IN", "DUPS", "WIRE OUT", "WIRE IN",
           "RATIO", "RECON", "ERRORS", "RTT s");
    /* The server writes one link per line (core/sw_link.c). */
    while (fgets(line, sizeof(line), fp) != NULL) {
        char               peer[128], up[8];
        unsigned long long q, so, si, dup, bo, bi, wo, wi, rc, pe;
        double             rtt;

        if (sscanf(line, " {\"peer\": \"%127[^\"]\", \"up\": %7[a-z], "
                   "\"queued\": %llu, \"stanzas_out\": %llu, "
                   "\"stanzas_in\": %llu, \"duplicates_in\": %llu, "
                   "\"bytes_out\": %llu, \"bytes_in\": %llu, "
                   "\"wire_out\": %llu, \"wire_in\": %llu, "
                   "\"reconnects\": %llu, \"protocol_errors\": %llu, "
                   "\"rtt\": %lf", peer, up, &q, &so, &si, &dup, &bo, &bi,
                   &wo, &wi, &rc, &pe, &rtt) != 13)
        {
            continue;
        }
        printf("%-16s %-4s %7llu %9llu %9llu %6llu %10llu %10llu %7.1fx "
               "%6llu %6llu %7.2f\n", peer,
               strcmp(up, "true") == 0 ? "yes" : "no", q, so, si, dup, wo, wi,
               wo + wi > 0 ? (double) (bo + bi) / (double) (wo + wi) : 0.0,
               rc, pe, rtt);
    }
    fclose(fp);
    return SW_OK;
}

/* Operators want the answer, not the server's info lines (the config
 * may set log_level = "info"): warnings and errors only. */
static void
skywavectl_log(sw_log_level_e level, const char *line, void *ud)
{
    if (level <= SW_LOG_WARN) {
        fprintf(stderr, "skywavectl: %s\n", line);
    }
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = SW_SYSCONF_DIR "/skywave.cfg.lua";
    const char *cmd, *arg = NULL;
    int         c, rc;

    while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'h': skywavectl_usage(stdout); return 0;
        default: skywavectl_usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        skywavectl_usage(stderr);
        return 2;
    }
    cmd = argv[optind++];
    if (strcmp(cmd, "check") != 0 && strcmp(cmd, "links") != 0) {
        if (strcmp(cmd, "adduser") && strcmp(cmd, "passwd")
            && strcmp(cmd, "deluser") && strcmp(cmd, "listusers"))
        {
            fprintf(stderr, "skywavectl: unknown command '%s'\n", cmd);
            skywavectl_usage(stderr);
            return 2;
        }
        if (optind >= argc) {
            fprintf(stderr, "skywavectl: %s needs an argument\n", cmd);
            return 2;
        }
        arg = argv[optind++];
    }
    if (optind < argc) {
        fprintf(stderr, "skywavectl: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* Commands act on the storage the server's config names: load the
     * config and its modules as the server would, without starting them. */
    sw_log_set_sink(skywavectl_log, NULL);
    sw_server_set_checking(strcmp(cmd, "check") == 0
                           || strcmp(cmd, "links") == 0);
    rc = sw_server_init(config, NULL);
    if (rc == SW_OK && strcmp(cmd, "links") == 0) {
        rc = skywavectl_links();
    } else if (rc == SW_OK && strcmp(cmd, "check") == 0) {
        rc = sw_server_check();
        printf("configuration %s %s\n", config,
               rc == SW_OK ? "is OK" : "has errors");
    } else if (rc == SW_OK) {
        rc = skywavectl_run(cmd, arg);
    }
    sw_server_free();
    return rc == SW_OK ? 0 : 1;
}
