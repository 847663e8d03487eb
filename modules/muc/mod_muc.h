/*
 * mod_muc: a Multi-User Chat service (XEP-0045) on every Component that
 * names it: Component "conference.example.net" "muc".
 *
 * A room lives in memory while it has occupants or is persistent; a
 * persistent room's configuration, subject and affiliations are kept in
 * the generic stores ("muc_rooms", "muc_affiliations"), and every room's
 * history in the archive "muc_history" (an item per groupchat message
 * with a body, its stanza id the archive id).
 */
#ifndef MOD_MUC_H
#define MOD_MUC_H

#include <skywave/skywave.h>

#define MOD_MUC_NS          "http://jabber.org/protocol/muc"
#define MOD_MUC_NS_USER     "http://jabber.org/protocol/muc#user"
#define MOD_MUC_NS_OWNER    "http://jabber.org/protocol/muc#owner"
#define MOD_MUC_NS_ADMIN    "http://jabber.org/protocol/muc#admin"
#define MOD_MUC_NS_CONFIG   "http://jabber.org/protocol/muc#roomconfig"
#define MOD_MUC_NS_INFO     "http://jabber.org/protocol/disco#info"
#define MOD_MUC_NS_ITEMS    "http://jabber.org/protocol/disco#items"
#define MOD_MUC_NS_DATA     "jabber:x:data"
#define MOD_MUC_NS_SID      "urn:xmpp:sid:0"
#define MOD_MUC_NS_OID      "urn:xmpp:occupant-id:0"
#define MOD_MUC_NS_DELAY    "urn:xmpp:delay"
#define MOD_MUC_NS_PING     "urn:xmpp:ping"
#define MOD_MUC_NS_FMUC     "http://isode.com/protocol/fmuc"   /* XEP-0289 */

/* The longest room@service/nick formed: a join or nick that would make
 * a longer one is refused (XEP-0045 §7.2.1 jid-malformed). */
#define MOD_MUC_JID_MAX     1024
#define MOD_MUC_SID_MAX     64      /* a stanza id taken from a node */

#define MOD_MUC_STORE_ROOMS "muc_rooms"
#define MOD_MUC_STORE_AFFS  "muc_affiliations"
#define MOD_MUC_STORE_HIST  "muc_history"
#define MOD_MUC_STORE_KEYS  "muc_secret"

/* XEP-0045 §5.2, in increasing privilege */
typedef enum {
    MOD_MUC_OUTCAST = -1,
    MOD_MUC_AFF_NONE = 0,
    MOD_MUC_MEMBER,
    MOD_MUC_ADMIN,
    MOD_MUC_OWNER,
} mod_muc_aff_e;

/* XEP-0045 §5.1 */
typedef enum {
    MOD_MUC_ROLE_NONE = 0,
    MOD_MUC_VISITOR,
    MOD_MUC_PARTICIPANT,
    MOD_MUC_MODERATOR,
} mod_muc_role_e;

typedef struct {
    int64_t     max_rooms;
    int64_t     max_occupants;      /* cap of a room's maxusers */
    int64_t     history_length;     /* a new room's muc#maxhistoryfetch */
    int64_t     history_max;        /* cap of it */
    int64_t     archive_max;        /* messages kept per room */
    bool        locking;            /* new rooms locked until configured */
    const char *name;               /* the service's disco name */
    const char *const *fmuc;        /* peer_fmuc (a Peer's): its rooms
                                       or MUC services that federate */
} mod_muc_conf_t;

/* A room's configuration (XEP-0045 §10.2, muc#roomconfig). */
typedef struct {
    char   *name;
    char   *desc;
    char   *password;           /* NULL: none */
    bool    persistent;
    bool    public;
    bool    members_only;
    bool    moderated;
    bool    whois_anyone;       /* non-anonymous */
    bool    change_subject;     /* participants may change it */
    int64_t max_users;          /* 0: the service's cap */
    int64_t history;            /* muc#maxhistoryfetch */
    char   *fmuc_node;          /* XEP-0289: the node this room joins */
    bool    fmuc_replica;       /* ... as its replica (primary-replica) */
} mod_muc_rconf_t;

typedef struct mod_muc_service_s mod_muc_service_t;
typedef struct mod_muc_room_s    mod_muc_room_t;
typedef struct mod_muc_occ_s     mod_muc_occ_t;

struct mod_muc_occ_s {
    mod_muc_occ_t  *next;
    char           *nick;
    char           *jid;        /* real full JID */
    char           *bare;
    char            id[33];     /* XEP-0421 occupant id */
    mod_muc_role_e  role;
    sw_pool_t      *pres_pool;  /* the last available presence */
    sw_xml_t       *pres;
    int64_t         voice_asked;    /* §7.13: when it last asked */
    char           *node;       /* XEP-0289: the neighbouring node it is
                                   behind (a room's bare JID); NULL for
                                   an occupant of this server's own */
};

struct mod_muc_room_s {
    mod_muc_service_t *svc;
    char              *node;    /* localpart */
    char              *jid;     /* node@service */
    mod_muc_rconf_t    conf;
    bool               locked;  /* XEP-0045 §10.1: until configured */
    char              *subject; /* NULL: never set */
    char              *subject_by;  /* nick */
    sw_hash_t         *affs;    /* bare JID -> (intptr_t) aff + 2 */
    mod_muc_occ_t     *occs;
    size_t             n_occs;      /* local and remote */
    size_t             n_local;
    char             **nodes;       /* XEP-0289: nodes that joined this */
    bool              *nodes_replica;   /* ... each as a replica */
    size_t             n_nodes;
    bool               fmuc_joined; /* our join went to conf.fmuc_node */
    bool               fmuc_want;   /* the next presence there joins */
    unsigned           appended;    /* history items since the last trim */
    /* XEP-0289 resync: the origin ids ("by id") of the newest history
     * items, loaded when a node first sends here (mod_muc_fmuc.c) */
    sw_hash_t         *seen;
    char             **seen_ring;
    size_t             seen_next;
};

/* An IQ passed to an occupant (XEP-0045 §17.4 "IQ"), until its answer. */
#define MOD_MUC_FWD_MAX 1024
typedef struct {
    uint64_t n;                 /* the number in the forwarded id; 0 free */
    char    *requester;         /* full JIDs */
    char    *target;
    char    *orig_id;
    char    *from;              /* room/nick the answer comes back from */
} mod_muc_fwd_t;

struct mod_muc_service_s {
    sw_module_ctx_t   *mc;
    mod_muc_service_t *next;
    sw_host_t         *host;
    const char        *domain;
    mod_muc_conf_t    *conf;
    sw_hash_t         *rooms;   /* node -> mod_muc_room_t */
    sw_storage_t      *st;
    char               secret[65];  /* for occupant ids */
    mod_muc_fwd_t      fwd[MOD_MUC_FWD_MAX];    /* a ring: the oldest
                                                   goes when it is full */
    uint64_t           fwd_n;
    /* occupants whose server said they are gone, removed at the next
     * turn of the loop: the error may come back while the room is
     * still sending to everyone (a bounce is routed at once) */
    struct mod_muc_gone_s *gone;
    size_t             n_gone;
    uv_timer_t        *gone_timer;
};

/* mod_muc.c */
/* The occupant jid of room node is gone: removed at the next turn. */
void mod_muc_gone_later(mod_muc_service_t *svc, const char *node,
                        const char *jid);
/* IQs between occupants, through the room (semi-anonymous rooms) */
void mod_muc_fwd_request(mod_muc_room_t *r, const mod_muc_occ_t *from,
                         const mod_muc_occ_t *to, const sw_stanza_t *st);
void mod_muc_fwd_response(mod_muc_service_t *svc, const sw_stanza_t *st);
void mod_muc_send(sw_pool_t *pool, sw_xml_t *x);
void mod_muc_error(const sw_stanza_t *st, const char *cond);
void mod_muc_room_save(mod_muc_room_t *r);
void mod_muc_room_destroy(mod_muc_room_t *r);
mod_muc_room_t *mod_muc_room_new(mod_muc_service_t *svc, const char *node);
mod_muc_aff_e mod_muc_aff(const mod_muc_room_t *r, const char *bare);
void mod_muc_set_aff(mod_muc_room_t *r, const char *bare, mod_muc_aff_e a);
const char *mod_muc_aff_name(mod_muc_aff_e a);
/* an affiliation's value, or -2 for none of them */
int mod_muc_aff_parse(const char *s);
const char *mod_muc_role_name(mod_muc_role_e r);

/* How an occupant's presence goes out. */
typedef struct {
    const int      *codes;      /* 0-terminated status codes, or NULL */
    const char     *new_nick;   /* §7.6: status 303 */
    bool            unavailable;
    const sw_xml_t *extra;      /* appended inside <x/> (a <destroy/>) */
    const char     *actor;      /* §8.2: who kicked, banned... (a nick) */
    const char     *reason;
    const char     *from_node;  /* XEP-0289: it came from this node, which
                                   is not told again */
} mod_muc_pres_t;

/* mod_muc_room.c */
mod_muc_role_e mod_muc_role_for(const mod_muc_room_t *r, mod_muc_aff_e aff);
/* occ's presence (src: its children) to every occupant */
void mod_muc_presence_all(const mod_muc_room_t *r, const mod_muc_occ_t *occ,
                          const sw_xml_t *src, const mod_muc_pres_t *how);
/* occ leaves as how says; false when the room went with it */
bool mod_muc_leave_how(mod_muc_room_t *r, mod_muc_occ_t *o,
                       const sw_xml_t *src, mod_muc_pres_t *how);
/* a copy of m to each occupant of this server's */
void mod_muc_broadcast(const mod_muc_room_t *r, const sw_xml_t *m);
void mod_muc_occ_link(mod_muc_room_t *r, mod_muc_occ_t *o);
void mod_muc_occ_unlink(mod_muc_room_t *r, mod_muc_occ_t *o);
void mod_muc_occ_free(mod_muc_occ_t *o);
void mod_muc_occ_set_presence(mod_muc_occ_t *o, const sw_xml_t *x);
void mod_muc_strip(sw_xml_t *x, const char *ns, const char *name,
                   const char *by);
void mod_muc_stamp(int64_t when, char *buf, size_t size);
int64_t mod_muc_parse_stamp(const char *s);
/* §7.2.15: the room's history to `to` as want (<history/>) limits it;
 * to a node (XEP-0289) with an <fmuc/> payload naming each author */
void mod_muc_history(mod_muc_room_t *r, const char *to,
                     const sw_xml_t *want, bool node);
void mod_muc_occ_id(const mod_muc_room_t *r, const char *bare, char out[33]);
bool mod_muc_leave(mod_muc_room_t *r, mod_muc_occ_t *o, const sw_xml_t *src,
                   const int *codes, const sw_xml_t *extra);
/* §7.2.15: the subject to `to`; to a node with an <fmuc/> payload */
void mod_muc_subject_to(const mod_muc_room_t *r, const char *to, bool node);
void mod_muc_deliver(mod_muc_room_t *r, const mod_muc_occ_t *o, sw_xml_t *m,
                     const char *from_node, bool echo, int64_t when);
int mod_muc_room_presence(mod_muc_service_t *svc, mod_muc_room_t *r,
                          sw_stanza_t *st);
int mod_muc_room_message(mod_muc_room_t *r, sw_stanza_t *st);
int mod_muc_room_iq(mod_muc_room_t *r, sw_stanza_t *st);
mod_muc_occ_t *mod_muc_occ_by_jid(const mod_muc_room_t *r, const char *jid);
mod_muc_occ_t *mod_muc_occ_by_nick(const mod_muc_room_t *r,
                                   const char *nick);

/* mod_muc_fmuc.c: Federated MUC (XEP-0289) */
/* A stanza carrying an <fmuc/> payload from a peer link; SW_DECLINED
 * when it is not one (a client's <fmuc/> counts for nothing). */
int mod_muc_fmuc_in(mod_muc_service_t *svc, mod_muc_room_t *r,
                    sw_stanza_t *st, const sw_origin_t *origin);
/* A local occupant's presence (how) for the other nodes, but `except`. */
void mod_muc_fmuc_presence(mod_muc_room_t *r, const mod_muc_occ_t *o,
                           const sw_xml_t *src, const mod_muc_pres_t *how,
                           const char *except);
/* A groupchat or subject message of o's for the other nodes. */
void mod_muc_fmuc_message(mod_muc_room_t *r, const mod_muc_occ_t *o,
                          const sw_xml_t *m, const char *except);
/* The same for one node. */
void mod_muc_fmuc_message_to(mod_muc_room_t *r, const mod_muc_occ_t *o,
                             const sw_xml_t *m, const char *node);
/* Marks x as a node's, for the occupant whose real JID is real (NULL:
 * the node's own) with the XEP-0289 <fmuc/> payload. */
void mod_muc_fmuc_mark(sw_xml_t *x, const char *real);
/* A history item archived under its origin's stanza id (by, id). */
void mod_muc_fmuc_seen_add(mod_muc_room_t *r, const char *by,
                           const char *id);
void mod_muc_fmuc_seen_free(mod_muc_room_t *r);
/* At start: a node tells its neighbours it restarted. */
void mod_muc_fmuc_restarted(mod_muc_room_t *r);
/* The occupants of this server's join the joined node (again). */
void mod_muc_fmuc_rejoin(mod_muc_room_t *r);
/* A private message to o, who is behind another node. */
void mod_muc_fmuc_private(mod_muc_room_t *r, const mod_muc_occ_t *from,
                          const mod_muc_occ_t *to, const sw_xml_t *m);
/* Whether node (a room's JID) may federate with rooms of this service. */
bool mod_muc_fmuc_trusted(mod_muc_service_t *svc, const char *node);
void mod_muc_fmuc_forget(mod_muc_room_t *r);
void mod_muc_fmuc_detach(mod_muc_room_t *r);
/* Federation state kept at a joined node: an occupant behind a node that
 * joined it came or changed (present) or went; all of a room's loaded
 * (at start) or removed (the room goes). */
void mod_muc_fmuc_keep(mod_muc_room_t *r, const mod_muc_occ_t *o,
                       bool present);
void mod_muc_fmuc_load(mod_muc_room_t *r);
void mod_muc_fmuc_clear(mod_muc_room_t *r);

/* mod_muc_mam.c: XEP-0313 queries on the room's archive */
int mod_muc_mam_iq(mod_muc_room_t *r, sw_stanza_t *st);

/* mod_muc_admin.c */
int mod_muc_admin_iq(mod_muc_room_t *r, sw_stanza_t *st);
int mod_muc_invite(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st);
/* §7.13 a voice request (a muc#request form), §8.6 its approval */
int mod_muc_voice(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st,
                  const sw_xml_t *form);

#endif
