/*
 * l05_ordered_fanin.c - L05 (Deep Dive, Lesson 5): fan-out / fan-in with
 * ordering. "If you need ordering, encode it explicitly."
 *
 * l05_ordered_fanin: 100 inputs go out to 4 workers as item{idx, val}; the
 *   workers take different times, so results come back in another order;
 *   each result carries its idx, and a single aggregator task, the only
 *   writer of the output array, places it at out[idx]. main reads the array
 *   only after the aggregator has finished (gocc_waitgroup_wait), which is
 *   what makes the aggregator's writes visible to it.
 *
 * Checks: out[i] == f(in[i]) for every i, each idx placed exactly once,
 * gocc_tasks_live() == 0 at the end. It also counts how many results
 * arrived out of order (reported, not checked: it depends on timing).
 * Exit 1 if wrong.
 *
 * Go -> C: `type item struct { idx int; val int }` is item_t, and chan item
 * a channel of sizeof(item_t) elements; the output slice is an array only
 * the aggregator task writes.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L05", ok, what)

#define N 100
#define WORKERS 4

typedef struct item {
    int idx;
    int val;
} item_t;

static int f(int v) { return 3 * v + 1; }

typedef struct fan {
    gocc_chan_t *in, *results; /* chan item, owned by main */
    gocc_waitgroup_t workers;  /* closes results when zero */
    gocc_waitgroup_t aggregated;
    int out[N];       /* written by the aggregator only */
    int placed[N];    /* ditto: how many times each idx came */
    int out_of_order; /* ditto */
} fan_t;

/* Workers: item{idx, v} in, item{idx, f(v)} out, taking uneven time. */
static int worker(gocc_ctx_t *ctx, void *arg) {
    fan_t *fan = arg;
    item_t it;
    while (gocc_chan_recv(fan->in, &it, ctx) == 0) {
        gocc_sleep((int64_t)((it.idx * 7) % 5) * 100 * GOCC_MICROSECOND, ctx);
        it.val = f(it.val);
        gocc_chan_send(fan->results, &it, ctx);
    }
    gocc_waitgroup_done(&fan->workers);
    return 0;
}

static int close_results(gocc_ctx_t *ctx, void *arg) {
    fan_t *fan = arg;
    gocc_waitgroup_wait(&fan->workers, ctx);
    gocc_chan_close(fan->results);
    return 0;
}

/* The single aggregator: the only writer of out[]. */
static int aggregator(gocc_ctx_t *ctx, void *arg) {
    fan_t *fan = arg;
    item_t it;
    int next = 0; /* the index that would come next in input order */
    while (gocc_chan_recv(fan->results, &it, ctx) == 0) {
        if (it.idx < 0 || it.idx >= N) continue;
        if (it.idx != next) fan->out_of_order++;
        next = it.idx + 1;
        fan->out[it.idx] = it.val; /* place by idx */
        fan->placed[it.idx]++;
    }
    gocc_waitgroup_done(&fan->aggregated);
    return 0;
}

/* ---- L05: fan-out / fan-in with ordering --------------------------------- */

static void l05_ordered_fanin(void) {
    static fan_t fan; /* zeroed: waitgroups ready */
    int in[N];
    for (int i = 0; i < N; i++) in[i] = i * i % 97;

    fan.in = gocc_chan_new(sizeof(item_t), 0);
    fan.results = gocc_chan_new(sizeof(item_t), 0);
    bool ok = fan.in && fan.results;
    for (int w = 0; ok && w < WORKERS; w++) {
        gocc_waitgroup_add(&fan.workers, 1);
        if (gocc_go(worker, NULL, &fan) != 0) {
            gocc_waitgroup_done(&fan.workers);
            ok = false;
        }
    }
    if (ok) ok = gocc_go(close_results, NULL, &fan) == 0;
    gocc_waitgroup_add(&fan.aggregated, 1);
    if (ok) ok = gocc_go(aggregator, NULL, &fan) == 0;
    check(ok, "started workers, closer and aggregator");
    if (!ok) { /* let whatever started run out; main's leak check reports it */
        gocc_chan_close(fan.in);
        return;
    }

    for (int i = 0; i < N; i++) { /* fan out */
        item_t it = {i, in[i]};
        gocc_chan_send(fan.in, &it, NULL);
    }
    gocc_chan_close(fan.in);
    gocc_waitgroup_wait(&fan.aggregated, NULL); /* happens-before: out[] is visible */

    int wrong = 0;
    for (int i = 0; i < N; i++)
        if (fan.placed[i] != 1 || fan.out[i] != f(in[i])) wrong++;
    check(wrong == 0, "out[i] == f(in[i]) for every i, each placed once");
    printf("L05 ordered fan-in: %d items over %d workers, %d arrived out of order, "
           "all placed by idx: %d wrong\n",
           N, WORKERS, fan.out_of_order, wrong);

    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(exited, "every task returned");
    if (exited) {
        gocc_chan_release(fan.in);
        gocc_chan_release(fan.results);
    }
}

int main(void) {
    l05_ordered_fanin();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L05 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
