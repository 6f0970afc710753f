/*
 * quickstart.c - the README's example, as a program that checks itself.
 *
 * A few tasks feed one unbuffered channel; the consumer reads until a
 * context stops everybody: first a context with a timeout (the README's
 * ten lines), then one the consumer cancels itself after 1000 values.
 * The tasks see the same context, so their blocked sends return as soon as
 * it is done and they exit.
 *
 * Checks: values arrived, from every producer, in order per producer with
 * nothing lost or duplicated; the context reports why it stopped; and
 * gocc_tasks_live() is back to 0 at the end (no task leaked).
 * Exit status 0 when all of that holds, 1 otherwise.
 */
#include <gocc.h>

#include <stdio.h>

#define PRODUCERS 3

typedef struct item {
    int producer; /* who sent it */
    int seq;      /* that producer's count: 0, 1, 2, ... */
} item_t;

typedef struct producer_arg {
    gocc_chan_t *ch; /* the task's own reference */
    int id;
} producer_arg_t;

/* A task: context first, as Go's rule says. Sends until ctx is done. */
static int produce(gocc_ctx_t *ctx, void *arg) {
    producer_arg_t *a = arg;
    for (int seq = 0;; seq++) {
        item_t it = {a->id, seq};
        if (gocc_chan_send(a->ch, &it, ctx) != 0) break; /* ctx done */
    }
    gocc_chan_release(a->ch);
    return 0;
}

static int failures;

static void check(int ok, const char *what) {
    printf("  %-52s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) failures++;
}

/* Start the producers on ctx, receive until ctx is done or `stop_after`
 * values came (then cancel ctx ourselves), and check what arrived. */
static void run(const char *title, gocc_ctx_t *ctx, int stop_after, int want_err) {
    printf("%s\n", title);
    gocc_chan_t *ch = gocc_chan_new(sizeof(item_t), 0); /* unbuffered */
    producer_arg_t args[PRODUCERS];
    int started = 0;
    for (int p = 0; ch && p < PRODUCERS; p++) {
        args[p] = (producer_arg_t){gocc_chan_retain(ch), p};
        if (gocc_go(produce, ctx, &args[p]) == 0)
            started++;
        else
            gocc_chan_release(ch);
    }
    check(ch && started == PRODUCERS, "started the producers");

    int next[PRODUCERS] = {0}, n = 0, in_order = 1;
    item_t it;
    while (ch && gocc_chan_recv(ch, &it, ctx) == 0) {
        if (it.producer < 0 || it.producer >= PRODUCERS || it.seq != next[it.producer])
            in_order = 0;
        else
            next[it.producer]++;
        if (++n == stop_after) gocc_ctx_cancel(ctx); /* Go's cancel() */
    }
    int err = gocc_ctx_err(ctx);
    printf("  received %d values (%d, %d, %d per producer); stopped by: %s\n", n, next[0], next[1],
           next[2], gocc_strerror(err));

    check(n > 0, "received values");
    if (stop_after < 0) /* 200 ms is plenty for every task to get turns */
        check(next[0] > 0 && next[1] > 0 && next[2] > 0, "every producer got values through");
    check(in_order, "in order per producer, none lost or duplicated");
    check(err == want_err,
          want_err == GOCC_EDEADLINE ? "stopped by the deadline" : "stopped by cancel");
    if (stop_after > 0) check(n == stop_after, "no value after the cancel");

    /* The producers return once their blocked send sees the context. */
    int64_t give_up = gocc_now() + 5 * GOCC_SECOND;
    while (gocc_tasks_live() > 0 && gocc_now() < give_up) gocc_sleep(GOCC_MILLISECOND, NULL);
    check(gocc_tasks_live() == 0, "every task returned (gocc_tasks_live() == 0)");
    gocc_chan_release(ch);
}

int main(void) {
    printf("libgocc %s quickstart\n", gocc_version());

    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 200 * GOCC_MILLISECOND);
    check(ctx != NULL, "made a context with a 200 ms timeout");
    if (ctx) {
        run("1. three producers, one consumer, a 200 ms timeout:", ctx, -1, GOCC_EDEADLINE);
        gocc_ctx_cancel(ctx); /* the owner pattern: cancel, then release */
        gocc_ctx_release(ctx);
    }

    ctx = gocc_ctx_with_cancel(NULL);
    check(ctx != NULL, "made a cancellable context");
    if (ctx) {
        run("2. the same, the consumer cancels after 1000 values:", ctx, 1000, GOCC_ECANCELED);
        gocc_ctx_cancel(ctx);
        gocc_ctx_release(ctx);
    }

    printf("quickstart: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
