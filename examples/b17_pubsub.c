/*
 * b17_pubsub.c - B17 (chapter 9, "Pub-Sub Pattern"): PubSub[T] with
 * Subscribe(eventType, buffer), a Publish that never waits for a slow
 * subscriber (select with default: "Subscriber is slow, drop message") and
 * a Close that closes every subscriber's channel, so each `for event :=
 * range events` loop ends.
 *
 * b17_pubsub: two publisher tasks publish 50 "user.login" events each and
 *   the main thread 10 "user.logout" events. "user.login" has two
 *   subscribers: audit (buffer 100: room for the whole burst) and mailer
 *   (buffer 4), whose receiver takes one event and then is stuck (a slow
 *   mail server) until publishing is over, so it must drop; "user.logout"
 *   has one, session. Then Close: every receiver drains what is buffered
 *   and its range ends.
 *
 * Go -> C: Event[T] is a fixed-size struct copied by value; the map from
 * event type to []chan Event[T] becomes one gocc_pubsub_t per event type
 * (a topic): Subscribe is gocc_pubsub_subscribe (the channel it returns is
 * the `<-chan Event[T]`), Publish is gocc_pubsub_publish (try-send to each
 * subscriber, counting what each one drops), Close is gocc_pubsub_close on
 * every topic; `range events` is a receive loop until GOCC_ECLOSED.
 *
 * Checks: for every subscriber delivered + dropped == published on its
 * topic; audit got every login event, in order per publisher, and dropped
 * none; mailer dropped some; the publishers finished (within 2 s) while the
 * mailer was stuck; session got only logout events; a publish
 * after Close fails (GOCC_ECLOSED) and a subscribe gets EPIPE;
 * gocc_tasks_live() == 0 at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B17", ok, what)

#define LOGIN_PUBLISHERS 2
#define LOGINS_EACH 50
#define LOGOUTS 10

/* type Event[T] struct { Type string; Data T }, T = UserEvent */
typedef struct user_event {
    char user_id[16];
    char action[16];
} user_event_t;

typedef struct event {
    char type[16];
    user_event_t data;
    int publisher, seq; /* for the order check */
} event_t;

/* ---- PubSub: one broadcaster per event type ----------------------------- */

#define TOPICS 2
static const char *const topic_names[TOPICS] = {"user.login", "user.logout"};

typedef struct pubsub {
    gocc_pubsub_t *topic[TOPICS];
} pubsub_t;

static int topic_of(const char *type) {
    for (int i = 0; i < TOPICS; i++)
        if (strcmp(type, topic_names[i]) == 0) return i;
    return -1;
}

static bool pubsub_init(pubsub_t *ps) {
    bool ok = true;
    for (int i = 0; i < TOPICS; i++)
        ok &= (ps->topic[i] = gocc_pubsub_new(sizeof(event_t))) != NULL;
    return ok;
}

/* func (ps *PubSub[T]) Subscribe(eventType string, buffer int) <-chan Event[T] */
static gocc_chan_t *pubsub_subscribe(pubsub_t *ps, const char *type, size_t buffer) {
    int t = topic_of(type);
    return t < 0 ? NULL : gocc_pubsub_subscribe(ps->topic[t], buffer);
}

/* func (ps *PubSub[T]) Publish(event Event[T]): how many subscribers got it. */
static int pubsub_publish(pubsub_t *ps, const event_t *e) {
    int t = topic_of(e->type);
    return t < 0 ? 0 : gocc_pubsub_publish(ps->topic[t], e);
}

/* func (ps *PubSub[T]) Close() */
static void pubsub_close(pubsub_t *ps) {
    for (int i = 0; i < TOPICS; i++) gocc_pubsub_close(ps->topic[i]);
}

static void pubsub_free(pubsub_t *ps) {
    for (int i = 0; i < TOPICS; i++) gocc_pubsub_free(ps->topic[i]);
}

/* ---- subscribers and publishers ---------------------------------------- */

typedef struct subscriber {
    const char *name, *type;
    size_t buffer;
    gocc_chan_t *events; /* <-chan Event[T] */
    gocc_chan_t *stuck;  /* if set: after the first event, wait until closed */
    long got;
    long wrong_type;
    long out_of_order;
    event_t first;
    uint64_t dropped; /* read before Close */
} subscriber_t;

/* go func() { for event := range events { ... } }() */
static int subscriber_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    subscriber_t *s = arg;
    int last[LOGIN_PUBLISHERS + 1];
    for (int i = 0; i <= LOGIN_PUBLISHERS; i++) last[i] = -1;
    event_t e;
    while (gocc_chan_recv(s->events, &e, NULL) == 0) {
        if (s->got++ == 0) s->first = e;
        if (strcmp(e.type, s->type) != 0) s->wrong_type++;
        if (e.publisher < 0 || e.publisher > LOGIN_PUBLISHERS || e.seq <= last[e.publisher])
            s->out_of_order++;
        else
            last[e.publisher] = e.seq;
        if (s->stuck != NULL && s->got == 1) gocc_chan_recv(s->stuck, NULL, NULL);
    }
    return 0; /* the channel was closed: range ends */
}

typedef struct publisher {
    pubsub_t *ps;
    int id;
    long reached; /* sum of Publish's results */
    int errors;
    atomic_int *done;
} publisher_t;

static int login_publisher(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    publisher_t *p = arg;
    for (int i = 0; i < LOGINS_EACH; i++) {
        event_t e = {.type = "user.login", .publisher = p->id, .seq = i};
        snprintf(e.data.user_id, sizeof e.data.user_id, "%d", 100 * (p->id + 1) + 23 + i);
        snprintf(e.data.action, sizeof e.data.action, "login");
        int rc = pubsub_publish(p->ps, &e);
        if (rc < 0)
            p->errors++;
        else
            p->reached += rc;
    }
    atomic_fetch_add(p->done, 1);
    return 0;
}

static void b17_pubsub(void) {
    pubsub_t ps = {0};
    gocc_chan_t *mail_server = gocc_chan_new(0, 0); /* closed: the mailer gets going again */
    subscriber_t subs[3] = {
        {.name = "audit", .type = "user.login", .buffer = LOGIN_PUBLISHERS * LOGINS_EACH},
        {.name = "mailer", .type = "user.login", .buffer = 4, .stuck = mail_server},
        {.name = "session", .type = "user.logout", .buffer = LOGOUTS},
    };
    if (!pubsub_init(&ps) || !mail_server) {
        check(false, "made the PubSub");
        pubsub_free(&ps);
        gocc_chan_release(mail_server);
        return;
    }
    int started = 0;
    for (int i = 0; i < 3; i++) {
        subs[i].events = pubsub_subscribe(&ps, subs[i].type, subs[i].buffer);
        if (subs[i].events) started += gocc_go(subscriber_task, NULL, &subs[i]) == 0;
    }
    check(started == 3, "subscribed and started 3 receivers");

    publisher_t pubs[LOGIN_PUBLISHERS];
    atomic_int pubs_done = 0;
    int pubs_started = 0;
    for (int i = 0; i < LOGIN_PUBLISHERS; i++) {
        pubs[i] = (publisher_t){.ps = &ps, .id = i, .done = &pubs_done};
        pubs_started += gocc_go(login_publisher, NULL, &pubs[i]) == 0;
    }
    check(pubs_started == LOGIN_PUBLISHERS, "started the publishers");
    long reached = 0;
    int errors = 0;
    for (int i = 0; i < LOGOUTS; i++) {
        event_t e = {.type = "user.logout", .publisher = LOGIN_PUBLISHERS, .seq = i};
        snprintf(e.data.user_id, sizeof e.data.user_id, "%d", 900 + i);
        snprintf(e.data.action, sizeof e.data.action, "logout");
        int rc = pubsub_publish(&ps, &e);
        if (rc < 0)
            errors++;
        else
            reached += rc;
    }
    /* Wait for the publishers (the receivers keep running: the mailer is
     * stuck until after Close). Publishing takes microseconds; 2 s is for a
     * loaded machine. */
    int64_t give_up = gocc_now() + 2 * GOCC_SECOND;
    while (atomic_load(&pubs_done) < pubs_started && gocc_now() < give_up)
        gocc_sleep(GOCC_MILLISECOND, NULL);
    bool not_slowed = atomic_load(&pubs_done) == pubs_started;
    check(not_slowed, "the publishers finished while the mailer was stuck");
    if (!not_slowed) gocc_chan_close(mail_server); /* a Publish waits for it: let it go */
    for (int i = 0; i < LOGIN_PUBLISHERS; i++) {   /* unstarted ones add 0 */
        reached += pubs[i].reached;
        errors += pubs[i].errors;
    }
    for (int i = 0; i < 3; i++) /* while they are still subscribers */
        subs[i].dropped = gocc_pubsub_dropped(ps.topic[topic_of(subs[i].type)], subs[i].events);

    pubsub_close(&ps);            /* ps.Close() */
    gocc_chan_close(mail_server); /* the mailer may go on: it drains, then its range ends */
    check(example_tasks_exit_within(5 * GOCC_SECOND), "every receiver's range ended after Close");

    event_t late = {.type = "user.login"};
    int after = pubsub_publish(&ps, &late);
    errno = 0;
    gocc_chan_t *sub_after = pubsub_subscribe(&ps, "user.login", 1);
    int sub_errno = errno;
    check(after == GOCC_ECLOSED, "Publish after Close is refused");
    check(sub_after == NULL && sub_errno == EPIPE, "Subscribe after Close is refused");
    gocc_chan_release(sub_after);

    long got_total = 0;
    for (int i = 0; i < 3; i++) {
        subscriber_t *s = &subs[i];
        long published = strcmp(s->type, "user.login") == 0 ? LOGIN_PUBLISHERS * LOGINS_EACH
                                                            : LOGOUTS;
        got_total += s->got;
        check(s->got + (long)s->dropped == published, "delivered + dropped == published");
        check(s->wrong_type == 0, "a subscriber only got events of its type");
        check(s->out_of_order == 0, "events arrived in order per publisher");
        printf("B17 %s (%s, buffer %zu): delivered %ld + dropped %llu = %ld published\n", s->name,
               s->type, s->buffer, s->got, (unsigned long long)s->dropped, published);
    }
    check(errors == 0, "every Publish before Close succeeded");
    check(reached == got_total, "what Publish delivered is what the receivers got");
    check(subs[0].dropped == 0 && subs[0].got == LOGIN_PUBLISHERS * LOGINS_EACH,
          "audit, with room for the burst, got every login");
    check(subs[1].dropped > 0, "the stuck mailer dropped logins instead of slowing anyone");
    check(subs[2].got == LOGOUTS, "session got every logout");
    if (subs[0].got > 0)
        printf("B17 audit: User %s logged in (first of %ld); mailer was stuck after User %s\n",
               subs[0].first.data.user_id, subs[0].got, subs[1].first.data.user_id);
    printf("B17 close: every range ended; Publish after Close: %s\n",
           after == GOCC_ECLOSED ? "refused (closed)" : "ACCEPTED");

    for (int i = 0; i < 3; i++) gocc_chan_release(subs[i].events);
    pubsub_free(&ps);
    gocc_chan_release(mail_server);
}

int main(void) {
    b17_pubsub();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B17 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
