/*
 * b11_memory_budget.c - B11 (chapter 9, "Semaphore Pattern", "Dynamic
 * resource allocation"): a weighted semaphore as a memory budget. Each job
 * of an errgroup first acquires as many megabytes as it needs from a 1024
 * MB semaphore, runs, and gives them back.
 *
 *   memSem := semaphore.NewWeighted(1024)  // 1GB total
 *   g, ctx := errgroup.WithContext(ctx)
 *   for _, job := range jobs { job := job; g.Go(func() error {
 *       memNeeded := int64(job.MemoryMB())
 *       if err := memSem.Acquire(ctx, memNeeded); err != nil { return err }
 *       defer memSem.Release(memNeeded)
 *       return job.Run(ctx) }) }
 *   return g.Wait()
 *
 * b11_budget: 60 jobs of 64 to 1024 MB (a 1024 MB job needs the whole
 *   budget to itself). A gauge adds each job's megabytes while it runs; its
 *   maximum must never pass 1024, however the jobs interleave. Jobs run a
 *   millisecond or two.
 * b11_not_starved: the budget is FIFO, so a big job is not starved by
 *   small ones. With 512 MB held by a running job, a 1024 MB job waits for
 *   the whole budget. While it waits, a 64 MB job that would fit in the
 *   free 512 MB is held behind it (try-acquire refuses it: no barging), and
 *   when the 512 MB come back the big job goes first, then the small one.
 *   A semaphore that let small jobs pass would keep the big one waiting as
 *   long as small ones kept coming.
 * b11_too_big: one job asks for 2048 MB, more than the whole budget: its
 *   Acquire can never succeed and waits for its context. With the caller's
 *   context timing out after 50 ms, Wait returns "context deadline
 *   exceeded"; the small jobs beside it still ran.
 *
 * Go -> C: *semaphore.Weighted is gocc_sem_t (x/sync semantics: FIFO, so a
 * big job waiting at the head is not starved by small ones behind it);
 * Acquire(ctx, n) / Release(n) are gocc_sem_acquire / gocc_sem_release;
 * the errgroup is gocc_group_t; `job := job` is a pointer to the job's own
 * array element. Job.Run is a short sleep that watches ctx.
 *
 * Checks: all 60 jobs ran, Wait nil, the megabytes in use never passed
 * 1024 and none were left taken (try-acquire of the full 1024 succeeds at
 * the end); while the 1024 MB job waits, a 64 MB try-acquire that fits is
 * refused (within 2 s of the big job starting) and the big job acquires
 * before the small one that came after it; the oversized job's Acquire
 * ended with GOCC_EDEADLINE and Wait returned it. gocc_tasks_live() == 0
 * at the end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B11", ok, what)

#define BUDGET_MB 1024
#define JOBS 60

typedef struct budget {
    gocc_sem_t *mem;                /* memSem: weight = megabytes */
    atomic_long in_use, max_in_use; /* MB held by running jobs */
    atomic_int ran, refused;
    atomic_int refused_err; /* the error a refused Acquire returned */
    atomic_int grants;      /* Acquires that succeeded, in order */
} budget_t;

typedef struct job {
    budget_t *b;
    long memory_mb; /* job.MemoryMB() */
    int64_t run_ns;
    int order; /* this job's Acquire was the order-th to succeed */
} job_t;

static void note_max(atomic_long *max, long now) {
    long m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now)) {
    }
}

static int run_job(gocc_ctx_t *ctx, void *arg) {
    job_t *j = arg;
    budget_t *b = j->b;
    int err = gocc_sem_acquire(b->mem, j->memory_mb, ctx); /* memSem.Acquire(ctx, memNeeded) */
    if (err != 0) {
        atomic_fetch_add(&b->refused, 1);
        atomic_store(&b->refused_err, err);
        return err;
    }
    j->order = atomic_fetch_add(&b->grants, 1);
    note_max(&b->max_in_use, atomic_fetch_add(&b->in_use, j->memory_mb) + j->memory_mb);
    err = gocc_sleep(j->run_ns, ctx); /* job.Run(ctx) */
    atomic_fetch_add(&b->ran, 1);
    atomic_fetch_sub(&b->in_use, j->memory_mb);
    gocc_sem_release(b->mem, j->memory_mb); /* defer memSem.Release(memNeeded) */
    return err;
}

/* func processWithResources(ctx, jobs) error */
static int process_with_resources(gocc_ctx_t *ctx, job_t *jobs, int n, int *started) {
    gocc_group_t *g = gocc_group_new(ctx);
    *started = 0;
    if (!g) return GOCC_ENOMEM;
    int err = 0;
    for (int i = 0; i < n && err == 0; i++)
        *started += (err = gocc_group_go(g, run_job, &jobs[i])) == 0;
    int werr = gocc_group_wait(g);
    gocc_group_free(g);
    return werr != 0 ? werr : err;
}

static bool budget_init(budget_t *b) {
    *b = (budget_t){.mem = gocc_sem_new(BUDGET_MB)};
    return b->mem != NULL;
}

/* No weight left taken: the whole budget can be had at once. */
static bool budget_all_free(budget_t *b) {
    bool ok = gocc_sem_try_acquire(b->mem, BUDGET_MB);
    if (ok) gocc_sem_release(b->mem, BUDGET_MB);
    return ok;
}

static void b11_budget(void) {
    static budget_t b;
    static job_t jobs[JOBS];
    static const long sizes[] = {64, 128, 256, 512, 300, 700, 1024, 100, 450, 200};
    if (!budget_init(&b)) {
        check(false, "made the semaphore");
        return;
    }
    long total = 0;
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (job_t){&b, sizes[i % 10], (1 + i % 2) * GOCC_MILLISECOND, -1};
        total += jobs[i].memory_mb;
    }
    int started;
    int err = process_with_resources(NULL, jobs, JOBS, &started);
    long max = atomic_load(&b.max_in_use);
    check(err == 0 && started == JOBS && atomic_load(&b.ran) == JOBS, "all 60 jobs ran, Wait nil");
    check(max <= BUDGET_MB, "never more than 1024 MB in use at once");
    check(atomic_load(&b.in_use) == 0 && budget_all_free(&b),
          "the whole budget is free at the end");
    printf("B11 budget: %d jobs asking %ld MB in all (64 to 1024 each) under a %d MB budget: "
           "%d ran, at most %ld MB in use at once, Wait() = %s\n",
           JOBS, total, BUDGET_MB, atomic_load(&b.ran), max, err ? gocc_strerror(err) : "nil");
    gocc_sem_free(b.mem);
}

static void b11_not_starved(void) {
    static budget_t b;
    static job_t big, small;
    gocc_group_t *g = NULL;
    if (!budget_init(&b) || (g = gocc_group_new(NULL)) == NULL ||
        gocc_sem_acquire(b.mem, 512, NULL) != 0) { /* a running job holds 512 MB */
        check(false, "made the semaphore and the group");
        gocc_group_free(g);
        gocc_sem_free(b.mem);
        return;
    }
    big = (job_t){&b, BUDGET_MB, GOCC_MILLISECOND, -1};
    small = (job_t){&b, 64, GOCC_MILLISECOND, -1};
    int started = gocc_group_go(g, run_job, &big) == 0;
    /* Once the big job waits, a small request that fits is refused. */
    bool held_back = false;
    int64_t give_up = gocc_now() + 2 * GOCC_SECOND;
    while (started && !held_back && gocc_now() < give_up) {
        if (gocc_sem_try_acquire(b.mem, 64)) { /* the big job is not waiting yet */
            gocc_sem_release(b.mem, 64);
            gocc_sleep(GOCC_MILLISECOND, NULL);
        } else {
            held_back = true;
        }
    }
    started += gocc_group_go(g, run_job, &small) == 0; /* comes after the big one */
    gocc_sem_release(b.mem, 512);                      /* the running job ends */
    int err = gocc_group_wait(g);
    gocc_group_free(g);
    check(started == 2 && err == 0 && atomic_load(&b.ran) == 2, "both jobs ran, Wait nil");
    check(held_back, "while the 1024 MB job waited, a 64 MB request that fits was refused");
    check(big.order == 0 && small.order == 1, "the big job acquired before the small one after it");
    printf("B11 not starved: 512 MB held, a 1024 MB job waiting: a 64 MB try-acquire %s; "
           "when the 512 MB came back the %s job acquired first\n",
           held_back ? "was refused (no barging)" : "WAS GRANTED (barging)",
           big.order == 0 ? "1024 MB" : "64 MB");
    gocc_sem_free(b.mem);
}

static void b11_too_big(void) {
    static budget_t b;
    static job_t jobs[4];
    if (!budget_init(&b)) {
        check(false, "made the semaphore");
        return;
    }
    jobs[0] = (job_t){&b, 2048, GOCC_MILLISECOND, -1}; /* more than the whole budget */
    for (int i = 1; i < 4; i++) jobs[i] = (job_t){&b, 256, GOCC_MILLISECOND, -1};
    int64_t t0 = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, 50 * GOCC_MILLISECOND);
    int started = 0; /* the big job first: it starts before the deadline */
    int err = ctx ? process_with_resources(ctx, jobs, 4, &started) : GOCC_ENOMEM;
    int64_t took = gocc_now() - t0;
    gocc_ctx_cancel(ctx);
    gocc_ctx_release(ctx);
    check(err == GOCC_EDEADLINE && atomic_load(&b.refused_err) == GOCC_EDEADLINE,
          "the 2048 MB job's Acquire waited for the deadline; Wait returned it");
    check(started >= 1 && atomic_load(&b.refused) >= 1 &&
              atomic_load(&b.ran) + atomic_load(&b.refused) == started,
          "every job started either ran or was refused");
    check(budget_all_free(&b), "the refused Acquire took no weight");
    printf("B11 too big: a 2048 MB job under a %d MB budget, 50 ms deadline: Wait() = \"%s\" "
           "after %.0f ms; %d small jobs ran\n",
           BUDGET_MB, gocc_strerror(err), (double)took / GOCC_MILLISECOND, atomic_load(&b.ran));
    gocc_sem_free(b.mem);
}

int main(void) {
    b11_budget();
    b11_not_starved();
    b11_too_big();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B11 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
