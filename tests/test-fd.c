/*
 * test-fd.c - descriptor handles (src/fd.c) and the poller (src/netpoll.c):
 * pipes, socketpairs and TCP on 127.0.0.1 only.
 *
 * What each test proves is written above it. No test asserts a tight
 * timing: "blocked" is observed through the handle's queue
 * (gocc__fd_queued) or the dump, never by a sleep alone, and every wait
 * for something that must happen is bounded by SAFETY_NS or QUIESCENT.
 */
#include "test-common.h" /* first: it defines _GNU_SOURCE */

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "gocc-internal.h" /* gocc__fd_queued */

#ifdef GOCC_TEST_TSAN
/* The fork test starts threads in the child of a multi-threaded parent. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "die_after_fork=0"; }
#endif

/* ---- helpers ---- */

static void make_pipe(int p[2]) { assert_int_equal(pipe2(p, O_CLOEXEC), 0); }

static void make_pair(int sv[2]) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static gocc_fd_t *adopt(int fd) {
    gocc_fd_t *f = gocc_fd_open(fd);
    assert_non_null(f);
    return f;
}

static void close_release(gocc_fd_t *f) {
    (void)gocc_fd_close(f);
    gocc_fd_release(f);
}

/* Bounded wait until @p want calls hold or wait for @p f's side. */
static void wait_queued(gocc_fd_t *f, int events, size_t want) {
    int64_t end = gocc_now() + SAFETY_NS;
    while (gocc__fd_queued(f, events) < want) {
        if (gocc_now() > end) fail_msg("the handle's queue never reached %zu", want);
        sleep_ns(100 * GOCC_MICROSECOND);
    }
}

/* Raise the soft descriptor limit to the hard one; return it. */
static long raise_nofile(void) {
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* A gocc_fd_read on a task: the call and its result. */
typedef struct rd_call {
    gocc_fd_t *f;
    char buf[64];
    size_t n;
    gocc_ctx_t *ctx;
    ssize_t rc;
    int order;        /* FIFO test: which reader this is */
    atomic_int *done; /* counted when it returned (may be NULL) */
} rd_call;

static int read_call(void *arg) {
    rd_call *c = arg;
    c->rc = gocc_fd_read(c->f, c->buf, c->n, c->ctx);
    if (c->done != NULL) atomic_fetch_add(c->done, 1);
    return 0;
}

/* Read until end of file, an error or @p cap bytes (buf NULL: discard
 * everything up to end of file); the bytes read, or the error. */
static ssize_t read_all(gocc_fd_t *f, char *buf, size_t cap, gocc_ctx_t *ctx) {
    size_t got = 0;
    char sink[4096];
    for (;;) {
        ssize_t r = buf != NULL ? gocc_fd_read(f, buf + got, cap - got, ctx)
                                : gocc_fd_read(f, sink, sizeof sink, ctx);
        if (r < 0) return r;
        if (r == 0) return (ssize_t)got;
        got += (size_t)r;
        if (buf != NULL && got == cap) return (ssize_t)got;
    }
}

/* The other end of @p peer's socket pair was closed: a send fails with
 * EPIPE at once. With the poll(2) backend too: a close waits for the
 * poller's round that watches the descriptor to end (poll(2) holds the
 * file until it returns). */
static bool peer_sees_close(int peer) {
    return send(peer, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE;
}

/* ---- data and end of file ---- */

typedef struct writer_arg {
    gocc_fd_t *f;
    const char *msg;
    int rc;
} writer_arg;

static int write_then_close(gocc_ctx_t *ctx, void *arg) {
    writer_arg *w = arg;
    for (const char *p = w->msg; *p != '\0'; p++) { /* one byte at a time */
        size_t written = 0;
        if (gocc_fd_write(w->f, p, 1, &written, ctx) != 1 || written != 1) w->rc = -1;
        gocc_yield();
    }
    if (gocc_fd_close(w->f) != 0) w->rc = -2;
    return 0;
}

/* Bytes written on one end of a pipe come out of the other, in order,
 * then end of file (0) once the writer closed; a read of 0 bytes is 0. */
static void test_fd_pipe_data_eof(void **state) {
    (void)state;
    TEST_NAME();
    int p[2];
    make_pipe(p);
    gocc_fd_t *r = adopt(p[0]), *w = adopt(p[1]);
    assert_int_equal(gocc_fd_num(r), p[0]);
    assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(gocc_fd_read(r, NULL, 0, NULL), 0);
    writer_arg wa = {w, "hello, pipe", 0};
    assert_int_equal(gocc_go(write_then_close, NULL, &wa), 0);
    char buf[64] = {0};
    gocc_ctx_t *safety = safety_ctx();
    ssize_t n = read_all(r, buf, sizeof buf - 1, safety);
    assert_int_equal(n, (ssize_t)strlen("hello, pipe"));
    assert_string_equal(buf, "hello, pipe");
    assert_int_equal(gocc_fd_read(r, buf, sizeof buf, safety), 0); /* still EOF */
    ASSERT_NO_TASKS(0);
    assert_int_equal(wa.rc, 0);
    ctx_done_release(safety);
    gocc_fd_release(w);
    close_release(r);
}

/* Bad arguments: GOCC_EINVAL (or NULL with errno EINVAL), never a crash;
 * a descriptor adopted twice is refused, and the caller keeps it. */
static void test_fd_bad_arguments(void **state) {
    (void)state;
    TEST_NAME();
    errno = 0;
    assert_null(gocc_fd_open(-1));
    assert_int_equal(errno, EINVAL);
    int p[2];
    make_pipe(p);
    close(p[1]);
    errno = 0;
    assert_null(gocc_fd_open(p[1])); /* closed */
    assert_int_equal(errno, EINVAL);
    gocc_fd_t *f = adopt(p[0]);
    errno = 0;
    assert_null(gocc_fd_open(p[0])); /* adopted already */
    assert_int_equal(errno, EINVAL);
    char b[4];
    size_t written = 7;
    assert_int_equal(gocc_fd_read(NULL, b, 1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_read(f, NULL, 1, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_write(NULL, b, 1, &written, NULL), GOCC_EINVAL);
    assert_int_equal(written, 0);
    assert_int_equal(gocc_fd_write(f, NULL, 1, NULL, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_write(f, b, 0, NULL, NULL), 0);
    assert_int_equal(gocc_fd_wait(NULL, GOCC_FD_READ, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_wait(f, 0, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_wait(f, 4, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_poll(-1, GOCC_FD_READ, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_poll(p[0], 0, NULL), GOCC_EINVAL);
    gocc_fd_t *conn = f;
    assert_int_equal(gocc_fd_accept(NULL, &conn, NULL, NULL, NULL), GOCC_EINVAL);
    assert_null(conn);
    assert_int_equal(gocc_fd_accept(f, NULL, NULL, NULL, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_connect(NULL, NULL, 0, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_close(NULL), GOCC_EINVAL);
    assert_int_equal(gocc_fd_num(NULL), -1);
    assert_null(gocc_fd_retain(NULL));
    gocc_fd_release(NULL);
    close_release(f);
}

/* ---- contexts ---- */

/* A deadline ends a read that has nothing to read, having consumed
 * nothing; a context already done wins even when data is there (nothing
 * consumed either); the data is read afterwards. */
static void test_fd_deadline_nothing_consumed(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    char buf[8];
    gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(d);
    assert_int_equal(gocc_fd_read(a, buf, sizeof buf, d), GOCC_EDEADLINE);
    assert_int_equal(gocc_fd_wait(a, GOCC_FD_READ, d), GOCC_EDEADLINE);
    gocc_ctx_release(d);

    assert_int_equal(gocc_fd_write(b, "xy", 2, NULL, NULL), 2);
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    assert_non_null(c);
    gocc_ctx_cancel(c);
    assert_int_equal(gocc_fd_read(a, buf, sizeof buf, c), GOCC_ECANCELED);
    assert_int_equal(gocc_fd_wait(a, GOCC_FD_READ, c), GOCC_ECANCELED);
    size_t written = 9;
    assert_int_equal(gocc_fd_write(b, "z", 1, &written, c), GOCC_ECANCELED);
    assert_int_equal(written, 0);
    gocc_ctx_release(c);
    assert_int_equal(gocc_fd_read(a, buf, sizeof buf, NULL), 2); /* all still there */
    assert_memory_equal(buf, "xy", 2);
    close_release(a);
    close_release(b);
}

/* ---- close ---- */

/* Closing a handle unblocks its reader (GOCC_ECLOSED); a second close, a
 * later call and gocc_fd_num see it closed; once the reader has left, the
 * OS descriptor is closed (the peer's send gets EPIPE). */
static void test_fd_close_unblocks_reader(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]);
    atomic_int done = 0;
    rd_call c = {.f = a, .n = 8, .done = &done};
    async_call ac;
    async_start(&ac, read_call, &c);
    wait_queued(a, GOCC_FD_READ, 1);
    async_blocked(&ac, "io wait"); /* parked: the close must wake it */
    assert_int_equal(gocc_fd_close(a), 0);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(c.rc, GOCC_ECLOSED);
    assert_int_equal(gocc_fd_close(a), GOCC_ECLOSED);
    assert_int_equal(gocc_fd_num(a), -1);
    char b[1];
    assert_int_equal(gocc_fd_read(a, b, 1, NULL), GOCC_ECLOSED);
    assert_int_equal(gocc_fd_write(a, "x", 1, NULL, NULL), GOCC_ECLOSED);
    assert_int_equal(gocc_fd_wait(a, GOCC_FD_WRITE, NULL), GOCC_ECLOSED);
    assert_true(peer_sees_close(sv[1]));
    gocc_fd_release(a);
    close(sv[1]);
}

/* A close right after a wait ended by its deadline: the poller's round
 * may still watch the descriptor (nothing woke it when the waiter left),
 * and with poll(2) that round holds the file. The close lets it go before
 * it returns: the peer sees the close at once. Repeated, as the round's
 * end races the peer's look. */
static void test_fd_close_after_timed_out_wait(void **state) {
    (void)state;
    TEST_NAME();
    for (int i = 0; i < 20; i++) {
        int sv[2];
        make_pair(sv);
        gocc_fd_t *a = adopt(sv[0]);
        char b[1];
        gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 2 * GOCC_MILLISECOND);
        assert_non_null(d);
        assert_int_equal(gocc_fd_read(a, b, 1, d), GOCC_EDEADLINE);
        gocc_ctx_release(d);
        assert_int_equal(gocc_fd_close(a), 0);
        assert_true(peer_sees_close(sv[1]));
        gocc_fd_release(a);
        close(sv[1]);
    }
}

/* Without close, the last release closes the descriptor; a retained
 * handle keeps it open. */
static void test_fd_last_release_closes(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]);
    assert_ptr_equal(gocc_fd_retain(a), a);
    gocc_fd_release(a);
    assert_int_equal(send(sv[1], "x", 1, MSG_NOSIGNAL), 1); /* still open */
    gocc_fd_release(a);
    assert_true(peer_sees_close(sv[1]));
    close(sv[1]);
}

/* ---- writes ---- */

typedef struct wr_call {
    gocc_fd_t *f;
    const char *buf;
    size_t n;
    gocc_ctx_t *ctx;
    ssize_t rc;
    size_t written;
} wr_call;

static int write_call(void *arg) {
    wr_call *w = arg;
    w->rc = gocc_fd_write(w->f, w->buf, w->n, &w->written, w->ctx);
    return 0;
}

/* A write into a full socket buffer that its deadline ends reports how
 * much went out through written; exactly that much arrives. */
static void test_fd_partial_write(void **state) {
    (void)state;
    TEST_NAME();
    enum { N = 16 << 20 };
    char *big = calloc(1, N);
    assert_non_null(big);
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    assert_non_null(d);
    size_t written = 0;
    assert_int_equal(gocc_fd_write(a, big, N, &written, d), GOCC_EDEADLINE);
    CHECK_GE(written, 1);
    CHECK_LT(written, N);
    gocc_ctx_release(d);
    assert_int_equal(gocc_fd_close(a), 0);
    gocc_ctx_t *safety = safety_ctx();
    assert_int_equal(read_all(b, NULL, 0, safety), (ssize_t)written);
    ctx_done_release(safety);
    gocc_fd_release(a);
    close_release(b);
    free(big);
}

/* A reader and a writer on one handle at once: the writer is blocked on a
 * full buffer while the reader's data arrives, and the read returns
 * without waiting for the write (a read never waits behind a write); then
 * the write completes once the peer drains. */
static void test_fd_reader_and_writer_at_once(void **state) {
    (void)state;
    TEST_NAME();
    enum { N = 8 << 20 };
    char *big = calloc(1, N);
    assert_non_null(big);
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    gocc_ctx_t *safety = safety_ctx();
    wr_call w = {.f = a, .buf = big, .n = N, .ctx = safety};
    rd_call r = {.f = a, .n = 4, .ctx = safety};
    async_call aw, ar;
    async_start(&aw, write_call, &w);
    async_start(&ar, read_call, &r);
    wait_queued(a, GOCC_FD_WRITE, 1);
    wait_queued(a, GOCC_FD_READ, 1);
    assert_int_equal(gocc_fd_write(b, "ping", 4, NULL, safety), 4);
    assert_int_equal(ASYNC_RESULT(&ar, SAFETY_NS), 0);
    assert_int_equal(r.rc, 4);
    assert_memory_equal(r.buf, "ping", 4);
    assert_false(async_done(&aw)); /* 8 MiB cannot fit a socket buffer */
    char *sink = malloc(N);
    assert_non_null(sink);
    assert_int_equal(read_all(b, sink, N, safety), N);
    assert_int_equal(ASYNC_RESULT(&aw, SAFETY_NS), 0);
    assert_int_equal(w.rc, N);
    assert_int_equal(w.written, N);
    ctx_done_release(safety);
    close_release(a);
    close_release(b);
    free(sink);
    free(big);
}

/* Several writers on one handle: each write goes out whole (no two
 * interleave), in arrival order. */
static void test_fd_writes_never_interleave(void **state) {
    (void)state;
    TEST_NAME();
    enum { W = 4, N = 1 << 20 };
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    gocc_ctx_t *safety = safety_ctx();
    char *bufs[W];
    wr_call w[W];
    async_call ac[W];
    for (int i = 0; i < W; i++) {
        bufs[i] = malloc(N);
        assert_non_null(bufs[i]);
        memset(bufs[i], 'a' + i, N);
        w[i] = (wr_call){.f = a, .buf = bufs[i], .n = N, .ctx = safety};
        async_start(&ac[i], write_call, &w[i]);
        wait_queued(a, GOCC_FD_WRITE, (size_t)i + 1); /* arrival order */
    }
    char *got = malloc((size_t)W * N);
    assert_non_null(got);
    assert_int_equal(read_all(b, got, (size_t)W * N, safety), (ssize_t)W * N);
    for (int i = 0; i < W; i++) {
        assert_int_equal(ASYNC_RESULT(&ac[i], SAFETY_NS), 0);
        assert_int_equal(w[i].rc, N);
        for (size_t k = 0; k < N; k += 4093)
            if (got[(size_t)i * N + k] != 'a' + i) fail_msg("write %d interleaved at %zu", i, k);
        free(bufs[i]);
    }
    ctx_done_release(safety);
    close_release(a);
    close_release(b);
    free(got);
}

/* Readers queued on one handle are served in arrival order. */
static void test_fd_readers_in_arrival_order(void **state) {
    (void)state;
    TEST_NAME();
    enum { R = 6 };
    int p[2];
    make_pipe(p);
    gocc_fd_t *r = adopt(p[0]), *w = adopt(p[1]);
    gocc_ctx_t *safety = safety_ctx();
    rd_call c[R];
    async_call ac[R];
    for (int i = 0; i < R; i++) {
        c[i] = (rd_call){.f = r, .n = 1, .ctx = safety, .order = i};
        async_start(&ac[i], read_call, &c[i]);
        wait_queued(r, GOCC_FD_READ, (size_t)i + 1);
    }
    assert_int_equal(gocc_fd_write(w, "012345", R, NULL, safety), R);
    for (int i = 0; i < R; i++) {
        assert_int_equal(ASYNC_RESULT(&ac[i], SAFETY_NS), 0);
        assert_int_equal(c[i].rc, 1);
        assert_int_equal(c[i].buf[0], '0' + i);
    }
    ctx_done_release(safety);
    close_release(r);
    close_release(w);
}

/* ---- sockets ---- */

static gocc_fd_t *tcp_listener(struct sockaddr_in *addr) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *addr;
    assert_int_equal(bind(s, (struct sockaddr *)addr, len), 0);
    assert_int_equal(listen(s, 64), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)addr, &len), 0);
    return adopt(s);
}

static gocc_fd_t *tcp_socket(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    return adopt(s);
}

typedef struct acc_call {
    gocc_fd_t *l, *conn;
    gocc_ctx_t *ctx;
    struct sockaddr_in peer;
    int rc;
} acc_call;

static int accept_call(void *arg) {
    acc_call *a = arg;
    socklen_t len = sizeof a->peer;
    a->rc = gocc_fd_accept(a->l, &a->conn, (struct sockaddr *)&a->peer, &len, a->ctx);
    return 0;
}

/* accept and connect on 127.0.0.1: the accepted handle is non-blocking and
 * close-on-exec, data flows both ways, end of file arrives; a connect to a
 * bound port that does not listen is refused; an accept with nobody
 * connecting ends with its deadline. */
static void test_fd_tcp_accept_connect(void **state) {
    (void)state;
    TEST_NAME();
    struct sockaddr_in addr;
    gocc_fd_t *l = tcp_listener(&addr);
    gocc_ctx_t *safety = safety_ctx();
    acc_call a = {.l = l, .ctx = safety};
    async_call ac;
    async_start(&ac, accept_call, &a);
    gocc_fd_t *c = tcp_socket();
    assert_int_equal(gocc_fd_connect(c, (struct sockaddr *)&addr, sizeof addr, safety), 0);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(a.rc, 0);
    assert_non_null(a.conn);
    assert_int_equal(a.peer.sin_family, AF_INET);
    int cfd = gocc_fd_num(a.conn);
    assert_true(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(gocc_fd_write(c, "hi", 2, NULL, safety), 2);
    char buf[4];
    assert_int_equal(gocc_fd_read(a.conn, buf, sizeof buf, safety), 2);
    assert_int_equal(gocc_fd_write(a.conn, "yo", 2, NULL, safety), 2);
    assert_int_equal(gocc_fd_read(c, buf, sizeof buf, safety), 2);
    assert_memory_equal(buf, "yo", 2);
    assert_int_equal(gocc_fd_close(c), 0);
    assert_int_equal(gocc_fd_read(a.conn, buf, sizeof buf, safety), 0);
    close_release(a.conn);
    gocc_fd_release(c);

    gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(d);
    gocc_fd_t *none = l;
    assert_int_equal(gocc_fd_accept(l, &none, NULL, NULL, d), GOCC_EDEADLINE);
    assert_null(none);
    gocc_ctx_release(d);

    /* Refused: a port bound by a socket that does not listen. */
    int quiet = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in qa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t qlen = sizeof qa;
    assert_int_equal(bind(quiet, (struct sockaddr *)&qa, qlen), 0);
    assert_int_equal(getsockname(quiet, (struct sockaddr *)&qa, &qlen), 0);
    gocc_fd_t *r = tcp_socket();
    assert_int_equal(gocc_fd_connect(r, (struct sockaddr *)&qa, sizeof qa, safety), -ECONNREFUSED);
    close_release(r);
    close(quiet);
    ctx_done_release(safety);
    close_release(l);
}

/* Closing a listener unblocks its accept. */
static void test_fd_close_unblocks_accept(void **state) {
    (void)state;
    TEST_NAME();
    struct sockaddr_in addr;
    gocc_fd_t *l = tcp_listener(&addr);
    acc_call a = {.l = l};
    async_call ac;
    async_start(&ac, accept_call, &a);
    wait_queued(l, GOCC_FD_READ, 1);
    assert_int_equal(gocc_fd_close(l), 0);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(a.rc, GOCC_ECLOSED);
    assert_null(a.conn);
    gocc_fd_release(l);
}

/* ---- readiness ---- */

typedef struct poll_call {
    int fd, events;
    gocc_ctx_t *ctx;
    int rc;
} poll_call;

static int poll_fn(void *arg) {
    poll_call *p = arg;
    p->rc = gocc_fd_poll(p->fd, p->events, p->ctx);
    return 0;
}

typedef struct wait_call {
    gocc_fd_t *f;
    int events;
    gocc_ctx_t *ctx;
    int rc;
} wait_call;

static int wait_fn(void *arg) {
    wait_call *w = arg;
    w->rc = gocc_fd_wait(w->f, w->events, w->ctx);
    return 0;
}

/* gocc_fd_wait returns the ready subset of what was asked: a fresh socket
 * is writable, not readable; data makes it readable; the peer's close
 * counts as ready. A wait parked for READ wakes when data comes.
 * gocc_fd_poll on a descriptor the caller keeps leaves its blocking mode
 * alone, times out with its context, and wakes when data comes. */
static void test_fd_readiness_subsets(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    gocc_ctx_t *safety = safety_ctx();
    int both = GOCC_FD_READ | GOCC_FD_WRITE;
    assert_int_equal(gocc_fd_wait(a, both, safety), GOCC_FD_WRITE);
    assert_int_equal(gocc_fd_wait(a, GOCC_FD_WRITE, safety), GOCC_FD_WRITE);
    wait_call wc = {.f = a, .events = GOCC_FD_READ, .ctx = safety};
    async_call ac;
    async_start(&ac, wait_fn, &wc);
    wait_queued(a, GOCC_FD_READ, 1);
    assert_int_equal(gocc_fd_write(b, "d", 1, NULL, safety), 1);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(wc.rc, GOCC_FD_READ);
    assert_int_equal(gocc_fd_wait(a, both, safety), both);
    assert_int_equal(gocc_fd_close(b), 0);
    char buf[2];
    assert_int_equal(gocc_fd_read(a, buf, sizeof buf, safety), 1);
    assert_int_equal(gocc_fd_wait(a, GOCC_FD_READ, safety), GOCC_FD_READ); /* hang-up */
    assert_int_equal(gocc_fd_read(a, buf, sizeof buf, safety), 0);
    close_release(a);
    gocc_fd_release(b);

    int p[2];
    make_pipe(p);
    gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 30 * GOCC_MILLISECOND);
    assert_non_null(d);
    assert_int_equal(gocc_fd_poll(p[0], GOCC_FD_READ, d), GOCC_EDEADLINE);
    gocc_ctx_release(d);
    assert_int_equal(gocc_fd_poll(p[1], both, safety), GOCC_FD_WRITE);
    poll_call pc = {.fd = p[0], .events = GOCC_FD_READ, .ctx = safety};
    async_start_settled(&ac, poll_fn, &pc);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(pc.rc, GOCC_FD_READ);
    assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    assert_false(fcntl(p[1], F_GETFL) & O_NONBLOCK);
    close(p[1]);
    assert_int_equal(gocc_fd_poll(p[0], GOCC_FD_READ, safety), GOCC_FD_READ);
    close(p[0]);
    ctx_done_release(safety);
    assert_int_equal(gocc_fd_poll(p[0], GOCC_FD_READ, NULL), -EBADF);
}

/* A regular file cannot be watched: it is always ready, and calls on it
 * make the system call directly. */
static void test_fd_regular_file(void **state) {
    (void)state;
    TEST_NAME();
    char path[] = "/tmp/gocc-test-fd-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    gocc_fd_t *f = adopt(fd);
    assert_int_equal(gocc_fd_write(f, "abc", 3, NULL, NULL), 3);
    assert_int_equal(lseek(gocc_fd_num(f), 0, SEEK_SET), 0);
    char buf[8];
    assert_int_equal(gocc_fd_read(f, buf, sizeof buf, NULL), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(gocc_fd_read(f, buf, sizeof buf, NULL), 0);
    int both = GOCC_FD_READ | GOCC_FD_WRITE;
    assert_int_equal(gocc_fd_wait(f, both, NULL), both);
    close_release(f);
}

/* ---- scale: waiting costs no thread ---- */

#if defined(GOCC_TEST_TSAN)
#define MANY 1000 /* ThreadSanitizer keeps ~1500 live tasks */
#elif defined(GOCC_TEST_SANITIZED)
#define MANY 2000
#else
#define MANY 10000
#endif

/* The contract's "100,000 tasks may wait on 100,000 handles". */
#if defined(GOCC_TEST_TSAN)
#define HUGE_WAITERS 1000
#elif defined(GOCC_TEST_SANITIZED)
#define HUGE_WAITERS 4000
#else
#define HUGE_WAITERS 100000
#endif

typedef struct many {
    gocc_fd_t **f;
    atomic_int got, bad;
} many;

typedef struct one_reader {
    many *m;
    int i;
} one_reader;

static int many_reader(gocc_ctx_t *ctx, void *arg) {
    one_reader *r = arg;
    char c = 0;
    ssize_t n = gocc_fd_read(r->m->f[r->i], &c, 1, ctx);
    if (n == 1 && c == 'x')
        atomic_fetch_add(&r->m->got, 1);
    else
        atomic_fetch_add(&r->m->bad, 1);
    return 0;
}

/* @p want tasks wait on @p want descriptors at once (both ends of want / 2
 * socketpairs), then each gets its byte. With fewer descriptors allowed
 * than wanted: @p skip_short skips the test, saying so; otherwise it runs
 * with as many as the limit allows. */
static void many_waiters(const char *what, int want, bool skip_short) {
    long limit = raise_nofile();
    int n = want;
    if (n > limit - 256) {
        if (skip_short) {
            printf("%s: skipped: %d descriptors needed, RLIMIT_NOFILE's hard limit is %ld\n", what,
                   want + 256, limit);
            skip();
        }
        n = (int)((limit - 256) & ~1L);
        printf("%s: %d descriptors (RLIMIT_NOFILE %ld)\n", what, n, limit);
    }
    assert_true(n >= 2);
    many m = {.f = calloc((size_t)n, sizeof(gocc_fd_t *))};
    one_reader *r = calloc((size_t)n, sizeof *r);
    assert_non_null(m.f);
    assert_non_null(r);
    for (int i = 0; i < n; i += 2) {
        int sv[2];
        make_pair(sv);
        m.f[i] = adopt(sv[0]);
        m.f[i + 1] = adopt(sv[1]);
    }
    gocc_ctx_t *safety = safety_ctx_ns(SAFETY_NS * 3);
    for (int i = 0; i < n; i++) {
        r[i] = (one_reader){&m, i};
        assert_int_equal(gocc_go(many_reader, safety, &r[i]), 0);
    }
    for (int i = 0; i < n; i++) wait_queued(m.f[i], GOCC_FD_READ, 1);
    /* Every task is parked on its descriptor now: none has its byte yet. */
    assert_int_equal(atomic_load(&m.got) + atomic_load(&m.bad), 0);
    for (int i = 0; i < n; i++) assert_int_equal(write(gocc_fd_num(m.f[i]), "x", 1), 1);
    assert_int_equal(wait_int(&m.got, n, SAFETY_NS * 3), n);
    assert_int_equal(atomic_load(&m.bad), 0);
    ASSERT_NO_TASKS(0);
    ctx_done_release(safety);
    for (int i = 0; i < n; i++) close_release(m.f[i]);
    free(m.f);
    free(r);
}

/* MANY tasks wait on MANY descriptors (fewer when the limit is lower). */
static void test_fd_many_waiters(void **state) {
    (void)state;
    TEST_NAME();
    many_waiters("many_waiters", MANY, false);
}

/* Waiting costs no thread, at the contract's scale: HUGE_WAITERS tasks wait on
 * HUGE_WAITERS handles (HUGE_WAITERS / 2 socketpairs). Skipped, saying so, where the hard
 * descriptor limit is below HUGE_WAITERS (raise it: ulimit -Hn, or prlimit). */
static void test_fd_huge_waiters(void **state) {
    (void)state;
    TEST_NAME();
    many_waiters("huge_waiters", HUGE_WAITERS, true);
}

static ssize_t read_into(int fd, char *buf, size_t cap) {
    ssize_t n, got = 0;
    while ((n = read(fd, buf + got, cap - 1 - (size_t)got)) > 0) got += n;
    buf[got] = '\0';
    return got;
}

static int count_of(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p++) n++;
    return n;
}

static int set_flag(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    atomic_store((atomic_int *)arg, 1);
    return 0;
}

/* Tasks blocked in gocc_fd_read hold no worker: with twice `procs` of them
 * blocked, another task still runs (promptly), and the dump shows every
 * reader parked in "io wait" with its descriptor. */
static void test_fd_waiting_tasks_free_workers(void **state) {
    (void)state;
    TEST_NAME();
    gocc_runtime_config_t cfg;
    gocc_runtime_config_get(&cfg);
    int k = (int)cfg.procs * 2;
    if (k > 32) k = 32;
    gocc_fd_t *f[32];
    int peer[32];
    rd_call c[32];
    async_call ac[32]; /* observed through done */
    atomic_int done = 0;
    for (int i = 0; i < k; i++) {
        int sv[2];
        make_pair(sv);
        f[i] = adopt(sv[0]);
        peer[i] = sv[1];
        c[i] = (rd_call){.f = f[i], .n = 1, .done = &done};
        async_start(&ac[i], read_call, &c[i]);
        wait_queued(f[i], GOCC_FD_READ, 1);
    }
    atomic_int ran = 0;
    int64_t t0 = gocc_now();
    assert_int_equal(gocc_go(set_flag, NULL, &ran), 0);
    assert_true(wait_count(&ran, 1, PROMPT_NS));
    CHECK_LT(gocc_now() - t0, PROMPT_NS);

    char path[] = "/tmp/gocc-test-fd-dump-XXXXXX";
    int df = mkstemp(path);
    assert_true(df >= 0);
    unlink(path);
    int64_t end = gocc_now() + SAFETY_NS;
    static char text[1 << 16];
    for (;;) { /* a reader may still be on its way to its park */
        assert_true(ftruncate(df, 0) == 0 && lseek(df, 0, SEEK_SET) == 0);
        CHECK_GE(gocc_dump(df), k);
        assert_int_equal(lseek(df, 0, SEEK_SET), 0);
        read_into(df, text, sizeof text);
        if (count_of(text, "[io wait,") >= k && count_of(text, ": waiting to read") >= k) break;
        if (gocc_now() > end) fail_msg("dump without %d io waits:\n%s", k, text);
        sleep_ns(GOCC_MILLISECOND);
    }
    char line[64];
    snprintf(line, sizeof line, "descriptor %d: waiting to read", gocc_fd_num(f[0]));
    assert_non_null(strstr(text, line));
    close(df);
    for (int i = 0; i < k; i++) assert_int_equal(write(peer[i], "x", 1), 1);
    assert_int_equal(wait_int(&done, k, SAFETY_NS), k);
    for (int i = 0; i < k; i++) {
        assert_int_equal(c[i].rc, 1);
        close_release(f[i]);
        close(peer[i]);
    }
}

/* ---- plain threads ---- */

typedef struct thread_call {
    gocc_fd_t *f;
    gocc_ctx_t *ctx;
    int what; /* 0 read, 1 write (big), 2 wait */
    ssize_t rc;
    size_t written;
    atomic_int started;
} thread_call;

static void *plain_thread(void *arg) {
    thread_call *t = arg;
    atomic_store(&t->started, 1);
    static char big[8 << 20];
    char b[4];
    if (t->what == 0)
        t->rc = gocc_fd_read(t->f, b, sizeof b, t->ctx);
    else if (t->what == 1)
        t->rc = gocc_fd_write(t->f, big, sizeof big, &t->written, t->ctx);
    else
        t->rc = gocc_fd_wait(t->f, GOCC_FD_READ, t->ctx);
    return NULL;
}

/* Plain threads (not tasks) read, write and wait on handles, blocking in
 * the kernel, and their contexts end those waits: a read and a wait with
 * nothing consumed, a write into a full buffer with what went out in
 * written. A plain thread's read also completes when data comes. */
static void test_fd_plain_threads(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    for (int what = 0; what < 3; what++) {
        gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
        assert_non_null(c);
        thread_call t = {.f = a, .ctx = c, .what = what};
        test_thread th;
        test_thread_start(&th, plain_thread, &t);
        wait_queued(a, what == 1 ? GOCC_FD_WRITE : GOCC_FD_READ, 1);
        wait_blocked_in(1, "io wait", SAFETY_NS); /* parked: the cancel must wake it */
        gocc_ctx_cancel(c);
        test_thread_join(&th);
        assert_int_equal(t.rc, GOCC_ECANCELED);
        if (what == 1) {
            CHECK_GE(t.written, 1);
            gocc_ctx_t *s = safety_ctx();
            char *sink = malloc(t.written);
            assert_non_null(sink);
            assert_int_equal(read_all(b, sink, t.written, s), (ssize_t)t.written);
            free(sink);
            ctx_done_release(s);
        }
        gocc_ctx_release(c);
    }
    thread_call t = {.f = a, .what = 0};
    test_thread th;
    test_thread_start(&th, plain_thread, &t);
    wait_queued(a, GOCC_FD_READ, 1);
    assert_int_equal(gocc_fd_write(b, "abc", 3, NULL, NULL), 3);
    test_thread_join(&th);
    assert_int_equal(t.rc, 3);
    close_release(a);
    close_release(b);
}

/* ---- who polls ---- */

/* How many of this process's threads carry @p name (their comm). */
static int threads_named(const char *name) {
    char path[300], comm[32];
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        if (fgets(comm, sizeof comm, f) != NULL) {
            comm[strcspn(comm, "\n")] = '\0';
            if (strcmp(comm, name) == 0) n++;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Polling is a role of the scheduler's threads, not a thread of its own:
 * a task waits for data with no poller thread in the process, and the data
 * wakes it. */
static void test_fd_no_poller_thread(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    rd_call c = {.f = a, .n = 3, .ctx = NULL};
    async_call ac;
    async_start(&ac, read_call, &c);
    wait_queued(a, GOCC_FD_READ, 1);
    assert_int_equal(threads_named("gocc-netpoll"), 0);
    assert_int_equal(gocc_fd_write(b, "xyz", 3, NULL, NULL), 3);
    assert_int_equal(ASYNC_RESULT(&ac, SAFETY_NS), 0);
    assert_int_equal(c.rc, 3);
    assert_memory_equal(c.buf, "xyz", 3);
    close_release(a);
    close_release(b);
}

typedef struct spinner {
    atomic_int *stop;
    atomic_int *spinning;
} spinner;

static int spin_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    spinner *s = arg;
    atomic_fetch_add(s->spinning, 1);
    while (!atomic_load(s->stop)) {
    } /* blocked outside libgocc: never back to the scheduler */
    return 0;
}

/* With every worker busy in a task that never comes back to the
 * scheduler, a plain thread waiting for data still gets it: someone
 * (the monitor, or a worker the stuck check adds) polls. */
static void test_fd_polled_while_workers_busy(void **state) {
    (void)state;
    TEST_NAME();
    gocc_runtime_config_t cfg;
    gocc_runtime_config_get(&cfg);
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]), *b = adopt(sv[1]);
    atomic_int stop = 0, spinning = 0;
    spinner sp = {&stop, &spinning};
    size_t start = gocc_tasks_live();
    for (size_t i = 0; i < cfg.procs; i++) assert_int_equal(gocc_go(spin_task, NULL, &sp), 0);
    int64_t end = gocc_now() + SAFETY_NS;
    while (atomic_load(&spinning) < (int)cfg.procs && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
    thread_call t = {.f = a, .what = 0};
    test_thread th;
    test_thread_start(&th, plain_thread, &t);
    wait_queued(a, GOCC_FD_READ, 1);
    assert_int_equal(gocc_fd_write(b, "abc", 3, NULL, NULL), 3);
    test_thread_join(&th); /* the watchdog bounds a hang */
    assert_int_equal(t.rc, 3);
    atomic_store(&stop, 1);
    end = gocc_now() + SAFETY_NS;
    while (gocc_tasks_live() > start && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
    assert_true(gocc_tasks_live() <= start);
    close_release(a);
    close_release(b);
}

/* ---- fork ---- */

static int child_echo(gocc_ctx_t *ctx, void *arg) {
    char c;
    gocc_fd_t *f = arg;
    return gocc_fd_read(f, &c, 1, ctx) == 1 && c == 'k' ? 0 : 1;
}

/* In the child of a fork, a handle adopted before it (and used by no other
 * thread) still waits for readiness, and new handles work. */
static void test_fd_fork(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gocc_ctx_t *s = gocc_ctx_with_timeout(NULL, SAFETY_NS);
        char c = 0;
        int ok = s != NULL && gocc_fd_read(a, &c, 1, s) == 1 && c == 'p';
        int p[2];
        ok = ok && pipe(p) == 0;
        gocc_fd_t *r = ok ? gocc_fd_open(p[0]) : NULL, *w = r ? gocc_fd_open(p[1]) : NULL;
        ok = ok && w != NULL && gocc_go(child_echo, s, r) == 0;
        ok = ok && gocc_fd_write(w, "k", 1, NULL, s) == 1;
        ok = ok && test_wait_tasks(0, SAFETY_NS) == 0;
        _exit(ok ? 0 : 1);
    }
    sleep_ns(SETTLE_NS);
    assert_int_equal(send(sv[1], "p", 1, MSG_NOSIGNAL), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close_release(a);
    close(sv[1]);
}

/* ---- shutdown ---- */

/* With no handle left, gocc_runtime_shutdown closes the poller's epoll
 * instance; the next adopt makes it again. */
static void test_fd_shutdown_restart(void **state) {
    (void)state;
    TEST_NAME();
    int sv[2];
    make_pair(sv);
    gocc_fd_t *a = adopt(sv[0]);
    assert_int_equal(gocc_runtime_shutdown(), GOCC_EAGAIN); /* a handle lives */
    close_release(a);
    int64_t end = gocc_now() + QUIESCENT;
    while (gocc_runtime_shutdown() != 0 && gocc_now() < end) sleep_ns(GOCC_MILLISECOND);
    assert_int_equal(gocc_runtime_shutdown(), 0);
    gocc_fd_t *b = adopt(sv[1]);
    gocc_ctx_t *d = gocc_ctx_with_timeout(NULL, 2 * GOCC_SECOND);
    assert_non_null(d);
    char c;
    assert_int_equal(gocc_fd_read(b, &c, 1, d), 0); /* the peer is gone: EOF */
    gocc_ctx_release(d);
    close_release(b);
}

int main(void) {
    test_main_init("test-fd", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_fd_pipe_data_eof),
        GOCC_TEST(test_fd_bad_arguments),
        GOCC_TEST(test_fd_deadline_nothing_consumed),
        GOCC_TEST(test_fd_close_unblocks_reader),
        GOCC_TEST(test_fd_close_after_timed_out_wait),
        GOCC_TEST(test_fd_last_release_closes),
        GOCC_TEST(test_fd_partial_write),
        GOCC_TEST(test_fd_reader_and_writer_at_once),
        GOCC_TEST(test_fd_writes_never_interleave),
        GOCC_TEST(test_fd_readers_in_arrival_order),
        GOCC_TEST(test_fd_tcp_accept_connect),
        GOCC_TEST(test_fd_close_unblocks_accept),
        GOCC_TEST(test_fd_readiness_subsets),
        GOCC_TEST(test_fd_regular_file),
        GOCC_TEST(test_fd_many_waiters),
        GOCC_TEST(test_fd_huge_waiters),
        GOCC_TEST(test_fd_waiting_tasks_free_workers),
        GOCC_TEST(test_fd_plain_threads),
        GOCC_TEST(test_fd_fork),
        GOCC_TEST_NO_WATCH(test_fd_shutdown_restart),
        GOCC_TEST(test_fd_no_poller_thread),
        GOCC_TEST(test_fd_polled_while_workers_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
