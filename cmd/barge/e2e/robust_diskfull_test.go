package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// TestDiskFullKeepsAReserve fills a broker whose data directory is a 96 MiB
// tmpfs with acks=all writes, as an operator's disk fills. Before the
// reserve, the broker refused produces only when the disk was completely
// full, and then the operator could not delete the topic either: the
// metadata Raft log could not be written. Now produces are refused
// (KAFKA_STORAGE_ERROR, retriable) while 16 MiB are still free; everything
// acknowledged reads back; health and metrics say why; the topic can be
// deleted, and writes resume by themselves.
func TestDiskFullKeepsAReserve(t *testing.T) {
	mnt := testutil.MountTmpfs(t, "96m")
	const reserve = 16 << 20
	b := harness.StartBroker(t, harness.Options{DataParent: mnt,
		ExtraArgs: []string{"--storage-min-free-bytes", fmt.Sprint(reserve), "--log-segment-bytes", fmt.Sprint(8 << 20)}})
	ctx := harness.Context(t, 2*time.Minute)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr), kgo.DefaultProduceTopic("fill"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(0), kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ConsumeTopics("fill"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "fill"); err != nil {
		t.Fatal(err)
	}

	// Fill: 64 KiB records until the broker says no. 96 MiB of disk can
	// take at most ~1,500 of them; stop there either way.
	value := make([]byte, 64<<10) // incompressible: clients compress
	rand.NewChaCha8([32]byte{1}).Read(value)
	acked, refusedAt := 0, -1
	var refusal error
	for i := 0; i < 2000 && refusedAt < 0; i++ {
		err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: value}).FirstErr()
		switch {
		case err == nil:
			acked++
		case errors.Is(err, kerr.KafkaStorageError):
			refusedAt, refusal = i, err
		default:
			t.Fatalf("record %d: %v, want success or KAFKA_STORAGE_ERROR", i, err)
		}
	}
	if refusedAt < 0 {
		t.Fatalf("%d records of 64 KiB acknowledged on a 96 MiB disk and none refused", acked)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	t.Logf("%d records acknowledged, then refused: %v; %.1f MiB free on the tmpfs", acked, refusal, float64(free)/(1<<20))
	if free < reserve/2 {
		t.Fatalf("only %d bytes free when produces were refused: the reserve of %d was not kept", free, reserve)
	}

	// Why, where an operator looks.
	if v, err := b.Metric("barge_storage_writes_held"); err != nil || v != 1 {
		t.Errorf("barge_storage_writes_held = %v (%v), want 1", v, err)
	}
	var health struct {
		IsHealthy bool     `json:"is_healthy"`
		Reasons   []string `json:"reasons"`
	}
	if err := b.GetJSON("/v1/cluster/health", &health); err != nil {
		t.Fatal(err)
	}
	if health.IsHealthy || !strings.Contains(strings.Join(health.Reasons, "; "), "below the reserve") {
		t.Errorf("health while the disk is at its reserve: healthy %v, reasons %q", health.IsHealthy, health.Reasons)
	}

	// Every acknowledged record reads back, exactly once.
	seen := map[string]bool{}
	for len(seen) < acked && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Key)] {
				t.Errorf("record %s read twice", r.Key)
			}
			seen[string(r.Key)] = true
		})
	}
	if len(seen) != acked {
		t.Fatalf("read back %d of %d acknowledged records", len(seen), acked)
	}

	// The metadata log still takes writes: a new topic and the deletion
	// that frees the space.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "after"); err != nil {
		t.Fatalf("create a topic while the disk is at its reserve: %v", err)
	}
	if resp, err := adm.DeleteTopics(ctx, "fill"); err != nil || resp["fill"].Err != nil {
		t.Fatalf("delete the full topic: %v / %v", err, resp["fill"].Err)
	}
	// Writes resume by themselves once the disk has room again.
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "after", Value: []byte("room again")}).FirstErr()
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.KafkaStorageError) || time.Now().After(deadline) {
			t.Fatalf("produce after the delete: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the broker reads the disk once a second
	}
	t.Logf("writes resumed %v after the delete", time.Since(start).Round(time.Millisecond))
	if v, err := b.Metric("barge_storage_writes_held"); err != nil || v != 0 {
		t.Errorf("barge_storage_writes_held = %v (%v) after the delete, want 0", v, err)
	}
}
