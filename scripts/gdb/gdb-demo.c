/*
 * scripts/gdb/gdb-demo.c - a program for scripts/gdb/gocc.py to look at.
 *
 * It brings libgocc into a state with every kind of entry `gocc tasks`
 * shows, then calls gocc_gdb_demo_ready() (a breakpoint for gdb) and winds
 * everything down again, so that it also runs to a clean exit without a
 * debugger:
 *
 *   - coroutine tasks parked in a channel receive ("consumer-1".."-3", in
 *     consumer()), in a select ("selector", in selector()) and in a sleep
 *     ("napper", in napper(): a timed park);
 *   - a task on its own thread parked in a receive ("own-thread");
 *   - a plain pthread blocked in a receive ("blocked-thread");
 *   - with one worker (procs = 1) and no stuck-worker rescue: one task
 *     running ("spinner", in spinner(), which never returns to its
 *     scheduler until told to stop) and so one runnable task that no worker
 *     can take ("pending").
 *
 * scripts/gdb/check-gdb.sh runs it under gdb; docs/debugging.md shows a
 * session with it.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, nanosleep */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCONSUMERS 3
#define NBLOCKED (NCONSUMERS + 4) /* + selector, napper, own-thread, blocked-thread */

static gocc_chan_t *work, *quit;
static gocc_ctx_t *nap_ctx;
static gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
static _Atomic int stop, spinning;

/* gdb stops here: every entry of the list above is in place. */
__attribute__((noinline)) void gocc_gdb_demo_ready(void) { __asm__ __volatile__("" ::: "memory"); }

static void fail(const char *what, int rc) {
    fprintf(stderr, "gdb-demo: %s: %s\n", what, gocc_strerror(rc));
    exit(1);
}

__attribute__((noinline)) static int consumer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    int v;
    while (gocc_chan_recv(work, &v, NULL) == 0) {
    }
    gocc_waitgroup_done(&wg);
    return 0;
}

__attribute__((noinline)) static int selector(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    int v;
    gocc_case_t cases[2] = {{work, GOCC_RECV, &v, false}, {quit, GOCC_RECV, NULL, false}};
    (void)gocc_select(cases, 2, NULL);
    gocc_waitgroup_done(&wg);
    return 0;
}

__attribute__((noinline)) static int napper(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    (void)gocc_sleep(3600 * GOCC_SECOND, ctx); /* until nap_ctx is cancelled */
    gocc_waitgroup_done(&wg);
    return 0;
}

/* Never comes back to its scheduler until stop is set: its worker is busy. */
__attribute__((noinline)) static int spinner(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    atomic_store(&spinning, 1);
    while (!atomic_load_explicit(&stop, memory_order_acquire)) {
    }
    gocc_waitgroup_done(&wg);
    return 0;
}

__attribute__((noinline)) static int pending(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    gocc_waitgroup_done(&wg);
    return 0;
}

static void *blocked_thread(void *arg) {
    (void)arg;
    gocc_task_set_name("blocked-thread");
    int v;
    while (gocc_chan_recv(work, &v, NULL) == 0) {
    }
    return NULL;
}

static void go(gocc_fn fn, gocc_ctx_t *ctx, const char *name, bool own_thread) {
    gocc_task_opts_t opts = {.name = name, .own_thread = own_thread};
    gocc_waitgroup_add(&wg, 1);
    int rc = gocc_go_opts(fn, ctx, NULL, &opts);
    if (rc != 0) fail(name, rc);
}

/* The dump's first line: "libgocc dump: N tasks live, M blocked". */
static long blocked_now(void) {
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

static void nap_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void wait_for(const char *what, int (*done)(void)) {
    for (int i = 0; !done(); i++) {
        if (i == 10000) {
            fprintf(stderr, "gdb-demo: %s did not happen in 10 s\n", what);
            exit(1);
        }
        nap_us(1000);
    }
}

static int all_blocked(void) { return blocked_now() >= NBLOCKED; }
static int spinner_runs(void) { return atomic_load(&spinning); }

int main(int argc, char **argv) {
    bool crash = argc > 1 && strcmp(argv[1], "abort") == 0;
    /* One worker, never rescued: the spinner keeps it, "pending" waits. */
    gocc_runtime_config_t cfg = {.procs = 1, .block_threshold_ns = 3600 * GOCC_SECOND};
    int rc = gocc_runtime_configure(&cfg);
    if (rc != 0) fail("configure", rc);
    work = gocc_chan_new(sizeof(int), 0);
    quit = gocc_chan_new(0, 0);
    nap_ctx = gocc_ctx_with_cancel(NULL);
    if (work == NULL || quit == NULL || nap_ctx == NULL) fail("setup", GOCC_ENOMEM);

    char names[NCONSUMERS][16];
    for (int i = 0; i < NCONSUMERS; i++) {
        snprintf(names[i], sizeof names[i], "consumer-%d", i + 1);
        go(consumer, NULL, names[i], false);
    }
    go(selector, NULL, "selector", false);
    go(napper, nap_ctx, "napper", false);
    go(consumer, NULL, "own-thread", true);
    pthread_t th;
    if (pthread_create(&th, NULL, blocked_thread, NULL) != 0) fail("pthread_create", GOCC_EAGAIN);
    wait_for("every waiter blocking", all_blocked);
    /* The one worker runs the spinner only once it is done with every task
     * before it: all of those are off their stacks then, parked. */
    go(spinner, NULL, "spinner", false);
    wait_for("the spinner running", spinner_runs);
    go(pending, NULL, "pending", false);

    gocc_gdb_demo_ready();
    if (crash) abort(); /* a core file of this state (where the system writes one) */

    atomic_store_explicit(&stop, 1, memory_order_release);
    gocc_ctx_cancel(nap_ctx);
    gocc_chan_close(quit);
    gocc_chan_close(work);
    if ((rc = gocc_waitgroup_wait(&wg, NULL)) != 0) fail("wait", rc);
    pthread_join(th, NULL);
    gocc_ctx_release(nap_ctx);
    gocc_chan_release(work);
    gocc_chan_release(quit);
    puts("gdb-demo: done");
    return 0;
}
