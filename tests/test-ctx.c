/*
 * test-ctx.c - contexts: cancellation trees, deadlines, values, causes,
 * done channels, after_func, reference counting; NULL handling; stress.
 *
 * Ported from Go's src/context/context_test.go (Go 1.19; TestCause,
 * TestCauseRace, TestWithoutCancel and TestAfterFunc* from Go 1.21+). The
 * comment above each test names the Go test it comes from; the rest test
 * gocc.h's Contexts section and the rules at its top.
 *
 * Go's shortDuration / veryLongDuration are 1 ms / 1000 h; "quiescent" (how
 * long to wait for something that must happen) is 5 s here.
 *
 * No cmocka assertion runs on a task or helper thread: they record what they
 * saw and the test thread checks it.
 */
#include "test-common.h" /* first: it defines _GNU_SOURCE */

#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#define SHORT (1 * GOCC_MILLISECOND)
#define VERY_LONG (3600LL * 1000 * GOCC_SECOND)

/* True if ctx's done channel exists and is closed (a receive would not
 * block); "select { case <-c.Done(): default: }". */
static bool done_closed(gocc_ctx_t *c) {
    gocc_chan_t *d = gocc_ctx_done(c);
    return d != NULL && gocc_chan_try_recv(d, NULL) == GOCC_ECLOSED;
}

/* True if a receive on ctx's done channel would block (or there is none). */
static bool done_blocks(gocc_ctx_t *c) {
    gocc_chan_t *d = gocc_ctx_done(c);
    return d == NULL || gocc_chan_try_recv(d, NULL) == GOCC_EAGAIN;
}

#define ASSERT_DONE(c, want_err)                       \
    do {                                               \
        assert_int_equal(gocc_ctx_err(c), (want_err)); \
        assert_true(done_closed(c));                   \
    } while (0)
#define ASSERT_NOT_DONE(c)                    \
    do {                                      \
        assert_int_equal(gocc_ctx_err(c), 0); \
        assert_true(done_blocks(c));          \
    } while (0)

/* Block on ctx's done channel, at most timeout_ns (a guard context).
 * Returns GOCC_ECLOSED when ctx became done, else the guard's error. */
static int wait_done(gocc_ctx_t *c, int64_t timeout_ns) {
    gocc_chan_t *d = gocc_ctx_done(c);
    if (d == NULL) return GOCC_EINVAL;
    gocc_ctx_t *guard = gocc_ctx_with_timeout(NULL, timeout_ns);
    if (guard == NULL) return GOCC_ENOMEM;
    int rc = gocc_chan_recv(d, NULL, guard);
    gocc_ctx_cancel(guard);
    gocc_ctx_release(guard);
    return rc;
}

/* ------------------------------------------------------------------------ */

/* XTestBackground, XTestTODO */
static void test_background(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    gocc_ctx_t *bg = gocc_ctx_background();
    assert_non_null(bg);
    assert_ptr_equal(gocc_ctx_background(), bg);
    assert_int_equal(gocc_ctx_err(bg), 0);
    assert_int_equal(gocc_ctx_cause(bg), 0);
    assert_null(gocc_ctx_done(bg));
    int64_t d = 12345;
    assert_false(gocc_ctx_deadline(bg, &d));
    assert_false(gocc_ctx_deadline(bg, NULL));
    assert_null(gocc_ctx_value(bg, &key));
    /* retain/release are no-ops; cancel does nothing. */
    assert_ptr_equal(gocc_ctx_retain(bg), bg);
    gocc_ctx_release(bg);
    gocc_ctx_release(bg);
    gocc_ctx_release(bg);
    gocc_ctx_cancel(bg);
    gocc_ctx_cancel_cause(bg, -77);
    assert_int_equal(gocc_ctx_err(bg), 0);
    assert_int_equal(gocc_ctx_cause(bg), 0);
    assert_null(gocc_ctx_done(bg));

    /* NULL parent means background: a working child. */
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    assert_non_null(c);
    ASSERT_NOT_DONE(c);
    assert_non_null(gocc_ctx_done(c));
    gocc_ctx_cancel(c);
    ASSERT_DONE(c, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_err(bg), 0);
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* XTestWithCancel ("o" is Go's otherContext wrapper; a value context here) */
static void test_with_cancel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    gocc_ctx_t *c1 = gocc_ctx_with_cancel(gocc_ctx_background());
    assert_non_null(c1);
    gocc_ctx_t *o = gocc_ctx_with_value(c1, &key, NULL);
    assert_non_null(o);
    gocc_ctx_t *c2 = gocc_ctx_with_cancel(o);
    assert_non_null(c2);
    gocc_ctx_t *contexts[] = {c1, o, c2};
    for (int i = 0; i < 3; i++) {
        assert_non_null(gocc_ctx_done(contexts[i]));
        ASSERT_NOT_DONE(contexts[i]);
    }
    gocc_ctx_cancel(c1); /* propagates synchronously */
    for (int i = 0; i < 3; i++) {
        ASSERT_DONE(contexts[i], GOCC_ECANCELED);
        assert_int_equal(gocc_ctx_cause(contexts[i]), GOCC_ECANCELED);
    }
    gocc_ctx_cancel(c2);
    gocc_ctx_release(c2);
    gocc_ctx_release(o);
    gocc_ctx_release(c1);
    ASSERT_NO_TASKS(start);
}

/* XTestParentFinishesChild, extended with grandchildren through value
 * contexts and the cause. Tree:
 *   parent -> cancelChild -> grandCancel
 *   parent -> valueChild -> timerChild
 *   parent -> valueChild -> value2 -> grandTimer (deadline) -> greatGrand (value)
 */
static void test_parent_finishes_child(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0, key2 = 0;
    static char value[] = "value";
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *cancelChild = gocc_ctx_with_cancel(parent);
    gocc_ctx_t *grandCancel = gocc_ctx_with_cancel(cancelChild);
    gocc_ctx_t *valueChild = gocc_ctx_with_value(parent, &key, value);
    gocc_ctx_t *timerChild = gocc_ctx_with_timeout(valueChild, VERY_LONG);
    gocc_ctx_t *value2 = gocc_ctx_with_value(valueChild, &key2, value);
    gocc_ctx_t *grandTimer = gocc_ctx_with_deadline(value2, gocc_now() + VERY_LONG);
    gocc_ctx_t *greatGrand = gocc_ctx_with_value(grandTimer, &key2, NULL);
    gocc_ctx_t *all[] = {parent,     cancelChild, grandCancel, valueChild,
                         timerChild, value2,      grandTimer,  greatGrand};
    const size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        assert_non_null(all[i]);
        ASSERT_NOT_DONE(all[i]);
    }

    gocc_ctx_cancel_cause(parent, -4242);

    for (size_t i = 0; i < n; i++) {
        if (gocc_ctx_err(all[i]) != GOCC_ECANCELED)
            fail_msg("context %zu: err %d, want GOCC_ECANCELED", i, gocc_ctx_err(all[i]));
        assert_true(done_closed(all[i]));
        if (gocc_ctx_cause(all[i]) != -4242)
            fail_msg("context %zu: cause %d, want -4242", i, gocc_ctx_cause(all[i]));
    }
    assert_ptr_equal(gocc_ctx_value(greatGrand, &key), value);
    assert_null(gocc_ctx_value(greatGrand, &key2));

    /* A value child of a cancelled context is born done. */
    gocc_ctx_t *precanceled = gocc_ctx_with_value(parent, &key, value);
    assert_non_null(precanceled);
    ASSERT_DONE(precanceled, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(precanceled), -4242);
    gocc_ctx_release(precanceled);

    for (size_t i = 0; i < n; i++) gocc_ctx_cancel(all[i]); /* Go's deferred stops */
    for (size_t i = n; i-- > 0;) gocc_ctx_release(all[i]);
    ASSERT_NO_TASKS(start);
}

/* XTestChildFinishesFirst */
static void test_child_finishes_first(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *cancelable = gocc_ctx_with_cancel(NULL);
    assert_non_null(cancelable);
    gocc_ctx_t *parents[] = {gocc_ctx_background(), cancelable};
    for (int i = 0; i < 2; i++) {
        gocc_ctx_t *parent = parents[i];
        gocc_ctx_t *child = gocc_ctx_with_cancel(parent);
        assert_non_null(child);
        assert_true(done_blocks(parent));
        ASSERT_NOT_DONE(child);
        gocc_ctx_cancel(child);
        ASSERT_DONE(child, GOCC_ECANCELED);
        /* the parent is not finished */
        assert_true(done_blocks(parent));
        assert_int_equal(gocc_ctx_err(parent), 0);
        gocc_ctx_release(child);
    }
    gocc_ctx_cancel(cancelable);
    gocc_ctx_release(cancelable);
    ASSERT_NO_TASKS(start);
}

/* testDeadline: c becomes done with GOCC_EDEADLINE within QUIESCENT. */
#define TEST_DEADLINE(c, name)                                                            \
    do {                                                                                  \
        int rc_ = wait_done((c), QUIESCENT);                                              \
        if (rc_ != GOCC_ECLOSED) fail_msg("%s: context not timed out after 5 s", (name)); \
        assert_int_equal(gocc_ctx_err(c), GOCC_EDEADLINE);                                \
        assert_int_equal(gocc_ctx_cause(c), GOCC_EDEADLINE);                              \
    } while (0)

/* XTestDeadline; the parent's earlier deadline wins and is what the child
 * reports. */
static void test_deadline(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    int64_t dl, got;

    dl = gocc_now() + 50 * GOCC_MILLISECOND;
    gocc_ctx_t *c = gocc_ctx_with_deadline(gocc_ctx_background(), dl);
    assert_non_null(c);
    assert_true(gocc_ctx_deadline(c, &got));
    assert_true(got == dl);
    assert_true(gocc_ctx_deadline(c, NULL));
    TEST_DEADLINE(c, "WithDeadline");
    CHECK_GE(gocc_now(), dl); /* never early */
    gocc_ctx_cancel(c);
    assert_int_equal(gocc_ctx_err(c), GOCC_EDEADLINE); /* cancel after: no change */
    gocc_ctx_release(c);

    /* WithDeadline+otherContext */
    dl = gocc_now() + 50 * GOCC_MILLISECOND;
    c = gocc_ctx_with_deadline(NULL, dl);
    gocc_ctx_t *o = gocc_ctx_with_value(c, &key, NULL);
    assert_non_null(o);
    assert_true(gocc_ctx_deadline(o, &got)); /* a value context reports its parent's */
    assert_true(got == dl);
    TEST_DEADLINE(o, "WithDeadline+otherContext");
    gocc_ctx_cancel(c);
    gocc_ctx_release(o);
    gocc_ctx_release(c);

    /* WithDeadline+otherContext+WithDeadline: the parent's earlier one wins */
    dl = gocc_now() + 50 * GOCC_MILLISECOND;
    c = gocc_ctx_with_deadline(NULL, dl);
    o = gocc_ctx_with_value(c, &key, NULL);
    gocc_ctx_t *c2 = gocc_ctx_with_deadline(o, gocc_now() + VERY_LONG);
    assert_non_null(c2);
    assert_true(gocc_ctx_deadline(c2, &got));
    if (got != dl) fail_msg("child's deadline %" PRId64 ", want the parent's %" PRId64, got, dl);
    TEST_DEADLINE(c2, "WithDeadline+otherContext+WithDeadline");
    gocc_ctx_cancel(c2);
    gocc_ctx_cancel(c);
    gocc_ctx_release(c2);
    gocc_ctx_release(o);
    gocc_ctx_release(c);

    /* A child with an earlier deadline than its parent keeps its own. */
    int64_t far = gocc_now() + VERY_LONG;
    c = gocc_ctx_with_deadline(NULL, far);
    dl = gocc_now() + 50 * GOCC_MILLISECOND;
    c2 = gocc_ctx_with_deadline(c, dl);
    assert_true(gocc_ctx_deadline(c2, &got));
    assert_true(got == dl);
    assert_true(gocc_ctx_deadline(c, &got));
    assert_true(got == far);
    TEST_DEADLINE(c2, "earlier child");
    ASSERT_NOT_DONE(c); /* the child's timeout does not reach its parent */
    gocc_ctx_cancel(c2);
    gocc_ctx_cancel(c);
    gocc_ctx_release(c2);
    gocc_ctx_release(c);

    /* WithDeadline+inthepast: done at once, synchronously */
    c = gocc_ctx_with_deadline(NULL, gocc_now() - 50 * GOCC_MILLISECOND);
    assert_non_null(c);
    ASSERT_DONE(c, GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_cause(c), GOCC_EDEADLINE);
    gocc_ctx_t *child = gocc_ctx_with_cancel(c); /* born done, same error */
    ASSERT_DONE(child, GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_cause(child), GOCC_EDEADLINE);
    gocc_ctx_release(child);
    gocc_ctx_release(c);
    c = gocc_ctx_with_deadline(NULL, INT64_MIN);
    ASSERT_DONE(c, GOCC_EDEADLINE);
    gocc_ctx_release(c);

    /* WithDeadline+now */
    c = gocc_ctx_with_deadline(NULL, gocc_now());
    TEST_DEADLINE(c, "WithDeadline+now");
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* XTestTimeout; a 50 ms timeout fires within 2 s and not before. */
static void test_timeout(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    int64_t t0 = gocc_now();
    gocc_ctx_t *c = gocc_ctx_with_timeout(gocc_ctx_background(), 50 * GOCC_MILLISECOND);
    assert_non_null(c);
    int early = gocc_ctx_err(c);
    int64_t t_early = gocc_now() - t0;
    int64_t got;
    assert_true(gocc_ctx_deadline(c, &got));
    CHECK_GE(got, t0 + 50 * GOCC_MILLISECOND);
    CHECK_GE(gocc_now() + 50 * GOCC_MILLISECOND, got);
    int rc = wait_done(c, 2 * GOCC_SECOND);
    int64_t elapsed = gocc_now() - t0;
    assert_int_equal(rc, GOCC_ECLOSED);
    if (early != 0 && t_early < 40 * GOCC_MILLISECOND)
        fail_msg("done after %" PRId64 " ns already", t_early);
    CHECK_GE(elapsed, 40 * GOCC_MILLISECOND);
    CHECK_LT(elapsed, 2 * GOCC_SECOND);
    assert_int_equal(gocc_ctx_err(c), GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_cause(c), GOCC_EDEADLINE);
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);

    /* WithTimeout+otherContext */
    c = gocc_ctx_with_timeout(NULL, SHORT);
    gocc_ctx_t *o = gocc_ctx_with_value(c, &key, NULL);
    TEST_DEADLINE(o, "WithTimeout+otherContext");
    gocc_ctx_release(o);
    gocc_ctx_release(c);

    /* WithTimeout+otherContext+WithTimeout */
    c = gocc_ctx_with_timeout(NULL, SHORT);
    o = gocc_ctx_with_value(c, &key, NULL);
    gocc_ctx_t *c2 = gocc_ctx_with_timeout(o, VERY_LONG);
    TEST_DEADLINE(c2, "WithTimeout+otherContext+WithTimeout");
    gocc_ctx_cancel(c2);
    gocc_ctx_release(c2);
    gocc_ctx_release(o);
    gocc_ctx_release(c);

    /* zero and negative timeouts: done at once */
    c = gocc_ctx_with_timeout(NULL, 0);
    ASSERT_DONE(c, GOCC_EDEADLINE);
    gocc_ctx_release(c);
    c = gocc_ctx_with_timeout(NULL, -GOCC_SECOND);
    ASSERT_DONE(c, GOCC_EDEADLINE);
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* Huge timeouts saturate instead of overflowing into the past. */
static void test_timeout_overflow(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *a = gocc_ctx_with_timeout(NULL, INT64_MAX);
    gocc_ctx_t *b = gocc_ctx_with_deadline(NULL, INT64_MAX);
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, INT64_MAX - 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    sleep_ns(20 * GOCC_MILLISECOND);
    ASSERT_NOT_DONE(a);
    ASSERT_NOT_DONE(b);
    ASSERT_NOT_DONE(c);
    int64_t d;
    assert_true(gocc_ctx_deadline(a, &d));
    CHECK_GE(d, gocc_now() + VERY_LONG);
    gocc_ctx_cancel(a);
    gocc_ctx_cancel(b);
    gocc_ctx_cancel(c);
    ASSERT_DONE(a, GOCC_ECANCELED);
    gocc_ctx_release(a);
    gocc_ctx_release(b);
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* XTestCanceledTimeout */
static void test_canceled_timeout(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, GOCC_SECOND);
    gocc_ctx_t *o = gocc_ctx_with_value(c, &key, NULL);
    gocc_ctx_t *c2 = gocc_ctx_with_timeout(o, VERY_LONG);
    assert_non_null(c2);
    gocc_ctx_cancel(c2); /* propagates synchronously */
    ASSERT_DONE(c2, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(c2), GOCC_ECANCELED);
    ASSERT_NOT_DONE(c); /* not upwards */
    gocc_ctx_cancel(c);
    gocc_ctx_release(c2);
    gocc_ctx_release(o);
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* XTestValues; otherContext is played by without_cancel, which keeps the
 * parent's values. Keys compare by pointer. */
static const char k1 = 1, k2 = 1, k3 = 3; /* k1 and k2: same content, other keys */

static void check_values(gocc_ctx_t *c, const char *nm, const char *v1, const char *v2,
                         const char *v3) {
    const char *g1 = gocc_ctx_value(c, &k1), *g2 = gocc_ctx_value(c, &k2),
               *g3 = gocc_ctx_value(c, &k3);
    if (g1 != v1) fail_msg("%s.value(k1) = %s want %s", nm, g1 ? g1 : "NULL", v1 ? v1 : "NULL");
    if (g2 != v2) fail_msg("%s.value(k2) = %s want %s", nm, g2 ? g2 : "NULL", v2 ? v2 : "NULL");
    if (g3 != v3) fail_msg("%s.value(k3) = %s want %s", nm, g3 ? g3 : "NULL", v3 ? v3 : "NULL");
}

static void test_values(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static char c1k1[] = "c1k1", c2k2[] = "c2k2", c3k3[] = "c3k3", o2k2[] = "o2k2";
    gocc_ctx_t *c0 = gocc_ctx_background();
    check_values(c0, "c0", NULL, NULL, NULL);
    gocc_ctx_t *c1 = gocc_ctx_with_value(gocc_ctx_background(), &k1, c1k1);
    check_values(c1, "c1", c1k1, NULL, NULL);
    gocc_ctx_t *c2 = gocc_ctx_with_value(c1, &k2, c2k2);
    check_values(c2, "c2", c1k1, c2k2, NULL);
    gocc_ctx_t *c3 = gocc_ctx_with_value(c2, &k3, c3k3);
    check_values(c3, "c3", c1k1, c2k2, c3k3);
    gocc_ctx_t *c4 = gocc_ctx_with_value(c3, &k1, NULL); /* shadows with NULL */
    check_values(c4, "c4", NULL, c2k2, c3k3);

    gocc_ctx_t *o0 = gocc_ctx_without_cancel(gocc_ctx_background());
    check_values(o0, "o0", NULL, NULL, NULL);
    gocc_ctx_t *o1v = gocc_ctx_with_value(gocc_ctx_background(), &k1, c1k1);
    gocc_ctx_t *o1 = gocc_ctx_without_cancel(o1v);
    check_values(o1, "o1", c1k1, NULL, NULL);
    gocc_ctx_t *o2 = gocc_ctx_with_value(o1, &k2, o2k2);
    check_values(o2, "o2", c1k1, o2k2, NULL);
    gocc_ctx_t *o3 = gocc_ctx_without_cancel(c4);
    check_values(o3, "o3", NULL, c2k2, c3k3);
    gocc_ctx_t *o4 = gocc_ctx_with_value(o3, &k3, NULL);
    check_values(o4, "o4", NULL, c2k2, NULL);

    /* through cancel and timer contexts */
    gocc_ctx_t *cc = gocc_ctx_with_cancel(c3);
    gocc_ctx_t *tc = gocc_ctx_with_timeout(cc, VERY_LONG);
    gocc_ctx_t *vc = gocc_ctx_with_value(tc, &k2, o2k2);
    check_values(vc, "vc", c1k1, o2k2, c3k3);
    gocc_ctx_cancel(cc); /* values survive cancellation */
    check_values(vc, "vc after cancel", c1k1, o2k2, c3k3);
    check_values(tc, "tc after cancel", c1k1, c2k2, c3k3);

    gocc_ctx_t *rel[] = {vc, tc, cc, o4, o3, o2, o1, o1v, o0, c4, c3, c2, c1};
    gocc_ctx_cancel(tc);
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        assert_non_null(rel[i]);
        gocc_ctx_release(rel[i]);
    }
    ASSERT_NO_TASKS(start);
}

/* Regression: with_value took a NULL key (Go panics on a nil key) and made
 * a context that value(ctx, NULL) then answered. A NULL key is refused:
 * NULL with errno EINVAL, no context made, the parent not retained (ASan
 * builds would report the leaked reference); value(ctx, NULL) is NULL on
 * every kind of context. */
static void test_with_value_null_key(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static int v = 42;
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_ctx_t *parents[] = {NULL, gocc_ctx_background(), parent};
    for (size_t i = 0; i < 3; i++) {
        errno = 0;
        gocc_ctx_t *c = gocc_ctx_with_value(parents[i], NULL, &v);
        if (c != NULL) {
            gocc_ctx_release(c);
            fail_msg("parent #%zu: with_value(NULL key) made a context", i);
        }
        assert_int_equal(errno, EINVAL);
        assert_null(gocc_ctx_value(parents[i], NULL));
    }
    /* The parent was left as it was: still cancellable, not done. */
    ASSERT_NOT_DONE(parent);
    gocc_ctx_t *kv = gocc_ctx_with_value(parent, &k1, &v);
    assert_non_null(kv);
    assert_ptr_equal(gocc_ctx_value(kv, &k1), &v);
    assert_null(gocc_ctx_value(kv, NULL));
    gocc_ctx_t *w = gocc_ctx_without_cancel(kv);
    assert_non_null(w);
    assert_null(gocc_ctx_value(w, NULL));
    gocc_ctx_cancel(parent);
    ASSERT_DONE(kv, GOCC_ECANCELED);
    gocc_ctx_release(w);
    gocc_ctx_release(kv);
    gocc_ctx_release(parent);
    ASSERT_NO_TASKS(start);
}

/* XTestSimultaneousCancels: a tree of ~100 contexts cancelled from 100
 * tasks at once, in any order. */
typedef struct simul_state {
    gocc_chan_t *go; /* closed to start every cancel at once */
    _Atomic int bad;
} simul_state;

static simul_state g_simul;

static int cancel_task(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    if (gocc_chan_recv(g_simul.go, NULL, NULL) != GOCC_ECLOSED) atomic_fetch_add(&g_simul.bad, 1);
    gocc_ctx_cancel(ctx);
    return 0;
}

static void test_simultaneous_cancels(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    enum { MAX = 128 };
    gocc_ctx_t *m[MAX + 4];
    size_t n = 0, q = 0;
    m[n++] = gocc_ctx_with_cancel(NULL);
    while (q < n && n < 100) {
        gocc_ctx_t *parent = m[q++];
        for (int i = 0; i < 4; i++) {
            m[n] = gocc_ctx_with_cancel(parent);
            assert_non_null(m[n]);
            n++;
        }
    }
    g_simul.go = gocc_chan_new(0, 0);
    atomic_store(&g_simul.bad, 0);
    assert_non_null(g_simul.go);
    /* start the cancels in a shuffled order */
    uint64_t seed = (uint64_t)gocc_now() | 1;
    size_t order[MAX + 4];
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = xorshift(&seed) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < n; i++) assert_int_equal(gocc_go(cancel_task, m[order[i]], NULL), 0);
    gocc_chan_close(g_simul.go);
    /* wait on every context (any order) */
    for (size_t i = 0; i < n; i++) {
        size_t k = order[n - 1 - i];
        int rc = wait_done(m[k], QUIESCENT);
        if (rc != GOCC_ECLOSED) fail_msg("timed out waiting for context %zu", k);
        assert_int_equal(gocc_ctx_err(m[k]), GOCC_ECANCELED);
    }
    /* wait for every cancel to return */
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&g_simul.bad), 0);
    for (size_t i = n; i-- > 0;) gocc_ctx_release(m[i]);
    gocc_chan_release(g_simul.go);
    ASSERT_NO_TASKS(start);
}

/* XTestInterlockedCancels: a task waits for the parent's done channel and
 * then cancels the child while the parent's cancel is running. */
static int interlock_task(gocc_ctx_t *ctx, void *arg) {
    gocc_ctx_t *child = arg;
    (void)gocc_chan_recv(gocc_ctx_done(ctx), NULL, NULL);
    gocc_ctx_cancel(child);
    return 0;
}

static void test_interlocked_cancels(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    for (int round = 0; round < SCALE(200); round++) {
        gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
        gocc_ctx_t *child = gocc_ctx_with_cancel(parent);
        assert_non_null(child);
        assert_int_equal(gocc_go(interlock_task, parent, child), 0);
        gocc_ctx_cancel(parent);
        assert_int_equal(wait_done(child, QUIESCENT), GOCC_ECLOSED);
        assert_int_equal(test_wait_tasks(start, QUIESCENT), start); /* task used child */
        gocc_ctx_release(child);
        gocc_ctx_release(parent);
    }
    ASSERT_NO_TASKS(start);
}

/* testLayers (XTestLayersCancel / XTestLayersTimeout): random layers of
 * value, cancel and timeout contexts. */
static void test_layers(bool test_timeout) {
    uint64_t seed = (uint64_t)gocc_now() | 1, r = seed;
    enum { MIN_LAYERS = 30, MAX_LAYERS = 256 };
    gocc_ctx_t *chain[MAX_LAYERS + 1];
    gocc_ctx_t *cancels[MAX_LAYERS];
    int *vals[MAX_LAYERS];
    size_t nchain = 0, ncancels = 0, nvals = 0, ntimers = 0;
    gocc_ctx_t *ctx = gocc_ctx_background();
    for (int i = 0;
         (i < MIN_LAYERS || ntimers == 0 || ncancels == 0 || nvals == 0) && nchain < MAX_LAYERS;
         i++) {
        switch (xorshift(&r) % 3) {
        case 0: {
            int *v = malloc(sizeof *v);
            assert_non_null(v);
            ctx = gocc_ctx_with_value(ctx, v, v);
            vals[nvals++] = v;
            break;
        }
        case 1:
            ctx = gocc_ctx_with_cancel(ctx);
            cancels[ncancels++] = ctx;
            break;
        default:
            ctx = gocc_ctx_with_timeout(ctx, test_timeout ? SHORT : VERY_LONG);
            cancels[ncancels++] = ctx;
            ntimers++;
            break;
        }
        if (ctx == NULL) fail_msg("seed=%" PRIu64 ": constructor returned NULL", seed);
        chain[nchain++] = ctx;
    }
    for (size_t i = 0; i < nvals; i++)
        if (gocc_ctx_value(ctx, vals[i]) != vals[i])
            fail_msg("seed=%" PRIu64 ": before: value(%p) wrong", seed, (void *)vals[i]);
    if (!test_timeout && !done_blocks(ctx))
        fail_msg("seed=%" PRIu64 ": ctx should not be canceled yet", seed);
    if (test_timeout) {
        if (wait_done(ctx, QUIESCENT) != GOCC_ECLOSED)
            fail_msg("seed=%" PRIu64 ": ctx should have timed out", seed);
        if (gocc_ctx_err(ctx) != GOCC_EDEADLINE)
            fail_msg("seed=%" PRIu64 ": err %d want GOCC_EDEADLINE", seed, gocc_ctx_err(ctx));
    } else {
        gocc_ctx_cancel(cancels[xorshift(&r) % ncancels]);
        if (!done_closed(ctx)) fail_msg("seed=%" PRIu64 ": ctx should be canceled", seed);
        if (gocc_ctx_err(ctx) != GOCC_ECANCELED)
            fail_msg("seed=%" PRIu64 ": err %d want GOCC_ECANCELED", seed, gocc_ctx_err(ctx));
    }
    for (size_t i = 0; i < nvals; i++)
        if (gocc_ctx_value(ctx, vals[i]) != vals[i])
            fail_msg("seed=%" PRIu64 ": after: value(%p) wrong", seed, (void *)vals[i]);
    for (size_t i = 0; i < ncancels; i++) gocc_ctx_cancel(cancels[i]);
    for (size_t i = nchain; i-- > 0;) gocc_ctx_release(chain[i]);
    for (size_t i = 0; i < nvals; i++) free(vals[i]);
}

static void test_layers_cancel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    for (int i = 0; i < 20; i++) test_layers(false);
    ASSERT_NO_TASKS(start);
}

static void test_layers_timeout(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    for (int i = 0; i < 5; i++) test_layers(true);
    ASSERT_NO_TASKS(start);
}

/* XTestCancelRemoves: a cancelled child leaves its parent; Go counts the
 * parent's children, we check that thousands of cancelled-and-released
 * children of a long-lived parent leave nothing behind (ASan) and that the
 * parent's cancel still works afterwards. */
static void test_cancel_removes(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    for (int i = 0; i < SCALE(10000); i++) {
        gocc_ctx_t *c = (i & 1) ? gocc_ctx_with_cancel(ctx)
                                : gocc_ctx_with_timeout(ctx, 60LL * 60 * GOCC_SECOND);
        assert_non_null(c);
        gocc_ctx_cancel(c);
        ASSERT_DONE(c, GOCC_ECANCELED);
        gocc_ctx_release(c);
    }
    ASSERT_NOT_DONE(ctx);
    gocc_ctx_t *last = gocc_ctx_with_cancel(ctx);
    gocc_ctx_cancel(ctx);
    ASSERT_DONE(last, GOCC_ECANCELED);
    gocc_ctx_release(last);
    gocc_ctx_release(ctx);
    ASSERT_NO_TASKS(start);
}

static int g_af_dummy;

/* XTestWithCancelCanceledParent: children of a done parent are born done
 * (cancel, timeout, value children) with the parent's error and cause. */
static void test_with_cancel_canceled_parent(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel_cause(parent, 31337);
    gocc_ctx_t *c = gocc_ctx_with_cancel(parent);
    gocc_ctx_t *t = gocc_ctx_with_timeout(parent, VERY_LONG);
    gocc_ctx_t *d = gocc_ctx_with_deadline(parent, gocc_now() - GOCC_SECOND);
    gocc_ctx_t *v = gocc_ctx_with_value(parent, &key, &g_af_dummy);
    gocc_ctx_t *vc = gocc_ctx_with_cancel(v);
    gocc_ctx_t *w = gocc_ctx_without_cancel(parent);
    gocc_ctx_t *kids[] = {c, t, d, v, vc};
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(kids[i]);
        if (gocc_ctx_err(kids[i]) != GOCC_ECANCELED)
            fail_msg("child %zu: err %d want GOCC_ECANCELED", i, gocc_ctx_err(kids[i]));
        assert_true(done_closed(kids[i]));
        if (gocc_ctx_cause(kids[i]) != 31337)
            fail_msg("child %zu: cause %d want 31337", i, gocc_ctx_cause(kids[i]));
    }
    /* without_cancel is never done, even of a done parent */
    assert_non_null(w);
    assert_int_equal(gocc_ctx_err(w), 0);
    assert_null(gocc_ctx_done(w));
    assert_ptr_equal(gocc_ctx_value(w, &key), NULL);
    for (size_t i = 0; i < 5; i++) gocc_ctx_cancel(kids[i]);
    for (size_t i = 0; i < 5; i++) gocc_ctx_release(kids[i]);
    gocc_ctx_release(w);
    gocc_ctx_release(parent);
    ASSERT_NO_TASKS(start);
}

/* TestCause (Go 1.20+) with WithCancelCause played by cancel_cause. */
static void check_cause(gocc_ctx_t *c, const char *name, int err, int cause) {
    if (gocc_ctx_err(c) != err) fail_msg("%s: err %d want %d", name, gocc_ctx_err(c), err);
    if (gocc_ctx_cause(c) != cause)
        fail_msg("%s: cause %d want %d", name, gocc_ctx_cause(c), cause);
}

static void test_cause(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int parentCause = 1001, childCause = 1002, finishedEarly = -1003;
    gocc_ctx_t *p, *c, *w;

    check_cause(gocc_ctx_background(), "Background", 0, 0);

    c = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel(c);
    check_cause(c, "WithCancel", GOCC_ECANCELED, GOCC_ECANCELED);
    gocc_ctx_release(c);

    c = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel_cause(c, parentCause);
    check_cause(c, "WithCancelCause", GOCC_ECANCELED, parentCause);
    gocc_ctx_release(c);

    c = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel_cause(c, 0);
    check_cause(c, "WithCancelCause nil", GOCC_ECANCELED, GOCC_ECANCELED);
    gocc_ctx_release(c);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel_cause(p, parentCause);
    gocc_ctx_cancel_cause(c, childCause);
    check_cause(c, "parent cause before child", GOCC_ECANCELED, parentCause);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel_cause(c, childCause);
    gocc_ctx_cancel_cause(p, parentCause);
    check_cause(c, "parent cause after child", GOCC_ECANCELED, childCause);
    check_cause(p, "parent (after child)", GOCC_ECANCELED, parentCause);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel_cause(p, parentCause);
    gocc_ctx_cancel(c);
    check_cause(c, "parent cause before nil", GOCC_ECANCELED, parentCause);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel(c);
    gocc_ctx_cancel_cause(p, parentCause);
    check_cause(c, "parent cause after nil", GOCC_ECANCELED, GOCC_ECANCELED);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel(p);
    gocc_ctx_cancel_cause(c, childCause);
    check_cause(c, "child cause after nil", GOCC_ECANCELED, GOCC_ECANCELED);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_cancel(p);
    gocc_ctx_cancel_cause(c, childCause);
    gocc_ctx_cancel(p);
    check_cause(c, "child cause before nil", GOCC_ECANCELED, childCause);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    c = gocc_ctx_with_timeout(NULL, 0);
    gocc_ctx_cancel(c);
    check_cause(c, "WithTimeout", GOCC_EDEADLINE, GOCC_EDEADLINE);
    gocc_ctx_release(c);

    c = gocc_ctx_with_timeout(NULL, VERY_LONG);
    gocc_ctx_cancel(c);
    check_cause(c, "WithTimeout canceled", GOCC_ECANCELED, GOCC_ECANCELED);
    gocc_ctx_release(c);

    c = gocc_ctx_with_timeout(NULL, VERY_LONG);
    gocc_ctx_cancel_cause(c, finishedEarly);
    check_cause(c, "WithTimeout canceled with cause", GOCC_ECANCELED, finishedEarly);
    gocc_ctx_release(c);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_timeout(p, 0);
    gocc_ctx_cancel_cause(p, finishedEarly);
    check_cause(c, "WithTimeout stacked", GOCC_EDEADLINE, GOCC_EDEADLINE);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_timeout(p, VERY_LONG);
    gocc_ctx_cancel_cause(p, finishedEarly);
    check_cause(c, "WithTimeout stacked canceled", GOCC_ECANCELED, finishedEarly);
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    w = gocc_ctx_without_cancel(NULL);
    check_cause(w, "WithoutCancel", 0, 0);
    gocc_ctx_release(w);

    p = gocc_ctx_with_cancel(NULL);
    w = gocc_ctx_without_cancel(p);
    gocc_ctx_cancel_cause(p, finishedEarly);
    check_cause(w, "WithoutCancel canceled", 0, 0);
    gocc_ctx_release(w);
    gocc_ctx_release(p);

    p = gocc_ctx_with_timeout(NULL, 0);
    w = gocc_ctx_without_cancel(p);
    gocc_ctx_cancel(p);
    check_cause(w, "WithoutCancel timeout", 0, 0);
    gocc_ctx_release(w);
    gocc_ctx_release(p);

    /* the cause reaches grandchildren through value contexts */
    static const char key = 0;
    p = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *v = gocc_ctx_with_value(p, &key, NULL);
    c = gocc_ctx_with_cancel(v);
    gocc_ctx_t *g = gocc_ctx_with_timeout(c, VERY_LONG);
    gocc_ctx_cancel_cause(p, -EIO);
    check_cause(v, "value child", GOCC_ECANCELED, -EIO);
    check_cause(c, "grandchild", GOCC_ECANCELED, -EIO);
    check_cause(g, "great-grandchild", GOCC_ECANCELED, -EIO);
    gocc_ctx_cancel(g);
    gocc_ctx_release(g);
    gocc_ctx_release(c);
    gocc_ctx_release(v);
    gocc_ctx_release(p);
    ASSERT_NO_TASKS(start);
}

/* TestCauseRace: poll the cause while another thread cancels with a cause;
 * once done, the cause is the one given (never the bare error). */
typedef struct cause_race_state {
    gocc_chan_t *go;
    int cause;
} cause_race_state;

static int cause_task(gocc_ctx_t *ctx, void *arg) {
    cause_race_state *s = arg;
    (void)gocc_chan_recv(s->go, NULL, NULL);
    gocc_ctx_cancel_cause(ctx, s->cause);
    return 0;
}

static void test_cause_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    cause_race_state s = {.go = gocc_chan_new(0, 0), .cause = 777};
    assert_non_null(s.go);
    for (int i = 0; i < SCALE(200); i++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_int_equal(gocc_go(cause_task, ctx, &s), 0);
        assert_int_equal(gocc_chan_send(s.go, NULL, NULL), 0);
        int64_t end = gocc_now() + QUIESCENT;
        for (;;) {
            int err = gocc_ctx_err(ctx);
            int cause = gocc_ctx_cause(ctx);
            if (err != 0) {
                /* err seen: the cause must be published already */
                if (gocc_ctx_cause(ctx) != 777)
                    fail_msg("round %d: err %d but cause %d, want 777", i, err,
                             gocc_ctx_cause(ctx));
            }
            if (cause != 0) {
                if (cause != 777) fail_msg("round %d: cause %d, want 777", i, cause);
                break;
            }
            if (gocc_now() > end) fail_msg("round %d: never cancelled", i);
            sched_yield();
        }
        assert_int_equal(test_wait_tasks(start, QUIESCENT), start);
        gocc_ctx_release(ctx);
    }
    gocc_chan_release(s.go);
    ASSERT_NO_TASKS(start);
}

/* TestWithoutCancel */
static void test_without_cancel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    static char value[] = "value";
    gocc_ctx_t *p = gocc_ctx_with_timeout(NULL, VERY_LONG); /* has a deadline */
    gocc_ctx_t *v = gocc_ctx_with_value(p, &key, value);
    gocc_ctx_t *w = gocc_ctx_without_cancel(v);
    assert_non_null(w);
    int64_t d = 5;
    assert_false(gocc_ctx_deadline(w, &d));
    assert_null(gocc_ctx_done(w));
    assert_int_equal(gocc_ctx_err(w), 0);
    assert_ptr_equal(gocc_ctx_value(w, &key), value);

    /* a cancellable child of it is cut off from the parent's cancellation */
    gocc_ctx_t *wc = gocc_ctx_with_cancel(w);
    gocc_ctx_t *wv = gocc_ctx_with_value(w, &g_af_dummy, NULL);
    assert_non_null(wc);
    assert_false(gocc_ctx_deadline(wc, NULL));
    assert_null(gocc_ctx_done(wv)); /* value child of a never-done ctx */
    gocc_ctx_cancel_cause(p, 5);
    ASSERT_DONE(v, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_err(w), 0);
    assert_int_equal(gocc_ctx_cause(w), 0);
    ASSERT_NOT_DONE(wc);
    assert_ptr_equal(gocc_ctx_value(wc, &key), value);
    /* cancel on without_cancel does nothing; its child cancels normally */
    gocc_ctx_cancel(w);
    assert_int_equal(gocc_ctx_err(w), 0);
    ASSERT_NOT_DONE(wc);
    gocc_ctx_cancel(wc);
    ASSERT_DONE(wc, GOCC_ECANCELED);
    gocc_ctx_release(wv);
    gocc_ctx_release(wc);
    gocc_ctx_release(w);
    gocc_ctx_release(v);
    gocc_ctx_release(p);
    ASSERT_NO_TASKS(start);
}

/* Clarification "Cancelling what is not cancellable". */
static void test_cancel_not_cancellable(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    gocc_ctx_t *p = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *v = gocc_ctx_with_value(p, &key, NULL);
    gocc_ctx_t *vc = gocc_ctx_with_cancel(v);
    gocc_ctx_t *bv = gocc_ctx_with_value(NULL, &key, NULL);
    gocc_ctx_t *w = gocc_ctx_without_cancel(p);
    gocc_ctx_cancel(v);
    gocc_ctx_cancel_cause(v, 9);
    gocc_ctx_cancel(bv);
    gocc_ctx_cancel(w);
    gocc_ctx_cancel(gocc_ctx_background());
    ASSERT_NOT_DONE(p);
    ASSERT_NOT_DONE(v);
    ASSERT_NOT_DONE(vc);
    assert_int_equal(gocc_ctx_err(bv), 0);
    assert_null(gocc_ctx_done(bv));
    assert_int_equal(gocc_ctx_err(w), 0);
    gocc_ctx_cancel(p);
    ASSERT_DONE(vc, GOCC_ECANCELED);
    gocc_ctx_release(w);
    gocc_ctx_release(bv);
    gocc_ctx_release(vc);
    gocc_ctx_release(v);
    gocc_ctx_release(p);
    ASSERT_NO_TASKS(start);
}

/* Cancel is idempotent: the first error and cause stay. */
static void test_cancel_idempotent(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *d = gocc_ctx_done(c);
    gocc_ctx_cancel_cause(c, 11);
    gocc_ctx_cancel(c);
    gocc_ctx_cancel_cause(c, 12);
    gocc_ctx_cancel(c);
    ASSERT_DONE(c, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(c), 11);
    assert_ptr_equal(gocc_ctx_done(c), d);
    gocc_ctx_release(c);

    /* a timed-out context keeps GOCC_EDEADLINE */
    c = gocc_ctx_with_timeout(NULL, SHORT);
    assert_int_equal(wait_done(c, QUIESCENT), GOCC_ECLOSED);
    gocc_ctx_cancel_cause(c, 13);
    gocc_ctx_cancel(c);
    ASSERT_DONE(c, GOCC_EDEADLINE);
    assert_int_equal(gocc_ctx_cause(c), GOCC_EDEADLINE);
    gocc_ctx_release(c);
    ASSERT_NO_TASKS(start);
}

/* gocc_ctx_done: made lazily, the same pointer on every call, closed when
 * done (recv gets GOCC_ECLOSED), and wakes blocked receivers. */
typedef struct done_waiter_state {
    _Atomic int woke;
    _Atomic int rc;
} done_waiter_state;

static int done_waiter(gocc_ctx_t *ctx, void *arg) {
    done_waiter_state *s = arg;
    int rc = gocc_chan_recv(gocc_ctx_done(ctx), NULL, NULL);
    atomic_store(&s->rc, rc);
    atomic_fetch_add(&s->woke, 1);
    return 0;
}

static void test_done_channel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *d = gocc_ctx_done(c);
    assert_non_null(d);
    for (int i = 0; i < 10; i++) assert_ptr_equal(gocc_ctx_done(c), d);
    assert_int_equal(gocc_chan_try_recv(d, NULL), GOCC_EAGAIN);

    done_waiter_state s = {0};
    for (int i = 0; i < 4; i++) assert_int_equal(gocc_go(done_waiter, c, &s), 0);
    wait_blocked_in(4, "chan receive", SAFETY_NS); /* all four wait on done */
    assert_int_equal(atomic_load(&s.woke), 0);
    gocc_ctx_cancel(c);
    assert_int_equal(wait_int(&s.woke, 4, QUIESCENT), 4);
    assert_int_equal(atomic_load(&s.rc), GOCC_ECLOSED);
    assert_int_equal(gocc_chan_recv(d, NULL, NULL), GOCC_ECLOSED);
    assert_int_equal(gocc_chan_try_recv(d, NULL), GOCC_ECLOSED);
    assert_ptr_equal(gocc_ctx_done(c), d);
    ASSERT_NO_TASKS(start);
    gocc_ctx_release(c);

    /* first asked for after cancel: made already closed */
    c = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel(c);
    d = gocc_ctx_done(c);
    assert_non_null(d);
    assert_int_equal(gocc_chan_recv(d, NULL, NULL), GOCC_ECLOSED);
    assert_ptr_equal(gocc_ctx_done(c), d);
    gocc_ctx_release(c);

    /* a child whose done channel was asked for before the parent's cancel */
    gocc_ctx_t *p = gocc_ctx_with_cancel(NULL);
    c = gocc_ctx_with_timeout(p, VERY_LONG);
    d = gocc_ctx_done(c);
    gocc_ctx_cancel(p);
    assert_int_equal(gocc_chan_try_recv(d, NULL), GOCC_ECLOSED);
    gocc_ctx_release(c);
    gocc_ctx_release(p);

    /* never-done contexts have none */
    gocc_ctx_t *w = gocc_ctx_without_cancel(NULL);
    assert_null(gocc_ctx_done(w));
    assert_null(gocc_ctx_done(gocc_ctx_background()));
    gocc_ctx_release(w);
    ASSERT_NO_TASKS(start);
}

/* Cancel from a task that is itself waiting on the context: it selects on
 * the context's done channel and a trigger; on the trigger it cancels the
 * very context its select uses, and waits on it again. Other tasks blocked
 * on the context wake too. */
typedef struct self_state {
    gocc_chan_t *trigger;
    gocc_chan_t *never;
    _Atomic int sel_rc;
    _Atomic int recv_rc;
    _Atomic int others_canceled;
} self_state;

static int self_cancel_task(gocc_ctx_t *ctx, void *arg) {
    self_state *s = arg;
    gocc_case_t cases[2] = {
        {.ch = s->trigger, .dir = GOCC_RECV, .elem = NULL},
        {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV, .elem = NULL},
    };
    atomic_store(&s->sel_rc, gocc_select(cases, 2, ctx));
    gocc_ctx_cancel(ctx);
    gocc_ctx_cancel(ctx);
    atomic_store(&s->recv_rc, gocc_chan_recv(s->never, NULL, ctx));
    return 0;
}

static int blocked_task(gocc_ctx_t *ctx, void *arg) {
    self_state *s = arg;
    if (gocc_chan_recv(s->never, NULL, ctx) == GOCC_ECANCELED)
        atomic_fetch_add(&s->others_canceled, 1);
    return 0;
}

static void recancel_fn(void *arg) {
    gocc_ctx_t *c = arg;
    gocc_ctx_cancel(c); /* re-entrant: the after_func's own context */
}

static void test_cancel_from_waiting_task(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    self_state s;
    memset(&s, 0, sizeof s);
    s.trigger = gocc_chan_new(0, 0);
    s.never = gocc_chan_new(0, 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_int_equal(gocc_ctx_after_func(ctx, recancel_fn, ctx, NULL), 0);
    for (int i = 0; i < 8; i++) assert_int_equal(gocc_go(blocked_task, ctx, &s), 0);
    assert_int_equal(gocc_go(self_cancel_task, ctx, &s), 0);
    wait_blocked_in(8, "chan receive", SAFETY_NS);
    wait_blocked_in(1, "select", SAFETY_NS);
    assert_int_equal(gocc_ctx_err(ctx), 0);
    assert_int_equal(gocc_chan_send(s.trigger, NULL, NULL), 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.sel_rc), 0);
    assert_int_equal(atomic_load(&s.recv_rc), GOCC_ECANCELED);
    assert_int_equal(atomic_load(&s.others_canceled), 8);
    ASSERT_DONE(ctx, GOCC_ECANCELED);
    gocc_ctx_release(ctx);
    gocc_chan_release(s.trigger);
    gocc_chan_release(s.never);
    ASSERT_NO_TASKS(start);
}

/* XTestWithCancel's "cancel() // Should propagate synchronously", under
 * concurrency: when gocc_ctx_cancel(mid) returns, mid's done channel is
 * closed and every descendant is done, even while another thread's cancel
 * of an ancestor is already in progress through mid (Go holds the
 * context's lock while it closes done and cancels the children, so a
 * second cancel waits for the first to finish). */
typedef struct sync_cancel_state {
    pthread_barrier_t barrier;
    gocc_ctx_t *root, *mid;
    gocc_ctx_t *leaves[64];
    int nleaves;
    _Atomic int violations_done, violations_leaf;
} sync_cancel_state;

static void *root_canceller(void *arg) {
    sync_cancel_state *s = arg;
    pthread_barrier_wait(&s->barrier);
    gocc_ctx_cancel(s->root);
    return NULL;
}

static void test_cancel_propagates_synchronously(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    sync_cancel_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->nleaves = 64;
    int rounds = SCALE(2000), bad_rounds = 0;
    for (int round = 0; round < rounds; round++) {
        pthread_barrier_init(&s->barrier, NULL, 2);
        s->root = gocc_ctx_with_cancel(NULL);
        gocc_ctx_t *v = gocc_ctx_with_value(s->root, &g_af_dummy, NULL);
        s->mid = gocc_ctx_with_cancel(v);
        (void)gocc_ctx_done(s->mid);
        for (int i = 0; i < s->nleaves; i++) {
            s->leaves[i] = gocc_ctx_with_cancel(s->mid);
            (void)gocc_ctx_done(s->leaves[i]);
        }
        test_thread th;
        test_thread_start(&th, root_canceller, s);
        pthread_barrier_wait(&s->barrier);
        gocc_ctx_cancel(s->mid);
        /* cancel returned: mid and all its descendants are done */
        bool bad = false;
        if (!done_closed(s->mid)) {
            atomic_fetch_add(&s->violations_done, 1);
            bad = true;
        }
        for (int i = 0; i < s->nleaves; i++)
            if (gocc_ctx_err(s->leaves[i]) == 0 || !done_closed(s->leaves[i])) {
                atomic_fetch_add(&s->violations_leaf, 1);
                bad = true;
            }
        bad_rounds += bad;
        test_thread_join(&th);
        for (int i = 0; i < s->nleaves; i++) gocc_ctx_release(s->leaves[i]);
        gocc_ctx_release(s->mid);
        gocc_ctx_release(v);
        gocc_ctx_release(s->root);
        pthread_barrier_destroy(&s->barrier);
    }
    int vd = atomic_load(&s->violations_done), vl = atomic_load(&s->violations_leaf);
    free(s);
    if (bad_rounds)
        fail_msg("%d of %d rounds: gocc_ctx_cancel(mid) returned while mid's done channel was "
                 "open (%d times) or descendants were not done yet (%d leaves)",
                 bad_rounds, rounds, vd, vl);
    ASSERT_NO_TASKS(start);
}

/* gocc_ctx_release does not cancel; a child keeps its parent alive. */
typedef struct release_state {
    gocc_chan_t *go;
    _Atomic int did_cancel;
} release_state;

static int cancel_own_ctx_task(gocc_ctx_t *ctx, void *arg) {
    release_state *s = arg;
    (void)gocc_chan_recv(s->go, NULL, NULL);
    gocc_ctx_cancel_cause(ctx, 4711);
    atomic_store(&s->did_cancel, 1);
    return 0;
}

static void test_release_and_lifetime(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    static char value[] = "v";

    /* release of one of two references: not cancelled */
    gocc_ctx_t *x = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *y = gocc_ctx_retain(x);
    assert_ptr_equal(y, x);
    gocc_chan_t *d = gocc_ctx_done(x);
    gocc_ctx_release(x);
    ASSERT_NOT_DONE(y);
    assert_int_equal(gocc_chan_try_recv(d, NULL), GOCC_EAGAIN);
    gocc_ctx_cancel(y);
    ASSERT_DONE(y, GOCC_ECANCELED);
    gocc_ctx_release(y);

    /* parents released first: the child still works (values through the
     * chain, its own cancel, its deadline) */
    gocc_ctx_t *p = gocc_ctx_with_timeout(NULL, VERY_LONG);
    gocc_ctx_t *v = gocc_ctx_with_value(p, &key, value);
    gocc_ctx_t *c = gocc_ctx_with_cancel(v);
    int64_t dl1, dl2;
    assert_true(gocc_ctx_deadline(p, &dl1));
    gocc_ctx_cancel(NULL); /* harmless */
    gocc_ctx_release(v);
    /* p's timer must still be cancelled by its owner: cancel then release */
    gocc_ctx_t *p2 = gocc_ctx_retain(p);
    gocc_ctx_release(p);
    ASSERT_NOT_DONE(c);
    assert_ptr_equal(gocc_ctx_value(c, &key), value);
    assert_true(gocc_ctx_deadline(c, &dl2));
    assert_true(dl1 == dl2);
    gocc_ctx_cancel(c);
    ASSERT_DONE(c, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_err(p2), 0);
    gocc_ctx_cancel(p2);
    gocc_ctx_release(p2);
    assert_ptr_equal(gocc_ctx_value(c, &key), value);
    gocc_ctx_release(c);

    /* a parent held only by a task (and its child): the task cancels it
     * after every other reference is gone, and the child sees it */
    release_state s = {.go = gocc_chan_new(0, 0)};
    p = gocc_ctx_with_cancel(NULL);
    v = gocc_ctx_with_value(p, &key, value);
    c = gocc_ctx_with_cancel(v);
    d = gocc_ctx_done(c);
    assert_int_equal(gocc_go(cancel_own_ctx_task, p, &s), 0);
    gocc_ctx_release(p);
    gocc_ctx_release(v);
    ASSERT_NOT_DONE(c);
    assert_int_equal(gocc_chan_send(s.go, NULL, NULL), 0);
    assert_int_equal(wait_done(c, QUIESCENT), GOCC_ECLOSED);
    ASSERT_DONE(c, GOCC_ECANCELED);
    assert_int_equal(gocc_ctx_cause(c), 4711);
    assert_ptr_equal(gocc_ctx_value(c, &key), value);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.did_cancel), 1);
    gocc_ctx_release(c);
    gocc_chan_release(s.go);
    ASSERT_NO_TASKS(start);
}

/* ---- after_func ---- */

typedef struct af_state {
    _Atomic int calls;
    _Atomic int finished;
    _Atomic int on_test_thread; /* calls made on the test's own thread */
    gocc_chan_t *release;       /* af_block waits on it */
    _Atomic size_t live_seen;
} af_state;

static pthread_t g_main_thread;

static void af_count(void *arg) {
    af_state *s = arg;
    if (pthread_equal(pthread_self(), g_main_thread)) atomic_fetch_add(&s->on_test_thread, 1);
    atomic_fetch_add(&s->calls, 1);
    atomic_fetch_add(&s->finished, 1);
}

static void af_block(void *arg) {
    af_state *s = arg;
    if (pthread_equal(pthread_self(), g_main_thread)) atomic_fetch_add(&s->on_test_thread, 1);
    atomic_store(&s->live_seen, gocc_tasks_live());
    atomic_fetch_add(&s->calls, 1);
    (void)gocc_chan_recv(s->release, NULL, NULL); /* the send blocks until read */
    atomic_fetch_add(&s->finished, 1);
}

/* TestAfterFuncCalledAfterCancel + TestAfterFuncCalledAsynchronously: not
 * called before the cancel; called once after it, in its own task (counted
 * by gocc_tasks_live, on another thread); cancel does not wait for it;
 * stop afterwards returns false. */
static void test_after_func_called_after_cancel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    af_state s;
    memset(&s, 0, sizeof s);
    s.release = gocc_chan_new(0, 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_after_func_t *stop = NULL;
    assert_int_equal(gocc_ctx_after_func(ctx, af_block, &s, &stop), 0);
    assert_non_null(stop);
    sleep_ns(20 * GOCC_MILLISECOND);
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_int_equal(gocc_tasks_live(), start); /* nothing runs yet */

    gocc_ctx_cancel(ctx); /* returns although fn will block */
    assert_int_equal(wait_int(&s.calls, 1, QUIESCENT), 1);
    assert_int_equal(atomic_load(&s.on_test_thread), 0);
    CHECK_GE(atomic_load(&s.live_seen), start + 1);
    assert_int_equal(gocc_tasks_live(), start + 1); /* fn is a task */
    assert_false(gocc_ctx_after_func_stop(stop));
    assert_int_equal(gocc_chan_send(s.release, NULL, NULL), 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(atomic_load(&s.finished), 1);
    assert_false(gocc_ctx_after_func_stop(stop));
    gocc_ctx_cancel(ctx); /* again: fn does not run twice */
    sleep_ns(10 * GOCC_MILLISECOND);
    assert_int_equal(atomic_load(&s.calls), 1);
    gocc_ctx_release(ctx);
    gocc_chan_release(s.release);
    ASSERT_NO_TASKS(start);
}

/* TestAfterFuncCalledAfterTimeout */
static void test_after_func_called_after_timeout(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    af_state s;
    memset(&s, 0, sizeof s);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_MILLISECOND);
    assert_int_equal(gocc_ctx_after_func(ctx, af_count, &s, NULL), 0);
    assert_int_equal(wait_int(&s.finished, 1, QUIESCENT), 1);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(gocc_ctx_err(ctx), GOCC_EDEADLINE);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* TestAfterFuncCalledImmediately: an already-done context runs fn at once
 * (in a task). */
static void test_after_func_called_immediately(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    af_state s;
    memset(&s, 0, sizeof s);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel(ctx);
    gocc_after_func_t *h = NULL;
    assert_int_equal(gocc_ctx_after_func(ctx, af_count, &s, &h), 0);
    assert_non_null(h);
    assert_int_equal(wait_int(&s.finished, 1, QUIESCENT), 1);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(atomic_load(&s.on_test_thread), 0);
    assert_false(gocc_ctx_after_func_stop(h));
    gocc_ctx_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* TestAfterFuncNotCalledAfterStop */
static void test_after_func_not_called_after_stop(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    af_state s;
    memset(&s, 0, sizeof s);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_after_func_t *h = NULL;
    assert_int_equal(gocc_ctx_after_func(ctx, af_count, &s, &h), 0);
    assert_non_null(h);
    assert_true(gocc_ctx_after_func_stop(h));
    gocc_ctx_cancel(ctx);
    sleep_ns(50 * GOCC_MILLISECOND);
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_false(gocc_ctx_after_func_stop(h));
    assert_false(gocc_ctx_after_func_stop(h));
    assert_int_equal(gocc_tasks_live(), start);
    gocc_ctx_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* Clarification "after_func handle": a never-done context registers nothing
 * that runs; stop returns true (the first time). */
static void test_after_func_never_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    af_state s;
    memset(&s, 0, sizeof s);
    gocc_ctx_t *p = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *w = gocc_ctx_without_cancel(p);
    gocc_ctx_t *bv = gocc_ctx_with_value(NULL, &key, NULL);
    gocc_after_func_t *h1 = NULL, *h2 = NULL, *h3 = NULL;
    assert_int_equal(gocc_ctx_after_func(gocc_ctx_background(), af_count, &s, &h1), 0);
    assert_int_equal(gocc_ctx_after_func(w, af_count, &s, &h2), 0);
    assert_int_equal(gocc_ctx_after_func(bv, af_count, &s, &h3), 0);
    assert_int_equal(gocc_ctx_after_func(w, af_count, &s, NULL), 0);
    gocc_ctx_cancel(p); /* does not reach w */
    sleep_ns(20 * GOCC_MILLISECOND);
    assert_int_equal(atomic_load(&s.calls), 0);
    assert_int_equal(gocc_tasks_live(), start);
    assert_true(gocc_ctx_after_func_stop(h1));
    assert_true(gocc_ctx_after_func_stop(h2));
    assert_true(gocc_ctx_after_func_stop(h3));
    assert_false(gocc_ctx_after_func_stop(h2)); /* later stops: false */
    /* a second registration on background has its own first stop */
    gocc_after_func_t *h4 = NULL;
    assert_int_equal(gocc_ctx_after_func(gocc_ctx_background(), af_count, &s, &h4), 0);
    assert_true(gocc_ctx_after_func_stop(h4));
    gocc_ctx_release(bv);
    gocc_ctx_release(w);
    gocc_ctx_release(p);
    ASSERT_NO_TASKS(start);
}

/* after_func: argument checking, many functions on one context, a NULL
 * handle, a function on a child run by the parent's cancel, and the
 * pending function's reference to its context. */
static void test_after_func_misc(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    af_state s;
    memset(&s, 0, sizeof s);
    gocc_after_func_t *h = (gocc_after_func_t *)&s;
    assert_int_equal(gocc_ctx_after_func(NULL, af_count, &s, &h), GOCC_EINVAL);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_int_equal(gocc_ctx_after_func(ctx, NULL, &s, &h), GOCC_EINVAL);
    assert_false(gocc_ctx_after_func_stop(NULL));

    /* 16 functions, some stopped, stop_handle NULL for some */
    enum { N = 16 };
    gocc_after_func_t *hs[N];
    for (int i = 0; i < N; i++) {
        hs[i] = NULL;
        assert_int_equal(gocc_ctx_after_func(ctx, af_count, &s, (i % 4 == 3) ? NULL : &hs[i]), 0);
    }
    int stopped = 0;
    for (int i = 0; i < N; i += 4) {
        assert_true(gocc_ctx_after_func_stop(hs[i]));
        stopped++;
    }
    gocc_ctx_cancel(ctx);
    assert_int_equal(wait_int(&s.finished, N - stopped, QUIESCENT), N - stopped);
    ASSERT_NO_TASKS(start);
    sleep_ns(10 * GOCC_MILLISECOND);
    assert_int_equal(atomic_load(&s.calls), N - stopped);
    gocc_ctx_release(ctx);

    /* registered on a child (then released by its creator), run by the
     * parent's cancel: the pending function keeps the child alive */
    memset(&s, 0, sizeof s);
    gocc_ctx_t *p = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *c = gocc_ctx_with_timeout(p, VERY_LONG);
    assert_int_equal(gocc_ctx_after_func(c, af_count, &s, NULL), 0);
    gocc_ctx_release(c);
    gocc_ctx_cancel(p);
    assert_int_equal(wait_int(&s.finished, 1, QUIESCENT), 1);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.calls), 1);
    gocc_ctx_release(p);
    ASSERT_NO_TASKS(start);
}

/* stop racing with cancel: for each registration exactly one of "stop
 * returned true" and "fn ran" happens. */
static _Atomic int g_race_ran[4096];

static void af_slot(void *arg) { atomic_fetch_add(&g_race_ran[(uintptr_t)arg], 1); }

static int cancel_now_task(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_ctx_cancel(ctx);
    return 0;
}

static void test_after_func_stop_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    int n = SCALE(4000);
    if (n > 4096) n = 4096;
    static bool stopped[4096];
    uint64_t r = (uint64_t)gocc_now() | 1;
    for (int i = 0; i < n; i++) {
        atomic_store(&g_race_ran[i], 0);
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        gocc_after_func_t *h = NULL;
        assert_int_equal(gocc_ctx_after_func(ctx, af_slot, (void *)(uintptr_t)i, &h), 0);
        assert_int_equal(gocc_go(cancel_now_task, ctx, NULL), 0);
        int64_t spin = (int64_t)(xorshift(&r) % 60) * GOCC_MICROSECOND, t0 = gocc_now();
        while (gocc_now() - t0 < spin) {
        }
        stopped[i] = gocc_ctx_after_func_stop(h);
        if (gocc_ctx_after_func_stop(h)) fail_msg("iteration %d: second stop returned true", i);
        gocc_ctx_release(ctx);
    }
    ASSERT_NO_TASKS(start);
    int nstopped = 0, nran = 0;
    for (int i = 0; i < n; i++) {
        int ran = atomic_load(&g_race_ran[i]);
        if (ran + (stopped[i] ? 1 : 0) != 1)
            fail_msg("iteration %d: fn ran %d times, stop returned %d", i, ran, stopped[i]);
        nstopped += stopped[i];
        nran += ran;
    }
    print_message("  stop won %d times, fn ran %d times\n", nstopped, nran);
    ASSERT_NO_TASKS(start);
}

/* NULL context: background for the queries, harmless for release/cancel. */
static void test_null_handling(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 0;
    assert_int_equal(gocc_ctx_err(NULL), 0);
    assert_int_equal(gocc_ctx_cause(NULL), 0);
    assert_null(gocc_ctx_value(NULL, &key));
    assert_null(gocc_ctx_done(NULL));
    int64_t d = 3;
    assert_false(gocc_ctx_deadline(NULL, &d));
    gocc_ctx_release(NULL);
    gocc_ctx_cancel(NULL);
    gocc_ctx_cancel_cause(NULL, 5);
    gocc_ctx_t *r = gocc_ctx_retain(NULL);
    assert_true(r == NULL || r == gocc_ctx_background());
    gocc_ctx_t *v = gocc_ctx_with_value(NULL, &key, &d);
    assert_ptr_equal(gocc_ctx_value(v, &key), &d);
    gocc_ctx_t *t = gocc_ctx_with_deadline(NULL, gocc_now() + VERY_LONG);
    gocc_ctx_t *w = gocc_ctx_without_cancel(NULL);
    assert_non_null(t);
    assert_non_null(w);
    gocc_ctx_cancel(t);
    gocc_ctx_release(w);
    gocc_ctx_release(t);
    gocc_ctx_release(v);
    ASSERT_NO_TASKS(start);
}

/* ---- stress ---- */

/* Many threads build and cancel subtrees of one root while the root is
 * cancelled (with a cause) under them. After a thread has seen the root's
 * cancellation, every child it makes is born done with the root's cause.
 * Tasks blocked on leaves are all woken. TSan must stay clean. */
typedef struct tree_stress {
    gocc_ctx_t *root;
    gocc_chan_t *never;
    _Atomic int root_canceled;
    _Atomic long iters;
    _Atomic long errors;
    _Atomic long registered, stop_true;
    _Atomic int af_ran;
    _Atomic long waiters, waiter_bad;
    uint64_t seed;
    int after_iters;
    _Atomic int last_error_line;
} tree_stress;

static const char tree_key = 0;
static char tree_val[] = "tree";

static int tree_waiter(gocc_ctx_t *ctx, void *arg) {
    tree_stress *s = arg;
    if (gocc_chan_recv(s->never, NULL, ctx) != GOCC_ECANCELED) atomic_fetch_add(&s->waiter_bad, 1);
    return 0;
}

static void af_tree(void *arg) { atomic_fetch_add(&((tree_stress *)arg)->af_ran, 1); }

#define TREE_CHECK(cond)                                 \
    do {                                                 \
        if (!(cond)) {                                   \
            atomic_fetch_add(&s->errors, 1);             \
            atomic_store(&s->last_error_line, __LINE__); \
        }                                                \
    } while (0)

static void *tree_thread(void *arg) {
    tree_stress *s = arg;
    uint64_t r = s->seed ^ (uint64_t)(uintptr_t)&r;
    r |= 1;
    int after = 0;
    for (long it = 0;; it++) {
        int seen = atomic_load_explicit(&s->root_canceled, memory_order_acquire);
        if (seen && ++after > s->after_iters) break;
        gocc_ctx_t *a = gocc_ctx_with_cancel(s->root);
        gocc_ctx_t *v = gocc_ctx_with_value(a, &tree_key, tree_val);
        gocc_ctx_t *b = gocc_ctx_with_timeout(v, VERY_LONG);
        gocc_ctx_t *c = gocc_ctx_with_cancel(b);
        if (!a || !v || !b || !c) {
            atomic_fetch_add(&s->errors, 1);
            break;
        }
        gocc_after_func_t *h = NULL;
        if (gocc_ctx_after_func(c, af_tree, s, &h) == 0)
            atomic_fetch_add(&s->registered, 1);
        else
            atomic_fetch_add(&s->errors, 1);
        if (seen) {
            /* born done, with the root's error and cause */
            TREE_CHECK(gocc_ctx_err(a) == GOCC_ECANCELED);
            TREE_CHECK(gocc_ctx_err(c) == GOCC_ECANCELED);
            TREE_CHECK(gocc_ctx_cause(c) == -999);
            TREE_CHECK(done_closed(c));
        }
        TREE_CHECK(gocc_ctx_value(c, &tree_key) == tree_val);
        if ((it & 15) == 0) {
            if (gocc_go(tree_waiter, c, s) == 0)
                atomic_fetch_add(&s->waiters, 1);
            else
                atomic_fetch_add(&s->errors, 1);
        }
        switch (xorshift(&r) % 4) {
        case 0:
            gocc_ctx_cancel(a);
            TREE_CHECK(gocc_ctx_err(c) == GOCC_ECANCELED && done_closed(c));
            break;
        case 1:
            gocc_ctx_cancel_cause(b, 5);
            TREE_CHECK(gocc_ctx_err(c) == GOCC_ECANCELED && done_closed(c));
            break;
        case 2:
            gocc_ctx_cancel(c);
            TREE_CHECK(gocc_ctx_err(c) == GOCC_ECANCELED);
            break;
        default: break;
        }
        if (gocc_ctx_after_func_stop(h)) atomic_fetch_add(&s->stop_true, 1);
        gocc_ctx_cancel(c);
        gocc_ctx_cancel(b);
        gocc_ctx_cancel(a);
        gocc_ctx_release(c);
        gocc_ctx_release(b);
        gocc_ctx_release(v);
        gocc_ctx_release(a);
        atomic_fetch_add(&s->iters, 1);
    }
    return NULL;
}

static void test_stress_concurrent_trees(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    enum { THREADS = 8 };
    int rounds = 4;
    for (int round = 0; round < rounds; round++) {
        tree_stress *s = calloc(1, sizeof *s);
        assert_non_null(s);
        s->root = gocc_ctx_with_cancel(NULL);
        s->never = gocc_chan_new(0, 0);
        s->seed = (uint64_t)gocc_now();
        s->after_iters = SCALE(200);
        test_thread th[THREADS];
        for (int i = 0; i < THREADS; i++) test_thread_start(&th[i], tree_thread, s);
        /* let them build trees for a while, then cancel the root under them */
        int64_t end = gocc_now() + 2 * GOCC_SECOND;
        while (atomic_load(&s->iters) < SCALE(2000) && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
        gocc_ctx_cancel_cause(s->root, -999);
        atomic_store_explicit(&s->root_canceled, 1, memory_order_release);
        for (int i = 0; i < THREADS; i++) test_thread_join(&th[i]);
        assert_int_equal(test_wait_tasks(start, 20 * GOCC_SECOND), start);
        if (atomic_load(&s->errors) != 0)
            fail_msg("round %d: %ld inconsistencies (last at line %d)", round,
                     atomic_load(&s->errors), atomic_load(&s->last_error_line));
        assert_int_equal(atomic_load(&s->waiter_bad), 0);
        assert_true(atomic_load(&s->waiters) > 0);
        CHECK_GE(atomic_load(&s->iters), (long)THREADS * SCALE(200));
        /* every registered function either ran once or was stopped */
        assert_int_equal(atomic_load(&s->af_ran) + atomic_load(&s->stop_true),
                         atomic_load(&s->registered));
        ASSERT_DONE(s->root, GOCC_ECANCELED);
        gocc_ctx_release(s->root);
        gocc_chan_release(s->never);
        free(s);
    }
    ASSERT_NO_TASKS(start);
}

/* 1000 contexts with long timeouts cancelled early: nothing leaks (ASan),
 * no task is started; 1000 short timeouts all fire. */
static void test_stress_many_timeouts(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    enum { N = 1000 };
    gocc_ctx_t **c = calloc(N, sizeof *c);
    assert_non_null(c);
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    for (int i = 0; i < N; i++) {
        c[i] = gocc_ctx_with_timeout((i & 1) ? parent : NULL, 600 * GOCC_SECOND + i);
        assert_non_null(c[i]);
        if (i % 3 == 0) (void)gocc_ctx_done(c[i]);
    }
    assert_int_equal(gocc_tasks_live(), start); /* timers are not tasks */
    for (int i = 0; i < N; i += 2) gocc_ctx_cancel(c[i]);
    gocc_ctx_cancel(parent); /* the odd ones */
    for (int i = 0; i < N; i++) {
        ASSERT_DONE(c[i], GOCC_ECANCELED);
        gocc_ctx_release(c[i]);
    }
    gocc_ctx_release(parent);
    assert_int_equal(gocc_tasks_live(), start);

    /* short timeouts, 1..20 ms, all fire with GOCC_EDEADLINE */
    int64_t t0 = gocc_now();
    for (int i = 0; i < N; i++) {
        c[i] = gocc_ctx_with_timeout(NULL, (1 + i % 20) * GOCC_MILLISECOND);
        assert_non_null(c[i]);
    }
    for (int i = 0; i < N; i++) {
        if (wait_done(c[i], QUIESCENT) != GOCC_ECLOSED) fail_msg("context %d never timed out", i);
        assert_int_equal(gocc_ctx_err(c[i]), GOCC_EDEADLINE);
    }
    CHECK_LT(gocc_now() - t0, 10 * GOCC_SECOND);
    for (int i = 0; i < N; i++) {
        gocc_ctx_cancel(c[i]);
        gocc_ctx_release(c[i]);
    }
    free(c);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    g_main_thread = pthread_self();
    test_main_init("test-ctx", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_background),
        GOCC_TEST(test_with_cancel),
        GOCC_TEST(test_parent_finishes_child),
        GOCC_TEST(test_child_finishes_first),
        GOCC_TEST(test_deadline),
        GOCC_TEST(test_timeout),
        GOCC_TEST(test_timeout_overflow),
        GOCC_TEST(test_canceled_timeout),
        GOCC_TEST(test_values),
        GOCC_TEST(test_with_value_null_key),
        GOCC_TEST(test_simultaneous_cancels),
        GOCC_TEST(test_interlocked_cancels),
        GOCC_TEST(test_layers_cancel),
        GOCC_TEST(test_layers_timeout),
        GOCC_TEST(test_cancel_removes),
        GOCC_TEST(test_with_cancel_canceled_parent),
        GOCC_TEST(test_cause),
        GOCC_TEST(test_cause_race),
        GOCC_TEST(test_without_cancel),
        GOCC_TEST(test_cancel_not_cancellable),
        GOCC_TEST(test_cancel_idempotent),
        GOCC_TEST(test_done_channel),
        GOCC_TEST(test_cancel_from_waiting_task),
        GOCC_TEST(test_cancel_propagates_synchronously),
        GOCC_TEST(test_release_and_lifetime),
        GOCC_TEST(test_after_func_called_after_cancel),
        GOCC_TEST(test_after_func_called_after_timeout),
        GOCC_TEST(test_after_func_called_immediately),
        GOCC_TEST(test_after_func_not_called_after_stop),
        GOCC_TEST(test_after_func_never_done),
        GOCC_TEST(test_after_func_misc),
        GOCC_TEST(test_after_func_stop_race),
        GOCC_TEST(test_null_handling),
        GOCC_TEST(test_stress_concurrent_trees),
        GOCC_TEST(test_stress_many_timeouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
