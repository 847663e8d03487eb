/*
 * mod_muc_mam: XEP-0313 (Message Archive Management) queries on a room's
 * archive, the one its history comes from: a result message per item
 * (§4.2, forwarded with its delay), then the IQ result with <fin/> and
 * XEP-0059 paging.  A message's archive id is its XEP-0359 stanza id.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mod_muc.h"

#define MOD_MUC_NS_MAM "urn:xmpp:mam:2"
#define MOD_MUC_NS_RSM "http://jabber.org/protocol/rsm"
#define MOD_MUC_NS_FWD "urn:xmpp:forward:0"

#define MOD_MUC_MAM_MAX 100      /* items per page at most */

/* An archive id from its text: > 0, or -1 when it is not one. */
static int64_t
mod_muc_mam_id(const char *s)
{
    char      *end;
    long long  v;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    v = strtoll(s, &end, 10);
    return *end == '\0' && v > 0 ? v : -1;
}

/* The query's form (§5.1.1): start, end, after-id, before-id; with is
 * not a filter of a room's archive (nobody's JID but the room's). */
static const char *
mod_muc_mam_form(const sw_xml_t *x, sw_archive_query_t *q)
{
    const sw_xml_t *f;

    for (f = x ? sw_xml_child(x, NULL, "field") : NULL; f != NULL;
         f = sw_xml_next_match(f, NULL, "field"))
    {
        const char *var = sw_xml_attr(f, "var");
        const char *v = sw_xml_child_text(f, NULL, "value");

        if (var == NULL || v == NULL) {
            continue;
        }
        if (strcmp(var, "FORM_TYPE") == 0) {
            if (strcmp(v, MOD_MUC_NS_MAM) != 0) {
                return "bad-request";
            }
        } else if (strcmp(var, "start") == 0 || strcmp(var, "end") == 0) {
            int64_t t = mod_muc_parse_stamp(v);

            if (t < 0) {
                return "bad-request";
            }
            if (var[0] == 's') {
                q->start = t;
            } else {
                q->end = t;
            }
        } else if (strcmp(var, "after-id") == 0
                   || strcmp(var, "before-id") == 0)
        {
            int64_t id = mod_muc_mam_id(v);

            if (id < 0) {
                return "item-not-found";
            }
            if (var[0] == 'a') {
                q->after_id = id;
            } else {
                q->before_id = id;
            }
        } else if (strcmp(var, "with") == 0) {
            return "feature-not-implemented";
        }
    }
    return NULL;
}

static void
mod_muc_mam_result(const mod_muc_room_t *r, const sw_stanza_t *st,
                   const char *queryid, const sw_archive_item_t *it)
{
    sw_pool_t *pool = sw_pool_new(it->len + 1024);
    sw_xml_t  *m = sw_xml_new(pool, SW_NS_CLIENT, "message");
    sw_xml_t  *res, *fwd, *d, *orig;
    char       id[32], stamp[32];

    sw_xml_set_attr(m, "from", r->jid);
    sw_xml_set_attr(m, "to", st->from->full);
    res = sw_xml_add(m, MOD_MUC_NS_MAM, "result");
    if (queryid != NULL) {
        sw_xml_set_attr(res, "queryid", queryid);
    }
    snprintf(id, sizeof(id), "%lld", (long long) it->id);
    sw_xml_set_attr(res, "id", id);
    fwd = sw_xml_add(res, MOD_MUC_NS_FWD, "forwarded");
    d = sw_xml_add(fwd, MOD_MUC_NS_DELAY, "delay");
    mod_muc_stamp(it->when, stamp, sizeof(stamp));
    sw_xml_set_attr(d, "stamp", stamp);
    orig = sw_xml_parse(pool, it->data, it->len, NULL);
    if (orig != NULL) {
        d = sw_xml_add(orig, MOD_MUC_NS_SID, "stanza-id");
        sw_xml_set_attr(d, "id", id);
        sw_xml_set_attr(d, "by", r->jid);
        sw_xml_append(fwd, orig);
    }
    mod_muc_send(pool, m);
}

/* XEP-0313 §4: who may read the archive: who may enter without more
 * (not banned; a member of a members-only or password-protected room),
 * or an occupant. */
int
mod_muc_mam_iq(mod_muc_room_t *r, sw_stanza_t *st)
{
    const sw_xml_t     *q = st->payload;
    const sw_xml_t     *set = sw_xml_child(q, MOD_MUC_NS_RSM, "set");
    const char         *queryid = sw_xml_attr(q, "queryid");
    mod_muc_aff_e       aff = mod_muc_aff(r, st->from->bare);
    sw_storage_t       *sto = r->svc->st;
    sw_archive_query_t  aq;
    sw_archive_item_t  *items;
    sw_pool_t          *tmp;
    size_t              n, i, first = 0, max = 50;
    const char         *err, *v;
    sw_stanza_t        *res;
    sw_xml_t           *fin, *rs;
    bool                complete;
    char                num[32];

    if (strcmp(st->type, "get") == 0) {
        /* §5.1: the form's fields */
        sw_xml_t *x, *f;

        res = sw_stanza_iq_result(st);
        x = sw_xml_add(sw_xml_add(res->xml, MOD_MUC_NS_MAM, "query"),
                       MOD_MUC_NS_DATA, "x");
        sw_xml_set_attr(x, "type", "form");
        f = sw_xml_add(x, NULL, "field");
        sw_xml_set_attr(f, "var", "FORM_TYPE");
        sw_xml_set_attr(f, "type", "hidden");
        sw_xml_add_text(sw_xml_add(f, NULL, "value"), MOD_MUC_NS_MAM,
                        strlen(MOD_MUC_NS_MAM));
        for (v = "start"; v != NULL;
             v = strcmp(v, "start") == 0 ? "end"
                 : strcmp(v, "end") == 0 ? "after-id"
                 : strcmp(v, "after-id") == 0 ? "before-id" : NULL)
        {
            f = sw_xml_add(x, NULL, "field");
            sw_xml_set_attr(f, "var", v);
            sw_xml_set_attr(f, "type", "text-single");
        }
        sw_iq_reply(res);
        return SW_OK;
    }
    if (aff == MOD_MUC_OUTCAST
        || ((r->conf.members_only || r->conf.password != NULL)
            && aff < MOD_MUC_MEMBER
            && mod_muc_occ_by_jid(r, st->from->full) == NULL))
    {
        mod_muc_error(st, "forbidden");
        return SW_OK;
    }
    memset(&aq, 0, sizeof(aq));
    if ((err = mod_muc_mam_form(sw_xml_child(q, MOD_MUC_NS_DATA, "x"), &aq))
        != NULL)
    {
        mod_muc_error(st, err);
        return SW_OK;
    }
    if (set != NULL) {
        const sw_xml_t *b = sw_xml_child(set, NULL, "before");

        if ((v = sw_xml_child_text(set, NULL, "max")) != NULL) {
            long long m = strtoll(v, NULL, 10);

            max = m < 0 ? 0 : m > MOD_MUC_MAM_MAX ? MOD_MUC_MAM_MAX
                                                  : (size_t) m;
        }
        if ((v = sw_xml_child_text(set, NULL, "after")) != NULL) {
            if ((aq.after_id = mod_muc_mam_id(v)) < 0) {
                mod_muc_error(st, "item-not-found");
                return SW_OK;
            }
        }
        if (b != NULL) {
            aq.last = true;             /* XEP-0059 §2.5: the last page */
            v = sw_xml_text(b);
            if (v[0] != '\0' && (aq.before_id = mod_muc_mam_id(v)) < 0) {
                mod_muc_error(st, "item-not-found");
                return SW_OK;
            }
        }
    }
    aq.max = max + 1;                   /* one more: is there more? */
    tmp = sw_pool_new(16384);
    if (sto->archive_query(sto, MOD_MUC_STORE_HIST, r->svc->domain, r->node,
                           &aq, tmp, &items, &n) != SW_OK)
    {
        sw_pool_free(tmp);
        mod_muc_error(st, "internal-server-error");
        return SW_OK;
    }
    complete = n <= max;
    if (!complete) {
        if (aq.last) {
            first = 1;                  /* the oldest is the one too many */
        }
        n = first + max;
    }
    for (i = first; i < n; i++) {
        mod_muc_mam_result(r, st, queryid, &items[i]);
    }
    res = sw_stanza_iq_result(st);
    fin = sw_xml_add(res->xml, MOD_MUC_NS_MAM, "fin");
    if (complete) {
        sw_xml_set_attr(fin, "complete", "true");
    }
    rs = sw_xml_add(fin, MOD_MUC_NS_RSM, "set");
    if (n > first) {
        sw_xml_t *e;

        snprintf(num, sizeof(num), "%lld", (long long) items[first].id);
        e = sw_xml_add(rs, NULL, "first");
        sw_xml_add_text(e, num, strlen(num));
        snprintf(num, sizeof(num), "%lld", (long long) items[n - 1].id);
        e = sw_xml_add(rs, NULL, "last");
        sw_xml_add_text(e, num, strlen(num));
    }
    sw_iq_reply(res);
    sw_pool_free(tmp);
    return SW_OK;
}
