/*
 * test-process.c - process-level behaviour: signals delivered to a thread
 * that is blocked in a libgocc call (design.md, "Process-level behaviour").
 *
 * The application's threads keep their signal masks (only the runtime's
 * own threads block every signal), so a signal may land on a thread parked
 * in any blocking call. With a handler installed WITHOUT SA_RESTART, the
 * futex wait under the park returns EINTR; the park loop must wait again,
 * so the call returns exactly what it would have returned without the
 * signals: no spurious error, no early return, no lost wake-up.
 *
 * How: a plain pthread (not a task: task threads block all signals) blocks
 * in the call; a storm thread sends it SIGUSR1 with pthread_kill in a
 * tight loop; the handler counts. Two shapes of test:
 *
 *  - woken calls (chan recv/send, select, sem acquire, waitgroup wait,
 *    context cancel, group wait, once, workpool submit): in each of ROUNDS
 *    rounds the thread blocks, is seen asleep, takes STORM/ROUNDS handled
 *    signals while the test checks it has NOT returned, then the test
 *    wakes it (send, release, done, cancel, ...) with the storm still on;
 *    the call must return 0 (or the cancel's error) with the value sent.
 *  - calls that end by themselves (sleep, a deadline context, a timer, a
 *    rate limiter wait, sem acquire with a deadline): the thread repeats
 *    the call under the storm until STORM signals were handled; each must
 *    return its normal result and last at least its duration, and each
 *    deadline fires once (its after_func runs exactly once).
 *
 * test_signal_storm_interrupts_syscalls shows the harness can fail: under
 * the same storm a plain nanosleep returns EINTR.
 *
 * Also: tasks of every origin (gocc_go, group, worker pool, after_func)
 * run with every signal blocked, and the recommended way to act on a
 * signal works: block it before threads start, sigwait on a task, cancel
 * a context from there (test_signal_sigwait_cancels).
 *
 * fork() is tested with the runtime's fork support (test-runtime.c); a
 * process exiting while tasks run is tests/exit-clean.c.
 */
#include "test-common.h"

#include <stdlib.h>
#include <sys/syscall.h>

#define STORM SCALE(2000) /* handled signals per test */
#define ROUNDS 4          /* wake-ups per woken-call test */

/* ------------------------------------------------------------------------ */
/* the handler and the storm */

static atomic_int g_handled;

static void on_signal(int sig) {
    (void)sig;
    atomic_fetch_add_explicit(&g_handled, 1, memory_order_relaxed);
}

static struct sigaction g_old_action;

static int group_setup(void **state) {
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted system calls fail with EINTR */
    return sigaction(SIGUSR1, &sa, &g_old_action);
}

static int group_teardown(void **state) {
    (void)state;
    return sigaction(SIGUSR1, &g_old_action, NULL);
}

typedef struct storm {
    pthread_t target;
    pthread_t thread;
    atomic_int stop;
    atomic_int sent;
} storm_t;

static void *storm_main(void *arg) {
    storm_t *s = arg;
    while (!atomic_load(&s->stop)) {
        if (pthread_kill(s->target, SIGUSR1) == 0) atomic_fetch_add(&s->sent, 1);
        sched_yield();
    }
    return NULL;
}

static void storm_start(storm_t *s, pthread_t target) {
    s->target = target;
    atomic_init(&s->stop, 0);
    atomic_init(&s->sent, 0);
    assert_int_equal(pthread_create(&s->thread, NULL, storm_main, s), 0);
}

static void storm_stop(storm_t *s) {
    atomic_store(&s->stop, 1);
    assert_int_equal(pthread_join(s->thread, NULL), 0);
}

/* Wait (bounded) until the handler ran @p n more times than @p base. */
static void wait_handled(int base, int n) {
    int got = wait_int(&g_handled, base + n, SAFETY_NS) - base;
    if (got < n) fail_msg("only %d of %d signals handled within the bound", got, n);
}

/* True once the kernel reports thread @p tid asleep ('S'). */
static bool thread_sleeping(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

/* ------------------------------------------------------------------------ */
/* woken calls: a blocker thread, ROUNDS rounds, gated by the test */

typedef struct blocker {
    int (*call)(void *arg); /* the blocking call, on the blocker thread */
    void *arg;
    int rounds;
    pthread_t thread;
    atomic_int tid;
    atomic_int go;       /* round k may start once go > k */
    atomic_int in_call;  /* rounds that entered the call */
    atomic_int returned; /* rounds that returned */
    int rc[ROUNDS];
} blocker_t;

/* The blocker takes the signals only inside the call: between rounds it
 * keeps SIGUSR1 blocked (a continuous storm would otherwise keep its own
 * nanosleep from ever finishing). */
static void *blocker_main(void *p) {
    blocker_t *b = p;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    atomic_store(&b->tid, (int)syscall(SYS_gettid));
    for (int k = 0; k < b->rounds; k++) {
        while (atomic_load(&b->go) <= k) sleep_ns(50 * GOCC_MICROSECOND);
        atomic_store(&b->in_call, k + 1);
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
        int rc = b->call(b->arg);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        b->rc[k] = rc;
        atomic_store_explicit(&b->returned, k + 1, memory_order_release);
    }
    return NULL;
}

/*
 * Run @p call ROUNDS times on a blocker thread under a signal storm. Round
 * k: arm(arg, k) prepares the object, the call starts and is seen asleep,
 * STORM/ROUNDS signals are handled while it must stay blocked, wake(arg, k)
 * ends it, and check(arg, k, rc) judges the result (on this thread).
 */
static void run_woken(int (*call)(void *), void *arg, void (*arm)(void *, int),
                      void (*wake)(void *, int), void (*check)(void *, int, int)) {
    blocker_t b = {.call = call, .arg = arg, .rounds = ROUNDS};
    atomic_init(&b.tid, 0);
    atomic_init(&b.go, 0);
    atomic_init(&b.in_call, 0);
    atomic_init(&b.returned, 0);
    assert_int_equal(pthread_create(&b.thread, NULL, blocker_main, &b), 0);
    storm_t s;
    storm_start(&s, b.thread);
    for (int k = 0; k < ROUNDS; k++) {
        if (arm) arm(arg, k);
        atomic_store(&b.go, k + 1);
        assert_int_equal(wait_int(&b.in_call, k + 1, SAFETY_NS), k + 1);
        int64_t end = gocc_now() + SAFETY_NS;
        while (!thread_sleeping(atomic_load(&b.tid)) && gocc_now() < end)
            sleep_ns(GOCC_MILLISECOND);
        wait_handled(atomic_load(&g_handled), STORM / ROUNDS);
        if (atomic_load(&b.returned) != k)
            fail_msg("round %d: the call returned (%d) under the signals before the wake", k,
                     b.rc[k]);
        wake(arg, k);
        if (wait_int(&b.returned, k + 1, SAFETY_NS) != k + 1)
            fail_msg("round %d: the wake-up was lost: the call did not return", k);
        check(arg, k, b.rc[k]);
    }
    storm_stop(&s);
    assert_int_equal(pthread_join(b.thread, NULL), 0);
}

/* ---- channel receive ---- */

typedef struct chan_fix {
    gocc_chan_t *ch, *other, *full;
    int got, sent;
    bool ok;
} chan_fix;

static int call_recv(void *p) {
    chan_fix *f = p;
    return gocc_chan_recv(f->ch, &f->got, NULL);
}

static void wake_send(void *p, int k) {
    chan_fix *f = p;
    f->sent = 1000 + k;
    gocc_ctx_t *safety = safety_ctx();
    assert_int_equal(gocc_chan_send(f->ch, &f->sent, safety), 0);
    ctx_done_release(safety);
}

static void check_got(void *p, int k, int rc) {
    chan_fix *f = p;
    assert_int_equal(rc, 0);
    assert_int_equal(f->got, 1000 + k);
}

static void test_signal_chan_recv(void **state) {
    (void)state;
    TEST_NAME();
    chan_fix f = {.ch = chan_new(sizeof(int), 0)};
    run_woken(call_recv, &f, NULL, wake_send, check_got);
    gocc_chan_release(f.ch);
}

/* ---- channel send ---- */

static int call_send(void *p) {
    chan_fix *f = p;
    return gocc_chan_send(f->ch, &f->sent, NULL);
}

static void arm_send(void *p, int k) { ((chan_fix *)p)->sent = 2000 + k; }

static void wake_recv(void *p, int k) {
    chan_fix *f = p;
    gocc_ctx_t *safety = safety_ctx();
    assert_int_equal(gocc_chan_recv(f->ch, &f->got, safety), 0);
    ctx_done_release(safety);
    assert_int_equal(f->got, 2000 + k);
}

static void check_zero(void *p, int k, int rc) {
    (void)p;
    (void)k;
    assert_int_equal(rc, 0);
}

static void test_signal_chan_send(void **state) {
    (void)state;
    TEST_NAME();
    chan_fix f = {.ch = chan_new(sizeof(int), 0)};
    run_woken(call_send, &f, arm_send, wake_recv, check_zero);
    gocc_chan_release(f.ch);
}

/* ---- select over three channels ---- */

static int call_select(void *p) {
    chan_fix *f = p;
    int full_val = -1, other = -1;
    gocc_case_t c[3] = {{.ch = f->other, .dir = GOCC_RECV, .elem = &other},
                        {.ch = f->ch, .dir = GOCC_RECV, .elem = &f->got},
                        {.ch = f->full, .dir = GOCC_SEND, .elem = &full_val}};
    int i = gocc_select(c, 3, NULL);
    f->ok = c[1].ok;
    return i;
}

static void check_select(void *p, int k, int rc) {
    chan_fix *f = p;
    assert_int_equal(rc, 1);
    assert_true(f->ok);
    assert_int_equal(f->got, 1000 + k);
}

static void test_signal_select(void **state) {
    (void)state;
    TEST_NAME();
    chan_fix f = {.ch = chan_new(sizeof(int), 0),
                  .other = chan_new(sizeof(int), 0),
                  .full = chan_new(sizeof(int), 1)};
    int v = 1;
    assert_int_equal(gocc_chan_try_send(f.full, &v), 0);
    run_woken(call_select, &f, NULL, wake_send, check_select);
    assert_int_equal(gocc_chan_len(f.full), 1); /* the send case never ran */
    gocc_chan_release(f.ch);
    gocc_chan_release(f.other);
    gocc_chan_release(f.full);
}

/* ---- semaphore acquire ---- */

typedef struct sem_fix {
    gocc_sem_t *s;
} sem_fix;

static int call_acquire(void *p) { return gocc_sem_acquire(((sem_fix *)p)->s, 2, NULL); }

static void arm_sem(void *p, int k) {
    (void)k;
    assert_true(gocc_sem_try_acquire(((sem_fix *)p)->s, 3)); /* all of it */
}

static void wake_release(void *p, int k) {
    (void)k;
    assert_int_equal(gocc_sem_release(((sem_fix *)p)->s, 3), 0);
}

static void check_sem(void *p, int k, int rc) {
    (void)k;
    sem_fix *f = p;
    assert_int_equal(rc, 0);
    /* The blocker holds exactly 2: 1 is left, 2 is not. */
    assert_false(gocc_sem_try_acquire(f->s, 2));
    assert_true(gocc_sem_try_acquire(f->s, 1));
    assert_int_equal(gocc_sem_release(f->s, 3), 0);
}

static void test_signal_sem_acquire(void **state) {
    (void)state;
    TEST_NAME();
    sem_fix f = {.s = gocc_sem_new(3)};
    assert_non_null(f.s);
    run_woken(call_acquire, &f, arm_sem, wake_release, check_sem);
    gocc_sem_free(f.s);
}

/* ---- waitgroup wait ---- */

static int call_wg_wait(void *p) { return gocc_waitgroup_wait(p, NULL); }

static void arm_wg(void *p, int k) {
    (void)k;
    assert_int_equal(gocc_waitgroup_add(p, 2), 0);
}

static void wake_wg(void *p, int k) {
    (void)k;
    gocc_waitgroup_done(p);
    gocc_waitgroup_done(p);
}

static void test_signal_waitgroup_wait(void **state) {
    (void)state;
    TEST_NAME();
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    run_woken(call_wg_wait, &wg, arm_wg, wake_wg, check_zero);
}

/* ---- a cancellation wakes the call ---- */

typedef struct cancel_fix {
    gocc_chan_t *never;
    gocc_ctx_t *ctx;
} cancel_fix;

static int call_recv_ctx(void *p) {
    cancel_fix *f = p;
    return gocc_chan_recv(f->never, NULL, f->ctx);
}

static void arm_ctx(void *p, int k) {
    (void)k;
    cancel_fix *f = p;
    if (f->ctx) gocc_ctx_release(f->ctx);
    f->ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(f->ctx);
}

static void wake_cancel(void *p, int k) {
    (void)k;
    gocc_ctx_cancel(((cancel_fix *)p)->ctx);
}

static void check_canceled(void *p, int k, int rc) {
    (void)p;
    (void)k;
    assert_int_equal(rc, GOCC_ECANCELED);
}

static void test_signal_ctx_cancel(void **state) {
    (void)state;
    TEST_NAME();
    cancel_fix f = {.never = chan_new(sizeof(int), 0)};
    run_woken(call_recv_ctx, &f, arm_ctx, wake_cancel, check_canceled);
    gocc_ctx_release(f.ctx);
    gocc_chan_release(f.never);
}

/* ---- group wait, once, workpool submit: woken by a task's progress ---- */

typedef struct task_fix {
    gocc_chan_t *gate; /* a task blocks receiving from it until the test sends */
    gocc_group_t *g;
    gocc_once_t once;
    gocc_workpool_t *pool;
    atomic_int started;
} task_fix;

static int gated_task(gocc_ctx_t *ctx, void *arg) {
    task_fix *f = arg;
    atomic_fetch_add(&f->started, 1);
    return gocc_chan_recv(f->gate, NULL, ctx);
}

static void open_gate(void *p, int k) {
    (void)k;
    task_fix *f = p;
    gocc_ctx_t *safety = safety_ctx();
    int v = 0;
    assert_int_equal(gocc_chan_send(f->gate, &v, safety), 0);
    ctx_done_release(safety);
}

static int call_group_wait(void *p) { return gocc_group_wait(((task_fix *)p)->g); }

/* A fresh group each round: a group whose wait returned runs later tasks
 * with its cancelled context. */
static void arm_group(void *p, int k) {
    task_fix *f = p;
    gocc_group_free(f->g);
    f->g = gocc_group_new(NULL);
    assert_non_null(f->g);
    assert_int_equal(gocc_group_go(f->g, gated_task, f), 0);
    assert_true(wait_count(&f->started, k + 1, SAFETY_NS));
}

static void test_signal_group_wait(void **state) {
    (void)state;
    TEST_NAME();
    task_fix f = {.gate = chan_new(sizeof(int), 0)};
    atomic_init(&f.started, 0);
    run_woken(call_group_wait, &f, arm_group, open_gate, check_zero);
    gocc_group_free(f.g);
    gocc_chan_release(f.gate);
}

/* Once: a task runs the function, which blocks on the gate; the blocker
 * waits for its result. Each round uses a fresh once. */
static int once_fn(void *arg) {
    task_fix *f = arg;
    atomic_fetch_add(&f->started, 1);
    gocc_ctx_t *safety = safety_ctx_ns(SAFETY_NS);
    int rc = gocc_chan_recv(f->gate, NULL, safety);
    ctx_done_release(safety);
    return rc == 0 ? 42 : rc;
}

static int once_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    task_fix *f = arg;
    return gocc_once_do(&f->once, once_fn, f);
}

static int call_once(void *p) {
    task_fix *f = p;
    return gocc_once_do(&f->once, once_fn, f);
}

static void arm_once(void *p, int k) {
    task_fix *f = p;
    f->once = (gocc_once_t)GOCC_ONCE_INIT;
    assert_int_equal(gocc_go(once_task, NULL, f), 0);
    assert_true(wait_count(&f->started, k + 1, SAFETY_NS));
}

static void check_once(void *p, int k, int rc) {
    task_fix *f = p;
    assert_int_equal(rc, 42);
    assert_int_equal(atomic_load(&f->started), k + 1); /* fn ran once per round */
    /* The task that ran fn is done with the once before the next round
     * resets it. */
    assert_int_equal(test_wait_tasks(0, SAFETY_NS), 0);
}

static void test_signal_once(void **state) {
    (void)state;
    TEST_NAME();
    task_fix f = {.gate = chan_new(sizeof(int), 0)};
    atomic_init(&f.started, 0);
    run_woken(call_once, &f, arm_once, open_gate, check_once);
    gocc_chan_release(f.gate);
}

/* Workpool: one worker blocked in a gated job and a full queue of one, so
 * a submit blocks (backpressure) until the gate opens. */
static int noop_job(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

static int call_submit(void *p) {
    return gocc_workpool_submit(((task_fix *)p)->pool, noop_job, NULL, NULL);
}

static void arm_pool(void *p, int k) {
    task_fix *f = p;
    assert_int_equal(gocc_workpool_submit(f->pool, gated_task, f, NULL), 0);
    assert_true(wait_count(&f->started, k + 1, SAFETY_NS));
    assert_int_equal(gocc_workpool_try_submit(f->pool, noop_job, NULL), 0); /* the queue */
}

static void test_signal_workpool_submit(void **state) {
    (void)state;
    TEST_NAME();
    task_fix f = {.gate = chan_new(sizeof(int), 0)};
    atomic_init(&f.started, 0);
    f.pool = gocc_workpool_new(1, 1, NULL);
    assert_non_null(f.pool);
    run_woken(call_submit, &f, arm_pool, open_gate, check_zero);
    assert_int_equal(gocc_workpool_shutdown(f.pool, NULL), 0);
    gocc_workpool_stats_t st;
    gocc_workpool_stats(f.pool, &st);
    assert_int_equal(st.submitted, 3 * ROUNDS);
    assert_int_equal(st.completed, 3 * ROUNDS);
    gocc_workpool_free(f.pool);
    gocc_chan_release(f.gate);
}

/* ------------------------------------------------------------------------ */
/* calls that end by themselves: repeated under the storm */

typedef struct looper {
    int (*once)(struct looper *l); /* one call; 0 when it behaved */
    pthread_t thread;
    atomic_int stop;
    atomic_int iters;
    atomic_int bad;
    int first_bad_rc;
    int64_t first_bad_took, d;
    gocc_chan_t *never;
    gocc_sem_t *sem;
    gocc_ratelimit_t *rl;
    _Atomic uint64_t after_ran;
    atomic_int in_call;
} looper_t;

static void *looper_main(void *p) {
    looper_t *l = p;
    while (!atomic_load(&l->stop)) {
        atomic_store(&l->in_call, 1);
        if (l->once(l) != 0) atomic_fetch_add(&l->bad, 1);
        atomic_fetch_add(&l->iters, 1);
    }
    return NULL;
}

static void looper_bad(looper_t *l, int rc, int64_t took) {
    if (atomic_load(&l->bad) == 0) {
        l->first_bad_rc = rc;
        l->first_bad_took = took;
    }
}

/* Repeat l->once under the storm until STORM signals were handled. */
static void run_loop(looper_t *l) {
    atomic_init(&l->stop, 0);
    atomic_init(&l->iters, 0);
    atomic_init(&l->bad, 0);
    atomic_init(&l->in_call, 0);
    assert_int_equal(pthread_create(&l->thread, NULL, looper_main, l), 0);
    assert_true(wait_count(&l->in_call, 1, SAFETY_NS));
    storm_t s;
    storm_start(&s, l->thread);
    wait_handled(atomic_load(&g_handled), STORM);
    atomic_store(&l->stop, 1);
    assert_int_equal(pthread_join(l->thread, NULL), 0); /* the last call ends by itself */
    storm_stop(&s);
    if (atomic_load(&l->bad) != 0)
        fail_msg("%d of %d calls misbehaved under signals; first: rc %d after %lld ns (d %lld ns)",
                 atomic_load(&l->bad), atomic_load(&l->iters), l->first_bad_rc,
                 (long long)l->first_bad_took, (long long)l->d);
    assert_true(atomic_load(&l->iters) > 0);
}

/* gocc_sleep returns 0 and lasts at least its duration. */
static int once_sleep(looper_t *l) {
    int64_t t0 = gocc_now();
    int rc = gocc_sleep(l->d, NULL);
    int64_t took = gocc_now() - t0;
    if (rc == 0 && took >= l->d) return 0;
    looper_bad(l, rc, took);
    return -1;
}

static void test_signal_sleep(void **state) {
    (void)state;
    TEST_NAME();
    looper_t l = {.once = once_sleep, .d = 5 * GOCC_MILLISECOND};
    run_loop(&l);
}

/* A deadline context ends a wait on a channel no one sends to: the call
 * returns GOCC_EDEADLINE, not before the deadline, and the deadline fires
 * once (its after_func runs exactly once). */
static void count_after(void *arg) { atomic_fetch_add((_Atomic uint64_t *)arg, 1); }

static int once_deadline(looper_t *l) {
    int64_t t0 = gocc_now();
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, l->d);
    if (c == NULL || gocc_ctx_after_func(c, count_after, &l->after_ran, NULL) != 0) {
        looper_bad(l, GOCC_ENOMEM, 0);
        return -1;
    }
    int rc = gocc_chan_recv(l->never, NULL, c);
    int64_t took = gocc_now() - t0;
    int err = gocc_ctx_err(c);
    ctx_done_release(c);
    if (rc == GOCC_EDEADLINE && err == GOCC_EDEADLINE && took >= l->d) return 0;
    looper_bad(l, rc, took);
    return -1;
}

static void test_signal_ctx_deadline(void **state) {
    (void)state;
    TEST_NAME();
    looper_t l = {.once = once_deadline, .d = 5 * GOCC_MILLISECOND, .never = chan_new(0, 0)};
    atomic_init(&l.after_ran, 0);
    run_loop(&l);
    /* Every deadline fired once: after_funcs == contexts, never more. */
    uint64_t n = (uint64_t)atomic_load(&l.iters);
    int64_t end = gocc_now() + SAFETY_NS;
    while (atomic_load(&l.after_ran) < n && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
    ASSERT_NO_TASKS(0);
    assert_int_equal(atomic_load(&l.after_ran), n);
    gocc_chan_release(l.never);
}

/* A timer's value arrives once, not before its time. */
static int once_timer(looper_t *l) {
    int64_t t0 = gocc_now(), v = 0;
    gocc_timer_t *t = gocc_timer_new(l->d);
    if (t == NULL) {
        looper_bad(l, GOCC_ENOMEM, 0);
        return -1;
    }
    int rc = gocc_chan_recv(gocc_timer_chan(t), &v, NULL);
    int64_t took = gocc_now() - t0;
    int again = gocc_chan_try_recv(gocc_timer_chan(t), NULL);
    gocc_timer_free(t);
    if (rc == 0 && v >= t0 + l->d && took >= l->d && again == GOCC_EAGAIN) return 0;
    looper_bad(l, rc != 0 ? rc : again, took);
    return -1;
}

static void test_signal_timer(void **state) {
    (void)state;
    TEST_NAME();
    looper_t l = {.once = once_timer, .d = 5 * GOCC_MILLISECOND};
    run_loop(&l);
}

/* A semaphore acquire that can never be granted ends at its deadline. */
static int once_sem_deadline(looper_t *l) {
    int64_t t0 = gocc_now();
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, l->d);
    if (c == NULL) {
        looper_bad(l, GOCC_ENOMEM, 0);
        return -1;
    }
    int rc = gocc_sem_acquire(l->sem, 1, c);
    int64_t took = gocc_now() - t0;
    ctx_done_release(c);
    if (rc == GOCC_EDEADLINE && took >= l->d) return 0;
    if (rc == 0) gocc_sem_release(l->sem, 1);
    looper_bad(l, rc, took);
    return -1;
}

static void test_signal_sem_deadline(void **state) {
    (void)state;
    TEST_NAME();
    looper_t l = {.once = once_sem_deadline, .d = 5 * GOCC_MILLISECOND, .sem = gocc_sem_new(1)};
    assert_non_null(l.sem);
    assert_true(gocc_sem_try_acquire(l.sem, 1));
    run_loop(&l);
    assert_int_equal(gocc_sem_release(l.sem, 1), 0);
    assert_true(gocc_sem_try_acquire(l.sem, 1)); /* no cancelled acquire kept weight */
    assert_int_equal(gocc_sem_release(l.sem, 1), 0);
    gocc_sem_free(l.sem);
}

/* A rate limiter wait (200 tokens/s, burst 1: 5 ms a token) returns 0. */
static int once_ratelimit(looper_t *l) {
    int rc = gocc_ratelimit_wait(l->rl, 1, NULL);
    if (rc == 0) return 0;
    looper_bad(l, rc, 0);
    return -1;
}

static void test_signal_ratelimit_wait(void **state) {
    (void)state;
    TEST_NAME();
    looper_t l = {.once = once_ratelimit, .rl = gocc_ratelimit_new(200, 1)};
    assert_non_null(l.rl);
    int64_t t0 = gocc_now();
    run_loop(&l);
    /* Tokens are not handed out faster than the rate, signals or not. */
    int64_t took = gocc_now() - t0;
    int n = atomic_load(&l.iters);
    CHECK_GE(took, (int64_t)(n - 2) * 5 * GOCC_MILLISECOND);
    gocc_ratelimit_free(l.rl);
}

/* ------------------------------------------------------------------------ */
/* the runtime's threads block every signal; the sigwait pattern */

/* True if the calling thread blocks every signal it can block (glibc
 * keeps its two internal signals between SIGRTMIN's 32 and 33 for itself). */
static bool all_signals_blocked(void) {
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0) return false;
    for (int sig = 1; sig <= SIGRTMAX; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || (sig > 31 && sig < SIGRTMIN)) continue;
        if (!sigismember(&cur, sig)) return false;
    }
    return true;
}

static atomic_int g_masked, g_unmasked;

static void note_mask(void) {
    atomic_fetch_add(all_signals_blocked() ? &g_masked : &g_unmasked, 1);
}

static int mask_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    note_mask();
    return 0;
}

static void mask_after(void *arg) {
    (void)arg;
    note_mask();
}

/* Tasks of every origin (gocc_go, a group, a worker pool, after_func) run
 * on threads that block every signal, so signals meant for the
 * application never land on them. */
static void test_runtime_threads_block_signals(void **state) {
    (void)state;
    TEST_NAME();
    atomic_store(&g_masked, 0);
    atomic_store(&g_unmasked, 0);
    assert_false(all_signals_blocked()); /* the test's own thread does not */
    for (int i = 0; i < 4; i++) go(mask_task, NULL);
    gocc_group_t *g = gocc_group_new(NULL);
    assert_non_null(g);
    for (int i = 0; i < 4; i++) assert_int_equal(gocc_group_go(g, mask_task, NULL), 0);
    assert_int_equal(gocc_group_wait(g), 0);
    gocc_group_free(g);
    gocc_workpool_t *p = gocc_workpool_new(2, 4, NULL);
    assert_non_null(p);
    for (int i = 0; i < 4; i++) assert_int_equal(gocc_workpool_submit(p, mask_task, NULL, NULL), 0);
    assert_int_equal(gocc_workpool_shutdown(p, NULL), 0);
    gocc_workpool_free(p);
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    assert_non_null(c);
    assert_int_equal(gocc_ctx_after_func(c, mask_after, NULL, NULL), 0);
    ctx_done_release(c);
    assert_true(wait_count(&g_masked, 13, SAFETY_NS));
    ASSERT_NO_TASKS(0);
    assert_int_equal(atomic_load(&g_unmasked), 0);
    assert_int_equal(atomic_load(&g_masked), 13);
}

/* The way to act on a signal (design.md): block it everywhere before any
 * thread starts, take it with sigwait on a task (task threads block it
 * already), and cancel a context from there; a handler may not call
 * libgocc. A kill(2) to the process cancels a call blocked elsewhere. */
static atomic_int g_handled2;

static void on_signal2(int sig) {
    (void)sig;
    atomic_fetch_add(&g_handled2, 1);
}

typedef struct sigwait_fix {
    sigset_t set;
    gocc_ctx_t *root;
    gocc_chan_t *never;
    atomic_int got;
} sigwait_fix;

static int sigwait_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sigwait_fix *f = arg;
    int sig = 0;
    if (sigwait(&f->set, &sig) == 0) atomic_store(&f->got, sig);
    gocc_ctx_cancel(f->root);
    return 0;
}

static int recv_root(void *arg) {
    sigwait_fix *f = arg;
    return gocc_chan_recv(f->never, NULL, f->root);
}

static void test_signal_sigwait_cancels(void **state) {
    (void)state;
    TEST_NAME();
    sigwait_fix f = {.never = chan_new(sizeof(int), 0)};
    atomic_init(&f.got, 0);
    f.root = gocc_ctx_with_cancel(NULL);
    assert_non_null(f.root);
    sigemptyset(&f.set);
    sigaddset(&f.set, SIGUSR2);
    /* This is the only application thread now: blocking here blocks it in
     * the whole process (runtime threads block everything). */
    sigset_t old;
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &f.set, &old), 0);
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal2; /* would count a delivery to a thread that let it through */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR2, &sa, &old_sa), 0);
    atomic_store(&g_handled2, 0);

    go(sigwait_task, &f);
    async_call a;
    async_start_blocked(&a, recv_root, &f, NULL);
    assert_false(async_done(&a));
    assert_int_equal(kill(getpid(), SIGUSR2), 0);
    assert_int_equal(ASYNC_RESULT(&a, SAFETY_NS), GOCC_ECANCELED);
    assert_int_equal(atomic_load(&f.got), SIGUSR2);
    assert_int_equal(atomic_load(&g_handled2), 0);
    ASSERT_NO_TASKS(0);

    assert_int_equal(sigaction(SIGUSR2, &old_sa, NULL), 0);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    gocc_ctx_release(f.root);
    gocc_chan_release(f.never);
}

/* ------------------------------------------------------------------------ */
/* the harness can fail: the same storm interrupts a plain system call */

typedef struct plain_sleep {
    atomic_int started;
    int rc, err;
} plain_sleep;

static void *plain_sleep_main(void *p) {
    plain_sleep *s = p;
    struct timespec ts = {30, 0};
    atomic_store(&s->started, 1);
    s->rc = nanosleep(&ts, NULL);
    s->err = errno;
    return NULL;
}

static void test_signal_storm_interrupts_syscalls(void **state) {
    (void)state;
    TEST_NAME();
    plain_sleep ps = {.rc = 0};
    atomic_init(&ps.started, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, plain_sleep_main, &ps), 0);
    assert_true(wait_count(&ps.started, 1, SAFETY_NS));
    storm_t s;
    storm_start(&s, t);
    assert_int_equal(pthread_join(t, NULL), 0); /* returns at the first signal */
    storm_stop(&s);
    assert_int_equal(ps.rc, -1);
    assert_int_equal(ps.err, EINTR);
}

int main(void) {
    test_main_init("test-process", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_signal_storm_interrupts_syscalls),
        GOCC_TEST(test_signal_chan_recv),
        GOCC_TEST(test_signal_chan_send),
        GOCC_TEST(test_signal_select),
        GOCC_TEST(test_signal_sem_acquire),
        GOCC_TEST(test_signal_waitgroup_wait),
        GOCC_TEST(test_signal_ctx_cancel),
        GOCC_TEST(test_signal_group_wait),
        GOCC_TEST(test_signal_once),
        GOCC_TEST(test_signal_workpool_submit),
        GOCC_TEST(test_signal_sleep),
        GOCC_TEST(test_signal_ctx_deadline),
        GOCC_TEST(test_signal_timer),
        GOCC_TEST(test_signal_sem_deadline),
        GOCC_TEST(test_signal_ratelimit_wait),
        GOCC_TEST(test_runtime_threads_block_signals),
        GOCC_TEST(test_signal_sigwait_cancels),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
