/*
 * chan.c - channels: a ring buffer of elem_size slots behind one lock, with
 * FIFO queues of parked senders and receivers.
 *
 * Invariants (as in Go's runtime/chan.go):
 *  - At least one of sendq and recvq is empty, except for sudogs whose
 *    waiter was already claimed elsewhere (a select that won on another
 *    channel); those are skipped and unlinked by whoever meets them.
 *  - For a buffered channel: count > 0 implies recvq has no live waiter;
 *    count < cap implies sendq has no live waiter.
 *  - A value is never lost or duplicated: it is either in the buffer, in a
 *    blocked sender's source (while its sudog is queued), or in exactly one
 *    receiver's destination.
 *
 * Who wakes whom:
 *  - A sender that finds a parked receiver copies straight into the
 *    receiver's destination and wakes that one thread (direct handoff).
 *  - A receiver that finds a parked sender takes the value (unbuffered), or
 *    takes the oldest buffered value and moves the sender's value into the
 *    freed slot (full buffer), keeping FIFO with one wake.
 *  - close claims every parked waiter, zero-fills receivers' destinations
 *    and wakes them all after dropping the lock.
 *  Every wake happens after ch->mu is released.
 *
 * Memory order: every transfer happens under ch->mu and the wake is a
 * release/acquire pair, so a send happens before the matching receive
 * completes and a close before a receive that observes it.
 *
 * The blocking paths (a wait is needed) go through the select engine
 * (select.c); the hot paths here are one uncontended lock and a memcpy, and
 * failing try_* calls return without the lock when the answer is plain.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <stdalign.h>

/* ---- wait queues (caller holds the channel lock) ---- */

void gocc__waitq_push(gocc__waitq *q, gocc__sudog *s) {
    s->next = NULL;
    s->prev = q->last;
    if (q->last)
        q->last->next = s;
    else
        atomic_store_explicit(&q->first, s, memory_order_relaxed);
    q->last = s;
    s->queued = true;
}

void gocc__waitq_remove(gocc__waitq *q, gocc__sudog *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        atomic_store_explicit(&q->first, s->next, memory_order_relaxed);
    if (s->next)
        s->next->prev = s->prev;
    else
        q->last = s->prev;
    s->prev = s->next = NULL;
    s->queued = false;
}

/* The first waiter that can still be claimed, claimed and unlinked; stale
 * sudogs (their waiter already claimed elsewhere) are unlinked on the way. */
static gocc__sudog *waitq_take(gocc__waitq *q) {
    gocc__sudog *s;
    while ((s = atomic_load_explicit(&q->first, memory_order_relaxed)) != NULL) {
        gocc__waitq_remove(q, s);
        if (gocc__waiter_claim(s->w)) return s;
    }
    return NULL;
}

static inline bool waitq_empty(gocc__waitq *q) {
    return atomic_load_explicit(&q->first, memory_order_seq_cst) == NULL;
}

static inline void *slot(gocc_chan_t *ch, size_t i) { return ch->buf + i * ch->elem_size; }

/* The common element sizes copy with one load and store each (a memcpy of
 * a constant size compiles to that); others call memcpy. */
static inline void copy_elem(gocc_chan_t *ch, void *dst, const void *src) {
    if (dst == NULL) return;
    switch (ch->elem_size) {
    case 0: return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, ch->elem_size); return;
    }
}

static inline void zero_elem(gocc_chan_t *ch, void *dst) {
    if (dst != NULL && ch->elem_size != 0) memset(dst, 0, ch->elem_size);
}

/* Hand sudog s to its waiter: the claimer records the result. */
static inline gocc__waiter *complete(gocc__sudog *s, bool ok) {
    s->ok = ok;
    s->w->winner = s;
    return s->w;
}

/* ---- construction and references ---- */

gocc_chan_t *gocc_chan_new(size_t elem_size, size_t capacity) {
    size_t head = (sizeof(gocc_chan_t) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (capacity != 0 && elem_size > (SIZE_MAX - head) / capacity) {
        errno = EINVAL;
        return NULL;
    }
    gocc_chan_t *ch = gocc__calloc(1, head + elem_size * capacity);
    if (ch == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&ch->mu, GOCC_LOCK_CHAN);
    atomic_init(&ch->refs, 1);
    ch->elem_size = elem_size;
    ch->cap = capacity;
    ch->buf = (unsigned char *)ch + head;
    gocc__live_add(GOCC__LIVE_CHAN, 1);
    return ch;
}

/* A channel whose last reference is gone keeps GOCC__RELEASED in refs
 * until malloc reuses the memory (misuse.c). */
_Static_assert(offsetof(struct gocc_chan, refs) >= 32, "refs outlives the free (misuse.c)");
static inline void check_live(gocc_chan_t *ch, const char *call) {
    if (GOCC_UNLIKELY(atomic_load_explicit(&ch->refs, memory_order_relaxed) == GOCC__RELEASED))
        gocc__misuse_released(call, "channel", ch);
}

gocc_chan_t *gocc_chan_retain(gocc_chan_t *ch) {
    if (ch != NULL && GOCC_UNLIKELY(atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed) ==
                                    GOCC__RELEASED))
        gocc__misuse_released("gocc_chan_retain", "channel", ch);
    return ch;
}

void gocc_chan_release(gocc_chan_t *ch) {
    if (ch == NULL) return;
    size_t old = atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel);
    if (old != 1) {
        if (GOCC_UNLIKELY(old == GOCC__RELEASED))
            gocc__misuse_released("gocc_chan_release", "channel", ch);
        return;
    }
    if (ch->dtor != NULL) { /* the last reference: nobody else can touch the buffer */
        size_t n = atomic_load_explicit(&ch->count, memory_order_relaxed);
        for (size_t i = 0; i < n; i++)
            ch->dtor(ch->buf + ((ch->recvx + i) % ch->cap) * ch->elem_size, ch->dtor_ud);
    }
    gocc__mutex_destroy(&ch->mu);
    gocc__live_add(GOCC__LIVE_CHAN, -1);
    atomic_store_explicit(&ch->refs, GOCC__RELEASED, memory_order_relaxed);
    gocc__free(ch);
}

size_t gocc_chan_len(gocc_chan_t *ch) {
    return ch ? atomic_load_explicit(&ch->count, memory_order_relaxed) : 0;
}

size_t gocc_chan_cap(gocc_chan_t *ch) { return ch ? ch->cap : 0; }

size_t gocc_chan_elem_size(const gocc_chan_t *ch) { return ch ? ch->elem_size : 0; }

int gocc_chan_send_sized(gocc_chan_t *ch, const void *elem, size_t size, gocc_ctx_t *ctx) {
    if (ch == NULL || size != ch->elem_size) return GOCC_EINVAL;
    return gocc_chan_send(ch, elem, ctx);
}

int gocc_chan_recv_sized(gocc_chan_t *ch, void *out, size_t size, gocc_ctx_t *ctx) {
    if (ch == NULL || size != ch->elem_size) return GOCC_EINVAL;
    return gocc_chan_recv(ch, out, ctx);
}

int gocc_chan_set_elem_destructor(gocc_chan_t *ch, void (*dtor)(void *, void *), void *ud) {
    if (ch == NULL) return GOCC_EINVAL;
    gocc__lock(&ch->mu);
    ch->dtor = dtor;
    ch->dtor_ud = ud;
    gocc__unlock(&ch->mu);
    return 0;
}

/* ---- the one locked step every operation shares ---- */

/* Try case (dir, elem) on ch; caller holds ch->mu. Returns true when the case
 * proceeded, with *ok = false when it did so because ch is closed. A waiter
 * that must be woken is stored in *wake (the caller wakes it after unlock).
 * Always inlined: chan_try's copies are specialised by direction, which is
 * most of the uncontended send and receive; select calls the wrapper. */
static inline __attribute__((always_inline)) bool poll_locked(gocc_chan_t *ch, int dir, void *elem,
                                                              bool *ok, gocc__waiter **wake) {
    gocc__assert_held(&ch->mu);
    gocc__sudog *s;
    size_t count = atomic_load_explicit(&ch->count, memory_order_relaxed);
    if (dir == GOCC_RECV) {
        if ((s = waitq_take(&ch->sendq)) != NULL) {
            if (ch->cap == 0) {
                copy_elem(ch, elem, s->elem);
            } else {
                /* Full buffer: take the oldest, append the sender's value in
                 * the freed slot (recvx == sendx when full). */
                copy_elem(ch, elem, slot(ch, ch->recvx));
                copy_elem(ch, slot(ch, ch->recvx), s->elem);
                if (++ch->recvx == ch->cap) ch->recvx = 0;
                ch->sendx = ch->recvx;
            }
            *wake = complete(s, true);
            *ok = true;
            return true;
        }
        if (count > 0) {
            copy_elem(ch, elem, slot(ch, ch->recvx));
            if (++ch->recvx == ch->cap) ch->recvx = 0;
            atomic_store_explicit(&ch->count, count - 1, memory_order_relaxed);
            *ok = true;
            return true;
        }
        if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
            zero_elem(ch, elem);
            *ok = false;
            return true;
        }
        return false;
    }
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        *ok = false;
        return true;
    }
    if ((s = waitq_take(&ch->recvq)) != NULL) {
        copy_elem(ch, s->elem, elem);
        *wake = complete(s, true);
        *ok = true;
        return true;
    }
    if (count < ch->cap) {
        copy_elem(ch, slot(ch, ch->sendx), elem);
        if (++ch->sendx == ch->cap) ch->sendx = 0;
        atomic_store_explicit(&ch->count, count + 1, memory_order_relaxed);
        *ok = true;
        return true;
    }
    return false;
}

bool gocc__chan_poll_locked(gocc_chan_t *ch, int dir, void *elem, bool *ok, gocc__waiter **wake) {
    return poll_locked(ch, dir, elem, ok, wake);
}

/* One non-blocking attempt under the lock: 0, GOCC_ECLOSED or GOCC_EAGAIN. */
static inline __attribute__((always_inline)) int chan_try(gocc_chan_t *ch, int dir, void *elem) {
    gocc__waiter *wake = NULL;
    bool ok = false;
    gocc__lock(&ch->mu);
    bool done = poll_locked(ch, dir, elem, &ok, &wake);
    gocc__unlock(&ch->mu);
    if (wake != NULL) gocc__wake(wake);
    if (!done) return GOCC_EAGAIN;
    return ok ? 0 : GOCC_ECLOSED;
}

/* Lock-free "would block" checks (Go's fast path). Each reads the state in
 * an order that proves a moment when the operation could not proceed:
 * closed never goes back to false, so "open, then full" means the channel
 * was open and full at the second read; "empty, then open" means it was
 * empty and open at the first. */
static inline bool send_would_block(gocc_chan_t *ch) {
    if (atomic_load_explicit(&ch->closed, memory_order_seq_cst)) return false;
    if (ch->cap == 0) return waitq_empty(&ch->recvq);
    return atomic_load_explicit(&ch->count, memory_order_seq_cst) == ch->cap;
}

static inline bool recv_would_block(gocc_chan_t *ch) {
    bool empty = ch->cap == 0 ? waitq_empty(&ch->sendq)
                              : atomic_load_explicit(&ch->count, memory_order_seq_cst) == 0;
    return empty && !atomic_load_explicit(&ch->closed, memory_order_seq_cst);
}

/* ---- public operations ---- */

static int chan_block(gocc_chan_t *ch, int dir, void *elem, gocc_ctx_t *ctx) {
    gocc_case_t c = {.ch = ch, .dir = dir, .elem = elem};
    int r = gocc__select(&c, 1, ctx, true, -1,
                         dir == GOCC_SEND ? GOCC_WAIT_CHAN_SEND : GOCC_WAIT_CHAN_RECV);
    if (r == 0) return c.ok ? 0 : GOCC_ECLOSED;
    return r;
}

int gocc_chan_send(gocc_chan_t *ch, const void *elem, gocc_ctx_t *ctx) {
    int err = ctx != NULL ? gocc_ctx_err(ctx) : 0;
    if (err != 0) return err; /* a context already done wins */
    if (ch != NULL) {
        check_live(ch, "gocc_chan_send");
        if (elem == NULL && ch->elem_size != 0) return GOCC_EINVAL;
        int r = chan_try(ch, GOCC_SEND, (void *)elem);
        if (r != GOCC_EAGAIN) return r;
    }
    return chan_block(ch, GOCC_SEND, (void *)elem, ctx);
}

int gocc_chan_recv(gocc_chan_t *ch, void *out, gocc_ctx_t *ctx) {
    int err = ctx != NULL ? gocc_ctx_err(ctx) : 0;
    if (err != 0) return err;
    if (ch != NULL) {
        int r = chan_try(ch, GOCC_RECV, out);
        if (r != GOCC_EAGAIN) return r;
    }
    return chan_block(ch, GOCC_RECV, out, ctx);
}

int gocc_chan_try_send(gocc_chan_t *ch, const void *elem) {
    if (ch == NULL) return GOCC_EAGAIN;
    if (elem == NULL && ch->elem_size != 0) return GOCC_EINVAL;
    if (send_would_block(ch)) return GOCC_EAGAIN;
    return chan_try(ch, GOCC_SEND, (void *)elem);
}

int gocc_chan_try_recv(gocc_chan_t *ch, void *out) {
    if (ch == NULL) return GOCC_EAGAIN;
    if (recv_would_block(ch)) return GOCC_EAGAIN;
    return chan_try(ch, GOCC_RECV, out);
}

static GOCC_NOINLINE int try_case_locked(gocc_case_t *c) {
    int r = chan_try(c->ch, c->dir, c->elem);
    if (r == GOCC_EAGAIN) return r;
    c->ok = r == 0;
    return 0;
}

/* A one-case select_try (Go compiles `select { case ...: default: }` to the
 * same non-blocking operation): 0 with c->ok set when the case proceeded,
 * GOCC_EAGAIN without taking the lock when it plainly would block (the
 * locked attempt is out of line, so this check saves no registers). */
int gocc__chan_try_case(gocc_case_t *c) {
    gocc_chan_t *ch = c->ch;
    if (ch == NULL) return GOCC_EAGAIN;
    if (c->dir == GOCC_SEND) {
        if (c->elem == NULL && ch->elem_size != 0) return GOCC_EINVAL;
        if (send_would_block(ch)) return GOCC_EAGAIN;
    } else if (recv_would_block(ch)) {
        return GOCC_EAGAIN;
    }
    return try_case_locked(c);
}

int gocc_chan_close(gocc_chan_t *ch) {
    if (ch == NULL) return GOCC_EINVAL;
    check_live(ch, "gocc_chan_close");
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__sudog *s;
    gocc__lock(&ch->mu);
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        gocc__unlock(&ch->mu);
        return GOCC_ECLOSED;
    }
    atomic_store_explicit(&ch->closed, true, memory_order_seq_cst);
    GOCC_PROBE1(chan_close, (uintptr_t)ch);
    while ((s = waitq_take(&ch->recvq)) != NULL) {
        zero_elem(ch, s->elem);
        gocc__wakeq_add(&wake, complete(s, false));
    }
    while ((s = waitq_take(&ch->sendq)) != NULL) /* values stay undelivered */
        gocc__wakeq_add(&wake, complete(s, false));
    gocc__unlock(&ch->mu);
    gocc__wakeq_wake_all(&wake);
    return 0;
}
