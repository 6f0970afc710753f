/*
 * bench-pool.c - the worker pool (throughput, and backpressure under offered
 * load), a pipeline with a slow stage, and the object pool beside malloc
 * and a hand-written pool (same method and CSV as the other programs; see
 * harness.h). bench/go/pool.go runs the same names in Go: a buffered-channel
 * worker pool (blocking send, select-default shedding, select on
 * ctx.Done() for the deadline), goroutine pipelines, sync.Pool.
 *
 *   workpool/throughput/4w/q1024     n trivial jobs through 4 workers and a
 *                                    queue of 1024 (blocking submit, then a
 *                                    graceful shutdown): ns/job. The
 *                                    submitter is the main thread
 *   task/workpool/throughput/4w/q1024  the same with the submitter a task
 *                                    (Go: the benchmark's goroutine)
 *
 *   workpool/loadL/MODE              offered load: 4 workers, queue 64, every
 *                                    job sleeps 1 ms (gocc_sleep). Capacity
 *                                    = 4 / the time such a sleep really
 *                                    takes here (measured once, median of
 *                                    15), a little under 4000 jobs/s. An
 *                                    open-loop producer offers jobs on a
 *                                    fixed schedule at L = 0.5x, 1x, 2x, 4x
 *                                    that capacity, and submits each with
 *                                    MODE = block (gocc_workpool_submit),
 *                                    shed (try_submit: refused when full) or
 *                                    deadline (submit with a context whose
 *                                    deadline is the job's scheduled arrival
 *                                    + 1 ms: refused when not accepted by
 *                                    then). The main row is wall time per
 *                                    OFFERED job (the schedule's interval
 *                                    while the producer keeps up; longer when
 *                                    backpressure slows it). Metric rows:
 *                                      /capacity  the capacity used, jobs/s
 *                                      /accepted  jobs accepted per second
 *                                      /shed      % of offered jobs refused
 *                                      /p50 /p99 /p99.9  latency of accepted
 *                                                 jobs, scheduled arrival ->
 *                                                 done, ns (includes the
 *                                                 time the producer was held
 *                                                 up: the user's view)
 *                                      /blocked   % of the run the producer
 *                                                 spent inside submit
 *                                      /peakmem   growth of the peak resident
 *                                                 size during the run, KiB
 *                                                 (Linux clear_refs/VmHWM)
 *
 *   pipeline/slow/bufB               source -> [B] -> pass -> [B] -> slow ->
 *                                    [B] -> sink, B = 1, 16, 1024; the slow
 *                                    stage spins 20 us per item, the others
 *                                    do nothing; the source sends as fast as
 *                                    the channels let it. Main row: ns/item.
 *                                    Metric rows /p50 /p99: latency source ->
 *                                    sink, ns; /occupancy: items waiting in
 *                                    the two channels in front of the slow
 *                                    stage (mean of what it sees before each
 *                                    receive). Bounded buffers bound latency:
 *                                    it grows with B, throughput does not.
 *
 *   pool/getput/t1                   gocc_pool_get + gocc_pool_put of a 64-byte
 *   pool/getput/t2                   object, 1 and 2 threads on one pool (ns
 *                                    per pair, wall time / pairs)
 *   baseline/pool/getput/t1, /t2     the same on the hand-written mutex +
 *                                    free-list pool (baseline/basepool.c)
 *   pool/malloc-free/t1, /t2         malloc(64) + free: what the pool must beat
 *
 * Worker pools and pipeline stages are libgocc tasks; the object-pool
 * threads are plain pthreads.
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baseline/basepool.h"
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

static void run_wp_throughput_task(const void *self, uint64_t n) {
    bench_run_in_task(self, run_wp_throughput, self, n);
}

/* ---- worker pool: offered load ---- */

enum { LOAD_WORKERS = 4, LOAD_QUEUE = 64 };
#define LOAD_SERVICE_NS GOCC_MILLISECOND
#define LOAD_DEADLINE_NS GOCC_MILLISECOND

typedef enum { MODE_BLOCK, MODE_SHED, MODE_DEADLINE } load_mode;

typedef struct load_case {
    const char *name;
    double load; /* offered / capacity */
    load_mode mode;
} load_case;

typedef struct load_job {
    int64_t arrive; /* scheduled arrival */
    int64_t done;   /* 0: not accepted */
    const char *name;
} load_job;

static int service_job(gocc_ctx_t *ctx, void *arg) {
    load_job *j = arg;
    int rc = gocc_sleep(LOAD_SERVICE_NS, ctx);
    if (rc != 0) bench_die("gocc_sleep", j->name, rc);
    j->done = gocc_now();
    return 0;
}

/* What a job really takes: a 1 ms sleep overshoots by the timer's
 * resolution. The median of 15 sleeps in a task, measured once; the
 * offered loads are multiples of the capacity this gives (workers /
 * service), so 1x is the pool's real capacity on this runtime. */
enum { SERVICE_SAMPLES = 15 };

static int measure_service(gocc_ctx_t *ctx, void *arg) {
    int64_t *v = arg;
    for (int i = 0; i < SERVICE_SAMPLES; i++) {
        int64_t t = gocc_now();
        gocc_sleep(LOAD_SERVICE_NS, ctx);
        v[i] = gocc_now() - t;
    }
    return 0;
}

static int64_t service_ns(void) {
    static int64_t measured;
    if (measured == 0) {
        int64_t v[SERVICE_SAMPLES];
        gocc_group_t *g = gocc_group_new(NULL);
        if (g == NULL || gocc_group_go(g, measure_service, v) != 0 || gocc_group_wait(g) != 0)
            bench_die("measuring the service time", "workpool/load", GOCC_ENOMEM);
        gocc_group_free(g);
        bench_sort_i64(v, SERVICE_SAMPLES);
        measured = v[SERVICE_SAMPLES / 2];
    }
    return measured;
}

/* Wait for the scheduled time: sleep while it is far, then yield. */
static void wait_until(int64_t t) {
    for (;;) {
        int64_t left = t - bench_now_ns();
        if (left <= 0) return;
        if (left > 200000)
            bench_sleep_ns(left - 150000);
        else
            sched_yield();
    }
}

static void run_load(const void *self, uint64_t n) {
    const load_case *c = self;
    double capacity = 1e9 * LOAD_WORKERS / (double)service_ns(); /* jobs/s */
    int64_t interval = (int64_t)(1e9 / capacity / c->load);
    load_job *jobs = calloc(n, sizeof *jobs);
    int64_t *lat = calloc(n, sizeof *lat);
    if (jobs == NULL || lat == NULL) bench_die("calloc", c->name, GOCC_ENOMEM);
    memset(jobs, 0, n * sizeof *jobs); /* touched now: not part of the peak */
    memset(lat, 0, n * sizeof *lat);
    long rss0 = bench_rss_reset();

    gocc_workpool_t *p = gocc_workpool_new(LOAD_WORKERS, LOAD_QUEUE, NULL);
    if (p == NULL) bench_die("gocc_workpool_new", c->name, -errno);
    int64_t blocked = 0;
    uint64_t accepted = 0;
    int64_t t0 = gocc_now() + 100 * GOCC_MICROSECOND; /* gocc_now: deadlines below */
    for (uint64_t i = 0; i < n; i++) {
        load_job *j = &jobs[i];
        j->arrive = t0 + (int64_t)i * interval;
        j->name = c->name;
        wait_until(j->arrive); /* open loop: keep the schedule */
        int64_t call = gocc_now();
        int rc;
        switch (c->mode) {
        case MODE_BLOCK: rc = gocc_workpool_submit(p, service_job, j, NULL); break;
        case MODE_SHED: rc = gocc_workpool_try_submit(p, service_job, j); break;
        default: {
            /* The request's own deadline: 1 ms after it arrived. A producer
             * that fell behind finds it passed and the submit refused. */
            gocc_ctx_t *ctx = gocc_ctx_with_deadline(NULL, j->arrive + LOAD_DEADLINE_NS);
            if (ctx == NULL) bench_die("gocc_ctx_with_deadline", c->name, GOCC_ENOMEM);
            rc = gocc_workpool_submit(p, service_job, j, ctx);
            gocc_ctx_cancel(ctx);
            gocc_ctx_release(ctx);
            if (rc == GOCC_EDEADLINE) rc = GOCC_EAGAIN;
        }
        }
        blocked += gocc_now() - call;
        if (rc == 0)
            accepted++;
        else if (rc != GOCC_EAGAIN || c->mode == MODE_BLOCK)
            bench_die("submit", c->name, rc);
    }
    int rc = gocc_workpool_shutdown(p, NULL);
    if (rc != 0) bench_die("gocc_workpool_shutdown", c->name, rc);
    int64_t wall = gocc_now() - t0;
    gocc_workpool_free(p);
    long peak = bench_rss_peak();

    uint64_t m = 0;
    for (uint64_t i = 0; i < n; i++)
        if (jobs[i].done != 0) lat[m++] = jobs[i].done - jobs[i].arrive;
    if (m != accepted) bench_die("accounting", c->name, GOCC_EINVAL);
    bench_sort_i64(lat, m);
    bench_metric("capacity", "jobs/s", capacity, BENCH_HIGHER_IS_BETTER);
    bench_metric("accepted", "jobs/s", (double)accepted * 1e9 / (double)wall,
                 BENCH_HIGHER_IS_BETTER);
    bench_metric("shed", "%", 100.0 * (double)(n - accepted) / (double)n, BENCH_LOWER_IS_BETTER);
    bench_metric("p50", "ns", (double)bench_quantile(lat, m, 0.50), BENCH_LOWER_IS_BETTER);
    bench_metric("p99", "ns", (double)bench_quantile(lat, m, 0.99), BENCH_LOWER_IS_BETTER);
    bench_metric("p99.9", "ns", (double)bench_quantile(lat, m, 0.999), BENCH_LOWER_IS_BETTER);
    bench_metric("blocked", "%", 100.0 * (double)blocked / (double)wall, BENCH_LOWER_IS_BETTER);
    if (rss0 >= 0 && peak >= 0)
        bench_metric("peakmem", "KiB", (double)(peak > rss0 ? peak - rss0 : 0),
                     BENCH_LOWER_IS_BETTER);
    free(jobs);
    free(lat);
}

/* ---- pipeline with a slow stage ---- */

#define SLOW_NS (20 * GOCC_MICROSECOND)

typedef struct item {
    int64_t born;
    uint64_t seq;
} item_t;

typedef struct pipe_run {
    const char *name;
    uint64_t n;
    gocc_chan_t *c1, *c2, *c3;
    gocc_waitgroup_t wg;
    uint64_t occupancy_sum; /* slow stage: len(c1) + len(c2) before each recv */
} pipe_run;

static int pipe_source(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_run *r = arg;
    for (uint64_t i = 0; i < r->n; i++) {
        item_t it = {bench_now_ns(), i};
        int rc = gocc_chan_send(r->c1, &it, NULL);
        if (rc != 0) bench_die("send", r->name, rc);
    }
    gocc_chan_close(r->c1);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int pipe_pass(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_run *r = arg;
    item_t it;
    while (gocc_chan_recv(r->c1, &it, NULL) == 0) {
        int rc = gocc_chan_send(r->c2, &it, NULL);
        if (rc != 0) bench_die("send", r->name, rc);
    }
    gocc_chan_close(r->c2);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int pipe_slow(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_run *r = arg;
    item_t it;
    uint64_t occ = 0;
    for (;;) {
        occ += gocc_chan_len(r->c1) + gocc_chan_len(r->c2);
        if (gocc_chan_recv(r->c2, &it, NULL) != 0) break;
        int64_t t = bench_now_ns();
        while (bench_now_ns() - t < SLOW_NS) {
        }
        int rc = gocc_chan_send(r->c3, &it, NULL);
        if (rc != 0) bench_die("send", r->name, rc);
    }
    r->occupancy_sum = occ;
    gocc_chan_close(r->c3);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void run_pipeline(const void *self, uint64_t n) {
    const bench_desc_t *d = self;
    size_t cap = d->capacity;
    int64_t *lat = calloc(n, sizeof *lat);
    if (lat == NULL) bench_die("calloc", d->name, GOCC_ENOMEM);
    pipe_run r = {.name = d->name, .n = n, .wg = GOCC_WAITGROUP_INIT};
    r.c1 = gocc_chan_new(sizeof(item_t), cap);
    r.c2 = gocc_chan_new(sizeof(item_t), cap);
    r.c3 = gocc_chan_new(sizeof(item_t), cap);
    if (!r.c1 || !r.c2 || !r.c3) bench_die("gocc_chan_new", d->name, GOCC_ENOMEM);
    gocc_waitgroup_add(&r.wg, 3);
    int (*stages[])(gocc_ctx_t *, void *) = {pipe_slow, pipe_pass, pipe_source};
    for (int i = 0; i < 3; i++) {
        int rc = gocc_go(stages[i], NULL, &r);
        if (rc != 0) bench_die("gocc_go", d->name, rc);
    }
    item_t it;
    uint64_t got = 0, seqsum = 0;
    while (gocc_chan_recv(r.c3, &it, NULL) == 0) { /* the sink */
        if (got < n) lat[got] = bench_now_ns() - it.born;
        got++;
        seqsum += it.seq;
    }
    gocc_waitgroup_wait(&r.wg, NULL);
    while (gocc_tasks_live() != 0) bench_sleep_ns(10000);
    if (got != n || seqsum != (n ? n * (n - 1) / 2 : 0))
        bench_die("items lost or duplicated", d->name, 0);
    bench_sort_i64(lat, n);
    bench_metric("p50", "ns", (double)bench_quantile(lat, n, 0.50), BENCH_LOWER_IS_BETTER);
    bench_metric("p99", "ns", (double)bench_quantile(lat, n, 0.99), BENCH_LOWER_IS_BETTER);
    bench_metric("occupancy", "items", n ? (double)r.occupancy_sum / (double)(n + 1) : 0,
                 BENCH_LOWER_IS_BETTER);
    gocc_chan_release(r.c1);
    gocc_chan_release(r.c2);
    gocc_chan_release(r.c3);
    free(lat);
}

/* ---- object pool, the hand-written pool, malloc ---- */

static void *obj_new(void *ud) {
    (void)ud;
    return malloc(OBJ_SIZE);
}

static void obj_free(void *obj, void *ud) {
    (void)ud;
    free(obj);
}

static _Thread_local void *volatile sink; /* per thread: no shared line */

typedef enum { MEM_POOL, MEM_BASEPOOL, MEM_MALLOC } mem_kind;

typedef struct mem_case {
    const char *name;
    mem_kind kind;
    int threads;
} mem_case;

typedef struct par_arg {
    const mem_case *c;
    gocc_pool_t *pool;
    basepool_t *base;
    uint64_t n;
} par_arg;

static void *par_worker(void *x) {
    par_arg *a = x;
    for (uint64_t i = 0; i < a->n; i++) {
        void *o;
        switch (a->c->kind) {
        case MEM_POOL:
            o = gocc_pool_get(a->pool);
            if (o == NULL) bench_die("gocc_pool_get", a->c->name, GOCC_ENOMEM);
            sink = o;
            gocc_pool_put(a->pool, o);
            break;
        case MEM_BASEPOOL:
            o = basepool_get(a->base);
            if (o == NULL) bench_die("basepool_get", a->c->name, GOCC_ENOMEM);
            sink = o;
            basepool_put(a->base, o);
            break;
        default:
            o = malloc(OBJ_SIZE);
            if (o == NULL) bench_die("malloc", a->c->name, GOCC_ENOMEM);
            sink = o;
            free(o);
        }
    }
    return NULL;
}

enum { MAX_MEM_THREADS = 8 };

static void run_mem(const void *self, uint64_t n) {
    const mem_case *c = self;
    gocc_pool_t *pool = NULL;
    basepool_t *base = NULL;
    if (c->kind == MEM_POOL && (pool = gocc_pool_new(obj_new, obj_free, NULL)) == NULL)
        bench_die("gocc_pool_new", c->name, -errno);
    if (c->kind == MEM_BASEPOOL && (base = basepool_new(OBJ_SIZE, 1024)) == NULL)
        bench_die("basepool_new", c->name, GOCC_ENOMEM);
    if (c->threads == 1) {
        par_arg a = {c, pool, base, n};
        par_worker(&a);
    } else {
        pthread_t t[MAX_MEM_THREADS];
        par_arg a[MAX_MEM_THREADS];
        uint64_t k = (uint64_t)c->threads;
        for (int i = 0; i < c->threads; i++) {
            a[i] = (par_arg){c, pool, base, n / k + ((uint64_t)i < n % k)};
            if (pthread_create(&t[i], NULL, par_worker, &a[i]) != 0)
                bench_die("pthread_create", c->name, GOCC_EAGAIN);
        }
        for (int i = 0; i < c->threads; i++) pthread_join(t[i], NULL);
    }
    gocc_pool_free(pool);
    basepool_free(base);
}

/* ---- the scenario list ---- */

#define LOAD_CASES(L, S)                                                                      \
    {"workpool/load" S "/block", L, MODE_BLOCK}, {"workpool/load" S "/shed", L, MODE_SHED}, { \
        "workpool/load" S "/deadline", L, MODE_DEADLINE                                       \
    }

static const load_case loads[] = {
    LOAD_CASES(0.5, "0.5x"),
    LOAD_CASES(1.0, "1x"),
    LOAD_CASES(2.0, "2x"),
    LOAD_CASES(4.0, "4x"),
};

static const mem_case mems[] = {
    {"pool/getput/t1", MEM_POOL, 1},
    {"pool/getput/t2", MEM_POOL, 2},
    {"baseline/pool/getput/t1", MEM_BASEPOOL, 1},
    {"baseline/pool/getput/t2", MEM_BASEPOOL, 2},
    {"pool/malloc-free/t1", MEM_MALLOC, 1},
    {"pool/malloc-free/t2", MEM_MALLOC, 2},
};

enum { N_LOADS = sizeof loads / sizeof loads[0], N_MEMS = sizeof mems / sizeof mems[0] };

/* The pipeline scenarios describe themselves: run_pipeline reads its name
 * and capacity from its own descriptor. */
static bench_desc_t pipes[] = {
    {"pipeline/slow/buf1", "ns/item", 4, 1, run_pipeline, NULL},
    {"pipeline/slow/buf16", "ns/item", 4, 16, run_pipeline, NULL},
    {"pipeline/slow/buf1024", "ns/item", 4, 1024, run_pipeline, NULL},
};

int main(int argc, char **argv) {
    bench_desc_t descs[2 + N_LOADS + 3 + N_MEMS];
    int n = 0;
    descs[n++] =
        (bench_desc_t){"workpool/throughput/4w/q1024", "ns/job", 4, 1024, run_wp_throughput,
                       "workpool/throughput/4w/q1024"};
    descs[n++] = (bench_desc_t){
        "task/workpool/throughput/4w/q1024", "ns/job", 4, 1024, run_wp_throughput_task,
        "task/workpool/throughput/4w/q1024"};
    for (int i = 0; i < N_LOADS; i++)
        descs[n++] = (bench_desc_t){loads[i].name, "ns/offered-job", LOAD_WORKERS,
                                    LOAD_QUEUE,    run_load,         &loads[i]};
    for (int i = 0; i < 3; i++) {
        pipes[i].self = &pipes[i];
        descs[n++] = pipes[i];
    }
    for (int i = 0; i < N_MEMS; i++)
        descs[n++] = (bench_desc_t){mems[i].name, "ns/op", mems[i].threads, 0, run_mem, &mems[i]};
    return bench_main(argc, argv, "bench-pool", descs, n);
}
