/*
 * context.c - the two machine-level pieces a coroutine task needs: the
 * context switch and the stack.
 *
 * Switch. gocc__ctx_switch(from, to) saves the callee-saved registers of
 * the running code on its own stack, stores the stack pointer in *from,
 * loads *to's and restores what that stack holds. Written in assembly for
 * x86-64 (System V) and aarch64 (AAPCS64); both also keep the floating-point
 * control state (MXCSR and the x87 control word; FPCR), which the psABIs
 * make callee-saved. Everywhere else, or with -Dcontext=ucontext, the
 * portable fallback is swapcontext (one sigprocmask system call a switch:
 * correct, slow). A new context starts in gocc__ctx_make's entry function,
 * which must never return (it switches away for the last time instead).
 *
 * Stacks. Each task stack is its own anonymous mapping, reserved with
 * MAP_NORESERVE: address space, not memory; only touched pages cost
 * anything. Below the stack lies one guard page, installed without a new
 * memory map entry where the kernel has MADV_GUARD_INSTALL (Linux 6.13),
 * else with mprotect while fewer than GUARD_VMA_BUDGET such guards exist
 * (each one splits a mapping, and vm.max_map_count is 65530 by default).
 * Where neither guard is possible the stack is unguarded and its lowest
 * words hold a canary the scheduler checks at every switch away from the
 * task (gocc__stack_intact): an overflow stops the process no later than
 * the task's next switch, with a message naming the task.
 */
#include "gocc-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(GOCC_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif
#if defined(GOCC_ASAN)
/* LeakSanitizer scans thread stacks and globals, not our mappings: a
 * parked task's stack is a root region, or what only it points to would
 * be reported as leaked. */
void __lsan_register_root_region(const void *p, size_t size);
void __lsan_unregister_root_region(const void *p, size_t size);
#endif

/* ---- the switch ---- */

#if GOCC_CONTEXT_ASM && defined(__x86_64__)

/* Frame on a suspended stack, from the saved sp up: MXCSR (4 bytes) and
 * the x87 control word (2), padded to 8; r15 r14 r13 r12 rbx rbp; the
 * return address. A new stack's return address is the trampoline, which
 * calls entry(r12) with a 16-byte aligned stack. The control words are
 * loaded only when they differ from the outgoing side's (ldmxcsr and
 * fldcw are slow, and nearly every switch has them equal). */
__asm__(".text\n"
        ".globl gocc__ctx_switch\n"
        ".hidden gocc__ctx_switch\n"
        ".type gocc__ctx_switch,@function\n"
        "gocc__ctx_switch:\n"
        "    .cfi_startproc\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq (%rsp), %rcx\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    xorq (%rsp), %rcx\n"
        "    shlq $16, %rcx\n" /* the padding's 2 bytes out: 0 iff both equal */
        "    jz 1f\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "1:  addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size gocc__ctx_switch,.-gocc__ctx_switch\n"
        ".globl gocc__ctx_trampoline\n"
        ".hidden gocc__ctx_trampoline\n"
        "gocc__ctx_trampoline:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined rip\n" /* the outermost frame: unwinders stop here */
        "    movq %r12, %rdi\n"
        "    movq %r13, %rax\n"
        "    callq *%rax\n"
        "    ud2\n"
        "    .cfi_endproc\n");

void gocc__ctx_trampoline(void);

int gocc__ctx_make(gocc__cctx *c, void *stack_lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 80);
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ __volatile__("stmxcsr %0" : "=m"(mxcsr));
    __asm__ __volatile__("fnstcw %0" : "=m"(fcw));
    sp[0] = (uint64_t)mxcsr | ((uint64_t)fcw << 32);
    sp[1] = 0;                          /* r15 */
    sp[2] = 0;                          /* r14 */
    sp[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    sp[5] = 0;                          /* rbx */
    sp[6] = 0;                          /* rbp: ends frame-pointer walks */
    sp[7] = (uint64_t)(uintptr_t)gocc__ctx_trampoline;
    sp[8] = 0;
    sp[9] = 0;
    c->sp = sp;
    return 0;
}

#elif GOCC_CONTEXT_ASM && defined(__aarch64__)

/* Frame on a suspended stack (176 bytes, from the saved sp up): x19-x28,
 * x29 (fp), x30 (lr), d8-d15, FPCR. A new stack's lr is the trampoline,
 * which calls entry(x19) (entry in x20). */
__asm__(".text\n"
        ".globl gocc__ctx_switch\n"
        ".hidden gocc__ctx_switch\n"
        ".type gocc__ctx_switch,%function\n"
        "gocc__ctx_switch:\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT)
        "    bti c\n"
#endif
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x10, fpcr\n"
        "    str x10, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    ldr x9, [x1]\n"
        "    mov sp, x9\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldr x9, [sp, #160]\n"
        "    cmp x9, x10\n" /* msr fpcr is slow: only when it differs */
        "    b.eq 1f\n"
        "    msr fpcr, x9\n"
        "1:  add sp, sp, #176\n"
        "    ret\n"
        ".size gocc__ctx_switch,.-gocc__ctx_switch\n"
        ".globl gocc__ctx_trampoline\n"
        ".hidden gocc__ctx_trampoline\n"
        "gocc__ctx_trampoline:\n"
#if defined(__ARM_FEATURE_BTI_DEFAULT)
        "    bti j\n"
#endif
        "    mov x0, x19\n"
        "    blr x20\n"
        "    brk #0\n");

void gocc__ctx_trampoline(void);

int gocc__ctx_make(gocc__cctx *c, void *stack_lo, size_t size, void (*entry)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    sp[0] = (uint64_t)(uintptr_t)arg;                   /* x19 */
    sp[1] = (uint64_t)(uintptr_t)entry;                 /* x20 */
    sp[11] = (uint64_t)(uintptr_t)gocc__ctx_trampoline; /* x30 */
    sp[20] = fpcr;
    c->sp = sp;
    return 0;
}

#else /* the portable fallback */

static void uc_entry(unsigned hi, unsigned lo) {
    gocc__cctx *c = (gocc__cctx *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo);
    c->entry(c->arg);
    abort(); /* entry never returns */
}

int gocc__ctx_make(gocc__cctx *c, void *stack_lo, size_t size, void (*entry)(void *), void *arg) {
    if (getcontext(&c->uc) != 0) return GOCC_ENOMEM;
    c->uc.uc_stack.ss_sp = stack_lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    /* swapcontext installs each context's signal mask: a task runs with
     * every signal blocked, as the worker threads do (getcontext above took
     * the mask of whichever thread started the task). */
    sigfillset(&c->uc.uc_sigmask);
    c->entry = entry;
    c->arg = arg;
    uintptr_t p = (uintptr_t)c;
    makecontext(&c->uc, (void (*)(void))uc_entry, 2, (unsigned)(p >> 16 >> 16),
                (unsigned)(p & 0xffffffffu));
    return 0;
}

void gocc__ctx_switch(gocc__cctx *from, gocc__cctx *to) {
    if (swapcontext(&from->uc, &to->uc) != 0) abort();
}

#endif

/* ---- stacks ---- */

#if defined(__linux__) && !defined(MADV_GUARD_INSTALL)
#define MADV_GUARD_INSTALL 102
#endif
#define GUARD_VMA_BUDGET 16384
#define CANARY 0x676f63632d737461ull /* "gocc-sta" */
#define CANARY_WORDS 4

static _Atomic long mprotect_guards;  /* stacks guarded by mprotect now */
static _Atomic int guard_install = 1; /* MADV_GUARD_INSTALL may work */

static size_t page_size(void) {
    static _Atomic size_t ps;
    size_t p = atomic_load_explicit(&ps, memory_order_relaxed);
    if (GOCC_UNLIKELY(p == 0)) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&ps, p, memory_order_relaxed);
    }
    return p;
}

size_t gocc__stack_round(size_t size) {
    size_t ps = page_size();
    if (size < 4 * ps) size = 4 * ps;
    if (size > SIZE_MAX / 2) return 0;
    return (size + ps - 1) & ~(ps - 1);
}

int gocc__stack_alloc(gocc__stack *s, size_t size) {
    size_t ps = page_size();
    size = gocc__stack_round(size);
    if (size == 0) return GOCC_EINVAL;
    if (GOCC_FAULT_ALLOC()) return GOCC_ENOMEM;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#if defined(MAP_NORESERVE)
    flags |= MAP_NORESERVE;
#endif
#if defined(MAP_STACK)
    flags |= MAP_STACK;
#endif
    void *base = mmap(NULL, size + ps, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (base == MAP_FAILED) return errno == EINVAL ? GOCC_EINVAL : GOCC_ENOMEM;
    s->base = base;
    s->lo = (char *)base + ps;
    s->size = size;
    s->guard = GOCC__GUARD_NONE;
#if defined(__linux__)
    if (atomic_load_explicit(&guard_install, memory_order_relaxed)) {
        if (madvise(base, ps, MADV_GUARD_INSTALL) == 0)
            s->guard = GOCC__GUARD_MADV;
        else
            atomic_store_explicit(&guard_install, 0, memory_order_relaxed);
    }
#endif
    if (s->guard == GOCC__GUARD_NONE &&
        atomic_fetch_add_explicit(&mprotect_guards, 1, memory_order_relaxed) < GUARD_VMA_BUDGET) {
        if (mprotect(base, ps, PROT_NONE) == 0)
            s->guard = GOCC__GUARD_MPROTECT;
        else
            atomic_fetch_sub_explicit(&mprotect_guards, 1, memory_order_relaxed);
    } else if (s->guard == GOCC__GUARD_NONE) {
        atomic_fetch_sub_explicit(&mprotect_guards, 1, memory_order_relaxed);
    }
    if (s->guard == GOCC__GUARD_NONE) {
        uint64_t *c = (uint64_t *)s->lo;
        for (int i = 0; i < CANARY_WORDS; i++) c[i] = CANARY;
    }
#if defined(GOCC_HAVE_VALGRIND)
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + size);
#endif
#if defined(GOCC_ASAN)
    __lsan_register_root_region(s->lo, size);
#endif
    return 0;
}

void gocc__stack_free(gocc__stack *s) {
    if (s->base == NULL) return;
#if defined(GOCC_HAVE_VALGRIND)
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
#if defined(GOCC_ASAN)
    __lsan_unregister_root_region(s->lo, s->size);
#endif
    if (s->guard == GOCC__GUARD_MPROTECT)
        atomic_fetch_sub_explicit(&mprotect_guards, 1, memory_order_relaxed);
    munmap(s->base, s->size + page_size());
    s->base = s->lo = NULL;
}

bool gocc__stack_intact(const gocc__stack *s) {
    if (GOCC_LIKELY(s->guard != GOCC__GUARD_NONE)) return true;
    const uint64_t *c = (const uint64_t *)s->lo;
    for (int i = 0; i < CANARY_WORDS; i++)
        if (c[i] != CANARY) return false;
    return true;
}
