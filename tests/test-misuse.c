/*
 * test-misuse.c - misuse that explains itself: an object used after its
 * release, a lock call that fails, and the counts that say what is still
 * alive (the dump's object line, the leak check's first line, what holds
 * a refused gocc_runtime_shutdown).
 *
 * Each use after release runs in a forked child with its stderr on a pipe:
 * the child must die by SIGABRT having written exactly the one line
 * "libgocc: <call>: <kind> <address> was already released". Under
 * AddressSanitizer the quarantine reports the heap-use-after-free first
 * (that is the documented division of labour), and ThreadSanitizer reports
 * the use of freed memory or of a destroyed mutex: there the child must
 * die with either report on stderr.
 */
#include "test-common.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>
#include <sys/wait.h>

#include "gocc-internal.h"

/* ---- running a child ---- */


#if defined(GOCC_ASAN) || defined(GOCC_TSAN)
/* What a sanitizer writes first about the same misuse (ASan, TSan: they
 * see the freed memory or the destroyed mutex before libgocc's check). */
static bool sanitizer_saw_it(const char *err) {
    return strstr(err, "heap-use-after-free") != NULL ||
           strstr(err, "use of an invalid mutex") != NULL;
}
#endif

/* The child died by SIGABRT and wrote exactly the one line @p want ('*' a
 * wildcard for the address). Under a sanitizer: it died, and wrote that
 * line or the sanitizer's report. */
static void expect_abort(void (*fn)(void), const char *want) {
    outcome o;
    run_child(fn, &o);
    char line[512];
    snprintf(line, sizeof line, "%s\n", want);
#if defined(GOCC_ASAN) || defined(GOCC_TSAN)
    if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0)
        fail_msg("child did not die; stderr:\n%s", o.err);
    if (sanitizer_saw_it(o.err)) return;
    char *at = strstr(o.err, "libgocc: ");
    if (at == NULL || strchr(at, '\n') == NULL) fail_msg("child's stderr:\n%s", o.err);
    strchr(at, '\n')[1] = '\0';
    if (!test_glob(line, at)) fail_msg("child's stderr:\n%s\nwanted:\n%s", o.err, line);
#else
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT)
        fail_msg("child did not abort (status 0x%x), wanted: %s; stderr:\n%s", o.status, want,
                 o.err);
    if (strchr(o.err, '\n') != o.err + strlen(o.err) - 1 || !test_glob(line, o.err))
        fail_msg("child's stderr:\n%s\nwanted one line:\n%s", o.err, line);
#endif
}

/* ---- use after release: channels ---- */

#define LOCK_FAILED "libgocc: pthread_mutex_lock failed*(most likely on an object already released)"

static void child_chan_send_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 1);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    int v = 1;
    (void)gocc_chan_send(ch, &v, NULL);
}

static void child_chan_recv_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    int v;
    (void)gocc_chan_recv(ch, &v, NULL);
}

static void child_chan_try_send_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 4);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    int v = 1;
    (void)gocc_chan_try_send(ch, &v);
}

/* With a value left in it: an empty one answers "would block" from its
 * count without a lock (not caught). */
static void child_chan_try_recv_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 4);
    int one = 1;
    if (ch == NULL || gocc_chan_try_send(ch, &one) != 0) _exit(97);
    gocc_chan_release(ch);
    int v;
    (void)gocc_chan_try_recv(ch, &v);
}

static void child_chan_close_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    (void)gocc_chan_close(ch);
}

/* The case: released twice, then a send. The second release
 * already stops it. */
static void child_chan_double_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 1);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    gocc_chan_release(ch);
    int v = 1;
    (void)gocc_chan_send(ch, &v, NULL);
}

static void child_chan_retain_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 1);
    if (ch == NULL) _exit(97);
    gocc_chan_release(ch);
    (void)gocc_chan_retain(ch);
}

static void test_misuse_chan_after_release(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_chan_send_after_release,
                 "libgocc: gocc_chan_send: channel * was already released");
    /* Receives and try_* are not checked on entry (their paths stay as
     * short as they were): the lock of the released channel fails. */
    expect_abort(child_chan_recv_after_release, LOCK_FAILED);
    expect_abort(child_chan_try_send_after_release, LOCK_FAILED);
    expect_abort(child_chan_try_recv_after_release, LOCK_FAILED);
    expect_abort(child_chan_close_after_release,
                 "libgocc: gocc_chan_close: channel * was already released");
    expect_abort(child_chan_double_release,
                 "libgocc: gocc_chan_release: channel * was already released");
    expect_abort(child_chan_retain_after_release,
                 "libgocc: gocc_chan_retain: channel * was already released");
}

/* ---- use after release: contexts ---- */

/* The case: a context released, then slept on. */
static void child_ctx_sleep_after_release(void) {
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    if (c == NULL) _exit(97);
    gocc_ctx_release(c);
    (void)gocc_sleep(GOCC_MILLISECOND, c);
}

static void child_ctx_double_release(void) {
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    if (c == NULL) _exit(97);
    gocc_ctx_release(c);
    gocc_ctx_release(c);
}

static void child_ctx_cancel_after_release(void) {
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    if (c == NULL) _exit(97);
    gocc_ctx_release(c);
    gocc_ctx_cancel(c);
}

static void child_ctx_parent_after_release(void) {
    gocc_ctx_t *c = gocc_ctx_with_value(NULL, &c, NULL);
    if (c == NULL) _exit(97);
    gocc_ctx_release(c);
    gocc_ctx_t *k = gocc_ctx_with_value(c, &k, NULL);
    (void)k;
}

/* A blocking call given a released context: caught where it would wait. */
static void child_ctx_recv_after_release(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    gocc_ctx_t *c = gocc_ctx_with_cancel(NULL);
    if (ch == NULL || c == NULL) _exit(97);
    gocc_ctx_release(c);
    int v;
    (void)gocc_chan_recv(ch, &v, c);
}

static void test_misuse_ctx_after_release(void **state) {
    (void)state;
    TEST_NAME();
    expect_abort(child_ctx_sleep_after_release,
                 "libgocc: gocc_sleep: context * was already released");
    expect_abort(child_ctx_double_release,
                 "libgocc: gocc_ctx_release: context * was already released");
    expect_abort(child_ctx_cancel_after_release,
                 "libgocc: gocc_ctx_cancel: context * was already released");
    expect_abort(child_ctx_parent_after_release,
                 "libgocc: gocc_ctx_with_value: context * was already released");
    expect_abort(child_ctx_recv_after_release,
                 "libgocc: a blocking call: context * was already released");
}

/* ---- a lock call that fails ---- */

static void child_lock_destroyed(void) {
    static gocc__mutex m;
    gocc__mutex_init(&m, GOCC_LOCK_SEM);
    gocc__mutex_destroy(&m);
    gocc__lock(&m);
}

static void test_misuse_lock_failed(void **state) {
    (void)state;
    TEST_NAME();
    outcome o;
    run_child(child_lock_destroyed, &o);
    if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0 && o.err[0] == '\0') {
        skip(); /* this libc locks a destroyed mutex without complaint */
        return;
    }
#if defined(GOCC_ASAN) || defined(GOCC_TSAN)
    if (sanitizer_saw_it(o.err) && !(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0)) return;
#endif
    if (!WIFSIGNALED(o.status) || WTERMSIG(o.status) != SIGABRT ||
        !test_glob(LOCK_FAILED "\n", o.err))
        fail_msg("status 0x%x, stderr:\n%s", o.status, o.err);
}

/* ---- what is still alive ---- */

/* What gocc_dump (or @p fn) wrote, read back through a temporary file. */
static char *capture(int (*fn)(int fd)) {
    FILE *f = tmpfile();
    assert_non_null(f);
    int rc = fn(fileno(f));
    (void)rc;
    long n = lseek(fileno(f), 0, SEEK_END);
    assert_true(n > 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fileno(f), buf, (size_t)n, 0), n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int dump_fd(int fd) { return gocc_dump(fd); }

/* The counts on the dump's second line. */
static void live_counts(long n[6]) {
    char *d = capture(dump_fd);
    char *line = strchr(d, '\n');
    assert_non_null(line);
    int k = sscanf(line + 1,
                   "live objects: %ld channels, %ld contexts, %ld timers, %ld pools, "
                   "%ld worker pools, %ld fds",
                   &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]);
    if (k != 6) fail_msg("dump:\n%s", d);
    free(d);
}

static void *pool_new_fn(void *ud) {
    (void)ud;
    return malloc(8);
}

static void pool_free_fn(void *obj, void *ud) {
    (void)ud;
    free(obj);
}

/* The case: channels and contexts never released passed the leak
 * check unseen. The dump counts them now. */
static void test_misuse_dump_counts_objects(void **state) {
    (void)state;
    TEST_NAME();
    enum { N = 100 };
    long before[6], during[6], after[6];
    live_counts(before);
    gocc_chan_t *chs[N];
    gocc_ctx_t *ctxs[N];
    for (int i = 0; i < N; i++) {
        chs[i] = gocc_chan_new(sizeof(int), (size_t)i % 3);
        ctxs[i] = gocc_ctx_with_cancel(NULL);
        assert_non_null(chs[i]);
        assert_non_null(ctxs[i]);
    }
    gocc_timer_t *t = gocc_timer_new(GOCC_SECOND * 3600);
    gocc_pool_t *p = gocc_pool_new(pool_new_fn, pool_free_fn, NULL);
    gocc_workpool_t *wp = gocc_workpool_new(1, 1, NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    gocc_fd_t *f = gocc_fd_open(fds[0]);
    assert_non_null(t);
    assert_non_null(p);
    assert_non_null(wp);
    assert_non_null(f);
    live_counts(during);
    /* A timer owns a channel of its own; a worker pool a context. */
    assert_int_equal(during[0] - before[0], N + 1);
    assert_int_equal(during[1] - before[1], N + 1);
    assert_int_equal(during[2] - before[2], 1);
    assert_int_equal(during[3] - before[3], 1);
    assert_int_equal(during[4] - before[4], 1);
    assert_int_equal(during[5] - before[5], 1);
    for (int i = 0; i < N; i++) {
        gocc_chan_release(chs[i]);
        gocc_ctx_release(ctxs[i]);
    }
    gocc_timer_free(t);
    gocc_pool_free(p);
    gocc_workpool_free(wp);
    gocc_fd_release(f);
    close(fds[1]);
    /* The pool's worker lets go of its context as it exits, which may be
     * a moment after gocc_workpool_free returned: wait for it, bounded. */
    int64_t end = gocc_now() + SAFETY_NS;
    for (;;) {
        live_counts(after);
        if (memcmp(after, before, sizeof after) == 0 || gocc_now() > end) break;
        sleep_ns(GOCC_MILLISECOND);
    }
    for (int i = 0; i < 6; i++) assert_int_equal(after[i], before[i]);
}

/* A refused shutdown: the dump says what held it, and stops saying so once
 * a shutdown went through. */
static void test_misuse_shutdown_says_why(void **state) {
    (void)state;
    TEST_NAME();
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, 3600 * GOCC_SECOND);
    assert_non_null(c);
    assert_int_equal(gocc_runtime_shutdown(), GOCC_EAGAIN);
    char *d = capture(dump_fd);
    if (strstr(d, "gocc_runtime_shutdown refused (GOCC_EAGAIN), held by: timers in use") == NULL)
        fail_msg("dump:\n%s", d);
    free(d);
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
    int64_t end = gocc_now() + QUIESCENT;
    int rc;
    while ((rc = gocc_runtime_shutdown()) != 0 && gocc_now() < end) pause_ns(PAUSE_NS);
    assert_int_equal(rc, 0);
    d = capture(dump_fd);
    if (strstr(d, "gocc_runtime_shutdown refused") != NULL) fail_msg("dump:\n%s", d);
    free(d);
}

static int block_forever(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    return gocc_chan_recv(arg, NULL, NULL);
}

static int leakcheck_fd(int fd) {
    return gocc_leakcheck(gocc_tasks_live() - 1, GOCC_MILLISECOND * 20, fd);
}

/* The leak check's report starts with how many tasks outlived the wait. */
static void test_misuse_leakcheck_line(void **state) {
    (void)state;
    TEST_NAME();
    gocc_chan_t *ch = gocc_chan_new(0, 0);
    assert_non_null(ch);
    go(block_forever, ch);
    char *d = capture(leakcheck_fd);
    if (!test_glob("libgocc: * tasks still running after 0.020s (expected at most *)\n"
                   "libgocc dump: *",
                   d))
        fail_msg("report:\n%s", d);
    free(d);
    gocc_chan_close(ch);
    gocc_chan_release(ch);
}

/* A task that cannot start because no thread could be made: the code's
 * text says so (it used to read "operation would block" alone). */
static void test_misuse_strerror_eagain(void **state) {
    (void)state;
    TEST_NAME();
    if (strstr(gocc_strerror(GOCC_EAGAIN), "no thread") == NULL)
        fail_msg("GOCC_EAGAIN reads \"%s\"", gocc_strerror(GOCC_EAGAIN));
}

#if defined(GOCC_FAULT_INJECTION)
static int nothing(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

/* The case itself: an own_thread task whose thread cannot be made
 * (the first thread creation fails) is GOCC_EAGAIN, and its text says
 * that no thread could be started. */
static void test_misuse_go_no_thread(void **state) {
    (void)state;
    TEST_NAME();
    gocc_task_opts_t o = {.own_thread = true, .stack_size = 256 * 1024};
    gocc__fault_arm(0, 1);
    int rc = gocc_go_opts(nothing, NULL, NULL, &o);
    long injected = gocc__fault_injected();
    gocc__fault_disarm();
    assert_int_equal(injected, 1);
    assert_int_equal(rc, GOCC_EAGAIN);
    assert_non_null(strstr(gocc_strerror(rc), "no thread could be started"));
}
#endif

int main(void) {
    test_watchdog_install("test-misuse", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_misuse_chan_after_release),
        GOCC_TEST(test_misuse_ctx_after_release),
        GOCC_TEST(test_misuse_lock_failed),
        GOCC_TEST(test_misuse_dump_counts_objects),
        GOCC_TEST(test_misuse_leakcheck_line),
        GOCC_TEST(test_misuse_strerror_eagain),
#if defined(GOCC_FAULT_INJECTION)
        GOCC_TEST(test_misuse_go_no_thread),
#endif
        GOCC_TEST(test_misuse_shutdown_says_why), /* last: it stops the runtime */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
