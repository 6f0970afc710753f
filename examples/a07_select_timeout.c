/*
 * a07_select_timeout.c - port of A07 (patterns article, "Select for
 * Timeouts and Multiplexing").
 *
 *     select {
 *     case res := <-resultCh:          fmt.Println("result:", res)
 *     case <-time.After(2 * time.Second): fmt.Println("timeout")
 *     }
 *
 * The same select, run twice: once with a worker that answers in 10 ms
 * (the result wins), once with a worker that would take 10 s against a
 * 50 ms time.After (the timeout wins). Then the multiplexing half: one
 * select loop reads two producers at once, as they deliver, and disables a
 * producer's case when its channel is closed (a nil channel in Go, a NULL
 * ch here), with one overall deadline timer.
 *
 * Go to C: select is gocc_select over an array of cases; time.After(d) is
 * gocc_timer_new(d) and its channel, freed with gocc_timer_free after the
 * select (C has no garbage collector to do it). resultCh has capacity 1 so
 * a worker that answers after we gave up never blocks; and the slow worker
 * gets a context that main cancels after the timeout, so it does not run
 * on for 10 s (checked with gocc_tasks_live()). No generics in the Go;
 * the channels carry int.
 *
 * Checks: the fast case yields "result: 42" and not the timeout; the slow
 * case yields the timeout within a generous 2 s and no result; the
 * multiplexer gets every value of both producers (5 + 3, each producer's in
 * order) and sees both closed before its 2 s deadline; every task has
 * returned (gocc_tasks_live() == 0). Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check("A07", ok, what)

/* ---- part 1: a result or a timeout -------------------------------------- */

typedef struct worker_arg {
    gocc_chan_t *result_ch; /* the task's own reference; capacity 1 */
    int64_t takes_ns;
    int value;
} worker_arg_t;

/* The worker owns its argument: it may outlive the select that gave up. */
static int worker(gocc_ctx_t *ctx, void *arg) {
    worker_arg_t *a = arg;
    int err = gocc_sleep(a->takes_ns, ctx); /* the work; stops with ctx */
    if (err == 0) err = gocc_chan_send(a->result_ch, &a->value, ctx);
    gocc_chan_release(a->result_ch);
    free(a);
    return err;
}

/* Start a worker that answers 42 after `takes_ns` on result_ch. */
static bool start_worker(gocc_ctx_t *ctx, gocc_chan_t *result_ch, int64_t takes_ns) {
    worker_arg_t *a = malloc(sizeof *a);
    if (!a) return false;
    *a = (worker_arg_t){gocc_chan_retain(result_ch), takes_ns, 42};
    if (gocc_go(worker, ctx, a) != 0) {
        gocc_chan_release(result_ch);
        free(a);
        return false;
    }
    return true;
}

/* The snippet's select: the result or time.After(timeout_ns). Returns the
 * case index (0: result in *res, 1: timeout) or a negative error. */
static int select_result_or_after(gocc_chan_t *result_ch, int64_t timeout_ns, int *res) {
    gocc_timer_t *after = gocc_timer_new(timeout_ns); /* time.After */
    if (!after) return GOCC_ENOMEM;
    int64_t fired;
    gocc_case_t cases[] = {
        {.ch = result_ch, .dir = GOCC_RECV, .elem = res},
        {.ch = gocc_timer_chan(after), .dir = GOCC_RECV, .elem = &fired},
    };
    int i = gocc_select(cases, 2, NULL);
    gocc_timer_free(after); /* what Go's garbage collector would do */
    return i;
}

/* A worker taking takes_ns against a timeout_ns select. Returns the case
 * that won (0 result, 1 timeout) or a negative error. */
static int result_or_timeout(int64_t takes_ns, int64_t timeout_ns, int *res, int64_t *took_ns) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *result_ch = gocc_chan_new(sizeof(int), 1);
    int which = GOCC_ENOMEM;
    int64_t start = gocc_now();
    if (ctx && result_ch && start_worker(ctx, result_ch, takes_ns))
        which = select_result_or_after(result_ch, timeout_ns, res);
    *took_ns = gocc_now() - start;
    gocc_ctx_cancel(ctx); /* the slow worker stops here */
    gocc_ctx_release(ctx);
    gocc_chan_release(result_ch);
    return which;
}

/* ---- part 2: multiplexing ----------------------------------------------- */

typedef struct producer_arg {
    gocc_chan_t *out; /* the task's own reference */
    int first, count;
    int64_t every_ns;
    gocc_waitgroup_t *wg;
} producer_arg_t;

static int producer(gocc_ctx_t *ctx, void *arg) {
    producer_arg_t *a = arg;
    for (int i = 0; i < a->count; i++) {
        int v = a->first + i;
        if (gocc_sleep(a->every_ns, ctx) != 0 || gocc_chan_send(a->out, &v, ctx) != 0) break;
    }
    gocc_chan_close(a->out); /* the sender closes */
    gocc_chan_release(a->out);
    gocc_waitgroup_done(a->wg); /* the last touch of *a */
    return 0;
}

/* The loop: read whichever producer is ready until both are closed or the
 * deadline fires. */
static void read_both(gocc_chan_t *fast, gocc_chan_t *slow, gocc_timer_t *deadline) {
    int v = 0, nfast = 0, nslow = 0;
    bool in_order = true, timed_out = false;
    int64_t fired;
    gocc_case_t cases[] = {
        {.ch = fast, .dir = GOCC_RECV, .elem = &v},
        {.ch = slow, .dir = GOCC_RECV, .elem = &v},
        {.ch = gocc_timer_chan(deadline), .dir = GOCC_RECV, .elem = &fired},
    };
    char order[64] = "";
    int len = 0;
    while (cases[0].ch || cases[1].ch) {
        int i = gocc_select(cases, 3, NULL);
        if (i == 2) {
            timed_out = true;
            break;
        }
        if (i < 0) break;
        if (!cases[i].ok) { /* closed: a nil channel from now on */
            cases[i].ch = NULL;
            continue;
        }
        if (i == 0) in_order &= v == 1 + nfast++;
        if (i == 1) in_order &= v == 101 + nslow++;
        if (len < (int)sizeof order - 8)
            len += snprintf(order + len, sizeof order - (size_t)len, " %d", v);
    }
    printf("A07 multiplexing: one select over two producers ->%s "
           "(%d fast, %d slow, then both closed%s)\n",
           order, nfast, nslow, timed_out ? "; DEADLINE HIT" : "");
    check(nfast == 5 && nslow == 3, "every value of both producers arrived");
    check(in_order, "each producer's values in order");
    check(!timed_out, "both producers finished before the 2 s deadline");
}

static void multiplex(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *fast = gocc_chan_new(sizeof(int), 0);
    gocc_chan_t *slow = gocc_chan_new(sizeof(int), 0);
    gocc_timer_t *deadline = gocc_timer_new(2 * GOCC_SECOND);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    producer_arg_t pa[2] = {
        {fast, 1, 5, 3 * GOCC_MILLISECOND, &wg},
        {slow, 101, 3, 5 * GOCC_MILLISECOND, &wg},
    };
    if (ctx && fast && slow && deadline) {
        for (int p = 0; p < 2; p++) {
            gocc_chan_retain(pa[p].out);
            gocc_waitgroup_add(&wg, 1);
            if (gocc_go(producer, ctx, &pa[p]) != 0) {
                check(false, "started a producer");
                gocc_chan_close(pa[p].out);
                gocc_chan_release(pa[p].out);
                gocc_waitgroup_done(&wg);
            }
        }
        read_both(fast, slow, deadline);
    } else {
        check(false, "set up the multiplexer");
    }
    gocc_ctx_cancel(ctx);           /* stops producers if the deadline cut the loop */
    gocc_waitgroup_wait(&wg, NULL); /* pa and wg live on this stack */
    gocc_timer_free(deadline);
    gocc_ctx_release(ctx);
    gocc_chan_release(fast);
    gocc_chan_release(slow);
}

int main(void) {
    int res = 0;
    int64_t took = 0;

    int which = result_or_timeout(10 * GOCC_MILLISECOND, 2 * GOCC_SECOND, &res, &took);
    if (which == 0)
        printf("A07 select timeout: 10 ms worker vs time.After(2 s) -> result: %d\n", res);
    else
        printf("A07 select timeout: 10 ms worker vs time.After(2 s) -> %s\n",
               which == 1 ? "timeout" : "error");
    check(which == 0 && res == 42, "the fast worker's result won");

    res = 0;
    which = result_or_timeout(10 * GOCC_SECOND, 50 * GOCC_MILLISECOND, &res, &took);
    if (which == 1)
        printf("A07 select timeout: 10 s worker vs time.After(50 ms) -> timeout "
               "(after %.0f ms)\n",
               took / 1e6);
    else
        printf("A07 select timeout: 10 s worker vs time.After(50 ms) -> %s\n",
               which == 0 ? "result" : "error");
    check(which == 1, "the timeout won against the slow worker");
    check(which != 1 || took < 2 * GOCC_SECOND, "the 50 ms timeout fired within 2 s");

    multiplex();

    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "every task returned, the slow worker too (gocc_tasks_live() == 0)");
    if (example_failures) printf("A07 select timeout: FAILED\n");
    return example_failures ? 1 : 0;
}
