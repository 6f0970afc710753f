/*
 * b08_errgroup_limit.c - B08 (chapter 9, "Error Group Pattern", "With
 * concurrency limit"): processWithLimit, an errgroup whose SetLimit(10)
 * keeps at most 10 tasks running; g.Go blocks while 10 are.
 *
 *   g, ctx := errgroup.WithContext(ctx)
 *   g.SetLimit(10)
 *   for _, item := range items { item := item
 *       g.Go(func() error { return process(ctx, item) }) }
 *   return g.Wait()
 *
 * b08_limit: 100 items. process() counts itself in an in-flight gauge and
 *   keeps its maximum. The first 10 items wait at a gate that the 10th to
 *   arrive opens, so the limit is provably REACHED (all ten were in flight
 *   at once) and then never exceeded; the rest take about a millisecond
 *   each.
 * b08_try_go: errgroup's TryGo at the limit: with 10 tasks parked on a
 *   gate, gocc_group_try_go refuses an 11th (GOCC_EAGAIN) instead of
 *   blocking, and accepts it once the gate opens and a slot frees.
 * b08_error: item 37 fails: Wait returns its error, the group context is
 *   cancelled, and the items started after it return ctx.Err() at once
 *   without doing their work (g.Go keeps admitting them, at most 10 at a
 *   time, as Go's errgroup does). An item takes 20 ms here, so that
 *   without the cancel the 63 items after 37 would all be processed.
 *
 * Go -> C: g.SetLimit(10) is gocc_group_set_limit(g, 10) before the first
 * go; g.Go is gocc_group_go; `item := item` is a pointer to the item's own
 * array element. process's error is an int (ERR_ITEM_BASE + item).
 *
 * Checks: never more than 10 in process() at once, exactly 10 at the peak
 * of b08_limit, all 100 processed and Wait nil; TryGo refused at the limit
 * and accepted after; in b08_error Wait returns item 37's error and every
 * item is accounted for (processed, failed, or stopped by the cancelled
 * context), and at most 2 * 10 of the 63 items after 37 were processed
 * (those already running or racing the cancel). gocc_tasks_live() == 0 at
 * the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B08", ok, what)

#define ITEMS 100
#define LIMIT 10
#define ERR_ITEM_BASE 1000 /* process(item) fails with 1000 + item */

typedef struct run {
    int bad_item;                   /* 0: nothing fails */
    int64_t work_ns;                /* what an item takes; 0: a millisecond */
    atomic_int processed_after_bad; /* items numbered above bad_item, processed */
    gocc_chan_t *gate;              /* the first LIMIT items wait here; NULL: no gate */
    gocc_ctx_t *give_up;            /* bounds the wait at the gate (5 s): a failure, not a hang */
    atomic_int arrived;             /* items that reached the gate */
    atomic_int in_flight, max_in_flight;
    atomic_int processed, failed, stopped;
} run_t;

typedef struct item {
    run_t *run;
    int id;
} item_t;

static void note_max(atomic_int *max, int now) {
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now)) {
    }
}

/* process(ctx, item) error */
static int process(gocc_ctx_t *ctx, void *arg) {
    item_t *it = arg;
    run_t *r = it->run;
    int err = gocc_ctx_err(ctx);
    if (err != 0) { /* a sibling failed: don't start */
        atomic_fetch_add(&r->stopped, 1);
        return err;
    }
    note_max(&r->max_in_flight, atomic_fetch_add(&r->in_flight, 1) + 1);
    if (r->gate) {
        if (atomic_fetch_add(&r->arrived, 1) + 1 == LIMIT) gocc_chan_close(r->gate);
        gocc_chan_recv(r->gate, NULL, r->give_up); /* until ten are in flight */
    }
    if (it->id == r->bad_item) {
        err = ERR_ITEM_BASE + it->id;
        atomic_fetch_add(&r->failed, 1);
    } else if ((err = gocc_sleep(r->work_ns ? r->work_ns : GOCC_MILLISECOND, ctx)) == 0) {
        atomic_fetch_add(&r->processed, 1);
        if (r->bad_item != 0 && it->id > r->bad_item) atomic_fetch_add(&r->processed_after_bad, 1);
    } else {
        atomic_fetch_add(&r->stopped, 1);
    }
    atomic_fetch_sub(&r->in_flight, 1);
    return err;
}

/* func processWithLimit(ctx, items) error */
static int process_with_limit(gocc_ctx_t *ctx, item_t *items, int n) {
    gocc_group_t *g = gocc_group_new(ctx); /* g, ctx := errgroup.WithContext(ctx) */
    if (!g) return GOCC_ENOMEM;
    gocc_group_set_limit(g, LIMIT); /* g.SetLimit(10) */
    int err = 0;
    for (int i = 0; i < n && err == 0; i++) err = gocc_group_go(g, process, &items[i]);
    int werr = gocc_group_wait(g);
    gocc_group_free(g);
    return werr != 0 ? werr : err;
}

static void fill(item_t *items, run_t *r) {
    for (int i = 0; i < ITEMS; i++) items[i] = (item_t){r, i + 1};
}

/* ---- b08_limit ------------------------------------------------------------ */

static void b08_limit(void) {
    static run_t r;
    static item_t items[ITEMS];
    r.gate = gocc_chan_new(0, 0);
    r.give_up = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    if (!r.gate || !r.give_up) {
        check(false, "made the gate");
        gocc_chan_release(r.gate);
        gocc_ctx_release(r.give_up);
        return;
    }
    fill(items, &r);
    int err = process_with_limit(NULL, items, ITEMS);
    int max = atomic_load(&r.max_in_flight);
    check(err == 0 && atomic_load(&r.processed) == ITEMS, "all 100 items processed, Wait nil");
    check(max == LIMIT, "the limit was reached and never exceeded: at most 10 at once");
    printf("B08 SetLimit(10): %d items processed, at most %d in flight at once, Wait() = %s\n",
           atomic_load(&r.processed), max, err ? gocc_strerror(err) : "nil");
    gocc_ctx_cancel(r.give_up);
    gocc_ctx_release(r.give_up);
    gocc_chan_release(r.gate);
}

/* ---- b08_try_go ----------------------------------------------------------- */

static int park(gocc_ctx_t *ctx, void *arg) {
    run_t *r = arg;
    atomic_fetch_add(&r->arrived, 1);
    int err = gocc_chan_recv(r->gate, NULL, ctx);
    return err == GOCC_ECLOSED ? 0 : err;
}

static int quick(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    atomic_fetch_add(&((run_t *)arg)->processed, 1);
    return 0;
}

static void b08_try_go(void) {
    static run_t r;
    r.gate = gocc_chan_new(0, 0);
    gocc_group_t *g = gocc_group_new(NULL);
    if (!r.gate || !g || gocc_group_set_limit(g, LIMIT) != 0) {
        check(false, "made the group and gate");
        gocc_group_free(g);
        gocc_chan_release(r.gate);
        return;
    }
    int started = 0;
    for (int i = 0; i < LIMIT; i++) started += gocc_group_go(g, park, &r) == 0;
    int refused = gocc_group_try_go(g, quick, &r); /* all 10 slots are taken */
    gocc_chan_close(r.gate);
    int accepted = GOCC_EAGAIN; /* a slot frees as soon as one parked task returns */
    int64_t give_up = gocc_now() + 5 * GOCC_SECOND;
    while ((accepted = gocc_group_try_go(g, quick, &r)) == GOCC_EAGAIN && gocc_now() < give_up)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    int err = gocc_group_wait(g);
    gocc_group_free(g);
    check(started == LIMIT && refused == GOCC_EAGAIN, "TryGo at the limit is refused");
    check(accepted == 0 && err == 0 && atomic_load(&r.processed) == 1,
          "TryGo succeeds once a slot frees");
    printf("B08 TryGo: 10 tasks parked at the limit, TryGo -> %s; gate opened, TryGo -> %s\n",
           refused == GOCC_EAGAIN ? "false (would block)" : "true?!",
           accepted == 0 ? "true" : "false");
    gocc_chan_release(r.gate);
}

/* ---- b08_error ------------------------------------------------------------ */

static void b08_error(void) {
    static run_t r = {.bad_item = 37, .work_ns = 20 * GOCC_MILLISECOND};
    static item_t items[ITEMS];
    fill(items, &r);
    int err = process_with_limit(NULL, items, ITEMS);
    int processed = atomic_load(&r.processed), failed = atomic_load(&r.failed),
        stopped = atomic_load(&r.stopped), max = atomic_load(&r.max_in_flight);
    check(err == ERR_ITEM_BASE + 37, "Wait returned item 37's error");
    check(failed == 1 && processed + failed + stopped == ITEMS, "every item accounted for");
    check(max <= LIMIT, "never more than 10 at once");
    int after = atomic_load(&r.processed_after_bad);
    check(after <= 2 * LIMIT, "the cancel stopped the items after 37: at most 20 of 63 processed");
    printf("B08 error: process(37) fails: Wait() = item %d's error; %d processed (%d of them "
           "after item 37), %d stopped by the cancelled context, at most %d at once\n",
           err - ERR_ITEM_BASE, processed, after, stopped, max);
}

int main(void) {
    b08_limit();
    b08_try_go();
    b08_error();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B08 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
