package perf

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latencies are kept in a log-linear histogram, HDR-style: exact below
// 2^subBits ns, then 2^(subBits-1) buckets per power of two, so a reported
// percentile is within 1/64 (1.6%) of the true value whatever the range,
// in a fixed 30 KiB however many records are measured.
const (
	subBits    = 7
	subHalf    = 1 << (subBits - 1)
	numBuckets = (64-subBits+1)*subHalf + subHalf
)

// histogram counts durations. Record is safe for concurrent use (promise
// callbacks of several producers); snapshots are taken while records go on.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64
	sum    atomic.Int64
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift*subHalf + int(v>>shift)
}

// bucketHigh is the largest value bucket i holds.
func bucketHigh(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i/subHalf - 1
	m := uint64(i - shift*subHalf)
	return (m+1)<<shift - 1
}

// Record adds one duration (negative counts as zero).
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// snapshot is a copy of the counts at one moment, for percentiles.
type snapshot struct {
	counts [numBuckets]uint64
	total  uint64
	max    time.Duration
	sum    time.Duration
}

func (h *histogram) snapshot() *snapshot {
	s := &snapshot{max: time.Duration(h.max.Load()), sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		c := h.counts[i].Load()
		s.counts[i] = c
		s.total += c
	}
	return s
}

// since returns the counts added after prev (max is then unknown, the
// maximum so far).
func (s *snapshot) since(prev *snapshot) *snapshot {
	d := &snapshot{max: s.max, sum: s.sum - prev.sum}
	for i := range s.counts {
		d.counts[i] = s.counts[i] - prev.counts[i]
		d.total += d.counts[i]
	}
	return d
}

// Percentile returns the smallest bucket bound with at least q (0..1) of
// the values at or below it, capped at the maximum seen.
func (s *snapshot) Percentile(q float64) time.Duration {
	if s.total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(s.total)))
	want = max(want, 1)
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= want {
			return min(time.Duration(bucketHigh(i)), s.max)
		}
	}
	return s.max
}

// Mean is the average duration.
func (s *snapshot) Mean() time.Duration {
	if s.total == 0 {
		return 0
	}
	return s.sum / time.Duration(s.total)
}
