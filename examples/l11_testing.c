/*
 * l11_testing.c - L11 (Deep Dive, Lesson 11): testing concurrency, as a
 * small test program.
 *
 * l11_race_detection: "always run -race". C's -race is ThreadSanitizer. In
 *   a build with -Db_sanitize=thread this part runs a real data race (two
 *   tasks incrementing a plain long) in a child process and checks that
 *   ThreadSanitizer stops it: exit status 66, "WARNING: ThreadSanitizer:
 *   data race" on its stderr. In any other build nothing could catch a data
 *   race, and the program says so: the test command (scripts/test.sh) also
 *   builds every example with -Db_sanitize=thread and runs them (meson test
 *   suite "examples"), this one included, and that is where the check runs.
 * l11_stress: "stress with -count=100 and randomized delays". 4 tasks
 *   increment one counter 25 times each; the buggy update is load-then-
 *   store (atomics, so no data race TSan could report, but not one atomic
 *   step). Run plainly, 100 times, it loses updates in only a few runs (0
 *   to 3 of 100 in an optimised build on a 2-core machine: each task's 25
 *   increments take less time than starting the next task, so they seldom
 *   overlap; about a quarter under ThreadSanitizer, which slows every
 *   step): a test run once usually passes. Run with random yields between
 *   and inside the updates, the way a stress harness perturbs scheduling,
 *   it loses updates in nearly every run: the stress is what finds it. The fix,
 *   atomic_fetch_add, is exact in every run, with the same delays.
 * l11_cancel_test: "add cancellation tests to ensure goroutines exit". A
 *   worker group is started, its context cancelled, and the test asserts
 *   gocc_tasks_live() is back to its baseline within a deadline (Go's
 *   goleak). Run against workers that block without their context, the same
 *   test fails: it catches the leak (then the demo frees them by closing
 *   their channel).
 *
 * Checks: under TSan, the child's race was reported (exit 66); the stress
 * runs found the lost update (at least one of 100 wrong; the plain runs'
 * count is printed, not checked: it depends on timing); the fixed counter
 * is exact in all 100 stress runs; the cancel test passes for the right
 * workers and catches the leaking ones; gocc_tasks_live() == 0. Exit 1 if
 * wrong.
 *
 * Go -> C: `go test -race` is the -Db_sanitize=thread build, -count=100 a
 * loop, goleak is gocc_leakcheck (wait for gocc_tasks_live() to come back
 * to its baseline, else write the dump of what is left).
 */
#define _POSIX_C_SOURCE 200809L /* posix_spawn, waitpid, fileno */
#include <gocc.h>

#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The child's data race: two tasks, released together, increment a plain
 * long. Run only in the ThreadSanitizer build, where it is reported. */
static volatile long racy_counter;
static _Atomic int racers; /* relaxed only: it must not order the two */

static int racy_task(gocc_ctx_t *ctx, void *arg) {
    gocc_chan_recv(arg, NULL, ctx); /* the gate: both start together */
    /* ... and wait (up to 2 s) until both are here: on a loaded machine one
     * could otherwise finish before the other starts, and ThreadSanitizer
     * reports a race only while it still has the first one's accesses. A
     * relaxed atomic carries no happens-before, so the race stays a race. */
    atomic_fetch_add_explicit(&racers, 1, memory_order_relaxed);
    for (int64_t end = gocc_now() + 2 * GOCC_SECOND;
         atomic_load_explicit(&racers, memory_order_relaxed) < 2 && gocc_now() < end;) {
    }
    for (int i = 0; i < 100000; i++) racy_counter++; /* BUG: a data race */
    return 0;
}

static int race_child(void) {
    gocc_chan_t *gate = gocc_chan_new(0, 0);
    if (!gate) return 1;
    /* On threads of their own, so the two really run at once: libgocc's
     * ThreadSanitizer build orders tasks that run one after another on a
     * worker (each switch goes through the worker's scheduler), so it
     * reports a race between coroutine tasks only when they run at the
     * same time on different workers (docs/guide/tasks.md). */
    gocc_task_opts_t own = {.own_thread = true};
    for (int i = 0; i < 2; i++) gocc_go_opts(racy_task, NULL, gate, &own);
    gocc_chan_close(gate);
    example_tasks_exit_within(5 * GOCC_SECOND);
    gocc_chan_release(gate);
    printf("L11 race child: counter %ld, no report\n", racy_counter);
    return 0; /* not reached under TSan: it exits 66 at the report */
}

extern char **environ;

/* Run this program as the racy child with TSAN_OPTIONS set for the test;
 * its stderr goes to `err`. Returns its wait status, or -1. */
static int spawn_race_child(const char *self, FILE *err) {
    static char opts[] = "TSAN_OPTIONS=halt_on_error=1:exitcode=66:report_signal_unsafe=0";
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "TSAN_OPTIONS=", 13) != 0) env[k++] = environ[i];
    env[k++] = opts;
    char *argv[] = {(char *)self, "--race-child", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(err), 2);
    pid_t pid;
    int status = -1;
    if (posix_spawn(&pid, self, &fa, NULL, argv, env) == 0 && waitpid(pid, &status, 0) != pid)
        status = -1;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    return status;
}

static void l11_race_detection(const char *argv0) {
    if (!UNDER_TSAN) {
        printf("L11 race detection: this build is not instrumented, so a data race would go "
               "unnoticed here; the test command (scripts/test.sh) builds every example with "
               "-Db_sanitize=thread too and runs it, this one included: there this part runs "
               "a deliberate race in a child process and checks that ThreadSanitizer stops "
               "it\n");
        return;
    }
    FILE *err = tmpfile();
    const char *self = access("/proc/self/exe", X_OK) == 0 ? "/proc/self/exe" : argv0;
    int status = err ? spawn_race_child(self, err) : -1;
    bool reported = false;
    if (err) {
        char line[256];
        rewind(err);
        while (!reported && fgets(line, sizeof line, err) != NULL)
            reported = strstr(line, "ThreadSanitizer: data race") != NULL;
        fclose(err);
    }
    bool caught = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 66;
    check(caught && reported, "ThreadSanitizer stopped the child's data race (exit 66)");
    printf("L11 race detection: instrumented by ThreadSanitizer; a child process with a data "
           "race %s (exit status %d, %s)\n",
           caught ? "was stopped" : "was NOT stopped",
           status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1,
           reported ? "\"WARNING: ThreadSanitizer: data race\" on its stderr" : "no report");
}

/* ---- L11: stress with randomized delays --------------------------------- */

#define RUNS 100
#define TASKS 4
#define INCS 25

enum update { LOAD_THEN_STORE, LOAD_THEN_STORE_STRESSED, FETCH_ADD_STRESSED };

typedef struct stress {
    atomic_long counter;
    enum update how;
    gocc_waitgroup_t wg;
    gocc_chan_t *start; /* closed once every task exists: they start together */
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

/* What a stress harness adds: a few yields here and there (gocc_yield:
 * other tasks run in between, as with Go's runtime.Gosched). */
static void random_delay(unsigned *x) {
    for (unsigned n = xorshift(x) % 4; n > 0; n--) gocc_yield();
}

static int incrementer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    stress_arg_t *a = arg;
    bool stressed = a->s->how != LOAD_THEN_STORE;
    unsigned x = a->seed;
    if (a->s->start) gocc_chan_recv(a->s->start, NULL, NULL);
    for (int i = 0; i < INCS; i++) {
        if (stressed) random_delay(&x);
        if (a->s->how == FETCH_ADD_STRESSED) {
            atomic_fetch_add(&a->s->counter, 1);
        } else { /* BUG: read, then write back: another task's update in between is lost */
            long v = atomic_load(&a->s->counter);
            if (stressed && xorshift(&x) % 8 == 0) gocc_yield(); /* a delay inside */
            atomic_store(&a->s->counter, v + 1);
        }
    }
    gocc_waitgroup_done(&a->s->wg);
    return 0;
}

/* One run of the test: TASKS x INCS increments; returns the final count. */
static long run_once(enum update how, unsigned seed) {
    stress_t s = {.how = how, .wg = GOCC_WAITGROUP_INIT, .start = gocc_chan_new(0, 0)};
    atomic_init(&s.counter, 0);
    stress_arg_t args[TASKS];
    for (int t = 0; t < TASKS; t++) {
        args[t] = (stress_arg_t){&s, seed * 2654435761u + (unsigned)t * 40503u + 1u};
        gocc_waitgroup_add(&s.wg, 1);
        if (gocc_go(incrementer, NULL, &args[t]) != 0) {
            gocc_chan_t *start = s.start;
            s.start = NULL; /* (run here: it must not wait for the gate) */
            incrementer(NULL, &args[t]);
            s.start = start;
        }
    }
    gocc_chan_close(s.start);
    gocc_waitgroup_wait(&s.wg, NULL);
    gocc_chan_release(s.start);
    return atomic_load(&s.counter);
}

/* go test -count=100: how many of the runs came out wrong. */
static int runs_wrong(enum update how) {
    int wrong = 0;
    for (unsigned run = 1; run <= RUNS; run++) wrong += run_once(how, run) != (long)TASKS * INCS;
    return wrong;
}

static void l11_stress(void) {
    int plain = runs_wrong(LOAD_THEN_STORE);
    int stressed = runs_wrong(LOAD_THEN_STORE_STRESSED);
    int fixed = runs_wrong(FETCH_ADD_STRESSED);
    check(stressed >= 1, "the stress runs found the lost update");
    check(fixed == 0, "the fetch_add counter is exact in every stress run");
    /* Wait returns once every task called Done; a task is counted live until
     * it has returned. Settle before anyone takes a baseline. */
    check(no_leak(0, 5 * GOCC_SECOND), "the stress tasks returned");
    printf("L11 stress: %d runs x %d tasks x %d increments: the load-then-store counter "
           "lost updates in %d runs plainly, in %d with random yields (the stress); the "
           "fetch_add counter was wrong in %d stressed runs\n",
           RUNS, TASKS, INCS, plain, stressed, fixed);
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
static bool cancel_test(workers_t *w, int64_t deadline, size_t *left, double *ms, int report_fd) {
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
    printf("L11 cancel test: %d workers back to the baseline %.2f ms after cancel: %s\n", WORKERS,
           ms, passed ? "pass" : "FAIL");
    gocc_chan_release(good.jobs);

    workers_t leaky = {.jobs = gocc_chan_new(sizeof(int), 0), .observe_ctx = false};
    FILE *report = tmpfile(); /* what gocc_leakcheck says when it fails */
    passed = leaky.jobs && report &&
             cancel_test(&leaky, 50 * GOCC_MILLISECOND, &left, &ms, fileno(report));
    check(leaky.jobs && report && !passed && left == WORKERS, "the cancel test catches the leak");
    printf("L11 cancel test on workers that ignore ctx: %zu of %d still live %.0f ms after "
           "cancel: the test catches the leak; gocc_leakcheck's report begins:\n",
           left, WORKERS, ms);
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

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--race-child") == 0) return race_child();
    l11_race_detection(argv[0]);
    l11_stress();
    l11_cancel_test();
    check(no_leak(0, 5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L11 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
