/*
 * lockcheck.c - the lock witness: lock contracts checked at run time
 * (GOCC_LOCK_CHECKS builds: debug and sanitizer builds, or meson
 * -Dlock_checks=enabled). Without GOCC_LOCK_CHECKS this file is empty and
 * the lock calls in gocc-internal.h are the bare pthread calls.
 *
 * Each thread keeps what it holds in a small stack (W): one entry per rank
 * held, in increasing rank, because a lock is taken only above every rank
 * held (GOCC_LOCK_RANKS in gocc-internal.h). An entry of a rank that nests
 * (GOCC_LOCK_NEST_ADDR, GOCC_LOCK_NEST_CALLER) counts how many of that rank
 * are held and remembers the last one taken, so a select over many
 * channels or a cancel deep in a context tree needs one entry. So the
 * stack never holds more than GOCC_LOCK_NRANKS entries.
 *
 * A mutex also records its holder (the holder's W, a per-thread address),
 * which answers "held by me" exactly: gocc__assert_held, and the checks on
 * unlock, condvar wait and destroy. During a condvar wait the holder is
 * cleared (another thread takes the lock meanwhile) and set again after;
 * the stack entry stays, as the thread does nothing else while it waits.
 * An rwlock has no single holder (readers share it); its rank nests
 * nowhere, so the stack entry names it exactly.
 *
 * The checks, each a line "libgocc: lock check failed: <check>: ..." on
 * stderr and then abort():
 *  - lock order: taking a lock whose rank is below one held, or any lock
 *    while a leaf is held, or a second lock of a rank that does not nest,
 *    or a channel below the address of the last one taken, or a lock this
 *    thread already holds;
 *  - not held: gocc__assert_held (the top of every *_locked helper), and an
 *    unlock, condvar wait or destroy by a thread that does not hold it
 *    (destroy: while anyone holds it);
 *  - held at park: gocc__assert_no_locks (the entry of gocc__park and
 *    gocc__park_until), naming every rank held.
 */
#include "gocc-internal.h"

#if GOCC_LOCK_CHECKS

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const struct {
    const char *name;
    unsigned rules;
} ranks[GOCC_LOCK_NRANKS] = {[GOCC_LOCK_NONE] = {"none", 0},
#define GOCC__LOCK_INFO(name, text, rules) [GOCC_LOCK_##name] = {text, rules},
                             GOCC_LOCK_RANKS(GOCC__LOCK_INFO)
#undef GOCC__LOCK_INFO
};

typedef struct held {
    const void *lock; /* the last one taken; NULL once that one is dropped first */
    int rank;
    unsigned count; /* locks of this rank held (more than 1 only where it nests) */
} held;

/* Not initial-exec TLS (GOCC_TLS): checked builds only, and a few hundred
 * bytes would strain the static TLS reserve of a dlopen()ed library. */
static _Thread_local struct {
    unsigned n;
    held e[GOCC_LOCK_NRANKS];
} W;

#define ME ((const void *)&W)
#define RELAXED memory_order_relaxed

__attribute__((format(printf, 2, 3))) static GOCC_NOINLINE _Noreturn void
fail(const char *check, const char *fmt, ...) {
    char line[512];
    int k = snprintf(line, sizeof line, "libgocc: lock check failed: %s: ", check);
    if (k < 0 || (size_t)k >= sizeof line) k = 0;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    for (size_t off = 0; off < len;) { /* write(2), not stdio: out before the abort */
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    abort();
}

static const char *rank_name(int rank) {
    return rank > GOCC_LOCK_NONE && rank < GOCC_LOCK_NRANKS ? ranks[rank].name : "unranked";
}

static void check_rank(int rank) {
    if (rank <= GOCC_LOCK_NONE || rank >= GOCC_LOCK_NRANKS)
        fail("lock order", "taking a lock of unknown rank %d (not made with a rank?)", rank);
}

void gocc__witness_acquire(const void *lock, int rank) {
    check_rank(rank);
    if (W.n > 0) {
        held *top = &W.e[W.n - 1];
        unsigned rules = ranks[top->rank].rules;
        if (rank == top->rank) {
            if (rules & GOCC_LOCK_NEST_ADDR) {
                if (top->lock != NULL && (uintptr_t)lock <= (uintptr_t)top->lock)
                    fail("lock order",
                         "taking %s (rank %d) at %p while holding %s (rank %d) at %p: "
                         "same rank only in increasing address",
                         rank_name(rank), rank, lock, rank_name(rank), rank, top->lock);
            } else if (!(rules & GOCC_LOCK_NEST_CALLER)) {
                fail("lock order",
                     "taking %s (rank %d) while holding %s (rank %d): one of this rank at a time",
                     rank_name(rank), rank, rank_name(top->rank), top->rank);
            }
            top->count++;
            top->lock = lock;
            return;
        }
        if (rank < top->rank)
            fail("lock order", "taking %s (rank %d) while holding %s (rank %d)", rank_name(rank),
                 rank, rank_name(top->rank), top->rank);
        if (rules & GOCC_LOCK_LEAF)
            fail("lock order", "taking %s (rank %d) while holding %s (rank %d), a leaf",
                 rank_name(rank), rank, rank_name(top->rank), top->rank);
    }
    W.e[W.n++] = (held){lock, rank, 1};
}

void gocc__witness_release(const void *lock, int rank) {
    for (unsigned i = W.n; i-- > 0;) {
        held *h = &W.e[i];
        if (h->rank != rank) continue;
        if (h->count == 1 && h->lock != NULL && h->lock != lock) break; /* another one */
        if (h->lock == lock) h->lock = NULL;
        if (--h->count == 0) {
            memmove(h, h + 1, (W.n - i - 1) * sizeof *h);
            W.n--;
        }
        return;
    }
    fail("not held", "releasing %s (rank %d) at %p, which this thread does not hold",
         rank_name(rank), rank, lock);
}

/* ---- mutexes ---- */

void gocc__lock(gocc__mutex *m) {
    if (atomic_load_explicit(&m->owner, RELAXED) == ME)
        fail("lock order", "taking %s (rank %d) at %p, which this thread already holds",
             rank_name(m->rank), m->rank, (void *)m);
    gocc__witness_acquire(m, m->rank); /* before blocking: a wrong order fails every time */
    int rc = pthread_mutex_lock(&m->mu);
    if (GOCC_UNLIKELY(rc != 0)) gocc__lock_failed("pthread_mutex_lock", rc, m);
    atomic_store_explicit(&m->owner, ME, RELAXED);
}

static void check_mine(const gocc__mutex *m, const char *what) {
    if (atomic_load_explicit(&m->owner, RELAXED) != ME)
        fail("not held", "%s %s (rank %d) at %p, which this thread does not hold", what,
             rank_name(m->rank), m->rank, (const void *)m);
}

void gocc__unlock(gocc__mutex *m) {
    check_mine(m, "unlocking");
    atomic_store_explicit(&m->owner, NULL, RELAXED);
    gocc__witness_release(m, m->rank);
    int rc = pthread_mutex_unlock(&m->mu);
    if (GOCC_UNLIKELY(rc != 0)) gocc__lock_failed("pthread_mutex_unlock", rc, m);
}

void gocc__cond_wait(pthread_cond_t *cv, gocc__mutex *m) {
    check_mine(m, "waiting on a condition with");
    atomic_store_explicit(&m->owner, NULL, RELAXED);
    pthread_cond_wait(cv, &m->mu);
    atomic_store_explicit(&m->owner, ME, RELAXED);
}

int gocc__cond_timedwait(pthread_cond_t *cv, gocc__mutex *m, const struct timespec *ts) {
    check_mine(m, "waiting on a condition with");
    atomic_store_explicit(&m->owner, NULL, RELAXED);
    int rc = pthread_cond_timedwait(cv, &m->mu, ts);
    atomic_store_explicit(&m->owner, ME, RELAXED);
    return rc;
}

void gocc__mutex_destroy(gocc__mutex *m) {
    if (atomic_load_explicit(&m->owner, RELAXED) != NULL)
        fail("not held", "destroying %s (rank %d) at %p while a thread holds it",
             rank_name(m->rank), m->rank, (void *)m);
    pthread_mutex_destroy(&m->mu);
}

void gocc__lock_check_held(const gocc__mutex *m, const char *fn, const char *file, int line) {
    if (atomic_load_explicit(&m->owner, RELAXED) != ME)
        fail("not held", "%s (rank %d) at %p in %s (%s:%d)", rank_name(m->rank), m->rank,
             (const void *)m, fn, file, line);
}

/* ---- rwlocks ---- */

void gocc__rdlock(gocc__rwlock *l) {
    gocc__witness_acquire(l, l->rank);
    if (GOCC_UNLIKELY(pthread_rwlock_rdlock(&l->rw) != 0)) abort();
}

void gocc__wrlock(gocc__rwlock *l) {
    gocc__witness_acquire(l, l->rank);
    if (GOCC_UNLIKELY(pthread_rwlock_wrlock(&l->rw) != 0)) abort();
}

void gocc__rwunlock(gocc__rwlock *l) {
    gocc__witness_release(l, l->rank);
    if (GOCC_UNLIKELY(pthread_rwlock_unlock(&l->rw) != 0)) abort();
}

void gocc__lock_check_rwheld(const gocc__rwlock *l, const char *fn, const char *file, int line) {
    for (unsigned i = 0; i < W.n; i++)
        if (W.e[i].rank == l->rank && W.e[i].lock == (const void *)l) return;
    fail("not held", "%s (rank %d) at %p in %s (%s:%d)", rank_name(l->rank), l->rank,
         (const void *)l, fn, file, line);
}

/* ---- parking ---- */

void gocc__lock_check_none(const char *fn) {
    if (GOCC_LIKELY(W.n == 0)) return;
    char list[256];
    size_t k = 0;
    list[0] = '\0';
    for (unsigned i = W.n; i-- > 0 && k < sizeof list;) {
        int r = snprintf(list + k, sizeof list - k, "%s%s (rank %d)", k ? ", " : "",
                         rank_name(W.e[i].rank), W.e[i].rank);
        if (r < 0) break;
        k += (size_t)r;
        if (W.e[i].count > 1 && k < sizeof list) {
            r = snprintf(list + k, sizeof list - k, " x%u", W.e[i].count);
            if (r < 0) break;
            k += (size_t)r;
        }
    }
    fail("held at park", "%s in %s", list, fn);
}

#else
typedef int gocc__lockcheck_unused; /* ISO C wants a declaration in every file */
#endif
