# scripts/gdb/gocc.py - gdb commands for programs that use libgocc.
#
#   (gdb) source scripts/gdb/gocc.py
#   (gdb) gocc tasks            every task: id, name, state, where, function
#   (gdb) gocc bt 3             task 3's backtrace (any bt options after it)
#   (gdb) gocc bt all           every task's backtrace
#
# A coroutine task that is not running is nothing but a record and a
# stack: no thread shows it in `info threads` or `thread apply all bt`.
# `gocc tasks` finds every task through the registry of waiters that
# gocc_dump walks (src/observe.c: reg_head, reg_next); `gocc bt` unwinds a
# parked or runnable task from the registers gocc__ctx_switch saved on its
# stack (src/context.c), and a running one (or a task on its own thread)
# on the thread that runs it.
#
# Works on a stopped live process and on a core file. Needs libgocc's debug
# information (any -g build; meson's debug and debugoptimized are). The
# saved-register backtrace knows the assembly switch of x86-64 (tested) and
# aarch64 (written from src/context.c's layout, not tested here), and the
# ucontext fallback (-Dcontext=ucontext) on x86-64. docs/debugging.md has a
# transcript; scripts/gdb/check-gdb.sh is its test.
#
# It reads the program, never calls into it; on a live process a backtrace
# lends the selected thread the task's registers for the duration of one
# `bt` (the technique of qemu's scripts/qemugdb/coroutine.py) and gives
# them back; on a core file, where registers cannot be written, a Python
# unwinder makes the task's frames the callers of the thread's newest frame,
# and that one frame is left out of the listing.

import re

import gdb

try:
    import gdb.unwinder as _unwinder_mod
except ImportError:  # a gdb without Python unwinders: cores are not supported
    _unwinder_mod = None

# What observe.c's reasons[] table says for each enum gocc__wait_reason name.
REASON_TEXT = {
    "GOCC_WAIT_NONE": "",
    "GOCC_WAIT_CHAN_RECV": "chan receive",
    "GOCC_WAIT_CHAN_SEND": "chan send",
    "GOCC_WAIT_SELECT": "select",
    "GOCC_WAIT_SELECT_NO_CASES": "select (no cases)",
    "GOCC_WAIT_SLEEP": "sleep",
    "GOCC_WAIT_SEM_ACQUIRE": "semaphore acquire",
    "GOCC_WAIT_GROUP_GO": "group go",
    "GOCC_WAIT_GROUP_WAIT": "group wait",
    "GOCC_WAIT_WAITGROUP": "waitgroup wait",
    "GOCC_WAIT_ONCE": "once",
    "GOCC_WAIT_WORKPOOL_SUBMIT": "workpool submit",
    "GOCC_WAIT_WORKPOOL_SHUTDOWN": "workpool shutdown",
}
# The enumerators in declaration order: used when the program's debug
# information has no enum gocc__wait_reason (it always should).
REASON_ORDER = list(REASON_TEXT)


class GoccError(Exception):
    pass


# ---- reading the program ----

def _static_symbol(name, source):
    """The static variable @name of libgocc's src/@source."""
    syms = []
    if hasattr(gdb, "lookup_static_symbols"):  # gdb 10
        syms = gdb.lookup_static_symbols(name)
    else:
        s = gdb.lookup_static_symbol(name) if hasattr(gdb, "lookup_static_symbol") else None
        syms = [s] if s is not None else []
    for s in syms:
        if s.symtab is not None and s.symtab.filename.endswith(source):
            return s.value()
    try:
        return gdb.parse_and_eval("'%s'::%s" % (source, name))
    except gdb.error:
        raise GoccError("no debug information for libgocc (%s in %s): build it with -g "
                        "(meson's debug or debugoptimized)" % (name, source))


def _enum_value(name, default):
    try:
        return int(gdb.parse_and_eval(name))
    except gdb.error:
        return default


def _reason_names():
    try:
        t = gdb.lookup_type("enum gocc__wait_reason")
        return {int(f.enumval): f.name for f in t.fields()}
    except gdb.error:
        return dict(enumerate(REASON_ORDER))


def _reason_text(names, reason):
    name = names.get(reason)
    if name is None:
        return "reason %d" % reason
    return REASON_TEXT.get(name, name.replace("GOCC_WAIT_", "").lower().replace("_", " "))


def _cstring(addr, size):
    raw = gdb.selected_inferior().read_memory(addr, size).tobytes()
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _symbol_at(pc):
    """The function containing @pc, or its address."""
    if pc == 0:
        return "-"
    try:
        block = gdb.block_for_pc(pc)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            return block.function.name
    except RuntimeError:
        pass
    text = gdb.execute("info symbol 0x%x" % pc, to_string=True)
    m = re.match(r"(\S+)( \+ \d+)? in section", text)
    return m.group(1) if m else "0x%x" % pc


class Entry(object):
    """One line of `gocc tasks`."""

    def __init__(self):
        self.kind = "task"      # task (coroutine), own (own_thread task), thread
        self.id = 0
        self.name = ""
        self.state = ""         # running / runnable / parked / blocked
        self.reason = ""
        self.where = ""
        self.fn = 0
        self.task = None        # the gocc__task, for coroutines
        self.waiter = None
        self.gdb_thread = None  # the gdb.InferiorThread that runs it, if any
        self.tid = 0


class Snapshot(object):
    """Everything `gocc tasks` and `gocc bt` read, once per command."""

    def __init__(self):
        self.inferior = gdb.selected_inferior()
        if self.inferior.pid == 0 and not self.inferior.threads():
            raise GoccError("no process or core file")
        self.reg_head = _static_symbol("reg_head", "observe.c")
        self.sched = _static_symbol("S", "sched.c")
        self.reasons = _reason_names()
        self.TASK_NONE = _enum_value("GOCC__TASK_NONE", 0)
        self.TASK_RUNNABLE = _enum_value("GOCC__TASK_RUNNABLE", 1)
        self.TASK_RUNNING = _enum_value("GOCC__TASK_RUNNING", 2)
        self.TASK_PARKED = _enum_value("GOCC__TASK_PARKED", 3)
        self.threads_by_lwp = {}
        for th in self.inferior.threads():
            self.threads_by_lwp[th.ptid[1]] = th
        self.workers = self._workers()

    def _workers(self):
        """{task record address: (worker index, gdb thread)} for running tasks."""
        out = {}
        n = int(self.sched["nworkers"])
        all_ = self.sched["all"]
        for i in range(min(n, 4096)):
            wk = all_[i]
            if int(wk) == 0:
                continue
            cur = int(wk["cur"])
            if cur == 0:
                continue
            th = None
            try:
                th = self.inferior.thread_from_handle(wk["thread"])
            except (gdb.error, AttributeError, ValueError):
                pass
            out[cur] = (int(wk["index"]), th)
        return out

    def waiters(self):
        w = self.reg_head
        seen = set()
        while int(w) != 0 and int(w) not in seen:
            seen.add(int(w))
            yield w
            w = w["reg_next"]

    def entries(self, everything=False):
        out = []
        for w in self.waiters():
            e = self._entry(w, everything)
            if e is not None:
                out.append(e)
        out.sort(key=lambda e: (e.kind == "thread", e.id, e.tid))
        return out

    def _entry(self, w, everything):
        obs = w["obs"]
        seq = int(obs["seq"])
        reason = int(obs["reason"])
        obs_id = int(obs["task_id"])
        e = Entry()
        e.waiter = w
        e.reason = _reason_text(self.reasons, reason) if reason else ""
        if seq & 1:
            e.reason += " (record being written)"
        if int(w["task"]) != 0:
            t = w["task"].dereference()
            state = int(t["state"])
            if state == self.TASK_NONE and not everything:
                return None  # a finished task's record, kept for reuse
            e.task = t
            # What it published once it ran (its id, its name, which it may
            # have changed; a worker pool's worker shows the job it runs);
            # before that, what it was started with. Id 0: runtime work.
            if obs_id != 0:
                e.id = obs_id
                e.name = _cstring(obs["name"].address, 32)
                e.fn = int(obs["fn"])
            else:
                e.id = int(t["st"]["task_id"])
                e.name = t["name"].string(length=32).split("\0", 1)[0]
                e.fn = int(t["st"]["fn"])
            if state == self.TASK_RUNNING:
                e.state = "running"
                wk = self.workers.get(int(t.address))
                if wk is not None:
                    e.gdb_thread = wk[1]
                    e.where = "worker %d" % wk[0]
                    if wk[1] is not None:
                        e.where += ", gdb thread %d" % wk[1].num
                else:
                    e.where = "switching"
            elif state == self.TASK_RUNNABLE:
                e.state = "runnable"
                e.where = "run queue"
            elif state == self.TASK_PARKED:
                e.state = "parked"
                e.where = "coroutine"
            else:
                e.state = "done" if state == self.TASK_NONE else "state %d" % state
                e.where = "record 0x%x" % int(t.address)
            return e
        # A thread's own waiter: an own_thread task, or a thread blocked here.
        if obs_id == 0 and reason == 0:
            return None
        e.tid = int(w["tid"])
        e.gdb_thread = self.threads_by_lwp.get(e.tid)
        e.name = _cstring(obs["name"].address, 32)
        e.fn = int(obs["fn"])
        e.state = "parked" if reason else "running"
        where = "LWP %d" % e.tid
        if e.gdb_thread is not None:
            where = "gdb thread %d, %s" % (e.gdb_thread.num, where)
        if obs_id != 0:
            e.kind = "own"
            e.id = obs_id
            e.where = "own thread: " + where
        else:
            e.kind = "thread"
            e.state = "blocked"
            e.where = "thread: " + where
        return e


# ---- gocc tasks ----

def _state_text(e):
    return e.state + (", " + e.reason if e.reason else "")


def print_tasks(everything=False):
    snap = Snapshot()
    entries = snap.entries(everything)
    counts = {}
    for e in entries:
        if e.kind != "thread" and e.id != 0:
            counts[e.state] = counts.get(e.state, 0) + 1
    ntasks = sum(1 for e in entries if e.kind != "thread" and e.id != 0)
    nruntime = sum(1 for e in entries if e.kind != "thread" and e.id == 0)
    nthreads = sum(1 for e in entries if e.kind == "thread")
    parts = ", ".join("%d %s" % (counts[s], s) for s in ("running", "runnable", "parked", "done")
                      if s in counts)
    # Runtime work (id 0: a worker pool's idle worker, ...) is not counted
    # by gocc_tasks_live; it is listed all the same.
    gdb.write("libgocc: %d task%s%s, %s%d other thread%s blocked in libgocc\n" %
              (ntasks, "" if ntasks == 1 else "s", " (%s)" % parts if parts else "",
               "%d runtime task%s (id 0), " % (nruntime, "" if nruntime == 1 else "s")
               if nruntime else "", nthreads, "" if nthreads == 1 else "s"))
    rows = [("ID", "NAME", "STATE", "WHERE", "FUNCTION")]
    for e in entries:
        rows.append(("-" if e.kind == "thread" else str(e.id), '"%s"' % e.name, _state_text(e),
                     e.where, _symbol_at(e.fn) if e.fn else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        gdb.write("%*s  %-*s  %-*s  %-*s  %s\n" % (widths[0], r[0], widths[1], r[1], widths[2],
                                                   r[2], widths[3], r[3], r[4]))


# ---- a task's registers ----

_switch_ret = {}


def _ctx_switch_ret(arch):
    """The address of gocc__ctx_switch's `ret` (x86-64), or None."""
    key = arch.name()
    if key in _switch_ret:
        return _switch_ret[key]
    addr = None
    try:
        start = int(gdb.parse_and_eval("(unsigned long)&gocc__ctx_switch"))
        for insn in arch.disassemble(start, count=40):
            if insn["asm"].split()[0].startswith("ret"):
                addr = insn["addr"]
                break
    except (gdb.error, gdb.MemoryError, IndexError):
        addr = None
    _switch_ret[key] = addr
    return addr


def saved_registers(t):
    """The registers a switched-out task resumes with: {name: value}."""
    inf = gdb.selected_inferior()
    arch = gdb.selected_frame().architecture() if gdb.selected_thread() else None
    arch_name = arch.name() if arch is not None else ""
    ctx = t["ctx"]
    lo = int(t["stack"]["lo"])
    hi = lo + int(t["stack"]["size"])
    names = [f.name for f in ctx.type.strip_typedefs().fields()]
    if "sp" in names:
        sp = int(ctx["sp"])
        if "x86-64" in arch_name:
            size = 64
        elif "aarch64" in arch_name:
            size = 176
        else:
            raise GoccError("no saved-register layout for architecture %s" % arch_name)
        if not (lo <= sp and sp + size <= hi):
            raise GoccError("its saved stack pointer 0x%x is outside its stack [0x%x, 0x%x)"
                            % (sp, lo, hi))
        raw = inf.read_memory(sp, size).tobytes()
        word = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, size, 8)]
        if "x86-64" in arch_name:
            # From the saved sp up: MXCSR + x87 CW, r15 r14 r13 r12 rbx rbp, return.
            regs = {"r15": word[1], "r14": word[2], "r13": word[3], "r12": word[4],
                    "rbx": word[5], "rbp": word[6]}
            ret = _ctx_switch_ret(arch)
            if ret is not None:
                # As if about to execute the switch's `ret`: frame 0 is
                # gocc__ctx_switch, and its caller's line is exact.
                regs["rsp"] = sp + 56
                regs["rip"] = ret
            else:
                regs["rsp"] = sp + 64
                regs["rip"] = word[7]
            return regs
        # aarch64: x19-x28, x29 (fp), x30 (lr), d8-d15, FPCR; 176 bytes.
        regs = {"x%d" % (19 + i): word[i] for i in range(10)}
        regs["x29"] = word[10]
        regs["x30"] = word[11]
        regs["sp"] = sp + 176
        regs["pc"] = word[11]
        return regs
    if "uc" in names and "x86-64" in arch_name:
        g = ctx["uc"]["uc_mcontext"]["gregs"]
        # <sys/ucontext.h>: REG_R12..R15 = 4..7, RBP 10, RBX 11, RSP 15, RIP 16
        m = (1 << 64) - 1  # greg_t is signed
        return {"r12": int(g[4]) & m, "r13": int(g[5]) & m, "r14": int(g[6]) & m,
                "r15": int(g[7]) & m, "rbp": int(g[10]) & m, "rbx": int(g[11]) & m,
                "rsp": int(g[15]) & m, "rip": int(g[16]) & m}
    raise GoccError("no saved-register layout for this build (%s)" % arch_name)


# ---- backtraces ----

def _never_ran(t):
    """A new task's context: the switch would 'return' into the trampoline
    (its saved stack pointer is where gocc__ctx_make left it)."""
    lo = int(t["stack"]["lo"])
    top = (lo + int(t["stack"]["size"])) & ~15
    ctx = t["ctx"]
    if "sp" not in [f.name for f in ctx.type.strip_typedefs().fields()]:
        # ucontext: makecontext's pc is context.c's uc_entry.
        try:
            entry = int(gdb.parse_and_eval("(unsigned long)&'context.c'::uc_entry"))
            return (int(ctx["uc"]["uc_mcontext"]["gregs"][16]) & ((1 << 64) - 1)) == entry
        except gdb.error:
            return False
    sp = int(ctx["sp"])
    arch = gdb.selected_frame().architecture().name()
    return sp == top - (80 if "x86-64" in arch else 176)


def _can_write_registers():
    """A live process (not a core file): registers can be lent."""
    inf = gdb.selected_inferior()
    if inf.pid == 0:
        return False
    try:
        conn = inf.connection  # gdb 11
        if conn is not None and conn.type == "core":
            return False
    except AttributeError:
        pass
    return True


def _bt_lent_registers(regs, bt):
    """qemu's technique: the selected thread's newest frame takes the task's
    registers for one `bt`, then gets its own back. False when registers
    cannot be written here (a core file, to a gdb that cannot tell)."""
    frame = gdb.selected_frame()
    gdb.newest_frame().select()
    saved = {}
    try:
        for r in regs:
            saved[r] = int(gdb.parse_and_eval("(unsigned long)$%s" % r))
        try:
            for r, v in regs.items():
                gdb.execute("set $%s = 0x%x" % (r, v), to_string=True)
        except gdb.error:
            return False  # (a write of an unchanged value passes even there)
        gdb.execute(bt)
        return True
    finally:
        for r, v in saved.items():
            try:
                gdb.execute("set $%s = 0x%x" % (r, v), to_string=True)
            except gdb.error:
                pass
        try:
            frame.select()
        except (gdb.error, RuntimeError):
            pass


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


_active = {"regs": None, "sp": None, "hit": False}

if _unwinder_mod is not None:
    class _TaskUnwinder(_unwinder_mod.Unwinder):
        """While a core-file backtrace runs: the selected thread's newest
        frame 'returns' into the task's saved registers."""

        def __init__(self):
            super(_TaskUnwinder, self).__init__("gocc-task")

        def __call__(self, pending_frame):
            regs = _active["regs"]
            if regs is None:
                return None
            if hasattr(pending_frame, "level") and pending_frame.level() != 0:
                return None
            sp_name = "rsp" if "rsp" in regs else "sp"
            pc_name = "rip" if "rip" in regs else "pc"
            sp = pending_frame.read_register(sp_name)
            if int(sp) != _active["sp"]:
                return None
            pc = pending_frame.read_register(pc_name)
            # The frame's id: its pc, and a stack address just below the
            # task's (not the thread's own sp), or gdb, seeing the task's
            # frames inner to this one, stops at "corrupt stack?".
            info = pending_frame.create_unwind_info(
                _FrameId(gdb.Value(regs[sp_name] - 16).cast(sp.type), pc))
            for r, v in regs.items():
                info.add_saved_register(r, gdb.Value(v).cast(pending_frame.read_register(r).type))
            _active["hit"] = True
            return info

    class _SkipNewest(object):
        """Leaves out the thread's own newest frame while the unwinder runs."""

        def __init__(self):
            self.name = "gocc-task"
            self.priority = 100
            self.enabled = True
            gdb.frame_filters[self.name] = self

        def filter(self, frames):
            if _active["regs"] is None:
                return frames
            return _skip_first(frames)

    def _skip_first(frames):
        it = iter(frames)
        first = next(it, None)
        second = next(it, None)  # unwinding to it runs the unwinder
        if first is not None and not _active["hit"]:
            yield first
        if second is not None:
            yield second
        for f in it:
            yield f

    _task_unwinder = _TaskUnwinder()
    _unwinder_mod.register_unwinder(None, _task_unwinder, replace=True)
    _SkipNewest()


def _bt_unwinder(regs, bt):
    if _unwinder_mod is None:
        raise GoccError("this gdb has no Python unwinders: no task backtraces from a core file")
    frame = gdb.selected_frame()
    newest = gdb.newest_frame()
    sp_name = "rsp" if "rsp" in regs else "sp"
    _active["sp"] = int(newest.read_register(sp_name))
    _active["regs"] = regs
    _active["hit"] = False
    gdb.invalidate_cached_frames()
    try:
        gdb.execute(bt)
        if not _active["hit"]:
            raise GoccError("gdb did not take the task's registers (that was the thread's "
                            "own backtrace)")
    finally:
        _active["regs"] = None
        _active["sp"] = None
        gdb.invalidate_cached_frames()
        try:
            frame.select()
        except (gdb.error, RuntimeError):
            pass


def _bt_on_thread(th, bt):
    old = gdb.selected_thread()
    frame = gdb.selected_frame()
    th.switch()
    try:
        gdb.execute(bt)
    finally:
        old.switch()
        try:
            frame.select()
        except (gdb.error, RuntimeError):
            pass


def _on_own_stack(t, th):
    """The thread runs on the task's stack now."""
    lo = int(t["stack"]["lo"])
    hi = lo + int(t["stack"]["size"])
    old = gdb.selected_thread()
    try:
        th.switch()
        sp = int(gdb.parse_and_eval("(unsigned long)$sp"))
    finally:
        old.switch()
    return lo <= sp < hi


def backtrace(e, bt_args):
    bt = "bt " + bt_args if bt_args else "bt"
    gdb.write('task %s "%s" [%s] (%s):\n' % ("-" if e.kind == "thread" else e.id, e.name,
                                             _state_text(e), e.where))
    if e.kind != "task":
        if e.gdb_thread is None:
            raise GoccError("no gdb thread with LWP %d" % e.tid)
        _bt_on_thread(e.gdb_thread, bt)
        return
    t = e.task
    if e.state == "running" and e.gdb_thread is not None and _on_own_stack(t, e.gdb_thread):
        _bt_on_thread(e.gdb_thread, bt)
        return
    if e.state == "running":
        gdb.write("(running, but not on its stack: between its worker's loop and the switch; "
                  "these are the registers it last saved)\n")
    if e.state == "done":
        raise GoccError("the task has ended (its record waits for reuse)")
    if gdb.selected_thread() is None:
        raise GoccError("no thread selected")
    if _never_ran(t):
        gdb.write("(not started yet: it begins in %s)\n" % _symbol_at(e.fn))
        return
    regs = saved_registers(t)
    if _can_write_registers() and _bt_lent_registers(regs, bt):
        pass
    else:
        _bt_unwinder(regs, bt)


# ---- the commands ----

class GoccCommand(gdb.Command):
    """libgocc: look at tasks (coroutines) no thread shows.

gocc tasks [-a]       every task and every thread blocked in libgocc (-a: also
                      ended tasks' records kept for reuse)
gocc bt ID|all [ARGS] a task's backtrace (ID from `gocc tasks`; ARGS go to bt,
                      e.g. `gocc bt 3 full`); `all`: every task's, and every
                      blocked thread's"""

    def __init__(self):
        super(GoccCommand, self).__init__("gocc", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class GoccTasksCommand(gdb.Command):
    """List libgocc's tasks: id, name, state (running / runnable / parked and
what on), where (worker and gdb thread, or coroutine), start function.
Threads that are not tasks are listed when blocked in libgocc (ID -).
With -a, also ended tasks whose records are kept for reuse."""

    def __init__(self):
        super(GoccTasksCommand, self).__init__("gocc tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if args not in ([], ["-a"]):
            raise gdb.GdbError("usage: gocc tasks [-a]")
        try:
            print_tasks(everything=bool(args))
        except (GoccError, gdb.MemoryError) as err:
            raise gdb.GdbError("gocc tasks: %s" % err)


class GoccBtCommand(gdb.Command):
    """Backtrace of a libgocc task: gocc bt ID [BT-ARGS], or gocc bt all.
A parked or runnable task is unwound from the registers its last switch saved;
a running task (or one on its own thread) on the thread that runs it.
BT-ARGS go to gdb's backtrace (full, -frame-arguments all, a count, ...)."""

    def __init__(self):
        super(GoccBtCommand, self).__init__("gocc bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if not parts:
            raise gdb.GdbError("usage: gocc bt ID|all [bt arguments]")
        which, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        try:
            snap = Snapshot()
            entries = snap.entries()
            if which == "all":
                chosen = entries
            else:
                try:
                    want = int(which, 0)
                except ValueError:
                    raise GoccError("'%s' is not a task id (see gocc tasks)" % which)
                chosen = [e for e in entries if e.kind != "thread" and e.id == want]
                if not chosen:
                    raise GoccError("no task %d (see gocc tasks)" % want)
            for i, e in enumerate(chosen):
                if i:
                    gdb.write("\n")
                try:
                    backtrace(e, rest)
                except (GoccError, gdb.error, gdb.MemoryError) as err:
                    if which != "all":
                        raise
                    gdb.write("(no backtrace: %s)\n" % err)
        except (GoccError, gdb.error, gdb.MemoryError) as err:
            raise gdb.GdbError("gocc bt: %s" % err)


GoccCommand()
GoccTasksCommand()
GoccBtCommand()
