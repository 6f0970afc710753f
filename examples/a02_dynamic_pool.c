/*
 * a02_dynamic_pool.c - port of A02 (patterns article, "Example: Dynamic
 * Worker Pool").
 *
 * runtime.NumCPU() workers read Jobs from a buffered channel (capacity 100)
 * and write Results to another (capacity 100); a WaitGroup counts the
 * workers and a closer task closes results once they are all done, so the
 * collector's range loop ends by itself. 1000 jobs go through.
 *
 * One change from the Go text, and why: the snippet as printed submits all
 * 1000 jobs from main BEFORE it starts reading results. Nobody reads
 * results, so at most 100 (jobs buffer) + NumCPU (one job in each worker's
 * hand) + 100 (results buffer) jobs can ever be submitted, and then every
 * goroutine is blocked: Go stops it with "all goroutines are asleep -
 * deadlock!". This program shows that order first, safely: main submits
 * with a 100 ms context, sees the submission stall, then closes jobs and
 * drains results so everything ends. The working pool submits from a
 * producer task (which closes jobs when it is done: the sender closes)
 * while main collects results, so the two ends run at the same time.
 *
 * Go to C: Job and Result are plain structs copied through the channels by
 * value (elem_size = sizeof the struct); Payload/Output strings become
 * fixed char arrays. No generics in the Go. process() upper-cases the
 * payload ("data-7" -> "DATA-7") so every result can be checked.
 * runtime.NumCPU() is sysconf(_SC_NPROCESSORS_ONLN).
 *
 * Checks: each of the 1000 job IDs comes back exactly once with the right
 * output; the as-printed order never gets all 1000 jobs in (it cannot: the
 * buffers are full); every task has returned at the end
 * (gocc_tasks_live() == 0). Exit status 0 when all of that holds, else 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <gocc.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

#define NJOBS 1000
#define BUFFER 100
#define MAX_WORKERS 64

typedef struct job {
    int id;
    char payload[24];
} job_t;

typedef struct result {
    int job_id;
    char output[24];
} result_t;

#define check(ok, what) example_check("A02", ok, what)

/* "Assume this is CPU-bound": upper-case the payload. */
static void process(const char *payload, char *out, size_t out_size) {
    size_t i = 0;
    for (; payload[i] && i + 1 < out_size; i++) out[i] = (char)toupper((unsigned char)payload[i]);
    out[i] = '\0';
}

static job_t make_job(int id) {
    job_t j = {.id = id};
    snprintf(j.payload, sizeof j.payload, "data-%d", id);
    return j;
}

/* ---- the pool ----------------------------------------------------------- */

typedef struct worker_arg {
    int id;
    gocc_chan_t *jobs, *results; /* the task's own references */
    gocc_waitgroup_t *wg;
} worker_arg_t;

static int worker(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    worker_arg_t *a = arg;
    job_t job;
    while (gocc_chan_recv(a->jobs, &job, NULL) == 0) { /* for job := range jobs */
        result_t res = {.job_id = job.id};
        process(job.payload, res.output, sizeof res.output);
        if (gocc_chan_send(a->results, &res, NULL) != 0) break;
    }
    gocc_chan_release(a->jobs);
    gocc_chan_release(a->results);
    gocc_waitgroup_done(a->wg); /* defer wg.Done(): the last thing we touch */
    return 0;
}

typedef struct closer_arg {
    gocc_waitgroup_t *wg;
    gocc_chan_t *results; /* the task's own reference */
} closer_arg_t;

/* go func() { wg.Wait(); close(results) }() */
static int closer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    closer_arg_t *a = arg;
    gocc_waitgroup_wait(a->wg, NULL);
    gocc_chan_close(a->results);
    gocc_chan_release(a->results);
    return 0;
}

typedef struct producer_arg {
    gocc_chan_t *jobs; /* the task's own reference */
    int njobs;
} producer_arg_t;

/* The fix: submit from a task, then close jobs (the sender closes). */
static int producer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    producer_arg_t *a = arg;
    for (int i = 0; i < a->njobs; i++) {
        job_t j = make_job(i);
        if (gocc_chan_send(a->jobs, &j, NULL) != 0) break;
    }
    gocc_chan_close(a->jobs);
    gocc_chan_release(a->jobs);
    return 0;
}

/*
 * Run the pool over NJOBS jobs. as_printed: main submits everything before
 * reading (stalls; cut by a 100 ms context). Returns the number of results
 * collected; *submitted gets the number of jobs that went in, *all_ok
 * whether each came back once and right, sample the output of job 999.
 */
static int run_pool(int workers, bool as_printed, int *submitted, bool *all_ok, char sample[24]) {
    gocc_chan_t *jobs = gocc_chan_new(sizeof(job_t), BUFFER);
    gocc_chan_t *results = gocc_chan_new(sizeof(result_t), BUFFER);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    worker_arg_t wargs[MAX_WORKERS];
    closer_arg_t carg;
    producer_arg_t parg;
    static bool seen[NJOBS];
    memset(seen, 0, sizeof seen);
    *submitted = 0;
    *all_ok = false;
    strcpy(sample, "(none)");
    if (!jobs || !results) {
        check(false, "made the channels");
        gocc_chan_release(jobs);
        gocc_chan_release(results);
        return 0;
    }

    for (int w = 0; w < workers; w++) {
        wargs[w] = (worker_arg_t){w, gocc_chan_retain(jobs), gocc_chan_retain(results), &wg};
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(worker, NULL, &wargs[w]) != 0) {
            check(false, "started a worker");
            gocc_chan_release(jobs);
            gocc_chan_release(results);
            gocc_waitgroup_done(&wg);
        }
    }

    if (as_printed) {
        /* Submit jobs, as the snippet does, before anyone reads results. */
        gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 100 * GOCC_MILLISECOND);
        for (int i = 0; ctx && i < NJOBS; i++) {
            job_t j = make_job(i);
            if (gocc_chan_send(jobs, &j, ctx) != 0) break; /* stalled */
            (*submitted)++;
        }
        gocc_ctx_cancel(ctx);
        gocc_ctx_release(ctx);
        gocc_chan_close(jobs);
    } else {
        parg = (producer_arg_t){gocc_chan_retain(jobs), NJOBS};
        if (gocc_go(producer, NULL, &parg) == 0) {
            *submitted = NJOBS;
        } else {
            check(false, "started the producer");
            gocc_chan_close(jobs);
            gocc_chan_release(jobs); /* the reference meant for the task */
        }
    }

    carg = (closer_arg_t){&wg, gocc_chan_retain(results)};
    if (gocc_go(closer, NULL, &carg) != 0) {
        check(false, "started the closer");
        gocc_chan_close(results); /* so the collect loop below still ends */
        gocc_chan_release(results);
    }

    /* for res := range results */
    int collected = 0;
    bool ok = true;
    result_t res;
    while (gocc_chan_recv(results, &res, NULL) == 0) {
        char want[24];
        if (res.job_id < 0 || res.job_id >= NJOBS || seen[res.job_id]) {
            ok = false;
            continue;
        }
        seen[res.job_id] = true;
        process(make_job(res.job_id).payload, want, sizeof want);
        if (strcmp(res.output, want) != 0) ok = false;
        if (res.job_id == NJOBS - 1) memcpy(sample, res.output, sizeof res.output);
        collected++;
    }
    *all_ok = ok;
    gocc_chan_release(jobs);
    gocc_chan_release(results);
    /* Every task is done or about to return; wg must outlive them. */
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "every worker, the producer and the closer returned");
    return collected;
}

int main(void) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = ncpu < 1 ? 1 : ncpu > MAX_WORKERS ? MAX_WORKERS : (int)ncpu;
    int submitted;
    bool ok;
    char sample[24];

    /* The order as printed: submit everything first. */
    int got = run_pool(workers, true, &submitted, &ok, sample);
    printf("A02 as printed (submit all, then read): stalled after %d of %d jobs "
           "(buffers %d + %d, %d workers); the 100 ms context cut it\n",
           submitted, NJOBS, BUFFER, BUFFER, workers);
    check(submitted < NJOBS && submitted <= 2 * BUFFER + workers,
          "the as-printed order cannot submit all jobs before reading");
    check(got == submitted && ok, "the stalled run still returned each submitted job once");

    /* The pool: a producer task submits while main collects. */
    got = run_pool(workers, false, &submitted, &ok, sample);
    printf("A02 dynamic pool: %d workers (CPU count), %d jobs -> %d results, "
           "each job once (data-999 -> %s)\n",
           workers, NJOBS, got, sample);
    check(got == NJOBS, "1000 results collected");
    check(ok, "each job came back once with the right output");
    check(strcmp(sample, "DATA-999") == 0, "job 999's output is DATA-999");
    check(gocc_tasks_live() == 0, "no task leaked (gocc_tasks_live() == 0)");

    if (example_failures) printf("A02 dynamic pool: FAILED\n");
    return example_failures ? 1 : 0;
}
