/*
 * l10_when_not.c - L10 (Deep Dive, Lesson 10): when not to use concurrency.
 *
 * l10_small_cpu_bound: "CPU-bound and small: concurrency can slow you
 *   down." A CPU-bound reduction (an integer mix of each element, summed)
 *   over 1000 ints, serially vs split over 4 tasks (gocc_go + a WaitGroup),
 *   repeated; then the same over 1 Mi ints, where the split can pay (on
 *   this 2-core machine, about 2x at best).
 * l10_heavy_sync: "Heavy synchronization: serial may be faster and
 *   simpler." 40000 increments of one counter: a plain serial loop vs 4
 *   tasks that take a mutex for every increment.
 *
 * Timings are printed, not checked: this is a shared 2-core machine and the
 * sanitizer builds distort them. Checked: the serial and the parallel
 * results are equal, the counter is exact, gocc_tasks_live() == 0.
 * Exit 1 if wrong.
 *
 * Go -> C: the goroutines are gocc_go tasks counted by a gocc_waitgroup_t;
 * the slice parts are pointer + length; sync.Mutex is a pthread mutex.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L10", ok, what)

#define PARTS 4

/* ---- L10: small CPU-bound work ------------------------------------------ */

/* CPU-bound work on each element: a few rounds of an integer mix. */
static uint64_t mix(uint64_t x) {
    for (int r = 0; r < 8; r++) {
        x ^= x >> 31;
        x *= 0x9e3779b97f4a7c15u;
    }
    return x;
}

static uint64_t sum_mixed(const uint32_t *v, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += mix(v[i]);
    return s;
}

typedef struct part {
    const uint32_t *v;
    size_t n;
    uint64_t sum; /* out */
    gocc_waitgroup_t *wg;
} part_t;

static int sum_part(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    part_t *p = arg;
    p->sum = sum_mixed(p->v, p->n);
    gocc_waitgroup_done(p->wg);
    return 0;
}

static uint64_t sum_mixed_parallel(const uint32_t *v, size_t n) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    part_t parts[PARTS];
    uint64_t total = 0;
    for (int i = 0; i < PARTS; i++) {
        size_t lo = n * (size_t)i / PARTS, hi = n * (size_t)(i + 1) / PARTS;
        parts[i] = (part_t){v + lo, hi - lo, 0, &wg};
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(sum_part, NULL, &parts[i]) != 0) sum_part(NULL, &parts[i]); /* do it here */
    }
    gocc_waitgroup_wait(&wg, NULL);
    for (int i = 0; i < PARTS; i++) total += parts[i].sum;
    return total;
}

/* Time `runs` calls of each; print one line; check the results agree. */
static void compare(const char *what, const uint32_t *v, size_t n, int runs) {
    volatile uint64_t sink = 0;
    uint64_t s_serial = 0, s_parallel = 0;
    int64_t t0 = gocc_now();
    for (int r = 0; r < runs; r++) sink += s_serial = sum_mixed(v, n);
    double serial_us = (double)(gocc_now() - t0) / 1e3 / runs;
    t0 = gocc_now();
    for (int r = 0; r < runs; r++) sink += s_parallel = sum_mixed_parallel(v, n);
    double parallel_us = (double)(gocc_now() - t0) / 1e3 / runs;
    (void)sink;
    check(s_serial == s_parallel, "serial and parallel sums agree");
    bool serial_wins = serial_us <= parallel_us;
    printf("L10 %s: serial %.1f us, %d tasks %.1f us a run (%s %.1fx faster)%s\n", what, serial_us,
           PARTS, parallel_us, serial_wins ? "serial" : "parallel",
           serial_wins ? parallel_us / (serial_us > 0 ? serial_us : 1e-3)
                       : serial_us / (parallel_us > 0 ? parallel_us : 1e-3),
           s_serial == s_parallel ? "" : " SUMS DIFFER");
}

static void l10_small_cpu_bound(void) {
    size_t big = (size_t)1 << 20;
    uint32_t *v = malloc(big * sizeof *v);
    if (!v) {
        check(false, "allocated the data");
        return;
    }
    for (size_t i = 0; i < big; i++) v[i] = (uint32_t)(i * 2654435761u) >> 12;
    compare("small work (1000 elements)", v, 1000, 200);
    compare("large work (1 Mi elements)", v, big, 3);
    free(v);
}

/* ---- L10: heavy synchronisation ----------------------------------------- */

#define INCREMENTS 40000

typedef struct counter {
    pthread_mutex_t mu;
    long n; /* guarded by mu */
    gocc_waitgroup_t wg;
} counter_t;

static int add_locked(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    counter_t *c = arg;
    for (int i = 0; i < INCREMENTS / PARTS; i++) {
        pthread_mutex_lock(&c->mu);
        c->n++;
        pthread_mutex_unlock(&c->mu);
    }
    gocc_waitgroup_done(&c->wg);
    return 0;
}

static void l10_heavy_sync(void) {
    volatile long serial = 0; /* volatile: keep the loop a loop */
    int64_t t0 = gocc_now();
    for (int i = 0; i < INCREMENTS; i++) serial = serial + 1;
    double serial_us = (double)(gocc_now() - t0) / 1e3;

    counter_t c = {.mu = PTHREAD_MUTEX_INITIALIZER, .n = 0, .wg = GOCC_WAITGROUP_INIT};
    t0 = gocc_now();
    for (int i = 0; i < PARTS; i++) {
        gocc_waitgroup_add(&c.wg, 1);
        if (gocc_go(add_locked, NULL, &c) != 0) add_locked(NULL, &c);
    }
    gocc_waitgroup_wait(&c.wg, NULL);
    double parallel_us = (double)(gocc_now() - t0) / 1e3;
    pthread_mutex_lock(&c.mu);
    long n = c.n;
    pthread_mutex_unlock(&c.mu);
    pthread_mutex_destroy(&c.mu);
    check(serial == INCREMENTS && n == INCREMENTS, "both counts are exact");
    printf("L10 heavy sync (%d increments): serial %.0f us, %d tasks + a mutex %.0f us "
           "(counts %ld and %ld)\n",
           INCREMENTS, serial_us, PARTS, parallel_us, (long)serial, n);
}

int main(void) {
    l10_small_cpu_bound();
    l10_heavy_sync();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L10 %s: results equal, %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
