/*
 * b01_concurrent_map.c - B01 (chapter 9, "sync.Map: The Concurrent Map"):
 * the old way, a map behind one sync.RWMutex (SafeMap.Get takes RLock),
 * next to the modern way, a concurrent map with sync.Map's operations:
 * Store, Load, LoadOrStore, LoadAndDelete, Range, Swap, CompareAndSwap.
 *
 * b01_usage: the seed's modernMapUsage() step by step on one map. Its last
 *   two lines hold a surprise the port shows as it is: the key was deleted
 *   by LoadAndDelete, so Swap(key, "newest-value") returns (nil, false),
 *   and CompareAndSwap(key, old = nil, "even-newer") then FAILS, because
 *   the key now holds "newest-value", not nil. CompareAndSwap with the
 *   value actually there succeeds.
 * b01_concurrent: 4 tasks, released together, race on the same map, once
 *   on the RWMutex map and once on the concurrent map: each stores its
 *   own 200 keys; all LoadOrStore the same 32 keys (one winner per key,
 *   everyone sees the winner's value); all bump one counter key by Load +
 *   CompareAndSwap retry loops; all Swap one key 100 times; after a
 *   barrier, all LoadAndDelete the same 32 keys (one of them gets each).
 *   Range then counts what is left. The run's time is printed, not
 *   checked.
 *
 * Go -> C: map[string]interface{} becomes a string-keyed hash table whose
 * values are borrowed `const void *` (an interface{} holding a pointer; the
 * map never frees a value, so a pointer a reader loaded stays valid after
 * a concurrent delete or swap, which Go gets from its GC). Keys are copied
 * (at most KEY_MAX - 1 bytes). CompareAndSwap compares values with ==, as
 * Go compares interface{} values: for pointers that is identity, so the
 * CAS counter below steps through the addresses of an array of ints.
 * sync.RWMutex is pthread_rwlock_t. One type, cmap_t, serves both sides:
 *   - cmap_new(1): Go's SafeMap, one rwlock over one table;
 *   - cmap_new(16): the stand-in for sync.Map, a STRIPED-LOCK map: 16
 *     shards, each its own rwlock and table, a key's shard picked by its
 *     hash, so tasks working on different keys rarely share a lock. Go's
 *     real sync.Map is different inside (a lock-free read-only map plus a
 *     locked dirty map, tuned for keys written once and read many times);
 *     the operations and their atomicity are the same.
 * Each operation holds exactly one shard lock, never two. Range copies one
 * shard's entries under its read lock and calls f after unlocking, so f may
 * call any map operation (Go allows that) and sees each key at most once.
 *
 * Checks: every step of b01_usage returns what Go's sync.Map returns; in
 * b01_concurrent, for both maps: every stored key reads back its value,
 * exactly one LoadOrStore per shared key stored (all callers agree on the
 * value), the counter ends at exactly 4 x 250 increments, the Swap chain
 * hands back every swapped-in value exactly once, exactly one
 * LoadAndDelete per shared key found it, and Range counts exactly the
 * keys left. gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B01", ok, what)

/* ---- the map: n shards, each an rwlock over a chained hash table ------- */

#define KEY_MAX 32
#define BUCKETS 64 /* per shard */
#define MAX_SHARDS 16

typedef struct entry {
    struct entry *next;
    const void *value;
    char key[KEY_MAX];
} entry_t;

typedef struct shard {
    pthread_rwlock_t mu;
    entry_t *bucket[BUCKETS]; /* under mu */
    size_t count;             /* under mu */
} shard_t;

typedef struct cmap {
    size_t nshards; /* 1: SafeMap; 16: the striped sync.Map stand-in */
    shard_t shard[MAX_SHARDS];
} cmap_t;

static uint32_t hash_key(const char *k) { /* FNV-1a */
    uint32_t h = 2166136261u;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

static cmap_t *cmap_new(size_t nshards) {
    cmap_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->nshards = nshards;
    for (size_t i = 0; i < nshards; i++) pthread_rwlock_init(&m->shard[i].mu, NULL);
    return m;
}

static void cmap_free(cmap_t *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nshards; i++) {
        for (size_t b = 0; b < BUCKETS; b++) {
            entry_t *e = m->shard[i].bucket[b];
            while (e) {
                entry_t *next = e->next;
                free(e);
                e = next;
            }
        }
        pthread_rwlock_destroy(&m->shard[i].mu);
    }
    free(m);
}

/* The key's shard and bucket head. */
static shard_t *shard_of(cmap_t *m, const char *key, entry_t ***slot) {
    uint32_t h = hash_key(key);
    shard_t *s = &m->shard[h % m->nshards];
    *slot = &s->bucket[(h / MAX_SHARDS) % BUCKETS];
    return s;
}

/* The link pointing at key's entry (or at the NULL ending the chain).
 * Caller holds the shard's lock. */
static entry_t **find_locked(entry_t **slot, const char *key) {
    while (*slot && strcmp((*slot)->key, key) != 0) slot = &(*slot)->next;
    return slot;
}

/* Append a new entry at *link. Caller holds the write lock. */
static bool insert_locked(shard_t *s, entry_t **link, const char *key, const void *value) {
    entry_t *e = malloc(sizeof *e);
    if (!e) return false;
    e->next = NULL;
    e->value = value;
    snprintf(e->key, sizeof e->key, "%s", key);
    *link = e;
    s->count++;
    return true;
}

/* Load(key) (value, ok): read lock. */
static bool cmap_load(cmap_t *m, const char *key, const void **value) {
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_rdlock(&s->mu);
    entry_t *e = *find_locked(slot, key);
    const void *v = e ? e->value : NULL;
    pthread_rwlock_unlock(&s->mu);
    if (value) *value = v;
    return e != NULL;
}

/* Store(key, value). False only when out of memory or the key is too long. */
static bool cmap_store(cmap_t *m, const char *key, const void *value) {
    if (strlen(key) >= KEY_MAX) return false;
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_wrlock(&s->mu);
    entry_t **link = find_locked(slot, key);
    bool ok = true;
    if (*link)
        (*link)->value = value;
    else
        ok = insert_locked(s, link, key, value);
    pthread_rwlock_unlock(&s->mu);
    return ok;
}

/* LoadOrStore(key, value) (actual, loaded): the existing value and true, or
 * stores value and returns it with false. One write lock: no other
 * LoadOrStore can slip in between the look and the store. */
static bool cmap_load_or_store(cmap_t *m, const char *key, const void *value, const void **actual) {
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_wrlock(&s->mu);
    entry_t **link = find_locked(slot, key);
    bool loaded = *link != NULL;
    const void *v = value;
    if (loaded)
        v = (*link)->value;
    else if (strlen(key) >= KEY_MAX || !insert_locked(s, link, key, value))
        v = NULL; /* not stored */
    pthread_rwlock_unlock(&s->mu);
    if (actual) *actual = v;
    return loaded;
}

/* LoadAndDelete(key) (value, loaded). */
static bool cmap_load_and_delete(cmap_t *m, const char *key, const void **value) {
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_wrlock(&s->mu);
    entry_t **link = find_locked(slot, key);
    entry_t *e = *link;
    const void *v = NULL;
    if (e) {
        v = e->value;
        *link = e->next;
        s->count--;
    }
    pthread_rwlock_unlock(&s->mu);
    free(e);
    if (value) *value = v;
    return e != NULL;
}

/* Swap(key, value) (previous, loaded). */
static bool cmap_swap(cmap_t *m, const char *key, const void *value, const void **previous) {
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_wrlock(&s->mu);
    entry_t **link = find_locked(slot, key);
    bool loaded = *link != NULL;
    const void *old = NULL;
    if (loaded) {
        old = (*link)->value;
        (*link)->value = value;
    } else if (strlen(key) < KEY_MAX) {
        insert_locked(s, link, key, value);
    }
    pthread_rwlock_unlock(&s->mu);
    if (previous) *previous = old;
    return loaded;
}

/* CompareAndSwap(key, old, new) (swapped): only when the key is present and
 * holds old (compared with ==). */
static bool cmap_compare_and_swap(cmap_t *m, const char *key, const void *old, const void *new) {
    entry_t **slot;
    shard_t *s = shard_of(m, key, &slot);
    pthread_rwlock_wrlock(&s->mu);
    entry_t *e = *find_locked(slot, key);
    bool swapped = e && e->value == old;
    if (swapped) e->value = new;
    pthread_rwlock_unlock(&s->mu);
    return swapped;
}

/* Range(f): f(key, value, ud) for each key until f returns false. Each
 * shard's entries are copied under its read lock and f runs unlocked. */
typedef bool (*range_fn)(const char *key, const void *value, void *ud);

static void cmap_range(cmap_t *m, range_fn f, void *ud) {
    for (size_t i = 0; i < m->nshards; i++) {
        shard_t *s = &m->shard[i];
        pthread_rwlock_rdlock(&s->mu);
        size_t n = s->count;
        entry_t *copy = n ? malloc(n * sizeof *copy) : NULL;
        size_t k = 0;
        for (size_t b = 0; copy && b < BUCKETS; b++)
            for (entry_t *e = s->bucket[b]; e; e = e->next) copy[k++] = *e;
        pthread_rwlock_unlock(&s->mu);
        bool go_on = true;
        for (size_t j = 0; j < k && go_on; j++) go_on = f(copy[j].key, copy[j].value, ud);
        free(copy);
        if (!go_on) return;
    }
}

/* ---- b01_usage: modernMapUsage() --------------------------------------- */

static const char *str(const void *v) { return v ? (const char *)v : "<nil>"; }

static bool print_pair(const char *key, const void *value, void *ud) {
    int *seen = ud;
    printf("B01 usage:   Range visits %s: %s\n", key, str(value));
    return ++*seen < 2; /* return false: stop after two */
}

static void b01_usage(void) {
    cmap_t *cache = cmap_new(MAX_SHARDS); /* var cache sync.Map */
    if (!cache) {
        check(false, "made the map");
        return;
    }
    const void *val, *actual, *old;
    static const char value[] = "value", new_value[] = "new-value", newest[] = "newest-value",
                      even_newer[] = "even-newer";

    cmap_store(cache, "key", value);
    bool ok = cmap_load(cache, "key", &val);
    check(ok && val == value, "Load after Store returns the stored value");
    printf("B01 usage: Store(key, value); Load(key) = %s, %s\n", str(val), ok ? "true" : "false");

    bool loaded = cmap_load_or_store(cache, "key", new_value, &actual);
    check(loaded && actual == value, "LoadOrStore on a present key loads and stores nothing");
    printf("B01 usage: LoadOrStore(key, new-value) = %s, loaded %s: already existed\n", str(actual),
           loaded ? "true" : "false");

    loaded = cmap_load_and_delete(cache, "key", &val);
    bool still = cmap_load(cache, "key", NULL);
    check(loaded && val == value && !still, "LoadAndDelete returns the value and removes the key");
    printf("B01 usage: LoadAndDelete(key) = %s, loaded %s; Load(key) afterwards: ok %s\n", str(val),
           loaded ? "true" : "false", still ? "true" : "false");

    /* The seed ranges over an empty map here; three keys make it visible,
     * and f's false return (stop) is shown too. */
    static const char one[] = "1", two[] = "2", three[] = "3";
    cmap_store(cache, "a", one);
    cmap_store(cache, "b", two);
    cmap_store(cache, "c", three);
    int seen = 0;
    cmap_range(cache, print_pair, &seen);
    check(seen == 2, "Range stops when f returns false");
    printf("B01 usage: Range over a, b, c stopped after %d keys (f returned false)\n", seen);

    loaded = cmap_swap(cache, "key", newest, &old);
    check(!loaded && old == NULL, "Swap on a deleted key: old is nil, loaded false");
    printf("B01 usage: Swap(key, newest-value) = %s, loaded %s (LoadAndDelete removed key)\n",
           str(old), loaded ? "true" : "false");

    bool swapped = cmap_compare_and_swap(cache, "key", old, even_newer);
    cmap_load(cache, "key", &val);
    check(!swapped && val == newest, "CompareAndSwap(key, nil, ...) fails: key holds newest-value");
    printf("B01 usage: CompareAndSwap(key, %s, even-newer) = %s as in the seed: key holds %s\n",
           str(old), swapped ? "true" : "false", str(val));

    swapped = cmap_compare_and_swap(cache, "key", newest, even_newer);
    cmap_load(cache, "key", &val);
    check(swapped && val == even_newer, "CompareAndSwap with the present value swaps");
    printf("B01 usage: CompareAndSwap(key, newest-value, even-newer) = %s; Load(key) = %s\n",
           swapped ? "true" : "false", str(val));
    cmap_free(cache);
}

/* ---- b01_concurrent: 4 tasks on one map -------------------------------- */

#define TASKS 4
#define OWN 200   /* keys each task stores */
#define SHARED 32 /* keys all tasks LoadOrStore, then LoadAndDelete */
#define BUMPS 250 /* CAS increments per task */
#define SWAPS 100 /* Swaps per task */

typedef struct run run_t;

typedef struct worker {
    run_t *run;
    int id;
    char mine[SHARED];              /* &mine[i]: this task's LoadOrStore value for key i */
    const void *winner[SHARED];     /* what LoadOrStore returned */
    int stored;                     /* LoadOrStores that stored */
    int deleted;                    /* LoadAndDeletes that found the key */
    int own_ok;                     /* own keys that read back right */
    char swap_val[SWAPS];           /* &swap_val[j]: the j-th value this task swaps in */
    const void *swapped_out[SWAPS]; /* what each Swap returned */
    int cas_retries;
} worker_t;

struct run {
    cmap_t *m;
    gocc_chan_t *start;                /* closed once all tasks exist: they race from here */
    gocc_waitgroup_t loaded_or_stored; /* phase barrier: LoadAndDelete after all LoadOrStores */
    gocc_chan_t *phase2;               /* closed when every task passed phase 1 */
    char own_val[TASKS][OWN];          /* &own_val[t][i]: value of key "t<t>k<i>" */
    int counter[TASKS * BUMPS + 1];    /* &counter[n]: the counter key holding n */
    worker_t w[TASKS];
};

static int map_worker(gocc_ctx_t *ctx, void *arg) {
    worker_t *w = arg;
    run_t *r = w->run;
    char key[KEY_MAX];

    gocc_chan_recv(r->start, NULL, ctx);
    for (int i = 0; i < OWN; i++) { /* own keys: Store, Load back */
        snprintf(key, sizeof key, "t%dk%d", w->id, i);
        cmap_store(r->m, key, &r->own_val[w->id][i]);
    }
    for (int i = 0; i < SHARED; i++) { /* everyone wants key s<i> */
        snprintf(key, sizeof key, "s%d", i);
        w->stored += !cmap_load_or_store(r->m, key, &w->mine[i], &w->winner[i]);
    }
    for (int n = 0; n < BUMPS; n++) { /* counter++ by Load + CompareAndSwap */
        for (;;) {
            const void *cur;
            cmap_load(r->m, "counter", &cur);
            const int *c = cur;
            if (cmap_compare_and_swap(r->m, "counter", c, c + 1)) break;
            w->cas_retries++;
        }
    }
    for (int j = 0; j < SWAPS; j++) cmap_swap(r->m, "swapped", &w->swap_val[j], &w->swapped_out[j]);
    for (int i = 0; i < OWN; i++) {
        const void *v;
        snprintf(key, sizeof key, "t%dk%d", w->id, i);
        w->own_ok += cmap_load(r->m, key, &v) && v == &r->own_val[w->id][i];
    }

    gocc_waitgroup_done(&r->loaded_or_stored);
    gocc_chan_recv(r->phase2, NULL, ctx); /* every LoadOrStore is done */
    for (int i = 0; i < SHARED; i++) {
        snprintf(key, sizeof key, "s%d", i);
        w->deleted += cmap_load_and_delete(r->m, key, NULL);
    }
    return 0;
}

static bool count_key(const char *key, const void *value, void *ud) {
    (void)key;
    (void)value;
    ++*(int *)ud;
    return true;
}

/* Which swapped-in value v is: seen[u][j]++ for &r->w[u].swap_val[j];
 * false when v is none of them (compared with ==: pointers into different
 * arrays have no order in C). */
static bool tally_swap_value(run_t *r, const void *v, int seen[TASKS][SWAPS]) {
    for (int u = 0; u < TASKS; u++) {
        for (int j = 0; j < SWAPS; j++) {
            if (v == &r->w[u].swap_val[j]) {
                seen[u][j]++;
                return true;
            }
        }
    }
    return false;
}

/* The Swap chain: the values handed back, plus the one left in the map,
 * must be the initial value and every swapped-in value, each exactly once. */
static bool swap_chain_exact(run_t *r, const void *initial) {
    int seen[TASKS][SWAPS] = {{0}};
    int initial_seen = 0, strays = 0;
    const void *last = NULL;
    cmap_load(r->m, "swapped", &last);
    for (int t = 0; t <= TASKS; t++) {
        for (int j = 0; j < (t < TASKS ? SWAPS : 1); j++) {
            const void *v = t < TASKS ? r->w[t].swapped_out[j] : last;
            if (v == initial)
                initial_seen++;
            else
                strays += !tally_swap_value(r, v, seen);
        }
    }
    int once = 0;
    for (int u = 0; u < TASKS; u++)
        for (int j = 0; j < SWAPS; j++) once += seen[u][j] == 1;
    return initial_seen == 1 && strays == 0 && once == TASKS * SWAPS;
}

static void b01_run(size_t nshards, const char *name) {
    run_t *r = calloc(1, sizeof *r);
    if (!r || !(r->m = cmap_new(nshards)) || !(r->start = gocc_chan_new(0, 0)) ||
        !(r->phase2 = gocc_chan_new(0, 0))) {
        check(false, "made the map");
        if (r) {
            cmap_free(r->m);
            gocc_chan_release(r->start);
        }
        free(r);
        return;
    }
    static const char initial = 0;
    cmap_store(r->m, "counter", &r->counter[0]);
    cmap_store(r->m, "swapped", &initial);
    gocc_waitgroup_add(&r->loaded_or_stored, TASKS);

    int64_t t0 = gocc_now();
    gocc_group_t *g = gocc_group_new(NULL);
    int started = 0;
    for (int t = 0; g && t < TASKS; t++) {
        r->w[t].run = r;
        r->w[t].id = t;
        started += gocc_group_go(g, map_worker, &r->w[t]) == 0;
    }
    gocc_chan_close(r->start);
    for (int t = started; t < TASKS; t++) gocc_waitgroup_done(&r->loaded_or_stored);
    gocc_waitgroup_wait(&r->loaded_or_stored, NULL);
    gocc_chan_close(r->phase2); /* LoadAndDelete may start */
    gocc_group_wait(g);
    gocc_group_free(g);
    int64_t took = gocc_now() - t0;

    int stored = 0, deleted = 0, own_ok = 0, agree = 0, retries = 0;
    for (int t = 0; t < TASKS; t++) {
        stored += r->w[t].stored;
        deleted += r->w[t].deleted;
        own_ok += r->w[t].own_ok;
        retries += r->w[t].cas_retries;
    }
    for (int i = 0; i < SHARED; i++) { /* everyone saw the same winner, one of the offers */
        const void *v = r->w[0].winner[i];
        bool same = true, offered = false;
        for (int t = 0; t < TASKS; t++) {
            same = same && r->w[t].winner[i] == v;
            offered = offered || v == &r->w[t].mine[i];
        }
        agree += same && offered;
    }
    const void *cv = NULL;
    cmap_load(r->m, "counter", &cv);
    long count = cv ? (const int *)cv - r->counter : -1;
    int left = 0;
    cmap_range(r->m, count_key, &left);

    check(started == TASKS, "started the 4 tasks");
    check(own_ok == TASKS * OWN, "every stored key reads back its value");
    check(stored == SHARED && agree == SHARED,
          "one LoadOrStore per shared key stored; all callers got that value");
    check(count == TASKS * BUMPS, "Load + CompareAndSwap counted every increment");
    check(swap_chain_exact(r, &initial), "Swap handed back every swapped-in value exactly once");
    check(deleted == SHARED, "exactly one LoadAndDelete per shared key found it");
    check(left == TASKS * OWN + 2, "Range counts the keys left: own keys + counter + swapped");
    printf("B01 %s: 4 tasks; %d/%d own keys read back; LoadOrStore stored %d of %d shared keys "
           "(all agree: %d); CAS counter = %ld (CAS retries: %d); LoadAndDelete found %d; Range "
           "counts %d keys; %.1f ms\n",
           name, own_ok, TASKS * OWN, stored, SHARED, agree, count, retries, deleted, left,
           (double)took / GOCC_MILLISECOND);
    cmap_free(r->m);
    gocc_chan_release(r->start);
    gocc_chan_release(r->phase2);
    free(r);
}

static void b01_concurrent(void) {
    b01_run(1, "RWMutex map (1 lock)");
    b01_run(MAX_SHARDS, "concurrent map (16 striped locks)");
}

int main(void) {
    b01_usage();
    b01_concurrent();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B01 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
