package cluster

import (
	"context"
	"sync"
)

// Subscription delivers metadata changes in log order to one consumer (the
// replication layer, a test). It buffers a bounded number of changes. The
// FSM never blocks on a subscriber: when the buffer is full the subscriber
// is marked lagged and further changes are dropped for it; once it has
// drained the buffer, Next returns a single Change with Resync set carrying
// the latest image, and normal delivery resumes after that image's index.
// A slow subscriber therefore loses intermediate steps, never the final
// state.
type Subscription struct {
	f  *fsm
	ch chan *Change

	mu     sync.Mutex
	lagged bool          // guarded by mu: changes were dropped since the last resync
	after  uint64        // guarded by mu: changes at or below this index are already covered
	closed chan struct{} // closed by Close
	once   sync.Once
}

func newSubscription(f *fsm, buffer int) *Subscription {
	return &Subscription{f: f, ch: make(chan *Change, max(buffer, 1)), closed: make(chan struct{})}
}

// publish is called by the FSM, under fsm.mu, for each change. It never
// blocks.
func (s *Subscription) publish(c *Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lagged || (c.Index <= s.after && !c.Resync) {
		return
	}
	select {
	case s.ch <- c:
	default:
		s.lagged = true
	}
}

// Next returns the next change, blocking until there is one, ctx ends
// (ctx.Err()) or the subscription is closed (ErrClosed). Call it from one
// goroutine at a time.
func (s *Subscription) Next(ctx context.Context) (*Change, error) {
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}
	s.mu.Lock()
	select {
	case c := <-s.ch:
		s.mu.Unlock()
		return c, nil
	default:
	}
	if s.lagged {
		img := s.f.image.Load()
		s.lagged, s.after = false, img.index
		s.mu.Unlock()
		return &Change{Index: img.index, Resync: true, Image: img}, nil
	}
	s.mu.Unlock()
	select {
	case c := <-s.ch:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, ErrClosed
	}
}

// Close ends the subscription: Next returns ErrClosed from then on, even if
// changes were still buffered. Idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.f.unsubscribe(s)
		close(s.closed)
	})
}
