/*
 * bench-sync.c - benchmarks for tasks, error groups, the weighted semaphore,
 * WaitGroup, Once, and the counters of lesson L07 (same method and CSV as
 * bench-chan; see harness.h). bench/go/sync.go runs the same names in Go
 * (goroutines, x/sync errgroup and semaphore, sync.Mutex, sync/atomic).
 *
 *   tasks/go                  gocc_go of a trivial task + its finish
 *                             (a WaitGroup), one at a time, from the main
 *                             thread
 *   spawn/1000                start 1,000 tasks that each do trivial work
 *                             (an atomic add), wait for all (a WaitGroup),
 *                             again until n have run; ns per task. The
 *                             spawner is the main thread (a plain thread)
 *   task/spawn/1000           the same with the spawner a task (Go: the
 *                             benchmark's goroutine)
 *   group/10000/nolimit       a group runs batches of 10,000 trivial tasks
 *   group/10000/limit8        the same with set_limit(8)   (ns per task)
 *   task/group/10000/nolimit  group/10000/nolimit driven from a task
 *   task/mem/blocked          N tasks (default 10,000; BENCH_MEM_TASKS=N
 *                             in the environment, bench/run --mem-tasks N)
 *                             block receiving from one channel; the
 *                             resident size (/proc/self/statm) once all
 *                             are blocked, less what it was before the
 *                             first round, over N: row
 *                             task/mem/blocked/pertask in bytes per task,
 *                             no ns row. Exact when the scenario runs
 *                             alone in its process (bench/run does that):
 *                             earlier scenarios leave memory behind.
 *   sem/uncontended           acquire(1) + release(1) on one thread, size 8
 *   sem/t16/w4of8             16 threads acquire(4) + release(4), size 8
 *   once/fastpath             gocc_once_do after the first call
 *   waitgroup/add-done        add(1) + done, one thread
 *   counter/mutex/t4          4 threads increment one counter: under a
 *   counter/atomic/t4         mutex; with an atomic add; in per-thread
 *   counter/sharded/t4        cache-line shards summed at the end; by
 *   counter/channel/t4        sending +1 on a channel (capacity 1024) to
 *                             the one thread that owns the counter (L07's
 *                             "share memory by communicating" variant).
 *                             ns per increment (wall time / increments);
 *                             the lesson's claim is the order
 *                             sharded < atomic < mutex < channel.
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

static int trivial(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

/* ---- tasks ---- */

static int trivial_done(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gocc_waitgroup_done(arg);
    return 0;
}

static void run_go(const void *self, uint64_t n) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    for (uint64_t i = 0; i < n; i++) {
        gocc_waitgroup_add(&wg, 1);
        int rc = gocc_go(trivial_done, NULL, &wg);
        if (rc != 0) bench_die("gocc_go", self, rc);
        gocc_waitgroup_wait(&wg, NULL);
    }
}

/* ---- spawn + run + wait ---- */

enum { SPAWN_BATCH = 1000 };

typedef struct spawn_run {
    gocc_waitgroup_t wg;
    _Atomic uint64_t ran;
} spawn_run;

static int spawn_work(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    spawn_run *r = arg;
    atomic_fetch_add_explicit(&r->ran, 1, memory_order_relaxed);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void run_spawn(const void *self, uint64_t n) {
    const char *name = self;
    spawn_run r = {.wg = GOCC_WAITGROUP_INIT};
    atomic_init(&r.ran, 0);
    for (uint64_t started = 0; started < n;) {
        uint64_t batch = n - started < SPAWN_BATCH ? n - started : SPAWN_BATCH;
        gocc_waitgroup_add(&r.wg, (int64_t)batch);
        for (uint64_t i = 0; i < batch; i++) {
            int rc = gocc_go(spawn_work, NULL, &r);
            if (rc != 0) bench_die("gocc_go", name, rc);
        }
        gocc_waitgroup_wait(&r.wg, NULL);
        started += batch;
    }
    if (atomic_load(&r.ran) != n) bench_die("tasks lost", name, 0);
}

static void run_spawn_task(const void *self, uint64_t n) {
    bench_run_in_task(self, run_spawn, self, n);
}

/* ---- groups ---- */

typedef struct group_case {
    const char *name;
    int limit;
} group_case;

static void run_group(const void *self, uint64_t n) {
    const group_case *c = self;
    while (n > 0) {
        uint64_t batch = n < 10000 ? n : 10000;
        gocc_group_t *g = gocc_group_new(NULL);
        if (g == NULL) bench_die("gocc_group_new", c->name, GOCC_ENOMEM);
        gocc_group_set_limit(g, c->limit);
        for (uint64_t i = 0; i < batch; i++) {
            int rc = gocc_group_go(g, trivial, NULL);
            if (rc != 0) bench_die("gocc_group_go", c->name, rc);
        }
        int rc = gocc_group_wait(g);
        if (rc != 0) bench_die("gocc_group_wait", c->name, rc);
        gocc_group_free(g);
        n -= batch;
    }
}

static void run_group_task(const void *self, uint64_t n) {
    const group_case *c = self;
    bench_run_in_task(c->name, run_group, self, n);
}

/* ---- memory: N blocked tasks ---- */

enum { MEM_TASKS_DEFAULT = 10000 };

static long mem_tasks = MEM_TASKS_DEFAULT; /* BENCH_MEM_TASKS, read in main */

typedef struct mem_run {
    gocc_chan_t *gate; /* closed to let them all go */
    gocc_waitgroup_t wg;
    _Atomic long blocked;
    const char *name;
} mem_run;

static int mem_blocked(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mem_run *r = arg;
    atomic_fetch_add_explicit(&r->blocked, 1, memory_order_release);
    int rc = gocc_chan_recv(r->gate, NULL, NULL);
    if (rc != GOCC_ECLOSED) bench_die("recv on the gate", r->name, rc);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void run_mem_blocked(const void *self, uint64_t n) {
    const char *name = self;
    static long base = -1; /* resident pages before this process's first round */
    long tasks = bench_smoke() ? (mem_tasks / 100 > 1 ? mem_tasks / 100 : 1) : mem_tasks;
    long page = sysconf(_SC_PAGESIZE);
    if (base < 0) base = bench_resident_pages();
    if (base < 0 || page <= 0) bench_die("reading /proc/self/statm", name, GOCC_EINVAL);
    for (uint64_t round = 0; round < n; round++) {
        mem_run r = {.gate = gocc_chan_new(0, 0), .wg = GOCC_WAITGROUP_INIT, .name = name};
        if (r.gate == NULL) bench_die("gocc_chan_new", name, GOCC_ENOMEM);
        atomic_init(&r.blocked, 0);
        gocc_waitgroup_add(&r.wg, tasks);
        for (long i = 0; i < tasks; i++) {
            int rc = gocc_go(mem_blocked, NULL, &r);
            if (rc != 0) bench_die("gocc_go", name, rc);
        }
        while (atomic_load_explicit(&r.blocked, memory_order_acquire) < tasks)
            bench_sleep_ns(100000);
        bench_sleep_ns(bench_smoke() ? 1000000 : 10000000); /* the last ones park */
        long resident = bench_resident_pages();
        if (resident < 0) bench_die("reading /proc/self/statm", name, GOCC_EINVAL);
        bench_metric("pertask", "B/task", (double)(resident - base) * (double)page / (double)tasks,
                     BENCH_LOWER_IS_BETTER);
        gocc_chan_close(r.gate);
        gocc_waitgroup_wait(&r.wg, NULL);
        gocc_chan_release(r.gate);
        bench_settle_tasks(0);
    }
}

/* ---- semaphore ---- */

static void run_sem_uncontended(const void *self, uint64_t n) {
    gocc_sem_t *s = gocc_sem_new(8);
    for (uint64_t i = 0; i < n; i++) {
        int rc = gocc_sem_acquire(s, 1, NULL);
        if (rc != 0) bench_die("acquire", self, rc);
        gocc_sem_release(s, 1);
    }
    gocc_sem_free(s);
}

typedef struct sem_arg {
    gocc_sem_t *s;
    uint64_t n;
    const char *name;
} sem_arg;

static void *sem_worker(void *p) {
    sem_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        int rc = gocc_sem_acquire(a->s, 4, NULL);
        if (rc != 0) bench_die("acquire", a->name, rc);
        gocc_sem_release(a->s, 4);
    }
    return NULL;
}

static void run_sem_contended(const void *self, uint64_t n) {
    enum { THREADS = 16 };
    gocc_sem_t *s = gocc_sem_new(8);
    pthread_t t[THREADS];
    sem_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (sem_arg){s, n / THREADS + (i < (int)(n % THREADS)), self};
        if (pthread_create(&t[i], NULL, sem_worker, &a[i]) != 0)
            bench_die("pthread_create", self, GOCC_EAGAIN);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    gocc_sem_free(s);
}

/* ---- once, waitgroup ---- */

static int forty_two(void *arg) {
    (void)arg;
    return 42;
}

static void run_once(const void *self, uint64_t n) {
    static gocc_once_t once = GOCC_ONCE_INIT;
    for (uint64_t i = 0; i < n; i++)
        if (gocc_once_do(&once, forty_two, NULL) != 42) bench_die("once", self, 0);
}

static void run_wg(const void *self, uint64_t n) {
    (void)self;
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    for (uint64_t i = 0; i < n; i++) {
        gocc_waitgroup_add(&wg, 1);
        gocc_waitgroup_done(&wg);
    }
}

/* ---- L07 counters ---- */

enum { COUNTER_THREADS = 4, COUNTER_CHAN_CAP = 1024 };

typedef struct counter_case {
    const char *name;
    void *(*worker)(void *);
} counter_case;

typedef struct counter_shared {
    pthread_mutex_t mu;
    long locked; /* under mu */
    _Alignas(64) _Atomic long atomic;
    gocc_chan_t *ch; /* counter/channel: increments to the owner */
} counter_shared;

typedef struct counter_arg {
    _Alignas(64) long shard; /* counter/sharded: this thread's own line */
    counter_shared *sh;
    uint64_t n;
    const char *name;
} counter_arg;

static void *count_mutex(void *p) {
    counter_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        pthread_mutex_lock(&a->sh->mu);
        a->sh->locked++;
        pthread_mutex_unlock(&a->sh->mu);
    }
    return NULL;
}

static void *count_atomic(void *p) {
    counter_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++)
        atomic_fetch_add_explicit(&a->sh->atomic, 1, memory_order_relaxed);
    return NULL;
}

static void *count_sharded(void *p) {
    counter_arg *a = p;
    volatile long *shard = &a->shard; /* one store per increment, as the others */
    for (uint64_t i = 0; i < a->n; i++) *shard = *shard + 1;
    return NULL;
}

static void *count_channel(void *p) {
    counter_arg *a = p;
    const long one = 1;
    for (uint64_t i = 0; i < a->n; i++) {
        int rc = gocc_chan_send(a->sh->ch, &one, NULL);
        if (rc != 0) bench_die("send", a->name, rc);
    }
    return NULL;
}

/* The owner of counter/channel: adds up until the channel is closed. */
static void *count_owner(void *p) {
    counter_shared *sh = p;
    long v;
    while (gocc_chan_recv(sh->ch, &v, NULL) == 0) sh->locked += v;
    return NULL;
}

static void run_counter(const void *self, uint64_t n) {
    const counter_case *c = self;
    counter_shared sh = {.locked = 0};
    pthread_mutex_init(&sh.mu, NULL);
    atomic_init(&sh.atomic, 0);
    pthread_t owner;
    bool owned = c->worker == count_channel;
    if (owned) {
        sh.ch = gocc_chan_new(sizeof(long), COUNTER_CHAN_CAP);
        if (sh.ch == NULL) bench_die("gocc_chan_new", c->name, GOCC_ENOMEM);
        if (pthread_create(&owner, NULL, count_owner, &sh) != 0)
            bench_die("pthread_create", c->name, GOCC_EAGAIN);
    }
    counter_arg *a = aligned_alloc(64, sizeof(counter_arg) * COUNTER_THREADS);
    if (a == NULL) bench_die("aligned_alloc", c->name, GOCC_ENOMEM);
    pthread_t t[COUNTER_THREADS];
    for (int i = 0; i < COUNTER_THREADS; i++) {
        a[i] = (counter_arg){.sh = &sh,
                             .name = c->name,
                             .n = n / COUNTER_THREADS + ((uint64_t)i < n % COUNTER_THREADS)};
        if (pthread_create(&t[i], NULL, c->worker, &a[i]) != 0)
            bench_die("pthread_create", c->name, GOCC_EAGAIN);
    }
    for (int i = 0; i < COUNTER_THREADS; i++) pthread_join(t[i], NULL);
    if (owned) {
        gocc_chan_close(sh.ch);
        pthread_join(owner, NULL);
        gocc_chan_release(sh.ch);
    }
    long total = sh.locked + atomic_load(&sh.atomic);
    for (int i = 0; i < COUNTER_THREADS; i++) total += a[i].shard;
    free(a);
    pthread_mutex_destroy(&sh.mu);
    if (total != (long)n) bench_die("increments lost", c->name, 0);
}

static const counter_case c_mutex = {"counter/mutex/t4", count_mutex};
static const counter_case c_atomic = {"counter/atomic/t4", count_atomic};
static const counter_case c_sharded = {"counter/sharded/t4", count_sharded};
static const counter_case c_channel = {"counter/channel/t4", count_channel};

static const group_case nolimit = {"group/10000/nolimit", -1};
static const group_case limit8 = {"group/10000/limit8", 8};
static const group_case task_nolimit = {"task/group/10000/nolimit", -1};

int main(int argc, char **argv) {
    const char *env = getenv("BENCH_MEM_TASKS");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        mem_tasks = strtol(env, &end, 10);
        if (!end || *end || mem_tasks < 1 || mem_tasks > 100000000) {
            fprintf(stderr, "bench-sync: BENCH_MEM_TASKS wants a count of tasks (1..10^8)\n");
            return 2;
        }
    }
    const bench_desc_t descs[] = {
        {"tasks/go", "ns/task", 2, 0, run_go, "tasks/go"},
        {"spawn/1000", "ns/task", SPAWN_BATCH, 0, run_spawn, "spawn/1000"},
        {"task/spawn/1000", "ns/task", SPAWN_BATCH, 0, run_spawn_task, "task/spawn/1000"},
        {nolimit.name, "ns/task", 0, 0, run_group, &nolimit},
        {limit8.name, "ns/task", 8, 0, run_group, &limit8},
        {task_nolimit.name, "ns/task", 0, 0, run_group_task, &task_nolimit},
        {"task/mem/blocked", NULL, (int)mem_tasks, 0, run_mem_blocked, "task/mem/blocked"},
        {"sem/uncontended", "ns/op", 1, 8, run_sem_uncontended, "sem/uncontended"},
        {"sem/t16/w4of8", "ns/op", 16, 8, run_sem_contended, "sem/t16/w4of8"},
        {"once/fastpath", "ns/op", 1, 0, run_once, "once/fastpath"},
        {"waitgroup/add-done", "ns/op", 1, 0, run_wg, "waitgroup/add-done"},
        {c_mutex.name, "ns/op", COUNTER_THREADS, 0, run_counter, &c_mutex},
        {c_atomic.name, "ns/op", COUNTER_THREADS, 0, run_counter, &c_atomic},
        {c_sharded.name, "ns/op", COUNTER_THREADS, 0, run_counter, &c_sharded},
        {c_channel.name, "ns/op", COUNTER_THREADS + 1, COUNTER_CHAN_CAP, run_counter, &c_channel},
    };
    return bench_main(argc, argv, "bench-sync", descs, (int)(sizeof descs / sizeof descs[0]));
}
