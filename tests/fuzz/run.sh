#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer harness (fuzz-ops.c with every
# src/*.c, clang -fsanitize=fuzzer,address,undefined) and fuzz for a bounded
# time, starting from the seeds in tests/fuzz/corpus.
#
#   tests/fuzz/run.sh [SECONDS] [libFuzzer flags...]   fuzz SECONDS (default 60)
#   tests/fuzz/run.sh --check                          exit 0 if clang can build it
#
# Exit status: 0 when the run ended without a finding; 1 on a crash, an
# invariant violation, a sanitizer report, a leak or a hang (the input is
# saved under $GOCC_FUZZ_BUILD/artifacts/, replay it with
# `$GOCC_FUZZ_BUILD/fuzz-ops FILE` or with meson's fuzz-replay); 77 when
# clang cannot build fuzzers here (Debian: apt-get install clang
# libclang-rt-14-dev); 2 when the build failed.
#
# Environment: GOCC_FUZZ_BUILD (default build-fuzz/) holds the binary, the
# corpus libFuzzer grows (corpus/, seeds in tests/fuzz/corpus are only read)
# and artifacts/. CLANG (default clang). GOCC_FUZZ_RUN_MS /
# GOCC_FUZZ_QUIET_MS tune the harness (see fuzz-ops.c). Longer runs: pass
# more seconds, and -jobs=N -workers=N for N processes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
clang=${CLANG:-clang}
out=${GOCC_FUZZ_BUILD:-build-fuzz}

# Can clang link a fuzzer with ASan+UBSan here?
can_fuzz() {
    command -v "$clang" >/dev/null 2>&1 || return 1
    local tmp
    tmp=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
    "$clang" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

if [ "${1:-}" = "--check" ]; then
    can_fuzz && exit 0
    exit 77
fi
secs=${1:-60}
[ $# -gt 0 ] && shift

if ! can_fuzz; then
    echo "fuzz: $clang cannot build with -fsanitize=fuzzer (Debian: apt-get install clang libclang-rt-14-dev); skipped"
    exit 77
fi

mkdir -p "$out/corpus" "$out/artifacts"
bin="$out/fuzz-ops"
# The library's sources as meson compiles them (gocc_c_args; the lock
# checks on, as in every sanitizer build), plus coverage feedback and the
# sanitizers. Library warnings are gcc's to judge (-Werror there); here
# they would only stop the run. Rebuilt when a source is newer.
if [ -x "$bin" ] && [ -z "$(find src include tests/fuzz/fuzz-ops.c -newer "$bin" 2>/dev/null)" ]; then
    echo "fuzz: $bin is up to date"
elif echo "fuzz: building $bin" && ! "$clang" -std=c11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -DGOCC_BUILDING -DGOCC_LOCK_CHECKS=1 -Iinclude -Isrc \
    src/*.c tests/fuzz/fuzz-ops.c -o "$bin" -pthread -ldl; then
    echo "fuzz: build failed" >&2
    exit 2
fi

log="$out/fuzz.log"
echo "fuzz: running $secs s (log: $log)"
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$secs" -max_len=600 -timeout=30 -rss_limit_mb=4096 \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/" "$@" "$out/corpus" tests/fuzz/corpus >"$log" 2>&1
rc=$?
set -e

# The last status line has the totals: "#N DONE cov: C ft: F corp: K/..."
last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
runs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' || true)
speed=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}' || true)
cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | awk '{print $2}' || true)
ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | awk '{print $2}' || true)
corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | awk '{print $2}' || true)
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: FAILED (exit $rc) after ${runs:-?} runs; input saved in $out/artifacts/:"
    find "$out/artifacts" -type f | tail -n 5
    exit 1
fi
echo "fuzz: ok: ${runs:-?} runs in $secs s (${speed:-?} exec/s), cov: ${cov:-?} ft: ${ft:-?}, corpus: ${corp:-?} inputs"
