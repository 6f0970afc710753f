/*
 * b03_once.c - B03 (chapter 9, "sync.Once: Guaranteed Single Execution"):
 * a lazily built singleton, and OnceError, a Once whose function can fail
 * and whose error every caller gets.
 *
 * b03_singleton: GetInstance() { once.Do(func() { instance =
 *   &Singleton{data: loadData()} }); return instance }, called by 8 tasks
 *   released at the same moment. loadData is slow (5 ms), so the callers
 *   that arrive while it runs must wait for it rather than see a NULL or
 *   half-built instance.
 * b03_once_error: type OnceError struct { once sync.Once; err error } with
 *   Do(f) { o.once.Do(func() { o.err = f() }); return o.err }, and
 *   Initialize() = initOnce.Do(connectDB, then loadConfig). Run twice by 8
 *   racing tasks: once with connectDB failing (connection refused), once
 *   with it working. Then what the seed leaves unsaid: the error is
 *   sticky. A call made after the database came back still gets the first
 *   error and connectDB is not tried again; retrying means a new
 *   OnceError.
 *
 * Go -> C: sync.Once is gocc_once_t, a value type (GOCC_ONCE_INIT, static
 * here like Go's package-level var). gocc_once_do's function returns an
 * int that every caller gets back (Go 1.21's sync.OnceValue), so OnceError
 * is the seed's struct written out (once_error_do stores f's result in
 * o->err inside the once, as the Go does) and gocc_once_do's own return
 * value is checked to agree with it. The instance and o->err are plain
 * fields: gocc_once_do returns only after the first call's function
 * returned, and that return orders its writes before every caller's read
 * (Go's "the return from f happens before the return of any Do"). Errors
 * are negative errno codes (connectDB's ECONNREFUSED).
 *
 * Checks: loadData ran once and all 8 callers got the same, complete
 * instance; in each OnceError run connectDB ran once, all 8 callers got
 * the same result (-ECONNREFUSED; then 0 with loadConfig run once), and
 * o->err agrees; the late call after the failure still gets the error
 * without a second connectDB. gocc_tasks_live() == 0. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B03", ok, what)

#define CALLERS 8

/* One of CALLERS tasks that call fn at the same moment (race() below). */
typedef struct racer {
    gocc_chan_t *start; /* closed to release everyone at once */
    void (*fn)(struct racer *);
    const void *got; /* out: what GetInstance returned */
    int err;         /* out: what Initialize returned */
    int once_rc;     /* out: what gocc_once_do itself returned */
} racer_t;

static int racer_task(gocc_ctx_t *ctx, void *arg) {
    racer_t *r = arg;
    gocc_chan_recv(r->start, NULL, ctx);
    r->fn(r);
    return 0;
}

/* Start CALLERS racers of fn, release them together, wait for them all;
 * returns how many started. */
static int race(racer_t racers[CALLERS], void (*fn)(racer_t *)) {
    gocc_chan_t *start = gocc_chan_new(0, 0);
    gocc_group_t *g = gocc_group_new(NULL);
    int started = 0;
    for (int i = 0; start && g && i < CALLERS; i++) {
        racers[i] = (racer_t){.start = start, .fn = fn};
        started += gocc_group_go(g, racer_task, &racers[i]) == 0;
    }
    gocc_chan_close(start);
    gocc_group_wait(g); /* every racer's writes are visible after this */
    gocc_group_free(g);
    gocc_chan_release(start);
    return started;
}

/* ---- the singleton ------------------------------------------------------ */

typedef struct singleton {
    int data[64]; /* loadData's result: data[i] == i * i */
} singleton_t;

static gocc_once_t once = GOCC_ONCE_INIT;
static singleton_t *instance; /* written once, inside the once */
static atomic_int load_data_calls;

static int build_instance(void *arg) { /* once.Do(func() { instance = ... }) */
    (void)arg;
    atomic_fetch_add(&load_data_calls, 1);
    gocc_sleep(5 * GOCC_MILLISECOND, NULL); /* expensive initialization */
    singleton_t *s = malloc(sizeof *s);
    if (!s) return GOCC_ENOMEM;
    for (int i = 0; i < 64; i++) s->data[i] = i * i; /* loadData() */
    instance = s;
    return 0;
}

static singleton_t *get_instance(void) {
    gocc_once_do(&once, build_instance, NULL);
    return instance;
}

static void call_get_instance(racer_t *r) { r->got = get_instance(); }

static void b03_singleton(void) {
    racer_t racers[CALLERS];
    int started = race(racers, call_get_instance);
    int same = 0;
    for (int i = 0; i < started; i++) {
        const singleton_t *s = racers[i].got;
        same += s != NULL && s == instance && s->data[63] == 63 * 63;
    }
    check(started == CALLERS && atomic_load(&load_data_calls) == 1 && same == CALLERS,
          "loadData ran once; all 8 callers got the same complete instance");
    printf("B03 singleton: %d racing GetInstance calls, loadData ran %d time(s), %d got the "
           "same instance\n",
           started, atomic_load(&load_data_calls), same);
    free(instance);
}

/* ---- OnceError ------------------------------------------------------------ */

typedef struct once_error {
    gocc_once_t once;
    int err; /* f's result; written once, inside the once */
} once_error_t;

/* The closure Do hands to once.Do: o and f, on the caller's stack. */
typedef struct once_error_call {
    once_error_t *o;
    int (*f)(void);
} once_error_call_t;

static int once_error_body(void *arg) { /* func() { o.err = f() } */
    once_error_call_t *c = arg;
    c->o->err = c->f();
    return c->o->err;
}

/* func (o *OnceError) Do(f func() error) error. *rc gets gocc_once_do's own
 * result, which must be the same. */
static int once_error_do(once_error_t *o, int (*f)(void), int *rc) {
    once_error_call_t c = {o, f};
    *rc = gocc_once_do(&o->once, once_error_body, &c);
    return o->err;
}

static atomic_bool db_up;
static atomic_int connect_calls, config_calls;

static int connect_db(void) {
    atomic_fetch_add(&connect_calls, 1);
    gocc_sleep(2 * GOCC_MILLISECOND, NULL); /* the dial takes a while */
    return atomic_load(&db_up) ? 0 : -ECONNREFUSED;
}

static int load_config(void) {
    atomic_fetch_add(&config_calls, 1);
    return 0;
}

static int initialization(void) { /* the func() error given to Do */
    int err = connect_db();
    if (err != 0) return err;
    return load_config();
}

static once_error_t *init_once; /* var initOnce OnceError (one per run here) */

static int initialize(int *rc) { return once_error_do(init_once, initialization, rc); }

static void call_initialize(racer_t *r) { r->err = initialize(&r->once_rc); }

/* 8 racing Initialize calls; true when all got `want` from Do and from
 * gocc_once_do alike. */
static bool all_got(racer_t racers[CALLERS], int started, int want) {
    int same = 0;
    for (int i = 0; i < started; i++) same += racers[i].err == want && racers[i].once_rc == want;
    return started == CALLERS && same == CALLERS;
}

static void b03_once_error(void) {
    once_error_t failing = {.once = GOCC_ONCE_INIT}, working = {.once = GOCC_ONCE_INIT};
    racer_t racers[CALLERS];

    atomic_store(&db_up, false);
    init_once = &failing;
    int started = race(racers, call_initialize);
    check(all_got(racers, started, -ECONNREFUSED) && failing.err == -ECONNREFUSED,
          "every caller got connectDB's error");
    check(atomic_load(&connect_calls) == 1 && atomic_load(&config_calls) == 0,
          "connectDB tried once, loadConfig never");
    printf("B03 OnceError: DB down: %d racing Initialize calls all returned \"%s\"; connectDB "
           "ran %d time(s), loadConfig %d\n",
           started, strerror(-racers[0].err), atomic_load(&connect_calls),
           atomic_load(&config_calls));

    atomic_store(&db_up, true); /* the database comes back... */
    int rc, late = initialize(&rc);
    check(late == -ECONNREFUSED && rc == late && atomic_load(&connect_calls) == 1,
          "the error is sticky: a later call gets it without retrying connectDB");
    printf("B03 OnceError: DB back up, Initialize again: \"%s\" (connectDB still ran %d "
           "time): a failed Once is not retried\n",
           strerror(-late), atomic_load(&connect_calls));

    init_once = &working; /* ...and a new OnceError tries again */
    started = race(racers, call_initialize);
    check(all_got(racers, started, 0) && working.err == 0, "every caller got nil");
    check(atomic_load(&connect_calls) == 2 && atomic_load(&config_calls) == 1,
          "the new OnceError ran connectDB and loadConfig once");
    printf("B03 OnceError: a new OnceError: %d racing calls all returned nil; connectDB ran "
           "once more, loadConfig once\n",
           started);
}

int main(void) {
    b03_singleton();
    b03_once_error();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B03 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
