/*
 * harness.c - calibration, trials, metrics, flags and CSV output shared by
 * the benchmark programs (see harness.h for the method). bench/go/harness.go
 * mirrors it line for line in spirit: change one, change the other.
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
static double trial_duration = 1.0;

void bench_die(const char *what, const char *scenario, int err) {
    fprintf(stderr, "%s: %s in %s (%s)\n", prog_name, what, scenario, gocc_strerror(err));
    exit(1);
}

int64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_ns(int64_t ns) {
    if (ns <= 0) return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

bool bench_smoke(void) { return trial_duration < 0.05; }

/* ---- the task variants' helpers ---- */

typedef struct task_run {
    void (*body)(const void *self, uint64_t n);
    const void *self;
    uint64_t n;
    gocc_waitgroup_t wg;
} task_run;

static int task_run_body(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    task_run *r = arg;
    r->body(r->self, r->n);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

void bench_run_in_task(const char *name, void (*body)(const void *self, uint64_t n),
                       const void *self, uint64_t n) {
    task_run r = {body, self, n, GOCC_WAITGROUP_INIT};
    gocc_waitgroup_add(&r.wg, 1);
    int rc = gocc_go(task_run_body, NULL, &r);
    if (rc != 0) bench_die("gocc_go (driver task)", name, rc);
    gocc_waitgroup_wait(&r.wg, NULL);
}

void bench_nap_ns(int64_t ns) {
    if (ns > 0) gocc_sleep(ns, NULL);
}

void bench_settle_tasks(size_t keep) {
    while (gocc_tasks_live() > keep) bench_nap_ns(10000);
}

/* ---- the measured clock (only the thread running run() touches it) ---- */

static int64_t clock_started; /* when the clock last started */
static int64_t clock_total;   /* measured ns before that */
static bool clock_running;

void bench_timer_stop(void) {
    if (!clock_running) return;
    clock_total += bench_now_ns() - clock_started;
    clock_running = false;
}

void bench_timer_start(void) {
    if (clock_running) return;
    clock_started = bench_now_ns();
    clock_running = true;
}

/* ---- metrics of the scenario being measured ---- */

#define MAX_METRICS 16

typedef struct metric {
    const char *suffix, *unit;
    bool higher_better;
    double best, worst;
} metric_t;

static metric_t metrics[MAX_METRICS];
static int nmetrics;
static bool collecting; /* false during calibration */

void bench_metric(const char *suffix, const char *unit, double value, bench_better_t better) {
    if (!collecting) return;
    metric_t *m = NULL;
    for (int i = 0; i < nmetrics; i++)
        if (strcmp(metrics[i].suffix, suffix) == 0) m = &metrics[i];
    if (m == NULL) {
        if (nmetrics == MAX_METRICS) return;
        m = &metrics[nmetrics++];
        *m = (metric_t){suffix, unit, better == BENCH_HIGHER_IS_BETTER, value, value};
        return;
    }
    bool better_than_best = m->higher_better ? value > m->best : value < m->best;
    bool worse_than_worst = m->higher_better ? value < m->worst : value > m->worst;
    if (better_than_best) m->best = value;
    if (worse_than_worst) m->worst = value;
}

/* ---- percentiles and peak memory ---- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void bench_sort_i64(int64_t *v, size_t n) { qsort(v, n, sizeof *v, cmp_i64); }

int64_t bench_quantile(const int64_t *sorted, size_t n, double q) {
    if (n == 0) return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* "Field:   1234 kB" from /proc/self/status, or -1. */
static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    char line[256];
    long v = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            v = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

long bench_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL) return -1;
    int ok = fputs("5", f) >= 0;
    if (fclose(f) != 0 || !ok) return -1;
    return status_kib("VmRSS");
}

long bench_rss_peak(void) { return status_kib("VmHWM"); }

long bench_resident_pages(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return -1;
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident;
}

/* ---- the method ---- */

/* One call of run(n): returns its wall time in seconds, and the measured
 * time (wall time minus what the scenario left out) in *measured. */
static double time_run(const bench_desc_t *d, uint64_t n, double *measured) {
    clock_total = 0;
    int64_t t0 = bench_now_ns();
    clock_started = t0;
    clock_running = true;
    d->run(d->self, n);
    int64_t t1 = bench_now_ns();
    if (clock_running) clock_total += t1 - clock_started;
    clock_running = false;
    *measured = (double)clock_total / 1e9;
    return (double)(t1 - t0) / 1e9;
}

static void measure(const bench_desc_t *d, double duration, int trials) {
    /* Calibrate on wall time: grow n until one call takes the target. */
    double target = duration < 0.150 ? duration : 0.150;
    double measured;
    uint64_t n = 1;
    collecting = false;
    nmetrics = 0;
    double t = time_run(d, n, &measured);
    while (t < target) {
        double want = t > 0 ? (double)n * target / t * 1.2 : (double)n * 100;
        uint64_t next = want > (double)n * 100 ? n * 100 : (uint64_t)want;
        if (next <= n) next = n + 1;
        n = next;
        t = time_run(d, n, &measured);
    }
    /* One trial lasts about `duration` of wall time. */
    double scaled = (double)n * duration / t;
    uint64_t tn = scaled < 1 ? 1 : (uint64_t)scaled;

    double best = 0, worst = 0;
    collecting = true;
    for (int i = 0; i < trials; i++) {
        time_run(d, tn, &measured);
        double ns = measured * 1e9 / (double)tn;
        if (i == 0 || ns < best) best = ns;
        if (i == 0 || ns > worst) worst = ns;
    }
    collecting = false;
    if (d->unit != NULL)
        printf("%s,%s,%.1f,%.1f,%d,%zu\n", d->name, d->unit, best, worst, d->threads, d->capacity);
    for (int i = 0; i < nmetrics; i++)
        printf("%s/%s,%s,%.1f,%.1f,%d,%zu\n", d->name, metrics[i].suffix, metrics[i].unit,
               metrics[i].best, metrics[i].worst, d->threads, d->capacity);
    fflush(stdout);
}

/* -f: a substring of the name; a leading ^ anchors it at the start, a
 * trailing $ at the end ("^chan/spsc/cap1$" is one scenario exactly). */
static bool matches_filter(const char *name, const char *filter) {
    if (filter == NULL) return true;
    bool start = filter[0] == '^';
    if (start) filter++;
    size_t len = strlen(filter), nlen = strlen(name);
    bool end = len > 0 && filter[len - 1] == '$';
    if (end) len--;
    if (len > nlen) return false;
    if (start && end) return len == nlen && strncmp(name, filter, len) == 0;
    if (start) return strncmp(name, filter, len) == 0;
    if (end) return strncmp(name + nlen - len, filter, len) == 0;
    for (size_t i = 0; i + len <= nlen; i++)
        if (strncmp(name + i, filter, len) == 0) return true;
    return false;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s [-d SECONDS] [-t TRIALS] [-f SUBSTRING] [-l]\n"
            "  -d SECONDS   duration of one trial (default 1.0; below 0.05: smoke mode)\n"
            "  -t TRIALS    trials per scenario; best and worst reported (default 3)\n"
            "  -f SUBSTRING run only scenarios whose name contains SUBSTRING\n"
            "               (^ at its start / $ at its end anchor it)\n"
            "  -l           list the scenario names and exit\n"
            "Output: CSV, name,unit,best_ns_op,worst_ns_op,threads,capacity\n"
            "(rows name/metric carry best and worst in their own unit)\n",
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
    trial_duration = duration;
    int matches = 0;
    for (int i = 0; i < n; i++)
        if (matches_filter(descs[i].name, filter)) matches++;
    if (matches == 0) {
        fprintf(stderr, "%s: no scenario matches \"%s\"\n", prog, filter ? filter : "");
        return 2;
    }
    if (!list) printf("name,unit,best_ns_op,worst_ns_op,threads,capacity\n");
    for (int i = 0; i < n; i++) {
        if (!matches_filter(descs[i].name, filter)) continue;
        if (list)
            printf("%s\n", descs[i].name);
        else
            measure(&descs[i], duration, trials);
    }
    /* A task counts as live until its function has returned, which may be
     * a moment after it signalled its waiter: allow it 5 s to get there. */
    for (int i = 0; !list && gocc_tasks_live() != 0 && i < 5000; i++) bench_sleep_ns(1000000);
    if (!list && gocc_tasks_live() != 0) {
        fprintf(stderr, "%s: %zu tasks still live\n", prog, gocc_tasks_live());
        return 1;
    }
    return 0;
}
