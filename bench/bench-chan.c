/*
 * bench-chan.c - channel and select benchmarks for libgocc, each channel
 * scenario beside the same one on a hand-written mutex + two condvars
 * channel (bench/baseline/basechan.c; scenarios named "baseline/...").
 * bench/go/chan.go runs the same scenario names with Go channels.
 *
 *   chan/uncontended            send then recv on one thread, capacity 1024
 *   chan/spsc/capC              1 producer, 1 consumer, capacity C = 1, 16, 1024
 *   chan/mpsc/capC/tT           T = 2, 4, 8, 16 producers, 1 consumer
 *   chan/mpmc/capC/tT           T producers and T consumers (T per side)
 *                               (T = 1 of both sweeps is chan/spsc/capC)
 *   chan/16p16c/cap64           16 producers, 16 consumers, capacity 64
 *   chan/pingpong               a round trip over two unbuffered channels
 *   select/2case/capC           one consumer selects over 2 channels, each
 *   select/4case/capC           fed by its own producer (4: 4 of each), C = 1, 1024
 *   select/both/t4/cap0         4 threads select-send over 4 unbuffered
 *                               channels, 4 threads select-receive over the
 *                               same 4 (crossbeam's select_both)
 *   select/try/empty2           gocc_select_try on 2 empty channels (Go's
 *                               select with default): the price of asking
 *   select/try/empty1           the same with one case (Go: select { case
 *                               <-c: default: }, a non-blocking receive)
 *
 * Task variants, task/NAME: the same scenario with its producers, consumers
 * and selectors started with gocc_go (tasks, as Go's are goroutines) and
 * waited for with a WaitGroup; the one-thread scenarios (uncontended,
 * select/try) run their loop in one task. Named ones only:
 *   task/chan/uncontended, task/chan/spsc/capC, task/chan/mpmc/capC/tT,
 *   task/chan/pingpong, task/select/2case/capC, task/select/try/empty1
 *
 * Method (harness.h): ns per operation, best and worst of the trials. An
 * operation is one value handed from a sender to a receiver (send + recv),
 * one round trip for pingpong, one select_try call for select/try.
 *
 * Without the task/ prefix, producer and consumer threads are plain
 * pthreads: the numbers measure the channels with OS threads that park in
 * the kernel. With it they measure the channels on the scheduler (tasks
 * park in user space and the partner of a handoff runs next on the same
 * worker). Every scenario checks that no value was lost
 * or duplicated (the sum of what was received); a mismatch or an error from
 * a channel call makes the program exit 1.
 *
 * Usage: bench-chan [-d SECONDS] [-t TRIALS] [-f SUBSTRING] [-l]
 * Output: CSV on stdout, header
 *   name,unit,best_ns_op,worst_ns_op,threads,capacity
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "baseline/basechan.h"
#include "harness.h"

/* Any channel error or lost value ends the program with status 1. */
#define die bench_die

/* ------------------------------------------------------------------------ */
/* The two channel implementations behind one table of operations. Both go
 * through the same indirect call, so neither pays for it more. */

typedef struct chanops {
    const char *prefix; /* "" or "baseline/" */
    void *(*make)(size_t capacity);
    void (*destroy)(void *ch);
    int (*send)(void *ch, const uint64_t *v);
    int (*recv)(void *ch, uint64_t *v);
} chanops_t;

static void *g_make(size_t cap) { return gocc_chan_new(sizeof(uint64_t), cap); }
static void g_destroy(void *ch) { gocc_chan_release(ch); }
static int g_send(void *ch, const uint64_t *v) { return gocc_chan_send(ch, v, NULL); }
static int g_recv(void *ch, uint64_t *v) { return gocc_chan_recv(ch, v, NULL); }

static void *b_make(size_t cap) { return basechan_new(sizeof(uint64_t), cap); }
static void b_destroy(void *ch) { basechan_free(ch); }
static int b_send(void *ch, const uint64_t *v) { return basechan_send(ch, v); }
static int b_recv(void *ch, uint64_t *v) { return basechan_recv(ch, v); }

static const chanops_t GOCC_OPS = {"", g_make, g_destroy, g_send, g_recv};
static const chanops_t BASE_OPS = {"baseline/", b_make, b_destroy, b_send, b_recv};

/* ------------------------------------------------------------------------ */
/* Scenarios. */

typedef struct scenario scenario_t;
struct scenario {
    char name[64];
    const char *unit;
    const chanops_t *ops;
    void (*run)(const scenario_t *s, uint64_t n);
    int producers, consumers; /* threads = producers + consumers */
    int threads;              /* as reported */
    size_t capacity;
    bool tasks;   /* task/ variant: actors are gocc_go tasks */
    bool in_task; /* ... and run() itself runs in one task */
};

static void *make_chan(const scenario_t *s) {
    void *ch = s->ops->make(s->capacity);
    if (!ch) die("channel creation failed", s->name, -errno);
    return ch;
}

/* The producers, consumers and selectors of one run: plain pthreads, or in
 * a task variant gocc_go tasks that mark a WaitGroup when done. */
#define MAX_SIDE 16
#define MAX_ACTORS (2 * MAX_SIDE + 1)

typedef struct actor {
    void *(*fn)(void *);
    void *arg;
    gocc_waitgroup_t *wg;
} actor_t;

typedef struct actors {
    const scenario_t *s;
    int n;
    gocc_waitgroup_t wg;
    pthread_t t[MAX_ACTORS];
    actor_t a[MAX_ACTORS];
} actors_t;

static int actor_task(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    actor_t *a = p;
    a->fn(a->arg);
    gocc_waitgroup_done(a->wg);
    return 0;
}

static void actors_init(actors_t *as, const scenario_t *s) {
    as->s = s;
    as->n = 0;
    as->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
}

static void actors_start(actors_t *as, void *(*fn)(void *), void *arg) {
    if (as->n == MAX_ACTORS) die("too many actors", as->s->name, 0);
    int i = as->n++;
    if (as->s->tasks) {
        as->a[i] = (actor_t){fn, arg, &as->wg};
        gocc_waitgroup_add(&as->wg, 1);
        int rc = gocc_go(actor_task, NULL, &as->a[i]);
        if (rc != 0) die("gocc_go failed", as->s->name, rc);
    } else {
        int rc = pthread_create(&as->t[i], NULL, fn, arg);
        if (rc != 0) die("pthread_create failed", as->s->name, -rc);
    }
}

/* Wait for every actor started (their results are visible afterwards). */
static void actors_join(actors_t *as) {
    if (as->s->tasks)
        gocc_waitgroup_wait(&as->wg, NULL);
    else
        for (int i = 0; i < as->n; i++) pthread_join(as->t[i], NULL);
}

/* sum of 0 .. n-1 */
static uint64_t expected_sum(uint64_t n) { return n * (n - 1) / 2; }

/* The part [lo, hi) of 0 .. n-1 that worker i of k handles. */
static void share(uint64_t n, int i, int k, uint64_t *lo, uint64_t *hi) {
    uint64_t per = n / (uint64_t)k, rem = n % (uint64_t)k;
    *lo = (uint64_t)i * per + ((uint64_t)i < rem ? (uint64_t)i : rem);
    *hi = *lo + per + ((uint64_t)i < rem ? 1 : 0);
}

/* chan/uncontended: one thread, send then recv, a buffered channel. */
static void run_uncontended(const scenario_t *s, uint64_t n) {
    void *ch = make_chan(s);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = i, got = 0;
        int rc = s->ops->send(ch, &v);
        if (rc) die("send", s->name, rc);
        rc = s->ops->recv(ch, &got);
        if (rc) die("recv", s->name, rc);
        if (got != i) die("wrong value received", s->name, 0);
    }
    s->ops->destroy(ch);
}

/* chan/spsc, chan/mpmc: producers send disjoint ranges of 0 .. n-1,
 * consumers receive their share of the count and add up what they got. */
typedef struct pc_arg {
    const scenario_t *s;
    void *ch;
    uint64_t lo, hi; /* producer: values; consumer: hi - lo values to take */
    uint64_t sum;    /* consumer: sum received */
} pc_arg_t;

static void *producer(void *p) {
    pc_arg_t *a = p;
    for (uint64_t v = a->lo; v < a->hi; v++) {
        int rc = a->s->ops->send(a->ch, &v);
        if (rc) die("send", a->s->name, rc);
    }
    return NULL;
}

static void *consumer(void *p) {
    pc_arg_t *a = p;
    uint64_t sum = 0;
    for (uint64_t i = a->lo; i < a->hi; i++) {
        uint64_t v;
        int rc = a->s->ops->recv(a->ch, &v);
        if (rc) die("recv", a->s->name, rc);
        sum += v;
    }
    a->sum = sum;
    return NULL;
}

static void run_prodcons(const scenario_t *s, uint64_t n) {
    void *ch = make_chan(s);
    pc_arg_t pa[MAX_SIDE], ca[MAX_SIDE];
    actors_t as;
    actors_init(&as, s);
    for (int i = 0; i < s->consumers; i++) {
        ca[i] = (pc_arg_t){.s = s, .ch = ch};
        share(n, i, s->consumers, &ca[i].lo, &ca[i].hi);
        actors_start(&as, consumer, &ca[i]);
    }
    for (int i = 0; i < s->producers; i++) {
        pa[i] = (pc_arg_t){.s = s, .ch = ch};
        share(n, i, s->producers, &pa[i].lo, &pa[i].hi);
        actors_start(&as, producer, &pa[i]);
    }
    actors_join(&as);
    uint64_t sum = 0;
    for (int i = 0; i < s->consumers; i++) sum += ca[i].sum;
    if (sum != expected_sum(n)) die("values lost or duplicated", s->name, 0);
    s->ops->destroy(ch);
}

/* chan/pingpong: two unbuffered channels; n round trips. */
typedef struct pp_arg {
    const scenario_t *s;
    void *ping, *pong;
    uint64_t n;
} pp_arg_t;

static void *ponger(void *p) {
    pp_arg_t *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t v;
        int rc = a->s->ops->recv(a->ping, &v);
        if (rc) die("recv", a->s->name, rc);
        v++;
        rc = a->s->ops->send(a->pong, &v);
        if (rc) die("send", a->s->name, rc);
    }
    return NULL;
}

static void *pinger(void *p) {
    pp_arg_t *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t v = i;
        int rc = a->s->ops->send(a->ping, &v);
        if (rc) die("send", a->s->name, rc);
        rc = a->s->ops->recv(a->pong, &v);
        if (rc) die("recv", a->s->name, rc);
        if (v != i + 1) die("wrong value received", a->s->name, 0);
    }
    return NULL;
}

static void run_pingpong(const scenario_t *s, uint64_t n) {
    pp_arg_t a = {.s = s, .ping = make_chan(s), .pong = make_chan(s), .n = n};
    actors_t as;
    actors_init(&as, s);
    actors_start(&as, ponger, &a);
    actors_start(&as, pinger, &a);
    actors_join(&as);
    s->ops->destroy(a.ping);
    s->ops->destroy(a.pong);
}

/* select/2case, select/4case: k producers, each on its own channel; one
 * consumer selects over all k until it has all n values. libgocc only. */
#define MAX_CASES 4

typedef struct sel_arg {
    const scenario_t *s;
    gocc_chan_t *ch[MAX_CASES];
    int k;
    uint64_t n;
    uint64_t sum;
} sel_arg_t;

static void *selector(void *p) {
    sel_arg_t *a = p;
    uint64_t v[MAX_CASES] = {0}, sum = 0;
    gocc_case_t cases[MAX_CASES];
    for (int i = 0; i < a->k; i++)
        cases[i] = (gocc_case_t){.ch = a->ch[i], .dir = GOCC_RECV, .elem = &v[i]};
    for (uint64_t i = 0; i < a->n; i++) {
        int idx = gocc_select(cases, (size_t)a->k, NULL);
        if (idx < 0 || idx >= a->k) die("select", a->s->name, idx);
        if (!cases[idx].ok) die("select: closed channel", a->s->name, 0);
        sum += v[idx];
    }
    a->sum = sum;
    return NULL;
}

static void run_select_recv(const scenario_t *s, uint64_t n) {
    int k = s->producers;
    sel_arg_t a = {.s = s, .k = k, .n = n};
    pc_arg_t pa[MAX_CASES];
    actors_t as;
    actors_init(&as, s);
    for (int i = 0; i < k; i++) {
        a.ch[i] = gocc_chan_new(sizeof(uint64_t), s->capacity);
        if (!a.ch[i]) die("channel creation failed", s->name, -errno);
    }
    actors_start(&as, selector, &a);
    for (int i = 0; i < k; i++) {
        pa[i] = (pc_arg_t){.s = s, .ch = a.ch[i]};
        share(n, i, k, &pa[i].lo, &pa[i].hi);
        actors_start(&as, producer, &pa[i]);
    }
    actors_join(&as);
    if (a.sum != expected_sum(n)) die("values lost or duplicated", s->name, 0);
    for (int i = 0; i < k; i++) gocc_chan_release(a.ch[i]);
}

/* select/both: T senders each select a SEND over the same T channels, T
 * receivers each select a RECV over them. Senders send disjoint ranges of
 * 0 .. n-1; receivers take their share of the count. */
typedef struct both_arg {
    const scenario_t *s;
    gocc_chan_t **ch;
    int k;
    uint64_t lo, hi; /* as in pc_arg_t */
    uint64_t sum;
} both_arg_t;

static void *select_sender(void *p) {
    both_arg_t *a = p;
    uint64_t v = 0;
    gocc_case_t cases[MAX_SIDE];
    for (int i = 0; i < a->k; i++)
        cases[i] = (gocc_case_t){.ch = a->ch[i], .dir = GOCC_SEND, .elem = &v};
    for (v = a->lo; v < a->hi; v++) {
        int idx = gocc_select(cases, (size_t)a->k, NULL);
        if (idx < 0 || idx >= a->k || !cases[idx].ok) die("select send", a->s->name, idx);
    }
    return NULL;
}

static void *select_receiver(void *p) {
    both_arg_t *a = p;
    uint64_t v = 0, sum = 0;
    gocc_case_t cases[MAX_SIDE];
    for (int i = 0; i < a->k; i++)
        cases[i] = (gocc_case_t){.ch = a->ch[i], .dir = GOCC_RECV, .elem = &v};
    for (uint64_t i = a->lo; i < a->hi; i++) {
        int idx = gocc_select(cases, (size_t)a->k, NULL);
        if (idx < 0 || idx >= a->k || !cases[idx].ok) die("select recv", a->s->name, idx);
        sum += v;
    }
    a->sum = sum;
    return NULL;
}

static void run_select_both(const scenario_t *s, uint64_t n) {
    int k = s->producers;
    gocc_chan_t *ch[MAX_SIDE];
    both_arg_t sa[MAX_SIDE], ra[MAX_SIDE];
    actors_t as;
    actors_init(&as, s);
    for (int i = 0; i < k; i++) {
        ch[i] = gocc_chan_new(sizeof(uint64_t), s->capacity);
        if (!ch[i]) die("channel creation failed", s->name, -errno);
    }
    for (int i = 0; i < k; i++) {
        ra[i] = (both_arg_t){.s = s, .ch = ch, .k = k};
        share(n, i, k, &ra[i].lo, &ra[i].hi);
        actors_start(&as, select_receiver, &ra[i]);
    }
    for (int i = 0; i < k; i++) {
        sa[i] = (both_arg_t){.s = s, .ch = ch, .k = k};
        share(n, i, k, &sa[i].lo, &sa[i].hi);
        actors_start(&as, select_sender, &sa[i]);
    }
    actors_join(&as);
    uint64_t sum = 0;
    for (int i = 0; i < k; i++) sum += ra[i].sum;
    if (sum != expected_sum(n)) die("values lost or duplicated", s->name, 0);
    for (int i = 0; i < k; i++) gocc_chan_release(ch[i]);
}

/* select/try/empty2: select_try over two empty channels, n times. */
static void run_select_try(const scenario_t *s, uint64_t n) {
    gocc_chan_t *a = gocc_chan_new(sizeof(uint64_t), s->capacity);
    gocc_chan_t *b = gocc_chan_new(sizeof(uint64_t), s->capacity);
    if (!a || !b) die("channel creation failed", s->name, -errno);
    uint64_t va = 0, vb = 0;
    gocc_case_t cases[2] = {
        {.ch = a, .dir = GOCC_RECV, .elem = &va},
        {.ch = b, .dir = GOCC_RECV, .elem = &vb},
    };
    for (uint64_t i = 0; i < n; i++) {
        int rc = gocc_select_try(cases, 2);
        if (rc != GOCC_EAGAIN) die("select_try on empty channels", s->name, rc);
    }
    gocc_chan_release(a);
    gocc_chan_release(b);
}

/* select/try/empty1: select_try with one case on an empty channel, n times
 * (Go compiles its one-case select with default to a non-blocking recv). */
static void run_select_try1(const scenario_t *s, uint64_t n) {
    gocc_chan_t *a = gocc_chan_new(sizeof(uint64_t), s->capacity);
    if (!a) die("channel creation failed", s->name, -errno);
    uint64_t va = 0;
    gocc_case_t c = {.ch = a, .dir = GOCC_RECV, .elem = &va};
    for (uint64_t i = 0; i < n; i++) {
        int rc = gocc_select_try(&c, 1);
        if (rc != GOCC_EAGAIN) die("select_try on an empty channel", s->name, rc);
    }
    gocc_chan_release(a);
}

/* ------------------------------------------------------------------------ */
/* The scenario list: every channel scenario for libgocc and the baseline,
 * select for libgocc only, then the task variants (libgocc only). */

static void run_body(const void *self, uint64_t n) {
    const scenario_t *s = self;
    s->run(s, n);
}

static void run_scenario(const void *self, uint64_t n) {
    const scenario_t *s = self;
    if (s->in_task)
        bench_run_in_task(s->name, run_body, s, n);
    else
        s->run(s, n);
}

#define MAX_SCENARIOS 128
static scenario_t scenarios[MAX_SCENARIOS];
static int nscenarios;

static scenario_t *add(const chanops_t *ops, const char *name, const char *unit,
                       void (*run)(const scenario_t *, uint64_t), int producers, int consumers,
                       size_t capacity) {
    if (nscenarios == MAX_SCENARIOS) die("too many scenarios", name, 0);
    scenario_t *s = &scenarios[nscenarios++];
    snprintf(s->name, sizeof s->name, "%s%s", ops->prefix, name);
    s->unit = unit;
    s->ops = ops;
    s->run = run;
    s->producers = producers;
    s->consumers = consumers;
    s->threads = producers + consumers;
    s->capacity = capacity;
    return s;
}

/* The task variant of a libgocc scenario: task/NAME. Scenarios whose loop
 * runs on the calling thread (no actors) run it in one task instead. */
static void add_task(const char *name, const char *unit, void (*run)(const scenario_t *, uint64_t),
                     int producers, int consumers, size_t capacity) {
    char tname[64];
    snprintf(tname, sizeof tname, "task/%.58s", name);
    scenario_t *s = add(&GOCC_OPS, tname, unit, run, producers, consumers, capacity);
    s->tasks = true;
    s->in_task = run == run_uncontended || run == run_select_try || run == run_select_try1;
}

static void build_scenarios(void) {
    static const size_t caps[] = {1, 16, 1024};
    static const int sweep[] = {2, 4, 8, 16};
    const chanops_t *impls[] = {&GOCC_OPS, &BASE_OPS};
    char name[64];
    for (size_t i = 0; i < 2; i++) {
        const chanops_t *o = impls[i];
        add(o, "chan/uncontended", "ns/op", run_uncontended, 1, 0, 1024);
        for (size_t c = 0; c < 3; c++) {
            snprintf(name, sizeof name, "chan/spsc/cap%zu", caps[c]);
            add(o, name, "ns/op", run_prodcons, 1, 1, caps[c]);
        }
        for (size_t c = 0; c < 3; c++)
            for (size_t t = 0; t < 4; t++) {
                snprintf(name, sizeof name, "chan/mpsc/cap%zu/t%d", caps[c], sweep[t]);
                add(o, name, "ns/op", run_prodcons, sweep[t], 1, caps[c]);
            }
        for (size_t c = 0; c < 3; c++)
            for (size_t t = 0; t < 4; t++) {
                snprintf(name, sizeof name, "chan/mpmc/cap%zu/t%d", caps[c], sweep[t]);
                add(o, name, "ns/op", run_prodcons, sweep[t], sweep[t], caps[c]);
            }
        add(o, "chan/16p16c/cap64", "ns/op", run_prodcons, 16, 16, 64);
        add(o, "chan/pingpong", "ns/roundtrip", run_pingpong, 1, 1, 0);
    }
    const chanops_t *o = &GOCC_OPS;
    add(o, "select/2case/cap1", "ns/op", run_select_recv, 2, 1, 1);
    add(o, "select/2case/cap1024", "ns/op", run_select_recv, 2, 1, 1024);
    add(o, "select/4case/cap1", "ns/op", run_select_recv, 4, 1, 1);
    add(o, "select/4case/cap1024", "ns/op", run_select_recv, 4, 1, 1024);
    add(o, "select/both/t4/cap0", "ns/op", run_select_both, 4, 4, 0);
    add(o, "select/try/empty2", "ns/op", run_select_try, 1, 0, 1);
    add(o, "select/try/empty1", "ns/op", run_select_try1, 1, 0, 1);

    /* The task variants the scheduler's targets name (bench/README.md). */
    add_task("chan/uncontended", "ns/op", run_uncontended, 1, 0, 1024);
    for (size_t c = 0; c < 3; c++) {
        snprintf(name, sizeof name, "chan/spsc/cap%zu", caps[c]);
        add_task(name, "ns/op", run_prodcons, 1, 1, caps[c]);
    }
    for (size_t c = 0; c < 3; c++)
        for (size_t t = 0; t < 4; t++) {
            snprintf(name, sizeof name, "chan/mpmc/cap%zu/t%d", caps[c], sweep[t]);
            add_task(name, "ns/op", run_prodcons, sweep[t], sweep[t], caps[c]);
        }
    add_task("chan/pingpong", "ns/roundtrip", run_pingpong, 1, 1, 0);
    add_task("select/2case/cap1", "ns/op", run_select_recv, 2, 1, 1);
    add_task("select/2case/cap1024", "ns/op", run_select_recv, 2, 1, 1024);
    add_task("select/try/empty1", "ns/op", run_select_try1, 1, 0, 1);
}

int main(int argc, char **argv) {
    build_scenarios();
    bench_desc_t descs[MAX_SCENARIOS];
    for (int i = 0; i < nscenarios; i++) {
        const scenario_t *s = &scenarios[i];
        descs[i] = (bench_desc_t){s->name, s->unit, s->threads, s->capacity, run_scenario, s};
    }
    return bench_main(argc, argv, "bench-chan", descs, nscenarios);
}
