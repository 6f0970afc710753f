/*
 * net_echo.c - NET: a TCP echo server on 127.0.0.1 with one task per
 * connection, shut down gracefully by cancelling its context, and the
 * clients that check it, in one program.
 *
 * The Go it stands for:
 *
 *   ln, _ := net.Listen("tcp", "127.0.0.1:0")
 *   g, ctx := errgroup.WithContext(root)
 *   g.Go(func() error {              // the acceptor
 *       for {
 *           conn, err := ln.Accept() // unblocked by the shutdown
 *           if err != nil { return nil }
 *           g.Go(func() error { defer conn.Close(); io.Copy(conn, conn); return nil })
 *       }
 *   })
 *   ... clients dial, write, read back, compare ...
 *   cancel(); g.Wait()               // graceful shutdown
 *
 * Go -> C: net.Listener and net.Conn are gocc_fd_t handles (gocc_fd_open
 * on a socket the program made; gocc_fd_accept adopts each connection);
 * ln.Accept and conn.Read take the context, so cancelling it is the
 * shutdown (Go would close the listener and set deadlines); the port is
 * 0 and read back with getsockname.
 *
 * net_clients: CLIENTS clients (1,000; fewer under sanitizers), every one
 *   connected at once (a task each), send three lines and read each echo
 *   back whole; every byte is compared.
 * net_shutdown: IDLE more clients connect and say nothing; cancelling the
 *   server's context ends the acceptor and every connection task (each
 *   closes its connection: the idle clients read end of file), the
 *   server's group returns, and gocc_leakcheck finds no task left.
 *
 * Checks: every echo equal to what was sent; every idle client saw its
 * connection closed by the shutdown; the server's group returned 0; no
 * task left (gocc_leakcheck). Exit 1 if wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include <gocc.h>

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "example.h"

#define check(ok, what) example_check("NET", ok, what)

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define NET_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define NET_SANITIZED 1
#endif
#endif
#if defined(NET_SANITIZED)
#define CLIENTS 100 /* sanitizers: slower, and ThreadSanitizer keeps ~1500 tasks */
#else
#define CLIENTS 1000
#endif
#define IDLE 8
#define ROUNDS 3

/* ---- the server ---- */

typedef struct server {
    gocc_fd_t *ln;
    gocc_group_t *g;     /* the acceptor and every connection */
    atomic_int accepted; /* connections taken */
    atomic_int live;     /* connection tasks running */
} server;

typedef struct conn_arg {
    server *s;
    gocc_fd_t *c;
} conn_arg;

/* io.Copy(conn, conn) until end of file, an error, or the shutdown. A
 * connection's failure is its own, never the server's: always 0. */
static int serve_conn(gocc_ctx_t *ctx, void *arg) {
    conn_arg *a = arg;
    atomic_fetch_add(&a->s->live, 1);
    char buf[4096];
    ssize_t n;
    while ((n = gocc_fd_read(a->c, buf, sizeof buf, ctx)) > 0)
        if (gocc_fd_write(a->c, buf, (size_t)n, NULL, ctx) < 0) break;
    gocc_fd_close(a->c);
    gocc_fd_release(a->c);
    atomic_fetch_sub(&a->s->live, 1);
    free(a);
    return 0;
}

static int acceptor(gocc_ctx_t *ctx, void *arg) {
    server *s = arg;
    for (;;) {
        gocc_fd_t *c;
        int rc = gocc_fd_accept(s->ln, &c, NULL, NULL, ctx);
        if (rc != 0 && gocc_ctx_err(ctx) != 0) return 0; /* the shutdown */
        if (rc != 0) {
            fprintf(stderr, "NET accept: %s\n", gocc_strerror(rc));
            return rc; /* the server fails: its group context ends */
        }
        atomic_fetch_add(&s->accepted, 1);
        conn_arg *a = malloc(sizeof *a);
        if (a != NULL) *a = (conn_arg){s, c};
        if (a == NULL || gocc_group_go(s->g, serve_conn, a) != 0) {
            free(a);
            gocc_fd_close(c);
            gocc_fd_release(c);
        }
    }
}

/* net.Listen("tcp", "127.0.0.1:0"): the handle, and its address. */
static gocc_fd_t *listen_local(struct sockaddr_in *addr) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return NULL;
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *addr;
    if (bind(s, (struct sockaddr *)addr, len) != 0 || listen(s, SOMAXCONN) != 0 ||
        getsockname(s, (struct sockaddr *)addr, &len) != 0) {
        close(s);
        return NULL;
    }
    gocc_fd_t *ln = gocc_fd_open(s);
    if (ln == NULL) close(s);
    return ln;
}

/* ---- the clients ---- */

typedef struct client {
    struct sockaddr_in addr;
    int id;
    atomic_int *echoed; /* clients whose every echo was right */
    atomic_int *closed; /* idle clients that saw the shutdown */
} client;

static gocc_fd_t *dial(const struct sockaddr_in *addr, gocc_ctx_t *ctx) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    gocc_fd_t *f = s >= 0 ? gocc_fd_open(s) : NULL;
    if (f == NULL) {
        if (s >= 0) close(s);
        return NULL;
    }
    if (gocc_fd_connect(f, (const struct sockaddr *)addr, sizeof *addr, ctx) != 0) {
        gocc_fd_close(f);
        gocc_fd_release(f);
        return NULL;
    }
    return f;
}

/* Read exactly n bytes: 0, or why not. */
static int read_full(gocc_fd_t *f, char *buf, size_t n, gocc_ctx_t *ctx) {
    for (size_t got = 0; got < n;) {
        ssize_t r = gocc_fd_read(f, buf + got, n - got, ctx);
        if (r <= 0) return r == 0 ? GOCC_ECLOSED : (int)r;
        got += (size_t)r;
    }
    return 0;
}

static int echo_client(gocc_ctx_t *ctx, void *arg) {
    client *cl = arg;
    gocc_fd_t *f = dial(&cl->addr, ctx);
    if (f == NULL) return GOCC_ECLOSED;
    int rc = 0;
    for (int round = 0; round < ROUNDS && rc == 0; round++) {
        char line[80], back[80];
        int n = snprintf(line, sizeof line, "client %d, line %d: hello, echo\n", cl->id, round);
        if (gocc_fd_write(f, line, (size_t)n, NULL, ctx) != n)
            rc = GOCC_ECLOSED;
        else
            rc = read_full(f, back, (size_t)n, ctx);
        if (rc == 0 && memcmp(line, back, (size_t)n) != 0) rc = GOCC_EINVAL;
    }
    if (rc == 0) atomic_fetch_add(cl->echoed, 1);
    gocc_fd_close(f);
    gocc_fd_release(f);
    return 0; /* counted, not fatal: every client gets to run */
}

/* Connect, say nothing, and wait for the server to close the connection. */
static int idle_client(gocc_ctx_t *ctx, void *arg) {
    client *cl = arg;
    gocc_fd_t *f = dial(&cl->addr, ctx);
    if (f == NULL) return 0;
    char c;
    if (gocc_fd_read(f, &c, 1, ctx) == 0) atomic_fetch_add(cl->closed, 1);
    gocc_fd_close(f);
    gocc_fd_release(f);
    return 0;
}

/* Two descriptors per client (its end and the server's) must fit. */
static int clients_that_fit(int want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 100;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    long room = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
    room = (room - 64) / 2 - IDLE;
    return room < want ? (int)(room > 1 ? room : 1) : want;
}

/* Wait (bounded) until *v reaches want (exactly: until it is want). */
static bool reaches_(atomic_int *v, int want, bool exactly) {
    int64_t end = gocc_now() + 10 * GOCC_SECOND;
    while ((exactly ? atomic_load(v) != want : atomic_load(v) < want) && gocc_now() < end)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    return exactly ? atomic_load(v) == want : atomic_load(v) >= want;
}
#define reaches(v, want) reaches_((v), (want), false)
#define settles_at(v, want) reaches_((v), (want), true)

int main(void) {
    int n = clients_that_fit(CLIENTS);
    gocc_ctx_t *root = gocc_ctx_with_cancel(NULL);
    gocc_ctx_t *limit = gocc_ctx_with_timeout(NULL, 60 * GOCC_SECOND); /* a bug fails, not hangs */
    server srv = {0};
    struct sockaddr_in addr;
    srv.ln = listen_local(&addr);
    srv.g = root ? gocc_group_new(root) : NULL;
    client *cl = calloc((size_t)(n + IDLE), sizeof *cl);
    if (root == NULL || limit == NULL || srv.ln == NULL || srv.g == NULL || cl == NULL) {
        fprintf(stderr, "NET: setup failed\n");
        return 1;
    }
    check(gocc_group_go(srv.g, acceptor, &srv) == 0, "the acceptor started");
    printf("NET server on 127.0.0.1:%d, %d clients at once\n", ntohs(addr.sin_port), n);

    /* net_clients */
    atomic_int echoed = 0, closed = 0;
    int64_t t0 = gocc_now();
    gocc_group_t *clients = gocc_group_new(limit);
    for (int i = 0; i < n + IDLE; i++) {
        cl[i] = (client){addr, i, &echoed, &closed};
        check(gocc_group_go(clients, i < n ? echo_client : idle_client, &cl[i]) == 0,
              "a client started");
    }
    check(reaches(&echoed, n), "every echo came back equal to what was sent");
    printf("NET %d of %d clients got %d echoes each right (%.0f ms)\n", atomic_load(&echoed), n,
           ROUNDS, (double)(gocc_now() - t0) / 1e6);

    /* net_shutdown: only the idle clients' connections are left, served. */
    check(reaches(&srv.accepted, n + IDLE), "every connection was accepted");
    check(settles_at(&srv.live, IDLE), "the idle connections are served");
    gocc_ctx_cancel(root);
    int rc = gocc_group_wait(srv.g);
    check(rc == 0, "the server's group returned 0");
    check(atomic_load(&srv.live) == 0, "every connection task ended");
    gocc_group_wait(clients);
    check(atomic_load(&closed) == IDLE, "the shutdown closed every idle connection");
    printf("NET shutdown: server group %s, %d idle clients saw end of file\n", gocc_strerror(rc),
           atomic_load(&closed));

    gocc_group_free(clients);
    gocc_group_free(srv.g);
    gocc_fd_close(srv.ln);
    gocc_fd_release(srv.ln);
    check(gocc_leakcheck(0, 5 * GOCC_SECOND, STDERR_FILENO) == 0, "no task left");
    gocc_ctx_cancel(limit);
    gocc_ctx_release(limit);
    gocc_ctx_release(root);
    free(cl);
    printf("NET %s\n", example_failures ? "FAILED" : "ok");
    return example_failures ? 1 : 0;
}
