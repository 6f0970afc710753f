/*
 * test-pool.c - the object pool (gocc_pool_*, Go's sync.Pool): gocc.h's
 * "Object pool" section (the same object back on one thread, a bounded
 * cache, an unspecified order after several puts, gocc_pool_trim,
 * gocc_pool_set_drop_percent, GOCC_POOL_MAX_KEPT) and its "NULL" rule.
 *
 * Every object comes from the test's new_fn and goes to its free_fn, which
 * count them (per pool, through ud): allocs - frees is the number of objects
 * alive, i.e. held by the test plus cached by the pool. An object carries
 * an atomic "in use" flag that the test sets on get and clears before put,
 * so an object handed to two users at once, or freed while in use, shows;
 * free_fn poisons it so a freed object handed out again shows too (and
 * ASan sees the use after free and any leak).
 *
 * No cmocka assertion runs on a helper thread: they count what they saw in
 * atomics and the test thread checks it.
 */
#include "test-common.h"

#include <sched.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

/* The bound is documented (GOCC_POOL_MAX_KEPT) and at most 65,536. */
_Static_assert(GOCC_POOL_MAX_KEPT > 0 && GOCC_POOL_MAX_KEPT <= 65536, "GOCC_POOL_MAX_KEPT");

#define PL_LIVE 0x6c697665u /* "live" */
#define PL_DEAD 0xdeadbeefu

typedef struct pl_obj {
    uint32_t magic;
    atomic_int in_use;
    int tag;     /* who made it (pl_tag of the thread that called new_fn) */
    int pad[13]; /* 64 bytes in all */
} pl_obj;

typedef struct pl_counts {
    atomic_long allocs, frees;
    atomic_long bad; /* free_fn on a dead or in-use object */
} pl_counts;

static _Thread_local int pl_tag;

static void pl_counts_init(pl_counts *c) {
    atomic_init(&c->allocs, 0);
    atomic_init(&c->frees, 0);
    atomic_init(&c->bad, 0);
}

static long pl_live(pl_counts *c) { return atomic_load(&c->allocs) - atomic_load(&c->frees); }

static void *pl_new_fn(void *ud) {
    pl_counts *c = ud;
    pl_obj *o = malloc(sizeof *o);
    if (o == NULL) return NULL;
    o->magic = PL_LIVE;
    atomic_init(&o->in_use, 0);
    o->tag = pl_tag;
    atomic_fetch_add(&c->allocs, 1);
    return o;
}

static void pl_free_fn(void *obj, void *ud) {
    pl_counts *c = ud;
    pl_obj *o = obj;
    if (o->magic != PL_LIVE || atomic_load(&o->in_use) != 0) atomic_fetch_add(&c->bad, 1);
    o->magic = PL_DEAD;
    atomic_fetch_add(&c->frees, 1);
    free(o);
}

static gocc_pool_t *pl_pool(pl_counts *c) {
    pl_counts_init(c);
    gocc_pool_t *p = gocc_pool_new(pl_new_fn, pl_free_fn, c);
    assert_non_null(p);
    return p;
}

/* Free the pool and check that every object ever made was freed once. */
static void pl_pool_done(gocc_pool_t *p, pl_counts *c) {
    gocc_pool_free(p);
    assert_int_equal(atomic_load(&c->bad), 0);
    assert_int_equal(atomic_load(&c->allocs), atomic_load(&c->frees));
}

/* get, marking the object in use; *dup counts objects already in use or
 * not alive (handed out twice, or after free). */
static pl_obj *pl_take(gocc_pool_t *p, atomic_long *dup) {
    pl_obj *o = gocc_pool_get(p);
    if (o == NULL) return NULL;
    if (o->magic != PL_LIVE || atomic_exchange(&o->in_use, 1) != 0) atomic_fetch_add(dup, 1);
    return o;
}

static void pl_give(gocc_pool_t *p, pl_obj *o) {
    atomic_store(&o->in_use, 0);
    gocc_pool_put(p, o);
}

/* ------------------------------------------------------------------------ */
/* basics */

/* A put followed by a get on the same thread returns the same object;
 * several puts come back in some order, without new_fn. */
static void test_pool_put_get_same(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    pl_counts c;
    atomic_long dup;
    atomic_init(&dup, 0);
    gocc_pool_t *p = pl_pool(&c);
    pl_obj *a = pl_take(p, &dup);
    assert_non_null(a);
    assert_int_equal(atomic_load(&c.allocs), 1);
    for (int i = 0; i < 1000; i++) {
        pl_give(p, a);
        pl_obj *b = pl_take(p, &dup);
        assert_ptr_equal(b, a);
    }
    assert_int_equal(atomic_load(&c.allocs), 1);

    /* Three puts, three gets: each one of the three, all different. */
    pl_obj *x[3] = {a, pl_take(p, &dup), pl_take(p, &dup)};
    assert_int_equal(atomic_load(&c.allocs), 3);
    for (int i = 0; i < 3; i++) pl_give(p, x[i]);
    pl_obj *y[3];
    for (int i = 0; i < 3; i++) {
        y[i] = pl_take(p, &dup);
        assert_non_null(y[i]);
    }
    assert_true(y[0] == x[0] || y[0] == x[1] || y[0] == x[2]);
    assert_true(y[0] != y[1] && y[1] != y[2] && y[0] != y[2]);
    long reused = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) reused += y[i] == x[k];
    assert_int_equal(reused + (atomic_load(&c.allocs) - 3), 3);
    /* The last put comes back first. */
    pl_give(p, y[1]);
    pl_obj *z = pl_take(p, &dup);
    assert_ptr_equal(z, y[1]);
    for (int i = 0; i < 3; i++) pl_give(p, y[i]);
    assert_int_equal(atomic_load(&dup), 0);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* An empty pool calls new_fn (once per get); with no new_fn get returns
 * NULL, and still hands out what was put. */
static void test_pool_get_empty(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    pl_counts c;
    atomic_long dup;
    atomic_init(&dup, 0);
    gocc_pool_t *p = pl_pool(&c);
    enum { N = 50 };
    pl_obj *o[N];
    for (int i = 0; i < N; i++) {
        o[i] = pl_take(p, &dup);
        assert_non_null(o[i]);
        assert_int_equal(atomic_load(&c.allocs), i + 1);
    }
    for (int i = 0; i < N; i++) pl_give(p, o[i]);
    pl_pool_done(p, &c);
    assert_int_equal(atomic_load(&c.allocs), N);

    pl_counts_init(&c);
    p = gocc_pool_new(NULL, pl_free_fn, &c);
    assert_non_null(p);
    assert_null(gocc_pool_get(p));
    assert_null(gocc_pool_get(p));
    pl_obj *mine = pl_new_fn(&c);
    assert_non_null(mine);
    gocc_pool_put(p, mine);
    assert_ptr_equal(gocc_pool_get(p), mine);
    assert_null(gocc_pool_get(p));
    gocc_pool_put(p, mine);
    pl_pool_done(p, &c); /* mine is freed with the pool */
    assert_int_equal(atomic_load(&c.frees), 1);
    assert_int_equal(atomic_load(&dup), 0);
    ASSERT_NO_TASKS(start);
}

/* Never lost or duplicated on one thread: a random walk of gets and puts;
 * alive == held + cached at every step, and nothing held is handed out. */
static void test_pool_no_loss_single_thread(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    pl_counts c;
    atomic_long dup;
    atomic_init(&dup, 0);
    gocc_pool_t *p = pl_pool(&c);
    enum { MAXHELD = 3000 };
    pl_obj **held = calloc(MAXHELD, sizeof *held);
    assert_non_null(held);
    size_t nheld = 0;
    uint64_t rng = 12345;
    const int steps = SCALE(200000);
    for (int i = 0; i < steps; i++) {
        uint64_t x = xorshift(&rng);
        /* Phases that mostly get, then mostly put, to fill and empty the depot. */
        bool getting = ((i / 5000) & 1) == 0 ? x % 10 < 7 : x % 10 < 3;
        if ((getting && nheld < MAXHELD) || nheld == 0) {
            pl_obj *o = pl_take(p, &dup);
            assert_non_null(o);
            held[nheld++] = o;
        } else {
            size_t k = (size_t)((x >> 8) % nheld);
            pl_obj *o = held[k];
            held[k] = held[--nheld];
            pl_give(p, o);
        }
        CHECK_GE(pl_live(&c), (long)nheld); /* what we hold is alive */
        CHECK_LT(pl_live(&c) - (long)nheld, GOCC_POOL_MAX_KEPT + 1);
    }
    assert_int_equal(atomic_load(&dup), 0);
    for (size_t i = 0; i < nheld; i++) pl_give(p, held[i]);
    free(held);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* ------------------------------------------------------------------------ */
/* bounds, trim, drop mode */

/* Puts without gets: the pool keeps at most GOCC_POOL_MAX_KEPT objects and
 * hands the rest to free_fn. */
static void test_pool_bounded_single_thread(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    pl_counts c;
    gocc_pool_t *p = pl_pool(&c);
    for (int i = 0; i < 200000; i++) {
        pl_obj *o = pl_new_fn(&c);
        assert_non_null(o);
        gocc_pool_put(p, o);
        if (i % 1000 == 999) CHECK_LT(pl_live(&c), GOCC_POOL_MAX_KEPT + 1);
    }
    CHECK_LT(pl_live(&c), GOCC_POOL_MAX_KEPT + 1);
    assert_int_equal(atomic_load(&c.bad), 0);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* The same bound with 8 threads putting at once, checked while they are
 * still alive (their caches full) and after they exited. */
typedef struct pl_putter {
    gocc_pool_t *p;
    pl_counts *c;
    int n;
    atomic_int *done;
    atomic_int *go_exit;
} pl_putter;

static void *pl_put_many(void *arg) {
    pl_putter *a = arg;
    for (int i = 0; i < a->n; i++) {
        pl_obj *o = pl_new_fn(a->c);
        if (o != NULL) gocc_pool_put(a->p, o);
    }
    atomic_fetch_add(a->done, 1);
    int64_t end = gocc_now() + 60 * GOCC_SECOND;
    while (!atomic_load(a->go_exit) && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
    return NULL;
}

static void test_pool_bounded_threads(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { T = 8 };
    pl_counts c;
    gocc_pool_t *p = pl_pool(&c);
    atomic_int done, go_exit;
    atomic_init(&done, 0);
    atomic_init(&go_exit, 0);
    pl_putter a[T];
    test_thread th[T];
    for (int i = 0; i < T; i++) {
        a[i] = (pl_putter){p, &c, 200000 / T, &done, &go_exit};
        test_thread_start(&th[i], pl_put_many, &a[i]);
    }
    assert_int_equal(wait_int(&done, T, SAFETY_NS), T);
    assert_int_equal(atomic_load(&c.allocs), 200000);
    CHECK_LT(pl_live(&c), GOCC_POOL_MAX_KEPT + 1);
    atomic_store(&go_exit, 1);
    for (int i = 0; i < T; i++) test_thread_join(&th[i]);
    CHECK_LT(pl_live(&c), GOCC_POOL_MAX_KEPT + 1);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* Two trims with no use in between free what sat in the depot; after one
 * trim the objects are still there to be gotten (the victim cache). */
static void test_pool_trim(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { N = 1000 };
    pl_counts c;
    atomic_long dup;
    atomic_init(&dup, 0);
    int64_t t0 = gocc_now();
    gocc_pool_t *p = pl_pool(&c);
    for (int i = 0; i < N; i++) gocc_pool_put(p, pl_new_fn(&c));
    long l0 = pl_live(&c);
    CHECK_GE(l0, N / 2); /* recent puts are kept (the bound is far off) */
    gocc_pool_trim(p);
    long l1 = pl_live(&c);
    gocc_pool_trim(p);
    long l2 = pl_live(&c);
    /* The periodic trim (every few seconds) may add one: only then could the
     * first manual trim free anything. */
    if (gocc_now() - t0 < 2 * GOCC_SECOND) assert_int_equal(l1, l0);
    CHECK_LT(l2, l0);
    CHECK_LT(l2, 257); /* at most the small per-thread cache is left */

    /* One trim: the objects are still handed out (no new_fn). */
    int64_t t1 = gocc_now();
    for (int i = 0; i < N; i++) gocc_pool_put(p, pl_new_fn(&c));
    long a0 = atomic_load(&c.allocs);
    gocc_pool_trim(p);
    pl_obj *o[N / 2];
    for (int i = 0; i < N / 2; i++) {
        o[i] = pl_take(p, &dup);
        assert_non_null(o[i]);
    }
    if (gocc_now() - t1 < 2 * GOCC_SECOND) assert_int_equal(atomic_load(&c.allocs), a0);
    for (int i = 0; i < N / 2; i++) pl_give(p, o[i]);
    assert_int_equal(atomic_load(&dup), 0);

    /* Trims after use: everything unused goes, also this thread's cache once
     * it touched the pool after a trim. */
    for (int i = 0; i < 4; i++) {
        gocc_pool_trim(p);
        pl_obj *x = pl_take(p, &dup);
        pl_give(p, x);
    }
    CHECK_LT(pl_live(&c), 257);
    assert_int_equal(atomic_load(&c.bad), 0);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* set_drop_percent(100): every put goes to free_fn, so get calls new_fn;
 * 50: about half; 0: off again. */
static void test_pool_drop_percent(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { N = 2000 };
    pl_counts c;
    atomic_long dup;
    atomic_init(&dup, 0);
    gocc_pool_t *p = pl_pool(&c);
    gocc_pool_set_drop_percent(p, 100);
    pl_obj *a = pl_take(p, &dup);
    for (int i = 0; i < 100; i++) {
        long f = atomic_load(&c.frees), n = atomic_load(&c.allocs);
        pl_give(p, a);
        assert_int_equal(atomic_load(&c.frees), f + 1);
        a = pl_take(p, &dup);
        assert_int_equal(atomic_load(&c.allocs), n + 1);
    }
    pl_give(p, a);
    assert_int_equal(pl_live(&c), 0);

    gocc_pool_set_drop_percent(p, 50);
    for (int i = 0; i < N; i++) gocc_pool_put(p, pl_new_fn(&c));
    long dropped = atomic_load(&c.frees) - 101;
    CHECK_GE(dropped, N / 4);
    CHECK_LT(dropped, 3 * N / 4);

    gocc_pool_set_drop_percent(p, 0);
    long f = atomic_load(&c.frees);
    pl_obj *b = pl_take(p, &dup);
    for (int i = 0; i < 100; i++) {
        pl_give(p, b);
        pl_obj *b2 = pl_take(p, &dup);
        assert_ptr_equal(b2, b);
    }
    pl_give(p, b);
    assert_int_equal(atomic_load(&c.frees), f);
    assert_int_equal(atomic_load(&dup), 0);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* ------------------------------------------------------------------------ */
/* threads */

/* A thread that puts objects and exits leaks none: they go back to the pool
 * (another thread may get them) or to free_fn. */
typedef struct pl_exiter {
    gocc_pool_t *p;
    pl_counts *c;
    int n;
    atomic_long dup;
} pl_exiter;

static void *pl_put_and_exit(void *arg) {
    pl_exiter *e = arg;
    pl_tag = 1;
    pl_obj **o = calloc((size_t)e->n, sizeof *o);
    if (o == NULL) return NULL;
    for (int i = 0; i < e->n; i++) o[i] = pl_take(e->p, &e->dup);
    for (int i = 0; i < e->n; i++)
        if (o[i] != NULL) pl_give(e->p, o[i]);
    free(o);
    return NULL;
}

static void test_pool_thread_exit(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { N = 100 };
    pl_counts c;
    gocc_pool_t *p = pl_pool(&c);
    pl_exiter e = {.p = p, .c = &c, .n = N};
    atomic_init(&e.dup, 0);
    /* A few objects in the exiting thread's cache only (< its size). */
    for (int round = 0; round < 2; round++) {
        e.n = round == 0 ? 5 : N;
        test_thread th;
        test_thread_start(&th, pl_put_and_exit, &e);
        test_thread_join(&th);
        long alive = pl_live(&c);
        CHECK_LT(alive, GOCC_POOL_MAX_KEPT + 1);
        /* Get as many as were alive: each is one of the thread's objects (or
         * new), none twice. */
        long before = atomic_load(&c.allocs);
        pl_obj **o = calloc((size_t)alive + 1, sizeof *o);
        assert_non_null(o);
        long reused = 0;
        for (long i = 0; i < alive; i++) {
            o[i] = pl_take(p, &e.dup);
            assert_non_null(o[i]);
            reused += o[i]->tag == 1;
        }
        assert_int_equal(reused + (atomic_load(&c.allocs) - before), alive);
        print_message(
            "      thread exit round %d: %ld of %ld objects came back to another thread\n", round,
            reused, alive);
        for (long i = 0; i < alive; i++) pl_give(p, o[i]);
        free(o);
        assert_int_equal(atomic_load(&e.dup), 0);
    }
    pl_pool_done(p, &c);

    /* A pool freed right after an exited thread's cache was flushed into it,
     * with no other use: nothing leaks. */
    pl_counts c2;
    gocc_pool_t *p2 = pl_pool(&c2);
    pl_exiter e2 = {.p = p2, .c = &c2, .n = 10};
    atomic_init(&e2.dup, 0);
    test_thread th;
    test_thread_start(&th, pl_put_and_exit, &e2);
    test_thread_join(&th);
    pl_pool_done(p2, &c2);
    ASSERT_NO_TASKS(start);
}

typedef struct pl_task_arg {
    gocc_pool_t *p;
    int n;
    atomic_long dup;
    atomic_int done;
} pl_task_arg;

static int pl_task_put(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pl_task_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        pl_obj *o = pl_take(a->p, &a->dup);
        if (o != NULL) pl_give(a->p, o);
    }
    atomic_fetch_add(&a->done, 1);
    return 0;
}

/* Objects cached by a thread that lives on (a runtime thread back in the
 * idle cache) are freed by gocc_pool_free; that thread later meets the dead
 * cache and uses a new pool without trouble. */
static void test_pool_free_with_foreign_caches(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    for (int round = 0; round < 3; round++) {
        pl_counts c;
        gocc_pool_t *p = pl_pool(&c);
        pl_task_arg a = {.p = p, .n = 8};
        atomic_init(&a.dup, 0);
        atomic_init(&a.done, 0);
        for (int i = 0; i < 4; i++) assert_int_equal(gocc_go(pl_task_put, NULL, &a), 0);
        assert_int_equal(wait_int(&a.done, 4, SAFETY_NS), 4);
        assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
        CHECK_GE(pl_live(&c), 1);
        pl_pool_done(p, &c);
        assert_int_equal(atomic_load(&a.dup), 0);
    }
    ASSERT_NO_TASKS(start);
}

/* One thread, several pools at once; one freed in the middle. */
static void test_pool_many_pools(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { P = 5 };
    pl_counts c[P];
    gocc_pool_t *p[P];
    atomic_long dup;
    atomic_init(&dup, 0);
    for (int i = 0; i < P; i++) p[i] = pl_pool(&c[i]);
    uint64_t rng = 99;
    for (int step = 0; step < SCALE(20000); step++) {
        int k = (int)(xorshift(&rng) % P);
        if (p[k] == NULL) {
            p[k] = pl_pool(&c[k]);
            continue;
        }
        pl_obj *o[4];
        for (int i = 0; i < 4; i++) o[i] = pl_take(p[k], &dup);
        for (int i = 0; i < 4; i++) pl_give(p[k], o[i]);
        assert_int_equal(atomic_load(&c[k].bad), 0);
        if (step % 997 == 0) {
            pl_pool_done(p[k], &c[k]);
            p[k] = NULL;
        }
    }
    for (int i = 0; i < P; i++)
        if (p[i] != NULL) pl_pool_done(p[i], &c[i]);
    assert_int_equal(atomic_load(&dup), 0);
    ASSERT_NO_TASKS(start);
}

/* 8 threads get and put at once while another trims and toggles drop mode:
 * no object is handed to two threads at once or freed while in use, and
 * nothing leaks (TSan checks the rest). */
typedef struct pl_conc {
    gocc_pool_t *p;
    pl_counts *c;
    int iters;
    uint64_t seed;
    atomic_long *dup;
    atomic_long *gets;
    atomic_long *trims; /* start once the trimmer runs */
} pl_conc;

static void *pl_conc_worker(void *arg) {
    pl_conc *a = arg;
    uint64_t rng = a->seed;
    int64_t end = gocc_now() + SAFETY_NS;
    while (atomic_load(a->trims) == 0 && gocc_now() < end) sched_yield();
    pl_obj *held[8];
    for (int i = 0; i < a->iters; i++) {
        int k = 1 + (int)(xorshift(&rng) % 8);
        for (int j = 0; j < k; j++) {
            held[j] = pl_take(a->p, a->dup);
            if (held[j] != NULL) held[j]->pad[j] = i; /* touch it */
        }
        atomic_fetch_add(a->gets, k);
        for (int j = k - 1; j >= 0; j--)
            if (held[j] != NULL) pl_give(a->p, held[j]);
    }
    return NULL;
}

typedef struct pl_trimmer {
    gocc_pool_t *p;
    atomic_int *stop;
    atomic_long trims;
} pl_trimmer;

static void *pl_trim_loop(void *arg) {
    pl_trimmer *t = arg;
    long n = 0;
    while (!atomic_load(t->stop)) {
        gocc_pool_trim(t->p);
        if (++n % 16 == 0) gocc_pool_set_drop_percent(t->p, (n / 16) % 2 ? 10 : 0);
        atomic_fetch_add(&t->trims, 1);
        sched_yield();
    }
    return NULL;
}

static void test_pool_concurrent(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    enum { T = 8 };
    for (int round = 0; round < 2; round++) {
        pl_counts c;
        gocc_pool_t *p = pl_pool(&c);
        atomic_long dup, gets;
        atomic_init(&dup, 0);
        atomic_init(&gets, 0);
        atomic_int stop;
        atomic_init(&stop, 0);
        pl_trimmer tr = {.p = p, .stop = &stop};
        atomic_init(&tr.trims, 0);
        test_thread tt, th[T];
        pl_conc a[T];
        test_thread_start(&tt, pl_trim_loop, &tr);
        for (int i = 0; i < T; i++) {
            a[i] =
                (pl_conc){p,    &c,    SCALE(100000), (uint64_t)(i + 1) * 7919u + (uint64_t)round,
                          &dup, &gets, &tr.trims};
            test_thread_start(&th[i], pl_conc_worker, &a[i]);
        }
        for (int i = 0; i < T; i++) test_thread_join(&th[i]);
        atomic_store(&stop, 1);
        test_thread_join(&tt);
        assert_int_equal(atomic_load(&dup), 0);
        assert_int_equal(atomic_load(&c.bad), 0);
        CHECK_GE(atomic_load(&tr.trims), 1);
        /* Objects were reused, not made anew for every get. */
        CHECK_LT(atomic_load(&c.allocs), atomic_load(&gets));
        CHECK_LT(pl_live(&c), GOCC_POOL_MAX_KEPT + 1);
        pl_pool_done(p, &c);
    }
    ASSERT_NO_TASKS(start);
}

/* ------------------------------------------------------------------------ */
/* NULL */

static void test_pool_null(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    pl_counts c;
    pl_counts_init(&c);
    errno = 0;
    assert_null(gocc_pool_new(pl_new_fn, NULL, &c));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gocc_pool_new(NULL, NULL, NULL));
    assert_int_equal(errno, EINVAL);

    assert_null(gocc_pool_get(NULL));
    pl_obj *o = pl_new_fn(&c);
    gocc_pool_put(NULL, o); /* nothing happens */
    gocc_pool_trim(NULL);
    gocc_pool_set_drop_percent(NULL, 50);
    gocc_pool_free(NULL);
    pl_free_fn(o, &c);

    gocc_pool_t *p = pl_pool(&c);
    gocc_pool_put(p, NULL); /* nothing happens */
    assert_int_equal(atomic_load(&c.frees), 0);
    o = gocc_pool_get(p); /* not NULL back: new_fn */
    assert_non_null(o);
    assert_int_equal(atomic_load(&c.allocs), 1);
    gocc_pool_put(p, o);
    pl_pool_done(p, &c);
    ASSERT_NO_TASKS(start);
}

/* Regression (found by review): gocc_pool_free marked another thread's
 * cache dead and then read the cache's list link, while that thread, walking
 * its caches to find one for a pool it has not used yet, frees dead caches
 * it meets. Each round: main publishes a fresh pool P[r] and at once frees
 * P[r-1] (the workers acknowledged they are done with it); the workers' first
 * get on P[r] walks past their P[r-1] caches just as they are marked dead.
 * TSan reports the old code every run (the link read races the owner's
 * free); ASan only when the window is hit. */
typedef struct dead_walk {
    _Atomic(gocc_pool_t *) pool;
    atomic_int round, acks;
    int rounds;
    pl_counts *counts; /* one per round, so each pool's books close */
} dead_walk;

static void *dead_walk_worker(void *arg) {
    dead_walk *d = arg;
    atomic_long dup;
    atomic_init(&dup, 0);
    for (int r = 0; r < d->rounds; r++) {
        while (atomic_load_explicit(&d->round, memory_order_acquire) < r) sched_yield();
        gocc_pool_t *p = atomic_load_explicit(&d->pool, memory_order_acquire);
        pl_obj *o = pl_take(p, &dup);
        if (o != NULL) pl_give(p, o);
        atomic_fetch_add_explicit(&d->acks, 1, memory_order_release); /* done with p */
    }
    return NULL;
}

static void test_pool_free_while_owner_walks_dead_caches(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    enum { WORKERS = 2 };
    dead_walk d;
    d.rounds = SCALE(4000);
    d.counts = calloc((size_t)d.rounds, sizeof *d.counts);
    assert_non_null(d.counts);
    atomic_init(&d.round, -1);
    atomic_init(&d.acks, 0);
    atomic_init(&d.pool, NULL);
    test_thread th[WORKERS];
    for (int i = 0; i < WORKERS; i++) test_thread_start(&th[i], dead_walk_worker, &d);
    gocc_pool_t *prev = NULL;
    for (int r = 0; r < d.rounds; r++) {
        gocc_pool_t *p = pl_pool(&d.counts[r]);
        atomic_store_explicit(&d.pool, p, memory_order_release);
        atomic_store_explicit(&d.round, r, memory_order_release);
        if (prev != NULL) pl_pool_done(prev, &d.counts[r - 1]); /* races the walks */
        int64_t end = gocc_now() + SAFETY_NS;
        while (atomic_load_explicit(&d.acks, memory_order_acquire) < (r + 1) * WORKERS) {
            assert_true(gocc_now() < end);
            sched_yield();
        }
        prev = p;
    }
    for (int i = 0; i < WORKERS; i++) test_thread_join(&th[i]);
    pl_pool_done(prev, &d.counts[d.rounds - 1]);
    free(d.counts);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-pool", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_pool_put_get_same),
        GOCC_TEST(test_pool_get_empty),
        GOCC_TEST(test_pool_no_loss_single_thread),
        GOCC_TEST(test_pool_bounded_single_thread),
        GOCC_TEST(test_pool_bounded_threads),
        GOCC_TEST(test_pool_trim),
        GOCC_TEST(test_pool_drop_percent),
        GOCC_TEST(test_pool_thread_exit),
        GOCC_TEST(test_pool_free_with_foreign_caches),
        GOCC_TEST(test_pool_many_pools),
        GOCC_TEST(test_pool_concurrent),
        GOCC_TEST(test_pool_null),
        GOCC_TEST(test_pool_free_while_owner_walks_dead_caches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
