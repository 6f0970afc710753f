/*
 * test-task.c - tasks (gocc_go), task accounting, the thread cache and the
 * runtime settings; gocc_strerror, gocc_now, gocc_version.
 *
 * Go has no unit tests for the go statement itself; the properties tested
 * here are gocc.h's (Tasks, the rule "Task accounting", many tasks at
 * once, thread reuse) and its runtime configuration. Where a test follows
 * a Go test, the comment above it names it.
 *
 * No cmocka assertion runs on a task thread: tasks record what they saw in
 * atomics and the test thread checks it.
 */
#include "test-common.h" /* first: it defines _GNU_SOURCE */

#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

/* ---- helpers shared by the tests of this file ---- */

/* Spin (yielding) until gocc_tasks_live() <= want; bounded. */
static size_t spin_tasks(size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t live;
    while ((live = gocc_tasks_live()) > want && gocc_now() < end) sched_yield();
    return live;
}

/* A task blocked on a gate channel until it is closed. */
typedef struct gate_state {
    gocc_chan_t *gate;       /* closed to release every task */
    _Atomic size_t entered;  /* tasks that started */
    _Atomic size_t released; /* tasks whose recv returned GOCC_ECLOSED */
    _Atomic size_t bad;      /* tasks whose recv returned anything else */
} gate_state;

static int gate_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gate_state *s = arg;
    atomic_fetch_add(&s->entered, 1);
    int rc = gocc_chan_recv(s->gate, NULL, NULL);
    if (rc == GOCC_ECLOSED)
        atomic_fetch_add(&s->released, 1);
    else
        atomic_fetch_add(&s->bad, 1);
    return 0;
}

static void gate_init(gate_state *s) {
    memset(s, 0, sizeof *s);
    s->gate = gocc_chan_new(0, 0);
    assert_non_null(s->gate);
}

/* ---- version, strerror, clock ---- */

static void test_version(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const char *v = gocc_version();
    assert_non_null(v);
    assert_string_equal(v, "0.1.0");
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GOCC_VERSION_MAJOR, GOCC_VERSION_MINOR,
             GOCC_VERSION_PATCH);
    assert_string_equal(v, want);
    ASSERT_NO_TASKS(start);
}

static void test_strerror(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    assert_string_equal(gocc_strerror(GOCC_ECANCELED), "context canceled");
    assert_string_equal(gocc_strerror(GOCC_EDEADLINE), "context deadline exceeded");
    const char *closed = gocc_strerror(GOCC_ECLOSED);
    assert_non_null(closed);
    assert_non_null(strstr(closed, "closed"));
    /* Every named code and every unknown code has a non-empty text. */
    const int codes[] = {GOCC_OK, GOCC_EAGAIN, GOCC_ENOMEM, GOCC_EINVAL, GOCC_ESHUTDOWN,
                         -12345,  12345,       -1,          1,           INT_MIN,
                         INT_MAX, -EIO,        -ENOENT};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = gocc_strerror(codes[i]);
        if (s == NULL) fail_msg("gocc_strerror(%d) returned NULL", codes[i]);
        if (s[0] == '\0') fail_msg("gocc_strerror(%d) returned \"\"", codes[i]);
    }
    /* Unknown negative errno values fall back to strerror(-err). */
    assert_string_equal(gocc_strerror(-EIO), strerror(EIO));
    ASSERT_NO_TASKS(start);
}

typedef struct now_state {
    _Atomic size_t backwards;
    _Atomic size_t reads;
} now_state;

static void *now_thread(void *arg) {
    now_state *s = arg;
    int64_t prev = gocc_now();
    for (int i = 0; i < SCALE(200000); i++) {
        int64_t t = gocc_now();
        if (t < prev) atomic_fetch_add(&s->backwards, 1);
        prev = t;
    }
    atomic_fetch_add(&s->reads, (size_t)SCALE(200000));
    return NULL;
}

/* gocc_now is CLOCK_MONOTONIC in nanoseconds and never goes backwards, on
 * any thread. */
static void test_now_monotonic(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    struct timespec ts;
    int64_t a = gocc_now();
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    int64_t b = gocc_now();
    int64_t mono = (int64_t)ts.tv_sec * GOCC_SECOND + ts.tv_nsec;
    CHECK_GE(mono, a);
    CHECK_GE(b, mono);
    CHECK_GE(a, 0);

    now_state s = {0};
    test_thread th[4];
    for (int i = 0; i < 4; i++) test_thread_start(&th[i], now_thread, &s);
    for (int i = 0; i < 4; i++) test_thread_join(&th[i]);
    assert_int_equal(atomic_load(&s.backwards), 0);
    assert_int_equal(atomic_load(&s.reads), 4 * (size_t)SCALE(200000));

    /* It advances: 2 ms of real sleep shows up as at least ~2 ms. */
    int64_t t0 = gocc_now();
    sleep_ns(2 * GOCC_MILLISECOND);
    CHECK_GE(gocc_now() - t0, 2 * GOCC_MILLISECOND);
    ASSERT_NO_TASKS(start);
}

/* ---- gocc_go ---- */

typedef struct args_state {
    _Atomic(gocc_ctx_t *) ctx_seen;
    _Atomic(void *) arg_seen;
    _Atomic(void *) value_seen;
    _Atomic int err_seen;
    _Atomic int ran;
    pthread_t thread; /* written by the task, read after the drop */
    const void *key;
} args_state;

static int args_task(gocc_ctx_t *ctx, void *arg) {
    args_state *s = arg;
    atomic_store(&s->ctx_seen, ctx);
    atomic_store(&s->arg_seen, arg);
    atomic_store(&s->value_seen, s->key ? gocc_ctx_value(ctx, s->key) : NULL);
    atomic_store(&s->err_seen, gocc_ctx_err(ctx));
    s->thread = pthread_self();
    atomic_fetch_add(&s->ran, 1);
    return 42; /* ignored by gocc_go */
}

/* gocc_go runs fn(ctx, arg) once, on another thread, with the very ctx and
 * arg it was given; a NULL ctx is the background context. */
static void test_go_runs_fn_with_ctx_and_arg(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 'k';
    static int value = 7;
    gocc_ctx_t *ctx = gocc_ctx_with_value(NULL, &key, &value);
    assert_non_null(ctx);

    args_state s;
    memset(&s, 0, sizeof s);
    s.key = &key;
    assert_int_equal(gocc_go(args_task, ctx, &s), 0);
    assert_int_equal(test_wait_tasks(start, 5 * GOCC_SECOND), start);
    assert_int_equal(atomic_load(&s.ran), 1);
    assert_ptr_equal(atomic_load(&s.ctx_seen), ctx);
    assert_ptr_equal(atomic_load(&s.arg_seen), &s);
    assert_ptr_equal(atomic_load(&s.value_seen), &value);
    assert_int_equal(atomic_load(&s.err_seen), 0);
    assert_false(pthread_equal(s.thread, pthread_self()));
    gocc_ctx_release(ctx);

    /* NULL ctx: the task gets NULL or the background context. */
    memset(&s, 0, sizeof s);
    assert_int_equal(gocc_go(args_task, NULL, &s), 0);
    assert_int_equal(test_wait_tasks(start, 5 * GOCC_SECOND), start);
    assert_int_equal(atomic_load(&s.ran), 1);
    gocc_ctx_t *seen = atomic_load(&s.ctx_seen);
    assert_true(seen == NULL || seen == gocc_ctx_background());
    assert_ptr_equal(atomic_load(&s.arg_seen), &s);
    assert_int_equal(atomic_load(&s.err_seen), 0);
    ASSERT_NO_TASKS(start);
}

static void test_go_null_fn(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    assert_int_equal(gocc_go(NULL, NULL, NULL), GOCC_EINVAL);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    assert_int_equal(gocc_go(NULL, ctx, &ctx), GOCC_EINVAL);
    assert_int_equal(gocc_tasks_live(), start);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx); /* ASan: the failed call took no reference */
    ASSERT_NO_TASKS(start);
}

/* ---- exact task accounting ---- */

typedef struct exact_state {
    gocc_chan_t *gate;
    _Atomic size_t entered;
    _Atomic size_t returning; /* incremented as the last thing fn does */
    _Atomic size_t ticket;
    int slot[64]; /* plain writes, read after the count drops */
} exact_state;

static int exact_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    exact_state *s = arg;
    size_t i = atomic_fetch_add(&s->ticket, 1);
    atomic_fetch_add(&s->entered, 1);
    (void)gocc_chan_recv(s->gate, NULL, NULL);
    sleep_ns((int64_t)(i % 5) * GOCC_MILLISECOND); /* spread the returns */
    s->slot[i] = (int)i + 1;                       /* plain, non-atomic */
    atomic_fetch_add_explicit(&s->returning, 1, memory_order_release);
    return 0;
}

/* Clarification "Task accounting": counted before gocc_go returns, dropped
 * only after fn returned, and a caller that sees the drop sees the task's
 * writes (TSan checks the plain slot[] reads). */
static void test_tasks_live_exact(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    enum { N = 64 };
    exact_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->gate = gocc_chan_new(0, 0);
    assert_non_null(s->gate);

    for (size_t i = 0; i < N; i++) {
        assert_int_equal(gocc_go(exact_task, NULL, s), 0);
        /* Counted before gocc_go returned; none can have returned yet. */
        assert_int_equal(gocc_tasks_live(), start + i + 1);
    }
    assert_int_equal(wait_size(&s->entered, N, 10 * GOCC_SECOND), N);
    wait_blocked_in(N, "chan receive", 10 * GOCC_SECOND);
    assert_int_equal(gocc_tasks_live(), start + N); /* blocked tasks are live */

    assert_int_equal(gocc_chan_close(s->gate), 0);
    /* Every drop is preceded by that task's last action. */
    int64_t end = gocc_now() + 10 * GOCC_SECOND;
    size_t live;
    do {
        live = gocc_tasks_live();
        size_t finished = start + N - live;
        size_t returning = atomic_load_explicit(&s->returning, memory_order_acquire);
        if (returning < finished)
            fail_msg("tasks_live dropped by %zu but only %zu tasks reached their return", finished,
                     returning);
    } while (live > start && gocc_now() < end);
    assert_int_equal(live, start);
    for (int i = 0; i < N; i++) assert_int_equal(s->slot[i], i + 1);
    gocc_chan_release(s->gate);
    free(s);
    ASSERT_NO_TASKS(start);
}

typedef struct quick_state {
    _Atomic int done;
    int64_t payload; /* plain */
} quick_state;

static int quick_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    quick_state *s = arg;
    s->payload = 0x1234567812345678LL;
    atomic_store_explicit(&s->done, 1, memory_order_release);
    return 0;
}

/* A task that returns at once is still counted when gocc_go returns (it is
 * either live or already done), and the drop publishes its writes. */
static void test_tasks_live_quick_tasks(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    int n = SCALE(2000);
    for (int i = 0; i < n; i++) {
        quick_state s = {0};
        assert_int_equal(gocc_go(quick_task, NULL, &s), 0);
        size_t live = gocc_tasks_live();
        int done = atomic_load_explicit(&s.done, memory_order_acquire);
        if (live != start + 1 && !done)
            fail_msg("iteration %d: task neither counted (live=%zu, start=%zu) nor done", i, live,
                     start);
        assert_int_equal(spin_tasks(start, 5 * GOCC_SECOND), start);
        /* Plain read right after the drop: TSan verifies the ordering. */
        assert_true(s.payload == 0x1234567812345678LL);
    }
    ASSERT_NO_TASKS(start);
}

typedef struct nest_state {
    _Atomic size_t inner_ran;
    _Atomic size_t seen_live_low;
    size_t start;
} nest_state;

static int inner_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    nest_state *s = arg;
    atomic_fetch_add(&s->inner_ran, 1);
    return 0;
}

static int outer_task(gocc_ctx_t *ctx, void *arg) {
    nest_state *s = arg;
    for (int i = 0; i < 4; i++) {
        if (gocc_go(inner_task, ctx, s) != 0) return -1;
        /* this task and the inner one just started are both live */
        if (gocc_tasks_live() < s->start + 1) atomic_fetch_add(&s->seen_live_low, 1);
    }
    return 0;
}

/* Tasks started by tasks are counted like any other. */
static void test_task_starts_tasks(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    nest_state s = {.start = start};
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    for (int i = 0; i < 8; i++) assert_int_equal(gocc_go(outer_task, ctx, &s), 0);
    gocc_ctx_release(ctx); /* the tasks hold their own references */
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.inner_ran), 32);
    assert_int_equal(atomic_load(&s.seen_live_low), 0);
    ASSERT_NO_TASKS(start);
}

/* ---- the thread cache ---- */

/* An own_thread task: the thread-per-task path, where the thread cache,
 * stack_size for threads, max_threads and idle_timeout apply as before. */
static int go_thread(gocc_fn fn, gocc_ctx_t *ctx, void *arg) {
    gocc_task_opts_t o = {.own_thread = true};
    return gocc_go_opts(fn, ctx, arg, &o);
}

typedef struct thread_seen {
    pthread_mutex_t mu;
    pthread_t ids[256];
    size_t n;
    _Atomic int ran;
} thread_seen;

static int note_thread(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    thread_seen *ts = arg;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&ts->mu);
    bool known = false;
    for (size_t i = 0; i < ts->n; i++) known = known || pthread_equal(ts->ids[i], self);
    if (!known && ts->n < 256) ts->ids[ts->n++] = self;
    pthread_mutex_unlock(&ts->mu);
    atomic_fetch_add(&ts->ran, 1);
    return 0;
}

/* Clarification "Thread reuse" for coroutine tasks: a program that runs
 * tasks one after another runs them all on the existing workers: at most
 * procs distinct threads, and no thread is made while a worker is idle. */
static void test_thread_reuse_workers(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_runtime_config_t cfg;
    gocc_runtime_config_get(&cfg);
    thread_seen ts = {.mu = PTHREAD_MUTEX_INITIALIZER};
    for (int i = 0; i < 200; i++) {
        assert_int_equal(gocc_go(note_thread, NULL, &ts), 0);
        assert_int_equal(spin_tasks(start, 5 * GOCC_SECOND), start);
    }
    assert_int_equal(atomic_load(&ts.ran), 200);
    if (ts.n > cfg.procs)
        fail_msg("200 sequential tasks ran on %zu threads, procs is %zu", ts.n, cfg.procs);
    CHECK_GE(gocc_runtime_threads(), 1);
    ASSERT_NO_TASKS(start);
}

static int count_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* own_thread tasks: start, wait for the count to drop, start: one cached
 * thread does all of it (no thread is made while one is idle). */
static void test_thread_reuse(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    _Atomic int ran = 0;
    size_t before = gocc_runtime_threads();
    size_t bound = before > 0 ? before : 1;
    size_t peak = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(go_thread(count_task, NULL, &ran), 0);
        size_t during = gocc_runtime_threads();
        if (during < 1) fail_msg("iteration %d: a task runs but gocc_runtime_threads() == 0", i);
        if (during > peak) peak = during;
        assert_int_equal(spin_tasks(start, 5 * GOCC_SECOND), start);
        size_t after = gocc_runtime_threads();
        if (after > peak) peak = after;
        if (after > bound)
            fail_msg("iteration %d: %zu task threads after sequential tasks, had %zu before "
                     "(a thread was made while one was idle)",
                     i, after, before);
    }
    assert_int_equal(atomic_load(&ran), 100);
    assert_true(peak >= 1 && peak <= bound);
    ASSERT_NO_TASKS(start);
}

/* ---- the task's reference to its context ---- */

typedef struct holder_state {
    gocc_chan_t *gate;
    gocc_chan_t *never;
    const void *key;
    _Atomic(void *) value_seen;
    _Atomic int err_before;
    _Atomic int rc;
    _Atomic int cause;
    _Atomic int finished;
} holder_state;

static int holder_task(gocc_ctx_t *ctx, void *arg) {
    holder_state *s = arg;
    (void)gocc_chan_recv(s->gate, NULL, NULL); /* the creator released ctx by now */
    atomic_store(&s->value_seen, gocc_ctx_value(ctx, s->key));
    atomic_store(&s->err_before, gocc_ctx_err(ctx));
    atomic_store(&s->rc, gocc_chan_recv(s->never, NULL, ctx));
    atomic_store(&s->cause, gocc_ctx_cause(ctx));
    atomic_store(&s->finished, 1);
    return 0;
}

static int self_cancel_task(gocc_ctx_t *ctx, void *arg) {
    holder_state *s = arg;
    (void)gocc_chan_recv(s->gate, NULL, NULL);
    atomic_store(&s->err_before, gocc_ctx_err(ctx));
    gocc_ctx_cancel_cause(ctx, -1234);
    atomic_store(&s->rc, gocc_chan_recv(s->never, NULL, ctx));
    atomic_store(&s->cause, gocc_ctx_cause(ctx));
    atomic_store(&s->finished, 1);
    return 0;
}

/* gocc_go retains ctx for the task's life: the creator may release its own
 * reference right after gocc_go (ASan sees any use after free). */
static void test_task_holds_ctx_ref(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    static const char key = 'x';
    static int value = 99;

    /* 1: parent -> value -> cancel; the task holds only the leaf. */
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_ctx_t *vctx = gocc_ctx_with_value(parent, &key, &value);
    assert_non_null(vctx);
    gocc_ctx_t *leaf = gocc_ctx_with_cancel(vctx);
    assert_non_null(leaf);
    holder_state s;
    memset(&s, 0, sizeof s);
    s.gate = gocc_chan_new(0, 0);
    s.never = gocc_chan_new(sizeof(int), 0);
    s.key = &key;
    assert_non_null(s.gate);
    assert_non_null(s.never);
    assert_int_equal(gocc_go(holder_task, leaf, &s), 0);
    gocc_ctx_release(leaf);
    gocc_ctx_release(vctx);
    assert_int_equal(gocc_chan_send(s.gate, NULL, NULL), 0); /* rendezvous */
    wait_blocked_in(1, "chan receive", SAFETY_NS);           /* on never, with leaf */
    assert_int_equal(atomic_load(&s.finished), 0);
    gocc_ctx_cancel_cause(parent, -4321);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.finished), 1);
    assert_ptr_equal(atomic_load(&s.value_seen), &value);
    assert_int_equal(atomic_load(&s.err_before), 0);
    assert_int_equal(atomic_load(&s.rc), GOCC_ECANCELED);
    assert_int_equal(atomic_load(&s.cause), -4321);
    gocc_ctx_release(parent);

    /* 2: the task cancels the context it was given after its creator
     * released it. */
    gocc_ctx_t *own = gocc_ctx_with_cancel(NULL);
    assert_non_null(own);
    atomic_store(&s.finished, 0);
    atomic_store(&s.rc, 0);
    atomic_store(&s.err_before, 1);
    assert_int_equal(gocc_go(self_cancel_task, own, &s), 0);
    gocc_ctx_release(own);
    assert_int_equal(gocc_chan_send(s.gate, NULL, NULL), 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&s.finished), 1);
    assert_int_equal(atomic_load(&s.err_before), 0);
    assert_int_equal(atomic_load(&s.rc), GOCC_ECANCELED);
    assert_int_equal(atomic_load(&s.cause), -1234);

    gocc_chan_release(s.gate);
    gocc_chan_release(s.never);
    ASSERT_NO_TASKS(start);
}

/* ---- runtime settings ---- */

static void restore_config(const gocc_runtime_config_t *old) {
    gocc_runtime_config_t r = *old, back;
    /* A zero field means "keep": "no limit" (reported as 0) is written back
     * as GOCC_RUNTIME_UNLIMITED. */
    if (r.max_threads == 0) r.max_threads = GOCC_RUNTIME_UNLIMITED;
    assert_int_equal(gocc_runtime_configure(&r), 0);
    gocc_runtime_config_get(&back);
    assert_int_equal(back.max_threads, old->max_threads);
}

static void test_runtime_config_basics(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    assert_int_equal(gocc_runtime_configure(NULL), GOCC_EINVAL);

    gocc_runtime_config_t a, b;
    memset(&a, 0xff, sizeof a);
    gocc_runtime_config_get(&a);
    assert_true(a.stack_size >= 16 * 1024);
    assert_true(a.idle_timeout_ns > 0);

    /* A negative idle timeout is invalid and changes nothing. */
    gocc_runtime_config_t bad = {0};
    bad.idle_timeout_ns = -1;
    bad.stack_size = a.stack_size + 4096;
    assert_int_equal(gocc_runtime_configure(&bad), GOCC_EINVAL);
    gocc_runtime_config_get(&b);
    assert_int_equal(b.stack_size, a.stack_size);
    assert_true(b.idle_timeout_ns == a.idle_timeout_ns);
    assert_int_equal(b.max_threads, a.max_threads);

    /* All zero: keeps everything. */
    gocc_runtime_config_t zero = {0};
    assert_int_equal(gocc_runtime_configure(&zero), 0);
    gocc_runtime_config_get(&b);
    assert_int_equal(b.stack_size, a.stack_size);
    assert_true(b.idle_timeout_ns == a.idle_timeout_ns);
    assert_int_equal(b.max_threads, a.max_threads);

    /* One field changes only that field. */
    gocc_runtime_config_t one = {0};
    one.idle_timeout_ns = a.idle_timeout_ns + GOCC_SECOND;
    assert_int_equal(gocc_runtime_configure(&one), 0);
    gocc_runtime_config_get(&b);
    assert_true(b.idle_timeout_ns == a.idle_timeout_ns + GOCC_SECOND);
    assert_int_equal(b.stack_size, a.stack_size);
    assert_int_equal(b.max_threads, a.max_threads);
    restore_config(&a);
    ASSERT_NO_TASKS(start);
}

#define SMALL_STACK ((size_t)64 * 1024)

typedef struct stack_state {
    gocc_chan_t *gate;
    _Atomic size_t entered;
    _Atomic size_t small; /* tasks whose thread stack is below the threshold */
    _Atomic size_t sum;
    size_t threshold;
} stack_state;

/* Uses a few KiB of stack, so a broken small stack would crash. */
static __attribute__((noinline)) size_t burn_stack(int depth) {
    volatile unsigned char buf[1024];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i + (size_t)depth);
    size_t s = buf[depth * 7 % sizeof buf];
    if (depth > 0) s += burn_stack(depth - 1);
    return s;
}

static int stack_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    stack_state *s = arg;
    atomic_fetch_add(&s->sum, burn_stack(8));
    pthread_attr_t attr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        (void)pthread_attr_getstacksize(&attr, &size);
        pthread_attr_destroy(&attr);
    }
    if (size > 0 && size < s->threshold) atomic_fetch_add(&s->small, 1);
    atomic_fetch_add(&s->entered, 1);
    (void)gocc_chan_recv(s->gate, NULL, NULL);
    return 0;
}

/* A small configured stack applies to threads made afterwards, and
 * own_thread tasks run on them. */
static void test_runtime_small_stack(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_runtime_config_t old, now;
    gocc_runtime_config_get(&old);
    gocc_runtime_config_t cfg = {0};
    cfg.stack_size = SMALL_STACK;
    assert_int_equal(gocc_runtime_configure(&cfg), 0);
    gocc_runtime_config_get(&now);
    CHECK_GE(now.stack_size, SMALL_STACK);
    if (old.stack_size > SMALL_STACK) CHECK_LT(now.stack_size, old.stack_size);

    /* More tasks than there are cached threads: at least 8 new threads. */
    stack_state s;
    memset(&s, 0, sizeof s);
    s.gate = gocc_chan_new(0, 0);
    assert_non_null(s.gate);
    s.threshold = old.stack_size > now.stack_size ? (old.stack_size + now.stack_size) / 2
                                                  : SIZE_MAX;
    size_t cached = gocc_runtime_threads();
    size_t n = cached + 8, started = 0;
    int go_rc = 0;
    while (started < n && (go_rc = go_thread(stack_task, NULL, &s)) == 0) started++;
    size_t entered = wait_size(&s.entered, started, 10 * GOCC_SECOND);
    size_t threads = gocc_runtime_threads();
    /* release the tasks before asserting anything */
    assert_int_equal(gocc_chan_close(s.gate), 0);
    size_t live = test_wait_tasks(start, 10 * GOCC_SECOND);
    restore_config(&old);
    assert_int_equal(go_rc, 0);
    assert_int_equal(entered, n);
    assert_int_equal(live, start);
    CHECK_GE(threads, n);
#ifndef GOCC_TEST_TSAN /* TSan's pthread_getattr_np reports its own stack size */
    if (old.stack_size > now.stack_size) CHECK_GE(atomic_load(&s.small), 8);
#endif
    assert_true(atomic_load(&s.sum) > 0);
    gocc_chan_release(s.gate);
    ASSERT_NO_TASKS(start);
}

/* max_threads: beyond the limit an own_thread start fails with GOCC_EAGAIN
 * (and counts nothing); raising the limit again lets tasks start. */
static void test_runtime_max_threads(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_runtime_config_t old, now;
    gocc_runtime_config_get(&old);
    size_t m = gocc_runtime_threads() + 4;
    gocc_runtime_config_t cfg = {0};
    cfg.max_threads = m;
    assert_int_equal(gocc_runtime_configure(&cfg), 0);
    gocc_runtime_config_get(&now);
    assert_int_equal(now.max_threads, m);

    gate_state s;
    gate_init(&s);
    size_t started = 0, failed = 0;
    for (size_t i = 0; i < m; i++) {
        /* A cached thread that is just timing out may still count for a
         * moment: retry EAGAIN briefly. */
        int rc;
        int64_t end = gocc_now() + 2 * GOCC_SECOND;
        while ((rc = go_thread(gate_task, NULL, &s)) == GOCC_EAGAIN && gocc_now() < end)
            sleep_ns(GOCC_MILLISECOND);
        if (rc == 0)
            started++;
        else
            failed++;
    }
    wait_size(&s.entered, started, 10 * GOCC_SECOND);
    size_t live_full = gocc_tasks_live();
    /* Every allowed thread runs a blocked task: one more cannot start. */
    int extra = go_thread(gate_task, NULL, &s);
    size_t live_after = gocc_tasks_live();

    gocc_chan_close(s.gate);
    size_t live_end = test_wait_tasks(start, 10 * GOCC_SECOND);
    restore_config(&old);

    /* With the limit lifted a task starts again. */
    _Atomic int ran = 0;
    int again = go_thread(count_task, NULL, &ran);

    assert_int_equal(failed, 0);
    assert_int_equal(started, m);
    assert_int_equal(live_full, start + m);
    assert_int_equal(extra, GOCC_EAGAIN);
    assert_int_equal(live_after, start + m);
    assert_int_equal(live_end, start);
    assert_int_equal(again, 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(atomic_load(&s.released), started + (extra == 0));
    assert_int_equal(atomic_load(&s.bad), 0);
    gocc_chan_release(s.gate);
    ASSERT_NO_TASKS(start);
}

/* idle_timeout: cached own_thread threads that go idle after the change exit
 * after it. */
static void test_runtime_idle_timeout(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_runtime_config_t old;
    gocc_runtime_config_get(&old);
    gocc_runtime_config_t cfg = {0};
    cfg.idle_timeout_ns = 20 * GOCC_MILLISECOND;
    assert_int_equal(gocc_runtime_configure(&cfg), 0);

    size_t before = gocc_runtime_threads();
    gate_state s;
    gate_init(&s);
    size_t n = before + 6; /* uses every cached thread and makes 6 more */
    for (size_t i = 0; i < n; i++) assert_int_equal(go_thread(gate_task, NULL, &s), 0);
    assert_int_equal(wait_size(&s.entered, n, 10 * GOCC_SECOND), n);
    size_t busy = gocc_runtime_threads();
    CHECK_GE(busy, n);
    gocc_chan_close(s.gate);
    assert_int_equal(test_wait_tasks(start, 10 * GOCC_SECOND), start);

    /* Every thread that ran one of these tasks went idle with the short
     * timeout: they all exit. */
    int64_t end = gocc_now() + 5 * GOCC_SECOND;
    size_t now_threads;
    while ((now_threads = gocc_runtime_threads()) > before && gocc_now() < end)
        sleep_ns(GOCC_MILLISECOND);
    /* Threads that were idle before and not reused keep the old timeout;
     * those reused exit, so the count goes to at most what it was. */
    if (now_threads > before)
        fail_msg("%zu task threads 5 s after the tasks ended (idle timeout 20 ms), "
                 "%zu before, %zu while busy",
                 now_threads, before, busy);
    restore_config(&old);
    /* Tasks still run afterwards (a new thread is made). */
    _Atomic int ran = 0;
    assert_int_equal(go_thread(count_task, NULL, &ran), 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(atomic_load(&s.bad), 0);
    gocc_chan_release(s.gate);
    ASSERT_NO_TASKS(start);
}

/* ---- scale: many tasks blocked on one context ---- */

typedef struct block_state {
    gocc_chan_t *never;
    _Atomic size_t ticket;
    _Atomic size_t entered;
    _Atomic size_t canceled;
    _Atomic size_t other;
    _Atomic int other_rc;
} block_state;

static int block_task(gocc_ctx_t *ctx, void *arg) {
    block_state *s = arg;
    size_t i = atomic_fetch_add(&s->ticket, 1);
    atomic_fetch_add(&s->entered, 1);
    int rc;
    switch (i % 3) {
    case 0: rc = gocc_chan_recv(s->never, NULL, ctx); break;
    case 1:
        rc = gocc_select(NULL, 0, ctx); /* Go's select {} */
        break;
    default: {
        gocc_case_t c = {.ch = s->never, .dir = GOCC_RECV, .elem = NULL, .ok = false};
        rc = gocc_select(&c, 1, ctx);
        break;
    }
    }
    if (rc == GOCC_ECANCELED) {
        atomic_fetch_add(&s->canceled, 1);
    } else {
        atomic_fetch_add(&s->other, 1);
        atomic_store(&s->other_rc, rc);
    }
    return 0;
}

#if defined(GOCC_TEST_TSAN)
#define MANY_TASKS 2000
#elif defined(GOCC_TEST_SANITIZED)
#define MANY_TASKS 2500
#else
#define MANY_TASKS 10000
#endif

/* Clarification "Scale": 10,000 tasks blocked at once (recv on a channel
 * nobody sends to, select {} and a one-case select) all on ONE context; one
 * cancel wakes them all promptly and the count returns to where it was. */
static void test_many_tasks_blocked_on_one_ctx(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    block_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->never = gocc_chan_new(sizeof(int), 0);
    assert_non_null(s->never);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);

    size_t n = MANY_TASKS, started = 0;
    int go_rc = 0;
    int64_t t_start = gocc_now();
    for (; started < n; started++) {
        go_rc = gocc_go(block_task, ctx, s);
        if (go_rc != 0) break;
    }
    int64_t t_started = gocc_now();
    size_t entered = wait_size(&s->entered, started, 30 * GOCC_SECOND);
    size_t live_blocked = gocc_tasks_live();
    wait_blocked(started, 30 * GOCC_SECOND); /* all parked */

    int64_t t0 = gocc_now();
    gocc_ctx_cancel(ctx);
    size_t live_end = test_wait_tasks(start, 20 * GOCC_SECOND);
    int64_t woke = gocc_now() - t0;
    gocc_ctx_release(ctx);

    print_message("  %zu tasks started in %.1f ms, all woken %.1f ms after one cancel\n", started,
                  (double)(t_started - t_start) / 1e6, (double)woke / 1e6);
    if (go_rc != 0)
        fail_msg("gocc_go failed with %d (%s) after %zu tasks", go_rc, gocc_strerror(go_rc),
                 started);
    assert_int_equal(entered, n);
    assert_int_equal(live_blocked, start + n);
    assert_int_equal(live_end, start);
    CHECK_LT(woke, 20 * GOCC_SECOND);
    if (atomic_load(&s->other) != 0)
        fail_msg("%zu tasks returned something else than GOCC_ECANCELED (e.g. %d)",
                 atomic_load(&s->other), atomic_load(&s->other_rc));
    assert_int_equal(atomic_load(&s->canceled), n);
    gocc_chan_release(s->never);
    free(s);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-task", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        /* first: the thread cache is empty, so "one thread" is exact */
        GOCC_TEST(test_thread_reuse),
        GOCC_TEST(test_thread_reuse_workers),
        GOCC_TEST(test_version),
        GOCC_TEST(test_strerror),
        GOCC_TEST(test_now_monotonic),
        GOCC_TEST(test_go_runs_fn_with_ctx_and_arg),
        GOCC_TEST(test_go_null_fn),
        GOCC_TEST(test_tasks_live_exact),
        GOCC_TEST(test_tasks_live_quick_tasks),
        GOCC_TEST(test_task_starts_tasks),
        GOCC_TEST(test_task_holds_ctx_ref),
        GOCC_TEST(test_runtime_config_basics),
        GOCC_TEST(test_runtime_small_stack),
        GOCC_TEST(test_runtime_max_threads),
        GOCC_TEST(test_runtime_idle_timeout),
        GOCC_TEST(test_many_tasks_blocked_on_one_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
