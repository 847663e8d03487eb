/*
 * Namespaces and TUN devices for skywave-linkemu.
 *
 * Each side is a network namespace (made with `ip netns add` if absent, so
 * `ip netns exec NAME ...` finds it) holding one TUN device.  The device is
 * created from inside the namespace (setns, open /dev/net/tun, TUNSETIFF,
 * setns back): a TUN device belongs to the namespace its file was opened
 * in, and the descriptor keeps working from ours.  Addresses, MTU and link
 * state are set with `ip -n`, which is what an operator would type.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/if_tun.h>

#include <skywave/sw_core.h>
#include <skywave/sw_log.h>

#include "linkemu.h"

#define LINKEMU_NETNS_DIR "/run/netns"

/* Runs argv (a NULL-terminated list) and waits; SW_OK if it exited 0. */
static int
linkemu_run(char *const argv[])
{
    pid_t  pid;
    int    status;

    pid = fork();
    if (pid < 0) {
        sw_log_error("linkemu: fork: %s", strerror(errno));
        return SW_ERROR;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "linkemu: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return SW_ERROR;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        sw_log_error("linkemu: '%s %s %s %s ...' failed", argv[0], argv[1],
                     argv[2] ? argv[2] : "", argv[2] && argv[3] ? argv[3] : "");
        return SW_ERROR;
    }
    return SW_OK;
}

static int
linkemu_ip(const char *ns, const char *a1, const char *a2, const char *a3,
    const char *a4, const char *a5, const char *a6)
{
    char *const  argv[] = {
        (char *) "ip", (char *) "-n", (char *) ns, (char *) a1, (char *) a2,
        (char *) a3, (char *) a4, (char *) a5, (char *) a6, NULL
    };

    return linkemu_run(argv);
}

static bool
linkemu_ns_exists(const char *ns)
{
    char         path[PATH_MAX];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", LINKEMU_NETNS_DIR, ns);
    return stat(path, &st) == 0;
}

/* Writes value to a sysctl file of the current namespace; best effort. */
static void
linkemu_sysctl(const char *path, const char *value)
{
    int  fd;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return;     /* IPv6 compiled out: nothing to turn off */
    }
    if (write(fd, value, strlen(value)) < 0) {
        sw_log_warn("linkemu: %s: %s", path, strerror(errno));
    }
    close(fd);
}

/* Opens the TUN device from inside the side's namespace. */
static int
linkemu_tun_open(linkemu_side_t *side, bool ipv6)
{
    char          path[PATH_MAX];
    struct ifreq  ifr;
    int           home, target, fd = -1;

    home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "%s/%s", LINKEMU_NETNS_DIR, side->ns);
    target = open(path, O_RDONLY | O_CLOEXEC);
    if (home < 0 || target < 0) {
        sw_log_error("linkemu: open namespace %s: %s", side->ns,
                     strerror(errno));
        goto done;
    }
    if (setns(target, CLONE_NEWNET) != 0) {
        sw_log_error("linkemu: setns %s: %s", side->ns, strerror(errno));
        goto done;
    }

    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        sw_log_error("linkemu: /dev/net/tun: %s", strerror(errno));
    } else {
        memset(&ifr, 0, sizeof(ifr));
        /* Bare IP packets: no packet-information header to strip. */
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", side->dev);
        if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
            sw_log_error("linkemu: TUNSETIFF %s in %s: %s", side->dev,
                         side->ns, strerror(errno));
            close(fd);
            fd = -1;
        } else if (!ipv6) {
            /*
             * Otherwise the kernel sends router solicitations and MLD
             * reports over a 2400 bit/s link and into the counters.
             */
            snprintf(path, sizeof(path),
                     "/proc/sys/net/ipv6/conf/%s/disable_ipv6", side->dev);
            linkemu_sysctl(path, "1");
        }
    }

    if (setns(home, CLONE_NEWNET) != 0) {
        /* Staying in the wrong namespace would be worse than stopping. */
        sw_log_error("linkemu: setns back: %s", strerror(errno));
        abort();
    }

done:
    if (home >= 0) {
        close(home);
    }
    if (target >= 0) {
        close(target);
    }
    return fd;
}

int
linkemu_side_setup(linkemu_side_t *side, unsigned mtu, bool ipv6)
{
    char         mtus[16];
    char *const  add[] = {
        (char *) "ip", (char *) "netns", (char *) "add", (char *) side->ns,
        NULL
    };

    side->fd = -1;
    side->created = false;
    if (!linkemu_ns_exists(side->ns)) {
        if (linkemu_run(add) != SW_OK) {
            return SW_ERROR;
        }
        side->created = true;
    }

    side->fd = linkemu_tun_open(side, ipv6);
    if (side->fd < 0) {
        return SW_ERROR;
    }

    snprintf(mtus, sizeof(mtus), "%u", mtu);
    if (linkemu_ip(side->ns, "link", "set", "lo", "up", NULL, NULL) != SW_OK
        || linkemu_ip(side->ns, "link", "set", "dev", side->dev, "mtu",
                      mtus) != SW_OK
        || linkemu_ip(side->ns, "addr", "add", side->addr, "dev", side->dev,
                      NULL) != SW_OK
        || linkemu_ip(side->ns, "link", "set", "dev", side->dev, "up",
                      NULL) != SW_OK)
    {
        return SW_ERROR;
    }
    return SW_OK;
}

void
linkemu_side_teardown(linkemu_side_t *side, bool keep)
{
    char *const  del[] = {
        (char *) "ip", (char *) "netns", (char *) "delete", (char *) side->ns,
        NULL
    };

    /* Closing the descriptor removes the (non-persistent) TUN device. */
    if (side->fd >= 0) {
        close(side->fd);
        side->fd = -1;
    }
    if (side->created && !keep) {
        (void) linkemu_run(del);
        side->created = false;
    }
}
