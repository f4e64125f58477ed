package e2e

import (
	"context"
	"fmt"
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

// TestDiskFullFollowerLeavesISRs fills the disk of one broker of three (its
// data directory is a 64 MiB tmpfs, and a file the test writes beside it
// takes the space) while it follows two partitions (RF=3,
// min.insync.replicas=2) and leads a third. Below its free-space reserve
// the broker stops fetching; before storage holds, the leaders kept it in
// their ISRs for replica.lag.time.max.ms (30 s here, Kafka's default), and
// every acks=all write to those partitions waited that long. Now its
// heartbeats tell the controller, which takes it out of those ISRs at once:
// acks=all writes go on within a few seconds, it keeps leading its own
// partition, health names it, and once the file is gone it catches up and
// is back in every ISR. Every acknowledged record reads back.
func TestDiskFullFollowerLeavesISRs(t *testing.T) {
	const lagMax = 30 * time.Second
	args := []string{"--replica-lag-time-max", lagMax.String()}
	brokers := harness.StartCluster(t, 2, harness.Options{ExtraArgs: args})
	mnt := testutil.MountTmpfs(t, "64m")
	const reserve = 16 << 20
	full := harness.JoinBroker(t, brokers, 2, harness.Options{DataParent: mnt,
		ExtraArgs: append(slices.Clone(args), "--storage-min-free-bytes", fmt.Sprint(reserve))})
	full.WaitReady(60 * time.Second)
	brokers = append(brokers, full)
	ctx := harness.Context(t, 3*time.Minute)
	adm := newLeaderAdmin(t, brokers...)
	for {
		md, err := adm.Metadata(ctx)
		if err == nil && len(md.Brokers) == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("broker 2 never registered: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	const topic = "held"
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic); err != nil {
		t.Fatal(err)
	}
	waitPartitions(ctx, t, adm, topic, "every ISR full", func(ps map[int32]kadm.PartitionDetail) bool {
		return len(ps) == 3 && isrHoldsEverywhere(ps, 0) && isrHoldsEverywhere(ps, 1) && isrHoldsEverywhere(ps, 2)
	})
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var followed []int32 // the partitions broker 2 follows
	led := int32(-1)
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader == 2 {
			led = p.Partition
		} else {
			followed = append(followed, p.Partition)
		}
	}
	if led < 0 || len(followed) != 2 {
		t.Fatalf("broker 2 leads no partition or more than one: %+v", md.Topics[topic].Partitions)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
			followed[0]: kgo.NewOffset().AtStart(), followed[1]: kgo.NewOffset().AtStart()}}))
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
	for _, p := range followed {
		produce(p, fmt.Sprintf("before-%d", p))
	}

	// Fill broker 2's disk to half its reserve.
	filler := filepath.Join(mnt, "filler")
	fillTo(t, mnt, filler, reserve/2)
	heldAt := time.Now()
	full.WaitFor(30*time.Second, "broker 2 holding writes", func() bool {
		v, err := full.Metric("barge_storage_writes_held")
		return err == nil && v == 1
	})
	t.Logf("broker 2 holds writes %v after the fill", time.Since(heldAt).Round(time.Millisecond))
	var worst time.Duration
	for i, p := range followed {
		d := produce(p, fmt.Sprintf("held-%d", i))
		t.Logf("acks=all write to partition %d (broker 2 following, disk full) acknowledged in %v", p, d.Round(time.Millisecond))
		worst = max(worst, d)
	}
	// A few seconds: the disk check (1 s), a heartbeat, a reconcile and a
	// commit. Without the hold it is the lag bound.
	if worst > lagMax/3 {
		t.Errorf("acks=all writes waited %v with a follower's disk full; replica.lag.time.max.ms is %v", worst, lagMax)
	}
	md, err = adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		inISR := slices.Contains(p.ISR, 2)
		if p.Partition == led && (p.Leader != 2 || !inISR) {
			t.Errorf("partition %d, led by broker 2 before its disk filled: leader %d isr %v", p.Partition, p.Leader, p.ISR)
		}
		if p.Partition != led && inISR {
			t.Errorf("partition %d: held follower 2 still in isr %v", p.Partition, p.ISR)
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
	for _, p := range followed {
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
