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
    size_t             n_occs;
    unsigned           appended;    /* history items since the last trim */
};

struct mod_muc_service_s {
    mod_muc_service_t *next;
    sw_host_t         *host;
    const char        *domain;
    mod_muc_conf_t    *conf;
    sw_hash_t         *rooms;   /* node -> mod_muc_room_t */
    sw_storage_t      *st;
    char               secret[65];  /* for occupant ids */
};

/* mod_muc.c */
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
} mod_muc_pres_t;

/* mod_muc_room.c */
mod_muc_role_e mod_muc_role_for(const mod_muc_room_t *r, mod_muc_aff_e aff);
/* occ's presence (src: its children) to every occupant */
void mod_muc_presence_all(const mod_muc_room_t *r, const mod_muc_occ_t *occ,
                          const sw_xml_t *src, const mod_muc_pres_t *how);
/* occ leaves as how says; the room may go with it */
void mod_muc_leave_how(mod_muc_room_t *r, mod_muc_occ_t *o,
                       const sw_xml_t *src, mod_muc_pres_t *how);
/* a copy of m to each occupant */
void mod_muc_broadcast(const mod_muc_room_t *r, const sw_xml_t *m);
int mod_muc_room_presence(mod_muc_service_t *svc, mod_muc_room_t *r,
                          sw_stanza_t *st);
int mod_muc_room_message(mod_muc_room_t *r, sw_stanza_t *st);
int mod_muc_room_iq(mod_muc_room_t *r, sw_stanza_t *st);
mod_muc_occ_t *mod_muc_occ_by_jid(const mod_muc_room_t *r, const char *jid);
mod_muc_occ_t *mod_muc_occ_by_nick(const mod_muc_room_t *r,
                                   const char *nick);

/* mod_muc_admin.c */
int mod_muc_admin_iq(mod_muc_room_t *r, sw_stanza_t *st);
int mod_muc_invite(mod_muc_room_t *r, mod_muc_occ_t *o, sw_stanza_t *st);

#endif
