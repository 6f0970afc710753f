/*
 * test-ratelimit.c - the token bucket (gocc_ratelimit_*): the "Rate
 * limiter" section of gocc.h, golang.org/x/time/rate semantics.
 *
 * What is checked: the bucket starts full and gives its burst at once;
 * allow takes n or nothing; waits are served in arrival order (a small
 * request queued behind a large one is not served before the large one's
 * tokens came due); the rate achieved by back-to-back waits; a deadline
 * too soon is GOCC_EDEADLINE at once with no token taken; a cancelled wait
 * gives its reservation back (from the head and from the middle of the
 * queue) and the waiters behind it move up; a context already done wins;
 * bad arguments; set() changes rate and burst (and wakes a waiter of a
 * rate-0 bucket); eight threads hammering allow and wait together never
 * get more than burst + rate * elapsed tokens.
 *
 * Time is used only for lower bounds that hold exactly (tokens cannot come
 * due early) and for generous upper bounds. Waiters are queued in a known
 * order by watching the bucket's level: wait_reserved() sees a reservation
 * through gocc_ratelimit_tokens, corrected for what accrued meanwhile.
 *
 * No cmocka assertion runs on a task.
 */
#include "test-common.h"

#include <math.h> /* NAN, INFINITY */
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

static gocc_ratelimit_t *rl_new(double rate, int64_t burst) {
    gocc_ratelimit_t *rl = gocc_ratelimit_new(rate, burst);
    assert_non_null(rl);
    return rl;
}

/* A wait run on a task (async_call). */
typedef struct waiter {
    gocc_ratelimit_t *rl;
    int64_t n;
    gocc_ctx_t *ctx;
    async_call a;
} waiter_t;

static int call_wait(void *p) {
    waiter_t *w = p;
    return gocc_ratelimit_wait(w->rl, w->n, w->ctx);
}

static void waiter_start(waiter_t *w, gocc_ratelimit_t *rl, int64_t n, gocc_ctx_t *ctx) {
    w->rl = rl;
    w->n = n;
    w->ctx = ctx;
    async_start(&w->a, call_wait, w);
}

/* Empty the bucket: returns a time >= the moment its level was 0. */
static int64_t drain(gocc_ratelimit_t *rl, int64_t burst) {
    assert_true(gocc_ratelimit_allow(rl, burst));
    return gocc_now();
}

/* Wait (bounded) until at least @p k tokens are taken or held by queued
 * waiters (a cancelled wait's are back, so they do not count) since the
 * bucket was drained at @p t_drained (as drain() returns it), at @p rate.
 * The level is rate * (t - t0) - reserved for the true drain time t0 <=
 * t_drained, so reserved >= rate * (t - t_drained) - level: a lower bound
 * that refill cannot fake (valid while the level stays below burst). */
static bool wait_reserved(gocc_ratelimit_t *rl, double rate, int64_t t_drained, int64_t k) {
    int64_t end = gocc_now() + SAFETY_NS;
    while (gocc_now() < end) {
        int64_t t = gocc_now();
        double level = gocc_ratelimit_tokens(rl);
        double reserved = rate * (double)(t - t_drained) / (double)GOCC_SECOND - level;
        if (reserved > (double)k - 0.5) return true;
        sleep_ns(100 * GOCC_MICROSECOND);
    }
    return false;
}

static bool near(double a, double b, double eps) { return a - b <= eps && b - a <= eps; }

/* ------------------------------------------------------------------------ */
/* tests */

/* A new bucket is full: its burst is given at once, then nothing (at a
 * rate of one token per 100 s). */
static void test_ratelimit_burst_at_once(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ratelimit_t *rl = rl_new(0.01, 10);
    assert_true(near(gocc_ratelimit_tokens(rl), 10, 0.01));
    int allowed = 0, denied = 0;
    for (int i = 0; i < 25; i++) {
        if (gocc_ratelimit_allow(rl, 1))
            allowed++;
        else
            denied++;
    }
    assert_int_equal(allowed, 10);
    assert_int_equal(denied, 15);
    gocc_ratelimit_free(rl);

    /* wait() on a full bucket does not block, nor with a NULL ctx. */
    rl = rl_new(0.01, 4);
    int64_t t0 = gocc_now();
    assert_int_equal(gocc_ratelimit_wait(rl, 4, NULL), 0);
    assert_int_equal(gocc_ratelimit_wait(rl, 0, NULL), 0);
    CHECK_LT(gocc_now() - t0, PROMPT_NS);
    assert_false(gocc_ratelimit_allow(rl, 1));
    gocc_ratelimit_free(rl);
    ASSERT_NO_TASKS(start);
}

/* allow(n) takes n or nothing. */
static void test_ratelimit_allow_n(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ratelimit_t *rl = rl_new(0.01, 5);
    assert_true(gocc_ratelimit_allow(rl, 3));
    assert_false(gocc_ratelimit_allow(rl, 3)); /* 2 left: takes nothing */
    assert_true(near(gocc_ratelimit_tokens(rl), 2, 0.01));
    assert_true(gocc_ratelimit_allow(rl, 2));
    assert_true(gocc_ratelimit_allow(rl, 0));
    assert_false(gocc_ratelimit_allow(rl, 1));
    assert_true(near(gocc_ratelimit_tokens(rl), 0, 0.01));
    gocc_ratelimit_free(rl);
    ASSERT_NO_TASKS(start);
}

/* Back-to-back waits at 100/s with burst 1: N waits cannot take less than
 * (N - 1) / rate (the bucket cannot give tokens early), and finish well
 * within a generous bound. */
static void test_ratelimit_rate_measured(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const double rate = 100;
    const int n = 21;
    gocc_ctx_t *safety = safety_ctx();
    int64_t t0 = gocc_now(); /* <= the moment the bucket was made full */
    gocc_ratelimit_t *rl = rl_new(rate, 1);
    for (int i = 0; i < n; i++) assert_int_equal(gocc_ratelimit_wait(rl, 1, safety), 0);
    int64_t took = gocc_now() - t0;
    CHECK_GE(took, 200 * GOCC_MILLISECOND - GOCC_MILLISECOND); /* (n - 1) / rate */
    CHECK_LT(took, 5 * GOCC_SECOND);
    gocc_ratelimit_free(rl);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* FIFO: on an empty bucket (10/s), A waits for 5, then B for 1, then C for
 * 2. In arrival order A's tokens are due at 0.5 s, B's at 0.6 s, C's at
 * 0.8 s; none may come back earlier (a bucket that served the small B
 * first would return it after 0.1 s). */
static void test_ratelimit_wait_fifo(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const double rate = 10;
    gocc_ctx_t *safety = safety_ctx();
    gocc_ratelimit_t *rl = rl_new(rate, 50); /* a large burst: the level stays below it */
    int64_t t0 = gocc_now();                 /* <= the drain */
    int64_t t_drained = drain(rl, 50);
    waiter_t a, b, c;
    waiter_start(&a, rl, 5, safety);
    assert_true(wait_reserved(rl, rate, t_drained, 5));
    waiter_start(&b, rl, 1, safety);
    assert_true(wait_reserved(rl, rate, t_drained, 6));
    waiter_start(&c, rl, 2, safety);
    assert_true(wait_reserved(rl, rate, t_drained, 8));
    assert_true(gocc_ratelimit_tokens(rl) < 0); /* reservations outstanding */
    assert_false(gocc_ratelimit_allow(rl, 0));  /* allow does not jump the queue */

    assert_int_equal(ASYNC_RESULT(&a.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&b.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&c.a, SAFETY_NS), 0);
    CHECK_GE(a.a.t_ret - t0, 500 * GOCC_MILLISECOND - GOCC_MILLISECOND);
    CHECK_GE(b.a.t_ret - t0, 600 * GOCC_MILLISECOND - GOCC_MILLISECOND);
    CHECK_GE(c.a.t_ret - t0, 800 * GOCC_MILLISECOND - GOCC_MILLISECOND);
    gocc_ratelimit_free(rl);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* A deadline before the tokens could be due: GOCC_EDEADLINE at once (the
 * context is not even done yet), nothing taken. With a deadline that is
 * late enough the wait succeeds. */
static void test_ratelimit_deadline_too_soon(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ratelimit_t *rl = rl_new(0.01, 1); /* a token per 100 s */
    drain(rl, 1);
    gocc_ctx_t *ctx = safety_ctx_ns(30 * GOCC_SECOND);
    double before = gocc_ratelimit_tokens(rl);
    assert_int_equal(gocc_ratelimit_wait(rl, 1, ctx), GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_err(ctx), 0); /* returned before the deadline */
    assert_true(near(gocc_ratelimit_tokens(rl), before, 0.01));
    gocc_ratelimit_free(rl);

    /* Rate 0 with a deficit: never due, so any deadline is too soon. */
    rl = rl_new(0, 2);
    drain(rl, 2);
    assert_int_equal(gocc_ratelimit_wait(rl, 1, ctx), GOCC_EDEADLINE);
    assert_true(near(gocc_ratelimit_tokens(rl), 0, 1e-9));
    gocc_ratelimit_free(rl);

    /* Due well before the deadline: waits and succeeds. */
    rl = rl_new(100, 1);
    drain(rl, 1);
    assert_int_equal(gocc_ratelimit_wait(rl, 1, ctx), 0);
    gocc_ratelimit_free(rl);
    ctx_done_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* Cancelling a queued wait gives its reservation back: from the head (A,
 * 2 tokens, with B behind it) and from the middle (D between C and E).
 * The level comes back up by exactly what was reserved, the others stay
 * queued, and they are served once set() raises the rate. */
static void test_ratelimit_cancel_restores(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const double rate = 0.001; /* nothing accrues during the test */
    /* No deadlines here: a token per 1000 s would be "too soon" for any
     * safety deadline. The waits run on tasks awaited with a bound. */
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_ratelimit_t *rl = rl_new(rate, 3);
    int64_t t_drained = drain(rl, 3);

    gocc_ctx_t *ca = gocc_ctx_with_cancel(parent), *cd = gocc_ctx_with_cancel(parent);
    assert_non_null(ca);
    assert_non_null(cd);
    waiter_t a, b, c, d, e;
    waiter_start(&a, rl, 2, ca);
    assert_true(wait_reserved(rl, rate, t_drained, 2));
    waiter_start(&b, rl, 1, parent);
    assert_true(wait_reserved(rl, rate, t_drained, 3));
    assert_true(near(gocc_ratelimit_tokens(rl), -3, 0.01));

    gocc_ctx_cancel(ca); /* the head leaves */
    assert_int_equal(ASYNC_RESULT(&a.a, SAFETY_NS), GOCC_ECANCELED);
    assert_true(near(gocc_ratelimit_tokens(rl), -1, 0.01)); /* A's 2 are back */
    assert_false(async_done(&b.a));

    waiter_start(&c, rl, 1, parent);
    assert_true(wait_reserved(rl, rate, t_drained, 2)); /* B and C (A's are back) */
    waiter_start(&d, rl, 2, cd);
    assert_true(wait_reserved(rl, rate, t_drained, 4));
    waiter_start(&e, rl, 1, parent);
    assert_true(wait_reserved(rl, rate, t_drained, 5));
    assert_true(near(gocc_ratelimit_tokens(rl), -5, 0.01)); /* B 1, C 1, D 2, E 1 */

    gocc_ctx_cancel(cd); /* the middle leaves */
    assert_int_equal(ASYNC_RESULT(&d.a, SAFETY_NS), GOCC_ECANCELED);
    assert_true(near(gocc_ratelimit_tokens(rl), -3, 0.01));
    assert_false(async_done(&b.a));
    assert_false(async_done(&c.a));
    assert_false(async_done(&e.a));

    assert_int_equal(gocc_ratelimit_set(rl, 1000, 3), 0); /* now they come due */
    assert_int_equal(ASYNC_RESULT(&b.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&c.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&e.a, SAFETY_NS), 0);
    gocc_ratelimit_free(rl);
    ctx_done_release(ca);
    ctx_done_release(cd);
    ctx_done_release(parent);
    ASSERT_NO_TASKS(start);
}

/* A context already done wins, even with tokens in the bucket: nothing is
 * taken. */
static void test_ratelimit_ctx_already_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ratelimit_t *rl = rl_new(0.01, 5);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    gocc_ctx_cancel(ctx);
    assert_int_equal(gocc_ratelimit_wait(rl, 1, ctx), GOCC_ECANCELED);
    assert_int_equal(gocc_ratelimit_wait(rl, 0, ctx), GOCC_ECANCELED);
    assert_true(near(gocc_ratelimit_tokens(rl), 5, 0.01));
    gocc_ctx_t *past = gocc_ctx_with_timeout(NULL, -1); /* done at birth */
    assert_non_null(past);
    assert_int_equal(gocc_ratelimit_wait(rl, 1, past), GOCC_EDEADLINE);
    assert_true(near(gocc_ratelimit_tokens(rl), 5, 0.01));
    ctx_done_release(past);
    ctx_done_release(ctx);
    gocc_ratelimit_free(rl);
    ASSERT_NO_TASKS(start);
}

static void test_ratelimit_invalid(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const double bad_rates[] = {NAN, -1, -0.001, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        errno = 0;
        assert_null(gocc_ratelimit_new(bad_rates[i], 1));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(gocc_ratelimit_new(1, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(gocc_ratelimit_new(1, -5));

    gocc_ratelimit_t *rl = rl_new(0, 2);                             /* rate 0 is valid */
    assert_int_equal(gocc_ratelimit_wait(rl, 3, NULL), GOCC_EINVAL); /* > burst */
    assert_int_equal(gocc_ratelimit_wait(rl, -1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_ratelimit_wait(NULL, 1, NULL), GOCC_EINVAL);
    assert_false(gocc_ratelimit_allow(rl, -1));
    assert_false(gocc_ratelimit_allow(rl, 3));
    assert_false(gocc_ratelimit_allow(NULL, 1));
    assert_int_equal(gocc_ratelimit_set(rl, NAN, 2), GOCC_EINVAL);
    assert_int_equal(gocc_ratelimit_set(rl, -1, 2), GOCC_EINVAL);
    assert_int_equal(gocc_ratelimit_set(rl, INFINITY, 2), GOCC_EINVAL);
    assert_int_equal(gocc_ratelimit_set(rl, 1, 0), GOCC_EINVAL);
    assert_int_equal(gocc_ratelimit_set(NULL, 1, 1), GOCC_EINVAL);
    assert_true(near(gocc_ratelimit_tokens(rl), 2, 1e-9)); /* nothing changed */
    assert_true(gocc_ratelimit_allow(rl, 2));
    assert_false(gocc_ratelimit_allow(rl, 1)); /* still rate 0 */
    assert_true(gocc_ratelimit_tokens(NULL) == 0);
    gocc_ratelimit_free(rl);
    gocc_ratelimit_free(NULL);
    ASSERT_NO_TASKS(start);
}

/* set() changes the rate (0 gives nothing more; a high rate refills) and
 * the burst (the cap), and wakes a waiter of a rate-0 bucket. */
static void test_ratelimit_set(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ratelimit_t *rl = rl_new(0, 1);
    assert_true(gocc_ratelimit_allow(rl, 1));
    sleep_ns(20 * GOCC_MILLISECOND);
    assert_false(gocc_ratelimit_allow(rl, 1)); /* rate 0: nothing accrues */
    assert_int_equal(gocc_ratelimit_set(rl, 1000, 1), 0);
    sleep_ns(20 * GOCC_MILLISECOND); /* >= 20 tokens accrue, capped at 1 */
    assert_true(near(gocc_ratelimit_tokens(rl), 1, 1e-9));
    assert_true(gocc_ratelimit_allow(rl, 1));
    assert_int_equal(gocc_ratelimit_set(rl, 1000, 10), 0); /* a larger burst */
    sleep_ns(50 * GOCC_MILLISECOND);
    assert_true(near(gocc_ratelimit_tokens(rl), 10, 1e-9));
    assert_true(gocc_ratelimit_allow(rl, 10));
    assert_int_equal(gocc_ratelimit_set(rl, 1000, 2), 0); /* a smaller one: the cap */
    sleep_ns(20 * GOCC_MILLISECOND);
    assert_true(near(gocc_ratelimit_tokens(rl), 2, 1e-9));
    assert_int_equal(gocc_ratelimit_wait(rl, 3, NULL), GOCC_EINVAL); /* > the new burst */
    gocc_ratelimit_free(rl);

    /* A waiter on a rate-0 bucket waits until set() gives it a rate (its
     * context has no deadline: any deadline would be too soon). */
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    rl = rl_new(0, 1);
    drain(rl, 1);
    waiter_t w;
    waiter_start(&w, rl, 1, parent);
    int64_t end = gocc_now() + SAFETY_NS;
    while (gocc_ratelimit_tokens(rl) > -0.5 && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    assert_true(near(gocc_ratelimit_tokens(rl), -1, 1e-9)); /* queued */
    async_blocked(&w.a, NULL);
    assert_int_equal(gocc_ratelimit_set(rl, 100, 1), 0);
    assert_int_equal(ASYNC_RESULT(&w.a, SAFETY_NS), 0);
    gocc_ratelimit_free(rl);
    ctx_done_release(parent);
    ASSERT_NO_TASKS(start);
}

/* Eight tasks (six calling allow in a loop, two calling wait) on one bucket
 * of 2000/s, burst 20, that sat idle for 100 ms first (a bucket without a
 * cap would hold 220). Over the measured window they get at most
 * burst + rate * window tokens, and at least the burst. */
#define HAMMER_TASKS 8
#define HAMMER_WAITERS 2
typedef struct hammer {
    gocc_ratelimit_t *rl;
    gocc_ctx_t *stop_ctx; /* cancelled to stop */
    atomic_bool stop;
    atomic_int ready;
    atomic_int finished;
    _Atomic long long taken;
    atomic_int bad;
} hammer_t;

typedef struct hammer_arg {
    hammer_t *h;
    bool waits;
} hammer_arg_t;

static int hammer_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    hammer_arg_t *a = arg;
    hammer_t *h = a->h;
    long long mine = 0;
    atomic_fetch_add(&h->ready, 1);
    while (!atomic_load(&h->stop)) {
        if (a->waits) {
            int rc = gocc_ratelimit_wait(h->rl, 1, h->stop_ctx);
            if (rc == 0)
                mine++;
            else if (rc != GOCC_ECANCELED)
                atomic_fetch_add(&h->bad, 1);
        } else if (gocc_ratelimit_allow(h->rl, 1)) {
            mine++;
        }
    }
    atomic_fetch_add(&h->taken, mine);
    atomic_fetch_add(&h->finished, 1);
    return 0;
}

static void test_ratelimit_hammer_never_over_issues(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const double rate = 2000;
    const int64_t burst = 20;
    hammer_t h;
    memset(&h, 0, sizeof h);
    h.stop_ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(h.stop_ctx);
    h.rl = rl_new(rate, burst);
    hammer_arg_t args[HAMMER_TASKS];
    sleep_ns(100 * GOCC_MILLISECOND); /* the bucket is full long before */
    int64_t t0 = gocc_now();          /* the window starts before any take */
    for (int i = 0; i < HAMMER_TASKS; i++) {
        args[i] = (hammer_arg_t){&h, i < HAMMER_WAITERS};
        assert_int_equal(gocc_go(hammer_task, NULL, &args[i]), 0);
    }
    assert_true(wait_count(&h.ready, HAMMER_TASKS, SAFETY_NS));
    sleep_ns(200 * GOCC_MILLISECOND);
    atomic_store(&h.stop, true);
    gocc_ctx_cancel(h.stop_ctx);
    assert_true(wait_count(&h.finished, HAMMER_TASKS, SAFETY_NS));
    int64_t t1 = gocc_now(); /* the window ends after the last take */
    long long taken = atomic_load(&h.taken);
    double most = (double)burst + rate * (double)(t1 - t0) / (double)GOCC_SECOND;
    if ((double)taken > most + 1e-6)
        fail_msg("took %lld tokens in %lld us: more than burst + rate * elapsed = %.1f", taken,
                 (long long)((t1 - t0) / GOCC_MICROSECOND), most);
    CHECK_GE(taken, burst);
    assert_int_equal(atomic_load(&h.bad), 0);
    gocc_ratelimit_free(h.rl);
    ctx_done_release(h.stop_ctx);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-ratelimit", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_ratelimit_burst_at_once),
        GOCC_TEST(test_ratelimit_allow_n),
        GOCC_TEST(test_ratelimit_rate_measured),
        GOCC_TEST(test_ratelimit_wait_fifo),
        GOCC_TEST(test_ratelimit_deadline_too_soon),
        GOCC_TEST(test_ratelimit_cancel_restores),
        GOCC_TEST(test_ratelimit_ctx_already_done),
        GOCC_TEST(test_ratelimit_invalid),
        GOCC_TEST(test_ratelimit_set),
        GOCC_TEST(test_ratelimit_hammer_never_over_issues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
