package cluster

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// imageBuilder applies commands to an image the way the controller and FSM
// do (prepare, then apply at the next index).
type imageBuilder struct {
	t   testing.TB
	img *Image
	idx uint64
}

func newBuilder(t testing.TB, brokers ...int32) *imageBuilder {
	b := &imageBuilder{t: t, img: emptyImage()}
	b.must(InitCluster{ClusterID: "test-cluster"})
	for _, id := range brokers {
		b.must(registerCmd(id, ""))
	}
	return b
}

func registerCmd(id int32, rack string) RegisterBroker {
	return RegisterBroker{ID: id, KafkaAddr: "k", RaftAddr: "r", Rack: rack}
}

// try prepares and applies p, returning the error.
func (b *imageBuilder) try(p Payload) error {
	cmd, err := prepare(b.img, NewCommand(p), 1, 1)
	if err != nil {
		return err
	}
	// Round-trip through the log encoding, as raft would.
	data, err := encodeCommand(cmd)
	if err != nil {
		b.t.Fatalf("encode %v: %v", cmd, err)
	}
	if cmd, err = decodeCommand(data); err != nil {
		b.t.Fatalf("decode %s: %v", data, err)
	}
	b.idx++
	next, _, err := b.img.apply(b.img.index+b.idx, cmd)
	if err == nil {
		b.img = next
	}
	return err
}

func (b *imageBuilder) must(p Payload) {
	b.t.Helper()
	if err := b.try(p); err != nil {
		b.t.Fatalf("%T %+v: %v", p, p, err)
	}
}

func (b *imageBuilder) part(topic string, i int32) Partition {
	b.t.Helper()
	p, ok := b.img.Partition(topic, i)
	if !ok {
		b.t.Fatalf("no partition %s-%d", topic, i)
	}
	return p
}

// TestBadInputRejected checks that each kind of bad command is refused with
// the specific error and Kafka code, and leaves the image unchanged.
func TestBadInputRejected(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "orders", NumPartitions: 3, ReplicationFactor: 3})
	p0 := b.part("orders", 0)
	tests := []struct {
		name string
		cmd  Payload
		want error
		code int16
	}{
		{"duplicate topic", CreateTopic{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}, ErrTopicExists, 36},
		{"rf above broker count", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 4}, ErrInvalidReplicationFactor, 38},
		{"rf zero", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 0}, ErrInvalidReplicationFactor, 38},
		{"rf negative", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: -2}, ErrInvalidReplicationFactor, 38},
		{"zero partitions", CreateTopic{Name: "t", NumPartitions: 0, ReplicationFactor: 1}, ErrInvalidPartitions, 37},
		{"negative partitions", CreateTopic{Name: "t", NumPartitions: -5, ReplicationFactor: 1}, ErrInvalidPartitions, 37},
		{"too many partitions", CreateTopic{Name: "t", NumPartitions: maxPartitions + 1, ReplicationFactor: 1}, ErrInvalidPartitions, 37},
		{"unknown config", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.msx": "1"}}, ErrInvalidTopicConfig, 40},
		{"bad config value", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}}, ErrInvalidTopicConfig, 40},
		{"config out of range", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"segment.bytes": "10"}}, ErrInvalidTopicConfig, 40},
		{"bad cleanup policy", CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "forever"}}, ErrInvalidTopicConfig, 40},
		{"bad topic name", CreateTopic{Name: "a/b", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName, 17},
		{"assignment names unknown broker", CreateTopic{Name: "t", Assignment: [][]int32{{1, 9}}}, ErrInvalidReplicaAssignment, 39},
		{"assignment with duplicates", CreateTopic{Name: "t", Assignment: [][]int32{{1, 1}}}, ErrInvalidReplicaAssignment, 39},
		{"assignment ragged", CreateTopic{Name: "t", Assignment: [][]int32{{1, 2}, {3}}}, ErrInvalidReplicaAssignment, 39},
		{"delete unknown topic", DeleteTopic{Name: "nope"}, ErrUnknownTopic, 3},
		{"partitions of unknown topic", CreatePartitions{Topic: "nope", Count: 4}, ErrUnknownTopic, 3},
		{"shrink partitions", CreatePartitions{Topic: "orders", Count: 2}, ErrInvalidPartitions, 37},
		{"same partition count", CreatePartitions{Topic: "orders", Count: 3}, ErrInvalidPartitions, 37},
		{"alter configs unknown topic", AlterConfigs{Topic: "nope", Set: map[string]string{"retention.ms": "1"}}, ErrUnknownTopic, 3},
		{"alter configs invalid", AlterConfigs{Topic: "orders", Set: map[string]string{"min.insync.replicas": "0"}}, ErrInvalidTopicConfig, 40},
		{"alter configs delete unknown key", AlterConfigs{Topic: "orders", Delete: []string{"nope"}}, ErrInvalidTopicConfig, 40},
		{"alter partition unknown topic", AlterPartition{Topic: "nope", Leader: 1, ISR: []int32{1}}, ErrUnknownTopic, 3},
		{"alter partition unknown partition", AlterPartition{Topic: "orders", Partition: 7, Leader: 1, ISR: []int32{1}}, ErrUnknownPartition, 3},
		{"alter partition stale partition epoch", AlterPartition{Topic: "orders", Leader: p0.Leader, LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch - 1, ISR: []int32{p0.Leader}}, ErrStalePartitionEpoch, 95},
		{"alter partition stale leader epoch", AlterPartition{Topic: "orders", Leader: p0.Leader, LeaderEpoch: p0.LeaderEpoch - 1, PartitionEpoch: p0.PartitionEpoch, ISR: []int32{p0.Leader}}, ErrStaleLeaderEpoch, 74},
		{"alter partition not leader", AlterPartition{Topic: "orders", Leader: p0.Replicas[1], LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch, ISR: []int32{p0.Replicas[1]}}, ErrNotLeader, 6},
		{"alter partition isr outside replicas", AlterPartition{Topic: "orders", Leader: p0.Leader, LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch, ISR: []int32{p0.Leader, 42}}, ErrInvalidISR, 42},
		{"alter partition isr without leader", AlterPartition{Topic: "orders", Leader: p0.Leader, LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch, ISR: []int32{p0.Replicas[1]}}, ErrInvalidISR, 42},
		{"alter partition stale broker epoch", AlterPartition{Topic: "orders", Leader: p0.Leader, BrokerEpoch: 1, LeaderEpoch: p0.LeaderEpoch, PartitionEpoch: p0.PartitionEpoch, ISR: []int32{p0.Leader}}, ErrStaleBrokerEpoch, 77},
		{"fence unknown broker", FenceBroker{ID: 9}, ErrUnknownBroker, 102},
		{"reassign to unknown broker", ReassignPartition{Topic: "orders", Replicas: []int32{1, 9}}, ErrInvalidReplicaAssignment, 39},
		{"reassign unknown topic", ReassignPartition{Topic: "nope", Replicas: []int32{1}}, ErrUnknownTopic, 3},
		{"elect on leader present", ElectLeader{Topic: "orders", Election: ElectClean}, ErrElectionNotNeeded, 84},
		{"elect unknown topic", ElectLeader{Topic: "nope"}, ErrUnknownTopic, 3},
		{"second cluster id", InitCluster{ClusterID: "other"}, ErrClusterIDMismatch, 104},
		{"register without addresses", RegisterBroker{ID: 5}, ErrInvalidCommand, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.img
			err := b.try(tt.cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got := ErrorCode(err); got != tt.code {
				t.Fatalf("ErrorCode(%v) = %d, want %d", err, got, tt.code)
			}
			if b.img != before {
				t.Fatalf("image changed by a refused command")
			}
			// The FSM refuses it too when it bypasses prepare (a command
			// prepared against an older image).
			if _, ch, err := b.img.apply(b.img.index+1000, NewCommand(tt.cmd)); err == nil && ch != nil {
				if _, isCreate := tt.cmd.(CreateTopic); !isCreate {
					t.Fatalf("apply accepted what prepare refused: %v", ch)
				}
			}
		})
	}
}

func TestUnpreparedCreateTopicRefusedByFSM(t *testing.T) {
	b := newBuilder(t, 1)
	_, _, err := b.img.apply(100, NewCommand(CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1}))
	if !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("got %v, want ErrInvalidCommand", err)
	}
}

func TestFenceMovesLeadershipToLiveISR(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}, {1, 3, 2}}})
	before := b.img
	b.must(FenceBroker{ID: 1})
	for i := int32(0); i < 3; i++ {
		old, now := partOf(before, "t", i), b.part("t", i)
		if slices.Contains(now.ISR, 1) {
			t.Fatalf("partition %d: fenced broker still in isr %v", i, now.ISR)
		}
		if old.Leader == 1 {
			if now.Leader == 1 || now.Leader == NoLeader || now.LeaderEpoch != old.LeaderEpoch+1 {
				t.Fatalf("partition %d: leader %d epoch %d after fencing leader (was epoch %d)", i, now.Leader, now.LeaderEpoch, old.LeaderEpoch)
			}
			// First live ISR member in replica order.
			if want := map[int32]int32{0: 2, 2: 3}[i]; now.Leader != want {
				t.Fatalf("partition %d: leader %d, want %d", i, now.Leader, want)
			}
		} else if now.Leader != old.Leader || now.LeaderEpoch != old.LeaderEpoch {
			t.Fatalf("partition %d: leadership moved though its leader lives", i)
		}
		if now.PartitionEpoch != old.PartitionEpoch+1 {
			t.Fatalf("partition %d: partition epoch %d, was %d", i, now.PartitionEpoch, old.PartitionEpoch)
		}
	}
	// Broker 1 returns: unfenced with a new epoch, a follower outside the ISR.
	b.must(registerCmd(1, ""))
	br, _ := b.img.Broker(1)
	if br.Fenced || br.Epoch <= 0 {
		t.Fatalf("broker 1 after re-register: %+v", br)
	}
	for i := int32(0); i < 3; i++ {
		if p := b.part("t", i); p.Leader == 1 || slices.Contains(p.ISR, 1) || !slices.Contains(p.Replicas, 1) {
			t.Fatalf("partition %d after return: %+v", i, p)
		}
	}
}

func partOf(img *Image, topic string, i int32) Partition {
	p, _ := img.Partition(topic, i)
	return p
}

func TestOfflineAndUncleanElection(t *testing.T) {
	b := newBuilder(t, 1, 2)
	b.must(CreateTopic{Name: "clean", Assignment: [][]int32{{1, 2}}})
	b.must(CreateTopic{Name: "dirty", Assignment: [][]int32{{1, 2}}, Configs: map[string]string{ConfigUncleanLeaderElection: "true"}})
	// Leader shrinks the ISR to itself, then dies.
	for _, topic := range []string{"clean", "dirty"} {
		p := b.part(topic, 0)
		b.must(AlterPartition{Topic: topic, Leader: 1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{1}})
	}
	b.must(FenceBroker{ID: 1})
	if p := b.part("clean", 0); p.Leader != NoLeader || !slices.Equal(p.ISR, []int32{1}) || p.LeaderEpoch != 1 {
		t.Fatalf("clean partition should be offline keeping its last isr: %+v", p)
	}
	if p := b.part("dirty", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("unclean partition should elect broker 2: %+v", p)
	}
	if err := b.try(ElectLeader{Topic: "clean", Election: ElectClean}); !errors.Is(err, ErrEligibleLeadersNotAvailable) {
		t.Fatalf("clean election with no live isr: %v", err)
	}
	// Enabling unclean election brings the offline partition back.
	b.must(AlterConfigs{Topic: "clean", Set: map[string]string{ConfigUncleanLeaderElection: "true"}})
	if p := b.part("clean", 0); p.Leader != 2 || p.LeaderEpoch != 2 {
		t.Fatalf("after enabling unclean election: %+v", p)
	}
}

func TestOfflinePartitionReturnsWithISRMember(t *testing.T) {
	b := newBuilder(t, 1, 2)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2}}})
	p := b.part("t", 0)
	b.must(AlterPartition{Topic: "t", Leader: 1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{1}})
	b.must(FenceBroker{ID: 1})
	if p := b.part("t", 0); p.Leader != NoLeader {
		t.Fatalf("want offline: %+v", p)
	}
	b.must(registerCmd(1, ""))
	if p := b.part("t", 0); p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Fatalf("returning last isr member should lead with epoch 2: %+v", p)
	}
}

func TestAlterPartitionExpandAndStale(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	p := b.part("t", 0)
	shrink := AlterPartition{Topic: "t", Leader: 1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{1, 2}}
	b.must(shrink)
	if q := b.part("t", 0); q.PartitionEpoch != p.PartitionEpoch+1 || q.LeaderEpoch != p.LeaderEpoch {
		t.Fatalf("isr change must bump only the partition epoch: %+v -> %+v", p, q)
	}
	if err := b.try(shrink); !errors.Is(err, ErrStalePartitionEpoch) {
		t.Fatalf("replayed AlterPartition: %v", err)
	}
	q := b.part("t", 0)
	b.must(FenceBroker{ID: 3})
	r := b.part("t", 0) // fencing a non-ISR member changes nothing
	if r.PartitionEpoch != q.PartitionEpoch {
		t.Fatalf("fencing a broker outside the isr bumped the epoch: %+v", r)
	}
	err := b.try(AlterPartition{Topic: "t", Leader: 1, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch, ISR: []int32{3, 1, 2}})
	if !errors.Is(err, ErrIneligibleReplica) || ErrorCode(err) != 107 {
		t.Fatalf("isr with a fenced broker: %v", err)
	}
	b.must(AlterPartition{Topic: "t", Leader: 1, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch, ISR: []int32{2, 1}})
	if s := b.part("t", 0); !slices.Equal(s.ISR, []int32{1, 2}) {
		t.Fatalf("isr should be kept in replica order, got %v", s.ISR)
	}
}

func TestReassignAndPreferredElection(t *testing.T) {
	b := newBuilder(t, 1, 2, 3, 4)
	b.must(CreateTopic{Name: "t", Assignment: [][]int32{{1, 2, 3}}})
	if err := b.try(ReassignPartition{Topic: "t", Replicas: []int32{4}}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("reassign away from every isr member: %v", err)
	}
	b.must(ReassignPartition{Topic: "t", Replicas: []int32{4, 2, 3}})
	p := b.part("t", 0)
	if p.Leader != 2 || p.LeaderEpoch != 1 || !slices.Equal(p.ISR, []int32{2, 3}) {
		t.Fatalf("after reassign: %+v", p)
	}
	if err := b.try(ElectLeader{Topic: "t", Election: ElectPreferred}); !errors.Is(err, ErrPreferredLeaderNotAvailable) {
		t.Fatalf("preferred replica 4 is not in the isr yet: %v", err)
	}
	b.must(AlterPartition{Topic: "t", Leader: 2, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: []int32{4, 2, 3}})
	b.must(ElectLeader{Topic: "t", Election: ElectPreferred})
	if q := b.part("t", 0); q.Leader != 4 || q.LeaderEpoch != 2 {
		t.Fatalf("preferred election: %+v", q)
	}
	if err := b.try(ElectLeader{Topic: "t", Election: ElectPreferred}); !errors.Is(err, ErrElectionNotNeeded) {
		t.Fatalf("second preferred election: %v", err)
	}
}

func TestDeleteAndRecreateTopic(t *testing.T) {
	b := newBuilder(t, 1, 2)
	b.must(CreateTopic{Name: "t", NumPartitions: 2, ReplicationFactor: 2, Configs: map[string]string{"retention.ms": "1000"}})
	old, _ := b.img.Topic("t")
	b.must(DeleteTopic{Name: "t"})
	if _, ok := b.img.Topic("t"); ok {
		t.Fatal("topic still there")
	}
	if _, ok := b.img.TopicByID(old.ID); ok {
		t.Fatal("topic id still resolves")
	}
	b.must(CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1})
	now, _ := b.img.Topic("t")
	if now.ID == old.ID || len(now.Configs) != 0 || len(now.Partitions) != 1 {
		t.Fatalf("recreated topic inherits old state: %+v", now)
	}
}

func TestAlterConfigsIncrementalAndReplace(t *testing.T) {
	b := newBuilder(t, 1)
	b.must(CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact,delete"}})
	b.must(AlterConfigs{Topic: "t", Set: map[string]string{"segment.bytes": "1048576"}, Delete: []string{"retention.ms"}})
	tp, _ := b.img.Topic("t")
	if want := map[string]string{"segment.bytes": "1048576", "cleanup.policy": "compact,delete"}; !mapsEqual(tp.Configs, want) {
		t.Fatalf("incremental: %v", tp.Configs)
	}
	b.must(AlterConfigs{Topic: "t", Set: map[string]string{"max.message.bytes": "100"}, Replace: true})
	tp, _ = b.img.Topic("t")
	if want := map[string]string{"max.message.bytes": "100"}; !mapsEqual(tp.Configs, want) {
		t.Fatalf("replace: %v", tp.Configs)
	}
	idx := b.img.Index()
	b.must(AlterConfigs{Topic: "t", Set: map[string]string{"max.message.bytes": "100"}})
	if b.img.Index() != idx {
		t.Fatal("a no-op AlterConfigs changed the image")
	}
}

func TestCreatePartitionsAssignsNewOnes(t *testing.T) {
	b := newBuilder(t, 1, 2, 3)
	b.must(CreateTopic{Name: "t", NumPartitions: 2, ReplicationFactor: 2})
	b.must(CreatePartitions{Topic: "t", Count: 5})
	tp, _ := b.img.Topic("t")
	if len(tp.Partitions) != 5 {
		t.Fatalf("%d partitions", len(tp.Partitions))
	}
	for _, p := range tp.Partitions {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] {
			t.Fatalf("partition %+v", p)
		}
	}
	if err := b.try(CreatePartitions{Topic: "t", Count: 6, Assignment: [][]int32{{1, 2, 3}}}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("new partition with another replication factor: %v", err)
	}
}

func TestCommandCodec(t *testing.T) {
	cmds := []Payload{
		InitCluster{ClusterID: "c"}, registerCmd(1, "r1"), FenceBroker{ID: 1},
		CreateTopic{Name: "t", ID: newTopicID(), NumPartitions: 1, ReplicationFactor: 1, Assignment: [][]int32{{1}}, Configs: map[string]string{"a": "b"}},
		DeleteTopic{Name: "t"}, CreatePartitions{Topic: "t", Count: 3, Assignment: [][]int32{{1}, {2}}},
		AlterConfigs{Topic: "t", Set: map[string]string{"x": "y"}, Delete: []string{"z"}, Replace: true},
		AlterPartition{Topic: "t", Partition: 2, Leader: 1, BrokerEpoch: 7, LeaderEpoch: 3, PartitionEpoch: 4, ISR: []int32{1, 2}},
		ElectLeader{Topic: "t", Partition: 1, Election: ElectUnclean}, ReassignPartition{Topic: "t", Replicas: []int32{3, 2}},
		AlterReassignment{Topic: "t", Partition: 1, Replicas: []int32{4, 5}}, AlterReassignment{Topic: "t", Cancel: true},
		DecommissionBroker{ID: 2}, DecommissionBroker{ID: 2, Cancel: true}, UnregisterBroker{ID: 2},
		AlterBrokerConfigs{Set: map[string]string{ConfigLeaderThrottledRate: "10"}, Delete: []string{ConfigFollowerThrottledRate}},
		SetStorageHeld{ID: 3, Held: true}, SetStorageHeld{ID: 3},
	}
	for _, p := range cmds {
		data, err := encodeCommand(NewCommand(p))
		if err != nil {
			t.Fatalf("encode %T: %v", p, err)
		}
		got, err := decodeCommand(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		a, _ := json.Marshal(got.Payload)
		w, _ := json.Marshal(p)
		if got.Version != CommandVersion || got.Type() != p.Type() || string(a) != string(w) {
			t.Fatalf("round trip of %s gave %s", w, a)
		}
	}
	for _, bad := range []string{
		`{"v":5,"type":"fence_broker","body":{"id":1}}`, // above CommandVersion
		`{"v":0,"type":"fence_broker","body":{"id":1}}`,
		`{"v":1,"type":"launch_rockets","body":{}}`,
		`{"v":1,"type":"fence_broker","body":[]}`,
		`not json`,
	} {
		_, err := decodeCommand([]byte(bad))
		if !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("decode %s: %v", bad, err)
		}
		if code := ErrorCode(err); code != 35 && code != 42 {
			t.Fatalf("decode %s: code %d", bad, code)
		}
	}
	// The FSM answers an undecodable entry with an error and no change.
	f := newFSM(testLogger(t))
	res := f.Apply(rawLog(1, []byte(`{"v":9,"type":"fence_broker","body":{}}`)))
	if r := res.(applyResult); !errors.Is(r.err, ErrUnsupportedVersion) || f.image.Load().Index() != 0 || f.appliedIndex() != 1 {
		t.Fatalf("future version: %v, image %v", r.err, f.image.Load())
	}
}

func TestErrorCodeMapping(t *testing.T) {
	if ErrorCode(nil) != 0 || ErrorCode(errors.New("x")) != -1 || ErrorCode(ErrClosed) != -1 {
		t.Fatal("nil, unknown and ErrClosed")
	}
	for _, s := range sentinels {
		if !strings.HasPrefix(s.Error(), "cluster: ") {
			t.Fatalf("sentinel %q lacks the package prefix", s)
		}
		// Through the forwarding protocol's encoding, identity survives.
		resp := encodeRemoteError(errorf(s, "ctx"))
		if got := decodeRemoteError(resp.Kind, resp.Error); !errors.Is(got, s) || ErrorCode(got) != ErrorCode(s) {
			t.Fatalf("%v did not survive forwarding: %v", s, got)
		}
	}
	want := map[error]int16{
		ErrTopicExists: 36, ErrInvalidPartitions: 37, ErrInvalidReplicationFactor: 38,
		ErrInvalidTopicConfig: 40, ErrUnknownTopic: 3, ErrNotController: 41, ErrNoController: 41,
		ErrInvalidCommand: 42, ErrStaleBrokerEpoch: 77, ErrStalePartitionEpoch: 95,
	}
	for err, code := range want {
		if got := ErrorCode(err); got != code {
			t.Fatalf("ErrorCode(%v) = %d, want %d", err, got, code)
		}
	}
}

func rawLog(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}
