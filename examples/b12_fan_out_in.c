/*
 * b12_fan_out_in.c - B12 (chapter 9, "Fan-Out/Fan-In with Generics"):
 * FanOut[T](ctx, in, workers) []<-chan T starts `workers` goroutines that
 * all range over `in`, each passing what it takes on to its own output
 * channel (closed when `in` is drained or ctx ends); FanIn[T](ctx,
 * inputs...) <-chan T merges channels back into one, closed once every
 * input is drained or ctx ends.
 *
 * b12_round_trip: a source sends 1..1000 and closes; fan_out spreads the
 *   ints over 4 channels; on each, a square task turns x into {x, x*x,
 *   k} (a struct: a second T) on its own channel; fan_in merges the 4
 *   result channels. Every x comes back exactly once with its square, then
 *   the merged channel closes. How the 1000 split over the 4 workers is
 *   printed (it depends on scheduling; only the total is checked).
 * b12_cancel: the same chain fed by an endless source; the consumer
 *   cancels ctx after 100 results. Every stage stops: the merged channel
 *   closes and no task is left (source, 4 fan-out workers, 4 squarers, 4
 *   merge forwarders).
 *
 * Go -> C: a type parameter T becomes an element size. fan_out(ctx, in,
 * elem_size, workers, outs) makes `workers` channels of elem_size-byte
 * values and starts one task per channel whose buffer (a flexible array
 * member) holds one T; values are copied as bytes, as Go copies a T.
 * FanIn is the library's gocc_chan_merge (one forwarding task per input,
 * the last to finish closes out); fan_in only makes `out` with the
 * element size and calls it. The same two functions move ints and
 * result structs here. Each select { case out <- val: case <-ctx.Done(): }
 * is a send with ctx (it returns the context's error when ctx ends first).
 * Each task owns references to the channels it uses and drops them when it
 * returns; `defer close(out)` is the close at the end of the task. Go
 * cannot fail to start a goroutine, C can: a fan-out worker that cannot
 * be started leaves its channel closed (empty), and fan_in fails as a
 * whole (gocc_chan_merge starts all its tasks or none).
 *
 * Checks: round trip - 1000 results, each x once with x*x, the split sums
 * to 1000, the merged channel closed; cancel - at least 100 results, no
 * value twice, the merged channel closed within 5 s of the cancel;
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B12", ok, what)

#define WORKERS 4
#define N_VALUES 1000
#define CANCEL_AFTER 100
#define ENDLESS_MAX (1 << 20) /* the "endless" source stops here at worst */

/* ---- FanOut[T] ------------------------------------------------------- */

/* One fan-out worker: for val := range in { select { out <- val; <-ctx.Done() } } */
typedef struct fan_out_worker {
    gocc_chan_t *in, *out; /* the task's own references */
    unsigned char val[];   /* one T */
} fan_out_worker_t;

static int fan_out_task(gocc_ctx_t *ctx, void *arg) {
    fan_out_worker_t *w = arg;
    while (gocc_chan_recv(w->in, w->val, ctx) == 0)
        if (gocc_chan_send(w->out, w->val, ctx) != 0) break; /* ctx ended */
    gocc_chan_close(w->out);                                 /* defer close(out) */
    gocc_chan_release(w->in);
    gocc_chan_release(w->out);
    free(w);
    return 0;
}

/*
 * FanOut: fill outs[0..workers) with new unbuffered channels of elem_size
 * bytes (one reference each, the caller's), each fed by its own task
 * taking values from `in`. A worker that cannot be started leaves its
 * channel closed. Returns false if the channels could not be made (then
 * outs holds nothing).
 */
static bool fan_out(gocc_ctx_t *ctx, gocc_chan_t *in, size_t elem_size, int workers,
                    gocc_chan_t **outs) {
    for (int i = 0; i < workers; i++) {
        outs[i] = gocc_chan_new(elem_size, 0);
        if (!outs[i]) {
            while (i-- > 0) gocc_chan_release(outs[i]);
            return false;
        }
    }
    for (int i = 0; i < workers; i++) {
        fan_out_worker_t *w = malloc(sizeof *w + elem_size);
        if (w) {
            w->in = gocc_chan_retain(in);
            w->out = gocc_chan_retain(outs[i]);
            if (gocc_go(fan_out_task, ctx, w) == 0) continue;
            gocc_chan_release(w->in);
            gocc_chan_release(w->out);
            free(w);
        }
        gocc_chan_close(outs[i]); /* no worker: an empty, closed channel */
    }
    return true;
}

/* ---- FanIn[T] -------------------------------------------------------- */

/* FanIn: a new unbuffered channel of elem_size bytes carrying every value
 * of inputs[0..n), closed when all are drained or ctx ends (the caller's
 * reference); NULL if it could not be started. */
static gocc_chan_t *fan_in(gocc_ctx_t *ctx, size_t elem_size, gocc_chan_t *const *inputs,
                           size_t n) {
    gocc_chan_t *out = gocc_chan_new(elem_size, 0);
    if (out && gocc_chan_merge(inputs, n, out, ctx) != 0) {
        gocc_chan_release(out);
        out = NULL;
    }
    return out;
}

/* ---- the stages around them ------------------------------------------ */

typedef struct result {
    int x;
    long long square;
    int worker; /* which fan-out branch it came through */
} result_t;

typedef struct source {
    gocc_chan_t *out; /* the task's own reference */
    int last;         /* sends 1..last */
} source_t;

static int source_task(gocc_ctx_t *ctx, void *arg) {
    source_t *s = arg;
    for (int x = 1; x <= s->last; x++)
        if (gocc_chan_send(s->out, &x, ctx) != 0) break;
    gocc_chan_close(s->out);
    gocc_chan_release(s->out);
    free(s);
    return 0;
}

/* x -> {x, x*x, worker}: one per fan-out branch. */
typedef struct squarer {
    gocc_chan_t *in, *out;
    int worker;
} squarer_t;

static int square_task(gocc_ctx_t *ctx, void *arg) {
    squarer_t *q = arg;
    int x;
    while (gocc_chan_recv(q->in, &x, ctx) == 0) {
        result_t r = {x, (long long)x * x, q->worker};
        if (gocc_chan_send(q->out, &r, ctx) != 0) break;
    }
    gocc_chan_close(q->out);
    gocc_chan_release(q->in);
    gocc_chan_release(q->out);
    free(q);
    return 0;
}

/* The whole chain: source -> fan_out(4) -> 4 squarers -> fan_in. Returns
 * the merged channel of result_t (caller's reference) or NULL. */
static gocc_chan_t *build_chain(gocc_ctx_t *ctx, int last) {
    gocc_chan_t *src = gocc_chan_new(sizeof(int), 0);
    source_t *s = malloc(sizeof *s);
    if (!src || !s) {
        free(s);
        gocc_chan_release(src);
        return NULL;
    }
    *s = (source_t){gocc_chan_retain(src), last};
    if (gocc_go(source_task, ctx, s) != 0) {
        gocc_chan_release(s->out);
        free(s);
        gocc_chan_close(src);
    }
    gocc_chan_t *branches[WORKERS], *results[WORKERS];
    bool ok = fan_out(ctx, src, sizeof(int), WORKERS, branches);
    gocc_chan_release(src); /* the source and the workers hold their own */
    if (!ok) return NULL;
    int made = 0;
    for (int k = 0; k < WORKERS; k++, made++) {
        results[k] = gocc_chan_new(sizeof(result_t), 0);
        squarer_t *q = malloc(sizeof *q);
        if (!results[k] || !q) {
            free(q);
            gocc_chan_release(results[k]);
            break;
        }
        *q = (squarer_t){gocc_chan_retain(branches[k]), gocc_chan_retain(results[k]), k};
        if (gocc_go(square_task, ctx, q) != 0) {
            gocc_chan_release(q->in);
            gocc_chan_release(q->out);
            free(q);
            gocc_chan_close(results[k]);
        }
    }
    gocc_chan_t *merged = made == WORKERS ? fan_in(ctx, sizeof(result_t), results, WORKERS) : NULL;
    for (int k = 0; k < WORKERS; k++) gocc_chan_release(branches[k]);
    for (int k = 0; k < made; k++) gocc_chan_release(results[k]);
    return merged; /* on failure the caller cancels ctx: every task stops */
}

/* ---- the two runs ----------------------------------------------------- */

static void b12_round_trip(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *merged = ctx ? build_chain(ctx, N_VALUES) : NULL;
    check(merged != NULL, "built source -> fan_out(4) -> squarers -> fan_in");
    static bool seen[N_VALUES + 1];
    int total = 0, per_worker[WORKERS] = {0};
    bool right = true;
    result_t r;
    int rc = GOCC_ECLOSED;
    while (merged && (rc = gocc_chan_recv(merged, &r, NULL)) == 0) { /* range */
        if (r.x < 1 || r.x > N_VALUES || seen[r.x] || r.square != (long long)r.x * r.x ||
            r.worker < 0 || r.worker >= WORKERS) {
            right = false;
            continue;
        }
        seen[r.x] = true;
        per_worker[r.worker]++;
        total++;
    }
    check(rc == GOCC_ECLOSED, "the merged channel closed once every input was drained");
    check(right && total == N_VALUES, "every x came back exactly once with x*x");
    check(per_worker[0] + per_worker[1] + per_worker[2] + per_worker[3] == N_VALUES,
          "the four branches carried all 1000 between them");
    printf("B12 round trip: 1..%d -> fan_out(4) -> x*x -> fan_in: %d results, each once; "
           "split %d/%d/%d/%d\n",
           N_VALUES, total, per_worker[0], per_worker[1], per_worker[2], per_worker[3]);
    gocc_chan_release(merged);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
}

static void b12_cancel(void) {
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *merged = ctx ? build_chain(ctx, ENDLESS_MAX) : NULL;
    check(merged != NULL, "built the endless chain");
    unsigned char *seen = calloc(ENDLESS_MAX + 1, 1);
    check(seen != NULL, "memory for the seen-set");
    int before = 0, after = 0, rc = GOCC_ECLOSED;
    bool twice = false;
    result_t r;
    while (merged && seen && before < CANCEL_AFTER && gocc_chan_recv(merged, &r, NULL) == 0) {
        if (r.x < 1 || r.x > ENDLESS_MAX || seen[r.x])
            twice = true;
        else
            seen[r.x] = 1;
        before++;
    }
    int64_t t_cancel = gocc_now();
    gocc_ctx_cancel(ctx); /* the consumer has had enough */
    /* Whatever was already on its way may still arrive; then ECLOSED. A
     * 5 s context keeps a bug from hanging the example. */
    gocc_ctx_t *bound = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND);
    while (merged && seen && (rc = gocc_chan_recv(merged, &r, bound)) == 0) {
        if (r.x < 1 || r.x > ENDLESS_MAX || seen[r.x])
            twice = true;
        else
            seen[r.x] = 1;
        after++;
    }
    int64_t took = gocc_now() - t_cancel;
    gocc_ctx_cancel(bound);
    gocc_ctx_release(bound);
    check(before == CANCEL_AFTER, "100 results before the cancel");
    check(!twice, "no value came out twice");
    check(rc == GOCC_ECLOSED, "after the cancel the merged channel closed");
    bool gone = example_tasks_exit_within(5 * GOCC_SECOND);
    check(gone, "every stage's task returned after the cancel");
    printf("B12 cancel: %d results, cancel, %d more in flight, merged closed after %lld ms; "
           "tasks left: %zu\n",
           before, after, (long long)(took / GOCC_MILLISECOND), gocc_tasks_live());
    free(seen);
    gocc_chan_release(merged);
    gocc_ctx_release(ctx);
}

int main(void) {
    b12_round_trip();
    b12_cancel();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B12 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
