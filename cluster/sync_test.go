package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A topic created through one broker is in every other broker's image once
// that broker has run Sync: the read barrier waits for what the controller
// had committed, so "create, then describe through another broker" never
// answers "unknown topic". Each round creates through a different broker
// and checks the two others at once after their Sync; without the barrier
// a follower that has not applied the commit yet is caught within a few
// rounds.
func TestSyncSeesTopicsCreatedElsewhere(t *testing.T) {
	t.Parallel()
	tc := threeBrokers(t)
	ctx := ctxTimeout(t, 60*time.Second)
	ids := []int32{1, 2, 3}
	for round := 0; round < 30; round++ {
		via := tc.nodes[ids[round%3]]
		name := fmt.Sprintf("sync-%d", round)
		if _, err := via.Submit(ctx, NewCommand(CreateTopic{Name: name, NumPartitions: 1, ReplicationFactor: 1})); err != nil {
			t.Fatalf("create %s through broker %d: %v", name, via.ID(), err)
		}
		for _, id := range ids {
			n := tc.nodes[id]
			if n == via {
				continue
			}
			index, err := n.Sync(ctx)
			if err != nil {
				t.Fatalf("sync on broker %d: %v", id, err)
			}
			if _, ok := n.Image().Topic(name); !ok || n.AppliedIndex() < index {
				t.Fatalf("round %d: broker %d synced to index %d (applied %d) and does not know %s", round, id, index, n.AppliedIndex(), name)
			}
		}
	}
	// Sync changes nothing: no entry was written for the barriers.
	before := tc.nodes[1].LastLogIndex()
	for _, id := range ids {
		if _, err := tc.nodes[id].Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := tc.nodes[1].LastLogIndex(); after != before {
		t.Fatalf("Sync wrote to the Raft log: last index %d -> %d", before, after)
	}
}

// Right after a leadership change the new controller's last log entry is
// its no-op, which no FSM applies: a read barrier must name the last
// command instead, or every Sync would wait for an index no broker's image
// ever reaches (seen in CI as a Sync timing out).
func TestSyncAfterLeaderChange(t *testing.T) {
	t.Parallel()
	tc := threeBrokers(t)
	old := tc.waitController(10 * time.Second)
	if err := old.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	waitFor(t, 10*time.Second, "a new controller", func() (bool, string) {
		ctrl, why := tc.controller()
		return ctrl != nil && ctrl != old, why
	})
	for _, n := range tc.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := n.Sync(ctx)
		cancel()
		if err != nil {
			t.Fatalf("sync on broker %d after the leadership change: %v", n.ID(), err)
		}
	}
}
