package netproto

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFrameClasses(t *testing.T) {
	for _, tc := range []struct{ n, class, capacity int }{
		{framePoolMin, 0, 64 << 10},
		{framePoolMin + 1, 1, 128 << 10},
		{1 << 20, 4, 1 << 20},
		{1<<20 + 12, 5, 2 << 20},
		{framePoolEager, 5, 2 << 20},
		{5 << 20, 7, 8 << 20},
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

func TestFrameAllocBytes(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{100, 100},                    // below the pools: exactly
		{framePoolMin + 1, 128 << 10}, // a pool class
		{3 << 20, 4 << 20},            // a large frame's class
		{framePoolMax + 1, framePoolMax + 1},
	} {
		if got := frameAllocBytes(tc.n); got != tc.want {
			t.Errorf("frameAllocBytes(%d) = %d, want %d", tc.n, got, tc.want)
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

// A frame above the eager size arrives whole and exact through the server
// (its head in an eager buffer, the rest straight into a buffer of its
// size), and comes from the pools so the handler can recycle it. The next
// frame of its size class is read straight into the recycled buffer, with
// no head copied.
func TestLargeFrameReadWhole(t *testing.T) {
	records := make([]byte, 5<<20+123)
	for i := range records {
		records[i] = byte(i * 7)
	}
	got := make(chan error, 1)
	srv, addr := startServer(t, ServerConfig{MaxRequestBytes: 16 << 20, Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		if req.Key != 0 {
			answerDefault(ctx, req, respond)
			return
		}
		p := req.Body.(*kmsg.ProduceRequest)
		var err error
		switch {
		case len(p.Topics) != 1 || len(p.Topics[0].Partitions) != 1:
			err = fmt.Errorf("decoded %d topics", len(p.Topics))
		case !bytes.Equal(p.Topics[0].Partitions[0].Records, records):
			err = fmt.Errorf("records of %d bytes differ from the %d sent", len(p.Topics[0].Partitions[0].Records), len(records))
		case req.pooled == nil || cap(req.pooled) != 8<<20:
			err = fmt.Errorf("frame not from the pools (cap %d)", cap(req.pooled))
		}
		// Recycled before the test hears of it, so the next request finds
		// the buffer in the cache.
		req.Recycle()
		got <- err
		answerDefault(ctx, req, respond)
	})})
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks, prod.TimeoutMillis = 7, 1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = records
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	c := dial(t, "tcp", addr)
	for i, wantCopied := range []uint64{framePoolEager, framePoolEager} {
		send(t, c, appendRequest(nil, int32(i+1), nil, prod, nil))
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the 5 MiB request %d never reached the handler", i+1)
		}
		if copied := srv.Stats().RequestCopiedBytes; copied != wantCopied {
			t.Fatalf("after request %d: %d request bytes copied, want %d (only the first frame's head)", i+1, copied, wantCopied)
		}
	}
}
