/*
 * test-waitgroup.c - gocc_waitgroup_* (Go's sync.WaitGroup, with a context
 * on wait) and gocc_once_do (Go's sync.Once / OnceValue): gocc.h's
 * "WaitGroup and Once" section and the rules at its top ("A context
 * already done wins", "NULL").
 *
 * Ported from Go's src/sync/waitgroup_test.go (TestWaitGroup,
 * TestWaitGroupMisuse, TestWaitGroupRace, TestWaitGroupAlign) and
 * src/sync/once_test.go (TestOnce; TestOncePanic has no C equivalent). The
 * comment above each test names the Go test it comes from.
 *
 * No cmocka assertion runs on a task: tasks record what they saw in atomics
 * and the test thread checks it. Waits take a safety context, and calls
 * that have none (once_do, wait with a NULL ctx) run on a helper task and
 * are awaited with a bound.
 */
#include "test-common.h"

#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

/* A task that calls done on the waitgroup it is given. */
static int done_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gocc_waitgroup_done(arg);
    return 0;
}

/* wait, run through async_call. */
typedef struct wg_call {
    gocc_waitgroup_t *wg;
    gocc_ctx_t *ctx;
} wg_call;

static int call_wg_wait(void *p) {
    wg_call *c = p;
    return gocc_waitgroup_wait(c->wg, c->ctx);
}

/* wait with a timeout context: 0, or the timeout's GOCC_EDEADLINE. */
static int wait_for(gocc_waitgroup_t *wg, int64_t timeout_ns) {
    gocc_ctx_t *c = safety_ctx_ns(timeout_ns);
    int rc = gocc_waitgroup_wait(wg, c);
    ctx_done_release(c);
    return rc;
}

/* A waitgroup's counter is > 0: a short wait times out. */
#define ASSERT_PENDING(wg) assert_int_equal(wait_for((wg), 10 * GOCC_MILLISECOND), GOCC_EDEADLINE)
/* A waitgroup's counter is 0: wait returns 0 (bounded). */
#define ASSERT_ZERO(wg) assert_int_equal(wait_for((wg), SAFETY_NS), 0)

/* ------------------------------------------------------------------------ */
/* WaitGroup */

/* from waitgroup_test.go TestWaitGroup / testWaitGroup: a barrier of n tasks
 * on wg1 then wg2; nobody passes wg2 before its last done. wg1 is static
 * (GOCC_WAITGROUP_INIT), wg2 a zeroed value on the stack; both are reused
 * for 8 rounds. */
typedef struct tw_state {
    gocc_waitgroup_t *wg1, *wg2;
    gocc_chan_t *exited;
    gocc_ctx_t *safety;
    atomic_int bad;
} tw_state;

static int tw_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tw_state *s = arg;
    gocc_waitgroup_done(s->wg1);
    if (gocc_waitgroup_wait(s->wg2, s->safety) != 0) atomic_fetch_add(&s->bad, 1);
    bool t = true;
    if (gocc_chan_send(s->exited, &t, s->safety) != 0) atomic_fetch_add(&s->bad, 1);
    return 0;
}

static gocc_waitgroup_t g_wg1 = GOCC_WAITGROUP_INIT;

static void test_waitgroup(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_waitgroup_t wg2;
    memset(&wg2, 0, sizeof wg2);
    const int n = 16;
    tw_state s = {.wg1 = &g_wg1,
                  .wg2 = &wg2,
                  .exited = chan_new(sizeof(bool), (size_t)n),
                  .safety = safety_ctx()};
    /* Run the same test a few times to ensure barrier is in a proper state. */
    for (int round = 0; round != 8; round++) {
        assert_int_equal(gocc_waitgroup_add(s.wg1, n), 0);
        assert_int_equal(gocc_waitgroup_add(s.wg2, n), 0);
        for (int i = 0; i != n; i++) go(tw_task, &s);
        assert_int_equal(gocc_waitgroup_wait(s.wg1, s.safety), 0);
        for (int i = 0; i != n; i++) {
            if (gocc_chan_try_recv(s.exited, NULL) != GOCC_EAGAIN)
                fail_msg("WaitGroup released group too soon (round %d, %d dones)", round, i);
            gocc_waitgroup_done(s.wg2);
        }
        for (int i = 0; i != n; i++) assert_int_equal(gocc_chan_recv(s.exited, NULL, s.safety), 0);
    }
    assert_int_equal(atomic_load(&s.bad), 0);
    gocc_chan_release(s.exited);
    ctx_done_release(s.safety);
    ASSERT_NO_TASKS(start);
}

/* from waitgroup_test.go TestWaitGroupMisuse: a negative counter is
 * GOCC_EINVAL (Go panics) and changes nothing; done on a zero counter is
 * ignored (gocc.h); add(0) is a no-op. */
static void test_waitgroup_misuse(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    gocc_waitgroup_done(&wg);
    assert_int_equal(gocc_waitgroup_add(&wg, -1), GOCC_EINVAL); /* Go: wg.Done() panics */
    ASSERT_ZERO(&wg);
    /* the failed add left 0, not -1: one add(1) makes it pending */
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    ASSERT_PENDING(&wg);
    gocc_waitgroup_done(&wg);
    ASSERT_ZERO(&wg);

    /* done on zero is ignored (does not go to -1) */
    gocc_waitgroup_done(&wg);
    gocc_waitgroup_done(&wg);
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    ASSERT_PENDING(&wg);
    gocc_waitgroup_done(&wg);
    ASSERT_ZERO(&wg);

    /* a too-large negative delta changes nothing */
    assert_int_equal(gocc_waitgroup_add(&wg, 2), 0);
    assert_int_equal(gocc_waitgroup_add(&wg, -3), GOCC_EINVAL);
    assert_int_equal(gocc_waitgroup_add(&wg, INT64_MIN), GOCC_EINVAL);
    ASSERT_PENDING(&wg);
    assert_int_equal(gocc_waitgroup_add(&wg, 0), 0);
    gocc_waitgroup_done(&wg);
    ASSERT_PENDING(&wg); /* still 1 */
    assert_int_equal(gocc_waitgroup_add(&wg, -1), 0);
    ASSERT_ZERO(&wg);
    assert_int_equal(gocc_waitgroup_add(&wg, 0), 0);
    ASSERT_ZERO(&wg);
    ASSERT_NO_TASKS(start);
}

/* A delta that the counter cannot hold must not be lost: add either
 * refuses it (GOCC_EINVAL, nothing changes) or counts it in full, so the
 * waitgroup is pending afterwards and add(-delta) takes it back. Never a
 * silent zero or a truncated count (wait would not wait long enough),
 * never signed overflow (UBSan). */
static void check_huge_add(int64_t before, int64_t delta) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    if (before > 0) assert_int_equal(gocc_waitgroup_add(&wg, before), 0);
    int rc = gocc_waitgroup_add(&wg, delta);
    if (rc != 0 && rc != GOCC_EINVAL)
        fail_msg("add(%lld) after add(%lld) = %d", (long long)delta, (long long)before, rc);
    if (rc == 0 || before > 0) {
        int w = wait_for(&wg, 10 * GOCC_MILLISECOND);
        if (w != GOCC_EDEADLINE)
            fail_msg("add(%lld) after add(%lld) returned %d, then wait = %d: the counter "
                     "was lost (want the waitgroup still pending)",
                     (long long)delta, (long long)before, rc, w);
    }
    if (rc == 0) {
        int back = gocc_waitgroup_add(&wg, -delta);
        if (back != 0)
            fail_msg("add(%lld) after add(%lld) returned 0, but add(-%lld) = %d: the counter "
                     "did not hold the delta",
                     (long long)delta, (long long)before, (long long)delta, back);
    }
    if (before > 0) assert_int_equal(gocc_waitgroup_add(&wg, -before), 0);
    ASSERT_ZERO(&wg);
}

static void test_waitgroup_counter_overflow(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    check_huge_add(0, INT64_C(1) << 62);
    check_huge_add(0, (INT64_C(1) << 62) + 5);
    check_huge_add(0, INT64_MAX);
    check_huge_add(1, INT64_MAX);
    check_huge_add(INT64_C(1) << 40, INT64_MAX - 3);
    ASSERT_NO_TASKS(start);
}

/* from waitgroup_test.go TestWaitGroupRace: two tasks add to a counter and
 * call done; after wait both increments are visible. The waitgroup is a
 * fresh stack value each round. */
typedef struct race_state {
    gocc_waitgroup_t *wg;
    atomic_int n;
} race_state;

static int race_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    race_state *s = arg;
    atomic_fetch_add(&s->n, 1);
    gocc_waitgroup_done(s->wg);
    return 0;
}

static void test_waitgroup_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    for (int i = 0; i < SCALE(1000); i++) {
        gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
        race_state s = {.wg = &wg};
        atomic_init(&s.n, 0);
        assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
        go(race_task, &s);
        assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
        go(race_task, &s);
        assert_int_equal(gocc_waitgroup_wait(&wg, safety), 0);
        if (atomic_load(&s.n) != 2) fail_msg("Spurious wakeup from Wait (round %d)", i);
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* from waitgroup_test.go TestWaitGroupAlign: a waitgroup after a byte in a
 * struct (and a zeroed static one) works. */
static struct {
    char x;
    gocc_waitgroup_t wg;
} g_align;

static void test_waitgroup_align(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    struct {
        char x;
        gocc_waitgroup_t wg;
    } x = {1, GOCC_WAITGROUP_INIT};
    assert_int_equal(gocc_waitgroup_add(&x.wg, 1), 0);
    go(done_task, &x.wg);
    ASSERT_ZERO(&x.wg);
    assert_int_equal(gocc_waitgroup_add(&g_align.wg, 1), 0);
    go(done_task, &g_align.wg);
    ASSERT_ZERO(&g_align.wg);
    ASSERT_NO_TASKS(start);
}

/* add/done/wait across many tasks: add(n) up front, add(1) per task, and
 * adds made by tasks for tasks they start while the counter is > 0. */
typedef struct many_state {
    gocc_waitgroup_t wg;
    atomic_int work;
    atomic_int bad;
} many_state;

static int many_leaf(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    many_state *s = arg;
    atomic_fetch_add(&s->work, 1);
    gocc_waitgroup_done(&s->wg);
    return 0;
}

static int many_parent(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    many_state *s = arg;
    for (int i = 0; i < 3; i++) {
        if (gocc_waitgroup_add(&s->wg, 1) != 0 || gocc_go(many_leaf, NULL, s) != 0)
            atomic_fetch_add(&s->bad, 1);
    }
    atomic_fetch_add(&s->work, 1);
    gocc_waitgroup_done(&s->wg);
    return 0;
}

static void test_waitgroup_many_tasks(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    many_state *s = calloc(1, sizeof *s); /* zeroed: a valid waitgroup */
    assert_non_null(s);
    const int n = SCALE(2000);
    assert_int_equal(gocc_waitgroup_add(&s->wg, n), 0);
    for (int i = 0; i < n; i++) go(many_leaf, s);
    assert_int_equal(gocc_waitgroup_wait(&s->wg, safety), 0);
    assert_int_equal(atomic_load(&s->work), n);

    atomic_store(&s->work, 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(gocc_waitgroup_add(&s->wg, 1), 0);
        go(many_leaf, s);
    }
    assert_int_equal(gocc_waitgroup_wait(&s->wg, safety), 0);
    assert_int_equal(atomic_load(&s->work), n);

    atomic_store(&s->work, 0);
    const int np = SCALE(400);
    assert_int_equal(gocc_waitgroup_add(&s->wg, np), 0);
    for (int i = 0; i < np; i++) go(many_parent, s);
    assert_int_equal(gocc_waitgroup_wait(&s->wg, safety), 0);
    assert_int_equal(atomic_load(&s->bad), 0);
    assert_int_equal(atomic_load(&s->work), 4 * np);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
    free(s);
}

/* wait honours its context: GOCC_EDEADLINE / GOCC_ECANCELED while the
 * counter is > 0 (also when the context is cancelled while waiting, and
 * with a context already done, Clarification "A context already done
 * wins", even at zero); the waitgroup keeps working afterwards and a
 * cancelled waiter does not disturb another. wait with a NULL ctx blocks
 * until the counter is 0. */
static void test_waitgroup_wait_ctx(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    /* a deadline */
    assert_int_equal(wait_for(&wg, 20 * GOCC_MILLISECOND), GOCC_EDEADLINE);
    /* cancelled while waiting, with a second waiter that stays */
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    assert_non_null(c);
    gocc_ctx_t *safety = safety_ctx();
    wg_call c1 = {.wg = &wg, .ctx = c}, c2 = {.wg = &wg, .ctx = safety};
    async_call a1, a2;
    async_start_blocked(&a1, call_wg_wait, &c1, "waitgroup wait");
    async_start_blocked(&a2, call_wg_wait, &c2, "waitgroup wait");
    assert_false(async_done(&a1));
    assert_false(async_done(&a2));
    gocc_ctx_cancel(c);
    assert_int_equal(ASYNC_RESULT(&a1, PROMPT_NS), GOCC_ECANCELED);
    async_blocked(&a2, "waitgroup wait"); /* the other stays parked */
    /* already done, counter > 0 */
    assert_int_equal(gocc_waitgroup_wait(&wg, c), GOCC_ECANCELED);
    gocc_ctx_t *expired = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_SECOND);
    assert_non_null(expired);
    assert_int_equal(gocc_waitgroup_wait(&wg, expired), GOCC_EDEADLINE);
    /* the counter is still 1 and the waitgroup still works */
    assert_false(async_done(&a2));
    gocc_waitgroup_done(&wg);
    assert_int_equal(ASYNC_RESULT(&a2, SAFETY_NS), 0);
    assert_int_equal(gocc_waitgroup_wait(&wg, safety), 0);
    /* already done, counter 0: the context still wins */
    assert_int_equal(gocc_waitgroup_wait(&wg, c), GOCC_ECANCELED);
    assert_int_equal(gocc_waitgroup_wait(&wg, expired), GOCC_EDEADLINE);
    /* a NULL context: counter 0 returns at once; > 0 blocks until done */
    wg_call c3 = {.wg = &wg, .ctx = NULL};
    async_start(&a1, call_wg_wait, &c3);
    assert_int_equal(ASYNC_RESULT(&a1, SAFETY_NS), 0);
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    async_start_blocked(&a1, call_wg_wait, &c3, "waitgroup wait");
    assert_false(async_done(&a1));
    go(done_task, &wg);
    assert_int_equal(ASYNC_RESULT(&a1, SAFETY_NS), 0);
    ctx_done_release(expired);
    ctx_done_release(c);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Many concurrent waiters are all released by the last done, and none
 * before it; the waitgroup is reused for a second round. */
typedef struct mw_state {
    gocc_waitgroup_t wg;
    gocc_ctx_t *safety;
    atomic_int started;
    atomic_int returned;
    atomic_int ok;
} mw_state;

static int mw_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mw_state *s = arg;
    atomic_fetch_add(&s->started, 1);
    if (gocc_waitgroup_wait(&s->wg, s->safety) == 0) atomic_fetch_add(&s->ok, 1);
    atomic_fetch_add(&s->returned, 1);
    return 0;
}

static void test_waitgroup_many_waiters(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    mw_state s;
    memset(&s, 0, sizeof s);
    s.safety = safety_ctx();
    const int m = 64;
    for (int round = 0; round < 2; round++) {
        atomic_store(&s.started, 0);
        atomic_store(&s.returned, 0);
        atomic_store(&s.ok, 0);
        assert_int_equal(gocc_waitgroup_add(&s.wg, 2), 0);
        for (int i = 0; i < m; i++) go(mw_task, &s);
        wait_blocked_in((size_t)m, "waitgroup wait", SAFETY_NS);
        gocc_waitgroup_done(&s.wg);
        /* none woken: a wake is decided before done returns */
        assert_int_equal(atomic_load(&s.returned), 0);
        wait_blocked_in((size_t)m, "waitgroup wait", SAFETY_NS);
        gocc_waitgroup_done(&s.wg);
        assert_true(wait_count(&s.returned, m, SAFETY_NS));
        assert_int_equal(atomic_load(&s.ok), m);
    }
    ctx_done_release(s.safety);
    ASSERT_NO_TASKS(start);
}

/* Clarification "WaitGroup": a waitgroup on the waiter's stack may go out
 * of scope as soon as wait returned 0, while the last done may still be in
 * flight. Each round's waitgroup lives in a frame that returns right after
 * wait and is then overwritten (ASan, with detect_stack_use_after_return,
 * and TSan see any touch of it by done after the wake-up); a heap variant
 * frees the waitgroup at once. The doers spin a varying while so the last
 * done lands before, during and after the waiter parks. */
typedef struct ss_arg {
    gocc_waitgroup_t *wg;
    int spin_us;
} ss_arg;

static int ss_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ss_arg a = *(ss_arg *)arg; /* copy: the arg is on the waiter's stack too */
    int64_t t0 = gocc_now();
    while (gocc_now() - t0 < a.spin_us * GOCC_MICROSECOND) {
    }
    gocc_waitgroup_done(a.wg);
    return 0;
}

static __attribute__((noinline)) int ss_round(int spin_us, gocc_ctx_t *safety) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    ss_arg args[2] = {{&wg, spin_us}, {&wg, spin_us / 2}};
    if (gocc_waitgroup_add(&wg, 2) != 0) return -1;
    if (gocc_go(ss_task, NULL, &args[0]) != 0) return -2;
    if (gocc_go(ss_task, NULL, &args[1]) != 0) return -3;
    int rc = gocc_waitgroup_wait(&wg, safety);
    /* the tasks copied their args before their done; wg ends here */
    return rc;
}

static __attribute__((noinline)) void ss_scribble(void) {
    volatile unsigned char buf[256];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0xAA;
}

static void test_waitgroup_stack_scope(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    uint64_t r = 88172645463325252ULL;
    const int n = SCALE(2000);
    for (int i = 0; i < n; i++) {
        int spin = (int)(xorshift(&r) % 60);
        int rc = ss_round(spin, safety);
        if (rc != 0) fail_msg("round %d: %d", i, rc);
        ss_scribble();
    }
    for (int i = 0; i < n; i++) {
        gocc_waitgroup_t *wg = malloc(sizeof *wg);
        assert_non_null(wg);
        *wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
        assert_int_equal(gocc_waitgroup_add(wg, 1), 0);
        ss_arg a = {wg, (int)(xorshift(&r) % 60)};
        go(ss_task, &a);
        int rc = gocc_waitgroup_wait(wg, safety);
        if (rc != 0) fail_msg("heap round %d: %d", i, rc);
        free(wg);
        /* a may be read by the task only before its done */
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Clarification "NULL". */
static void test_waitgroup_null(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    assert_int_equal(gocc_waitgroup_add(NULL, 1), GOCC_EINVAL);
    assert_int_equal(gocc_waitgroup_add(NULL, -1), GOCC_EINVAL);
    gocc_waitgroup_done(NULL);
    assert_int_equal(gocc_waitgroup_wait(NULL, NULL), GOCC_EINVAL);
    gocc_ctx_t *safety = safety_ctx();
    assert_int_equal(gocc_waitgroup_wait(NULL, safety), GOCC_EINVAL);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* ------------------------------------------------------------------------ */
/* Once */

typedef struct once_state {
    gocc_once_t *once;
    atomic_int runs;   /* calls of the once's function */
    atomic_int calls;  /* once_do calls that returned */
    atomic_int bad;    /* a caller that got the wrong result or saw no run */
    int want;          /* the function's result */
    gocc_chan_t *gate; /* NULL, or the function waits until it is closed */
    gocc_ctx_t *safety;
    atomic_int entered; /* the function has started */
} once_state;

static int once_fn(void *arg) {
    once_state *s = arg;
    atomic_fetch_add(&s->entered, 1);
    if (s->gate != NULL) gocc_chan_recv(s->gate, NULL, s->safety);
    atomic_fetch_add(&s->runs, 1);
    return s->want;
}

/* Another function for the same once: it must never run. */
static int other_fn(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
    return -77;
}

static int once_caller(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    once_state *s = arg;
    int rc = gocc_once_do(s->once, once_fn, s);
    /* once_do returned: fn has run (Go's "once failed inside run") */
    if (rc != s->want || atomic_load(&s->runs) != 1) atomic_fetch_add(&s->bad, 1);
    atomic_fetch_add(&s->calls, 1);
    return 0;
}

static int call_once_do(void *p) {
    once_state *s = p;
    return gocc_once_do(s->once, once_fn, s);
}

/* from once_test.go TestOnce: 10 tasks call once_do on a static once; fn
 * runs once, and every caller sees its effect when once_do returns. */
static gocc_once_t g_once = GOCC_ONCE_INIT;

static void test_once(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    once_state s;
    memset(&s, 0, sizeof s);
    s.once = &g_once;
    s.want = 0;
    const int n = 10;
    for (int i = 0; i < n; i++) go(once_caller, &s);
    assert_true(wait_count(&s.calls, n, SAFETY_NS));
    assert_int_equal(atomic_load(&s.runs), 1); /* "once failed outside run" */
    assert_int_equal(atomic_load(&s.bad), 0);
    ASSERT_NO_TASKS(start);
}

/* fn runs exactly once with many concurrent callers (tasks and the test
 * thread); callers that arrive while fn runs block until it finishes (fn
 * waits on a gate); all get fn's result, an error code too (Go's
 * OnceValue / OnceValues); later calls return it without running anything. */
static void once_concurrent(int want) {
    once_state s;
    memset(&s, 0, sizeof s);
    gocc_once_t once; /* zeroed: a valid once */
    memset(&once, 0, sizeof once);
    s.once = &once;
    s.want = want;
    s.gate = chan_new(0, 0);
    s.safety = safety_ctx();
    const int m = 32;
    for (int i = 0; i < m; i++) go(once_caller, &s);
    assert_true(wait_count(&s.entered, 1, SAFETY_NS));
    async_call a;
    async_start_blocked(&a, call_once_do, &s, "once"); /* one more, from another task */
    /* fn is blocked on the gate: no caller may have returned */
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_false(async_done(&a));
    assert_int_equal(gocc_chan_close(s.gate), 0);
    assert_true(wait_count(&s.calls, m, SAFETY_NS));
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), want);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_int_equal(atomic_load(&s.entered), 1);
    /* later calls: the first result, no function runs */
    atomic_int other = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(gocc_once_do(&once, other_fn, &other), want);
        assert_int_equal(gocc_once_do(&once, once_fn, &s), want);
    }
    assert_int_equal(atomic_load(&other), 0);
    assert_int_equal(atomic_load(&s.runs), 1);
    gocc_chan_release(s.gate);
    ctx_done_release(s.safety);
}

static void test_once_concurrent_callers_block(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    once_concurrent(42);
    once_concurrent(GOCC_ECANCELED); /* an error result */
    once_concurrent(-1234);
    ASSERT_NO_TASKS(start);
}

/* Many onces, many callers in different orders, many rounds (each once is
 * zeroed again between rounds): each function runs exactly once per round
 * and every caller gets its once's own result. */
#define NONCE 16
typedef struct mo_state {
    gocc_once_t once[NONCE];
    atomic_int runs[NONCE];
    int idx[NONCE];
    atomic_int bad;
    atomic_int finished;
    atomic_int offset;
} mo_state;

static mo_state g_mo;

static int mo_fn(void *arg) {
    int k = *(int *)arg;
    atomic_fetch_add(&g_mo.runs[k], 1);
    return k + 1;
}

static int mo_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    int off = atomic_fetch_add(&g_mo.offset, 5);
    for (int j = 0; j < NONCE; j++) {
        int k = (off + j) % NONCE;
        if (gocc_once_do(&g_mo.once[k], mo_fn, &g_mo.idx[k]) != k + 1)
            atomic_fetch_add(&g_mo.bad, 1);
    }
    atomic_fetch_add(&g_mo.finished, 1);
    return 0;
}

static void test_once_many(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int t = 8;
    for (int round = 0; round < SCALE(100); round++) {
        memset(&g_mo, 0, sizeof g_mo);
        for (int k = 0; k < NONCE; k++) g_mo.idx[k] = k;
        for (int i = 0; i < t; i++) go(mo_task, NULL);
        assert_true(wait_count(&g_mo.finished, t, SAFETY_NS));
        assert_int_equal(atomic_load(&g_mo.bad), 0);
        for (int k = 0; k < NONCE; k++)
            if (atomic_load(&g_mo.runs[k]) != 1)
                fail_msg("round %d: once %d ran %d times", round, k, atomic_load(&g_mo.runs[k]));
        /* every task has returned before the structure is zeroed again */
        ASSERT_NO_TASKS(start);
    }
    ASSERT_NO_TASKS(start);
}

/* Clarification "NULL": GOCC_EINVAL for a NULL once or fn, and a NULL fn
 * changes nothing (the once still runs the next real function). */
static void test_once_null(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    atomic_int runs = 0;
    assert_int_equal(gocc_once_do(NULL, other_fn, &runs), GOCC_EINVAL);
    gocc_once_t once = GOCC_ONCE_INIT;
    assert_int_equal(gocc_once_do(&once, NULL, NULL), GOCC_EINVAL);
    assert_int_equal(atomic_load(&runs), 0);
    assert_int_equal(gocc_once_do(&once, other_fn, &runs), -77);
    assert_int_equal(atomic_load(&runs), 1);
    assert_int_equal(gocc_once_do(&once, other_fn, &runs), -77);
    assert_int_equal(atomic_load(&runs), 1);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-waitgroup", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_waitgroup),
        GOCC_TEST(test_waitgroup_misuse),
        GOCC_TEST(test_waitgroup_counter_overflow),
        GOCC_TEST(test_waitgroup_race),
        GOCC_TEST(test_waitgroup_align),
        GOCC_TEST(test_waitgroup_many_tasks),
        GOCC_TEST(test_waitgroup_wait_ctx),
        GOCC_TEST(test_waitgroup_many_waiters),
        GOCC_TEST(test_waitgroup_stack_scope),
        GOCC_TEST(test_waitgroup_null),
        GOCC_TEST(test_once),
        GOCC_TEST(test_once_concurrent_callers_block),
        GOCC_TEST(test_once_many),
        GOCC_TEST(test_once_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
