// harness.go - the measuring method of bench/harness.c, in Go: calibrate n
// (from 1) until one call of run(n) takes >= min(150 ms, trial duration) of
// wall time, scale n so one call lasts about the trial duration, run the
// trials, print one CSV row per scenario
//
//	name,unit,best_ns_op,worst_ns_op,threads,capacity
//
// plus one row name/suffix per metric a scenario records (best and worst in
// the metric's own unit). StopTimer/StartTimer leave set-up out of the
// measured time, as in testing.B. Flags: -d SECONDS, -t TRIALS,
// -f SUBSTRING (^ and $ anchor it), -l; a duration below 0.05 s is the
// smoke mode. Change this and harness.c together.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// scenario is one benchmark: run does n operations.
type scenario struct {
	name     string
	unit     string // "" : metric rows only
	threads  int
	capacity int
	run      func(b *bench, n int)
}

type metric struct {
	suffix, unit string
	higherBetter bool
	best, worst  float64
}

// bench is the state of the scenario being measured. Only the goroutine
// running run calls its methods.
type bench struct {
	name       string
	started    time.Time
	total      time.Duration
	running    bool
	collecting bool
	metrics    []*metric
}

var trialDuration = 1.0

func smoke() bool { return trialDuration < 0.05 }

// StopTimer and StartTimer bracket set-up that is not measured.
func (b *bench) StopTimer() {
	if b.running {
		b.total += time.Since(b.started)
		b.running = false
	}
}

func (b *bench) StartTimer() {
	if !b.running {
		b.started = time.Now()
		b.running = true
	}
}

// Metric records value for this trial (ignored during calibration).
func (b *bench) Metric(suffix, unit string, value float64, higherBetter bool) {
	if !b.collecting {
		return
	}
	for _, m := range b.metrics {
		if m.suffix == suffix {
			if (higherBetter && value > m.best) || (!higherBetter && value < m.best) {
				m.best = value
			}
			if (higherBetter && value < m.worst) || (!higherBetter && value > m.worst) {
				m.worst = value
			}
			return
		}
	}
	b.metrics = append(b.metrics, &metric{suffix, unit, higherBetter, value, value})
}

// die reports a broken scenario (a lost value, an unexpected error).
func die(what, scenario string, err error) {
	fmt.Fprintf(os.Stderr, "bench-go: %s in %s (%v)\n", what, scenario, err)
	os.Exit(1)
}

// timeRun returns the wall time of run(n) and the measured part of it.
func (b *bench) timeRun(s *scenario, n int) (wall, measured float64) {
	b.total = 0
	t0 := time.Now()
	b.started = t0
	b.running = true
	s.run(b, n)
	wall = time.Since(t0).Seconds()
	b.StopTimer()
	return wall, b.total.Seconds()
}

func measure(s *scenario, duration float64, trials int) {
	b := &bench{name: s.name}
	target := duration
	if target > 0.150 {
		target = 0.150
	}
	n := 1
	t, _ := b.timeRun(s, n)
	for t < target {
		want := float64(n) * 100
		if t > 0 {
			want = float64(n) * target / t * 1.2
		}
		next := int(want)
		if want > float64(n)*100 {
			next = n * 100
		}
		if next <= n {
			next = n + 1
		}
		n = next
		t, _ = b.timeRun(s, n)
	}
	tn := int(float64(n) * duration / t)
	if tn < 1 {
		tn = 1
	}
	var best, worst float64
	b.collecting = true
	for i := 0; i < trials; i++ {
		_, m := b.timeRun(s, tn)
		ns := m * 1e9 / float64(tn)
		if i == 0 || ns < best {
			best = ns
		}
		if i == 0 || ns > worst {
			worst = ns
		}
	}
	b.collecting = false
	if s.unit != "" {
		fmt.Printf("%s,%s,%.1f,%.1f,%d,%d\n", s.name, s.unit, best, worst, s.threads, s.capacity)
	}
	for _, m := range b.metrics {
		fmt.Printf("%s/%s,%s,%.1f,%.1f,%d,%d\n", s.name, m.suffix, m.unit, m.best, m.worst,
			s.threads, s.capacity)
	}
}

func benchMain(scenarios []*scenario) int {
	flags := flag.NewFlagSet("bench-go", flag.ContinueOnError)
	d := flags.Float64("d", 1.0, "duration of one trial in seconds (below 0.05: smoke mode)")
	trials := flags.Int("t", 3, "trials per scenario; best and worst reported")
	filter := flags.String("f", "", "run only scenarios whose name contains `SUBSTRING` (^ and $ anchor it)")
	list := flags.Bool("l", false, "list the scenario names and exit")
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "usage: bench-go [-d SECONDS] [-t TRIALS] [-f SUBSTRING] [-l]\n")
		flags.PrintDefaults()
		fmt.Fprintf(flags.Output(), "Output: CSV, name,unit,best_ns_op,worst_ns_op,threads,capacity\n")
	}
	if err := flags.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if flags.NArg() != 0 || !(*d > 0) || *trials < 1 {
		flags.Usage()
		return 2
	}
	trialDuration = *d
	var chosen []*scenario
	for _, s := range scenarios {
		if matchesFilter(s.name, *filter) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		fmt.Fprintf(os.Stderr, "bench-go: no scenario matches %q\n", *filter)
		return 2
	}
	if !*list {
		fmt.Println("name,unit,best_ns_op,worst_ns_op,threads,capacity")
	}
	for _, s := range chosen {
		if *list {
			fmt.Println(s.name)
		} else {
			measure(s, *d, *trials)
		}
	}
	return 0
}

// matchesFilter: filter is a substring of name; a leading ^ anchors it at
// the start, a trailing $ at the end (as in harness.c).
func matchesFilter(name, filter string) bool {
	start := strings.HasPrefix(filter, "^")
	if start {
		filter = filter[1:]
	}
	end := strings.HasSuffix(filter, "$")
	if end {
		filter = filter[:len(filter)-1]
	}
	switch {
	case start && end:
		return name == filter
	case start:
		return strings.HasPrefix(name, filter)
	case end:
		return strings.HasSuffix(name, filter)
	}
	return strings.Contains(name, filter)
}

// share returns the part [lo, hi) of 0 .. n-1 that worker i of k handles.
func share(n, i, k int) (lo, hi int) {
	per, rem := n/k, n%k
	lo = i*per + min(i, rem)
	hi = lo + per
	if i < rem {
		hi++
	}
	return
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// expectedSum is 0 + 1 + ... + n-1.
func expectedSum(n int) uint64 { return uint64(n) * uint64(n-1) / 2 }

// withTaskVariants appends, for each named scenario of s, the same scenario
// under the name of its libgocc task variant, "task/" + name. libgocc's
// task variants start their producers, consumers and workers with gocc_go;
// Go's are goroutines under either name, so only the name differs: it lets
// bench/run and report.py pair each task variant with Go in the same run.
// A name that is not in s is a mistake in the caller: it panics.
func withTaskVariants(s []*scenario, names ...string) []*scenario {
	for _, name := range names {
		var found *scenario
		for _, sc := range s {
			if sc.name == name {
				found = sc
				break
			}
		}
		if found == nil {
			panic("withTaskVariants: no scenario " + name)
		}
		alias := *found
		alias.name = "task/" + name
		s = append(s, &alias)
	}
	return s
}
