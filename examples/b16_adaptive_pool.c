/*
 * b16_adaptive_pool.c - B16 ("Advanced: Adaptive worker pool"):
 * a pool between minWorkers and maxWorkers whose size follows the queue
 * length. The Go AdaptivePool runs adjustWorkers on a ticker: spawn a
 * worker while the queue backs up (queueLen > current*2, current < max),
 * stop one with a poison pill when it is short (current > min).
 *
 * b16_adaptive: min 1, max 4 workers, queue 64, idle timeout 50 ms. A
 *   backlog of 60 tasks (5 ms each) grows the pool above 1 worker and never
 *   past 4; a monitor loop (the ticker of adjustWorkers, here only
 *   observing) samples stats.workers; once the queue is empty and the
 *   surplus workers have idled 50 ms they exit and the pool is back to 1.
 *
 * Go -> C: the AdaptivePool with its atomic current counter, tasks channel
 * and adjustWorkers goroutine is gocc_workpool_new_opts with
 * gocc_workpool_options_t {min_workers, max_workers, queue_cap,
 * idle_timeout_ns}: the pool grows when a submit finds the queue backed up
 * and no idle worker, and a surplus worker that stays idle for
 * idle_timeout_ns exits (the poison pill). Task is gocc_fn.
 *
 * Checks: every task ran once, workers rose above 1 and never above 4, the
 * pool went back to 1 worker (polled with a generous deadline, not a tight
 * one), stats balance, gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B16", ok, what)

#define MIN_WORKERS 1
#define MAX_WORKERS 4
#define TASKS 60

static atomic_int ran;

static bool stats_ok(const gocc_workpool_stats_t *s) {
    return s->submitted == s->completed + s->failed + s->queued + s->running + s->dropped;
}

static int work(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_sleep(5 * GOCC_MILLISECOND, ctx);
    atomic_fetch_add(&ran, 1);
    return 0;
}

static void b16_adaptive(void) {
    gocc_workpool_options_t opts = {
        .min_workers = MIN_WORKERS,
        .max_workers = MAX_WORKERS,
        .queue_cap = 64,
        .idle_timeout_ns = 50 * GOCC_MILLISECOND,
    };
    gocc_workpool_t *p = gocc_workpool_new_opts(&opts, NULL);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    gocc_workpool_stats_t s;
    gocc_workpool_stats(p, &s);
    size_t at_start = s.workers;
    size_t max_seen = s.workers;

    int accepted = 0;
    for (int i = 0; i < TASKS; i++) { /* the backlog */
        accepted += gocc_workpool_submit(p, work, NULL, NULL) == 0;
        gocc_workpool_stats(p, &s);
        if (s.workers > max_seen) max_seen = s.workers;
    }
    check(accepted == TASKS, "every task accepted");

    /* The monitor: sample while the backlog drains (generous deadline). */
    int64_t give_up = gocc_now() + 10 * GOCC_SECOND;
    for (;;) {
        gocc_workpool_stats(p, &s);
        if (s.workers > max_seen) max_seen = s.workers;
        if ((s.queued == 0 && s.running == 0) || gocc_now() > give_up) break;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    check(s.queued == 0 && s.running == 0, "the backlog drained");
    size_t after_drain = s.workers;

    /* Idle: surplus workers exit after 50 ms; poll up to 1.5 s. */
    int64_t t0 = gocc_now();
    give_up = t0 + 1500 * GOCC_MILLISECOND;
    for (;;) {
        gocc_workpool_stats(p, &s);
        if (s.workers > max_seen) max_seen = s.workers;
        if (s.workers <= MIN_WORKERS || gocc_now() > give_up) break;
        gocc_sleep(2 * GOCC_MILLISECOND, NULL);
    }
    int64_t shrink_ms = (gocc_now() - t0) / GOCC_MILLISECOND;
    size_t idle_workers = s.workers;

    check(at_start == MIN_WORKERS, "the pool starts with min workers");
    check(max_seen > MIN_WORKERS, "the backlog grew the pool above min");
    check(max_seen <= MAX_WORKERS, "the pool never passed max workers");
    check(idle_workers == MIN_WORKERS, "idle surplus workers exited, back to min");
    check(stats_ok(&s), "stats balance");

    gocc_workpool_shutdown(p, NULL);
    gocc_workpool_stats(p, &s);
    check(atomic_load(&ran) == TASKS && s.completed == TASKS, "every task ran once");
    check(s.workers == 0, "no worker after Shutdown");
    printf("B16 adaptive: min %d max %d, %d tasks; workers %zu at start, up to %zu under "
           "the backlog\n",
           MIN_WORKERS, MAX_WORKERS, TASKS, at_start, max_seen);
    printf("B16 adaptive: %zu workers when the queue emptied, %zu after idling "
           "(idle timeout 50 ms, reached min within %lld ms)\n",
           after_drain, idle_workers, (long long)shrink_ms);
    gocc_workpool_free(p);
}

int main(void) {
    b16_adaptive();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B16 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
