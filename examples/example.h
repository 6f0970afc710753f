/*
 * example.h - helpers every example shares: recording failures, waiting
 * for tasks to end, and waiting until tasks are blocked.
 *
 * Header-only (static inline), so each example program gets its own copy of
 * example_failures; a program's exit status is example_failures ? 1 : 0.
 */
#ifndef GOCC_EXAMPLE_H
#define GOCC_EXAMPLE_H

#include <gocc.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

/* How many checks failed in this program. */
#ifdef __GNUC__
static int example_failures __attribute__((unused));
#else
static int example_failures;
#endif

/* Record a failed check: "<id> FAILED: <what>" on `out`. */
static inline void example_check_to(FILE *out, const char *id, bool ok, const char *what) {
    if (!ok) {
        fprintf(out, "%s FAILED: %s\n", id, what);
        example_failures++;
    }
}

/* The same, reported on stderr. */
static inline void example_check(const char *id, bool ok, const char *what) {
    example_check_to(stderr, id, ok, what);
}

/* The same, reported on stdout (the d and l examples print there). */
static inline void example_check_stdout(const char *id, bool ok, const char *what) {
    example_check_to(stdout, id, ok, what);
}

/* Wait up to `timeout_ns` for every task to return, looking every `poll_ns`.
 * True when gocc_tasks_live() reached 0. */
static inline bool example_tasks_exit_poll(int64_t timeout_ns, int64_t poll_ns) {
    int64_t give_up = gocc_now() + timeout_ns;
    while (gocc_tasks_live() > 0 && gocc_now() < give_up) gocc_sleep(poll_ns, NULL);
    return gocc_tasks_live() == 0;
}

/* Wait up to `timeout_ns` for every task to return, looking every 1 ms. */
static inline bool example_tasks_exit_within(int64_t timeout_ns) {
    return example_tasks_exit_poll(timeout_ns, GOCC_MILLISECOND);
}

/* How many tasks and threads are blocked in libgocc calls now, as the
 * dump's first line says ("libgocc dump: T tasks live, B blocked"); -1 if
 * it could not be read. */
static inline long example_blocked_now(void) {
    FILE *f = tmpfile();
    if (f == NULL) return -1;
    long tasks = -1, blocked = -1;
    if (gocc_dump(fileno(f)) >= 0) {
        rewind(f);
        if (fscanf(f, "libgocc dump: %ld tasks live, %ld blocked", &tasks, &blocked) != 2)
            blocked = -1;
    }
    fclose(f);
    return blocked;
}

/* Wait up to `timeout_ns` until at least `n` tasks or threads are blocked
 * in libgocc calls (parked, not about to be), looking every 1 ms. An
 * example that wants to show a blocked task being woken (by a cancel, a
 * close) waits for this first, so what it shows is the wake and not a
 * check made before the block. */
static inline bool example_wait_blocked(long n, int64_t timeout_ns) {
    int64_t give_up = gocc_now() + timeout_ns;
    while (example_blocked_now() < n) {
        if (gocc_now() >= give_up) return false;
        gocc_sleep(GOCC_MILLISECOND, NULL);
    }
    return true;
}

#endif /* GOCC_EXAMPLE_H */
