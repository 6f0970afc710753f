/*
 * test-sem.c - the weighted semaphore (gocc_sem_*): golang.org/x/sync
 * semaphore semantics, gocc.h's "Weighted semaphore" section and the rules
 * at its top ("A context already done wins", "NULL").
 *
 * Ported from golang.org/x/sync semaphore/semaphore_test.go (TestWeighted,
 * TestWeightedPanic, TestWeightedTryAcquire, TestWeightedAcquire,
 * TestWeightedDoesntBlockIfTooBig, TestLargeAcquireDoesntStarve,
 * TestAllocCancelDoesntStarve); the comment above each test names the Go
 * test it comes from. The others test strict FIFO order, weight 0,
 * cancellation inside a queue and fairness under load.
 *
 * Waiters are queued in a known order by starting them one at a time and
 * waiting until gocc_dump shows each parked in its acquire (test-common.h's
 * async_start_blocked): a parked waiter is on the queue. "Not served" is
 * the same check: a waiter a release served is woken before the release
 * returns, so it is no longer parked.
 *
 * No cmocka assertion runs on a task: tasks record what they saw in atomics.
 * Every acquire that may block has a safety context, or runs on a helper
 * task awaited with a bound.
 */
#include "test-common.h"

#include <sched.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

static gocc_sem_t *sem_new(int64_t size) {
    gocc_sem_t *s = gocc_sem_new(size);
    assert_non_null(s);
    return s;
}

/* acquire with a timeout context: 0 or GOCC_EDEADLINE (or another error). */
static int acquire_for(gocc_sem_t *s, int64_t n, int64_t timeout_ns) {
    gocc_ctx_t *c = safety_ctx_ns(timeout_ns);
    int rc = gocc_sem_acquire(s, n, c);
    ctx_done_release(c);
    return rc;
}

/* An acquire run on a task (async_call); on success it takes a ticket, so
 * the order in which waiters were served can be checked. */
typedef struct acq {
    gocc_sem_t *s;
    int64_t n;
    gocc_ctx_t *ctx;
    atomic_int *tickets;
    int ticket; /* -1 until served */
    async_call a;
} acq_t;

static int call_acquire(void *p) {
    acq_t *q = p;
    int rc = gocc_sem_acquire(q->s, q->n, q->ctx);
    if (rc == 0 && q->tickets != NULL) q->ticket = atomic_fetch_add(q->tickets, 1);
    return rc;
}

static void acq_start(acq_t *q, gocc_sem_t *s, int64_t n, gocc_ctx_t *ctx, atomic_int *tickets,
                      bool blocked) {
    q->s = s;
    q->n = n;
    q->ctx = ctx;
    q->tickets = tickets;
    q->ticket = -1;
    if (blocked)
        async_start_blocked(&q->a, call_acquire, q, "semaphore acquire");
    else
        async_start(&q->a, call_acquire, q);
}

/* Everything is free again: the whole size can be taken (and is given
 * back). Proves no cancelled or failed call left weight taken. */
static void assert_all_free(gocc_sem_t *s, int64_t size) {
    assert_true(gocc_sem_try_acquire(s, size));
    if (size > 0) assert_false(gocc_sem_try_acquire(s, 1));
    assert_int_equal(gocc_sem_release(s, size), 0);
}

/* ------------------------------------------------------------------------ */

/* from semaphore_test.go TestWeighted / HammerWeighted: n tasks, task i
 * acquires weight i (0 included) in a loop with a random hold of up to
 * 1 ms. Added: the weight held at once never exceeds the size. */
#define HN 8
typedef struct hammer_state {
    gocc_sem_t *s;
    gocc_ctx_t *safety;
    int loops;
    atomic_int held;
    atomic_int over;
    atomic_int bad;
    atomic_int finished;
    atomic_int next;
} hammer_state;

static int hammer_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    hammer_state *h = arg;
    int n = atomic_fetch_add(&h->next, 1);
    uint64_t r = 0x9E3779B97F4A7C15ULL * (uint64_t)(n + 1);
    for (int i = 0; i < h->loops; i++) {
        if (gocc_sem_acquire(h->s, n, h->safety) != 0) {
            atomic_fetch_add(&h->bad, 1);
            break;
        }
        if (atomic_fetch_add(&h->held, n) + n > HN) atomic_fetch_add(&h->over, 1);
        sleep_ns((int64_t)(xorshift(&r) % (uint64_t)GOCC_MILLISECOND));
        atomic_fetch_sub(&h->held, n);
        if (gocc_sem_release(h->s, n) != 0) atomic_fetch_add(&h->bad, 1);
    }
    atomic_fetch_add(&h->finished, 1);
    return 0;
}

static void test_sem_weighted(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    hammer_state h;
    memset(&h, 0, sizeof h);
    h.s = sem_new(HN);
    h.safety = safety_ctx_ns(2 * SAFETY_NS);
#ifdef GOCC_TEST_SANITIZED
    h.loops = 200 / HN;
#else
    h.loops = 10000 / HN / 4;
#endif
    for (int i = 0; i < HN; i++) assert_int_equal(gocc_go(hammer_task, NULL, &h), 0);
    assert_true(wait_count(&h.finished, HN, 2 * SAFETY_NS));
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_int_equal(atomic_load(&h.over), 0);
    assert_all_free(h.s, HN);
    gocc_sem_free(h.s);
    ctx_done_release(h.safety);
    ASSERT_NO_TASKS(start);
}

/* from semaphore_test.go TestWeightedPanic: releasing more than is held is
 * GOCC_EINVAL (Go panics) and changes nothing; so is a negative release. */
static void test_sem_weighted_panic(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_sem_t *w = sem_new(1);
    assert_int_equal(gocc_sem_release(w, 1), GOCC_EINVAL);
    assert_all_free(w, 1); /* the failed release did not add weight */

    gocc_sem_t *s = sem_new(5);
    assert_true(gocc_sem_try_acquire(s, 2));
    assert_int_equal(gocc_sem_release(s, 3), GOCC_EINVAL);
    assert_int_equal(gocc_sem_release(s, -1), GOCC_EINVAL);
    /* still 2 held, 3 free */
    assert_false(gocc_sem_try_acquire(s, 4));
    assert_true(gocc_sem_try_acquire(s, 3));
    assert_false(gocc_sem_try_acquire(s, 1));
    assert_int_equal(gocc_sem_release(s, 5), 0);
    assert_int_equal(gocc_sem_release(s, 1), GOCC_EINVAL);
    assert_int_equal(gocc_sem_release(s, 0), 0);
    assert_all_free(s, 5);
    gocc_sem_free(w);
    gocc_sem_free(s);
    ASSERT_NO_TASKS(start);
}

/* The sequence TestWeightedTryAcquire and TestWeightedAcquire share: with
 * size 2, take 1, try 1 twice, give back 2, try 1, take 1, try 1. try1
 * returns 0 when it took the weight. */
static void weighted_tries(int (*try1)(gocc_sem_t *), const int want[4]) {
    gocc_ctx_t *ctx = safety_ctx();
    gocc_sem_t *sem = sem_new(2);
    int tries[4];
    assert_int_equal(gocc_sem_acquire(sem, 1, ctx), 0);
    tries[0] = try1(sem);
    tries[1] = try1(sem);
    assert_int_equal(gocc_sem_release(sem, 2), 0);
    tries[2] = try1(sem);
    assert_int_equal(gocc_sem_acquire(sem, 1, ctx), 0);
    tries[3] = try1(sem);
    for (int i = 0; i < 4; i++)
        if (tries[i] != want[i]) fail_msg("tries[%d]: got %d, want %d", i, tries[i], want[i]);
    assert_int_equal(gocc_sem_release(sem, 2), 0);
    assert_all_free(sem, 2);
    gocc_sem_free(sem);
    ctx_done_release(ctx);
}

static int try_acquire1(gocc_sem_t *s) { return gocc_sem_try_acquire(s, 1) ? 0 : GOCC_EAGAIN; }

static int acquire1_10ms(gocc_sem_t *s) { return acquire_for(s, 1, 10 * GOCC_MILLISECOND); }

/* from semaphore_test.go TestWeightedTryAcquire (false is GOCC_EAGAIN here) */
static void test_sem_weighted_try_acquire(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int want[4] = {0, GOCC_EAGAIN, 0, GOCC_EAGAIN};
    weighted_tries(try_acquire1, want);
    ASSERT_NO_TASKS(start);
}

/* from semaphore_test.go TestWeightedAcquire (a failed try is the 10 ms
 * timeout's GOCC_EDEADLINE) */
static void test_sem_weighted_acquire(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int want[4] = {0, GOCC_EDEADLINE, 0, GOCC_EDEADLINE};
    weighted_tries(acquire1_10ms, want);
    ASSERT_NO_TASKS(start);
}

/* from semaphore_test.go TestWeightedDoesntBlockIfTooBig: a request larger
 * than the size waits for its context only and holds nobody up (6 tasks
 * acquire 1 of 2 meanwhile); it takes nothing. With a context that can
 * never be done (NULL, background, without_cancel) it is GOCC_EINVAL at
 * once; with a timeout, GOCC_EDEADLINE. */
typedef struct tb_state {
    gocc_sem_t *s;
    gocc_ctx_t *safety;
    atomic_int ok;
    atomic_int finished;
} tb_state;

static int tb_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tb_state *t = arg;
    if (gocc_sem_acquire(t->s, 1, t->safety) == 0) {
        sleep_ns(GOCC_MILLISECOND);
        if (gocc_sem_release(t->s, 1) == 0) atomic_fetch_add(&t->ok, 1);
    }
    atomic_fetch_add(&t->finished, 1);
    return 0;
}

static void test_sem_doesnt_block_if_too_big(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int n = 2;
    tb_state t;
    memset(&t, 0, sizeof t);
    t.s = sem_new(n);
    t.safety = safety_ctx();
    gocc_ctx_t *big_ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(big_ctx);
    acq_t big;
    acq_start(&big, t.s, n + 1, big_ctx, NULL, true);
    assert_false(async_done(&big.a));
    for (int i = n * 3; i > 0; i--) assert_int_equal(gocc_go(tb_task, NULL, &t), 0);
    assert_true(wait_count(&t.finished, n * 3, SAFETY_NS));
    if (atomic_load(&t.ok) != n * 3)
        fail_msg("sem_new(%d) failed to acquire(_, 1) with acquire(_, %d) pending", n, n + 1);
    assert_false(async_done(&big.a));
    /* the big request took nothing and blocks nobody */
    assert_true(gocc_sem_try_acquire(t.s, n));
    assert_int_equal(gocc_sem_release(t.s, n), 0);
    gocc_ctx_cancel(big_ctx);
    assert_int_equal(ASYNC_RESULT(&big.a, PROMPT_NS), GOCC_ECANCELED);
    assert_all_free(t.s, n);

    /* contexts that can never be done: GOCC_EINVAL, not a hang */
    gocc_ctx_t *wc = gocc_ctx_without_cancel(NULL);
    assert_non_null(wc);
    gocc_ctx_t *never[3] = {NULL, gocc_ctx_background(), wc};
    for (int i = 0; i < 3; i++) {
        acq_start(&big, t.s, n + 1, never[i], NULL, false);
        int rc = ASYNC_RESULT(&big.a, PROMPT_NS);
        if (rc != GOCC_EINVAL)
            fail_msg("ctx #%d: acquire(%d) of %d = %d, want GOCC_EINVAL", i, n + 1, n, rc);
    }
    gocc_ctx_release(wc);
    assert_int_equal(acquire_for(t.s, n + 1, 20 * GOCC_MILLISECOND), GOCC_EDEADLINE);
    assert_false(gocc_sem_try_acquire(t.s, n + 1));
    assert_all_free(t.s, n);
    gocc_sem_free(t.s);
    ctx_done_release(big_ctx);
    ctx_done_release(t.safety);
    ASSERT_NO_TASKS(start);
}

/* from semaphore_test.go TestLargeAcquireDoesntStarve: n tasks keep
 * releasing and re-taking weight 1; an acquire of n must still succeed
 * (here: within the safety timeout, else the test fails). */
#define LN 8
typedef struct la_state {
    gocc_sem_t *s;
    gocc_ctx_t *safety;
    atomic_bool running;
    atomic_int bad;
    atomic_int finished;
} la_state;

static int la_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    la_state *l = arg;
    bool holding = true;
    while (atomic_load(&l->running)) {
        sleep_ns(GOCC_MILLISECOND);
        if (gocc_sem_release(l->s, 1) != 0) atomic_fetch_add(&l->bad, 1);
        holding = gocc_sem_acquire(l->s, 1, l->safety) == 0;
        if (!holding) {
            atomic_fetch_add(&l->bad, 1);
            break;
        }
    }
    if (holding && gocc_sem_release(l->s, 1) != 0) atomic_fetch_add(&l->bad, 1);
    atomic_fetch_add(&l->finished, 1);
    return 0;
}

static void test_sem_large_acquire_doesnt_starve(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    la_state l;
    memset(&l, 0, sizeof l);
    l.s = sem_new(LN);
    l.safety = safety_ctx();
    atomic_store(&l.running, true);
    for (int i = LN; i > 0; i--) {
        assert_int_equal(gocc_sem_acquire(l.s, 1, l.safety), 0);
        assert_int_equal(gocc_go(la_task, NULL, &l), 0);
    }
    int rc = gocc_sem_acquire(l.s, LN, l.safety);
    atomic_store(&l.running, false);
    if (rc != 0) fail_msg("acquire(%d) starved: %d", LN, rc);
    assert_int_equal(gocc_sem_release(l.s, LN), 0);
    assert_true(wait_count(&l.finished, LN, SAFETY_NS));
    assert_int_equal(atomic_load(&l.bad), 0);
    assert_all_free(l.s, LN);
    gocc_sem_free(l.s);
    ctx_done_release(l.safety);
    ASSERT_NO_TASKS(start);
}

/* from semaphore_test.go TestAllocCancelDoesntStarve: a waiter for 10 at the
 * head (1 of 10 held) is cancelled while an acquire of 1 queues behind it:
 * the acquire of 1 must proceed, and the cancelled waiter took nothing. */
/* Cancels the context it runs with (the task holds its own reference). */
static int cancel_task(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_ctx_cancel(ctx);
    return 0;
}

static void test_sem_alloc_cancel_doesnt_starve(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    for (int round = 0; round < SCALE(50); round++) {
        gocc_sem_t *sem = sem_new(10);
        /* Block off a portion of the semaphore so that acquire(_, 10) can
         * eventually succeed. */
        assert_int_equal(gocc_sem_acquire(sem, 1, safety), 0);
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        acq_t big;
        acq_start(&big, sem, 10, ctx, NULL, false);
        /* Wait until the acquire(_, 10) call blocks. */
        int64_t end = gocc_now() + SAFETY_NS;
        while (gocc_sem_try_acquire(sem, 1)) {
            assert_int_equal(gocc_sem_release(sem, 1), 0);
            sched_yield();
            if (gocc_now() > end) fail_msg("acquire(_, 10) never blocked");
        }
        /* Now try to grab a read lock, and simultaneously unblock the
         * acquire(_, 10) call. */
        assert_int_equal(gocc_go(cancel_task, ctx, NULL), 0);
        int rc = gocc_sem_acquire(sem, 1, safety);
        if (rc != 0) fail_msg("round %d: acquire(_, 1) failed unexpectedly: %d", round, rc);
        assert_int_equal(gocc_sem_release(sem, 1), 0);
        assert_int_equal(ASYNC_RESULT(&big.a, SAFETY_NS), GOCC_ECANCELED);
        assert_int_equal(gocc_sem_release(sem, 1), 0);
        assert_all_free(sem, 10);
        gocc_sem_free(sem);
        ctx_done_release(ctx);
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Strict FIFO: waiters with mixed weights (0 included) queue in a known
 * order while the whole size is held; weight is then given back one unit at
 * a time. After k units, FIFO says exactly the longest prefix of the queue
 * whose weights sum to <= k is served: those must all return (bounded
 * wait), and no waiter behind them may have been served (a small waiter
 * never overtakes a larger one ahead of it; a weight-0 waiter waits its
 * turn). Waiters served by the same unit may return in either order. */
static void test_sem_fifo_mixed_weights(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const int64_t w[] = {3, 1, 5, 0, 2, 4, 1, 0};
    enum { NW = sizeof w / sizeof w[0] };
    int64_t size = 0;
    for (int i = 0; i < NW; i++) size += w[i];
    gocc_ctx_t *safety = safety_ctx();
    gocc_sem_t *s = sem_new(size);
    assert_int_equal(gocc_sem_acquire(s, size, safety), 0);
    acq_t q[NW];
    for (int i = 0; i < NW; i++) {
        acq_start(&q[i], s, w[i], safety, NULL, true);
        if (i == 0) {
            /* someone waits: weight 0 is refused (Clarification "Semaphore") */
            int64_t end = gocc_now() + SAFETY_NS;
            while (gocc_sem_try_acquire(s, 0) && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
            assert_false(gocc_sem_try_acquire(s, 0));
        }
    }
    for (int i = 0; i < NW; i++) assert_false(async_done(&q[i].a));
    for (int64_t k = 1; k <= size; k++) {
        assert_int_equal(gocc_sem_release(s, 1), 0);
        int served = 0; /* FIFO: the longest prefix that fits in k */
        for (int64_t sum = 0; served < NW && sum + w[served] <= k; served++) sum += w[served];
        for (int i = 0; i < served; i++)
            if (!async_wait(&q[i].a, SAFETY_NS))
                fail_msg("after %lld units: waiter %d (weight %lld) not served", (long long)k, i,
                         (long long)w[i]);
        /* the others still parked (async_blocked fails if one returned) */
        for (int i = served; i < NW; i++) {
            if (async_done(&q[i].a))
                fail_msg("after %lld units: waiter %d (weight %lld) served out of order "
                         "(only %d ahead of it fit)",
                         (long long)k, i, (long long)w[i], served);
            async_blocked(&q[i].a, "semaphore acquire");
        }
    }
    for (int i = 0; i < NW; i++) assert_int_equal(ASYNC_RESULT(&q[i].a, SAFETY_NS), 0);
    assert_int_equal(gocc_sem_release(s, size), 0);
    assert_all_free(s, size);
    gocc_sem_free(s);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* try_acquire fails while anyone waits, even where the weight is free;
 * weight 0 (Clarification "Semaphore") succeeds at once with nobody waiting
 * even on a full semaphore, and waits its turn behind a waiter. */
static void test_sem_try_acquire_while_waiting(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_sem_t *s = sem_new(4);
    assert_int_equal(gocc_sem_acquire(s, 3, safety), 0);
    /* nobody waits: 1 free */
    assert_true(gocc_sem_try_acquire(s, 0));
    assert_false(gocc_sem_try_acquire(s, 2));
    acq_t two, zero;
    acq_start(&two, s, 2, safety, NULL, true);
    assert_false(async_done(&two.a));
    assert_false(gocc_sem_try_acquire(s, 1)); /* 1 is free, but someone waits */
    assert_false(gocc_sem_try_acquire(s, 0));
    assert_int_equal(acquire_for(s, 1, 20 * GOCC_MILLISECOND), GOCC_EDEADLINE);
    assert_int_equal(acquire_for(s, 0, 20 * GOCC_MILLISECOND), GOCC_EDEADLINE);
    acq_start(&zero, s, 0, safety, NULL, true);
    assert_false(async_done(&zero.a)); /* weight 0 waits behind "two" */
    assert_false(async_done(&two.a));
    assert_int_equal(gocc_sem_release(s, 1), 0); /* 2 free: "two", and "zero" */
    assert_int_equal(ASYNC_RESULT(&two.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&zero.a, SAFETY_NS), 0);
    /* nobody waits, nothing free: weight 0 still succeeds at once */
    assert_true(gocc_sem_try_acquire(s, 0));
    assert_int_equal(gocc_sem_acquire(s, 0, safety), 0);
    assert_false(gocc_sem_try_acquire(s, 1));
    assert_int_equal(gocc_sem_release(s, 4), 0);
    assert_all_free(s, 4);

    /* a semaphore of size 0: only weight 0 */
    gocc_sem_t *z = sem_new(0);
    assert_true(gocc_sem_try_acquire(z, 0));
    assert_int_equal(gocc_sem_acquire(z, 0, safety), 0);
    assert_false(gocc_sem_try_acquire(z, 1));
    assert_int_equal(acquire_for(z, 1, 20 * GOCC_MILLISECOND), GOCC_EDEADLINE);
    assert_int_equal(gocc_sem_release(z, 0), 0);
    assert_int_equal(gocc_sem_release(z, 1), GOCC_EINVAL);
    gocc_sem_free(z);
    gocc_sem_free(s);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Cancellation inside a queue. (1) The head waiter is cancelled: it takes
 * nothing and the waiters it held up are served at once. (2) A waiter in
 * the middle is cancelled: it takes nothing, the head still goes first and
 * the one behind it is served after the head. (3) A waiter at the tail
 * times out. */
static void test_sem_cancel_in_queue(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_sem_t *s = sem_new(10);
    atomic_int tickets = 0;
    acq_t a, b, c;

    /* (1) 4 free; A wants 5 (head), B 3 and C 1 fit but wait behind A */
    assert_int_equal(gocc_sem_acquire(s, 6, safety), 0);
    gocc_ctx_t *ca = gocc_ctx_with_cancel(NULL);
    assert_non_null(ca);
    acq_start(&a, s, 5, ca, &tickets, true);
    acq_start(&b, s, 3, safety, &tickets, true);
    acq_start(&c, s, 1, safety, &tickets, true);
    assert_false(async_done(&b.a));
    assert_false(async_done(&c.a));
    gocc_ctx_cancel(ca);
    assert_int_equal(ASYNC_RESULT(&a.a, PROMPT_NS), GOCC_ECANCELED);
    assert_int_equal(ASYNC_RESULT(&b.a, PROMPT_NS), 0);
    assert_int_equal(ASYNC_RESULT(&c.a, PROMPT_NS), 0);
    assert_false(gocc_sem_try_acquire(s, 1)); /* 6 + 3 + 1: A took nothing */
    assert_int_equal(gocc_sem_release(s, 10), 0);
    assert_all_free(s, 10);
    ctx_done_release(ca);

    /* (2) 4 free; A wants 5 (head), B 3 (middle, cancelled), C 2 */
    atomic_store(&tickets, 0);
    assert_int_equal(gocc_sem_acquire(s, 6, safety), 0);
    gocc_ctx_t *cb = gocc_ctx_with_cancel(NULL);
    assert_non_null(cb);
    acq_start(&a, s, 5, safety, &tickets, true);
    acq_start(&b, s, 3, cb, &tickets, true);
    acq_start(&c, s, 2, safety, &tickets, true);
    gocc_ctx_cancel(cb);
    assert_int_equal(ASYNC_RESULT(&b.a, PROMPT_NS), GOCC_ECANCELED);
    async_blocked(&a.a, "semaphore acquire"); /* still 4 free: A waits, C behind it */
    async_blocked(&c.a, "semaphore acquire");
    assert_false(gocc_sem_try_acquire(s, 1));
    assert_int_equal(gocc_sem_release(s, 1), 0); /* 5 free: A */
    assert_int_equal(ASYNC_RESULT(&a.a, SAFETY_NS), 0);
    async_blocked(&c.a, "semaphore acquire"); /* 0 free */
    assert_int_equal(gocc_sem_release(s, 2), 0);
    assert_int_equal(ASYNC_RESULT(&c.a, SAFETY_NS), 0);
    assert_int_equal(a.ticket, 0);
    assert_int_equal(c.ticket, 1);
    assert_false(gocc_sem_try_acquire(s, 1)); /* 5 + 5 + 2 - 2 = 10: B took nothing */
    assert_int_equal(gocc_sem_release(s, 10), 0);
    assert_all_free(s, 10);
    ctx_done_release(cb);

    /* (3) the tail times out; the head is served afterwards */
    atomic_store(&tickets, 0);
    assert_int_equal(gocc_sem_acquire(s, 10, safety), 0);
    gocc_ctx_t *tc = gocc_ctx_with_timeout(NULL, SETTLE_NS * 2);
    assert_non_null(tc);
    acq_start(&a, s, 4, safety, &tickets, true);
    acq_start(&c, s, 4, tc, &tickets, false);
    assert_int_equal(ASYNC_RESULT(&c.a, SAFETY_NS), GOCC_EDEADLINE);
    assert_false(async_done(&a.a));
    assert_int_equal(gocc_sem_release(s, 6), 0);
    assert_int_equal(ASYNC_RESULT(&a.a, SAFETY_NS), 0);
    assert_int_equal(gocc_sem_release(s, 8), 0);
    assert_all_free(s, 10);
    ctx_done_release(tc);

    gocc_sem_free(s);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Clarification "A context already done wins": an acquire whose context is
 * already done returns its error and takes nothing, even with weight free
 * (weight 0 included). */
static void test_sem_ctx_already_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_sem_t *s = sem_new(5);
    gocc_ctx_t *cancelled = gocc_ctx_with_cancel(NULL);
    assert_non_null(cancelled);
    gocc_ctx_cancel(cancelled);
    gocc_ctx_t *expired = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_SECOND);
    assert_non_null(expired);
    for (int64_t n = 0; n <= 5; n++) {
        assert_int_equal(gocc_sem_acquire(s, n, cancelled), GOCC_ECANCELED);
        assert_int_equal(gocc_sem_acquire(s, n, expired), GOCC_EDEADLINE);
    }
    assert_int_equal(gocc_sem_acquire(s, 6, cancelled), GOCC_ECANCELED); /* too big */
    assert_all_free(s, 5);
    gocc_sem_free(s);
    ctx_done_release(cancelled);
    ctx_done_release(expired);
    ASSERT_NO_TASKS(start);
}

/* Negative weights and sizes, NULL (Clarifications "Semaphore", "NULL"),
 * and the largest size. */
static void test_sem_invalid(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    errno = 0;
    assert_null(gocc_sem_new(-1));
    assert_int_equal(errno, EINVAL);
    gocc_sem_t *s = sem_new(3);
    assert_int_equal(gocc_sem_acquire(s, -1, safety), GOCC_EINVAL);
    assert_int_equal(gocc_sem_acquire(s, -1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_sem_acquire(s, INT64_MIN, safety), GOCC_EINVAL);
    assert_false(gocc_sem_try_acquire(s, -1));
    assert_int_equal(gocc_sem_release(s, -1), GOCC_EINVAL);
    assert_all_free(s, 3);
    assert_int_equal(gocc_sem_acquire(NULL, 1, safety), GOCC_EINVAL);
    assert_int_equal(gocc_sem_acquire(NULL, 1, NULL), GOCC_EINVAL);
    assert_false(gocc_sem_try_acquire(NULL, 0));
    assert_int_equal(gocc_sem_release(NULL, 1), GOCC_EINVAL);
    gocc_sem_free(NULL);
    gocc_sem_free(s);

    gocc_sem_t *big = sem_new(INT64_MAX);
    assert_int_equal(gocc_sem_acquire(big, INT64_MAX, safety), 0);
    assert_false(gocc_sem_try_acquire(big, 1));
    assert_int_equal(gocc_sem_release(big, INT64_MAX), 0);
    assert_int_equal(gocc_sem_release(big, 1), GOCC_EINVAL);
    assert_true(gocc_sem_try_acquire(big, INT64_MAX - 1));
    assert_true(gocc_sem_try_acquire(big, 1));
    assert_false(gocc_sem_try_acquire(big, 1));
    assert_int_equal(gocc_sem_release(big, INT64_MAX), 0);
    assert_all_free(big, INT64_MAX);
    gocc_sem_free(big);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Fairness under load: 8 tasks take weights 1..4 of 8 in a tight loop while
 * one task takes all 8 again and again. Strict FIFO means the large
 * waiter is served every time its turn comes: it must succeed at least
 * BIG_MIN times in the run, and the weight held never exceeds 8. */
#define FS_SMALL 8
#define FS_SIZE 8
#define BIG_MIN 5
typedef struct fs_state {
    gocc_sem_t *s;
    gocc_ctx_t *safety;
    atomic_bool stop;
    atomic_int held;
    atomic_int over;
    atomic_int bad;
    atomic_int finished;
    atomic_int big_count;
    atomic_int small_count[FS_SMALL];
    atomic_int next;
} fs_state;

static void fs_hold(fs_state *f, int w) {
    if (atomic_fetch_add(&f->held, w) + w > FS_SIZE) atomic_fetch_add(&f->over, 1);
    sched_yield();
    atomic_fetch_sub(&f->held, w);
}

static int fs_small(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fs_state *f = arg;
    int id = atomic_fetch_add(&f->next, 1);
    for (int i = 0; !atomic_load(&f->stop); i++) {
        int w = 1 + (id + i) % 4;
        if (gocc_sem_acquire(f->s, w, f->safety) != 0) {
            atomic_fetch_add(&f->bad, 1);
            break;
        }
        fs_hold(f, w);
        if (gocc_sem_release(f->s, w) != 0) atomic_fetch_add(&f->bad, 1);
        atomic_fetch_add(&f->small_count[id], 1);
    }
    atomic_fetch_add(&f->finished, 1);
    return 0;
}

static int fs_big(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fs_state *f = arg;
    while (!atomic_load(&f->stop)) {
        if (gocc_sem_acquire(f->s, FS_SIZE, f->safety) != 0) {
            atomic_fetch_add(&f->bad, 1);
            break;
        }
        fs_hold(f, FS_SIZE);
        if (gocc_sem_release(f->s, FS_SIZE) != 0) atomic_fetch_add(&f->bad, 1);
        atomic_fetch_add(&f->big_count, 1);
    }
    atomic_fetch_add(&f->finished, 1);
    return 0;
}

static void test_sem_fairness_stress(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    fs_state f;
    memset(&f, 0, sizeof f);
    f.s = sem_new(FS_SIZE);
    f.safety = safety_ctx();
#ifdef GOCC_TEST_SANITIZED
    const int64_t run = 1500 * GOCC_MILLISECOND;
#else
    const int64_t run = 500 * GOCC_MILLISECOND;
#endif
    for (int i = 0; i < FS_SMALL; i++) assert_int_equal(gocc_go(fs_small, NULL, &f), 0);
    assert_int_equal(gocc_go(fs_big, NULL, &f), 0);
    sleep_ns(run);
    int big_in_run = atomic_load(&f.big_count);
    atomic_store(&f.stop, true);
    assert_true(wait_count(&f.finished, FS_SMALL + 1, SAFETY_NS));
    assert_int_equal(atomic_load(&f.bad), 0);
    assert_int_equal(atomic_load(&f.over), 0);
    if (big_in_run < BIG_MIN)
        fail_msg("the large waiter succeeded %d times in %lld ms (want >= %d)", big_in_run,
                 (long long)(run / GOCC_MILLISECOND), BIG_MIN);
    for (int i = 0; i < FS_SMALL; i++) CHECK_GE(atomic_load(&f.small_count[i]), 1);
    assert_all_free(f.s, FS_SIZE);
    gocc_sem_free(f.s);
    ctx_done_release(f.safety);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-sem", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_sem_weighted),
        GOCC_TEST(test_sem_weighted_panic),
        GOCC_TEST(test_sem_weighted_try_acquire),
        GOCC_TEST(test_sem_weighted_acquire),
        GOCC_TEST(test_sem_doesnt_block_if_too_big),
        GOCC_TEST(test_sem_large_acquire_doesnt_starve),
        GOCC_TEST(test_sem_alloc_cancel_doesnt_starve),
        GOCC_TEST(test_sem_fifo_mixed_weights),
        GOCC_TEST(test_sem_try_acquire_while_waiting),
        GOCC_TEST(test_sem_cancel_in_queue),
        GOCC_TEST(test_sem_ctx_already_done),
        GOCC_TEST(test_sem_invalid),
        GOCC_TEST(test_sem_fairness_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
