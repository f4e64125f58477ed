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
// size), and comes from the pools so the handler can recycle it.
func TestLargeFrameReadWhole(t *testing.T) {
	records := make([]byte, 5<<20+123)
	for i := range records {
		records[i] = byte(i * 7)
	}
	got := make(chan error, 1)
	_, addr := startServer(t, ServerConfig{MaxRequestBytes: 16 << 20, Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		if req.Key != 0 {
			answerDefault(ctx, req, respond)
			return
		}
		p := req.Body.(*kmsg.ProduceRequest)
		switch {
		case len(p.Topics) != 1 || len(p.Topics[0].Partitions) != 1:
			got <- fmt.Errorf("decoded %d topics", len(p.Topics))
		case !bytes.Equal(p.Topics[0].Partitions[0].Records, records):
			got <- fmt.Errorf("records of %d bytes differ from the %d sent", len(p.Topics[0].Partitions[0].Records), len(records))
		case req.pooled == nil || cap(req.pooled) != 8<<20:
			got <- fmt.Errorf("frame not from the pools (cap %d)", cap(req.pooled))
		default:
			got <- nil
		}
		req.Recycle()
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
	send(t, c, appendRequest(nil, 1, nil, prod, nil))
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the 5 MiB request never reached the handler")
	}
}
