// chan.go - the channel and select scenarios of bench-chan.c in Go:
// goroutines instead of pthreads, chan uint64, static select statements.
// Every scenario checks the sum of what was received.
package main

import (
	"errors"
	"fmt"
	"sync"
)

var errLost = errors.New("values lost or duplicated")

func chanScenarios() []*scenario {
	s := []*scenario{
		{name: "chan/uncontended", unit: "ns/op", threads: 1, capacity: 1024, run: runUncontended},
	}
	caps := []int{1, 16, 1024}
	for _, c := range caps {
		s = append(s, prodcons(fmt.Sprintf("chan/spsc/cap%d", c), 1, 1, c))
	}
	sweep := []int{2, 4, 8, 16}
	for _, c := range caps {
		for _, t := range sweep {
			s = append(s, prodcons(fmt.Sprintf("chan/mpsc/cap%d/t%d", c, t), t, 1, c))
		}
	}
	for _, c := range caps {
		for _, t := range sweep {
			s = append(s, prodcons(fmt.Sprintf("chan/mpmc/cap%d/t%d", c, t), t, t, c))
		}
	}
	s = append(s,
		prodcons("chan/16p16c/cap64", 16, 16, 64),
		&scenario{name: "chan/pingpong", unit: "ns/roundtrip", threads: 2, run: runPingpong},
		selectRecv("select/2case/cap1", 2, 1),
		selectRecv("select/2case/cap1024", 2, 1024),
		selectRecv("select/4case/cap1", 4, 1),
		selectRecv("select/4case/cap1024", 4, 1024),
		&scenario{name: "select/both/t4/cap0", unit: "ns/op", threads: 8, run: runSelectBoth},
		&scenario{name: "select/try/empty2", unit: "ns/op", threads: 1, capacity: 1, run: runSelectTry},
		&scenario{name: "select/try/empty1", unit: "ns/op", threads: 1, capacity: 1, run: runSelectTry1},
	)
	// The names of bench-chan.c's task variants (the same Go code).
	tasks := []string{"chan/uncontended"}
	for _, c := range caps {
		tasks = append(tasks, fmt.Sprintf("chan/spsc/cap%d", c))
	}
	for _, c := range caps {
		for _, t := range sweep {
			tasks = append(tasks, fmt.Sprintf("chan/mpmc/cap%d/t%d", c, t))
		}
	}
	tasks = append(tasks, "chan/pingpong", "select/2case/cap1", "select/2case/cap1024",
		"select/try/empty1")
	return withTaskVariants(s, tasks...)
}

func runUncontended(b *bench, n int) {
	ch := make(chan uint64, 1024)
	for i := 0; i < n; i++ {
		ch <- uint64(i)
		if v := <-ch; v != uint64(i) {
			die("wrong value received", b.name, nil)
		}
	}
}

// prodcons: producers send disjoint ranges of 0 .. n-1, consumers receive
// their share of the count and add up what they got.
func prodcons(name string, producers, consumers, capacity int) *scenario {
	return &scenario{name: name, unit: "ns/op", threads: producers + consumers, capacity: capacity,
		run: func(b *bench, n int) {
			ch := make(chan uint64, capacity)
			sums := make([]uint64, consumers)
			var cwg, pwg sync.WaitGroup
			for i := 0; i < consumers; i++ {
				lo, hi := share(n, i, consumers)
				cwg.Add(1)
				go func(i, count int) {
					defer cwg.Done()
					var sum uint64
					for j := 0; j < count; j++ {
						sum += <-ch
					}
					sums[i] = sum
				}(i, hi-lo)
			}
			for i := 0; i < producers; i++ {
				lo, hi := share(n, i, producers)
				pwg.Add(1)
				go func(lo, hi int) {
					defer pwg.Done()
					for v := lo; v < hi; v++ {
						ch <- uint64(v)
					}
				}(lo, hi)
			}
			pwg.Wait()
			cwg.Wait()
			var sum uint64
			for _, s := range sums {
				sum += s
			}
			if sum != expectedSum(n) {
				die("check", b.name, errLost)
			}
		}}
}

// runPingpong: n round trips over two unbuffered channels.
func runPingpong(b *bench, n int) {
	ping, pong := make(chan uint64), make(chan uint64)
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	for i := 0; i < n; i++ {
		ping <- uint64(i)
		if v := <-pong; v != uint64(i)+1 {
			die("wrong value received", b.name, nil)
		}
	}
}

// selectRecv: k producers, each on its own channel; one consumer selects
// over all of them (a static select of 2 or 4 cases) until it has n values.
func selectRecv(name string, k, capacity int) *scenario {
	return &scenario{name: name, unit: "ns/op", threads: k + 1, capacity: capacity,
		run: func(b *bench, n int) {
			chs := make([]chan uint64, k)
			for i := range chs {
				chs[i] = make(chan uint64, capacity)
			}
			for i := 0; i < k; i++ {
				lo, hi := share(n, i, k)
				go func(ch chan uint64, lo, hi int) {
					for v := lo; v < hi; v++ {
						ch <- uint64(v)
					}
				}(chs[i], lo, hi)
			}
			var sum uint64
			if k == 2 {
				for i := 0; i < n; i++ {
					select {
					case v := <-chs[0]:
						sum += v
					case v := <-chs[1]:
						sum += v
					}
				}
			} else {
				for i := 0; i < n; i++ {
					select {
					case v := <-chs[0]:
						sum += v
					case v := <-chs[1]:
						sum += v
					case v := <-chs[2]:
						sum += v
					case v := <-chs[3]:
						sum += v
					}
				}
			}
			if sum != expectedSum(n) {
				die("check", b.name, errLost)
			}
		}}
}

// runSelectBoth: 4 goroutines select a send over 4 unbuffered channels, 4
// select a receive over the same 4 (crossbeam's select_both).
func runSelectBoth(b *bench, n int) {
	const k = 4
	var c [k]chan uint64
	for i := range c {
		c[i] = make(chan uint64)
	}
	var sums [k]uint64
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		lo, hi := share(n, i, k)
		wg.Add(2)
		go func(i, count int) {
			defer wg.Done()
			var sum, v uint64
			for j := 0; j < count; j++ {
				select {
				case v = <-c[0]:
				case v = <-c[1]:
				case v = <-c[2]:
				case v = <-c[3]:
				}
				sum += v
			}
			sums[i] = sum
		}(i, hi-lo)
		go func(lo, hi int) {
			defer wg.Done()
			for v := uint64(lo); v < uint64(hi); v++ {
				select {
				case c[0] <- v:
				case c[1] <- v:
				case c[2] <- v:
				case c[3] <- v:
				}
			}
		}(lo, hi)
	}
	wg.Wait()
	var sum uint64
	for _, s := range sums {
		sum += s
	}
	if sum != expectedSum(n) {
		die("check", b.name, errLost)
	}
}

// runSelectTry1: a one-case select with default on an empty channel, n
// times (the compiler makes it a non-blocking receive, selectnbrecv).
func runSelectTry1(b *bench, n int) {
	a := make(chan uint64, 1)
	for i := 0; i < n; i++ {
		select {
		case <-a:
			die("empty channel ready", b.name, nil)
		default:
		}
	}
}

// runSelectTry: select with default over two empty channels, n times.
func runSelectTry(b *bench, n int) {
	a, c := make(chan uint64, 1), make(chan uint64, 1)
	for i := 0; i < n; i++ {
		select {
		case <-a:
			die("empty channel ready", b.name, nil)
		case <-c:
			die("empty channel ready", b.name, nil)
		default:
		}
	}
}
