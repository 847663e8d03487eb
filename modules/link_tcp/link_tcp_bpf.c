/*
 * The SYN and SYN-ACK timeout towards each peer.
 *
 * Linux starts every handshake with a 1 s retransmission timeout
 * (RFC 6298 §2.1, TCP_TIMEOUT_INIT), and only a BPF sock_ops program can
 * change it per connection (BPF_SOCK_OPS_TIMEOUT_INIT; no socket option
 * does).  On a half-duplex HF channel the handshake takes one turnaround
 * (3 s on hf-ip), so the connecting end resends its SYN and the
 * listening end its SYN-ACK two or three times each before either is
 * answered, and the late copies hold the channel while the connection
 * waits for its turn: 2 s of a 10.4 s cold start whose floor is 8.7 s
 * (doc/peer-links.md, "The handshake's timeout").
 *
 * So when the host lets us (Linux, a cgroup2 hierarchy, CAP_BPF and
 * CAP_NET_ADMIN, the server in a cgroup of its own, as under systemd),
 * a 32-instruction program is attached to the server's cgroup.  Only
 * sockets of processes in that cgroup run it, and it changes only
 * handshakes with an address in its map: the peers', each with the
 * timeouts link_tcp chose, one for our SYN and one for our SYN-ACK.
 * The attachment is a BPF link held by this process: it goes when the
 * server exits, however it exits.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/skywave.h>

#include "link_tcp_bpf.h"

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LINK_TCP_BPF_PEERS 256          /* map entries: addresses */

struct link_tcp_bpf_s {
    int    map;
    int    prog;
    int    link;
    double hz;                          /* the kernel's jiffies a second */
    struct {                            /* what the map holds */
        uint8_t  key[16];
        uint32_t v[2];
    }      set[LINK_TCP_BPF_PEERS];
    size_t n_set;
};

static int
link_tcp_bpf_sys(int cmd, union bpf_attr *attr)
{
    return (int) syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* One instruction (struct bpf_insn, linux/bpf.h). */
#define I(c, d, s, o, i) \
    { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) }
#define OPS(f) ((int16_t) offsetof(struct bpf_sock_ops, f))

/*
 * r6 = ctx; unless op == TIMEOUT_INIT: return 1 (the kernel's default).
 * key (16 bytes at r10-16) = the remote address, IPv4 as v4-mapped;
 * v = map[key]; if found, reply = v->syn for a connection of ours (a
 * full socket), v->synack for a peer's SYN (a request socket); jiffies,
 * 0 leaving the kernel's.  return 1.  Jump offsets count from the next
 * instruction.
 */
static int
link_tcp_bpf_load(int map, char *log, size_t log_size)
{
    const struct bpf_insn prog[] = {
        /*  0 */ I(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
        /*  1 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(op), 0),
        /*  2 */ I(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 27,
                   BPF_SOCK_OPS_TIMEOUT_INIT),                  /* -> 30 */
        /*  3 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(family), 0),
        /*  4 */ I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 6, AF_INET6), /* -> 11 */
        /*  5 */ I(BPF_ST | BPF_MEM | BPF_W, 10, 0, -16, 0),
        /*  6 */ I(BPF_ST | BPF_MEM | BPF_W, 10, 0, -12, 0),
        /*  7 */ I(BPF_ST | BPF_MEM | BPF_W, 10, 0, -8,
                   (int32_t) htonl(0xffff)),
        /*  8 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(remote_ip4), 0),
        /*  9 */ I(BPF_STX | BPF_MEM | BPF_W, 10, 2, -4, 0),
        /* 10 */ I(BPF_JMP | BPF_JA, 0, 0, 8, 0),                 /* -> 19 */
        /* 11 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(remote_ip6[0]), 0),
        /* 12 */ I(BPF_STX | BPF_MEM | BPF_W, 10, 2, -16, 0),
        /* 13 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(remote_ip6[1]), 0),
        /* 14 */ I(BPF_STX | BPF_MEM | BPF_W, 10, 2, -12, 0),
        /* 15 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(remote_ip6[2]), 0),
        /* 16 */ I(BPF_STX | BPF_MEM | BPF_W, 10, 2, -8, 0),
        /* 17 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 6, OPS(remote_ip6[3]), 0),
        /* 18 */ I(BPF_STX | BPF_MEM | BPF_W, 10, 2, -4, 0),
        /* 19 */ I(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map),
        /* 20 */ I(0, 0, 0, 0, 0),
        /* 21 */ I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        /* 22 */ I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -16),
        /* 23 */ I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
        /* 24 */ I(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 5, 0),        /* -> 30 */
        /* 25 */ I(BPF_LDX | BPF_MEM | BPF_W, 3, 6, OPS(is_fullsock), 0),
        /* 26 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 0, 0, 0),        /* syn */
        /* 27 */ I(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 1, 0),        /* -> 29 */
        /* 28 */ I(BPF_LDX | BPF_MEM | BPF_W, 2, 0, 4, 0),        /* synack */
        /* 29 */ I(BPF_STX | BPF_MEM | BPF_W, 6, 2, OPS(reply), 0),
        /* 30 */ I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1),
        /* 31 */ I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    union bpf_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCK_OPS;
    attr.insns = (uint64_t) (uintptr_t) prog;
    attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
    attr.license = (uint64_t) (uintptr_t) "Skywave"; /* no GPL helper */
    attr.log_buf = (uint64_t) (uintptr_t) log;
    attr.log_size = (uint32_t) log_size;
    attr.log_level = 1;
    strncpy(attr.prog_name, "sw_syn_rto", sizeof(attr.prog_name) - 1);
    log[0] = '\0';
    return link_tcp_bpf_sys(BPF_PROG_LOAD, &attr);
}

/*
 * Our cgroup's directory: the "0::" line of /proc/self/cgroup under the
 * cgroup2 mount of /proc/self/mountinfo.  NULL with why set when there
 * is none, or when it is the root (every process on the host).
 */
static char *
link_tcp_bpf_cgroup(const char **why)
{
    char  line[4096], path[4096] = "", mnt[4096] = "", root[4096] = "";
    char *dir, *sep;
    FILE *fp;

    if ((fp = fopen("/proc/self/cgroup", "r")) == NULL) {
        *why = "no /proc/self/cgroup";
        return NULL;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(path, sizeof(path), "%s", line + 3);
        }
    }
    fclose(fp);
    if (path[0] != '/') {
        *why = "the server is in no cgroup2 group";
        return NULL;
    }
    if (strcmp(path, "/") == 0) {
        *why = "the server is in the root cgroup (a program there would "
               "see every process's connections): run it in a group of "
               "its own, as systemd does";
        return NULL;
    }
    if ((fp = fopen("/proc/self/mountinfo", "r")) == NULL) {
        *why = "no /proc/self/mountinfo";
        return NULL;
    }
    while (mnt[0] == '\0' && fgets(line, sizeof(line), fp) != NULL) {
        char r[4096], m[4096];

        /* id parent dev root mountpoint opts... - fstype source opts */
        sep = strstr(line, " - cgroup2 ");
        if (sep != NULL
            && sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) == 2)
        {
            memcpy(root, r, sizeof(root));
            memcpy(mnt, m, sizeof(mnt));
        }
    }
    fclose(fp);
    if (mnt[0] == '\0') {
        *why = "no cgroup2 hierarchy is mounted";
        return NULL;
    }
    /* the mount may show a subtree: path is relative to the hierarchy */
    if (strcmp(root, "/") != 0) {
        size_t n = strlen(root);

        if (strncmp(path, root, n) != 0 || (path[n] != '/' && path[n]))
        {
            *why = "the server's cgroup is outside the mounted cgroup2 "
                   "subtree";
            return NULL;
        }
        memmove(path, path + n, strlen(path + n) + 1);
    }
    dir = sw_alloc(strlen(mnt) + strlen(path) + 1);
    strcpy(dir, mnt);
    strcat(dir, path);
    return dir;
}

link_tcp_bpf_t *
link_tcp_bpf_open(void)
{
    link_tcp_bpf_t  *b;
    struct timespec  tick;
    union bpf_attr   attr;
    const char      *why = NULL;
    char            *dir, log[4096];
    int              cg, err = 0;

    if (clock_getres(CLOCK_MONOTONIC_COARSE, &tick) != 0
        || tick.tv_sec != 0 || tick.tv_nsec <= 0)
    {
        /* the coarse clock ticks once a jiffy */
        sw_log_info("link_tcp: the kernel's tick is unknown: handshakes "
                    "keep its 1 s first timeout");
        return NULL;
    }
    if ((dir = link_tcp_bpf_cgroup(&why)) == NULL) {
        sw_log_info("link_tcp: handshakes keep the kernel's 1 s first "
                    "timeout: %s", why);
        return NULL;
    }
    b = sw_calloc(1, sizeof(*b));
    b->map = b->prog = b->link = -1;
    b->hz = 1e9 / (double) tick.tv_nsec;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_HASH;
    attr.key_size = 16;
    attr.value_size = 8;                /* syn, synack */
    attr.max_entries = LINK_TCP_BPF_PEERS;
    strncpy(attr.map_name, "sw_syn_rto", sizeof(attr.map_name) - 1);
    cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) {
        why = "cannot open the server's cgroup";
        err = errno;
    } else if ((b->map = link_tcp_bpf_sys(BPF_MAP_CREATE, &attr)) < 0) {
        why = "cannot create a BPF map";
        err = errno;
    } else if ((b->prog = link_tcp_bpf_load(b->map, log, sizeof(log)))
               < 0)
    {
        why = "the kernel refused the program";
        err = errno;
        sw_log_debug("link_tcp: verifier: %s", log);
    } else {
        memset(&attr, 0, sizeof(attr));
        attr.link_create.prog_fd = (uint32_t) b->prog;
        attr.link_create.target_fd = (uint32_t) cg;
        attr.link_create.attach_type = BPF_CGROUP_SOCK_OPS;
        if ((b->link = link_tcp_bpf_sys(BPF_LINK_CREATE, &attr)) < 0) {
            why = "cannot attach to the server's cgroup";
            err = errno;
        }
    }
    if (why != NULL) {
        sw_log_info("link_tcp: handshakes keep the kernel's 1 s first "
                    "timeout: %s %s: %s%s", why, dir, strerror(err),
                    err == EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)"
                    : "");
        if (cg >= 0) {
            close(cg);
        }
        free(dir);
        link_tcp_bpf_close(b);
        return NULL;
    }
    sw_log_info("link_tcp: handshake timeouts towards peers set by a BPF "
                "program on cgroup %s", dir);
    close(cg);
    free(dir);
    return b;
}

/* Seconds as jiffies; the kernel caps them at TCP_RTO_MAX (120 s). */
static uint32_t
link_tcp_bpf_jiffies(const link_tcp_bpf_t *b, double seconds)
{
    return seconds <= 0 ? 0
           : (uint32_t) ((seconds > 120 ? 120 : seconds) * b->hz);
}

void
link_tcp_bpf_set(link_tcp_bpf_t *b, const struct sockaddr_storage *addr,
                 double syn, double synack)
{
    union bpf_attr attr;
    uint8_t        key[16];
    uint32_t       v[2];
    size_t         i;

    if (b == NULL) {
        return;
    }
    memset(key, 0, sizeof(key));
    if (addr->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *) addr)->sin_addr, 4);
    } else if (addr->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *) addr)->sin6_addr, 16);
    } else {
        return;
    }
    v[0] = link_tcp_bpf_jiffies(b, syn);
    v[1] = link_tcp_bpf_jiffies(b, synack);
    for (i = 0; i < b->n_set; i++) {
        if (memcmp(b->set[i].key, key, sizeof(key)) == 0) {
            break;
        }
    }
    if (i < b->n_set && memcmp(b->set[i].v, v, sizeof(v)) == 0) {
        return;                         /* as it is (each tick asks) */
    }
    if (i == LINK_TCP_BPF_PEERS) {
        return;                         /* the map is full as well */
    }
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = (uint32_t) b->map;
    attr.key = (uint64_t) (uintptr_t) key;
    attr.value = (uint64_t) (uintptr_t) v;
    if (v[0] == 0 && v[1] == 0) {
        (void) link_tcp_bpf_sys(BPF_MAP_DELETE_ELEM, &attr);  /* or none */
    } else if (link_tcp_bpf_sys(BPF_MAP_UPDATE_ELEM, &attr) != 0) {
        sw_log_debug("link_tcp: BPF map update: %s", strerror(errno));
        return;                         /* tried again at the next ask */
    }
    if (i == b->n_set) {
        memcpy(b->set[i].key, key, sizeof(key));
        b->n_set++;
    }
    memcpy(b->set[i].v, v, sizeof(v));
}

void
link_tcp_bpf_close(link_tcp_bpf_t *b)
{
    if (b == NULL) {
        return;
    }
    if (b->link >= 0) {
        close(b->link);                 /* detaches the program */
    }
    if (b->prog >= 0) {
        close(b->prog);
    }
    if (b->map >= 0) {
        close(b->map);
    }
    free(b);
}

#else /* !__linux__ */

link_tcp_bpf_t *
link_tcp_bpf_open(void)
{
    return NULL;
}

void
link_tcp_bpf_set(link_tcp_bpf_t *b, const struct sockaddr_storage *addr,
                 double syn, double synack)
{
    (void) b;
    (void) addr;
    (void) syn;
    (void) synack;
}

void
link_tcp_bpf_close(link_tcp_bpf_t *b)
{
    (void) b;
}

#endif
