// bench-go: the libgocc benchmark scenarios written the idiomatic Go way
// (channels, select, context, x/sync errgroup and semaphore, sync.Pool, a
// buffered-channel worker pool, the net package over loopback), under the
// same names and with the same method and CSV as the C programs in bench/
// (see ../README.md). GOMAXPROCS
// is Go's to take from the environment; bench/run runs it with 2 and 1.
package main

import "os"

func main() {
	var all []*scenario
	all = append(all, chanScenarios()...)
	all = append(all, syncScenarios()...)
	all = append(all, ctxScenarios()...)
	all = append(all, poolScenarios()...)
	all = append(all, switchScenarios()...)
	all = append(all, netScenarios()...)
	os.Exit(benchMain(all))
}
