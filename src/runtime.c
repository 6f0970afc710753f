/*
 * runtime.c - starting tasks, the own_thread path, and the small
 * process-wide facts every module needs (error texts, the clock, version).
 *
 * Every task starts in start(): a coroutine on the scheduler (sched.c), or,
 * with gocc_task_opts_t.own_thread, a function run on a thread of the
 * cache below, which is what every task was before tasks became
 * coroutines. Settings, shutdown and fork drive both.
 *
 * The own_thread cache. A task is a function run on a runtime thread. Threads are cached: one
 * that finishes its task puts itself on the idle list and parks on its own
 * waiter; gocc_go hands the next task to the most recently idled thread (a
 * warm stack) and wakes exactly that thread. Only when no thread is idle is
 * one created. An idle thread that gets no task for idle_timeout removes
 * itself from the list and exits; the oldest idle threads time out first.
 *
 * Invariants:
 *  - tasks_live counts tasks whose fn has not returned. It goes up before
 *    gocc_go hands the task over and down (release) only after fn returned
 *    and the thread is back on the idle list (gocc_go in gocc.h).
 *  - A worker is on the idle list iff wk->idle; only a thread holding rt.mu
 *    takes it off, so exactly one party decides its fate: gocc_go (assign
 *    and wake) or the worker itself (time out and exit).
 *
 * Lock order: rt.mu is a leaf. Nothing else is locked while holding it.
 *
 * Threads block every signal (a good guest in someone else's process:
 * signals go to the application's own threads). A process may exit at any
 * moment; idle threads just vanish with it.
 *
 * How a thread ends (threads are created joinable):
 *  - on its own (idle timeout, or no waiter could be made): it counts
 *    itself in rt.leaving, detaches itself and returns; a thread-specific
 *    destructor that runs after every other one of the thread (gone_key)
 *    takes it out of rt.leaving. Nobody joins it.
 *  - told to by gocc_runtime_shutdown: shutdown takes it off the idle list
 *    (marking it quit), wakes it, joins it and frees its worker record; the
 *    join returns after the thread's destructors (its waiter, its object
 *    pool caches) ran. Shutdown then waits for rt.leaving to reach 0, so
 *    when it returns no thread of the cache is still on its way out.
 *
 * Fork (pthread_atfork, registered on first use): prepare takes the
 * global locks in rank order (GOCC_LOCK_RANKS in gocc-internal.h);
 * the child forgets the threads that do not exist in it
 * (idle list, thread counts, the tasks they ran) and the timer, I/O poller
 * and watch threads. See docs/design.md, "fork".
 */
#include "gocc-internal.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#if defined(GOCC_ASAN) || defined(GOCC_TSAN)
#define GOCC__DEFAULT_STACK (1024u * 1024u) /* sanitizers need room */
#else
#define GOCC__DEFAULT_STACK (256u * 1024u)
#endif
#define GOCC__DEFAULT_IDLE (10 * GOCC_SECOND)

typedef struct worker {
    struct worker *prev, *next; /* idle list, under rt.mu */
    bool idle;                  /* on the idle list, under rt.mu */
    bool quit;                  /* shutdown took it off the list: exit (written under
                                 * rt.mu before the wake, read after it) */
    pthread_t self;             /* written by the thread before it first idles */
    gocc__waiter *w;            /* the thread's waiter, NULL if it has none */
    /* The task to run: written by gocc_go before the wake (or before
     * pthread_create), read by the worker after it. */
    gocc_fn fn;
    gocc_ctx_t *ctx;
    void *arg;
    void (*on_exit)(void *, int);
    void *exit_arg;
    bool counted;     /* a task (gocc_tasks_live) or runtime work */
    uint64_t task_id; /* for the dump; 0 for runtime work */
    char name[32];    /* default task name, "" for none */
} worker;

static struct {
    gocc__mutex mu;
    pthread_cond_t gone; /* signalled when leaving drops to 0 */
    worker *idle_head;   /* most recently idle first */
    worker *idle_tail;
    size_t nthreads; /* task threads that exist */
    size_t nidle;
    size_t leaving; /* threads that left on their own and are still exiting */
    size_t stack_size;
    int64_t idle_timeout;
    size_t max_threads;
} rt = {
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_RUNTIME),
    .gone = PTHREAD_COND_INITIALIZER,
    .stack_size = GOCC__DEFAULT_STACK,
    .idle_timeout = GOCC__DEFAULT_IDLE,
};

/* Low 32 bits: tasks live. High 32 bits: tasks ever started, so one atomic
 * add both counts a task and gives it an id (ids wrap after 2^32 tasks;
 * they only label dump entries). */
static _Atomic uint64_t tasks_word;
#define TASK_ONE ((uint64_t)1 << 32)

uint64_t gocc__tasks_inc(void) {
    uint64_t old = atomic_fetch_add_explicit(&tasks_word, TASK_ONE | 1, memory_order_relaxed);
    return (old >> 32) + 1;
}
uint64_t gocc__tasks_renew(void) {
    uint64_t old = atomic_fetch_add_explicit(&tasks_word, TASK_ONE, memory_order_relaxed);
    return (old >> 32) + 1;
}
void gocc__tasks_dec(void) { atomic_fetch_sub_explicit(&tasks_word, 1, memory_order_release); }
size_t gocc_tasks_live(void) {
    return (size_t)(atomic_load_explicit(&tasks_word, memory_order_acquire) & 0xffffffffu);
}

/* ---- the idle list (caller holds rt.mu) ---- */

static void idle_push(worker *wk) {
    gocc__assert_held(&rt.mu);
    wk->prev = NULL;
    wk->next = rt.idle_head;
    if (rt.idle_head)
        rt.idle_head->prev = wk;
    else
        rt.idle_tail = wk;
    rt.idle_head = wk;
    wk->idle = true;
    rt.nidle++;
}

static void idle_remove(worker *wk) {
    gocc__assert_held(&rt.mu);
    if (wk->prev)
        wk->prev->next = wk->next;
    else
        rt.idle_head = wk->next;
    if (wk->next)
        wk->next->prev = wk->prev;
    else
        rt.idle_tail = wk->prev;
    wk->prev = wk->next = NULL;
    wk->idle = false;
    rt.nidle--;
}

/* ---- worker threads ---- */

int gocc__task_run(gocc__waiter *w, uint64_t id, gocc_fn fn, gocc_ctx_t *ctx, void *arg,
                   const char *name) {
    gocc__obs_task_begin(w, id, fn, name);
    GOCC_PROBE2(task_start, id, (uintptr_t)fn);
    int rc = fn(ctx, arg);
    GOCC_PROBE2(task_end, id, rc);
    gocc__obs_task_end(w);
    return rc;
}

static void run_task(worker *wk) {
    gocc_ctx_t *ctx = wk->ctx;
    int rc;
    if (wk->counted) {
        if (wk->name[0] != '\0') (void)gocc_task_set_name(wk->name); /* the OS name too */
        rc = gocc__task_run(wk->w, wk->task_id, wk->fn, ctx, wk->arg, wk->name);
    } else {
        rc = wk->fn(ctx, wk->arg);
    }
    if (wk->on_exit != NULL) wk->on_exit(wk->exit_arg, rc);
    gocc_ctx_release(ctx);
    wk->fn = NULL;
    wk->ctx = NULL;
    wk->arg = NULL;
    wk->on_exit = NULL;
    wk->exit_arg = NULL;
}

static void uncount(worker *wk) {
    if (wk->counted) gocc__tasks_dec();
}

/* The worker record of this thread while it is a runtime thread (fork). */
static GOCC_TLS worker *self_worker;

/* A thread that leaves on its own is in rt.leaving until this destructor
 * ran a second time: the first call asks for one more pass, and POSIX runs
 * a pass only after every destructor of the previous one, so by then the
 * thread's waiter and object-pool caches have been freed. */
static pthread_key_t gone_key;

static void gone(void *v) {
    if (v == (void *)1 && pthread_setspecific(gone_key, (void *)2) == 0) return;
    gocc__lock(&rt.mu);
    if (--rt.leaving == 0) pthread_cond_broadcast(&rt.gone);
    gocc__unlock(&rt.mu);
}

static void *worker_main(void *p) {
    worker *wk = p;
    self_worker = wk;
    wk->self = pthread_self(); /* read by shutdown once it finds us idle */
    gocc__os_thread_name("gocc");
    wk->w = gocc__self_try();
    for (;;) {
        run_task(wk);

        gocc__lock(&rt.mu);
        if (wk->w == NULL) { /* cannot park: do not cache this thread */
            rt.nthreads--;
            rt.leaving++;
            gocc__unlock(&rt.mu);
            uncount(wk);
            break;
        }
        gocc__waiter_arm(wk->w);
        int64_t timeout = rt.idle_timeout;
        idle_push(wk);
        bool counted = wk->counted;
        gocc__unlock(&rt.mu);
        if (counted) gocc__tasks_dec(); /* after the thread is reusable */

        if (!gocc__park_until(wk->w, gocc_now() + timeout)) {
            gocc__lock(&rt.mu);
            if (wk->idle) { /* nobody took us: exit */
                idle_remove(wk);
                rt.nthreads--;
                rt.leaving++;
                gocc__unlock(&rt.mu);
                break;
            }
            gocc__unlock(&rt.mu);
            gocc__park(wk->w); /* gocc_go or shutdown took us; its wake is coming */
        }
        if (wk->quit) { /* shutdown: it joins us and frees wk */
            self_worker = NULL;
            return NULL;
        }
    }
    self_worker = NULL;
    gocc__free(wk);
    gocc__runtime_init(); /* gone_key exists */
    pthread_detach(pthread_self());
    if (pthread_setspecific(gone_key, (void *)1) != 0) gone((void *)2);
    return NULL;
}

int gocc__thread_create(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg) {
    if (GOCC_FAULT_THREAD()) return GOCC_EAGAIN;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return GOCC_ENOMEM;
    if (stack != 0) {
        if (stack < (size_t)PTHREAD_STACK_MIN) stack = (size_t)PTHREAD_STACK_MIN;
        pthread_attr_setstacksize(&attr, stack);
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0) return 0;
    return rc == ENOMEM ? GOCC_ENOMEM : GOCC_EAGAIN;
}

static int spawn_thread(worker *wk, size_t stack) {
    if (stack == 0) {
        gocc__lock(&rt.mu);
        stack = rt.stack_size;
        gocc__unlock(&rt.mu);
    }
    pthread_t tid;
    return gocc__thread_create(&tid, stack, worker_main, wk);
}

static void assign(worker *wk, gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                   void *exit_arg, uint64_t task_id, const char *name) {
    wk->counted = task_id != 0;
    wk->task_id = task_id;
    if (name != NULL) {
        strncpy(wk->name, name, sizeof wk->name - 1);
        wk->name[sizeof wk->name - 1] = '\0';
    } else {
        wk->name[0] = '\0';
    }
    wk->fn = fn;
    wk->ctx = ctx;
    wk->arg = arg;
    wk->on_exit = on_exit;
    wk->exit_arg = exit_arg;
}

static int start_thread(gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                        void *exit_arg, bool counted, const char *name, size_t stack);

/* Every task the library starts comes through here: a coroutine on the
 * scheduler's workers, or with own_thread a thread of the cache below. */
static int start(gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                 void *exit_arg, bool counted, const gocc_task_opts_t *opts) {
    if (fn == NULL) return GOCC_EINVAL;
    const char *name = opts != NULL ? opts->name : NULL;
    if (opts != NULL && opts->own_thread)
        return start_thread(fn, ctx, arg, on_exit, exit_arg, counted, name, opts->stack_size);
    gocc__start st = {
        .fn = fn,
        .ctx = ctx,
        .arg = arg,
        .on_exit = on_exit,
        .exit_arg = exit_arg,
        .name = name,
        .stack_size = opts != NULL ? opts->stack_size : 0,
    };
    st.task_id = counted ? gocc__tasks_inc() : 0;
    gocc_ctx_retain(ctx);
    int rc = gocc__sched_go(&st);
    if (rc != 0) {
        gocc_ctx_release(ctx);
        if (counted) gocc__tasks_dec();
    }
    return rc;
}

int gocc_go(gocc_fn fn, gocc_ctx_t *ctx, void *arg) {
    return start(fn, ctx, arg, NULL, NULL, true, NULL);
}

int gocc_go_opts(gocc_fn fn, gocc_ctx_t *ctx, void *arg, const gocc_task_opts_t *opts) {
    return start(fn, ctx, arg, NULL, NULL, true, opts);
}

int gocc__go_ex(gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                void *exit_arg, const char *name) {
    gocc_task_opts_t o = {.name = name};
    return start(fn, ctx, arg, on_exit, exit_arg, true, &o);
}

int gocc__spawn(gocc_fn fn, void *arg) { return start(fn, NULL, arg, NULL, NULL, false, NULL); }

/* An own_thread task: an idle cached thread, or a new one (always new for
 * a stack size of its own: a cached thread's stack cannot change). */
static int start_thread(gocc_fn fn, gocc_ctx_t *ctx, void *arg, void (*on_exit)(void *, int),
                        void *exit_arg, bool counted, const char *name, size_t stack) {
    uint64_t task_id = counted ? gocc__tasks_inc() : 0;
    gocc_ctx_retain(ctx);

    gocc__lock(&rt.mu);
    worker *wk = stack == 0 ? rt.idle_head : NULL;
    if (wk != NULL) {
        idle_remove(wk);
        assign(wk, fn, ctx, arg, on_exit, exit_arg, task_id, name);
        gocc__unlock(&rt.mu);
        gocc__wake(wk->w); /* exactly this thread */
        return 0;
    }
    int rc = GOCC_EAGAIN;
    if (rt.max_threads != 0 && rt.nthreads >= rt.max_threads) goto fail_locked;
    rt.nthreads++;
    gocc__unlock(&rt.mu);

    rc = GOCC_ENOMEM;
    wk = gocc__calloc(1, sizeof *wk);
    if (wk != NULL) {
        assign(wk, fn, ctx, arg, on_exit, exit_arg, task_id, name);
        rc = spawn_thread(wk, stack);
        if (rc == 0) return 0;
        gocc__free(wk);
    }
    gocc__lock(&rt.mu);
    rt.nthreads--;
fail_locked:
    gocc__unlock(&rt.mu);
    gocc_ctx_release(ctx);
    if (counted) gocc__tasks_dec();
    return rc;
}

/* ---- shutdown ---- */

/* What held the last refused shutdown (GOCC__HELD_*), for the dump. */
static _Atomic unsigned shutdown_held;

int gocc_runtime_shutdown(void) {
    gocc__runtime_init();
    int sched_rc = gocc__sched_shutdown();
    /* Idle cached threads: off the list (so no gocc_go can pick them), told
     * to quit, woken, joined. */
    gocc__lock(&rt.mu);
    worker *quit = rt.idle_head;
    for (worker *wk = quit; wk != NULL; wk = wk->next) {
        wk->idle = false;
        wk->quit = true;
        rt.nthreads--;
    }
    rt.idle_head = rt.idle_tail = NULL;
    rt.nidle = 0;
    gocc__unlock(&rt.mu);
    for (worker *wk = quit; wk != NULL; wk = wk->next) gocc__wake(wk->w);
    while (quit != NULL) {
        worker *next = quit->next;
        pthread_join(quit->self, NULL);
        gocc__free(quit);
        quit = next;
    }
    /* Threads that timed out on their own just before: wait out their exit. */
    gocc__lock(&rt.mu);
    while (rt.leaving > 0) gocc__cond_wait(&rt.gone, &rt.mu);
    bool busy = rt.nthreads > 0; /* running a task, or runtime work (pool workers) */
    gocc__unlock(&rt.mu);

    /* The scheduler also keeps its workers while descriptors are
     * registered (they poll): that is the poller's hold, not busy threads. */
    bool sched_busy = sched_rc != 0 && !gocc__netpoll_in_use();
    unsigned held = (gocc_tasks_live() > 0 ? GOCC__HELD_TASKS : 0) |
                    (busy || sched_busy ? GOCC__HELD_THREADS : 0);
    if (gocc__timer_shutdown() != 0) held |= GOCC__HELD_TIMERS;
    if (gocc__watch_shutdown() != 0) held |= GOCC__HELD_WATCH;
    if (gocc__netpoll_shutdown() != 0) held |= GOCC__HELD_NETPOLL;
    atomic_store_explicit(&shutdown_held, held, memory_order_relaxed);
    return held != 0 ? GOCC_EAGAIN : 0;
}

unsigned gocc__shutdown_held(void) {
    return atomic_load_explicit(&shutdown_held, memory_order_relaxed);
}

/* ---- fork ---- */

static void fork_prepare(void) {
    gocc__pool_fork_prepare();
    gocc__obs_fork_prepare();
    gocc__timer_fork_prepare();
    gocc__netpoll_fork_prepare();
    gocc__sched_fork_prepare();
    gocc__lock(&rt.mu);
}

static void fork_parent(void) {
    gocc__unlock(&rt.mu);
    gocc__sched_fork_parent();
    gocc__netpoll_fork_parent();
    gocc__timer_fork_parent();
    gocc__obs_fork_parent();
    gocc__pool_fork_parent();
}

/* Only the forking thread exists in the child. If it is a runtime thread,
 * it is the one thread of the cache (busy: it runs a task or pool work,
 * and goes idle as usual afterwards); the idle ones are gone (their
 * records stay allocated: nothing in the child may touch them). Tasks that
 * ran on other threads do not exist any more: only a task the forking
 * thread runs stays counted. */
static void fork_child(void) {
    rt.idle_head = rt.idle_tail = NULL;
    rt.nidle = 0;
    rt.leaving = 0;
    rt.nthreads = self_worker != NULL ? 1 : 0;
    gocc__waiter *w = gocc__self_peek();
    uint64_t live = w != NULL && atomic_load_explicit(&w->obs.task_id, memory_order_relaxed) != 0;
    /* (a coroutine task's waiter is the one gocc__self_peek answers) */
    uint64_t word = atomic_load_explicit(&tasks_word, memory_order_relaxed);
    atomic_store_explicit(&tasks_word, (word & ~(uint64_t)0xffffffffu) | live,
                          memory_order_relaxed);
    pthread_cond_init(&rt.gone, NULL); /* no waiter of the parent's survives */
    gocc__unlock(&rt.mu);
    gocc__sched_fork_child();
    gocc__netpoll_fork_child();
    gocc__timer_fork_child();
    gocc__obs_fork_child();
    gocc__pool_fork_child();
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void runtime_init_once(void) {
    gocc__park_set_hooks(&gocc__obs_park_hooks); /* before any thread's waiter */
    if (pthread_key_create(&gone_key, gone) != 0) abort();
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) abort();
}

void gocc__runtime_init(void) { pthread_once(&init_once, runtime_init_once); }

/* ---- configuration ---- */

int gocc_runtime_configure(const gocc_runtime_config_t *cfg) {
    gocc__runtime_init();
    if (cfg == NULL || cfg->idle_timeout_ns < 0) return GOCC_EINVAL;
    int rc = gocc__sched_configure(cfg); /* checks everything first: all or nothing */
    if (rc != 0) return rc;
    gocc__lock(&rt.mu);
    if (cfg->stack_size) rt.stack_size = cfg->stack_size;
    if (cfg->idle_timeout_ns) rt.idle_timeout = cfg->idle_timeout_ns;
    if (cfg->max_threads)
        rt.max_threads = cfg->max_threads == GOCC_RUNTIME_UNLIMITED ? 0 : cfg->max_threads;
    gocc__unlock(&rt.mu);
    return 0;
}

void gocc_runtime_config_get(gocc_runtime_config_t *out) {
    if (out == NULL) return;
    gocc__runtime_init();
    gocc__sched_config_get(out);
}

size_t gocc_runtime_threads(void) {
    gocc__runtime_init();
    gocc__lock(&rt.mu);
    size_t n = rt.nthreads;
    gocc__unlock(&rt.mu);
    return n + gocc__sched_threads();
}

/* ---- process-wide facts ---- */

#define GOCC_STR_(x) #x
#define GOCC_STR(x) GOCC_STR_(x)
const char *gocc_version(void) {
    return GOCC_STR(GOCC_VERSION_MAJOR) "." GOCC_STR(GOCC_VERSION_MINOR) "." GOCC_STR(
        GOCC_VERSION_PATCH);
}

int64_t gocc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * GOCC_SECOND + ts.tv_nsec;
}

const char *gocc_strerror(int err) {
    switch (err) {
    case GOCC_OK: return "success";
    case GOCC_ECLOSED: return "channel closed";
    case GOCC_ECANCELED: return "context canceled";
    case GOCC_EDEADLINE: return "context deadline exceeded";
    /* Also what gocc_go answers when no thread could be made for a task:
     * "would block" alone read as if the call could have waited. */
    case GOCC_EAGAIN: return "would block, full, or no thread could be started";
    case GOCC_ENOMEM: return "out of memory";
    case GOCC_EINVAL: return "invalid argument";
    case GOCC_ESHUTDOWN: return "pool is shut down";
    default: break;
    }
    if (err < 0 && err > INT_MIN) {
        const char *s = strerror(-err);
        if (s != NULL) return s;
    }
    return "unknown error";
}
