/*
 * d03_patterns.c - D03 (cheat sheet): the common patterns, in the sheet's
 * shapes.
 *
 * d03_semaphore: var sem = make(chan struct{}, MaxConcurrent); handle(r)
 *   does sem <- struct{}{} (acquire), defer <-sem (release), process(r).
 *   Twenty requests are handled by twenty tasks; at most 3 are inside.
 * d03_worker_pool: worker(id, jobs <-chan Job, results chan<- Result)
 *   ranges over jobs; main starts the workers, sends every job, closes jobs,
 *   then receives exactly len(allJobs) results. (As in the sheet, that
 *   order only works because all jobs fit in the 100-slot buffer.)
 * d03_fan_in: fanIn(channels...) starts one forwarding task per input, a
 *   WaitGroup, and a task that closes the merged channel when they are all
 *   done; the caller ranges over merged.
 *
 * Checks: the in-flight maximum never passed the limit, every job's result
 * arrived once, the fan-in delivered every value once, and
 * gocc_tasks_live() == 0. The results and the merged values are read under
 * a generous 5 s deadline, so a lost one fails the run instead of hanging
 * it. Exit 1 if wrong. Go -> C: chan struct{} is an
 * elem_size 0 channel; fanIn's variadic <-chan int is an array and a count.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D03", ok, what)

/* ---- D03: semaphore ------------------------------------------------------ */

#define MAX_CONCURRENT 3
#define REQUESTS 20

static gocc_chan_t *sem; /* var sem = make(chan struct{}, MaxConcurrent) */
static atomic_int inside, max_inside, handled;

typedef struct request {
    int id;
} request_t;

static void process(request_t *r) {
    (void)r;
    int now = atomic_fetch_add(&inside, 1) + 1;
    int seen = atomic_load(&max_inside);
    while (now > seen && !atomic_compare_exchange_weak(&max_inside, &seen, now)) {
    }
    gocc_sleep(GOCC_MILLISECOND, NULL);
    atomic_fetch_sub(&inside, 1);
    atomic_fetch_add(&handled, 1);
}

static int handle(gocc_ctx_t *ctx, void *arg) {
    gocc_chan_send(sem, NULL, ctx); /* acquire: sem <- struct{}{} (no bytes) */
    process(arg);
    gocc_chan_recv(sem, NULL, ctx); /* release (Go: deferred) */
    return 0;
}

static void d03_semaphore(void) {
    sem = gocc_chan_new(0, MAX_CONCURRENT);
    request_t reqs[REQUESTS];
    int started = 0;
    for (int i = 0; sem && i < REQUESTS; i++) {
        reqs[i].id = i;
        started += gocc_go(handle, NULL, &reqs[i]) == 0;
    }
    check(example_tasks_exit_within(5 * GOCC_SECOND), "every handler returned");
    check(started == REQUESTS && atomic_load(&handled) == REQUESTS, "every request handled");
    check(atomic_load(&max_inside) <= MAX_CONCURRENT, "never more than MaxConcurrent inside");
    printf("D03 semaphore: %d requests handled, at most %d at once (MaxConcurrent %d)\n",
           atomic_load(&handled), atomic_load(&max_inside), MAX_CONCURRENT);
    gocc_chan_release(sem);
    sem = NULL;
}

/* ---- D03: worker pool ---------------------------------------------------- */

#define NUM_WORKERS 4
#define NUM_JOBS 100

typedef struct job {
    int id;
} job_t;

typedef struct result {
    int id;
    int worker;
    long value;
} result_t;

typedef struct worker_arg {
    int id;
    gocc_chan_t *jobs;    /* <-chan Job */
    gocc_chan_t *results; /* chan<- Result */
} worker_arg_t;

static result_t process_job(job_t j, int worker) { return (result_t){j.id, worker, 2L * j.id}; }

/* func worker(id int, jobs <-chan Job, results chan<- Result) */
static int worker(gocc_ctx_t *ctx, void *arg) {
    worker_arg_t *w = arg;
    job_t job;
    while (gocc_chan_recv(w->jobs, &job, ctx) == 0) { /* for job := range jobs */
        result_t r = process_job(job, w->id);
        gocc_chan_send(w->results, &r, ctx);
    }
    return 0;
}

static void d03_worker_pool(void) {
    gocc_chan_t *jobs = gocc_chan_new(sizeof(job_t), 100);
    gocc_chan_t *results = gocc_chan_new(sizeof(result_t), 100);
    worker_arg_t args[NUM_WORKERS];
    int started = 0;
    for (int w = 0; jobs && results && w < NUM_WORKERS; w++) { /* start workers */
        args[w] = (worker_arg_t){w, jobs, results};
        started += gocc_go(worker, NULL, &args[w]) == 0;
    }
    check(started == NUM_WORKERS, "started the workers");
    for (int i = 0; started && i < NUM_JOBS; i++) /* send jobs */
        gocc_chan_send(jobs, &(job_t){i}, NULL);
    gocc_chan_close(jobs);

    bool seen[NUM_JOBS] = {false}, right = true;
    int per_worker[NUM_WORKERS] = {0};
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    for (int i = 0; started && i < NUM_JOBS; i++) { /* collect: for range allJobs */
        result_t r;
        if (gocc_chan_recv(results, &r, limit) != 0 || r.id < 0 || r.id >= NUM_JOBS || seen[r.id] ||
            r.value != 2L * r.id || r.worker < 0 || r.worker >= NUM_WORKERS) {
            right = false;
            continue;
        }
        seen[r.id] = true;
        per_worker[r.worker]++;
    }
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    check(started && right, "every job's result arrived once, right");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the workers returned after close(jobs)");
    printf("D03 worker pool: %d jobs, %d results (workers did %d/%d/%d/%d); the workers "
           "returned after close(jobs)\n",
           NUM_JOBS, right ? NUM_JOBS : -1, per_worker[0], per_worker[1], per_worker[2],
           per_worker[3]);
    gocc_chan_release(jobs);
    gocc_chan_release(results);
}

/* ---- D03: fan-in ---------------------------------------------------------- */

typedef struct fan_in {
    gocc_chan_t *merged;
    gocc_waitgroup_t wg;
    atomic_int refs; /* the caller and every task: last one frees */
} fan_in_t;

typedef struct forward_arg {
    fan_in_t *f;
    gocc_chan_t *c; /* the task's own reference */
} forward_arg_t;

static void fan_in_put(fan_in_t *f) {
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        gocc_chan_release(f->merged);
        free(f);
    }
}

static int forward(gocc_ctx_t *ctx, void *arg) {
    forward_arg_t *a = arg;
    int v;
    while (gocc_chan_recv(a->c, &v, ctx) == 0) gocc_chan_send(a->f->merged, &v, ctx);
    gocc_waitgroup_done(&a->f->wg);
    gocc_chan_release(a->c);
    fan_in_put(a->f);
    free(a);
    return 0;
}

static int close_when_done(gocc_ctx_t *ctx, void *arg) {
    fan_in_t *f = arg;
    gocc_waitgroup_wait(&f->wg, ctx);
    gocc_chan_close(f->merged);
    fan_in_put(f);
    return 0;
}

/* func fanIn(channels ...<-chan int) <-chan int: returns a new reference
 * to merged (the caller releases it). */
static gocc_chan_t *fan_in(gocc_chan_t **channels, int n) {
    fan_in_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->merged = gocc_chan_new(sizeof(int), 0);
    atomic_init(&f->refs, 1);
    if (!f->merged) {
        fan_in_put(f);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        forward_arg_t *a = malloc(sizeof *a);
        if (!a) continue;
        *a = (forward_arg_t){f, gocc_chan_retain(channels[i])};
        gocc_waitgroup_add(&f->wg, 1);
        atomic_fetch_add(&f->refs, 1);
        if (gocc_go(forward, NULL, a) != 0) {
            gocc_waitgroup_done(&f->wg);
            atomic_fetch_sub(&f->refs, 1);
            gocc_chan_release(a->c);
            free(a);
        }
    }
    gocc_chan_t *merged = gocc_chan_retain(f->merged);
    atomic_fetch_add(&f->refs, 1);
    if (gocc_go(close_when_done, NULL, f) != 0) { /* close it here instead */
        gocc_waitgroup_wait(&f->wg, NULL);
        gocc_chan_close(f->merged);
        atomic_fetch_sub(&f->refs, 1);
    }
    fan_in_put(f);
    return merged;
}

typedef struct gen_arg {
    gocc_chan_t *out;
    int base;
} gen_arg_t;

static int gen(gocc_ctx_t *ctx, void *arg) {
    gen_arg_t *g = arg;
    for (int i = 1; i <= 10; i++) {
        int v = g->base + i;
        gocc_chan_send(g->out, &v, ctx);
    }
    gocc_chan_close(g->out);
    return 0;
}

static void d03_fan_in(void) {
    enum { N = 3 };
    gocc_chan_t *ins[N];
    gen_arg_t gens[N];
    bool ok = true;
    for (int i = 0; i < N; i++) {
        ins[i] = gocc_chan_new(sizeof(int), 0);
        gens[i] = (gen_arg_t){ins[i], 100 * i};
        ok = ok && ins[i] && gocc_go(gen, NULL, &gens[i]) == 0;
    }
    gocc_chan_t *merged = ok ? fan_in(ins, N) : NULL;
    int count = 0, v, rc = GOCC_EINVAL;
    long sum = 0;
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    while (merged && (rc = gocc_chan_recv(merged, &v, limit)) == 0) { /* for v := range merged */
        count++;
        sum += v;
    }
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    if (rc != GOCC_ECLOSED && merged) gocc_chan_close(merged); /* a broken run: let its tasks go */
    long want = 0;
    for (int i = 0; i < N; i++) want += 10L * 100 * i + 55;
    check(merged && count == 10 * N && sum == want, "the fan-in delivered every value once");
    check(rc == GOCC_ECLOSED, "merged was closed after every input was");
    printf("D03 fan-in: %d channels merged into one: %d values, sum %ld (want %ld); merged "
           "closed after every input closed\n",
           N, count, sum, want);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the fan-in's tasks returned");
    gocc_chan_release(merged);
    for (int i = 0; i < N; i++) gocc_chan_release(ins[i]);
}

int main(void) {
    d03_semaphore();
    d03_worker_pool();
    d03_fan_in();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D03 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
