/*
 * b16_adaptive_pool.c - B16 (chapter 9, "Advanced: Adaptive worker pool"):
 * a pool between minWorkers and maxWorkers whose size follows the queue
 * length. The chapter's AdaptivePool runs adjustWorkers on a ticker:
 *
 *   for range ticker.C {
 *       queueLen := len(p.tasks); current := p.current.Load()
 *       if queueLen > int(current)*2 && current < int32(p.maxWorkers) {
 *           p.spawnWorker(); p.current.Add(1)
 *       } else if queueLen < int(current)/2 && current > int32(p.minWorkers) {
 *           p.tasks <- nil // Poison pill
 *           p.current.Add(-1) } }
 *
 * First that pool by hand (b16_by_hand): a tasks channel, the atomic
 * current count, workers that run tasks until they take the poison pill (a
 * task with no function), and the adjuster task on its ticker. Then, in
 * practice (b16_workpool), libgocc's gocc_workpool_new_opts with
 * gocc_workpool_options_t {min_workers, max_workers, queue_cap,
 * idle_timeout_ns}: no ticker and no pill; the pool grows when a submit
 * finds the queue backed up and no idle worker, and a surplus worker that
 * stays idle for idle_timeout_ns exits.
 *
 * Each runs the same load: min 1, max 4 workers, a queue of 64, a backlog
 * of 60 tasks (5 ms each) submitted at once. A monitor (main, sampling
 * every millisecond) sees the pool grow above 1 worker and never past 4;
 * once the queue is empty the surplus workers go (pills, or the 50 ms idle
 * timeout) and the pool is back to 1.
 *
 * Where the hand-built pool departs from the chapter's code:
 *   - the ticker ticks every 10 ms, not every second (the demo would take
 *     minutes); the min workers are started up front (the chapter does not
 *     show how the pool starts);
 *   - the pill is sent with the adjuster's context, so stopping the pool
 *     cannot leave the adjuster blocked on a full queue (in Go it would
 *     block there until a worker makes room);
 *   - a Shutdown the chapter does not show: stop the adjuster (cancel its
 *     context), close the tasks channel (the workers drain it and exit),
 *     wait for all of them (a WaitGroup);
 *   - `alive` counts the worker tasks really running, beside the
 *     chapter's `current` (which drops when a pill is sent, before a worker
 *     has taken it).
 *
 * Checks, for each: every task ran once; the worker count started at 1,
 * rose above 1 under the backlog and never passed 4; it was back to 1
 * within 1.5 s of the queue emptying; gocc_workpool's counters balance;
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B16", ok, what)

#define MIN_WORKERS 1
#define MAX_WORKERS 4
#define QUEUE 64
#define TASKS 60
#define TICK (10 * GOCC_MILLISECOND)

static atomic_int ran;

static int work(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_sleep(5 * GOCC_MILLISECOND, ctx);
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* What the monitor saw of one pool's size. */
typedef struct sizes {
    int at_start, max_seen, after_drain, after_idle;
    int64_t shrink_ms;
    bool drained, shrank;
} sizes_t;

static void report(const char *name, const sizes_t *z) {
    check(z->at_start == MIN_WORKERS, "the pool starts with min workers");
    check(z->max_seen > MIN_WORKERS, "the backlog grew the pool above min");
    check(z->max_seen <= MAX_WORKERS, "the pool never passed max workers");
    check(z->drained, "the backlog drained");
    check(z->shrank && z->after_idle == MIN_WORKERS, "idle surplus workers went, back to min");
    printf("B16 adaptive (%s): min %d max %d, %d tasks; workers %d at start, up to %d under "
           "the backlog, %d when the queue emptied, %d after idling (within %lld ms)\n",
           name, MIN_WORKERS, MAX_WORKERS, TASKS, z->at_start, z->max_seen, z->after_drain,
           z->after_idle, (long long)z->shrink_ms);
}

/* ---- by hand: a ticker, an atomic count and a poison pill --------------- */

typedef struct task {
    gocc_fn fn; /* NULL: the poison pill */
    void *arg;
} task_t;

typedef struct adaptive_pool {
    int min_workers, max_workers;
    atomic_int current;  /* the chapter's p.current */
    atomic_int alive;    /* worker tasks running */
    gocc_chan_t *tasks;  /* chan Task, capacity QUEUE */
    gocc_ctx_t *ctx;     /* the adjuster's; cancelled by shutdown */
    gocc_waitgroup_t wg; /* the workers and the adjuster */
} adaptive_pool_t;

static int pool_worker(gocc_ctx_t *ctx, void *arg) {
    adaptive_pool_t *p = arg;
    task_t t;
    while (gocc_chan_recv(p->tasks, &t, NULL) == 0 && t.fn != NULL) /* closed, or a pill */
        (void)t.fn(ctx, t.arg);
    atomic_fetch_sub(&p->alive, 1);
    gocc_waitgroup_done(&p->wg);
    return 0;
}

/* p.spawnWorker(): true when it started. */
static bool spawn_worker(adaptive_pool_t *p) {
    gocc_waitgroup_add(&p->wg, 1);
    atomic_fetch_add(&p->alive, 1);
    if (gocc_go(pool_worker, NULL, p) == 0) return true;
    atomic_fetch_sub(&p->alive, 1);
    gocc_waitgroup_done(&p->wg);
    return false;
}

/* func (p *AdaptivePool) adjustWorkers() */
static int adjust_workers(gocc_ctx_t *ctx, void *arg) {
    adaptive_pool_t *p = arg;
    gocc_ticker_t *ticker = gocc_ticker_new(TICK);
    int64_t tick;
    while (ticker && gocc_chan_recv(gocc_ticker_chan(ticker), &tick, ctx) == 0) {
        int queue_len = (int)gocc_chan_len(p->tasks);
        int current = atomic_load(&p->current);
        if (queue_len > current * 2 && current < p->max_workers) {
            if (spawn_worker(p)) atomic_fetch_add(&p->current, 1);
        } else if (queue_len < current / 2 && current > p->min_workers) {
            task_t pill = {NULL, NULL};
            if (gocc_chan_send(p->tasks, &pill, ctx) == 0) atomic_fetch_sub(&p->current, 1);
        }
    }
    gocc_ticker_free(ticker); /* defer ticker.Stop() */
    gocc_waitgroup_done(&p->wg);
    return 0;
}

/* Stop the adjuster, close the queue (the workers drain it), wait. */
static void adaptive_pool_shutdown(adaptive_pool_t *p) {
    gocc_ctx_cancel(p->ctx);
    gocc_chan_close(p->tasks);
    gocc_waitgroup_wait(&p->wg, NULL);
}

static void adaptive_pool_free(adaptive_pool_t *p) {
    if (p == NULL) return;
    gocc_ctx_release(p->ctx);
    gocc_chan_release(p->tasks);
    free(p);
}

static adaptive_pool_t *adaptive_pool_new(int min_workers, int max_workers, size_t queue) {
    adaptive_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    p->min_workers = min_workers;
    p->max_workers = max_workers;
    p->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    p->tasks = gocc_chan_new(sizeof(task_t), queue);
    p->ctx = gocc_ctx_with_cancel(NULL);
    bool ok = p->tasks && p->ctx;
    for (int i = 0; ok && i < min_workers; i++)
        if ((ok = spawn_worker(p))) atomic_fetch_add(&p->current, 1);
    if (ok) {
        gocc_waitgroup_add(&p->wg, 1);
        if (gocc_go(adjust_workers, p->ctx, p) != 0) {
            gocc_waitgroup_done(&p->wg);
            ok = false;
        }
    }
    if (!ok) {
        if (p->tasks && p->ctx) adaptive_pool_shutdown(p);
        adaptive_pool_free(p);
        return NULL;
    }
    return p;
}

static void b16_by_hand(void) {
    atomic_store(&ran, 0);
    adaptive_pool_t *p = adaptive_pool_new(MIN_WORKERS, MAX_WORKERS, QUEUE);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    sizes_t z = {.at_start = atomic_load(&p->alive)};
    z.max_seen = z.at_start;
    int accepted = 0;
    for (int i = 0; i < TASKS; i++) {
        task_t t = {work, NULL};
        accepted += gocc_chan_send(p->tasks, &t, NULL) == 0;
    }
    check(accepted == TASKS, "every task accepted");

    /* The monitor: sample while the backlog drains (generous deadline). */
    int64_t give_up = gocc_now() + 10 * GOCC_SECOND;
    for (;;) {
        int alive = atomic_load(&p->alive);
        if (alive > z.max_seen) z.max_seen = alive;
        if (atomic_load(&ran) == TASKS || gocc_now() > give_up) break;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    z.drained = atomic_load(&ran) == TASKS;
    z.after_drain = atomic_load(&p->alive);

    /* Idle: a pill a tick until min; poll up to 1.5 s. */
    int64_t t0 = gocc_now();
    give_up = t0 + 1500 * GOCC_MILLISECOND;
    for (;;) {
        int alive = atomic_load(&p->alive);
        if (alive > z.max_seen) z.max_seen = alive;
        if ((alive <= MIN_WORKERS && atomic_load(&p->current) <= MIN_WORKERS) ||
            gocc_now() > give_up)
            break;
        gocc_sleep(2 * GOCC_MILLISECOND, NULL);
    }
    z.shrink_ms = (gocc_now() - t0) / GOCC_MILLISECOND;
    z.after_idle = atomic_load(&p->alive);
    z.shrank = z.after_idle <= MIN_WORKERS && atomic_load(&p->current) == MIN_WORKERS;

    adaptive_pool_shutdown(p);
    check(atomic_load(&ran) == TASKS, "every task ran once");
    check(atomic_load(&p->alive) == 0, "no worker after Shutdown");
    report("by hand: ticker + poison pill", &z);
    adaptive_pool_free(p);
}

/* ---- in practice: gocc_workpool with min, max and an idle timeout ------ */

static bool stats_ok(const gocc_workpool_stats_t *s) {
    return s->submitted == s->completed + s->failed + s->queued + s->running + s->dropped;
}

static void b16_workpool(void) {
    atomic_store(&ran, 0);
    gocc_workpool_options_t opts = {
        .min_workers = MIN_WORKERS,
        .max_workers = MAX_WORKERS,
        .queue_cap = QUEUE,
        .idle_timeout_ns = 50 * GOCC_MILLISECOND,
    };
    gocc_workpool_t *p = gocc_workpool_new_opts(&opts, NULL);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    gocc_workpool_stats_t s;
    gocc_workpool_stats(p, &s);
    sizes_t z = {.at_start = (int)s.workers, .max_seen = (int)s.workers};

    int accepted = 0;
    for (int i = 0; i < TASKS; i++) { /* the backlog */
        accepted += gocc_workpool_submit(p, work, NULL, NULL) == 0;
        gocc_workpool_stats(p, &s);
        if ((int)s.workers > z.max_seen) z.max_seen = (int)s.workers;
    }
    check(accepted == TASKS, "every task accepted");

    int64_t give_up = gocc_now() + 10 * GOCC_SECOND;
    for (;;) {
        gocc_workpool_stats(p, &s);
        if ((int)s.workers > z.max_seen) z.max_seen = (int)s.workers;
        if ((s.queued == 0 && s.running == 0) || gocc_now() > give_up) break;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    z.drained = s.queued == 0 && s.running == 0;
    z.after_drain = (int)s.workers;

    /* Idle: surplus workers exit after 50 ms; poll up to 1.5 s. */
    int64_t t0 = gocc_now();
    give_up = t0 + 1500 * GOCC_MILLISECOND;
    for (;;) {
        gocc_workpool_stats(p, &s);
        if ((int)s.workers > z.max_seen) z.max_seen = (int)s.workers;
        if (s.workers <= MIN_WORKERS || gocc_now() > give_up) break;
        gocc_sleep(2 * GOCC_MILLISECOND, NULL);
    }
    z.shrink_ms = (gocc_now() - t0) / GOCC_MILLISECOND;
    z.after_idle = (int)s.workers;
    z.shrank = s.workers <= MIN_WORKERS;
    check(stats_ok(&s), "stats balance");

    gocc_workpool_shutdown(p, NULL);
    gocc_workpool_stats(p, &s);
    check(atomic_load(&ran) == TASKS && s.completed == TASKS, "every task ran once");
    check(s.workers == 0, "no worker after Shutdown");
    report("in practice: gocc_workpool", &z);
    gocc_workpool_free(p);
}

int main(void) {
    b16_by_hand();
    b16_workpool();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B16 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
