/*
 * timer.c - one timer thread for the whole process, over a binary min-heap
 * of entries ordered by (when, seq). It sleeps on a CLOCK_MONOTONIC condvar
 * until the earliest deadline and runs each due entry's callback with the
 * heap lock dropped. Public timers and tickers, gocc_sleep, select
 * timeouts and context deadlines are all entries here.
 *
 * Invariants:
 *  - e->heap_index != SIZE_MAX iff e is in the heap (under T.mu).
 *  - T.firing is the entry whose callback runs now (at most one). The timer
 *    thread never touches an entry after its callback returned, so a
 *    callback may free its own entry (context deadlines do).
 *  - A periodic entry is put back in the heap before its callback runs;
 *    gocc__timer_del_sync removes it and waits out a running callback, so
 *    after it returns the entry is idle and may be changed or freed.
 *  - The heap array has room for every reserved entry, so adding never
 *    allocates (gocc__timer_reserve is where ENOMEM can happen).
 *
 * Lock order: T.mu may be taken under a ctx mu or a timer object's mu,
 * never under a channel lock; callbacks run without it (they take channel
 * and ctx locks).
 *
 * Life of the thread: started by the first gocc__timer_reserve (or, in the
 * child of a fork, by the first add), it runs until gocc_runtime_shutdown
 * finds nothing reserved: then it is told to stop, joined, and the heap
 * array freed. While that join is in progress (T.stopping) a reserve waits
 * on T.restart, then starts a new thread. Reservations are what keep the
 * thread: every entry that can be armed holds one, so "nothing reserved"
 * means no entry can be added until the next reserve.
 *
 * Go 1.23 semantics for gocc_timer_t/gocc_ticker_t: the channel has
 * capacity 1; stop and reset remove the entry, wait for a fire in progress,
 * and discard an unreceived value, all under the object's mutex, so no
 * stale value can be received after they return.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <time.h>

static struct {
    gocc__mutex mu;
    pthread_cond_t wake;    /* the timer thread sleeps here */
    pthread_cond_t fired;   /* del_sync waits here for a callback */
    pthread_cond_t restart; /* reserve waits here while a shutdown joins */
    bool conds_ready;       /* wake and fired are initialised (once) */
    bool started;           /* the thread runs (or is being stopped) */
    bool stop;              /* shutdown: the thread exits at its next look */
    bool stopping;          /* shutdown is joining the thread */
    pthread_t thread;
    gocc__timer_entry **heap;
    size_t len, cap, reserved;
    size_t quiet;     /* entries in the heap with e->quiet */
    bool firing_loud; /* T.firing is not quiet */
    uint64_t seq;
    gocc__timer_entry *firing;
    size_t sync_waiters;
    int64_t sleeping_until; /* the thread's current wake-up, INT64_MAX idle */
} T = {
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_TIMER_HEAP),
    .restart = PTHREAD_COND_INITIALIZER,
    .sleeping_until = INT64_MAX,
};

/* ---- the heap (caller holds T.mu) ---- */

static inline bool less(const gocc__timer_entry *a, const gocc__timer_entry *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(size_t i, gocc__timer_entry *e) {
    T.heap[i] = e;
    e->heap_index = i;
}

static void sift_up(size_t i) {
    gocc__assert_held(&T.mu);
    gocc__timer_entry *e = T.heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(e, T.heap[p])) break;
        heap_set(i, T.heap[p]);
        i = p;
    }
    heap_set(i, e);
}

static void sift_down(size_t i) {
    gocc__assert_held(&T.mu);
    gocc__timer_entry *e = T.heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        gocc__timer_entry *best = e;
        if (l < T.len && less(T.heap[l], best)) m = l, best = T.heap[l];
        if (l + 1 < T.len && less(T.heap[l + 1], best)) m = l + 1, best = T.heap[l + 1];
        if (m == i) break;
        heap_set(i, best);
        i = m;
    }
    heap_set(i, e);
}

static void heap_remove(gocc__timer_entry *e) {
    gocc__assert_held(&T.mu);
    size_t i = e->heap_index;
    gocc__timer_entry *last = T.heap[--T.len];
    e->heap_index = SIZE_MAX;
    if (e->quiet) T.quiet--;
    if (last == e) return;
    heap_set(i, last);
    sift_up(i);
    sift_down(last->heap_index);
}

/* ---- the timer thread ---- */

static void cond_wait_until(int64_t when) {
    struct timespec ts = {(time_t)(when / GOCC_SECOND), (long)(when % GOCC_SECOND)};
    gocc__cond_timedwait(&T.wake, &T.mu, &ts);
}

static void *timer_main(void *unused) {
    (void)unused;
    gocc__os_thread_name("gocc-timer");
    gocc__lock(&T.mu);
    for (;;) {
        if (T.stop) break; /* shutdown: the heap is empty, nothing reserved */
        if (T.len == 0) {
            T.sleeping_until = INT64_MAX;
            gocc__cond_wait(&T.wake, &T.mu);
            continue;
        }
        gocc__timer_entry *e = T.heap[0];
        int64_t now = gocc_now();
        if (e->when > now) {
            T.sleeping_until = e->when;
            cond_wait_until(e->when);
            continue;
        }
        T.sleeping_until = INT64_MIN; /* busy firing: adds need no signal */
        if (e->period > 0) {          /* re-arm first; drop ticks that were missed */
            int64_t next = e->when + e->period;
            e->when = next > now ? next : now + e->period;
            e->seq = T.seq++;
            sift_down(0);
        } else {
            heap_remove(e);
        }
        T.firing = e;
        T.firing_loud = !e->quiet; /* e may be freed by its own callback */
        gocc__unlock(&T.mu);
        e->fn(e, now); /* may free e: not touched again */
        gocc__lock(&T.mu);
        T.firing = NULL;
        if (T.sync_waiters) pthread_cond_broadcast(&T.fired);
    }
    gocc__unlock(&T.mu);
    return NULL;
}

static void conds_init(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&T.wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&T.fired, NULL);
}

/* Caller holds T.mu, and no shutdown is joining the old thread. */
static int start_thread(void) {
    gocc__assert_held(&T.mu);
    if (!T.conds_ready) {
        conds_init();
        T.conds_ready = true;
    }
    /* 512 KiB: callbacks cancel context trees. */
    int rc = gocc__thread_create(&T.thread, 512 * 1024, timer_main, NULL);
    if (rc != 0) return rc;
    T.started = true;
    return 0;
}

int gocc__timer_shutdown(void) {
    gocc__lock(&T.mu);
    while (T.stopping) gocc__cond_wait(&T.restart, &T.mu); /* another shutdown */
    if (T.reserved > 0 || T.len > 0 || (T.started && pthread_equal(pthread_self(), T.thread))) {
        gocc__unlock(&T.mu);
        return GOCC_EAGAIN;
    }
    if (T.started) {
        T.stop = true;
        T.stopping = true;
        pthread_cond_signal(&T.wake);
        pthread_t th = T.thread;
        gocc__unlock(&T.mu);
        pthread_join(th, NULL);
        gocc__lock(&T.mu);
        T.started = T.stop = T.stopping = false;
        T.sleeping_until = INT64_MAX;
        pthread_cond_broadcast(&T.restart);
    }
    gocc__free(T.heap); /* the next reserve makes a new one */
    T.heap = NULL;
    T.cap = 0;
    gocc__unlock(&T.mu);
    return 0;
}

void gocc__timer_fork_prepare(void) { gocc__lock(&T.mu); }
void gocc__timer_fork_parent(void) { gocc__unlock(&T.mu); }

/* The child has no timer thread: entries armed before the fork are dropped
 * from the heap (they never fire in the child; stop/reset/free still work
 * on them), reservations stay with their objects, and the first add starts
 * a thread again. */
void gocc__timer_fork_child(void) {
    for (size_t i = 0; i < T.len; i++) T.heap[i]->heap_index = SIZE_MAX;
    T.len = 0;
    T.quiet = 0;
    T.firing = NULL;
    T.firing_loud = false;
    T.sync_waiters = 0;
    T.sleeping_until = INT64_MAX;
    T.started = T.stop = T.stopping = false;
    if (T.conds_ready) conds_init(); /* no waiter of the parent's survives */
    pthread_cond_init(&T.restart, NULL);
    gocc__unlock(&T.mu);
}

/* ---- internal API ---- */

void gocc__timer_init(gocc__timer_entry *e, void (*fn)(gocc__timer_entry *, int64_t), void *arg) {
    memset(e, 0, sizeof *e);
    e->heap_index = SIZE_MAX;
    e->fn = fn;
    e->arg = arg;
}

int gocc__timer_reserve(void) {
    int rc = 0;
    gocc__lock(&T.mu);
    while (T.stopping) gocc__cond_wait(&T.restart, &T.mu);
    if (!T.started && (rc = start_thread()) != 0) goto out;
    if (T.reserved == T.cap) {
        size_t ncap = T.cap ? 2 * T.cap : 64;
        gocc__timer_entry **h = gocc__realloc(T.heap, ncap * sizeof *h);
        if (h == NULL) {
            rc = GOCC_ENOMEM;
            goto out;
        }
        T.heap = h;
        T.cap = ncap;
    }
    T.reserved++;
out:
    gocc__unlock(&T.mu);
    return rc;
}

void gocc__timer_unreserve(void) {
    gocc__lock(&T.mu);
    T.reserved--;
    gocc__unlock(&T.mu);
}

void gocc__timer_add(gocc__timer_entry *e, int64_t when, int64_t period) {
    gocc__lock(&T.mu);
    /* Only in the child of a fork can a reserved entry find no thread; if
     * none can be started now, the next reserve starts it. */
    if (GOCC_UNLIKELY(!T.started)) (void)start_thread();
    e->when = when;
    e->period = period;
    e->seq = T.seq++;
    if (e->heap_index == SIZE_MAX) {
        T.heap[T.len] = e;
        e->heap_index = T.len++;
        if (e->quiet) T.quiet++;
    }
    sift_up(e->heap_index);
    sift_down(e->heap_index);
    /* Wake the thread only if it sleeps past the new deadline. */
    if (when < T.sleeping_until) {
        T.sleeping_until = when;
        pthread_cond_signal(&T.wake);
    }
    gocc__unlock(&T.mu);
}

size_t gocc__timer_loud(void) {
    gocc__lock(&T.mu);
    size_t n = T.len - T.quiet + (T.firing != NULL && T.firing_loud);
    gocc__unlock(&T.mu);
    return n;
}

bool gocc__timer_del(gocc__timer_entry *e) {
    gocc__lock(&T.mu);
    bool removed = e->heap_index != SIZE_MAX;
    if (removed) heap_remove(e);
    gocc__unlock(&T.mu);
    return removed;
}

bool gocc__timer_del_sync(gocc__timer_entry *e) {
    gocc__lock(&T.mu);
    bool removed = e->heap_index != SIZE_MAX;
    if (removed) heap_remove(e);
    if (!(T.started && pthread_equal(pthread_self(), T.thread))) {
        while (T.firing == e) {
            T.sync_waiters++;
            gocc__cond_wait(&T.fired, &T.mu);
            T.sync_waiters--;
        }
    }
    gocc__unlock(&T.mu);
    return removed;
}

/* ---- public timers and tickers ---- */

struct gocc_timer {
    gocc__mutex mu; /* serialises stop/reset/free */
    gocc__timer_entry e;
    gocc_chan_t *ch;
};

struct gocc_ticker {
    struct gocc_timer t;
};

/* Runs on the timer thread: deliver the fire time unless a value is still
 * pending (a ticker drops ticks for a slow receiver). */
static void chan_fire(gocc__timer_entry *e, int64_t now) {
    struct gocc_timer *t = e->arg;
    (void)gocc_chan_try_send(t->ch, &now);
}

static struct gocc_timer *timer_make(void) {
    struct gocc_timer *t = gocc__calloc(1, sizeof *t);
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = gocc__timer_reserve();
    if (rc != 0) {
        gocc__free(t);
        errno = -rc;
        return NULL;
    }
    t->ch = gocc_chan_new(sizeof(int64_t), 1);
    if (t->ch == NULL) {
        gocc__timer_unreserve();
        gocc__free(t);
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&t->mu, GOCC_LOCK_TIMER);
    gocc__timer_init(&t->e, chan_fire, t);
    gocc__live_add(GOCC__LIVE_TIMER, 1);
    return t;
}

static bool timer_stop_locked(struct gocc_timer *t);

static void timer_destroy(struct gocc_timer *t) {
    /* Stop, then free: a value sent but not received is discarded too, so
     * a channel retained elsewhere yields nothing stale afterwards. */
    gocc__lock(&t->mu);
    (void)timer_stop_locked(t);
    gocc__unlock(&t->mu);
    gocc__timer_unreserve();
    gocc_chan_release(t->ch);
    gocc__mutex_destroy(&t->mu);
    gocc__live_add(GOCC__LIVE_TIMER, -1);
    gocc__free(t);
}

/* Caller holds t->mu. Disarm and discard an unreceived value. */
static bool timer_stop_locked(struct gocc_timer *t) {
    gocc__assert_held(&t->mu);
    bool removed = gocc__timer_del_sync(&t->e);
    bool drained = gocc_chan_try_recv(t->ch, NULL) == 0;
    return removed || drained;
}

static int64_t deadline_after(int64_t d) {
    int64_t now = gocc_now();
    if (d <= 0) return now;
    return d > INT64_MAX - now ? INT64_MAX : now + d;
}

gocc_timer_t *gocc_timer_new(int64_t d_ns) {
    struct gocc_timer *t = timer_make();
    if (t == NULL) return NULL;
    gocc__timer_add(&t->e, deadline_after(d_ns), 0);
    return t;
}

gocc_chan_t *gocc_timer_chan(gocc_timer_t *t) { return t ? t->ch : NULL; }

bool gocc_timer_stop(gocc_timer_t *t) {
    if (t == NULL) return false;
    gocc__lock(&t->mu);
    bool r = timer_stop_locked(t);
    gocc__unlock(&t->mu);
    return r;
}

bool gocc_timer_reset(gocc_timer_t *t, int64_t d_ns) {
    if (t == NULL) return false;
    gocc__lock(&t->mu);
    bool r = timer_stop_locked(t);
    gocc__timer_add(&t->e, deadline_after(d_ns), 0);
    gocc__unlock(&t->mu);
    return r;
}

void gocc_timer_free(gocc_timer_t *t) {
    if (t != NULL) timer_destroy(t);
}

gocc_ticker_t *gocc_ticker_new(int64_t period_ns) {
    if (period_ns <= 0) {
        errno = EINVAL;
        return NULL;
    }
    struct gocc_timer *t = timer_make();
    if (t == NULL) return NULL;
    gocc__timer_add(&t->e, deadline_after(period_ns), period_ns);
    return (gocc_ticker_t *)t;
}

gocc_chan_t *gocc_ticker_chan(gocc_ticker_t *t) { return t ? t->t.ch : NULL; }

int gocc_ticker_reset(gocc_ticker_t *tk, int64_t period_ns) {
    if (tk == NULL || period_ns <= 0) return GOCC_EINVAL;
    gocc__lock(&tk->t.mu);
    timer_stop_locked(&tk->t);
    gocc__timer_add(&tk->t.e, deadline_after(period_ns), period_ns);
    gocc__unlock(&tk->t.mu);
    return 0;
}

void gocc_ticker_stop(gocc_ticker_t *tk) {
    if (tk == NULL) return;
    gocc__lock(&tk->t.mu);
    timer_stop_locked(&tk->t);
    gocc__unlock(&tk->t.mu);
}

void gocc_ticker_free(gocc_ticker_t *tk) {
    if (tk != NULL) timer_destroy(&tk->t);
}

/* 0 only when the time passed: GOCC_EAGAIN / GOCC_ENOMEM from the wait
 * mean the timer could not be had (no timer thread, no memory), and are
 * returned as they are. */
int gocc_sleep(int64_t d_ns, gocc_ctx_t *ctx) {
    gocc__ctx_check(ctx, "gocc_sleep");
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err;
    if (d_ns <= 0) return 0;
    int r = gocc__select(NULL, 0, ctx, true, deadline_after(d_ns), GOCC_WAIT_SLEEP);
    return r == GOCC__TIMED_OUT ? 0 : r;
}
