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
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test_broker", i)
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
func TestReplicatedSegmentsAreIdentical(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic("repl"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "repl"); err != nil {
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
	for part := int32(0); part < 3; part++ {
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
	fetch := func(replicaID int32, offset int64, currentEpoch int32) int16 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.ReplicaID = replicaID
		req.MaxWaitMillis = 0
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "bad"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.PartitionMaxBytes = offset, currentEpoch, -1, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader.cfg.ID)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := fetch(7, 0, meta.LeaderEpoch); code != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("fetch from replica id 7 (not a replica): code %d, want UNKNOWN_LEADER_EPOCH", code)
	}
	if code := fetch(7, 0, -1); code != kerr.NotLeaderForPartition.Code {
		t.Errorf("fetch from replica id 7 without an epoch: code %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
	if code := fetch(follower, 1000, meta.LeaderEpoch); code != kerr.OffsetOutOfRange.Code {
		t.Errorf("follower fetch past the log end: code %d, want OFFSET_OUT_OF_RANGE", code)
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
