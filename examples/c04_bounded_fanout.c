/*
 * c04_bounded_fanout.c - port of C04 (production guide, "Bounded concurrency
 * (semaphore pattern)": a channel semaphore plus an errgroup).
 *
 * One errgroup task per id, but at most 8 of them inside process() at
 * once: each task first puts a token into `limit`, a channel of capacity 8
 * (blocking while 8 are in flight), and takes it back out when done. The
 * acquire also watches the group context, so once a task fails, the tasks
 * still waiting for a slot give up with ctx.Err() instead of starting.
 *
 * Three runs over 40 ids:
 *  1. the Go snippet's channel semaphore, nothing fails;
 *  2. the same bound with libgocc's weighted semaphore (Go's
 *     x/sync/semaphore: gocc_sem_acquire(s, 1, ctx) / gocc_sem_release),
 *     the form a C programmer would reach for today;
 *  3. the channel semaphore again with process(13) failing (and a slower
 *     process, 20 ms, so that most tasks are still queued when it fails):
 *     Wait returns that error and the tasks still queued at the limit
 *     never start.
 * (errgroup's own SetLimit, gocc_group_set_limit, is a third way: B08.)
 *
 * Go to C: limit := make(chan struct{}, 8) is gocc_chan_new(0, 8), a signal
 * channel (element size 0, no data). The acquire
 *     select { case <-ctx.Done(): return ctx.Err(); case limit <- struct{}{}: }
 * is one send with the context (it returns the context's error when ctx
 * is done), and defer func() { <-limit }() is a receive before returning.
 * Each task's argument is its own array element (Go's id := id); the array,
 * the channel and the semaphore outlive the tasks because g.Wait() returns
 * only after all of them. No generics in the Go.
 *
 * Checks: at no moment were more than 8 tasks inside process() (counted
 * with an atomic in-flight gauge and its maximum), all 40 ids were
 * processed in runs 1 and 2 with Wait() returning 0; in run 3 Wait()
 * returns process(13)'s error, every task is accounted for (processed,
 * failed, cut short inside process, or never admitted), and at most LIMIT
 * tasks were admitted after process(13) failed (those racing the cancel);
 * without the cancel every task still queued would be. Every task has
 * returned at the end (gocc_tasks_live() == 0). Exit status 0 when all
 * hold, else 1.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define NIDS 40
#define LIMIT 8
#define ERR_PROCESS_BASE 1000 /* process(id) fails with 1000 + id */

enum limiter_kind { CHANNEL_SEM, WEIGHTED_SEM };

typedef struct limiter {
    enum limiter_kind kind;
    gocc_chan_t *ch; /* CHANNEL_SEM: capacity LIMIT, element size 0 */
    gocc_sem_t *sem; /* WEIGHTED_SEM: size LIMIT */
} limiter_t;

typedef struct run {
    limiter_t lim;
    int bad_id;                               /* 0: nothing fails */
    int64_t work_ns;                          /* what process() takes */
    atomic_int admitted, admitted_at_failure; /* the second: -1 until bad_id fails */
    atomic_int in_flight, max_in_flight;
    atomic_int processed, failed, cut_short, not_admitted;
} run_t;

typedef struct task_arg {
    run_t *run;
    int id;
} task_arg_t;

#define check(ok, what) example_check("C04", ok, what)

/* struct{}{}: nothing is copied from it (element size 0). The header allows
 * NULL here, but libgocc 0.1.0 hands the pointer to memcpy (size 0) when a
 * receiver takes from the full buffer with a sender parked (src/chan.c),
 * which UBSan reports; a real address avoids that. */
static const char token;

static int acquire(limiter_t *l, gocc_ctx_t *ctx) {
    if (l->kind == CHANNEL_SEM) return gocc_chan_send(l->ch, &token, ctx); /* limit <- struct{}{} */
    return gocc_sem_acquire(l->sem, 1, ctx);
}

static void release(limiter_t *l) {
    if (l->kind == CHANNEL_SEM)
        gocc_chan_recv(l->ch, NULL, NULL); /* <-limit */
    else
        gocc_sem_release(l->sem, 1);
}

/* A couple of milliseconds of work that stops when ctx is done. */
static int process(gocc_ctx_t *ctx, run_t *r, int id) {
    if (id == r->bad_id) {
        atomic_store(&r->admitted_at_failure, atomic_load(&r->admitted));
        return ERR_PROCESS_BASE + id;
    }
    return gocc_sleep(r->work_ns, ctx);
}

static int bounded_task(gocc_ctx_t *ctx, void *arg) {
    task_arg_t *a = arg;
    run_t *r = a->run;
    int err = acquire(&r->lim, ctx);
    if (err != 0) { /* case <-ctx.Done(): return ctx.Err() */
        atomic_fetch_add(&r->not_admitted, 1);
        return err;
    }
    atomic_fetch_add(&r->admitted, 1);
    int now = atomic_fetch_add(&r->in_flight, 1) + 1;
    int max = atomic_load(&r->max_in_flight);
    while (now > max && !atomic_compare_exchange_weak(&r->max_in_flight, &max, now)) {
    }

    err = process(ctx, r, a->id);

    atomic_fetch_sub(&r->in_flight, 1);
    release(&r->lim); /* defer func() { <-limit }() */
    if (err == 0)
        atomic_fetch_add(&r->processed, 1);
    else if (err > ERR_PROCESS_BASE)
        atomic_fetch_add(&r->failed, 1);
    else
        atomic_fetch_add(&r->cut_short, 1);
    return err;
}

/* The snippet's function body: fan out over the ids, return g.Wait(). */
static int bounded_fanout(gocc_ctx_t *ctx, run_t *r) {
    task_arg_t args[NIDS];
    gocc_group_t *g = gocc_group_new(ctx); /* g, ctx := errgroup.WithContext(ctx) */
    if (!g) return GOCC_ENOMEM;
    for (int i = 0; i < NIDS; i++) {
        args[i] = (task_arg_t){r, i + 1};
        if (gocc_group_go(g, bounded_task, &args[i]) != 0) check(false, "started a task");
    }
    int err = gocc_group_wait(g);
    gocc_group_free(g);
    return err;
}

static int do_run(run_t *r, const char *name) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    int err = ctx ? bounded_fanout(ctx, r) : GOCC_ENOMEM;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);

    int max = atomic_load(&r->max_in_flight);
    int processed = atomic_load(&r->processed), failed = atomic_load(&r->failed);
    int cut = atomic_load(&r->cut_short), skipped = atomic_load(&r->not_admitted);
    if (r->bad_id == 0)
        printf("C04 bounded fan-out (%s): %d ids, limit %d -> %d processed, at most "
               "%d at once, Wait() = %s\n",
               name, NIDS, LIMIT, processed, max, err ? gocc_strerror(err) : "nil");
    else
        printf("C04 bounded fan-out (%s, process(%d) fails): Wait() = process(%d) "
               "failed; %d processed, %d cut short, %d never started (ctx.Err() at "
               "the limit; %d were waiting when it failed), at most %d at once\n",
               name, r->bad_id, err - ERR_PROCESS_BASE, processed, cut, skipped,
               NIDS - atomic_load(&r->admitted_at_failure), max);
    check(max >= 1 && max <= LIMIT, "never more than 8 tasks in process() at once");
    check(processed + failed + cut + skipped == NIDS, "every task accounted for");
    return err;
}

int main(void) {
    static run_t r1, r2, r3;

    r1.lim = (limiter_t){CHANNEL_SEM, gocc_chan_new(0, LIMIT), NULL};
    r1.work_ns = r2.work_ns = 2 * GOCC_MILLISECOND;
    if (r1.lim.ch) {
        int err = do_run(&r1, "channel semaphore");
        check(err == 0 && atomic_load(&r1.processed) == NIDS, "all 40 ids processed");
        gocc_chan_release(r1.lim.ch);
    } else {
        check(false, "made the limit channel");
    }

    r2.lim = (limiter_t){WEIGHTED_SEM, NULL, gocc_sem_new(LIMIT)};
    if (r2.lim.sem) {
        int err = do_run(&r2, "weighted semaphore");
        check(err == 0 && atomic_load(&r2.processed) == NIDS, "all 40 ids processed");
        gocc_sem_free(r2.lim.sem);
    } else {
        check(false, "made the weighted semaphore");
    }

    r3.lim = (limiter_t){CHANNEL_SEM, gocc_chan_new(0, LIMIT), NULL};
    r3.bad_id = 13;
    r3.work_ns = 20 * GOCC_MILLISECOND;
    atomic_store(&r3.admitted_at_failure, -1);
    if (r3.lim.ch) {
        int err = do_run(&r3, "channel semaphore");
        check(err == ERR_PROCESS_BASE + 13, "Wait() returned process(13)'s error");
        check(atomic_load(&r3.failed) == 1, "process(13) ran and failed once");
        int at_failure = atomic_load(&r3.admitted_at_failure);
        check(at_failure >= 0 && atomic_load(&r3.admitted) - at_failure <= LIMIT,
              "the failure stopped the queue: at most 8 tasks admitted after it");
        gocc_chan_release(r3.lim.ch);
    } else {
        check(false, "made the limit channel");
    }

    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C04 bounded fan-out: FAILED\n");
    return example_failures ? 1 : 0;
}
