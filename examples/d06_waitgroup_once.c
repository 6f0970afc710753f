/*
 * d06_waitgroup_once.c - D06 (cheat sheet): sync.WaitGroup and sync.Once.
 *
 * d06_waitgroup: for _, item := range items { wg.Add(1); go func(it Item)
 *   { defer wg.Done(); process(it) }(item) }; wg.Wait(). The closure's
 *   by-value parameter becomes a pointer to that item's own slot; Wait is
 *   the edge that makes every task's writes visible to main. The items
 *   take 0 to 15 ms each, and the last one 100 ms: Wait returns only after
 *   the slowest, so its result is there too.
 * d06_once: GetConfig() { once.Do(func() { instance = loadConfig() });
 *   return instance }, called by 8 tasks at the same moment: loadConfig
 *   runs exactly once, the callers that arrive while it runs wait for it,
 *   and all of them get the same instance. gocc_once_do's fn returns an int
 *   (every caller gets it: Go's OnceValue), used here for loadConfig's
 *   error.
 *
 * Checks: every item processed once and the results visible after Wait;
 * loadConfig ran once and every caller saw the same, complete config;
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 *
 * Go -> C: sync.WaitGroup and sync.Once are the value types
 * gocc_waitgroup_t and gocc_once_t (on the stack or static, no allocation).
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D06", ok, what)

/* ---- D06: WaitGroup ---------------------------------------------------- */

#define ITEMS 16

typedef struct item {
    int value;
    int result;    /* written by its task, read by main after Wait */
    int processed; /* ditto */
    gocc_waitgroup_t *wg;
} item_t;

static int process_item(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    item_t *it = arg;
    int64_t takes = it->value == ITEMS ? 100 : it->value - 1; /* ms: the last is the slowest */
    gocc_sleep(takes * GOCC_MILLISECOND, NULL);
    it->result = it->value * it->value; /* process(it) */
    it->processed++;
    gocc_waitgroup_done(it->wg); /* defer wg.Done() */
    return 0;
}

static void d06_waitgroup(void) {
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    item_t items[ITEMS];
    for (int i = 0; i < ITEMS; i++) {
        items[i] = (item_t){.value = i + 1, .wg = &wg};
        gocc_waitgroup_add(&wg, 1); /* before go */
        if (gocc_go(process_item, NULL, &items[i]) != 0) process_item(NULL, &items[i]);
    }
    int err = gocc_waitgroup_wait(&wg, NULL);
    int right = 0;
    for (int i = 0; i < ITEMS; i++)
        right += items[i].processed == 1 && items[i].result == (i + 1) * (i + 1);
    check(err == 0 && right == ITEMS, "every item processed once, visible after Wait");
    printf("D06 WaitGroup: Wait returned after %d tasks; %d of %d results right\n", ITEMS, right,
           ITEMS);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the item tasks returned");
}

/* ---- D06: Once ------------------------------------------------------------ */

#define CALLERS 8

typedef struct config {
    char name[16];
    int workers;
} config_t;

static gocc_once_t once = GOCC_ONCE_INIT;
static config_t *instance;
static atomic_int loads;

static int load_config(void *arg) {
    (void)arg;
    atomic_fetch_add(&loads, 1);
    gocc_sleep(5 * GOCC_MILLISECOND, NULL); /* slow: the other callers must wait */
    config_t *c = malloc(sizeof *c);
    if (!c) return GOCC_ENOMEM;
    *c = (config_t){"prod", 8};
    instance = c;
    return 0;
}

/* func GetConfig() *Config */
static config_t *get_config(void) {
    if (gocc_once_do(&once, load_config, NULL) != 0) return NULL;
    return instance;
}

typedef struct caller {
    gocc_chan_t *start;
    const config_t *got; /* out */
} caller_t;

static int call_get_config(gocc_ctx_t *ctx, void *arg) {
    caller_t *c = arg;
    gocc_chan_recv(c->start, NULL, ctx); /* everybody at once */
    c->got = get_config();
    return 0;
}

static void d06_once(void) {
    gocc_chan_t *start = gocc_chan_new(0, 0);
    caller_t callers[CALLERS];
    int started = 0;
    for (int i = 0; start && i < CALLERS; i++) {
        callers[i] = (caller_t){start, NULL};
        started += gocc_go(call_get_config, NULL, &callers[i]) == 0;
    }
    gocc_chan_close(start);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the callers returned");
    int same = 0;
    for (int i = 0; i < started; i++)
        same += callers[i].got != NULL && callers[i].got == instance &&
                callers[i].got->workers == 8;
    check(started == CALLERS && atomic_load(&loads) == 1 && same == CALLERS,
          "loadConfig ran once; every caller got the same complete instance");
    printf("D06 Once: %d concurrent GetConfig calls, loadConfig ran %d time%s, %d callers got "
           "the same instance (%s, %d workers)\n",
           started, atomic_load(&loads), atomic_load(&loads) == 1 ? "" : "s", same,
           instance ? instance->name : "-", instance ? instance->workers : 0);
    free(instance);
    instance = NULL;
    gocc_chan_release(start);
}

int main(void) {
    d06_waitgroup();
    d06_once();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D06 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
