package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// Open with AssignLeaderEpoch leaves the cache as Open followed by
// AssignEpoch would, and a reopen after a crash in the same epoch writes
// no leader-epoch checkpoint (the recovery's truncation of the entry at
// the log end and its assignment again cancel out).
func TestOpenAssignsTheLeaderEpochWithoutRewritingTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	open := func(epoch int32) *Log {
		t.Helper()
		l, err := Open(dir, DefaultConfig(), Options{Logger: testLogger(t), AssignLeaderEpoch: true, LeaderEpoch: epoch})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	checkpoint := filepath.Join(dir, epochCheckpointName)
	l := open(3)
	if e, start, ok := l.LatestEpoch(); !ok || e != 3 || start != 0 {
		t.Fatalf("latest epoch %d at %d (ok %v), want 3 at 0", e, start, ok)
	}
	l.crash() // empty: the entry starts at the log end
	before, err := os.Stat(checkpoint)
	if err != nil {
		t.Fatal(err)
	}

	l = open(3) // same epoch: nothing to write
	after, err := os.Stat(checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("the leader-epoch checkpoint was rewritten on a reopen in the same epoch")
	}
	if e, start, ok := l.LatestEpoch(); !ok || e != 3 || start != 0 {
		t.Fatalf("after reopen: latest epoch %d at %d (ok %v), want 3 at 0", e, start, ok)
	}
	mustAppend(t, l, plainBatch(5, 10, 1).build(), 3)
	l.crash()

	l = open(4) // a new epoch starts at the log end, durably
	defer l.Close()
	if e, start, ok := l.LatestEpoch(); !ok || e != 4 || start != 5 {
		t.Fatalf("new epoch: latest %d at %d (ok %v), want 4 at 5", e, start, ok)
	}
	c, err := openEpochCache(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.entries(); len(got) != 2 || got[1] != (epochEntry{4, 5}) {
		t.Fatalf("checkpoint on disk holds %v, want epoch 4 from 5 last", got)
	}
}

// AssignOnlyIfEmpty assigns only to a log that opens empty at offset 0.
func TestOpenAssignsOnlyIfEmpty(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Logger: testLogger(t), AssignLeaderEpoch: true, LeaderEpoch: 0, AssignOnlyIfEmpty: true}
	l, err := Open(dir, DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if e, start, ok := l.LatestEpoch(); !ok || e != 0 || start != 0 {
		t.Fatalf("empty log: latest epoch %d at %d (ok %v), want 0 at 0", e, start, ok)
	}
	mustAppend(t, l, plainBatch(3, 10, 1).build(), 2)
	l.crash()
	opts.LeaderEpoch = 5
	if l, err = Open(dir, DefaultConfig(), opts); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if e, _, ok := l.LatestEpoch(); !ok || e != 2 {
		t.Fatalf("non-empty log: latest epoch %d (ok %v), want 2 from its batches", e, ok)
	}
}
