/*
 * test-lockcheck.c - the lock witness (src/lockcheck.c) fires on every
 * broken lock contract and stays quiet on correct nesting. Built only
 * where the checks are compiled in (GOCC_LOCK_CHECKS: debug and sanitizer
 * builds, or -Dlock_checks=enabled).
 *
 * Each violation runs in a forked child with its stderr on a pipe, using
 * the library's internal functions (gocc-internal.h) on real objects where
 * one can be reached, on bare ranked mutexes otherwise. The child must die
 * by SIGABRT, and what it wrote must be exactly one line, the expected
 * "libgocc: lock check failed: <check>: ..." with the ranks involved. The
 * correct nestings run in a child too (it must exit 0 with nothing on
 * stderr); the condvar test runs threads in the test process itself, after
 * every fork.
 */
#include "test-common.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>
#include <sys/wait.h>

#include "gocc-internal.h"

#if !GOCC_LOCK_CHECKS
#error "test-lockcheck needs a build with GOCC_LOCK_CHECKS (tests/meson.build)"
#endif

#define PREFIX "libgocc: lock check failed: "

/* ---- running a child ---- */


/* The child died by SIGABRT and wrote exactly one line, matching @p want
 * (printf-style, then '*' as a wildcard for addresses and paths). */
__attribute__((format(printf, 2, 3))) static void expect_abort(void (*fn)(void), const char *want,
                                                               ...) {
    outcome o;
    run_child(fn, &o);
    char line[512];
    va_list ap;
    va_start(ap, want);
    vsnprintf(line, sizeof line, want, ap);
    va_end(ap);
    strcat(line, "\n");
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT)
        fail_msg("child did not abort (status 0x%x); stderr:\n%s", o.status, o.err);
    if (strchr(o.err, '\n') != o.err + strlen(o.err) - 1 || !test_glob(line, o.err))
        fail_msg("child's stderr:\n%s\nwanted one line:\n%s", o.err, line);
}

static void expect_clean(void (*fn)(void)) {
    outcome o;
    run_child(fn, &o);
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0 || o.err[0] != '\0')
        fail_msg("child status 0x%x, stderr:\n%s", o.status, o.err);
}

/* ---- rank order ---- */

/* The timer heap's lock held (as the fork handler holds it), then a
 * context cancelled: CTX comes before TIMER_HEAP. */
static void child_reversal_real(void) {
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    gocc__timer_fork_prepare();
    gocc_ctx_cancel(c);
}

static void test_rank_reversal(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_reversal_real,
                 PREFIX "lock order: taking ctx (rank %d) while holding timer-heap (rank %d)",
                 GOCC_LOCK_CTX, GOCC_LOCK_TIMER_HEAP);
}

static gocc__mutex ma, mb;

static void child_reversal_bare(void) {
    gocc__mutex_init(&ma, GOCC_LOCK_SEM);
    gocc__mutex_init(&mb, GOCC_LOCK_RATELIMIT);
    gocc__lock(&ma);
    gocc__lock(&mb);
}

/* A leaf held (the thread cache), then a later rank. */
static void child_leaf(void) {
    gocc__mutex_init(&ma, GOCC_LOCK_RUNTIME);
    gocc__mutex_init(&mb, GOCC_LOCK_SEM);
    gocc__lock(&ma);
    gocc__lock(&mb);
}

/* Two locks of a rank that does not nest. */
static void child_same_rank(void) {
    gocc__mutex_init(&ma, GOCC_LOCK_GROUP);
    gocc__mutex_init(&mb, GOCC_LOCK_GROUP);
    gocc__lock(&ma);
    gocc__lock(&mb);
}

/* Two channels, the higher address first (select takes them upwards). */
static void child_chan_order(void) {
    gocc_chan_t *a = gocc_chan_new(0, 0), *b = gocc_chan_new(0, 0);
    if ((uintptr_t)a < (uintptr_t)b) {
        gocc_chan_t *t = a;
        a = b;
        b = t;
    }
    gocc__lock(&a->mu);
    gocc__lock(&b->mu);
}

/* A lock taken twice by its holder. */
static void child_relock(void) {
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    gocc__lock(&ch->mu);
    gocc__lock(&ch->mu);
}

static void test_rank_rules(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_reversal_bare,
                 PREFIX "lock order: taking ratelimit (rank %d) while holding sem (rank %d)",
                 GOCC_LOCK_RATELIMIT, GOCC_LOCK_SEM);
    expect_abort(child_leaf,
                 PREFIX "lock order: taking sem (rank %d) while holding runtime (rank %d), a leaf",
                 GOCC_LOCK_SEM, GOCC_LOCK_RUNTIME);
    expect_abort(child_same_rank,
                 PREFIX "lock order: taking group (rank %d) while holding group (rank %d): "
                        "one of this rank at a time",
                 GOCC_LOCK_GROUP, GOCC_LOCK_GROUP);
    expect_abort(child_chan_order,
                 PREFIX "lock order: taking chan (rank %d) at * while holding chan (rank %d) "
                        "at *: same rank only in increasing address",
                 GOCC_LOCK_CHAN, GOCC_LOCK_CHAN);
    expect_abort(child_relock,
                 PREFIX "lock order: taking chan (rank %d) at *, which this thread already holds",
                 GOCC_LOCK_CHAN);
}

/* ---- held by me ---- */

/* A *_locked helper called without its lock. */
static void child_poll_unlocked(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 1);
    int v = 0;
    bool ok;
    gocc__waiter *wake = NULL;
    (void)gocc__chan_poll_locked(ch, GOCC_RECV, &v, &ok, &wake);
}

static void child_unlock_unheld(void) {
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    gocc__unlock(&ch->mu);
}

static pthread_cond_t cv_test = PTHREAD_COND_INITIALIZER;

static void child_wait_unheld(void) {
    gocc__mutex_init(&ma, GOCC_LOCK_TIMER_HEAP);
    gocc__cond_wait(&cv_test, &ma);
}

static void test_not_held(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_poll_unlocked,
                 PREFIX "not held: chan (rank %d) at * in *poll_locked (*src/chan.c:*)",
                 GOCC_LOCK_CHAN);
    expect_abort(child_unlock_unheld,
                 PREFIX "not held: unlocking chan (rank %d) at *, which this thread does not hold",
                 GOCC_LOCK_CHAN);
    expect_abort(child_wait_unheld,
                 PREFIX "not held: waiting on a condition with timer-heap (rank %d) at *, which "
                        "this thread does not hold",
                 GOCC_LOCK_TIMER_HEAP);
}

/* ---- no lock across a park ---- */

static void child_park_held(void) {
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    gocc__waiter *w = gocc__self(); /* before the lock: it may take the registry's */
    gocc__waiter_arm(w);
    gocc__lock(&ch->mu);
    gocc__park(w);
}

/* Two contexts' locks (parent, child) and a channel's, then a timed park. */
static void child_park_until_held(void) {
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    gocc__waiter *w = gocc__self();
    gocc__waiter_arm(w);
    gocc__mutex_init(&ma, GOCC_LOCK_CTX);
    gocc__mutex_init(&mb, GOCC_LOCK_CTX);
    gocc__lock(&ma);
    gocc__lock(&mb);
    gocc__lock(&ch->mu);
    (void)gocc__park_until(w, gocc_now() + GOCC_MILLISECOND);
}

/* The waitgroup's lock bit is a lock too. */
static void child_park_waitgroup(void) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    gocc__waiter *w = gocc__self();
    gocc__waiter_arm(w);
    gocc__witness_acquire(&wg.state_, GOCC_LOCK_WAITGROUP);
    gocc__park(w);
}

static void test_held_at_park(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_park_held, PREFIX "held at park: chan (rank %d) in gocc__park",
                 GOCC_LOCK_CHAN);
    expect_abort(child_park_until_held,
                 PREFIX "held at park: chan (rank %d), ctx (rank %d) x2 in gocc__park_until",
                 GOCC_LOCK_CHAN, GOCC_LOCK_CTX);
    expect_abort(child_park_waitgroup, PREFIX "held at park: waitgroup (rank %d) in gocc__park",
                 GOCC_LOCK_WAITGROUP);
}

/* ---- correct nesting passes ---- */

static int trim_frees;
static void *obj_new(void *ud) {
    (void)ud;
    return malloc(16);
}
static void obj_free(void *obj, void *ud) {
    (void)ud;
    trim_frees++;
    free(obj);
}

static void child_correct(void) {
    /* Every rank that is not a leaf in order, each nested in all before
     * it, then the channels (a leaf, the last rank): the nesting ranks
     * twice (contexts in any order, channels upwards). Dropped out of
     * order, checked on the way. */
    static gocc__mutex m[GOCC_LOCK_NRANKS], extra_ctx;
    for (int r = 1; r < GOCC_LOCK_NRANKS; r++) gocc__mutex_init(&m[r], r);
    gocc__mutex_init(&extra_ctx, GOCC_LOCK_CTX);
    for (int r = 1; r <= GOCC_LOCK_TIMER_HEAP; r++) {
        gocc__lock(&m[r]);
        if (r == GOCC_LOCK_CTX) gocc__lock(&extra_ctx);
    }
    gocc_chan_t *a = gocc_chan_new(0, 0), *b = gocc_chan_new(0, 0);
    if ((uintptr_t)a > (uintptr_t)b) {
        gocc_chan_t *t = a;
        a = b;
        b = t;
    }
    gocc__lock(&a->mu);
    gocc__lock(&b->mu);
    gocc__assert_held(&a->mu);
    gocc__assert_held(&m[GOCC_LOCK_CTX]);
    gocc__unlock(&a->mu); /* out of order */
    gocc__assert_held(&b->mu);
    gocc__unlock(&m[GOCC_LOCK_CTX]);
    gocc__unlock(&b->mu);
    gocc__unlock(&extra_ctx);
    for (int r = GOCC_LOCK_TIMER_HEAP; r >= 1; r--)
        if (r != GOCC_LOCK_CTX) gocc__unlock(&m[r]);
    gocc__assert_no_locks();

    /* The library's own nestings. A context tree with done channels and a
     * deadline, cancelled from the root: parent before child, each done
     * channel and the timer heap under its context's lock. */
    gocc_ctx_t *root = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *mid = gocc_ctx_with_timeout(root, GOCC_SECOND);
    gocc_ctx_t *leaf = gocc_ctx_with_cancel(mid);
    (void)gocc_ctx_done(root);
    (void)gocc_ctx_done(mid);
    (void)gocc_ctx_done(leaf);
    gocc_ctx_cancel(root);
    if (gocc_ctx_err(leaf) != GOCC_ECANCELED) _exit(3);
    gocc_ctx_release(leaf);
    gocc_ctx_release(mid);
    gocc_ctx_release(root);

    /* select over many channels: all locked at once, upwards. */
    gocc_chan_t *chans[12];
    gocc_case_t cases[12];
    int v = 7;
    for (int i = 0; i < 12; i++) {
        chans[i] = gocc_chan_new(sizeof(int), 1);
        cases[i] = (gocc_case_t){.ch = chans[i], .dir = GOCC_RECV, .elem = &v};
    }
    if (gocc_select_try(cases, 12) != GOCC_EAGAIN) _exit(4);
    (void)gocc_chan_send(chans[5], &v, NULL);
    if (gocc_select(cases, 12, NULL) != 5) _exit(5);

    /* A timer: its lock, then the heap's (and a condvar wait on it) and a
     * channel's. A sleep parks with nothing held. */
    gocc_timer_t *t = gocc_timer_new(GOCC_MILLISECOND);
    (void)gocc_timer_reset(t, GOCC_SECOND);
    (void)gocc_timer_stop(t);
    gocc_timer_free(t);
    gocc_sleep(GOCC_MILLISECOND, NULL);

    /* pub/sub: the read lock, then channels. */
    gocc_pubsub_t *ps = gocc_pubsub_new(sizeof(int));
    gocc_chan_t *sub = gocc_pubsub_subscribe(ps, 1);
    if (gocc_pubsub_publish(ps, &v) != 1 || gocc_pubsub_dropped(ps, sub) != 0) _exit(6);
    gocc_pubsub_free(ps);
    gocc_chan_release(sub);

    /* The object pool: trim lock, then the depot's (free_fn under it). */
    gocc_pool_t *pool = gocc_pool_new(obj_new, obj_free, NULL);
    void *o1 = gocc_pool_get(pool);
    gocc_pool_put(pool, o1);
    gocc_pool_trim(pool);
    gocc_pool_trim(pool);
    gocc_pool_free(pool);

    /* The fork handlers' order, without forking. */
    gocc__pool_fork_prepare();
    gocc__obs_fork_prepare();
    gocc__timer_fork_prepare();
    gocc__timer_fork_parent();
    gocc__obs_fork_parent();
    gocc__pool_fork_parent();

    gocc__assert_no_locks();
    for (int i = 0; i < 12; i++) gocc_chan_release(chans[i]);
}

static void test_correct_nesting(void **state) {
    (void)state;
    TEST_NAME();
    expect_clean(child_correct);
}

/* ---- condition variables: the lock is given up during the wait ---- */

static gocc__mutex cv_mu;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_phase; /* under cv_mu */

static void *cv_waiter(void *arg) {
    (void)arg;
    gocc__lock(&cv_mu);
    cv_phase = 1;
    pthread_cond_broadcast(&cv);
    while (cv_phase != 2) gocc__cond_wait(&cv, &cv_mu); /* the main thread takes it meanwhile */
    gocc__assert_held(&cv_mu);                          /* ours again */
    cv_phase = 3;
    pthread_cond_broadcast(&cv);
    gocc__unlock(&cv_mu);
    gocc__assert_no_locks();
    return NULL;
}

static void test_condvar(void **state) {
    (void)state;
    TEST_NAME();
    gocc__mutex_init(&cv_mu, GOCC_LOCK_TIMER_HEAP);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cv_waiter, NULL), 0);
    gocc__lock(&cv_mu);
    while (cv_phase != 1) gocc__cond_wait(&cv, &cv_mu);
    gocc__assert_held(&cv_mu); /* held by us while the waiter waits */
    cv_phase = 2;
    pthread_cond_broadcast(&cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    while (cv_phase != 3)
        if (gocc__cond_timedwait(&cv, &cv_mu, &until) == ETIMEDOUT) break;
    gocc__assert_held(&cv_mu);
    assert_int_equal(cv_phase, 3);
    gocc__unlock(&cv_mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    gocc__assert_no_locks();
    gocc__mutex_destroy(&cv_mu);
}

int main(void) {
    /* The alarm only: each check runs in a forked child that starts
     * runtime threads, which ThreadSanitizer refuses after a fork of a
     * process with threads (the stuck watchdog's would be one). */
    test_watchdog_install("test-lockcheck", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_rank_reversal),
        GOCC_TEST(test_rank_rules),
        GOCC_TEST(test_not_held),
        GOCC_TEST(test_held_at_park),
        GOCC_TEST(test_correct_nesting),
        GOCC_TEST(test_condvar), /* last: it starts a thread, the others fork */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
