/*
 * docs/model/sched.pml - a Promela model of how the scheduler's workers go
 * idle and are woken (src/sched.c: wakep, stop_spinning, find_runnable's
 * idle path, unidle, idle_sleep, poll_woke, poll_idle; src/netpoll.c: the
 * poll token and its break), so that readied work is never stranded while
 * workers sleep and each wake of an idle worker is consumed exactly once.
 * docs/model/check.sh runs spin on it; docs/model/README.md maps each model
 * step to the C and says what the checks found.
 *
 * Memory is sequentially consistent (Promela): the SC_FENCE pairs of the C
 * code (a producer's fence between publishing work and wakep's reads; the
 * idle worker's fence between publishing itself idle and its re-check) are
 * implicit, so a pass proves the protocol given that those fences are where
 * sched.c puts them, not that they are there. Each atomic read-modify-write
 * is one step; reads of different words are separate steps, except where a
 * comment says why one step may stand for several. A critical section of
 * S.mu is one step: the words written under S.mu and read without it
 * (nactive, the global queue's length) are read one word a step, and no
 * section writes two of them.
 *
 * The pieces:
 *   Worker W0, W1  worker_main: find_runnable (its runnext, its ring, the
 *                  global queue with gq_get's batch into the ring; becoming
 *                  a spinner; steal_work: half the other's ring, a running
 *                  worker's runnext, the global queue; idle_spin; then going
 *                  idle: stop spinning, under S.mu take from the global
 *                  queue or arm idle_w and publish itself idle; SC_FENCE and
 *                  the re-check -> unidle; or the poll token -> poll_idle;
 *                  or idle_sleep), stop_spinning, then the item (run_item).
 *   Producer P0    (scenarios 1, 2) a plain thread: ready_new into the
 *                  global queue under S.mu, then wakep.
 *   task code      what an item does while a worker runs it (run_item): a
 *                  ready_new into the worker's ring, gocc__sched_ready into
 *                  its runnext (an older runnext pushed into the ring, then
 *                  wakep), registering a descriptor and kicking the poller
 *                  (gocc__netpoll_kick -> gocc__sched_poke -> wakep), and
 *                  "runs until item X has run" (a long task: its worker is
 *                  busy, so X needs the other worker: a stranded X is a
 *                  deadlock spin sees).
 *   Device D0      (scenario 3) the descriptor becomes ready, or never.
 *   Monitor M0     (-DMONITOR) monitor_main's rescue: when there is work
 *                  and an idle worker, wakep; when nobody holds the poll
 *                  token and the descriptor is ready, a poll that does not
 *                  block (its readiness goes to the global queue, then
 *                  wakep). In the C code it looks every 1-10 ms; here,
 *                  whenever its condition holds.
 *
 * Abstractions: queues are sets of items (a bit mask each: the global
 * queue, each ring; runnext holds one item), order is not kept (a FIFO's
 * order only decides which item goes first); "half a ring" is the lowest
 * items; a ring never fills. Both workers exist from the start and count as
 * active, and none is surplus (start_worker, idle_timeout and the exit of a
 * surplus worker are not modelled: with every worker started, nactive <
 * procs means some worker is on the idle list, so wakep's "start a worker"
 * branch cannot be taken). The monitor's stuck marks, over_procs and
 * hand_off_local, shutdown's quit, fork, GLOBAL_EVERY and RUNNEXT_STREAK are
 * left out. An idle worker's futex wait is its word staying SLEEPING
 * (park.c's park_impl with spin < 0: no spinning). The poller's wait
 * (epoll_wait) returns when the descriptor is ready or the wake descriptor
 * was written (a break); one return consumes both. The descriptor is a
 * one-off wait (gocc_fd_poll): its slot fires once.
 *
 * Properties (assertions, labels Q1..Q6 in the text, and spin's
 * invalid-end-state search):
 *   Q1 no lost work: every item readied runs, and then every worker goes
 *      idle (an invalid end state otherwise: the workers asleep, or one
 *      busy waiting for an item nobody will run, with work queued);
 *   Q2 each item runs exactly once and sits in one queue at a time;
 *   Q3 the counters: nspinning == (workers spinning) + (wakeps past their
 *      CAS that hold the count), at most one such wakep at a time (no
 *      storm), 0 <= nactive <= procs, nidle + nactive == procs, and at the
 *      end nspinning == 0 and nactive == 0;
 *   Q4 a wake lands on the wait it was taken for: the waker's exchange
 *      finds WAITING or SLEEPING (never WOKEN), on a worker a waker took
 *      off the idle list and that has not consumed that wake yet;
 *   Q5 each wake is consumed exactly once: an idle worker's park returns
 *      only with a wake owed to it, and it arms its next idle wait only
 *      after consuming the last wake owed to it;
 *   Q6 a worker taken off the idle list by wakep is active and spinning
 *      when it consumes the wake.
 * In "fair" mode (pan -l -f), no run goes on forever in which every thread
 * that can move does: when the work is done, the workers all sleep.
 *
 * What the checks found (see docs/model/README.md): the fence pairing
 * alone (sched.c before three rules it now has) verified only with the
 * monitor's rescue (-DMONITOR); without it work could be stranded until
 * the monitor's next look, in two ways, and a worker that saw work in its
 * re-check could not steal it. sched.c now has the three rules; each
 * has a broken variant below that removes it:
 *   -DNEG_GIVEBACK_NO_LOOK  wakep that found no idle worker gives its count
 *                           back and returns (does not SC_FENCE and look
 *                           again: nactive < procs and work_anywhere ->
 *                           wakep again); a producer that read that count
 *                           left its work to it;
 *   -DNEG_IDLE_TAKE_NO_WAKEP find_runnable: the last spinner that takes
 *                           work from the global queue under S.mu, after
 *                           it stopped spinning, does not call wakep (as
 *                           stop_spinning would have);
 *   -DNEG_UNIDLE_NOT_SPINNING unidle (the worker took itself off the list)
 *                           does not make it a spinner (Go's
 *                           becomeSpinning after checkRunqsNoP): it loops
 *                           idle -> re-check -> unidle -> idle while
 *                           another holds nspinning, with the give-back's
 *                           second look in step with it for ever (a
 *                           non-progress cycle in fair mode).
 *
 * More broken variants (check.sh requires spin to find an error in each;
 * all are checked without the monitor, so each failure is their own):
 *   -DNEG_NO_RECHECK        go idle without the re-check after publishing
 *                           idle (and the fence);
 *   -DNEG_NO_RESET_SPIN     a spinner that found work stops spinning
 *                           without wakep when it was the last spinner;
 *   -DNEG_WAKEP_NO_CAS      wakep tests nspinning == 0 and then stores 1
 *                           instead of a compare-exchange;
 *   -DNEG_UNIDLE_DROP_WAKE  unidle, taken by a waker first, returns without
 *                           consuming the waker's wake;
 *   -DNEG_NO_BREAK          wakep takes the worker in the poller's wait but
 *                           does not break its wait.
 *
 * Scenarios (-DSCENARIO=n), two workers (procs 2) each:
 *   1  P0 readies items 0 and 1 into the global queue (a wakep each); item
 *      0 runs until item 1 has run.
 *   2  P0 readies item 0; item 0 (a task) readies item 1 with ready_new
 *      (its ring) and runs until 1 has run; then readies 2, then 3, into
 *      its runnext (3 pushes 2 into the ring, then wakep) and runs until 2
 *      has run.
 *   3  the poller: item 0 is in the global queue at the start; it
 *      registers a descriptor (a one-off wait) and kicks, readies item 2
 *      into its ring and runs until item 2 has run; D0 may make the
 *      descriptor ready; the poll that sees it readies item 1 (the waiting
 *      task) into the polling worker's runnext (the monitor's poll: into
 *      the global queue).
 */

#ifndef SCENARIO
#define SCENARIO 1
#endif

#define NW    2         /* workers W0, W1 */
#define PROCS 2         /* S.procs */
#define NONE  255

#if SCENARIO == 1
#define NI 2
#elif SCENARIO == 2
#define NI 4
#else
#define NI 3
#endif
#define ALL ((1 << NI) - 1)

/* gocc__waiter.state (gocc-internal.h GOCC__PARK_*) */
#define WAITING  0
#define SLEEPING 1
#define WOKEN    2

/* ---- the run queues: sets of items ---- */
byte gq;                /* the global queue (S.mu) */
byte ring[NW];          /* each worker's ring */
byte runnext[NW];       /* item + 1; 0 empty */
byte ran;               /* items that ran (checker) */

/* ---- S: the idle list and the counters ---- */
short nspinning;
short nactive = NW;     /* both workers started, looking for work */
short nidle;
bit idle[NW];           /* wk->idle: on S.idle (S.mu) */
bit in_poll[NW];        /* wk->in_poll (S.mu) */
bit poll_taken[NW];     /* wk->poll_taken */
bit spinning[NW];       /* wk->spinning: the owner's, or its waker's */
bit in_task[NW];        /* wk->in_task: read by a thief of runnext */
byte iw[NW];            /* wk->idle_w.state */

/* ---- netpoll (scenario 3) ---- */
bit nused;              /* a descriptor is registered (nused != 0) */
bit token;              /* poll_token */
bit evready;            /* the descriptor's readiness, not yet returned */
bit pbreak;             /* the wake descriptor was written, not yet returned */
bit fired;              /* the descriptor became ready (D) */
bit ddone;              /* D is done */

/* ---- the checker ---- */
bit pdone;              /* the producer P is done */
bit owed[NW];           /* a waker took W off the idle list: a wake is owed */
byte inflight;          /* wakeps past their CAS, holding a count */

hidden byte h_k, h_m, h_n;  /* scratch inside d_steps */

/* ---- the counters (Q3) ---- */

inline check_counts() {
    assert(nspinning == spinning[0] + spinning[1] + inflight);
    assert(inflight <= 1);                  /* one wakep at a time: no storm */
    assert(nactive >= 0 && nactive <= PROCS);
    assert(nidle + nactive == PROCS)
}

/* ---- the run queues ---- */

/* lowest item of mask x into t */
inline lowest(x, t) {
    t = 0;
    do
    :: (x >> t) & 1 -> break
    :: else -> t++
    od
}

/* gq_put_locked under S.mu (from the producer P) */
inline gq_put(i) {
    d_step {
        assert(!(gq & (1 << i)));           /* Q2 */
        gq = gq | (1 << i)
    }
}

/* ring_put by the owner (a ring never fills here) */
inline ring_put(i) {
    d_step {
        assert(!(ring[me] & (1 << i)));     /* Q2 */
        ring[me] = ring[me] | (1 << i)
    }
}

/* gq_get(wk, batch) once its length was seen non-zero: under S.mu, one
 * item, and len / procs + 1 more into wk's ring. (Inside a d_step.) */
inline gq_take_batch(t) {
    if
    :: gq != 0 ->
        lowest(gq, t);
        gq = gq & ~(1 << t);
        h_n = 0; h_k = 0;
        do
        :: h_k < NI -> if :: (gq >> h_k) & 1 -> h_n++ :: else -> skip fi; h_k++
        :: else -> break
        od;
        h_m = h_n / PROCS + 1;
        h_k = 0;
        do
        :: h_m > 0 && h_k < NI ->
            if
            :: (gq >> h_k) & 1 ->
                gq = gq & ~(1 << h_k); ring[me] = ring[me] | (1 << h_k); h_m--
            :: else -> skip
            fi;
            h_k++
        :: else -> break
        od;
        h_k = 0; h_m = 0; h_n = 0
    :: else -> t = NONE
    fi
}

/* ring_steal(me, victim): half the victim's ring (rounded up); keep the
 * last, publish the rest in my ring. (Inside a d_step.) */
inline steal_ring(v, t) {
    h_n = 0; h_k = 0;
    do
    :: h_k < NI -> if :: (ring[v] >> h_k) & 1 -> h_n++ :: else -> skip fi; h_k++
    :: else -> break
    od;
    h_m = h_n - h_n / 2;
    t = NONE; h_k = 0;
    do
    :: h_m > 0 && h_k < NI ->
        if
        :: (ring[v] >> h_k) & 1 ->
            ring[v] = ring[v] & ~(1 << h_k);
            if :: t != NONE -> ring[me] = ring[me] | (1 << t) :: else -> skip fi;
            t = h_k; h_m--
        :: else -> skip
        fi;
        h_k++
    :: else -> break
    od;
    h_k = 0; h_m = 0; h_n = 0
}

/* work_anywhere(): the global queue's length, then each ring (a stuck
 * worker's runnext: no monitor here, no stuck worker). One word a step. */
inline work_anywhere(r) {
    if
    :: gq != 0 -> r = 1
    :: else ->
        if
        :: ring[0] != 0 -> r = 1
        :: else ->
            if
            :: ring[1] != 0 -> r = 1
            :: else -> r = 0
            fi
        fi
    fi
}

/* ---- waking workers ---- */

/* gocc__wake(&wk->idle_w) for a thread waiter: exchange to WOKEN (and
 * FUTEX_WAKE if it was SLEEPING: here, the parker's guard opens). */
inline wake_idle(v) {
    d_step {
        assert(iw[v] != WOKEN);             /* Q4: not a second wake */
        assert(owed[v]);                    /* Q4: the wait it was taken in */
        iw[v] = WOKEN
    };
    printf("%c%d: wakes W%d\n", who, me, v)
}

/* wakep() */
inline wakep() {
    retry = 1;
    do
    :: !retry -> break
    :: retry ->
    retry = 0;
    if
    :: atomic { nspinning != 0 -> printf("%c%d: wakep: nspinning %d, returns\n", who, me, nspinning) }
    :: else ->
        if
        :: atomic { nactive >= PROCS -> printf("%c%d: wakep: all active, returns\n", who, me) }
        :: else ->
#ifndef NEG_WAKEP_NO_CAS
            d_step {
                if
                :: nspinning == 0 -> nspinning = 1; inflight++; ok = 1
                :: else -> ok = 0; printf("%c%d: wakep: lost the CAS, returns\n", who, me)
                fi
            };
#else
            d_step {                        /* BUG: tested above, then stored */
                printf("%c%d: wakep: stores nspinning = 1 (was %d)\n", who, me, nspinning);
                nspinning = 1;
                inflight++;
                ok = 1
            };
#endif
            if
            :: ok ->
                d_step {                    /* S.mu */
                    v = NONE;
                    if
                    :: nactive < PROCS ->
                        if
                        :: idle[0] && !in_poll[0] -> v = 0
                        :: idle[1] && !in_poll[1] -> v = 1
                        :: else ->
                            if
                            :: idle[0] -> v = 0
                            :: idle[1] -> v = 1
                            :: else -> skip
                            fi
                        fi
                    :: else -> skip
                    fi;
                    if
                    :: v != NONE ->
                        assert(!spinning[v]);   /* Q6 */
                        idle[v] = 0;
                        spinning[v] = 1;
                        inflight--;
                        inpoll = in_poll[v];
                        nidle--;
                        nactive++;
                        assert(!owed[v]);
                        owed[v] = 1;
                        check_counts()
                    :: else -> skip
                    fi
                };
                if
                :: v != NONE ->
                    printf("%c%d: wakep takes W%d\n", who, me, v);
                    wake_idle(v);
#ifndef NEG_NO_BREAK
                    if
                    :: inpoll -> pbreak = 1; printf("%c%d: breaks W%d's poll\n", who, me, v)
                    :: else -> skip
                    fi;
#endif
                    v = 0; inpoll = 0
                :: else ->
                    d_step {                /* no idle worker: give it back */
                        printf("%c%d: wakep: no idle worker, gives nspinning back\n", who, me);
                        nspinning--;
                        inflight--;
                        check_counts()
                    };
                    v = 0;
#ifndef NEG_GIVEBACK_NO_LOOK
                    /* SC_FENCE, then look once more, as
                     * a spinner that stops does: a producer that read our
                     * count left its work to us. */
                    if
                    :: nactive < PROCS ->
                        work_anywhere(r);
                        if
                        :: r -> retry = 1; r = 0; printf("%c%d: wakep: work left: again\n", who, me)
                        :: else -> skip
                        fi
                    :: else -> skip
                    fi;
#endif
                    skip
                fi
            :: else -> skip
            fi;
            ok = 0
        fi
    fi
    od
}

/* ---- the idle worker's own waiter ---- */

/* gocc__park(&wk->idle_w) on a thread: CAS WAITING -> SLEEPING (or it is
 * WOKEN already), then the futex wait until WOKEN. The label is where an
 * idle worker may wait for good (a valid end state). */
inline consume_wake() {
    d_step {
        if
        :: iw[me] == WAITING -> iw[me] = SLEEPING
        :: else -> assert(iw[me] == WOKEN)
        fi
    };
    iw[me] == WOKEN;
    d_step {
        assert(owed[me]);                   /* Q5: a wake owed to it */
        owed[me] = 0;
        assert(!idle[me] && spinning[me])   /* Q6: taken by wakep */
    };
    printf("W%d: consumed its wake\n", me)
}

/* ---- the worker ---- */

inline run_item(t) {
    d_step {
        assert(!(ran & (1 << t)));          /* Q2: exactly once */
        ran = ran | (1 << t);
        in_task[me] = 1;
        printf("W%d: runs item %d\n", me, t)
    };
#if SCENARIO == 1
    if
    :: t == 0 -> (ran & 2) != 0             /* runs until item 1 ran */
    :: else -> skip
    fi;
#elif SCENARIO == 2
    if
    :: t == 0 ->
        ring_put(1);                        /* ready_new from a task */
        printf("W%d: item 0 readies item 1 into W%d's ring\n", me, me);
        wakep();
        (ran & 2) != 0;
        atomic {                            /* gocc__sched_ready: runnext */
            assert(runnext[me] == 0);
            runnext[me] = 2 + 1
        };
        printf("W%d: item 0 readies item 2 into runnext\n", me);
        atomic {                            /* exchange: pushes out 2 */
            pushed = runnext[me];
            runnext[me] = 3 + 1
        };
        printf("W%d: item 0 readies item 3 into runnext\n", me);
        if
        :: pushed != 0 ->
            ring_put(pushed - 1);
            printf("W%d: item %d pushed into the ring\n", me, pushed - 1);
            pushed = 0;
            wakep()
        :: else -> skip
        fi;
        (ran & 4) != 0
    :: else -> skip
    fi;
#else
    if
    :: t == 0 ->                            /* gocc_fd_poll: register, kick */
        nused = 1;
        printf("W%d: item 0 waits for the descriptor\n", me);
        if
        :: !token -> wakep()                /* gocc__sched_poke */
        :: else -> skip
        fi;
        ring_put(2);                        /* ready_new from a task */
        printf("W%d: item 0 readies item 2 into W%d's ring\n", me, me);
        wakep();
        (ran & 4) != 0                      /* runs until item 2 ran */
    :: else -> skip
    fi;
#endif
    in_task[me] = 0
}

proctype Worker(byte me) {
    byte t = NONE, v, pushed;
    byte who = 'W';                         /* for the printfs: Wn */
    bit ok, r, inpoll, retry, last;

    do
    ::
        /* ---- find_runnable ---- */
        do
        ::
            /* Its runnext, its ring, then the global queue (gq_get with its
             * batch). Only this worker adds to its runnext and ring (it runs
             * no task now), others only take: one step stands for the three
             * looks. */
            atomic {
                d_step {
                    if
                    :: runnext[me] != 0 -> t = runnext[me] - 1; runnext[me] = 0
                    :: else ->
                        if
                        :: ring[me] != 0 -> lowest(ring[me], t); ring[me] = ring[me] & ~(1 << t)
                        :: else -> gq_take_batch(t)
                        fi
                    fi
                };
                if :: t != NONE -> goto found :: else -> skip fi
            };
            /* Become a spinner: at most half the active workers spin (one
             * step for the two reads and the add). */
            d_step {
                if
                :: !spinning[me] && 2 * nspinning < nactive ->
                    spinning[me] = 1;
                    nspinning++;
                    check_counts();
                    printf("W%d: spins\n", me)
                :: else -> skip
                fi
            };
            if
            :: spinning[me] ->
                /* steal_work: half the other's ring; on the last round a
                 * running worker's runnext (if the pause saw it stay) */
                atomic {
                    d_step {
                        steal_ring(1 - me, t);
                        if
                        :: t == NONE && in_task[1 - me] && runnext[1 - me] != 0 ->
                            t = runnext[1 - me] - 1; runnext[1 - me] = 0;
                            printf("W%d: steals runnext item %d\n", me, t)
                        :: true -> skip
                        fi
                    };
                    if :: t != NONE -> goto found :: else -> skip fi
                };
                /* ... then the global queue */
                atomic {
                    d_step { gq_take_batch(t) };
                    if :: t != NONE -> goto found :: else -> skip fi
                };
                /* idle_spin: a while longer, watching for work */
                if
                :: gq != 0 || ring[1 - me] != 0 -> goto again
                :: true -> skip
                fi
            :: else -> skip
            fi;

            /* ---- going idle ---- */
            /* Stop spinning first (a waker then owns wk->spinning). */
            if
            :: spinning[me] ->
                d_step {
                    spinning[me] = 0;
                    nspinning--;
                    last = (nspinning == 0);
                    check_counts()
                }
            :: else -> skip
            fi;
            atomic {
                d_step {                    /* S.mu */
                    if
                    :: gq != 0 ->           /* gq_get_locked */
                        lowest(gq, t); gq = gq & ~(1 << t);
                        printf("W%d: takes item %d from the global queue under S.mu\n", me, t)
                    :: else ->
                        assert(!owed[me]);  /* Q5: the last wake was consumed */
                        iw[me] = WAITING;   /* gocc__waiter_arm */
                        idle[me] = 1;
                        nidle++;
                        nactive--;
                        check_counts();
                        printf("W%d: idle\n", me)
                    fi
                };
                if
                :: t != NONE ->
#ifndef NEG_IDLE_TAKE_NO_WAKEP
                    /* the last spinner took work under
                     * the lock: wake another for what may be left, as
                     * stop_spinning does */
                    if
                    :: last -> last = 0; wakep()
                    :: else -> skip
                    fi;
#endif
                    last = 0;
                    goto found
                :: else -> last = 0
                fi
            };
#ifndef NEG_NO_RECHECK
            /* SC_FENCE, then the re-check: nactive, then work_anywhere():
             * the global queue's length, then the other's ring (its own is
             * empty: it looked, and only it adds there; no monitor here,
             * so no stuck worker's runnext). One word a step. */
            assert(ring[me] == 0);
            if
            :: nactive < PROCS ->
                if
                :: gq != 0 -> r = 1
                :: else ->
                    if
                    :: ring[1 - me] != 0 -> r = 1
                    :: else -> skip
                    fi
                fi;
                if
                :: r ->
                    r = 0;
                    d_step {                /* unidle, S.mu */
                        if
                        :: idle[me] ->
                            idle[me] = 0; nidle--; nactive++; ok = 1;
                            check_counts();
                            printf("W%d: saw work: unidle\n", me)
                        :: else ->
                            ok = 0;
                            printf("W%d: saw work, but a waker took it\n", me)
                        fi
                    };
                    if
                    :: ok ->
                        ok = 0;
#ifndef NEG_UNIDLE_NOT_SPINNING
                        /* it saw work: it spins, so that
                         * it may steal it (Go's becomeSpinning after
                         * checkRunqsNoP) */
                        d_step {
                            spinning[me] = 1;
                            nspinning++;
                            check_counts()
                        };
#endif
                        skip
                    :: else ->
#ifndef NEG_UNIDLE_DROP_WAKE
                        consume_wake()
#else
                        skip                /* BUG: the waker's wake is left */
#endif
                    fi;
                    goto again
                :: else -> skip
                fi
            :: else -> skip
            fi;
#endif
#if SCENARIO == 3
            /* The poll role, if nobody holds it: gocc__netpoll_wanted, then
             * under S.mu, still idle: gocc__netpoll_claim. */
            if
            :: nused && !token ->
                d_step {
                    if
                    :: idle[me] && nused && !token ->
                        token = 1; in_poll[me] = 1;
                        printf("W%d: polls\n", me)
                    :: else -> skip
                    fi
                };
                if
                :: in_poll[me] ->
                    /* poll_idle: gocc__netpoll_poll(true, poll_woke, wk) */
end_poll:           (evready || pbreak);
                    d_step {                /* backend_wait returns */
                        ok = evready;
                        evready = 0;
                        pbreak = 0
                    };
                    d_step {                /* poll_woke, S.mu */
                        in_poll[me] = 0;
                        poll_taken[me] = !idle[me];
                        if
                        :: idle[me] -> idle[me] = 0; nidle--; nactive++; check_counts()
                        :: else -> skip
                        fi
                    };
                    if
                    :: ok ->                /* dispatch: the slot fires once */
                        d_step {
                            nused = 0;
                            printf("W%d: the poll saw the descriptor\n", me)
                        }
                    :: else -> skip
                    fi;
                    token = 0;              /* gocc__netpoll_release */
                    if
                    :: ok ->                /* the waiter's wake: sched_ready here */
                        ok = 0;
                        d_step {
                            /* Its runnext is empty (it looked before it
                             * went idle, and only it adds there), so the
                             * exchange pushes nothing out: no wakep. */
                            assert(runnext[me] == 0);
                            runnext[me] = 1 + 1;
                            printf("W%d: readies item 1 into its runnext\n", me)
                        }
                    :: else -> skip
                    fi;
                    if
                    :: poll_taken[me] -> poll_taken[me] = 0; consume_wake()
                    :: else -> skip
                    fi;
                    goto again
                :: else -> skip
                fi
            :: else -> skip
            fi;
#endif
            /* idle_sleep: not a surplus worker, so an untimed park */
            d_step {
                if
                :: iw[me] == WAITING -> iw[me] = SLEEPING
                :: else -> assert(iw[me] == WOKEN)
                fi
            };
end_sleep:  iw[me] == WOKEN;
            d_step {
                assert(owed[me]);           /* Q5 */
                owed[me] = 0;
                assert(!idle[me] && spinning[me]);  /* Q6 */
                printf("W%d: woken: spinning\n", me)
            };
again:      skip
        od;
found:
        /* stop_spinning (Go's resetspinning) */
        if
        :: spinning[me] ->
            d_step {
                spinning[me] = 0;
                nspinning--;
                ok = (nspinning == 0);
                check_counts()
            };
#ifndef NEG_NO_RESET_SPIN
            if
            :: ok -> ok = 0; wakep()
            :: else -> skip
            fi
#else
            ok = 0
#endif
        :: else -> skip
        fi;
        run_item(t);
        t = NONE
    od
}

#if SCENARIO == 3
/* The descriptor becomes ready, or never does. */
proctype Device() {
    nused == 1;
    if
    :: evready = 1; fired = 1; printf("D0: the descriptor is ready\n")
    :: true -> skip
    fi;
    ddone = 1
}
#endif

#ifdef MONITOR
/* monitor_main's rescue: when there is work and a worker is idle, wakep
 * (every tick in the C code; here, whenever it holds). */
proctype Monitor() {
    byte v;
    bit ok, r, inpoll, retry;
    byte me = 0, who = 'M';                 /* for the printfs: M0 */
end_mon:
    do
    :: atomic { (gq != 0 || ring[0] != 0 || ring[1] != 0) && nactive < PROCS } ->
        printf("M0: work, and an idle worker\n");
        wakep()
#if SCENARIO == 3
    :: atomic { nused && !token && evready -> token = 1 } ->
        /* gocc__netpoll_claim, then a poll that does not block (only
         * one that finds the descriptor ready is modelled) */
        d_step {
            evready = 0;
            pbreak = 0;
            nused = 0                       /* dispatch: the slot fires once */
        };
        token = 0;                          /* gocc__netpoll_release */
        gq_put(1);                          /* gocc__sched_ready off a worker */
        printf("M0: the poll saw the descriptor: item 1 into the global queue\n");
        wakep()
#endif
    od
}
#endif

#if SCENARIO != 3
proctype Producer() {
    byte v;
    bit ok, r, inpoll, retry;
    byte me = 0, who = 'P';                 /* for the printfs: P0 */
    gq_put(0);
    printf("P0: readies item 0 into the global queue\n");
    wakep();
#if SCENARIO == 1
    gq_put(1);
    printf("P0: readies item 1 into the global queue\n");
    wakep();
#endif
    pdone = 1
}
#endif

init {
    atomic {
#if SCENARIO == 3
        gq = 1;                             /* item 0, readied before */
        pdone = 1;
#else
        run Producer();
#endif
        run Worker(0);
        run Worker(1);
#ifdef MONITOR
        run Monitor();
#endif
#if SCENARIO == 3
        run Device()
#endif
    };
    /* Q1: all the work ran, and then every worker goes idle. */
    d_step {
#if SCENARIO == 3
        ddone && ran == (fired -> ALL : ALL & ~2) &&
#else
        ran == ALL &&
#endif
        pdone && nidle == NW && inflight == 0;
        assert(nspinning == 0 && nactive == 0);     /* Q3 */
        assert(gq == 0 && ring[0] == 0 && ring[1] == 0 && runnext[0] == 0 && runnext[1] == 0)
    }
}
