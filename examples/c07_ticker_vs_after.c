/*
 * c07_ticker_vs_after.c - port of C07 (production guide, "Periodic work
 * without leaks (time.Ticker vs time.After)"): use one ticker for a loop;
 * avoid time.After in hot paths.
 *
 * Part 1, the snippet: poll() every 5 ms until the context is done (poll
 * cancels it after the 10th call; the context also has a 2 s deadline, far
 * more than 10 polls take, so a timer that fires late ends the loop there
 * and shows as fewer polls, instead of stretching it out).
 *   WRONG: `case <-time.After(period)` inside the loop makes a new timer
 *          on every iteration.
 *   RIGHT: one time.NewTicker(period) before the loop, stopped on the way
 *          out: one timer for the whole loop.
 * Part 2, the hot path: a message loop with a 1 s idle timeout, fed 1000
 * messages that are all ready at once.
 *   WRONG: time.After(1 s) per message: a timer made, armed on the shared
 *          timer thread, and thrown away still armed, 1000 times.
 *   RIGHT: one timer, Reset before each wait (safe under Go 1.23 timer
 *          semantics, which libgocc follows: no stale fire after Reset).
 *
 * Go to C: time.After(d) is gocc_timer_new(d) plus gocc_timer_chan; there
 * is no garbage collector, so the C loop must also free every one (a C
 * programmer who "just uses time.After" leaks it outright; the sanitizer
 * build would say so). The counts below are the timers each version
 * makes, counted by a wrapper around gocc_timer_new, and how many were
 * still armed when thrown away (gocc_timer_stop returns true for those):
 * in Go before 1.23 each of those stayed in the runtime's heap until it
 * fired. select is gocc_select with the context's Done channel as a case.
 * Timing is printed for interest only. No generics in the Go.
 *
 * Checks: part 1 polled at least 10 times either way, before the 2 s
 * deadline; time.After made one
 * timer per loop iteration while the ticker version made exactly one
 * ticker; part 2 handled all 1000 messages either way, time.After made one
 * timer per iteration (1001: the last sees the channel closed) and the
 * reset version exactly one. Every task has returned (gocc_tasks_live() ==
 * 0). Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define POLLS 10
#define PERIOD (5 * GOCC_MILLISECOND)
#define MESSAGES 1000
#define IDLE (1 * GOCC_SECOND)

#define check(ok, what) example_check("C07", ok, what)

/* Counted timer creation: what time.After costs per call. */
static int timers_made, timers_dropped_armed;

static gocc_timer_t *new_timer(int64_t d) {
    timers_made++;
    return gocc_timer_new(d);
}

static void drop_timer(gocc_timer_t *t) {
    if (gocc_timer_stop(t)) timers_dropped_armed++;
    gocc_timer_free(t);
}

/* ---- part 1: periodic polling ------------------------------------------- */

static int polls;

static void poll(gocc_ctx_t *ctx) {
    if (++polls == POLLS) gocc_ctx_cancel(ctx); /* enough: stop the loop */
}

/* WRONG: for { select { case <-ctx.Done(): return; case <-time.After(p): poll() } } */
static int poll_with_after(gocc_ctx_t *ctx, int *iterations) {
    int64_t fired;
    for (;;) {
        gocc_timer_t *t = new_timer(PERIOD); /* time.After(PERIOD) */
        if (!t) return GOCC_ENOMEM;
        (*iterations)++;
        gocc_case_t cases[] = {
            {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV},
            {.ch = gocc_timer_chan(t), .dir = GOCC_RECV, .elem = &fired},
        };
        int i = gocc_select(cases, 2, NULL);
        drop_timer(t);
        if (i != 1) return i < 0 ? i : 0; /* ctx.Done() */
        poll(ctx);
    }
}

/* RIGHT: t := time.NewTicker(p); defer t.Stop(); for { select { ... } } */
static int poll_with_ticker(gocc_ctx_t *ctx, int *iterations) {
    gocc_ticker_t *t = gocc_ticker_new(PERIOD);
    if (!t) return GOCC_ENOMEM;
    timers_made++;
    int64_t tick;
    gocc_case_t cases[] = {
        {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV},
        {.ch = gocc_ticker_chan(t), .dir = GOCC_RECV, .elem = &tick},
    };
    int i;
    for (;;) {
        (*iterations)++;
        if ((i = gocc_select(cases, 2, NULL)) != 1) break; /* ctx.Done() */
        poll(ctx);
    }
    gocc_ticker_free(t); /* defer t.Stop() */
    return i < 0 ? i : 0;
}

static void periodic(bool use_ticker) {
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 2 * GOCC_SECOND);
    polls = timers_made = timers_dropped_armed = 0;
    int iterations = 0, err = GOCC_ENOMEM;
    int64_t start = gocc_now();
    if (ctx)
        err = use_ticker ? poll_with_ticker(ctx, &iterations) : poll_with_after(ctx, &iterations);
    int64_t took = gocc_now() - start;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);

    printf("C07 %s: %d polls every 5 ms -> %d %s (%.0f ms)\n",
           use_ticker ? "ticker" : "time.After in loop", polls, timers_made,
           use_ticker ? "ticker made for the whole loop" : "timers made, one per iteration",
           took / 1e6);
    check(err == 0, "the polling loop ran");
    check(polls >= POLLS, "polled at least 10 times (before the 2 s deadline)");
    if (use_ticker)
        check(timers_made == 1, "the ticker version made one ticker");
    else
        check(timers_made == iterations && iterations > POLLS,
              "time.After made one timer per iteration");
}

/* ---- part 2: a hot message loop with an idle timeout -------------------- */

/* Read msgs until closed; idle timeout IDLE between messages. Returns the
 * number of messages handled. */
static int message_loop(gocc_chan_t *msgs, bool reuse_timer, int *idles) {
    int handled = 0, m;
    int64_t fired;
    gocc_timer_t *t = reuse_timer ? new_timer(IDLE) : NULL;
    if (reuse_timer && !t) return -1;
    for (;;) {
        if (reuse_timer)
            gocc_timer_reset(t, IDLE);   /* RIGHT: one timer, rearmed */
        else if (!(t = new_timer(IDLE))) /* WRONG: time.After(IDLE) */
            return -1;
        gocc_case_t cases[] = {
            {.ch = msgs, .dir = GOCC_RECV, .elem = &m},
            {.ch = gocc_timer_chan(t), .dir = GOCC_RECV, .elem = &fired},
        };
        int i = gocc_select(cases, 2, NULL);
        bool closed = i == 0 && !cases[0].ok;
        if (!reuse_timer) {
            drop_timer(t);
            t = NULL;
        }
        if (i == 1) (*idles)++; /* idle() */
        if (i < 0 || closed) break;
        if (i == 0) handled++; /* handle(m) */
    }
    if (t) drop_timer(t);
    return handled;
}

static void hot_path(bool reuse_timer) {
    gocc_chan_t *msgs = gocc_chan_new(sizeof(int), MESSAGES);
    timers_made = timers_dropped_armed = 0;
    int handled = -1, idles = 0;
    int64_t took = 0;
    if (msgs) {
        for (int i = 0; i < MESSAGES; i++) gocc_chan_try_send(msgs, &i);
        gocc_chan_close(msgs); /* the sender (us) closes */
        int64_t start = gocc_now();
        handled = message_loop(msgs, reuse_timer, &idles);
        took = gocc_now() - start;
    }
    gocc_chan_release(msgs);

    printf("C07 hot loop, %s: %d messages -> %d timer%s made, %d thrown away "
           "still armed (%.2f us per message)\n",
           reuse_timer ? "one timer reset per message" : "time.After per message", handled,
           timers_made, timers_made == 1 ? "" : "s", timers_dropped_armed,
           handled > 0 ? took / 1e3 / handled : 0.0);
    check(handled == MESSAGES, "every message handled");
    if (reuse_timer)
        check(timers_made == 1, "the reset version made one timer");
    else
        check(timers_made == MESSAGES + 1 + idles, "time.After made one timer per loop iteration");
}

int main(void) {
    periodic(false);
    periodic(true);
    hot_path(false);
    hot_path(true);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C07 ticker vs time.After: FAILED\n");
    return example_failures ? 1 : 0;
}
