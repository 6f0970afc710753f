#!/usr/bin/env bash
# docs/model/check.sh - model-check libgocc's waiting protocols with spin:
# channels and select (docs/model/select.pml), how a coroutine task parks,
# is woken or timed out, and handed to a worker (docs/model/park.pml), and
# how workers go idle and are woken (docs/model/sched.pml).
#
# Every positive configuration must verify with no error: no assertion
# violated, no invalid end state (deadlock or lost wake-up), and, where
# marked "cycles", no cycle (so every run ends; "fair": no cycle in which
# every thread that can move does). Every negative configuration (a
# deliberately broken variant of the protocol, or a "limit": a property
# the primitive does not have, shown on purpose) must produce a
# counterexample. Also
# checks that every statement of the models is reached by some positive
# configuration (a model that cannot reach a step proves nothing about it).
# Prints one line per configuration and a summary; exit status 0 only when
# everything behaved as expected, 1 otherwise, 2 when spin or a C compiler
# is missing.
#
#   check.sh          the default set: about a minute on 2 cores (about
#                     2 min 10 s of CPU), about 1.2 GiB of memory with two
#                     jobs
#   check.sh --full   adds the cycle check of the 3-thread scenarios and
#                     variants (capacity 2, no partial-order reduction, more
#                     spurious wake-ups, sched.pml's fair cycle checks):
#                     about 4 minutes, up to 3.2 GiB with two jobs (1.8 GiB
#                     with -j 1)
#   -v                print each negative configuration's counterexample
#   -k                keep the work directory (pan sources, trails, logs)
#   -j N              run N configurations at once (default 2)
#
# What the model proves and how to keep it in step with the C code:
# docs/design.md, "What the model proves"; docs/model/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CC=${CC:-cc}
full=0
verbose=0
keep=0
jobs_max=2
while [ $# -gt 0 ]; do
    case $1 in
        --full) full=1 ;;
        -v) verbose=1 ;;
        -k) keep=1 ;;
        -j) shift; jobs_max=${1:-2} ;;
        -h | --help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

for tool in spin "$CC"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check.sh: '$tool' not found (Debian/Ubuntu: apt-get install spin gcc)" >&2
        exit 2
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/gocc-model.XXXXXX")
if [ "$keep" -eq 1 ]; then
    echo "work directory: $work"
else
    trap 'rm -rf "$work"' EXIT
fi
cp "$here/select.pml" "$here/park.pml" "$here/sched.pml" "$work/"
cd "$work"

# name | expect (pass/fail) | mode | cc -O level, pan hash bits | spin -D flags
# | model (default select.pml)
# Modes: safety = assertions and invalid end states (-DSAFETY); nopor = the
# same without partial-order reduction (a cross-check of the reduction);
# cycles = pan -l with no progress label in the model, so any cycle at all
# is reported; fair = the same under weak fairness (pan -l -f: a cycle in
# which some thread could always move and never does is not reported).
# The big ones first, so that two jobs share the time well.
configs=(
    "s3-3thr-ctx      |pass|safety|2 24|-DSCENARIO=3"
    "s4-3thr-close    |pass|safety|2 24|-DSCENARIO=4"
    "s1-2thr          |pass|safety|0 20|-DSCENARIO=1"
    "s2-2thr-close    |pass|safety|0 20|-DSCENARIO=2"
    "s1-cycles        |pass|cycles|0 20|-DSCENARIO=1"
    "s2-cycles        |pass|cycles|0 20|-DSCENARIO=2"
    "s2-nopor         |pass|nopor|0 20|-DSCENARIO=2"
    "neg-wake-first   |fail|safety|0 20|-DSCENARIO=2 -DNEG_WAKE_FIRST"
    "neg-no-claim     |fail|safety|0 20|-DSCENARIO=1 -DNEG_NO_CLAIM"
    "neg-no-dequeue   |fail|safety|0 20|-DSCENARIO=2 -DNEG_NO_DEQUEUE"
    "neg-lock-order   |fail|safety|0 20|-DSCENARIO=1 -DNEG_LOCK_ORDER"
    "park1-untimed    |pass|safety|0 20|-DSCENARIO=1|park.pml"
    "park2-timed      |pass|safety|0 20|-DSCENARIO=2|park.pml"
    "park3-runnext    |pass|safety|0 22|-DSCENARIO=3|park.pml"
    "park4-yield      |pass|safety|0 20|-DSCENARIO=4|park.pml"
    "park1-cycles     |pass|cycles|0 20|-DSCENARIO=1|park.pml"
    "park2-cycles     |pass|cycles|0 20|-DSCENARIO=2|park.pml"
    "park3-cycles     |pass|cycles|0 22|-DSCENARIO=3|park.pml"
    "park4-cycles     |pass|cycles|0 20|-DSCENARIO=4|park.pml"
    "park3-nopor      |pass|nopor|0 22|-DSCENARIO=3|park.pml"
    "neg-sleep-early  |fail|safety|0 20|-DSCENARIO=1 -DNEG_SLEEP_BEFORE_SWITCH|park.pml"
    "neg-ready-waiting|fail|safety|0 20|-DSCENARIO=1 -DNEG_READY_ON_WAITING|park.pml"
    "neg-timeout-ready|fail|safety|0 20|-DSCENARIO=2 -DNEG_TIMEOUT_READY_WAITING|park.pml"
    "neg-no-del-sync  |fail|safety|0 20|-DSCENARIO=2 -DNEG_NO_DEL_SYNC|park.pml"
    "neg-no-ready     |fail|safety|0 20|-DSCENARIO=1 -DNEG_NO_READY|park.pml"
    "limit-strict-false|fail|safety|0 20|-DSCENARIO=2 -DSTRICT_FALSE|park.pml"
    "sched1-monitor   |pass|safety|0 21|-DSCENARIO=1 -DMONITOR|sched.pml"
    "sched2-monitor   |pass|safety|0 21|-DSCENARIO=2 -DMONITOR|sched.pml"
    "sched1           |pass|safety|0 20|-DSCENARIO=1|sched.pml"
    "sched2           |pass|safety|0 20|-DSCENARIO=2|sched.pml"
    "sched3           |pass|safety|0 20|-DSCENARIO=3|sched.pml"
    "neg-giveback     |fail|safety|0 20|-DSCENARIO=1 -DNEG_GIVEBACK_NO_LOOK|sched.pml"
    "neg-idle-take    |fail|safety|0 20|-DSCENARIO=1 -DNEG_IDLE_TAKE_NO_WAKEP|sched.pml"
    "neg-unidle-spin  |fail|fair|0 20|-DSCENARIO=1 -DNEG_UNIDLE_NOT_SPINNING|sched.pml"
    "neg-no-recheck   |fail|safety|0 20|-DSCENARIO=2 -DNEG_NO_RECHECK|sched.pml"
    "neg-no-reset-spin|fail|safety|0 20|-DSCENARIO=1 -DNEG_NO_RESET_SPIN|sched.pml"
    "neg-wakep-no-cas |fail|safety|0 20|-DSCENARIO=1 -DNEG_WAKEP_NO_CAS|sched.pml"
    "neg-unidle-drop  |fail|safety|0 20|-DSCENARIO=2 -DNEG_UNIDLE_DROP_WAKE|sched.pml"
    "neg-no-break     |fail|safety|0 20|-DSCENARIO=3 -DNEG_NO_BREAK|sched.pml"
)
if [ "$full" -eq 1 ]; then
    configs=(
        "s3-cycles        |pass|cycles|2 24|-DSCENARIO=3"
        "s4-cycles        |pass|cycles|2 24|-DSCENARIO=4"
        "${configs[@]}"
        "s1-nopor         |pass|nopor|0 20|-DSCENARIO=1"
        "s1-cap2          |pass|safety|0 20|-DSCENARIO=1 -DCAP1=2"
        "s2-cap2          |pass|safety|0 20|-DSCENARIO=2 -DCAP1=2"
        "s2-spurious2     |pass|safety|0 20|-DSCENARIO=2 -DSPURIOUS=2"
        "sched3-monitor   |pass|safety|0 21|-DSCENARIO=3 -DMONITOR|sched.pml"
        "sched1-fair      |pass|fair|0 21|-DSCENARIO=1|sched.pml"
        "sched2-fair      |pass|fair|0 21|-DSCENARIO=2|sched.pml"
        "sched3-fair      |pass|fair|0 21|-DSCENARIO=3|sched.pml"
        "sched2-nopor     |pass|nopor|0 21|-DSCENARIO=2|sched.pml"
    )
fi

# One configuration, in its own directory: generate, compile, run pan,
# classify. Leaves there: result (ok / FAIL), line (the summary line),
# story.txt (a negative's counterexample), and pan.d + pan.out for coverage.
# (The flag strings are split into words on purpose.)
# shellcheck disable=SC2086
run_config() {
    local name=$1 expect=$2 mode=$3 opt=${4% *} hashbits=${4#* } defs=$5 model=${6:-select.pml}
    local dir="$work/$name"
    mkdir -p "$dir"
    cp "$model" "$dir/"
    local ccflags="-O$opt -DCOLLAPSE -DMEMLIM=2048 -w" panflags="-m20000 -w$hashbits"
    case $mode in
        cycles) ccflags="$ccflags -DNP -DMEMLIM=4096"; panflags="$panflags -l" ;;
        fair) ccflags="$ccflags -DNP -DMEMLIM=4096"; panflags="$panflags -l -f" ;;
        nopor) ccflags="$ccflags -DSAFETY -DNOREDUCE" ;;
        *) ccflags="$ccflags -DSAFETY" ;;
    esac
    local t0 t1 verdict errors states trans depth secs pansecs result note=""
    t0=$(date +%s.%N)
    # -o3: no statement merging, so that every statement has a state of its
    # own and the coverage check below sees a guarded branch never taken.
    if ! (cd "$dir" && spin -o3 -a $defs "$model" >spin.log 2>&1); then
        verdict="spin -a failed"
    elif ! (cd "$dir" && $CC $ccflags -o pan pan.c >cc.log 2>&1); then
        verdict="compile failed"
    else
        # pan's CPU time (user + sys), steadier than wall time on a shared box.
        local TIMEFORMAT='%U %S'
        { time (cd "$dir" && { ./pan $panflags >pan.out 2>&1 || true; }); } 2>"$dir/cpu"
        verdict=ran
    fi
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$verdict" != ran ]; then
        echo FAIL >"$dir/result"
        printf '%-18s %-5s  %s\n' "$name" FAIL "$verdict (run with -k and look in $dir)" >"$dir/line"
        return 0
    fi
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.out" | tail -n 1)
    states=$(awk '/states, stored/ { print $1; exit }' "$dir/pan.out")
    trans=$(awk '/ transitions \(= / { print $1; exit }' "$dir/pan.out")
    pansecs=$(awk '{ printf "%.1f", $1 + $2 }' "$dir/cpu")
    depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$dir/pan.out" | tail -n 1)
    if grep -q "max search depth too small" "$dir/pan.out"; then
        note="search incomplete: depth limit"
    elif grep -qE "out of memory|MEMLIM" "$dir/pan.out"; then
        note="search incomplete: memory limit"
    elif [ -z "$errors" ]; then
        note="no result from pan"
    fi
    if [ -n "$note" ]; then
        result=FAIL
    elif [ "$expect" = pass ] && [ "$errors" -eq 0 ]; then
        result=ok
    elif [ "$expect" = fail ] && [ "$errors" -gt 0 ]; then
        result=ok
        note="counterexample, as required: $(grep -m1 '^pan:1:' "$dir/pan.out" | sed 's/^pan:1: //; s/ (at depth.*//')"
    elif [ "$expect" = pass ]; then
        result=FAIL
        note="$(grep -m1 '^pan:1:' "$dir/pan.out" | sed 's/^pan:1: //')"
    else
        result=FAIL
        note="the broken variant verified: the model no longer catches this bug"
    fi
    echo "$result" >"$dir/result"
    printf '%-18s %-5s %9s states %9s transitions  depth %3s  pan cpu %5s s  all %5s s  %s\n' \
        "$name" "$result" "${states:-?}" "${trans:-?}" "${depth:-?}" "${pansecs:-?}" "$secs" \
        "$note" >"$dir/line"
    if [ "$expect" = pass ] && [ "$mode" = safety ] && [ "$result" = ok ]; then
        (cd "$dir" && ./pan -d >pan.d 2>/dev/null) || true
    fi
    if [ -f "$dir/$model.trail" ]; then
        # The counterexample as a story: the model's printf lines (thread or
        # task Tn, worker Wn, the timer thread TM, producer P0, monitor M0,
        # descriptor D0) and spin's verdict.
        # Printed for a negative configuration with -v, for a failing
        # positive one always.
        (cd "$dir" && spin -o3 -t $defs "$model" 2>&1 |
            grep -E '^[[:space:]]+(T[0-9]|W[0-9]|TM|P0|M0|D0): |<<<<<START OF CYCLE|^spin: (text of failed|.*Error|trail ends)' |
            sed 's/^[[:space:]]*/    /' >story.txt) || true
        if grep -q "^pan:1: invalid end state" "$dir/pan.out"; then
            echo "    (and then no thread can move: an invalid end state)" >>"$dir/story.txt"
        fi
    fi
    return 0
}

echo "=== model check of docs/model/select.pml, park.pml and sched.pml ($(spin -V | head -n 1)), ${#configs[@]} configurations, $jobs_max at a time"
names=()
for c in "${configs[@]}"; do
    IFS='|' read -r name expect mode opt defs model <<<"$c"
    name=${name%% *}
    names+=("$name")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    run_config "$name" "$expect" "$mode" "$opt" "$defs" "$model" &
done
wait

ok=0
bad=0
cov_files=()
for name in "${names[@]}"; do
    dir="$work/$name"
    result=$(cat "$dir/result" 2>/dev/null || echo FAIL)
    if [ "$result" = ok ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    if [ -f "$dir/story.txt" ] && { [ "$verbose" -eq 1 ] || [ "$result" != ok ]; }; then
        echo "--- $name: counterexample"
        cat "$dir/story.txt"
    fi
    [ -f "$dir/pan.d" ] && cov_files+=("$dir/pan.d" "$dir/pan.out")
done

# Coverage: a statement is reached when some positive safety run reached a
# state of it. pan -d maps (proctype, state) -> source line; pan's
# "unreached in" list names the states it never reached.
uncovered=""
if [ "${#cov_files[@]}" -gt 0 ]; then
    uncovered=$(awk '
        FNR == 1 { isd = (FILENAME ~ /pan\.d$/); cfg = FILENAME; sub(/\/[^\/]*$/, "", cfg) }
        isd && /^proctype / { p = $2; next }
        isd && /^init/ { p = "init"; next }
        isd && /^[ \t]+state +[0-9]+ -\(tr/ {
            if (match($0, /[a-z]+\.pml:[0-9]+/)) {
                ln = substr($0, RSTART, RLENGTH)
                key = cfg SUBSEP p SUBSEP $2
                at[key] = at[key] " " ln
                all[ln] = 1
            }
            next
        }
        !isd && /^unreached in proctype / { p = $4; next }
        !isd && /^unreached in init/ { p = "init"; next }
        !isd && /^[ \t]+[a-z]+\.pml:[0-9]+, state [0-9]+,/ {
            st = $3; sub(/,/, "", st)
            unr[cfg SUBSEP p SUBSEP st] = 1
            next
        }
        END {
            for (key in at)
                if (!(key in unr)) {
                    n = split(at[key], a, " ")
                    for (i = 1; i <= n; i++) hit[a[i]] = 1
                }
            for (ln in all) if (!(ln in hit)) print ln
        }' "${cov_files[@]}" | sort -t: -k1,1 -k2,2n | tr '\n' ' ')
fi

echo
for name in "${names[@]}"; do cat "$work/$name/line" 2>/dev/null || printf '%-18s FAIL   no result\n' "$name"; done
if [ "${#cov_files[@]}" -eq 0 ]; then
    printf '%-18s %-5s  no positive safety run passed: nothing to measure\n' coverage FAIL
    bad=$((bad + 1))
elif [ -n "$uncovered" ]; then
    printf '%-18s %-5s  model lines no positive run reaches: %s\n' coverage FAIL "$uncovered"
    bad=$((bad + 1))
else
    printf '%-18s %-5s  every statement of the models is reached by a positive run\n' coverage ok
    ok=$((ok + 1))
fi
echo "model check: $ok as expected, $bad not"
[ "$bad" -eq 0 ]
