package e2e

import (
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetForLeaderEpochGivesConsumersTheLogEnd: a consumer's
// OffsetForLeaderEpoch for the current epoch gets the end of the leader's
// log, as Kafka answers, even while the high watermark is below it.
// Clamped to the HW, the answer told franz-go consumers that records they
// had read were truncated whenever the HW was behind what they had read
// (after every broker is killed, the HW restarts from its periodic
// checkpoint), and they rewound and read them again: barge-jepsen found it
// as nonmonotonic-poll under kill -9 of all brokers. Here a killed
// follower, still in the ISR, holds the HW below the log end.
func TestOffsetForLeaderEpochGivesConsumersTheLogEnd(t *testing.T) {
	const topic = "ofle"
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: []string{"--replica-lag-time-max", "2m"}})
	ctx := harness.Context(t, 90*time.Second)
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.KafkaAddr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	var leader int32
	var epoch int32
	brokers[0].WaitFor(30*time.Second, "a leader with a full ISR", func() bool {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false
		}
		p := md.Topics[topic].Partitions[0]
		leader, epoch = p.Leader, p.LeaderEpoch
		return p.Leader >= 0 && len(p.ISR) == 3
	})
	produce := func(n int) {
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	hw := func() int64 {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup(topic, 0)
		return o.Offset
	}
	produce(5)
	brokers[0].WaitFor(10*time.Second, "HW 5", func() bool { return hw() == 5 })
	for _, b := range brokers {
		if int32(b.ID) != leader {
			b.Kill() // stays in the ISR for --replica-lag-time-max
			break
		}
	}
	produce(5) // acks=1: the log end moves to 10, the HW cannot
	if h := hw(); h != 5 {
		t.Fatalf("HW %d, want 5 (held by the killed follower): the test shows nothing", h)
	}

	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1 // a consumer
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, epoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		t.Fatal(err)
	}
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode != 0 || got.EndOffset != 10 || got.LeaderEpoch != epoch {
		t.Fatalf("OffsetForLeaderEpoch(epoch %d) = epoch %d end %d error %d, want the log end 10 (the HW is 5)",
			epoch, got.LeaderEpoch, got.EndOffset, got.ErrorCode)
	}
}
