package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The error cases of the partition handlers (Produce, Fetch, ListOffsets)
// in one table, against a real three-broker cluster: unknown and not-led
// partitions, leader-epoch fencing both ways (KIP-320), acks, and offsets
// out of range. Each row names the broker asked, so "not the leader" is
// asked of a real follower.
func TestPartitionHandlerErrors(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := brokers[0].node.Submit(ctx, cluster.NewCommand(cluster.CreateTopic{Name: "t", NumPartitions: 1, ReplicationFactor: 3}))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		b.replicas.waitApplied(ctx, res.Index)
	}
	// Move the leadership once, so the leader epoch is 1 and an older one
	// can be sent.
	meta, _ := brokers[0].node.Image().Partition("t", 0)
	rotated := append(append([]int32{}, meta.Replicas[1:]...), meta.Replicas[0])
	for _, cmd := range []cluster.Command{
		cluster.NewCommand(cluster.ReassignPartition{Topic: "t", Partition: 0, Replicas: rotated}),
		cluster.NewCommand(cluster.ElectLeader{Topic: "t", Partition: 0, Election: cluster.ElectPreferred}),
	} {
		if res, err = brokers[0].node.Submit(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range brokers {
		b.replicas.waitApplied(ctx, res.Index)
	}
	meta, _ = brokers[0].node.Image().Partition("t", 0)
	if meta.LeaderEpoch < 1 {
		t.Fatalf("leader epoch %d after a leader change", meta.LeaderEpoch)
	}
	leader := brokers[meta.Leader]
	follower := brokers[(meta.Leader+1)%3]
	epoch := meta.LeaderEpoch
	// One record in, so offsets past the end are out of range.
	if code := produceCode(t, leader, "t", 0, -1, 1); code != 0 {
		t.Fatalf("setup produce: %v", kerr.ErrorForCode(code))
	}

	for _, tc := range []struct {
		name string
		call func() int16
		want *kerr.Error
	}{
		{"produce: unknown topic", func() int16 { return produceCode(t, leader, "nope", 0, -1, 1) }, kerr.UnknownTopicOrPartition},
		{"produce: unknown partition", func() int16 { return produceCode(t, leader, "t", 7, -1, 1) }, kerr.UnknownTopicOrPartition},
		{"produce: to a follower", func() int16 { return produceCode(t, follower, "t", 0, -1, 1) }, kerr.NotLeaderForPartition},
		{"produce: acks=2", func() int16 { return produceCode(t, leader, "t", 0, 2, 1) }, kerr.InvalidRequiredAcks},
		{"produce: acks=all", func() int16 { return produceCode(t, leader, "t", 0, -1, 1) }, nil},
		{"produce: acks=1", func() int16 { return produceCode(t, leader, "t", 0, 1, 1) }, nil},
		{"fetch: unknown topic", func() int16 { return fetchCode(t, leader, "nope", 0, 0, -1) }, kerr.UnknownTopicOrPartition},
		{"fetch: from a follower", func() int16 { return fetchCode(t, follower, "t", 0, 0, -1) }, kerr.NotLeaderForPartition},
		{"fetch: stale leader epoch", func() int16 { return fetchCode(t, leader, "t", 0, 0, epoch-1) }, kerr.FencedLeaderEpoch},
		{"fetch: future leader epoch", func() int16 { return fetchCode(t, leader, "t", 0, 0, epoch+1) }, kerr.UnknownLeaderEpoch},
		{"fetch: past the high watermark", func() int16 { return fetchCode(t, leader, "t", 0, 1000, epoch) }, kerr.OffsetOutOfRange},
		{"fetch: at the current epoch", func() int16 { return fetchCode(t, leader, "t", 0, 0, epoch) }, nil},
		{"list offsets: unknown topic", func() int16 { return listOffsetsCode(t, leader, "nope", -1) }, kerr.UnknownTopicOrPartition},
		{"list offsets: from a follower", func() int16 { return listOffsetsCode(t, follower, "t", -1) }, kerr.NotLeaderForPartition},
		{"list offsets: stale leader epoch", func() int16 { return listOffsetsCode(t, leader, "t", epoch-1) }, kerr.FencedLeaderEpoch},
		{"list offsets: future leader epoch", func() int16 { return listOffsetsCode(t, leader, "t", epoch+1) }, kerr.UnknownLeaderEpoch},
		{"list offsets: at the current epoch", func() int16 { return listOffsetsCode(t, leader, "t", epoch) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := int16(0)
			if tc.want != nil {
				want = tc.want.Code
			}
			if got := tc.call(); got != want {
				t.Errorf("code %d (%v), want %d (%v)", got, kerr.ErrorForCode(got), want, tc.want)
			}
		})
	}
}

func produceCode(t *testing.T, b *Broker, topic string, partition int32, acks int16, records int) int16 {
	t.Helper()
	keys := make([][]byte, records)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint(i))
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, encodeBatch(keys)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	rawRoundTrip(t, b.KafkaAddr(), req, resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func fetchCode(t *testing.T, b *Broker, topic string, partition int32, offset int64, currentEpoch int32) int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.SessionEpoch, req.MaxBytes = 12, -1, 0, -1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.PartitionMaxBytes = partition, offset, currentEpoch, -1, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrFetchResponse()
	rawRoundTrip(t, b.KafkaAddr(), req, resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func listOffsetsCode(t *testing.T, b *Broker, topic string, currentEpoch int32) int16 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 7, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, latestTimestamp, currentEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrListOffsetsResponse()
	rawRoundTrip(t, b.KafkaAddr(), req, resp)
	return resp.Topics[0].Partitions[0].ErrorCode
}
