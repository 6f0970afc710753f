#!/usr/bin/env bash
# scripts/test.sh - build libgocc three ways and run every test suite
# (core, examples, bench) in each:
#   build-ci/opt   optimised (-O2, debugoptimized)
#   build-ci/tsan  ThreadSanitizer
#   build-ci/asan  AddressSanitizer + UndefinedBehaviorSanitizer, with fault
#                  injection (tests/test-fault.c fails every allocation and
#                  thread creation of each public operation in turn)
#   build-ci/uc    the portable swapcontext task switch instead of the
#                  assembly one (core suite only)
#   build-ci/poll  the poll(2) I/O backend instead of epoll (-Dnetpoll=poll;
#                  the descriptor tests, fd, and fuzz-replay, whose model
#                  has a closed end's peer see the close at once)
# All with -Dwerror=true. Then build-ci/fuzz: a bounded libFuzzer run
# (tests/fuzz/run.sh, 60 s), one test, skipped where clang cannot build
# fuzzers. Then docs/model: spin over the Promela models of select, the
# coroutine park and idle workers (docs/model/check.sh), one test, skipped
# without spin. Then the mutation
# check (tests/mutations/run.sh): the lesson examples must fail under each
# deliberate library break, one test. Installs missing
# build tools with apt-get when run
# as root. Exit status 0 only when every build and every test passed.
# The last line is "N passed, N failed" (tests over all builds; a build that
# fails to configure or compile counts as one failure).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh

gocc_need_deps
gocc_want_deps

builds=(opt tsan asan uc poll)
declare -A opts=(
    [opt]="-Dbuildtype=debugoptimized"
    [uc]="-Dbuildtype=debugoptimized -Dcontext=ucontext -Dexamples=false -Dbenchmarks=false"
    [poll]="-Dbuildtype=debugoptimized -Dnetpoll=poll -Dexamples=false -Dbenchmarks=false"
    [tsan]="-Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false"
    [asan]="-Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dfault_injection=true"
)

# The portable context switch (swapcontext) instead of the assembly one:
# the core suite, without the soak. The poll(2) backend: the tests that wait
# on descriptors (meson test names).
declare -A testargs=(
    [uc]="--suite core"
    [poll]="fd fuzz-replay"
)

total_pass=0
total_fail=0
summary=()
# What failed, printed again after the summary: CI keeps only the tail of
# the output, and a failure's name must be in it.
failures=()

# The count after "<label>:" in meson test's closing summary, 0 if absent.
count() {
    local n
    n=$(grep -E "^$1:[[:space:]]+[0-9]+" "$2" | tail -n 1 | awk '{print $NF}' || true)
    echo "${n:-0}"
}

for b in "${builds[@]}"; do
    dir="build-ci/$b"
    log="build-ci/$b.log"
    mkdir -p build-ci
    echo "=== $dir: configure, build, test ==="
    start=$(date +%s)
    status=ok
    pass=0
    fail=0
    # shellcheck disable=SC2086
    if ! gocc_setup "$dir" -Dwerror=true ${opts[$b]}; then
        status="configure failed"
    elif ! ninja -C "$dir"; then
        status="build failed"
    fi
    if [ "$status" = ok ]; then
        set +e
        # shellcheck disable=SC2086
        meson test -C "$dir" --print-errorlogs --num-processes 2 ${testargs[$b]:-} 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        set -e
        pass=$(( $(count Ok "$log") + $(count "Expected Fail" "$log") ))
        fail=$(( $(count Fail "$log") + $(count "Unexpected Pass" "$log") + $(count Timeout "$log") ))
        if [ "$rc" -ne 0 ]; then
            status="tests failed"
            # meson test died without a summary: still a failure.
            [ "$fail" -eq 0 ] && fail=1
            while IFS= read -r l; do failures+=("$b: $l"); done < <(
                grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)|\[  FAILED  \] test_|FAILED:|^SUMMARY: |WARNING: ThreadSanitizer' "$log" |
                    sed 's/^ *//' | awk '!seen[$0]++' | head -n 20)
        fi
    else
        fail=1
    fi
    secs=$(( $(date +%s) - start ))
    line=$(printf '%-14s %-15s %3d passed, %3d failed  (%d s)' "$dir" "$status" "$pass" "$fail" "$secs")
    echo "=== $line"
    summary+=("$line")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

# ---- fuzz: a bounded libFuzzer run (tests/fuzz/run.sh: clang, ASan+UBSan)
# over channels, select, contexts and tasks, counted as one test; skipped,
# and said so, where clang cannot build fuzzers. GOCC_FUZZ_SECONDS (60).
fuzz_secs=${GOCC_FUZZ_SECONDS:-60}
gocc_want_fuzz_deps
if tests/fuzz/run.sh --check; then
    echo "=== build-ci/fuzz: tests/fuzz/run.sh $fuzz_secs ==="
    start=$(date +%s)
    mkdir -p build-ci
    set +e
    GOCC_FUZZ_BUILD=build-ci/fuzz tests/fuzz/run.sh "$fuzz_secs" 2>&1 | tee build-ci/fuzz.log
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -eq 0 ]; then
        status=ok pass=1 fail=0
    else
        status="fuzz failed" pass=0 fail=1
        while IFS= read -r l; do failures+=("fuzz: $l"); done < <(
            grep -E '^==[0-9]+==ERROR|^SUMMARY: |FAILED|crash-|Test unit written' build-ci/fuzz.log | awk '!seen[$0]++' | head -n 10)
    fi
    secs=$(( $(date +%s) - start ))
    line=$(printf '%-14s %-15s %3d passed, %3d failed  (%d s)' build-ci/fuzz "$status" "$pass" "$fail" "$secs")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
else
    line=$(printf '%-14s %s' build-ci/fuzz "skipped: clang cannot build fuzzers (apt-get install clang libclang-rt-14-dev)")
fi
echo "=== $line"
summary+=("$line")

# ---- model: spin over the Promela models of select, park and idle workers
# (docs/model/check.sh, about a minute), counted as one test; skipped, and
# said so, without spin or a C compiler.
if command -v spin >/dev/null 2>&1 && command -v "${CC:-cc}" >/dev/null 2>&1; then
    echo "=== docs/model: docs/model/check.sh ==="
    start=$(date +%s)
    mkdir -p build-ci
    set +e
    docs/model/check.sh 2>&1 | tee build-ci/model.log
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -eq 0 ]; then
        status=ok pass=1 fail=0
    else
        status="model failed" pass=0 fail=1
        while IFS= read -r l; do failures+=("model: $l"); done < <(
            grep -vE '^[a-z0-9-]+ +ok ' build-ci/model.log | tail -n 10)
    fi
    secs=$(( $(date +%s) - start ))
    line=$(printf '%-14s %-15s %3d passed, %3d failed  (%d s)' docs/model "$status" "$pass" "$fail" "$secs")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
else
    line=$(printf '%-14s %s' docs/model "skipped: no spin or C compiler (apt-get install spin)")
fi
echo "=== $line"
summary+=("$line")

# ---- mutations: deliberate library breaks the lesson examples must catch
# (tests/mutations/run.sh: each patch applied to a scratch copy, the
# optimised library and the examples it lists built and run; a few
# minutes), counted as one test.
echo "=== tests/mutations: tests/mutations/run.sh ==="
start=$(date +%s)
set +e
tests/mutations/run.sh
rc=$?
set -e
case $rc in
0) status=ok pass=1 fail=0 ;;
77) status="skipped" pass=0 fail=0 ;;
*) status="mutation survived" pass=0 fail=1 ;;
esac
secs=$(( $(date +%s) - start ))
line=$(printf '%-14s %-15s %3d passed, %3d failed  (%d s)' tests/mutations "$status" "$pass" "$fail" "$secs")
total_pass=$((total_pass + pass))
total_fail=$((total_fail + fail))
echo "=== $line"
summary+=("$line")

echo
echo "=== summary (tests over all builds) ==="
for line in "${summary[@]}"; do echo "$line"; done
if [ "${#failures[@]}" -gt 0 ]; then
    echo "=== what failed (first lines of each build's failures) ==="
    for line in "${failures[@]}"; do echo "$line"; done
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
