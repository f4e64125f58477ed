package run

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/nemesis"
	"github.com/barge-broker/barge/jepsen/netns"
	"golang.org/x/sys/unix"
)

// inNS runs f on an OS thread moved into network namespace ns; sockets f
// creates belong to it. The thread goes back to its own namespace after;
// if it cannot, it stays locked and ends with the goroutine (Go wedges
// it if it is the main thread, which must not stay in ns: teardown kills
// every process whose main thread is in a run's namespace).
func inNS[T any](ns string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(self)
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		v, err := f()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// Each partition shape, applied to real namespaces (no brokers needed),
// lets through exactly the datagrams between brokers it should, one
// direction at a time; healing lets everything through again.
func TestPartitionShapes(t *testing.T) {
	if err := netns.CheckPrereqs(); err != nil {
		t.Skip(err)
	}
	const n = 5
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := netns.Setup(ctx, netns.Config{Barge: "/nonexistent", Nodes: n, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := nc.Teardown(); err != nil {
			t.Error(err)
		}
	}()
	c := nc.Backend()
	const port = 7777
	var conns []*net.UDPConn
	for i := range n {
		conn, err := inNS(nc.Nodes[i].NS, func() (*net.UDPConn, error) {
			return net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(c.IP(i)), Port: port})
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	// reaches sends a datagram from x to y and reports whether y got it.
	token := 0
	reaches := func(x, y int) bool {
		token++
		msg := fmt.Sprintf("%d->%d #%d", x, y, token)
		if _, err := inNS(nc.Nodes[x].NS, func() (int, error) {
			conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(c.IP(y)), Port: port})
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			return conn.Write([]byte(msg))
		}); err != nil && !os.IsTimeout(err) {
			// A send refused by the local DROP rule fails with EPERM.
			return false
		}
		buf := make([]byte, 64)
		conns[y].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			k, _, err := conns[y].ReadFromUDP(buf)
			if err != nil {
				return false
			}
			if string(buf[:k]) == msg {
				return true
			}
		}
	}
	a := &applier{c: c, log: slog.Default()}
	check := func(name string, want func(x, y int) bool) {
		t.Helper()
		for x := range n {
			for y := range n {
				if x != y && reaches(x, y) != want(x, y) {
					t.Errorf("%s: n%d -> n%d gets through: %v, want %v", name, x+1, y+1, !want(x, y), want(x, y))
				}
			}
		}
	}
	in := func(i int, set ...int) bool {
		for _, s := range set {
			if s == i {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		shape string
		nodes []int
		want  func(x, y int) bool
	}{
		{nemesis.Isolate, []int{2}, func(x, y int) bool { return x != 2 && y != 2 }},
		{nemesis.Halves, []int{0, 3}, func(x, y int) bool { return in(x, 0, 3) == in(y, 0, 3) }},
		// n2 in the middle; the rest split by index: {n1, n3} and {n4, n5}.
		{nemesis.Bridge, []int{1}, func(x, y int) bool { return x == 1 || y == 1 || in(x, 0, 2) == in(y, 0, 2) }},
		// ring order n1 n3 n5 n2 n4: each sees its two neighbours only.
		{nemesis.Ring, []int{0, 2, 4, 1, 3}, func(x, y int) bool {
			pos := map[int]int{0: 0, 2: 1, 4: 2, 1: 3, 3: 4}
			d := (pos[x] - pos[y] + n) % n
			return d == 1 || d == n-1
		}},
		{nemesis.OneWay, []int{4}, func(x, y int) bool { return x != 4 }},
	} {
		if err := a.partition(ctx, tc.shape, tc.nodes); err != nil {
			t.Fatalf("%s: %v", tc.shape, err)
		}
		check(tc.shape, tc.want)
		if err := backend.HealNetwork(ctx, c); err != nil {
			t.Fatal(err)
		}
		check(tc.shape+", healed", func(int, int) bool { return true })
	}
}
