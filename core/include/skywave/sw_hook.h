/*
 * Hooks: named, declared events with priority-ordered handlers (higher
 * priority first, ties in registration order).  A handler returns SW_OK
 * (handled: stop) or SW_DECLINED (go on); SW_ERROR also stops.  Firing an
 * event returns what stopped it, or SW_DECLINED when nobody handled it.
 * Handlers are registered through an owner, so releasing the owner removes
 * them (a module unloading, a session ending).  Handlers may be added or
 * removed while the event fires.
 */
#ifndef SKYWAVE_SW_HOOK_H
#define SKYWAVE_SW_HOOK_H

#include <skywave/sw_core.h>

typedef struct sw_hook_s sw_hook_t;
typedef int (*sw_hook_pt)(void *event_data, void *ud);

/* Declares an event (idempotent); returns its handle (lives forever). */
sw_hook_t *sw_hook_declare(const char *name, const char *help);
/* Handle of a declared event, or NULL. */
sw_hook_t *sw_hook_find(const char *name);
/* SW_OK, or SW_ERROR when the event was never declared (a typo). */
int sw_hook_add(sw_owner_t *owner, const char *name, int priority,
                sw_hook_pt fn, void *ud);
int sw_hook_add_h(sw_owner_t *owner, sw_hook_t *h, int priority,
                  sw_hook_pt fn, void *ud);
/* Removes one handler (fn, ud) early; SW_OK or SW_DECLINED if absent. */
int sw_hook_remove(sw_hook_t *h, sw_hook_pt fn, void *ud);
int sw_hook_fire(sw_hook_t *h, void *event_data);
int sw_hook_fire_name(const char *name, void *event_data);
size_t sw_hook_count(const sw_hook_t *h);
/* For --list-events: calls fn for each declared event, sorted by name. */
void sw_hook_each(void (*fn)(const char *name, const char *help, void *ud),
                  void *ud);

#endif
