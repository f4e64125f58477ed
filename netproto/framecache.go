package netproto

import (
	"sync"
	"time"
)

// Frames larger than framePoolEager are kept for reuse in a frameCache of
// the Server rather than in a sync.Pool. A sync.Pool is emptied by every
// second garbage collection, and a stream of produce requests of tens of
// MiB (a producer writing to a thousand partitions sends such) triggers a
// collection every few requests: each request then got a fresh buffer,
// which the kernel faults in page by page (zeroed) as the socket read
// fills it, and which costs more than the copy itself on a VM whose host
// backs guest pages lazily. The cache keeps such frames across collections,
// bounded so that frames cached plus request bytes in flight stay within
// the request budget (queued.max.request.bytes), and drops frames unused for
// frameCacheIdle so RSS falls back after a burst.
const (
	frameCacheIdle = 5 * time.Second
	// frameCacheDefaultBytes bounds the cache of a Server without a
	// request budget.
	frameCacheDefaultBytes = 64 << 20
	// cachedClasses: the pool classes above framePoolEager's.
	cachedClasses = framePoolMaxShift - framePoolEagerShift
)

type cachedFrame struct {
	buf []byte
	at  time.Time // when it was put back
}

type frameCache struct {
	budget *byteBudget // nil: no budget, frameCacheDefaultBytes bound the cache

	mu      sync.Mutex
	free    [cachedClasses][]cachedFrame // guarded by mu; by class above framePoolEager, most recently put last
	bytes   int                          // guarded by mu; capacity of the frames in free
	timer   *time.Timer                  // guarded by mu; the pending trim, nil when free is empty
	stopped bool                         // guarded by mu; the Server shut down: nothing more is cached
}

func newFrameCache(budget *byteBudget) *frameCache { return &frameCache{budget: budget} }

// cachedClass is the index in free of a frame class, false for classes the
// sync.Pools serve.
func cachedClass(class int) (int, bool) {
	i := class - (framePoolEagerShift - framePoolMinShift) - 1
	return i, i >= 0 && i < cachedClasses
}

// get returns a buffer of length n: a cached one of n's class, else one
// from the pools (getPooledFrame).
func (fc *frameCache) get(n int) []byte {
	if b, ok := fc.cached(n); ok {
		return b
	}
	return getPooledFrame(n)
}

// cached returns a buffer of length n of n's class if the cache holds one,
// and false otherwise. Its memory is already resident, so a frame of a
// size not yet trusted (conn.readFrame) may be read straight into it: a
// lying peer then holds memory the broker kept anyway, and the request
// budget counts it.
func (fc *frameCache) cached(n int) ([]byte, bool) {
	if fc == nil || n <= framePoolEager || n > framePoolMax {
		return nil, false
	}
	i, ok := cachedClass(frameClass(n))
	if !ok {
		return nil, false
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	k := len(fc.free[i])
	if k == 0 {
		return nil, false
	}
	b := fc.free[i][k-1].buf
	fc.free[i][k-1] = cachedFrame{}
	fc.free[i] = fc.free[i][:k-1]
	fc.bytes -= cap(b)
	return b[:n], true
}

// put takes back a buffer obtained from get. A frame the cache has no room
// for is left to the garbage collector; room is what the request budget
// leaves once the bytes of requests in flight (this frame's own request
// still among them) are counted.
func (fc *frameCache) put(b []byte) {
	c := cap(b)
	if fc == nil || c <= framePoolEager || c > framePoolMax || c&(c-1) != 0 {
		putPooledFrame(b)
		return
	}
	i, ok := cachedClass(frameClass(c))
	if !ok {
		return
	}
	room := int64(frameCacheDefaultBytes)
	if fc.budget != nil {
		room = fc.budget.size - fc.budget.held() + int64(c)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.stopped || int64(fc.bytes+c) > room {
		return
	}
	fc.free[i] = append(fc.free[i], cachedFrame{buf: b[:0], at: time.Now()})
	fc.bytes += c
	if fc.timer == nil {
		fc.timer = time.AfterFunc(frameCacheIdle, fc.trim)
	}
}

// trim drops the frames unused for frameCacheIdle and runs again while any
// remain.
func (fc *frameCache) trim() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	cutoff := time.Now().Add(-frameCacheIdle)
	for i, frames := range fc.free {
		keep := frames[:0]
		for _, f := range frames {
			if f.at.After(cutoff) {
				keep = append(keep, f)
			} else {
				fc.bytes -= cap(f.buf)
			}
		}
		clear(frames[len(keep):])
		fc.free[i] = keep
	}
	if fc.bytes > 0 {
		fc.timer.Reset(frameCacheIdle)
		return
	}
	fc.timer = nil
}

// stop drops every cached frame and the pending trim (Server shutdown).
func (fc *frameCache) stop() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.stopped = true
	if fc.timer != nil {
		fc.timer.Stop()
		fc.timer = nil
	}
	for i := range fc.free {
		fc.free[i] = nil
	}
	fc.bytes = 0
}

// cachedBytes is the capacity of the frames cached now.
func (fc *frameCache) cachedBytes() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.bytes
}
