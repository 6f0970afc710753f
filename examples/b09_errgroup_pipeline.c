/*
 * b09_errgroup_pipeline.c - B09 (chapter 9, "Advanced: Pipeline with error
 * group"): three stages, each an errgroup task, joined by unbuffered
 * channels: generate 0..99 -> square -> sum.
 *
 *   Stage 1: defer close(numbers); for i < 100 { select { case numbers <- i:
 *            case <-ctx.Done(): return ctx.Err() } }
 *   Stage 2: defer close(squared); for n := range numbers { select {
 *            case squared <- n * n: case <-ctx.Done(): return ctx.Err() } }
 *   Stage 3: for n := range squared { sum += n }; fmt.Println("Sum:", sum)
 *   return g.Wait()
 *
 * b09_sum: the seed's pipeline. Sum of i*i for i in 0..99 is
 *   99 * 100 * 199 / 6 = 328350.
 * b09_stage_fails: the same pipeline with a sum stage that gives up with
 *   an error ("sum over budget") once the sum passes 10000. Its error
 *   cancels the group context, so the generator, blocked sending a number
 *   nobody will take, returns ctx.Err() and closes numbers; the squarer
 *   ends either the same way (blocked sending on squared, which nobody
 *   reads any more) or, when it was waiting on numbers instead, by the
 *   close ending its range (nil): which one is a race, and both are clean.
 *   Wait returns the sum stage's error and no stage is left blocked. The
 *   caller gives the run a 5 s deadline, so a pipeline the error did not
 *   stop ends there (with "deadline exceeded") instead of hanging.
 *
 * Go -> C: chan int is gocc_chan_new(sizeof(int), 0); the select between
 * a send and <-ctx.Done() is one gocc_chan_send with the context (it
 * returns the context's error when ctx is done); `for n := range ch` is a
 * gocc_chan_recv loop until GOCC_ECLOSED (no context, like range); defer
 * close(ch) is a close on every return path. Stage 3's sum is written to a
 * variable main reads after Wait (which orders it, as in Go).
 *
 * Checks: the sum equals the closed form and Wait is nil; in the failing
 * run Wait returns the sum stage's error, stage 1 returned "context
 * canceled" (the group's cancel, not the caller's deadline) and stage 2
 * that or nil, fewer than 100 numbers were generated, and
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B09", ok, what)

#define N 100
#define ERR_OVER_BUDGET 1001 /* the sum stage's own error */

typedef struct pipeline {
    gocc_chan_t *numbers, *squared;
    long budget; /* the sum stage fails past this; 0: no budget */
    long sum;    /* stage 3's result, read after Wait */
    int generated;
    int gen_err, square_err; /* what stages 1 and 2 returned */
} pipeline_t;

/* Stage 1: Generate. */
static int generate(gocc_ctx_t *ctx, void *arg) {
    pipeline_t *p = arg;
    int err = 0;
    for (int i = 0; i < N && err == 0; i++) {
        err = gocc_chan_send(p->numbers, &i, ctx); /* numbers <- i, or ctx.Err() */
        p->generated += err == 0;
    }
    gocc_chan_close(p->numbers); /* defer close(numbers) */
    p->gen_err = err;
    return err;
}

/* Stage 2: Square. */
static int square(gocc_ctx_t *ctx, void *arg) {
    pipeline_t *p = arg;
    int n, err = 0;
    while (err == 0 && gocc_chan_recv(p->numbers, &n, NULL) == 0) { /* range numbers */
        int sq = n * n;
        err = gocc_chan_send(p->squared, &sq, ctx);
    }
    gocc_chan_close(p->squared); /* defer close(squared) */
    p->square_err = err;
    return err;
}

/* Stage 3: Sum. */
static int sum(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipeline_t *p = arg;
    long s = 0;
    int n;
    while (gocc_chan_recv(p->squared, &n, NULL) == 0) { /* range squared */
        s += n;
        if (p->budget > 0 && s > p->budget) {
            p->sum = s;
            return ERR_OVER_BUDGET; /* stop reading: the stages above must not hang */
        }
    }
    p->sum = s;
    return 0;
}

/* func pipeline(ctx) error */
static int pipeline(gocc_ctx_t *ctx, pipeline_t *p) {
    gocc_group_t *g = gocc_group_new(ctx);
    p->numbers = gocc_chan_new(sizeof(int), 0);
    p->squared = gocc_chan_new(sizeof(int), 0);
    int err = GOCC_ENOMEM;
    if (g && p->numbers && p->squared) {
        err = gocc_group_go(g, generate, p);
        if (err == 0) err = gocc_group_go(g, square, p);
        if (err == 0) err = gocc_group_go(g, sum, p);
        if (err != 0) gocc_ctx_cancel(gocc_group_ctx(g)); /* stop what started */
        int werr = gocc_group_wait(g);
        if (err == 0) err = werr;
    }
    gocc_group_free(g);
    gocc_chan_release(p->numbers);
    gocc_chan_release(p->squared);
    return err;
}

static void b09_sum(void) {
    pipeline_t p = {0};
    int err = pipeline(NULL, &p);
    const long want = (long)(N - 1) * N * (2 * N - 1) / 6; /* sum of i*i, i < N */
    check(err == 0, "Wait returned nil");
    check(p.sum == want, "the sum of squares equals the closed form 328350");
    printf("B09 pipeline: generate 0..%d -> square -> sum: Sum: %ld (closed form %ld), "
           "Wait() = %s\n",
           N - 1, p.sum, want, err ? gocc_strerror(err) : "nil");
}

static void b09_stage_fails(void) {
    pipeline_t p = {.budget = 10000};
    gocc_ctx_t *caller = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    int err = caller ? pipeline(caller, &p) : GOCC_ENOMEM;
    gocc_ctx_cancel(caller);
    gocc_ctx_release(caller);
    check(err == ERR_OVER_BUDGET, "Wait returned the sum stage's error");
    check(p.gen_err == GOCC_ECANCELED, "the generator returned ctx.Err() (context canceled)");
    check(p.square_err == GOCC_ECANCELED || p.square_err == 0,
          "the squarer returned ctx.Err() or ended with its input's close");
    check(p.generated < N, "the generator stopped early");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no stage left blocked");
    printf("B09 pipeline: sum stage fails past 10000 (at %ld): Wait() = \"sum over budget\"; "
           "generate stopped after %d numbers with \"%s\", square with %s%s%s\n",
           p.sum, p.generated, gocc_strerror(p.gen_err), p.square_err ? "\"" : "",
           p.square_err ? gocc_strerror(p.square_err) : "nil (numbers closed)",
           p.square_err ? "\"" : "");
}

int main(void) {
    b09_sum();
    b09_stage_fails();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B09 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
