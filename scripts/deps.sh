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

# gocc_want_deps: what the build uses when present, installed best-effort
# (as root with apt-get; never an error): sys/sdt.h for the USDT probes
# (then `meson test probes` checks them in the built library).
gocc_want_deps() {
    [ -f /usr/include/sys/sdt.h ] && return 0
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
    echo "optional: installing systemtap-sdt-dev (USDT probes)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        systemtap-sdt-dev >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
              systemtap-sdt-dev >/dev/null 2>&1; } ||
        echo "optional: systemtap-sdt-dev not installed; building without probes"
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
