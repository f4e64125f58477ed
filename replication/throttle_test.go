package replication

import (
	"testing"
	"time"
)

// The throttle lets a second of its rate through at once, then one read per
// repaid debt; unthrottled it lets everything through.
func TestThrottleBucket(t *testing.T) {
	var th Throttle
	now := time.Now()
	if n, wait := th.Allow(now, 1<<20); n != 1<<20 || wait != 0 {
		t.Fatalf("unthrottled: %d %v", n, wait)
	}
	th.SetRate(1000)
	th.mu.Lock()
	th.last = now
	th.mu.Unlock()
	if n, _ := th.Allow(now, 1<<20); n != 1000 {
		t.Fatalf("full bucket allowed %d, want 1000", n)
	}
	th.Take(now, 3000) // a batch larger than the bucket: 2000 bytes of debt
	if n, wait := th.Allow(now, 1<<20); n != 0 || wait < 2*time.Second || wait > 2100*time.Millisecond {
		t.Fatalf("in debt: allowed %d, wait %v; want 0 and ~2 s", n, wait)
	}
	if n, _ := th.Allow(now.Add(2500*time.Millisecond), 1<<20); n != 500 {
		t.Fatalf("after repaying: allowed %d, want 500", n)
	}
	th.SetRate(0)
	if n, _ := th.Allow(now, 7); n != 7 {
		t.Fatalf("throttle removed: allowed %d", n)
	}
}
