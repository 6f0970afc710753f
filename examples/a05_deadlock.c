/*
 * a05_deadlock.c - port of A05 (patterns article, "Deadlocks": two goroutines
 * waiting on each other), shown safely, then the fix.
 *
 * The snippet: a goroutine sends 1 on an unbuffered channel while main
 * sends 2 on the same channel. Nobody receives, so both block for ever and
 * Go aborts with "all goroutines are asleep - deadlock!".
 *
 * BROKEN, made safe to run: the same two sends, but both take a context
 * with a 100 ms timeout. When it passes, both blocked sends return
 * GOCC_EDEADLINE ("context deadline exceeded") having sent nothing: the
 * timeout is what detects the deadlock (the troubleshooting advice: "add
 * timeouts around blocking operations"), and the task gets out instead of
 * staying blocked as a leak.
 *
 * FIX ("always ensure channels have matching send-receive pairs"): the
 * task sends 1 and main receives it. Same channel, same timeout, and now
 * nothing waits for it.
 *
 * Go to C: the goroutine is a gocc_go task; ch is an unbuffered channel of
 * int; the task reports its send's result through a WaitGroup-protected
 * field (the WaitGroup's wait orders the write before main's read). No
 * generics in the Go.
 *
 * Checks: in the broken version both sends fail with GOCC_EDEADLINE within
 * a generous 2 s and nothing was delivered; in the fix the task's send
 * succeeds and main receives 1 before the timeout; every task has returned
 * (gocc_tasks_live() == 0). Exit status 0 when all hold, else 1.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check("A05", ok, what)

typedef struct sender_arg {
    gocc_chan_t *ch; /* the task's own reference */
    gocc_waitgroup_t *wg;
    int err; /* the send's result, read after wg wait */
} sender_arg_t;

/* go func() { ch <- 1 }() -- with the context, so it cannot hang */
static int send_one(gocc_ctx_t *ctx, void *arg) {
    sender_arg_t *a = arg;
    int one = 1;
    int err = gocc_chan_send(a->ch, &one, ctx);
    a->err = err;
    gocc_chan_release(a->ch);
    gocc_waitgroup_done(a->wg); /* *a may be gone after this */
    return err;
}

/* Start the goroutine of the snippet on ctx. */
static bool start_sender(sender_arg_t *a, gocc_chan_t *ch, gocc_waitgroup_t *wg, gocc_ctx_t *ctx) {
    *a = (sender_arg_t){gocc_chan_retain(ch), wg, 0};
    gocc_waitgroup_add(wg, 1);
    if (gocc_go(send_one, ctx, a) != 0) {
        gocc_chan_release(ch);
        gocc_waitgroup_done(wg);
        return false;
    }
    return true;
}

static void broken(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0); /* ch := make(chan int) */
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 100 * GOCC_MILLISECOND);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    sender_arg_t a;
    if (!ch || !ctx || !start_sender(&a, ch, &wg, ctx)) {
        check(false, "set up the broken version");
        gocc_ctx_release(ctx);
        gocc_chan_release(ch);
        return;
    }

    int64_t start = gocc_now();
    int two = 2;
    int main_err = gocc_chan_send(ch, &two, ctx); /* ch <- 2: blocks too */
    gocc_waitgroup_wait(&wg, NULL);
    int64_t took = gocc_now() - start;
    int left = gocc_chan_try_recv(ch, NULL); /* was anything delivered? */

    printf("A05 deadlock: task sends 1, main sends 2, nobody receives -> both "
           "blocked until the 100 ms timeout (task: %s, main: %s, %.0f ms)\n",
           gocc_strerror(a.err), gocc_strerror(main_err), took / 1e6);
    check(a.err == GOCC_EDEADLINE, "the task's send ended with the deadline");
    check(main_err == GOCC_EDEADLINE, "main's send ended with the deadline");
    check(left == GOCC_EAGAIN, "nothing was delivered");
    check(took < 2 * GOCC_SECOND, "the deadlock was detected within 2 s");

    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(ch);
}

static void fixed(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 2 * GOCC_SECOND);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    sender_arg_t a;
    if (!ch || !ctx || !start_sender(&a, ch, &wg, ctx)) {
        check(false, "set up the fixed version");
        gocc_ctx_release(ctx);
        gocc_chan_release(ch);
        return;
    }

    int got = 0;
    int main_err = gocc_chan_recv(ch, &got, ctx); /* <-ch: the matching receive */
    gocc_waitgroup_wait(&wg, NULL);

    printf("A05 deadlock: fixed with a matching receive -> main got %d "
           "(task: %s, main: %s)\n",
           got, a.err == 0 ? "sent" : gocc_strerror(a.err),
           main_err == 0 ? "received" : gocc_strerror(main_err));
    check(a.err == 0 && main_err == 0 && got == 1,
          "the task's 1 was received, no timeout involved");

    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_chan_release(ch);
}

int main(void) {
    broken();
    fixed();
    check(example_tasks_exit_within(5 * GOCC_SECOND),
          "no task left blocked (gocc_tasks_live() == 0)");
    if (example_failures) printf("A05 deadlock: FAILED\n");
    return example_failures ? 1 : 0;
}
