/*
 * a06_fan_in.c - port of A06 (patterns article, "Fan-In Pattern").
 *
 *   func fanIn(cs ...<-chan int) <-chan int {
 *       out := make(chan int); var wg sync.WaitGroup
 *       for _, c := range cs { wg.Add(1)
 *           go func(ch <-chan int) { defer wg.Done(); for n := range ch { out <- n } }(c) }
 *       go func() { wg.Wait(); close(out) }()
 *       return out }
 *
 * fanIn merges several channels into one: one forwarding task per input
 * copies everything it receives to `out`; a WaitGroup counts them, and one
 * more task waits for the WaitGroup and closes `out`, so the reader's range
 * loop ends when every input is drained.
 *
 * fan_in_by_hand builds exactly that, as the snippet teaches: the
 * forwarders, the WaitGroup and the closer task. In C the closures' shared
 * state (the WaitGroup, out) lives in one block that the closer frees once
 * the WaitGroup says every forwarder is gone; each forwarder holds its own
 * channel references and calls Done as its last touch of the block. A task
 * that cannot start (something Go's go statement never reports) makes
 * fan_in_by_hand close `out` so the forwarders already running stop, wait
 * for them, and return NULL.
 *
 * In practice: libgocc has the pattern built in. fan_in_merge hands the
 * inputs to gocc_chan_merge(cs, n, out, ctx), which starts one forwarding
 * task per input, and the last of them to finish closes `out` (the
 * WaitGroup and the closer become a count inside the merge; it is all or
 * nothing when a task cannot start).
 *
 * Both are element-size generic (the Go fanIn is written for int; `out`
 * is made with the inputs' element size and elem_size bytes move at a
 * time, as a generic FanIn[T] would), and both run the same test: three
 * sources of ten values each (source k sends 100*k + i).
 *
 * Checks, for each: 30 values come out of the merged channel, each exactly
 * once, each source's values in the order it sent them; the merged channel
 * is closed afterwards (the range ends, read with a 2 s limit so a channel
 * that is never closed fails instead of hanging); every task has returned
 * (gocc_tasks_live() == 0). Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define SOURCES 3
#define PER_SOURCE 10

#define check(ok, what) example_check("A06", ok, what)

/* ---- fanIn by hand: forwarders, a WaitGroup and a closer --------------- */

typedef struct forwarder {
    gocc_chan_t *in, *out; /* the task's own references */
    gocc_waitgroup_t *wg;  /* in the shared block */
    unsigned char *buf;    /* one element (NULL for elem_size 0) */
} forwarder_t;

/* What the snippet's closures share: freed by the closer. */
typedef struct fan_in_block {
    gocc_waitgroup_t wg;
    gocc_chan_t *out;  /* the closer's reference */
    forwarder_t fwd[]; /* one per input, then one element buffer each */
} fan_in_block_t;

/* go func(ch <-chan int) { defer wg.Done(); for n := range ch { out <- n } }(c) */
static int forward(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    forwarder_t *f = arg;
    while (gocc_chan_recv(f->in, f->buf, NULL) == 0)
        if (gocc_chan_send(f->out, f->buf, NULL) != 0) break; /* out closed: stop */
    gocc_chan_release(f->in);
    gocc_chan_release(f->out);
    gocc_waitgroup_done(f->wg); /* the last touch of the block */
    return 0;
}

/* go func() { wg.Wait(); close(out) }() */
static int closer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fan_in_block_t *b = arg;
    gocc_waitgroup_wait(&b->wg, NULL);
    gocc_chan_close(b->out);
    gocc_chan_release(b->out);
    free(b);
    return 0;
}

static gocc_chan_t *fan_in_by_hand(size_t elem_size, gocc_chan_t *const *cs, size_t n) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0); /* out := make(chan int) */
    fan_in_block_t *b = malloc(sizeof *b + n * sizeof(forwarder_t) + n * elem_size);
    if (!out || !b) {
        gocc_chan_release(out);
        free(b);
        return NULL;
    }
    b->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    b->out = gocc_chan_retain(out);
    unsigned char *bufs = (unsigned char *)&b->fwd[n];
    bool started = true;
    for (size_t i = 0; i < n && started; i++) {
        b->fwd[i] = (forwarder_t){gocc_chan_retain(cs[i]), gocc_chan_retain(out), &b->wg,
                                  elem_size ? bufs + i * elem_size : NULL};
        gocc_waitgroup_add(&b->wg, 1); /* wg.Add(1) before go */
        if (gocc_go(forward, NULL, &b->fwd[i]) != 0) {
            gocc_chan_release(b->fwd[i].in);
            gocc_chan_release(b->fwd[i].out);
            gocc_waitgroup_done(&b->wg);
            started = false;
        }
    }
    if (started && gocc_go(closer, NULL, b) == 0) return out;
    gocc_chan_close(out);              /* the forwarders running stop at their next send */
    gocc_waitgroup_wait(&b->wg, NULL); /* and are gone */
    gocc_chan_release(b->out);
    free(b);
    gocc_chan_release(out);
    return NULL;
}

/* ---- in practice: gocc_chan_merge ----------------------------------------- */

/* The same, with the forwarding and the close done by gocc_chan_merge. The
 * merge holds its own channel references until its tasks end. */
static gocc_chan_t *fan_in_merge(size_t elem_size, gocc_chan_t *const *cs, size_t n) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    if (!out) return NULL;
    if (gocc_chan_merge(cs, n, out, NULL) != 0) { /* none started: all or nothing */
        gocc_chan_release(out);
        return NULL;
    }
    return out;
}

/* ---- the sources -------------------------------------------------------- */

typedef struct source_arg {
    gocc_chan_t *out; /* the task's own reference */
    int base;
} source_arg_t;

static int source(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    source_arg_t *a = arg;
    for (int i = 0; i < PER_SOURCE; i++) {
        int v = a->base + i;
        if (gocc_chan_send(a->out, &v, NULL) != 0) break;
    }
    gocc_chan_close(a->out); /* the sender closes */
    gocc_chan_release(a->out);
    return 0;
}

/* Three sources through fan_in; the merged channel read to its close. */
static void run(const char *name, gocc_chan_t *(*fan_in)(size_t, gocc_chan_t *const *, size_t)) {
    gocc_chan_t *cs[SOURCES];
    source_arg_t args[SOURCES];
    int started = 0;
    for (int k = 0; k < SOURCES; k++) {
        cs[k] = gocc_chan_new(sizeof(int), 0);
        if (!cs[k]) {
            check(false, "made the source channels");
            for (int j = 0; j < k; j++) gocc_chan_release(cs[j]);
            return;
        }
    }
    for (int k = 0; k < SOURCES; k++) {
        args[k] = (source_arg_t){gocc_chan_retain(cs[k]), 100 * (k + 1)};
        if (gocc_go(source, NULL, &args[k]) == 0) {
            started++;
        } else {
            gocc_chan_close(cs[k]); /* an empty source */
            gocc_chan_release(cs[k]);
        }
    }
    check(started == SOURCES, "started the sources");

    gocc_chan_t *merged = fan_in(sizeof(int), cs, SOURCES);
    check(merged != NULL, "started fan_in");

    /* for v := range merged, bounded: a merged channel never closed fails */
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 2 * GOCC_SECOND);
    int next[SOURCES] = {0}, total = 0, v, rc = GOCC_ENOMEM;
    bool in_order = true;
    int first[6], nfirst = 0;
    while (merged && limit && (rc = gocc_chan_recv(merged, &v, limit)) == 0) {
        int k = v / 100 - 1, i = v % 100;
        if (k < 0 || k >= SOURCES || i != next[k])
            in_order = false;
        else
            next[k]++;
        if (nfirst < 6) first[nfirst++] = v;
        total++;
    }
    bool closed = rc == GOCC_ECLOSED;

    printf("A06 fan-in (%s): %d channels x %d values -> %d values on one channel "
           "(%d, %d, %d per source; starts",
           name, SOURCES, PER_SOURCE, total, next[0], next[1], next[2]);
    for (int i = 0; i < nfirst; i++) printf(" %d", first[i]);
    printf(" ...), then %s\n", closed ? "closed" : gocc_strerror(rc));

    check(total == SOURCES * PER_SOURCE, "30 values came out");
    check(in_order, "each value once, each source's values in order");
    for (int k = 0; k < SOURCES; k++)
        check(next[k] == PER_SOURCE, "every source's values all came through");
    check(closed, "the merged channel is closed once all inputs are");

    if (!closed && merged) gocc_chan_close(merged); /* a broken run: let its tasks go */
    gocc_ctx_release(limit);
    gocc_chan_release(merged);
    for (int k = 0; k < SOURCES; k++) gocc_chan_release(cs[k]);
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "every task returned (gocc_tasks_live() == 0)");
}

int main(void) {
    run("by hand: forwarders, WaitGroup, closer", fan_in_by_hand);
    run("in practice: gocc_chan_merge", fan_in_merge);
    if (example_failures) printf("A06 fan-in: FAILED\n");
    return example_failures ? 1 : 0;
}
