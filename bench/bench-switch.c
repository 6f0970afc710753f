/*
 * bench-switch.c - the price of a context switch between two tasks on one
 * worker (same method and CSV as the other programs; see harness.h).
 * bench/go/switch.go runs the same names in Go with GOMAXPROCS=1 for the
 * duration of each scenario.
 *
 * The runtime is configured with procs = 1 before its first use, so that
 * both tasks share the one worker thread: every switch is a switch from one
 * coroutine to the other through that worker's scheduler loop, never a
 * wake of another thread. (procs is fixed for the process at first use,
 * hence a program of its own.)
 *
 *   task/switch/yield       two tasks call gocc_yield back and forth; an
 *                           operation is one yield, which switches to the
 *                           other task (ns/switch)
 *   task/switch/pingpong    two tasks play ping-pong over two unbuffered
 *                           channels; each round trip is two switches (the
 *                           receiver parks, the partner it readied runs),
 *                           so ns/switch is half a round trip, channel work
 *                           included: an upper bound on the switch itself
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <stdint.h>
#include <stdio.h>

#include "harness.h"

/* ---- task/switch/yield ---- */

typedef struct yield_arg {
    uint64_t n;
    gocc_waitgroup_t *wg;
} yield_arg;

static int yielder(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    yield_arg *a = arg;
    for (uint64_t i = 0; i < a->n; i++) gocc_yield();
    gocc_waitgroup_done(a->wg);
    return 0;
}

/* n yields in all, half by each task: while both run, each yield hands the
 * worker to the other one. */
static void run_yield(const void *self, uint64_t n) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    yield_arg a[2] = {{n / 2, &wg}, {n - n / 2, &wg}};
    gocc_waitgroup_add(&wg, 2);
    for (int i = 0; i < 2; i++) {
        int rc = gocc_go(yielder, NULL, &a[i]);
        if (rc != 0) bench_die("gocc_go", self, rc);
    }
    gocc_waitgroup_wait(&wg, NULL);
}

/* ---- task/switch/pingpong ---- */

typedef struct pp_run {
    const char *name;
    gocc_chan_t *ping, *pong;
    uint64_t rounds;
    gocc_waitgroup_t wg;
} pp_run;

static int ponger(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pp_run *r = arg;
    for (uint64_t i = 0; i < r->rounds; i++) {
        uint64_t v;
        int rc = gocc_chan_recv(r->ping, &v, NULL);
        if (rc != 0) bench_die("recv", r->name, rc);
        v++;
        rc = gocc_chan_send(r->pong, &v, NULL);
        if (rc != 0) bench_die("send", r->name, rc);
    }
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int pinger(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pp_run *r = arg;
    for (uint64_t i = 0; i < r->rounds; i++) {
        uint64_t v = i;
        int rc = gocc_chan_send(r->ping, &v, NULL);
        if (rc != 0) bench_die("send", r->name, rc);
        rc = gocc_chan_recv(r->pong, &v, NULL);
        if (rc != 0) bench_die("recv", r->name, rc);
        if (v != i + 1) bench_die("wrong value received", r->name, 0);
    }
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* n switches: (n + 1) / 2 round trips. */
static void run_pingpong(const void *self, uint64_t n) {
    pp_run r = {.name = self, .rounds = (n + 1) / 2, .wg = GOCC_WAITGROUP_INIT};
    r.ping = gocc_chan_new(sizeof(uint64_t), 0);
    r.pong = gocc_chan_new(sizeof(uint64_t), 0);
    if (r.ping == NULL || r.pong == NULL) bench_die("gocc_chan_new", self, GOCC_ENOMEM);
    gocc_waitgroup_add(&r.wg, 2);
    int rc = gocc_go(ponger, NULL, &r);
    if (rc == 0) rc = gocc_go(pinger, NULL, &r);
    if (rc != 0) bench_die("gocc_go", self, rc);
    gocc_waitgroup_wait(&r.wg, NULL);
    gocc_chan_release(r.ping);
    gocc_chan_release(r.pong);
}

int main(int argc, char **argv) {
    /* One worker: before anything else touches the runtime. */
    gocc_runtime_config_t cfg = {.procs = 1};
    int rc = gocc_runtime_configure(&cfg);
    if (rc != 0) {
        fprintf(stderr, "bench-switch: cannot set procs = 1 (%s)\n", gocc_strerror(rc));
        return 1;
    }
    const bench_desc_t descs[] = {
        {"task/switch/yield", "ns/switch", 2, 0, run_yield, "task/switch/yield"},
        {"task/switch/pingpong", "ns/switch", 2, 0, run_pingpong, "task/switch/pingpong"},
    };
    rc = bench_main(argc, argv, "bench-switch", descs, (int)(sizeof descs / sizeof descs[0]));
    /* A worker held past block_threshold gets help from a second thread;
     * then some switches were wakes of another thread. Say so. */
    size_t threads = gocc_runtime_threads();
    if (threads > 1)
        fprintf(stderr, "bench-switch: the tasks ran on %zu worker threads, not 1\n", threads);
    return rc;
}
