// pool.go - the bench-pool.c scenarios in Go: a worker pool built the
// usual way (a buffered channel of jobs drained by a fixed set of
// goroutines; submit is a send, shedding is select with default, a submit
// deadline is select on ctx.Done()), a goroutine pipeline with a slow
// stage, and sync.Pool beside plain allocation.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// workPool: workers goroutines run the jobs sent on a channel.
type workPool struct {
	jobs chan func()
	wg   sync.WaitGroup
}

func newWorkPool(workers, queue int) *workPool {
	p := &workPool{jobs: make(chan func(), queue)}
	p.wg.Add(workers)
	for i := 0; i < workers; i++ {
		go func() {
			defer p.wg.Done()
			for job := range p.jobs {
				job()
			}
		}()
	}
	return p
}

func (p *workPool) submit(job func()) { p.jobs <- job }

func (p *workPool) trySubmit(job func()) bool {
	select {
	case p.jobs <- job:
		return true
	default:
		return false
	}
}

func (p *workPool) submitCtx(ctx context.Context, job func()) error {
	select {
	case p.jobs <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown runs what is queued and waits for the workers.
func (p *workPool) shutdown() {
	close(p.jobs)
	p.wg.Wait()
}

func poolScenarios() []*scenario {
	s := []*scenario{
		{name: "workpool/throughput/4w/q1024", unit: "ns/job", threads: 4, capacity: 1024,
			run: runThroughput},
	}
	for _, l := range []struct {
		load float64
		tag  string
	}{{0.5, "0.5x"}, {1, "1x"}, {2, "2x"}, {4, "4x"}} {
		for _, mode := range []string{"block", "shed", "deadline"} {
			s = append(s, &scenario{name: "workpool/load" + l.tag + "/" + mode,
				unit: "ns/offered-job", threads: loadWorkers, capacity: loadQueue,
				run: loadRun(l.load, mode)})
		}
	}
	for _, c := range []int{1, 16, 1024} {
		s = append(s, &scenario{name: fmt.Sprintf("pipeline/slow/buf%d", c), unit: "ns/item",
			threads: 4, capacity: c, run: pipelineRun(c)})
	}
	s = append(s,
		&scenario{name: "pool/getput/t1", unit: "ns/op", threads: 1, run: poolRun(1, false)},
		&scenario{name: "pool/getput/t2", unit: "ns/op", threads: 2, run: poolRun(2, false)},
		&scenario{name: "pool/malloc-free/t1", unit: "ns/op", threads: 1, run: poolRun(1, true)},
		&scenario{name: "pool/malloc-free/t2", unit: "ns/op", threads: 2, run: poolRun(2, true)},
	)
	return withTaskVariants(s, "workpool/throughput/4w/q1024")
}

func runThroughput(b *bench, n int) {
	p := newWorkPool(4, 1024)
	for i := 0; i < n; i++ {
		p.submit(func() {})
	}
	p.shutdown()
}

// ---- offered load ----

const (
	loadWorkers  = 4
	loadQueue    = 64
	loadService  = time.Millisecond
	loadDeadline = time.Millisecond
)

var epoch = time.Now()

// now is monotonic nanoseconds, like bench_now_ns.
func now() int64 { return int64(time.Since(epoch)) }

// waitUntil sleeps while t is far, then yields until it comes.
func waitUntil(t int64) {
	for {
		left := t - now()
		if left <= 0 {
			return
		}
		if left > 200000 {
			time.Sleep(time.Duration(left - 150000))
		} else {
			runtime.Gosched()
		}
	}
}

// Peak memory as bench_rss_reset/bench_rss_peak do it (Linux only; -1
// elsewhere).
func statusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fields := strings.Fields(line[len(field)+1:])
			if len(fields) > 0 {
				v, err := strconv.ParseInt(fields[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

func rssReset() int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return -1
	}
	return statusKiB("VmRSS")
}

func rssPeak() int64 { return statusKiB("VmHWM") }

var errShed = errors.New("shed")

// measuredService is what a job's 1 ms sleep really takes here: the median
// of 15 sleeps in a goroutine, measured once (as service_ns in
// bench-pool.c). The offered loads are multiples of the capacity it gives.
var measuredService = func() func() int64 {
	var once sync.Once
	var v int64
	return func() int64 {
		once.Do(func() {
			samples := make([]int64, 15)
			done := make(chan struct{})
			go func() {
				for i := range samples {
					t := now()
					time.Sleep(loadService)
					samples[i] = now() - t
				}
				close(done)
			}()
			<-done
			sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
			v = samples[len(samples)/2]
		})
		return v
	}
}()

func loadRun(load float64, mode string) func(b *bench, n int) {
	return func(b *bench, n int) {
		capacity := 1e9 * loadWorkers / float64(measuredService()) // jobs/s
		interval := int64(1e9 / capacity / load)
		arrive := make([]int64, n)
		done := make([]int64, n)
		lat := make([]int64, 0, n)
		rss0 := rssReset()

		p := newWorkPool(loadWorkers, loadQueue)
		var blocked int64
		accepted := 0
		t0 := now() + 100000
		for i := 0; i < n; i++ {
			arrive[i] = t0 + int64(i)*interval
			waitUntil(arrive[i]) // open loop: keep the schedule
			i := i
			job := func() {
				time.Sleep(loadService)
				done[i] = now()
			}
			call := now()
			var err error
			switch mode {
			case "block":
				p.submit(job)
			case "shed":
				if !p.trySubmit(job) {
					err = errShed
				}
			default:
				// The request's own deadline: 1 ms after it arrived.
				deadline := epoch.Add(time.Duration(arrive[i]) + loadDeadline)
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				err = p.submitCtx(ctx, job)
				cancel()
			}
			blocked += now() - call
			if err == nil {
				accepted++
			}
		}
		p.shutdown()
		wall := now() - t0
		peak := rssPeak()
		for i := 0; i < n; i++ {
			if done[i] != 0 {
				lat = append(lat, done[i]-arrive[i])
			}
		}
		if len(lat) != accepted {
			die("accounting", b.name, nil)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.Metric("capacity", "jobs/s", capacity, true)
		b.Metric("accepted", "jobs/s", float64(accepted)*1e9/float64(wall), true)
		b.Metric("shed", "%", 100*float64(n-accepted)/float64(n), false)
		b.Metric("p50", "ns", float64(quantile(lat, 0.50)), false)
		b.Metric("p99", "ns", float64(quantile(lat, 0.99)), false)
		b.Metric("p99.9", "ns", float64(quantile(lat, 0.999)), false)
		b.Metric("blocked", "%", 100*float64(blocked)/float64(wall), false)
		if rss0 >= 0 && peak >= 0 {
			b.Metric("peakmem", "KiB", float64(max(int(peak-rss0), 0)), false)
		}
	}
}

// ---- pipeline with a slow stage ----

const slowService = 20 * time.Microsecond

type item struct {
	born int64
	seq  uint64
}

func pipelineRun(capacity int) func(b *bench, n int) {
	return func(b *bench, n int) {
		c1, c2, c3 := make(chan item, capacity), make(chan item, capacity), make(chan item, capacity)
		occupancy := make(chan int)
		go func() { // source
			for i := 0; i < n; i++ {
				c1 <- item{now(), uint64(i)}
			}
			close(c1)
		}()
		go func() { // pass
			for it := range c1 {
				c2 <- it
			}
			close(c2)
		}()
		go func() { // slow
			occ := 0
			for {
				occ += len(c1) + len(c2)
				it, ok := <-c2
				if !ok {
					break
				}
				t := now()
				for now()-t < int64(slowService) {
				}
				c3 <- it
			}
			close(c3)
			occupancy <- occ
		}()
		lat := make([]int64, 0, n)
		var seqsum uint64
		for it := range c3 { // the sink
			lat = append(lat, now()-it.born)
			seqsum += it.seq
		}
		occ := <-occupancy
		if len(lat) != n || seqsum != expectedSum(n) {
			die("check", b.name, errLost)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.Metric("p50", "ns", float64(quantile(lat, 0.50)), false)
		b.Metric("p99", "ns", float64(quantile(lat, 0.99)), false)
		b.Metric("occupancy", "items", float64(occ)/float64(n+1), false)
	}
}

// ---- sync.Pool and allocation ----

type object [64]byte

// sinks keep the objects alive past the compiler's escape analysis, one
// cache line per goroutine.
var sinks [2]struct {
	p *object
	_ [56]byte
}

func poolRun(threads int, alloc bool) func(b *bench, n int) {
	return func(b *bench, n int) {
		pool := sync.Pool{New: func() any { return new(object) }}
		var wg sync.WaitGroup
		for i := 0; i < threads; i++ {
			lo, hi := share(n, i, threads)
			wg.Add(1)
			go func(i, count int) {
				defer wg.Done()
				sink := &sinks[i]
				for j := 0; j < count; j++ {
					if alloc {
						sink.p = new(object)
					} else {
						o := pool.Get().(*object)
						sink.p = o
						pool.Put(o)
					}
				}
			}(i, hi-lo)
		}
		wg.Wait()
	}
}
