#!/usr/bin/env bash
# scripts/gdb/check-gdb.sh - the test of scripts/gdb/gocc.py (meson test
# 'gdb', suite core): runs scripts/gdb/gdb-demo.c's program under gdb and
# checks what `gocc tasks` and `gocc bt` print, then does the same on a core
# file of the program where the system writes one into the working
# directory.
#
#   check-gdb.sh GDB DEMO GOCC_PY SANITIZE DEBUG
#
# GDB: the gdb to use ('' when none was found); DEMO: the built demo; GOCC_PY:
# scripts/gdb/gocc.py; SANITIZE: meson's b_sanitize; DEBUG: 'true' when
# the build has debug information. Exit 0 on success, 1 on a failed check,
# 77 (skipped) without gdb, without gdb's Python, without debug information,
# in a sanitized build, or where this process may not trace its children.
set -uo pipefail

gdb=${1:-}
demo=$2
gocc_py=$3
sanitize=${4:-none}
debug=${5:-true}

skip() { echo "SKIP: $*"; exit 77; }
if [ -z "$gdb" ] || ! command -v "$gdb" >/dev/null 2>&1; then skip "no gdb"; fi
[ "$sanitize" = none ] || skip "sanitized build ($sanitize): gdb and the sanitizers' runtimes do not mix"
[ "$debug" = true ] || skip "no debug information in this build"
"$gdb" -nx -batch -ex 'python import gdb.unwinder' >/dev/null 2>&1 || skip "gdb has no Python"

work=$(mktemp -d "${TMPDIR:-/tmp}/gocc-gdb.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0

# expect FILE WHAT REGEX: the output has a line matching REGEX.
expect() {
    if grep -Eq -- "$3" "$1"; then
        echo "ok: $2"
    else
        echo "FAIL: $2 (no line matching: $3)"
        failed=1
    fi
}

# section FILE HEADER: from the line starting with HEADER to the next
# "task " header line.
section() { awk -v h="$2" 'index($0, h) == 1 { on = 1; print; next } /^task / { on = 0 } on' "$1"; }

# The checks common to the live process and the core file.
check_listing() {
    local out=$1 what=$2
    expect "$out" "$what: consumer-1 parked in a receive" '^ *1 +"consumer-1" +parked, chan receive +coroutine +consumer$'
    expect "$out" "$what: consumer-3 parked in a receive" '^ *3 +"consumer-3" +parked, chan receive +coroutine +consumer$'
    expect "$out" "$what: selector parked in a select" '^ *4 +"selector" +parked, select +coroutine +selector$'
    expect "$out" "$what: napper parked in a sleep" '^ *5 +"napper" +parked, sleep +coroutine +napper$'
    expect "$out" "$what: the own_thread task, on its thread" '^ *6 +"own-thread" +parked, chan receive +own thread: gdb thread [0-9]+, LWP [0-9]+ +consumer$'
    expect "$out" "$what: the spinner running on worker 0" '^ *7 +"spinner" +running +worker 0, gdb thread [0-9]+ +spinner$'
    expect "$out" "$what: pending runnable" '^ *8 +"pending" +runnable +run queue +pending$'
    expect "$out" "$what: the blocked pthread" '^ *- +"blocked-thread" +blocked, chan receive +thread: gdb thread [0-9]+, LWP [0-9]+ *$'
    expect "$out" "$what: the summary line" '^libgocc: 8 tasks \(1 running, 1 runnable, 6 parked\), 1 other thread blocked in libgocc$'
    # Each backtrace: from the switch through the library into the task's
    # own function, ending in the trampoline.
    section "$out" 'task 1 "consumer-1"' >"$work/t1"
    # (gdb prints the assembly switch's gocc__ctx_switch as gocc.ctx_switch;
    # with -Dcontext=ucontext the switch is C and ends in swapcontext.)
    expect "$work/t1" "$what: bt 1 starts in the switch" '^#[01] .* in gocc(\.|__)ctx_switch \('
    expect "$work/t1" "$what: bt 1 passes gocc__sched_park" ' in gocc__sched_park \(w=.*sched\.c:[0-9]+$'
    expect "$work/t1" "$what: bt 1 passes gocc_chan_recv" 'gocc_chan_recv \(ch=.*chan\.c:[0-9]+$'
    expect "$work/t1" "$what: bt 1 reaches consumer()" ' in consumer \(ctx=.*gdb-demo\.c:[0-9]+$'
    expect "$work/t1" "$what: bt 1 ends in the trampoline" ' in (gocc.ctx_trampoline|__start_context) \(\)'
    section "$out" 'task 4 "selector"' >"$work/t4"
    expect "$work/t4" "$what: bt 4 reaches selector() through gocc_select" ' in gocc_select \(cases='
    expect "$work/t4" "$what: bt 4 reaches selector()" ' in selector \(ctx=.*gdb-demo\.c:[0-9]+$'
    section "$out" 'task 5 "napper"' >"$work/t5"
    expect "$work/t5" "$what: bt 5 reaches napper() through gocc_sleep" ' in gocc_sleep \(d_ns='
    expect "$work/t5" "$what: bt 5 reaches napper()" ' in napper \(ctx=.*gdb-demo\.c:[0-9]+$'
    section "$out" 'task 6 "own-thread"' >"$work/t6"
    expect "$work/t6" "$what: bt 6 (own thread) in park_impl" ' (park_impl|futex_wait) \('
    expect "$work/t6" "$what: bt 6 (own thread) reaches consumer()" ' in consumer \(ctx='
    section "$out" 'task 7 "spinner"' >"$work/t7"
    expect "$work/t7" "$what: bt 7 (running) is the worker's thread, in spinner()" '^#0 .* spinner \(ctx=.*gdb-demo\.c:[0-9]+$'
    section "$out" 'task 8 "pending"' >"$work/t8"
    expect "$work/t8" "$what: bt 8 (never ran) says so" '^\(not started yet: it begins in pending\)$'
    section "$out" 'task - "blocked-thread"' >"$work/tb"
    expect "$work/tb" "$what: the blocked thread's bt reaches blocked_thread()" ' in blocked_thread \(arg='
    # No error but the one asked for (an unknown id).
    if grep -E 'Python Exception|^gocc (tasks|bt): ' "$out" | grep -vq 'no task 99 '; then
        echo "FAIL: $what: an error from gocc.py:"
        grep -E 'Python Exception|^gocc (tasks|bt): ' "$out" | sed 's/^/    /'
        failed=1
    fi
}

# ---- a live process: stopped at gocc_gdb_demo_ready, then run to its end
live="$work/live.txt"
timeout 120 "$gdb" -nx -batch \
    -ex 'set pagination off' -ex 'set confirm off' \
    -ex "source $gocc_py" \
    -ex 'break gocc_gdb_demo_ready' -ex "run >$work/demo-out.txt 2>&1" \
    -ex 'gocc tasks' -ex 'gocc bt all' \
    -ex 'thread apply all -q gocc bt 1 1' \
    -ex 'echo ==== after\n' -ex 'bt' \
    -ex 'gocc bt 99' \
    -ex 'continue' \
    "$demo" >"$live" 2>&1
rc=$?
if grep -Eq "ptrace: Operation not permitted|Couldn't get registers|warning: Error disabling address space randomization: Operation not permitted.*\$" "$live" &&
    ! grep -q "hit Breakpoint 1" "$live"; then
    skip "gdb may not trace the program here (ptrace not permitted)"
fi
echo "--- live process (gdb exit status $rc)"
check_listing "$live" live
sed -n '/^==== after/,$p' "$live" >"$work/after"
# Every thread lent its registers once (most of them are in a system call,
# which must restart as before); the selected one has its own again: its
# backtrace is the breakpoint's, and the program runs on to a normal exit.
lent=$(grep -c '^task 1 "consumer-1"' "$live")
if [ "$lent" -ge 7 ]; then # gocc bt all's, and one from each of the 6 threads
    echo "ok: live: task 1's bt with each thread lending its registers ($lent)"
else
    echo "FAIL: live: task 1's bt was printed $lent times, not 7"
    failed=1
fi
expect "$work/after" "live: the selected thread got its registers back" '^#0 +gocc_gdb_demo_ready \(\)'
expect "$work/after" "live: ... and main() above it" '^#1 .* in main \('
expect "$live" "live: an unknown id is an error" 'gocc bt: no task 99 \(see gocc tasks\)'
expect "$work/demo-out.txt" "live: the program ran on to its end" '^gdb-demo: done$'
expect "$live" "live: ... and exited normally" 'exited normally\]$'

# ---- a core file, where the kernel writes one here (core_pattern a plain
# name). gdb's own gcore is not used: on kernels with MADV_GUARD_INSTALL it
# cannot read a task-stack mapping that holds a guard page and leaves the
# stacks out of the core.
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '|')
case $pattern in
    '|'* | */*) echo "--- core file: skipped (core_pattern '$pattern' does not write into the working directory)" ;;
    *)
        { (cd "$work" && ulimit -c unlimited 2>/dev/null && exec "$demo" abort) >/dev/null 2>&1; } 2>/dev/null
        core=$(find "$work" -maxdepth 1 -name 'core*' -type f | head -n 1)
        if [ -z "$core" ]; then
            echo "--- core file: skipped (no core file was written; ulimit -c: $(ulimit -Hc))"
        else
            coreout="$work/core.txt"
            timeout 120 "$gdb" -nx -batch \
                -ex 'set pagination off' \
                -ex "source $gocc_py" \
                -ex 'gocc tasks' -ex 'gocc bt all' \
                -ex 'echo ==== after\n' -ex 'bt' \
                "$demo" "$core" >"$coreout" 2>&1
            echo "--- core file (gdb exit status $?)"
            check_listing "$coreout" core
            sed -n '/^==== after/,$p' "$coreout" >"$work/after"
            expect "$work/after" "core: the thread's own backtrace is back" '^#[0-9]+ .* in main \('
        fi
        ;;
esac

if [ "$failed" -ne 0 ]; then
    echo "--- gdb's output, live process:"
    cat "$live"
    [ -f "$work/core.txt" ] && { echo "--- gdb's output, core file:"; cat "$work/core.txt"; }
    exit 1
fi
echo "gocc.py: every check passed"
