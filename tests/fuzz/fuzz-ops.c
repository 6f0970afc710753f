/*
 * fuzz-ops.c - a libFuzzer harness for channels, select, contexts and tasks
 * (issue 8, "Fuzzing"): the input is a small program, run on up to four
 * tasks at once, whose outcome is checked against what the API promises.
 *
 * Every operation is logged with two tickets from one global counter, taken
 * just before the call and just after it returns ("a returned before b
 * began" is then t1(a) < t0(b), a happens-before fact). Every blocking call
 * is bounded by a context (at most the run's own timeout, 50 ms), so a
 * program that deadlocks itself just times out. When every task has
 * returned, the harness closes and drains every channel and checks the log:
 *
 *  - every value received was sent, on that channel, in this run, and is
 *    received exactly once; values are tagged (producer, sequence) and carry
 *    their complement, so a torn or invented value is caught on arrival
 *  - a value whose send returned 0 was received or was still buffered at
 *    the end (nothing lost); a send that failed was never received
 *  - FIFO: if send(a) returned before send(b) began (same channel), b is not
 *    dequeued before a is (recv(b) returning before recv(a) began)
 *  - exactly one close per channel returns 0, every other GOCC_ECLOSED; no
 *    send that began after that close returned succeeds; a closed channel
 *    is never reported as "would block"; a GOCC_ECLOSED (or ok=false) came
 *    after the close began, and nothing is received after a receive saw the
 *    channel closed and empty
 *  - each call returns only what its contract allows: a context error only
 *    when that context is done (equal to gocc_ctx_err); ok=false and a
 *    zero-filled value only from a closed channel; a failed receive and the
 *    select cases not chosen leave their buffers untouched
 *  - a cancelled context is done at once, and so are its descendants; a
 *    child of a done parent is born done; a child's deadline is never later
 *    than its parent's; a value context carries its value, is done with its
 *    parent and cannot be cancelled itself; an after_func runs exactly once
 *    when its context is done, or never if its first stop returned true
 *    (a later stop returns false)
 *  - descriptors (one SOCK_SEQPACKET socketpair per channel index, both
 *    ends adopted with gocc_fd_open at the start): a record written whole
 *    (gocc_fd_write returned its size) is read exactly once from the other
 *    end, intact and in FIFO order as above, or is still queued at the end
 *    (drained with recv), unless the reading end was closed; a write never
 *    goes out in part; a read under a context error consumed nothing; a
 *    read returns 0 only after the other end's close began; the first close
 *    of an end returns 0, every later one GOCC_ECLOSED, and its number is -1
 *    after; gocc_fd_wait returns a non-empty subset of what it asked for;
 *    retain and release leave the handle as it was
 *  - gocc_tasks_live() returns to 0 (gocc_leakcheck, 5 s), and no ASan,
 *    UBSan or TSan report (the sanitizers see every run).
 *
 * With one task the program runs on the calling thread against a
 * sequential model of the channels, and every result must be the model's.
 * The one freedom: a deadline may pass at any moment, so a context error is
 * accepted where that context is done when the call returns. A blocking
 * call the model says cannot proceed is given a 200 us child context, so it
 * must block and then wake with that context's error.
 *
 * A violated invariant prints what, where and the decoded program, then
 * abort()s: libFuzzer saves the input as a crash. Built two ways: with
 * clang -fsanitize=fuzzer by tests/fuzz/run.sh, and with replay.c's main by
 * meson (test fuzz-replay, every build replays tests/fuzz/corpus).
 *
 * Input format (tests/fuzz/gen-corpus.py writes it):
 *   byte 0  bits 0-1: channels - 1; bits 2-3: tasks - 1
 *   byte 1  two bits per channel: its capacity, 0..3
 *   byte 2  two bits per shared context 1..3: bit 0 a timeout (else
 *           cancel-only), bit 1 child of the previous slot (else of slot 0,
 *           the run's context)
 *   byte 3  two bits per shared context 1..3: its timeout, 1/2/5/10 ms
 *           (descriptor ops name a socketpair by the channel bits, and
 *           read their extra bits: bit 0 the end, bit 1 a context already
 *           done (a "try"), bits 1-2 wait's events mod 3 + 1)
 *   then operations: an op byte (bits 6-7 the task, mod tasks; bits 0-5
 *   the opcode, mod N_OPCODES), an arg byte (bits 0-1 the channel, mod
 *   channels; bits 2-4 the context: 0-3 shared, 4-5 the task's own, 6-7
 *   none; bits 5-7 extra), and for a select (extra mod 5) case bytes (bits
 *   0-2: 0-3 a channel, 4 nil, 5-7 the done channel of shared context 1-3;
 *   bit 3: send, else receive). CANCEL, CTX_NEW and AFTER read the arg
 *   byte their own way (see op_cancel, op_ctx_new, op_after).
 *
 * The harness uses the public API only; it runs one program at a time
 * (libFuzzer calls it from one thread), so the run state is global.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nanosleep, sched_yield under -std=c11 */
#endif

#include <gocc.h>

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    MAX_CHANS = 4,
    MAX_TASKS = 4,
    MAX_OPS = 256, /* per run, over all tasks */
    MAX_CASES = 4,
    N_SHARED = 4, /* slot 0: the run's context */
    N_PRIV = 2,   /* each task's own contexts */
    MAX_SEQ = MAX_OPS * MAX_CASES,
    MAX_EVENTS = MAX_OPS * MAX_CASES + 64,
    FD_CHAN0 = MAX_CHANS, /* log channel of records written on end e of pair k: FD_CHAN0 + 2k + e */
    N_LOGCHANS = MAX_CHANS + 2 * MAX_CHANS,
};

enum opcode {
    OP_SEND,
    OP_RECV,
    OP_TRY_SEND,
    OP_TRY_RECV,
    OP_SELECT,
    OP_SELECT_TRY,
    OP_CLOSE,
    OP_CANCEL,
    OP_CTX_NEW,
    OP_LEN,
    OP_YIELD,
    OP_NIL,
    OP_AFTER,
    OP_FD_WRITE,
    OP_FD_READ,
    OP_FD_WAIT,
    OP_FD_CLOSE,
    OP_FD_REF,
    N_OPCODES,
};

static const char *const op_names[N_OPCODES] = {
    "send",       "recv",     "try_send", "try_recv", "select",   "select_try",
    "close",      "cancel",   "ctx_new",  "len",      "yield",    "nil",
    "after_func", "fd_write", "fd_read",  "fd_wait",  "fd_close", "fd_ref",
};

#define CTX_NONE 0xFF   /* op uses no context (NULL where the call cannot block) */
#define TARGET_NIL 4    /* case targets: 0-3 channel, 4 nil, 5-7 done channel */
#define VAL_MAGIC 0xC0u /* top byte of every tag */
#define FILL 0xA5       /* what receive buffers hold before a call */
#define CAUSE 77        /* the cause given by cancel ops that give one */
#define RC_UNSENT 1     /* log: a select's send case that was not chosen */

static const int64_t ctx_ms[4] = {1, 2, 5, 10};
static const char value_keys[N_PRIV]; /* keys of the value contexts (by address) */

/* Sequential mode: how long a call the model says blocks is let block. */
#define BLOCK_NS (200 * GOCC_MICROSECOND)

/* A value on a channel: tag = MAGIC | run | producer | channel. */
typedef struct val {
    uint32_t tag, seq, ntag, nseq;
} val_t;

typedef struct op {
    uint8_t code, arg, chan, ctx, n; /* n: select case count */
    uint8_t target[MAX_CASES];
    bool send[MAX_CASES];
} op_t;

enum ev_kind { EV_SEND, EV_RECV, EV_WOULD_BLOCK, EV_CLOSE };

/* One logged channel operation (a select logs one per case it affects). */
typedef struct ev {
    uint8_t kind, chan, code;
    uint8_t task; /* who logged it: 1..4, 0 the final close and drain */
    bool try_;    /* a non-blocking call: GOCC_EAGAIN means "would block" */
    int rc;
    val_t v;
    uint64_t t0, t1; /* tickets before the call and after it returned */
    size_t pc;       /* op index in the task, for messages */
} ev_t;

typedef struct task {
    int id; /* producer id 1..4; 0 is the harness's final close and drain */
    op_t ops[MAX_OPS];
    size_t nops, pc;
    ev_t ev[MAX_EVENTS];
    size_t nev;
    uint32_t seq; /* next value sequence number */
    gocc_ctx_t *priv[N_PRIV];
    gocc_ctx_t *priv_inner[N_PRIV]; /* under a value context: the cancel one */
    int priv_parent[N_PRIV];        /* shared slot each was made from */
    struct after {                  /* gocc_ctx_after_func registrations */
        gocc_after_func_t *h;
        int slot;
        bool stopped; /* the first stop returned true */
        atomic_int ran;
    } after[MAX_OPS];
    size_t nafter;
} task_t;

/* The sequential model of one channel (single-task runs only). */
typedef struct mchan {
    val_t buf[4];
    size_t head, len;
    bool closed;
} mchan_t;

static struct {
    unsigned nchan, ntask;
    bool seq; /* one task: run on this thread against the model */
    uint8_t run_id;
    size_t cap[MAX_CHANS];
    gocc_chan_t *ch[MAX_CHANS];
    gocc_ctx_t *shared[N_SHARED];
    int shared_parent[N_SHARED]; /* -1 for slot 0 */
    mchan_t model[MAX_CHANS];
    gocc_fd_t *fd[MAX_CHANS][2];                /* both ends of socketpair k */
    atomic_int fd_closes_ok[MAX_CHANS][2];      /* closes of an end that returned 0 */
    _Atomic uint64_t fd_close_t0[MAX_CHANS][2]; /* ticket before its first close began */
    struct fdq {                                /* sequential model: records in flight */
        val_t v[MAX_OPS];
        size_t head, len;
    } fdq[MAX_CHANS][2];          /* [k][e]: written on end e */
    bool fd_closed[MAX_CHANS][2]; /* sequential model */
    bool fd_reset[MAX_CHANS][2];  /* sequential model: a read may see ECONNRESET */
    _Atomic uint64_t ticket;
    _Atomic uint64_t progress; /* ops completed, for the quiet-run cutoff */
    atomic_uint finished;      /* tasks returned */
    task_t task[MAX_TASKS + 1];
} R;

/* Per value (producer, seq): its send and where it went. */
static struct fate {
    const ev_t *send, *deq;
    int ndeq;
} fate[MAX_TASKS + 1][MAX_SEQ];

static int64_t run_ns = 50 * GOCC_MILLISECOND;  /* GOCC_FUZZ_RUN_MS */
static int64_t quiet_ns = 2 * GOCC_MILLISECOND; /* no op completed: cut the run */
static bool verbose;                            /* GOCC_FUZZ_VERBOSE: a line per run */

/* ---- reporting ---- */

static const char *rc_name(int rc) {
    static _Thread_local char buf[32];
    switch (rc) {
    case 0: return "0";
    case RC_UNSENT: return "not chosen";
    case GOCC_ECLOSED: return "GOCC_ECLOSED";
    case GOCC_ECANCELED: return "GOCC_ECANCELED";
    case GOCC_EDEADLINE: return "GOCC_EDEADLINE";
    case GOCC_EAGAIN: return "GOCC_EAGAIN";
    case GOCC_EINVAL: return "GOCC_EINVAL";
    case GOCC_ENOMEM: return "GOCC_ENOMEM";
    default: snprintf(buf, sizeof buf, "%d", rc); return buf;
    }
}

static void print_program(void) {
    fprintf(stderr, "program: %s mode, %u channels (capacities",
            R.seq ? "sequential" : "concurrent", R.nchan);
    for (unsigned k = 0; k < R.nchan; k++) fprintf(stderr, " %zu", R.cap[k]);
    fprintf(stderr, "), %u tasks\n", R.ntask);
    for (unsigned t = 1; t <= R.ntask; t++) {
        const task_t *tk = &R.task[t];
        fprintf(stderr, "  task %u:", t);
        for (size_t i = 0; i < tk->nops; i++) {
            const op_t *o = &tk->ops[i];
            fprintf(stderr, " %s(c%u", op_names[o->code], o->chan);
            if (o->code == OP_SELECT || o->code == OP_SELECT_TRY)
                for (unsigned j = 0; j < o->n; j++)
                    fprintf(stderr, " %s%u", o->send[j] ? "s" : "r", o->target[j]);
            fprintf(stderr, ")");
        }
        fprintf(stderr, "\n");
    }
}

/* Report a broken invariant and abort (libFuzzer's crash). */
__attribute__((format(printf, 2, 3), noreturn)) static void violation(const task_t *t,
                                                                      const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "\nfuzz-ops: INVARIANT VIOLATED");
    if (t != NULL && t->id > 0)
        fprintf(stderr, " (task %d, op #%zu %s)", t->id, t->pc,
                t->pc < t->nops ? op_names[t->ops[t->pc].code] : "-");
    else if (t != NULL)
        fprintf(stderr, " (final close and drain)");
    fprintf(stderr, ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    print_program();
    fflush(stderr);
    abort();
}

/* ---- small helpers ---- */

static inline uint64_t tick(void) { return atomic_fetch_add(&R.ticket, 1) + 1; }

static bool all_bytes(const void *p, int b, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)b) return false;
    return true;
}

static inline bool is_ctx_err(int rc) { return rc == GOCC_ECANCELED || rc == GOCC_EDEADLINE; }

static inline int producer_of(const val_t *v) { return (int)((v->tag >> 8) & 0xFF); }

static val_t make_val(task_t *t, unsigned chan) {
    val_t v;
    v.tag = VAL_MAGIC << 24 | (uint32_t)R.run_id << 16 | (uint32_t)t->id << 8 | chan;
    v.seq = t->seq++;
    v.ntag = ~v.tag;
    v.nseq = ~v.seq;
    return v;
}

/* A received value must be one this run's producers could have sent on
 * channel chan, intact. */
static void check_val(const task_t *t, const val_t *v, unsigned chan, const char *what) {
    int p = producer_of(v);
    if (v->tag >> 24 != VAL_MAGIC || ((v->tag >> 16) & 0xFF) != R.run_id || p < 1 ||
        p > (int)R.ntask || (v->tag & 0xFF) != chan || v->ntag != ~v->tag || v->nseq != ~v->seq ||
        v->seq >= MAX_SEQ)
        violation(t, "%s on channel %u: invented or corrupted value tag=%08x seq=%u (%08x %08x)",
                  what, chan, v->tag, v->seq, v->ntag, v->nseq);
}

static ev_t *new_ev(task_t *t, int kind, unsigned chan, int code) {
    if (t->nev >= MAX_EVENTS) violation(t, "harness: event log full");
    ev_t *e = &t->ev[t->nev++];
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind;
    e->chan = (uint8_t)chan;
    e->code = (uint8_t)code;
    e->task = (uint8_t)t->id;
    e->pc = t->pc;
    return e;
}

/* The context an op names: shared slot, the task's own (the run's context
 * while that slot is empty), or NULL. */
static gocc_ctx_t *ctx_of(const task_t *t, unsigned sel) {
    if (sel < N_SHARED) return R.shared[sel];
    if (sel < N_SHARED + N_PRIV) {
        gocc_ctx_t *c = t->priv[sel - N_SHARED];
        return c != NULL ? c : R.shared[0];
    }
    return NULL;
}

/* True if shared slot j is s or a descendant of it. */
static bool shared_within(int j, int s) {
    while (j >= 0 && j != s) j = R.shared_parent[j];
    return j == s;
}

/* rc, a context error, must be that context's error, and it must be done. */
static void expect_ctx_err(const task_t *t, int rc, gocc_ctx_t *c, const char *what) {
    if (!is_ctx_err(rc) || c == NULL || gocc_ctx_err(c) != rc)
        violation(t, "%s returned %s; its context's error is %s", what, rc_name(rc),
                  rc_name(c ? gocc_ctx_err(c) : 0));
}

static void ctx_drop(gocc_ctx_t *c) {
    if (c == NULL) return;
    gocc_ctx_cancel(c);
    gocc_ctx_release(c);
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / GOCC_SECOND), (long)(ns % GOCC_SECOND)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- the sequential model ---- */

static void model_push(const task_t *t, mchan_t *m, unsigned k, val_t v) {
    if (m->len >= R.cap[k]) violation(t, "model: push on a full channel %u", k);
    m->buf[(m->head + m->len++) % 4] = v;
}

static val_t model_pop(mchan_t *m) {
    val_t v = m->buf[m->head];
    m->head = (m->head + 1) % 4;
    m->len--;
    return v;
}

/* Sequential mode: the context a blocking call gets. When the model says
 * the call cannot proceed and c is not done, a BLOCK_NS child of c (*sub, which
 * the caller drops), so the call must block and then return its error. */
static gocc_ctx_t *seq_ctx(const task_t *t, gocc_ctx_t *c, bool ready, gocc_ctx_t **sub) {
    *sub = NULL;
    if (ready || gocc_ctx_err(c) != 0) return c;
    *sub = gocc_ctx_with_timeout(c, BLOCK_NS);
    if (*sub == NULL) violation(t, "gocc_ctx_with_timeout failed");
    return *sub;
}

/* Sequential mode: check rc of a blocking call whose context was pre (its
 * error before the call), against the model's answer want (ready) or "it
 * blocks" (!ready). c is the context the call got. */
static void seq_check_blocking(const task_t *t, const char *what, int rc, int pre, bool ready,
                               int want, gocc_ctx_t *c) {
    if (pre != 0) {
        if (rc != pre)
            violation(t, "%s: context already done (%s) must win, got %s", what, rc_name(pre),
                      rc_name(rc));
    } else if (ready) {
        if (rc != want && !(rc != 0 && rc == gocc_ctx_err(c)))
            violation(t, "%s: model says %s, got %s", what, rc_name(want), rc_name(rc));
    } else if (!is_ctx_err(rc) || rc != gocc_ctx_err(c)) {
        violation(t, "%s: model says it blocks until its context is done, got %s", what,
                  rc_name(rc));
    }
}

/* ---- operations ---- */

static void op_send(task_t *t, const op_t *o, bool try_) {
    unsigned k = o->chan;
    mchan_t *m = &R.model[k];
    gocc_ctx_t *c = ctx_of(t, o->ctx), *sub = NULL;
    val_t v = make_val(t, k);
    ev_t *e = new_ev(t, EV_SEND, k, o->code);
    e->v = v;
    e->try_ = try_;
    bool ready = m->closed || m->len < R.cap[k];
    int pre = 0;
    if (try_) {
        c = NULL;
    } else if (R.seq) {
        pre = gocc_ctx_err(c);
        c = seq_ctx(t, c, ready, &sub);
    } else if (c == NULL) {
        c = R.shared[0]; /* never NULL for a call that may block */
    }

    e->t0 = tick();
    int rc = try_ ? gocc_chan_try_send(R.ch[k], &v) : gocc_chan_send(R.ch[k], &v, c);
    e->t1 = tick();
    e->rc = rc;

    if (try_) {
        if (rc != 0 && rc != GOCC_ECLOSED && rc != GOCC_EAGAIN)
            violation(t, "try_send returned %s", rc_name(rc));
    } else if (rc != 0 && rc != GOCC_ECLOSED) {
        expect_ctx_err(t, rc, c, "send");
    }
    if (R.seq) {
        int want = m->closed ? GOCC_ECLOSED : ready ? 0 : GOCC_EAGAIN;
        if (try_ && rc != want)
            violation(t, "try_send: model says %s, got %s", rc_name(want), rc_name(rc));
        if (!try_) seq_check_blocking(t, "send", rc, pre, ready, want, c);
        if (rc == 0) model_push(t, m, k, v);
    }
    ctx_drop(sub);
}

static void op_recv(task_t *t, const op_t *o, bool try_) {
    unsigned k = o->chan;
    mchan_t *m = &R.model[k];
    gocc_ctx_t *c = ctx_of(t, o->ctx), *sub = NULL;
    val_t out;
    memset(&out, FILL, sizeof out);
    ev_t *e = new_ev(t, EV_RECV, k, o->code);
    e->try_ = try_;
    bool ready = m->len > 0 || m->closed;
    int pre = 0;
    if (try_) {
        c = NULL;
    } else if (R.seq) {
        pre = gocc_ctx_err(c);
        c = seq_ctx(t, c, ready, &sub);
    } else if (c == NULL) {
        c = R.shared[0]; /* never NULL for a call that may block */
    }

    e->t0 = tick();
    int rc = try_ ? gocc_chan_try_recv(R.ch[k], &out) : gocc_chan_recv(R.ch[k], &out, c);
    e->t1 = tick();
    e->rc = rc;

    const char *what = try_ ? "try_recv" : "recv";
    if (rc == 0) {
        check_val(t, &out, k, what);
        e->v = out;
    } else if (rc == GOCC_ECLOSED) {
        if (!all_bytes(&out, 0, sizeof out))
            violation(t, "%s returned GOCC_ECLOSED without zero-filling out", what);
    } else if (try_) {
        if (rc != GOCC_EAGAIN) violation(t, "try_recv returned %s", rc_name(rc));
        if (!all_bytes(&out, FILL, sizeof out)) violation(t, "try_recv wrote out and failed");
    } else {
        expect_ctx_err(t, rc, c, "recv");
        if (!all_bytes(&out, FILL, sizeof out))
            violation(t, "recv wrote out and returned %s", rc_name(rc));
    }
    if (R.seq) {
        int want = m->len > 0 ? 0 : m->closed ? GOCC_ECLOSED : GOCC_EAGAIN;
        if (try_ && rc != want)
            violation(t, "try_recv: model says %s, got %s", rc_name(want), rc_name(rc));
        if (!try_) seq_check_blocking(t, "recv", rc, pre, ready, want, c);
        if (rc == 0) {
            val_t w = model_pop(m);
            if (memcmp(&w, &out, sizeof w) != 0)
                violation(t, "%s: FIFO: model's next value is producer %d seq %u, got seq %u", what,
                          producer_of(&w), w.seq, out.seq);
        }
    }
    ctx_drop(sub);
}

static void op_select(task_t *t, const op_t *o, bool try_) {
    gocc_case_t cs[MAX_CASES];
    val_t vals[MAX_CASES];
    gocc_ctx_t *done_ctx[MAX_CASES];
    bool ready[MAX_CASES], any_chan = false, any_done = false;
    unsigned n = o->n;
    for (unsigned i = 0; i < n; i++) {
        unsigned tg = o->target[i];
        done_ctx[i] = NULL;
        ready[i] = false;
        cs[i].ok = true;
        if (tg < TARGET_NIL) {
            mchan_t *m = &R.model[tg];
            cs[i].ch = R.ch[tg];
            cs[i].dir = o->send[i] ? GOCC_SEND : GOCC_RECV;
            if (o->send[i])
                vals[i] = make_val(t, tg);
            else
                memset(&vals[i], FILL, sizeof vals[i]);
            ready[i] = m->closed || (o->send[i] ? m->len < R.cap[tg] : m->len > 0);
            any_chan |= ready[i];
        } else if (tg == TARGET_NIL) {
            cs[i].ch = NULL;
            cs[i].dir = o->send[i] ? GOCC_SEND : GOCC_RECV;
            memset(&vals[i], FILL, sizeof vals[i]);
        } else { /* a context's done channel: receive only (elem size 0) */
            done_ctx[i] = R.shared[tg - TARGET_NIL];
            cs[i].ch = gocc_ctx_done(done_ctx[i]);
            if (cs[i].ch == NULL) violation(t, "gocc_ctx_done of a cancellable context is NULL");
            cs[i].dir = GOCC_RECV;
            memset(&vals[i], FILL, sizeof vals[i]);
            ready[i] = gocc_ctx_err(done_ctx[i]) != 0;
            any_done |= ready[i];
        }
        cs[i].elem = &vals[i];
    }
    gocc_ctx_t *c = try_ ? NULL : ctx_of(t, o->ctx), *sub = NULL;
    int pre = 0;
    if (!try_ && R.seq) {
        pre = gocc_ctx_err(c);
        c = seq_ctx(t, c, any_chan || any_done, &sub);
    } else if (!try_ && c == NULL) {
        c = R.shared[0];
    }

    const char *what = try_ ? "select_try" : "select";
    uint64_t t0 = tick();
    int rc = try_ ? gocc_select_try(cs, n) : gocc_select(cs, n, c);
    uint64_t t1 = tick();

    if (rc >= 0) {
        if ((unsigned)rc >= n) violation(t, "%s returned %d for %u cases", what, rc, n);
        unsigned tg = o->target[rc];
        if (tg == TARGET_NIL) violation(t, "%s chose case %d, a nil channel", what, rc);
        if (pre != 0)
            violation(t, "%s: context already done (%s) must win, got case %d", what, rc_name(pre),
                      rc);
        if (tg > TARGET_NIL) {
            if (cs[rc].ok) violation(t, "%s: done-channel case %d chosen with ok=true", what, rc);
            if (gocc_ctx_err(done_ctx[rc]) == 0)
                violation(t, "%s chose the done channel of a context that is not done", what);
            if (!all_bytes(&vals[rc], FILL, sizeof vals[rc]))
                violation(t, "%s: a done-channel case (elem size 0) wrote its elem", what);
        } else {
            mchan_t *m = &R.model[tg];
            ev_t *e = new_ev(t, o->send[rc] ? EV_SEND : EV_RECV, tg, o->code);
            e->t0 = t0;
            e->t1 = t1;
            e->rc = cs[rc].ok ? 0 : GOCC_ECLOSED;
            if (o->send[rc]) {
                e->v = vals[rc];
            } else if (cs[rc].ok) {
                check_val(t, &vals[rc], tg, what);
                e->v = vals[rc];
            } else if (!all_bytes(&vals[rc], 0, sizeof vals[rc])) {
                violation(t, "%s: receive case %d ok=false without zero-filling elem", what, rc);
            }
            if (R.seq) {
                if (!ready[rc])
                    violation(t, "%s chose case %d, which the model says is not ready", what, rc);
                bool want_ok = o->send[rc] ? !m->closed : m->len > 0;
                if (cs[rc].ok != want_ok)
                    violation(t, "%s: case %d ok=%d, model's channel %u closed=%d len=%zu", what,
                              rc, cs[rc].ok, tg, m->closed, m->len);
                if (o->send[rc] && cs[rc].ok) model_push(t, m, tg, vals[rc]);
                if (!o->send[rc] && cs[rc].ok) {
                    val_t w = model_pop(m);
                    if (memcmp(&w, &vals[rc], sizeof w) != 0)
                        violation(t, "%s: FIFO: model's next value is seq %u, got seq %u", what,
                                  w.seq, vals[rc].seq);
                }
            }
        }
    } else if (try_) {
        if (rc != GOCC_EAGAIN) violation(t, "select_try returned %s", rc_name(rc));
        if (R.seq && (any_chan || any_done))
            violation(t, "select_try: GOCC_EAGAIN but the model has a ready case");
    } else {
        expect_ctx_err(t, rc, c, "select"); /* also when a case was ready: c is done */
    }
    /* The other cases: send values not chosen were not sent; receive
     * buffers not chosen are untouched; a select_try that found nothing
     * ready says every channel in it would block. */
    for (unsigned i = 0; i < n; i++) {
        if ((int)i == rc) continue;
        unsigned tg = o->target[i];
        if (o->send[i] && tg < TARGET_NIL) {
            ev_t *e = new_ev(t, EV_SEND, tg, o->code);
            e->t0 = t0;
            e->t1 = t1;
            e->rc = RC_UNSENT;
            e->v = vals[i];
        } else if (!all_bytes(&vals[i], FILL, sizeof vals[i])) {
            violation(t, "%s returned %s but wrote the elem of receive case %u", what, rc_name(rc),
                      i);
        }
        if (rc == GOCC_EAGAIN && tg < TARGET_NIL) {
            ev_t *e = new_ev(t, EV_WOULD_BLOCK, tg, o->code);
            e->t0 = t0;
            e->t1 = t1;
            e->rc = GOCC_EAGAIN;
            e->try_ = true;
        }
    }
    ctx_drop(sub);
}

static void op_close(task_t *t, const op_t *o) {
    unsigned k = o->chan;
    ev_t *e = new_ev(t, EV_CLOSE, k, o->code);
    e->t0 = tick();
    int rc = gocc_chan_close(R.ch[k]);
    e->t1 = tick();
    e->rc = rc;
    if (rc != 0 && rc != GOCC_ECLOSED) violation(t, "close returned %s", rc_name(rc));
    if (R.seq) {
        int want = R.model[k].closed ? GOCC_ECLOSED : 0;
        if (rc != want) violation(t, "close: model says %s, got %s", rc_name(want), rc_name(rc));
        R.model[k].closed = true;
    }
}

/* arg bits 0-1: shared slot 1-3, or 0: the task's own slot (bit 2);
 * bit 3: cancel with a cause. The run's context is never cancelled here. */
static void op_cancel(task_t *t, const op_t *o) {
    int s = o->arg & 3;
    gocc_ctx_t *c = s ? R.shared[s] : t->priv[(o->arg >> 2) & 1];
    if (c == NULL) return;
    bool with_cause = (o->arg & 8) != 0;
    gocc_ctx_t *inner = s ? NULL : t->priv_inner[(o->arg >> 2) & 1];
    if (inner != NULL) { /* a value context: cancelling it does nothing */
        int before = gocc_ctx_err(inner);
        gocc_ctx_cancel_cause(c, CAUSE);
        int got = gocc_ctx_err(c), after = gocc_ctx_err(inner);
        if ((before == 0 && after == 0 && got != 0) || (before != 0 && got != before))
            violation(t, "cancel of a value context: its error %s, its parent's %s then %s",
                      rc_name(got), rc_name(before), rc_name(after));
        return;
    }
    int pre = gocc_ctx_err(c);
    if (with_cause)
        gocc_ctx_cancel_cause(c, CAUSE);
    else
        gocc_ctx_cancel(c);
    int err = gocc_ctx_err(c);
    if (!is_ctx_err(err)) violation(t, "a context is not done after cancel: err %s", rc_name(err));
    int cause = gocc_ctx_cause(c);
    if (R.seq && pre == 0 && err == GOCC_ECANCELED && cause != (with_cause ? CAUSE : err))
        violation(t, "cancel%s: cause %s", with_cause ? "_cause(77)" : "", rc_name(cause));
    if (cause != CAUSE && !is_ctx_err(cause))
        violation(t, "cause %s was never given", rc_name(cause));
    if (s == 0) return;
    for (int j = 1; j < N_SHARED; j++)
        if (shared_within(j, s) && gocc_ctx_err(R.shared[j]) == 0)
            violation(t, "shared context %d (a descendant of %d) not done after cancel", j, s);
    for (int i = 0; i < N_PRIV; i++)
        if (t->priv[i] && shared_within(t->priv_parent[i], s) && gocc_ctx_err(t->priv[i]) == 0)
            violation(t, "own context %d (a descendant of %d) not done after cancel", i, s);
}

/* Drop what the task's own slot i holds. */
static void priv_drop(task_t *t, int i) {
    ctx_drop(t->priv[i]);
    ctx_drop(t->priv_inner[i]);
    t->priv[i] = t->priv_inner[i] = NULL;
}

/* arg bit 0: own slot; bits 1-2: parent shared slot; bit 3: a timeout
 * (else cancel-only); bits 4-5: its timeout, 1/2/5/10 ms; bit 6: wrapped
 * in a value context (done when the wrapped one is, not cancellable
 * itself). Replaces (cancels and releases) what the slot held. */
static void op_ctx_new(task_t *t, const op_t *o) {
    int i = o->arg & 1, ps = (o->arg >> 1) & 3;
    bool timeout = (o->arg & 8) != 0;
    priv_drop(t, i);
    gocc_ctx_t *parent = R.shared[ps];
    int pre = gocc_ctx_err(parent);
    int64_t pdl = 0, dl = 0;
    bool phas = gocc_ctx_deadline(parent, &pdl);
    gocc_ctx_t *c =
        timeout ? gocc_ctx_with_timeout(parent, ctx_ms[(o->arg >> 4) & 3] * GOCC_MILLISECOND)
                : gocc_ctx_with_cancel(parent);
    if (c == NULL) violation(t, "context constructor failed");
    if (pre != 0 && gocc_ctx_err(c) == 0) violation(t, "child of a done context is not born done");
    bool has = gocc_ctx_deadline(c, &dl);
    if (has != (timeout || phas))
        violation(t, "child has_deadline=%d (timeout %d, parent %d)", has, timeout, phas);
    if (has && phas && dl > pdl) violation(t, "child's deadline is later than its parent's");
    t->priv_parent[i] = ps;
    if (!(o->arg & 0x40)) {
        t->priv[i] = c;
        return;
    }
    gocc_ctx_t *v = gocc_ctx_with_value(c, &value_keys[i], t);
    if (v == NULL) violation(t, "gocc_ctx_with_value failed");
    int64_t vdl = 0;
    if (gocc_ctx_deadline(v, &vdl) != has || (has && vdl != dl))
        violation(t, "a value context's deadline differs from its parent's");
    if (gocc_ctx_value(v, &value_keys[i]) != t || gocc_ctx_value(v, &value_keys[1 - i]) != NULL ||
        gocc_ctx_value(c, &value_keys[i]) != NULL)
        violation(t, "gocc_ctx_value: wrong value for a key");
    if (pre != 0 && gocc_ctx_err(v) == 0) violation(t, "value child of a done context is not done");
    t->priv[i] = v;
    t->priv_inner[i] = c;
}

static void after_fn(void *arg) {
    struct after *a = arg;
    atomic_fetch_add_explicit(&a->ran, 1, memory_order_relaxed);
}

/* gocc_ctx_after_func on shared slot arg bits 0-1; bit 2: stop it at once
 * (bit 3: and stop again, which must return false). Checked once every
 * context is done: each function ran exactly once unless a stop returned
 * true, and then never (check_after_funcs). */
static void op_after(task_t *t, const op_t *o) {
    struct after *a = &t->after[t->nafter++];
    a->slot = o->arg & 3;
    a->stopped = false;
    atomic_init(&a->ran, 0);
    int rc = gocc_ctx_after_func(R.shared[a->slot], after_fn, a, &a->h);
    if (rc != 0 || a->h == NULL) violation(t, "gocc_ctx_after_func: %s", rc_name(rc));
    if (o->arg & 4) {
        a->stopped = gocc_ctx_after_func_stop(a->h);
        if ((o->arg & 8) && gocc_ctx_after_func_stop(a->h))
            violation(t, "a second gocc_ctx_after_func_stop returned true");
    }
}

static void op_len(task_t *t, const op_t *o) {
    unsigned k = o->chan;
    size_t len = gocc_chan_len(R.ch[k]), cap = gocc_chan_cap(R.ch[k]);
    if (cap != R.cap[k]) violation(t, "cap %zu, made with %zu", cap, R.cap[k]);
    if (len > cap) violation(t, "len %zu > cap %zu", len, cap);
    if (R.seq && len != R.model[k].len) violation(t, "len %zu, model %zu", len, R.model[k].len);
}

/* extra bit 0: gocc_sleep 50 us on the op's context, else sched_yield. */
static void op_yield(task_t *t, const op_t *o) {
    if (!(o->arg & 0x20)) {
        sched_yield();
        return;
    }
    gocc_ctx_t *c = ctx_of(t, o->ctx);
    int rc = gocc_sleep(50 * GOCC_MICROSECOND, c);
    if (rc != 0) expect_ctx_err(t, rc, c, "sleep");
}

/* Send or receive (extra bit 0) on the nil channel: blocks until the
 * context is done; with no context GOCC_EINVAL at once. try_* never block. */
static void op_nil(task_t *t, const op_t *o) {
    bool send = (o->arg & 0x20) != 0;
    val_t v;
    memset(&v, FILL, sizeof v);
    if ((send ? gocc_chan_try_send(NULL, &v) : gocc_chan_try_recv(NULL, &v)) != GOCC_EAGAIN)
        violation(t, "try op on the nil channel is not GOCC_EAGAIN");
    gocc_ctx_t *c = ctx_of(t, o->ctx), *sub = NULL;
    if (R.seq && c != NULL) c = seq_ctx(t, c, false, &sub);
    int rc = send ? gocc_chan_send(NULL, &v, c) : gocc_chan_recv(NULL, &v, c);
    if (c == NULL) {
        if (rc != GOCC_EINVAL) violation(t, "nil channel, no context: %s", rc_name(rc));
    } else {
        expect_ctx_err(t, rc, c, send ? "send on nil" : "recv on nil");
    }
    if (!all_bytes(&v, FILL, sizeof v)) violation(t, "an op on the nil channel wrote its buffer");
    ctx_drop(sub);
}

/* ---- descriptors: SOCK_SEQPACKET socketpairs through gocc_fd_* ---- */

static unsigned fd_chan(unsigned k, unsigned end) { return FD_CHAN0 + 2 * k + end; }

/* The context a descriptor op waits under: the op's, never NULL (the run's
 * context bounds every wait); extra bit 1, a child already cancelled. */
static gocc_ctx_t *fd_ctx(const task_t *t, const op_t *o, gocc_ctx_t **sub) {
    gocc_ctx_t *c = ctx_of(t, o->ctx);
    if (c == NULL) c = R.shared[0];
    *sub = NULL;
    if (o->arg & 0x40) {
        *sub = gocc_ctx_with_cancel(c);
        if (*sub == NULL) violation(t, "gocc_ctx_with_cancel failed");
        gocc_ctx_cancel(*sub);
        return *sub;
    }
    return c;
}

static bool fd_closing(unsigned k, unsigned end) {
    return atomic_load(&R.fd_close_t0[k][end]) != 0;
}

/* Sequential mode: when the model says the call blocks, bound it. */
static gocc_ctx_t *fd_seq_bound(const task_t *t, gocc_ctx_t *c, bool ready, gocc_ctx_t **sub2) {
    *sub2 = NULL;
    if (!R.seq) return c;
    return seq_ctx(t, c, ready, sub2);
}

/* Write one record, whole or not at all (a SEQPACKET send is atomic). */
static void op_fd_write(task_t *t, const op_t *o) {
    unsigned k = o->chan, end = (o->arg >> 5) & 1;
    gocc_ctx_t *sub = NULL, *sub2 = NULL, *c = fd_ctx(t, o, &sub);
    bool dead = R.fd_closed[k][end] || R.fd_closed[k][!end];
    int pre = gocc_ctx_err(c);
    c = fd_seq_bound(t, c, true, &sub2);
    val_t v = make_val(t, fd_chan(k, end));
    ev_t *e = new_ev(t, EV_SEND, fd_chan(k, end), o->code);
    e->v = v;
    size_t written = 12345;
    e->t0 = tick();
    ssize_t rc = gocc_fd_write(R.fd[k][end], &v, sizeof v, &written, c);
    e->t1 = tick();
    if (rc == (ssize_t)sizeof v) {
        e->rc = 0;
        if (written != sizeof v) violation(t, "fd_write returned %zd, *written %zu", rc, written);
    } else {
        e->rc = rc >= 0 ? GOCC_EINVAL : (int)rc;
        if (rc >= 0) violation(t, "fd_write returned %zd of %zu", rc, sizeof v);
        if (written != 0)
            violation(t, "fd_write failed (%s) with %zu bytes out", rc_name((int)rc), written);
        if (rc == GOCC_ECLOSED) {
            if (!fd_closing(k, end) && !fd_closing(k, !end))
                violation(t, "fd_write: GOCC_ECLOSED, but neither end's close began");
        } else {
            expect_ctx_err(t, (int)rc, c, "fd_write");
        }
    }
    if (R.seq) { /* a context already done may win over anything */
        bool ctx_won = pre != 0 && rc == pre;
        if (!ctx_won && (dead ? rc != GOCC_ECLOSED : rc != (ssize_t)sizeof v))
            violation(t, "fd_write: model says %s, got %s", dead ? "GOCC_ECLOSED" : "written",
                      rc_name((int)rc));
        if (e->rc == 0) {
            struct fdq *q = &R.fdq[k][end];
            q->v[(q->head + q->len++) % MAX_OPS] = v;
        }
    }
    ctx_drop(sub2);
    ctx_drop(sub);
}

/* Read one record from end e (written on the other end). */
static void op_fd_read(task_t *t, const op_t *o) {
    unsigned k = o->chan, end = (o->arg >> 5) & 1;
    struct fdq *q = &R.fdq[k][!end];
    bool ready = R.fd_closed[k][end] || q->len > 0 || R.fd_closed[k][!end];
    gocc_ctx_t *sub = NULL, *sub2 = NULL, *c = fd_ctx(t, o, &sub);
    int pre = gocc_ctx_err(c);
    c = fd_seq_bound(t, c, ready, &sub2);
    unsigned char buf[2 * sizeof(val_t)];
    memset(buf, FILL, sizeof buf);
    ev_t *e = new_ev(t, EV_RECV, fd_chan(k, !end), o->code);
    e->t0 = tick();
    ssize_t rc = gocc_fd_read(R.fd[k][end], buf, sizeof buf, c);
    e->t1 = tick();
    val_t v;
    memcpy(&v, buf, sizeof v);
    if (rc == (ssize_t)sizeof v) {
        e->rc = 0;
        check_val(t, &v, fd_chan(k, !end), "fd_read");
        e->v = v;
    } else if (rc == 0) {
        e->rc = GOCC_ECLOSED; /* end of file: logged like a closed channel's receive */
        uint64_t ct = atomic_load(&R.fd_close_t0[k][!end]);
        if (ct == 0 || ct > e->t1)
            violation(t, "fd_read: end of file before the other end's close");
    } else if (rc > 0) {
        violation(t, "fd_read returned %zd bytes; records are %zu", rc, sizeof v);
    } else if (rc == -ECONNRESET) {
        /* The other end was closed with records unread in its queue: the
         * kernel reports the reset (once) to this end's next call. */
        e->rc = (int)rc;
        uint64_t ct = atomic_load(&R.fd_close_t0[k][!end]);
        if (ct == 0 || ct > e->t1) violation(t, "fd_read: ECONNRESET before the other end's close");
        if (!all_bytes(buf, FILL, sizeof buf)) violation(t, "fd_read wrote its buffer and failed");
    } else {
        e->rc = (int)rc;
        if (!all_bytes(buf, FILL, sizeof buf))
            violation(t, "fd_read wrote its buffer and returned %s", rc_name((int)rc));
        if (rc == GOCC_ECLOSED) {
            uint64_t ct = atomic_load(&R.fd_close_t0[k][end]);
            if (ct == 0 || ct > e->t1) violation(t, "fd_read: GOCC_ECLOSED before its close began");
        } else {
            expect_ctx_err(t, (int)rc, c, "fd_read");
        }
    }
    if (R.seq && rc == -ECONNRESET) {
        if (!R.fd_reset[k][end]) violation(t, "fd_read: ECONNRESET the model does not expect");
        R.fd_reset[k][end] = false;
    } else if (R.seq) {
        bool ctx_won = pre != 0 && rc == pre;
        if (R.fd_closed[k][end]) {
            if (rc != GOCC_ECLOSED && !ctx_won)
                violation(t, "fd_read on a closed end: %s", rc_name((int)rc));
        } else if (q->len > 0) {
            if (!ctx_won) {
                val_t w = q->v[q->head];
                if (rc != (ssize_t)sizeof v || memcmp(&w, &v, sizeof v) != 0)
                    violation(t, "fd_read: model's next record is seq %u, got %s seq %u", w.seq,
                              rc_name((int)rc), v.seq);
            }
        } else if (R.fd_closed[k][!end]) {
            if (rc != 0 && !ctx_won)
                violation(t, "fd_read: model says end of file, got %s", rc_name((int)rc));
        } else if (!is_ctx_err((int)rc)) {
            violation(t, "fd_read: model says it blocks until its context is done, got %s",
                      rc_name((int)rc));
        }
        if (e->rc == 0 && q->len > 0) {
            q->head = (q->head + 1) % MAX_OPS;
            q->len--;
        }
    }
    ctx_drop(sub2);
    ctx_drop(sub);
}

static void op_fd_wait(task_t *t, const op_t *o) {
    unsigned k = o->chan, end = (o->arg >> 5) & 1;
    int events = 1 + (int)((o->arg >> 6) % 3);
    bool rd = R.fdq[k][!end].len > 0 || R.fd_closed[k][!end];
    bool ready = R.fd_closed[k][end] || (events & GOCC_FD_WRITE) || rd;
    gocc_ctx_t *sub = NULL, *sub2 = NULL, *c = ctx_of(t, o->ctx);
    if (c == NULL) c = R.shared[0];
    int pre = gocc_ctx_err(c);
    c = fd_seq_bound(t, c, ready, &sub2);
    int rc = gocc_fd_wait(R.fd[k][end], events, c);
    if (rc > 0) {
        if ((rc & ~events) != 0) violation(t, "fd_wait(%d) returned %d", events, rc);
    } else if (rc == GOCC_ECLOSED) {
        if (!fd_closing(k, end)) violation(t, "fd_wait: GOCC_ECLOSED before its close began");
    } else {
        expect_ctx_err(t, rc, c, "fd_wait");
    }
    if (R.seq && !(pre != 0 && rc == pre)) {
        if (R.fd_closed[k][end] ? rc != GOCC_ECLOSED : (ready ? rc <= 0 : !is_ctx_err(rc)))
            violation(t, "fd_wait(%d): model says %s, got %s", events,
                      R.fd_closed[k][end] ? "GOCC_ECLOSED"
                      : ready             ? "ready"
                                          : "blocks",
                      rc_name(rc));
        if (rc > 0 && events == GOCC_FD_READ && !(rc & GOCC_FD_READ))
            violation(t, "fd_wait(READ) returned %d", rc);
    }
    ctx_drop(sub2);
    ctx_drop(sub);
}

static void op_fd_close(task_t *t, const op_t *o) {
    unsigned k = o->chan, end = (o->arg >> 5) & 1;
    uint64_t zero = 0, t0 = tick();
    atomic_compare_exchange_strong(&R.fd_close_t0[k][end], &zero, t0);
    int rc = gocc_fd_close(R.fd[k][end]);
    if (rc == 0)
        atomic_fetch_add(&R.fd_closes_ok[k][end], 1);
    else if (rc != GOCC_ECLOSED)
        violation(t, "fd_close returned %s", rc_name(rc));
    if (gocc_fd_num(R.fd[k][end]) != -1) violation(t, "fd_num after close is not -1");
    if (R.seq) {
        int want = R.fd_closed[k][end] ? GOCC_ECLOSED : 0;
        if (rc != want) violation(t, "fd_close: model says %s, got %s", rc_name(want), rc_name(rc));
        if (!R.fd_closed[k][end] && R.fdq[k][!end].len > 0) {
            R.fd_reset[k][!end] = true; /* closed with records unread: discarded, a reset */
            R.fdq[k][!end].len = 0;
        }
        R.fd_closed[k][end] = true;
    }
}

/* retain and release: the handle and its number stay as they were. */
static void op_fd_ref(task_t *t, const op_t *o) {
    unsigned k = o->chan, end = (o->arg >> 5) & 1;
    gocc_fd_t *f = R.fd[k][end];
    bool was_closing = fd_closing(k, end);
    int num = gocc_fd_num(f);
    if (gocc_fd_retain(f) != f) violation(t, "fd_retain returned another handle");
    gocc_fd_release(f);
    int now = gocc_fd_num(f);
    if (now != num && now != -1)
        violation(t, "fd_num %d became %d across retain/release", num, now);
    if (now == -1 && !fd_closing(k, end)) violation(t, "fd_num -1 before its close began");
    if (R.seq && (num == -1) != was_closing)
        violation(t, "fd_num %d, model closed %d", num, was_closing);
}

static void fd_setup(void) {
    memset(R.fdq, 0, sizeof R.fdq);
    memset(R.fd_closed, 0, sizeof R.fd_closed);
    memset(R.fd_reset, 0, sizeof R.fd_reset);
    for (unsigned k = 0; k < R.nchan; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            violation(NULL, "socketpair failed");
        for (int e = 0; e < 2; e++) {
            atomic_store(&R.fd_closes_ok[k][e], 0);
            atomic_store(&R.fd_close_t0[k][e], 0);
            R.fd[k][e] = gocc_fd_open(sv[e]);
            if (R.fd[k][e] == NULL) violation(NULL, "gocc_fd_open failed");
        }
    }
}

/* After every task returned: take what is still queued toward each open
 * end (recv, not through the handle), logged as the final drain, then
 * close and release every end. */
static void fd_drain_and_release(void) {
    task_t *t = &R.task[0];
    for (unsigned k = 0; k < R.nchan; k++)
        for (unsigned end = 0; end < 2; end++) {
            int fd = gocc_fd_num(R.fd[k][end]);
            if (fd < 0) continue; /* closed by an op */
            for (;;) {
                val_t v;
                ev_t *e = new_ev(t, EV_RECV, fd_chan(k, !end), OP_FD_READ);
                e->t0 = tick();
                ssize_t n = recv(fd, &v, sizeof v, MSG_DONTWAIT);
                e->t1 = tick();
                if (n < 0 && errno == ECONNRESET) { /* the other end's close, reported once */
                    t->nev--;
                    continue;
                }
                if (n != (ssize_t)sizeof v) {
                    t->nev--; /* nothing taken */
                    if (n > 0) violation(t, "drain of socketpair %u: a %zd-byte record", k, n);
                    break;
                }
                check_val(t, &v, fd_chan(k, !end), "fd drain");
                e->v = v;
                e->rc = 0;
                if (R.seq) {
                    struct fdq *q = &R.fdq[k][!end];
                    if (q->len == 0 || memcmp(&q->v[q->head], &v, sizeof v) != 0)
                        violation(t, "drain of socketpair %u: a record the model does not hold", k);
                    q->head = (q->head + 1) % MAX_OPS;
                    q->len--;
                }
            }
            if (R.seq && R.fdq[k][!end].len != 0)
                violation(t, "drain of socketpair %u: %zu records the model holds are gone", k,
                          R.fdq[k][!end].len);
        }
    for (unsigned k = 0; k < R.nchan; k++)
        for (unsigned end = 0; end < 2; end++) {
            int rc = gocc_fd_close(R.fd[k][end]);
            if (rc == 0) atomic_fetch_add(&R.fd_closes_ok[k][end], 1);
            if (atomic_load(&R.fd_closes_ok[k][end]) != 1)
                violation(t, "socketpair %u end %u: %d closes returned 0", k, end,
                          atomic_load(&R.fd_closes_ok[k][end]));
            gocc_fd_release(R.fd[k][end]);
            R.fd[k][end] = NULL;
        }
}

/* A record written on a pair's end whose reader (the other end) an op
 * closed may be lost with it. */
static bool may_lose(unsigned chan) {
    if (chan < FD_CHAN0) return false;
    unsigned k = (chan - FD_CHAN0) / 2, end = (chan - FD_CHAN0) % 2;
    return fd_closing(k, !end);
}

static void run_ops(task_t *t) {
    for (t->pc = 0; t->pc < t->nops; t->pc++) {
        const op_t *o = &t->ops[t->pc];
        switch (o->code) {
        case OP_SEND: op_send(t, o, false); break;
        case OP_RECV: op_recv(t, o, false); break;
        case OP_TRY_SEND: op_send(t, o, true); break;
        case OP_TRY_RECV: op_recv(t, o, true); break;
        case OP_SELECT: op_select(t, o, false); break;
        case OP_SELECT_TRY: op_select(t, o, true); break;
        case OP_CLOSE: op_close(t, o); break;
        case OP_CANCEL: op_cancel(t, o); break;
        case OP_CTX_NEW: op_ctx_new(t, o); break;
        case OP_LEN: op_len(t, o); break;
        case OP_YIELD: op_yield(t, o); break;
        case OP_NIL: op_nil(t, o); break;
        case OP_AFTER: op_after(t, o); break;
        case OP_FD_WRITE: op_fd_write(t, o); break;
        case OP_FD_READ: op_fd_read(t, o); break;
        case OP_FD_WAIT: op_fd_wait(t, o); break;
        case OP_FD_CLOSE: op_fd_close(t, o); break;
        case OP_FD_REF: op_fd_ref(t, o); break;
        default: violation(t, "harness: opcode %u", o->code);
        }
        atomic_fetch_add_explicit(&R.progress, 1, memory_order_relaxed);
    }
    for (int i = 0; i < N_PRIV; i++) priv_drop(t, i);
}

static int task_fn(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    run_ops(arg);
    atomic_fetch_add_explicit(&R.finished, 1, memory_order_release);
    return 0;
}

/* ---- setting up, finishing, checking ---- */

static bool decode(const uint8_t *d, size_t size) {
    if (size < 4) return false;
    R.nchan = 1 + (d[0] & 3);
    R.ntask = 1 + ((d[0] >> 2) & 3);
    R.seq = R.ntask == 1;
    for (unsigned k = 0; k < R.nchan; k++) R.cap[k] = (d[1] >> (2 * k)) & 3;
    for (unsigned t = 0; t <= MAX_TASKS; t++) {
        task_t *tk = &R.task[t];
        tk->id = (int)t;
        tk->nops = tk->nev = 0;
        tk->seq = 0;
        tk->pc = 0;
        tk->nafter = 0;
        memset(tk->priv, 0, sizeof tk->priv);
        memset(tk->priv_inner, 0, sizeof tk->priv_inner);
    }
    size_t i = 4, total = 0;
    while (i + 1 < size && total < MAX_OPS) {
        uint8_t b = d[i], a = d[i + 1];
        i += 2;
        task_t *tk = &R.task[1 + (b >> 6) % R.ntask];
        op_t *o = &tk->ops[tk->nops++];
        total++;
        memset(o, 0, sizeof *o);
        o->code = (uint8_t)((b & 0x3F) % N_OPCODES);
        o->arg = a;
        o->chan = (uint8_t)((a & 3) % R.nchan);
        o->ctx = (uint8_t)((a >> 2) & 7);
        if (o->ctx >= N_SHARED + N_PRIV) o->ctx = CTX_NONE;
        if (o->code == OP_SELECT || o->code == OP_SELECT_TRY) {
            unsigned n = (unsigned)(a >> 5) % (MAX_CASES + 1);
            for (unsigned j = 0; j < n && i < size; j++, i++) {
                unsigned tg = d[i] & 7;
                o->target[j] = (uint8_t)(tg < TARGET_NIL ? tg % R.nchan : tg);
                o->send[j] = (d[i] & 8) != 0 && tg <= TARGET_NIL; /* done channels: receive */
                o->n++;
            }
        }
    }
    return true;
}

static void setup(const uint8_t *d) {
    R.run_id++;
    atomic_store(&R.ticket, 0);
    atomic_store(&R.progress, 0);
    atomic_store(&R.finished, 0);
    memset(R.model, 0, sizeof R.model);
    for (unsigned k = 0; k < R.nchan; k++) {
        R.ch[k] = gocc_chan_new(sizeof(val_t), R.cap[k]);
        if (R.ch[k] == NULL) violation(NULL, "gocc_chan_new failed");
    }
    R.shared[0] = gocc_ctx_with_timeout(NULL, run_ns);
    R.shared_parent[0] = -1;
    for (int s = 1; s < N_SHARED; s++) {
        int kind = (d[2] >> (2 * (s - 1))) & 3;
        int parent = (kind & 2) ? s - 1 : 0;
        int64_t ms = ctx_ms[(d[3] >> (2 * (s - 1))) & 3];
        R.shared[s] = (kind & 1) ? gocc_ctx_with_timeout(R.shared[parent], ms * GOCC_MILLISECOND)
                                 : gocc_ctx_with_cancel(R.shared[parent]);
        R.shared_parent[s] = parent;
    }
    for (int s = 0; s < N_SHARED; s++)
        if (R.shared[s] == NULL) violation(NULL, "context constructor failed");
}

/* Wait for the tasks; once no op has completed for quiet_ns the program is
 * taken to be stuck on itself and the run's context is cancelled (which
 * every blocking call honours), so deadlocked inputs cost little. */
static void join_tasks(void) {
    int64_t start = gocc_now(), last_change = start;
    uint64_t last = atomic_load(&R.progress);
    bool cut = false;
    while (atomic_load_explicit(&R.finished, memory_order_acquire) < R.ntask) {
        sleep_ns(100 * GOCC_MICROSECOND);
        int64_t now = gocc_now();
        uint64_t p = atomic_load(&R.progress);
        if (p != last) {
            last = p;
            last_change = now;
        } else if (!cut && now - last_change > quiet_ns) {
            gocc_ctx_cancel(R.shared[0]);
            cut = true;
        }
        if (now - start > 20 * GOCC_SECOND) {
            gocc_dump(2);
            violation(NULL,
                      "tasks still running 20 s after the start (every wait is bounded "
                      "by a %lld ms context)",
                      (long long)(run_ns / GOCC_MILLISECOND));
        }
    }
}

/* After every task returned: close each channel (a second close if a task
 * closed it), drain what is buffered, and check a closed, drained channel
 * answers every call with GOCC_ECLOSED. */
static void close_and_drain(void) {
    task_t *t = &R.task[0];
    for (unsigned k = 0; k < R.nchan; k++) {
        gocc_chan_t *ch = R.ch[k];
        op_t o = {.code = OP_CLOSE, .chan = (uint8_t)k};
        op_close(t, &o);
        for (size_t n = 0;; n++) {
            val_t out;
            memset(&out, FILL, sizeof out);
            ev_t *e = new_ev(t, EV_RECV, k, OP_TRY_RECV);
            e->try_ = true;
            e->t0 = tick();
            int rc = gocc_chan_try_recv(ch, &out);
            e->t1 = tick();
            e->rc = rc;
            if (rc == GOCC_ECLOSED) break;
            if (rc != 0) violation(t, "drain of closed channel %u: try_recv %s", k, rc_name(rc));
            check_val(t, &out, k, "drain");
            e->v = out;
            if (n >= R.cap[k]) violation(t, "drained more than the capacity of channel %u", k);
            if (R.seq) {
                if (R.model[k].len == 0)
                    violation(t, "drain: channel %u holds a value the model does not", k);
                val_t w = model_pop(&R.model[k]);
                if (memcmp(&w, &out, sizeof w) != 0)
                    violation(t, "drain: model's next value is seq %u, got seq %u", w.seq, out.seq);
            }
        }
        if (R.seq && R.model[k].len != 0)
            violation(t, "drain: channel %u lost %zu values the model holds", k, R.model[k].len);
        /* Closed and empty: every call says so, at once. */
        val_t v, out;
        memset(&v, 0, sizeof v);
        memset(&out, FILL, sizeof out);
        if (gocc_chan_recv(ch, &out, NULL) != GOCC_ECLOSED || !all_bytes(&out, 0, sizeof out))
            violation(t, "recv on closed, drained channel %u", k);
        if (gocc_chan_recv(ch, NULL, NULL) != GOCC_ECLOSED)
            violation(t, "recv(NULL out) on closed channel");
        if (gocc_chan_try_send(ch, &v) != GOCC_ECLOSED) violation(t, "try_send on closed channel");
        if (gocc_chan_send(ch, &v, NULL) != GOCC_ECLOSED) violation(t, "send on closed channel");
        if (gocc_chan_close(ch) != GOCC_ECLOSED) violation(t, "close of closed channel");
        if (gocc_chan_len(ch) != 0) violation(t, "len of drained channel %zu", gocc_chan_len(ch));
        memset(&out, FILL, sizeof out);
        gocc_case_t cs[2] = {{.ch = ch, .dir = GOCC_RECV, .elem = &out, .ok = true},
                             {.ch = ch, .dir = GOCC_SEND, .elem = &v, .ok = true}};
        int rc = gocc_select_try(cs, 1);
        if (rc != 0 || cs[0].ok || !all_bytes(&out, 0, sizeof out))
            violation(t, "select_try recv on closed channel: %s ok=%d", rc_name(rc), cs[0].ok);
        rc = gocc_select(&cs[1], 1, NULL);
        if (rc != 0 || cs[1].ok)
            violation(t, "select send on closed channel: %s ok=%d", rc_name(rc), cs[1].ok);
    }
}

static void analyse(void) {
    task_t *t0 = &R.task[0];
    for (unsigned p = 1; p <= R.ntask; p++) memset(fate[p], 0, R.task[p].seq * sizeof fate[p][0]);
    for (unsigned p = 1; p <= R.ntask; p++)
        for (size_t i = 0; i < R.task[p].nev; i++) {
            const ev_t *e = &R.task[p].ev[i];
            if (e->kind != EV_SEND) continue;
            struct fate *f = &fate[p][e->v.seq];
            if (f->send != NULL) violation(t0, "harness: value %u/%u logged twice", p, e->v.seq);
            f->send = e;
        }
    for (unsigned r = 0; r <= R.ntask; r++)
        for (size_t i = 0; i < R.task[r].nev; i++) {
            const ev_t *e = &R.task[r].ev[i];
            if (e->kind != EV_RECV || e->rc != 0) continue;
            int p = producer_of(&e->v);
            if (e->v.seq >= R.task[p].seq || fate[p][e->v.seq].send == NULL)
                violation(t0, "task %u op #%zu received producer %d seq %u, which was never sent",
                          r, e->pc, p, e->v.seq);
            struct fate *f = &fate[p][e->v.seq];
            if (f->ndeq++ > 0)
                violation(t0,
                          "value producer %d seq %u received twice: task %u op #%zu and "
                          "task %u op #%zu (task 0: the final drain)",
                          p, e->v.seq, f->deq->task, f->deq->pc, r, e->pc);
            f->deq = e;
        }
    for (unsigned p = 1; p <= R.ntask; p++)
        for (uint32_t s = 0; s < R.task[p].seq; s++) {
            const struct fate *f = &fate[p][s];
            if (f->send == NULL) violation(t0, "harness: value %u/%u has no send", p, s);
            if (f->send->rc == 0 && f->ndeq == 0 && !may_lose(f->send->chan))
                violation(t0,
                          "lost: task %u op #%zu (%s) sent seq %u on channel %u (returned 0); "
                          "never received, not buffered at the end",
                          p, f->send->pc, op_names[f->send->code], s, f->send->chan);
            if (f->send->rc != 0 && f->ndeq != 0)
                violation(t0,
                          "task %u op #%zu (%s) on channel %u returned %s, but seq %u was received",
                          p, f->send->pc, op_names[f->send->code], f->send->chan,
                          rc_name(f->send->rc), s);
        }

    for (unsigned k = 0; k < N_LOGCHANS; k++) {
        if (k >= R.nchan && k < FD_CHAN0) continue;
        if (k >= FD_CHAN0 + 2 * R.nchan) break;
        /* A channel's closes (a socketpair's are checked in fd_drain_and_release). */
        if (k < FD_CHAN0) {
            const ev_t *close_ok = NULL;
            uint64_t closed_empty_seen = UINT64_MAX; /* earliest t1 of a recv that saw it */
            for (unsigned r = 0; r <= R.ntask; r++)
                for (size_t i = 0; i < R.task[r].nev; i++) {
                    const ev_t *e = &R.task[r].ev[i];
                    if (e->chan != k) continue;
                    if (e->kind == EV_CLOSE && e->rc == 0) {
                        if (close_ok != NULL)
                            violation(t0, "channel %u closed successfully twice", k);
                        close_ok = e;
                    }
                    if (e->kind == EV_RECV && e->rc == GOCC_ECLOSED && e->t1 < closed_empty_seen)
                        closed_empty_seen = e->t1;
                }
            if (close_ok == NULL) violation(t0, "channel %u: no close returned 0", k);
            for (unsigned r = 0; r <= R.ntask; r++)
                for (size_t i = 0; i < R.task[r].nev; i++) {
                    const ev_t *e = &R.task[r].ev[i];
                    if (e->chan != k || e->kind == EV_CLOSE) continue;
                    const char *op = op_names[e->code];
                    if (e->kind == EV_SEND && e->rc == 0 && e->t0 > close_ok->t1)
                        violation(t0,
                                  "task %u op #%zu: %s on channel %u succeeded, begun after close "
                                  "returned",
                                  r, e->pc, op, k);
                    if (e->rc == GOCC_ECLOSED && e->t1 < close_ok->t0)
                        violation(
                            t0,
                            "task %u op #%zu: %s on channel %u saw it closed before close began", r,
                            e->pc, op, k);
                    if (e->try_ && e->rc == GOCC_EAGAIN && e->t0 > close_ok->t1)
                        violation(t0,
                                  "task %u op #%zu: %s on channel %u said would-block, after close "
                                  "returned",
                                  r, e->pc, op, k);
                    if (e->kind == EV_RECV && e->rc == 0 && e->t0 > closed_empty_seen)
                        violation(t0,
                                  "task %u op #%zu: %s on channel %u got a value after a receive "
                                  "saw it closed and empty",
                                  r, e->pc, op, k);
                }
        }
        /* FIFO over every delivered value on k. */
        for (unsigned pa = 1; pa <= R.ntask; pa++)
            for (uint32_t sa = 0; sa < R.task[pa].seq; sa++) {
                const struct fate *a = &fate[pa][sa];
                if (a->send->chan != k || a->send->rc != 0 || a->deq == NULL) continue;
                for (unsigned pb = 1; pb <= R.ntask; pb++)
                    for (uint32_t sb = 0; sb < R.task[pb].seq; sb++) {
                        const struct fate *b = &fate[pb][sb];
                        if (b->send->chan != k || b->send->rc != 0 || b->deq == NULL) continue;
                        if (a->send->t1 < b->send->t0 && b->deq->t1 < a->deq->t0)
                            violation(t0,
                                      "FIFO on channel %u: producer %u seq %u was sent before "
                                      "producer %u seq %u, but dequeued after it",
                                      k, pa, sa, pb, sb);
                    }
            }
    }
}

/* Cancel every shared context, then check each after_func registration
 * ran once, or never if its first stop returned true. A cancel that finds
 * its context already done returns at once, while whoever made it done
 * (the timer thread, at a deadline) may not have started the functions
 * yet: so wait (bounded) for them, then for their tasks to end. */
static void check_after_funcs(void) {
    for (int s = 0; s < N_SHARED; s++) gocc_ctx_cancel(R.shared[s]);
    int64_t end = gocc_now() + 5 * GOCC_SECOND;
    for (unsigned t = 1; t <= R.ntask; t++)
        for (size_t i = 0; i < R.task[t].nafter; i++) {
            struct after *a = &R.task[t].after[i];
            while (!a->stopped && atomic_load(&a->ran) == 0 && gocc_now() < end)
                sleep_ns(100 * GOCC_MICROSECOND);
        }
    if (gocc_leakcheck(0, 5 * GOCC_SECOND, 2) != 0)
        violation(NULL, "after_func tasks still live 5 s after their contexts were cancelled");
    for (unsigned t = 1; t <= R.ntask; t++) {
        task_t *tk = &R.task[t];
        for (size_t i = 0; i < tk->nafter; i++) {
            struct after *a = &tk->after[i];
            int ran = atomic_load(&a->ran);
            if (ran != (a->stopped ? 0 : 1))
                violation(tk, "after_func #%zu on context %d ran %d times (first stop returned %d)",
                          i, a->slot, ran, a->stopped);
            if (gocc_ctx_after_func_stop(a->h))
                violation(tk, "after_func #%zu: stop after it ran (or was stopped) returned true",
                          i);
        }
    }
}

static void teardown(void) {
    for (int s = N_SHARED - 1; s >= 0; s--) ctx_drop(R.shared[s]);
    for (unsigned k = 0; k < R.nchan; k++) gocc_chan_release(R.ch[k]);
    memset(R.shared, 0, sizeof R.shared);
    memset(R.ch, 0, sizeof R.ch);
}

static void configure_once(void) {
    static bool done;
    if (done) return;
    done = true;
    const char *s = getenv("GOCC_FUZZ_RUN_MS");
    if (s != NULL && atoi(s) > 0) run_ns = atoi(s) * GOCC_MILLISECOND;
    s = getenv("GOCC_FUZZ_QUIET_MS");
    if (s != NULL && atoi(s) > 0) quiet_ns = atoi(s) * GOCC_MILLISECOND;
    s = getenv("GOCC_FUZZ_VERBOSE");
    verbose = s != NULL && *s != '\0' && *s != '0';
}

/* GOCC_FUZZ_VERBOSE: what the run did, to see that a seed does what it says. */
static void report_run(int64_t ns) {
    unsigned ops = 0, sent = 0, unsent = 0, recvd = 0, drained = 0, closed = 0, would = 0,
             ctxerr = 0;
    for (unsigned t = 0; t <= R.ntask; t++) {
        ops += (unsigned)R.task[t].nops;
        for (size_t i = 0; i < R.task[t].nev; i++) {
            const ev_t *e = &R.task[t].ev[i];
            if (e->kind == EV_SEND) e->rc == 0 ? sent++ : unsent++;
            if (e->kind == EV_RECV && e->rc == 0) t == 0 ? drained++ : recvd++;
            if (e->kind != EV_CLOSE && e->rc == GOCC_ECLOSED) closed++;
            if (e->try_ && e->rc == GOCC_EAGAIN) would++;
            if (is_ctx_err(e->rc)) ctxerr++;
        }
    }
    fprintf(stderr,
            "fuzz-ops: %s, %u chans, %u tasks, %u ops: %u sent, %u not, %u received, "
            "%u drained, %u closed-results, %u would-block, %u ctx errors, %.1f ms\n",
            R.seq ? "seq" : "conc", R.nchan, R.ntask, ops, sent, unsent, recvd, drained, closed,
            would, ctxerr, (double)ns / 1e6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    configure_once();
    if (!decode(data, size)) return 0;
    int64_t start = gocc_now();
    setup(data);
    fd_setup();
    if (R.seq) {
        run_ops(&R.task[1]);
    } else {
        for (unsigned t = 1; t <= R.ntask; t++) {
            int rc = gocc_go(task_fn, NULL, &R.task[t]);
            if (rc != 0) violation(NULL, "gocc_go: %s", rc_name(rc));
        }
        join_tasks();
    }
    if (gocc_leakcheck(0, 5 * GOCC_SECOND, 2) != 0)
        violation(NULL, "gocc_tasks_live() is %zu 5 s after every task returned",
                  gocc_tasks_live());
    close_and_drain();
    fd_drain_and_release();
    analyse();
    check_after_funcs();
    if (verbose) report_run(gocc_now() - start);
    teardown();
    return 0;
}
