package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The power-loss scenario of KIP-966 (and of redpanda-data/kafka-fsync):
// three brokers, one partition, RF=3, min.insync.replicas=2. Follower C is
// stopped, acknowledged writes go to leader A and follower B, then A and B
// are killed -9 together and B's active segment is cut in half, as a power
// loss would leave it. B and C come back without A.
//
// With unclean election off, the partition must stay offline (B lost
// acknowledged records, C was out of the ISR) and health must say why; once
// A is back it leads, B and C catch up, and every acknowledged record is
// there exactly once. With unclean.leader.election.enable=true the same
// steps elect B or C and lose acknowledged records, which the test asserts,
// so it shows the check above can fail.
func TestUncleanRestartKeepsAcknowledgedRecords(t *testing.T) {
	t.Run("unclean election off", func(t *testing.T) { runUncleanRestart(t, false) })
	t.Run("unclean election on", func(t *testing.T) { runUncleanRestart(t, true) })
}

func runUncleanRestart(t *testing.T, uncleanElection bool) {
	const topic, records = "power-loss", 600
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	byID := map[int32]*harness.Broker{}
	for _, b := range brokers {
		byID[int32(b.ID)] = b
	}
	ctx := harness.Context(t, 4*time.Minute)
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	minISR, uncleanCfg := "2", fmt.Sprint(uncleanElection)
	configs := map[string]*string{"min.insync.replicas": &minISR, "unclean.leader.election.enable": &uncleanCfg}
	if _, err := adm.CreateTopic(ctx, 1, 3, configs, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	st := partitionState(ctx, t, adm, topic)
	a := byID[st.Leader]
	var b, c *harness.Broker
	for _, r := range st.Replicas {
		switch {
		case r == st.Leader:
		case b == nil:
			b = byID[r]
		default:
			c = byID[r]
		}
	}
	t.Logf("leader A=%d, follower B=%d, follower C=%d", a.ID, b.ID, c.ID)

	// C stops cleanly and leaves the ISR; the HW still moves with A and B.
	if err := c.Stop(); err != nil {
		t.Fatalf("stop C: %v", err)
	}
	waitPartition(ctx, t, adm, topic, "ISR [A B] led by A", func(p kadm.PartitionDetail) bool {
		return p.Leader == int32(a.ID) && len(p.ISR) == 2 && !slices.Contains(p.ISR, int32(c.ID))
	})

	// Acknowledged writes, in several batches so that half a segment
	// holds only some of them.
	producer, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr, b.KafkaAddr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acked := map[int64]string{}
	for i := 0; i < records; i += 20 {
		batch := make([]*kgo.Record, 0, 20)
		for j := i; j < i+20; j++ {
			batch = append(batch, &kgo.Record{Value: []byte(fmt.Sprintf("v-%09d", j))})
		}
		for _, res := range producer.ProduceSync(ctx, batch...) {
			if res.Err != nil {
				t.Fatalf("acks=all produce with ISR [A B]: %v", res.Err)
			}
			acked[res.Record.Offset] = string(res.Record.Value)
		}
	}
	producer.Close()
	t.Logf("%d records acknowledged by A and B", len(acked))

	// A and B die at the same moment; B's disk loses its unsynced tail.
	for _, x := range []*harness.Broker{a, b} {
		if err := syscall.Kill(x.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	a.Kill()
	b.Kill()
	cutActiveSegment(t, b, topic+"-0")

	b.Start()
	c.Start()
	b.WaitReady(60 * time.Second)
	c.WaitReady(60 * time.Second)
	// C stopped with SIGTERM, B was killed: each knows which it was.
	mustContain(t, "log of C", c.Log(), "previous shutdown was clean")
	mustContain(t, "log of B", b.Log(), "no clean-shutdown marker")
	if uncleanElection {
		// Availability over durability: B or C leads without A.
		waitPartition(ctx, t, adm, topic, "a leader without A", func(p kadm.PartitionDetail) bool {
			return p.Leader == int32(b.ID) || p.Leader == int32(c.ID)
		})
	} else {
		// Once the controller has registered B and C (only A down), the
		// election has been decided: offline, with the reason given.
		var h struct {
			BrokersDown []int32  `json:"brokers_down"`
			Reasons     []string `json:"reasons"`
		}
		reason := fmt.Sprintf("partition %s-0 offline: no eligible replica", topic)
		b.WaitFor(60*time.Second, "health naming A down and the offline partition", func() bool {
			return b.GetJSON("/v1/cluster/health", &h) == nil && slices.Equal(h.BrokersDown, []int32{int32(a.ID)}) &&
				slices.ContainsFunc(h.Reasons, func(r string) bool { return strings.HasPrefix(r, reason) })
		})
		t.Logf("health with A down: %q", h.Reasons)
		want := fmt.Sprintf("broker %d restarted uncleanly", b.ID)
		if !slices.ContainsFunc(h.Reasons, func(r string) bool { return strings.Contains(r, want) }) {
			t.Errorf("health reasons %q do not say %q", h.Reasons, want)
		}
		// The CLI gives the same reason, and exits 4 (unhealthy).
		r := cliRun(t, cliEnvOf(b, c), "cluster", "health").must(t, 4)
		mustContain(t, "barge cluster health", r.stderr, reason, want)
		// The partition stays offline: nothing here can change the
		// election until A returns, so a short watch suffices.
		until := time.Now().Add(2 * time.Second)
		for time.Now().Before(until) {
			if p := partitionState(ctx, t, adm, topic); p.Leader != -1 {
				t.Fatalf("partition elected leader %d (ISR %v) while A was down", p.Leader, p.ISR)
			}
			time.Sleep(200 * time.Millisecond) // a watch over a fixed window, not a wait for a condition
		}
	}

	a.Restart()
	if !uncleanElection {
		waitPartition(ctx, t, adm, topic, "A leading again", func(p kadm.PartitionDetail) bool {
			return p.Leader == int32(a.ID)
		})
	}
	waitFullISR(ctx, t, adm, topic)

	got := readPartition(ctx, t, harness.Seeds(a, b, c), topic)
	var missing, wrong int
	for off, v := range acked {
		switch g, ok := got[off]; {
		case !ok:
			missing++
		case g != v:
			wrong++
		}
	}
	seen := map[string]int64{}
	for off, v := range got {
		if prev, dup := seen[v]; dup && !uncleanElection {
			t.Errorf("%s at offsets %d and %d", v, prev, off)
		}
		seen[v] = off
	}
	t.Logf("read %d records; of %d acknowledged, %d missing and %d replaced", len(got), len(acked), missing, wrong)
	if uncleanElection {
		if missing+wrong == 0 {
			t.Fatal("unclean election lost no acknowledged record: the test cannot tell a safe broker from an unsafe one")
		}
		return
	}
	if missing+wrong > 0 || len(got) != len(acked) {
		t.Fatalf("acknowledged records lost: %d missing, %d replaced, %d read for %d acknowledged", missing, wrong, len(got), len(acked))
	}
}

// cutActiveSegment cuts the newest segment file of a partition of a stopped
// broker to half its size and removes the clean-shutdown markers, as a
// power loss leaves a disk whose page cache was never written back.
func cutActiveSegment(t *testing.T, b *harness.Broker, partDir string) {
	t.Helper()
	dir := filepath.Join(b.DataDir, partDir)
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment files in %s: %v", dir, err)
	}
	slices.Sort(segs) // zero-padded base offsets: the last is the active one
	active := segs[len(segs)-1]
	fi, err := os.Stat(active)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(active, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{filepath.Join(dir, ".clean_shutdown"), filepath.Join(b.DataDir, ".broker_clean_shutdown")} {
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	t.Logf("cut %s of broker %d from %d to %d bytes", filepath.Base(active), b.ID, fi.Size(), fi.Size()/2)
}

func partitionState(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) kadm.PartitionDetail {
	t.Helper()
	var last error
	for ctx.Err() == nil {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if p, ok := md.Topics[topic].Partitions[0]; ok {
				return p
			}
			err = fmt.Errorf("no partition 0 in %+v", md.Topics[topic])
		}
		last = err
		time.Sleep(100 * time.Millisecond) // retry a failed metadata request
	}
	t.Fatalf("metadata of %s: %v", topic, last)
	return kadm.PartitionDetail{}
}

// waitPartition waits, bounded by ctx, until partition 0 of topic satisfies
// cond.
func waitPartition(ctx context.Context, t *testing.T, adm *kadm.Client, topic, what string, cond func(kadm.PartitionDetail) bool) {
	t.Helper()
	var p kadm.PartitionDetail
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			var ok bool
			if p, ok = md.Topics[topic].Partitions[0]; ok && cond(p) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last state leader %d isr %v (%v)", what, p.Leader, p.ISR, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readPartition reads partition 0 of topic from the start to its end offset
// (as ListOffsets reports it now) and returns offset → value.
func readPartition(ctx context.Context, t *testing.T, seeds []string, topic string) map[int64]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Err != nil {
		t.Fatalf("end offset of %s-0: %+v", topic, end)
	}
	got := map[int64]string{}
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s-0 up to %d of %d: %v", topic, next, end.Offset, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Offset] = string(r.Value)
			next = max(next, r.Offset+1)
		})
	}
	return got
}
