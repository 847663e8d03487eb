/*
 * mod_im: RFC 6121 instant messaging and presence for local users:
 * rosters (§2), subscriptions (§3, Appendix A), presence broadcast and
 * probes (§4), and the delivery rules for local addresses (§8.5),
 * including offline messages (XEP-0160) stamped with XEP-0203 delays.
 *
 * Where stanzas come in:
 *   - the "preroute" chain sees what clients send; presence from a local
 *     session is the user's outbound presence (broadcast, directed,
 *     subscription management) and is taken there, because a
 *     subscription to a remote contact never reaches "route/local";
 *   - "route/local" delivers everything addressed to a local account;
 *   - "iq/self/jabber:iq:roster" is the roster protocol;
 *   - "session/closing" ends the session's presence.
 * The preroute filter takes only what a client session sent (the
 * stanza's origin), so what the module routes itself passes it.
 */
#ifndef MOD_IM_H
#define MOD_IM_H

#define MOD_IM_MAX_FANOUT 64     /* resources reported per delivery */

#include <skywave/skywave.h>
#include <skywave/mod_c2s_api.h>
#include <skywave/mod_im_api.h>

#define MOD_IM_NS_ROSTER    "jabber:iq:roster"
#define MOD_IM_NS_DELAY     "urn:xmpp:delay"

typedef struct {
    int64_t         offline_max;        /* im_offline_max */
    size_t          offline_max_bytes;  /* im_offline_max_bytes */
    int64_t         roster_max;         /* im_roster_max_items */
    int64_t         name_max;           /* im_roster_max_name */
} mod_im_conf_t;

typedef struct {
    sw_module_ctx_t *mc;
    sw_storage_t    *st;
    int              slot;              /* per-session state */
    uint64_t         push_id;           /* ids of roster pushes */
    sw_log_rl_t      rl_directed;
    sw_hash_t       *offline_sent;      /* bare JID -> int64_t *: offline
                                           messages up to this id were
                                           sent, their deletion failed */
    uv_timer_t      *offline_retry;     /* tries those deletions again */
} mod_im_t;

/* A JID the session sent directed presence to (RFC 6121 §4.6). */
typedef struct mod_im_directed_s mod_im_directed_t;

/* Heap nodes, freed when the presence ends (RFC 6121 §4.6.3); at most
 * MOD_IM_DIRECTED_MAX per session. */
#define MOD_IM_DIRECTED_MAX 1000

struct mod_im_directed_s {
    mod_im_directed_t *next;
    char               jid[];           /* full, as addressed */
};

/* Per-session state, in the session's pool. */
typedef struct {
    mod_im_directed_t *directed;
    size_t             n_directed;
} mod_im_sess_t;

/* mod_im.c */
void mod_im_route(mod_im_t *im, sw_stanza_t *st);
int mod_im_send(sw_session_t *s, sw_stanza_t *st);
bool mod_im_user_exists(mod_im_t *im, const sw_jid_t *jid);
mod_im_sess_t *mod_im_sess(mod_im_t *im, sw_session_t *s);
mod_im_conf_t *mod_im_conf(mod_im_t *im, const char *host);
sw_stanza_t *mod_im_copy_to(sw_stanza_t *st, const sw_jid_t *to,
                            const sw_jid_t *from);
sw_stanza_t *mod_im_presence_new(const char *type, const char *from,
                                 const char *to);

/* mod_im_roster.c */
int mod_im_roster_iq(void *data, void *ud);
int mod_im_roster_get_item(mod_im_t *im, const sw_jid_t *user,
                           const char *contact, sw_pool_t *pool,
                           sw_roster_item_t *item, bool *exists);
int mod_im_roster_store(mod_im_t *im, const sw_jid_t *user,
                        const sw_roster_item_t *item, bool was_visible,
                        bool push);
bool mod_im_roster_visible(const sw_roster_item_t *item);
void mod_im_roster_push(mod_im_t *im, const sw_jid_t *user,
                        const sw_roster_item_t *item, bool removed,
                        uint64_t version);

/* mod_im_presence.c */
sw_verdict_e mod_im_presence_out(sw_stanza_t **stp, void *ctx, void *ud,
                                 const char **cond);
int mod_im_presence_in(mod_im_t *im, sw_stanza_t *st);
void mod_im_presence_closing(mod_im_t *im, sw_session_t *s);
void mod_im_subscription_out(mod_im_t *im, const sw_jid_t *user,
                             const char *type, const char *contact,
                             sw_stanza_t *orig);

/* mod_im_message.c */
void mod_im_offline_stop(mod_im_t *im);
int mod_im_message_in(mod_im_t *im, sw_stanza_t *st);
int mod_im_iq_in(mod_im_t *im, sw_stanza_t *st);
void mod_im_offline_deliver(mod_im_t *im, sw_session_t *s);

#endif
