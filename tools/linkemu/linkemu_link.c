/*
 * The link model of skywave-linkemu: per direction a drop-tail queue, a
 * transmitter that holds each packet for bytes * 8 / rate seconds, random
 * loss, then propagation delay (+- jitter) before the packet is written to
 * the other namespace's TUN device.  In half duplex both directions share
 * one transmitter, and handing the channel to the other side waits until
 * the last bit has arrived there plus the turnaround time.
 *
 * Outages behave like a radio fade with a modem that discards what it
 * cannot send: going down drops the queues and the packet being
 * serialised, and packets offered while down are dropped; packets already
 * propagating still arrive.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

#include <skywave/sw_core.h>
#include <skywave/sw_log.h>

#include "linkemu.h"

/*
 * Profiles of the links Skywave is meant for.  Values the issue does not
 * give (propagation on VHF/HF, jitter) are zero: a radio path of a few
 * hundred km is a millisecond, far below the serialisation times here.
 */
static const linkemu_profile_t linkemu_profile_table[] = {
    { "iridium", "Iridium-class satellite data: 2400 bit/s, 1.5 s one way",
      2400, 1500, 0, false, 0 },
    { "satcom-64k", "GEO satcom channel: 64 kbit/s, 300 ms one way",
      64000, 300, 0, false, 0 },
    { "vhf", "VHF data radio: 9600 bit/s half duplex, 0.5 s turnaround",
      9600, 0, 0, true, 500 },
    { "hf-ip", "HF IP modem: 1200 bit/s half duplex, 3 s turnaround, "
      "1 % loss", 1200, 0, 10, true, 3000 },
    { NULL, NULL, 0, 0, 0, false, 0 }
};

static void linkemu_kick(linkemu_t *emu, uint64_t now);
static void linkemu_tx_done(uv_timer_t *t);

const linkemu_profile_t *
linkemu_profiles(void)
{
    return linkemu_profile_table;
}

const linkemu_profile_t *
linkemu_profile_find(const char *name)
{
    const linkemu_profile_t  *p;

    for (p = linkemu_profile_table; p->name != NULL; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

void
linkemu_conf_from_profile(linkemu_conf_t *conf, const linkemu_profile_t *p)
{
    conf->rate = p->rate;
    conf->delay = p->delay_ms * LINKEMU_NS_PER_MS;
    conf->loss = p->loss_permille / 1000.0;
    conf->half_duplex = p->half_duplex;
    conf->turnaround = p->turnaround_ms * LINKEMU_NS_PER_MS;
}

/* splitmix64: the same --seed gives the same losses on every libc. */
static uint64_t
linkemu_rand(linkemu_t *emu)
{
    uint64_t  z;

    emu->rng += 0x9e3779b97f4a7c15ULL;
    z = emu->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
linkemu_rand_unit(linkemu_t *emu)
{
    return (double) (linkemu_rand(emu) >> 11) / (double) (1ULL << 53);
}

/* Arms t to fire at absolute time at (ns), never in the past. */
static void
linkemu_timer_at(linkemu_t *emu, uv_timer_t *t, uv_timer_cb cb,
    uint64_t at)
{
    uint64_t  now, ms;

    uv_update_time(emu->loop);
    now = uv_hrtime();
    ms = at > now ? (at - now + LINKEMU_NS_PER_MS - 1) / LINKEMU_NS_PER_MS
                  : 0;
    uv_timer_start(t, cb, ms, 0);
}

static uint64_t
linkemu_serialisation(linkemu_t *emu, size_t len)
{
    if (emu->conf.rate == 0) {
        return 0;
    }
    return (uint64_t) len * 8 * LINKEMU_NS_PER_SEC / emu->conf.rate;
}

static void
linkemu_pkt_list_free(linkemu_pkt_t *p)
{
    linkemu_pkt_t  *next;

    for (; p != NULL; p = next) {
        next = p->next;
        free(p);
    }
}

/* ------------------------------------------------------------ delivery */

static void
linkemu_deliver(uv_timer_t *t)
{
    linkemu_dir_t  *d = t->data;
    linkemu_pkt_t  *p;
    uint64_t        now;

    /*
     * Timers have millisecond resolution: anything due within the next
     * millisecond goes now rather than one loop iteration later.
     */
    now = uv_hrtime() + LINKEMU_NS_PER_MS;
    while (d->fhead != NULL && d->fhead->at <= now) {
        p = d->fhead;
        d->fhead = p->next;
        if (d->fhead == NULL) {
            d->ftail = NULL;
        }
        if (write(d->out_fd, p->data, p->len) == (ssize_t) p->len) {
            d->c.packets++;
            d->c.bytes += p->len;
        } else {
            /* The receiving stack refused it (device down): a loss. */
            sw_log_debug("linkemu: %s: write: %s", d->name, strerror(errno));
            d->c.dropped_loss++;
        }
        free(p);
    }
    if (d->fhead != NULL) {
        linkemu_timer_at(d->emu, &d->fl_timer, linkemu_deliver, d->fhead->at);
    }
}

/* The packet has left the transmitter at time end: loss, then delay. */
static void
linkemu_propagate(linkemu_dir_t *d, linkemu_pkt_t *p, uint64_t end)
{
    linkemu_t      *emu = d->emu;
    linkemu_pkt_t **pp;
    int64_t         at;

    if (emu->conf.loss > 0 && linkemu_rand_unit(emu) < emu->conf.loss) {
        d->c.dropped_loss++;
        free(p);
        return;
    }

    at = (int64_t) (end + emu->conf.delay);
    if (emu->conf.jitter > 0) {
        at += (int64_t) (linkemu_rand(emu)
                         % (2 * emu->conf.jitter + 1))
              - (int64_t) emu->conf.jitter;
        if (at < (int64_t) end) {
            at = (int64_t) end;
        }
    }
    p->at = (uint64_t) at;

    /* A link keeps order unless told otherwise: jitter then only bunches. */
    if (!emu->conf.reorder && p->at < d->last_at) {
        p->at = d->last_at;
    }
    if (p->at > d->last_at) {
        d->last_at = p->at;
    }

    for (pp = &d->fhead; *pp != NULL && (*pp)->at <= p->at;
         pp = &(*pp)->next)
    {
        /* keep the list sorted; ties keep their arrival order */
    }
    p->next = *pp;
    *pp = p;
    if (p->next == NULL) {
        d->ftail = p;
    }
    if (d->fhead == p) {
        linkemu_timer_at(emu, &d->fl_timer, linkemu_deliver, p->at);
    }
}

/* ---------------------------------------------------------- transmitter */

/* Puts the head of d's queue on the channel at time start. */
static void
linkemu_tx_start(linkemu_dir_t *d, uint64_t start)
{
    linkemu_pkt_t  *p = d->qhead;

    d->qhead = p->next;
    if (d->qhead == NULL) {
        d->qtail = NULL;
    }
    d->qbytes -= p->len;
    p->next = NULL;

    d->tx = p;
    d->tx_end = start + linkemu_serialisation(d->emu, p->len);
    d->rx_end = d->tx_end + d->emu->conf.delay;
    linkemu_timer_at(d->emu, &d->tx_timer, linkemu_tx_done, d->tx_end);
}

static void
linkemu_tx_done(uv_timer_t *t)
{
    linkemu_dir_t  *d = t->data;
    linkemu_pkt_t  *p = d->tx;

    if (p == NULL) {
        return;
    }
    d->tx = NULL;
    linkemu_propagate(d, p, d->tx_end);
    /* The next packet starts where this one ended, not when we woke up. */
    linkemu_kick(d->emu, d->tx_end);
}

static void
linkemu_turn_done(uv_timer_t *t)
{
    linkemu_t  *emu = t->data;

    emu->turn_armed = false;
    linkemu_kick(emu, emu->free_at);
}

/*
 * Starts whatever may be sent at (logical) time now.  Called when a packet
 * is queued, a transmission ends, a turnaround ends or the link comes up.
 */
static void
linkemu_kick(linkemu_t *emu, uint64_t now)
{
    linkemu_dir_t  *d, *o;
    int             i;
    uint64_t        start;

    if (!linkemu_is_up(emu)) {
        return;
    }

    if (!emu->conf.half_duplex) {
        for (i = 0; i < 2; i++) {
            d = &emu->dir[i];
            if (d->tx == NULL && d->qhead != NULL) {
                start = d->tx_end > now ? d->tx_end : now;
                linkemu_tx_start(d, start);
            }
        }
        return;
    }

    if (emu->dir[0].tx != NULL || emu->dir[1].tx != NULL
        || emu->turn_armed)
    {
        return;
    }
    if (emu->dir[0].qhead == NULL && emu->dir[1].qhead == NULL) {
        return;
    }
    if (emu->owner < 0) {
        emu->owner = emu->dir[0].qhead != NULL ? 0 : 1;
        emu->hold_start = now;
        emu->free_at = now;
    }

    d = &emu->dir[emu->owner];
    o = &emu->dir[1 - emu->owner];

    /*
     * The sender keeps the channel while it has packets, unless the other
     * side has waited longer than max_hold; an idle channel goes to
     * whoever has something to send.
     */
    if (d->qhead == NULL
        || (o->qhead != NULL && emu->conf.max_hold > 0
            && now >= emu->hold_start + emu->conf.max_hold))
    {
        if (o->qhead == NULL) {
            return;
        }
        /* The other station may key up once it heard the last bit. */
        emu->owner = o->idx;
        emu->free_at = d->rx_end + emu->conf.turnaround;
        if (emu->free_at < now) {
            emu->free_at = now;
        }
        emu->hold_start = emu->free_at;
        d = o;
    }

    if (emu->free_at > now) {
        emu->turn_armed = true;
        linkemu_timer_at(emu, &emu->turn_timer, linkemu_turn_done,
                         emu->free_at);
        return;
    }
    if (now > d->tx_end && now > emu->hold_start) {
        /* A new burst after a pause: max_hold counts from here. */
        emu->hold_start = now;
    }
    start = d->tx_end > now ? d->tx_end : now;
    linkemu_tx_start(d, start);
}

/* ------------------------------------------------------------- input */

static void
linkemu_count_queue_drop(linkemu_dir_t *d, size_t len)
{
    d->c.dropped_queue++;
    sw_log_debug("linkemu: %s: queue full (%zu bytes), dropped %zu",
                 d->name, d->qbytes, len);
}

static void
linkemu_readable(uv_poll_t *h, int status, int events)
{
    linkemu_dir_t  *d = h->data;
    linkemu_t      *emu = d->emu;
    unsigned char   buf[LINKEMU_MAX_PACKET];
    linkemu_pkt_t  *p;
    ssize_t         n;
    int             budget;

    if (status < 0) {
        sw_log_error("linkemu: %s: poll: %s", d->name, uv_strerror(status));
        return;
    }

    /* A bounded batch, so the other direction's events are not starved. */
    for (budget = 64; budget > 0; budget--) {
        n = read(d->in_fd, buf, sizeof(buf));
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                sw_log_error("linkemu: %s: read: %s", d->name,
                             strerror(errno));
            }
            return;
        }
        d->c.packets_in++;
        d->c.bytes_in += (uint64_t) n;

        if (!linkemu_is_up(emu)) {
            d->c.dropped_outage++;
            continue;
        }
        if (emu->conf.queue > 0 && d->qbytes + (size_t) n > emu->conf.queue
            && !(d->qhead == NULL && d->tx == NULL))
        {
            /* An idle transmitter takes a packet straight to the air. */
            linkemu_count_queue_drop(d, (size_t) n);
            continue;
        }
        p = sw_alloc(sizeof(*p) + (size_t) n);
        memcpy(p->data, buf, (size_t) n);
        p->len = (size_t) n;
        p->at = 0;
        p->next = NULL;
        if (d->qtail != NULL) {
            d->qtail->next = p;
        } else {
            d->qhead = p;
        }
        d->qtail = p;
        d->qbytes += p->len;
        linkemu_kick(emu, uv_hrtime());
        /* Measured after the kick: a packet sent at once never waited. */
        if (d->qbytes > d->c.queue_high) {
            d->c.queue_high = d->qbytes;
        }
    }
}

/* -------------------------------------------------------------- outages */

bool
linkemu_is_up(linkemu_t *emu)
{
    return !emu->forced_down && !emu->sched_down;
}

/* --carrier: the hosts see the outage as their interface's carrier
 * going (RTM_NEWLINK without IFF_RUNNING), as with a modem or radio that
 * reports its link state. */
static void
linkemu_carrier(linkemu_t *emu, bool on)
{
#ifdef TUNSETCARRIER
    int v = on ? 1 : 0, i;

    for (i = 0; i < 2; i++) {
        if (ioctl(emu->dir[i].in_fd, TUNSETCARRIER, &v) != 0) {
            sw_log_warn("linkemu: TUNSETCARRIER: %s", strerror(errno));
        }
    }
#else
    (void) emu;
    (void) on;
    sw_log_warn("linkemu: --carrier: no TUNSETCARRIER on this system");
#endif
}

/* Called after forced_down or sched_down changed. */
static void
linkemu_link_changed(linkemu_t *emu, bool was_up)
{
    linkemu_dir_t  *d;
    linkemu_pkt_t  *p;
    int             i;
    uint64_t        now = uv_hrtime();

    if (was_up && !linkemu_is_up(emu)) {
        emu->outages++;
        sw_log_info("linkemu: link down");
        for (i = 0; i < 2; i++) {
            d = &emu->dir[i];
            for (p = d->qhead; p != NULL; p = p->next) {
                d->c.dropped_outage++;
            }
            linkemu_pkt_list_free(d->qhead);
            d->qhead = d->qtail = NULL;
            d->qbytes = 0;
            if (d->tx != NULL) {
                /* The fade cut it off mid-air: the channel is free now. */
                d->c.dropped_outage++;
                free(d->tx);
                d->tx = NULL;
                d->tx_end = now;
                d->rx_end = now;
                uv_timer_stop(&d->tx_timer);
            }
        }
        uv_timer_stop(&emu->turn_timer);
        emu->turn_armed = false;
        emu->free_at = now;
        if (emu->conf.carrier) {
            linkemu_carrier(emu, false);
        }
    } else if (!was_up && linkemu_is_up(emu)) {
        sw_log_info("linkemu: link up");
        if (emu->conf.carrier) {
            linkemu_carrier(emu, true);
        }
        linkemu_kick(emu, now);
    }
}

static void
linkemu_forced_over(uv_timer_t *t)
{
    linkemu_set_up(t->data);
}

void
linkemu_set_down(linkemu_t *emu, uint64_t down_for)
{
    bool  was_up = linkemu_is_up(emu);

    emu->forced_down = true;
    uv_timer_stop(&emu->forced_timer);
    if (down_for > 0) {
        linkemu_timer_at(emu, &emu->forced_timer, linkemu_forced_over,
                         uv_hrtime() + down_for);
    }
    linkemu_link_changed(emu, was_up);
}

void
linkemu_set_up(linkemu_t *emu)
{
    bool  was_up = linkemu_is_up(emu);

    emu->forced_down = false;
    uv_timer_stop(&emu->forced_timer);
    linkemu_link_changed(emu, was_up);
}

/* Up for every - down, down for down, and again. */
static void
linkemu_schedule(uv_timer_t *t)
{
    linkemu_t  *emu = t->data;
    bool        was_up = linkemu_is_up(emu);
    uint64_t    next;

    emu->sched_down = !emu->sched_down;
    next = emu->sched_down ? emu->conf.outage_down
                           : emu->conf.outage_every - emu->conf.outage_down;
    uv_timer_start(t, linkemu_schedule, next / LINKEMU_NS_PER_MS, 0);
    linkemu_link_changed(emu, was_up);
}

/* ------------------------------------------------------------ lifecycle */

int
linkemu_init(linkemu_t *emu, uv_loop_t *loop, int fd_a, int fd_b)
{
    static const char *const names[2] = { "a_to_b", "b_to_a" };
    int                      i, rc;
    linkemu_dir_t           *d;

    emu->loop = loop;
    emu->rng = emu->conf.seed;
    emu->owner = -1;
    for (i = 0; i < 2; i++) {
        d = &emu->dir[i];
        memset(d, 0, sizeof(*d));
        d->emu = emu;
        d->idx = i;
        d->name = names[i];
        d->in_fd = i == LINKEMU_A_TO_B ? fd_a : fd_b;
        d->out_fd = i == LINKEMU_A_TO_B ? fd_b : fd_a;
        rc = uv_poll_init(loop, &d->poll, d->in_fd);
        if (rc != 0) {
            sw_log_error("linkemu: poll: %s", uv_strerror(rc));
            return SW_ERROR;
        }
        d->poll.data = d;
        uv_timer_init(loop, &d->tx_timer);
        d->tx_timer.data = d;
        uv_timer_init(loop, &d->fl_timer);
        d->fl_timer.data = d;
    }
    uv_timer_init(loop, &emu->turn_timer);
    emu->turn_timer.data = emu;
    uv_timer_init(loop, &emu->sched_timer);
    emu->sched_timer.data = emu;
    uv_timer_init(loop, &emu->forced_timer);
    emu->forced_timer.data = emu;
    return SW_OK;
}

int
linkemu_start(linkemu_t *emu)
{
    int  i, rc;

    emu->started = uv_hrtime();
    for (i = 0; i < 2; i++) {
        rc = uv_poll_start(&emu->dir[i].poll, UV_READABLE, linkemu_readable);
        if (rc != 0) {
            sw_log_error("linkemu: poll: %s", uv_strerror(rc));
            return SW_ERROR;
        }
    }
    if (emu->conf.outage_down > 0) {
        uv_timer_start(&emu->sched_timer, linkemu_schedule,
                       (emu->conf.outage_every - emu->conf.outage_down)
                       / LINKEMU_NS_PER_MS, 0);
    }
    return SW_OK;
}

/* Closes the handles; the loop must run once more to finish closing. */
void
linkemu_close(linkemu_t *emu)
{
    int  i;

    for (i = 0; i < 2; i++) {
        uv_close((uv_handle_t *) &emu->dir[i].poll, NULL);
        uv_close((uv_handle_t *) &emu->dir[i].tx_timer, NULL);
        uv_close((uv_handle_t *) &emu->dir[i].fl_timer, NULL);
    }
    uv_close((uv_handle_t *) &emu->turn_timer, NULL);
    uv_close((uv_handle_t *) &emu->sched_timer, NULL);
    uv_close((uv_handle_t *) &emu->forced_timer, NULL);
}

void
linkemu_free(linkemu_t *emu)
{
    int  i;

    for (i = 0; i < 2; i++) {
        linkemu_pkt_list_free(emu->dir[i].qhead);
        linkemu_pkt_list_free(emu->dir[i].fhead);
        free(emu->dir[i].tx);
        emu->dir[i].qhead = emu->dir[i].fhead = emu->dir[i].tx = NULL;
    }
}

size_t
linkemu_stats_json(linkemu_t *emu, char *buf, size_t size)
{
    size_t               n = 0;
    int                  i, r;
    linkemu_counters_t  *c;

    r = snprintf(buf, size, "{");
    n += (size_t) r;
    for (i = 0; i < 2 && n < size; i++) {
        c = &emu->dir[i].c;
        r = snprintf(buf + n, size - n,
            "\"%s\": {\"packets\": %llu, \"bytes\": %llu, "
            "\"packets_in\": %llu, \"bytes_in\": %llu, "
            "\"dropped_queue\": %llu, \"dropped_loss\": %llu, "
            "\"dropped_outage\": %llu, \"queue_bytes\": %zu, "
            "\"queue_high\": %llu}, ",
            emu->dir[i].name,
            (unsigned long long) c->packets, (unsigned long long) c->bytes,
            (unsigned long long) c->packets_in,
            (unsigned long long) c->bytes_in,
            (unsigned long long) c->dropped_queue,
            (unsigned long long) c->dropped_loss,
            (unsigned long long) c->dropped_outage,
            emu->dir[i].qbytes, (unsigned long long) c->queue_high);
        n += (size_t) r;
    }
    if (n < size) {
        r = snprintf(buf + n, size - n,
            "\"link_up\": %s, \"outages\": %llu, \"uptime\": %.3f}",
            linkemu_is_up(emu) ? "true" : "false",
            (unsigned long long) emu->outages,
            (double) (uv_hrtime() - emu->started) / 1e9);
        n += (size_t) r;
    }
    return n < size ? n : size - 1;
}
