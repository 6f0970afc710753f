/*
 * bench-net.c - cancellable I/O over real sockets (src/fd.c, src/netpoll.c):
 * a loopback echo with many connections and the cost of many idle ones
 * (same method and CSV as the other programs; see harness.h).
 * bench/go/net.go runs the same names with Go's net package and goroutines.
 *
 *   net/echo/64        C = 1,000 TCP connections on 127.0.0.1 (TCP_NODELAY,
 *   net/echo/16k       as Go sets it), a client task and a server task per
 *                      connection (the server accepts in a task of its own
 *                      and starts one per connection). Each client writes a
 *                      64-byte (16 KiB) message and reads it back whole,
 *                      n times; the server echoes what it reads. Setting up
 *                      and closing the connections is left out. No ns/op
 *                      row; rows:
 *                        /permsg  ns/msg: wall time of the echo phase over
 *                                 the messages of all clients (n * C)
 *                        /p50 /p99 ns: one message's round trip as its
 *                                 client sees it (the last 1,024 of each)
 *                        /rate    msgs/s: messages over the echo phase
 *   net/idle/10000     N = 10,000 handles (both ends of N / 2 socketpairs;
 *                      fewer when RLIMIT_NOFILE's hard limit is lower, said
 *                      on stderr), a task blocked in gocc_fd_read on each,
 *                      all under one context; rows:
 *                        /perconn B/conn: the resident size with all N
 *                                 blocked, less the size before the first
 *                                 round, over N (right when it runs alone
 *                                 in its process, as bench/run runs it)
 *                        /cancel  ns: from gocc_ctx_cancel to the last
 *                                 reader returned (GOCC_ECANCELED)
 *
 * main() raises the soft descriptor limit to the hard one. In smoke mode
 * (harness.h) C and N are divided by 100. Every byte echoed is checked.
 */
#define _GNU_SOURCE /* SOCK_CLOEXEC */

#include <gocc.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

enum { ECHO_CONNS = 1000, IDLE_CONNS = 10000, LAT_SLOTS = 1024 };

static long nofile_limit; /* the soft limit after main raised it */

static int scaled(int n) { return bench_smoke() ? (n / 100 > 1 ? n / 100 : 1) : n; }

static void nodelay(gocc_fd_t *f) {
    int one = 1;
    (void)setsockopt(gocc_fd_num(f), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- net/echo ---- */

typedef struct echo_case {
    const char *name;
    size_t size; /* bytes per message */
} echo_case;

typedef struct echo_run {
    const echo_case *c;
    int conns;
    uint64_t per;            /* messages per client */
    struct sockaddr_in addr; /* the listener's */
    gocc_fd_t *listener;
    gocc_chan_t *gate;          /* closed: the clients start */
    gocc_waitgroup_t connected; /* clients connected */
    gocc_waitgroup_t clients;   /* clients done */
    gocc_waitgroup_t servers;   /* the acceptor and the server tasks done */
    int64_t *lat;               /* conns * LAT_SLOTS round trips, ns; -1 unused */
} echo_run;

typedef struct echo_client {
    echo_run *r;
    int id;
} echo_client;

/* Read exactly n bytes (the peer may send them in pieces). */
static void read_full(gocc_fd_t *f, char *buf, size_t n, const char *name) {
    for (size_t got = 0; got < n;) {
        ssize_t r = gocc_fd_read(f, buf + got, n - got, NULL);
        if (r <= 0) bench_die("read", name, r == 0 ? GOCC_ECLOSED : (int)r);
        got += (size_t)r;
    }
}

/* One accepted connection: its server task frees this. */
typedef struct echo_conn {
    echo_run *r;
    gocc_fd_t *f;
} echo_conn;

/* Echo what the client sends until it closes. */
static int echo_server(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    echo_conn *ec = arg;
    echo_run *r = ec->r;
    gocc_fd_t *f = ec->f;
    free(ec);
    char *buf = malloc(r->c->size);
    if (buf == NULL) bench_die("malloc", r->c->name, GOCC_ENOMEM);
    for (;;) {
        ssize_t n = gocc_fd_read(f, buf, r->c->size, NULL);
        if (n == 0) break;
        if (n < 0) bench_die("server read", r->c->name, (int)n);
        ssize_t w = gocc_fd_write(f, buf, (size_t)n, NULL, NULL);
        if (w != n) bench_die("server write", r->c->name, (int)w);
    }
    free(buf);
    gocc_fd_close(f);
    gocc_fd_release(f);
    gocc_waitgroup_done(&r->servers);
    return 0;
}

/* Accept every client's connection, one server task each. */
static int echo_acceptor(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    echo_run *r = arg;
    for (int i = 0; i < r->conns; i++) {
        gocc_fd_t *conn = NULL;
        int rc = gocc_fd_accept(r->listener, &conn, NULL, NULL, NULL);
        if (rc != 0) bench_die("accept", r->c->name, rc);
        nodelay(conn);
        echo_conn *ec = malloc(sizeof *ec);
        if (ec == NULL) bench_die("malloc", r->c->name, GOCC_ENOMEM);
        *ec = (echo_conn){r, conn};
        gocc_waitgroup_add(&r->servers, 1);
        rc = gocc_go(echo_server, NULL, ec);
        if (rc != 0) bench_die("gocc_go (server)", r->c->name, rc);
    }
    gocc_waitgroup_done(&r->servers);
    return 0;
}

static int echo_client_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    echo_client *cl = arg;
    echo_run *r = cl->r;
    const char *name = r->c->name;
    size_t size = r->c->size;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) bench_die("socket", name, -errno);
    gocc_fd_t *f = gocc_fd_open(s);
    if (f == NULL) bench_die("gocc_fd_open", name, -errno);
    int rc = gocc_fd_connect(f, (const struct sockaddr *)&r->addr, sizeof r->addr, NULL);
    if (rc != 0) bench_die("connect", name, rc);
    nodelay(f);
    char *out = malloc(size), *in = malloc(size);
    if (out == NULL || in == NULL) bench_die("malloc", name, GOCC_ENOMEM);
    gocc_waitgroup_done(&r->connected);
    rc = gocc_chan_recv(r->gate, NULL, NULL);
    if (rc != GOCC_ECLOSED) bench_die("recv on the gate", name, rc);
    int64_t *lat = r->lat + (size_t)cl->id * LAT_SLOTS;
    for (uint64_t j = 0; j < r->per; j++) {
        memset(out, (int)((uint64_t)cl->id + j), size);
        out[0] = (char)(cl->id & 0x7f);
        int64_t t0 = bench_now_ns();
        ssize_t w = gocc_fd_write(f, out, size, NULL, NULL);
        if (w != (ssize_t)size) bench_die("client write", name, (int)w);
        read_full(f, in, size, name);
        lat[j % LAT_SLOTS] = bench_now_ns() - t0;
        if (memcmp(in, out, size) != 0) bench_die("the echo differs", name, GOCC_EINVAL);
    }
    free(out);
    free(in);
    gocc_fd_close(f);
    gocc_fd_release(f);
    gocc_waitgroup_done(&r->clients);
    return 0;
}

static void run_echo_body(const void *self, uint64_t n) {
    const echo_case *c = self;
    bench_timer_stop();
    echo_run r = {.c = c,
                  .conns = scaled(ECHO_CONNS),
                  .per = n,
                  .connected = GOCC_WAITGROUP_INIT,
                  .clients = GOCC_WAITGROUP_INIT,
                  .servers = GOCC_WAITGROUP_INIT};
    if (2 * r.conns + 64 > nofile_limit) {
        r.conns = (int)((nofile_limit - 64) / 2);
        fprintf(stderr, "bench-net: %s with %d connections (RLIMIT_NOFILE %ld)\n", c->name, r.conns,
                nofile_limit);
    }
    r.lat = malloc((size_t)r.conns * LAT_SLOTS * sizeof *r.lat);
    echo_client *cl = calloc((size_t)r.conns, sizeof *cl);
    r.gate = gocc_chan_new(0, 0);
    if (r.lat == NULL || cl == NULL || r.gate == NULL) bench_die("alloc", c->name, GOCC_ENOMEM);
    for (size_t i = 0; i < (size_t)r.conns * LAT_SLOTS; i++) r.lat[i] = -1;

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t alen = sizeof r.addr;
    r.addr.sin_family = AF_INET;
    r.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(ls, (struct sockaddr *)&r.addr, sizeof r.addr) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&r.addr, &alen) != 0)
        bench_die("listen on 127.0.0.1", c->name, -errno);
    r.listener = gocc_fd_open(ls);
    if (r.listener == NULL) bench_die("gocc_fd_open", c->name, -errno);

    gocc_waitgroup_add(&r.servers, 1);
    int rc = gocc_go(echo_acceptor, NULL, &r);
    if (rc != 0) bench_die("gocc_go (acceptor)", c->name, rc);
    gocc_waitgroup_add(&r.connected, r.conns);
    gocc_waitgroup_add(&r.clients, r.conns);
    for (int i = 0; i < r.conns; i++) {
        cl[i] = (echo_client){&r, i};
        rc = gocc_go(echo_client_task, NULL, &cl[i]);
        if (rc != 0) bench_die("gocc_go (client)", c->name, rc);
    }
    gocc_waitgroup_wait(&r.connected, NULL);

    bench_timer_start();
    int64_t t0 = bench_now_ns();
    gocc_chan_close(r.gate);
    gocc_waitgroup_wait(&r.clients, NULL);
    int64_t wall = bench_now_ns() - t0;
    bench_timer_stop();

    gocc_waitgroup_wait(&r.servers, NULL);
    gocc_fd_close(r.listener);
    gocc_fd_release(r.listener);
    gocc_chan_release(r.gate);

    double msgs = (double)r.conns * (double)n;
    size_t nlat = 0;
    for (size_t i = 0; i < (size_t)r.conns * LAT_SLOTS; i++)
        if (r.lat[i] >= 0) r.lat[nlat++] = r.lat[i];
    bench_sort_i64(r.lat, nlat);
    bench_metric("permsg", "ns/msg", (double)wall / msgs, BENCH_LOWER_IS_BETTER);
    bench_metric("p50", "ns", (double)bench_quantile(r.lat, nlat, 0.50), BENCH_LOWER_IS_BETTER);
    bench_metric("p99", "ns", (double)bench_quantile(r.lat, nlat, 0.99), BENCH_LOWER_IS_BETTER);
    bench_metric("rate", "msgs/s", msgs / ((double)wall / 1e9), BENCH_HIGHER_IS_BETTER);
    free(r.lat);
    free(cl);
    bench_settle_tasks(1); /* the server tasks return after marking the group */
    bench_timer_start();
}

static void run_echo(const void *self, uint64_t n) {
    bench_run_in_task(((const echo_case *)self)->name, run_echo_body, self, n);
}

/* ---- net/idle ---- */

typedef struct idle_run {
    gocc_fd_t **f;
    gocc_waitgroup_t wg;
    _Atomic int blocked;
    const char *name;
} idle_run;

typedef struct idle_reader {
    idle_run *r;
    int i;
} idle_reader;

static int idle_read(gocc_ctx_t *ctx, void *arg) {
    idle_reader *ir = arg;
    char c;
    atomic_fetch_add_explicit(&ir->r->blocked, 1, memory_order_release);
    ssize_t rc = gocc_fd_read(ir->r->f[ir->i], &c, 1, ctx);
    if (rc != GOCC_ECANCELED) bench_die("read (wanted GOCC_ECANCELED)", ir->r->name, (int)rc);
    gocc_waitgroup_done(&ir->r->wg);
    return 0;
}

static void run_idle_body(const void *self, uint64_t n) {
    const char *name = self;
    static long base = -1; /* resident pages before this process's first round */
    long page = sysconf(_SC_PAGESIZE);
    int conns = scaled(IDLE_CONNS);
    if (conns + 64 > nofile_limit) {
        conns = (int)((nofile_limit - 64) & ~1L);
        fprintf(stderr, "bench-net: %s with %d handles (RLIMIT_NOFILE %ld)\n", name, conns,
                nofile_limit);
    }
    conns &= ~1;
    if (base < 0) base = bench_resident_pages();
    if (base < 0 || page <= 0) bench_die("reading /proc/self/statm", name, GOCC_EINVAL);
    for (uint64_t round = 0; round < n; round++) {
        bench_timer_stop();
        idle_run r = {.f = calloc((size_t)conns, sizeof(gocc_fd_t *)),
                      .wg = GOCC_WAITGROUP_INIT,
                      .name = name};
        idle_reader *rd = calloc((size_t)conns, sizeof *rd);
        gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
        if (r.f == NULL || rd == NULL || ctx == NULL) bench_die("alloc", name, GOCC_ENOMEM);
        atomic_init(&r.blocked, 0);
        for (int i = 0; i < conns; i += 2) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
                bench_die("socketpair", name, -errno);
            r.f[i] = gocc_fd_open(sv[0]);
            r.f[i + 1] = gocc_fd_open(sv[1]);
            if (r.f[i] == NULL || r.f[i + 1] == NULL) bench_die("gocc_fd_open", name, -errno);
        }
        gocc_waitgroup_add(&r.wg, conns);
        for (int i = 0; i < conns; i++) {
            rd[i] = (idle_reader){&r, i};
            int rc = gocc_go(idle_read, ctx, &rd[i]);
            if (rc != 0) bench_die("gocc_go", name, rc);
        }
        while (atomic_load_explicit(&r.blocked, memory_order_acquire) < conns) bench_nap_ns(100000);
        bench_nap_ns(bench_smoke() ? 1000000 : 20000000); /* the last ones park */
        long resident = bench_resident_pages();
        if (resident < 0) bench_die("reading /proc/self/statm", name, GOCC_EINVAL);
        bench_metric("perconn", "B/conn", (double)(resident - base) * (double)page / conns,
                     BENCH_LOWER_IS_BETTER);

        bench_timer_start();
        int64_t t0 = bench_now_ns();
        gocc_ctx_cancel(ctx);
        gocc_waitgroup_wait(&r.wg, NULL);
        int64_t took = bench_now_ns() - t0;
        bench_timer_stop();
        bench_metric("cancel", "ns", (double)took, BENCH_LOWER_IS_BETTER);

        gocc_ctx_release(ctx);
        for (int i = 0; i < conns; i++) {
            gocc_fd_close(r.f[i]);
            gocc_fd_release(r.f[i]);
        }
        free(r.f);
        free(rd);
        bench_settle_tasks(1);
        bench_timer_start();
    }
}

static void run_idle(const void *self, uint64_t n) {
    bench_run_in_task(self, run_idle_body, self, n);
}

/* Raise the soft descriptor limit to the hard one; return it. */
static long raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

static const echo_case echo64 = {"net/echo/64", 64};
static const echo_case echo16k = {"net/echo/16k", 16384};

int main(int argc, char **argv) {
    nofile_limit = raise_nofile();
    const bench_desc_t descs[] = {
        {echo64.name, NULL, ECHO_CONNS, echo64.size, run_echo, &echo64},
        {echo16k.name, NULL, ECHO_CONNS, echo16k.size, run_echo, &echo16k},
        {"net/idle/10000", NULL, IDLE_CONNS, 0, run_idle, "net/idle/10000"},
    };
    return bench_main(argc, argv, "bench-net", descs, (int)(sizeof descs / sizeof descs[0]));
}
