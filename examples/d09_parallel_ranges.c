/*
 * d09_parallel_ranges.c - D09 (cheat sheet): parallelising over
 * CPU-count ranges.
 *
 *     numCPU := runtime.NumCPU(); c := make(chan bool, numCPU)
 *     for i := 0; i < numCPU; i++ {
 *         go func(start, end int) { processRange(data[start:end]); c <- true }
 *             (i*len(data)/numCPU, (i+1)*len(data)/numCPU)
 *     }
 *     for i := 0; i < numCPU; i++ { <-c }
 *
 * d09_parallel_ranges: runtime.NumCPU() is sysconf(_SC_NPROCESSORS_ONLN);
 *   the closure's (start, end) arguments become one range_t per task, its
 *   own, which no other task touches; data[start:end] is a pointer and a
 *   length (the ranges are disjoint); c is a channel of bool with
 *   numCPU slots, so no task waits to signal. The length, 1000003, is a
 *   prime, so the ranges cannot all be equal (with more than one CPU): the
 *   integer split still covers every index exactly once, no gap, no overlap.
 *
 * Checks: every element was processed exactly once (data[i] == i*i, where a
 * second pass would give i^4), all numCPU signals arrived, and
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 *
 * Go -> C: chan bool is a channel of sizeof(bool) elements; the goroutine
 * closure is a task function over its range_t.
 */
#define _POSIX_C_SOURCE 200809L
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D09", ok, what)

#define LEN 1000003

typedef struct range {
    long long *data; /* data[start:end] */
    size_t n;
    gocc_chan_t *c; /* chan bool */
} range_t;

static void process_range(long long *data, size_t n) {
    for (size_t i = 0; i < n; i++) data[i] *= data[i];
}

static int range_task(gocc_ctx_t *ctx, void *arg) {
    range_t *r = arg;
    process_range(r->data, r->n);
    bool done = true;
    gocc_chan_send(r->c, &done, ctx); /* c <- true */
    return 0;
}

/* ---- D09: parallelisation over CPU-count ranges ------------------------ */

static void d09_parallel_ranges(void) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN); /* runtime.NumCPU() */
    int num_cpu = ncpu > 0 && ncpu < 64 ? (int)ncpu : (ncpu >= 64 ? 64 : 1);
    long long *data = malloc(LEN * sizeof *data);
    range_t *ranges = malloc((size_t)num_cpu * sizeof *ranges);
    gocc_chan_t *c = gocc_chan_new(sizeof(bool), (size_t)num_cpu);
    if (!data || !ranges || !c) {
        check(false, "allocated the data");
        free(data);
        free(ranges);
        gocc_chan_release(c);
        return;
    }
    for (size_t i = 0; i < LEN; i++) data[i] = (long long)i;

    int64_t t0 = gocc_now();
    for (int i = 0; i < num_cpu; i++) {
        size_t start = (size_t)i * LEN / (size_t)num_cpu;
        size_t end = (size_t)(i + 1) * LEN / (size_t)num_cpu;
        ranges[i] = (range_t){data + start, end - start, c};
        if (gocc_go(range_task, NULL, &ranges[i]) != 0) range_task(NULL, &ranges[i]);
    }
    int signals = 0;
    for (int i = 0; i < num_cpu; i++) { /* wait for all */
        bool done = false;
        if (gocc_chan_recv(c, &done, NULL) == 0 && done) signals++;
    }
    double ms = (double)(gocc_now() - t0) / 1e6;

    size_t wrong = 0;
    for (size_t i = 0; i < LEN; i++)
        if (data[i] != (long long)i * (long long)i) wrong++;
    check(signals == num_cpu && wrong == 0, "every element processed exactly once");
    printf("D09 parallel ranges: %d elements split into %d ranges (NumCPU %ld), %d signals "
           "on c, %zu elements wrong, %.1f ms\n",
           LEN, num_cpu, ncpu, signals, wrong, ms);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the range tasks returned");
    gocc_chan_release(c);
    free(ranges);
    free(data);
}

int main(void) {
    d09_parallel_ranges();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D09 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
