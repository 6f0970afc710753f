/*
 * probe.c - how this machine hands a wake-up from one thread to another,
 * measured in a fraction of a second, before and after a benchmark run
 * (bench/run writes the result into machine.txt).
 *
 * A 2-vCPU VM of the kind these numbers come from flips between host
 * scheduling regimes: when both vCPUs really run at once, a spinning
 * thread sees its partner's store within ~100 ns; when the host
 * time-slices them, the same handoff takes tens of microseconds, and every
 * channel number moves with it. Two round trips tell which regime a run
 * was in:
 *   spin_rt_ns     two threads bounce a flag through one atomic word,
 *                  spinning (the best case a spinning parker can reach)
 *   condvar_rt_ns  the same through a mutex and two condition variables
 *                  (the cost of a sleep and a wake, both ways)
 * Each is the median of 5 batches. No libgocc.
 *
 * Usage: probe [-d SECONDS] (per measurement, default 0.1)
 * Output: one line, "spin_rt_ns=<n> condvar_rt_ns=<n>".
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- spin ping-pong: turn is 0 (ping's) or 1 (pong's) ---- */

static _Atomic int turn;
static _Atomic int stop;

static void *spin_pong(void *arg) {
    (void)arg;
    for (;;) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 1)
            if (atomic_load_explicit(&stop, memory_order_relaxed)) return NULL;
        atomic_store_explicit(&turn, 0, memory_order_release);
    }
}

static double spin_batch(double seconds) {
    atomic_store(&turn, 0);
    atomic_store(&stop, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, spin_pong, NULL) != 0) return -1;
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    long trips = 0;
    int64_t t1;
    do {
        for (int i = 0; i < 64; i++) {
            atomic_store_explicit(&turn, 1, memory_order_release);
            while (atomic_load_explicit(&turn, memory_order_acquire) != 0) {
            }
        }
        trips += 64;
        t1 = now_ns();
    } while (t1 < end);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    return (double)(t1 - t0) / (double)trips;
}

/* ---- condvar ping-pong ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_pong = PTHREAD_COND_INITIALIZER, to_ping = PTHREAD_COND_INITIALIZER;
static int cv_turn, cv_stop; /* under mu */

static void *cv_pong(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (cv_turn != 1 && !cv_stop) pthread_cond_wait(&to_pong, &mu);
        if (cv_stop) break;
        cv_turn = 0;
        pthread_cond_signal(&to_ping);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static double cv_batch(double seconds) {
    cv_turn = 0;
    cv_stop = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, cv_pong, NULL) != 0) return -1;
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    long trips = 0;
    int64_t t1;
    do {
        pthread_mutex_lock(&mu);
        cv_turn = 1;
        pthread_cond_signal(&to_pong);
        while (cv_turn != 0) pthread_cond_wait(&to_ping, &mu);
        pthread_mutex_unlock(&mu);
        trips++;
        t1 = now_ns();
    } while (t1 < end);
    pthread_mutex_lock(&mu);
    cv_stop = 1;
    pthread_cond_signal(&to_pong);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    return (double)(t1 - t0) / (double)trips;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median5(double (*batch)(double), double seconds) {
    double v[5];
    for (int i = 0; i < 5; i++) v[i] = batch(seconds / 5);
    qsort(v, 5, sizeof v[0], cmp_double);
    return v[2];
}

int main(int argc, char **argv) {
    double seconds = 0.1;
    if (argc == 3 && strcmp(argv[1], "-d") == 0) {
        seconds = strtod(argv[2], NULL);
    } else if (argc != 1) {
        fprintf(stderr, "usage: probe [-d SECONDS]\n");
        return 2;
    }
    if (!(seconds > 0)) seconds = 0.1;
    double spin = median5(spin_batch, seconds);
    double cv = median5(cv_batch, seconds);
    if (spin < 0 || cv < 0) {
        fprintf(stderr, "probe: pthread_create failed\n");
        return 1;
    }
    printf("spin_rt_ns=%.0f condvar_rt_ns=%.0f\n", spin, cv);
    return 0;
}
