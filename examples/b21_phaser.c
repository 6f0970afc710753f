/*
 * b21_phaser.c - B21 (chapter 9, "Phaser Pattern"): multi-phase
 * synchronisation with a changing set of parties (Java's Phaser).
 * Register() adds a party; ArriveAndAwaitAdvance() waits until every
 * registered party has arrived, then all move to the next phase; here also
 * ArriveAndDeregister(), which arrives and leaves (no wait), so parties
 * can join and leave between phases.
 *
 * The seed's Phaser keeps phase, registered and arrived in separate
 * atomics and shares B20's races: `arrived == registered` compares two
 * loads that other parties change in between (two parties can both see
 * themselves last, or none does), Register during a phase races with the
 * comparison, and `<-p.barrier` reads the field the last arrival
 * replaces. Here one mutex guards phase, registered, arrived and the
 * phase's channel, so "am I the last?" and the advance are one step; the
 * advance closes the old phase's channel (a broadcast) after unlocking.
 * Register returns the phase the new party joins: the current one, which
 * cannot end before the newcomer arrives. Waits take a ctx: when it ends
 * the caller withdraws its arrival (the phase is as if it never came).
 *
 * b21_phases: 4 workers registered, 100 phases. In phase p each active
 *   worker writes cells[p % 2][me] = p (plain ints), arrives, and after the
 *   advance reads every active worker's cell of phase p (double-buffered,
 *   so phase p + 1's writes cannot disturb a phase p reader). Worker 3
 *   leaves in phase 50 (ArriveAndDeregister after its write); in phase 60
 *   worker 0 registers worker 4 (before it arrives itself, so worker 4
 *   joins phase 60 exactly) and starts it. An arrivals counter per phase
 *   must equal that phase's parties: 4, then 3 in phases 51..59, then 4.
 * b21_withdraw: 2 parties, one ArriveAndAwaitAdvance with a 20 ms timeout:
 *   deadline exceeded, the arrival withdrawn, the phase unchanged.
 *
 * Go -> C: the atomics and channel become one struct under a pthread mutex
 * (the lesson's lock) with a gocc channel of elem_size 0 per phase;
 * goroutines are gocc_go tasks joined with a gocc_waitgroup_t, which
 * worker 0 Adds to before it starts worker 4 (Add before go, while its
 * own count still holds the group open).
 *
 * Checks: each ArriveAndAwaitAdvance returns p + 1, every cell read, the
 * per-phase arrivals, the join phase (60), the final phase (100) and
 * parties (4), the withdrawal, gocc_tasks_live() == 0 at the end. Exit 1
 * if wrong.
 */
#include <gocc.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B21", ok, what)

/* ---- the phaser ------------------------------------------------------------- */

typedef struct phaser {
    pthread_mutex_t mu; /* protects everything below */
    int phase;
    int registered;       /* parties */
    int arrived;          /* parties arrived in this phase */
    gocc_chan_t *advance; /* this phase's: closed when it ends */
} phaser_t;

static int phaser_init(phaser_t *p) {
    *p = (phaser_t){.advance = gocc_chan_new(0, 0)};
    pthread_mutex_init(&p->mu, NULL);
    return p->advance ? 0 : GOCC_ENOMEM;
}

static void phaser_destroy(phaser_t *p) {
    gocc_chan_release(p->advance);
    pthread_mutex_destroy(&p->mu);
}

/* Caller holds p->mu and every party has arrived: start the next phase.
 * Returns the old phase's channel, which the caller closes and releases
 * after unlocking; NULL (nothing changed) when no channel could be made. */
static gocc_chan_t *advance_locked(phaser_t *p) {
    gocc_chan_t *fresh = gocc_chan_new(0, 0);
    if (!fresh) return NULL;
    gocc_chan_t *old = p->advance;
    p->advance = fresh;
    p->arrived = 0;
    p->phase++;
    return old;
}

static void wake(gocc_chan_t *old) {
    gocc_chan_close(old);
    gocc_chan_release(old);
}

/* Register: one more party. @return the phase it joins. */
static int phaser_register(phaser_t *p) {
    pthread_mutex_lock(&p->mu);
    p->registered++;
    int phase = p->phase;
    pthread_mutex_unlock(&p->mu);
    return phase;
}

static int phaser_phase(phaser_t *p, int *registered, int *arrived) {
    pthread_mutex_lock(&p->mu);
    int phase = p->phase;
    if (registered) *registered = p->registered;
    if (arrived) *arrived = p->arrived;
    pthread_mutex_unlock(&p->mu);
    return phase;
}

/* ArriveAndAwaitAdvance. @return the new phase number; ctx's error
 * (withdrawn); GOCC_ENOMEM. */
static int phaser_arrive_and_await(phaser_t *p, gocc_ctx_t *ctx) {
    pthread_mutex_lock(&p->mu);
    int phase = p->phase;
    if (p->arrived + 1 == p->registered) { /* the last one */
        gocc_chan_t *old = advance_locked(p);
        pthread_mutex_unlock(&p->mu);
        if (!old) return GOCC_ENOMEM;
        wake(old);
        return phase + 1;
    }
    p->arrived++;
    gocc_chan_t *mine = gocc_chan_retain(p->advance);
    pthread_mutex_unlock(&p->mu);

    int rc = gocc_chan_recv(mine, NULL, ctx);
    if (rc != GOCC_ECLOSED) { /* ctx ended: withdraw, unless the phase just ended */
        pthread_mutex_lock(&p->mu);
        if (p->phase == phase)
            p->arrived--;
        else
            rc = GOCC_ECLOSED;
        pthread_mutex_unlock(&p->mu);
    }
    gocc_chan_release(mine);
    return rc == GOCC_ECLOSED ? phase + 1 : rc;
}

/* ArriveAndDeregister: arrive in this phase and leave, without waiting.
 * @return the phase it arrived in, or GOCC_ENOMEM (still registered). */
static int phaser_arrive_and_deregister(phaser_t *p) {
    pthread_mutex_lock(&p->mu);
    int phase = p->phase;
    gocc_chan_t *old = NULL;
    if (p->arrived == p->registered - 1 && p->registered > 1) { /* it was the last awaited */
        if (!(old = advance_locked(p))) {
            pthread_mutex_unlock(&p->mu);
            return GOCC_ENOMEM;
        }
    }
    p->registered--;
    pthread_mutex_unlock(&p->mu);
    if (old) wake(old);
    return phase;
}

/* ---- phases with parties leaving and joining ------------------------------- */

#define WORKERS 4 /* registered at the start */
#define MAX_PARTIES 5
#define PHASES 100
#define LEAVER 3
#define LEAVE_AT 50 /* worker 3's last phase */
#define JOINER 4
#define JOIN_AT 60 /* worker 4's first phase */

typedef struct shared {
    phaser_t ph;
    int cells[2][MAX_PARTIES]; /* plain ints: the phaser must order them */
    atomic_int arrivals[PHASES];
    atomic_int join_phase; /* worker 4's first phase; INT_MAX until it registers */
    atomic_int bad_reads, bad_phase, bad_arrivals, errors;
    gocc_waitgroup_t wg;
    gocc_ctx_t *ctx; /* ends a broken run */
} shared_t;

typedef struct worker {
    shared_t *sh;
    int id;
    int first; /* the phase it starts in */
} worker_t;

static worker_t workers[MAX_PARTIES];

/* Phase p's parties. */
static int parties(int p) { return 3 + (p <= LEAVE_AT) + (p >= JOIN_AT); }

static bool active(shared_t *sh, int j, int p) {
    if (j == LEAVER) return p <= LEAVE_AT;
    if (j == JOINER) return atomic_load(&sh->join_phase) <= p;
    return true;
}

static int worker_task(gocc_ctx_t *ctx, void *arg);

/* Worker 0 in phase JOIN_AT: register worker 4 (it joins this phase, which
 * cannot end before worker 0 arrives) and start it. */
static void add_joiner(shared_t *sh) {
    int phase = phaser_register(&sh->ph);
    atomic_store(&sh->join_phase, phase);
    workers[JOINER] = (worker_t){.sh = sh, .id = JOINER, .first = phase};
    gocc_waitgroup_add(&sh->wg, 1); /* Add before go */
    if (gocc_go(worker_task, sh->ctx, &workers[JOINER]) != 0) {
        gocc_waitgroup_done(&sh->wg);
        phaser_arrive_and_deregister(&sh->ph); /* take its place back */
        atomic_fetch_add(&sh->errors, 1);
    }
}

static int worker_task(gocc_ctx_t *ctx, void *arg) {
    worker_t *w = arg;
    shared_t *sh = w->sh;
    for (int p = w->first; p < PHASES; p++) {
        if (w->id == 0 && p == JOIN_AT) add_joiner(sh);
        sh->cells[p % 2][w->id] = p;
        atomic_fetch_add(&sh->arrivals[p], 1);
        if (w->id == LEAVER && p == LEAVE_AT) { /* its last phase: arrive and leave */
            if (phaser_arrive_and_deregister(&sh->ph) != p) atomic_fetch_add(&sh->bad_phase, 1);
            break;
        }
        int next = phaser_arrive_and_await(&sh->ph, ctx);
        if (next < 0) {
            atomic_fetch_add(&sh->errors, 1);
            break;
        }
        if (next != p + 1) atomic_fetch_add(&sh->bad_phase, 1);
        if (atomic_load(&sh->arrivals[p]) != parties(p)) atomic_fetch_add(&sh->bad_arrivals, 1);
        for (int j = 0; j < MAX_PARTIES; j++)
            if (active(sh, j, p) && sh->cells[p % 2][j] != p) atomic_fetch_add(&sh->bad_reads, 1);
    }
    gocc_waitgroup_done(&sh->wg);
    return 0;
}

static void b21_phases(void) {
    static shared_t sh; /* static: zeroed */
    sh.wg = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    atomic_store(&sh.join_phase, INT_MAX);
    sh.ctx = gocc_ctx_with_timeout(NULL, 10 * GOCC_SECOND);
    if (!sh.ctx || phaser_init(&sh.ph) != 0) {
        check(false, "made the phaser");
        gocc_ctx_release(sh.ctx);
        return;
    }
    int64_t t0 = gocc_now();
    int started = 0;
    for (int i = 0; i < WORKERS; i++) phaser_register(&sh.ph); /* all before any starts */
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker_t){.sh = &sh, .id = i, .first = 0};
        gocc_waitgroup_add(&sh.wg, 1);
        if (gocc_go(worker_task, sh.ctx, &workers[i]) == 0)
            started++;
        else
            gocc_waitgroup_done(&sh.wg);
    }
    check(started == WORKERS, "started the workers");
    if (started != WORKERS) gocc_ctx_cancel(sh.ctx); /* the others would wait forever */
    gocc_waitgroup_wait(&sh.wg, NULL);
    double ms = (double)(gocc_now() - t0) / 1e6;
    int registered, arrived;
    int phase = phaser_phase(&sh.ph, &registered, &arrived);

    check(atomic_load(&sh.errors) == 0, "no wait failed");
    check(atomic_load(&sh.join_phase) == JOIN_AT, "worker 4 joined in phase 60");
    check(atomic_load(&sh.bad_phase) == 0, "every ArriveAndAwaitAdvance in phase p returned p + 1");
    check(atomic_load(&sh.bad_arrivals) == 0, "each phase advanced with exactly its parties");
    check(atomic_load(&sh.bad_reads) == 0,
          "after each advance every active party's cell was written");
    check(phase == PHASES && registered == 4 && arrived == 0,
          "ended in phase 100 with 4 parties, none waiting");
    printf("B21 phases: %d phases in %.0f ms; parties 4, worker 3 left in phase %d (3 parties), "
           "worker 4 joined in phase %d (4 again); end: phase %d, %d registered; %d bad reads, "
           "%d wrong counts\n",
           phase, ms, LEAVE_AT, atomic_load(&sh.join_phase), phase, registered,
           atomic_load(&sh.bad_reads), atomic_load(&sh.bad_arrivals) + atomic_load(&sh.bad_phase));
    gocc_ctx_cancel(sh.ctx);
    gocc_ctx_release(sh.ctx);
    phaser_destroy(&sh.ph);
}

/* ---- a cancelled wait withdraws ------------------------------------------ */

static void b21_withdraw(void) {
    phaser_t ph;
    if (phaser_init(&ph) != 0) {
        check(false, "made the phaser");
        return;
    }
    phaser_register(&ph);
    phaser_register(&ph);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 20 * GOCC_MILLISECOND);
    int rc = phaser_arrive_and_await(&ph, ctx); /* the other party never comes */
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    int registered, arrived;
    int phase = phaser_phase(&ph, &registered, &arrived);
    check(rc == GOCC_EDEADLINE, "a wait with a 20 ms timeout: deadline exceeded");
    check(phase == 0 && registered == 2 && arrived == 0, "it withdrew: phase 0, nobody arrived");
    /* With the other party gone the remaining one advances alone. */
    int left = phaser_arrive_and_deregister(&ph);
    int next = phaser_arrive_and_await(&ph, NULL);
    check(left == 0 && next == 1, "after the other deregistered, the wait advanced to phase 1");
    printf("B21 withdraw: ArriveAndAwaitAdvance(20ms) -> %s, phase %d, %d arrived; the other "
           "party deregisters -> the lone one advances to phase %d\n",
           gocc_strerror(rc), phase, arrived, next);
    phaser_destroy(&ph);
}

int main(void) {
    b21_phases();
    b21_withdraw();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B21 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
