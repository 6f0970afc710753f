/*
 * basechan.h - the channel a C programmer writes by hand: one mutex, two
 * condition variables ("not empty" for receivers, "not full" for senders),
 * a ring buffer, and a signal on every send and every receive whether or
 * not anyone waits. No direct handoff, no waiter queues.
 *
 * It exists only as the baseline the benchmark compares libgocc's channels
 * with (bench/bench-chan.c, scenarios named "baseline/..."). It is not part
 * of the library.
 *
 * Capacity 0 is a rendezvous built the obvious way: the value goes into a
 * one-slot buffer and the sender then waits until a receiver has taken it.
 */
#ifndef BASECHAN_H
#define BASECHAN_H

#include <stddef.h>

typedef struct basechan basechan_t;

/** A channel of @p capacity values of @p elem_size bytes; NULL on ENOMEM. */
basechan_t *basechan_new(size_t elem_size, size_t capacity);

/** Free the channel; nobody may be using it. NULL does nothing. */
void basechan_free(basechan_t *ch);

/** Block until there is room (for capacity 0: until a receiver took the
 *  value). @return 0, or -EPIPE when the channel is closed. */
int basechan_send(basechan_t *ch, const void *elem);

/** Block until a value is there. @return 0, or -EPIPE when closed and
 *  empty (@p out zero-filled). @p out may be NULL. */
int basechan_recv(basechan_t *ch, void *out);

/** Close: wake everybody. @return 0, or -EPIPE if already closed. */
int basechan_close(basechan_t *ch);

#endif /* BASECHAN_H */
