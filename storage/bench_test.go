package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
)

// Benchmarks compare each storage path with a baseline doing the same I/O
// without Barge, interleaved in one loop so machine noise hits both alike.
// They report MB/s of each and the ratio (1.0 = as fast as the baseline).

var benchBatchSizes = []struct {
	name    string
	records int // of ~1 KiB each
}{
	{"16KiB", 15},
	{"1MiB", 1000},
}

func benchBatch(records int) []byte {
	spec := plainBatch(records, 1000, time.Now().UnixMilli())
	return spec.build()
}

func reportRatio(b *testing.B, bytesEach int64, base, ours time.Duration) {
	mb := float64(bytesEach) * float64(b.N) / 1e6
	b.ReportMetric(mb/base.Seconds(), "baseline-MB/s")
	b.ReportMetric(mb/ours.Seconds(), "barge-MB/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkAppend: Log.Append of one batch per call (validate, stamp, one
// write) against writing the same bytes to a plain file sequentially.
func BenchmarkAppend(b *testing.B) {
	for _, bs := range benchBatchSizes {
		b.Run(bs.name, func(b *testing.B) {
			batch := benchBatch(bs.records)
			dir := b.TempDir()
			raw, err := os.Create(filepath.Join(dir, "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			cfg := DefaultConfig()
			cfg.MaxMessageBytes = 2 << 20
			cfg.RetentionMs = -1
			l, err := Open(filepath.Join(dir, "log-0"), cfg, Options{Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			var base, ours time.Duration
			rawWrite := func() {
				t0 := time.Now()
				if _, err := raw.Write(batch); err != nil {
					b.Fatal(err)
				}
				base += time.Since(t0)
			}
			logAppend := func() {
				t0 := time.Now()
				if _, err := l.Append(batch, 1); err != nil {
					b.Fatal(err)
				}
				ours += time.Since(t0)
			}
			for i := 0; i < b.N; i++ {
				// Alternate who goes first: the second writer of a pair
				// tends to pay for the page reclaim the first one caused.
				if i%2 == 0 {
					rawWrite()
					logAppend()
				} else {
					logAppend()
					rawWrite()
				}
			}
			b.StopTimer()
			reportRatio(b, int64(len(batch)), base, ours)
		})
	}
}

// BenchmarkSendfileRead: fetch-sized (1 MiB) Log.Read regions sent with
// sendfile to a loopback TCP socket, against sendfile of the same file in
// 1 MiB chunks with no log in between.
func BenchmarkSendfileRead(b *testing.B) {
	const fetchBytes = 1 << 20
	const logBytes = 64 << 20
	for _, bs := range benchBatchSizes {
		b.Run(bs.name, func(b *testing.B) {
			batch := benchBatch(bs.records)
			cfg := DefaultConfig()
			cfg.MaxMessageBytes = 2 << 20
			cfg.RetentionMs = -1
			l, err := Open(filepath.Join(b.TempDir(), "log-0"), cfg, Options{Logger: testLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			for l.Size() < logBytes {
				if _, err := l.Append(batch, 1); err != nil {
					b.Fatal(err)
				}
			}
			segs := *l.segments.Load()
			rawFile, size := segs[0].file.File, segs[0].size.Load()

			conn, stop := testutil.DrainingConn(b)
			defer stop()
			rc, err := conn.SyscallConn()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fetchBytes)
			b.ReportAllocs()
			b.ResetTimer()
			var base, ours time.Duration
			var rawPos, offset, sent, rawSent int64
			leo := l.LogEndOffset()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				n := min(int64(fetchBytes), size-rawPos)
				if err := testutil.SendfileAll(rc, rawFile, rawPos, n); err != nil {
					b.Fatal(err)
				}
				rawSent += n
				if rawPos += n; rawPos >= size {
					rawPos = 0
				}
				t1 := time.Now()
				r, err := l.Read(offset, fetchBytes, leo)
				if err != nil {
					b.Fatal(err)
				}
				for _, reg := range r.Regions {
					if err := testutil.SendfileAll(rc, reg.File, reg.Position, reg.Size); err != nil {
						b.Fatal(err)
					}
				}
				sent += r.Size
				if offset = r.NextOffset; offset >= leo {
					offset = 0
				}
				r.Release()
				t2 := time.Now()
				base += t1.Sub(t0)
				ours += t2.Sub(t1)
			}
			b.StopTimer()
			// The two sides may send slightly different amounts per
			// iteration (whole batches versus fixed chunks): compare rates.
			b.ReportMetric(float64(rawSent)/1e6/base.Seconds(), "baseline-MB/s")
			b.ReportMetric(float64(sent)/1e6/ours.Seconds(), "barge-MB/s")
			b.ReportMetric((float64(sent)/ours.Seconds())/(float64(rawSent)/base.Seconds()), "ratio")
		})
	}
}

// BenchmarkValidateBatches: validation alone (CRC over the batch).
func BenchmarkValidateBatches(b *testing.B) {
	for _, bs := range benchBatchSizes {
		b.Run(bs.name, func(b *testing.B) {
			batch := benchBatch(bs.records)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ValidateBatches(batch, 0); err != nil {
					b.Fatal(fmt.Sprint(err))
				}
			}
		})
	}
}
