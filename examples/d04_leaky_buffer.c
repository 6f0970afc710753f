/*
 * d04_leaky_buffer.c - D04 (cheat sheet): the resource pool
 * ("leaky buffer"): a bounded channel of free buffers.
 *
 *     var pool = make(chan *Buffer, 100)
 *     getBuffer: select { case b := <-pool: reuse  default: new(Buffer) }
 *     putBuffer: b.Reset(); select { case pool <- b:  default: GC reclaims }
 *
 * Go -> C: the pool is a channel of buffer_t pointers (elem_size =
 * sizeof(buffer_t *)), the selects with default are try_recv / try_send,
 * and "the GC will reclaim" is free(): a full pool leaks the buffer out of
 * the pool, not out of the program.
 *
 * d04_clients_server: the Effective Go scene the pattern comes from: four
 *   client tasks each take a buffer, fill it and hand it to the server over
 *   an unbuffered channel; the server reads it and puts it back. 1000
 *   messages need only a handful of buffers.
 * d04_pool_full: 200 buffers come back at once to a pool of 100: 100 are
 *   kept, the other 100 are freed.
 *
 * Checks: every message arrived intact; buffers allocated == buffers in the
 * pool + buffers freed (none lost); the pool never held more than its
 * capacity; everything is freed at the end (ASan's leak check);
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "example.h"

#define check(ok, what) example_check_stdout("D04", ok, what)

#define POOL_CAP 100

typedef struct buffer {
    size_t len;
    char data[1024];
} buffer_t;

static gocc_chan_t *pool; /* chan *Buffer, capacity POOL_CAP */
static atomic_long gets, allocated, reused, freed_full;

static buffer_t *get_buffer(void) {
    buffer_t *b;
    atomic_fetch_add(&gets, 1);
    if (gocc_chan_try_recv(pool, &b) == 0) { /* case b := <-pool: */
        atomic_fetch_add(&reused, 1);
        return b;
    }
    b = malloc(sizeof *b); /* default: new(Buffer) */
    if (b) {
        b->len = 0;
        atomic_fetch_add(&allocated, 1);
    }
    return b;
}

static void put_buffer(buffer_t *b) {
    b->len = 0;                              /* b.Reset() */
    if (gocc_chan_try_send(pool, &b) != 0) { /* default: pool full */
        free(b);
        atomic_fetch_add(&freed_full, 1);
    }
}

/* Empty the pool at the end: free what it holds; return how many. */
static long drain_pool(void) {
    buffer_t *b;
    long n = 0;
    while (gocc_chan_try_recv(pool, &b) == 0) {
        free(b);
        n++;
    }
    return n;
}

/* ---- D04: clients and a server ------------------------------------------ */

#define CLIENTS 4
#define MESSAGES 250 /* per client */

typedef struct scene {
    gocc_chan_t *server_chan; /* chan *Buffer, unbuffered */
    gocc_waitgroup_t clients;
    long received, intact; /* written by the server only */
} scene_t;

typedef struct client_arg {
    scene_t *s;
    int id;
} client_arg_t;

static int client(gocc_ctx_t *ctx, void *arg) {
    client_arg_t *c = arg;
    for (int i = 0; i < MESSAGES; i++) {
        buffer_t *b = get_buffer();
        if (!b) break;
        b->len = (size_t)snprintf(b->data, sizeof b->data, "client %d message %d", c->id, i);
        if (gocc_chan_send(c->s->server_chan, &b, ctx) != 0) { /* serverChan <- b */
            put_buffer(b);
            break;
        }
    }
    gocc_waitgroup_done(&c->s->clients);
    return 0;
}

static int server(gocc_ctx_t *ctx, void *arg) {
    scene_t *s = arg;
    buffer_t *b;
    while (gocc_chan_recv(s->server_chan, &b, ctx) == 0) { /* b := <-serverChan */
        int id, i;
        s->received++;
        if (b->len > 0 && sscanf(b->data, "client %d message %d", &id, &i) == 2 && id >= 0 &&
            id < CLIENTS && i >= 0 && i < MESSAGES)
            s->intact++;
        put_buffer(b); /* reuse the buffer */
    }
    return 0;
}

static void d04_clients_server(void) {
    scene_t s = {.server_chan = gocc_chan_new(sizeof(buffer_t *), 0)};
    client_arg_t args[CLIENTS];
    bool ok = s.server_chan && gocc_go(server, NULL, &s) == 0;
    for (int c = 0; ok && c < CLIENTS; c++) {
        args[c] = (client_arg_t){&s, c};
        gocc_waitgroup_add(&s.clients, 1);
        if (gocc_go(client, NULL, &args[c]) != 0) {
            gocc_waitgroup_done(&s.clients);
            ok = false;
        }
    }
    check(ok, "started the server and the clients");
    gocc_waitgroup_wait(&s.clients, NULL);
    gocc_chan_close(s.server_chan); /* the clients were the senders; all done */
    check(example_tasks_exit_within(5 * GOCC_SECOND), "the server returned");
    check(s.received == CLIENTS * MESSAGES && s.intact == s.received,
          "every message arrived intact");
    long in_pool = (long)gocc_chan_len(pool);
    check(atomic_load(&allocated) == in_pool + atomic_load(&freed_full),
          "every allocated buffer is in the pool or freed");
    printf("D04 leaky buffer: %ld messages through %ld gets: %ld buffers allocated, %ld "
           "reuses, %ld freed by a full pool\n",
           s.received, atomic_load(&gets), atomic_load(&allocated), atomic_load(&reused),
           atomic_load(&freed_full));
    gocc_chan_release(s.server_chan);
}

/* ---- D04: pool full ----------------------------------------------------- */

static void d04_pool_full(void) {
    enum { BURST = 2 * POOL_CAP };
    static buffer_t *taken[BURST];
    long allocated_before = atomic_load(&allocated), freed_before = atomic_load(&freed_full);
    int got = 0;
    for (int i = 0; i < BURST; i++)
        if ((taken[got] = get_buffer()) != NULL) got++;
    for (int i = 0; i < got; i++) put_buffer(taken[i]);
    long freed = atomic_load(&freed_full) - freed_before;
    size_t kept = gocc_chan_len(pool);
    check(got == BURST && kept == POOL_CAP && freed == BURST - POOL_CAP,
          "a full pool keeps its capacity and frees the rest");
    printf("D04 pool full: %d buffers came back at once (%ld newly allocated): %zu kept, "
           "%ld freed (what Go leaves to the GC)\n",
           got, atomic_load(&allocated) - allocated_before, kept, freed);
}

int main(void) {
    pool = gocc_chan_new(sizeof(buffer_t *), POOL_CAP);
    if (!pool) {
        puts("D04 FAILED: made the pool");
        return 1;
    }
    d04_clients_server();
    d04_pool_full();
    long drained = drain_pool();
    check(atomic_load(&allocated) == drained + atomic_load(&freed_full),
          "every buffer ever allocated was freed");
    gocc_chan_release(pool);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("D04 %s: %ld buffers allocated, all freed; %zu tasks live at the end\n",
           example_failures ? "FAILED" : "ok", atomic_load(&allocated), gocc_tasks_live());
    return example_failures ? 1 : 0;
}
