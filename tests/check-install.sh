#!/usr/bin/env bash
# check-install.sh SRCDIR VERSION - the README's install commands work as
# written. The block of README.md between the lines
#
#     <!-- install-commands: ...
#     <!-- end of install-commands -->
#
# (its ```sh fence stripped) is run as it is, by bash with -e, in a copy of
# the source tree holding the consumer example's main.c as app.c, with HOME
# a fresh temporary directory (the block installs into $HOME/.local: a
# staged prefix) and neither PKG_CONFIG_PATH nor LD_LIBRARY_PATH set. So
# the README and this test cannot drift: the test has no install commands
# of its own. Then:
#   - the block's last command, ./app, printed
#     "make consumer: libgocc VERSION, sum 6" (it ran against the install);
#   - the header, the shared and static libraries, gocc.pc and the CMake
#     files are under the staged prefix, the libraries in the directory the
#     block's PKG_CONFIG_PATH names;
#   - app needs libgocc.so.0 and finds it in the staged prefix through its
#     rpath (readelf, ldd), not through a system copy;
#   - the block still says what the README promises around it: setup with a
#     prefix, install, PKG_CONFIG_PATH, the rpath, and -Dtests=false.
# The block's PKG_CONFIG_PATH is Debian's and Ubuntu's multiarch one: where
# dpkg-architecture is missing the test is skipped (exit 77), and so it is
# without a C compiler.
set -euo pipefail

src=$1 version=$2

if ! command -v dpkg-architecture >/dev/null 2>&1; then
    echo "skipped: no dpkg-architecture (the README's commands are Debian's and Ubuntu's)"
    exit 77
fi
if ! command -v cc >/dev/null 2>&1; then
    echo "skipped: no C compiler (cc)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gocc-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS
step() { printf '\n--- %s (%ds)\n' "$*" $((SECONDS - start)); }
fail() { echo "FAIL: $*"; exit 1; }

step "the install-commands block of README.md"
block=$(awk '
    /^<!-- install-commands:/ { inside = 1; next }
    /^<!-- end of install-commands -->/ { inside = 0; next }
    inside && /^```/ { next }
    inside { print }' "$src/README.md")
[ -n "$block" ] || fail "README.md has no install-commands block"
echo "$block"
for want in 'meson setup .*--prefix' 'meson install' 'PKG_CONFIG_PATH=.*/lib/.*pkgconfig' \
            '-Wl,-rpath,' '-Dtests=false'; do
    grep -Eq -- "$want" <<<"$block" || fail "the block no longer has /$want/"
done

step "a copy of the source tree"
# The files git knows of (tracked or new), else everything but build
# directories (those holding meson-private/).
copy=$work/src
mkdir -p "$copy"
files=()
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
   [ "$(git -C "$src" rev-parse --show-toplevel)" = "$(cd "$src" && pwd -P)" ]; then
    while IFS= read -r -d '' f; do
        [ -e "$src/$f" ] && files+=("$f")   # not a tracked file deleted in the work tree
    done < <(cd "$src" && git ls-files -z --cached --others --exclude-standard)
else
    while IFS= read -r -d '' f; do
        files+=("$f")
    done < <(cd "$src" && find . \( -name .git -o -exec test -d '{}/meson-private' \; \) -prune \
                              -o \( -type f -o -type l \) -print0)
fi
[ "${#files[@]}" -gt 0 ] || fail "no files to copy in $src"
(cd "$src" && cp -P --parents -t "$copy" "${files[@]}")
[ -f "$copy/meson.build" ] || fail "could not copy the source tree"
cp "$src/examples/consumer/make/main.c" "$copy/app.c"

step "run the block (HOME=$work/home)"
mkdir -p "$work/home"
out=$(cd "$copy" && env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR -u LD_LIBRARY_PATH \
          HOME="$work/home" bash -euo pipefail -c "$block" 2>&1) ||
    { echo "$out"; fail "the README's install commands failed"; }
echo "$out" | tail -n 5
last=$(tail -n 1 <<<"$out")
[ "$last" = "make consumer: libgocc $version, sum 6" ] || fail "./app printed: $last"

step "what was installed, and what app runs with"
prefix=$work/home/.local
libdir=$prefix/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in "$prefix/include/gocc.h" "$libdir/libgocc.so.0" "$libdir/libgocc.a" \
         "$libdir/pkgconfig/gocc.pc" "$libdir/cmake/gocc/gocc-config.cmake"; do
    [ -e "$f" ] || fail "not installed: $f"
done
(cd "$prefix" && find . \( -type f -o -type l \) | sort)
app=$copy/app
if command -v readelf >/dev/null 2>&1; then
    readelf -d "$app" | grep -q 'NEEDED.*libgocc\.so\.0' || fail "app is not linked to libgocc.so.0"
    rpath=$(readelf -d "$app" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
    echo "app's rpath: $rpath"
    [ "$rpath" = "$libdir" ] || fail "app's rpath is '$rpath', not $libdir"
fi
if command -v ldd >/dev/null 2>&1; then
    found=$(env -u LD_LIBRARY_PATH ldd "$app" | awk '$1 == "libgocc.so.0" { print $3 }')
    echo "ldd: libgocc.so.0 => $found"
    [ "$found" -ef "$libdir/libgocc.so.0" ] || fail "app loads libgocc.so.0 from '$found', not the staged prefix"
fi
echo
echo "the README's install commands installed libgocc $version and built a program against it ($((SECONDS - start)) s)"
