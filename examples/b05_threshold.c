/*
 * b05_threshold.c - B05 (chapter 9, "Atomic Patterns"): a lock-free counter
 * that fires a callback once, when it reaches a threshold.
 *
 *   func (tc *ThresholdCounter) Increment() {
 *       new := tc.count.Add(1)
 *       if new == tc.threshold { go tc.callback() }
 *   }
 *
 * Why it fires exactly once: Add returns the value THIS increment made, and
 * every increment makes a different one, so exactly one caller gets
 * new == threshold, however many race. (Comparing a separate Load() after
 * the Add would not do: two callers can both load the threshold, or both
 * load past it.) And `go tc.callback()` runs the callback as its own task,
 * so the incrementer that crossed the threshold does not wait for it.
 *
 * b05_fires_once: 8 tasks x 1000 increments, threshold 5000. The callback
 *   records who fired it and then blocks until main lets it go, so the
 *   example sees all 8000 increments finish while the callback is still
 *   running: Increment never waited for it.
 * b05_never_fires: 4 tasks x 100 increments with threshold 1000: the
 *   counter stops at 400 and the callback never runs.
 *
 * Go -> C: atomic.Int64 is _Atomic int64_t and Add(1) is
 * atomic_fetch_add(&count, 1) + 1 (C returns the old value, Go the new);
 * func() is a function pointer with an argument; go tc.callback() is
 * gocc_go(callback). If no task could be started that is counted and
 * the example fails.
 *
 * Checks: the callback ran exactly once, from the increment that made the
 * count 5000; all 8000 increments finished while it was still blocked; the
 * final count is exact; the counter that stops below its threshold never
 * fires; gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B05", ok, what)

/* ---- ThresholdCounter ----------------------------------------------------- */

typedef struct threshold_counter {
    _Atomic int64_t count;
    int64_t threshold;
    gocc_fn callback; /* func(), run as a task; arg: cb_arg */
    void *cb_arg;
    atomic_int go_failed; /* gocc_go could not start the callback */
} threshold_counter_t;

/* Increment; returns the value this call made (for the checks). */
static int64_t increment(threshold_counter_t *tc) {
    int64_t new = atomic_fetch_add(&tc->count, 1) + 1; /* new := tc.count.Add(1) */
    if (new == tc->threshold && gocc_go(tc->callback, NULL, tc->cb_arg) != 0) /* go tc.callback() */
        atomic_fetch_add(&tc->go_failed, 1);
    return new;
}

/* ---- the callback and the incrementers ------------------------------------ */

typedef struct fired {
    atomic_int calls;
    gocc_chan_t *release;  /* closed by main to let the callback return */
    gocc_ctx_t *give_up;   /* 5 s: bounds the wait if nobody releases it */
    atomic_bool returned;  /* set as the callback returns */
    atomic_int release_rc; /* what its wait for release returned */
} fired_t;

/* Blocks until main closes release (or 5 s pass: had Increment waited for
 * the callback, main could never get there, and this shows as a failure
 * instead of a hang). */
static int on_threshold(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fired_t *f = arg;
    atomic_fetch_add(&f->calls, 1);
    atomic_store(&f->release_rc, gocc_chan_recv(f->release, NULL, f->give_up));
    atomic_store(&f->returned, true);
    return 0;
}

typedef struct incrementer {
    threshold_counter_t *tc;
    gocc_chan_t *start; /* closed once every incrementer exists */
    int n;
    bool made_threshold; /* out: this task's increment made count == threshold */
} incrementer_t;

static int increment_task(gocc_ctx_t *ctx, void *arg) {
    incrementer_t *in = arg;
    gocc_chan_recv(in->start, NULL, ctx); /* all race from here */
    for (int i = 0; i < in->n; i++)
        if (increment(in->tc) == in->tc->threshold) in->made_threshold = true;
    return 0;
}

/* Run `tasks` incrementers of n increments each; true when all started. */
static bool run_incrementers(threshold_counter_t *tc, incrementer_t *in, int tasks, int n) {
    gocc_chan_t *start = gocc_chan_new(0, 0);
    gocc_group_t *g = gocc_group_new(NULL);
    int started = 0;
    for (int i = 0; start && g && i < tasks; i++) {
        in[i] = (incrementer_t){tc, start, n, false};
        started += gocc_group_go(g, increment_task, &in[i]) == 0;
    }
    gocc_chan_close(start);
    gocc_group_wait(g);
    gocc_group_free(g);
    gocc_chan_release(start);
    return started == tasks;
}

static int count_true(const incrementer_t *in, int tasks) {
    int n = 0;
    for (int i = 0; i < tasks; i++) n += in[i].made_threshold;
    return n;
}

/* ---- b05_fires_once ------------------------------------------------------- */

#define TASKS 8
#define INCS 1000
#define THRESHOLD 5000

static void b05_fires_once(void) {
    fired_t f = {.release = gocc_chan_new(0, 0),
                 .give_up = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND)};
    if (!f.release || !f.give_up) {
        check(false, "made the channel and context");
        gocc_chan_release(f.release);
        gocc_ctx_release(f.give_up);
        return;
    }
    threshold_counter_t tc = {.threshold = THRESHOLD, .callback = on_threshold, .cb_arg = &f};
    incrementer_t in[TASKS];
    bool all = run_incrementers(&tc, in, TASKS, INCS);

    /* Every increment has returned. The callback was started by the one
     * that made 5000 and waits for release, which only this line opens. */
    bool still_running = !atomic_load(&f.returned);
    gocc_chan_close(f.release);
    bool ended = example_tasks_exit_within(5 * GOCC_SECOND);

    int64_t count = atomic_load(&tc.count);
    check(all && count == TASKS * INCS, "the count is exactly 8 x 1000");
    check(atomic_load(&tc.go_failed) == 0 && atomic_load(&f.calls) == 1,
          "the callback ran exactly once, as its own task");
    check(count_true(in, TASKS) == 1, "exactly one increment made the count 5000");
    check(still_running, "all 8000 increments returned while the callback ran on");
    check(ended && atomic_load(&f.release_rc) == GOCC_ECLOSED,
          "the callback returned once released");
    printf("B05 fires once: %d tasks x %d increments, threshold %d: count %lld, callback ran "
           "%d time(s), fired by %d increment; the increments finished while it was still "
           "running: %s\n",
           TASKS, INCS, THRESHOLD, (long long)count, atomic_load(&f.calls), count_true(in, TASKS),
           still_running ? "yes" : "no");
    gocc_ctx_cancel(f.give_up);
    gocc_ctx_release(f.give_up);
    gocc_chan_release(f.release);
}

/* ---- b05_never_fires ------------------------------------------------------ */

static int count_call(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void b05_never_fires(void) {
    atomic_int calls = 0;
    threshold_counter_t tc = {.threshold = 1000, .callback = count_call, .cb_arg = &calls};
    incrementer_t in[4];
    bool all = run_incrementers(&tc, in, 4, 100);
    bool ended = example_tasks_exit_within(5 * GOCC_SECOND);
    int64_t count = atomic_load(&tc.count);
    check(all && ended && count == 400 && atomic_load(&calls) == 0,
          "a counter that stops below its threshold never fires");
    printf("B05 never fires: 4 tasks x 100 increments, threshold 1000: count %lld, callback ran "
           "%d time(s)\n",
           (long long)count, atomic_load(&calls));
}

int main(void) {
    b05_fires_once();
    b05_never_fires();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B05 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
