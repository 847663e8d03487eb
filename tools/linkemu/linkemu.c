/*
 * skywave-linkemu: emulates a constrained link between two network
 * namespaces.  Options, the control socket, signals and the stats file
 * live here; the link model is in linkemu_link.c, namespaces and TUN
 * devices in linkemu_netns.c.  Operator documentation: doc/link-emulator.md.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skywave/sw_core.h>
#include <skywave/sw_log.h>

#include "linkemu.h"

#define LINKEMU_LINE_MAX   256
#define LINKEMU_STATS_MAX  2048

typedef struct linkemu_main_s   linkemu_main_t;
typedef struct linkemu_client_s linkemu_client_t;
typedef struct linkemu_wreq_s   linkemu_wreq_t;

struct linkemu_main_s {
    uv_loop_t          loop;
    linkemu_t          emu;
    linkemu_side_t     side[2];
    const char        *stats_path;
    const char        *control_path;
    uv_pipe_t          control;
    bool               control_open;
    linkemu_client_t  *clients;
    uv_signal_t        sig[3];
    bool               keep;
    bool               ipv6;
    bool               stopping;
};

/* One connection on the control socket: line-based commands. */
struct linkemu_client_s {
    uv_pipe_t          pipe;
    linkemu_main_t    *m;
    linkemu_client_t  *next;
    size_t             len;
    bool               closing;
    char               line[LINKEMU_LINE_MAX];
};

struct linkemu_wreq_s {
    uv_write_t  req;
    size_t      len;
    char        data[];
};

static void linkemu_stop(linkemu_main_t *m);

static void
linkemu_usage(FILE *fp)
{
    const linkemu_profile_t  *p;

    fprintf(fp,
        "Usage: skywave-linkemu [OPTIONS]\n"
        "Forwards IP packets between a TUN device in namespace A and one in\n"
        "namespace B through an emulated constrained link.\n"
        "\n"
        "Link (a profile, then overrides; durations take s, ms or us, a\n"
        "bare number is seconds):\n"
        "  -p, --profile NAME      iridium, satcom-64k, vhf, hf-ip\n"
        "      --list-profiles     show the profiles and exit\n"
        "      --rate BITS         bit/s each way (k, M suffixes; 0 = "
        "unlimited)\n"
        "      --delay TIME        one-way propagation delay\n"
        "      --jitter TIME       delay varies uniformly by +- TIME\n"
        "      --reorder           let jitter reorder packets\n"
        "      --loss PERCENT      random loss per packet (e.g. 1 or 1%%)\n"
        "      --mtu BYTES         interface MTU (default 1500)\n"
        "      --queue BYTES       drop-tail queue per direction "
        "(default 6000)\n"
        "      --half-duplex       one channel shared by both directions\n"
        "      --full-duplex       undo a profile's half duplex\n"
        "      --turnaround TIME   half duplex: cost of changing direction\n"
        "      --max-hold TIME     half duplex: longest a sender keeps the\n"
        "                          channel while the other waits "
        "(default: until empty)\n"
        "      --outage DOWN:EVERY down for DOWN in every period EVERY\n"
        "      --carrier           an outage takes the TUN devices' carrier\n"
        "                          down too (hosts see the link go down)\n"
        "      --seed N            random seed for loss and jitter "
        "(default 1)\n"
        "Namespaces:\n"
        "      --ns-a NAME         namespace A (default swa)\n"
        "      --ns-b NAME         namespace B (default swb)\n"
        "      --addr-a CIDR       address in A (default 10.77.0.1/30)\n"
        "      --addr-b CIDR       address in B (default 10.77.0.2/30)\n"
        "      --dev NAME          TUN device name in both (default lemu0)\n"
        "      --ipv6              keep IPv6 on the TUN devices\n"
        "      --keep              do not delete the namespaces at exit\n"
        "Control:\n"
        "  -c, --control PATH      UNIX socket: down [TIME], up, stats, "
        "quit\n"
        "  -s, --stats FILE        JSON counters, written at exit, on "
        "SIGUSR1\n"
        "                          and on the stats command\n"
        "  -v, --verbose           log every drop\n"
        "  -h, --help\n"
        "Prints \"ready\" on stdout once both interfaces are up.\n"
        "Profiles:\n");
    for (p = linkemu_profiles(); p->name != NULL; p++) {
        fprintf(fp, "  %-12s %s\n", p->name, p->help);
    }
}

/* ------------------------------------------------------------- parsing */

/* "1.5s", "300ms", "500us", "2" (seconds) -> ns. */
static int
linkemu_parse_time(const char *s, uint64_t *out)
{
    char    *end;
    double   v, scale;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0 || !isfinite(v)) {
        return SW_ERROR;
    }
    if (*end == '\0' || strcmp(end, "s") == 0) {
        scale = 1e9;
    } else if (strcmp(end, "ms") == 0) {
        scale = 1e6;
    } else if (strcmp(end, "us") == 0) {
        scale = 1e3;
    } else {
        return SW_ERROR;
    }
    if (v * scale > 1e18) {
        return SW_ERROR;
    }
    *out = (uint64_t) llround(v * scale);
    return SW_OK;
}

/* "2400", "64k", "1.2M" -> a count (decimal multipliers, as for bit/s). */
static int
linkemu_parse_count(const char *s, uint64_t *out)
{
    char    *end;
    double   v, scale = 1;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0 || !isfinite(v)) {
        return SW_ERROR;
    }
    if (*end == 'k' || *end == 'K') {
        scale = 1e3;
        end++;
    } else if (*end == 'M') {
        scale = 1e6;
        end++;
    } else if (*end == 'G') {
        scale = 1e9;
        end++;
    }
    if (*end != '\0' || v * scale > 1e15) {
        return SW_ERROR;
    }
    *out = (uint64_t) llround(v * scale);
    return SW_OK;
}

static int
linkemu_parse_percent(const char *s, double *out)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(s, &end);
    if (*end == '%') {
        end++;
    }
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 100)) {
        return SW_ERROR;
    }
    *out = v / 100.0;
    return SW_OK;
}

static int
linkemu_parse_outage(const char *s, uint64_t *down, uint64_t *every)
{
    char        buf[64];
    char       *colon;

    if (strlen(s) >= sizeof(buf)) {
        return SW_ERROR;
    }
    strcpy(buf, s);
    colon = strchr(buf, ':');
    if (colon == NULL) {
        return SW_ERROR;
    }
    *colon = '\0';
    if (linkemu_parse_time(buf, down) != SW_OK
        || linkemu_parse_time(colon + 1, every) != SW_OK
        || *down == 0 || *down >= *every
        || *every - *down < LINKEMU_NS_PER_MS)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

/* ------------------------------------------------------------- stats */

static void
linkemu_write_stats(linkemu_main_t *m)
{
    char   json[LINKEMU_STATS_MAX];
    char  *tmp;
    FILE  *fp;
    size_t n, plen;

    n = linkemu_stats_json(&m->emu, json, sizeof(json));
    if (m->stats_path == NULL) {
        sw_log_info("linkemu: stats %s", json);
        return;
    }
    /* Through a temporary file, so a reader never sees half of it. */
    plen = strlen(m->stats_path);
    tmp = sw_alloc(plen + 5);
    memcpy(tmp, m->stats_path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        sw_log_error("linkemu: %s: %s", tmp, strerror(errno));
        free(tmp);
        return;
    }
    fwrite(json, 1, n, fp);
    fputc('\n', fp);
    if (fclose(fp) != 0 || rename(tmp, m->stats_path) != 0) {
        sw_log_error("linkemu: %s: %s", m->stats_path, strerror(errno));
    }
    free(tmp);
}

/* ------------------------------------------------------ control socket */

static void
linkemu_client_closed(uv_handle_t *h)
{
    linkemu_client_t   *c = h->data;
    linkemu_client_t  **pp;

    for (pp = &c->m->clients; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c);
}

static void
linkemu_client_close(linkemu_client_t *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *) &c->pipe, linkemu_client_closed);
    }
}

static void
linkemu_written(uv_write_t *req, int status)
{
    free(req->data);
}

static void
linkemu_reply(linkemu_client_t *c, const char *text)
{
    linkemu_wreq_t  *w;
    uv_buf_t         buf;
    size_t           len = strlen(text);

    if (c->closing) {
        return;
    }
    w = sw_alloc(sizeof(*w) + len + 1);
    memcpy(w->data, text, len);
    w->data[len] = '\n';
    w->len = len + 1;
    w->req.data = w;
    buf = uv_buf_init(w->data, (unsigned) w->len);
    if (uv_write(&w->req, (uv_stream_t *) &c->pipe, &buf, 1,
                 linkemu_written) != 0)
    {
        free(w);
        linkemu_client_close(c);
    }
}

static void
linkemu_command(linkemu_client_t *c, char *line)
{
    linkemu_main_t  *m = c->m;
    char             json[LINKEMU_STATS_MAX];
    char            *cmd, *arg, *save;
    uint64_t         t = 0;

    cmd = strtok_r(line, " \t\r", &save);
    arg = strtok_r(NULL, " \t\r", &save);
    if (cmd == NULL) {
        return;
    }
    if (strcmp(cmd, "down") == 0) {
        if (arg != NULL && linkemu_parse_time(arg, &t) != SW_OK) {
            linkemu_reply(c, "error bad duration");
            return;
        }
        linkemu_set_down(&m->emu, t);
        linkemu_reply(c, "ok");
    } else if (strcmp(cmd, "up") == 0) {
        linkemu_set_up(&m->emu);
        linkemu_reply(c, linkemu_is_up(&m->emu)
                         ? "ok" : "ok (scheduled outage continues)");
    } else if (strcmp(cmd, "stats") == 0) {
        linkemu_stats_json(&m->emu, json, sizeof(json));
        linkemu_reply(c, json);
        if (m->stats_path != NULL) {
            linkemu_write_stats(m);
        }
    } else if (strcmp(cmd, "quit") == 0) {
        linkemu_reply(c, "ok");
        linkemu_stop(m);
    } else {
        linkemu_reply(c, "error unknown command (down [TIME], up, stats, "
                         "quit)");
    }
}

static void
linkemu_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    linkemu_client_t  *c = h->data;

    buf->base = c->line + c->len;
    buf->len = sizeof(c->line) - c->len;
}

static void
linkemu_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    linkemu_client_t  *c = s->data;
    char              *nl;
    size_t             used;

    if (n < 0) {
        linkemu_client_close(c);
        return;
    }
    c->len += (size_t) n;
    while (!c->closing
           && (nl = memchr(c->line, '\n', c->len)) != NULL)
    {
        *nl = '\0';
        used = (size_t) (nl - c->line) + 1;
        linkemu_command(c, c->line);
        if (c->closing) {
            return;
        }
        memmove(c->line, c->line + used, c->len - used);
        c->len -= used;
    }
    if (c->len == sizeof(c->line)) {
        linkemu_reply(c, "error line too long");
        linkemu_client_close(c);
    }
}

static void
linkemu_accept(uv_stream_t *server, int status)
{
    linkemu_main_t    *m = server->data;
    linkemu_client_t  *c;

    if (status < 0 || m->stopping) {
        return;
    }
    c = sw_calloc(1, sizeof(*c));
    c->m = m;
    uv_pipe_init(&m->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->next = m->clients;
    m->clients = c;
    if (uv_accept(server, (uv_stream_t *) &c->pipe) != 0
        || uv_read_start((uv_stream_t *) &c->pipe, linkemu_alloc_cb,
                         linkemu_client_read) != 0)
    {
        linkemu_client_close(c);
    }
}

static int
linkemu_control_open(linkemu_main_t *m)
{
    int  rc;

    (void) unlink(m->control_path);
    uv_pipe_init(&m->loop, &m->control, 0);
    m->control.data = m;
    m->control_open = true;
    rc = uv_pipe_bind(&m->control, m->control_path);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *) &m->control, 4, linkemu_accept);
    }
    if (rc != 0) {
        sw_log_error("linkemu: control socket %s: %s", m->control_path,
                     uv_strerror(rc));
        return SW_ERROR;
    }
    return SW_OK;
}

/* ------------------------------------------------------------- signals */

static void
linkemu_signal(uv_signal_t *s, int signum)
{
    linkemu_main_t  *m = s->data;

    if (signum == SIGUSR1) {
        linkemu_write_stats(m);
        return;
    }
    sw_log_info("linkemu: signal %d, stopping", signum);
    linkemu_stop(m);
}

/* Closes every handle: uv_run returns once they are gone. */
static void
linkemu_stop(linkemu_main_t *m)
{
    linkemu_client_t  *c;
    int                i;

    if (m->stopping) {
        return;
    }
    m->stopping = true;
    linkemu_write_stats(m);
    linkemu_close(&m->emu);
    for (c = m->clients; c != NULL; c = c->next) {
        linkemu_client_close(c);
    }
    if (m->control_open) {
        uv_close((uv_handle_t *) &m->control, NULL);
    }
    for (i = 0; i < 3; i++) {
        uv_close((uv_handle_t *) &m->sig[i], NULL);
    }
}

/* ---------------------------------------------------------------- main */

enum {
    LINKEMU_OPT_LIST = 256, LINKEMU_OPT_RATE, LINKEMU_OPT_DELAY,
    LINKEMU_OPT_JITTER, LINKEMU_OPT_REORDER, LINKEMU_OPT_LOSS,
    LINKEMU_OPT_MTU, LINKEMU_OPT_QUEUE, LINKEMU_OPT_HALF, LINKEMU_OPT_FULL,
    LINKEMU_OPT_TURN, LINKEMU_OPT_HOLD, LINKEMU_OPT_OUTAGE,
    LINKEMU_OPT_SEED, LINKEMU_OPT_NS_A, LINKEMU_OPT_NS_B,
    LINKEMU_OPT_ADDR_A, LINKEMU_OPT_ADDR_B, LINKEMU_OPT_DEV,
    LINKEMU_OPT_IPV6, LINKEMU_OPT_KEEP, LINKEMU_OPT_CARRIER
};

static const struct option linkemu_options[] = {
    { "profile", required_argument, NULL, 'p' },
    { "list-profiles", no_argument, NULL, LINKEMU_OPT_LIST },
    { "rate", required_argument, NULL, LINKEMU_OPT_RATE },
    { "delay", required_argument, NULL, LINKEMU_OPT_DELAY },
    { "jitter", required_argument, NULL, LINKEMU_OPT_JITTER },
    { "reorder", no_argument, NULL, LINKEMU_OPT_REORDER },
    { "loss", required_argument, NULL, LINKEMU_OPT_LOSS },
    { "mtu", required_argument, NULL, LINKEMU_OPT_MTU },
    { "queue", required_argument, NULL, LINKEMU_OPT_QUEUE },
    { "half-duplex", no_argument, NULL, LINKEMU_OPT_HALF },
    { "full-duplex", no_argument, NULL, LINKEMU_OPT_FULL },
    { "turnaround", required_argument, NULL, LINKEMU_OPT_TURN },
    { "max-hold", required_argument, NULL, LINKEMU_OPT_HOLD },
    { "outage", required_argument, NULL, LINKEMU_OPT_OUTAGE },
    { "carrier", no_argument, NULL, LINKEMU_OPT_CARRIER },
    { "seed", required_argument, NULL, LINKEMU_OPT_SEED },
    { "ns-a", required_argument, NULL, LINKEMU_OPT_NS_A },
    { "ns-b", required_argument, NULL, LINKEMU_OPT_NS_B },
    { "addr-a", required_argument, NULL, LINKEMU_OPT_ADDR_A },
    { "addr-b", required_argument, NULL, LINKEMU_OPT_ADDR_B },
    { "dev", required_argument, NULL, LINKEMU_OPT_DEV },
    { "ipv6", no_argument, NULL, LINKEMU_OPT_IPV6 },
    { "keep", no_argument, NULL, LINKEMU_OPT_KEEP },
    { "control", required_argument, NULL, 'c' },
    { "stats", required_argument, NULL, 's' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

static int
linkemu_bad(const char *opt, const char *arg)
{
    fprintf(stderr, "skywave-linkemu: bad value for --%s: '%s'\n", opt, arg);
    return SW_ERROR;
}

/*
 * Two passes: the profile first, whatever its position, so that every
 * other option overrides it.
 */
static int
linkemu_options_parse(linkemu_main_t *m, int argc, char **argv)
{
    linkemu_conf_t           *conf = &m->emu.conf;
    const linkemu_profile_t  *p;
    const char               *name;
    uint64_t                  v;
    int                       opt, idx;

    conf->mtu = 1500;
    conf->queue = 6000;
    conf->seed = 1;
    m->side[0].ns = "swa";
    m->side[1].ns = "swb";
    m->side[0].addr = "10.77.0.1/30";
    m->side[1].addr = "10.77.0.2/30";
    m->side[0].dev = m->side[1].dev = "lemu0";

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "p:c:s:vh", linkemu_options,
                              NULL)) != -1)
    {
        if (opt == 'p') {
            p = linkemu_profile_find(optarg);
            if (p == NULL) {
                fprintf(stderr, "skywave-linkemu: unknown profile '%s' "
                        "(--list-profiles)\n", optarg);
                return SW_ERROR;
            }
            linkemu_conf_from_profile(conf, p);
        }
    }

    optind = 1;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "p:c:s:vh", linkemu_options,
                              &idx)) != -1)
    {
        name = opt >= LINKEMU_OPT_LIST ? linkemu_options[idx].name : "";
        switch (opt) {
        case 'p':
            break;
        case LINKEMU_OPT_LIST:
            for (p = linkemu_profiles(); p->name != NULL; p++) {
                printf("%-12s %s\n", p->name, p->help);
            }
            exit(0);
        case LINKEMU_OPT_RATE:
            if (linkemu_parse_count(optarg, &conf->rate) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_DELAY:
            if (linkemu_parse_time(optarg, &conf->delay) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_JITTER:
            if (linkemu_parse_time(optarg, &conf->jitter) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_REORDER:
            conf->reorder = true;
            break;
        case LINKEMU_OPT_LOSS:
            if (linkemu_parse_percent(optarg, &conf->loss) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_MTU:
            /* 68: the IPv4 minimum (RFC 791); 65535: the TUN maximum. */
            if (linkemu_parse_count(optarg, &v) != SW_OK
                || v < 68 || v > 65535)
            {
                return linkemu_bad(name, optarg);
            }
            conf->mtu = (unsigned) v;
            break;
        case LINKEMU_OPT_QUEUE:
            if (linkemu_parse_count(optarg, &v) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            conf->queue = (size_t) v;
            break;
        case LINKEMU_OPT_HALF:
            conf->half_duplex = true;
            break;
        case LINKEMU_OPT_FULL:
            conf->half_duplex = false;
            break;
        case LINKEMU_OPT_TURN:
            if (linkemu_parse_time(optarg, &conf->turnaround) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_HOLD:
            if (linkemu_parse_time(optarg, &conf->max_hold) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_OUTAGE:
            if (linkemu_parse_outage(optarg, &conf->outage_down,
                                     &conf->outage_every) != SW_OK)
            {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_CARRIER:
            conf->carrier = true;
            break;
        case LINKEMU_OPT_SEED:
            if (linkemu_parse_count(optarg, &conf->seed) != SW_OK) {
                return linkemu_bad(name, optarg);
            }
            break;
        case LINKEMU_OPT_NS_A:
            m->side[0].ns = optarg;
            break;
        case LINKEMU_OPT_NS_B:
            m->side[1].ns = optarg;
            break;
        case LINKEMU_OPT_ADDR_A:
            m->side[0].addr = optarg;
            break;
        case LINKEMU_OPT_ADDR_B:
            m->side[1].addr = optarg;
            break;
        case LINKEMU_OPT_DEV:
            if (strlen(optarg) >= 16) {     /* IFNAMSIZ */
                return linkemu_bad(name, optarg);
            }
            m->side[0].dev = m->side[1].dev = optarg;
            break;
        case LINKEMU_OPT_IPV6:
            m->ipv6 = true;
            break;
        case LINKEMU_OPT_KEEP:
            m->keep = true;
            break;
        case 'c':
            m->control_path = optarg;
            break;
        case 's':
            m->stats_path = optarg;
            break;
        case 'v':
            sw_log_set_level(SW_LOG_DEBUG);
            break;
        case 'h':
            linkemu_usage(stdout);
            exit(0);
        default:
            linkemu_usage(stderr);
            return SW_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "skywave-linkemu: unexpected argument '%s'\n",
                argv[optind]);
        return SW_ERROR;
    }
    if (strcmp(m->side[0].ns, m->side[1].ns) == 0) {
        fprintf(stderr, "skywave-linkemu: --ns-a and --ns-b must differ\n");
        return SW_ERROR;
    }
    return SW_OK;
}

int
main(int argc, char **argv)
{
    linkemu_main_t  m;
    linkemu_conf_t *c = &m.emu.conf;
    static const int signums[3] = { SIGINT, SIGTERM, SIGUSR1 };
    int             i, rc = 1;

    memset(&m, 0, sizeof(m));
    m.side[0].fd = m.side[1].fd = -1;
    if (linkemu_options_parse(&m, argc, argv) != SW_OK) {
        return 2;
    }
    /* A control client that hangs up must not kill the emulator. */
    signal(SIGPIPE, SIG_IGN);

    /* Namespaces first: setns() wants a process with one thread. */
    for (i = 0; i < 2; i++) {
        if (linkemu_side_setup(&m.side[i], c->mtu, m.ipv6) != SW_OK) {
            goto teardown;
        }
    }

    uv_loop_init(&m.loop);
    if (linkemu_init(&m.emu, &m.loop, m.side[0].fd, m.side[1].fd) != SW_OK) {
        goto loop_done;
    }
    for (i = 0; i < 3; i++) {
        uv_signal_init(&m.loop, &m.sig[i]);
        m.sig[i].data = &m;
        uv_signal_start(&m.sig[i], linkemu_signal, signums[i]);
    }
    if ((m.control_path != NULL && linkemu_control_open(&m) != SW_OK)
        || linkemu_start(&m.emu) != SW_OK)
    {
        linkemu_stop(&m);
        uv_run(&m.loop, UV_RUN_DEFAULT);
        goto loop_done;
    }

    sw_log_info("linkemu: %s %s <-> %s %s: %llu bit/s, delay %.3f s, "
                "jitter %.3f s, loss %.2f %%, mtu %u, queue %zu, %s duplex, "
                "turnaround %.3f s, outage %.1f/%.1f s, seed %llu",
                m.side[0].ns, m.side[0].addr, m.side[1].ns, m.side[1].addr,
                (unsigned long long) c->rate, c->delay / 1e9,
                c->jitter / 1e9, c->loss * 100, c->mtu, c->queue,
                c->half_duplex ? "half" : "full", c->turnaround / 1e9,
                c->outage_down / 1e9, c->outage_every / 1e9,
                (unsigned long long) c->seed);
    printf("ready\n");
    fflush(stdout);

    uv_run(&m.loop, UV_RUN_DEFAULT);
    rc = 0;

loop_done:
    linkemu_free(&m.emu);
    if (uv_loop_close(&m.loop) != 0) {
        sw_log_warn("linkemu: handles left open at exit");
    }
    if (m.control_path != NULL && m.control_open) {
        (void) unlink(m.control_path);
    }

teardown:
    for (i = 0; i < 2; i++) {
        linkemu_side_teardown(&m.side[i], m.keep);
    }
    return rc;
}
