/*
 * test-pubsub.c - publish/subscribe (gocc_pubsub_*): include/gocc.h's
 * "Publish/subscribe" section and its conventions (NULL, misuse).
 *
 * The one accounting rule every threaded test checks: per subscriber,
 * delivered + dropped == published, and over all subscribers the sum of
 * publish's results equals what the receivers took out before GOCC_ECLOSED
 * (no value lost to a close or an unsubscribe it raced with, none
 * duplicated). Values carry (publisher, sequence) so each receiver also
 * checks FIFO order per publisher.
 *
 * Drops are made certain, not hoped for: the "slow" subscriber's receiver
 * waits on a gate until publishing is over, so it gets exactly its buffer
 * and misses the rest; the "fast" one has room for everything.
 *
 * No cmocka assertion runs on a task: tasks record what they saw in
 * atomics. Every blocking receive has a safety context.
 */
#include "test-common.h"

#include <stdint.h>
#include <stdlib.h>

/* Under the sanitizers a huge allocation aborts the program unless the
 * allocator may return NULL: the ENOMEM test needs the NULL (ASan still
 * prints a one-line "failed to allocate" warning for it). Until the
 * library's allocator can fail on demand, that test reaches only the
 * channel allocation's ENOMEM, not the subscriber array's. */
#if defined(GOCC_TEST_SANITIZED)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

/* ------------------------------------------------------------------------ */
/* helpers */

#define MAX_PUBS 4

static gocc_pubsub_t *pubsub_new(size_t elem_size) {
    gocc_pubsub_t *ps = gocc_pubsub_new(elem_size);
    assert_non_null(ps);
    return ps;
}

static gocc_chan_t *subscribe(gocc_pubsub_t *ps, size_t buffer) {
    gocc_chan_t *ch = gocc_pubsub_subscribe(ps, buffer);
    assert_non_null(ch);
    return ch;
}

static uint64_t val(int pub, uint32_t seq) { return (uint64_t)pub << 32 | seq; }

/* A receiver task: takes values from its subscription until GOCC_ECLOSED,
 * counting them and checking order per publisher. */
typedef struct receiver {
    gocc_chan_t *ch;
    gocc_ctx_t *safety;
    gocc_chan_t *gate;      /* if set: received from (until closed) before starting */
    int64_t pause_every_ns; /* if > 0: a short sleep after every value */
    _Atomic uint64_t got;
    atomic_int out_of_order;
    atomic_int end_rc;   /* what ended the loop (GOCC_ECLOSED expected) */
    atomic_int again_rc; /* a receive after that */
    atomic_int done;
} receiver_t;

static int receiver_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    receiver_t *r = arg;
    int64_t last[MAX_PUBS];
    for (int i = 0; i < MAX_PUBS; i++) last[i] = -1;
    if (r->gate != NULL) (void)gocc_chan_recv(r->gate, NULL, r->safety);
    uint64_t v;
    int rc;
    uint64_t seed = (uint64_t)(uintptr_t)r | 1;
    while ((rc = gocc_chan_recv(r->ch, &v, r->safety)) == 0) {
        int pub = (int)(v >> 32);
        int64_t seq = (int64_t)(uint32_t)v;
        if (pub < 0 || pub >= MAX_PUBS || seq <= last[pub])
            atomic_fetch_add(&r->out_of_order, 1);
        else
            last[pub] = seq;
        atomic_fetch_add(&r->got, 1);
        if (r->pause_every_ns > 0)
            sleep_ns((int64_t)(xorshift(&seed) % (uint64_t)r->pause_every_ns));
    }
    atomic_store(&r->end_rc, rc);
    atomic_store(&r->again_rc, gocc_chan_recv(r->ch, &v, r->safety));
    atomic_store(&r->done, 1);
    return 0;
}

static void receiver_start(receiver_t *r, gocc_chan_t *ch, gocc_ctx_t *safety) {
    memset(r, 0, sizeof *r);
    r->ch = ch;
    r->safety = safety;
    atomic_init(&r->end_rc, 1000);
    atomic_init(&r->again_rc, 1000);
}

static void receiver_go(receiver_t *r) { go(receiver_task, r); }

/* The receiver ended on GOCC_ECLOSED (twice) and saw everything in order. */
static void receiver_check_end(receiver_t *r, const char *name) {
    if (!wait_count(&r->done, 1, SAFETY_NS)) fail_msg("%s: receiver did not finish", name);
    if (atomic_load(&r->end_rc) != GOCC_ECLOSED || atomic_load(&r->again_rc) != GOCC_ECLOSED)
        fail_msg("%s: receiver ended with %d then %d, want GOCC_ECLOSED twice", name,
                 atomic_load(&r->end_rc), atomic_load(&r->again_rc));
    if (atomic_load(&r->out_of_order) != 0)
        fail_msg("%s: %d values out of order", name, atomic_load(&r->out_of_order));
}

/* A publisher task: publishes n values (or, n < 0, until GOCC_ECLOSED). */
typedef struct publisher {
    gocc_pubsub_t *ps;
    int id;
    long n;
    _Atomic uint64_t published; /* calls that returned >= 0 */
    _Atomic uint64_t delivered; /* sum of their results */
    atomic_int zero_got;        /* calls that reached nobody */
    atomic_int bad_rc;          /* results other than >= 0 and the final GOCC_ECLOSED */
    atomic_int done;
} publisher_t;

static int publisher_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    publisher_t *p = arg;
    for (uint32_t seq = 0; p->n < 0 || (long)seq < p->n; seq++) {
        uint64_t v = val(p->id, seq);
        int rc = gocc_pubsub_publish(p->ps, &v);
        if (rc == GOCC_ECLOSED && p->n < 0) break;
        if (rc < 0) {
            atomic_fetch_add(&p->bad_rc, 1);
            break;
        }
        if (rc == 0) atomic_fetch_add(&p->zero_got, 1);
        atomic_fetch_add(&p->delivered, (uint64_t)rc);
        atomic_fetch_add(&p->published, 1);
    }
    atomic_store(&p->done, 1);
    return 0;
}

static void publisher_go(publisher_t *p, gocc_pubsub_t *ps, int id, long n) {
    memset(p, 0, sizeof *p);
    p->ps = ps;
    p->id = id;
    p->n = n;
    go(publisher_task, p);
}

static uint64_t published_total(publisher_t *p, int n) {
    uint64_t t = 0;
    for (int i = 0; i < n; i++) t += atomic_load(&p[i].published);
    return t;
}

/* Wait (bounded) until the publishers have published @p more values than
 * now (so at least more - 2 of them started after this call). */
static void wait_published(publisher_t *p, int n, uint64_t more) {
    uint64_t want = published_total(p, n) + more;
    int64_t end = gocc_now() + SAFETY_NS;
    while (published_total(p, n) < want && gocc_now() < end) sleep_ns(100 * GOCC_MICROSECOND);
    CHECK_GE(published_total(p, n), want);
}

/* ------------------------------------------------------------------------ */

/* Misuse and NULL: GOCC_EINVAL (or NULL with errno EINVAL), nothing changes. */
static void test_pubsub_invalid(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    errno = 0;
    assert_null(gocc_pubsub_new(0));
    assert_int_equal(errno, EINVAL);

    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *foreign = chan_new(sizeof(uint64_t), 4);
    uint64_t v = 1;
    errno = 0;
    assert_null(gocc_pubsub_subscribe(NULL, 4));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gocc_pubsub_subscribe(ps, 0));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(gocc_pubsub_publish(NULL, &v), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_publish(ps, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_unsubscribe(NULL, foreign), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, NULL), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, foreign), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_dropped(NULL, foreign), 0);
    assert_int_equal(gocc_pubsub_dropped(ps, NULL), 0);
    assert_int_equal(gocc_pubsub_dropped(ps, foreign), 0);
    assert_int_equal(gocc_pubsub_subscribers(NULL), 0);
    assert_int_equal(gocc_pubsub_close(NULL), GOCC_EINVAL);
    gocc_pubsub_free(NULL);

    /* The foreign channel was left alone: open, empty. */
    assert_int_equal(gocc_chan_try_send(foreign, &v), 0);
    assert_int_equal(gocc_chan_len(foreign), 1);

    /* Unsubscribing twice: the second is not a current subscriber. */
    gocc_chan_t *sub = subscribe(ps, 2);
    assert_int_equal(gocc_pubsub_subscribers(ps), 1);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, sub), 0);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, sub), GOCC_EINVAL);
    assert_int_equal(gocc_pubsub_subscribers(ps), 0);
    assert_int_equal(gocc_pubsub_publish(ps, &v), 0); /* nobody to get it */

    /* After close: publish and subscribe refused, close again refused. */
    assert_int_equal(gocc_pubsub_close(ps), 0);
    assert_int_equal(gocc_pubsub_close(ps), GOCC_ECLOSED);
    assert_int_equal(gocc_pubsub_publish(ps, &v), GOCC_ECLOSED);
    errno = 0;
    assert_null(gocc_pubsub_subscribe(ps, 4));
    assert_int_equal(errno, EPIPE);
    assert_int_equal(gocc_pubsub_subscribers(ps), 0);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, sub), GOCC_EINVAL);

    gocc_pubsub_free(ps); /* after close: fine */
    gocc_chan_release(sub);
    gocc_chan_release(foreign);
    ASSERT_NO_TASKS(start);
}

/* One thread: delivery, drops by a full buffer, order, unsubscribe (drains,
 * then GOCC_ECLOSED; wakes a blocked receiver), close, free without close. */
static void test_pubsub_basic(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *big = subscribe(ps, 4);
    gocc_chan_t *small = subscribe(ps, 1);
    gocc_chan_t *idle = subscribe(ps, 1);
    assert_int_equal(gocc_pubsub_subscribers(ps), 3);
    assert_int_equal(gocc_chan_cap(big), 4);

    uint64_t v, out;
    v = 10;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 3);
    v = 11;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1); /* small and idle are full */
    v = 12;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1);
    assert_int_equal(gocc_pubsub_dropped(ps, big), 0);
    assert_int_equal(gocc_pubsub_dropped(ps, small), 2);
    assert_int_equal(gocc_pubsub_dropped(ps, idle), 2);

    /* small drains its one value; the next publish reaches it again. */
    assert_int_equal(gocc_chan_try_recv(small, &out), 0);
    assert_int_equal(out, 10);
    v = 13;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 2);
    assert_int_equal(gocc_chan_try_recv(small, &out), 0);
    assert_int_equal(out, 13);

    /* big got everything, in order. */
    for (uint64_t want = 10; want <= 13; want++) {
        assert_int_equal(gocc_chan_try_recv(big, &out), 0);
        assert_int_equal(out, want);
    }
    assert_int_equal(gocc_chan_try_recv(big, &out), GOCC_EAGAIN);

    /* Unsubscribe idle: its buffered value stays receivable, then closed. */
    assert_int_equal(gocc_pubsub_unsubscribe(ps, idle), 0);
    assert_int_equal(gocc_pubsub_subscribers(ps), 2);
    assert_int_equal(gocc_pubsub_dropped(ps, idle), 0); /* not a subscriber any more */
    v = 14;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 2);
    assert_int_equal(gocc_chan_try_recv(idle, &out), 0);
    assert_int_equal(out, 10);
    assert_int_equal(gocc_chan_try_recv(idle, &out), GOCC_ECLOSED);
    gocc_chan_release(idle);

    /* Unsubscribe wakes a receiver blocked on an empty subscription. */
    assert_int_equal(gocc_chan_try_recv(small, &out), 0); /* 14 */
    receiver_t r;
    gocc_ctx_t *safety = safety_ctx();
    receiver_start(&r, small, safety);
    receiver_go(&r);
    wait_blocked_in(1, "chan receive", SAFETY_NS); /* blocked on the empty subscription */
    assert_int_equal(atomic_load(&r.done), 0);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, small), 0);
    receiver_check_end(&r, "small");
    assert_int_equal(atomic_load(&r.got), 0);
    gocc_chan_release(small);

    /* Close: big drains 14, then GOCC_ECLOSED. */
    assert_int_equal(gocc_pubsub_close(ps), 0);
    assert_int_equal(gocc_pubsub_subscribers(ps), 0);
    assert_int_equal(gocc_chan_try_recv(big, &out), 0);
    assert_int_equal(out, 14);
    assert_int_equal(gocc_chan_try_recv(big, &out), GOCC_ECLOSED);
    gocc_pubsub_free(ps);
    gocc_chan_release(big);

    /* Free without close closes the subscribers; the caller's reference
     * keeps the channel, and its value, alive. */
    ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *kept = subscribe(ps, 2);
    v = 99;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1);
    gocc_pubsub_free(ps);
    assert_int_equal(gocc_chan_try_recv(kept, &out), 0);
    assert_int_equal(out, 99);
    assert_int_equal(gocc_chan_try_recv(kept, &out), GOCC_ECLOSED);
    gocc_chan_release(kept);

    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Elements of any size are copied whole. */
static void test_pubsub_elem_size(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    typedef struct {
        char text[40];
        int n;
    } event_t;
    gocc_pubsub_t *ps = pubsub_new(sizeof(event_t));
    gocc_chan_t *a = subscribe(ps, 2), *b = subscribe(ps, 2);
    event_t e = {.text = "user.login 123", .n = 7}, got;
    assert_int_equal(gocc_pubsub_publish(ps, &e), 2);
    memset(&e, 0, sizeof e); /* the values were copied */
    for (int i = 0; i < 2; i++) {
        memset(&got, 0xff, sizeof got);
        assert_int_equal(gocc_chan_try_recv(i ? b : a, &got), 0);
        assert_string_equal(got.text, "user.login 123");
        assert_int_equal(got.n, 7);
    }
    gocc_pubsub_free(ps);
    gocc_chan_release(a);
    gocc_chan_release(b);
    ASSERT_NO_TASKS(start);
}

/* A subscribe that cannot get memory (a buffer far too large to allocate)
 * or whose size overflows fails with ENOMEM / EINVAL and leaves the
 * broadcaster as it was: same subscribers, same drop counts, still
 * publishing. */
static void test_pubsub_subscribe_fails_cleanly(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *sub = subscribe(ps, 1);
    uint64_t v = 1, out;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1);
    assert_int_equal(gocc_pubsub_publish(ps, &v), 0);
    assert_int_equal(gocc_pubsub_dropped(ps, sub), 1);

    errno = 0;
    assert_null(gocc_pubsub_subscribe(ps, SIZE_MAX / 64)); /* ~2^61 bytes */
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(gocc_pubsub_subscribe(ps, SIZE_MAX)); /* size overflows */
    assert_int_equal(errno, EINVAL);

    assert_int_equal(gocc_pubsub_subscribers(ps), 1);
    assert_int_equal(gocc_pubsub_dropped(ps, sub), 1);
    assert_int_equal(gocc_chan_try_recv(sub, &out), 0);
    v = 2;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1);
    assert_int_equal(gocc_chan_try_recv(sub, &out), 0);
    assert_int_equal(out, 2);
    /* Growing the array past its first size still works. */
    gocc_chan_t *more[9];
    for (int i = 0; i < 9; i++) more[i] = subscribe(ps, 1);
    assert_int_equal(gocc_pubsub_subscribers(ps), 10);
    assert_int_equal(gocc_pubsub_publish(ps, &v), 10);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, more[4]), 0);
    assert_int_equal(gocc_pubsub_publish(ps, &v), 0); /* all full */
    for (int i = 0; i < 9; i++) {
        assert_int_equal(gocc_pubsub_dropped(ps, more[i]), i == 4 ? 0 : 1);
        gocc_chan_release(more[i]);
    }
    gocc_pubsub_free(ps);
    gocc_chan_release(sub);
    ASSERT_NO_TASKS(start);
}

/* A subscriber that closes its own channel (misuse: the channel is the
 * broadcaster's to close) just misses values; nothing breaks. */
static void test_pubsub_subscriber_closes_own(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *rude = subscribe(ps, 4), *ok = subscribe(ps, 4);
    assert_int_equal(gocc_chan_close(rude), 0);
    uint64_t v = 5;
    assert_int_equal(gocc_pubsub_publish(ps, &v), 1);
    assert_int_equal(gocc_pubsub_dropped(ps, rude), 1);
    assert_int_equal(gocc_pubsub_dropped(ps, ok), 0);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, rude), 0);
    gocc_pubsub_free(ps);
    gocc_chan_release(rude);
    gocc_chan_release(ok);
    ASSERT_NO_TASKS(start);
}

/* Two publishers on their own tasks; a fast subscriber (room for all) gets
 * every value, a gated slow one gets exactly its buffer and drops the rest,
 * a sleepy one gets what its timing allows: for each, delivered + dropped
 * == published, and the publishers' results add up to all deliveries. */
#define FS_PUBS 2
static void test_pubsub_fast_and_slow(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const long n = SCALE(20000);
    const uint64_t total = (uint64_t)(FS_PUBS * n);
    const size_t slow_buf = 4;
    gocc_ctx_t *safety = safety_ctx();
    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    gocc_chan_t *gate = chan_new(0, 0);

    receiver_t fast, slow, sleepy;
    receiver_start(&fast, subscribe(ps, (size_t)total), safety);
    receiver_start(&slow, subscribe(ps, slow_buf), safety);
    slow.gate = gate;
    receiver_start(&sleepy, subscribe(ps, 8), safety);
    sleepy.pause_every_ns = 20 * GOCC_MICROSECOND;
    receiver_go(&fast);
    receiver_go(&slow);
    receiver_go(&sleepy);

    publisher_t pub[FS_PUBS];
    for (int i = 0; i < FS_PUBS; i++) publisher_go(&pub[i], ps, i, n);
    for (int i = 0; i < FS_PUBS; i++) assert_true(wait_count(&pub[i].done, 1, SAFETY_NS));

    uint64_t delivered = 0;
    for (int i = 0; i < FS_PUBS; i++) {
        assert_int_equal(atomic_load(&pub[i].bad_rc), 0);
        assert_int_equal(atomic_load(&pub[i].zero_got), 0); /* fast always had room */
        assert_int_equal(atomic_load(&pub[i].published), n);
        delivered += atomic_load(&pub[i].delivered);
    }
    /* Drop counts while they are still subscribers. */
    uint64_t d_fast = gocc_pubsub_dropped(ps, fast.ch);
    uint64_t d_slow = gocc_pubsub_dropped(ps, slow.ch);
    uint64_t d_sleepy = gocc_pubsub_dropped(ps, sleepy.ch);

    assert_int_equal(gocc_pubsub_close(ps), 0);
    assert_int_equal(gocc_chan_close(gate), 0);
    receiver_check_end(&fast, "fast");
    receiver_check_end(&slow, "slow");
    receiver_check_end(&sleepy, "sleepy");

    assert_int_equal(d_fast, 0);
    assert_int_equal(atomic_load(&fast.got), total);
    assert_int_equal(atomic_load(&slow.got), slow_buf);
    assert_int_equal(d_slow, total - slow_buf);
    assert_int_equal(atomic_load(&sleepy.got) + d_sleepy, total);
    assert_int_equal(delivered,
                     atomic_load(&fast.got) + atomic_load(&slow.got) + atomic_load(&sleepy.got));
    print_message("fast and slow: %llu published; sleepy got %llu, dropped %llu\n",
                  (unsigned long long)total, (unsigned long long)atomic_load(&sleepy.got),
                  (unsigned long long)d_sleepy);

    gocc_pubsub_free(ps);
    gocc_chan_release(fast.ch);
    gocc_chan_release(slow.ch);
    gocc_chan_release(sleepy.ch);
    gocc_chan_release(gate);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Subscribers come and go while two publishers run flat out: unsubscribe
 * (half of them, one at a time), subscribe (late joiners), then close.
 * Every receiver drains and ends on GOCC_ECLOSED; every value a publish
 * counted as delivered was received (none lost to the close it raced
 * with), in order; the publishers stop on GOCC_ECLOSED and on nothing
 * else. Under TSan this is also the race check of publish against
 * unsubscribe and close. */
#define UW_PUBS 2
#define UW_SUBS 8
#define UW_LATE 3
static void test_pubsub_unsubscribe_while_publishing(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const uint64_t step = SCALE(2000);
    gocc_ctx_t *safety = safety_ctx();
    gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
    receiver_t r[UW_SUBS + UW_LATE];
    for (int i = 0; i < UW_SUBS; i++) {
        receiver_start(&r[i], subscribe(ps, 16), safety);
        receiver_go(&r[i]);
    }
    publisher_t pub[UW_PUBS];
    for (int i = 0; i < UW_PUBS; i++) publisher_go(&pub[i], ps, i, -1);

    wait_published(pub, UW_PUBS, step);
    for (int i = 0; i < UW_SUBS / 2; i++) {
        assert_int_equal(gocc_pubsub_unsubscribe(ps, r[i].ch), 0);
        receiver_check_end(&r[i], "unsubscribed"); /* ends while publishing goes on */
        wait_published(pub, UW_PUBS, step);
    }
    for (int i = UW_SUBS; i < UW_SUBS + UW_LATE; i++) {
        receiver_start(&r[i], subscribe(ps, 16), safety);
        receiver_go(&r[i]);
        wait_published(pub, UW_PUBS, step); /* it gets at least the first */
    }
    assert_int_equal(gocc_pubsub_unsubscribe(ps, r[UW_SUBS].ch), 0);
    assert_int_equal(gocc_pubsub_subscribers(ps), UW_SUBS / 2 + UW_LATE - 1);
    wait_published(pub, UW_PUBS, step);
    assert_int_equal(gocc_pubsub_close(ps), 0);

    uint64_t delivered = 0, received = 0;
    for (int i = 0; i < UW_PUBS; i++) {
        assert_true(wait_count(&pub[i].done, 1, SAFETY_NS));
        assert_int_equal(atomic_load(&pub[i].bad_rc), 0);
        delivered += atomic_load(&pub[i].delivered);
    }
    for (int i = 0; i < UW_SUBS + UW_LATE; i++) {
        receiver_check_end(&r[i], "subscriber");
        received += atomic_load(&r[i].got);
        if (atomic_load(&r[i].got) == 0) fail_msg("subscriber %d received nothing", i);
    }
    assert_int_equal(received, delivered);
    assert_int_equal(gocc_pubsub_unsubscribe(ps, r[UW_SUBS - 1].ch), GOCC_EINVAL);
    print_message("unsubscribe while publishing: %llu publishes, %llu deliveries\n",
                  (unsigned long long)published_total(pub, UW_PUBS), (unsigned long long)delivered);

    gocc_pubsub_free(ps);
    for (int i = 0; i < UW_SUBS + UW_LATE; i++) gocc_chan_release(r[i].ch);
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

/* Close while publishers run and receivers are blocked: the publishers
 * see GOCC_ECLOSED, the receivers drain and see it too, and a publish
 * never reaches a released channel (the caller releases its reference
 * right after its receiver ends: ASan would see a late send). */
static void test_pubsub_close_while_publishing(void **state) {
    (void)state;
    size_t start = gocc_tasks_live();
    TEST_NAME();
    const int rounds = SCALE(40);
    gocc_ctx_t *safety = safety_ctx();
    for (int round = 0; round < rounds; round++) {
        gocc_pubsub_t *ps = pubsub_new(sizeof(uint64_t));
        receiver_t r[4];
        for (int i = 0; i < 4; i++) {
            receiver_start(&r[i], subscribe(ps, 1 + (size_t)i), safety);
            receiver_go(&r[i]);
        }
        publisher_t pub[2];
        for (int i = 0; i < 2; i++) publisher_go(&pub[i], ps, i, -1);
        wait_published(pub, 2, (uint64_t)(round % 8) * 50);
        assert_int_equal(gocc_pubsub_close(ps), 0);
        uint64_t delivered = 0, received = 0;
        for (int i = 0; i < 4; i++) {
            receiver_check_end(&r[i], "receiver");
            received += atomic_load(&r[i].got);
            gocc_chan_release(r[i].ch);
        }
        for (int i = 0; i < 2; i++) {
            assert_true(wait_count(&pub[i].done, 1, SAFETY_NS));
            assert_int_equal(atomic_load(&pub[i].bad_rc), 0);
            delivered += atomic_load(&pub[i].delivered);
        }
        assert_int_equal(received, delivered);
        gocc_pubsub_free(ps);
    }
    ctx_done_release(safety);
    ASSERT_NO_TASKS(start);
}

int main(void) {
    test_main_init("test-pubsub", WATCHDOG_SECONDS);
    const struct CMUnitTest tests[] = {
        GOCC_TEST(test_pubsub_invalid),
        GOCC_TEST(test_pubsub_basic),
        GOCC_TEST(test_pubsub_elem_size),
        GOCC_TEST(test_pubsub_subscribe_fails_cleanly),
        GOCC_TEST(test_pubsub_subscriber_closes_own),
        GOCC_TEST(test_pubsub_fast_and_slow),
        GOCC_TEST(test_pubsub_unsubscribe_while_publishing),
        GOCC_TEST(test_pubsub_close_while_publishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
