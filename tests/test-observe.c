/*
 * test-observe.c - task names, gocc_dump, gocc_leakcheck, the dump on a
 * signal and the stuck-task watchdog (src/observe.c).
 *
 * The dump is read back as text and checked against the fixed lines of
 * gocc.h ("libgocc dump: T tasks live, B blocked", "task ID "NAME"
 * [REASON, S.SSSs]:", "thread ID ...") for every wait reason, with the
 * durations, names and what the task waits on; and for the states of a
 * task that is not blocked (`running`, `running, S.SSSs` past the block
 * threshold, `runnable`), which the watchdog never reports, and a parked
 * task's call stack. Tasks that block name
 * themselves so their entry can be found. Nothing sleeps to synchronise:
 * each test polls the dump until the state it wants shows up (bounded).
 */
#include "test-common.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- reading the dump ---- */

/* The whole of one gocc_dump as a string (malloc'd), its result in *rc. */
static char *dump_str(int *rc) {
    FILE *f = tmpfile();
    assert_non_null(f);
    int r = gocc_dump(fileno(f));
    if (rc) *rc = r;
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char *s = malloc((size_t)st.st_size + 1);
    assert_non_null(s);
    assert_int_equal(pread(fileno(f), s, (size_t)st.st_size, 0), st.st_size);
    s[st.st_size] = '\0';
    fclose(f);
    return s;
}

/* Dump until @p needle shows up (up to QUIESCENT); the last dump, or
 * fail with it printed. */
static char *wait_dump(const char *needle) {
    int64_t end = gocc_now() + QUIESCENT;
    for (;;) {
        char *s = dump_str(NULL);
        if (strstr(s, needle) != NULL) return s;
        if (gocc_now() > end) {
            print_error("no \"%s\" in the dump:\n%s\n", needle, s);
            free(s);
            fail();
        }
        free(s);
        sleep_ns(2 * GOCC_MILLISECOND);
    }
}

/* The entry line of the task named @p name: checks its fixed format and
 * returns the seconds in its state (blocked, or running that long; -1 for
 * a bare `running` or `runnable`); *reason gets the reason, `running` or
 * `runnable`. */
static double entry_of(const char *dump, const char *kind, const char *name, char *reason,
                       size_t reason_len) {
    char key[96];
    snprintf(key, sizeof key, " \"%s\" [", name);
    const char *p = strstr(dump, key);
    if (p == NULL) fail_msg("no entry named %s in:\n%s", name, dump);
    const char *line = p;
    while (line > dump && line[-1] != '\n') line--;
    unsigned long long id;
    char word[16];
    assert_int_equal(sscanf(line, "%15s %llu", word, &id), 2);
    assert_string_equal(word, kind);
    CHECK_GE(id, 1);
    const char *st = p + strlen(key);
    const char *end = strchr(st, ']');
    assert_non_null(end);
    assert_int_equal(end[1], ':');
    if (strncmp(st, "running]", 8) == 0 || strncmp(st, "runnable]", 9) == 0) {
        snprintf(reason, reason_len, "%.*s", (int)(end - st), st);
        return -1;
    }
    const char *comma = strstr(st, ", ");
    assert_true(comma != NULL && comma < end);
    snprintf(reason, reason_len, "%.*s", (int)(comma - st), st);
    double secs = -1;
    assert_int_equal(sscanf(comma + 2, "%lfs]", &secs), 1);
    /* three decimals, then "s" */
    const char *dot = strchr(comma, '.');
    assert_true(dot != NULL && dot < end && end - dot == 5 && end[-1] == 's');
    return secs;
}

/* The text of the entry for @p name (its first line and indented lines). */
static char *entry_text(const char *dump, const char *name) {
    char key[96];
    snprintf(key, sizeof key, " \"%s\" [", name);
    const char *p = strstr(dump, key);
    assert_non_null(p);
    while (p > dump && p[-1] != '\n') p--;
    const char *e = strchr(p, '\n');
    while (e != NULL && e[1] == ' ') e = strchr(e + 1, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- names ---- */

static void test_name_thread(void **state) {
    (void)state;
    TEST_NAME();
    char os_before[16], os[16];
    assert_int_equal(pthread_getname_np(pthread_self(), os_before, sizeof os_before), 0);
    assert_string_equal(gocc_task_name(), "");

    assert_int_equal(gocc_task_set_name("observer"), 0);
    assert_string_equal(gocc_task_name(), "observer");
    assert_int_equal(pthread_getname_np(pthread_self(), os, sizeof os), 0);
    assert_string_equal(os, "observer");

    /* 31 bytes kept, 15 for the OS. */
    const char *longname = "a-very-long-task-name-that-goes-on-and-on";
    assert_int_equal(gocc_task_set_name(longname), 0);
    assert_int_equal(strlen(gocc_task_name()), 31);
    assert_memory_equal(gocc_task_name(), longname, 31);
    assert_int_equal(pthread_getname_np(pthread_self(), os, sizeof os), 0);
    assert_int_equal(strlen(os), 15);
    assert_memory_equal(os, longname, 15);

    /* NULL clears both, and the OS name comes back. */
    assert_int_equal(gocc_task_set_name(NULL), 0);
    assert_string_equal(gocc_task_name(), "");
    assert_int_equal(pthread_getname_np(pthread_self(), os, sizeof os), 0);
    assert_string_equal(os, os_before);
}

typedef struct named_arg {
    const char *name;
    gocc_chan_t *ch;
    char seen_name[40];
    char seen_os[16];
} named_arg;

static int named_block(gocc_ctx_t *ctx, void *p) {
    named_arg *a = p;
    if (a->name) gocc_task_set_name(a->name);
    int v;
    return gocc_chan_recv(a->ch, &v, ctx) == 0 ? 0 : 1;
}

static int report_name(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    named_arg *a = p;
    snprintf(a->seen_name, sizeof a->seen_name, "%s", gocc_task_name());
    pthread_getname_np(pthread_self(), a->seen_os, sizeof a->seen_os);
    return 0;
}

static void test_name_task_ends_with_task(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_chan_t *ch = chan_new(sizeof(int), 0);
    named_arg a = {.name = "named-task", .ch = ch};
    go(named_block, &a);
    char *d = wait_dump("\"named-task\" [chan receive, ");
    char reason[32];
    double s = entry_of(d, "task", "named-task", reason, sizeof reason);
    assert_string_equal(reason, "chan receive");
    CHECK_GE(s * 1000, 0);
    free(d);
    int v = 1;
    assert_int_equal(gocc_chan_send(ch, &v, NULL), 0);
    ASSERT_NO_TASKS(start);

    /* The next task on that (cached) thread has no name; its OS name is
     * the runtime's again. */
    named_arg b = {0};
    go(report_name, &b);
    ASSERT_NO_TASKS(start);
    assert_string_equal(b.seen_name, "");
    assert_string_equal(b.seen_os, "gocc");
    d = dump_str(NULL);
    assert_null(strstr(d, "named-task"));
    free(d);
    gocc_chan_release(ch);
}

/* ---- one blocker per wait reason ---- */

typedef struct blocker {
    const char *name;
    gocc_ctx_t *ctx;       /* cancelled to let it go */
    gocc_chan_t *ch, *ch2; /* cap-1 channel for the full-send case: ch */
    gocc_sem_t *sem;
    gocc_group_t *group;
    gocc_waitgroup_t *wg;
    gocc_once_t *once;
    gocc_workpool_t *pool;
    int rc;
    atomic_int submitted;
} blocker;

static int b_recv(blocker *b) {
    int v;
    return gocc_chan_recv(b->ch, &v, b->ctx);
}
static int b_send(blocker *b) {
    int v = 7;
    return gocc_chan_send(b->ch, &v, b->ctx);
}
static int b_select(blocker *b) {
    int v;
    gocc_case_t c[2] = {{b->ch, GOCC_RECV, &v, false}, {b->ch2, GOCC_RECV, &v, false}};
    return gocc_select(c, 2, b->ctx);
}
static int b_select0(blocker *b) { return gocc_select(NULL, 0, b->ctx); }
static int b_sleep(blocker *b) { return gocc_sleep(60 * GOCC_SECOND, b->ctx); }
static int b_sem(blocker *b) { return gocc_sem_acquire(b->sem, 3, b->ctx); }
static int b_wg(blocker *b) { return gocc_waitgroup_wait(b->wg, b->ctx); }

typedef int (*blocker_fn)(blocker *);

typedef struct blocker_task {
    blocker *b;
    blocker_fn fn;
    const char *name;
} blocker_task;

static int run_blocker(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    blocker_task *t = p;
    gocc_task_set_name(t->name);
    t->b->rc = t->fn(t->b);
    return 0;
}

/* Start fn as a task named @p name, wait until the dump shows it blocked
 * for @p reason, check the entry, and return its text. */
static char *block_and_look(blocker_task *t, const char *reason) {
    go(run_blocker, t);
    char needle[96];
    snprintf(needle, sizeof needle, "\"%s\" [%s, ", t->name, reason);
    char *d = wait_dump(needle);
    char got[32];
    double s = entry_of(d, "task", t->name, got, sizeof got);
    assert_string_equal(got, reason);
    CHECK_GE(s, 0);
    CHECK_LT(s, 600);
    char *e = entry_text(d, t->name);
    free(d);
    return e;
}

static void assert_contains(const char *s, const char *needle) {
    assert_non_null(s);
    if (strstr(s, needle) == NULL) fail_msg("no \"%s\" in:\n%s", needle, s ? s : "");
}

static void test_dump_chan_reasons(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    blocker b = {.ctx = ctx, .ch = chan_new(sizeof(int), 0)};
    blocker_task t = {&b, b_recv, "r-recv"};
    char *e = block_and_look(&t, "chan receive");
    char addr[64];
    snprintf(addr, sizeof addr, "channel %p: capacity 0, 0 buffered", (void *)b.ch);
    assert_contains(e, addr);
    assert_contains(e, "context: cancellable, no deadline");
    assert_contains(e, "function: ");
    free(e);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    assert_int_equal(b.rc, GOCC_ECANCELED);
    gocc_chan_release(b.ch);
    gocc_ctx_release(ctx);

    /* A full channel of capacity 1, with a deadline. */
    ctx = gocc_ctx_with_timeout(NULL, 300 * GOCC_SECOND);
    b = (blocker){.ctx = ctx, .ch = chan_new(sizeof(int), 1)};
    int v = 1;
    assert_int_equal(gocc_chan_try_send(b.ch, &v), 0);
    t = (blocker_task){&b, b_send, "r-send"};
    e = block_and_look(&t, "chan send");
    snprintf(addr, sizeof addr, "channel %p: capacity 1, 1 buffered", (void *)b.ch);
    assert_contains(e, addr);
    assert_contains(e, "context: cancellable, deadline in ");
    free(e);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    gocc_chan_release(b.ch);
    gocc_ctx_release(ctx);
}

static void test_dump_select_sleep_reasons(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    blocker b = {.ctx = ctx, .ch = chan_new(sizeof(int), 0), .ch2 = chan_new(sizeof(int), 4)};
    blocker_task t1 = {&b, b_select, "r-select"};
    char *e = block_and_look(&t1, "select");
    assert_contains(e, "select over 2 cases");
    free(e);
    blocker b0 = {.ctx = ctx};
    blocker_task t2 = {&b0, b_select0, "r-select0"};
    e = block_and_look(&t2, "select (no cases)");
    free(e);
    blocker bs = {.ctx = ctx};
    blocker_task t3 = {&bs, b_sleep, "r-sleep"};
    e = block_and_look(&t3, "sleep");
    assert_contains(e, "wakes in ");
    free(e);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    assert_int_equal(bs.rc, GOCC_ECANCELED);
    gocc_chan_release(b.ch);
    gocc_chan_release(b.ch2);
    gocc_ctx_release(ctx);
}

static void test_dump_sync_reasons(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);

    blocker b = {.ctx = ctx, .sem = gocc_sem_new(4)};
    assert_int_equal(gocc_sem_acquire(b.sem, 4, NULL), 0);
    blocker_task t = {&b, b_sem, "r-sem"};
    char *e = block_and_look(&t, "semaphore acquire");
    char want[96];
    snprintf(want, sizeof want, "semaphore %p: asking for weight 3", (void *)b.sem);
    assert_contains(e, want);
    free(e);

    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    assert_int_equal(gocc_waitgroup_add(&wg, 1), 0);
    blocker bw = {.ctx = ctx, .wg = &wg};
    blocker_task tw = {&bw, b_wg, "r-waitgroup"};
    e = block_and_look(&tw, "waitgroup wait");
    snprintf(want, sizeof want, "waitgroup %p", (void *)&wg);
    assert_contains(e, want);
    free(e);

    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    assert_int_equal(b.rc, GOCC_ECANCELED);
    assert_int_equal(bw.rc, GOCC_ECANCELED);
    gocc_waitgroup_done(&wg);
    assert_int_equal(gocc_sem_release(b.sem, 4), 0);
    gocc_sem_free(b.sem);
    gocc_ctx_release(ctx);
}

/* once: the first caller runs a function that blocks; the second waits. */
typedef struct once_arg {
    gocc_once_t once;
    gocc_chan_t *gate;
} once_arg;

static int once_body(void *p) {
    once_arg *o = p;
    int v;
    return gocc_chan_recv(o->gate, &v, NULL) == 0 ? 0 : 1;
}

static int once_caller(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    once_arg *o = p;
    static atomic_int n;
    gocc_task_set_name(atomic_fetch_add(&n, 1) % 2 == 0 ? "once-first" : "once-second");
    return gocc_once_do(&o->once, once_body, o);
}

static void test_dump_once(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    once_arg o = {.once = GOCC_ONCE_INIT, .gate = chan_new(sizeof(int), 0)};
    go(once_caller, &o);
    char *d = wait_dump("\"once-first\" [chan receive, ");
    free(d);
    go(once_caller, &o);
    d = wait_dump("\"once-second\" [once, ");
    char *e = entry_text(d, "once-second");
    char want[64];
    snprintf(want, sizeof want, "once %p", (void *)&o.once);
    assert_contains(e, want);
    assert_contains(e, "context: none");
    free(e);
    free(d);
    int v = 1;
    assert_int_equal(gocc_chan_send(o.gate, &v, NULL), 0);
    ASSERT_NO_TASKS(start);
    gocc_chan_release(o.gate);
}

/* groups: default task names, group go at the limit, group wait. */
typedef struct group_arg {
    gocc_group_t *g;
    gocc_chan_t *gate;
    int rc;
} group_arg;

static int grp_member(gocc_ctx_t *ctx, void *p) {
    group_arg *a = p;
    int v;
    return gocc_chan_recv(a->gate, &v, ctx) == 0 ? 0 : 1;
}

static int group_goer(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    group_arg *a = p;
    gocc_task_set_name("r-group-go");
    a->rc = gocc_group_go(a->g, grp_member, a);
    return 0;
}

static int group_waiter(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    group_arg *a = p;
    gocc_task_set_name("r-group-wait");
    (void)gocc_group_wait(a->g);
    return 0;
}

static void test_dump_group(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    group_arg a = {.g = gocc_group_new(NULL), .gate = chan_new(sizeof(int), 0)};
    assert_non_null(a.g);
    assert_int_equal(gocc_group_set_limit(a.g, 1), 0);
    assert_int_equal(gocc_group_go(a.g, grp_member, &a), 0);
    /* The member has the group's default name. */
    char *d = wait_dump("\"group-");
    const char *p = strstr(d, "\"group-");
    char gname[32];
    assert_int_equal(sscanf(p + 1, "%31[^\"]", gname), 1);
    char reason[32];
    entry_of(d, "task", gname, reason, sizeof reason);
    free(d);

    go(group_goer, &a);
    char *e;
    d = wait_dump("\"r-group-go\" [group go, ");
    e = entry_text(d, "r-group-go");
    char want[64];
    snprintf(want, sizeof want, "group %p", (void *)a.g);
    assert_contains(e, want);
    free(e);
    free(d);
    go(group_waiter, &a);
    d = wait_dump("\"r-group-wait\" [group wait, ");
    free(d);

    int v = 1;
    assert_int_equal(gocc_chan_send(a.gate, &v, NULL), 0); /* first member */
    assert_int_equal(gocc_chan_send(a.gate, &v, NULL), 0); /* the one go admitted */
    ASSERT_NO_TASKS(start);
    assert_int_equal(a.rc, 0);
    gocc_group_free(a.g);
    gocc_chan_release(a.gate);
}

/* worker pool: a job's default name, submit and shutdown waits. */
static int pool_job(gocc_ctx_t *ctx, void *p) {
    int v;
    return gocc_chan_recv(p, &v, ctx) == 0 ? 0 : 1;
}

static int pool_submitter(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    blocker *b = p;
    gocc_task_set_name("r-submit");
    b->rc = gocc_workpool_submit(b->pool, pool_job, b->ch, NULL);
    atomic_store(&b->submitted, 1);
    return 0;
}

static int pool_shutter(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    blocker *b = p;
    gocc_task_set_name("r-shutdown");
    return gocc_workpool_shutdown(b->pool, NULL);
}

static void test_dump_workpool(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    blocker b = {.ch = chan_new(sizeof(int), 0), .pool = gocc_workpool_new(1, 0, NULL)};
    assert_non_null(b.pool);
    assert_int_equal(gocc_workpool_submit(b.pool, pool_job, b.ch, NULL), 0);
    char *d = wait_dump("\"workpool-1\" [chan receive, ");
    free(d);
    go(pool_submitter, &b);
    d = wait_dump("\"r-submit\" [workpool submit, ");
    free(d);
    int v = 1;
    assert_int_equal(gocc_chan_send(b.ch, &v, NULL), 0); /* first job ends */
    /* The second job was handed to the worker: shutdown must wait for it. */
    assert_true(wait_count(&b.submitted, 1, QUIESCENT));
    assert_int_equal(b.rc, 0);
    go(pool_shutter, &b);
    d = wait_dump("\"r-shutdown\" [workpool shutdown, ");
    char *e = entry_text(d, "r-shutdown");
    char want[64];
    snprintf(want, sizeof want, "workpool %p", (void *)b.pool);
    assert_contains(e, want);
    free(e);
    free(d);
    assert_int_equal(gocc_chan_send(b.ch, &v, NULL), 0);
    ASSERT_NO_TASKS(start);
    assert_int_equal(b.rc, 0);
    gocc_workpool_free(b.pool);
    gocc_chan_release(b.ch);
}

/* ---- threads, counts, durations ---- */

typedef struct thread_arg {
    gocc_chan_t *ch;
    int rc;
} thread_arg;

static void *thread_recv(void *p) {
    thread_arg *a = p;
    gocc_task_set_name("app-thread");
    int v;
    a->rc = gocc_chan_recv(a->ch, &v, NULL);
    gocc_task_set_name(NULL);
    return NULL;
}

static void test_dump_thread_entry(void **state) {
    (void)state;
    TEST_NAME();
    thread_arg a = {.ch = chan_new(sizeof(int), 0)};
    test_thread th;
    test_thread_start(&th, thread_recv, &a);
    char *d = wait_dump("\"app-thread\" [chan receive, ");
    char reason[32];
    entry_of(d, "thread", "app-thread", reason, sizeof reason);
    free(d);
    int v = 3;
    assert_int_equal(gocc_chan_send(a.ch, &v, NULL), 0);
    test_thread_join(&th);
    assert_int_equal(a.rc, 0);
    /* No longer blocked and not a task: not in the dump. */
    d = dump_str(NULL);
    assert_null(strstr(d, "app-thread"));
    free(d);
    gocc_chan_release(a.ch);
}

static int counted_block(gocc_ctx_t *ctx, void *p) {
    (void)p;
    return gocc_select(NULL, 0, ctx) == GOCC_ECANCELED ? 0 : 1;
}

static int spin_until(gocc_ctx_t *ctx, void *p) {
    (void)p;
    while (gocc_ctx_err(ctx) == 0) sleep_ns(GOCC_MILLISECOND); /* running, not blocked */
    return 0;
}

static void test_dump_counts_and_duration(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    assert_int_equal(start, 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    enum { N = 5 };
    for (int i = 0; i < N; i++) assert_int_equal(gocc_go(counted_block, ctx, NULL), 0);
    assert_int_equal(gocc_go(spin_until, ctx, NULL), 0);
    char *d = wait_dump("libgocc dump: 6 tasks live, 5 blocked\n");
    assert_true(strncmp(d, "libgocc dump: 6 tasks live, 5 blocked\n", 38) == 0);
    /* running: `[running]`, or `[running, <SECONDS>s]` once the spinner
     * has held its worker past the block threshold (10 ms: a loaded
     * machine gets there before the dump) */
    assert_contains(d, "\"\" [running");
    free(d);

    /* Seconds blocked grow with time: at least the time we waited. */
    int64_t t0 = gocc_now();
    sleep_ns(300 * GOCC_MILLISECOND);
    int rc;
    /* Read before the dump starts: the dump's clock reads come after it
     * (the dump itself once took 170 ms under ASan on a loaded machine). */
    int64_t waited = gocc_now() - t0;
    d = dump_str(&rc);
    assert_int_equal(rc, N + 1);
    const char *p = d;
    int seen = 0;
    while ((p = strstr(p, "[select (no cases), ")) != NULL) {
        double s;
        assert_int_equal(sscanf(p, "[select (no cases), %lfs]", &s), 1);
        CHECK_GE(s * 1e9 + 1e6, (double)waited - 100e6); /* rounding, clock reads */
        CHECK_LT(s, 600);
        seen++;
        p++;
    }
    assert_int_equal(seen, N);
    free(d);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    ASSERT_NO_TASKS(start);
}

static void test_dump_einval(void **state) {
    (void)state;
    TEST_NAME();
    assert_int_equal(gocc_dump(-1), GOCC_EINVAL);
    assert_int_equal(gocc_dump_on_signal(0), GOCC_EINVAL);
    assert_int_equal(gocc_dump_on_signal(-3), GOCC_EINVAL);
    assert_int_equal(gocc_dump_on_signal(SIGKILL), GOCC_EINVAL);
    assert_int_equal(gocc_dump_on_signal(SIGSTOP), GOCC_EINVAL);
    assert_int_equal(gocc_dump_on_signal(NSIG), GOCC_EINVAL);
    assert_int_equal(gocc_watch_stuck(GOCC_SECOND, -1), GOCC_EINVAL);
    assert_int_equal(gocc_watch_stuck(-5, -1), 0); /* off */
    assert_int_equal(gocc_watch_stuck(0, 1), 0);   /* off */
    test_stuck_watch();                            /* the test program's own, back on */
    /* A closed fd: an error, not a crash. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    CHECK_LT(gocc_dump(fds[1]), 0);
}

/* ---- leak check ---- */

static void test_leakcheck(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    assert_int_equal(gocc_leakcheck(start, 0, -1), 0);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    named_arg a = {.name = "leaky", .ch = chan_new(sizeof(int), 0)};
    assert_int_equal(gocc_go(named_block, ctx, &a), 0);
    char *d = wait_dump("\"leaky\" [chan receive");
    free(d);

    FILE *f = tmpfile();
    int64_t t0 = gocc_now();
    assert_int_equal(gocc_leakcheck(start, 50 * GOCC_MILLISECOND, fileno(f)), GOCC_EDEADLINE);
    int64_t took = gocc_now() - t0;
    CHECK_GE(took, 50 * GOCC_MILLISECOND);
    CHECK_LT(took, PROMPT_NS);
    char buf[4096] = "";
    ssize_t n = pread(fileno(f), buf, sizeof buf - 1, 0);
    CHECK_GE(n, 1);
    assert_contains(buf, "libgocc dump: 1 tasks live, 1 blocked");
    assert_contains(buf, "\"leaky\" [chan receive, ");
    fclose(f);
    /* No fd: still the verdict, nothing written. */
    assert_int_equal(gocc_leakcheck(start, 0, -1), GOCC_EDEADLINE);

    gocc_ctx_cancel(ctx);
    assert_int_equal(gocc_leakcheck(start, QUIESCENT, STDERR_FILENO), 0);
    gocc_ctx_release(ctx);
    gocc_chan_release(a.ch);
}

/* ---- dump on a signal ---- */

static void test_dump_on_signal(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    named_arg a = {.name = "sig-target", .ch = chan_new(sizeof(int), 0)};
    assert_int_equal(gocc_go(named_block, ctx, &a), 0);
    char *d = wait_dump("\"sig-target\" [chan receive");
    free(d);

    /* stderr into a pipe for the length of the test. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    close(fds[1]);

    assert_int_equal(gocc_dump_on_signal(SIGUSR1), 0);
    assert_int_equal(gocc_dump_on_signal(SIGUSR1), 0); /* again: fine */
    raise(SIGUSR1);

    char buf[8192] = "";
    size_t len = 0;
    int64_t end = gocc_now() + QUIESCENT;
    while (strstr(buf, "\"sig-target\" [chan receive, ") == NULL && gocc_now() < end &&
           len < sizeof buf - 1) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) > 0) {
            ssize_t k = read(fds[0], buf + len, sizeof buf - 1 - len);
            if (k > 0) len += (size_t)k;
            buf[len] = '\0';
        }
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[0]);
    signal(SIGUSR1, SIG_IGN);
    assert_contains(buf, "libgocc dump: ");
    assert_contains(buf, "\"sig-target\" [chan receive, ");

    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    gocc_ctx_release(ctx);
    gocc_chan_release(a.ch);
}

/* ---- the stuck-task watchdog ---- */

/* Read what arrives on @p fd into buf until @p needle shows up or @p ns
 * passed; true if it did. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle, int64_t ns) {
    int64_t end = gocc_now() + ns;
    for (;;) {
        buf[*len] = '\0';
        if (needle != NULL && strstr(buf, needle) != NULL) return true;
        int64_t left = end - gocc_now();
        if (left <= 0 || *len >= cap - 1) return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(left / GOCC_MILLISECOND) + 1) > 0) {
            ssize_t k = read(fd, buf + *len, cap - 1 - *len);
            if (k > 0) *len += (size_t)k;
        }
    }
}

/* The watchdog (threshold 50 ms) reports @p reported and, in the 300 ms
 * after, neither @p never nor a deadlock. */
static void watchdog_reports_only(const char *reported, const char *never) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    static char buf[1 << 16];
    size_t len = 0;
    assert_int_equal(gocc_watch_stuck(50 * GOCC_MILLISECOND, fds[1]), 0);
    assert_true(read_until(fds[0], buf, sizeof buf, &len, reported, QUIESCENT));
    assert_false(read_until(fds[0], buf, sizeof buf, &len, NULL, 300 * GOCC_MILLISECOND));
    assert_null(strstr(buf, never));
    assert_null(strstr(buf, "all tasks are asleep"));
    assert_int_equal(gocc_watch_stuck(0, -1), 0);
    test_stuck_watch(); /* the test program's own, back on */
    close(fds[0]);
    close(fds[1]);
}

static size_t count_of(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

static void test_watch_stuck_and_deadlock(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    static char buf[1 << 16];
    size_t len = 0;
    assert_int_equal(gocc_watch_stuck(100 * GOCC_MILLISECOND, fds[1]), 0);

    /* A sleeper: stuck past the threshold, but its timer can wake it, so
     * no deadlock is reported. */
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    blocker bs = {.ctx = ctx};
    blocker_task ts = {&bs, b_sleep, "w-sleeper"};
    go(run_blocker, &ts);
    assert_true(read_until(fds[0], buf, sizeof buf, &len, "\"w-sleeper\" [sleep, ", QUIESCENT));
    assert_contains(buf, "libgocc: blocked longer than 0.100s:");
    assert_false(
        read_until(fds[0], buf, sizeof buf, &len, "all tasks are asleep", 400 * GOCC_MILLISECOND));
    assert_int_equal(count_of(buf, "\"w-sleeper\" ["), 1); /* once per episode */
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start); /* the sleeper uses ctx through bs */
    gocc_ctx_release(ctx);

    /* Two tasks waiting on each other (each receives first): nothing can
     * wake them; a context without deadline lets the test end it. */
    ctx = gocc_ctx_with_cancel(NULL);
    named_arg x = {.name = "w-left", .ch = chan_new(sizeof(int), 0)};
    named_arg y = {.name = "w-right", .ch = chan_new(sizeof(int), 0)};
    len = 0;
    assert_int_equal(gocc_go(named_block, ctx, &x), 0);
    assert_int_equal(gocc_go(named_block, ctx, &y), 0);
    assert_true(read_until(fds[0], buf, sizeof buf, &len,
                           "libgocc: all tasks are asleep - possible deadlock\n", QUIESCENT));
    const char *after = strstr(buf, "possible deadlock\n") + strlen("possible deadlock\n");
    assert_true(strncmp(after, "libgocc dump: 2 tasks live, 2 blocked\n", 38) == 0);
    assert_true(
        read_until(fds[0], buf, sizeof buf, &len, "\"w-right\" [chan receive, ", QUIESCENT));
    /* Once per episode: a while later, no second report. */
    assert_false(read_until(fds[0], buf, sizeof buf, &len, NULL, 400 * GOCC_MILLISECOND));
    assert_int_equal(count_of(buf, "all tasks are asleep"), 1);
    /* Each task once as stuck (the two may pass the threshold in different
     * looks of the watchdog) and once in the deadlock's dump. */
    assert_int_equal(count_of(buf, "\"w-left\" [chan receive, "), 2);
    assert_int_equal(count_of(buf, "\"w-right\" [chan receive, "), 2);

    assert_int_equal(gocc_watch_stuck(0, -1), 0);
    test_stuck_watch(); /* the test program's own, back on */
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    gocc_ctx_release(ctx);
    gocc_chan_release(x.ch);
    gocc_chan_release(y.ch);
    close(fds[0]);
    close(fds[1]);
}

/* ---- running, runnable, and a parked task's call stack ---- */

/* The runtime's block threshold (also where the dump starts to print how
 * long a task has been running); returns the old one. */
static int64_t set_block_threshold(int64_t ns) {
    gocc_runtime_config_t cfg;
    gocc_runtime_config_get(&cfg);
    int64_t old = cfg.block_threshold_ns;
    gocc_runtime_config_t set = {.block_threshold_ns = ns};
    assert_int_equal(gocc_runtime_configure(&set), 0);
    return old;
}

/* A task busy outside libgocc (in nanosleep) until told to stop: it holds
 * its worker and never comes back to the scheduler. */
typedef struct spinner {
    char name[32];
    atomic_int stop;
} spinner;

static int spin_outside(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    spinner *s = p;
    gocc_task_set_name(s->name);
    while (!atomic_load(&s->stop)) sleep_ns(GOCC_MILLISECOND);
    return 0;
}

/* The entry of @p name has none of the lines of a blocked task. */
static void assert_not_blocked_entry(const char *dump, const char *name) {
    char *e = entry_text(dump, name);
    assert_null(strstr(e, "context: "));
    assert_null(strstr(e, "\n    at "));
    assert_null(strstr(e, "os thread")); /* a coroutine has no thread of its own */
    assert_contains(e, "\n    function: ");
    free(e);
}

static void test_dump_running_task(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    int64_t saved = set_block_threshold(3600 * GOCC_SECOND);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    named_arg parked = {.name = "run-parked", .ch = chan_new(sizeof(int), 0)};
    assert_int_equal(gocc_go(named_block, ctx, &parked), 0);
    free(wait_dump("\"run-parked\" [chan receive, "));
    spinner sp = {.name = "run-spinner"};
    go(spin_outside, &sp);

    /* Below the threshold: plain `running`. */
    char *d = wait_dump("\"run-spinner\" [running]:");
    char st[32];
    assert_int_equal(entry_of(d, "task", "run-spinner", st, sizeof st), -1);
    assert_string_equal(st, "running");
    assert_not_blocked_entry(d, "run-spinner");
    free(d);

    /* Past it: how long it has held its worker. */
    set_block_threshold(50 * GOCC_MILLISECOND);
    d = wait_dump("\"run-spinner\" [running, ");
    double s = entry_of(d, "task", "run-spinner", st, sizeof st);
    assert_string_equal(st, "running");
    CHECK_GE((long long)(s * 1000 + 0.5), 50);
    CHECK_LT(s, 600);
    assert_not_blocked_entry(d, "run-spinner");
    /* Running is not blocked. */
    assert_contains(d, "libgocc dump: 2 tasks live, 1 blocked\n");
    free(d);

    /* The watchdog reports the parked task, never the running one, and
     * sees no deadlock. */
    watchdog_reports_only("\"run-parked\" [chan receive, ", "run-spinner");

    atomic_store(&sp.stop, 1);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    set_block_threshold(saved);
    gocc_ctx_release(ctx);
    gocc_chan_release(parked.ch);
}

/* A task that was woken while every worker is held by a task busy outside
 * libgocc (the block threshold too high for a helper thread to run it)
 * waits for a worker: `runnable`, not blocked, not reported as stuck. (A
 * task that never ran yet has no entry: its record names no task yet.) */
static void test_dump_runnable_task(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_runtime_config_t cfg;
    gocc_runtime_config_get(&cfg);
    int64_t saved = set_block_threshold(3600 * GOCC_SECOND);
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    named_arg target = {.name = "r-target", .ch = chan_new(sizeof(int), 0)};
    named_arg parked = {.name = "r-parked", .ch = chan_new(sizeof(int), 0)};
    assert_int_equal(gocc_go(named_block, ctx, &target), 0);
    assert_int_equal(gocc_go(named_block, ctx, &parked), 0);
    free(wait_dump("\"r-target\" [chan receive, "));
    free(wait_dump("\"r-parked\" [chan receive, "));

    /* Every worker busy. */
    const size_t procs = cfg.procs;
    spinner *sp = calloc(procs, sizeof *sp);
    assert_non_null(sp);
    for (size_t i = 0; i < procs; i++) {
        snprintf(sp[i].name, sizeof sp[i].name, "r-spin-%zu", i);
        go(spin_outside, &sp[i]);
    }
    for (size_t i = 0; i < procs; i++) {
        char needle[48];
        snprintf(needle, sizeof needle, "\"%s\" [running]:", sp[i].name);
        free(wait_dump(needle));
    }

    /* Woken from this thread: it waits in the global queue. */
    int v = 5;
    assert_int_equal(gocc_chan_send(target.ch, &v, NULL), 0);
    char *d = wait_dump("\"r-target\" [runnable]:");
    char st[32];
    assert_int_equal(entry_of(d, "task", "r-target", st, sizeof st), -1);
    assert_string_equal(st, "runnable");
    assert_not_blocked_entry(d, "r-target");
    char head[64];
    snprintf(head, sizeof head, "libgocc dump: %zu tasks live, 1 blocked\n", procs + 2);
    assert_contains(d, head);
    free(d);

    /* Its record still names the wait it was woken from, since long
     * before the threshold: the watchdog reports only the parked one. */
    watchdog_reports_only("\"r-parked\" [chan receive, ", "r-target");
    d = dump_str(NULL);
    assert_contains(d, "\"r-target\" [runnable]:"); /* still: nobody ran it */
    free(d);

    for (size_t i = 0; i < procs; i++) atomic_store(&sp[i].stop, 1);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    set_block_threshold(saved);
    free(sp);
    gocc_ctx_release(ctx);
    gocc_chan_release(target.ch);
    gocc_chan_release(parked.ch);
}

/* Exported (the program is linked with -rdynamic, built with frame
 * pointers and without sibling calls) and kept out of line: dladdr names
 * them among a parked task's frames. */
int observe_stack_task(gocc_ctx_t *ctx, void *p);
int observe_stack_leaf(named_arg *a, gocc_ctx_t *ctx);

__attribute__((noinline)) int observe_stack_leaf(named_arg *a, gocc_ctx_t *ctx) {
    int v;
    int rc = gocc_chan_recv(a->ch, &v, ctx);
    return rc == 0 ? 0 : 1;
}

int observe_stack_task(gocc_ctx_t *ctx, void *p) {
    named_arg *a = p;
    gocc_task_set_name(a->name);
    int rc = observe_stack_leaf(a, ctx);
    return rc;
}

/* The walk of saved frame pointers: only with the assembly context switch
 * on x86-64 and AArch64, and not under ThreadSanitizer. It always has the
 * place in libgocc where the task parked; it gets through libgocc's frames
 * to the task's own only when libgocc keeps its frame pointers
 * (GOCC_TEST_LIB_FRAME_POINTERS: built with -fno-omit-frame-pointer). */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(GOCC_TEST_TSAN) && \
    !defined(GOCC_TEST_UCONTEXT)
#define STACK_WALKS 1
#else
#define STACK_WALKS 0
#endif
#if STACK_WALKS && defined(GOCC_TEST_LIB_FRAME_POINTERS)
#define STACK_WALKS_TO_TASK 1
#else
#define STACK_WALKS_TO_TASK 0
#endif

static void test_dump_parked_stack(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    named_arg a = {.name = "s-parked", .ch = chan_new(sizeof(int), 0)};
    assert_int_equal(gocc_go(observe_stack_task, ctx, &a), 0);
    char *d = wait_dump("\"s-parked\" [chan receive, ");
    char *e = entry_text(d, "s-parked");
    assert_contains(e, "\n    function: observe_stack_task+0x0 (");
    assert_null(strstr(e, "os thread"));
    if (STACK_WALKS) assert_contains(e, "\n    at ");
    if (STACK_WALKS_TO_TASK) {
        assert_contains(e, "\n    at observe_stack_leaf+0x");
        assert_contains(e, "\n    at observe_stack_task+0x");
    } else if (!STACK_WALKS) {
        assert_null(strstr(e, "\n    at "));
    }
    /* Each frame: "    at NAME+0xOFF (OBJECT)", "    at 0x... (OBJECT+0xOFF)"
     * or "    at 0x...". */
    for (const char *p = strstr(e, "\n    at "); p != NULL; p = strstr(p + 1, "\n    at ")) {
        const char *f = p + strlen("\n    at ");
        const char *nl = strchr(f, '\n');
        size_t n = nl ? (size_t)(nl - f) : strlen(f);
        assert_true(n > 0);
        assert_true(strstr(f, "+0x") != NULL || strncmp(f, "0x", 2) == 0);
    }
    free(e);
    free(d);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    gocc_ctx_release(ctx);
    gocc_chan_release(a.ch);
}

/* ---- under load ---- */

typedef struct churn {
    gocc_chan_t *ping, *pong;
    atomic_int stop;
} churn;

static int churn_echo(gocc_ctx_t *ctx, void *p) {
    churn *c = p;
    int v;
    while (gocc_chan_recv(c->ping, &v, ctx) == 0)
        if (gocc_chan_send(c->pong, &v, ctx) != 0) break;
    return 0;
}

static int churn_short(gocc_ctx_t *ctx, void *p) {
    (void)ctx;
    (void)p;
    return gocc_sleep(GOCC_MICROSECOND * 50, NULL);
}

static int churn_driver(gocc_ctx_t *ctx, void *p) {
    churn *c = p;
    int v = 0;
    while (!atomic_load(&c->stop)) {
        if (gocc_chan_send(c->ping, &v, ctx) != 0 || gocc_chan_recv(c->pong, &v, ctx) != 0) break;
        if (v++ % 16 == 0) (void)gocc_go(churn_short, NULL, NULL);
    }
    return 0;
}

static void test_dump_under_load(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    enum { PAIRS = 4 };
    churn c[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        c[i].ping = chan_new(sizeof(int), 0);
        c[i].pong = chan_new(sizeof(int), 0);
        atomic_init(&c[i].stop, 0);
        assert_int_equal(gocc_go(churn_echo, ctx, &c[i]), 0);
        assert_int_equal(gocc_go(churn_driver, ctx, &c[i]), 0);
    }
    const int blocked = SCALE(1000);
    for (int i = 0; i < blocked; i++) assert_int_equal(gocc_go(counted_block, ctx, NULL), 0);
    int fd = open("/dev/null", O_WRONLY);
    assert_true(fd >= 0);
    const int rounds = SCALE(200);
    for (int i = 0; i < rounds; i++) CHECK_GE(gocc_dump(fd), 0);
    close(fd);
    for (int i = 0; i < PAIRS; i++) atomic_store(&c[i].stop, 1);
    gocc_ctx_cancel(ctx);
    ASSERT_NO_TASKS(start);
    gocc_ctx_release(ctx);
    for (int i = 0; i < PAIRS; i++) {
        gocc_chan_release(c[i].ping);
        gocc_chan_release(c[i].pong);
    }
}

/* The scale rule: a dump of 10,000 blocked tasks (2,000 under TSan). */
static void test_dump_scale(void **state) {
    (void)state;
    TEST_NAME();
    size_t start = gocc_tasks_live();
#ifdef GOCC_TEST_TSAN
    const int n = 2000;
#else
    const int n = 10000;
#endif
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    for (int i = 0; i < n; i++) assert_int_equal(gocc_go(counted_block, ctx, NULL), 0);
    int fd = open("/dev/null", O_WRONLY);
    /* Wait until every one is parked, then time one dump. */
    char want[64];
    snprintf(want, sizeof want, "libgocc dump: %d tasks live, %d blocked\n", n, n);
    int64_t end = gocc_now() + 10 * QUIESCENT;
    char *d = NULL;
    for (;;) {
        d = dump_str(NULL);
        if (strncmp(d, want, strlen(want)) == 0 || gocc_now() > end) break;
        free(d);
        sleep_ns(20 * GOCC_MILLISECOND);
    }
    assert_true(strncmp(d, want, strlen(want)) == 0);
    free(d);
    int64_t t0 = gocc_now();
    assert_int_equal(gocc_dump(fd), n);
    int64_t took = gocc_now() - t0;
    print_message("dump of %d blocked tasks: %.1f ms\n", n, (double)took / 1e6);
    CHECK_LT(took, 30 * GOCC_SECOND);
    close(fd);
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    assert_int_equal(gocc_leakcheck(start, 10 * QUIESCENT, STDERR_FILENO), 0);
}

int main(void) {
    test_main_init("test-observe", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_name_thread),       GOCC_TEST(test_name_task_ends_with_task),
        GOCC_TEST(test_dump_chan_reasons), GOCC_TEST(test_dump_select_sleep_reasons),
        GOCC_TEST(test_dump_sync_reasons), GOCC_TEST(test_dump_once),
        GOCC_TEST(test_dump_group),        GOCC_TEST(test_dump_workpool),
        GOCC_TEST(test_dump_thread_entry), GOCC_TEST(test_dump_counts_and_duration),
        GOCC_TEST(test_dump_einval),       GOCC_TEST(test_leakcheck),
        GOCC_TEST(test_dump_on_signal),    GOCC_TEST(test_watch_stuck_and_deadlock),
        GOCC_TEST(test_dump_running_task), GOCC_TEST(test_dump_runnable_task),
        GOCC_TEST(test_dump_parked_stack), GOCC_TEST(test_dump_under_load),
        GOCC_TEST(test_dump_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
