/*
 * fd.c - descriptor handles (gocc_fd_t): read, write, accept, connect and
 * readiness waits that park the caller instead of blocking its worker
 * (Go's internal/poll.FD and its pollDesc). The poller that reports
 * readiness (a role of idle workers and the monitor), and gocc_fd_poll's
 * one-off waits, are netpoll.c.
 *
 * A handle has two sides, read and write, and each side a turn: one call
 * at a time holds it (a read for one read(2), a write for its whole buffer,
 * so writes never interleave), the others queue for it in arrival order
 * (a gocc__waitrec list, like a semaphore's). Read-side calls: read,
 * accept, wait for READ or for both; write-side: write, connect, wait for
 * WRITE. The sides never wait for each other. The holder that gets EAGAIN
 * waits for its side's next readiness edge as the side's `io` waiter.
 *
 * No lost edge (Go's pollDesc rg/wg, as a count): each side counts the
 * edges the poller delivered to it (seq, written under f->mu). A call reads
 * the counts before its system call; after EAGAIN it takes f->mu and parks
 * only if the counts it waits on have not moved, publishing itself as the
 * side's io waiter in the same critical section. The poller bumps a count
 * and takes the io waiter in one critical section of its own. So an edge
 * that comes after the system call either moved the count before the check
 * (the call retries at once) or finds the waiter published (and wakes it);
 * an edge from before the system call costs at most one needless retry.
 * Counts are never consumed, so a wait for both directions may watch the
 * write side's count without taking anything from a writer.
 *
 * Invariants (under f->mu):
 *  - !side.busy implies an empty side queue: a call queues only behind a
 *    holder, and a holder leaving passes the turn to the first queued call
 *    whose claim it wins (calls whose context won are skipped).
 *  - side.io is the holder's record, or NULL.
 *  - in_call counts calls between call_enter and call_leave. The OS
 *    descriptor is closed once (os_closed) when closing and in_call == 0,
 *    by whoever sees that: gocc_fd_close, or the last call out of it; the
 *    last release closes it when close never ran.
 *  - Once closing is set nothing is queued or published again.
 *
 * Who wakes whom (each after f->mu is dropped: claim, then gocc__signal):
 *  - a call leaving its turn wakes the next queued call (why TURN);
 *  - the poller wakes a side's io waiter on an edge it waits for (EDGE);
 *  - gocc_fd_close wakes every queued call and io waiter (CLOSED);
 *  - a context's done channel wakes a waiter through gocc__wait_armed, and
 *    the call then unlinks its own record.
 *
 * Lock order: f->mu has rank FD, a leaf; the poller takes it under its own
 * lock (rank NETPOLL). No lock is held across a system call or a park.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

enum { RD = 0, WR = 1 };
enum { WHY_NONE, WHY_TURN, WHY_EDGE, WHY_CLOSED };

/* A call's wait record: on its stack while it waits. */
typedef struct fd_rec {
    gocc__waitrec r;
    int why; /* WHY_*: written by the claimer before its wake */
} fd_rec;

#define REC(p) gocc__container_of((p), fd_rec, r)

typedef struct fd_side {
    gocc__waitrec *head, *tail; /* calls waiting for the turn, FIFO */
    gocc__waitrec *io;          /* the holder, waiting for an edge */
    int io_events;              /* what io waits for (GOCC_FD_*) */
    bool busy;                  /* a call holds the turn */
    _Atomic uint32_t seq;       /* edges delivered (written under mu) */
} fd_side;

struct gocc_fd {
    gocc__mutex mu; /* rank FD */
    _Atomic size_t refs;
    int fd;               /* fixed; closed once os_closed */
    bool polled;          /* registered with the poller (else always ready) */
    bool sock;            /* a socket: writes use send(MSG_NOSIGNAL) */
    _Atomic bool closing; /* gocc_fd_close ran (written under mu) */
    bool os_closed;       /* the OS descriptor's close is decided */
    unsigned in_call;     /* calls inside */
    uint64_t key;         /* the poller's name for it */
    fd_side side[2];      /* RD, WR */
};

static bool closing(gocc_fd_t *f) {
    return atomic_load_explicit(&f->closing, memory_order_relaxed);
}

static bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

/* ---- life ---- */

static void os_close(gocc_fd_t *f) {
    if (f->polled) gocc__netpoll_unregister(f->fd, f->key);
    (void)close(f->fd);
}

/* A handle for @p fd; @p watch: register it with the poller. NULL with
 * errno on failure (nothing adopted). */
static gocc_fd_t *handle_new(int fd, bool sock, bool watch) {
    gocc_fd_t *f = gocc__calloc(1, sizeof *f);
    if (f == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    gocc__mutex_init(&f->mu, GOCC_LOCK_FD);
    atomic_init(&f->refs, 1);
    f->fd = fd;
    f->sock = sock;
    if (watch) {
        int rc = gocc__netpoll_register(fd, f, &f->key);
        if (rc < 0) {
            gocc__mutex_destroy(&f->mu);
            gocc__free(f);
            errno = -rc;
            return NULL;
        }
        f->polled = rc == 0; /* 1: the kernel cannot watch it */
    }
    gocc__live_add(GOCC__LIVE_FD, 1);
    return f;
}

gocc_fd_t *gocc_fd_open(int fd) {
    int fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    struct stat st;
    if (fl < 0 || fstat(fd, &st) != 0) {
        errno = EINVAL;
        return NULL;
    }
    bool file = S_ISREG(st.st_mode) || S_ISDIR(st.st_mode); /* always ready */
    gocc_fd_t *f = handle_new(fd, S_ISSOCK(st.st_mode), !file);
    if (f != NULL && !(fl & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return f;
}

gocc_fd_t *gocc_fd_retain(gocc_fd_t *f) {
    if (f != NULL) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* Every other user is gone (acq_rel): os_closed is stable, and a close
 * decided elsewhere has finished (its caller held a reference through it). */
void gocc_fd_release(gocc_fd_t *f) {
    if (f == NULL) return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    if (!f->os_closed) os_close(f);
    gocc__mutex_destroy(&f->mu);
    gocc__live_add(GOCC__LIVE_FD, -1);
    gocc__free(f);
}

int gocc_fd_num(gocc_fd_t *f) { return f == NULL || closing(f) ? -1 : f->fd; }

/* Claim r's waiter, telling it @p why; false when its context won. */
static bool claim_for(gocc__waitrec *r, int why) {
    if (!gocc__waiter_claim(r->w)) return false;
    REC(r)->why = why;
    return true;
}

/* Take every waiter of side @p s for close's wake queue. */
static void side_close_locked(gocc_fd_t *f, int si, gocc__wakeq *wake) {
    gocc__assert_held(&f->mu);
    fd_side *s = &f->side[si];
    gocc__waitrec *r;
    while ((r = s->head) != NULL) {
        gocc__waitrec_unlink(&s->head, &s->tail, r);
        if (claim_for(r, WHY_CLOSED)) gocc__wakeq_signal(wake, r->w);
    }
    if ((r = s->io) != NULL) {
        s->io = NULL;
        if (claim_for(r, WHY_CLOSED)) gocc__wakeq_signal(wake, r->w);
    }
}

int gocc_fd_close(gocc_fd_t *f) {
    if (f == NULL) return GOCC_EINVAL;
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    gocc__lock(&f->mu);
    if (closing(f)) {
        gocc__unlock(&f->mu);
        return GOCC_ECLOSED;
    }
    atomic_store_explicit(&f->closing, true, memory_order_relaxed);
    side_close_locked(f, RD, &wake);
    side_close_locked(f, WR, &wake);
    bool close_now = f->in_call == 0 && !f->os_closed;
    if (close_now) f->os_closed = true;
    gocc__unlock(&f->mu);
    gocc__wakeq_wake_all(&wake);
    if (close_now) os_close(f);
    return 0;
}

/* ---- turns ---- */

/* The holder leaves: the first queued call whose claim we win gets the
 * turn (returned, to be woken after unlocking), or the side is free. */
static gocc__waitrec *turn_next_locked(gocc_fd_t *f, int si) {
    gocc__assert_held(&f->mu);
    fd_side *s = &f->side[si];
    gocc__waitrec *r;
    while ((r = s->head) != NULL) {
        gocc__waitrec_unlink(&s->head, &s->tail, r);
        if (claim_for(r, WHY_TURN)) return r;
    }
    s->busy = false;
    return NULL;
}

static void call_leave(gocc_fd_t *f, int si, bool had_turn) {
    gocc__lock(&f->mu);
    gocc__waitrec *next = had_turn ? turn_next_locked(f, si) : NULL;
    bool close_now = --f->in_call == 0 && closing(f) && !f->os_closed;
    if (close_now) f->os_closed = true;
    gocc__unlock(&f->mu);
    if (next != NULL) gocc__signal(next->w);
    if (close_now) os_close(f);
}

/* What every wait needs first: the context's done channel (NULL for
 * none) and the caller's waiter. 0, the context's error or GOCC_ENOMEM. */
static int wait_setup(gocc_ctx_t *ctx, gocc_chan_t **done, gocc__waiter **w) {
    int err;
    *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    *w = gocc__self_try();
    return *w != NULL ? 0 : GOCC_ENOMEM;
}

/* Queue for side @p si's turn (in_call already counted). 0 holding it. */
static int turn_wait(gocc_fd_t *f, int si, int events, gocc_ctx_t *ctx) {
    gocc_chan_t *done;
    gocc__waiter *w;
    int err = wait_setup(ctx, &done, &w);
    if (err != 0) return err;
    fd_side *s = &f->side[si];
    fd_rec rec = {.r = {.w = w}};
    gocc__lock(&f->mu);
    if (closing(f) || !s->busy) { /* changed while we got ready to wait */
        bool mine = !closing(f);
        if (mine) s->busy = true;
        gocc__unlock(&f->mu);
        return mine ? 0 : GOCC_ECLOSED;
    }
    gocc__waiter_arm(w);
    gocc__waitrec_push(&s->head, &s->tail, &rec.r);
    gocc__unlock(&f->mu);
    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_IO, f, GOCC__IO_DETAIL(f->fd, events));
    if (r != 0) { /* the context won: we were never given the turn */
        gocc__lock(&f->mu);
        if (rec.r.queued) gocc__waitrec_unlink(&s->head, &s->tail, &rec.r);
        gocc__unlock(&f->mu);
        return r;
    }
    return rec.why == WHY_CLOSED ? GOCC_ECLOSED : 0;
}

/* Start a call on side @p si: 0 holding its turn, or an error with
 * nothing held. A context already done wins. */
static int call_enter(gocc_fd_t *f, int si, int events, gocc_ctx_t *ctx) {
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err;
    fd_side *s = &f->side[si];
    gocc__lock(&f->mu);
    if (closing(f)) {
        gocc__unlock(&f->mu);
        return GOCC_ECLOSED;
    }
    f->in_call++;
    bool mine = !s->busy;
    if (mine) s->busy = true;
    gocc__unlock(&f->mu);
    if (mine) return 0;
    int rc = turn_wait(f, si, events, ctx);
    if (rc == 0 && closing(f)) { /* given the turn, then closed */
        call_leave(f, si, true);
        return GOCC_ECLOSED;
    }
    if (rc != 0) call_leave(f, si, false);
    return rc;
}

/* ---- readiness ---- */

static void snap(gocc_fd_t *f, uint32_t seen[2]) {
    seen[RD] = atomic_load_explicit(&f->side[RD].seq, memory_order_acquire);
    seen[WR] = atomic_load_explicit(&f->side[WR].seq, memory_order_acquire);
}

static bool moved_locked(gocc_fd_t *f, int events, const uint32_t seen[2]) {
    gocc__assert_held(&f->mu);
    return ((events & GOCC_FD_READ) &&
            atomic_load_explicit(&f->side[RD].seq, memory_order_relaxed) != seen[RD]) ||
           ((events & GOCC_FD_WRITE) &&
            atomic_load_explicit(&f->side[WR].seq, memory_order_relaxed) != seen[WR]);
}

/* The turn holder of side @p si got EAGAIN after reading the counts
 * @p seen: wait for an edge of @p events. 0: try the system call again. */
static int io_wait(gocc_fd_t *f, int si, int events, const uint32_t seen[2], gocc_ctx_t *ctx) {
    if (gocc__netpoll_need() != 0) return GOCC_ENOMEM; /* no poller (a fork's child) */
    gocc_chan_t *done;
    gocc__waiter *w;
    int err = wait_setup(ctx, &done, &w);
    if (err != 0) return err;
    fd_side *s = &f->side[si];
    fd_rec rec = {.r = {.w = w}};
    gocc__lock(&f->mu);
    if (closing(f) || moved_locked(f, events, seen)) {
        gocc__unlock(&f->mu);
        return closing(f) ? GOCC_ECLOSED : 0;
    }
    gocc__waiter_arm(w);
    s->io = &rec.r;
    s->io_events = events;
    gocc__unlock(&f->mu);
    gocc__netpoll_kick();
    GOCC_PROBE2(io_wait, f->fd, events);
    int r = gocc__wait_armed(w, done, ctx, GOCC_WAIT_IO, f, GOCC__IO_DETAIL(f->fd, events));
    if (r != 0) {
        gocc__lock(&f->mu);
        if (s->io == &rec.r) s->io = NULL;
        gocc__unlock(&f->mu);
        return r;
    }
    return rec.why == WHY_CLOSED ? GOCC_ECLOSED : 0;
}

void gocc__fd_ready(gocc_fd_t *f, int events, gocc__wakeq *wake) {
    gocc__lock(&f->mu);
    for (int si = RD; si <= WR; si++) {
        fd_side *s = &f->side[si];
        if (events & (si == RD ? GOCC_FD_READ : GOCC_FD_WRITE))
            atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
        gocc__waitrec *r = s->io;
        if (r == NULL || !(s->io_events & events)) continue;
        s->io = NULL;
        if (claim_for(r, WHY_EDGE)) gocc__wakeq_signal(wake, r->w); /* else its context won */
    }
    gocc__unlock(&f->mu);
    GOCC_PROBE2(io_ready, f->fd, events);
}

int gocc__fd_interest(gocc_fd_t *f) {
    gocc__lock(&f->mu);
    int ev = (f->side[RD].io ? f->side[RD].io_events : 0) |
             (f->side[WR].io ? f->side[WR].io_events : 0);
    gocc__unlock(&f->mu);
    return ev;
}

size_t gocc__fd_queued(gocc_fd_t *f, int events) {
    fd_side *s = &f->side[events & GOCC_FD_READ ? RD : WR];
    gocc__lock(&f->mu);
    size_t n = s->busy;
    for (gocc__waitrec *r = s->head; r != NULL; r = r->next) n++;
    gocc__unlock(&f->mu);
    return n;
}

/* poll(2) now, without waiting: the ready subset of @p events, 0, or a
 * negative errno. An error or hang-up counts as ready for both. */
static int poll_now(int fd, int events) {
    struct pollfd p = {.fd = fd, .events = 0};
    if (events & GOCC_FD_READ) p.events |= POLLIN;
    if (events & GOCC_FD_WRITE) p.events |= POLLOUT;
#if defined(POLLRDHUP)
    if (events & GOCC_FD_READ) p.events |= POLLRDHUP;
#endif
    int r;
    do r = poll(&p, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (p.revents & POLLNVAL) return -EBADF;
    int ready = 0;
    if (p.revents & POLLIN) ready |= GOCC_FD_READ;
#if defined(POLLRDHUP)
    if (p.revents & POLLRDHUP) ready |= GOCC_FD_READ;
#endif
    if (p.revents & POLLOUT) ready |= GOCC_FD_WRITE;
    if (p.revents & (POLLERR | POLLHUP)) ready |= GOCC_FD_READ | GOCC_FD_WRITE;
    return ready & events;
}

static bool events_ok(int events) {
    return events > 0 && (events & ~(GOCC_FD_READ | GOCC_FD_WRITE)) == 0;
}

/* ---- the calls ---- */

ssize_t gocc_fd_read(gocc_fd_t *f, void *buf, size_t n, gocc_ctx_t *ctx) {
    if (f == NULL || (buf == NULL && n > 0)) return GOCC_EINVAL;
    if (n == 0) return 0;
    if (n > SSIZE_MAX) n = SSIZE_MAX;
    int rc = call_enter(f, RD, GOCC_FD_READ, ctx);
    if (rc != 0) return rc;
    ssize_t r;
    for (;;) {
        uint32_t seen[2];
        snap(f, seen);
        r = read(f->fd, buf, n);
        if (r >= 0) break;
        if (errno == EINTR) continue;
        if (!would_block(errno) || !f->polled) {
            r = -errno;
            break;
        }
        int w = io_wait(f, RD, GOCC_FD_READ, seen, ctx);
        if (w != 0) {
            r = w;
            break;
        }
    }
    call_leave(f, RD, true);
    return r;
}

static ssize_t sys_write(gocc_fd_t *f, const void *p, size_t n) {
#if defined(MSG_NOSIGNAL)
    if (f->sock) return send(f->fd, p, n, MSG_NOSIGNAL);
#endif
    return write(f->fd, p, n);
}

/* Write what is left of @p n bytes, holding the write turn: 0 or an error;
 * *done counts what went out. */
static int write_all(gocc_fd_t *f, const char *buf, size_t n, size_t *done, gocc_ctx_t *ctx) {
    while (*done < n) {
        uint32_t seen[2];
        snap(f, seen);
        ssize_t k = sys_write(f, buf + *done, n - *done);
        if (k > 0) {
            *done += (size_t)k;
            continue;
        }
        if (k == 0) return -EIO; /* no progress and no reason: do not spin */
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return GOCC_ECLOSED; /* the reader is gone */
        if (!would_block(errno) || !f->polled) return -errno;
        int rc = io_wait(f, WR, GOCC_FD_WRITE, seen, ctx);
        if (rc != 0) return rc;
    }
    return 0;
}

ssize_t gocc_fd_write(gocc_fd_t *f, const void *buf, size_t n, size_t *written, gocc_ctx_t *ctx) {
    if (written != NULL) *written = 0;
    if (f == NULL || (buf == NULL && n > 0) || n > SSIZE_MAX) return GOCC_EINVAL;
    if (n == 0) return 0;
    int rc = call_enter(f, WR, GOCC_FD_WRITE, ctx);
    if (rc != 0) return rc;
    size_t done = 0;
    rc = write_all(f, buf, n, &done, ctx);
    call_leave(f, WR, true);
    if (written != NULL) *written = done;
    return rc != 0 ? rc : (ssize_t)n;
}

int gocc_fd_wait(gocc_fd_t *f, int events, gocc_ctx_t *ctx) {
    if (f == NULL || !events_ok(events)) return GOCC_EINVAL;
    int si = events & GOCC_FD_READ ? RD : WR; /* both: the read side's turn */
    int rc = call_enter(f, si, events, ctx);
    if (rc != 0) return rc;
    for (;;) {
        uint32_t seen[2];
        snap(f, seen);
        rc = poll_now(f->fd, events);
        if (rc != 0) break;
        if (!f->polled) { /* the kernel cannot watch it: always ready */
            rc = events;
            break;
        }
        rc = io_wait(f, si, events, seen, ctx);
        if (rc != 0) break;
    }
    call_leave(f, si, true);
    return rc;
}

static int sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen) {
#if defined(__linux__) && defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    return accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int c = accept(fd, addr, addrlen);
    if (c >= 0) {
        (void)fcntl(c, F_SETFD, FD_CLOEXEC);
        (void)fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    }
    return c;
#endif
}

int gocc_fd_accept(gocc_fd_t *l, gocc_fd_t **conn, struct sockaddr *addr, socklen_t *addrlen,
                   gocc_ctx_t *ctx) {
    if (conn != NULL) *conn = NULL;
    if (l == NULL || conn == NULL) return GOCC_EINVAL;
    int rc = call_enter(l, RD, GOCC_FD_READ, ctx);
    if (rc != 0) return rc;
    int c;
    for (;;) {
        uint32_t seen[2];
        snap(l, seen);
        if ((c = sys_accept(l->fd, addr, addrlen)) >= 0) break;
        if (errno == EINTR || errno == ECONNABORTED) continue; /* as Go does */
        if (!would_block(errno) || !l->polled) {
            rc = -errno;
            break;
        }
        if ((rc = io_wait(l, RD, GOCC_FD_READ, seen, ctx)) != 0) break;
    }
    call_leave(l, RD, true);
    if (rc != 0) return rc;
    gocc_fd_t *f = handle_new(c, true, true);
    if (f == NULL) {
        rc = -errno;
        (void)close(c);
        return rc;
    }
    *conn = f;
    return 0;
}

/* A connect in progress (counts read before it in @p seen): wait until the
 * socket is writable or failed, then its SO_ERROR is the answer. */
static int connect_wait(gocc_fd_t *f, uint32_t seen[2], gocc_ctx_t *ctx) {
    if (!f->polled) return GOCC_EINVAL;
    for (;;) {
        int rc = io_wait(f, WR, GOCC_FD_WRITE, seen, ctx);
        if (rc != 0) return rc;
        snap(f, seen);
        rc = poll_now(f->fd, GOCC_FD_WRITE);
        if (rc < 0) return rc;
        if (rc == 0) continue; /* an edge from before: still connecting */
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) return -errno;
        return -soerr;
    }
}

int gocc_fd_connect(gocc_fd_t *f, const struct sockaddr *addr, socklen_t addrlen, gocc_ctx_t *ctx) {
    if (f == NULL || addr == NULL) return GOCC_EINVAL;
    int rc = call_enter(f, WR, GOCC_FD_WRITE, ctx);
    if (rc != 0) return rc;
    uint32_t seen[2];
    snap(f, seen);
    if (connect(f->fd, addr, addrlen) != 0) {
        if (errno == EINPROGRESS || errno == EINTR)
            rc = connect_wait(f, seen, ctx);
        else
            rc = -errno;
    }
    call_leave(f, WR, true);
    return rc;
}

int gocc_fd_poll(int fd, int events, gocc_ctx_t *ctx) {
    if (fd < 0 || !events_ok(events)) return GOCC_EINVAL;
    int err = gocc_ctx_err(ctx);
    if (err != 0) return err;
    for (;;) {
        int r = poll_now(fd, events);
        if (r != 0) return r;
        r = gocc__netpoll_wait_once(fd, events, ctx);
        if (r != 0) return r;
    }
}
