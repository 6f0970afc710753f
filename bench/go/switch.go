// switch.go - the bench-switch.c scenarios in Go: a switch between two
// goroutines on one P. bench-switch.c runs libgocc with procs = 1 (one
// worker), so each scenario here sets GOMAXPROCS to 1 while it runs (the
// change, a stop-the-world, is left out of the time) and puts it back
// after: the Go(2) and Go(1) columns of these rows both measure one P.
package main

import (
	"runtime"
	"sync"
)

func switchScenarios() []*scenario {
	return []*scenario{
		{name: "task/switch/yield", unit: "ns/switch", threads: 2, run: oneP(runYield)},
		{name: "task/switch/pingpong", unit: "ns/switch", threads: 2, run: oneP(runSwitchPingpong)},
	}
}

// oneP runs run with GOMAXPROCS=1, outside the measured time.
func oneP(run func(b *bench, n int)) func(b *bench, n int) {
	return func(b *bench, n int) {
		b.StopTimer()
		old := runtime.GOMAXPROCS(1)
		b.StartTimer()
		run(b, n)
		b.StopTimer()
		runtime.GOMAXPROCS(old)
		b.StartTimer()
	}
}

// runYield: two goroutines call runtime.Gosched back and forth, n in all.
func runYield(b *bench, n int) {
	var wg sync.WaitGroup
	wg.Add(2)
	for _, k := range []int{n / 2, n - n/2} {
		go func(k int) {
			defer wg.Done()
			for i := 0; i < k; i++ {
				runtime.Gosched()
			}
		}(k)
	}
	wg.Wait()
}

// runSwitchPingpong: two goroutines, ping-pong over two unbuffered
// channels; (n + 1) / 2 round trips of two switches each.
func runSwitchPingpong(b *bench, n int) {
	rounds := (n + 1) / 2
	ping, pong := make(chan uint64), make(chan uint64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			ping <- uint64(i)
			if v := <-pong; v != uint64(i)+1 {
				die("wrong value received", b.name, nil)
			}
		}
	}()
	wg.Wait()
}
