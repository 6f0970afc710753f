/*
 * b23_rate_limiter.c - B23 exercise 1 (chapter 9, "Concurrency Patterns
 * Updated", "Exercises": "Rate Limiter: Implement a token bucket rate
 * limiter using channels and goroutines"). The other B23 exercises are in
 * b23_exercises.c.
 *
 * A token bucket holds at most `burst` tokens and gains `rate` a second; a
 * request spends one. Allow is the form that never blocks (no token: the
 * request is refused - load shedding); Wait blocks until its token is due
 * or its context ends.
 *
 * First the exercise as asked, built from channels and a task: the bucket
 * is a channel of capacity `burst`, filled up front, and a refill task on a
 * ticker puts one token in per tick unless the bucket is full:
 *
 *   tokens := make(chan struct{}, burst)         // filled with burst tokens
 *   go func() { t := time.NewTicker(time.Second / rate); defer t.Stop()
 *       for { select {
 *       case <-t.C: select { case tokens <- struct{}{}: default: } // full: the tick is lost
 *       case <-ctx.Done(): return } } }()
 *   Allow: select { case <-tokens: return true; default: return false }
 *   Wait:  select { case <-tokens: return nil; case <-ctx.Done(): return ctx.Err() }
 *
 * Then, in practice, the same two runs on libgocc's token bucket,
 * gocc_ratelimit (Go's golang.org/x/time/rate): no task and no ticker, the
 * level is a number brought up to date from the clock on each call,
 * waiters queue in arrival order behind one timer, and a cancelled Wait
 * gives its tokens back. rate.NewLimiter(r, b) is gocc_ratelimit_new(r, b);
 * lim.Allow() is gocc_ratelimit_allow(rl, 1); lim.Wait(ctx) is
 * gocc_ratelimit_wait(rl, 1, ctx); lim.Tokens() is gocc_ratelimit_tokens.
 *
 * Each limiter runs the same two checked runs:
 * allow: a bucket of 100/s, burst 5; a client offers a request every
 *   millisecond for 500 ms, ten times the rate. Printed: offered, allowed,
 *   denied and the rate achieved.
 * wait: a bucket of 100/s, burst 1, shared by 4 worker tasks that each
 *   Wait(ctx) and then handle a request, until a 300 ms deadline ends ctx.
 *   Printed: how many were served, at what rate, and how each worker
 *   stopped (context deadline exceeded).
 * And for gocc_ratelimit, x/time/rate's Wait with a deadline: when the
 *   deadline comes before the next token is due, Wait returns "context
 *   deadline exceeded" at once (the context is not done yet) and takes
 *   nothing.
 *
 * Checks, the lesson's effect, with bounds that hold on a slow machine:
 *   - at its rate, not above: a bucket never gives more than
 *     burst + rate * elapsed (a hard bound, elapsed counted from before
 *     the bucket was made), and the k-th token a waiter got came no earlier
 *     than (k - burst + 1) / rate after the start (Wait is paced, token by
 *     token);
 *   - at its rate, not below: at least burst + rate * t / 2, where t is
 *     the time someone was there to take every token (the client loop; for
 *     wait, from the last worker's first Wait to the deadline). Half the
 *     rate leaves room for a loaded machine; a bucket that does not refill
 *     gives only its burst. The channel bucket's constructor returns once
 *     its refill task ticks, as the tokens can only come from then on;
 *   - load is shed: denied > 0 (the client offers ten times the rate);
 *   - every worker stopped with GOCC_EDEADLINE; the deadline case as
 *     above; gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B23", ok, what)

#define RATE 100.0 /* tokens a second, both runs */
#define ALLOW_BURST 5
#define ALLOW_WINDOW (500 * GOCC_MILLISECOND)
#define WAIT_WINDOW (300 * GOCC_MILLISECOND)
#define WORKERS 4
#define MAX_SERVED 1000 /* grant times kept; far above 1 + RATE * a slow run */

static double seconds(int64_t ns) { return (double)ns / (double)GOCC_SECOND; }

static int cmp_time(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* What both runs need of a limiter. */
typedef struct limiter {
    const char *name;
    void *(*make)(double rate, int64_t burst); /* NULL when it cannot */
    bool (*allow)(void *lim);
    int (*wait)(void *lim, gocc_ctx_t *ctx);
    void (*destroy)(void *lim);
} limiter_t;

/* ---- the exercise: a bucket built from a channel, a ticker and a task -- */

typedef struct chan_bucket {
    gocc_chan_t *tokens; /* capacity burst, element size 0 */
    int64_t period;      /* time.Second / rate */
    gocc_ctx_t *stop;    /* cancelled to stop the refill task */
    gocc_waitgroup_t refiller;
    gocc_chan_t *ticking; /* closed by the refill task once it has its ticker */
    bool ticker_ok;       /* written before that close */
} chan_bucket_t;

static const char token; /* struct{}{}: nothing is copied from it */

static int refill(gocc_ctx_t *ctx, void *arg) {
    chan_bucket_t *b = arg;
    gocc_ticker_t *t = gocc_ticker_new(b->period); /* time.NewTicker(time.Second / rate) */
    b->ticker_ok = t != NULL;
    gocc_chan_close(b->ticking); /* the constructor may return */
    if (t != NULL) {
        int64_t tick;
        while (gocc_chan_recv(gocc_ticker_chan(t), &tick, ctx) == 0) /* case <-t.C */
            (void)gocc_chan_try_send(b->tokens, &token); /* full: this tick's token is lost */
        gocc_ticker_free(t); /* case <-ctx.Done(): return; defer t.Stop() */
    }
    gocc_waitgroup_done(&b->refiller);
    return 0;
}

static void chan_bucket_destroy(void *lim) {
    chan_bucket_t *b = lim;
    if (b == NULL) return;
    gocc_ctx_cancel(b->stop);
    gocc_waitgroup_wait(&b->refiller, NULL); /* the task is done with b */
    gocc_ctx_release(b->stop);
    gocc_chan_release(b->tokens);
    gocc_chan_release(b->ticking);
    free(b);
}

static void *chan_bucket_new(double rate, int64_t burst) {
    chan_bucket_t *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    b->period = (int64_t)((double)GOCC_SECOND / rate);
    b->refiller = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    b->tokens = gocc_chan_new(0, (size_t)burst);
    b->ticking = gocc_chan_new(0, 0);
    b->stop = gocc_ctx_with_cancel(NULL);
    if (b->tokens == NULL || b->ticking == NULL || b->stop == NULL) {
        chan_bucket_destroy(b);
        return NULL;
    }
    for (int64_t i = 0; i < burst; i++) gocc_chan_try_send(b->tokens, &token); /* starts full */
    gocc_waitgroup_add(&b->refiller, 1);
    if (gocc_go(refill, b->stop, b) != 0) {
        gocc_waitgroup_done(&b->refiller);
        chan_bucket_destroy(b);
        return NULL;
    }
    gocc_chan_recv(b->ticking, NULL, NULL); /* until the refill task has its ticker */
    if (!b->ticker_ok) {
        chan_bucket_destroy(b);
        return NULL;
    }
    return b;
}

static bool chan_bucket_allow(void *lim) {
    chan_bucket_t *b = lim;
    return gocc_chan_try_recv(b->tokens, NULL) == 0; /* select with default */
}

static int chan_bucket_wait(void *lim, gocc_ctx_t *ctx) {
    chan_bucket_t *b = lim;
    return gocc_chan_recv(b->tokens, NULL, ctx); /* a token, or ctx.Err() */
}

static const limiter_t chan_bucket = {"channel + ticker bucket", chan_bucket_new, chan_bucket_allow,
                                      chan_bucket_wait, chan_bucket_destroy};

/* ---- in practice: gocc_ratelimit ---------------------------------------- */

static void *ratelimit_new(double rate, int64_t burst) { return gocc_ratelimit_new(rate, burst); }
static bool ratelimit_allow(void *lim) { return gocc_ratelimit_allow(lim, 1); }
static int ratelimit_wait(void *lim, gocc_ctx_t *ctx) { return gocc_ratelimit_wait(lim, 1, ctx); }
static void ratelimit_destroy(void *lim) { gocc_ratelimit_free(lim); }

static const limiter_t ratelimit = {"gocc_ratelimit", ratelimit_new, ratelimit_allow,
                                    ratelimit_wait, ratelimit_destroy};

/* ---- Allow: shed what the bucket cannot take -------------------------- */

static void b23_allow(const limiter_t *l) {
    int64_t t0 = gocc_now(); /* before the bucket exists: it starts full */
    void *lim = l->make(RATE, ALLOW_BURST);
    int64_t t1 = gocc_now(); /* refilling from here on */
    check(lim != NULL, "made the limiter");
    if (!lim) return;
    int offered = 0, allowed = 0, denied = 0;
    while (offered < ALLOW_BURST || gocc_now() - t0 < ALLOW_WINDOW) {
        offered++;
        if (l->allow(lim)) /* lim.Allow() */
            allowed++;
        else
            denied++; /* shed */
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    int64_t end = gocc_now(), elapsed = end - t0;
    double most = ALLOW_BURST + RATE * seconds(elapsed);
    double least = ALLOW_BURST + RATE * seconds(end - t1) / 2;
    check((double)allowed <= most, "allow: never more than burst + rate * elapsed");
    check((double)allowed >= least, "allow: at least burst + half the rate (it refills)");
    check(denied > 0, "allow: requests above the rate were shed");
    printf("B23 allow (%s): 100/s, burst 5, %lld ms: offered %d, allowed %d (between %.1f and "
           "%.1f), denied %d; achieved %.0f/s\n",
           l->name, (long long)(elapsed / GOCC_MILLISECOND), offered, allowed, least, most, denied,
           (double)allowed / seconds(elapsed));
    l->destroy(lim);
}

/* ---- Wait: workers paced by one bucket until their deadline ----------- */

typedef struct pace {
    const limiter_t *l;
    void *lim;
    gocc_waitgroup_t wg;
    atomic_int served;
    atomic_int stopped_by_deadline;
    atomic_llong last_first_wait;   /* when the last worker first called Wait */
    int64_t granted_at[MAX_SERVED]; /* when each token was had, by serve number */
} pace_t;

static int paced_worker(gocc_ctx_t *ctx, void *arg) {
    pace_t *p = arg;
    int rc;
    long long now = gocc_now(), last = atomic_load(&p->last_first_wait);
    while (now > last && !atomic_compare_exchange_weak(&p->last_first_wait, &last, now)) {
    }
    while ((rc = p->l->wait(p->lim, ctx)) == 0) { /* lim.Wait(ctx) */
        int64_t now = gocc_now();
        int k = atomic_fetch_add(&p->served, 1); /* handle one request */
        if (k < MAX_SERVED) p->granted_at[k] = now;
    }
    if (rc == GOCC_EDEADLINE) atomic_fetch_add(&p->stopped_by_deadline, 1);
    gocc_waitgroup_done(&p->wg);
    return 0;
}

static void b23_wait(const limiter_t *l) {
    static pace_t p;
    p = (pace_t){.l = l, .wg = GOCC_WAITGROUP_INIT};
    int64_t t0 = gocc_now();
    p.lim = l->make(RATE, 1);
    int64_t deadline = gocc_now() + WAIT_WINDOW;
    gocc_ctx_t *ctx = gocc_ctx_with_deadline(NULL, deadline);
    check(p.lim && ctx, "made the limiter and the context");
    int started = 0;
    for (int i = 0; p.lim && ctx && i < WORKERS; i++) {
        gocc_waitgroup_add(&p.wg, 1);
        if (gocc_go(paced_worker, ctx, &p) == 0)
            started++;
        else
            gocc_waitgroup_done(&p.wg);
    }
    gocc_waitgroup_wait(&p.wg, NULL);
    int64_t elapsed = gocc_now() - t0;
    int served = atomic_load(&p.served);
    double most = 1 + RATE * seconds(elapsed);
    int64_t all_waiting = deadline - atomic_load(&p.last_first_wait); /* every worker there */
    double least = 1 + RATE * seconds(all_waiting > 0 ? all_waiting : 0) / 2;
    /* Paced: sorted, the k-th token (from 0) was had no earlier than k
     * periods after the start (burst 1: one at once, then one per period).
     * The times were taken after each Wait returned: they can only be later. */
    int n = served < MAX_SERVED ? served : MAX_SERVED, early = -1;
    qsort(p.granted_at, (size_t)n, sizeof p.granted_at[0], cmp_time);
    for (int k = 0; k < n && early < 0; k++)
        if (p.granted_at[k] < t0 + (int64_t)k * (int64_t)(GOCC_SECOND / RATE)) early = k;
    check(started == WORKERS, "started the workers");
    check((double)served <= most, "wait: never more than burst + rate * elapsed");
    check(early < 0, "wait: paced, token k (from 0) no earlier than k / rate after the start");
    check((double)served >= least,
          "wait: at least burst + half the rate while all waited (it refills)");
    check(atomic_load(&p.stopped_by_deadline) == started,
          "every worker stopped with 'context deadline exceeded'");
    printf("B23 wait (%s): %d workers sharing 100/s, burst 1, until a %lld ms deadline: %d "
           "served in %lld ms (%.0f/s, between %.1f and %.1f), each no sooner than its turn: "
           "%s; %d stopped with '%s'\n",
           l->name, started, (long long)(WAIT_WINDOW / GOCC_MILLISECOND), served,
           (long long)(elapsed / GOCC_MILLISECOND), (double)served / seconds(elapsed), least, most,
           early < 0 ? "yes" : "NO", atomic_load(&p.stopped_by_deadline),
           gocc_strerror(GOCC_EDEADLINE));
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    if (p.lim) l->destroy(p.lim);
}

/* ---- gocc_ratelimit's Wait with a deadline that comes first ----------- */

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
    printf("B23 deadline (gocc_ratelimit): next token due in ~10 s, deadline in 2 s: Wait -> "
           "'%s' after %lld ms; tokens %.3f before, %.3f after\n",
           gocc_strerror(rc), (long long)(took / GOCC_MILLISECOND), before, after);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ratelimit_free(rl);
}

int main(void) {
    b23_allow(&chan_bucket);
    b23_wait(&chan_bucket);
    /* In practice: the library's token bucket, the same runs. */
    b23_allow(&ratelimit);
    b23_wait(&ratelimit);
    b23_deadline();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B23 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
