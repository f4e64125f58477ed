package cluster

import (
	"slices"
	"testing"
	"time"
)

// holdStep advances the clock by d, records a heartbeat of brokers 1-3 in
// which the ids in held report their storage held, and applies the plan. It
// returns the storage commands planned.
func (sim *livenessSim) holdStep(d time.Duration, held ...int32) []SetStorageHeld {
	sim.t.Helper()
	sim.now = sim.now.Add(d)
	for _, id := range []int32{1, 2, 3} {
		sim.s.heartbeat(member(id), false, slices.Contains(held, id), 0, sim.now)
	}
	var out []SetStorageHeld
	for _, cmd := range planMetadata(sim.b.img, sim.s.plan(sim.b.img, members(1, 2, 3), sim.now), nil) {
		if h, ok := cmd.Payload.(SetStorageHeld); ok {
			out = append(out, h)
		}
		sim.b.must(cmd.Payload)
	}
	return out
}

func (sim *livenessSim) storageHeld(id int32) bool {
	b, _ := sim.b.img.Broker(id)
	return b.StorageHeld
}

// A broker that reports its storage held hands the partitions it leads to
// other ISR replicas and leaves every ISR at the next reconcile, is not
// added back by the leaders, and is released only after reporting room for
// UnfenceHold without a break.
func TestStorageHoldTakesFollowerOutOfISRs(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.holdStep(100 * time.Millisecond)
	if h := sim.holdStep(100 * time.Millisecond); len(h) != 0 {
		t.Fatalf("nothing held, yet planned %v", h)
	}
	before, _ := sim.b.img.Topic("t")

	if h := sim.holdStep(100*time.Millisecond, 3); !slices.Equal(h, []SetStorageHeld{{ID: 3, Held: true}}) {
		t.Fatalf("hold planned %v, want broker 3 held", h)
	}
	if !sim.storageHeld(3) {
		t.Fatal("broker 3 not held in the image")
	}
	after, _ := sim.b.img.Topic("t")
	moved := 0
	for i, p := range after.Partitions {
		old := before.Partitions[i]
		if p.Leader == 3 || slices.Contains(p.ISR, 3) {
			t.Errorf("partition %d: leader %d isr %v with broker 3 held", i, p.Leader, p.ISR)
		}
		switch {
		case old.Leader == 3:
			moved++
			if !slices.Contains(old.ISR, p.Leader) || p.LeaderEpoch != old.LeaderEpoch+1 {
				t.Errorf("partition %d: leader %d epoch %d became %d epoch %d", i, old.Leader, old.LeaderEpoch, p.Leader, p.LeaderEpoch)
			}
		case p.Leader != old.Leader || p.LeaderEpoch != old.LeaderEpoch:
			t.Errorf("partition %d: leader %d epoch %d became %d epoch %d", i, old.Leader, old.LeaderEpoch, p.Leader, p.LeaderEpoch)
		}
	}
	if moved == 0 {
		t.Fatal("broker 3 led nothing to hand over")
	}
	if h := sim.holdStep(100*time.Millisecond, 3); len(h) != 0 {
		t.Fatalf("held again with nothing to do: %v", h)
	}

	// A leader may not add the held broker back.
	followed := after.Partitions[0]
	add := AlterPartition{Topic: "t", Partition: followed.Index, Leader: followed.Leader, LeaderEpoch: followed.LeaderEpoch,
		PartitionEpoch: followed.PartitionEpoch, ISR: append(slices.Clone(followed.ISR), 3)}
	if err := sim.b.try(add); ErrorCode(err) != ErrorCode(errorf(ErrIneligibleReplica, "")) {
		t.Fatalf("adding the held broker to an ISR: %v, want ineligible replica", err)
	}

	// Room again, but only briefly: the hold stays.
	sim.holdStep(100 * time.Millisecond)
	sim.holdStep(testSessionConfig.UnfenceHold/2, 3)
	for range 5 {
		sim.holdStep(testSessionConfig.UnfenceHold / 5)
	}
	if !sim.storageHeld(3) {
		t.Fatal("released before reporting room for UnfenceHold without a break")
	}
	var released []SetStorageHeld
	for range 10 {
		released = append(released, sim.holdStep(testSessionConfig.UnfenceHold/5)...)
	}
	if !slices.Equal(released, []SetStorageHeld{{ID: 3, Held: false}}) || sim.storageHeld(3) {
		t.Fatalf("release planned %v, held %v; want one release", released, sim.storageHeld(3))
	}
	if err := sim.b.try(add); err != nil {
		t.Fatalf("adding the released broker back: %v", err)
	}
}

// A held broker that is the last ISR member keeps leading; once another
// replica is back in the ISR the next plan hands it the leadership. A new
// process of the broker is not held until it says so.
func TestStorageHoldHandsOverWhenAReplicaCatchesUp(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{3, 1, 2}}})
	b.must(FenceBroker{ID: 1})
	b.must(FenceBroker{ID: 2})
	if p := b.part("t", 0); p.Leader != 3 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("setup: %+v", p)
	}
	b.must(SetStorageHeld{ID: 3, Held: true})
	if p := b.part("t", 0); p.Leader != 3 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("held last member: %+v, want it leading alone", p)
	}
	held := livenessPlan{storageHeld: []int32{3}}
	if cmds := planStorageHolds(b.img, held); len(cmds) != 0 {
		t.Fatalf("planned %v for a held broker nobody can replace", cmds)
	}
	// Broker 1 comes back and its leader, 3, adds it to the ISR.
	b.must(registerCmd(1, ""))
	p := b.part("t", 0)
	b.must(AlterPartition{Topic: "t", Partition: 0, Leader: 3, LeaderEpoch: p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, ISR: []int32{3, 1}})
	cmds := planStorageHolds(b.img, held)
	if len(cmds) != 1 {
		t.Fatalf("a replica could take over: planned %v, want a hold", cmds)
	}
	b.must(cmds[0].Payload)
	if got := b.part("t", 0); got.Leader != 1 || !slices.Equal(got.ISR, []int32{1}) || got.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("after the second hold: %+v", got)
	}

	// The same process registering again keeps the hold; a new one starts
	// without it.
	b.must(RegisterBroker{ID: 3, KafkaAddr: "k", RaftAddr: "r", Incarnation: "a"})
	b.must(SetStorageHeld{ID: 3, Held: true})
	b.must(RegisterBroker{ID: 3, KafkaAddr: "k", RaftAddr: "r", Incarnation: "a"})
	if br, _ := b.img.Broker(3); !br.StorageHeld {
		t.Fatal("re-registration of the same process dropped the hold")
	}
	b.must(RegisterBroker{ID: 3, KafkaAddr: "k", RaftAddr: "r", Incarnation: "b"})
	if br, _ := b.img.Broker(3); br.StorageHeld {
		t.Fatal("a new process inherited the hold")
	}
}

// New replicas avoid a held broker while enough others can take them, and
// so does a decommission's choice of the broker to move a replica to.
func TestStorageHoldKeepsNewReplicasAway(t *testing.T) {
	b := newBuilder(t, 1, 2, 3, 4, 5)
	b.must(SetStorageHeld{ID: 4, Held: true})
	b.must(CreateTopic{Name: "three", NumPartitions: 10, ReplicationFactor: 3})
	b.must(CreatePartitions{Topic: "three", Count: 20})
	for _, p := range b.img.topics["three"].Partitions {
		if slices.Contains(p.Replicas, 4) {
			t.Fatalf("partition %d placed on held broker 4: %v", p.Index, p.Replicas)
		}
	}
	// Five replicas need every broker: the held one too.
	b.must(CreateTopic{Name: "five", NumPartitions: 1, ReplicationFactor: 5})
	if p := b.part("five", 0); !slices.Contains(p.Replicas, 4) {
		t.Fatalf("replication factor 5 on 5 brokers left out broker 4: %v", p.Replicas)
	}
	// Replacing 3 in [1 2 3]: 4 holds the fewest replicas but is held.
	from, _ := b.img.Broker(3)
	if got, ok := replacementFor(b.img, []int32{1, 2, 3}, from, map[int32]int{4: 0, 5: 9}); !ok || got != 5 {
		t.Fatalf("replacement for 3: %d %v, want 5", got, ok)
	}
	b.must(SetStorageHeld{ID: 4})
	if got, _ := replacementFor(b.img, []int32{1, 2, 3}, from, map[int32]int{4: 0, 5: 9}); got != 4 {
		t.Fatalf("replacement for 3 after the release: %d, want 4", got)
	}
}
