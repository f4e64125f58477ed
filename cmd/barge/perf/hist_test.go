package perf

import (
	"github.com/barge-broker/barge/internal/testutil"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	prevHigh := uint64(0)
	for i := 1; i < numBuckets; i++ {
		low := prevHigh + 1
		if bucketOf(low) != i {
			t.Fatalf("bucket %d: low %d lands in bucket %d", i, low, bucketOf(low))
		}
		high := bucketHigh(i)
		if bucketOf(high) != i || high < low {
			t.Fatalf("bucket %d: high %d lands in bucket %d (low %d)", i, high, bucketOf(high), low)
		}
		if high == 1<<64-1 {
			break
		}
		prevHigh = high
	}
	if b := bucketOf(1<<63 - 1); b >= numBuckets {
		t.Fatalf("max int64 in bucket %d of %d", b, numBuckets)
	}
}

// TestPercentilesWithinError compares against exact percentiles of a
// seeded sample.
func TestPercentilesWithinError(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(testutil.Seed(t)), 0))
	var h histogram
	var all []time.Duration
	for range 100000 {
		// Log-uniform from 1µs to 10s.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, r.Float64()*7))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	s := h.snapshot()
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999, 1} {
		exact := all[max(int(q*float64(len(all)))-1, 0)]
		got := s.Percentile(q)
		if rel := float64(got-exact) / float64(exact); rel < -0.02 || rel > 0.02 {
			t.Errorf("p%v = %v, exact %v (%.3f off)", q*100, got, exact, rel)
		}
	}
	if s.Percentile(1) != all[len(all)-1] || s.max != all[len(all)-1] {
		t.Errorf("max %v, want %v", s.Percentile(1), all[len(all)-1])
	}
}

func TestSnapshotSince(t *testing.T) {
	var h histogram
	for range 10 {
		h.Record(time.Millisecond)
	}
	a := h.snapshot()
	for range 10 {
		h.Record(time.Second)
	}
	d := h.snapshot().since(a)
	if d.total != 10 || d.Percentile(0.5) < 990*time.Millisecond {
		t.Errorf("interval total %d p50 %v", d.total, d.Percentile(0.5))
	}
	var empty snapshot
	if empty.Percentile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty snapshot is not zero")
	}
}
