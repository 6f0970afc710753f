#!/usr/bin/env bash
# scripts/check-context-cross.sh - build tests/test-context.c with the task
# context switch for another architecture and run it under qemu-user:
# aarch64 (the assembly switch, plain and with branch protection, so its
# BTI landing pads are exercised) and, as a control, the portable
# swapcontext fallback there. Needs gcc-aarch64-linux-gnu and qemu-user
# (Debian); exits 77 (skipped) without them. The guard-page part is left
# out: qemu-user accepts MADV_GUARD_INSTALL without installing a guard.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cc=aarch64-linux-gnu-gcc
qemu=qemu-aarch64
if ! command -v "$cc" >/dev/null 2>&1 || ! command -v "$qemu" >/dev/null 2>&1; then
    echo "check-context-cross: skipped (needs $cc and $qemu: apt-get install gcc-aarch64-linux-gnu qemu-user)"
    exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf 'int main(void) { return 0; }\n' >"$out/probe.c"
if ! "$cc" -static "$out/probe.c" -o "$out/probe" 2>/dev/null || ! "$qemu" "$out/probe"; then
    echo "check-context-cross: skipped ($cc cannot build a static program, or $qemu cannot run it: apt-get install libc6-dev-arm64-cross)"
    exit 77
fi
status=0
for variant in plain bti ucontext; do
    flags=()
    case $variant in
    bti) flags=(-mbranch-protection=standard) ;;
    ucontext) flags=(-DGOCC_FORCE_UCONTEXT=1) ;;
    esac
    if ! "$cc" -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DGOCC_BUILDING \
        "${flags[@]}" -Iinclude -Isrc tests/test-context.c src/context.c \
        -o "$out/test-context-$variant" -lm -pthread -static; then
        echo "check-context-cross: aarch64 $variant: build failed"
        status=1
        continue
    fi
    if GOCC_TEST_NO_GUARD=1 "$qemu" "$out/test-context-$variant"; then
        echo "check-context-cross: aarch64 $variant: ok"
    else
        echo "check-context-cross: aarch64 $variant: FAILED"
        status=1
    fi
done
exit $status
