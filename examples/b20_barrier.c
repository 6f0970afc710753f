/*
 * b20_barrier.c - B20 (chapter 9, "Barrier Pattern"): synchronise n
 * goroutines. Barrier.Wait() blocks until n callers have arrived, then
 * releases them all; the barrier is reusable, round after round.
 *
 * The seed's Barrier (count atomic.Int32, ch chan struct{}, resetMu) has
 * two races, so it is rewritten here rather than ported line for line:
 *   - the waiters read b.ch (`<-b.ch`) while the last arrival replaces it
 *     (`b.ch = make(...)` under resetMu, which the readers do not take): a
 *     data race, and a waiter that reads the NEW channel sleeps a round
 *     too long (or forever);
 *   - a released waiter that comes straight back for the next round can
 *     Add(1) before the last arrival's count.Store(0), and that Store then
 *     erases its arrival: the next round never completes.
 * The fix keeps the seed's idea (a channel per round, closed as a
 * broadcast) but makes the arrival, the swap and the reset one step under
 * one mutex: a waiter takes a reference to the current round's channel
 * under the lock and waits on it outside; the last arrival swaps in a
 * fresh channel and resets the count under the lock, then closes the old
 * channel after unlocking. A round's arrivals and the swap are ordered by
 * the mutex, so a fast waiter's next arrival always counts for the next
 * round.
 *
 * Wait also takes a ctx (the Go extension every blocking call here has):
 * when ctx ends before the round completes the caller withdraws its
 * arrival and gets ctx's error, leaving the barrier as it found it. Wait
 * returns BARRIER_SERIAL to exactly one caller per round (the last to
 * arrive, as pthread_barrier_wait's PTHREAD_BARRIER_SERIAL_THREAD).
 *
 * b20_rounds: 4 tasks x 300 rounds of: write my cell (a plain int), Wait,
 *   read every cell (each must hold this round's value), Wait (so nobody
 *   overwrites a cell another still reads). The cells are plain ints: under
 *   ThreadSanitizer a barrier that orders nothing would be a reported
 *   race. An arrivals counter checks that after crossing k nobody has
 *   passed early (all 4 arrived at k) or run more than one crossing ahead.
 * b20_withdraw: a barrier of 2, one caller with a 20 ms timeout: it gets
 *   "context deadline exceeded", the barrier's count is back to 0, and the
 *   barrier then works for 2 tasks.
 *
 * Go -> C: sync.Mutex is a pthread mutex; chan struct{} a gocc channel of
 * elem_size 0 (close = broadcast, recv gets GOCC_ECLOSED); goroutines are
 * gocc_go tasks joined with a gocc_waitgroup_t.
 *
 * Checks: every cell read, the arrival bounds, exactly one serial caller per
 * crossing, the withdrawal, gocc_tasks_live() == 0 at the end. Exit 1 if
 * wrong.
 */
#include <gocc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B20", ok, what)

/* ---- the barrier --------------------------------------------------------- */

#define BARRIER_SERIAL 1

typedef struct barrier {
    int n;
    pthread_mutex_t mu;   /* protects count, round, release */
    int count;            /* arrived in this round */
    uint64_t round;       /* completed rounds */
    gocc_chan_t *release; /* this round's: closed when it completes */
} barrier_t;

static int barrier_init(barrier_t *b, int n) {
    *b = (barrier_t){.n = n, .release = gocc_chan_new(0, 0)};
    pthread_mutex_init(&b->mu, NULL);
    return b->release ? 0 : GOCC_ENOMEM;
}

static void barrier_destroy(barrier_t *b) {
    gocc_chan_release(b->release);
    pthread_mutex_destroy(&b->mu);
}

/* Wait for n arrivals. @return 0, BARRIER_SERIAL (the one that completed
 * the round), ctx's error (withdrawn: as if never called), GOCC_ENOMEM. */
static int barrier_wait(barrier_t *b, gocc_ctx_t *ctx) {
    pthread_mutex_lock(&b->mu);
    if (b->count + 1 == b->n) { /* the last one: release the round */
        gocc_chan_t *fresh = gocc_chan_new(0, 0);
        if (!fresh) {
            pthread_mutex_unlock(&b->mu);
            return GOCC_ENOMEM;
        }
        gocc_chan_t *done = b->release;
        b->release = fresh;
        b->count = 0;
        b->round++;
        pthread_mutex_unlock(&b->mu);
        gocc_chan_close(done); /* wakes this round's waiters, and only them */
        gocc_chan_release(done);
        return BARRIER_SERIAL;
    }
    b->count++;
    uint64_t round = b->round;
    gocc_chan_t *mine = gocc_chan_retain(b->release);
    pthread_mutex_unlock(&b->mu);

    int rc = gocc_chan_recv(mine, NULL, ctx);
    if (rc != GOCC_ECLOSED) { /* ctx ended: withdraw, unless the round just completed */
        pthread_mutex_lock(&b->mu);
        if (b->round == round)
            b->count--;
        else
            rc = GOCC_ECLOSED; /* released meanwhile: we passed */
        pthread_mutex_unlock(&b->mu);
    }
    gocc_chan_release(mine);
    return rc == GOCC_ECLOSED ? 0 : rc;
}

/* ---- rounds -------------------------------------------------------------- */

#define PARTIES 4
#define ROUNDS 300

typedef struct shared {
    barrier_t barrier;
    int cells[PARTIES];  /* plain ints: the barrier must order them */
    atomic_int arrivals; /* barrier_wait calls begun, all parties */
    atomic_int serials;  /* BARRIER_SERIAL returns */
    atomic_int bad_reads, bad_bounds, errors;
    gocc_waitgroup_t wg;
} shared_t;

typedef struct party {
    shared_t *sh;
    int id;
} party_t;

/* One crossing: arrive, wait, check nobody passed early or ran ahead.
 * False when the wait failed (ctx ended: a party never started). */
static bool cross(shared_t *sh, int k, gocc_ctx_t *ctx) {
    atomic_fetch_add(&sh->arrivals, 1);
    int rc = barrier_wait(&sh->barrier, ctx);
    if (rc == BARRIER_SERIAL) {
        atomic_fetch_add(&sh->serials, 1);
    } else if (rc != 0) {
        atomic_fetch_add(&sh->errors, 1);
        return false;
    }
    /* All PARTIES arrived at crossing k; none can have arrived at k + 2
     * (that needs this party's arrival at k + 1). */
    int a = atomic_load(&sh->arrivals);
    if (a < PARTIES * (k + 1) || a > PARTIES * (k + 2) - 1) atomic_fetch_add(&sh->bad_bounds, 1);
    return true;
}

static int party_task(gocc_ctx_t *ctx, void *arg) {
    party_t *p = arg;
    shared_t *sh = p->sh;
    for (int r = 0; r < ROUNDS; r++) {
        sh->cells[p->id] = r * PARTIES + p->id; /* my part of round r */
        if (!cross(sh, 2 * r, ctx)) break;
        for (int j = 0; j < PARTIES; j++) /* everyone's part, all written */
            if (sh->cells[j] != r * PARTIES + j) atomic_fetch_add(&sh->bad_reads, 1);
        if (!cross(sh, 2 * r + 1, ctx)) break; /* nobody writes round r + 1 before all have read */
    }
    gocc_waitgroup_done(&sh->wg);
    return 0;
}

static void b20_rounds(void) {
    static shared_t sh; /* static: big enough, and zeroed */
    sh.wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    if (barrier_init(&sh.barrier, PARTIES) != 0) {
        check(false, "made the barrier");
        return;
    }
    /* Ends a broken run; cancelled at once if a party cannot start (the
     * others would wait for it forever). */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_SECOND);
    party_t parties[PARTIES];
    int started = 0;
    int64_t t0 = gocc_now();
    for (int i = 0; ctx && i < PARTIES; i++) {
        parties[i] = (party_t){.sh = &sh, .id = i};
        gocc_waitgroup_add(&sh.wg, 1);
        if (gocc_go(party_task, ctx, &parties[i]) == 0)
            started++;
        else
            gocc_waitgroup_done(&sh.wg);
    }
    check(started == PARTIES, "started every party");
    if (started != PARTIES) gocc_ctx_cancel(ctx);
    gocc_waitgroup_wait(&sh.wg, NULL);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    double ms = (double)(gocc_now() - t0) / 1e6;
    int crossings = 2 * ROUNDS;
    check(atomic_load(&sh.errors) == 0, "every Wait returned 0 or BARRIER_SERIAL");
    check(atomic_load(&sh.bad_reads) == 0,
          "after each Wait every party's cell held this round's value");
    check(atomic_load(&sh.bad_bounds) == 0, "nobody passed early and nobody ran a crossing ahead");
    check(atomic_load(&sh.serials) == crossings, "exactly one BARRIER_SERIAL per crossing");
    check(sh.barrier.round == (uint64_t)crossings && sh.barrier.count == 0,
          "the barrier completed every round and is empty");
    printf("B20 rounds: %d tasks x %d rounds (%d crossings) in %.0f ms: %d bad reads, %d early "
           "passes, %d serial callers (one per crossing)\n",
           PARTIES, ROUNDS, crossings, ms, atomic_load(&sh.bad_reads), atomic_load(&sh.bad_bounds),
           atomic_load(&sh.serials));
    barrier_destroy(&sh.barrier);
}

/* ---- a cancelled Wait withdraws ----------------------------------------- */

typedef struct pair_arg {
    barrier_t *b;
    gocc_waitgroup_t *wg;
    atomic_int rc;
} pair_arg_t;

static int pair_task(gocc_ctx_t *ctx, void *arg) {
    pair_arg_t *p = arg;
    atomic_store(&p->rc, barrier_wait(p->b, ctx));
    gocc_waitgroup_done(p->wg);
    return 0;
}

static void b20_withdraw(void) {
    barrier_t b;
    if (barrier_init(&b, 2) != 0) {
        check(false, "made the barrier");
        return;
    }
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 20 * GOCC_MILLISECOND);
    int rc = barrier_wait(&b, ctx); /* alone at a barrier of 2 */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    pthread_mutex_lock(&b.mu);
    int count = b.count;
    pthread_mutex_unlock(&b.mu);
    check(rc == GOCC_EDEADLINE, "a lone Wait with a 20 ms timeout: deadline exceeded");
    check(count == 0, "it withdrew its arrival");

    /* Reused by two tasks: both pass, one of them serial. */
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 5 * GOCC_SECOND); /* a broken run ends */
    pair_arg_t a[2] = {{.b = &b, .wg = &wg, .rc = 99}, {.b = &b, .wg = &wg, .rc = 99}};
    for (int i = 0; i < 2; i++) {
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(pair_task, limit, &a[i]) != 0) gocc_waitgroup_done(&wg);
    }
    gocc_waitgroup_wait(&wg, NULL);
    int r0 = atomic_load(&a[0].rc), r1 = atomic_load(&a[1].rc);
    check(r0 + r1 == BARRIER_SERIAL && (r0 == 0 || r1 == 0),
          "then two tasks passed it together, one of them serial");
    printf("B20 withdraw: a lone Wait(20ms) -> %s, count back to %d; then 2 tasks passed "
           "(returns %d and %d)\n",
           gocc_strerror(rc), count, r0, r1);
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    barrier_destroy(&b);
}

int main(void) {
    b20_rounds();
    b20_withdraw();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B20 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
