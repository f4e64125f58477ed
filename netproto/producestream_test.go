package netproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// streamedPartition is what a walk of a produce request saw of one partition.
type streamedPartition struct {
	Topic     string
	Partition int32
	Records   []byte // a copy; nil for null records
}

// walkStream walks s as a handler does, copying each partition's records.
func walkStream(s *ProduceStream) ([]streamedPartition, error) {
	var seen []streamedPartition
	for topic, ok := s.NextTopic(); ok; topic, ok = s.NextTopic() {
		for p, ok := s.NextPartition(); ok; p, ok = s.NextPartition() {
			seen = append(seen, streamedPartition{topic, p.Partition, bytes.Clone(p.Records)})
		}
	}
	return seen, s.Err()
}

// decodedPartitions is what kmsg decodes of the same request.
func decodedPartitions(r *kmsg.ProduceRequest) []streamedPartition {
	var out []streamedPartition
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out = append(out, streamedPartition{t.Topic, p.Partition, p.Records})
		}
	}
	return out
}

// sliceBody is a bodySource over bytes in memory.
type sliceBody struct{ b []byte }

func (s *sliceBody) readFull(p []byte) error {
	if len(p) > len(s.b) {
		return io.ErrUnexpectedEOF
	}
	s.b = s.b[copy(p, s.b):]
	return nil
}

func (s *sliceBody) readBuffer(n int) ([]byte, error) {
	p := make([]byte, n)
	return p, s.readFull(p)
}

func (s *sliceBody) releaseBuffer([]byte) {}

// streamFrame parses frame (after its size prefix) as a stream.
func streamFrame(frame []byte) (*Request, []streamedPartition, error) {
	s := newProduceStream(&sliceBody{frame}, len(frame))
	req := &Request{}
	if err := s.readHeader(req); err != nil {
		return req, nil, err
	}
	seen, err := walkStream(s)
	if err == nil {
		err = s.finish()
	}
	return req, seen, err
}

// testProduce is a produce request at version v: topics with partitions
// whose records are of the given sizes (-1 for null), with tags on every
// level when v is flexible.
func testProduce(v int16, acks int16, sizes ...int) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Version, r.Acks, r.TimeoutMillis = v, acks, 1500
	tag := func(t *kmsg.Tags, key uint32) {
		if r.IsFlexible() {
			t.Set(key, []byte(fmt.Sprintf("tag-%d", key)))
		}
	}
	tag(&r.UnknownTags, 7)
	for i, size := range sizes {
		if i%3 == 0 {
			t := kmsg.NewProduceRequestTopic()
			t.Topic = fmt.Sprintf("topic-%d", i)
			tag(&t.UnknownTags, 11)
			r.Topics = append(r.Topics, t)
		}
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition = int32(i)
		if size >= 0 {
			p.Records = make([]byte, size)
			for j := range p.Records {
				p.Records[j] = byte(i*31 + j)
			}
		}
		tag(&p.UnknownTags, uint32(20+i))
		t := &r.Topics[len(r.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	return r
}

// The stream reads every Produce version it serves exactly as kmsg decodes
// it, tags and null or empty records included.
func TestProduceStreamMatchesKmsg(t *testing.T) {
	for v := int16(produceStreamMinVersion); v <= produceStreamMaxVersion; v++ {
		r := testProduce(v, -1, 100, -1, 0, 70<<10, 300<<10, 5)
		frame := appendRequest(nil, 42, nil, r, nil)[4:]
		req, seen, err := streamFrame(frame)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		want := kmsg.NewPtrProduceRequest()
		want.Version = v
		if err := want.ReadFrom(frame[10+boolInt(r.IsFlexible()):]); err != nil {
			t.Fatalf("v%d: kmsg: %v", v, err)
		}
		if !slices.EqualFunc(seen, decodedPartitions(want), equalPartition) {
			t.Fatalf("v%d: stream saw %d partitions unlike kmsg's %d", v, len(seen), len(decodedPartitions(want)))
		}
		body := req.Body.(*kmsg.ProduceRequest)
		if req.Key != 0 || req.Version != v || req.CorrelationID != 42 || body.Acks != -1 || body.TimeoutMillis != 1500 {
			t.Fatalf("v%d: header %+v body acks %d timeout %d", v, req, body.Acks, body.TimeoutMillis)
		}
	}
}

func equalPartition(a, b streamedPartition) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && bytes.Equal(a.Records, b.Records) &&
		(a.Records == nil) == (b.Records == nil)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Every cut of a request inside its frame is a malformed request, never a
// panic or a walk that goes on past the frame.
func TestProduceStreamTruncatedIsMalformed(t *testing.T) {
	for _, v := range []int16{3, 9} {
		frame := appendRequest(nil, 1, nil, testProduce(v, 1, 10, -1, 20, 0), nil)[4:]
		for cut := 8; cut < len(frame); cut++ {
			_, _, err := streamFrame(frame[:cut])
			if !errors.Is(err, ErrMalformedRequest) {
				t.Fatalf("v%d cut at %d of %d: %v, want malformed", v, cut, len(frame), err)
			}
		}
	}
}

// FuzzProduceStream: on any body, the stream agrees with kmsg. Whatever kmsg
// decodes, the stream walks to the same partitions; whatever the stream
// walks, kmsg decodes.
func FuzzProduceStream(f *testing.F) {
	for _, v := range []int16{3, 8, 9, 11} {
		frame := appendRequest(nil, 1, nil, testProduce(v, 1, 10, -1, 0, 3, 4), nil)[4:]
		f.Add(v, frame[10+boolInt(v >= 9):])
	}
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		v = produceStreamMinVersion + (v&0x7fff)%(produceStreamMaxVersion-produceStreamMinVersion+1)
		flexible := v >= 9
		frame := rawFrame(0, v, 1, nil)[4:]
		if flexible {
			frame = append(frame, 0)
		}
		frame = append(frame, body...)
		_, seen, err := streamFrame(frame)
		want := kmsg.NewPtrProduceRequest()
		want.Version = v
		kerr := want.ReadFrom(body)
		switch {
		case err == nil && kerr != nil:
			t.Fatalf("v%d: the stream walked what kmsg refuses (%v)", v, kerr)
		case err != nil && kerr == nil:
			t.Fatalf("v%d: the stream refused what kmsg decodes: %v", v, err)
		case err == nil && !slices.EqualFunc(seen, decodedPartitions(want), equalPartition):
			t.Fatalf("v%d: the stream and kmsg disagree", v)
		case err != nil && !errors.Is(err, ErrMalformedRequest):
			t.Fatalf("v%d: %v, want malformed", v, err)
		}
	})
}

// A server streaming produce requests hands each to its handler partition
// by partition, pipelined requests before and after keep their frames, and
// what a handler leaves unread is dropped without losing the next request.
func TestProduceStreamOverConnection(t *testing.T) {
	type walked struct {
		corr int32
		seen []streamedPartition
	}
	got := make(chan walked, 16)
	handler := func(_ context.Context, req *Request, respond func(Response)) {
		if req.Produce == nil {
			answerDefault(nil, req, respond)
			return
		}
		var seen []streamedPartition
		var err error
		if req.CorrelationID == 3 { // a handler that stops after one partition
			if topic, ok := req.Produce.NextTopic(); ok {
				p, _ := req.Produce.NextPartition()
				seen = append(seen, streamedPartition{topic, p.Partition, bytes.Clone(p.Records)})
			}
			err = req.Produce.Err()
		} else {
			seen, err = walkStream(req.Produce)
		}
		if err != nil {
			respond(Response{Close: true})
			return
		}
		got <- walked{req.CorrelationID, seen}
		respond(Response{Msg: req.Body.ResponseKind()})
	}
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(handler), StreamProduceMinBytes: 1})
	c := dial(t, "tcp", addr)

	requests := []*kmsg.ProduceRequest{
		testProduce(3, 1, 1000, 64<<10, -1, 900<<10, 0),
		testProduce(9, 1, 5, 300<<10, 2<<20+7, 17),  // records past the chunk, and past framePoolEager
		testProduce(11, 1, 100, 200, 300, 400, 500), // the handler reads one partition of it
		testProduce(12, -1, 3<<20, 1, 2, 3),
	}
	var wire []byte
	wire = appendRequest(wire, 0, nil, metadataRequest(9, "a"), nil)
	for i, r := range requests {
		wire = appendRequest(wire, int32(i+1), nil, r, nil)
	}
	wire = appendRequest(wire, 9, nil, metadataRequest(9, "b"), nil)
	before := srv.Stats()
	send(t, c, wire)
	readResponse(t, c, 0, 9, kmsg.NewPtrMetadataResponse())
	for i, r := range requests {
		corr := int32(i + 1)
		readResponse(t, c, corr, r.Version, kmsg.NewPtrProduceResponse())
		w := <-got
		want := decodedPartitions(r)
		if corr == 3 {
			want = want[:1]
		}
		if w.corr != corr || !slices.EqualFunc(w.seen, want, equalPartition) {
			t.Fatalf("request %d: the handler saw %d partitions, want %d", corr, len(w.seen), len(want))
		}
	}
	readResponse(t, c, 9, 9, kmsg.NewPtrMetadataResponse())
	after := srv.Stats()
	if in := after.BytesIn - before.BytesIn; in != uint64(len(wire)) {
		t.Fatalf("bytes in %d, sent %d", in, len(wire))
	}
	if n := after.Requests - before.Requests; n != uint64(len(requests)+2) {
		t.Fatalf("%d requests counted, sent %d", n, len(requests)+2)
	}
}

// A streamed request that turns out malformed, or a connection that breaks
// in the middle of one, closes that connection only, after answering the
// requests before it; the server serves the next connection.
func TestProduceStreamBrokenRequests(t *testing.T) {
	walkAndAnswer := func(_ context.Context, req *Request, respond func(Response)) {
		if req.Produce == nil {
			answerDefault(nil, req, respond)
			return
		}
		if _, err := walkStream(req.Produce); err != nil {
			respond(Response{Close: true})
			return
		}
		respond(Response{Msg: req.Body.ResponseKind()})
	}
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(walkAndAnswer), StreamProduceMinBytes: 1})
	full := appendRequest(nil, 2, nil, testProduce(9, 1, 100, 80<<10, 400<<10), nil)
	rng := rand.New(rand.NewPCG(1, 2))
	cuts := []int{14, 20, 40, 200, 100 << 10, len(full) - 1}
	for i := 0; i < 10; i++ {
		cuts = append(cuts, 14+rng.IntN(len(full)-15))
	}
	for _, cut := range cuts {
		// The frame's size says cut bytes: the body ends inside a field.
		short := bytes.Clone(full[:cut])
		putInt32(short, int32(cut-4))
		refused := srv.Stats().ConnectionsRefused
		c := dial(t, "tcp", addr)
		send(t, c, appendRequest(nil, 1, nil, metadataRequest(9), nil), short)
		readResponse(t, c, 1, 9, kmsg.NewPtrMetadataResponse())
		expectClosed(t, c)
		waitFor(t, "the refusal counted", func() bool { return srv.Stats().ConnectionsRefused == refused+1 })

		// The frame is whole but the peer goes away in the middle.
		c = dial(t, "tcp", addr)
		send(t, c, full[:cut])
		c.Close()
	}
	c := dial(t, "tcp", addr)
	send(t, c, full)
	readResponse(t, c, 2, 9, kmsg.NewPtrProduceResponse())
	waitFor(t, "the broken connections closed", func() bool { return srv.Stats().ConnectionsOpen == 1 })
}

// A peer that stops sending in the middle of a streamed request is idle
// like any other (its request's slot does not count as a pending
// response), and Shutdown does not wait for the rest of the request: in
// both cases the connection closes, and nothing more is read.
func TestProduceStreamStalledPeer(t *testing.T) {
	for _, end := range []string{"idle", "shutdown"} {
		t.Run(end, func(t *testing.T) {
			first := make(chan struct{}, 1)
			handler := func(_ context.Context, req *Request, respond func(Response)) {
				if _, ok := req.Produce.NextTopic(); ok {
					if _, ok := req.Produce.NextPartition(); ok {
						first <- struct{}{}
					}
				}
				if _, err := walkStream(req.Produce); err != nil {
					respond(Response{Close: true})
					return
				}
				respond(Response{Msg: req.Body.ResponseKind()})
			}
			cfg := ServerConfig{Handler: handlerFunc(handler), StreamProduceMinBytes: 1}
			if end == "idle" {
				cfg.IdleTimeout = 300 * time.Millisecond
			}
			srv, addr := startServer(t, cfg)
			frame := appendRequest(nil, 1, nil, testProduce(9, 1, 100, 100<<10), nil)
			c := dial(t, "tcp", addr)
			send(t, c, frame[:len(frame)/2]) // the first partition and part of the second
			<-first
			if end == "shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					t.Fatalf("Shutdown = %v", err)
				}
			}
			expectClosed(t, c)
			if end == "idle" {
				waitFor(t, "the idle close counted", func() bool { return srv.Stats().ConnectionsIdle == 1 })
			}
		})
	}
}
