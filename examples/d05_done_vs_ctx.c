/*
 * d05_done_vs_ctx.c - D05 (cheat sheet): stopping a worker with
 * a done channel vs a context.
 *
 * d05_done_channel: worker(done <-chan struct{}, jobs <-chan Job):
 *   select { case <-done: return; case job := <-jobs: process(job) }.
 *   Closing done (an elem_size 0 channel) is the broadcast that stops every
 *   worker.
 * d05_context: worker(ctx, jobs): the same select on ctx.Done() (the
 *   preferred form). The context does what a bare done channel does not
 *   without more code: it says why it stopped (gocc_ctx_err), it is a
 *   tree (the workers run on a child; cancelling the parent stops them),
 *   and it can carry a deadline (with a 10 ms timeout the workers stop by
 *   themselves).
 *
 * One fix to the sheet's snippet: if jobs is closed, `case job := <-jobs`
 * is ready forever with zero values and the loop spins. Here the worker
 * returns when the receive reports the close (case.ok == false).
 *
 * Checks: all jobs processed, the workers returned for the right reason
 * and within 2 s of the close, the cancel or the deadline (it takes
 * microseconds: a close or cancel that woke nobody would leave them
 * parked), gocc_tasks_live() == 0. Exit 1 if wrong.
 *
 * Go -> C: done <-chan struct{} is an elem_size 0 channel; ctx.Done() is
 * gocc_ctx_done(ctx); each select is a two-case gocc_select.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D05", ok, what)

#define WORKERS 2
#define JOBS 20

typedef struct job {
    int id;
} job_t;

typedef struct shared {
    gocc_chan_t *jobs; /* chan Job, unbuffered */
    gocc_chan_t *done; /* done-channel version only */
    atomic_int processed;
    atomic_int stopped;  /* workers that returned because they were told to */
    int reason[WORKERS]; /* ctx version: gocc_ctx_err when it returned */
    atomic_int next_slot;
} shared_t;

static void process(shared_t *s, job_t job) {
    (void)job;
    atomic_fetch_add(&s->processed, 1);
}

/* func worker(done <-chan struct{}, jobs <-chan Job) */
static int worker_done(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    shared_t *s = arg;
    for (;;) {
        job_t job;
        gocc_case_t cases[2] = {{.ch = s->done, .dir = GOCC_RECV},
                                {.ch = s->jobs, .dir = GOCC_RECV, .elem = &job}};
        int r = gocc_select(cases, 2, NULL);
        if (r == 0) { /* case <-done: return (shutdown) */
            atomic_fetch_add(&s->stopped, 1);
            return 0;
        }
        if (r != 1 || !cases[1].ok) return 0; /* jobs closed */
        process(s, job);
    }
}

/* func worker(ctx context.Context, jobs <-chan Job) */
static int worker_ctx(gocc_ctx_t *ctx, void *arg) {
    shared_t *s = arg;
    for (;;) {
        job_t job;
        gocc_case_t cases[2] = {{.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV},
                                {.ch = s->jobs, .dir = GOCC_RECV, .elem = &job}};
        int r = gocc_select(cases, 2, NULL);
        if (r == 0) { /* case <-ctx.Done(): return */
            int slot = atomic_fetch_add(&s->next_slot, 1);
            if (slot < WORKERS) s->reason[slot] = gocc_ctx_err(ctx);
            atomic_fetch_add(&s->stopped, 1);
            return 0;
        }
        if (r != 1 || !cases[1].ok) return 0;
        process(s, job);
    }
}

/* Start WORKERS of fn on ctx and send up to JOBS jobs (until ctx is done);
 * return how many workers started, the jobs handed over in *sent. */
static int start_and_feed(gocc_fn fn, gocc_ctx_t *ctx, shared_t *s, int *sent) {
    int started = 0;
    *sent = 0;
    for (int w = 0; w < WORKERS; w++) started += gocc_go(fn, ctx, s) == 0;
    for (int i = 0; started && i < JOBS; i++) {
        if (gocc_chan_send(s->jobs, &(job_t){i}, ctx) != 0) break;
        ++*sent;
    }
    return started;
}

/* ---- D05: done channel --------------------------------------------------- */

static void d05_done_channel(void) {
    shared_t s = {.jobs = gocc_chan_new(sizeof(job_t), 0), .done = gocc_chan_new(0, 0)};
    int sent = 0;
    int started = s.jobs && s.done ? start_and_feed(worker_done, NULL, &s, &sent) : 0;
    gocc_chan_close(s.done); /* shutdown: a broadcast to every worker */
    check(example_tasks_exit_within(2 * GOCC_SECOND), "the workers returned within 2 s of close");
    check(started == WORKERS && sent == JOBS && atomic_load(&s.processed) == JOBS &&
              atomic_load(&s.stopped) == WORKERS,
          "done channel: all jobs, then every worker stopped");
    printf("D05 done channel: %d workers processed %d jobs and returned when done was closed "
           "(%d stopped)\n",
           started, atomic_load(&s.processed), atomic_load(&s.stopped));
    gocc_chan_release(s.jobs);
    gocc_chan_release(s.done);
}

/* ---- D05: context -------------------------------------------------------- */

static void d05_context(void) {
    /* Cancelling the parent stops workers running on a child. */
    shared_t s = {.jobs = gocc_chan_new(sizeof(job_t), 0)};
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(parent);
    int sent = 0;
    int started = s.jobs && ctx ? start_and_feed(worker_ctx, ctx, &s, &sent) : 0;
    gocc_ctx_cancel(parent);
    check(example_tasks_exit_within(2 * GOCC_SECOND), "the workers returned within 2 s of cancel");
    check(started == WORKERS && sent == JOBS && atomic_load(&s.processed) == JOBS &&
              atomic_load(&s.stopped) == WORKERS && s.reason[0] == GOCC_ECANCELED &&
              s.reason[1] == GOCC_ECANCELED,
          "context: all jobs, then stopped by the parent's cancel");
    printf("D05 context: %d workers on a child context processed %d jobs; cancelling the "
           "parent stopped them (\"%s\")\n",
           started, atomic_load(&s.processed), gocc_strerror(s.reason[0]));
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ctx_release(parent);
    gocc_chan_release(s.jobs);

    /* A deadline: nobody cancels; the workers stop by themselves. (The
     * feeding stops at the deadline too; a slow build may hand over fewer
     * jobs: each one handed over is processed.) */
    shared_t t = {.jobs = gocc_chan_new(sizeof(job_t), 0)};
    ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_MILLISECOND);
    started = t.jobs && ctx ? start_and_feed(worker_ctx, ctx, &t, &sent) : 0;
    check(example_tasks_exit_within(2 * GOCC_SECOND), "the workers returned at the deadline");
    check(started == WORKERS && atomic_load(&t.processed) == sent &&
              t.reason[0] == GOCC_EDEADLINE && t.reason[1] == GOCC_EDEADLINE,
          "context: stopped by the deadline");
    printf("D05 context: with a 10 ms timeout and no cancel, %d workers processed %d jobs and "
           "stopped by themselves (\"%s\")\n",
           started, atomic_load(&t.processed), gocc_strerror(t.reason[0]));
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(t.jobs);
}

int main(void) {
    d05_done_channel();
    d05_context();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D05 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
