/*
 * bench-sync.c - benchmarks for tasks, error groups, the weighted semaphore,
 * WaitGroup and Once (same method and CSV as bench-chan; see harness.h).
 *
 *   tasks/go                  gocc_go of a trivial task + its finish
 *                             (a WaitGroup), one at a time: thread reuse
 *   group/10000/nolimit       a group runs batches of 10,000 trivial tasks
 *   group/10000/limit8        the same with set_limit(8)   (ns per task)
 *   sem/uncontended           acquire(1) + release(1) on one thread
 *   sem/16threads/w4of8       16 threads acquire(4) + release(4), size 8
 *   once/fastpath             gocc_once_do after the first call
 *   waitgroup/add-done        add(1) + done, one thread
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

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

static const group_case nolimit = {"group/10000/nolimit", -1};
static const group_case limit8 = {"group/10000/limit8", 8};

int main(int argc, char **argv) {
    const bench_desc_t descs[] = {
        {"tasks/go", "ns/task", 2, 0, run_go, "tasks/go"},
        {nolimit.name, "ns/task", 0, 0, run_group, &nolimit},
        {limit8.name, "ns/task", 8, 0, run_group, &limit8},
        {"sem/uncontended", "ns/op", 1, 8, run_sem_uncontended, "sem/uncontended"},
        {"sem/16threads/w4of8", "ns/op", 16, 8, run_sem_contended, "sem/16threads/w4of8"},
        {"once/fastpath", "ns/op", 1, 0, run_once, "once/fastpath"},
        {"waitgroup/add-done", "ns/op", 1, 0, run_wg, "waitgroup/add-done"},
    };
    return bench_main(argc, argv, "bench-sync", descs, (int)(sizeof descs / sizeof descs[0]));
}
