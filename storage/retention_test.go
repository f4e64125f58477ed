package storage

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
	"time"
)

// checkAppendsAndReads appends a few batches and checks a full read returns
// want followed by them, with offsets continuing from the log end.
func checkAppendsAndReads(t *testing.T, l *Log, want []byte) {
	t.Helper()
	leo := l.LogEndOffset()
	var added [][]byte
	for i := 0; i < 5; i++ {
		b := plainBatch(3, 50, 1).build()
		res := mustAppend(t, l, b, 9)
		if res.FirstOffset != leo+int64(3*i) {
			t.Fatalf("append %d got offset %d, want %d", i, res.FirstOffset, leo+int64(3*i))
		}
		added = append(added, b)
	}
	got := readAll(t, l)
	if !bytes.Equal(got, append(append([]byte(nil), want...), bytes.Join(added, nil)...)) {
		t.Fatalf("log holds %d bytes, want %d + %d new", len(got), len(want), len(bytes.Join(added, nil)))
	}
	decodeBatches(t, got)
}

func TestRetentionByBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	cfg := smallSegments(8 << 10)
	cfg.RetentionBytes = 32 << 10
	cfg.RetentionMs = -1 // the test batches carry 2023 timestamps
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()
	appendRandomBatches(t, l, rng, 400, 0)
	before := l.SegmentCount()
	n, err := l.EnforceRetention(l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || l.SegmentCount() != before-n || l.Size() > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("deleted %d of %d segments, %d bytes left", n, before, l.Size())
	}
	if segs := *l.segments.Load(); l.LogStartOffset() != segs[0].baseOffset {
		t.Fatalf("log start %d, first segment %d", l.LogStartOffset(), segs[0].baseOffset)
	}
	if _, err := l.Read(l.LogStartOffset()-1, 100, l.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	checkAppendsAndReads(t, l, readAll(t, l))
}

func TestRetentionByTimeHonoursUpTo(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	cfg := smallSegments(4 << 10)
	cfg.RetentionMs = time.Hour
	l := openTestLog(t, t.TempDir(), cfg, clock)
	defer l.Close()
	for i := 0; i < 40; i++ {
		mustAppend(t, l, plainBatch(2, 400, clock.now.UnixMilli()).build(), 0)
	}
	clock.Advance(30 * time.Minute)
	fresh := plainBatch(2, 400, clock.now.UnixMilli()).build()
	mustAppend(t, l, fresh, 0)
	if n, _ := l.EnforceRetention(l.LogEndOffset()); n != 0 {
		t.Fatalf("deleted %d segments before retention.ms", n)
	}
	clock.Advance(31 * time.Minute) // old batches are now 61 min old, the fresh one 31
	// Nothing past the high watermark goes: with upTo 10 only segments ending at or below it.
	n, err := l.EnforceRetention(10)
	if err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() > 10 {
		t.Fatalf("retention passed upTo: log start %d (deleted %d)", l.LogStartOffset(), n)
	}
	if _, err := l.EnforceRetention(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 80 || !bytes.Equal(readAll(t, l), fresh) {
		t.Fatalf("after retention: log start %d, want 80 with only the fresh batch", l.LogStartOffset())
	}
	// Everything expired, the active segment included: the log rolls and empties.
	clock.Advance(2 * time.Hour)
	if _, err := l.EnforceRetention(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 82 || l.LogEndOffset() != 82 || l.Size() != 0 {
		t.Fatalf("after full expiry: start %d end %d size %d", l.LogStartOffset(), l.LogEndOffset(), l.Size())
	}
	checkAppendsAndReads(t, l, nil)
}

func TestTruncateTo(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	dir := t.TempDir()
	cfg := smallSegments(8 << 10)
	cfg.IndexIntervalBytes = 300
	l := openTestLog(t, dir, cfg, nil)
	batches := appendRandomBatches(t, l, rng, 300, 1)
	// Truncate at an offset inside a batch in the middle of an older segment.
	target := batches[150]
	h, _ := ParseBatchHeader(target)
	cutAt := h.BaseOffset + int64(h.LastOffsetDelta)/2 + 1
	if h.LastOffsetDelta == 0 {
		cutAt = h.BaseOffset
	}
	mustAppend(t, l, plainBatch(1, 1, 1).build(), 7) // epoch 7 starts after the cut point
	if err := l.TruncateTo(cutAt); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != h.BaseOffset {
		t.Fatalf("log end %d after truncating inside batch [%d,%d]", l.LogEndOffset(), h.BaseOffset, h.LastOffset())
	}
	if e, _, _ := l.LatestEpoch(); e != 1 {
		t.Fatalf("latest epoch %d after truncation, want 1", e)
	}
	want := bytes.Join(batches[:150], nil)
	checkAppendsAndReads(t, l, want)
	want = readAll(t, l)
	// Survives a crash and a clean reopen.
	l.crash()
	l = openTestLog(t, dir, cfg, nil)
	if !bytes.Equal(readAll(t, l), want) {
		t.Fatal("truncated log differs after crash recovery")
	}
	// Truncating below the log start empties the log and restarts it there.
	if _, err := l.DeleteRecordsBefore(20); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 5 || l.LogEndOffset() != 5 || l.Size() != 0 || l.SegmentCount() != 1 {
		t.Fatalf("after full truncation: start %d end %d size %d segments %d", l.LogStartOffset(), l.LogEndOffset(), l.Size(), l.SegmentCount())
	}
	checkAppendsAndReads(t, l, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	dir := t.TempDir()
	cfg := smallSegments(8 << 10)
	l := openTestLog(t, dir, cfg, nil)
	appendRandomBatches(t, l, rng, 200, 0)
	segsBefore := l.SegmentCount()
	mid := l.LogEndOffset() / 2
	start, err := l.DeleteRecordsBefore(mid)
	if err != nil || start != mid || l.LogStartOffset() != mid {
		t.Fatalf("DeleteRecordsBefore(%d) = %d, %v", mid, start, err)
	}
	if l.SegmentCount() >= segsBefore {
		t.Fatalf("no segment deleted (%d → %d)", segsBefore, l.SegmentCount())
	}
	// A read at the new start returns the batch holding it.
	r, err := l.Read(mid, 1, l.LogEndOffset())
	if err != nil || r.FirstOffset > mid || r.NextOffset <= mid {
		t.Fatalf("read at new log start: [%d,%d) %v", r.FirstOffset, r.NextOffset, err)
	}
	r.Release()
	if _, err := l.Read(mid-1, 1, l.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below new start: %v", err)
	}
	if _, err := l.DeleteRecordsBefore(l.LogEndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past the end: %v", err)
	}
	// The log start survives a clean reopen and a crash.
	leo := l.LogEndOffset()
	l.Close()
	l = openTestLog(t, dir, cfg, nil)
	if l.LogStartOffset() != mid || l.LogEndOffset() != leo {
		t.Fatalf("after reopen: start %d end %d, want %d %d", l.LogStartOffset(), l.LogEndOffset(), mid, leo)
	}
	l.crash()
	l = openTestLog(t, dir, cfg, nil)
	defer l.Close()
	if l.LogStartOffset() != mid {
		t.Fatalf("after crash: start %d, want %d", l.LogStartOffset(), mid)
	}
	// Deleting everything up to the log end leaves an empty, working log.
	if _, err := l.DeleteRecordsBefore(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	checkAppendsAndReads(t, l, nil)
}
