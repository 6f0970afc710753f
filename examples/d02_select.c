/*
 * d02_select.c - D02 (cheat sheet): select.
 *
 *     select { case v := <-ch1: process(v)   case ch2 <- result: // sent
 *              case <-time.After(5 * time.Second): // timeout
 *              default: // non-blocking }
 *
 * d02_cases: the sheet's select as gocc_select over an array of cases:
 *   a receive, a send, and a timer's channel for the timeout; each case is
 *   made the ready one in turn (the 5 s timeout is 20 ms in the last run,
 *   where neither channel can go).
 * d02_default: `default` makes it non-blocking: gocc_select_try returns
 *   GOCC_EAGAIN when no case is ready.
 * d02_random: "random choice when multiple ready, not first-match": with
 *   both cases always ready, 2000 selects pick each about half the time.
 * d02_nil_case: "a nil channel blocks forever: useful to disable a case".
 *   Merging two channels until both are closed: a closed input's case is
 *   disabled by setting its channel to NULL (Go's nil), so the loop never
 *   spins on it.
 *
 * Checks: which case ran each time (the 20 ms timeout within 2 s: a timer
 * that fires seconds late fails it), the default's EAGAIN, both cases chosen
 * in the random test (each at least 30% of the time), the merge's count
 * and sum with no receive from a closed input after it was disabled, and
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 *
 * Go -> C: a select statement is an array of gocc_case_t (direction,
 * channel, element); its default branch is gocc_select_try; a nil channel
 * is a case whose ch is NULL.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D02", ok, what)

/* ---- D02: the select, with a timeout ------------------------------------ */

enum { CASE_RECV, CASE_SEND, CASE_TIMEOUT };

/* select { case v := <-ch1: case ch2 <- result: case <-time.After(d): } */
static int select3(gocc_chan_t *ch1, int *v, gocc_chan_t *ch2, int result, int64_t d) {
    gocc_timer_t *timeout = gocc_timer_new(d);
    if (!timeout) return GOCC_ENOMEM;
    gocc_case_t cases[3] = {
        [CASE_RECV] = {.ch = ch1, .dir = GOCC_RECV, .elem = v},
        [CASE_SEND] = {.ch = ch2, .dir = GOCC_SEND, .elem = &result},
        [CASE_TIMEOUT] = {.ch = gocc_timer_chan(timeout), .dir = GOCC_RECV},
    };
    int r = gocc_select(cases, 3, NULL);
    gocc_timer_free(timeout);
    return r;
}

static void d02_cases(void) {
    gocc_chan_t *ch1 = gocc_chan_new(sizeof(int), 1), *ch2 = gocc_chan_new(sizeof(int), 1);
    if (!ch1 || !ch2) {
        check(false, "made the channels");
        gocc_chan_release(ch1);
        gocc_chan_release(ch2);
        return;
    }
    int v = 0, full = -1;
    const char *names[] = {"receive", "send", "timeout"};

    gocc_chan_send(ch1, &(int){11}, NULL);              /* a value waits in ch1 */
    gocc_chan_send(ch2, &full, NULL);                   /* ch2 is full: its case can't go */
    int a = select3(ch1, &v, ch2, 22, 5 * GOCC_SECOND); /* time.After(5 * time.Second) */
    check(a == CASE_RECV && v == 11, "the receive case ran");

    gocc_chan_recv(ch2, NULL, NULL); /* ch2 has room now, ch1 is empty */
    int b = select3(ch1, &v, ch2, 22, 5 * GOCC_SECOND);
    int sent = 0;
    check(b == CASE_SEND && gocc_chan_recv(ch2, &sent, NULL) == 0 && sent == 22,
          "the send case ran");

    gocc_chan_send(ch2, &full, NULL); /* neither can go now: a short timeout */
    int64_t t0 = gocc_now();
    int c = select3(ch1, &v, ch2, 22, 20 * GOCC_MILLISECOND);
    double ms = (double)(gocc_now() - t0) / 1e6;
    check(c == CASE_TIMEOUT, "the timeout case ran");
    check(ms < 2000, "the 20 ms timeout fired within 2 s");
    printf("D02 select: ran the %s case (v=%d), then the %s case (sent %d), then the %s "
           "case after %.1f ms\n",
           a >= 0 ? names[a] : "?", v, b >= 0 ? names[b] : "?", sent, c >= 0 ? names[c] : "?", ms);
    gocc_chan_release(ch1);
    gocc_chan_release(ch2);
}

/* ---- D02: default makes it non-blocking --------------------------------- */

static void d02_default(void) {
    gocc_chan_t *ch1 = gocc_chan_new(sizeof(int), 0), *ch2 = gocc_chan_new(sizeof(int), 0);
    int v = 0, result = 22;
    gocc_case_t cases[2] = {{.ch = ch1, .dir = GOCC_RECV, .elem = &v},
                            {.ch = ch2, .dir = GOCC_SEND, .elem = &result}};
    int64_t t0 = gocc_now();
    int d = gocc_select_try(cases, 2); /* no sender, no receiver: default */
    double us = (double)(gocc_now() - t0) / 1e3;
    check(ch1 && ch2 && d == GOCC_EAGAIN, "select with default returned at once");
    printf("D02 default: no case ready, so the select took the default branch (\"%s\") "
           "after %.1f us\n",
           gocc_strerror(d), us);
    gocc_chan_release(ch1);
    gocc_chan_release(ch2);
}

/* ---- D02: random choice among ready cases ------------------------------- */

static void d02_random(void) {
    gocc_chan_t *a = gocc_chan_new(0, 1), *b = gocc_chan_new(0, 1);
    int picked[2] = {0, 0}, n = 2000;
    for (int i = 0; a && b && i < n; i++) {
        gocc_chan_try_send(a, NULL); /* keep both ready */
        gocc_chan_try_send(b, NULL);
        gocc_case_t cases[2] = {{.ch = a, .dir = GOCC_RECV}, {.ch = b, .dir = GOCC_RECV}};
        int r = gocc_select(cases, 2, NULL);
        if (r == 0 || r == 1) picked[r]++;
    }
    check(picked[0] + picked[1] == n && picked[0] > n * 3 / 10 && picked[1] > n * 3 / 10,
          "both ready cases were chosen about equally");
    printf("D02 random: with both cases ready, %d selects chose the first %d times and the "
           "second %d times (not first-match)\n",
           n, picked[0], picked[1]);
    gocc_chan_release(a);
    gocc_chan_release(b);
}

/* ---- D02: a nil channel disables a case --------------------------------- */

typedef struct source {
    gocc_chan_t *out;
    int from, to;
} source_t;

static int send_range(gocc_ctx_t *ctx, void *arg) {
    source_t *s = arg;
    for (int i = s->from; i <= s->to; i++) gocc_chan_send(s->out, &i, ctx);
    gocc_chan_close(s->out);
    return 0;
}

static void d02_nil_case(void) {
    source_t sa = {gocc_chan_new(sizeof(int), 0), 1, 10};
    source_t sb = {gocc_chan_new(sizeof(int), 0), 101, 105};
    bool ok = sa.out && sb.out && gocc_go(send_range, NULL, &sa) == 0 &&
              gocc_go(send_range, NULL, &sb) == 0;
    check(ok, "started the sources");
    gocc_chan_t *a = sa.out, *b = sb.out; /* the cases' channels */
    int count = 0, sum = 0, closed_seen = 0, v;
    while (ok && (a || b)) {
        gocc_case_t cases[2] = {{.ch = a, .dir = GOCC_RECV, .elem = &v},
                                {.ch = b, .dir = GOCC_RECV, .elem = &v}};
        int r = gocc_select(cases, 2, NULL);
        if (r < 0) break;
        if (!cases[r].ok) { /* closed: disable this case */
            closed_seen++;
            if (r == 0)
                a = NULL;
            else
                b = NULL;
            continue;
        }
        count++;
        sum += v;
    }
    check(count == 15 && sum == 55 + 515 && closed_seen == 2,
          "merged every value; each close seen once, then its case was off");
    printf("D02 nil channel: merged %d values (sum %d) from two channels; each closed "
           "input was set to nil, %d close%s seen in all\n",
           count, sum, closed_seen, closed_seen == 1 ? "" : "s");
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the sources returned");
    gocc_chan_release(sa.out);
    gocc_chan_release(sb.out);
}

int main(void) {
    d02_cases();
    d02_default();
    d02_random();
    d02_nil_case();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D02 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
