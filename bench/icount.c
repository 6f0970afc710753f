/*
 * icount.c - the library's non-blocking paths, run N times each, so that
 * callgrind can count the instructions one operation costs in a release
 * build (bench/icount.sh runs it twice, with N and with 0, and prints
 * (total(N) - total(0)) / N per path). Timing is noise on a shared machine;
 * instruction counts are not, so this is how a change to a hot path proves
 * it did not make the path longer.
 *
 * Usage: icount PATH N   (PATH: sendrecv, select_try, try, pool, wg, once)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gocc.h"

static int once_fn(void *arg) {
    (void)arg;
    return 0;
}

static void *pool_new_fn(void *ud) {
    (void)ud;
    return malloc(64);
}

static void pool_free_fn(void *obj, void *ud) {
    (void)ud;
    free(obj);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: icount PATH N\n");
        return 2;
    }
    const char *path = argv[1];
    long n = atol(argv[2]);
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 16);
    gocc_chan_t *empty = gocc_chan_new(sizeof(int), 1);
    gocc_pool_t *pool = gocc_pool_new(pool_new_fn, pool_free_fn, NULL);
    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    gocc_once_t once = GOCC_ONCE_INIT;
    if (ch == NULL || empty == NULL || pool == NULL) return 1;
    gocc_pool_put(pool, gocc_pool_get(pool));
    (void)gocc_once_do(&once, once_fn, NULL);
    int v = 1, out = 0;
    if (strcmp(path, "sendrecv") == 0) {
        for (long i = 0; i < n; i++) {
            if (gocc_chan_send(ch, &v, NULL) != 0 || gocc_chan_recv(ch, &out, NULL) != 0) return 1;
        }
    } else if (strcmp(path, "select_try") == 0) {
        gocc_case_t c = {.ch = empty, .dir = GOCC_RECV, .elem = &out};
        for (long i = 0; i < n; i++) {
            if (gocc_select_try(&c, 1) != GOCC_EAGAIN) return 1;
        }
    } else if (strcmp(path, "try") == 0) {
        for (long i = 0; i < n; i++) {
            if (gocc_chan_try_send(ch, &v) != 0 || gocc_chan_try_recv(ch, &out) != 0) return 1;
        }
    } else if (strcmp(path, "pool") == 0) {
        for (long i = 0; i < n; i++) gocc_pool_put(pool, gocc_pool_get(pool));
    } else if (strcmp(path, "wg") == 0) {
        for (long i = 0; i < n; i++) {
            (void)gocc_waitgroup_add(&wg, 1);
            gocc_waitgroup_done(&wg);
        }
    } else if (strcmp(path, "once") == 0) {
        for (long i = 0; i < n; i++) (void)gocc_once_do(&once, once_fn, NULL);
    } else {
        fprintf(stderr, "icount: unknown path %s\n", path);
        return 2;
    }
    gocc_pool_free(pool);
    gocc_chan_release(ch);
    gocc_chan_release(empty);
    return 0;
}
