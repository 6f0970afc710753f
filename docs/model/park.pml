/*
 * docs/model/park.pml - a Promela model of how a coroutine task parks and
 * is made runnable again (src/sched.c, src/park.c): the switch that saves
 * its registers, the scheduler's WAITING -> SLEEPING after the switch, the
 * waker's exchange to WOKEN, the timer's TIMEDOUT, the yield-wait used when
 * no timer can be had, and the run queues that hand a ready task to exactly
 * one worker. docs/model/check.sh runs spin on it (with select.pml, the
 * model of what a waker does before it wakes); docs/model/README.md says
 * what a pass means and which model step stands for which C.
 *
 * Memory is sequentially consistent; each atomic operation of the C code is
 * one atomic step here, plain code between them is split where another
 * thread could see the difference.
 *
 * The pieces (one proctype each):
 *   Worker W0, W1  worker_main: find_runnable (own runnext, a thief's
 *                  exchange on another's runnext, the global queue), run_task
 *                  (the switch into the task), after_switch.
 *   Parker T0      a task that waits: the waits of its scenario, each "arm
 *                  (gocc__waiter_arm) where a waker can find it, park, and
 *                  after a timed park's false the caller's claim check"
 *                  (what workpool.c's idle workers, coroutine tasks, do
 *                  with their record's `queued` under the pool lock);
 *                  T1 too in scenario 3.
 *   WakerTask T2   (scenario 3) a task that wakes T0 and T1: its readies go
 *                  into its worker's runnext.
 *   Waker T3       (scenarios 1, 2, 4) a plain thread, not a task, that
 *                  wakes T0: claim, then gocc__wake; its ready goes into
 *                  the global queue.
 *   Timer TM       the timer thread running gocc__sched_timeout for T0's
 *                  timed park.
 *
 * A task runs only while a worker has switched into it: `running[t]` names
 * that worker, `onstack[t]` says some thread executes on the task's stack
 * (its registers are not saved). The task's own steps (its proctype) run
 * between the worker's switch into it and its switch back, as on the real
 * thread; the worker waits for `back[w]` meanwhile.
 *
 * Properties (assertions, labels Q1..Q7 in the text, and spin's
 * invalid-end-state search):
 *   Q1 a task is never resumed while a thread is still on its stack
 *      (its registers are saved before anyone can run it);
 *   Q2 a task is never resumed while it runs, and never sits in two queue
 *      slots at once (so each ready runs it exactly once);
 *   Q3 no lost wake: every task finishes and every worker stops (an
 *      invalid end state otherwise: a park nobody resumes); with the cycle
 *      check, no run goes on forever;
 *   Q4 a park returns only when something made it runnable: an untimed one
 *      with its word WOKEN, a timed one with WOKEN (true) or TIMEDOUT;
 *   Q5 a timed park returns false only when the timer's TIMEDOUT came before
 *      any wake (no wake was delivered to it), and a wake is never lost by
 *      it: a waker that claimed is always followed by the task consuming
 *      its wake in a park (the caller parks again when its own claim fails);
 *   Q6 the wait as a whole reports a timeout only when no waker claimed it;
 *   Q7 one wake per claimed wait: the exchange never finds WOKEN, it never
 *      lands after the task ended the wait, and each wait ends with exactly
 *      one of "woken by the claimer" and "timed out, claimed by itself".
 *
 * Broken variants (check.sh requires spin to find an error in each):
 *   -DNEG_SLEEP_BEFORE_SWITCH  the task publishes SLEEPING itself, before
 *                              it is off its stack;
 *   -DNEG_READY_ON_WAITING     the waker readies whatever it saw;
 *   -DNEG_TIMEOUT_READY_WAITING the timer readies from WAITING too;
 *   -DNEG_NO_DEL_SYNC          the task returns from a timed park without
 *                              cancelling its timer (gocc__timer_del_sync);
 *   -DNEG_NO_READY             the waker only sets WOKEN, never readies (a
 *                              lost wake: the check that every park ends).
 * And one that shows a limit of the primitive, not a bug:
 *   -DSTRICT_FALSE             asserts that a timed park returns false only
 *                              when no waker claimed: it does not hold (a
 *                              claim can come just before the timer), which
 *                              is why every caller checks its claim after a
 *                              false (Q6 holds for the wait as a whole).
 *
 * Scenarios (-DSCENARIO=n), two workers each:
 *   1  T0 parks untimed twice; thread T3 wakes each wait.
 *   2  T0: a timed park (T3 may claim it, before or after the timer fires),
 *      then an untimed one; T3 wakes the second (and the first if it can
 *      still claim it).
 *   3  T0: an untimed park, then a timed park that nobody wakes (the timer
 *      ends it); T1: an untimed park; task T2 wakes the untimed ones, in
 *      either order, into its worker's runnext (the second ready pushes the
 *      first out into the queue when nobody took it yet).
 *   4  as 2, but no timer could be had: the timed park yield-waits
 *      (AFTER_YIELD, at most two yields before the deadline passes).
 *
 * Left out (so not proven here): the idle and spinning workers and wakep
 * (a worker here looks at the queues whenever it has nothing to run: that
 * an idle worker is woken for new work is assumed), the monitor (its stuck
 * marks only let thieves take a runnext, which any worker may do here), the
 * per-worker rings' lock-free indices (one shared FIFO stands for the rings
 * and the global queue), memory ordering, the dump's task state, and what
 * the task does between its parks (select.pml models that part).
 */

#ifndef SCENARIO
#define SCENARIO 2
#endif

/* gocc__waiter.state (gocc-internal.h GOCC__PARK_*) */
#define WAITING  0
#define SLEEPING 1
#define WOKEN    2
#define TIMEDOUT 3

/* worker.after (sched.c AFTER_*) */
#define A_PARK  1
#define A_YIELD 2
#define A_EXIT  3

#define NW 2            /* workers W0, W1 */
#if SCENARIO == 3
#define NT 3            /* tasks: T0 and T1 park, T2 wakes them */
#else
#define NT 1            /* task T0 parks; thread T3 wakes it */
#endif
#define MAXYIELD 2

/* ---- each task's waiter (gocc__waiter embedded in its gocc__task) ---- */
byte wstate[NT];        /* the park word */
bit  claim[NT];         /* 0 = armed, 1 = claimed (set to 1 in init) */
byte armed[NT];         /* the wait (1, 2) a waker can find now; 0 none */

/* ---- the run queues ---- */
byte runnext[NW];       /* task id + 1; 0 empty */
byte gq[NT];            /* the global queue (and the rings), FIFO */
byte gqn;
byte ndone;             /* tasks that ended (after_switch AFTER_EXIT) */

/* ---- the switch ---- */
byte running[NT];       /* worker id + 1 that runs the task; 0 none */
bit  onstack[NT];       /* a thread executes on the task's stack */
byte after[NW];         /* wk->after, set by the task before it switches back */
bit  back[NW];          /* the task switched back to the worker's loop */

/* ---- T0's timer entry t->tm ---- */
bit  tpending;          /* armed, in the heap */
bit  trunning;          /* its callback runs now (T.firing == &t->tm) */

/* ---- the checker ---- */
byte inq[NT];           /* queue slots holding the task */
bit  wonby[NT];         /* a waker claimed the current wait */
byte wakes[NT];         /* wakes delivered (exchanges) in the current wait */
bit  waited[NT];        /* in a wait: from its arm to its end */

/* ---- run queues (sched.c) ---- */

/* gq_put_locked / ring_put: any worker may take it from there. */
inline gq_put(t) {
    d_step {
        assert(inq[t] == 0);                /* Q2: one queue slot at a time */
        inq[t]++;
        gq[gqn] = t;
        gqn++
    }
}

/* The exchange on a worker's runnext; a task pushed out goes where every
 * worker looks (ring_put, or the global queue). */
inline runnext_put(w, t) {
    atomic {
        assert(inq[t] == 0);                /* Q2 */
        inq[t]++;
        pushed = runnext[w];
        runnext[w] = t + 1;
        if
        :: pushed != 0 -> inq[pushed - 1]--  /* out of the slot, into the queue */
        :: else -> skip
        fi
    };
    if
    :: pushed != 0 ->
        printf("W%d: runnext was T%d: into the queue\n", w, pushed - 1);
        gq_put(pushed - 1);
        pushed = 0
    :: else -> skip
    fi
}

/* gocc__sched_ready(t): from a task, into its worker's runnext; from any
 * other thread (the timer's, a plain one), the global queue. */
inline ready_from_worker(w, t) {
    printf("T%d: readies T%d into W%d's runnext\n", who, t, w);
    runnext_put(w, t)
}

inline ready_from_thread(t) {
    printf("T%d: readies T%d into the global queue\n", who, t);
    gq_put(t)
}

/* ---- the worker's side ---- */

/* run_task: switch into t. */
inline run_task(t) {
    atomic {
        printf("W%d: switches into T%d\n", me, t);
        assert(!onstack[t]);                /* Q1: its registers are saved */
        assert(running[t] == 0);            /* Q2: not running elsewhere */
        running[t] = me + 1;
        onstack[t] = 1;
        back[me] = 0
    };
    back[me] == 1                           /* until it switches back */
}

/* after_switch: what the task could not do on its own stack. */
inline after_switch(t) {
    if
    :: after[me] == A_PARK ->
#ifndef NEG_SLEEP_BEFORE_SWITCH
        atomic {
            if
            :: wstate[t] == WAITING ->
                wstate[t] = SLEEPING; ok = 1;
                printf("W%d: T%d WAITING -> SLEEPING\n", me, t)
            :: else ->
                ok = 0;
                printf("W%d: T%d was woken or timed out before it was off its stack: runs again\n", me, t)
            fi
        };
        if
        :: !ok -> runnext_put(me, t)
        :: else -> skip
        fi;
        ok = 0
#else
        skip                                /* BUG: the task set SLEEPING itself */
#endif
    :: after[me] == A_YIELD -> gq_put(t)
    :: after[me] == A_EXIT -> d_step { ndone++; printf("W%d: T%d ended\n", me, t) }
    fi;
    after[me] = 0
}

proctype Worker(byte me) {
    byte t, pushed, i;
    bit ok;
    do
    :: atomic {                             /* find_runnable */
        if
        :: runnext[me] != 0 -> t = runnext[me] - 1; runnext[me] = 0
        :: runnext[1 - me] != 0 ->          /* a thief (stuck owner, hand-off) */
            t = runnext[1 - me] - 1; runnext[1 - me] = 0
        :: gqn > 0 ->
            t = gq[0];
            i = 1;
            do
            :: i < gqn -> gq[i - 1] = gq[i]; i++
            :: else -> break
            od;
            gqn--;
            gq[gqn] = 0;
            i = 0
        fi;
        inq[t]--
       };
        run_task(t);
        after_switch(t);
        t = 0
    :: ndone == NT -> break                 /* every task ended: the test is over */
    od
}

/* ---- the task's side ---- */

/* switch_to_sched(t, a): gocc__ctx_switch saves the registers and leaves
 * the stack; then the worker's loop runs. */
inline switch_to_sched(a) {
    atomic {
        wk = running[me] - 1;
        after[wk] = a;
        onstack[me] = 0;
        running[me] = 0;
        back[wk] = 1
    }
}

/* ... and when a worker switches back into it. */
inline resumed() {
    running[me] != 0;
    printf("T%d: runs again (word %d)\n", me, wstate[me])
}

/* gocc__waiter_arm, and a waker can find the wait (its sudog or record is
 * queued under a lock in the C code). */
inline arm(e) {
    d_step {
        wstate[me] = WAITING;
        claim[me] = 0;
        wonby[me] = 0;
        wakes[me] = 0;
        waited[me] = 1;
        armed[me] = e;
        printf("T%d: arms wait %d\n", me, e)
    }
}

/* The end of a wait: no waker can find it any more. */
inline end_wait() {
    d_step {
        assert(wakes[me] == wonby[me]);     /* Q7: one wake per claimed wait */
        waited[me] = 0;
        armed[me] = 0;
        printf("T%d: wait over\n", me)
    }
}

/* The switch away for a park (in gocc__sched_park). */
inline park_switch() {
#ifdef NEG_SLEEP_BEFORE_SWITCH
    atomic {                                /* BUG: published before the switch */
        if
        :: wstate[me] == WAITING -> wstate[me] = SLEEPING; ok = 1;
            printf("T%d: WAITING -> SLEEPING itself, still on its stack\n", me)
        :: else -> ok = 0
        fi
    };
    if
    :: ok -> switch_to_sched(A_PARK); resumed()
    :: else -> skip
    fi;
    ok = 0
#else
    switch_to_sched(A_PARK);
    resumed()
#endif
}

/* gocc__sched_park(w, -1) */
inline park() {
    park_switch();
    assert(wstate[me] == WOKEN)             /* Q4: untimed: only a wake resumes it */
}

/* gocc__sched_park(w, deadline) with a timer: res = 1 when woken. */
inline park_timed() {
    tpending = 1;                           /* gocc__timer_add */
    park_switch();
#ifndef NEG_NO_DEL_SYNC
    tpending = 0;                           /* gocc__timer_del_sync: removed, */
    trunning == 0;                          /* and its callback is not running */
#endif
    atomic {
        assert(wstate[me] == WOKEN || wstate[me] == TIMEDOUT);  /* Q4 */
        if
        :: wstate[me] == TIMEDOUT ->         /* CAS TIMEDOUT -> WAITING */
            wstate[me] = WAITING; res = 0;
            assert(wakes[me] == 0);         /* Q5: no wake was delivered to it */
#ifdef STRICT_FALSE
            assert(!wonby[me]);             /* not a property of the primitive */
#endif
            printf("T%d: timed park returns false\n", me)
        :: else -> res = 1; printf("T%d: timed park returns true\n", me)
        fi
    }
}

/* gocc__sched_park(w, deadline) without a timer: yield until WOKEN or the
 * deadline (which passes after at most MAXYIELD yields here). */
inline park_yield() {
    ny = 0;
    do
    :: wstate[me] == WOKEN -> res = 1; break
    :: else ->
        if
        :: ny < MAXYIELD -> skip            /* the deadline has not passed */
        :: atomic {                         /* passed: CAS WAITING -> WAITING */
               wstate[me] == WAITING -> res = 0;
               printf("T%d: yield-wait returns false\n", me)
           };
           break
        :: wstate[me] != WAITING -> skip    /* the CAS failed: WOKEN meanwhile */
        fi;
        switch_to_sched(A_YIELD);
        resumed();
        ny++
    od;
    ny = 0
}

/* A timed wait as its callers do it (workpool.c, runtime.c): a false is a
 * timeout only if the caller can take its own claim back; else a waker
 * claimed it and its wake is coming: park again for it. */
inline timed_wait(e) {
    arm(e);
#if SCENARIO == 4
    park_yield();
#else
    park_timed();
#endif
    if
    :: res -> skip
    :: else ->
        atomic {
            if
            :: claim[me] == 0 -> claim[me] = 1; res = 2;    /* a real timeout */
                printf("T%d: takes its own claim: timed out\n", me)
            :: else -> printf("T%d: a waker claimed first: parks for its wake\n", me)
            fi
        };
        if
        :: res == 2 -> assert(!wonby[me])   /* Q6: a timeout only when unclaimed */
        :: else -> park()
        fi
    fi;
    end_wait();
    res = 0
}

inline untimed_wait(e) {
    arm(e);
    park();
    end_wait()
}

/* ---- the waker's side ---- */

/* gocc__waiter_claim then gocc__wake, for wait e of task t (if the waker
 * still finds it). viaw: the waker is a task (its ready goes into its
 * worker's runnext). */
inline claim_and_wake(t, e) {
    atomic {
        if
        :: armed[t] == e && claim[t] == 0 ->
            claim[t] = 1; wonby[t] = 1; won = 1;
            printf("T%d: claims T%d's wait %d\n", who, t, e)
        :: armed[t] == e && claim[t] == 1 ->
            won = 0; printf("T%d: T%d's wait %d already claimed (by its timeout)\n", who, t, e)
        :: armed[t] > e ->
            won = 0; printf("T%d: T%d's wait %d is over\n", who, t, e)
        fi
    };
    if
    :: won ->
        atomic {
            assert(waited[t] && armed[t] == e);     /* Q7: in the wait it claimed */
            old = wstate[t];
            assert(old != WOKEN);           /* Q7: one wake */
            wstate[t] = WOKEN;
            wakes[t]++;
            printf("T%d: wakes T%d (word %d -> WOKEN)\n", who, t, old)
        };
#if defined(NEG_READY_ON_WAITING)
        if                                  /* BUG: readies whatever it saw */
        :: viaw -> ready_from_worker(running[me] - 1, t)
        :: else -> ready_from_thread(t)
        fi;
#elif defined(NEG_NO_READY)
        skip;                               /* BUG: never readies (SLEEPING forever) */
#else
        if
        :: old == SLEEPING && viaw -> ready_from_worker(running[me] - 1, t)
        :: old == SLEEPING && !viaw -> ready_from_thread(t)
        :: else -> skip
        fi;
#endif
        old = 0
    :: else -> skip
    fi;
    won = 0
}

/* T3: a plain thread (not a task) that wakes T0's two waits. */
proctype Waker(byte who) {
    byte old, me, pushed;                   /* (me, pushed: for a task's ready) */
    bit won, viaw;
    claim_and_wake(0, 1);
    claim_and_wake(0, 2)
}

/* gocc__sched_timeout, for T0's timer. */
proctype Timer() {
    byte s, spur = 1;                       /* one spurious CAS failure allowed */
    bit ok;
    do
    :: atomic { tpending == 1 -> tpending = 0; trunning = 1; printf("TM: fires\n") };
        s = wstate[0];
        do
        :: s == WAITING || s == SLEEPING ->
            atomic {
                if
                :: wstate[0] == s ->
                    wstate[0] = TIMEDOUT; ok = 1;
                    printf("TM: word %d -> TIMEDOUT\n", s);
#ifdef NEG_TIMEOUT_READY_WAITING
                    s = SLEEPING            /* BUG: readies from WAITING too */
#endif
                :: wstate[0] == s && spur > 0 ->
                    spur--;                 /* compare_exchange_weak failed anyway */
                    printf("TM: spurious CAS failure\n")
                :: else -> s = wstate[0]    /* the CAS failed: look again */
                fi
            };
            if
            :: ok && s == SLEEPING ->
                printf("TM: readies T0 into the global queue\n");
                gq_put(0);
                break
            :: ok && s != SLEEPING -> break
            :: else -> skip
            fi
        :: else -> break
        od;
        trunning = 0;
        s = 0;
        ok = 0
    :: ndone == NT -> break
    od
}

/* ---- the tasks ---- */

proctype Parker(byte me) {
    byte wk, ny, res;
    bit ok;
    resumed();                              /* first switched into */
#if SCENARIO == 1
    untimed_wait(1);
    untimed_wait(2);
#elif SCENARIO == 3
    if
    :: me == 0 -> untimed_wait(1); timed_wait(2)
    :: else -> untimed_wait(1)
    fi;
#else
    timed_wait(1);
    untimed_wait(2);
#endif
    switch_to_sched(A_EXIT)
}

#if SCENARIO == 3
/* T2: a task that wakes T0's and T1's first waits (in either order). */
proctype WakerTask(byte me) {
    byte wk, old, pushed, who = me;
    bit won, viaw = 1;
    resumed();
    if
    :: claim_and_wake(0, 1); claim_and_wake(1, 1)
    :: claim_and_wake(1, 1); claim_and_wake(0, 1)
    fi;
    switch_to_sched(A_EXIT)
}
#endif

init {
    byte i;
    atomic {
        i = 0;
        do
        :: i < NT -> claim[i] = 1; gq_put(i); i++    /* ready_new */
        :: else -> break
        od;
        run Worker(0);
        run Worker(1);
        run Parker(0);
#if SCENARIO == 3
        run Parker(1);
        run WakerTask(2);
#else
        run Waker(3);
#endif
#if SCENARIO != 4
        run Timer()
#endif
    };
    _nr_pr == 1;
    d_step {
        assert(ndone == NT);                /* Q3 */
        assert(gqn == 0 && runnext[0] == 0 && runnext[1] == 0);
        assert(!tpending && !trunning)
    }
}
