/*
 * gocc-internal.h - what the modules of libgocc share and nothing else.
 *
 * The one parking primitive (gocc__waiter, park.c), the per-case wait record
 * every channel queue holds (gocc__sudog), the timer thread's entries
 * (timer.c), the channel internals select needs (chan.c), the context hooks
 * blocking calls use (ctx.c) and the task runtime's bookkeeping (runtime.c).
 *
 * The global lock order is GOCC_LOCK_RANKS below (one list, checked at run
 * time in debug and sanitizer builds). A waiter is woken only after every
 * channel lock is dropped.
 */
#ifndef GOCC_INTERNAL_H
#define GOCC_INTERNAL_H

#include "gocc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define GOCC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define gocc__container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

#if defined(__GNUC__)
#define GOCC_LIKELY(x) __builtin_expect(!!(x), 1)
#define GOCC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GOCC_NOINLINE __attribute__((noinline)) /* keeps slow paths out of hot ones */
#else
#define GOCC_LIKELY(x) (x)
#define GOCC_UNLIKELY(x) (x)
#define GOCC_NOINLINE
#endif

/* Hot thread-locals use the initial-exec TLS model: the library is built
 * position-independent, where the default model costs a __tls_get_addr call
 * per access. (GNU attribute; the few bytes fit glibc's static TLS reserve
 * also when the shared library is dlopen()ed.) */
#if defined(__GNUC__)
#define GOCC_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define GOCC_TLS _Thread_local
#endif

/* Sanitizer detection (gcc defines __SANITIZE_*, clang has __has_feature). */
#if defined(__SANITIZE_THREAD__)
#define GOCC_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define GOCC_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GOCC_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define GOCC_ASAN 1
#endif
#endif

/* ---- memory: every allocation of the library goes through these ---- */

/* Each goes to the C library, or to the hooks of gocc_runtime_set_allocator
 * (alloc.c). No file of the library calls malloc/calloc/realloc/free/strdup
 * directly. A size of 0 is taken as 1, so NULL always means failure. */
void *gocc__malloc(size_t n);
void *gocc__calloc(size_t nmemb, size_t n);
void *gocc__realloc(void *p, size_t n);
void gocc__free(void *p);

/* ---- fault injection (meson -Dfault_injection=true; tests only) ----
 *
 * gocc__fault_arm starts counting, from 0, the allocation points (every
 * gocc__malloc/calloc/realloc) and thread-creation points (every
 * gocc__thread_create) met by any thread, and makes the fail_alloc_at-th
 * allocation return NULL and the fail_thread_at-th thread creation fail
 * with EAGAIN, once each (1-based; 0 fails none). A test runs an operation
 * once to count its points, then again failing each one in turn.
 * Without the option none of this exists and GOCC_FAULT_THREAD() is a
 * constant false: no cost. */
#if defined(GOCC_FAULT_INJECTION)
void gocc__fault_arm(long fail_alloc_at, long fail_thread_at);
void gocc__fault_disarm(void);
long gocc__fault_allocs(void);   /* allocation points met since arming */
long gocc__fault_threads(void);  /* thread-creation points met since arming */
long gocc__fault_injected(void); /* failures injected since arming (0..2) */
bool gocc__fault_thread_fails(void);
bool gocc__fault_alloc_fails(void); /* an allocation point outside gocc__malloc (stacks) */
#define GOCC_FAULT_THREAD() gocc__fault_thread_fails()
#define GOCC_FAULT_ALLOC() gocc__fault_alloc_fails()
#else
#define GOCC_FAULT_THREAD() false
#define GOCC_FAULT_ALLOC() false
#endif

/* ---- locks: the global order, the wrapper, the witness ----
 *
 * THE LOCK ORDER is GOCC_LOCK_RANKS: every lock of the library has a rank
 * there, and the list is the order they may be taken in. A thread may take
 * a lock only while every lock it holds comes earlier in the list. This is
 * the one statement of the order: module comments and docs/design.md point
 * here, and the witness below checks it.
 *
 * Rules a rank may carry (the third column):
 *  - GOCC_LOCK_LEAF: nothing is taken while one is held.
 *  - Two locks of one rank are never held at once, except where a rank says
 *    how they nest: GOCC_LOCK_NEST_ADDR, in increasing address (select locks
 *    its channels so; the witness checks the addresses), or
 *    GOCC_LOCK_NEST_CALLER, in an order the caller keeps and the witness
 *    cannot see (contexts: parent before child), so any nesting within the
 *    rank passes.
 * No lock is held across a park (gocc__park, gocc__park_until).
 *
 * Each entry: X(NAME, "name printed", rules) gives GOCC_LOCK_NAME; the
 * comment above it says which lock, and what is taken under it. */
#define GOCC_LOCK_LEAF 1u
#define GOCC_LOCK_NEST_ADDR 2u
#define GOCC_LOCK_NEST_CALLER 4u

#define GOCC_LOCK_RANKS(X)                                                       \
    /* pool.c p->trim_mu: one trim at a time. -> POOL_DEPOT. The pool's       */ \
    /* free_fn runs under it, so it comes first.                             */  \
    X(POOL_TRIM, "pool-trim", 0)                                                 \
    /* pubsub.c ps->lock (an rwlock). -> CHAN (publish's try_send).          */  \
    X(PUBSUB, "pubsub", 0)                                                       \
    /* timer.c t->mu of a gocc_timer_t / gocc_ticker_t. -> TIMER_HEAP, CHAN. */  \
    X(TIMER, "timer", 0)                                                         \
    /* ratelimit.c rl->mu. -> TIMER_HEAP (arming, reserving).                */  \
    X(RATELIMIT, "ratelimit", 0)                                                 \
    /* ctx.c c->mu, parent before child (cancel walks the subtree holding    */  \
    /* each lock). -> CHAN (the done channel), TIMER_HEAP (deadlines).       */  \
    X(CTX, "ctx", GOCC_LOCK_NEST_CALLER)                                         \
    /* The process-wide locks, in the order the fork handlers take them     */   \
    /* (runtime.c): POOL_REGISTRY .. RUNTIME below.                          */  \
    /* pool.c registry_mu (thread caches). -> POOL_DEPOT.                    */  \
    X(POOL_REGISTRY, "pool-registry", 0)                                         \
    /* observe.c watch.mu (the watch thread's settings).                     */  \
    X(WATCH, "watch", 0)                                                         \
    /* observe.c reg_mu (the registry of waiters the dump walks).            */  \
    X(OBS_REGISTRY, "waiter-registry", 0)                                        \
    /* timer.c T.mu (the timer heap and thread).                             */  \
    X(TIMER_HEAP, "timer-heap", 0)                                               \
    /* netpoll.c P.mu (the poller's slot table, its thread and epoll      */     \
    /* instance). -> FD (the poller delivers readiness to a handle).        */   \
    X(NETPOLL, "netpoll", 0)                                                     \
    /* sched.c S.mon_mu (the monitor thread's start and stop).              */   \
    X(SCHED_MON, "sched-monitor", 0)                                             \
    /* sched.c S.mu (global run queue, idle workers, worker records).        */  \
    X(SCHED, "sched", 0)                                                         \
    /* sched.c S.cache_mu (dead task records kept for reuse).                */  \
    X(SCHED_CACHE, "sched-cache", 0)                                             \
    /* runtime.c rt.mu (the thread cache).                                   */  \
    X(RUNTIME, "runtime", GOCC_LOCK_LEAF)                                        \
    /* Module locks, all leaves: pool.c p->mu (the depot), group.c g->mu,    */  \
    /* sem.c s->mu, workpool.c p->mu, waitgroup.c's state-word lock bit      */  \
    /* (waitgroup and once; a spin lock the witness is told about).          */  \
    X(POOL_DEPOT, "pool-depot", GOCC_LOCK_LEAF)                                  \
    X(GROUP, "group", GOCC_LOCK_LEAF)                                            \
    X(SEM, "sem", GOCC_LOCK_LEAF)                                                \
    X(WORKPOOL, "workpool", GOCC_LOCK_LEAF)                                      \
    X(WAITGROUP, "waitgroup", GOCC_LOCK_LEAF)                                    \
    /* fd.c f->mu of a gocc_fd_t (its turns, waiters, readiness counts).     */  \
    X(FD, "fd", GOCC_LOCK_LEAF)                                                  \
    /* park.c w->mu, the waiter's condvar fallback (not Linux).              */  \
    X(WAITER, "waiter", GOCC_LOCK_LEAF)                                          \
    /* chan.c ch->mu. Last: no other lock is taken while one is held;        */  \
    /* several only in increasing address (select).                          */  \
    X(CHAN, "chan", GOCC_LOCK_LEAF | GOCC_LOCK_NEST_ADDR)

enum gocc__lock_rank {
    GOCC_LOCK_NONE = 0,
#define GOCC__LOCK_ENUM(name, text, rules) GOCC_LOCK_##name,
    GOCC_LOCK_RANKS(GOCC__LOCK_ENUM)
#undef GOCC__LOCK_ENUM
        GOCC_LOCK_NRANKS
};

/* The wrapper every lock of the library goes through. Without
 * GOCC_LOCK_CHECKS the types are the bare pthread ones (not even a struct
 * around them: that alone moved registers in one function) and the calls
 * below are the pthread calls, so a release build has the same layout and
 * the same code as plain pthread use. With it (meson: debug and sanitizer
 * builds, or -Dlock_checks=enabled) the witness (lockcheck.c) keeps each
 * thread's held locks and checks, on every lock, the rank order above;
 * gocc__assert_held at the top of each *_locked helper;
 * gocc__assert_no_locks at every park; and that only the holder unlocks,
 * waits on a condvar with, or destroys a lock. A failed check writes one
 * line ("libgocc: lock check failed: <check>: ...", naming the ranks) to
 * stderr and aborts. Condition variables wait through gocc__cond_wait /
 * gocc__cond_timedwait, so the witness sees the lock given up during the
 * wait. Code outside this header and lockcheck.c never touches the pthread
 * object inside (a checked build would not compile it).
 *
 * Every pthread lock call here aborts on failure, naming the call first
 * (gocc__lock_failed): only for the impossible (a pthread call failing on
 * a valid object) or a lock used after its object was released. */
#if !defined(GOCC_LOCK_CHECKS)
#define GOCC_LOCK_CHECKS 0
#endif

/* "libgocc: <call> failed on <lock>: <strerror(rc)> (...)" on stderr, abort:
 * a pthread lock call that failed (EINVAL: most likely a destroyed lock,
 * that is an object used after its release). */
_Noreturn void gocc__lock_failed(const char *call, int rc, const void *lock);
/* The same without the details, for the release build's inline lock calls
 * (no arguments to set up: the hot paths keep their inlining). */
_Noreturn __attribute__((cold, nothrow, leaf)) void gocc__lock_abort(void);
_Noreturn __attribute__((cold, nothrow, leaf)) void gocc__unlock_abort(void);

/* pthread_mutex_init, with glibc's adaptive type where there is one (park.c). */
void gocc__pthread_mutex_init(pthread_mutex_t *mu);

#if GOCC_LOCK_CHECKS
typedef struct gocc__mutex {
    pthread_mutex_t mu;
    int rank;                    /* enum gocc__lock_rank */
    _Atomic(const void *) owner; /* the holding thread (its witness), NULL when free */
} gocc__mutex;

typedef struct gocc__rwlock {
    pthread_rwlock_t rw;
    int rank;
} gocc__rwlock;

#define GOCC__MUTEX_INITIALIZER(rank) \
    { PTHREAD_MUTEX_INITIALIZER, (rank), NULL }
static inline void gocc__mutex_init(gocc__mutex *m, int rank) {
    gocc__pthread_mutex_init(&m->mu);
    m->rank = rank;
    atomic_init(&m->owner, NULL);
}
void gocc__mutex_destroy(gocc__mutex *m);
void gocc__lock(gocc__mutex *m);
void gocc__unlock(gocc__mutex *m);
void gocc__cond_wait(pthread_cond_t *cv, gocc__mutex *m);
int gocc__cond_timedwait(pthread_cond_t *cv, gocc__mutex *m, const struct timespec *ts);
static inline int gocc__rwlock_init(gocc__rwlock *l, int rank, const pthread_rwlockattr_t *a) {
    l->rank = rank;
    return pthread_rwlock_init(&l->rw, a);
}
static inline void gocc__rwlock_destroy(gocc__rwlock *l) { pthread_rwlock_destroy(&l->rw); }
void gocc__rdlock(gocc__rwlock *l);
void gocc__wrlock(gocc__rwlock *l);
void gocc__rwunlock(gocc__rwlock *l);
/* For a lock that is not a pthread object (waitgroup.c's lock bit): tell
 * the witness before taking it and when dropping it. */
void gocc__witness_acquire(const void *lock, int rank);
void gocc__witness_release(const void *lock, int rank);
void gocc__lock_check_held(const gocc__mutex *m, const char *fn, const char *file, int line);
void gocc__lock_check_rwheld(const gocc__rwlock *l, const char *fn, const char *file, int line);
void gocc__lock_check_none(const char *fn);
#define gocc__assert_held(m) gocc__lock_check_held((m), __func__, __FILE__, __LINE__)
#define gocc__assert_rwheld(l) gocc__lock_check_rwheld((l), __func__, __FILE__, __LINE__)
#define gocc__assert_no_locks() gocc__lock_check_none(__func__)
#else
typedef pthread_mutex_t gocc__mutex;
typedef pthread_rwlock_t gocc__rwlock;

#define GOCC__MUTEX_INITIALIZER(rank) PTHREAD_MUTEX_INITIALIZER
static inline void gocc__mutex_init(gocc__mutex *m, int rank) {
    (void)rank;
    gocc__pthread_mutex_init(m);
}
static inline void gocc__mutex_destroy(gocc__mutex *m) { pthread_mutex_destroy(m); }
static inline void gocc__lock(gocc__mutex *m) {
    if (GOCC_UNLIKELY(pthread_mutex_lock(m) != 0)) gocc__lock_abort();
}
static inline void gocc__unlock(gocc__mutex *m) {
    if (GOCC_UNLIKELY(pthread_mutex_unlock(m) != 0)) gocc__unlock_abort();
}
static inline void gocc__cond_wait(pthread_cond_t *cv, gocc__mutex *m) { pthread_cond_wait(cv, m); }
static inline int gocc__cond_timedwait(pthread_cond_t *cv, gocc__mutex *m,
                                       const struct timespec *ts) {
    return pthread_cond_timedwait(cv, m, ts);
}
static inline int gocc__rwlock_init(gocc__rwlock *l, int rank, const pthread_rwlockattr_t *a) {
    (void)rank;
    return pthread_rwlock_init(l, a);
}
static inline void gocc__rwlock_destroy(gocc__rwlock *l) { pthread_rwlock_destroy(l); }
/* Statements, not inline functions: one inline level more than the code
 * had before the wrapper changed a register choice in gocc_pubsub_dropped
 * at -O2. */
#define gocc__rdlock(l)                                            \
    do {                                                           \
        if (GOCC_UNLIKELY(pthread_rwlock_rdlock(l) != 0)) abort(); \
    } while (0)
#define gocc__wrlock(l)                                            \
    do {                                                           \
        if (GOCC_UNLIKELY(pthread_rwlock_wrlock(l) != 0)) abort(); \
    } while (0)
#define gocc__rwunlock(l)                                          \
    do {                                                           \
        if (GOCC_UNLIKELY(pthread_rwlock_unlock(l) != 0)) abort(); \
    } while (0)
#define gocc__witness_acquire(lock, rank) ((void)0)
#define gocc__witness_release(lock, rank) ((void)0)
#define gocc__assert_held(m) ((void)0)
#define gocc__assert_rwheld(l) ((void)0)
#define gocc__assert_no_locks() ((void)0)
#endif

/* A spin-wait hint to the CPU (PAUSE, YIELD). */
static inline void gocc__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Per-thread pseudo-random numbers (xorshift), for select's poll order. */
uint32_t gocc__rand(void);

/* ---- parking (park.c) ----
 *
 * Every thread has one waiter record. A blocking operation arms it, enqueues
 * one sudog per channel it waits on, drops the channel locks and parks. A
 * waker that finds a sudog in a queue first CLAIMS the waiter (an atomic
 * 0 -> 1 on w->claim); only the winner of that claim completes the operation,
 * records itself in w->winner, and after dropping its locks calls
 * gocc__wake(w). A claim that fails means the waiter was already taken by
 * another case (or its context, or its timeout): the waker unlinks that
 * stale sudog and looks at the next one.
 *
 * Contract (as in Go's sema.go): every park is paired with exactly one wake,
 * and a wake that comes before the park is not lost.
 */
typedef struct gocc__sudog gocc__sudog;

/* Why a waiter is blocked (for the dump; written when it parks). */
enum gocc__wait_reason {
    GOCC_WAIT_NONE = 0,
    GOCC_WAIT_CHAN_RECV,
    GOCC_WAIT_CHAN_SEND,
    GOCC_WAIT_SELECT,
    GOCC_WAIT_SELECT_NO_CASES,
    GOCC_WAIT_SLEEP,
    GOCC_WAIT_SEM_ACQUIRE,
    GOCC_WAIT_GROUP_GO,
    GOCC_WAIT_GROUP_WAIT,
    GOCC_WAIT_WAITGROUP,
    GOCC_WAIT_ONCE,
    GOCC_WAIT_WORKPOOL_SUBMIT,
    GOCC_WAIT_WORKPOOL_SHUTDOWN,
    GOCC_WAIT_IO,      /* detail: GOCC__IO_DETAIL(descriptor, GOCC_FD_* events) */
    GOCC_WAIT_NREASONS /* not a reason: how many there are (observe.c's table) */
};

/* The dump's detail of an I/O wait: the descriptor and what it waits for
 * (GOCC_FD_READ / GOCC_FD_WRITE) in one number. */
#define GOCC__IO_DETAIL(fd, events) (((int64_t)(fd) << 2) | (int64_t)((events)&3))
#define GOCC__IO_DETAIL_FD(d) ((d) >> 2)
#define GOCC__IO_DETAIL_EVENTS(d) ((int)((d)&3))

/* What a thread shows to gocc_dump and the stuck-task watchdog (observe.c).
 * Only the owning thread writes it, inside a seqlock (seq odd while
 * writing); readers on other threads copy it and retry on a torn read.
 * Every field is atomic (relaxed) so those reads are not data races. It is
 * written when a thread parks and when a task starts or ends: never on a
 * path that does not block. */
typedef struct gocc__obs {
    _Atomic uint32_t seq;
    _Atomic int reason;       /* enum gocc__wait_reason */
    _Atomic int64_t since;    /* when it parked */
    _Atomic uintptr_t obj;    /* what it waits on (printed, never read) */
    _Atomic int64_t detail;   /* chan: capacity; select: cases; sem: weight */
    _Atomic int64_t len;      /* chan: values buffered when it parked */
    _Atomic int64_t deadline; /* earliest ctx deadline / timeout, or INT64_MAX */
    _Atomic int has_ctx;      /* waits on a context that can end */
    _Atomic uint64_t task_id; /* 0 when not running a task */
    _Atomic uintptr_t fn;     /* the task's start function */
    _Atomic uint64_t name[4]; /* NUL-padded copy of name_local */
    /* Written by the watchdog thread only. */
    _Atomic int64_t reported_since;
} gocc__obs;

/* What a waiter is about to wait on, kept by its owner (plain fields):
 * park.c publishes it into gocc__obs only when the thread really goes to
 * sleep, so a wait that a short spin catches writes nothing shared. */
typedef struct gocc__waitinfo {
    int reason; /* GOCC_WAIT_NONE: nothing to show */
    bool has_ctx;
    bool published; /* copied into obs (and must be cleared) */
    const void *obj;
    int64_t detail, len, deadline;
} gocc__waitinfo;

typedef struct gocc__task gocc__task;

typedef struct gocc__waiter {
    _Atomic uint32_t state;         /* GOCC__PARK_*: the futex word */
    gocc__task *task;               /* the coroutine task this waiter belongs to; NULL for a
                               * thread's own waiter (set once, never changes) */
    _Atomic int claim;              /* 0 = armed, 1 = claimed by a waker */
    gocc__sudog *winner;            /* written by the claimer before the wake */
    struct gocc__waiter *wake_next; /* the claimer's wake queue (gocc__wakeq) */
#if !defined(__linux__)
    gocc__mutex mu; /* condvar fallback */
    pthread_cond_t cv;
#endif
    int spin; /* adaptive spin budget (park.c), owner only */
    /* The layers above's record of the waiter, kept next to it: park.c
     * never reads or writes it (it reports through gocc__park_hooks). */
    struct {
        /* observe.c: the registry of all waiters (under its lock) and what
         * the dump shows. */
        struct gocc__waiter *reg_prev, *reg_next;
        long tid;            /* OS thread id, set when a thread's waiter is made */
        bool os_named;       /* the OS thread name was changed by a name */
        char name_local[32]; /* gocc_task_name's answer, owner only */
        gocc__waitinfo wait; /* owner only: what the next sleep is for */
        void *current_pool;  /* workpool.c, owner only: the pool whose job runs here */
        gocc__obs obs;
    };
} gocc__waiter;

/* Marker winners: the waiter's timeout fired (gocc__select with a
 * deadline); a waker found it on a module's own wait list (gocc__wait_armed). */
#define GOCC__WINNER_TIMEOUT ((gocc__sudog *)(uintptr_t)1)
#define GOCC__WINNER_SIGNAL ((gocc__sudog *)(uintptr_t)2)

/* The caller's waiter: the running coroutine task's own, or else the
 * calling thread's (made on first use; lives as long as the thread).
 * gocc__self_try returns NULL if that first allocation fails; gocc__self
 * is for callers known to have one already. */
gocc__waiter *gocc__self_try(void);
gocc__waiter *gocc__self(void);
/* The scheduler switches the answer of gocc__self_try on every switch
 * (NULL: back to the thread's own waiter, made on demand). */
void gocc__set_self(gocc__waiter *w);
/* The calling thread's own waiter, never a task's (made on first use). */
gocc__waiter *gocc__thread_waiter(void);
/* The calling thread's waiter if it has one (never allocates). */
gocc__waiter *gocc__self_peek(void);

/* What park.c tells the layer above, the one way it reaches it: a
 * thread's waiter was made (before its first use) or is going (at thread
 * exit), and a thread's waiter goes to sleep now (after the spin, so a
 * wait that a spin catches reports nothing). Installed once, by
 * gocc__runtime_init, before any thread waiter exists; a thread reads it
 * only after its own gocc__runtime_init. A task's waiter is the
 * scheduler's to report. Each hook may be NULL. */
typedef struct gocc__park_hooks {
    void (*made)(gocc__waiter *w);
    void (*gone)(gocc__waiter *w);
    void (*sleeps)(gocc__waiter *w);
} gocc__park_hooks;
void gocc__park_set_hooks(const gocc__park_hooks *h);

/* Arm for a new wait: claim = 0, state = waiting. Call before enqueueing. */
void gocc__waiter_arm(gocc__waiter *w);

/* Try to take the waiter: true for exactly one caller per armed wait. */
static inline bool gocc__waiter_claim(gocc__waiter *w) {
    int expect = 0;
    return atomic_compare_exchange_strong_explicit(&w->claim, &expect, 1, memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* Block until woken. Spins briefly first (a wake often comes within a few
 * microseconds on another core), then sleeps on the futex / condvar. */
void gocc__park(gocc__waiter *w);

/* Like gocc__park, giving up at @p deadline (monotonic ns). Returns true
 * if woken, false on timeout (the caller must then settle the race with a
 * possible waker itself, under its own lock). */
bool gocc__park_until(gocc__waiter *w, int64_t deadline);

/* Wake a claimed waiter. Call with no channel lock held. */
void gocc__wake(gocc__waiter *w);

/* ---- the wake queue ----
 *
 * Waiters claimed under a lock, to be woken once it is dropped (the
 * kernel's wake_q). Every "claim under the lock, wake after unlock" goes
 * through one: gocc__wakeq_add (or _signal) each waiter won while holding
 * the lock, unlock, gocc__wakeq_wake_all. The link is the waiter's own
 * wake_next: a claimed waiter belongs to its claimer until the wake, so it
 * is on one queue at most, and a queue needs no memory of its own. The
 * order is the order added (FIFO). wake_all reads each link before the
 * wake: the woken waiter may arm again (and its task record go) at once. */
typedef struct gocc__wakeq {
    gocc__waiter *head, *tail;
} gocc__wakeq;
#define GOCC__WAKEQ_INIT \
    { NULL, NULL }

/* Queue a claimed waiter whose winner the claimer has set (a sudog). */
static inline void gocc__wakeq_add(gocc__wakeq *q, gocc__waiter *w) {
    w->wake_next = NULL;
    if (q->tail != NULL)
        q->tail->wake_next = w;
    else
        q->head = w;
    q->tail = w;
}

/* Move every waiter of @p from to the end of @p q; @p from is left empty. */
static inline void gocc__wakeq_splice(gocc__wakeq *q, gocc__wakeq *from) {
    if (from->head == NULL) return;
    if (q->tail != NULL)
        q->tail->wake_next = from->head;
    else
        q->head = from->head;
    q->tail = from->tail;
    from->head = from->tail = NULL;
}

/* Wake every queued waiter (no lock held); @p q is left empty. */
static inline void gocc__wakeq_wake_all(gocc__wakeq *q) {
    gocc__waiter *w = q->head;
    q->head = q->tail = NULL;
    while (w != NULL) {
        gocc__waiter *next = w->wake_next;
        gocc__wake(w);
        w = next;
    }
}

/* ---- channels (chan.c) ---- */

/* One wait record: a waiter blocked on one case of one channel. Lives on
 * the blocked thread's stack; linked into ch->sendq or ch->recvq. */
struct gocc__sudog {
    gocc__waiter *w;
    gocc_chan_t *ch;
    gocc__sudog *prev, *next; /* queue links, under ch->mu */
    void *elem;               /* send: source; recv: destination (may be NULL) */
    int case_index;           /* index in the select's cases */
    bool queued;              /* in a queue (under ch->mu) */
    bool ok;                  /* set by the claimer: completed with a value */
};

typedef struct gocc__waitq {
    _Atomic(gocc__sudog *) first; /* atomic only for the lock-free peek */
    gocc__sudog *last;
} gocc__waitq;

struct gocc_chan {
    gocc__mutex mu;
    _Atomic size_t refs;
    size_t elem_size;
    size_t cap;
    _Atomic size_t count;               /* values in buf; written under mu */
    size_t recvx, sendx;                /* ring indices, under mu */
    _Atomic bool closed;                /* written under mu */
    gocc__waitq recvq;                  /* blocked receivers, FIFO */
    gocc__waitq sendq;                  /* blocked senders, FIFO */
    unsigned char *buf;                 /* cap * elem_size bytes, follows the struct */
    void (*dtor)(void *elem, void *ud); /* for values left at the last release */
    void *dtor_ud;
};

/* Poll one case with ch->mu held. On success fills s->ok and returns true;
 * any waiter to wake is added to *wake (woken by the caller after unlock). */
bool gocc__chan_poll_locked(gocc_chan_t *ch, int dir, void *elem, bool *ok, gocc__waiter **wake);
/* One-case select_try: 0 (c->ok set) or GOCC_EAGAIN / GOCC_EINVAL. */
int gocc__chan_try_case(gocc_case_t *c);
void gocc__waitq_push(gocc__waitq *q, gocc__sudog *s);
void gocc__waitq_remove(gocc__waitq *q, gocc__sudog *s);

/* ---- select (select.c) ---- */

/* The engine behind send, recv, select and sleep: poll the cases in random
 * order; if none is ready and @p block, wait on all of them plus ctx's done
 * channel plus, when @p deadline >= 0, a timeout at that monotonic time.
 * Returns the case index, GOCC__TIMED_OUT (the deadline passed), GOCC_EAGAIN
 * (not blocking, or no timer thread could be started for the deadline), the
 * context's error, GOCC_EINVAL or GOCC_ENOMEM. */
int gocc__select(gocc_case_t *cases, size_t n, gocc_ctx_t *ctx, bool block, int64_t deadline,
                 int reason);
/* gocc__select's "the deadline passed": not an errno value, and never
 * returned by a public function. Kept apart from GOCC_EAGAIN so that a
 * timer that could not be had is never taken for time that passed. */
#define GOCC__TIMED_OUT (-4096 - 1)

/* Wait records on a module's own list (semaphore, group, waitgroup, once,
 * worker pool, rate limiter, descriptor handles): the same claim protocol
 * as channel sudogs. A waker, holding the module's lock, unlinks a record
 * and claims its waiter; on success it completes the request for it and
 * queues it (gocc__wakeq_signal), to wake after dropping the lock (or,
 * for one waiter alone, calls gocc__signal then). A failed claim means the
 * waiter's context won: skip it. */
typedef struct gocc__waitrec {
    gocc__waiter *w;
    struct gocc__waitrec *prev, *next; /* under the module's lock */
    int64_t n;                         /* what it asks for (semaphore weight) */
    bool queued;                       /* under the module's lock */
} gocc__waitrec;

/* Append r (tail may be NULL for a list kept by its head only: then r goes
 * first). */
static inline void gocc__waitrec_push(gocc__waitrec **head, gocc__waitrec **tail,
                                      gocc__waitrec *r) {
    r->queued = true;
    if (tail == NULL) {
        r->prev = NULL;
        r->next = *head;
        if (*head) (*head)->prev = r;
        *head = r;
        return;
    }
    r->next = NULL;
    r->prev = *tail;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static inline void gocc__waitrec_unlink(gocc__waitrec **head, gocc__waitrec **tail,
                                        gocc__waitrec *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else if (tail)
        *tail = r->prev;
    r->prev = r->next = NULL;
    r->queued = false;
}

/* Wake a claimed waiter found on a module list (no lock held). */
static inline void gocc__signal(gocc__waiter *w) {
    w->winner = GOCC__WINNER_SIGNAL;
    gocc__wake(w);
}

/* Queue a claimed waiter found on a module list, to be signalled (its
 * winner GOCC__WINNER_SIGNAL) by gocc__wakeq_wake_all. */
static inline void gocc__wakeq_signal(gocc__wakeq *q, gocc__waiter *w) {
    w->winner = GOCC__WINNER_SIGNAL;
    gocc__wakeq_add(q, w);
}

/* Unlink the whole list under the lock; claim each waiter and queue the
 * ones won on @p q (those lost went to their contexts). */
static inline void gocc__waitrec_take_all(gocc__waitrec **head, gocc__waitrec **tail,
                                          gocc__wakeq *q) {
    gocc__waitrec *r = *head;
    while (r != NULL) {
        gocc__waitrec *next = r->next;
        r->prev = r->next = NULL;
        r->queued = false;
        if (gocc__waiter_claim(r->w)) gocc__wakeq_signal(q, r->w);
        r = next;
    }
    *head = NULL;
    if (tail) *tail = NULL;
}

/* Park an armed waiter that the caller has published on its own list, until
 * a waker signals it or ctx is done (through @p done, from
 * gocc__ctx_done_chan, NULL for none). @p reason, @p obj and @p detail are
 * what the dump shows (the object waited on, a semaphore weight). Call with
 * no lock held. Returns 0 when
 * signalled, else the context's error; then the caller must unlink its
 * record if it is still queued (under its lock). */
int gocc__wait_armed(gocc__waiter *w, gocc_chan_t *done, gocc_ctx_t *ctx, int reason,
                     const void *obj, int64_t detail);

/* ---- contexts (ctx.c) ---- */

/* The done channel to wait on (lazily made), or NULL for a context that can
 * never be done. *err gets GOCC_ENOMEM when it could not be made. */
gocc_chan_t *gocc__ctx_done_chan(gocc_ctx_t *ctx, int *err);

/* ---- timers (timer.c) ----
 *
 * One timer thread runs every timer's callback, in deadline order, with the
 * heap lock dropped. An entry is owned by its embedder; gocc__timer_del_sync
 * guarantees the callback is not running when it returns, so a stack entry
 * may then go out of scope.
 */
typedef struct gocc__timer_entry {
    int64_t when;      /* under the heap lock */
    int64_t period;    /* > 0: re-armed after each fire */
    uint64_t seq;      /* ties broken by insertion order */
    size_t heap_index; /* SIZE_MAX when not in the heap */
    void (*fn)(struct gocc__timer_entry *e, int64_t now);
    void *arg;
    bool firing; /* callback running */
    bool quiet;  /* wakes no waiter (pool trims) */
} gocc__timer_entry;

void gocc__timer_init(gocc__timer_entry *e, void (*fn)(gocc__timer_entry *, int64_t), void *arg);
/* Reserve (or give back) room for one entry in the heap, and make sure the
 * timer thread runs, so that gocc__timer_add cannot fail afterwards.
 * Returns 0, GOCC_ENOMEM or GOCC_EAGAIN. */
int gocc__timer_reserve(void);
void gocc__timer_unreserve(void);
/* Arm (or re-arm) at @p when, repeating every @p period ns if > 0. The
 * entry must hold a reservation. */
void gocc__timer_add(gocc__timer_entry *e, int64_t when, int64_t period);
/* Disarm: true if it was armed and is now removed (its callback will not
 * run). False if it was not armed or is firing right now. */
bool gocc__timer_del(gocc__timer_entry *e);
/* As gocc__timer_del, and when the callback is running on another thread,
 * wait for it to return first. */
bool gocc__timer_del_sync(gocc__timer_entry *e);
/* Armed entries that could wake someone (all but quiet ones): the
 * watchdog's "nothing can wake anyone" needs it to be 0. */
size_t gocc__timer_loud(void);

/* ---- I/O: the poller (netpoll.c) and descriptor handles (fd.c) ----
 *
 * The poller waits for the readiness of every registered descriptor
 * (epoll, edge-triggered, on Linux; poll(2) elsewhere): not a thread of its
 * own but a role an idle worker takes instead of its futex sleep (the
 * monitor looks when every worker is busy). It hands each edge to fd.c,
 * which bumps the
 * handle's per-direction edge count and claims the call waiting for it.
 * Registrations live in a slot table under the poller's lock (rank
 * NETPOLL); the kernel is given a key (slot index and generation), never a
 * pointer, so an edge that arrives for a slot freed meanwhile is dropped.
 */

/* Register @p fd for a handle (edge-triggered: reads, writes, hang-ups),
 * opening the backend if it is not open. *key names the slot. Returns 0;
 * 1 when the kernel cannot watch this descriptor (a regular file: it is
 * always ready, nothing was registered); GOCC_ENOMEM, GOCC_EAGAIN (no
 * epoll instance or wake descriptor) or another negative errno. */
int gocc__netpoll_register(int fd, gocc_fd_t *f, uint64_t *key);
/* Forget the slot and the kernel's registration. Call before close(fd). */
void gocc__netpoll_unregister(int fd, uint64_t key);
/* A call published an I/O wait: make sure someone polls (the poll(2)
 * poller also rebuilds its set). */
void gocc__netpoll_kick(void);
/* The poll role (netpoll.c's top comment): claim it (false: someone holds
 * it, nothing is registered, or shutdown runs); give it back.
 * gocc__netpoll_poll, by the holder: wait for readiness
 * (block: until some, or a break; else a look), call woke(arg) (may be
 * NULL), dispatch what came, give the role back, wake the readied waiters.
 * gocc__netpoll_break ends the holder's wait. */
bool gocc__netpoll_wanted(void); /* registered descriptors, nobody polling */
bool gocc__netpoll_claim(void);
void gocc__netpoll_release(void);
void gocc__netpoll_poll(bool block, void (*woke)(void *), void *arg);
void gocc__netpoll_break(void);
/* Some descriptor is registered. */
bool gocc__netpoll_in_use(void);
/* sched.c: get a worker to take the poll role (netpoll.c's kick). */
void gocc__sched_poke(void);
/* Before a wait: make sure a poller runs for the registered descriptors
 * (in the child of a fork it is remade). 0, GOCC_ENOMEM or GOCC_EAGAIN. */
int gocc__netpoll_need(void);
/* One wait for @p events (GOCC_FD_*) on a descriptor the caller keeps
 * (gocc_fd_poll): 0 when the kernel reported something (the caller polls
 * again), the context's error, or a negative errno. No lock held. */
int gocc__netpoll_wait_once(int fd, int events, gocc_ctx_t *ctx);

/* fd.c, called by the poller holding its lock: readiness @p events
 * (GOCC_FD_*) arrived for @p f. Claimed waiters go on @p wake, woken
 * once the poller's lock is dropped. */
void gocc__fd_ready(gocc_fd_t *f, int events, gocc__wakeq *wake);
/* What the calls waiting on @p f wait for now (GOCC_FD_*; the poll(2)
 * poller's interest set). */
int gocc__fd_interest(gocc_fd_t *f);
/* Tests: calls on @p f's side for @p events (GOCC_FD_READ or _WRITE)
 * that hold or wait for their turn. */
size_t gocc__fd_queued(gocc_fd_t *f, int events);

/* ---- coroutines: the switch and the stacks (context.c) ---- */

#if !defined(GOCC_CONTEXT_ASM)
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(GOCC_FORCE_UCONTEXT)
#define GOCC_CONTEXT_ASM 1
#else
#define GOCC_CONTEXT_ASM 0
#endif
#endif
#if !GOCC_CONTEXT_ASM
#include <ucontext.h>
#endif

/* A suspended execution context. */
typedef struct gocc__cctx {
#if GOCC_CONTEXT_ASM
    void *sp; /* everything else is saved on the stack it points into */
#else
    ucontext_t uc;
    void (*entry)(void *);
    void *arg;
#endif
} gocc__cctx;

/* Save the caller into *from and resume *to. */
void gocc__ctx_switch(gocc__cctx *from, gocc__cctx *to);
/* Prepare *c to start entry(arg) on the stack [stack_lo, stack_lo + size);
 * entry must never return. Returns 0 or GOCC_ENOMEM. */
int gocc__ctx_make(gocc__cctx *c, void *stack_lo, size_t size, void (*entry)(void *), void *arg);

enum { GOCC__GUARD_NONE, GOCC__GUARD_MADV, GOCC__GUARD_MPROTECT };
typedef struct gocc__stack {
    void *base;  /* the mapping: guard page, then the stack */
    void *lo;    /* lowest usable address */
    size_t size; /* usable bytes */
    int guard;   /* GOCC__GUARD_*: NONE means a canary at lo */
    unsigned vg_id;
} gocc__stack;

/* A requested size rounded to whole pages (at least 4); 0 if absurd. */
size_t gocc__stack_round(size_t size);
/* Reserve a guarded stack of (rounded) @p size bytes: 0, GOCC_ENOMEM, GOCC_EINVAL. */
int gocc__stack_alloc(gocc__stack *s, size_t size);
void gocc__stack_free(gocc__stack *s);
/* False when an unguarded stack's canary was overwritten (an overflow). */
bool gocc__stack_intact(const gocc__stack *s);

/* ---- the scheduler (sched.c) ----
 *
 * Coroutine tasks on `procs` worker threads. A task's waiter is embedded in
 * its record (w->task != NULL): gocc__park on it switches to the worker's
 * scheduler, gocc__wake makes it runnable. The park protocol (Go's
 * park_m): the task switches away with its waiter WAITING; only then, on
 * the scheduler's stack, is WAITING -> SLEEPING tried; if a waker (WOKEN)
 * or a timeout (TIMEDOUT) got there first, the task runs again at once. A
 * waker that sees SLEEPING makes the task runnable: its registers are
 * saved, so no worker can resume a stack still in use. */
enum {
    GOCC__PARK_WAITING = 0,
    GOCC__PARK_SLEEPING = 1,
    GOCC__PARK_WOKEN = 2,
    GOCC__PARK_TIMEDOUT = 3
};

/* What a new task runs (a copy is kept in its record). */
typedef struct gocc__start {
    gocc_fn fn;
    gocc_ctx_t *ctx; /* retained by the caller for the task */
    void *arg;
    void (*on_exit)(void *, int);
    void *exit_arg;
    uint64_t task_id;  /* 0: runtime work, not counted */
    const char *name;  /* may be NULL; copied */
    size_t stack_size; /* 0: the runtime default */
} gocc__start;

/* Start a coroutine task. Returns 0, GOCC_ENOMEM, GOCC_EINVAL (a stack
 * size that cannot be had) or GOCC_EAGAIN (no worker thread can run). */
int gocc__sched_go(const gocc__start *st);
/* Park the running task (w->task != NULL) until woken, or until
 * @p deadline (monotonic ns; < 0: none). Returns false on timeout, which
 * does not mean nobody claimed the waiter: a claimer's wake may still be
 * on its way, so the caller settles it under its own lock, as with
 * gocc__park_until on a thread (and parks again for that wake). */
bool gocc__sched_park(gocc__waiter *w, int64_t deadline);
/* Make a parked task runnable (its waiter went SLEEPING -> WOKEN). */
void gocc__sched_ready(gocc__task *t);
/* The library's first use: procs is fixed from now on. */
void gocc__sched_freeze(void);
/* Settings and numbers (runtime.c's configure and queries). */
int gocc__sched_configure(const gocc_runtime_config_t *cfg);
void gocc__sched_config_get(gocc_runtime_config_t *out);
size_t gocc__sched_threads(void);
int gocc__sched_shutdown(void);
void gocc__sched_fork_prepare(void);
void gocc__sched_fork_parent(void);
void gocc__sched_fork_child(void);
/* What the dump shows of a coroutine task (w->task != NULL): RUNNABLE
 * (ready, waiting for a worker), RUNNING (*since: when it last started
 * running on its worker, without coming back since), PARKED (blocked in
 * libgocc: the waiter's obs record says on what), NONE (no task). */
enum { GOCC__TASK_NONE, GOCC__TASK_RUNNABLE, GOCC__TASK_RUNNING, GOCC__TASK_PARKED };
int gocc__sched_task_state(const gocc__waiter *w, int64_t *since);
/* A parked task's call stack from its saved frame pointers: up to @p max
 * return addresses, innermost first (the switch's caller first); 0 where
 * it cannot be walked (not parked, no frame pointers, ucontext, TSan). */
int gocc__sched_task_stack(const gocc__waiter *w, uintptr_t *pcs, int max);
/* The block threshold in force (no lock taken). */
int64_t gocc__sched_threshold(void);
/* The running coroutine task's id (0 if none): fork keeps it counted. */
uint64_t gocc__sched_current_task_id(void);

/* ---- runtime (runtime.c) ---- */

/* gocc_go, and when fn returns (before the task stops counting as live),
 * on_exit(exit_arg, fn's result) on the same thread. @p name (may be NULL;
 * copied) is the task's name until it sets its own. */
int gocc__go_ex(gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                void *exit_arg, const char *name);

/* Run one task's body on the calling thread or coroutine: fn(ctx, arg)
 * between the task_start and task_end probes, shown by the dump as task
 * @p id (named @p name, may be NULL, until it names itself) while it runs.
 * The caller counts the task (gocc__tasks_inc/_dec) around it: an
 * own_thread task from gocc_go on, a worker-pool job while it runs. */
int gocc__task_run(gocc__waiter *w, uint64_t id, gocc_fn fn, gocc_ctx_t *ctx, void *arg,
                   const char *name);

/* Run fn(NULL, arg) on a runtime thread as runtime work, not a task: not
 * counted by gocc_tasks_live (worker-pool workers, which count themselves
 * only while they run a job). */
int gocc__spawn(gocc_fn fn, void *arg);

/* Start a runtime-internal thread (task threads, the timer thread, the
 * watch thread) with every signal blocked, joinable, with @p stack bytes of
 * stack (0: the default). The one place threads are made, so the one
 * fault-injection point for them. Returns 0, GOCC_ENOMEM or GOCC_EAGAIN. */
int gocc__thread_create(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg);

/* Once per process, on the library's first use (its first allocation, or a
 * call that takes a global lock without allocating): registers the fork
 * handlers (runtime.c). Never at load time. */
void gocc__runtime_init(void);

/* Fork support (pthread_atfork, runtime.c drives them). Prepare takes the
 * module's global locks in rank order (GOCC_LOCK_RANKS: pool registry,
 * watch, waiter registry, timer heap, poller, scheduler, thread cache);
 * parent releases them;
 * child releases them and resets what refers to threads that do not exist
 * in the child. */
void gocc__timer_fork_prepare(void);
void gocc__timer_fork_parent(void);
void gocc__timer_fork_child(void);
void gocc__pool_fork_prepare(void);
void gocc__pool_fork_parent(void);
void gocc__pool_fork_child(void);
void gocc__obs_fork_prepare(void);
void gocc__obs_fork_parent(void);
void gocc__obs_fork_child(void);

void gocc__netpoll_fork_prepare(void);
void gocc__netpoll_fork_parent(void);
void gocc__netpoll_fork_child(void);

/* Shutdown steps (gocc_runtime_shutdown): 0 when stopped (or not running),
 * GOCC_EAGAIN when still needed. */
int gocc__timer_shutdown(void);
int gocc__watch_shutdown(void);
int gocc__netpoll_shutdown(void);

/* Count/uncount a task (every part of the library that starts one).
 * gocc__tasks_inc returns the new task's id (1, 2, ...; for the dump).
 * gocc__tasks_renew: a counted task ends and the next one starts on the
 * same thread at once (a worker pool's next job): a new id, the count
 * unchanged (it never dips between them). */
uint64_t gocc__tasks_inc(void);
uint64_t gocc__tasks_renew(void);
void gocc__tasks_dec(void);

/* ---- observability (observe.c) ---- */

/* A new waiter joins the registry the dump walks; a dying one leaves it. */
void gocc__obs_register(gocc__waiter *w);
void gocc__obs_unregister(gocc__waiter *w);
/* park.c's hooks (runtime.c installs them): a thread's waiter is made
 * (its thread id, then the registry) or goes; it sleeps (publish its wait
 * if it noted one). */
extern const gocc__park_hooks gocc__obs_park_hooks;

/* The thread of @p w starts running task @p id (fn, default name or NULL),
 * and stops. w may be NULL (a thread that could not make its waiter). */
void gocc__obs_task_begin(gocc__waiter *w, uint64_t id, gocc_fn fn, const char *name);
void gocc__obs_task_end(gocc__waiter *w);

/* Note what @p w is about to park on (owner-only stores; park.c publishes
 * it for the dump if the thread goes to sleep), and that it runs again. */
static inline void gocc__obs_park(gocc__waiter *w, int reason, const void *obj, int64_t detail,
                                  int64_t len, int64_t deadline, bool has_ctx) {
    w->wait = (gocc__waitinfo){reason, has_ctx, false, obj, detail, len, deadline};
}
void gocc__obs_publish(gocc__waiter *w); /* park.c, before it sleeps */
void gocc__obs_clear(gocc__waiter *w);
static inline void gocc__obs_unpark(gocc__waiter *w) {
    if (GOCC_UNLIKELY(w->wait.published)) gocc__obs_clear(w);
    w->wait.reason = GOCC_WAIT_NONE;
}

/* The OS name of a runtime thread ("gocc", "gocc-timer"), first 15 bytes. */
void gocc__os_thread_name(const char *name);

/* Static tracing probes (USDT, <sys/sdt.h>): a NOP when not traced, nothing
 * at all when the build has no sys/sdt.h (meson option 'probes'). Provider
 * "libgocc"; docs/debugging.md lists them. */
#if defined(GOCC_HAVE_SDT)
#include <sys/sdt.h>
#define GOCC_PROBE1(name, a) DTRACE_PROBE1(libgocc, name, a)
#define GOCC_PROBE2(name, a, b) DTRACE_PROBE2(libgocc, name, a, b)
#else
#define GOCC_PROBE1(name, a) ((void)0)
#define GOCC_PROBE2(name, a, b) ((void)0)
#endif

/* ---- misuse reports and live-object counts (misuse.c) ---- */

/* The reference count of a freed object: written just before the free
 * (misuse.c says what it catches). An entry point that finds it calls
 * gocc__misuse_released. */
#define GOCC__RELEASED ((size_t) ~(size_t)0x21524110u)

/* "libgocc: <call>: <kind> <obj> was already released" on stderr, abort. */
_Noreturn __attribute__((cold, nothrow, leaf)) void
gocc__misuse_released(const char *call, const char *kind, const void *obj);

/* Live objects by kind: one relaxed add in a constructor, one in the last
 * release (never on a send/recv path). Read for the dump. */
enum {
    GOCC__LIVE_CHAN,
    GOCC__LIVE_CTX,
    GOCC__LIVE_TIMER,
    GOCC__LIVE_POOL,
    GOCC__LIVE_WORKPOOL,
    GOCC__LIVE_FD,
    GOCC__LIVE_N
};
extern _Atomic long gocc__live[GOCC__LIVE_N];
static inline void gocc__live_add(int kind, long d) {
    atomic_fetch_add_explicit(&gocc__live[kind], d, memory_order_relaxed);
}
void gocc__live_counts(long out[GOCC__LIVE_N]);

/* What held the last gocc_runtime_shutdown that returned GOCC_EAGAIN, as
 * GOCC__HELD_* bits; 0 once one succeeded (runtime.c; the dump says it). */
enum {
    GOCC__HELD_TASKS = 1u << 0,   /* gocc_tasks_live() > 0 */
    GOCC__HELD_THREADS = 1u << 1, /* scheduler workers or own threads busy */
    GOCC__HELD_TIMERS = 1u << 2,  /* timers reserved or armed */
    GOCC__HELD_WATCH = 1u << 3,   /* the watch thread would not stop */
    GOCC__HELD_NETPOLL = 1u << 4, /* fds registered with the poller */
};
unsigned gocc__shutdown_held(void);

/* Abort with gocc__misuse_released when @p ctx (may be NULL) was released
 * (ctx.c). */
void gocc__ctx_check(gocc_ctx_t *ctx, const char *call);

#endif /* GOCC_INTERNAL_H */
