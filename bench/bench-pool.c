/*
 * bench-pool.c - benchmarks for the worker pool and the object pool (same
 * method and CSV as bench-chan and bench-sync; see harness.h).
 *
 *   workpool/throughput/4w/q1024     n trivial jobs through 4 workers and a
 *                                    queue of 1024 (blocking submit, then a
 *                                    graceful shutdown): ns/job
 *   workpool/overload2x/2w/shed      2 workers, 20 us of busy work per job,
 *   workpool/overload2x/2w/block     jobs offered at twice what they can do
 *                                    (one every 5 us, open loop), queue 64;
 *                                    try_submit sheds, submit blocks. The CSV
 *                                    value is wall time per OFFERED job (the
 *                                    producer's pace: ~5000 when it keeps its
 *                                    schedule, ~10000 when backpressure slows
 *                                    it to capacity). Latencies of accepted
 *                                    jobs go to stderr as "# latency" lines
 *                                    (of the last trial): arrival (scheduled
 *                                    time) -> start and -> done, p50 and p99,
 *                                    call -> start, and the shed share.
 *   pool/getput/1thread              gocc_pool_get + gocc_pool_put, one thread
 *   pool/getput/2threads             the same on 2 threads, one pool (ns per
 *                                    get+put pair, wall time / pairs)
 *   baseline/malloc-free/1thread     malloc(64) + free, for comparison
 *   baseline/malloc-free/2threads
 *
 * The objects are 64 bytes. Busy work spins on the clock (no sleep), so the
 * overload scenarios want at least 3 idle cores to mean anything ("served"
 * in the latency line shows whether the workers reached their capacity).
 * Under blocking submit the backlog moves into the producer: arrival->start
 * then grows with the length of the run, while call->start (the pool's own
 * queueing) stays bounded by the queue.
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

enum { OBJ_SIZE = 64 };

static int trivial(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

/* ---- worker pool: throughput ---- */

static void run_wp_throughput(const void *self, uint64_t n) {
    gocc_workpool_t *p = gocc_workpool_new(4, 1024, NULL);
    if (p == NULL) bench_die("gocc_workpool_new", self, -errno);
    for (uint64_t i = 0; i < n; i++) {
        int rc = gocc_workpool_submit(p, trivial, NULL, NULL);
        if (rc != 0) bench_die("gocc_workpool_submit", self, rc);
    }
    int rc = gocc_workpool_shutdown(p, NULL);
    if (rc != 0) bench_die("gocc_workpool_shutdown", self, rc);
    gocc_workpool_free(p);
}

/* ---- worker pool: latency under 2x overload ---- */

#define SERVICE_NS (20 * GOCC_MICROSECOND)
#define WORKERS 2
#define INTERVAL_NS (SERVICE_NS / WORKERS / 2) /* twice the capacity */
#define OVERLOAD_QUEUE 64

typedef struct lat_job {
    int64_t arrive; /* scheduled arrival */
    int64_t call;   /* when submit was called */
    int64_t start, done;
} lat_job;

typedef struct lat_result {
    bool valid;
    uint64_t offered, accepted;
    int64_t start_p50, start_p99, done_p50, done_p99, call_p50, call_p99;
    double served_per_s; /* accepted jobs / (last done - first start) */
} lat_result;

typedef struct lat_case {
    const char *name;
    bool shed;
    lat_result *out;
} lat_case;

static int busy_job(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    lat_job *j = arg;
    int64_t t = bench_now_ns();
    j->start = t;
    while (bench_now_ns() - t < SERVICE_NS) {
    }
    j->done = bench_now_ns();
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, uint64_t n, double q) {
    if (n == 0) return 0;
    uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* The sorted spans to - from (field offsets in lat_job) of the accepted jobs
 * (those whose submit was called) into v; returns how many. */
static uint64_t spans(const lat_job *jobs, uint64_t n, size_t from, size_t to, int64_t *v) {
    uint64_t m = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (jobs[i].call == 0) continue;
        const char *j = (const char *)&jobs[i];
        int64_t a, b;
        memcpy(&a, j + from, sizeof a);
        memcpy(&b, j + to, sizeof b);
        v[m++] = b - a;
    }
    qsort(v, m, sizeof *v, cmp_i64);
    return m;
}

static void run_wp_overload(const void *self, uint64_t n) {
    const lat_case *c = self;
    lat_job *jobs = calloc(n, sizeof *jobs);
    int64_t *v = calloc(n, sizeof *v);
    if (jobs == NULL || v == NULL) bench_die("calloc", c->name, GOCC_ENOMEM);
    gocc_workpool_t *p = gocc_workpool_new(WORKERS, OVERLOAD_QUEUE, NULL);
    if (p == NULL) bench_die("gocc_workpool_new", c->name, -errno);

    int64_t t0 = bench_now_ns() + 100 * GOCC_MICROSECOND;
    for (uint64_t i = 0; i < n; i++) {
        lat_job *j = &jobs[i];
        j->arrive = t0 + (int64_t)i * INTERVAL_NS;
        while (bench_now_ns() < j->arrive) { /* open loop: keep the schedule */
        }
        j->call = bench_now_ns();
        int rc = c->shed ? gocc_workpool_try_submit(p, busy_job, j)
                         : gocc_workpool_submit(p, busy_job, j, NULL);
        if (rc == GOCC_EAGAIN && c->shed) {
            j->call = 0; /* shed */
        } else if (rc != 0) {
            bench_die("submit", c->name, rc);
        }
    }
    int rc = gocc_workpool_shutdown(p, NULL);
    if (rc != 0) bench_die("gocc_workpool_shutdown", c->name, rc);
    gocc_workpool_stats_t s;
    gocc_workpool_stats(p, &s);
    gocc_workpool_free(p);

    lat_result r = {.valid = true, .offered = n, .accepted = s.submitted};
    int64_t first = INT64_MAX, last = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (jobs[i].call == 0) continue;
        if (jobs[i].start < first) first = jobs[i].start;
        if (jobs[i].done > last) last = jobs[i].done;
    }
    if (last > first) r.served_per_s = (double)s.submitted * 1e9 / (double)(last - first);
    uint64_t m = spans(jobs, n, offsetof(lat_job, arrive), offsetof(lat_job, start), v);
    if (m != s.submitted) bench_die("accounting", c->name, GOCC_EINVAL);
    r.start_p50 = pct(v, m, 0.50);
    r.start_p99 = pct(v, m, 0.99);
    m = spans(jobs, n, offsetof(lat_job, arrive), offsetof(lat_job, done), v);
    r.done_p50 = pct(v, m, 0.50);
    r.done_p99 = pct(v, m, 0.99);
    m = spans(jobs, n, offsetof(lat_job, call), offsetof(lat_job, start), v);
    r.call_p50 = pct(v, m, 0.50);
    r.call_p99 = pct(v, m, 0.99);
    *c->out = r;
    free(jobs);
    free(v);
}

static void print_latency(const lat_case *c) {
    const lat_result *r = c->out;
    if (!r->valid) return;
    double shed = r->offered ? 100.0 * (double)(r->offered - r->accepted) / (double)r->offered : 0;
    fprintf(stderr,
            "# latency %s: offered %llu (one per %lld ns, service %lld ns x %d workers), "
            "accepted %llu, shed %.1f%%, served %.0f jobs/s (capacity %.0f); "
            "arrival->start p50 %.1f us p99 %.1f us; "
            "arrival->done p50 %.1f us p99 %.1f us; call->start p50 %.1f us p99 %.1f us\n",
            c->name, (unsigned long long)r->offered, (long long)INTERVAL_NS,
            (long long)SERVICE_NS, WORKERS, (unsigned long long)r->accepted, shed,
            r->served_per_s, 1e9 * WORKERS / (double)SERVICE_NS,
            (double)r->start_p50 / 1e3, (double)r->start_p99 / 1e3, (double)r->done_p50 / 1e3,
            (double)r->done_p99 / 1e3, (double)r->call_p50 / 1e3, (double)r->call_p99 / 1e3);
}

/* ---- object pool and the malloc baseline ---- */

static void *obj_new(void *ud) {
    (void)ud;
    return malloc(OBJ_SIZE);
}

static void obj_free(void *obj, void *ud) {
    (void)ud;
    free(obj);
}

static _Thread_local void *volatile sink; /* per thread: no shared line */

static void getput_loop(gocc_pool_t *p, uint64_t n, const char *name) {
    for (uint64_t i = 0; i < n; i++) {
        void *o = gocc_pool_get(p);
        if (o == NULL) bench_die("gocc_pool_get", name, GOCC_ENOMEM);
        sink = o;
        gocc_pool_put(p, o);
    }
}

static void malloc_loop(uint64_t n, const char *name) {
    for (uint64_t i = 0; i < n; i++) {
        void *o = malloc(OBJ_SIZE);
        if (o == NULL) bench_die("malloc", name, GOCC_ENOMEM);
        sink = o;
        free(o);
    }
}

typedef struct par_arg {
    gocc_pool_t *p; /* NULL: malloc/free */
    uint64_t n;
    const char *name;
} par_arg;

static void *par_worker(void *x) {
    par_arg *a = x;
    if (a->p != NULL) getput_loop(a->p, a->n, a->name);
    else malloc_loop(a->n, a->name);
    return NULL;
}

typedef struct mem_case {
    const char *name;
    bool use_pool;
    int threads;
} mem_case;

static void run_mem(const void *self, uint64_t n) {
    const mem_case *c = self;
    gocc_pool_t *p = NULL;
    if (c->use_pool && (p = gocc_pool_new(obj_new, obj_free, NULL)) == NULL)
        bench_die("gocc_pool_new", c->name, -errno);
    if (c->threads == 1) {
        par_arg a = {p, n, c->name};
        par_worker(&a);
    } else {
        pthread_t t[8];
        par_arg a[8];
        for (int i = 0; i < c->threads; i++) {
            a[i] = (par_arg){p, n / (uint64_t)c->threads + ((uint64_t)i < n % (uint64_t)c->threads),
                             c->name};
            if (pthread_create(&t[i], NULL, par_worker, &a[i]) != 0)
                bench_die("pthread_create", c->name, GOCC_EAGAIN);
        }
        for (int i = 0; i < c->threads; i++) pthread_join(t[i], NULL);
    }
    gocc_pool_free(p);
}

static lat_result shed_result, block_result;
static const lat_case shed_case = {"workpool/overload2x/2w/shed", true, &shed_result};
static const lat_case block_case = {"workpool/overload2x/2w/block", false, &block_result};
static const mem_case pool1 = {"pool/getput/1thread", true, 1};
static const mem_case pool2 = {"pool/getput/2threads", true, 2};
static const mem_case malloc1 = {"baseline/malloc-free/1thread", false, 1};
static const mem_case malloc2 = {"baseline/malloc-free/2threads", false, 2};

int main(int argc, char **argv) {
    const bench_desc_t descs[] = {
        {"workpool/throughput/4w/q1024", "ns/job", 4, 1024, run_wp_throughput,
         "workpool/throughput/4w/q1024"},
        {shed_case.name, "ns/offered-job", WORKERS, OVERLOAD_QUEUE, run_wp_overload, &shed_case},
        {block_case.name, "ns/offered-job", WORKERS, OVERLOAD_QUEUE, run_wp_overload, &block_case},
        {pool1.name, "ns/op", 1, 0, run_mem, &pool1},
        {pool2.name, "ns/op", 2, 0, run_mem, &pool2},
        {malloc1.name, "ns/op", 1, 0, run_mem, &malloc1},
        {malloc2.name, "ns/op", 2, 0, run_mem, &malloc2},
    };
    int rc = bench_main(argc, argv, "bench-pool", descs, (int)(sizeof descs / sizeof descs[0]));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if ((shed_result.valid || block_result.valid) && cpus < WORKERS + 1)
        fprintf(stderr, "# latency: only %ld CPUs online; the overload scenarios spin %d workers "
                        "and a producer, so the numbers below are not meaningful\n", cpus, WORKERS);
    print_latency(&shed_case);
    print_latency(&block_case);
    return rc;
}
