package storage

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCheckIndexes is the table of index files checkIndexes must accept and
// refuse, each built from a real segment's indexes: valid, emptied,
// truncated (last entry lost), pointing at the wrong batch, stale, bit-flipped.
func TestCheckIndexes(t *testing.T) {
	dir := t.TempDir()
	cfg := smallSegments(8 << 10)
	cfg.IndexIntervalBytes = 256
	l := openTestLog(t, dir, cfg, nil)
	defer l.Close()
	for i := range 120 {
		mustAppend(t, l, plainBatch(2, 50, 1_700_000_000_000+int64(i)).build(), 0)
	}
	if err := l.Roll(); err != nil { // seal the segment under test, as a roll does
		t.Fatal(err)
	}
	segs := *l.segments.Load()
	s := segs[0]
	size, next := s.size.Load(), segs[1].baseOffset
	idx, tidx := s.index.snapshot(), s.timeIndex.snapshot()
	if len(idx) < 3 || len(tidx) < 3 {
		t.Fatalf("setup: %d index and %d time entries", len(idx), len(tidx))
	}
	last := len(idx) - 1
	cases := []struct {
		name  string
		idx   func([]offsetEntry) []offsetEntry
		tidx  func([]timeEntry) []timeEntry
		valid bool
	}{
		{name: "as written", valid: true},
		{name: "offset index empty", idx: func([]offsetEntry) []offsetEntry { return nil }},
		{name: "offset index lost its last entry", idx: func(e []offsetEntry) []offsetEntry { return e[:last] }},
		{name: "last entry points at the previous batch", idx: func(e []offsetEntry) []offsetEntry {
			e[last].position = e[last-1].position
			return e
		}},
		{name: "last entry position off by one", idx: func(e []offsetEntry) []offsetEntry {
			e[last].position++
			return e
		}},
		{name: "time index empty", tidx: func([]timeEntry) []timeEntry { return nil }},
		{name: "time index lost its last entry", tidx: func(e []timeEntry) []timeEntry { return e[:len(e)-1] }},
		{name: "time entry timestamp bit-flipped", tidx: func(e []timeEntry) []timeEntry {
			e[len(e)-1].timestamp ^= 1 << 3
			return e
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i, ti := slices.Clone(idx), slices.Clone(tidx)
			if tc.idx != nil {
				i = tc.idx(i)
			}
			if tc.tidx != nil {
				ti = tc.tidx(ti)
			}
			err := s.checkIndexes(i, ti, size, next, cfg.IndexIntervalBytes)
			if tc.valid && err != nil {
				t.Fatalf("valid indexes refused: %v", err)
			}
			if !tc.valid && err == nil {
				t.Fatal("damaged indexes accepted")
			}
		})
	}
}

// TestReopenedSegmentsKeepTheIndexInterval: appends after a reopen must put
// the next offset-index entry where an uninterrupted run would, or the gap
// rule of checkIndexes would refuse (and rebuild) the indexes of every
// segment that was ever reopened while active.
func TestReopenedSegmentsKeepTheIndexInterval(t *testing.T) {
	dir := t.TempDir()
	cfg := smallSegments(16 << 10)
	cfg.IndexIntervalBytes = 256
	for round := range 6 {
		l := openTestLog(t, dir, cfg, nil)
		if st := l.Recovery(); st.IndexesRebuilt != 0 || (round > 0 && !st.Clean) {
			l.Close()
			t.Fatalf("reopen %d: %+v", round, st)
		}
		// Fewer bytes per round than the interval, so some rounds add no
		// entry and the gap carries over the reopen.
		for i := range 2 {
			// Timestamps of now: older ones would roll by segment.ms.
			mustAppend(t, l, plainBatch(1, 40+i, time.Now().UnixMilli()).build(), 0)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(mustGlob(t, filepath.Join(dir, "*"+logSuffix))); n != 1 {
		t.Fatalf("setup: %d segments, the test wants one active segment reopened", n)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
