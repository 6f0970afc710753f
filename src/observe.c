/*
 * observe.c - seeing inside a running program: task names, gocc_dump, the
 * leak check for tests, the dump on a signal and the stuck-task watchdog.
 *
 * Every thread that ever blocked in libgocc (or runs tasks) has a waiter
 * (park.c); each waiter is on one registry list here. What a thread is
 * doing lives in its waiter's gocc__obs record, which only that thread
 * writes: when it goes to sleep in park.c (reason, since, what it waits
 * on: noted beforehand in plain owner-only fields, w->wait) and when a task
 * starts or ends on it (id, start function, name). Nothing shared is
 * written on a path that does not sleep, not even when a short spin
 * catches the wake.
 *
 * A coroutine task's waiter is registered once per task record (the
 * record is recycled; its obs.task_id is 0 while unused). What the
 * scheduler says of the task (runnable, running since, parked: a relaxed
 * atomic of its own, gocc__sched_task_state) is read next to the record
 * and decides what is shown: only a parked task is blocked, whatever the
 * record still says (read_rec). A parked task's call stack is walked from
 * its saved frame pointers, also under the registry lock (its stack cannot
 * be freed meanwhile), and only shown up to the first word that is not a
 * return address.
 *
 * Readers (the dump, the watchdog) copy records under the registry lock and
 * format the copies after dropping it. The lock is only ever taken here,
 * by threads that are born or exit, and by readers; a parked thread never
 * holds it, so a dump cannot deadlock with what it reports on, and it
 * never makes a running task wait (a thread waits for it only in its
 * first blocking call or at exit).
 *
 * The record is a seqlock: the owner makes seq odd, writes the fields
 * (release stores, so the odd seq is visible before any of them), makes
 * seq even again (release). A reader loads seq (acquire), the fields
 * (acquire, so none is read after the second look at seq), and seq again:
 * the same even value twice means a consistent copy. After a few failed
 * tries it takes what it has and calls the thread running. (No fences:
 * ThreadSanitizer does not model them; on x86 these orders are plain moves.)
 *
 * The signal handler only writes one byte to a pipe; the watch thread
 * (runtime-internal, not a task, started on the first opt-in) reads it and
 * writes the dump. Once started it stays (blocked in poll when both
 * features are off) until gocc_runtime_shutdown, which joins it when
 * neither is on and closes the pipe; the next opt-in starts it again.
 * Lock order (GOCC_LOCK_RANKS): watch.mu and the registry lock are taken
 * alone, and together (watch.mu first) only by the fork handlers.
 */
#include "gocc-internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* ---- the registry ---- */

static gocc__mutex reg_mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_OBS_REGISTRY);
static gocc__waiter *reg_head;
static size_t reg_count;

void gocc__obs_register(gocc__waiter *w) {
    gocc__lock(&reg_mu);
    w->reg_prev = NULL;
    w->reg_next = reg_head;
    if (reg_head != NULL) reg_head->reg_prev = w;
    reg_head = w;
    reg_count++;
    gocc__unlock(&reg_mu);
}

static void waiter_made(gocc__waiter *w) {
    atomic_init(&w->obs.deadline, INT64_MAX);
#if defined(__linux__)
    w->tid = (long)syscall(SYS_gettid);
#else
    w->tid = (long)(uintptr_t)pthread_self();
#endif
    gocc__obs_register(w);
}

static void waiter_sleeps(gocc__waiter *w) {
    if (w->wait.reason != GOCC_WAIT_NONE && !w->wait.published) gocc__obs_publish(w);
}

const gocc__park_hooks gocc__obs_park_hooks = {
    .made = waiter_made,
    .gone = gocc__obs_unregister,
    .sleeps = waiter_sleeps,
};

void gocc__obs_unregister(gocc__waiter *w) {
    gocc__lock(&reg_mu);
    if (w->reg_prev != NULL)
        w->reg_prev->reg_next = w->reg_next;
    else
        reg_head = w->reg_next;
    if (w->reg_next != NULL) w->reg_next->reg_prev = w->reg_prev;
    reg_count--;
    gocc__unlock(&reg_mu);
}

/* ---- the owner's side of the seqlock ---- */

#define RELAXED memory_order_relaxed
#define PUT memory_order_release /* a field store inside obs_begin/obs_end */
#define GET memory_order_acquire /* a field load inside a reader's copy */

static inline void obs_begin(gocc__obs *o) {
    uint32_t s = atomic_load_explicit(&o->seq, RELAXED);
    atomic_store_explicit(&o->seq, s + 1, RELAXED);
}

static inline void obs_end(gocc__obs *o) {
    uint32_t s = atomic_load_explicit(&o->seq, RELAXED);
    atomic_store_explicit(&o->seq, s + 1, memory_order_release);
}

/* name_local (NUL-padded) -> the atomic copy readers take. */
static void publish_name(gocc__waiter *w) {
    for (size_t i = 0; i < 4; i++) {
        uint64_t word;
        memcpy(&word, w->name_local + 8 * i, 8);
        atomic_store_explicit(&w->obs.name[i], word, PUT);
    }
}

/* The thread is about to sleep for w->wait: make it visible. The time
 * blocked counts from here; a spin before it lasted microseconds. */
/* A coroutine task publishes at every park (it has no spin to catch the
 * wake first), so it reads the coarse clock: a few ns instead of tens, a
 * tick (1-4 ms) behind, which only makes a wait look that much longer. */
static int64_t park_time(const gocc__waiter *w) {
#if defined(CLOCK_MONOTONIC_COARSE)
    if (w->task != NULL) {
        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
            return (int64_t)ts.tv_sec * GOCC_SECOND + ts.tv_nsec;
    }
#else
    (void)w;
#endif
    return gocc_now();
}

void gocc__obs_publish(gocc__waiter *w) {
    const gocc__waitinfo *i = &w->wait;
    gocc__obs *o = &w->obs;
    int64_t now = park_time(w);
    obs_begin(o);
    atomic_store_explicit(&o->reason, i->reason, PUT);
    atomic_store_explicit(&o->since, now, PUT);
    atomic_store_explicit(&o->obj, (uintptr_t)i->obj, PUT);
    atomic_store_explicit(&o->detail, i->detail, PUT);
    atomic_store_explicit(&o->len, i->len, PUT);
    atomic_store_explicit(&o->deadline, i->deadline, PUT);
    atomic_store_explicit(&o->has_ctx, i->has_ctx, PUT);
    obs_end(o);
    w->wait.published = true;
    GOCC_PROBE2(park, i->reason, (uintptr_t)i->obj);
}

void gocc__obs_clear(gocc__waiter *w) {
    gocc__obs *o = &w->obs;
    GOCC_PROBE1(unpark, w->wait.reason);
    obs_begin(o);
    atomic_store_explicit(&o->reason, GOCC_WAIT_NONE, PUT);
    obs_end(o);
    w->wait.published = false;
}

/* ---- names ---- */

/* The OS name this thread goes back to when a task's own name ends: the
 * runtime's ("gocc", "workpool-3"), or for an application thread the name
 * it had before it first named itself. */
static GOCC_TLS char base_name[16];

/* dst[cap] gets the first cap - 1 bytes of src and a NUL. */
static void copy_trunc(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_os_name(const char *name) {
#if defined(__linux__) || defined(__GLIBC__)
    char os[16];
    copy_trunc(os, sizeof os, name);
    (void)pthread_setname_np(pthread_self(), os); /* GNU extension */
#else
    (void)name;
#endif
}

void gocc__os_thread_name(const char *name) {
    copy_trunc(base_name, sizeof base_name, name);
    set_os_name(base_name);
}

static void set_name_fields(gocc__waiter *w, const char *name) {
    /* Unchanged (a worker pool's worker names each job the same; most
     * tasks have no name): nothing to write. name_local is NUL-padded, so
     * a prefix match up to its NUL is a whole match. */
    const char *n = name != NULL ? name : "";
    if (strncmp(w->name_local, n, sizeof w->name_local - 1) == 0) return;
    memset(w->name_local, 0, sizeof w->name_local);
    if (name != NULL) copy_trunc(w->name_local, sizeof w->name_local, name);
    publish_name(w);
}

int gocc_task_set_name(const char *name) {
    gocc__waiter *w = gocc__self_try();
    if (w == NULL) return GOCC_ENOMEM;
    obs_begin(&w->obs);
    set_name_fields(w, name);
    obs_end(&w->obs);
    if (w->task != NULL) return 0; /* a coroutine: its worker keeps its own name */
    if (name != NULL && name[0] != '\0') {
#if defined(__linux__) || defined(__GLIBC__)
        if (!w->os_named && base_name[0] == '\0')
            (void)pthread_getname_np(pthread_self(), base_name, sizeof base_name);
#endif
        set_os_name(name);
        w->os_named = true;
    } else if (w->os_named) {
        set_os_name(base_name);
        w->os_named = false;
    }
    return 0;
}

const char *gocc_task_name(void) {
    gocc__waiter *w = gocc__self_peek();
    return w != NULL ? w->name_local : "";
}

/* ---- tasks ---- */

void gocc__obs_task_begin(gocc__waiter *w, uint64_t id, gocc_fn fn, const char *name) {
    if (w == NULL) return;
    obs_begin(&w->obs);
    atomic_store_explicit(&w->obs.task_id, id, PUT);
    atomic_store_explicit(&w->obs.fn, (uintptr_t)fn, PUT);
    set_name_fields(w, name);
    obs_end(&w->obs);
}

void gocc__obs_task_end(gocc__waiter *w) {
    if (w == NULL) return;
    obs_begin(&w->obs);
    atomic_store_explicit(&w->obs.task_id, 0, PUT);
    atomic_store_explicit(&w->obs.fn, 0, PUT);
    set_name_fields(w, NULL);
    obs_end(&w->obs);
    if (w->os_named) { /* the task's name ends with it */
        set_os_name(base_name);
        w->os_named = false;
    }
}

/* ---- reading records ---- */

/* Frames shown for a parked task (one more is walked to tell that the
 * stack goes on). */
#define STACK_MAX 32
/* The watchdog walks the stacks of at most this many newly stuck tasks per
 * look; the rest are reported without one. */
#define REPORT_STACKS 64

typedef struct obs_rec {
    uint64_t task_id;
    uintptr_t fn, obj;
    int reason; /* GOCC_WAIT_NONE unless it is blocked now (see read_rec) */
    int state;  /* a coroutine task's GOCC__TASK_*; NONE for a thread */
    bool coro;  /* a coroutine task's waiter (else a thread's) */
    bool has_ctx;
    bool torn;   /* no consistent copy could be had: the thread is busy */
    bool report; /* the watchdog reports it (first time past the threshold) */
    int npcs;    /* return addresses in pcs (a parked task's walk) */
    long tid;
    int64_t since, detail, len, deadline;
    int64_t run_since; /* a running coroutine task: when it last started */
    const uintptr_t *pcs;
    char name[32];
} obs_rec;

static bool is_blocked(const obs_rec *r) { return r->reason != GOCC_WAIT_NONE; }

/* An entry of the dump: every task, and every other thread blocked here.
 * A coroutine without a task id (a free record, or runtime work between
 * jobs) is neither. */
static bool is_entry(const obs_rec *r) { return r->task_id != 0 || (!r->coro && is_blocked(r)); }

/* One copy of @p w's record. A coroutine task's scheduler state is its own
 * relaxed atomic, outside the seqlock: it is read before and after the
 * copy, and the copy is taken again (a few times) until both agree. The
 * state then decides: only a PARKED task is blocked. One whose record
 * still names a wait but that is RUNNABLE was just woken; one that is
 * RUNNING is on its worker (about to sleep, or just back: the record is
 * cleared when it next runs in libgocc). A PARKED task whose record names
 * no wait is one whose wake is already on its way (it parked after a
 * waker claimed it): runnable. */
static void read_rec(gocc__waiter *w, obs_rec *r) {
    const gocc__obs *o = &w->obs;
    r->tid = w->tid;
    r->coro = w->task != NULL;
    r->report = false;
    r->npcs = 0;
    r->pcs = NULL;
    r->state = GOCC__TASK_NONE;
    r->run_since = 0;
    for (int tries = 0;; tries++) {
        int st = r->coro ? gocc__sched_task_state(w, NULL) : GOCC__TASK_NONE;
        uint32_t s1 = atomic_load_explicit(&o->seq, memory_order_acquire);
        r->task_id = atomic_load_explicit(&o->task_id, GET);
        r->fn = atomic_load_explicit(&o->fn, GET);
        r->obj = atomic_load_explicit(&o->obj, GET);
        r->reason = atomic_load_explicit(&o->reason, GET);
        r->has_ctx = atomic_load_explicit(&o->has_ctx, GET);
        r->since = atomic_load_explicit(&o->since, GET);
        r->detail = atomic_load_explicit(&o->detail, GET);
        r->len = atomic_load_explicit(&o->len, GET);
        r->deadline = atomic_load_explicit(&o->deadline, GET);
        for (size_t i = 0; i < 4; i++) {
            uint64_t word = atomic_load_explicit(&o->name[i], GET);
            memcpy(r->name + 8 * i, &word, 8);
        }
        r->name[sizeof r->name - 1] = '\0';
        uint32_t s2 = atomic_load_explicit(&o->seq, RELAXED);
        r->torn = (s1 & 1) != 0 || s1 != s2;
        if (r->coro) r->state = gocc__sched_task_state(w, &r->run_since);
        if ((!r->torn && r->state == st) || tries == 64) break;
    }
    if (r->torn) r->reason = GOCC_WAIT_NONE; /* it is moving: call it running */
    if (!r->coro) return;
    if (r->state != GOCC__TASK_PARKED)
        r->reason = GOCC_WAIT_NONE;
    else if (r->reason == GOCC_WAIT_NONE)
        r->state = GOCC__TASK_RUNNABLE;
}

/* Tasks first, oldest (lowest id) first; then threads by OS id. */
static int rec_order(const void *pa, const void *pb) {
    const obs_rec *a = pa, *b = pb;
    if ((a->task_id == 0) != (b->task_id == 0)) return a->task_id == 0 ? 1 : -1;
    if (a->task_id != b->task_id) return a->task_id < b->task_id ? -1 : 1;
    return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* What collect hands back: the records, and the frames their pcs point
 * into. */
typedef struct snap {
    obs_rec *recs;
    long n;
    uintptr_t *frames; /* slots of STACK_MAX + 1 return addresses */
} snap;

static void snap_free(snap *s) {
    gocc__free(s->recs);
    gocc__free(s->frames);
}

/* A parked task's call stack into @p pcs (STACK_MAX + 1 slots), taken
 * under the registry lock (the record and its stack cannot be freed
 * meanwhile). The walk reads a stack its task may resume on: it is kept
 * only if the task stayed parked, not run since, throughout. */
static void walk_stack(gocc__waiter *w, obs_rec *r, uintptr_t *pcs) {
    int64_t before, after;
    if (gocc__sched_task_state(w, &before) != GOCC__TASK_PARKED) return;
    int n = gocc__sched_task_stack(w, pcs, STACK_MAX + 1);
    if (gocc__sched_task_state(w, &after) != GOCC__TASK_PARKED || after != before) return;
    r->npcs = n;
    r->pcs = pcs;
}

/* Copy every record (and, when @p threshold > 0, mark the tasks blocked
 * longer than it that were not reported in this blocking episode yet),
 * sorted by rec_order. Call stacks: of every blocked task with
 * @p all_stacks, else of up to REPORT_STACKS of the marked ones.
 * Returns 0, or -1 when out of memory. */
static int collect(snap *out, int64_t now, int64_t threshold, bool all_stacks) {
    obs_rec *recs = NULL;
    uintptr_t *frames = NULL;
    size_t cap = 0, slots = 0;
    for (;;) {
        gocc__lock(&reg_mu);
        size_t n = reg_count;
        if (n <= cap) break;
        gocc__unlock(&reg_mu);
        gocc__free(recs);
        gocc__free(frames);
        frames = NULL;
        cap = n + n / 4 + 16;
        slots = all_stacks ? cap : REPORT_STACKS;
        if ((recs = gocc__malloc(cap * sizeof *recs)) == NULL) return -1;
        /* Without room for the stacks the dump goes on without them. */
        frames = gocc__malloc(slots * (STACK_MAX + 1) * sizeof *frames);
        if (frames == NULL) slots = 0;
    }
    size_t n = 0, used = 0;
    for (gocc__waiter *w = reg_head; w != NULL; w = w->reg_next) {
        obs_rec *r = &recs[n];
        read_rec(w, r);
        if (!is_entry(r)) continue;
        if (threshold > 0 && r->task_id != 0 && is_blocked(r) && now - r->since >= threshold &&
            atomic_load_explicit(&w->obs.reported_since, RELAXED) != r->since) {
            atomic_store_explicit(&w->obs.reported_since, r->since, RELAXED);
            r->report = true;
        }
        if (r->coro && is_blocked(r) && (all_stacks || r->report) && used < slots)
            walk_stack(w, r, frames + (used++) * (STACK_MAX + 1));
        n++;
    }
    gocc__unlock(&reg_mu);
    if (n > 1) qsort(recs, n, sizeof *recs, rec_order);
    *out = (snap){recs, (long)n, frames};
    return 0;
}

/* ---- formatting ---- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? 2 * b->cap : 4096;
        while (ncap < b->len + (size_t)n + 1) ncap *= 2;
        char *np = gocc__realloc(b->p, ncap);
        if (np == NULL) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* ---- what each wait reason shows ----
 *
 * One row per GOCC_WAIT_* reason: the words in the entry's brackets, and
 * the detail line under it (the object waited on and what is known of the
 * wait). A new reason is one row here (the assertion below fails to
 * compile without it). */
typedef struct reason_row reason_row;
struct reason_row {
    const char *text; /* "chan receive": in the brackets */
    const char *what; /* "channel": the detail line names the object so */
    const char *note; /* said after its address (line_obj) */
    void (*line)(strbuf *b, const obs_rec *r, const reason_row *row); /* NULL: none */
};

/* "    group 0x...: at its limit" */
static void line_obj(strbuf *b, const obs_rec *r, const reason_row *row) {
    sb_printf(b, "    %s %p%s\n", row->what, (void *)r->obj, row->note);
}

static void line_chan(strbuf *b, const obs_rec *r, const reason_row *row) {
    sb_printf(b, "    %s %p: capacity %" PRId64 ", %" PRId64 " buffered when it blocked\n",
              row->what, (void *)r->obj, r->detail, r->len);
}

static void line_select(strbuf *b, const obs_rec *r, const reason_row *row) {
    (void)row;
    sb_printf(b, "    select over %" PRId64 " case%s\n", r->detail, r->detail == 1 ? "" : "s");
}

static void line_sem(strbuf *b, const obs_rec *r, const reason_row *row) {
    if (r->obj != 0) /* none: a weight beyond the size waits for the context alone */
        sb_printf(b, "    %s %p: asking for weight %" PRId64 "\n", row->what, (void *)r->obj,
                  r->detail);
}

static void line_io(strbuf *b, const obs_rec *r, const reason_row *row) {
    static const char *const to[] = {"?", "read", "write", "read or write"};
    sb_printf(b, "    %s %" PRId64 ": waiting to %s\n", row->what, GOCC__IO_DETAIL_FD(r->detail),
              to[GOCC__IO_DETAIL_EVENTS(r->detail)]);
}

static const reason_row reasons[] = {
    [GOCC_WAIT_NONE] = {"running", NULL, NULL, NULL},
    [GOCC_WAIT_CHAN_RECV] = {"chan receive", "channel", NULL, line_chan},
    [GOCC_WAIT_CHAN_SEND] = {"chan send", "channel", NULL, line_chan},
    [GOCC_WAIT_SELECT] = {"select", NULL, NULL, line_select},
    [GOCC_WAIT_SELECT_NO_CASES] = {"select (no cases)", NULL, NULL, NULL},
    [GOCC_WAIT_SLEEP] = {"sleep", NULL, NULL, NULL}, /* "wakes in": format_entry */
    [GOCC_WAIT_SEM_ACQUIRE] = {"semaphore acquire", "semaphore", NULL, line_sem},
    [GOCC_WAIT_GROUP_GO] = {"group go", "group", ": at its limit", line_obj},
    [GOCC_WAIT_GROUP_WAIT] = {"group wait", "group", ": tasks still running", line_obj},
    [GOCC_WAIT_WAITGROUP] = {"waitgroup wait", "waitgroup", "", line_obj},
    [GOCC_WAIT_ONCE] = {"once", "once", ": its function runs on another thread", line_obj},
    [GOCC_WAIT_WORKPOOL_SUBMIT] = {"workpool submit", "workpool", ": queue full", line_obj},
    [GOCC_WAIT_WORKPOOL_SHUTDOWN] = {"workpool shutdown", "workpool", ": workers still running",
                                     line_obj},
    [GOCC_WAIT_IO] = {"io wait", "descriptor", NULL, line_io},
};
_Static_assert(GOCC_ARRAY_SIZE(reasons) == GOCC_WAIT_NREASONS,
               "every wait reason has its row in reasons[]");

/* The row of @p reason; an unknown one shows as running. */
static const reason_row *reason_of(int reason) {
    if (reason < 0 || reason >= (int)GOCC_ARRAY_SIZE(reasons)) reason = GOCC_WAIT_NONE;
    return &reasons[reason];
}

static double secs(int64_t ns) { return (double)ns / (double)GOCC_SECOND; }

/* What a dump is formatted against: the time it was taken, the runtime's
 * block threshold (read on first use: a task that has held its worker at
 * least that long shows `running, <S>s`, as the scheduler then calls its
 * worker stuck) and, made on first use (view_prepare), a cache of dladdr
 * answers and the executable segments of the loaded objects. */
typedef struct view {
    int64_t now;
    int64_t slow; /* 0 until read */
    bool prepared;
    struct sym *syms;  /* SYM_CACHE entries, or NULL: dladdr every time */
    struct code *code; /* CODE_MAX entries, or NULL: no frame is shown */
    size_t ncode;
} view;

/* dladdr scans the object's whole symbol table: its answers are kept per
 * address for the length of one dump (thousands of parked tasks share a
 * few dozen return addresses and start functions). */
#define SYM_CACHE 1024
typedef struct sym {
    uintptr_t addr; /* 0: unused */
    int ok;         /* dladdr's result */
    Dl_info info;
} sym;

#define CODE_MAX 256
typedef struct code {
    uintptr_t lo, hi; /* a readable, executable PT_LOAD segment */
} code;

static view view_make(int64_t now) { return (view){.now = now}; }

static int64_t view_slow(view *v) {
    if (v->slow == 0) {
        int64_t t = gocc__sched_threshold(); /* no lock: the dump may run from gdb */
        v->slow = t > 0 ? t : 1;
    }
    return v->slow;
}

static int add_code(struct dl_phdr_info *info, size_t size, void *p) {
    (void)size;
    view *v = p;
    for (int i = 0; i < info->dlpi_phnum && v->ncode < CODE_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & (PF_R | PF_X)) != (PF_R | PF_X)) continue;
        uintptr_t lo = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
        v->code[v->ncode++] = (code){lo, lo + (uintptr_t)ph->p_memsz};
    }
    return v->ncode == CODE_MAX;
}

static void view_prepare(view *v) {
    if (v->prepared) return;
    v->prepared = true;
    v->syms = gocc__calloc(SYM_CACHE, sizeof *v->syms);
    if ((v->code = gocc__malloc(CODE_MAX * sizeof *v->code)) != NULL)
        (void)dl_iterate_phdr(add_code, v);
}

static void view_free(view *v) {
    gocc__free(v->syms);
    gocc__free(v->code);
}

static bool in_code(const view *v, uintptr_t lo, uintptr_t hi) {
    for (size_t i = 0; i < v->ncode; i++)
        if (lo <= hi && lo >= v->code[i].lo && hi <= v->code[i].hi) return true;
    return false;
}

/* Whether @p pc is a return address: in the code of a loaded object, just
 * after a call instruction. Where a frame kept no frame pointer the walk
 * reads whatever the register held: such a word ends the stack shown
 * rather than shows as a frame. */
static bool is_return_address(const view *v, uintptr_t pc) {
#if defined(__x86_64__)
    if (pc < 8 || !in_code(v, pc - 7, pc)) return false;
    unsigned char c[7]; /* c[7 - k] is the byte at pc - k */
    memcpy(c, (const void *)(pc - 7), sizeof c);
    if (c[2] == 0xE8) return true; /* call rel32 */
    for (int k = 2; k <= 7; k++) { /* call r/m64 (FF /2), k bytes long */
        unsigned m = c[8 - k];
        if (c[7 - k] != 0xFF || ((m >> 3) & 7) != 2) continue;
        unsigned mod = m >> 6, rm = m & 7;
        int len = 2;
        if (mod != 3) {
            if (rm == 4) { /* a SIB byte */
                if (k < 3) continue;
                len++;
                if (mod == 0 && (c[9 - k] & 7) == 5) len += 4;
            } else if (mod == 0 && rm == 5) { /* rip-relative */
                len += 4;
            }
            len += mod == 1 ? 1 : mod == 2 ? 4 : 0;
        }
        if (len == k) return true;
    }
    return false;
#elif defined(__aarch64__)
    if ((pc & 3) != 0 || pc < 4 || !in_code(v, pc - 4, pc)) return false;
    uint32_t insn;
    memcpy(&insn, (const void *)(pc - 4), sizeof insn);
    return (insn & 0xFC000000u) == 0x94000000u || /* BL */
           (insn & 0xFFFFFC1Fu) == 0xD63F0000u || /* BLR */
           (insn & 0xFEFFF800u) == 0xD63F0800u;   /* BLRAA, BLRAB, BLRAAZ, BLRABZ */
#else
    return pc > 0 && in_code(v, pc - 1, pc);
#endif
}

static const Dl_info *lookup(const view *v, uintptr_t addr, Dl_info *tmp) {
    if (v->syms != NULL) {
        size_t h = (size_t)((addr >> 2) * 0x9E3779B97F4A7C15ull >> 32) % SYM_CACHE;
        for (size_t k = 0; k < 8; k++) {
            sym *e = &v->syms[(h + k) % SYM_CACHE];
            if (e->addr == 0) {
                e->addr = addr;
                e->ok = dladdr((void *)addr, &e->info);
                return e->ok != 0 ? &e->info : NULL;
            }
            if (e->addr == addr) return e->ok != 0 ? &e->info : NULL;
        }
    }
    return dladdr((void *)addr, tmp) != 0 ? tmp : NULL;
}

/* "name+0x1a (object)", "0x7f.. (object+0x1234)" or "0x7f..": @p addr
 * looked up as @p key (a return address is looked up one byte back: a call
 * that ends its function returns into the next one). */
static void format_addr(strbuf *b, const view *v, uintptr_t addr, uintptr_t key) {
    Dl_info tmp;
    const Dl_info *info = key != 0 ? lookup(v, key, &tmp) : NULL;
    if (info != NULL && info->dli_sname != NULL)
        sb_printf(b, "%s+0x%" PRIxPTR " (%s)\n", info->dli_sname, addr - (uintptr_t)info->dli_saddr,
                  info->dli_fname ? info->dli_fname : "?");
    else if (info != NULL && info->dli_fname != NULL)
        sb_printf(b, "%p (%s+0x%" PRIxPTR ")\n", (void *)addr, info->dli_fname,
                  addr - (uintptr_t)info->dli_fbase);
    else
        sb_printf(b, "%p\n", (void *)addr);
}

/* "task 7 "name" [chan receive, 1.250s]:" and the lines that explain it. */
static void format_entry(strbuf *b, const obs_rec *r, view *v) {
    int64_t now = v->now;
    if (r->task_id != 0)
        sb_printf(b, "task %" PRIu64 " \"%s\" [", r->task_id, r->name);
    else
        sb_printf(b, "thread %ld \"%s\" [", r->tid, r->name);
    if (is_blocked(r)) {
        int64_t d = now - r->since;
        sb_printf(b, "%s, %.3fs]:\n", reason_of(r->reason)->text, secs(d > 0 ? d : 0));
    } else if (r->state == GOCC__TASK_RUNNABLE) {
        sb_printf(b, "runnable]:\n");
    } else if (r->state == GOCC__TASK_RUNNING && r->run_since > 0 &&
               now - r->run_since >= view_slow(v)) {
        sb_printf(b, "running, %.3fs]:\n", secs(now - r->run_since));
    } else {
        sb_printf(b, "running]:\n");
    }

    if (is_blocked(r)) {
        const reason_row *row = reason_of(r->reason);
        if (row->line != NULL) row->line(b, r, row);
        if (r->reason == GOCC_WAIT_SLEEP && r->deadline != INT64_MAX)
            sb_printf(b, "    wakes in %.3fs\n", secs(r->deadline - now));
        else if (!r->has_ctx)
            sb_printf(b, "    context: none (nothing cancels this wait)\n");
        else if (r->deadline == INT64_MAX)
            sb_printf(b, "    context: cancellable, no deadline\n");
        else if (r->deadline >= now)
            sb_printf(b, "    context: cancellable, deadline in %.3fs\n", secs(r->deadline - now));
        else
            sb_printf(b, "    context: deadline passed %.3fs ago\n", secs(now - r->deadline));
    }
    if (r->task_id != 0) {
        sb_printf(b, "    function: ");
        format_addr(b, v, r->fn, r->fn);
        /* A coroutine task has no thread of its own (and the worker it
         * last ran on says nothing); an own_thread task has one. */
        if (!r->coro) sb_printf(b, "    os thread %ld\n", r->tid);
    }
    /* A parked task's call stack, innermost first (libgocc's own frames
     * where it parked, then its caller's), up to the first word that is no
     * return address. */
    if (r->npcs > 0) view_prepare(v);
    int i = 0;
    for (; i < r->npcs && i < STACK_MAX && is_return_address(v, r->pcs[i]); i++) {
        sb_printf(b, "    at ");
        format_addr(b, v, r->pcs[i], r->pcs[i] - 1);
    }
    if (i == STACK_MAX && r->npcs > STACK_MAX) sb_printf(b, "    at ... (more frames)\n");
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The line after the dump's first: objects made and not yet released (a
 * leak of channels or contexts shows here, where no task count sees it);
 * then, while the last gocc_runtime_shutdown was refused, what held it. */
static void format_objects(strbuf *b) {
    long n[GOCC__LIVE_N];
    gocc__live_counts(n);
    sb_printf(b,
              "live objects: %ld channels, %ld contexts, %ld timers, %ld pools, "
              "%ld worker pools, %ld fds\n",
              n[GOCC__LIVE_CHAN], n[GOCC__LIVE_CTX], n[GOCC__LIVE_TIMER], n[GOCC__LIVE_POOL],
              n[GOCC__LIVE_WORKPOOL], n[GOCC__LIVE_FD]);
    unsigned held = gocc__shutdown_held();
    if (held == 0) return;
    sb_printf(b, "gocc_runtime_shutdown refused (GOCC_EAGAIN), held by:%s%s%s%s%s\n",
              held & GOCC__HELD_TASKS ? " tasks still running;" : "",
              held & GOCC__HELD_THREADS ? " runtime threads still busy;" : "",
              held & GOCC__HELD_TIMERS
                  ? " timers in use (timers, tickers, object pools, contexts with a deadline);"
                  : "",
              held & GOCC__HELD_WATCH ? " the watch thread (stuck-task or signal dumps);" : "",
              held & GOCC__HELD_NETPOLL ? " fds still registered with the poller;" : "");
}

/* The dump of @p s into @p b. */
static int format_dump(strbuf *b, const snap *s, view *v) {
    long tasks = 0, blocked = 0;
    for (long i = 0; i < s->n; i++) {
        tasks += s->recs[i].task_id != 0;
        blocked += is_blocked(&s->recs[i]);
    }
    sb_printf(b, "libgocc dump: %ld tasks live, %ld blocked\n", tasks, blocked);
    format_objects(b);
    for (long i = 0; i < s->n; i++) format_entry(b, &s->recs[i], v);
    return (int)s->n;
}

/* A fresh snapshot with every parked task's stack, dumped into @p b. */
static int dump_into(strbuf *b) {
    int64_t now = gocc_now();
    view v = view_make(now);
    snap s;
    if (collect(&s, now, 0, true) != 0) return GOCC_ENOMEM;
    view_prepare(&v); /* the start functions repeat too */
    int entries = format_dump(b, &s, &v);
    snap_free(&s);
    view_free(&v);
    return entries;
}

int gocc_dump(int fd) {
    if (fd < 0) return GOCC_EINVAL;
    strbuf b = {0};
    int entries = dump_into(&b);
    int rc = entries < 0 ? entries : b.failed ? GOCC_ENOMEM : write_all(fd, b.p, b.len);
    gocc__free(b.p);
    return rc != 0 ? rc : entries;
}

/* ---- the leak check ---- */

int gocc_leakcheck(size_t baseline, int64_t timeout_ns, int fd) {
    int64_t deadline = gocc_now() + (timeout_ns > 0 ? timeout_ns : 0);
    int64_t nap = 100 * GOCC_MICROSECOND;
    for (;;) {
        if (gocc_tasks_live() <= baseline) return 0;
        int64_t left = deadline - gocc_now();
        if (left <= 0) break;
        int64_t d = nap < left ? nap : left;
        struct timespec ts = {(time_t)(d / GOCC_SECOND), (long)(d % GOCC_SECOND)};
        nanosleep(&ts, NULL);
        if (nap < 10 * GOCC_MILLISECOND) nap *= 2;
    }
    if (fd >= 0) {
        char line[160];
        int k = snprintf(line, sizeof line,
                         "libgocc: %zu tasks still running after %.3fs (expected at most %zu)\n",
                         gocc_tasks_live(), secs(timeout_ns > 0 ? timeout_ns : 0), baseline);
        if (k > 0) (void)write_all(fd, line, (size_t)k);
        (void)gocc_dump(fd);
    }
    return GOCC_EDEADLINE;
}

/* ---- the watch thread: dump on a signal, stuck tasks ---- */

static struct {
    gocc__mutex mu;
    pthread_cond_t cv;     /* opt-ins wait here while a shutdown joins */
    pthread_t thread;      /* valid while running (under mu) */
    bool running;          /* the thread exists (under mu) */
    bool quit;             /* shutdown is stopping the thread (under mu) */
    bool signal_on;        /* some signal dumps (under mu) */
    int64_t threshold;     /* stuck-task threshold, <= 0 off (under mu) */
    int fd;                /* where stuck reports go (under mu) */
    int pipe_rd;           /* the thread polls it */
    _Atomic int pipe_wr;   /* the handler writes 'S' here; -1 until made */
    uint64_t deadlock_key; /* the deadlock episode reported last (thread only) */
} watch = {
    .mu = GOCC__MUTEX_INITIALIZER(GOCC_LOCK_WATCH),
    .cv = PTHREAD_COND_INITIALIZER,
    .pipe_rd = -1,
    .pipe_wr = -1,
};

#define DEADLOCK_LINE "libgocc: all tasks are asleep - possible deadlock\n"

static void on_dump_signal(int signo) {
    (void)signo;
    int saved = errno; /* async-signal-safe: one write(2) */
    unsigned char c = 'S';
    ssize_t k = write(atomic_load_explicit(&watch.pipe_wr, RELAXED), &c, 1);
    (void)k;
    errno = saved;
}

/* One look for stuck tasks and for "nothing can ever wake anyone". Only
 * tasks parked in libgocc count as asleep: a running one (also one busy
 * outside libgocc for a while) or a runnable one is not. */
static void check_stuck(int64_t threshold, int fd) {
    snap s;
    int64_t now = gocc_now();
    if (collect(&s, now, threshold, false) != 0) return;
    view v = view_make(now);
    strbuf b = {0};
    bool any = false, all_asleep = s.n > 0;
    long tasks = 0;
    int64_t newest = 0;
    for (long i = 0; i < s.n; i++) {
        const obs_rec *r = &s.recs[i];
        tasks += r->task_id != 0;
        if (!is_blocked(r) || now - r->since < threshold)
            all_asleep = false;
        else if (r->since > newest)
            newest = r->since;
        if (!r->report) continue;
        if (!any) sb_printf(&b, "libgocc: blocked longer than %.3fs:\n", secs(threshold));
        any = true;
        format_entry(&b, r, &v);
    }
    /* Asleep for good: every task and every thread in a libgocc call is
     * blocked, no task is on its way to start, no timer can fire a wake. */
    if (all_asleep && (size_t)tasks == gocc_tasks_live() && gocc__timer_loud() == 0) {
        uint64_t key = (uint64_t)newest ^ ((uint64_t)s.n << 48);
        if (key != watch.deadlock_key) {
            watch.deadlock_key = key;
            sb_printf(&b, DEADLOCK_LINE);
            (void)dump_into(&b); /* a fresh look, with the call stacks */
        }
    } else if (!all_asleep) {
        watch.deadlock_key = 0; /* someone moved: a later deadlock is news */
    }
    snap_free(&s);
    view_free(&v);
    if (!b.failed && b.len > 0) {
        /* Only while still asked to, to the fd asked for: once
         * gocc_watch_stuck returned, the old fd is not written any more
         * (its owner may close it). */
        gocc__lock(&watch.mu);
        if (watch.threshold > 0 && watch.fd == fd) (void)write_all(fd, b.p, b.len);
        gocc__unlock(&watch.mu);
    }
    gocc__free(b.p);
}

static void *watch_main(void *unused) {
    (void)unused;
    gocc__os_thread_name("gocc-watch");
    for (;;) {
        gocc__lock(&watch.mu);
        int64_t threshold = watch.threshold;
        int fd = watch.fd;
        bool quit = watch.quit; /* shutdown joins us */
        gocc__unlock(&watch.mu);
        if (quit) break;

        int timeout_ms = -1; /* look a few times per threshold */
        if (threshold > 0) {
            int64_t ms = threshold / 4 / GOCC_MILLISECOND;
            timeout_ms = (int)(ms < 10 ? 10 : ms > 1000 ? 1000 : ms);
        }
        struct pollfd pfd = {.fd = watch.pipe_rd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) > 0) {
            unsigned char buf[64];
            bool dump = false;
            ssize_t k;
            while ((k = read(watch.pipe_rd, buf, sizeof buf)) > 0)
                for (ssize_t i = 0; i < k; i++) dump |= buf[i] == 'S';
            if (dump) (void)gocc_dump(STDERR_FILENO);
        }
        gocc__lock(&watch.mu); /* a poke may have changed them */
        threshold = watch.threshold;
        fd = watch.fd;
        gocc__unlock(&watch.mu);
        if (threshold > 0) check_stuck(threshold, fd);
    }
    return NULL;
}

/* With watch.mu held: the pipe and the thread exist. */
static int watch_start_locked(void) {
    gocc__assert_held(&watch.mu);
    while (watch.quit) gocc__cond_wait(&watch.cv, &watch.mu); /* a shutdown joins */
    if (watch.pipe_rd < 0) {
        int p[2];
        if (pipe(p) != 0) return errno == ENOMEM ? GOCC_ENOMEM : GOCC_EAGAIN;
        for (int i = 0; i < 2; i++) {
            (void)fcntl(p[i], F_SETFD, FD_CLOEXEC);
            (void)fcntl(p[i], F_SETFL, O_NONBLOCK); /* the handler never blocks */
        }
        watch.pipe_rd = p[0];
        atomic_store_explicit(&watch.pipe_wr, p[1], RELAXED);
    }
    if (watch.running) return 0;
    int rc = gocc__thread_create(&watch.thread, 0, watch_main, NULL);
    if (rc != 0) return rc;
    watch.running = true;
    return 0;
}

/* Make the watch thread look at its settings again now. With watch.mu
 * held, so that shutdown cannot close the pipe under us. */
static void watch_poke(void) {
    gocc__assert_held(&watch.mu);
    int fd = atomic_load_explicit(&watch.pipe_wr, RELAXED);
    unsigned char c = 'C';
    if (fd >= 0) {
        ssize_t k = write(fd, &c, 1);
        (void)k;
    }
}

int gocc_dump_on_signal(int signo) {
    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP) return GOCC_EINVAL;
    gocc__runtime_init();
    gocc__lock(&watch.mu);
    bool was_on = watch.signal_on;
    watch.signal_on = true;
    int rc = watch_start_locked();
    if (rc != 0) {
        watch.signal_on = was_on;
        gocc__unlock(&watch.mu);
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0) rc = GOCC_EINVAL;
    if (rc != 0) watch.signal_on = was_on;
    gocc__unlock(&watch.mu);
    return rc;
}

int gocc_watch_stuck(int64_t threshold_ns, int fd) {
    if (threshold_ns > 0 && fd < 0) return GOCC_EINVAL;
    gocc__runtime_init();
    gocc__lock(&watch.mu);
    int64_t old_threshold = watch.threshold;
    int old_fd = watch.fd;
    watch.threshold = threshold_ns > 0 ? threshold_ns : 0;
    watch.fd = fd;
    int rc = 0;
    if (threshold_ns > 0 && (rc = watch_start_locked()) != 0) {
        watch.threshold = old_threshold;
        watch.fd = old_fd;
    }
    watch_poke();
    gocc__unlock(&watch.mu);
    return rc;
}

/* ---- shutdown and fork ---- */

static void pipe_close(void) {
    int wr = atomic_exchange_explicit(&watch.pipe_wr, -1, RELAXED);
    if (wr >= 0) (void)close(wr);
    if (watch.pipe_rd >= 0) (void)close(watch.pipe_rd);
    watch.pipe_rd = -1;
}

int gocc__watch_shutdown(void) {
    gocc__lock(&watch.mu);
    while (watch.quit) gocc__cond_wait(&watch.cv, &watch.mu); /* another shutdown */
    if (watch.signal_on || watch.threshold > 0) {
        gocc__unlock(&watch.mu);
        return GOCC_EAGAIN;
    }
    if (watch.running) {
        watch.quit = true;
        watch_poke();
        pthread_t th = watch.thread;
        gocc__unlock(&watch.mu);
        pthread_join(th, NULL);
        gocc__lock(&watch.mu);
        watch.running = watch.quit = false;
        pthread_cond_broadcast(&watch.cv);
    }
    pipe_close(); /* no handler writes to it: dump_on_signal was never on */
    gocc__unlock(&watch.mu);
    return 0;
}

void gocc__obs_fork_prepare(void) {
    gocc__lock(&watch.mu);
    gocc__lock(&reg_mu);
}

void gocc__obs_fork_parent(void) {
    gocc__unlock(&reg_mu);
    gocc__unlock(&watch.mu);
}

/* The child: the registry holds only the forking thread (the others' waiters
 * stay allocated, unreachable: nothing in the child may touch them); no
 * watch thread, both features off (the pipe was shared with the parent: a
 * signal in the child must not make the parent dump). */
void gocc__obs_fork_child(void) {
    gocc__waiter *self = gocc__self_peek();
    reg_head = self;
    reg_count = self != NULL;
    if (self != NULL) self->reg_prev = self->reg_next = NULL;
    gocc__unlock(&reg_mu);
    pipe_close();
    watch.running = watch.quit = watch.signal_on = false;
    watch.threshold = 0;
    watch.deadlock_key = 0;
    pthread_cond_init(&watch.cv, NULL);
    gocc__unlock(&watch.mu);
}
