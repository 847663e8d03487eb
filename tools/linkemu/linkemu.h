/*
 * skywave-linkemu: a packet-level link emulator between two network
 * namespaces, for kernels without netem (doc/link-emulator.md).
 *
 * The program owns one TUN device in each namespace and moves IP packets
 * between them through a model of a constrained radio or satellite link:
 * drop-tail queue, serialisation at a bit rate, propagation delay with
 * jitter, random loss, half-duplex turnaround and outages.
 *
 * Times inside the model are nanoseconds of uv_hrtime().  The model is a
 * discrete-event simulation driven by libuv timers: each event runs at the
 * logical time it was scheduled for, not at the (slightly later) time its
 * timer fired, so rounding never accumulates into a lower rate.
 */
#ifndef LINKEMU_H
#define LINKEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define LINKEMU_NS_PER_SEC   1000000000ULL
#define LINKEMU_NS_PER_MS    1000000ULL
#define LINKEMU_MAX_PACKET   65536

#define LINKEMU_A_TO_B       0
#define LINKEMU_B_TO_A       1

typedef struct linkemu_s         linkemu_t;
typedef struct linkemu_dir_s     linkemu_dir_t;
typedef struct linkemu_pkt_s     linkemu_pkt_t;
typedef struct linkemu_conf_s    linkemu_conf_t;
typedef struct linkemu_profile_s linkemu_profile_t;
typedef struct linkemu_counters_s linkemu_counters_t;

/* The link's properties: a profile, then individual overrides. */
struct linkemu_conf_s {
    uint64_t     rate;          /* bit/s; 0 = no serialisation limit */
    uint64_t     delay;         /* ns, one way */
    uint64_t     jitter;        /* ns; delay varies uniformly +- jitter */
    double       loss;          /* probability 0..1 per packet */
    unsigned     mtu;
    size_t       queue;         /* bytes waiting per direction */
    bool         half_duplex;
    uint64_t     turnaround;    /* ns */
    uint64_t     max_hold;      /* ns a sender may keep the channel; 0 = all */
    uint64_t     outage_down;   /* ns; 0 = no scheduled outages */
    uint64_t     outage_every;  /* ns */
    bool         reorder;       /* jitter may reorder packets */
    bool         carrier;       /* outages drop the TUN devices' carrier */
    uint64_t     seed;
};

struct linkemu_profile_s {
    const char  *name;
    const char  *help;
    uint64_t     rate;
    uint64_t     delay_ms;
    unsigned     loss_permille;
    bool         half_duplex;
    uint64_t     turnaround_ms;
};

struct linkemu_pkt_s {
    linkemu_pkt_t  *next;
    uint64_t        at;         /* ns: when it reaches the far end */
    size_t          len;
    unsigned char   data[];
};

struct linkemu_counters_s {
    uint64_t  packets_in;       /* read from the sending side's TUN */
    uint64_t  bytes_in;
    uint64_t  packets;          /* written to the receiving side's TUN */
    uint64_t  bytes;
    uint64_t  dropped_queue;
    uint64_t  dropped_loss;
    uint64_t  dropped_outage;
    uint64_t  queue_high;       /* bytes: high-water mark of the queue */
};

struct linkemu_dir_s {
    linkemu_t          *emu;
    int                 idx;        /* LINKEMU_A_TO_B or LINKEMU_B_TO_A */
    const char         *name;       /* "a_to_b" */
    int                 in_fd;      /* TUN the packets come from */
    int                 out_fd;     /* TUN they go to */
    uv_poll_t           poll;

    linkemu_pkt_t      *qhead;      /* waiting for the transmitter */
    linkemu_pkt_t      *qtail;
    size_t              qbytes;

    linkemu_pkt_t      *tx;         /* being serialised */
    uint64_t            tx_end;     /* ns: end of the last transmission */
    uint64_t            rx_end;     /* ns: its last bit reaches the far end */
    uv_timer_t          tx_timer;

    linkemu_pkt_t      *fhead;      /* propagating, sorted by ->at */
    linkemu_pkt_t      *ftail;
    uint64_t            last_at;
    uv_timer_t          fl_timer;

    linkemu_counters_t  c;
};

struct linkemu_s {
    uv_loop_t          *loop;
    linkemu_conf_t      conf;
    linkemu_dir_t       dir[2];
    uint64_t            rng;
    uint64_t            started;    /* ns */

    /* Half duplex: who may send, and from when (turnaround). */
    int                 owner;      /* -1 until the first packet */
    uint64_t            free_at;
    uint64_t            hold_start;
    uv_timer_t          turn_timer;
    bool                turn_armed;

    /* Outages: forced by command, or by the schedule. */
    bool                forced_down;
    bool                sched_down;
    uint64_t            outages;
    uv_timer_t          sched_timer;
    uv_timer_t          forced_timer;

    bool                stopping;
};

/* linkemu_link.c: the link model. */
const linkemu_profile_t *linkemu_profile_find(const char *name);
const linkemu_profile_t *linkemu_profiles(void);
void linkemu_conf_from_profile(linkemu_conf_t *conf,
    const linkemu_profile_t *p);
int linkemu_init(linkemu_t *emu, uv_loop_t *loop, int fd_a, int fd_b);
int linkemu_start(linkemu_t *emu);
void linkemu_close(linkemu_t *emu);
void linkemu_free(linkemu_t *emu);
bool linkemu_is_up(linkemu_t *emu);
/* down_for 0 = until linkemu_set_up. */
void linkemu_set_down(linkemu_t *emu, uint64_t down_for);
void linkemu_set_up(linkemu_t *emu);
/* Writes the counters as one JSON object (no newline); returns length. */
size_t linkemu_stats_json(linkemu_t *emu, char *buf, size_t size);

/* linkemu_netns.c: namespaces, TUN devices, addresses. */
typedef struct linkemu_side_s linkemu_side_t;

struct linkemu_side_s {
    const char  *ns;            /* namespace name */
    const char  *dev;           /* TUN interface name */
    const char  *addr;          /* "10.77.0.1/30" */
    bool         created;       /* we made the namespace: delete it at exit */
    int          fd;
};

int linkemu_side_setup(linkemu_side_t *side, unsigned mtu, bool ipv6);
void linkemu_side_teardown(linkemu_side_t *side, bool keep);

#endif
