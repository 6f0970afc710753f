// net.go - the bench-net.c scenarios in Go's net package: a loopback TCP
// echo over 1,000 connections (a goroutine per client and per server
// connection, net.Listen and net.Dial, TCP_NODELAY as Go sets it), and
// 10,000 idle connections (both ends of socketpairs made net.Conns with
// net.FileConn) with a goroutine blocked in Read on each, cancelled by
// SetReadDeadline(now) on every connection, Go's way to end a blocked Read
// without closing. Rows and units as in bench-net.c.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	echoConns = 1000
	idleConns = 10000
	latSlots  = 1024
)

var nofileLimit = raiseNofile()

// raiseNofile raises the soft descriptor limit to the hard one (Go 1.19
// does so itself when os is imported; this says it) and returns it.
func raiseNofile() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if rl.Cur > 1<<20 {
		return 1 << 20
	}
	return int(rl.Cur)
}

func netScenarios() []*scenario {
	return []*scenario{
		{name: "net/echo/64", unit: "", threads: echoConns, capacity: 64, run: echo(64)},
		{name: "net/echo/16k", unit: "", threads: echoConns, capacity: 16384, run: echo(16384)},
		{name: "net/idle/10000", unit: "", threads: idleConns, run: runIdle},
	}
}

var errEcho = errors.New("the echo differs")

// echo: n messages of size bytes per client over conns connections.
func echo(size int) func(b *bench, n int) {
	return func(b *bench, n int) {
		b.StopTimer()
		conns := echoConns
		if smoke() {
			conns /= 100
		}
		if 2*conns+64 > nofileLimit {
			conns = (nofileLimit - 64) / 2
			fmt.Fprintf(os.Stderr, "bench-go: %s with %d connections (RLIMIT_NOFILE %d)\n",
				b.name, conns, nofileLimit)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			die("listen on 127.0.0.1", b.name, err)
		}
		var servers sync.WaitGroup
		servers.Add(1)
		go func() {
			defer servers.Done()
			for i := 0; i < conns; i++ {
				c, err := ln.Accept()
				if err != nil {
					die("accept", b.name, err)
				}
				servers.Add(1)
				go func(c net.Conn) {
					defer servers.Done()
					buf := make([]byte, size)
					for {
						k, err := c.Read(buf)
						if err == io.EOF {
							break
						}
						if err != nil {
							die("server read", b.name, err)
						}
						if _, err := c.Write(buf[:k]); err != nil {
							die("server write", b.name, err)
						}
					}
					c.Close()
				}(c)
			}
		}()
		lat := make([]int64, conns*latSlots)
		for i := range lat {
			lat[i] = -1
		}
		gate := make(chan struct{})
		var connected, clients sync.WaitGroup
		connected.Add(conns)
		clients.Add(conns)
		for i := 0; i < conns; i++ {
			go func(id int) {
				defer clients.Done()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					die("dial", b.name, err)
				}
				out, in := make([]byte, size), make([]byte, size)
				connected.Done()
				<-gate
				my := lat[id*latSlots : (id+1)*latSlots]
				for j := 0; j < n; j++ {
					for k := range out {
						out[k] = byte(id + j)
					}
					out[0] = byte(id & 0x7f)
					t0 := time.Now()
					if _, err := c.Write(out); err != nil {
						die("client write", b.name, err)
					}
					if _, err := io.ReadFull(c, in); err != nil {
						die("client read", b.name, err)
					}
					my[j%latSlots] = int64(time.Since(t0))
					if !bytes.Equal(in, out) {
						die("check", b.name, errEcho)
					}
				}
				c.Close()
			}(i)
		}
		connected.Wait()

		b.StartTimer()
		t0 := time.Now()
		close(gate)
		clients.Wait()
		wall := time.Since(t0)
		b.StopTimer()

		servers.Wait()
		ln.Close()
		msgs := float64(conns) * float64(n)
		var got []int64
		for _, v := range lat {
			if v >= 0 {
				got = append(got, v)
			}
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		b.Metric("permsg", "ns/msg", float64(wall.Nanoseconds())/msgs, false)
		b.Metric("p50", "ns", float64(quantile(got, 0.50)), false)
		b.Metric("p99", "ns", float64(quantile(got, 0.99)), false)
		b.Metric("rate", "msgs/s", msgs/wall.Seconds(), true)
		b.StartTimer()
	}
}

// netMemBase: resident pages before this process's first idle round.
var netMemBase int64 = -1

var errIdle = errors.New("read did not end by its deadline")

// runIdle: N connections (both ends of N/2 socketpairs) with a goroutine
// blocked in Read on each; the resident size then, less netMemBase, over N;
// then the time from the first SetReadDeadline(now) to the last reader gone.
func runIdle(b *bench, n int) {
	conns := idleConns
	if smoke() {
		conns /= 100
	}
	if conns+64 > nofileLimit {
		conns = nofileLimit - 64
		fmt.Fprintf(os.Stderr, "bench-go: %s with %d handles (RLIMIT_NOFILE %d)\n",
			b.name, conns, nofileLimit)
	}
	conns &^= 1
	if netMemBase < 0 {
		netMemBase = residentPages()
	}
	if netMemBase < 0 {
		die("reading /proc/self/statm", b.name, nil)
	}
	page := int64(os.Getpagesize())
	for round := 0; round < n; round++ {
		b.StopTimer()
		cs := make([]net.Conn, conns)
		for i := 0; i < conns; i += 2 {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				die("socketpair", b.name, err)
			}
			for k := 0; k < 2; k++ {
				f := os.NewFile(uintptr(fds[k]), "socketpair")
				c, err := net.FileConn(f) // a dup, on Go's poller
				f.Close()
				if err != nil {
					die("FileConn", b.name, err)
				}
				cs[i+k] = c
			}
		}
		var wg sync.WaitGroup
		var blocked int64
		wg.Add(conns)
		for i := 0; i < conns; i++ {
			go func(c net.Conn) {
				var one [1]byte
				atomic.AddInt64(&blocked, 1)
				_, err := c.Read(one[:])
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					die("read", b.name, errIdle)
				}
				wg.Done()
			}(cs[i])
		}
		awaitBlocked(&blocked, int64(conns))
		resident := residentPages()
		if resident < 0 {
			die("reading /proc/self/statm", b.name, nil)
		}
		b.Metric("perconn", "B/conn", float64((resident-netMemBase)*page)/float64(conns), false)

		b.StartTimer()
		t0 := time.Now()
		now := time.Now()
		for _, c := range cs {
			c.SetReadDeadline(now)
		}
		wg.Wait()
		took := time.Since(t0)
		b.StopTimer()
		b.Metric("cancel", "ns", float64(took.Nanoseconds()), false)
		for _, c := range cs {
			c.Close()
		}
		b.StartTimer()
	}
}
