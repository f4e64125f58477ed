package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureLog is an io.Writer for slog that forwards to t.Log and keeps the
// text so a test can assert a warning was logged.
type captureLog struct {
	t  testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (c *captureLog) Write(p []byte) (int, error) {
	c.t.Log(strings.TrimSuffix(string(p), "\n"))
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *captureLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

func newCaptureLogger(t testing.TB) (*slog.Logger, *captureLog) {
	c := &captureLog{t: t}
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})), c
}

var baseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// pb builds a batch of n records starting at sequence seq and log offset off.
func pb(pid int64, epoch int16, seq, n int32, off int64) producerBatch {
	return producerBatch{producerID: pid, producerEpoch: epoch, baseSequence: seq,
		lastOffsetDelta: n - 1, baseOffset: off, maxTimestamp: 1000 + off}
}

func dupOf(b producerBatch) *duplicateBatch {
	return &duplicateBatch{firstOffset: b.baseOffset, lastOffset: b.baseOffset + int64(b.lastOffsetDelta), maxTimestamp: b.maxTimestamp}
}

// appendOK runs one append request through check, stage and commit, failing
// the test on any refusal or duplicate.
func appendOK(t testing.TB, p *producerStates, now time.Time, batches ...producerBatch) {
	t.Helper()
	a := p.begin()
	for _, b := range batches {
		if dup, err := a.check(b); err != nil || dup != nil {
			t.Fatalf("check(%+v) = %+v, %v; want accepted", b, dup, err)
		}
		a.stage(b, now)
	}
	a.commit()
}

func checkResult(t *testing.T, dup, wantDup *duplicateBatch, err, wantErr error) {
	t.Helper()
	if (err == nil) != (wantErr == nil) || !errors.Is(err, wantErr) {
		t.Fatalf("err = %v, want %v", err, wantErr)
	}
	if !reflect.DeepEqual(dup, wantDup) {
		t.Fatalf("dup = %+v, want %+v", dup, wantDup)
	}
}

func TestProducerBatchLastSequence(t *testing.T) {
	for _, tc := range []struct{ base, delta, want int32 }{
		{0, 0, 0},
		{5, 4, 9},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1},
	} {
		b := producerBatch{baseSequence: tc.base, lastOffsetDelta: tc.delta}
		if got := b.lastSequence(); got != tc.want {
			t.Errorf("lastSequence(base %d, delta %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestProducerCheck(t *testing.T) {
	// Producer 7 at epoch 3 appended 6 batches of 2 records: sequences 0-1,
	// 2-3, ..., 10-11 at offsets 100, 102, ..., 110. The first has left the
	// 5-batch window.
	var history []producerBatch
	for i := range int32(6) {
		history = append(history, pb(7, 3, 2*i, 2, 100+2*int64(i)))
	}
	type testCase struct {
		name    string
		batch   producerBatch
		wantDup *duplicateBatch
		wantErr error
	}
	cases := []testCase{
		{"unknown producer at any sequence", pb(8, 0, 42, 1, 0), nil, nil},
		{"not idempotent", pb(-1, -1, -1, 3, 0), nil, nil},
		{"sequence continues", pb(7, 3, 12, 5, 0), nil, nil},
		{"gap", pb(7, 3, 13, 1, 0), nil, ErrOutOfOrderSequence},
		{"sequence behind", pb(7, 3, 11, 1, 0), nil, ErrOutOfOrderSequence},
		{"resent 6th-oldest batch is out of order, not a duplicate", pb(7, 3, 0, 2, 0), nil, ErrOutOfOrderSequence},
		{"same first sequence, different last", pb(7, 3, 10, 3, 0), nil, ErrOutOfOrderSequence},
		{"older epoch", pb(7, 2, 12, 1, 0), nil, ErrInvalidProducerEpoch},
		{"older epoch with a retained batch's sequences", pb(7, 2, 10, 2, 0), nil, ErrInvalidProducerEpoch},
		{"new epoch at sequence 0", pb(7, 4, 0, 1, 0), nil, nil},
		{"new epoch not at sequence 0", pb(7, 4, 12, 1, 0), nil, ErrOutOfOrderSequence},
	}
	for _, b := range history[1:] {
		// A retry carries no offset; the answer is the original one.
		retry := b
		retry.baseOffset, retry.maxTimestamp = 0, 0
		name := fmt.Sprintf("duplicate of retained batch seq %d-%d", b.baseSequence, b.lastSequence())
		cases = append(cases, testCase{name, retry, dupOf(b), nil})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProducerStates(t.TempDir(), 0, nil)
			for _, b := range history {
				appendOK(t, p, baseTime, b)
			}
			dup, err := p.begin().check(tc.batch)
			checkResult(t, dup, tc.wantDup, err, tc.wantErr)
		})
	}
}

func TestProducerSequenceWraparound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		last    producerBatch // committed before the check
		next    producerBatch
		wantErr error
	}{
		{"after MaxInt32 comes 0", pb(1, 0, math.MaxInt32-1, 2, 0), pb(1, 0, 0, 1, 2), nil},
		{"after MaxInt32 MaxInt32+1 is not valid", pb(1, 0, math.MaxInt32-1, 2, 0), pb(1, 0, 1, 1, 2), ErrOutOfOrderSequence},
		{"batch spanning the wrap", pb(1, 0, math.MaxInt32-1, 4, 0), pb(1, 0, 2, 1, 4), nil},
		{"batch spanning the wrap, gap", pb(1, 0, math.MaxInt32-1, 4, 0), pb(1, 0, 3, 1, 4), ErrOutOfOrderSequence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProducerStates(t.TempDir(), 0, nil)
			appendOK(t, p, baseTime, tc.last)
			dup, err := p.begin().check(tc.next)
			checkResult(t, dup, nil, err, tc.wantErr)
			// The wrapped batch is also recognized as its own duplicate.
			dup, err = p.begin().check(tc.last)
			checkResult(t, dup, dupOf(tc.last), err, nil)
		})
	}
}

func TestProducerNewEpochResetsWindow(t *testing.T) {
	p := newProducerStates(t.TempDir(), 0, nil)
	old := pb(5, 0, 0, 3, 0)
	appendOK(t, p, baseTime, old, pb(5, 0, 3, 2, 3))
	bumped := pb(5, 1, 0, 1, 5)
	appendOK(t, p, baseTime, bumped)

	if epoch, lastSeq, ok := p.producer(5); !ok || epoch != 1 || lastSeq != 0 {
		t.Fatalf("producer(5) = %d, %d, %v; want epoch 1, last sequence 0", epoch, lastSeq, ok)
	}
	a := p.begin()
	dup, err := a.check(old)
	checkResult(t, dup, nil, err, ErrInvalidProducerEpoch)
	dup, err = a.check(bumped)
	checkResult(t, dup, dupOf(bumped), err, nil)
	dup, err = a.check(pb(5, 1, 1, 1, 6))
	checkResult(t, dup, nil, err, nil)
}

func TestProducerAppendStaging(t *testing.T) {
	p := newProducerStates(t.TempDir(), 0, nil)
	appendOK(t, p, baseTime, pb(1, 0, 0, 1, 0))

	a := p.begin()
	first, second := pb(1, 0, 1, 2, 1), pb(1, 0, 3, 2, 3)
	for _, b := range []producerBatch{first, second} {
		dup, err := a.check(b)
		checkResult(t, dup, nil, err, nil)
		a.stage(b, baseTime)
	}
	// Later batches of the same append see the staged ones, the committed
	// state does not yet.
	dup, err := a.check(pb(1, 0, 1, 2, 0))
	checkResult(t, dup, dupOf(first), err, nil)
	dup, err = a.check(pb(1, 0, 6, 1, 0))
	checkResult(t, dup, nil, err, ErrOutOfOrderSequence)
	if _, lastSeq, _ := p.producer(1); lastSeq != 0 {
		t.Fatalf("before commit: last sequence %d, want 0", lastSeq)
	}
	a.commit()
	if _, lastSeq, _ := p.producer(1); lastSeq != 4 {
		t.Fatalf("after commit: last sequence %d, want 4", lastSeq)
	}
}

func TestProducerAppendAbort(t *testing.T) {
	p := newProducerStates(t.TempDir(), 0, nil)
	appendOK(t, p, baseTime, pb(1, 0, 0, 1, 0))
	before := copyState(p)

	a := p.begin()
	for _, b := range []producerBatch{pb(1, 0, 1, 1, 1), pb(2, 0, 0, 1, 2), pb(1, 1, 0, 1, 3)} {
		if _, err := a.check(b); err != nil {
			t.Fatal(err)
		}
		a.stage(b, baseTime.Add(time.Hour))
	}
	// The write failed: the Log drops a without commit.
	if after := copyState(p); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed without commit:\n got %+v\nwant %+v", after, before)
	}
	dup, err := p.begin().check(pb(1, 0, 1, 1, 0))
	checkResult(t, dup, nil, err, nil)
}

// copyState copies the committed state for comparison.
func copyState(p *producerStates) map[int64]producerEntry {
	m := make(map[int64]producerEntry, len(p.producers))
	for k, v := range p.producers {
		m[k] = v
	}
	return m
}

func TestProducerReplay(t *testing.T) {
	p := newProducerStates(t.TempDir(), 0, nil)
	// Replay trusts the log: a gap or an unusual first sequence is taken as is.
	for _, b := range []producerBatch{pb(3, 0, 10, 1, 0), pb(3, 0, 20, 5, 1), pb(-1, 0, 0, 1, 6)} {
		p.replay(b, baseTime)
	}
	if epoch, lastSeq, ok := p.producer(3); !ok || epoch != 0 || lastSeq != 24 || p.len() != 1 {
		t.Fatalf("producer(3) = %d, %d, %v (len %d); want 0, 24, true (len 1)", epoch, lastSeq, ok, p.len())
	}
	p.replay(pb(3, 2, 0, 1, 7), baseTime)
	if e := p.producers[3]; e.epoch != 2 || e.n != 1 {
		t.Fatalf("after epoch change: epoch %d with %d batches, want 2 with 1", e.epoch, e.n)
	}
}

// snapshotFixture builds state with producers of 1, 3 and 7 (so 5
// retained) batches and an epoch bump.
func snapshotFixture(t testing.TB, p *producerStates, off int64) int64 {
	for _, pr := range []struct {
		pid     int64
		batches int
	}{{10, 1}, {11, 3}, {12, 7}} {
		pid := pr.pid
		for i := range pr.batches {
			appendOK(t, p, baseTime.Add(time.Duration(i)*time.Second), pb(pid, 2, int32(3*i), 3, off))
			off += 3
		}
	}
	appendOK(t, p, baseTime, pb(13, 0, 0, 1, off), pb(13, 1, 0, 1, off+1))
	return off + 2
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := newProducerStates(dir, 24*time.Hour, nil)
	leo := snapshotFixture(t, p, 0)
	if err := p.takeSnapshot(leo, true); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%020d.snapshot", leo))
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Same offset again: a no-op even though the state moved on.
	appendOK(t, p, baseTime, pb(99, 0, 0, 1, leo))
	if err := p.takeSnapshot(leo, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, written) {
		t.Fatal("takeSnapshot rewrote an existing snapshot")
	}
	delete(p.producers, 99)

	q := newProducerStates(dir, 24*time.Hour, nil)
	q.producers[42] = producerEntry{n: 1} // load must clear
	off, ok, err := q.loadLatestSnapshot(leo, baseTime)
	if err != nil || !ok || off != leo {
		t.Fatalf("loadLatestSnapshot = %d, %v, %v; want %d, true, nil", off, ok, err, leo)
	}
	if !reflect.DeepEqual(q.producers, p.producers) {
		t.Fatalf("loaded state differs:\n got %+v\nwant %+v", q.producers, p.producers)
	}
	// All 5 retained batches survive the restart, not just the last one.
	dup, err := q.begin().check(pb(12, 2, 6, 3, 0))
	checkResult(t, dup, &duplicateBatch{firstOffset: 18, lastOffset: 20, maxTimestamp: 1018}, err, nil)
}

func TestProducerSnapshotCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"flipped byte in an entry", func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }},
		{"flipped crc", func(b []byte) []byte { b[3] ^= 1; return b }},
		{"unknown version", func(b []byte) []byte { b[1] = 9; return b }},
		{"truncated entry", func(b []byte) []byte { return b[:len(b)-5] }},
		{"truncated header", func(b []byte) []byte { return b[:7] }},
		{"empty", func([]byte) []byte { return nil }},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0, 0, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logger, logs := newCaptureLogger(t)
			p := newProducerStates(dir, 0, logger)
			appendOK(t, p, baseTime, pb(1, 0, 0, 10, 0))
			want := copyState(p)
			if err := p.takeSnapshot(10, true); err != nil {
				t.Fatal(err)
			}
			appendOK(t, p, baseTime, pb(1, 0, 10, 10, 10))
			if err := p.takeSnapshot(20, true); err != nil {
				t.Fatal(err)
			}
			newest := p.snapshotPath(20)
			data, _ := os.ReadFile(newest)
			if err := os.WriteFile(newest, tc.corrupt(data), 0o644); err != nil {
				t.Fatal(err)
			}

			off, ok, err := p.loadLatestSnapshot(20, baseTime)
			if err != nil || !ok || off != 10 {
				t.Fatalf("loadLatestSnapshot = %d, %v, %v; want the older snapshot 10", off, ok, err)
			}
			if !reflect.DeepEqual(p.producers, want) {
				t.Fatalf("state %+v, want %+v", p.producers, want)
			}
			if _, err := os.Stat(newest); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("corrupt snapshot not deleted: %v", err)
			}
			if !strings.Contains(logs.String(), "corrupt producer snapshot") {
				t.Fatal("no warning logged")
			}
		})
	}
}

func TestProducerLoadLatestSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := newProducerStates(dir, 0, nil)

	off, ok, err := p.loadLatestSnapshot(math.MaxInt64, baseTime)
	if err != nil || ok || off != -1 {
		t.Fatalf("empty dir: %d, %v, %v; want -1, false, nil", off, ok, err)
	}
	appendOK(t, p, baseTime, pb(1, 0, 0, 1, 0))
	for _, off := range []int64{5, 50} {
		if err := p.takeSnapshot(off, true); err != nil {
			t.Fatal(err)
		}
	}
	// A crash during takeSnapshot leaves a temp file: ignored, then removed.
	tmp := p.snapshotPath(60) + tempFileSuffix
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	if off, ok, err := p.loadLatestSnapshot(49, baseTime); err != nil || !ok || off != 5 {
		t.Fatalf("maxOffset 49: %d, %v, %v; want 5", off, ok, err)
	}
	if _, err := os.Stat(p.snapshotPath(50)); err != nil {
		t.Fatalf("snapshot above maxOffset must stay: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file not removed: %v", err)
	}
	if off, ok, err := p.loadLatestSnapshot(4, baseTime); err != nil || ok || off != -1 || p.len() != 0 {
		t.Fatalf("maxOffset 4: %d, %v, %v, len %d; want -1, false, nil, empty state", off, ok, err, p.len())
	}
}

func TestProducerDeleteSnapshots(t *testing.T) {
	dir := t.TempDir()
	p := newProducerStates(dir, 0, nil)
	// Neighbours in the partition directory that must never be touched.
	others := []string{"00000000000000000010.log", "00000000000000000010.index", "leader-epoch-checkpoint", "0000000000000000010.snapshot"}
	for _, name := range others {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []int64{10, 20, 30, 40} {
		if err := p.takeSnapshot(off, true); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		op   string
		arg  int64
		want []int64
	}{
		{"after", 40, []int64{10, 20, 30, 40}},
		{"after", 25, []int64{10, 20}},
		{"before", 10, []int64{10, 20}},
		{"before", 15, []int64{20}},
		{"before", 100, []int64{20}}, // the newest is always kept
		{"after", -1, nil},
	}
	for _, s := range steps {
		var err error
		if s.op == "after" {
			err = p.deleteSnapshotsAfter(s.arg)
		} else {
			err = p.deleteSnapshotsBefore(s.arg)
		}
		if err != nil {
			t.Fatalf("delete %s %d: %v", s.op, s.arg, err)
		}
		got, err := p.snapshotOffsets(false)
		if err != nil || !slices.Equal(got, s.want) {
			t.Fatalf("delete %s %d: left %v (%v), want %v", s.op, s.arg, got, err, s.want)
		}
		latest, ok := p.latestSnapshotOffset()
		if wantOK := len(s.want) > 0; ok != wantOK || ok && latest != s.want[len(s.want)-1] {
			t.Fatalf("delete %s %d: latestSnapshotOffset = %d, %v", s.op, s.arg, latest, ok)
		}
	}
	for _, name := range others {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestProducerExpire(t *testing.T) {
	const expiration = 24 * time.Hour
	dir := t.TempDir()
	p := newProducerStates(dir, expiration, nil)
	appendOK(t, p, baseTime, pb(1, 0, 0, 1, 0))
	appendOK(t, p, baseTime.Add(time.Hour), pb(2, 0, 0, 1, 1))
	if err := p.takeSnapshot(2, true); err != nil {
		t.Fatal(err)
	}

	p.expire(baseTime.Add(expiration)) // idle exactly the expiration: kept
	if p.len() != 2 {
		t.Fatalf("len %d after expire at the boundary, want 2", p.len())
	}
	p.expire(baseTime.Add(expiration + time.Millisecond))
	if _, _, ok := p.producer(1); ok || p.len() != 1 {
		t.Fatalf("producer 1 not expired (len %d)", p.len())
	}
	// An expired producer is unknown again: any sequence is accepted.
	dup, err := p.begin().check(pb(1, 0, 77, 1, 2))
	checkResult(t, dup, nil, err, nil)

	// Loading a snapshot expires against the time of the load.
	q := newProducerStates(dir, expiration, nil)
	if _, _, err := q.loadLatestSnapshot(2, baseTime.Add(expiration+time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := q.producer(2); !ok || q.len() != 1 {
		t.Fatalf("after load: len %d, want only producer 2", q.len())
	}
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	p := newProducerStates(f.TempDir(), 0, nil)
	snapshotFixture(f, p, 0)
	valid := encodeSnapshot(p.producers)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(encodeSnapshot(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		producers, err := decodeSnapshot(data)
		if err != nil {
			if !errors.Is(err, errCorruptSnapshot) {
				t.Fatalf("error %v does not wrap errCorruptSnapshot", err)
			}
			return
		}
		again, err := decodeSnapshot(encodeSnapshot(producers))
		if err != nil || !reflect.DeepEqual(again, producers) {
			t.Fatalf("re-encoding changed the state: %v", err)
		}
	})
}

// BenchmarkProducerAppend measures check+stage+commit of a one-batch append;
// "not-idempotent" is the baseline of a batch without producer id.
func BenchmarkProducerAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		pid  int64
	}{{"not-idempotent", -1}, {"idempotent", 1}} {
		pid := bc.pid
		b.Run(bc.name, func(b *testing.B) {
			p := newProducerStates(b.TempDir(), 0, nil)
			b.ReportAllocs()
			var seq int32
			for i := 0; b.Loop(); i++ {
				batch := pb(pid, 0, seq, 10, int64(i)*10)
				a := p.begin()
				if _, err := a.check(batch); err != nil {
					b.Fatal(err)
				}
				a.stage(batch, baseTime)
				a.commit()
				seq = addSequence(seq, 10)
			}
		})
	}
}
