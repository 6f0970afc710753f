/*
 * select.c - Go's select, and the engine every blocking wait goes through
 * (send, recv, sleep): one waiter record, one sudog per case, the first
 * channel to claim the waiter wins.
 *
 * Protocol (Go's runtime/select.go):
 *  1. Poll the cases in a random order (a uniform choice among the ready
 *     ones) with every involved channel locked, in address order, each
 *     channel once however many cases name it.
 *  2. Nothing ready: arm the thread's waiter, queue one sudog on every
 *     case's channel (and one receive sudog on the context's done channel),
 *     unlock in reverse order, arm the timeout if any, and park.
 *  3. A waker claims the waiter with one atomic compare-exchange (the claim
 *     decides the winner: a channel operation, close, the context, or the
 *     timeout), completes that one case, and wakes the thread after dropping
 *     its lock. Losing sudogs are unlinked: by wakers that meet them, or by
 *     the woken thread, which relocks its channels (same order) to dequeue
 *     whatever is still queued.
 *
 * The context's done channel is just another case, so a cancellation wakes
 * a blocked select at once, never by polling. When that case wins, nothing
 * else happened: the call returns the context's error with no effect.
 *
 * Lock order: channel locks in increasing address; no other lock is taken
 * while they are held (the timer is armed after they are dropped).
 */
#include "gocc-internal.h"

/* Cases handled with stack storage; larger selects allocate. */
#define SELECT_STACK_CASES 8

typedef struct scase {
    gocc_chan_t *ch;
    int dir;
    void *elem;
} scase;

static void timeout_fire(gocc__timer_entry *e, int64_t now) {
    (void)now;
    gocc__waiter *w = e->arg;
    if (gocc__waiter_claim(w)) {
        w->winner = GOCC__WINNER_TIMEOUT;
        gocc__wake(w);
    }
}

static void sort_chans(gocc_chan_t **a, size_t n) {
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is small */
        gocc_chan_t *x = a[i];
        size_t j = i;
        while (j > 0 && (uintptr_t)a[j - 1] > (uintptr_t)x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void lock_all(gocc_chan_t **locks, size_t n) {
    for (size_t i = 0; i < n; i++) gocc__lock(&locks[i]->mu);
}

static void unlock_all(gocc_chan_t **locks, size_t n) {
    for (size_t i = n; i-- > 0;) gocc__unlock(&locks[i]->mu);
}

/* What the dump shows of this wait (the channel of a plain send/recv, the
 * number of select cases), written with the channel locks still held so
 * len is what the parker saw. */
static void record_park(gocc__waiter *w, int reason, const gocc_case_t *cases, size_t n,
                        gocc_ctx_t *ctx, bool has_ctx, int64_t timeout) {
    const void *obj = NULL;
    int64_t detail = (int64_t)n, len = 0;
    if ((reason == GOCC_WAIT_CHAN_RECV || reason == GOCC_WAIT_CHAN_SEND) && n == 1 &&
        cases[0].ch != NULL) {
        gocc_chan_t *ch = cases[0].ch;
        obj = ch;
        detail = (int64_t)ch->cap;
        len = (int64_t)atomic_load_explicit(&ch->count, memory_order_relaxed);
    }
    int64_t deadline = INT64_MAX;
    if (has_ctx) (void)gocc_ctx_deadline(ctx, &deadline);
    if (timeout >= 0 && timeout < deadline) deadline = timeout;
    gocc__obs_park(w, reason, obj, detail, len, deadline, has_ctx);
}

/* One select's working set: the cases (the context's done channel is case
 * n), the poll order, the channels in lock order (each once) and a sudog
 * per case. On the caller's stack up to SELECT_STACK_CASES cases, else in
 * one allocation (heap). */
typedef struct sel {
    size_t n, total, nlocks;
    scase *sc;
    size_t *order;
    gocc_chan_t **locks;
    gocc__sudog *sg;
    void *heap;
    scase sc_stack[SELECT_STACK_CASES + 1];
    size_t order_stack[SELECT_STACK_CASES + 1];
    gocc_chan_t *locks_stack[SELECT_STACK_CASES + 1];
    gocc__sudog sg_stack[SELECT_STACK_CASES + 1];
} sel;

/* Set up @p s for cases[0..n) and @p done (may be NULL): storage, send
 * values checked, a uniform random poll order (Fisher-Yates), the lock
 * order (address order, duplicates dropped). 0, GOCC_EINVAL (a send of a
 * value-carrying channel without a value) or GOCC_ENOMEM; on failure
 * nothing is held. */
static int sel_prepare(sel *s, const gocc_case_t *cases, size_t n, gocc_chan_t *done) {
    s->n = n;
    s->total = n + (done != NULL);
    s->sc = s->sc_stack;
    s->order = s->order_stack;
    s->locks = s->locks_stack;
    s->sg = s->sg_stack;
    s->heap = NULL;
    if (s->total > GOCC_ARRAY_SIZE(s->sc_stack)) {
        size_t each = sizeof *s->sc + sizeof *s->order + sizeof *s->locks + sizeof *s->sg;
        s->heap = gocc__malloc(s->total * each);
        if (s->heap == NULL) return GOCC_ENOMEM;
        s->sg = s->heap; /* strictest alignment first */
        s->sc = (scase *)(s->sg + s->total);
        s->order = (size_t *)(s->sc + s->total);
        s->locks = (gocc_chan_t **)(s->order + s->total);
    }
    for (size_t i = 0; i < n; i++) {
        s->sc[i] = (scase){cases[i].ch, cases[i].dir, cases[i].elem};
        if (cases[i].dir == GOCC_SEND && cases[i].ch != NULL && cases[i].elem == NULL &&
            cases[i].ch->elem_size != 0) {
            gocc__free(s->heap);
            return GOCC_EINVAL;
        }
    }
    if (done != NULL) s->sc[n] = (scase){done, GOCC_RECV, NULL};
    size_t nlocks = 0;
    for (size_t i = 0; i < s->total; i++) {
        if (s->sc[i].ch != NULL) s->locks[nlocks++] = s->sc[i].ch;
        size_t j = s->total > 1 ? gocc__rand() % (i + 1) : 0;
        s->order[i] = s->order[j];
        s->order[j] = i;
    }
    sort_chans(s->locks, nlocks);
    size_t u = 0; /* drop duplicates: each channel is locked once */
    for (size_t i = 0; i < nlocks; i++)
        if (u == 0 || s->locks[u - 1] != s->locks[i]) s->locks[u++] = s->locks[i];
    s->nlocks = u;
    return 0;
}

/* Step 1: with every channel locked, try the cases in poll order. The
 * index of the one that proceeded (*ok its result), every lock dropped and
 * its waker's wake done; or -1 with the locks still held. */
static int sel_poll(sel *s, bool *ok) {
    lock_all(s->locks, s->nlocks);
    for (size_t k = 0; k < s->total; k++) {
        size_t i = s->order[k];
        if (s->sc[i].ch == NULL) continue;
        gocc__waiter *wake = NULL;
        if (!gocc__chan_poll_locked(s->sc[i].ch, s->sc[i].dir, s->sc[i].elem, ok, &wake)) continue;
        unlock_all(s->locks, s->nlocks);
        if (wake != NULL) gocc__wake(wake);
        return (int)i;
    }
    return -1;
}

/* Step 2, locks held: queue a sudog on every channel (in poll order, so
 * that among several cases on one channel the parked choice is random
 * too), record the wait, unlock, arm the timeout (@p timed: a reserved
 * timer) and park. Returns the winner once woken: a sudog, or
 * GOCC__WINNER_TIMEOUT. */
static gocc__sudog *sel_park(sel *s, gocc__waiter *w, int reason, const gocc_case_t *cases,
                             gocc_ctx_t *ctx, bool has_ctx, int64_t deadline, bool timed) {
    gocc__waiter_arm(w);
    for (size_t k = 0; k < s->total; k++) {
        size_t i = s->order[k];
        scase *c = &s->sc[i];
        s->sg[i] = (gocc__sudog){.w = w, .ch = c->ch, .elem = c->elem, .case_index = (int)i};
        if (c->ch == NULL) continue;
        gocc__waitq_push(c->dir == GOCC_SEND ? &c->ch->sendq : &c->ch->recvq, &s->sg[i]);
    }
    record_park(w, reason, cases, s->n, ctx, has_ctx, deadline);
    unlock_all(s->locks, s->nlocks);

    gocc__timer_entry timeout;
    if (timed) {
        gocc__timer_init(&timeout, timeout_fire, w);
        gocc__timer_add(&timeout, deadline, 0);
    }
    gocc__park(w);
    gocc__obs_unpark(w);
    if (timed) gocc__timer_del_sync(&timeout); /* its callback is done with w */
    return w->winner;
}

/* Step 3: unlink the losing sudogs still queued (the winner was unlinked
 * by its claimer; wakers unlink the stale ones they meet). */
static void sel_dequeue_losers(sel *s, const gocc__sudog *win) {
    bool others = false;
    for (size_t i = 0; i < s->total && !others; i++)
        others = s->sc[i].ch != NULL && &s->sg[i] != win;
    if (!others) return;
    lock_all(s->locks, s->nlocks);
    for (size_t i = 0; i < s->total; i++) {
        scase *c = &s->sc[i];
        if (s->sg[i].queued)
            gocc__waitq_remove(c->dir == GOCC_SEND ? &c->ch->sendq : &c->ch->recvq, &s->sg[i]);
    }
    unlock_all(s->locks, s->nlocks);
}

/* Not inlined into gocc_select_try: its one-case fast path would pay for
 * this function's frame. */
GOCC_NOINLINE int gocc__select(gocc_case_t *cases, size_t n, gocc_ctx_t *ctx, bool block,
                               int64_t deadline, int reason) {
    if (n > 0 && cases == NULL) return GOCC_EINVAL;
    if (n > (size_t)INT32_MAX - 1) return GOCC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (cases[i].dir != GOCC_RECV && cases[i].dir != GOCC_SEND) return GOCC_EINVAL;

    gocc_chan_t *done = NULL;
    gocc__waiter *w = NULL;
    if (block) {
        int err = gocc_ctx_err(ctx);
        if (err != 0) return err; /* a context already done wins */
        done = gocc__ctx_done_chan(ctx, &err);
        if (err != 0) return err;
        if ((w = gocc__self_try()) == NULL) return GOCC_ENOMEM;
    }
    sel s;
    int rc = sel_prepare(&s, cases, n, done);
    if (rc != 0) return rc;
    if (s.nlocks == 0 && deadline < 0) {
        /* Nothing can ever proceed: no channel, no context, no timeout. */
        gocc__free(s.heap);
        return block ? GOCC_EINVAL : GOCC_EAGAIN;
    }
    bool timed = block && deadline >= 0;
    if (timed && (rc = gocc__timer_reserve()) != 0) {
        gocc__free(s.heap);
        return rc;
    }

    bool ok = false;
    int i = sel_poll(&s, &ok);
    if (i >= 0 || !block) {
        if (i < 0) unlock_all(s.locks, s.nlocks);
        if (timed) gocc__timer_unreserve();
        gocc__free(s.heap);
        if (i < 0) return GOCC_EAGAIN;
        if ((size_t)i == n) return gocc_ctx_err(ctx); /* done channel closed */
        cases[i].ok = ok;
        return i;
    }

    gocc__sudog *win = sel_park(&s, w, reason, cases, ctx, done != NULL, deadline, timed);
    if (timed) gocc__timer_unreserve();
    sel_dequeue_losers(&s, win);

    int result; /* read win before its storage may be freed */
    if (win == GOCC__WINNER_TIMEOUT) {
        result = GOCC__TIMED_OUT; /* not GOCC_EAGAIN: that is "no timer" above */
    } else if ((size_t)win->case_index == n) {
        result = gocc_ctx_err(ctx);
    } else {
        result = win->case_index;
        cases[result].ok = win->ok;
    }
    gocc__free(s.heap);
    return result;
}

int gocc__wait_armed(gocc__waiter *w, gocc_chan_t *done, gocc_ctx_t *ctx, int reason,
                     const void *obj, int64_t detail) {
    gocc__sudog s = {.w = w, .ch = done};
    if (done != NULL) {
        gocc__lock(&done->mu);
        if (atomic_load_explicit(&done->closed, memory_order_relaxed)) {
            gocc__unlock(&done->mu);
            if (gocc__waiter_claim(w)) return gocc_ctx_err(ctx); /* nothing to wait for */
            gocc__park(w); /* a waker claimed first: its wake is coming */
            return 0;
        }
        gocc__waitq_push(&done->recvq, &s);
        gocc__unlock(&done->mu);
    }
    int64_t deadline = INT64_MAX;
    if (done != NULL) (void)gocc_ctx_deadline(ctx, &deadline);
    gocc__obs_park(w, reason, obj, detail, 0, deadline, done != NULL);
    gocc__park(w);
    gocc__obs_unpark(w);
    if (w->winner == &s) return gocc_ctx_err(ctx); /* the closer unlinked s */
    if (done != NULL) {
        gocc__lock(&done->mu);
        if (s.queued) gocc__waitq_remove(&done->recvq, &s);
        gocc__unlock(&done->mu);
    }
    return 0;
}

int gocc_select(gocc_case_t *cases, size_t n, gocc_ctx_t *ctx) {
    return gocc__select(cases, n, ctx, true, -1,
                        n == 0 ? GOCC_WAIT_SELECT_NO_CASES : GOCC_WAIT_SELECT);
}

int gocc_select_try(gocc_case_t *cases, size_t n) {
    if (n == 1 && cases != NULL && (cases[0].dir == GOCC_RECV || cases[0].dir == GOCC_SEND))
        return gocc__chan_try_case(&cases[0]);
    return gocc__select(cases, n, NULL, false, -1, GOCC_WAIT_NONE);
}
