package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// TestDiskFullBrokerStepsBack fills the disk of one broker of three (its
// data directory is a 64 MiB tmpfs, and a file the test writes beside it
// takes the space) while it follows two partitions (RF=3,
// min.insync.replicas=2) and leads a third. Below its free-space reserve
// the broker refuses produces and stops fetching. Before storage holds the
// partition it led took no writes until the disk had room again, and its
// leaders kept it in their ISRs for replica.lag.time.max.ms (30 s here,
// Kafka's default), so every acks=all write to the other two waited that
// long. Now its heartbeats tell the controller, which hands its partition
// to another ISR replica and takes it out of every ISR at once: acks=all
// writes to all three partitions go on within a few seconds, health names
// it, and once the file is gone it catches up and is back in every ISR.
// Every acknowledged record reads back.
func TestDiskFullBrokerStepsBack(t *testing.T) {
	const lagMax = 30 * time.Second
	brokers, mnt, ctx, adm := startDiskFullCluster(t, lagMax)
	full := brokers[2]
	const topic = "held"
	createFullISRTopic(ctx, t, adm, topic)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	led := int32(-1) // the partition broker 2 leads
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader == 2 {
			if led >= 0 {
				t.Fatalf("broker 2 leads more than one partition: %+v", md.Topics[topic].Partitions)
			}
			led = p.Partition
		}
	}
	if led < 0 {
		t.Fatalf("broker 2 leads no partition: %+v", md.Topics[topic].Partitions)
	}
	all := []int32{0, 1, 2}

	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acked := map[string]bool{}
	produce := func(p int32, value string) time.Duration {
		t.Helper()
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, 2*lagMax)
		defer cancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce %q to partition %d: %v", value, p, err)
		}
		acked[value] = true
		return time.Since(start)
	}
	for _, p := range all {
		produce(p, fmt.Sprintf("before-%d", p))
	}

	// Fill broker 2's disk to half its reserve.
	filler := filepath.Join(mnt, "filler")
	fillTo(t, mnt, filler, diskFullReserve/2)
	heldAt := time.Now()
	full.WaitFor(30*time.Second, "broker 2 holding writes", func() bool {
		v, err := full.Metric("barge_storage_writes_held")
		return err == nil && v == 1
	})
	t.Logf("broker 2 holds writes %v after the fill", time.Since(heldAt).Round(time.Millisecond))
	var worst time.Duration
	for _, p := range all {
		d := produce(p, fmt.Sprintf("held-%d", p))
		role := "following"
		if p == led {
			role = "leading"
		}
		t.Logf("acks=all write to partition %d (broker 2 %s it when its disk filled) acknowledged in %v", p, role, d.Round(time.Millisecond))
		worst = max(worst, d)
	}
	t.Logf("all three written %v after the fill", time.Since(heldAt).Round(time.Millisecond))
	// A few seconds: the disk check (1 s), a heartbeat, a reconcile and a
	// commit. Without the hold it is the lag bound, or, for the partition
	// broker 2 led, until the disk has room.
	if worst > lagMax/3 {
		t.Errorf("acks=all writes waited %v with a broker's disk full; replica.lag.time.max.ms is %v", worst, lagMax)
	}
	md, err = adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader == 2 || slices.Contains(p.ISR, 2) {
			t.Errorf("partition %d: leader %d isr %v with broker 2's storage held", p.Partition, p.Leader, p.ISR)
		}
	}
	var health struct {
		Reasons []string `json:"reasons"`
	}
	if err := brokers[0].GetJSON("/v1/cluster/health", &health); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(health.Reasons, "; "), "broker 2 has its storage held") {
		t.Errorf("health of broker 0 while broker 2 is held: %q", health.Reasons)
	}

	// Room again: broker 2 catches up and is back in every ISR.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freedAt := time.Now()
	waitPartitions(ctx, t, adm, topic, "broker 2 back in every ISR", func(ps map[int32]kadm.PartitionDetail) bool {
		return isrHoldsEverywhere(ps, 2)
	})
	t.Logf("broker 2 back in every ISR %v after the disk had room again", time.Since(freedAt).Round(time.Millisecond))
	for _, p := range all {
		produce(p, fmt.Sprintf("after-%d", p))
	}

	seen := map[string]bool{}
	for len(seen) < len(acked) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for v := range acked {
		if !seen[v] {
			t.Errorf("acknowledged record %q not read back", v)
		}
	}
}

// fillTo writes a file at path until the file system at dir has about free
// bytes left. The bytes are written, not a sparse size: tmpfs charges only
// pages that hold data.
func fillTo(t *testing.T, dir, path string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - free
	if n <= 0 {
		t.Fatalf("%s has only %d bytes free, want more than %d", dir, int64(st.Bavail)*st.Bsize, free)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = 0xa5
	}
	for n > 0 {
		w, err := f.Write(chunk[:min(n, int64(len(chunk)))])
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
		n -= int64(w)
	}
}

// diskFullReserve is the free-space reserve of the broker whose disk the
// tests fill: a quarter of its 64 MiB tmpfs.
const diskFullReserve = 16 << 20

// startDiskFullCluster starts brokers 0 and 1 with their data in the test's
// temporary directories and joins broker 2 with its data on a 64 MiB tmpfs
// (returned) and a reserve of diskFullReserve, all with lagMax as
// replica.lag.time.max.ms; it waits until all three are registered.
func startDiskFullCluster(t *testing.T, lagMax time.Duration) ([]*harness.Broker, string, context.Context, *kadm.Client) {
	t.Helper()
	args := []string{"--replica-lag-time-max", lagMax.String()}
	brokers := harness.StartCluster(t, 2, harness.Options{ExtraArgs: args})
	mnt := testutil.MountTmpfs(t, "64m")
	full := harness.JoinBroker(t, brokers, 2, harness.Options{DataParent: mnt,
		ExtraArgs: append(slices.Clone(args), "--storage-min-free-bytes", fmt.Sprint(diskFullReserve))})
	full.WaitReady(60 * time.Second)
	brokers = append(brokers, full)
	ctx := harness.Context(t, 3*time.Minute)
	adm := newLeaderAdmin(t, brokers...)
	waitBrokers(ctx, t, adm, 3)
	return brokers, mnt, ctx, adm
}

// createFullISRTopic creates topic with three partitions on the three
// brokers (min.insync.replicas=2) and waits until every ISR is full.
func createFullISRTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic); err != nil {
		t.Fatal(err)
	}
	waitPartitions(ctx, t, adm, topic, "every ISR full", func(ps map[int32]kadm.PartitionDetail) bool {
		return len(ps) == 3 && isrHoldsEverywhere(ps, 0) && isrHoldsEverywhere(ps, 1) && isrHoldsEverywhere(ps, 2)
	})
}

// TestDiskFullFollowerKeepsTheReserve replicates to broker 2, whose data is
// on a 64 MiB tmpfs with a 16 MiB reserve, faster than its once a second
// read of the disk can follow: 96 MiB produced as fast as one producer can
// (acks=1) to a partition another broker leads. Before follower appends
// counted against the reserve between two reads, the follower wrote on
// until its disk was full; now it stops at the reserve, which stays free,
// and its storage is held.
func TestDiskFullFollowerKeepsTheReserve(t *testing.T) {
	brokers, mnt, ctx, adm := startDiskFullCluster(t, 30*time.Second)
	full := brokers[2]
	const topic = "fast"
	createFullISRTopic(ctx, t, adm, topic)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	target := int32(-1)
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader != 2 {
			target = p.Partition
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedBytes(16<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.NewChaCha8([32]byte{2})
	const records = 96 << 20 >> 16
	errs := make(chan error, 1)
	for range records {
		value := make([]byte, 64<<10) // uncompressed, as the broker stores them
		rng.Read(value)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: target, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("produce to partition %d: %v", target, err)
	default:
	}
	full.WaitFor(30*time.Second, "broker 2 holding writes", func() bool {
		v, err := full.Metric("barge_storage_writes_held")
		return err == nil && v == 1
	})
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	t.Logf("96 MiB produced to partition %d; broker 2 holds writes with %.1f MiB free on its 64 MiB disk (reserve %d MiB)",
		target, float64(free)/(1<<20), diskFullReserve>>20)
	// One fetch response (at most 10 MiB here) may land past the point
	// the reserve was reached.
	if free < diskFullReserve/2 {
		t.Errorf("follower left %d bytes free, reserve %d: it wrote past the reserve", free, diskFullReserve)
	}
	if out := full.Log(); strings.Contains(out, "no space left") {
		t.Errorf("broker 2 ran out of space:\n%s", harness.Tail([]byte(out), 20))
	}
}
