/*
 * alloc.c - the bottom layer: every allocation of libgocc, the allocator
 * hooks of gocc_runtime_set_allocator, and the fault injector of test
 * builds.
 *
 * Nothing here depends on any other module but for the library's first
 * use (gocc__runtime_init, gocc__sched_freeze, called once from the first
 * allocation). This is the one file that calls the C library's allocator
 * (tests/check-alloc.sh checks it).
 */
#include "gocc-internal.h"

#include <sched.h>

/* ---- allocation ----
 *
 * One state word decides every call. The steady state of a program that
 * set no allocator is ALLOC_STARTED alone, and then each wrapper is one
 * relaxed load, one well-predicted compare and the C library call. Anything
 * else (the very first allocation, hooks set, fault injection armed) takes
 * the out-of-line slow path.
 *
 * gocc_runtime_set_allocator and the first allocation exclude each other
 * through the word: the setter moves it 0/HOOKS -> +BUSY (only while
 * STARTED is clear), writes the hooks, and stores the result (release);
 * the first allocation sets STARTED with a CAS that never succeeds while
 * BUSY is set (it waits that out) and reads the hooks after it (acquire).
 * Once STARTED is set the hooks never change again, so a free always goes
 * to the allocator its block came from.
 */
enum {
    ALLOC_STARTED = 1, /* the library allocated: the allocator is fixed */
    ALLOC_HOOKS = 2,   /* allocs go to `hooks` */
    ALLOC_BUSY = 4,    /* gocc_runtime_set_allocator is writing `hooks` */
    ALLOC_FAULT = 8,   /* fault injection armed (GOCC_FAULT_INJECTION builds) */
};
static _Atomic unsigned alloc_state;
static gocc_allocator_t hooks; /* written only while BUSY, before STARTED */

int gocc_runtime_set_allocator(const gocc_allocator_t *a) {
    if (a != NULL && (a->malloc_fn == NULL || a->realloc_fn == NULL || a->free_fn == NULL))
        return GOCC_EINVAL;
    unsigned s = atomic_load_explicit(&alloc_state, memory_order_relaxed);
    do {
        if (s & (ALLOC_STARTED | ALLOC_BUSY)) return GOCC_EAGAIN;
    } while (!atomic_compare_exchange_weak_explicit(&alloc_state, &s, s | ALLOC_BUSY,
                                                    memory_order_acquire, memory_order_relaxed));
    if (a != NULL) hooks = *a;
    unsigned keep = s & ALLOC_FAULT;
    atomic_store_explicit(&alloc_state, keep | (a != NULL ? ALLOC_HOOKS : 0), memory_order_release);
    return 0;
}

/* Mark the library as started (once); returns the state to act on. */
static unsigned alloc_start(void) {
    unsigned s = atomic_load_explicit(&alloc_state, memory_order_acquire);
    while (!(s & ALLOC_STARTED)) {
        if (s & ALLOC_BUSY) { /* a set_allocator call is finishing */
            sched_yield();
            s = atomic_load_explicit(&alloc_state, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&alloc_state, &s, s | ALLOC_STARTED,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            s |= ALLOC_STARTED;
            gocc__runtime_init(); /* fork handlers: the first use of the library */
            gocc__sched_freeze(); /* procs is fixed from the first use on */
            break;
        }
    }
    return s;
}

#if defined(GOCC_FAULT_INJECTION)
/* Fault injection (test builds only): count the allocation and
 * thread-creation points met since gocc__fault_arm, and make the chosen
 * one of each fail, once. */
static struct {
    _Atomic long allocs, threads, injected;
    _Atomic long fail_alloc_at, fail_thread_at;
} fault;

void gocc__fault_arm(long fail_alloc_at, long fail_thread_at) {
    atomic_store(&fault.allocs, 0);
    atomic_store(&fault.threads, 0);
    atomic_store(&fault.injected, 0);
    atomic_store(&fault.fail_alloc_at, fail_alloc_at);
    atomic_store(&fault.fail_thread_at, fail_thread_at);
    (void)alloc_start();
    atomic_fetch_or(&alloc_state, ALLOC_FAULT);
}

void gocc__fault_disarm(void) { atomic_fetch_and(&alloc_state, ~(unsigned)ALLOC_FAULT); }
long gocc__fault_allocs(void) { return atomic_load(&fault.allocs); }
long gocc__fault_threads(void) { return atomic_load(&fault.threads); }
long gocc__fault_injected(void) { return atomic_load(&fault.injected); }

static bool fault_hit(_Atomic long *count, _Atomic long *at) {
    if (!(atomic_load(&alloc_state) & ALLOC_FAULT)) return false;
    long k = atomic_fetch_add(count, 1) + 1;
    if (k != atomic_load(at)) return false;
    atomic_fetch_add(&fault.injected, 1);
    return true;
}

bool gocc__fault_thread_fails(void) { return fault_hit(&fault.threads, &fault.fail_thread_at); }
bool gocc__fault_alloc_fails(void) { return fault_hit(&fault.allocs, &fault.fail_alloc_at); }
#define FAULT_ALLOC_FAILS(s) (((s)&ALLOC_FAULT) && fault_hit(&fault.allocs, &fault.fail_alloc_at))
#else
#define FAULT_ALLOC_FAILS(s) ((void)(s), false)
#endif

static GOCC_NOINLINE void *malloc_slow(size_t n) {
    unsigned s = alloc_start();
    if (FAULT_ALLOC_FAILS(s)) return NULL;
    if (s & ALLOC_HOOKS) return hooks.malloc_fn(n, hooks.ud);
    return malloc(n);
}

static GOCC_NOINLINE void *realloc_slow(void *p, size_t n) {
    unsigned s = alloc_start();
    if (FAULT_ALLOC_FAILS(s)) return NULL;
    if (s & ALLOC_HOOKS) return hooks.realloc_fn(p, n, hooks.ud);
    return realloc(p, n);
}

void *gocc__malloc(size_t n) {
    if (n == 0) n = 1;
    if (GOCC_UNLIKELY(atomic_load_explicit(&alloc_state, memory_order_relaxed) != ALLOC_STARTED))
        return malloc_slow(n);
    return malloc(n);
}

void *gocc__calloc(size_t nmemb, size_t n) {
    if (nmemb == 0 || n == 0) nmemb = n = 1;
    if (GOCC_UNLIKELY(atomic_load_explicit(&alloc_state, memory_order_relaxed) != ALLOC_STARTED)) {
        if (n > SIZE_MAX / nmemb) return NULL;
        void *p = malloc_slow(nmemb * n); /* hooks have no calloc */
        if (p != NULL) memset(p, 0, nmemb * n);
        return p;
    }
    return calloc(nmemb, n);
}

void *gocc__realloc(void *p, size_t n) {
    if (n == 0) n = 1;
    if (GOCC_UNLIKELY(atomic_load_explicit(&alloc_state, memory_order_relaxed) != ALLOC_STARTED))
        return realloc_slow(p, n);
    return realloc(p, n);
}

/* A block exists only after STARTED, and the hooks were fixed before it:
 * whoever frees it has seen both (it got the pointer from the allocating
 * thread through some synchronisation). */
void gocc__free(void *p) {
    if (p == NULL) return;
    if (GOCC_UNLIKELY(atomic_load_explicit(&alloc_state, memory_order_relaxed) & ALLOC_HOOKS))
        hooks.free_fn(p, hooks.ud);
    else
        free(p);
}
