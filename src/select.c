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

int gocc__select(gocc_case_t *cases, size_t n, gocc_ctx_t *ctx, bool block, int64_t deadline,
                 int reason) {
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
    size_t total = n + (done != NULL);

    /* Storage: scases, poll order, lock order, sudogs. */
    scase sc_stack[SELECT_STACK_CASES + 1];
    size_t order_stack[SELECT_STACK_CASES + 1];
    gocc_chan_t *locks_stack[SELECT_STACK_CASES + 1];
    gocc__sudog sg_stack[SELECT_STACK_CASES + 1];
    scase *sc = sc_stack;
    size_t *order = order_stack;
    gocc_chan_t **locks = locks_stack;
    gocc__sudog *sg = sg_stack;
    void *heap = NULL;
    if (total > GOCC_ARRAY_SIZE(sc_stack)) {
        size_t each = sizeof *sc + sizeof *order + sizeof *locks + sizeof *sg;
        heap = gocc__malloc(total * each);
        if (heap == NULL) return GOCC_ENOMEM;
        sg = heap; /* strictest alignment first */
        sc = (scase *)(sg + total);
        order = (size_t *)(sc + total);
        locks = (gocc_chan_t **)(order + total);
    }

    size_t nlocks = 0;
    for (size_t i = 0; i < n; i++) {
        sc[i] = (scase){cases[i].ch, cases[i].dir, cases[i].elem};
        if (cases[i].dir == GOCC_SEND && cases[i].ch != NULL && cases[i].elem == NULL &&
            cases[i].ch->elem_size != 0) {
            gocc__free(heap);
            return GOCC_EINVAL;
        }
    }
    if (done != NULL) sc[n] = (scase){done, GOCC_RECV, NULL};
    for (size_t i = 0; i < total; i++) {
        if (sc[i].ch != NULL) locks[nlocks++] = sc[i].ch;
        /* Poll order: a uniform random permutation (Fisher-Yates). */
        size_t j = total > 1 ? gocc__rand() % (i + 1) : 0;
        order[i] = order[j];
        order[j] = i;
    }
    sort_chans(locks, nlocks);
    size_t u = 0; /* drop duplicates: each channel is locked once */
    for (size_t i = 0; i < nlocks; i++)
        if (u == 0 || locks[u - 1] != locks[i]) locks[u++] = locks[i];
    nlocks = u;

    if (nlocks == 0 && deadline < 0) {
        /* Nothing can ever proceed: no channel, no context, no timeout. */
        gocc__free(heap);
        return block ? GOCC_EINVAL : GOCC_EAGAIN;
    }
    int reserved = 0;
    if (block && deadline >= 0) {
        int rc = gocc__timer_reserve();
        if (rc != 0) {
            gocc__free(heap);
            return rc;
        }
        reserved = 1;
    }

    /* 1. Poll. */
    lock_all(locks, nlocks);
    for (size_t k = 0; k < total; k++) {
        size_t i = order[k];
        if (sc[i].ch == NULL) continue;
        gocc__waiter *wake = NULL;
        bool ok = false;
        if (!gocc__chan_poll_locked(sc[i].ch, sc[i].dir, sc[i].elem, &ok, &wake)) continue;
        unlock_all(locks, nlocks);
        if (wake != NULL) gocc__wake(wake);
        if (reserved) gocc__timer_unreserve();
        gocc__free(heap);
        if (i == n) return gocc_ctx_err(ctx); /* done channel closed */
        cases[i].ok = ok;
        return (int)i;
    }
    if (!block) {
        unlock_all(locks, nlocks);
        gocc__free(heap);
        return GOCC_EAGAIN;
    }

    /* 2. Queue a sudog on every channel and park. In poll order, so that
     * among several cases on one channel the parked choice is random too. */
    gocc__waiter_arm(w);
    for (size_t k = 0; k < total; k++) {
        size_t i = order[k];
        sg[i] = (gocc__sudog){.w = w, .ch = sc[i].ch, .elem = sc[i].elem, .case_index = (int)i};
        if (sc[i].ch == NULL) continue;
        gocc__waitq_push(sc[i].dir == GOCC_SEND ? &sc[i].ch->sendq : &sc[i].ch->recvq, &sg[i]);
    }
    record_park(w, reason, cases, n, ctx, done != NULL, deadline);
    unlock_all(locks, nlocks);

    gocc__timer_entry timeout;
    if (reserved) {
        gocc__timer_init(&timeout, timeout_fire, w);
        gocc__timer_add(&timeout, deadline, 0);
    }
    gocc__park(w);
    gocc__obs_unpark(w);
    if (reserved) {
        gocc__timer_del_sync(&timeout); /* its callback is done with w */
        gocc__timer_unreserve();
    }

    /* 3. Dequeue the losers. The winner was unlinked by its claimer. */
    gocc__sudog *win = w->winner;
    bool others = false;
    for (size_t i = 0; i < total && !others; i++) others = sc[i].ch != NULL && &sg[i] != win;
    if (others) {
        lock_all(locks, nlocks);
        for (size_t i = 0; i < total; i++) {
            if (sg[i].queued)
                gocc__waitq_remove(sc[i].dir == GOCC_SEND ? &sc[i].ch->sendq : &sc[i].ch->recvq,
                                   &sg[i]);
        }
        unlock_all(locks, nlocks);
    }

    int result; /* read win before its storage may be freed */
    if (win == GOCC__WINNER_TIMEOUT) {
        result = GOCC__TIMED_OUT; /* not GOCC_EAGAIN: that is "no timer" above */
    } else if ((size_t)win->case_index == n) {
        result = gocc_ctx_err(ctx);
    } else {
        result = win->case_index;
        cases[result].ok = win->ok;
    }
    gocc__free(heap);
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
