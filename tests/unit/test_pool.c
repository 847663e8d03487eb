/* Pool, buffer and owner basics. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <skywave/skywave.h>

static void
test_pool_alloc_aligned_and_distinct(void **state)
{
    sw_pool_t *p = sw_pool_new(64);
    char      *a, *b, *big;
    size_t     i;

    a = sw_pool_alloc(p, 3);
    b = sw_pool_alloc(p, 5);
    assert_true((uintptr_t) a % _Alignof(max_align_t) == 0);
    assert_true((uintptr_t) b % _Alignof(max_align_t) == 0);
    assert_true(b >= a + 3 || a >= b + 5);
    /* A block bigger than any chunk, then small ones still work. */
    big = sw_pool_alloc(p, 100000);
    memset(big, 'x', 100000);
    for (i = 0; i < 1000; i++) {
        char *s = sw_pool_printf(p, "item %zu", i);

        assert_string_equal(s, s);  /* readable */
        assert_int_equal(strncmp(s, "item ", 5), 0);
    }
    assert_true(sw_pool_used(p) >= 100000 + 8);
    assert_string_equal(sw_pool_strndup(p, "abcdef", 3), "abc");
    assert_null(sw_pool_strdup(p, NULL));
    sw_pool_free(p);
}

static void
test_buf_ops(void **state)
{
    sw_buf_t b;
    char    *s;
    size_t   n;

    sw_buf_init(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sw_buf_append_str(&b, "hello ");
    sw_buf_printf(&b, "%d-%s", 42, "x");
    assert_string_equal(b.data, "hello 42-x");
    sw_buf_consume(&b, 6);
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    s = sw_buf_steal(&b, &n);
    assert_int_equal(n, 4);
    assert_string_equal(s, "42-x");
    free(s);
    assert_int_equal(b.len, 0);
    sw_buf_free(&b);
}

static int order[8];
static int n_order;

static void
record(void *data)
{
    order[n_order++] = (int) (intptr_t) data;
}

static void
test_owner_reverse_order_and_forget(void **state)
{
    sw_owner_t    o;
    sw_cleanup_t *c2;

    n_order = 0;
    sw_owner_init(&o, "t");
    sw_owner_on_release(&o, record, (void *) 1);
    c2 = sw_owner_on_release(&o, record, (void *) 2);
    sw_owner_on_release(&o, record, (void *) 3);
    sw_owner_forget(&o, c2);
    sw_owner_release(&o);
    assert_int_equal(n_order, 2);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 1);
    sw_owner_release(&o);           /* idempotent */
    assert_int_equal(n_order, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_alloc_aligned_and_distinct),
        cmocka_unit_test(test_buf_ops),
        cmocka_unit_test(test_owner_reverse_order_and_forget),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
