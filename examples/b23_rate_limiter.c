/*
 * b23_rate_limiter.c - B23 exercise 1 ("Exercises": "Rate
 * Limiter: Implement a token bucket rate limiter using channels and
 * goroutines"), on libgocc's token bucket, gocc_ratelimit (Go's
 * golang.org/x/time/rate). The other B23 exercises are in b23_exercises.c.
 *
 * A token bucket holds at most `burst` tokens and gains `rate` a second; a
 * request spends one. Allow is the form that never blocks (no token: the
 * request is refused - load shedding); Wait blocks until its token is due
 * or its context ends.
 *
 * b23_allow: a bucket of 50/s, burst 5; a client offers a request every
 *   millisecond for 300 ms. Printed: offered, allowed and denied (they add
 *   up) and the rate achieved.
 * b23_wait: a bucket of 100/s, burst 1, shared by 4 worker tasks that each
 *   Wait(ctx) and then handle a request, until a 300 ms deadline ends ctx.
 *   Printed: how many were served, at what rate, and how each worker
 *   stopped (context deadline exceeded).
 * b23_deadline: Wait with a deadline before the next token is due returns
 *   "context deadline exceeded" at once (the context is not done yet) and
 *   takes nothing, as x/time/rate's Wait does.
 *
 * Go -> C: with channels and goroutines the exercise is usually solved as
 * bucket := make(chan struct{}, burst), filled up front, plus a refill
 * goroutine on a ticker doing select { case bucket <- struct{}{}: default: };
 * Allow is select { case <-bucket: return true; default: return false } and
 * Wait is select { case <-bucket: case <-ctx.Done(): }. gocc_ratelimit is
 * that limiter without the goroutine or the ticker: the level is a number
 * brought up to date from the clock on each call, waiters queue in arrival
 * order behind one timer, and a cancelled Wait gives its tokens back.
 * rate.NewLimiter(50, 5) is gocc_ratelimit_new(50, 5); lim.Allow() is
 * gocc_ratelimit_allow(rl, 1); lim.Wait(ctx) is gocc_ratelimit_wait(rl, 1,
 * ctx); lim.Tokens() is gocc_ratelimit_tokens(rl).
 *
 * Checks (bounds that cannot fail on a slow machine: a bucket never gives
 * more than burst + rate * elapsed): allow - allowed + denied == offered,
 * burst <= allowed <= 5 + 50 * elapsed; wait - 1 <= served <= 1 + 100 *
 * elapsed, every worker stopped with GOCC_EDEADLINE; deadline - the error,
 * the context still not done, the level unchanged; gocc_tasks_live() == 0
 * at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B23", ok, what)

#define WINDOW (300 * GOCC_MILLISECOND)
#define WORKERS 4

static double seconds(int64_t ns) { return (double)ns / (double)GOCC_SECOND; }

/* ---- Allow: shed what the bucket cannot take -------------------------- */

static void b23_allow(void) {
    const double rate = 50;
    const int64_t burst = 5;
    int64_t t0 = gocc_now(); /* before the bucket exists: it starts full */
    gocc_ratelimit_t *rl = gocc_ratelimit_new(rate, burst);
    check(rl != NULL, "made the limiter");
    if (!rl) return;
    int offered = 0, allowed = 0, denied = 0;
    while (offered < burst || gocc_now() - t0 < WINDOW) { /* at least the burst is offered */
        offered++;
        if (gocc_ratelimit_allow(rl, 1)) /* lim.Allow() */
            allowed++;
        else
            denied++;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    int64_t elapsed = gocc_now() - t0;
    double most = (double)burst + rate * seconds(elapsed);
    check(allowed + denied == offered, "allowed + denied == offered");
    check(allowed >= burst, "the burst was allowed at once");
    check((double)allowed <= most, "never more than burst + rate * elapsed");
    printf("B23 allow: 50/s, burst 5, %lld ms: offered %d, allowed %d, denied %d "
           "(at most %.1f allowed); achieved %.0f/s\n",
           (long long)(elapsed / GOCC_MILLISECOND), offered, allowed, denied, most,
           (double)allowed / seconds(elapsed));
    gocc_ratelimit_free(rl);
}

/* ---- Wait: workers paced by one bucket until their deadline ----------- */

typedef struct pace {
    gocc_ratelimit_t *rl;
    gocc_waitgroup_t wg;
    atomic_int served;
    atomic_int stopped_by_deadline;
} pace_t;

static int paced_worker(gocc_ctx_t *ctx, void *arg) {
    pace_t *p = arg;
    int rc;
    while ((rc = gocc_ratelimit_wait(p->rl, 1, ctx)) == 0) /* lim.Wait(ctx) */
        atomic_fetch_add(&p->served, 1);                   /* handle one request */
    if (rc == GOCC_EDEADLINE) atomic_fetch_add(&p->stopped_by_deadline, 1);
    gocc_waitgroup_done(&p->wg);
    return 0;
}

static void b23_wait(void) {
    const double rate = 100;
    pace_t p = {.wg = GOCC_WAITGROUP_INIT};
    int64_t t0 = gocc_now();
    p.rl = gocc_ratelimit_new(rate, 1);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, WINDOW);
    check(p.rl && ctx, "made the limiter and the context");
    int started = 0;
    for (int i = 0; p.rl && ctx && i < WORKERS; i++) {
        gocc_waitgroup_add(&p.wg, 1);
        if (gocc_go(paced_worker, ctx, &p) == 0)
            started++;
        else
            gocc_waitgroup_done(&p.wg);
    }
    gocc_waitgroup_wait(&p.wg, NULL);
    int64_t elapsed = gocc_now() - t0;
    int served = atomic_load(&p.served);
    double most = 1 + rate * seconds(elapsed);
    check(started == WORKERS, "started the workers");
    check(served >= 1 && (double)served <= most, "1 <= served <= burst + rate * elapsed");
    check(atomic_load(&p.stopped_by_deadline) == started,
          "every worker stopped with 'context deadline exceeded'");
    printf("B23 wait: %d workers sharing 100/s, burst 1, until a %lld ms deadline: %d served "
           "in %lld ms (%.0f/s, at most %.1f); %d stopped with '%s'\n",
           started, (long long)(WINDOW / GOCC_MILLISECOND), served,
           (long long)(elapsed / GOCC_MILLISECOND), (double)served / seconds(elapsed), most,
           atomic_load(&p.stopped_by_deadline), gocc_strerror(GOCC_EDEADLINE));
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ratelimit_free(p.rl);
}

/* ---- Wait with a deadline that comes first ---------------------------- */

static void b23_deadline(void) {
    gocc_ratelimit_t *rl = gocc_ratelimit_new(0.1, 1); /* a token per 10 s */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 2 * GOCC_SECOND);
    check(rl && ctx, "made the limiter and the context");
    if (!rl || !ctx) {
        gocc_ratelimit_free(rl);
        gocc_ctx_release(ctx);
        return;
    }
    bool first = gocc_ratelimit_allow(rl, 1); /* the bucket is empty now */
    double before = gocc_ratelimit_tokens(rl);
    int64_t t0 = gocc_now();
    int rc = gocc_ratelimit_wait(rl, 1, ctx); /* due in ~10 s, deadline in 2 s */
    int64_t took = gocc_now() - t0;
    bool ctx_done = gocc_ctx_err(ctx) != 0;
    double after = gocc_ratelimit_tokens(rl);
    check(first, "the first request was allowed");
    check(rc == GOCC_EDEADLINE, "Wait returned 'context deadline exceeded'");
    check(!ctx_done, "at once: the context was not done yet");
    check(after - before < 0.05 && before - after < 0.05, "no token was taken");
    printf("B23 deadline: next token due in ~10 s, deadline in 2 s: Wait -> '%s' after %lld ms; "
           "tokens %.3f before, %.3f after\n",
           gocc_strerror(rc), (long long)(took / GOCC_MILLISECOND), before, after);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ratelimit_free(rl);
}

int main(void) {
    b23_allow();
    b23_wait();
    b23_deadline();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B23 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
