/*
 * load-time.c - libgocc is a good guest in someone else's process: loading
 * it starts no thread and installs no signal handler, and the runtime starts
 * only on first use (design: "no threads, signal handlers or allocations at
 * load time"; that no code of ours runs at load at all is checked by
 * check-symbols.py, which finds no constructor sections in libgocc).
 *
 *     load-time LIBSO VERSION
 *
 * dlopen()s the shared library LIBSO (this program does not link libgocc)
 * and checks, counting the entries of /proc/self/task and reading every
 * signal's disposition before and after:
 *  1. dlopen adds no thread and changes no signal disposition;
 *  2. the calls that need no runtime (gocc_version, gocc_strerror, gocc_now,
 *     gocc_runtime_config_get, gocc_runtime_threads, gocc_tasks_live) start
 *     no thread either, and gocc_version() is VERSION (meson's project
 *     version) and the header's GOCC_VERSION_MAJOR.MINOR.PATCH;
 *  3. the first gocc_go does start a thread (so the count in 1-2 could see
 *     one), and the task runs;
 *  4. when the library has gocc_runtime_shutdown: after the task ended it
 *     returns 0, every thread of ours is gone, and dlclose() unloads the
 *     library with nothing of ours left running.
 * Exit 0 when all hold; 1 with the first failure on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* NSIG */
#endif

#include <gocc.h> /* types and macros only: functions come from dlsym */

#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAIL(...)                                         \
    do {                                                  \
        fprintf(stderr, "load-time: FAIL: " __VA_ARGS__); \
        fputc('\n', stderr);                              \
        exit(1);                                          \
    } while (0)

#define STR_(x) #x
#define STR(x) STR_(x)

/* ThreadSanitizer starts its own background thread with the first
 * pthread_create, and keeps it: after shutdown one thread more may remain. */
#ifdef GOCC_TEST_TSAN
#define SANITIZER_THREADS 1
#else
#define SANITIZER_THREADS 0
#endif

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) FAIL("cannot open /proc/self/task");
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Every signal's disposition: handler address and flags. */
typedef struct {
    int rc[NSIG];
    unsigned char handler[NSIG][sizeof(void (*)(int))];
    int flags[NSIG];
} dispositions_t;

static void read_dispositions(dispositions_t *d) {
    memset(d, 0, sizeof *d);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        d->rc[s] = sigaction(s, NULL, &sa);
        /* sa_handler and sa_sigaction share storage: its bytes cover both. */
        memcpy(d->handler[s], &sa.sa_handler, sizeof d->handler[s]);
        d->flags[s] = sa.sa_flags;
    }
}

static void same_dispositions(const dispositions_t *a, const dispositions_t *b, const char *when) {
    for (int s = 1; s < NSIG; s++)
        if (a->rc[s] != b->rc[s] ||
            memcmp(a->handler[s], b->handler[s], sizeof a->handler[s]) != 0 ||
            a->flags[s] != b->flags[s])
            FAIL("signal %d's disposition changed %s", s, when);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* fn = the function NAME of LIB, which must be there. Copied through
 * memcpy: ISO C has no cast from dlsym's void * to a function pointer. */
#define LOAD(lib, fn, name)                                    \
    do {                                                       \
        void *p_ = dlsym(lib, name);                           \
        if (!p_) FAIL("%s not exported: %s", name, dlerror()); \
        memcpy(&(fn), &p_, sizeof(fn));                        \
    } while (0)

static atomic_int task_ran;

static int mark(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    atomic_store(&task_ran, 1);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: load-time LIBSO VERSION\n");
        return 2;
    }
    dispositions_t before, after;
    read_dispositions(&before);
    const int base = count_threads();

    /* 1. Loading runs nothing. */
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) FAIL("dlopen %s: %s", argv[1], dlerror());
    if (count_threads() != base) FAIL("dlopen started %d thread(s)", count_threads() - base);
    read_dispositions(&after);
    same_dispositions(&before, &after, "by dlopen");

    /* 2. Calls that need no runtime start none. */
    const char *(*version)(void);
    const char *(*strerr)(int);
    int64_t (*now)(void);
    void (*config_get)(gocc_runtime_config_t *);
    size_t (*runtime_threads)(void);
    size_t (*tasks_live)(void);
    int (*go)(gocc_fn, gocc_ctx_t *, void *);
    int (*shutdown)(void) = NULL;
    LOAD(lib, version, "gocc_version");
    LOAD(lib, strerr, "gocc_strerror");
    LOAD(lib, now, "gocc_now");
    LOAD(lib, config_get, "gocc_runtime_config_get");
    LOAD(lib, runtime_threads, "gocc_runtime_threads");
    LOAD(lib, tasks_live, "gocc_tasks_live");
    LOAD(lib, go, "gocc_go");
    void *shutdown_sym = dlsym(lib, "gocc_runtime_shutdown"); /* may be absent */
    if (shutdown_sym) memcpy(&shutdown, &shutdown_sym, sizeof shutdown);

    const char *v = version();
    const char *header =
        STR(GOCC_VERSION_MAJOR) "." STR(GOCC_VERSION_MINOR) "." STR(GOCC_VERSION_PATCH);
    if (!v || strcmp(v, argv[2]) != 0)
        FAIL("gocc_version() is \"%s\", the project's version \"%s\"", v ? v : "(null)", argv[2]);
    if (strcmp(v, header) != 0) FAIL("gocc_version() is \"%s\", gocc.h says \"%s\"", v, header);
    if (strcmp(strerr(GOCC_ECANCELED), "context canceled") != 0)
        FAIL("gocc_strerror(GOCC_ECANCELED) is \"%s\"", strerr(GOCC_ECANCELED));
    if (now() <= 0) FAIL("gocc_now() is not positive");
    gocc_runtime_config_t cfg;
    config_get(&cfg);
    if (cfg.stack_size == 0 || cfg.idle_timeout_ns <= 0) FAIL("runtime defaults not filled in");
    if (runtime_threads() != 0)
        FAIL("gocc_runtime_threads() is %zu before any task", runtime_threads());
    if (tasks_live() != 0) FAIL("gocc_tasks_live() is %zu before any task", tasks_live());
    if (count_threads() != base) FAIL("a runtime-free call started a thread");
    read_dispositions(&after);
    same_dispositions(&before, &after, "by the first calls");
    printf("load-time: dlopen and %s's first calls: %d thread(s) before and after, "
           "no signal disposition changed\n",
           v, base);

    /* 3. The runtime starts on first use, and the count sees its thread. */
    if (go(mark, NULL, NULL) != 0) FAIL("gocc_go failed");
    int started = count_threads();
    if (started <= base) FAIL("gocc_go started no thread that /proc/self/task shows");
    for (int i = 0; i < 5000 && (tasks_live() != 0 || !atomic_load(&task_ran)); i++) sleep_ms(1);
    if (!atomic_load(&task_ran) || tasks_live() != 0)
        FAIL("the task did not run and end within 5 s");
    printf("load-time: first gocc_go: %d thread(s)\n", started);

    /* 4. Shutdown stops every thread of ours; then the library unloads. */
    if (!shutdown) {
        printf("load-time: no gocc_runtime_shutdown in this library: unload not checked\n");
        return 0;
    }
    int rc = shutdown();
    if (rc != 0) FAIL("gocc_runtime_shutdown() = %d (%s) with nothing running", rc, strerr(rc));
    int left = count_threads();
    for (int i = 0; i < 5000 && left > base + SANITIZER_THREADS; i++) {
        sleep_ms(1);
        left = count_threads();
    }
    if (left > base + SANITIZER_THREADS)
        FAIL("%d thread(s) left 5 s after gocc_runtime_shutdown (%d before loading)", left, base);
    if (runtime_threads() != 0)
        FAIL("gocc_runtime_threads() is %zu after shutdown", runtime_threads());
    if (dlclose(lib) != 0) FAIL("dlclose: %s", dlerror());
    sleep_ms(50); /* a thread of ours still running would crash in unmapped code */
    if (count_threads() != left) FAIL("thread count changed across dlclose");
    read_dispositions(&after);
    same_dispositions(&before, &after, "after shutdown and dlclose");
    printf("load-time: after gocc_runtime_shutdown and dlclose: %d thread(s)\n", left);
    return 0;
}
