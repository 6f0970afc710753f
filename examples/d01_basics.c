/*
 * d01_basics.c - D01 (cheat sheet): the basics, one function
 * each.
 *
 * d01_launch: `go list.Sort()` and `go func() { time.Sleep(delay);
 *   fmt.Println(message) }()`. A task has no return value and no handle:
 *   the closure's captured variables become an argument struct, and main
 *   learns that the task ran through a channel.
 * d01_unbuffered: an unbuffered channel as a synchronisation point:
 *   done := make(chan struct{}); go { doWork(); done <- struct{}{} }; <-done.
 * d01_buffered: jobs := make(chan Job, 100): sends do not block until the
 *   buffer is full (the 101st try-send would block).
 * d01_direction: chan<- int and <-chan int. C has no channel direction in
 *   its types, so two one-field wrapper types give the compiler the same
 *   check: producer() gets an int_sender_t and can only send, consumer() an
 *   int_receiver_t and can only receive.
 * d01_range: for msg := range ch: receive until GOCC_ECLOSED; the loop
 *   ends when the channel is closed and drained.
 * d01_close: closing is a broadcast (three blocked receivers all wake),
 *   a receive from a closed channel gives the zero value with ok == false
 *   (comma-ok is the return code), and a send on a closed channel, which
 *   panics in Go, returns GOCC_ECLOSED.
 *
 * Each function checks its result; exit 1 if any is wrong, and
 * gocc_tasks_live() == 0 at the end.
 *
 * Go -> C: chan T is a channel of sizeof(T)-byte elements (chan struct{}:
 * elem_size 0); v, ok := <-ch is the receive's return code (0 or
 * GOCC_ECLOSED); a closure's captures become an argument struct.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D01", ok, what)

/* ---- D01: goroutine launch ---------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

typedef struct list {
    int v[8];
    gocc_chan_t *sorted; /* signalled when the sort is done */
} list_t;

/* go list.Sort() */
static int list_sort(gocc_ctx_t *ctx, void *arg) {
    list_t *l = arg;
    qsort(l->v, 8, sizeof l->v[0], cmp_int);
    gocc_chan_send(l->sorted, NULL, ctx);
    return 0;
}

/* go func() { time.Sleep(delay); fmt.Println(message) }(): the closure's
 * captures, by value. */
typedef struct announce {
    int64_t delay;
    const char *message;
    gocc_chan_t *printed;
} announce_t;

static int announce(gocc_ctx_t *ctx, void *arg) {
    announce_t *a = arg;
    gocc_sleep(a->delay, ctx);
    printf("D01 launch: %s\n", a->message);
    gocc_chan_send(a->printed, NULL, ctx);
    return 0;
}

static void d01_launch(void) {
    gocc_chan_t *done = gocc_chan_new(0, 2);
    list_t l = {{5, 3, 8, 1, 9, 2, 7, 4}, done};
    announce_t a = {2 * GOCC_MILLISECOND, "the anonymous task printed this after 2 ms", done};
    bool ok = done && gocc_go(list_sort, NULL, &l) == 0 && gocc_go(announce, NULL, &a) == 0;
    check(ok, "launched the tasks");
    if (ok) { /* no return values: wait for both signals */
        gocc_chan_recv(done, NULL, NULL);
        gocc_chan_recv(done, NULL, NULL);
    }
    bool sorted = true;
    for (int i = 1; i < 8; i++) sorted &= l.v[i - 1] <= l.v[i];
    check(ok && sorted, "list.Sort ran");
    printf("D01 launch: go list.Sort() sorted {5 3 8 1 9 2 7 4} into {%d %d %d %d %d %d %d %d}\n",
           l.v[0], l.v[1], l.v[2], l.v[3], l.v[4], l.v[5], l.v[6], l.v[7]);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "launched tasks returned");
    gocc_chan_release(done);
}

/* ---- D01: unbuffered channel as a synchronisation point ----------------- */

typedef struct work {
    long result;       /* plain memory, written before the send */
    gocc_chan_t *done; /* make(chan struct{}) */
} work_t;

static int do_work(gocc_ctx_t *ctx, void *arg) {
    work_t *w = arg;
    for (long i = 1; i <= 100; i++) w->result += i; /* doWork() */
    gocc_chan_send(w->done, NULL, ctx);             /* done <- struct{}{} */
    return 0;
}

static void d01_unbuffered(void) {
    work_t w = {0, gocc_chan_new(0, 0)};
    bool ok = w.done && gocc_go(do_work, NULL, &w) == 0;
    if (ok) gocc_chan_recv(w.done, NULL, NULL); /* <-done: the work happened before */
    check(ok && w.result == 5050, "the work is visible after <-done");
    printf("D01 unbuffered: <-done returned after the task's work: result %ld\n", w.result);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the worker returned");
    gocc_chan_release(w.done);
}

/* ---- D01: buffered channel ---------------------------------------------- */

typedef struct job {
    int id;
} job_t;

static void d01_buffered(void) {
    gocc_chan_t *jobs = gocc_chan_new(sizeof(job_t), 100); /* make(chan Job, 100) */
    int sent = 0;
    for (int i = 0; jobs && i < 101; i++) {
        job_t j = {i};
        if (gocc_chan_try_send(jobs, &j) != 0) break; /* would block */
        sent++;
    }
    check(sent == 100 && gocc_chan_len(jobs) == 100, "100 sends fit without a receiver");
    printf("D01 buffered: %d sends completed with no receiver, the 101st would block "
           "(len %zu, cap %zu)\n",
           sent, gocc_chan_len(jobs), gocc_chan_cap(jobs));
    gocc_chan_release(jobs); /* frees the buffered jobs too */
}

/* ---- D01: channel direction --------------------------------------------- */

typedef struct int_sender {
    gocc_chan_t *ch;
} int_sender_t; /* chan<- int */
typedef struct int_receiver {
    gocc_chan_t *ch;
} int_receiver_t; /* <-chan int */

static int int_send(int_sender_t s, int v, gocc_ctx_t *ctx) {
    return gocc_chan_send(s.ch, &v, ctx);
}
static int int_recv(int_receiver_t r, int *v, gocc_ctx_t *ctx) {
    return gocc_chan_recv(r.ch, v, ctx);
}

/* func producer(out chan<- int) { out <- 42 }: only int_send compiles here */
static int producer(gocc_ctx_t *ctx, void *arg) {
    int_sender_t *out = arg;
    int_send(*out, 42, ctx);
    return 0;
}

/* func consumer(in <-chan int) { v := <-in } */
static int consumer(int_receiver_t in) {
    int v = 0;
    int_recv(in, &v, NULL);
    return v;
}

static void d01_direction(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    int_sender_t out = {ch};
    int v = 0;
    if (ch && gocc_go(producer, NULL, &out) == 0) v = consumer((int_receiver_t){ch});
    check(v == 42, "consumer received the producer's 42");
    printf("D01 direction: producer(chan<- int) sent, consumer(<-chan int) received %d\n", v);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the producer returned");
    gocc_chan_release(ch);
}

/* ---- D01: range over a channel ------------------------------------------ */

typedef struct msgs {
    gocc_chan_t *ch;
    int n;
} msgs_t;

static int send_and_close(gocc_ctx_t *ctx, void *arg) {
    msgs_t *m = arg;
    for (int i = 1; i <= m->n; i++) gocc_chan_send(m->ch, &i, ctx);
    gocc_chan_close(m->ch); /* the sender closes */
    return 0;
}

static void d01_range(void) {
    msgs_t m = {gocc_chan_new(sizeof(int), 4), 10};
    int msg, count = 0, sum = 0;
    if (m.ch && gocc_go(send_and_close, NULL, &m) == 0)
        while (gocc_chan_recv(m.ch, &msg, NULL) == 0) { /* for msg := range ch */
            count++;
            sum += msg; /* process(msg) */
        }
    check(count == 10 && sum == 55, "range received 1..10 and ended at close");
    printf("D01 range: received %d messages (sum %d); the loop ended when ch was closed "
           "and drained\n",
           count, sum);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the sender returned");
    gocc_chan_release(m.ch);
}

/* ---- D01: close and comma-ok -------------------------------------------- */

typedef struct waiter {
    gocc_chan_t *ch;
    int err; /* out */
} waiter_t;

static int wait_for_close(gocc_ctx_t *ctx, void *arg) {
    waiter_t *w = arg;
    int v;
    w->err = gocc_chan_recv(w->ch, &v, ctx);
    return 0;
}

static void d01_close(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 1);
    waiter_t w[3];
    int started = 0;
    for (int i = 0; ch && i < 3; i++) {
        w[i] = (waiter_t){ch, 0};
        started += gocc_go(wait_for_close, NULL, &w[i]) == 0;
    }
    gocc_sleep(2 * GOCC_MILLISECOND, NULL);                   /* let them block */
    gocc_chan_close(ch);                                      /* a broadcast */
    bool exited = example_tasks_exit_within(2 * GOCC_SECOND); /* it takes microseconds */
    int woke = 0;
    for (int i = 0; i < started; i++) woke += w[i].err == GOCC_ECLOSED;
    check(started == 3 && exited && woke == 3, "close woke every receiver");

    int v = 7;
    int ok_code = gocc_chan_recv(ch, &v, NULL); /* v, ok := <-ch */
    bool ok = ok_code == 0;
    check(!ok && v == 0, "receive on a closed channel: zero value, ok false");
    int send = gocc_chan_send(ch, &v, NULL); /* Go: panic */
    check(send == GOCC_ECLOSED, "send on a closed channel is refused");
    printf("D01 close: woke %d blocked receivers; then v, ok := <-ch gave %d, %s; a send "
           "returned \"%s\" instead of panicking\n",
           woke, v, ok ? "true" : "false", gocc_strerror(send));
    gocc_chan_release(ch);
}

int main(void) {
    d01_launch();
    d01_unbuffered();
    d01_buffered();
    d01_direction();
    d01_range();
    d01_close();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D01 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
