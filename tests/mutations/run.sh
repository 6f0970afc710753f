#!/usr/bin/env bash
# tests/mutations/run.sh - the examples must notice when the library stops
# doing what they teach. Each tests/mutations/NAME.patch is one deliberate
# break of the library (a refill that never happens, a close that wakes
# nobody, ...); its header names the examples it must break:
#
#   What: one line saying what the break is
#   Breaks: example_a example_b      (one or more such lines)
#   Limit: 3                         (optional: seconds per run under it)
#
# For each mutation, applied with `patch --fuzz=0 -p1` to a scratch copy of
# the tree (never to this one; a stale patch fails to apply instead of
# landing somewhere else), the optimised library and the listed examples are
# built (one meson setup, then ninja per mutation: only the patched file and
# the listed examples are rebuilt) and every listed example is run. The
# check fails when a listed example still exits 0, when a patch no longer
# applies or builds, or when a listed example fails without any mutation
# (then its failing proves nothing). An example that runs past the per-run
# limit counts as broken (a hang is a failure); a mutation under which the
# listed examples hang rather than fail may set a shorter limit (Limit:).
#
#   tests/mutations/run.sh [NAME...]     the named mutations (default: all)
#   tests/mutations/run.sh --survey [NAME...]
#       run every example under each mutation and print which fail; to
#       choose the Breaks lists, checks nothing.
#
# Environment: GOCC_MUTATION_TIMEOUT, seconds per example run (default 15,
# also the limit of the unmutated runs; a Limit: line lowers it);
# TMPDIR for the scratch copy. Exit 0 when every mutation was caught by
# every example it lists, 1 otherwise, 77 (meson: skipped) when meson,
# ninja, patch or a C compiler is missing. Registered as meson test suite
# 'mutations' when configured with -Dmutations=true.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
limit=${GOCC_MUTATION_TIMEOUT:-15}

survey=false
if [ "${1:-}" = --survey ]; then
    survey=true
    shift
fi

for tool in meson ninja patch timeout tar "${CC:-cc}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "mutations: skipped, $tool not found"
        exit 77
    fi
done

# The mutations to run: NAME.patch files, all of them by default.
if [ "$#" -gt 0 ]; then
    names=("$@")
else
    names=()
    for p in "$here"/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
[ "${#names[@]}" -gt 0 ] || { echo "mutations: no patch in $here"; exit 1; }

# Every example the examples' meson.build knows, in its order.
mapfile -t all_examples < <(sed -n '/^examples = \[/,/^\]/p' "$root/examples/meson.build" |
    grep -o "'[a-z0-9_]*'" | tr -d "'")

declare -A what breaks run_limit
wanted=()
for n in "${names[@]}"; do
    p="$here/$n.patch"
    [ -f "$p" ] || { echo "mutations: no such mutation: $n ($p)"; exit 1; }
    what[$n]=$(sed -n 's/^What: //p' "$p" | head -n 1)
    breaks[$n]=$(sed -n 's/^Breaks: //p' "$p" | tr '\n' ' ')
    run_limit[$n]=$(sed -n 's/^Limit: *\([0-9][0-9]*\)$/\1/p' "$p" | head -n 1)
    [ -n "${run_limit[$n]}" ] && [ "${run_limit[$n]}" -lt "$limit" ] || run_limit[$n]=$limit
    if ! $survey; then
        [ -n "${breaks[$n]// /}" ] || { echo "mutations: $n.patch has no Breaks: line"; exit 1; }
        for e in ${breaks[$n]}; do
            if ! printf '%s\n' "${all_examples[@]}" | grep -qx "$e"; then
                echo "mutations: $n.patch lists $e, which examples/meson.build does not build"
                exit 1
            fi
            printf '%s\n' "${wanted[@]}" | grep -qx "$e" || wanted+=("$e")
        done
    fi
done
$survey && wanted=("${all_examples[@]}")

start=$SECONDS
scratch=$(mktemp -d "${TMPDIR:-/tmp}/gocc-mutations.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
src=$scratch/src
build=$scratch/build
mkdir -p "$src"
# The working tree as it is, committed or not: in a git checkout the files
# git tracks or would track (so no build directory), else all but build*.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z -co --exclude-standard |
        tar --null --no-recursion --ignore-failed-read -T - -cf -) | tar -C "$src" -xf -
else
    tar -C "$root" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$src" -xf -
fi

log=$scratch/setup.log
if ! meson setup "$build" "$src" -Dbuildtype=release -Dtests=false -Dbenchmarks=false \
        -Dexamples=true -Dmutations=false >"$log" 2>&1; then
    cat "$log"
    echo "mutations: meson setup failed"
    exit 1
fi
targets=()
for e in "${wanted[@]}"; do targets+=("examples/$e"); done

build_targets() { ninja -C "$build" "${targets[@]}" >"$scratch/build.log" 2>&1; }

# run_example NAME SECONDS: its exit status (124 when it ran past the
# limit); its output in $scratch/NAME.out.
run_example() {
    local rc=0
    timeout -k 5 "$2" "$build/examples/$1" >"$scratch/$1.out" 2>&1 || rc=$?
    echo "$rc"
}

echo "mutations: building the unmutated tree (${#wanted[@]} examples) ..."
if ! build_targets; then
    cat "$scratch/build.log"
    echo "mutations: the unmutated tree does not build"
    exit 1
fi
failures=0
for e in "${wanted[@]}"; do
    rc=$(run_example "$e" "$limit")
    if [ "$rc" -ne 0 ]; then
        tail -n 5 "$scratch/$e.out"
        echo "mutations: $e fails (exit $rc) without any mutation: its failing under one proves nothing"
        failures=$((failures + 1))
    fi
done
[ "$failures" -eq 0 ] || exit 1

summary=()
for n in "${names[@]}"; do
    p="$here/$n.patch"
    t0=$SECONDS
    echo
    echo "=== $n: ${what[$n]}"
    if ! patch --fuzz=0 -p1 -d "$src" --dry-run --silent <"$p" >/dev/null 2>&1; then
        patch --fuzz=0 -p1 -d "$src" --dry-run <"$p" || true
        echo "=== $n: the patch no longer applies: update tests/mutations/$n.patch"
        summary+=("$(printf '%-30s PATCH DOES NOT APPLY' "$n")")
        failures=$((failures + 1))
        continue
    fi
    patch --fuzz=0 -p1 -d "$src" --silent <"$p"
    if ! build_targets; then
        tail -n 30 "$scratch/build.log"
        echo "=== $n: the mutated tree does not build"
        summary+=("$(printf '%-30s DOES NOT BUILD' "$n")")
        failures=$((failures + 1))
        patch --fuzz=0 -R -p1 -d "$src" --silent <"$p"
        continue
    fi
    if $survey; then
        broke=()
        for e in "${wanted[@]}"; do
            rc=$(run_example "$e" "${run_limit[$n]}")
            [ "$rc" -ne 0 ] && broke+=("$e($rc)")
        done
        line="broken: ${broke[*]:-none}"
        echo "$line"
        summary+=("$(printf '%-30s %s' "$n" "$line")")
    else
        caught=0 listed=0 survivors=()
        for e in ${breaks[$n]}; do
            listed=$((listed + 1))
            rc=$(run_example "$e" "${run_limit[$n]}")
            if [ "$rc" -eq 0 ]; then
                survivors+=("$e")
                echo "--- $e still passes under $n; its output ends:"
                tail -n 8 "$scratch/$e.out"
            else
                caught=$((caught + 1))
                [ "$rc" -eq 124 ] && why="hung: stopped after ${run_limit[$n]} s" || why="exit $rc"
                echo "--- $e fails ($why): $(grep -m 1 'FAILED' "$scratch/$e.out" || tail -n 1 "$scratch/$e.out")"
            fi
        done
        secs=$((SECONDS - t0))
        if [ "${#survivors[@]}" -eq 0 ]; then
            summary+=("$(printf '%-30s caught by %d of %d  (%d s)' "$n" "$caught" "$listed" "$secs")")
        else
            summary+=("$(printf '%-30s NOT CAUGHT by %s  (%d s)' "$n" "${survivors[*]}" "$secs")")
            failures=$((failures + 1))
        fi
    fi
    patch --fuzz=0 -R -p1 -d "$src" --silent <"$p"
done

echo
echo "=== mutations summary ($((SECONDS - start)) s)"
for line in "${summary[@]}"; do echo "$line"; done
if [ "$failures" -ne 0 ]; then
    echo "mutations: $failures of ${#names[@]} not caught as listed"
    exit 1
fi
$survey || echo "mutations: all ${#names[@]} caught by every example they list"
