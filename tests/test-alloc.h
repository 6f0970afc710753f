/*
 * test-alloc.h - counting allocator hooks (gocc_runtime_set_allocator) for
 * tests/test-runtime.c and tests/test-fault.c.
 *
 * Every block carries a header {size, magic} in front of what the library
 * sees, so a test can read the calls made and the blocks and bytes still
 * outstanding at any moment, and a free or realloc of a block these hooks
 * did not make (memory that bypassed them) is counted in ta_bad instead of
 * corrupting the heap. Thread-safe: the counters are atomics.
 *
 * Install with gocc_runtime_set_allocator(&ta_allocator) as the program's
 * FIRST libgocc call (gocc.h: later it returns GOCC_EAGAIN).
 */
#ifndef GOCC_TEST_ALLOC_H
#define GOCC_TEST_ALLOC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <gocc.h>

typedef struct ta_hdr {
    size_t size;
    uint64_t magic; /* TA_LIVE while allocated, TA_DEAD once freed */
} ta_hdr;           /* 16 bytes: what follows keeps malloc's alignment */

#define TA_LIVE 0x6c69766562b10c5ull
#define TA_DEAD 0xdeadb10cdeadb10cull

static _Atomic long ta_mallocs;    /* malloc_fn calls */
static _Atomic long ta_reallocs;   /* realloc_fn calls */
static _Atomic long ta_frees;      /* free_fn calls */
static _Atomic long ta_blocks;     /* blocks outstanding */
static _Atomic long long ta_bytes; /* bytes outstanding (as asked for) */
static _Atomic long ta_bad;        /* foreign or doubly freed blocks, wrong ud */
static int ta_tag;                 /* &ta_tag is the ud every call must get */

static void *ta_malloc(size_t n, void *ud) {
    if (ud != &ta_tag) atomic_fetch_add(&ta_bad, 1);
    atomic_fetch_add(&ta_mallocs, 1);
    ta_hdr *h = malloc(sizeof *h + n);
    if (h == NULL) return NULL;
    h->size = n;
    h->magic = TA_LIVE;
    atomic_fetch_add(&ta_blocks, 1);
    atomic_fetch_add(&ta_bytes, (long long)n);
    return h + 1;
}

/* The header of p, or NULL (counted as bad) when p is not ours. */
static ta_hdr *ta_header(void *p) {
    ta_hdr *h = (ta_hdr *)p - 1;
    if (h->magic != TA_LIVE) {
        atomic_fetch_add(&ta_bad, 1);
        return NULL;
    }
    return h;
}

static void *ta_realloc(void *p, size_t n, void *ud) {
    atomic_fetch_add(&ta_reallocs, 1);
    if (p == NULL) {
        atomic_fetch_sub(&ta_mallocs, 1); /* counted once, as a realloc */
        return ta_malloc(n, ud);
    }
    if (ud != &ta_tag) atomic_fetch_add(&ta_bad, 1);
    ta_hdr *h = ta_header(p);
    if (h == NULL) return NULL;
    size_t old = h->size;
    ta_hdr *nh = realloc(h, sizeof *nh + n);
    if (nh == NULL) return NULL; /* p stays valid */
    nh->size = n;
    atomic_fetch_add(&ta_bytes, (long long)n - (long long)old);
    return nh + 1;
}

static void ta_free(void *p, void *ud) {
    if (ud != &ta_tag) atomic_fetch_add(&ta_bad, 1);
    atomic_fetch_add(&ta_frees, 1);
    if (p == NULL) return;
    ta_hdr *h = ta_header(p);
    if (h == NULL) return;
    atomic_fetch_sub(&ta_blocks, 1);
    atomic_fetch_sub(&ta_bytes, (long long)h->size);
    h->magic = TA_DEAD;
    free(h);
}

static const gocc_allocator_t ta_allocator = {ta_malloc, ta_realloc, ta_free, &ta_tag};

/* Allocation calls so far (malloc and realloc). */
static inline long ta_calls(void) { return atomic_load(&ta_mallocs) + atomic_load(&ta_reallocs); }

#endif /* GOCC_TEST_ALLOC_H */
