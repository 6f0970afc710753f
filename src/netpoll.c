/*
 * netpoll.c - the I/O poller (Go's netpoller): waits for the readiness of
 * every registered descriptor and wakes the calls waiting for it. There is
 * no poller thread: polling is a role that one thread at a time holds (the
 * poll token), taken by the scheduler:
 *  - an idle worker about to sleep takes it and blocks in the kernel's
 *    wait (epoll_wait) instead of on its futex, so readiness wakes the
 *    worker that will run the readied tasks: no thread in between, and no
 *    system call added (the wait replaces the futex sleep);
 *  - the scheduler's monitor takes it for a non-blocking look every tick
 *    (1 ms while tasks run) when no idle worker holds it: every worker is
 *    busy, or none exists yet;
 *  - a call that starts waiting while nobody holds it pokes the scheduler
 *    (gocc__sched_poke), which wakes an idle worker or starts the first
 *    one, and that worker takes the role when it finds nothing to run.
 * A worker that must run something while it holds the role is broken out
 * of its wait through the wake descriptor (gocc__netpoll_break).
 *
 * What lives here: the slot table (one slot per registered descriptor: a
 * handle of fd.c, or one gocc_fd_poll wait), the poll role, its kernel
 * backend (epoll, edge-triggered, on Linux; poll(2) elsewhere), and the
 * one-off waits behind gocc_fd_poll.
 *
 * Invariants (under P.mu):
 *  - A slot is in use iff its kind is not SLOT_FREE; its generation changes
 *    each time it is freed. The kernel is given key = generation << 32 |
 *    index, never a pointer: an event for a slot freed (or reused) since
 *    misses and is dropped, so a handle may be freed while the kernel still
 *    holds an event for it.
 *  - An object in a slot is alive while the slot is in use: its owner frees
 *    the slot (gocc__netpoll_unregister) before it frees the object, and
 *    the poller touches objects only under P.mu.
 *  - P.used counts the slots in use (nused mirrors it for lock-free looks).
 *    The backend (epoll instance, wake descriptor) is open while P.open;
 *    it is closed only by shutdown, with P.used == 0, after P.stop has
 *    turned new claims away and the token holder has given the role back.
 *  - The token (poll_token) is held by at most one thread; only it calls
 *    backend_wait, and it reads the backend's descriptors without P.mu
 *    (they cannot close while it holds the role).
 *
 * Who wakes whom: the token holder, holding P.mu, maps each event to its
 * slot and hands a handle's readiness to gocc__fd_ready (which takes the
 * handle's lock) or claims a gocc_fd_poll waiter; it wakes the claimed
 * waiters (a gocc__wakeq) after dropping P.mu. A waker of the worker that
 * holds the role, shutdown, and with poll(2) a call that starts waiting,
 * break the wait through the wake descriptor (an eventfd, or a pipe).
 *
 * Lock order: P.mu (rank NETPOLL) -> a handle's f->mu (rank FD). Nothing
 * else is taken under P.mu, and no waiter is woken under it.
 *
 * The poll(2) backend (not Linux, or -DGOCC_NETPOLL_POLL): level-triggered,
 * so it watches only what some call waits for right now. It rebuilds its
 * pollfd set from the table every round (asking fd.c for each handle's
 * interest), and a call that starts waiting kicks it through the wake
 * pipe. Simple and O(registered descriptors) per round. poll(2) holds the
 * files it watches until it returns, so unregistering a descriptor that
 * the current round watches kicks the poller and waits (yielding) for the
 * round to end: when gocc_fd_close returns, the file is let go, and its
 * peer sees the close, as with epoll.
 *
 * fork: the child has no worker that polls, and its epoll instance and
 * wake descriptor would be the parent's: the child closes its copies,
 * drops the gocc_fd_poll waits (of threads it does not have), and the next
 * wait or registration makes new ones and registers the table's
 * descriptors again.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#if defined(__linux__) && !defined(GOCC_NETPOLL_POLL)
#define NETPOLL_EPOLL 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#else
#define NETPOLL_EPOLL 0
#endif

#define WAKE_KEY UINT64_MAX
#define NO_SLOT UINT32_MAX
#define BATCH 128

enum { SLOT_FREE, SLOT_FD, SLOT_ONCE };

/* gocc_fd_poll's wait: on its caller's stack, in a slot while it waits. */
typedef struct once_wait {
    gocc__waitrec rec;
    int events; /* GOCC_FD_* asked for */
    bool fired; /* the poller took it (poll(2): stop watching) */
} once_wait;

typedef struct slot {
    void *obj; /* gocc_fd_t (SLOT_FD) or once_wait (SLOT_ONCE) */
    int fd;    /* the registered descriptor */
    int kind;
    uint32_t gen;
    uint32_t next_free;
} slot;

/* One readiness report, backend-neutral. */
typedef struct pevent {
    uint64_t key;
    int events; /* GOCC_FD_* */
} pevent;

static struct {
    gocc__mutex mu;
    bool open;          /* the backend is open (epfd and wake descriptor) */
    _Atomic bool stop;  /* shutdown: the role may not be claimed */
    _Atomic bool stale; /* child of a fork: slots in use and no backend */
    int epfd;           /* the epoll instance, -1 when none */
    int wake_r, wake_w; /* the wake descriptor(s), -1 when none */
    slot *slots;
    uint32_t cap, used, free_head;
} P = {
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_NETPOLL),
    .epfd = -1,
    .wake_r = -1,
    .wake_w = -1,
    .free_head = NO_SLOT,
};

/* The poll role (see the top): 1 while a thread holds it. */
static _Atomic int poll_token;
/* P.used, for looks without P.mu. */
static _Atomic uint32_t nused;
/* The backend's descriptors as the token holder reads them (without P.mu):
 * set under P.mu while nobody can hold the role on a closed backend.
 * poll_epfd >= 0 also means "the backend is open" to a claimer; with
 * poll(2), which has no instance, it holds the wake pipe's read end. */
static _Atomic int poll_epfd = -1, poll_wake_r = -1;

static uint64_t key_of(uint32_t i) { return (uint64_t)P.slots[i].gen << 32 | i; }

static slot *slot_of_locked(uint64_t key) {
    gocc__assert_held(&P.mu);
    uint32_t i = (uint32_t)key;
    if (key == WAKE_KEY || i >= P.cap) return NULL;
    slot *s = &P.slots[i];
    return s->kind != SLOT_FREE && s->gen == (uint32_t)(key >> 32) ? s : NULL;
}

/* The token holder. */
static void wake_drain(void) {
    char buf[64];
    int fd = atomic_load_explicit(&poll_wake_r, memory_order_relaxed);
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void wake_poller_locked(void) {
    gocc__assert_held(&P.mu);
    if (P.wake_w < 0) return;
    uint64_t one = 1; /* an eventfd takes 8 bytes; a pipe any */
    ssize_t r = write(P.wake_w, &one, sizeof one);
    (void)r; /* a full pipe is a pending wake already */
}

/* ---- the kernel backend ---- */

#if NETPOLL_EPOLL

static int backend_open_locked(void) {
    P.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (P.epfd < 0) return errno == ENOMEM ? GOCC_ENOMEM : GOCC_EAGAIN;
    P.wake_r = P.wake_w = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_KEY};
    if (P.wake_r >= 0 && epoll_ctl(P.epfd, EPOLL_CTL_ADD, P.wake_r, &ev) == 0) return 0;
    if (P.wake_r >= 0) close(P.wake_r);
    close(P.epfd);
    P.epfd = P.wake_r = P.wake_w = -1;
    return GOCC_ENOMEM;
}

static void backend_close_locked(void) {
    if (P.epfd >= 0) close(P.epfd);
    if (P.wake_r >= 0) close(P.wake_r);
    P.epfd = P.wake_r = P.wake_w = -1;
}

/* A handle: every edge, for good. A gocc_fd_poll wait: one report of what
 * it asks for, level-triggered, so readiness already there is reported. */
static int backend_add(const slot *s, uint64_t key) {
    struct epoll_event ev = {.data.u64 = key};
    if (s->kind == SLOT_FD) {
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    } else {
        const once_wait *o = s->obj;
        ev.events = EPOLLONESHOT;
        if (o->events & GOCC_FD_READ) ev.events |= EPOLLIN | EPOLLRDHUP;
        if (o->events & GOCC_FD_WRITE) ev.events |= EPOLLOUT;
    }
    return epoll_ctl(P.epfd, EPOLL_CTL_ADD, s->fd, &ev) == 0 ? 0 : -errno;
}

/* Returns the poller's round to wait out: none, epoll lets go at once. */
static uint64_t backend_del_locked(int fd) {
    struct epoll_event ev = {0}; /* kernels before 2.6.9 want one */
    if (P.epfd >= 0) (void)epoll_ctl(P.epfd, EPOLL_CTL_DEL, fd, &ev);
    return 0;
}

static void backend_del_wait(uint64_t round) { (void)round; }

static int events_of(uint32_t e) {
    int r = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) r |= GOCC_FD_READ;
    if (e & EPOLLOUT) r |= GOCC_FD_WRITE;
    if (e & (EPOLLERR | EPOLLHUP)) r |= GOCC_FD_READ | GOCC_FD_WRITE;
    return r;
}

/* The token holder, no lock held; @p timeout_ms as epoll_wait's. */
static int backend_wait(pevent *out, int max, int timeout_ms) {
    struct epoll_event ev[BATCH];
    int epfd = atomic_load_explicit(&poll_epfd, memory_order_relaxed);
    int n = epoll_wait(epfd, ev, max < BATCH ? max : BATCH, timeout_ms);
    for (int i = 0; i < n; i++) out[i] = (pevent){ev[i].data.u64, events_of(ev[i].events)};
    return n > 0 ? n : 0;
}

static void backend_free_locked(void) {}

#else /* poll(2) */

static struct pollfd *pset; /* the token holder's set (and its keys) */
static uint64_t *pkeys;
static size_t pcap;
static size_t pset_n; /* entries in the set (P.mu) */
/* Odd while the token holder is inside poll(2) with pset: set under P.mu
 * with the set, made even again as soon as poll(2) returns. An unregister
 * that finds its descriptor in the set waits for it to change. */
static _Atomic uint64_t pround;

static int backend_open_locked(void) {
    int p[2];
    if (pipe(p) != 0) return errno == ENOMEM ? GOCC_ENOMEM : GOCC_EAGAIN;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
    }
    P.wake_r = p[0];
    P.wake_w = p[1];
    return 0;
}

static void backend_close_locked(void) {
    if (P.wake_r >= 0) close(P.wake_r);
    if (P.wake_w >= 0) close(P.wake_w);
    P.wake_r = P.wake_w = -1;
    /* Nobody holds the role (shutdown), or the holder is not in this
     * process (a fork child): no round is under way. */
    pset_n = 0;
    atomic_store_explicit(&pround,
                          (atomic_load_explicit(&pround, memory_order_relaxed) + 1) & ~(uint64_t)1,
                          memory_order_relaxed);
}

/* Watched from the next round on (the waiter kicks). A handle's
 * descriptor adopted twice is refused, as epoll does. */
static int backend_add(const slot *s, uint64_t key) {
    for (uint32_t i = 0; s->kind == SLOT_FD && i < P.cap; i++)
        if (&P.slots[i] != s && P.slots[i].kind == SLOT_FD && P.slots[i].fd == s->fd &&
            key_of(i) != key)
            return -EEXIST;
    return 0;
}

/* poll(2) holds the files it watches until it returns: wake the poller
 * and return the round to wait out (0: none), so that a descriptor closed
 * next is released (its peer sees the close) when close returns, as with
 * epoll, not at the next readiness. */
static uint64_t backend_del_locked(int fd) {
    gocc__assert_held(&P.mu);
    uint64_t r = atomic_load_explicit(&pround, memory_order_relaxed);
    if (!(r & 1)) return 0;
    for (size_t i = 1; i < pset_n; i++) {
        if (pset[i].fd == fd) {
            wake_poller_locked();
            return r;
        }
    }
    return 0;
}

/* Outside P.mu: the holder is woken and returns from poll(2) at once
 * (it takes no lock before it says so). */
static void backend_del_wait(uint64_t r) {
    while (r != 0 && atomic_load_explicit(&pround, memory_order_acquire) == r) sched_yield();
}

static short poll_bits(int events) {
    short b = 0;
    if (events & GOCC_FD_READ) b |= POLLIN;
    if (events & GOCC_FD_WRITE) b |= POLLOUT;
    return b;
}

static int events_of(short revents) {
    int r = 0;
    if (revents & POLLIN) r |= GOCC_FD_READ;
    if (revents & POLLOUT) r |= GOCC_FD_WRITE;
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) r |= GOCC_FD_READ | GOCC_FD_WRITE;
    return r;
}

static bool set_reserve(size_t n) {
    if (n <= pcap) return true;
    size_t ncap = n < 64 ? 64 : 2 * n;
    struct pollfd *ps = gocc__realloc(pset, ncap * sizeof *ps);
    if (ps != NULL) pset = ps;
    uint64_t *ks = ps != NULL ? gocc__realloc(pkeys, ncap * sizeof *ks) : NULL;
    if (ks != NULL) pkeys = ks;
    if (ps == NULL || ks == NULL) return false;
    pcap = ncap;
    return true;
}

/* What some call waits for now, slot by slot (the token holder, P.mu held). */
static size_t set_build_locked(void) {
    gocc__assert_held(&P.mu);
    pset[0] = (struct pollfd){.fd = P.wake_r, .events = POLLIN};
    pkeys[0] = WAKE_KEY;
    size_t n = 1;
    for (uint32_t i = 0; i < P.cap; i++) {
        slot *s = &P.slots[i];
        int ev = 0;
        if (s->kind == SLOT_FD)
            ev = gocc__fd_interest(s->obj);
        else if (s->kind == SLOT_ONCE && !((once_wait *)s->obj)->fired)
            ev = ((once_wait *)s->obj)->events;
        if (ev == 0) continue;
        pset[n] = (struct pollfd){.fd = s->fd, .events = poll_bits(ev)};
        pkeys[n++] = key_of(i);
    }
    return n;
}

static int backend_wait(pevent *out, int max, int timeout_ms) {
    gocc__lock(&P.mu);
    bool room = set_reserve((size_t)P.used + 1);
    size_t n = room ? set_build_locked() : 0;
    int wake_r = P.wake_r;
    uint64_t r = atomic_load_explicit(&pround, memory_order_relaxed) + 1;
    if (room) {
        pset_n = n;
        atomic_store_explicit(&pround, r, memory_order_relaxed); /* odd: in a round */
    }
    gocc__unlock(&P.mu);
    if (!room) { /* no memory for the set: look again soon */
        struct pollfd w = {.fd = wake_r, .events = POLLIN};
        if (poll(&w, 1, timeout_ms < 0 || timeout_ms > 10 ? 10 : timeout_ms) <= 0) return 0;
        out[0] = (pevent){WAKE_KEY, GOCC_FD_READ};
        return 1;
    }
    int got = poll(pset, (nfds_t)n, timeout_ms);
    atomic_store_explicit(&pround, r + 1, memory_order_release); /* the files are let go */
    if (got <= 0) return 0;
    int k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (pset[i].revents != 0) out[k++] = (pevent){pkeys[i], events_of(pset[i].revents)};
    return k;
}

static void backend_free_locked(void) {
    gocc__free(pset);
    gocc__free(pkeys);
    pset = NULL;
    pkeys = NULL;
    pcap = 0;
    pset_n = 0;
}

#endif

/* ---- dispatching what the kernel reported ---- */

static void dispatch_locked(const pevent *e, gocc__wakeq *wake) {
    gocc__assert_held(&P.mu);
    if (e->key == WAKE_KEY) {
        wake_drain();
        return;
    }
    slot *s = slot_of_locked(e->key);
    if (s == NULL) return; /* freed since the kernel reported it */
    if (s->kind == SLOT_FD) {
        gocc__fd_ready(s->obj, e->events, wake);
        return;
    }
    once_wait *o = s->obj; /* anything reported ends it: the caller polls again */
    if (o->fired) return;
    o->fired = true;
    GOCC_PROBE2(io_ready, s->fd, e->events);
    if (gocc__waiter_claim(o->rec.w)) gocc__wakeq_signal(wake, o->rec.w);
}

/* ---- the poll role ---- */

bool gocc__netpoll_wanted(void) {
    return atomic_load_explicit(&nused, memory_order_relaxed) != 0 &&
           atomic_load_explicit(&poll_token, memory_order_relaxed) == 0;
}

bool gocc__netpoll_claim(void) {
    if (!gocc__netpoll_wanted()) return false;
    int free_token = 0;
    if (!atomic_compare_exchange_strong_explicit(&poll_token, &free_token, 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return false;
    /* Claimed: shutdown waits for the token before it closes the backend,
     * and turns claims away first (stop), so the backend is open now
     * unless it was never opened or stop is set. */
    if (atomic_load_explicit(&P.stop, memory_order_acquire) ||
        atomic_load_explicit(&poll_epfd, memory_order_acquire) < 0) {
        gocc__netpoll_release();
        return false;
    }
    return true;
}

void gocc__netpoll_release(void) { atomic_store_explicit(&poll_token, 0, memory_order_release); }

void gocc__netpoll_poll(bool block, void (*woke)(void *), void *arg) {
    pevent ev[BATCH];
    int n = backend_wait(ev, BATCH, block ? -1 : 0);
    if (woke != NULL) woke(arg);
    gocc__wakeq wake = GOCC__WAKEQ_INIT;
    if (n > 0) {
        gocc__lock(&P.mu);
        for (int i = 0; i < n; i++) dispatch_locked(&ev[i], &wake);
        gocc__unlock(&P.mu);
    }
    gocc__netpoll_release();
    gocc__wakeq_wake_all(&wake);
}

void gocc__netpoll_break(void) {
    gocc__lock(&P.mu);
    wake_poller_locked();
    gocc__unlock(&P.mu);
}

/* ---- the slot table (P.mu held) ---- */

static int table_grow_locked(void) {
    gocc__assert_held(&P.mu);
    uint32_t ncap = P.cap ? 2 * P.cap : 64;
    if (ncap <= P.cap || ncap == NO_SLOT) return GOCC_ENOMEM;
    slot *t = gocc__realloc(P.slots, (size_t)ncap * sizeof *t);
    if (t == NULL) return GOCC_ENOMEM;
    for (uint32_t i = ncap; i-- > P.cap;) {
        t[i] = (slot){.kind = SLOT_FREE, .gen = 1, .fd = -1, .next_free = P.free_head};
        P.free_head = i;
    }
    P.slots = t;
    P.cap = ncap;
    return 0;
}

static void slot_free_locked(slot *s) {
    gocc__assert_held(&P.mu);
    s->kind = SLOT_FREE;
    s->obj = NULL;
    s->fd = -1;
    s->gen++;
    s->next_free = P.free_head;
    P.free_head = (uint32_t)(s - P.slots);
    P.used--;
    atomic_store_explicit(&nused, P.used, memory_order_relaxed);
}

/* The kernel's answer as the library's: 1 for "cannot be watched". */
static int add_error(int rc) {
    switch (rc) {
    case -EPERM: return 1;
    case -EEXIST: /* adopted already */
    case -EBADF: return GOCC_EINVAL;
    case -ENOSPC: /* the user's watch limit */
    case -ENOMEM: return GOCC_ENOMEM;
    default: return rc;
    }
}

static int slot_add_locked(int fd, int kind, void *obj, uint64_t *key) {
    gocc__assert_held(&P.mu);
    if (P.free_head == NO_SLOT) {
        int rc = table_grow_locked();
        if (rc != 0) return rc;
    }
    uint32_t i = P.free_head;
    slot *s = &P.slots[i];
    P.free_head = s->next_free;
    s->kind = kind;
    s->obj = obj;
    s->fd = fd;
    P.used++;
    atomic_store_explicit(&nused, P.used, memory_order_relaxed);
    *key = key_of(i);
    /* The kernel's registration can fail (its memory, a watch limit):
     * fault builds fail it here on demand. */
    int rc = GOCC_FAULT_ALLOC() ? GOCC_ENOMEM : backend_add(s, *key);
    if (rc != 0) slot_free_locked(s);
    return add_error(rc);
}

/* Register the table's descriptors again (a new epoll instance in the
 * child of a fork). One that fails stays unwatched: its calls wait on. */
static void table_readd_locked(void) {
    gocc__assert_held(&P.mu);
    for (uint32_t i = 0; i < P.cap; i++)
        if (P.slots[i].kind == SLOT_FD) (void)backend_add(&P.slots[i], key_of(i));
}

static int open_locked(void) {
    gocc__assert_held(&P.mu);
    int rc = backend_open_locked();
    if (rc != 0) return rc;
    table_readd_locked();
    P.open = true;
    atomic_store_explicit(&poll_wake_r, P.wake_r, memory_order_relaxed);
    atomic_store_explicit(&poll_epfd, NETPOLL_EPOLL ? P.epfd : P.wake_r, memory_order_release);
    atomic_store_explicit(&P.stale, false, memory_order_release);
    return 0;
}

/* The backend is open (opened now if need be): 0, GOCC_ENOMEM or
 * GOCC_EAGAIN. */
static int running_locked(void) {
    gocc__assert_held(&P.mu);
    return P.open ? 0 : open_locked();
}

/* ---- internal API ---- */

int gocc__netpoll_register(int fd, gocc_fd_t *f, uint64_t *key) {
    gocc__lock(&P.mu);
    int rc = running_locked();
    if (rc == 0) rc = slot_add_locked(fd, SLOT_FD, f, key);
    gocc__unlock(&P.mu);
    return rc;
}

void gocc__netpoll_unregister(int fd, uint64_t key) {
    gocc__lock(&P.mu);
    slot *s = slot_of_locked(key);
    uint64_t round = 0;
    if (s != NULL && s->fd == fd) {
        round = backend_del_locked(fd);
        slot_free_locked(s);
    }
    gocc__unlock(&P.mu);
    backend_del_wait(round);
}

void gocc__netpoll_kick(void) {
#if !NETPOLL_EPOLL
    if (atomic_load_explicit(&poll_token, memory_order_acquire)) {
        gocc__netpoll_break(); /* rebuild the set with this wait in it */
        return;
    }
#endif
    /* Nobody polls: get a worker to (a cheap look when one does). */
    if (!atomic_load_explicit(&poll_token, memory_order_acquire)) gocc__sched_poke();
}

int gocc__netpoll_need(void) {
    if (GOCC_LIKELY(!atomic_load_explicit(&P.stale, memory_order_acquire))) return 0;
    gocc__lock(&P.mu);
    int rc = running_locked();
    gocc__unlock(&P.mu);
    return rc;
}

/* The descriptor is registered as a dup of its own (the caller's stays
 * untouched, and it may be adopted elsewhere under its own number),
 * armed before it is published: the poller may claim it at once. */
int gocc__netpoll_wait_once(int fd, int events, gocc_ctx_t *ctx) {
    int err;
    gocc_chan_t *done = gocc__ctx_done_chan(ctx, &err);
    if (err != 0) return err;
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return -errno;
    once_wait o = {.rec = {.w = w}, .events = events};
    uint64_t key = 0;
    gocc__waiter_arm(w);
    gocc__lock(&P.mu);
    int rc = running_locked();
    if (rc == 0) rc = slot_add_locked(dup_fd, SLOT_ONCE, &o, &key);
    gocc__unlock(&P.mu);
    if (rc == 0) {
        gocc__netpoll_kick();
        GOCC_PROBE2(io_wait, fd, events);
        rc = gocc__wait_armed(w, done, ctx, GOCC_WAIT_IO, NULL, GOCC__IO_DETAIL(fd, events));
        gocc__netpoll_unregister(dup_fd, key);
    } else {
        (void)gocc__waiter_claim(w); /* published nowhere: disarm */
        if (rc == 1) rc = -EPERM;
    }
    close(dup_fd);
    return rc;
}

/* ---- shutdown and fork ---- */

int gocc__netpoll_shutdown(void) {
    gocc__lock(&P.mu);
    if (P.used > 0) {
        gocc__unlock(&P.mu);
        return GOCC_EAGAIN;
    }
    /* Turn new claims away, then wait for the holder (a worker in its
     * wait, or the monitor's look) to give the role back. */
    atomic_store_explicit(&P.stop, true, memory_order_seq_cst);
    while (atomic_load_explicit(&poll_token, memory_order_acquire)) {
        wake_poller_locked();
        gocc__unlock(&P.mu);
        sched_yield();
        gocc__lock(&P.mu);
    }
    atomic_store_explicit(&poll_epfd, -1, memory_order_relaxed);
    atomic_store_explicit(&poll_wake_r, -1, memory_order_relaxed);
    backend_close_locked();
    backend_free_locked();
    P.open = false;
    gocc__free(P.slots); /* the next registration makes a new table */
    P.slots = NULL;
    P.cap = 0;
    P.free_head = NO_SLOT;
    atomic_store_explicit(&P.stop, false, memory_order_release);
    gocc__unlock(&P.mu);
    return 0;
}

void gocc__netpoll_fork_prepare(void) { gocc__lock(&P.mu); }
void gocc__netpoll_fork_parent(void) { gocc__unlock(&P.mu); }

void gocc__netpoll_fork_child(void) {
    backend_close_locked(); /* the child's copies of the parent's */
    for (uint32_t i = 0; i < P.cap; i++)
        if (P.slots[i].kind == SLOT_ONCE) slot_free_locked(&P.slots[i]);
    P.open = false;
    atomic_store_explicit(&poll_token, 0, memory_order_relaxed); /* its holder is gone */
    atomic_store_explicit(&poll_epfd, -1, memory_order_relaxed);
    atomic_store_explicit(&poll_wake_r, -1, memory_order_relaxed);
    atomic_store_explicit(&P.stop, false, memory_order_relaxed);
    atomic_store_explicit(&P.stale, P.used > 0, memory_order_release);
    gocc__unlock(&P.mu);
}

bool gocc__netpoll_in_use(void) { return atomic_load_explicit(&nused, memory_order_acquire) != 0; }
