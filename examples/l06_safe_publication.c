/*
 * l06_safe_publication.c - L06 (Deep Dive, Lesson 6): safe publication and
 * memory visibility. A reader sees another task's writes only through a
 * happens-before edge; each of the lesson's three patterns makes one.
 *
 * l06_close_after_init: an init task fills the config, then closes
 *   `ready`; readers receive from `ready` (closed: GOCC_ECLOSED) and then
 *   read the plain, non-atomic config. The close is the edge.
 * l06_mutex: one writer updates the config in place under a pthread mutex,
 *   readers copy it under the same mutex.
 * l06_atomic_snapshot: atomic.Value holding an immutable Config becomes a
 *   gocc_snapshot_t of const config_t: the writer fills a fresh config and
 *   stores it (cfg.Store); readers borrow the current one (cfg.Load) with
 *   gocc_snapshot_acquire, never lock, and end the borrow with
 *   gocc_snapshot_release. C has no GC: a replaced config may still be
 *   being read, so the snapshot hands it to its free function only when
 *   its last borrow ends (split reference counts, see src/snapshot.c).
 *
 * Checks: every read saw a whole config (its checksum matches its fields:
 * nothing torn, nothing half-initialised), versions never went backwards
 * for any reader, every replaced config was freed exactly once by the
 * snapshot (and the last with it; ASan checks no reader touched a freed
 * one), and gocc_tasks_live() == 0. There is no broken half: an unsynchronised
 * version would be a data race (undefined behaviour in C). Exit 1 if wrong.
 *
 * Go -> C: atomic.Value holding a Config is a gocc_snapshot_t whose values
 * are config_t pointers (the type at hand, no interface{}), cfg.Load() a
 * borrow; sync.Mutex is a pthread mutex; the ready channel is a
 * chan struct{}: a channel with elem_size 0.
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
    config_t cfg;       /* plain memory */
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
    config_t cfg; /* guarded by mu */
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
    gocc_snapshot_t *cfg; /* var cfg atomic.Value */
    atomic_bool writer_done;
} snapshot_t;

static atomic_int configs_freed;

/* The snapshot's free function: called once per config, after its last
 * borrow. It spoils the checksum first: a reader that still had the config
 * would see it torn. */
static void free_config(void *value, void *ud) {
    (void)ud;
    config_t *c = value;
    c->checksum = ~checksum_of(c);
    free(c);
    atomic_fetch_add(&configs_freed, 1);
}

static int read_snapshot(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    reader_t *r = arg;
    snapshot_t *s = r->shared;
    int last = 0;
    bool done;
    do {
        done = atomic_load(&s->writer_done);
        gocc_snapshot_ref_t ref;
        const config_t *c = gocc_snapshot_acquire(s->cfg, &ref); /* cfg.Load().(Config) */
        r->reads++;
        if (!whole(c)) r->torn++;
        if (c->version < last) r->went_back = true;
        last = c->version;
        gocc_snapshot_release(&ref); /* done with c */
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
    printf("L06 close after init: %ld readers waited on `ready`, %ld saw a partial config\n", reads,
           torn);
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
           "versions %s\n",
           UPDATES, started, reads, torn, back ? "WENT BACK" : "never went back");
    pthread_mutex_destroy(&l.mu);
}

static void l06_atomic_snapshot(void) {
    int swaps = 0;
    snapshot_t s;
    config_t *first = malloc(sizeof *first);
    if (first) load_config(first, 1);
    s.cfg = first ? gocc_snapshot_new(first, free_config, NULL)
                  : NULL; /* cfg.Store(loadConfig()) */
    if (!s.cfg) {
        check(false, "made the snapshot");
        free(first);
        return;
    }
    atomic_init(&s.writer_done, false);

    reader_t r[READERS];
    long reads, torn;
    bool back;
    int started = start_readers(read_snapshot, &s, r);
    for (int v = 2; v <= UPDATES; v++) {
        config_t *next = malloc(sizeof *next);
        if (!next) break;
        load_config(next, v);                        /* build the new one completely ... */
        if (gocc_snapshot_store(s.cfg, next) != 0) { /* ... then swap */
            free(next);
            break;
        }
        swaps++; /* the old one is freed when its last reader lets go */
        if (v % 20 == 0) gocc_sleep(100 * GOCC_MICROSECOND, NULL);
    }
    atomic_store(&s.writer_done, true);
    bool exited = example_tasks_exit_within(5 * GOCC_SECOND);
    check(exited, "readers returned");
    sum_readers(r, &reads, &torn, &back);
    check(started == READERS && torn == 0 && !back, "snapshot: no torn read, no going back");
    check(swaps == UPDATES - 1, "every update swapped a snapshot");
    int freed = atomic_load(&configs_freed); /* no reader left: all replaced ones */
    check(!exited || freed == swaps, "every replaced config was freed once, by the snapshot");
    if (exited) gocc_snapshot_free(s.cfg); /* and the current one with it */
    check(!exited || atomic_load(&configs_freed) == swaps + 1, "the last config went with it");
    printf("L06 atomic snapshot: %d swaps, %d readers made %ld lock-free reads: %ld torn, "
           "versions %s; %d replaced snapshots freed as their last reader let go\n",
           swaps, started, reads, torn, back ? "WENT BACK" : "never went back", freed);
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
