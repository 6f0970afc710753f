/*
 * b07_errgroup_fetch.c - B07 (chapter 9, "Error Group Pattern"): fetchAll,
 * one errgroup task per URL, each writing its own results[i], errors
 * wrapped with the URL, and Wait() returning the first one.
 *
 *   g, ctx := errgroup.WithContext(ctx)
 *   for i, url := range urls { i, url := i, url; g.Go(func() error {
 *       result, err := fetch(ctx, url)
 *       if err != nil { return fmt.Errorf("fetching %s: %w", url, err) }
 *       results[i] = result; return nil }) }
 *   if err := g.Wait(); err != nil { return nil, err }
 *   return results, nil
 *
 * Over real sockets: fetch(ctx, url) dials a small server on 127.0.0.1
 * (an ephemeral port; every host resolves to it), sends "GET <url>\n" and
 * reads "<status> <length>\n" and the body, every wait under ctx (connect,
 * write and read through gocc_fd_*, so a cancel wakes a fetch blocked in
 * read). The server is an accepting task and one task per connection, as a
 * Go server runs a goroutine per connection: it answers after a few
 * milliseconds (which reorders the fetches) with 100 bytes per character
 * of the URL; a URL ending in /missing gets "404" at once (ErrNotFound);
 * one ending in /slow gets its answer after 10 s, unless the client hangs
 * up first, which the server sees as end of file on its read and stops.
 *
 * b07_all_ok: 8 URLs fetched at once; every results[i] belongs to urls[i]
 *   whatever order the fetches finish in.
 * b07_one_fails: the same plus /missing and two /slow URLs: Wait returns
 *   "fetching http://svc.local/missing: not found", errors.Is(err,
 *   ErrNotFound) holds, fetchAll returns no results, and the slow fetches
 *   were cancelled by the group context instead of running their 10 s:
 *   their reads returned "context canceled", they closed their
 *   connections, and the server's two slow handlers saw the hang-up.
 * b07_caller_cancelled: fetchAll called with a context already cancelled.
 *   As errgroup.Go does, gocc_group_go still starts every task; each sees
 *   the done context (a dial with a done context fails before it
 *   connects, as net.Dialer's does), so every fetch fails with "context
 *   canceled", and
 *   the first of those errors to come back (any URL's: the tasks race) is
 *   what fetchAll returns, not a nil error with empty results.
 *
 * Go -> C: `i, url := i, url` becomes one argument struct per task (its own
 * array element, which outlives the task because Wait returns after all of
 * them). An error value is an int in libgocc, so the wrapped error lives
 * in a per-task record {msg, cause} (msg is "fetching URL: " + the
 * cause's text, cause is what %w keeps for errors.Is) and the task returns
 * ERR_TASK_BASE + i as its error: Wait's first error names the record.
 * fetchAll returns that record (or NULL: nil), and results only on
 * success. ErrNotFound is a negative errno (-ENOENT, "not found" here).
 * Unlike Go's g.Go, gocc_group_go can fail (no thread, or a parent context
 * already done); fetchAll then fetches that URL itself, and an error there
 * counts like a task's: the first one is returned and it cancels the group
 * context, so the tasks already started stop.
 *
 * Checks: all 8 results match their URL and Wait is nil; with the failing
 * URL Wait returns its wrapped error (message and cause), no results come
 * back, the slow fetches saw "context canceled", the server's slow
 * handlers saw the hang-up, fetchAll took far less than 10 s; with a
 * cancelled caller fetchAll returns one URL's "context canceled" error and
 * no results; the server, stopped by closing its listener (which wakes
 * the accepting task), handled every connection it accepted to its end;
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 */
#define _GNU_SOURCE 1 /* SOCK_CLOEXEC */
#include <gocc.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B07", ok, what)

#define ERR_NOT_FOUND (-ENOENT) /* var ErrNotFound = errors.New("not found") */
#define ERR_TASK_BASE 1000      /* task i fails with ERR_TASK_BASE + i */
#define MAX_URLS 16

typedef struct result {
    char url[64];
    int status;
    size_t bytes;
} result_t;

/* An error wrapped with %w: the message chain and the cause under it. */
typedef struct wrapped_error {
    char msg[128];
    int cause;
} wrapped_error_t;

static const char *err_text(int err) {
    return err == ERR_NOT_FOUND ? "not found" : gocc_strerror(err);
}

/* errors.Is(err, target): the cause under the wrapping. */
static bool errors_is(const wrapped_error_t *e, int target) { return e && e->cause == target; }

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* ---- the server: an accepting task, a task per connection ---------------- */

static struct server {
    gocc_fd_t *listener;
    struct sockaddr_in addr;    /* 127.0.0.1:<ephemeral port> */
    gocc_waitgroup_t wg;        /* the accepting task and every handler */
    atomic_int accepted, ended; /* connections accepted, handlers that ran to their end */
    atomic_int slow_seen;       /* /slow requests that reached the server */
    atomic_int hung_up;         /* /slow handlers whose client left first */
} srv = {.wg = GOCC_WAITGROUP_INIT};

/* Read one line ("...\n", at most cap - 1 bytes) into buf; the *extra
 * bytes read past it stay in buf after the line's NUL. 0, or the error
 * (GOCC_ECLOSED for an end of file first). */
static int read_line(gocc_fd_t *f, char *buf, size_t cap, size_t *extra, gocc_ctx_t *ctx) {
    size_t have = 0;
    for (;;) {
        char *nl = memchr(buf, '\n', have);
        if (nl != NULL) {
            *nl = '\0';
            *extra = have - (size_t)(nl + 1 - buf);
            return 0;
        }
        if (have == cap - 1) return GOCC_EINVAL;
        ssize_t n = gocc_fd_read(f, buf + have, cap - 1 - have, ctx);
        if (n <= 0) return n == 0 ? GOCC_ECLOSED : (int)n;
        have += (size_t)n;
    }
}

/* One connection: "GET <url>\n" in, "<status> <length>\n" and the body out. */
static int serve_conn(gocc_ctx_t *ctx, void *arg) {
    gocc_fd_t *c = arg;
    char req[128];
    size_t extra = 0;
    if (read_line(c, req, sizeof req, &extra, NULL) == 0 && strncmp(req, "GET ", 4) == 0) {
        const char *url = req + 4;
        char head[32] = "404 0\n";
        size_t body = 0;
        if (!ends_with(url, "/missing")) {
            /* Answer after the delay, unless the client hangs up first:
             * the read sees its end of file. /slow: 10 s. */
            if (ends_with(url, "/slow")) atomic_fetch_add(&srv.slow_seen, 1);
            int64_t delay = ends_with(url, "/slow")
                                ? 10 * GOCC_SECOND
                                : (int64_t)(2 + strlen(url) % 7) * GOCC_MILLISECOND;
            gocc_ctx_t *wait = gocc_ctx_with_timeout(ctx, delay);
            char b;
            ssize_t r = wait ? gocc_fd_read(c, &b, 1, wait) : GOCC_ENOMEM;
            gocc_ctx_release(wait);
            if (r == 0 && ends_with(url, "/slow")) atomic_fetch_add(&srv.hung_up, 1);
            if (r == GOCC_EDEADLINE) body = 100 * strlen(url);
            snprintf(head, sizeof head, "%d %zu\n", r == GOCC_EDEADLINE ? 200 : 499, body);
        }
        char chunk[512];
        memset(chunk, 'x', sizeof chunk);
        ssize_t rc = gocc_fd_write(c, head, strlen(head), NULL, NULL);
        for (size_t sent = 0; rc > 0 && sent < body; sent += sizeof chunk)
            rc = gocc_fd_write(c, chunk, body - sent < sizeof chunk ? body - sent : sizeof chunk,
                               NULL, NULL);
    }
    gocc_fd_close(c);
    gocc_fd_release(c);
    atomic_fetch_add(&srv.ended, 1);
    gocc_waitgroup_done(&srv.wg);
    return 0;
}

static int accept_loop(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    for (;;) {
        gocc_fd_t *c = NULL;
        if (gocc_fd_accept(srv.listener, &c, NULL, NULL, NULL) != 0) break; /* closed: stop */
        atomic_fetch_add(&srv.accepted, 1);
        gocc_waitgroup_add(&srv.wg, 1);
        if (gocc_go(serve_conn, ctx, c) != 0) { /* no task: hang up on it */
            gocc_fd_close(c);
            gocc_fd_release(c);
            gocc_waitgroup_done(&srv.wg);
        }
    }
    gocc_waitgroup_done(&srv.wg);
    return 0;
}

static bool server_start(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof srv.addr;
    srv.addr.sin_family = AF_INET;
    srv.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&srv.addr, sizeof srv.addr) != 0 ||
        listen(s, 64) != 0 || getsockname(s, (struct sockaddr *)&srv.addr, &len) != 0) {
        if (s >= 0) close(s);
        return false;
    }
    srv.listener = gocc_fd_open(s);
    if (srv.listener == NULL) {
        close(s);
        return false;
    }
    gocc_waitgroup_add(&srv.wg, 1);
    if (gocc_go(accept_loop, NULL, NULL) != 0) {
        gocc_waitgroup_done(&srv.wg);
        return false;
    }
    return true;
}

/* Close the listener (the accepting task wakes with GOCC_ECLOSED) and wait
 * for every handler. */
static void server_stop(void) {
    gocc_fd_close(srv.listener);
    gocc_waitgroup_wait(&srv.wg, NULL);
    gocc_fd_release(srv.listener);
}

/* ---- the client ------------------------------------------------------------ */

/* fetch(ctx, url) (Result, error): one request on a connection of its own. */
static int fetch(gocc_ctx_t *ctx, const char *url, result_t *out) {
    int err = gocc_ctx_err(ctx); /* a done context fails before dialing */
    if (err != 0) return err;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    gocc_fd_t *c = gocc_fd_open(s);
    if (c == NULL) {
        close(s);
        return GOCC_ENOMEM;
    }
    err = gocc_fd_connect(c, (const struct sockaddr *)&srv.addr, sizeof srv.addr, ctx);
    char buf[600];
    size_t extra = 0, body = 0;
    int status = 0;
    if (err == 0) {
        int n = snprintf(buf, sizeof buf, "GET %s\n", url);
        ssize_t w = gocc_fd_write(c, buf, (size_t)n, NULL, ctx);
        if (w < 0) err = (int)w;
    }
    if (err == 0) err = read_line(c, buf, sizeof buf, &extra, ctx);
    if (err == 0 && sscanf(buf, "%d %zu", &status, &body) != 2) err = GOCC_EINVAL;
    if (err == 0 && status == 404) err = ERR_NOT_FOUND;
    size_t got = extra; /* the body's first bytes came with the head */
    while (err == 0 && got < body) {
        ssize_t n = gocc_fd_read(c, buf, sizeof buf, ctx);
        if (n <= 0)
            err = n == 0 ? GOCC_ECLOSED : (int)n;
        else
            got += (size_t)n;
    }
    gocc_fd_close(c); /* on an error too: the server sees the hang-up */
    gocc_fd_release(c);
    if (err != 0) return err; /* ctx.Err(), or the server's answer */
    snprintf(out->url, sizeof out->url, "%s", url);
    out->status = status;
    out->bytes = got;
    return 0;
}

/* ---- fetchAll ---------------------------------------------------------- */

typedef struct fetch_task {
    const char *url;
    result_t *slot;         /* &results[i] */
    wrapped_error_t *error; /* this task's error record */
    int index;
    atomic_int *cancelled; /* counts /slow fetches cut short by ctx */
} fetch_task_t;

static int fetch_one(gocc_ctx_t *ctx, void *arg) {
    fetch_task_t *t = arg;
    result_t r;
    int err = fetch(ctx, t->url, &r);
    if (err != 0) { /* return fmt.Errorf("fetching %s: %w", url, err) */
        snprintf(t->error->msg, sizeof t->error->msg, "fetching %s: %s", t->url, err_text(err));
        t->error->cause = err;
        if (err == GOCC_ECANCELED && ends_with(t->url, "/slow")) atomic_fetch_add(t->cancelled, 1);
        return ERR_TASK_BASE + t->index;
    }
    *t->slot = r; /* results[i] = result */
    return 0;
}

typedef struct fetch_all_out {
    result_t *results;    /* NULL on error; caller frees */
    wrapped_error_t err;  /* the first error, when results is NULL */
    atomic_int cancelled; /* /slow fetches that saw ctx cancelled */
} fetch_all_out_t;

/* func fetchAll(ctx, urls) ([]Result, error). True when no error. */
static bool fetch_all(gocc_ctx_t *ctx, const char *const *urls, int n, fetch_all_out_t *out) {
    result_t *results = calloc((size_t)n, sizeof *results);
    fetch_task_t tasks[MAX_URLS];
    wrapped_error_t errs[MAX_URLS];
    gocc_group_t *g = gocc_group_new(ctx); /* g, ctx := errgroup.WithContext(ctx) */
    out->results = NULL;
    if (!results || !g || n > MAX_URLS) {
        out->err = (wrapped_error_t){"fetchAll: out of memory", GOCC_ENOMEM};
        free(results);
        gocc_group_free(g);
        return false;
    }
    gocc_ctx_t *gctx = gocc_group_ctx(g);
    int inline_err = 0; /* the first error of a fetch done here */
    for (int i = 0; i < n; i++) {
        tasks[i] = (fetch_task_t){urls[i], &results[i], &errs[i], i, &out->cancelled};
        if (gocc_group_go(g, fetch_one, &tasks[i]) == 0) continue;
        /* Not started: fetch it here. Its error is one of the group's: it
         * cancels the group context, as a task's would. */
        int rc = fetch_one(gctx, &tasks[i]);
        if (rc != 0 && inline_err == 0) {
            inline_err = rc;
            gocc_ctx_cancel_cause(gctx, rc);
        }
    }
    int err = gocc_group_wait(g); /* a task's first error; every task has returned */
    /* The first error is the one whose cancel came first: the context's
     * cause (a cancel of an already cancelled context changes nothing). */
    if (inline_err != 0 && (err == 0 || gocc_ctx_cause(gctx) == inline_err)) err = inline_err;
    gocc_group_free(g);
    if (err != 0) {
        out->err = err >= ERR_TASK_BASE && err < ERR_TASK_BASE + n
                       ? errs[err - ERR_TASK_BASE]
                       : (wrapped_error_t){"fetchAll: unexpected error", err};
        free(results);
        return false; /* return nil, err */
    }
    out->results = results;
    return true;
}

/* ---- the two runs ------------------------------------------------------- */

static const char *const ok_urls[] = {
    "http://svc.local/a",       "http://svc.local/users",  "http://svc.local/orders/7",
    "http://svc.local/b",       "http://svc.local/health", "http://svc.local/items?page=2",
    "http://svc.local/profile", "http://svc.local/c",
};
#define N_OK (int)(sizeof ok_urls / sizeof ok_urls[0])

static void b07_all_ok(void) {
    fetch_all_out_t out = {0};
    int64_t t0 = gocc_now();
    bool ok = fetch_all(NULL, ok_urls, N_OK, &out);
    int64_t took = gocc_now() - t0;
    int right = 0;
    for (int i = 0; ok && i < N_OK; i++)
        right += strcmp(out.results[i].url, ok_urls[i]) == 0 && out.results[i].status == 200 &&
                 out.results[i].bytes == 100 * strlen(ok_urls[i]);
    check(ok, "Wait returned nil");
    check(right == N_OK, "every results[i] belongs to urls[i]");
    printf("B07 fetchAll: %d URLs fetched at once in %.1f ms: err = nil, %d of %d results in "
           "their own slot (results[1] = %s, %zu bytes)\n",
           N_OK, (double)took / GOCC_MILLISECOND, right, N_OK, ok ? out.results[1].url : "-",
           ok ? out.results[1].bytes : 0);
    free(out.results);
}

static void b07_one_fails(void) {
    const char *urls[] = {
        "http://svc.local/a",       "http://svc.local/slow", "http://svc.local/users",
        "http://svc.local/missing", "http://svc.local/b",    "http://svc.local/slow",
    };
    const int n = (int)(sizeof urls / sizeof urls[0]);
    fetch_all_out_t out = {0};
    int64_t t0 = gocc_now();
    bool ok = fetch_all(NULL, urls, n, &out);
    int64_t took = gocc_now() - t0;
    check(!ok && out.results == NULL, "fetchAll returned an error and no results");
    check(strcmp(out.err.msg, "fetching http://svc.local/missing: not found") == 0,
          "the error is the missing URL's, wrapped with the URL");
    check(errors_is(&out.err, ERR_NOT_FOUND), "errors.Is(err, ErrNotFound)");
    check(atomic_load(&out.cancelled) == 2, "both slow fetches were cancelled by the group");
    check(took < 5 * GOCC_SECOND, "fetchAll did not wait for the 10 s fetches");
    /* The client closed each slow connection when its read was cancelled,
     * and the server's handler saw it hang up. (A slow fetch that the
     * cancel caught before it sent its request never reached the server:
     * on a slow machine the /missing answer can come that early.) */
    int64_t end = gocc_now() + 2 * GOCC_SECOND;
    while (atomic_load(&srv.hung_up) < 2 && gocc_now() < end) gocc_sleep(GOCC_MILLISECOND, NULL);
    check(atomic_load(&srv.hung_up) == atomic_load(&srv.slow_seen),
          "the server saw every slow client that reached it hang up");
    printf("B07 fetchAll: /missing among %d URLs: err = \"%s\", errors.Is(err, ErrNotFound) = "
           "%s, results = %s; %d slow fetches cancelled, returned after %.1f ms\n",
           n, out.err.msg, errors_is(&out.err, ERR_NOT_FOUND) ? "true" : "false",
           out.results ? "non-nil" : "nil", atomic_load(&out.cancelled),
           (double)took / GOCC_MILLISECOND);
}

static void b07_caller_cancelled(void) {
    gocc_ctx_t *caller = gocc_ctx_with_cancel(NULL);
    gocc_ctx_cancel(caller); /* the caller gave up before calling */
    fetch_all_out_t out = {0};
    bool ok = caller && fetch_all(caller, ok_urls, 3, &out);
    check(!ok && out.results == NULL, "a cancelled caller gets an error and no results");
    bool one_of = false;
    for (int i = 0; i < 3; i++) {
        char want[96];
        snprintf(want, sizeof want, "fetching %s: context canceled", ok_urls[i]);
        one_of = one_of || strcmp(out.err.msg, want) == 0;
    }
    check(one_of && errors_is(&out.err, GOCC_ECANCELED),
          "the error is one URL's 'context canceled', wrapped with the URL");
    printf("B07 fetchAll: caller's context already cancelled: every task still started and "
           "saw it: err = \"%s\", results = %s\n",
           out.err.msg, out.results ? "non-nil" : "nil");
    free(out.results);
    gocc_ctx_release(caller);
}

int main(void) {
    if (!server_start()) {
        check(false, "started the server on 127.0.0.1");
        return 1;
    }
    printf("B07 server: 127.0.0.1:%d, a task per connection\n", ntohs(srv.addr.sin_port));
    b07_all_ok();
    b07_one_fails();
    b07_caller_cancelled();
    server_stop();
    check(atomic_load(&srv.accepted) == atomic_load(&srv.ended),
          "every connection the server accepted was handled to its end");
    printf("B07 server: %d connections accepted, %d handled, %d of %d slow clients hung up\n",
           atomic_load(&srv.accepted), atomic_load(&srv.ended), atomic_load(&srv.hung_up),
           atomic_load(&srv.slow_seen));
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B07 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
