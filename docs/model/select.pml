/*
 * docs/model/select.pml - a Promela model of libgocc's waiting protocol:
 * channels (src/chan.c), select (src/select.c) and park/claim/wake
 * (src/park.c, src/gocc-internal.h), with close and a context's done
 * channel. docs/model/check.sh runs spin on it; docs/design.md ("What the
 * model proves") says what a pass means, what is abstracted away, and which
 * model step stands for which lines of C.
 *
 * The model follows the C code step by step; every inline names the C
 * function it stands for. Shared memory is sequentially consistent (the C
 * code's release/acquire pairs are not modelled). A channel lock is an
 * explicit lock word, so lock order matters here as it does in C.
 *
 * Properties, checked as assertions (one label each, P1..P8, in the text)
 * and as spin's invalid-end-state (deadlock) search:
 *   P1 no deadlock: every thread's every operation returns (invalid end
 *      state otherwise; the model has no cycles, so every run is finite).
 *   P2 no lost wake-up: a parked thread returns only when WOKEN, and a
 *      claimed one is always woken (else it blocks forever: P1).
 *   P3 one completion per operation: exactly one case of a select completes
 *      (by its own poll or by exactly one claimer); a waiter is woken once
 *      per wait; the winner is one of its own sudogs.
 *   P4 values: each value reaches exactly one receiver, in FIFO order per
 *      producer and channel; a send that returns ECLOSED, lost the select
 *      or was cancelled delivered nothing; at the end every successfully
 *      sent value was received or is still buffered.
 *   P5 no sudog is used after its select returned (C: a dead stack frame),
 *      none is queued twice, none is left queued at the end.
 *   P6 a thread parks only when no case can proceed (channel invariants:
 *      no live partner in the other queue, buffer full/empty, not closed).
 *   P7 close leaves both queues of the channel empty, and nobody queues on
 *      a closed channel afterwards (so close wakes every waiter: P1, P2).
 *   P8 results: ECLOSED only from a closed channel, a cancelled result only
 *      from a cancelled context, a received value is a delivered one.
 *
 * Negative variants (docs/model/check.sh expects spin to find an error):
 *   -DNEG_WAKE_FIRST  a waker wakes the waiter before it claims it;
 *   -DNEG_NO_CLAIM    a waker takes the first queued sudog without the CAS;
 *   -DNEG_NO_DEQUEUE  the woken select does not dequeue its losing sudogs;
 *   -DNEG_LOCK_ORDER  select locks its channels in case order, not address
 *                     order.
 *
 * Scenarios (-DSCENARIO=n): worker threads T0..T2 (W0..W2 below) and a
 * closer T3. Every operation can complete or is ended by a close, so a
 * thread still blocked at the end is a bug of the protocol, not a program
 * that Go, too, would leave blocked.
 *   1  T0 selects {recv C0, recv C1} twice; T1 selects {send C1, send C0}
 *      twice (cases in the other order); no close: every value goes through.
 *   2  T0: select {recv C0, recv C1}, then recv C0; T1: select {send C1,
 *      send C0}, then send C1; T3 closes C0, then C1.
 *   3  T0: select {recv C0, recv C1} with a context (a third case on its
 *      done channel D); T1: select {send C1, send C0}; T2: send C0 with the
 *      context; T3 cancels the context (err, then close D), closes C0, C1.
 *   4  T0: select {recv C0, recv C1}; T1: recv C0 (two receivers queue on
 *      C0); T2: select {send C1, send C0}, then send C0; T3 closes C0, C1.
 */

#ifndef SCENARIO
#define SCENARIO 2
#endif
#ifndef CAP1
#define CAP1 1          /* capacity of C1; C0 and D are unbuffered */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1      /* spurious futex returns allowed per thread */
#endif

/* gocc__waiter.state (park.c) */
#define WAITING  0
#define SLEEPING 1
#define WOKEN    2

/* The wake after the lock is dropped (the correct place); the
 * NEG_WAKE_FIRST variant moves it before the claim instead. */
#ifdef NEG_WAKE_FIRST
#define LATE_WAKE 0
#else
#define LATE_WAKE 1
#endif

/* GOCC_RECV / GOCC_SEND */
#define RECV 0
#define SEND 1

#define NCH 3           /* channels, in address order: C0 < C1 < D */
#define C0 0
#define C1 1
#define D  2
#define MAXCAP 2
#define CAP(c) ((c) == C1 -> CAP1 : 0)

#define NP 3            /* worker threads, ids 0..NP-1, one waiter each */
#define CLOSER NP       /* the closer's id (it never parks) */
#define MC 3            /* cases per select, the done case included */
#define NSG (NP * MC + 1) /* sudog ids 1..NP*MC (0 = none) */
#define SG(p, k) ((p) * MC + (k) + 1)   /* thread p's sudog for case k */
#define OWNER(s) (((s) - 1) / MC)       /* sudog -> its waiter */
#define SGCASE(s) (((s) - 1) % MC)      /* sudog -> its case index */
#define QMAX NP         /* a queue holds at most one sudog per thread */
#define QI(c, d) ((c) * 2 + (d))        /* queue index: recvq / sendq of c */
#define NV (NP * 8)     /* values: thread p sends p*8+1 .. p*8+7 */
#define PROD(v) ((v) / 8)
#define CANCELED 254    /* result: the context's error */

/* ---- channels (struct gocc_chan): under mu[c] ---- */
byte mu[NCH];           /* 0 = free, else holder id + 1 */
bit  closed[NCH];
byte cnt[NCH];
byte buf[NCH * MAXCAP];
byte rx[NCH];
byte sx[NCH];
byte q[NCH * 2 * QMAX]; /* recvq/sendq, FIFO: sudog ids */
byte qn[NCH * 2];

/* ---- waiters (gocc__waiter), one per worker thread ---- */
byte wstate[NP];        /* the futex word */
bit  wclaim[NP];        /* 0 = armed, 1 = claimed (starts claimed) */
byte wwin[NP];          /* winner: sudog id, written by the claimer */
bit  wasleep[NP];       /* inside FUTEX_WAIT */
byte spur[NP];          /* spurious returns left */
byte ndone[NP];         /* checker: completions of the op in flight */

/* ---- sudogs (gocc__sudog, on the owner's stack) ---- */
bit  sgq[NSG];          /* queued (under the channel lock) */
bit  sgok[NSG];         /* set by the claimer */
byte sgel[NSG];         /* send: the value; recv: the destination */
bit  sglive[NSG];       /* checker: the owner's select frame exists */
byte sgqi[NSG];         /* checker: the queue it was pushed on */

/* ---- the checker's record of values ---- */
byte got[NV];           /* times value v reached a receiver */
bit  sentok[NV];        /* a send of v returned 0 */
byte lastout[NCH * NP]; /* last value of producer p received on c */

bit  ctxerr;            /* the context's err (set before D is closed) */

/* Per-thread scratch (inlines are macros over these). */
#define LOCALS \
    byte ts, wk, pd, pok, pv, i, j, k, picked, n, total, um, lm, res, rok, rval, \
         win, wl, old, sleepy; \
    bit withctx; \
    byte cch[MC], cdir[MC], cval[MC]

/* ---- locks: gocc__lock / gocc__unlock of ch->mu ---- */

inline lock(c) {
    atomic { mu[c] == 0 -> mu[c] = me + 1; printf("T%d: locks C%d\n", me, c) }
}

inline unlock(c) {
    d_step { assert(mu[c] == me + 1); mu[c] = 0; printf("T%d: unlocks C%d\n", me, c) }
}

/* ---- park.c ---- */

/* gocc__wake: exchange(state, WOKEN); FUTEX_WAKE only if it was SLEEPING. */
inline wake(w) {
    atomic {
        old = wstate[w];
        assert(old != WOKEN);               /* P3: one wake per wait */
        wstate[w] = WOKEN;
        printf("T%d: wakes T%d (state %d -> WOKEN)\n", me, w, old)
    };
    if
    :: old == SLEEPING -> wasleep[w] = 0    /* FUTEX_WAKE (no-op if not asleep) */
    :: else -> skip
    fi;
    old = 0
}

/* futex_wait(&state, SLEEPING): the kernel compares and queues atomically;
 * it returns on FUTEX_WAKE, or spuriously (EINTR, a stray wake). */
inline futex_wait() {
    atomic {
        if
        :: wstate[me] == SLEEPING -> wasleep[me] = 1
        :: else -> skip
        fi
    };
    if
    :: wasleep[me] == 0 -> skip
    :: spur[me] > 0 ->
        d_step { spur[me]--; wasleep[me] = 0; printf("T%d: spurious futex return\n", me) }
    fi
}

/* park_impl(w, -1): spin watching the word, CAS WAITING -> SLEEPING, then
 * sleep until WOKEN. */
inline park() {
    sleepy = 1;
    if
    :: wstate[me] == WOKEN -> sleepy = 0    /* spin_for_wake caught it */
    :: true -> skip                         /* spin budget ran out */
    fi;
    if
    :: sleepy ->
        atomic {
            if
            :: wstate[me] == WAITING ->
                wstate[me] = SLEEPING; printf("T%d: sleeps (FUTEX_WAIT)\n", me)
            :: else -> assert(wstate[me] == WOKEN)  /* only a waker changes it */
            fi
        };
        do
        :: wstate[me] == WOKEN -> break
        :: else -> futex_wait()
        od
    :: else -> skip
    fi;
    sleepy = 0
}

/* ---- chan.c: wait queues (caller holds the channel lock) ---- */

inline waitq_push(qx, s) {
    assert(!sgq[s]);                        /* P5: never queued twice */
    assert(qn[qx] < QMAX);
    q[qx * QMAX + qn[qx]] = s;
    qn[qx]++;
    sgq[s] = 1;
    sgqi[s] = qx
}

inline waitq_remove(qx, s) {
    j = 0;
    do
    :: q[qx * QMAX + j] == s -> break
    :: else -> j++; assert(j < qn[qx])
    od;
    do
    :: j + 1 < qn[qx] -> q[qx * QMAX + j] = q[qx * QMAX + j + 1]; j++
    :: else -> break
    od;
    q[qx * QMAX + j] = 0;
    qn[qx]--;
    sgq[s] = 0;
    j = 0
}

/* waitq_take: unlink the first sudog; claim its waiter (one CAS); a failed
 * claim means it was stale: look at the next. Result in ts (0 = none). */
inline waitq_take(c, d) {
    ts = 0;
    do
    :: qn[QI(c, d)] == 0 -> break
    :: else ->
        d_step {
            ts = q[QI(c, d) * QMAX];
            printf("T%d: unlinks sudog %d (T%d's) from C%d\n", me, ts, OWNER(ts), c);
            assert(sglive[ts]);             /* P5: its frame still exists */
            assert(sgqi[ts] == QI(c, d));
            waitq_remove(QI(c, d), ts)
        };
#ifdef NEG_WAKE_FIRST
        wake(OWNER(ts));                    /* BUG: wakes, then claims */
#endif
#ifdef NEG_NO_CLAIM
        atomic {                            /* BUG: takes it without the CAS */
            wclaim[OWNER(ts)] = 1;
            printf("T%d: takes T%d through sudog %d (no claim)\n", me, OWNER(ts), ts)
        };
        break
#else
        if
        :: atomic {
               wclaim[OWNER(ts)] == 0 -> wclaim[OWNER(ts)] = 1;
               printf("T%d: claims T%d through sudog %d (case %d)\n", me, OWNER(ts), ts, SGCASE(ts))
           };
           break
        :: atomic {
               wclaim[OWNER(ts)] == 1 ->
               printf("T%d: T%d already claimed: drops stale sudog %d\n", me, OWNER(ts), ts);
               ts = 0
           }
        fi
#endif
    od
}

/* complete(): the claimer records the result for the parked thread. */
inline complete(s, okv) {
    assert(sglive[s]);                      /* P5 */
    sgok[s] = okv;
    wwin[OWNER(s)] = s;
    ndone[OWNER(s)]++;
    assert(ndone[OWNER(s)] == 1)            /* P3: one completion */
}

/* A value reaches a receiver (checker only). */
inline deliver(c, v) {
    assert(v > 0 && v < NV);
    got[v]++;
    assert(got[v] == 1);                    /* P4: exactly one receiver */
    assert(lastout[c * NP + PROD(v)] < v);  /* P4: FIFO per producer */
    lastout[c * NP + PROD(v)] = v;
    printf("T%d: value %d delivered on C%d\n", me, v, c)
}

/* gocc__chan_poll_locked(ch, dir, elem, &ok, &wake): caller holds mu[c].
 * Out: pd (proceeded), pok, pv (value received), wk (waiter + 1 to wake). */
inline poll_locked(c, d, v) {
    if
    :: d == RECV ->
        waitq_take(c, SEND);
        if
        :: ts != 0 ->
            d_step {
                if
                :: CAP(c) == 0 -> pv = sgel[ts]
                :: else ->                  /* full buffer: oldest out, sender's in */
                    pv = buf[c * MAXCAP + rx[c]];
                    buf[c * MAXCAP + rx[c]] = sgel[ts];
                    rx[c] = (rx[c] + 1) % CAP(c);
                    sx[c] = rx[c]
                fi;
                deliver(c, pv);
                complete(ts, 1);
                wk = LATE_WAKE * (OWNER(ts) + 1); pok = 1; pd = 1; ts = 0
            }
        :: else ->
            d_step {
                if
                :: cnt[c] > 0 ->
                    pv = buf[c * MAXCAP + rx[c]];
                    buf[c * MAXCAP + rx[c]] = 0;
                    rx[c] = (rx[c] + 1) % CAP(c);
                    cnt[c]--;
                    deliver(c, pv);
                    pok = 1; pd = 1
                :: else ->
                    if
                    :: closed[c] -> pv = 0; pok = 0; pd = 1
                    :: else -> pd = 0
                    fi
                fi
            }
        fi
    :: else ->
        if
        :: closed[c] -> pok = 0; pd = 1
        :: else ->
            waitq_take(c, RECV);
            if
            :: ts != 0 ->                   /* direct handoff */
                d_step {
                    sgel[ts] = v;
                    deliver(c, v);
                    complete(ts, 1);
                    wk = LATE_WAKE * (OWNER(ts) + 1); pok = 1; pd = 1; ts = 0
                }
            :: else ->
                d_step {
                    if
                    :: cnt[c] < CAP(c) ->
                        buf[c * MAXCAP + sx[c]] = v;
                        sx[c] = (sx[c] + 1) % CAP(c);
                        cnt[c]++;
                        pok = 1; pd = 1
                    :: else -> pd = 0
                    fi
                }
            fi
        fi
    fi
}

/* P6: about to queue case (c, d): it cannot proceed. */
inline check_can_wait(c, d) {
    assert(!closed[c]);                     /* P7 */
    if
    :: d == RECV -> assert(cnt[c] == 0)
    :: else -> assert(cnt[c] == CAP(c))
    fi;
    j = 0;
    do
    :: j < qn[QI(c, 1 - d)] ->
        assert(OWNER(q[QI(c, 1 - d) * QMAX + j]) == me ||
               wclaim[OWNER(q[QI(c, 1 - d) * QMAX + j])] == 1);
        j++
    :: else -> break
    od;
    j = 0
}

/* ---- select.c ---- */

/* lock_all over the distinct channels (mask um), sorted by address. */
inline lock_all() {
#ifdef NEG_LOCK_ORDER
    k = 0;
    lm = 0;
    do                                      /* BUG: case order */
    :: k < total ->
        if
        :: !(lm & (1 << cch[k])) -> lock(cch[k]); lm = lm | (1 << cch[k])
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    k = 0;
    lm = 0
#else
    if :: um & 1 -> lock(C0) :: else -> skip fi;
    if :: um & 2 -> lock(C1) :: else -> skip fi;
    if :: um & 4 -> lock(D) :: else -> skip fi
#endif
}

inline unlock_all() {
    if :: um & 4 -> unlock(D) :: else -> skip fi;
    if :: um & 2 -> unlock(C1) :: else -> skip fi;
    if :: um & 1 -> unlock(C0) :: else -> skip fi
}

/* gocc__select(cases, n, ctx, block = true, deadline = -1): cases in
 * cch/cdir/cval[0..n-1], the done case appended when withctx. Out: res
 * (case index or CANCELED), rok, rval. */
inline do_select() {
    pd = 0;
    if
    :: withctx && ctxerr -> res = CANCELED  /* a context already done wins */
    :: else ->
        d_step {
            total = n;
            if
            :: withctx -> cch[n] = D; cdir[n] = RECV; cval[n] = 0; total = n + 1
            :: else -> skip
            fi;
            um = 0;
            k = 0;
            do
            :: k < total ->
                um = um | (1 << cch[k]);
                sglive[SG(me, k)] = 1;
                k++
            :: else -> break
            od;
            k = 0
        };
        /* 1. Lock every channel once in address order; poll the cases in a
         *    random order (any permutation). */
        lock_all();
        picked = 0;
        do
        :: pd == 1 || picked == (1 << total) - 1 -> break
        :: else ->
            if
            :: !(picked & 1) -> i = 0
            :: total > 1 && !(picked & 2) -> i = 1
            :: total > 2 && !(picked & 4) -> i = 2
            fi;
            picked = picked | (1 << i);
            poll_locked(cch[i], cdir[i], cval[i])
        od;
        if
        :: pd == 1 ->
            unlock_all();
            if
            :: wk != 0 -> wake(wk - 1); wk = 0
            :: else -> skip
            fi;
            d_step {
                assert(wclaim[me] == 1);        /* nobody completes for us */
                printf("T%d: case %d proceeds without waiting\n", me, i);
                ndone[me] = 1;
                res = i; rok = pok; rval = pv
            }
        :: else ->
            /* 2. Arm, queue one sudog per case, unlock, park. */
            d_step {
                printf("T%d: nothing ready: arms, queues %d sudogs\n", me, total);
                wstate[me] = WAITING;
                wwin[me] = 0;
                ndone[me] = 0;
                wclaim[me] = 0;
                k = 0;
                do
                :: k < total ->
                    check_can_wait(cch[k], cdir[k]);
                    sgok[SG(me, k)] = 0;
                    sgel[SG(me, k)] = (cdir[k] == SEND -> cval[k] : 0);
                    waitq_push(QI(cch[k], cdir[k]), SG(me, k));
                    k++
                :: else -> break
                od;
                k = 0
            };
            unlock_all();
            park();
            /* 3. Woken: the winner was unlinked by its claimer; dequeue the
             *    losers under the same locks. */
            d_step {
                printf("T%d: runs again, winner sudog %d, claim %d\n", me, wwin[me], wclaim[me]);
                assert(wstate[me] == WOKEN);     /* P2 */
                assert(wclaim[me] == 1);         /* P3: woken only once claimed */
                win = wwin[me];
                assert(win != 0 && OWNER(win) == me && SGCASE(win) < total) /* P3 */
            };
#ifndef NEG_NO_DEQUEUE
            if
            :: total > 1 ->
                lock_all();
                d_step {
                    printf("T%d: dequeues its losing sudogs\n", me);
                    k = 0;
                    do
                    :: k < total ->
                        if
                        :: sgq[SG(me, k)] -> waitq_remove(QI(cch[k], cdir[k]), SG(me, k))
                        :: else -> skip
                        fi;
                        k++
                    :: else -> break
                    od;
                    k = 0
                };
                unlock_all()
            :: else -> skip
            fi;
#endif
            d_step { res = SGCASE(win); rok = sgok[win]; rval = sgel[win]; win = 0 }
        fi;
        /* The frame (and its sudogs) goes away. */
        d_step {
            printf("T%d: select returns: its sudogs are gone\n", me);
            assert(ndone[me] == 1);              /* P3 */
            k = 0;
            do
            :: k < total -> sglive[SG(me, k)] = 0; k++
            :: else -> break
            od;
            k = 0;
            if
            :: withctx && res == n -> res = CANCELED
            :: else -> skip
            fi;
            total = 0; um = 0; picked = 0; pd = 0; pok = 0; pv = 0; i = 0
        }
    fi
}

/* chan_try then chan_block (gocc_chan_send / gocc_chan_recv): one locked
 * poll; if it cannot proceed, the select engine with one case. */
inline chan_op() {
    if
    :: withctx && ctxerr -> res = CANCELED  /* gocc_ctx_err first */
    :: else ->
        pd = 0;
        lock(cch[0]);
        poll_locked(cch[0], cdir[0], cval[0]);
        unlock(cch[0]);
        if
        :: wk != 0 -> wake(wk - 1); wk = 0
        :: else -> skip
        fi;
        if
        :: pd == 1 -> d_step { res = 0; rok = pok; rval = pv; pd = 0; pok = 0; pv = 0 }
        :: else -> do_select()
        fi
    fi
}

/* P8 and the checker's record of successful sends. */
inline check_result() {
    d_step {
        if
        :: res == CANCELED -> printf("T%d: returns the context's error\n", me)
        :: else -> printf("T%d: returns case %d, ok %d, value %d\n", me, res, rok, rval)
        fi;
        if
        :: res == CANCELED -> assert(withctx && ctxerr)         /* P8 */
        :: else ->
            assert(res < n);
            if
            :: cdir[res] == SEND ->
                if
                :: rok -> sentok[cval[res]] = 1
                :: else -> assert(closed[cch[res]])         /* P8 */
                fi
            :: else ->
                if
                :: rok -> assert(rval != 0 && got[rval] == 1)       /* P8 */
                :: else -> assert(closed[cch[res]] && rval == 0)
                fi
            fi
        fi;
        res = 0; rok = 0; rval = 0; n = 0; withctx = 0;
        cch[0] = 0; cdir[0] = 0; cval[0] = 0;
        cch[1] = 0; cdir[1] = 0; cval[1] = 0;
        cch[2] = 0; cdir[2] = 0; cval[2] = 0
    }
}

/* An operation of a worker's script. */
#define CASE_(k_, c_, d_, v_) cch[k_] = c_; cdir[k_] = d_; cval[k_] = v_
#define SEL2(ctx_, c0, d0, v0, c1, d1, v1) \
    d_step { CASE_(0, c0, d0, v0); CASE_(1, c1, d1, v1); n = 2; withctx = ctx_ }; \
    do_select(); check_result()
#define OP(ctx_, c0, d0, v0) \
    d_step { CASE_(0, c0, d0, v0); n = 1; withctx = ctx_ }; \
    chan_op(); check_result()

/* gocc_chan_close: mark closed, claim every waiter on both queues under the
 * lock, wake them after unlocking (in any order). */
inline chan_close(c) {
    lock(c);
    if
    :: closed[c] -> unlock(c)               /* GOCC_ECLOSED */
    :: else ->
        closed[c] = 1;
        printf("T%d: closes C%d\n", me, c);
        wl = 0;
        do
        :: waitq_take(c, RECV);
            if
            :: ts == 0 -> break
            :: else -> d_step { sgel[ts] = 0; complete(ts, 0); wl = wl | (LATE_WAKE << OWNER(ts)); ts = 0 }
            fi
        od;
        do
        :: waitq_take(c, SEND);
            if
            :: ts == 0 -> break
            :: else -> d_step { complete(ts, 0); wl = wl | (LATE_WAKE << OWNER(ts)); ts = 0 }
            fi
        od;
        assert(qn[QI(c, RECV)] == 0 && qn[QI(c, SEND)] == 0);   /* P7 */
        unlock(c);
        do
        :: wl == 0 -> break
        :: else ->
            if
            :: wl & 1 -> k = 0
            :: wl & 2 -> k = 1
            :: wl & 4 -> k = 2
            fi;
            wl = wl & (7 - (1 << k));
            wake(k)
        od;
        k = 0
    fi
}

/* ---- the scenarios ---- */

proctype W0(byte me) {
    LOCALS;
#if SCENARIO == 1
    SEL2(0, C0, RECV, 0, C1, RECV, 0);
    SEL2(0, C0, RECV, 0, C1, RECV, 0)
#elif SCENARIO == 2
    SEL2(0, C0, RECV, 0, C1, RECV, 0);
    OP(0, C0, RECV, 0)
#elif SCENARIO == 3
    SEL2(1, C0, RECV, 0, C1, RECV, 0)
#else
    SEL2(0, C0, RECV, 0, C1, RECV, 0)
#endif
}

proctype W1(byte me) {
    LOCALS;
#if SCENARIO == 1
    SEL2(0, C1, SEND, 9, C0, SEND, 10);
    SEL2(0, C1, SEND, 11, C0, SEND, 12)
#elif SCENARIO == 2
    SEL2(0, C1, SEND, 9, C0, SEND, 10);
    OP(0, C1, SEND, 11)
#elif SCENARIO == 3
    SEL2(0, C1, SEND, 9, C0, SEND, 10)
#else
    OP(0, C0, RECV, 0)
#endif
}

proctype W2(byte me) {
    LOCALS;
#if SCENARIO == 3
    OP(1, C0, SEND, 17)
#else
    SEL2(0, C1, SEND, 17, C0, SEND, 18);
    OP(0, C0, SEND, 19)
#endif
}

proctype Closer(byte me) {
    LOCALS;
#if SCENARIO == 3
    ctxerr = 1;                             /* cancel: err before close */
    chan_close(D);
#endif
    chan_close(C0);
    chan_close(C1)
}

init {
    byte c, v, s, x;
    bit found;
    d_step {
        c = 0;
        do
        :: c < NP -> wclaim[c] = 1; spur[c] = SPURIOUS; c++
        :: else -> break
        od;
        c = 0
    };
    atomic {
        run W0(0);
        run W1(1);
#if SCENARIO >= 3
        run W2(2);
#endif
#if SCENARIO != 1
        run Closer(CLOSER)
#endif
    };
    _nr_pr == 1;
    /* Everyone returned: final checks. */
    d_step {
        c = 0;
        do
        :: c < NCH ->
            assert(mu[c] == 0);
            assert(qn[QI(c, RECV)] == 0 && qn[QI(c, SEND)] == 0);  /* P5 */
            c++
        :: else -> break
        od;
        v = 1;
        do
        :: v < NV ->
            found = 0;
            c = 0;
            do
            :: c < NCH ->
                s = 0;
                do
                :: s < cnt[c] ->
                    x = (rx[c] + s) % CAP(c);
                    if :: buf[c * MAXCAP + x] == v -> found = 1 :: else -> skip fi;
                    s++
                :: else -> break
                od;
                c++
            :: else -> break
            od;
            if
            :: sentok[v] -> assert(got[v] + found == 1)  /* P4 */
            :: else -> assert(got[v] == 0 && !found)
            fi;
            v++
        :: else -> break
        od
    }
}
