/*
 * a06_fan_in.c - port of A06 (seeds/001, "Fan-In Pattern").
 *
 * fanIn(cs...) merges several channels into one: one forwarding task per
 * input copies everything it receives to `out`; a WaitGroup counts them,
 * and one more task waits for the WaitGroup and closes `out`, so the
 * reader's range loop ends when every input is drained.
 *
 * Go to C: the Go fanIn is written for int. The C fan_in is written once
 * for any element type, the way C does it: it takes the element size and
 * moves elem_size bytes at a time (the forwarder's buffer is a flexible
 * array member), as a generic FanIn[T] would. This program uses it for
 * int. The forwarders and the closer hold their own channel references;
 * the WaitGroup lives in a small heap block that the closer frees once
 * wg.Wait() has returned (a WaitGroup may go away as soon as wait returns).
 *
 * Checks: three sources of ten values each (source k sends 100*k + i)
 * come out of the merged channel as 30 values, each exactly once, each
 * source's values in the order it sent them; the merged channel is closed
 * afterwards; every task has returned (gocc_tasks_live() == 0). Exit
 * status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define SOURCES 3
#define PER_SOURCE 10

#define check(ok, what) example_check("A06", ok, what)

/* ---- fan_in: any element size ------------------------------------------- */

typedef struct fan_in_wait {
    gocc_waitgroup_t wg;
    gocc_chan_t *out; /* the closer's reference */
} fan_in_wait_t;

typedef struct forward_arg {
    gocc_chan_t *in, *out; /* the task's own references */
    gocc_waitgroup_t *wg;
    unsigned char elem[]; /* one element: elem_size bytes */
} forward_arg_t;

/* go func(ch <-chan int) { defer wg.Done(); for n := range ch { out <- n } }(c) */
static int forward(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    forward_arg_t *a = arg;
    while (gocc_chan_recv(a->in, a->elem, NULL) == 0)
        if (gocc_chan_send(a->out, a->elem, NULL) != 0) break;
    gocc_waitgroup_t *wg = a->wg;
    gocc_chan_release(a->in);
    gocc_chan_release(a->out);
    free(a);
    gocc_waitgroup_done(wg);
    return 0;
}

/* go func() { wg.Wait(); close(out) }() */
static int close_when_done(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fan_in_wait_t *w = arg;
    gocc_waitgroup_wait(&w->wg, NULL);
    gocc_chan_close(w->out);
    gocc_chan_release(w->out);
    free(w);
    return 0;
}

/*
 * Merge n channels of elem_size-byte elements into a new unbuffered one.
 * The inputs stay the caller's (the forwarders retain them). Returns the
 * merged channel (caller's reference) or NULL if nothing could be started.
 * If only some forwarders start, the merged channel carries just their
 * inputs (and still closes).
 */
static gocc_chan_t *fan_in(size_t elem_size, gocc_chan_t *const *cs, size_t n) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    fan_in_wait_t *w = malloc(sizeof *w);
    if (!out || !w) {
        free(w);
        gocc_chan_release(out);
        return NULL;
    }
    *w = (fan_in_wait_t){GOCC_WAITGROUP_INIT, gocc_chan_retain(out)};

    /* The closer starts first; one count of our own keeps it from closing
     * out before every forwarder is counted in. (Go starts the closer after
     * the loop; starting it first means a failure to start it needs no
     * undoing of running forwarders.) */
    gocc_waitgroup_add(&w->wg, 1);
    if (gocc_go(close_when_done, NULL, w) != 0) {
        gocc_chan_release(w->out);
        free(w);
        gocc_chan_release(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        forward_arg_t *a = malloc(sizeof *a + elem_size);
        if (!a) break;
        a->in = gocc_chan_retain(cs[i]);
        a->out = gocc_chan_retain(out);
        a->wg = &w->wg;
        gocc_waitgroup_add(&w->wg, 1);
        if (gocc_go(forward, NULL, a) != 0) {
            gocc_waitgroup_done(&w->wg);
            gocc_chan_release(a->in);
            gocc_chan_release(a->out);
            free(a);
            break;
        }
    }
    gocc_waitgroup_done(&w->wg); /* our count; w is the closer's from here */
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

int main(void) {
    gocc_chan_t *cs[SOURCES];
    source_arg_t args[SOURCES];
    int started = 0;
    for (int k = 0; k < SOURCES; k++) {
        cs[k] = gocc_chan_new(sizeof(int), 0);
        if (!cs[k]) {
            check(false, "made the source channels");
            for (int j = 0; j < k; j++) gocc_chan_release(cs[j]);
            return 1;
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

    int next[SOURCES] = {0}, total = 0, v;
    bool in_order = true;
    int first[6], nfirst = 0;
    while (merged && gocc_chan_recv(merged, &v, NULL) == 0) { /* range */
        int k = v / 100 - 1, i = v % 100;
        if (k < 0 || k >= SOURCES || i != next[k])
            in_order = false;
        else
            next[k]++;
        if (nfirst < 6) first[nfirst++] = v;
        total++;
    }
    bool closed = merged && gocc_chan_try_recv(merged, NULL) == GOCC_ECLOSED;

    printf("A06 fan-in: %d channels x %d values -> %d values on one channel "
           "(%d, %d, %d per source; starts",
           SOURCES, PER_SOURCE, total, next[0], next[1], next[2]);
    for (int i = 0; i < nfirst; i++) printf(" %d", first[i]);
    printf(" ...)\n");

    check(total == SOURCES * PER_SOURCE, "30 values came out");
    check(in_order, "each value once, each source's values in order");
    for (int k = 0; k < SOURCES; k++)
        check(next[k] == PER_SOURCE, "every source's values all came through");
    check(closed, "the merged channel is closed once all inputs are");

    gocc_chan_release(merged);
    for (int k = 0; k < SOURCES; k++) gocc_chan_release(cs[k]);
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "every task returned (gocc_tasks_live() == 0)");

    if (example_failures) printf("A06 fan-in: FAILED\n");
    return example_failures ? 1 : 0;
}
