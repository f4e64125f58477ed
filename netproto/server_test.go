package netproto

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDecodeFlexibleAndNonFlexible(t *testing.T) {
	var rec recorder
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		rec.add(req)
		answerDefault(ctx, req, respond)
	})})
	c := dial(t, "tcp", addr)

	// Metadata v12 is flexible: header v2 with a non-empty tag section
	// (tag 7, 2 bytes) that must be skipped.
	flex := metadataRequest(12, "orders", "payments")
	send(t, c, appendRequest(nil, 41, kmsg.StringPtr("flex-client"), flex, []byte{1, 7, 2, 0xAB, 0xCD}))
	readResponse(t, c, 41, 12, kmsg.NewPtrMetadataResponse())

	// Produce v7 is not: header v1, null client id.
	prod := kmsg.NewPtrProduceRequest()
	prod.Version, prod.Acks, prod.TimeoutMillis = 7, -1, 1500
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = 3, []byte("batch-bytes")
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	send(t, c, appendRequest(nil, 42, nil, prod, nil))
	readResponse(t, c, 42, 7, kmsg.NewPtrProduceResponse())

	if rec.len() != 2 {
		t.Fatalf("handler saw %d requests, want 2", rec.len())
	}
	m := rec.reqs[0]
	if m.Key != 3 || m.Version != 12 || m.CorrelationID != 41 || m.ClientID == nil || *m.ClientID != "flex-client" {
		t.Fatalf("metadata header = key %d v%d corr %d client %v", m.Key, m.Version, m.CorrelationID, m.ClientID)
	}
	mb := m.Body.(*kmsg.MetadataRequest)
	if len(mb.Topics) != 2 || *mb.Topics[0].Topic != "orders" || *mb.Topics[1].Topic != "payments" {
		t.Fatalf("metadata topics = %+v", mb.Topics)
	}
	if m.Size == 0 || m.Received.IsZero() || m.Conn.ID == 0 || m.Conn.RemoteAddr == nil {
		t.Fatalf("request metadata not filled: %+v", m)
	}
	p := rec.reqs[1]
	if p.Key != 0 || p.Version != 7 || p.CorrelationID != 42 || p.ClientID != nil {
		t.Fatalf("produce header = key %d v%d corr %d client %v", p.Key, p.Version, p.CorrelationID, p.ClientID)
	}
	pb := p.Body.(*kmsg.ProduceRequest)
	if pb.Acks != -1 || pb.TimeoutMillis != 1500 || string(pb.Topics[0].Partitions[0].Records) != "batch-bytes" {
		t.Fatalf("produce body = %+v", pb)
	}
	if p.Conn.ID != m.Conn.ID {
		t.Fatalf("one connection, two ids %d and %d", m.Conn.ID, p.Conn.ID)
	}
}

func TestPipelinedResponsesInRequestOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(testutil.Seed(t)), 0))
	const n = 50

	var mu sync.Mutex
	var parked []func()
	all := make(chan struct{})
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		mu.Lock()
		defer mu.Unlock()
		parked = append(parked, func() { respond(Response{Msg: req.Body.ResponseKind()}) })
		if len(parked) == n {
			close(all)
		}
	})})
	c := dial(t, "tcp", addr)
	var frames [][]byte
	for i := range n {
		frames = append(frames, appendRequest(nil, int32(1000+i), nil, metadataRequest(int16(i%13)), nil))
	}
	send(t, c, frames...)
	<-all
	rng.Shuffle(len(parked), func(i, j int) { parked[i], parked[j] = parked[j], parked[i] })
	var wg sync.WaitGroup
	for _, answer := range parked {
		wg.Go(answer)
	}
	for i := range n {
		readResponse(t, c, int32(1000+i), int16(i%13), kmsg.NewPtrMetadataResponse())
	}
	wg.Wait()
}

func TestNoneResponsesKeepOrder(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		if req.CorrelationID%3 == 0 {
			respond(Response{None: true}) // acks=0
			return
		}
		go respond(Response{Msg: req.Body.ResponseKind()})
	})})
	c := dial(t, "tcp", addr)
	var frames [][]byte
	for i := range 30 {
		frames = append(frames, appendRequest(nil, int32(i), nil, metadataRequest(1), nil))
	}
	send(t, c, frames...)
	for i := range 30 {
		if i%3 != 0 {
			readResponse(t, c, int32(i), 1, kmsg.NewPtrMetadataResponse())
		}
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		if req.Version > 3 {
			t.Errorf("handler called for ApiVersions v%d", req.Version)
		}
		answerDefault(ctx, req, respond)
	})})
	c := dial(t, "tcp", addr)
	// A body kmsg could not decode at v99: netproto must not try.
	send(t, c, rawFrame(18, 99, 7, []byte{0xff, 0xff, 0xff}))
	f := readFrame(t, c)
	if corr := int32(binary.BigEndian.Uint32(f)); corr != 7 {
		t.Fatalf("correlation id %d, want 7", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(f[4:]); err != nil { // header v0: no tag byte
		t.Fatal(err)
	}
	if resp.ErrorCode != 35 {
		t.Fatalf("error code %d, want 35", resp.ErrorCode)
	}
	want := map[int16]VersionRange{18: {Min: 0, Max: 3}, 1: {Min: 4, Max: 15}, 0: {Min: 0, Max: (&kmsg.ProduceRequest{}).MaxVersion()}}
	got := map[int16]VersionRange{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = VersionRange{Min: k.MinVersion, Max: k.MaxVersion}
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %d advertised %v, want %v", k, got[k], v)
		}
	}
	if len(got) < 40 {
		t.Fatalf("only %d keys advertised", len(got))
	}
	// The connection stays usable: retry at v0 as kgo does.
	req := kmsg.NewPtrApiVersionsRequest()
	send(t, c, appendRequest(nil, 8, nil, req, nil))
	readResponse(t, c, 8, 0, kmsg.NewPtrApiVersionsResponse())
}

func TestApiVersionsFlexibleUsesHeaderV0(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		resp := req.Body.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 3}}
		respond(Response{Msg: resp})
	})})
	c := dial(t, "tcp", addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = 3, "barge-test", "1.0"
	send(t, c, appendRequest(nil, 5, kmsg.StringPtr("c"), req, nil))
	resp := kmsg.NewPtrApiVersionsResponse()
	readResponse(t, c, 5, 3, resp) // strips no tag byte for key 18
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].MaxVersion != 3 {
		t.Fatalf("api keys %+v", resp.ApiKeys)
	}
}

// TestRefusedRequestsClose: requests Kafka refuses by closing the
// connection, each on a fresh connection of one server that keeps serving.
func TestRefusedRequestsClose(t *testing.T) {
	truncated := appendRequest(nil, 1, nil, metadataRequest(1, "a", "b", "c"), nil)
	truncated = truncated[:len(truncated)-3]
	binary.BigEndian.PutUint32(truncated, uint32(len(truncated)-4))
	negative := rawFrame(3, 4, 1, []byte{0, 0, 0, 1, 0xff, 0xfb, 1}) // topic name length -5

	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"unknown key", rawFrame(1000, 0, 1, nil)},
		{"version not advertised", rawFrame(3, 99, 1, nil)},
		{"fetch below advertised min", appendRequest(nil, 1, nil, &kmsg.FetchRequest{Version: 3}, nil)},
		{"oversized frame", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"frame smaller than a header", append(binary.BigEndian.AppendUint32(nil, 4), 0, 3, 0, 1)},
		{"truncated body", truncated},
		{"negative string length", negative},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := startServer(t, ServerConfig{MaxRequestBytes: 1 << 20})
			c := dial(t, "tcp", addr)
			send(t, c, tc.frame)
			expectClosed(t, c)
			waitFor(t, "refusal counted", func() bool { return srv.Stats().ConnectionsRefused == 1 })
			c2 := dial(t, "tcp", addr)
			send(t, c2, appendRequest(nil, 2, nil, metadataRequest(4), nil))
			readResponse(t, c2, 2, 4, kmsg.NewPtrMetadataResponse())
		})
	}
}

func TestGarbageDoesNotCrash(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(testutil.Seed(t)), 1))
	srv, addr := startServer(t, ServerConfig{MaxRequestBytes: 1 << 16})
	valid := appendRequest(nil, 1, kmsg.StringPtr("x"), metadataRequest(9, "t"), nil)
	for i := range 40 {
		var junk []byte
		switch i % 3 {
		case 0: // pure noise
			junk = make([]byte, 1+rng.IntN(300))
			for j := range junk {
				junk[j] = byte(rng.Uint32())
			}
		case 1: // a valid frame with bytes flipped after the size
			junk = append([]byte(nil), valid...)
			for range 1 + rng.IntN(4) {
				junk[4+rng.IntN(len(junk)-4)] ^= byte(1 + rng.IntN(255))
			}
		case 2: // a plausible size and header, random body
			body := make([]byte, rng.IntN(64))
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			junk = rawFrame(int16(rng.IntN(70)), int16(rng.IntN(14)), 1, body)
		}
		c := dial(t, "tcp", addr)
		c.Write(junk)
		c.Close()
	}
	waitFor(t, "all junk connections closed", func() bool { return srv.Stats().ConnectionsOpen == 0 })
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 9, nil, metadataRequest(4), nil))
	readResponse(t, c, 9, 4, kmsg.NewPtrMetadataResponse())
}

func TestIdleTimeoutCloses(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{IdleTimeout: 300 * time.Millisecond})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil))
	readResponse(t, c, 1, 4, kmsg.NewPtrMetadataResponse())
	expectClosed(t, c)
	if got := srv.Stats().ConnectionsIdle; got != 1 {
		t.Fatalf("ConnectionsIdle = %d, want 1", got)
	}
}

func TestIdleVerdict(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const timeout = 10 * time.Second
	for _, tc := range []struct {
		name     string
		now      time.Time
		pending  bool
		wantIdle bool
		wantNext time.Time
	}{
		{"fresh", t0.Add(time.Second), false, false, t0.Add(timeout)},
		{"just before", t0.Add(timeout - 1), false, false, t0.Add(timeout)},
		{"expired", t0.Add(timeout), false, true, time.Time{}},
		{"long poll pending", t0.Add(time.Hour), true, false, t0.Add(time.Hour + timeout)},
	} {
		idle, next := idleVerdict(tc.now, t0, tc.pending, timeout)
		if idle != tc.wantIdle || !next.Equal(tc.wantNext) {
			t.Errorf("%s: idleVerdict = %v, %v; want %v, %v", tc.name, idle, next, tc.wantIdle, tc.wantNext)
		}
	}
}

func TestShutdownWaitsForLongPoll(t *testing.T) {
	polling := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		go func() {
			close(polling)
			<-ctx.Done() // a long poll answered when the connection winds down
			respond(Response{Msg: req.Body.ResponseKind()})
		}()
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 77, nil, metadataRequest(4), nil))
	<-polling
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	readResponse(t, c, 77, 4, kmsg.NewPtrMetadataResponse())
	expectClosed(t, c)
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}
}

func TestShutdownForcesCloseAtDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	got := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		close(got)
		go func() {
			<-release // ignores ctx: only the deadline ends this
			respond(Response{Msg: req.Body.ResponseKind()})
		}()
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil))
	<-got
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
	}
	expectClosed(t, c)
	if err := srv.Close(); err != nil { // idempotent after Shutdown
		t.Fatal(err)
	}
}

func TestMaxInFlightBackPressure(t *testing.T) {
	var rec recorder
	var mu sync.Mutex
	var parked []func()
	srv, addr := startServer(t, ServerConfig{MaxInFlight: 2, Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		rec.add(req)
		mu.Lock()
		parked = append(parked, func() { respond(Response{Msg: req.Body.ResponseKind()}) })
		mu.Unlock()
	})})
	c := dial(t, "tcp", addr)
	var frames [][]byte
	for i := range 5 {
		frames = append(frames, appendRequest(nil, int32(i), nil, metadataRequest(4), nil))
	}
	send(t, c, frames...)
	waitFor(t, "reader to stall", func() bool { return srv.Stats().InFlightStalls >= 1 })
	if n := rec.len(); n != 2 {
		t.Fatalf("handler saw %d requests with MaxInFlight 2", n)
	}
	for i := range 5 {
		waitFor(t, "request to be dispatched", func() bool { return rec.len() > i })
		mu.Lock()
		answer := parked[i]
		mu.Unlock()
		answer()
		readResponse(t, c, int32(i), 4, kmsg.NewPtrMetadataResponse())
	}
}

func TestRespondTwiceIgnored(t *testing.T) {
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		respond(Response{Msg: req.Body.ResponseKind()})
		respond(Response{Msg: req.Body.ResponseKind()})
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil), appendRequest(nil, 2, nil, metadataRequest(4), nil))
	readResponse(t, c, 1, 4, kmsg.NewPtrMetadataResponse())
	readResponse(t, c, 2, 4, kmsg.NewPtrMetadataResponse())
}

func TestResponseCloseAfterEarlierResponses(t *testing.T) {
	closeSent := make(chan struct{})
	_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		switch req.CorrelationID {
		case 1: // answered after the close: the close must wait for it
			go func() {
				<-closeSent
				respond(Response{Msg: req.Body.ResponseKind()})
			}()
		case 2:
			respond(Response{Close: true})
			close(closeSent)
		default:
			respond(Response{Msg: req.Body.ResponseKind()})
		}
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil), appendRequest(nil, 2, nil, metadataRequest(4), nil),
		appendRequest(nil, 3, nil, metadataRequest(4), nil))
	readResponse(t, c, 1, 4, kmsg.NewPtrMetadataResponse())
	expectClosed(t, c)
}

// A refused request closes the connection only after the requests read
// before it are answered, even one answered after the refusal, as Kafka
// (which reads one request at a time) does.
func TestRefusalAnswersEarlierRequests(t *testing.T) {
	refused := make(chan struct{})
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
		go func() {
			<-refused
			respond(Response{Msg: req.Body.ResponseKind()})
		}()
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil), rawFrame(1000, 0, 2, nil))
	waitFor(t, "refusal counted", func() bool { return srv.Stats().ConnectionsRefused == 1 })
	close(refused)
	readResponse(t, c, 1, 4, kmsg.NewPtrMetadataResponse())
	expectClosed(t, c)
}

func TestInvalidResponseCloses(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp func(req *Request) Response
	}{
		{"empty", func(*Request) Response { return Response{} }},
		{"wrong kind", func(*Request) Response { return Response{Msg: kmsg.NewPtrProduceResponse()} }},
		{"msg and none", func(req *Request) Response { return Response{Msg: req.Body.ResponseKind(), None: true} }},
		{"fetch for metadata", func(*Request) Response { return Response{Fetch: &FetchResponse{}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
				respond(tc.resp(req))
			})})
			c := dial(t, "tcp", addr)
			send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil))
			expectClosed(t, c)
		})
	}
}

type observed struct {
	key, version int16
	reqBytes     int
	respBytes    int
}

type testObserver struct {
	mu  sync.Mutex
	got []observed
}

func (o *testObserver) ObserveRequest(key, version int16, latency time.Duration, reqBytes, respBytes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{key, version, reqBytes, respBytes})
}

func TestObserverAndStats(t *testing.T) {
	obs := &testObserver{}
	srv, addr := startServer(t, ServerConfig{Observer: obs})
	c := dial(t, "tcp", addr)
	frame := appendRequest(nil, 1, nil, metadataRequest(4, "t"), nil)
	send(t, c, frame)
	resp := readFrame(t, c)
	waitFor(t, "observation", func() bool { obs.mu.Lock(); defer obs.mu.Unlock(); return len(obs.got) == 1 })
	want := observed{3, 4, len(frame) - 4, len(resp) + 4}
	if obs.got[0] != want {
		t.Fatalf("observed %+v, want %+v", obs.got[0], want)
	}
	st := srv.Stats()
	if st.BytesIn != uint64(len(frame)) || st.BytesOut != uint64(len(resp)+4) || st.Requests != 1 ||
		st.ConnectionsAccepted != 1 || st.ConnectionsOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServeAfterCloseAndConfig(t *testing.T) {
	if _, err := NewServer(ServerConfig{Versions: testVersions}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil handler: %v", err)
	}
	if _, err := NewServer(ServerConfig{Handler: handlerFunc(answerDefault)}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil versions: %v", err)
	}
	srv, err := NewServer(ServerConfig{Handler: handlerFunc(answerDefault), Versions: testVersions})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A panicking handler closes its connection but leaves the server serving.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	h := handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		if req.Key == int16(kmsg.Metadata) {
			panic("handler bug")
		}
		answerDefault(ctx, req, respond)
	})
	_, addr := startServer(t, ServerConfig{Handler: h})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, metadataRequest(9, "t"), nil))
	expectClosed(t, c)
	c2 := dial(t, "tcp", addr)
	send(t, c2, appendRequest(nil, 2, nil, kmsg.NewPtrApiVersionsRequest(), nil))
	readResponse(t, c2, 2, 0, kmsg.NewPtrApiVersionsResponse())
}
