/*
 * bench-ctx.c - cancellation fan-out and deadline accuracy (same method and
 * CSV as the other programs; see harness.h). bench/go/ctx.go runs the same
 * names with context.WithCancel / WithDeadline and goroutines.
 *
 *   ctx/cancel/1000             N tasks (gocc_go) block receiving from their
 *   ctx/cancel/10000            context's done channel; the clock runs from
 *                               gocc_ctx_cancel to the moment the last of
 *                               them has returned (a WaitGroup the tasks
 *                               mark just before returning). Starting the
 *                               tasks and waiting until they are all
 *                               blocked is left out (bench_timer_stop).
 *                               ns per fan-out (one cancel of N tasks).
 *   task/ctx/cancel/10000       the same, cancelled and waited for by a
 *                               task (as Go's benchmark goroutine does)
 *                               instead of the main thread; its set-up
 *                               naps with gocc_sleep, which parks the task
 *                               and leaves its worker to the N tasks.
 *   baseline/ctx/cancel/N       the reference the issue asks the fan-out to
 *                               be within 1.5x of: N plain pthreads sleep
 *                               in FUTEX_WAIT on one word, one FUTEX_WAKE
 *                               of all of them, the last to run wakes the
 *                               timer. No library at all: the floor the OS
 *                               sets for waking N threads.
 *   timer/deadline/1000         1,000 tasks each wait on a context with its
 *                               own deadline, spread evenly over 20..120 ms
 *                               from the start, so 1,000 timers are pending
 *                               at once. Each task notes how late it woke
 *                               (clock after the wake - deadline). Rows
 *                               timer/deadline/1000/p50 and /p99 give the
 *                               lateness percentiles in ns (of the trial);
 *                               there is no ns/op row.
 *
 * In smoke mode (harness.h) N is divided by 100 and the timers span 1..2 ms,
 * so the sanitizer builds do not start 10,000 threads.
 */
#define _GNU_SOURCE /* syscall(SYS_futex) */

#include <gocc.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "harness.h"

/* ---- helpers ---- */

static int scaled(int n) { return bench_smoke() ? (n / 100 > 1 ? n / 100 : 1) : n; }

/* Wait until *count reaches want (tasks and threads announce themselves
 * just before they block), then give the last of them time to go to sleep
 * for real. Set-up only: the clock is stopped. From a task (@p in_task)
 * it naps with gocc_sleep, so that the worker runs the other tasks. */
static void await_blocked(_Atomic int *count, int want, bool in_task) {
    void (*pause)(int64_t) = in_task ? bench_nap_ns : bench_sleep_ns;
    while (atomic_load_explicit(count, memory_order_acquire) < want) pause(100000);
    pause(bench_smoke() ? 1000000 : 20000000);
}

/* ---- ctx/cancel/N: libgocc ---- */

typedef struct fanout_case {
    const char *name;
    int tasks;
    bool in_task; /* task/ variant: run_fanout runs in a task */
} fanout_case;

typedef struct fanout_run {
    gocc_waitgroup_t wg;
    _Atomic int blocked;
    const char *name;
} fanout_run;

static int wait_for_cancel(gocc_ctx_t *ctx, void *arg) {
    fanout_run *r = arg;
    atomic_fetch_add_explicit(&r->blocked, 1, memory_order_release);
    int rc = gocc_chan_recv(gocc_ctx_done(ctx), NULL, NULL);
    if (rc != GOCC_ECLOSED) bench_die("recv on done", r->name, rc);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void run_fanout(const void *self, uint64_t n) {
    const fanout_case *c = self;
    int tasks = scaled(c->tasks);
    for (uint64_t i = 0; i < n; i++) {
        bench_timer_stop();
        fanout_run r = {.wg = GOCC_WAITGROUP_INIT, .name = c->name};
        atomic_init(&r.blocked, 0);
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        if (ctx == NULL) bench_die("gocc_ctx_with_cancel", c->name, GOCC_ENOMEM);
        gocc_waitgroup_add(&r.wg, tasks);
        for (int t = 0; t < tasks; t++) {
            int rc = gocc_go(wait_for_cancel, ctx, &r);
            if (rc != 0) bench_die("gocc_go", c->name, rc);
        }
        await_blocked(&r.blocked, tasks, c->in_task);
        bench_timer_start();
        gocc_ctx_cancel(ctx);
        gocc_waitgroup_wait(&r.wg, NULL);
        bench_timer_stop();
        gocc_ctx_release(ctx);
        /* The tasks have marked the WaitGroup; let them return before the
         * next round (and before run() returns: the harness counts them).
         * A driver task counts itself. */
        if (c->in_task)
            bench_settle_tasks(1);
        else
            while (gocc_tasks_live() != 0) bench_sleep_ns(100000);
        bench_timer_start();
    }
}

static void run_fanout_task(const void *self, uint64_t n) {
    const fanout_case *c = self;
    bench_run_in_task(c->name, run_fanout, self, n);
}

/* ---- baseline/ctx/cancel/N: FUTEX_WAKE of N sleeping threads ---- */

typedef struct futex_run {
    _Atomic uint32_t gen;  /* threads sleep while it equals their round */
    _Atomic uint32_t left; /* threads still to run in this round */
    _Atomic int blocked;   /* threads about to sleep in this round */
    _Atomic uint32_t done; /* 1 when left reached 0; main sleeps on it */
    uint64_t rounds;
} futex_run;

static void fwait(_Atomic uint32_t *addr, uint32_t val) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)val;
    while (atomic_load(addr) == val) bench_sleep_ns(1000);
#endif
}

static void fwake(_Atomic uint32_t *addr, int n) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
#else
    (void)addr, (void)n;
#endif
}

static void *futex_waiter(void *p) {
    futex_run *r = p;
    for (uint32_t round = 0; round < r->rounds; round++) {
        atomic_fetch_add_explicit(&r->blocked, 1, memory_order_release);
        while (atomic_load_explicit(&r->gen, memory_order_acquire) == round) fwait(&r->gen, round);
        if (atomic_fetch_sub_explicit(&r->left, 1, memory_order_acq_rel) == 1) {
            atomic_store_explicit(&r->done, 1, memory_order_release);
            fwake(&r->done, 1);
        }
    }
    return NULL;
}

static void run_futex_fanout(const void *self, uint64_t n) {
    const fanout_case *c = self;
    int threads = scaled(c->tasks);
    bench_timer_stop();
    futex_run r = {.rounds = n};
    atomic_init(&r.gen, 0);
    atomic_init(&r.left, (uint32_t)threads);
    atomic_init(&r.blocked, 0);
    atomic_init(&r.done, 0);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (t == NULL) bench_die("calloc", c->name, GOCC_ENOMEM);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024 > PTHREAD_STACK_MIN ? 64 * 1024 : PTHREAD_STACK_MIN);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&t[i], &attr, futex_waiter, &r);
        if (rc != 0) bench_die("pthread_create", c->name, -rc);
    }
    pthread_attr_destroy(&attr);
    for (uint64_t round = 0; round < n; round++) {
        await_blocked(&r.blocked, threads * (int)(round + 1), false);
        atomic_store_explicit(&r.left, (uint32_t)threads, memory_order_relaxed);
        atomic_store_explicit(&r.done, 0, memory_order_relaxed);
        bench_timer_start();
        atomic_store_explicit(&r.gen, (uint32_t)(round + 1), memory_order_release);
        fwake(&r.gen, INT_MAX);
        while (atomic_load_explicit(&r.done, memory_order_acquire) == 0) fwait(&r.done, 0);
        bench_timer_stop();
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    free(t);
    bench_timer_start();
}

/* ---- timer/deadline/1000 ---- */

enum { TIMERS = 1000 };
#define TIMER_FIRST_NS (20 * GOCC_MILLISECOND)
#define TIMER_SPAN_NS (100 * GOCC_MILLISECOND)

typedef struct timer_run {
    gocc_waitgroup_t wg;
    gocc_chan_t *start; /* closed once every context exists */
    _Atomic int ready;  /* tasks about to wait for start */
    const char *name;
} timer_run;

typedef struct timer_arg {
    timer_run *r;
    gocc_ctx_t *ctx; /* written before start is closed */
    int64_t deadline;
    int64_t late; /* out */
} timer_arg;

static int wait_for_deadline(gocc_ctx_t *unused, void *arg) {
    (void)unused;
    timer_arg *a = arg;
    atomic_fetch_add_explicit(&a->r->ready, 1, memory_order_release);
    int rc = gocc_chan_recv(a->r->start, NULL, NULL);
    if (rc != GOCC_ECLOSED) bench_die("recv on start", a->r->name, rc);
    rc = gocc_chan_recv(gocc_ctx_done(a->ctx), NULL, NULL);
    if (rc != GOCC_ECLOSED) bench_die("recv on done", a->r->name, rc);
    a->late = gocc_now() - a->deadline;
    gocc_waitgroup_done(&a->r->wg);
    return 0;
}

/* One round: every task blocks first, then the 1,000 contexts are made
 * (their timers all pending at once) and handed over by closing start;
 * the first deadline is far enough away for every task to be waiting on
 * its context by then. */
static void run_timers(const void *self, uint64_t n) {
    const char *name = self;
    int timers = bench_smoke() ? 20 : TIMERS;
    int64_t first = bench_smoke() ? GOCC_MILLISECOND : TIMER_FIRST_NS;
    int64_t span = bench_smoke() ? GOCC_MILLISECOND : TIMER_SPAN_NS;
    uint64_t total = n * (uint64_t)timers;
    int64_t *late = calloc(total, sizeof *late);
    timer_arg *args = calloc((size_t)timers, sizeof *args);
    if (late == NULL || args == NULL) bench_die("calloc", name, GOCC_ENOMEM);
    for (uint64_t round = 0; round < n; round++) {
        timer_run r = {.wg = GOCC_WAITGROUP_INIT, .start = gocc_chan_new(0, 0), .name = name};
        if (r.start == NULL) bench_die("gocc_chan_new", name, GOCC_ENOMEM);
        atomic_init(&r.ready, 0);
        gocc_waitgroup_add(&r.wg, timers);
        for (int i = 0; i < timers; i++) {
            args[i] = (timer_arg){.r = &r};
            int rc = gocc_go(wait_for_deadline, NULL, &args[i]);
            if (rc != 0) bench_die("gocc_go", name, rc);
        }
        while (atomic_load_explicit(&r.ready, memory_order_acquire) < timers)
            bench_sleep_ns(100000);
        int64_t t0 = gocc_now();
        /* Deadlines in a shuffled order, so the timer heap sees them out
         * of order as it would in a server. */
        for (int i = 0; i < timers; i++) {
            int slot = (int)(((uint64_t)i * 7919u) % (uint64_t)timers);
            args[i].deadline = t0 + first + span * slot / timers;
            args[i].ctx = gocc_ctx_with_deadline(NULL, args[i].deadline);
            if (args[i].ctx == NULL) bench_die("gocc_ctx_with_deadline", name, GOCC_ENOMEM);
        }
        gocc_chan_close(r.start);
        gocc_waitgroup_wait(&r.wg, NULL);
        for (int i = 0; i < timers; i++) {
            late[round * (uint64_t)timers + (uint64_t)i] = args[i].late;
            gocc_ctx_release(args[i].ctx);
        }
        gocc_chan_release(r.start);
        while (gocc_tasks_live() != 0) bench_sleep_ns(100000);
    }
    bench_sort_i64(late, total);
    bench_metric("p50", "ns", (double)bench_quantile(late, total, 0.50), BENCH_LOWER_IS_BETTER);
    bench_metric("p99", "ns", (double)bench_quantile(late, total, 0.99), BENCH_LOWER_IS_BETTER);
    free(late);
    free(args);
}

static const fanout_case fan1k = {"ctx/cancel/1000", 1000, false};
static const fanout_case fan10k = {"ctx/cancel/10000", 10000, false};
static const fanout_case base1k = {"baseline/ctx/cancel/1000", 1000, false};
static const fanout_case base10k = {"baseline/ctx/cancel/10000", 10000, false};
static const fanout_case task10k = {"task/ctx/cancel/10000", 10000, true};

int main(int argc, char **argv) {
    const bench_desc_t descs[] = {
        {fan1k.name, "ns/fanout", 1000, 0, run_fanout, &fan1k},
        {fan10k.name, "ns/fanout", 10000, 0, run_fanout, &fan10k},
        {base1k.name, "ns/fanout", 1000, 0, run_futex_fanout, &base1k},
        {base10k.name, "ns/fanout", 10000, 0, run_futex_fanout, &base10k},
        {task10k.name, "ns/fanout", 10000, 0, run_fanout_task, &task10k},
        {"timer/deadline/1000", NULL, TIMERS, 0, run_timers, "timer/deadline/1000"},
    };
    return bench_main(argc, argv, "bench-ctx", descs, (int)(sizeof descs / sizeof descs[0]));
}
