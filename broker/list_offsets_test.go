package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets returns the leader epoch of the record it points at for
// EARLIEST and timestamp lookups too (KIP-320), not only for LATEST: a
// consumer resetting to the start uses it to detect a later truncation.
func TestListOffsetsReturnsEpochOfTheOffset(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("epochs"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "epochs"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 3; i++ {
		r := &kgo.Record{Value: []byte("x"), Timestamp: now.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := b.replicas.get("epochs", 0)
	want := p.leaderEpoch()
	for _, tc := range []struct {
		name      string
		timestamp int64
		offset    int64
	}{
		{"earliest", earliestTimestamp, 0},
		{"latest", latestTimestamp, 3},
		{"max timestamp", maxTimestamp, 2},
		{"by timestamp", now.Add(time.Second).UnixMilli(), 1},
	} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version, req.ReplicaID = 7, -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, tc.timestamp, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != 0 || got.Offset != tc.offset || got.LeaderEpoch != want {
			t.Errorf("%s: code %d, offset %d, leader epoch %d; want offset %d at epoch %d", tc.name, got.ErrorCode, got.Offset, got.LeaderEpoch, tc.offset, want)
		}
	}
}
