/*
 * sched.c - coroutine tasks multiplexed onto a few worker threads (Go's
 * M:N scheduler, simplified): run queues, parking, stealing, idle workers,
 * and the monitor that rescues ready tasks from a worker stuck outside
 * libgocc.
 *
 * A task is a record (gocc__task) with its own stack and its own waiter.
 * Workers are runtime threads; each runs a scheduler loop on its own
 * pthread stack and switches into one task at a time. A task switches back
 * to that loop when it parks, yields or ends; the loop then finishes what
 * the task could not do on its own stack (Go's park_m): try WAITING ->
 * SLEEPING, requeue, or recycle the record.
 *
 * Run queues (per worker, Go's runq):
 *  - runnext: the task a running task just woke. It runs next on the same
 *    thread, so the partner of a handoff runs without a system call and
 *    with warm caches. At most RUNNEXT_STREAK runs in a row come from it,
 *    so two chatty tasks cannot starve the rest of the queue.
 *  - ring: RING slots, pushed only by the owner, taken by the owner and
 *    by thieves (CAS on head). When full, half goes to the global queue.
 *  - the global queue (sched.mu): wakes from plain threads and the timer
 *    thread, yields, overflow. Every GLOBAL_EVERY ticks a worker looks
 *    there first, so it is never starved.
 *
 * Idle and spinning workers (Go's wakep / resetspinning): a worker with no
 * work becomes "spinning" while it steals; if that finds nothing it goes
 * on the idle list and sleeps on its thread's own futex waiter. New work
 * wakes an idle worker only when no worker spins (at most one spinner is
 * woken for a burst of work; a spinner that finds work wakes the next).
 * A task woken into runnext wakes nobody (the waker's worker runs it next)
 * unless it pushed an older runnext task out into the ring.
 * No lost wake-up: a worker stops spinning (nspinning) and publishes
 * itself idle (nactive down, under S.mu), then issues a full fence and
 * looks at every queue once more; a producer publishes its task, fences,
 * then reads nspinning and nactive (wakep). One of the two sees the other:
 * either the worker finds the task, or the producer sees a free slot and
 * wakes an idle worker (or a spinner that will find it). Three more rules
 * close what the spin model (docs/model/sched.pml) found the pairing
 * alone leaves open: a wakep that found nobody to wake gives its spinning
 * count back and looks again (a producer that saw that count left its
 * work to it); the last spinner that takes work under S.mu after it
 * stopped spinning still wakes the next, as stop_spinning does; and a
 * worker that saw work in its re-check becomes a spinner, so it may steal
 * it (Go's becomeSpinning after checkRunqsNoP).
 *
 * Blocking outside libgocc: each worker bumps its run counter every time it returns
 * to its loop. The monitor thread looks every 1-10 ms; a worker running the
 * same task for block_threshold while tasks wait is marked stuck: it stops
 * counting against `procs`, and an idle worker is woken (or a new one made,
 * up to max_threads) to run the waiting tasks. Thieves also take a stuck
 * worker's runnext. When the stuck task comes back, its worker counts
 * again; if more than `procs` now run, it hands its queue to the global
 * queue and goes idle; surplus idle workers exit after idle_timeout.
 *
 * Locks: S.mon_mu, S.mu, S.cache_mu, ranked SCHED_MON, SCHED, SCHED_CACHE
 * in GOCC_LOCK_RANKS; nothing else is taken under any of them (the fork
 * handlers take all three, in that order).
 *
 * Memory: task records (with their stacks) are recycled: a per-worker
 * cache first, then a global one, then munmap. Workers are never freed
 * while the process runs (thieves read them without locks); a worker that
 * exits leaves its record for the next one.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

#if defined(GOCC_TSAN)
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif
#if defined(GOCC_ASAN)
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

#define RING 256
#define RUNNEXT_STREAK 3
#define GLOBAL_EVERY 61
#define STEAL_ROUNDS 4
#define RUNNEXT_STEAL_PAUSE 100 /* cpu_relax pauses (a few microseconds) */
#define MAX_WORKERS 1024
#define LOCAL_CACHE 32    /* dead task records a worker keeps */
#define GLOBAL_CACHE 4096 /* ... and the runtime keeps for good */
#define TRIM_BATCH 256    /* records beyond it the monitor frees per look */

#if defined(GOCC_ASAN) || defined(GOCC_TSAN)
#define DEFAULT_STACK (1024u * 1024u) /* sanitizers need room */
#else
#define DEFAULT_STACK (256u * 1024u)
#endif
#define DEFAULT_THRESHOLD (10 * GOCC_MILLISECOND)
#define DEFAULT_IDLE (10 * GOCC_SECOND)

typedef struct gocc__worker worker;

/* A full fence (store-load): the idle protocol's two sides each publish,
 * fence, then look at the other's word. ThreadSanitizer does not model
 * fences, so there both sides do a sequentially consistent read-modify-
 * write of one word instead, which orders them the same way. */
#if defined(GOCC_TSAN)
static _Atomic int fence_word;
#define SC_FENCE() ((void)atomic_fetch_add_explicit(&fence_word, 0, memory_order_seq_cst))
#else
#define SC_FENCE() atomic_thread_fence(memory_order_seq_cst)
#endif

/* What the task asks its scheduler to do once it is off its stack. */
enum { AFTER_NONE, AFTER_PARK, AFTER_YIELD, AFTER_EXIT };

struct gocc__task {
    gocc__waiter w; /* first: the task's waiter (w.task == this) */
    gocc__cctx ctx; /* saved registers while not running */
    gocc__stack stack;
    gocc__task *next; /* global queue or cache link */
    gocc__start st;   /* what it runs */
    char name[32];
    int saved_errno;         /* errno is the task's own */
    _Atomic int state;       /* GOCC__TASK_*: what the dump shows (relaxed) */
    _Atomic(worker *) on;    /* the worker it runs or last ran on */
    _Atomic uint64_t run_no; /* that worker's run number when it started */
    gocc__timer_entry tm;    /* a timed park's timeout */
#if defined(GOCC_TSAN)
    void *tsan_fiber;
#endif
#if defined(GOCC_ASAN)
    void *asan_fake; /* the fake stack saved when it switched away */
    bool ran;        /* the stack was used before (its poison may linger) */
#endif
};

struct gocc__worker {
    gocc__cctx sched_ctx; /* the loop's context, on the thread's stack */
    gocc__task *cur;      /* the task running now (loop-owned) */
    int after;            /* AFTER_*: set by the task before it switches back */
    _Atomic(gocc__task *) runnext;
    _Atomic uint32_t head; /* ring: taken by owner and thieves (CAS) */
    _Atomic uint32_t tail; /* ring: pushed by the owner only */
    _Atomic(gocc__task *) ring[RING];
    /* (returns to the loop) << 1 | stuck. The worker bumps it on every
     * return (exchange); the monitor sets the stuck bit with a CAS on the
     * value it saw, so a mark can only land on the run it looked at, and
     * the worker's exchange sees every mark that landed. A stuck worker
     * does not count against procs. */
    _Atomic uint64_t run;
    uint64_t ticks;       /* owner's copy of run >> 1 */
    _Atomic bool in_task; /* running a task (the monitor reads it) */
    bool spinning;        /* owner only */
    bool idle;            /* on the idle list (sched.mu) */
    bool in_poll;         /* idle in the poller's wait, not its futex (sched.mu) */
    bool poll_taken;      /* a waker took it off the idle list during that wait */
    bool quit;            /* shutdown: exit (sched.mu) */
    bool alive;           /* a thread runs this record (sched.mu) */
    uint32_t sched_tick, streak;
    worker *idle_next;   /* sched.mu */
    gocc__waiter idle_w; /* idle sleeps (a thread waiter, never registered) */
    pthread_t thread;
    int index;
    gocc__task *cache; /* dead records with warm stacks (owner only) */
    size_t ncache;
    /* Written by the monitor only (read by the dump): the run it saw last,
     * and when it first saw it. No clock is read when a task switches in:
     * "running since" is the monitor's, to its 1-10 ms. */
    _Atomic uint64_t last_run;
    _Atomic int64_t last_seen;
#if defined(GOCC_TSAN)
    void *tsan_fiber;
#endif
#if defined(GOCC_ASAN)
    void *asan_fake;
    const void *stack_bottom;
    size_t stack_size;
#endif
};

static struct {
    gocc__mutex mu; /* global queue, idle list, worker records */
    gocc__task *gq_head, *gq_tail;
    _Atomic size_t gq_len;
    worker *idle; /* idle workers, most recent first */
    _Atomic int nidle;
    _Atomic int nspinning;
    _Atomic int nactive;  /* running, not idle, not stuck */
    _Atomic int nworkers; /* records in `all` that were ever used */
    _Atomic int nthreads; /* worker threads alive */
    _Atomic size_t nlive; /* coroutine tasks started and not ended (runtime work too) */
    worker *all[MAX_WORKERS];
    bool started;        /* procs fixed (mu) */
    _Atomic bool frozen; /* the library was used: procs may not change */
    /* Settings: written under mu, read anywhere (atomic, relaxed). */
    _Atomic int procs;
    _Atomic size_t stack_size;
    size_t max_threads; /* 0: no limit (mu) */
    _Atomic int64_t threshold;
    _Atomic int64_t idle_timeout;
    /* the record cache */
    gocc__mutex cache_mu;
    gocc__task *cache;
    size_t ncache;
    /* The least ncache was since the monitor's last trim window began, and
     * what that window left to free (cache_mu): only records that sat
     * unused for a whole window are given back. */
    size_t cache_low, trim_left;
    int64_t trim_window_end; /* the monitor's own */
    /* the monitor */
    gocc__mutex mon_mu;
    pthread_t mon_thread;
    bool mon_running, mon_quit;
    gocc__waiter *mon_w; /* its thread waiter, for shutdown's wake */
} S = {
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_SCHED),
    .cache_mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_SCHED_CACHE),
    .mon_mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_SCHED_MON),
    .stack_size = DEFAULT_STACK,
    .threshold = DEFAULT_THRESHOLD,
    .idle_timeout = DEFAULT_IDLE,
};

/* The worker this thread is (NULL on other threads). Read through a
 * function that is never inlined: a task may resume on another thread
 * after any switch, and a compiler may keep a thread-local's address in a
 * register across what looks to it like an ordinary call. */
static GOCC_TLS worker *self_worker;

static GOCC_NOINLINE worker *my_worker(void) {
    __asm__ __volatile__("" ::: "memory");
    return self_worker;
}

uint64_t gocc__sched_current_task_id(void) {
    worker *wk = my_worker();
    return wk != NULL && wk->cur != NULL ? wk->cur->st.task_id : 0;
}

static int cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- the per-worker ring (Go's runqput / runqget / runqgrab) ---- */

static bool ring_empty(worker *wk) {
    uint32_t h = atomic_load_explicit(&wk->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&wk->tail, memory_order_acquire);
    return h == t;
}

static void gq_put_batch(gocc__task *first, gocc__task *last, size_t n);

/* Owner only. When the ring is full, half of it and t go to the global
 * queue. */
static void ring_put(worker *wk, gocc__task *t) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&wk->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&wk->tail, memory_order_relaxed);
        if (tl - h < RING) {
            atomic_store_explicit(&wk->ring[tl % RING], t, memory_order_relaxed);
            atomic_store_explicit(&wk->tail, tl + 1, memory_order_release);
            return;
        }
        /* Full: move the older half out with t. */
        uint32_t n = (tl - h) / 2;
        gocc__task *batch[RING / 2 + 1];
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&wk->ring[(h + i) % RING], memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&wk->head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue; /* a thief took some: room now, perhaps */
        batch[n] = t;
        for (uint32_t i = 0; i < n; i++) batch[i]->next = batch[i + 1];
        gq_put_batch(batch[0], t, n + 1);
        return;
    }
}

/* Owner or thief. */
static gocc__task *ring_get(worker *wk) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&wk->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&wk->tail, memory_order_acquire);
        if (tl == h) return NULL;
        gocc__task *t = atomic_load_explicit(&wk->ring[h % RING], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&wk->head, &h, h + 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return t;
    }
}

/* Thief: move half of victim's ring into mine (empty: only its owner
 * pushes, and the owner is the caller); return one task to run. With
 * @p take_next, a running victim's runnext too, after a short pause (Go's
 * runqgrab): the victim usually runs it itself within microseconds (the
 * partner of a handoff), but if it is busy the task would wait for it. */
static gocc__task *ring_steal(worker *me, worker *victim, bool take_next) {
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = tl - h;
        n -= n / 2;
        if (n == 0 || n > RING / 2 + 1) {
            if (n == 0) break;
            continue; /* inconsistent snapshot: the owner moved on */
        }
        uint32_t mt = atomic_load_explicit(&me->tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            gocc__task *t =
                atomic_load_explicit(&victim->ring[(h + i) % RING], memory_order_relaxed);
            atomic_store_explicit(&me->ring[(mt + i) % RING], t, memory_order_relaxed);
        }
        if (!atomic_compare_exchange_strong_explicit(&victim->head, &h, h + n, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        /* Keep the last for now; publish the rest. */
        gocc__task *t = atomic_load_explicit(&me->ring[(mt + n - 1) % RING], memory_order_relaxed);
        if (n > 1) atomic_store_explicit(&me->tail, mt + n - 1, memory_order_release);
        return t;
    }
    if (atomic_load_explicit(&victim->runnext, memory_order_relaxed) == NULL) return NULL;
    /* A stuck worker's runnext is fair game at once. */
    if (atomic_load_explicit(&victim->run, memory_order_acquire) & 1)
        return atomic_exchange_explicit(&victim->runnext, NULL, memory_order_acq_rel);
    if (!take_next || !atomic_load_explicit(&victim->in_task, memory_order_relaxed)) return NULL;
    gocc__task *seen = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
    for (int i = 0; i < RUNNEXT_STEAL_PAUSE; i++) {
        gocc__cpu_relax();
        if (atomic_load_explicit(&victim->runnext, memory_order_relaxed) != seen) return NULL;
    }
    if (seen == NULL ||
        !atomic_compare_exchange_strong_explicit(&victim->runnext, &seen, NULL,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return NULL;
    return seen;
}

/* ---- the global queue (sched.mu) ---- */

static void gq_put_locked(gocc__task *t) {
    t->next = NULL;
    if (S.gq_tail)
        S.gq_tail->next = t;
    else
        S.gq_head = t;
    S.gq_tail = t;
    atomic_fetch_add_explicit(&S.gq_len, 1, memory_order_relaxed);
}

static void gq_put_batch(gocc__task *first, gocc__task *last, size_t n) {
    last->next = NULL;
    gocc__lock(&S.mu);
    if (S.gq_tail)
        S.gq_tail->next = first;
    else
        S.gq_head = first;
    S.gq_tail = last;
    atomic_fetch_add_explicit(&S.gq_len, n, memory_order_relaxed);
    gocc__unlock(&S.mu);
}

static gocc__task *gq_get_locked(void) {
    gocc__task *t = S.gq_head;
    if (t == NULL) return NULL;
    S.gq_head = t->next;
    if (S.gq_head == NULL) S.gq_tail = NULL;
    atomic_fetch_sub_explicit(&S.gq_len, 1, memory_order_relaxed);
    return t;
}

/* One task to run from the global queue, and up to a fair share more into
 * wk's ring. */
static gocc__task *gq_get(worker *wk, bool batch) {
    if (atomic_load_explicit(&S.gq_len, memory_order_relaxed) == 0) return NULL;
    gocc__lock(&S.mu);
    gocc__task *t = gq_get_locked();
    if (t != NULL && batch) {
        size_t n = atomic_load_explicit(&S.gq_len, memory_order_relaxed);
        int procs = S.procs > 0 ? S.procs : 1;
        n = n / (size_t)procs + 1;
        if (n > RING / 2) n = RING / 2;
        for (size_t i = 0; i < n; i++) {
            gocc__task *more = gq_get_locked();
            if (more == NULL) break;
            ring_put(wk, more); /* cannot overflow: at most half the ring */
        }
    }
    gocc__unlock(&S.mu);
    return t;
}

static bool work_anywhere(void) {
    if (atomic_load_explicit(&S.gq_len, memory_order_relaxed) != 0) return true;
    int n = atomic_load_explicit(&S.nworkers, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        worker *v = S.all[i];
        if (!ring_empty(v)) return true;
        if ((atomic_load_explicit(&v->run, memory_order_relaxed) & 1) &&
            atomic_load_explicit(&v->runnext, memory_order_relaxed) != NULL)
            return true;
    }
    return false;
}

/* ---- waking workers ---- */

static int start_worker(void);
static int start_locked(void);

/* There is new work no running worker may see soon: make sure some worker
 * looks (Go's wakep). Cheap when a worker already spins or none is free. */
static void wakep(void) {
    for (;;) {
        if (atomic_load_explicit(&S.nspinning, memory_order_relaxed) != 0) return;
        if (atomic_load_explicit(&S.nactive, memory_order_relaxed) >= S.procs) return;
        int zero = 0;
        if (!atomic_compare_exchange_strong_explicit(&S.nspinning, &zero, 1, memory_order_acq_rel,
                                                     memory_order_relaxed))
            return;
        gocc__lock(&S.mu);
        worker *wk = NULL;
        bool in_poll = false;
        if (atomic_load_explicit(&S.nactive, memory_order_relaxed) < S.procs) {
            /* An idle worker on its futex rather than the one in the
             * poller's wait: that one keeps watching the descriptors. */
            worker **pp = &S.idle;
            while (*pp != NULL && (*pp)->in_poll && (*pp)->idle_next != NULL)
                pp = &(*pp)->idle_next;
            wk = *pp;
            if (wk != NULL) {
                *pp = wk->idle_next;
                wk->idle = false;
                wk->spinning = true; /* read by the worker after the wake */
                in_poll = wk->in_poll;
                atomic_fetch_sub_explicit(&S.nidle, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&S.nactive, 1, memory_order_relaxed);
            }
        }
        gocc__unlock(&S.mu);
        if (wk != NULL) {
            gocc__wake(&wk->idle_w);
            if (in_poll) gocc__netpoll_break();
            return;
        }
        /* No idle worker to wake: make one if procs allows (it starts
         * spinning). If that fails the monitor tries again each look. */
        if (atomic_load_explicit(&S.nactive, memory_order_relaxed) < S.procs) {
            if (start_worker() != 0)
                atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_release);
            return;
        }
        /* Every worker was active: give the count back, then look again. A
         * producer that read our count meanwhile left its work to a
         * spinner that is not coming, and a worker going idle may have
         * made its last look before that work was there. */
        atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_release);
        SC_FENCE();
        if (atomic_load_explicit(&S.nactive, memory_order_relaxed) >= S.procs || !work_anywhere())
            return;
    }
}

/* A spinning worker found work: stop counting as spinning, and if it was
 * the last spinner, wake another for what may be left (Go's resetspinning). */
static void stop_spinning(worker *wk) {
    wk->spinning = false;
    if (atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_acq_rel) == 1) wakep();
}

/* A call started waiting for a descriptor and nobody polls: make sure a
 * worker comes to (an idle one woken, or the first one started; it takes
 * the poll role when it finds nothing to run). When every worker is busy,
 * the monitor's looks cover it. */
void gocc__sched_poke(void) {
    if (GOCC_UNLIKELY(atomic_load_explicit(&S.procs, memory_order_relaxed) <= 0)) {
        gocc__lock(&S.mu);
        start_locked();
        gocc__unlock(&S.mu);
    }
    SC_FENCE();
    wakep();
}

/* ---- making tasks runnable ---- */

void gocc__sched_ready(gocc__task *t) {
    worker *wk = my_worker();
    atomic_store_explicit(&t->state, GOCC__TASK_RUNNABLE, memory_order_relaxed);
    GOCC_PROBE1(task_ready, t->st.task_id);
    if (wk != NULL) {
        gocc__task *old = atomic_exchange_explicit(&wk->runnext, t, memory_order_acq_rel);
        if (old == NULL) return; /* runs next here: nobody to wake */
        ring_put(wk, old);
    } else {
        gocc__lock(&S.mu);
        gq_put_locked(t);
        gocc__unlock(&S.mu);
    }
    SC_FENCE(); /* pairs with the idle re-check */
    wakep();
}

/* A new task: into the ring (not runnext: the spawner goes on running, and
 * an idle worker may take the new one at once). */
static void ready_new(gocc__task *t) {
    worker *wk = my_worker();
    atomic_store_explicit(&t->state, GOCC__TASK_RUNNABLE, memory_order_relaxed);
    if (wk != NULL) {
        ring_put(wk, t);
    } else {
        gocc__lock(&S.mu);
        gq_put_locked(t);
        gocc__unlock(&S.mu);
    }
    SC_FENCE();
    wakep();
}

/* ---- switching ---- */

/* Set the thread up to run task t and switch to it; back here when it
 * parks, yields or ends. */
static void run_task(worker *wk, gocc__task *t) {
    wk->cur = t;
    wk->after = AFTER_NONE;
    atomic_store_explicit(&wk->in_task, true, memory_order_relaxed);
    /* Release: the dump follows t->on into a worker another thread
     * allocated (the worker's thread starts after that, so its stores carry
     * the allocation). */
    atomic_store_explicit(&t->on, wk, memory_order_release);
    atomic_store_explicit(&t->run_no, wk->ticks, memory_order_relaxed);
    atomic_store_explicit(&t->state, GOCC__TASK_RUNNING, memory_order_relaxed);
    gocc__set_self(&t->w);
    errno = t->saved_errno;
#if defined(GOCC_ASAN)
    __sanitizer_start_switch_fiber(&wk->asan_fake, t->stack.lo, t->stack.size);
#endif
#if defined(GOCC_TSAN)
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    gocc__ctx_switch(&wk->sched_ctx, &t->ctx);
#if defined(GOCC_ASAN)
    __sanitizer_finish_switch_fiber(wk->asan_fake, NULL, NULL);
#endif
    t->saved_errno = errno;
    gocc__set_self(NULL);
    atomic_store_explicit(&wk->in_task, false, memory_order_relaxed);
    wk->cur = NULL;
}

/* From a task: switch back to its worker's loop, which then does `after`.
 * Returns when the task runs again (perhaps on another thread). */
static void switch_to_sched(gocc__task *t, int after) {
    worker *wk = my_worker();
    if (GOCC_UNLIKELY(!gocc__stack_intact(&t->stack))) {
        fprintf(stderr,
                "libgocc: task %llu \"%s\" overflowed its stack (%zu bytes); "
                "give it more with gocc_task_opts_t.stack_size\n",
                (unsigned long long)t->st.task_id, t->w.name_local, t->stack.size);
        abort();
    }
    wk->after = after;
#if defined(GOCC_ASAN)
    __sanitizer_start_switch_fiber(after == AFTER_EXIT ? NULL : &t->asan_fake, wk->stack_bottom,
                                   wk->stack_size);
#endif
#if defined(GOCC_TSAN)
    __tsan_switch_to_fiber(wk->tsan_fiber, 0);
#endif
    gocc__ctx_switch(&t->ctx, &wk->sched_ctx);
#if defined(GOCC_ASAN)
    __sanitizer_finish_switch_fiber(t->asan_fake, NULL, NULL);
#endif
}

/* ---- task records ---- */

static void task_entry(void *p);

static void record_free(gocc__task *t) {
    gocc__obs_unregister(&t->w);
    gocc__stack_free(&t->stack);
    gocc__free(t);
}

static gocc__task *record_new(size_t stack_size, int *err) {
    gocc__task *t = gocc__calloc(1, sizeof *t);
    if (t == NULL) {
        *err = GOCC_ENOMEM;
        return NULL;
    }
    int rc = gocc__stack_alloc(&t->stack, stack_size);
    if (rc != 0) {
        gocc__free(t);
        *err = rc;
        return NULL;
    }
    t->w.task = t;
    atomic_init(&t->w.state, GOCC__PARK_WAITING);
    atomic_init(&t->w.claim, 1);
    atomic_init(&t->w.obs.deadline, INT64_MAX);
    gocc__obs_register(&t->w);
    return t;
}

/* A record whose stack is exactly @p size: from this worker's cache, the
 * global one, or new. */
static gocc__task *record_get(size_t size, int *err) {
    /* Only default-size stacks are cached (a task with its own size maps
     * one and gives it back). */
    if (size != atomic_load_explicit(&S.stack_size, memory_order_relaxed))
        return record_new(size, err);
    worker *wk = my_worker();
    for (;;) {
        gocc__task *t;
        if (wk != NULL) {
            if (wk->cache == NULL) {
                /* Refill half the worker's cache in one go (records made
                 * on one worker often end on another: one lock per batch,
                 * not per task). */
                gocc__lock(&S.cache_mu);
                while (S.cache != NULL && wk->ncache < LOCAL_CACHE / 2) {
                    t = S.cache;
                    S.cache = t->next;
                    S.ncache--;
                    t->next = wk->cache;
                    wk->cache = t;
                    wk->ncache++;
                }
                if (S.ncache < S.cache_low) S.cache_low = S.ncache;
                gocc__unlock(&S.cache_mu);
            }
            if ((t = wk->cache) != NULL) {
                wk->cache = t->next;
                wk->ncache--;
            }
        } else { /* a plain thread: one from the runtime's cache */
            gocc__lock(&S.cache_mu);
            if ((t = S.cache) != NULL) {
                S.cache = t->next;
                S.ncache--;
                if (S.ncache < S.cache_low) S.cache_low = S.ncache;
            }
            gocc__unlock(&S.cache_mu);
        }
        if (t == NULL) return record_new(size, err);
        if (t->stack.size == size) return t;
        record_free(t); /* made before stack_size changed */
    }
}

static void record_put(worker *wk, gocc__task *t) {
    t->st = (gocc__start){0};
    t->w.current_pool = NULL;
    if (t->stack.size != S.stack_size) {
        record_free(t);
        return;
    }
    if (wk != NULL) {
        t->next = wk->cache;
        wk->cache = t;
        if (++wk->ncache <= LOCAL_CACHE) return;
        /* Full: hand half of it to the runtime's cache in one go. */
        t = NULL;
        for (size_t n = 0; n < LOCAL_CACHE / 2; n++) {
            gocc__task *x = wk->cache;
            wk->cache = x->next;
            wk->ncache--;
            x->next = t;
            t = x;
        }
    } else {
        t->next = NULL;
    }
    /* Beyond GLOBAL_CACHE too: unmapping a stack here, right after a burst
     * of tasks ends, costs a TLB shootdown on every CPU per stack; the
     * monitor trims the excess a batch at a time instead (cache_trim). */
    gocc__lock(&S.cache_mu);
    while (t != NULL) {
        gocc__task *next = t->next;
        t->next = S.cache;
        S.cache = t;
        S.ncache++;
        t = next;
    }
    gocc__unlock(&S.cache_mu);
}

/* The monitor, each look: free up to TRIM_BATCH records beyond
 * GLOBAL_CACHE, out of those the last window never used. A program that
 * starts bursts of tasks again and again keeps its stacks (mapping and
 * unmapping them each burst costs page faults and TLB shootdowns); one
 * whose burst is over gets them back within about two windows (and
 * TRIM_BATCH a look: 100,000 stacks in a few seconds). */
#define TRIM_WINDOW (500 * GOCC_MILLISECOND)
static void cache_trim(int64_t now) {
    gocc__task *freed = NULL;
    gocc__lock(&S.cache_mu);
    if (now >= S.trim_window_end) {
        S.trim_left = S.cache_low > GLOBAL_CACHE ? S.cache_low - GLOBAL_CACHE : 0;
        S.cache_low = S.ncache;
        S.trim_window_end = now + TRIM_WINDOW;
    }
    for (int i = 0; i < TRIM_BATCH && S.trim_left > 0 && S.ncache > GLOBAL_CACHE; i++) {
        gocc__task *t = S.cache;
        S.cache = t->next;
        S.ncache--;
        S.trim_left--;
        t->next = freed;
        freed = t;
    }
    if (S.ncache < S.cache_low) S.cache_low = S.ncache;
    gocc__unlock(&S.cache_mu);
    while (freed != NULL) {
        gocc__task *next = freed->next;
        record_free(freed);
        freed = next;
    }
}

/* ---- the task's side ---- */

static void task_entry(void *p) {
    gocc__task *t = p;
#if defined(GOCC_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    const gocc__start *st = &t->st;
    if (st->task_id != 0) GOCC_PROBE2(task_start, st->task_id, (uintptr_t)st->fn);
    int rc = st->fn(st->ctx, st->arg);
    if (st->task_id != 0) {
        GOCC_PROBE2(task_end, st->task_id, rc);
        gocc__obs_task_end(&t->w);
    }
    if (st->on_exit != NULL) st->on_exit(st->exit_arg, rc);
    gocc_ctx_release(st->ctx);
    switch_to_sched(t, AFTER_EXIT); /* the loop uncounts and recycles it */
    abort();                        /* never resumed */
}

/* The timer thread: a timed park's deadline passed. WAITING or SLEEPING ->
 * TIMEDOUT; from SLEEPING the task is made runnable here, from WAITING its
 * scheduler's CAS fails and runs it again. */
static void park_timeout(gocc__timer_entry *e, int64_t now) {
    (void)now;
    gocc__task *t = e->arg;
    uint32_t s = atomic_load_explicit(&t->w.state, memory_order_acquire);
    while (s == GOCC__PARK_WAITING || s == GOCC__PARK_SLEEPING) {
        if (atomic_compare_exchange_weak_explicit(&t->w.state, &s, GOCC__PARK_TIMEDOUT,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            if (s == GOCC__PARK_SLEEPING) gocc__sched_ready(t);
            return;
        }
    }
}

bool gocc__sched_park(gocc__waiter *w, int64_t deadline) {
    gocc__task *t = w->task;
    if (w->wait.reason != GOCC_WAIT_NONE && !w->wait.published) gocc__obs_publish(w);
    int reserved = -1;
    if (deadline >= 0) {
        reserved = gocc__timer_reserve();
        if (reserved == 0) {
            gocc__timer_init(&t->tm, park_timeout, t);
            gocc__timer_add(&t->tm, deadline, 0);
        } else {
            /* No timer to be had: wait by yielding until the deadline
             * (slow, but never a wait that did not happen). */
            while (atomic_load_explicit(&w->state, memory_order_acquire) != GOCC__PARK_WOKEN) {
                if (gocc_now() >= deadline) {
                    uint32_t e = GOCC__PARK_WAITING;
                    if (atomic_compare_exchange_strong_explicit(&w->state, &e, GOCC__PARK_WAITING,
                                                                memory_order_acq_rel,
                                                                memory_order_acquire))
                        return false;
                }
                switch_to_sched(t, AFTER_YIELD);
            }
            return true;
        }
    }
    switch_to_sched(t, AFTER_PARK);
    if (reserved == 0) {
        gocc__timer_del_sync(&t->tm); /* its callback is done with t */
        gocc__timer_unreserve();
        uint32_t e = GOCC__PARK_TIMEDOUT;
        if (atomic_compare_exchange_strong_explicit(&w->state, &e, GOCC__PARK_WAITING,
                                                    memory_order_acq_rel, memory_order_acquire))
            return false;
    }
    return true;
}


/* ---- what the dump sees ---- */

int gocc__sched_task_state(const gocc__waiter *w, int64_t *since) {
    const gocc__task *t = w->task;
    if (t == NULL) return GOCC__TASK_NONE;
    int st = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (since != NULL) {
        /* The monitor's first sighting of this run, if it saw it. */
        *since = 0;
        worker *wk = atomic_load_explicit(&t->on, memory_order_acquire);
        if (st == GOCC__TASK_RUNNING && wk != NULL &&
            atomic_load_explicit(&wk->last_run, memory_order_relaxed) >> 1 ==
                atomic_load_explicit(&t->run_no, memory_order_relaxed))
            *since = atomic_load_explicit(&wk->last_seen, memory_order_relaxed);
    }
    return st;
}

#if GOCC_CONTEXT_ASM && (defined(__x86_64__) || defined(__aarch64__)) && !defined(GOCC_TSAN)
/* Reads another task's stack words; the task may resume meanwhile, so
 * every read stays inside its stack and a torn walk only ends early. Not
 * instrumented: frames have poisoned redzones. */
__attribute__((no_sanitize_address)) static uintptr_t stack_word(const gocc__task *t, uintptr_t a) {
    uintptr_t lo = (uintptr_t)t->stack.lo, hi = lo + t->stack.size;
    if (a < lo || a + sizeof(uintptr_t) > hi || (a & (sizeof(uintptr_t) - 1))) return 0;
    return __atomic_load_n((const uintptr_t *)a, __ATOMIC_RELAXED);
}

int gocc__sched_task_stack(const gocc__waiter *w, uintptr_t *pcs, int max) {
    const gocc__task *t = w->task;
    if (t == NULL || atomic_load_explicit(&t->state, memory_order_acquire) != GOCC__TASK_PARKED)
        return 0;
    uintptr_t sp = (uintptr_t)__atomic_load_n(&t->ctx.sp, __ATOMIC_RELAXED);
#if defined(__x86_64__)
    uintptr_t pc = stack_word(t, sp + 56), fp = stack_word(t, sp + 48); /* ctx_switch's frame */
#else
    uintptr_t pc = stack_word(t, sp + 88), fp = stack_word(t, sp + 80);
#endif
    int n = 0;
    while (n < max && pc != 0) {
        pcs[n++] = pc;
        uintptr_t next = stack_word(t, fp);
        pc = stack_word(t, fp + sizeof(uintptr_t));
        if (next <= fp) break; /* frames go up the stack; anything else ends it */
        fp = next;
    }
    return n;
}
#else
int gocc__sched_task_stack(const gocc__waiter *w, uintptr_t *pcs, int max) {
    (void)w;
    (void)pcs;
    (void)max;
    return 0;
}
#endif

void gocc_yield(void) {
    worker *wk = my_worker();
    if (wk == NULL || wk->cur == NULL) {
        sched_yield();
        return;
    }
    switch_to_sched(wk->cur, AFTER_YIELD);
}

/* ---- the worker loop ---- */

static gocc__task *find_runnable(worker *wk);

static void after_switch(worker *wk, gocc__task *t) {
    switch (wk->after) {
    case AFTER_PARK: {
        atomic_store_explicit(&t->state, GOCC__TASK_PARKED, memory_order_relaxed);
        uint32_t e = GOCC__PARK_WAITING;
        if (!atomic_compare_exchange_strong_explicit(&t->w.state, &e, GOCC__PARK_SLEEPING,
                                                     memory_order_acq_rel, memory_order_acquire)) {
            /* Woken (or timed out) before it was off its stack: again. */
            atomic_store_explicit(&t->state, GOCC__TASK_RUNNABLE, memory_order_relaxed);
            gocc__task *old = atomic_exchange_explicit(&wk->runnext, t, memory_order_acq_rel);
            if (old != NULL) {
                ring_put(wk, old);
                SC_FENCE();
                wakep();
            }
        }
        break;
    }
    case AFTER_YIELD:
        /* Behind every task this worker has ready (its ring's tail, no lock),
         * unless tasks wait in the global queue: then behind those, so a
         * yield lets them run too. */
        atomic_store_explicit(&t->state, GOCC__TASK_RUNNABLE, memory_order_relaxed);
        if (atomic_load_explicit(&S.gq_len, memory_order_relaxed) == 0) {
            ring_put(wk, t);
        } else {
            gocc__lock(&S.mu);
            gq_put_locked(t);
            gocc__unlock(&S.mu);
        }
        break;
    case AFTER_EXIT: {
        atomic_store_explicit(&t->state, GOCC__TASK_NONE, memory_order_relaxed);
        bool counted = t->st.task_id != 0;
#if defined(GOCC_TSAN)
        __tsan_destroy_fiber(t->tsan_fiber); /* we are off it for good */
        t->tsan_fiber = NULL;
#endif
        t->name[0] = '\0';
        record_put(wk, t);
        atomic_fetch_sub_explicit(&S.nlive, 1, memory_order_release);
        if (counted) gocc__tasks_dec(); /* after fn returned and the record is reusable */
        break;
    }
    default: abort();
    }
}

/* Back in the loop: a new run number. If the monitor marked the run that
 * just ended stuck, count the worker again; true when that makes more than
 * procs run (then it steps aside). */
static bool end_run(worker *wk) {
    uint64_t old = atomic_exchange_explicit(&wk->run, ++wk->ticks << 1, memory_order_acq_rel);
    if (GOCC_LIKELY(!(old & 1))) return false;
    int active = atomic_fetch_add_explicit(&S.nactive, 1, memory_order_acq_rel) + 1;
    return active > S.procs;
}

static void *worker_main(void *p) {
    worker *wk = p;
    self_worker = wk;
    gocc__os_thread_name("gocc");
#if defined(GOCC_TSAN)
    wk->tsan_fiber = __tsan_get_current_fiber();
#endif
#if defined(GOCC_ASAN)
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&attr, &lo, &sz);
        wk->stack_bottom = lo;
        wk->stack_size = sz;
        pthread_attr_destroy(&attr);
    }
#endif
    for (;;) {
        gocc__task *t = find_runnable(wk);
        if (t == NULL) break; /* quit, or an idle surplus worker timed out */
        run_task(wk, t);
        after_switch(wk, t);
        (void)end_run(wk); /* find_runnable steps aside if too many run now */
    }
    /* Leaving: give back the cached records. */
    while (wk->cache != NULL) {
        gocc__task *t = wk->cache;
        wk->cache = t->next;
        record_free(t);
    }
    wk->ncache = 0;
    gocc__lock(&S.mu);
    wk->alive = false;
    atomic_fetch_sub_explicit(&S.nthreads, 1, memory_order_relaxed);
    bool joinable = wk->quit; /* shutdown joins it; else it detaches */
    gocc__unlock(&S.mu);
    self_worker = NULL;
    if (!joinable) pthread_detach(pthread_self());
    return NULL;
}

static gocc__task *steal_work(worker *wk) {
    int n = atomic_load_explicit(&S.nworkers, memory_order_acquire);
    for (int round = 0; round < STEAL_ROUNDS; round++) {
        int start = (int)(gocc__rand() % (uint32_t)(n > 0 ? n : 1));
        for (int k = 0; k < n; k++) {
            worker *v = S.all[(start + k) % n];
            if (v == wk) continue;
            gocc__task *t = ring_steal(wk, v, round == STEAL_ROUNDS - 1);
            if (t != NULL) return t;
        }
        gocc__task *t = gq_get(wk, true);
        if (t != NULL) return t;
    }
    return NULL;
}

/* Too many running (a stuck worker came back): this one should idle. */
static bool over_procs(void) {
    return atomic_load_explicit(&S.nactive, memory_order_relaxed) > S.procs;
}

/* A worker stepping aside leaves nothing behind in its own queue: what it
 * holds goes to the global queue, where every worker looks. */
static void hand_off_local(worker *wk) {
    gocc__task *t = atomic_exchange_explicit(&wk->runnext, NULL, memory_order_acq_rel);
    if (t == NULL && ring_empty(wk)) return;
    gocc__lock(&S.mu);
    if (t != NULL) gq_put_locked(t);
    while ((t = ring_get(wk)) != NULL) gq_put_locked(t);
    gocc__unlock(&S.mu);
}

static void idle_remove_locked(worker *wk) {
    worker **pp = &S.idle;
    while (*pp != wk) pp = &(*pp)->idle_next;
    *pp = wk->idle_next;
    wk->idle = false;
    atomic_fetch_sub_explicit(&S.nidle, 1, memory_order_relaxed);
}

/* An idle worker saw work after publishing itself idle: take itself off
 * the list, active and spinning. If a waker took it first, consume that
 * wake (the waker made it active and spinning, or shutdown told it to
 * quit: then false). */
static bool unidle(worker *wk) {
    gocc__lock(&S.mu);
    if (wk->idle) {
        idle_remove_locked(wk);
        atomic_fetch_add_explicit(&S.nactive, 1, memory_order_relaxed);
        gocc__unlock(&S.mu);
        /* It saw work: it spins, so that it may steal it (the half-active
         * limit would otherwise send it idle again while another holds
         * the spinning count). */
        wk->spinning = true;
        atomic_fetch_add_explicit(&S.nspinning, 1, memory_order_acq_rel);
        return true;
    }
    gocc__unlock(&S.mu);
    gocc__park(&wk->idle_w);
    gocc__lock(&S.mu);
    bool quit = wk->quit;
    gocc__unlock(&S.mu);
    return !quit;
}

/* Sleep on the idle list until a waker takes us (true) or, for a surplus
 * worker, until idle_timeout passes with nobody taking us (false: exit).
 * Shutdown takes us with quit set: false. */
static bool idle_sleep(worker *wk) {
    for (;;) {
        bool surplus = atomic_load_explicit(&S.nthreads, memory_order_relaxed) > S.procs;
        if (!surplus) {
            gocc__park(&wk->idle_w);
            break;
        }
        if (gocc__park_until(&wk->idle_w, gocc_now() + S.idle_timeout)) break;
        gocc__lock(&S.mu);
        if (wk->idle && atomic_load_explicit(&S.nthreads, memory_order_relaxed) > S.procs) {
            idle_remove_locked(wk);
            gocc__unlock(&S.mu);
            return false;
        }
        bool taken = !wk->idle;
        gocc__unlock(&S.mu);
        if (taken) {
            gocc__park(&wk->idle_w); /* the waker's wake is coming */
            break;
        }
    }
    gocc__lock(&S.mu);
    bool quit = wk->quit;
    gocc__unlock(&S.mu);
    return !quit;
}

/* After the poller's wait, before its readiness is dispatched: the worker
 * is active again. If it is still on the idle list it takes itself off
 * (active, not spinning); if a waker took it (wakep: active and spinning,
 * or shutdown: quit), that waker's wake of idle_w is consumed in
 * poll_idle. */
static void poll_woke(void *arg) {
    worker *wk = arg;
    gocc__lock(&S.mu);
    wk->in_poll = false;
    wk->poll_taken = !wk->idle;
    if (wk->idle) {
        idle_remove_locked(wk);
        atomic_fetch_add_explicit(&S.nactive, 1, memory_order_relaxed);
    }
    gocc__unlock(&S.mu);
}

/* Idle in the poller's wait instead of on the futex. Tasks the poll
 * readies go to this worker's own queues (it is their waker), so it runs
 * them with no other thread in between. false: shutdown told it to quit. */
static bool poll_idle(worker *wk) {
    gocc__netpoll_poll(true, poll_woke, wk);
    if (!wk->poll_taken) return true;
    gocc__park(&wk->idle_w); /* the taker's wake is coming: consume it */
    gocc__lock(&S.mu);
    bool quit = wk->quit;
    gocc__unlock(&S.mu);
    if (quit) hand_off_local(wk); /* nothing is left behind */
    return !quit;
}

/* About IDLE_SPIN pauses (tens of microseconds) watching for new work;
 * true when some appeared. Not on one CPU: there it only delays the
 * producer. */
#define IDLE_SPIN 2048
static bool idle_spin(void) {
    if (S.procs <= 1) return false;
    for (int i = 0; i < IDLE_SPIN; i++) {
        if ((i & 63) == 63 ? work_anywhere()
                           : atomic_load_explicit(&S.gq_len, memory_order_relaxed) != 0)
            return true;
        gocc__cpu_relax();
    }
    return false;
}

static gocc__task *find_runnable(worker *wk) {
    for (;;) {
        gocc__task *t;
        if (GOCC_UNLIKELY(over_procs())) {
            hand_off_local(wk);
        } else {
            if (++wk->sched_tick % GLOBAL_EVERY == 0 && (t = gq_get(wk, false)) != NULL) goto found;
            /* runnext is read before it is taken: an empty one costs no
             * read-modify-write (a thief may still empty it in between). */
            if (wk->streak < RUNNEXT_STREAK &&
                atomic_load_explicit(&wk->runnext, memory_order_relaxed) != NULL &&
                (t = atomic_exchange_explicit(&wk->runnext, NULL, memory_order_acq_rel)) != NULL) {
                wk->streak++;
                goto found;
            }
            wk->streak = 0;
            if ((t = ring_get(wk)) != NULL) goto found;
            if (atomic_load_explicit(&wk->runnext, memory_order_relaxed) != NULL &&
                (t = atomic_exchange_explicit(&wk->runnext, NULL, memory_order_acq_rel)) != NULL)
                goto found;
            if ((t = gq_get(wk, true)) != NULL) goto found;
            /* Steal, as a spinner (at most half the active workers spin). */
            if (!wk->spinning) {
                int spin = atomic_load_explicit(&S.nspinning, memory_order_relaxed);
                int act = atomic_load_explicit(&S.nactive, memory_order_relaxed);
                if (2 * spin < act) {
                    wk->spinning = true;
                    atomic_fetch_add_explicit(&S.nspinning, 1, memory_order_acq_rel);
                }
            }
            if (wk->spinning && (t = steal_work(wk)) != NULL) goto found;
            /* A spinner looks a little longer before it sleeps: work often
             * comes in bursts (a loop of gocc_go on a plain thread), and
             * a spinner found is a futex wake and a thread switch saved. */
            if (wk->spinning && idle_spin()) continue;
        }

        /* Nothing: stop spinning (before publishing ourselves idle: a waker
         * then owns wk->spinning), and go idle. */
        bool was_last = false;
        if (wk->spinning) {
            wk->spinning = false;
            was_last = atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_acq_rel) == 1;
        }
        gocc__lock(&S.mu);
        if (!over_procs() && (t = gq_get_locked()) != NULL) {
            gocc__unlock(&S.mu);
            if (was_last) wakep(); /* what stop_spinning would have done */
            goto found;
        }
        gocc__waiter_arm(&wk->idle_w);
        wk->idle = true;
        wk->idle_next = S.idle;
        S.idle = wk;
        atomic_fetch_add_explicit(&S.nidle, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&S.nactive, 1, memory_order_relaxed);
        gocc__unlock(&S.mu);
        SC_FENCE(); /* pairs with the producers' fence (and the poke's) */
        if (atomic_load_explicit(&S.nactive, memory_order_relaxed) < S.procs && work_anywhere()) {
            if (!unidle(wk)) return NULL;
            continue;
        }
        /* Watch the descriptors while idle, if nobody does (not a surplus
         * worker: it may leave). Read after the fence: a call that starts
         * waiting publishes its descriptor, fences and pokes (reads who is
         * active), so it sees this worker idle or this worker sees it. */
        if (atomic_load_explicit(&S.nthreads, memory_order_relaxed) <= S.procs &&
            gocc__netpoll_wanted()) {
            gocc__lock(&S.mu);
            if (wk->idle) wk->in_poll = gocc__netpoll_claim();
            gocc__unlock(&S.mu);
            if (wk->in_poll) {
                if (!poll_idle(wk)) return NULL;
                continue; /* active now: run what the poll readied */
            }
        }
        if (!idle_sleep(wk)) return NULL;
        continue; /* woken by wakep: active and spinning now */
    found:
        if (wk->spinning) stop_spinning(wk);
        return t;
    }
}

/* ---- starting workers and the monitor ---- */

static void *monitor_main(void *unused);

/* Fix procs and start the monitor, once (S.mu held). */
static int start_locked(void) {
    if (S.started) return 0;
    if (S.procs <= 0) S.procs = cpu_count();
    S.started = true;
    return 0;
}

/* (No lock: the first allocation may happen under S.mu.) */
void gocc__sched_freeze(void) { atomic_store_explicit(&S.frozen, true, memory_order_release); }

static int monitor_start(void) {
    gocc__lock(&S.mon_mu);
    int rc = 0;
    if (!S.mon_running) {
        S.mon_quit = false;
        rc = gocc__thread_create(&S.mon_thread, 256 * 1024, monitor_main, NULL);
        if (rc == 0) S.mon_running = true;
    }
    gocc__unlock(&S.mon_mu);
    return rc;
}

/* A new worker thread, counted active and spinning (the caller holds one
 * nspinning for it). Returns 0, GOCC_ENOMEM or GOCC_EAGAIN. */
static int start_worker(void) {
    gocc__lock(&S.mu);
    start_locked();
    int n = atomic_load_explicit(&S.nworkers, memory_order_relaxed);
    int nthreads = atomic_load_explicit(&S.nthreads, memory_order_relaxed);
    if (S.max_threads != 0 && (size_t)nthreads >= S.max_threads) {
        gocc__unlock(&S.mu);
        return GOCC_EAGAIN;
    }
    worker *wk = NULL;
    for (int i = 0; i < n; i++) {
        if (!S.all[i]->alive && !S.all[i]->quit) {
            wk = S.all[i];
            break;
        }
    }
    bool fresh = wk == NULL;
    if (fresh) {
        if (n >= MAX_WORKERS) {
            gocc__unlock(&S.mu);
            return GOCC_EAGAIN;
        }
        wk = gocc__calloc(1, sizeof *wk);
        if (wk == NULL) {
            gocc__unlock(&S.mu);
            return GOCC_ENOMEM;
        }
        wk->index = n;
        wk->idle_w.spin = -1; /* an idle worker sleeps at once: it has nothing to do */
        atomic_init(&wk->idle_w.state, GOCC__PARK_WAITING);
        atomic_init(&wk->idle_w.claim, 1);
    }
    wk->alive = true;
    wk->spinning = true;
    atomic_fetch_add_explicit(&S.nactive, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.nthreads, 1, memory_order_relaxed);
    int rc = gocc__thread_create(&wk->thread, 0, worker_main, wk);
    if (rc != 0) {
        wk->alive = false;
        atomic_fetch_sub_explicit(&S.nactive, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&S.nthreads, 1, memory_order_relaxed);
        if (fresh) gocc__free(wk);
        gocc__unlock(&S.mu);
        return rc;
    }
    if (fresh) {
        S.all[n] = wk;
        atomic_store_explicit(&S.nworkers, n + 1, memory_order_release);
    }
    gocc__unlock(&S.mu);
    (void)monitor_start(); /* without it, only stuck-worker rescue is lost */
    return 0;
}

int gocc__sched_go(const gocc__start *st) {
    if (GOCC_UNLIKELY(atomic_load_explicit(&S.procs, memory_order_relaxed) <= 0)) {
        gocc__lock(&S.mu);
        start_locked();
        gocc__unlock(&S.mu);
    }
    size_t size = st->stack_size ? gocc__stack_round(st->stack_size)
                                 : atomic_load_explicit(&S.stack_size, memory_order_relaxed);
    int nthreads = atomic_load_explicit(&S.nthreads, memory_order_relaxed);
    if (size == 0) return GOCC_EINVAL;
    /* A task no thread could ever run is refused now, not stranded. */
    if (nthreads == 0) {
        int zero = 0;
        if (atomic_compare_exchange_strong_explicit(&S.nspinning, &zero, 1, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            int rc = start_worker();
            if (rc != 0) {
                atomic_fetch_sub_explicit(&S.nspinning, 1, memory_order_release);
                if (atomic_load_explicit(&S.nthreads, memory_order_relaxed) == 0) return rc;
            }
        }
    }
    int err = GOCC_ENOMEM;
    gocc__task *t = record_get(size, &err);
    if (t == NULL) return err;
#if defined(GOCC_ASAN)
    /* A reused stack may keep the poison of its last task's frames (its
     * entry never returned); a fresh one has none (and may be huge). */
    if (t->st.fn == NULL && t->ran) __asan_unpoison_memory_region(t->stack.lo, t->stack.size);
    t->ran = true;
    t->asan_fake = NULL;
#endif
    t->st = *st;
    t->name[0] = '\0';
    if (st->name != NULL) {
        strncpy(t->name, st->name, sizeof t->name - 1);
        t->name[sizeof t->name - 1] = '\0';
    }
    t->st.name = NULL;
    t->saved_errno = 0;
    atomic_store_explicit(&t->w.state, GOCC__PARK_WAITING, memory_order_relaxed);
    gocc__ctx_make(&t->ctx, t->stack.lo, t->stack.size, task_entry, t);
#if defined(GOCC_TSAN)
    /* A fiber per task life (not per record): its history starts at the
     * gocc_go that made it. */
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    atomic_fetch_add_explicit(&S.nlive, 1, memory_order_relaxed);
    /* Listed in the dump from now on (runnable): nothing runs it yet, so
     * the spawner is the record's one writer. */
    if (st->task_id != 0)
        gocc__obs_task_begin(&t->w, st->task_id, st->fn, t->name[0] ? t->name : NULL);
    ready_new(t);
    return 0;
}

/* The monitor: every 1 ms (10 ms when no task runs), find workers stuck
 * in one task for the threshold while work waits, and get help for them. */
static void *monitor_main(void *unused) {
    (void)unused;
    gocc__os_thread_name("gocc-sysmon");
    gocc__waiter *w = gocc__thread_waiter();
    gocc__lock(&S.mon_mu);
    S.mon_w = w;
    gocc__unlock(&S.mon_mu);
    int64_t delay = GOCC_MILLISECOND;
    for (;;) {
        gocc__lock(&S.mon_mu);
        bool quit = S.mon_quit;
        if (quit)
            S.mon_w = NULL;
        else if (w != NULL)
            gocc__waiter_arm(w);
        gocc__unlock(&S.mon_mu);
        if (quit) break;
        if (w != NULL)
            (void)gocc__park_until(w, gocc_now() + delay);
        else
            usleep((useconds_t)(delay / GOCC_MICROSECOND));
        int64_t now = gocc_now();
        int64_t threshold = atomic_load_explicit(&S.threshold, memory_order_relaxed);
        bool busy = false, rescue = false;
        int n = atomic_load_explicit(&S.nworkers, memory_order_acquire);
        for (int i = 0; i < n; i++) {
            worker *v = S.all[i];
            bool in_task = atomic_load_explicit(&v->in_task, memory_order_relaxed);
            uint64_t run = atomic_load_explicit(&v->run, memory_order_acquire);
            uint64_t last = atomic_load_explicit(&v->last_run, memory_order_relaxed);
            if (!in_task || (run | 1) != (last | 1)) {
                atomic_store_explicit(&v->last_seen, now, memory_order_relaxed);
                atomic_store_explicit(&v->last_run, run, memory_order_relaxed);
                if (in_task) busy = true;
                continue;
            }
            busy = true;
            if ((run & 1) ||
                now - atomic_load_explicit(&v->last_seen, memory_order_relaxed) < threshold)
                continue;
            /* Work waits: anywhere, or in this worker's own runnext. */
            if (atomic_load_explicit(&v->runnext, memory_order_relaxed) == NULL && !work_anywhere())
                continue;
            if (atomic_compare_exchange_strong_explicit(
                    &v->run, &run, run | 1, memory_order_acq_rel, memory_order_relaxed)) {
                atomic_store_explicit(&v->last_run, run | 1, memory_order_relaxed);
                atomic_fetch_sub_explicit(&S.nactive, 1, memory_order_acq_rel);
                GOCC_PROBE1(worker_stuck, v->index);
                rescue = true;
            }
        }
        if (rescue ||
            (work_anywhere() && atomic_load_explicit(&S.nactive, memory_order_relaxed) < S.procs)) {
            SC_FENCE();
            wakep();
        }
        /* Every worker busy (or none yet): look at the descriptors here,
         * without waiting; what it readies goes to the global queue. */
        if (gocc__netpoll_claim()) gocc__netpoll_poll(false, NULL, NULL);
        cache_trim(now); /* give back, a batch a look, what a burst left */
        delay = busy ? GOCC_MILLISECOND : 10 * GOCC_MILLISECOND;
    }
    return NULL;
}

/* ---- settings, numbers, shutdown, fork ---- */

int gocc__sched_configure(const gocc_runtime_config_t *cfg) {
    if (cfg->block_threshold_ns < 0) return GOCC_EINVAL;
    if (cfg->stack_size != 0 && gocc__stack_round(cfg->stack_size) == 0) return GOCC_EINVAL;
    gocc__lock(&S.mu);
    bool fixed = S.started || atomic_load_explicit(&S.frozen, memory_order_acquire);
    int now = S.procs > 0 ? S.procs : cpu_count();
    if (cfg->procs != 0 && fixed && (int)cfg->procs != now) {
        gocc__unlock(&S.mu);
        return GOCC_EINVAL;
    }
    if (cfg->procs > MAX_WORKERS / 2) {
        gocc__unlock(&S.mu);
        return GOCC_EINVAL;
    }
    if (cfg->procs != 0) S.procs = (int)cfg->procs;
    if (cfg->stack_size != 0) S.stack_size = gocc__stack_round(cfg->stack_size);
    if (cfg->idle_timeout_ns != 0) S.idle_timeout = cfg->idle_timeout_ns;
    if (cfg->max_threads != 0)
        S.max_threads = cfg->max_threads == GOCC_RUNTIME_UNLIMITED ? 0 : cfg->max_threads;
    if (cfg->block_threshold_ns != 0)
        atomic_store_explicit(&S.threshold, cfg->block_threshold_ns, memory_order_relaxed);
    gocc__unlock(&S.mu);
    return 0;
}

void gocc__sched_config_get(gocc_runtime_config_t *out) {
    gocc__lock(&S.mu);
    out->stack_size = S.stack_size;
    out->idle_timeout_ns = S.idle_timeout;
    out->max_threads = S.max_threads;
    out->procs = S.procs > 0 ? (size_t)S.procs : (size_t)cpu_count();
    out->block_threshold_ns = atomic_load_explicit(&S.threshold, memory_order_relaxed);
    gocc__unlock(&S.mu);
}

int64_t gocc__sched_threshold(void) {
    return atomic_load_explicit(&S.threshold, memory_order_relaxed);
}

size_t gocc__sched_threads(void) {
    return (size_t)atomic_load_explicit(&S.nthreads, memory_order_relaxed);
}

/* Idle workers: off the list, told to quit, woken, joined. The list is
 * copied first: a record whose thread is gone may be reused at once. */
static void quit_idle_workers(void) {
    worker *quit[MAX_WORKERS];
    int n = 0;
    gocc__lock(&S.mu);
    for (worker *wk = S.idle; wk != NULL; wk = wk->idle_next) {
        wk->idle = false;
        wk->quit = true;
        atomic_fetch_sub_explicit(&S.nidle, 1, memory_order_relaxed);
        quit[n++] = wk;
    }
    S.idle = NULL;
    bool in_poll = false;
    for (int i = 0; i < n; i++) in_poll |= quit[i]->in_poll;
    gocc__unlock(&S.mu);
    for (int i = 0; i < n; i++) gocc__wake(&quit[i]->idle_w);
    if (in_poll) gocc__netpoll_break();
    for (int i = 0; i < n; i++) pthread_join(quit[i]->thread, NULL);
    gocc__lock(&S.mu);
    for (int i = 0; i < n; i++) quit[i]->quit = false; /* the record may be reused */
    gocc__unlock(&S.mu);
}

int gocc__sched_shutdown(void) {
    /* Registered descriptors need a worker to poll them (a plain thread
     * may be waiting on one): the workers stay. */
    if (gocc__netpoll_in_use()) return GOCC_EAGAIN;
    /* Workers with nothing to run are idle or about to be (a task that
     * just ended still has its worker for a moment): stop them as they
     * get there, for a while. */
    int64_t give_up = gocc_now() + GOCC_SECOND;
    for (;;) {
        quit_idle_workers();
        if (atomic_load_explicit(&S.nthreads, memory_order_acquire) == 0) break;
        if (atomic_load_explicit(&S.nlive, memory_order_acquire) != 0 || work_anywhere() ||
            gocc_now() > give_up)
            return GOCC_EAGAIN;
        sched_yield();
    }
    if (atomic_load_explicit(&S.nlive, memory_order_acquire) != 0) return GOCC_EAGAIN;
    /* No worker: stop the monitor and drop the record cache. */
    gocc__lock(&S.mon_mu);
    bool running = S.mon_running;
    S.mon_quit = true;
    /* Woken under mon_mu: the monitor clears mon_w under it before its
     * thread (and so its waiter) goes. */
    if (S.mon_w != NULL) gocc__wake(S.mon_w);
    gocc__unlock(&S.mon_mu);
    if (running) {
        pthread_join(S.mon_thread, NULL);
        gocc__lock(&S.mon_mu);
        S.mon_running = false;
        S.mon_w = NULL;
        gocc__unlock(&S.mon_mu);
    }
    /* With the monitor gone nothing reads the worker records unlocked:
     * free them unless a worker started meanwhile. */
    gocc__lock(&S.mu);
    if (atomic_load_explicit(&S.nthreads, memory_order_relaxed) != 0) {
        gocc__unlock(&S.mu);
        return GOCC_EAGAIN;
    }
    int n = atomic_load_explicit(&S.nworkers, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        gocc__free(S.all[i]); /* its cache went with its thread */
        S.all[i] = NULL;
    }
    atomic_store_explicit(&S.nworkers, 0, memory_order_release);
    gocc__unlock(&S.mu);
    gocc__lock(&S.cache_mu);
    gocc__task *c = S.cache;
    S.cache = NULL;
    S.ncache = S.cache_low = S.trim_left = 0;
    gocc__unlock(&S.cache_mu);
    while (c != NULL) {
        gocc__task *next = c->next;
        record_free(c);
        c = next;
    }
    return 0;
}

void gocc__sched_fork_prepare(void) {
    gocc__lock(&S.mon_mu);
    gocc__lock(&S.mu);
    gocc__lock(&S.cache_mu);
}

void gocc__sched_fork_parent(void) {
    gocc__unlock(&S.cache_mu);
    gocc__unlock(&S.mu);
    gocc__unlock(&S.mon_mu);
}

/* Only the forking thread exists in the child. If it is a worker it stays
 * the one worker (its running task goes on); every other worker, the
 * monitor and every queued or parked task are gone (their memory is left
 * alone: nothing may touch it). */
void gocc__sched_fork_child(void) {
    worker *me = self_worker;
    S.gq_head = S.gq_tail = NULL;
    atomic_store_explicit(&S.gq_len, 0, memory_order_relaxed);
    S.idle = NULL;
    atomic_store_explicit(&S.nidle, 0, memory_order_relaxed);
    atomic_store_explicit(&S.nspinning, 0, memory_order_relaxed);
    S.mon_running = false;
    S.mon_w = NULL;
    if (me != NULL) {
        me->thread = pthread_self();
        atomic_store_explicit(&me->runnext, NULL, memory_order_relaxed);
        atomic_store_explicit(&me->head, 0, memory_order_relaxed);
        atomic_store_explicit(&me->tail, 0, memory_order_relaxed);
        atomic_store_explicit(&me->run, 0, memory_order_relaxed);
        me->ticks = 0;
        me->spinning = false;
        me->idle = false;
        me->index = 0;
        S.all[0] = me;
        atomic_store_explicit(&S.nworkers, 1, memory_order_relaxed);
        atomic_store_explicit(&S.nthreads, 1, memory_order_relaxed);
        atomic_store_explicit(&S.nactive, 1, memory_order_relaxed);
    } else {
        atomic_store_explicit(&S.nworkers, 0, memory_order_relaxed);
        atomic_store_explicit(&S.nthreads, 0, memory_order_relaxed);
        atomic_store_explicit(&S.nactive, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&S.nlive, me != NULL && me->cur != NULL ? 1 : 0, memory_order_relaxed);
    /* Cached records are forgotten with the rest: the child's registry of
     * waiters (observe.c) no longer lists them, so none may be freed or
     * reused here. */
    S.cache = NULL;
    S.ncache = S.cache_low = S.trim_left = 0;
    if (me != NULL) {
        me->cache = NULL;
        me->ncache = 0;
    }
    /* procs may be set again before first use in the child. */
    S.started = me != NULL;
    atomic_store_explicit(&S.frozen, me != NULL, memory_order_relaxed);
    gocc__unlock(&S.cache_mu);
    gocc__unlock(&S.mu);
    gocc__unlock(&S.mon_mu);
}
