package netproto

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// segmentBytes is recognisable file content: any misplaced byte shows.
func segmentBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// fetchFixture is a FetchResponse over regions of one file, with the
// record bytes each partition should carry.
type fetchFixture struct {
	resp     *FetchResponse
	want     map[string][][]byte // topic -> per partition records
	total    int64               // region bytes
	released *atomic.Int32
}

var rackA = "rack-a"

// newFetchFixture builds two topics: "orders" with a partition of two
// regions, an empty partition and a large one (bigSize bytes, enough to
// fill socket buffers), and "payments" with one small region and epoch /
// leader tags.
func newFetchFixture(t testing.TB, bigSize int) fetchFixture {
	data := segmentBytes(bigSize + 64<<10)
	f := tempFile(t, data)
	reg := func(pos, n int) FileRegion { return FileRegion{File: f, Position: int64(pos), Size: int64(n)} }
	released := new(atomic.Int32)
	resp := &FetchResponse{
		ThrottleMillis: 3, ErrorCode: 0, SessionID: 0,
		Release: func() { released.Add(1) },
		Topics: []FetchTopic{
			{Topic: "orders", TopicID: [16]byte{1, 2, 3, 15: 4}, Partitions: []FetchPartition{
				{Partition: 0, HighWatermark: 100, LastStableOffset: 100, LogStartOffset: 5, PreferredReadReplica: -1,
					Regions: []FileRegion{reg(10, 1000), reg(5000, 333)}},
				{Partition: 1, ErrorCode: 1, HighWatermark: 7, LastStableOffset: 7, LogStartOffset: 0, PreferredReadReplica: -1},
				{Partition: 2, HighWatermark: 1 << 40, LastStableOffset: 1 << 40, LogStartOffset: 1 << 30, PreferredReadReplica: 2,
					Regions: []FileRegion{reg(64<<10, bigSize)}},
			}},
			{Topic: "payments", TopicID: [16]byte{9, 15: 9}, Partitions: []FetchPartition{
				{Partition: 9, HighWatermark: 42, LastStableOffset: 40, LogStartOffset: 1, PreferredReadReplica: -1,
					DivergingEpoch: &EpochEndOffset{Epoch: 4, EndOffset: 39},
					CurrentLeader:  &LeaderIDAndEpoch{LeaderID: 3, LeaderEpoch: 5},
					Regions:        []FileRegion{reg(1, 1)}},
			}},
		},
		NodeEndpoints: []NodeEndpoint{{NodeID: 3, Host: "broker-3.example", Port: 9092, Rack: &rackA}, {NodeID: 7, Host: "10.0.0.7", Port: 19092}},
	}
	fx := fetchFixture{resp: resp, want: map[string][][]byte{}, released: released}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			var rec []byte
			for _, r := range p.Regions {
				rec = append(rec, data[r.Position:r.Position+r.Size]...)
				fx.total += r.Size
			}
			fx.want[tp.Topic] = append(fx.want[tp.Topic], rec)
		}
	}
	return fx
}

// kmsgFetch is fx as kmsg would encode it, records inline.
func (fx fetchFixture) kmsgFetch(version int16) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.Version, r.ThrottleMillis, r.ErrorCode, r.SessionID = version, fx.resp.ThrottleMillis, fx.resp.ErrorCode, fx.resp.SessionID
	for _, tp := range fx.resp.Topics {
		kt := kmsg.NewFetchResponseTopic()
		kt.Topic, kt.TopicID = tp.Topic, tp.TopicID
		for i, p := range tp.Partitions {
			kp := kmsg.NewFetchResponseTopicPartition()
			kp.Partition, kp.ErrorCode, kp.HighWatermark = p.Partition, p.ErrorCode, p.HighWatermark
			kp.LastStableOffset, kp.LogStartOffset, kp.PreferredReadReplica = p.LastStableOffset, p.LogStartOffset, p.PreferredReadReplica
			kp.AbortedTransactions = nil
			kp.RecordBatches = append([]byte{}, fx.want[tp.Topic][i]...)
			if e := p.DivergingEpoch; e != nil {
				kp.DivergingEpoch.Epoch, kp.DivergingEpoch.EndOffset = e.Epoch, e.EndOffset
			}
			if l := p.CurrentLeader; l != nil {
				kp.CurrentLeader.LeaderID, kp.CurrentLeader.LeaderEpoch = l.LeaderID, l.LeaderEpoch
			}
			kt.Partitions = append(kt.Partitions, kp)
		}
		r.Topics = append(r.Topics, kt)
	}
	for _, n := range fx.resp.NodeEndpoints {
		if version < 16 { // kmsg would write the tag in any flexible version
			break
		}
		kb := kmsg.NewFetchResponseBroker()
		kb.NodeID, kb.Host, kb.Port, kb.Rack = n.NodeID, n.Host, n.Port, n.Rack
		r.Brokers = append(r.Brokers, kb)
	}
	return r
}

// TestFetchFrameMatchesKmsg: for every framed version, our bytes with the
// records spliced in at the cuts equal kmsg's own encoding of the same
// response, byte for byte.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	fx := newFetchFixture(t, 4096)
	for v := int16(minFetchVersion); v <= maxFetchVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			frame, cuts, records, err := appendFetchFrame(nil, nil, 99, v, fx.resp)
			if err != nil {
				t.Fatal(err)
			}
			if records != fx.total {
				t.Fatalf("records %d, want %d", records, fx.total)
			}
			var got []byte
			prev := 0
			for _, c := range cuts {
				got = append(got, frame[prev:c.at]...)
				prev = c.at
				for _, r := range c.regions {
					b := make([]byte, r.Size)
					if _, err := r.File.ReadAt(b, r.Position); err != nil {
						t.Fatal(err)
					}
					got = append(got, b...)
				}
			}
			got = append(got, frame[prev:]...)

			want := kbin.AppendInt32(nil, 0)
			want = kbin.AppendInt32(want, 99)
			if v >= 12 {
				want = append(want, 0)
			}
			want = fx.kmsgFetch(v).AppendTo(want)
			binary.BigEndian.PutUint32(want, uint32(len(want)-4))
			if !bytes.Equal(got, want) {
				t.Fatalf("frame differs from kmsg's encoding (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

func TestFetchFrameRejectsBadResponses(t *testing.T) {
	f := tempFile(t, []byte("x"))
	for _, tc := range []struct {
		name    string
		version int16
		resp    *FetchResponse
	}{
		{"v3", 3, &FetchResponse{}},
		{"v17", 17, &FetchResponse{}},
		{"negative size", 4, &FetchResponse{Topics: []FetchTopic{{Partitions: []FetchPartition{{Regions: []FileRegion{{File: f, Size: -1}}}}}}}},
		{"nil file", 4, &FetchResponse{Topics: []FetchTopic{{Partitions: []FetchPartition{{Regions: []FileRegion{{Size: 1}}}}}}}},
		{"over 2 GiB", 4, &FetchResponse{Topics: []FetchTopic{{Partitions: []FetchPartition{{Regions: []FileRegion{{File: f, Size: 1 << 31}}}}}}}},
	} {
		if _, _, _, err := appendFetchFrame(nil, nil, 1, tc.version, tc.resp); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// fetchConfig serves fx as the answer to every Fetch.
func fetchConfig(fx fetchFixture) ServerConfig {
	return ServerConfig{Handler: handlerFunc(func(ctx context.Context, req *Request, respond func(Response)) {
		if req.Key != 1 {
			answerDefault(ctx, req, respond)
			return
		}
		respond(Response{Fetch: fx.resp})
	})}
}

func fetchRequest(version int16) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = version
	return r
}

// checkFetch decodes a Fetch response with kmsg and compares it with fx.
func checkFetch(t *testing.T, c net.Conn, corr int32, version int16, fx fetchFixture) {
	t.Helper()
	resp := kmsg.NewPtrFetchResponse()
	readResponse(t, c, corr, version, resp)
	if resp.ThrottleMillis != 3 || len(resp.Topics) != 2 {
		t.Fatalf("throttle %d, %d topics", resp.ThrottleMillis, len(resp.Topics))
	}
	for ti, kt := range resp.Topics {
		tp := fx.resp.Topics[ti]
		if version >= 13 {
			kt.Topic = tp.Topic // v13+ carry the id alone
			if kt.TopicID != tp.TopicID {
				t.Fatalf("topic id %x, want %x", kt.TopicID, tp.TopicID)
			}
		}
		if kt.Topic != tp.Topic || len(kt.Partitions) != len(tp.Partitions) {
			t.Fatalf("topic %q with %d partitions, want %q with %d", kt.Topic, len(kt.Partitions), tp.Topic, len(tp.Partitions))
		}
		for pi, kp := range kt.Partitions {
			p := tp.Partitions[pi]
			if kp.Partition != p.Partition || kp.ErrorCode != p.ErrorCode || kp.HighWatermark != p.HighWatermark ||
				kp.LastStableOffset != p.LastStableOffset {
				t.Fatalf("%s/%d: got %+v", tp.Topic, p.Partition, kp)
			}
			if version >= 5 && kp.LogStartOffset != p.LogStartOffset {
				t.Fatalf("%s/%d: log start %d, want %d", tp.Topic, p.Partition, kp.LogStartOffset, p.LogStartOffset)
			}
			if version >= 11 && kp.PreferredReadReplica != p.PreferredReadReplica {
				t.Fatalf("%s/%d: preferred replica %d", tp.Topic, p.Partition, kp.PreferredReadReplica)
			}
			if kp.AbortedTransactions != nil {
				t.Fatalf("%s/%d: aborted transactions %v, want null", tp.Topic, p.Partition, kp.AbortedTransactions)
			}
			want := fx.want[tp.Topic][pi]
			if kp.RecordBatches == nil || !bytes.Equal(kp.RecordBatches, want) {
				t.Fatalf("%s/%d: %d record bytes (nil %v), want %d", tp.Topic, p.Partition, len(kp.RecordBatches), kp.RecordBatches == nil, len(want))
			}
			if version >= 12 && p.DivergingEpoch != nil &&
				(kp.DivergingEpoch.Epoch != p.DivergingEpoch.Epoch || kp.DivergingEpoch.EndOffset != p.DivergingEpoch.EndOffset ||
					kp.CurrentLeader.LeaderID != p.CurrentLeader.LeaderID || kp.CurrentLeader.LeaderEpoch != p.CurrentLeader.LeaderEpoch) {
				t.Fatalf("%s/%d: tags %+v %+v", tp.Topic, p.Partition, kp.DivergingEpoch, kp.CurrentLeader)
			}
		}
	}
}

func TestFetchSendfile(t *testing.T) {
	for _, v := range []int16{4, 7, 11, 12, 15} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			fx := newFetchFixture(t, 3<<20+17) // more than a socket buffer
			srv, addr := startServer(t, fetchConfig(fx))
			c := dial(t, "tcp", addr)
			// A small receive window makes sendfile hit EAGAIN and wait in
			// the poller mid-region.
			if err := c.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
				t.Fatal(err)
			}
			// A metadata request around the fetch checks the bytes after
			// the last region and ordering.
			send(t, c, appendRequest(nil, 1, nil, metadataRequest(4), nil),
				appendRequest(nil, 2, nil, fetchRequest(v), nil),
				appendRequest(nil, 3, nil, metadataRequest(4), nil))
			readResponse(t, c, 1, 4, kmsg.NewPtrMetadataResponse())
			checkFetch(t, c, 2, v, fx)
			readResponse(t, c, 3, 4, kmsg.NewPtrMetadataResponse())
			st := srv.Stats()
			if st.SendfileBytes != uint64(fx.total) || st.CopiedBytes != 0 {
				t.Fatalf("sendfile %d copied %d, want %d and 0", st.SendfileBytes, st.CopiedBytes, fx.total)
			}
			if n := fx.released.Load(); n != 1 {
				t.Fatalf("Release called %d times", n)
			}
		})
	}
}

func TestFetchCopyFallbackOnUnixSocket(t *testing.T) {
	fx := newFetchFixture(t, 1<<20)
	path := filepath.Join(t.TempDir(), "barge.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, fetchConfig(fx), ln)
	c := dial(t, "unix", path)
	send(t, c, appendRequest(nil, 5, nil, fetchRequest(12), nil))
	checkFetch(t, c, 5, 12, fx)
	st := srv.Stats()
	if st.CopiedBytes != uint64(fx.total) || st.SendfileBytes != 0 {
		t.Fatalf("copied %d sendfile %d, want %d and 0", st.CopiedBytes, st.SendfileBytes, fx.total)
	}
	if n := fx.released.Load(); n != 1 {
		t.Fatalf("Release called %d times", n)
	}
}

// TestFetchShortRegionCloses: a region past the end of its (truncated) file
// breaks the response; the connection must close, the regions be released.
func TestFetchShortRegionCloses(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			f := tempFile(t, segmentBytes(1000))
			var released atomic.Int32
			cfg := ServerConfig{Handler: handlerFunc(func(_ context.Context, req *Request, respond func(Response)) {
				respond(Response{Fetch: &FetchResponse{
					Release: func() { released.Add(1) },
					Topics: []FetchTopic{{Topic: "t", Partitions: []FetchPartition{{
						Regions: []FileRegion{{File: f, Position: 500, Size: 800}},
					}}}},
				}})
			})}
			addr := filepath.Join(t.TempDir(), "s.sock")
			ln, err := net.Listen(network, map[string]string{"tcp": "127.0.0.1:0", "unix": addr}[network])
			if err != nil {
				t.Fatal(err)
			}
			serveOn(t, cfg, ln)
			c := dial(t, network, ln.Addr().String())
			send(t, c, appendRequest(nil, 1, nil, fetchRequest(11), nil))
			var got bytes.Buffer
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := got.ReadFrom(c); err != nil {
				t.Logf("read ended with %v", err)
			}
			if frame := got.Bytes(); len(frame) >= 4 && int(binary.BigEndian.Uint32(frame)) == len(frame)-4 {
				t.Fatalf("got a complete %d byte response from a short region", len(frame))
			}
			waitFor(t, "release", func() bool { return released.Load() == 1 })
		})
	}
}

// TestFetchReleasedWhenDropped: a Fetch answered after its connection
// closed is released, not leaked.
func TestFetchReleasedWhenDropped(t *testing.T) {
	f := tempFile(t, segmentBytes(100))
	parked := make(chan func(Response), 1)
	srv, addr := startServer(t, ServerConfig{Handler: handlerFunc(func(_ context.Context, _ *Request, respond func(Response)) {
		parked <- respond
	})})
	c := dial(t, "tcp", addr)
	send(t, c, appendRequest(nil, 1, nil, fetchRequest(12), nil))
	respond := <-parked
	c.Close()
	waitFor(t, "connection to close", func() bool { return srv.Stats().ConnectionsOpen == 0 })
	var released atomic.Int32
	respond(Response{Fetch: &FetchResponse{
		Release: func() { released.Add(1) },
		Topics:  []FetchTopic{{Topic: "t", Partitions: []FetchPartition{{Regions: []FileRegion{{File: f, Size: 100}}}}}},
	}})
	if released.Load() != 1 {
		t.Fatalf("Release called %d times", released.Load())
	}
}
