#!/usr/bin/env bash
# check-self-contained.sh SRCDIR - the repository stands on its own: no file
# of it names a path outside the repository (the project's working notes,
# the Go texts the examples were ported from, a machine's absolute paths).
# A user has only the repository, so the header, the guide and the comments
# must say what they mean in their own words instead of pointing elsewhere.
#
# Files scanned: every file git knows of in SRCDIR, tracked or new but not
# ignored (`git ls-files --cached --others --exclude-standard`); without git
# (an unpacked release tarball) every file under SRCDIR but build
# directories (those holding meson-private/). Binary files are skipped.
# This script is scanned like any other file: its patterns are written so
# that they do not match their own text (the pattern "[s]eeds/" matches the
# directory's name followed by a slash, but its own spelling has a bracket
# in the way), so it needs no exemption and a reference hidden in it is
# caught too.
#
# Before scanning, the patterns are tried on samples made at run time: each
# forbidden form must be caught and each harmless look-alike ("the shared
# library", "seed corpus") must not, so a pattern broken by an edit fails
# here rather than letting everything through.
#
# Exit 0: clean; 1: a reference (each printed as FILE:LINE:TEXT) or a
# pattern that no longer works; 77 (meson: SKIP): SRCDIR cannot be listed.
set -euo pipefail

src=${1:?usage: check-self-contained.sh SRCDIR}
cd "$src"

# One extended regular expression per kind of outside path. The bracket in
# each keeps the pattern from matching its own spelling.
patterns=(
    '\.\./[s]hared'                     # the directory beside the repository
    '(^|[^[:alnum:]_.-])[s]hared/'      # a path into it
    '[A]PI\.md'                         # the working notes, by file name
    '[L]ESSONS\.md'
    '[S]CHEDULER-NOTES\.md'
    '[S]TYLE\.md'
    '(^|[^[:alnum:]_.-])[s]eeds/'       # the Go texts' directory
    '(^|[[:space:]"'"'"'(=`])/[w]ork/'  # this machine's absolute paths
)
regex=$(IFS='|'; echo "${patterns[*]}")

# --- the patterns still work: forbidden forms made by concatenation, so this
# file's text holds none of them.
sd=shared sl=/ md=.md
must_match=(
    "see ..${sl}${sd}${sl}LESSONS${md}"
    "(${sd}${sl}API${md} is the contract)"
    "as API${md} asks"
    "In LESSONS${md} order"
    "SCHEDULER-NOTES${md}"
    "STYLE${md}: naming"
    "port of A01 (seeds${sl}001, ...)"
    "texts in \`seeds${sl}\`"
    "cat /work${sl}${sd}${sl}x"
    "cd /work${sl}wt-1"
)
must_not_match=(
    "the shared library (libgocc.so)"
    "libgocc.get_shared_lib()"
    "gocc::gocc_shared"
    "the seed corpus in tests/fuzz/corpus/"
    "docs/guide/README.md"
    "build/docs/html"
    "\$work/stage"
    "lib/pkgconfig/gocc.pc"
)
broken=0
for s in "${must_match[@]}"; do
    if ! grep -Eq -- "$regex" <<<"$s"; then
        echo "FAIL: the patterns no longer catch: $s"
        broken=1
    fi
done
for s in "${must_not_match[@]}"; do
    if grep -Eq -- "$regex" <<<"$s"; then
        echo "FAIL: the patterns wrongly catch: $s"
        broken=1
    fi
done
[ "$broken" -eq 0 ] || exit 1

# --- the files
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
   [ "$(git rev-parse --show-toplevel)" = "$(pwd -P)" ]; then
    how="git ls-files"
    while IFS= read -r -d '' f; do
        [ -f "$f" ] && files+=("$f")
    done < <(git ls-files -z --cached --others --exclude-standard)
else
    how="find (no git work tree)"
    while IFS= read -r -d '' f; do
        files+=("$f")
    done < <(find . \( -name .git -o -path ./subprojects -o -exec test -d '{}/meson-private' \; \) -prune \
                    -o -type f -print0)
fi
if [ "${#files[@]}" -eq 0 ]; then
    echo "no files found in $src: skipped"
    exit 77
fi

# grep: 0 found something, 1 found nothing (the passing case), 2 failed.
set +e
hits=$(grep -InE -- "$regex" "${files[@]}")
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
    echo "$hits"
    echo
    echo "FAIL: $(wc -l <<<"$hits") line(s) above name a path outside the repository."
    echo "Say what is meant in the repository's own words (the header, the guide)."
    exit 1
elif [ "$rc" -ne 1 ]; then
    echo "FAIL: grep failed ($rc)"
    exit 1
fi
echo "${#files[@]} files (${how}): none names a path outside the repository"
