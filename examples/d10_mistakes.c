/*
 * d10_mistakes.c - D10 (cheat sheet): the common-mistakes table, one short
 * demonstration of each mistake next to its fix. Each broken half is kept
 * safe to run: a leaked task is counted, then freed through a back door
 * the broken API does not have (a cancel, a flag, a receive by hand), and
 * nothing here is a data race (TSan runs this file too).
 *
 *   d10_goroutine_leak       no exit path: a consumer ranges over a channel
 *                            nobody closes -> the sender closes it
 *   d10_loop_variable        every task reads the one loop variable ->
 *                            each task gets its own value as its argument
 *   d10_naked_goroutine      a bare task's error goes nowhere -> errgroup
 *   d10_send_on_closed       the receiver closes, the sender's next send
 *                            fails (a panic in Go) -> only the sender closes;
 *                            the receiver says "stop" through a context
 *   d10_map_race             the racy map itself would be undefined
 *                            behaviour in C, so not run; what runs is the
 *                            half-fix: every map call locked, but get-then-
 *                            put is not one step -> lock around the update
 *   d10_wg_add_in_task       wg.Add inside the task: Wait returns before
 *                            any task ran -> Add before go
 *   d10_main_without_wait    main returning now would lose the tasks' work
 *                            -> wait for them
 *   d10_buffer_as_queue      a huge buffer hides backpressure: the backlog
 *                            and the wait of each item grow -> a buffer
 *                            sized on purpose
 *   d10_unclear_lifetime     a background task with no way to stop it ->
 *                            documented: exits when its ctx is done; Close
 *                            cancels and waits
 *   d10_ctx_in_struct        a stored ctx fails a later, live request ->
 *                            ctx as first parameter
 *   d10_async_by_default     an async API leaks when its caller gives up ->
 *                            a synchronous one with ctx
 *
 * Checks: each fix's result (exact), each broken half's symptom where it is
 * deterministic (where it depends on timing it is reported only), and
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 *
 * Go -> C: as in D01-D09; what panics in Go (send on a closed channel)
 * returns an error code here and changes nothing.
 */
#include <gocc.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D10", ok, what)
#define tasks_exit(within) example_tasks_exit_poll(within, GOCC_MILLISECOND / 4)

/* ---- D10: goroutine leak ------------------------------------------------- */

typedef struct consumer {
    gocc_chan_t *ch;
    int received;
} consumer_t;

static int consume(gocc_ctx_t *ctx, void *arg) {
    consumer_t *c = arg;
    int v;
    while (gocc_chan_recv(c->ch, &v, ctx) == 0) c->received++; /* range ch */
    return 0;
}

static void d10_goroutine_leak(void) {
    size_t live[2] = {0, 0};
    for (int fixed = 0; fixed < 2; fixed++) {
        /* The demo's back door: a cancel the consumer's owner never makes,
         * used after the count so the broken run ends. */
        gocc_ctx_t *back_door = gocc_ctx_with_cancel(NULL);
        consumer_t c = {gocc_chan_new(sizeof(int), 0), 0};
        if (back_door && c.ch && gocc_go(consume, back_door, &c) == 0) {
            for (int i = 0; i < 5; i++) gocc_chan_send(c.ch, &i, NULL);
            if (fixed) { /* the sender says "no more": the consumer returns */
                gocc_chan_close(c.ch);
                tasks_exit(5 * GOCC_SECOND);
            } else { /* nobody will: the consumer stays blocked */
                gocc_sleep(10 * GOCC_MILLISECOND, NULL);
            }
            live[fixed] = gocc_tasks_live();
        }
        gocc_ctx_cancel(back_door);
        check(tasks_exit(5 * GOCC_SECOND), "the consumer ended");
        gocc_ctx_release(back_door);
        gocc_chan_release(c.ch);
    }
    check(live[0] == 1 && live[1] == 0, "leaked without close, gone with it");
    printf("D10 goroutine leak: channel never closed -> %zu consumer still blocked 10 ms after "
           "the last send; the sender closes it -> %zu live\n",
           live[0], live[1]);
}

/* ---- D10: closure over the loop variable --------------------------------- */

#define N_LOOP 5

typedef struct loop_task {
    gocc_chan_t *start;
    _Atomic int *shared_i; /* broken: the loop variable itself (atomic, so no data race) */
    int own_i;             /* fixed: a copy, go func(v int){...}(i) */
    int seen;              /* out */
} loop_task_t;

static int read_shared(gocc_ctx_t *ctx, void *arg) {
    loop_task_t *t = arg;
    gocc_chan_recv(t->start, NULL, ctx); /* runs after the loop moved on */
    t->seen = atomic_load(t->shared_i);
    return 0;
}

static int read_own(gocc_ctx_t *ctx, void *arg) {
    loop_task_t *t = arg;
    gocc_chan_recv(t->start, NULL, ctx);
    t->seen = t->own_i;
    return 0;
}

static void d10_loop_variable(void) {
    char out[2][64];
    bool distinct[2] = {false, false};
    for (int fixed = 0; fixed < 2; fixed++) {
        gocc_chan_t *start = gocc_chan_new(0, 0);
        loop_task_t t[N_LOOP];
        int started = 0;
        _Atomic int i;
        for (atomic_init(&i, 0); atomic_load(&i) < N_LOOP; atomic_fetch_add(&i, 1)) {
            int v = atomic_load(&i);
            t[v] = (loop_task_t){start, &i, v, -1};
            if (start && gocc_go(fixed ? read_own : read_shared, NULL, &t[v]) == 0) started++;
        }
        gocc_chan_close(start);
        check(started == N_LOOP && tasks_exit(5 * GOCC_SECOND), "the loop tasks ran");
        int len = 0;
        distinct[fixed] = true;
        for (int k = 0; k < N_LOOP; k++) {
            len += snprintf(out[fixed] + len, sizeof out[fixed] - (size_t)len, "%s%d", k ? " " : "",
                            t[k].seen);
            if (t[k].seen != (fixed ? k : N_LOOP)) distinct[fixed] = false;
        }
        gocc_chan_release(start);
    }
    check(distinct[0] && distinct[1], "shared: all saw the last value; own: 0..4");
    printf("D10 loop variable: tasks reading the shared i saw [%s]; given i as an argument "
           "they saw [%s]\n",
           out[0], out[1]);
}

/* ---- D10: naked goroutine ------------------------------------------------- */

static int failing_job(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_sleep(GOCC_MILLISECOND, ctx);
    return -EIO; /* the error */
}

typedef struct long_job_seen {
    int result;     /* what the sibling returned */
    int64_t ran_ns; /* how long it ran */
} long_job_seen_t;

static int long_job(gocc_ctx_t *ctx, void *arg) {
    long_job_seen_t *seen = arg;
    int64_t t0 = gocc_now();
    int err = gocc_sleep(10 * GOCC_SECOND, ctx); /* stopped by the group's cancel */
    seen->ran_ns = gocc_now() - t0;
    seen->result = err;
    return err;
}

static void d10_naked_goroutine(void) {
    int naked = gocc_go(failing_job, NULL, NULL); /* returns 0: the task's error is gone */
    tasks_exit(5 * GOCC_SECOND);

    gocc_group_t *g = gocc_group_new(NULL);
    int err = GOCC_ENOMEM;
    long_job_seen_t sibling = {1, -1};
    int64_t t0 = gocc_now();
    if (g) {
        gocc_group_go(g, long_job, &sibling);
        gocc_group_go(g, failing_job, NULL);
        err = gocc_group_wait(g); /* both have returned: sibling is written */
        gocc_group_free(g);
    }
    double ms = (double)(gocc_now() - t0) / 1e6;
    bool stopped = sibling.result == GOCC_ECANCELED && sibling.ran_ns >= 0 &&
                   sibling.ran_ns < 2 * GOCC_SECOND;
    check(naked == 0 && err == -EIO, "the group returns the error the bare task lost");
    check(stopped, "the error cancelled the 10 s sibling: 'context canceled' within 2 s");
    printf("D10 naked goroutine: the bare task's error reached nobody (gocc_go returned %d); "
           "in an errgroup Wait returned \"%s\" after %.1f ms, the 10 s sibling %s after "
           "%.1f ms (\"%s\")\n",
           naked, gocc_strerror(err), ms,
           stopped ? "was stopped by the group's cancel" : "was NOT stopped",
           (double)sibling.ran_ns / 1e6, gocc_strerror(sibling.result));
}

/* ---- D10: send on a closed channel ---------------------------------------- */

typedef struct sender {
    gocc_chan_t *ch;
    int sent, failed_sends; /* out */
} sender_t;

static int send_100(gocc_ctx_t *ctx, void *arg) {
    sender_t *s = arg;
    for (int i = 0; i < 100; i++) {
        int err = gocc_chan_send(s->ch, &i, ctx);
        if (err == GOCC_ECLOSED) { /* Go: panic: send on closed channel */
            s->failed_sends++;
            break;
        }
        if (err != 0) break; /* ctx: told to stop */
        s->sent++;
    }
    gocc_chan_close(s->ch); /* fixed version: the sender closes (a no-op error if closed) */
    return 0;
}

static void d10_send_on_closed(void) {
    int failed[2] = {-1, -1};
    for (int fixed = 0; fixed < 2; fixed++) {
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        sender_t s = {gocc_chan_new(sizeof(int), 0), 0, 0};
        if (ctx && s.ch && gocc_go(send_100, ctx, &s) == 0) {
            for (int i = 0; i < 10; i++) gocc_chan_recv(s.ch, NULL, NULL);
            if (fixed)
                gocc_ctx_cancel(ctx); /* "stop", through the done signal */
            else
                gocc_chan_close(s.ch); /* WRONG side closes */
            tasks_exit(5 * GOCC_SECOND);
            failed[fixed] = s.failed_sends;
        }
        gocc_ctx_cancel(ctx);
        gocc_ctx_release(ctx);
        gocc_chan_release(s.ch);
    }
    check(failed[0] == 1 && failed[1] == 0, "receiver closing breaks the sender; ctx does not");
    printf("D10 send on closed: receiver closed the channel -> %d send failed with \"%s\" (a "
           "panic in Go); receiver cancelled instead -> %d\n",
           failed[0], gocc_strerror(GOCC_ECLOSED), failed[1]);
}

/* ---- D10: race on a shared map --------------------------------------------- */

#define MAP_KEYS 8
#define MAP_TASKS 4
#define MAP_INCS 2000

typedef struct locked_map {
    pthread_mutex_t mu;
    long v[MAP_KEYS];
    bool whole_update_locked;
} locked_map_t;

static long map_get(locked_map_t *m, int k) {
    pthread_mutex_lock(&m->mu);
    long v = m->v[k];
    pthread_mutex_unlock(&m->mu);
    return v;
}

static void map_put(locked_map_t *m, int k, long v) {
    pthread_mutex_lock(&m->mu);
    m->v[k] = v;
    pthread_mutex_unlock(&m->mu);
}

static int map_incrementer(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    locked_map_t *m = arg;
    unsigned x = (unsigned)(uintptr_t)&x;
    for (int i = 0; i < MAP_INCS; i++) {
        x = x * 1664525u + 1013904223u;
        int k = (int)((x >> 16) % MAP_KEYS);
        if (m->whole_update_locked) { /* fix: the read-modify-write is one step */
            pthread_mutex_lock(&m->mu);
            m->v[k]++;
            pthread_mutex_unlock(&m->mu);
        } else { /* m[k] = m[k] + 1, each call locked on its own */
            long v = map_get(m, k);
            if (i % 8 == 0) sched_yield();
            map_put(m, k, v + 1);
        }
    }
    return 0;
}

static void d10_map_race(void) {
    long total[2] = {0, 0};
    for (int fixed = 0; fixed < 2; fixed++) {
        locked_map_t m = {.mu = PTHREAD_MUTEX_INITIALIZER, .whole_update_locked = fixed};
        for (int t = 0; t < MAP_TASKS; t++)
            if (gocc_go(map_incrementer, NULL, &m) != 0) map_incrementer(NULL, &m);
        check(tasks_exit(5 * GOCC_SECOND), "the map tasks returned");
        for (int k = 0; k < MAP_KEYS; k++) total[fixed] += map_get(&m, k);
        pthread_mutex_destroy(&m.mu);
    }
    const long want = (long)MAP_TASKS * MAP_INCS;
    check(total[1] == want, "with the whole update locked, no increment is lost");
    printf("D10 map race: (unlocked: UB in C, not run) each call locked: %ld of %ld "
           "increments kept; the whole update locked: %ld of %ld\n",
           total[0], want, total[1], want);
}

/* ---- D10: forgetting wg.Add before go -------------------------------------- */

typedef struct wg_demo {
    gocc_waitgroup_t wg;
    gocc_chan_t *gate;
    bool add_in_task;
    atomic_int finished;
} wg_demo_t;

static int wg_task(gocc_ctx_t *ctx, void *arg) {
    wg_demo_t *d = arg;
    gocc_chan_recv(d->gate, NULL, ctx);                /* not scheduled yet, as it were */
    if (d->add_in_task) gocc_waitgroup_add(&d->wg, 1); /* BROKEN: too late */
    atomic_fetch_add(&d->finished, 1);
    gocc_waitgroup_done(&d->wg);
    return 0;
}

static void d10_wg_add_in_task(void) {
    int at_wait[2] = {-1, -1};
    for (int fixed = 0; fixed < 2; fixed++) {
        wg_demo_t d = {.wg = GOCC_WAITGROUP_INIT,
                       .gate = gocc_chan_new(0, 0),
                       .add_in_task = !fixed};
        int started = 0;
        for (int i = 0; d.gate && i < 4; i++) {
            if (fixed) gocc_waitgroup_add(&d.wg, 1); /* Add before go */
            if (gocc_go(wg_task, NULL, &d) == 0)
                started++;
            else if (fixed)
                gocc_waitgroup_done(&d.wg);
        }
        if (fixed) gocc_chan_close(d.gate); /* let them run, then wait */
        gocc_waitgroup_wait(&d.wg, NULL);
        at_wait[fixed] = atomic_load(&d.finished);
        if (!fixed) gocc_chan_close(d.gate); /* the broken run: now they run */
        check(started == 4 && tasks_exit(5 * GOCC_SECOND), "the wg tasks returned");
        gocc_waitgroup_wait(&d.wg, NULL); /* settled: every add has its done */
        gocc_chan_release(d.gate);
    }
    check(at_wait[0] == 0 && at_wait[1] == 4, "Wait was early with Add in the task");
    printf("D10 wg.Add in the task: Wait returned with %d of 4 tasks finished; Add before "
           "go: %d of 4\n",
           at_wait[0], at_wait[1]);
}

/* ---- D10: blocking main without wait ---------------------------------------- */

typedef struct work {
    atomic_int finished;
    gocc_waitgroup_t wg;
} work_t;

static int slow_work(gocc_ctx_t *ctx, void *arg) {
    work_t *w = arg;
    gocc_sleep(5 * GOCC_MILLISECOND, ctx);
    atomic_fetch_add(&w->finished, 1);
    gocc_waitgroup_done(&w->wg);
    return 0;
}

static void d10_main_without_wait(void) {
    work_t w = {.wg = GOCC_WAITGROUP_INIT};
    for (int i = 0; i < 4; i++) {
        gocc_waitgroup_add(&w.wg, 1);
        if (gocc_go(slow_work, NULL, &w) != 0) slow_work(NULL, &w);
    }
    int at_return = atomic_load(&w.finished); /* where main would have returned */
    gocc_waitgroup_wait(&w.wg, NULL);         /* the fix */
    int after_wait = atomic_load(&w.finished);
    check(after_wait == 4, "after Wait every task's work is done");
    check(tasks_exit(5 * GOCC_SECOND), "the work tasks returned");
    printf("D10 main without wait: returning right after go would have kept %d of 4 tasks' "
           "work; after wg.Wait(): %d of 4\n",
           at_return, after_wait);
}

/* ---- D10: buffered channel as a queue ---------------------------------------- */

#define ITEMS 300

typedef struct queue_demo {
    gocc_chan_t *q;
    int64_t max_wait; /* out: longest time an item sat in the queue */
    int received;
} queue_demo_t;

static int slow_consumer(gocc_ctx_t *ctx, void *arg) {
    queue_demo_t *d = arg;
    int64_t enqueued;
    while (gocc_chan_recv(d->q, &enqueued, ctx) == 0) {
        int64_t waited = gocc_now() - enqueued;
        if (waited > d->max_wait) d->max_wait = waited;
        d->received++;
        int64_t busy_until = gocc_now() + 20 * GOCC_MICROSECOND; /* slow: 20 us of work */
        while (gocc_now() < busy_until) {
        }
    }
    return 0;
}

static void d10_buffer_as_queue(void) {
    size_t caps[2] = {10000, 8}, backlog[2] = {0, 0};
    double wait_ms[2] = {0, 0};
    int received[2] = {0, 0};
    for (int fixed = 0; fixed < 2; fixed++) {
        queue_demo_t d = {gocc_chan_new(sizeof(int64_t), caps[fixed]), 0, 0};
        if (!d.q || gocc_go(slow_consumer, NULL, &d) != 0) {
            check(false, "started the consumer");
            gocc_chan_release(d.q);
            continue;
        }
        for (int i = 0; i < ITEMS; i++) {
            int64_t now = gocc_now();
            gocc_chan_send(d.q, &now, NULL); /* blocks only when the buffer is full */
            size_t len = gocc_chan_len(d.q);
            if (len > backlog[fixed]) backlog[fixed] = len;
        }
        gocc_chan_close(d.q);
        check(tasks_exit(5 * GOCC_SECOND), "the consumer drained the queue");
        wait_ms[fixed] = (double)d.max_wait / 1e6;
        received[fixed] = d.received;
        gocc_chan_release(d.q);
    }
    check(received[0] == ITEMS && received[1] == ITEMS && backlog[1] <= caps[1],
          "every item arrived; the sized buffer bounds the backlog");
    printf("D10 buffer as queue: buffer %zu -> backlog up to %zu, an item waited up to %.1f ms; "
           "buffer %zu -> backlog <= %zu, waits up to %.1f ms (the producer felt the "
           "backpressure)\n",
           caps[0], backlog[0], wait_ms[0], caps[1], backlog[1], wait_ms[1]);
}

/* ---- D10: goroutine with unclear lifetime ---------------------------------- */

typedef struct cache {
    atomic_int refreshes;
    atomic_bool demo_stop; /* broken: the demo's back door, not part of the API */
    gocc_waitgroup_t wg;   /* fixed: Close waits for the refresher */
} cache_t;

/* BROKEN: "refreshes the cache" - until when? Nothing says, nothing can
 * stop it (but the demo's back door). */
static int refresher_forever(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cache_t *c = arg;
    while (!atomic_load(&c->demo_stop)) {
        gocc_sleep(GOCC_MILLISECOND, NULL);
        atomic_fetch_add(&c->refreshes, 1);
    }
    return 0;
}

/* FIXED: refreshes every 1 ms; exits when ctx is done (Close cancels it
 * and waits). */
static int refresher(gocc_ctx_t *ctx, void *arg) {
    cache_t *c = arg;
    while (gocc_sleep(GOCC_MILLISECOND, ctx) == 0) atomic_fetch_add(&c->refreshes, 1);
    gocc_waitgroup_done(&c->wg);
    return 0;
}

static void d10_unclear_lifetime(void) {
    cache_t broken = {.wg = GOCC_WAITGROUP_INIT};
    size_t live_broken = 0;
    int after_broken = 0;
    if (gocc_go(refresher_forever, NULL, &broken) == 0) {
        gocc_sleep(5 * GOCC_MILLISECOND, NULL);
        /* "Close": there is nothing to tell the refresher. */
        int at_close = atomic_load(&broken.refreshes);
        gocc_sleep(10 * GOCC_MILLISECOND, NULL);
        live_broken = gocc_tasks_live();
        after_broken = atomic_load(&broken.refreshes) - at_close;
        atomic_store(&broken.demo_stop, true);
    }
    check(tasks_exit(5 * GOCC_SECOND), "the runaway refresher ended (back door)");

    cache_t fixed = {.wg = GOCC_WAITGROUP_INIT};
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_waitgroup_add(&fixed.wg, 1);
    if (!ctx || gocc_go(refresher, ctx, &fixed) != 0) gocc_waitgroup_done(&fixed.wg);
    gocc_sleep(5 * GOCC_MILLISECOND, NULL);
    gocc_ctx_cancel(ctx); /* Close: cancel, then wait for it */
    gocc_waitgroup_wait(&fixed.wg, NULL);
    int at_close = atomic_load(&fixed.refreshes);
    gocc_sleep(10 * GOCC_MILLISECOND, NULL);
    check(tasks_exit(5 * GOCC_SECOND), "the refresher exited on close");
    size_t live_fixed = gocc_tasks_live();
    int after_fixed = atomic_load(&fixed.refreshes) - at_close;
    gocc_ctx_release(ctx);
    check(live_broken == 1 && live_fixed == 0 && after_fixed == 0,
          "the documented refresher is gone at close");
    printf("D10 unclear lifetime: 10 ms after Close the runaway refresher was still live (%zu) "
           "and refreshed %d more times; with `exits when ctx is done`: %zu live, %d more\n",
           live_broken, after_broken, live_fixed, after_fixed);
}

/* ---- D10: context stored in a struct ------------------------------------- */

typedef struct service {
    gocc_ctx_t *ctx; /* BAD */
} service_t;

static int query(gocc_ctx_t *ctx) { return gocc_sleep(GOCC_MILLISECOND, ctx); }

static void d10_ctx_in_struct(void) {
    gocc_ctx_t *req1 = gocc_ctx_with_cancel(NULL), *req2 = gocc_ctx_with_cancel(NULL);
    service_t s = {gocc_ctx_retain(req1)};               /* made during request 1 */
    gocc_ctx_cancel(req1);                               /* request 1 is over */
    int bad = req1 && req2 ? query(s.ctx) : GOCC_ENOMEM; /* serving request 2 */
    int good = req1 && req2 ? query(req2) : GOCC_ENOMEM; /* ctx passed as a parameter */
    check(bad == GOCC_ECANCELED && good == 0, "the stored ctx fails the live request");
    printf("D10 ctx in a struct: request 2 through the stored ctx -> \"%s\"; with its own ctx "
           "as first parameter -> %d\n",
           gocc_strerror(bad), good);
    gocc_ctx_release(s.ctx);
    gocc_ctx_cancel(req2);
    gocc_ctx_release(req1);
    gocc_ctx_release(req2);
}

/* ---- D10: async function by default -------------------------------------- */

typedef struct async_call {
    gocc_chan_t *ch; /* the task's own reference */
} async_call_t;

static async_call_t the_call;

static int async_body(gocc_ctx_t *ctx, void *arg) {
    async_call_t *a = arg;
    int v = 42;
    gocc_sleep(50 * GOCC_MILLISECOND, ctx);
    gocc_chan_send(a->ch, &v, ctx); /* blocks until someone reads */
    gocc_chan_release(a->ch);
    return 0;
}

static void d10_async_by_default(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0); /* func Get() <-chan int */
    the_call.ch = gocc_chan_retain(ch);
    if (!ch || gocc_go(async_body, NULL, &the_call) != 0) {
        check(false, "started the async call");
        gocc_chan_release(the_call.ch);
        gocc_chan_release(ch);
        return;
    }
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, GOCC_MILLISECOND);
    int err = gocc_chan_recv(ch, NULL, ctx); /* the caller gives up after 1 ms */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_sleep(60 * GOCC_MILLISECOND, NULL); /* the result is ready by now */
    size_t leaked = gocc_tasks_live();
    gocc_chan_recv(ch, NULL, NULL); /* free it by hand, so the demo ends */
    check(tasks_exit(5 * GOCC_SECOND), "the async task ended once read");
    gocc_chan_release(ch);

    ctx = gocc_ctx_with_timeout(NULL, GOCC_MILLISECOND);
    int sync_err = ctx ? gocc_sleep(50 * GOCC_MILLISECOND, ctx) : GOCC_ENOMEM; /* Get(ctx) */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(err == GOCC_EDEADLINE && leaked == 1 && sync_err == GOCC_EDEADLINE &&
              gocc_tasks_live() == 0,
          "the async API leaks on give-up, the sync one does not");
    printf("D10 async by default: the caller gave up (\"%s\") and the async task stayed live "
           "(%zu); Get(ctx) returned \"%s\" with %zu live\n",
           gocc_strerror(err), leaked, gocc_strerror(sync_err), gocc_tasks_live());
}

int main(void) {
    d10_goroutine_leak();
    d10_loop_variable();
    d10_naked_goroutine();
    d10_send_on_closed();
    d10_map_race();
    d10_wg_add_in_task();
    d10_main_without_wait();
    d10_buffer_as_queue();
    d10_unclear_lifetime();
    d10_ctx_in_struct();
    d10_async_by_default();
    check(tasks_exit(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D10 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
