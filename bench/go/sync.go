// sync.go - the bench-sync.c scenarios in Go: goroutines, x/sync errgroup
// (WithContext, as gocc_group_new makes a context too) and semaphore,
// sync.Once, sync.WaitGroup, the L07 counters (sync.Mutex, sync/atomic,
// padded per-goroutine shards, a goroutine that owns the counter and
// receives increments on a channel), and the memory of N goroutines
// blocked on a channel.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

func syncScenarios() []*scenario {
	s := []*scenario{
		{name: "tasks/go", unit: "ns/task", threads: 2, run: runGo},
		{name: "spawn/1000", unit: "ns/task", threads: spawnBatch, run: runSpawn},
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
	s = withTaskVariants(s, "spawn/1000", "group/10000/nolimit")
	return append(s, &scenario{name: "task/mem/blocked", unit: "", threads: memTasks(),
		run: runMemBlocked})
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

const spawnBatch = 1000

// runSpawn: start 1,000 goroutines that each do trivial work (an atomic
// add), wait for all of them, again until n have run.
func runSpawn(b *bench, n int) {
	var wg sync.WaitGroup
	var ran int64
	for started := 0; started < n; {
		batch := min(n-started, spawnBatch)
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() {
				atomic.AddInt64(&ran, 1)
				wg.Done()
			}()
		}
		wg.Wait()
		started += batch
	}
	if atomic.LoadInt64(&ran) != int64(n) {
		die("check", b.name, errors.New("goroutines lost"))
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

// ---- memory: N goroutines blocked on a channel ----

// memTasks is N: BENCH_MEM_TASKS from the environment (bench/run
// --mem-tasks), else 10,000, as in bench-sync.c.
func memTasks() int {
	env := os.Getenv("BENCH_MEM_TASKS")
	if env == "" {
		return 10000
	}
	v, err := strconv.Atoi(env)
	if err != nil || v < 1 || v > 100000000 {
		fmt.Fprintln(os.Stderr, "bench-go: BENCH_MEM_TASKS wants a count of tasks (1..10^8)")
		os.Exit(2)
	}
	return v
}

// residentPages is the second field of /proc/self/statm, or -1.
func residentPages() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return -1
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// memBase: resident pages before this process's first round.
var memBase int64 = -1

// runMemBlocked: N goroutines block receiving from one channel; the resident
// size once they all are, less memBase, over N (bytes per goroutine).
func runMemBlocked(b *bench, n int) {
	tasks := memTasks()
	if smoke() {
		tasks = max(tasks/100, 1)
	}
	if memBase < 0 {
		memBase = residentPages()
	}
	if memBase < 0 {
		die("reading /proc/self/statm", b.name, nil)
	}
	page := int64(os.Getpagesize())
	for round := 0; round < n; round++ {
		gate := make(chan struct{})
		var wg sync.WaitGroup
		var blocked int64
		wg.Add(tasks)
		for i := 0; i < tasks; i++ {
			go func() {
				atomic.AddInt64(&blocked, 1)
				<-gate
				wg.Done()
			}()
		}
		for atomic.LoadInt64(&blocked) < int64(tasks) {
			time.Sleep(100 * time.Microsecond)
		}
		if smoke() {
			time.Sleep(time.Millisecond)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
		resident := residentPages()
		if resident < 0 {
			die("reading /proc/self/statm", b.name, nil)
		}
		b.Metric("pertask", "B/task", float64((resident-memBase)*page)/float64(tasks), false)
		close(gate)
		wg.Wait()
	}
}
