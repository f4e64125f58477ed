package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A panic on a goroutine a handler started (here the parked fetch, woken
// by an append) closes that request's connection and leaves the broker
// serving: before, it took the whole process down.
func TestPanicInParkedFetchClosesOnlyItsConnection(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("survive"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "survive"); err != nil {
		t.Fatal(err)
	}

	var armed atomic.Bool
	armed.Store(true)
	testFetchWakeHook = func() {
		if armed.CompareAndSwap(true, false) {
			panic("injected by TestPanicInParkedFetchClosesOnlyItsConnection")
		}
	}
	defer func() { testFetchWakeHook = nil }()

	// A raw fetch that parks (nothing to read, min_bytes 1, a long wait).
	conn, err := net.Dial("tcp", b.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	writeRequest(t, conn, 1, parkingFetch("survive", 20*time.Second))

	// An append wakes it; the hook panics on the parked goroutine.
	waitFor(t, 10*time.Second, "the fetch parked", func() bool {
		p := b.replicas.get("survive", 0)
		if p == nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.waiters) > 0
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	_, err = io.ReadFull(conn, hdr[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the fetch whose goroutine panicked: read %v, want its connection closed", err)
	}
	if armed.Load() {
		t.Fatal("the hook never ran: the fetch did not park")
	}
	// The broker goes on serving.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the panic: %v", err)
	}
}
