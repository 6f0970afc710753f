/*
 * l02_cancellation.c - L02 (Deep Dive, Lesson 2): cancellation that actually
 * stops work. "Cancellation only works if goroutines observe it."
 *
 * l02_send_with_cancel: the lesson's pattern, a send that is also a wait on
 *   ctx.Done(): select { case out <- item: case <-ctx.Done(): return
 *   ctx.Err() }, as gocc_select over a SEND case and the ctx's done channel.
 *   (gocc_chan_send(out, &item, ctx) does the same in one call; the rest of
 *   the file uses it.)
 * l02_loops: "check ctx.Done() in loops". A CPU-bound loop that never
 *   looks at its context runs every step after the cancel; the same loop
 *   checking gocc_ctx_err() (one atomic load) between steps stops at once.
 * l02_downstream: "when fan-out stops, always drain or stop downstream".
 *   gen -> 3 sq workers -> one squares channel (closed by a closer task).
 *   The consumer wants only the first 3 squares. Broken: it just leaves,
 *   and every stage stays blocked in a send (bounded: the demo itself
 *   cancels the pipeline's context once it has counted them). Fix 1: the
 *   consumer cancels the context (stop). Fix 2: it drains the channel until
 *   the closer closes it.
 *
 * Checks: values and their order, the returned errors, step counts after
 * the cancel (exact), the drained sum, gocc_tasks_live() == 0. Exit 1 if
 * wrong.
 *
 * Go -> C: chan int is a channel of sizeof(int) elements; ctx.Done() is
 * gocc_ctx_done(ctx), a channel closed when ctx is done; the pipeline's
 * closures are task functions sharing one heap struct (reference-counted:
 * in the broken run the stages outlive the consumer's function).
 */
#include <gocc.h>

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L02", ok, what)

/* ---- L02: send with cancellation -------------------------------------- */

/* select { case out <- *item: return nil; case <-ctx.Done(): return ctx.Err() } */
static int send_item(gocc_ctx_t *ctx, gocc_chan_t *out, int *item) {
    gocc_case_t cases[2] = {
        {.ch = out, .dir = GOCC_SEND, .elem = item},
        {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV}, /* NULL: never done */
    };
    int r = gocc_select(cases, 2, NULL);
    if (r == 0) return cases[0].ok ? 0 : GOCC_ECLOSED;
    if (r == 1) return gocc_ctx_err(ctx);
    return r;
}

typedef struct gen_arg {
    gocc_chan_t *out; /* the task's own reference */
    int sent;         /* out */
    int err;          /* out: why gen stopped */
} gen_arg_t;

/* Sends 0, 1, 2, ... until its context is done. */
static int gen_forever(gocc_ctx_t *ctx, void *arg) {
    gen_arg_t *a = arg;
    for (int i = 0;; i++) {
        a->err = send_item(ctx, a->out, &i);
        if (a->err != 0) break;
        a->sent++;
    }
    gocc_chan_release(a->out);
    return a->err;
}

static void l02_send_with_cancel(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *out = gocc_chan_new(sizeof(int), 0);
    gen_arg_t a = {.out = gocc_chan_retain(out)};
    if (!ctx || !out || gocc_go(gen_forever, ctx, &a) != 0) {
        check(false, "started gen");
        gocc_chan_release(a.out);
        gocc_chan_release(out);
        gocc_ctx_release(ctx);
        return;
    }
    int in_order = 1, v;
    for (int want = 0; want < 5; want++)
        if (gocc_chan_recv(out, &v, NULL) != 0 || v != want) in_order = 0;
    gocc_ctx_cancel(ctx); /* the consumer is done: tell gen */
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gen exits on the cancel");
    check(in_order, "received 0..4 in order");
    check(a.sent == 5 && a.err == GOCC_ECANCELED, "gen stopped with ctx.Err()");
    printf("L02 send with cancellation: gen sent %d values, then the consumer cancelled "
           "and gen's select returned \"%s\"\n",
           a.sent, gocc_strerror(a.err));
    gocc_ctx_release(ctx);
    gocc_chan_release(out);
}

/* ---- L02: check ctx.Done() in loops ----------------------------------- */

#define STEPS 200

typedef struct loop_arg {
    bool checks_ctx;
    atomic_int steps; /* progress, read by main while the loop runs */
    unsigned result;  /* out: the computation, so it is not optimised away */
    int err;          /* out */
} loop_arg_t;

/* One step of CPU-bound work. */
static unsigned step(unsigned x) {
    for (int i = 0; i < 100000; i++) x = x * 1664525u + 1013904223u;
    return x;
}

static int compute(gocc_ctx_t *ctx, void *arg) {
    loop_arg_t *a = arg;
    unsigned x = 1;
    for (int i = 0; i < STEPS; i++) {
        if (a->checks_ctx && (a->err = gocc_ctx_err(ctx)) != 0) break; /* observe it */
        x = step(x);
        atomic_fetch_add(&a->steps, 1);
    }
    a->result = x;
    return a->err;
}

/* Start the loop, cancel it once it has done 3 steps, return how many steps
 * it did after the cancel. */
static int steps_after_cancel(bool checks_ctx, int *at_cancel, int *err) {
    loop_arg_t a = {.checks_ctx = checks_ctx};
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    if (!ctx || gocc_go(compute, ctx, &a) != 0) {
        gocc_ctx_release(ctx);
        check(false, "started the loop");
        return -1;
    }
    while (atomic_load(&a.steps) < 3) sched_yield();
    gocc_ctx_cancel(ctx);
    *at_cancel = atomic_load(&a.steps);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the loop returns");
    gocc_ctx_release(ctx);
    *err = a.err;
    return atomic_load(&a.steps) - *at_cancel;
}

static void l02_loops(void) {
    int at1, at2, err1, err2;
    int ignoring = steps_after_cancel(false, &at1, &err1);
    int checking = steps_after_cancel(true, &at2, &err2);
    check(at1 + ignoring == STEPS && err1 == 0, "the loop ignoring ctx runs every step");
    check(checking <= 1 && err2 == GOCC_ECANCELED, "the loop checking ctx stops at once");
    printf("L02 ctx check in loops: cancelled after step %d of %d; the loop ignoring ctx "
           "ran %d more steps, the loop checking it %d (\"%s\")\n",
           at1, STEPS, ignoring, checking, gocc_strerror(err2));
}

/* ---- L02: drain or stop downstream ------------------------------------ */

#define N_VALUES 50
#define SQ_WORKERS 3

/* The pipeline's shared state, on the heap and reference-counted: in the
 * broken run the consumer's function returns while the stages still run. */
typedef struct pipeline {
    atomic_int refs;
    int n;
    gocc_chan_t *nums, *squares;
    gocc_waitgroup_t sq_wg;
} pipeline_t;

static void pipeline_put(pipeline_t *p) {
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        gocc_chan_release(p->nums);
        gocc_chan_release(p->squares);
        free(p);
    }
}

static int gen(gocc_ctx_t *ctx, void *arg) {
    pipeline_t *p = arg;
    for (int i = 1; i <= p->n; i++)
        if (gocc_chan_send(p->nums, &i, ctx) != 0) break;
    gocc_chan_close(p->nums); /* the sender closes */
    pipeline_put(p);
    return 0;
}

static int sq(gocc_ctx_t *ctx, void *arg) {
    pipeline_t *p = arg;
    int v;
    while (gocc_chan_recv(p->nums, &v, ctx) == 0) {
        int s = v * v;
        if (gocc_chan_send(p->squares, &s, ctx) != 0) break; /* ctx done */
    }
    gocc_waitgroup_done(&p->sq_wg);
    pipeline_put(p);
    return 0;
}

/* The one task that closes squares, once every sq worker is gone. */
static int closer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipeline_t *p = arg;
    gocc_waitgroup_wait(&p->sq_wg, NULL);
    gocc_chan_close(p->squares);
    pipeline_put(p);
    return 0;
}

/* gen -> SQ_WORKERS x sq -> squares; the caller gets one reference. */
static pipeline_t *start_pipeline(gocc_ctx_t *ctx, int n) {
    pipeline_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    atomic_init(&p->refs, 1);
    p->n = n;
    p->nums = gocc_chan_new(sizeof(int), 0);
    p->squares = gocc_chan_new(sizeof(int), 0);
    if (!p->nums || !p->squares) {
        pipeline_put(p);
        return NULL;
    }
    gocc_waitgroup_add(&p->sq_wg, SQ_WORKERS);
    int started = 0;
    atomic_fetch_add(&p->refs, 1);
    if (gocc_go(gen, ctx, p) != 0) {
        gocc_chan_close(p->nums);
        pipeline_put(p);
    }
    for (int i = 0; i < SQ_WORKERS; i++) {
        atomic_fetch_add(&p->refs, 1);
        if (gocc_go(sq, ctx, p) == 0) {
            started++;
        } else {
            gocc_waitgroup_done(&p->sq_wg);
            pipeline_put(p);
        }
    }
    atomic_fetch_add(&p->refs, 1);
    if (gocc_go(closer, ctx, p) != 0) {
        gocc_waitgroup_wait(&p->sq_wg, NULL);
        gocc_chan_close(p->squares);
        pipeline_put(p);
    }
    check(started == SQ_WORKERS, "started the pipeline");
    return p;
}

static bool is_square_of_1_to_n(int v, int n) {
    for (int i = 1; i <= n; i++)
        if (i * i == v) return true;
    return false;
}

/* Take the first 3 squares. */
static bool take3(pipeline_t *p, gocc_ctx_t *ctx, long *sum) {
    int v;
    for (int i = 0; i < 3; i++) {
        if (gocc_chan_recv(p->squares, &v, ctx) != 0 || !is_square_of_1_to_n(v, p->n)) return false;
        *sum += v;
    }
    return true;
}

static void l02_downstream(void) {
    /* BROKEN: take 3 and leave. Nothing in the pipeline can end the stages
     * now; the demo keeps a back door (a cancel the consumer never makes)
     * and uses it once it has counted them. */
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    pipeline_t *p = ctx ? start_pipeline(ctx, N_VALUES) : NULL;
    long sum = 0;
    if (p) {
        check(take3(p, NULL, &sum), "broken: got 3 squares");
        pipeline_put(p); /* ... and the consumer leaves */
        gocc_sleep(50 * GOCC_MILLISECOND, NULL);
        size_t stuck = gocc_tasks_live();
        check(stuck == SQ_WORKERS + 2, "broken: every stage is still blocked");
        gocc_ctx_cancel(ctx); /* the back door */
        check(example_tasks_exit_within(5 * GOCC_SECOND), "broken: the back door ends the stages");
        printf("L02 downstream, broken: the consumer took 3 of %d squares and left; "
               "%zu tasks still blocked 50 ms later (freed by the demo's back door)\n",
               N_VALUES, stuck);
    }
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);

    /* FIX 1: stop downstream: cancel. */
    ctx = gocc_ctx_with_cancel(NULL);
    p = ctx ? start_pipeline(ctx, N_VALUES) : NULL;
    if (p) {
        sum = 0;
        check(take3(p, NULL, &sum), "stop: got 3 squares");
        int64_t t0 = gocc_now();
        gocc_ctx_cancel(ctx); /* tell every stage */
        pipeline_put(p);
        check(example_tasks_exit_within(5 * GOCC_SECOND), "stop: every stage exits");
        double ms = (double)(gocc_now() - t0) / 1e6;
        printf("L02 downstream, stop: the consumer took 3 squares and cancelled: "
               "%zu tasks live %.2f ms later\n",
               gocc_tasks_live(), ms);
    }
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);

    /* FIX 2: drain downstream until the closer closes it. */
    ctx = gocc_ctx_with_cancel(NULL);
    p = ctx ? start_pipeline(ctx, N_VALUES) : NULL;
    if (p) {
        sum = 0;
        check(take3(p, NULL, &sum), "drain: got 3 squares");
        int v, drained = 0;
        while (gocc_chan_recv(p->squares, &v, NULL) == 0) { /* range squares */
            sum += v;
            drained++;
        }
        pipeline_put(p);
        long want = (long)N_VALUES * (N_VALUES + 1) * (2 * N_VALUES + 1) / 6;
        check(drained == N_VALUES - 3 && sum == want, "drain: every square arrived once");
        check(example_tasks_exit_within(5 * GOCC_SECOND) && gocc_ctx_err(ctx) == 0,
              "drain: the stages finish by themselves");
        printf("L02 downstream, drain: the consumer took 3 squares and drained %d more "
               "until close (sum %ld, want %ld); %zu tasks live\n",
               drained, sum, want, gocc_tasks_live());
    }
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
}

int main(void) {
    l02_send_with_cancel();
    l02_loops();
    l02_downstream();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L02 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
