package broker

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/barge-broker/barge/cluster"
)

// metadataRequests counts the Metadata requests a franz-go client writes.
type metadataRequests struct{ n atomic.Int64 }

func (m *metadataRequests) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Metadata) && err == nil {
		m.n.Add(1)
	}
}

// TestProduceFollowsLeaderHint: when the leadership of a partition moves
// while its old leader stays up, the old leader's NOT_LEADER_OR_FOLLOWER
// names the new leader and how to reach it (KIP-951, Produce v10+), and
// franz-go moves its produces there without a Metadata request. Its
// metadata min age is set to a minute, so without the hint the produces
// would wait that minute for a refresh and the test's 20 s would run out.
// A franz-go consumer (Fetch v16) follows the same way.
// A Fetch to the old leader gets the new leader, epoch and address too.
func TestProduceFollowsLeaderHint(t *testing.T) {
	const topic = "hinted"
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	partition := func(b *Broker) cluster.Partition {
		p, _ := b.metadataImage().Partition(topic, 0)
		return p
	}
	waitFor(t, 10*time.Second, "all three replicas in sync", func() bool { return len(partition(brokers[0]).ISR) == 3 })

	var metas metadataRequests
	cl, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(time.Minute), kgo.MetadataMaxAge(2*time.Minute),
		kgo.WithHooks(&metas))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(ctx context.Context, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			r := &kgo.Record{Value: []byte(fmt.Sprint(i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if r.Offset != int64(i) {
				t.Fatalf("record %d at offset %d", i, r.Offset)
			}
		}
	}
	produce(ctx, 0, 5)
	var consumerMetas metadataRequests
	consumer, err := kgo.NewClient(kgo.SeedBrokers(clusterSeeds(brokers)...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(time.Minute), kgo.MetadataMaxAge(2*time.Minute),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.WithHooks(&consumerMetas))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	consume := func(ctx context.Context, from, to int) {
		t.Helper()
		for next := from; next < to; {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed up to %d of %d..%d: %v", next, from, to-1, ctx.Err())
			}
			fs.EachRecord(func(r *kgo.Record) {
				if string(r.Value) != fmt.Sprint(next) {
					t.Fatalf("consumed %q, want %d", r.Value, next)
				}
				next++
			})
		}
	}
	consume(ctx, 0, 5)

	// Move the leadership to another replica: put it first, then a
	// preferred election.
	old := partition(brokers[0])
	next := old.Replicas[slices.IndexFunc(old.Replicas, func(id int32) bool { return id != old.Leader })]
	order := append([]int32{next}, slices.DeleteFunc(slices.Clone(old.Replicas), func(id int32) bool { return id == next })...)
	if _, err := brokers[0].node.Submit(ctx, cluster.NewCommand(cluster.ReassignPartition{Topic: topic, Partition: 0, Replicas: order})); err != nil {
		t.Fatal(err)
	}
	set := kadm.TopicsSet{}
	set.Add(topic, 0)
	if _, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every broker has the new leader", func() bool {
		for _, b := range brokers {
			if p := partition(b); p.Leader != next || b.replicas.get(topic, 0).leads() != (b.cfg.ID == next) {
				return false
			}
		}
		return true
	})
	now := partition(brokers[0])

	before, consumerBefore := metas.n.Load(), consumerMetas.n.Load()
	start := time.Now()
	hinted, cancelHinted := context.WithTimeout(ctx, 20*time.Second)
	produce(hinted, 5, 10)
	produced := time.Since(start)
	consume(hinted, 5, 10)
	consumed := time.Since(start)
	cancelHinted()
	if n := metas.n.Load() - before; n != 0 {
		t.Errorf("the producer sent %d Metadata request(s) to find the new leader; the hint should have told it", n)
	}
	if n := consumerMetas.n.Load() - consumerBefore; n != 0 {
		t.Errorf("the consumer sent %d Metadata request(s) to find the new leader; the hint should have told it", n)
	}
	t.Logf("leadership moved from broker %d to %d (epoch %d to %d); 5 acks=all records produced %v and consumed %v later, without a Metadata request",
		old.Leader, next, old.LeaderEpoch, now.LeaderEpoch, produced, consumed)

	// A consumer's fetch (franz-go sends v16) to the old leader is told
	// the new leader and where it listens.
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 0, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	tp, _ := brokers[0].metadataImage().Topic(topic)
	rt.Topic, rt.TopicID = topic, tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 1<<20, old.LeaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := cl.Broker(int(old.Leader)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.FetchResponse)
	fp := resp.Topics[0].Partitions[0]
	if fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != next || fp.CurrentLeader.LeaderEpoch != now.LeaderEpoch {
		t.Errorf("fetch v%d to the old leader: error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming broker %d at epoch %d",
			resp.Version, fp.ErrorCode, fp.CurrentLeader, next, now.LeaderEpoch)
	}
	if resp.Version < 16 || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != next ||
		fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != brokers[next].KafkaAddr() {
		t.Errorf("fetch v%d to the old leader lists endpoints %+v; want broker %d at %s", resp.Version, resp.Brokers, next, brokers[next].KafkaAddr())
	}
}
