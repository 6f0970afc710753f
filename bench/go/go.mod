// The Go twin of the libgocc benchmarks (see ../README.md). It builds
// offline: x/sync comes from Debian's golang-golang-x-sync-dev, e.g.
//   GOPROXY=off GOFLAGS=-mod=mod go build -o bench-go .
// (bench/run does this).
module gocc.invalid/bench

go 1.19

require golang.org/x/sync v0.0.0-00010101000000-000000000000

replace golang.org/x/sync => /usr/share/gocode/src/golang.org/x/sync
