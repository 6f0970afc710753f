#!/bin/sh
# docs/guide/check-examples.sh - compile and run every complete example in
# the guide, so the pages cannot drift from the library.
#
# A complete example is a ```c block that contains "int main(": each one is
# written to its own file, compiled as plain C11 with warnings as errors
# against the given static library, and run (10 s limit); it must exit 0.
# Blocks without main are fragments and are not compiled.
#
#   docs/guide/check-examples.sh BUILD_DIR            # uses BUILD_DIR/libgocc.a
#   CFLAGS=-fsanitize=address,undefined docs/guide/check-examples.sh build-asan
#
# VERBOSE=1 shows each example's output. CC and CFLAGS come from the
# environment (CFLAGS is added after the defaults: give the sanitizer the
# library was built with). Exit status 0 when every example compiled and
# ran; the last line is "N passed, N failed".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: check-examples.sh BUILD_DIR}
lib="$build/libgocc.a"
[ -f "$lib" ] || { echo "no $lib (build the library first)" >&2; exit 2; }
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

pass=0
fail=0
for page in "$here"/*.md; do
    name=$(basename "$page" .md)
    # Split the page's ```c blocks into $work/<page>-<n>.c.
    awk -v out="$work/$name" '
        /^```c[[:space:]]*$/ { inside = 1; n++; file = out "-" n ".c"; printf "" > file; next }
        /^```/ && inside     { inside = 0; close(file); next }
        inside               { print >> file }
    ' "$page"
    for src in "$work/$name"-*.c; do
        [ -f "$src" ] || continue
        grep -q 'int main(' "$src" || continue
        ex=$(basename "$src" .c)
        # shellcheck disable=SC2086
        if ! $cc -std=c11 -Wall -Wextra -Werror -I"$root/include" ${CFLAGS:-} \
                -o "$work/$ex" "$src" "$lib" -lpthread -ldl >"$work/$ex.log" 2>&1; then
            echo "FAIL (compile) $ex"; sed 's/^/    /' "$work/$ex.log"; fail=$((fail + 1)); continue
        fi
        if timeout 10 "$work/$ex" >"$work/$ex.out" 2>&1; then
            echo "ok   $ex"; pass=$((pass + 1))
            [ -z "${VERBOSE:-}" ] || sed 's/^/    /' "$work/$ex.out"
        else
            echo "FAIL (exit $?) $ex"; sed 's/^/    /' "$work/$ex.out"; fail=$((fail + 1))
        fi
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
