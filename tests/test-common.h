/*
 * test-common.h - helpers every cmocka test of libgocc shares.
 *
 * SCALE(n): loop counts shrink under sanitizers (GOCC_TEST_SANITIZED).
 * Tests are registered with GOCC_TEST(f) (not cmocka_unit_test): its
 * teardown is gocc_leakcheck, so every test also fails when it leaves a
 * task behind. ASSERT_NO_TASKS(start) checks the same inside a test
 * (gocc_tasks_live() back to start within 5 s, else a dump on stderr).
 *
 * Include this header first: it defines _GNU_SOURCE (nanosleep, ssize_t in
 * strict C11) before any system header.
 *
 * What is here (one test program = one translation unit, so the statics
 * below exist once per program):
 *  - CHECK_GE / CHECK_LT: comparisons that print both sides on failure.
 *  - A watchdog: test_watchdog_install(prog, seconds) arms alarm(); a test
 *    that hangs kills the program with "<prog>: WATCHDOG: hung in <test>"
 *    (TEST_NAME() records the running test) instead of waiting for meson's
 *    timeout. WATCHDOG_SECONDS is the usual budget for a whole program.
 *  - Time: sleep_ns (nanosleep, no library timers), pause_ns (gocc_sleep),
 *    and the SETTLE_NS / SAFETY_NS / PAUSE_NS / PROMPT_NS / QUIESCENT
 *    constants (a file may #undef and redefine one before using it).
 *  - safety_ctx(): a timeout context of SAFETY_NS (as defined where it is
 *    called) so a bug fails instead of hanging; ctx_done_release() is the
 *    owner's cancel + release.
 *  - chan_new() / go(): gocc_chan_new / gocc_go that assert success.
 *  - Bounded polling: wait_count (atomic_int, true when reached),
 *    wait_int (atomic_int) and wait_size (_Atomic size_t), which return the
 *    last value seen; test_wait_tasks for gocc_tasks_live().
 *  - async_call: a blocking call run on a task and awaited with a bound
 *    (async_start / async_start_settled / async_wait / ASYNC_RESULT).
 *  - xorshift: a tiny deterministic PRNG.
 */
#ifndef GOCC_TEST_COMMON_H
#define GOCC_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gocc.h>

#ifdef GOCC_TEST_SANITIZED
#define SCALE(n) (((n) / 8) > 0 ? ((n) / 8) : 1)
#else
#define SCALE(n) (n)
#endif

/* ---- time constants (a file may #undef and redefine one) ---- */

#ifdef GOCC_TEST_SANITIZED
#define SETTLE_NS (200 * GOCC_MILLISECOND) /* let a task reach its wait */
#define SAFETY_NS (60 * GOCC_SECOND)       /* a hang becomes a failure */
#define WATCHDOG_SECONDS 400u              /* a whole program, then abort */
#else
#define SETTLE_NS (50 * GOCC_MILLISECOND)
#define SAFETY_NS (10 * GOCC_SECOND)
#define WATCHDOG_SECONDS 120u
#endif
#define PAUSE_NS GOCC_MILLISECOND        /* Go's time.Sleep(time.Millisecond) */
#define PROMPT_NS (2 * GOCC_SECOND)      /* "returns promptly" upper bound */
#define QUIESCENT (5 * GOCC_SECOND)      /* how long to wait for what must happen */

/* ---- assertions ---- */

#define CHECK_GE(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ >= b_))                                                      \
            fail_msg("%s = %lld, want >= %s = %lld", #a, a_, #b, b_);         \
    } while (0)
#define CHECK_LT(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ < b_))                                                       \
            fail_msg("%s = %lld, want < %s = %lld", #a, a_, #b, b_);          \
    } while (0)

/* ---- watchdog ---- */

static const char *test_watchdog_prog_ = "test";
static _Atomic(const char *) g_test = "(before the first test)";

static void test_watchdog_(int sig) {
    (void)sig;
    const char *name = atomic_load_explicit(&g_test, memory_order_relaxed);
    const char *prog = test_watchdog_prog_;
    static const char msg[] = ": WATCHDOG: hung in ";
    ssize_t r = write(2, "\n", 1);
    r = write(2, prog, strlen(prog));
    r = write(2, msg, sizeof msg - 1);
    r = write(2, name, strlen(name));
    r = write(2, "\n", 1);
    (void)r;
    _exit(99);
}

/* Arm the watchdog: after @p seconds the program exits (status 99) naming
 * @p prog and the test TEST_NAME() recorded last. Call once, from main. */
static inline void test_watchdog_install(const char *prog, unsigned seconds) {
    test_watchdog_prog_ = prog;
    signal(SIGALRM, test_watchdog_);
    alarm(seconds);
}

#define TEST_NAME() atomic_store_explicit(&g_test, __func__, memory_order_relaxed)

/* ---- time ---- */

/* Sleep without the library's timers. */
static inline void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / GOCC_SECOND), (long)(ns % GOCC_SECOND)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sleep with the library's timer thread (gocc_sleep). */
static inline void pause_ns(int64_t ns) { gocc_sleep(ns, NULL); }

/* ---- contexts and channels ---- */

static inline gocc_ctx_t *safety_ctx_ns(int64_t timeout_ns) {
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, timeout_ns);
    assert_non_null(c);
    return c;
}
/* A timeout context of SAFETY_NS as defined where it is called. */
#define safety_ctx() safety_ctx_ns(SAFETY_NS)

/* The owner's "defer cancel()": cancel, then drop the reference. */
static inline void ctx_done_release(gocc_ctx_t *c) {
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
}

static inline gocc_chan_t *chan_new(size_t elem, size_t cap) {
    gocc_chan_t *c = gocc_chan_new(elem, cap);
    assert_non_null(c);
    return c;
}

/* gocc_go with a NULL ctx that asserts success. */
static inline void go(gocc_fn fn, void *arg) { assert_int_equal(gocc_go(fn, NULL, arg), 0); }

/* ---- bounded polling ---- */

/* Poll (no library timers) until *v >= want or timeout_ns passed; return
 * the last value seen. */
static inline int wait_int(atomic_int *v, int want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    int got;
    while ((got = atomic_load(v)) < want && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    return got;
}

/* wait_int for a size_t counter. */
static inline size_t wait_size(_Atomic size_t *v, size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t got;
    while ((got = atomic_load(v)) < want && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    return got;
}

/* True if *c reached want within timeout_ns. */
static inline bool wait_count(atomic_int *c, int want, int64_t timeout_ns) {
    return wait_int(c, want, timeout_ns) >= want;
}

/* Wait (bounded) until gocc_tasks_live() <= want; return what it is. */
static inline size_t test_wait_tasks(size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t live;
    while ((live = gocc_tasks_live()) > want && gocc_now() < end)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    return live;
}

/* gocc_leakcheck: on failure the dump of what is still live goes to stderr. */
#define ASSERT_NO_TASKS(start) \
    assert_int_equal(gocc_leakcheck((start), 5 * GOCC_SECOND, STDERR_FILENO), 0)

/* Every test is also a leak test: GOCC_TEST(f) registers f with a setup
 * that records gocc_tasks_live() and a teardown that fails the test (and
 * dumps what is left) unless the count is back there within 5 s. */
static size_t gocc_test_baseline_;

static inline int gocc_test_setup_(void **state) {
    (void)state;
    gocc_test_baseline_ = gocc_tasks_live();
    return 0;
}

static inline int gocc_test_teardown_(void **state) {
    (void)state;
    return gocc_leakcheck(gocc_test_baseline_, 5 * GOCC_SECOND, STDERR_FILENO) == 0 ? 0 : -1;
}

#define GOCC_TEST(f) cmocka_unit_test_setup_teardown(f, gocc_test_setup_, gocc_test_teardown_)

/* ---- a blocking call run on a task, observed from the test thread ---- */

/* async_start(a, fn, arg) runs rc = fn(arg) on a task; async_wait bounds
 * how long the test waits for it, so a call that hangs because of a bug
 * fails the test instead of hanging it. No cmocka assertion runs on the
 * task. rc and t_ret may be read once async_done() is true. */
typedef struct async_call {
    int (*fn)(void *arg);
    void *arg;
    int rc;
    int64_t t_ret;    /* gocc_now() when fn returned */
    atomic_int state; /* 0 not started, 1 calling, 2 returned */
} async_call;

static int async_task_(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    async_call *a = arg;
    atomic_store(&a->state, 1);
    a->rc = a->fn(a->arg);
    a->t_ret = gocc_now();
    atomic_store_explicit(&a->state, 2, memory_order_release);
    return 0;
}

static inline void async_start(async_call *a, int (*fn)(void *), void *arg) {
    a->fn = fn;
    a->arg = arg;
    a->rc = 1000;
    a->t_ret = 0;
    atomic_init(&a->state, 0);
    assert_int_equal(gocc_go(async_task_, NULL, a), 0);
}

static inline bool async_done(async_call *a) {
    return atomic_load_explicit(&a->state, memory_order_acquire) == 2;
}

/* True if the call returned within timeout_ns. */
static inline bool async_wait(async_call *a, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    while (!async_done(a)) {
        if (gocc_now() > end) return false;
        sleep_ns(100 * GOCC_MICROSECOND);
    }
    return true;
}

/* async_start, then give the call time to block (SETTLE_NS after it began). */
static inline void async_start_settled(async_call *a, int (*fn)(void *), void *arg) {
    async_start(a, fn, arg);
    int64_t end = gocc_now() + SAFETY_NS;
    while (atomic_load(&a->state) == 0 && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    sleep_ns(SETTLE_NS);
}

/* The call's result; fails the test if it did not return within timeout_ns. */
static inline int async_result_(async_call *a, int64_t timeout_ns, const char *what, int line) {
    if (!async_wait(a, timeout_ns)) fail_msg("line %d: %s did not return in time", line, what);
    return a->rc;
}
#define ASYNC_RESULT(a, timeout_ns) async_result_((a), (timeout_ns), #a, __LINE__)

/* ---- misc ---- */

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A plain joinable thread, for tests that want an OS thread of their own. */
typedef struct test_thread { pthread_t t; } test_thread;
static inline void test_thread_start(test_thread *th, void *(*fn)(void *), void *arg) {
    assert_int_equal(pthread_create(&th->t, NULL, fn, arg), 0);
}
static inline void test_thread_join(test_thread *th) {
    assert_int_equal(pthread_join(th->t, NULL), 0);
}

#endif /* GOCC_TEST_COMMON_H */
