/*
 * harness.h - the one measuring method every libgocc benchmark program uses
 * (bench/go/harness.go is the same method in Go; bench/README.md explains it).
 *
 * A scenario is run(self, n): do n operations. bench_main calibrates n
 * (starting at 1) until one call takes >= min(150 ms, trial duration) of wall
 * time, scales n so that one call lasts about the trial duration, runs
 * TRIALS such calls and prints one CSV row per scenario:
 *   name,unit,best_ns_op,worst_ns_op,threads,capacity
 * best/worst are the fastest and slowest trial, in ns per operation (the
 * unit says what an operation is: "ns/op", "ns/roundtrip", "ns/job", ...).
 *
 * Two additions for scenarios that measure something else:
 *   - bench_timer_stop/start leave set-up out of the measured time (Go's
 *     b.StopTimer/b.StartTimer); calibration still uses wall time, so a
 *     trial lasts about the trial duration however much is set-up.
 *   - bench_metric(suffix, unit, value, better) records a value of this
 *     trial; each metric becomes one more row "name/suffix,unit,best,worst,
 *     threads,capacity" where best and worst are in that unit ("ns", "%",
 *     "jobs/s", "KiB", "items", "B/task") and best is the lowest value, or the highest
 *     for BENCH_HIGHER_IS_BETTER. A scenario whose unit is NULL prints only
 *     its metric rows.
 *
 * Flags: -d SECONDS (trial duration, default 1.0), -t TRIALS (default 3),
 * -f SUBSTRING (filter; ^ at its start and $ at its end anchor it, so
 * "^chan/spsc/cap1$" is one scenario), -l (list names). A duration below 0.05 s is the
 * smoke mode (meson test --suite bench runs -d 0.01 -t 1): scenarios that
 * would take seconds per operation (10,000 tasks, 100 ms of timers) scale
 * themselves down there (bench_smoke()); their numbers mean nothing then.
 */
#ifndef GOCC_BENCH_HARNESS_H
#define GOCC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_desc {
    const char *name;
    const char *unit; /* "ns/op", "ns/roundtrip", ...; NULL: metric rows only */
    int threads;      /* as reported */
    size_t capacity;  /* as reported (0 where it means nothing) */
    void (*run)(const void *self, uint64_t n);
    const void *self; /* the scenario's own description */
} bench_desc_t;

typedef enum bench_better {
    BENCH_LOWER_IS_BETTER = 0,
    BENCH_HIGHER_IS_BETTER = 1,
} bench_better_t;

/* Parse flags, run (or list) the scenarios; returns the exit status. Fails
 * when tasks are still live at the end (a benchmark that leaks is wrong). */
int bench_main(int argc, char **argv, const char *prog, const bench_desc_t *descs, int n);

/* Print "prog: what in scenario (error)" and exit 1. */
void bench_die(const char *what, const char *scenario, int err);

int64_t bench_now_ns(void);

/* Called from the thread running run() (or from the task that
 * bench_run_in_task runs it in): stop / restart the clock that measures
 * the operations (set-up between them is not counted). */
void bench_timer_stop(void);
void bench_timer_start(void);

/* Record @p value of metric @p suffix (a string literal or one that lives as
 * long as the program) for the trial being run. Calls made during
 * calibration are ignored. Call it from the thread running run(). */
void bench_metric(const char *suffix, const char *unit, double value, bench_better_t better);

/* True in smoke mode (trial duration below 0.05 s). */
bool bench_smoke(void);

/* Sleep for @p ns nanoseconds (nanosleep; no gocc runtime involved). */
void bench_sleep_ns(int64_t ns);

/* The task variants (scenarios named task/...): their producers, consumers,
 * workers and drivers are libgocc tasks (gocc_go), as Go's are goroutines,
 * so their numbers show the scheduler.
 *
 * bench_run_in_task runs body(self, n) as one task and waits for it from the
 * calling thread (a WaitGroup): the driver of a task variant, as the body of
 * a Go benchmark runs in a goroutine. @p name is for the error message if
 * the task cannot start (exit 1). body may call bench_timer_stop/start and
 * bench_metric; the wait orders them before the harness reads them. */
void bench_run_in_task(const char *name, void (*body)(const void *self, uint64_t n),
                       const void *self, uint64_t n);

/* Sleep for @p ns nanoseconds with gocc_sleep: from a task it parks the task,
 * not its worker thread (nanosleep there would hold a worker the other tasks
 * need); from a plain thread it sleeps as bench_sleep_ns does. */
void bench_nap_ns(int64_t ns);

/* Wait (napping) until at most @p keep tasks are live: 0 from a plain
 * thread, 1 from a driver task (itself). Set-up between rounds, so that the
 * next round starts with the previous one's tasks gone. */
void bench_settle_tasks(size_t keep);

/* Sort v[0..n) ascending. */
void bench_sort_i64(int64_t *v, size_t n);

/* The q-quantile (0 <= q <= 1, nearest rank) of sorted[0..n); 0 if n == 0. */
int64_t bench_quantile(const int64_t *sorted, size_t n, double q);

/* Peak memory of the process, Linux only: bench_rss_reset() resets the
 * high-water mark (writes 5 to /proc/self/clear_refs) and returns the
 * resident size in KiB now; bench_rss_peak() returns the high-water mark in
 * KiB since then. Both return -1 where this cannot be done. */
long bench_rss_reset(void);
long bench_rss_peak(void);

/* Resident pages now (the second field of /proc/self/statm), or -1. */
long bench_resident_pages(void);

#endif
