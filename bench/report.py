#!/usr/bin/env python3
"""report.py DIR - turn what bench/run wrote into DIR/results.md and charts.

DIR holds raw/<impl>-r<round>.csv (impl: libgocc, go2, go1, baseline; the
CSV of bench/harness.h) and machine.txt ("key: value" lines). For every
scenario and implementation the best value over the rounds is kept (the
lowest, or the highest for units ending in "/s"), and the worst of the
worsts. results.md gets one table per group with the ratios libgocc/Go(2)
and libgocc/baseline and the targets, met or missed (issue 7's on the
pthread scenarios, the scheduler's on the task variants, task/...); the
backpressure and pipeline scenarios get tables of their metrics. Charts
(gnuplot, PNG): ns/op against threads per side for the contention sweeps
(with libgocc's task variants as a line of their own), latency percentiles
against offered load, pipeline latency against the buffer. Safe to re-run
on a directory (bench/run calls it at the end).
"""
import csv
import glob
import os
import re
import shutil
import subprocess
import sys

IMPLS = [("libgocc", "libgocc"), ("go2", "Go(2)"), ("go1", "Go(1)"), ("baseline", "baseline")]
LABEL = dict(IMPLS)


def higher_better(unit):
    return unit.endswith("/s")


# ---- reading ------------------------------------------------------------------


def load_results(d):
    """{impl: {name: row}} with row = dict(unit, best, worst, threads, capacity),
    and the scenario names in the order they were first run."""
    data = {impl: {} for impl, _ in IMPLS}
    order = []
    for impl, _ in IMPLS:
        for path in sorted(glob.glob(os.path.join(d, "raw", impl + "-r*.csv"))):
            with open(path, newline="") as f:
                for rec in csv.DictReader(f):
                    name = rec["name"]
                    if impl == "baseline" and name.startswith("baseline/"):
                        name = name[len("baseline/"):]
                    try:
                        best, worst = float(rec["best_ns_op"]), float(rec["worst_ns_op"])
                    except (TypeError, ValueError):
                        continue
                    unit = rec["unit"]
                    row = data[impl].get(name)
                    if row is None:
                        data[impl][name] = dict(unit=unit, best=best, worst=worst,
                                                threads=rec["threads"], capacity=rec["capacity"])
                    else:
                        pick_best, pick_worst = (max, min) if higher_better(unit) else (min, max)
                        row["best"] = pick_best(row["best"], best)
                        row["worst"] = pick_worst(row["worst"], worst)
                    if name not in order:
                        order.append(name)
    return data, order


def load_machine(d):
    m = {}
    path = os.path.join(d, "machine.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    m[k.strip()] = v.strip()
    return m


def probe_values(s):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", s or "")}


def bash_times(s):
    """'0m1.234s 0m0.456s' -> seconds (user + system)."""
    total = 0.0
    for mins, secs in re.findall(r"(\d+)m([0-9.]+)s", s or ""):
        total += int(mins) * 60 + float(secs)
    return total


def noise(m):
    """Reasons to distrust the numbers, as sentences, and a summary dict."""
    reasons, facts = [], {}
    nproc = int(m.get("nproc", "1") or 1)
    pb, pa = probe_values(m.get("probe_before")), probe_values(m.get("probe_after"))
    for key, what in (("spin_rt_ns", "spin"), ("condvar_rt_ns", "condvar")):
        if key in pb and key in pa and min(pb[key], pa[key]) > 0:
            ratio = max(pb[key], pa[key]) / min(pb[key], pa[key])
            facts[what] = (pb[key], pa[key])
            if ratio > 2:
                reasons.append("the %s round-trip probe moved %.1fx between before (%.0f ns) and "
                               "after (%.0f ns): the host changed scheduling regime, or the "
                               "machine got busier, during the run"
                               % (what, ratio, pb[key], pa[key]))
    for when in ("before", "after"):
        la = m.get("loadavg_" + when, "").split()
        if la:
            facts["load_" + when] = la[0]
    la_before = m.get("loadavg_before", "").split()
    if la_before and float(la_before[0]) > 0.5 * nproc:
        reasons.append("the 1-minute load average was %s on %d CPUs before the run started "
                       "(other work on the machine)" % (la_before[0], nproc))
    cb, ca = m.get("cpustat_before", "").split(), m.get("cpustat_after", "").split()
    try:
        tck = float(m.get("clk_tck", "100"))
        wall = float(m["time_after"]) - float(m["time_before"])
        if len(cb) >= 8 and len(ca) >= 8 and wall > 0:
            delta = [(int(a) - int(b)) / tck for a, b in zip(ca, cb)]
            user, nice, system, idle, iowait, irq, softirq, steal = delta[:8]
            busy = user + nice + system + irq + softirq
            ours = bash_times(m.get("children_cpu_after")) - bash_times(m.get("children_cpu_before"))
            others = max(busy - ours, 0.0) / (wall * nproc)
            stolen = steal / (wall * nproc)
            facts["others"], facts["steal"], facts["wall"] = others, stolen, wall
            if others > 0.2:
                reasons.append("other processes used %.0f%% of the machine's CPU time during the "
                               "run" % (100 * others))
            if stolen > 0.1:
                reasons.append("the hypervisor took %.0f%% of the vCPUs' time (steal)"
                               % (100 * stolen))
    except (KeyError, ValueError):
        pass
    return reasons, facts


# ---- formatting -----------------------------------------------------------------


def fmt_time(ns):
    if ns < 1e3:
        return "%.1f ns" % ns
    if ns < 1e6:
        return "%.2f µs" % (ns / 1e3)
    if ns < 1e9:
        return "%.2f ms" % (ns / 1e6)
    return "%.2f s" % (ns / 1e9)


def fmt(row):
    if row is None:
        return "–"
    v, unit = row["best"], row["unit"]
    if unit.startswith("ns"):
        return fmt_time(v)
    if unit == "%":
        return "%.1f %%" % v
    if unit in ("jobs/s", "msgs/s"):
        return "%.0f/s" % v
    if unit == "KiB":
        return "%.0f KiB" % v
    return "%.1f %s" % (v, unit)


def ratio(a, b):
    if a is None or b is None or b["best"] <= 0:
        return None
    return a["best"] / b["best"]


def fmt_ratio(r):
    return "–" if r is None else "%.2f×" % r


# ---- targets ------------------------------------------------------------------------
# (regex on the scenario name, against, bound, strict, text, why). "against"
# is go2, baseline, malloc (libgocc's own pool/malloc-free row with the same
# thread count), or abs (libgocc's own value, in its unit, against the bound).
# Met when libgocc / against <= bound (< for strict); for abs when the value
# is. Issue 7's targets are on the pthread scenarios; the scheduler's (the
# task variants, task/..., producers, consumers and drivers started with
# gocc_go) follow them.

TARGETS = [
    (r"^chan/uncontended$", "go2", 1.0, False, "≤ 1.0× Go(2)", "uncontended"),
    (r"^chan/spsc/cap\d+$", "go2", 1.0, False, "≤ 1.0× Go(2)", "chan"),
    (r"^chan/mpmc/cap\d+/t\d+$", "go2", 1.0, False, "≤ 1.0× Go(2)", "chan"),
    (r"^chan/16p16c/cap64$", "go2", 1.0, False, "≤ 1.0× Go(2)", "chan"),
    (r"^chan/(mpsc|mpmc)/cap\d+/t16$", "baseline", 1 / 3, False, "≥ 3× faster than baseline",
     "sweep"),
    (r"^chan/16p16c/cap64$", "baseline", 1 / 3, False, "≥ 3× faster than baseline", "sweep"),
    (r"^chan/pingpong$", "go2", 2.0, False, "≤ 2.0× Go(2)", "pingpong"),
    (r"^select/2case/cap\d+$", "go2", 1.0, False, "≤ 1.0× Go(2)", "select"),
    (r"^sem/t16/w4of8$", "go2", 1.0, True, "faster than x/sync (< 1.0× Go(2))", "sem"),
    (r"^pool/getput/t\d+$", "malloc", 1.0, False, "≤ malloc+free", "malloc"),
    (r"^ctx/cancel/10000$", "baseline", 1.5, False, "≤ 1.5× direct futex wake", "cancel"),
    (r"^workpool/throughput/4w/q1024$", "go2", 1.0, False, "≤ 1.0× Go(2)", "workpool"),
    # The scheduler's: task variants against Go(2).
    (r"^task/chan/pingpong$", "go2", 1.0, False, "≤ 1.0× Go(2)", "t-handoff"),
    (r"^task/spawn/1000$", "go2", 2.0, False, "≤ 2.0× Go(2)", "t-spawn"),
    (r"^task/group/10000/nolimit$", "go2", 1.5, False, "≤ 1.5× Go(2)", "t-spawn"),
    (r"^task/chan/mpmc/cap1/t\d+$", "go2", 2.0, False, "≤ 2.0× Go(2)", "t-chan"),
    (r"^task/chan/mpmc/cap16/t\d+$", "go2", 1.5, False, "≤ 1.5× Go(2)", "t-chan"),
    (r"^task/chan/mpmc/cap1024/t\d+$", "go2", 1.0, False, "≤ 1.0× Go(2)", "t-chan"),
    (r"^task/chan/spsc/cap1024$", "go2", 1.0, False, "≤ 1.0× Go(2)", "t-chan"),
    (r"^task/select/2case/cap1$", "go2", 1.5, False, "≤ 1.5× Go(2)", "t-handoff"),
    (r"^task/workpool/throughput/4w/q1024$", "go2", 2.0, False, "≤ 2.0× Go(2)", "t-workpool"),
    (r"^task/ctx/cancel/10000$", "go2", 1.0, False, "≤ 1.0× Go(2)", "t-cancel"),
    (r"^task/switch/yield$", "abs", 25.0, False, "≤ 25 ns per switch", "t-switch"),
    (r"^task/select/try/empty1$", "go2", 1.0, False, "≤ 1.0× Go(2)'s select with default",
     "t-nonblock"),
    (r"^task/chan/uncontended$", "go2", 0.8, False, "≤ 0.8× Go(2)", "t-nonblock"),
    # Cancellable I/O (issue 17), against Go's net package. The time to
    # cancel the idle connections (net/idle/10000/cancel) is reported, with
    # no bound.
    (r"^net/echo/(64|16k)/permsg$", "go2", 1.2, False, "≤ 1.2× Go(2)", "net-echo"),
    (r"^net/idle/10000/perconn$", "go2", 1.0, False, "≤ 1.0× Go(2)", "net-idle"),
]

# Why a target is missed, where the reason is known (bench/README.md says
# more). Printed only for the kinds of target a run missed.
WHY = {
    "uncontended": "One thread, no waiting: the cost is the channel's lock and copy. "
                   "Go's chansend/chanrecv fast path takes one runtime lock too; a miss "
                   "here is within noise or a regression in the lock path.",
    "chan": "Go's channel operations never leave user space: a goroutine that finds the "
            "buffer empty (full) is parked by Go's scheduler in ~100-200 ns and the "
            "goroutine at the other end runs on the same P. libgocc's producers and "
            "consumers are OS threads: with capacity 1 or 16 the buffer empties or fills "
            "every few values, the waiting side spins for its adaptive budget and then "
            "sleeps in FUTEX_WAIT, and each sleep costs a wake and two context switches "
            "(5-20 µs on these VMs, see the probe's condvar round trip), spread over the "
            "few values the buffer holds. At capacity 1024 handoffs are rare and libgocc "
            "is close to Go. With more threads than the 2 vCPUs (t ≥ 2 per side) the "
            "threads a value waits for are often not running at all, which Go's M:N "
            "scheduler avoids by design.",
    "pingpong": "Each round trip is two handoffs between OS threads. While both vCPUs "
                "really run at once the spinning parker catches the wake (about the "
                "probe's spin round trip plus the channel work); when the host "
                "time-slices the vCPUs or other processes need them, the handoff ends "
                "in FUTEX_WAIT, costing what baseline/chan/pingpong costs every time. "
                "Go(2) hands over inside its scheduler (~0.3 µs).",
    "select": "As for the buffered channels: the selecting consumer runs out of values "
              "and parks on both channels as an OS thread; each wake is a futex wake "
              "and context switch, against Go's user-space park. select also locks "
              "every case's channel in address order per call.",
    "sweep": "At 16 threads per side on 2 vCPUs both channels are bound by the kernel: "
             "most operations wait for a thread that is not running. libgocc hands a "
             "value straight to a parked thread and wakes exactly one, which avoids the "
             "baseline's lock convoy and signal storms (hence the large wins at "
             "capacity 1 and 16), but the context switches remain; at capacity 1024 the "
             "baseline rarely waits at all and its one short critical section is about "
             "as cheap as libgocc's.",
    "sem": "x/sync's semaphore parks goroutines in user space; libgocc's waiters are OS "
           "threads. A miss means the 16 threads mostly queued and slept.",
    "malloc": "glibc's malloc+free of 64 bytes is a thread-cache (tcache) push and pop, "
              "about as cheap as an object pool can be; the pool pays for its own "
              "per-thread cache lookup and bounds on top.",
    "cancel": "Waking N sleeping threads costs the kernel's wake-ups on both sides; "
              "libgocc adds the done channel's close, which unlinks N wait records under "
              "the channel lock and wakes the threads one FUTEX_WAKE each, where the "
              "reference wakes all of them with one call.",
    "workpool": "Every job is a handoff to a worker thread. The 4 workers drain the queue "
                "faster than one producer fills it, go to sleep in FUTEX_WAIT, and the "
                "next submit pays for a wake (syscall and context switch); Go's workers "
                "are goroutines readied in user space for ~100 ns.",
    # The task variants. What each number is made of, from the code (src/sched.c,
    # src/chan.c); where the time goes in a given run is for a profile to say.
    "t-handoff": "Every handoff parks one task and readies the other into the waker's "
                 "runnext slot; each park and each run is a switch through the worker's "
                 "scheduler loop (two register switches per task change), plus the "
                 "channel's lock and wait-queue work. task/switch/pingpong gives the same "
                 "handoff on one worker, per switch.",
    "t-spawn": "Starting a task takes a cached record and stack (a per-worker cache of 32, "
               "a global one of 4,096 under a lock, else mmap) and queues it in the "
               "spawner's ring (the global queue under a lock when the spawner is not a "
               "task); a finished task's record goes back the same way. A batch bigger "
               "than the caches maps and unmaps stacks. The ratio moves with Go's side "
               "more than with libgocc's between runs (Go 540 ns a task in one run, "
               "281 ns in the next, libgocc 1.01 us and 853 ns).",
    "t-chan": "Producers and consumers are tasks on the workers (procs = the CPUs); a "
              "full or empty buffer parks a task (a switch through the scheduler loop) "
              "and the partner's wake readies it on the waker's worker. Tasks move "
              "between workers only by stealing, and a worker that runs dry goes idle "
              "and is woken with a futex (a system call) when work appears.",
    "t-workpool": "The submitter is a task; the pool's workers are coroutines on the same "
                  "2 workers. A profile shows the pool's one mutex contended by the "
                  "submitter and the running workers (pthread_mutex_lock ~40% of the "
                  "time, futex waits included), plus per job the live-task count (two "
                  "atomics on one shared word) and the dump record's name publish. Go's "
                  "pool is a buffered channel, whose lock is held for less.",
    "t-cancel": "Cancelling closes the done channel, which unlinks the N wait records "
                "under the channel's lock and readies each task; the readied tasks run "
                "on 2 workers, each marks the WaitGroup, and the last wakes the driver. "
                "A profile shows no lock or system call dominating: each of the 10,000 "
                "tasks has its own 256 KiB stack mapping, so the close and each resumed "
                "task touch a cold stack page and TLB entry; Go's 8 KiB stacks sit "
                "together in its spans.",
    "t-switch": "A yield is the task switching to its worker's scheduler loop, the loop "
                "putting it at the tail of its own ring (no lock), taking the other "
                "task from the ring's head (one compare-and-swap) and switching into it: "
                "two register switches per yield, each saving and restoring MXCSR and "
                "the x87 control word (stmxcsr alone measured ~7 ns on this VM), plus "
                "the run counter's exchange the stuck-worker check reads. Go's Gosched "
                "goes through its global run queue and is slower here.",
    "t-nonblock": "No waiting at all. select_try with one case is a lock-free "
                  "would-block check, Go's selectnbrecv (35 instructions with the "
                  "benchmark's loop; a nanosecond from Go's). Uncontended send+recv "
                  "take and drop the channel's pthread mutex twice (four atomic "
                  "read-modify-writes, as Go's runtime lock does): 288 instructions a "
                  "pair, 134 of them in glibc's lock and unlock; the 0.8x target would "
                  "need a lock-free buffered fast path.",
    "net-echo": "Each message is a write, then a read that finds nothing yet and parks the "
                "client task. An idle worker waits in epoll_wait (there is no poller "
                "thread) and runs the tasks its edges ready; with 1,000 connections on 2 "
                "workers most wakes find the workers busy, and then only the worker that "
                "next goes idle, or the monitor's 1 ms look, polls. Go's busy Ps also "
                "poll in findrunnable before they steal; a non-blocking look before "
                "stealing was tried and measured no faster, so libgocc polls only when "
                "idle. "
                "At 16 KiB the copies dominate and the ratio is at target.",
    "net-idle": "Per connection libgocc holds a parked task (its stack's touched pages and "
                "record: about 4.6 KB, task/mem/blocked/pertask), a handle (fd.c) and a "
                "slot in the poller's table; Go holds a goroutine's stack (2 KiB to "
                "start), a netFD and a pollDesc. The tasks dominate: a task's stack is a "
                "C stack whose first touched pages are 4 KiB each.",
}


def targets_for(name, data):
    """[(text, value, met, why, against)] for the scenario: value is the ratio,
    or for an "abs" target libgocc's own best value."""
    out = []
    lib = data["libgocc"].get(name)
    for rx, against, bound, strict, text, why in TARGETS:
        if not re.search(rx, name):
            continue
        if against == "abs":
            r = lib["best"] if lib else None
        elif against == "malloc":
            r = ratio(lib, data["libgocc"].get(re.sub(r"^pool/getput/", "pool/malloc-free/",
                                                       name)))
        else:
            r = ratio(lib, data[against].get(name))
        met = None if r is None else (r < bound if strict else r <= bound)
        out.append((text, r, met, why, against))
    return out


def fmt_target_value(r, against):
    if against == "abs":
        return "–" if r is None else fmt_time(r)
    return fmt_ratio(r)


def fmt_targets(ts):
    cells = []
    for text, r, met, _, against in ts:
        state = "n/a" if met is None else (
            "**met**" if met else "**missed** (%s)" % fmt_target_value(r, against))
        cells.append("%s: %s" % (text, state))
    return "; ".join(cells)


# ---- tables ------------------------------------------------------------------------

SECTIONS = [
    ("Channels: contention", lambda n: n.startswith("chan/")),
    ("Select", lambda n: n.startswith("select/")),
    ("Contexts and timers", lambda n: n.startswith(("ctx/", "timer/"))),
    ("Tasks, groups, semaphore, Once, WaitGroup",
     lambda n: n.startswith(("tasks/", "spawn/", "group/", "sem/", "once/", "waitgroup/"))),
    ("Lesson L07 counters", lambda n: n.startswith("counter/")),
    ("Worker pool throughput, object pool",
     lambda n: n.startswith(("workpool/throughput", "pool/"))),
    ("Task variants: channels and select on the scheduler",
     lambda n: n.startswith(("task/chan/", "task/select/"))),
    ("Task variants: spawning, groups, cancel, worker pool, switches, memory",
     lambda n: n.startswith("task/") and not n.startswith(("task/chan/", "task/select/"))),
    ("Cancellable I/O over sockets", lambda n: n.startswith("net/")),
]


def comparison_table(names, data):
    lines = ["| scenario | unit | libgocc | Go(2) | Go(1) | baseline | libgocc÷Go(2) | "
             "libgocc÷baseline | target |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for n in names:
        rows = {impl: data[impl].get(n) for impl, _ in IMPLS}
        unit = next((r["unit"] for r in rows.values() if r), "")
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            n, unit, fmt(rows["libgocc"]), fmt(rows["go2"]), fmt(rows["go1"]),
            fmt(rows["baseline"]), fmt_ratio(ratio(rows["libgocc"], rows["go2"])),
            fmt_ratio(ratio(rows["libgocc"], rows["baseline"])), fmt_targets(targets_for(n, data))))
    return lines


LOAD_RX = re.compile(r"^workpool/load([0-9.]+)x/(block|shed|deadline)$")
LOAD_METRICS = ["capacity", "accepted", "shed", "p50", "p99", "p99.9", "blocked", "peakmem"]


def backpressure_tables(order, data):
    base = [n for n in order if LOAD_RX.match(n)]
    if not base:
        return []
    lines = []
    for mode in ("block", "shed", "deadline"):
        names = [n for n in base if n.endswith("/" + mode)]
        if not names:
            continue
        lines += ["", "**%s** (%s)" % (mode, {
            "block": "gocc_workpool_submit / a channel send: the producer waits",
            "shed": "try_submit / select with default: refused when the queue is full",
            "deadline": "submit with a context whose deadline is the job's arrival + 1 ms / "
                        "select on ctx.Done()"}[mode]), "",
            "| load | impl | wall per offered job | capacity | accepted | shed | p50 | p99 | "
            "p99.9 | producer blocked | peak mem |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            load = LOAD_RX.match(n).group(1)
            for impl in ("libgocc", "go2", "go1"):
                if n not in data[impl]:
                    continue
                cells = [fmt(data[impl].get(n))] + [fmt(data[impl].get(n + "/" + m))
                                                    for m in LOAD_METRICS]
                lines.append("| %sx | %s | %s |" % (load, LABEL[impl], " | ".join(cells)))
    return lines


PIPE_RX = re.compile(r"^pipeline/slow/buf(\d+)$")


def pipeline_table(order, data):
    names = [n for n in order if PIPE_RX.match(n)]
    if not names:
        return []
    lines = ["| buffer | impl | per item | latency p50 | latency p99 | occupancy |",
             "|---:|---|---:|---:|---:|---:|"]
    for n in names:
        for impl in ("libgocc", "go2", "go1"):
            if n not in data[impl]:
                continue
            cells = [fmt(data[impl].get(n + s)) for s in ("", "/p50", "/p99", "/occupancy")]
            lines.append("| %s | %s | %s |" % (PIPE_RX.match(n).group(1), LABEL[impl],
                                                " | ".join(cells)))
    return lines


def parker_line(data, pb, pa):
    """The parker's before/after: sleeping at once vs spinning first."""
    lib, base = data["libgocc"].get("chan/pingpong"), data["baseline"].get("chan/pingpong")
    if not lib or not base:
        return []
    line = ("Parker, before and after: a round trip over two unbuffered channels costs "
            "%s on the hand-written channel, whose waiters sleep on a condvar at once "
            "(before), and %s on libgocc, whose waiters spin briefly before the futex "
            "(after)" % (fmt_time(base["best"]), fmt_time(lib["best"])))
    if "spin_rt_ns" in pb and "condvar_rt_ns" in pb:
        line += ("; the probe's floors on this machine: %s spinning, %s through a condvar "
                 "(the lower of before and after)" % (fmt_time(min(pb["spin_rt_ns"], pa.get("spin_rt_ns", 1e18))),
                                       fmt_time(min(pb["condvar_rt_ns"],
                                                    pa.get("condvar_rt_ns", 1e18)))))
    return [line + ".", ""]


def counters_order(data):
    lines = []
    for impl in ("libgocc", "go2", "go1"):
        rows = [(data[impl][n]["best"], n.split("/")[1]) for n in data[impl]
                if re.match(r"^counter/\w+/t\d+$", n)]
        if len(rows) == 4:
            rows.sort()
            got = " < ".join(k for _, k in rows)
            claim = "sharded < atomic < mutex < channel"
            lines.append("- %s: %s (%s)" % (LABEL[impl], got,
                                            "as the lesson claims" if got == claim
                                            else "the lesson claims " + claim))
    return lines


# ---- charts --------------------------------------------------------------------------

SWEEP_RX = re.compile(r"^chan/(mpsc|mpmc)/cap(\d+)/t(\d+)$")


def write_dat(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join(str(x) for x in r) + "\n")


def charts(d, order, data):
    """Write plot/*.dat and plot/charts.gp, run gnuplot; return the PNG names."""
    gnuplot = shutil.which("gnuplot")
    pdir = os.path.join(d, "plot")
    os.makedirs(pdir, exist_ok=True)
    gp = ["set encoding utf8",
          "set terminal pngcairo size 1500,480 font 'sans,10'" if has_pngcairo(gnuplot)
          else "set terminal png size 1500,480",
          "set grid", "set key top left", "set logscale y"]
    pngs = []
    styles = {"libgocc": "lw 2 lc rgb '#1f77b4' pt 7", "go2": "lw 2 lc rgb '#2ca02c' pt 5",
              "go1": "lw 1 dt 2 lc rgb '#8fd18a' pt 4", "baseline": "lw 2 lc rgb '#d62728' pt 9",
              "libgocc-tasks": "lw 2 lc rgb '#9467bd' pt 13"}
    # (impl, label, name prefix, style): libgocc's task variants are a line of
    # their own (Go's task/ rows are its plain ones under another name).
    series = [(impl, label, "", impl) for impl, label in IMPLS] + \
        [("libgocc", "libgocc tasks", "task/", "libgocc-tasks")]
    # Contention sweeps: one PNG per family, one panel per capacity.
    for fam in ("mpsc", "mpmc"):
        caps = sorted({int(SWEEP_RX.match(n).group(2)) for n in order
                       if SWEEP_RX.match(n) and SWEEP_RX.match(n).group(1) == fam})
        if not caps:
            continue
        png = "chan-%s.png" % fam
        gp += ["set output '%s'" % png,
               "set multiplot layout 1,%d title 'chan/%s: ns per value vs threads per side "
               "(t1 = spsc; lower is better)'" % (len(caps), fam),
               "set logscale x 2", "set xlabel 'threads per side'" if fam == "mpmc"
               else "set xlabel 'producers (1 consumer)'", "set ylabel 'ns/op'",
               "set xrange [0.8:20]"]
        for cap in caps:
            plots = []
            for impl, label, prefix, style in series:
                pts = []
                spsc = data[impl].get(prefix + "chan/spsc/cap%d" % cap)
                if spsc:
                    pts.append((1, spsc["best"]))
                for t in (2, 4, 8, 16):
                    r = data[impl].get(prefix + "chan/%s/cap%d/t%d" % (fam, cap, t))
                    if r:
                        pts.append((t, r["best"]))
                if not pts or (prefix and len(pts) < 2):
                    continue  # (task variants: no mpsc sweep, only the spsc point)
                dat = "%s-cap%d-%s.dat" % (fam, cap, style)
                write_dat(os.path.join(pdir, dat), pts)
                plots.append("'plot/%s' using 1:2 with linespoints %s title '%s'"
                             % (dat, styles[style], label))
            gp += ["set title 'capacity %d'" % cap, "plot " + ", ".join(plots)]
        gp += ["unset multiplot", "unset logscale x", "set xrange [*:*]"]
        pngs.append(png)
    # Backpressure: latency percentiles vs offered load, one panel per mode.
    loads = sorted({float(LOAD_RX.match(n).group(1)) for n in order if LOAD_RX.match(n)})
    if loads:
        png = "backpressure.png"
        gp += ["set output '%s'" % png,
               "set multiplot layout 1,3 title 'worker pool, 4 workers, queue 64, 1 ms jobs: "
               "latency of accepted jobs (arrival -> done) vs offered load'",
               "set logscale x 2", "set xlabel 'offered load (x capacity)'",
               "set ylabel 'ms'", "set xrange [0.4:5]"]
        pstyle = {"p50": "dt 1", "p99": "dt 2", "p99.9": "dt 3"}
        for mode in ("block", "shed", "deadline"):
            plots = []
            for impl in ("libgocc", "go2"):
                for pc in ("p50", "p99", "p99.9"):
                    pts = []
                    for load in loads:
                        tag = ("%g" % load) + "x"
                        r = data[impl].get("workpool/load%s/%s/%s" % (tag, mode, pc))
                        if r:
                            pts.append((load, r["best"] / 1e6))
                    if not pts:
                        continue
                    dat = "load-%s-%s-%s.dat" % (mode, impl, pc)
                    write_dat(os.path.join(pdir, dat), pts)
                    color = styles[impl].split("lc ")[1].split(" pt")[0]
                    plots.append("'plot/%s' using 1:2 with linespoints lw 2 lc %s %s title '%s %s'"
                                 % (dat, color, pstyle[pc], LABEL[impl], pc))
            if plots:
                gp += ["set title '%s'" % mode, "plot " + ", ".join(plots)]
        gp += ["unset multiplot", "unset logscale x", "set xrange [*:*]"]
        pngs.append(png)
    # Pipeline: latency vs buffer.
    bufs = sorted({int(PIPE_RX.match(n).group(1)) for n in order if PIPE_RX.match(n)})
    if bufs:
        png = "pipeline.png"
        gp += ["set terminal pngcairo size 700,480 font 'sans,10'" if has_pngcairo(gnuplot)
               else "set terminal png size 700,480",
               "set output '%s'" % png,
               "set title 'pipeline with a 20 µs stage: latency source -> sink vs buffer'",
               "set logscale x 2", "set xlabel 'buffer of each channel'", "set ylabel 'ms'",
               "set xrange [0.7:1500]"]
        plots = []
        for impl in ("libgocc", "go2", "go1"):
            for pc, dt in (("p50", "dt 1"), ("p99", "dt 2")):
                pts = [(b, data[impl]["pipeline/slow/buf%d/%s" % (b, pc)]["best"] / 1e6)
                       for b in bufs if "pipeline/slow/buf%d/%s" % (b, pc) in data[impl]]
                if not pts:
                    continue
                dat = "pipeline-%s-%s.dat" % (impl, pc)
                write_dat(os.path.join(pdir, dat), pts)
                color = styles[impl].split("lc ")[1].split(" pt")[0]
                plots.append("'plot/%s' using 1:2 with linespoints lw 2 lc %s %s title '%s %s'"
                             % (dat, color, dt, LABEL[impl], pc))
        if plots:
            gp += ["plot " + ", ".join(plots)]
            pngs.append(png)
    with open(os.path.join(pdir, "charts.gp"), "w") as f:
        f.write("# gnuplot plot/charts.gp, run in the results directory (bench/report.py)\n")
        f.write("\n".join(gp) + "\n")
    if not gnuplot:
        return [], "gnuplot is not installed: charts skipped (plot/charts.gp is there)"
    res = subprocess.run([gnuplot, os.path.join("plot", "charts.gp")], cwd=d,
                         capture_output=True, text=True)
    if res.returncode != 0:
        return [], "gnuplot failed: " + res.stderr.strip().splitlines()[-1]
    return [p for p in pngs if os.path.exists(os.path.join(d, p))], None


def has_pngcairo(gnuplot):
    if not gnuplot:
        return True
    res = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (res.stdout + res.stderr)


# ---- the page -------------------------------------------------------------------------


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_DIR")
    d = sys.argv[1]
    data, order = load_results(d)
    m = load_machine(d)
    if not order:
        sys.exit("report.py: no results in %s/raw" % d)
    reasons, facts = noise(m)
    base_names = [n for n in order if not re.search(r"/(p50|p99|p99\.9|accepted|shed|blocked|"
                                                    r"peakmem|occupancy)$", n)
                  or n.startswith(("timer/", "net/"))]

    out = ["# libgocc benchmarks, %s" % m.get("date", "?"), ""]
    if reasons:
        out += ["> **Noisy run.** " + "; ".join(reasons) + ". Ratios within one run still "
                "compare like with like (each scenario ran on every side back to back), "
                "but absolute numbers and close ratios are not to be trusted.", ""]
    out += ["Machine: %s CPUs, %s, %s, %s. %s; %s. libgocc %s." % (
        m.get("nproc", "?"), m.get("cpu", "?"), m.get("kernel", "?"), m.get("memory", "?"),
        m.get("compiler", "?"), m.get("go", "no Go"), m.get("libgocc", "?")), ""]
    pb, pa = probe_values(m.get("probe_before")), probe_values(m.get("probe_after"))
    if pb or pa:
        out += ["Probe (round trip between two threads; bench/probe.c): spin %s before, %s "
                "after; condvar %s before, %s after. Load average %s before, %s after." % (
                    fmt_time(pb.get("spin_rt_ns", 0)), fmt_time(pa.get("spin_rt_ns", 0)),
                    fmt_time(pb.get("condvar_rt_ns", 0)), fmt_time(pa.get("condvar_rt_ns", 0)),
                    facts.get("load_before", "?"), facts.get("load_after", "?"))]
        if "others" in facts:
            out[-1] += (" During the %.0f s run other processes used %.0f%% of the CPU time, the "
                        "hypervisor took %.0f%% (steal)." % (facts["wall"], 100 * facts["others"],
                                                             100 * facts["steal"]))
        out.append("")
    out += ["Method: %s (bench/README.md). Each cell is the best over the rounds; Go(2) and "
            "Go(1) are the Go twin (bench/go) with GOMAXPROCS=2 and 1; baseline is the "
            "hand-written mutex+condvar channel, mutex free-list pool or direct futex wake. "
            "Ratios are libgocc's time over the other's: below 1.00× libgocc is faster." %
            m.get("method", "?"), ""]

    # Targets first: the summary a reviewer looks for.
    all_t = []
    for n in base_names:
        for text, r, met, why, against in targets_for(n, data):
            all_t.append((n, text, r, met, why, against))
    if all_t:
        met = sum(1 for t in all_t if t[3])
        known = sum(1 for t in all_t if t[3] is not None)
        out += ["## Targets: %d of %d met" % (met, known), "",
                "Issue 7's on the pthread scenarios, the scheduler's on the task variants "
                "(task/...), issue 17's on the sockets (net/...). The ratio is libgocc over the other; a target in ns is "
                "libgocc's own value.", "",
                "| scenario | target | ratio | |", "|---|---|---:|---|"]
        for n, text, r, ok, _, against in all_t:
            out.append("| `%s` | %s | %s | %s |" % (n, text, fmt_target_value(r, against),
                                                   "n/a" if ok is None else
                                                   ("met" if ok else "**missed**")))
        missed = []
        for t in all_t:
            if t[3] is False and t[4] not in missed:
                missed.append(t[4])
        if missed:
            out += ["", "Why targets are missed:", ""]
            for k in missed:
                names = ", ".join("`%s`" % t[0] for t in all_t if t[4] == k and t[3] is False)
                out.append("- %s: %s" % (names, WHY.get(k, "not analysed.")))
        out.append("")

    chart_pngs, chart_err = charts(d, order, data)
    for title, pred in SECTIONS:
        names = [n for n in base_names if pred(n)]
        if not names:
            continue
        out += ["## " + title, ""] + comparison_table(names, data) + [""]
        if title.startswith("Channels"):
            out += parker_line(data, pb, pa)
            out += ["![chan/%s](%s)" % (p[5:-4], p) for p in chart_pngs
                    if p.startswith("chan-")] + [""]
        if title.startswith("Lesson L07"):
            out += counters_order(data) + [""]
    bp = backpressure_tables(order, data)
    if bp:
        out += ["## Backpressure: offered load", "",
                "4 workers, queue 64, jobs that sleep 1 ms. Capacity is 4 over what such a "
                "sleep really takes on that side (measured once per process), so 1x is the "
                "knee on every side. Latency is from the job's scheduled arrival to its end "
                "(the user's view: time the producer was held up counts); peak mem is the "
                "growth of the peak resident size during the run, in 4 KiB pages."] + bp
        out += [""] + ["![backpressure](%s)" % p for p in chart_pngs if p == "backpressure.png"]
        out.append("")
    pl = pipeline_table(order, data)
    if pl:
        out += ["## Pipeline with a slow stage", "",
                "source → [B] → pass → [B] → slow (20 µs per item) → [B] → sink. "
                "Occupancy: items waiting in front of the slow stage.", ""] + pl
        out += [""] + ["![pipeline](%s)" % p for p in chart_pngs if p == "pipeline.png"]
        out.append("")
    if chart_err:
        out += ["Charts: " + chart_err, ""]
    errs = os.path.join(d, "raw", "errors.log")
    if os.path.exists(errs):
        failed = [l.strip() for l in open(errs) if re.search(r"exit \d+$", l.strip())]
        if failed:
            out += ["## Failed runs", ""] + ["- " + l for l in failed] + [""]
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(out))
    print("report.py: wrote %s" % os.path.join(d, "results.md"))


if __name__ == "__main__":
    main()
