/*
 * bench-sync.c - benchmarks for tasks, error groups, the weighted semaphore,
 * WaitGroup, Once, and the counters of lesson L07 (same method and CSV as
 * bench-chan; see harness.h). bench/go/sync.go runs the same names in Go
 * (goroutines, x/sync errgroup and semaphore, sync.Mutex, sync/atomic).
 *
 *   tasks/go                  gocc_go of a trivial task + its finish
 *                             (a WaitGroup), one at a time: thread reuse
 *   group/10000/nolimit       a group runs batches of 10,000 trivial tasks
 *   group/10000/limit8        the same with set_limit(8)   (ns per task)
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
    long locked;               /* under mu */
    _Alignas(64) _Atomic long atomic;
    gocc_chan_t *ch;           /* counter/channel: increments to the owner */
} counter_shared;

typedef struct counter_arg {
    _Alignas(64) long shard;   /* counter/sharded: this thread's own line */
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
        a[i] = (counter_arg){.sh = &sh, .name = c->name,
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

int main(int argc, char **argv) {
    const bench_desc_t descs[] = {
        {"tasks/go", "ns/task", 2, 0, run_go, "tasks/go"},
        {nolimit.name, "ns/task", 0, 0, run_group, &nolimit},
        {limit8.name, "ns/task", 8, 0, run_group, &limit8},
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
