/*
 * c08_test_timeout.c - port of C08 (production guide, "Timeouts to prevent
 * hanging tests": a test-level timeout via context).
 *
 *     func TestSomething(t *testing.T) {
 *         ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
 *         defer cancel()
 *         if err := doThing(ctx); err != nil { t.Fatal(err) }
 *     }
 *
 * run_test() is that test body for any do_thing: a context with a timeout,
 * the call, cancel and release, and a verdict. It also checks what the
 * guide's troubleshooting list asks for after a hang: that no task is left
 * behind (gocc_tasks_live() back to 0, Go's goleak).
 *
 * Two tests run through it:
 *  - TestSum: do_thing sums 1..100 through a producer task and a channel;
 *    it passes well inside its 2 s.
 *  - TestSumForgotClose: the same, but the producer forgets to close the
 *    channel (the "only the sender closes, receivers stop on !ok" bug), so
 *    the consumer's range loop would wait for ever. With the test's
 *    context it gets "context deadline exceeded" instead: the test FAILS
 *    (as it should) after 100 ms rather than hanging the test run. Its
 *    timeout is 100 ms, not the snippet's 2 s, only to keep this quick.
 *
 * Go to C: t.Fatal becomes a FAIL line and a non-zero result from
 * run_test; defer cancel() is gocc_ctx_cancel + gocc_ctx_release. The
 * consumer's `for v := range ch` with the context is a receive loop that
 * ends on GOCC_ECLOSED or on the context's error. No generics in the Go.
 *
 * Checks (the program's own, not the tests'): TestSum passes with 5050;
 * TestSumForgotClose fails with GOCC_EDEADLINE within a generous 2 s;
 * no test leaves a task behind. Exit status 0 when all hold, else 1 - the
 * expected FAIL of the second test is the demonstration, not a failure.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check("C08", ok, what)

/* ---- the code under test ------------------------------------------------ */

typedef struct producer_arg {
    gocc_chan_t *out; /* the task's own reference */
    bool close_when_done;
} producer_arg_t;

static int producer(gocc_ctx_t *ctx, void *arg) {
    producer_arg_t *a = arg;
    for (int v = 1; v <= 100; v++)
        if (gocc_chan_send(a->out, &v, ctx) != 0) break;
    if (a->close_when_done) gocc_chan_close(a->out); /* the bug forgets this */
    gocc_chan_release(a->out);
    free(a);
    return 0;
}

static long last_sum;

/* Sum what a producer task sends; 0 when the sum is 5050. */
static int sum_to_100(gocc_ctx_t *ctx, bool producer_closes) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    producer_arg_t *pa = malloc(sizeof *pa);
    if (!ch || !pa) {
        free(pa);
        gocc_chan_release(ch);
        return GOCC_ENOMEM;
    }
    *pa = (producer_arg_t){gocc_chan_retain(ch), producer_closes};
    int err = gocc_go(producer, ctx, pa);
    if (err != 0) {
        gocc_chan_release(pa->out);
        free(pa);
        gocc_chan_release(ch);
        return err;
    }
    long sum = 0;
    int v;
    while ((err = gocc_chan_recv(ch, &v, ctx)) == 0) sum += v; /* range ch */
    last_sum = sum;
    gocc_chan_release(ch);
    if (err == GOCC_ECLOSED) err = 0; /* the range loop's normal end */
    if (err == 0 && sum != 5050) err = GOCC_EINVAL;
    return err;
}

static int do_thing(gocc_ctx_t *ctx) { return sum_to_100(ctx, true); }

static int do_thing_forgot_close(gocc_ctx_t *ctx) { return sum_to_100(ctx, false); }

/* ---- the test harness --------------------------------------------------- */

/* TestXxx: returns the error t.Fatal would have been given (0: PASS). */
static int run_test(const char *name, int (*thing)(gocc_ctx_t *), int64_t timeout_ns,
                    int64_t *took_ns, bool *leaked) {
    int64_t start = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, timeout_ns);
    int err = ctx ? thing(ctx) : GOCC_ENOMEM;
    gocc_ctx_cancel(ctx); /* defer cancel() */
    gocc_ctx_release(ctx);
    *took_ns = gocc_now() - start;
    *leaked = !example_tasks_exit_within(2 * GOCC_SECOND);
    printf("C08 test timeout: %s, %.0f ms test ctx: %s after %.1f ms (%s; sum so far %ld)\n", name,
           timeout_ns / 1e6, err ? "FAIL" : "PASS", *took_ns / 1e6, err ? gocc_strerror(err) : "ok",
           last_sum);
    return err;
}

int main(void) {
    int64_t took;
    bool leaked;

    int err = run_test("TestSum", do_thing, 2 * GOCC_SECOND, &took, &leaked);
    check(err == 0 && last_sum == 5050, "TestSum passes with 1+...+100 = 5050");
    check(!leaked, "TestSum left no task behind");

    err = run_test("TestSumForgotClose (producer never closes)", do_thing_forgot_close,
                   100 * GOCC_MILLISECOND, &took, &leaked);
    check(err == GOCC_EDEADLINE, "the hanging test failed with the deadline");
    check(took < 2 * GOCC_SECOND, "the 100 ms test timeout fired within 2 s");
    check(!leaked, "the hanging test left no task behind");

    check(gocc_tasks_live() == 0, "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C08 test timeout: FAILED\n");
    return example_failures ? 1 : 0;
}
