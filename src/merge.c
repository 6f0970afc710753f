/*
 * merge.c - gocc_chan_merge, Go's FanIn: one forwarding task per input
 * copies every value it receives to the output; the last one to finish
 * closes the output.
 *
 * All or nothing. A task cannot be "unstarted", and a forwarder that has
 * started may already have moved a value, so every forwarder first waits
 * at a gate (a waitgroup at 1) and touches no channel before it opens.
 * When all n are running, the caller opens the gate and they forward. If
 * starting one fails, the caller sets `aborted`, opens the gate, and waits
 * until each task already started has seen it: those return at once,
 * without receiving, sending or closing anything. So a failed call took no
 * value, left out open, and once it returns none of its tasks can touch a
 * channel (they stop counting in gocc_tasks_live a moment later, when the
 * runtime has put their threads back, as for any task).
 *
 * Invariants:
 *  - left counts the forwarders of a successful start that have not
 *    finished; the one that takes it to 0 closes out. Nobody else here
 *    closes out (n == 0 is closed by the caller: no task exists).
 *  - refs: the caller's while it starts the tasks, plus one per started
 *    task; the last reference drops the channel references and frees m,
 *    so the channels stay retained until every task has ended.
 *  - aborted is written before the gate opens and read after the gate
 *    wait returned: the waitgroup orders the two (it is atomic anyway).
 *
 * A forwarder stops when its input is closed and drained, when ctx is done
 * (a value it had received but not yet sent is dropped), or when a send
 * fails (out was closed by someone else, against the contract).
 */
#include "gocc-internal.h"

#include <sched.h>

typedef struct merge merge_t;

typedef struct fwd {
    merge_t *m;
    gocc_chan_t *in;    /* retained by m */
    unsigned char *buf; /* one element (NULL for elem_size 0) */
} fwd_t;

struct merge {
    _Atomic size_t refs;
    _Atomic size_t left;      /* forwarders still running (success only) */
    atomic_bool aborted;      /* the start failed: forward nothing */
    gocc_waitgroup_t gate;    /* 1 until the caller has decided */
    gocc_waitgroup_t stopped; /* aborted tasks still to see the gate */
    gocc_chan_t *out;         /* retained */
    size_t n;
    fwd_t fwd[]; /* n of them, then n element buffers */
};

static void merge_release(merge_t *m) {
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < m->n; i++) gocc_chan_release(m->fwd[i].in);
    gocc_chan_release(m->out);
    gocc__free(m);
}

static int forward(gocc_ctx_t *ctx, void *arg) {
    fwd_t *f = arg;
    merge_t *m = f->m;
    /* The gate: no channel is touched before the caller decided. A waiter
     * that cannot be made (ENOMEM) makes the wait fail: spin instead. */
    while (gocc_waitgroup_wait(&m->gate, NULL) != 0) sched_yield();
    if (atomic_load_explicit(&m->aborted, memory_order_acquire)) {
        gocc_waitgroup_done(&m->stopped);
        merge_release(m);
        return 0;
    }
    while (gocc_chan_recv(f->in, f->buf, ctx) == 0)          /* ECLOSED: drained */
        if (gocc_chan_send(m->out, f->buf, ctx) != 0) break; /* value dropped */
    if (atomic_fetch_sub_explicit(&m->left, 1, memory_order_acq_rel) == 1)
        (void)gocc_chan_close(m->out); /* the last one out */
    merge_release(m);
    return 0;
}

int gocc_chan_merge(gocc_chan_t *const *in, size_t n, gocc_chan_t *out, gocc_ctx_t *ctx) {
    if (out == NULL || (n > 0 && in == NULL)) return GOCC_EINVAL;
    size_t es = gocc_chan_elem_size(out);
    for (size_t i = 0; i < n; i++)
        if (in[i] == NULL || gocc_chan_elem_size(in[i]) != es || in[i] == out) return GOCC_EINVAL;
    if (n == 0) {
        (void)gocc_chan_close(out); /* nothing to forward: Go's FanIn() closes at once */
        return 0;
    }

    /* One block: the header, n forwarders, n element buffers. */
    size_t head = sizeof(merge_t), bufs;
    if (n > (SIZE_MAX - head) / sizeof(fwd_t)) return GOCC_ENOMEM;
    head += n * sizeof(fwd_t);
    head = (head + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
    if (es != 0 && n > (SIZE_MAX - head) / es) return GOCC_ENOMEM;
    bufs = n * es;
    merge_t *m = gocc__malloc(head + bufs);
    if (m == NULL) return GOCC_ENOMEM;
    atomic_init(&m->refs, 1); /* ours, while starting */
    atomic_init(&m->left, n);
    atomic_init(&m->aborted, false);
    m->gate = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    m->stopped = (gocc_waitgroup_t)GOCC_WAITGROUP_INIT;
    (void)gocc_waitgroup_add(&m->gate, 1); /* 0 -> 1 cannot fail */
    m->out = gocc_chan_retain(out);
    m->n = n;
    unsigned char *buf = (unsigned char *)m + head;
    for (size_t i = 0; i < n; i++)
        m->fwd[i] = (fwd_t){m, gocc_chan_retain(in[i]), es ? buf + i * es : NULL};

    size_t started = 0;
    int rc = 0;
    for (; started < n; started++) {
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); /* the task's */
        rc = gocc__go_ex(forward, ctx, &m->fwd[started], NULL, NULL, "merge");
        if (rc != 0) {
            atomic_fetch_sub_explicit(&m->refs, 1, memory_order_relaxed); /* ours stays */
            break;
        }
    }
    if (rc != 0) {
        atomic_store_explicit(&m->aborted, true, memory_order_release);
        (void)gocc_waitgroup_add(&m->stopped, (int64_t)started);
    }
    gocc_waitgroup_done(&m->gate); /* the tasks may go (or quit) */
    if (rc != 0) {
        /* Wait until every started task has turned back (best effort: a
         * waiter that cannot be made skips this; the tasks still forward
         * nothing). */
        (void)gocc_waitgroup_wait(&m->stopped, NULL);
    }
    merge_release(m);
    return rc;
}
