/*
 * b15_worker_pool.c - B15 ("Worker Pool Evolution"): a worker
 * pool with graceful shutdown. NewWorkerPool(workers, queueSize);
 * Submit(task) error never blocks: "task queue is full" when the queue is
 * full, "pool is shutting down" after Shutdown; Shutdown(ctx) closes the
 * queue, waits for the workers, and when ctx ends first cancels the pool
 * context (p.cancel(): force) and returns ctx.Err().
 *
 * b15_submit_errors: 2 workers, queue 4. Two gated tasks occupy the
 *   workers, four fill the queue, the seventh Submit is refused (full);
 *   the gate opens, Shutdown(5 s) drains everything and returns nil, and a
 *   Submit after it is refused (shutting down).
 * b15_forced_shutdown: 1 worker, queue 8. A task that would run 10 s holds
 *   the worker, 5 more wait in the queue, Shutdown(50 ms) times out: the
 *   running task sees the pool context cancelled and returns its error,
 *   the 5 queued tasks are dropped and never run.
 *
 * Go -> C: type Task func(context.Context) error is gocc_fn with an arg;
 * the WorkerPool struct, its channel, WaitGroup, Once and cancel are
 * gocc_workpool_t; Submit's select-with-default is gocc_workpool_try_submit
 * (GOCC_EAGAIN = full, GOCC_ESHUTDOWN = shutting down); Shutdown(ctx) is
 * gocc_workpool_shutdown with a gocc_ctx_with_timeout; the error strings
 * come from submit_error().
 *
 * Checks: the return codes above, stats (submitted == completed + failed +
 * queued + running + dropped, rejected == 1, dropped == 5), dropped tasks
 * never ran, the forced shutdown took far less than the task's 10 s,
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B15", ok, what)

/* The Go pool's error values. */
static const char *submit_error(int rc) {
    switch (rc) {
    case 0: return "nil";
    case GOCC_EAGAIN: return "task queue is full";
    case GOCC_ESHUTDOWN: return "pool is shutting down";
    default: return "other error";
    }
}

/* Wait (generously) until the pool reports `running` tasks running. */
static bool wait_running(gocc_workpool_t *p, size_t running) {
    int64_t give_up = gocc_now() + 5 * GOCC_SECOND;
    gocc_workpool_stats_t s;
    for (;;) {
        gocc_workpool_stats(p, &s);
        if (s.running >= running || gocc_now() > give_up) break;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    return s.running >= running;
}

static bool stats_balance(const gocc_workpool_stats_t *s) {
    return s->submitted == s->completed + s->failed + s->queued + s->running + s->dropped;
}

/* ---- Submit: full, then shutting down -------------------------------- */

typedef struct gated {
    gocc_chan_t *gate; /* closed to let the gated tasks finish */
    atomic_int ran;
} gated_t;

/* A task that waits for the gate (or the pool's cancellation). */
static int gated_task(gocc_ctx_t *ctx, void *arg) {
    gated_t *g = arg;
    int rc = gocc_chan_recv(g->gate, NULL, ctx);
    atomic_fetch_add(&g->ran, 1);
    return rc == GOCC_ECLOSED ? 0 : rc;
}

static void b15_submit_errors(void) {
    gated_t g = {.gate = gocc_chan_new(0, 0)};
    gocc_workpool_t *p = gocc_workpool_new(2, 4, NULL); /* NewWorkerPool(2, 4) */
    if (!g.gate || !p) {
        check(false, "made the pool");
        gocc_workpool_free(p);
        gocc_chan_release(g.gate);
        return;
    }
    int accepted = 0;
    for (int i = 0; i < 2; i++) accepted += gocc_workpool_try_submit(p, gated_task, &g) == 0;
    check(wait_running(p, 2), "both workers busy");
    for (int i = 0; i < 4; i++) accepted += gocc_workpool_try_submit(p, gated_task, &g) == 0;
    check(accepted == 6, "2 running + 4 queued accepted");
    int full = gocc_workpool_try_submit(p, gated_task, &g); /* the 7th */
    check(full == GOCC_EAGAIN, "Submit on a full queue fails with 'task queue is full'");
    printf("B15 submit: 2 workers busy, 4 queued; the 7th Submit: %s\n", submit_error(full));

    gocc_chan_close(g.gate); /* the gated tasks may finish */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    int rc = gocc_workpool_shutdown(p, ctx);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(rc == 0, "Shutdown drained the queue in time (nil)");
    int after = gocc_workpool_try_submit(p, gated_task, &g);
    check(after == GOCC_ESHUTDOWN, "Submit after Shutdown fails with 'pool is shutting down'");
    int after_blocking = gocc_workpool_submit(p, gated_task, &g, NULL);
    check(after_blocking == GOCC_ESHUTDOWN, "a blocking submit after Shutdown fails too");

    gocc_workpool_stats_t s;
    gocc_workpool_stats(p, &s);
    check(stats_balance(&s), "submitted == completed + failed + queued + running + dropped");
    check(s.submitted == 6 && s.completed == 6 && s.rejected == 1 && s.dropped == 0,
          "6 accepted and completed, 1 rejected, none dropped");
    check(atomic_load(&g.ran) == 6, "every accepted task ran once");
    check(s.workers == 0, "no worker left after Shutdown");
    printf("B15 shutdown: %s; submitted %llu, completed %llu, rejected %llu; "
           "Submit after Shutdown: %s\n",
           rc == 0 ? "nil" : "error", (unsigned long long)s.submitted,
           (unsigned long long)s.completed, (unsigned long long)s.rejected, submit_error(after));
    gocc_workpool_free(p);
    gocc_chan_release(g.gate);
}

/* ---- Shutdown(ctx) that forces on timeout ---------------------------- */

typedef struct forced {
    atomic_int slow_err; /* what the slow task's sleep returned */
    atomic_int quick_ran;
} forced_t;

static int slow_task(gocc_ctx_t *ctx, void *arg) {
    forced_t *f = arg;
    int rc = gocc_sleep(10 * GOCC_SECOND, ctx); /* woken by the forced shutdown */
    atomic_store(&f->slow_err, rc == 0 ? 1 : rc);
    return rc; /* ctx.Err(): counted in failed */
}

static int quick_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    forced_t *f = arg;
    atomic_fetch_add(&f->quick_ran, 1);
    return 0;
}

static void b15_forced_shutdown(void) {
    forced_t f = {0};
    gocc_workpool_t *p = gocc_workpool_new(1, 8, NULL);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    int accepted = gocc_workpool_try_submit(p, slow_task, &f) == 0;
    check(wait_running(p, 1), "the slow task started");
    for (int i = 0; i < 5; i++) accepted += gocc_workpool_try_submit(p, quick_task, &f) == 0;
    check(accepted == 6, "1 slow + 5 quick tasks accepted");

    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    int rc = gocc_workpool_shutdown(p, ctx); /* Shutdown(ctx): times out, forces */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    int64_t took = gocc_now() - t0;

    gocc_workpool_stats_t s;
    gocc_workpool_stats(p, &s);
    check(rc == GOCC_EDEADLINE, "Shutdown returned ctx.Err() (deadline exceeded)");
    check(stats_balance(&s), "submitted == completed + failed + queued + running + dropped");
    check(s.submitted == 6 && s.dropped == 5 && s.failed == 1 && s.completed == 0,
          "the slow task failed, the 5 queued ones were dropped");
    check(s.queued == 0 && s.running == 0 && s.workers == 0, "nothing left after Shutdown");
    check(atomic_load(&f.quick_ran) == 0, "dropped tasks never ran");
    check(atomic_load(&f.slow_err) == GOCC_ECANCELED,
          "the running task saw the pool context cancelled");
    check(took < 5 * GOCC_SECOND, "the forced shutdown did not wait for the 10 s task");
    printf("B15 forced: Shutdown(50ms) -> deadline exceeded after %lld ms; running task "
           "cancelled, %llu queued dropped (ran: %d), failed %llu\n",
           (long long)(took / GOCC_MILLISECOND), (unsigned long long)s.dropped,
           atomic_load(&f.quick_ran), (unsigned long long)s.failed);
    gocc_workpool_free(p);
}

int main(void) {
    b15_submit_errors();
    b15_forced_shutdown();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B15 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
