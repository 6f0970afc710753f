/*
 * b14_throttle.c - B14 (chapter 9, "Debounce and Throttle"): Throttle(ctx,
 * in, limit) <-chan T passes every value of `in` on, but no faster than
 * one per `limit`; out is closed when `in` is, or when ctx ends.
 *
 * b14_steady: a producer sends 20 values as fast as it can into a
 *   throttle of 10 ms (100 a second). All 20 come out, in order, then out
 *   closes; the program prints what it measured: 20 values over T ms, the
 *   achieved rate next to the limit's.
 * b14_cancel: a throttle of 2 s. The first value passes at once; ctx is
 *   cancelled while the throttle waits for its next turn: it stops at
 *   once (not at the next turn), out closes, no task is left.
 *
 * Go -> C: the seed paces with a ticker: send a value, then <-ticker.C.
 * The port paces with a token bucket, gocc_ratelimit (1/limit tokens a
 * second, burst 1): gocc_ratelimit_wait(rl, 1, ctx) before each send. Same
 * pace (the first value at once, then one per limit; after a quiet spell
 * one value may go at once, as a ticker's buffered tick allows), but the
 * wait watches ctx: the seed's bare `<-ticker.C` would notice a cancel only
 * at the next tick. The generic T is an element size: the task's buffer
 * (a flexible array member) holds one value, copied as bytes. The task
 * owns its references to `in` and `out` and the limiter; `defer close(out)`
 * and `defer ticker.Stop()` are the close and the free at its end.
 *
 * Checks: steady - 20 values in order, out closed, the 20 took at least
 * 19 * 10 ms (the bucket cannot hand out turns early; the upper bound a
 * generous 5 s, also the run's deadline, so a throttle whose turns never
 * come ends instead of hanging); cancel - one value, the cancel ended the wait long before
 * the 2 s turn, out closed; gocc_tasks_live() == 0 at the end. Exit 1 if
 * wrong.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B14", ok, what)

#define STEADY_N 20
#define STEADY_LIMIT (10 * GOCC_MILLISECOND)
#define CANCEL_LIMIT (2 * GOCC_SECOND)

/* ---- Throttle[T] ----------------------------------------------------- */

typedef struct throttler {
    gocc_chan_t *in, *out; /* the task's own references */
    gocc_ratelimit_t *rl;  /* the task's: one turn per limit */
    unsigned char val[];   /* one T */
} throttler_t;

static int throttle_task(gocc_ctx_t *ctx, void *arg) {
    throttler_t *t = arg;
    while (gocc_chan_recv(t->in, t->val, ctx) == 0) {       /* case val, ok := <-in */
        if (gocc_ratelimit_wait(t->rl, 1, ctx) != 0) break; /* our turn, or ctx ended */
        if (gocc_chan_send(t->out, t->val, ctx) != 0) break;
    }
    gocc_chan_close(t->out); /* defer close(out) */
    gocc_chan_release(t->in);
    gocc_chan_release(t->out);
    gocc_ratelimit_free(t->rl); /* defer ticker.Stop() */
    free(t);
    return 0;
}

/* Throttle: a new unbuffered channel of elem_size-byte values carrying
 * in's values at most one per limit_ns (the caller's reference), or NULL. */
static gocc_chan_t *throttle(gocc_ctx_t *ctx, gocc_chan_t *in, size_t elem_size, int64_t limit_ns) {
    throttler_t *t = malloc(sizeof *t + elem_size);
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    gocc_ratelimit_t *rl = gocc_ratelimit_new((double)GOCC_SECOND / (double)limit_ns, 1);
    if (t && out && rl) {
        *t = (throttler_t){gocc_chan_retain(in), gocc_chan_retain(out), rl};
        if (gocc_go(throttle_task, ctx, t) == 0) return out;
        gocc_chan_release(t->in);
        gocc_chan_release(t->out);
    }
    gocc_ratelimit_free(rl);
    gocc_chan_release(out);
    free(t);
    return NULL;
}

/* ---- a producer -------------------------------------------------------- */

typedef struct producer {
    gocc_chan_t *out; /* the task's own reference */
    int n;
} producer_t;

/* Sends 0..n-1 as fast as the receiver takes them, then closes. */
static int producer_task(gocc_ctx_t *ctx, void *arg) {
    producer_t *p = arg;
    for (int i = 0; i < p->n; i++)
        if (gocc_chan_send(p->out, &i, ctx) != 0) break;
    gocc_chan_close(p->out);
    gocc_chan_release(p->out);
    free(p);
    return 0;
}

/* A channel fed by a producer task, or NULL. */
static gocc_chan_t *produce(gocc_ctx_t *ctx, int n) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    producer_t *p = malloc(sizeof *p);
    if (ch && p) {
        *p = (producer_t){gocc_chan_retain(ch), n};
        if (gocc_go(producer_task, ctx, p) == 0) return ch;
        gocc_chan_release(p->out);
    }
    free(p);
    gocc_chan_release(ch);
    return NULL;
}

/* ---- the two runs ------------------------------------------------------ */

static void b14_steady(void) {
    /* The run's own deadline: a throttle stuck waiting for a turn ends there. */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    gocc_chan_t *in = ctx ? produce(ctx, STEADY_N) : NULL;
    int64_t t0 = gocc_now(); /* before the throttle's first turn */
    gocc_chan_t *out = in ? throttle(ctx, in, sizeof(int), STEADY_LIMIT) : NULL;
    check(out != NULL, "started the producer and the throttle");
    int got = 0, v, rc = GOCC_ECLOSED;
    bool in_order = true;
    int64_t t_last = t0;
    while (out && (rc = gocc_chan_recv(out, &v, NULL)) == 0) { /* range */
        if (v != got) in_order = false;
        got++;
        t_last = gocc_now();
    }
    int64_t took = t_last - t0;
    double rate = took > 0 ? (double)(got - 1) * (double)GOCC_SECOND / (double)took : 0;
    check(rc == GOCC_ECLOSED, "out closed after in was");
    check(got == STEADY_N && in_order, "all 20 values came out, in order");
    check(took >= (STEADY_N - 1) * STEADY_LIMIT - GOCC_MILLISECOND,
          "no faster than one per 10 ms (19 gaps >= 190 ms)");
    check(took < 5 * GOCC_SECOND, "and not stuck (under 5 s)");
    printf("B14 steady: %d values through Throttle(10ms) in %lld ms: %.0f/s (limit 100/s)\n", got,
           (long long)(took / GOCC_MILLISECOND), rate);
    gocc_chan_release(out);
    gocc_chan_release(in);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
}

static void b14_cancel(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *in = ctx ? produce(ctx, 5) : NULL;
    gocc_chan_t *out = in ? throttle(ctx, in, sizeof(int), CANCEL_LIMIT) : NULL;
    check(out != NULL, "started the producer and the throttle");
    int v = -1;
    int first = out ? gocc_chan_recv(out, &v, NULL) : GOCC_EINVAL; /* passes at once */
    /* The throttle now waits up to 2 s for its next turn. */
    int64_t t_cancel = gocc_now();
    gocc_ctx_cancel(ctx);
    gocc_ctx_t *bound = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    int rc = GOCC_EINVAL, later = 0;
    while (out && (rc = gocc_chan_recv(out, NULL, bound)) == 0) later++;
    int64_t took = gocc_now() - t_cancel;
    gocc_ctx_cancel(bound);
    gocc_ctx_release(bound);
    check(first == 0 && v == 0, "the first value passed at once");
    check(out && rc == GOCC_ECLOSED && later == 0, "after the cancel: out closed, nothing more");
    check(took < CANCEL_LIMIT / 2, "the cancel ended the wait, not the next turn");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the throttle and producer returned");
    printf("B14 cancel: Throttle(2s) passed 1 value; cancelled while waiting its turn -> out "
           "closed after %lld ms\n",
           (long long)(took / GOCC_MILLISECOND));
    gocc_chan_release(out);
    gocc_chan_release(in);
    gocc_ctx_release(ctx);
}

int main(void) {
    b14_steady();
    b14_cancel();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B14 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
