package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A request naming many partitions the broker does not lead waits for its
// metadata to catch up once, not once per partition. Here the broker has
// lost the Raft quorum, so each catch-up is a read barrier that fails after
// metadataSyncTimeout: before, a produce and a fetch naming 30 partitions
// led elsewhere each took about 20 of those seconds (a follower's fetch of
// 3,000 such partitions held a broker's shutdown for most of an hour).
func TestManyUnledPartitionsWaitForMetadataOnce(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const parts = 30
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, "unled"); err != nil {
		t.Fatal(err)
	}
	survivor := brokers[2]
	unled := map[int32]bool{}
	waitFor(t, 30*time.Second, "every partition led", func() bool {
		clear(unled)
		for p := range int32(parts) {
			meta, ok := survivor.node.Image().Partition("unled", p)
			if !ok || meta.Leader < 0 {
				return false
			}
			if meta.Leader != survivor.cfg.ID {
				unled[p] = true
			}
		}
		return true
	})
	cl.Close()
	for _, b := range brokers[:2] {
		shutCtx, shutCancel := context.WithTimeout(ctx, 30*time.Second)
		if err := b.Shutdown(shutCtx); err != nil {
			t.Fatal(err)
		}
		shutCancel()
	}

	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 5000
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = 11, -1, 0, 1<<20
	pt, ft := kmsg.NewProduceRequestTopic(), kmsg.NewFetchRequestTopic()
	pt.Topic, ft.Topic = "unled", "unled"
	for p := range int32(parts) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p
		pt.Partitions = append(pt.Partitions, pp)
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = p, 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
	}
	produce.Topics, fetch.Topics = append(produce.Topics, pt), append(fetch.Topics, ft)

	start := time.Now()
	presp := kmsg.NewPtrProduceResponse()
	rawRoundTrip(t, survivor.KafkaAddr(), produce, presp)
	produceTook := time.Since(start)
	start = time.Now()
	fresp := kmsg.NewPtrFetchResponse()
	rawRoundTrip(t, survivor.KafkaAddr(), fetch, fresp)
	fetchTook := time.Since(start)
	t.Logf("without a Raft quorum, %d of %d partitions led elsewhere: produce answered in %v, fetch in %v",
		len(unled), parts, produceTook.Round(time.Millisecond), fetchTook.Round(time.Millisecond))

	for _, st := range presp.Topics {
		for _, sp := range st.Partitions {
			if unled[sp.Partition] && sp.ErrorCode != kerr.NotLeaderForPartition.Code {
				t.Errorf("produce: partition %d, led elsewhere: error %d, want NOT_LEADER_OR_FOLLOWER", sp.Partition, sp.ErrorCode)
			}
		}
	}
	for _, st := range fresp.Topics {
		for _, sp := range st.Partitions {
			if unled[sp.Partition] && sp.ErrorCode != kerr.NotLeaderForPartition.Code {
				t.Errorf("fetch: partition %d, led elsewhere: error %d, want NOT_LEADER_OR_FOLLOWER", sp.Partition, sp.ErrorCode)
			}
		}
	}
	// One failed barrier is metadataSyncTimeout; a wait per partition
	// would be len(unled) of them.
	for what, took := range map[string]time.Duration{"produce": produceTook, "fetch": fetchTook} {
		if took > 3*metadataSyncTimeout {
			t.Errorf("the %s naming %d partitions led elsewhere took %v: it waited for metadata once per partition", what, len(unled), took)
		}
	}
}
