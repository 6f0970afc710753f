#!/usr/bin/env bash
# smoke.sh OUT_DIR - build the Go twin offline into OUT_DIR and run every
# scenario once, briefly (meson test --suite bench, beside the C smoke
# tests), so bench/go never rots. Exit 77 (meson: skipped) when Go or
# Debian's x/sync is not installed; bench/run installs them.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
command -v go >/dev/null 2>&1 || { echo "go is not installed: skipped"; exit 77; }
[ -d /usr/share/gocode/src/golang.org/x/sync/errgroup ] ||
    { echo "golang-golang-x-sync-dev is not installed: skipped"; exit 77; }
cd "$src"
GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$out/go-cache" GOPATH="$out/go-path" \
    go build -o "$out/bench-go" .
GOMAXPROCS=2 "$out/bench-go" -d 0.01 -t 1
