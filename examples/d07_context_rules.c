/*
 * d07_context_rules.c - D07 (cheat sheet): the context rules.
 *
 * d07_propagate: "always first parameter", "propagate always". A request
 *   handler with a 10 ms deadline calls Service.Process(ctx, data), which
 *   calls db.QueryContext(ctx, query), a 50 ms local slow operation. Each
 *   layer derives its own context with its own, longer timeout (the
 *   service 1 s per call, the driver 2 s per query), so the query runs
 *   under the request's great-grandchild. Passed all the way down, the
 *   request's deadline still stops the query at 10 ms: a cancel reaches
 *   every descendant. A service that drops it (calls the query with
 *   context.Background()) keeps the query running for 50 ms after the
 *   caller gave up.
 * d07_not_in_struct: "never store a context in a struct". BAD: a Service
 *   keeps the ctx it was made with (request 1's); request 1 ends, and
 *   request 2, still alive, fails with "context canceled" because the
 *   service queries with the stored one (and who releases it is hidden).
 *   GOOD: Process(ctx, data) uses each request's own context.
 * d07_values: request-scoped values: the handler puts a request ID on the
 *   context (the key is the address of a private static, like Go's
 *   unexported key type); a function three calls down reads it through the
 *   derived timeout context; an unknown key gives NULL.
 * "context.Background() in main, entry point only": main is the only place
 * that uses gocc_ctx_background(), as the root of every request context.
 *
 * Checks: the errors of each call, the value read, gocc_tasks_live() == 0.
 * Exit 1 if wrong.
 *
 * Go -> C: context.Context is a gocc_ctx_t *, the first parameter by
 * convention; an error is a negative errno (GOCC_EDEADLINE, ...).
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D07", ok, what)

static double ms_since(int64_t t0) { return (double)(gocc_now() - t0) / 1e6; }

/* ---- the layers: handler -> service -> db -------------------------------- */

typedef struct db {
    int64_t query_cost;
} db_t;

/* db.QueryContext(ctx, query): a slow operation that honours ctx, under
 * the driver's own query timeout: ctx, cancel := context.WithTimeout(ctx,
 * 2*time.Second); defer cancel(). */
static int db_query(gocc_ctx_t *ctx, db_t *db, const char *query) {
    (void)query;
    gocc_ctx_t *qctx = gocc_ctx_with_timeout(ctx, 2 * GOCC_SECOND);
    if (!qctx) return GOCC_ENOMEM;
    int err = gocc_sleep(db->query_cost, qctx);
    gocc_ctx_cancel(qctx);
    gocc_ctx_release(qctx);
    return err;
}

typedef struct service {
    db_t *db;
} service_t;

/* GOOD: func (s *Service) Process(ctx context.Context, data Data) error,
 * with the service's own 1 s limit per call derived from ctx. */
static int service_process(gocc_ctx_t *ctx, service_t *s, const char *data) {
    gocc_ctx_t *call = gocc_ctx_with_timeout(ctx, GOCC_SECOND);
    if (!call) return GOCC_ENOMEM;
    int err = db_query(call, s->db, data);
    gocc_ctx_cancel(call);
    gocc_ctx_release(call);
    return err;
}

/* BAD: drops the caller's context. */
static int service_process_dropping_ctx(gocc_ctx_t *ctx, service_t *s, const char *data) {
    (void)ctx;
    return db_query(gocc_ctx_background(), s->db, data);
}

/* BAD: type Service struct { ctx context.Context } */
typedef struct stored_ctx_service {
    gocc_ctx_t *ctx; /* a reference: who releases it, and when? */
    db_t *db;
} stored_ctx_service_t;

static int stored_ctx_service_process(stored_ctx_service_t *s, const char *data) {
    return db_query(s->ctx, s->db, data);
}

/* ---- D07: always first parameter; propagate always ---------------------- */

static void d07_propagate(gocc_ctx_t *root) {
    db_t db = {50 * GOCC_MILLISECOND};
    service_t svc = {&db};

    gocc_ctx_t *req = gocc_ctx_with_timeout(root, 10 * GOCC_MILLISECOND);
    int64_t t0 = gocc_now();
    int err = req ? service_process(req, &svc, "SELECT 1") : GOCC_ENOMEM;
    double ms = ms_since(t0);
    gocc_ctx_cancel(req);
    gocc_ctx_release(req);
    check(err == GOCC_EDEADLINE, "the propagated deadline stops the query");

    req = gocc_ctx_with_timeout(root, 10 * GOCC_MILLISECOND);
    t0 = gocc_now();
    int err2 = req ? service_process_dropping_ctx(req, &svc, "SELECT 1") : GOCC_ENOMEM;
    double ms2 = ms_since(t0);
    int caller = gocc_ctx_err(req);
    gocc_ctx_cancel(req);
    gocc_ctx_release(req);
    check(err2 == 0 && caller == GOCC_EDEADLINE,
          "the dropped context lets the query outlive the caller's deadline");
    printf("D07 propagate: with ctx passed down, a 10 ms deadline stopped the 50 ms query at "
           "%.1f ms (\"%s\"); with it dropped, the query ran %.1f ms, past the caller's "
           "deadline\n",
           ms, gocc_strerror(err), ms2);
}

/* ---- D07: never store a context in a struct ------------------------------ */

static void d07_not_in_struct(gocc_ctx_t *root) {
    db_t db = {GOCC_MILLISECOND};
    gocc_ctx_t *req1 = gocc_ctx_with_cancel(root);
    gocc_ctx_t *req2 = gocc_ctx_with_cancel(root);
    if (!req1 || !req2) {
        check(false, "made the request contexts");
        gocc_ctx_release(req1);
        gocc_ctx_release(req2);
        return;
    }

    /* BAD: the service is made during request 1 and keeps its context. */
    stored_ctx_service_t bad = {gocc_ctx_retain(req1), &db};
    int r1 = stored_ctx_service_process(&bad, "request 1");
    gocc_ctx_cancel(req1);                                  /* request 1 is over */
    int r2 = stored_ctx_service_process(&bad, "request 2"); /* req2 is alive */
    check(r1 == 0 && r2 == GOCC_ECANCELED, "the stored context fails request 2");

    /* GOOD: the context is each call's first parameter. */
    service_t good = {&db};
    int g2 = service_process(req2, &good, "request 2");
    check(g2 == 0, "request 2 succeeds with its own context");
    printf("D07 ctx in a struct: request 2 (alive) failed with \"%s\" through a service "
           "holding request 1's ctx; passing ctx per call it returned %d\n",
           gocc_strerror(r2), g2);

    gocc_ctx_release(bad.ctx);
    gocc_ctx_cancel(req2);
    gocc_ctx_release(req1);
    gocc_ctx_release(req2);
}

/* ---- D07: request-scoped values ------------------------------------------ */

static const char request_id_key; /* unexported key: only its address matters */
static const char user_key;       /* never set */

static const char *log_prefix(gocc_ctx_t *ctx) { /* three calls down */
    const char *id = gocc_ctx_value(ctx, &request_id_key);
    return id ? id : "?";
}
static const char *repository(gocc_ctx_t *ctx) { return log_prefix(ctx); }
static const char *business(gocc_ctx_t *ctx) { return repository(ctx); }

static void d07_values(gocc_ctx_t *root) {
    char id[] = "req-42"; /* outlives the contexts that carry it */
    gocc_ctx_t *vctx = gocc_ctx_with_value(root, &request_id_key, id);
    gocc_ctx_t *ctx = vctx ? gocc_ctx_with_timeout(vctx, GOCC_SECOND) : NULL; /* derived */
    const char *seen = ctx ? business(ctx) : "?";
    void *missing = ctx ? gocc_ctx_value(ctx, &user_key) : (void *)1;
    check(strcmp(seen, "req-42") == 0 && missing == NULL,
          "the value reaches the deep call; an unknown key gives NULL");
    printf("D07 values: three calls down, through a derived timeout context, the request ID "
           "read back as \"%s\"; an unknown key gave %s\n",
           seen, missing ? "non-NULL" : "NULL");
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    gocc_ctx_release(vctx); /* value contexts cannot be cancelled, only released */
}

int main(void) {
    gocc_ctx_t *root = gocc_ctx_background(); /* the entry point, and only here */
    d07_propagate(root);
    d07_not_in_struct(root);
    d07_values(root);
    int64_t give_up = gocc_now() + 5 * GOCC_SECOND;
    while (gocc_tasks_live() > 0 && gocc_now() < give_up) gocc_sleep(GOCC_MILLISECOND, NULL);
    check(gocc_tasks_live() == 0, "gocc_tasks_live() == 0 at the end");
    printf("D07 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
