/*
 * mod_c2s guard: what one source address may do (RFC 6120 §13.12).
 *
 * - Connections: at most c2s_max_connections in all and
 *   c2s_max_connections_per_address from one address at any one time; a
 *   connection past either is closed at once (§13.12 item 1: "MUST NOT
 *   allow the new connection to proceed").
 * - Failed authentications: c2s_auth_ban_failures within
 *   c2s_auth_ban_time ban the address for c2s_auth_ban_time (as
 *   ejabberd's mod_fail2ban, 20 by default); a banned address gets a
 *   policy-violation stream error at its next <auth/>.
 *
 * One record per address, dropped once it has no connection and nothing
 * to remember; the table is bounded (MOD_C2S_GUARD_MAX addresses), and
 * when it is full an address without a record is treated as having one
 * with nothing in it (it can connect but its failures are not counted
 * until there is room), which a flood of sources cannot turn into a ban
 * of somebody else.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mod_c2s.h"

#define MOD_C2S_GUARD_MAX 65536

typedef struct mod_c2s_addr_s {
    unsigned   conns;
    unsigned   failures;
    uint64_t   first_failure;   /* ms, uv_now */
    uint64_t   banned_until;    /* ms, 0: not banned */
} mod_c2s_addr_t;

static uint64_t
mod_c2s_guard_now(void)
{
    return uv_now(sw_loop());
}

/* Forgets failures older than the window and bans that have run out. */
static void
mod_c2s_guard_age(mod_c2s_t *c2s, mod_c2s_addr_t *a, uint64_t now)
{
    uint64_t window = (uint64_t) (c2s->conf->auth_ban_time * 1000);

    if (a->banned_until != 0 && now >= a->banned_until) {
        a->banned_until = 0;
        a->failures = 0;
    }
    if (a->failures != 0 && now - a->first_failure >= window) {
        a->failures = 0;
    }
}

static bool
mod_c2s_guard_idle(const mod_c2s_addr_t *a)
{
    return a->conns == 0 && a->failures == 0 && a->banned_until == 0;
}

typedef struct {
    mod_c2s_t  *c2s;
    uint64_t    now;
    char      **drop;
    size_t      n, cap;
} mod_c2s_guard_sweep_t;

static void
mod_c2s_guard_sweep_one(const char *key, void *value, void *ud)
{
    mod_c2s_guard_sweep_t *sw = ud;
    mod_c2s_addr_t        *a = value;

    mod_c2s_guard_age(sw->c2s, a, sw->now);
    if (mod_c2s_guard_idle(a) && sw->n < sw->cap) {
        sw->drop[sw->n++] = sw_strdup(key);
    }
}

/* Drops records with nothing left in them. */
static void
mod_c2s_guard_sweep(mod_c2s_t *c2s)
{
    mod_c2s_guard_sweep_t sw = { c2s, mod_c2s_guard_now(), NULL, 0, 0 };
    size_t                i;

    sw.cap = sw_hash_count(c2s->addrs);
    sw.drop = sw_alloc((sw.cap ? sw.cap : 1) * sizeof(char *));
    sw_hash_each(c2s->addrs, mod_c2s_guard_sweep_one, &sw);
    for (i = 0; i < sw.n; i++) {
        free(sw_hash_get(c2s->addrs, sw.drop[i]));
        sw_hash_set(c2s->addrs, sw.drop[i], NULL);
        free(sw.drop[i]);
    }
    free(sw.drop);
}

/* addr's record, made when make is set and there is room; or NULL. */
static mod_c2s_addr_t *
mod_c2s_guard_get(mod_c2s_t *c2s, const char *addr, bool make)
{
    mod_c2s_addr_t *a;

    if (addr == NULL) {
        return NULL;
    }
    if (c2s->addrs == NULL) {
        c2s->addrs = sw_hash_new(64);
    }
    a = sw_hash_get(c2s->addrs, addr);
    if (a != NULL || !make) {
        if (a != NULL) {
            mod_c2s_guard_age(c2s, a, mod_c2s_guard_now());
        }
        return a;
    }
    if (sw_hash_count(c2s->addrs) >= MOD_C2S_GUARD_MAX) {
        mod_c2s_guard_sweep(c2s);
        if (sw_hash_count(c2s->addrs) >= MOD_C2S_GUARD_MAX) {
            return NULL;
        }
    }
    a = sw_calloc(1, sizeof(*a));
    sw_hash_set(c2s->addrs, addr, a);
    return a;
}

static void
mod_c2s_guard_put(mod_c2s_t *c2s, const char *addr, mod_c2s_addr_t *a)
{
    if (mod_c2s_guard_idle(a)) {
        sw_hash_set(c2s->addrs, addr, NULL);
        free(a);
    }
}

int
mod_c2s_guard_connect(mod_c2s_t *c2s, const char *addr)
{
    mod_c2s_conf_t *conf = c2s->conf;
    mod_c2s_addr_t *a;

    if (conf->max_connections != 0
        && c2s->n_conns >= (uint64_t) conf->max_connections)
    {
        sw_log_rl_warn(&c2s->rl_limit, "c2s: refused a connection from %s: "
                       "c2s_max_connections (%lld) reached", addr,
                       (long long) conf->max_connections);
        return SW_DECLINED;
    }
    a = mod_c2s_guard_get(c2s, addr, true);
    if (a != NULL && conf->max_connections_per_address != 0
        && a->conns >= (uint64_t) conf->max_connections_per_address)
    {
        sw_log_rl_warn(&c2s->rl_limit, "c2s: refused a connection from %s: "
                       "c2s_max_connections_per_address (%lld) reached",
                       addr, (long long) conf->max_connections_per_address);
        return SW_DECLINED;
    }
    if (a != NULL) {
        a->conns++;
    }
    c2s->n_conns++;
    return SW_OK;
}

void
mod_c2s_guard_disconnect(mod_c2s_t *c2s, const char *addr)
{
    mod_c2s_addr_t *a = mod_c2s_guard_get(c2s, addr, false);

    if (c2s->n_conns > 0) {
        c2s->n_conns--;
    }
    if (a != NULL) {
        if (a->conns > 0) {
            a->conns--;
        }
        mod_c2s_guard_put(c2s, addr, a);
    }
}

void
mod_c2s_guard_failure(mod_c2s_t *c2s, const char *addr)
{
    mod_c2s_conf_t *conf = c2s->conf;
    mod_c2s_addr_t *a;
    uint64_t        now = mod_c2s_guard_now();

    if (conf->auth_ban_failures == 0) {
        return;
    }
    a = mod_c2s_guard_get(c2s, addr, true);
    if (a == NULL || a->banned_until != 0) {
        return;
    }
    if (a->failures++ == 0) {
        a->first_failure = now;
    }
    if (a->failures >= (uint64_t) conf->auth_ban_failures) {
        a->banned_until = now + (uint64_t) (conf->auth_ban_time * 1000);
        sw_log_warn("c2s: %s banned for %.0f s after %u failed "
                    "authentications", addr, conf->auth_ban_time,
                    a->failures);
    }
}

bool
mod_c2s_guard_banned(mod_c2s_t *c2s, const char *addr)
{
    mod_c2s_addr_t *a = mod_c2s_guard_get(c2s, addr, false);

    return a != NULL && a->banned_until != 0;
}

static void
mod_c2s_guard_free_one(const char *key, void *value, void *ud)
{
    (void) key;
    (void) ud;
    free(value);
}

void
mod_c2s_guard_free(mod_c2s_t *c2s)
{
    if (c2s->addrs != NULL) {
        sw_hash_each(c2s->addrs, mod_c2s_guard_free_one, NULL);
        sw_hash_free(c2s->addrs);
        c2s->addrs = NULL;
    }
}

/* "1.2.3.4:5678" -> "1.2.3.4", "[::1]:5678" -> "::1", in pool. */
const char *
mod_c2s_guard_addr(sw_pool_t *pool, const char *peer)
{
    const char *colon = strrchr(peer, ':');
    size_t      n = colon ? (size_t) (colon - peer) : strlen(peer);

    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        return sw_pool_strndup(pool, peer + 1, n - 2);
    }
    return sw_pool_strndup(pool, peer, n);
}
