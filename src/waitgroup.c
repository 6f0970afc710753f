/*
 * waitgroup.c - gocc_waitgroup_t (Go's sync.WaitGroup, with a context on
 * wait) and gocc_once_t (sync.Once / OnceValue): value types that live on
 * the caller's stack or in static storage.
 *
 * Both keep everything in one state word, changed with __atomic builtins
 * (GNU C; the public header stays plain C/C++ without _Atomic): a lock bit
 * guarding the list of parked waiters, plus the counter (waitgroup) or the
 * phase (once). The lock is a spin lock (critical sections are a handful of
 * stores; a waiter yields the CPU after a short spin).
 *
 * Why not a pthread mutex: a waitgroup on the stack may go out of scope the
 * moment wait returns 0 (gocc.h). The last done must therefore touch nothing
 * after the store that makes the counter zero - and a mutex unlock touches
 * the mutex after releasing it. Here the final store of the state word both
 * releases the lock and publishes zero; waiters found on the list were
 * claimed under the lock and are woken through their own records (on their
 * own stacks), never through the waitgroup.
 *
 * Who wakes whom: the done that brings the counter to zero claims every
 * parked waiter and wakes each. A waiter whose context wins unlinks its own
 * record under the lock (or finds it already taken and does nothing).
 */
#include "gocc-internal.h"

#include <sched.h>

/* ---- the state word's lock bit ---- */

#define WG_LOCK 1u
#define WG_WAITERS 2u
#define WG_SHIFT 2
#define WG_MAX ((int64_t)(UINT64_MAX >> WG_SHIFT)) /* what the state word holds */

/* count + delta if it stays within 0..WG_MAX, else -1 (refused). */
static int64_t wg_next(int64_t count, int64_t delta) {
    int64_t next;
    if (__builtin_add_overflow(count, delta, &next) || next < 0 || next > WG_MAX) return -1;
    return next;
}

/* Spin until the lock bit is ours; returns the state seen (without it).
 * The lock has rank GOCC_LOCK_WAITGROUP (a leaf): the witness is told. */
static uint64_t state_lock64(uint64_t *state) {
    gocc__witness_acquire(state, GOCC_LOCK_WAITGROUP);
    for (int spins = 0;; spins++) {
        uint64_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
        if (!(s & WG_LOCK) && __atomic_compare_exchange_n(state, &s, s | WG_LOCK, true,
                                                          __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return s;
        if (spins > 64) sched_yield();
    }
}

static uint32_t state_lock32(uint32_t *state) {
    gocc__witness_acquire(state, GOCC_LOCK_WAITGROUP);
    for (int spins = 0;; spins++) {
        uint32_t s = __atomic_load_n(state, __ATOMIC_RELAXED);
        if (!(s & WG_LOCK) && __atomic_compare_exchange_n(state, &s, s | WG_LOCK, true,
                                                          __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return s;
        if (spins > 64) sched_yield();
    }
}

/* ---- WaitGroup ---- */

/* Publish count and the waiters bit; drops the lock. The last access. */
static void wg_unlock(gocc_waitgroup_t *wg, int64_t count) {
    uint64_t s = (uint64_t)count << WG_SHIFT | (wg->waiters_ ? WG_WAITERS : 0);
    gocc__witness_release(&wg->state_, GOCC_LOCK_WAITGROUP);
    __atomic_store_n(&wg->state_, s, __ATOMIC_RELEASE);
}

int gocc_waitgroup_add(gocc_waitgroup_t *wg, int64_t delta) {
    if (wg == NULL) return GOCC_EINVAL;
    /* Fast path: no waiters, not locked, not reaching below zero. */
    uint64_t s = __atomic_load_n(&wg->state_, __ATOMIC_RELAXED);
    while (!(s & (WG_LOCK | WG_WAITERS))) {
        int64_t count = wg_next((int64_t)(s >> WG_SHIFT), delta);
        if (count < 0) break;
        if (__atomic_compare_exchange_n(&wg->state_, &s, (uint64_t)count << WG_SHIFT, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return 0;
    }
    s = state_lock64(&wg->state_);
    int64_t count = wg_next((int64_t)(s >> WG_SHIFT), delta);
    if (count < 0) { /* below zero or beyond what the counter holds */
        wg_unlock(wg, (int64_t)(s >> WG_SHIFT));
        return GOCC_EINVAL;
    }
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    if (count == 0) {
        gocc__waitrec *head = wg->waiters_;
        gocc__waitrec_take_all(&head, NULL, &wake);
        wg->waiters_ = head;
    }
    wg_unlock(wg, count); /* from here on wg may be gone */
    gocc__wakeq_wake_all(&wake);
    return 0;
}

void gocc_waitgroup_done(gocc_waitgroup_t *wg) { (void)gocc_waitgroup_add(wg, -1); }

int gocc_waitgroup_wait(gocc_waitgroup_t *wg, gocc_ctx_t *ctx) {
    if (wg == NULL) return GOCC_EINVAL;
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err; /* a context already done wins */
    uint64_t s = __atomic_load_n(&wg->state_, __ATOMIC_ACQUIRE);
    if (s >> WG_SHIFT == 0 && !(s & WG_LOCK)) return 0;
    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;

    s = state_lock64(&wg->state_);
    int64_t count = (int64_t)(s >> WG_SHIFT);
    if (count == 0) {
        wg_unlock(wg, 0);
        return 0;
    }
    gocc__waitrec rec = {.w = w};
    gocc__waiter_arm(w);
    gocc__waitrec *head = wg->waiters_;
    gocc__waitrec_push(&head, NULL, &rec);
    wg->waiters_ = head;
    wg_unlock(wg, count);

    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_WAITGROUP, wg, 0);
    if (r != 0) { /* the context won: take our record back */
        s = state_lock64(&wg->state_);
        if (rec.queued) {
            head = wg->waiters_;
            gocc__waitrec_unlink(&head, NULL, &rec);
            wg->waiters_ = head;
        }
        wg_unlock(wg, (int64_t)(s >> WG_SHIFT));
    }
    return r;
}

/* ---- Once ---- */

#define ONCE_RUNNING 4u
#define ONCE_DONE 8u

/* Store the state word, which drops the lock bit. */
static void once_unlock(gocc_once_t *o, uint32_t s) {
    gocc__witness_release(&o->state_, GOCC_LOCK_WAITGROUP);
    __atomic_store_n(&o->state_, s, __ATOMIC_RELEASE);
}

int gocc_once_do(gocc_once_t *o, int (*fn)(void *arg), void *arg) {
    if (o == NULL || fn == NULL) return GOCC_EINVAL;
    /* Fast path: one acquire load (result_ was written before DONE). */
    if (__atomic_load_n(&o->state_, __ATOMIC_ACQUIRE) & ONCE_DONE) return o->result_;

    gocc__waiter *w = gocc__self_try();
    uint32_t s = state_lock32(&o->state_);
    if (s & ONCE_DONE) {
        once_unlock(o, s);
        return o->result_;
    }
    if (s & ONCE_RUNNING) { /* wait for the first caller */
        if (w == NULL) {
            once_unlock(o, s);
            return GOCC_ENOMEM;
        }
        gocc__waitrec rec = {.w = w};
        gocc__waiter_arm(w);
        gocc__waitrec *head = o->waiters_;
        gocc__waitrec_push(&head, NULL, &rec);
        o->waiters_ = head;
        once_unlock(o, s);
        (void)gocc__wait_armed(w, NULL, NULL, GOCC_WAIT_ONCE, o, 0);
        return o->result_; /* written before our wake */
    }
    once_unlock(o, s | ONCE_RUNNING);

    int r = fn(arg);

    s = state_lock32(&o->state_);
    o->result_ = r;
    gocc__waitrec *head = o->waiters_;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__waitrec_take_all(&head, NULL, &wake);
    o->waiters_ = NULL;
    once_unlock(o, ONCE_DONE);
    gocc__wakeq_wake_all(&wake);
    return r;
}
