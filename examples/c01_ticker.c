/*
 * c01_ticker.c - port of C01 (production guide, "Goroutine lifecycle": the
 * correct ticker goroutine stopped via context, next to the wrong
 * goroutine without a stop condition).
 *
 * CORRECT: a task makes a ticker, does its work on every tick, and returns
 * when the context is done; the ticker is stopped and freed on the way out
 * (Go's defer ticker.Stop()). main lets it tick a few times, cancels, and
 * the task is gone: gocc_tasks_live() drops back to 0.
 *
 * WRONG, made safe to run: `go func() { for { doWork() } }()` - nothing
 * can stop it; it leaks for ever. Here it is started with the same kind of
 * context, and main cancels that context: the task does not look at it and
 * is still running 100 ms later, which gocc_tasks_live() shows. (It cannot
 * exit at all by the lesson's rules, so that is no timing guess.) To keep
 * the program bounded, the demo then pulls a plug the lesson's code would
 * not have: a flag only this demo sets, checked by the loop.
 *
 * Go to C: the goroutine is a gocc_go task that receives the context as
 * its first parameter. Go's
 *     select { case <-ctx.Done(): return; case <-ticker.C: work() }
 * is one receive from the ticker's channel with the context, since every
 * blocking call here takes a context and returns its error when it is
 * done. The 250 ms period becomes 10 ms so the program is quick. No
 * generics in the Go.
 *
 * Checks: the wrong task is still live 100 ms after the cancel (and exits
 * once the plug is pulled); the ticker task ticked at least 3 times and
 * returned after the cancel within a generous 2 s; gocc_tasks_live() == 0
 * at the end. Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check("C01", ok, what)

static atomic_int work_done;

static void do_work(void) { atomic_fetch_add(&work_done, 1); }

/* ---- CORRECT: stop via context ------------------------------------------ */

static atomic_int ticker_failed;

static int ticker_task(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_ticker_t *ticker = gocc_ticker_new(10 * GOCC_MILLISECOND);
    if (!ticker) {
        atomic_store(&ticker_failed, 1);
        return GOCC_ENOMEM;
    }
    int64_t tick;
    while (gocc_chan_recv(gocc_ticker_chan(ticker), &tick, ctx) == 0)
        do_work(); /* case <-ticker.C */
    /* case <-ctx.Done(): return */
    gocc_ticker_free(ticker); /* defer ticker.Stop() */
    return 0;
}

/* ---- WRONG: no stop condition ------------------------------------------- */

static atomic_bool demo_pull_plug; /* NOT part of the lesson: keeps the demo bounded */

static int forever_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx; /* ignored: that is the bug */
    (void)arg;
    for (;;) {
        do_work();
        gocc_sleep(GOCC_MILLISECOND, NULL);
        if (atomic_load(&demo_pull_plug)) break; /* the demo's plug only */
    }
    return 0;
}

static void wrong(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    if (!ctx || gocc_go(forever_task, ctx, NULL) != 0) {
        check(false, "started the task without a stop condition");
        gocc_ctx_release(ctx);
        return;
    }
    gocc_sleep(20 * GOCC_MILLISECOND, NULL);
    gocc_ctx_cancel(ctx); /* no effect on a task that never looks */
    gocc_ctx_release(ctx);
    bool gone = example_tasks_exit_within(100 * GOCC_MILLISECOND);
    size_t live = gocc_tasks_live();
    printf("C01 wrong: task with no stop condition -> still running 100 ms after "
           "cancel (gocc_tasks_live() == %zu, %d doWork calls): a leak\n",
           live, atomic_load(&work_done));
    check(!gone && live == 1, "the task without a stop condition outlived the cancel");

    atomic_store(&demo_pull_plug, true);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the demo's plug stopped it");
}

static void correct(void) {
    atomic_store(&work_done, 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL); /* defer cancel() below */
    if (!ctx || gocc_go(ticker_task, ctx, NULL) != 0) {
        check(false, "started the ticker task");
        gocc_ctx_release(ctx);
        return;
    }
    int64_t give_up = gocc_now() + 2 * GOCC_SECOND;
    while (atomic_load(&work_done) < 3 && gocc_now() < give_up) gocc_sleep(GOCC_MILLISECOND, NULL);
    int ticks = atomic_load(&work_done);

    int64_t start = gocc_now();
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    bool gone = example_tasks_exit_within(2 * GOCC_SECOND);
    int64_t took = gocc_now() - start;
    printf("C01 ticker: %d ticks of 10 ms, then cancel -> the task returned "
           "%.0f us later (gocc_tasks_live() == %zu)\n",
           ticks, took / 1e3, gocc_tasks_live());
    check(!atomic_load(&ticker_failed), "made the ticker");
    check(ticks >= 3, "the ticker task did its work on each tick");
    check(gone, "the ticker task returned after the cancel");
}

int main(void) {
    wrong();
    correct();
    check(gocc_tasks_live() == 0, "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C01 ticker: FAILED\n");
    return example_failures ? 1 : 0;
}
