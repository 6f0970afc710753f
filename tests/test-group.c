/*
 * test-group.c - error groups (gocc_group_*): golang.org/x/sync/errgroup
 * semantics, gocc.h's "Error groups" section and the rules at its top
 * ("A context already done wins", "NULL").
 *
 * Ported from golang.org/x/sync errgroup/errgroup_test.go (TestZeroGroup,
 * TestWithContext, TestTryGo, TestGoLimit); the comment above each test
 * names the Go test it comes from. The others test what gocc.h promises
 * that Go's tests do not cover.
 *
 * No cmocka assertion runs on a task: tasks record what they saw in atomics
 * and the test thread checks it. Every task that waits does so with a
 * safety context, and every group_wait / group_free / blocking group_go is
 * run on a helper task and awaited with a bound, so a bug fails a test
 * instead of hanging the program.
 */
#include "test-common.h"

#include <sched.h>
#include <stdlib.h>

/* Task errors: any non-zero int is an error (a positive one too). */
#define ERR_A (-1001)
#define ERR_B (-1002)
#define ERR_C 7

/* ------------------------------------------------------------------------ */
/* helpers */

/* A task that returns (int)(intptr_t)arg. */
static int ret_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    return (int)(intptr_t)arg;
}

/* A task that counts its runs in *(atomic_int *)arg. */
static int count_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

/* Tasks that wait for a gate channel to close (bounded by a safety ctx). */
typedef struct gate {
    gocc_chan_t *ch;
    gocc_ctx_t *safety;
    atomic_int entered;  /* tasks that started */
    atomic_int released; /* tasks whose recv returned GOCC_ECLOSED */
    atomic_int bad;      /* tasks whose recv returned anything else */
} gate_t;

static void gate_init(gate_t *g) {
    g->ch = chan_new(0, 0);
    g->safety = safety_ctx();
    atomic_init(&g->entered, 0);
    atomic_init(&g->released, 0);
    atomic_init(&g->bad, 0);
}

static void gate_open(gate_t *g) { assert_int_equal(gocc_chan_close(g->ch), 0); }

static void gate_destroy(gate_t *g) {
    gocc_chan_release(g->ch);
    ctx_done_release(g->safety);
}

static int gate_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gate_t *g = arg;
    atomic_fetch_add(&g->entered, 1);
    if (gocc_chan_recv(g->ch, NULL, g->safety) == GOCC_ECLOSED)
        atomic_fetch_add(&g->released, 1);
    else
        atomic_fetch_add(&g->bad, 1);
    return 0;
}

/* Block on ctx's done channel, bounded by safety: GOCC_ECLOSED when ctx
 * became done. */
static int wait_ctx_done(gocc_ctx_t *ctx, gocc_ctx_t *safety) {
    gocc_chan_t *d = gocc_ctx_done(ctx);
    if (d == NULL) return GOCC_EINVAL;
    return gocc_chan_recv(d, NULL, safety);
}

/* True if ctx's done channel is closed right now. */
static bool ctx_done_closed(gocc_ctx_t *ctx) {
    gocc_chan_t *d = gocc_ctx_done(ctx);
    return d != NULL && gocc_chan_try_recv(d, NULL) == GOCC_ECLOSED;
}

/* Group calls that may block, run through async_call. */
typedef struct group_call {
    gocc_group_t *g;
    gocc_fn fn;
    void *arg;
    atomic_int *watch; /* free: *watch is read right after free returns */
    int watch_at_return;
} group_call;

static int call_group_go(void *p) {
    group_call *c = p;
    return gocc_group_go(c->g, c->fn, c->arg);
}

static int call_group_wait(void *p) { return gocc_group_wait(((group_call *)p)->g); }

static int call_group_free(void *p) {
    group_call *c = p;
    gocc_group_free(c->g);
    if (c->watch != NULL) c->watch_at_return = atomic_load(c->watch);
    return 0;
}

/* gocc_group_wait, failing the test if it does not return within SAFETY_NS. */
static int group_wait(gocc_group_t *g) {
    group_call c = {.g = g};
    async_call a;
    async_start(&a, call_group_wait, &c);
    return ASYNC_RESULT(&a, SAFETY_NS);
}

/* gocc_group_free, bounded the same way. */
static void group_free(gocc_group_t *g) {
    group_call c = {.g = g};
    async_call a;
    async_start(&a, call_group_free, &c);
    ASYNC_RESULT(&a, SAFETY_NS);
}

static gocc_group_t *group_new(gocc_ctx_t *parent) {
    gocc_group_t *g = gocc_group_new(parent);
    assert_non_null(g);
    assert_non_null(gocc_group_ctx(g));
    return g;
}

/* Record the high-water mark of *active in *hwm. */
static int enter_active(atomic_int *active, atomic_int *hwm) {
    int n = atomic_fetch_add(active, 1) + 1;
    int h = atomic_load(hwm);
    while (n > h && !atomic_compare_exchange_weak(hwm, &h, n)) {
    }
    return n;
}

/* ------------------------------------------------------------------------ */

/* from errgroup_test.go TestZeroGroup: a group used without a context;
 * after each go, wait returns the first error so far (the group is reused
 * across waits, Clarification "Groups"). */
static void test_group_zero_group(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const int cases[][3] = {
        {0, 0, 0}, /* the count below says how many are used */
        {0, 0, 0}, {ERR_A, 0, 0}, {ERR_A, 0, 0}, {ERR_A, 0, ERR_B},
    };
    static const int lens[] = {0, 1, 1, 2, 3};
    for (size_t tc = 0; tc < sizeof lens / sizeof lens[0]; tc++) {
        gocc_group_t *g = group_new(NULL);
        int first = 0;
        for (int i = 0; i < lens[tc]; i++) {
            int err = cases[tc][i];
            assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)err), 0);
            if (first == 0 && err != 0) first = err;
            int got = group_wait(g);
            if (got != first)
                fail_msg("case %zu, after %d go: wait = %d, want %d", tc, i + 1, got, first);
        }
        group_free(g);
    }
    ASSERT_NO_TASKS(start);
}

/* from errgroup_test.go TestWithContext: wait returns the first error, and
 * the group's context is done after wait returns, error or not; its cause is
 * the first error, else its err (gocc.h: "cancelled with the first task
 * error as its cause, and when gocc_group_wait returns"). */
static void test_group_with_context(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const struct {
        int n;
        int errs[2];
        int want;
    } cases[] = {
        {0, {0, 0}, 0},         {1, {0, 0}, 0},         {1, {ERR_A, 0}, ERR_A},
        {2, {ERR_A, 0}, ERR_A}, {1, {ERR_C, 0}, ERR_C},
    };
    for (size_t tc = 0; tc < sizeof cases / sizeof cases[0]; tc++) {
        gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
        assert_non_null(parent);
        gocc_group_t *g = group_new(parent);
        gocc_ctx_t *gctx = gocc_group_ctx(g);
        for (int i = 0; i < cases[tc].n; i++)
            assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)cases[tc].errs[i]), 0);
        int got = group_wait(g);
        if (got != cases[tc].want)
            fail_msg("case %zu: wait = %d, want %d", tc, got, cases[tc].want);
        /* ctx.Done() was closed */
        assert_true(ctx_done_closed(gctx));
        assert_int_equal(gocc_ctx_err(gctx), GOCC_ECANCELED);
        assert_int_equal(gocc_ctx_cause(gctx),
                         cases[tc].want != 0 ? cases[tc].want : GOCC_ECANCELED);
        /* the parent is not cancelled by its group */
        assert_int_equal(gocc_ctx_err(parent), 0);
        group_free(g);
        ctx_done_release(parent);
    }
    ASSERT_NO_TASKS(start);
}

/* Tasks that succeed do not cancel the group context; wait does (err and
 * cause GOCC_ECANCELED), also for a group that never had a task. */
typedef struct ok_state {
    atomic_int finished;
    atomic_int saw_err; /* tasks that saw their ctx already done */
} ok_state;

static int ok_task(gocc_ctx_t *ctx, void *arg) {
    ok_state *s = arg;
    if (gocc_ctx_err(ctx) != 0) atomic_fetch_add(&s->saw_err, 1);
    atomic_fetch_add(&s->finished, 1);
    return 0;
}

static void test_group_wait_cancels_without_error(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    /* no task at all */
    gocc_group_t *g = group_new(NULL);
    assert_int_equal(gocc_ctx_err(gocc_group_ctx(g)), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_ctx_err(gocc_group_ctx(g)), GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(gocc_group_ctx(g)), GOCC_ECANCELED);
    assert_true(ctx_done_closed(gocc_group_ctx(g)));
    group_free(g);

    /* tasks that all return 0 */
    ok_state s = {0};
    const int n = 32;
    g = group_new(NULL);
    gocc_ctx_t *gctx = gocc_group_ctx(g);
    for (int i = 0; i < n; i++) assert_int_equal(gocc_group_go(g, ok_task, &s), 0);
    assert_true(wait_count(&s.finished, n, SAFETY_NS));
    /* every task has ended, its 0 seen by the group: nothing cancelled the ctx */
    assert_true(tasks_down_to(start));
    assert_int_equal(atomic_load(&s.saw_err), 0);
    assert_int_equal(gocc_ctx_err(gctx), 0);
    assert_false(ctx_done_closed(gctx));
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_ctx_err(gctx), GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(gctx), GOCC_ECANCELED);
    assert_true(ctx_done_closed(gctx));
    group_free(g);
    ASSERT_NO_TASKS(start);
}

/* First error wins: NF tasks fail with different codes. The designated
 * first one fails when a gate opens; the others wait until they see the
 * group context cancelled and only then fail, so "first" is deterministic.
 * Each of the others must see err GOCC_ECANCELED and cause == the first
 * error; wait returns the first error. */
#define NF 8
typedef struct fe_state {
    gocc_ctx_t *gctx;
    gocc_ctx_t *safety;
    gocc_chan_t *gate;
    atomic_int started;
    atomic_int same_ctx; /* tasks whose ctx was the group's */
    atomic_int saw_done; /* others that saw the group ctx done */
    atomic_int bad;
    atomic_int err[NF];
    atomic_int cause[NF];
} fe_state;

typedef struct fe_task {
    fe_state *s;
    int idx;
    int code;
} fe_task;

static int fe_first(gocc_ctx_t *ctx, void *arg) {
    fe_task *t = arg;
    fe_state *s = t->s;
    if (ctx == s->gctx) atomic_fetch_add(&s->same_ctx, 1);
    atomic_fetch_add(&s->started, 1);
    if (gocc_chan_recv(s->gate, NULL, s->safety) != GOCC_ECLOSED) atomic_fetch_add(&s->bad, 1);
    return t->code;
}

static int fe_other(gocc_ctx_t *ctx, void *arg) {
    fe_task *t = arg;
    fe_state *s = t->s;
    if (ctx == s->gctx) atomic_fetch_add(&s->same_ctx, 1);
    atomic_fetch_add(&s->started, 1);
    if (wait_ctx_done(ctx, s->safety) == GOCC_ECLOSED) atomic_fetch_add(&s->saw_done, 1);
    atomic_store(&s->err[t->idx], gocc_ctx_err(ctx));
    atomic_store(&s->cause[t->idx], gocc_ctx_cause(ctx));
    return t->code;
}

static void test_group_first_error_wins(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    for (int round = 0; round < SCALE(20); round++) {
        fe_state s;
        memset(&s, 0, sizeof s);
        s.safety = safety_ctx();
        s.gate = chan_new(0, 0);
        gocc_group_t *g = group_new(NULL);
        s.gctx = gocc_group_ctx(g);
        fe_task t[NF];
        /* the first error is a different task and code each round */
        int first = round % NF;
        for (int i = 0; i < NF; i++) {
            t[i] = (fe_task){.s = &s, .idx = i, .code = -2000 - i - NF * round};
            if (i != first) assert_int_equal(gocc_group_go(g, fe_other, &t[i]), 0);
        }
        assert_int_equal(gocc_group_go(g, fe_first, &t[first]), 0);
        assert_true(wait_count(&s.started, NF, SAFETY_NS));
        /* nobody has failed yet */
        assert_int_equal(gocc_ctx_err(s.gctx), 0);
        assert_int_equal(gocc_chan_close(s.gate), 0);
        int got = group_wait(g);
        if (got != t[first].code)
            fail_msg("round %d: wait = %d, want %d", round, got, t[first].code);
        assert_int_equal(atomic_load(&s.bad), 0);
        assert_int_equal(atomic_load(&s.same_ctx), NF);
        assert_int_equal(atomic_load(&s.saw_done), NF - 1);
        for (int i = 0; i < NF; i++) {
            if (i == first) continue;
            assert_int_equal(atomic_load(&s.err[i]), GOCC_ECANCELED);
            assert_int_equal(atomic_load(&s.cause[i]), t[first].code);
        }
        assert_int_equal(gocc_ctx_err(s.gctx), GOCC_ECANCELED);
        assert_int_equal(gocc_ctx_cause(s.gctx), t[first].code);
        group_free(g);
        gocc_chan_release(s.gate);
        ctx_done_release(s.safety);
    }
    ASSERT_NO_TASKS(start);
}

/* Many tasks fail at once (released together by a gate): whichever error
 * wait returns is one of theirs, and it is the group context's cause: the
 * error that cancelled the context and the one wait returns are the same. */
#define NR 6
typedef struct race_task {
    gocc_chan_t *gate;
    gocc_ctx_t *safety;
    int code;
} race_task;

static int race_fail(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    race_task *t = arg;
    gocc_chan_recv(t->gate, NULL, t->safety);
    return t->code;
}

static void test_group_errors_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    for (int round = 0; round < SCALE(300); round++) {
        gocc_chan_t *gate = chan_new(0, 0);
        gocc_group_t *g = group_new(NULL);
        race_task t[NR];
        for (int i = 0; i < NR; i++) {
            t[i] = (race_task){.gate = gate, .safety = safety, .code = -3000 - i};
            assert_int_equal(gocc_group_go(g, race_fail, &t[i]), 0);
        }
        assert_int_equal(gocc_chan_close(gate), 0);
        int got = group_wait(g);
        if (got > -3000 || got <= -3000 - NR) fail_msg("round %d: wait = %d", round, got);
        int cause = gocc_ctx_cause(gocc_group_ctx(g));
        if (cause != got) fail_msg("round %d: wait = %d but ctx cause = %d", round, got, cause);
        assert_int_equal(gocc_ctx_err(gocc_group_ctx(g)), GOCC_ECANCELED);
        group_free(g);
        gocc_chan_release(gate);
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Several threads waiting on one group at once all return when the last
 * task ends, each with the group's first error. */
static void test_group_concurrent_waits(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gate_t gt;
    gate_init(&gt);
    gocc_group_t *g = group_new(NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(gocc_group_go(g, gate_task, &gt), 0);
    assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)ERR_A), 0);
    assert_true(wait_count(&gt.entered, 4, SAFETY_NS));
    enum { NWAIT = 6 };
    group_call c = {.g = g};
    async_call a[NWAIT];
    for (int i = 0; i < NWAIT; i++) async_start_blocked(&a[i], call_group_wait, &c, "group wait");
    gate_open(&gt);
    for (int i = 0; i < NWAIT; i++) assert_int_equal(ASYNC_RESULT(&a[i], SAFETY_NS), ERR_A);
    assert_int_equal(atomic_load(&gt.released), 4);
    group_free(g);
    gate_destroy(&gt);
    ASSERT_NO_TASKS(start);
}

/* from errgroup_test.go TestGoLimit: 1025 tasks through limit 10; a task
 * that sees more than 10 running returns an error. */
typedef struct lim_state {
    int limit;
    atomic_int active;
    atomic_int hwm;
    atomic_int over;
    atomic_int *ran; /* per task: how many times it ran */
} lim_state;

typedef struct lim_task {
    lim_state *s;
    int idx;
} lim_task;

static int go_limit_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    lim_state *s = arg;
    int n = enter_active(&s->active, &s->hwm);
    if (n > s->limit) {
        atomic_fetch_add(&s->over, 1);
        atomic_fetch_sub(&s->active, 1);
        return ERR_A; /* "saw %d active goroutines; want <= %d" */
    }
    sleep_ns(GOCC_MICROSECOND); /* give other tasks a chance to increment active */
    atomic_fetch_sub(&s->active, 1);
    return 0;
}

static void test_group_go_limit(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    lim_state s;
    memset(&s, 0, sizeof s);
    s.limit = 10;
    gocc_group_t *g = group_new(NULL);
    assert_int_equal(gocc_group_set_limit(g, s.limit), 0);
    for (int i = 0; i <= 1 << 10; i++) assert_int_equal(gocc_group_go(g, go_limit_task, &s), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&s.over), 0);
    CHECK_GE(s.limit, atomic_load(&s.hwm));
    group_free(g);
    ASSERT_NO_TASKS(start);
}

/* 10,000 tasks (SCALE) through a group with limit 8: the limit is never
 * exceeded (high-water mark of running tasks) and every task runs exactly
 * once. */
static int many_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    lim_task *t = arg;
    lim_state *s = t->s;
    if (enter_active(&s->active, &s->hwm) > s->limit) atomic_fetch_add(&s->over, 1);
    atomic_fetch_add(&s->ran[t->idx], 1);
    if (t->idx % 4 == 0) sched_yield();
    atomic_fetch_sub(&s->active, 1);
    return 0;
}

static void test_group_limit_10000(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int n = SCALE(10000);
    lim_state s;
    memset(&s, 0, sizeof s);
    s.limit = 8;
    s.ran = calloc((size_t)n, sizeof *s.ran);
    lim_task *t = calloc((size_t)n, sizeof *t);
    assert_non_null(s.ran);
    assert_non_null(t);
    gocc_group_t *g = group_new(NULL);
    assert_int_equal(gocc_group_set_limit(g, s.limit), 0);
    for (int i = 0; i < n; i++) {
        t[i] = (lim_task){.s = &s, .idx = i};
        int rc = gocc_group_go(g, many_task, &t[i]);
        if (rc != 0) fail_msg("go #%d: %d", i, rc);
    }
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&s.over), 0);
    CHECK_GE(s.limit, atomic_load(&s.hwm));
    CHECK_GE(atomic_load(&s.hwm), 1);
    assert_int_equal(atomic_load(&s.active), 0);
    for (int i = 0; i < n; i++)
        if (atomic_load(&s.ran[i]) != 1)
            fail_msg("task %d ran %d times", i, atomic_load(&s.ran[i]));
    group_free(g);
    free(t);
    free(s.ran);
    ASSERT_NO_TASKS(start);
}

/* from errgroup_test.go TestTryGo: try_go succeeds up to the limit, then
 * GOCC_EAGAIN; succeeds again after wait; set_limit(1) and set_limit(0)
 * (admits nothing). */
typedef struct trygo_state {
    gocc_chan_t *ch;
    gocc_ctx_t *safety;
} trygo_state;

static int trygo_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    trygo_state *s = arg;
    return gocc_chan_send(s->ch, NULL, s->safety) == 0 ? 0 : ERR_A;
}

static void drain(trygo_state *s, int n) {
    for (int i = 0; i < n; i++) assert_int_equal(gocc_chan_recv(s->ch, NULL, s->safety), 0);
}

static void test_group_try_go(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    trygo_state s = {.ch = chan_new(0, 0), .safety = safety_ctx()};
    gocc_group_t *g = group_new(NULL);
    const int n = 42;
    assert_int_equal(gocc_group_set_limit(g, n), 0);
    for (int i = 0; i < n; i++) {
        int rc = gocc_group_try_go(g, trygo_fn, &s);
        if (rc != 0) fail_msg("TryGo should succeed but got %d at %d-th call", rc, i);
    }
    assert_int_equal(gocc_group_try_go(g, trygo_fn, &s), GOCC_EAGAIN);
    drain(&s, n);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_group_try_go(g, trygo_fn, &s), 0);
    drain(&s, 1);
    assert_int_equal(group_wait(g), 0);

    /* Switch limit. */
    assert_int_equal(gocc_group_set_limit(g, 1), 0);
    assert_int_equal(gocc_group_try_go(g, trygo_fn, &s), 0);
    assert_int_equal(gocc_group_try_go(g, trygo_fn, &s), GOCC_EAGAIN);
    drain(&s, 1);
    assert_int_equal(group_wait(g), 0);

    /* Block all calls. (This group's parent can never be done, so go would
     * refuse with GOCC_EINVAL rather than block: accept either failure.) */
    assert_int_equal(gocc_group_set_limit(g, 0), 0);
    for (int i = 0; i < 1 << 10; i++) {
        int rc = gocc_group_try_go(g, trygo_fn, &s);
        if (rc != GOCC_EAGAIN && rc != GOCC_EINVAL) fail_msg("TryGo should fail but got %d", rc);
    }
    assert_int_equal(group_wait(g), 0);
    /* nothing was left waiting to send */
    assert_int_equal(gocc_chan_try_recv(s.ch, NULL), GOCC_EAGAIN);
    group_free(g);
    gocc_chan_release(s.ch);
    ctx_done_release(s.safety);
    ASSERT_NO_TASKS(start);
}

/* set_limit while tasks are active is GOCC_EINVAL and changes nothing (the
 * old limit still holds); after wait it works again; n < 0 is no limit. */
static void test_group_set_limit_active(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gate_t gt;
    gate_init(&gt);
    gocc_group_t *g = group_new(NULL);
    assert_int_equal(gocc_group_set_limit(g, 2), 0);
    assert_int_equal(gocc_group_go(g, gate_task, &gt), 0);
    assert_int_equal(gocc_group_set_limit(g, 5), GOCC_EINVAL);
    assert_int_equal(gocc_group_set_limit(g, -1), GOCC_EINVAL);
    assert_int_equal(gocc_group_set_limit(g, 0), GOCC_EINVAL);
    /* still limit 2 */
    assert_int_equal(gocc_group_try_go(g, gate_task, &gt), 0);
    assert_int_equal(gocc_group_try_go(g, gate_task, &gt), GOCC_EAGAIN);
    gate_open(&gt);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&gt.released), 2);
    assert_int_equal(atomic_load(&gt.bad), 0);

    /* no tasks active: set_limit works; a negative limit is no limit */
    assert_int_equal(gocc_group_set_limit(g, -5), 0);
    gate_t gt2;
    gate_init(&gt2);
    const int n = 20;
    for (int i = 0; i < n; i++) assert_int_equal(gocc_group_try_go(g, gate_task, &gt2), 0);
    assert_true(wait_count(&gt2.entered, n, SAFETY_NS));
    gate_open(&gt2);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&gt2.released), n);
    assert_int_equal(gocc_group_set_limit(g, 3), 0);
    group_free(g);
    gate_destroy(&gt);
    gate_destroy(&gt2);
    ASSERT_NO_TASKS(start);
}

/* go blocks while the limit is reached: until a slot frees (then the task
 * runs), or until the PARENT context is done (then it returns the parent's
 * error and the task never runs). */
static void test_group_go_blocks_at_limit(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_group_t *g = group_new(parent);
    assert_int_equal(gocc_group_set_limit(g, 1), 0);
    atomic_int ran = 0;
    gate_t gt;
    gate_init(&gt);
    assert_int_equal(gocc_group_go(g, gate_task, &gt), 0);
    assert_true(wait_count(&gt.entered, 1, SAFETY_NS));

    group_call c = {.g = g, .fn = count_task, .arg = &ran};
    async_call a;
    async_start_blocked(&a, call_group_go, &c, "group go");
    assert_false(async_done(&a)); /* blocked at the limit */
    assert_int_equal(atomic_load(&ran), 0);
    gate_open(&gt); /* the slot frees: go returns 0 and the task runs */
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&ran), 1);

    /* blocked again; this time the parent is cancelled */
    gate_t gt2;
    gate_init(&gt2);
    assert_int_equal(gocc_group_go(g, gate_task, &gt2), 0);
    assert_true(wait_count(&gt2.entered, 1, SAFETY_NS));
    async_start_blocked(&a, call_group_go, &c, "group go");
    assert_false(async_done(&a));
    gocc_ctx_cancel(parent);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_ECANCELED);
    gate_open(&gt2);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&ran), 1); /* the refused task never ran */
    assert_int_equal(atomic_load(&gt2.released), 1);
    group_free(g);
    gate_destroy(&gt);
    gate_destroy(&gt2);
    ctx_done_release(parent);
    ASSERT_NO_TASKS(start);
}

/* Clarification "Groups": set_limit(g, 0) admits nothing: try_go fails, go
 * blocks until the parent context ends and returns its error; with a parent
 * that can never be done (NULL, background, without_cancel) go returns
 * GOCC_EINVAL at once instead of hanging. */
static void test_group_limit_zero(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    atomic_int ran = 0;
    async_call a;

    /* parent with a deadline: go returns GOCC_EDEADLINE once it passed */
    gocc_ctx_t *parent = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    assert_non_null(parent);
    gocc_group_t *g = group_new(parent);
    assert_int_equal(gocc_group_set_limit(g, 0), 0);
    assert_int_equal(gocc_group_try_go(g, count_task, &ran), GOCC_EAGAIN);
    group_call c = {.g = g, .fn = count_task, .arg = &ran};
    async_start(&a, call_group_go, &c);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_err(parent), GOCC_EDEADLINE); /* not before */
    assert_int_equal(group_wait(g), 0);
    group_free(g);
    ctx_done_release(parent);

    /* parent cancelled while go is blocked */
    parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    g = group_new(parent);
    assert_int_equal(gocc_group_set_limit(g, 0), 0);
    c.g = g;
    async_start_blocked(&a, call_group_go, &c, "group go");
    assert_false(async_done(&a));
    assert_int_equal(gocc_group_try_go(g, count_task, &ran), GOCC_EAGAIN);
    gocc_ctx_cancel(parent);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_ECANCELED);
    assert_int_equal(group_wait(g), 0);
    group_free(g);
    ctx_done_release(parent);

    /* parents that can never be done */
    gocc_ctx_t *wc = gocc_ctx_without_cancel(NULL);
    assert_non_null(wc);
    gocc_ctx_t *never[3] = {NULL, gocc_ctx_background(), wc};
    for (int i = 0; i < 3; i++) {
        g = group_new(never[i]);
        assert_int_equal(gocc_group_set_limit(g, 0), 0);
        /* try_go fails; where go would refuse rather than block, either
         * "would block" or "invalid" is a fair answer */
        int trc = gocc_group_try_go(g, count_task, &ran);
        if (trc != GOCC_EAGAIN && trc != GOCC_EINVAL)
            fail_msg("parent #%d: try_go = %d, want GOCC_EAGAIN or GOCC_EINVAL", i, trc);
        c.g = g;
        async_start(&a, call_group_go, &c);
        int rc = ASYNC_RESULT(&a, SAFETY_NS);
        if (rc != GOCC_EINVAL) fail_msg("parent #%d: go = %d, want GOCC_EINVAL", i, rc);
        assert_int_equal(group_wait(g), 0);
        group_free(g);
    }
    gocc_ctx_release(wc);
    assert_int_equal(atomic_load(&ran), 0);
    ASSERT_NO_TASKS(start);
}

/* A group whose parent is cancelled: the running tasks see the group context
 * cancelled with the parent's error and cause, the group context carries the
 * parent's values, go / try_go with a free slot still start their task, which
 * sees the done context (as errgroup.Go does), and wait returns 0 (no task
 * failed). A parent already past its deadline: the same with
 * GOCC_EDEADLINE. */
#define NP 6
static const char pc_key = 'k';
typedef struct pc_state {
    gocc_ctx_t *safety;
    void *want_value;
    atomic_int started;
    atomic_int saw_value;
    atomic_int saw_done;
    atomic_int err[NP];
    atomic_int cause[NP];
    atomic_int next;
} pc_state;

static int pc_task(gocc_ctx_t *ctx, void *arg) {
    pc_state *s = arg;
    int i = atomic_fetch_add(&s->next, 1);
    if (gocc_ctx_value(ctx, &pc_key) == s->want_value) atomic_fetch_add(&s->saw_value, 1);
    atomic_fetch_add(&s->started, 1);
    int r = wait_ctx_done(ctx, s->safety);
    if (i < NP) { /* before saw_done: the test reads them once it counts NP */
        atomic_store(&s->err[i], gocc_ctx_err(ctx));
        atomic_store(&s->cause[i], gocc_ctx_cause(ctx));
    }
    if (r == GOCC_ECLOSED) atomic_fetch_add(&s->saw_done, 1);
    return 0;
}

static void test_group_parent_cancelled(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static int value = 5;
    pc_state s;
    memset(&s, 0, sizeof s);
    s.safety = safety_ctx();
    s.want_value = &value;
    gocc_ctx_t *pc = gocc_ctx_with_cancel(NULL);
    assert_non_null(pc);
    gocc_ctx_t *pv = gocc_ctx_with_value(pc, &pc_key, &value);
    assert_non_null(pv);
    gocc_group_t *g = group_new(pv);
    gocc_ctx_t *gctx = gocc_group_ctx(g);
    assert_ptr_equal(gocc_ctx_value(gctx, &pc_key), &value);
    for (int i = 0; i < NP; i++) assert_int_equal(gocc_group_go(g, pc_task, &s), 0);
    assert_true(wait_count(&s.started, NP, SAFETY_NS));
    assert_int_equal(gocc_ctx_err(gctx), 0);
    gocc_ctx_cancel_cause(pc, 4242);
    assert_true(wait_count(&s.saw_done, NP, SAFETY_NS));
    assert_int_equal(atomic_load(&s.saw_value), NP);
    for (int i = 0; i < NP; i++) {
        assert_int_equal(atomic_load(&s.err[i]), GOCC_ECANCELED);
        assert_int_equal(atomic_load(&s.cause[i]), 4242);
    }
    atomic_int ran = 0;
    assert_int_equal(gocc_group_go(g, count_task, &ran), 0);
    assert_int_equal(gocc_group_try_go(g, count_task, &ran), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_ctx_cause(gctx), 4242);
    assert_int_equal(gocc_group_go(g, count_task, &ran), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&ran), 3);
    group_free(g);
    gocc_ctx_release(pv);
    ctx_done_release(pc);

    /* a parent already past its deadline */
    gocc_ctx_t *expired = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_SECOND);
    assert_non_null(expired);
    g = group_new(expired);
    assert_int_equal(gocc_ctx_err(gocc_group_ctx(g)), GOCC_EDEADLINE);
    assert_int_equal(gocc_group_go(g, pc_task, &s), 0);
    assert_int_equal(gocc_group_try_go(g, pc_task, &s), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_group_set_limit(g, 2), 0);
    assert_int_equal(gocc_group_go(g, pc_task, &s), 0);
    assert_int_equal(group_wait(g), 0);
    assert_true(wait_count(&s.saw_done, NP + 3, SAFETY_NS));
    assert_int_equal(atomic_load(&s.saw_value), NP); /* no value on this parent */
    group_free(g);
    ctx_done_release(expired);
    assert_int_equal(atomic_load(&ran), 3);
    ctx_done_release(s.safety);
    ASSERT_NO_TASKS(start);
}

/* Regression: go and try_go returned the parent's error whenever the parent
 * was done, so no task started. Go's errgroup.Go starts the task whenever a
 * slot is free and lets it see the done context; only a go that would have
 * to wait for a slot returns the parent's error (at once: a context already
 * done wins over the wait), and try_go at the limit says GOCC_EAGAIN. */
typedef struct dp_state {
    atomic_int ran;
    atomic_int saw_err; /* tasks that saw their context done, with want */
    atomic_int bad;     /* tasks that saw anything else */
    int want;
    gate_t *gate; /* not NULL: then wait for it (holding the slot) */
} dp_state;

static int dp_task(gocc_ctx_t *ctx, void *arg) {
    dp_state *s = arg;
    if (gocc_ctx_err(ctx) == s->want && ctx_done_closed(ctx))
        atomic_fetch_add(&s->saw_err, 1);
    else
        atomic_fetch_add(&s->bad, 1);
    atomic_fetch_add(&s->ran, 1);
    if (s->gate != NULL) gate_task(ctx, s->gate);
    return 0;
}

static void test_group_go_under_done_parent(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    async_call a;

    /* Born done (the parent was cancelled first), no limit: every go and
     * try_go starts its task, which sees the parent's error. */
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_ctx_cancel(parent);
    gocc_group_t *g = group_new(parent);
    dp_state s = {.want = GOCC_ECANCELED};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(gocc_group_go(g, dp_task, &s), 0);
        assert_int_equal(gocc_group_try_go(g, dp_task, &s), 0);
    }
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&s.ran), 8);
    assert_int_equal(atomic_load(&s.saw_err), 8);
    group_free(g);
    ctx_done_release(parent);

    /* Cancelled while the group runs, with a limit of 2: the free slot is
     * used; at the limit, go returns the parent's error without waiting and
     * try_go GOCC_EAGAIN, and neither task runs. */
    parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    g = group_new(parent);
    assert_int_equal(gocc_group_set_limit(g, 2), 0);
    gate_t gt;
    gate_init(&gt);
    assert_int_equal(gocc_group_go(g, gate_task, &gt), 0);
    gocc_ctx_cancel(parent);
    dp_state s2 = {.want = GOCC_ECANCELED, .gate = &gt};
    assert_int_equal(gocc_group_go(g, dp_task, &s2), 0); /* the second slot */
    assert_true(wait_count(&gt.entered, 2, SAFETY_NS));
    assert_int_equal(atomic_load(&s2.saw_err), 1);
    s2.gate = NULL; /* the task that holds the slot read it already */
    group_call c = {.g = g, .fn = dp_task, .arg = &s2};
    async_start(&a, call_group_go, &c);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_ECANCELED);
    assert_int_equal(gocc_group_try_go(g, dp_task, &s2), GOCC_EAGAIN);
    gate_open(&gt);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&gt.released), 2);
    assert_int_equal(atomic_load(&s2.ran), 1); /* the refused ones never ran */
    /* Slots free again: tasks start, cancelled. */
    assert_int_equal(gocc_group_go(g, dp_task, &s2), 0);
    assert_int_equal(gocc_group_try_go(g, dp_task, &s2), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&s2.saw_err), 3);
    group_free(g);
    gate_destroy(&gt);
    ctx_done_release(parent);

    /* A parent past its deadline: the task sees GOCC_EDEADLINE; limit 0 (no
     * slot ever): go returns GOCC_EDEADLINE at once, try_go GOCC_EAGAIN. */
    parent = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_SECOND);
    assert_non_null(parent);
    g = group_new(parent);
    dp_state s3 = {.want = GOCC_EDEADLINE};
    assert_int_equal(gocc_group_go(g, dp_task, &s3), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_group_set_limit(g, 0), 0);
    c = (group_call){.g = g, .fn = dp_task, .arg = &s3};
    async_start(&a, call_group_go, &c);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_EDEADLINE);
    assert_int_equal(gocc_group_try_go(g, dp_task, &s3), GOCC_EAGAIN);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(atomic_load(&s3.ran), 1);
    assert_int_equal(atomic_load(&s3.saw_err), 1);
    group_free(g);
    ctx_done_release(parent);

    assert_int_equal(atomic_load(&s.bad) + atomic_load(&s2.bad) + atomic_load(&s3.bad), 0);
    ASSERT_NO_TASKS(start);
}

/* Clarification "Groups": a group stays usable after wait. New tasks run
 * (go returns 0) with the cancelled group context, also after a task error
 * cancelled it before any wait; a later wait returns the first error of the
 * group's whole life. */
typedef struct probe_state {
    gocc_ctx_t *gctx;
    atomic_int ran;
    atomic_int err;
    atomic_int same_ctx;
} probe_state;

static int probe_task(gocc_ctx_t *ctx, void *arg) {
    probe_state *p = arg;
    atomic_store(&p->err, gocc_ctx_err(ctx));
    if (ctx == p->gctx) atomic_fetch_add(&p->same_ctx, 1);
    atomic_fetch_add(&p->ran, 1);
    return ERR_B;
}

static void test_group_usable_after_wait(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    /* an error cancels the ctx; go still starts tasks; wait: the first */
    gocc_group_t *g = group_new(NULL);
    probe_state p;
    memset(&p, 0, sizeof p);
    p.gctx = gocc_group_ctx(g);
    assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)ERR_A), 0);
    int64_t end = gocc_now() + SAFETY_NS;
    while (gocc_ctx_err(p.gctx) == 0 && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    assert_int_equal(gocc_ctx_err(p.gctx), GOCC_ECANCELED);
    assert_int_equal(gocc_group_go(g, probe_task, &p), 0);
    assert_int_equal(group_wait(g), ERR_A);
    assert_int_equal(atomic_load(&p.ran), 1);
    assert_int_equal(atomic_load(&p.err), GOCC_ECANCELED);
    /* after wait: tasks still start and run with the cancelled ctx */
    assert_int_equal(gocc_group_go(g, probe_task, &p), 0);
    assert_int_equal(gocc_group_try_go(g, probe_task, &p), 0);
    assert_int_equal(group_wait(g), ERR_A);
    assert_int_equal(atomic_load(&p.ran), 3);
    assert_int_equal(atomic_load(&p.same_ctx), 3);
    assert_int_equal(atomic_load(&p.err), GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(p.gctx), ERR_A);
    group_free(g);

    /* a clean first wait; the first error comes later and is the answer */
    g = group_new(NULL);
    memset(&p, 0, sizeof p);
    p.gctx = gocc_group_ctx(g);
    assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)0), 0);
    assert_int_equal(group_wait(g), 0);
    assert_int_equal(gocc_group_go(g, probe_task, &p), 0); /* returns ERR_B */
    assert_int_equal(group_wait(g), ERR_B);
    assert_int_equal(atomic_load(&p.err), GOCC_ECANCELED);
    assert_int_equal(gocc_group_go(g, ret_task, (void *)(intptr_t)ERR_C), 0);
    assert_int_equal(group_wait(g), ERR_B);
    assert_int_equal(group_wait(g), ERR_B);
    group_free(g);
    ASSERT_NO_TASKS(start);
}

/* gocc_group_free with running tasks waits for them: it returns only after
 * every task has finished (checked from the thread that freed, and by ASan
 * for use after free). Freeing without wait right after go: every task has
 * run when free returns. */
typedef struct fw_state {
    gate_t gate;
    atomic_int finished;
} fw_state;

static int fw_task(gocc_ctx_t *ctx, void *arg) {
    fw_state *s = arg;
    gate_task(ctx, &s->gate);
    sleep_ns(GOCC_MILLISECOND);
    /* the group context is still valid while the task runs */
    (void)gocc_ctx_err(ctx);
    atomic_fetch_add(&s->finished, 1);
    return ERR_A;
}

static void test_group_free_waits(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    fw_state s;
    memset(&s, 0, sizeof s);
    gate_init(&s.gate);
    const int n = 8;
    gocc_group_t *g = group_new(NULL);
    for (int i = 0; i < n; i++) assert_int_equal(gocc_group_go(g, fw_task, &s), 0);
    assert_true(wait_count(&s.gate.entered, n, SAFETY_NS));
    group_call c = {.g = g, .watch = &s.finished};
    async_call a;
    async_start_blocked(&a, call_group_free, &c, NULL);
    assert_false(async_done(&a)); /* the tasks are still blocked */
    gate_open(&s.gate);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), 0);
    assert_int_equal(c.watch_at_return, n);
    assert_int_equal(atomic_load(&s.gate.bad), 0);
    gate_destroy(&s.gate);

    /* free at once after go, no wait, many times */
    for (int round = 0; round < SCALE(200); round++) {
        atomic_int ran = 0;
        g = group_new(NULL);
        if (round % 2) assert_int_equal(gocc_group_set_limit(g, 2), 0);
        for (int i = 0; i < 4; i++) assert_int_equal(gocc_group_go(g, count_task, &ran), 0);
        gocc_group_free(g);
        if (atomic_load(&ran) != 4)
            fail_msg("round %d: free returned with %d of 4 tasks run", round, atomic_load(&ran));
    }

    /* free of a group that never ran a task, and of one after wait */
    g = group_new(NULL);
    gocc_group_free(g);
    g = group_new(NULL);
    assert_int_equal(gocc_group_go(g, ret_task, NULL), 0);
    assert_int_equal(group_wait(g), 0);
    gocc_group_free(g);
    ASSERT_NO_TASKS(start);
}

/* Clarification "NULL": a NULL group is GOCC_EINVAL (NULL for the ctx, a
 * no-op for free); a NULL fn is GOCC_EINVAL and starts nothing. */
static void test_group_null(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    assert_null(gocc_group_ctx(NULL));
    assert_int_equal(gocc_group_set_limit(NULL, 1), GOCC_EINVAL);
    assert_int_equal(gocc_group_go(NULL, ret_task, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_group_try_go(NULL, ret_task, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_group_wait(NULL), GOCC_EINVAL);
    gocc_group_free(NULL);
    gocc_group_t *g = group_new(NULL);
    assert_int_equal(gocc_group_go(g, NULL, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_group_try_go(g, NULL, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_tasks_live(), start);
    /* nothing was counted as active: set_limit works, wait returns 0 */
    assert_int_equal(gocc_group_set_limit(g, 1), 0);
    assert_int_equal(group_wait(g), 0);
    group_free(g);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-group", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_group_zero_group),
        GOCC_TEST(test_group_with_context),
        GOCC_TEST(test_group_wait_cancels_without_error),
        GOCC_TEST(test_group_first_error_wins),
        GOCC_TEST(test_group_errors_race),
        GOCC_TEST(test_group_concurrent_waits),
        GOCC_TEST(test_group_go_limit),
        GOCC_TEST(test_group_limit_10000),
        GOCC_TEST(test_group_try_go),
        GOCC_TEST(test_group_set_limit_active),
        GOCC_TEST(test_group_go_blocks_at_limit),
        GOCC_TEST(test_group_limit_zero),
        GOCC_TEST(test_group_parent_cancelled),
        GOCC_TEST(test_group_go_under_done_parent),
        GOCC_TEST(test_group_usable_after_wait),
        GOCC_TEST(test_group_free_waits),
        GOCC_TEST(test_group_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
