/*
 * b10_conn_pool.c - B10 (chapter 9, "Semaphore Pattern"): a connection pool
 * from a weighted semaphore and a buffered channel of idle connections.
 *
 *   NewConnectionPool(size): sem = semaphore.NewWeighted(size),
 *                            conns = make(chan *Connection, size)
 *   Acquire(ctx): sem.Acquire(ctx, 1) (or return the error); then an idle
 *                 connection from conns if there is one, else newConnection()
 *   Release(conn): defer sem.Release(1); put conn back in conns, or Close()
 *                  it when conns is full
 *
 * The semaphore bounds connections in use; the channel keeps idle ones for
 * reuse. Since Release puts the connection back BEFORE releasing its
 * weight, a new connection is only made when none is idle, and then every
 * other connection is held by another weight holder: the pool never makes
 * more than `size` connections and never finds conns full, so with paired
 * Acquire/Release the Close branch does not run. (The example counts it.)
 *
 * The connections are real: newConnection dials a small "database" on
 * 127.0.0.1 (an ephemeral port; an accepting task and a task per
 * connection, as a Go server runs a goroutine per connection), a query
 * writes a number and reads back the number plus one through gocc_fd_*,
 * and Close closes the socket (the server's task sees the end of file).
 *
 * b10_reuse: one caller: Acquire, Release, Acquire gets the same connection
 *   back.
 * b10_acquire_ctx: size 2, both held: Acquire with a 50 ms timeout fails with
 *   "context deadline exceeded" and takes nothing; after a Release the next
 *   Acquire succeeds and reuses the released connection.
 * b10_load: size 4, 16 tasks x 50 Acquire / use / Release.
 * At the end the pool's Close (not in the seed; C must free) drains conns
 * and closes every idle connection.
 *
 * Go -> C: *semaphore.Weighted is gocc_sem_t (FIFO, Acquire with ctx);
 * chan *Connection is a gocc_chan_t of pointers; the select with default
 * is gocc_chan_try_recv / gocc_chan_try_send (GOCC_EAGAIN = default); a
 * Connection is a malloc'd struct with an id, a use count and its socket
 * (a gocc_fd_t), and Close closes the socket and frees it. Errors are
 * ints (GOCC_EDEADLINE is ctx's deadline error).
 *
 * Checks: the same connection comes back; the timed-out Acquire waited
 * (at least 40 of its 50 ms), failed with GOCC_EDEADLINE and took no
 * weight (a try-acquire of the whole size succeeds after the releases);
 * under load at most 4 connections were in use at any moment, at most 4
 * were ever made, the rest of the 800 Acquires reused them, every query
 * got its right answer over its socket, none was closed before the pool's
 * Close, and Close closed every one made (ASan checks none leaks); the
 * server accepted exactly the connections the pools made and saw each one
 * closed. gocc_tasks_live() == 0.
 * Exit 1 if wrong.
 */
#define _GNU_SOURCE 1 /* SOCK_CLOEXEC */
#include <gocc.h>

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B10", ok, what)

/* ---- the database: an accepting task, a task per connection --------------- */

static struct server {
    gocc_fd_t *listener;
    struct sockaddr_in addr;    /* 127.0.0.1:<ephemeral port> */
    gocc_waitgroup_t wg;        /* the accepting task and every handler */
    atomic_int accepted, ended; /* connections accepted, handlers that saw their close */
    atomic_long queries;        /* answered */
} db = {.wg = GOCC_WAITGROUP_INIT};

static atomic_int dialed; /* connections the pools made, over all runs */

/* Read exactly n bytes: 0, or the error (GOCC_ECLOSED at end of file). */
static int read_full(gocc_fd_t *f, void *buf, size_t n, gocc_ctx_t *ctx) {
    for (size_t got = 0; got < n;) {
        ssize_t r = gocc_fd_read(f, (char *)buf + got, n - got, ctx);
        if (r <= 0) return r == 0 ? GOCC_ECLOSED : (int)r;
        got += (size_t)r;
    }
    return 0;
}

/* A query is a number; its answer the number plus one. Until the client
 * closes the connection. */
static int serve_conn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    gocc_fd_t *c = arg;
    uint64_t q;
    while (read_full(c, &q, sizeof q, NULL) == 0) {
        q++;
        if (gocc_fd_write(c, &q, sizeof q, NULL, NULL) != (ssize_t)sizeof q) break;
        atomic_fetch_add(&db.queries, 1);
    }
    gocc_fd_close(c);
    gocc_fd_release(c);
    atomic_fetch_add(&db.ended, 1);
    gocc_waitgroup_done(&db.wg);
    return 0;
}

static int accept_loop(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    for (;;) {
        gocc_fd_t *c = NULL;
        if (gocc_fd_accept(db.listener, &c, NULL, NULL, NULL) != 0) break; /* closed: stop */
        atomic_fetch_add(&db.accepted, 1);
        gocc_waitgroup_add(&db.wg, 1);
        if (gocc_go(serve_conn, ctx, c) != 0) { /* no task: hang up on it */
            gocc_fd_close(c);
            gocc_fd_release(c);
            gocc_waitgroup_done(&db.wg);
        }
    }
    gocc_waitgroup_done(&db.wg);
    return 0;
}

static bool server_start(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof db.addr;
    db.addr.sin_family = AF_INET;
    db.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&db.addr, sizeof db.addr) != 0 || listen(s, 64) != 0 ||
        getsockname(s, (struct sockaddr *)&db.addr, &len) != 0) {
        if (s >= 0) close(s);
        return false;
    }
    db.listener = gocc_fd_open(s);
    if (db.listener == NULL) {
        close(s);
        return false;
    }
    gocc_waitgroup_add(&db.wg, 1);
    if (gocc_go(accept_loop, NULL, NULL) != 0) {
        gocc_waitgroup_done(&db.wg);
        return false;
    }
    return true;
}

/* Close the listener (the accepting task wakes with GOCC_ECLOSED) and wait
 * for every handler: each ends when its client closes. A connection is
 * made once the kernel queues it, before the accepting task takes it: let
 * the task take every one first (bounded), or closing would reset them. */
static void server_stop(void) {
    int64_t end = gocc_now() + 2 * GOCC_SECOND;
    while (atomic_load(&db.accepted) < atomic_load(&dialed) && gocc_now() < end)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    gocc_fd_close(db.listener);
    gocc_waitgroup_wait(&db.wg, NULL);
    gocc_fd_release(db.listener);
}

/* ---- Connection ----------------------------------------------------------- */

typedef struct connection {
    int id;
    atomic_int in_use; /* 1 while someone holds it: must never be taken twice */
    long uses;         /* written only by the holder */
    gocc_fd_t *sock;   /* connected to the database */
} connection_t;

typedef struct pool_stats {
    atomic_int created, closed, reused;
    atomic_int in_use, max_in_use; /* connections handed out, not yet released */
    atomic_int double_use;         /* a connection handed to two holders */
} pool_stats_t;

static connection_t *new_connection(pool_stats_t *st) { /* newConnection(): dial */
    connection_t *c = calloc(1, sizeof *c);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c != NULL && s >= 0) c->sock = gocc_fd_open(s);
    if (c == NULL || c->sock == NULL ||
        gocc_fd_connect(c->sock, (const struct sockaddr *)&db.addr, sizeof db.addr, NULL) != 0) {
        if (c != NULL && c->sock != NULL)
            gocc_fd_release(c->sock); /* closes s */
        else if (s >= 0)
            close(s);
        free(c);
        return NULL;
    }
    atomic_fetch_add(&dialed, 1);
    c->id = atomic_fetch_add(&st->created, 1) + 1;
    return c;
}

static void conn_close(connection_t *c, pool_stats_t *st) { /* conn.Close() */
    atomic_fetch_add(&st->closed, 1);
    gocc_fd_close(c->sock);
    gocc_fd_release(c->sock);
    free(c);
}

/* The holder's query: send uses, expect uses + 1 back. 0, or an error. */
static int query(connection_t *c, gocc_ctx_t *ctx) {
    uint64_t q = (uint64_t)c->uses, a = 0;
    ssize_t w = gocc_fd_write(c->sock, &q, sizeof q, NULL, ctx);
    if (w != (ssize_t)sizeof q) return w < 0 ? (int)w : GOCC_EINVAL;
    int err = read_full(c->sock, &a, sizeof a, ctx);
    return err != 0 ? err : a == q + 1 ? 0 : GOCC_EINVAL;
}

/* ---- ConnectionPool -------------------------------------------------------- */

typedef struct connection_pool {
    gocc_sem_t *sem;    /* weight 1 per connection in use */
    gocc_chan_t *conns; /* idle connections (connection_t *), capacity size */
    pool_stats_t stats;
} connection_pool_t;

static connection_pool_t *new_connection_pool(int64_t size) {
    connection_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->sem = gocc_sem_new(size);
    p->conns = gocc_chan_new(sizeof(connection_t *), (size_t)size);
    if (!p->sem || !p->conns) {
        gocc_sem_free(p->sem);
        gocc_chan_release(p->conns);
        free(p);
        return NULL;
    }
    return p;
}

static void note_max(atomic_int *max, int now) {
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now)) {
    }
}

/* Acquire(ctx) (*Connection, error): 0 with *out set, or the error. */
static int pool_acquire(connection_pool_t *p, gocc_ctx_t *ctx, connection_t **out) {
    int err = gocc_sem_acquire(p->sem, 1, ctx);
    if (err != 0) return err;
    connection_t *c;
    if (gocc_chan_try_recv(p->conns, &c) == 0) { /* case conn := <-p.conns */
        atomic_fetch_add(&p->stats.reused, 1);
    } else if ((c = new_connection(&p->stats)) == NULL) { /* default: */
        gocc_sem_release(p->sem, 1);
        return GOCC_ENOMEM;
    }
    atomic_fetch_add(&p->stats.double_use, atomic_exchange(&c->in_use, 1));
    note_max(&p->stats.max_in_use, atomic_fetch_add(&p->stats.in_use, 1) + 1);
    *out = c;
    return 0;
}

/* Release(conn) */
static void pool_release(connection_pool_t *p, connection_t *c) {
    atomic_fetch_sub(&p->stats.in_use, 1);
    atomic_store(&c->in_use, 0);
    if (gocc_chan_try_send(p->conns, &c) != 0) /* default: pool full */
        conn_close(c, &p->stats);
    gocc_sem_release(p->sem, 1); /* the deferred p.sem.Release(1) runs last */
}

/* Not in the seed: close every idle connection and free the pool. No
 * connection may be in use. */
static void pool_close(connection_pool_t *p) {
    connection_t *c;
    while (gocc_chan_try_recv(p->conns, &c) == 0) conn_close(c, &p->stats);
    gocc_sem_free(p->sem);
    gocc_chan_release(p->conns);
    free(p);
}

/* ---- b10_reuse, b10_acquire_ctx ------------------------------------------- */

static void b10_reuse(void) {
    connection_pool_t *p = new_connection_pool(4);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    connection_t *a = NULL, *b = NULL;
    int e1 = pool_acquire(p, NULL, &a);
    if (e1 == 0) pool_release(p, a);
    int e2 = pool_acquire(p, NULL, &b);
    check(e1 == 0 && e2 == 0 && a == b, "the released connection is reused");
    check(atomic_load(&p->stats.created) == 1, "one connection made for two Acquires");
    printf("B10 reuse: Acquire -> conn #%d, Release, Acquire -> conn #%d (%d made)\n",
           e1 == 0 ? a->id : 0, e2 == 0 ? b->id : 0, atomic_load(&p->stats.created));
    if (e2 == 0) pool_release(p, b);
    pool_close(p);
}

static void b10_acquire_ctx(void) {
    connection_pool_t *p = new_connection_pool(2);
    if (!p) {
        check(false, "made the pool");
        return;
    }
    connection_t *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL;
    int e1 = pool_acquire(p, NULL, &c1), e2 = pool_acquire(p, NULL, &c2);

    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    int e3 = pool_acquire(p, ctx, &c3); /* both held: waits, then the deadline */
    int64_t waited = gocc_now() - t0;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(e1 == 0 && e2 == 0 && e3 == GOCC_EDEADLINE && c3 == NULL,
          "Acquire on a full pool fails with its context's deadline");
    check(waited >= 40 * GOCC_MILLISECOND, "it waited for the deadline, not failing at once");

    if (e2 == 0) pool_release(p, c2);
    int e4 = pool_acquire(p, NULL, &c4);
    check(e4 == 0 && c4 == c2, "after a Release, Acquire reuses the released connection");
    if (e4 == 0) pool_release(p, c4);
    if (e1 == 0) pool_release(p, c1);
    bool all_free = gocc_sem_try_acquire(p->sem, 2);
    check(all_free, "the timed-out Acquire took no weight");
    if (all_free) gocc_sem_release(p->sem, 2);
    printf("B10 acquire(ctx): size 2, both held: Acquire(50 ms) -> \"%s\" after %.0f ms; after a "
           "Release, Acquire -> conn #%d again\n",
           gocc_strerror(e3), (double)waited / GOCC_MILLISECOND, e4 == 0 ? c4->id : 0);
    pool_close(p);
}

/* ---- b10_load --------------------------------------------------------------- */

#define SIZE 4
#define USERS 16
#define ROUNDS 50

typedef struct user {
    connection_pool_t *pool;
    int errors, bad_answers;
} user_t;

static int use_pool(gocc_ctx_t *ctx, void *arg) {
    user_t *u = arg;
    for (int i = 0; i < ROUNDS; i++) {
        connection_t *c;
        if (pool_acquire(u->pool, ctx, &c) != 0) {
            u->errors++;
            continue;
        }
        c->uses++;
        if (query(c, ctx) != 0) u->bad_answers++;
        if (i % 8 == 0) gocc_sleep(100 * GOCC_MICROSECOND, ctx); /* now and then a slow one */
        pool_release(u->pool, c);
    }
    return 0;
}

static void b10_load(void) {
    connection_pool_t *p = new_connection_pool(SIZE);
    gocc_group_t *g = gocc_group_new(NULL);
    if (!p || !g) {
        check(false, "made the pool and group");
        gocc_group_free(g);
        if (p) pool_close(p);
        return;
    }
    user_t users[USERS];
    int started = 0, errors = 0, bad = 0;
    for (int i = 0; i < USERS; i++) {
        users[i] = (user_t){p, 0, 0};
        started += gocc_group_go(g, use_pool, &users[i]) == 0;
    }
    gocc_group_wait(g);
    gocc_group_free(g);
    for (int i = 0; i < USERS; i++) {
        errors += users[i].errors;
        bad += users[i].bad_answers;
    }

    pool_stats_t *st = &p->stats;
    int created = atomic_load(&st->created), reused = atomic_load(&st->reused);
    int closed_while_running = atomic_load(&st->closed), max = atomic_load(&st->max_in_use);
    long uses = 0;
    connection_t *idle[SIZE];
    int n_idle = 0;
    while (n_idle < SIZE && gocc_chan_try_recv(p->conns, &idle[n_idle]) == 0) {
        uses += idle[n_idle]->uses;
        n_idle++;
    }
    for (int i = 0; i < n_idle; i++) gocc_chan_try_send(p->conns, &idle[i]); /* put them back */

    check(started == USERS && errors == 0, "every Acquire succeeded");
    check(bad == 0, "every query got its answer over its connection's socket");
    check(max <= SIZE && atomic_load(&st->double_use) == 0,
          "never more than 4 connections in use, none held twice");
    check(created <= SIZE && created + reused == USERS * ROUNDS,
          "at most 4 connections made; every other Acquire reused one");
    check(closed_while_running == 0, "Release never found the pool full");
    check(n_idle == created && uses == USERS * ROUNDS,
          "every connection is back, every use counted");
    pool_close(p); /* st is freed with the pool: read above */
    printf("B10 load: pool size %d, %d tasks x %d Acquire/Release: %d connections made, %d "
           "reuses, at most %d in use at once, %d closed by Release, %d closed by the pool's "
           "Close\n",
           SIZE, USERS, ROUNDS, created, reused, max, closed_while_running, n_idle);
}

int main(void) {
    if (!server_start()) {
        check(false, "started the server on 127.0.0.1");
        return 1;
    }
    b10_reuse();
    b10_acquire_ctx();
    b10_load();
    server_stop();
    check(atomic_load(&db.accepted) == atomic_load(&dialed) &&
              atomic_load(&db.ended) == atomic_load(&db.accepted),
          "the server accepted each connection the pools made and saw each one closed");
    printf("B10 server: 127.0.0.1:%d accepted %d connections (the pools made %d), %d closed, "
           "%ld queries answered\n",
           ntohs(db.addr.sin_port), atomic_load(&db.accepted), atomic_load(&dialed),
           atomic_load(&db.ended), (long)atomic_load(&db.queries));
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B10 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
