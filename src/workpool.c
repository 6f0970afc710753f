/*
 * workpool.c - a worker pool with a bounded queue: backpressure (submit
 * blocks while full), load shedding (try_submit counts what it sheds),
 * graceful and forced shutdown, and adaptive sizing between min and max
 * workers.
 *
 * Workers are coroutines started with gocc__spawn (runtime work on the
 * scheduler): they count in gocc_tasks_live only while they run a job.
 *
 * Where a job goes when it is accepted (under p->mu, in this order):
 *  1. straight to a parked idle worker (claimed and handed the job), or to
 *     a worker made at creation that has not looked for work yet (it counts
 *     as idle: the job waits in p->handoff, counted as running);
 *  2. to a new worker, if fewer than max exist (it starts with the job);
 *  3. into the queue, if fewer than queue_cap are waiting;
 *  otherwise submit blocks (FIFO) and try_submit sheds. With queue_cap 0
 *  only 1 and 2 exist: a hand-off to a worker, as gocc.h says.
 *
 * Invariants (under p->mu):
 *  - submitted == completed + failed + queued + running + dropped; every
 *    counter that moves for one event moves in one critical section, so any
 *    snapshot satisfies it.
 *  - count <= cap. A job is never in two places: the queue, a worker's
 *    hands (running), or a blocked submitter's record (not yet submitted).
 *  - A parked idle worker is on idle_head; a blocked submitter on sub_head.
 *    Whoever unlinks a record claims its waiter and completes it.
 *  - refs: the owner's plus one per worker thread; memory goes with the
 *    last, so a worker's final unlock may follow the owner's free.
 *
 * Who wakes whom: an accepted job wakes the idle worker it was handed to; a
 * worker that frees a queue slot moves the first blocked submitter's job in
 * and wakes that submitter; shutdown wakes every blocked submitter (with
 * GOCC_ESHUTDOWN) and every idle worker (to drain and exit); the last worker
 * to exit wakes the shutdown callers. No busy waiting anywhere.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

enum { POOL_OPEN, POOL_CLOSING };

typedef struct job {
    gocc_fn fn;
    void *arg;
} job;

typedef struct submit_rec { /* a submitter blocked on a full queue */
    gocc__waitrec rec;
    job j;
    int result; /* 0 accepted, GOCC_ESHUTDOWN */
} submit_rec;

typedef struct idle_rec { /* a worker parked for work */
    gocc__waitrec rec;
    job j; /* handed over by the claimer; fn NULL: look again (shutdown) */
} idle_rec;

struct gocc_workpool {
    gocc__mutex mu;
    _Atomic size_t refs;
    _Atomic unsigned worker_seq; /* numbers the workers' names */
    gocc_ctx_t *ctx;             /* the pool context: tasks run with it */
    size_t min, max, cap;
    int64_t idle_ns;
    void (*on_error)(void *, int, gocc_fn, void *);
    void *ud;

    job *ring; /* cap slots */
    size_t head, count;
    uint64_t submitted, rejected, completed, failed, dropped;
    size_t running, workers;
    /* Workers made at creation that have not looked for work yet count as
     * idle (gocc.h): jobs handed to them wait here, counted as running. */
    size_t starting;
    job *handoff; /* min slots */
    size_t handoff_head, nhandoff;
    int state;
    bool forced;
    gocc__waitrec *sub_head, *sub_tail; /* blocked submitters, FIFO */
    gocc__waitrec *idle_head;           /* parked workers, most recent first */
    gocc__waitrec *down_waiters;        /* shutdown callers */
};

/* The pool whose job the caller is running (to refuse a shutdown that
 * would wait for itself) is kept in the worker's waiter (current_pool):
 * a worker is a task, which may move between threads. */

typedef struct start_rec { /* a new worker's first job */
    gocc_workpool_t *p;
    job j;
} start_rec;

static void pool_release(gocc_workpool_t *p) {
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
    gocc_ctx_release(p->ctx);
    gocc__mutex_destroy(&p->mu);
    gocc__free(p->ring);
    gocc__free(p->handoff);
    gocc__live_add(GOCC__LIVE_WORKPOOL, -1);
    gocc__free(p);
}

/* ---- the queue (caller holds p->mu) ---- */

static void ring_push(gocc_workpool_t *p, job j) {
    gocc__assert_held(&p->mu);
    p->ring[(p->head + p->count) % p->cap] = j;
    p->count++;
}

static job ring_pop(gocc_workpool_t *p) {
    gocc__assert_held(&p->mu);
    job j = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->count--;
    return j;
}

/* The first blocked submitter that can be claimed, accepted; NULL if none. */
static submit_rec *take_submitter(gocc_workpool_t *p) {
    gocc__assert_held(&p->mu);
    gocc__waitrec *r;
    while ((r = p->sub_head) != NULL) {
        gocc__waitrec_unlink(&p->sub_head, &p->sub_tail, r);
        if (!gocc__waiter_claim(r->w)) continue; /* its context won */
        submit_rec *sr = gocc__container_of(r, submit_rec, rec);
        sr->result = 0;
        p->submitted++;
        return sr;
    }
    return NULL;
}

/* ---- workers ---- */

static int worker_main(gocc_ctx_t *unused, void *arg);

/* A worker was reserved (workers++) under the lock; start its thread. On
 * failure the reservation and the job's acceptance are undone. */
static int spawn_worker(gocc_workpool_t *p, job j) {
    start_rec *sr = gocc__malloc(sizeof *sr);
    int rc = GOCC_ENOMEM;
    if (sr != NULL) {
        *sr = (start_rec){p, j};
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
        rc = gocc__spawn(worker_main, sr);
        if (rc == 0) return 0;
        atomic_fetch_sub_explicit(&p->refs, 1, memory_order_relaxed);
        gocc__free(sr);
    }
    gocc__lock(&p->mu);
    p->workers--;
    if (j.fn != NULL) {
        p->running--;
        p->submitted--;
    } else {
        p->starting--; /* only at creation, before any submit */
    }
    gocc__unlock(&p->mu);
    return rc;
}

/* The next job for a worker that just finished one (or started), or fn NULL
 * when there is none. A submitter to wake goes on @p wake. Caller holds mu. */
static job next_job_locked(gocc_workpool_t *p, gocc__wakeq *wake) {
    gocc__assert_held(&p->mu);
    job none = {NULL, NULL};
    if (p->forced) return none;
    submit_rec *sr;
    if (p->count > 0) {
        job j = ring_pop(p);
        if ((sr = take_submitter(p)) != NULL) { /* the freed slot is theirs */
            ring_push(p, sr->j);
            gocc__wakeq_signal(wake, sr->rec.w);
        }
        p->running++;
        return j;
    }
    if ((sr = take_submitter(p)) != NULL) { /* queue_cap 0: take it directly */
        gocc__wakeq_signal(wake, sr->rec.w);
        p->running++;
        return sr->j;
    }
    return none;
}

/* The last worker out wakes the shutdown callers (on @p down). Caller
 * holds mu. */
static void worker_exit_locked(gocc_workpool_t *p, gocc__wakeq *down) {
    gocc__assert_held(&p->mu);
    p->workers--;
    if (p->workers == 0) gocc__waitrec_take_all(&p->down_waiters, NULL, down);
}

/* Run job @p j as a task (counted in gocc_tasks_live while it runs, named
 * @p name unless it names itself), account for it, and return the next
 * job at hand (fn NULL: none). @p counted: the job before it handed its
 * count on (back to back, the count stays up: one atomic, not two, and no
 * dip to zero while the pool still has work in hand). */
static job run_job(gocc_workpool_t *p, gocc__waiter *w, job j, const char *name, bool counted) {
    uint64_t id = counted ? gocc__tasks_renew() : gocc__tasks_inc();
    if (w != NULL) w->current_pool = p;
    int rc = gocc__task_run(w, id, j.fn, p->ctx, j.arg, name);
    if (w != NULL) w->current_pool = NULL;
    if (rc != 0 && p->on_error != NULL) p->on_error(p->ud, rc, j.fn, j.arg);
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&p->mu);
    p->running--;
    if (rc == 0)
        p->completed++;
    else
        p->failed++;
    job next = next_job_locked(p, &wake);
    gocc__unlock(&p->mu);
    if (next.fn == NULL) gocc__tasks_dec();
    gocc__wakeq_wake_all(&wake);
    return next;
}

/* Look for work with mu held: first (once, while *starting) a job handed
 * over before this worker looked, then the queue and the blocked
 * submitters. fn NULL: none. */
static job find_job_locked(gocc_workpool_t *p, bool *starting, gocc__wakeq *wake) {
    gocc__assert_held(&p->mu);
    if (*starting) {
        /* Stop counting as "starting" in the same critical section in
         * which we take a job or park: never neither (a hand-off would be
         * shed in between). Jobs handed to us early come first; they
         * already count as running. */
        *starting = false;
        p->starting--;
        if (p->nhandoff > 0) {
            job j = p->handoff[p->handoff_head];
            p->handoff_head = (p->handoff_head + 1) % p->min;
            p->nhandoff--;
            return j;
        }
    }
    return next_job_locked(p, wake);
}

/* Park for work, entered with mu held (it is dropped): until a submitter
 * or shutdown claims us, returning the job it handed over (fn NULL: look
 * again); a surplus worker only for idle_ns, after which, if still
 * surplus, it leaves the pool (*leave; the shutdown callers to wake go on
 * @p down). */
static job park_idle_locked(gocc_workpool_t *p, gocc__waiter *w, bool *leave, gocc__wakeq *down) {
    gocc__assert_held(&p->mu);
    bool surplus = p->workers > p->min;
    idle_rec ir = {.rec = {.w = w}};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&p->idle_head, NULL, &ir.rec);
    gocc__unlock(&p->mu);
    while (surplus && !gocc__park_until(w, gocc_now() + p->idle_ns)) {
        gocc__lock(&p->mu);
        if (!ir.rec.queued) { /* claimed meanwhile: the wake is coming */
            gocc__unlock(&p->mu);
            break;
        }
        /* Decide again now: idle surplus workers time out together, and
         * only those above min may go. */
        surplus = p->workers > p->min;
        if (surplus) {
            gocc__waitrec_unlink(&p->idle_head, NULL, &ir.rec);
            worker_exit_locked(p, down);
            gocc__unlock(&p->mu);
            *leave = true;
            return ir.j;
        }
        gocc__unlock(&p->mu);
    }
    gocc__park(w); /* at once if already woken; else until claimed */
    return ir.j;   /* written by the claimer before the wake */
}

/* A worker: run jobs while there are any, park while the pool is open,
 * exit once it is drained (or as a surplus worker that idled too long). */
static int worker_main(gocc_ctx_t *unused, void *arg) {
    (void)unused;
    start_rec *sr = arg;
    gocc_workpool_t *p = sr->p;
    job j = sr->j;
    gocc__free(sr);
    gocc__waiter *w = gocc__self_try();
    gocc__wakeq down = GOCC__WAKEQ_INIT;
    char name[32]; /* "workpool-3": each job's default task name */
    snprintf(name, sizeof name, "workpool-%u",
             atomic_fetch_add_explicit(&p->worker_seq, 1, memory_order_relaxed) + 1);

    bool starting = j.fn == NULL; /* made at creation: counted as idle */
    bool leave = false;
    while (!leave) {
        for (bool counted = false; j.fn != NULL; counted = true)
            j = run_job(p, w, j, name, counted);
        gocc__wakeq wake = GOCC__WAKEQ_INIT;
        gocc__lock(&p->mu);
        j = find_job_locked(p, &starting, &wake);
        if (j.fn != NULL) {
            gocc__unlock(&p->mu);
            gocc__wakeq_wake_all(&wake);
        } else if (p->state != POOL_OPEN || w == NULL) { /* drained: exit */
            worker_exit_locked(p, &down);
            gocc__unlock(&p->mu);
            leave = true;
        } else {
            j = park_idle_locked(p, w, &leave, &down);
        }
    }
    gocc__wakeq_wake_all(&down);
    pool_release(p);
    return 0;
}

/* ---- construction ---- */

gocc_workpool_t *gocc_workpool_new_opts(const gocc_workpool_options_t *o, gocc_ctx_t *parent) {
    if (o == NULL || o->max_workers == 0 || o->min_workers > o->max_workers ||
        o->idle_timeout_ns < 0) {
        errno = EINVAL;
        return NULL;
    }
    gocc_workpool_t *p = gocc__calloc(1, sizeof *p);
    if (p == NULL) goto nomem;
    if (o->queue_cap > 0 && (p->ring = gocc__calloc(o->queue_cap, sizeof(job))) == NULL)
        goto nomem_free;
    if (o->min_workers > 0 && (p->handoff = gocc__calloc(o->min_workers, sizeof(job))) == NULL)
        goto nomem_free;
    if ((p->ctx = gocc_ctx_with_cancel(parent)) == NULL) goto nomem_free;
    gocc__mutex_init(&p->mu, GOCC_LOCK_WORKPOOL);
    atomic_init(&p->refs, 1);
    gocc__live_add(GOCC__LIVE_WORKPOOL, 1);
    p->min = o->min_workers;
    p->max = o->max_workers;
    p->cap = o->queue_cap;
    p->idle_ns = o->idle_timeout_ns ? o->idle_timeout_ns : GOCC_SECOND;
    p->on_error = o->on_error;
    p->ud = o->ud;
    for (size_t i = 0; i < p->min; i++) {
        gocc__lock(&p->mu);
        p->workers++;
        p->starting++;
        gocc__unlock(&p->mu);
        int rc = spawn_worker(p, (job){NULL, NULL});
        if (rc != 0) {
            gocc_workpool_free(p);
            errno = -rc;
            return NULL;
        }
    }
    return p;
nomem_free:
    gocc__free(p->ring);
    gocc__free(p->handoff);
    gocc__free(p);
nomem:
    errno = ENOMEM;
    return NULL;
}

gocc_workpool_t *gocc_workpool_new(size_t workers, size_t queue_cap, gocc_ctx_t *parent) {
    gocc_workpool_options_t o = {.min_workers = workers,
                                 .max_workers = workers,
                                 .queue_cap = queue_cap};
    return gocc_workpool_new_opts(&o, parent);
}

/* ---- submission ---- */

enum { ACCEPTED, ACCEPTED_SPAWN, FULL };

/* Accept j without blocking if there is room; caller holds mu, pool open.
 * @p grow: a new worker may be reserved (ACCEPTED_SPAWN). */
static int accept_locked(gocc_workpool_t *p, job j, gocc__wakeq *wake, bool grow) {
    gocc__assert_held(&p->mu);
    gocc__waitrec *r;
    while ((r = p->idle_head) != NULL) {
        gocc__waitrec_unlink(&p->idle_head, NULL, r);
        if (!gocc__waiter_claim(r->w)) continue;
        gocc__container_of(r, idle_rec, rec)->j = j;
        gocc__wakeq_signal(wake, r->w);
        p->submitted++;
        p->running++;
        return ACCEPTED;
    }
    if (p->starting > p->nhandoff) { /* a worker still starting: it takes j */
        p->handoff[(p->handoff_head + p->nhandoff) % p->min] = j;
        p->nhandoff++;
        p->submitted++;
        p->running++;
        return ACCEPTED;
    }
    if (grow && p->workers < p->max) { /* grow: a new worker starts with j */
        p->workers++;
        p->submitted++;
        p->running++;
        return ACCEPTED_SPAWN;
    }
    /* Queue only behind a worker that exists: with none (growing failed)
     * nobody would ever take j out. (Found by the fault walk of
     * tests/test-fault.c: a job queued that way was never run.) */
    if (p->count < p->cap && p->workers > 0) {
        ring_push(p, j);
        p->submitted++;
        return ACCEPTED;
    }
    return FULL;
}

/* A new worker was reserved for j (ACCEPTED_SPAWN): start it. If no thread
 * can be made, the reservation is undone and j goes to a worker that went
 * idle meanwhile, or into the queue behind an existing worker; else it was
 * not accepted and the error is returned. */
static int spawn_or_place(gocc_workpool_t *p, job j) {
    int rc = spawn_worker(p, j);
    if (rc == 0) return 0;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&p->mu);
    if (p->state != POOL_OPEN)
        rc = GOCC_ESHUTDOWN;
    else if (accept_locked(p, j, &wake, false) == ACCEPTED)
        rc = 0;
    gocc__unlock(&p->mu);
    gocc__wakeq_wake_all(&wake);
    return rc;
}

/* A submit's try under mu: GOCC_ESHUTDOWN once the pool closes, else
 * accept_locked's answer (ACCEPTED is 0). */
static int submit_locked(gocc_workpool_t *p, job j, gocc__wakeq *wake) {
    gocc__assert_held(&p->mu);
    if (p->state != POOL_OPEN) return GOCC_ESHUTDOWN;
    return accept_locked(p, j, wake, true);
}

/* One try: 0, GOCC_ESHUTDOWN, GOCC_EAGAIN (full), or spawn_or_place's. */
static int try_accept(gocc_workpool_t *p, job j) {
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&p->mu);
    int a = submit_locked(p, j, &wake);
    gocc__unlock(&p->mu);
    gocc__wakeq_wake_all(&wake);
    if (a == FULL) return GOCC_EAGAIN;
    return a == ACCEPTED_SPAWN ? spawn_or_place(p, j) : a;
}

int gocc_workpool_try_submit(gocc_workpool_t *p, gocc_fn fn, void *arg) {
    if (p == NULL || fn == NULL) return GOCC_EINVAL;
    int rc = try_accept(p, (job){fn, arg});
    if (rc == GOCC_EAGAIN) {
        GOCC_PROBE1(pool_shed, (uintptr_t)p);
        gocc__lock(&p->mu);
        p->rejected++;
        gocc__unlock(&p->mu);
    }
    return rc;
}

int gocc_workpool_submit(gocc_workpool_t *p, gocc_fn fn, void *arg, gocc_ctx_t *ctx) {
    if (p == NULL || fn == NULL) return GOCC_EINVAL;
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err; /* a context already done wins */
    job j = {fn, arg};
    int rc = try_accept(p, j);
    if (rc != GOCC_EAGAIN) return rc;

    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;

    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&p->mu);
    int a = submit_locked(p, j, &wake);
    if (a != FULL) { /* room appeared (or the pool closed) meanwhile */
        gocc__unlock(&p->mu);
        gocc__wakeq_wake_all(&wake);
        return a == ACCEPTED_SPAWN ? spawn_or_place(p, j) : a;
    }
    submit_rec sr = {.rec = {.w = w}, .j = j};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&p->sub_head, &p->sub_tail, &sr.rec);
    gocc__unlock(&p->mu);

    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_WORKPOOL_SUBMIT, p, 0);
    if (r == 0) return sr.result; /* accepted, or refused by shutdown */
    gocc__lock(&p->mu);
    if (sr.rec.queued) gocc__waitrec_unlink(&p->sub_head, &p->sub_tail, &sr.rec);
    gocc__unlock(&p->mu);
    return r;
}

/* ---- shutdown ---- */

/* Wait until every worker has exited (ctx may end the wait first). */
static int wait_workers(gocc_workpool_t *p, gocc_ctx_t *ctx) {
    int err;
    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;
    gocc__lock(&p->mu);
    if (p->workers == 0) {
        gocc__unlock(&p->mu);
        return 0;
    }
    gocc__waitrec rec = {.w = w};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&p->down_waiters, NULL, &rec);
    gocc__unlock(&p->mu);
    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_WORKPOOL_SHUTDOWN, p, 0);
    if (r != 0) {
        gocc__lock(&p->mu);
        if (rec.queued) gocc__waitrec_unlink(&p->down_waiters, NULL, &rec);
        gocc__unlock(&p->mu);
    }
    return r;
}

int gocc_workpool_shutdown(gocc_workpool_t *p, gocc_ctx_t *ctx) {
    gocc__waiter *self = gocc__self_peek();
    if (p == NULL || (self != NULL && self->current_pool == p))
        return GOCC_EINVAL; /* would wait for itself */
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&p->mu);
    if (p->state == POOL_OPEN) {
        p->state = POOL_CLOSING;
        submit_rec *sr;
        gocc__waitrec *r;
        while ((r = p->sub_head) != NULL) { /* refuse blocked submitters */
            gocc__waitrec_unlink(&p->sub_head, &p->sub_tail, r);
            if (!gocc__waiter_claim(r->w)) continue;
            sr = gocc__container_of(r, submit_rec, rec);
            sr->result = GOCC_ESHUTDOWN;
            gocc__wakeq_signal(&wake, r->w);
        }
        /* Idle workers: drain, then exit (their job stays fn NULL). */
        gocc__waitrec_take_all(&p->idle_head, NULL, &wake);
    }
    gocc__unlock(&p->mu);
    gocc__wakeq_wake_all(&wake);

    int err = gocc_ctx_err(ctx);
    /* No memory to wait with (our waiter, ctx's done channel) is no reason
     * to drop jobs that were accepted: try again until we can wait, or ctx
     * ends. (Found by the fault walk of tests/test-fault.c: a graceful
     * shutdown became a forced one and dropped the queue.) */
    while (err == 0 && (err = wait_workers(p, ctx)) == GOCC_ENOMEM) {
        struct timespec pause = {0, (long)GOCC_MILLISECOND};
        nanosleep(&pause, NULL);
        err = gocc_ctx_err(ctx);
    }
    if (err != 0) { /* forced: stop running tasks, drop the queue */
        gocc__lock(&p->mu);
        p->forced = true;
        p->dropped += p->count;
        p->count = 0;
        gocc__unlock(&p->mu);
        gocc_ctx_cancel(p->ctx);
        while (wait_workers(p, NULL) != 0) { /* only ENOMEM: cannot park */
            /* Not gocc_sleep: short of memory it may get no timer, and not sleep. */
            struct timespec pause = {0, (long)GOCC_MILLISECOND};
            nanosleep(&pause, NULL);
        }
    }
    gocc_ctx_cancel(p->ctx);
    return err;
}

void gocc_workpool_stats(gocc_workpool_t *p, gocc_workpool_stats_t *out) {
    if (p == NULL || out == NULL) return;
    gocc__lock(&p->mu);
    *out = (gocc_workpool_stats_t){
        .submitted = p->submitted,
        .rejected = p->rejected,
        .completed = p->completed,
        .failed = p->failed,
        .queued = p->count,
        .running = p->running,
        .workers = p->workers,
        .dropped = p->dropped,
    };
    gocc__unlock(&p->mu);
}

void gocc_workpool_free(gocc_workpool_t *p) {
    if (p == NULL) return;
    (void)gocc_workpool_shutdown(p, NULL);
    pool_release(p);
}
