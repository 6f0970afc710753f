/*
 * l08_timers.c - L08 (Deep Dive, Lesson 8): timers and timeouts, the leak
 * trap. An event loop with an idle timeout:
 *     select { case e, ok := <-events: ...   case <-timeout: idle
 *              case <-ctx.Done(): return }
 *
 * l08_after_in_loop (the trap): `case <-time.After(d)` makes a new timer
 *   on every pass. In Go it lingers in the timer heap until it fires (or,
 *   since 1.23, until the GC finds it); in C the allocation is explicit:
 *   every pass is a gocc_timer_new (malloc + an entry in the timer thread's
 *   heap) and a gocc_timer_free, which C makes you remember, or it leaks
 *   for good.
 * l08_timer_reset (the fix): t := time.NewTimer(d); defer t.Stop(); and
 *   t.Reset(d) at the top of every pass. One timer for the whole loop.
 *   Go 1.23 semantics (which libgocc has) make Reset without a drain safe: no
 *   stale fire can be received after it.
 * Both loops handle the same 500 events (with one 100 ms pause in the
 * middle, where the 20 ms idle timeout fires) and return when the events
 * channel is closed; l08_ctx_done shows the third case: the loop returns on
 * cancel.
 *
 * Checks: both loops saw every event in order and returned at the close;
 * the idle timeout fired at least once in the 100 ms pause (five times its
 * 20 ms: a timer that fired seconds late would not); timers made: one per
 * pass vs one; the ctx case's error; and gocc_tasks_live() == 0. How many
 * idle fires and the time per pass are printed, not checked (timing).
 * Exit 1 if wrong.
 *
 * Go -> C: a timer's C (<-chan time.Time) is gocc_timer_chan(), a channel of
 * int64_t fire times; time.After has no self-freeing C twin, so the broken
 * loop spells it gocc_timer_new + gocc_timer_free.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L08", ok, what)

#define EVENTS 500
#define PAUSE_AT 250 /* the producer pauses before this event */
#define PAUSE (100 * GOCC_MILLISECOND)
#define IDLE (20 * GOCC_MILLISECOND) /* the loops' idle timeout */

enum { EVENTS_CLOSED = 1 }; /* a loop's result: this, or a context error */

typedef struct loop_stats {
    int64_t idle; /* the idle timeout */
    int passes;   /* times through the select */
    int events;   /* events handled */
    int idles;    /* idle timeouts seen */
    bool in_order;
    int timers_made;
} loop_stats_t;

enum { CASE_EVENT, CASE_TIMEOUT, CASE_DONE };

/* The loop's select; returns the case that proceeded (or an error). */
static int wait_event(gocc_chan_t *events, int *e, bool *ok, gocc_chan_t *timer_ch,
                      gocc_ctx_t *ctx) {
    gocc_case_t cases[3] = {
        [CASE_EVENT] = {.ch = events, .dir = GOCC_RECV, .elem = e},
        [CASE_TIMEOUT] = {.ch = timer_ch, .dir = GOCC_RECV},        /* fire time, discarded */
        [CASE_DONE] = {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV}, /* NULL: never done */
    };
    int r = gocc_select(cases, 3, NULL);
    *ok = r == CASE_EVENT && cases[CASE_EVENT].ok;
    return r;
}

/* One pass's outcome: 0 = keep looping, else the loop's result. */
static int after_pass(loop_stats_t *st, int r, bool ok, int e, gocc_ctx_t *ctx) {
    st->passes++;
    switch (r) {
    case CASE_EVENT:
        if (!ok) return EVENTS_CLOSED;
        if (e != st->events) st->in_order = false;
        st->events++;
        return 0;
    case CASE_TIMEOUT:
        st->idles++; /* idle: a heartbeat, a flush, ... */
        return 0;
    case CASE_DONE: return gocc_ctx_err(ctx);
    default: return r;
    }
}

/* ---- L08: time.After in a loop (the trap) ------------------------------ */

/* BROKEN: for { select { case e := <-events: case <-time.After(d): ... } } */
static int l08_after_in_loop(gocc_chan_t *events, gocc_ctx_t *ctx, loop_stats_t *st) {
    for (;;) {
        gocc_timer_t *after = gocc_timer_new(st->idle); /* time.After(d): a new timer */
        if (!after) return GOCC_ENOMEM;
        st->timers_made++;
        int e = 0;
        bool ok;
        int r = wait_event(events, &e, &ok, gocc_timer_chan(after), ctx);
        gocc_timer_free(after); /* Go leaves this to the GC; C must not forget */
        if ((r = after_pass(st, r, ok, e, ctx)) != 0) return r;
    }
}

/* ---- L08: one timer, Reset per pass (the fix) -------------------------- */

/* FIXED: one timer; Reset(d) at the top of each pass; Stop when done. */
static int l08_timer_reset(gocc_chan_t *events, gocc_ctx_t *ctx, loop_stats_t *st) {
    gocc_timer_t *t = gocc_timer_new(st->idle);
    if (!t) return GOCC_ENOMEM;
    st->timers_made++;
    int r;
    do {
        gocc_timer_reset(t, st->idle);
        int e = 0;
        bool ok;
        r = wait_event(events, &e, &ok, gocc_timer_chan(t), ctx);
        r = after_pass(st, r, ok, e, ctx);
    } while (r == 0);
    gocc_timer_free(t); /* defer t.Stop() (and, in C, the free) */
    return r;
}

typedef struct producer_arg {
    gocc_chan_t *events; /* the task's own reference */
} producer_arg_t;

static int produce(gocc_ctx_t *ctx, void *arg) {
    producer_arg_t *a = arg;
    for (int e = 0; e < EVENTS; e++) {
        if (e == PAUSE_AT) gocc_sleep(PAUSE, ctx); /* a quiet spell */
        if (gocc_chan_send(a->events, &e, ctx) != 0) break;
    }
    gocc_chan_close(a->events);
    gocc_chan_release(a->events);
    return 0;
}

/* Feed EVENTS events to `loop` until the close; report and check. */
static void run_loop(const char *what, int (*loop)(gocc_chan_t *, gocc_ctx_t *, loop_stats_t *),
                     bool timer_per_pass) {
    gocc_chan_t *events = gocc_chan_new(sizeof(int), 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    loop_stats_t st = {.idle = IDLE, .in_order = true};
    producer_arg_t p = {gocc_chan_retain(events)};
    if (!events || !ctx || gocc_go(produce, ctx, &p) != 0) {
        check(false, "started the producer");
        gocc_chan_release(p.events);
    } else {
        int64_t t0 = gocc_now();
        int r = loop(events, ctx, &st);
        double us = (double)(gocc_now() - t0 - PAUSE) / 1e3 / st.passes; /* without the pause */
        check(r == EVENTS_CLOSED, "the loop returned when events was closed");
        check(st.events == EVENTS && st.in_order, "the loop handled every event in order");
        check(st.idles >= 1, "the idle timeout fired in the 100 ms pause");
        check(st.timers_made == (timer_per_pass ? st.passes : 1), "timers made");
        printf("L08 %s: %d events, %d idle timeout%s, %d passes: %d timer%s made, %.1f us a "
               "pass\n",
               what, st.events, st.idles, st.idles == 1 ? "" : "s", st.passes, st.timers_made,
               st.timers_made == 1 ? "" : "s", us > 0 ? us : 0);
    }
    gocc_ctx_cancel(ctx);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the producer returned");
    gocc_ctx_release(ctx);
    gocc_chan_release(events);
}

/* ---- L08: the ctx.Done() case --------------------------------------------- */

static int cancel_later(gocc_ctx_t *ctx, void *arg) {
    gocc_ctx_t *target = arg;
    gocc_sleep(5 * GOCC_MILLISECOND, ctx);
    gocc_ctx_cancel(target);
    return 0;
}

/* No events, a 10 s idle timeout, a cancel after 5 ms. */
static void l08_ctx_done(void) {
    gocc_chan_t *events = gocc_chan_new(sizeof(int), 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    loop_stats_t st = {.idle = 10 * GOCC_SECOND, .in_order = true};
    if (!events || !ctx || gocc_go(cancel_later, NULL, ctx) != 0) {
        check(false, "started the canceller");
    } else {
        int64_t t0 = gocc_now();
        int r = l08_timer_reset(events, ctx, &st);
        double ms = (double)(gocc_now() - t0) / 1e6;
        check(r == GOCC_ECANCELED && st.events == 0, "the loop returned on ctx.Done()");
        printf("L08 ctx.Done(): the loop with its one timer returned \"%s\" after %.1f ms\n",
               gocc_strerror(r), ms);
    }
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the canceller returned");
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(events);
}

int main(void) {
    run_loop("time.After in a loop", l08_after_in_loop, true);
    run_loop("one timer, Reset per pass", l08_timer_reset, false);
    l08_ctx_done();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L08 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
