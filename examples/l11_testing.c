/*
 * l11_testing.c - L11 (Lesson 11): testing concurrency, as a
 * small test program.
 *
 * l11_race_detection: "always run -race". C's -race is ThreadSanitizer:
 *   the test suite builds and runs every example (this one too) under
 *   -Db_sanitize=thread, where a data race fails the run. The program says
 *   whether it is running instrumented.
 * l11_stress: "stress with -count=100 and randomized delays". 100 runs of 4
 *   tasks incrementing one counter, with random yields inside the update.
 *   A counter updated as load-then-store (atomics, so no data race that
 *   TSan could report, but not one atomic step) loses updates in some runs
 *   only: stress is what finds it. The fix, atomic_fetch_add, is right
 *   every time.
 * l11_cancel_test: "add cancellation tests to ensure goroutines exit". A
 *   worker group is started, its context cancelled, and the test asserts
 *   gocc_tasks_live() is back to its baseline within a deadline (Go's
 *   goleak). Run against workers that block without their context, the same
 *   test fails: it catches the leak (then the demo frees them by closing
 *   their channel).
 *
 * Checks: the fixed counter is exact in all 100 runs; the cancel test
 * passes for the right workers and catches the leaking ones;
 * gocc_tasks_live() == 0. The buggy counter's losses are reported, not
 * checked (they depend on timing). Exit 1 if wrong.
 *
 * Go -> C: `go test -race` is the -Db_sanitize=thread build, -count=100 a
 * loop, goleak is gocc_leakcheck (wait for gocc_tasks_live() to come back
 * to its baseline, else write the dump of what is left).
 */
#include <gocc.h>

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

#define check(ok, what) example_check_stdout("L11", ok, what)

/* Go's goleak is gocc_leakcheck: wait up to `within` for
 * gocc_tasks_live() to drop to `baseline`; on failure it writes the dump
 * of what is still live to fd (here: nowhere). */
static bool no_leak(size_t baseline, int64_t within) {
    return gocc_leakcheck(baseline, within, -1) == 0;
}

/* ---- L11: race detection ------------------------------------------------ */

static void l11_race_detection(void) {
    printf("L11 race detection: this build is instrumented by ThreadSanitizer: %s "
           "(the suite runs every example under -Db_sanitize=thread too)\n",
           UNDER_TSAN ? "yes" : "no");
}

/* ---- L11: stress with randomized delays --------------------------------- */

#define RUNS 100
#define TASKS 4
#define INCS 25

typedef struct stress {
    atomic_long counter;
    bool atomic_update; /* the fix */
    gocc_waitgroup_t wg;
} stress_t;

typedef struct stress_arg {
    stress_t *s;
    unsigned seed;
} stress_arg_t;

static unsigned xorshift(unsigned *x) {
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void random_delay(unsigned *x) {
    for (unsigned n = xorshift(x) % 4; n > 0; n--) sched_yield();
}

static int incrementer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    stress_arg_t *a = arg;
    unsigned x = a->seed;
    for (int i = 0; i < INCS; i++) {
        random_delay(&x);
        if (a->s->atomic_update) {
            atomic_fetch_add(&a->s->counter, 1);
        } else { /* BUG: read, then write back: another task's update in between is lost */
            long v = atomic_load(&a->s->counter);
            if (xorshift(&x) % 32 == 0) sched_yield(); /* the rare unlucky moment */
            atomic_store(&a->s->counter, v + 1);
        }
    }
    gocc_waitgroup_done(&a->s->wg);
    return 0;
}

/* One run of the test: TASKS x INCS increments; returns the final count. */
static long run_once(bool atomic_update, unsigned seed) {
    stress_t s = {.atomic_update = atomic_update, .wg = GOCC_WAITGROUP_INIT};
    atomic_init(&s.counter, 0);
    stress_arg_t args[TASKS];
    for (int t = 0; t < TASKS; t++) {
        args[t] = (stress_arg_t){&s, seed * 2654435761u + (unsigned)t * 40503u + 1u};
        gocc_waitgroup_add(&s.wg, 1);
        if (gocc_go(incrementer, NULL, &args[t]) != 0) incrementer(NULL, &args[t]);
    }
    gocc_waitgroup_wait(&s.wg, NULL);
    return atomic_load(&s.counter);
}

static void l11_stress(void) {
    const long want = (long)TASKS * INCS;
    int buggy_wrong = 0, fixed_right = 0;
    long lost = 0;
    for (unsigned run = 1; run <= RUNS; run++) { /* go test -count=100 */
        long got = run_once(false, run);
        if (got != want) buggy_wrong++, lost += want - got;
        fixed_right += run_once(true, run) == want;
    }
    check(fixed_right == RUNS, "the fetch_add counter is exact in every run");
    /* Wait returns once every task called Done; a task is counted live until
     * it has returned. Settle before anyone takes a baseline. */
    check(no_leak(0, 5 * GOCC_SECOND), "the stress tasks returned");
    printf("L11 stress: %d runs x %d tasks with random yields: load-then-store counter wrong "
           "in %d runs (%ld updates lost); fetch_add counter right in %d of %d\n",
           RUNS, TASKS, buggy_wrong, lost, fixed_right, RUNS);
}

/* ---- L11: tests proving tasks exit on cancel ---------------------------- */

#define WORKERS 8

typedef struct workers {
    gocc_chan_t *jobs; /* never gets a job in this test */
    bool observe_ctx;
    atomic_int handled;
} workers_t;

static int worker(gocc_ctx_t *ctx, void *arg) {
    workers_t *w = arg;
    int job;
    /* the right worker waits on its context; the leaky one on nothing */
    while (gocc_chan_recv(w->jobs, &job, w->observe_ctx ? ctx : NULL) == 0)
        atomic_fetch_add(&w->handled, 1);
    return 0;
}

/* The test: start WORKERS workers on ctx, cancel ctx, expect them gone
 * within `deadline`. Returns whether the test passed; a failure's dump
 * goes to `report_fd` (-1: none). */
static bool cancel_test(workers_t *w, int64_t deadline, size_t *left, double *ms,
                        int report_fd) {
    /* The baseline must be taken at rest: a task of an earlier test still
     * on its way out would drop the count later and hide a leak here. */
    no_leak(0, 5 * GOCC_SECOND);
    size_t baseline = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    int started = 0;
    for (int i = 0; ctx && i < WORKERS; i++) started += gocc_go(worker, ctx, w) == 0;
    check(started == WORKERS, "started the workers");
    gocc_sleep(GOCC_MILLISECOND, NULL); /* let them block */
    int64_t t0 = gocc_now();
    gocc_ctx_cancel(ctx);
    bool passed = gocc_leakcheck(baseline, deadline, report_fd) == 0;
    *ms = (double)(gocc_now() - t0) / 1e6;
    *left = gocc_tasks_live() - baseline;
    gocc_ctx_release(ctx);
    return passed;
}

static void l11_cancel_test(void) {
    size_t left = 0;
    double ms = 0;
    workers_t good = {.jobs = gocc_chan_new(sizeof(int), 0), .observe_ctx = true};
    bool passed = good.jobs && cancel_test(&good, 2 * GOCC_SECOND, &left, &ms, -1);
    check(passed, "the workers that observe ctx exit on cancel");
    printf("L11 cancel test: %d workers back to the baseline %.2f ms after cancel: %s\n",
           WORKERS, ms, passed ? "pass" : "FAIL");
    gocc_chan_release(good.jobs);

    workers_t leaky = {.jobs = gocc_chan_new(sizeof(int), 0), .observe_ctx = false};
    FILE *report = tmpfile(); /* what gocc_leakcheck says when it fails */
    passed = leaky.jobs && report &&
             cancel_test(&leaky, 50 * GOCC_MILLISECOND, &left, &ms, fileno(report));
    check(leaky.jobs && report && !passed && left == WORKERS, "the cancel test catches the leak");
    printf("L11 cancel test on workers that ignore ctx: %zu of %d still live %.0f ms after "
           "cancel: the test catches the leak; gocc_leakcheck's report begins:\n", left,
           WORKERS, ms);
    if (report != NULL) { /* its first lines: the counts, then one leaked task */
        rewind(report);
        char line[256];
        bool named = false;
        for (int i = 0; i < 5 && fgets(line, sizeof line, report) != NULL; i++) {
            printf("    %s", line);
            named |= strstr(line, "[chan receive, ") != NULL;
        }
        check(named, "the report shows a leaked worker blocked in chan receive");
        fclose(report);
    }
    gocc_chan_close(leaky.jobs); /* free them by hand, so the demo ends */
    check(no_leak(0, 5 * GOCC_SECOND), "the leaked workers exit once their channel closes");
    gocc_chan_release(leaky.jobs);
}

int main(void) {
    l11_race_detection();
    l11_stress();
    l11_cancel_test();
    check(no_leak(0, 5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L11 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
