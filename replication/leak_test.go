package replication

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Close stops every goroutine the manager started: a fetcher blocked
// reading from a leader that never answers, one backing off from a leader
// that refuses connections, the loops, and the timers of parked produces.
func TestManagerCloseStopsItsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A "leader" that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	refused := "127.0.0.1:1"
	m, err := NewManager(Config{
		BrokerID: 0, DataDir: t.TempDir(),
		BrokerAddr: func(id int32) (string, bool) {
			if id == 1 {
				return ln.Addr().String(), true
			}
			return refused, true
		},
		AlterPartition: func(ctx context.Context, _ AlterPartitionRequest) error { <-ctx.Done(); return ctx.Err() },
		ReplicaLagMax:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	silent := openNode(t, m, 0, t.TempDir())
	refusing := openNode(t, m, 0, t.TempDir())
	led := openNode(t, m, 0, t.TempDir())
	two := func(leader int32) State {
		return State{Leader: leader, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1, 2}, MinISR: 2}
	}
	for _, c := range []struct {
		n  *testNode
		st State
	}{{silent, two(1)}, {refusing, two(2)}, {led, two(0)}} {
		if err := m.Update(c.n.r, c.st); err != nil {
			t.Fatal(err)
		}
	}
	// A parked acks=all produce on the partition led here; the ISR check
	// proposes a shrink that the AlterPartition stub holds until Close.
	res, err := led.r.AppendAsLeader(batch(1, "x"), true)
	if err != nil {
		t.Fatal(err)
	}
	done := parked(t, NewPurgatory(1), led.r, res.LastOffset+1, time.Hour)
	// Wait until the silent leader has a fetch in flight.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(conns)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fetcher never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code == 0 {
		t.Fatal("a parked produce was acknowledged by a closed manager")
	}
	for _, n := range []*testNode{silent, refusing, led} {
		n.log.Close() // their flushers are the logs', not the manager's
	}
}
