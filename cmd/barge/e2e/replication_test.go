package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// replicationArgs make ISR changes quick enough for a test: a follower
// that stops fetching leaves the ISR within seconds.
var replicationArgs = []string{"--replica-lag-time-max", "3s"}

// replLedger records what the producer had acknowledged and what the
// consumer read.
type replLedger struct {
	mu       sync.Mutex
	acked    map[int32]map[int64]string // partition → offset → value
	lastAck  map[int32]time.Time
	maxGap   map[int32]time.Duration
	phaseGap time.Duration // the longest gap on any partition since takePhaseGap
	gapFrom  time.Time     // when phaseGap began
	read     map[int32]map[int64]string
	lastRead map[int32]int64
	problems []string
}

func newReplLedger(partitions int) *replLedger {
	l := &replLedger{acked: map[int32]map[int64]string{}, lastAck: map[int32]time.Time{}, maxGap: map[int32]time.Duration{},
		read: map[int32]map[int64]string{}, lastRead: map[int32]int64{}}
	now := time.Now()
	for p := int32(0); p < int32(partitions); p++ {
		l.acked[p], l.read[p], l.lastAck[p], l.lastRead[p] = map[int64]string{}, map[int64]string{}, now, -1
	}
	return l
}

func (l *replLedger) ack(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	gap := now.Sub(l.lastAck[r.Partition])
	if gap > l.maxGap[r.Partition] {
		l.maxGap[r.Partition] = gap
	}
	if gap > l.phaseGap {
		l.phaseGap, l.gapFrom = gap, l.lastAck[r.Partition]
	}
	l.lastAck[r.Partition] = now
	if prev, ok := l.acked[r.Partition][r.Offset]; ok {
		l.problems = append(l.problems, fmt.Sprintf("partition %d offset %d acknowledged twice (%s, %s)", r.Partition, r.Offset, prev, r.Value))
	}
	l.acked[r.Partition][r.Offset] = string(r.Value)
}

func (l *replLedger) consume(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.Offset <= l.lastRead[r.Partition] {
		// A consumer that re-fetches after a leader change may see an
		// offset again; it must hold the same record.
		if prev := l.read[r.Partition][r.Offset]; prev != string(r.Value) {
			l.problems = append(l.problems, fmt.Sprintf("partition %d offset %d read as %q and then %q", r.Partition, r.Offset, prev, r.Value))
		}
		return
	}
	l.lastRead[r.Partition] = r.Offset
	l.read[r.Partition][r.Offset] = string(r.Value)
}

// missing counts acknowledged records not read yet.
func (l *replLedger) missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for p, offs := range l.acked {
		for off := range offs {
			if _, ok := l.read[p][off]; !ok {
				n++
			}
		}
	}
	return n
}

// check verifies every acknowledged record was read once at its
// acknowledged offset, no value twice, and per-partition order.
func (l *replLedger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Error(p)
	}
	total := 0
	for p, offs := range l.acked {
		for off, v := range offs {
			if got, ok := l.read[p][off]; !ok {
				t.Errorf("partition %d: acknowledged offset %d (%s) never read", p, off, v)
			} else if got != v {
				t.Errorf("partition %d offset %d: acknowledged %s, read %s", p, off, v, got)
			}
			total++
		}
	}
	seen := map[string]string{}
	for p, offs := range l.read {
		keys := make([]int64, 0, len(offs))
		for off := range offs {
			keys = append(keys, off)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		lastSeq := -1
		for _, off := range keys {
			v := offs[off]
			where := fmt.Sprintf("partition %d offset %d", p, off)
			if prev, dup := seen[v]; dup {
				t.Errorf("%s holds %s, already read at %s", where, v, prev)
			}
			seen[v] = where
			seq, _ := strconv.Atoi(v[len("v-"):])
			if seq <= lastSeq {
				t.Errorf("%s: %s after seq %d (order broken)", where, v, lastSeq)
			}
			lastSeq = seq
		}
	}
	var worst time.Duration
	for p, gap := range l.maxGap {
		t.Logf("partition %d: longest time without an acknowledgement %v", p, gap.Round(time.Millisecond))
		worst = max(worst, gap)
	}
	t.Logf("%d acknowledged records all read once at their offsets; longest gap without an ack on any partition: %v", total, worst.Round(time.Millisecond))
}

// waitFullISR waits until every partition of topic has all its replicas in
// the ISR again.
func waitFullISR(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx, topic)
		ok := err == nil
		if ok {
			for _, p := range md.Topics[topic].Partitions {
				if p.Err != nil || p.Leader < 0 || len(p.ISR) != len(p.Replicas) {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never got its full ISR back: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Three brokers, RF=3, min.insync.replicas=2, an idempotent acks=all
// producer and a consumer running throughout, while each broker in turn is
// killed -9 and restarted, paused with SIGSTOP past the failure detector
// and resumed, and stopped with SIGTERM and restarted: every acknowledged
// record is read back exactly once at its acknowledged offset, in order.
func TestReplicationSurvivesBrokerFaults(t *testing.T) {
	const topic, partitions = "durable", 3
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	seeds := harness.Seeds(brokers...)
	ctx := harness.Context(t, 8*time.Minute)
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	if _, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	load := startAckLoad(t, ctx, seeds, topic, partitions, loadOptions{})
	ledger := load.ledger

	faultAt := time.Now() // when the current fault began
	settle := func(what string) {
		t.Helper()
		waitFullISR(ctx, t, adm, topic)
		// The producer must be acknowledged again on every partition
		// before the next fault, so each fault's gap is its own.
		since := time.Now()
		for !ledger.ackedAllSince(since) {
			if ctx.Err() != nil {
				t.Fatalf("%s: the producer made no progress on some partition", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		gap, from := ledger.takePhaseGap()
		t.Logf("%s: ISR full again, %d records acknowledged, longest gap without an ack on any partition %v (from %s, %v after the fault began)",
			what, ackedCount(ledger), gap.Round(time.Millisecond), from.Format("15:04:05.000"), from.Sub(faultAt).Round(time.Millisecond))
	}
	settle("start")
	for _, b := range brokers {
		faultAt = time.Now()
		b.Kill()
		time.Sleep(500 * time.Millisecond) // let the producer run against the survivors; not a wait for a condition
		b.Restart()
		settle(fmt.Sprintf("broker %d killed -9 and restarted", b.ID))

		faultAt = time.Now()
		if err := syscall.Kill(b.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// Longer than the failure detector's timeout with
		// --fast-failure-detection and the replica lag above.
		time.Sleep(4 * time.Second)
		if err := syscall.Kill(b.Pid(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		settle(fmt.Sprintf("broker %d paused and resumed", b.ID))

		faultAt = time.Now()
		if err := b.Stop(); err != nil {
			t.Fatalf("SIGTERM broker %d: %v", b.ID, err)
		}
		t.Logf("broker %d stopped %v after SIGTERM", b.ID, time.Since(faultAt).Round(time.Millisecond))
		b.Restart()
		settle(fmt.Sprintf("broker %d stopped and restarted", b.ID))
	}
	load.finish(t, ctx)
}

// takePhaseGap returns the longest gap without an acknowledgement on any
// partition since the last call, counting partitions still waiting now.
func (l *replLedger) takePhaseGap() (time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gap, from := l.phaseGap, l.gapFrom
	now := time.Now()
	for _, at := range l.lastAck {
		if now.Sub(at) > gap {
			gap, from = now.Sub(at), at
		}
	}
	l.phaseGap = 0
	return gap, from
}

// ackedAllSince reports whether every partition had an acknowledgement
// after t.
func (l *replLedger) ackedAllSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.lastAck {
		if !at.After(t) {
			return false
		}
	}
	return true
}

func ackedCount(l *replLedger) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, offs := range l.acked {
		n += len(offs)
	}
	return n
}

// After an acks=all load with no consumer, the segment files of every
// partition are byte-identical on the three brokers, and the leaders sent
// at least 99% of the bytes the followers fetched with sendfile.
func TestReplicatedSegmentFilesIdentical(t *testing.T) {
	const topic, partitions = "identical", 3
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	seeds := harness.Seeds(brokers...)
	ctx := harness.Context(t, 3*time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	segmentBytes := fmt.Sprint(1 << 20)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 3, map[string]*string{"segment.bytes": &segmentBytes}, topic); err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1024)
	const n = 20_000
	var failed sync.Map
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err.Error(), true)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	failed.Range(func(k, _ any) bool { t.Errorf("produce: %v", k); return true })
	for p := 0; p < partitions; p++ {
		dir := fmt.Sprintf("%s-%d", topic, p)
		var files []map[string][]byte
		brokers[0].WaitFor(30*time.Second, "identical segment files of "+dir, func() bool {
			files = files[:0]
			for _, b := range brokers {
				files = append(files, readSegments(t, filepath.Join(b.DataDir, dir)))
			}
			return sameFiles(files[0], files[1]) && sameFiles(files[0], files[2])
		})
		var size int
		for _, data := range files[0] {
			size += len(data)
		}
		t.Logf("%s: %d segment files, %d bytes, identical on all three brokers", dir, len(files[0]), size)
	}
	// The followers' fetches are served by the consumers' zero-copy path:
	// the leaders' sendfile bytes to followers cover what they appended.
	var sent, copied, fetched float64
	for _, b := range brokers {
		s, err1 := b.Metric("barge_replication_sendfile_bytes_total")
		c, err2 := b.Metric("barge_replication_copied_bytes_total")
		if err1 != nil || err2 != nil {
			t.Fatalf("metrics of broker %d: %v %v", b.ID, err1, err2)
		}
		sent, copied = sent+s, copied+c
		for _, src := range brokers {
			if f, err := b.Metric(fmt.Sprintf("barge_replica_fetch_bytes_total{source_broker=\"%d\"}", src.ID)); err == nil {
				fetched += f
			}
		}
	}
	t.Logf("followers appended %.0f bytes; leaders sent followers %.0f with sendfile (%.2f%%) and copied %.0f",
		fetched, sent, 100*sent/fetched, copied)
	if fetched < 2*float64(n)*1024 || sent < 0.99*fetched {
		t.Fatalf("followers appended %.0f bytes (want at least %d), leaders sent %.0f of them with sendfile", fetched, 2*n*1024, sent)
	}
}

func readSegments(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	out := map[string][]byte{}
	for _, n := range names {
		if data, err := os.ReadFile(n); err == nil {
			out[filepath.Base(n)] = data
		}
	}
	return out
}

// filesDiff describes how two segment sets differ, for a failure message.
func filesDiff(a, b map[string][]byte) string {
	var out []string
	for name, data := range a {
		other, ok := b[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: %d bytes, missing on the other", name, len(data)))
		case !bytes.Equal(data, other):
			at := 0
			for at < min(len(data), len(other)) && data[at] == other[at] {
				at++
			}
			out = append(out, fmt.Sprintf("%s: %d vs %d bytes, first difference at byte %d", name, len(data), len(other), at))
		}
	}
	for name, data := range b {
		if _, ok := a[name]; !ok {
			out = append(out, fmt.Sprintf("%s: missing, %d bytes on the other", name, len(data)))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			return false
		}
	}
	return true
}
