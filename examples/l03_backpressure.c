/*
 * l03_backpressure.c - L03 (Deep Dive, Lesson 3): backpressure and load
 * shedding. "Backpressure is how you keep latency stable under load."
 *
 * l03_bounded_queue: a bounded queue, make(chan Job, 64), fed by a fast
 *   producer (1000 offers in bursts of 100, a millisecond apart) and
 *   drained by one slow worker (a millisecond a job): ten times more work
 *   is offered than the worker can do. Every offer is
 *   select { case jobs <- j: accepted; default: shed (count it) }, which is
 *   gocc_chan_try_send: GOCC_EAGAIN is the default branch. The producer
 *   never waits for the worker, the queue never holds more than 64 jobs, so
 *   the latency of an accepted job stays bounded; the overflow is dropped
 *   explicitly and counted.
 * l03_semaphore: a semaphore channel, make(chan struct{}, max) with
 *   acquire = send, release = receive, limiting in-flight work: 16 tasks
 *   start at once, at most 4 are ever inside the guarded section.
 *
 * Checks: under the overload load was shed (shed > 0, accepted < offered:
 * a try-send that waited for room instead would accept all 1000); the
 * worker processed exactly the accepted jobs (by count and by sum of ids);
 * the queue length never passed its capacity; the in-flight maximum never
 * passed the limit; gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 * (Shed > 0 has a wide margin: for the worker to keep up, the 1000 offers
 * would have to take over 900 ms instead of about 10.)
 * Go -> C: chan Job is a channel of sizeof(job_t); chan struct{} is a
 * channel with elem_size 0.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L03", ok, what)

/* ---- L03: bounded queue with drop ------------------------------------- */

#define OFFERED 1000
#define QUEUE_CAP 64

typedef struct job {
    int id;
} job_t;

typedef struct worker_arg {
    gocc_chan_t *jobs; /* the task's own reference */
    int processed;     /* out */
    long id_sum;       /* out */
} worker_arg_t;

/* A slow consumer: a millisecond a job. */
static int worker(gocc_ctx_t *ctx, void *arg) {
    worker_arg_t *w = arg;
    job_t j;
    while (gocc_chan_recv(w->jobs, &j, ctx) == 0) { /* for j := range jobs */
        gocc_sleep(GOCC_MILLISECOND, ctx);
        w->processed++;
        w->id_sum += j.id;
    }
    gocc_chan_release(w->jobs);
    return 0;
}

static void l03_bounded_queue(void) {
    gocc_chan_t *jobs = gocc_chan_new(sizeof(job_t), QUEUE_CAP);
    if (!jobs) {
        check(false, "made the queue");
        return;
    }
    worker_arg_t w = {.jobs = gocc_chan_retain(jobs)};
    if (gocc_go(worker, NULL, &w) != 0) {
        check(false, "started the worker");
        gocc_chan_release(w.jobs);
        gocc_chan_release(jobs);
        return;
    }

    int accepted = 0, shed = 0;
    long accepted_sum = 0;
    size_t max_len = 0;
    int64_t t0 = gocc_now();
    for (int id = 1; id <= OFFERED; id++) {
        job_t j = {id};
        if (gocc_chan_try_send(jobs, &j) == 0) { /* case jobs <- j: */
            accepted++;
            accepted_sum += id;
        } else { /* default: shed load (count it) */
            shed++;
        }
        size_t len = gocc_chan_len(jobs);
        if (len > max_len) max_len = len;
        if (id % 100 == 0) gocc_sleep(GOCC_MILLISECOND, NULL); /* bursts of 100 */
    }
    double offer_ms = (double)(gocc_now() - t0) / 1e6;
    gocc_chan_close(jobs); /* no more jobs: the worker drains and returns */
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the worker drains the queue and exits");
    check(shed > 0 && accepted < OFFERED, "under overload the queue shed load (shed > 0)");
    check(w.processed == accepted && w.id_sum == accepted_sum,
          "the worker processed exactly the accepted jobs");
    check(max_len <= QUEUE_CAP, "the queue never held more than its capacity");
    check(accepted >= QUEUE_CAP, "at least a queue's worth was accepted");
    printf("L03 bounded queue: %d offered in %.1f ms to a worker that takes 1 ms a job: "
           "accepted %d, shed %d (queue %d, at most %zu queued); the worker processed %d\n",
           OFFERED, offer_ms, accepted, shed, QUEUE_CAP, max_len, w.processed);
    gocc_chan_release(jobs);
}

/* ---- L03: semaphore channel limiting in-flight work ------------------- */

#define TASKS 16
#define MAX_IN_FLIGHT 4

typedef struct limited {
    gocc_chan_t *sem; /* make(chan struct{}, max) */
    atomic_int in_flight, max_seen, finished;
} limited_t;

/* sem <- struct{}{}: an elem_size 0 channel carries no bytes (elem NULL). */
static void acquire(limited_t *l) { gocc_chan_send(l->sem, NULL, NULL); }
static void release(limited_t *l) { gocc_chan_recv(l->sem, NULL, NULL); }

static int limited_task(gocc_ctx_t *ctx, void *arg) {
    limited_t *l = arg;
    acquire(l);
    int now = atomic_fetch_add(&l->in_flight, 1) + 1;
    int seen = atomic_load(&l->max_seen);
    while (now > seen && !atomic_compare_exchange_weak(&l->max_seen, &seen, now)) {
    }
    gocc_sleep(2 * GOCC_MILLISECOND, ctx); /* the guarded work */
    atomic_fetch_sub(&l->in_flight, 1);
    atomic_fetch_add(&l->finished, 1);
    release(l);
    return 0;
}

static void l03_semaphore(void) {
    limited_t l = {.sem = gocc_chan_new(0, MAX_IN_FLIGHT)};
    if (!l.sem) {
        check(false, "made the semaphore channel");
        return;
    }
    int started = 0;
    for (int i = 0; i < TASKS; i++) started += gocc_go(limited_task, NULL, &l) == 0;
    check(started == TASKS, "started the tasks");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "every task finished");
    int max_seen = atomic_load(&l.max_seen);
    check(atomic_load(&l.finished) == started, "every task ran its section");
    check(max_seen >= 1 && max_seen <= MAX_IN_FLIGHT, "never more than the limit in flight");
    check(gocc_chan_len(l.sem) == 0, "every acquire was released");
    printf("L03 semaphore: %d tasks, at most %d in flight at once (limit %d)\n", started, max_seen,
           MAX_IN_FLIGHT);
    gocc_chan_release(l.sem);
}

int main(void) {
    l03_bounded_queue();
    l03_semaphore();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L03 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
