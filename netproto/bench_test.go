package netproto

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkDecodeRequest: decodeRequest (header, version check, tag skip,
// body) of a Produce v9 request carrying a 16 KiB batch, against kmsg
// decoding the body alone. Reports ns of each and the ratio (1.0 = no
// overhead over kmsg).
func BenchmarkDecodeRequest(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 1000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "orders"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = segmentBytes(16 << 10)
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	frame := appendRequest(nil, 1, kmsg.StringPtr("bench-client"), req, nil)[4:]
	body := req.AppendTo(nil)

	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	var base, ours time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		kreq := kmsg.NewPtrProduceRequest()
		kreq.Version = 9
		if err := kreq.ReadFrom(body); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := decodeRequest(frame, testVersions); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		base += t1.Sub(t0)
		ours += t2.Sub(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "barge-ns/op")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkFetchWrite: a hand-framed v12 Fetch response carrying one 1 MiB
// file region, written by the connection writer to a loopback TCP socket,
// against a bare sendfile of the same region, interleaved in one loop so
// machine noise hits both alike. Reports MB/s of each and the ratio
// (1.0 = as fast as the bare sendfile).
func BenchmarkFetchWrite(b *testing.B) {
	const regionBytes = 1 << 20
	f := tempFile(b, segmentBytes(regionBytes))
	conn, stop := testutil.DrainingConn(b)
	defer stop()
	rc, err := conn.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var st counters
	w := newRespWriter(conn, &st, 0)
	fr := &FetchResponse{Topics: []FetchTopic{{Topic: "orders", Partitions: []FetchPartition{{
		Partition: 0, HighWatermark: 1000, LastStableOffset: 1000, PreferredReadReplica: -1,
		Regions: []FileRegion{{File: f, Position: 0, Size: regionBytes}},
	}}}}}

	b.SetBytes(regionBytes)
	b.ReportAllocs()
	b.ResetTimer()
	var base, ours time.Duration
	raw := func() {
		t0 := time.Now()
		if err := testutil.SendfileAll(rc, f, 0, regionBytes); err != nil {
			b.Fatal(err)
		}
		base += time.Since(t0)
	}
	framed := func(i int) {
		t0 := time.Now()
		if _, err := w.writeFetch(int32(i), 12, fr); err != nil {
			b.Fatal(err)
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
	}
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			raw()
			framed(i)
		} else {
			framed(i)
			raw()
		}
	}
	b.StopTimer()
	if st.sendfileBytes.Load() != uint64(b.N)*regionBytes || st.copiedBytes.Load() != 0 {
		b.Fatalf("sendfile %d copied %d bytes", st.sendfileBytes.Load(), st.copiedBytes.Load())
	}
	mb := float64(regionBytes) * float64(b.N) / 1e6
	b.ReportMetric(mb/base.Seconds(), "baseline-MB/s")
	b.ReportMetric(mb/ours.Seconds(), "barge-MB/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkFetchManyPartitions: a v12 Fetch response of 100 partitions with
// a 2 KiB region each (a consumer caught up on many quiet partitions),
// written with and without corking, interleaved in one loop. Reports the
// time per response of each and the TCP segments each sent (from
// /proc/net/snmp OutSegs, which counts the whole machine: run it quiet).
func BenchmarkFetchManyPartitions(b *testing.B) {
	const parts, regionBytes = 100, 2 << 10
	f := tempFile(b, segmentBytes(parts*regionBytes))
	conn, stop := testutil.DrainingConn(b)
	defer stop()
	var st counters
	w := newRespWriter(conn, &st, 0)
	topic := FetchTopic{Topic: "orders"}
	for p := range parts {
		topic.Partitions = append(topic.Partitions, FetchPartition{
			Partition: int32(p), HighWatermark: 1000, LastStableOffset: 1000, PreferredReadReplica: -1,
			Regions: []FileRegion{{File: f, Position: int64(p * regionBytes), Size: regionBytes}},
		})
	}
	fr := &FetchResponse{Topics: []FetchTopic{topic}}
	var corked, plain time.Duration
	var corkedSegs, plainSegs uint64
	one := func(i int, noCork bool) {
		w.noCork = noCork
		segs := tcpOutSegs(b)
		t0 := time.Now()
		if _, err := w.writeFetch(int32(i), 12, fr); err != nil {
			b.Fatal(err)
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
		d, n := time.Since(t0), tcpOutSegs(b)-segs
		if noCork {
			plain, plainSegs = plain+d, plainSegs+n
		} else {
			corked, corkedSegs = corked+d, corkedSegs+n
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one(i, i%2 == 0)
		one(i, i%2 != 0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(plain.Microseconds())/n, "plain-µs/resp")
	b.ReportMetric(float64(corked.Microseconds())/n, "corked-µs/resp")
	b.ReportMetric(float64(plainSegs)/n, "plain-segs/resp")
	b.ReportMetric(float64(corkedSegs)/n, "corked-segs/resp")
}

// tcpOutSegs reads the machine's TCP OutSegs counter.
func tcpOutSegs(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		b.Skip("no /proc/net/snmp")
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "Tcp:") || !strings.HasPrefix(lines[i+1], "Tcp:") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, name := range names {
			if name == "OutSegs" && j < len(values) {
				v, _ := strconv.ParseUint(values[j], 10, 64)
				return v
			}
		}
	}
	b.Skip("no Tcp OutSegs in /proc/net/snmp")
	return 0
}
