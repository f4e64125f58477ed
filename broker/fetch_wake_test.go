package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Parked consumer fetches wake only when they can read something. With
// RF=3 and acks=all the leader's append does not move the high watermark
// (the followers' next fetches do), so before, every append woke every
// consumer parked on the partition for nothing: they re-read, found nothing
// below the HW and parked again.
func TestParkedFetchesWakeOnlyWhenReadable(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeds := clusterSeeds(brokers)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("herd"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 1, 3, nil, "herd"); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	meta, _ := brokers[0].node.Image().Partition("herd", 0)
	leader := brokers[meta.Leader]

	const consumers, records = 8, 200
	got := make(chan int, consumers)
	for i := range consumers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"herd": {0: kgo.NewOffset().At(0)}}), kgo.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		go func() {
			n := 0
			for n < records+1 && ctx.Err() == nil {
				n += len(cl.PollFetches(ctx).Records())
			}
			got <- n
		}()
		_ = i
	}
	answered0, futile0 := testutil.ToFloat64(leader.metrics.fetchWakeAnswered), testutil.ToFloat64(leader.metrics.fetchWakeFutile)
	for i := range records {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for range consumers {
		if n := <-got; n != records+1 {
			t.Fatalf("a consumer read %d records, want %d", n, records+1)
		}
	}
	answered := testutil.ToFloat64(leader.metrics.fetchWakeAnswered) - answered0
	futile := testutil.ToFloat64(leader.metrics.fetchWakeFutile) - futile0
	t.Logf("%d acks=all records, %d consumers: %.0f wake-ups answered a fetch, %.0f were futile", records, consumers, answered, futile)
	// Followers' fetches wake on appends and answer; consumers' wake on
	// the HW and answer. A futile wake-up is now only a race (a consumer
	// that re-fetched between the HW move and the wake).
	if futile > answered/10 {
		t.Fatalf("%.0f futile wake-ups for %.0f answered: parked fetches woken when they could read nothing", futile, answered)
	}
}
