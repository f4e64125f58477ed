package storage

import (
	"os"
	"testing"
)

// logAnswers is what reads of a log return at every offset and for a set of
// timestamps: evicting and reloading indexes must not change any of it.
type logAnswers struct {
	reads      [][2]int64 // per offset: first offset and next offset of a 1-byte read
	timestamps [][3]int64 // per probe: timestamp, offset found, found (0/1)
}

func answersOf(t *testing.T, l *Log) logAnswers {
	t.Helper()
	var a logAnswers
	leo := l.LogEndOffset()
	for off := int64(0); off < leo; off++ {
		r, err := l.Read(off, 1, leo)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		a.reads = append(a.reads, [2]int64{r.FirstOffset, r.NextOffset})
		r.Release()
	}
	for ts := int64(990); ts <= 1000+10*int64(leo)+20; ts += 37 {
		off, _, ok, err := l.OffsetForTimestamp(ts, leo)
		if err != nil {
			t.Fatalf("offset for timestamp %d: %v", ts, err)
		}
		found := int64(0)
		if ok {
			found = 1
		}
		a.timestamps = append(a.timestamps, [3]int64{ts, off, found})
	}
	return a
}

func sameAnswers(t *testing.T, what string, got, want logAnswers) {
	t.Helper()
	if len(got.reads) != len(want.reads) || len(got.timestamps) != len(want.timestamps) {
		t.Fatalf("%s: %d reads and %d timestamp lookups, want %d and %d", what, len(got.reads), len(got.timestamps), len(want.reads), len(want.timestamps))
	}
	for i := range want.reads {
		if got.reads[i] != want.reads[i] {
			t.Fatalf("%s: read at offset %d gave [%d,%d), want [%d,%d)", what, i, got.reads[i][0], got.reads[i][1], want.reads[i][0], want.reads[i][1])
		}
	}
	for i := range want.timestamps {
		if got.timestamps[i] != want.timestamps[i] {
			t.Fatalf("%s: timestamp %d gave offset %d (found %d), want %d (found %d)", what, want.timestamps[i][0], got.timestamps[i][1], got.timestamps[i][2], want.timestamps[i][1], want.timestamps[i][2])
		}
	}
}

// residentSealed counts the sealed segments whose offset index is in memory.
func residentSealed(l *Log) (resident, sealed int) {
	segs := *l.segments.Load()
	for _, s := range segs[:len(segs)-1] {
		if s.index.resident() {
			resident++
		}
	}
	return resident, len(segs) - 1
}

func evict(l *Log, force bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evictIndexesLocked(force)
}

// Sealed segments' indexes leave memory and come back from their files on
// use, with every read and timestamp lookup answering as before; an index
// file damaged while evicted only costs a scan of its segment.
func TestEvictedIndexesReadBackOnUse(t *testing.T) {
	cfg := smallSegments(4 << 10)
	cfg.IndexIntervalBytes = 256
	dir := t.TempDir()
	l := openTestLog(t, dir, cfg, nil)
	for i := 0; i < 300; i++ {
		spec := plainBatch(5, 30, 1000+int64(i)*50)
		spec.tsStep = 10
		mustAppend(t, l, spec.build(), 0)
	}
	if l.SegmentCount() < 10 {
		t.Fatalf("only %d segments; the test wants many", l.SegmentCount())
	}
	want := answersOf(t, l)

	// Everything was just used: a second-chance pass keeps it all.
	if freed := evict(l, false); freed != 0 {
		t.Fatalf("a pass right after use freed %d bytes", freed)
	}
	if freed := evict(l, false); freed == 0 {
		t.Fatal("a second pass without use freed nothing")
	}
	if r, n := residentSealed(l); r != 0 {
		t.Fatalf("%d of %d sealed segments still hold their indexes", r, n)
	}
	// One read loads only the segment it touches.
	if r, err := l.Read(3, 1, l.LogEndOffset()); err != nil {
		t.Fatal(err)
	} else {
		r.Release()
	}
	if r, _ := residentSealed(l); r != 1 {
		t.Fatalf("one read of the first segment made %d sealed segments resident, want 1", r)
	}
	sameAnswers(t, "after eviction", answersOf(t, l), want)

	// A damaged index file of an evicted segment: still the same answers.
	evict(l, true)
	segs := *l.segments.Load()
	if err := os.WriteFile(segs[2].indexPath(), []byte("not an index"), 0o644); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, "with a damaged evicted index", answersOf(t, l), want)
	if segs[2].index.len() != 0 {
		t.Fatalf("the damaged index read back %d entries", segs[2].index.len())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A reopened log keeps only its active segment's indexes in memory.
	l = openTestLog(t, dir, cfg, nil)
	defer l.Close()
	if r, n := residentSealed(l); r != 0 {
		t.Fatalf("after reopening, %d of %d sealed segments hold their indexes", r, n)
	}
	sameAnswers(t, "after reopening", answersOf(t, l), want)
}

// Truncating into an evicted segment works on its reloaded entries.
func TestTruncateIntoEvictedSegment(t *testing.T) {
	cfg := smallSegments(4 << 10)
	cfg.IndexIntervalBytes = 256
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()
	for i := 0; i < 100; i++ {
		mustAppend(t, l, plainBatch(5, 30, 1000+int64(i)*50).build(), 0)
	}
	segs := *l.segments.Load()
	cut := segs[2].baseOffset + 7
	evict(l, true)
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if leo := l.LogEndOffset(); leo > cut {
		t.Fatalf("log end %d after truncating to %d", leo, cut)
	}
	decodeBatches(t, readAll(t, l))
	for i := 0; i < 20; i++ {
		mustAppend(t, l, plainBatch(5, 30, 9000+int64(i)*50).build(), 0)
	}
	decodeBatches(t, readAll(t, l))
}
