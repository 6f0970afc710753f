/*
 * sem.c - the weighted semaphore (golang.org/x/sync/semaphore).
 *
 * Invariants (under s->mu):
 *  - 0 <= cur <= size: weight currently held.
 *  - Waiters are served strictly in arrival order: a request is granted
 *    only when it is at the head and fits, so a large request at the head
 *    is never overtaken by later small ones (no starvation), and
 *    try_acquire fails while anyone waits.
 *  - Weight is granted to a waiter only together with a successful claim of
 *    its waiter record; a waiter whose context won was never granted
 *    anything, so a cancelled acquire leaves no weight taken.
 *
 * Who wakes whom: release (and a cancelled waiter that was at the head,
 * since it may have been holding others up) grants weight to as many
 * waiters from the head as now fit, and wakes each after dropping s->mu.
 *
 * The uncontended acquire/release pair is one lock round trip each, with no
 * allocation. A request larger than the size is not queued (it could only
 * block everyone behind it): it waits for its context alone.
 */
#include "gocc-internal.h"

#include <errno.h>

struct gocc_sem {
    gocc__mutex mu;
    int64_t size;
    int64_t cur;                /* under mu */
    gocc__waitrec *head, *tail; /* FIFO of waiters, under mu */
};

gocc_sem_t *gocc_sem_new(int64_t size) {
    if (size < 0) {
        errno = EINVAL;
        return NULL;
    }
    gocc_sem_t *s = gocc__calloc(1, sizeof *s);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&s->mu, GOCC_LOCK_SEM);
    s->size = size;
    return s;
}

void gocc_sem_free(gocc_sem_t *s) {
    if (s == NULL) return;
    gocc__mutex_destroy(&s->mu);
    gocc__free(s);
}

/* Grant weight to waiters from the head while they fit; caller holds mu.
 * The claimed ones go on @p wake. */
static void grant_locked(gocc_sem_t *s, gocc__wakeq *wake) {
    gocc__assert_held(&s->mu);
    gocc__waitrec *r;
    while ((r = s->head) != NULL) {
        if (s->size - s->cur < r->n) break; /* the head waits: so does everyone */
        gocc__waitrec_unlink(&s->head, &s->tail, r);
        if (!gocc__waiter_claim(r->w)) continue; /* its context won: skip it */
        s->cur += r->n;
        gocc__wakeq_signal(wake, r->w);
    }
}

static bool take_if_free_locked(gocc_sem_t *s, int64_t n) {
    gocc__assert_held(&s->mu);
    if (s->head != NULL || s->size - s->cur < n) return false;
    s->cur += n;
    return true;
}

int gocc_sem_acquire(gocc_sem_t *s, int64_t n, gocc_ctx_t *ctx) {
    if (s == NULL || n < 0) return GOCC_EINVAL;
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err; /* a context already done wins */

    gocc__lock(&s->mu);
    bool got = take_if_free_locked(s, n);
    gocc__unlock(&s->mu);
    if (got) return 0;

    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    if (n > s->size) { /* can never fit: wait for the context alone */
        if (done == NULL) return GOCC_EINVAL;
        return gocc__select(NULL, 0, ctx, true, -1, GOCC_WAIT_SEM_ACQUIRE);
    }
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;

    gocc__lock(&s->mu);
    if (take_if_free_locked(s, n)) {
        gocc__unlock(&s->mu);
        return 0;
    }
    gocc__waitrec rec = {.w = w, .n = n};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&s->head, &s->tail, &rec);
    gocc__unlock(&s->mu);

    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_SEM_ACQUIRE, s, n);
    if (r == 0) return 0; /* granted by a releaser */

    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&s->mu);
    if (rec.queued) {
        bool was_head = s->head == &rec;
        gocc__waitrec_unlink(&s->head, &s->tail, &rec);
        if (was_head) grant_locked(s, &wake); /* we may have held others up */
    }
    gocc__unlock(&s->mu);
    gocc__wakeq_wake_all(&wake);
    return r;
}

bool gocc_sem_try_acquire(gocc_sem_t *s, int64_t n) {
    if (s == NULL || n < 0) return false;
    gocc__lock(&s->mu);
    bool got = take_if_free_locked(s, n);
    gocc__unlock(&s->mu);
    return got;
}

int gocc_sem_release(gocc_sem_t *s, int64_t n) {
    if (s == NULL || n < 0) return GOCC_EINVAL;
    gocc__lock(&s->mu);
    if (n > s->cur) {
        gocc__unlock(&s->mu);
        return GOCC_EINVAL; /* more than held: nothing changes */
    }
    s->cur -= n;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    grant_locked(s, &wake);
    gocc__unlock(&s->mu);
    gocc__wakeq_wake_all(&wake);
    return 0;
}
