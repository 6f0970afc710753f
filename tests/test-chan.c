/*
 * test-chan.c - channels: the semantics of Go's chan, ported from Go's own
 * tests (runtime/chan_test.go, test/chan/ *.go) the way crossbeam-channel
 * ported them. Each test names the Go test it comes from.
 *
 * A task is known to be blocked when gocc_dump shows it parked in the
 * channel call (async_start_blocked, test-common.h): a parked task is on
 * the channel's wait queue, so starting waiters one after another that way
 * also fixes the order they queued in. No test guesses from a pause.
 */
#include "test-common.h"

#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

/* One blocking channel operation run on a task through async_call
 * (test-common.h): a.rc is the call's result, a.t_ret when it returned. */
typedef struct op {
    async_call a;
    gocc_chan_t *ch;
    gocc_ctx_t *ctx;
    int in;       /* value to send */
    int out;      /* where a receive stores */
    bool discard; /* receive with out == NULL */
} op_t;

static void op_init(op_t *o, gocc_chan_t *ch, gocc_ctx_t *ctx, int in) {
    memset(o, 0, sizeof *o);
    o->ch = ch;
    o->ctx = ctx;
    o->in = in;
    o->out = -1;
}

static int send_call(void *arg) {
    op_t *o = arg;
    return gocc_chan_send(o->ch, &o->in, o->ctx);
}

static int recv_call(void *arg) {
    op_t *o = arg;
    return gocc_chan_recv(o->ch, o->discard ? NULL : &o->out, o->ctx);
}

static void op_start(op_t *o, int (*call)(void *)) { async_start(&o->a, call, o); }

/* Start o and return once it is parked in its channel call (a macro: a
 * failure names the caller's line). */
#define op_start_blocked(o, call) \
    async_start_blocked(&(o)->a, (call), (o), (call) == send_call ? "chan send" : "chan receive")

static bool op_done(op_t *o) { return async_done(&o->a); }
static bool op_wait(op_t *o, int64_t timeout_ns) { return async_wait(&o->a, timeout_ns); }

/* A task that sends from..from+n-1 with ctx (NULL: none), then counts. */
typedef struct seq_sender {
    gocc_chan_t *ch;
    gocc_ctx_t *ctx;
    int from, n;
    atomic_int *fails;
    atomic_int *done;
} seq_sender_t;

static int seq_sender_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    seq_sender_t *s = arg;
    for (int i = 0; i < s->n; i++) {
        int v = s->from + i;
        if (gocc_chan_send(s->ch, &v, s->ctx) != 0) {
            atomic_fetch_add(s->fails, 1);
            break;
        }
    }
    atomic_fetch_add_explicit(s->done, 1, memory_order_release);
    return 0;
}

static const size_t test_caps[] = {0, 1, 7, 1024};
#define NCAPS (sizeof test_caps / sizeof test_caps[0])

/* ------------------------------------------------------------------------ */

/* from runtime/chan_test.go TestChan: "receive from empty chan blocks" */
static void test_chan_recv_empty_blocks(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), test_caps[ci]);
        assert_non_null(c);
        op_t r1, r2;
        op_init(&r1, c, sc, 0);
        op_init(&r2, c, sc, 0);
        op_start_blocked(&r1, recv_call);
        op_start_blocked(&r2, recv_call);
        assert_false(op_done(&r1));
        assert_false(op_done(&r2));
        /* Non-blocking receives do not block. */
        int v = -1;
        assert_int_equal(gocc_chan_try_recv(c, &v), GOCC_EAGAIN);
        gocc_case_t cs = {.ch = c, .dir = GOCC_RECV, .elem = &v};
        assert_int_equal(gocc_select_try(&cs, 1), GOCC_EAGAIN);
        int zero = 0;
        assert_int_equal(gocc_chan_send(c, &zero, sc), 0);
        assert_int_equal(gocc_chan_send(c, &zero, sc), 0);
        assert_true(op_wait(&r1, SAFETY_NS));
        assert_true(op_wait(&r2, SAFETY_NS));
        assert_int_equal(r1.a.rc, 0);
        assert_int_equal(r2.a.rc, 0);
        assert_int_equal(r1.out, 0);
        assert_int_equal(r2.out, 0);
        assert_int_equal(gocc_chan_len(c), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "send to full chan blocks" */
static void test_chan_send_full_blocks(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        size_t cap = test_caps[ci];
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        for (int i = 0; i < (int)cap; i++) assert_int_equal(gocc_chan_try_send(c, &i), 0);
        assert_int_equal(gocc_chan_len(c), cap);
        op_t s;
        op_init(&s, c, sc, 4242);
        op_start_blocked(&s, send_call);
        assert_false(op_done(&s));
        assert_int_equal(gocc_chan_len(c), cap); /* a blocked sender is not buffered */
        /* Non-blocking sends do not block. */
        int x = 99;
        assert_int_equal(gocc_chan_try_send(c, &x), GOCC_EAGAIN);
        gocc_case_t cs = {.ch = c, .dir = GOCC_SEND, .elem = &x};
        assert_int_equal(gocc_select_try(&cs, 1), GOCC_EAGAIN);
        int v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
        assert_int_equal(v, cap == 0 ? 4242 : 0);
        assert_true(op_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 0);
        /* The blocked sender's value went in behind the others. */
        assert_int_equal(gocc_chan_len(c), cap);
        for (int i = 1; i < (int)cap; i++) {
            assert_int_equal(gocc_chan_try_recv(c, &v), 0);
            assert_int_equal(v, i);
        }
        if (cap > 0) {
            assert_int_equal(gocc_chan_try_recv(c, &v), 0);
            assert_int_equal(v, 4242);
        }
        assert_int_equal(gocc_chan_try_recv(c, &v), GOCC_EAGAIN);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "we receive 0 from closed chan" */
static void test_chan_recv_closed_zero(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        size_t cap = test_caps[ci];
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        for (int i = 0; i < (int)cap; i++) assert_int_equal(gocc_chan_send(c, &i, sc), 0);
        assert_int_equal(gocc_chan_close(c), 0);
        assert_int_equal(gocc_chan_len(c), cap);
        assert_int_equal(gocc_chan_cap(c), cap);
        for (int i = 0; i < (int)cap; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, i);
        }
        for (int k = 0; k < 3; k++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), GOCC_ECLOSED);
            assert_int_equal(v, 0);
            v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, NULL), GOCC_ECLOSED);
            assert_int_equal(v, 0);
            v = -1;
            assert_int_equal(gocc_chan_try_recv(c, &v), GOCC_ECLOSED);
            assert_int_equal(v, 0);
            assert_int_equal(gocc_chan_recv(c, NULL, sc), GOCC_ECLOSED);
        }
        assert_int_equal(gocc_chan_len(c), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "close unblocks receive" */
static void test_chan_close_unblocks_recv(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), test_caps[ci]);
        assert_non_null(c);
        op_t r;
        op_init(&r, c, NULL, 0); /* no context: only the close can wake it */
        r.out = 0x5a5a5a5a;
        op_start_blocked(&r, recv_call);
        assert_int_equal(gocc_chan_close(c), 0);
        assert_true(op_wait(&r, SAFETY_NS));
        assert_int_equal(r.a.rc, GOCC_ECLOSED);
        assert_int_equal(r.out, 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "send 100 integers, receive them
 * non-corrupted in FIFO order" (recv and recv2 forms; the second here
 * receives through a one-case select, Go's `v, ok := <-c`). */
static void test_chan_fifo_100(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), test_caps[ci]);
        assert_non_null(c);
        atomic_int fails = 0, done = 0;
        /* The sender blocks with no context (the NULL-ctx path). */
        seq_sender_t s = {c, NULL, 0, 100, &fails, &done};
        assert_int_equal(gocc_go(seq_sender_fn, NULL, &s), 0);
        for (int i = 0; i < 100; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, i);
        }
        assert_true(wait_count(&done, 1, SAFETY_NS));
        assert_int_equal(gocc_go(seq_sender_fn, NULL, &s), 0);
        for (int i = 0; i < 100; i++) {
            int v = -1;
            gocc_case_t cs = {.ch = c, .dir = GOCC_RECV, .elem = &v};
            assert_int_equal(gocc_select(&cs, 1, sc), 0);
            assert_true(cs.ok);
            assert_int_equal(v, i);
        }
        assert_true(wait_count(&done, 2, SAFETY_NS));
        assert_int_equal(atomic_load(&fails), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "send 1000 integers in 4 goroutines,
 * ensure that we receive what we send" */
typedef struct tally_recv {
    gocc_chan_t *ch;
    gocc_ctx_t *ctx;
    int n;
    atomic_int *counts; /* indexed by value */
    int nvals;
    atomic_int *fails;
    atomic_int *done;
} tally_recv_t;

static int tally_recv_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tally_recv_t *t = arg;
    for (int i = 0; i < t->n; i++) {
        int v = -1;
        if (gocc_chan_recv(t->ch, &v, t->ctx) != 0 || v < 0 || v >= t->nvals) {
            atomic_fetch_add(t->fails, 1);
            break;
        }
        atomic_fetch_add(&t->counts[v], 1);
    }
    atomic_fetch_add_explicit(t->done, 1, memory_order_release);
    return 0;
}

static void test_chan_4x4_tally(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { P = 4 };
    const int L = SCALE(1000);
    atomic_int *counts = calloc((size_t)L, sizeof *counts);
    assert_non_null(counts);
    for (size_t ci = 0; ci < NCAPS; ci++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), test_caps[ci]);
        assert_non_null(c);
        for (int i = 0; i < L; i++) atomic_init(&counts[i], 0);
        atomic_int fails = 0, sdone = 0, rdone = 0;
        seq_sender_t s = {c, sc, 0, L, &fails, &sdone};
        tally_recv_t r = {c, sc, L, counts, L, &fails, &rdone};
        for (int p = 0; p < P; p++) assert_int_equal(gocc_go(seq_sender_fn, NULL, &s), 0);
        for (int p = 0; p < P; p++) assert_int_equal(gocc_go(tally_recv_fn, NULL, &r), 0);
        assert_true(wait_count(&sdone, P, SAFETY_NS));
        assert_true(wait_count(&rdone, P, SAFETY_NS));
        assert_int_equal(atomic_load(&fails), 0);
        for (int i = 0; i < L; i++) assert_int_equal(atomic_load(&counts[i]), P);
        assert_int_equal(gocc_chan_len(c), 0);
        gocc_chan_release(c);
    }
    free(counts);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan: "Test len/cap", plus the NULL channel
 * (gocc_chan_len/cap(NULL) are 0, Clarifications) */
static void test_chan_len_cap(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        size_t cap = test_caps[ci];
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        assert_int_equal(gocc_chan_len(c), 0);
        assert_int_equal(gocc_chan_cap(c), cap);
        for (int i = 0; i < (int)cap; i++) {
            assert_int_equal(gocc_chan_try_send(c, &i), 0);
            assert_int_equal(gocc_chan_len(c), (size_t)i + 1);
        }
        assert_int_equal(gocc_chan_len(c), cap);
        assert_int_equal(gocc_chan_cap(c), cap);
        gocc_chan_release(c); /* frees the buffered values */
    }
    assert_int_equal(gocc_chan_len(NULL), 0);
    assert_int_equal(gocc_chan_cap(NULL), 0);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestNonblockRecvRace */
typedef struct nbr_arg {
    gocc_chan_t *c; /* the task's own reference */
    atomic_int *fails, *done;
} nbr_arg_t;

static int nbr_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    nbr_arg_t *a = arg;
    int v = -1;
    int rc = gocc_chan_try_recv(a->c, &v);
    /* The channel always holds the value or is closed: never "would block". */
    if (!(rc == 0 && v == 1) && !(rc == GOCC_ECLOSED && v == 0)) atomic_fetch_add(a->fails, 1);
    gocc_chan_release(a->c);
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static void test_chan_nonblock_recv_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int n = SCALE(4000);
    nbr_arg_t *args = calloc((size_t)n, sizeof *args);
    assert_non_null(args);
    atomic_int fails = 0, done = 0;
    int started = 0;
    for (int i = 0; i < n; i++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), 1);
        assert_non_null(c);
        int one = 1;
        assert_int_equal(gocc_chan_send(c, &one, sc), 0);
        args[i] = (nbr_arg_t){gocc_chan_retain(c), &fails, &done};
        assert_ptr_equal(args[i].c, c);
        assert_int_equal(gocc_go(nbr_fn, NULL, &args[i]), 0);
        started++;
        assert_int_equal(gocc_chan_close(c), 0);
        int v = -1;
        int rc = gocc_chan_recv(c, &v, sc);
        assert_true((rc == 0 && v == 1) || (rc == GOCC_ECLOSED && v == 0));
        gocc_chan_release(c);
        if (atomic_load(&fails)) break;
    }
    assert_true(wait_count(&done, started, SAFETY_NS));
    assert_int_equal(atomic_load(&fails), 0);
    assert_int_equal(started, n);
    free(args);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/nonblock.go: try-send/try-recv against a partner, for
 * buffer 0 and 1, with int32, int64, bool and string-sized elements */
typedef struct nb_partner {
    gocc_chan_t *c;
    gocc_chan_t *sync; /* elem_size 0 */
    const void *val;
    size_t size;
    atomic_int *fails;
} nb_partner_t;

static int nb_receiver_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    nb_partner_t *p = arg;
    unsigned char buf[64];
    memset(buf, 0xee, sizeof buf);
    if (gocc_chan_recv(p->c, buf, NULL) != 0 || memcmp(buf, p->val, p->size) != 0)
        atomic_fetch_add(p->fails, 1);
    if (gocc_chan_send(p->sync, NULL, NULL) != 0) atomic_fetch_add(p->fails, 1);
    return 0;
}

static int nb_sender_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    nb_partner_t *p = arg;
    if (gocc_chan_send(p->c, p->val, NULL) != 0) atomic_fetch_add(p->fails, 1);
    if (gocc_chan_send(p->sync, NULL, NULL) != 0) atomic_fetch_add(p->fails, 1);
    return 0;
}

static void test_chan_nonblock_go(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    int32_t i32_rv = 123, i32_sv = 234;
    int64_t i64_rv = 123456, i64_sv = 234567;
    bool b_rv = true, b_sv = true;
    char s_rv[32] = "hello", s_sv[32] = "hello again";
    struct {
        const void *rv, *sv;
        size_t size;
    } kinds[] = {
        {&i32_rv, &i32_sv, sizeof i32_rv},
        {&i64_rv, &i64_sv, sizeof i64_rv},
        {&b_rv, &b_sv, sizeof b_rv},
        {s_rv, s_sv, sizeof s_rv},
    };
    atomic_int fails = 0;
    gocc_chan_t *sync = gocc_chan_new(0, 0);
    assert_non_null(sync);
    for (size_t buffer = 0; buffer < 2; buffer++) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            size_t sz = kinds[k].size;
            gocc_chan_t *c = gocc_chan_new(sz, buffer);
            assert_non_null(c);
            unsigned char buf[64];
            assert_int_equal(gocc_chan_try_recv(c, buf), GOCC_EAGAIN);

            /* Send to a receiver that arrives at some point. */
            nb_partner_t rp = {c, sync, kinds[k].rv, sz, &fails};
            assert_int_equal(gocc_go(nb_receiver_fn, NULL, &rp), 0);
            int64_t end = gocc_now() + SAFETY_NS;
            int rc;
            while ((rc = gocc_chan_try_send(c, kinds[k].rv)) == GOCC_EAGAIN && gocc_now() < end)
                pause_ns(10 * GOCC_MICROSECOND);
            assert_int_equal(rc, 0);
            assert_int_equal(gocc_chan_recv(sync, NULL, sc), 0);

            /* Receive from a sender that arrives at some point. */
            nb_partner_t sp = {c, sync, kinds[k].sv, sz, &fails};
            assert_int_equal(gocc_go(nb_sender_fn, NULL, &sp), 0);
            if (buffer > 0) assert_int_equal(gocc_chan_recv(sync, NULL, sc), 0);
            end = gocc_now() + SAFETY_NS;
            memset(buf, 0xee, sizeof buf);
            while ((rc = gocc_chan_try_recv(c, buf)) == GOCC_EAGAIN && gocc_now() < end)
                pause_ns(10 * GOCC_MICROSECOND);
            assert_int_equal(rc, 0);
            assert_memory_equal(buf, kinds[k].sv, sz);
            if (buffer == 0) assert_int_equal(gocc_chan_recv(sync, NULL, sc), 0);
            gocc_chan_release(c);
        }
    }
    assert_int_equal(atomic_load(&fails), 0);
    gocc_chan_release(sync);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/fifo.go AsynchFifo */
static void test_chan_fifo_async(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    enum { N = 10 };
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), N);
    assert_non_null(ch);
    for (int i = 0; i < N; i++) assert_int_equal(gocc_chan_send(ch, &i, NULL), 0);
    for (int i = 0; i < N; i++) {
        int v = -1;
        assert_int_equal(gocc_chan_recv(ch, &v, NULL), 0);
        assert_int_equal(v, i);
    }
    gocc_chan_release(ch);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/fifo.go SynchFifo */
typedef struct chain {
    gocc_chan_t *ch, *in, *out;
    gocc_ctx_t *ctx;
    int val;
    atomic_int *fails;
} chain_t;

static int chain_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    chain_t *c = arg;
    int v = -1, one = 1;
    if (gocc_chan_recv(c->in, NULL, c->ctx) != 0) atomic_fetch_add(c->fails, 1);
    if (gocc_chan_recv(c->ch, &v, c->ctx) != 0 || v != c->val) atomic_fetch_add(c->fails, 1);
    if (gocc_chan_send(c->out, &one, c->ctx) != 0) atomic_fetch_add(c->fails, 1);
    return 0;
}

static void test_chan_fifo_sync(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { N = 10 };
    atomic_int fails = 0;
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    gocc_chan_t *links[N + 1];
    chain_t chains[N];
    for (int i = 0; i <= N; i++) assert_non_null(links[i] = gocc_chan_new(sizeof(int), 0));
    for (int i = 0; i < N; i++) {
        chains[i] = (chain_t){ch, links[i], links[i + 1], sc, i, &fails};
        assert_int_equal(gocc_go(chain_fn, NULL, &chains[i]), 0);
    }
    int zero = 0;
    assert_int_equal(gocc_chan_send(links[0], &zero, sc), 0);
    for (int i = 0; i < N; i++) assert_int_equal(gocc_chan_send(ch, &i, sc), 0);
    assert_int_equal(gocc_chan_recv(links[N], NULL, sc), 0);
    assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    assert_int_equal(atomic_load(&fails), 0);
    for (int i = 0; i <= N; i++) gocc_chan_release(links[i]);
    gocc_chan_release(ch);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/sieve1.go: a chain of filter tasks, stopped at the end by
 * cancelling the context every task was started with (each task holds its
 * own reference to the context and to its channels). */
typedef struct sieve_arg {
    gocc_chan_t *in, *out; /* owned references */
    int prime;
} sieve_arg_t;

static int generate_fn(gocc_ctx_t *ctx, void *arg) {
    sieve_arg_t *a = arg;
    for (int i = 2;; i++)
        if (gocc_chan_send(a->out, &i, ctx) != 0) break;
    gocc_chan_release(a->out);
    free(a);
    return 0;
}

static int filter_fn(gocc_ctx_t *ctx, void *arg) {
    sieve_arg_t *a = arg;
    int i;
    while (gocc_chan_recv(a->in, &i, ctx) == 0) {
        if (i % a->prime != 0 && gocc_chan_send(a->out, &i, ctx) != 0) break;
    }
    gocc_chan_release(a->in);
    gocc_chan_release(a->out);
    free(a);
    return 0;
}

static void test_chan_sieve(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    static const int primes[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                                 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, SAFETY_NS);
    assert_non_null(ctx);
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    assert_non_null(ch);
    sieve_arg_t *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->out = gocc_chan_retain(ch);
    assert_int_equal(gocc_go(generate_fn, ctx, g), 0);
    for (size_t k = 0; k < sizeof primes / sizeof primes[0]; k++) {
        int prime = -1;
        assert_int_equal(gocc_chan_recv(ch, &prime, ctx), 0);
        assert_int_equal(prime, primes[k]);
        gocc_chan_t *ch1 = gocc_chan_new(sizeof(int), 0);
        assert_non_null(ch1);
        sieve_arg_t *f = calloc(1, sizeof *f);
        assert_non_null(f);
        f->in = ch; /* hand our reference over */
        f->out = gocc_chan_retain(ch1);
        f->prime = prime;
        assert_int_equal(gocc_go(filter_fn, ctx, f), 0);
        ch = ch1;
    }
    assert_int_equal(gocc_ctx_err(ctx), 0); /* the safety net did not fire */
    /* Stop everything: cancel, and drop our reference at once (the tasks
     * hold their own). */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(ch);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/zerosize.go (make(chan struct{}) and make(chan struct{}, 1)),
 * extended: elem_size 0 channels carry signals, elem/out may be NULL */
static void test_chan_zero_size(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    /* Buffered: counts signals. */
    gocc_chan_t *c = gocc_chan_new(0, 3);
    assert_non_null(c);
    assert_int_equal(gocc_chan_cap(c), 3);
    for (int i = 0; i < 3; i++) assert_int_equal(gocc_chan_send(c, NULL, sc), 0);
    assert_int_equal(gocc_chan_len(c), 3);
    assert_int_equal(gocc_chan_try_send(c, NULL), GOCC_EAGAIN);
    int dummy = 7; /* a non-NULL pointer is fine too and is not written */
    assert_int_equal(gocc_chan_recv(c, &dummy, sc), 0);
    assert_int_equal(dummy, 7);
    assert_int_equal(gocc_chan_recv(c, NULL, sc), 0);
    assert_int_equal(gocc_chan_try_recv(c, NULL), 0);
    assert_int_equal(gocc_chan_try_recv(c, NULL), GOCC_EAGAIN);
    assert_int_equal(gocc_chan_len(c), 0);
    assert_int_equal(gocc_chan_try_send(c, NULL), 0);
    assert_int_equal(gocc_chan_close(c), 0);
    assert_int_equal(gocc_chan_recv(c, NULL, sc), 0); /* drains */
    assert_int_equal(gocc_chan_recv(c, NULL, sc), GOCC_ECLOSED);
    assert_int_equal(gocc_chan_send(c, NULL, sc), GOCC_ECLOSED);
    gocc_chan_release(c);

    /* Unbuffered: rendezvous. */
    c = gocc_chan_new(0, 0);
    assert_non_null(c);
    assert_int_equal(gocc_chan_try_send(c, NULL), GOCC_EAGAIN);
    for (int k = 0; k < 10; k++) {
        op_t s;
        op_init(&s, c, sc, 0);
        /* send_call passes &s.in; with elem_size 0 nothing is read */
        op_start(&s, send_call);
        assert_int_equal(gocc_chan_recv(c, NULL, sc), 0);
        assert_true(op_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 0);
        op_t r;
        op_init(&r, c, sc, 0);
        r.discard = true;
        op_start(&r, recv_call);
        assert_int_equal(gocc_chan_send(c, NULL, sc), 0);
        assert_true(op_wait(&r, SAFETY_NS));
        assert_int_equal(r.a.rc, 0);
    }
    gocc_chan_release(c);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan (receive forms): out == NULL takes the
 * value and discards it (Go's `<-c` as a statement) */
static void test_chan_recv_discard(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = gocc_chan_new(sizeof(int), 3);
    assert_non_null(c);
    for (int i = 1; i <= 3; i++) assert_int_equal(gocc_chan_send(c, &i, sc), 0);
    assert_int_equal(gocc_chan_recv(c, NULL, sc), 0);
    assert_int_equal(gocc_chan_len(c), 2);
    assert_int_equal(gocc_chan_try_recv(c, NULL), 0);
    assert_int_equal(gocc_chan_len(c), 1);
    int v = -1;
    assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
    assert_int_equal(v, 3);
    gocc_chan_release(c);

    c = gocc_chan_new(sizeof(int), 0);
    assert_non_null(c);
    op_t s;
    op_init(&s, c, sc, 77);
    op_start(&s, send_call);
    assert_int_equal(gocc_chan_recv(c, NULL, sc), 0);
    assert_true(op_wait(&s, SAFETY_NS));
    assert_int_equal(s.a.rc, 0);
    assert_int_equal(gocc_chan_try_recv(c, NULL), GOCC_EAGAIN);
    gocc_chan_release(c);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "sending/receiving from a nil channel blocks",
 * "...inside a select is never selected" (try forms), with this API's
 * rule that a nil channel without a context that can end is GOCC_EINVAL */
static void test_chan_nil_channel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    int v = 7;
    /* No context, or one that can never be done: EINVAL at once. */
    assert_int_equal(gocc_chan_send(NULL, &v, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_chan_recv(NULL, &v, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_chan_send(NULL, &v, gocc_ctx_background()), GOCC_EINVAL);
    assert_int_equal(gocc_chan_recv(NULL, &v, gocc_ctx_background()), GOCC_EINVAL);
    /* Try forms: never ready. */
    assert_int_equal(gocc_chan_try_send(NULL, &v), GOCC_EAGAIN);
    assert_int_equal(gocc_chan_try_recv(NULL, &v), GOCC_EAGAIN);
    assert_int_equal(v, 7);
    /* Misuse. */
    assert_int_equal(gocc_chan_close(NULL), GOCC_EINVAL);
    assert_null(gocc_chan_retain(NULL));
    gocc_chan_release(NULL);

    /* With a context: blocks until it is cancelled. */
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    op_t s, r;
    op_init(&s, NULL, ctx, 1);
    op_init(&r, NULL, ctx, 0);
    op_start_blocked(&s, send_call);
    op_start_blocked(&r, recv_call);
    assert_false(op_done(&s));
    assert_false(op_done(&r));
    int64_t t0 = gocc_now();
    gocc_ctx_cancel(ctx);
    assert_true(op_wait(&s, PROMPT_NS));
    assert_true(op_wait(&r, PROMPT_NS));
    assert_int_equal(s.a.rc, GOCC_ECANCELED);
    assert_int_equal(r.a.rc, GOCC_ECANCELED);
    assert_true(s.a.t_ret - t0 < PROMPT_NS);
    assert_true(r.a.t_ret - t0 < PROMPT_NS);
    /* Already cancelled: at once. */
    assert_int_equal(gocc_chan_send(NULL, &v, ctx), GOCC_ECANCELED);
    assert_int_equal(gocc_chan_recv(NULL, &v, ctx), GOCC_ECANCELED);
    gocc_ctx_release(ctx);

    /* With a deadline: GOCC_EDEADLINE when it passes. */
    int64_t d0 = gocc_now();
    ctx = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(ctx);
    assert_int_equal(gocc_chan_recv(NULL, &v, ctx), GOCC_EDEADLINE);
    int64_t el = gocc_now() - d0;
    assert_true(el >= 29 * GOCC_MILLISECOND);
    assert_true(el < 30 * GOCC_MILLISECOND + PROMPT_NS);
    assert_int_equal(gocc_chan_send(NULL, &v, ctx), GOCC_EDEADLINE);
    ctx_done_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "sending to a closed channel panics" and
 * "receiving from a closed channel never blocks": here the misuse returns
 * GOCC_ECLOSED and changes nothing */
static void test_chan_close_misuse(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t ci = 0; ci < NCAPS; ci++) {
        size_t cap = test_caps[ci];
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        int n = cap > 2 ? 2 : (int)cap;
        for (int i = 0; i < n; i++) assert_int_equal(gocc_chan_send(c, &i, sc), 0);
        assert_int_equal(gocc_chan_close(c), 0);
        int x = 99;
        assert_int_equal(gocc_chan_send(c, &x, sc), GOCC_ECLOSED);
        assert_int_equal(gocc_chan_send(c, &x, NULL), GOCC_ECLOSED);
        assert_int_equal(gocc_chan_try_send(c, &x), GOCC_ECLOSED);
        gocc_case_t cs = {.ch = c, .dir = GOCC_SEND, .elem = &x, .ok = true};
        assert_int_equal(gocc_select_try(&cs, 1), 0);
        assert_false(cs.ok);
        assert_int_equal(gocc_chan_close(c), GOCC_ECLOSED);
        assert_int_equal(gocc_chan_close(c), GOCC_ECLOSED);
        assert_int_equal(gocc_chan_len(c), (size_t)n);
        for (int i = 0; i < n; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, i);
        }
        for (int k = 0; k < 10; k++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), GOCC_ECLOSED);
            assert_int_equal(v, 0);
        }
        gocc_chan_release(c);
    }
    /* Constructor misuse: elem_size * capacity overflows. */
    errno = 0;
    assert_null(gocc_chan_new(SIZE_MAX / 2 + 1, 4));
    assert_int_equal(errno, EINVAL);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan "close unblocks receive", with several
 * receivers, and for blocked senders: all get GOCC_ECLOSED; a blocked
 * sender's value is never delivered */
static void test_chan_close_wakes_all(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { W = 4 };
    static const size_t caps[] = {0, 3};
    for (size_t ci = 0; ci < 2; ci++) {
        size_t cap = caps[ci];
        /* Receivers on an empty channel. */
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        op_t r[W];
        for (int i = 0; i < W; i++) {
            op_init(&r[i], c, i % 2 ? sc : NULL, 0);
            r[i].out = 0x77;
            op_start_blocked(&r[i], recv_call);
        }
        assert_int_equal(gocc_chan_close(c), 0);
        for (int i = 0; i < W; i++) {
            assert_true(op_wait(&r[i], PROMPT_NS));
            assert_int_equal(r[i].a.rc, GOCC_ECLOSED);
            assert_int_equal(r[i].out, 0);
        }
        gocc_chan_release(c);

        /* Senders on a full channel. */
        c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        for (int i = 0; i < (int)cap; i++) assert_int_equal(gocc_chan_send(c, &i, sc), 0);
        op_t s[W];
        for (int i = 0; i < W; i++) {
            op_init(&s[i], c, i % 2 ? sc : NULL, 1000 + i);
            op_start_blocked(&s[i], send_call);
        }
        assert_int_equal(gocc_chan_close(c), 0);
        for (int i = 0; i < W; i++) {
            assert_true(op_wait(&s[i], PROMPT_NS));
            assert_int_equal(s[i].a.rc, GOCC_ECLOSED);
        }
        /* Only the values buffered before the close come out. */
        for (int i = 0; i < (int)cap; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, i);
        }
        int v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, sc), GOCC_ECLOSED);
        assert_int_equal(v, 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go testBlock: a blocking call whose context is
 * already done returns its error and has NO effect, even if it could have
 * completed at once (Clarifications "A context already done wins") */
static void test_chan_ctx_already_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_ctx_t *cancelled = gocc_ctx_with_cancel(NULL);
    assert_non_null(cancelled);
    gocc_ctx_cancel(cancelled);
    gocc_ctx_t *expired = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_SECOND);
    assert_non_null(expired);
    assert_int_equal(gocc_ctx_err(expired), GOCC_EDEADLINE);
    gocc_ctx_t *done[2] = {cancelled, expired};
    int want[2] = {GOCC_ECANCELED, GOCC_EDEADLINE};

    for (int d = 0; d < 2; d++) {
        /* Buffered with room: the send does not enqueue. */
        gocc_chan_t *c = gocc_chan_new(sizeof(int), 2);
        assert_non_null(c);
        int x = 5;
        assert_int_equal(gocc_chan_send(c, &x, done[d]), want[d]);
        assert_int_equal(gocc_chan_len(c), 0);
        /* Buffered with a value: the receive does not take it. */
        assert_int_equal(gocc_chan_try_send(c, &x), 0);
        int v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, done[d]), want[d]);
        assert_int_equal(gocc_chan_len(c), 1);
        assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
        assert_int_equal(v, 5);
        gocc_chan_release(c);

        /* Unbuffered with a receiver waiting: the send does not hand off. */
        c = gocc_chan_new(sizeof(int), 0);
        assert_non_null(c);
        op_t r;
        op_init(&r, c, sc, 0);
        op_start_blocked(&r, recv_call);
        int bad = 666;
        assert_int_equal(gocc_chan_send(c, &bad, done[d]), want[d]);
        /* Still parked: a hand-off would have woken it before the send
         * returned (a woken task is runnable, not parked, in the dump). */
        async_blocked(&r.a, "chan receive");
        int good = 42;
        assert_int_equal(gocc_chan_send(c, &good, sc), 0);
        assert_true(op_wait(&r, SAFETY_NS));
        assert_int_equal(r.a.rc, 0);
        assert_int_equal(r.out, 42);

        /* Unbuffered with a sender waiting: the receive does not take. */
        op_t s;
        op_init(&s, c, sc, 43);
        op_start_blocked(&s, send_call);
        v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, done[d]), want[d]);
        async_blocked(&s.a, "chan send"); /* still parked, as above */
        assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
        assert_int_equal(v, 43);
        assert_true(op_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 0);
        gocc_chan_release(c);
    }
    ctx_done_release(cancelled);
    ctx_done_release(expired);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go testBlock ("receiving from a non-ready channel
 * always blocks") with cancellation: a cancelled send/recv returns
 * GOCC_ECANCELED promptly and had no effect */
static void test_chan_cancel_blocked(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t cap = 0; cap < 2; cap++) {
        /* A blocked sender. */
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        int seven = 7;
        if (cap) assert_int_equal(gocc_chan_send(c, &seven, sc), 0);
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        op_t s;
        op_init(&s, c, ctx, 8);
        op_start_blocked(&s, send_call);
        assert_false(op_done(&s));
        int64_t t0 = gocc_now();
        gocc_ctx_cancel(ctx);
        assert_true(op_wait(&s, PROMPT_NS));
        assert_true(s.a.t_ret - t0 < PROMPT_NS);
        assert_int_equal(s.a.rc, GOCC_ECANCELED);
        int v = -1;
        if (cap) {
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, 7);
        }
        /* The 8 was not delivered and is not still queued. */
        assert_int_equal(gocc_chan_try_recv(c, &v), GOCC_EAGAIN);
        assert_int_equal(gocc_chan_len(c), 0);
        op_t s2;
        op_init(&s2, c, sc, 9);
        op_start(&s2, send_call);
        assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
        assert_int_equal(v, 9);
        assert_true(op_wait(&s2, SAFETY_NS));
        assert_int_equal(s2.a.rc, 0);
        gocc_ctx_release(ctx);

        /* A blocked receiver. */
        ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        op_t r;
        op_init(&r, c, ctx, 0);
        r.out = 1234;
        op_start_blocked(&r, recv_call);
        assert_false(op_done(&r));
        t0 = gocc_now();
        gocc_ctx_cancel(ctx);
        assert_true(op_wait(&r, PROMPT_NS));
        assert_true(r.a.t_ret - t0 < PROMPT_NS);
        assert_int_equal(r.a.rc, GOCC_ECANCELED);
        int x = 10;
        if (cap == 0) {
            /* The cancelled receiver is gone: nobody to hand off to. */
            assert_int_equal(gocc_chan_try_send(c, &x), GOCC_EAGAIN);
        } else {
            /* A value sent now stays for the next receiver. */
            assert_int_equal(gocc_chan_try_send(c, &x), 0);
            assert_int_equal(gocc_chan_len(c), 1);
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, 10);
        }
        gocc_ctx_release(ctx);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go testBlock, with a deadline context:
 * GOCC_EDEADLINE once it passes (not before), for send and recv */
static void test_chan_deadline(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_chan_t *c = gocc_chan_new(sizeof(int), 1);
    assert_non_null(c);
    const int64_t d = 30 * GOCC_MILLISECOND;
    int v = -1;
    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, d);
    assert_non_null(ctx);
    assert_int_equal(gocc_chan_recv(c, &v, ctx), GOCC_EDEADLINE);
    int64_t el = gocc_now() - t0;
    assert_true(el >= d - GOCC_MILLISECOND);
    assert_true(el < d + PROMPT_NS);
    assert_int_equal(gocc_ctx_err(ctx), GOCC_EDEADLINE);
    ctx_done_release(ctx);

    int one = 1;
    assert_int_equal(gocc_chan_try_send(c, &one), 0);
    t0 = gocc_now();
    ctx = gocc_ctx_with_timeout(NULL, d);
    assert_non_null(ctx);
    int two = 2;
    assert_int_equal(gocc_chan_send(c, &two, ctx), GOCC_EDEADLINE);
    el = gocc_now() - t0;
    assert_true(el >= d - GOCC_MILLISECOND);
    assert_true(el < d + PROMPT_NS);
    ctx_done_release(ctx);
    assert_int_equal(gocc_chan_len(c), 1);
    assert_int_equal(gocc_chan_try_recv(c, &v), 0);
    assert_int_equal(v, 1);
    gocc_chan_release(c);
    ASSERT_NO_TASKS(start);
}

/* No Go counterpart (Go has a GC; here a channel lives while anyone holds
 * a reference), in the style of runtime/chan_test.go TestMultiConsumer's
 * feeder/closer: a channel whose creator let go at once keeps working for
 * the tasks that hold it, and goes with the last reference. */
typedef struct rc_arg {
    gocc_chan_t *c; /* owned */
    int n;
    long sum;
    atomic_int *done;
} rc_arg_t;

static int rc_producer_fn(gocc_ctx_t *ctx, void *arg) {
    rc_arg_t *a = arg;
    for (int i = 1; i <= a->n; i++)
        if (gocc_chan_send(a->c, &i, ctx) != 0) break;
    gocc_chan_close(a->c);
    gocc_chan_release(a->c);
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static int rc_consumer_fn(gocc_ctx_t *ctx, void *arg) {
    rc_arg_t *a = arg;
    int v;
    while (gocc_chan_recv(a->c, &v, ctx) == 0) a->sum += v;
    gocc_chan_release(a->c);
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static void test_chan_refcount(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_chan_t *c = gocc_chan_new(sizeof(int), 2);
    assert_non_null(c);
    assert_ptr_equal(gocc_chan_retain(c), c);
    assert_ptr_equal(gocc_chan_retain(c), c);
    gocc_chan_release(c);
    gocc_chan_release(c);
    int one = 1;
    assert_int_equal(gocc_chan_try_send(c, &one), 0); /* still ours */
    gocc_chan_release(c);                             /* frees it with its buffered value */

    gocc_ctx_t *sc = safety_ctx();
    for (size_t cap = 0; cap < 3; cap++) {
        c = gocc_chan_new(sizeof(int), cap * 4);
        assert_non_null(c);
        atomic_int done = 0;
        rc_arg_t p = {gocc_chan_retain(c), 200, 0, &done};
        rc_arg_t q = {gocc_chan_retain(c), 0, 0, &done};
        gocc_chan_release(c); /* the tasks now hold the only references */
        assert_int_equal(gocc_go(rc_consumer_fn, sc, &q), 0);
        assert_int_equal(gocc_go(rc_producer_fn, sc, &p), 0);
        assert_true(wait_count(&done, 2, SAFETY_NS));
        assert_int_equal(q.sum, 200 * 201 / 2);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/nonblock.go (channels of int32, int64, bool, string), with
 * a 256-byte struct and a 13-byte one: elements are copied whole. */
typedef struct big {
    unsigned char b[256];
} big_t;
typedef struct odd {
    unsigned char b[13];
} odd_t;

typedef struct big_sender {
    gocc_chan_t *c;
    size_t size;
    int n;
    atomic_int *fails;
} big_sender_t;

static void fill_pattern(unsigned char *p, size_t size, int i) {
    for (size_t j = 0; j < size; j++) p[j] = (unsigned char)(i * 31 + (int)j * 7 + 1);
}

static int big_sender_fn(gocc_ctx_t *ctx, void *arg) {
    big_sender_t *s = arg;
    unsigned char buf[256];
    for (int i = 0; i < s->n; i++) {
        fill_pattern(buf, s->size, i);
        if (gocc_chan_send(s->c, buf, ctx) != 0) {
            atomic_fetch_add(s->fails, 1);
            break;
        }
        memset(buf, 0, sizeof buf); /* the channel holds its own copy */
    }
    return 0;
}

static void test_chan_large_elem(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    size_t sizes[] = {sizeof(big_t), sizeof(odd_t)};
    size_t caps[] = {0, 1, 4};
    for (size_t si = 0; si < 2; si++) {
        for (size_t ci = 0; ci < 3; ci++) {
            gocc_chan_t *c = gocc_chan_new(sizes[si], caps[ci]);
            assert_non_null(c);
            atomic_int fails = 0;
            big_sender_t s = {c, sizes[si], 64, &fails};
            assert_int_equal(gocc_go(big_sender_fn, sc, &s), 0);
            for (int i = 0; i < 64; i++) {
                unsigned char got[257], want[256];
                memset(got, 0xcc, sizeof got);
                fill_pattern(want, sizes[si], i);
                assert_int_equal(gocc_chan_recv(c, got, sc), 0);
                assert_memory_equal(got, want, sizes[si]);
                assert_int_equal(got[sizes[si]], 0xcc); /* no overrun */
            }
            assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
            assert_int_equal(atomic_load(&fails), 0);
            /* Closed and empty: zero-filled, whole element. */
            assert_int_equal(gocc_chan_close(c), 0);
            unsigned char got[256];
            memset(got, 0xcc, sizeof got);
            assert_int_equal(gocc_chan_recv(c, got, sc), GOCC_ECLOSED);
            for (size_t j = 0; j < sizes[si]; j++) assert_int_equal(got[j], 0);
            gocc_chan_release(c);
        }
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/fifo.go (FIFO per channel), for waiters: receivers blocked
 * in a known order are served in that order (direct handoff on an
 * unbuffered channel; an empty buffered channel likewise) */
static void test_chan_blocked_receivers_fifo(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { W = 4 };
    static const size_t caps[] = {0, 3};
    for (size_t ci = 0; ci < 2; ci++) {
        gocc_chan_t *c = gocc_chan_new(sizeof(int), caps[ci]);
        assert_non_null(c);
        op_t r[W];
        for (int i = 0; i < W; i++) {
            op_init(&r[i], c, sc, 0);
            op_start_blocked(&r[i], recv_call);
        }
        for (int i = 0; i < W; i++) assert_false(op_done(&r[i]));
        for (int i = 0; i < W; i++) assert_int_equal(gocc_chan_send(c, &i, sc), 0);
        for (int i = 0; i < W; i++) {
            assert_true(op_wait(&r[i], SAFETY_NS));
            assert_int_equal(r[i].a.rc, 0);
            assert_int_equal(r[i].out, i); /* first blocked, first served */
        }
        assert_int_equal(gocc_chan_len(c), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/fifo.go (FIFO per channel), for blocked senders: on a full
 * buffered channel they enter the buffer in the order they blocked, behind
 * what was there; on an unbuffered channel they hand off in that order */
static void test_chan_blocked_senders_fifo(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { W = 4 };
    static const size_t caps[] = {0, 2};
    for (size_t ci = 0; ci < 2; ci++) {
        size_t cap = caps[ci];
        gocc_chan_t *c = gocc_chan_new(sizeof(int), cap);
        assert_non_null(c);
        for (int i = 0; i < (int)cap; i++) {
            int v = 100 + i;
            assert_int_equal(gocc_chan_send(c, &v, sc), 0);
        }
        op_t s[W];
        for (int i = 0; i < W; i++) {
            op_init(&s[i], c, sc, i);
            op_start_blocked(&s[i], send_call);
        }
        for (int i = 0; i < W; i++) assert_false(op_done(&s[i]));
        for (int i = 0; i < (int)cap; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, 100 + i);
        }
        for (int i = 0; i < W; i++) {
            int v = -1;
            assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
            assert_int_equal(v, i);
        }
        for (int i = 0; i < W; i++) {
            assert_true(op_wait(&s[i], SAFETY_NS));
            assert_int_equal(s[i].a.rc, 0);
        }
        assert_int_equal(gocc_chan_len(c), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestMultiConsumer */
typedef struct mc_worker {
    gocc_chan_t *q, *r;
    gocc_ctx_t *ctx;
    int w;
    atomic_int *fails;
    atomic_int *left; /* the last worker to finish closes r */
} mc_worker_t;

static const int mc_pn[] = {2, 3, 7, 11, 13, 17, 19, 23, 27, 31};

static int mc_worker_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mc_worker_t *m = arg;
    int v, rc;
    while ((rc = gocc_chan_recv(m->q, &v, m->ctx)) == 0) {
        if (mc_pn[m->w % 10] == v) pause_ns(GOCC_MICROSECOND); /* mess with the fifo-ish order */
        if (gocc_chan_send(m->r, &v, m->ctx) != 0) {
            atomic_fetch_add(m->fails, 1);
            break;
        }
    }
    if (rc != 0 && rc != GOCC_ECLOSED) atomic_fetch_add(m->fails, 1);
    if (atomic_fetch_sub(m->left, 1) == 1) gocc_chan_close(m->r);
    return 0;
}

typedef struct mc_feeder {
    gocc_chan_t *q;
    gocc_ctx_t *ctx;
    int niter;
    long expect;
    atomic_int *fails;
} mc_feeder_t;

static int mc_feeder_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mc_feeder_t *f = arg;
    for (int i = 0; i < f->niter; i++) {
        int v = mc_pn[i % 10];
        f->expect += v;
        if (gocc_chan_send(f->q, &v, f->ctx) != 0) {
            atomic_fetch_add(f->fails, 1);
            break;
        }
    }
    gocc_chan_close(f->q); /* no more work */
    return 0;
}

static void test_chan_multi_consumer(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { NWORK = 23 };
    const int niter = SCALE(100000);
    gocc_chan_t *q = gocc_chan_new(sizeof(int), NWORK * 3);
    gocc_chan_t *r = gocc_chan_new(sizeof(int), NWORK * 3);
    assert_non_null(q);
    assert_non_null(r);
    atomic_int fails = 0, left = NWORK;
    mc_worker_t w[NWORK];
    for (int i = 0; i < NWORK; i++) {
        w[i] = (mc_worker_t){q, r, sc, i, &fails, &left};
        assert_int_equal(gocc_go(mc_worker_fn, NULL, &w[i]), 0);
    }
    mc_feeder_t f = {q, sc, niter, 0, &fails};
    assert_int_equal(gocc_go(mc_feeder_fn, NULL, &f), 0);
    long n = 0, s = 0;
    int v, rc;
    while ((rc = gocc_chan_recv(r, &v, sc)) == 0) {
        n++;
        s += v;
    }
    assert_int_equal(rc, GOCC_ECLOSED);
    assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    assert_int_equal(atomic_load(&fails), 0);
    assert_int_equal(n, niter);
    assert_int_equal(s, f.expect);
    gocc_chan_release(q);
    gocc_chan_release(r);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* Regression (found by the a-lessons' ASan run): a receive from a full
 * zero-size buffer with a sender parked moved the sender's value into the
 * freed slot with memcpy(slot, NULL, 0): undefined behaviour, reported by
 * UBSan. A signal channel's senders may pass NULL. */
static int null_send_call(void *arg) {
    op_t *o = arg;
    return gocc_chan_send(o->ch, NULL, o->ctx);
}

static void test_chan_zero_size_full_buffer_parked_null_sender(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t cap = 1; cap <= 3; cap++) {
        gocc_chan_t *ch = chan_new(0, cap);
        for (size_t i = 0; i < cap; i++) assert_int_equal(gocc_chan_try_send(ch, NULL), 0);
        op_t o;
        op_init(&o, ch, sc, 0);
        /* Parked: its send cannot complete until a slot frees. */
        async_start_blocked(&o.a, null_send_call, &o, "chan send");
        assert_int_equal(gocc_chan_recv(ch, NULL, sc), 0); /* frees a slot */
        assert_true(op_wait(&o, PROMPT_NS));
        assert_int_equal(o.a.rc, 0);
        assert_int_equal(gocc_chan_len(ch), cap); /* the parked value moved in */
        for (size_t i = 0; i < cap; i++) assert_int_equal(gocc_chan_try_recv(ch, NULL), 0);
        assert_int_equal(gocc_chan_try_recv(ch, NULL), GOCC_EAGAIN);
        gocc_chan_release(ch);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* ---- size-checked send/recv, element destructor ---- */

/* GOCC_SEND / GOCC_RECV refuse a value of the wrong size (nothing moves)
 * and pass the right size through; gocc_chan_elem_size says the size. */
static void test_chan_sized(void **state) {
    (void)state;
    TEST_NAME();
    gocc_chan_t *ch = chan_new(sizeof(int64_t), 2);
    assert_int_equal(gocc_chan_elem_size(ch), sizeof(int64_t));
    assert_int_equal(gocc_chan_elem_size(NULL), 0);
    int small = 7;
    int64_t big = 42, got = 0;
    assert_int_equal(GOCC_SEND(ch, &small, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_chan_len(ch), 0);
    assert_int_equal(GOCC_SEND(ch, &big, NULL), 0);
    assert_int_equal(GOCC_RECV(ch, &small, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_chan_len(ch), 1); /* nothing was taken */
    assert_int_equal(GOCC_RECV(ch, &got, NULL), 0);
    assert_true(got == 42);
    assert_int_equal(GOCC_SEND((gocc_chan_t *)NULL, &big, NULL), GOCC_EINVAL);
    gocc_chan_release(ch);
}

static void free_ptr(void *elem, void *ud) {
    free(*(void **)elem);
    atomic_fetch_add((atomic_int *)ud, 1);
}

/* Pointers left in the buffer at the last release go to the destructor,
 * once each (LeakSanitizer would report them otherwise); values already
 * received do not. */
static void test_chan_elem_destructor(void **state) {
    (void)state;
    TEST_NAME();
    atomic_int freed = 0;
    gocc_chan_t *ch = chan_new(sizeof(void *), 8);
    assert_int_equal(gocc_chan_set_elem_destructor(NULL, free_ptr, &freed), GOCC_EINVAL);
    assert_int_equal(gocc_chan_set_elem_destructor(ch, free_ptr, &freed), 0);
    for (int i = 0; i < 8; i++) { /* wrap the ring: recvx moves */
        void *p = malloc(16);
        assert_int_equal(gocc_chan_send(ch, &p, NULL), 0);
        if (i < 3) {
            void *q;
            assert_int_equal(gocc_chan_recv(ch, &q, NULL), 0);
            free(q);
        }
    }
    gocc_chan_t *extra = gocc_chan_retain(ch);
    gocc_chan_release(ch);
    assert_int_equal(atomic_load(&freed), 0); /* not the last reference */
    gocc_chan_release(extra);
    assert_int_equal(atomic_load(&freed), 5);
}

int main(void) {
    /* No test here records TEST_NAME(): the alarm only has to come before
     * meson's 600 s; the stuck watchdog names what hangs. */
    test_main_init("test-chan", 590u);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_chan_recv_empty_blocks),
        GOCC_TEST(test_chan_send_full_blocks),
        GOCC_TEST(test_chan_recv_closed_zero),
        GOCC_TEST(test_chan_close_unblocks_recv),
        GOCC_TEST(test_chan_fifo_100),
        GOCC_TEST(test_chan_4x4_tally),
        GOCC_TEST(test_chan_len_cap),
        GOCC_TEST(test_chan_nonblock_recv_race),
        GOCC_TEST(test_chan_nonblock_go),
        GOCC_TEST(test_chan_fifo_async),
        GOCC_TEST(test_chan_fifo_sync),
        GOCC_TEST(test_chan_sieve),
        GOCC_TEST(test_chan_zero_size),
        GOCC_TEST(test_chan_recv_discard),
        GOCC_TEST(test_chan_nil_channel),
        GOCC_TEST(test_chan_close_misuse),
        GOCC_TEST(test_chan_close_wakes_all),
        GOCC_TEST(test_chan_ctx_already_done),
        GOCC_TEST(test_chan_cancel_blocked),
        GOCC_TEST(test_chan_deadline),
        GOCC_TEST(test_chan_refcount),
        GOCC_TEST(test_chan_large_elem),
        GOCC_TEST(test_chan_blocked_receivers_fifo),
        GOCC_TEST(test_chan_blocked_senders_fifo),
        GOCC_TEST(test_chan_multi_consumer),
        GOCC_TEST(test_chan_zero_size_full_buffer_parked_null_sender),
        GOCC_TEST(test_chan_sized),
        GOCC_TEST(test_chan_elem_destructor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
