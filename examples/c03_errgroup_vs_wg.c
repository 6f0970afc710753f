/*
 * c03_errgroup_vs_wg.c - port of C03 (production guide, "Fan-out/fan-in with
 * cancellation (errgroup)": cancel on first error, next to the WaitGroup
 * version that loses the first error and does not propagate cancellation).
 *
 * Eight ids are processed concurrently. process(ctx, 3) fails at once; the
 * others take 300 ms of work that stops early when ctx is done.
 *
 * WRONG: a WaitGroup and `_ = process(context.Background(), id)`. The
 * caller gets no error at all (it was dropped on the floor), and the seven
 * other tasks run their full 300 ms though the job already failed: nothing
 * tells them.
 * RIGHT: errgroup.WithContext. The first error cancels the group context,
 * the seven others stop early, and g.Wait() returns that first error (also
 * recorded as the context's cause).
 *
 * Go to C: errgroup.WithContext is gocc_group_new(parent) with
 * gocc_group_ctx(g) as the derived ctx; g.Go is gocc_group_go and every
 * task gets the group context as its first parameter; g.Wait is
 * gocc_group_wait. The WaitGroup version is gocc_go tasks started with
 * the background context (NULL) and a gocc_waitgroup_t. Go's loop-variable
 * capture (`id := id`) has a C twin: handing each task a pointer to the
 * loop variable; here each task gets a pointer to its own array element.
 * Errors are application codes (1000 + id) rather than errno values. No
 * generics in the Go.
 *
 * Checks: the WaitGroup version reports no error to the caller although
 * process(3) failed, and all seven others ran to the end (nothing could
 * stop them); the errgroup version returns process(3)'s error from wait
 * and as the context's cause, and all seven others were stopped early by
 * the group context (none ran its 300 ms: that would take the failing task
 * 300 ms to report, far more than a loaded machine delays it). Every task
 * has returned at the end (gocc_tasks_live() == 0). Exit status 0 when all
 * hold, else 1.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define NIDS 8
#define BAD_ID 3
#define WORK (300 * GOCC_MILLISECOND)
#define ERR_PROCESS_BASE 1000 /* process(id) fails with 1000 + id */

#define check(ok, what) example_check("C03", ok, what)

static atomic_int ran_to_end, stopped_early;

/* The unit of work: id 3 fails; the rest work 300 ms unless ctx ends. */
static int process(gocc_ctx_t *ctx, int id) {
    if (id == BAD_ID) return ERR_PROCESS_BASE + id;
    int err = gocc_sleep(WORK, ctx);
    atomic_fetch_add(err ? &stopped_early : &ran_to_end, 1);
    return err;
}

/* ---- WRONG: WaitGroup, background context, error dropped ---------------- */

typedef struct wg_arg {
    int id;
    gocc_waitgroup_t *wg;
} wg_arg_t;

static int wg_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx; /* started with the background context anyway */
    wg_arg_t *a = arg;
    (void)process(gocc_ctx_background(), a->id); /* _ = process(...) */
    gocc_waitgroup_done(a->wg);
    return 0;
}

static int with_waitgroup(void) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    wg_arg_t args[NIDS];
    for (int i = 0; i < NIDS; i++) {
        args[i] = (wg_arg_t){i + 1, &wg};
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(wg_task, NULL, &args[i]) != 0) {
            check(false, "started a WaitGroup task");
            gocc_waitgroup_done(&wg);
        }
    }
    gocc_waitgroup_wait(&wg, NULL);
    return 0; /* all the caller can say: the error went nowhere */
}

/* ---- RIGHT: errgroup ---------------------------------------------------- */

static int group_task(gocc_ctx_t *ctx, void *arg) {
    return process(ctx, *(const int *)arg); /* ctx: the group's */
}

static int with_errgroup(gocc_ctx_t *parent, int *cause) {
    int ids[NIDS]; /* each task reads its own element; wait outlives them */
    gocc_group_t *g = gocc_group_new(parent); /* g, ctx := errgroup.WithContext(ctx) */
    if (!g) return GOCC_ENOMEM;
    for (int i = 0; i < NIDS; i++) {
        ids[i] = i + 1;
        int err = gocc_group_go(g, group_task, &ids[i]);
        if (err) check(false, "started a group task");
    }
    int err = gocc_group_wait(g); /* if err := g.Wait(); err != nil */
    *cause = gocc_ctx_cause(gocc_group_ctx(g));
    gocc_group_free(g);
    return err;
}

static void describe(char *buf, size_t size, int err) {
    if (err == 0)
        snprintf(buf, size, "none");
    else if (err > ERR_PROCESS_BASE)
        snprintf(buf, size, "process(%d) failed", err - ERR_PROCESS_BASE);
    else
        snprintf(buf, size, "%s", gocc_strerror(err));
}

int main(void) {
    char what[64], why[64];

    int64_t start = gocc_now();
    int err = with_waitgroup();
    int64_t took = gocc_now() - start;
    int full = atomic_load(&ran_to_end), early = atomic_load(&stopped_early);
    describe(what, sizeof what, err);
    printf("C03 WaitGroup: process(3) failed, caller sees error: %s; %d others "
           "ran their full 300 ms anyway (%d stopped; %.0f ms)\n",
           what, full, early, took / 1e6);
    check(err == 0, "the WaitGroup version has no error to report (it was lost)");
    check(full == NIDS - 1 && early == 0, "nothing stopped the WaitGroup tasks");

    atomic_store(&ran_to_end, 0);
    atomic_store(&stopped_early, 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL); /* the caller's ctx */
    int cause = 0;
    start = gocc_now();
    err = ctx ? with_errgroup(ctx, &cause) : GOCC_ENOMEM;
    took = gocc_now() - start;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    full = atomic_load(&ran_to_end);
    early = atomic_load(&stopped_early);
    describe(what, sizeof what, err);
    describe(why, sizeof why, cause);
    printf("C03 errgroup: Wait() returned: %s (context cause: %s); %d others "
           "stopped early by the group context, %d ran to the end (%.0f ms)\n",
           what, why, early, full, took / 1e6);
    check(err == ERR_PROCESS_BASE + BAD_ID, "g.Wait() returned process(3)'s error");
    check(cause == ERR_PROCESS_BASE + BAD_ID, "the group context's cause is that error");
    check(early + full == NIDS - 1, "every other task ran and returned before Wait()");
    check(early == NIDS - 1 && full == 0, "the first error stopped all seven others early");

    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C03 errgroup vs WaitGroup: FAILED\n");
    return example_failures ? 1 : 0;
}
