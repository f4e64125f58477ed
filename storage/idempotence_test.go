package storage

import (
	"errors"
	"maps"
	"os"
	"slices"
	"testing"
	"time"
)

// TestIdempotentAppends checks the producer-sequence rules end to end through
// Log.Append, and that they hold across a clean reopen and a crash.
func TestIdempotentAppends(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	l := openTestLog(t, dir, cfg, nil)

	first := mustAppend(t, l, idempotentBatch(1000, 0, 0, 5).build(), 0)  // seq 0..4 → offsets 0..4
	second := mustAppend(t, l, idempotentBatch(1000, 0, 5, 5).build(), 0) // seq 5..9 → 5..9
	mustAppend(t, l, plainBatch(2, 1, 1).build(), 0)                      // non-idempotent 10..11
	other := mustAppend(t, l, idempotentBatch(2000, 3, 77, 2).build(), 0) // unknown pid: any seq → 12..13

	// Duplicate: nothing written, original offsets back.
	leo := l.LogEndOffset()
	res, err := l.Append(idempotentBatch(1000, 0, 0, 5).build(), 0)
	if err != nil || !res.Duplicate || res.FirstOffset != first.FirstOffset || res.LastOffset != first.LastOffset {
		t.Fatalf("duplicate of the first batch: %+v, %v", res, err)
	}
	res, err = l.Append(idempotentBatch(1000, 0, 5, 5).build(), 0)
	if err != nil || !res.Duplicate || res.FirstOffset != second.FirstOffset {
		t.Fatalf("duplicate of the second batch: %+v, %v", res, err)
	}
	if l.LogEndOffset() != leo {
		t.Fatalf("a duplicate moved the log end %d → %d", leo, l.LogEndOffset())
	}
	// Gap: sequence 12 when 10 is next.
	if _, err := l.Append(idempotentBatch(1000, 0, 12, 1).build(), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	// A new epoch must start at 0.
	if _, err := l.Append(idempotentBatch(1000, 1, 10, 1).build(), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at seq 10: %v", err)
	}
	mustAppend(t, l, idempotentBatch(1000, 1, 0, 1).build(), 0)
	// Fenced: the old epoch is refused now.
	if _, err := l.Append(idempotentBatch(1000, 0, 10, 1).build(), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	if l.LogEndOffset() != leo+1 {
		t.Fatalf("refused appends wrote something: log end %d, want %d", l.LogEndOffset(), leo+1)
	}

	check := func(stage string, l *Log) {
		t.Helper()
		res, err := l.Append(idempotentBatch(2000, 3, 77, 2).build(), 0)
		if err != nil || !res.Duplicate || res.FirstOffset != other.FirstOffset {
			t.Fatalf("%s: duplicate of pid 2000: %+v, %v", stage, res, err)
		}
		if _, err := l.Append(idempotentBatch(1000, 0, 10, 1).build(), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
			t.Fatalf("%s: fenced epoch: %v", stage, err)
		}
		if _, err := l.Append(idempotentBatch(1000, 1, 5, 1).build(), 0); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("%s: gap: %v", stage, err)
		}
	}
	check("open", l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, cfg, nil)
	check("clean reopen", l)
	mustAppend(t, l, idempotentBatch(1000, 1, 1, 1).build(), 0)
	l.crash() // no snapshot at the log end: state is rebuilt from the log
	l = openTestLog(t, dir, cfg, nil)
	defer l.Close()
	check("crash recovery", l)
	if _, err := l.Append(idempotentBatch(1000, 1, 2, 3).build(), 0); err != nil {
		t.Fatalf("next sequence after recovery: %v", err)
	}
}

// TestIdleProducersExpireAtRuntime: a producer idle for longer than
// producer.id.expiration.ms is forgotten by a running log, at the next roll
// (so the snapshot written there does not carry it) and by the periodic
// check, not only when a snapshot is loaded at Open.
func TestIdleProducersExpireAtRuntime(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	dir := t.TempDir()
	cfg := DefaultConfig() // producer.id.expiration.ms: 1 day
	l := openTestLog(t, dir, cfg, clock)
	defer l.Close()
	mustAppend(t, l, idempotentBatch(1, 0, 0, 1).build(), 0)
	mustAppend(t, l, idempotentBatch(2, 0, 0, 1).build(), 0)
	clock.Advance(23 * time.Hour)
	mustAppend(t, l, idempotentBatch(2, 0, 1, 1).build(), 0) // 2 stays active
	clock.Advance(2 * time.Hour)                             // 1 idle for 25h, 2 for 2h

	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.producers.snapshotPath(l.LogEndOffset()))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap[1]; ok || len(snap) != 1 {
		t.Fatalf("snapshot at roll holds producers %v; producer 1 was idle for 25h", slices.Sorted(maps.Keys(snap)))
	}
	l.mu.Lock()
	n := l.producers.len()
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d producers in memory after the roll, want 1", n)
	}
	// The expired producer is new again: any sequence is accepted.
	mustAppend(t, l, idempotentBatch(1, 0, 40, 1).build(), 0)

	// The periodic check (every 10 minutes in the flusher) does the same
	// without a roll.
	clock.Advance(25 * time.Hour)
	l.expireProducers()
	l.mu.Lock()
	n = l.producers.len()
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d producers left after all were idle for 25h", n)
	}
}
