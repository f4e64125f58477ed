package storage

import (
	"math/rand"
	"testing"
	"time"
)

// TestMaxTimestampSkipsDeletedRecords: after DeleteRecords inside the batch
// that holds the largest timestamp, MAX_TIMESTAMP answers with the largest
// timestamp still readable and the record carrying it, not the log start
// paired with a deleted record's timestamp.
func TestMaxTimestampSkipsDeletedRecords(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	spec := plainBatch(0, 5, 0)
	spec.timestamps = []int64{100, 500, 200, 300, 150}
	mustAppend(t, l, spec.build(), 0)
	if _, err := l.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	off, ts, ok, err := l.OffsetOfMaxTimestamp()
	if err != nil || !ok || off != 3 || ts != 300 {
		t.Fatalf("MAX_TIMESTAMP after deleting offsets 0-1: offset %d timestamp %d (%v, %v), want offset 3 timestamp 300", off, ts, ok, err)
	}
}

// TestMaxTimestampDoesNotBlockAppends: the answer is computed without the
// writer lock, so a scan cannot hold up producers (and a held writer lock
// cannot hold up the scan).
func TestMaxTimestampDoesNotBlockAppends(t *testing.T) {
	l := openTestLog(t, t.TempDir(), DefaultConfig(), nil)
	defer l.Close()
	mustAppend(t, l, plainBatch(3, 5, 100).build(), 0)
	done := make(chan struct{})
	l.mu.Lock() // an append in progress
	go func() {
		defer close(done)
		if _, ts, ok, err := l.OffsetOfMaxTimestamp(); err != nil || !ok || ts != 102 {
			t.Errorf("MAX_TIMESTAMP: %d %v %v", ts, ok, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		l.mu.Unlock()
		<-done
		t.Fatal("MAX_TIMESTAMP waited for the writer lock")
	}
	l.mu.Unlock()
}

// TestMaxTimestampBelow checks MaxTimestampBelow against a brute-force answer
// over every record, for random timestamps (not monotonic), many segments
// with small index intervals, random log starts and random upper bounds.
func TestMaxTimestampBelow(t *testing.T) {
	rng := rand.New(rand.NewSource(testSeed(t)))
	cfg := smallSegments(4 << 10)
	cfg.IndexIntervalBytes = 200
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()
	type rec struct{ offset, ts int64 }
	var recs []rec
	for range 300 {
		n := 1 + rng.Intn(6)
		spec := plainBatch(0, rng.Intn(40), 0)
		spec.timestamps = make([]int64, n)
		for i := range spec.timestamps {
			spec.timestamps[i] = rng.Int63n(100_000)
		}
		res := mustAppend(t, l, spec.build(), 0)
		for i, ts := range spec.timestamps {
			recs = append(recs, rec{res.FirstOffset + int64(i), ts})
		}
	}
	if l.SegmentCount() < 5 {
		t.Fatalf("setup: %d segments", l.SegmentCount())
	}
	check := func(upTo int64) {
		t.Helper()
		want := rec{-1, -1}
		for _, r := range recs {
			if r.offset >= l.LogStartOffset() && r.offset < upTo && r.ts > want.ts {
				want = r
			}
		}
		off, ts, ok, err := l.MaxTimestampBelow(upTo)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (want.ts >= 0) || (ok && (off != want.offset || ts != want.ts)) {
			t.Fatalf("log start %d, below %d: offset %d timestamp %d (ok %v), want offset %d timestamp %d",
				l.LogStartOffset(), upTo, off, ts, ok, want.offset, want.ts)
		}
	}
	for round := range 4 {
		if round > 0 {
			start := l.LogStartOffset() + rng.Int63n((l.LogEndOffset()-l.LogStartOffset())/3)
			if _, err := l.DeleteRecordsBefore(start); err != nil {
				t.Fatal(err)
			}
		}
		check(l.LogEndOffset())
		check(l.LogStartOffset())
		for range 100 {
			check(l.LogStartOffset() + rng.Int63n(l.LogEndOffset()-l.LogStartOffset()+1))
		}
	}
}
