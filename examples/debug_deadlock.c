/*
 * debug_deadlock.c - a hang that explains itself: a program that deadlocks
 * on purpose, with libgocc's stuck-task watchdog on.
 *
 * Two tasks, "left" and "right", each wait to receive from the other before
 * sending: the classic circular wait (lesson A05 shows how to avoid it).
 * Nothing can wake either of them, and the main thread is not in a libgocc
 * call, so after the watchdog's threshold (200 ms here) the runtime writes
 * each stuck task once and then "libgocc: all tasks are asleep - possible
 * deadlock" with the full dump: every task, what it waits on, for how long,
 * its context, and its start function.
 *
 * The example is bounded: after a second the main thread cancels the
 * context both tasks wait with (a context without a deadline, so that no
 * timer could have woken anyone), they return, and it checks that the
 * watchdog said what it should and that no task is left.
 *
 * Go's runtime prints "fatal error: all goroutines are asleep - deadlock!"
 * and the goroutine dump; with gocc_watch_stuck a C program gets the same
 * report (docs/debugging.md reads it line by line).
 */
#include <gocc.h>

#include "example.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct side {
    const char *name;
    gocc_chan_t *in, *out;
} side;

/* Receive from the other side, then answer: both receive first. */
static int wait_for_other(gocc_ctx_t *ctx, void *arg) {
    side *s = arg;
    gocc_task_set_name(s->name);
    int v;
    int rc = gocc_chan_recv(s->in, &v, ctx);
    if (rc != 0) return rc; /* cancelled: the way out of the deadlock */
    return gocc_chan_send(s->out, &v, ctx);
}

int main(void) {
    /* The watchdog writes into a pipe that this program reads back, then
     * copies to stdout, so it can check what was reported. */
    int fds[2];
    if (pipe(fds) != 0) return 1;
    gocc_watch_stuck(200 * GOCC_MILLISECOND, fds[1]);

    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *a = gocc_chan_new(sizeof(int), 0), *b = gocc_chan_new(sizeof(int), 0);
    side left = {"left", a, b}, right = {"right", b, a};
    gocc_go(wait_for_other, ctx, &left);
    gocc_go(wait_for_other, ctx, &right);

    struct timespec second = {1, 0};
    nanosleep(&second, NULL); /* not a libgocc call: only the tasks count */

    gocc_ctx_cancel(ctx);
    gocc_watch_stuck(0, -1);
    bool ended = example_tasks_exit_within(5 * GOCC_SECOND);
    close(fds[1]);

    static char report[1 << 16];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof report - 1 && (k = read(fds[0], report + len, sizeof report - 1 - len)) > 0)
        len += (size_t)k;
    report[len] = '\0';
    close(fds[0]);

    printf("debug deadlock: two tasks wait on each other; the watchdog (200 ms) said:\n%s", report);
    example_check_stdout(
        "debug", strstr(report, "libgocc: all tasks are asleep - possible deadlock\n") != NULL,
        "the watchdog reported the deadlock");
    example_check_stdout("debug",
                         strstr(report, "task ") != NULL &&
                             strstr(report, "\"left\" [chan receive, ") != NULL &&
                             strstr(report, "\"right\" [chan receive, ") != NULL,
                         "the dump shows both tasks in chan receive");
    example_check_stdout("debug", ended, "both tasks returned after the cancel");
    printf("debug %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());

    gocc_ctx_release(ctx);
    gocc_chan_release(a);
    gocc_chan_release(b);
    return example_failures ? 1 : 0;
}
