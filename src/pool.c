/*
 * pool.c - the object pool (Go's sync.Pool): per-thread caches in front of a
 * shared, bounded depot, with Go's victim cycle to return memory that sat
 * unused.
 *
 * Layers, fastest first:
 *  - the calling thread's cache for this pool (TCACHE_CAP objects, LIFO, so
 *    a put then a get on one thread returns the same object). Only its
 *    owner touches it while the pool lives: the hot path has no lock and no
 *    atomic read-modify-write, just two relaxed loads (drop mode, trim
 *    epoch);
 *  - the depot: "primary" (recent surplus) and "victim" (what survived the
 *    last trim), DEPOT_CAP objects each, under p->mu;
 *  - new_fn. Surplus beyond the bounds goes to free_fn.
 *
 * Bound: 2 * DEPOT_CAP + TCACHE_CAP * MAX_TCACHES == GOCC_POOL_MAX_KEPT
 * objects at most, however many are put (threads beyond MAX_TCACHES use the
 * depot directly).
 *
 * Trim (every TRIM_PERIOD on the timer thread, or gocc_pool_trim): the
 * victim's objects are freed; primary becomes the new victim (a third,
 * spare array makes the swap allocation-free) and the trim epoch moves on.
 * Each thread cache follows at its owner's next use of the pool: it moves
 * into the victim. An object unused for two trims is gone; a thread that
 * never uses the pool again holds at most TCACHE_CAP objects until it exits
 * or the pool is freed.
 *
 * Lifetimes: a thread cache belongs to its thread and is linked into its
 * pool's list. Both lists change under the global registry_mu (cache
 * creation, trim, pool free, thread exit: all rare), so a thread that exits
 * flushes its caches into pools that are guaranteed alive, and a pool that
 * is freed detaches every cache (marking it dead) first. A dead cache is
 * freed by its thread when it meets it, or at thread exit.
 *
 * Lock order (GOCC_LOCK_RANKS in gocc-internal.h): trim_mu -> p->mu;
 * registry_mu -> p->mu.
 * free_fn and new_fn are called with no lock held, with two exceptions:
 * gocc_pool_trim frees the old victim holding trim_mu (one trim at a time:
 * the spare array is out mid-trim), and a pool freed while memory for its
 * list of leftovers cannot be had frees them under registry_mu. So a
 * free_fn must not block (a park under trim_mu fails the lock checks).
 */
#include "gocc-internal.h"

#include <errno.h>

#define TCACHE_CAP 16
#define DEPOT_CAP 4096
#define MAX_TCACHES ((GOCC_POOL_MAX_KEPT - 2 * DEPOT_CAP) / TCACHE_CAP)
#define TRIM_PERIOD (5 * GOCC_SECOND)

typedef struct tcache {
    _Atomic(gocc_pool_t *) pool; /* NULL once the pool is freed */
    uint64_t pool_id;            /* pools are told apart by id, not address */
    uint64_t epoch;              /* the pool's trim epoch last seen */
    size_t n;                    /* owner only */
    void *objs[TCACHE_CAP];
    struct tcache *pool_prev, *pool_next; /* the pool's list, under registry_mu */
    struct tcache *thread_next;           /* the owner's list, owner only */
} tcache;

struct gocc_pool {
    uint64_t id;
    void *(*new_fn)(void *ud);
    void (*free_fn)(void *obj, void *ud);
    void *ud;
    gocc__mutex mu;
    gocc__mutex trim_mu;      /* one trim at a time */
    void **primary, **victim; /* DEPOT_CAP each, under mu */
    void **spare;             /* the third array, empty (NULL mid-trim) */
    size_t nprimary, nvictim;
    tcache *caches; /* under registry_mu */
    size_t ncaches;
    _Atomic unsigned drop_percent;
    _Atomic uint64_t trim_epoch; /* bumped by every trim */
    gocc__timer_entry trim_timer;
};

static gocc__mutex registry_mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_POOL_REGISTRY);
static _Atomic uint64_t next_pool_id = 1;
static GOCC_TLS tcache *my_caches;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* ---- freeing outside the locks ---- */

typedef struct spill {
    void *objs[TCACHE_CAP + 1];
    size_t n;
} spill;

static void spill_free(gocc_pool_t *p, spill *s) {
    for (size_t i = 0; i < s->n; i++) p->free_fn(s->objs[i], p->ud);
    s->n = 0;
}

/* Move up to n objects into the primary depot; the rest into *s. Caller
 * holds p->mu. */
static void depot_put_locked(gocc_pool_t *p, void **objs, size_t n, spill *s) {
    gocc__assert_held(&p->mu);
    for (size_t i = 0; i < n; i++) {
        if (p->nprimary < DEPOT_CAP)
            p->primary[p->nprimary++] = objs[i];
        else
            s->objs[s->n++] = objs[i];
    }
}

/* ---- thread caches ---- */

/* Thread exit: give every live cache's objects to its pool, free caches. */
static void thread_exit(void *unused) {
    (void)unused;
    tcache *tc = my_caches;
    my_caches = NULL;
    while (tc != NULL) {
        tcache *next = tc->thread_next;
        spill s = {.n = 0};
        void (*free_fn)(void *, void *) = NULL;
        void *ud = NULL;
        gocc__lock(&registry_mu);
        gocc_pool_t *p = atomic_load_explicit(&tc->pool, memory_order_acquire);
        if (p != NULL) {
            free_fn = p->free_fn; /* p may be freed once registry_mu drops */
            ud = p->ud;
            if (tc->pool_prev)
                tc->pool_prev->pool_next = tc->pool_next;
            else
                p->caches = tc->pool_next;
            if (tc->pool_next) tc->pool_next->pool_prev = tc->pool_prev;
            p->ncaches--;
            gocc__lock(&p->mu);
            depot_put_locked(p, tc->objs, tc->n, &s);
            gocc__unlock(&p->mu);
        }
        gocc__unlock(&registry_mu);
        for (size_t i = 0; i < s.n; i++) free_fn(s.objs[i], ud);
        gocc__free(tc);
        tc = next;
    }
}

static void exit_key_make(void) {
    if (pthread_key_create(&exit_key, thread_exit) != 0) abort();
}

/* This thread's cache for p (made on first use), or NULL: none could be
 * made, or the pool has as many as its bound allows. Frees dead caches met
 * on the way. */
static tcache *my_cache(gocc_pool_t *p) {
    tcache **link = &my_caches, *tc;
    while ((tc = *link) != NULL) {
        if (tc->pool_id == p->id) {
            if (link != &my_caches) { /* move to front: hot pools first */
                *link = tc->thread_next;
                tc->thread_next = my_caches;
                my_caches = tc;
            }
            return tc;
        }
        if (atomic_load_explicit(&tc->pool, memory_order_acquire) == NULL) {
            *link = tc->thread_next; /* its pool is gone: nobody else sees it */
            gocc__free(tc);
            continue;
        }
        link = &tc->thread_next;
    }
    pthread_once(&exit_key_once, exit_key_make);
    tc = gocc__calloc(1, sizeof *tc);
    if (tc == NULL) return NULL;
    tc->pool_id = p->id;
    tc->epoch = atomic_load_explicit(&p->trim_epoch, memory_order_relaxed);
    atomic_init(&tc->pool, p);
    gocc__lock(&registry_mu);
    if (p->ncaches >= MAX_TCACHES) {
        gocc__unlock(&registry_mu);
        gocc__free(tc);
        return NULL;
    }
    tc->pool_next = p->caches;
    if (p->caches) p->caches->pool_prev = tc;
    p->caches = tc;
    p->ncaches++;
    gocc__unlock(&registry_mu);
    tc->thread_next = my_caches;
    my_caches = tc;
    pthread_setspecific(exit_key, (void *)1); /* run thread_exit */
    return tc;
}

/* ---- the pool ---- */

static void trim_fire(gocc__timer_entry *e, int64_t now) {
    (void)now;
    gocc_pool_trim(e->arg);
}

gocc_pool_t *gocc_pool_new(void *(*new_fn)(void *ud), void (*free_fn)(void *obj, void *ud),
                           void *ud) {
    if (free_fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    gocc_pool_t *p = gocc__calloc(1, sizeof *p);
    if (p == NULL) goto nomem;
    p->primary = gocc__malloc(DEPOT_CAP * sizeof(void *));
    p->victim = gocc__malloc(DEPOT_CAP * sizeof(void *));
    p->spare = gocc__malloc(DEPOT_CAP * sizeof(void *));
    if (p->primary == NULL || p->victim == NULL || p->spare == NULL) goto nomem_free;
    int rc = gocc__timer_reserve();
    if (rc != 0) {
        gocc__free(p->primary);
        gocc__free(p->victim);
        gocc__free(p->spare);
        gocc__free(p);
        errno = -rc;
        return NULL;
    }
    p->id = atomic_fetch_add_explicit(&next_pool_id, 1, memory_order_relaxed);
    p->new_fn = new_fn;
    p->free_fn = free_fn;
    p->ud = ud;
    gocc__mutex_init(&p->mu, GOCC_LOCK_POOL_DEPOT);
    gocc__mutex_init(&p->trim_mu, GOCC_LOCK_POOL_TRIM);
    gocc__timer_init(&p->trim_timer, trim_fire, p);
    p->trim_timer.quiet = true; /* wakes no waiter: not a way out of a deadlock */
    gocc__timer_add(&p->trim_timer, gocc_now() + TRIM_PERIOD, TRIM_PERIOD);
    gocc__live_add(GOCC__LIVE_POOL, 1);
    return p;
nomem_free:
    gocc__free(p->primary);
    gocc__free(p->victim);
    gocc__free(p->spare);
    gocc__free(p);
nomem:
    errno = ENOMEM;
    return NULL;
}

/* The owner's share of a trim: its cache moves into the victim (as far as
 * it has room; the rest is freed), at the first use after the trim. */
static GOCC_NOINLINE void follow_trim(gocc_pool_t *p, tcache *tc, uint64_t epoch) {
    spill s;
    s.n = 0;
    tc->epoch = epoch;
    gocc__lock(&p->mu);
    while (tc->n > 0) {
        void *obj = tc->objs[--tc->n];
        if (p->nvictim < DEPOT_CAP)
            p->victim[p->nvictim++] = obj;
        else
            s.objs[s.n++] = obj;
    }
    gocc__unlock(&p->mu);
    spill_free(p, &s);
}

static inline tcache *my_cache_now(gocc_pool_t *p) {
    tcache *tc = my_cache(p);
    if (tc != NULL) {
        uint64_t epoch = atomic_load_explicit(&p->trim_epoch, memory_order_relaxed);
        if (GOCC_UNLIKELY(tc->epoch != epoch)) follow_trim(p, tc, epoch);
    }
    return tc;
}

void *gocc_pool_get(gocc_pool_t *p) {
    if (p == NULL) return NULL;
    tcache *tc = my_cache_now(p);
    if (tc != NULL && tc->n > 0) return tc->objs[--tc->n];
    void *obj = NULL;
    gocc__lock(&p->mu);
    if (p->nprimary > 0)
        obj = p->primary[--p->nprimary];
    else if (p->nvictim > 0)
        obj = p->victim[--p->nvictim];
    gocc__unlock(&p->mu);
    if (obj != NULL) return obj;
    return p->new_fn != NULL ? p->new_fn(p->ud) : NULL;
}

/* put's slow path: the cache is full (its older half goes to the depot)
 * or there is no cache. Out of line so the hot path carries no buffer. */
static GOCC_NOINLINE void put_slow(gocc_pool_t *p, tcache *tc, void *obj) {
    spill s;
    s.n = 0;
    if (tc != NULL) {
        gocc__lock(&p->mu);
        depot_put_locked(p, tc->objs, TCACHE_CAP / 2, &s);
        gocc__unlock(&p->mu);
        memmove(tc->objs, tc->objs + TCACHE_CAP / 2,
                (TCACHE_CAP - TCACHE_CAP / 2) * sizeof(void *));
        tc->n -= TCACHE_CAP / 2;
        tc->objs[tc->n++] = obj;
    } else {
        gocc__lock(&p->mu);
        depot_put_locked(p, &obj, 1, &s);
        gocc__unlock(&p->mu);
    }
    spill_free(p, &s);
}

void gocc_pool_put(gocc_pool_t *p, void *obj) {
    if (p == NULL || obj == NULL) return;
    unsigned drop = atomic_load_explicit(&p->drop_percent, memory_order_relaxed);
    if (GOCC_UNLIKELY(drop != 0) && gocc__rand() % 100 < drop) {
        p->free_fn(obj, p->ud);
        return;
    }
    tcache *tc = my_cache_now(p);
    if (GOCC_LIKELY(tc != NULL && tc->n < TCACHE_CAP)) {
        tc->objs[tc->n++] = obj;
        return;
    }
    put_slow(p, tc, obj);
}

void gocc_pool_trim(gocc_pool_t *p) {
    if (p == NULL) return;
    gocc__lock(&p->trim_mu);
    /* The old victim goes; primary becomes the victim; spare the primary. */
    gocc__lock(&p->mu);
    void **old = p->victim;
    size_t nold = p->nvictim;
    p->victim = p->primary;
    p->nvictim = p->nprimary;
    p->primary = p->spare;
    p->nprimary = 0;
    p->spare = NULL;
    gocc__unlock(&p->mu);
    atomic_fetch_add_explicit(&p->trim_epoch, 1, memory_order_relaxed); /* caches follow */
    for (size_t i = 0; i < nold; i++) p->free_fn(old[i], p->ud);
    gocc__lock(&p->mu);
    p->spare = old;
    gocc__unlock(&p->mu);
    gocc__unlock(&p->trim_mu);
}

void gocc_pool_set_drop_percent(gocc_pool_t *p, unsigned percent) {
    if (p != NULL)
        atomic_store_explicit(&p->drop_percent, percent > 100 ? 100 : percent,
                              memory_order_relaxed);
}

void gocc_pool_free(gocc_pool_t *p) {
    if (p == NULL) return;
    gocc__timer_del_sync(&p->trim_timer);
    gocc__timer_unreserve();
    for (size_t i = 0; i < p->nprimary; i++) p->free_fn(p->primary[i], p->ud);
    for (size_t i = 0; i < p->nvictim; i++) p->free_fn(p->victim[i], p->ud);

    /* Detach every thread cache (marking it dead for its owner) and collect
     * its objects, to free them once registry_mu is dropped. */
    gocc__lock(&registry_mu);
    size_t room = p->ncaches * TCACHE_CAP, n = 0;
    void **objs = room ? gocc__malloc(room * sizeof(void *)) : NULL;
    for (tcache *tc = p->caches, *next; tc != NULL; tc = next) {
        /* No thread uses p now (the caller's promise, which orders their
         * last use before this), so their caches may be read here. */
        for (size_t i = 0; i < tc->n; i++) {
            if (objs != NULL)
                objs[n++] = tc->objs[i];
            else
                p->free_fn(tc->objs[i], p->ud); /* out of memory: free here */
        }
        tc->n = 0;
        next = tc->pool_next; /* once marked dead, its owner may free it */
        atomic_store_explicit(&tc->pool, NULL, memory_order_release);
    }
    p->caches = NULL;
    gocc__unlock(&registry_mu);
    for (size_t i = 0; i < n; i++) p->free_fn(objs[i], p->ud);
    gocc__free(objs);

    gocc__mutex_destroy(&p->mu);
    gocc__mutex_destroy(&p->trim_mu);
    gocc__free(p->primary);
    gocc__free(p->victim);
    gocc__free(p->spare);
    gocc__live_add(GOCC__LIVE_POOL, -1);
    gocc__free(p);
}

/* ---- fork (runtime.c's handlers take registry_mu before the runtime's
 * locks: it is held only around list work and p->mu, never while one of
 * them is taken) */

void gocc__pool_fork_prepare(void) { gocc__lock(&registry_mu); }
void gocc__pool_fork_parent(void) { gocc__unlock(&registry_mu); }
/* In the child the lock is free again; caches of threads that do not exist
 * there stay linked (their memory is the pools') and are never touched by
 * an owner again. */
void gocc__pool_fork_child(void) { gocc__unlock(&registry_mu); }
