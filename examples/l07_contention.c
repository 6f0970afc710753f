/*
 * l07_contention.c - L07 (Deep Dive, Lesson 7): contention hotspots.
 * "Contended locks kill scalability." The lesson's strategies, measured
 * side by side on one shared map of counters:
 *
 *   one lock    - one map, one mutex taken by every read and write
 *   shards      - N maps + N locks: a key's shard is key % N
 *   batched     - writes collect in a task-local batch of 64 and go into the
 *                 one map under a single lock acquisition (reads still lock)
 *   copy+swap   - immutable map + atomic swap: readers load a pointer
 *                 (acquire) and read without a lock; a writer copies the map,
 *                 applies its batch, swaps the pointer (release). C has no
 *                 GC: replaced copies are retired and freed after the run.
 *
 * Two workloads, 4 tasks x 50000 operations on 256 keys each (the best of
 * 3 runs is printed): write-heavy (every operation increments a key) and
 * read-mostly (1 in 16 increments, the rest look a key up). Throughput is
 * printed, not checked: this is a shared 2-core machine, and the sanitizer
 * builds distort it. Checked: after every run each key's count equals the
 * number of increments made to it (replayed from the same key sequence),
 * and gocc_tasks_live() == 0.
 * Exit 1 if wrong.
 *
 * Go -> C: map[int]int becomes a fixed table of K counters (keys 0..K-1; a
 * hash map would add the same cost to every variant); atomic.Value holding
 * the map becomes an _Atomic pointer to an immutable table.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("L07", ok, what)

#define K 256 /* keys */
#define NSHARDS 16
#define BATCH 64
#define TASKS 4
/* Per task. The sanitizer builds run a tenth of it once: their timings
 * mean nothing, only the counts are checked there. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define OPS 5000
#define TRIALS 1
#else
#define OPS 50000
#define TRIALS 3 /* the best of 3 is printed */
#endif

/* Task-local state: the batch of pending increments. */
typedef struct local {
    int pending[BATCH];
    int n_pending;
} local_t;

typedef struct variant {
    const char *name;
    void *(*make)(void);
    void (*inc)(void *m, local_t *l, int key);
    long (*get)(void *m, int key);
    void (*flush)(void *m, local_t *l); /* end of a task's run */
    void (*totals)(void *m, long out[K]);
    void (*destroy)(void *m);
} variant_t;

static void *alloc64(size_t size) { /* cache-line aligned, zeroed */
    size = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, size);
    if (p) memset(p, 0, size);
    return p;
}

/* ---- L07: one map + one lock ------------------------------------------------ */

typedef struct locked_map {
    pthread_mutex_t mu;
    long counts[K];
} locked_map_t;

static void *locked_make(void) {
    locked_map_t *m = alloc64(sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}
static void locked_inc(void *mp, local_t *l, int key) {
    (void)l;
    locked_map_t *m = mp;
    pthread_mutex_lock(&m->mu);
    m->counts[key]++;
    pthread_mutex_unlock(&m->mu);
}
static long locked_get(void *mp, int key) {
    locked_map_t *m = mp;
    pthread_mutex_lock(&m->mu);
    long v = m->counts[key];
    pthread_mutex_unlock(&m->mu);
    return v;
}
static void no_flush(void *m, local_t *l) { (void)m, (void)l; }
static void locked_totals(void *mp, long out[K]) {
    locked_map_t *m = mp;
    pthread_mutex_lock(&m->mu);
    memcpy(out, m->counts, sizeof m->counts);
    pthread_mutex_unlock(&m->mu);
}
static void locked_destroy(void *mp) {
    locked_map_t *m = mp;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- L07: N shards + N locks ------------------------------------------------- */

typedef struct shard {
    _Alignas(64) pthread_mutex_t mu; /* one cache line (or more) per shard */
    long counts[K / NSHARDS];
} shard_t;

typedef struct sharded_map {
    shard_t shards[NSHARDS];
} sharded_map_t;

static void *sharded_make(void) {
    sharded_map_t *m = alloc64(sizeof *m);
    for (int i = 0; m && i < NSHARDS; i++) pthread_mutex_init(&m->shards[i].mu, NULL);
    return m;
}
static void sharded_inc(void *mp, local_t *l, int key) {
    (void)l;
    shard_t *s = &((sharded_map_t *)mp)->shards[key % NSHARDS];
    pthread_mutex_lock(&s->mu);
    s->counts[key / NSHARDS]++;
    pthread_mutex_unlock(&s->mu);
}
static long sharded_get(void *mp, int key) {
    shard_t *s = &((sharded_map_t *)mp)->shards[key % NSHARDS];
    pthread_mutex_lock(&s->mu);
    long v = s->counts[key / NSHARDS];
    pthread_mutex_unlock(&s->mu);
    return v;
}
static void sharded_totals(void *mp, long out[K]) {
    for (int key = 0; key < K; key++) out[key] = sharded_get(mp, key);
}
static void sharded_destroy(void *mp) {
    sharded_map_t *m = mp;
    for (int i = 0; i < NSHARDS; i++) pthread_mutex_destroy(&m->shards[i].mu);
    free(m);
}

/* ---- L07: batched updates into the one locked map ---------------------------- */

static void batched_flush(void *mp, local_t *l) {
    locked_map_t *m = mp;
    if (l->n_pending == 0) return;
    pthread_mutex_lock(&m->mu); /* one lock for the whole batch */
    for (int i = 0; i < l->n_pending; i++) m->counts[l->pending[i]]++;
    pthread_mutex_unlock(&m->mu);
    l->n_pending = 0;
}
static void batched_inc(void *mp, local_t *l, int key) {
    l->pending[l->n_pending++] = key;
    if (l->n_pending == BATCH) batched_flush(mp, l);
}

/* ---- L07: immutable copy + atomic swap --------------------------------------- */

typedef struct table {
    long counts[K];
} table_t;

typedef struct cow_map {
    _Atomic(const table_t *) current; /* readers: load and read, no lock */
    pthread_mutex_t write_mu;         /* writers: one copy at a time */
    table_t **retired;                /* replaced tables, under write_mu */
    size_t n_retired, cap_retired;
} cow_map_t;

static void *cow_make(void) {
    cow_map_t *m = calloc(1, sizeof *m);
    table_t *t = calloc(1, sizeof *t);
    if (!m || !t) {
        free(m);
        free(t);
        return NULL;
    }
    atomic_init(&m->current, t);
    pthread_mutex_init(&m->write_mu, NULL);
    return m;
}
static void cow_flush(void *mp, local_t *l) {
    cow_map_t *m = mp;
    if (l->n_pending == 0) return;
    pthread_mutex_lock(&m->write_mu);
    const table_t *old = atomic_load_explicit(&m->current, memory_order_relaxed);
    table_t *next = malloc(sizeof *next);
    if (m->n_retired == m->cap_retired) {
        size_t cap = m->cap_retired ? 2 * m->cap_retired : 64;
        table_t **r = realloc(m->retired, cap * sizeof *r);
        if (r) {
            m->retired = r;
            m->cap_retired = cap;
        }
    }
    if (next && m->n_retired < m->cap_retired) {
        *next = *old;                                                         /* copy ... */
        for (int i = 0; i < l->n_pending; i++) next->counts[l->pending[i]]++; /* ... update ... */
        atomic_store_explicit(&m->current, next, memory_order_release);       /* ... swap */
        m->retired[m->n_retired++] = (table_t *)old; /* a reader may still hold it */
        l->n_pending = 0;
    } else {
        free(next); /* out of memory: keep the batch, the counts will be short */
    }
    pthread_mutex_unlock(&m->write_mu);
}
static void cow_inc(void *mp, local_t *l, int key) {
    l->pending[l->n_pending++] = key;
    if (l->n_pending == BATCH) cow_flush(mp, l);
}
static long cow_get(void *mp, int key) {
    cow_map_t *m = mp;
    return atomic_load_explicit(&m->current, memory_order_acquire)->counts[key];
}
static void cow_totals(void *mp, long out[K]) {
    for (int key = 0; key < K; key++) out[key] = cow_get(mp, key);
}
static void cow_destroy(void *mp) { /* no task is left: free every copy */
    cow_map_t *m = mp;
    for (size_t i = 0; i < m->n_retired; i++) free(m->retired[i]);
    free(m->retired);
    free((void *)atomic_load(&m->current));
    pthread_mutex_destroy(&m->write_mu);
    free(m);
}

static const variant_t variants[] = {
    {"one lock", locked_make, locked_inc, locked_get, no_flush, locked_totals, locked_destroy},
    {"16 shards", sharded_make, sharded_inc, sharded_get, no_flush, sharded_totals,
     sharded_destroy},
    {"batched", locked_make, batched_inc, locked_get, batched_flush, locked_totals, locked_destroy},
    {"copy+swap", cow_make, cow_inc, cow_get, cow_flush, cow_totals, cow_destroy},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* ---- the benchmark ------------------------------------------------------ */

typedef struct run {
    const variant_t *v;
    void *map;
    int write_every;    /* 1: every op writes; 16: one op in 16 */
    gocc_chan_t *start; /* closed to start everybody at once */
    gocc_waitgroup_t wg;
} run_t;

typedef struct task_arg {
    run_t *run;
    unsigned seed;
    long read_sum; /* out: keeps the reads from being optimised away */
} task_arg_t;

static int next_key(unsigned *x) {
    *x = *x * 1664525u + 1013904223u;
    return (int)((*x >> 16) % K);
}

static int hammer(gocc_ctx_t *ctx, void *arg) {
    task_arg_t *a = arg;
    run_t *r = a->run;
    local_t l = {.n_pending = 0};
    unsigned x = a->seed;
    gocc_chan_recv(r->start, NULL, ctx); /* wait for the start */
    for (int i = 0; i < OPS; i++) {
        int key = next_key(&x);
        if (i % r->write_every == 0)
            r->v->inc(r->map, &l, key);
        else
            a->read_sum += r->v->get(r->map, key);
    }
    r->v->flush(r->map, &l);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* Run one variant on one workload; return Mops/s, or -1 on failure. */
static double measure(const variant_t *v, int write_every, const long want[K]) {
    run_t r = {.v = v, .map = v->make(), .write_every = write_every, .start = gocc_chan_new(0, 0)};
    task_arg_t args[TASKS];
    double mops = -1;
    if (r.map && r.start) {
        int started = 0;
        for (int t = 0; t < TASKS; t++) {
            args[t] = (task_arg_t){.run = &r, .seed = 12345u * (unsigned)(t + 1)};
            gocc_waitgroup_add(&r.wg, 1);
            if (gocc_go(hammer, NULL, &args[t]) == 0)
                started++;
            else
                gocc_waitgroup_done(&r.wg);
        }
        int64_t t0 = gocc_now();
        gocc_chan_close(r.start);
        gocc_waitgroup_wait(&r.wg, NULL);
        int64_t elapsed = gocc_now() - t0;
        check(started == TASKS, "started the tasks");
        check(example_tasks_exit_within(5 * GOCC_SECOND), "every task returned");

        long got[K];
        v->totals(r.map, got);
        check(memcmp(got, want, sizeof got) == 0, "every key counts every increment made to it");
        if (started == TASKS && memcmp(got, want, sizeof got) == 0)
            mops = (double)TASKS * OPS / ((double)(elapsed > 0 ? elapsed : 1) / 1e3);
    } else {
        check(false, "made the map");
    }
    if (r.map) v->destroy(r.map);
    gocc_chan_release(r.start);
    return mops;
}

/* ---- L07: the four strategies, side by side ------------------------ */

static void l07_contention(void) {
    static const struct {
        const char *name;
        int write_every;
    } workloads[] = {{"write-heavy", 1}, {"read-mostly", 16}};

    printf("L07 contention: %d tasks x %d ops on %d keys, Mops/s (higher is better):\n", TASKS, OPS,
           K);
    for (size_t w = 0; w < 2; w++) {
        long want[K] = {0}; /* replay the key sequences */
        for (int t = 0; t < TASKS; t++) {
            unsigned x = 12345u * (unsigned)(t + 1);
            for (int i = 0; i < OPS; i++) {
                int key = next_key(&x);
                if (i % workloads[w].write_every == 0) want[key]++;
            }
        }
        char line[256];
        int len = snprintf(line, sizeof line, "L07   %-11s (1 write in %2d):", workloads[w].name,
                           workloads[w].write_every);
        for (size_t v = 0; v < N_VARIANTS && len < (int)sizeof line; v++) {
            double mops = -1;
            for (int trial = 0; trial < TRIALS; trial++) {
                double m = measure(&variants[v], workloads[w].write_every, want);
                if (m > mops) mops = m;
            }
            len += snprintf(line + len, sizeof line - (size_t)len, "%s %s %.1f", v ? " |" : "",
                            variants[v].name, mops);
        }
        puts(line);
    }
}

int main(void) {
    l07_contention();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("L07 %s: counts exact in every variant, %zu tasks live at the end\n",
           example_failures ? "FAILED" : "ok", gocc_tasks_live());
    return example_failures ? 1 : 0;
}
