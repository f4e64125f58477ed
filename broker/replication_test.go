package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startTestCluster starts n in-process brokers on loopback that form one
// cluster, and waits until all are ready.
func startTestCluster(t testing.TB, n int, adjust func(*Config)) []*Broker {
	t.Helper()
	var brokers []*Broker
	var join []string
	// memberlist may log from a goroutine that outlives its Shutdown; the
	// writer stops passing lines to t once the brokers are shut down (its
	// cleanup is registered first, so it runs last).
	w := &stoppableWriter{t: t}
	t.Cleanup(w.stop)
	for i := 0; i < n; i++ {
		cfg := DefaultConfig()
		cfg.ID = int32(i)
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.RaftAddr, cfg.GossipAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.FastFailureDetection = true
		cfg.BootstrapExpect = n
		cfg.Join = join
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: testLogLevel})).With("test_broker", i)
		if adjust != nil {
			adjust(&cfg)
		}
		b := launchTestBroker(t, cfg)
		if i == 0 {
			join = []string{b.Node().GossipAddr()}
		}
		brokers = append(brokers, b)
	}
	for _, b := range brokers {
		waitFor(t, 30*time.Second, fmt.Sprintf("broker %d ready", b.cfg.ID), b.Ready)
	}
	waitFor(t, 30*time.Second, "all brokers registered", func() bool {
		for _, b := range brokers {
			if len(b.node.Image().LiveBrokers()) != n {
				return false
			}
		}
		return true
	})
	return brokers
}

type stoppableWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool // guarded by mu
}

func (w *stoppableWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *stoppableWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func clusterSeeds(brokers []*Broker) []string {
	var out []string
	for _, b := range brokers {
		out = append(out, b.KafkaAddr())
	}
	return out
}

// segmentFiles reads every .log file of a partition directory, by name.
func segmentFiles(t testing.TB, b *Broker, topic string, partition int32) map[string][]byte {
	t.Helper()
	p := b.replicas.get(topic, partition)
	if p == nil {
		t.Fatalf("broker %d does not host %s-%d", b.cfg.ID, topic, partition)
	}
	names, err := filepath.Glob(filepath.Join(p.log.Dir(), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = data
	}
	return out
}

// After an acks=all load on RF=3, every replica of every partition holds
// byte-identical segment files, and the high watermark is the log end.
// With num.replica.fetchers 3 the partitions a follower pulls from one
// leader spread over several fetchers (connections).
func TestReplicatedSegmentsAreIdentical(t *testing.T) {
	for _, fetchers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d-fetchers", fetchers), func(t *testing.T) { testReplicatedSegmentsAreIdentical(t, fetchers) })
	}
}

func testReplicatedSegmentsAreIdentical(t *testing.T, fetchers int) {
	brokers := startTestCluster(t, 3, func(c *Config) { c.NumReplicaFetchers = fetchers })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic("repl"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const partitions = 12
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 3, nil, "repl"); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	acked := 0
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 11)), Value: bytes.Repeat([]byte{byte(i)}, 100)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			acked++
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if acked != n {
		t.Fatalf("acked %d of %d", acked, n)
	}
	for part := int32(0); part < partitions; part++ {
		var leo int64 = -1
		waitFor(t, 10*time.Second, fmt.Sprintf("partition %d replicated", part), func() bool {
			ends := map[int64]bool{}
			for _, b := range brokers {
				p := b.replicas.get("repl", part)
				if p == nil {
					return false
				}
				ends[p.log.LogEndOffset()] = true
				leo = p.log.LogEndOffset()
			}
			return len(ends) == 1
		})
		want := segmentFiles(t, brokers[0], "repl", part)
		for _, b := range brokers[1:] {
			got := segmentFiles(t, b, "repl", part)
			if len(got) != len(want) {
				t.Fatalf("partition %d: broker %d has %d segments, broker 0 %d", part, b.cfg.ID, len(got), len(want))
			}
			names := make([]string, 0, len(want))
			for name := range want {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if !bytes.Equal(got[name], want[name]) {
					t.Fatalf("partition %d segment %s differs between broker 0 (%d bytes) and broker %d (%d bytes)",
						part, name, len(want[name]), b.cfg.ID, len(got[name]))
				}
			}
		}
		for _, b := range brokers {
			if p := b.replicas.get("repl", part); p.leads() && p.highWatermark() != leo {
				t.Fatalf("partition %d: leader %d has hw %d, log end %d", part, b.cfg.ID, p.highWatermark(), leo)
			}
		}
		t.Logf("partition %d: %d records on all three replicas", part, leo)
	}
	for _, b := range brokers {
		// A follower pulls 4 partitions from each of 2 leaders: on one
		// fetcher per leader, or spread over more.
		got := b.repl.Fetchers()
		if (fetchers == 1 && got != 2) || (fetchers > 1 && got <= 2) {
			t.Errorf("broker %d runs %d fetchers with num.replica.fetchers %d, want %s", b.cfg.ID, got, fetchers,
				map[bool]string{true: "2", false: "more than 2"}[fetchers == 1])
		}
	}
	// Followers are served by the consumers' zero-copy path: with no
	// consumer running, the leaders' sendfile bytes cover what the
	// followers appended.
	var sent, copied, fetched int64
	for _, b := range brokers {
		st := b.server.Stats()
		sent, copied = sent+int64(st.ReplicaSendfileBytes), copied+int64(st.ReplicaCopiedBytes)
		for _, n := range b.repl.Metrics().FetchedBytes() {
			fetched += n
		}
	}
	t.Logf("followers appended %d bytes; leaders sent %d with sendfile, copied %d", fetched, sent, copied)
	if fetched == 0 || float64(sent) < 0.99*float64(fetched) || copied != 0 {
		t.Fatalf("followers appended %d bytes; leaders sent %d with sendfile, copied %d", fetched, sent, copied)
	}
}

// DeleteRecords on a replicated partition answers once every replica's log
// start moved; ListOffsets and the metrics see the replicated state.
func TestReplicatedDeleteRecords(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic("del"),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "del"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "del", Partition: 0, At: 7})
	res, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := res.Lookup("del", 0)
	if r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete records: %+v", r)
	}
	for _, b := range brokers {
		if got := b.replicas.get("del", 0).log.LogStartOffset(); got != 7 {
			t.Errorf("broker %d: log start %d when DeleteRecords answered, want 7", b.cfg.ID, got)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "del")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("del", 0); o.Err != nil || o.Offset != 20 {
		t.Fatalf("end offset %+v, want 20", o)
	}
}

// Bad replication input gets Kafka's codes and leaves the cluster serving:
// a Fetch with a replica id that is not a replica, a follower fetch past
// the leader's log end, an AlterPartition from a broker that does not lead,
// and a replication factor above the broker count.
func TestReplicationBadInput(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic("bad"),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "bad"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	meta, _ := brokers[0].node.Image().Partition("bad", 0)
	leader := brokers[meta.Leader]
	var follower int32 = -1
	for _, r := range meta.Replicas {
		if r != meta.Leader {
			follower = r
		}
	}
	topicID := func(name string) [16]byte {
		tp, _ := leader.node.Image().Topic(name)
		return tp.ID
	}
	epochOf := func(id int32) int64 {
		br, _ := leader.node.Image().Broker(id)
		return br.Epoch
	}
	// fetchAs sends a Fetch at version naming replicaID (with brokerEpoch
	// from v15 on) and returns the partition's error code.
	fetchAs := func(version int16, topic string, replicaID int32, brokerEpoch int64, offset int64, currentEpoch int32) int16 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version = version
		req.ReplicaID = replicaID
		if version >= 15 {
			req.ReplicaID = -1
			req.ReplicaState.ID, req.ReplicaState.Epoch = replicaID, brokerEpoch
		}
		req.MaxWaitMillis = 0
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID(topic)
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.PartitionMaxBytes = offset, currentEpoch, -1, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrFetchResponse()
		rawRoundTrip(t, leader.KafkaAddr(), req, resp)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	fetch := func(replicaID int32, offset int64, currentEpoch int32) int16 {
		t.Helper()
		return fetchAs(15, "bad", replicaID, epochOf(replicaID), offset, currentEpoch)
	}
	// Who the follower says it is: a client that only sets a replica id
	// (Fetch v12), a wrong or stale broker epoch, or an unregistered id is
	// refused, and its fetch counts for nothing.
	if code := fetchAs(12, "bad", follower, 0, 1, meta.LeaderEpoch); code != kerr.StaleBrokerEpoch.Code {
		t.Errorf("v12 fetch posing as follower %d: code %d, want STALE_BROKER_EPOCH", follower, code)
	}
	if code := fetchAs(15, "bad", follower, epochOf(follower)-1, 1, meta.LeaderEpoch); code != kerr.StaleBrokerEpoch.Code {
		t.Errorf("v15 fetch as follower %d with a stale broker epoch: code %d, want STALE_BROKER_EPOCH", follower, code)
	}
	if code := fetch(7, 0, meta.LeaderEpoch); code != kerr.StaleBrokerEpoch.Code {
		t.Errorf("fetch from replica id 7 (no such broker): code %d, want STALE_BROKER_EPOCH", code)
	}
	if code := fetchAs(15, "bad", follower, epochOf(follower), 0, meta.LeaderEpoch); code != 0 {
		t.Errorf("v15 fetch as follower %d with its broker epoch: code %d, want none", follower, code)
	}
	// A registered broker that is not a replica of the partition.
	res, err := leader.node.Submit(ctx, cluster.NewCommand(cluster.CreateTopic{Name: "bad-one", NumPartitions: -1, ReplicationFactor: -1, Assignment: [][]int32{{leader.cfg.ID}}}))
	if err != nil {
		t.Fatal(err)
	}
	leader.replicas.waitApplied(ctx, res.Index)
	one, _ := leader.node.Image().Partition("bad-one", 0)
	if code := fetchAs(15, "bad-one", follower, epochOf(follower), 0, one.LeaderEpoch); code != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("fetch from broker %d, not a replica: code %d, want UNKNOWN_LEADER_EPOCH", follower, code)
	}
	if code := fetchAs(15, "bad-one", follower, epochOf(follower), 0, -1); code != kerr.NotLeaderForPartition.Code {
		t.Errorf("fetch from broker %d, not a replica, without an epoch: code %d, want NOT_LEADER_OR_FOLLOWER", follower, code)
	}
	_, err = leader.node.Submit(ctx, cluster.NewCommand(cluster.AlterPartition{Topic: "bad", Partition: 0, Leader: follower,
		LeaderEpoch: meta.LeaderEpoch, PartitionEpoch: meta.PartitionEpoch, ISR: []int32{follower}}))
	if code := cluster.ErrorCode(err); code != kerr.NotLeaderForPartition.Code {
		t.Errorf("AlterPartition from broker %d, not the leader: %v (code %d), want NOT_LEADER_OR_FOLLOWER", follower, err, code)
	}
	if _, err := adm.CreateTopic(ctx, 1, 4, nil, "bad-rf"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("rf 4 on three brokers: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	// Still serving, with the full ISR.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the bad input: %v", err)
	}
	if p, _ := leader.node.Image().Partition("bad", 0); len(p.ISR) != 3 {
		t.Fatalf("isr after the bad input: %v", p.ISR)
	}
}

// A follower whose fetch is parked at a leader learns of a new partition
// there (a new topic, or leaderships moving in a failover): the parked
// fetch does not name it, so without cutting it short the partition's
// acks=all writes would wait out replica.fetch.wait.max.ms (here 5 s).
func TestNewPartitionDoesNotWaitForParkedFollowerFetch(t *testing.T) {
	const fetchWait = 5 * time.Second
	brokers := startTestCluster(t, 3, func(c *Config) { c.ReplicaFetchMaxWait = fetchWait })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Fetchers from every follower to every leader, parked once idle.
	// A create that kadm retried after a controller change may find the
	// topic made by its first attempt, as any client may.
	create := func(topic string) error {
		_, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	}
	if err := create("first"); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "first", Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		topic := fmt.Sprintf("later-%d", round)
		if err := create(topic); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("y")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("%s: first acks=all write acknowledged in %v", topic, took.Round(time.Millisecond))
		if took >= fetchWait/2 {
			t.Fatalf("%s: the first acks=all write took %v: it waited for a parked follower fetch (replica.fetch.wait.max.ms %v)", topic, took, fetchWait)
		}
	}
}

// testLogLevel is what the in-process cluster tests log; slog.LevelDebug
// shows the fetchers' and replicas' decisions.
var testLogLevel = slog.LevelWarn
