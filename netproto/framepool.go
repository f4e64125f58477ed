package netproto

import (
	"math/bits"
	"sync"
)

// Request frames between framePoolMin and framePoolMax bytes come from size-
// classed pools (powers of two), so a steady stream of large produce requests
// reuses buffers instead of allocating, and zeroing, a megabyte per request.
// A buffer returns to its pool only through Request.Recycle, which the
// handler calls once nothing aliases the frame any more. The upper bound also
// caps what a lying size prefix can make the broker allocate up front.
const (
	framePoolMinShift = 16 // 64 KiB
	framePoolMaxShift = 21 // 2 MiB
	framePoolMin      = 1 << framePoolMinShift
	framePoolMax      = 1 << framePoolMaxShift
)

var framePools [framePoolMaxShift - framePoolMinShift + 1]sync.Pool

// frameClass is the pool index for a frame of n bytes (framePoolMin <= n <= framePoolMax).
func frameClass(n int) int {
	shift := bits.Len(uint(n - 1)) // smallest power of two >= n
	return max(shift, framePoolMinShift) - framePoolMinShift
}

// getPooledFrame returns a buffer of length n from the pools.
func getPooledFrame(n int) []byte {
	c := frameClass(n)
	if p, ok := framePools[c].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(c+framePoolMinShift))
}

// putPooledFrame returns a buffer obtained from getPooledFrame.
func putPooledFrame(b []byte) {
	c := cap(b)
	if c < framePoolMin || c > framePoolMax || c&(c-1) != 0 {
		return // not one of ours
	}
	b = b[:0]
	framePools[frameClass(c)].Put(&b)
}

// Recycle hands the request's frame back to netproto for a later request.
// Call it at most once, from the handler, and only when nothing decoded from
// the request that aliases the frame (record bytes and other []byte fields
// of Body) is used any more; the Request must not be used after it. A
// handler that never calls it leaves the frame to the garbage collector.
func (r *Request) Recycle() {
	if r.pooled != nil {
		putPooledFrame(r.pooled)
		r.pooled = nil
	}
}
