/*
 * b18_circuit_breaker.c - B18 (chapter 9, "Circuit Breaker Pattern"):
 * prevent cascading failures. A CircuitBreaker wraps calls to a service:
 * closed, it lets calls through and counts consecutive failures; after
 * maxFailures it opens and rejects calls at once ("circuit breaker is
 * open") without touching the service; once resetTimeout has passed since
 * the last failure the next call is a trial (half-open): its success
 * closes the breaker, its failure opens it again.
 *
 * b18_transitions: maxFailures 3, resetTimeout 250 ms, one caller, a fake
 *   service whose n-th call fails where the pattern ".xx.xxxx..." has an
 *   x. A table of 16 calls with the result and state expected after each:
 *   two failures and a success (still closed: a success resets the
 *   count), three failures (open), four calls rejected without reaching
 *   the service, after the timeout a trial that fails (open again at
 *   once), one more rejected, after the timeout a trial that succeeds
 *   (closed), two more successes.
 * b18_half_open: with the breaker open and the timeout passed, a trial
 *   call blocks inside the service; meanwhile the breaker reads half-open
 *   and rejects other calls (one trial at a time); the trial succeeds and
 *   4 tasks x 100 calls then all pass through the closed breaker.
 *
 * Go -> C: sync.Mutex is a pthread mutex (the lesson's own lock), time.Now
 * is gocc_now(), counts (atomic.Int64) an atomic_llong, fn func() error an
 * int (*)(void *) returning 0 or an error code, and fmt.Errorf("circuit
 * breaker is open") the code ERR_OPEN. Two fixes to the seed:
 *   - its half-open state lets every call through (canAttempt returns true)
 *     and needs maxFailures more failures to open again; here half-open
 *     admits one trial and its one failure reopens the breaker;
 *   - a result of a call admitted while closed that comes back after the
 *     breaker opened does not move the state (only the trial's does).
 *
 * Checks: every call's return code and the state after it, the service's
 * call count (a rejected call never reaches it), the counters (calls,
 * rejected), the trial's exclusivity, gocc_tasks_live() == 0 at the end.
 * Exit 1 if wrong.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B18", ok, what)

#define MAX_FAILURES 3
/* Generous: "open rejects" holds only while less than this has passed
 * since the failure that opened it, and the next few lines take microseconds. */
#define RESET_TIMEOUT (250 * GOCC_MILLISECOND)

enum { ERR_OPEN = -10001, ERR_SERVICE = -10002 };

static const char *err_name(int rc) {
    switch (rc) {
    case 0: return "nil";
    case ERR_OPEN: return "circuit breaker is open";
    case ERR_SERVICE: return "service error";
    default: return gocc_strerror(rc);
    }
}

typedef enum { CLOSED, OPEN, HALF_OPEN } state_t;
static const char *const state_name[] = {"closed", "open", "half-open"};

/* ---- the breaker ----------------------------------------------------------- */

typedef struct breaker {
    int max_failures;
    int64_t reset_timeout;
    pthread_mutex_t mu;    /* protects state, failures, last_fail */
    state_t state;         /* HALF_OPEN: the one trial call is in flight */
    int failures;          /* consecutive failures while closed */
    int64_t last_fail;     /* gocc_now() of the failure that opened it */
    atomic_llong calls;    /* cb.counts: calls that reached fn */
    atomic_llong rejected; /* calls refused with ERR_OPEN */
} breaker_t;

static void breaker_init(breaker_t *cb, int max_failures, int64_t reset_timeout) {
    *cb = (breaker_t){.max_failures = max_failures, .reset_timeout = reset_timeout};
    pthread_mutex_init(&cb->mu, NULL);
}

static state_t breaker_state(breaker_t *cb) {
    pthread_mutex_lock(&cb->mu);
    state_t s = cb->state;
    pthread_mutex_unlock(&cb->mu);
    return s;
}

/* canAttempt: 0 and *trial = whether this is the half-open trial, or
 * ERR_OPEN. */
static int breaker_admit(breaker_t *cb, bool *trial) {
    int rc = 0;
    *trial = false;
    pthread_mutex_lock(&cb->mu);
    switch (cb->state) {
    case CLOSED: break;
    case OPEN:
        if (gocc_now() - cb->last_fail >= cb->reset_timeout) {
            cb->state = HALF_OPEN; /* this call is the trial */
            *trial = true;
        } else {
            rc = ERR_OPEN;
        }
        break;
    case HALF_OPEN: /* a trial is in flight: one at a time */ rc = ERR_OPEN; break;
    }
    pthread_mutex_unlock(&cb->mu);
    return rc;
}

/* recordResult. Only the trial moves a half-open breaker; a call admitted
 * while closed that returns after the breaker opened changes nothing. */
static void breaker_record(breaker_t *cb, bool trial, int err) {
    pthread_mutex_lock(&cb->mu);
    if (trial) {
        cb->state = err ? OPEN : CLOSED;
        cb->failures = 0;
        if (err) cb->last_fail = gocc_now();
    } else if (cb->state == CLOSED) {
        if (!err) {
            cb->failures = 0;
        } else if (++cb->failures >= cb->max_failures) {
            cb->state = OPEN;
            cb->last_fail = gocc_now();
        }
    }
    pthread_mutex_unlock(&cb->mu);
}

/* Call: fn's result, or ERR_OPEN without calling fn. */
static int breaker_call(breaker_t *cb, int (*fn)(void *), void *arg) {
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

/* ---- a fake service: its n-th call fails where pattern[n-1] == 'x' -------- */

typedef struct service {
    const char *pattern; /* beyond its end, calls succeed */
    atomic_int calls;
} service_t;

static int service_call(void *arg) {
    service_t *s = arg;
    size_t n = (size_t)atomic_fetch_add(&s->calls, 1); /* 0-based */
    return n < strlen(s->pattern) && s->pattern[n] == 'x' ? ERR_SERVICE : 0;
}

/* ---- the transitions, one call at a time -------------------------------- */

static const struct step {
    bool after_timeout; /* sleep past the reset timeout first */
    int want_rc;
    state_t want_state; /* after the call */
} steps[] = {
    {false, 0, CLOSED},           {false, ERR_SERVICE, CLOSED},
    {false, ERR_SERVICE, CLOSED}, {false, 0, CLOSED}, /* a success resets the count */
    {false, ERR_SERVICE, CLOSED}, {false, ERR_SERVICE, CLOSED},
    {false, ERR_SERVICE, OPEN}, /* the 3rd consecutive failure */
    {false, ERR_OPEN, OPEN},      {false, ERR_OPEN, OPEN},
    {false, ERR_OPEN, OPEN},      {false, ERR_OPEN, OPEN},
    {true, ERR_SERVICE, OPEN},                       /* the trial fails: open again */
    {false, ERR_OPEN, OPEN},      {true, 0, CLOSED}, /* the trial succeeds */
    {false, 0, CLOSED},           {false, 0, CLOSED},
};
#define STEPS (int)(sizeof steps / sizeof steps[0])

static void b18_transitions(void) {
    breaker_t cb;
    breaker_init(&cb, MAX_FAILURES, RESET_TIMEOUT);
    service_t svc = {.pattern = ".xx.xxxx..."};
    char trace[STEPS * 2 + 1] = {0}; /* one letter per call: . ok, x failed, - rejected */
    bool all_ok = true;
    for (int i = 0; i < STEPS; i++) {
        if (steps[i].after_timeout) gocc_sleep(RESET_TIMEOUT + 10 * GOCC_MILLISECOND, NULL);
        int rc = breaker_call(&cb, service_call, &svc);
        state_t s = breaker_state(&cb);
        trace[i] = rc == 0 ? '.' : rc == ERR_OPEN ? '-' : 'x';
        if (rc != steps[i].want_rc || s != steps[i].want_state) {
            printf("B18 call %d: got \"%s\", %s; wanted \"%s\", %s\n", i + 1, err_name(rc),
                   state_name[s], err_name(steps[i].want_rc), state_name[steps[i].want_state]);
            all_ok = false;
        }
    }
    check(all_ok, "every call's result and the state after it as the table says");
    check(atomic_load(&svc.calls) == 11, "the service saw 11 calls: rejected ones never reach it");
    check(atomic_load(&cb.calls) == 11 && atomic_load(&cb.rejected) == 5,
          "11 calls went through, 5 were rejected");
    printf("B18 breaker: %s (. ok, x failed, - rejected): closed -> open after %d failures in a "
           "row; open rejects; after %lld ms one trial: failed -> open, then ok -> closed\n",
           trace, MAX_FAILURES, (long long)(RESET_TIMEOUT / GOCC_MILLISECOND));
    pthread_mutex_destroy(&cb.mu);
}

/* ---- half-open admits one trial; then concurrent callers ------------------ */

typedef struct gated_service {
    gocc_chan_t *entered; /* closed when the trial is inside the service */
    gocc_chan_t *gate;    /* closed to let it return */
    atomic_int calls;
} gated_service_t;

static int gated_call(void *arg) {
    gated_service_t *g = arg;
    atomic_fetch_add(&g->calls, 1);
    gocc_chan_close(g->entered);
    gocc_chan_recv(g->gate, NULL, NULL);
    return 0;
}

static int always_fails(void *arg) {
    (void)arg;
    return ERR_SERVICE;
}

static int always_ok(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

typedef struct trial_arg {
    breaker_t *cb;
    gated_service_t *svc;
    atomic_int rc;
} trial_arg_t;

static int trial_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    trial_arg_t *t = arg;
    atomic_store(&t->rc, breaker_call(t->cb, gated_call, t->svc));
    return 0;
}

typedef struct caller_arg {
    breaker_t *cb;
    atomic_int *served;
    atomic_int passed;
} caller_arg_t;

#define CALLERS 4
#define CALLS 100

static int caller_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    caller_arg_t *c = arg;
    for (int i = 0; i < CALLS; i++)
        if (breaker_call(c->cb, always_ok, c->served) == 0) atomic_fetch_add(&c->passed, 1);
    return 0;
}

static void b18_half_open(void) {
    breaker_t cb;
    breaker_init(&cb, MAX_FAILURES, RESET_TIMEOUT);
    gated_service_t svc = {.entered = gocc_chan_new(0, 0), .gate = gocc_chan_new(0, 0)};
    trial_arg_t trial = {.cb = &cb, .svc = &svc, .rc = 1};
    if (!svc.entered || !svc.gate) {
        check(false, "made the channels");
        goto out;
    }
    for (int i = 0; i < MAX_FAILURES; i++) breaker_call(&cb, always_fails, NULL);
    check(breaker_state(&cb) == OPEN, "3 failures opened the breaker");
    gocc_sleep(RESET_TIMEOUT + 10 * GOCC_MILLISECOND, NULL);

    if (gocc_go(trial_task, NULL, &trial) != 0) {
        check(false, "started the trial call");
        goto out;
    }
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND); /* a broken run ends */
    int entered = gocc_chan_recv(svc.entered, NULL, limit); /* the trial is inside the service */
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    check(entered == GOCC_ECLOSED, "the trial call reached the service");
    state_t during = breaker_state(&cb);
    int rejected = 0;
    for (int i = 0; i < 5; i++) rejected += breaker_call(&cb, always_fails, NULL) == ERR_OPEN;
    check(during == HALF_OPEN, "half-open while the trial is in flight");
    check(rejected == 5, "half-open rejects other calls while the trial is in flight");
    gocc_chan_close(svc.gate);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the trial returned");
    check(atomic_load(&trial.rc) == 0 && breaker_state(&cb) == CLOSED,
          "the trial succeeded and closed the breaker");
    check(atomic_load(&svc.calls) == 1, "the service saw only the trial");

    atomic_int served = 0;
    caller_arg_t callers[CALLERS];
    int started = 0;
    for (int i = 0; i < CALLERS; i++) {
        callers[i] = (caller_arg_t){.cb = &cb, .served = &served};
        started += gocc_go(caller_task, NULL, &callers[i]) == 0;
    }
    check(started == CALLERS, "started the callers");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the callers returned");
    int passed = 0;
    for (int i = 0; i < started; i++) passed += atomic_load(&callers[i].passed);
    check(passed == started * CALLS && atomic_load(&served) == passed,
          "every concurrent call through the closed breaker passed");
    check(breaker_state(&cb) == CLOSED, "still closed");
    printf("B18 half-open: after the timeout one trial in flight (state %s), %d other calls "
           "rejected; the trial ok -> %s; then %d tasks x %d calls: %d passed\n",
           state_name[during], rejected, state_name[breaker_state(&cb)], CALLERS, CALLS, passed);
out:
    if (svc.gate) gocc_chan_close(svc.gate); /* (again, harmless) lets a stuck trial go */
    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left");
    gocc_chan_release(svc.entered);
    gocc_chan_release(svc.gate);
    pthread_mutex_destroy(&cb.mu);
}

int main(void) {
    b18_transitions();
    b18_half_open();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B18 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
