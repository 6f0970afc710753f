/*
 * pubsub.c - publish/subscribe (gocc_pubsub_*): one broadcaster, many
 * subscribers, each a buffered channel of its own. A publish offers the
 * value to every subscriber with gocc_chan_try_send; a subscriber whose
 * buffer is full misses it (its drop count grows), so a slow subscriber
 * never slows the publisher or the others (the lesson's select-with-default).
 *
 * Invariants:
 *  - ps->subs[0..n) are the current subscribers. The broadcaster holds one
 *    reference to each of their channels, and none of them is closed by the
 *    broadcaster while it is in the array.
 *  - A publisher holds ps->lock for reading for its whole pass over the
 *    array; unsubscribe and close remove channels from the array under the
 *    lock held for writing, and only after dropping it close and release
 *    them. So a publisher never sends on a channel the broadcaster has
 *    closed or released, and a value is never lost to a close it raced with:
 *    either it is buffered before the close (and drains), or the publish
 *    that would have sent it no longer sees that subscriber.
 *  - closed (under the lock): no subscribe or publish succeeds once set.
 *
 * Lock order (GOCC_LOCK_RANKS): ps->lock -> ch->mu (try_send under the
 * read lock). Nothing holds a channel lock and then takes ps->lock.
 * Channels are closed (which wakes their blocked receivers) with ps->lock
 * dropped.
 *
 * Publishers run in parallel (read lock); the drop counters are atomics for
 * that reason. On glibc the rwlock prefers writers, so a steady stream of
 * publishers cannot keep unsubscribe or close waiting for ever.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <limits.h>

typedef struct gocc__sub {
    gocc_chan_t *ch;          /* the broadcaster's reference */
    _Atomic uint64_t dropped; /* values it missed: bumped under the read lock */
} gocc__sub;

struct gocc_pubsub {
    gocc__rwlock lock;
    size_t elem_size;
    gocc__sub *subs; /* under lock: changed only with it held for writing */
    size_t n, cap;   /* under lock */
    bool closed;     /* under lock */
};

static void ps_rdlock(gocc_pubsub_t *ps) { gocc__rdlock(&ps->lock); }
static void ps_wrlock(gocc_pubsub_t *ps) { gocc__wrlock(&ps->lock); }
static void ps_unlock(gocc_pubsub_t *ps) { gocc__rwunlock(&ps->lock); }

/* Index of sub in ps->subs, or ps->n. Caller holds the lock. */
static size_t find_locked(gocc_pubsub_t *ps, gocc_chan_t *sub) {
    gocc__assert_rwheld(&ps->lock);
    size_t i = 0;
    while (i < ps->n && ps->subs[i].ch != sub) i++;
    return i;
}

gocc_pubsub_t *gocc_pubsub_new(size_t elem_size) {
    if (elem_size == 0) {
        errno = EINVAL;
        return NULL;
    }
    gocc_pubsub_t *ps = gocc__calloc(1, sizeof *ps);
    if (ps == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_rwlockattr_t attr;
    if (pthread_rwlockattr_init(&attr) != 0) abort();
#if defined(__GLIBC__)
    /* GNU extension (guarded): glibc's default rwlock lets readers overtake
     * a waiting writer, which under constant publishing starves it. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    if (gocc__rwlock_init(&ps->lock, GOCC_LOCK_PUBSUB, &attr) != 0) abort();
    pthread_rwlockattr_destroy(&attr);
    ps->elem_size = elem_size;
    return ps;
}

gocc_chan_t *gocc_pubsub_subscribe(gocc_pubsub_t *ps, size_t buffer) {
    if (ps == NULL || buffer == 0) {
        errno = EINVAL;
        return NULL;
    }
    /* Everything that can fail is done before the broadcaster changes:
     * a failed subscribe leaves it exactly as it was. */
    gocc_chan_t *ch = gocc_chan_new(ps->elem_size, buffer); /* sets errno */
    if (ch == NULL) return NULL;
    int err = 0;
    ps_wrlock(ps);
    if (ps->closed) {
        err = EPIPE;
    } else if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 4;
        gocc__sub *subs =
            cap <= SIZE_MAX / sizeof *subs ? gocc__realloc(ps->subs, cap * sizeof *subs) : NULL;
        if (subs == NULL) {
            err = ENOMEM;
        } else {
            ps->subs = subs;
            ps->cap = cap;
        }
    }
    if (err == 0) {
        gocc__sub *s = &ps->subs[ps->n++];
        s->ch = gocc_chan_retain(ch); /* the broadcaster's reference */
        atomic_init(&s->dropped, 0);
    }
    ps_unlock(ps);
    if (err != 0) {
        gocc_chan_release(ch);
        errno = err;
        return NULL;
    }
    return ch;
}

int gocc_pubsub_publish(gocc_pubsub_t *ps, const void *elem) {
    if (ps == NULL || elem == NULL) return GOCC_EINVAL;
    size_t got = 0;
    ps_rdlock(ps);
    if (ps->closed) {
        ps_unlock(ps);
        return GOCC_ECLOSED;
    }
    for (size_t i = 0; i < ps->n; i++) {
        /* Never blocks. GOCC_EAGAIN: the buffer is full. GOCC_ECLOSED can
         * only mean the subscriber closed its channel itself (we close a
         * channel only after taking it out of the array): it missed the
         * value all the same. */
        if (gocc_chan_try_send(ps->subs[i].ch, elem) == 0)
            got++;
        else
            atomic_fetch_add_explicit(&ps->subs[i].dropped, 1, memory_order_relaxed);
    }
    ps_unlock(ps);
    return got > INT_MAX ? INT_MAX : (int)got;
}

int gocc_pubsub_unsubscribe(gocc_pubsub_t *ps, gocc_chan_t *sub) {
    if (ps == NULL || sub == NULL) return GOCC_EINVAL;
    ps_wrlock(ps);
    size_t i = find_locked(ps, sub);
    if (i == ps->n) {
        ps_unlock(ps);
        return GOCC_EINVAL;
    }
    /* Keep the others in subscription order. */
    memmove(&ps->subs[i], &ps->subs[i + 1], (ps->n - i - 1) * sizeof ps->subs[0]);
    ps->n--;
    ps_unlock(ps);
    /* No publisher can reach sub any more: close it (buffered values stay
     * receivable) and drop the broadcaster's reference. */
    (void)gocc_chan_close(sub); /* GOCC_ECLOSED if the subscriber closed it */
    gocc_chan_release(sub);
    return 0;
}

uint64_t gocc_pubsub_dropped(gocc_pubsub_t *ps, gocc_chan_t *sub) {
    if (ps == NULL || sub == NULL) return 0;
    uint64_t dropped = 0;
    ps_rdlock(ps);
    size_t i = find_locked(ps, sub);
    if (i < ps->n) dropped = atomic_load_explicit(&ps->subs[i].dropped, memory_order_relaxed);
    ps_unlock(ps);
    return dropped;
}

size_t gocc_pubsub_subscribers(gocc_pubsub_t *ps) {
    if (ps == NULL) return 0;
    ps_rdlock(ps);
    size_t n = ps->n;
    ps_unlock(ps);
    return n;
}

int gocc_pubsub_close(gocc_pubsub_t *ps) {
    if (ps == NULL) return GOCC_EINVAL;
    ps_wrlock(ps);
    if (ps->closed) {
        ps_unlock(ps);
        return GOCC_ECLOSED;
    }
    ps->closed = true;
    gocc__sub *subs = ps->subs;
    size_t n = ps->n;
    ps->subs = NULL;
    ps->n = ps->cap = 0;
    ps_unlock(ps);
    /* The array is ours now; no publisher can be looking at it. */
    for (size_t i = 0; i < n; i++) {
        (void)gocc_chan_close(subs[i].ch);
        gocc_chan_release(subs[i].ch);
    }
    gocc__free(subs);
    return 0;
}

void gocc_pubsub_free(gocc_pubsub_t *ps) {
    if (ps == NULL) return;
    (void)gocc_pubsub_close(ps); /* GOCC_ECLOSED when already closed */
    gocc__rwlock_destroy(&ps->lock);
    gocc__free(ps);
}
