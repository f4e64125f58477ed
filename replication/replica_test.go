package replication

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The HW is the lowest LEO of the ISR, moves only once every ISR follower
// has fetched in the epoch, and never moves back: not when a follower
// lags, not across leader changes on any replica.
func TestHighWatermarkNeverRegresses(t *testing.T) {
	nodes := []*testNode{newNode(t, 0), newNode(t, 1), newNode(t, 2)}
	hws := make([]int64, 3)
	check := func(when string) {
		t.Helper()
		for i, n := range nodes {
			hw := n.r.HighWatermark()
			if hw < hws[i] {
				t.Fatalf("%s: broker %d hw went back from %d to %d", when, i, hws[i], hw)
			}
			if hw > n.log.LogEndOffset() {
				t.Fatalf("%s: broker %d hw %d past its log end %d", when, i, hw, n.log.LogEndOffset())
			}
			hws[i] = hw
		}
	}
	leader := 0
	epoch := int32(0)
	for round := 0; round < 6; round++ {
		epoch++
		for _, n := range nodes {
			mustUpdate(t, n, state(int32(leader), epoch, epoch, 0, 1, 2))
		}
		check("after leader change")
		l := nodes[leader]
		before := l.r.HighWatermark()
		res := mustAppend(t, l, batch(3, "r"))
		if l.r.HighWatermark() != before {
			t.Fatalf("round %d: hw moved to %d on the append alone", round, l.r.HighWatermark())
		}
		// One follower fetches: the other ISR member's LEO is unknown
		// in this epoch, so the HW waits for it.
		f1, f2 := nodes[(leader+1)%3], nodes[(leader+2)%3]
		catchUp(t, l, f1)
		check("one follower caught up")
		if l.r.HighWatermark() > res.LastOffset+1 {
			t.Fatalf("hw %d past the log end", l.r.HighWatermark())
		}
		catchUp(t, l, f2)
		if got := l.r.HighWatermark(); got != res.LastOffset+1 {
			t.Fatalf("round %d: hw %d with every follower at %d", round, got, res.LastOffset+1)
		}
		fetchOnce(t, l, f1, time.Now()) // the followers learn the HW one round later
		fetchOnce(t, l, f2, time.Now())
		check("all caught up")
		leader = (leader + 1) % 3
	}
}

// KIP-279: after back-to-back failovers a returning replica walks back over
// epochs to the true divergence point, and the logs end up byte-identical.
func TestTruncationByEpochAfterBackToBackFailovers(t *testing.T) {
	a, b := newNode(t, 0), newNode(t, 1)
	// Epoch 1, leader A: m1, m2; B copies m1 only.
	mustUpdate(t, a, twoReplicas(0, 1, 0, 1))
	mustUpdate(t, b, twoReplicas(0, 1, 0, 1))
	mustAppend(t, a, batch(1, "m1"))
	fetchOnce(t, a, b, time.Now())
	mustAppend(t, a, batch(1, "m2"))
	// A dies; epoch 2, leader B writes m3 at offset 1.
	mustUpdate(t, b, twoReplicas(1, 2, 1))
	mustAppend(t, b, batch(1, "m3"))
	// B dies before A learns anything; A comes back and leads epoch 3
	// (unclean, with its own log [m1, m2]) and writes m4.
	mustUpdate(t, a, twoReplicas(0, 3, 0))
	mustAppend(t, a, batch(1, "m4"))
	// B returns as follower: its m3 (epoch 2) must go, m2 and m4 come.
	mustUpdate(t, b, twoReplicas(0, 3, 0))
	catchUp(t, a, b)
	if got, want := join(values(t, b)), "m1-0 m2-0 m4-0"; got != want {
		t.Fatalf("follower holds %q, want %q", got, want)
	}
	if !slices.Equal(segmentBytes(t, a), segmentBytes(t, b)) {
		t.Fatal("segment files differ after truncation and catch-up")
	}
}

// A follower whose log ends below the leader's log start restarts its log
// there and then copies the rest.
func TestFollowerBelowLeaderLogStart(t *testing.T) {
	l, f := newNode(t, 0), newNode(t, 1)
	st := State{Leader: 0, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{0, 1}, ISR: []int32{0}, MinISR: 1}
	mustUpdate(t, l, st)
	for i := 0; i < 5; i++ {
		mustAppend(t, l, batch(2, "x"))
	}
	if _, err := l.log.DeleteRecordsBefore(6); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, f, st)
	if code := fetchOnce(t, l, f, time.Now()); code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: code %d, want OFFSET_OUT_OF_RANGE", code)
	}
	if f.log.LogStartOffset() != 6 || f.log.LogEndOffset() != 6 {
		t.Fatalf("follower log [%d, %d), want it restarted at 6", f.log.LogStartOffset(), f.log.LogEndOffset())
	}
	catchUp(t, l, f)
	if f.log.LogEndOffset() != 10 {
		t.Fatalf("follower log end %d, want 10", f.log.LogEndOffset())
	}
}

// Bad follower fetches get Kafka's codes and change nothing.
func TestFollowerFetchErrors(t *testing.T) {
	l := newNode(t, 0)
	mustUpdate(t, l, state(0, 5, 5, 0, 1, 2))
	mustAppend(t, l, batch(3, "x"))
	for _, c := range []struct {
		name string
		ff   FollowerFetch
		want int16
	}{
		{"not a replica", FollowerFetch{ReplicaID: 7, CurrentLeaderEpoch: 5, LastFetchedEpoch: -1}, kerr.UnknownLeaderEpoch.Code},
		{"not a replica, no epoch", FollowerFetch{ReplicaID: 7, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1}, kerr.NotLeaderForPartition.Code},
		{"stale epoch", FollowerFetch{ReplicaID: 1, CurrentLeaderEpoch: 4, LastFetchedEpoch: -1}, kerr.FencedLeaderEpoch.Code},
		{"newer epoch", FollowerFetch{ReplicaID: 1, CurrentLeaderEpoch: 6, LastFetchedEpoch: -1}, kerr.UnknownLeaderEpoch.Code},
		{"past the log end", FollowerFetch{ReplicaID: 1, CurrentLeaderEpoch: 5, FetchOffset: 4, LastFetchedEpoch: -1}, kerr.OffsetOutOfRange.Code},
	} {
		if got := l.r.HandleFollowerFetch(c.ff, time.Now()); got.ErrorCode != c.want {
			t.Errorf("%s: code %d, want %d", c.name, got.ErrorCode, c.want)
		}
	}
	// Past the log end with the leader's own epoch: diverging, not appended.
	got := l.r.HandleFollowerFetch(FollowerFetch{ReplicaID: 1, CurrentLeaderEpoch: 5, FetchOffset: 9, LastFetchedEpoch: 5}, time.Now())
	if got.Diverging == nil || got.Diverging.Epoch != 5 || got.Diverging.EndOffset != 3 {
		t.Errorf("fetch past the end at the same epoch: %+v, want diverging (5, 3)", got)
	}
	if l.r.HighWatermark() != 0 {
		t.Errorf("bad fetches moved the hw to %d", l.r.HighWatermark())
	}
	follower := newNode(t, 1)
	mustUpdate(t, follower, state(0, 5, 5, 0, 1, 2))
	if _, err := follower.r.AppendAsLeader(batch(1, "y"), false); err != ErrNotLeader {
		t.Errorf("append on a follower: %v, want ErrNotLeader", err)
	}
}

// parked collects the outcome of a Wait.
func parked(t *testing.T, p *Purgatory, r *Replica, offset int64, timeout time.Duration) <-chan int16 {
	t.Helper()
	out := make(chan int16, 1)
	w, err := p.Begin(t.Context(), 1, func(codes []int16) { out <- codes[0] })
	if err != nil {
		t.Fatal(err)
	}
	w.Park(0, r, offset)
	w.Start(timeout)
	return out
}

// acks=all: a write completes when the ISR has it; when the followers stop
// and the ISR shrinks below min.insync.replicas, a parked write ends
// NOT_ENOUGH_REPLICAS_AFTER_APPEND at its timeout and new ones are refused
// NOT_ENOUGH_REPLICAS before they are appended.
func TestAcksAllWaitsAndTimesOut(t *testing.T) {
	nodes := []*testNode{newNode(t, 0), newNode(t, 1), newNode(t, 2)}
	for _, n := range nodes {
		mustUpdate(t, n, state(0, 1, 1, 0, 1, 2))
	}
	p := NewPurgatory(10)
	l := nodes[0]
	res, err := l.r.AppendAsLeader(batch(2, "a"), true)
	if err != nil {
		t.Fatal(err)
	}
	done := parked(t, p, l.r, res.LastOffset+1, time.Minute)
	catchUp(t, l, nodes[1])
	select {
	case code := <-done:
		t.Fatalf("acknowledged (code %d) with one of two followers", code)
	default:
	}
	catchUp(t, l, nodes[2])
	if code := <-done; code != 0 {
		t.Fatalf("replicated write: code %d", code)
	}

	// The followers stop. A parked write waits; the ISR shrinks to the
	// leader alone (committed by the controller) and the wait times out.
	res, err = l.r.AppendAsLeader(batch(2, "b"), true)
	if err != nil {
		t.Fatal(err)
	}
	done = parked(t, p, l.r, res.LastOffset+1, 50*time.Millisecond)
	mustUpdate(t, l, state(0, 1, 2, 0))
	if code := <-done; code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("timed out with isr below min: code %d, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", code)
	}
	if l.r.HighWatermark() != 2 {
		t.Fatalf("hw %d advanced under min isr", l.r.HighWatermark())
	}
	leo := l.log.LogEndOffset()
	if _, err := l.r.AppendAsLeader(batch(1, "c"), true); err == nil || !errors.Is(err, ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with isr below min: %v, want ErrNotEnoughReplicas", err)
	}
	if l.log.LogEndOffset() != leo {
		t.Fatal("a refused acks=all write was appended")
	}
	// Demotion fails what is parked.
	done = parked(t, p, l.r, l.log.LogEndOffset()+1, time.Minute)
	mustUpdate(t, l, state(1, 2, 3, 1))
	if code := <-done; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("parked write on demotion: code %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
}

// A leader that lost its leadership without knowing it (paused, then
// resumed) acknowledges nothing: the followers fetch at the new epoch, which
// it refuses without counting them, so its HW cannot move.
func TestZombieLeaderAcknowledgesNothing(t *testing.T) {
	old, b, c := newNode(t, 0), newNode(t, 1), newNode(t, 2)
	for _, n := range []*testNode{old, b, c} {
		mustUpdate(t, n, state(0, 1, 1, 0, 1, 2))
	}
	// The controller moves leadership to 1 at epoch 2; broker 0 is paused
	// and does not see it.
	mustUpdate(t, b, state(1, 2, 2, 1, 2))
	mustUpdate(t, c, state(1, 2, 2, 1, 2))
	res, err := old.r.AppendAsLeader(batch(1, "zombie"), true)
	if err != nil {
		t.Fatal(err)
	}
	done := parked(t, NewPurgatory(1), old.r, res.LastOffset+1, 100*time.Millisecond)
	for _, f := range []*testNode{b, c} {
		got := old.r.HandleFollowerFetch(FollowerFetch{ReplicaID: f.id, FetchOffset: 1, LastFetchedEpoch: 1, CurrentLeaderEpoch: 2}, time.Now())
		if got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
			t.Fatalf("fetch at the new epoch from the old leader: code %d, want UNKNOWN_LEADER_EPOCH", got.ErrorCode)
		}
	}
	if code := <-done; code == 0 {
		t.Fatal("the zombie leader acknowledged an acks=all write")
	}
	if old.r.HighWatermark() != 0 {
		t.Fatalf("zombie hw moved to %d", old.r.HighWatermark())
	}
}

// The demotion race: produces racing a leader change are never stamped with
// an epoch this replica does not lead. Before the role check and the append
// were one step, a produce could see "leader" and then stamp the new epoch
// the broker was switching to as a follower.
func TestDemotionRaceNeverStampsAnEpochNotLed(t *testing.T) {
	n := newNode(t, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n.r.AppendAsLeader(batch(1, "p"), false)
			}
		}()
	}
	led := map[int32]bool{}
	for epoch := int32(1); epoch <= 400; epoch++ {
		leader := int32(1)
		if epoch%2 == 1 {
			leader = 0
			led[epoch] = true
		}
		mustUpdate(t, n, State{Leader: leader, LeaderEpoch: epoch, PartitionEpoch: epoch, Replicas: []int32{0, 1}, ISR: []int32{0, 1}, MinISR: 1})
	}
	close(stop)
	wg.Wait()
	buf, err := n.log.ReadBatches(0, 1<<30, n.log.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for len(buf) > 0 {
		epoch := int32(uint32(buf[12])<<24 | uint32(buf[13])<<16 | uint32(buf[14])<<8 | uint32(buf[15]))
		if !led[epoch] {
			t.Fatalf("a batch at offset %d carries epoch %d, which broker 0 never led", int64(uint64(buf[0])<<56|uint64(buf[1])<<48|uint64(buf[2])<<40|uint64(buf[3])<<32|uint64(buf[4])<<24|uint64(buf[5])<<16|uint64(buf[6])<<8|uint64(buf[7])), epoch)
		}
		size := 12 + int(uint32(buf[8])<<24|uint32(buf[9])<<16|uint32(buf[10])<<8|uint32(buf[11]))
		buf = buf[size:]
		batches++
	}
	t.Logf("%d batches appended across 400 role changes", batches)
}

// A replica that led an epoch without writing in it has that epoch in its
// cache at its log end. As follower it reports it as its last fetched
// epoch; the leader never had it, so the truncation lands exactly at the
// log end and must still drop the empty epoch, or the follower asks again
// forever.
func TestFollowerDropsEmptyEpochAtItsLogEnd(t *testing.T) {
	a, b := newNode(t, 0), newNode(t, 1)
	mustUpdate(t, a, twoReplicas(0, 1, 0, 1))
	mustUpdate(t, b, twoReplicas(0, 1, 0, 1))
	mustAppend(t, a, batch(2, "a"))
	catchUp(t, a, b)
	mustUpdate(t, b, twoReplicas(1, 2, 1)) // leads epoch 2 and writes nothing
	mustUpdate(t, a, twoReplicas(0, 3, 0))
	mustAppend(t, a, batch(1, "c"))
	mustUpdate(t, b, twoReplicas(0, 3, 0))
	catchUp(t, a, b)
	if !slices.Equal(segmentBytes(t, a), segmentBytes(t, b)) {
		t.Fatal("segment files differ")
	}
}

// twoReplicas is the state of a partition on brokers 0 and 1 with the given
// leader, leader (and partition) epoch and ISR, min ISR 1.
func twoReplicas(leader, epoch int32, isr ...int32) State {
	return State{Leader: leader, LeaderEpoch: epoch, PartitionEpoch: epoch, Replicas: []int32{0, 1}, ISR: isr, MinISR: 1}
}
