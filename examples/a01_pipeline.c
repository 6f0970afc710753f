/*
 * a01_pipeline.c - port of A01 (patterns article, "Example: Pipeline Pattern").
 *
 * The Go pipeline gen(2, 3, 4) -> sq -> print: each stage is a task that
 * reads from the channel before it, writes to an unbuffered channel of its
 * own, and closes that channel when its input runs out, so the consumer's
 * "for n := range ch" ends by itself.
 *
 * Go to C:
 *  - The Go code is written for int (no generics); so is this port: the
 *    channels carry an int each (elem_size sizeof(int)).
 *  - gen and sq return the output channel, as in Go. The caller owns the
 *    returned reference, the stage's task holds its own (chan_retain), so
 *    either side may finish first. sq takes over the caller's reference to
 *    its input, so the Go call sq(gen(2, 3, 4)) reads the same in C.
 *  - "for n := range in" is a receive loop that stops at GOCC_ECLOSED.
 *  - As in the Go snippet, the stages take no context: the consumer reads
 *    everything, so every stage finishes. (A consumer that may stop early
 *    must pass a context; see c06_pipeline_close.c.)
 *
 * Checks: the consumer receives exactly 4, 9, 16 in that order, the channel
 * then reports closed, and every stage task has returned
 * (gocc_tasks_live() == 0). Exit status 0 when all of that holds, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check("A01", ok, what)

/* ---- gen: send each number, then close ---------------------------------- */

typedef struct gen_arg {
    gocc_chan_t *out; /* the task's own reference */
    size_t n;
    int nums[]; /* a copy: the caller's array may be gone before we run */
} gen_arg_t;

static int gen_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gen_arg_t *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (gocc_chan_send(a->out, &a->nums[i], NULL) != 0) break;
    gocc_chan_close(a->out); /* the sender closes */
    gocc_chan_release(a->out);
    free(a);
    return 0;
}

/* Go's gen(nums ...int) <-chan int. NULL (errno set) on failure. */
static gocc_chan_t *gen(const int *nums, size_t n) {
    gocc_chan_t *out = gocc_chan_new(sizeof(int), 0);
    gen_arg_t *a = malloc(sizeof *a + n * sizeof a->nums[0]);
    if (!out || !a) goto fail;
    a->out = gocc_chan_retain(out);
    a->n = n;
    memcpy(a->nums, nums, n * sizeof a->nums[0]);
    if (gocc_go(gen_task, NULL, a) != 0) {
        gocc_chan_release(a->out);
        goto fail;
    }
    return out;
fail:
    free(a);
    gocc_chan_release(out);
    return NULL;
}

/* ---- sq: square what comes in, close when the input is closed ----------- */

typedef struct sq_arg {
    gocc_chan_t *in, *out; /* the task's own references */
} sq_arg_t;

static int sq_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sq_arg_t *a = arg;
    int n;
    while (gocc_chan_recv(a->in, &n, NULL) == 0) { /* for n := range in */
        int sq = n * n;
        if (gocc_chan_send(a->out, &sq, NULL) != 0) break;
    }
    gocc_chan_close(a->out);
    gocc_chan_release(a->in);
    gocc_chan_release(a->out);
    free(a);
    return 0;
}

/* Go's sq(in <-chan int) <-chan int. Takes over the caller's reference to
 * `in` (NULL in gives NULL out). */
static gocc_chan_t *sq(gocc_chan_t *in) {
    if (!in) return NULL;
    gocc_chan_t *out = gocc_chan_new(sizeof(int), 0);
    sq_arg_t *a = malloc(sizeof *a);
    if (!out || !a) goto fail;
    *a = (sq_arg_t){in, gocc_chan_retain(out)};
    if (gocc_go(sq_task, NULL, a) != 0) {
        gocc_chan_release(a->out);
        goto fail;
    }
    return out;
fail:
    free(a);
    gocc_chan_release(out);
    gocc_chan_release(in);
    return NULL;
}

int main(void) {
    static const int input[] = {2, 3, 4};
    static const int want[] = {4, 9, 16};
    enum { N = sizeof input / sizeof input[0] };

    gocc_chan_t *squares = sq(gen(input, N));
    check(squares != NULL, "started the pipeline");

    int got[N + 1], count = 0, n;
    while (squares && gocc_chan_recv(squares, &n, NULL) == 0) /* range */
        if (count <= N) got[count++] = n;
    gocc_chan_release(squares);

    printf("A01 pipeline: 2 3 4 ->");
    for (int i = 0; i < count && i < N; i++) printf(" %d", got[i]);
    printf("\n");

    check(count == N, "received exactly three values");
    for (int i = 0; i < N && i < count; i++)
        check(got[i] == want[i], "the values are 4, 9, 16 in order");
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "both stage tasks returned (gocc_tasks_live() == 0)");

    if (example_failures) printf("A01 pipeline: FAILED\n");
    return example_failures ? 1 : 0;
}
