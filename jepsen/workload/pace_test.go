package workload

import (
	"context"
	"testing"
	"time"
)

func TestPaceSendsKeepsTheRateAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var seqs []int
	start := time.Now()
	paceSends(ctx, 1000, func(seq int) bool { seqs = append(seqs, seq); return true })
	elapsed := time.Since(start)
	for i, s := range seqs {
		if s != i {
			t.Fatalf("send %d got sequence number %d", i, s)
		}
	}
	// At most what was due when the context ended, and most of it.
	if due := int(elapsed.Seconds() * 1000); len(seqs) > due || len(seqs) < due/2 {
		t.Fatalf("%d sends in %v at 1000/s", len(seqs), elapsed)
	}

	n := 0
	paceSends(context.Background(), 1000, func(seq int) bool { n++; return seq < 9 })
	if n != 10 {
		t.Fatalf("send returning false after the 10th: called %d times", n)
	}
}
