/*
 * harness.h - the one measuring method every libgocc benchmark program uses.
 *
 * A scenario is run(self, n): do n operations. bench_main calibrates n until
 * one call takes >= min(150 ms, trial duration), then runs TRIALS trials of
 * about the trial duration each and prints one CSV row per scenario:
 *   name,unit,best_ns_op,worst_ns_op,threads,capacity
 * Flags: -d SECONDS (trial duration, default 1.0), -t TRIALS (default 3),
 * -f SUBSTRING (filter), -l (list names).
 */
#ifndef GOCC_BENCH_HARNESS_H
#define GOCC_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_desc {
    const char *name;
    const char *unit;     /* "ns/op", "ns/roundtrip", ... */
    int threads;          /* as reported */
    size_t capacity;      /* as reported (0 where it means nothing) */
    void (*run)(const void *self, uint64_t n);
    const void *self;     /* the scenario's own description */
} bench_desc_t;

/* Parse flags, run (or list) the scenarios; returns the exit status. Fails
 * when tasks are still live at the end (a benchmark that leaks is wrong). */
int bench_main(int argc, char **argv, const char *prog, const bench_desc_t *descs, int n);

/* Print "prog: what in scenario (error)" and exit 1. */
void bench_die(const char *what, const char *scenario, int err);

int64_t bench_now_ns(void);

#endif
