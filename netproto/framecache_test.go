package netproto

import (
	"runtime"
	"testing"
	"time"
)

func TestFrameCacheKeepsLargeFramesAcrossGC(t *testing.T) {
	fc := newFrameCache(newByteBudget(64 << 20))
	defer fc.stop()
	b := fc.get(5 << 20)
	if len(b) != 5<<20 || cap(b) != 8<<20 {
		t.Fatalf("get(5 MiB): len %d cap %d", len(b), cap(b))
	}
	fc.put(b)
	runtime.GC()
	runtime.GC() // a sync.Pool would be empty now
	again := fc.get(6 << 20)
	if &again[:1][0] != &b[:1][0] {
		t.Fatal("a recycled 8 MiB frame was not reused after two collections")
	}
	if fc.cachedBytes() != 0 {
		t.Fatalf("cache holds %d bytes after handing its only frame out", fc.cachedBytes())
	}
}

func TestFrameCacheStaysWithinTheBudget(t *testing.T) {
	budget := newByteBudget(20 << 20)
	fc := newFrameCache(budget)
	defer fc.stop()
	// A frame is recycled while its request still holds the budget.
	putHeld := func(fc *frameCache, b []byte) {
		if _, err := budget.acquire(t.Context(), int64(cap(b)), func() {}); err != nil {
			t.Fatal(err)
		}
		fc.put(b)
		budget.release(int64(cap(b)))
	}
	a, b, c := fc.get(5<<20), fc.get(5<<20), fc.get(5<<20) // 8 MiB each
	putHeld(fc, a)
	putHeld(fc, b)
	if got := fc.cachedBytes(); got != 16<<20 {
		t.Fatalf("cached %d bytes, want 16 MiB", got)
	}
	putHeld(fc, c) // 24 MiB > 20 MiB budget: dropped
	if got := fc.cachedBytes(); got != 16<<20 {
		t.Fatalf("cached %d bytes after a put past the budget, want 16 MiB", got)
	}
	// Other requests in flight shrink the room: with 12 MiB held, 8 MiB
	// are left.
	fc2 := newFrameCache(budget)
	defer fc2.stop()
	if _, err := budget.acquire(t.Context(), 12<<20, func() {}); err != nil {
		t.Fatal(err)
	}
	defer budget.release(12 << 20)
	putHeld(fc2, fc2.get(3<<20)) // 4 MiB frame: 4 <= 20 - 12
	if got := fc2.cachedBytes(); got != 4<<20 {
		t.Fatalf("cached %d bytes with 12 of 20 MiB in flight, want 4 MiB", got)
	}
	putHeld(fc2, fc2.get(7<<20)) // 8 MiB: 4 + 8 > 20 - 12
	if got := fc2.cachedBytes(); got != 4<<20 {
		t.Fatalf("cached %d bytes, want still 4 MiB", got)
	}
}

func TestFrameCacheTrimsIdleFrames(t *testing.T) {
	fc := newFrameCache(nil)
	defer fc.stop()
	old, fresh := fc.get(3<<20), fc.get(5<<20)
	fc.put(old)
	fc.put(fresh)
	fc.mu.Lock()
	i, _ := cachedClass(frameClass(cap(old)))
	fc.free[i][0].at = time.Now().Add(-2 * frameCacheIdle)
	fc.mu.Unlock()
	fc.trim()
	if got := fc.cachedBytes(); got != cap(fresh) {
		t.Fatalf("after trim the cache holds %d bytes, want only the fresh frame's %d", got, cap(fresh))
	}
	fc.mu.Lock()
	armed := fc.timer != nil
	fc.mu.Unlock()
	if !armed {
		t.Fatal("no trim pending while a frame is cached")
	}
	fc.stop()
	fc.put(fc.get(3 << 20))
	if got := fc.cachedBytes(); got != 0 {
		t.Fatalf("a stopped cache kept %d bytes", got)
	}
}

func TestFrameCacheLeavesSmallFramesToThePools(t *testing.T) {
	fc := newFrameCache(nil)
	defer fc.stop()
	fc.put(fc.get(1 << 20))
	fc.put(fc.get(framePoolEager))
	if got := fc.cachedBytes(); got != 0 {
		t.Fatalf("frames up to framePoolEager went to the cache (%d bytes)", got)
	}
}
