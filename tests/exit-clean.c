/*
 * exit-clean.c - a process that uses libgocc may end at any moment.
 *
 * Run by meson as test 'exit-clean' in two modes:
 *   idle     : tasks have finished (threads cached and idle), a timer and a
 *              deadline context are pending; main returns.
 *   blocked  : tasks are still blocked in recv/select/sleep when main
 *              returns (exit() with the runtime busy).
 * Passing means: exit status 0 within meson's timeout (no hang in an atexit
 * hook, no crash in a thread during teardown), and no sanitizer report
 * (LeakSanitizer runs at exit in the ASan build).
 */
#include <gocc.h>

#include <stdio.h>
#include <string.h>

static int quick(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    return 0;
}

static int blocked_recv(gocc_ctx_t *ctx, void *arg) {
    return gocc_chan_recv(arg, NULL, ctx);
}

static int blocked_sleep(gocc_ctx_t *ctx, void *arg) {
    (void)arg;
    return gocc_sleep(3600 * GOCC_SECOND, ctx);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "idle";
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

    if (strcmp(mode, "blocked") == 0) {
        for (int i = 0; i < 4; i++) {
            if (gocc_go(blocked_recv, deadline, ch) != 0) return 1;
            if (gocc_go(blocked_sleep, deadline, NULL) != 0) return 1;
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
