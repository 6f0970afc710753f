/*
 * test-merge.c - gocc_chan_merge (Go's FanIn): the "Fan-in" section of
 * gocc.h.
 *
 * What is checked: every value of every input comes out exactly once, each
 * input's values in order (8 producers on inputs of capacity 0, 1 and 16
 * into one output; a checksum and a per-producer sequence); out is closed
 * once every input is closed and drained, and only then; n == 0 closes out
 * at once; bad arguments are GOCC_EINVAL with nothing started and out left
 * open; a cancelled context stops forwarders blocked on send and on
 * receive, closes out, drops only the one value already taken, and leaves
 * the rest buffered in the inputs; a context already done forwards nothing;
 * a start that fails part way (the runtime's thread limit) starts nothing,
 * takes no value, leaves out open, and the same channels merge fine
 * afterwards; signal channels (element size 0) merge too.
 *
 * No cmocka assertion runs on a task: tasks record what they saw in
 * atomics. Every receive the test makes that could hang has a safety
 * context.
 */
#include "test-common.h"

#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

/* A producer task: sends id << 32 | i for i in [0, count) on ch (its own
 * reference), then closes ch and drops the reference. */
typedef struct prod {
    gocc_chan_t *ch;
    uint64_t id;
    int count;
    atomic_int sent;
} prod_t;

static int producer(gocc_ctx_t *ctx, void *arg) {
    prod_t *p = arg;
    for (int i = 0; i < p->count; i++) {
        uint64_t v = p->id << 32 | (uint64_t)i;
        if (gocc_chan_send(p->ch, &v, ctx) != 0) break;
        atomic_fetch_add(&p->sent, 1);
    }
    gocc_chan_close(p->ch);
    gocc_chan_release(p->ch);
    return 0;
}

/* out is open and empty: a try_recv would block. */
static void assert_open_empty(gocc_chan_t *out) {
    assert_int_equal(gocc_chan_try_recv(out, NULL), GOCC_EAGAIN);
}

/* ------------------------------------------------------------------------ */
/* tests */

/* 8 producers x N values through inputs of capacity 0, 1 and 16 into one
 * output of capacity 4: every value once, per-producer order, checksum,
 * then ECLOSED. The caller drops its input references right after the
 * call: the merge holds its own. */
#define NP 8
static void test_merge_many_producers(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int per = SCALE(10000);
    gocc_ctx_t *safety = safety_ctx();
    static const size_t caps[] = {0, 1, 16};
    gocc_chan_t *in[NP];
    prod_t p[NP];
    uint64_t want_sum = 0;
    for (int k = 0; k < NP; k++) {
        in[k] = chan_new(sizeof(uint64_t), caps[k % 3]);
        p[k] = (prod_t){.ch = gocc_chan_retain(in[k]), .id = (uint64_t)k, .count = per};
        for (int i = 0; i < per; i++) want_sum += (uint64_t)k << 32 | (uint64_t)i;
    }
    gocc_chan_t *out = chan_new(sizeof(uint64_t), 4);
    assert_int_equal(gocc_chan_merge(in, NP, out, NULL), 0);
    for (int k = 0; k < NP; k++) gocc_chan_release(in[k]);
    for (int k = 0; k < NP; k++) assert_int_equal(gocc_go(producer, safety, &p[k]), 0);

    int next[NP] = {0};
    uint64_t sum = 0, v;
    int total = 0, rc;
    while ((rc = gocc_chan_recv(out, &v, safety)) == 0) {
        uint64_t k = v >> 32;
        int i = (int)(v & 0xffffffffu);
        if (k >= NP) fail_msg("value %llx from no producer", (unsigned long long)v);
        if (i != next[k]) fail_msg("producer %d: got %d, want %d (order)", (int)k, i, next[k]);
        next[k]++;
        sum += v;
        total++;
    }
    assert_int_equal(rc, GOCC_ECLOSED);
    assert_int_equal(total, NP * per);
    for (int k = 0; k < NP; k++) assert_int_equal(next[k], per);
    assert_true(sum == want_sum);
    assert_int_equal(gocc_chan_close(out), GOCC_ECLOSED); /* the merge closed it */
    gocc_chan_release(out);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* out is closed only once EVERY input is closed and drained: with one
 * input still open, out stays open after the others finished. */
static void test_merge_closes_after_last_input(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_chan_t *a = chan_new(sizeof(int), 4), *b = chan_new(sizeof(int), 4);
    gocc_chan_t *out = chan_new(sizeof(int), 0);
    int one = 1, two = 2, v = 0;
    assert_int_equal(gocc_chan_send(a, &one, NULL), 0);
    assert_int_equal(gocc_chan_close(a), 0);
    gocc_chan_t *in[] = {a, b};
    assert_int_equal(gocc_chan_merge(in, 2, out, NULL), 0);
    assert_int_equal(gocc_chan_recv(out, &v, safety), 0);
    assert_int_equal(v, 1);
    /* a is done; b is open and empty: once the merge's tasks are all
     * parked (nothing more can happen), out must still be open. */
    wait_quiet(SAFETY_NS);
    assert_open_empty(out);
    assert_int_equal(gocc_chan_send(b, &two, NULL), 0);
    assert_int_equal(gocc_chan_recv(out, &v, safety), 0);
    assert_int_equal(v, 2);
    assert_int_equal(gocc_chan_close(b), 0);
    assert_int_equal(gocc_chan_recv(out, &v, safety), GOCC_ECLOSED);
    gocc_chan_release(a);
    gocc_chan_release(b);
    gocc_chan_release(out);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* n == 0: out is closed at once, no task. */
static void test_merge_zero_inputs(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_chan_t *out = chan_new(sizeof(int), 1);
    assert_int_equal(gocc_chan_merge(NULL, 0, out, NULL), 0);
    assert_int_equal(gocc_tasks_live(), start);
    int v = 7;
    assert_int_equal(gocc_chan_try_recv(out, &v), GOCC_ECLOSED);
    assert_int_equal(v, 0);
    gocc_chan_release(out);
    assert_int_equal(gocc_chan_merge(NULL, 0, NULL, NULL), GOCC_EINVAL);
    ASSERT_NO_TASKS(start);
}

/* Bad arguments: GOCC_EINVAL, nothing started, out left open, no value
 * taken from any input. */
static void test_merge_invalid(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_chan_t *a = chan_new(sizeof(int), 1), *b = chan_new(sizeof(int), 1);
    gocc_chan_t *small = chan_new(sizeof(short), 1), *sig = chan_new(0, 1);
    gocc_chan_t *out = chan_new(sizeof(int), 1);
    int one = 1;
    assert_int_equal(gocc_chan_send(a, &one, NULL), 0);

    gocc_chan_t *ok2[] = {a, b};
    assert_int_equal(gocc_chan_merge(ok2, 2, NULL, NULL), GOCC_EINVAL); /* NULL out */
    assert_int_equal(gocc_chan_merge(NULL, 2, out, NULL), GOCC_EINVAL); /* NULL in */
    gocc_chan_t *with_nil[] = {a, NULL};
    assert_int_equal(gocc_chan_merge(with_nil, 2, out, NULL), GOCC_EINVAL);
    gocc_chan_t *mixed[] = {a, small};
    assert_int_equal(gocc_chan_merge(mixed, 2, out, NULL), GOCC_EINVAL);
    gocc_chan_t *mixed0[] = {sig};
    assert_int_equal(gocc_chan_merge(mixed0, 1, out, NULL), GOCC_EINVAL);
    gocc_chan_t *self[] = {a, out}; /* out fed into itself could never close */
    assert_int_equal(gocc_chan_merge(self, 2, out, NULL), GOCC_EINVAL);

    assert_int_equal(gocc_tasks_live(), start);
    assert_open_empty(out);
    assert_int_equal(gocc_chan_len(a), 1); /* nothing taken */
    gocc_chan_release(a);
    gocc_chan_release(b);
    gocc_chan_release(small);
    gocc_chan_release(sig);
    gocc_chan_release(out);
    ASSERT_NO_TASKS(start);
}

/* Cancel while the forwarders are blocked: one holds a value it cannot send
 * (nobody reads out), one waits on an open empty input, one on an input
 * whose producer is blocked. The cancel stops all of them and closes out;
 * the value already taken is dropped, the rest stay in the input. */
static void test_merge_cancel_while_blocked(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(safety);
    assert_non_null(ctx);
    gocc_chan_t *full = chan_new(sizeof(int), 8);  /* 5 values buffered */
    gocc_chan_t *empty = chan_new(sizeof(int), 0); /* never sent on */
    gocc_chan_t *fed = chan_new(sizeof(int), 0);   /* a producer blocks on it */
    gocc_chan_t *out = chan_new(sizeof(int), 0);   /* never read until the end */
    for (int i = 0; i < 5; i++) assert_int_equal(gocc_chan_send(full, &i, NULL), 0);
    prod_t p = {.ch = gocc_chan_retain(fed), .id = 1, .count = 1000};
    assert_int_equal(gocc_go(producer, ctx, &p), 0);

    gocc_chan_t *in[] = {full, empty, fed};
    assert_int_equal(gocc_chan_merge(in, 3, out, ctx), 0);
    /* The forwarder of `full` takes one value and blocks sending it; the
     * one of `fed` takes the producer's first and blocks too. */
    int64_t end = gocc_now() + SAFETY_NS;
    while ((gocc_chan_len(full) != 4 || atomic_load(&p.sent) < 1) && gocc_now() < end)
        sleep_ns(100 * GOCC_MICROSECOND);
    assert_int_equal(gocc_chan_len(full), 4);
    CHECK_GE(atomic_load(&p.sent), 1);
    wait_blocked_in(2, "chan send", SAFETY_NS); /* the two forwarders, on out */
    int probe = 0; /* out is open: with nobody receiving, a send would block */
    assert_int_equal(gocc_chan_try_send(out, &probe), GOCC_EAGAIN);

    gocc_ctx_cancel(ctx);
    int v = 42;
    assert_int_equal(gocc_chan_recv(out, &v, safety), GOCC_ECLOSED); /* closed by the merge */
    assert_int_equal(v, 0);
    assert_int_equal(gocc_chan_len(full), 4); /* the taken one was dropped, the rest stay */
    for (int i = 1; i < 5; i++) {
        assert_int_equal(gocc_chan_try_recv(full, &v), 0);
        assert_int_equal(v, i);
    }
    ASSERT_NO_TASKS(start);
    assert_int_equal(gocc_chan_close(out), GOCC_ECLOSED);
    gocc_chan_release(full);
    gocc_chan_release(empty);
    gocc_chan_release(fed);
    gocc_chan_release(out);
    ctx_done_release(ctx);
    ctx_done_release(safety);
}

/* A context already done: the call succeeds, forwards nothing and closes
 * out; the inputs keep their values. */
static void test_merge_ctx_already_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    gocc_ctx_cancel(ctx);
    gocc_chan_t *a = chan_new(sizeof(int), 2), *b = chan_new(sizeof(int), 2);
    gocc_chan_t *out = chan_new(sizeof(int), 8);
    int one = 1;
    assert_int_equal(gocc_chan_send(a, &one, NULL), 0);
    assert_int_equal(gocc_chan_send(b, &one, NULL), 0);
    gocc_chan_t *in[] = {a, b};
    assert_int_equal(gocc_chan_merge(in, 2, out, ctx), 0);
    assert_int_equal(gocc_chan_recv(out, NULL, safety), GOCC_ECLOSED);
    assert_int_equal(gocc_chan_len(a), 1);
    assert_int_equal(gocc_chan_len(b), 1);
    ASSERT_NO_TASKS(start);
    gocc_chan_release(a);
    gocc_chan_release(b);
    gocc_chan_release(out);
    ctx_done_release(ctx);
    ctx_done_release(safety);
}

/* All or nothing: when a forwarder cannot start (here: its stack cannot be
 * had), the merge fails, has taken no value, out stays open and no task
 * stays behind; with the limit lifted the same channels merge and every
 * value comes through. */
static void test_merge_start_fails_all_or_nothing(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
#ifdef GOCC_TEST_SANITIZED
    /* Sanitizers shadow every mapping: 16 TiB stacks cost terabytes of
     * shadow there. The fault walk (test-fault, op_merge) fails every
     * allocation of a merge in turn in the sanitized build instead. */
    skip();
#endif
    gocc_runtime_config_t old;
    gocc_runtime_config_get(&old);
    /* Tasks are coroutines: a start fails when its stack cannot be had.
     * With 16 TiB stacks (address space only) the first few starts get one
     * and a later one does not, so the merge fails part-way. */
    size_t n = 64;
    gocc_chan_t **in = calloc(n, sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++) {
        in[i] = chan_new(sizeof(int), 1);
        int v = (int)i;
        assert_int_equal(gocc_chan_send(in[i], &v, NULL), 0);
    }
    gocc_chan_t *out = chan_new(sizeof(int), 0);

    gocc_runtime_config_t lim = {.stack_size = (size_t)16 << 40};
    assert_int_equal(gocc_runtime_configure(&lim), 0);
    int rc = gocc_chan_merge(in, n, out, NULL);
    gocc_runtime_config_t back = {.stack_size = old.stack_size};
    assert_int_equal(gocc_runtime_configure(&back), 0);

    if (rc != GOCC_ENOMEM && rc != GOCC_EINVAL) fail_msg("merge returned %d", rc);
    ASSERT_NO_TASKS(start);
    assert_open_empty(out);
    for (size_t i = 0; i < n; i++) assert_int_equal(gocc_chan_len(in[i]), 1);

    /* The same channels, no limit: everything comes through. */
    assert_int_equal(gocc_chan_merge(in, n, out, NULL), 0);
    for (size_t i = 0; i < n; i++) assert_int_equal(gocc_chan_close(in[i]), 0);
    long long sum = 0;
    int v, got = 0;
    while ((rc = gocc_chan_recv(out, &v, safety)) == 0) {
        sum += v;
        got++;
    }
    assert_int_equal(rc, GOCC_ECLOSED);
    assert_int_equal(got, (int)n);
    assert_true(sum == (long long)n * (long long)(n - 1) / 2);
    for (size_t i = 0; i < n; i++) gocc_chan_release(in[i]);
    free(in);
    gocc_chan_release(out);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Signal channels (element size 0): every signal comes through. */
static void test_merge_signal_channels(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    gocc_chan_t *a = chan_new(0, 3), *b = chan_new(0, 3), *out = chan_new(0, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gocc_chan_send(a, NULL, NULL), 0);
        assert_int_equal(gocc_chan_send(b, NULL, NULL), 0);
    }
    gocc_chan_close(a);
    gocc_chan_close(b);
    gocc_chan_t *in[] = {a, b};
    assert_int_equal(gocc_chan_merge(in, 2, out, NULL), 0);
    gocc_chan_release(a);
    gocc_chan_release(b);
    int got = 0, rc;
    while ((rc = gocc_chan_recv(out, NULL, safety)) == 0) got++;
    assert_int_equal(rc, GOCC_ECLOSED);
    assert_int_equal(got, 6);
    gocc_chan_release(out);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Merge repeatedly with a cancel racing the forwarding: out always ends
 * closed, no value is duplicated, none invented, no task left. */
static void test_merge_cancel_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_ctx_t *safety = safety_ctx();
    for (int round = 0; round < SCALE(200); round++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(safety);
        assert_non_null(ctx);
        gocc_chan_t *in[3];
        for (int k = 0; k < 3; k++) {
            in[k] = chan_new(sizeof(int), 16);
            for (int i = 0; i < 16; i++) {
                int v = k * 100 + i;
                assert_int_equal(gocc_chan_send(in[k], &v, NULL), 0);
            }
            assert_int_equal(gocc_chan_close(in[k]), 0); /* drained, out closes */
        }
        gocc_chan_t *out = chan_new(sizeof(int), 1);
        assert_int_equal(gocc_chan_merge(in, 3, out, ctx), 0);
        int v, got = 0, rc, next[3] = {0};
        while ((rc = gocc_chan_recv(out, &v, safety)) == 0) {
            int k = v / 100;
            assert_true(k >= 0 && k < 3);
            assert_true(v % 100 >= next[k]); /* increasing: no duplicate */
            next[k] = v % 100 + 1;
            if (++got == round % 40) gocc_ctx_cancel(ctx);
        }
        assert_int_equal(rc, GOCC_ECLOSED); /* cancelled or drained: closed */
        gocc_ctx_cancel(ctx);
        for (int k = 0; k < 3; k++) gocc_chan_release(in[k]);
        gocc_chan_release(out);
        ctx_done_release(ctx);
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-merge", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_merge_many_producers),
        GOCC_TEST(test_merge_closes_after_last_input),
        GOCC_TEST(test_merge_zero_inputs),
        GOCC_TEST(test_merge_invalid),
        GOCC_TEST(test_merge_cancel_while_blocked),
        GOCC_TEST(test_merge_ctx_already_done),
        GOCC_TEST(test_merge_start_fails_all_or_nothing),
        GOCC_TEST(test_merge_signal_channels),
        GOCC_TEST(test_merge_cancel_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
