package storage

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
)

// appendRandomBatches appends n batches of random shape and returns the bytes
// of each as stored (stamped), indexed by batch number.
func appendRandomBatches(t testing.TB, l *Log, rng *rand.Rand, n int, epoch int32) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		spec := plainBatch(1+rng.Intn(8), rng.Intn(600), 1_700_000_000_000+int64(i)*10)
		spec.fill = byte(i)
		b := spec.build()
		mustAppend(t, l, b, epoch)
		out = append(out, b)
	}
	return out
}

func TestAppendReadEveryOffsetAcrossSegments(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	cfg := smallSegments(32 << 10)
	cfg.IndexIntervalBytes = 1024
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()

	batches := appendRandomBatches(t, l, rng, 3000, 5)
	if l.SegmentCount() < 20 {
		t.Fatalf("only %d segments; the test wants many", l.SegmentCount())
	}
	// Map every offset to the batch that holds it.
	type span struct{ first, last int64 }
	spans := make([]span, len(batches))
	for i, b := range batches {
		h, _ := ParseBatchHeader(b)
		spans[i] = span{h.BaseOffset, h.LastOffset()}
	}
	leo := l.LogEndOffset()
	if leo != spans[len(spans)-1].last+1 {
		t.Fatalf("log end %d, want %d", leo, spans[len(spans)-1].last+1)
	}
	bi := 0
	for off := int64(0); off < leo; off++ {
		for spans[bi].last < off {
			bi++
		}
		r, err := l.Read(off, 1, leo) // maxBytes 1: exactly one whole batch comes back
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		got := regionBytes(t, r)
		r.Release()
		if !bytes.Equal(got, batches[bi]) {
			t.Fatalf("read at offset %d: got %d bytes (first offset %d), want batch %d [%d,%d]", off, len(got), r.FirstOffset, bi, spans[bi].first, spans[bi].last)
		}
		if r.FirstOffset != spans[bi].first || r.NextOffset != spans[bi].last+1 {
			t.Fatalf("read at %d: offsets [%d,%d), want [%d,%d)", off, r.FirstOffset, r.NextOffset, spans[bi].first, spans[bi].last+1)
		}
	}
	// Large reads return whole batches, in order, bounded by maxBytes.
	all := readAll(t, l)
	if !bytes.Equal(all, bytes.Join(batches, nil)) {
		t.Fatalf("sequential read of the whole log differs from what was appended")
	}
	for _, maxBytes := range []int{100, 5000, 70_000} {
		r, err := l.Read(0, maxBytes, leo)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size > int64(maxBytes) && len(r.Regions) > 1 {
			t.Fatalf("maxBytes %d: got %d bytes over several regions", maxBytes, r.Size)
		}
		decodeBatches(t, regionBytes(t, r))
		r.Release()
	}
}

func TestReadBounds(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	for i := 0; i < 10; i++ {
		mustAppend(t, l, plainBatch(5, 10, 1).build(), 0) // offsets 5i..5i+4
	}
	// upTo stops at a batch boundary: a batch that would pass it is left out.
	r, err := l.Read(0, 1<<20, 23)
	if err != nil {
		t.Fatal(err)
	}
	if r.NextOffset != 20 {
		t.Fatalf("upTo 23: next offset %d, want 20", r.NextOffset)
	}
	r.Release()
	// At or past the limit: nothing, no error.
	for _, off := range []int64{20, 22, 50} {
		r, err := l.Read(off, 1<<20, 20)
		if err != nil || len(r.Regions) != 0 {
			t.Fatalf("read %d with upTo 20: %v, %d regions", off, err, len(r.Regions))
		}
	}
	// Past the log end: out of range.
	if _, err := l.Read(51, 100, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past the end: %v", err)
	}
	// ReadBatches returns the same bytes into memory.
	b, err := l.ReadBatches(7, 1<<20, 50)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeBatches(t, b)
	if len(got) != 9 || got[0].FirstOffset != 5 {
		t.Fatalf("ReadBatches from 7: %d batches starting at %d", len(got), got[0].FirstOffset)
	}
}

func TestLogAppendTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TimestampType = LogAppendTime
	clock := &fakeClock{now: time.UnixMilli(1_800_000_000_000)}
	l := openTestLog(t, t.TempDir(), cfg, clock)
	defer l.Close()
	res := mustAppend(t, l, plainBatch(3, 10, 42).build(), 1)
	if res.LogAppendTime != 1_800_000_000_000 {
		t.Fatalf("LogAppendTime = %d", res.LogAppendTime)
	}
	got := decodeBatches(t, readAll(t, l)) // checks the recomputed CRC
	if got[0].MaxTimestamp != 1_800_000_000_000 || got[0].Attributes&attrTimestampType == 0 {
		t.Fatalf("stored batch: %+v", got[0])
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	cfg := smallSegments(4 << 10)
	cfg.IndexIntervalBytes = 256
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()
	// 200 batches of 5 records; record o has timestamp 1000 + 10*o.
	for i := 0; i < 200; i++ {
		spec := plainBatch(5, 30, 1000+int64(i)*50)
		spec.tsStep = 10
		mustAppend(t, l, spec.build(), 0)
	}
	leo := l.LogEndOffset()
	for _, tc := range []struct {
		ts, wantOffset int64
		found          bool
	}{
		{0, 0, true}, {1000, 0, true}, {1001, 1, true}, {1010, 1, true}, {1235, 24, true},
		{1000 + 10*999, 999, true}, {1000 + 10*999 + 1, 0, false},
	} {
		off, ts, ok, err := l.OffsetForTimestamp(tc.ts, leo)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.found || (ok && (off != tc.wantOffset || ts != 1000+10*off)) {
			t.Fatalf("ts %d: got (%d, %d, %v), want (%d, found %v)", tc.ts, off, ts, ok, tc.wantOffset, tc.found)
		}
	}
	off, ts, ok, err := l.OffsetOfMaxTimestamp()
	if err != nil || !ok || off != 999 || ts != 1000+10*999 {
		t.Fatalf("max timestamp: (%d, %d, %v, %v)", off, ts, ok, err)
	}
}

func TestLeaderEpochsFollowAppends(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, DefaultConfig(), nil)
	mustAppend(t, l, plainBatch(3, 1, 1).build(), 1) // 0..2
	mustAppend(t, l, plainBatch(3, 1, 1).build(), 1) // 3..5
	mustAppend(t, l, plainBatch(3, 1, 1).build(), 4) // 6..8
	for _, tc := range []struct {
		ask, epoch int32
		end        int64
	}{{0, 0, 0}, {1, 1, 6}, {2, 1, 6}, {4, 4, 9}, {5, -1, -1}} {
		e, end := l.EndOffsetForEpoch(tc.ask)
		if e != tc.epoch || end != tc.end {
			t.Fatalf("epoch %d: (%d, %d), want (%d, %d)", tc.ask, e, end, tc.epoch, tc.end)
		}
	}
	// A follower copying these batches ends up with the same cache.
	src := readAll(t, l)
	l.Close()
	f := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer f.Close()
	if _, err := f.AppendReplicated(src); err != nil {
		t.Fatal(err)
	}
	if e, end := f.EndOffsetForEpoch(2); e != 1 || end != 6 {
		t.Fatalf("follower epoch 2: (%d, %d)", e, end)
	}
	if !bytes.Equal(readAll(t, f), src) {
		t.Fatal("follower log differs from leader log")
	}
	// Out-of-order replicated batches are refused.
	if _, err := f.AppendReplicated(src); !errors.Is(err, ErrNonMonotonicOffset) {
		t.Fatalf("re-appending old batches: %v", err)
	}
	// Reopen keeps the cache.
	l2 := openTestLog(t, dir, DefaultConfig(), nil)
	defer l2.Close()
	if e, end := l2.EndOffsetForEpoch(1); e != 1 || end != 6 {
		t.Fatalf("after reopen, epoch 1: (%d, %d)", e, end)
	}
}

func TestSegmentRollsBySizeAndTime(t *testing.T) {
	cfg := smallSegments(10 << 10)
	cfg.SegmentMs = time.Hour
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	l := openTestLog(t, t.TempDir(), cfg, clock)
	defer l.Close()
	b := plainBatch(1, 3000, clock.now.UnixMilli()).build()
	for i := 0; i < 3; i++ {
		mustAppend(t, l, append([]byte(nil), b...), 0)
	}
	if l.SegmentCount() != 1 {
		t.Fatalf("%d segments after 9 KiB", l.SegmentCount())
	}
	mustAppend(t, l, append([]byte(nil), b...), 0)
	if l.SegmentCount() != 2 {
		t.Fatalf("%d segments after passing segment.bytes", l.SegmentCount())
	}
	clock.Advance(59 * time.Minute)
	mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	if l.SegmentCount() != 2 {
		t.Fatalf("rolled before segment.ms")
	}
	clock.Advance(2 * time.Minute)
	mustAppend(t, l, plainBatch(1, 10, 1).build(), 0)
	if l.SegmentCount() != 3 {
		t.Fatalf("%d segments: no roll after segment.ms", l.SegmentCount())
	}
}

func TestFlushMessagesAdvancesRecoveryPoint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushMessages = 10
	dir := t.TempDir()
	l := openTestLog(t, dir, cfg, nil)
	defer l.Close()
	mustAppend(t, l, plainBatch(6, 1, 1).build(), 0)
	if cp, _ := readLogCheckpoint(dir); cp.recoveryPoint != 0 {
		t.Fatalf("recovery point %d before flush.messages was reached", cp.recoveryPoint)
	}
	mustAppend(t, l, plainBatch(6, 1, 1).build(), 0)
	if cp, _ := readLogCheckpoint(dir); cp.recoveryPoint != 12 {
		t.Fatalf("recovery point %d after 12 messages with flush.messages=10", cp.recoveryPoint)
	}
}

func TestFlushIntervalFlushesWithoutNewAppends(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushInterval = 20 * time.Millisecond
	dir := t.TempDir()
	l := openTestLog(t, dir, cfg, nil)
	defer l.Close()
	mustAppend(t, l, plainBatch(4, 1, 1).build(), 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cp, _ := readLogCheckpoint(dir); cp.recoveryPoint == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("flush.ms never moved the recovery point to the log end")
		}
		time.Sleep(5 * time.Millisecond) // polling a file: no event to wait on
	}
}

func TestPartitionDir(t *testing.T) {
	dir := PartitionDir("/data", "orders-eu-1", 12)
	if dir != "/data/orders-eu-1-12" {
		t.Fatalf("PartitionDir = %s", dir)
	}
	topic, p, ok := ParsePartitionDir("orders-eu-1-12")
	if !ok || topic != "orders-eu-1" || p != 12 {
		t.Fatalf("ParsePartitionDir = %q %d %v", topic, p, ok)
	}
	for _, bad := range []string{"orders", "-1", "orders-", "orders-x", "orders--1x"} {
		if _, _, ok := ParsePartitionDir(bad); ok {
			t.Fatalf("ParsePartitionDir(%q) accepted", bad)
		}
	}
}

// After DeleteRecords, a timestamp lookup answers with the first remaining
// record at or after the timestamp, and that record's own timestamp.
func TestOffsetForTimestampSkipsDeletedRecords(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	spec := plainBatch(100, 10, 1000) // record o has timestamp 1000+o
	mustAppend(t, l, spec.build(), 0)
	if _, err := l.DeleteRecordsBefore(40); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ts, off int64 }{{0, 40}, {1010, 40}, {1040, 40}, {1041, 41}} {
		off, ts, ok, err := l.OffsetForTimestamp(tc.ts, l.LogEndOffset())
		if err != nil || !ok || off != tc.off || ts != 1000+tc.off {
			t.Fatalf("ts %d: (%d, %d, %v, %v), want offset %d with its own timestamp", tc.ts, off, ts, ok, err, tc.off)
		}
	}
}

// A follower refuses a batch whose epoch is older than its latest one, and a
// restart at an offset past its end empties the log there.
func TestAppendReplicatedRefusesOlderEpochAndRestartAt(t *testing.T) {
	leader := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer leader.Close()
	mustAppend(t, leader, plainBatch(2, 1, 1).build(), 5) // 0..1 epoch 5
	mustAppend(t, leader, plainBatch(2, 1, 1).build(), 3) // 2..3 epoch 3: a leader never does this
	src := readAll(t, leader)
	f := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer f.Close()
	if _, err := f.AppendReplicated(src); !errors.Is(err, ErrEpochBackwards) {
		t.Fatalf("epoch going backwards inside one append: %v, want ErrEpochBackwards", err)
	}
	if f.LogEndOffset() != 0 {
		t.Fatalf("refused append wrote: log end %d", f.LogEndOffset())
	}
	if err := f.RestartAt(100); err != nil {
		t.Fatal(err)
	}
	if f.LogStartOffset() != 100 || f.LogEndOffset() != 100 {
		t.Fatalf("after RestartAt(100): start %d end %d", f.LogStartOffset(), f.LogEndOffset())
	}
	if _, _, ok := f.LatestEpoch(); ok {
		t.Fatal("epoch cache kept entries after RestartAt")
	}
}

// Truncating at the log end keeps the batches but drops an epoch that
// starts there (one led without writes).
func TestTruncateAtLogEndDropsEmptyEpoch(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	mustAppend(t, l, plainBatch(2, 1, 1).build(), 1)
	if err := l.AssignEpoch(2); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	if e, start, ok := l.LatestEpoch(); !ok || e != 1 || start != 0 || l.LogEndOffset() != 2 {
		t.Fatalf("after TruncateTo(log end): latest epoch (%d, %d, %v), log end %d; want (1, 0), 2", e, start, ok, l.LogEndOffset())
	}
}

// A follower that receives many batches in one fetch rolls its segments at
// the offsets the leader rolled at (before the first batch that did not
// fit), so the segment files are byte-identical; written in one piece the
// chunk would roll before all of it.
func TestReplicatedChunksRollWhereTheLeaderRolled(t *testing.T) {
	cfg := smallSegments(4 << 10)
	leaderDir, followerDir := t.TempDir(), t.TempDir()
	leader := openTestLog(t, leaderDir, cfg, nil)
	rng := rand.New(rand.NewSource(testutil.Seed(t)))
	for range 200 {
		mustAppend(t, leader, plainBatch(1+rng.Intn(4), 50+rng.Intn(400), 1).build(), 1)
	}
	src := readAll(t, leader)
	leader.Close()
	follower := openTestLog(t, followerDir, cfg, nil)
	// Fetches of varying size, cut at batch boundaries.
	for rest := src; len(rest) > 0; {
		headers, err := ValidateBatches(rest, 0)
		if err != nil {
			t.Fatal(err)
		}
		take, n := 1+rng.Intn(min(len(headers), 30)), 0
		for _, h := range headers[:take] {
			n += int(h.Length)
		}
		if _, err := follower.AppendReplicated(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	follower.Close()
	segs := func(dir string) map[string][]byte {
		names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		out := map[string][]byte{}
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(name)] = data
		}
		return out
	}
	want, got := segs(leaderDir), segs(followerDir)
	if len(want) < 10 {
		t.Fatalf("setup: the leader has %d segments, want many", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("follower has %d segments, leader %d", len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Fatalf("segment %s differs: leader %d bytes, follower %d", name, len(data), len(got[name]))
		}
	}
}

// Recovery after a crash rescans batches whose epochs the checkpoint holds
// already: that is expected and logged by no warning (it came once per
// scanned batch, hundreds of thousands of lines after a busy crash), and the
// cache comes out as it was.
func TestRecoveryRescanLogsNoStaleEpochWarnings(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, DefaultConfig(), nil)
	for epoch := int32(1); epoch <= 3; epoch++ {
		for range 20 {
			mustAppend(t, l, plainBatch(2, 10, 1).build(), epoch)
		}
	}
	l.crash()
	var out bytes.Buffer
	l, err := Open(dir, DefaultConfig(), Options{Logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.recovery.BatchesScanned == 0 {
		t.Fatalf("setup: recovery scanned no batch:\n%s", out.String())
	}
	if strings.Contains(out.String(), "stale leader epoch") {
		t.Fatalf("recovery warned about stale epochs:\n%s", out.String())
	}
	for _, tc := range []struct {
		ask, epoch int32
		end        int64
	}{{1, 1, 40}, {2, 2, 80}, {3, 3, 120}} {
		if e, end := l.EndOffsetForEpoch(tc.ask); e != tc.epoch || end != tc.end {
			t.Fatalf("epoch %d: (%d, %d), want (%d, %d)", tc.ask, e, end, tc.epoch, tc.end)
		}
	}
}
