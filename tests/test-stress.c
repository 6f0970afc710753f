/*
 * test-stress.c - channels and select under contention: many producers and
 * consumers, selects racing closes, closes racing blocked senders,
 * cancellation of many blocked tasks. Every test checks exact accounting:
 * no value lost, none duplicated, none delivered that a sender was told
 * was not. Each test is bounded to a few seconds (SCALE shrinks it under
 * sanitizers) and every blocking call has a safety-net context, so a bug
 * shows as a failure, not a hang.
 */
#include "test-common.h"

#include <stdlib.h>

/* Stress tests run longer than the default SAFETY_NS allows. */
#undef SAFETY_NS
#ifdef GOCC_TEST_SANITIZED
#define SAFETY_NS (90 * GOCC_SECOND)
#define PROMPT_MANY_NS (15 * GOCC_SECOND) /* many tasks woken at once */
#else
#define SAFETY_NS (20 * GOCC_SECOND)
#define PROMPT_MANY_NS (2 * GOCC_SECOND)
#endif

/* ------------------------------------------------------------------------ */

/* from runtime/chan_test.go TestChan ("send 1000 integers in 4 goroutines")
 * and crossbeam-channel's mpmc tests: P producers, C consumers, every value
 * (producer, seq) unique. Proven: nothing lost or duplicated (a per-value
 * tally, sum and xor), and each consumer sees each producer's values in
 * increasing order (FIFO). Half the producers and consumers go through
 * select instead of send/recv. The last producer closes the channel. */
typedef struct mpmc {
    gocc_chan_t *ch;
    gocc_chan_t *never; /* a channel no one uses: a second, never-ready case */
    gocc_ctx_t *ctx;
    int P, C, M;
    atomic_uchar *seen; /* [P*M] */
    atomic_int producers_left;
    atomic_int consumers_done;
    atomic_int fails;
    atomic_ullong sum, xor_;
    atomic_llong count;
} mpmc_t;

typedef struct mpmc_worker {
    mpmc_t *m;
    int id;
} mpmc_worker_t;

static int mpmc_producer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mpmc_worker_t *w = arg;
    mpmc_t *m = w->m;
    bool use_select = w->id % 2;
    for (int s = 0; s < m->M; s++) {
        uint64_t v = ((uint64_t)w->id << 32) | (uint64_t)s;
        int rc;
        if (use_select) {
            uint64_t dummy = 0;
            gocc_case_t cs[2] = {{.ch = m->never, .dir = GOCC_RECV, .elem = &dummy},
                                 {.ch = m->ch, .dir = GOCC_SEND, .elem = &v}};
            rc = gocc_select(cs, 2, m->ctx);
            rc = rc == 1 && cs[1].ok ? 0 : -1;
        } else {
            rc = gocc_chan_send(m->ch, &v, m->ctx);
        }
        if (rc != 0) {
            atomic_fetch_add(&m->fails, 1);
            break;
        }
    }
    if (atomic_fetch_sub(&m->producers_left, 1) == 1)
        if (gocc_chan_close(m->ch) != 0) atomic_fetch_add(&m->fails, 1);
    return 0;
}

static int mpmc_consumer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mpmc_worker_t *w = arg;
    mpmc_t *m = w->m;
    bool use_select = w->id % 2;
    int64_t last[16];
    for (int p = 0; p < 16; p++) last[p] = -1;
    uint64_t sum = 0, x = 0;
    long long n = 0;
    for (;;) {
        uint64_t v = UINT64_MAX;
        int rc;
        if (use_select) {
            uint64_t dummy = 0;
            gocc_case_t cs[2] = {{.ch = m->ch, .dir = GOCC_RECV, .elem = &v},
                                 {.ch = m->never, .dir = GOCC_RECV, .elem = &dummy}};
            rc = gocc_select(cs, 2, m->ctx);
            if (rc == 0)
                rc = cs[0].ok ? 0 : GOCC_ECLOSED;
            else if (rc > 0)
                rc = -1;
        } else {
            rc = gocc_chan_recv(m->ch, &v, m->ctx);
        }
        if (rc == GOCC_ECLOSED) {
            if (v != 0) atomic_fetch_add(&m->fails, 1); /* zero-filled */
            break;
        }
        if (rc != 0) {
            atomic_fetch_add(&m->fails, 1);
            break;
        }
        int p = (int)(v >> 32);
        int64_t s = (int64_t)(v & 0xffffffffu);
        if (p < 0 || p >= m->P || s >= m->M) {
            atomic_fetch_add(&m->fails, 1);
            break;
        }
        if (s <= last[p]) atomic_fetch_add(&m->fails, 1000); /* FIFO broken */
        last[p] = s;
        if (atomic_fetch_add(&m->seen[(size_t)p * (size_t)m->M + (size_t)s], 1) != 0)
            atomic_fetch_add(&m->fails, 1000000); /* duplicate */
        sum += v;
        x ^= v;
        n++;
    }
    atomic_fetch_add(&m->sum, sum);
    atomic_fetch_xor(&m->xor_, x);
    atomic_fetch_add(&m->count, n);
    atomic_fetch_add_explicit(&m->consumers_done, 1, memory_order_release);
    return 0;
}

static void run_mpmc(int P, int C, size_t cap, int M) {
    mpmc_t m;
    memset(&m, 0, sizeof m);
    m.ch = chan_new(sizeof(uint64_t), cap);
    m.never = chan_new(sizeof(uint64_t), 0);
    m.ctx = safety_ctx();
    m.P = P;
    m.C = C;
    m.M = M;
    m.seen = calloc((size_t)P * (size_t)M, sizeof *m.seen);
    assert_non_null(m.seen);
    atomic_init(&m.producers_left, P);
    atomic_init(&m.consumers_done, 0);
    atomic_init(&m.fails, 0);
    atomic_init(&m.sum, 0);
    atomic_init(&m.xor_, 0);
    atomic_init(&m.count, 0);
    mpmc_worker_t pw[16], cw[16];
    for (int c = 0; c < C; c++) {
        cw[c] = (mpmc_worker_t){&m, c};
        go(mpmc_consumer, &cw[c]);
    }
    for (int p = 0; p < P; p++) {
        pw[p] = (mpmc_worker_t){&m, p};
        go(mpmc_producer, &pw[p]);
    }
    if (!wait_count(&m.consumers_done, C, SAFETY_NS + GOCC_SECOND))
        fail_msg("mpmc %dx%d cap %zu: consumers did not finish", P, C, cap);
    uint64_t want_sum = 0, want_xor = 0;
    for (int p = 0; p < P; p++)
        for (int s = 0; s < M; s++) {
            uint64_t v = ((uint64_t)p << 32) | (uint64_t)s;
            want_sum += v;
            want_xor ^= v;
        }
    if (atomic_load(&m.fails) != 0)
        fail_msg("mpmc %dx%d cap %zu: fails=%d", P, C, cap, atomic_load(&m.fails));
    assert_int_equal(atomic_load(&m.count), (long long)P * M);
    assert_int_equal(atomic_load(&m.sum), want_sum);
    assert_int_equal(atomic_load(&m.xor_), want_xor);
    for (size_t i = 0; i < (size_t)P * (size_t)M; i++) assert_int_equal(atomic_load(&m.seen[i]), 1);
    assert_int_equal(gocc_chan_len(m.ch), 0);
    assert_int_equal(gocc_ctx_err(m.ctx), 0);
    free(m.seen);
    gocc_chan_release(m.ch);
    gocc_chan_release(m.never);
    ctx_done_release(m.ctx);
}

static void test_stress_mpmc(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    static const size_t caps[] = {0, 1, 7, 1024};
    static const int shapes[][2] = {{4, 4}, {8, 2}, {1, 1}, {2, 8}};
    const int M = SCALE(5000);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
            run_mpmc(shapes[si][0], shapes[si][1], caps[ci], M);
            assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
        }
    ASSERT_NO_TASKS(start);
}

/* from test/chan/doubleselect.go and runtime/chan_test.go TestSelectStress,
 * with closes: sender, receiver and mixed tasks select over send and
 * receive cases on four channels (caps 0, 1, 7, 64) while two closer tasks
 * close them one by one (each channel is closed exactly once; the other
 * close gets GOCC_ECLOSED). A case that reports its channel closed (ok ==
 * false) is nil-ed, as in Go. In the end, drained: the values received are
 * exactly the values whose send succeeded, each once. */
#define SC_K 4
#define SC_S 3 /* sender tasks */
#define SC_R 3 /* receiver tasks */
#define SC_X 2 /* mixed tasks */

typedef struct sclose {
    gocc_chan_t *ch[SC_K];
    gocc_ctx_t *ctx;
    int M;              /* select iterations per sending task */
    atomic_uchar *sent; /* [(SC_S+SC_X) * M * SC_K] */
    atomic_uchar *recvd;
    atomic_int ops; /* successful operations so far */
    atomic_int senders_done;
    atomic_int closes_ok, closes_dup;
    atomic_int fails;
    atomic_int done;
} sclose_t;

typedef struct sclose_worker {
    sclose_t *s;
    int id;    /* sending id for senders and mixed tasks */
    int kind;  /* 0 sender, 1 receiver, 2 mixed, 3 closer */
    int order; /* closers: 0 forwards, 1 backwards */
} sclose_worker_t;

static size_t sc_value(sclose_t *s, int id, int iter, int k) {
    return ((size_t)id * (size_t)s->M + (size_t)iter) * SC_K + (size_t)k;
}

static int sclose_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sclose_worker_t *w = arg;
    sclose_t *s = w->s;
    gocc_chan_t *open[SC_K];
    memcpy(open, s->ch, sizeof open);
    int nopen = SC_K;
    bool sends = w->kind == 0 || w->kind == 2;
    bool recvs = w->kind == 1 || w->kind == 2;
    for (int iter = 0; nopen > 0 && (!sends || iter < s->M); iter++) {
        gocc_case_t cs[2 * SC_K];
        int chan_of[2 * SC_K];
        size_t out[SC_K], in[SC_K];
        int n = 0;
        for (int k = 0; k < SC_K; k++) {
            if (!open[k]) continue;
            if (sends) {
                out[k] = sc_value(s, w->id, iter, k);
                chan_of[n] = k;
                cs[n++] = (gocc_case_t){.ch = open[k], .dir = GOCC_SEND, .elem = &out[k]};
            }
            if (recvs) {
                in[k] = SIZE_MAX;
                chan_of[n] = k;
                cs[n++] = (gocc_case_t){.ch = open[k], .dir = GOCC_RECV, .elem = &in[k]};
            }
        }
        int idx = gocc_select(cs, (size_t)n, s->ctx);
        if (idx < 0 || idx >= n) {
            atomic_fetch_add(&s->fails, 1);
            break;
        }
        int k = chan_of[idx];
        if (!cs[idx].ok) {
            if (cs[idx].dir == GOCC_RECV && in[k] != 0) atomic_fetch_add(&s->fails, 1);
            open[k] = NULL;
            nopen--;
            continue;
        }
        if (cs[idx].dir == GOCC_SEND) {
            atomic_store(&s->sent[out[k]], 1);
        } else {
            size_t v = in[k];
            size_t total = (size_t)(SC_S + SC_X) * (size_t)s->M * SC_K;
            if (v >= total || v % SC_K != (size_t)k) {
                atomic_fetch_add(&s->fails, 1);
                break;
            }
            if (atomic_fetch_add(&s->recvd[v], 1) != 0) atomic_fetch_add(&s->fails, 1000);
        }
        atomic_fetch_add(&s->ops, 1);
    }
    if (sends) atomic_fetch_add(&s->senders_done, 1);
    atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    return 0;
}

static int sclose_closer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sclose_worker_t *w = arg;
    sclose_t *s = w->s;
    int step = s->M / 2 > 0 ? s->M / 2 : 1;
    for (int j = 0; j < SC_K; j++) {
        int k = w->order ? SC_K - 1 - j : j;
        /* Close while traffic flows: after enough operations, or once the
         * senders are gone (then nothing more would come). */
        while (atomic_load(&s->ops) < (j + 1) * step &&
               atomic_load(&s->senders_done) < SC_S + SC_X && gocc_ctx_err(s->ctx) == 0)
            gocc_sleep(50 * GOCC_MICROSECOND, NULL);
        int rc = gocc_chan_close(s->ch[k]);
        if (rc == 0)
            atomic_fetch_add(&s->closes_ok, 1);
        else if (rc == GOCC_ECLOSED)
            atomic_fetch_add(&s->closes_dup, 1);
        else
            atomic_fetch_add(&s->fails, 1);
    }
    atomic_fetch_add_explicit(&s->done, 1, memory_order_release);
    return 0;
}

static void test_stress_select_close(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    const int rounds = 8;
    long total_sent = 0;
    for (int round = 0; round < rounds; round++) {
        sclose_t s;
        memset(&s, 0, sizeof s);
        static const size_t caps[SC_K] = {0, 1, 7, 64};
        for (int k = 0; k < SC_K; k++) s.ch[k] = chan_new(sizeof(size_t), caps[k]);
        s.ctx = safety_ctx();
        s.M = SCALE(3000);
        size_t total = (size_t)(SC_S + SC_X) * (size_t)s.M * SC_K;
        s.sent = calloc(total, 1);
        s.recvd = calloc(total, 1);
        assert_non_null(s.sent);
        assert_non_null(s.recvd);
        atomic_init(&s.ops, 0);
        atomic_init(&s.senders_done, 0);
        atomic_init(&s.closes_ok, 0);
        atomic_init(&s.closes_dup, 0);
        atomic_init(&s.fails, 0);
        atomic_init(&s.done, 0);
        sclose_worker_t w[SC_S + SC_R + SC_X + 2];
        int nw = 0, sid = 0;
        for (int i = 0; i < SC_R; i++) w[nw++] = (sclose_worker_t){&s, -1, 1, 0};
        for (int i = 0; i < SC_S; i++) w[nw++] = (sclose_worker_t){&s, sid++, 0, 0};
        for (int i = 0; i < SC_X; i++) w[nw++] = (sclose_worker_t){&s, sid++, 2, 0};
        for (int i = 0; i < nw; i++) go(sclose_task, &w[i]);
        sclose_worker_t closers[2] = {{&s, -1, 3, round % 2}, {&s, -1, 3, 1 - round % 2}};
        go(sclose_closer, &closers[0]);
        go(sclose_closer, &closers[1]);
        if (!wait_count(&s.done, nw + 2, SAFETY_NS + GOCC_SECOND))
            fail_msg("round %d: tasks did not finish (done %d of %d)", round, atomic_load(&s.done),
                     nw + 2);
        assert_int_equal(atomic_load(&s.fails), 0);
        assert_int_equal(atomic_load(&s.closes_ok), SC_K);
        assert_int_equal(atomic_load(&s.closes_dup), SC_K);
        /* Drain what was still buffered at close. */
        for (int k = 0; k < SC_K; k++) {
            size_t v;
            int rc;
            while ((rc = gocc_chan_recv(s.ch[k], &v, s.ctx)) == 0) {
                assert_true(v < total);
                assert_int_equal(atomic_fetch_add(&s.recvd[v], 1), 0);
            }
            assert_int_equal(rc, GOCC_ECLOSED);
        }
        long nsent = 0;
        for (size_t v = 0; v < total; v++) {
            int sv = atomic_load(&s.sent[v]), rv = atomic_load(&s.recvd[v]);
            if (sv != rv) fail_msg("round %d: value %zu sent %d received %d", round, v, sv, rv);
            nsent += sv;
        }
        assert_true(nsent > 0);
        total_sent += nsent;
        free(s.sent);
        free(s.recvd);
        for (int k = 0; k < SC_K; k++) gocc_chan_release(s.ch[k]);
        ctx_done_release(s.ctx);
        assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    }
    assert_true(total_sent >= rounds);
    ASSERT_NO_TASKS(start);
}

/* No lost data on close under a blocked sender (Go: a sender blocked in
 * send panics when the channel is closed; here it returns GOCC_ECLOSED and
 * its value must never be received). N senders (half plain send, half
 * select) on one channel; receivers take some; then close. Every sender
 * returns 0 (and its value is received exactly once, live or drained after
 * the close) or GOCC_ECLOSED (and it is never received). Two variants:
 * "quota" (receivers stop after Q values, the close finds the rest blocked)
 * and "racing" (receivers keep going, the close lands mid-flow). */
typedef struct cbs {
    gocc_chan_t *ch;
    gocc_chan_t *never;  /* senders' extra case: receive, nobody sends */
    gocc_chan_t *never2; /* receivers' extra case: send, nobody receives */
    gocc_ctx_t *ctx;
    int n;
    int quota; /* receivers stop after this many (racing: n) */
    atomic_int tickets;
    atomic_int received_live;
    atomic_int *recvd; /* [n] */
    int *rc;           /* [n] per sender */
    atomic_int started;
    atomic_int senders_done, receivers_done;
    atomic_int fails;
} cbs_t;

typedef struct cbs_worker {
    cbs_t *c;
    int id;
} cbs_worker_t;

static int cbs_sender(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cbs_worker_t *w = arg;
    cbs_t *c = w->c;
    int v = w->id, rc;
    atomic_fetch_add(&c->started, 1);
    switch (w->id % 4) {
    case 0: rc = gocc_chan_send(c->ch, &v, c->ctx); break;
    case 1: rc = gocc_chan_send(c->ch, &v, NULL); break;
    default: {
        int d = -1;
        gocc_case_t cs[2] = {
            {.ch = c->ch, .dir = GOCC_SEND, .elem = &v},
            {.ch = w->id % 4 == 2 ? NULL : c->never, .dir = GOCC_RECV, .elem = &d}};
        rc = gocc_select(cs, 2, c->ctx);
        if (rc == 0)
            rc = cs[0].ok ? 0 : GOCC_ECLOSED;
        else if (rc > 0)
            rc = -1000;
    }
    }
    c->rc[w->id] = rc;
    atomic_fetch_add_explicit(&c->senders_done, 1, memory_order_release);
    return 0;
}

static int cbs_receiver(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cbs_worker_t *w = arg;
    cbs_t *c = w->c;
    for (;;) {
        if (atomic_fetch_add(&c->tickets, 1) >= c->quota) break;
        int v = -1, rc;
        if (w->id % 2) {
            rc = gocc_chan_recv(c->ch, &v, c->ctx);
        } else {
            gocc_case_t cs[2] = {{.ch = c->never2, .dir = GOCC_SEND, .elem = &v},
                                 {.ch = c->ch, .dir = GOCC_RECV, .elem = &v}};
            rc = gocc_select(cs, 2, c->ctx);
            if (rc == 1)
                rc = cs[1].ok ? 0 : GOCC_ECLOSED;
            else if (rc >= 0)
                rc = -1000;
        }
        if (rc == GOCC_ECLOSED) break;
        if (rc != 0 || v < 0 || v >= c->n) {
            atomic_fetch_add(&c->fails, 1);
            break;
        }
        atomic_fetch_add(&c->recvd[v], 1);
        atomic_fetch_add(&c->received_live, 1);
    }
    atomic_fetch_add_explicit(&c->receivers_done, 1, memory_order_release);
    return 0;
}

static void test_stress_close_blocked_senders(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    const int rounds = SCALE(40);
    const int N = SCALE(64) < 8 ? 8 : SCALE(64);
    enum { NR = 2 };
    long n_ok = 0, n_closed = 0;
    for (int round = 0; round < rounds; round++) {
        bool racing = round % 2;
        size_t cap = (round / 2) % 3 == 0 ? 0 : (round / 2) % 3 == 1 ? 1 : 5;
        cbs_t c;
        memset(&c, 0, sizeof c);
        c.ch = chan_new(sizeof(int), cap);
        c.never = chan_new(sizeof(int), 0);
        c.never2 = chan_new(sizeof(int), 0);
        c.ctx = safety_ctx();
        c.n = N;
        c.quota = racing ? N : N / 2;
        c.recvd = calloc((size_t)N, sizeof *c.recvd);
        c.rc = calloc((size_t)N, sizeof *c.rc);
        assert_non_null(c.recvd);
        assert_non_null(c.rc);
        for (int i = 0; i < N; i++) atomic_init(&c.recvd[i], 0);
        atomic_init(&c.tickets, 0);
        atomic_init(&c.received_live, 0);
        atomic_init(&c.started, 0);
        atomic_init(&c.senders_done, 0);
        atomic_init(&c.receivers_done, 0);
        atomic_init(&c.fails, 0);
        cbs_worker_t *sw = calloc((size_t)N, sizeof *sw);
        assert_non_null(sw);
        cbs_worker_t rw[NR];
        for (int i = 0; i < N; i++) {
            sw[i] = (cbs_worker_t){&c, i};
            go(cbs_sender, &sw[i]);
        }
        for (int i = 0; i < NR; i++) {
            rw[i] = (cbs_worker_t){&c, i};
            go(cbs_receiver, &rw[i]);
        }
        if (racing) {
            /* Close while values flow. */
            assert_true(wait_count(&c.received_live, N / 3, SAFETY_NS));
        } else {
            /* Receivers have taken their quota; let the rest block. */
            if (!wait_count(&c.received_live, c.quota, SAFETY_NS))
                fail_msg("round %d (cap %zu): receivers took %d of %d (tickets %d, fails %d, "
                         "senders done %d, receivers done %d)",
                         round, cap, atomic_load(&c.received_live), c.quota,
                         atomic_load(&c.tickets), atomic_load(&c.fails),
                         atomic_load(&c.senders_done), atomic_load(&c.receivers_done));
            assert_true(wait_count(&c.started, N, SAFETY_NS));
            gocc_sleep(2 * GOCC_MILLISECOND, NULL);
        }
        assert_int_equal(gocc_chan_close(c.ch), 0);
        if (!wait_count(&c.senders_done, N, PROMPT_MANY_NS))
            fail_msg("round %d: senders not woken by close (%d of %d returned)", round,
                     atomic_load(&c.senders_done), N);
        assert_true(wait_count(&c.receivers_done, NR, PROMPT_MANY_NS));
        assert_int_equal(atomic_load(&c.fails), 0);
        /* Drain what was buffered before the close. */
        int v, rc, drained = 0;
        while ((rc = gocc_chan_try_recv(c.ch, &v)) == 0) {
            assert_in_range(v, 0, N - 1);
            atomic_fetch_add(&c.recvd[v], 1);
            drained++;
        }
        assert_int_equal(rc, GOCC_ECLOSED);
        assert_true(drained <= (int)cap);
        int ok = 0, closed = 0;
        for (int i = 0; i < N; i++) {
            int r = atomic_load(&c.recvd[i]);
            if (c.rc[i] == 0) {
                ok++;
                if (r != 1)
                    fail_msg("round %d (cap %zu%s): sender %d returned 0 but its value "
                             "was received %d times",
                             round, cap, racing ? ", racing" : "", i, r);
            } else if (c.rc[i] == GOCC_ECLOSED) {
                closed++;
                if (r != 0)
                    fail_msg("round %d (cap %zu%s): sender %d returned GOCC_ECLOSED but "
                             "its value was received %d times",
                             round, cap, racing ? ", racing" : "", i, r);
            } else {
                fail_msg("round %d: sender %d returned %d", round, i, c.rc[i]);
            }
        }
        assert_int_equal(ok + closed, N);
        assert_true(ok >= atomic_load(&c.received_live));
        if (!racing) {
            /* Exactly the quota plus what fit in the buffer got through. */
            assert_int_equal(atomic_load(&c.received_live), c.quota);
            assert_true(ok <= c.quota + (int)cap);
            assert_true(closed >= N - c.quota - (int)cap);
        }
        n_ok += ok;
        n_closed += closed;
        free(sw);
        free(c.recvd);
        free(c.rc);
        gocc_chan_release(c.ch);
        gocc_chan_release(c.never);
        gocc_chan_release(c.never2);
        ctx_done_release(c.ctx);
        assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    }
    /* Not vacuous: both outcomes happened many times. */
    assert_true(n_ok >= rounds * N / 4);
    assert_true(n_closed >= rounds / 2);
    ASSERT_NO_TASKS(start);
}

/* from runtime/chan_test.go TestChan "close unblocks receive", at scale:
 * many tasks blocked on one channel, woken by one close (Clarifications
 * "Scale": many blocked tasks at once). */
typedef struct mb {
    gocc_chan_t *ch;
    gocc_ctx_t *ctx;
    atomic_int closed, other, started;
} mb_t;

static int mb_recv(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    mb_t *m = arg;
    atomic_fetch_add(&m->started, 1);
    int v = 5;
    int rc = gocc_chan_recv(m->ch, &v, m->ctx);
    if (rc == GOCC_ECLOSED && v == 0)
        atomic_fetch_add_explicit(&m->closed, 1, memory_order_release);
    else
        atomic_fetch_add_explicit(&m->other, 1, memory_order_release);
    return 0;
}

static void test_stress_many_blocked_close(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    const int n = SCALE(2000);
    mb_t m;
    m.ch = chan_new(sizeof(int), 0);
    m.ctx = safety_ctx();
    atomic_init(&m.closed, 0);
    atomic_init(&m.other, 0);
    atomic_init(&m.started, 0);
    for (int i = 0; i < n; i++) go(mb_recv, &m);
    assert_true(wait_count(&m.started, n, SAFETY_NS));
    gocc_sleep(10 * GOCC_MILLISECOND, NULL);
    assert_int_equal(atomic_load(&m.closed) + atomic_load(&m.other), 0);
    int64_t t0 = gocc_now();
    assert_int_equal(gocc_chan_close(m.ch), 0);
    assert_true(wait_count(&m.closed, n, PROMPT_MANY_NS));
    assert_true(gocc_now() - t0 < PROMPT_MANY_NS);
    assert_int_equal(atomic_load(&m.other), 0);
    assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    gocc_chan_release(m.ch);
    ctx_done_release(m.ctx);
    ASSERT_NO_TASKS(start);
}

/* Cancellation under load (from test/chan/select3.go testBlock, at scale):
 * many tasks send, receive and select on the same two channels (caps 0 and
 * 3) with one context, more senders than receivers so many are blocked;
 * others wait on nil channels and empty selects. The context is cancelled
 * mid-flow: every task returns promptly with GOCC_ECANCELED, and every
 * value whose send succeeded was received exactly once (live, or drained
 * from the buffer afterwards); no other value was. */
#define CB_MAXSEQ 65536

typedef struct cb {
    gocc_chan_t *u, *b;
    gocc_ctx_t *ctx;
    int ntags;
    atomic_uchar *sent, *recvd; /* [ntags * CB_MAXSEQ] */
    atomic_int ops;
    atomic_int finished;
    atomic_int fails;
} cb_t;

typedef struct cb_worker {
    cb_t *c;
    int tag, kind;
    atomic_int rc, seq; /* for diagnostics */
} cb_worker_t;

static void cb_worker_init(cb_worker_t *w, cb_t *c, int tag, int kind) {
    w->c = c;
    w->tag = tag;
    w->kind = kind;
    atomic_init(&w->rc, 0);
    atomic_init(&w->seq, 0);
}

static void cb_mark_recv(cb_t *c, int v) {
    if (v < 0 || v >= c->ntags * CB_MAXSEQ) {
        atomic_fetch_add(&c->fails, 1);
        return;
    }
    if (atomic_fetch_add(&c->recvd[v], 1) != 0) atomic_fetch_add(&c->fails, 1000);
}

static int cb_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cb_worker_t *w = arg;
    cb_t *c = w->c;
    int rc = 0;
    for (int seq = 0; seq < CB_MAXSEQ; seq++) {
        atomic_store_explicit(&w->seq, seq, memory_order_relaxed);
        int v = w->tag * CB_MAXSEQ + seq;
        gocc_chan_t *ch = seq % 2 ? c->u : c->b;
        if (w->kind == 0) { /* sender */
            rc = gocc_chan_send(ch, &v, c->ctx);
            if (rc != 0) break;
            atomic_store(&c->sent[v], 1);
        } else if (w->kind == 1) { /* receiver */
            int got = -1;
            rc = gocc_chan_recv(ch, &got, c->ctx);
            if (rc != 0) break;
            cb_mark_recv(c, got);
        } else if (w->kind == 2) { /* select over everything */
            int v2 = v, in1 = -1, in2 = -1;
            gocc_case_t cs[4] = {{.ch = c->u, .dir = GOCC_SEND, .elem = &v},
                                 {.ch = c->b, .dir = GOCC_SEND, .elem = &v2},
                                 {.ch = c->u, .dir = GOCC_RECV, .elem = &in1},
                                 {.ch = c->b, .dir = GOCC_RECV, .elem = &in2}};
            /* v and v2 are the same value: only one send can happen */
            rc = gocc_select(cs, 4, c->ctx);
            if (rc < 0) break;
            if (!cs[rc].ok) {
                rc = -1000;
                break;
            }
            if (rc <= 1)
                atomic_store(&c->sent[v], 1);
            else
                cb_mark_recv(c, rc == 2 ? in1 : in2);
            rc = 0;
        } else if (w->kind == 3) { /* nil channel */
            rc = gocc_chan_recv(NULL, NULL, c->ctx);
            if (rc == 0) rc = -1000;
            break;
        } else { /* select {} */
            rc = gocc_select(NULL, 0, c->ctx);
            if (rc >= 0) rc = -1000;
            break;
        }
        atomic_fetch_add(&c->ops, 1);
    }
    if (rc == 0) {
        /* Out of values (a very fast machine): wait for the cancel like
         * the others, so that every task ends by it. */
        rc = gocc_chan_recv(NULL, NULL, c->ctx);
    }
    atomic_store(&w->rc, rc);
    if (rc != GOCC_ECANCELED) atomic_fetch_add(&c->fails, 1);
    atomic_fetch_add_explicit(&c->finished, 1, memory_order_release);
    return 0;
}

static void test_stress_cancel_blocked(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    const int rounds = 3;
    const int S = SCALE(48), R = SCALE(16), X = SCALE(24), NIL = SCALE(8), EMPTY = SCALE(8);
    const int ntasks = S + R + X + NIL + EMPTY;
    for (int round = 0; round < rounds; round++) {
        cb_t c;
        memset(&c, 0, sizeof c);
        c.u = chan_new(sizeof(int), 0);
        c.b = chan_new(sizeof(int), 3);
        /* Round 2 cancels through a parent: the tasks' context is a child. */
        gocc_ctx_t *parent = round == 2 ? gocc_ctx_with_cancel(NULL) : NULL;
        c.ctx = gocc_ctx_with_cancel(parent);
        assert_non_null(c.ctx);
        c.ntags = ntasks;
        c.sent = calloc((size_t)ntasks * CB_MAXSEQ, 1);
        c.recvd = calloc((size_t)ntasks * CB_MAXSEQ, 1);
        assert_non_null(c.sent);
        assert_non_null(c.recvd);
        atomic_init(&c.ops, 0);
        atomic_init(&c.finished, 0);
        atomic_init(&c.fails, 0);
        cb_worker_t *w = calloc((size_t)ntasks, sizeof *w);
        assert_non_null(w);
        int t = 0;
        for (int i = 0; i < S; i++, t++) cb_worker_init(&w[t], &c, t, 0);
        for (int i = 0; i < R; i++, t++) cb_worker_init(&w[t], &c, t, 1);
        for (int i = 0; i < X; i++, t++) cb_worker_init(&w[t], &c, t, 2);
        for (int i = 0; i < NIL; i++, t++) cb_worker_init(&w[t], &c, t, 3);
        for (int i = 0; i < EMPTY; i++, t++) cb_worker_init(&w[t], &c, t, 4);
        for (int i = 0; i < ntasks; i++) go(cb_task, &w[i]);
        /* Let traffic flow (a bounded while), then cancel mid-flow. */
        int want_ops = SCALE(4000);
        int64_t end = gocc_now() + SAFETY_NS;
        while (atomic_load(&c.ops) < want_ops && gocc_now() < end)
            gocc_sleep(GOCC_MILLISECOND, NULL);
        assert_true(atomic_load(&c.ops) >= want_ops);
        if (atomic_load_explicit(&c.finished, memory_order_acquire) != 0) {
            for (int i = 0; i < ntasks; i++)
                if (atomic_load(&w[i].rc) != 0)
                    fprintf(stderr,
                            "round %d: task %d (kind %d) returned %d (%s) at seq %d "
                            "before the cancel\n",
                            round, i, w[i].kind, atomic_load(&w[i].rc),
                            gocc_strerror(atomic_load(&w[i].rc)), atomic_load(&w[i].seq));
            fail_msg("round %d: %d tasks returned before the context was cancelled", round,
                     atomic_load(&c.finished));
        }
        int64_t t0 = gocc_now();
        gocc_ctx_cancel(parent ? parent : c.ctx);
        if (!wait_count(&c.finished, ntasks, PROMPT_MANY_NS))
            fail_msg("round %d: %d of %d tasks returned within %lld ms of the cancel", round,
                     atomic_load(&c.finished), ntasks,
                     (long long)(PROMPT_MANY_NS / GOCC_MILLISECOND));
        int64_t el = gocc_now() - t0;
        assert_true(el < PROMPT_MANY_NS);
        assert_int_equal(atomic_load(&c.fails), 0);
        /* The unbuffered channel holds nothing; drain the buffered one. */
        int v, rc;
        assert_int_equal(gocc_chan_try_recv(c.u, &v), GOCC_EAGAIN);
        int drained = 0;
        while ((rc = gocc_chan_try_recv(c.b, &v)) == 0) {
            cb_mark_recv(&c, v);
            drained++;
        }
        assert_int_equal(rc, GOCC_EAGAIN);
        assert_true(drained <= 3);
        assert_int_equal(atomic_load(&c.fails), 0);
        long nsent = 0;
        for (size_t i = 0; i < (size_t)ntasks * CB_MAXSEQ; i++) {
            int sv = atomic_load(&c.sent[i]), rv = atomic_load(&c.recvd[i]);
            if (sv != rv) fail_msg("round %d: value %zu sent %d received %d", round, i, sv, rv);
            nsent += sv;
        }
        assert_true(nsent > 0);
        free(w);
        free(c.sent);
        free(c.recvd);
        gocc_chan_release(c.u);
        gocc_chan_release(c.b);
        assert_int_equal(gocc_ctx_err(c.ctx), GOCC_ECANCELED);
        gocc_ctx_release(c.ctx);
        gocc_ctx_release(parent);
        assert_int_equal(test_wait_tasks(start, SAFETY_NS), start);
    }
    ASSERT_NO_TASKS(start);
}

int main(void) {
    /* No test here records TEST_NAME(): the alarm only has to come before
     * meson's 600 s; the stuck watchdog names what hangs. */
    test_main_init("test-stress", 590u);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_stress_mpmc),
        GOCC_TEST(test_stress_select_close),
        GOCC_TEST(test_stress_close_blocked_senders),
        GOCC_TEST(test_stress_many_blocked_close),
        GOCC_TEST(test_stress_cancel_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
