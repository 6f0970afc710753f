/*
 * b04_atomics.c - B04 (chapter 9, "Atomic Operations Evolution"): typed
 * atomics, and a lock-free stack whose push is a CompareAndSwap loop.
 *
 * b04_typed_atomics: the seed's old way, atomic.AddInt64(&counter, 1) on a
 *   plain int64 (nothing stops a plain counter++ next to it), against the
 *   new way, var counter atomic.Int64 with Add / Load / Store /
 *   CompareAndSwap, where every access is atomic because the type says so.
 *   4 tasks, started together, update each of the seed's types 20000
 *   times (Int32, Int64, Uint32, Uint64: Add(1); Bool: flipped by CAS;
 *   Pointer: stepped one node along an array by CAS), then Store(0) and
 *   CompareAndSwap(0, 1) twice show one success, one failure.
 * b04_push: the seed's push(value): newNode.next = head.Load(); retry
 *   head.CompareAndSwap(oldHead, newNode) until it holds. 4 tasks push 2000
 *   values each onto one stack at once.
 * b04_aba_staged: the ABA interleaving (below) played step by step on one
 *   thread, safe and deterministic: on an untagged stack the stale CAS
 *   succeeds and corrupts it, on the tagged one it fails.
 * b04_tagged_stack: push AND pop over a fixed set of 32 nodes that 4 tasks
 *   pop and push back 20000 times each, the case where ABA bites (below).
 *
 * Go -> C: atomic.Int64 and friends are C11 _Atomic types (Add is
 * atomic_fetch_add + 1, since Go's Add returns the new value; Load/Store/
 * CompareAndSwap are atomic_load / atomic_store /
 * atomic_compare_exchange_strong). The old way's functions on a plain
 * int64 are GCC/Clang's __atomic builtins (a GNU extension, used only in
 * old_way_add to show the form). atomic.Pointer[Node] is
 * _Atomic(node_t *). atomic.Value has no C11 equivalent (it holds any
 * type); B06 shows the config-pointer pattern that replaces it.
 *
 * ABA, and why each stack here is safe. A CAS stack compares the head
 * pointer only. If between a task's head.Load() and its CompareAndSwap the
 * head node A is popped, other nodes change, and A is pushed back, the CAS
 * still sees A and succeeds with a stale A->next: nodes get lost or
 * linked twice. Go's GC prevents it for the seed (a node still referenced
 * by some task's oldHead is never freed, so never reused as a new node).
 * In C:
 *  - b04_push pushes only; nothing leaves the stack while the tasks run and
 *    nodes are freed after they have all returned, so the head can never
 *    go back to an older value: no ABA is possible.
 *  - b04_tagged_stack reuses nodes on purpose, so its head is a TAGGED
 *    INDEX: 32 bits of node index and 32 bits of tag in one 64-bit atomic,
 *    and every successful CAS adds 1 to the tag. A head that went A -> B ->
 *    A in the meantime has another tag, so the stale CAS fails and
 *    retries. (A tag repeats only after 2^32 CASes between one task's load
 *    and its CAS.) Nodes live in one array for the whole run, so reading a
 *    popped node's next is never a use-after-free; next is an atomic
 *    because the node's new owner may be writing it, and a stale read is
 *    caught by the tag.
 *
 * Checks: every typed counter ends at exactly 4 x 20000 (the Bool flips an
 * even number of times, so ends false); the CAS pair gives true then
 * false; the pushed stack holds all 8000 values exactly once; the staged
 * ABA corrupts the untagged stack (B C, B held elsewhere, A lost) and not
 * the tagged one (A C); after the pop/push run all 32 nodes are on the
 * stack exactly once and no node was ever held by two tasks at a time.
 * gocc_tasks_live() == 0. Exit 1 if wrong.
 */
#include <gocc.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B04", ok, what)

#define TASKS 4

/* One task of run_tasks: waits at the start line, then runs fn. */
typedef struct starter {
    gocc_chan_t *start; /* closed once every task exists: they race from here */
    gocc_fn fn;
    void *arg;
} starter_t;

static int start_together(gocc_ctx_t *ctx, void *arg) {
    starter_t *s = arg;
    gocc_chan_recv(s->start, NULL, ctx);
    return s->fn(ctx, s->arg);
}

/* Run fn on TASKS tasks at once (task i gets args + i * size); wait for
 * them. Returns how many started. */
static int run_tasks(gocc_fn fn, void *args, size_t size) {
    starter_t st[TASKS];
    gocc_chan_t *start = gocc_chan_new(0, 0);
    gocc_group_t *g = gocc_group_new(NULL);
    int started = 0;
    for (int i = 0; start && g && i < TASKS; i++) {
        st[i] = (starter_t){start, fn, (char *)args + i * size};
        started += gocc_group_go(g, start_together, &st[i]) == 0;
    }
    gocc_chan_close(start);
    gocc_group_wait(g);
    gocc_group_free(g);
    gocc_chan_release(start);
    return started;
}

/* ---- typed atomics ---------------------------------------------------------- */

#define ADDS 20000

typedef struct node {
    int value;
    struct node *next;
} node_t;

static struct {
    int64_t old_counter;     /* the old way: a plain int64 */
    _Atomic int64_t counter; /* var counter atomic.Int64 */
    atomic_bool b;
    _Atomic int32_t i32;
    _Atomic uint32_t u32;
    _Atomic uint64_t u64;
    _Atomic(node_t *) ptr; /* atomic.Pointer[Node]: walks along nodes[] */
    node_t nodes[TASKS * ADDS + 1];
} typed;

/* atomic.AddInt64(&counter, 1): the function form on a plain variable. */
static int64_t old_way_add(int64_t *p, int64_t delta) {
    return __atomic_add_fetch(p, delta, __ATOMIC_SEQ_CST);
}

static int typed_adder(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        old_way_add(&typed.old_counter, 1);
        atomic_fetch_add(&typed.counter, 1); /* counter.Add(1) */
        bool cur = atomic_load(&typed.b);    /* b.Store(!b.Load()) would lose flips: CAS */
        while (!atomic_compare_exchange_weak(&typed.b, &cur, !cur)) {
        }
        atomic_fetch_add(&typed.i32, 1);
        atomic_fetch_add(&typed.u32, 1);
        atomic_fetch_add(&typed.u64, 1);
        node_t *p = atomic_load(&typed.ptr); /* ptr = ptr + 1, by CAS */
        while (!atomic_compare_exchange_weak(&typed.ptr, &p, p + 1)) {
        }
    }
    return 0;
}

static void b04_typed_atomics(void) {
    atomic_store(&typed.ptr, &typed.nodes[0]);
    char unused[TASKS];
    int started = run_tasks(typed_adder, unused, 1);
    const int64_t want = (int64_t)TASKS * ADDS;
    int64_t old_value = __atomic_load_n(&typed.old_counter, __ATOMIC_SEQ_CST); /* LoadInt64 */
    int64_t value = atomic_load(&typed.counter);                               /* counter.Load() */
    bool all = started == TASKS && old_value == want && value == want &&
               atomic_load(&typed.i32) == want && atomic_load(&typed.u32) == (uint32_t)want &&
               atomic_load(&typed.u64) == (uint64_t)want &&
               atomic_load(&typed.ptr) == &typed.nodes[want] && !atomic_load(&typed.b);
    check(all, "every typed counter ends at 4 x 20000, the Bool flipped back to false");
    printf("B04 typed: 4 tasks x %d: AddInt64 on a plain int64 = %lld, atomic.Int64 = %lld, "
           "Int32 = %d, Uint32 = %u, Uint64 = %llu, Pointer moved %td nodes, Bool = %s\n",
           ADDS, (long long)old_value, (long long)value, (int)atomic_load(&typed.i32),
           (unsigned)atomic_load(&typed.u32), (unsigned long long)atomic_load(&typed.u64),
           atomic_load(&typed.ptr) - typed.nodes, atomic_load(&typed.b) ? "true" : "false");

    atomic_store(&typed.counter, 0); /* counter.Store(0) */
    int64_t expect = 0;
    bool first = atomic_compare_exchange_strong(&typed.counter, &expect, 1); /* CAS(0, 1) */
    expect = 0;
    bool second = atomic_compare_exchange_strong(&typed.counter, &expect, 1);
    check(first && !second && atomic_load(&typed.counter) == 1,
          "CompareAndSwap(0, 1) succeeds once, then fails (the value is 1)");
    printf("B04 typed: Store(0); CompareAndSwap(0, 1) = %s; again = %s (it saw %lld)\n",
           first ? "true" : "false", second ? "true" : "false", (long long)expect);
}

/* ---- push with CAS (the seed's stack) ------------------------------------- */

#define PUSHES 2000

static _Atomic(node_t *) head; /* var head atomic.Pointer[Node] */

static void push(node_t *new_node) {
    for (;;) {
        node_t *old_head = atomic_load(&head);
        new_node->next = old_head; /* not yet visible to anyone */
        if (atomic_compare_exchange_weak(&head, &old_head, new_node)) break;
    }
}

typedef struct pusher {
    node_t *nodes; /* PUSHES nodes, values base .. base + PUSHES - 1 */
    int base;
} pusher_t;

static int push_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    pusher_t *p = arg;
    for (int i = 0; i < PUSHES; i++) {
        p->nodes[i].value = p->base + i; /* newNode := &Node{value: value} */
        push(&p->nodes[i]);
    }
    return 0;
}

static void b04_push(void) {
    node_t *nodes = calloc(TASKS * PUSHES, sizeof *nodes);
    unsigned char *seen = calloc(TASKS * PUSHES, 1);
    if (!nodes || !seen) {
        check(false, "allocated the nodes");
        free(nodes);
        free(seen);
        return;
    }
    pusher_t p[TASKS];
    for (int t = 0; t < TASKS; t++) p[t] = (pusher_t){nodes + t * PUSHES, t * PUSHES};
    int started = run_tasks(push_task, p, sizeof p[0]);

    /* The pushers have returned: the stack is ours to walk. */
    int n = 0, dups = 0, order_ok = 1;
    int last_of[TASKS];
    for (int t = 0; t < TASKS; t++) last_of[t] = INT_MAX;
    for (node_t *x = atomic_load(&head); x && n <= TASKS * PUSHES; x = x->next, n++) {
        dups += seen[x->value]++ != 0;
        int t = x->value / PUSHES; /* one task's pushes come off newest first */
        order_ok &= x->value < last_of[t];
        last_of[t] = x->value;
    }
    check(started == TASKS && n == TASKS * PUSHES && dups == 0,
          "the stack holds all 8000 pushed values exactly once");
    check(order_ok, "each task's values are stacked in its push order");
    printf("B04 push: 4 tasks pushed %d values at once; the stack holds %d, %d duplicates, "
           "each task's in order: %s\n",
           TASKS * PUSHES, n, dups, order_ok ? "yes" : "no");
    atomic_store(&head, NULL);
    free(nodes);
    free(seen);
}

/* ---- tagged-index stack: push and pop with node reuse --------------------- */

#define NODES 32
#define CYCLES 20000
#define NIL UINT32_MAX

typedef struct tnode {
    _Atomic uint32_t next; /* index, or NIL */
    atomic_int held;       /* 1 while a task has it popped: must never go 1 -> 1 */
} tnode_t;

typedef struct tstack {
    _Atomic uint64_t head; /* tag << 32 | index */
    bool tagged;           /* false only in b04_aba_staged's broken half */
    tnode_t node[NODES];
} tstack_t;

static uint32_t idx_of(uint64_t h) { return (uint32_t)h; }

/* The head word for index idx replacing old: the tag goes up by one. */
static uint64_t make_head(const tstack_t *s, uint64_t old, uint32_t idx) {
    return s->tagged ? ((old >> 32) + 1) << 32 | idx : idx;
}

static void tpush(tstack_t *s, uint32_t i) {
    uint64_t old = atomic_load(&s->head);
    do {
        atomic_store_explicit(&s->node[i].next, idx_of(old), memory_order_relaxed);
    } while (!atomic_compare_exchange_weak(&s->head, &old, make_head(s, old, i)));
}

/* Pop the top node's index, or NIL when empty. */
static uint32_t tpop(tstack_t *s) {
    uint64_t old = atomic_load(&s->head);
    for (;;) {
        uint32_t i = idx_of(old);
        if (i == NIL) return NIL;
        /* May be stale if i was popped meanwhile; then the tag differs and
         * the CAS fails. */
        uint32_t next = atomic_load_explicit(&s->node[i].next, memory_order_relaxed);
        if (atomic_compare_exchange_weak(&s->head, &old, make_head(s, old, next))) return i;
    }
}

typedef struct cycler {
    tstack_t *s;
    int empty_pops, double_held;
} cycler_t;

static int cycle_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    cycler_t *c = arg;
    for (int n = 0; n < CYCLES; n++) {
        uint32_t i = tpop(c->s);
        if (i == NIL) { /* all 32 are held by others (possible, if unlikely) */
            c->empty_pops++;
            continue;
        }
        c->double_held += atomic_exchange(&c->s->node[i].held, 1) != 0;
        atomic_store(&c->s->node[i].held, 0);
        tpush(c->s, i);
    }
    return 0;
}

static void b04_tagged_stack(void) {
    static tstack_t s = {.tagged = true};
    atomic_store(&s.head, (uint64_t)NIL);
    for (uint32_t i = 0; i < NODES; i++) tpush(&s, i);
    cycler_t c[TASKS];
    for (int t = 0; t < TASKS; t++) c[t] = (cycler_t){.s = &s};
    int started = run_tasks(cycle_task, c, sizeof c[0]);

    int pops = 0, double_held = 0, n = 0, dups = 0;
    for (int t = 0; t < TASKS; t++) {
        pops += CYCLES - c[t].empty_pops;
        double_held += c[t].double_held;
    }
    unsigned char seen[NODES] = {0};
    for (uint32_t i = idx_of(atomic_load(&s.head)); i != NIL && n <= NODES; n++) {
        dups += seen[i]++ != 0;
        i = atomic_load(&s.node[i].next);
    }
    uint64_t tag = atomic_load(&s.head) >> 32;
    check(started == TASKS && n == NODES && dups == 0,
          "after the pop/push run all 32 nodes are on the stack exactly once");
    check(double_held == 0, "no node was ever popped by two tasks at once");
    printf("B04 tagged stack: 4 tasks x %d pop+push over %d nodes (%d pops); the stack "
           "holds %d nodes, %d duplicates, %d double-held; the tag counted %llu CASes\n",
           CYCLES, NODES, pops, n, dups, double_held, (unsigned long long)tag);
}

/* ---- ABA, staged step by step on one thread ------------------------------ */

/* The stack from the top as letters ("A C") into buf (2 * NODES bytes). */
static void list(tstack_t *s, char *buf) {
    int n = 0;
    uint32_t i = idx_of(atomic_load(&s->head));
    for (; i != NIL && n < 2 * NODES - 1; i = atomic_load(&s->node[i].next)) {
        if (n > 0) buf[n++] = ' ';
        buf[n++] = (char)('A' + i);
    }
    buf[n] = 0;
}

/* The interleaving that breaks an untagged CAS stack, played in order:
 * T1 starts a pop (reads head A and A->next B), then T2 pops A, T3 pops B,
 * T2 pushes A back (A->next is now C), then T1's CAS runs. Untagged, T1's
 * CAS sees head A and succeeds, making B the head while T3 holds it (and
 * losing A). Tagged, the head is A with a newer tag and T1's CAS fails. */
static void aba_stage(bool tagged, bool *cas_won, char *after) {
    static tstack_t s;
    s = (tstack_t){.tagged = tagged};
    atomic_store(&s.head, (uint64_t)NIL);
    tpush(&s, 2); /* C */
    tpush(&s, 1); /* B */
    tpush(&s, 0); /* A: the stack is A B C */

    uint64_t old = atomic_load(&s.head);                    /* T1: oldHead = A */
    uint32_t next = atomic_load(&s.node[idx_of(old)].next); /* T1: A->next = B */
    uint32_t a = tpop(&s);                                  /* T2 pops A */
    tpop(&s);                                               /* T3 pops B and keeps it */
    tpush(&s, a);                                           /* T2 pushes A back: A C */
    *cas_won = atomic_compare_exchange_strong(&s.head, &old, make_head(&s, old, next)); /* T1 */
    list(&s, after);
}

static void b04_aba_staged(void) {
    char untagged[2 * NODES], tagged[2 * NODES];
    bool won_untagged, won_tagged;
    aba_stage(false, &won_untagged, untagged);
    aba_stage(true, &won_tagged, tagged);
    check(won_untagged && strcmp(untagged, "B C") == 0,
          "untagged: the stale CAS succeeds, B (held by T3) is on the stack, A is lost");
    check(!won_tagged && strcmp(tagged, "A C") == 0,
          "tagged: the stale CAS fails, the stack is A C");
    printf("B04 ABA staged: stack A B C; T1 reads head A (next B); T2 pops A, T3 pops B, T2 "
           "pushes A; T1's CAS: untagged %s -> stack %s (B is held by T3, A lost); tagged %s "
           "-> stack %s\n",
           won_untagged ? "succeeds" : "fails", untagged, won_tagged ? "succeeds" : "fails",
           tagged);
}

int main(void) {
    b04_typed_atomics();
    b04_push();
    b04_aba_staged();
    b04_tagged_stack();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B04 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
