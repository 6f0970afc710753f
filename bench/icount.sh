#!/usr/bin/env bash
# bench/icount.sh - instructions per operation of the non-blocking paths,
# counted by callgrind in a release build (see icount.c). Deterministic, so
# a before/after comparison needs no quiet machine.
#
# Usage: bench/icount.sh [BUILDDIR]   (default build-icount; configured as
#        a release build with -Dtests=false -Dexamples=false if missing)
# Output: one line per path, "<path> <instructions per op>".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-build-icount}
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dbuildtype=release -Dtests=false -Dexamples=false >/dev/null
fi
ninja -C "$dir" bench/icount >/dev/null
n=100000
total() {
    local out
    out=$(mktemp)
    GOCC_PROCS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$dir/bench/icount" "$1" "$2" \
        >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
    rm -f "$out"
}
for path in sendrecv select_try try pool wg once; do
    a=$(total "$path" "$n")
    b=$(total "$path" 0)
    awk -v a="$a" -v b="$b" -v n="$n" -v p="$path" 'BEGIN { printf "%-10s %.1f\n", p, (a - b) / n }'
done
