/*
 * l01_structured.c - L01 (Deep Dive, Lesson 1): structured concurrency and
 * ownership. "Every goroutine must have an owner and a shutdown path."
 *
 * l01_errgroup: the errgroup pattern. A cancellable context derived from
 *   the parent, a group on it, workerA and workerB as its tasks, Wait for
 *   the first error. Run twice: both workers succeed; then workerB fails and
 *   the group context stops workerA, which checks it between steps.
 * l01_fire_and_forget: the anti-pattern `go doWork(req)` next to its fix.
 *   Broken: Handle returns at once while doWork still runs, owned by nobody,
 *   its error returned to nobody (bounded: doWork ends by itself after
 *   50 ms, and the request is heap-allocated and freed by the task, because
 *   in C a forgotten task may outlive the caller's stack frame too).
 *   Fixed: Handle takes the caller's context and returns doWork's result;
 *   when it returns nothing it started is running, and the caller's deadline
 *   stops the work.
 *
 * Checks: Wait's error, that workerA stopped on cancellation, the fixed
 * Handle's errors, and gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 *
 * Go -> C: errgroup.WithContext is gocc_group_new(ctx) + gocc_group_ctx();
 * closures become task functions taking an argument struct; an `error` is a
 * negative errno (workerB's failure is -EIO).
 */
#include <gocc.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L01", ok, what)

static double ms_since(int64_t t0) { return (double)(gocc_now() - t0) / 1e6; }

/* ---- L01: errgroup with two workers ----------------------------------- */

typedef struct worker {
    int steps; /* steps to do before succeeding */
    bool fail; /* fail (with -EIO) after the steps instead */
    int done;  /* out: steps done */
    int err;   /* out: what the worker returned */
} worker_t;

/* One worker: `steps` units of work, checking ctx between them. */
static int run_worker(gocc_ctx_t *ctx, worker_t *w) {
    for (w->done = 0; w->done < w->steps; w->done++) {
        int err = gocc_sleep(GOCC_MILLISECOND, ctx); /* a unit of work */
        if (err != 0) return w->err = err;           /* ctx is done: stop */
    }
    return w->err = w->fail ? -EIO : 0;
}

static int workerA(gocc_ctx_t *ctx, void *arg) { return run_worker(ctx, arg); }
static int workerB(gocc_ctx_t *ctx, void *arg) { return run_worker(ctx, arg); }

/* ctx, cancel := WithCancel(parent); g, ctx := WithContext(ctx);
 * g.Go(workerA); g.Go(workerB); return g.Wait() */
static int run_both(gocc_ctx_t *parent, worker_t *a, worker_t *b) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(parent);
    if (!ctx) return -errno;
    gocc_group_t *g = gocc_group_new(ctx);
    int err = g ? 0 : -errno;
    if (g) {
        int e1 = gocc_group_go(g, workerA, a);
        int e2 = gocc_group_go(g, workerB, b);
        err = gocc_group_wait(g); /* waits for both, first error */
        if (err == 0) err = e1 ? e1 : e2;
        gocc_group_free(g);
    }
    gocc_ctx_cancel(ctx); /* defer cancel() */
    gocc_ctx_release(ctx);
    return err;
}

static void l01_errgroup(void) {
    worker_t a = {.steps = 5}, b = {.steps = 3};
    int err = run_both(NULL, &a, &b);
    check(err == 0 && a.err == 0 && b.err == 0 && a.done == 5 && b.done == 3,
          "both workers succeed, Wait returns 0");
    printf("L01 errgroup: workerA (%d steps) and workerB (%d steps) ok, Wait returned %d\n", a.done,
           b.done, err);

    a = (worker_t){.steps = 1000};
    b = (worker_t){.steps = 3, .fail = true};
    int64_t t0 = gocc_now();
    err = run_both(NULL, &a, &b);
    double ms = ms_since(t0);
    check(err == -EIO, "Wait returns workerB's error");
    check(a.err == GOCC_ECANCELED && a.done < 1000, "workerA is stopped by the group context");
    printf("L01 errgroup: workerB failed, Wait returned \"%s\" after %.1f ms; "
           "workerA stopped at step %d of 1000 (\"%s\")\n",
           gocc_strerror(err), ms, a.done, gocc_strerror(a.err));
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left after Wait");
}

/* ---- L01: fire-and-forget, and the fix -------------------------------- */

typedef struct request {
    int id;
    int64_t cost; /* how long doWork takes */
    bool fail;
} request_t;

static atomic_int finished_unowned; /* only to show the work went on */

/* doWork: a slow operation that observes ctx and may fail. */
static int do_work(gocc_ctx_t *ctx, const request_t *req) {
    int err = gocc_sleep(req->cost, ctx);
    if (err != 0) return err;
    return req->fail ? -EIO : 0;
}

/* The task behind `go doWork(req)`: it owns req (the caller has returned). */
static int do_work_task(gocc_ctx_t *ctx, void *arg) {
    request_t *req = arg;
    int err = do_work(ctx, req); /* ctx is background: nothing can stop it */
    atomic_fetch_add(&finished_unowned, 1);
    free(req);
    return err; /* ignored by gocc_go: the error goes to nobody */
}

/* BROKEN: no owner, no cancellation, no wait. */
static void handle_fire_and_forget(const request_t *req) {
    request_t *copy = malloc(sizeof *copy);
    if (!copy) return;
    *copy = *req;
    if (gocc_go(do_work_task, NULL, copy) != 0) free(copy);
}

/* FIXED: the caller owns the work: it passes its context and gets the
 * result; nothing outlives the call. */
static int handle(gocc_ctx_t *ctx, const request_t *req) { return do_work(ctx, req); }

static void l01_fire_and_forget(void) {
    request_t req = {.id = 1, .cost = 50 * GOCC_MILLISECOND, .fail = true};

    int64_t t0 = gocc_now();
    handle_fire_and_forget(&req);
    double ms = ms_since(t0);
    size_t live = gocc_tasks_live();
    int finished = atomic_load(&finished_unowned);
    /* (A stall longer than doWork itself could let it finish first.) */
    check((live == 1 && finished == 0) || gocc_now() - t0 >= req.cost,
          "the forgotten task is still running after Handle");
    printf("L01 fire-and-forget: Handle returned in %.2f ms with %zu task still running, "
           "owned by nobody, its error returned to nobody\n",
           ms, live);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the forgotten task ends (bounded demo)");
    check(atomic_load(&finished_unowned) == 1, "the forgotten task finished");

    int err = handle(NULL, &req);
    check(err == -EIO && gocc_tasks_live() == 0, "fixed Handle returns the error itself");
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_MILLISECOND);
    check(ctx != NULL, "made a context");
    int err2 = GOCC_ENOMEM;
    t0 = gocc_now();
    if (ctx) {
        err2 = handle(ctx, &req);
        gocc_ctx_cancel(ctx);
        gocc_ctx_release(ctx);
    }
    ms = ms_since(t0);
    check(err2 == GOCC_EDEADLINE, "the caller's deadline stops the fixed Handle");
    printf("L01 fix: Handle(ctx, req) returned \"%s\" itself with %zu tasks live; "
           "with a 10 ms deadline it returned \"%s\" after %.1f ms\n",
           gocc_strerror(err), gocc_tasks_live(), gocc_strerror(err2), ms);
}

int main(void) {
    l01_errgroup();
    l01_fire_and_forget();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L01 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
