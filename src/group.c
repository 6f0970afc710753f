/*
 * group.c - error groups (golang.org/x/sync/errgroup): tasks started for one
 * job, a limit on how many run at once, the first error cancelling the
 * group context, wait collecting it.
 *
 * Group tasks are ordinary runtime tasks (cached threads, counted by
 * gocc_tasks_live) started with gocc__go_ex, whose exit hook tells the group
 * a task finished: no allocation per task.
 *
 * Invariants (under g->mu):
 *  - active counts tasks admitted and not yet finished (a slot handed to a
 *    waiting go() counts from the moment it is handed over).
 *  - limit < 0 or active <= limit.
 *  - err is the first non-zero task result of the group's life, set once.
 *  - refs: the owner's plus one per admitted task; memory goes with the
 *    last, so a task's exit hook may finish after gocc_group_free returned.
 *
 * Who wakes whom: a finishing task hands its slot to the first go() blocked
 * at the limit (claiming it, FIFO) and, when active reaches 0, wakes every
 * wait(). A go() whose parent context wins leaves the queue empty-handed.
 *
 * A done parent (or group context) does not stop admission: a go() or
 * try_go() that finds a free slot starts its task, which sees the done
 * context, as errgroup.Go does. The parent only ends a go() that has to wait
 * for a slot (at once when it is already done).
 *
 * Lock order: g->mu is taken alone; the group context is cancelled after it
 * is dropped.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <stdio.h>

struct gocc_group {
    gocc__mutex mu;
    _Atomic size_t refs;
    gocc_ctx_t *parent; /* retained */
    gocc_ctx_t *ctx;    /* the group context, child of parent */
    int limit;          /* < 0: none */
    size_t active;
    int err;
    gocc__waitrec *slot_head, *slot_tail; /* go() blocked at the limit, FIFO */
    gocc__waitrec *idle_waiters;          /* wait() callers */
    char name[24];                        /* "group-7": its tasks' default name */
};

static bool has_slot(gocc_group_t *g) { return g->limit < 0 || g->active < (size_t)g->limit; }

static void group_release(gocc_group_t *g) {
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1) return;
    gocc_ctx_release(g->ctx);
    gocc_ctx_release(g->parent);
    gocc__mutex_destroy(&g->mu);
    gocc__free(g);
}

gocc_group_t *gocc_group_new(gocc_ctx_t *parent) {
    gocc_group_t *g = gocc__calloc(1, sizeof *g);
    if (g == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    g->ctx = gocc_ctx_with_cancel(parent);
    if (g->ctx == NULL) {
        gocc__free(g);
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&g->mu, GOCC_LOCK_GROUP);
    atomic_init(&g->refs, 1);
    g->parent = gocc_ctx_retain(parent ? parent : gocc_ctx_background());
    g->limit = -1;
    static _Atomic unsigned group_seq;
    snprintf(g->name, sizeof g->name, "group-%u",
             atomic_fetch_add_explicit(&group_seq, 1, memory_order_relaxed) + 1);
    return g;
}

gocc_ctx_t *gocc_group_ctx(gocc_group_t *g) { return g ? g->ctx : NULL; }

/* Hand free slots to blocked go() callers (claimed ones go on @p wake);
 * caller holds mu. */
static void hand_slots_locked(gocc_group_t *g, gocc__wakeq *wake) {
    gocc__assert_held(&g->mu);
    gocc__waitrec *r;
    while (has_slot(g) && (r = g->slot_head) != NULL) {
        gocc__waitrec_unlink(&g->slot_head, &g->slot_tail, r);
        if (!gocc__waiter_claim(r->w)) continue; /* its context won */
        g->active++;
        gocc__wakeq_signal(wake, r->w);
    }
}

/* One admitted task is gone (finished, or never started); caller holds mu. */
static void task_gone_locked(gocc_group_t *g, gocc__wakeq *wake) {
    gocc__assert_held(&g->mu);
    g->active--;
    hand_slots_locked(g, wake);
    if (g->active == 0) gocc__waitrec_take_all(&g->idle_waiters, NULL, wake);
}

int gocc_group_set_limit(gocc_group_t *g, int n) {
    if (g == NULL) return GOCC_EINVAL;
    gocc__lock(&g->mu);
    if (g->active > 0) {
        gocc__unlock(&g->mu);
        return GOCC_EINVAL;
    }
    g->limit = n < 0 ? -1 : n;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    hand_slots_locked(g, &wake); /* a raised limit admits waiters */
    gocc__unlock(&g->mu);
    gocc__wakeq_wake_all(&wake);
    return 0;
}

/* Runs on the task's thread right after fn returned. */
static void task_exit(void *arg, int rc) {
    gocc_group_t *g = arg;
    bool first = false;
    gocc__lock(&g->mu);
    if (rc != 0 && g->err == 0) {
        g->err = rc;
        first = true;
    }
    gocc__unlock(&g->mu);
    if (first) gocc_ctx_cancel_cause(g->ctx, rc); /* before anyone can see active drop */

    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&g->mu);
    task_gone_locked(g, &wake);
    gocc__unlock(&g->mu);
    gocc__wakeq_wake_all(&wake);
    group_release(g);
}

/* Admit one task (wait for a slot if @p block). Returns 0 with a slot
 * taken, or an error with nothing taken. A free slot is taken whatever the
 * state of the parent or group context (errgroup.Go starts the task, which
 * sees the done context); only the wait for a slot answers to the parent,
 * and a parent already done wins over that wait. */
static int admit(gocc_group_t *g, bool block) {
    gocc__lock(&g->mu);
    if (has_slot(g)) {
        g->active++;
        gocc__unlock(&g->mu);
        return 0;
    }
    int limit = g->limit;
    gocc__unlock(&g->mu);
    if (!block) return GOCC_EAGAIN;

    int err = gocc_ctx_err(g->parent);
    if (err != 0) return err; /* we would have to wait: a parent already done wins */
    gocc_chan_t *done = gocc__ctx_done_chan(g->parent, &err);
    if (err != 0) return err;
    if (done == NULL && limit == 0) return GOCC_EINVAL; /* nothing can ever proceed */
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;

    gocc__lock(&g->mu);
    if (has_slot(g)) {
        g->active++;
        gocc__unlock(&g->mu);
        return 0;
    }
    gocc__waitrec rec = {.w = w};
    gocc__waiter_arm(w);
    gocc__waitrec_push(&g->slot_head, &g->slot_tail, &rec);
    gocc__unlock(&g->mu);

    int r = gocc__wait_armed(w, done, g->parent, GOCC_WAIT_GROUP_GO, g, 0);
    if (r == 0) return 0; /* a finishing task handed us its slot */
    gocc__lock(&g->mu);
    if (rec.queued) gocc__waitrec_unlink(&g->slot_head, &g->slot_tail, &rec);
    gocc__unlock(&g->mu);
    return r;
}

static int group_go(gocc_group_t *g, gocc_fn fn, void *arg, bool block) {
    if (g == NULL || fn == NULL) return GOCC_EINVAL;
    int err = admit(g, block);
    if (err != 0) return err;

    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed); /* the task's */
    int rc = gocc__go_ex(fn, g->ctx, arg, task_exit, g, g->name);
    if (rc == 0) return 0;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&g->mu);
    task_gone_locked(g, &wake);
    gocc__unlock(&g->mu);
    gocc__wakeq_wake_all(&wake);
    atomic_fetch_sub_explicit(&g->refs, 1, memory_order_relaxed); /* ours stays */
    return rc;
}

int gocc_group_go(gocc_group_t *g, gocc_fn fn, void *arg) { return group_go(g, fn, arg, true); }

int gocc_group_try_go(gocc_group_t *g, gocc_fn fn, void *arg) {
    return group_go(g, fn, arg, false);
}

/* Wait until no task is active; returns the group's first error. */
static int wait_idle(gocc_group_t *g) {
    gocc__waiter *w = gocc__self(); /* see below: a waiter made up front */
    gocc__lock(&g->mu);
    if (g->active > 0) {
        gocc__waitrec rec = {.w = w};
        gocc__waiter_arm(w);
        gocc__waitrec_push(&g->idle_waiters, NULL, &rec);
        gocc__unlock(&g->mu);
        (void)gocc__wait_armed(w, NULL, NULL, GOCC_WAIT_GROUP_WAIT, g, 0);
        gocc__lock(&g->mu);
    }
    int err = g->err;
    gocc__unlock(&g->mu);
    return err;
}

int gocc_group_wait(gocc_group_t *g) {
    if (g == NULL) return GOCC_EINVAL;
    if (gocc__self_try() == NULL) return GOCC_ENOMEM;
    int err = wait_idle(g);
    gocc_ctx_cancel_cause(g->ctx, err);
    return err;
}

void gocc_group_free(gocc_group_t *g) {
    if (g == NULL) return;
    if (gocc__self_try() != NULL) (void)wait_idle(g);
    /* else: cannot park; the tasks' references keep g alive until they end */
    gocc_ctx_cancel(g->ctx);
    group_release(g);
}
