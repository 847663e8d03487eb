/* Hooks: priority order, stop/continue, owners, changes while firing. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

#include "sw_core_int.h"

typedef struct {
    char log[64];
    int  n;
} trace_t;

typedef struct {
    char        tag;
    int         rc;
    sw_owner_t *owner_to_release;   /* released from inside the handler */
    sw_hook_t  *add_to;             /* adds a handler while firing */
} handler_t;

static int
h_trace(void *data, void *ud)
{
    trace_t   *t = data;
    handler_t *h = ud;

    t->log[t->n++] = h->tag;
    t->log[t->n] = '\0';
    if (h->owner_to_release != NULL) {
        sw_owner_release(h->owner_to_release);
    }
    if (h->add_to != NULL) {
        static handler_t late = { 'L', SW_DECLINED, NULL, NULL };

        sw_hook_add_h(NULL, h->add_to, 1000, h_trace, &late);
        h->add_to = NULL;
    }
    return h->rc;
}

static int
teardown(void **state)
{
    sw_hook_shutdown();
    return 0;
}

static void
test_priority_and_ties(void **state)
{
    sw_owner_t o;
    sw_hook_t *ev = sw_hook_declare("test/order", "order");
    handler_t  a = { 'a', SW_DECLINED }, b = { 'b', SW_DECLINED },
               c = { 'c', SW_DECLINED }, d = { 'd', SW_DECLINED };
    trace_t    t = { "", 0 };

    sw_owner_init(&o, "t");
    assert_int_equal(sw_hook_add(&o, "test/order", 0, h_trace, &a), SW_OK);
    assert_int_equal(sw_hook_add(&o, "test/order", 10, h_trace, &b), SW_OK);
    assert_int_equal(sw_hook_add(&o, "test/order", 0, h_trace, &c), SW_OK);
    assert_int_equal(sw_hook_add(&o, "test/order", -5, h_trace, &d), SW_OK);
    assert_int_equal(sw_hook_fire(ev, &t), SW_DECLINED);
    assert_string_equal(t.log, "bacd");
    sw_owner_release(&o);
    assert_int_equal(sw_hook_count(ev), 0);
}

static void
test_ok_stops(void **state)
{
    sw_owner_t o;
    sw_hook_t *ev = sw_hook_declare("test/stop", NULL);
    handler_t  a = { 'a', SW_DECLINED }, b = { 'b', SW_OK },
               c = { 'c', SW_DECLINED };
    trace_t    t = { "", 0 };

    sw_owner_init(&o, "t");
    sw_hook_add_h(&o, ev, 3, h_trace, &a);
    sw_hook_add_h(&o, ev, 2, h_trace, &b);
    sw_hook_add_h(&o, ev, 1, h_trace, &c);
    assert_int_equal(sw_hook_fire(ev, &t), SW_OK);
    assert_string_equal(t.log, "ab");
    /* Removing b lets the event reach c. */
    assert_int_equal(sw_hook_remove(ev, h_trace, &b), SW_OK);
    assert_int_equal(sw_hook_remove(ev, h_trace, &b), SW_DECLINED);
    t.n = 0;
    assert_int_equal(sw_hook_fire(ev, &t), SW_DECLINED);
    assert_string_equal(t.log, "ac");
    sw_owner_release(&o);
}

static void
test_undeclared_is_error(void **state)
{
    sw_owner_t o;
    handler_t  a = { 'a', SW_DECLINED };

    sw_owner_init(&o, "t");
    assert_int_equal(sw_hook_add(&o, "test/typo-event", 0, h_trace, &a),
                     SW_ERROR);
    assert_null(sw_hook_find("test/typo-event"));
    assert_int_equal(sw_hook_fire_name("test/typo-event", NULL), SW_DECLINED);
    sw_owner_release(&o);
}

static void
test_owner_released_while_firing(void **state)
{
    sw_owner_t first, second;
    sw_hook_t *ev = sw_hook_declare("test/release", NULL);
    handler_t  a = { 'a', SW_DECLINED, &second, NULL },
               b = { 'b', SW_DECLINED }, c = { 'c', SW_DECLINED };
    trace_t    t = { "", 0 };

    sw_owner_init(&first, "first");
    sw_owner_init(&second, "second");
    sw_hook_add_h(&first, ev, 10, h_trace, &a);
    sw_hook_add_h(&second, ev, 5, h_trace, &b);
    sw_hook_add_h(&first, ev, 1, h_trace, &c);
    /* a releases the owner of b: b must not run, c still does. */
    sw_hook_fire(ev, &t);
    assert_string_equal(t.log, "ac");
    assert_int_equal(sw_hook_count(ev), 2);
    sw_owner_release(&first);
    assert_int_equal(sw_hook_count(ev), 0);
}

static void
test_added_while_firing_runs_next_time(void **state)
{
    sw_owner_t o;
    sw_hook_t *ev = sw_hook_declare("test/add", NULL);
    handler_t  a = { 'a', SW_DECLINED, NULL, NULL };
    trace_t    t = { "", 0 };

    a.add_to = ev;
    sw_owner_init(&o, "t");
    sw_hook_add_h(&o, ev, 0, h_trace, &a);
    sw_hook_fire(ev, &t);
    assert_string_equal(t.log, "a");
    assert_int_equal(sw_hook_count(ev), 2);
    t.n = 0;
    sw_hook_fire(ev, &t);
    assert_string_equal(t.log, "La");   /* priority 1000 goes first */
    sw_owner_release(&o);
    assert_int_equal(sw_hook_count(ev), 1); /* the ownerless one stays */
}

static void
each_count(const char *name, const char *help, void *ud)
{
    char *prev = ud;

    /* sorted by name */
    assert_true(strcmp(prev, name) < 0);
    strcpy(prev, name);
}

static void
test_each_sorted(void **state)
{
    char prev[64] = "";

    sw_hook_declare("zeta", "z");
    sw_hook_declare("alpha", "a");
    sw_hook_declare("mid", "m");
    assert_non_null(sw_hook_find("mid"));
    sw_hook_each(each_count, prev);
    assert_string_equal(prev, "zeta");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_priority_and_ties, teardown),
        cmocka_unit_test_teardown(test_ok_stops, teardown),
        cmocka_unit_test_teardown(test_undeclared_is_error, teardown),
        cmocka_unit_test_teardown(test_owner_released_while_firing, teardown),
        cmocka_unit_test_teardown(test_added_while_firing_runs_next_time,
                                  teardown),
        cmocka_unit_test_teardown(test_each_sorted, teardown),
    };

    sw_log_set_level(SW_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
