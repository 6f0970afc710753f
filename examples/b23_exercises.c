/*
 * b23_exercises.c - B23 (chapter 9, "Exercises"), exercises 2 to 5, one
 * section each (exercise 1, the token-bucket rate limiter, is
 * b23_rate_limiter.c):
 *
 * b23_priority_queue: "a concurrent priority queue with fair scheduling".
 *   Three priority levels (high, normal, low) with a FIFO each, and
 *   weighted round-robin between them (weights 4:2:1): with every level
 *   backlogged a round serves 4 high, 2 normal and 1 low, so low priority
 *   is slowed, never starved; a level with nothing queued gives its turn
 *   away. Push(ctx) blocks while the queue is full, Pop(ctx) while it is
 *   empty; Close (after the last Push, as for a Go channel) makes Pop
 *   drain and then return "closed". Deterministic part: 60 items per level
 *   queued, the first 70 pops are exactly 40 high, 20 normal, 10 low
 *   (strict priority would give 70, 0, 0), and each level comes out in
 *   FIFO order. Concurrent part: 3 producers (one per level) x 200 items
 *   through a queue of 16, 2 consumers: every item exactly once, each
 *   consumer sees each level in order.
 * b23_mapreduce: "a generic MapReduce framework using modern patterns".
 *   mapreduce(ctx, inputs, map, reduce, mappers, reducers): mapper tasks
 *   take inputs by index and emit (key, value) pairs, routed by key hash
 *   to one channel per reducer; each reducer folds its partition into a
 *   table only it touches; all tasks run in one error group, so a map
 *   error cancels everything and is what mapreduce returns; a closer task
 *   closes the partitions when the mappers are done. Word count over 180
 *   lines: the same counts as a sequential loop. Then a map function that
 *   fails on one input: mapreduce returns its error, no task is left.
 * b23_actors: "an actor model using channels and goroutines". 8 bank
 *   account actors, each a task that alone owns its balance (a plain long:
 *   no lock) and serves its mailbox (a channel) one message at a time:
 *   deposit (tell), withdraw and balance (ask: the reply comes on the
 *   asker's own channel). 4 client tasks x 250 transfers (ask withdraw,
 *   then tell deposit on success). The money is conserved, no balance is
 *   negative, every message was handled once; closing the mailboxes stops
 *   the actors.
 * b23_lru_cache: "an LRU cache safe for concurrent access". A hash map plus
 *   a doubly linked recency list under one mutex; Get moves the entry to
 *   the front, Put inserts there and evicts from the back when full.
 *   Deterministic part: capacity 3, put 1 2 3, get 1, put 4 evicts 2.
 *   Concurrent part: 4 tasks x 5000 cache-aside lookups of 64 keys in a
 *   cache of 32: every hit has the right value, hits + misses = lookups,
 *   inserts - evictions = len = 32, and the list and map agree at the end.
 *
 * Go -> C: goroutines are gocc_go / gocc_group tasks; channels gocc
 * channels (a Pop's "is there an item" is a token channel, a Push's "is
 * there room" a gocc_sem); sync.Mutex a pthread mutex; Go generics become
 * callbacks with string keys and long values (MapReduce) or plain structs.
 *
 * Checks: as listed per section, and gocc_tasks_live() == 0 at the end.
 * Exit 1 if wrong.
 */
#include <gocc.h>

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B23", ok, what)

/* Start fn(ctx, args + i * size) for i < n under wg; returns how many
 * started (the others are done()'d at once). */
static int start_tasks(gocc_waitgroup_t *wg, int n, gocc_fn fn, gocc_ctx_t *ctx, void *args,
                       size_t size) {
    int started = 0;
    for (int i = 0; i < n; i++) {
        gocc_waitgroup_add(wg, 1);
        if (gocc_go(fn, ctx, (char *)args + (size_t)i * size) == 0)
            started++;
        else
            gocc_waitgroup_done(wg);
    }
    return started;
}

/* ======================================================================== */
/* 2. A concurrent priority queue with fair scheduling                       */
/* ======================================================================== */

enum { HIGH, NORMAL, LOW, LEVELS };
static const int weights[LEVELS] = {4, 2, 1};
static const char *const level_name[LEVELS] = {"high", "normal", "low"};

typedef struct pq_item {
    int level;
    int seq; /* per level, from 0 */
} pq_item_t;

/*
 * Invariant: tokens in `items` <= items in the FIFOs <= cap - free weight
 * of `slots`. Push takes a slot, inserts, then sends a token; Pop takes a
 * token, removes, then gives the slot back. So a Pop holding a token always
 * finds an item, and the token send never blocks (items has capacity cap).
 */
typedef struct fair_pq {
    int cap;
    pthread_mutex_t mu;      /* protects fifo, head, len, credits */
    pq_item_t *fifo[LEVELS]; /* rings of cap items */
    int head[LEVELS], len[LEVELS];
    int credits[LEVELS]; /* what each level may still take this round */
    gocc_sem_t *slots;   /* free places */
    gocc_chan_t *items;  /* one token per queued item; closed by pq_close */
} fair_pq_t;

static void pq_free(fair_pq_t *q) {
    if (!q) return;
    for (int l = 0; l < LEVELS; l++) free(q->fifo[l]);
    gocc_sem_free(q->slots);
    gocc_chan_release(q->items);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static fair_pq_t *pq_new(int cap) {
    fair_pq_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    for (int l = 0; l < LEVELS; l++) q->fifo[l] = calloc((size_t)cap, sizeof(pq_item_t));
    q->slots = gocc_sem_new(cap);
    q->items = gocc_chan_new(0, (size_t)cap);
    if (!q->fifo[HIGH] || !q->fifo[NORMAL] || !q->fifo[LOW] || !q->slots || !q->items) {
        pq_free(q);
        return NULL;
    }
    return q;
}

static int pq_push(fair_pq_t *q, pq_item_t it, gocc_ctx_t *ctx) {
    int rc = gocc_sem_acquire(q->slots, 1, ctx); /* wait for room */
    if (rc != 0) return rc;
    pthread_mutex_lock(&q->mu);
    int l = it.level;
    q->fifo[l][(q->head[l] + q->len[l]) % q->cap] = it;
    q->len[l]++;
    pthread_mutex_unlock(&q->mu);
    return gocc_chan_try_send(q->items, NULL); /* never full: see the invariant */
}

/* The weighted round-robin. Caller holds q->mu and an item is queued. */
static int pick_level_locked(fair_pq_t *q) {
    for (int pass = 0; pass < 2; pass++) {
        for (int l = 0; l < LEVELS; l++) /* in priority order, within the round's credits */
            if (q->len[l] > 0 && q->credits[l] > 0) return l;
        for (int l = 0; l < LEVELS; l++) q->credits[l] = weights[l]; /* a new round */
    }
    return -1; /* (no item: cannot happen while the invariant holds) */
}

/* Pop: 0 and *out; GOCC_ECLOSED when closed and drained; ctx's error. */
static int pq_pop(fair_pq_t *q, pq_item_t *out, gocc_ctx_t *ctx) {
    int rc = gocc_chan_recv(q->items, NULL, ctx); /* wait for an item */
    if (rc != 0) return rc;
    pthread_mutex_lock(&q->mu);
    int l = pick_level_locked(q);
    if (l >= 0) {
        *out = q->fifo[l][q->head[l]];
        q->head[l] = (q->head[l] + 1) % q->cap;
        q->len[l]--;
        q->credits[l]--;
    }
    pthread_mutex_unlock(&q->mu);
    gocc_sem_release(q->slots, 1);
    return l >= 0 ? 0 : GOCC_EINVAL;
}

/* After the last Push: Pops drain what is queued, then get GOCC_ECLOSED. */
static void pq_close(fair_pq_t *q) { gocc_chan_close(q->items); }

#define PQ_PRODUCED 200
#define PQ_CONSUMERS 2

typedef struct pq_producer {
    fair_pq_t *q;
    int level;
    gocc_waitgroup_t *wg;
    int pushed;
} pq_producer_t;

static int pq_producer_task(gocc_ctx_t *ctx, void *arg) {
    pq_producer_t *p = arg;
    for (int i = 0; i < PQ_PRODUCED; i++) {
        if (pq_push(p->q, (pq_item_t){p->level, i}, ctx) != 0) break;
        p->pushed++;
    }
    gocc_waitgroup_done(p->wg);
    return 0;
}

typedef struct pq_consumer {
    fair_pq_t *q;
    atomic_int *seen; /* [LEVELS * PQ_PRODUCED]: times each item was popped */
    gocc_waitgroup_t *wg;
    int popped, out_of_order, end_rc;
} pq_consumer_t;

static int pq_consumer_task(gocc_ctx_t *ctx, void *arg) {
    pq_consumer_t *c = arg;
    int last[LEVELS] = {-1, -1, -1};
    pq_item_t it;
    while ((c->end_rc = pq_pop(c->q, &it, ctx)) == 0) {
        c->popped++;
        if (it.seq <= last[it.level]) c->out_of_order++; /* my pops of a FIFO: increasing */
        last[it.level] = it.seq;
        atomic_fetch_add(&c->seen[it.level * PQ_PRODUCED + it.seq], 1);
    }
    gocc_waitgroup_done(c->wg);
    return 0;
}

static void b23_priority_queue(void) {
    /* Deterministic: 60 per level queued, then popped by one consumer. */
    fair_pq_t *q = pq_new(3 * 60);
    if (!q) {
        check(false, "made the queue");
        return;
    }
    for (int i = 0; i < 60; i++)
        for (int l = 0; l < LEVELS; l++) pq_push(q, (pq_item_t){l, i}, NULL);
    int first70[LEVELS] = {0}, next_seq[LEVELS] = {0}, order_ok = 1, total = 0;
    char first7[8] = {0};
    pq_close(q);
    pq_item_t it;
    while (pq_pop(q, &it, NULL) == 0) {
        if (total < 70) first70[it.level]++;
        if (total < 7) first7[total] = "HNL"[it.level];
        if (it.seq != next_seq[it.level]++) order_ok = 0;
        total++;
    }
    check(first70[HIGH] == 40 && first70[NORMAL] == 20 && first70[LOW] == 10,
          "the first 70 pops are 40 high, 20 normal, 10 low (weights 4:2:1)");
    check(strcmp(first7, "HHHHNNL") == 0, "one round is HHHHNNL");
    check(order_ok && total == 180, "all 180 came out, each level in FIFO order");
    pq_free(q);

    /* Concurrent: 3 producers, 2 consumers, a queue of 16. */
    static atomic_int seen[LEVELS * PQ_PRODUCED];
    gocc_waitgroup_t producers = GOCC_WAITGROUP_INIT, consumers = GOCC_WAITGROUP_INIT;
    pq_producer_t p[LEVELS];
    pq_consumer_t c[PQ_CONSUMERS];
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_SECOND); /* a broken run ends */
    q = ctx ? pq_new(16) : NULL;
    if (!q) {
        check(false, "made the queue");
        gocc_ctx_release(ctx);
        return;
    }
    for (int l = 0; l < LEVELS; l++) p[l] = (pq_producer_t){.q = q, .level = l, .wg = &producers};
    for (int i = 0; i < PQ_CONSUMERS; i++)
        c[i] = (pq_consumer_t){.q = q, .seen = seen, .wg = &consumers};
    int started = start_tasks(&consumers, PQ_CONSUMERS, pq_consumer_task, ctx, c, sizeof c[0]);
    started += start_tasks(&producers, LEVELS, pq_producer_task, ctx, p, sizeof p[0]);
    gocc_waitgroup_wait(&producers, NULL);
    pq_close(q); /* the producers are done: the consumers drain and stop */
    gocc_waitgroup_wait(&consumers, NULL);
    int popped = 0, out_of_order = 0, once = 0, clean_end = 0;
    for (int i = 0; i < PQ_CONSUMERS; i++) {
        popped += c[i].popped;
        out_of_order += c[i].out_of_order;
        clean_end += c[i].end_rc == GOCC_ECLOSED;
    }
    for (int i = 0; i < LEVELS * PQ_PRODUCED; i++) once += atomic_load(&seen[i]) == 1;
    check(started == LEVELS + PQ_CONSUMERS, "started the producers and consumers");
    check(p[HIGH].pushed + p[NORMAL].pushed + p[LOW].pushed == 600 && popped == 600 && once == 600,
          "600 pushed, 600 popped, each item exactly once");
    check(out_of_order == 0, "each consumer saw each level in FIFO order");
    check(clean_end == PQ_CONSUMERS, "the consumers stopped on Close, after draining");
    printf("B23 priority queue: 60 queued per level, first 70 pops %d %s / %d %s / %d %s "
           "(a round: %s; strict priority would give 70/0/0); 3 producers x %d, %d consumers, "
           "queue of 16: %d popped, each once, in order\n",
           first70[HIGH], level_name[HIGH], first70[NORMAL], level_name[NORMAL], first70[LOW],
           level_name[LOW], first7, PQ_PRODUCED, PQ_CONSUMERS, popped);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    pq_free(q);
}

/* ======================================================================== */
/* 3. MapReduce                                                              */
/* ======================================================================== */

#define KEY_MAX 32

typedef struct kv {
    char key[KEY_MAX];
    long value;
} kv_t;

/* A string -> long table, owned by one task at a time. */
#define TABLE_BUCKETS 128
typedef struct tnode {
    struct tnode *next;
    kv_t kv;
} tnode_t;
typedef struct table {
    tnode_t *b[TABLE_BUCKETS];
    size_t len;
} table_t;

static uint32_t hash_str(const char *s) { /* FNV-1a */
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static tnode_t *table_find(const table_t *t, const char *key) {
    tnode_t *n = t->b[hash_str(key) % TABLE_BUCKETS];
    while (n && strcmp(n->kv.key, key) != 0) n = n->next;
    return n;
}

typedef long (*reduce_fn)(long acc, long value);

/* Fold `value` into key's entry. GOCC_ENOMEM when a new entry cannot be made. */
static int table_fold(table_t *t, const char *key, long value, reduce_fn reduce) {
    tnode_t *n = table_find(t, key);
    if (n) {
        n->kv.value = reduce(n->kv.value, value);
        return 0;
    }
    if (!(n = calloc(1, sizeof *n))) return GOCC_ENOMEM;
    snprintf(n->kv.key, KEY_MAX, "%s", key);
    n->kv.value = value;
    tnode_t **head = &t->b[hash_str(key) % TABLE_BUCKETS];
    n->next = *head;
    *head = n;
    t->len++;
    return 0;
}

static void table_clear(table_t *t) {
    for (int i = 0; i < TABLE_BUCKETS; i++) {
        for (tnode_t *n = t->b[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
        t->b[i] = NULL;
    }
    t->len = 0;
}

/* emit(emitter, key, value): what a map function calls per pair. */
typedef void (*emit_fn)(void *emitter, const char *key, long value);
/* map(input, emit, emitter): 0, or an error that stops the whole job. */
typedef int (*map_fn)(const void *input, emit_fn emit, void *emitter);

#define MAX_REDUCERS 8

typedef struct mr_job {
    const void *const *inputs;
    size_t n;
    map_fn map;
    reduce_fn reduce;
    int reducers;
    atomic_size_t next;              /* the next input to map */
    gocc_chan_t *part[MAX_REDUCERS]; /* kv_t channels, one per reducer */
    table_t out[MAX_REDUCERS];       /* reducer r's; read after the group's wait */
    gocc_waitgroup_t mappers;
    gocc_ctx_t *ctx; /* the group's */
} mr_job_t;

typedef struct emitter {
    mr_job_t *job;
    int rc; /* the first failed send */
} emitter_t;

static void mr_emit(void *arg, const char *key, long value) {
    emitter_t *e = arg;
    if (e->rc) return;
    kv_t kv = {.value = value};
    snprintf(kv.key, KEY_MAX, "%s", key);
    int r = (int)(hash_str(kv.key) % (uint32_t)e->job->reducers); /* the key's partition */
    e->rc = gocc_chan_send(e->job->part[r], &kv, e->job->ctx);
}

static int mapper_task(gocc_ctx_t *ctx, void *arg) {
    mr_job_t *job = arg;
    int rc = 0;
    size_t i;
    while (rc == 0 && (i = atomic_fetch_add(&job->next, 1)) < job->n) {
        if ((rc = gocc_ctx_err(ctx)) != 0) break;
        emitter_t e = {.job = job};
        rc = job->map(job->inputs[i], mr_emit, &e);
        if (rc == 0) rc = e.rc;
    }
    gocc_waitgroup_done(&job->mappers);
    return rc;
}

/* Closes the partitions once every mapper has returned. */
static int closer_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mr_job_t *job = arg;
    gocc_waitgroup_wait(&job->mappers, NULL); /* mappers always return: they watch ctx */
    for (int r = 0; r < job->reducers; r++) gocc_chan_close(job->part[r]);
    return 0;
}

typedef struct reducer_arg {
    mr_job_t *job;
    int r;
} reducer_arg_t;

static int reducer_task(gocc_ctx_t *ctx, void *arg) {
    reducer_arg_t *ra = arg;
    mr_job_t *job = ra->job;
    kv_t kv;
    int rc;
    while ((rc = gocc_chan_recv(job->part[ra->r], &kv, ctx)) == 0)
        if ((rc = table_fold(&job->out[ra->r], kv.key, kv.value, job->reduce)) != 0) return rc;
    return rc == GOCC_ECLOSED ? 0 : rc;
}

/*
 * Run the job: `mappers` mapper tasks, `reducers` (<= MAX_REDUCERS) reducer
 * tasks and a closer in one error group under parent. @return 0 with
 * job->out[r] filled (the caller clears them), or the first task error.
 */
static int mapreduce(gocc_ctx_t *parent, mr_job_t *job, int mappers) {
    int rc = GOCC_ENOMEM;
    gocc_group_t *g = gocc_group_new(parent);
    reducer_arg_t ra[MAX_REDUCERS];
    job->mappers = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    atomic_store(&job->next, 0);
    for (int r = 0; r < job->reducers; r++) job->part[r] = gocc_chan_new(sizeof(kv_t), 64);
    for (int r = 0; r < job->reducers; r++)
        if (!job->part[r]) goto out;
    if (!g) goto out;
    job->ctx = gocc_group_ctx(g);
    for (int r = 0; r < job->reducers; r++) {
        ra[r] = (reducer_arg_t){job, r};
        if ((rc = gocc_group_go(g, reducer_task, &ra[r])) != 0) goto stop;
    }
    for (int m = 0; m < mappers; m++) {
        gocc_waitgroup_add(&job->mappers, 1);
        if ((rc = gocc_group_go(g, mapper_task, job)) != 0) {
            gocc_waitgroup_done(&job->mappers);
            goto stop;
        }
    }
    rc = gocc_group_go(g, closer_task, job);
stop:
    if (rc != 0) gocc_ctx_cancel(job->ctx); /* (a task could not start: stop the others) */
    int wait_rc = gocc_group_wait(g);
    if (rc == 0) rc = wait_rc;
    if (rc != 0)
        for (int r = 0; r < job->reducers; r++) table_clear(&job->out[r]);
out:
    gocc_group_free(g);
    for (int r = 0; r < job->reducers; r++) {
        gocc_chan_release(job->part[r]);
        job->part[r] = NULL;
    }
    return rc;
}

/* Word count: lower-cased runs of letters, each emitted with 1. */
static int count_words(const void *input, emit_fn emit, void *emitter) {
    const char *s = input;
    char word[KEY_MAX];
    while (*s) {
        size_t n = 0;
        while (*s && !isalpha((unsigned char)*s)) s++;
        while (*s && isalpha((unsigned char)*s)) {
            if (n < KEY_MAX - 1) word[n++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (n) {
            word[n] = 0;
            emit(emitter, word, 1);
        }
    }
    return 0;
}

enum { ERR_BAD_INPUT = -20001 };
static const char *bad_input; /* count_or_fail fails on this one */

static int count_or_fail(const void *input, emit_fn emit, void *emitter) {
    return input == bad_input ? ERR_BAD_INPUT : count_words(input, emit, emitter);
}

static long sum(long acc, long value) { return acc + value; }

/* For the sequential reference. */
static void table_emit(void *arg, const char *key, long value) { table_fold(arg, key, value, sum); }

static const char *const lines[] = {
    "Go's concurrency primitives have evolved far beyond basic goroutines and channels.",
    "Modern patterns like error groups, typed atomics, and sophisticated synchronization "
    "primitives make concurrent Go code more robust and maintainable.",
    "The key is knowing when to use each pattern: channels for orchestration, atomics for "
    "simple state, locks for complex state, and higher-level patterns for coordination.",
    "Rate Limiter: Implement a token bucket rate limiter using channels and goroutines.",
    "Priority Queue: Build a concurrent priority queue with fair scheduling.",
    "MapReduce: Create a generic MapReduce framework using modern patterns.",
    "Actor System: Implement an actor model using channels and goroutines.",
    "Concurrent Cache: Build an LRU cache safe for concurrent access.",
    "Next, we'll explore how testing in Go has evolved with fuzzing, better benchmarks, and "
    "sophisticated test helpers.",
};
#define LINES (sizeof lines / sizeof lines[0])
#define COPIES 20
#define MAPPERS 4
#define REDUCERS 3

static void b23_mapreduce(void) {
    static const void *inputs[LINES * COPIES];
    for (size_t i = 0; i < LINES * COPIES; i++) inputs[i] = lines[i % LINES];
    static mr_job_t job; /* static: zeroed, and its tables are big */
    job.inputs = inputs;
    job.n = LINES * COPIES;
    job.map = count_words;
    job.reduce = sum;
    job.reducers = REDUCERS;

    table_t want = {0};
    for (size_t i = 0; i < job.n; i++) count_words(inputs[i], table_emit, &want);

    int rc = mapreduce(NULL, &job, MAPPERS);
    size_t distinct = 0, matched = 0, misplaced = 0;
    long words = 0, want_words = 0;
    for (int r = 0; r < REDUCERS; r++) distinct += job.out[r].len;
    for (int i = 0; i < TABLE_BUCKETS; i++) {
        for (tnode_t *n = want.b[i]; n; n = n->next) {
            want_words += n->kv.value;
            int r = (int)(hash_str(n->kv.key) % REDUCERS);
            tnode_t *got = table_find(&job.out[r], n->kv.key);
            matched += got && got->kv.value == n->kv.value;
            misplaced += !got;
        }
    }
    for (int r = 0; r < REDUCERS; r++)
        for (int i = 0; i < TABLE_BUCKETS; i++)
            for (tnode_t *n = job.out[r].b[i]; n; n = n->next) words += n->kv.value;
    tnode_t *the = table_find(&job.out[hash_str("the") % REDUCERS], "the");
    tnode_t *channels = table_find(&job.out[hash_str("channels") % REDUCERS], "channels");
    check(rc == 0, "mapreduce returned nil");
    check(distinct == want.len && matched == want.len && misplaced == 0,
          "the same distinct words and counts as a sequential count, each in its key's partition");
    check(words == want_words && words > 0, "the same total");
    printf("B23 mapreduce: %zu lines, %d mappers, %d reducers: %ld words, %zu distinct "
           "('the' x %ld, 'channels' x %ld), equal to the sequential count: %s\n",
           job.n, MAPPERS, REDUCERS, words, distinct, the ? the->kv.value : 0,
           channels ? channels->kv.value : 0, matched == want.len ? "yes" : "no");
    for (int r = 0; r < REDUCERS; r++) table_clear(&job.out[r]);
    table_clear(&want);

    /* A map error cancels the job. */
    bad_input = lines[3];
    job.map = count_or_fail;
    rc = mapreduce(NULL, &job, MAPPERS);
    bool none_left = example_tasks_exit_within(5 * GOCC_SECOND);
    check(rc == ERR_BAD_INPUT, "a failing map made mapreduce return its error");
    check(none_left, "and every mapper, reducer and the closer returned");
    printf("B23 mapreduce error: a map function failing on one line -> mapreduce returns it "
           "(%s), %zu tasks left\n",
           rc == ERR_BAD_INPUT ? "bad input" : gocc_strerror(rc), gocc_tasks_live());
}

/* ======================================================================== */
/* 4. An actor system                                                        */
/* ======================================================================== */

typedef enum { MSG_DEPOSIT, MSG_WITHDRAW, MSG_BALANCE } msg_kind_t;

typedef struct msg {
    msg_kind_t kind;
    long amount;
    gocc_chan_t *reply; /* ask: a long goes back here (capacity 1) */
} msg_t;

/* An actor's state belongs to its task alone: balance and handled are
 * plain fields, read by others only after the task has returned. */
typedef struct actor {
    gocc_chan_t *mailbox;
    long balance;
    long handled;
    gocc_waitgroup_t *wg;
} actor_t;

static int actor_task(gocc_ctx_t *ctx, void *arg) {
    actor_t *a = arg;
    msg_t m;
    while (gocc_chan_recv(a->mailbox, &m, ctx) == 0) { /* until the mailbox closes */
        a->handled++;
        long reply = 0;
        switch (m.kind) {
        case MSG_DEPOSIT: a->balance += m.amount; break;
        case MSG_WITHDRAW:
            if ((reply = a->balance >= m.amount)) a->balance -= m.amount;
            break;
        case MSG_BALANCE: reply = a->balance; break;
        }
        if (m.reply) gocc_chan_send(m.reply, &reply, ctx); /* never blocks: capacity 1 */
    }
    gocc_waitgroup_done(a->wg);
    return 0;
}

static int tell(actor_t *a, msg_t m, gocc_ctx_t *ctx) {
    return gocc_chan_send(a->mailbox, &m, ctx);
}

/* Ask: send, then wait for the reply on my own channel. */
static int ask(actor_t *a, msg_t m, gocc_chan_t *reply, long *out, gocc_ctx_t *ctx) {
    m.reply = reply;
    int rc = gocc_chan_send(a->mailbox, &m, ctx);
    return rc ? rc : gocc_chan_recv(reply, out, ctx);
}

#define ACCOUNTS 8
#define INITIAL 1000
#define CLIENTS 4
#define TRANSFERS 250

typedef struct client {
    actor_t *accounts;
    gocc_waitgroup_t *wg;
    uint32_t rng;
    long sent, done, refused, errors;
} client_t;

static uint32_t xorshift(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int client_task(gocc_ctx_t *ctx, void *arg) {
    client_t *c = arg;
    gocc_chan_t *reply = gocc_chan_new(sizeof(long), 1);
    for (int i = 0; reply && i < TRANSFERS; i++) {
        int from = (int)(xorshift(&c->rng) % ACCOUNTS);
        int to = (from + 1 + (int)(xorshift(&c->rng) % (ACCOUNTS - 1))) % ACCOUNTS;
        long amount = 1 + (long)(xorshift(&c->rng) % 300), ok = 0;
        c->sent++;
        if (ask(&c->accounts[from], (msg_t){MSG_WITHDRAW, amount, NULL}, reply, &ok, ctx) != 0) {
            c->errors++;
            break;
        }
        if (!ok) {
            c->refused++;
            continue;
        }
        c->sent++;
        if (tell(&c->accounts[to], (msg_t){MSG_DEPOSIT, amount, NULL}, ctx) != 0) {
            c->errors++;
            break;
        }
        c->done++;
    }
    if (!reply) c->errors++;
    gocc_chan_release(reply);
    gocc_waitgroup_done(c->wg);
    return 0;
}

static void b23_actors(void) {
    actor_t accounts[ACCOUNTS];
    client_t clients[CLIENTS];
    gocc_waitgroup_t actors_wg = GOCC_WAITGROUP_INIT, clients_wg = GOCC_WAITGROUP_INIT;
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_SECOND); /* a broken run ends */
    gocc_chan_t *reply = gocc_chan_new(sizeof(long), 1);
    int made = 0;
    for (int i = 0; i < ACCOUNTS; i++) {
        accounts[i] = (actor_t){.mailbox = gocc_chan_new(sizeof(msg_t), 16),
                                .balance = INITIAL,
                                .wg = &actors_wg};
        made += accounts[i].mailbox != NULL;
    }
    if (!ctx || !reply || made != ACCOUNTS) {
        check(false, "made the mailboxes");
        goto out;
    }
    int started = start_tasks(&actors_wg, ACCOUNTS, actor_task, ctx, accounts, sizeof accounts[0]);
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = (client_t){.accounts = accounts, .wg = &clients_wg, .rng = 2463534242u + i};
    started += start_tasks(&clients_wg, CLIENTS, client_task, ctx, clients, sizeof clients[0]);
    gocc_waitgroup_wait(&clients_wg, NULL);

    long total = 0, sent = 0, done = 0, refused = 0, errors = 0, min_balance = INITIAL;
    for (int i = 0; i < ACCOUNTS; i++) { /* ask every actor its balance */
        long b = -1;
        if (ask(&accounts[i], (msg_t){MSG_BALANCE, 0, NULL}, reply, &b, ctx) != 0) errors++;
        total += b;
        sent++;
        if (b < min_balance) min_balance = b;
    }
    for (int i = 0; i < ACCOUNTS; i++) gocc_chan_close(accounts[i].mailbox); /* stop */
    gocc_waitgroup_wait(&actors_wg, NULL);
    long handled = 0, actor_total = 0;
    for (int i = 0; i < ACCOUNTS; i++) {
        handled += accounts[i].handled;
        actor_total += accounts[i].balance;
    }
    for (int i = 0; i < CLIENTS; i++) {
        sent += clients[i].sent;
        done += clients[i].done;
        refused += clients[i].refused;
        errors += clients[i].errors;
    }
    check(started == ACCOUNTS + CLIENTS && errors == 0, "every actor and client ran cleanly");
    check(done + refused == CLIENTS * TRANSFERS, "every transfer was done or refused");
    check(total == ACCOUNTS * INITIAL && actor_total == total, "the money is conserved");
    check(min_balance >= 0, "no balance went negative");
    check(handled == sent, "every message was handled exactly once");
    printf("B23 actors: %d account actors, %d clients x %d transfers: %ld done, %ld refused "
           "(insufficient funds), %ld messages handled, total %ld (started with %d), lowest "
           "balance %ld\n",
           ACCOUNTS, CLIENTS, TRANSFERS, done, refused, handled, total, ACCOUNTS * INITIAL,
           min_balance);
out:
    gocc_ctx_cancel(ctx);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the actors and clients returned");
    for (int i = 0; i < ACCOUNTS; i++) gocc_chan_release(accounts[i].mailbox);
    gocc_chan_release(reply);
    gocc_ctx_release(ctx);
}

/* ======================================================================== */
/* 5. A concurrent LRU cache                                                 */
/* ======================================================================== */

#define LRU_BUCKETS 64

typedef struct lru_node {
    struct lru_node *prev, *next; /* recency list: head.next is the newest */
    struct lru_node *hnext;       /* hash chain */
    int key;
    long value;
} lru_node_t;

typedef struct lru {
    pthread_mutex_t mu; /* protects everything below */
    size_t cap, len;
    lru_node_t *buckets[LRU_BUCKETS];
    lru_node_t head; /* sentinel of the recency list */
    long hits, misses, inserts, evictions;
} lru_t;

static void lru_init(lru_t *c, size_t cap) {
    *c = (lru_t){.cap = cap};
    pthread_mutex_init(&c->mu, NULL);
    c->head.prev = c->head.next = &c->head;
}

static void lru_destroy(lru_t *c) {
    for (lru_node_t *n = c->head.next, *next; n != &c->head; n = next) {
        next = n->next;
        free(n);
    }
    pthread_mutex_destroy(&c->mu);
}

static lru_node_t **lru_slot(lru_t *c, int key) {
    lru_node_t **pp = &c->buckets[(unsigned)key % LRU_BUCKETS];
    while (*pp && (*pp)->key != key) pp = &(*pp)->hnext;
    return pp;
}

static void list_unlink(lru_node_t *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static void list_push_front(lru_t *c, lru_node_t *n) {
    n->prev = &c->head;
    n->next = c->head.next;
    c->head.next->prev = n;
    c->head.next = n;
}

static bool lru_get(lru_t *c, int key, long *value) {
    pthread_mutex_lock(&c->mu);
    lru_node_t *n = *lru_slot(c, key);
    if (n) {
        list_unlink(n); /* now the most recently used */
        list_push_front(c, n);
        *value = n->value;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return n != NULL;
}

/* Put: insert or update at the front; a full cache evicts its back. */
static int lru_put(lru_t *c, int key, long value) {
    int rc = 0;
    bool fresh = true; /* n must be hashed under key */
    pthread_mutex_lock(&c->mu);
    lru_node_t *n = *lru_slot(c, key);
    if (n) {
        list_unlink(n);
        fresh = false;
    } else if (c->len == c->cap) { /* reuse the least recently used node */
        n = c->head.prev;
        list_unlink(n);
        lru_node_t **pp = lru_slot(c, n->key);
        *pp = n->hnext;
        c->evictions++;
    } else if ((n = malloc(sizeof *n)) != NULL) {
        c->len++;
    } else {
        rc = GOCC_ENOMEM;
    }
    if (n) {
        if (fresh) {
            lru_node_t **pp = &c->buckets[(unsigned)key % LRU_BUCKETS];
            n->key = key;
            n->hnext = *pp;
            *pp = n;
            c->inserts++;
        }
        n->value = value;
        list_push_front(c, n);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* The list and the map hold the same len nodes. */
static bool lru_consistent(lru_t *c) {
    pthread_mutex_lock(&c->mu);
    size_t in_list = 0, in_map = 0;
    bool ok = true;
    for (lru_node_t *n = &c->head; n->next != &c->head; n = n->next) {
        ok = ok && n->next->prev == n && *lru_slot(c, n->next->key) == n->next;
        in_list++;
    }
    for (int b = 0; b < LRU_BUCKETS; b++)
        for (lru_node_t *n = c->buckets[b]; n; n = n->hnext) in_map++;
    ok = ok && in_list == c->len && in_map == c->len && c->len <= c->cap;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

#define LRU_TASKS 4
#define LOOKUPS 5000
#define LRU_KEYS 64
#define LRU_CAP 32

static long value_of(int key) { return 7L * key + 1; }

typedef struct lru_user {
    lru_t *c;
    gocc_waitgroup_t *wg;
    uint32_t rng;
    long lookups, wrong;
} lru_user_t;

static int lru_user_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    lru_user_t *u = arg;
    for (int i = 0; i < LOOKUPS; i++) {
        /* Skewed: half the lookups go to keys 0..7. */
        uint32_t r = xorshift(&u->rng);
        int key = (int)(r & 1 ? (r >> 1) % 8 : (r >> 1) % LRU_KEYS);
        long v;
        u->lookups++;
        if (lru_get(u->c, key, &v)) {
            if (v != value_of(key)) u->wrong++;
        } else {
            lru_put(u->c, key, value_of(key)); /* cache-aside: load and fill */
        }
    }
    gocc_waitgroup_done(u->wg);
    return 0;
}

static void b23_lru_cache(void) {
    lru_t c;
    lru_init(&c, 3);
    long v;
    lru_put(&c, 1, 10);
    lru_put(&c, 2, 20);
    lru_put(&c, 3, 30);
    bool got1 = lru_get(&c, 1, &v) && v == 10; /* 1 is now the newest; 2 the oldest */
    lru_put(&c, 4, 40);                        /* evicts 2 */
    bool has2 = lru_get(&c, 2, &v);
    bool has134 = lru_get(&c, 1, &v) && lru_get(&c, 3, &v) && lru_get(&c, 4, &v) && v == 40;
    check(got1 && !has2 && has134 && c.len == 3 && c.evictions == 1,
          "capacity 3: put 1 2 3, get 1, put 4 evicts 2 (the least recently used)");
    check(lru_consistent(&c), "list and map agree");
    lru_destroy(&c);

    lru_init(&c, LRU_CAP);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    lru_user_t u[LRU_TASKS];
    for (int i = 0; i < LRU_TASKS; i++)
        u[i] = (lru_user_t){.c = &c, .wg = &wg, .rng = 88172645u + 977u * i};
    int started = start_tasks(&wg, LRU_TASKS, lru_user_task, NULL, u, sizeof u[0]);
    gocc_waitgroup_wait(&wg, NULL);
    long lookups = 0, wrong = 0;
    for (int i = 0; i < LRU_TASKS; i++) {
        lookups += u[i].lookups;
        wrong += u[i].wrong;
    }
    pthread_mutex_lock(&c.mu);
    long hits = c.hits, misses = c.misses, inserts = c.inserts, evictions = c.evictions;
    size_t len = c.len;
    pthread_mutex_unlock(&c.mu);
    check(started == LRU_TASKS, "started the tasks");
    check(wrong == 0, "every hit returned its key's value");
    check(hits + misses == lookups && lookups == LRU_TASKS * LOOKUPS, "hits + misses == lookups");
    check(len == LRU_CAP && inserts - evictions == (long)len, "inserts - evictions == len == 32");
    check(lru_consistent(&c), "list and map agree after the concurrent run");
    printf("B23 lru cache: capacity 3: put 1 2 3, get 1, put 4 -> 2 evicted; %d tasks x %d "
           "lookups of %d keys, capacity %d: %ld hits (%.0f%%), %ld misses, %ld evictions, "
           "len %zu, %ld wrong values\n",
           LRU_TASKS, LOOKUPS, LRU_KEYS, LRU_CAP, hits, 100.0 * (double)hits / (double)lookups,
           misses, evictions, len, wrong);
    lru_destroy(&c);
}

int main(void) {
    b23_priority_queue();
    b23_mapreduce();
    b23_actors();
    b23_lru_cache();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B23 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
