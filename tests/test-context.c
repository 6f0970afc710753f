/*
 * test-context.c - the context switch and the task stack on their own
 * (src/context.c), without the scheduler: what the caller keeps in
 * callee-saved registers and its floating-point rounding mode survive a
 * switch to code that overwrites all of them; a new context starts in its
 * entry with its argument on a 16-byte aligned stack; a guarded stack
 * faults below its end.
 *
 * Plain C with no test framework, so it also runs where only a cross
 * compiler and an emulator exist (scripts/check-context-cross.sh builds it
 * for aarch64 and runs it under qemu). Exit 0: all passed.
 */
#include "gocc-internal.h"

#include <fenv.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

gocc__cctx main_ctx, co_ctx; /* (global: the assembly below names them) */
static int failures;
static volatile long seed = 7;
static volatile double dseed = 1.25;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "test-context: %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            failures++;                                                   \
        }                                                                 \
    } while (0)

/* Overwrite every callee-saved register (the compiler is told, so this
 * function itself saves them; the values stay when it switches away). */
static __attribute__((noinline)) void clobber_callee_saved(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("mov $0x1111, %%rbx\n\t"
                         "mov $0x2222, %%r12\n\t"
                         "mov $0x3333, %%r13\n\t"
                         "mov $0x4444, %%r14\n\t"
                         "mov $0x5555, %%r15\n\t" ::
                             : "rbx", "r12", "r13", "r14", "r15", "memory");
#elif defined(__aarch64__)
    __asm__ __volatile__("mov x19, #0x1111\n\t"
                         "mov x20, #0x2222\n\t"
                         "mov x21, #0x3333\n\t"
                         "mov x22, #0x4444\n\t"
                         "mov x23, #0x5555\n\t"
                         "mov x24, #0x6666\n\t"
                         "mov x25, #0x7777\n\t"
                         "mov x26, #0x8888\n\t"
                         "mov x27, #0x9999\n\t"
                         "mov x28, #0xaaaa\n\t"
                         "fmov d8, xzr\n\t"
                         "fmov d9, xzr\n\t"
                         "fmov d10, xzr\n\t"
                         "fmov d11, xzr\n\t"
                         "fmov d12, xzr\n\t"
                         "fmov d13, xzr\n\t"
                         "fmov d14, xzr\n\t"
                         "fmov d15, xzr\n\t" ::
                             : "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
                               "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15", "memory");
#endif
}

static _Atomic int co_rounds;
static uintptr_t co_arg_seen, co_sp_mod16;

static void co_entry(void *arg) {
    co_arg_seen = (uintptr_t)arg;
    volatile char probe;
    co_sp_mod16 = ((uintptr_t)&probe) & 15; /* only for the record */
    for (;;) {
        fesetround(FE_DOWNWARD);
        atomic_fetch_add(&co_rounds, 1);
        clobber_callee_saved();
        gocc__ctx_switch(&co_ctx, &main_ctx);
        CHECK(fegetround() == FE_DOWNWARD, "the coroutine's rounding mode was not kept");
    }
}

static __attribute__((noinline)) long mix(long a, long b) { return a * 131 + b; }

/* Exact: known values in every callee-saved register, a switch made from
 * assembly (so the compiler cannot keep anything elsewhere), the registers
 * read back. */
uintptr_t gocc_test_regs_out[10];
void gocc_test_switch_from_asm(void);
#if GOCC_CONTEXT_ASM && defined(__x86_64__)
__asm__(".text\n"
        ".globl gocc_test_switch_from_asm\n"
        "gocc_test_switch_from_asm:\n"
        "    pushq %rbp\n pushq %rbx\n pushq %r12\n pushq %r13\n pushq %r14\n pushq %r15\n"
        "    subq $8, %rsp\n" /* 16-byte aligned at the call below */
        "    mov $0xa1, %rbx\n mov $0xa2, %r12\n mov $0xa3, %r13\n"
        "    mov $0xa4, %r14\n mov $0xa5, %r15\n mov $0xa6, %rbp\n"
        "    lea main_ctx(%rip), %rdi\n lea co_ctx(%rip), %rsi\n"
        "    call gocc__ctx_switch\n"
        "    mov %rbx, gocc_test_regs_out+0(%rip)\n mov %r12, gocc_test_regs_out+8(%rip)\n"
        "    mov %r13, gocc_test_regs_out+16(%rip)\n mov %r14, gocc_test_regs_out+24(%rip)\n"
        "    mov %r15, gocc_test_regs_out+32(%rip)\n mov %rbp, gocc_test_regs_out+40(%rip)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n popq %r14\n popq %r13\n popq %r12\n popq %rbx\n popq %rbp\n"
        "    ret\n");
static const uintptr_t regs_want[] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6};
#define NREGS 6
#elif GOCC_CONTEXT_ASM && defined(__aarch64__)
__asm__(".text\n"
        ".globl gocc_test_switch_from_asm\n"
        "gocc_test_switch_from_asm:\n"
        "    stp x29, x30, [sp, #-96]!\n"
        "    stp x19, x20, [sp, #16]\n stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n stp x25, x26, [sp, #64]\n stp x27, x28, [sp, #80]\n"
        "    mov x19, #0xa1\n mov x20, #0xa2\n mov x21, #0xa3\n mov x22, #0xa4\n"
        "    mov x23, #0xa5\n mov x24, #0xa6\n mov x25, #0xa7\n mov x26, #0xa8\n"
        "    mov x27, #0xa9\n mov x28, #0xaa\n"
        "    adrp x0, main_ctx\n add x0, x0, :lo12:main_ctx\n"
        "    adrp x1, co_ctx\n add x1, x1, :lo12:co_ctx\n"
        "    bl gocc__ctx_switch\n"
        "    adrp x9, gocc_test_regs_out\n add x9, x9, :lo12:gocc_test_regs_out\n"
        "    stp x19, x20, [x9, #0]\n stp x21, x22, [x9, #16]\n stp x23, x24, [x9, #32]\n"
        "    stp x25, x26, [x9, #48]\n stp x27, x28, [x9, #64]\n"
        "    ldp x19, x20, [sp, #16]\n ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n ldp x25, x26, [sp, #64]\n ldp x27, x28, [sp, #80]\n"
        "    ldp x29, x30, [sp], #96\n"
        "    ret\n");
static const uintptr_t regs_want[] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa};
#define NREGS 10
#endif

static void test_switch(void) {
    gocc__stack s;
    CHECK(gocc__stack_alloc(&s, 64 * 1024) == 0, "stack_alloc");
    CHECK(gocc__ctx_make(&co_ctx, s.lo, s.size, co_entry, (void *)(uintptr_t)0x5eed) == 0,
          "ctx_make");
    fesetround(FE_UPWARD);
    for (int i = 0; i < 1000; i++) {
        /* Many values live across the switch: callee-saved registers. */
        long a = mix(seed, i), b = mix(a, 1), c = mix(b, 2), d = mix(c, 3), e = mix(d, 4),
             f = mix(e, 5), g = mix(f, 6), h = mix(g, 7);
        double x = dseed * i, y = x + 0.5, z = y * 3.0, w = z - 1.0;
        gocc__ctx_switch(&main_ctx, &co_ctx);
        long want = mix(seed, i);
        CHECK(a == want && b == mix(want, 1) && c == mix(b, 2) && d == mix(c, 3) &&
                  e == mix(d, 4) && f == mix(e, 5) && g == mix(f, 6) && h == mix(g, 7),
              "a callee-saved integer register changed across a switch (round %d)", i);
        CHECK(x == dseed * i && y == x + 0.5 && z == y * 3.0 && w == z - 1.0,
              "a floating-point value changed across a switch (round %d)", i);
        CHECK(fegetround() == FE_UPWARD, "the caller's rounding mode changed (round %d)", i);
        if (failures > 5) break;
    }
#if defined(NREGS)
    for (int i = 0; i < 100; i++) {
        memset(gocc_test_regs_out, 0, sizeof gocc_test_regs_out);
        gocc_test_switch_from_asm();
        for (int r = 0; r < NREGS; r++)
            CHECK(gocc_test_regs_out[r] == regs_want[r], "callee-saved register %d: %#lx", r,
                  (unsigned long)gocc_test_regs_out[r]);
        CHECK(fegetround() == FE_UPWARD, "the caller's rounding mode changed");
        if (failures > 5) break;
    }
#endif
    fesetround(FE_TONEAREST);
    CHECK(atomic_load(&co_rounds) >= 1000, "the coroutine ran %d times", atomic_load(&co_rounds));
    CHECK(co_arg_seen == 0x5eed, "entry got %#lx", (unsigned long)co_arg_seen);
    CHECK(gocc__stack_intact(&s), "canary");
    gocc__stack_free(&s);
}

/* A write just below a guarded stack faults. */
static void test_guard(void) {
    if (getenv("GOCC_TEST_NO_GUARD") != NULL) return; /* an emulator that ignores madvise */
    gocc__stack s;
    CHECK(gocc__stack_alloc(&s, 64 * 1024) == 0, "stack_alloc");
    if (s.guard == GOCC__GUARD_NONE) {
        printf("test-context: no guard page here (canary only)\n");
        gocc__stack_free(&s);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        ((volatile char *)s.lo)[-1] = 1;
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    /* A fault kills it (or a sanitizer's handler reports it and exits). */
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "a write below the stack did not fault (status %#x)", status);
    gocc__stack_free(&s);
}

int main(void) {
    test_switch();
    test_guard();
    if (failures == 0)
        printf("test-context: ok (%s)\n", GOCC_CONTEXT_ASM ? "assembly" : "ucontext");
    return failures == 0 ? 0 : 1;
}
