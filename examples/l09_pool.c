/*
 * l09_pool.c - L09 (Deep Dive, Lesson 9): sync.Pool and buffer reuse.
 * "sync.Pool is not a cache. The GC can drop pooled items at any time."
 *
 * l09_reuse: request handlers (8 tasks, 10000 requests in all) each take a
 *   buffer from a gocc_pool (sync.Pool with New), write the request into it,
 *   compute a result from it, Reset it and Put it back. Short-lived,
 *   alloc-heavy objects are the use case: a handful of buffers serve every
 *   request. Buffers kept reasonably sized: one that grew past MAX_KEEP is
 *   freed instead of pooled (don't pool huge slices).
 * l09_not_a_cache: the same handlers with gocc_pool_set_drop_percent(50)
 *   (Go's race-detector behaviour: puts dropped at random) and a
 *   gocc_pool_trim between rounds (the GC's victim cache): the pool hands
 *   out fresh buffers as often as reused ones, and every result is still
 *   right. The anti-pattern, stashing state in a pooled object and expecting
 *   it back, is shown with drop 100%: the value is gone.
 *
 * Checks: reuse happened (in l09_reuse at most one request in ten needed a
 * new buffer; about 20 are made for 10000 requests, and a pool that never
 * handed back what was put would make 10000); every buffer handed out is
 * reset (length 0, no stale bytes), every request's result is right, every
 * buffer made is freed once (made == freed after gocc_pool_free), the
 * stashed value does not come back, gocc_tasks_live() == 0 at the end.
 * Exit 1 if wrong.
 * Go -> C: bytes.Buffer is struct buffer; interface{} and the type assertion
 * .(*bytes.Buffer) become void * and a cast; defer { Reset; Put } is written
 * out at the end of the handler.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L09", ok, what)

#define HANDLERS 8
#define REQUESTS 10000 /* in all */
#define BUF_CAP 256
#define MAX_KEEP 4096 /* a buffer that grew past this is not pooled */

/* bytes.Buffer: a growable byte slice. */
struct buffer {
    size_t len, cap;
    char *data;
};

static atomic_int made, freed;

static void *buffer_new(void *ud) { /* New: func() interface{} { return new(bytes.Buffer) } */
    (void)ud;
    struct buffer *b = malloc(sizeof *b);
    if (!b) return NULL;
    b->data = calloc(1, BUF_CAP);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->len = 0;
    b->cap = BUF_CAP;
    atomic_fetch_add(&made, 1);
    return b;
}

static void buffer_free(void *obj, void *ud) {
    (void)ud;
    struct buffer *b = obj;
    free(b->data);
    free(b);
    atomic_fetch_add(&freed, 1);
}

static bool buffer_write(struct buffer *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
        char *d = realloc(b->data, cap);
        if (!d) return false;
        memset(d + b->cap, 0, cap - b->cap);
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return true;
}

/* buf.Reset(): clears the bytes too, so a stale byte is detectable. */
static void buffer_reset(struct buffer *b) {
    memset(b->data, 0, b->len);
    b->len = 0;
}

static bool buffer_is_reset(const struct buffer *b) {
    if (b->len != 0) return false;
    for (size_t i = 0; i < b->cap; i++)
        if (b->data[i] != 0) return false;
    return true;
}

typedef struct handler_arg {
    gocc_pool_t *pool;
    int first, count;  /* the requests this handler serves */
    int served, wrong; /* out */
    int dirty;         /* out: buffers handed out not reset */
} handler_arg_t;

/* One request: the checksum of "req-<id>:" repeated (id % 7) + 1 times, one
 * request in 500 large (grows the buffer past MAX_KEEP). */
static unsigned long expected_sum(int id) {
    char piece[32];
    int n = snprintf(piece, sizeof piece, "req-%d:", id);
    int reps = id % 500 == 0 ? 600 : id % 7 + 1;
    unsigned long sum = 0;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) sum = sum * 31 + (unsigned char)piece[i];
    return sum;
}

static int handler(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    handler_arg_t *h = arg;
    for (int id = h->first; id < h->first + h->count; id++) {
        struct buffer *buf = gocc_pool_get(h->pool); /* bufPool.Get().(*bytes.Buffer) */
        if (!buf) {
            h->wrong++;
            continue;
        }
        if (!buffer_is_reset(buf)) h->dirty++;
        char piece[32];
        int n = snprintf(piece, sizeof piece, "req-%d:", id);
        int reps = id % 500 == 0 ? 600 : id % 7 + 1;
        bool ok = true;
        for (int r = 0; r < reps; r++) ok = ok && buffer_write(buf, piece, (size_t)n);
        unsigned long sum = 0;
        for (size_t i = 0; i < buf->len; i++) sum = sum * 31 + (unsigned char)buf->data[i];
        if (!ok || sum != expected_sum(id)) h->wrong++;
        h->served++;
        /* defer: buf.Reset(); bufPool.Put(buf) - unless it grew too big */
        if (buf->cap > MAX_KEEP) {
            buffer_free(buf, NULL);
        } else {
            buffer_reset(buf);
            gocc_pool_put(h->pool, buf);
        }
    }
    return 0;
}

/* Serve REQUESTS requests with HANDLERS tasks; add the results to *served,
 * *wrong, *dirty. trim: gocc_pool_trim between two halves. */
static void serve(gocc_pool_t *pool, bool trim, int *served, int *wrong, int *dirty) {
    for (int round = 0; round < (trim ? 2 : 1); round++) {
        int per = REQUESTS / HANDLERS / (trim ? 2 : 1);
        handler_arg_t h[HANDLERS];
        int started = 0;
        for (int i = 0; i < HANDLERS; i++) {
            h[i] = (handler_arg_t){.pool = pool,
                                   .first = round * REQUESTS / 2 + i * per + 1,
                                   .count = per};
            if (gocc_go(handler, NULL, &h[i]) == 0)
                started++;
            else
                h[i].count = 0;
        }
        check(started == HANDLERS, "started the handlers");
        check(example_tasks_exit_within(10 * GOCC_SECOND), "the handlers finished");
        for (int i = 0; i < HANDLERS; i++) {
            *served += h[i].served;
            *wrong += h[i].wrong;
            *dirty += h[i].dirty;
        }
        if (trim) {
            gocc_pool_trim(pool); /* a GC cycle: the pool may forget anything */
            gocc_pool_trim(pool);
        }
    }
}

static void l09_reuse(void) {
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    gocc_pool_t *pool = gocc_pool_new(buffer_new, buffer_free, NULL);
    if (!pool) {
        check(false, "made the pool");
        return;
    }
    int served = 0, wrong = 0, dirty = 0;
    serve(pool, false, &served, &wrong, &dirty);
    int m = atomic_load(&made);
    gocc_pool_free(pool);
    check(served == REQUESTS && wrong == 0, "every request's result is right");
    check(dirty == 0, "every buffer handed out was reset");
    check(m == atomic_load(&freed), "every buffer made was freed once");
    check(m <= REQUESTS / 10, "buffers were reused: at most one request in ten made a new one");
    printf("L09 pool: %d requests, %d buffers allocated, %d reuses\n", served, m, served - m);
}

static void l09_not_a_cache(void) {
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    gocc_pool_t *pool = gocc_pool_new(buffer_new, buffer_free, NULL);
    if (!pool) {
        check(false, "made the pool");
        return;
    }
    gocc_pool_set_drop_percent(pool, 50); /* the pool forgets half the puts */
    int served = 0, wrong = 0, dirty = 0;
    serve(pool, true, &served, &wrong, &dirty);
    int m = atomic_load(&made);

    /* The anti-pattern: keep state in a pooled object and expect it back. */
    gocc_pool_set_drop_percent(pool, 100);
    struct buffer *b = gocc_pool_get(pool);
    bool came_back = false;
    if (b) {
        buffer_write(b, "session-42", 10); /* "cached" without a Reset */
        gocc_pool_put(pool, b);
        struct buffer *again = gocc_pool_get(pool);
        if (again) {
            came_back = again->len == 10 && memcmp(again->data, "session-42", 10) == 0;
            check(buffer_is_reset(again), "a buffer from New is empty");
            buffer_reset(again);
            gocc_pool_put(pool, again);
        }
    }
    gocc_pool_free(pool);
    check(b != NULL, "got a buffer");
    check(!came_back, "a value stashed in the pool is not there on the next Get");
    check(served == REQUESTS && wrong == 0, "every result is right with drops and trims");
    check(dirty == 0, "every buffer handed out was reset, with drops and trims");
    check(atomic_load(&made) == atomic_load(&freed), "every buffer made was freed once");
    printf("L09 not a cache: drop 50%% + trims: %d requests, %d buffers allocated, "
           "every result right\n",
           served, m);
    printf("L09 not a cache: a value stashed in a pooled buffer %s on the next Get (drop 100%%)\n",
           came_back ? "came back" : "was gone");
}

int main(void) {
    l09_reuse();
    l09_not_a_cache();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L09 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
