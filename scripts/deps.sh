# shellcheck shell=bash
# scripts/deps.sh - sourced by scripts/test.sh and scripts/tour.sh.
#
# gocc_need_deps: make sure the build tools are there: meson, ninja,
# pkg-config, a C compiler (cc) and cmocka (the unit tests' framework).
# When something is missing and we are root, install it with apt-get
# (Debian/Ubuntu, non-interactive); when not root, say what to install and
# return 1.

gocc_missing_deps() {
    local missing=()
    command -v meson >/dev/null 2>&1 || missing+=(meson)
    command -v ninja >/dev/null 2>&1 || missing+=(ninja)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v cc >/dev/null 2>&1 || missing+=(cc)
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists cmocka; then
        missing+=(cmocka)
    fi
    echo "${missing[*]:-}"
}

gocc_need_deps() {
    local missing
    missing=$(gocc_missing_deps)
    [ -z "$missing" ] && return 0
    local pkgs="meson ninja-build pkg-config gcc libc6-dev libcmocka-dev"
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing: $missing" >&2
        echo "install them (Debian/Ubuntu) with:" >&2
        echo "  sudo apt-get install -y $pkgs" >&2
        echo "or run this script as root, which installs them." >&2
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing: $missing, and no apt-get here to install them with" >&2
        return 1
    fi
    echo "missing: $missing; installing: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $pkgs
    missing=$(gocc_missing_deps)
    if [ -n "$missing" ]; then
        echo "still missing after apt-get: $missing" >&2
        return 1
    fi
}

# gocc_want_pkg PACKAGE WHY CHECK...: when the command CHECK... fails,
# install the Debian PACKAGE best-effort (as root with apt-get; never an
# error: without it, what WHY names is skipped).
gocc_want_pkg() {
    local pkg=$1 why=$2
    shift 2
    "$@" >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
    echo "optional: installing $pkg ($why)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "$pkg" >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
              "$pkg" >/dev/null 2>&1; } ||
        echo "optional: $pkg not installed; going on without $why"
    return 0
}

# gocc_have_header H: the C compiler finds <H> (wherever it lives: Debian
# puts sys/sdt.h under /usr/include/<multiarch>/).
gocc_have_header() {
    printf '#include <%s>\n' "$1" | cc -E -x c - >/dev/null 2>&1
}

# gocc_want_deps: what the build and tests use when present: sys/sdt.h for
# the USDT probes (then `meson test probes` checks them in the built
# library), doxygen for the `docs` target and the `doxygen` test, cmake for
# the CMake project of the `consumers` test, spin for the model check of
# the select protocol (docs/model/check.sh).
gocc_want_deps() {
    gocc_want_pkg systemtap-sdt-dev "USDT probes" gocc_have_header sys/sdt.h
    gocc_want_pkg doxygen "the API reference check" command -v doxygen
    gocc_want_pkg cmake "the CMake consumer check" command -v cmake
    gocc_want_pkg spin "the model check" command -v spin
    gocc_want_pkg patch "the mutation check" command -v patch
    gocc_want_pkg gcc-aarch64-linux-gnu "the aarch64 context switch check" \
        command -v aarch64-linux-gnu-gcc
    gocc_want_pkg libc6-dev-arm64-cross "the aarch64 context switch check" \
        test -d /usr/aarch64-linux-gnu/include
    gocc_want_pkg qemu-user "the aarch64 context switch check" command -v qemu-aarch64
    return 0
}

# gocc_want_fuzz_deps: clang with libFuzzer and the sanitizer runtimes, for
# the bounded fuzz run (tests/fuzz/run.sh; skipped without them). Debian:
# clang, and libclang-rt-dev (libclang-rt-14-dev on bookworm).
gocc_want_fuzz_deps() {
    local check
    check="$(dirname "${BASH_SOURCE[0]}")/../tests/fuzz/run.sh"
    gocc_want_pkg clang "the fuzz run" command -v clang
    gocc_want_pkg libclang-rt-dev "the fuzz run" "$check" --check
    gocc_want_pkg libclang-rt-14-dev "the fuzz run" "$check" --check
    return 0
}

# gocc_setup DIR [meson options...]: configure DIR, reusing it when it is
# already a meson build directory (the options are applied again), making
# it afresh otherwise.
gocc_setup() {
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        rm -rf "$dir"
        meson setup "$dir" "$@"
    fi
}
