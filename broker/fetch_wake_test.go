package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// An append that lands after a fetch read the partition and before it
// parked wakes it at once. Before, that append found no one to wake and the
// fetch slept out its whole max_wait with the record there: under acks=all
// a follower's fetch stalled this way held the produce 500 ms.
func TestAppendBeforeParkWakesTheFetch(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("window"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "window"); err != nil {
		t.Fatal(err)
	}
	// The hook runs on the fetch's handler; the produce goes over the
	// client's own connection, so it completes while the fetch waits.
	var produced atomic.Bool
	testBeforeParkHook = func() {
		if produced.CompareAndSwap(false, true) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("in the window")}).FirstErr(); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { testBeforeParkHook = nil }()

	conn, err := net.Dial("tcp", b.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const maxWait = 10 * time.Second
	start := time.Now()
	writeRequest(t, conn, 1, parkingFetch("window", maxWait))
	conn.SetReadDeadline(time.Now().Add(maxWait + 5*time.Second))
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !produced.Load() {
		t.Fatal("the hook never ran: the fetch answered without parking")
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("the fetch answered without the record: %+v", resp.Topics)
	}
	t.Logf("a fetch that parked after the append answered in %v (max_wait %v)", took.Round(time.Millisecond), maxWait)
	if took > maxWait/2 {
		t.Fatalf("the fetch answered after %v: it slept through an append made before it parked", took)
	}
}

// parkingFetch is a consumer's Fetch v11 of partition 0 of topic from
// offset 0 that waits up to maxWait for its first byte: on an empty
// partition, it parks.
func parkingFetch(topic string, maxWait time.Duration) *kmsg.FetchRequest {
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 11, -1, int32(maxWait.Milliseconds()), 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 1<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	return fetch
}
