/*
 * park.c - the one parking primitive every blocking call goes through.
 *
 * Each thread owns one gocc__waiter (thread-local, made on first use). A
 * blocked thread sleeps on its own futex word (Linux) or its own
 * mutex+condvar (elsewhere), so a wake touches exactly the thread it is for:
 * no broadcast, no thundering herd.
 *
 * Contract (Go's sema.go): every park is paired with exactly one wake, and a
 * wake that arrives before the park is not lost. The pairing comes from the
 * claim: a waker wakes a waiter only after winning gocc__waiter_claim, which
 * succeeds once per armed wait.
 *
 * The futex word moves WAITING -> SLEEPING (by the parker, when it gives up
 * spinning) and {WAITING,SLEEPING} -> WOKEN (by the waker). The waker issues
 * FUTEX_WAKE only when it saw SLEEPING. A stray FUTEX_WAKE reaching a later
 * wait is harmless: the parker re-checks the word in a loop.
 *
 * Layering. park.c sits just above alloc.c and knows nothing of what the
 * layers above keep about a waiter (the registry and records the dump
 * reads, task names, the worker pool's mark): those fields live in the
 * waiter's second, anonymous part, which this file never touches. It
 * reports upward through one narrow table, gocc__park_hooks: a thread's
 * waiter was made, is going, goes to sleep. gocc__runtime_init installs
 * observe.c's (once, under pthread_once) before any thread waiter exists,
 * and gocc__thread_waiter goes through gocc__runtime_init itself before
 * reading the table, so every reader sees it without a lock or an atomic.
 * The sleep hook is called after the spin gave up, so a wait that a spin
 * catches still writes nothing shared. (A task's waiter is reported by the
 * scheduler, which parks it.)
 *
 * Also here: the per-thread xorshift generator select draws its poll order
 * from, and the pthread mutex setup the lock wrapper uses. The wake queue
 * (gocc__wakeq) is inline, in gocc-internal.h; the allocator lives below
 * this file, in alloc.c.
 */
#include "gocc-internal.h"

#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* Spinning before sleeping, adapted per thread. A handoff between two
 * threads that really run at once lands within a few hundred PAUSEs (~20 ns
 * each on the machines measured), and catching it saves a futex sleep and
 * wake (~5-15 us here). But when the host time-slices the vCPUs, spinning
 * only burns the time the partner needs (measured on a 2-vCPU VM: a fixed
 * spin of 1000 made unbuffered ping-pong 1.5 us in one regime and 48 us in
 * the other). So each waiter keeps its own budget: a wake caught after i
 * spins raises it to at least 2i + SPIN_MIN at once, a spin that caught
 * nothing shrinks it by an eighth. No spinning at all on a single CPU. */
#define SPIN_MIN 64
#define SPIN_MAX 4096

static bool multi_cpu(void) {
    static _Atomic int cpus = -1;
    int n = atomic_load_explicit(&cpus, memory_order_relaxed);
    if (GOCC_UNLIKELY(n < 0)) {
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&cpus, n, memory_order_relaxed);
    }
    return n > 1;
}

void gocc__pthread_mutex_init(pthread_mutex_t *mu) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#if defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP) && !defined(GOCC_TSAN)
    /* glibc's adaptive mutex spins briefly before sleeping: channel critical
     * sections are a few dozen instructions, so a contended lock is usually
     * free again within the spin. (GNU extension, guarded.) */
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    if (pthread_mutex_init(mu, &attr) != 0) abort();
    pthread_mutexattr_destroy(&attr);
}

/* ---- per-thread state ---- */

static GOCC_TLS gocc__waiter *self_waiter;   /* what gocc__self answers */
static GOCC_TLS gocc__waiter *thread_waiter; /* the thread's own */
static GOCC_TLS uint32_t rand_state;
static pthread_key_t waiter_key;
static pthread_once_t waiter_key_once = PTHREAD_ONCE_INIT;

/* The layer above's hooks: written once under gocc__runtime_init's
 * pthread_once, read by a thread only after it went through it. */
static gocc__park_hooks hooks;

void gocc__park_set_hooks(const gocc__park_hooks *h) { hooks = *h; }

static void waiter_destroy(void *p) {
    gocc__waiter *w = p;
    if (hooks.gone != NULL) hooks.gone(w);
    self_waiter = NULL;
    thread_waiter = NULL;
#if !defined(__linux__)
    gocc__mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
#endif
    gocc__free(w);
}

static void waiter_key_make(void) {
    if (pthread_key_create(&waiter_key, waiter_destroy) != 0) abort();
}

/* Made once per thread, freed by the key's destructor when the thread
 * exits. gocc__self_try returns NULL when that first allocation fails, so
 * blocking calls can answer GOCC_ENOMEM instead. */
gocc__waiter *gocc__self_try(void) {
    gocc__waiter *w = self_waiter;
    if (GOCC_LIKELY(w != NULL)) return w;
    return gocc__thread_waiter();
}

void gocc__set_self(gocc__waiter *w) { self_waiter = w != NULL ? w : thread_waiter; }

gocc__waiter *gocc__thread_waiter(void) {
    gocc__waiter *w = thread_waiter;
    if (GOCC_LIKELY(w != NULL)) return w;
    pthread_once(&waiter_key_once, waiter_key_make);
    gocc__runtime_init(); /* the hooks are installed, and we see them */
    w = gocc__calloc(1, sizeof *w);
    if (w == NULL) return NULL;
#if !defined(__linux__)
    gocc__mutex_init(&w->mu, GOCC_LOCK_WAITER);
    pthread_cond_init(&w->cv, NULL);
#endif
    atomic_init(&w->state, GOCC__PARK_WAITING);
    atomic_init(&w->claim, 1);
    if (hooks.made != NULL) hooks.made(w);
    pthread_setspecific(waiter_key, w);
    thread_waiter = w;
    if (self_waiter == NULL) self_waiter = w;
    return w;
}

gocc__waiter *gocc__self_peek(void) { return self_waiter; }

gocc__waiter *gocc__self(void) {
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) abort(); /* only callers that allocated it before */
    return w;
}

uint32_t gocc__rand(void) {
    uint32_t x = rand_state;
    if (GOCC_UNLIKELY(x == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&rand_state ^ 0x9e3779b9u;
        if (x == 0) x = 1;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rand_state = x;
    return x;
}

/* ---- park / wake ---- */

void gocc__waiter_arm(gocc__waiter *w) {
    atomic_store_explicit(&w->state, GOCC__PARK_WAITING, memory_order_relaxed);
    w->winner = NULL;
    /* Release: a claimer that wins sees the armed state above. */
    atomic_store_explicit(&w->claim, 0, memory_order_release);
}

#if defined(__linux__)
static void futex_wait(_Atomic uint32_t *addr, uint32_t val, const struct timespec *rel) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
#endif

#if defined(__linux__)
static bool spin_for_wake(gocc__waiter *w) {
    if (!multi_cpu() || w->spin < 0) return false; /* < 0: never spins (idle workers) */
    int budget = w->spin ? w->spin : SPIN_MIN;
    for (int i = 0; i < budget; i++) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) == GOCC__PARK_WOKEN) {
            int want = 2 * i + SPIN_MIN;
            if (want > budget) budget = want > SPIN_MAX ? SPIN_MAX : want;
            w->spin = budget;
            return true;
        }
        gocc__cpu_relax();
    }
    budget -= budget / 8;
    w->spin = budget < SPIN_MIN ? SPIN_MIN : budget;
    return false;
}
#endif

/* deadline < 0: no deadline. */
static bool park_impl(gocc__waiter *w, int64_t deadline) {
#if defined(__linux__)
    if (spin_for_wake(w)) return true;
    uint32_t expect = GOCC__PARK_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expect, GOCC__PARK_SLEEPING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return true; /* only a waker changes WAITING: it is WOKEN */
    if (hooks.sleeps != NULL) hooks.sleeps(w);
    for (;;) {
        if (atomic_load_explicit(&w->state, memory_order_acquire) == GOCC__PARK_WOKEN) return true;
        if (deadline < 0) {
            futex_wait(&w->state, GOCC__PARK_SLEEPING, NULL);
        } else {
            int64_t left = deadline - gocc_now();
            if (left <= 0) {
                /* Back to WAITING unless a wake got in first. */
                expect = GOCC__PARK_SLEEPING;
                if (atomic_compare_exchange_strong_explicit(&w->state, &expect, GOCC__PARK_WAITING,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire))
                    return false;
                return true;
            }
            struct timespec rel = {(time_t)(left / GOCC_SECOND), (long)(left % GOCC_SECOND)};
            futex_wait(&w->state, GOCC__PARK_SLEEPING, &rel);
        }
    }
#else
    if (hooks.sleeps != NULL) hooks.sleeps(w);
    gocc__lock(&w->mu);
    while (atomic_load_explicit(&w->state, memory_order_acquire) != GOCC__PARK_WOKEN) {
        if (deadline < 0) {
            gocc__cond_wait(&w->cv, &w->mu);
        } else {
            if (gocc_now() >= deadline) {
                gocc__unlock(&w->mu);
                return false;
            }
            /* The fallback condvar uses CLOCK_REALTIME; convert the span. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t t = (int64_t)ts.tv_sec * GOCC_SECOND + ts.tv_nsec + (deadline - gocc_now());
            ts.tv_sec = (time_t)(t / GOCC_SECOND);
            ts.tv_nsec = (long)(t % GOCC_SECOND);
            gocc__cond_timedwait(&w->cv, &w->mu, &ts);
        }
    }
    gocc__unlock(&w->mu);
    return true;
#endif
}

void gocc__park(gocc__waiter *w) {
    gocc__assert_no_locks();
    if (w->task != NULL)
        (void)gocc__sched_park(w, -1);
    else
        (void)park_impl(w, -1);
}

bool gocc__park_until(gocc__waiter *w, int64_t deadline) {
    gocc__assert_no_locks();
    if (deadline < 0) deadline = 0;
    if (w->task != NULL) return gocc__sched_park(w, deadline);
    return park_impl(w, deadline);
}

/* A task waiter that was SLEEPING is made runnable (its registers are
 * saved); one still WAITING sees WOKEN itself, in its scheduler's CAS or
 * after it; one TIMEDOUT was made runnable by its timer. */
void gocc__wake(gocc__waiter *w) {
    gocc__task *t = w->task; /* fixed for the waiter's life: read while it is ours */
    if (t != NULL) {
        uint32_t old = atomic_exchange_explicit(&w->state, GOCC__PARK_WOKEN, memory_order_acq_rel);
        if (old == GOCC__PARK_SLEEPING) gocc__sched_ready(t);
        return;
    }
#if defined(__linux__)
    uint32_t old = atomic_exchange_explicit(&w->state, GOCC__PARK_WOKEN, memory_order_acq_rel);
    if (old == GOCC__PARK_SLEEPING) futex_wake(&w->state);
#else
    gocc__lock(&w->mu);
    atomic_store_explicit(&w->state, GOCC__PARK_WOKEN, memory_order_release);
    pthread_cond_signal(&w->cv);
    gocc__unlock(&w->mu);
#endif
}
