/*
 * test-common.h - helpers every cmocka test of libgocc shares.
 *
 * SCALE(n): loop counts shrink under sanitizers (GOCC_TEST_SANITIZED).
 * Tests are registered with GOCC_TEST(f) (not cmocka_unit_test): its
 * teardown is gocc_leakcheck, so every test also fails when it leaves a
 * task behind. ASSERT_NO_TASKS(start) checks the same inside a test
 * (gocc_tasks_live() back to start within 5 s, else a dump on stderr).
 *
 * Include this header first: it defines _GNU_SOURCE (nanosleep, ssize_t in
 * strict C11) before any system header.
 *
 * What is here (one test program = one translation unit, so the statics
 * below exist once per program):
 *  - CHECK_GE / CHECK_LT: comparisons that print both sides on failure.
 *  - Watchdogs, armed by test_main_init(prog, seconds), the first call of
 *    every test main (test-fault, test-lockcheck and test-runtime arm the
 *    alarm alone and say why): test_watchdog_install arms alarm(), so a test that
 *    hangs kills the program with "<prog>: WATCHDOG: hung in <test>"
 *    (TEST_NAME() records the running test) instead of waiting for meson's
 *    timeout (WATCHDOG_SECONDS is the usual budget for a whole program);
 *    test_stuck_watch turns on libgocc's own (gocc_watch_stuck, STUCK_NS,
 *    to stderr), so a task that hangs in libgocc is reported, with the
 *    dump when all are asleep, well before the alarm. A test that points
 *    gocc_watch_stuck elsewhere or turns it off calls test_stuck_watch()
 *    when done; one that needs the runtime to wind down (a watch thread
 *    makes gocc_runtime_shutdown answer GOCC_EAGAIN) is registered with
 *    GOCC_TEST_NO_WATCH(f) instead of GOCC_TEST(f). GOCC_TEST_FILTER=glob
 *    in the environment runs only the tests whose names match.
 *  - Time: sleep_ns (nanosleep, no library timers), pause_ns (gocc_sleep),
 *    and the SETTLE_NS / SAFETY_NS / PAUSE_NS / PROMPT_NS / QUIESCENT
 *    constants (a file may #undef and redefine one before using it).
 *  - safety_ctx(): a timeout context of SAFETY_NS (as defined where it is
 *    called) so a bug fails instead of hanging; ctx_done_release() is the
 *    owner's cancel + release.
 *  - chan_new() / go(): gocc_chan_new / gocc_go that assert success.
 *  - run_child(fn, &outcome): fn in a forked child, its exit status and
 *    stderr captured (misuse and lock-check tests); test_glob matches the
 *    text with '*' as a wildcard.
 *  - Bounded polling: wait_count (atomic_int, true when reached),
 *    wait_int (atomic_int) and wait_size (_Atomic size_t), which return the
 *    last value seen; test_wait_tasks and tasks_down_to for
 *    gocc_tasks_live().
 *  - What is blocked, as gocc_dump reports it (the registry knows when a
 *    task has parked, so no test guesses from a pause): wait_blocked(n,
 *    timeout) until n entries are blocked, wait_blocked_in(n, reason,
 *    timeout) until n are blocked in that REASON (`chan send`, `select`,
 *    ...), wait_quiet(timeout) until every live task is parked. They fail
 *    the test, printing the dump, on timeout; code on a task uses
 *    blocked_reached, which only answers. A parked task is on its wait
 *    queue already, so waiting for each in turn also fixes the order in
 *    which waiters queued; and a waiter that a call woke is no longer
 *    parked when the call returns, so "still parked" is exact too.
 *  - async_call: a blocking call run on a task and awaited with a bound
 *    (async_start / async_start_blocked / async_wait / ASYNC_RESULT).
 *    async_start_blocked returns once the dump shows that very call parked
 *    (its task is named after the async_call), and fails the test if the
 *    call returned instead.
 *  - xorshift: a tiny deterministic PRNG.
 */
#ifndef GOCC_TEST_COMMON_H
#define GOCC_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/mman.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gocc.h>

#ifdef GOCC_TEST_SANITIZED
#define SCALE(n) (((n) / 8) > 0 ? ((n) / 8) : 1)
#else
#define SCALE(n) (n)
#endif

/* ---- time constants (a file may #undef and redefine one) ---- */

#ifdef GOCC_TEST_SANITIZED
#define SETTLE_NS (200 * GOCC_MILLISECOND) /* let a task reach its wait */
#define SAFETY_NS (60 * GOCC_SECOND)       /* a hang becomes a failure */
#define WATCHDOG_SECONDS 400u              /* a whole program, then abort */
#define STUCK_NS_ (120 * GOCC_SECOND)      /* blocked this long: reported */
#else
#define SETTLE_NS (50 * GOCC_MILLISECOND)
#define SAFETY_NS (10 * GOCC_SECOND)
#define WATCHDOG_SECONDS 120u
#define STUCK_NS_ (60 * GOCC_SECOND)
#endif
#ifndef STUCK_NS /* a program may define its own before the include */
#define STUCK_NS STUCK_NS_
#endif
#define PAUSE_NS GOCC_MILLISECOND   /* Go's time.Sleep(time.Millisecond) */
#define PROMPT_NS (2 * GOCC_SECOND) /* "returns promptly" upper bound */
#define QUIESCENT (5 * GOCC_SECOND) /* how long to wait for what must happen */

/* ---- assertions ---- */

#define CHECK_GE(a, b)                                                             \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (!(a_ >= b_)) fail_msg("%s = %lld, want >= %s = %lld", #a, a_, #b, b_); \
    } while (0)
#define CHECK_LT(a, b)                                                           \
    do {                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                      \
        if (!(a_ < b_)) fail_msg("%s = %lld, want < %s = %lld", #a, a_, #b, b_); \
    } while (0)

/* ---- watchdog ---- */

static const char *test_watchdog_prog_ = "test";
static _Atomic(const char *) g_test = "(before the first test)";

static void test_watchdog_(int sig) {
    (void)sig;
    const char *name = atomic_load_explicit(&g_test, memory_order_relaxed);
    const char *prog = test_watchdog_prog_;
    static const char msg[] = ": WATCHDOG: hung in ";
    ssize_t r = write(2, "\n", 1);
    r = write(2, prog, strlen(prog));
    r = write(2, msg, sizeof msg - 1);
    r = write(2, name, strlen(name));
    r = write(2, "\n", 1);
    (void)r;
    _exit(99);
}

/* Arm the alarm: after @p seconds the program exits (status 99) naming
 * @p prog and the test TEST_NAME() recorded last. Also: GOCC_TEST_FILTER
 * in the environment (a cmocka glob, `test_chan_fifo*`) runs only the
 * tests it names. */
static inline void test_watchdog_install(const char *prog, unsigned seconds) {
    test_watchdog_prog_ = prog;
    signal(SIGALRM, test_watchdog_);
    alarm(seconds);
    const char *filter = getenv("GOCC_TEST_FILTER");
    if (filter != NULL && filter[0] != '\0') cmocka_set_test_filter(filter);
}

/* libgocc's own stuck watchdog, to stderr: each task blocked in libgocc
 * longer than STUCK_NS is reported, and the dump follows when all are.
 * @p on false turns it off. */
static inline void test_stuck_watch_set_(bool on) {
    if (gocc_watch_stuck(on ? STUCK_NS : 0, STDERR_FILENO) != 0) {
        static const char msg[] = "test: gocc_watch_stuck failed\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        abort();
    }
}
static inline void test_stuck_watch(void) { test_stuck_watch_set_(true); }

/* What every test main calls first: both watchdogs. */
static inline void test_main_init(const char *prog, unsigned seconds) {
    test_watchdog_install(prog, seconds);
    test_stuck_watch();
}

#define TEST_NAME() atomic_store_explicit(&g_test, __func__, memory_order_relaxed)

/* ---- time ---- */

/* Sleep without the library's timers. */
static inline void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / GOCC_SECOND), (long)(ns % GOCC_SECOND)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sleep with the library's timer thread (gocc_sleep). */
static inline void pause_ns(int64_t ns) { gocc_sleep(ns, NULL); }

/* ---- contexts and channels ---- */

static inline gocc_ctx_t *safety_ctx_ns(int64_t timeout_ns) {
    gocc_ctx_t *c = gocc_ctx_with_timeout(NULL, timeout_ns);
    assert_non_null(c);
    return c;
}
/* A timeout context of SAFETY_NS as defined where it is called. */
#define safety_ctx() safety_ctx_ns(SAFETY_NS)

/* The owner's "defer cancel()": cancel, then drop the reference. */
static inline void ctx_done_release(gocc_ctx_t *c) {
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
}

static inline gocc_chan_t *chan_new(size_t elem, size_t cap) {
    gocc_chan_t *c = gocc_chan_new(elem, cap);
    assert_non_null(c);
    return c;
}

/* gocc_go with a NULL ctx that asserts success. */
static inline void go(gocc_fn fn, void *arg) { assert_int_equal(gocc_go(fn, NULL, arg), 0); }

/* ---- bounded polling ---- */

/* Poll (no library timers) until *v >= want or timeout_ns passed; return
 * the last value seen. */
static inline int wait_int(atomic_int *v, int want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    int got;
    while ((got = atomic_load(v)) < want && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    return got;
}

/* wait_int for a size_t counter. */
static inline size_t wait_size(_Atomic size_t *v, size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t got;
    while ((got = atomic_load(v)) < want && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    return got;
}

/* True if *c reached want within timeout_ns. */
static inline bool wait_count(atomic_int *c, int want, int64_t timeout_ns) {
    return wait_int(c, want, timeout_ns) >= want;
}

/* Wait (bounded) until gocc_tasks_live() <= want; return what it is. */
static inline size_t test_wait_tasks(size_t want, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    size_t live;
    while ((live = gocc_tasks_live()) > want && gocc_now() < end)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    return live;
}

/* tasks_down_to: test_wait_tasks for checks that run off the test thread
 * (no cmocka, no library timers): true once gocc_tasks_live() <= want,
 * false after QUIESCENT. */
static inline bool tasks_down_to(size_t want) {
    int64_t end = gocc_now() + QUIESCENT;
    while (gocc_tasks_live() > want) {
        if (gocc_now() > end) return false;
        sleep_ns(50 * GOCC_MICROSECOND);
    }
    return true;
}

/* gocc_leakcheck: on failure the dump of what is still live goes to stderr.
 * Bounded by SAFETY_NS, not less: several tests use it to wait for their
 * tasks to finish their work, and under a sanitizer on a loaded 2-core
 * machine 2,000 ping-pong rounds once took longer than 5 s. */
#define ASSERT_NO_TASKS(start) \
    assert_int_equal(gocc_leakcheck((start), SAFETY_NS, STDERR_FILENO), 0)

/* Every test is also a leak test: GOCC_TEST(f) registers f with a setup
 * that records gocc_tasks_live() and a teardown that fails the test (and
 * dumps what is left) unless the count is back there within QUIESCENT
 * (not SAFETY_NS: after a failed test its tasks may stay, and each later
 * teardown would wait that long again). */
static size_t gocc_test_baseline_;

static inline int gocc_test_setup_(void **state) {
    (void)state;
    gocc_test_baseline_ = gocc_tasks_live();
    return 0;
}

static inline int gocc_test_teardown_(void **state) {
    (void)state;
    return gocc_leakcheck(gocc_test_baseline_, QUIESCENT, STDERR_FILENO) == 0 ? 0 : -1;
}

#define GOCC_TEST(f) cmocka_unit_test_setup_teardown(f, gocc_test_setup_, gocc_test_teardown_)

/* GOCC_TEST for a test that shuts the runtime down or swaps its allocator:
 * the stuck watchdog's thread is stopped for its duration. */
static inline int gocc_test_setup_no_watch_(void **state) {
    test_stuck_watch_set_(false);
    return gocc_test_setup_(state);
}

static inline int gocc_test_teardown_no_watch_(void **state) {
    int rc = gocc_test_teardown_(state);
    test_stuck_watch();
    return rc;
}

#define GOCC_TEST_NO_WATCH(f) \
    cmocka_unit_test_setup_teardown(f, gocc_test_setup_no_watch_, gocc_test_teardown_no_watch_)

/* ---- what is blocked: gocc_dump, read back ---- */

/* The dump as a NUL-terminated string (free it), written into a memfd;
 * NULL when it could not be had. No cmocka: usable on a task. */
static inline char *test_dump_text_(void) {
    int fd = memfd_create("gocc-test-dump", MFD_CLOEXEC);
    if (fd < 0) return NULL;
    char *text = NULL;
    off_t len = gocc_dump(fd) >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (len >= 0) text = malloc((size_t)len + 1);
    size_t got = 0;
    while (text != NULL && got < (size_t)len) {
        ssize_t r = pread(fd, text + got, (size_t)len - got, (off_t)got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (text != NULL) text[got] = '\0';
    return text;
}

/* test_dump_text_, failing the test when the dump cannot be had. */
static inline char *test_dump_text(void) {
    char *text = test_dump_text_();
    if (text == NULL) fail_msg("could not read gocc_dump back: %s", strerror(errno));
    return text;
}

/* Whether an entry's STATE is a wait in libgocc: not `running...` nor
 * `runnable`. */
static inline bool test_state_blocked_(const char *state) {
    return strncmp(state, "running", 7) != 0 && strncmp(state, "runnable", 8) != 0;
}

/* How many entries of @p dump are blocked, in REASON @p reason (NULL: any)
 * and, when @p name is not NULL, named exactly that. With neither, B of
 * the first line. */
static inline long test_dump_count_blocked(const char *dump, const char *reason, const char *name) {
    if (reason == NULL && name == NULL) {
        long t = 0, b = 0;
        if (sscanf(dump, "libgocc dump: %ld tasks live, %ld blocked", &t, &b) != 2) return -1;
        return b;
    }
    long count = 0;
    for (const char *line = dump; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        /* task <ID> "<NAME>" [<STATE>]:  or  thread <ID> "<NAME>" [<STATE>]: */
        if (strncmp(line, "task ", 5) == 0 || strncmp(line, "thread ", 7) == 0) {
            const char *q1 = memchr(line, '"', len);
            const char *st = NULL;
            for (const char *p = line + len; p > line; p--) /* the last '[' */
                if (p[-1] == '[') {
                    st = p;
                    break;
                }
            if (q1 != NULL && st != NULL && st - 3 > q1 && test_state_blocked_(st)) {
                const char *q2 = st - 3; /* "... \"<NAME>\" [" */
                bool name_ok = name == NULL || ((size_t)(q2 - q1 - 1) == strlen(name) &&
                                                strncmp(q1 + 1, name, strlen(name)) == 0);
                bool reason_ok = reason == NULL || (strncmp(st, reason, strlen(reason)) == 0 &&
                                                    st[strlen(reason)] == ',');
                if (name_ok && reason_ok) count++;
            }
        }
        line += len + (eol != NULL);
    }
    return count;
}

/* Wait (bounded, no library timers) until at least @p n entries of the
 * dump are blocked in @p reason (NULL: any) named @p name (NULL: any).
 * When @p stop is not NULL and becomes true first, or the time runs out,
 * the test fails with the last dump. */
static inline void wait_blocked_(size_t n, const char *reason, const char *name,
                                 bool (*stop)(void *), void *stop_arg, int64_t timeout_ns,
                                 const char *what, int line) {
    int64_t end = gocc_now() + timeout_ns;
    int64_t nap = 50 * GOCC_MICROSECOND;
    for (;;) {
        char *dump = test_dump_text();
        long got = test_dump_count_blocked(dump, reason, name);
        if (got >= 0 && (size_t)got >= n) {
            free(dump);
            return;
        }
        bool stopped = stop != NULL && stop(stop_arg);
        if (stopped || gocc_now() > end) {
            fprintf(stderr, "line %d: %s: %ld blocked%s%s, want %zu; the dump:\n%s", line, what,
                    got, reason != NULL ? " in " : "", reason != NULL ? reason : "", n, dump);
            free(dump);
            fail_msg("line %d: %s: %s", line, what,
                     stopped ? "the call returned instead of blocking" : "not blocked in time");
        }
        free(dump);
        sleep_ns(nap);
        if (nap < 2 * GOCC_MILLISECOND) nap *= 2;
    }
}

/* The number of task entries of @p dump, and how many of them are blocked. */
static inline void test_dump_tasks(const char *dump, long *tasks, long *blocked) {
    *tasks = *blocked = 0;
    for (const char *line = dump; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (strncmp(line, "task ", 5) == 0) {
            ++*tasks;
            for (const char *p = line + len; p > line; p--)
                if (p[-1] == '[') {
                    *blocked += test_state_blocked_(p);
                    break;
                }
        }
        line += len + (eol != NULL);
    }
}

/* Wait until every live task is parked (none running or runnable): from
 * then on nothing happens until the test acts, or a timer fires. Fails
 * the test with the dump after @p timeout_ns. */
static inline void wait_quiet_(int64_t timeout_ns, int line) {
    int64_t end = gocc_now() + timeout_ns;
    for (;;) {
        char *dump = test_dump_text();
        long tasks, blocked;
        test_dump_tasks(dump, &tasks, &blocked);
        if (tasks == blocked && (size_t)tasks == gocc_tasks_live()) {
            free(dump);
            return;
        }
        if (gocc_now() > end) {
            fprintf(stderr, "line %d: wait_quiet: %ld of %ld tasks parked; the dump:\n%s", line,
                    blocked, tasks, dump);
            free(dump);
            fail_msg("line %d: wait_quiet: tasks still running", line);
        }
        free(dump);
        sleep_ns(200 * GOCC_MICROSECOND);
    }
}
#define wait_quiet(timeout_ns) wait_quiet_((timeout_ns), __LINE__)

/* blocked_reached: the same wait for code that runs on a task (no cmocka):
 * true once at least @p n entries are blocked in @p reason (NULL: any),
 * false after @p timeout_ns. */
static inline bool blocked_reached(size_t n, const char *reason, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    for (;;) {
        char *dump = test_dump_text_();
        long got = dump != NULL ? test_dump_count_blocked(dump, reason, NULL) : -1;
        free(dump);
        if (got >= 0 && (size_t)got >= n) return true;
        if (gocc_now() > end) return false;
        sleep_ns(200 * GOCC_MICROSECOND);
    }
}

/* Until at least n entries (tasks, and threads in libgocc calls) are
 * blocked; fails the test with the dump after timeout_ns. */
#define wait_blocked(n, timeout_ns) \
    wait_blocked_((n), NULL, NULL, NULL, NULL, (timeout_ns), "wait_blocked", __LINE__)
/* The same, counting only those blocked in REASON (gocc_dump's wording:
 * "chan send", "select", "semaphore acquire", ...). */
#define wait_blocked_in(n, reason, timeout_ns) \
    wait_blocked_((n), (reason), NULL, NULL, NULL, (timeout_ns), "wait_blocked_in", __LINE__)

/* ---- a blocking call run on a task, observed from the test thread ---- */

/* async_start(a, fn, arg) runs rc = fn(arg) on a task; async_wait bounds
 * how long the test waits for it, so a call that hangs because of a bug
 * fails the test instead of hanging it. No cmocka assertion runs on the
 * task. rc and t_ret may be read once async_done() is true. */
typedef struct async_call {
    int (*fn)(void *arg);
    void *arg;
    int rc;
    int64_t t_ret;    /* gocc_now() when fn returned */
    atomic_int state; /* 0 not started, 1 calling, 2 returned */
    char name[32];    /* its task's name: "async <address of a>" */
} async_call;

static int async_task_(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    async_call *a = arg;
    (void)gocc_task_set_name(a->name); /* unnamed: async_start_blocked times out */
    atomic_store(&a->state, 1);
    a->rc = a->fn(a->arg);
    a->t_ret = gocc_now();
    atomic_store_explicit(&a->state, 2, memory_order_release);
    return 0;
}

static inline void async_start(async_call *a, int (*fn)(void *), void *arg) {
    a->fn = fn;
    a->arg = arg;
    a->rc = 1000;
    a->t_ret = 0;
    atomic_init(&a->state, 0);
    snprintf(a->name, sizeof a->name, "async %p", (void *)a);
    assert_int_equal(gocc_go(async_task_, NULL, a), 0);
}

static inline bool async_done(async_call *a) {
    return atomic_load_explicit(&a->state, memory_order_acquire) == 2;
}

/* True if the call returned within timeout_ns. */
static inline bool async_wait(async_call *a, int64_t timeout_ns) {
    int64_t end = gocc_now() + timeout_ns;
    while (!async_done(a)) {
        if (gocc_now() > end) return false;
        sleep_ns(100 * GOCC_MICROSECOND);
    }
    return true;
}

static inline bool async_done_(void *a) { return async_done(a); }

/* Wait until the dump shows @p a's call parked in libgocc (in @p reason
 * unless NULL); fail the test if it returns first, or after SAFETY_NS. */
#define async_blocked(a, reason) \
    wait_blocked_(1, (reason), (a)->name, async_done_, (a), SAFETY_NS, #a, __LINE__)

/* async_start, then async_blocked: the call is on its wait queue. */
#define async_start_blocked(a, fn, arg, reason) \
    do {                                        \
        async_start((a), (fn), (arg));          \
        async_blocked((a), (reason));           \
    } while (0)

/* The older name (it used to pause instead): parked in any wait. */
#define async_start_settled(a, fn, arg) async_start_blocked((a), (fn), (arg), NULL)

/* The call's result; fails the test if it did not return within timeout_ns. */
static inline int async_result_(async_call *a, int64_t timeout_ns, const char *what, int line) {
    if (!async_wait(a, timeout_ns)) fail_msg("line %d: %s did not return in time", line, what);
    return a->rc;
}
#define ASYNC_RESULT(a, timeout_ns) async_result_((a), (timeout_ns), #a, __LINE__)

/* ---- a child that must stop with a message ---- */

/* How a child of run_child ended: its wait status and its stderr. */
typedef struct outcome {
    int status;
    char err[8192];
} outcome;

/* Run fn() in a forked child with its stderr captured; a child that hangs
 * is killed after 30 s (SIGALRM, not SIGABRT). */
static inline void run_child(void (*fn)(void), outcome *o) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (dup2(p[1], STDERR_FILENO) < 0) _exit(98);
        close(p[1]);
        alarm(30);
        fn();
        _exit(0); /* nothing noticed */
    }
    close(p[1]);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(p[0], o->err + n, sizeof o->err - 1 - n);
        if (k > 0)
            n += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else
            break;
        if (n == sizeof o->err - 1) break;
    }
    o->err[n] = '\0';
    close(p[0]);
    while (waitpid(pid, &o->status, 0) < 0) assert_int_equal(errno, EINTR);
}

/* Does @p text (up to its end) match @p pat, where '*' is any run of
 * characters? */
static inline bool test_glob(const char *pat, const char *text) {
    if (*pat == '\0') return *text == '\0';
    if (*pat == '*') {
        for (const char *t = text;; t++) {
            if (test_glob(pat + 1, t)) return true;
            if (*t == '\0') return false;
        }
    }
    return *text == *pat && test_glob(pat + 1, text + 1);
}

/* ---- misc ---- */

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A plain joinable thread, for tests that want an OS thread of their own. */
typedef struct test_thread {
    pthread_t t;
} test_thread;
static inline void test_thread_start(test_thread *th, void *(*fn)(void *), void *arg) {
    assert_int_equal(pthread_create(&th->t, NULL, fn, arg), 0);
}
static inline void test_thread_join(test_thread *th) {
    assert_int_equal(pthread_join(th->t, NULL), 0);
}

#endif /* GOCC_TEST_COMMON_H */
