package cluster

import (
	"slices"
	"testing"
	"time"
)

var testSessionConfig = sessionConfig{
	Miss: 500 * time.Millisecond, Session: 3 * time.Second, Grace: time.Second, UnfenceHold: time.Second,
}

// livenessSim drives the liveness rules the way controllerLoop does: each
// step records heartbeats, plans against the image and applies the plan,
// counting fences and leader epoch bumps.
type livenessSim struct {
	t      *testing.T
	b      *imageBuilder
	s      *sessions
	now    time.Time
	fences map[int32]int
}

func newLivenessSim(t *testing.T, ids ...int32) *livenessSim {
	b := newBuilder(t)
	for _, m := range members(ids...) {
		m.Incarnation = "i"
		b.must(RegisterBroker{ID: m.ID, KafkaAddr: m.KafkaAddr, RaftAddr: m.RaftAddr, Incarnation: m.Incarnation})
	}
	b.must(CreateTopic{Name: "t", NumPartitions: 6, ReplicationFactor: int16(len(ids))})
	sim := &livenessSim{t: t, b: b, s: newSessions(testSessionConfig), now: time.Unix(1000, 0), fences: map[int32]int{}}
	sim.s.reset(sim.now)
	return sim
}

func member(id int32) Member {
	m := members(id)[0]
	m.Incarnation = "i"
	return m
}

// step advances the clock by d, records a heartbeat from each of beating,
// and runs one reconcile with gossip seeing the ids in gossip.
func (sim *livenessSim) step(d time.Duration, beating, gossip []int32) {
	sim.t.Helper()
	sim.now = sim.now.Add(d)
	for _, id := range beating {
		sim.s.heartbeat(member(id), false, false, 0, sim.now)
	}
	lp := sim.s.plan(sim.b.img, members(gossip...), sim.now)
	for _, cmd := range planMetadata(sim.b.img, lp, nil) {
		if f, ok := cmd.Payload.(FenceBroker); ok {
			sim.fences[f.ID]++
		}
		sim.b.must(cmd.Payload)
	}
}

func (sim *livenessSim) fenced(id int32) bool {
	b, _ := sim.b.img.Broker(id)
	return b.Fenced
}

func (sim *livenessSim) leaderEpochs() int32 {
	tp, _ := sim.b.img.Topic("t")
	var sum int32
	for _, p := range tp.Partitions {
		sum += p.LeaderEpoch
	}
	return sum
}

func TestLivenessGossipCutControllerFencesNobody(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	all := []int32{1, 2, 3}
	// Broker 1 is the controller; its gossip sees only itself, while the
	// others keep heartbeating through the forwarding channel.
	for i := 0; i < 100; i++ {
		sim.step(100*time.Millisecond, all, []int32{1})
	}
	for _, id := range all {
		if sim.fenced(id) {
			t.Fatalf("broker %d fenced although it heartbeats (fences %v)", id, sim.fences)
		}
	}
}

func TestLivenessBothViewsAgree(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.step(time.Second, []int32{1, 2, 3}, []int32{1, 2, 3})
	// Broker 2 crashes: no heartbeats, and gossip loses it a bit later.
	sim.step(300*time.Millisecond, []int32{1, 3}, []int32{1, 2, 3})
	sim.step(300*time.Millisecond, []int32{1, 3}, []int32{1, 2, 3})
	if sim.fenced(2) {
		t.Fatal("fenced while gossip still sees it, before the session timeout")
	}
	sim.step(100*time.Millisecond, []int32{1, 3}, []int32{1, 3})
	if !sim.fenced(2) {
		t.Fatal("not fenced though both views lost it")
	}
}

func TestLivenessSessionTimeoutFencesUnreachableBroker(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.step(time.Second, []int32{1, 2, 3}, []int32{1, 2, 3})
	// Broker 3 is alive in gossip but cannot reach the controller.
	for i := 0; i < 29; i++ {
		sim.step(100*time.Millisecond, []int32{1, 2}, []int32{1, 2, 3})
	}
	if sim.fenced(3) {
		t.Fatal("fenced before the session timeout")
	}
	sim.step(200*time.Millisecond, []int32{1, 2}, []int32{1, 2, 3})
	if !sim.fenced(3) {
		t.Fatal("a broker that cannot reach the controller stays unfenced past the session timeout")
	}
	if sim.step(10*time.Second, []int32{1, 2}, []int32{1, 2, 3}); sim.fenced(3) == false {
		t.Fatal("gossip alone unfenced it")
	}
}

func TestLivenessFailoverGrace(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	// A new controller with no heartbeats yet and a gossip view that has
	// not settled (it sees only itself).
	for i := 0; i < 9; i++ {
		sim.step(100*time.Millisecond, []int32{1}, []int32{1})
	}
	if sim.fenced(2) || sim.fenced(3) {
		t.Fatalf("fenced within the failover grace: %v", sim.fences)
	}
	// Heartbeats arrive; gossip still has not settled.
	for i := 0; i < 30; i++ {
		sim.step(100*time.Millisecond, []int32{1, 2, 3}, []int32{1})
	}
	if sim.fenced(2) || sim.fenced(3) {
		t.Fatalf("fenced heartbeating brokers: %v", sim.fences)
	}
	// A broker silent since the failover and out of gossip is fenced
	// once the grace is over.
	sim2 := newLivenessSim(t, 1, 2, 3)
	for i := 0; i < 11; i++ {
		sim2.step(100*time.Millisecond, []int32{1, 2}, []int32{1, 2})
	}
	if !sim2.fenced(3) {
		t.Fatal("silent broker out of gossip not fenced after the grace")
	}
}

func TestLivenessFlappingFencesOncePerFailure(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.step(time.Second, []int32{1, 2, 3}, []int32{1, 2, 3})
	epochs := sim.leaderEpochs()
	// Gossip drops broker 2 for short spells; heartbeats go on.
	for i := 0; i < 50; i++ {
		gossip := []int32{1, 2, 3}
		if i%3 != 0 {
			gossip = []int32{1, 3}
		}
		sim.step(100*time.Millisecond, []int32{1, 2, 3}, gossip)
	}
	if sim.fences[2] != 0 || sim.leaderEpochs() != epochs {
		t.Fatalf("gossip flaps fenced broker 2 %d times, leader epochs %d -> %d", sim.fences[2], epochs, sim.leaderEpochs())
	}
	// Now a real failure: broker 2 is gone from both views for a second.
	for i := 0; i < 10; i++ {
		sim.step(100*time.Millisecond, []int32{1, 3}, []int32{1, 3})
	}
	// Then it flaps: heartbeats for 600 ms, gaps of 700 ms, gossip on
	// and off.
	for round := 0; round < 10; round++ {
		for i := 0; i < 6; i++ {
			sim.step(100*time.Millisecond, []int32{1, 2, 3}, []int32{1, 2, 3})
		}
		for i := 0; i < 7; i++ {
			sim.step(100*time.Millisecond, []int32{1, 3}, []int32{1, 3})
		}
	}
	if sim.fences[2] != 1 {
		t.Fatalf("broker 2 fenced %d times for one failure", sim.fences[2])
	}
	// Once it heartbeats steadily it is unfenced.
	for i := 0; i < 12; i++ {
		sim.step(100*time.Millisecond, []int32{1, 2, 3}, []int32{1, 2, 3})
	}
	if sim.fenced(2) {
		t.Fatal("steadily heartbeating broker stays fenced")
	}
}

func TestLivenessRegistration(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.step(time.Second, []int32{1, 2, 3}, []int32{1, 2, 3})
	// A new process of broker 3 registers at its first heartbeat.
	restarted := member(3)
	restarted.Incarnation = "j"
	sim.now = sim.now.Add(100 * time.Millisecond)
	sim.s.heartbeat(restarted, false, false, 0, sim.now)
	lp := sim.s.plan(sim.b.img, members(1, 2, 3), sim.now)
	if !slices.ContainsFunc(lp.register, func(m Member) bool { return m.ID == 3 && m.Incarnation == "j" }) || len(lp.fence) != 0 {
		t.Fatalf("restart: %+v", lp)
	}
	// A process in controlled shutdown stays fenced while it heartbeats.
	sim.s.heartbeat(member(2), true, false, 0, sim.now)
	sim.b.must(FenceBroker{ID: 2})
	for i := 0; i < 30; i++ {
		sim.step(100*time.Millisecond, []int32{1, 3}, []int32{1, 2, 3})
		sim.s.heartbeat(member(2), false, false, 0, sim.now)
	}
	if !sim.fenced(2) {
		t.Fatal("broker in controlled shutdown unfenced")
	}
}

func TestLivenessLaggingBrokers(t *testing.T) {
	sim := newLivenessSim(t, 1, 2, 3)
	sim.now = sim.now.Add(100 * time.Millisecond)
	sim.s.heartbeat(member(2), false, false, 10, sim.now)
	sim.s.heartbeat(member(3), false, false, 7, sim.now)
	if got := sim.s.lagging(sim.b.img, 1, 9, sim.now); !slices.Equal(got, []int32{3}) {
		t.Fatalf("lagging at 9: %v, want [3]", got)
	}
	// A broker that stopped heartbeating cannot confirm and is not
	// waited for; nor is a fenced one.
	if got := sim.s.lagging(sim.b.img, 1, 9, sim.now.Add(time.Second)); len(got) != 0 {
		t.Fatalf("silent brokers waited for: %v", got)
	}
	sim.b.must(FenceBroker{ID: 3})
	if got := sim.s.lagging(sim.b.img, 1, 9, sim.now); len(got) != 0 {
		t.Fatalf("fenced broker waited for: %v", got)
	}
	// Reports only move forward.
	sim.s.heartbeat(member(2), false, false, 4, sim.now)
	if got := sim.s.lagging(sim.b.img, 1, 10, sim.now); len(got) != 0 {
		t.Fatalf("an older report lowered the applied index: %v", got)
	}
}
