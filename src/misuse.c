/*
 * misuse.c - what the library says when a program breaks a rule it can
 * see: an object used after its last release, a lock call that fails; and
 * the live-object counts the dump and a refused shutdown report.
 *
 * Every message is one line on stderr, written with write(2) (no stdio
 * buffer, nothing allocated: the heap may be what is broken), followed by
 * abort(), so a core file or a debugger stops at the call that misused.
 *
 * The "released" mark (GOCC__RELEASED) is written into an object's
 * reference count just before the memory is freed, at an offset that
 * malloc's free-list links do not overwrite (past the first 32 bytes).
 * An entry point that already touches that word or its neighbours compares
 * it: a use soon after the release, before malloc hands the memory out
 * again, and a second release are caught. Memory already reused is not
 * (AddressSanitizer builds catch those: their quarantine reports the
 * heap-use-after-free, usually before this check runs).
 */
#include "gocc-internal.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

_Atomic long gocc__live[GOCC__LIVE_N];

static void say(const char *line, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

_Noreturn GOCC_NOINLINE void gocc__misuse_released(const char *call, const char *kind,
                                                   const void *obj) {
    char line[256];
    int k =
        snprintf(line, sizeof line, "libgocc: %s: %s %p was already released\n", call, kind, obj);
    if (k > 0) say(line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
    abort();
}

_Noreturn GOCC_NOINLINE void gocc__lock_failed(const char *call, int rc, const void *lock) {
    char line[256];
    int k = snprintf(line, sizeof line, "libgocc: %s failed on %p: %s (%s)\n", call, lock,
                     strerror(rc),
                     rc == EDEADLK ? "this thread already holds it"
                                   : "most likely on an object already released");
    if (k > 0) say(line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
    abort();
}

_Noreturn GOCC_NOINLINE void gocc__lock_abort(void) {
    static const char line[] = "libgocc: pthread_mutex_lock failed (most likely on an object "
                               "already released)\n";
    say(line, sizeof line - 1);
    abort();
}

_Noreturn GOCC_NOINLINE void gocc__unlock_abort(void) {
    static const char line[] = "libgocc: pthread_mutex_unlock failed (most likely on an object "
                               "already released)\n";
    say(line, sizeof line - 1);
    abort();
}

void gocc__live_counts(long out[GOCC__LIVE_N]) {
    for (int i = 0; i < GOCC__LIVE_N; i++)
        out[i] = atomic_load_explicit(&gocc__live[i], memory_order_relaxed);
}
