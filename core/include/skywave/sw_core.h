/*
 * Skywave public SDK: common definitions.
 *
 * Return codes have one meaning everywhere (STYLE.md).  Allocation failure
 * is fatal (sw_alloc aborts): memory use is bounded by the configured
 * stanza and queue limits, not by checking every malloc.
 */
#ifndef SKYWAVE_SW_CORE_H
#define SKYWAVE_SW_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SW_OK        0
#define SW_ERROR    -1
#define SW_AGAIN    -2
#define SW_DONE     -4
#define SW_DECLINED -5

#define SW_NS_STREAMS   "http://etherx.jabber.org/streams"
#define SW_NS_CLIENT    "jabber:client"
#define SW_NS_SERVER    "jabber:server"
#define SW_NS_XML       "http://www.w3.org/XML/1998/namespace"
#define SW_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define SW_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"

#if defined(__GNUC__)
#define SW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SW_UNUSED       __attribute__((unused))
#else
#define SW_PRINTF(f, a)
#define SW_UNUSED
#endif

/* Allocation helpers: never return NULL (abort on exhaustion). */
void *sw_alloc(size_t n);
void *sw_calloc(size_t nmemb, size_t n);
void *sw_realloc(void *p, size_t n);
char *sw_strdup(const char *s);
char *sw_strndup(const char *s, size_t n);

/*
 * An owner collects undo actions for everything registered on its behalf
 * (hooks, filters, services, timers).  Releasing the owner runs them in
 * reverse order, so a module or a session can never leave a dangling
 * registration behind.
 */
typedef struct sw_owner_s   sw_owner_t;
typedef struct sw_cleanup_s sw_cleanup_t;
typedef void (*sw_cleanup_pt)(void *data);

struct sw_owner_s {
    const char    *name;      /* for logs: "mod_c2s", "c2s session 12" */
    sw_cleanup_t  *cleanups;  /* most recent first */
};

void sw_owner_init(sw_owner_t *o, const char *name);
/* Registers fn(data) to run at release; returns a token for sw_owner_forget. */
sw_cleanup_t *sw_owner_on_release(sw_owner_t *o, sw_cleanup_pt fn, void *data);
/* Drops a cleanup without running it (the thing was undone another way). */
void sw_owner_forget(sw_owner_t *o, sw_cleanup_t *c);
void sw_owner_release(sw_owner_t *o);

#endif
