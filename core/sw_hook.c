/*
 * Hooks: declared events with priority-ordered handlers.
 *
 * Handlers live in an array sorted by (priority desc, registration order).
 * Firing walks the array by index; handlers added while an event fires are
 * parked and merged when the outermost fire returns, and removed ones are
 * only marked, so a handler may (un)register anything at any time.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <skywave/sw_hook.h>
#include <skywave/sw_log.h>

#include "sw_core_int.h"

typedef struct sw_hook_handler_s {
    int            priority;
    unsigned long  seq;
    sw_hook_pt     fn;
    void          *ud;
    sw_owner_t    *owner;
    sw_cleanup_t  *cleanup;
    sw_hook_t     *hook;
    bool           removed;
} sw_hook_handler_t;

struct sw_hook_s {
    sw_hook_t          *next;
    char               *name;
    char               *help;
    sw_hook_handler_t **handlers;
    size_t              n;
    size_t              cap;
    sw_hook_handler_t **parked;     /* added while firing */
    size_t              n_parked;
    unsigned            firing;     /* nesting depth */
    bool                dirty;      /* some handler marked removed */
};

static sw_hook_t     *sw_hooks;
static unsigned long  sw_hook_seq;

sw_hook_t *
sw_hook_find(const char *name)
{
    sw_hook_t *h;

    for (h = sw_hooks; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0) {
            return h;
        }
    }
    return NULL;
}

sw_hook_t *
sw_hook_declare(const char *name, const char *help)
{
    sw_hook_t *h = sw_hook_find(name);

    if (h != NULL) {
        if (h->help == NULL && help != NULL) {
            h->help = sw_strdup(help);
        }
        return h;
    }
    h = sw_calloc(1, sizeof(*h));
    h->name = sw_strdup(name);
    h->help = sw_strdup(help);
    h->next = sw_hooks;
    sw_hooks = h;
    return h;
}

static void
sw_hook_insert(sw_hook_t *h, sw_hook_handler_t *hh)
{
    size_t i;

    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 4;
        h->handlers = sw_realloc(h->handlers, h->cap * sizeof(*h->handlers));
    }
    /* Higher priority first; equal priorities keep registration order. */
    for (i = h->n; i > 0 && h->handlers[i - 1]->priority < hh->priority; i--) {
        h->handlers[i] = h->handlers[i - 1];
    }
    h->handlers[i] = hh;
    h->n++;
}

static void
sw_hook_compact(sw_hook_t *h)
{
    size_t i, j;

    if (h->dirty) {
        for (i = 0, j = 0; i < h->n; i++) {
            if (h->handlers[i]->removed) {
                free(h->handlers[i]);
            } else {
                h->handlers[j++] = h->handlers[i];
            }
        }
        h->n = j;
        h->dirty = false;
    }
    for (i = 0; i < h->n_parked; i++) {
        if (h->parked[i]->removed) {
            free(h->parked[i]);
        } else {
            sw_hook_insert(h, h->parked[i]);
        }
    }
    free(h->parked);
    h->parked = NULL;
    h->n_parked = 0;
}

static void
sw_hook_unregister(void *data)
{
    sw_hook_handler_t *hh = data;
    sw_hook_t         *h = hh->hook;

    hh->removed = true;
    hh->cleanup = NULL;
    h->dirty = true;
    if (h->firing == 0) {
        sw_hook_compact(h);
    }
}

int
sw_hook_add_h(sw_owner_t *owner, sw_hook_t *h, int priority, sw_hook_pt fn,
              void *ud)
{
    sw_hook_handler_t *hh = sw_calloc(1, sizeof(*hh));

    hh->priority = priority;
    hh->seq = ++sw_hook_seq;
    hh->fn = fn;
    hh->ud = ud;
    hh->owner = owner;
    hh->hook = h;
    if (owner != NULL) {
        hh->cleanup = sw_owner_on_release(owner, sw_hook_unregister, hh);
    }
    if (h->firing) {
        h->parked = sw_realloc(h->parked,
                               (h->n_parked + 1) * sizeof(*h->parked));
        h->parked[h->n_parked++] = hh;
    } else {
        sw_hook_insert(h, hh);
    }
    return SW_OK;
}

int
sw_hook_add(sw_owner_t *owner, const char *name, int priority, sw_hook_pt fn,
            void *ud)
{
    sw_hook_t *h = sw_hook_find(name);

    if (h == NULL) {
        sw_log_error("%s: cannot hook undeclared event '%s'",
                     owner && owner->name ? owner->name : "core", name);
        return SW_ERROR;
    }
    return sw_hook_add_h(owner, h, priority, fn, ud);
}

static sw_hook_handler_t *
sw_hook_lookup(sw_hook_t *h, sw_hook_pt fn, void *ud)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        if (!h->handlers[i]->removed && h->handlers[i]->fn == fn
            && h->handlers[i]->ud == ud)
        {
            return h->handlers[i];
        }
    }
    for (i = 0; i < h->n_parked; i++) {
        if (!h->parked[i]->removed && h->parked[i]->fn == fn
            && h->parked[i]->ud == ud)
        {
            return h->parked[i];
        }
    }
    return NULL;
}

int
sw_hook_remove(sw_hook_t *h, sw_hook_pt fn, void *ud)
{
    sw_hook_handler_t *hh = sw_hook_lookup(h, fn, ud);

    if (hh == NULL) {
        return SW_DECLINED;
    }
    if (hh->owner != NULL && hh->cleanup != NULL) {
        sw_owner_forget(hh->owner, hh->cleanup);
    }
    sw_hook_unregister(hh);
    return SW_OK;
}

int
sw_hook_fire(sw_hook_t *h, void *event_data)
{
    size_t i, n = h->n;
    int    rc = SW_DECLINED;

    h->firing++;
    for (i = 0; i < n; i++) {
        sw_hook_handler_t *hh = h->handlers[i];

        if (hh->removed) {
            continue;
        }
        rc = hh->fn(event_data, hh->ud);
        if (rc != SW_DECLINED) {
            break;
        }
    }
    if (--h->firing == 0 && (h->dirty || h->n_parked)) {
        sw_hook_compact(h);
    }
    return rc;
}

int
sw_hook_fire_name(const char *name, void *event_data)
{
    sw_hook_t *h = sw_hook_find(name);

    return h ? sw_hook_fire(h, event_data) : SW_DECLINED;
}

size_t
sw_hook_count(const sw_hook_t *h)
{
    size_t i, n = 0;

    for (i = 0; i < h->n; i++) {
        n += !h->handlers[i]->removed;
    }
    for (i = 0; i < h->n_parked; i++) {
        n += !h->parked[i]->removed;
    }
    return n;
}

static int
sw_hook_cmp(const void *a, const void *b)
{
    const sw_hook_t *x = *(const sw_hook_t *const *) a;
    const sw_hook_t *y = *(const sw_hook_t *const *) b;

    return strcmp(x->name, y->name);
}

void
sw_hook_each(void (*fn)(const char *name, const char *help, void *ud),
             void *ud)
{
    sw_hook_t  *h, **all;
    size_t      n = 0, i;

    for (h = sw_hooks; h != NULL; h = h->next) {
        n++;
    }
    all = sw_calloc(n, sizeof(*all));
    for (h = sw_hooks, i = 0; h != NULL; h = h->next) {
        all[i++] = h;
    }
    qsort(all, n, sizeof(*all), sw_hook_cmp);
    for (i = 0; i < n; i++) {
        fn(all[i]->name, all[i]->help ? all[i]->help : "", ud);
    }
    free(all);
}

static void
sw_hook_handler_free(sw_hook_handler_t *hh)
{
    if (hh->owner != NULL && hh->cleanup != NULL) {
        sw_owner_forget(hh->owner, hh->cleanup);
    }
    free(hh);
}

void
sw_hook_free_private(sw_hook_t *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        sw_hook_handler_free(h->handlers[i]);
    }
    for (i = 0; i < h->n_parked; i++) {
        sw_hook_handler_free(h->parked[i]);
    }
    free(h->parked);
    free(h->handlers);
    free(h->name);
    free(h->help);
    free(h);
}

sw_hook_t *
sw_hook_new_private(const char *name)
{
    sw_hook_t *h = sw_calloc(1, sizeof(*h));

    h->name = sw_strdup(name);
    return h;
}

const char *
sw_hook_name(const sw_hook_t *h)
{
    return h->name;
}

void
sw_hook_shutdown(void)
{
    sw_hook_t *h, *next;

    for (h = sw_hooks; h != NULL; h = next) {
        next = h->next;
        sw_hook_free_private(h);
    }
    sw_hooks = NULL;
}
