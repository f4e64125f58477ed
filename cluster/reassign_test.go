package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// addToISR is the leader's AlterPartition adding members to the ISR.
func (b *imageBuilder) addToISR(topic string, i int32, members ...int32) {
	b.t.Helper()
	p := b.part(topic, i)
	b.must(AlterPartition{Topic: topic, Partition: i, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: union(p.ISR, members)})
}

// TestFullMove moves [1,2,3] to [4,5,6]: the union while the new replicas
// catch up, the move completing only with the last of them in the ISR,
// leadership passing to the first target, and the old ones dropped.
func TestFullMove(t *testing.T) {
	b := newBuilder(t, 1, 2, 3, 4, 5, 6)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	b.must(AlterReassignment{Topic: "t", Replicas: []int32{4, 5, 6}})
	p := b.part("t", 0)
	if !slices.Equal(p.Replicas, []int32{4, 5, 6, 1, 2, 3}) || !slices.Equal(p.AddingReplicas, []int32{4, 5, 6}) ||
		!slices.Equal(p.RemovingReplicas, []int32{1, 2, 3}) || !slices.Equal(p.ISR, []int32{1, 2, 3}) || p.Leader != 1 {
		t.Fatalf("move in flight: %+v", p)
	}
	if tt, _ := b.img.Topic("t"); tt.ReplicationFactor() != 3 {
		t.Fatalf("replication factor during the move %d, want 3", tt.ReplicationFactor())
	}
	b.addToISR("t", 0, 4, 5)
	if p := b.part("t", 0); !p.Reassigning() {
		t.Fatalf("completed with 6 outside the isr: %+v", p)
	}
	epoch := b.part("t", 0).LeaderEpoch
	b.addToISR("t", 0, 6)
	p = b.part("t", 0)
	if p.Reassigning() || !slices.Equal(p.Replicas, []int32{4, 5, 6}) || !slices.Equal(p.ISR, []int32{4, 5, 6}) ||
		p.Leader != 4 || p.LeaderEpoch != epoch+1 {
		t.Fatalf("after the move: %+v", p)
	}
	if err := b.try(AlterReassignment{Topic: "t", Cancel: true}); !errors.Is(err, ErrNoReassignmentInProgress) || ErrorCode(err) != 85 {
		t.Fatalf("cancel after completion: %v (code %d)", err, ErrorCode(err))
	}
}

// TestCancelMove reverts a move in flight: the added replicas go, even one
// already in the ISR; the original replicas and leader stay.
func TestCancelMove(t *testing.T) {
	b := newBuilder(t, 1, 2, 3, 4)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	b.must(AlterReassignment{Topic: "t", Replicas: []int32{4, 2, 3}})
	b.addToISR("t", 0, 4)
	if p := b.part("t", 0); p.Reassigning() || !slices.Equal(p.Replicas, []int32{4, 2, 3}) || p.Leader != 4 {
		t.Fatalf("move of one replica: %+v", p)
	}
	b.must(AlterReassignment{Topic: "t", Replicas: []int32{1, 2, 3}})
	before := b.part("t", 0)
	b.must(AlterReassignment{Topic: "t", Cancel: true})
	p := b.part("t", 0)
	// As in Kafka, the original replicas come back in the order they have
	// in the union: [2 3 4].
	if p.Reassigning() || !sameSet(p.Replicas, []int32{4, 2, 3}) || !sameSet(p.ISR, []int32{4, 2, 3}) || p.Leader != before.Leader {
		t.Fatalf("after cancel: %+v (before %+v)", p, before)
	}
}

// TestMoveBadInput: each bad move is refused with its Kafka code and
// changes nothing.
func TestMoveBadInput(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2}}})
	before := b.img
	for _, c := range []struct {
		p    AlterReassignment
		code int16
	}{
		{AlterReassignment{Topic: "t", Replicas: []int32{1, 9}}, 39}, // unknown broker
		{AlterReassignment{Topic: "t", Replicas: []int32{1, 1}}, 39}, // duplicate
		{AlterReassignment{Topic: "t", Replicas: nil}, 39},           // empty
		{AlterReassignment{Topic: "t", Cancel: true}, 85},            // nothing to cancel
		{AlterReassignment{Topic: "nope", Replicas: []int32{1}}, 3},  // unknown topic
		{AlterReassignment{Topic: "t", Partition: 7, Replicas: []int32{1}}, 3},
	} {
		err := b.try(c.p)
		if err == nil || ErrorCode(err) != c.code {
			t.Errorf("%+v: %v (code %d), want code %d", c.p, err, ErrorCode(err), c.code)
		}
	}
	if b.img != before {
		t.Fatal("a refused move changed the image")
	}
	// The legacy immediate reassignment is refused while a move is in flight.
	b.must(AlterReassignment{Topic: "t", Replicas: []int32{3, 2}})
	if err := b.try(ReassignPartition{Topic: "t", Replicas: []int32{1, 2}}); !errors.Is(err, ErrReassignmentInProgress) {
		t.Fatalf("legacy reassign during a move: %v", err)
	}
}

// TestDecommissionPlan drains a broker rack-aware, a few partitions at a
// time, unregisters it once it hosts nothing, and refuses to drain below a
// topic's replication factor.
func TestDecommissionPlan(t *testing.T) {
	b := &imageBuilder{t: t, img: emptyImage()}
	b.must(InitCluster{ClusterID: "c"})
	for id, rack := range map[int32]string{1: "a", 2: "b", 3: "c", 4: "a", 5: "c"} {
		b.must(registerCmd(id, rack))
	}
	var assignment [][]int32
	for range 10 {
		assignment = append(assignment, []int32{1, 2, 3})
	}
	b.must(CreateTopic{Name: "t", Assignment: assignment})
	b.must(DecommissionBroker{ID: 1})
	if err := b.try(CreateTopic{Name: "u", Assignment: [][]int32{{1}}}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("new replica on a decommissioning broker: %v", err)
	}
	for round := 0; ; round++ {
		if round > 20 {
			t.Fatal("decommission did not finish")
		}
		cmds := planDecommission(b.img)
		if len(cmds) == 0 {
			t.Fatalf("round %d: nothing planned, status %v", round, b.img.Decommission(1))
		}
		if _, ok := cmds[0].Payload.(UnregisterBroker); ok {
			b.must(cmds[0].Payload)
			break
		}
		if len(cmds) > maxDecommissionMoves {
			t.Fatalf("%d moves at once", len(cmds))
		}
		for _, c := range cmds {
			m := c.Payload.(AlterReassignment)
			// Broker 1 is in rack a; 4 is the other broker there, and the
			// only choice that keeps three racks.
			if !slices.Equal(m.Replicas, []int32{4, 2, 3}) {
				t.Fatalf("move %+v, want [4 2 3]", m)
			}
			b.must(m)
			b.addToISR(m.Topic, m.Partition, 4)
		}
	}
	if _, ok := b.img.Broker(1); ok || !b.img.Retired(1) || len(b.img.HostedBy(1)) != 0 {
		t.Fatalf("broker 1 after decommission: %v", b.img.Decommission(1))
	}
	if err := b.try(registerCmd(1, "a")); !errors.Is(err, ErrBrokerRemoved) {
		t.Fatalf("a decommissioned broker registered again: %v", err)
	}
	b.must(DecommissionBroker{ID: 1, Cancel: true})
	b.must(registerCmd(1, "a"))

	// Three racks of brokers left for RF 3 over 2, 3, 4, 5: two more
	// decommissions would leave two.
	b.must(DecommissionBroker{ID: 5})
	b.must(DecommissionBroker{ID: 4})
	before := b.img
	err := b.try(DecommissionBroker{ID: 3})
	if !errors.Is(err, ErrInvalidReplicationFactor) || b.img != before {
		t.Fatalf("decommission below the replication factor: %v", err)
	}
}

// TestReassignmentChecksCatchStuckMove is the negative control of the
// property test's move rules: a move left in flight with every target in
// the ISR, and a completion to other replicas, are both reported.
func TestReassignmentChecksCatchStuckMove(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2}}})
	b.must(AlterReassignment{Topic: "t", Replicas: []int32{3, 2}})
	prev := b.img
	stuck := prev.clone(prev.index + 1)
	p := b.part("t", 0)
	p.ISR = []int32{3, 1, 2}
	p.PartitionEpoch++
	stuck.setPartition("t", p)
	stuck.owned = nil
	var got []string
	fail := func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }
	checkReassignments(fail, prev, stuck, AlterPartition{Topic: "t"}, nil)
	if len(got) == 0 {
		t.Fatal("a completable move left in flight was not reported")
	}
	wrong := prev.clone(prev.index + 1)
	q := b.part("t", 0)
	q.Replicas, q.AddingReplicas, q.RemovingReplicas, q.ISR = []int32{1, 2}, nil, nil, []int32{1, 2}
	wrong.setPartition("t", q)
	wrong.owned = nil
	got = nil
	checkReassignments(fail, prev, wrong, AlterPartition{Topic: "t"}, nil)
	if len(got) == 0 {
		t.Fatal("a move completed to replicas other than its target was not reported")
	}
}
