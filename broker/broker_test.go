package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startTestBroker runs a single-node broker on loopback ports in dir.
func startTestBroker(t testing.TB, dir string) *Broker {
	t.Helper()
	return startTestBrokerWith(t, dir, func(*Config) {})
}

// startTestBrokerWith is startTestBroker with config changes applied.
func startTestBrokerWith(t testing.TB, dir string, adjust func(*Config)) *Broker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.KafkaAddr, cfg.RaftAddr, cfg.GossipAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.FastFailureDetection = true
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	adjust(&cfg)
	b := launchTestBroker(t, cfg)
	waitFor(t, 10*time.Second, "broker ready", b.Ready)
	return b
}

// launchTestBroker creates and starts a broker from cfg, shut down when the
// test ends.
func launchTestBroker(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	return b
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Wait(t, d, what, cond)
}

// createTestTopic creates topic with partitions (RF=1) on b and returns
// an admin client, closed when the test ends.
func createTestTopic(t testing.TB, ctx context.Context, b *Broker, topic string, partitions int32) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	admin := kadm.NewClient(cl)
	if _, err := admin.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	return admin
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	createTestTopic(t, ctx, b, "orders", 3)

	producer, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const n = 5000
	for i := 0; i < n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("value-%d", i))}
		producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	lastOffset := map[int32]int64{}
	for len(seen) < n {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), n, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if prev, ok := lastOffset[r.Partition]; ok && r.Offset != prev+1 {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			lastOffset[r.Partition] = r.Offset
			if seen[string(r.Value)] {
				t.Fatalf("duplicate %s", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	if stats := b.server.Stats(); stats.SendfileBytes == 0 || stats.CopiedBytes != 0 {
		t.Fatalf("fetch bytes: sendfile %d, copied %d", stats.SendfileBytes, stats.CopiedBytes)
	}
}

// Clients may not write to, delete, grow or trim __consumer_offsets (a trim
// would drop committed offsets at the coordinator's next load).
func TestInternalTopicIsProtected(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	// FindCoordinator creates the topic.
	for _, r := range admin.FindGroupCoordinators(ctx, "g") {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	waitFor(t, 10*time.Second, "__consumer_offsets", func() bool {
		_, ok := b.metadataImage().Topic("__consumer_offsets")
		return ok
	})
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	resps, err := admin.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil || !errors.Is(resps["__consumer_offsets"].Err, kerr.InvalidTopicException) {
		t.Fatalf("delete __consumer_offsets: %v / %v", err, resps["__consumer_offsets"].Err)
	}
	cp, err := admin.CreatePartitions(ctx, 4, "__consumer_offsets")
	if err != nil || !errors.Is(cp["__consumer_offsets"].Err, kerr.InvalidTopicException) {
		t.Fatalf("grow __consumer_offsets: %v / %v", err, cp["__consumer_offsets"].Err)
	}
	for p := int32(0); p < 16; p++ {
		trim := kadm.Offsets{}
		trim.Add(kadm.Offset{Topic: "__consumer_offsets", Partition: p, At: -1})
		res, err := admin.DeleteRecords(ctx, trim)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := res.Lookup("__consumer_offsets", p); !errors.Is(r.Err, kerr.InvalidTopicException) {
			t.Fatalf("trim __consumer_offsets partition %d: %v, want INVALID_TOPIC_EXCEPTION", p, r.Err)
		}
	}
}
