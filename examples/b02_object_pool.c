/*
 * b02_object_pool.c - B02 (chapter 9, "sync.Pool: Object Recycling"): an
 * object pool that reduces allocation pressure, and the type-safe generic
 * wrapper Pool[T] over it.
 *
 * b02_buffer_pool: var bufferPool = sync.Pool{New: new(bytes.Buffer)} and
 *   processWithPool(data): Get, defer { Reset; Put }, Write(data),
 *   transform(buf.Bytes()). Run by 4 tasks at once over 2000 inputs.
 * b02_typed_pool: NewPool[T](new func() T) with Get() T / Put(v T), used as
 *   connPool = NewPool(func() *Connection { buffer: make([]byte, 4096) }).
 *
 * Go -> C: generics become a macro. DEFINE_TYPED_POOL(name, T, new, free)
 * writes a struct name holding a gocc_pool_t * and static inline functions
 * name_new / name_get (returns T *) / name_put (takes T *) / name_free, so
 * the compiler checks the element type the way Pool[T] does and no caller
 * casts a void *. It is instantiated twice: buf_pool (struct buffer) and
 * conn_pool (struct connection).
 *
 * Checks: objects are reused (at most one input in ten allocates a buffer;
 * about 3 do for 2000, and 100 Get/Put rounds make at most 10
 * connections, 1 in practice); every transform result is right, every
 * object handed out is in its reset state, every object made is freed once
 * after name_free, a connection's 4096-byte buffer is intact,
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <ctype.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B02", ok, what)

/* ---- the generic wrapper: Pool[T] ------------------------------------- */

/* type Pool[T any] struct { pool sync.Pool } with NewPool, Get, Put (and a
 * Free, which C needs). new_fn: T *(void); free_fn: void (T *). */
#define DEFINE_TYPED_POOL(name, T, new_fn, free_fn)                                  \
    typedef struct name {                                                            \
        gocc_pool_t *pool;                                                           \
    } name##_t;                                                                      \
    static void *name##_new_obj(void *ud) {                                          \
        (void)ud;                                                                    \
        return new_fn();                                                             \
    }                                                                                \
    static void name##_free_obj(void *obj, void *ud) {                               \
        (void)ud;                                                                    \
        free_fn((T *)obj);                                                           \
    }                                                                                \
    static inline bool name##_new(name##_t *p) {                                     \
        p->pool = gocc_pool_new(name##_new_obj, name##_free_obj, NULL);              \
        return p->pool != NULL;                                                      \
    }                                                                                \
    static inline T *name##_get(name##_t *p) { return (T *)gocc_pool_get(p->pool); } \
    static inline void name##_put(name##_t *p, T *v) { gocc_pool_put(p->pool, v); }  \
    static inline void name##_free(name##_t *p) {                                    \
        gocc_pool_free(p->pool);                                                     \
        p->pool = NULL;                                                              \
    }

/* ---- the objects ------------------------------------------------------ */

static atomic_int made, freed;

#define BUF_CAP 128

struct buffer { /* bytes.Buffer, fixed capacity for the example */
    size_t len;
    char data[BUF_CAP];
};

static struct buffer *buffer_new(void) {
    struct buffer *b = calloc(1, sizeof *b);
    if (b) atomic_fetch_add(&made, 1);
    return b;
}
static void buffer_free(struct buffer *b) {
    free(b);
    atomic_fetch_add(&freed, 1);
}
static void buffer_reset(struct buffer *b) {
    memset(b->data, 0, b->len);
    b->len = 0;
}

#define CONN_BUF 4096

struct connection {
    int id;
    size_t used;
    unsigned char *buffer; /* make([]byte, 4096) */
};

static atomic_int conn_ids;

static struct connection *connection_new(void) {
    struct connection *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->buffer = calloc(1, CONN_BUF);
    if (!c->buffer) {
        free(c);
        return NULL;
    }
    c->id = atomic_fetch_add(&conn_ids, 1) + 1;
    atomic_fetch_add(&made, 1);
    return c;
}
static void connection_free(struct connection *c) {
    free(c->buffer);
    free(c);
    atomic_fetch_add(&freed, 1);
}

DEFINE_TYPED_POOL(buf_pool, struct buffer, buffer_new, buffer_free)
DEFINE_TYPED_POOL(conn_pool, struct connection, connection_new, connection_free)

/* ---- processWithPool -------------------------------------------------- */

/* transform: upper-case the bytes. */
static size_t transform(const char *in, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) out[i] = (char)toupper((unsigned char)in[i]);
    return n;
}

/* func processWithPool(data []byte) result; -1 on error, else the length
 * written to out. *dirty is set when the buffer from the pool was not reset. */
static int process_with_pool(buf_pool_t *pool, const char *data, size_t n, char *out, bool *dirty) {
    struct buffer *buf = buf_pool_get(pool); /* no .(*bytes.Buffer): typed */
    if (!buf) return -1;
    *dirty = buf->len != 0 || buf->data[0] != 0;
    int result = -1;
    if (n <= BUF_CAP) {
        memcpy(buf->data, data, n); /* buf.Write(data) */
        buf->len = n;
        result = (int)transform(buf->data, buf->len, out);
    }
    buffer_reset(buf); /* defer: buf.Reset(); bufferPool.Put(buf) */
    buf_pool_put(pool, buf);
    return result;
}

#define WORKERS 4
#define INPUTS 2000

typedef struct proc_arg {
    buf_pool_t *pool;
    int first, step;
    int done, wrong, dirty; /* out */
} proc_arg_t;

static int proc_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    proc_arg_t *a = arg;
    for (int i = a->first; i < INPUTS; i += a->step) {
        char in[64], want[64], out[64];
        int n = snprintf(in, sizeof in, "payload-%d-abc", i);
        for (int k = 0; k <= n; k++) want[k] = (char)toupper((unsigned char)in[k]);
        bool dirty = false;
        int got = process_with_pool(a->pool, in, (size_t)n, out, &dirty);
        if (got != n || memcmp(out, want, (size_t)n) != 0) a->wrong++;
        if (dirty) a->dirty++;
        a->done++;
    }
    return 0;
}

static void b02_buffer_pool(void) {
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    buf_pool_t pool;
    if (!buf_pool_new(&pool)) {
        check(false, "made the buffer pool");
        return;
    }
    proc_arg_t a[WORKERS];
    int started = 0;
    for (int i = 0; i < WORKERS; i++) {
        a[i] = (proc_arg_t){.pool = &pool, .first = i, .step = WORKERS};
        started += gocc_go(proc_task, NULL, &a[i]) == 0;
    }
    check(started == WORKERS, "started the workers");
    check(example_tasks_exit_within(10 * GOCC_SECOND), "the workers finished");
    int done = 0, wrong = 0, dirty = 0;
    for (int i = 0; i < WORKERS; i++) {
        done += a[i].done;
        wrong += a[i].wrong;
        dirty += a[i].dirty;
    }
    int m = atomic_load(&made);
    buf_pool_free(&pool);
    check(done == INPUTS && wrong == 0, "every processWithPool result is right");
    check(dirty == 0, "every buffer from the pool was reset");
    check(m >= 1 && m == atomic_load(&freed), "every buffer made was freed once");
    check(m <= INPUTS / 10, "buffers were reused: at most one input in ten allocated one");
    printf("B02 buffer pool: %d inputs processed by %d tasks, %d buffers allocated, "
           "every result right\n",
           done, WORKERS, m);
}

/* ---- Pool[*Connection] ------------------------------------------------ */

static void b02_typed_pool(void) {
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    conn_pool_t conn_pool; /* var connPool = NewPool(func() *Connection {...}) */
    if (!conn_pool_new(&conn_pool)) {
        check(false, "made the connection pool");
        return;
    }
    int uses = 0, intact = 0, first_id = 0, reused = 0;
    for (int i = 0; i < 100; i++) {
        struct connection *c = conn_pool_get(&conn_pool); /* T, not interface{} */
        if (!c) continue;
        if (first_id == 0) first_id = c->id;
        if (c->id == first_id && i > 0) reused++;
        bool clean = c->used == 0;
        for (size_t k = 0; k < CONN_BUF && clean; k++) clean = c->buffer[k] == 0;
        c->used = (size_t)snprintf((char *)c->buffer, CONN_BUF, "GET /item/%d", i);
        intact += clean && c->used > 0;
        memset(c->buffer, 0, c->used); /* reset before Put */
        c->used = 0;
        conn_pool_put(&conn_pool, c);
        uses++;
    }
    int m = atomic_load(&made);
    conn_pool_free(&conn_pool);
    check(uses == 100, "got a connection every time");
    check(intact == uses, "every connection from the pool had a clean 4096-byte buffer");
    check(m >= 1 && m == atomic_load(&freed), "every connection made was freed once");
    check(m <= 10, "connections were reused: at most 10 made for 100 Get/Put rounds");
    printf("B02 typed pool: conn_pool_get returns struct connection * (Pool[*Connection]); "
           "%d uses, %d connections made, %d reuses of the first\n",
           uses, m, reused);
}

int main(void) {
    b02_buffer_pool();
    b02_typed_pool();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B02 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
