/*
 * c06_pipeline_close.c - port of C06 (production guide, "Pipeline stages":
 * one-directional channels, close only from the sending side; the wrong
 * receiver-closes version next to it).
 *
 * stageA(ctx, out) sends 0..9 and closes out on the way out (defer
 * close(out)), leaving early when ctx is done. Three runs of it:
 *  1. RIGHT, a full pipeline: stageA -> square -> sink. Each stage closes
 *     only the channel it sends on; the sink's loop ends when its input is
 *     closed. The sink gets 0 1 4 ... 81.
 *  2. WRONG, receiver closes: a receiver that wants only 3 values closes
 *     stageA's channel to make it stop. In Go `close(in)` on a receive-only
 *     channel does not compile, and on a bidirectional one the sender's
 *     next send panics ("send on closed channel") and its deferred close
 *     panics again ("close of closed channel"). libgocc returns
 *     GOCC_ECLOSED for both instead of aborting; the program counts them.
 *     (Deterministic: the channel is unbuffered and the receiver never
 *     receives again, so send #4 cannot succeed.)
 *  3. RIGHT way to stop early: the receiver cancels the context instead.
 *     stageA sees ctx.Done, returns, and closes its own channel; the
 *     receiver drains until closed. No errors.
 *
 * Go to C: C has no receive-only channel type, so the rule is kept by
 * convention: a stage gets its input and output as separate parameters and
 * only ever closes the output. `select { case <-ctx.Done(): return; case
 * out <- i: }` is one send with the context. Each stage reports what
 * happened in its argument struct, read after a WaitGroup wait. No
 * generics in the Go; the channels carry int.
 *
 * Checks: run 1 yields exactly the ten squares with no stage errors; run 2
 * shows 1 send-on-closed and 1 close-of-closed error in stageA; run 3
 * shows none, with stageA having closed its channel itself; every task has
 * returned (gocc_tasks_live() == 0). Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define N 10

typedef struct stage {
    gocc_chan_t *in, *out; /* the task's own references (in: NULL for stageA) */
    gocc_waitgroup_t *wg;
    int sent;      /* values sent on out */
    int send_err;  /* sends that found out closed: a panic in Go */
    int close_err; /* closes of an already closed out: a panic in Go */
} stage_t;

#define check(ok, what) example_check("C06", ok, what)

/* Send v on s->out; false when the stage must stop. */
static bool emit(stage_t *s, int v, gocc_ctx_t *ctx) {
    int err = gocc_chan_send(s->out, &v, ctx);
    if (err == GOCC_ECLOSED) s->send_err++; /* someone else closed our output */
    if (err != 0) return false;             /* closed, or case <-ctx.Done() */
    s->sent++;
    return true;
}

/* defer close(out), then the end of the task. */
static void finish(stage_t *s) {
    if (gocc_chan_close(s->out) == GOCC_ECLOSED) s->close_err++;
    gocc_chan_release(s->in);
    gocc_chan_release(s->out);
    gocc_waitgroup_done(s->wg);
}

static int stage_a(gocc_ctx_t *ctx, void *arg) {
    stage_t *s = arg;
    for (int i = 0; i < N; i++)
        if (!emit(s, i, ctx)) break;
    finish(s);
    return 0;
}

static int stage_square(gocc_ctx_t *ctx, void *arg) {
    stage_t *s = arg;
    int v;
    while (gocc_chan_recv(s->in, &v, ctx) == 0) /* until in is closed */
        if (!emit(s, v * v, ctx)) break;
    finish(s);
    return 0;
}

static bool start(stage_t *s, gocc_fn fn, gocc_chan_t *in, gocc_chan_t *out, gocc_waitgroup_t *wg,
                  gocc_ctx_t *ctx) {
    *s = (stage_t){gocc_chan_retain(in), gocc_chan_retain(out), wg, 0, 0, 0};
    gocc_waitgroup_add(wg, 1);
    if (gocc_go(fn, ctx, s) == 0) return true;
    gocc_chan_close(out); /* stand in for the stage: its output ends */
    gocc_chan_release(in);
    gocc_chan_release(out);
    gocc_waitgroup_done(wg);
    check(false, "started a stage");
    return false;
}

/* 1. stageA -> square -> sink, each stage closing only its output. */
static void full_pipeline(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *nums = gocc_chan_new(sizeof(int), 0);
    gocc_chan_t *squares = gocc_chan_new(sizeof(int), 0);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    stage_t a, sq;
    if (!ctx || !nums || !squares) {
        check(false, "set up the pipeline");
    } else {
        start(&a, stage_a, NULL, nums, &wg, ctx);
        start(&sq, stage_square, nums, squares, &wg, ctx);
        int v, got[N + 1], n = 0;
        while (gocc_chan_recv(squares, &v, ctx) == 0) /* the sink */
            if (n <= N) got[n++] = v;
        gocc_waitgroup_wait(&wg, NULL);

        printf("C06 sender closes: stageA -> square -> sink:");
        for (int i = 0; i < n && i < N; i++) printf(" %d", got[i]);
        printf(" (each stage closed only its own output)\n");
        bool right = n == N;
        for (int i = 0; i < N && i < n; i++) right &= got[i] == i * i;
        check(right, "the sink got the ten squares in order");
        check(a.send_err + a.close_err + sq.send_err + sq.close_err == 0,
              "no stage hit a closed channel");
    }
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(nums);
    gocc_chan_release(squares);
}

/* 2 and 3: a receiver that wants only 3 values, and how it says so. */
static void stop_early(bool receiver_closes) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *nums = gocc_chan_new(sizeof(int), 0);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    stage_t a;
    if (!ctx || !nums || !start(&a, stage_a, NULL, nums, &wg, ctx)) {
        check(false, "set up the early stop");
        gocc_ctx_release(ctx);
        gocc_chan_release(nums);
        return;
    }
    int v, got = 0;
    while (got < 3 && gocc_chan_recv(nums, &v, NULL) == 0) got++;
    int late = 0;
    if (receiver_closes) {
        gocc_chan_close(nums); /* WRONG: not ours to close */
    } else {
        gocc_ctx_cancel(ctx);                               /* RIGHT: tell the sender to stop ... */
        while (gocc_chan_recv(nums, &v, NULL) == 0) late++; /* ... it closes */
    }
    gocc_waitgroup_wait(&wg, NULL);

    if (receiver_closes) {
        printf("C06 receiver closes (wrong): closed stageA's channel after %d values "
               "-> stageA: %d send on closed channel, %d close of closed channel "
               "(panics in Go)\n",
               got, a.send_err, a.close_err);
        check(a.send_err == 1, "stageA's next send found the channel closed");
        check(a.close_err == 1, "stageA's own close found it closed already");
    } else {
        printf("C06 receiver cancels (fix): cancelled ctx after %d values -> stageA "
               "returned and closed its own channel (%d in flight drained); errors: %d\n",
               got, late, a.send_err + a.close_err);
        check(a.send_err == 0 && a.close_err == 0, "stageA hit no closed channel");
        check(a.sent == got + late, "every value stageA sent was received");
        check(gocc_chan_try_recv(nums, NULL) == GOCC_ECLOSED, "stageA closed its channel");
    }
    check(got == 3, "the receiver got its 3 values");
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(nums);
}

int main(void) {
    full_pipeline();
    stop_early(true);
    stop_early(false);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C06 pipeline close: FAILED\n");
    return example_failures ? 1 : 0;
}
