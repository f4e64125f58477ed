package cluster

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestNodeStopsItsGoroutines starts a lone broker, uses it, subscribes,
// closes it and checks that no goroutine it started outlives Close. It is
// not parallel, so no other test's goroutines come and go meanwhile.
func TestNodeStopsItsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tc := newTestCluster(t)
	n := tc.start(tc.config(0, 0, nil))
	sub, _ := n.Subscribe(16)
	waitFor(t, 10*time.Second, "broker registered", func() (bool, string) {
		return len(n.Image().LiveBrokers()) == 1, n.Image().String()
	})
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := n.Submit(ctx, NewCommand(CreateTopic{Name: "t", NumPartitions: 2, ReplicationFactor: 1})); err != nil {
		t.Fatal(err)
	}
	if ch, err := sub.Next(ctx); err != nil || ch == nil {
		t.Fatalf("first change: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	delete(tc.nodes, 0)
	if _, err := sub.Next(ctx); err == nil {
		t.Fatal("subscription survived Close")
	}
}
