/*
 * basepool.c - the hand-written mutex + free-list object pool (see
 * basepool.h).
 *
 * Invariant (under p->mu): head is a list of kept objects linked through
 * their first word, kept of them, kept <= max_kept.
 */
#define _POSIX_C_SOURCE 200809L
#include "basepool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct node {
    struct node *next;
} node_t;

struct basepool {
    pthread_mutex_t mu;
    node_t *head;
    size_t kept, max_kept;
    size_t obj_size;
};

basepool_t *basepool_new(size_t obj_size, size_t max_kept) {
    basepool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->obj_size = obj_size < sizeof(node_t) ? sizeof(node_t) : obj_size;
    p->max_kept = max_kept;
    return p;
}

void *basepool_get(basepool_t *p) {
    pthread_mutex_lock(&p->mu);
    node_t *n = p->head;
    if (n) {
        p->head = n->next;
        p->kept--;
    }
    pthread_mutex_unlock(&p->mu);
    return n ? (void *)n : malloc(p->obj_size);
}

void basepool_put(basepool_t *p, void *obj) {
    if (!obj) return;
    node_t *n = obj;
    pthread_mutex_lock(&p->mu);
    if (p->kept < p->max_kept) {
        n->next = p->head;
        p->head = n;
        p->kept++;
        n = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(n);
}

void basepool_free(basepool_t *p) {
    if (!p) return;
    node_t *n = p->head;
    while (n) {
        node_t *next = n->next;
        free(n);
        n = next;
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}
