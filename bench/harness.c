/*
 * harness.c - calibration, trials, flags and CSV output shared by the
 * benchmark programs (see harness.h for the method).
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "bench";

void bench_die(const char *what, const char *scenario, int err) {
    fprintf(stderr, "%s: %s in %s (%s)\n", prog_name, what, scenario, gocc_strerror(err));
    exit(1);
}

int64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double time_run(const bench_desc_t *d, uint64_t n) {
    int64_t t0 = bench_now_ns();
    d->run(d->self, n);
    return (double)(bench_now_ns() - t0) / 1e9;
}

static void measure(const bench_desc_t *d, double duration, int trials) {
    /* Calibrate: grow n until one call takes at least the target. */
    double target = duration < 0.150 ? duration : 0.150;
    uint64_t n = 16;
    double t = time_run(d, n);
    while (t < target) {
        double want = t > 0 ? (double)n * target / t * 1.2 : (double)n * 100;
        uint64_t next = want > (double)n * 100 ? n * 100 : (uint64_t)want;
        if (next <= n) next = n + 1;
        n = next;
        t = time_run(d, n);
    }
    /* One trial lasts about `duration`. */
    double scaled = (double)n * duration / t;
    uint64_t tn = scaled < 1 ? 1 : (uint64_t)scaled;

    double best = 0, worst = 0;
    for (int i = 0; i < trials; i++) {
        double ns = time_run(d, tn) * 1e9 / (double)tn;
        if (i == 0 || ns < best) best = ns;
        if (i == 0 || ns > worst) worst = ns;
    }
    printf("%s,%s,%.1f,%.1f,%d,%zu\n", d->name, d->unit, best, worst, d->threads, d->capacity);
    fflush(stdout);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s [-d SECONDS] [-t TRIALS] [-f SUBSTRING] [-l]\n"
            "  -d SECONDS   duration of one trial (default 1.0)\n"
            "  -t TRIALS    trials per scenario; best and worst reported (default 3)\n"
            "  -f SUBSTRING run only scenarios whose name contains SUBSTRING\n"
            "  -l           list the scenario names and exit\n"
            "Output: CSV, name,unit,best_ns_op,worst_ns_op,threads,capacity\n",
            prog_name);
}

int bench_main(int argc, char **argv, const char *prog, const bench_desc_t *descs, int n) {
    prog_name = prog;
    double duration = 1.0;
    int trials = 3;
    const char *filter = NULL;
    bool list = false;
    int opt;
    while ((opt = getopt(argc, argv, "d:t:f:lh")) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'd':
            duration = strtod(optarg, &end);
            if (!end || *end || !(duration > 0)) {
                fprintf(stderr, "%s: -d wants a positive number of seconds\n", prog);
                return 2;
            }
            break;
        case 't':
            trials = (int)strtol(optarg, &end, 10);
            if (!end || *end || trials < 1) {
                fprintf(stderr, "%s: -t wants a positive count\n", prog);
                return 2;
            }
            break;
        case 'f': filter = optarg; break;
        case 'l': list = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    int matches = 0;
    for (int i = 0; i < n; i++)
        if (!filter || strstr(descs[i].name, filter)) matches++;
    if (matches == 0) {
        fprintf(stderr, "%s: no scenario matches \"%s\"\n", prog, filter ? filter : "");
        return 2;
    }
    if (!list) printf("name,unit,best_ns_op,worst_ns_op,threads,capacity\n");
    for (int i = 0; i < n; i++) {
        if (filter && !strstr(descs[i].name, filter)) continue;
        if (list)
            printf("%s\n", descs[i].name);
        else
            measure(&descs[i], duration, trials);
    }
    if (!list && gocc_tasks_live() != 0) {
        fprintf(stderr, "%s: %zu tasks still live\n", prog, gocc_tasks_live());
        return 1;
    }
    return 0;
}
