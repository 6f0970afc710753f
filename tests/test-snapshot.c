/*
 * test-snapshot.c - the snapshot (gocc_snapshot_*): include/gocc.h's
 * "Snapshot" section. Go's atomic.Pointer with safe reclamation: readers
 * borrow without locks, writers replace, a replaced value goes to free_fn
 * exactly once, after its last borrow.
 *
 * Every value made here is a tracked_t with a magic word, its writer, its
 * version and a checksum over them; free_fn checks the magic (a second free
 * of the same value is counted), poisons it and frees it. Readers verify
 * magic and checksum on every borrow, and again just before they end a
 * borrow they held across other operations: under ASan a borrow that
 * outlived its value is a heap-use-after-free report, in every build it is
 * a poisoned magic. At the end, frees == values stored (+ the initial one).
 *
 * No cmocka assertion runs on a task: tasks record what they saw in atomics.
 */
#include "test-common.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* tracked values */

#define MAGIC_LIVE 0x5A5A0000C0FFEE01ULL
#define MAGIC_DEAD 0xDEADDEADDEADDEADULL

typedef struct tracked {
    uint64_t magic;
    int writer;
    uint64_t version;
    uint64_t check;
} tracked_t;

typedef struct frees {
    _Atomic uint64_t n;
    atomic_int double_free; /* free_fn saw a poisoned value */
    atomic_int null_freed;  /* free_fn got NULL */
} frees_t;

static uint64_t check_of(int writer, uint64_t version) {
    return (version * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)writer << 56) ^ 0x1234567ULL;
}

static tracked_t *tracked_new(int writer, uint64_t version) {
    tracked_t *t = malloc(sizeof *t);
    assert_non_null(t);
    t->magic = MAGIC_LIVE;
    t->writer = writer;
    t->version = version;
    t->check = check_of(writer, version);
    return t;
}

/* For tasks: no cmocka assertion; NULL on failure. */
static tracked_t *tracked_new_task(int writer, uint64_t version) {
    tracked_t *t = malloc(sizeof *t);
    if (t == NULL) return NULL;
    t->magic = MAGIC_LIVE;
    t->writer = writer;
    t->version = version;
    t->check = check_of(writer, version);
    return t;
}

static bool tracked_ok(const tracked_t *t) {
    return t != NULL && t->magic == MAGIC_LIVE && t->check == check_of(t->writer, t->version);
}

static void tracked_free(void *value, void *ud) {
    frees_t *f = ud;
    tracked_t *t = value;
    if (t == NULL) {
        atomic_fetch_add(&f->null_freed, 1);
        return;
    }
    if (t->magic != MAGIC_LIVE) atomic_fetch_add(&f->double_free, 1);
    t->magic = MAGIC_DEAD;
    free(t);
    atomic_fetch_add(&f->n, 1);
}

static gocc_snapshot_t *snapshot_new(void *initial, frees_t *f) {
    gocc_snapshot_t *s = gocc_snapshot_new(initial, f ? tracked_free : NULL, f);
    assert_non_null(s);
    return s;
}

static void frees_init(frees_t *f) {
    atomic_init(&f->n, 0);
    atomic_init(&f->double_free, 0);
    atomic_init(&f->null_freed, 0);
}

static void frees_assert(frees_t *f, uint64_t want) {
    assert_int_equal(atomic_load(&f->n), want);
    assert_int_equal(atomic_load(&f->double_free), 0);
    assert_int_equal(atomic_load(&f->null_freed), 0);
}

/* ------------------------------------------------------------------------ */

/* A borrow keeps its value across stores; the value goes at its last
 * release; values nobody borrowed go at once; free takes the last one. */
static void test_snapshot_basic(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    frees_t f;
    frees_init(&f);
    tracked_t *v1 = tracked_new(0, 1);
    gocc_snapshot_t *s = snapshot_new(v1, &f);

    gocc_snapshot_ref_t r1, r1b;
    assert_ptr_equal(gocc_snapshot_acquire(s, &r1), v1);
    assert_ptr_equal(r1.value, v1);
    assert_ptr_equal(gocc_snapshot_acquire(s, &r1b), v1); /* two borrows of one value */

    /* 100 stores while v1 is borrowed: v2..v100 are replaced with no
     * borrow and freed at once; v1 stays. */
    for (uint64_t ver = 2; ver <= 101; ver++)
        assert_int_equal(gocc_snapshot_store(s, tracked_new(0, ver)), 0);
    frees_assert(&f, 99);
    assert_true(tracked_ok(v1));
    assert_int_equal(v1->version, 1);

    gocc_snapshot_release(&r1);
    assert_null(r1.value); /* release clears the ref */
    assert_null(r1.node);
    gocc_snapshot_release(&r1); /* already released: nothing */
    frees_assert(&f, 99);       /* r1b still holds v1 */
    assert_true(tracked_ok(v1));
    gocc_snapshot_release(&r1b);
    frees_assert(&f, 100); /* v1 gone */

    gocc_snapshot_ref_t r;
    tracked_t *cur = gocc_snapshot_acquire(s, &r);
    assert_true(tracked_ok(cur));
    assert_int_equal(cur->version, 101);
    gocc_snapshot_release(&r);
    gocc_snapshot_free(s); /* frees v101 */
    frees_assert(&f, 101);
    ASSERT_NO_TASKS(start);
}

/* NULL snapshot, NULL refs, NULL values, no free_fn. */
static void test_snapshot_null(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_snapshot_ref_t r = {.value = (void *)&r, .node = (void *)&r};
    assert_null(gocc_snapshot_acquire(NULL, &r));
    assert_null(r.value);
    assert_null(r.node);
    gocc_snapshot_release(&r); /* ignored */
    gocc_snapshot_release(NULL);
    assert_int_equal(gocc_snapshot_store(NULL, &r), GOCC_EINVAL);
    assert_int_equal(gocc_snapshot_compare_and_swap(NULL, NULL, &r), GOCC_EINVAL);
    gocc_snapshot_free(NULL);

    /* NULL values are stored and borrowed like any other, never freed. */
    frees_t f;
    frees_init(&f);
    gocc_snapshot_t *s = snapshot_new(NULL, &f);
    assert_null(gocc_snapshot_acquire(s, NULL)); /* nowhere to borrow into */
    assert_null(gocc_snapshot_acquire(s, &r));
    assert_null(r.value);
    assert_non_null(r.node); /* a real borrow, of NULL */
    gocc_snapshot_release(&r);
    tracked_t *v = tracked_new(1, 1);
    assert_int_equal(gocc_snapshot_compare_and_swap(s, NULL, v), 1);
    assert_ptr_equal(gocc_snapshot_acquire(s, &r), v);
    gocc_snapshot_release(&r);
    assert_int_equal(gocc_snapshot_store(s, NULL), 0);
    frees_assert(&f, 1); /* v, not NULL */
    assert_null(gocc_snapshot_acquire(s, &r));
    gocc_snapshot_release(&r);
    gocc_snapshot_free(s); /* current value NULL: nothing to free */
    frees_assert(&f, 1);

    /* free_fn NULL: values are the caller's, never freed (stack values). */
    int a = 1, b = 2;
    s = gocc_snapshot_new(&a, NULL, NULL);
    assert_non_null(s);
    assert_ptr_equal(gocc_snapshot_acquire(s, &r), &a);
    assert_int_equal(gocc_snapshot_store(s, &b), 0);
    gocc_snapshot_release(&r);
    assert_int_equal(gocc_snapshot_compare_and_swap(s, &b, &a), 1);
    gocc_snapshot_free(s);
    ASSERT_NO_TASKS(start);
}

/* Go's CompareAndSwap: swaps only when the current value is expected;
 * a value not stored stays the caller's; CAS(x, x) on x is a success that
 * frees nothing; storing the current pointer again frees nothing. */
static void test_snapshot_compare_and_swap(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    frees_t f;
    frees_init(&f);
    tracked_t *a = tracked_new(0, 1), *b = tracked_new(0, 2), *c = tracked_new(0, 3);
    gocc_snapshot_t *s = snapshot_new(a, &f);
    gocc_snapshot_ref_t r;

    assert_int_equal(gocc_snapshot_compare_and_swap(s, b, c), 0); /* current is a */
    assert_ptr_equal(gocc_snapshot_acquire(s, &r), a);
    gocc_snapshot_release(&r);
    frees_assert(&f, 0);
    assert_true(tracked_ok(c)); /* still the caller's */

    assert_int_equal(gocc_snapshot_compare_and_swap(s, a, b), 1);
    frees_assert(&f, 1); /* a: no borrow, freed at once */
    assert_ptr_equal(gocc_snapshot_acquire(s, &r), b);

    assert_int_equal(gocc_snapshot_compare_and_swap(s, b, b), 1); /* same pointer */
    assert_int_equal(gocc_snapshot_store(s, b), 0);               /* same again */
    gocc_snapshot_release(&r);
    frees_assert(&f, 1);
    assert_true(tracked_ok(b));

    assert_int_equal(gocc_snapshot_compare_and_swap(s, a, c), 0); /* a is long gone */
    assert_int_equal(gocc_snapshot_compare_and_swap(s, b, c), 1);
    frees_assert(&f, 2); /* b, once */
    assert_ptr_equal(gocc_snapshot_acquire(s, &r), c);
    gocc_snapshot_release(&r);
    gocc_snapshot_free(s);
    frees_assert(&f, 3);
    ASSERT_NO_TASKS(start);
}

/* ------------------------------------------------------------------------ */
/* readers and writers */

#define ST_READERS 4
#define ST_HOLD 3 /* borrows a reader keeps open at once */

typedef struct stress {
    gocc_snapshot_t *s;
    long writes;      /* per writer */
    atomic_bool stop; /* set once the writers are done */
    atomic_int writers_done;
    atomic_int readers_done;
    _Atomic uint64_t stores;   /* values made current */
    _Atomic uint64_t cas_fail; /* CAS attempts that lost */
    _Atomic uint64_t reads;
    atomic_int bad;       /* a borrow saw a damaged value */
    atomic_int went_back; /* a writer's versions went backwards */
    atomic_int errors;    /* a call failed */
} stress_t;

/* Writer 0 stores version 1, 2, ...; writer 1 does the same through
 * compare_and_swap against what it last saw, retrying when it loses. */
static int writer_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    stress_t *st = arg;
    static atomic_int next_id;
    int id = atomic_fetch_add(&next_id, 1) % 2 ? 2 : 1;
    for (uint64_t ver = 1; ver <= (uint64_t)st->writes;) {
        tracked_t *v = tracked_new_task(id, ver);
        if (v == NULL) {
            atomic_fetch_add(&st->errors, 1);
            break;
        }
        if (id == 1) {
            if (gocc_snapshot_store(st->s, v) != 0) {
                free(v);
                atomic_fetch_add(&st->errors, 1);
                break;
            }
        } else {
            gocc_snapshot_ref_t r;
            void *cur = gocc_snapshot_acquire(st->s, &r);
            gocc_snapshot_release(&r); /* only the pointer is compared */
            int rc = gocc_snapshot_compare_and_swap(st->s, cur, v);
            if (rc != 1) {
                free(v); /* not stored: still ours */
                if (rc != 0) {
                    atomic_fetch_add(&st->errors, 1);
                    break;
                }
                atomic_fetch_add(&st->cas_fail, 1);
                continue;
            }
        }
        atomic_fetch_add(&st->stores, 1);
        ver++;
        if (ver % 64 == 0) sched_yield();
    }
    atomic_fetch_add(&st->writers_done, 1);
    return 0;
}

static int reader_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    stress_t *st = arg;
    gocc_snapshot_ref_t held[ST_HOLD];
    memset(held, 0, sizeof held);
    uint64_t last[3] = {0, 0, 0};
    uint64_t reads = 0;
    size_t slot = 0;
    bool stopping;
    do {
        stopping = atomic_load(&st->stop); /* one more pass after the writers */
        gocc_snapshot_ref_t *r = &held[slot];
        if (r->node != NULL) { /* end the oldest borrow, checking it survived */
            if (!tracked_ok(r->value)) atomic_fetch_add(&st->bad, 1);
            gocc_snapshot_release(r);
        }
        tracked_t *t = gocc_snapshot_acquire(st->s, r);
        reads++;
        if (!tracked_ok(t) || t != r->value || t->writer < 0 || t->writer > 2) {
            atomic_fetch_add(&st->bad, 1);
        } else {
            if (t->version < last[t->writer]) atomic_fetch_add(&st->went_back, 1);
            last[t->writer] = t->version;
        }
        /* Some borrows end at once, the others stay open for a while. */
        if (reads % 4 == 0) gocc_snapshot_release(r);
        slot = (slot + 1) % ST_HOLD;
    } while (!stopping);
    for (int i = 0; i < ST_HOLD; i++) {
        if (held[i].node != NULL && !tracked_ok(held[i].value)) atomic_fetch_add(&st->bad, 1);
        gocc_snapshot_release(&held[i]);
    }
    atomic_fetch_add(&st->reads, reads);
    atomic_fetch_add(&st->readers_done, 1);
    return 0;
}

/* 4 readers borrow, verify and release in a loop (some borrows held across
 * many stores) while 2 writers replace the value (store and CAS). Every
 * borrow sees an intact value, each writer's versions never go backwards
 * for a reader, and every value is freed exactly once: frees == stores + 1
 * once the snapshot is freed. */
static void run_stress(int readers, long writes) {
    frees_t f;
    frees_init(&f);
    int64_t t0 = gocc_now();
    stress_t st;
    memset(&st, 0, sizeof st);
    st.writes = writes;
    st.s = snapshot_new(tracked_new(0, 0), &f);
    for (int i = 0; i < readers; i++) go(reader_task, &st);
    for (int i = 0; i < 2; i++) go(writer_task, &st);
    assert_true(wait_count(&st.writers_done, 2, 4 * SAFETY_NS));
    atomic_store(&st.stop, true);
    assert_true(wait_count(&st.readers_done, readers, SAFETY_NS));
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(atomic_load(&st.bad), 0);
    assert_int_equal(atomic_load(&st.went_back), 0);
    assert_int_equal(atomic_load(&st.stores), 2 * (uint64_t)writes);
    CHECK_GE(atomic_load(&st.reads), readers);
    /* Everything replaced is freed already (no borrow is left)... */
    frees_assert(&f, atomic_load(&st.stores));
    gocc_snapshot_free(st.s); /* ... and the last value with the snapshot */
    frees_assert(&f, atomic_load(&st.stores) + 1);
    print_message("%d readers: %llu reads, %llu stores, %llu CAS retries in %lld ms\n", readers,
                  (unsigned long long)atomic_load(&st.reads),
                  (unsigned long long)atomic_load(&st.stores),
                  (unsigned long long)atomic_load(&st.cas_fail),
                  (long long)((gocc_now() - t0) / GOCC_MILLISECOND));
}

static void test_snapshot_readers_writers(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    run_stress(ST_READERS, SCALE(10000));
    ASSERT_NO_TASKS(start);
}

/* More reader tasks than cores: borrows are often interrupted half-way. */
static void test_snapshot_many_readers(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    run_stress(16, SCALE(4000));
    ASSERT_NO_TASKS(start);
}

/* White-box (src/snapshot.c): the word's low 6 bits count readers in the
 * middle of an acquire. When 63 are there, another acquire must wait (the
 * count would otherwise carry into the node address) and go on, with the
 * right value, as soon as one leaves. 63 readers preempted at once are
 * rare, so the test puts the 63 there itself. */
_Atomic uintptr_t *gocc__snapshot_word(gocc_snapshot_t *s);

typedef struct sat {
    gocc_snapshot_t *s;
    void *got;
    atomic_int state; /* 0 before, 1 in acquire, 2 returned */
} sat_t;

static int sat_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sat_t *t = arg;
    gocc_snapshot_ref_t r;
    atomic_store(&t->state, 1);
    t->got = gocc_snapshot_acquire(t->s, &r);
    gocc_snapshot_release(&r);
    atomic_store(&t->state, 2);
    return 0;
}

static void test_snapshot_saturated_count(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    frees_t f;
    frees_init(&f);
    tracked_t *v = tracked_new(0, 1);
    gocc_snapshot_t *s = snapshot_new(v, &f);
    _Atomic uintptr_t *word = gocc__snapshot_word(s);
    assert_int_equal(atomic_load(word) & 63, 0);
    assert_true((atomic_load(word) & ~(uintptr_t)63) != 0);
    atomic_fetch_add(word, 63); /* 63 readers "in the middle of acquire" */

    sat_t t = {.s = s};
    atomic_init(&t.state, 0);
    go(sat_task, &t);
    assert_true(wait_count(&t.state, 1, SAFETY_NS));
    sleep_ns(SETTLE_NS);                          /* too short can only let a bug pass, not fail */
    assert_int_equal(atomic_load(&t.state), 1);   /* waiting its turn */
    assert_int_equal(atomic_load(word) & 63, 63); /* no carry */

    atomic_fetch_sub(word, 1); /* one of them leaves */
    assert_true(wait_count(&t.state, 2, SAFETY_NS));
    assert_ptr_equal(t.got, v);
    assert_int_equal(atomic_load(word) & 63, 62);
    atomic_fetch_sub(word, 62); /* the rest leave */
    assert_int_equal(atomic_load(word) & 63, 0);
    frees_assert(&f, 0);
    gocc_snapshot_free(s);
    frees_assert(&f, 1);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-snapshot", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_snapshot_basic),
        GOCC_TEST(test_snapshot_null),
        GOCC_TEST(test_snapshot_compare_and_swap),
        GOCC_TEST(test_snapshot_readers_writers),
        GOCC_TEST(test_snapshot_many_readers),
        GOCC_TEST(test_snapshot_saturated_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
