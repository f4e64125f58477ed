package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch; batches are built with franz-go's kmsg
// encoders so the tests do not share the code under test's idea of the format.
type batchSpec struct {
	records       int
	valueSize     int
	baseTimestamp int64
	tsStep        int64 // timestamp delta between consecutive records
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	codec         int16   // attribute bits only; records are not really compressed
	fill          byte    // value byte, so batches differ
	timestamps    []int64 // when set, each record's timestamp (overrides baseTimestamp and tsStep)
}

func plainBatch(records, valueSize int, ts int64) batchSpec {
	return batchSpec{records: records, valueSize: valueSize, baseTimestamp: ts, tsStep: 1, producerID: -1, producerEpoch: -1, baseSequence: -1}
}

func idempotentBatch(pid int64, epoch int16, seq int32, records int) batchSpec {
	return batchSpec{records: records, valueSize: 10, baseTimestamp: 1_700_000_000_000, producerID: pid, producerEpoch: epoch, baseSequence: seq}
}

func (b batchSpec) build() []byte {
	var recs []byte
	if b.timestamps != nil {
		b.records = len(b.timestamps)
		b.baseTimestamp = b.timestamps[0]
	}
	tsOf := func(i int) int64 {
		if b.timestamps != nil {
			return b.timestamps[i]
		}
		return b.baseTimestamp + int64(i)*b.tsStep
	}
	maxTS := tsOf(0)
	for i := 0; i < b.records; i++ {
		maxTS = max(maxTS, tsOf(i))
		r := kmsg.Record{
			TimestampDelta64: tsOf(i) - b.baseTimestamp,
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            bytes.Repeat([]byte{b.fill + byte(i)}, b.valueSize),
		}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the zero Length varint took one byte
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           b.codec,
		LastOffsetDelta:      int32(b.records - 1),
		FirstTimestamp:       b.baseTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           b.producerID,
		ProducerEpoch:        b.producerEpoch,
		FirstSequence:        b.baseSequence,
		NumRecords:           int32(b.records),
		Records:              recs,
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// decodeBatches parses buf with kmsg and checks every CRC, returning the batches.
func decodeBatches(t testing.TB, buf []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(buf) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(buf); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		n := int(rb.Length) + 12
		if crc := crc32.Checksum(buf[21:n], crc32.MakeTable(crc32.Castagnoli)); int32(crc) != rb.CRC {
			t.Fatalf("batch at offset %d: crc mismatch", rb.FirstOffset)
		}
		out = append(out, rb)
		buf = buf[n:]
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// fakeClock is a settable clock for retention and roll tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openTestLog(t testing.TB, dir string, cfg Config, clock *fakeClock) *Log {
	t.Helper()
	opts := Options{Logger: testLogger(t)}
	if clock != nil {
		opts.Now = clock.Now
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	return l
}

func smallSegments(segmentBytes int64) Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = segmentBytes
	return cfg
}

func mustAppend(t testing.TB, l *Log, buf []byte, epoch int32) AppendResult {
	t.Helper()
	res, err := l.Append(buf, epoch)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// readAll returns every batch from the log start to the log end.
func readAll(t testing.TB, l *Log) []byte {
	t.Helper()
	var out []byte
	off := l.LogStartOffset()
	for off < l.LogEndOffset() {
		r, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(r.Regions) == 0 {
			t.Fatalf("read at %d below log end %d returned nothing", off, l.LogEndOffset())
		}
		out = append(out, regionBytes(t, r)...)
		off = r.NextOffset
		r.Release()
	}
	return out
}

func regionBytes(t testing.TB, r *ReadResult) []byte {
	t.Helper()
	var out []byte
	for _, reg := range r.Regions {
		b := make([]byte, reg.Size)
		if _, err := reg.File.ReadAt(b, reg.Position); err != nil && err != io.EOF {
			t.Fatalf("read region: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

// activeSegmentSize is the committed size of the active segment.
func (l *Log) activeSegmentSize() int64 {
	segs := *l.segments.Load()
	return segs[len(segs)-1].size.Load()
}

// crash stops a log the way a killed process would: no flush, no indexes
// written, no marker.
func (l *Log) crash() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.stopFlusher)
	<-l.flusherDone
	for _, s := range *l.segments.Load() {
		s.close()
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
