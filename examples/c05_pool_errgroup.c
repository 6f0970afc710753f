/*
 * c05_pool_errgroup.c - port of C05 (production guide, "Worker pool
 * (durable throughput)": runPool, a fixed number of workers run by an
 * errgroup, stopped by the context).
 *
 * runPool(ctx, jobs, workers) starts `workers` errgroup tasks. Each one
 * loops: when the context is done it returns ctx.Err(); when jobs is closed
 * (ok == false) it returns nil; otherwise it handles the job and returns
 * the job's error, if any, which cancels the group context so the other
 * workers stop too. runPool returns g.Wait(). Three runs show the three
 * ways out:
 *  1. a producer sends 50 jobs and closes jobs: runPool returns nil after
 *     all 50 are handled;
 *  2. an endless producer and a caller context with a 50 ms timeout:
 *     runPool returns "context deadline exceeded";
 *  3. 50 jobs where job-13 fails: runPool returns job-13's error and the
 *     other workers stop on the cancelled group context: each returns
 *     "context canceled" (not nil: jobs was not drained), hardly any job
 *     was started after the error (a worker may have received one just
 *     before), and they are all gone well within 2 s of it.
 * The producer is a separate task that sends with the caller's context and
 * closes jobs when it stops (only the sender closes); the caller cancels
 * that context after runPool returns (Go's defer cancel()), which is what
 * stops the producer in runs 2 and 3.
 *
 * Go to C: errgroup.WithContext is gocc_group_new(ctx) + gocc_group_ctx;
 * the worker's
 *     select { case <-ctx.Done(): return ctx.Err(); case j, ok := <-jobs: ... }
 * is one receive with the context: 0 (a job), GOCC_ECLOSED (!ok: return
 * nil) or the context's error. Job{ID string} carries a char array by value.
 * The jobs channel is borrowed by the workers: runPool's Wait outlives them
 * and the caller holds its reference across runPool. No generics in the Go.
 *
 * Checks: run 1 returns 0 with each of the 50 jobs handled exactly once;
 * run 2 returns GOCC_EDEADLINE; run 3 returns job-13's error and handles
 * job-13 once, every other worker returned GOCC_ECANCELED, at most
 * 2 * WORKERS jobs were started after job-13 failed (a job takes 5 ms, so
 * without the cancel the 36 left would all run), and runPool returned
 * within 2 s of the failure; no job is handled twice; every task (workers,
 * producers) has returned after each run (gocc_tasks_live() == 0). The
 * line saying the other workers stopped on the group context is printed
 * only when that was measured. Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define WORKERS 4
#define NJOBS 50
#define MAX_TRACKED 20000 /* job numbers tracked; the producer stops there */
#define ERR_JOB_BASE 1000 /* handleJob fails with 1000 + job number */

typedef struct job {
    char id[16]; /* "job-N" */
} job_t;

#define check(ok, what) example_check("C05", ok, what)

/* What the handler saw: how often each job number was handled; when the
 * bad job failed and how many jobs were started after that. */
static atomic_uchar handled_count[MAX_TRACKED];
static atomic_int handled, bad_job = -1, started_after_error;
static atomic_llong failed_at; /* gocc_now() when the bad job failed; 0: not yet */

static int handle_job(gocc_ctx_t *ctx, const job_t *j) {
    int n = atoi(j->id + strlen("job-"));
    if (n < 0 || n >= MAX_TRACKED) return GOCC_EINVAL;
    atomic_fetch_add(&handled_count[n], 1);
    if (atomic_load(&failed_at) != 0) atomic_fetch_add(&started_after_error, 1);
    if (n == atomic_load(&bad_job)) {
        atomic_store(&failed_at, gocc_now());
        return ERR_JOB_BASE + n;
    }
    int err = gocc_sleep(5 * GOCC_MILLISECOND, ctx); /* the work */
    if (err == 0) atomic_fetch_add(&handled, 1);
    return err;
}

/* ---- runPool ------------------------------------------------------------ */

typedef struct worker_arg {
    gocc_chan_t *jobs; /* borrowed: runPool's Wait outlives the worker */
    int result;        /* what the worker returned (1 until it returns) */
} worker_arg_t;

static int pool_worker_loop(gocc_ctx_t *ctx, gocc_chan_t *jobs) {
    for (;;) {
        job_t j;
        int err = gocc_chan_recv(jobs, &j, ctx);
        if (err == GOCC_ECLOSED) return 0; /* !ok: jobs closed, drained */
        if (err != 0) return err;          /* ctx.Err() */
        if ((err = handle_job(ctx, &j)) != 0) return err;
    }
}

static int pool_worker(gocc_ctx_t *ctx, void *arg) {
    worker_arg_t *w = arg;
    w->result = pool_worker_loop(ctx, w->jobs);
    return w->result;
}

static worker_arg_t workers_seen[WORKERS]; /* the last run's workers */

static int run_pool(gocc_ctx_t *ctx, gocc_chan_t *jobs, int workers) {
    gocc_group_t *g = gocc_group_new(ctx);
    if (!g) return GOCC_ENOMEM;
    for (int i = 0; i < workers && i < WORKERS; i++) {
        workers_seen[i] = (worker_arg_t){jobs, 1};
        if (gocc_group_go(g, pool_worker, &workers_seen[i]) != 0) check(false, "started a worker");
    }
    int err = gocc_group_wait(g); /* every worker has returned */
    gocc_group_free(g);
    return err;
}

/* ---- the producer: the sender closes ------------------------------------ */

typedef struct producer_arg {
    gocc_chan_t *jobs; /* the task's own reference */
    int count;         /* < 0: until ctx is done */
} producer_arg_t;

static int producer(gocc_ctx_t *ctx, void *arg) {
    producer_arg_t *a = arg;
    for (int i = 0; a->count < 0 || i < a->count; i++) {
        if (i >= MAX_TRACKED) break;
        job_t j;
        snprintf(j.id, sizeof j.id, "job-%d", i);
        if (gocc_chan_send(a->jobs, &j, ctx) != 0) break; /* ctx done */
    }
    gocc_chan_close(a->jobs);
    gocc_chan_release(a->jobs);
    free(a);
    return 0;
}

/* When the last runPool returned. */
static int64_t returned_at;

/* One run: a producer of `count` jobs on a caller context (timeout_ns > 0:
 * with that timeout), runPool on the same context, then cancel. */
static int run(int count, int64_t timeout_ns, int bad) {
    for (int i = 0; i < MAX_TRACKED; i++) atomic_store(&handled_count[i], 0);
    atomic_store(&handled, 0);
    atomic_store(&started_after_error, 0);
    atomic_store(&failed_at, 0);
    atomic_store(&bad_job, bad);
    gocc_ctx_t *ctx = timeout_ns > 0 ? gocc_ctx_with_timeout(NULL, timeout_ns)
                                     : gocc_ctx_with_cancel(NULL);
    gocc_chan_t *jobs = gocc_chan_new(sizeof(job_t), 0);
    producer_arg_t *pa = malloc(sizeof *pa);
    int err = GOCC_ENOMEM;
    if (ctx && jobs && pa) {
        *pa = (producer_arg_t){gocc_chan_retain(jobs), count};
        if (gocc_go(producer, ctx, pa) == 0) {
            pa = NULL; /* the producer's now */
            err = run_pool(ctx, jobs, WORKERS);
            returned_at = gocc_now();
        } else {
            gocc_chan_release(jobs);
        }
    }
    free(pa);
    gocc_ctx_cancel(ctx); /* defer cancel(): stops the producer if still sending */
    gocc_ctx_release(ctx);
    gocc_chan_release(jobs);

    bool twice = false;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (atomic_load(&handled_count[i]) > 1) twice = true;
    check(!twice, "no job was handled twice");
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "every worker and the producer returned (gocc_tasks_live() == 0)");
    return err;
}

int main(void) {
    int err = run(NJOBS, 0, -1);
    int n = atomic_load(&handled);
    int all_once = 1;
    for (int i = 0; i < NJOBS; i++) all_once &= atomic_load(&handled_count[i]) == 1;
    printf("C05 pool: %d workers, %d jobs, producer closes jobs -> runPool = %s, "
           "%d handled\n",
           WORKERS, NJOBS, err ? gocc_strerror(err) : "nil", n);
    check(err == 0, "runPool returned nil when jobs closed");
    check(n == NJOBS && all_once, "each of the 50 jobs handled exactly once");

    err = run(-1, 50 * GOCC_MILLISECOND, -1);
    printf("C05 pool: endless jobs, 50 ms caller timeout -> runPool = %s after %d "
           "jobs; workers and producer exited\n",
           gocc_strerror(err), atomic_load(&handled));
    check(err == GOCC_EDEADLINE, "runPool returned the caller's deadline");

    err = run(NJOBS, 0, 13);
    bool is_job13 = err == ERR_JOB_BASE + 13;
    int cancelled = 0, drained = 0;
    for (int i = 0; i < WORKERS; i++) {
        cancelled += workers_seen[i].result == GOCC_ECANCELED;
        drained += workers_seen[i].result == 0;
    }
    int after = atomic_load(&started_after_error);
    int64_t fail_time = atomic_load(&failed_at);
    double stop_ms = fail_time ? (double)(returned_at - fail_time) / 1e6 : -1;
    bool stopped = cancelled == WORKERS - 1 && after <= 2 * WORKERS && fail_time != 0 &&
                   stop_ms < 2000;
    printf("C05 pool: job-13 fails -> runPool = %s after %d jobs handled; %s: %d of the "
           "%d other workers returned \"%s\", %d drained jobs, %d jobs started after the "
           "error, runPool returned %.1f ms after it\n",
           is_job13 ? "job-13 failed" : gocc_strerror(err), atomic_load(&handled),
           stopped ? "the other workers stopped on the group context"
                   : "the other workers did NOT stop on the group context",
           cancelled, WORKERS - 1, gocc_strerror(GOCC_ECANCELED), drained, after, stop_ms);
    check(is_job13, "runPool returned job-13's error");
    check(atomic_load(&handled_count[13]) == 1, "job-13 was handled once");
    check(cancelled == WORKERS - 1, "every other worker returned 'context canceled'");
    check(after <= 2 * WORKERS, "at most 2 jobs a worker were started after the error");
    check(fail_time != 0 && stop_ms < 2000, "runPool returned within 2 s of the error");

    check(gocc_tasks_live() == 0, "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C05 pool: FAILED\n");
    return example_failures ? 1 : 0;
}
