package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestAssignReplicasBalancesLeadersAndRacks(t *testing.T) {
	b := newBuilder(t)
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
	for id := int32(1); id <= 6; id++ {
		b.must(registerCmd(id, racks[id]))
	}
	b.must(CreateTopic{Name: "t", NumPartitions: 12, ReplicationFactor: 3})
	b.must(CreateTopic{Name: "u", NumPartitions: 6, ReplicationFactor: 2})
	leaders := map[int32]int{}
	for _, name := range []string{"t", "u"} {
		tp, _ := b.img.Topic(name)
		for _, p := range tp.Partitions {
			leaders[p.Leader]++
			seen := map[string]bool{}
			for _, r := range p.Replicas {
				if seen[racks[r]] {
					t.Fatalf("%s-%d: replicas %v share rack %s", name, p.Index, p.Replicas, racks[r])
				}
				seen[racks[r]] = true
			}
		}
	}
	for id := int32(1); id <= 6; id++ {
		if leaders[id] != 3 {
			t.Fatalf("leaders per broker %v, want 3 each", leaders)
		}
	}
	// Deterministic: the same inputs give the same assignment.
	live := b.img.LiveBrokers()
	if a, c := assignReplicas(b.img, live, 5, 3), assignReplicas(b.img, live, 5, 3); !slices.EqualFunc(a, c, slices.Equal) {
		t.Fatalf("not deterministic: %v vs %v", a, c)
	}
}

func TestAssignSkipsFencedBrokers(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(FenceBroker{ID: 2})
	if err := b.try(CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 3}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 3 with 2 live brokers: %v", err)
	}
	b.must(CreateTopic{Name: "t", NumPartitions: 4, ReplicationFactor: 2})
	tp, _ := b.img.Topic("t")
	for _, p := range tp.Partitions {
		if slices.Contains(p.Replicas, 2) {
			t.Fatalf("fenced broker assigned: %+v", p)
		}
	}
}

func members(ids ...int32) []Member {
	var out []Member
	for _, id := range ids {
		out = append(out, Member{ID: id, KafkaAddr: "k", RaftAddr: "r" + string(rune('0'+id))})
	}
	return out
}

func TestPlanBootstrap(t *testing.T) {
	if _, ok := planBootstrap(1, 3, members(1, 2)); ok {
		t.Fatal("bootstrapped with too few brokers")
	}
	if _, ok := planBootstrap(2, 3, members(1, 2, 3)); ok {
		t.Fatal("a broker that is not the lowest id bootstrapped")
	}
	voters, ok := planBootstrap(1, 3, members(4, 1, 3, 2))
	if !ok || len(voters) != 3 || voters[0].ID != 1 || voters[2].ID != 3 {
		t.Fatalf("voters %v, %v", voters, ok)
	}
	formed := members(1, 2, 3)
	formed[2].Bootstrapped = true
	if _, ok := planBootstrap(1, 3, formed); ok {
		t.Fatal("bootstrapped next to a formed cluster")
	}
	if voters, ok := planBootstrap(1, 2, members(2, 1)); !ok || len(voters) != 1 || voters[0].ID != 1 {
		t.Fatalf("bootstrap-expect 2: voters %v (%v), want broker 1 alone (an odd voter set)", voters, ok)
	}
	if _, ok := planBootstrap(1, 1, members(1)); ok {
		t.Fatal("expect 1 is the lone bootstrap at start, not this path")
	}
}

func TestPlanVoters(t *testing.T) {
	srv := func(id string, voter bool) raft.Server {
		s := raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress("r" + id), Suffrage: raft.Nonvoter}
		if voter {
			s.Suffrage = raft.Voter
		}
		return s
	}
	now := time.Now()
	// Bootstrapped voters 1..3; brokers 4 and 5 arrive: non-voters.
	got := planVoters([]raft.Server{srv("1", true), srv("2", true), srv("3", true)}, members(1, 2, 3, 4, 5), 3, nil, now, time.Second)
	want := []serverChange{{opAddNonvoter, "4", "r4"}, {opAddNonvoter, "5", "r5"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// A lone voter grows to three voters.
	got = planVoters([]raft.Server{srv("1", true)}, members(1, 2, 3, 4), 3, nil, now, time.Second)
	want = []serverChange{{opAddVoter, "2", "r2"}, {opAddVoter, "3", "r3"}, {opAddNonvoter, "4", "r4"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// The voter count stays odd: a second broker joins as a non-voter (two
	// voters would stop at either failure); the third makes both voters.
	got = planVoters([]raft.Server{srv("1", true)}, members(1, 2), 3, nil, now, time.Second)
	if want := []serverChange{{opAddNonvoter, "2", "r2"}}; !slices.Equal(got, want) {
		t.Fatalf("second broker: got %v, want %v", got, want)
	}
	got = planVoters([]raft.Server{srv("1", true), srv("2", false)}, members(1, 2, 3), 3, nil, now, time.Second)
	if want := []serverChange{{opAddVoter, "3", "r3"}, {opAddVoter, "2", "r2"}}; !slices.Equal(got, want) {
		t.Fatalf("third broker: got %v, want %v", got, want)
	}
	// Five brokers with --max-voters 5 make five voters; four make three.
	got = planVoters([]raft.Server{srv("1", true)}, members(1, 2, 3, 4), 5, nil, now, time.Second)
	if want := []serverChange{{opAddVoter, "2", "r2"}, {opAddVoter, "3", "r3"}, {opAddNonvoter, "4", "r4"}}; !slices.Equal(got, want) {
		t.Fatalf("four brokers, max 5: got %v, want %v", got, want)
	}
	// A non-voter dead long enough is removed.
	got = planVoters([]raft.Server{srv("1", true), srv("2", true), srv("3", true), srv("4", false)}, members(1, 2, 3), 3,
		map[raft.ServerID]time.Time{"4": now.Add(-2 * time.Second)}, now, time.Second)
	if want := []serverChange{{op: opRemove, id: "4"}}; !slices.Equal(got, want) {
		t.Fatalf("dead non-voter: got %v, want %v", got, want)
	}
	servers := []raft.Server{srv("1", true), srv("2", true), srv("3", true), srv("4", false), srv("5", false)}
	// Voter 2 dead, but not for long enough: nothing.
	dead := map[raft.ServerID]time.Time{"2": now.Add(-time.Second / 2)}
	if got := planVoters(servers, members(1, 3, 4, 5), 3, dead, now, time.Second); len(got) != 0 {
		t.Fatalf("replaced too early: %v", got)
	}
	// Long enough: removed, and the lowest live non-voter promoted.
	dead["2"] = now.Add(-2 * time.Second)
	got = planVoters(servers, members(1, 3, 4, 5), 3, dead, now, time.Second)
	want = []serverChange{{op: opRemove, id: "2"}, {opAddVoter, "4", "r4"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := planVoters(servers, members(1, 3, 4, 5), 3, dead, now, -1); len(got) != 0 {
		t.Fatalf("replacement disabled but planned %v", got)
	}
	// A broker back at a new address keeps its suffrage.
	moved := members(1, 2, 3)
	moved[1].RaftAddr = "elsewhere"
	got = planVoters(servers[:3], moved, 3, nil, now, time.Second)
	if want := []serverChange{{opAddVoter, "2", "elsewhere"}}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPlanMetadata(t *testing.T) {
	img := emptyImage()
	cmds := planMetadata(img, livenessPlan{register: members(1, 2)}, func() string { return "cid" })
	if len(cmds) != 3 || cmds[0].Type() != TypeInitCluster || cmds[1].Type() != TypeRegisterBroker {
		t.Fatalf("fresh cluster: %v", cmds)
	}
	b := newBuilder(t, 1, 2, 3)
	if cmds := planMetadata(b.img, livenessPlan{}, nil); len(cmds) != 0 {
		t.Fatalf("steady state planned %v", cmds)
	}
	cmds = planMetadata(b.img, livenessPlan{fence: []int32{2}}, nil)
	if len(cmds) != 1 || cmds[0].Payload != (FenceBroker{ID: 2}) {
		t.Fatalf("dead broker 2: %v", cmds)
	}
}

func TestSubscriptionOrderAndLag(t *testing.T) {
	f := newFSM(testLogger(t))
	sub, start := f.subscribe(2)
	defer sub.Close()
	if start.Index() != 0 {
		t.Fatalf("start image %v", start)
	}
	apply := func(i uint64, p Payload) {
		cmd, err := prepare(f.image.Load(), NewCommand(p), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := encodeCommand(cmd)
		if res := f.Apply(rawLog(i, data)).(applyResult); res.err != nil {
			t.Fatal(res.err)
		}
	}
	apply(1, registerCmd(1, ""))
	apply(2, registerCmd(2, ""))
	ctx := ctxTimeout(t, 5*time.Second)
	for want := uint64(1); want <= 2; want++ {
		ch, err := sub.Next(ctx)
		if err != nil || ch.Resync || ch.Index != want || ch.Prev == nil {
			t.Fatalf("change %d: %+v %v", want, ch, err)
		}
	}
	// Overflow the buffer of 2: the subscriber gets the buffered changes,
	// then one resync at the latest image, then normal changes again.
	for i := uint64(3); i <= 7; i++ {
		apply(i, registerCmd(int32(i), ""))
	}
	var got []uint64
	for range 3 {
		ch, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.Index)
		if len(got) == 3 && (!ch.Resync || ch.Image != f.image.Load()) {
			t.Fatalf("third item should be a resync at the latest image: %+v", ch)
		}
	}
	if !slices.Equal(got, []uint64{3, 4, 7}) {
		t.Fatalf("delivered %v", got)
	}
	apply(8, registerCmd(8, ""))
	if ch, err := sub.Next(ctx); err != nil || ch.Index != 8 || ch.Resync {
		t.Fatalf("after resync: %+v %v", ch, err)
	}
	// Next blocks until ctx ends, and ends with ErrClosed after Close.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle Next: %v", err)
	}
	sub.Close()
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestReplicaActions(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2}}})
	tp, _ := b.img.Topic("t")
	prev := b.img
	next, ch, err := prev.apply(prev.index+1, NewCommand(FenceBroker{ID: 1}))
	if err != nil {
		t.Fatal(err)
	}
	acts := ch.ReplicaActions(2)
	if len(acts) != 1 || acts[0].Kind != BecomeLeader || acts[0].TopicID != tp.ID || acts[0].State.LeaderEpoch != 1 {
		t.Fatalf("broker 2 should become leader: %+v", acts)
	}
	if acts := ch.ReplicaActions(1); len(acts) != 1 || acts[0].Kind != BecomeFollower {
		t.Fatalf("broker 1 should be a follower: %+v", acts)
	}
	if acts := ch.ReplicaActions(3); len(acts) != 0 {
		t.Fatalf("broker 3 hosts nothing: %+v", acts)
	}
	_, ch, err = next.apply(next.index+1, NewCommand(ReassignPartition{Topic: "t", Replicas: []int32{2, 3}}))
	if err != nil {
		t.Fatal(err)
	}
	if acts := ch.ReplicaActions(1); len(acts) != 1 || acts[0].Kind != StopReplica {
		t.Fatalf("broker 1 reassigned away: %+v", acts)
	}
	if acts := ch.ReplicaActions(3); len(acts) != 1 || acts[0].Kind != BecomeFollower {
		t.Fatalf("broker 3 added: %+v", acts)
	}
	resync := &Change{Resync: true, Image: next}
	if acts := resync.ReplicaActions(2); len(acts) != 1 || acts[0].Kind != BecomeLeader {
		t.Fatalf("resync: %+v", acts)
	}
}

func TestDefaultReplicationFactorAndMinISR(t *testing.T) {
	for _, c := range []struct {
		def  int16
		live int
		want int16
	}{{AutoReplicationFactor, 0, 1}, {AutoReplicationFactor, 1, 1}, {AutoReplicationFactor, 2, 2}, {AutoReplicationFactor, 3, 3}, {AutoReplicationFactor, 5, 3}, {2, 5, 2}} {
		if got := defaultReplicationFactor(c.def, c.live); got != c.want {
			t.Errorf("defaultReplicationFactor(%d, %d) = %d, want %d", c.def, c.live, got, c.want)
		}
	}
	for rf, want := range map[int]int{1: 1, 2: 1, 3: 2, 5: 2} {
		if got := (Topic{Partitions: []Partition{{Replicas: make([]int32, rf)}}}).MinInsyncReplicas(); got != want {
			t.Errorf("rf %d: min isr %d, want %d", rf, got, want)
		}
	}
	if got := (Topic{Configs: map[string]string{ConfigMinInsyncReplicas: "3"}, Partitions: []Partition{{Replicas: make([]int32, 3)}}}).MinInsyncReplicas(); got != 3 {
		t.Errorf("explicit min isr: %d", got)
	}
	if err := checkMinInsyncReplicas("t", map[string]string{ConfigMinInsyncReplicas: "4"}, 3); !errors.Is(err, ErrInvalidTopicConfig) {
		t.Errorf("min isr 4 with rf 3: %v", err)
	}
}
