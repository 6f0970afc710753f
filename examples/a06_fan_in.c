/*
 * a06_fan_in.c - port of A06 ("Fan-In Pattern").
 *
 * fanIn(cs...) merges several channels into one: one forwarding task per
 * input copies everything it receives to `out`; a WaitGroup counts them,
 * and one more task waits for the WaitGroup and closes `out`, so the
 * reader's range loop ends when every input is drained.
 *
 * Go to C: the library has this pattern built in: gocc_chan_merge(cs, n,
 * out, ctx) starts one forwarding task per input and the last of them to
 * finish closes `out` (the WaitGroup and the closer goroutine become an
 * atomic count inside the merge). The Go fanIn is written for int and
 * makes its own `out`; the C fan_in makes `out` with the inputs' element
 * size and hands it to gocc_chan_merge, which checks that every input has
 * that size and moves elem_size bytes at a time, as a generic FanIn[T]
 * would. This program uses it for int. The merge holds its own channel
 * references until its tasks end, so the caller may drop its own at once.
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

#include "example.h"

#define SOURCES 3
#define PER_SOURCE 10

#define check(ok, what) example_check("A06", ok, what)

/* ---- fan_in: any element size ------------------------------------------- */

/*
 * Merge n channels of elem_size-byte elements into a new unbuffered one
 * (gocc_chan_merge does the forwarding and the close). The inputs stay the
 * caller's. Returns the merged channel (caller's reference) or NULL if it
 * could not be made or the forwarders could not be started (then none was:
 * gocc_chan_merge is all or nothing).
 */
static gocc_chan_t *fan_in(size_t elem_size, gocc_chan_t *const *cs, size_t n) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    if (!out) return NULL;
    if (gocc_chan_merge(cs, n, out, NULL) != 0) {
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
