package netproto

import "testing"

func TestFrameClasses(t *testing.T) {
	for _, tc := range []struct{ n, class, capacity int }{
		{framePoolMin, 0, 64 << 10},
		{framePoolMin + 1, 1, 128 << 10},
		{1 << 20, 4, 1 << 20},
		{1<<20 + 12, 5, 2 << 20},
		{framePoolMax, 5, 2 << 20},
	} {
		if got := frameClass(tc.n); got != tc.class {
			t.Fatalf("frameClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
		b := getPooledFrame(tc.n)
		if len(b) != tc.n || cap(b) != tc.capacity {
			t.Fatalf("getPooledFrame(%d): len %d cap %d, want cap %d", tc.n, len(b), cap(b), tc.capacity)
		}
	}
}

func TestRecycleReusesFrames(t *testing.T) {
	// sync.Pool may drop items at any GC; retry a few times so the test
	// checks reuse without depending on GC timing.
	for attempt := 0; attempt < 10; attempt++ {
		b := getPooledFrame(300 << 10)
		b[0] = 42
		r := &Request{pooled: b}
		r.Recycle()
		r.Recycle() // a second call is a no-op
		if r.pooled != nil {
			t.Fatal("Recycle left the frame on the request")
		}
		if again := getPooledFrame(260 << 10); &again[:1][0] == &b[:1][0] {
			return
		}
	}
	t.Fatal("a recycled frame was never handed out again")
}
