/*
 * exit-clean.c - a process that uses libgocc may end at any moment.
 *
 * Run by meson as test 'exit-clean-<mode>':
 *   idle     : tasks have finished (threads cached and idle), a timer and a
 *              deadline context are pending; main returns.
 *   blocked  : tasks are still blocked in recv/select/sleep when main
 *              returns (exit() with the runtime busy).
 *   busy     : main returns while tasks run CPU work, ping-pong on
 *              unbuffered channels, drain a 1 ms ticker, churn 1 ms
 *              deadline contexts and sleep: every kind of operation is in
 *              flight and timers are armed. An atexit handler checks that
 *              the tasks still make progress while it runs (they are only
 *              stopped by the final _exit) and that the library still
 *              works there (it sleeps with gocc_sleep).
 *   task-exit: a task calls exit(0) while main and other tasks are blocked
 *              in libgocc calls.
 * Passing means: exit status 0 within meson's timeout (no hang in an atexit
 * hook, no crash in a thread during teardown), and no sanitizer report
 * (LeakSanitizer runs at exit in the ASan build).
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int quick(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

static int blocked_recv(gocc_ctx_t *ctx, void *arg) { return gocc_chan_recv(arg, NULL, ctx); }

static int blocked_sleep(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    return gocc_sleep(3600 * GOCC_SECOND, ctx);
}

/* ---- busy mode: every kind of work in flight at exit ---- */

static _Atomic unsigned long progress; /* bumped by every busy task */

static int spin(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    unsigned long long x = 1;
    for (unsigned long i = 1;; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        if ((i & 0xffff) == 0) atomic_fetch_add(&progress, 1 + (x & 1));
    }
    return 0;
}

typedef struct pingpong {
    gocc_chan_t *in, *out;
} pingpong;

static int pong(gocc_ctx_t *ctx, void *arg) {
    pingpong *p = arg;
    int v = 0;
    while (gocc_chan_recv(p->in, &v, ctx) == 0) {
        v++;
        if (gocc_chan_send(p->out, &v, ctx) != 0) break;
        atomic_fetch_add(&progress, 1);
    }
    return 0;
}

static int ticks(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    gocc_ticker_t *t = gocc_ticker_new(GOCC_MILLISECOND);
    if (t == NULL) return 1;
    int64_t when;
    while (gocc_chan_recv(gocc_ticker_chan(t), &when, ctx) == 0) atomic_fetch_add(&progress, 1);
    gocc_ticker_free(t);
    return 0;
}

static int deadlines(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    for (;;) {
        gocc_ctx_t *c = gocc_ctx_with_timeout(ctx, GOCC_MILLISECOND);
        if (c == NULL) return 1;
        gocc_chan_recv(NULL, NULL, c); /* ends at the deadline */
        gocc_ctx_cancel(c);
        gocc_ctx_release(c);
        atomic_fetch_add(&progress, 1);
    }
    return 0;
}

static int naps(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    while (gocc_sleep(GOCC_MILLISECOND, ctx) == 0) atomic_fetch_add(&progress, 1);
    return 0;
}

/* Runs during exit(): the tasks are still running, and libgocc still works. */
static void at_exit_check(void) {
    unsigned long before = atomic_load(&progress);
    int64_t end = gocc_now() + 5 * GOCC_SECOND;
    while (atomic_load(&progress) == before && gocc_now() < end) gocc_sleep(GOCC_MILLISECOND, NULL);
    if (atomic_load(&progress) == before) {
        fprintf(stderr, "exit-clean: tasks made no progress while atexit handlers ran\n");
        _exit(1);
    }
    printf("exit-clean: tasks still ran during atexit (%zu live)\n", gocc_tasks_live());
    fflush(stdout);
}

static int busy(void) {
    if (atexit(at_exit_check) != 0) return 1;
    static pingpong pp[2]; /* reachable at exit: the tasks use them */
    static gocc_chan_t *a, *b;
    a = gocc_chan_new(sizeof(int), 0);
    b = gocc_chan_new(sizeof(int), 0);
    if (a == NULL || b == NULL) return 1;
    pp[0] = (pingpong){a, b};
    pp[1] = (pingpong){b, a};
    int v = 0;
    for (int i = 0; i < 2; i++)
        if (gocc_go(spin, NULL, NULL) != 0 || gocc_go(pong, NULL, &pp[i]) != 0) return 1;
    if (gocc_chan_send(a, &v, NULL) != 0) return 1; /* the ball */
    if (gocc_go(ticks, NULL, NULL) != 0 || gocc_go(deadlines, NULL, NULL) != 0 ||
        gocc_go(naps, NULL, NULL) != 0)
        return 1;
    /* Exit only once everything is moving. */
    int64_t end = gocc_now() + 10 * GOCC_SECOND;
    while (atomic_load(&progress) < 200 && gocc_now() < end) gocc_sleep(GOCC_MILLISECOND, NULL);
    if (atomic_load(&progress) < 200) return 1;
    printf("exit-clean: exiting with %zu tasks running\n", gocc_tasks_live());
    fflush(stdout);
    return 0;
}

/* ---- task-exit mode: exit() called by a task ---- */

static int exiter(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    gocc_sleep(20 * GOCC_MILLISECOND, NULL); /* let main and the others block */
    printf("exit-clean: a task calls exit with %zu tasks live\n", gocc_tasks_live());
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "idle";
    if (strcmp(mode, "busy") == 0) return busy();

    static gocc_chan_t *ch; /* reachable at exit: the blocked tasks use it */
    ch = gocc_chan_new(sizeof(int), 0);
    if (ch == NULL) return 1;
    for (int i = 0; i < 8; i++)
        if (gocc_go(quick, NULL, NULL) != 0) return 1;
    int64_t end = gocc_now() + 5 * GOCC_SECOND;
    while (gocc_tasks_live() > 0 && gocc_now() < end) gocc_sleep(GOCC_MILLISECOND, NULL);
    if (gocc_tasks_live() != 0) return 1;

    static gocc_timer_t *timer;
    static gocc_ctx_t *deadline;
    timer = gocc_timer_new(3600 * GOCC_SECOND);
    deadline = gocc_ctx_with_timeout(NULL, 3600 * GOCC_SECOND);
    if (timer == NULL || deadline == NULL) return 1;

    if (strcmp(mode, "blocked") == 0 || strcmp(mode, "task-exit") == 0) {
        for (int i = 0; i < 4; i++) {
            if (gocc_go(blocked_recv, deadline, ch) != 0) return 1;
            if (gocc_go(blocked_sleep, deadline, NULL) != 0) return 1;
        }
        if (strcmp(mode, "task-exit") == 0) {
            if (gocc_go(exiter, NULL, NULL) != 0) return 1;
            gocc_chan_recv(ch, NULL, NULL); /* blocks until the task's exit() ends it all */
            return 1;
        }
        gocc_sleep(20 * GOCC_MILLISECOND, NULL); /* let them block */
        printf("exit-clean: exiting with %zu tasks blocked\n", gocc_tasks_live());
        return 0;
    }
    gocc_timer_free(timer);
    gocc_ctx_cancel(deadline);
    gocc_ctx_release(deadline);
    gocc_chan_release(ch);
    printf("exit-clean: exiting with %zu idle threads\n", gocc_runtime_threads());
    return 0;
}
