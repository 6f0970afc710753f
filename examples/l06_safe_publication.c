/*
 * l06_safe_publication.c - L06 (seeds/000, Lesson 6): safe publication and
 * memory visibility. A reader sees another task's writes only through a
 * happens-before edge; each of the lesson's three patterns makes one.
 *
 * l06_close_after_init: an init task fills the config, then closes
 *   `ready`; readers receive from `ready` (closed: GOCC_ECLOSED) and then
 *   read the plain, non-atomic config. The close is the edge.
 * l06_mutex: one writer updates the config in place under a pthread mutex,
 *   readers copy it under the same mutex.
 * l06_atomic_snapshot: atomic.Value holding an immutable Config becomes an
 *   _Atomic pointer to a const config_t: the writer fills a fresh config and
 *   stores the pointer (release); readers load it (acquire) and never lock.
 *   C has no GC: a replaced snapshot may still be being read, so it is
 *   retired and freed only once no reader can hold it (here: after the
 *   readers are done; a long-running program would use RCU, epochs or
 *   reference counts).
 *
 * Checks: every read saw a whole config (its checksum matches its fields:
 * nothing torn, nothing half-initialised), versions never went backwards
 * for any reader, every snapshot was freed (ASan checks that), and
 * gocc_tasks_live() == 0. There is no broken half: an unsynchronised
 * version would be a data race (undefined behaviour in C). Exit 1 if wrong.
 *
 * Go -> C: atomic.Value holding a Config is an _Atomic(const config_t *)
 * (the type at hand, no interface{}); sync.Mutex is a pthread mutex; the
 * ready channel is a chan struct{}: a channel with elem_size 0.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L06", ok, what)

#define READERS 4
#define UPDATES 200

typedef struct config {
    int version;
    int workers;
    int64_t timeout_ns;
    char name[24];
    unsigned checksum; /* over the fields above */
} config_t;

static unsigned checksum_of(const config_t *c) {
    unsigned h = 2166136261u;
    h = (h ^ (unsigned)c->version) * 16777619u;
    h = (h ^ (unsigned)c->workers) * 16777619u;
    h = (h ^ (unsigned)c->timeout_ns) * 16777619u;
    for (size_t i = 0; i < sizeof c->name; i++) h = (h ^ (unsigned char)c->name[i]) * 16777619u;
    return h;
}

/* loadConfig: version v, fields derived from it. */
static void load_config(config_t *c, int v) {
    *c = (config_t){.version = v,
                    .workers = 1 + v % 16,
                    .timeout_ns = (int64_t)v * GOCC_MILLISECOND};
    snprintf(c->name, sizeof c->name, "config-%d", v);
    c->checksum = checksum_of(c);
}

static bool whole(const config_t *c) { return c->checksum == checksum_of(c); }

/* What a reader reports. */
typedef struct reader {
    void *shared;
    long reads;
    long torn;
    bool went_back;
} reader_t;

/* ---- L06: close a channel after init ---------------------------------- */

typedef struct published {
    config_t cfg;      /* plain memory */
    gocc_chan_t *ready; /* closed once cfg is complete */
} published_t;

static int init_config(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    published_t *p = arg;
    gocc_sleep(2 * GOCC_MILLISECOND, NULL); /* a slow load */
    load_config(&p->cfg, 1);
    gocc_chan_close(p->ready); /* publish */
    return 0;
}

static int read_after_ready(gocc_ctx_t *ctx, void *arg) {
    reader_t *r = arg;
    published_t *p = r->shared;
    if (gocc_chan_recv(p->ready, NULL, ctx) != GOCC_ECLOSED) return 1; /* <-ready */
    r->reads++;
    if (!whole(&p->cfg) || p->cfg.version != 1) r->torn++;
    return 0;
}

/* ---- L06: mutex --------------------------------------------------------- */

typedef struct locked {
    pthread_mutex_t mu;
    config_t cfg;          /* guarded by mu */
    atomic_bool writer_done;
} locked_t;

static int read_locked(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    reader_t *r = arg;
    locked_t *l = r->shared;
    int last = 0;
    bool done;
    do {
        done = atomic_load(&l->writer_done); /* one more read after the last update */
        pthread_mutex_lock(&l->mu);
        config_t c = l->cfg;
        pthread_mutex_unlock(&l->mu);
        r->reads++;
        if (!whole(&c)) r->torn++;
        if (c.version < last) r->went_back = true;
        last = c.version;
    } while (!done);
    return 0;
}

/* ---- L06: atomic snapshot swap ---------------------------------------- */

typedef struct snapshot {
    _Atomic(const config_t *) current; /* var cfg atomic.Value */
    atomic_bool writer_done;
} snapshot_t;

static int read_snapshot(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    reader_t *r = arg;
    snapshot_t *s = r->shared;
    int last = 0;
    bool done;
    do {
        done = atomic_load(&s->writer_done);
        const config_t *c = atomic_load_explicit(&s->current, memory_order_acquire);
        r->reads++;
        if (!whole(c)) r->torn++;
        if (c->version < last) r->went_back = true;
        last = c->version;
    } while (!done);
    return 0;
}

/* ---- the three demos ---------------------------------------------------- */

/* Start READERS tasks of fn on `shared`. */
static int start_readers(gocc_fn fn, void *shared, reader_t *r) {
    int started = 0;
    for (int i = 0; i < READERS; i++) {
        r[i] = (reader_t){.shared = shared};
        started += gocc_go(fn, NULL, &r[i]) == 0;
    }
    return started;
}

static void sum_readers(const reader_t *r, long *reads, long *torn, bool *went_back) {
    *reads = *torn = 0;
    *went_back = false;
    for (int i = 0; i < READERS; i++) {
        *reads += r[i].reads;
        *torn += r[i].torn;
        *went_back |= r[i].went_back;
    }
}

static void l06_close_after_init(void) {
    published_t p = {.ready = gocc_chan_new(0, 0)};
    reader_t r[READERS];
    long reads, torn;
    bool back;
    int started = p.ready ? start_readers(read_after_ready, &p, r) : 0;
    bool init = p.ready && gocc_go(init_config, NULL, &p) == 0;
    check(started == READERS && init, "started init and readers");
    if (!init) gocc_chan_close(p.ready);
    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(exited, "readers and init returned");
    sum_readers(r, &reads, &torn, &back);
    check(reads == READERS && torn == 0, "every reader saw the complete config");
    printf("L06 close after init: %ld readers waited on `ready`, %ld saw a partial config\n",
           reads, torn);
    if (exited) gocc_chan_release(p.ready);
}

static void l06_mutex(void) {
    locked_t l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    load_config(&l.cfg, 1);
    reader_t r[READERS];
    long reads, torn;
    bool back;
    int started = start_readers(read_locked, &l, r);
    for (int v = 2; v <= UPDATES; v++) {
        pthread_mutex_lock(&l.mu);
        load_config(&l.cfg, v); /* update in place, under the lock */
        pthread_mutex_unlock(&l.mu);
        if (v % 20 == 0) gocc_sleep(100 * GOCC_MICROSECOND, NULL);
    }
    atomic_store(&l.writer_done, true);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "readers returned");
    sum_readers(r, &reads, &torn, &back);
    check(started == READERS && torn == 0 && !back, "mutex: no torn read, no going back");
    printf("L06 mutex: %d updates in place, %d readers made %ld reads: %ld torn, "
           "versions %s\n", UPDATES, started, reads, torn, back ? "WENT BACK" : "never went back");
    pthread_mutex_destroy(&l.mu);
}

static void l06_atomic_snapshot(void) {
    static const config_t *retired[UPDATES];
    int n_retired = 0;
    snapshot_t s;
    config_t *first = malloc(sizeof *first);
    if (!first) {
        check(false, "allocated a config");
        return;
    }
    load_config(first, 1);
    atomic_init(&s.current, first); /* cfg.Store(loadConfig()) */
    atomic_init(&s.writer_done, false);

    reader_t r[READERS];
    long reads, torn;
    bool back;
    int started = start_readers(read_snapshot, &s, r);
    for (int v = 2; v <= UPDATES; v++) {
        config_t *next = malloc(sizeof *next);
        if (!next) break;
        load_config(next, v); /* build the new one completely ... */
        const config_t *old =
            atomic_exchange_explicit(&s.current, next, memory_order_acq_rel); /* ... then swap */
        retired[n_retired++] = old; /* a reader may still hold it */
        if (v % 20 == 0) gocc_sleep(100 * GOCC_MICROSECOND, NULL);
    }
    atomic_store(&s.writer_done, true);
    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(exited, "readers returned");
    sum_readers(r, &reads, &torn, &back);
    check(started == READERS && torn == 0 && !back, "snapshot: no torn read, no going back");
    check(n_retired == UPDATES - 1, "every update swapped a snapshot");
    if (exited) { /* no reader left: now the retired snapshots can go */
        for (int i = 0; i < n_retired; i++) free((void *)retired[i]);
        free((void *)atomic_load(&s.current));
    }
    printf("L06 atomic snapshot: %d swaps, %d readers made %ld lock-free reads: %ld torn, "
           "versions %s; %d retired snapshots freed after the readers stopped\n",
           n_retired, started, reads, torn, back ? "WENT BACK" : "never went back", n_retired);
}

int main(void) {
    l06_close_after_init();
    l06_mutex();
    l06_atomic_snapshot();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L06 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
