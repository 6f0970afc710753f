/*
 * basepool.h - the object pool a C programmer writes by hand: one mutex and
 * a singly linked free list threaded through the cached objects themselves
 * (an object must hold at least a pointer). get pops or mallocs, put
 * pushes; the list is bounded, surplus objects are freed.
 *
 * It exists only as the baseline bench-pool compares gocc_pool with
 * (scenarios "baseline/pool/..."). It is not part of the library.
 */
#ifndef BASEPOOL_H
#define BASEPOOL_H

#include <stddef.h>

typedef struct basepool basepool_t;

/** A pool of @p obj_size-byte objects (at least sizeof(void *)) keeping at
 *  most @p max_kept of them; NULL on ENOMEM. */
basepool_t *basepool_new(size_t obj_size, size_t max_kept);

/** A cached object, else a new one from malloc; NULL when that fails. */
void *basepool_get(basepool_t *p);

/** Give @p obj back (NULL does nothing); freed when the list is full. */
void basepool_put(basepool_t *p, void *obj);

/** Free every cached object, then the pool. NULL does nothing. */
void basepool_free(basepool_t *p);

#endif /* BASEPOOL_H */
