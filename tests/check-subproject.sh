#!/usr/bin/env bash
# check-subproject.sh MESON SRCDIR VERSION - libgocc as a meson subproject
# of a parent that passes it no options builds the library only: no tests
# (so no cmocka), no examples, no benchmarks. A tiny parent project is made
# in a temporary directory with subprojects/gocc a symlink to SRCDIR (so
# nothing is fetched) and a plain
#
#     gocc = subproject('gocc')
#
# then: `meson setup` must not look for cmocka and must define no target
# under libgocc's tests/, examples/ or bench/ and no test; the parent's
# program builds, links the subproject's library and runs. Last, the
# parent asks for them (-Dgocc:tests=true -Dgocc:examples=true
# -Dgocc:benchmarks=true, configure only) and they must all be there, so
# the default is a default and not a switch that cannot be turned on.
# That part is skipped, and said so, where cmocka is not installed.
set -euo pipefail

meson=$1 src=$2 version=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/gocc-subproject.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { printf '\n--- %s (%ds)\n' "$*" $((SECONDS - start)); }
fail() { echo "FAIL: $*"; exit 1; }

parent=$work/parent
mkdir -p "$parent/subprojects"
ln -s "$src" "$parent/subprojects/gocc"
cp "$src/examples/consumer/meson/main.c" "$parent/main.c"
cat >"$parent/meson.build" <<'EOF'
project('parent', 'c', default_options : ['c_std=c11', 'warning_level=2'])
gocc = subproject('gocc')
executable('app', 'main.c', dependencies : gocc.get_variable('gocc_dep'))
EOF

# targets BUILDDIR: "name<TAB>defined_in" for every target of the build.
targets() {
    "$meson" introspect "$1" --targets |
        python3 -c 'import json, sys
for t in json.load(sys.stdin):
    print(t["name"] + "\t" + t["defined_in"])'
}
# parts BUILDDIR: the targets defined under libgocc's tests/, examples/, bench/.
parts() { targets "$1" | awk -F'\t' '$2 ~ /subprojects\/gocc\/(tests|examples|bench)\//'; }
ntests() {
    "$meson" introspect "$1" --tests | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'
}

step "meson setup: subproject('gocc') with no options"
"$meson" setup "$work/b" "$parent" -Dbuildtype=plain >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; fail "meson setup of the parent"; }
grep -q "Subproject gocc finished" "$work/setup.log" || { cat "$work/setup.log"; fail "no gocc subproject"; }
if grep -i "dependency cmocka" "$work/setup.log"; then
    fail "the subproject looked for cmocka: its tests are configured"
fi
echo "targets:"
targets "$work/b" | sed 's/^/    /'
extra=$(parts "$work/b")
[ -z "$extra" ] || fail "the subproject defines tests, examples or benchmarks:
$extra"
n=$(ntests "$work/b")
[ "$n" -eq 0 ] || fail "the parent has $n tests; libgocc registered its own"

step "build and run the parent's program"
ninja -C "$work/b" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build"; }
out=$("$work/b/app") || fail "app exited $?: $out"
echo "$out"
[ "$out" = "meson consumer: libgocc $version, sum 6" ] || fail "app printed: $out"

step "meson setup: the parent turns them on"
if ! "$meson" setup "$work/b" "$parent" --reconfigure -Dgocc:tests=true -Dgocc:examples=true \
        -Dgocc:benchmarks=true >"$work/setup.log" 2>&1; then
    if grep -q "Dependency \"cmocka\" not found" "$work/setup.log"; then
        echo "skipped: cmocka is not installed (-Dgocc:tests=true needs it)"
        exit 0
    fi
    cat "$work/setup.log"
    fail "meson setup with -Dgocc:tests=true"
fi
# (The list is read whole first: grep -q would stop reading early, and
# under pipefail the writer's broken pipe would read as a failure.)
defined=$(parts "$work/b")
for dir in tests examples bench; do
    grep -q "subprojects/gocc/$dir/" <<<"$defined" ||
        fail "asked for, libgocc's $dir/ targets are not defined"
done
n=$(ntests "$work/b")
[ "$n" -gt 0 ] || fail "-Dgocc:tests=true registered no test"
echo "$(parts "$work/b" | wc -l) targets and $n tests of libgocc when asked for"
echo
echo "subproject: library only by default, tests/examples/benchmarks on request ($((SECONDS - start)) s)"
