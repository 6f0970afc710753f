/*
 * snapshot.c - gocc_snapshot_*: Go's atomic.Pointer for read-mostly values,
 * with the garbage collector's part done by split reference counts. Readers
 * never lock and never touch freed memory; a replaced value is given to
 * free_fn once its last borrow ends. Portable: one pointer-sized atomic word,
 * no double-width CAS, no assumption about unused high pointer bits.
 *
 * Layout. Each stored value lives in a node {value, refs, ...} aligned to
 * 64 bytes, so the low 6 bits of a node address are zero. The snapshot is
 * one atomic word
 *
 *     word = node address | L        (0 <= L <= 63)
 *
 * where L, the "local count", is the number of readers in the middle of an
 * acquire that have announced themselves in the word and not yet moved to
 * the node's own count.
 *
 * The counts. refs counts BIAS for the word's own reference while the node
 * is the current one, plus one per borrow (own reference) of a reader. The
 * L units in the word are NOT in refs until a writer moves them there.
 *
 * acquire:
 *  1. CAS word w -> w + 1 (L saturated at 63: yield and retry; it only
 *     counts readers between steps 1 and 3). From now on the node n in w
 *     cannot be freed: our unit is either still in the word (whose BIAS is
 *     in refs) or was moved into refs by the writer that replaced n.
 *  2. fetch_add(&n->refs, 1): our own reference, the borrow.
 *  3. Give the unit back: if the word still points at n, CAS it from w2 to
 *     w2 - 1; if it points elsewhere, a writer exchanged it and owes n our
 *     unit (or has paid it already): fetch_sub(&n->refs, 1).
 *     "The word still points at n" cannot be an ABA accident: n cannot be
 *     freed and reused while we hold our borrow, and a node is never made
 *     current twice (each store makes a new node).
 *
 * store (and a successful compare_and_swap): make a node for the new value
 * (refs = BIAS), exchange the word with (new node | 0), and with the old
 * word's L do fetch_add(&old->refs, L - BIAS): the word's reference goes,
 * the L announced readers' units come in.
 *
 * release: fetch_sub(&n->refs, 1). Whoever brings refs to 0 (a release, a
 * writer's transfer, or gocc_snapshot_free) calls free_fn(value, ud) and
 * frees the node. Exactly one caller sees the count reach 0, and nothing
 * touches the node after that (every holder's claim is in the count).
 *
 * Why BIAS (and not 1) for the word's reference. Between a writer's
 * exchange and its transfer, the readers that lost their unit may already
 * have given it back (step 3, fetch_sub) and then released their borrow.
 * Counted with 1 for the word, two such readers take refs from 1 + 2 down
 * to 1 + 2 - 2 - 1 = 0 while a reader still holds a borrow and the writer
 * still has its transfer to make: a use after free. With the word worth
 * BIAS > 63: before the transfer refs is BIAS + borrows - returned units,
 * and at most L <= 63 units can come back that way, so refs > 0; after the
 * transfer it is exactly borrows + units not yet returned, which is 0 only
 * when nobody can touch the node again.
 *
 * The current pointer stored again (store(s, current)) must not hand the
 * value to free_fn while the new node still holds it: the writer, which
 * owns the old node until its transfer, clears the old node's free_value
 * first. (compare_and_swap(s, x, x) on x changes nothing at all.) Storing a
 * value that an older, replaced node still holds for a borrower (A, B, A)
 * gives it two owners: that is the caller's to avoid, as with any
 * ownership transfer. NULL values never reach free_fn.
 *
 * Memory ordering (acq_rel throughout, for one reason each):
 *  - word: a writer fills the node (and the caller the value) before its
 *    release exchange; a reader's acquire CAS reads from it, or from a
 *    later CAS of another reader (a release sequence), so it sees both.
 *  - refs: every decrement is a release (the holder's reads of the value
 *    happen before it), and the decrement that reaches 0 is also an
 *    acquire, so free_fn runs after every holder is done. Increments are
 *    acq_rel too: cheap on the hardware that matters, simple to argue.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>

#define NODE_ALIGN ((uintptr_t)64)
#define LOCAL_MASK (NODE_ALIGN - 1) /* the word's local count */
#define LOCAL_MAX LOCAL_MASK
/* The word's own reference, worth more than any local count (see above). */
#define BIAS ((intptr_t)1 << 20)

typedef struct snap_node {
    void *value;                            /* immutable once the node is current */
    _Atomic intptr_t refs;                  /* BIAS while current + borrows (+ units moved in) */
    void (*free_fn)(void *value, void *ud); /* copied: the node may outlive s */
    void *ud;
    void *raw;       /* what gocc__malloc returned */
    bool free_value; /* false: a newer node holds the same value */
} snap_node;

_Static_assert(sizeof(snap_node) <= NODE_ALIGN, "a node fits its alignment");

struct gocc_snapshot {
    _Atomic uintptr_t word; /* current node | local count */
    void (*free_fn)(void *value, void *ud);
    void *ud;
};

static snap_node *node_of(uintptr_t w) { return (snap_node *)(w & ~LOCAL_MASK); }

static snap_node *node_new(gocc_snapshot_t *s, void *value) {
    void *raw = gocc__malloc(sizeof(snap_node) + NODE_ALIGN - 1);
    if (raw == NULL) return NULL;
    snap_node *n = (snap_node *)(((uintptr_t)raw + NODE_ALIGN - 1) & ~LOCAL_MASK);
    n->value = value;
    atomic_init(&n->refs, BIAS);
    n->free_fn = s->free_fn;
    n->ud = s->ud;
    n->raw = raw;
    n->free_value = true;
    return n;
}

/* The count reached 0: nobody else can reach n. */
static void node_destroy(snap_node *n) {
    if (n->free_fn != NULL && n->value != NULL && n->free_value) n->free_fn(n->value, n->ud);
    gocc__free(n->raw);
}

/* Add delta to n's count; destroy n if that brought it to 0. */
static void node_add(snap_node *n, intptr_t delta) {
    if (atomic_fetch_add_explicit(&n->refs, delta, memory_order_acq_rel) + delta == 0)
        node_destroy(n);
}

/* A writer replaced word @p old by a node holding @p value: drop the word's
 * reference to the old node and move its announced readers into its count. */
static void retire(uintptr_t old, void *value) {
    snap_node *n = node_of(old);
    /* Until the transfer below, the word's BIAS keeps n alive and the
     * writer alone may change free_value; the freer reads it after the
     * count's acq_rel chain reaches 0. */
    if (n->value == value) n->free_value = false;
    node_add(n, (intptr_t)(old & LOCAL_MASK) - BIAS);
}

gocc_snapshot_t *gocc_snapshot_new(void *initial, void (*free_fn)(void *value, void *ud),
                                   void *ud) {
    gocc_snapshot_t *s = gocc__malloc(sizeof *s);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->free_fn = free_fn;
    s->ud = ud;
    snap_node *n = node_new(s, initial);
    if (n == NULL) {
        gocc__free(s);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&s->word, (uintptr_t)n);
    return s;
}

void *gocc_snapshot_acquire(gocc_snapshot_t *s, gocc_snapshot_ref_t *ref) {
    if (ref != NULL) ref->value = ref->node = NULL;
    if (s == NULL || ref == NULL) return NULL;
    /* 1: announce ourselves in the word. */
    uintptr_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    for (;;) {
        if ((w & LOCAL_MASK) == LOCAL_MAX) { /* 63 readers mid-acquire: wait */
            sched_yield();
            w = atomic_load_explicit(&s->word, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&s->word, &w, w + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    snap_node *n = node_of(w);
    /* 2: our borrow. */
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_acq_rel);
    /* 3: give the announcement back, to the word or (if a writer moved it)
     * to the node; neither can bring the count to 0: we hold a borrow. */
    uintptr_t w2 = atomic_load_explicit(&s->word, memory_order_acquire);
    for (;;) {
        if (node_of(w2) != n) {
            atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel);
            break;
        }
        if (atomic_compare_exchange_weak_explicit(&s->word, &w2, w2 - 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    ref->node = n;
    ref->value = n->value;
    return n->value;
}

void gocc_snapshot_release(gocc_snapshot_ref_t *ref) {
    if (ref == NULL || ref->node == NULL) return;
    snap_node *n = ref->node;
    ref->node = ref->value = NULL;
    node_add(n, -1);
}

int gocc_snapshot_store(gocc_snapshot_t *s, void *value) {
    if (s == NULL) return GOCC_EINVAL;
    snap_node *n = node_new(s, value);
    if (n == NULL) return GOCC_ENOMEM;
    retire(atomic_exchange_explicit(&s->word, (uintptr_t)n, memory_order_acq_rel), value);
    return 0;
}

int gocc_snapshot_compare_and_swap(gocc_snapshot_t *s, void *expected, void *value) {
    if (s == NULL) return GOCC_EINVAL;
    snap_node *fresh = NULL;
    for (;;) {
        /* Borrow the current node to look at its value (it may be retired
         * and freed under us otherwise). */
        gocc_snapshot_ref_t cur;
        gocc_snapshot_acquire(s, &cur);
        if (cur.value != expected || expected == value) {
            /* Differs: not swapped. Same pointer in and out: swapped, and
             * nothing would change (Go's CompareAndSwap(x, x) on x). */
            int swapped = cur.value == expected;
            gocc_snapshot_release(&cur);
            if (fresh != NULL) gocc__free(fresh->raw);
            return swapped;
        }
        if (fresh == NULL && (fresh = node_new(s, value)) == NULL) {
            gocc_snapshot_release(&cur);
            return GOCC_ENOMEM;
        }
        /* Replace the word while it still points at the node we compared;
         * its local count may move meanwhile (readers come and go). */
        snap_node *n = cur.node;
        uintptr_t w = atomic_load_explicit(&s->word, memory_order_acquire);
        while (node_of(w) == n) {
            if (atomic_compare_exchange_weak_explicit(&s->word, &w, (uintptr_t)fresh,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                retire(w, value);
                gocc_snapshot_release(&cur);
                return 1;
            }
        }
        gocc_snapshot_release(&cur); /* replaced meanwhile: look again */
    }
}

/* For white-box tests only (tests/test-snapshot.c declares it itself): the
 * word, so a test can saturate the local count and watch acquire wait. */
_Atomic uintptr_t *gocc__snapshot_word(gocc_snapshot_t *s);
_Atomic uintptr_t *gocc__snapshot_word(gocc_snapshot_t *s) { return &s->word; }

void gocc_snapshot_free(gocc_snapshot_t *s) {
    if (s == NULL) return;
    /* No acquire is in progress (the contract), so the local count is 0;
     * a borrow still held (misuse) would keep the node until its release. */
    uintptr_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    node_add(node_of(w), (intptr_t)(w & LOCAL_MASK) - BIAS);
    gocc__free(s);
}
