/*
 * basechan.c - the hand-written mutex + two condvars channel (see basechan.h).
 *
 * Invariants (all under ch->mu):
 *   0 <= count <= slots, slots = max(capacity, 1);
 *   values live in buf[head], buf[head+1], ... (mod slots);
 *   taken counts every value ever received, put every value ever sent: a
 *   capacity-0 sender whose value got ticket t is done once taken >= t.
 *
 * Who wakes whom: a send signals not_empty, a receive signals not_full (a
 * broadcast for capacity 0, where senders waiting for a free slot and the
 * sender waiting for its value to be taken share the condvar). Close
 * broadcasts both.
 */
#define _POSIX_C_SOURCE 200809L
#include "basechan.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct basechan {
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* receivers wait here */
    pthread_cond_t not_full;  /* senders wait here */
    size_t elem_size;
    size_t capacity; /* as asked; 0 = rendezvous */
    size_t slots;    /* ring size, max(capacity, 1) */
    size_t head, count;
    uint64_t put, taken; /* tickets, for capacity 0 */
    int closed;
    unsigned char *buf;
};

basechan_t *basechan_new(size_t elem_size, size_t capacity) {
    basechan_t *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->elem_size = elem_size;
    ch->capacity = capacity;
    ch->slots = capacity ? capacity : 1;
    ch->buf = calloc(ch->slots, elem_size ? elem_size : 1);
    if (!ch->buf) {
        free(ch);
        return NULL;
    }
    pthread_mutex_init(&ch->mu, NULL);
    pthread_cond_init(&ch->not_empty, NULL);
    pthread_cond_init(&ch->not_full, NULL);
    return ch;
}

void basechan_free(basechan_t *ch) {
    if (!ch) return;
    pthread_cond_destroy(&ch->not_full);
    pthread_cond_destroy(&ch->not_empty);
    pthread_mutex_destroy(&ch->mu);
    free(ch->buf);
    free(ch);
}

int basechan_send(basechan_t *ch, const void *elem) {
    pthread_mutex_lock(&ch->mu);
    while (!ch->closed && ch->count == ch->slots) pthread_cond_wait(&ch->not_full, &ch->mu);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->mu);
        return -EPIPE;
    }
    size_t tail = (ch->head + ch->count) % ch->slots;
    if (ch->elem_size) memcpy(ch->buf + tail * ch->elem_size, elem, ch->elem_size);
    ch->count++;
    uint64_t ticket = ++ch->put;
    pthread_cond_signal(&ch->not_empty);
    int rc = 0;
    if (ch->capacity == 0) {
        while (!ch->closed && ch->taken < ticket) pthread_cond_wait(&ch->not_full, &ch->mu);
        if (ch->taken < ticket) rc = -EPIPE; /* close dropped the value */
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int basechan_recv(basechan_t *ch, void *out) {
    pthread_mutex_lock(&ch->mu);
    while (!ch->closed && ch->count == 0) pthread_cond_wait(&ch->not_empty, &ch->mu);
    if (ch->count == 0) {
        pthread_mutex_unlock(&ch->mu);
        if (out && ch->elem_size) memset(out, 0, ch->elem_size);
        return -EPIPE;
    }
    if (out && ch->elem_size) memcpy(out, ch->buf + ch->head * ch->elem_size, ch->elem_size);
    ch->head = (ch->head + 1) % ch->slots;
    ch->count--;
    ch->taken++;
    if (ch->capacity == 0)
        pthread_cond_broadcast(&ch->not_full);
    else
        pthread_cond_signal(&ch->not_full);
    pthread_mutex_unlock(&ch->mu);
    return 0;
}

int basechan_close(basechan_t *ch) {
    pthread_mutex_lock(&ch->mu);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->mu);
        return -EPIPE;
    }
    ch->closed = 1;
    /* A rendezvous value nobody took is not delivered: its sender fails. */
    if (ch->capacity == 0) ch->count = 0;
    pthread_cond_broadcast(&ch->not_empty);
    pthread_cond_broadcast(&ch->not_full);
    pthread_mutex_unlock(&ch->mu);
    return 0;
}
