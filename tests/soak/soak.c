/*
 * soak.c - the soak test: every part of libgocc under a mixed load for a
 * given time, checking that no message is lost or duplicated, that nothing
 * leaks, and that memory plateaus.
 *
 *   soak [-d SECONDS] [-r REPORT_SECONDS] [-j DRIVERS] [-S SEED] [-k KINDS] [-L BYTES]
 *        [-M TASKS]
 *
 * -M first blocks TASKS tasks at once on one channel (1,000,000 in the
 * optimised build's test), reports the memory each costs and the time to
 * start and wake them all, and checks every one ran to its end; then the
 * mixed load runs as usual.
 *
 * One driver task per workload kind (-j: more) runs rounds until the
 * duration is over. A round builds its objects, runs a burst of concurrent
 * tasks over them, verifies what came out, and frees everything, so a leak
 * or an unbounded structure shows as memory growth and a lost wake-up as a
 * round that never ends. Kinds:
 *
 *   pipeline  producers -> 1..3 stages of 1..3 workers -> 1..2 sinks,
 *             channel capacities 0/1/16, shut down by close
 *   merge     gocc_chan_merge of 2..5 inputs; one round in four is
 *             cancelled part way (at most one value per input may drop)
 *   select    producers on 2..4 channels -> a dispatcher selecting over
 *             them and a timer -> select SEND to two sinks under a 5 ms
 *             deadline context per message
 *   group     error groups with limits (none, 1, 2, 4), try_go, tasks that
 *             sometimes fail, parents that sometimes time out
 *   workpool  fixed and adaptive pools, blocking and shedding submitters,
 *             graceful or forced shutdown; exact stats
 *   objpool   gocc_pool get/put from several tasks, trims, drop mode; no
 *             object handed out twice, every object freed once
 *   timer     gocc_sleep, timers (fire / stop / reset), tickers, deadline
 *             contexts
 *   cancel    cancellation storms: a tree of contexts (cancel, timeout,
 *             value nodes), tasks blocked under its leaves in recv, send,
 *             select, sleep, sem acquire, waitgroup wait, group go, nil
 *             channel; concurrent cancels of random nodes, then the root;
 *             after_funcs
 *   pubsub    one publisher, 2..4 subscribers with buffers 1/4/64, one of
 *             them unsubscribed half way
 *   ratelimit allow and wait (with deadlines) against one bucket
 *   snapshot  readers borrowing while writers store or compare-and-swap
 *   fdecho    1..4 socketpairs through gocc_fd_*: per pair a writer task
 *             sends counted messages in batches, an echo task on the other
 *             end writes back what it reads, a reader task takes them back;
 *             reads under short deadlines (a timeout consumes nothing, the
 *             call is retried), shutdown(SHUT_WR) ends each direction.
 *             Every message checked, in order per pair; bytes written,
 *             echoed and read back compared
 *
 * Every message carries (producer, seq) and a check word; the sinks verify
 * that nothing is lost, duplicated, corrupted or delivered that its sender
 * was told was not (see tracker_t). Pub/sub verifies per-subscriber order
 * and received + dropped == published.
 *
 * Every REPORT_SECONDS (default 5) one line: operations per kind, RSS and
 * its high-water mark, the live heap, tasks live and task threads. At the
 * end a summary and the checks: lost == 0, duplicated == 0, no other
 * failed check, every kind did work, gocc_tasks_live() back to 0
 * (gocc_leakcheck, 10 s bound), and two memory plateaus, from samples
 * taken every 100 ms while the drivers run (the high-water mark at the end
 * of the first third against the peak of the last third):
 *
 *   RSS:       last-third peak <= 1.5  x first-third high-water + 16 MiB
 *   live heap: last-third peak <= 1.25 x first-third high-water +  1 MiB
 *
 * (the live heap: bytes allocated and not freed, from mallinfo2 or the
 * sanitizer's allocator; skipped where neither exists).
 *
 * How the bounds were chosen. By the end of the first third (10 s of a
 * 30 s run) every kind has run many rounds, so the thread cache, malloc's
 * arenas, the pools' depots and the sanitizers' shadow memory have grown
 * to their working size. What RSS does after that is noise: the number of
 * cached threads (each with a stack) follows the load, arenas keep freed
 * memory, ASan's quarantine fills (capped at 64 MiB here, see
 * __asan_default_options). In measured 30 s runs the last third peaked
 * at up to 1.25x the first third's high-water mark under ASan (its fake
 * stacks, one per thread, still grow then), 1.12x under TSan and 1.05x
 * optimised, so 1.5x leaves room for a slower machine, and the 16 MiB
 * keeps a small process (opt: 5 MiB) from failing on allocator noise.
 * RSS is coarse: it catches growth of megabytes a second. The live heap
 * has none of that noise (opt: 1.6 -> 1.8 MiB over 30 s, 1.85 MiB at
 * most over 90 s), so its bound is tight: 1 MiB of growth in 20 s is
 * caught, e.g. 10 bytes per pipeline message or 200 bytes per round.
 * `-L BYTES` leaks that much per round on purpose, to see the checks
 * fail: -L 200 fails the heap check, -L 4096 both.
 *
 * A round that does not finish within SAFETY_NS is a hang: the dump goes
 * to stderr and the program exits 3. Any failed check: exit 1.
 *
 * Under sanitizers (GOCC_TEST_SANITIZED) the concurrency and the message
 * counts are scaled down; the duration is not.
 */
#define _GNU_SOURCE 1 /* nanosleep, getopt, sysconf in strict C11 */

#include <gocc.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SOAK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SOAK_TSAN 1
#endif
#if defined(SOAK_ASAN) || defined(SOAK_TSAN)
#define SOAK_SANITIZER_HEAP 1
#endif
#if defined(SOAK_SANITIZER_HEAP)
/* The sanitizers' allocator statistics (sanitizer/allocator_interface.h,
 * which not every compiler ships). */
size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#include <malloc.h>
#define SOAK_MALLINFO2 1
#endif

/* ------------------------------------------------------------------------ */
/* scale, time bounds */

#ifdef GOCC_TEST_SANITIZED
#define SAN_DIV 4u
#define SAFETY_NS (120 * GOCC_SECOND)
#else
#define SAN_DIV 1u
#define SAFETY_NS (60 * GOCC_SECOND)
#endif

/* A message count scaled for the build. */
static uint32_t sc(uint32_t n) { return n / SAN_DIV ? n / SAN_DIV : 1; }
/* A number of concurrent tasks scaled for the build. */
static int wide(int n) { return SAN_DIV > 1 ? (n + 1) / 2 : n; }

/* ------------------------------------------------------------------------ */
/* kinds and global tallies */

enum kind {
    K_PIPE,
    K_MERGE,
    K_SELECT,
    K_GROUP,
    K_WPOOL,
    K_OPOOL,
    K_TIMER,
    K_CANCEL,
    K_PUBSUB,
    K_RATE,
    K_SNAP,
    K_FDECHO,
    K_COUNT
};

static const char *const kind_name[K_COUNT] = {
    "pipeline", "merge",  "select", "group",     "workpool", "objpool",
    "timer",    "cancel", "pubsub", "ratelimit", "snapshot", "fdecho",
};

static _Atomic uint64_t g_ops[K_COUNT];    /* operations done */
static _Atomic uint64_t g_rounds[K_COUNT]; /* rounds finished */
static _Atomic uint64_t g_lost[K_COUNT];   /* messages lost */
static _Atomic uint64_t g_dup[K_COUNT];    /* messages received twice */
static _Atomic uint64_t g_fail;            /* any other failed check */
static int64_t g_end;                      /* no round starts after this */

static void add_ops(enum kind k, uint64_t n) {
    atomic_fetch_add_explicit(&g_ops[k], n, memory_order_relaxed);
}

/* Record a failed check (the first 40 are printed). */
static void fail(enum kind k, const char *fmt, ...) {
    uint64_t n = atomic_fetch_add(&g_fail, 1);
    if (n >= 40) return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "soak: FAIL %s: %s\n", kind_name[k], buf);
}

/* A hang: say what, dump every task, exit 3. */
static void hang(enum kind k, const char *what) {
    fprintf(stderr, "soak: HANG %s: %s did not finish within %lld s\n", kind_name[k], what,
            (long long)(SAFETY_NS / GOCC_SECOND));
    gocc_dump(STDERR_FILENO);
    fflush(NULL);
    _exit(3);
}

/* Out of memory or no thread where the soak cannot go on: exit 2. */
static void fatal(enum kind k, const char *what) {
    fprintf(stderr, "soak: FATAL %s: %s (errno %d)\n", kind_name[k], what, errno);
    fflush(NULL);
    _exit(2);
}

/* ------------------------------------------------------------------------ */
/* small helpers */

static _Atomic uint64_t g_seed = 0x5eed;
static _Thread_local uint64_t rng;

/* [0, n): a per-thread xorshift, seeded from -S and a thread counter. */
static uint32_t rnd(uint32_t n) {
    if (rng == 0) {
        rng = atomic_fetch_add(&g_seed, 0x9e3779b97f4a7c15ull) | 1;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static void *xcalloc(enum kind k, size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p == NULL) fatal(k, "calloc");
    return p;
}

static gocc_chan_t *xchan(enum kind k, size_t elem, size_t cap) {
    gocc_chan_t *c = gocc_chan_new(elem, cap);
    if (c == NULL) fatal(k, "gocc_chan_new");
    return c;
}

static gocc_ctx_t *xctx(enum kind k, gocc_ctx_t *c) {
    if (c == NULL) fatal(k, "context constructor");
    return c;
}

static void ctx_end(gocc_ctx_t *c) {
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
}

static const size_t chan_caps[3] = {0, 1, 16};

/* Start fn(ctx, arg) as a task counted in wg (the task calls
 * gocc_waitgroup_done(wg) as its very last access to anything shared). */
static void spawn(enum kind k, gocc_waitgroup_t *wg, gocc_fn fn, gocc_ctx_t *ctx, void *arg) {
    gocc_waitgroup_add(wg, 1);
    int rc = gocc_go(fn, ctx, arg);
    if (rc != 0) {
        gocc_waitgroup_done(wg);
        fail(k, "gocc_go: %s", gocc_strerror(rc));
    }
}

/* Wait for wg with the safety bound; a timeout is a hang. */
static void wait_all(enum kind k, gocc_waitgroup_t *wg, const char *what) {
    gocc_ctx_t *safety = xctx(k, gocc_ctx_with_timeout(NULL, SAFETY_NS));
    int rc = gocc_waitgroup_wait(wg, safety);
    ctx_end(safety);
    if (rc == GOCC_EDEADLINE) hang(k, what);
    if (rc != 0) fail(k, "waitgroup wait (%s): %s", what, gocc_strerror(rc));
}

/* Poll (gocc_sleep) until *v >= want; a timeout is a hang. */
static void wait_at_least(enum kind k, _Atomic uint64_t *v, uint64_t want, const char *what) {
    int64_t end = gocc_now() + SAFETY_NS;
    while (atomic_load(v) < want) {
        if (gocc_now() > end) hang(k, what);
        gocc_sleep(100 * GOCC_MICROSECOND, NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* messages and the tracker: no loss, no duplicate, no phantom */

typedef struct msg {
    uint32_t producer, seq;
    uint32_t check; /* msg_check(producer, seq): a torn or mixed copy shows */
    uint32_t hops;  /* pipeline stages passed */
} msg_t;

static uint32_t msg_check(uint32_t p, uint32_t s) {
    uint32_t x = p * 0x9e3779b1u ^ (s + 1) * 0x85ebca6bu;
    x ^= x >> 15;
    return x * 0xc2b2ae35u;
}

static msg_t msg_make(uint32_t p, uint32_t s) {
    return (msg_t){.producer = p, .seq = s, .check = msg_check(p, s), .hops = 0};
}

/* One flow of messages: ids (producer < producers, seq < per). sent[i] is
 * set when the send (or submit) of message i was accepted, seen[i] when a
 * sink got it. At the end: seen twice = duplicate, sent but not seen =
 * lost, seen but never accepted = phantom (a failure). */
typedef struct tracker {
    enum kind kind;
    uint32_t producers, per;
    _Atomic uint8_t *sent, *seen;
} tracker_t;

static void tracker_init(tracker_t *t, enum kind k, uint32_t producers, uint32_t per) {
    t->kind = k;
    t->producers = producers;
    t->per = per;
    t->sent = xcalloc(k, (size_t)producers * per, 1);
    t->seen = xcalloc(k, (size_t)producers * per, 1);
}

static bool tracker_valid(tracker_t *t, const msg_t *m) {
    if (m->producer >= t->producers || m->seq >= t->per ||
        m->check != msg_check(m->producer, m->seq)) {
        fail(t->kind,
             "corrupt message (producer %" PRIu32 ", seq %" PRIu32 ", check %08" PRIx32 ")",
             m->producer, m->seq, m->check);
        return false;
    }
    return true;
}

static void tracker_sent(tracker_t *t, const msg_t *m) {
    if (tracker_valid(t, m))
        atomic_store_explicit(&t->sent[(size_t)m->producer * t->per + m->seq], 1,
                              memory_order_relaxed);
}

static void tracker_seen(tracker_t *t, const msg_t *m) {
    if (!tracker_valid(t, m)) return;
    if (atomic_exchange_explicit(&t->seen[(size_t)m->producer * t->per + m->seq], 1,
                                 memory_order_relaxed) != 0) {
        atomic_fetch_add(&g_dup[t->kind], 1);
        fail(t->kind, "duplicate (producer %" PRIu32 ", seq %" PRIu32 ")", m->producer, m->seq);
    }
}

/* Tally and free. Up to @p may_lose unseen messages are allowed (a
 * cancelled merge, a forced pool shutdown); more count as lost. Returns
 * the number unseen. Call only when every producer and sink is done. */
static uint64_t tracker_finish(tracker_t *t, uint64_t may_lose) {
    uint64_t unseen = 0, phantom = 0;
    for (size_t i = 0; i < (size_t)t->producers * t->per; i++) {
        bool sent = atomic_load_explicit(&t->sent[i], memory_order_relaxed);
        bool seen = atomic_load_explicit(&t->seen[i], memory_order_relaxed);
        if (sent && !seen) unseen++;
        if (seen && !sent) phantom++;
    }
    if (unseen > may_lose) {
        atomic_fetch_add(&g_lost[t->kind], unseen - may_lose);
        fail(t->kind, "%" PRIu64 " messages lost (%" PRIu64 " allowed)", unseen, may_lose);
    }
    if (phantom) fail(t->kind, "%" PRIu64 " messages received that were never sent", phantom);
    free(t->sent);
    free(t->seen);
    return unseen;
}

/* ------------------------------------------------------------------------ */
/* pipeline: producers -> stages -> sinks, shut down by close */

#define PIPE_MAX_STAGES 3
#define PIPE_MAX_WORKERS 3
#define PIPE_MAX_TASKS (2 + PIPE_MAX_STAGES * PIPE_MAX_WORKERS + 2)

typedef struct pipe_round pipe_round;
typedef struct pipe_arg {
    pipe_round *r;
    int stage;
    uint32_t id;
} pipe_arg;

struct pipe_round {
    tracker_t tr;
    int nstages;
    gocc_chan_t *ch[PIPE_MAX_STAGES + 1];     /* ch[s] feeds stage s; ch[nstages] the sinks */
    _Atomic int writers[PIPE_MAX_STAGES + 1]; /* the last writer of ch[i] closes it */
    pipe_arg args[PIPE_MAX_TASKS];
    gocc_waitgroup_t wg;
};

static void pipe_writer_done(pipe_round *r, int i) {
    if (atomic_fetch_sub(&r->writers[i], 1) == 1) {
        int rc = gocc_chan_close(r->ch[i]);
        if (rc != 0) fail(K_PIPE, "close: %s", gocc_strerror(rc));
    }
}

static int pipe_producer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_arg *a = arg;
    pipe_round *r = a->r;
    for (uint32_t s = 0; s < r->tr.per; s++) {
        msg_t m = msg_make(a->id, s);
        int rc = gocc_chan_send(r->ch[0], &m, NULL);
        if (rc != 0) {
            fail(K_PIPE, "producer send: %s", gocc_strerror(rc));
            break;
        }
        tracker_sent(&r->tr, &m);
    }
    pipe_writer_done(r, 0);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int pipe_stage(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_arg *a = arg;
    pipe_round *r = a->r;
    int s = a->stage, rc;
    msg_t m;
    while ((rc = gocc_chan_recv(r->ch[s], &m, NULL)) == 0) {
        m.hops++;
        if ((rc = gocc_chan_send(r->ch[s + 1], &m, NULL)) != 0) {
            fail(K_PIPE, "stage %d send: %s", s, gocc_strerror(rc));
            break;
        }
    }
    if (rc != GOCC_ECLOSED) fail(K_PIPE, "stage %d recv: %s", s, gocc_strerror(rc));
    pipe_writer_done(r, s + 1);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int pipe_sink(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pipe_arg *a = arg;
    pipe_round *r = a->r;
    uint64_t n = 0;
    msg_t m;
    int rc;
    while ((rc = gocc_chan_recv(r->ch[r->nstages], &m, NULL)) == 0) {
        if (m.hops != (uint32_t)r->nstages)
            fail(K_PIPE, "message passed %" PRIu32 " of %d stages", m.hops, r->nstages);
        tracker_seen(&r->tr, &m);
        n++;
    }
    if (rc != GOCC_ECLOSED) fail(K_PIPE, "sink recv: %s", gocc_strerror(rc));
    add_ops(K_PIPE, n);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_pipeline(void) {
    pipe_round *r = xcalloc(K_PIPE, 1, sizeof *r);
    int nprod = 1 + (int)rnd(2), nsink = 1 + (int)rnd(2), t = 0;
    r->nstages = 1 + (int)rnd(PIPE_MAX_STAGES);
    int workers[PIPE_MAX_STAGES];
    for (int s = 0; s < r->nstages; s++)
        workers[s] = 1 + (int)rnd((uint32_t)wide(PIPE_MAX_WORKERS));
    tracker_init(&r->tr, K_PIPE, (uint32_t)nprod, sc(2000));
    for (int i = 0; i <= r->nstages; i++) {
        r->ch[i] = xchan(K_PIPE, sizeof(msg_t), chan_caps[rnd(3)]);
        atomic_init(&r->writers[i], i == 0 ? nprod : workers[i - 1]);
    }
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    for (int p = 0; p < nprod; p++) {
        r->args[t] = (pipe_arg){r, 0, (uint32_t)p};
        spawn(K_PIPE, &r->wg, pipe_producer, NULL, &r->args[t++]);
    }
    for (int s = 0; s < r->nstages; s++)
        for (int w = 0; w < workers[s]; w++) {
            r->args[t] = (pipe_arg){r, s, 0};
            spawn(K_PIPE, &r->wg, pipe_stage, NULL, &r->args[t++]);
        }
    for (int k = 0; k < nsink; k++) {
        r->args[t] = (pipe_arg){r, 0, 0};
        spawn(K_PIPE, &r->wg, pipe_sink, NULL, &r->args[t++]);
    }
    wait_all(K_PIPE, &r->wg, "pipeline round");
    tracker_finish(&r->tr, 0);
    for (int i = 0; i <= r->nstages; i++) gocc_chan_release(r->ch[i]);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* merge: producers -> inputs -> gocc_chan_merge -> one consumer */

#define MERGE_MAX 5

typedef struct merge_round merge_round;
typedef struct merge_arg {
    merge_round *r;
    uint32_t id;
} merge_arg;

struct merge_round {
    tracker_t tr;
    int n;
    gocc_chan_t *in[MERGE_MAX], *out;
    gocc_ctx_t *ctx; /* NULL, or the context a cancelled round cancels */
    merge_arg args[MERGE_MAX];
    gocc_waitgroup_t wg;
};

static int merge_producer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    merge_arg *a = arg;
    merge_round *r = a->r;
    for (uint32_t s = 0; s < r->tr.per; s++) {
        msg_t m = msg_make(a->id, s);
        int rc = gocc_chan_send(r->in[a->id], &m, r->ctx);
        if (rc != 0) {
            if (r->ctx == NULL || rc != gocc_ctx_err(r->ctx))
                fail(K_MERGE, "producer send: %s", gocc_strerror(rc));
            break;
        }
        tracker_sent(&r->tr, &m);
    }
    gocc_chan_close(r->in[a->id]);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* A value out of the merge (or left in an input): each input's values in
 * increasing order. */
static void merge_seen(merge_round *r, uint32_t *last, const msg_t *m) {
    if (!tracker_valid(&r->tr, m)) return;
    if (last[m->producer] != UINT32_MAX && m->seq <= last[m->producer])
        fail(K_MERGE, "input %" PRIu32 " out of order: %" PRIu32 " after %" PRIu32, m->producer,
             m->seq, last[m->producer]);
    last[m->producer] = m->seq;
    tracker_seen(&r->tr, m);
}

static void round_merge(void) {
    merge_round *r = xcalloc(K_MERGE, 1, sizeof *r);
    r->n = 2 + (int)rnd(MERGE_MAX - 1);
    bool cancel = rnd(4) == 0;
    tracker_init(&r->tr, K_MERGE, (uint32_t)r->n, sc(1500));
    for (int i = 0; i < r->n; i++) r->in[i] = xchan(K_MERGE, sizeof(msg_t), chan_caps[rnd(3)]);
    r->out = xchan(K_MERGE, sizeof(msg_t), chan_caps[rnd(3)]);
    r->ctx = cancel ? xctx(K_MERGE, gocc_ctx_with_cancel(NULL)) : NULL;
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    int rc = gocc_chan_merge(r->in, (size_t)r->n, r->out, r->ctx);
    if (rc != 0) fatal(K_MERGE, "gocc_chan_merge");
    for (int i = 0; i < r->n; i++) {
        r->args[i] = (merge_arg){r, (uint32_t)i};
        spawn(K_MERGE, &r->wg, merge_producer, NULL, &r->args[i]);
    }
    uint32_t last[MERGE_MAX];
    for (int i = 0; i < MERGE_MAX; i++) last[i] = UINT32_MAX;
    uint64_t got = 0, cancel_at = 1 + rnd((uint32_t)r->n * r->tr.per / 2);
    gocc_ctx_t *safety = xctx(K_MERGE, gocc_ctx_with_timeout(NULL, SAFETY_NS));
    msg_t m;
    while ((rc = gocc_chan_recv(r->out, &m, safety)) == 0) {
        merge_seen(r, last, &m);
        if (cancel && ++got == cancel_at) gocc_ctx_cancel(r->ctx);
    }
    if (rc == GOCC_EDEADLINE) hang(K_MERGE, "merge output");
    if (rc != GOCC_ECLOSED) fail(K_MERGE, "out recv: %s", gocc_strerror(rc));
    ctx_end(safety);
    wait_all(K_MERGE, &r->wg, "merge producers");
    uint64_t may_lose = 0;
    if (cancel) {
        /* Values the forwarders never took stay in the inputs; each
         * forwarder may have dropped the one it held. */
        gocc_ctx_cancel(r->ctx);
        for (int i = 0; i < r->n; i++)
            while (gocc_chan_try_recv(r->in[i], &m) == 0) merge_seen(r, last, &m);
        may_lose = (uint64_t)r->n;
        ctx_end(r->ctx);
    }
    uint64_t unseen = tracker_finish(&r->tr, may_lose);
    add_ops(K_MERGE, (uint64_t)r->n * r->tr.per - unseen);
    for (int i = 0; i < r->n; i++) gocc_chan_release(r->in[i]);
    gocc_chan_release(r->out);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* select: producers -> dispatcher (select RECV + timer) -> select SEND */

#define SEL_MAX_IN 4

typedef struct sel_round sel_round;
typedef struct sel_arg {
    sel_round *r;
    uint32_t id;
} sel_arg;

struct sel_round {
    tracker_t tr;
    int nin;
    gocc_chan_t *in[SEL_MAX_IN], *out[2];
    sel_arg args[SEL_MAX_IN + 3];
    _Atomic uint64_t timeouts;
    gocc_waitgroup_t wg;
};

/* Totals over every round, printed in the summary. */
static _Atomic uint64_t g_fe_bytes;    /* bytes read back, each one checked */
static _Atomic uint64_t g_fe_timeouts; /* reads whose deadline came first */

static int sel_producer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sel_arg *a = arg;
    sel_round *r = a->r;
    for (uint32_t s = 0; s < r->tr.per; s++) {
        msg_t m = msg_make(a->id, s);
        int rc = gocc_chan_send(r->in[a->id], &m, NULL);
        if (rc != 0) {
            fail(K_SELECT, "producer send: %s", gocc_strerror(rc));
            break;
        }
        tracker_sent(&r->tr, &m);
        if (s % 128 == 127) gocc_sleep(rnd(300) * GOCC_MICROSECOND, NULL); /* idle gaps */
    }
    gocc_chan_close(r->in[a->id]);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int sel_dispatcher(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sel_arg *a = arg;
    sel_round *r = a->r;
    gocc_timer_t *timer = gocc_timer_new(GOCC_MILLISECOND);
    if (timer == NULL) fatal(K_SELECT, "gocc_timer_new");
    gocc_case_t cases[SEL_MAX_IN + 1];
    msg_t m;
    int64_t tick;
    for (int i = 0; i < r->nin; i++)
        cases[i] = (gocc_case_t){.ch = r->in[i], .dir = GOCC_RECV, .elem = &m};
    cases[r->nin] = (gocc_case_t){.ch = gocc_timer_chan(timer), .dir = GOCC_RECV, .elem = &tick};
    int open = r->nin;
    uint64_t n = 0;
    while (open > 0) {
        int i = gocc_select(cases, (size_t)r->nin + 1, NULL);
        if (i < 0) {
            fail(K_SELECT, "select recv: %s", gocc_strerror(i));
            break;
        }
        if (i == r->nin) { /* nothing arrived for a while */
            atomic_fetch_add(&r->timeouts, 1);
            gocc_timer_reset(timer, GOCC_MILLISECOND);
            continue;
        }
        if (!cases[i].ok) { /* closed: Go's "set the case to nil" */
            cases[i].ch = NULL;
            open--;
            continue;
        }
        gocc_case_t out[2] = {{.ch = r->out[0], .dir = GOCC_SEND, .elem = &m},
                              {.ch = r->out[1], .dir = GOCC_SEND, .elem = &m}};
        for (;;) {
            gocc_ctx_t *dl = xctx(K_SELECT, gocc_ctx_with_timeout(NULL, 5 * GOCC_MILLISECOND));
            int j = gocc_select(out, 2, dl);
            ctx_end(dl);
            if (j >= 0) {
                if (!out[j].ok) fail(K_SELECT, "send case on an open channel not ok");
                break;
            }
            if (j != GOCC_EDEADLINE) {
                fail(K_SELECT, "select send: %s", gocc_strerror(j));
                break;
            }
            atomic_fetch_add(&r->timeouts, 1); /* no effect: send it again */
        }
        n++;
        gocc_timer_reset(timer, GOCC_MILLISECOND); /* a quiet millisecond is a timeout */
    }
    gocc_timer_free(timer);
    gocc_chan_close(r->out[0]);
    gocc_chan_close(r->out[1]);
    add_ops(K_SELECT, n);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int sel_sink(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sel_arg *a = arg;
    sel_round *r = a->r;
    msg_t m;
    int rc;
    uint32_t k = 0;
    while ((rc = gocc_chan_recv(r->out[a->id], &m, NULL)) == 0) {
        tracker_seen(&r->tr, &m);
        if (++k % 256 == 0) gocc_sleep(rnd(200) * GOCC_MICROSECOND, NULL); /* a slow sink */
    }
    if (rc != GOCC_ECLOSED) fail(K_SELECT, "sink recv: %s", gocc_strerror(rc));
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_select(void) {
    sel_round *r = xcalloc(K_SELECT, 1, sizeof *r);
    r->nin = 2 + (int)rnd(SEL_MAX_IN - 1);
    tracker_init(&r->tr, K_SELECT, (uint32_t)r->nin, sc(600));
    for (int i = 0; i < r->nin; i++) r->in[i] = xchan(K_SELECT, sizeof(msg_t), chan_caps[rnd(3)]);
    for (int i = 0; i < 2; i++) r->out[i] = xchan(K_SELECT, sizeof(msg_t), chan_caps[rnd(3)]);
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    int t = 0;
    for (int i = 0; i < r->nin; i++) {
        r->args[t] = (sel_arg){r, (uint32_t)i};
        spawn(K_SELECT, &r->wg, sel_producer, NULL, &r->args[t++]);
    }
    r->args[t] = (sel_arg){r, 0};
    spawn(K_SELECT, &r->wg, sel_dispatcher, NULL, &r->args[t++]);
    for (uint32_t i = 0; i < 2; i++) {
        r->args[t] = (sel_arg){r, i};
        spawn(K_SELECT, &r->wg, sel_sink, NULL, &r->args[t++]);
    }
    wait_all(K_SELECT, &r->wg, "select round");
    tracker_finish(&r->tr, 0);
    for (int i = 0; i < r->nin; i++) gocc_chan_release(r->in[i]);
    for (int i = 0; i < 2; i++) gocc_chan_release(r->out[i]);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* error groups: limits, try_go, failing tasks, parents that time out */

#define GRP_MAX 64

typedef struct grp_round grp_round;
typedef struct grp_arg {
    grp_round *r;
    int id;
} grp_arg;

struct grp_round {
    int fail_mod; /* task id % fail_mod == 0 fails; 0: none fails */
    _Atomic int ran;
    _Atomic int codes[GRP_MAX]; /* what each task returned */
    grp_arg args[GRP_MAX];
};

static int grp_task(gocc_ctx_t *ctx, void *arg) {
    grp_arg *a = arg;
    grp_round *r = a->r;
    atomic_fetch_add(&r->ran, 1);
    int rc = gocc_sleep(rnd(100) * GOCC_MICROSECOND, ctx);
    if (rc == 0 && r->fail_mod && a->id % r->fail_mod == 0) rc = -(1000 + a->id);
    atomic_store(&r->codes[a->id], rc);
    return rc;
}

static void round_group(void) {
    grp_round *r = xcalloc(K_GROUP, 1, sizeof *r);
    static const int limits[4] = {-1, 1, 2, 4};
    r->fail_mod = rnd(3) == 0 ? 0 : 5 + (int)rnd(20);
    gocc_ctx_t *parent = NULL;
    if (rnd(4) == 0)
        parent = xctx(K_GROUP, gocc_ctx_with_timeout(NULL, rnd(2000) * GOCC_MICROSECOND));
    gocc_group_t *g = gocc_group_new(parent);
    if (g == NULL) fatal(K_GROUP, "gocc_group_new");
    int rc = gocc_group_set_limit(g, limits[rnd(4)]);
    if (rc != 0) fail(K_GROUP, "set_limit: %s", gocc_strerror(rc));
    int n = (int)(sc(GRP_MAX * 2) < GRP_MAX ? sc(GRP_MAX * 2) : GRP_MAX), started = 0;
    for (int id = 0; id < n; id++) {
        r->args[id] = (grp_arg){r, id};
        bool try = rnd(4) == 0;
        rc = try ? gocc_group_try_go(g, grp_task, &r->args[id])
                 : gocc_group_go(g, grp_task, &r->args[id]);
        if (rc == 0) {
            started++;
        } else if (try && rc == GOCC_EAGAIN) {
            /* at the limit: shed */
        } else if (parent != NULL && rc == gocc_ctx_err(parent)) {
            break; /* the parent timed out while go waited for a slot: nothing started */
        } else {
            fail(K_GROUP, "%s: %s", try ? "try_go" : "go", gocc_strerror(rc));
        }
    }
    int w = gocc_group_wait(g);
    if (atomic_load(&r->ran) != started)
        fail(K_GROUP, "%d tasks started, %d ran", started, atomic_load(&r->ran));
    bool any = false, member = false;
    for (int id = 0; id < n; id++) {
        int c = atomic_load(&r->codes[id]);
        if (c != 0) any = true;
        if (c != 0 && c == w) member = true;
    }
    if (any && !member) fail(K_GROUP, "wait returned %d, which no task returned", w);
    if (!any && w != 0) fail(K_GROUP, "wait returned %d, but no task failed", w);
    if (gocc_ctx_err(gocc_group_ctx(g)) == 0) fail(K_GROUP, "group context not done after wait");
    gocc_group_free(g);
    if (parent) ctx_end(parent);
    add_ops(K_GROUP, (uint64_t)started);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* worker pools: blocking and shedding submits, graceful or forced shutdown */

typedef struct wp_round wp_round;
typedef struct wp_job {
    wp_round *r;
    msg_t m;
} wp_job;
typedef struct wp_arg {
    wp_round *r;
    uint32_t id;
    bool shed; /* try_submit (shedding) instead of submit (backpressure) */
} wp_arg;

struct wp_round {
    tracker_t tr;
    gocc_workpool_t *p;
    wp_job *jobs;
    wp_arg args[4];
    _Atomic uint64_t accepted, shed, executed, failed, on_error;
    gocc_waitgroup_t wg;
};

static int wp_job_fn(gocc_ctx_t *ctx, void *arg) {
    wp_job *j = arg;
    wp_round *r = j->r;
    tracker_seen(&r->tr, &j->m);
    atomic_fetch_add(&r->executed, 1);
    if (j->m.seq % 8 == 0) gocc_sleep(rnd(50) * GOCC_MICROSECOND, ctx);
    if (j->m.seq % 13 == 0) {
        atomic_fetch_add(&r->failed, 1);
        return -1;
    }
    return 0;
}

static void wp_on_error(void *ud, int err, gocc_fn fn, void *arg) {
    (void)err;
    (void)fn;
    (void)arg;
    atomic_fetch_add(&((wp_round *)ud)->on_error, 1);
}

static int wp_submitter(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    wp_arg *a = arg;
    wp_round *r = a->r;
    for (uint32_t s = 0; s < r->tr.per; s++) {
        wp_job *j = &r->jobs[(size_t)a->id * r->tr.per + s];
        int rc = a->shed ? gocc_workpool_try_submit(r->p, wp_job_fn, j)
                         : gocc_workpool_submit(r->p, wp_job_fn, j, NULL);
        if (rc == 0) {
            tracker_sent(&r->tr, &j->m);
            atomic_fetch_add(&r->accepted, 1);
        } else if (a->shed && rc == GOCC_EAGAIN) {
            atomic_fetch_add(&r->shed, 1);
            if (s % 16 == 0) gocc_sleep(20 * GOCC_MICROSECOND, NULL);
        } else if (rc == GOCC_ESHUTDOWN) {
            break; /* a forced shutdown came first */
        } else {
            fail(K_WPOOL, "submit: %s", gocc_strerror(rc));
            break;
        }
    }
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_workpool(void) {
    wp_round *r = xcalloc(K_WPOOL, 1, sizeof *r);
    int nsub = 2 + (int)rnd((uint32_t)wide(3));
    bool forced = rnd(4) == 0;
    tracker_init(&r->tr, K_WPOOL, (uint32_t)nsub, sc(1000));
    r->jobs = xcalloc(K_WPOOL, (size_t)nsub * r->tr.per, sizeof(wp_job));
    for (uint32_t p = 0; p < (uint32_t)nsub; p++)
        for (uint32_t s = 0; s < r->tr.per; s++)
            r->jobs[(size_t)p * r->tr.per + s] = (wp_job){r, msg_make(p, s)};
    size_t qcap = chan_caps[rnd(3)];
    bool adaptive = rnd(2);
    if (!adaptive) {
        r->p = gocc_workpool_new(1 + rnd((uint32_t)wide(4)), qcap, NULL);
    } else {
        gocc_workpool_options_t o = {.min_workers = rnd(2),
                                     .max_workers = 1 + rnd((uint32_t)wide(4)),
                                     .queue_cap = qcap,
                                     .idle_timeout_ns = (1 + rnd(3)) * GOCC_MILLISECOND,
                                     .on_error = wp_on_error,
                                     .ud = r};
        if (o.max_workers < o.min_workers) o.max_workers = o.min_workers;
        r->p = gocc_workpool_new_opts(&o, NULL);
    }
    if (r->p == NULL) fatal(K_WPOOL, "gocc_workpool_new");
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    for (int i = 0; i < nsub; i++) {
        r->args[i] = (wp_arg){r, (uint32_t)i, i % 2 == 1};
        spawn(K_WPOOL, &r->wg, wp_submitter, NULL, &r->args[i]);
    }
    int rc;
    if (forced) {
        /* Shut down with a context already done while submitters run. */
        wait_at_least(K_WPOOL, &r->accepted, r->tr.per / 4, "workpool: first accepts");
        gocc_ctx_t *done = xctx(K_WPOOL, gocc_ctx_with_cancel(NULL));
        gocc_ctx_cancel(done);
        rc = gocc_workpool_shutdown(r->p, done);
        gocc_ctx_release(done);
        if (rc != GOCC_ECANCELED) fail(K_WPOOL, "forced shutdown returned %s", gocc_strerror(rc));
        wait_all(K_WPOOL, &r->wg, "workpool submitters");
    } else {
        wait_all(K_WPOOL, &r->wg, "workpool submitters");
        gocc_ctx_t *safety = xctx(K_WPOOL, gocc_ctx_with_timeout(NULL, SAFETY_NS));
        rc = gocc_workpool_shutdown(r->p, safety);
        ctx_end(safety);
        if (rc == GOCC_EDEADLINE) hang(K_WPOOL, "workpool shutdown");
        if (rc != 0) fail(K_WPOOL, "shutdown: %s", gocc_strerror(rc));
    }
    gocc_workpool_stats_t st;
    gocc_workpool_stats(r->p, &st);
    uint64_t acc = atomic_load(&r->accepted), exe = atomic_load(&r->executed);
    if (st.submitted != acc)
        fail(K_WPOOL, "stats.submitted %" PRIu64 ", accepted %" PRIu64, st.submitted, acc);
    if (st.rejected != atomic_load(&r->shed))
        fail(K_WPOOL, "stats.rejected %" PRIu64 ", shed %" PRIu64, st.rejected,
             (uint64_t)atomic_load(&r->shed));
    if (st.queued || st.running || st.workers)
        fail(K_WPOOL, "after shutdown: queued %zu running %zu workers %zu", st.queued, st.running,
             st.workers);
    if (st.completed + st.failed + st.dropped != st.submitted)
        fail(K_WPOOL,
             "completed %" PRIu64 " + failed %" PRIu64 " + dropped %" PRIu64
             " != submitted %" PRIu64,
             st.completed, st.failed, st.dropped, st.submitted);
    if (st.completed + st.failed != exe)
        fail(K_WPOOL, "%" PRIu64 " jobs ran, stats say %" PRIu64, exe, st.completed + st.failed);
    if (st.failed != atomic_load(&r->failed))
        fail(K_WPOOL, "stats.failed %" PRIu64 ", jobs that failed %" PRIu64, st.failed,
             (uint64_t)atomic_load(&r->failed));
    if (!forced && st.dropped != 0) fail(K_WPOOL, "graceful shutdown dropped %" PRIu64, st.dropped);
    uint64_t unseen = tracker_finish(&r->tr, st.dropped);
    if (unseen != st.dropped)
        fail(K_WPOOL, "%" PRIu64 " accepted jobs never ran, stats.dropped %" PRIu64, unseen,
             st.dropped);
    gocc_workpool_free(r->p);
    /* on_error runs on the worker after the job returned; the pool is shut
     * down, so every call has happened. */
    if (adaptive && atomic_load(&r->on_error) != st.failed)
        fail(K_WPOOL, "on_error called %" PRIu64 " times for %" PRIu64 " failures",
             (uint64_t)atomic_load(&r->on_error), st.failed);
    add_ops(K_WPOOL, exe);
    free(r->jobs);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* object pool: no object handed out twice, every object freed once */

#define OP_LIVE 0x4f424a4c49564531ull /* "OBJLIVE1" */
#define OP_DEAD 0xdeadbeefdeadbeefull

typedef struct op_obj {
    uint64_t magic;
    _Atomic uint32_t owner; /* 0: in the pool; else the task that holds it */
    uint32_t fill;
    uint8_t payload[48];
} op_obj;

typedef struct op_round op_round;
typedef struct op_arg {
    op_round *r;
    uint32_t id;
} op_arg;

struct op_round {
    gocc_pool_t *p;
    _Atomic uint64_t created, freed;
    op_arg args[4];
    gocc_waitgroup_t wg;
};

static void *op_new(void *ud) {
    op_round *r = ud;
    op_obj *o = malloc(sizeof *o);
    if (o == NULL) return NULL;
    o->magic = OP_LIVE;
    atomic_init(&o->owner, 0);
    o->fill = 0;
    atomic_fetch_add(&r->created, 1);
    return o;
}

static void op_free(void *obj, void *ud) {
    op_round *r = ud;
    op_obj *o = obj;
    if (o->magic != OP_LIVE) fail(K_OPOOL, "free_fn: object %p not live (double free?)", obj);
    if (atomic_load(&o->owner) != 0) fail(K_OPOOL, "free_fn: object %p still held", obj);
    o->magic = OP_DEAD;
    free(o);
    atomic_fetch_add(&r->freed, 1);
}

static int op_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    op_arg *a = arg;
    op_round *r = a->r;
    uint32_t me = a->id + 1, iters = sc(2000);
    uint64_t gets = 0;
    op_obj *held[8];
    for (uint32_t it = 0; it < iters; it++) {
        int n = 1 + (int)rnd(8);
        for (int i = 0; i < n; i++) {
            op_obj *o = held[i] = gocc_pool_get(r->p);
            if (o == NULL) fatal(K_OPOOL, "gocc_pool_get");
            gets++;
            if (o->magic != OP_LIVE) fail(K_OPOOL, "get returned a dead object %p", (void *)o);
            uint32_t prev = atomic_exchange(&o->owner, me);
            if (prev != 0)
                fail(K_OPOOL, "object %p handed out twice (held by %u)", (void *)o, prev);
            o->fill = me;
            memset(o->payload, (int)me, sizeof o->payload);
        }
        for (int i = n - 1; i >= 0; i--) {
            op_obj *o = held[i];
            if (o->fill != me || o->payload[sizeof o->payload - 1] != (uint8_t)me)
                fail(K_OPOOL, "object %p written by another task while held", (void *)o);
            atomic_store(&o->owner, 0);
            gocc_pool_put(r->p, o);
        }
        if (it % 500 == 499 && a->id == 0) gocc_pool_trim(r->p);
    }
    add_ops(K_OPOOL, gets);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_objpool(void) {
    op_round *r = xcalloc(K_OPOOL, 1, sizeof *r);
    r->p = gocc_pool_new(op_new, op_free, r);
    if (r->p == NULL) fatal(K_OPOOL, "gocc_pool_new");
    if (rnd(4) == 0) gocc_pool_set_drop_percent(r->p, 10);
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    int n = 2 + (int)rnd((uint32_t)wide(3));
    for (int i = 0; i < n; i++) {
        r->args[i] = (op_arg){r, (uint32_t)i};
        spawn(K_OPOOL, &r->wg, op_task, NULL, &r->args[i]);
    }
    wait_all(K_OPOOL, &r->wg, "object pool round");
    gocc_pool_free(r->p);
    if (atomic_load(&r->created) != atomic_load(&r->freed))
        fail(K_OPOOL, "%" PRIu64 " objects made, %" PRIu64 " freed",
             (uint64_t)atomic_load(&r->created), (uint64_t)atomic_load(&r->freed));
    free(r);
}

/* ------------------------------------------------------------------------ */
/* timers, tickers, sleep, deadline contexts */

typedef struct tm_round {
    uint32_t iters;
    gocc_waitgroup_t wg;
} tm_round;

/* gocc_sleep lasts at least its duration. */
static int tm_sleeper(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tm_round *r = arg;
    for (uint32_t i = 0; i < r->iters; i++) {
        int64_t d = rnd(500) * GOCC_MICROSECOND, t0 = gocc_now();
        int rc = gocc_sleep(d, NULL);
        int64_t took = gocc_now() - t0;
        if (rc != 0) fail(K_TIMER, "sleep: %s", gocc_strerror(rc));
        if (took < d)
            fail(K_TIMER, "sleep(%lld ns) returned after %lld ns", (long long)d, (long long)took);
    }
    add_ops(K_TIMER, r->iters);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* Timers: fire (value >= start + d), stop before the value is received
 * (true, and nothing arrives), reset (fires d2 after the reset). */
static int tm_timers(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tm_round *r = arg;
    gocc_ctx_t *safety = xctx(K_TIMER, gocc_ctx_with_timeout(NULL, SAFETY_NS));
    for (uint32_t i = 0; i < r->iters; i++) {
        int64_t d = rnd(400) * GOCC_MICROSECOND, t0 = gocc_now(), v = 0;
        gocc_timer_t *t = gocc_timer_new(d);
        if (t == NULL) fatal(K_TIMER, "gocc_timer_new");
        int rc;
        switch (rnd(3)) {
        case 0:
            rc = gocc_chan_recv(gocc_timer_chan(t), &v, safety);
            if (rc == GOCC_EDEADLINE) hang(K_TIMER, "timer fire");
            if (rc != 0 || v < t0 + d || gocc_now() < t0 + d)
                fail(K_TIMER, "timer(%lld ns): rc %d, fired %lld ns after start", (long long)d, rc,
                     (long long)(v - t0));
            if (gocc_timer_stop(t)) fail(K_TIMER, "stop after receive returned true");
            break;
        case 1:
            if (rnd(2)) gocc_sleep(rnd(400) * GOCC_MICROSECOND, NULL); /* maybe fired, unreceived */
            if (!gocc_timer_stop(t)) fail(K_TIMER, "stop of an unreceived timer returned false");
            if ((rc = gocc_chan_try_recv(gocc_timer_chan(t), &v)) != GOCC_EAGAIN)
                fail(K_TIMER, "value received after stop (rc %d)", rc);
            break;
        default: {
            int64_t d2 = rnd(400) * GOCC_MICROSECOND;
            if (rnd(2)) gocc_sleep(rnd(400) * GOCC_MICROSECOND, NULL);
            int64_t t1 = gocc_now();
            if (!gocc_timer_reset(t, d2))
                fail(K_TIMER, "reset of an unreceived timer returned false");
            rc = gocc_chan_recv(gocc_timer_chan(t), &v, safety);
            if (rc == GOCC_EDEADLINE) hang(K_TIMER, "timer fire after reset");
            if (rc != 0 || v < t1 + d2)
                fail(K_TIMER, "reset(%lld ns): rc %d, fired %lld ns after reset (stale value?)",
                     (long long)d2, rc, (long long)(v - t1));
            break;
        }
        }
        gocc_timer_free(t);
    }
    ctx_end(safety);
    add_ops(K_TIMER, r->iters);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* Tickers: increasing tick times, reset, stop discards a pending tick. */
static int tm_tickers(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tm_round *r = arg;
    gocc_ctx_t *safety = xctx(K_TIMER, gocc_ctx_with_timeout(NULL, SAFETY_NS));
    uint64_t n = 0;
    for (uint32_t i = 0; i < r->iters / 4 + 1; i++) {
        int64_t last = gocc_now(), v;
        gocc_ticker_t *tk = gocc_ticker_new((200 + rnd(800)) * GOCC_MICROSECOND);
        if (tk == NULL) fatal(K_TIMER, "gocc_ticker_new");
        for (int k = 0; k < 6; k++) {
            if (k == 3 && gocc_ticker_reset(tk, (200 + rnd(800)) * GOCC_MICROSECOND) != 0)
                fail(K_TIMER, "ticker reset failed");
            int rc = gocc_chan_recv(gocc_ticker_chan(tk), &v, safety);
            if (rc == GOCC_EDEADLINE) hang(K_TIMER, "ticker");
            if (rc != 0 || v <= last)
                fail(K_TIMER, "tick %d: rc %d, time %lld after %lld", k, rc, (long long)v,
                     (long long)last);
            last = v;
            n++;
        }
        gocc_sleep(rnd(1000) * GOCC_MICROSECOND, NULL);
        gocc_ticker_stop(tk);
        if (gocc_chan_try_recv(gocc_ticker_chan(tk), &v) != GOCC_EAGAIN)
            fail(K_TIMER, "tick received after stop");
        gocc_ticker_free(tk);
    }
    ctx_end(safety);
    add_ops(K_TIMER, n);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* A deadline context ends a wait on a nil channel, not before the deadline,
 * and its after_func runs exactly once. */
static void tm_after(void *arg) { atomic_fetch_add((_Atomic uint64_t *)arg, 1); }

static int tm_deadlines(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    tm_round *r = arg;
    _Atomic uint64_t fired = 0;
    for (uint32_t i = 0; i < r->iters; i++) {
        int64_t d = rnd(500) * GOCC_MICROSECOND, t0 = gocc_now();
        gocc_ctx_t *c = xctx(K_TIMER, gocc_ctx_with_timeout(NULL, d));
        if (gocc_ctx_after_func(c, tm_after, &fired, NULL) != 0) fail(K_TIMER, "after_func");
        int rc = gocc_chan_recv(NULL, NULL, c);
        int64_t took = gocc_now() - t0;
        if (rc != GOCC_EDEADLINE || took < d)
            fail(K_TIMER, "deadline %lld ns: rc %d after %lld ns", (long long)d, rc,
                 (long long)took);
        ctx_end(c);
    }
    wait_at_least(K_TIMER, &fired, r->iters, "deadline after_funcs");
    /* Let any extra (wrong) run land before the count is read again. */
    gocc_sleep(GOCC_MILLISECOND, NULL);
    if (atomic_load(&fired) != r->iters)
        fail(K_TIMER, "%u deadlines, after_func ran %" PRIu64 " times", r->iters,
             (uint64_t)atomic_load(&fired));
    add_ops(K_TIMER, r->iters);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_timer(void) {
    tm_round *r = xcalloc(K_TIMER, 1, sizeof *r);
    r->iters = sc(64);
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    spawn(K_TIMER, &r->wg, tm_sleeper, NULL, r);
    spawn(K_TIMER, &r->wg, tm_timers, NULL, r);
    spawn(K_TIMER, &r->wg, tm_tickers, NULL, r);
    spawn(K_TIMER, &r->wg, tm_deadlines, NULL, r);
    if (SAN_DIV == 1) spawn(K_TIMER, &r->wg, tm_sleeper, NULL, r);
    wait_all(K_TIMER, &r->wg, "timer round");
    free(r);
}

/* ------------------------------------------------------------------------ */
/* cancellation storms */

#define CS_MAX_NODES 48
#define CS_MAX_TASKS 64
#define CS_OPS 8

typedef struct cs_round cs_round;
typedef struct cs_arg {
    cs_round *r;
    int op;
} cs_arg;

struct cs_round {
    int nnodes;
    gocc_ctx_t *node[CS_MAX_NODES];
    gocc_chan_t *never, *full;
    gocc_sem_t *sem;       /* size 1, held by the driver */
    gocc_waitgroup_t hold; /* count 1 until the end */
    cs_arg args[CS_MAX_TASKS];
    _Atomic uint64_t entered, after_ran;
    gocc_waitgroup_t wg;
};

static int cs_noop(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

/* Block on one operation under a leaf context; whatever cancels it, the
 * call returns exactly the context's error and had no effect. */
static int cs_task(gocc_ctx_t *ctx, void *arg) {
    cs_arg *a = arg;
    cs_round *r = a->r;
    int rc, v = 7;
    atomic_fetch_add(&r->entered, 1);
    switch (a->op) {
    case 0: rc = gocc_chan_recv(r->never, NULL, ctx); break;
    case 1: rc = gocc_chan_send(r->full, &v, ctx); break;
    case 2: {
        gocc_case_t c[3] = {{.ch = r->never, .dir = GOCC_RECV},
                            {.ch = NULL, .dir = GOCC_RECV},
                            {.ch = r->full, .dir = GOCC_SEND, .elem = &v}};
        rc = gocc_select(c, 3, ctx);
        break;
    }
    case 3: rc = gocc_sleep(3600 * GOCC_SECOND, ctx); break;
    case 4:
        rc = gocc_sem_acquire(r->sem, 1, ctx);
        if (rc == 0) gocc_sem_release(r->sem, 1);
        break;
    case 5: rc = gocc_waitgroup_wait(&r->hold, ctx); break;
    case 6: {
        gocc_group_t *g = gocc_group_new(ctx);
        if (g == NULL) fatal(K_CANCEL, "gocc_group_new");
        gocc_group_set_limit(g, 0);
        rc = gocc_group_go(g, cs_noop, NULL);
        gocc_group_free(g);
        break;
    }
    default:
        rc = gocc_chan_recv(NULL, NULL, ctx); /* nil channel */
        break;
    }
    int err = gocc_ctx_err(ctx);
    if (rc == 0 || rc != err)
        fail(K_CANCEL, "op %d returned %s, context error %s", a->op, gocc_strerror(rc),
             gocc_strerror(err));
    add_ops(K_CANCEL, 1);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int cs_canceller(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cs_round *r = arg;
    for (int i = 0; i < r->nnodes / 3; i++) {
        gocc_ctx_t *c = r->node[rnd((uint32_t)r->nnodes)];
        if (rnd(2))
            gocc_ctx_cancel(c);
        else
            gocc_ctx_cancel_cause(c, -(2000 + (int)rnd(100)));
    }
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void cs_after(void *arg) { atomic_fetch_add(&((cs_round *)arg)->after_ran, 1); }

static void round_cancel(void) {
    cs_round *r = xcalloc(K_CANCEL, 1, sizeof *r);
    static const int key = 0;
    int depth = SAN_DIV > 1 ? 2 : 3, fanout = 3;
    /* Build the tree level by level; node 0 is the cancellable root. */
    r->node[0] = xctx(K_CANCEL, gocc_ctx_with_cancel(NULL));
    r->nnodes = 1;
    int level_start = 0, level_end = 1;
    for (int d = 0; d < depth; d++) {
        for (int p = level_start; p < level_end; p++)
            for (int f = 0; f < fanout && r->nnodes < CS_MAX_NODES; f++) {
                gocc_ctx_t *parent = r->node[p], *c;
                uint32_t k = rnd(10);
                if (k < 6)
                    c = gocc_ctx_with_cancel(parent);
                else if (k < 8)
                    c = gocc_ctx_with_timeout(parent, (1 + rnd(20)) * GOCC_MILLISECOND);
                else
                    c = gocc_ctx_with_value(parent, &key, r);
                r->node[r->nnodes++] = xctx(K_CANCEL, c);
            }
        level_start = level_end;
        level_end = r->nnodes;
    }
    r->never = xchan(K_CANCEL, sizeof(int), 0);
    r->full = xchan(K_CANCEL, sizeof(int), 1);
    int seven = 7;
    if (gocc_chan_try_send(r->full, &seven) != 0) fail(K_CANCEL, "filling a channel");
    r->sem = gocc_sem_new(1);
    if (r->sem == NULL || gocc_sem_acquire(r->sem, 1, NULL) != 0) fatal(K_CANCEL, "semaphore");
    r->hold = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    gocc_waitgroup_add(&r->hold, 1);
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;

    /* after_funcs on random nodes, some stopped before the storm. */
    uint64_t want_after = 0;
    for (int i = 0; i < r->nnodes / 2; i++) {
        gocc_after_func_t *h = NULL;
        if (gocc_ctx_after_func(r->node[rnd((uint32_t)r->nnodes)], cs_after, r, &h) != 0) {
            fail(K_CANCEL, "after_func");
            continue;
        }
        want_after += !(rnd(3) == 0 && gocc_ctx_after_func_stop(h));
    }

    /* Tasks under the leaves. */
    int ntasks = 0;
    for (int n = level_start; n < level_end; n++)
        for (int k = 0; k < 1 + (int)rnd(2) && ntasks < CS_MAX_TASKS; k++) {
            r->args[ntasks] = (cs_arg){r, (int)rnd(CS_OPS)};
            spawn(K_CANCEL, &r->wg, cs_task, r->node[n], &r->args[ntasks++]);
        }
    wait_at_least(K_CANCEL, &r->entered, (uint64_t)ntasks, "cancel: tasks reaching their wait");
    gocc_sleep(rnd(2000) * GOCC_MICROSECOND, NULL);

    /* The storm: two cancellers on random nodes, the root at once. */
    spawn(K_CANCEL, &r->wg, cs_canceller, NULL, r);
    spawn(K_CANCEL, &r->wg, cs_canceller, NULL, r);
    if (rnd(2)) gocc_sleep(rnd(200) * GOCC_MICROSECOND, NULL);
    gocc_ctx_cancel(r->node[0]);
    for (int i = 0; i < r->nnodes; i++)
        if (gocc_ctx_err(r->node[i]) == 0)
            fail(K_CANCEL, "node %d not done after the root's cancel", i);
    wait_all(K_CANCEL, &r->wg, "cancel storm");
    wait_at_least(K_CANCEL, &r->after_ran, want_after, "cancel: after_funcs");

    /* No cancelled call had an effect. */
    if (gocc_chan_len(r->full) != 1) fail(K_CANCEL, "a cancelled send was delivered");
    int v = 0;
    if (gocc_chan_try_recv(r->full, &v) != 0 || v != 7)
        fail(K_CANCEL, "the buffered value changed");
    if (gocc_sem_release(r->sem, 1) != 0 || !gocc_sem_try_acquire(r->sem, 1))
        fail(K_CANCEL, "a cancelled acquire kept weight");
    else
        gocc_sem_release(r->sem, 1);
    gocc_waitgroup_done(&r->hold);
    if (atomic_load(&r->after_ran) != want_after)
        fail(K_CANCEL, "after_func ran %" PRIu64 " times, want %" PRIu64,
             (uint64_t)atomic_load(&r->after_ran), want_after);

    gocc_sem_free(r->sem);
    gocc_chan_release(r->never);
    gocc_chan_release(r->full);
    for (int i = r->nnodes - 1; i >= 0; i--) ctx_end(r->node[i]);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* pub/sub: received + dropped == published, per subscriber, in order */

#define PS_MAX_SUBS 4

typedef struct ps_round ps_round;
typedef struct ps_arg {
    ps_round *r;
    int id;
} ps_arg;

struct ps_round {
    gocc_pubsub_t *ps;
    gocc_chan_t *sub[PS_MAX_SUBS];
    _Atomic uint64_t received[PS_MAX_SUBS];
    ps_arg args[PS_MAX_SUBS];
    gocc_waitgroup_t wg;
};

static int ps_subscriber(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    ps_arg *a = arg;
    ps_round *r = a->r;
    msg_t m;
    int64_t last = -1;
    uint64_t n = 0;
    int rc;
    bool slow = a->id % 2 == 1;
    while ((rc = gocc_chan_recv(r->sub[a->id], &m, NULL)) == 0) {
        if (m.check != msg_check(m.producer, m.seq)) fail(K_PUBSUB, "corrupt message");
        if ((int64_t)m.seq <= last) {
            atomic_fetch_add(&g_dup[K_PUBSUB], 1);
            fail(K_PUBSUB, "subscriber %d: seq %" PRIu32 " after %lld", a->id, m.seq,
                 (long long)last);
        }
        last = m.seq;
        n++;
        if (slow && n % 32 == 0) gocc_sleep(rnd(200) * GOCC_MICROSECOND, NULL);
    }
    if (rc != GOCC_ECLOSED) fail(K_PUBSUB, "subscriber recv: %s", gocc_strerror(rc));
    atomic_store(&r->received[a->id], n);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_pubsub(void) {
    ps_round *r = xcalloc(K_PUBSUB, 1, sizeof *r);
    static const size_t bufs[3] = {1, 4, 64};
    int nsub = 2 + (int)rnd(PS_MAX_SUBS - 1);
    uint32_t n = sc(3000);
    r->ps = gocc_pubsub_new(sizeof(msg_t));
    if (r->ps == NULL) fatal(K_PUBSUB, "gocc_pubsub_new");
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    for (int i = 0; i < nsub; i++) {
        r->sub[i] = gocc_pubsub_subscribe(r->ps, bufs[rnd(3)]);
        if (r->sub[i] == NULL) fatal(K_PUBSUB, "gocc_pubsub_subscribe");
        r->args[i] = (ps_arg){r, i};
        spawn(K_PUBSUB, &r->wg, ps_subscriber, NULL, &r->args[i]);
    }
    bool unsub = nsub >= 3;
    uint64_t delivered = 0, drops[PS_MAX_SUBS] = {0}, published_to[PS_MAX_SUBS];
    for (int i = 0; i < nsub; i++) published_to[i] = n;
    for (uint32_t s = 0; s < n; s++) {
        msg_t m = msg_make(0, s);
        int got = gocc_pubsub_publish(r->ps, &m);
        if (got < 0)
            fail(K_PUBSUB, "publish: %s", gocc_strerror(got));
        else
            delivered += (uint64_t)got;
        if (unsub && s == n / 2) {
            drops[0] = gocc_pubsub_dropped(r->ps, r->sub[0]);
            if (gocc_pubsub_unsubscribe(r->ps, r->sub[0]) != 0) fail(K_PUBSUB, "unsubscribe");
            published_to[0] = s + 1;
        }
        if (s % 256 == 255) gocc_sleep(rnd(300) * GOCC_MICROSECOND, NULL);
    }
    for (int i = unsub ? 1 : 0; i < nsub; i++) drops[i] = gocc_pubsub_dropped(r->ps, r->sub[i]);
    if (gocc_pubsub_close(r->ps) != 0) fail(K_PUBSUB, "close");
    wait_all(K_PUBSUB, &r->wg, "pubsub subscribers");
    uint64_t received = 0;
    for (int i = 0; i < nsub; i++) {
        uint64_t got = atomic_load(&r->received[i]);
        received += got;
        if (got + drops[i] < published_to[i]) {
            atomic_fetch_add(&g_lost[K_PUBSUB], published_to[i] - got - drops[i]);
            fail(K_PUBSUB, "subscriber %d: %" PRIu64 " received + %" PRIu64 " dropped < %" PRIu64,
                 i, got, drops[i], published_to[i]);
        } else if (got + drops[i] > published_to[i]) {
            fail(K_PUBSUB, "subscriber %d: %" PRIu64 " received + %" PRIu64 " dropped > %" PRIu64,
                 i, got, drops[i], published_to[i]);
        }
        gocc_chan_release(r->sub[i]);
    }
    if (received != delivered)
        fail(K_PUBSUB, "publish reported %" PRIu64 " deliveries, subscribers got %" PRIu64,
             delivered, received);
    gocc_pubsub_free(r->ps);
    add_ops(K_PUBSUB, received);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* rate limiter: never more than burst + rate * elapsed tokens */

typedef struct rl_round {
    gocc_ratelimit_t *rl;
    int64_t until;
    _Atomic uint64_t granted, timeouts;
    gocc_waitgroup_t wg;
} rl_round;

static int rl_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    rl_round *r = arg;
    uint64_t ops = 0;
    while (gocc_now() < r->until) {
        int64_t n = 1 + rnd(3);
        if (rnd(2)) {
            if (gocc_ratelimit_allow(r->rl, n)) {
                atomic_fetch_add(&r->granted, (uint64_t)n);
                ops++;
            } else {
                gocc_sleep(20 * GOCC_MICROSECOND, NULL);
            }
        } else {
            gocc_ctx_t *c = xctx(K_RATE, gocc_ctx_with_timeout(NULL, rnd(3000) * GOCC_MICROSECOND));
            int rc = gocc_ratelimit_wait(r->rl, n, c);
            if (rc == 0) {
                atomic_fetch_add(&r->granted, (uint64_t)n);
                ops++;
            } else if (rc == GOCC_EDEADLINE) {
                atomic_fetch_add(&r->timeouts, 1);
            } else {
                fail(K_RATE, "wait: %s", gocc_strerror(rc));
            }
            ctx_end(c);
        }
    }
    add_ops(K_RATE, ops);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_ratelimit(void) {
    rl_round *r = xcalloc(K_RATE, 1, sizeof *r);
    double rate = SAN_DIV > 1 ? 5000.0 : 20000.0;
    int64_t burst = 10 + rnd(50);
    int64_t t0 = gocc_now();
    r->rl = gocc_ratelimit_new(rate, burst);
    if (r->rl == NULL) fatal(K_RATE, "gocc_ratelimit_new");
    r->until = t0 + 100 * GOCC_MILLISECOND;
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    int n = 2 + (int)rnd((uint32_t)wide(2));
    for (int i = 0; i < n; i++) spawn(K_RATE, &r->wg, rl_task, NULL, r);
    wait_all(K_RATE, &r->wg, "rate limiter round");
    double elapsed = (double)(gocc_now() - t0) / (double)GOCC_SECOND;
    double bound = (double)burst + rate * elapsed + 1.0;
    uint64_t granted = atomic_load(&r->granted);
    if ((double)granted > bound)
        fail(K_RATE, "%" PRIu64 " tokens granted in %.3f s; at most %.0f allowed", granted, elapsed,
             bound);
    gocc_ratelimit_free(r->rl);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* snapshot: readers never see a freed or older value */

#define SN_LIVE 0x534e41504c495645ull /* "SNAPLIVE" */

typedef struct sn_val {
    uint64_t magic;
    uint64_t version;
} sn_val;

typedef struct sn_round {
    gocc_snapshot_t *s;
    bool cas; /* two compare-and-swap writers, else one storing writer */
    uint32_t iters;
    _Atomic uint64_t made, freed;
    gocc_waitgroup_t wg;
} sn_round;

static sn_val *sn_make(sn_round *r, uint64_t version) {
    sn_val *v = malloc(sizeof *v);
    if (v == NULL) fatal(K_SNAP, "malloc");
    v->magic = SN_LIVE;
    v->version = version;
    atomic_fetch_add(&r->made, 1);
    return v;
}

static void sn_free(void *value, void *ud) {
    sn_round *r = ud;
    sn_val *v = value;
    if (v->magic != SN_LIVE) fail(K_SNAP, "free_fn: value %p freed twice", value);
    v->magic = 0;
    free(v);
    atomic_fetch_add(&r->freed, 1);
}

static int sn_reader(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sn_round *r = arg;
    uint64_t last = 0;
    for (uint32_t i = 0; i < r->iters * 4; i++) {
        gocc_snapshot_ref_t ref;
        sn_val *v = gocc_snapshot_acquire(r->s, &ref);
        if (v == NULL || v->magic != SN_LIVE) {
            fail(K_SNAP, "reader got %s value", v == NULL ? "a NULL" : "a freed");
        } else {
            if (v->version < last)
                fail(K_SNAP, "version went back: %" PRIu64 " after %" PRIu64, v->version, last);
            last = v->version;
            if (i % 64 == 0) gocc_sleep(rnd(50) * GOCC_MICROSECOND, NULL); /* a long borrow */
            if (v->magic != SN_LIVE) fail(K_SNAP, "value freed while borrowed");
        }
        gocc_snapshot_release(&ref);
    }
    add_ops(K_SNAP, r->iters * 4);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static int sn_writer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    sn_round *r = arg;
    for (uint32_t i = 0; i < r->iters; i++) {
        gocc_snapshot_ref_t ref;
        sn_val *cur = gocc_snapshot_acquire(r->s, &ref);
        sn_val *nv = sn_make(r, cur->version + 1);
        if (!r->cas) {
            if (gocc_snapshot_store(r->s, nv) != 0) fail(K_SNAP, "store");
        } else {
            int rc = gocc_snapshot_compare_and_swap(r->s, cur, nv);
            if (rc == 0) { /* lost the race: nv was never stored, still ours */
                nv->magic = 0;
                free(nv);
                atomic_fetch_add(&r->freed, 1);
            } else if (rc != 1) {
                fail(K_SNAP, "compare_and_swap: %s", gocc_strerror(rc));
            }
        }
        gocc_snapshot_release(&ref);
    }
    add_ops(K_SNAP, r->iters);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_snapshot(void) {
    sn_round *r = xcalloc(K_SNAP, 1, sizeof *r);
    r->cas = rnd(2);
    r->iters = sc(1000);
    r->s = gocc_snapshot_new(sn_make(r, 1), sn_free, r);
    if (r->s == NULL) fatal(K_SNAP, "gocc_snapshot_new");
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    int readers = 2 + (int)rnd((uint32_t)wide(3));
    for (int i = 0; i < readers; i++) spawn(K_SNAP, &r->wg, sn_reader, NULL, r);
    spawn(K_SNAP, &r->wg, sn_writer, NULL, r);
    if (r->cas) spawn(K_SNAP, &r->wg, sn_writer, NULL, r);
    wait_all(K_SNAP, &r->wg, "snapshot round");
    gocc_snapshot_free(r->s);
    if (atomic_load(&r->made) != atomic_load(&r->freed))
        fail(K_SNAP, "%" PRIu64 " values made, %" PRIu64 " freed", (uint64_t)atomic_load(&r->made),
             (uint64_t)atomic_load(&r->freed));
    free(r);
}

/* ------------------------------------------------------------------------ */
/* fdecho: counted messages through socketpairs and gocc_fd_* */

#define FE_MAX_PAIRS 4

typedef struct fe_round fe_round;
typedef struct fe_pair {
    fe_round *r;
    uint32_t id;
    gocc_fd_t *a, *b;                    /* a: the writer's and reader's end; b: the echo's */
    _Atomic uint64_t wrote, echoed, got; /* bytes: written to a, echoed by b, read from a */
} fe_pair;

struct fe_round {
    tracker_t tr;
    uint32_t pairs, per;
    fe_pair p[FE_MAX_PAIRS];
    _Atomic uint64_t timeouts;
    gocc_waitgroup_t wg;
};

/* A read on @p f that may time out (a deadline of 0..2 ms, one call in
 * two): a timeout consumed nothing, so it is simply retried. Returns what
 * gocc_fd_read returned otherwise. */
static ssize_t fe_read(fe_round *r, gocc_fd_t *f, void *buf, size_t n) {
    for (;;) {
        gocc_ctx_t *c = NULL;
        if (rnd(2)) c = xctx(K_FDECHO, gocc_ctx_with_timeout(NULL, rnd(2000) * GOCC_MICROSECOND));
        ssize_t got = gocc_fd_read(f, buf, n, c);
        if (c != NULL) ctx_end(c);
        if (got != GOCC_EDEADLINE) return got;
        atomic_fetch_add(&r->timeouts, 1);
    }
}

static int fe_writer(gocc_ctx_t *ctx, void *arg) {
    fe_pair *p = arg;
    fe_round *r = p->r;
    msg_t batch[8];
    for (uint32_t seq = 0; seq < r->per;) {
        uint32_t k = 1 + rnd(8);
        if (k > r->per - seq) k = r->per - seq;
        for (uint32_t i = 0; i < k; i++) batch[i] = msg_make(p->id, seq + i);
        size_t written = 0;
        ssize_t rc = gocc_fd_write(p->a, batch, k * sizeof(msg_t), &written, ctx);
        atomic_fetch_add(&p->wrote, written);
        if (rc != (ssize_t)(k * sizeof(msg_t))) {
            fail(K_FDECHO, "write: %s (%zu of %zu bytes)", gocc_strerror((int)rc), written,
                 k * sizeof(msg_t));
            break;
        }
        for (uint32_t i = 0; i < k; i++) tracker_sent(&r->tr, &batch[i]);
        seq += k;
    }
    if (shutdown(gocc_fd_num(p->a), SHUT_WR) != 0) fail(K_FDECHO, "shutdown: errno %d", errno);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* Writes back what it reads, in reads of random size, until end of file. */
static int fe_echo(gocc_ctx_t *ctx, void *arg) {
    fe_pair *p = arg;
    fe_round *r = p->r;
    char buf[4096];
    for (;;) {
        ssize_t n = fe_read(r, p->b, buf, 1 + rnd(sizeof buf));
        if (n == 0) break;
        if (n < 0) {
            fail(K_FDECHO, "echo read: %s", gocc_strerror((int)n));
            break;
        }
        size_t written = 0;
        ssize_t rc = gocc_fd_write(p->b, buf, (size_t)n, &written, ctx);
        atomic_fetch_add(&p->echoed, written);
        if (rc != n) {
            fail(K_FDECHO, "echo write: %s", gocc_strerror((int)rc));
            break;
        }
    }
    if (shutdown(gocc_fd_num(p->b), SHUT_WR) != 0) fail(K_FDECHO, "shutdown: errno %d", errno);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

/* Reads the echoed stream until end of file, reassembling messages that
 * arrive split; each must be the pair's next one. */
static int fe_reader(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    fe_pair *p = arg;
    fe_round *r = p->r;
    union {
        msg_t m[32];
        char c[32 * sizeof(msg_t)];
    } buf;
    size_t have = 0;
    uint32_t next = 0;
    for (;;) {
        ssize_t n = fe_read(r, p->a, buf.c + have, sizeof buf - have);
        if (n == 0) break;
        if (n < 0) {
            fail(K_FDECHO, "read: %s", gocc_strerror((int)n));
            break;
        }
        atomic_fetch_add(&p->got, (uint64_t)n);
        have += (size_t)n;
        size_t whole = have / sizeof(msg_t);
        for (size_t i = 0; i < whole; i++) {
            msg_t m;
            memcpy(&m, &buf.m[i], sizeof m);
            if (m.producer != p->id || m.seq != next)
                fail(K_FDECHO,
                     "pair %" PRIu32 ": message (%" PRIu32 ", %" PRIu32 ") where (%" PRIu32
                     ", %" PRIu32 ") was next",
                     p->id, m.producer, m.seq, p->id, next);
            tracker_seen(&r->tr, &m);
            next = m.seq + 1;
        }
        add_ops(K_FDECHO, whole);
        memmove(buf.c, buf.c + whole * sizeof(msg_t), have - whole * sizeof(msg_t));
        have -= whole * sizeof(msg_t);
    }
    if (have != 0) fail(K_FDECHO, "pair %" PRIu32 ": %zu stray bytes at the end", p->id, have);
    gocc_waitgroup_done(&r->wg);
    return 0;
}

static void round_fdecho(void) {
    fe_round *r = xcalloc(K_FDECHO, 1, sizeof *r);
    r->pairs = 1 + rnd((uint32_t)wide(FE_MAX_PAIRS));
    r->per = sc(500 + rnd(2000));
    r->wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    tracker_init(&r->tr, K_FDECHO, r->pairs, r->per);
    for (uint32_t i = 0; i < r->pairs; i++) {
        fe_pair *p = &r->p[i];
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            fatal(K_FDECHO, "socketpair");
        p->r = r;
        p->id = i;
        p->a = gocc_fd_open(sv[0]);
        p->b = gocc_fd_open(sv[1]);
        if (p->a == NULL || p->b == NULL) fatal(K_FDECHO, "gocc_fd_open");
    }
    for (uint32_t i = 0; i < r->pairs; i++) {
        spawn(K_FDECHO, &r->wg, fe_echo, NULL, &r->p[i]);
        spawn(K_FDECHO, &r->wg, fe_reader, NULL, &r->p[i]);
        spawn(K_FDECHO, &r->wg, fe_writer, NULL, &r->p[i]);
    }
    wait_all(K_FDECHO, &r->wg, "socketpair echo round");
    uint64_t bytes = (uint64_t)r->per * sizeof(msg_t);
    for (uint32_t i = 0; i < r->pairs; i++) {
        fe_pair *p = &r->p[i];
        uint64_t w = atomic_load(&p->wrote), e = atomic_load(&p->echoed), g = atomic_load(&p->got);
        if (w != bytes || e != bytes || g != bytes)
            fail(K_FDECHO,
                 "pair %" PRIu32 ": %" PRIu64 " bytes written, %" PRIu64 " echoed, %" PRIu64
                 " read back; %" PRIu64 " expected",
                 i, w, e, g, bytes);
        atomic_fetch_add(&g_fe_bytes, g);
        if (gocc_fd_close(p->a) != 0 || gocc_fd_close(p->b) != 0) fail(K_FDECHO, "close");
        gocc_fd_release(p->a);
        gocc_fd_release(p->b);
    }
    atomic_fetch_add(&g_fe_timeouts, atomic_load(&r->timeouts));
    tracker_finish(&r->tr, 0);
    free(r);
}

/* ------------------------------------------------------------------------ */
/* drivers */

static void (*const rounds[K_COUNT])(void) = {
    round_pipeline, round_merge,  round_select, round_group,     round_workpool, round_objpool,
    round_timer,    round_cancel, round_pubsub, round_ratelimit, round_snapshot, round_fdecho,
};

static _Atomic int g_drivers_left;

/* -L: a deliberate leak of this many bytes per round (reachable from
 * g_leaked, so only the plateau checks can see it), to show they fail. */
static size_t g_leak_per_round;
static void *_Atomic g_leaked;

static void leak_some(void) {
    void **p = malloc(g_leak_per_round < sizeof(void *) ? sizeof(void *) : g_leak_per_round);
    if (p == NULL) return;
    memset(p, 1, g_leak_per_round);
    *p = atomic_load(&g_leaked);
    while (!atomic_compare_exchange_weak(&g_leaked, p, (void *)p)) {
    }
}

static int driver(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    enum kind k = (enum kind)(intptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "soak %s", kind_name[k]);
    gocc_task_set_name(name);
    while (gocc_now() < g_end) {
        rounds[k]();
        atomic_fetch_add_explicit(&g_rounds[k], 1, memory_order_relaxed);
        if (g_leak_per_round) leak_some();
    }
    atomic_fetch_sub(&g_drivers_left, 1);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* memory: RSS, its high-water mark, the live heap */

#if defined(SOAK_ASAN)
/* ASan's quarantine (256 MiB by default) keeps freed memory resident until
 * it is full, which takes most of a 30 s run here and would read as RSS
 * growth. 64 MiB still holds every object freed in the last several
 * hundred rounds for use-after-free detection. ASAN_OPTIONS overrides. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=64"; }
#endif

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t hwm_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    if (f == NULL) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Bytes allocated and not freed (0 where the allocator cannot say). */
static uint64_t heap_bytes(void) {
#if defined(SOAK_SANITIZER_HEAP)
    return (uint64_t)__sanitizer_get_current_allocated_bytes();
#elif defined(SOAK_MALLINFO2)
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)(mi.uordblks + mi.hblkhd);
#else
    return 0;
#endif
}

#define MiB(b) ((double)(b) / (1024.0 * 1024.0))
#define MIB (1024ull * 1024)

/* Samples taken every 100 ms while the drivers run. */
typedef struct samples {
    size_t n, cap;
    int64_t *t; /* since the start */
    uint64_t *rss, *heap;
} samples_t;

/* The plateau check on one series: the high-water mark at the end of the
 * first third against the peak of the last third. */
typedef struct plateau {
    uint64_t first, last, limit;
    bool ok;
} plateau_t;

static plateau_t plateau_of(const samples_t *s, const uint64_t *v, int64_t span, double factor,
                            uint64_t slack) {
    plateau_t p = {0, 0, 0, false};
    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i] <= span / 3 && v[i] > p.first) p.first = v[i];
        if (s->t[i] >= 2 * span / 3 && v[i] > p.last) p.last = v[i];
    }
    p.limit = (uint64_t)((double)p.first * factor) + slack;
    p.ok = p.last <= p.limit;
    return p;
}

static void report(double t) {
    uint64_t lost = 0, dup = 0;
    for (int k = 0; k < K_COUNT; k++) {
        lost += atomic_load(&g_lost[k]);
        dup += atomic_load(&g_dup[k]);
    }
    printf("soak: %6.1fs  rss %.1f MiB (hwm %.1f)  heap %.2f MiB  tasks %zu  threads %zu"
           "  lost %" PRIu64 "  dup %" PRIu64 "  fail %" PRIu64 "\n       ",
           t, MiB(rss_bytes()), MiB(hwm_bytes()), MiB(heap_bytes()), gocc_tasks_live(),
           gocc_runtime_threads(), lost, dup, (uint64_t)atomic_load(&g_fail));
    for (int k = 0; k < K_COUNT; k++)
        printf(" %s %" PRIu64, kind_name[k], (uint64_t)atomic_load(&g_ops[k]));
    printf("\n");
    fflush(stdout);
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / GOCC_SECOND), (long)(ns % GOCC_SECOND)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------ */

/* ---- -M: many blocked tasks at once ---- */

typedef struct many_t {
    gocc_chan_t *gate;
    atomic_size_t parked, ended;
} many_t;

static int many_task(gocc_ctx_t *ctx, void *arg) {
    many_t *m = arg;
    atomic_fetch_add(&m->parked, 1);
    int rc = gocc_chan_recv(m->gate, NULL, ctx);
    if (rc == GOCC_ECLOSED) atomic_fetch_add(&m->ended, 1);
    return 0;
}

/* Block n tasks, report, release them; false on any failure. */
static bool many_blocked(size_t n) {
    many_t m = {.gate = gocc_chan_new(0, 0)};
    if (m.gate == NULL) return false;
    size_t base = gocc_tasks_live();
    long rss0 = rss_bytes();
    int64_t t0 = gocc_now();
    for (size_t i = 0; i < n; i++) {
        int rc = gocc_go(many_task, NULL, &m);
        if (rc != 0) {
            fprintf(stderr, "soak -M: task %zu of %zu did not start: %s\n", i, n,
                    gocc_strerror(rc));
            gocc_chan_close(m.gate);
            (void)gocc_leakcheck(base, 120 * GOCC_SECOND, 2);
            gocc_chan_release(m.gate);
            return false;
        }
    }
    int64_t t1 = gocc_now();
    while (atomic_load(&m.parked) < n) sleep_ns(GOCC_MILLISECOND);
    long rss1 = rss_bytes();
    size_t threads = gocc_runtime_threads();
    int64_t t2 = gocc_now();
    gocc_chan_close(m.gate);
    int rc = gocc_leakcheck(base, 300 * GOCC_SECOND, 2);
    int64_t t3 = gocc_now();
    printf("soak -M: %zu tasks blocked at once: started in %.2f s, %.2f KiB resident each, "
           "%zu OS threads; all woken and ended in %.2f s\n",
           n, (double)(t1 - t0) / 1e9, (double)(rss1 - rss0) / 1024.0 / (double)n, threads,
           (double)(t3 - t2) / 1e9);
    fflush(stdout);
    bool ok = rc == 0 && atomic_load(&m.ended) == n;
    if (!ok) fprintf(stderr, "soak -M: %zu of %zu tasks ended\n", atomic_load(&m.ended), n);
    gocc_chan_release(m.gate);
    return ok;
}

static void usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [-d SECONDS] [-r REPORT_SECONDS] [-j DRIVERS_PER_KIND] [-S SEED]\n"
            "          [-k KINDS] [-L BYTES]\n"
            "  A mixed libgocc workload. Exit 0 when nothing was lost, duplicated or\n"
            "  leaked and memory plateaued; 1 on a failed check, 2 fatal, 3 hang.\n"
            "  -d  run time (default 30)       -r  report period (default 5)\n"
            "  -j  drivers per kind (1)        -S  random seed (default: the clock)\n"
            "  -k  a comma-separated subset of pipeline,merge,select,group,workpool,\n"
            "      objpool,timer,cancel,pubsub,ratelimit,snapshot,fdecho (default: all)\n"
            "  -L  leak BYTES per round on purpose (the plateau checks must fail)\n"
            "  -M  first block TASKS tasks at once, report their cost, wake them all\n",
            prog);
    exit(2);
}

int main(int argc, char **argv) {
    double duration = 30, every = 5;
    int per_kind = 1, opt;
    size_t many = 0;
    bool enabled[K_COUNT];
    for (int k = 0; k < K_COUNT; k++) enabled[k] = true;
    unsigned long long seed = (unsigned long long)gocc_now();
    while ((opt = getopt(argc, argv, "d:r:j:S:k:L:M:h")) != -1) {
        switch (opt) {
        case 'd': duration = atof(optarg); break;
        case 'r': every = atof(optarg); break;
        case 'j': per_kind = atoi(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 0); break;
        case 'k':
            for (int k = 0; k < K_COUNT; k++) enabled[k] = strstr(optarg, kind_name[k]) != NULL;
            break;
        case 'L': g_leak_per_round = (size_t)strtoull(optarg, NULL, 0); break;
        case 'M': many = (size_t)strtoull(optarg, NULL, 0); break;
        default: usage(argv[0]);
        }
    }
    int nkinds = 0;
    for (int k = 0; k < K_COUNT; k++) nkinds += enabled[k];
    if (duration <= 0 || every <= 0 || per_kind < 1 || per_kind > 16 || nkinds == 0) usage(argv[0]);
    atomic_store(&g_seed, seed | 1);
    gocc_task_set_name("soak main");
    if (many > 0 && !many_blocked(many)) return 1;

    const int64_t t0 = gocc_now(), span = (int64_t)(duration * (double)GOCC_SECOND);
    g_end = t0 + span;
    printf("soak: %.0f s, %d driver(s) per kind, seed %llu%s\n", duration, per_kind, seed,
           SAN_DIV > 1 ? ", sanitizer scale" : "");
    fflush(stdout);

    samples_t smp = {.n = 0, .cap = (size_t)(duration * 10 + 64)};
    smp.t = xcalloc(K_PIPE, smp.cap, sizeof *smp.t);
    smp.rss = xcalloc(K_PIPE, smp.cap, sizeof *smp.rss);
    smp.heap = xcalloc(K_PIPE, smp.cap, sizeof *smp.heap);

    atomic_store(&g_drivers_left, per_kind * nkinds);
    for (int j = 0; j < per_kind; j++)
        for (int k = 0; k < K_COUNT; k++)
            if (enabled[k] && gocc_go(driver, NULL, (void *)(intptr_t)k) != 0)
                fatal((enum kind)k, "starting a driver");

    int64_t next_report = t0 + (int64_t)(every * (double)GOCC_SECOND);
    while (atomic_load(&g_drivers_left) > 0) {
        sleep_ns(100 * GOCC_MILLISECOND);
        int64_t now = gocc_now();
        if (smp.n < smp.cap) {
            smp.t[smp.n] = now - t0;
            smp.rss[smp.n] = rss_bytes();
            smp.heap[smp.n++] = heap_bytes();
        }
        if (now >= next_report) {
            report((double)(now - t0) / (double)GOCC_SECOND);
            next_report += (int64_t)(every * (double)GOCC_SECOND);
        }
        if (now > g_end + SAFETY_NS + 30 * GOCC_SECOND) {
            fprintf(stderr, "soak: HANG: drivers still running %lld s after the end\n",
                    (long long)((now - g_end) / GOCC_SECOND));
            gocc_dump(STDERR_FILENO);
            fflush(NULL);
            _exit(3);
        }
    }
    const int64_t ran = gocc_now() - t0;

    /* Every round shut down what it made: no task may be left. */
    int leak = gocc_leakcheck(0, 10 * GOCC_SECOND, STDERR_FILENO);
    size_t live = gocc_tasks_live();

    /* Memory plateaus (the file's opening comment says how the bounds were
     * chosen): RSS, generous; the live heap, tighter (no allocator caches,
     * stacks or quarantine in it). */
    plateau_t rss = plateau_of(&smp, smp.rss, span, 1.5, 16 * MIB);
    plateau_t heap = plateau_of(&smp, smp.heap, span, 1.25, 1 * MIB);
    bool heap_known = heap.first > 0;

    printf("soak: summary after %.1f s (%d driver(s) per kind)\n", (double)ran / GOCC_SECOND,
           per_kind);
    printf("  %-10s %12s %10s %8s %6s %6s\n", "kind", "ops", "ops/s", "rounds", "lost", "dup");
    uint64_t lost = 0, dup = 0;
    bool idle_kind = false;
    for (int k = 0; k < K_COUNT; k++) {
        if (!enabled[k]) continue;
        uint64_t ops = atomic_load(&g_ops[k]);
        lost += atomic_load(&g_lost[k]);
        dup += atomic_load(&g_dup[k]);
        if (ops == 0 || atomic_load(&g_rounds[k]) == 0) idle_kind = true;
        printf("  %-10s %12" PRIu64 " %10.0f %8" PRIu64 " %6" PRIu64 " %6" PRIu64 "\n",
               kind_name[k], ops, (double)ops / ((double)ran / GOCC_SECOND),
               (uint64_t)atomic_load(&g_rounds[k]), (uint64_t)atomic_load(&g_lost[k]),
               (uint64_t)atomic_load(&g_dup[k]));
    }
    if (enabled[K_FDECHO])
        printf("  fdecho: %" PRIu64 " bytes echoed and read back, every one checked;"
               " %" PRIu64 " reads timed out and were retried\n",
               (uint64_t)atomic_load(&g_fe_bytes), (uint64_t)atomic_load(&g_fe_timeouts));
    printf("  rss:  first third %.1f MiB (high-water), last third peak %.1f MiB (limit %.1f),"
           " final %.1f MiB, process high-water %.1f MiB\n",
           MiB(rss.first), MiB(rss.last), MiB(rss.limit), MiB(rss_bytes()), MiB(hwm_bytes()));
    if (heap_known)
        printf("  heap: first third %.2f MiB (high-water), last third peak %.2f MiB (limit %.2f),"
               " final %.2f MiB\n",
               MiB(heap.first), MiB(heap.last), MiB(heap.limit), MiB(heap_bytes()));
    printf("  tasks live after shutdown: %zu; lost %" PRIu64 ", duplicated %" PRIu64
           ", other failed checks %" PRIu64 "\n",
           live, lost, dup, (uint64_t)atomic_load(&g_fail));

    bool ok = lost == 0 && dup == 0 && atomic_load(&g_fail) == 0;
    if (leak != 0 || live != 0) {
        fprintf(stderr, "soak: FAIL: %zu tasks still live after shutdown\n", live);
        ok = false;
    }
    if (idle_kind) {
        fprintf(stderr, "soak: FAIL: a kind finished no round\n");
        ok = false;
    }
    if (!rss.ok) {
        fprintf(stderr, "soak: FAIL: RSS grew: %.1f MiB in the last third, limit %.1f MiB\n",
                MiB(rss.last), MiB(rss.limit));
        ok = false;
    }
    if (heap_known && !heap.ok) {
        fprintf(stderr,
                "soak: FAIL: the live heap grew: %.2f MiB in the last third, limit %.2f MiB\n",
                MiB(heap.last), MiB(heap.limit));
        ok = false;
    }
    free(smp.t);
    free(smp.rss);
    free(smp.heap);
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
