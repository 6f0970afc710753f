/*
 * test-select.c - gocc_select / gocc_select_try, ported from Go's own tests
 * (runtime/chan_test.go, test/chan/select*.go, nonblock.go,
 * doubleselect.go) the way crossbeam-channel ported them. Each test names
 * the Go test it comes from.
 *
 * A task is known to be blocked when gocc_dump shows it parked in its call
 * (async_start_blocked, wait_blocked_in: test-common.h), which also fixes
 * the order waiters queued in; no test guesses from a pause. Fairness
 * bands are many standard deviations wide.
 */
#include "test-common.h"

#include <stdlib.h>

/* ------------------------------------------------------------------------ */
/* helpers */

/* A blocking select run on a task through async_call (test-common.h):
 * a.rc is its result, a.t_ret when it returned. */
#define MAXC 8
typedef struct sel {
    async_call a;
    gocc_case_t cases[MAXC];
    size_t n;
    gocc_ctx_t *ctx;
    int vals[MAXC];    /* storage the cases point into */
    bool after_parked; /* call only once another select is parked */
} sel_t;

static void sel_init(sel_t *s, gocc_ctx_t *ctx) {
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
}

/* Add a case whose elem points at the sel's own storage, preset to v. */
static void sel_add(sel_t *s, gocc_chan_t *ch, int dir, int v) {
    assert_true(s->n < MAXC);
    s->vals[s->n] = v;
    s->cases[s->n] = (gocc_case_t){.ch = ch, .dir = dir, .elem = &s->vals[s->n], .ok = false};
    s->n++;
}

static int sel_call(void *arg) {
    sel_t *s = arg;
    if (s->after_parked && !blocked_reached(1, "select", SAFETY_NS)) return -999;
    return gocc_select(s->cases, s->n, s->ctx);
}

static void sel_start(sel_t *s) { async_start(&s->a, sel_call, s); }

/* Start s and return once it is parked (in @p reason, NULL: any wait; a
 * macro: a failure names the caller's line). */
#define sel_start_blocked(s, reason) async_start_blocked(&(s)->a, sel_call, (s), (reason))

static bool sel_wait(sel_t *s, int64_t timeout_ns) { return async_wait(&s->a, timeout_ns); }

/* ------------------------------------------------------------------------ */

/* from test/chan/select3.go "selects with default cases don't block" and
 * "sending/receiving from a nil channel inside a select is never selected",
 * and test/chan/nonblock.go (empty channels: default taken) */
static void test_select_try_nothing_ready(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_chan_t *empty0 = chan_new(sizeof(int), 0);
    gocc_chan_t *empty1 = chan_new(sizeof(int), 1);
    gocc_chan_t *full1 = chan_new(sizeof(int), 1);
    int x = 5, y = -1;
    assert_int_equal(gocc_chan_try_send(full1, &x), 0);

    /* select { default: } */
    assert_int_equal(gocc_select_try(NULL, 0), GOCC_EAGAIN);
    gocc_case_t none[1] = {{0}};
    assert_int_equal(gocc_select_try(none, 0), GOCC_EAGAIN);
    /* nil channels only */
    gocc_case_t nil[2] = {{.ch = NULL, .dir = GOCC_RECV, .elem = &y},
                          {.ch = NULL, .dir = GOCC_SEND, .elem = &x}};
    assert_int_equal(gocc_select_try(nil, 2), GOCC_EAGAIN);
    /* receive from empty channels, send to unbuffered (no receiver) and full */
    gocc_case_t cs[5] = {
        {.ch = empty0, .dir = GOCC_RECV, .elem = &y}, {.ch = empty1, .dir = GOCC_RECV, .elem = &y},
        {.ch = empty0, .dir = GOCC_SEND, .elem = &x}, {.ch = full1, .dir = GOCC_SEND, .elem = &x},
        {.ch = NULL, .dir = GOCC_RECV, .elem = &y},
    };
    for (int k = 0; k < 100; k++) assert_int_equal(gocc_select_try(cs, 5), GOCC_EAGAIN);
    assert_int_equal(y, -1);
    assert_int_equal(gocc_chan_len(empty1), 0);
    assert_int_equal(gocc_chan_len(full1), 1);
    /* The same with a blocking select and a context already done. */
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    assert_non_null(ctx);
    gocc_ctx_cancel(ctx);
    assert_int_equal(gocc_select(cs, 5, ctx), GOCC_ECANCELED);
    gocc_ctx_release(ctx);
    gocc_chan_release(empty0);
    gocc_chan_release(empty1);
    gocc_chan_release(full1);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "selects with ready channels don't block" and
 * test/chan/select4.go (only the chosen case's destination is written) */
static void test_select_ready(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = chan_new(sizeof(int), 1);
    gocc_chan_t *c1 = chan_new(sizeof(int), 0);
    int x = 7;
    gocc_case_t s[1] = {{.ch = c, .dir = GOCC_SEND, .elem = &x}};
    assert_int_equal(gocc_select_try(s, 1), 0);
    assert_true(s[0].ok);
    assert_int_equal(gocc_chan_len(c), 1);
    int y = -1;
    assert_int_equal(gocc_chan_recv(c, &y, sc), 0);
    assert_int_equal(y, 7);

    /* select4.go: c <- 42; select { case *f() = <-c1: case x.a = <-c: } */
    int f_target = -1, xa = -1, fortytwo = 42;
    assert_int_equal(gocc_chan_send(c, &fortytwo, sc), 0);
    gocc_case_t r[2] = {{.ch = c1, .dir = GOCC_RECV, .elem = &f_target},
                        {.ch = c, .dir = GOCC_RECV, .elem = &xa}};
    assert_int_equal(gocc_select(r, 2, sc), 1);
    assert_true(r[1].ok);
    assert_int_equal(xa, 42);
    assert_int_equal(f_target, -1);
    assert_int_equal(gocc_chan_len(c), 0);

    /* A receive case may discard (elem NULL). */
    assert_int_equal(gocc_chan_send(c, &fortytwo, sc), 0);
    gocc_case_t d[1] = {{.ch = c, .dir = GOCC_RECV, .elem = NULL}};
    assert_int_equal(gocc_select_try(d, 1), 0);
    assert_true(d[0].ok);
    assert_int_equal(gocc_chan_len(c), 0);
    gocc_chan_release(c);
    gocc_chan_release(c1);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select.go: Send(a, b) with default; nil-ing a case once
 * it has been taken; each select does exactly one send */
static int select_go_send(gocc_chan_t *a, gocc_chan_t *b, unsigned *counter) {
    int i = 0;
    unsigned shift = 0;
    for (;;) {
        unsigned va = 1u << shift, vb = 1u << shift;
        *counter += 2; /* Go evaluates both send values every time */
        gocc_case_t cs[2] = {{.ch = a, .dir = GOCC_SEND, .elem = &va},
                             {.ch = b, .dir = GOCC_SEND, .elem = &vb}};
        int rc = gocc_select_try(cs, 2);
        if (rc == GOCC_EAGAIN) break;
        if (rc == 0)
            a = NULL;
        else if (rc == 1)
            b = NULL;
        else
            return -1000 + rc;
        i++;
        shift++;
    }
    return i;
}

static void test_select_go_select(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_chan_t *a = chan_new(sizeof(unsigned), 1);
    gocc_chan_t *b = chan_new(sizeof(unsigned), 1);
    unsigned counter = 0;
    assert_int_equal(select_go_send(a, b, &counter), 2);
    unsigned av = 0, bv = 0;
    assert_int_equal(gocc_chan_try_recv(a, &av), 0);
    assert_int_equal(gocc_chan_try_recv(b, &bv), 0);
    assert_int_equal(av | bv, 3);
    assert_int_equal(select_go_send(a, NULL, &counter), 1);
    assert_int_equal(counter, 10);
    assert_int_equal(gocc_chan_len(a), 1);
    gocc_chan_release(a);
    gocc_chan_release(b);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelectFairness */
static void test_select_fairness(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int trials = SCALE(30000);
    gocc_chan_t *c1 = chan_new(1, (size_t)trials + 1);
    gocc_chan_t *c2 = chan_new(1, (size_t)trials + 1);
    gocc_chan_t *c3 = chan_new(1, 0);
    gocc_chan_t *c4 = chan_new(1, 0);
    unsigned char one = 1, two = 2;
    for (int i = 0; i < trials + 1; i++) {
        assert_int_equal(gocc_chan_try_send(c1, &one), 0);
        assert_int_equal(gocc_chan_try_send(c2, &two), 0);
    }
    int cnt1 = 0, cnt2 = 0;
    for (int i = 0; i < trials; i++) {
        unsigned char b = 0;
        gocc_case_t cs[4] = {{.ch = c3, .dir = GOCC_RECV, .elem = &b},
                             {.ch = c4, .dir = GOCC_RECV, .elem = &b},
                             {.ch = c1, .dir = GOCC_RECV, .elem = &b},
                             {.ch = c2, .dir = GOCC_RECV, .elem = &b}};
        int idx = gocc_select(cs, 4, sc);
        if (idx == 2 && b == 1)
            cnt1++;
        else if (idx == 3 && b == 2)
            cnt2++;
        else
            fail_msg("select returned %d with value %d", idx, b);
    }
    assert_int_equal(cnt1 + cnt2, trials);
    /* Go allows 0.5 +- 4.9/(2*sqrt(trials)) (six nines); we allow more. */
    assert_in_range(cnt1, trials * 40 / 100, trials * 60 / 100);
    assert_in_range(cnt2, trials * 40 / 100, trials * 60 / 100);
    assert_int_equal(gocc_chan_len(c1) + gocc_chan_len(c2), (size_t)trials + 2);
    gocc_chan_release(c1);
    gocc_chan_release(c2);
    gocc_chan_release(c3);
    gocc_chan_release(c4);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelectFairness, with three always-ready
 * cases (a receive, a send and another receive) and nil cases between */
static void test_select_fairness3(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int trials = SCALE(30000);
    gocc_chan_t *r1 = chan_new(sizeof(int), (size_t)trials);
    gocc_chan_t *r2 = chan_new(sizeof(int), (size_t)trials);
    gocc_chan_t *s1 = chan_new(sizeof(int), (size_t)trials);
    int v = 1;
    for (int i = 0; i < trials; i++) {
        assert_int_equal(gocc_chan_try_send(r1, &v), 0);
        assert_int_equal(gocc_chan_try_send(r2, &v), 0);
    }
    int cnt[5] = {0};
    for (int i = 0; i < trials; i++) {
        int a = 0, b = 0, out = 9;
        gocc_case_t cs[5] = {{.ch = r1, .dir = GOCC_RECV, .elem = &a},
                             {.ch = NULL, .dir = GOCC_RECV, .elem = &a},
                             {.ch = s1, .dir = GOCC_SEND, .elem = &out},
                             {.ch = NULL, .dir = GOCC_SEND, .elem = &out},
                             {.ch = r2, .dir = GOCC_RECV, .elem = &b}};
        int idx = gocc_select(cs, 5, sc);
        assert_true(idx == 0 || idx == 2 || idx == 4);
        assert_true(cs[idx].ok);
        cnt[idx]++;
    }
    assert_int_equal(cnt[1] + cnt[3], 0);
    assert_int_equal(cnt[0] + cnt[2] + cnt[4], trials);
    for (int k = 0; k < 5; k += 2) assert_in_range(cnt[k], trials * 25 / 100, trials * 42 / 100);
    /* Exactly one operation per select. */
    assert_int_equal(gocc_chan_len(r1), (size_t)(trials - cnt[0]));
    assert_int_equal(gocc_chan_len(s1), (size_t)cnt[2]);
    assert_int_equal(gocc_chan_len(r2), (size_t)(trials - cnt[4]));
    gocc_chan_release(r1);
    gocc_chan_release(r2);
    gocc_chan_release(s1);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelectFairness, with one channel in three
 * cases (Go allows duplicates): each case is chosen fairly, one value each */
static void test_select_same_channel_cases(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int trials = SCALE(30000);
    gocc_chan_t *c = chan_new(sizeof(int), (size_t)trials);
    for (int i = 0; i < trials; i++) assert_int_equal(gocc_chan_try_send(c, &i), 0);
    int cnt[3] = {0};
    int expect = 0;
    for (int i = 0; i < trials; i++) {
        int a = -1, b = -1, d = -1;
        gocc_case_t cs[3] = {{.ch = c, .dir = GOCC_RECV, .elem = &a},
                             {.ch = c, .dir = GOCC_RECV, .elem = &b},
                             {.ch = c, .dir = GOCC_RECV, .elem = &d}};
        int idx = gocc_select(cs, 3, sc);
        assert_in_range(idx, 0, 2);
        int *got[3] = {&a, &b, &d};
        assert_int_equal(*got[idx], expect); /* FIFO, nothing skipped */
        for (int k = 0; k < 3; k++)
            if (k != idx) assert_int_equal(*got[k], -1);
        expect++;
        cnt[idx]++;
    }
    for (int k = 0; k < 3; k++) assert_in_range(cnt[k], trials * 25 / 100, trials * 42 / 100);
    assert_int_equal(gocc_chan_len(c), 0);
    gocc_chan_release(c);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestPseudoRandomSend */
typedef struct prs_arg {
    gocc_chan_t *c;
    gocc_ctx_t *ctx;
    int n;
    int *l;
    atomic_int *done;
    atomic_int *fails;
} prs_arg_t;

static int prs_recv_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    prs_arg_t *a = arg;
    for (int i = 0; i < a->n; i++) {
        gocc_sleep(0, NULL);
        if (gocc_chan_recv(a->c, &a->l[i], a->ctx) != 0) {
            atomic_fetch_add(a->fails, 1);
            break;
        }
    }
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static void test_select_pseudo_random_send(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { N = 100 };
    int caps[2] = {0, N};
    for (int ci = 0; ci < 2; ci++) {
        gocc_chan_t *c = chan_new(sizeof(int), (size_t)caps[ci]);
        int l[N];
        atomic_int done = 0, fails = 0;
        prs_arg_t a = {c, sc, N, l, &done, &fails};
        assert_int_equal(gocc_go(prs_recv_fn, NULL, &a), 0);
        for (int i = 0; i < N; i++) {
            int one = 1, zero = 0;
            gocc_case_t cs[2] = {{.ch = c, .dir = GOCC_SEND, .elem = &one},
                                 {.ch = c, .dir = GOCC_SEND, .elem = &zero}};
            int idx = gocc_select(cs, 2, sc);
            assert_in_range(idx, 0, 1);
            assert_true(cs[idx].ok);
        }
        assert_true(wait_count(&done, 1, SAFETY_NS));
        assert_int_equal(atomic_load(&fails), 0);
        gocc_chan_release(c);
        int n0 = 0, n1 = 0;
        for (int i = 0; i < N; i++) {
            n0 += (l[i] + 1) % 2;
            n1 += l[i];
        }
        assert_int_equal(n0 + n1, N);
        if (n0 <= N / 10 || n1 <= N / 10)
            fail_msg("want pseudorandom, got %d zeros and %d ones (cap %d)", n0, n1, caps[ci]);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestPseudoRandomSend, with the select parked
 * before its partner arrives (the partner waits until the dump shows it
 * parked): two send cases (or two receive cases) on one unbuffered
 * channel, both ready the moment the partner comes; either must be
 * chosen, not always the first listed. */
typedef struct prp {
    gocc_chan_t *c;
    gocc_ctx_t *ctx;
    int dir; /* the partner's direction */
    int got;
    int rc;
    atomic_int done;
} prp_t;

static int prp_partner_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    prp_t *p = arg;
    int v = 7;
    /* Only once the test thread's select is parked. */
    if (!blocked_reached(1, "select", SAFETY_NS))
        p->rc = -999;
    else if (p->dir == GOCC_RECV)
        p->rc = gocc_chan_recv(p->c, &p->got, p->ctx);
    else
        p->rc = gocc_chan_send(p->c, &v, p->ctx);
    atomic_store_explicit(&p->done, 1, memory_order_release);
    return 0;
}

static void test_select_pseudo_random_parked(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { N = 100 };
    gocc_chan_t *c = chan_new(sizeof(int), 0);
    int cnts[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    for (int dir = GOCC_RECV; dir <= GOCC_SEND; dir++) {
        int *cnt = cnts[dir];
        for (int i = 0; i < N; i++) {
            prp_t p = {c, sc, dir == GOCC_RECV ? GOCC_SEND : GOCC_RECV, -1, 1, 0};
            assert_int_equal(gocc_go(prp_partner_fn, NULL, &p), 0);
            int v0 = 0, v1 = 1;
            gocc_case_t cs[2] = {{.ch = c, .dir = dir, .elem = &v0},
                                 {.ch = c, .dir = dir, .elem = &v1}};
            int idx = gocc_select(cs, 2, sc);
            assert_in_range(idx, 0, 1);
            assert_true(cs[idx].ok);
            int64_t end = gocc_now() + SAFETY_NS;
            while (!atomic_load_explicit(&p.done, memory_order_acquire) && gocc_now() < end)
                gocc_sleep(100 * GOCC_MICROSECOND, NULL);
            assert_true(atomic_load_explicit(&p.done, memory_order_acquire));
            assert_int_equal(p.rc, 0);
            if (dir == GOCC_SEND)
                assert_int_equal(p.got, idx);
            else
                assert_int_equal(idx == 0 ? v0 : v1, 7);
            cnt[idx]++;
        }
    }
    gocc_chan_release(c);
    ctx_done_release(sc);
    for (int dir = GOCC_RECV; dir <= GOCC_SEND; dir++)
        if (cnts[dir][0] <= N / 10 || cnts[dir][1] <= N / 10)
            fail_msg("want pseudorandom: parked select with two %s cases on one channel "
                     "chose case 0 %d times, case 1 %d times",
                     dir == GOCC_SEND ? "send" : "receive", cnts[dir][0], cnts[dir][1]);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelfSelect: send and receive cases on the
 * same channel in one select, two tasks; an unbuffered select never pairs
 * with itself */
typedef struct self_arg {
    gocc_chan_t *c;
    gocc_ctx_t *ctx;
    int p;
    bool unbuffered;
    atomic_int *fails;
    atomic_int *done;
} self_arg_t;

static int self_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    self_arg_t *a = arg;
    for (int i = 0; i < 1000; i++) {
        int out = a->p, in = -1;
        gocc_case_t cs[2];
        int si, ri;
        if (a->p == 0 || i % 2 == 0) {
            si = 0;
            ri = 1;
        } else {
            si = 1;
            ri = 0;
        }
        cs[si] = (gocc_case_t){.ch = a->c, .dir = GOCC_SEND, .elem = &out};
        cs[ri] = (gocc_case_t){.ch = a->c, .dir = GOCC_RECV, .elem = &in};
        int idx = gocc_select(cs, 2, a->ctx);
        if (idx < 0) {
            atomic_fetch_add(a->fails, 1);
            break;
        }
        if (idx == ri && a->unbuffered && in == a->p) {
            atomic_fetch_add(a->fails, 100);
            break;
        }
    }
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static void test_select_self_select(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    size_t caps[2] = {0, 10};
    for (int ci = 0; ci < 2; ci++) {
        gocc_chan_t *c = chan_new(sizeof(int), caps[ci]);
        atomic_int fails = 0, done = 0;
        self_arg_t a[2];
        for (int p = 0; p < 2; p++) {
            a[p] = (self_arg_t){c, sc, p, caps[ci] == 0, &fails, &done};
            assert_int_equal(gocc_go(self_fn, NULL, &a[p]), 0);
        }
        assert_true(wait_count(&done, 2, SAFETY_NS));
        assert_int_equal(atomic_load(&fails), 0);
        gocc_chan_release(c);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "select should not get confused if it sees
 * itself": alone, send+receive on one unbuffered channel blocks */
static void test_select_sees_itself(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_chan_t *c = chan_new(sizeof(int), 0);
    int out = 1, in = -1;
    gocc_case_t cs[2] = {{.ch = c, .dir = GOCC_SEND, .elem = &out},
                         {.ch = c, .dir = GOCC_RECV, .elem = &in}};
    assert_int_equal(gocc_select_try(cs, 2), GOCC_EAGAIN);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(ctx);
    assert_int_equal(gocc_select(cs, 2, ctx), GOCC_EDEADLINE);
    assert_int_equal(in, -1);
    ctx_done_release(ctx);
    gocc_chan_release(c);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelfSelect (one select, a partner task):
 * a blocked select with send and receive cases on one channel proceeds
 * with whichever the partner matches */
static void test_select_send_recv_same_chan_partner(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = chan_new(sizeof(int), 0);
    for (int round = 0; round < 10; round++) {
        /* The partner receives: the select's send case proceeds. */
        sel_t s;
        sel_init(&s, sc);
        sel_add(&s, c, GOCC_RECV, -1);
        sel_add(&s, c, GOCC_SEND, 100 + round);
        sel_start(&s);
        int v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, sc), 0);
        assert_int_equal(v, 100 + round);
        assert_true(sel_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 1);
        assert_true(s.cases[1].ok);
        assert_int_equal(s.vals[0], -1);
        /* The partner sends: the select's receive case proceeds. */
        sel_init(&s, sc);
        sel_add(&s, c, GOCC_SEND, 5);
        sel_add(&s, c, GOCC_RECV, -1);
        sel_start(&s);
        int w = 200 + round;
        assert_int_equal(gocc_chan_send(c, &w, sc), 0);
        assert_true(sel_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 1);
        assert_true(s.cases[1].ok);
        assert_int_equal(s.vals[1], 200 + round);
    }
    assert_int_equal(gocc_chan_try_recv(c, NULL), GOCC_EAGAIN);
    gocc_chan_release(c);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "sending/receiving from a nil channel inside a
 * select is never selected": nil cases beside a ready one */
static void test_select_nil_cases(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = chan_new(sizeof(int), 1);
    for (int i = 0; i < 200; i++) {
        int v = -1, out = 3;
        assert_int_equal(gocc_chan_try_send(c, &i), 0);
        gocc_case_t cs[4] = {{.ch = NULL, .dir = GOCC_RECV, .elem = &v},
                             {.ch = NULL, .dir = GOCC_SEND, .elem = &out},
                             {.ch = c, .dir = GOCC_RECV, .elem = &v},
                             {.ch = NULL, .dir = GOCC_RECV, .elem = &v}};
        int idx = (i % 2) ? gocc_select(cs, 4, sc) : gocc_select_try(cs, 4);
        assert_int_equal(idx, 2);
        assert_int_equal(v, i);
    }
    /* A nil case does not make a select ready, blocking or not. */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 20 * GOCC_MILLISECOND);
    assert_non_null(ctx);
    int v = -1;
    gocc_case_t cs[2] = {{.ch = NULL, .dir = GOCC_RECV, .elem = &v},
                         {.ch = c, .dir = GOCC_RECV, .elem = &v}};
    assert_int_equal(gocc_select(cs, 2, ctx), GOCC_EDEADLINE);
    ctx_done_release(ctx);
    gocc_chan_release(c);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "empty selects always block" and "selects with
 * only nil channels always block": with no context that can end this is
 * GOCC_EINVAL at once; with one, it blocks until the context is done */
static void test_select_nothing_can_proceed(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    int v = 0;
    gocc_case_t nil[2] = {{.ch = NULL, .dir = GOCC_RECV, .elem = &v},
                          {.ch = NULL, .dir = GOCC_SEND, .elem = &v}};
    gocc_case_t none[1] = {{0}};
    assert_int_equal(gocc_select(NULL, 0, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_select(none, 0, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_select(nil, 1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_select(nil, 2, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_select(nil, 2, gocc_ctx_background()), GOCC_EINVAL);
    assert_int_equal(gocc_select(NULL, 0, gocc_ctx_background()), GOCC_EINVAL);

    /* select {} with a context: blocks until cancelled. */
    for (int k = 0; k < 2; k++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        sel_t s;
        sel_init(&s, ctx);
        if (k == 1) {
            sel_add(&s, NULL, GOCC_RECV, 0);
            sel_add(&s, NULL, GOCC_SEND, 0);
        }
        sel_start_blocked(&s, NULL); /* select (no cases), or with nil ones */
        int64_t t0 = gocc_now();
        gocc_ctx_cancel(ctx);
        assert_true(sel_wait(&s, PROMPT_NS));
        assert_true(s.a.t_ret - t0 < PROMPT_NS);
        assert_int_equal(s.a.rc, GOCC_ECANCELED);
        gocc_ctx_release(ctx);
    }
    /* ... or until its deadline. */
    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(ctx);
    assert_int_equal(gocc_select(NULL, 0, ctx), GOCC_EDEADLINE);
    assert_int_equal(gocc_select(nil, 2, ctx), GOCC_EDEADLINE);
    int64_t el = gocc_now() - t0;
    assert_true(el >= 29 * GOCC_MILLISECOND);
    assert_true(el < 30 * GOCC_MILLISECOND + PROMPT_NS);
    ctx_done_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go "selects with closed channels behave like
 * ordinary operations": RECV ready with ok=false and a zero-filled elem;
 * SEND chosen with ok=false and nothing sent (Go panics there) */
static void test_select_closed(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (size_t cap = 0; cap < 3; cap++) {
        gocc_chan_t *c = chan_new(sizeof(int), cap);
        gocc_chan_t *never = chan_new(sizeof(int), 0);
        int buffered = cap > 0 ? 1 : 0;
        int nine = 9;
        if (buffered) assert_int_equal(gocc_chan_send(c, &nine, sc), 0);
        assert_int_equal(gocc_chan_close(c), 0);
        /* Buffered values drain first, with ok=true. */
        if (buffered) {
            int v = -1;
            gocc_case_t cs[2] = {{.ch = never, .dir = GOCC_RECV, .elem = &v},
                                 {.ch = c, .dir = GOCC_RECV, .elem = &v}};
            assert_int_equal(gocc_select(cs, 2, sc), 1);
            assert_true(cs[1].ok);
            assert_int_equal(v, 9);
        }
        for (int k = 0; k < 10; k++) {
            int v = 0x1234, w = 0x5678;
            gocc_case_t cs[2] = {{.ch = never, .dir = GOCC_RECV, .elem = &w},
                                 {.ch = c, .dir = GOCC_RECV, .elem = &v, .ok = true}};
            int idx = (k % 2) ? gocc_select(cs, 2, sc) : gocc_select_try(cs, 2);
            assert_int_equal(idx, 1);
            assert_false(cs[1].ok);
            assert_int_equal(v, 0);
            assert_int_equal(w, 0x5678);
        }
        /* The send case on a closed channel: chosen, ok=false, nothing sent. */
        for (int k = 0; k < 10; k++) {
            int out = 77, w = 0;
            gocc_case_t cs[2] = {{.ch = c, .dir = GOCC_SEND, .elem = &out, .ok = true},
                                 {.ch = never, .dir = GOCC_RECV, .elem = &w}};
            int idx = (k % 2) ? gocc_select(cs, 2, sc) : gocc_select_try(cs, 2);
            assert_int_equal(idx, 0);
            assert_false(cs[0].ok);
            assert_int_equal(gocc_chan_len(c), 0);
        }
        int v = -1;
        assert_int_equal(gocc_chan_recv(c, &v, sc), GOCC_ECLOSED);
        gocc_chan_release(c);
        gocc_chan_release(never);
    }

    /* A close wakes a blocked select: receive case ok=false. */
    gocc_chan_t *a = chan_new(sizeof(int), 0), *b = chan_new(sizeof(int), 2);
    sel_t s;
    sel_init(&s, sc);
    sel_add(&s, a, GOCC_RECV, 0x1111);
    sel_add(&s, b, GOCC_RECV, 0x2222);
    s.cases[1].ok = true;
    sel_start_blocked(&s, "select");
    assert_int_equal(gocc_chan_close(b), 0);
    assert_true(sel_wait(&s, PROMPT_NS));
    assert_int_equal(s.a.rc, 1);
    assert_false(s.cases[1].ok);
    assert_int_equal(s.vals[1], 0);
    assert_int_equal(s.vals[0], 0x1111);
    gocc_chan_release(b);
    /* ... and a blocked send case: chosen, ok=false, nothing delivered. */
    b = chan_new(sizeof(int), 1);
    int one = 1;
    assert_int_equal(gocc_chan_try_send(b, &one), 0);
    sel_init(&s, sc);
    sel_add(&s, a, GOCC_RECV, 0);
    sel_add(&s, b, GOCC_SEND, 2);
    s.cases[1].ok = true;
    sel_start_blocked(&s, "select");
    assert_int_equal(gocc_chan_close(b), 0);
    assert_true(sel_wait(&s, PROMPT_NS));
    assert_int_equal(s.a.rc, 1);
    assert_false(s.cases[1].ok);
    int got = -1;
    assert_int_equal(gocc_chan_recv(b, &got, sc), 0);
    assert_int_equal(got, 1);
    assert_int_equal(gocc_chan_recv(b, &got, sc), GOCC_ECLOSED);
    gocc_chan_release(a);
    gocc_chan_release(b);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go testBlock ("selects with non-ready non-nil
 * channels always block"), woken by cancellation: promptly, with nothing
 * done on any channel */
static void test_select_cancel_wakes(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *a = chan_new(sizeof(int), 0);
    gocc_chan_t *b = chan_new(sizeof(int), 1);
    gocc_chan_t *full = chan_new(sizeof(int), 1);
    int one = 1;
    assert_int_equal(gocc_chan_try_send(full, &one), 0);
    for (int round = 0; round < 3; round++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        sel_t s;
        sel_init(&s, ctx);
        sel_add(&s, a, GOCC_RECV, -1);
        sel_add(&s, b, GOCC_RECV, -1);
        sel_add(&s, full, GOCC_SEND, 50);
        sel_add(&s, a, GOCC_SEND, 51);
        sel_start_blocked(&s, "select");
        int64_t t0 = gocc_now();
        gocc_ctx_cancel(ctx);
        assert_true(sel_wait(&s, PROMPT_NS));
        assert_true(s.a.t_ret - t0 < PROMPT_NS);
        assert_int_equal(s.a.rc, GOCC_ECANCELED);
        assert_int_equal(s.vals[0], -1);
        assert_int_equal(s.vals[1], -1);
        /* Nothing happened and the select left no waiter behind. */
        assert_int_equal(gocc_chan_len(full), 1);
        assert_int_equal(gocc_chan_len(b), 0);
        int x = 5;
        assert_int_equal(gocc_chan_try_send(a, &x), GOCC_EAGAIN);
        assert_int_equal(gocc_chan_try_recv(a, &x), GOCC_EAGAIN);
        gocc_ctx_release(ctx);
    }
    /* Cancelling a parent wakes a select waiting on a child context. */
    gocc_ctx_t *parent = gocc_ctx_with_cancel(NULL);
    assert_non_null(parent);
    gocc_ctx_t *child = gocc_ctx_with_cancel(parent);
    assert_non_null(child);
    sel_t s;
    sel_init(&s, child);
    sel_add(&s, a, GOCC_RECV, -1);
    sel_start_blocked(&s, "select");
    gocc_ctx_cancel(parent);
    assert_true(sel_wait(&s, PROMPT_NS));
    assert_int_equal(s.a.rc, GOCC_ECANCELED);
    ctx_done_release(child);
    ctx_done_release(parent);
    /* A deadline wakes it with GOCC_EDEADLINE. */
    gocc_ctx_t *dl = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(dl);
    int v = -1;
    gocc_case_t cs[2] = {{.ch = a, .dir = GOCC_RECV, .elem = &v},
                         {.ch = full, .dir = GOCC_SEND, .elem = &one}};
    assert_int_equal(gocc_select(cs, 2, dl), GOCC_EDEADLINE);
    ctx_done_release(dl);
    assert_int_equal(gocc_chan_len(full), 1);
    gocc_chan_release(a);
    gocc_chan_release(b);
    gocc_chan_release(full);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select3.go testBlock/testPanic, Clarifications "A context
 * already done wins": ready cases, but the context is already done: its
 * error, and nothing happens */
static void test_select_ctx_done_wins(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_ctx_t *cancelled = gocc_ctx_with_cancel(NULL);
    assert_non_null(cancelled);
    gocc_ctx_cancel(cancelled);
    gocc_ctx_t *expired = gocc_ctx_with_deadline(NULL, gocc_now() - GOCC_MILLISECOND);
    assert_non_null(expired);
    gocc_chan_t *has = chan_new(sizeof(int), 1);
    gocc_chan_t *room = chan_new(sizeof(int), 1);
    gocc_chan_t *closed = chan_new(sizeof(int), 0);
    assert_int_equal(gocc_chan_close(closed), 0);
    int one = 1;
    assert_int_equal(gocc_chan_try_send(has, &one), 0);
    for (int k = 0; k < 50; k++) {
        int v = -1, out = 2, w = -1;
        gocc_case_t cs[3] = {{.ch = has, .dir = GOCC_RECV, .elem = &v},
                             {.ch = room, .dir = GOCC_SEND, .elem = &out},
                             {.ch = closed, .dir = GOCC_RECV, .elem = &w}};
        assert_int_equal(gocc_select(cs, 3, cancelled), GOCC_ECANCELED);
        assert_int_equal(gocc_select(cs, 3, expired), GOCC_EDEADLINE);
        assert_int_equal(v, -1);
        assert_int_equal(w, -1);
        assert_int_equal(gocc_chan_len(has), 1);
        assert_int_equal(gocc_chan_len(room), 0);
    }
    /* A waiting partner is not served either. */
    gocc_chan_t *u = chan_new(sizeof(int), 0);
    sel_t r;
    sel_init(&r, sc);
    sel_add(&r, u, GOCC_RECV, -1);
    sel_start_blocked(&r, "select");
    int bad = 666;
    gocc_case_t cs[1] = {{.ch = u, .dir = GOCC_SEND, .elem = &bad}};
    assert_int_equal(gocc_select(cs, 1, cancelled), GOCC_ECANCELED);
    /* Still parked: a hand-off would have woken it before the select
     * returned (a woken task is runnable, not parked, in the dump). */
    async_blocked(&r.a, "select");
    int good = 7;
    assert_int_equal(gocc_chan_send(u, &good, sc), 0);
    assert_true(sel_wait(&r, SAFETY_NS));
    assert_int_equal(r.a.rc, 0);
    assert_int_equal(r.vals[0], 7);
    gocc_chan_release(u);
    gocc_chan_release(has);
    gocc_chan_release(room);
    gocc_chan_release(closed);
    ctx_done_release(cancelled);
    ctx_done_release(expired);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select.go (one operation per select), at scale: every
 * select over two send cases sends exactly one value; every select over
 * two receive cases takes exactly one */
static void test_select_exactly_one(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int M = SCALE(20000);
    gocc_chan_t *a = chan_new(sizeof(int), (size_t)M);
    gocc_chan_t *b = chan_new(sizeof(int), (size_t)M);
    for (int i = 0; i < M; i++) {
        int va = 2 * i, vb = 2 * i + 1;
        gocc_case_t cs[2] = {{.ch = a, .dir = GOCC_SEND, .elem = &va},
                             {.ch = b, .dir = GOCC_SEND, .elem = &vb}};
        int idx = (i % 2) ? gocc_select(cs, 2, sc) : gocc_select_try(cs, 2);
        assert_in_range(idx, 0, 1);
        assert_true(cs[idx].ok);
    }
    size_t la = gocc_chan_len(a), lb = gocc_chan_len(b);
    assert_int_equal(la + lb, (size_t)M);
    assert_true(la > 0 && lb > 0);
    /* Each i went out once, on one of the two, in order per channel. */
    unsigned char *seen = calloc((size_t)M, 1);
    assert_non_null(seen);
    int last = -1, v;
    while (gocc_chan_try_recv(a, &v) == 0) {
        assert_int_equal(v % 2, 0);
        assert_true(v > last);
        last = v;
        seen[v / 2]++;
    }
    last = -1;
    while (gocc_chan_try_recv(b, &v) == 0) {
        assert_int_equal(v % 2, 1);
        assert_true(v > last);
        last = v;
        seen[v / 2]++;
    }
    for (int i = 0; i < M; i++) assert_int_equal(seen[i], 1);

    /* Receives: refill both with M values, M selects take M values. */
    for (int i = 0; i < M; i++) {
        assert_int_equal(gocc_chan_try_send(a, &i), 0);
        assert_int_equal(gocc_chan_try_send(b, &i), 0);
    }
    long sum = 0;
    for (int i = 0; i < M; i++) {
        int x = -1, y = -1;
        gocc_case_t cs[2] = {{.ch = a, .dir = GOCC_RECV, .elem = &x},
                             {.ch = b, .dir = GOCC_RECV, .elem = &y}};
        int idx = (i % 2) ? gocc_select(cs, 2, sc) : gocc_select_try(cs, 2);
        assert_in_range(idx, 0, 1);
        assert_int_equal(idx == 0 ? y : x, -1);
        sum += 1;
    }
    assert_int_equal(sum, M);
    assert_int_equal(gocc_chan_len(a) + gocc_chan_len(b), (size_t)M);
    free(seen);
    gocc_chan_release(a);
    gocc_chan_release(b);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelectDuplicateChannel */
typedef struct dup_arg {
    gocc_chan_t *c, *d, *e;
    gocc_ctx_t *ctx;
    int idx, val;
    async_call a;
} dup_arg_t;

static int dup_a_call(void *arg) {
    dup_arg_t *a = arg;
    int v1 = -1, v2 = -1, v3 = -1;
    gocc_case_t cs[3] = {{.ch = a->c, .dir = GOCC_RECV, .elem = &v1},
                         {.ch = a->c, .dir = GOCC_RECV, .elem = &v2},
                         {.ch = a->d, .dir = GOCC_RECV, .elem = &v3}};
    a->idx = gocc_select(cs, 3, a->ctx);
    a->val = v3;
    int nine = 9;
    return gocc_chan_send(a->e, &nine, a->ctx);
}

static int dup_b_call(void *arg) {
    dup_arg_t *a = arg;
    a->idx = gocc_chan_recv(a->c, &a->val, a->ctx);
    return 0;
}

static void test_select_duplicate_channel(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = chan_new(sizeof(int), 0), *d = chan_new(sizeof(int), 0),
                *e = chan_new(sizeof(int), 0);
    dup_arg_t A = {c, d, e, sc, -1, -1, {0}}, B = {c, d, e, sc, -1, -1, {0}};
    async_start_blocked(&A.a, dup_a_call, &A, "select");       /* A is queued first on c */
    async_start_blocked(&B.a, dup_b_call, &B, "chan receive"); /* then B */
    int seven = 7, eight = 8, nine = -1;
    assert_int_equal(gocc_chan_send(d, &seven, sc), 0); /* wake A; it dequeues itself from c */
    assert_int_equal(gocc_chan_recv(e, &nine, sc), 0);  /* A tells us it's done */
    assert_int_equal(nine, 9);
    assert_int_equal(gocc_chan_send(c, &eight, sc), 0); /* wake B */
    assert_int_equal(ASYNC_RESULT(&A.a, SAFETY_NS), 0);
    assert_int_equal(ASYNC_RESULT(&B.a, SAFETY_NS), 0);
    assert_int_equal(A.idx, 2);
    assert_int_equal(A.val, 7);
    assert_int_equal(B.idx, 0);
    assert_int_equal(B.val, 8);
    gocc_chan_release(c);
    gocc_chan_release(d);
    gocc_chan_release(e);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select6.go (issue 2075: a select woken on one channel
 * must leave the other channel's wait queue intact) */
typedef struct s6 {
    gocc_chan_t *c1, *c2, *c3;
    gocc_ctx_t *ctx;
    atomic_int *fails;
} s6_t;

static int s6_recv_c1(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    s6_t *s = arg;
    bool b;
    if (gocc_chan_recv(s->c1, &b, s->ctx) != 0) atomic_fetch_add(s->fails, 1);
    return 0;
}

static int s6_select(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    s6_t *s = arg;
    bool b1 = false, b2 = false, t = true;
    gocc_case_t cs[2] = {{.ch = s->c1, .dir = GOCC_RECV, .elem = &b1},
                         {.ch = s->c2, .dir = GOCC_RECV, .elem = &b2}};
    int idx = gocc_select(cs, 2, s->ctx);
    if (idx != 1)
        atomic_fetch_add(s->fails, 100); /* "dummy" */
    else if (gocc_chan_send(s->c3, &t, s->ctx) != 0)
        atomic_fetch_add(s->fails, 1);
    if (gocc_chan_recv(s->c1, &b1, s->ctx) != 0) atomic_fetch_add(s->fails, 1);
    return 0;
}

static int s6_send_c2(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    s6_t *s = arg;
    bool t = true;
    if (gocc_chan_send(s->c2, &t, s->ctx) != 0) atomic_fetch_add(s->fails, 1);
    return 0;
}

static void test_select_go_select6(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (int round = 0; round < SCALE(200); round++) {
        atomic_int fails = 0;
        s6_t s = {chan_new(sizeof(bool), 0), chan_new(sizeof(bool), 0), chan_new(sizeof(bool), 0),
                  sc, &fails};
        assert_int_equal(gocc_go(s6_recv_c1, NULL, &s), 0);
        assert_int_equal(gocc_go(s6_select, NULL, &s), 0);
        assert_int_equal(gocc_go(s6_send_c2, NULL, &s), 0);
        bool b = false, t = true;
        assert_int_equal(gocc_chan_recv(s.c3, &b, sc), 0);
        assert_true(b);
        assert_int_equal(gocc_chan_send(s.c1, &t, sc), 0);
        assert_int_equal(gocc_chan_send(s.c1, &t, sc), 0);
        assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
        assert_int_equal(atomic_load(&fails), 0);
        gocc_chan_release(s.c1);
        gocc_chan_release(s.c2);
        gocc_chan_release(s.c3);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/select7.go: recv1/recv2/recv3 x send1/send2/send3 (plain
 * operation, one-case select, two-case select on each side) */
typedef struct s7 {
    gocc_chan_t *c;
    gocc_ctx_t *ctx;
    int kind;
    int got;
    atomic_int *done;
} s7_t;

static int s7_recv_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    s7_t *s = arg;
    int v = -1;
    if (s->kind == 0) {
        if (gocc_chan_recv(s->c, &v, s->ctx) != 0) v = -2;
    } else if (s->kind == 1) {
        gocc_case_t cs[1] = {{.ch = s->c, .dir = GOCC_RECV, .elem = &v}};
        if (gocc_select(cs, 1, s->ctx) != 0) v = -2;
    } else {
        gocc_chan_t *c2 = gocc_chan_new(sizeof(int), 0);
        int w = -1;
        gocc_case_t cs[2] = {{.ch = s->c, .dir = GOCC_RECV, .elem = &v},
                             {.ch = c2, .dir = GOCC_RECV, .elem = &w}};
        if (c2 == NULL || gocc_select(cs, 2, s->ctx) != 0) v = -2;
        gocc_chan_release(c2);
    }
    s->got = v;
    atomic_fetch_add_explicit(s->done, 1, memory_order_release);
    return 0;
}

static void test_select_go_select7(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (int rk = 0; rk < 3; rk++) {
        for (int sk = 0; sk < 3; sk++) {
            atomic_int done = 0;
            s7_t s = {chan_new(sizeof(int), 0), sc, rk, 0, &done};
            assert_int_equal(gocc_go(s7_recv_fn, NULL, &s), 0);
            gocc_sleep(0, NULL); /* runtime.Gosched() */
            int one = 1;
            if (sk == 0) {
                assert_int_equal(gocc_chan_send(s.c, &one, sc), 0);
            } else if (sk == 1) {
                gocc_case_t cs[1] = {{.ch = s.c, .dir = GOCC_SEND, .elem = &one}};
                assert_int_equal(gocc_select(cs, 1, sc), 0);
                assert_true(cs[0].ok);
            } else {
                gocc_chan_t *c2 = chan_new(sizeof(int), 0);
                gocc_case_t cs[2] = {{.ch = s.c, .dir = GOCC_SEND, .elem = &one},
                                     {.ch = c2, .dir = GOCC_SEND, .elem = &one}};
                assert_int_equal(gocc_select(cs, 2, sc), 0);
                gocc_chan_release(c2);
            }
            assert_true(wait_count(&done, 1, SAFETY_NS));
            assert_int_equal(s.got, 1);
            gocc_chan_release(s.c);
        }
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestNonblockSelectRace and
 * TestNonblockSelectRace2: a select with default acts on the channels'
 * state at one moment, never on a smeared window */
typedef struct nbs {
    gocc_chan_t *c1, *c2, *done;
} nbs_t;

static int nbs_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    nbs_t *a = arg;
    gocc_case_t cs[2] = {{.ch = a->c1, .dir = GOCC_RECV, .elem = NULL},
                         {.ch = a->c2, .dir = GOCC_RECV, .elem = NULL}};
    bool ok = gocc_select_try(cs, 2) >= 0;
    gocc_chan_send(a->done, &ok, NULL);
    return 0;
}

static void test_select_nonblock_race(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int n = SCALE(4000);
    gocc_chan_t *done = chan_new(sizeof(bool), 1);
    for (int variant = 0; variant < 2; variant++) {
        for (int i = 0; i < n; i++) {
            nbs_t a = {chan_new(sizeof(int), 1), chan_new(sizeof(int), variant ? 0 : 1), done};
            int one = 1;
            assert_int_equal(gocc_chan_send(a.c1, &one, sc), 0);
            assert_int_equal(gocc_go(nbs_fn, NULL, &a), 0);
            if (variant == 0)
                assert_int_equal(gocc_chan_send(a.c2, &one, sc), 0);
            else
                assert_int_equal(gocc_chan_close(a.c2), 0);
            gocc_case_t cs[1] = {{.ch = a.c1, .dir = GOCC_RECV, .elem = NULL}};
            int rc = gocc_select_try(cs, 1);
            assert_true(rc == 0 || rc == GOCC_EAGAIN);
            bool ok = false;
            assert_int_equal(gocc_chan_recv(done, &ok, sc), 0);
            if (!ok) fail_msg("no chan is ready (variant %d, iteration %d)", variant, i);
            gocc_chan_release(a.c1);
            gocc_chan_release(a.c2);
        }
    }
    gocc_chan_release(done);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from test/chan/doubleselect.go: a select over four send cases feeding
 * four forwarders into one channel; nothing duplicated, nothing lost */
typedef struct ds_sender {
    gocc_chan_t *c[4];
    gocc_ctx_t *ctx;
    int n;
    atomic_int *fails;
} ds_sender_t;

static int ds_sender_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ds_sender_t *s = arg;
    for (int i = 0; i < s->n; i++) {
        int v[4] = {i, i, i, i};
        gocc_case_t cs[4];
        for (int k = 0; k < 4; k++)
            cs[k] = (gocc_case_t){.ch = s->c[k], .dir = GOCC_SEND, .elem = &v[k]};
        if (gocc_select(cs, 4, s->ctx) < 0) {
            atomic_fetch_add(s->fails, 1);
            break;
        }
    }
    for (int k = 0; k < 4; k++) gocc_chan_close(s->c[k]);
    return 0;
}

typedef struct ds_mux {
    gocc_chan_t *out, *in, *done;
    gocc_ctx_t *ctx;
    atomic_int *fails;
} ds_mux_t;

static int ds_mux_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ds_mux_t *m = arg;
    int v, rc;
    while ((rc = gocc_chan_recv(m->in, &v, m->ctx)) == 0)
        if (gocc_chan_send(m->out, &v, m->ctx) != 0) {
            atomic_fetch_add(m->fails, 1);
            break;
        }
    if (rc != 0 && rc != GOCC_ECLOSED) atomic_fetch_add(m->fails, 1);
    bool t = true;
    gocc_chan_send(m->done, &t, m->ctx);
    return 0;
}

typedef struct ds_closer {
    gocc_chan_t *done, *cmux;
    gocc_ctx_t *ctx;
} ds_closer_t;

static int ds_closer_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ds_closer_t *c = arg;
    for (int k = 0; k < 4; k++) gocc_chan_recv(c->done, NULL, c->ctx);
    gocc_chan_close(c->cmux);
    return 0;
}

static void test_select_doubleselect(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int n = SCALE(20000);
    atomic_int fails = 0;
    ds_sender_t s = {{chan_new(sizeof(int), 0), chan_new(sizeof(int), 0), chan_new(sizeof(int), 0),
                      chan_new(sizeof(int), 0)},
                     sc,
                     n,
                     &fails};
    gocc_chan_t *done = chan_new(sizeof(bool), 0);
    gocc_chan_t *cmux = chan_new(sizeof(int), 0);
    ds_mux_t m[4];
    assert_int_equal(gocc_go(ds_sender_fn, NULL, &s), 0);
    for (int k = 0; k < 4; k++) {
        m[k] = (ds_mux_t){cmux, s.c[k], done, sc, &fails};
        assert_int_equal(gocc_go(ds_mux_fn, NULL, &m[k]), 0);
    }
    ds_closer_t cl = {done, cmux, sc};
    assert_int_equal(gocc_go(ds_closer_fn, NULL, &cl), 0);
    unsigned char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    int v, rc, count = 0;
    while ((rc = gocc_chan_recv(cmux, &v, sc)) == 0) {
        assert_in_range(v, 0, n - 1);
        if (seen[v]) fail_msg("got duplicate value: %d", v);
        seen[v] = 1;
        count++;
    }
    assert_int_equal(rc, GOCC_ECLOSED);
    assert_int_equal(count, n);
    assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    assert_int_equal(atomic_load(&fails), 0);
    free(seen);
    for (int k = 0; k < 4; k++) gocc_chan_release(s.c[k]);
    gocc_chan_release(done);
    gocc_chan_release(cmux);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestSelectStress: plain senders and receivers
 * and one select-sender and one select-receiver over 4 channels (caps 0,
 * 0, 2, 3); the select tasks nil a case once it has done its N */
typedef struct ss_arg {
    gocc_chan_t **c;
    gocc_ctx_t *ctx;
    int k, n;
    atomic_int *fails;
    atomic_int *done;
} ss_arg_t;

static int ss_plain_send(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ss_arg_t *a = arg;
    int zero = 0;
    for (int i = 0; i < a->n; i++)
        if (gocc_chan_send(a->c[a->k], &zero, a->ctx) != 0) {
            atomic_fetch_add(a->fails, 1);
            break;
        }
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static int ss_plain_recv(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ss_arg_t *a = arg;
    for (int i = 0; i < a->n; i++)
        if (gocc_chan_recv(a->c[a->k], NULL, a->ctx) != 0) {
            atomic_fetch_add(a->fails, 1);
            break;
        }
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static int ss_select(gocc_ctx_t *ctx, void *arg, int dir) {
    (void)ctx;
    ss_arg_t *a = arg;
    int cnt[4] = {0};
    gocc_chan_t *c1[4];
    memcpy(c1, a->c, sizeof c1);
    static const int order_send[4] = {3, 2, 0, 1};
    for (int i = 0; i < 4 * a->n; i++) {
        int vals[4] = {0, 0, 0, 0};
        gocc_case_t cs[4];
        for (int j = 0; j < 4; j++) {
            int k = dir == GOCC_SEND ? order_send[j] : j;
            cs[j] = (gocc_case_t){.ch = c1[k], .dir = dir, .elem = &vals[j]};
        }
        int idx = gocc_select(cs, 4, a->ctx);
        if (idx < 0 || !cs[idx].ok) {
            atomic_fetch_add(a->fails, 1);
            break;
        }
        int k = dir == GOCC_SEND ? order_send[idx] : idx;
        if (++cnt[k] == a->n) c1[k] = NULL;
    }
    atomic_fetch_add_explicit(a->done, 1, memory_order_release);
    return 0;
}

static int ss_select_send(gocc_ctx_t *ctx, void *arg) { return ss_select(ctx, arg, GOCC_SEND); }
static int ss_select_recv(gocc_ctx_t *ctx, void *arg) { return ss_select(ctx, arg, GOCC_RECV); }

static void test_select_stress(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    const int N = SCALE(5000);
    gocc_chan_t *c[4] = {chan_new(sizeof(int), 0), chan_new(sizeof(int), 0),
                         chan_new(sizeof(int), 2), chan_new(sizeof(int), 3)};
    atomic_int fails = 0, done = 0;
    ss_arg_t a[10];
    for (int k = 0; k < 4; k++) {
        a[2 * k] = (ss_arg_t){c, sc, k, N, &fails, &done};
        a[2 * k + 1] = (ss_arg_t){c, sc, k, N, &fails, &done};
        assert_int_equal(gocc_go(ss_plain_send, NULL, &a[2 * k]), 0);
        assert_int_equal(gocc_go(ss_plain_recv, NULL, &a[2 * k + 1]), 0);
    }
    a[8] = (ss_arg_t){c, sc, 0, N, &fails, &done};
    a[9] = (ss_arg_t){c, sc, 0, N, &fails, &done};
    assert_int_equal(gocc_go(ss_select_send, NULL, &a[8]), 0);
    assert_int_equal(gocc_go(ss_select_recv, NULL, &a[9]), 0);
    assert_true(wait_count(&done, 10, SAFETY_NS + GOCC_SECOND));
    assert_int_equal(atomic_load(&fails), 0);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(gocc_chan_len(c[k]), 0);
        gocc_chan_release(c[k]);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* No direct Go test (runtime/select.go selectgo allows up to 65536
 * cases): many cases, more than fit any small on-stack array: only the one that becomes ready is taken, whatever its position.
 * TSan's deadlock detector cannot follow a thread holding 64 mutexes at
 * once (a select locks all its channels), so it gets fewer. */
#ifdef GOCC_TEST_TSAN
#define MANY_CASES 48
#else
#define MANY_CASES 64
#endif
static void test_select_many_cases(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    enum { NC = MANY_CASES };
    gocc_chan_t *ch[NC];
    for (int i = 0; i < NC; i++) ch[i] = chan_new(sizeof(int), i % 2);
    static const int picks[] = {0, NC - 1, 17, 32, 1, NC - 2};
    for (size_t p = 0; p < sizeof picks / sizeof picks[0]; p++) {
        int target = picks[p];
        int vals[NC];
        gocc_case_t cs[NC];
        for (int i = 0; i < NC; i++) {
            vals[i] = -1;
            cs[i] = (gocc_case_t){.ch = ch[i], .dir = GOCC_RECV, .elem = &vals[i]};
        }
        assert_int_equal(gocc_select_try(cs, NC), GOCC_EAGAIN);
        sel_t s; /* a task sends on the target once this thread's select parked */
        sel_init(&s, sc);
        s.after_parked = true;
        sel_add(&s, ch[target], GOCC_SEND, 1000 + target);
        sel_start(&s);
        assert_int_equal(gocc_select(cs, NC, sc), target);
        assert_true(cs[target].ok);
        assert_int_equal(vals[target], 1000 + target);
        for (int i = 0; i < NC; i++)
            if (i != target) assert_int_equal(vals[i], -1);
        assert_true(sel_wait(&s, SAFETY_NS));
        assert_int_equal(s.a.rc, 0);
    }
    for (int i = 0; i < NC; i++) {
        assert_int_equal(gocc_chan_len(ch[i]), 0);
        gocc_chan_release(ch[i]);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from context/example_test.go ExampleWithCancel: a generator task
 * selects { case <-ctx.Done(): return; case dst <- n: n++ } with the done
 * channel as an ordinary case (select's own ctx NULL, the pure Go form; and
 * the same context also passed to select, where either way of reporting the
 * cancel is right) */
typedef struct gen {
    gocc_chan_t *dst;
    gocc_ctx_t *ctx;
    bool pass_ctx;
    int last_rc;
    int sent;
    atomic_int done;
} gen_t;

static int gen_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gen_t *g = arg;
    gocc_chan_t *done = gocc_ctx_done(g->ctx);
    int n = 1;
    for (;;) {
        gocc_case_t cs[2] = {{.ch = done, .dir = GOCC_RECV, .elem = NULL},
                             {.ch = g->dst, .dir = GOCC_SEND, .elem = &n}};
        int rc = gocc_select(cs, 2, g->pass_ctx ? g->ctx : NULL);
        if (rc == 1 && cs[1].ok) {
            n++;
            g->sent++;
            continue;
        }
        g->last_rc = rc == 0 && !cs[0].ok ? 0 : rc;
        break;
    }
    atomic_store_explicit(&g->done, 1, memory_order_release);
    return 0;
}

static void test_select_ctx_done_case(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    for (int pass = 0; pass < 2; pass++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        assert_non_null(ctx);
        assert_non_null(gocc_ctx_done(ctx));
        gen_t g = {chan_new(sizeof(int), 0), ctx, pass == 1, 1000, 0, 0};
        assert_int_equal(gocc_go(gen_fn, NULL, &g), 0);
        for (int want = 1; want <= 5; want++) {
            int n = -1;
            assert_int_equal(gocc_chan_recv(g.dst, &n, sc), 0);
            assert_int_equal(n, want);
        }
        gocc_ctx_cancel(ctx); /* defer cancel() */
        int64_t end = gocc_now() + PROMPT_NS;
        while (!atomic_load_explicit(&g.done, memory_order_acquire) && gocc_now() < end)
            pause_ns(200 * GOCC_MICROSECOND);
        assert_true(atomic_load_explicit(&g.done, memory_order_acquire));
        if (pass == 0)
            assert_int_equal(g.last_rc, 0); /* the done case, ok=false */
        else
            assert_true(g.last_rc == 0 || g.last_rc == GOCC_ECANCELED);
        assert_int_equal(g.sent, 5);
        gocc_chan_release(g.dst);
        gocc_ctx_release(ctx);
    }
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

/* from context/example_test.go ExampleWithTimeout: select {
 * case <-time.After(1 * time.Second): "overslept"; case <-ctx.Done(): } */
static void test_select_timer_vs_ctx_done(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    assert_non_null(ctx);
    gocc_timer_t *t = gocc_timer_new(GOCC_SECOND);
    assert_non_null(t);
    int64_t fired = -1;
    gocc_case_t cs[2] = {{.ch = gocc_timer_chan(t), .dir = GOCC_RECV, .elem = &fired},
                         {.ch = gocc_ctx_done(ctx), .dir = GOCC_RECV, .elem = NULL}};
    assert_non_null(cs[0].ch);
    assert_non_null(cs[1].ch);
    int64_t t0 = gocc_now();
    int idx = gocc_select(cs, 2, NULL);
    assert_int_equal(idx, 1);
    assert_false(cs[1].ok);
    assert_int_equal(fired, -1);
    assert_int_equal(gocc_ctx_err(ctx), GOCC_EDEADLINE);
    assert_true(gocc_now() - t0 < 50 * GOCC_MILLISECOND + PROMPT_NS);
    gocc_timer_free(t);
    ctx_done_release(ctx);
    ASSERT_NO_TASKS(start);
}

/* No Go counterpart (the compiler rejects these) - API misuse: a bad
 * direction or NULL cases with n > 0 is GOCC_EINVAL, and
 * nothing happens on the other cases (Conventions: misuse changes nothing) */
static void test_select_bad_args(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    gocc_ctx_t *sc = safety_ctx();
    gocc_chan_t *c = chan_new(sizeof(int), 1);
    gocc_chan_t *room = chan_new(sizeof(int), 1);
    int one = 1;
    assert_int_equal(gocc_chan_try_send(c, &one), 0);
    int bad_dirs[] = {0, 3, -1, GOCC_RECV | GOCC_SEND | 4, 42};
    for (size_t k = 0; k < sizeof bad_dirs / sizeof bad_dirs[0]; k++) {
        int v = -1, w = -1, out = 5;
        gocc_case_t cs[3] = {{.ch = c, .dir = GOCC_RECV, .elem = &v},
                             {.ch = room, .dir = GOCC_SEND, .elem = &out},
                             {.ch = c, .dir = bad_dirs[k], .elem = &w}};
        assert_int_equal(gocc_select(cs, 3, sc), GOCC_EINVAL);
        assert_int_equal(gocc_select(cs, 3, NULL), GOCC_EINVAL);
        assert_int_equal(gocc_select_try(cs, 3), GOCC_EINVAL);
        assert_int_equal(v, -1);
        assert_int_equal(gocc_chan_len(c), 1);
        assert_int_equal(gocc_chan_len(room), 0);
        gocc_case_t only[1] = {{.ch = c, .dir = bad_dirs[k], .elem = &w}};
        assert_int_equal(gocc_select(only, 1, sc), GOCC_EINVAL);
        assert_int_equal(gocc_select_try(only, 1), GOCC_EINVAL);
    }
    assert_int_equal(gocc_select(NULL, 2, sc), GOCC_EINVAL);
    assert_int_equal(gocc_select(NULL, 1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_select_try(NULL, 3), GOCC_EINVAL);
    assert_int_equal(gocc_chan_len(c), 1);
    gocc_chan_release(c);
    gocc_chan_release(room);
    ctx_done_release(sc);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    /* No test here records TEST_NAME(): the alarm only has to come before
     * meson's 600 s; the stuck watchdog names what hangs. */
    test_main_init("test-select", 590u);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_select_try_nothing_ready),
        GOCC_TEST(test_select_ready),
        GOCC_TEST(test_select_go_select),
        GOCC_TEST(test_select_fairness),
        GOCC_TEST(test_select_fairness3),
        GOCC_TEST(test_select_same_channel_cases),
        GOCC_TEST(test_select_pseudo_random_send),
        GOCC_TEST(test_select_pseudo_random_parked),
        GOCC_TEST(test_select_self_select),
        GOCC_TEST(test_select_sees_itself),
        GOCC_TEST(test_select_send_recv_same_chan_partner),
        GOCC_TEST(test_select_nil_cases),
        GOCC_TEST(test_select_nothing_can_proceed),
        GOCC_TEST(test_select_closed),
        GOCC_TEST(test_select_cancel_wakes),
        GOCC_TEST(test_select_ctx_done_wins),
        GOCC_TEST(test_select_exactly_one),
        GOCC_TEST(test_select_duplicate_channel),
        GOCC_TEST(test_select_go_select6),
        GOCC_TEST(test_select_go_select7),
        GOCC_TEST(test_select_nonblock_race),
        GOCC_TEST(test_select_doubleselect),
        GOCC_TEST(test_select_stress),
        GOCC_TEST(test_select_many_cases),
        GOCC_TEST(test_select_ctx_done_case),
        GOCC_TEST(test_select_timer_vs_ctx_done),
        GOCC_TEST(test_select_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
