package netproto

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// byteBudget is the server-wide QueuedMaxRequestBytes budget: a connection
// takes a request's size from it before reading the request's body and
// gives it back once the response is written (or the connection closes).
// Waiters are served in arrival order, so a large request is not starved by
// a stream of small ones.
type byteBudget struct {
	size  int64
	sem   *semaphore.Weighted
	inUse atomic.Int64
}

func newByteBudget(size int64) *byteBudget {
	return &byteBudget{size: size, sem: semaphore.NewWeighted(size)}
}

// acquire takes room for a request of n bytes — all of the budget if n is
// larger — waiting while it is not free (calling onWait first). It returns
// what it took; an error only when ctx ended first.
func (b *byteBudget) acquire(ctx context.Context, n int64, onWait func()) (int64, error) {
	n = min(n, b.size)
	if !b.sem.TryAcquire(n) {
		onWait()
		if err := b.sem.Acquire(ctx, n); err != nil {
			return 0, err
		}
	}
	b.inUse.Add(n)
	return n, nil
}

// release gives back n bytes taken by acquire.
func (b *byteBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.inUse.Add(-n)
	b.sem.Release(n)
}

// held is the room taken now; 0 for a server without a budget.
func (b *byteBudget) held() int64 {
	if b == nil {
		return 0
	}
	return b.inUse.Load()
}
