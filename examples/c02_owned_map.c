/*
 * c02_owned_map.c - port of C02 (production guide, "Channels vs mutexes": one
 * goroutine owns the map, vs a mutex-protected SafeMap).
 *
 * Two correct ways to share a map, run on the same workload:
 *  - OWNED: mapOwner is the only task that touches the map. Others send it
 *    a request {key, reply channel} and wait for the answer on their reply
 *    channel; the owner stops when its context is done. The Go snippet
 *    shows only the read (r.reply <- m[r.key]); a map nobody can write is
 *    not much of a lesson, so the request also carries an op: GET (Go's
 *    m[key], 0 when absent) or ADD (m[key] += delta, reply the new value).
 *  - SAFEMAP: the map in a struct with a read-write lock (Go's
 *    sync.RWMutex is pthread_rwlock_t): Get takes the read lock, Add the
 *    write lock.
 * Four client tasks each make 200 ADDs spread over four keys, then main
 * reads the keys back. Both ways must give exactly 200 per key.
 *
 * Go to C: map[string]int becomes a small fixed-capacity table written for
 * this element type (string key, int value), enough for a handful of keys;
 * the request struct travels through the channel by value, with the key
 * copied into a char array and the reply channel borrowed from the client
 * (which waits for the reply, so it outlives the request). The owner's
 * `select { case <-ctx.Done(): return; case r := <-in: ... }` is one receive
 * with the context. No generics in the Go.
 *
 * Checks: each key ends at exactly CLIENTS*OPS/KEYS in both versions, every
 * request got its reply, and every task (clients and the owner, which
 * returns on cancel) has returned: gocc_tasks_live() == 0. Exit status 0
 * when all hold, else 1.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t */
#include <gocc.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define CLIENTS 4
#define OPS 200
#define KEYS 4
#define MAP_CAP 16

static const char *const keys[KEYS] = {"a", "b", "c", "d"};

#define check(ok, what) example_check("C02", ok, what)

/* ---- map[string]int, just big enough ------------------------------------ */

typedef struct int_map {
    size_t n;
    struct {
        char key[16];
        int value;
    } e[MAP_CAP];
} int_map_t;

/* The value slot for key; created (0) when `create` and there is room. */
static int *map_slot(int_map_t *m, const char *key, bool create) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].key, key) == 0) return &m->e[i].value;
    if (!create || m->n == MAP_CAP || strlen(key) >= sizeof m->e[0].key) return NULL;
    snprintf(m->e[m->n].key, sizeof m->e[0].key, "%s", key);
    m->e[m->n].value = 0;
    return &m->e[m->n++].value;
}

/* ---- OWNED: one task owns the map --------------------------------------- */

enum op { GET, ADD };

typedef struct req {
    enum op op;
    char key[16];
    int delta;
    gocc_chan_t *reply; /* borrowed from the client; capacity 1 */
} req_t;

static int map_owner(gocc_ctx_t *ctx, void *arg) {
    gocc_chan_t *in = arg; /* the task's own reference */
    int_map_t m = {0};     /* m := map[string]int{}: nobody else sees it */
    req_t r;
    while (gocc_chan_recv(in, &r, ctx) == 0) { /* until ctx.Done() */
        int *slot = map_slot(&m, r.key, r.op == ADD);
        if (slot && r.op == ADD) *slot += r.delta;
        int v = slot ? *slot : 0;
        gocc_chan_send(r.reply, &v, ctx); /* room for it: never blocks */
    }
    gocc_chan_release(in);
    return 0;
}

/* A client's call: send the request, wait for the answer. */
static int owned_call(gocc_chan_t *in, gocc_chan_t *reply, enum op op, const char *key, int delta,
                      gocc_ctx_t *ctx, int *out) {
    req_t r = {.op = op, .delta = delta, .reply = reply};
    snprintf(r.key, sizeof r.key, "%s", key);
    int err = gocc_chan_send(in, &r, ctx);
    return err ? err : gocc_chan_recv(reply, out, ctx);
}

/* ---- SAFEMAP: a read-write lock around the map -------------------------- */

typedef struct safe_map {
    pthread_rwlock_t mu;
    int_map_t m;
} safe_map_t;

static bool safe_map_get(safe_map_t *s, const char *k, int *v) {
    pthread_rwlock_rdlock(&s->mu);
    int *slot = map_slot(&s->m, k, false);
    bool ok = slot != NULL;
    *v = ok ? *slot : 0;
    pthread_rwlock_unlock(&s->mu);
    return ok;
}

static int safe_map_add(safe_map_t *s, const char *k, int delta) {
    pthread_rwlock_wrlock(&s->mu);
    int *slot = map_slot(&s->m, k, true);
    int v = slot ? (*slot += delta) : 0;
    pthread_rwlock_unlock(&s->mu);
    return v;
}

/* ---- the clients -------------------------------------------------------- */

typedef struct client_arg {
    int id;
    gocc_chan_t *in;  /* OWNED: the owner's request channel (own reference) */
    safe_map_t *safe; /* SAFEMAP */
    gocc_waitgroup_t *wg;
    int answered; /* replies received; read after wg wait */
} client_arg_t;

static int client(gocc_ctx_t *ctx, void *arg) {
    client_arg_t *a = arg;
    gocc_chan_t *reply = a->in ? gocc_chan_new(sizeof(int), 1) : NULL;
    for (int j = 0; j < OPS; j++) {
        const char *k = keys[(a->id + j) % KEYS];
        int v;
        if (a->in) {
            if (!reply || owned_call(a->in, reply, ADD, k, 1, ctx, &v) != 0) break;
        } else {
            v = safe_map_add(a->safe, k, 1);
        }
        if (v > 0) a->answered++;
    }
    gocc_chan_release(reply);
    gocc_chan_release(a->in);
    gocc_waitgroup_done(a->wg);
    return 0;
}

/* Run the clients against the owner (in != NULL) or the SafeMap. */
static bool run_clients(gocc_ctx_t *ctx, gocc_chan_t *in, safe_map_t *safe) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    client_arg_t args[CLIENTS];
    bool ok = true;
    for (int c = 0; c < CLIENTS; c++) {
        args[c] = (client_arg_t){c, gocc_chan_retain(in), safe, &wg, 0};
        gocc_waitgroup_add(&wg, 1);
        if (gocc_go(client, ctx, &args[c]) != 0) {
            gocc_chan_release(in);
            gocc_waitgroup_done(&wg);
            args[c].answered = -1;
        }
    }
    gocc_waitgroup_wait(&wg, NULL);
    for (int c = 0; c < CLIENTS; c++) ok &= args[c].answered == OPS;
    return ok;
}

static void report(const char *what, const int got[KEYS]) {
    printf("C02 %s ->", what);
    for (int k = 0; k < KEYS; k++) printf(" %s=%d", keys[k], got[k]);
    printf("\n");
    for (int k = 0; k < KEYS; k++)
        check(got[k] == CLIENTS * OPS / KEYS, "each key counted exactly");
}

int main(void) {
    int got[KEYS];

    /* OWNED */
    gocc_ctx_t *ctx = gocc_ctx_with_cancel(NULL);
    gocc_chan_t *in = gocc_chan_new(sizeof(req_t), 0);
    gocc_chan_t *reply = gocc_chan_new(sizeof(int), 1);
    bool owner_started = false;
    if (ctx && in && reply) {
        gocc_chan_retain(in); /* the owner's own reference */
        owner_started = gocc_go(map_owner, ctx, in) == 0;
        if (!owner_started) gocc_chan_release(in);
    }
    if (owner_started) {
        check(run_clients(ctx, in, NULL), "every client request was answered");
        for (int k = 0; k < KEYS; k++)
            if (owned_call(in, reply, GET, keys[k], 0, ctx, &got[k]) != 0) got[k] = -1;
        int missing = 0;
        owned_call(in, reply, GET, "zz", 0, ctx, &missing);
        check(missing == 0, "a missing key reads as 0, as m[key] does");
        report("owned map: 4 clients x 200 adds as requests to the owner task", got);
    } else {
        check(false, "started the map owner");
    }
    /* The owner waits in its receive now (every request was answered):
     * make sure it is parked there, so the cancel below is what ends it
     * and not a check of ctx made before it blocked. */
    check(!owner_started || example_wait_blocked(1, 5 * GOCC_SECOND),
          "the owner blocked waiting for requests");
    gocc_ctx_cancel(ctx); /* the owner returns */
    gocc_ctx_release(ctx);
    gocc_chan_release(in);
    gocc_chan_release(reply);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the owner returned on cancel");

    /* SAFEMAP */
    safe_map_t safe = {.m = {0}};
    if (pthread_rwlock_init(&safe.mu, NULL) == 0) {
        check(run_clients(NULL, NULL, &safe), "every SafeMap add went through");
        for (int k = 0; k < KEYS; k++)
            if (!safe_map_get(&safe, keys[k], &got[k])) got[k] = -1;
        int missing;
        check(!safe_map_get(&safe, "zz", &missing) && missing == 0,
              "Get reports a missing key with ok == false");
        report("mutex map: the same through a SafeMap (pthread rwlock)", got);
        pthread_rwlock_destroy(&safe.mu);
    } else {
        check(false, "made the rwlock");
    }

    check(example_tasks_exit_within(5 * GOCC_SECOND), "no task left (gocc_tasks_live() == 0)");
    if (example_failures) printf("C02 owned map: FAILED\n");
    return example_failures ? 1 : 0;
}
