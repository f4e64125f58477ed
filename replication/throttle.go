package replication

import (
	"slices"
	"sync"
	"time"
)

// Throttle is a byte-rate limit shared by every partition it covers: the
// replication throttle of a broker (Kafka's leader.replication.throttled.rate
// and follower.replication.throttled.rate), applied to the catch-up traffic
// of replicas being added by a move, so a move does not take the bandwidth
// and disk producers need. It is a token bucket holding up to one second of
// the rate; a read may overdraw it (a batch is never split), and the debt
// is paid before the next throttled read. Rate 0 means unthrottled. Safe
// for concurrent use.
type Throttle struct {
	mu     sync.Mutex
	rate   int64     // guarded by mu: bytes/s, 0 unthrottled
	tokens float64   // guarded by mu: bytes that may be read now; negative is debt
	last   time.Time // guarded by mu: when tokens were last refilled
}

// SetRate changes the rate (0: unthrottled). The bucket starts full.
func (t *Throttle) SetRate(bytesPerSec int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rate == bytesPerSec {
		return
	}
	t.rate, t.tokens, t.last = max(bytesPerSec, 0), float64(bytesPerSec), time.Now()
}

// Rate returns the rate in bytes/s, 0 when unthrottled.
func (t *Throttle) Rate() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rate
}

func (t *Throttle) refillLocked(now time.Time) {
	if d := now.Sub(t.last); d > 0 {
		t.tokens = min(t.tokens+d.Seconds()*float64(t.rate), float64(t.rate))
		t.last = now
	}
}

// Allow reports how many bytes a throttled read may take now (at least
// one), or, when the bucket is empty, 0 and how long until it is not.
// Unthrottled, it allows max.
func (t *Throttle) Allow(now time.Time, maxBytes int64) (int64, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rate == 0 {
		return maxBytes, 0
	}
	t.refillLocked(now)
	if t.tokens < 1 {
		wait := time.Duration((1 - t.tokens) / float64(t.rate) * float64(time.Second))
		return 0, max(wait, time.Millisecond)
	}
	return min(maxBytes, int64(t.tokens)), 0
}

// Take records n bytes read under the throttle.
func (t *Throttle) Take(now time.Time, n int) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rate == 0 {
		return
	}
	t.refillLocked(now)
	t.tokens -= float64(n)
}

// SetThrottles sets this broker's replication throttle rates in bytes/s
// (0: unthrottled): leader for what it sends to replicas being added,
// follower for what its own added replicas fetch.
func (m *Manager) SetThrottles(leader, follower int64) {
	m.leaderThrottle.SetRate(leader)
	m.followerThrottle.SetRate(follower)
}

// LeaderThrottle is the throttle on what this broker, as a leader, sends to
// replicas being added (see Replica.ThrottledFollower).
func (m *Manager) LeaderThrottle() *Throttle { return &m.leaderThrottle }

// ThrottledFollower reports whether follower is a replica being added to
// this partition by a move, whose fetches the leader throttles.
func (r *Replica) ThrottledFollower(follower int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.adding, follower)
}

// throttledHere reports whether this replica is being added by a move, so
// its own fetches are throttled.
func (r *Replica) throttledHere() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.adding, r.self)
}
