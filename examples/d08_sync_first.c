/*
 * d08_sync_first.c - D08 (cheat sheet): prefer synchronous
 * functions; let the caller add concurrency.
 *
 * d08_async_by_default (BAD): FetchData() <-chan Result starts a task that
 *   does the fetch (100 ms of local slow work instead of a network call) and
 *   sends the result on an unbuffered channel. A caller that gives up after
 *   10 ms walks away from the channel: the fetch cannot be cancelled, runs
 *   to the end, and its task then blocks on the send forever, a leak the
 *   program shows with gocc_tasks_live(). (Bounded: the demo keeps a
 *   reference to the channel and receives the orphaned result itself, so
 *   the task can end.)
 * d08_sync (GOOD): FetchData(ctx) (Result, error) returns the result; the
 *   caller's 10 ms deadline stops the fetch, and nothing is left running.
 * d08_caller_wraps: a caller that wants concurrency wraps the synchronous
 *   call itself: three fetches as tasks of an error group, each writing its
 *   own slot, about one fetch's time in all.
 *
 * Checks: the leak is there in the BAD version and gone in the GOOD one,
 * the errors, the three results, gocc_tasks_live() == 0. Exit 1 if wrong.
 *
 * Go -> C: (Result, error) is an int error return plus an out-parameter;
 * <-chan Result is a channel of sizeof(result_t) elements.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D08", ok, what)

#define FETCH_COST (100 * GOCC_MILLISECOND)

typedef struct result {
    int value;
    int err;
} result_t;

/* doFetch: the slow part, here a local sleep. */
static int do_fetch(gocc_ctx_t *ctx, int key, int *value) {
    int err = gocc_sleep(FETCH_COST, ctx);
    if (err == 0) *value = key * 10;
    return err;
}

/* ---- D08: BAD, async by default ----------------------------------------- */

typedef struct fetch_task {
    gocc_chan_t *ch; /* the task's own reference */
    int key;
} fetch_task_t;

static fetch_task_t the_task; /* one demo call at a time */

static int fetch_async_task(gocc_ctx_t *ctx, void *arg) {
    fetch_task_t *t = arg;
    result_t r = {0, 0};
    r.err = do_fetch(ctx, t->key, &r.value); /* ctx is background: not stoppable */
    gocc_chan_send(t->ch, &r, ctx);          /* ch <- doFetch(): blocks until read */
    gocc_chan_release(t->ch);
    return 0;
}

/* func FetchData() <-chan Result; returns a new reference to the channel. */
static gocc_chan_t *fetch_data_async(int key) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(result_t), 0);
    if (!ch) return NULL;
    the_task = (fetch_task_t){gocc_chan_retain(ch), key};
    if (gocc_go(fetch_async_task, NULL, &the_task) != 0) {
        gocc_chan_release(ch);
        gocc_chan_release(ch);
        return NULL;
    }
    return ch;
}

static void d08_async_by_default(void) {
    gocc_chan_t *ch = fetch_data_async(7);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_MILLISECOND);
    result_t r;
    int err = ch && ctx ? gocc_chan_recv(ch, &r, ctx) : GOCC_ENOMEM; /* the caller gives up */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(err == GOCC_EDEADLINE, "the caller gave up after 10 ms");

    gocc_sleep(FETCH_COST + 20 * GOCC_MILLISECOND, NULL); /* the fetch has long finished */
    size_t stuck = gocc_tasks_live();
    check(stuck == 1, "the abandoned task is still there, blocked on its send");
    printf("D08 async by default: the caller gave up (\"%s\"); 120 ms later the fetch task "
           "is still live (%zu), blocked sending a result nobody will read\n",
           gocc_strerror(err), stuck);

    /* Clean up by hand (only so the demo ends): take the orphaned result. */
    int got = ch ? gocc_chan_recv(ch, &r, NULL) : GOCC_EINVAL;
    check(got == 0 && r.err == 0 && r.value == 70 && example_tasks_exit_within(5 * GOCC_SECOND),
          "the orphaned result freed the task");
    gocc_chan_release(ch);
}

/* ---- D08: GOOD, synchronous ---------------------------------------------- */

/* func FetchData(ctx context.Context) (Result, error) */
static int fetch_data(gocc_ctx_t *ctx, int key, int *value) { return do_fetch(ctx, key, value); }

static void d08_sync(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_MILLISECOND);
    int value = 0;
    int64_t t0 = gocc_now();
    int err = ctx ? fetch_data(ctx, 7, &value) : GOCC_ENOMEM;
    double ms = (double)(gocc_now() - t0) / 1e6;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(err == GOCC_EDEADLINE && gocc_tasks_live() == 0,
          "the synchronous call stops at the deadline, nothing left running");
    printf("D08 synchronous: FetchData(ctx) returned \"%s\" after %.1f ms; %zu tasks live\n",
           gocc_strerror(err), ms, gocc_tasks_live());
}

/* ---- D08: the caller adds concurrency ------------------------------------ */

typedef struct slot {
    int key;
    int value; /* out */
} slot_t;

/* go func() { result, err := FetchData(ctx); ... }() */
static int fetch_into_slot(gocc_ctx_t *ctx, void *arg) {
    slot_t *s = arg;
    return fetch_data(ctx, s->key, &s->value);
}

static void d08_caller_wraps(void) {
    slot_t slots[3] = {{1, 0}, {2, 0}, {3, 0}};
    gocc_group_t *g = gocc_group_new(NULL);
    int err = g ? 0 : GOCC_ENOMEM;
    int64_t t0 = gocc_now();
    for (int i = 0; g && i < 3; i++)
        if (gocc_group_go(g, fetch_into_slot, &slots[i]) != 0) err = GOCC_EAGAIN;
    if (g) {
        int werr = gocc_group_wait(g);
        if (err == 0) err = werr;
        gocc_group_free(g);
    }
    double ms = (double)(gocc_now() - t0) / 1e6;
    check(err == 0 && slots[0].value == 10 && slots[1].value == 20 && slots[2].value == 30,
          "three wrapped fetches returned their results");
    printf("D08 caller wraps: 3 FetchData calls run as group tasks returned %d, %d, %d in "
           "%.0f ms (one fetch is %lld ms)\n",
           slots[0].value, slots[1].value, slots[2].value, ms,
           (long long)(FETCH_COST / GOCC_MILLISECOND));
}

int main(void) {
    d08_async_by_default();
    d08_sync();
    d08_caller_wraps();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D08 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
