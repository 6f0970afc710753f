#!/bin/sh
# check-format.sh CLANG_FORMAT SOURCE_ROOT - every tracked C file (*.c, *.h,
# and the C++ consumer check *.cc) is laid out as .clang-format says:
# `clang-format --dry-run -Werror` reports each place it would change.
# SKIP (77) without clang-format 14, or outside a git checkout (a release
# tarball has no list of tracked files). Fix a failure with
#   git ls-files '*.c' '*.h' '*.cc' | xargs clang-format -i
# (one file at a time: a crash of clang-format then spoils only that one).
clang_format=$1 root=$2
if [ -z "$clang_format" ] || ! command -v "$clang_format" >/dev/null 2>&1; then
    echo "SKIP: no clang-format"
    exit 77
fi
# Layouts differ between clang-format releases; .clang-format is tuned for
# 14 (Debian 12's). Another major version would report differences that are
# its own, not the code's: skip, saying so.
major=$("$clang_format" --version | sed -n 's/.*clang-format version \([0-9][0-9]*\).*/\1/p')
if [ "${major:-0}" != 14 ]; then
    echo "SKIP: clang-format ${major:-unknown}, the layout is checked with 14"
    exit 77
fi
cd "$root" || exit 1
if ! files=$(git ls-files '*.c' '*.h' '*.cc' 2>/dev/null) || [ -z "$files" ]; then
    echo "SKIP: not a git checkout"
    exit 77
fi
"$clang_format" --version
status=0 bad=0
for f in $files; do
    if ! "$clang_format" --dry-run -Werror "$f" >/dev/null 2>"${TMPDIR:-/tmp}/check-format.$$"; then
        status=1
        bad=$((bad + 1))
        head -n 20 "${TMPDIR:-/tmp}/check-format.$$"
    fi
done
rm -f "${TMPDIR:-/tmp}/check-format.$$"
n=$(printf '%s\n' "$files" | wc -l)
if [ $status -eq 0 ]; then echo "all $n files formatted"; else echo "$bad of $n files not formatted"; fi
exit $status
