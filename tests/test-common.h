/*
 * test-common.h - helpers every cmocka test of libgocc shares.
 *
 * SCALE(n): loop counts shrink under sanitizers (GOCC_TEST_SANITIZED).
 * Each test ends with ASSERT_NO_TASKS(start): gocc_tasks_live() back to the
 * value it had when the test began (waits up to 5 s for tasks to return).
 */
#ifndef GOCC_TEST_COMMON_H
#define GOCC_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <gocc.h>

#ifdef GOCC_TEST_SANITIZED
#define SCALE(n) (((n) / 8) > 0 ? ((n) / 8) : 1)
#else
#define SCALE(n) (n)
#endif

/* Wait (bounded) until gocc_tasks_live() <= want; return what it is. */
static inline size_t test_wait_tasks(size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t live;
    while ((live = gocc_tasks_live()) > want && gocc_now() < end)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    return live;
}

#define ASSERT_NO_TASKS(start) \
    assert_int_equal(test_wait_tasks((start), 5 * GOCC_SECOND), (start))

/* A plain joinable thread, for tests that want an OS thread of their own. */
typedef struct test_thread { pthread_t t; } test_thread;
static inline void test_thread_start(test_thread *th, void *(*fn)(void *), void *arg) {
    assert_int_equal(pthread_create(&th->t, NULL, fn, arg), 0);
}
static inline void test_thread_join(test_thread *th) {
    assert_int_equal(pthread_join(th->t, NULL), 0);
}

#endif /* GOCC_TEST_COMMON_H */
