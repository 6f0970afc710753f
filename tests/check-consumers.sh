#!/usr/bin/env bash
# check-consumers.sh - a broken install is caught here: stage `meson install`
# of the build under test in a temporary directory, then build and run the
# three out-of-tree projects of examples/consumer/ against it, as a user of
# each build system would:
#   make    pkg-config --cflags --libs gocc        (PKG_CONFIG_PATH -> stage)
#   cmake   find_package(gocc), gocc::gocc shared and GOCC_USE_STATIC_LIBS
#           (CMAKE_PREFIX_PATH -> stage)
#   meson   dependency('gocc') found by pkg-config in the stage, and again
#           as a subproject (subprojects/gocc -> this source tree, so the
#           wrap fetches nothing: offline)
# Each program must print "<tool> consumer: libgocc VERSION, sum 6" and exit 0.
# A consumer whose tool (make, cmake, a C compiler) is missing is skipped
# with the reason; exit 77 (meson: SKIP) when none could run.
#
#   check-consumers.sh MESON SRCDIR BUILDDIR PREFIX LIBDIR INCLUDEDIR VERSION
set -euo pipefail

meson=$1 src=$2 build=$3 prefix=$4 libdir=$5 includedir=$6 version=$7
# Absolute libdir/includedir (outside the prefix) stay as they are.
[[ $libdir = /* ]] || libdir=$prefix/$libdir
[[ $includedir = /* ]] || includedir=$prefix/$includedir

work=$(mktemp -d "${TMPDIR:-/tmp}/gocc-consumers.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
start=$SECONDS

step() { printf '\n--- %s (%ds)\n' "$*" $((SECONDS - start)); }
fail() { echo "FAIL: $*"; exit 1; }

# run_app TOOL EXE: the program runs against the staged library and says so.
run_app() {
    local out
    out=$(LD_LIBRARY_PATH=$stage$libdir "$2") || fail "$1 consumer exited $?: $out"
    echo "$out"
    [ "$out" = "$1 consumer: libgocc $version, sum 6" ] || fail "$1 consumer printed: $out"
}

# linked_shared EXE: 0 when EXE needs libgocc.so at run time; linked_static
# EXE: 0 when it does not. Both hold (nothing checked) without readelf.
have_readelf=false
command -v readelf >/dev/null 2>&1 && have_readelf=true
linked_shared() { ! $have_readelf || readelf -d "$1" | grep -q 'NEEDED.*libgocc\.so'; }
linked_static() { ! $have_readelf || ! readelf -d "$1" | grep -q 'NEEDED.*libgocc\.so'; }

step "meson install --destdir into a stage"
"$meson" install -C "$build" --destdir "$stage" --no-rebuild --quiet
(cd "$stage" && find . \( -type f -o -type l \) | sort)
for f in "$includedir/gocc.h" "$libdir/libgocc.a" "$libdir/libgocc.so" \
         "$libdir/pkgconfig/gocc.pc" "$libdir/cmake/gocc/gocc-config.cmake" \
         "$libdir/cmake/gocc/gocc-config-version.cmake"; do
    [ -e "$stage$f" ] || fail "not installed: $f"
done

# pkg-config sees only the stage, and prefixes its paths with it.
export PKG_CONFIG_LIBDIR=$stage$libdir/pkgconfig
export PKG_CONFIG_PATH=$stage$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$stage
ran=0 skipped=()
cc_ok=true
command -v "${CC:-cc}" >/dev/null 2>&1 || cc_ok=false

# --- make + pkg-config
if ! command -v make >/dev/null 2>&1; then
    skipped+=("make: no make")
elif ! command -v pkg-config >/dev/null 2>&1; then
    skipped+=("make: no pkg-config")
elif ! $cc_ok; then
    skipped+=("make: no C compiler (cc)")
else
    step "make (pkg-config --cflags --libs gocc: $(pkg-config --cflags --libs gocc))"
    cp -r "$src/examples/consumer/make" "$work/make"
    make -s -C "$work/make"
    linked_shared "$work/make/app" || fail "make consumer is not linked to libgocc.so"
    run_app make "$work/make/app"
    ran=$((ran + 1))
fi

# --- cmake + find_package, shared then static
if ! command -v cmake >/dev/null 2>&1; then
    skipped+=("cmake: no cmake")
else
    gen=()
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    cp -r "$src/examples/consumer/cmake" "$work/cmake"
    b=$work/cmake-build
    for kind in shared static; do
        # One build tree, configured again: the compiler checks run once.
        step "cmake: find_package(gocc), gocc::gocc $kind"
        cmake -S "$work/cmake" -B "$b" "${gen[@]}" -DCMAKE_PREFIX_PATH="$stage$prefix" \
            -DGOCC_USE_STATIC_LIBS="$([ $kind = static ] && echo ON || echo OFF)" >"$work/cmake.log" 2>&1 ||
            { cat "$work/cmake.log"; fail "cmake configure ($kind)"; }
        found=$(sed -n 's/^gocc_DIR:PATH=//p' "$b/CMakeCache.txt")
        [ "$found" = "$stage$libdir/cmake/gocc" ] || fail "cmake found gocc in '$found', not in the stage"
        cmake --build "$b" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake build ($kind)"; }
        if [ $kind = shared ]; then
            linked_shared "$b/app" || fail "gocc::gocc did not link libgocc.so"
        else
            linked_static "$b/app" || fail "GOCC_USE_STATIC_LIBS=ON still linked libgocc.so"
        fi
        run_app cmake "$b/app"
    done
    ran=$((ran + 1))
fi

# --- meson: the staged install through pkg-config, then the subproject
step "meson: dependency('gocc') from the stage (pkg-config)"
cp -r "$src/examples/consumer/meson" "$work/meson"
"$meson" setup "$work/meson-installed" "$work/meson" --wrap-mode=nofallback >"$work/meson.log" 2>&1 ||
    { cat "$work/meson.log"; fail "meson setup (installed)"; }
ninja -C "$work/meson-installed" >"$work/meson.log" 2>&1 || { cat "$work/meson.log"; fail "meson build (installed)"; }
linked_shared "$work/meson-installed/app" || fail "meson consumer is not linked to the staged libgocc.so"
run_app meson "$work/meson-installed/app"

step "meson: libgocc as a subproject (subprojects/gocc -> $src)"
# Nothing of the stage: the subproject is built from this source tree.
unset PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
ln -s "$src" "$work/meson/subprojects/gocc"
"$meson" setup "$work/meson-sub" "$work/meson" --wrap-mode=forcefallback -Dbuildtype=plain \
    >"$work/meson.log" 2>&1 || { cat "$work/meson.log"; fail "meson setup (subproject)"; }
grep -q "Subproject gocc finished" "$work/meson.log" || { cat "$work/meson.log"; fail "no gocc subproject"; }
ninja -C "$work/meson-sub" >"$work/meson.log" 2>&1 || { cat "$work/meson.log"; fail "meson build (subproject)"; }
linked_static "$work/meson-sub/app" || fail "the subproject's gocc_dep linked libgocc.so"
run_app meson "$work/meson-sub/app"
ran=$((ran + 1))

echo
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "skipped $s"; done
echo "$ran of 3 consumers built and ran against the staged install in $((SECONDS - start)) s"
[ "$ran" -gt 0 ] || exit 77
