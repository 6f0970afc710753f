/*
 * ratelimit.c - the token bucket (golang.org/x/time/rate's Limiter):
 * allow takes tokens now or nothing; wait queues, FIFO, until its tokens
 * are due.
 *
 * Model. x/time/rate keeps one number, the bucket's level, from which each
 * Wait subtracts its reservation on arrival (so the level goes negative
 * while waiters are queued). Here the same level is kept in two parts:
 * `tokens`, what has accumulated and not been handed out, and `queued`, the
 * sum of the requests still in the wait queue; the level is
 * tokens - queued. That is what gocc_ratelimit_tokens reports and what
 * allow checks, so allow never takes what a waiter has reserved. Refill
 * grows the level by rate * elapsed, capped at burst (tokens <= burst +
 * queued: tokens due to queued waiters are kept for them).
 *
 * Keeping the reservations apart from the tokens makes a cancelled wait
 * exact: a waiter is granted only together with a successful claim of its
 * waiter record (as in sem.c), so a waiter whose context won was never
 * given anything; leaving the queue is just queued -= n. Its whole
 * reservation goes back at once and the waiters behind it move up (better
 * than x/time/rate's CancelAt, which restores only the tokens no later
 * reservation depends on, and keeps later waiters on their old times).
 *
 * Invariants (under rl->mu):
 *  - 0 <= tokens <= burst + queued, after advance_locked.
 *  - The queue is strictly FIFO: only its head is ever granted, when
 *    tokens >= head->n; a grant takes n from tokens and from queued (the
 *    level does not change: those tokens were reserved on arrival).
 *  - A wait with an empty queue and enough tokens takes them at once.
 *  - While the head does not fit and rate > 0, rl->timer is armed for the
 *    moment its tokens are due (a spurious or late fire only re-checks).
 *
 * Never over-issues: every token handed out (allow, an immediate wait, a
 * grant) comes out of `tokens`, which starts at burst, grows by at most
 * rate * elapsed and never goes below 0. Over [0, t] at most burst +
 * rate * t tokens are given.
 *
 * Who wakes whom: the timer thread (rl->timer, at the head's due time),
 * gocc_ratelimit_set (the rate or burst changed) and a cancelled waiter
 * that was at the head grant the heads that fit and wake them after
 * dropping rl->mu. A waiter whose context ends wakes itself through its
 * context's done channel and unlinks its record.
 *
 * Lock order: rl->mu -> the timer heap lock (arming and disarming happen
 * under rl->mu; timer.c allows it under an object's own mutex). The timer
 * callback runs with no lock held and takes rl->mu; gocc_ratelimit_free
 * disarms with gocc__timer_del_sync with no lock held.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <math.h> /* isfinite: a macro, no libm */

struct gocc_ratelimit {
    gocc__mutex mu;
    double rate;                /* tokens a second (>= 0), under mu */
    int64_t burst;              /* >= 1, under mu */
    double tokens;              /* accumulated, not handed out; under mu */
    int64_t last;               /* when tokens was brought up to date, under mu */
    int64_t queued;             /* sum of n in the queue, under mu */
    gocc__waitrec *head, *tail; /* waiters, FIFO, under mu */
    gocc__timer_entry timer;    /* wakes the head when its tokens are due */
    bool timer_reserved;        /* room for `timer` is reserved (under mu) */
};

static bool valid(double per_second, int64_t burst) {
    return per_second >= 0 && isfinite(per_second) && burst >= 1; /* NaN fails >= */
}

/* Bring tokens up to @p now and apply the cap; caller holds mu. */
static void advance_locked(gocc_ratelimit_t *rl, int64_t now) {
    gocc__assert_held(&rl->mu);
    if (now > rl->last) {
        rl->tokens += (double)(now - rl->last) * rl->rate / (double)GOCC_SECOND;
        rl->last = now;
    }
    double cap = (double)rl->burst + (double)rl->queued;
    if (rl->tokens > cap) rl->tokens = cap;
}

/* When tokens will have grown by @p need (> 0), or INT64_MAX for never
 * (rate 0, or too far to represent); caller holds mu. */
static int64_t due_locked(const gocc_ratelimit_t *rl, int64_t now, double need) {
    gocc__assert_held(&rl->mu);
    if (rl->rate <= 0) return INT64_MAX;
    double ns = need / rl->rate * (double)GOCC_SECOND;
    if (!(ns < (double)(INT64_MAX - now) - 2)) return INT64_MAX;
    int64_t wait = (int64_t)ns; /* rounded up (no libm: ceil by hand) */
    if ((double)wait < ns) wait++;
    return now + (wait < 1 ? 1 : wait);
}

/* Grant the waiters at the head that fit; caller holds mu (tokens up to
 * date). The claimed ones go on @p wake, to wake after unlocking. */
static void grant_locked(gocc_ratelimit_t *rl, gocc__wakeq *wake) {
    gocc__assert_held(&rl->mu);
    gocc__waitrec *r;
    while ((r = rl->head) != NULL && rl->tokens >= (double)r->n) {
        gocc__waitrec_unlink(&rl->head, &rl->tail, r);
        rl->queued -= r->n;
        if (!gocc__waiter_claim(r->w)) continue; /* its context won: nothing taken */
        rl->tokens -= (double)r->n;
        gocc__wakeq_signal(wake, r->w);
    }
}

/* Arm the timer for the head's due time, or disarm it when nobody waits
 * (or nothing can come due); caller holds mu, after grant_locked. */
static void rearm_locked(gocc_ratelimit_t *rl, int64_t now) {
    gocc__assert_held(&rl->mu);
    if (!rl->timer_reserved) return; /* nobody ever waited */
    int64_t due = INT64_MAX;
    if (rl->head != NULL) due = due_locked(rl, now, (double)rl->head->n - rl->tokens);
    if (due == INT64_MAX)
        (void)gocc__timer_del(&rl->timer); /* a fire in progress only re-checks */
    else
        gocc__timer_add(&rl->timer, due, 0);
}

/* Runs on the timer thread when the head's tokens should be due. */
static void timer_fire(gocc__timer_entry *e, int64_t unused) {
    (void)unused;
    gocc_ratelimit_t *rl = e->arg;
    gocc__lock(&rl->mu);
    int64_t now = gocc_now();
    advance_locked(rl, now);
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    grant_locked(rl, &wake);
    rearm_locked(rl, now);
    gocc__unlock(&rl->mu);
    gocc__wakeq_wake_all(&wake);
}

gocc_ratelimit_t *gocc_ratelimit_new(double per_second, int64_t burst) {
    if (!valid(per_second, burst)) {
        errno = EINVAL;
        return NULL;
    }
    gocc_ratelimit_t *rl = gocc__calloc(1, sizeof *rl);
    if (rl == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&rl->mu, GOCC_LOCK_RATELIMIT);
    rl->rate = per_second;
    rl->burst = burst;
    rl->tokens = (double)burst; /* starts full */
    rl->last = gocc_now();
    gocc__timer_init(&rl->timer, timer_fire, rl);
    return rl;
}

void gocc_ratelimit_free(gocc_ratelimit_t *rl) {
    if (rl == NULL) return;
    if (rl->timer_reserved) {
        gocc__timer_del_sync(&rl->timer); /* a running callback is done with rl */
        gocc__timer_unreserve();
    }
    gocc__mutex_destroy(&rl->mu);
    gocc__free(rl);
}

bool gocc_ratelimit_allow(gocc_ratelimit_t *rl, int64_t n) {
    if (rl == NULL || n < 0) return false;
    gocc__lock(&rl->mu);
    advance_locked(rl, gocc_now());
    bool ok = rl->tokens - (double)rl->queued >= (double)n; /* the level, reservations out */
    if (ok) rl->tokens -= (double)n;
    gocc__unlock(&rl->mu);
    return ok;
}

double gocc_ratelimit_tokens(gocc_ratelimit_t *rl) {
    if (rl == NULL) return 0;
    gocc__lock(&rl->mu);
    advance_locked(rl, gocc_now());
    double level = rl->tokens - (double)rl->queued;
    gocc__unlock(&rl->mu);
    return level;
}

int gocc_ratelimit_set(gocc_ratelimit_t *rl, double per_second, int64_t burst) {
    if (rl == NULL || !valid(per_second, burst)) return GOCC_EINVAL;
    gocc__lock(&rl->mu);
    int64_t now = gocc_now();
    advance_locked(rl, now); /* what accrued so far accrued at the old rate */
    rl->rate = per_second;
    rl->burst = burst;
    advance_locked(rl, now); /* the new cap */
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    grant_locked(rl, &wake);
    rearm_locked(rl, now); /* the head's due time moved with the rate */
    gocc__unlock(&rl->mu);
    gocc__wakeq_wake_all(&wake);
    return 0;
}

/* Take n at once if nobody queues ahead and the tokens are there; caller
 * holds mu with tokens up to date (an empty queue means queued == 0). */
static bool take_now_locked(gocc_ratelimit_t *rl, int64_t n) {
    gocc__assert_held(&rl->mu);
    if (rl->head != NULL || rl->tokens < (double)n) return false;
    rl->tokens -= (double)n;
    return true;
}

int gocc_ratelimit_wait(gocc_ratelimit_t *rl, int64_t n, gocc_ctx_t *ctx) {
    if (rl == NULL || n < 0) return GOCC_EINVAL;
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err; /* a context already done wins */

    gocc__lock(&rl->mu);
    if (n > rl->burst) {
        gocc__unlock(&rl->mu);
        return GOCC_EINVAL; /* could never be satisfied */
    }
    advance_locked(rl, gocc_now());
    bool got = take_now_locked(rl, n);
    gocc__unlock(&rl->mu);
    if (got) return 0;

    /* We may have to wait: what that takes, made outside the lock. */
    int64_t deadline;
    bool has_deadline = gocc_ctx_deadline(ctx, &deadline);
    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;

    gocc__lock(&rl->mu);
    int64_t now = gocc_now();
    advance_locked(rl, now);
    int rc = 0;
    if (n > rl->burst) {
        rc = GOCC_EINVAL; /* set() lowered the burst meanwhile */
    } else if (take_now_locked(rl, n)) {
        rc = 1;
    } else if (has_deadline &&
               deadline < due_locked(rl, now, (double)(rl->queued + n) - rl->tokens)) {
        /* Our tokens come due only once everyone ahead was served and ours
         * accrued: after the deadline. Nothing was taken. */
        rc = GOCC_EDEADLINE;
    } else if (!rl->timer_reserved) {
        rc = gocc__timer_reserve(); /* kept for the limiter's life */
        rl->timer_reserved = rc == 0;
    }
    if (rc != 0) {
        gocc__unlock(&rl->mu);
        return rc == 1 ? 0 : rc;
    }
    gocc__waitrec rec = {.w = w, .n = n};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&rl->head, &rl->tail, &rec);
    rl->queued += n;
    if (rl->head == &rec) rearm_locked(rl, now); /* we are the head: time us */
    gocc__unlock(&rl->mu);

    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_SLEEP, rl, n);
    if (r == 0) return 0; /* granted */

    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&rl->mu);
    if (rec.queued) { /* give the reservation back: nothing was taken */
        bool was_head = rl->head == &rec;
        gocc__waitrec_unlink(&rl->head, &rl->tail, &rec);
        rl->queued -= n;
        now = gocc_now();
        advance_locked(rl, now);
        if (was_head) { /* the next one may fit now, or come due sooner */
            grant_locked(rl, &wake);
            rearm_locked(rl, now);
        }
    }
    gocc__unlock(&rl->mu);
    gocc__wakeq_wake_all(&wake);
    return r;
}
