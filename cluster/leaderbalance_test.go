package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// failover fences broker id, registers it again (a clean restart) and lets
// each partition's leader add it back to the ISR, as a follower that caught
// up would: afterwards id is live and in every ISR but leads nothing.
func (b *imageBuilder) failover(id int32, topic string, rejoin bool) {
	b.t.Helper()
	b.must(FenceBroker{ID: id})
	b.must(registerCmd(id, ""))
	if !rejoin {
		return
	}
	t, _ := b.img.Topic(topic)
	for _, p := range t.Partitions {
		if slices.Contains(p.ISR, id) || !slices.Contains(p.Replicas, id) {
			continue
		}
		b.must(AlterPartition{Topic: topic, Partition: p.Index, Leader: p.Leader,
			LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: append(slices.Clone(p.ISR), id)})
	}
}

func TestPlanLeaderRebalanceReturnsLeadershipOnlyToLiveISR(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}})
	if plan := planLeaderRebalance(b.img, 10); len(plan) != 0 {
		t.Fatalf("balanced cluster: plan %v, want none", plan)
	}

	// Broker 1 restarts: it is live again but not yet in the ISR of
	// partition 0, whose leadership moved to 2.
	b.failover(1, "t", false)
	if p := b.part("t", 0); p.Leader == 1 || slices.Contains(p.ISR, 1) {
		t.Fatalf("setup: partition 0 %+v, want led by another broker with 1 out of the ISR", p)
	}
	if plan := planLeaderRebalance(b.img, 0); len(plan) != 0 {
		t.Fatalf("preferred replica out of the ISR: plan %v, want none", plan)
	}

	// Caught up: its leader adds it back to the ISR, and the plan elects it.
	t0 := b.part("t", 0)
	b.must(AlterPartition{Topic: "t", Partition: 0, Leader: t0.Leader, LeaderEpoch: t0.LeaderEpoch,
		PartitionEpoch: t0.PartitionEpoch, ISR: append(slices.Clone(t0.ISR), 1)})
	want := []ElectLeader{{Topic: "t", Partition: 0, Election: ElectPreferred}}
	if plan := planLeaderRebalance(b.img, 10); !slices.Equal(plan, want) {
		t.Fatalf("preferred replica live and in the ISR: plan %v, want %v", plan, want)
	}
	// Fenced again (down, or in controlled shutdown): nothing to plan.
	b.must(FenceBroker{ID: 1})
	if plan := planLeaderRebalance(b.img, 0); len(plan) != 0 {
		t.Fatalf("preferred replica fenced: plan %v, want none", plan)
	}

	// Back once more: the plan, applied, leaves every partition led by its
	// preferred replica and plans nothing further.
	b.failover(1, "t", true)
	plan := planLeaderRebalance(b.img, 10)
	if !slices.Equal(plan, want) {
		t.Fatalf("after rejoining: plan %v, want %v", plan, want)
	}
	for _, e := range plan {
		b.must(e)
	}
	for i := range int32(3) {
		if p := b.part("t", i); p.Leader != p.Replicas[0] {
			t.Errorf("partition %d led by %d, preferred %d", i, p.Leader, p.Replicas[0])
		}
	}
	if again := planLeaderRebalance(b.img, 0); len(again) != 0 {
		t.Errorf("after the elections: plan %v, want none", again)
	}
}

func TestPlanLeaderRebalanceImbalanceThreshold(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	var assignment [][]int32
	for range 10 {
		assignment = append(assignment, []int32{1, 2, 3})
	}
	b.must(CreateTopic{Name: "t", Assignment: assignment})
	b.failover(1, "t", true)
	if got := len(planLeaderRebalance(b.img, 10)); got != 10 {
		t.Fatalf("10 of 10 partitions misplaced: %d planned, want 10", got)
	}
	// Hand 8 back by hand: 2 of 10 (20%) stay misplaced.
	for i := range int32(8) {
		b.must(ElectLeader{Topic: "t", Partition: i, Election: ElectPreferred})
	}
	want := []ElectLeader{{"t", 8, ElectPreferred}, {"t", 9, ElectPreferred}}
	if plan := planLeaderRebalance(b.img, 10); !slices.Equal(plan, want) {
		t.Fatalf("20%% misplaced, threshold 10%%: plan %v, want %v", plan, want)
	}
	if plan := planLeaderRebalance(b.img, 20); len(plan) != 0 {
		t.Fatalf("20%% misplaced, threshold 20%%: plan %v, want none (the share must exceed it)", plan)
	}
	b.must(ElectLeader{Topic: "t", Partition: 8, Election: ElectPreferred})
	if plan := planLeaderRebalance(b.img, 10); len(plan) != 0 {
		t.Fatalf("10%% misplaced, threshold 10%%: plan %v, want none", plan)
	}
	want = want[1:]
	if plan := planLeaderRebalance(b.img, 0); !slices.Equal(plan, want) {
		t.Fatalf("10%% misplaced, threshold 0: plan %v, want %v", plan, want)
	}
}

// TestLeaderRebalanceProperties plans a rebalance on random images (the
// command generator of TestImageProperties) and checks the plan's
// contract: every election targets a live, unfenced ISR member that does
// not lead yet, of a partition with a live leader; every one is accepted
// by the FSM and leaves the preferred replica leading; and nothing the
// rule asks for is left out.
func TestLeaderRebalanceProperties(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	defer func() {
		if t.Failed() {
			t.Logf("repro: go test ./cluster -run 'TestLeaderRebalanceProperties$' -seed=%d", seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed>>2|1))
	g := &cmdGen{rng: rng}
	img := emptyImage()
	var index uint64
	planned := 0
	// The steps asked for, then more (up to 10x) until some plan held an
	// election: a few seeds reach the rule late (1 in 150 did not within
	// the steps asked for), and the coverage check must hold for every seed.
	for step := 0; step < *stepsFlag || (*stepsFlag >= 1000 && planned == 0 && step < 10**stepsFlag); step++ {
		if rng.IntN(500) == 0 {
			img, index = emptyImage(), 0
		}
		index++
		if cmd, err := prepare(img, NewCommand(g.next(img)), 1, 1); err == nil {
			if next, _, err := img.apply(index, cmd); err == nil {
				img = next
			}
		}
		pct := []int{0, 10, 50}[rng.IntN(3)]
		plan := planLeaderRebalance(img, pct)
		planned += len(plan)
		checkRebalancePlan(t, step, img, pct, plan)
		next := img
		for _, e := range plan {
			index++
			var err error
			if next, _, err = next.apply(index, NewCommand(e)); err != nil {
				t.Fatalf("step %d: planned %+v refused: %v", step, e, err)
			}
			if p, _ := next.Partition(e.Topic, e.Partition); p.Leader != p.Replicas[0] {
				t.Fatalf("step %d: after %+v the leader is %d", step, e, p.Leader)
			}
		}
		if err := next.checkInvariants(); err != nil {
			t.Fatalf("step %d: invariants after the plan: %v", step, err)
		}
		if rng.IntN(2) == 0 {
			img = next
		}
	}
	if planned == 0 && *stepsFlag >= 1000 {
		t.Errorf("seed %d: no step planned an election; the generator does not reach the rule", seed)
	}
	t.Logf("seed %d: %d elections planned", seed, planned)
}

func checkRebalancePlan(t *testing.T, step int, img *Image, pct int, plan []ElectLeader) {
	t.Helper()
	inPlan := map[topicPart]bool{}
	for _, e := range plan {
		p, ok := img.Partition(e.Topic, e.Partition)
		pref := p.Replicas[0]
		switch {
		case !ok:
			t.Fatalf("step %d: plan names unknown %s-%d", step, e.Topic, e.Partition)
		case e.Election != ElectPreferred:
			t.Fatalf("step %d: plan has a %d election", step, e.Election)
		case !img.isLive(pref):
			t.Fatalf("step %d: %s-%d: preferred %d is not live", step, e.Topic, e.Partition, pref)
		case !slices.Contains(p.ISR, pref):
			t.Fatalf("step %d: %s-%d: preferred %d is not in the ISR %v", step, e.Topic, e.Partition, pref, p.ISR)
		case p.Reassigning():
			t.Fatalf("step %d: %s-%d is being moved (%+v): its move picks the leader", step, e.Topic, e.Partition, p)
		case p.Leader == pref || p.Leader == NoLeader:
			t.Fatalf("step %d: %s-%d: leader %d needs no preferred election", step, e.Topic, e.Partition, p.Leader)
		}
		inPlan[topicPart{e.Topic, e.Partition}] = true
	}
	// Completeness, from the rule's definition.
	preferred, misplaced := map[int32]int{}, map[int32]int{}
	for _, tp := range img.Topics() {
		for _, p := range tp.Partitions {
			if p.Reassigning() {
				continue
			}
			preferred[p.Replicas[0]]++
			if p.Leader != p.Replicas[0] {
				misplaced[p.Replicas[0]]++
			}
		}
	}
	for _, tp := range img.Topics() {
		for _, p := range tp.Partitions {
			pref := p.Replicas[0]
			due := !p.Reassigning() && p.Leader != pref && p.Leader != NoLeader && img.isLive(pref) && slices.Contains(p.ISR, pref) &&
				misplaced[pref]*100 > pct*preferred[pref]
			if due != inPlan[topicPart{tp.Name, p.Index}] {
				t.Fatalf("step %d: %s-%d %+v (pct %d, %d/%d misplaced): in plan %v, want %v",
					step, tp.Name, p.Index, p, pct, misplaced[pref], preferred[pref], inPlan[topicPart{tp.Name, p.Index}], due)
			}
		}
	}
}

type topicPart struct {
	topic     string
	partition int32
}

// A partition being moved is left to its move, which picks its leader when
// it completes; as in Kafka, rebalancing does not elect it meanwhile.
func TestPlanLeaderRebalanceSkipsPartitionsBeingMoved(t *testing.T) {
	b := newBuilder(t, 1, 2, 3, 4)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	b.failover(1, "t", true) // 1 is live and in the ISR, 2 leads
	want := []ElectLeader{{Topic: "t", Partition: 0, Election: ElectPreferred}}
	if plan := planLeaderRebalance(b.img, 0); !slices.Equal(plan, want) {
		t.Fatalf("setup: plan %v, want %v", plan, want)
	}
	b.must(AlterReassignment{Topic: "t", Partition: 0, Replicas: []int32{1, 2, 4}})
	if p := b.part("t", 0); !p.Reassigning() || p.Replicas[0] != 1 {
		t.Fatalf("setup: partition %+v, want a move in flight with 1 first", p)
	}
	if plan := planLeaderRebalance(b.img, 0); len(plan) != 0 {
		t.Fatalf("partition being moved: plan %v, want none", plan)
	}
}
