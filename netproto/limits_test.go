package netproto

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A client that sends a fetch for more than the socket buffers hold and
// never reads is disconnected after SendTimeout, counted, and its fetch
// released; a client that reads slowly but steadily is not.
func TestSendTimeoutClosesAClientThatStopsReading(t *testing.T) {
	fx := newFetchFixture(t, 16<<20) // far more than the kernel buffers
	cfg := fetchConfig(fx)
	// Long enough that a loaded CI machine (the race detector, other
	// packages' tests) never starves the steady reader below of that long.
	cfg.SendTimeout = 1500 * time.Millisecond
	srv, addr := startServer(t, cfg)

	stalled := dial(t, "tcp", addr)
	if err := stalled.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	send(t, stalled, appendRequest(nil, 1, nil, fetchRequest(12), nil))
	start := time.Now()
	waitFor(t, "send timeout", func() bool { return srv.Stats().ConnectionsSendTimeout == 1 })
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("closed after %v with a %v send timeout", d, cfg.SendTimeout)
	}
	waitFor(t, "fetch released", func() bool { return fx.released.Load() == 1 })
	waitFor(t, "connection gone", func() bool { return srv.Stats().ConnectionsOpen == 0 })

	// Slow but steady: reads at most 64 KiB every 10 ms until it has 4 MiB
	// (a few seconds, more than the timeout), never stalled for that long.
	slow := dial(t, "tcp", addr)
	slow.SetDeadline(time.Now().Add(60 * time.Second))
	if err := slow.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	send(t, slow, appendRequest(nil, 2, nil, fetchRequest(12), nil))
	buf := make([]byte, 64<<10)
	var got int
	for got < 4<<20 {
		n, err := slow.Read(buf)
		got += n
		if err != nil {
			t.Fatalf("slow reader cut off after %d of at least %d bytes: %v (send timeouts %d)", got, fx.total, err, srv.Stats().ConnectionsSendTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Stats().ConnectionsSendTimeout; n != 1 {
		t.Fatalf("send timeouts %d after the slow reader, want 1", n)
	}
}

// Requests held unanswered count against QueuedMaxRequestBytes: with a
// budget of 1 MiB and handlers that do not answer, a connection stops
// reading once its unanswered requests fill it (the rest of the frame stays
// in the kernel), and goes on when answers free room. Memory held by
// requests never exceeds the budget.
func TestQueuedMaxRequestBytesHoldsReadersBack(t *testing.T) {
	var dispatched atomic.Int64
	release := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{
		QueuedMaxRequestBytes: 1 << 20,
		Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
			dispatched.Add(1)
			go func() {
				select {
				case <-release:
				case <-ctx.Done():
				}
				respond(Response{Msg: req.Body.ResponseKind()})
			}()
		}),
	})
	// Three connections each send a 600 KiB metadata request (padded with
	// a long client id): only one fits at a time.
	var conns []net.Conn
	for i := range 3 {
		c := dial(t, "tcp", addr)
		conns = append(conns, c)
		go c.Write(paddedRequest(int32(i), 600<<10))
	}
	waitFor(t, "one request in", func() bool { return dispatched.Load() == 1 })
	waitFor(t, "the others waiting for room", func() bool { return srv.Stats().RequestBytesStalls >= 2 })
	if held := srv.Stats().QueuedRequestBytes; held > 1<<20 {
		t.Fatalf("held %d request bytes with a 1 MiB budget", held)
	}
	if n := dispatched.Load(); n != 1 {
		t.Fatalf("%d requests dispatched with room for one", n)
	}
	close(release)
	waitFor(t, "all three served", func() bool { return dispatched.Load() == 3 })
	for _, c := range conns {
		if _, err := tryReadFrame(c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "budget returned", func() bool { return srv.Stats().QueuedRequestBytes == 0 })
}

// paddedRequest is a Metadata v4 request of about size bytes: its client id
// carries the padding (client ids are int16-length strings, so the padding
// goes into several topic names instead).
func paddedRequest(corr int32, size int) []byte {
	req := metadataRequest(4)
	name := make([]byte, 30000)
	for i := range name {
		name[i] = 'a'
	}
	for n := 0; n < size; n += len(name) {
		topic := string(name)
		req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{Topic: &topic})
	}
	return appendRequest(nil, corr, nil, req, nil)
}

// MaxConnectionsPerIP closes the connection over the limit at once;
// MaxConnections makes the next one wait in the backlog until one closes.
func TestConnectionLimits(t *testing.T) {
	t.Run("per ip", func(t *testing.T) {
		srv, addr := startServer(t, ServerConfig{MaxConnectionsPerIP: 2})
		a, b := dial(t, "tcp", addr), dial(t, "tcp", addr)
		for i, c := range []net.Conn{a, b} {
			send(t, c, appendRequest(nil, int32(i), nil, metadataRequest(4), nil))
			readResponse(t, c, int32(i), 4, kmsg.NewPtrMetadataResponse())
		}
		third := dial(t, "tcp", addr)
		expectClosed(t, third)
		if n := srv.Stats().ConnectionsOverIPLimit; n != 1 {
			t.Fatalf("over-ip-limit count %d", n)
		}
		a.Close()
		waitFor(t, "first closed", func() bool { return srv.Stats().ConnectionsOpen == 1 })
		again := dial(t, "tcp", addr)
		send(t, again, appendRequest(nil, 9, nil, metadataRequest(4), nil))
		readResponse(t, again, 9, 4, kmsg.NewPtrMetadataResponse())
	})
	t.Run("total", func(t *testing.T) {
		srv, addr := startServer(t, ServerConfig{MaxConnections: 1})
		first := dial(t, "tcp", addr)
		send(t, first, appendRequest(nil, 1, nil, metadataRequest(4), nil))
		readResponse(t, first, 1, 4, kmsg.NewPtrMetadataResponse())
		second := dial(t, "tcp", addr) // completes in the kernel's backlog
		send(t, second, appendRequest(nil, 2, nil, metadataRequest(4), nil))
		waitFor(t, "accept to pause", func() bool { return srv.Stats().AcceptStalls >= 1 })
		second.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var hdr [4]byte
		if _, err := second.Read(hdr[:]); err == nil {
			t.Fatalf("second connection answered (%d bytes) while the first is open", binary.BigEndian.Uint32(hdr[:]))
		}
		second.SetReadDeadline(time.Now().Add(waitTimeout))
		first.Close()
		readResponse(t, second, 2, 4, kmsg.NewPtrMetadataResponse())
	})
}
