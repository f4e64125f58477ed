package replication

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// fakeController commits ISR changes like the cluster FSM: refused unless
// the leader and partition epochs are the current ones.
type fakeController struct {
	t      *testing.T
	leader *testNode
	cur    State
}

var errStale = errors.New("stale partition epoch")

// next takes the leader's pending proposal and commits or refuses it.
func (c *fakeController) next(m *Manager) (alterProposal, error) {
	c.t.Helper()
	var p alterProposal
	select {
	case p = <-m.alters:
	default:
		c.t.Fatal("no isr change proposed")
	}
	if p.leaderEpoch != c.cur.LeaderEpoch || p.partitionEpoch != c.cur.PartitionEpoch {
		p.r.alterFailed(p)
		return p, errStale
	}
	c.cur.ISR = slices.Clone(p.isr)
	c.cur.PartitionEpoch++
	mustUpdate(c.t, c.leader, c.cur)
	return p, nil
}

func (c *fakeController) set(st State) {
	c.cur = st
	mustUpdate(c.t, c.leader, st)
}

func noProposal(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case p := <-m.alters:
		t.Fatalf("unexpected isr proposal %v", p.isr)
	default:
	}
}

func testManager(t *testing.T, lag time.Duration) *Manager {
	m, err := NewManager(Config{
		BrokerID: 0, DataDir: t.TempDir(), ReplicaLagMax: lag,
		BrokerAddr:     func(int32) (string, bool) { return "", false },
		AlterPartition: func(context.Context, AlterPartitionRequest) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// ISR shrink after replica.lag.time.max.ms, with the HW held by the old
// ISR until the shrink is committed; expand once the follower reaches the
// HW; a proposal made at a stale partition epoch is refused and reverted,
// and the next one carries the new epoch.
func TestISRShrinkAndExpand(t *testing.T) {
	const lag = 10 * time.Second
	m := testManager(t, lag)
	l := openNode(t, m, 0, t.TempDir())
	f1, f2 := newNode(t, 1), newNode(t, 2)
	ctl := &fakeController{t: t, leader: l}
	ctl.set(state(0, 1, 1, 0, 1, 2))
	mustUpdate(t, f1, ctl.cur)
	mustUpdate(t, f2, ctl.cur)
	mustAppend(t, l, batch(2, "a"))
	catchUp(t, l, f1)
	catchUp(t, l, f2)
	if l.r.HighWatermark() != 2 {
		t.Fatalf("hw %d, want 2", l.r.HighWatermark())
	}
	start := time.Now()
	l.r.maybeShrink(start.Add(lag/2), lag)
	noProposal(t, m)

	// Follower 2 stops; follower 1 keeps up.
	mustAppend(t, l, batch(2, "b"))
	now := start.Add(2 * lag)
	fetchOnce(t, l, f1, now)
	fetchOnce(t, l, f1, now)
	if l.r.HighWatermark() != 2 {
		t.Fatalf("hw %d moved without ISR member 2", l.r.HighWatermark())
	}
	l.r.maybeShrink(now, lag)
	// In flight: the maximal ISR is still {0,1,2}, the HW waits.
	if l.r.HighWatermark() != 2 {
		t.Fatalf("hw %d moved before the shrink was committed", l.r.HighWatermark())
	}
	p, err := ctl.next(m)
	if err != nil || !slices.Equal(p.isr, []int32{0, 1}) {
		t.Fatalf("shrink proposal %v: %v", p.isr, err)
	}
	if l.r.HighWatermark() != 4 {
		t.Fatalf("hw %d after the committed shrink, want 4", l.r.HighWatermark())
	}

	// Follower 2 comes back and catches up: an expansion is proposed at
	// partition epoch 2. Before it is committed the controller changes
	// the partition (epoch 3), so it is refused and reverted.
	catchUp(t, l, f2)
	ctl.cur.PartitionEpoch++ // a change the leader has not applied yet
	if _, err := ctl.next(m); !errors.Is(err, errStale) {
		t.Fatalf("stale expand: %v, want refused", err)
	}
	l.r.mu.Lock()
	pending, maximal := l.r.pending, slices.Clone(l.r.maximal)
	l.r.mu.Unlock()
	if pending || !slices.Equal(maximal, []int32{0, 1}) {
		t.Fatalf("after a refused expand: pending %v, maximal isr %v", pending, maximal)
	}
	mustUpdate(t, l, ctl.cur) // the leader applies the new epoch
	fetchOnce(t, l, f2, time.Now())
	p, err = ctl.next(m)
	if err != nil || !slices.Equal(p.isr, []int32{0, 1, 2}) || p.partitionEpoch != 3 {
		t.Fatalf("expand proposal %v at partition epoch %d: %v", p.isr, p.partitionEpoch, err)
	}
	if info, _, _, _ := l.r.ISRInfo(); info != 3 {
		t.Fatalf("isr size %d after expand, want 3", info)
	}
}

// A follower below the HW (or below the start of the leader epoch) is not
// added to the ISR (KAFKA-7128).
func TestISRExpandNeedsHWAndEpochStart(t *testing.T) {
	m := testManager(t, 10*time.Second)
	l := openNode(t, m, 0, t.TempDir())
	f := newNode(t, 2)
	ctl := &fakeController{t: t, leader: l}
	ctl.set(state(0, 1, 1, 0, 1))
	mustAppend(t, l, batch(3, "a"))
	ctl.set(state(0, 2, 2, 0, 1)) // epoch 2 starts at 3
	mustUpdate(t, f, ctl.cur)
	// A fetch at offset 0 is below the epoch start: no proposal.
	res := l.r.HandleFollowerFetch(FollowerFetch{ReplicaID: 2, FetchOffset: 0, LastFetchedEpoch: -1, CurrentLeaderEpoch: 2}, time.Now())
	if res.ErrorCode != 0 {
		t.Fatalf("fetch: code %d", res.ErrorCode)
	}
	noProposal(t, m)
	catchUp(t, l, f)
	if p, err := ctl.next(m); err != nil || !slices.Contains(p.isr, 2) {
		t.Fatalf("expand: %v %v", p.isr, err)
	}
}

// The HW checkpoint survives a restart: a replica opened again starts from
// it (clamped to its log).
func TestHighWatermarkCheckpoint(t *testing.T) {
	dir, logDir := t.TempDir(), t.TempDir()
	m, err := NewManager(Config{BrokerID: 0, DataDir: dir,
		BrokerAddr:     func(int32) (string, bool) { return "", false },
		AlterPartition: func(context.Context, AlterPartitionRequest) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	n := openNode(t, m, 0, logDir)
	mustUpdate(t, n, State{Leader: 0, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{0}, ISR: []int32{0}, MinISR: 1})
	mustAppend(t, n, batch(5, "a"))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := NewManager(Config{BrokerID: 0, DataDir: dir,
		BrokerAddr:     func(int32) (string, bool) { return "", false },
		AlterPartition: func(context.Context, AlterPartitionRequest) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	r := m2.NewReplica("t", [16]byte{1}, 0, n.log, nil)
	if r.HighWatermark() != 5 {
		t.Fatalf("restored hw %d, want 5", r.HighWatermark())
	}
}

// A replica a move took away, still fetching at the leader's epoch before
// its broker applied the change, is refused and never proposed for the
// ISR; a replica the move added is followed from the start.
func TestRemovedReplicaIsNoFollower(t *testing.T) {
	m := testManager(t, 10*time.Second)
	l := openNode(t, m, 0, t.TempDir())
	ctl := &fakeController{t: t, leader: l}
	ctl.set(state(0, 1, 1, 0, 1))
	mustAppend(t, l, batch(3, "a"))
	moved := state(0, 1, 2, 0, 1)
	moved.Replicas, moved.Adding = []int32{0, 1, 3}, []int32{3}
	ctl.set(moved)
	res := l.r.HandleFollowerFetch(FollowerFetch{ReplicaID: 2, FetchOffset: 3, LastFetchedEpoch: 1, CurrentLeaderEpoch: 1}, time.Now())
	if res.ErrorCode == 0 {
		t.Fatal("a removed replica's fetch was taken")
	}
	noProposal(t, m)
	if !l.r.ThrottledFollower(3) || l.r.ThrottledFollower(1) {
		t.Fatal("only the added replica is throttled")
	}
	if res := l.r.HandleFollowerFetch(FollowerFetch{ReplicaID: 3, FetchOffset: 0, LastFetchedEpoch: -1, CurrentLeaderEpoch: 1}, time.Now()); res.ErrorCode != 0 {
		t.Fatalf("the added replica's fetch: code %d", res.ErrorCode)
	}
}
