// sync.go - the bench-sync.c scenarios in Go: goroutines, x/sync errgroup
// (WithContext, as gocc_group_new makes a context too) and semaphore,
// sync.Once, sync.WaitGroup, and the L07 counters (sync.Mutex,
// sync/atomic, padded per-goroutine shards, a goroutine that owns the
// counter and receives increments on a channel).
package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

func syncScenarios() []*scenario {
	return []*scenario{
		{name: "tasks/go", unit: "ns/task", threads: 2, run: runGo},
		{name: "group/10000/nolimit", unit: "ns/task", threads: 0, run: groupRun(-1)},
		{name: "group/10000/limit8", unit: "ns/task", threads: 8, run: groupRun(8)},
		{name: "sem/uncontended", unit: "ns/op", threads: 1, capacity: 8, run: runSemUncontended},
		{name: "sem/t16/w4of8", unit: "ns/op", threads: 16, capacity: 8, run: runSemContended},
		{name: "once/fastpath", unit: "ns/op", threads: 1, run: runOnce},
		{name: "waitgroup/add-done", unit: "ns/op", threads: 1, run: runWaitGroup},
		{name: "counter/mutex/t4", unit: "ns/op", threads: counterThreads, run: counterMutex},
		{name: "counter/atomic/t4", unit: "ns/op", threads: counterThreads, run: counterAtomic},
		{name: "counter/sharded/t4", unit: "ns/op", threads: counterThreads, run: counterSharded},
		{name: "counter/channel/t4", unit: "ns/op", threads: counterThreads + 1,
			capacity: counterChanCap, run: counterChannel},
	}
}

// runGo: start a trivial goroutine and wait for it, one at a time.
func runGo(b *bench, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}

// groupRun: batches of 10,000 trivial tasks through an errgroup.
func groupRun(limit int) func(b *bench, n int) {
	return func(b *bench, n int) {
		for n > 0 {
			batch := min(n, 10000)
			g, _ := errgroup.WithContext(context.Background())
			g.SetLimit(limit)
			for i := 0; i < batch; i++ {
				g.Go(func() error { return nil })
			}
			if err := g.Wait(); err != nil {
				die("errgroup Wait", b.name, err)
			}
			n -= batch
		}
	}
}

func runSemUncontended(b *bench, n int) {
	s := semaphore.NewWeighted(8)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := s.Acquire(ctx, 1); err != nil {
			die("Acquire", b.name, err)
		}
		s.Release(1)
	}
}

// runSemContended: 16 goroutines acquire 4 + release 4 of a semaphore of 8.
func runSemContended(b *bench, n int) {
	const workers = 16
	s := semaphore.NewWeighted(8)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		lo, hi := share(n, i, workers)
		wg.Add(1)
		go func(count int) {
			defer wg.Done()
			for j := 0; j < count; j++ {
				if err := s.Acquire(ctx, 4); err != nil {
					die("Acquire", b.name, err)
				}
				s.Release(4)
			}
		}(hi - lo)
	}
	wg.Wait()
}

var onceResult int

func runOnce(b *bench, n int) {
	var once sync.Once
	for i := 0; i < n; i++ {
		once.Do(func() { onceResult = 42 })
		if onceResult != 42 {
			die("once", b.name, nil)
		}
	}
}

func runWaitGroup(b *bench, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		wg.Done()
	}
}

// ---- L07 counters ----

const (
	counterThreads = 4
	counterChanCap = 1024
)

var errCount = errors.New("increments lost")

// parallel runs body(count) on counterThreads goroutines sharing n.
func parallel(n int, body func(i, count int)) {
	var wg sync.WaitGroup
	for i := 0; i < counterThreads; i++ {
		lo, hi := share(n, i, counterThreads)
		wg.Add(1)
		go func(i, count int) {
			defer wg.Done()
			body(i, count)
		}(i, hi-lo)
	}
	wg.Wait()
}

func counterMutex(b *bench, n int) {
	var mu sync.Mutex
	var count int64
	parallel(n, func(_, k int) {
		for j := 0; j < k; j++ {
			mu.Lock()
			count++
			mu.Unlock()
		}
	})
	if count != int64(n) {
		die("check", b.name, errCount)
	}
}

func counterAtomic(b *bench, n int) {
	var count int64
	parallel(n, func(_, k int) {
		for j := 0; j < k; j++ {
			atomic.AddInt64(&count, 1)
		}
	})
	if atomic.LoadInt64(&count) != int64(n) {
		die("check", b.name, errCount)
	}
}

// shard is one goroutine's counter on its own cache line.
type shard struct {
	n int64
	_ [56]byte
}

func counterSharded(b *bench, n int) {
	shards := make([]shard, counterThreads)
	parallel(n, func(i, k int) {
		s := &shards[i]
		for j := 0; j < k; j++ {
			s.n++
		}
	})
	var total int64
	for i := range shards {
		total += shards[i].n
	}
	if total != int64(n) {
		die("check", b.name, errCount)
	}
}

// counterChannel: "share memory by communicating": one goroutine owns the
// counter, the others send it increments.
func counterChannel(b *bench, n int) {
	inc := make(chan int64, counterChanCap)
	result := make(chan int64)
	go func() {
		var count int64
		for v := range inc {
			count += v
		}
		result <- count
	}()
	parallel(n, func(_, k int) {
		for j := 0; j < k; j++ {
			inc <- 1
		}
	})
	close(inc)
	if <-result != int64(n) {
		die("check", b.name, errCount)
	}
}
