/*
 * ctx.c - contexts: cancellation trees, deadlines, values, after_func.
 *
 * Kinds: the static background root; cancel contexts (with_cancel,
 * with_deadline/with_timeout: a cancel context with a timer); value
 * contexts; without_cancel contexts. Every context points at its
 * "cancel source": itself for a cancel context, the nearest cancellable
 * ancestor for a value context, NULL when it can never be done. err, done
 * and after_func all live on the cancel source.
 *
 * Invariants:
 *  - err goes 0 -> non-zero once, under mu, after cause; read lock-free
 *    (acquire). The done channel is closed after err is set.
 *  - A live cancel context that is not done is linked in its parent
 *    source's children list (under the parent's mu); cancel unlinks all of
 *    them at once, and a child unlinks itself when it is freed.
 *  - A value context's key is never NULL (with_value refuses it), so
 *    value(ctx, NULL) finds nothing.
 *  - References: the creator's, one per child (on its parent), one per task
 *    running with it, one while its deadline timer is armed, one per pending
 *    after_func. Memory goes with the last.
 *
 * Lock order: parent mu before child mu (cancel walks the subtree holding
 * each lock on the way down); a context's mu is never taken while one of
 * its descendants' is held. ctx mu -> channel lock and ctx mu -> timer lock
 * are allowed; nothing takes a ctx mu while holding a channel or timer lock.
 * Nothing that may call back into user code (after_func starts, the last
 * release of a context) runs under a ctx mu.
 *
 * Who wakes whom: cancel closes the done channel, which claims and wakes
 * every blocked call waiting on this context (their done-channel case).
 */
#include "gocc-internal.h"

#include <errno.h>

enum ctx_kind { CTX_BACKGROUND, CTX_CANCEL, CTX_VALUE, CTX_WITHOUT };

enum af_state { AF_PENDING, AF_STOPPED, AF_STARTED, AF_NEVER };

struct gocc_after_func {
    gocc_after_func_t *owned_next; /* owner's list: freed with the owner */
    gocc_after_func_t *run_next;   /* cancel's list of functions to start */
    gocc_ctx_t *owner;             /* whose mu guards state */
    void (*fn)(void *);
    void *arg;
    int state; /* enum af_state, under owner->mu */
};

struct gocc_ctx {
    /* Fields nothing reads after the last release first: malloc's free
     * list links overwrite the first 32 bytes of freed memory, and refs
     * must keep GOCC__RELEASED there (misuse.c). */
    gocc_ctx_t *children;            /* under mu */
    gocc_ctx_t *sib_prev, *sib_next; /* links in link_parent's list */
    gocc_ctx_t *cancel_next;         /* cancel_batch's list of refs to drop */
    _Atomic size_t refs;
    int kind;
    gocc_ctx_t *parent; /* retained; NULL for background */
    gocc_ctx_t *src;    /* cancel source (see above) */
    gocc__mutex mu;

    /* cancel contexts */
    _Atomic int err;
    _Atomic int cause;
    _Atomic(gocc_chan_t *) done; /* made lazily, under mu */
    gocc_ctx_t *link_parent;     /* the source we registered with */
    bool linked;                 /* under link_parent->mu */
    bool has_deadline;
    int64_t deadline;
    gocc__timer_entry timer;

    gocc_after_func_t *afs; /* handles owned, under mu */

    /* value contexts */
    const void *key;
    void *value;
};

static gocc_ctx_t background = {
    .kind = CTX_BACKGROUND,
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_CTX),
};

gocc_ctx_t *gocc_ctx_background(void) { return &background; }

static inline gocc_ctx_t *or_background(gocc_ctx_t *c) { return c ? c : &background; }

/* ---- references ---- */

_Static_assert(offsetof(struct gocc_ctx, refs) >= 32, "refs outlives the free (misuse.c)");

static gocc_ctx_t *retain_for(gocc_ctx_t *ctx, const char *call) {
    if (ctx != NULL && ctx->kind != CTX_BACKGROUND &&
        GOCC_UNLIKELY(atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed) ==
                      GOCC__RELEASED))
        gocc__misuse_released(call, "context", ctx);
    return ctx;
}

gocc_ctx_t *gocc_ctx_retain(gocc_ctx_t *ctx) { return retain_for(ctx, "gocc_ctx_retain"); }

void gocc__ctx_check(gocc_ctx_t *ctx, const char *call) {
    if (ctx != NULL &&
        GOCC_UNLIKELY(atomic_load_explicit(&ctx->refs, memory_order_relaxed) == GOCC__RELEASED))
        gocc__misuse_released(call, "context", ctx);
}

static void unlink_from_parent(gocc_ctx_t *c) {
    gocc_ctx_t *p = c->link_parent;
    if (p == NULL) return;
    gocc__lock(&p->mu);
    if (c->linked) {
        if (c->sib_prev)
            c->sib_prev->sib_next = c->sib_next;
        else
            p->children = c->sib_next;
        if (c->sib_next) c->sib_next->sib_prev = c->sib_prev;
        c->linked = false;
    }
    gocc__unlock(&p->mu);
}

static void ctx_free(gocc_ctx_t *c) {
    if (c->kind == CTX_CANCEL) {
        unlink_from_parent(c);
        if (c->has_deadline) gocc__timer_unreserve(); /* not armed: it held a ref */
        gocc_chan_release(atomic_load_explicit(&c->done, memory_order_relaxed));
    }
    gocc_after_func_t *af = c->afs;
    while (af != NULL) {
        gocc_after_func_t *next = af->owned_next;
        gocc__free(af);
        af = next;
    }
    gocc__mutex_destroy(&c->mu);
    gocc_ctx_t *parent = c->parent;
    gocc__live_add(GOCC__LIVE_CTX, -1);
    atomic_store_explicit(&c->refs, GOCC__RELEASED, memory_order_relaxed);
    gocc__free(c);
    gocc_ctx_release(parent);
}

void gocc_ctx_release(gocc_ctx_t *ctx) {
    if (ctx == NULL || ctx->kind == CTX_BACKGROUND) return;
    size_t old = atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel);
    if (old == 1)
        ctx_free(ctx);
    else if (GOCC_UNLIKELY(old == GOCC__RELEASED))
        gocc__misuse_released("gocc_ctx_release", "context", ctx);
}

/* ---- queries ---- */

int gocc_ctx_err(gocc_ctx_t *ctx) {
    if (ctx == NULL || ctx->src == NULL) return 0;
    return atomic_load_explicit(&ctx->src->err, memory_order_acquire);
}

int gocc_ctx_cause(gocc_ctx_t *ctx) {
    int err = gocc_ctx_err(ctx);
    if (err == 0) return 0;
    int cause = atomic_load_explicit(&ctx->src->cause, memory_order_relaxed);
    return cause != 0 ? cause : err;
}

gocc_chan_t *gocc__ctx_done_chan(gocc_ctx_t *ctx, int *err) {
    *err = 0;
    gocc__ctx_check(ctx, "a blocking call");
    gocc_ctx_t *s = ctx ? ctx->src : NULL;
    if (s == NULL) return NULL;
    gocc_chan_t *ch = atomic_load_explicit(&s->done, memory_order_acquire);
    if (ch != NULL) return ch;
    gocc__lock(&s->mu);
    ch = atomic_load_explicit(&s->done, memory_order_relaxed);
    if (ch == NULL) {
        ch = gocc_chan_new(0, 0);
        if (ch == NULL) {
            *err = GOCC_ENOMEM;
        } else {
            if (atomic_load_explicit(&s->err, memory_order_relaxed) != 0) gocc_chan_close(ch);
            atomic_store_explicit(&s->done, ch, memory_order_release);
        }
    }
    gocc__unlock(&s->mu);
    return ch;
}

gocc_chan_t *gocc_ctx_done(gocc_ctx_t *ctx) {
    int err;
    gocc_chan_t *ch = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) errno = ENOMEM;
    return ch;
}

bool gocc_ctx_deadline(gocc_ctx_t *ctx, int64_t *deadline_ns) {
    for (gocc_ctx_t *c = ctx; c != NULL; c = c->parent) {
        if (c->kind == CTX_WITHOUT) break;
        if (c->kind == CTX_CANCEL && c->has_deadline) {
            if (deadline_ns) *deadline_ns = c->deadline;
            return true;
        }
    }
    return false;
}

void *gocc_ctx_value(gocc_ctx_t *ctx, const void *key) {
    if (key == NULL) return NULL; /* no context holds a NULL key */
    for (gocc_ctx_t *c = ctx; c != NULL; c = c->parent)
        if (c->kind == CTX_VALUE && c->key == key) return c->value;
    return NULL;
}

/* ---- cancellation ---- */

static int after_func_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gocc_after_func_t *af = arg;
    af->fn(af->arg);
    return 0;
}

/* Start a pending function whose context is done; drops its pending ref. */
static void after_func_start(gocc_after_func_t *af) {
    gocc_ctx_t *owner = af->owner;
    /* The task holds owner (and so af) until fn returns. */
    if (gocc_go(after_func_task, owner, af) != 0) af->fn(af->arg);
    gocc_ctx_release(owner);
}

/* What a cancellation must do once every context lock is dropped: start
 * the after_funcs it made due, drop the references its disarmed timers held
 * (possibly the last ones: freeing takes the parent's lock). */
typedef struct cancel_batch {
    gocc_after_func_t *run;
    gocc_ctx_t *unref;
} cancel_batch;

/* Mark c and its whole subtree done. Takes c->mu and holds it while the
 * children are cancelled (parent before child, as Go does), so that when
 * any cancel of c returns, every descendant is done, even if another thread
 * got there first. A child met here is alive: if its last reference is gone
 * it waits for our lock in unlink_from_parent before it frees anything. */
static void cancel_tree(gocc_ctx_t *c, int err, int cause, cancel_batch *b) {
    gocc__lock(&c->mu);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) {
        gocc__unlock(&c->mu);
        return;
    }
    atomic_store_explicit(&c->cause, cause, memory_order_relaxed);
    atomic_store_explicit(&c->err, err, memory_order_release);
    gocc_chan_t *done = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (done != NULL) gocc_chan_close(done); /* wakes every blocked call */
    if (c->has_deadline && gocc__timer_del(&c->timer)) {
        c->cancel_next = b->unref; /* the armed timer's reference */
        b->unref = c;
    }
    for (gocc_ctx_t *k = c->children; k != NULL; k = k->sib_next) {
        k->linked = false;
        cancel_tree(k, err, cause, b);
    }
    c->children = NULL;
    for (gocc_after_func_t *af = c->afs; af != NULL; af = af->owned_next) {
        if (af->state != AF_PENDING) continue;
        af->state = AF_STARTED;
        af->run_next = b->run;
        b->run = af;
    }
    gocc__unlock(&c->mu);
}

/* Caller holds a reference to c and no context lock. */
static void cancel(gocc_ctx_t *c, int err, int cause) {
    GOCC_PROBE2(ctx_cancel, (uintptr_t)c, err);
    cancel_batch b = {NULL, NULL};
    cancel_tree(c, err, cause, &b);
    unlink_from_parent(c); /* a done context needs no parent to cancel it */
    while (b.run != NULL) {
        gocc_after_func_t *next = b.run->run_next;
        after_func_start(b.run);
        b.run = next;
    }
    while (b.unref != NULL) {
        gocc_ctx_t *next = b.unref->cancel_next;
        gocc_ctx_release(b.unref);
        b.unref = next;
    }
}

void gocc_ctx_cancel_cause(gocc_ctx_t *ctx, int cause) {
    if (ctx == NULL) return;
    gocc__ctx_check(ctx, "gocc_ctx_cancel");
    if (ctx->kind != CTX_CANCEL) return;
    cancel(ctx, GOCC_ECANCELED, cause);
}

void gocc_ctx_cancel(gocc_ctx_t *ctx) { gocc_ctx_cancel_cause(ctx, 0); }

static void deadline_fire(gocc__timer_entry *e, int64_t now) {
    (void)now;
    gocc_ctx_t *c = e->arg;
    cancel(c, GOCC_EDEADLINE, 0);
    gocc_ctx_release(c); /* the armed timer's reference; may free c and e */
}

/* ---- construction ---- */

static gocc_ctx_t *ctx_alloc(gocc_ctx_t *parent, int kind, const char *call) {
    gocc__ctx_check(parent, call);
    gocc_ctx_t *c = gocc__calloc(1, sizeof *c);
    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&c->refs, 1);
    c->kind = kind;
    gocc__mutex_init(&c->mu, GOCC_LOCK_CTX);
    c->parent = retain_for(parent, call);
    gocc__live_add(GOCC__LIVE_CTX, 1);
    return c;
}

/* Register c under its parent's source, or cancel it at once if that source
 * is already done (a child of a done parent is born done). */
static void propagate(gocc_ctx_t *c) {
    gocc_ctx_t *p = c->parent->src;
    if (p == NULL) return; /* the parent can never be done */
    gocc__lock(&p->mu);
    int err = atomic_load_explicit(&p->err, memory_order_relaxed);
    if (err == 0) {
        c->link_parent = p;
        c->sib_prev = NULL;
        c->sib_next = p->children;
        if (p->children) p->children->sib_prev = c;
        p->children = c;
        c->linked = true;
    }
    int cause = atomic_load_explicit(&p->cause, memory_order_relaxed);
    gocc__unlock(&p->mu);
    if (err != 0) cancel(c, err, cause);
}

static gocc_ctx_t *new_cancel_ctx(gocc_ctx_t *parent, bool has_deadline, int64_t deadline) {
    if (has_deadline) {
        int rc = gocc__timer_reserve();
        if (rc != 0) {
            errno = -rc;
            return NULL;
        }
    }
    gocc_ctx_t *c = ctx_alloc(parent, CTX_CANCEL, "gocc_ctx_with_cancel/deadline/timeout");
    if (c == NULL) {
        if (has_deadline) gocc__timer_unreserve();
        return NULL;
    }
    c->src = c;
    c->has_deadline = has_deadline;
    c->deadline = deadline;
    if (has_deadline) gocc__timer_init(&c->timer, deadline_fire, c);
    propagate(c);
    return c;
}

gocc_ctx_t *gocc_ctx_with_cancel(gocc_ctx_t *parent) {
    return new_cancel_ctx(or_background(parent), false, 0);
}

gocc_ctx_t *gocc_ctx_with_deadline(gocc_ctx_t *parent, int64_t deadline_ns) {
    parent = or_background(parent);
    int64_t pd;
    if (gocc_ctx_deadline(parent, &pd) && pd <= deadline_ns)
        return new_cancel_ctx(parent, false, 0); /* the parent's comes first */
    gocc_ctx_t *c = new_cancel_ctx(parent, true, deadline_ns);
    if (c == NULL) return NULL;
    if (deadline_ns <= gocc_now()) {
        cancel(c, GOCC_EDEADLINE, 0);
        return c;
    }
    gocc__lock(&c->mu);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) == 0) {
        gocc_ctx_retain(c); /* held by the armed timer */
        gocc__timer_add(&c->timer, deadline_ns, 0);
    }
    gocc__unlock(&c->mu);
    return c;
}

gocc_ctx_t *gocc_ctx_with_timeout(gocc_ctx_t *parent, int64_t timeout_ns) {
    int64_t now = gocc_now();
    int64_t d = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    return gocc_ctx_with_deadline(parent, d);
}

gocc_ctx_t *gocc_ctx_with_value(gocc_ctx_t *parent, const void *key, void *value) {
    if (key == NULL) { /* Go panics on a nil key: refused before anything is made */
        errno = EINVAL;
        return NULL;
    }
    parent = or_background(parent);
    gocc_ctx_t *c = ctx_alloc(parent, CTX_VALUE, "gocc_ctx_with_value");
    if (c == NULL) return NULL;
    c->src = parent->src;
    c->key = key;
    c->value = value;
    return c;
}

gocc_ctx_t *gocc_ctx_without_cancel(gocc_ctx_t *parent) {
    gocc_ctx_t *c = ctx_alloc(or_background(parent), CTX_WITHOUT, "gocc_ctx_without_cancel");
    if (c == NULL) return NULL;
    c->src = NULL;
    return c;
}

/* ---- after_func ---- */

int gocc_ctx_after_func(gocc_ctx_t *ctx, void (*fn)(void *), void *arg,
                        gocc_after_func_t **stop_handle) {
    if (ctx == NULL || fn == NULL) return GOCC_EINVAL;
    gocc_after_func_t *af = gocc__calloc(1, sizeof *af);
    if (af == NULL) return GOCC_ENOMEM;
    af->fn = fn;
    af->arg = arg;
    /* A context that can never be done keeps the handle itself. */
    gocc_ctx_t *owner = ctx->src != NULL ? ctx->src : ctx;
    af->owner = owner;
    bool start = false;
    gocc__lock(&owner->mu);
    af->owned_next = owner->afs;
    owner->afs = af;
    if (ctx->src == NULL) {
        af->state = AF_NEVER;
    } else if (atomic_load_explicit(&owner->err, memory_order_relaxed) != 0) {
        af->state = AF_STARTED;
        start = true;
    } else {
        af->state = AF_PENDING;
    }
    if (af->state != AF_NEVER) gocc_ctx_retain(owner); /* the pending ref */
    gocc__unlock(&owner->mu);
    if (start) after_func_start(af);
    if (stop_handle != NULL) *stop_handle = af;
    return 0;
}

bool gocc_ctx_after_func_stop(gocc_after_func_t *h) {
    if (h == NULL) return false;
    gocc_ctx_t *owner = h->owner;
    bool stopped = false, drop = false;
    gocc__lock(&owner->mu);
    if (h->state == AF_PENDING || h->state == AF_NEVER) {
        drop = h->state == AF_PENDING;
        h->state = AF_STOPPED;
        stopped = true;
    }
    gocc__unlock(&owner->mu);
    if (drop) gocc_ctx_release(owner);
    return stopped;
}
