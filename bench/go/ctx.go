// ctx.go - the bench-ctx.c scenarios in Go: cancelling a context that N
// goroutines wait on (<-ctx.Done()), and the lateness of 1,000 deadlines
// (context.WithDeadline) pending at once. The direct-futex reference
// (baseline/ctx/cancel/N) exists only on the C side.
package main

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func ctxScenarios() []*scenario {
	return withTaskVariants([]*scenario{
		{name: "ctx/cancel/1000", unit: "ns/fanout", threads: 1000, run: fanout(1000)},
		{name: "ctx/cancel/10000", unit: "ns/fanout", threads: 10000, run: fanout(10000)},
		{name: "timer/deadline/1000", unit: "", threads: 1000, run: runTimers},
	}, "ctx/cancel/10000")
}

func scaled(n int) int {
	if smoke() {
		return max(n/100, 1)
	}
	return n
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// awaitBlocked waits until count reaches want (goroutines announce
// themselves just before they block), then gives the last of them time to
// park for real. Set-up only: the clock is stopped.
func awaitBlocked(count *int64, want int64) {
	for atomic.LoadInt64(count) < want {
		time.Sleep(100 * time.Microsecond)
	}
	if smoke() {
		time.Sleep(time.Millisecond)
	} else {
		time.Sleep(20 * time.Millisecond)
	}
}

// fanout: n times, N goroutines wait on ctx.Done(); the clock runs from
// cancel() until the last of them has called wg.Done().
func fanout(tasks int) func(b *bench, n int) {
	return func(b *bench, n int) {
		tasks := scaled(tasks)
		for i := 0; i < n; i++ {
			b.StopTimer()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var blocked int64
			wg.Add(tasks)
			for t := 0; t < tasks; t++ {
				go func() {
					atomic.AddInt64(&blocked, 1)
					<-ctx.Done()
					wg.Done()
				}()
			}
			awaitBlocked(&blocked, int64(tasks))
			b.StartTimer()
			cancel()
			wg.Wait()
			b.StopTimer()
			runtime.Gosched()
			b.StartTimer()
		}
	}
}

// runTimers: every goroutine blocks first, then the 1,000 contexts are made
// (all their timers pending at once, deadlines 20..120 ms ahead in a
// shuffled order) and handed over by closing start; each goroutine notes
// how late ctx.Done() woke it.
func runTimers(b *bench, n int) {
	timers, first, span := 1000, 20*time.Millisecond, 100*time.Millisecond
	if smoke() {
		timers, first, span = 20, time.Millisecond, time.Millisecond
	}
	late := make([]int64, 0, n*timers)
	for round := 0; round < n; round++ {
		start := make(chan struct{})
		ctxs := make([]context.Context, timers)
		cancels := make([]context.CancelFunc, timers)
		deadlines := make([]time.Time, timers)
		lates := make([]int64, timers)
		var ready int64
		var wg sync.WaitGroup
		wg.Add(timers)
		for i := 0; i < timers; i++ {
			go func(i int) {
				defer wg.Done()
				atomic.AddInt64(&ready, 1)
				<-start
				<-ctxs[i].Done()
				lates[i] = int64(time.Since(deadlines[i]))
			}(i)
		}
		for atomic.LoadInt64(&ready) < int64(timers) {
			time.Sleep(100 * time.Microsecond)
		}
		t0 := time.Now()
		for i := 0; i < timers; i++ {
			slot := (i * 7919) % timers
			deadlines[i] = t0.Add(first + span*time.Duration(slot)/time.Duration(timers))
			ctxs[i], cancels[i] = context.WithDeadline(context.Background(), deadlines[i])
		}
		close(start)
		wg.Wait()
		for i := range cancels {
			cancels[i]()
		}
		late = append(late, lates...)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	b.Metric("p50", "ns", float64(quantile(late, 0.50)), false)
	b.Metric("p99", "ns", float64(quantile(late, 0.99)), false)
}

// quantile of sorted v, nearest rank, as bench_quantile in harness.c.
func quantile(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	i := int(q*float64(len(v)-1) + 0.5)
	if i >= len(v) {
		i = len(v) - 1
	}
	return v[i]
}
