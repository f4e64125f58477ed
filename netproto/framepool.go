package netproto

import (
	"math/bits"
	"sync"
)

// Request frames from framePoolMin bytes up come from size-classed pools
// (powers of two), so a steady stream of large produce requests reuses
// buffers instead of allocating, and zeroing, megabytes per request. A
// buffer returns to its pool only through Request.Recycle, which the handler
// calls once nothing aliases the frame any more. A frame above
// framePoolEager is not trusted with its whole buffer until its first
// framePoolEager bytes have arrived (conn.readFrame), so a lying size prefix
// makes the broker allocate at most that much up front.
const (
	framePoolMinShift   = 16 // 64 KiB
	framePoolEagerShift = 21 // 2 MiB
	framePoolMaxShift   = 28 // 256 MiB, above any socket.request.max.bytes Barge accepts
	framePoolMin        = 1 << framePoolMinShift
	framePoolEager      = 1 << framePoolEagerShift
	framePoolMax        = 1 << framePoolMaxShift
)

var framePools [framePoolMaxShift - framePoolMinShift + 1]sync.Pool

// frameAllocBytes is what a frame of n bytes occupies: its pool class, or n
// itself below the pools. The request budget is charged this much.
func frameAllocBytes(n int) int {
	if n < framePoolMin || n > framePoolMax {
		return n
	}
	return 1 << (frameClass(n) + framePoolMinShift)
}

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
		r.frames.put(r.pooled)
		r.pooled = nil
	}
}
