/*
 * b15_worker_pool.c - B15 (chapter 9, "Worker Pool Evolution"): a worker
 * pool with graceful shutdown. NewWorkerPool(workers, queueSize);
 * Submit(task) error never blocks: "task queue is full" when the queue is
 * full, "pool is shutting down" after Shutdown; Shutdown(ctx) closes the
 * queue, waits for the workers, and when ctx ends first cancels the pool
 * context (p.cancel(): force) and returns ctx.Err().
 *
 * First the pool as the chapter builds it, by hand: a buffered channel of
 * tasks (taskQueue), a WaitGroup for the workers, a Once that closes the
 * queue, and a pool context whose cancel forces the workers out:
 *
 *   worker: for { select { case task, ok := <-p.taskQueue: if !ok { return }
 *                                                       task(p.ctx)
 *                          case <-p.ctx.Done(): return } }
 *   Submit: select { case p.taskQueue <- task: return nil
 *                    case <-p.ctx.Done(): return "pool is shutting down"
 *                    default: return "task queue is full" }
 *   Shutdown(ctx): p.once.Do(close(p.taskQueue)); wait for p.wg, or on
 *                  <-ctx.Done(): p.cancel(); return ctx.Err()
 *
 * Then, in practice, the same two runs on libgocc's gocc_workpool, which
 * is that pool (its queue, WaitGroup, Once and cancel are inside) plus
 * counters: gocc_workpool_try_submit is Submit (GOCC_EAGAIN = full,
 * GOCC_ESHUTDOWN = shutting down), gocc_workpool_shutdown is Shutdown(ctx).
 *
 * Each pool runs:
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
 * the select with a default is gocc_select_try; the channel carries
 * {fn, arg} by value; the error strings come from submit_error(). The
 * WaitGroup wait in Shutdown, Go's done channel closed by a goroutine after
 * wg.Wait() and raced against ctx.Done(), is gocc_waitgroup_wait(&wg, ctx).
 * Where the hand-built pool departs from the chapter's code:
 *   - Submit after Shutdown: in Go it sends on the closed taskQueue and
 *     panics; here that send fails (the case proceeds with ok false) and
 *     Submit returns "pool is shutting down", as the chapter intends;
 *   - forced shutdown: a worker whose pool context is cancelled returns
 *     before it takes another task (libgocc's receive with a context that
 *     is done returns at once), so the queued tasks are dropped; Go's
 *     select would pick at random between a queued task and Done and might
 *     run some with a cancelled context. Shutdown returns at once as in Go,
 *     and the pool's free waits for the workers before it frees anything.
 *
 * Checks, for each pool: the Submit results above; every accepted task ran
 * exactly once in the graceful run; in the forced run the running task saw
 * "context canceled", the queued tasks never ran, Shutdown returned the
 * deadline error within 2 s (not after the task's 10 s); for gocc_workpool
 * also its counters (submitted == completed + failed + queued + running +
 * dropped, rejected == 1, dropped == 5); gocc_tasks_live() == 0 at the end.
 * Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

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

/* What the two runs need of a pool. */
typedef struct pool_ops {
    const char *name;
    void *(*make)(size_t workers, size_t queue_size);
    int (*submit)(void *pool, gocc_fn fn, void *arg); /* never blocks */
    int (*shutdown)(void *pool, gocc_ctx_t *ctx);
    void (*destroy)(void *pool);                           /* after it, no task of the pool runs */
    void (*stats)(void *pool, gocc_workpool_stats_t *out); /* NULL: none */
} pool_ops_t;

/* ---- by hand: a channel, a WaitGroup, a Once and a cancel -------------- */

typedef struct task {
    gocc_fn fn;
    void *arg;
} task_t;

typedef struct worker_pool {
    gocc_chan_t *task_queue; /* chan Task, capacity queueSize */
    gocc_waitgroup_t wg;     /* the workers */
    gocc_once_t once;        /* closes task_queue once */
    gocc_ctx_t *ctx;         /* the pool context; gocc_ctx_cancel is p.cancel() */
} worker_pool_t;

static int pool_worker(gocc_ctx_t *ctx, void *arg) {
    worker_pool_t *p = arg;
    task_t t;
    /* select { case task, ok := <-p.taskQueue: ... case <-p.ctx.Done(): } */
    while (gocc_chan_recv(p->task_queue, &t, ctx) == 0) /* ECLOSED: !ok; else Done */
        (void)t.fn(ctx, t.arg);                         /* a task's error: the Go code logs it */
    gocc_waitgroup_done(&p->wg);
    return 0;
}

static void worker_pool_free(void *pool) {
    worker_pool_t *p = pool;
    if (p == NULL) return;
    gocc_waitgroup_wait(&p->wg, NULL); /* the workers are done with p */
    gocc_ctx_cancel(p->ctx);
    gocc_ctx_release(p->ctx);
    gocc_chan_release(p->task_queue);
    free(p);
}

/* func NewWorkerPool(workers, queueSize int) *WorkerPool */
static void *worker_pool_new(size_t workers, size_t queue_size) {
    worker_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    p->once = (gocc_once_t)GOCC_ONCE_INIT;
    p->task_queue = gocc_chan_new(sizeof(task_t), queue_size);
    p->ctx = gocc_ctx_with_cancel(NULL);
    if (p->task_queue == NULL || p->ctx == NULL) {
        worker_pool_free(p);
        return NULL;
    }
    for (size_t i = 0; i < workers; i++) { /* p.start() */
        gocc_waitgroup_add(&p->wg, 1);
        if (gocc_go(pool_worker, p->ctx, p) != 0) {
            gocc_waitgroup_done(&p->wg);
            gocc_chan_close(p->task_queue); /* the ones started leave */
            worker_pool_free(p);
            return NULL;
        }
    }
    return p;
}

static int worker_pool_submit(void *pool, gocc_fn fn, void *arg) {
    worker_pool_t *p = pool;
    task_t t = {fn, arg};
    gocc_case_t cases[] = {
        {.ch = p->task_queue, .dir = GOCC_SEND, .elem = &t}, /* case p.taskQueue <- task */
        {.ch = gocc_ctx_done(p->ctx), .dir = GOCC_RECV},     /* case <-p.ctx.Done() */
    };
    int r = gocc_select_try(cases, 2);
    if (r == 0 && cases[0].ok) return 0;
    if (r == GOCC_EAGAIN) return GOCC_EAGAIN; /* default: the queue is full */
    return GOCC_ESHUTDOWN;                    /* Done, or the queue closed by Shutdown */
}

static int close_queue(void *arg) {
    gocc_chan_close(((worker_pool_t *)arg)->task_queue);
    return 0;
}

static int worker_pool_shutdown(void *pool, gocc_ctx_t *ctx) {
    worker_pool_t *p = pool;
    gocc_once_do(&p->once, close_queue, p);     /* p.once.Do(func() { close(p.taskQueue) }) */
    int err = gocc_waitgroup_wait(&p->wg, ctx); /* done, or ctx.Done() first */
    if (err != 0) gocc_ctx_cancel(p->ctx);      /* p.cancel(): force */
    return err;
}

static const pool_ops_t by_hand = {
    "by hand", worker_pool_new, worker_pool_submit, worker_pool_shutdown, worker_pool_free, NULL};

/* ---- in practice: gocc_workpool ----------------------------------------- */

static void *workpool_new(size_t workers, size_t queue_size) {
    return gocc_workpool_new(workers, queue_size, NULL);
}
static int workpool_submit(void *pool, gocc_fn fn, void *arg) {
    return gocc_workpool_try_submit(pool, fn, arg);
}
static int workpool_shutdown(void *pool, gocc_ctx_t *ctx) {
    return gocc_workpool_shutdown(pool, ctx);
}
static void workpool_free(void *pool) { gocc_workpool_free(pool); }
static void workpool_stats(void *pool, gocc_workpool_stats_t *out) {
    gocc_workpool_stats(pool, out);
}

static const pool_ops_t workpool = {"gocc_workpool",   workpool_new,  workpool_submit,
                                    workpool_shutdown, workpool_free, workpool_stats};

/* ---- the runs ------------------------------------------------------------ */

/* Wait (generously) until `n` tasks have started. */
static bool wait_started(atomic_int *started, int n) {
    int64_t give_up = gocc_now() + 5 * GOCC_SECOND;
    while (atomic_load(started) < n && gocc_now() < give_up) gocc_sleep(GOCC_MILLISECOND, NULL);
    return atomic_load(started) >= n;
}

static bool stats_balance(const gocc_workpool_stats_t *s) {
    return s->submitted == s->completed + s->failed + s->queued + s->running + s->dropped;
}

typedef struct gated {
    gocc_chan_t *gate; /* closed to let the gated tasks finish */
    atomic_int started, ran;
} gated_t;

/* A task that waits for the gate (or the pool's cancellation). */
static int gated_task(gocc_ctx_t *ctx, void *arg) {
    gated_t *g = arg;
    atomic_fetch_add(&g->started, 1);
    int rc = gocc_chan_recv(g->gate, NULL, ctx);
    atomic_fetch_add(&g->ran, 1);
    return rc == GOCC_ECLOSED ? 0 : rc;
}

static void b15_submit_errors(const pool_ops_t *ops) {
    gated_t g = {.gate = gocc_chan_new(0, 0)};
    void *p = ops->make(2, 4); /* NewWorkerPool(2, 4) */
    if (!g.gate || !p) {
        check(false, "made the pool");
        if (p) ops->destroy(p);
        gocc_chan_release(g.gate);
        return;
    }
    int accepted = 0;
    for (int i = 0; i < 2; i++) accepted += ops->submit(p, gated_task, &g) == 0;
    check(wait_started(&g.started, 2), "both workers busy");
    for (int i = 0; i < 4; i++) accepted += ops->submit(p, gated_task, &g) == 0;
    check(accepted == 6, "2 running + 4 queued accepted");
    int full = ops->submit(p, gated_task, &g); /* the 7th */
    check(full == GOCC_EAGAIN, "Submit on a full queue fails with 'task queue is full'");

    gocc_chan_close(g.gate); /* the gated tasks may finish */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    int rc = ops->shutdown(p, ctx);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(rc == 0, "Shutdown drained the queue in time (nil)");
    int after = ops->submit(p, gated_task, &g);
    check(after == GOCC_ESHUTDOWN, "Submit after Shutdown fails with 'pool is shutting down'");
    check(atomic_load(&g.ran) == 6, "every accepted task ran once");
    printf("B15 submit (%s): 2 workers busy, 4 queued; the 7th Submit: %s; Shutdown: %s, "
           "%d tasks ran; Submit after Shutdown: %s\n",
           ops->name, submit_error(full), rc == 0 ? "nil" : gocc_strerror(rc), atomic_load(&g.ran),
           submit_error(after));
    if (ops->stats) {
        gocc_workpool_stats_t s;
        ops->stats(p, &s);
        check(stats_balance(&s), "submitted == completed + failed + queued + running + dropped");
        check(s.submitted == 6 && s.completed == 6 && s.rejected == 1 && s.dropped == 0,
              "6 accepted and completed, 1 rejected (full: shed), none dropped");
        check(s.workers == 0, "no worker left after Shutdown");
        int after_blocking = gocc_workpool_submit(p, gated_task, &g, NULL);
        check(after_blocking == GOCC_ESHUTDOWN, "a blocking submit after Shutdown fails too");
        printf("B15 submit (%s): submitted %llu, completed %llu, rejected %llu\n", ops->name,
               (unsigned long long)s.submitted, (unsigned long long)s.completed,
               (unsigned long long)s.rejected);
    }
    ops->destroy(p);
    gocc_chan_release(g.gate);
}

typedef struct forced {
    atomic_int slow_started;
    atomic_int slow_err; /* what the slow task's sleep returned */
    atomic_int quick_ran;
} forced_t;

static int slow_task(gocc_ctx_t *ctx, void *arg) {
    forced_t *f = arg;
    atomic_fetch_add(&f->slow_started, 1);
    int rc = gocc_sleep(10 * GOCC_SECOND, ctx); /* woken by the forced shutdown */
    atomic_store(&f->slow_err, rc == 0 ? 1 : rc);
    return rc; /* ctx.Err() */
}

static int quick_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    forced_t *f = arg;
    atomic_fetch_add(&f->quick_ran, 1);
    return 0;
}

static void b15_forced_shutdown(const pool_ops_t *ops) {
    forced_t f = {0};
    void *p = ops->make(1, 8);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    int accepted = ops->submit(p, slow_task, &f) == 0;
    check(wait_started(&f.slow_started, 1), "the slow task started");
    for (int i = 0; i < 5; i++) accepted += ops->submit(p, quick_task, &f) == 0;
    check(accepted == 6, "1 slow + 5 quick tasks accepted");

    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    int rc = ops->shutdown(p, ctx); /* Shutdown(ctx): times out, forces */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    int64_t took = gocc_now() - t0;
    gocc_workpool_stats_t s;
    if (ops->stats) ops->stats(p, &s);
    ops->destroy(p); /* after this no task of the pool runs */

    check(rc == GOCC_EDEADLINE, "Shutdown returned ctx.Err() (deadline exceeded)");
    check(took < 2 * GOCC_SECOND, "the forced shutdown did not wait for the 10 s task");
    check(atomic_load(&f.slow_err) == GOCC_ECANCELED,
          "the running task saw the pool context cancelled");
    check(atomic_load(&f.quick_ran) == 0, "the queued tasks were dropped, never run");
    printf("B15 forced (%s): Shutdown(50ms) -> %s after %lld ms; the running task got '%s', "
           "%d of 5 queued tasks ran\n",
           ops->name, gocc_strerror(rc), (long long)(took / GOCC_MILLISECOND),
           gocc_strerror(atomic_load(&f.slow_err)), atomic_load(&f.quick_ran));
    if (ops->stats) {
        check(stats_balance(&s), "submitted == completed + failed + queued + running + dropped");
        check(s.submitted == 6 && s.dropped == 5 && s.failed == 1 && s.completed == 0,
              "the slow task failed, the 5 queued ones were dropped");
        check(s.queued == 0 && s.running == 0 && s.workers == 0, "nothing left after Shutdown");
        printf("B15 forced (%s): %llu dropped, %llu failed\n", ops->name,
               (unsigned long long)s.dropped, (unsigned long long)s.failed);
    }
}

int main(void) {
    b15_submit_errors(&by_hand);
    b15_forced_shutdown(&by_hand);
    /* In practice: the library's pool, the same runs. */
    b15_submit_errors(&workpool);
    b15_forced_shutdown(&workpool);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B15 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
