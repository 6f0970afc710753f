/*
 * l04_worker_pool.c - L04 (Deep Dive, Lesson 4): worker pools that don't
 * leak. "Pools should be bounded and shut down cleanly."
 *
 * l04_pool: the lesson's shape. jobs and results are channels of 1024;
 *   `workers` tasks range over jobs and send handle(j) to results, each
 *   calling wg.Done when jobs is closed and drained; a closer task waits for
 *   the WaitGroup and closes results; the producer is the only one that
 *   closes jobs; main ranges over results until it is closed.
 * l04_no_closer: what the closer task is for. The same pool without it:
 *   every result arrives and every worker exits, but nobody closes results,
 *   so the consumer's `range results` would wait forever; here it waits on a
 *   50 ms context instead, which expires. And a second close of jobs (which
 *   panics in Go) is refused with GOCC_ECLOSED.
 *
 * Checks: every job's result arrived exactly once with the right value,
 * and gocc_tasks_live() == 0 when the pool is done (no leaked task).
 * Exit 1 if wrong.
 *
 * Go -> C: Job and Result become job_t and result_t, and chan Job / chan
 * Result channels that carry them by value (elem_size = sizeof); the
 * goroutine closures become task functions on one shared pool_t.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L04", ok, what)

#define N_JOBS 2000
#define WORKERS 4

typedef struct job {
    int id;
} job_t;

typedef struct result {
    int id;
    long value;
} result_t;

static result_t handle(job_t j) { return (result_t){j.id, (long)j.id * j.id}; }

/* What the pool's tasks share. main owns it and its channels, and keeps
 * them until every task has returned. */
typedef struct pool {
    gocc_chan_t *jobs, *results;
    gocc_waitgroup_t wg;
} pool_t;

static int worker(gocc_ctx_t *ctx, void *arg) {
    pool_t *p = arg;
    job_t j;
    while (gocc_chan_recv(p->jobs, &j, ctx) == 0) { /* for j := range jobs */
        result_t r = handle(j);
        gocc_chan_send(p->results, &r, ctx);
    }
    gocc_waitgroup_done(&p->wg); /* defer wg.Done() */
    return 0;
}

/* go func() { wg.Wait(); close(results) }() */
static int closer(gocc_ctx_t *ctx, void *arg) {
    pool_t *p = arg;
    gocc_waitgroup_wait(&p->wg, ctx);
    gocc_chan_close(p->results);
    return 0;
}

/* The producer: the one task that closes jobs. */
static int producer(gocc_ctx_t *ctx, void *arg) {
    pool_t *p = arg;
    for (int id = 0; id < N_JOBS; id++) {
        job_t j = {id};
        if (gocc_chan_send(p->jobs, &j, ctx) != 0) break;
    }
    gocc_chan_close(p->jobs);
    return 0;
}

/* Start producer, workers and (if with_closer) the closer on p. */
static bool start_pool(pool_t *p, bool with_closer) {
    memset(p, 0, sizeof *p);
    p->jobs = gocc_chan_new(sizeof(job_t), 1024);
    p->results = gocc_chan_new(sizeof(result_t), 1024);
    if (!p->jobs || !p->results) return false;
    bool ok = true;
    for (int i = 0; i < WORKERS; i++) {
        gocc_waitgroup_add(&p->wg, 1); /* Add before go */
        if (gocc_go(worker, NULL, p) != 0) {
            gocc_waitgroup_done(&p->wg);
            ok = false;
        }
    }
    if (with_closer && gocc_go(closer, NULL, p) != 0) ok = false;
    if (gocc_go(producer, NULL, p) != 0) ok = false;
    return ok;
}

static void free_pool(pool_t *p) {
    gocc_chan_release(p->jobs);
    gocc_chan_release(p->results);
}

/* Receive results until recv fails; check each job came exactly once.
 * `limit` bounds the receives of the expected results (generously: a lost
 * result fails the run instead of hanging it), `after` the receive after
 * the last one (short, where nothing more should come). */
static int collect(pool_t *p, gocc_ctx_t *limit, gocc_ctx_t *after, int *count, bool *all_right) {
    static bool seen[N_JOBS];
    memset(seen, 0, sizeof seen);
    result_t r;
    int err;
    *count = 0;
    *all_right = true;
    while ((err = gocc_chan_recv(p->results, &r, *count < N_JOBS ? limit : after)) == 0) {
        if (r.id < 0 || r.id >= N_JOBS || seen[r.id] || r.value != (long)r.id * r.id)
            *all_right = false;
        else
            seen[r.id] = true;
        ++*count;
    }
    return err;
}

/* ---- L04: the pool: workers, WaitGroup, closer, producer ----------- */

static void l04_pool(void) {
    pool_t p;
    int count = 0;
    bool right = false;
    bool started = start_pool(&p, true);
    check(started, "started the pool");
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    int err = started && limit ? collect(&p, limit, limit, &count, &right) : GOCC_EINVAL;
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(err == GOCC_ECLOSED, "range results ends when the closer closes it");
    check(started && count == N_JOBS && right, "every job's result arrived once, right");
    check(exited, "no task leaked: gocc_tasks_live() == 0");
    printf("L04 worker pool: %d jobs, %d workers, %d results, all right; results closed by "
           "the closer; %zu tasks live after\n",
           N_JOBS, WORKERS, started ? count : 0, gocc_tasks_live());
    if (exited) free_pool(&p);
}

/* ---- L04: without the closer task --------------------------------- */

static void l04_no_closer(void) {
    pool_t p;
    int count = 0;
    bool right = false;
    bool started = start_pool(&p, false);
    check(started, "started the pool without a closer");
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    int err = started && limit && ctx ? collect(&p, limit, ctx, &count, &right) : GOCC_EINVAL;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(err == GOCC_EDEADLINE && count == N_JOBS && right,
          "without the closer the consumer only stops on its timeout");
    int again = gocc_chan_close(p.jobs); /* the producer closed it already */
    check(again == GOCC_ECLOSED, "a second close is refused");
    printf("L04 without the closer: %d results arrived, then `range results` never ended: "
           "stopped by \"%s\"; a second close(jobs) returned \"%s\"\n",
           started ? count : 0, gocc_strerror(err), gocc_strerror(again));
    if (exited) free_pool(&p);
}

int main(void) {
    l04_pool();
    l04_no_closer();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L04 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
