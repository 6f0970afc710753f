/*
 * b19_adaptive_breaker.c - B19 (chapter 9, "Advanced: Adaptive circuit
 * breaker"): a breaker that opens on the error RATE over a rolling time
 * window instead of a count of failures in a row. shouldOpen():
 * stats := window.Stats(); open when stats.Total >= minRequests and
 * stats.Errors / stats.Total > threshold.
 *
 * The seed gives only shouldOpen and names a RollingWindow; the rest is
 * written here: the window is 10 buckets of 100 ms (1 s), each holding
 * (total, errors) for its 100 ms slot; Stats() sums the buckets of the
 * last 10 slots, so a call counts for at least 900 ms and at most 1 s. The
 * open / half-open / closed cycle is B18's (one trial after resetTimeout;
 * its success closes the breaker and empties the window, its failure
 * reopens it). Rejected calls are not counted in the window.
 *
 * b19_error_rate: threshold 0.5, minRequests 10, resetTimeout 150 ms, one
 *   caller, a fake service failing by call number. 5 failures: still
 *   closed (5 < minRequests); 5 successes: 5/10 = 50%, not above the
 *   threshold: closed; one more failure: 6/11 = 55%: open; 3 calls
 *   rejected; after the timeout a trial succeeds: closed, window empty.
 *   Then the roll-off: 9 failures (closed, 9 < 10), 1 s of quiet, 1 failure
 *   and 9 successes: the window holds 10 calls and 1 error (10%), closed;
 *   without the roll-off it would be 10/19 = 53% and open.
 * b19_concurrent: 4 tasks x 250 calls. A service failing 1 call in 10: the
 *   breaker never opens, 1000 calls pass and 100 fail. A service failing 4
 *   in 5 (resetTimeout 10 s, so it stays open): it opens once, every call
 *   after that is rejected without reaching the service, calls passed +
 *   rejected = 1000.
 *
 * Go -> C: sync.Mutex (the breaker's lock, which also guards the window) is
 * a pthread mutex, time.Now gocc_now(), float64 a double, fn func() error
 * an int (*)(void *); the error "circuit breaker is open" is ERR_OPEN.
 *
 * Checks: the state after each call of the first scenario, the window's
 * totals, the counts of the second (exact where the schedule cannot change
 * them, bounds where it can), gocc_tasks_live() == 0 at the end. Exit 1 if
 * wrong.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B19", ok, what)

enum { ERR_OPEN = -10001, ERR_SERVICE = -10002 };

typedef enum { CLOSED, OPEN, HALF_OPEN } state_t;
static const char *const state_name[] = {"closed", "open", "half-open"};

/* ---- the rolling window ------------------------------------------------------ */

#define BUCKETS 10
#define BUCKET_NS (100 * GOCC_MILLISECOND)
#define WINDOW_NS (BUCKETS * BUCKET_NS)

typedef struct bucket {
    int64_t slot; /* gocc_now() / BUCKET_NS when it was filled */
    int total, errors;
} bucket_t;

typedef struct window_stats {
    int total, errors;
} window_stats_t;

/* Not locked itself: the breaker's mutex guards it. */
typedef struct rolling_window {
    bucket_t b[BUCKETS];
} rolling_window_t;

static void window_add(rolling_window_t *w, int64_t now, bool error) {
    int64_t slot = now / BUCKET_NS;
    bucket_t *b = &w->b[slot % BUCKETS];
    if (b->slot != slot) *b = (bucket_t){.slot = slot}; /* a stale bucket: reuse it */
    b->total++;
    b->errors += error;
}

/* Sum the buckets of the last BUCKETS slots (the current one included). */
static window_stats_t window_stats(const rolling_window_t *w, int64_t now) {
    int64_t slot = now / BUCKET_NS;
    window_stats_t st = {0, 0};
    for (int i = 0; i < BUCKETS; i++) {
        if (w->b[i].slot > slot - BUCKETS && w->b[i].slot <= slot) {
            st.total += w->b[i].total;
            st.errors += w->b[i].errors;
        }
    }
    return st;
}

/* ---- the adaptive breaker ------------------------------------------------ */

typedef struct adaptive_breaker {
    double threshold; /* error rate above which it opens */
    int min_requests; /* fewer calls in the window: never open */
    int64_t reset_timeout;
    pthread_mutex_t mu; /* protects state, opened_at, window, opens */
    state_t state;      /* HALF_OPEN: the one trial call is in flight */
    int64_t opened_at;
    rolling_window_t window;
    int opens; /* closed/half-open -> open transitions */
    atomic_int calls, rejected;
} adaptive_breaker_t;

static void breaker_init(adaptive_breaker_t *cb, double threshold, int min_requests,
                         int64_t reset_timeout) {
    *cb = (adaptive_breaker_t){.threshold = threshold,
                               .min_requests = min_requests,
                               .reset_timeout = reset_timeout};
    pthread_mutex_init(&cb->mu, NULL);
}

/* The seed's shouldOpen. Caller holds cb->mu. */
static bool should_open_locked(adaptive_breaker_t *cb, int64_t now) {
    window_stats_t st = window_stats(&cb->window, now);
    if (st.total < cb->min_requests) return false;
    return (double)st.errors / st.total > cb->threshold;
}

static state_t breaker_state(adaptive_breaker_t *cb, window_stats_t *st) {
    pthread_mutex_lock(&cb->mu);
    state_t s = cb->state;
    if (st) *st = window_stats(&cb->window, gocc_now());
    pthread_mutex_unlock(&cb->mu);
    return s;
}

static int breaker_admit(adaptive_breaker_t *cb, bool *trial) {
    int rc = 0;
    *trial = false;
    pthread_mutex_lock(&cb->mu);
    if (cb->state == OPEN && gocc_now() - cb->opened_at >= cb->reset_timeout) {
        cb->state = HALF_OPEN;
        *trial = true;
    } else if (cb->state != CLOSED) {
        rc = ERR_OPEN; /* open, or a trial in flight */
    }
    pthread_mutex_unlock(&cb->mu);
    return rc;
}

static void breaker_record(adaptive_breaker_t *cb, bool trial, int err) {
    int64_t now = gocc_now();
    pthread_mutex_lock(&cb->mu);
    if (trial && !err) { /* recovered: start afresh */
        cb->state = CLOSED;
        memset(&cb->window, 0, sizeof cb->window);
    } else if (trial) {
        cb->state = OPEN;
        cb->opened_at = now;
        cb->opens++;
    } else if (cb->state == CLOSED) { /* (late results of an open breaker do not count) */
        window_add(&cb->window, now, err != 0);
        if (should_open_locked(cb, now)) {
            cb->state = OPEN;
            cb->opened_at = now;
            cb->opens++;
        }
    }
    pthread_mutex_unlock(&cb->mu);
}

static int breaker_call(adaptive_breaker_t *cb, int (*fn)(void *), void *arg) {
    bool trial;
    if (breaker_admit(cb, &trial) != 0) {
        atomic_fetch_add(&cb->rejected, 1);
        return ERR_OPEN;
    }
    atomic_fetch_add(&cb->calls, 1);
    int err = fn(arg);
    breaker_record(cb, trial, err);
    return err;
}

/* ---- fake services ---------------------------------------------------------- */

typedef struct service {
    const char *pattern; /* call n (from 0) fails where pattern[n] == 'x' */
    int fail_every;      /* or: fails when (n + 1) % fail_every == 0 ... */
    int ok_every;        /* ... or succeeds only when (n + 1) % ok_every == 0 */
    atomic_int calls, failures;
} service_t;

static int service_call(void *arg) {
    service_t *s = arg;
    int n = atomic_fetch_add(&s->calls, 1);
    bool fail;
    if (s->pattern)
        fail = (size_t)n < strlen(s->pattern) && s->pattern[n] == 'x';
    else if (s->fail_every)
        fail = (n + 1) % s->fail_every == 0;
    else
        fail = (n + 1) % s->ok_every != 0;
    if (fail) atomic_fetch_add(&s->failures, 1);
    return fail ? ERR_SERVICE : 0;
}

/* ---- the error rate, one call at a time ---------------------------------- */

/* Make `n` calls; true if each was rejected or not as `want_rejected` says
 * and the state after each was `want`. */
static bool calls_expect(adaptive_breaker_t *cb, service_t *svc, int n, state_t want,
                         bool want_rejected) {
    bool ok = true;
    for (int i = 0; i < n; i++) {
        int rc = breaker_call(cb, service_call, svc);
        if ((rc == ERR_OPEN) != want_rejected || breaker_state(cb, NULL) != want) ok = false;
    }
    return ok;
}

static void b19_error_rate(void) {
    adaptive_breaker_t cb;
    breaker_init(&cb, 0.5, 10, 150 * GOCC_MILLISECOND);
    /* 11 calls to open it, the trial, 9 failures, 1 failure + 9 successes */
    service_t svc = {.pattern = "xxxxx....."
                                "x"
                                "."
                                "xxxxxxxxx"
                                "x........."};
    window_stats_t w;

    check(calls_expect(&cb, &svc, 5, CLOSED, false), "5 failures of 5: closed (< minRequests)");
    check(calls_expect(&cb, &svc, 5, CLOSED, false), "5 failures of 10 (50%): still closed");
    breaker_state(&cb, &w);
    int total10 = w.total, errors10 = w.errors;
    check(calls_expect(&cb, &svc, 1, OPEN, false), "6 failures of 11 (55%): open");
    breaker_state(&cb, &w);
    int total11 = w.total, errors11 = w.errors;
    check(calls_expect(&cb, &svc, 3, OPEN, true), "open: 3 calls rejected");
    check(atomic_load(&svc.calls) == 11, "the rejected calls never reached the service");
    gocc_sleep(cb.reset_timeout + 10 * GOCC_MILLISECOND, NULL);
    check(calls_expect(&cb, &svc, 1, CLOSED, false), "after the timeout the trial closed it");
    breaker_state(&cb, &w);
    check(w.total == 0, "closing emptied the window");
    printf("B19 error rate: 5/5 failed: closed (under 10 requests); %d/%d: closed (not above "
           "50%%); %d/%d: open; 3 rejected; trial ok after 150 ms: closed\n",
           errors10, total10, errors11, total11);
    check(total10 == 10 && errors10 == 5 && total11 == 11 && errors11 == 6, "the window's counts");

    /* The roll-off: old errors leave the window. */
    check(calls_expect(&cb, &svc, 9, CLOSED, false), "9 failures of 9: closed (< minRequests)");
    gocc_sleep(WINDOW_NS + 10 * GOCC_MILLISECOND, NULL); /* they are all older than 1 s now */
    check(calls_expect(&cb, &svc, 10, CLOSED, false),
          "1 failure + 9 successes in the window (10%): closed");
    breaker_state(&cb, &w);
    check(w.total == 10 && w.errors == 1, "the window holds only the last 10 calls");
    check(atomic_load(&svc.calls) == 31 && cb.opens == 1, "31 service calls, opened once");
    printf("B19 rolling window: 9 failures, 1 s later 1 failure + 9 ok: the window holds %d "
           "calls, %d error (%d%%): closed; counting all 19 (10 errors, 53%%) would open it\n",
           w.total, w.errors, w.total ? 100 * w.errors / w.total : 0);
    pthread_mutex_destroy(&cb.mu);
}

/* ---- concurrent callers ------------------------------------------------------ */

#define CALLERS 4
#define CALLS 250

typedef struct caller_arg {
    adaptive_breaker_t *cb;
    service_t *svc;
    gocc_waitgroup_t *wg;
    int passed, failed, rejected; /* read by main after wg's wait */
} caller_arg_t;

static int caller_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    caller_arg_t *c = arg;
    for (int i = 0; i < CALLS; i++) {
        int rc = breaker_call(c->cb, service_call, c->svc);
        if (rc == 0)
            c->passed++;
        else if (rc == ERR_OPEN)
            c->rejected++;
        else
            c->failed++;
    }
    gocc_waitgroup_done(c->wg);
    return 0;
}

/* Run CALLERS tasks against cb; sum their counts into *sum. */
static void run_callers(adaptive_breaker_t *cb, service_t *svc, caller_arg_t *sum) {
    caller_arg_t c[CALLERS];
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    *sum = (caller_arg_t){0};
    for (int i = 0; i < CALLERS; i++) {
        c[i] = (caller_arg_t){.cb = cb, .svc = svc, .wg = &wg};
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(caller_task, NULL, &c[i]) != 0) {
            gocc_waitgroup_done(&wg);
            check(false, "started a caller");
        }
    }
    gocc_waitgroup_wait(&wg, NULL);
    for (int i = 0; i < CALLERS; i++) {
        sum->passed += c[i].passed;
        sum->failed += c[i].failed;
        sum->rejected += c[i].rejected;
    }
}

static void b19_concurrent(void) {
    adaptive_breaker_t cb;
    breaker_init(&cb, 0.5, 10, 150 * GOCC_MILLISECOND);
    service_t healthy = {.fail_every = 10};
    caller_arg_t sum;
    run_callers(&cb, &healthy, &sum);
    window_stats_t w;
    state_t s = breaker_state(&cb, &w);
    check(s == CLOSED && cb.opens == 0 && sum.rejected == 0, "10% errors never opened it");
    check(sum.passed == 900 && sum.failed == 100, "900 calls passed, 100 failed");
    check(w.total <= 1000 && w.errors <= 100, "the window's counts are bounded");
    printf("B19 concurrent, 10%% errors: %d tasks x %d calls: %d ok, %d failed, %d rejected; "
           "%s, window %d calls / %d errors\n",
           CALLERS, CALLS, sum.passed, sum.failed, sum.rejected, state_name[s], w.total, w.errors);
    pthread_mutex_destroy(&cb.mu);

    breaker_init(&cb, 0.5, 10, 10 * GOCC_SECOND); /* once open, open for the rest */
    service_t failing = {.ok_every = 5};
    run_callers(&cb, &failing, &sum);
    s = breaker_state(&cb, NULL);
    int reached = sum.passed + sum.failed;
    check(s == OPEN && cb.opens == 1, "80% errors opened it, once");
    check(reached + sum.rejected == CALLERS * CALLS, "passed + failed + rejected == 1000");
    check(reached == atomic_load(&failing.calls) && reached == atomic_load(&cb.calls),
          "rejected calls never reached the service");
    check(reached >= 10 && sum.rejected > 0, "it opened after at least minRequests calls");
    printf("B19 concurrent, 80%% errors: opened after %d calls reached the service (%d failed); "
           "the other %d were rejected at once\n",
           reached, sum.failed, sum.rejected);
    pthread_mutex_destroy(&cb.mu);
}

int main(void) {
    b19_error_rate();
    b19_concurrent();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B19 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
