/*
 * b13_debounce.c - B13 (chapter 9, "Debounce and Throttle"): Debounce(ctx,
 * in, delay) <-chan T passes a value on only after `delay` of quiet on
 * `in`: a burst of values becomes one, the last. When `in` closes, a value
 * still waiting goes out after its quiet period and then `out` is closed;
 * when ctx ends, the task returns at once (a waiting value is dropped).
 *
 * b13_bursts: a producer sends a burst of 10 values (1..10) as fast as it
 *   can, waits until the consumer has seen the debounced one, sends a
 *   second burst (101..105) and closes `in`. The consumer gets exactly two
 *   values, 10 and 105, each at least `delay` after the last send of its
 *   burst, and then `out` closes.
 * b13_cancel: a burst, then ctx cancelled within the quiet period: no
 *   value comes out, `out` is closed and the task has returned.
 *
 * Go -> C: the generic T is an element size (the channels carry
 * elem_size-byte values and `latest` is a buffer of that size); the
 * goroutine is a gocc_go task that owns its own references to `in` and
 * `out`; the three-case select is gocc_select. Two fixes to the seed:
 *   - its `case <-timer.C` reads a nil *time.Timer before the first value
 *     (a nil-pointer panic in Go); here the timer case holds a NULL channel
 *     (Go's nil channel: never ready) while no value waits;
 *   - it makes a new timer per value (timer.Stop + time.NewTimer); here one
 *     timer is Reset per value (Go 1.23 semantics: no stale fire after
 *     Reset), and the send on `out` also watches ctx, so a consumer that
 *     went away cannot leave the task blocked.
 *
 * Checks: the values and their count, the quiet period (a lower bound that
 * cannot be wrong, the upper bound a generous 2 s: a timer that fires
 * seconds late misses it), out closed, the timer armed once per value,
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B13", ok, what)

/* The quiet period. Generous: a burst is "one" only if no send in it is
 * delayed by this much, which a loaded 2-core machine never does. */
#define DELAY (250 * GOCC_MILLISECOND)

typedef struct debounce_stats {
    atomic_int arms;    /* timer (re)armed: once per value received */
    atomic_int emitted; /* values passed on */
} debounce_stats_t;

/* The goroutine's closure: heap-allocated, owned and freed by the task. */
typedef struct debouncer {
    gocc_chan_t *in, *out; /* the task's own references */
    size_t elem_size;
    int64_t delay;
    debounce_stats_t *st; /* the caller's, outlives the task */
    unsigned char buf[];  /* val, then latest: elem_size bytes each */
} debouncer_t;

enum { CASE_IN, CASE_TIMER, CASE_DONE };

/* out <- latest, unless ctx ends first. */
static int emit(debouncer_t *d, const void *latest, gocc_ctx_t *ctx) {
    int rc = gocc_chan_send(d->out, latest, ctx);
    if (rc == 0) atomic_fetch_add(&d->st->emitted, 1);
    return rc;
}

static int debounce_loop(gocc_ctx_t *ctx, void *arg) {
    debouncer_t *d = arg;
    unsigned char *val = d->buf, *latest = d->buf + d->elem_size;
    gocc_chan_t *done = gocc_ctx_done(ctx); /* NULL: ctx never ends */
    bool has_value = false;
    /* One timer for the task's life, armed only while a value waits. */
    gocc_timer_t *timer = gocc_timer_new(d->delay);
    if (timer) gocc_timer_stop(timer);
    while (timer) {
        gocc_case_t cases[3] = {
            [CASE_IN] = {.ch = d->in, .dir = GOCC_RECV, .elem = val},
            /* No value waiting: a nil channel, never ready. */
            [CASE_TIMER] = {.ch = has_value ? gocc_timer_chan(timer) : NULL, .dir = GOCC_RECV},
            [CASE_DONE] = {.ch = done, .dir = GOCC_RECV},
        };
        int r = gocc_select(cases, 3, NULL);
        if (r == CASE_IN && cases[CASE_IN].ok) { /* latest = val; restart the quiet period */
            memcpy(latest, val, d->elem_size);
            has_value = true;
            gocc_timer_reset(timer, d->delay);
            atomic_fetch_add(&d->st->arms, 1);
        } else if (r == CASE_IN) { /* in closed: flush what waits, after its quiet period */
            if (has_value && gocc_chan_recv(gocc_timer_chan(timer), NULL, ctx) == 0)
                emit(d, latest, ctx);
            break;
        } else if (r == CASE_TIMER) { /* quiet for `delay`: pass the latest on */
            has_value = false;
            if (emit(d, latest, ctx) != 0) break;
        } else {
            break; /* ctx.Done(), or an error */
        }
    }
    gocc_timer_free(timer);
    gocc_chan_close(d->out); /* defer close(out) */
    gocc_chan_release(d->out);
    gocc_chan_release(d->in);
    free(d);
    return 0;
}

/* Debounce: start the task; return `out` (the caller's reference) or NULL. */
static gocc_chan_t *debounce(gocc_ctx_t *ctx, gocc_chan_t *in, size_t elem_size, int64_t delay,
                             debounce_stats_t *st) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    debouncer_t *d = malloc(sizeof *d + 2 * elem_size);
    if (!out || !d) {
        gocc_chan_release(out);
        free(d);
        return NULL;
    }
    *d = (debouncer_t){.in = gocc_chan_retain(in),
                       .out = gocc_chan_retain(out),
                       .elem_size = elem_size,
                       .delay = delay,
                       .st = st};
    if (gocc_go(debounce_loop, ctx, d) != 0) {
        gocc_chan_release(d->in);
        gocc_chan_release(d->out);
        free(d);
        gocc_chan_release(out);
        return NULL;
    }
    return out;
}

/* ---- two bursts, then close ---------------------------------------------- */

typedef struct producer {
    gocc_chan_t *in;
    gocc_chan_t *go_on;             /* closed by the consumer after the first value */
    _Atomic int64_t last_a, last_b; /* gocc_now() just before each burst's last send */
} producer_t;

static int send_burst(producer_t *p, int first, int n, _Atomic int64_t *last, gocc_ctx_t *ctx) {
    for (int v = first; v < first + n; v++) {
        if (v == first + n - 1) atomic_store(last, gocc_now());
        int rc = gocc_chan_send(p->in, &v, ctx);
        if (rc != 0) return rc;
    }
    return 0;
}

static int produce(gocc_ctx_t *ctx, void *arg) {
    producer_t *p = arg;
    if (send_burst(p, 1, 10, &p->last_a, ctx) == 0 &&
        gocc_chan_recv(p->go_on, NULL, ctx) == GOCC_ECLOSED) /* the consumer saw the first */
        send_burst(p, 101, 5, &p->last_b, ctx);
    gocc_chan_close(p->in);
    return 0;
}

static void b13_bursts(void) {
    debounce_stats_t st = {0};
    producer_t p = {.in = gocc_chan_new(sizeof(int), 0), .go_on = gocc_chan_new(0, 0)};
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_SECOND); /* a broken run ends */
    gocc_chan_t *out = p.in && ctx ? debounce(ctx, p.in, sizeof(int), DELAY, &st) : NULL;
    if (!p.go_on || !out || gocc_go(produce, ctx, &p) != 0) {
        check(false, "started the debouncer and the producer");
        gocc_ctx_cancel(ctx);
    } else {
        int v1 = 0, v2 = 0, v3 = 0;
        int r1 = gocc_chan_recv(out, &v1, ctx);
        int64_t t1 = gocc_now();
        gocc_chan_close(p.go_on); /* the first burst is over: send the second */
        int r2 = gocc_chan_recv(out, &v2, ctx);
        int64_t t2 = gocc_now();
        int r3 = gocc_chan_recv(out, &v3, ctx);
        int64_t q1 = t1 - atomic_load(&p.last_a), q2 = t2 - atomic_load(&p.last_b);

        check(r1 == 0 && v1 == 10, "the first burst (1..10) came out as one value, its last: 10");
        check(r2 == 0 && v2 == 105, "the second burst (101..105) came out as one value: 105");
        check(r3 == GOCC_ECLOSED, "out was closed after the flush, with no other value");
        check(q1 >= DELAY && q2 >= DELAY, "each value came out after the quiet period");
        check(q1 < 2 * GOCC_SECOND && q2 < 2 * GOCC_SECOND, "and within 2 s of its burst");
        check(example_tasks_exit_within(5 * GOCC_SECOND), "the debouncer and producer returned");
        check(atomic_load(&st.arms) == 15 && atomic_load(&st.emitted) == 2,
              "one timer reset per value (15), 2 values passed on");
        printf("B13 bursts: 10 values -> %d after %lld ms of quiet; 5 more, then close -> %d "
               "after %lld ms (flushed), then out closed; %d timer resets, %d emitted\n",
               v1, (long long)(q1 / GOCC_MILLISECOND), v2, (long long)(q2 / GOCC_MILLISECOND),
               atomic_load(&st.arms), atomic_load(&st.emitted));
    }
    gocc_ctx_cancel(ctx);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left after the bursts");
    gocc_ctx_release(ctx);
    gocc_chan_release(out);
    gocc_chan_release(p.go_on);
    gocc_chan_release(p.in);
}

/* ---- cancelled within the quiet period ---------------------------------- */

static void b13_cancel(void) {
    debounce_stats_t st = {0};
    gocc_chan_t *in = gocc_chan_new(sizeof(int), 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *out = in && ctx ? debounce(ctx, in, sizeof(int), DELAY, &st) : NULL;
    if (!out) {
        check(false, "started the debouncer");
    } else {
        int sent = 0;
        for (int v = 1; v <= 3; v++) sent += gocc_chan_send(in, &v, NULL) == 0;
        gocc_ctx_cancel(ctx); /* well inside the 250 ms of quiet */
        int v = -1;
        gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND); /* a broken run ends */
        int r = gocc_chan_recv(out, &v, limit);
        gocc_ctx_cancel(limit);
        gocc_ctx_release(limit);
        check(sent == 3, "the burst was received");
        check(r == GOCC_ECLOSED && v == 0, "cancelled: the waiting value was dropped, out closed");
        check(example_tasks_exit_within(5 * GOCC_SECOND), "the debouncer returned on cancel");
        check(atomic_load(&st.emitted) == 0, "nothing was passed on");
        printf("B13 cancel: 3 values then cancel -> out closed with nothing passed on (%s)\n",
               r == GOCC_ECLOSED ? "channel closed" : gocc_strerror(r));
    }
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(out);
    gocc_chan_release(in);
}

int main(void) {
    b13_bursts();
    b13_cancel();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B13 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
