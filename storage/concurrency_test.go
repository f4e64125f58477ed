package storage

import (
	"context"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// TestReadersNeverSeePartialBatches races readers against a writer that
// appends and rolls: every byte range a reader is handed must parse as whole
// batches with valid CRCs and contiguous offsets.
func TestReadersNeverSeePartialBatches(t *testing.T) {
	seed := testSeed(t)
	cfg := smallSegments(64 << 10)
	cfg.IndexIntervalBytes = 1024
	l := openTestLog(t, t.TempDir(), cfg, nil)
	defer l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(r)))
			reads := 0
			for ctx.Err() == nil || reads < 50 {
				leo := l.LogEndOffset()
				if leo == 0 {
					continue
				}
				off := rng.Int63n(leo)
				res, err := l.Read(off, 1+rng.Intn(64<<10), leo)
				if err != nil {
					errs <- err.Error()
					return
				}
				data := regionBytes(t, res)
				first, next := res.FirstOffset, res.NextOffset
				res.Release()
				expect := first
				for len(data) > 0 {
					h, err := ParseBatchHeader(data)
					if err != nil || int(h.Length) > len(data) || batchCRC(data[:h.Length]) != h.CRC || h.BaseOffset != expect {
						errs <- "reader saw a partial or corrupt batch"
						return
					}
					expect = h.NextOffset()
					data = data[h.Length:]
				}
				if expect != next || first > off || next <= off {
					errs <- "reader's range does not cover the offset asked for"
					return
				}
				reads++
			}
		}(r)
	}
	rng := rand.New(rand.NewSource(seed))
	deadline := time.Now().Add(2 * time.Second)
	appends := 0
	for time.Now().Before(deadline) {
		spec := plainBatch(1+rng.Intn(20), rng.Intn(2000), 1)
		if _, err := l.Append(spec.build(), 0); err != nil {
			t.Fatal(err)
		}
		appends++
	}
	cancel()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	t.Logf("%d appends over %d segments raced 4 readers", appends, l.SegmentCount())
}
