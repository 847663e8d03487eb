/*
 * mod_link_tcp: the XEP-0361 transport over TCP.  It listens for peers,
 * connects to them, and identifies an inbound connection by its source
 * address (XEP-0361 §5: "validation of source IP"); the link layer does
 * everything else.  TLS with pinned certificates is a later addition.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <net/if.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <sys/time.h>
#endif

#include <skywave/skywave.h>
#include <skywave/sw_link.h>

#include "link_tcp_bpf.h"

#define MOD_LINK_TCP_MAX_LISTENERS 8
/* Attempts per link kept open after their deadline, the newest included
 * (more, up to the _MAX, when the cadence is short: each must live two
 * round trips): each still retransmits its SYN on TCP's own schedule. */
#define MOD_LINK_TCP_ATTEMPTS      3
#define MOD_LINK_TCP_ATTEMPTS_MAX  32
#define MOD_LINK_TCP_IFACES        64   /* interfaces whose state we keep */
#define MOD_LINK_TCP_LINKS         64   /* links whose TCP progress we keep */

typedef struct {
    const char *const *interfaces;
    int64_t            port;            /* ours; 0: do not listen */
    const char        *address;         /* the peer's (Peer scope) */
    int64_t            peer_port;
    double             connect_timeout;
    double             syn_timeout;     /* 0: automatic */
    bool               fastopen;
} mod_link_tcp_conf_t;

typedef struct mod_link_tcp_attempt_s mod_link_tcp_attempt_t;

typedef struct {
    sw_module_ctx_t        *mc;
    sw_listener_t          *listeners[MOD_LINK_TCP_MAX_LISTENERS];
    size_t                  n_listeners;
    mod_link_tcp_attempt_t *attempts;   /* connects in flight */
    sw_log_rl_t             rl_unknown; /* connections nobody expects */
    struct mod_link_tcp_nl_s *nl;       /* netlink: interfaces, routes */
    link_tcp_bpf_t         *bpf;        /* handshake timeouts; or NULL */
    bool                    bpf_tried;  /* loaded (or not) at start */
    struct {                            /* mod_link_tcp_stalled */
        const sw_link_t *link;
        const sw_conn_t *conn;
        uint64_t         acked;         /* tcpi_bytes_acked */
        uint32_t         retrans;       /* tcpi_total_retrans then */
        bool             said;          /* logged its probe */
    }                       progress[MOD_LINK_TCP_LINKS];
    uint64_t                nl_last;    /* loop ms of the last nudge */
    struct {
        int  index;
        bool running;
    }                       ifaces[MOD_LINK_TCP_IFACES];
    size_t                  n_ifaces;
} mod_link_tcp_t;

struct mod_link_tcp_attempt_s {
    mod_link_tcp_attempt_t *next;
    uv_connect_t            req;
    uv_tcp_t               *tcp;
    uv_timer_t             *timer;      /* connect deadline; NULL after */
    sw_link_t              *link;
    mod_link_tcp_t         *t;          /* NULL once cancelled */
    bool                    late;       /* past its deadline, kept */
    double                  deadline;   /* s it ran alone */
};

static void
mod_link_tcp_forget(mod_link_tcp_attempt_t *a)
{
    mod_link_tcp_attempt_t **pp;

    if (a->t == NULL) {
        return;
    }
    for (pp = &a->t->attempts; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
}

static void
mod_link_tcp_free_handle(uv_handle_t *h)
{
    free(h);
}

/* Connections are handed to the link layer, which replaces these. */
static void
mod_link_tcp_closed(sw_conn_t *c, int error, const char *reason, void *ud)
{
}

static const sw_conn_cb_t mod_link_tcp_cb = {
    .closed = mod_link_tcp_closed,
};

/* Closes an attempt in flight; its connect callback (UV_ECANCELED)
 * frees it. */
static void
mod_link_tcp_cancel(mod_link_tcp_attempt_t *a)
{
    mod_link_tcp_forget(a);
    a->t = NULL;
    uv_close((uv_handle_t *) a->tcp, mod_link_tcp_free_handle);
    if (a->timer != NULL) {
        uv_close((uv_handle_t *) a->timer, mod_link_tcp_free_handle);
        a->timer = NULL;
    }
}

/*
 * A connect over a dead link is left to TCP's SYN back-off (1, 2, 4, 8...
 * seconds), so an attempt alone could cross the link a minute after it
 * returned.  At its deadline the attempt is kept (its SYN, or the answer
 * to it, may be on the way: abandoning it cost a round trip when the
 * SYN-ACK came half a second later) and the link starts the next at
 * once; the oldest of more than MOD_LINK_TCP_ATTEMPTS goes.  The first
 * to complete is the connection, the others are closed
 * (doc/peer-links.md).
 */
static void
mod_link_tcp_on_deadline(uv_timer_t *timer)
{
    mod_link_tcp_attempt_t *a = timer->data, *b, *oldest;
    sw_link_t              *link = a->link;
    mod_link_tcp_t         *t = a->t;
    size_t                  n, max = MOD_LINK_TCP_ATTEMPTS;
    double                  rtt = sw_link_path_rtt(link), life;

    /* each must outlive a round trip (two, measured; the connect timeout
     * while none is), or its SYN-ACK comes to nothing: with a short
     * peer_probe_interval more are kept */
    if (t != NULL && a->deadline > 0) {
        mod_link_tcp_conf_t *conf = sw_module_conf(t->mc,
                                                   sw_link_name(link));
        double               need;

        life = rtt > 0 ? 2 * rtt : conf->connect_timeout;
        need = life / a->deadline + 2;
        max = need > max ? (size_t) need : max;
        max = max > MOD_LINK_TCP_ATTEMPTS_MAX ? MOD_LINK_TCP_ATTEMPTS_MAX
                                              : max;
    }

    if (!sw_link_keep_unanswered(link)) {
        /* an idle end's: the peer opens when it has something to send */
        mod_link_tcp_cancel(a);
        sw_link_connect_unanswered(link);
        return;
    }
    a->late = true;
    uv_close((uv_handle_t *) a->timer, mod_link_tcp_free_handle);
    a->timer = NULL;
    for (;;) {
        n = 0;
        oldest = NULL;
        for (b = t->attempts; b != NULL; b = b->next) {
            if (b->link == link) {
                n++;
                oldest = b;     /* the list is newest first */
            }
        }
        if (n < max) {
            break;
        }
        mod_link_tcp_cancel(oldest);
    }
    sw_link_connect_unanswered(link);
}

static void
mod_link_tcp_on_connect(uv_connect_t *req, int status)
{
    mod_link_tcp_attempt_t *a = req->data, *b, *next;
    sw_conn_t              *conn;

    if (a->t == NULL) {
        /* cancelled: the handles are closing already */
        free(a);
        return;
    }
    mod_link_tcp_forget(a);
    if (a->timer != NULL) {
        uv_close((uv_handle_t *) a->timer, mod_link_tcp_free_handle);
    }
    if (status < 0) {
        if (!a->late) {
            sw_link_connect_failed(a->link, uv_strerror(status));
        } else {
            sw_log_debug("link %s: an earlier attempt ended: %s",
                         sw_link_name(a->link), uv_strerror(status));
        }
        uv_close((uv_handle_t *) a->tcp, mod_link_tcp_free_handle);
        free(a);
        return;
    }
    /* the first through is the connection: the others are not needed */
    for (b = a->t->attempts; b != NULL; b = next) {
        next = b->next;
        if (b->link == a->link) {
            mod_link_tcp_cancel(b);
        }
    }
    uv_tcp_nodelay(a->tcp, 1);
    conn = sw_conn_new(a->tcp, &mod_link_tcp_cb, NULL);
    sw_link_attach(a->link, conn, true);
    free(a);
}

/*
 * TCP Fast Open (RFC 7413): once the peer's kernel has given ours a
 * cookie, a new connection carries its first bytes (the <link/> hello
 * and the queue) in the SYN, and the peer delivers them before the
 * handshake completes: one round trip less after every outage.  With
 * TCP_FASTOPEN_CONNECT connect() returns at once and the SYN leaves
 * with the first write; the link layer's probing (an overdue ack opens
 * a fresh connection) replaces the connect deadline.  Without a cookie
 * the SYN asks for one and the handshake is the usual one.
 */
static void
mod_link_tcp_fastopen_connect(sw_link_t *link, uv_tcp_t *tcp)
{
#ifdef TCP_FASTOPEN_CONNECT
    uv_os_fd_t fd;
    int        on = 1;

    if (uv_fileno((uv_handle_t *) tcp, &fd) == 0
        && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on,
                      sizeof(on)) == 0)
    {
        return;
    }
#endif
    sw_log_debug("link %s: no TCP Fast Open on this system",
                 sw_link_name(link));
}

/*
 * The handshake's last ACK rides with our first bytes (the hello, or a
 * ClientHello) instead of going alone just before them: Linux holds it
 * up to 200 ms (TCP_DELACK_MAX) on a connecting socket with
 * TCP_DEFER_ACCEPT set, and the link layer writes as soon as the connect
 * completes.  One 52-byte packet less per handshake: 0.35 s of a 1200
 * bit/s channel, whose cold start it took to 1.2 times the floor
 * (doc/peer-links.md, "Reconnecting").  Elsewhere, or if the kernel
 * says no, the ACK goes alone as before.
 */
static void
mod_link_tcp_ack_with_data(uv_tcp_t *tcp)
{
#if defined(TCP_DEFER_ACCEPT) && defined(__linux__)
    uv_os_fd_t fd;
    int        on = 1;

    if (uv_fileno((uv_handle_t *) tcp, &fd) == 0) {
        (void) setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &on,
                          sizeof(on));
    }
#else
    (void) tcp;
#endif
}

#ifdef __linux__
/* Is the diagnostic's remote address the peer's (an IPv4 peer may show
 * as v4-mapped on a dual-stack listener)? */
static bool
mod_link_tcp_diag_is(const struct inet_diag_msg *m,
                     const struct sockaddr_storage *peer)
{
    if (peer->ss_family == AF_INET) {
        uint32_t a = ((const struct sockaddr_in *) peer)->sin_addr.s_addr;

        return m->idiag_family == AF_INET ? m->id.idiag_dst[0] == a
               : m->idiag_family == AF_INET6 && m->id.idiag_dst[0] == 0
                 && m->id.idiag_dst[1] == 0
                 && m->id.idiag_dst[2] == htonl(0xffff)
                 && m->id.idiag_dst[3] == a;
    }
    return m->idiag_family == AF_INET6
           && memcmp(m->id.idiag_dst,
                     &((const struct sockaddr_in6 *) peer)->sin6_addr,
                     16) == 0;
}

/* One family's SYN_RECV sockets (sock_diag(7)): any from peer to port? */
static bool
mod_link_tcp_half_open_in(int fd, int family,
                          const struct sockaddr_storage *peer, int port)
{
    struct {
        struct nlmsghdr         nlh;
        struct inet_diag_req_v2 r;
    }    req;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    bool found = false;

    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t) family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1U << TCP_SYN_RECV;
    if (send(fd, &req, sizeof(req), 0) < 0) {
        return false;
    }
    for (;;) {
        ssize_t          n = recv(fd, buf, sizeof(buf), 0);
        struct nlmsghdr *h = (struct nlmsghdr *) buf;

        if (n <= 0) {
            return found;                       /* error, or timed out */
        }
        for (; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n)) {
            const struct inet_diag_msg *m = NLMSG_DATA(h);

            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                return found;
            }
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*m))
                && m->idiag_state == TCP_SYN_RECV
                && ntohs(m->id.idiag_sport) == port
                && mod_link_tcp_diag_is(m, peer))
            {
                found = true;           /* read on to the end of the dump */
            }
        }
    }
}

/*
 * Whether a connection from the peer to our link port is half open here
 * (its SYN came and our SYN-ACK went; its ACK has not come): the peer is
 * opening.  An idle end asks before it opens its own beside it.  False
 * when the kernel's socket diagnostics cannot be had.  A dump of the
 * SYN_RECV sockets only, and only when an idle end would open: rare.
 */
static bool
mod_link_tcp_half_open(const struct sockaddr_storage *peer, int port)
{
    struct timeval tv = { 0, 200000 };
    bool           found;
    int            fd;

    if (port <= 0) {
        return false;
    }
    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
        return false;
    }
    (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    found = mod_link_tcp_half_open_in(fd, AF_INET, peer, port)
            || mod_link_tcp_half_open_in(fd, AF_INET6, peer, port);
    close(fd);
    return found;
}
#else
static bool
mod_link_tcp_half_open(const struct sockaddr_storage *peer, int port)
{
    (void) peer;
    (void) port;
    return false;
}
#endif

/*
 * The first SYN and SYN-ACK timeouts of handshakes with link's peer
 * (link_tcp_bpf.c).  link_tcp_syn_timeout sets both.  Otherwise our
 * SYN-ACK's is three path round trips once one is known (RFC 6298 §2.2
 * after a first sample), never under the kernel's 1 s (§2.4): the
 * peer's SYN came, so the path is up and an early copy only takes link
 * time (on half-duplex HF the handshake's last ACK comes two
 * turnarounds and the first bytes after our SYN-ACK, 8 s on hf-ip
 * against a path round trip of 4-5 s), and a lost one is answered again
 * at the peer's next SYN.  Our SYN's stays the kernel's: an attempt
 * made while the path may be down is a probe, and its retransmissions
 * are what finds the path back soonest.
 */
static void
mod_link_tcp_syn_timeout(mod_link_tcp_t *t, sw_link_t *link)
{
    mod_link_tcp_conf_t    *conf;
    struct sockaddr_storage sa;
    double                  rtt3;

    if (t->bpf == NULL || strcmp(sw_link_conf(link)->transport, "tcp") != 0)
    {
        return;
    }
    conf = sw_module_conf(t->mc, sw_link_name(link));
    if (conf->address == NULL || sw_ip_addr(conf->address, 0, &sa) != SW_OK)
    {
        return;
    }
    rtt3 = 3 * sw_link_path_rtt(link);
    if (conf->syn_timeout > 0) {
        link_tcp_bpf_set(t->bpf, &sa, conf->syn_timeout, conf->syn_timeout);
    } else {
        link_tcp_bpf_set(t->bpf, &sa, 0, rtt3 > 1 ? rtt3 : 0);
    }
}

/* At start: the program is loaded with the first TCP link. */
static void
mod_link_tcp_syn_timeout_each(sw_link_t *link, void *ud)
{
    mod_link_tcp_t *t = ud;

    if (strcmp(sw_link_conf(link)->transport, "tcp") != 0) {
        return;
    }
    if (!t->bpf_tried) {
        t->bpf_tried = true;
        t->bpf = link_tcp_bpf_open();
    }
    mod_link_tcp_syn_timeout(t, link);
}

static int
mod_link_tcp_connect(void *data, sw_link_t *link)
{
    mod_link_tcp_t         *t = data;
    mod_link_tcp_conf_t    *conf = sw_module_conf(t->mc, sw_link_name(link));
    struct sockaddr_storage sa;
    mod_link_tcp_attempt_t *a;
    double                  deadline;
    int                     rc;

    if (conf->address == NULL
        || sw_ip_addr(conf->address, (int) conf->peer_port, &sa) != SW_OK)
    {
        sw_log_error("link %s: link_tcp_address is not set to an IP "
                     "address", sw_link_name(link));
        return SW_ERROR;
    }
    if (!sw_link_keep_unanswered(link)
        && mod_link_tcp_half_open(&sa, (int) conf->port))
    {
        /* an idle end: the peer is opening, ours would only crowd the
         * link (doc/peer-links.md, "An idle end does not try a dead
         * path") */
        sw_link_peer_opening(link);
        return SW_OK;
    }
    mod_link_tcp_syn_timeout(t, link);
    a = sw_calloc(1, sizeof(*a));
    a->link = link;
    a->t = t;
    a->tcp = sw_alloc(sizeof(*a->tcp));
    uv_tcp_init_ex(sw_loop(), a->tcp, sa.ss_family);
    mod_link_tcp_ack_with_data(a->tcp);
    if (conf->fastopen
        && sw_link_conf(link)->protocol != SW_LINK_PROTOCOL_XEP0361
        && sw_link_may_replace(link))
    {
        /* RFC 7413 §6.3.1: a SYN's data may arrive twice (a duplicated
         * SYN).  Skywave's numbered link drops a repeat; a plain
         * XEP-0361 peer would deliver it twice, so not with one.  Nor
         * when it would replace a Fast Open connection of ours before
         * that could have been answered: this attempt is then an
         * ordinary one, attached only when it completes, so probes
         * never close each other unanswered. */
        mod_link_tcp_fastopen_connect(link, a->tcp);
    }
    a->req.data = a;
    rc = uv_tcp_connect(&a->req, a->tcp, (struct sockaddr *) &sa,
                        mod_link_tcp_on_connect);
    if (rc != 0) {
        sw_log_info("link %s: connect to %s: %s", sw_link_name(link),
                    conf->address, uv_strerror(rc));
        uv_close((uv_handle_t *) a->tcp, mod_link_tcp_free_handle);
        free(a);
        return SW_ERROR;
    }
    a->next = a->t->attempts;
    a->t->attempts = a;
    a->timer = sw_alloc(sizeof(*a->timer));
    uv_timer_init(sw_loop(), a->timer);
    a->timer->data = a;
    deadline = sw_link_connect_deadline(link);
    if (deadline <= 0 || deadline > conf->connect_timeout) {
        deadline = conf->connect_timeout;
    }
    a->deadline = deadline;
    uv_timer_start(a->timer, mod_link_tcp_on_deadline,
                   (uint64_t) (deadline * 1000), 0);
    return SW_OK;
}

/* Closes every attempt in flight to link's peer, saying why. */
static void
mod_link_tcp_cancel_all(mod_link_tcp_t *t, sw_link_t *link, const char *why)
{
    mod_link_tcp_attempt_t *a, *next;

    for (a = t->attempts; a != NULL; a = next) {
        next = a->next;
        if (a->link == link) {
            sw_log_debug("link %s: %s: closing an attempt of ours",
                         sw_link_name(link), why);
            mod_link_tcp_cancel(a);
        }
    }
}

/* The peer's own connection is live: our attempts are not needed. */
static void
mod_link_tcp_cancel_link(void *data, sw_link_t *link)
{
    mod_link_tcp_cancel_all(data, link, "the peer's connection is live");
}

#if defined(TCP_INFO) && defined(__linux__)
/* glibc's struct tcp_info stops before tcpi_min_rtt; the kernel's
 * (linux/tcp.h, which clashes with netinet/tcp.h) only ever grows at
 * its end, so its prefix is this. */
typedef struct {
    struct tcp_info base;
    uint64_t        pacing_rate, max_pacing_rate;
    uint64_t        bytes_acked, bytes_received;
    uint32_t        segs_out, segs_in, notsent_bytes;
    uint32_t        min_rtt;            /* microseconds */
} mod_link_tcp_info_t;
#endif

/*
 * Whether TCP itself finds the path dead: data the peer has not
 * acknowledged and a retransmission timeout or a tail loss probe since
 * the last acknowledgement (the kernel is in its back-off), or a
 * handshake not answered yet.  On a slow but live link that does not
 * happen, however late a reply is.
 */
static int
mod_link_tcp_stalled(void *data, sw_link_t *link, sw_conn_t *conn)
{
#if defined(TCP_INFO) && defined(__linux__)
    mod_link_tcp_t     *t = data;
    mod_link_tcp_info_t ti;
    socklen_t           len = sizeof(ti);
    int                 fd = sw_conn_fd(conn);
    size_t              i, free_i = MOD_LINK_TCP_LINKS;
    bool                probed = false;

    memset(&ti, 0, sizeof(ti));
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) {
        return -1;
    }
    /*
     * A tail loss probe (RFC 8985 §7: the last segment again after two
     * round trips without an ACK) is TCP's own judgement too, one
     * timeout before tcpi_retransmits counts one: on iridium a message
     * written into an outage went as a probe 7.4 s later and its
     * timeout 8.2 s after that, 6 s after the link was back.  tcp_info
     * counts no probes, only retransmissions in all (tcpi_total_retrans),
     * so: one since the ACKs last moved on, and no ACK at all for two
     * smoothed round trips (a fast retransmission on a lossy live path
     * comes with duplicate ACKs: not a dead path).  Where the timeout
     * comes sooner than the probe would (half-duplex HF, whose round
     * trips vary by turnarounds), there is no probe and nothing changes.
     */
    for (i = 0; i < MOD_LINK_TCP_LINKS; i++) {
        if (t->progress[i].link == link) {
            break;
        }
        if (t->progress[i].link == NULL && free_i == MOD_LINK_TCP_LINKS) {
            free_i = i;
        }
    }
    if (i == MOD_LINK_TCP_LINKS && free_i < MOD_LINK_TCP_LINKS) {
        i = free_i;
        t->progress[i].link = link;
        t->progress[i].conn = NULL;
    }
    if (i < MOD_LINK_TCP_LINKS && len >= sizeof(ti)) {
        if (t->progress[i].conn != conn || ti.base.tcpi_unacked == 0
            || t->progress[i].acked != ti.bytes_acked)
        {
            t->progress[i].conn = conn;
            t->progress[i].acked = ti.bytes_acked;
            t->progress[i].retrans = ti.base.tcpi_total_retrans;
            t->progress[i].said = false;
        }
        probed = ti.base.tcpi_total_retrans > t->progress[i].retrans
                 && (uint64_t) ti.base.tcpi_last_ack_recv * 1000
                    >= 2 * (uint64_t) ti.base.tcpi_rtt;
        if (probed && ti.base.tcpi_retransmits == 0
            && !t->progress[i].said)
        {
            t->progress[i].said = true;
            sw_log_info("link %s: TCP's tail loss probe is unanswered, "
                        "before its retransmission timeout (%u ms): the "
                        "path may be down", sw_link_name(link),
                        ti.base.tcpi_rto / 1000);
        }
    }
    /*
     * tcpi_retransmits: timeouts since the last ACK that moved on.  Not
     * sooner, e.g. "no ACK for the link's ack timeout": on half-duplex
     * HF a working link goes longer than that without an ACK while the
     * other side waits for its turn (tested), and a probe there takes
     * the channel from the traffic.  TCP's own timeout is the judge.
     */
    /* or a connection of ours whose SYN (with Fast Open, our first
     * stanzas with it) has not been answered */
    return ti.base.tcpi_state == TCP_SYN_SENT
           || (ti.base.tcpi_unacked > 0
               && (ti.base.tcpi_retransmits > 0 || probed));
#else
    (void) data;
    (void) link;
    (void) conn;
    return -1;
#endif
}

/*
 * The kernel's least round trip on this connection (tcpi_min_rtt, Linux
 * 4.6+, its own windowed minimum).  None before a sample: a handshake
 * whose SYN or SYN-ACK was retransmitted gives none (Karn), and the
 * kernel then reports ~0.
 */
static double
mod_link_tcp_path_rtt(void *data, sw_link_t *link, sw_conn_t *conn)
{
#if defined(TCP_INFO) && defined(__linux__)
    mod_link_tcp_info_t ti;
    socklen_t           len = sizeof(ti);
    int                 fd = sw_conn_fd(conn);

    /* asked each tick of a live link: the SYN-ACK timeout follows the
     * path round trip measured since (a no-op when it has not moved) */
    mod_link_tcp_syn_timeout(data, link);
    memset(&ti, 0, sizeof(ti));
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0
        || len < sizeof(ti) || ti.min_rtt == 0 || ti.min_rtt == ~0U)
    {
        return 0;
    }
    return ti.min_rtt / 1e6;
#else
    (void) data;
    (void) link;
    (void) conn;
    return 0;
#endif
}

typedef struct {
    mod_link_tcp_t *t;
    const char     *ip;
    sw_link_t      *found;
} mod_link_tcp_match_t;

/* A link's link_tcp_address in canonical form ("::1" and "0:0::1" are
 * one address); SW_DECLINED for another transport, SW_ERROR when unset
 * or not an address. */
static int
mod_link_tcp_addr(mod_link_tcp_t *t, sw_link_t *l, char *norm, size_t size)
{
    mod_link_tcp_conf_t    *conf = sw_module_conf(t->mc, sw_link_name(l));
    struct sockaddr_storage a;

    if (strcmp(sw_link_conf(l)->transport, "tcp") != 0) {
        return SW_DECLINED;
    }
    if (conf->address == NULL || sw_ip_addr(conf->address, 0, &a) != SW_OK) {
        return SW_ERROR;
    }
    if (a.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *) &a, norm, size);
    } else {
        uv_ip4_name((struct sockaddr_in *) &a, norm, size);
    }
    return SW_OK;
}

/* Which Peer has this source address? */
static void
mod_link_tcp_match(sw_link_t *l, void *ud)
{
    mod_link_tcp_match_t *m = ud;
    char                  norm[64];

    if (m->found == NULL
        && mod_link_tcp_addr(m->t, l, norm, sizeof(norm)) == SW_OK
        && strcmp(norm, m->ip) == 0)
    {
        m->found = l;
    }
}

typedef struct {
    mod_link_tcp_t *t;
    sw_hash_t      *seen;       /* address -> link */
    int             rc;
} mod_link_tcp_check_t;

/*
 * Every tcp Peer has an address of its own: the source address is what
 * tells the peers apart (XEP-0361 §5), so two Peers with one address would
 * hand one's connection (and its hello's ack) to the other.
 */
static void
mod_link_tcp_check_one(sw_link_t *l, void *ud)
{
    mod_link_tcp_check_t *ck = ud;
    sw_link_t            *other;
    char                  norm[64];
    int                   rc;

    rc = mod_link_tcp_addr(ck->t, l, norm, sizeof(norm));
    if (rc == SW_DECLINED) {
        return;
    }
    if (rc != SW_OK) {
        sw_log_error("link %s: link_tcp_address is not set to an IP "
                     "address", sw_link_name(l));
        ck->rc = SW_ERROR;
        return;
    }
    other = sw_hash_get(ck->seen, norm);
    if (other != NULL) {
        sw_log_error("link %s: link_tcp_address %s is Peer \"%s\"'s too: "
                     "each Peer needs an address of its own",
                     sw_link_name(l), norm, sw_link_name(other));
        ck->rc = SW_ERROR;
        return;
    }
    sw_hash_set(ck->seen, norm, l);
}

static int
mod_link_tcp_check(sw_module_ctx_t *mc)
{
    mod_link_tcp_check_t ck = { mc->data, sw_hash_new(8), SW_OK };

    sw_link_each(mod_link_tcp_check_one, &ck);
    sw_hash_free(ck.seen);
    return ck.rc;
}

static void
mod_link_tcp_on_accept(sw_listener_t *ls, uv_tcp_t *tcp, const char *ip,
                       void *ud)
{
    mod_link_tcp_t       *t = ud;
    mod_link_tcp_match_t  m;

    m.t = t;
    m.ip = ip;
    m.found = NULL;
    sw_link_each(mod_link_tcp_match, &m);
    if (m.found == NULL) {
        sw_log_rl_warn(&t->rl_unknown, "link_tcp: refused a connection "
                       "from %s: no Peer has that link_tcp_address", ip);
        sw_tcp_refuse(tcp);
        return;
    }
    if (sw_link_conf(m.found)->initiate == SW_LINK_INITIATE_US) {
        sw_log_rl_warn(&t->rl_unknown, "link %s: refused a connection "
                       "from %s: the agreement says only we open it",
                       sw_link_name(m.found), ip);
        sw_tcp_refuse(tcp);
        return;
    }
    sw_link_attach(m.found, sw_conn_new(tcp, &mod_link_tcp_cb, NULL), false);
}

/* The accepting side of TCP Fast Open: the kernel answers cookie
 * requests and hands over data that came in a SYN with a valid cookie.
 * Linux does so only with bit 2 of net.ipv4.tcp_fastopen set. */
static void
mod_link_tcp_fastopen_listen(sw_listener_t *ls, const char *iface)
{
#ifdef TCP_FASTOPEN
    int        fd = sw_listener_fd(ls);
    int        qlen = 16, mode = 0;
    FILE      *fp;

    if (fd < 0
        || setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen))
           != 0)
    {
        sw_log_warn("link_tcp: no TCP Fast Open on %s", iface);
        return;
    }
    fp = fopen("/proc/sys/net/ipv4/tcp_fastopen", "r");
    if (fp != NULL) {
        if (fscanf(fp, "%i", &mode) != 1) {
            mode = 0;
        }
        fclose(fp);
        if ((mode & 2) == 0) {
            /* the default: said, not warned */
            sw_log_info("link_tcp: this kernel accepts no TCP Fast Open "
                        "connections (net.ipv4.tcp_fastopen = %d): a "
                        "peer's first stanzas after a reconnect arrive a "
                        "round trip later than with %d", mode, mode | 3);
        }
    }
#else
    sw_log_warn("link_tcp: no TCP Fast Open on %s", iface);
#endif
}

static int
mod_link_tcp_listen(mod_link_tcp_t *t, const char *iface, int port,
                    bool fastopen)
{
    sw_listener_t *ls;

    if (t->n_listeners == MOD_LINK_TCP_MAX_LISTENERS) {
        sw_log_error("link_tcp: too many interfaces");
        return SW_ERROR;
    }
    ls = sw_listener_new("link_tcp", iface, port, 16, mod_link_tcp_on_accept,
                         t);
    if (ls == NULL) {
        return SW_ERROR;
    }
    t->listeners[t->n_listeners++] = ls;
    sw_log_info("link_tcp: listening on %s", sw_listener_desc(ls));
    if (fastopen) {
        mod_link_tcp_fastopen_listen(ls, iface);
    }
    return SW_OK;
}

/* ------------------------------------------------------- netlink --- */

#ifdef __linux__
/* The netlink watch; it outlives the module's state while it closes. */
typedef struct mod_link_tcp_nl_s {
    uv_poll_t poll;             /* first: the handle is the struct */
    int       fd;
} mod_link_tcp_nl_t;

/* Was interface index running before this news?  Updates it.  One not
 * seen before counts as not running (it may have just appeared). */
static bool
mod_link_tcp_iface_was(mod_link_tcp_t *t, int index, bool running)
{
    size_t i;
    bool   was;

    for (i = 0; i < t->n_ifaces; i++) {
        if (t->ifaces[i].index == index) {
            was = t->ifaces[i].running;
            t->ifaces[i].running = running;
            return was;
        }
    }
    if (t->n_ifaces < MOD_LINK_TCP_IFACES) {
        t->ifaces[t->n_ifaces].index = index;
        t->ifaces[t->n_ifaces].running = running;
        t->n_ifaces++;
    }
    return false;
}

/*
 * The attempts made while the path was down go first: their SYNs went
 * nowhere, and the kernel would go on retransmitting each of them (on
 * Linux 6.5+ once a second at first, net.ipv4.tcp_syn_linear_timeouts)
 * into the link that just came back.  On hf-ip (1200 bit/s, half
 * duplex) the retransmissions of five such attempts, the SYN-ACKs
 * answering each and the resets answering those filled the link for a
 * minute before the first stanza crossed.  One fresh attempt replaces
 * them.
 */
static void
mod_link_tcp_nudge(sw_link_t *l, void *ud)
{
    if (strcmp(sw_link_conf(l)->transport, "tcp") != 0) {
        return;
    }
    mod_link_tcp_cancel_all(ud, l, "the path came back (made while it "
                            "was down)");
    sw_link_path_up(l);
}

/*
 * What the host knows before TCP does: an interface whose carrier came
 * back (a modem, a radio, a PPP link), an address or a route that
 * appeared.  Every tcp link then connects (or probes) at once instead
 * of waiting for its next attempt, which over a long outage may be many
 * seconds away.  Which interface leads to which peer is not checked: a
 * nudge costs a SYN, and interfaces come up rarely.
 */
static void
mod_link_tcp_on_netlink(uv_poll_t *p, int status, int events)
{
    mod_link_tcp_t  *t = p->data;
    union {
        struct nlmsghdr h;
        char            b[16384];
    }                buf;
    struct nlmsghdr *h;
    ssize_t          n;
    bool             up = false;
    uint64_t         now = uv_now(sw_loop());

    (void) status;
    (void) events;
    while ((n = recv(t->nl->fd, &buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        for (h = &buf.h; NLMSG_OK(h, (size_t) n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == RTM_NEWLINK
                && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
            {
                const struct ifinfomsg *ifi = NLMSG_DATA(h);
                bool running = (ifi->ifi_flags & IFF_UP)
                               && (ifi->ifi_flags & IFF_RUNNING);

                if (!mod_link_tcp_iface_was(t, ifi->ifi_index, running)
                    && running)
                {
                    up = true;
                }
            } else if (h->nlmsg_type == RTM_NEWROUTE
                       || h->nlmsg_type == RTM_NEWADDR)
            {
                up = true;
            }
        }
    }
    if (up && now - t->nl_last >= 1000) {
        t->nl_last = now;
        sw_log_info("link_tcp: an interface or a route came up");
        sw_link_each(mod_link_tcp_nudge, t);
    }
}

static void
mod_link_tcp_netlink_start(mod_link_tcp_t *t)
{
    struct sockaddr_nl sa;
    int                fd;

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
                NETLINK_ROUTE);
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE
                   | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        sw_log_warn("link_tcp: cannot watch interfaces and routes "
                    "(netlink: %s); links reconnect on their own schedule",
                    strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    t->nl = sw_alloc(sizeof(*t->nl));
    t->nl->fd = fd;
    uv_poll_init_socket(sw_loop(), &t->nl->poll, fd);
    t->nl->poll.data = t;
    uv_poll_start(&t->nl->poll, UV_READABLE, mod_link_tcp_on_netlink);
}

static void
mod_link_tcp_nl_closed(uv_handle_t *h)
{
    mod_link_tcp_nl_t *nl = (mod_link_tcp_nl_t *) h;

    close(nl->fd);
    free(nl);
}

static void
mod_link_tcp_netlink_stop(mod_link_tcp_t *t)
{
    if (t->nl != NULL) {
        uv_close((uv_handle_t *) &t->nl->poll, mod_link_tcp_nl_closed);
        t->nl = NULL;
    }
}
#else
static void
mod_link_tcp_netlink_start(mod_link_tcp_t *t)
{
}

static void
mod_link_tcp_netlink_stop(mod_link_tcp_t *t)
{
}
#endif

/*
 * Linux 6.5+ retransmits an unanswered SYN after 1 s, 4 times 1 s apart
 * (net.ipv4.tcp_syn_linear_timeouts), only then doubling.  On a path
 * whose round trip is longer than a second every such retransmission is
 * spurious and takes link time: on hf-ip (1200 bit/s, half duplex) a
 * cold start took 26.7 s with the default 4 and 12.1 s with 0 (floor
 * 8.7 s).  Said at start, not warned: it is the host's choice.
 */
static void
mod_link_tcp_syn_check(void)
{
#ifdef __linux__
    FILE *fp = fopen("/proc/sys/net/ipv4/tcp_syn_linear_timeouts", "r");
    int   n = 0;

    if (fp == NULL) {
        return;
    }
    if (fscanf(fp, "%i", &n) != 1) {
        n = 0;
    }
    fclose(fp);
    if (n > 0) {
        sw_log_info("link_tcp: this kernel resends an unanswered SYN every "
                    "second %d times (net.ipv4.tcp_syn_linear_timeouts = "
                    "%d): over a path slower than that (Iridium, HF) each "
                    "resend takes link time; 0 makes it double from the "
                    "first", n, n);
    }
#endif
}

/* Listening starts once the links are ready for their peers. */
static int
mod_link_tcp_start(void *data)
{
    mod_link_tcp_t      *t = data;
    mod_link_tcp_conf_t *conf = t->mc->conf;
    const char *const   *i;

    mod_link_tcp_netlink_start(t);
    mod_link_tcp_syn_check();
    sw_link_each(mod_link_tcp_syn_timeout_each, t);
    if (conf->port == 0) {
        return SW_OK;
    }
    for (i = conf->interfaces; i != NULL && *i != NULL; i++) {
        if (mod_link_tcp_listen(t, *i, (int) conf->port, conf->fastopen)
            != SW_OK)
        {
            return SW_ERROR;
        }
    }
    return SW_OK;
}

static void
mod_link_tcp_stop(void *data)
{
    mod_link_tcp_t         *t = data;
    mod_link_tcp_attempt_t *a, *next;
    size_t                  i;

    /* A connect over a dead link can take minutes of SYN retries:
     * cancel it, or shutdown would wait for it.  Closing the handle runs
     * the connect callback with UV_ECANCELED, which frees the attempt. */
    for (a = t->attempts; a != NULL; a = next) {
        next = a->next;
        mod_link_tcp_cancel(a);
    }
    t->attempts = NULL;
    mod_link_tcp_netlink_stop(t);
    link_tcp_bpf_close(t->bpf);
    t->bpf = NULL;
    for (i = 0; i < t->n_listeners; i++) {
        sw_listener_close(t->listeners[i]);
    }
    t->n_listeners = 0;
}

static int
mod_link_tcp_load(sw_module_ctx_t *mc)
{
    mod_link_tcp_t *t = sw_calloc(1, sizeof(*t));
    sw_transport_t  tp = {
        .name = "tcp",
        .data = t,
        .start = mod_link_tcp_start,
        .stop = mod_link_tcp_stop,
        .connect = mod_link_tcp_connect,
        .stalled = mod_link_tcp_stalled,
        .cancel = mod_link_tcp_cancel_link,
        .path_rtt = mod_link_tcp_path_rtt,
    };

    t->mc = mc;
    mc->data = t;
    return sw_transport_register(&mc->owner, &tp);
}

/* After the link layer stopped the transport (sw_links_stop). */
static void
mod_link_tcp_unload(sw_module_ctx_t *mc)
{
    free(mc->data);
    mc->data = NULL;
}

static const sw_option_t mod_link_tcp_options[] = {
    { "link_tcp_interfaces", SW_OPT_STRLIST,
      offsetof(mod_link_tcp_conf_t, interfaces), SW_SCOPE_GLOBAL, 0, 0, 0,
      "0.0.0.0", NULL, "addresses to accept peer links on" },
    { "link_tcp_port", SW_OPT_INT, offsetof(mod_link_tcp_conf_t, port),
      SW_SCOPE_GLOBAL, 0, 0, 65535, "5270", NULL,
      "port to accept peer links on (0: accept none)" },
    { "link_tcp_address", SW_OPT_STRING,
      offsetof(mod_link_tcp_conf_t, address), SW_SCOPE_PEER, 0, 0, 0, NULL,
      NULL, "the peer's IP address: where we connect, and the source "
      "address its connections must come from" },
    { "link_tcp_connect_timeout", SW_OPT_DURATION,
      offsetof(mod_link_tcp_conf_t, connect_timeout),
      SW_SCOPE_GLOBAL | SW_SCOPE_PEER, 0, 500, 600000, "10s", NULL,
      "a connect attempt unanswered this long is kept while the next "
      "starts (more than one round trip of the slowest link)" },
    { "link_tcp_syn_timeout", SW_OPT_DURATION,
      offsetof(mod_link_tcp_conf_t, syn_timeout),
      SW_SCOPE_GLOBAL | SW_SCOPE_PEER, 0, 0, 120000, "0", NULL,
      "first SYN and SYN-ACK timeout of handshakes with the peer (0: the "
      "kernel's 1 s for our SYN, three path round trips for our SYN-ACK "
      "once one is measured; Linux, the server in a cgroup of its own, "
      "CAP_BPF and CAP_NET_ADMIN)" },
    { "link_tcp_fastopen", SW_OPT_BOOL,
      offsetof(mod_link_tcp_conf_t, fastopen),
      SW_SCOPE_GLOBAL | SW_SCOPE_PEER, 0, 0, 0, "true", NULL,
      "TCP Fast Open: the first stanzas of a new connection ride in its "
      "SYN (accepting them needs net.ipv4.tcp_fastopen = 3; never with "
      "peer_protocol = \"xep0361\")" },
    { "link_tcp_peer_port", SW_OPT_INT,
      offsetof(mod_link_tcp_conf_t, peer_port), SW_SCOPE_PEER, 0, 1, 65535,
      "5270", NULL, "the peer's port" },
    SW_OPTION_END
};

const sw_module_t sw_module = {
    .abi = SW_MODULE_ABI,
    .signature = SW_MODULE_SIGNATURE,
    .name = "link_tcp",
    .help = "XEP-0361 peer links over TCP",
    .options = mod_link_tcp_options,
    .conf_size = sizeof(mod_link_tcp_conf_t),
    .load = mod_link_tcp_load,
    .check = mod_link_tcp_check,
    .stop = mod_link_tcp_unload,
};
