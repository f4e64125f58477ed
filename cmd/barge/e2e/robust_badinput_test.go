package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topics of TestRobustBadInput. Nothing may ever be appended to the known
// topic after its first robustKnownCount records; the raw topic takes the
// hand-made batches that are meant to succeed.
const (
	robustKnownTopic = "robust-known"
	robustProbeTopic = "robust-probe"
	robustRawTopic   = "robust-raw"
	robustKnownCount = 1000
	// robustKnownMaxMessageBytes is the known topic's max.message.bytes.
	robustKnownMaxMessageBytes = 64 << 10
)

// Log lines netproto writes when it refuses a connection (netproto/conn.go,
// netproto/errors.go).
const (
	robustLogRefused     = "closing connection after a bad request"
	robustLogTooLarge    = "request larger than socket.request.max.bytes"
	robustLogTooSmall    = "request smaller than a request header"
	robustLogMalformed   = "malformed request"
	robustLogUnsupported = "unsupported api key"
	robustLogBadVersion  = "unsupported api version"
)

// robustBadInput is the state shared by TestRobustBadInput's subtests: one
// broker, the ledger of everything it acknowledged, and where the broker
// log was last looked at.
type robustBadInput struct {
	b        *harness.Broker
	ctx      context.Context
	ledger   *robustLedger
	rng      *rand.Rand
	knownEnd int64 // log end offset of robustKnownTopic, fixed after setup
	logMark  int   // bytes of the broker log already looked at
}

// TestRobustBadInput (issue 5, acceptance 4 and 5) feeds one live broker
// bad input over raw TCP connections. After each case a fresh franz-go
// client produces and consumes a record, and every record acknowledged so
// far is still there, byte for byte; the known topic has not grown. The
// broker restarts (SIGTERM) at the end with all acknowledged data intact,
// and its peak RSS is logged and bounded.
//
// The fuzz test of request decoding is netproto's FuzzDecodeRequest (run by
// `make fuzz`); this test exercises the same decoder through a real socket.
func TestRobustBadInput(t *testing.T) {
	seed := robustSeed(t)
	b := harness.StartBroker(t, harness.Options{})
	ctx := harness.Context(t, 3*time.Minute)
	s := &robustBadInput{b: b, ctx: ctx, ledger: newRobustLedger(), rng: rand.New(rand.NewPCG(uint64(seed), 0x6261726765))}

	maxMsg := fmt.Sprint(robustKnownMaxMessageBytes)
	robustCreateTopic(t, ctx, b.KafkaAddr, robustKnownTopic, 1, map[string]*string{"max.message.bytes": &maxMsg})
	robustCreateTopic(t, ctx, b.KafkaAddr, robustProbeTopic, 1, nil)
	robustCreateTopic(t, ctx, b.KafkaAddr, robustRawTopic, 1, nil)
	known := make([]robustRec, robustKnownCount)
	for i := range known {
		known[i] = robustKnown("known", i)
	}
	robustProduceSync(t, ctx, b.KafkaAddr, robustKnownTopic, s.ledger, known...)
	if s.knownEnd = robustEndOffset(t, ctx, b.KafkaAddr, robustKnownTopic, 0); s.knownEnd != robustKnownCount {
		t.Fatalf("%s: log end offset %d after producing %d records", robustKnownTopic, s.knownEnd, robustKnownCount)
	}
	s.logMark = len(b.Log())

	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"random_bytes", s.randomBytes},
		{"frame_too_large", s.frameTooLarge},
		{"truncated_request", s.truncatedRequest},
		{"truncated_streamed_request", s.truncatedStreamedRequest},
		{"unknown_api_key", s.unknownAPIKey},
		{"unsupported_version", s.unsupportedVersion},
		{"negative_array_lengths", s.negativeArrayLengths},
		{"corrupt_crc_produce", s.corruptCRC},
		{"produce_too_large", s.produceTooLarge},
		{"thousand_connections", s.thousandConnections},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.newLog() // log lines of earlier cases are not this one's
			c.run(t)
			s.checkServing(t, c.name)
		})
	}

	robustLogPeakRSS(t, b, "after all bad-input cases")
	t.Run("restart_after_sigterm", func(t *testing.T) {
		if err := b.Stop(); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		b.Restart()
		if strings.Contains(b.Log(), "recovered log after unclean shutdown") {
			t.Errorf("restart after SIGTERM ran a recovery scan")
		}
		s.logMark = 0 // a new log file
		s.checkServing(t, "restart")
	})
	t.Logf("%d acknowledged records checked after every case", s.ledger.count())
	robustLogPeakRSS(t, b, "of the restarted process")
}

// checkServing fails unless the broker still serves a fresh client (a
// record produced with acks=all reads back), the known topic has not grown,
// and every acknowledged record is still there.
func (s *robustBadInput) checkServing(t *testing.T, after string) {
	t.Helper()
	if !s.b.Running() {
		t.Fatalf("broker exited after %s:\n%s", after, s.b.Log())
	}
	probe := robustRec{key: "probe", value: "after " + after}
	recs := robustProduceSync(t, s.ctx, s.b.KafkaAddr, robustProbeTopic, s.ledger, probe)
	off := recs[0].Offset
	got := 0
	robustConsume(t, s.ctx, s.b.KafkaAddr, robustProbeTopic, 0, off, off+1, func(r *kgo.Record) {
		if string(r.Value) != probe.value {
			t.Fatalf("probe record at %d reads %q, produced %q", off, r.Value, probe.value)
		}
		got++
	})
	if got != 1 {
		t.Fatalf("probe record at %d not read back", off)
	}
	s.expectKnownEnd(t)
	s.ledger.check(t, s.ctx, s.b.KafkaAddr)
}

// expectKnownEnd fails if anything was appended to the known topic.
func (s *robustBadInput) expectKnownEnd(t *testing.T) {
	t.Helper()
	if end := robustEndOffset(t, s.ctx, s.b.KafkaAddr, robustKnownTopic, 0); end != s.knownEnd {
		t.Fatalf("%s: log end offset moved from %d to %d", robustKnownTopic, s.knownEnd, end)
	}
}

// newLog returns what the broker logged since the last call.
func (s *robustBadInput) newLog() string {
	l := s.b.Log()
	if len(l) < s.logMark {
		s.logMark = 0
	}
	out := l[s.logMark:]
	s.logMark = len(l)
	return out
}

// expectRefused fails unless the broker closes c without answering and logs
// that it refused the connection for reason.
func (s *robustBadInput) expectRefused(t *testing.T, c *robustConn, why, reason string) {
	t.Helper()
	c.expectClosed(why)
	// netproto logs the refusal before it closes, so the line is there.
	log := s.newLog()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, robustLogRefused) && strings.Contains(line, reason) {
			t.Logf("%s: closed; broker logged: %s", why, robustLogTail(line))
			return
		}
	}
	t.Fatalf("%s: no %q line naming %q in the broker log; new lines:\n%s", why, robustLogRefused, reason, log)
}

// robustLogTail is the part of a log line from its msg on.
func robustLogTail(line string) string {
	if i := strings.Index(line, "msg="); i >= 0 {
		return line[i:]
	}
	return line
}

// robustRawWrite writes bytes that the broker may refuse part way; a connection
// closed under the write is an acceptable outcome, anything else fails.
func robustRawWrite(t *testing.T, c *robustConn, b []byte) {
	t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(robustIOTimeout))
	if _, err := c.nc.Write(b); err != nil && !robustClosedErr(err) {
		t.Fatalf("write: %v", err)
	}
}

// randomBytes: garbage in three shapes, each on its own connection that is
// half-closed after the write: an unframed random stream; random bodies
// behind a valid header of a read-only API; valid requests with random bytes
// flipped. Anything goes except hanging, crashing or losing data: the broker
// may answer what happens to decode, and must close when it reads EOF.
func (s *robustBadInput) randomBytes(t *testing.T) {
	rng := s.rng
	var answered, silent int
	run := func(what string, frame []byte) {
		c := robustDial(t, s.b.KafkaAddr)
		robustRawWrite(t, c, frame)
		c.nc.CloseWrite()
		if c.drainToClose(what) > 0 {
			answered++
		} else {
			silent++
		}
		c.nc.Close()
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	for i := range 24 {
		run(fmt.Sprintf("unframed stream %d", i), random(1+rng.IntN(16<<10)))
	}
	// No admin APIs: a random body must not be able to create, delete or
	// alter anything this test checks (a produce would have to name the
	// known topic exactly and carry a valid CRC).
	readOnly := []struct{ key, minV, maxV int16 }{
		{int16(kmsg.Produce), 3, 11}, {int16(kmsg.Fetch), 4, 16}, {int16(kmsg.ListOffsets), 1, 7},
		{int16(kmsg.Metadata), 0, 12}, {int16(kmsg.ApiVersions), 0, 3}, {int16(kmsg.DescribeConfigs), 0, 4},
	}
	for i := range 48 {
		api := readOnly[rng.IntN(len(readOnly))]
		v := api.minV + int16(rng.IntN(int(api.maxV-api.minV+1)))
		req := kmsg.RequestForKey(api.key)
		req.SetVersion(v)
		run(fmt.Sprintf("random %s v%d body %d", kmsg.NameForKey(api.key), v, i),
			robustFrame(api.key, v, int32(i), req.IsFlexible(), random(rng.IntN(512))))
	}
	templates := s.validRequests()
	for i := range 96 {
		frame := bytes.Clone(templates[rng.IntN(len(templates))])
		for range 1 + rng.IntN(4) {
			frame[rng.IntN(len(frame))] ^= byte(1 + rng.IntN(255))
		}
		run(fmt.Sprintf("bit-flipped request %d", i), frame)
	}
	t.Logf("%d garbage connections: %d got response bytes before the close, %d were closed without an answer", answered+silent, answered, silent)
}

// validRequests are well-formed frames that touch only the raw topic, the
// seeds of the bit-flipped cases: any flip that still decodes can at worst
// append to the raw topic, which holds no count the test relies on.
func (s *robustBadInput) validRequests() [][]byte {
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(robustRawTopic)
	meta.Topics = append(meta.Topics, mt)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(7)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = robustRawTopic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 100, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = robustRawTopic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "barge-robust", "0"

	batch := robustBatch([]byte("flipped-0"), []byte("flipped-1"))
	return [][]byte{
		robustEncode(meta, 1),
		robustEncode(lo, 2),
		robustEncode(fetch, 3),
		robustEncode(av, 4),
		robustEncode(robustProduceRequest(9, robustRawTopic, 0, batch), 5),
		robustEncode(robustProduceRequest(7, robustRawTopic, 0, batch), 6),
	}
}

// frameTooLarge: size prefixes above socket.request.max.bytes (100 MiB by
// default) or below a request header close the connection as soon as the
// prefix is read, before any body is expected.
func (s *robustBadInput) frameTooLarge(t *testing.T) {
	header := robustFrame(int16(kmsg.ApiVersions), 0, 1, false, nil)[4:]
	for _, c := range []struct {
		name   string
		size   int32
		reason string
	}{
		{"one byte over the limit", 100<<20 + 1, robustLogTooLarge + ": 104857601 > 104857600 bytes"},
		{"max int32", 1<<31 - 1, robustLogTooLarge + ": 2147483647 > 104857600 bytes"},
		{"negative size", -1, robustLogTooSmall + ": -1 bytes"},
		{"min int32", -1 << 31, robustLogTooSmall + ": -2147483648 bytes"},
		{"zero size", 0, robustLogTooSmall + ": 0 bytes"},
		{"size below a header", 7, robustLogTooSmall + ": 7 bytes"},
	} {
		conn := robustDial(t, s.b.KafkaAddr)
		frame := binary.BigEndian.AppendUint32(nil, uint32(c.size))
		robustRawWrite(t, conn, append(frame, header...))
		s.expectRefused(t, conn, c.name, c.reason)
	}
}

// truncatedRequest: a Produce of a valid batch to the known topic, cut at
// every byte after the fixed header with the size prefix telling the truth,
// is refused as malformed every time and appends nothing; a frame whose
// body never fully arrives is dropped when the client closes.
func (s *robustBadInput) truncatedRequest(t *testing.T) {
	batch := robustBatch([]byte("truncated-0"), []byte("truncated-1"), []byte("truncated-2"))
	cuts := 0
	for _, version := range []int16{7, 9} {
		full := robustEncode(robustProduceRequest(version, robustKnownTopic, 0, batch), 1)
		body := full[4:]
		for n := 8; n < len(body); n++ {
			frame := binary.BigEndian.AppendUint32(nil, uint32(n))
			frame = append(frame, body[:n]...)
			conn := robustDial(t, s.b.KafkaAddr)
			conn.write(frame)
			conn.expectClosed(fmt.Sprintf("produce v%d cut to %d of %d bytes", version, n, len(body)))
			cuts++
		}
	}
	if log := s.newLog(); strings.Count(log, robustLogRefused) < cuts || !strings.Contains(log, robustLogMalformed) {
		t.Fatalf("%d truncated requests, but the broker log does not show as many %q refusals:\n%s", cuts, robustLogMalformed, log)
	}
	t.Logf("%d truncated produce requests (v7 and v9, every cut point) refused as malformed", cuts)
	s.expectKnownEnd(t)

	// The size prefix promises more than ever comes, then the client goes.
	full := robustEncode(robustProduceRequest(9, robustKnownTopic, 0, batch), 2)
	for _, n := range []int{2, 4, 12, len(full) / 2, len(full) - 1} {
		conn := robustDial(t, s.b.KafkaAddr)
		conn.write(full[:n])
		conn.nc.CloseWrite()
		conn.expectClosed(fmt.Sprintf("%d of %d bytes, then EOF", n, len(full)))
	}
}

// truncatedStreamedRequest: a produce request of 4 MiB or more is served
// while it arrives, partition entry by partition entry. Cut inside its
// sixth entry's records (past 4 MiB), whether the frame's size says so
// (malformed) or the client goes away, it is refused and its connection
// closed; the five entries before the cut stay appended, as an append
// whose answer was lost, and nothing of the rest is. Sent whole, it is
// answered and every entry is appended.
func (s *robustBadInput) truncatedStreamedRequest(t *testing.T) {
	const topic, entries, cutEntry, perBatch = "robust-streamed", 7, 5, 10
	robustCreateTopic(t, s.ctx, s.b.KafkaAddr, topic, 1, nil)
	req := robustProduceRequest(9, topic, 0, nil)
	req.Topics[0].Partitions = nil
	var batches [][]byte
	for e := 0; e < entries; e++ {
		var values [][]byte
		for i := 0; i < perBatch; i++ {
			values = append(values, bytes.Repeat([]byte{byte('a' + e)}, 90<<10))
		}
		batches = append(batches, robustBatch(values...))
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = batches[e]
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, p)
	}
	full := robustEncode(req, 1)
	if len(full) < 4<<20 {
		t.Fatalf("a %d byte request is below the 4 MiB streaming threshold", len(full))
	}
	cut := bytes.Index(full, batches[cutEntry]) + 1000
	if cut < 4<<20 {
		t.Fatalf("the cut at %d is below the 4 MiB streaming threshold", cut)
	}
	end := robustEndOffset(t, s.ctx, s.b.KafkaAddr, topic, 0)

	malformed := binary.BigEndian.AppendUint32(nil, uint32(cut-4))
	malformed = append(malformed, full[4:cut]...)
	conn := robustDial(t, s.b.KafkaAddr)
	conn.write(malformed)
	s.expectRefused(t, conn, "streamed produce cut inside its sixth entry", robustLogMalformed)
	end += cutEntry * perBatch
	if got := robustEndOffset(t, s.ctx, s.b.KafkaAddr, topic, 0); got != end {
		t.Fatalf("after a streamed request cut in its sixth entry: log end %d, want %d (five entries)", got, end)
	}

	conn = robustDial(t, s.b.KafkaAddr)
	conn.write(full[:cut])
	conn.nc.CloseWrite()
	conn.expectClosed("streamed produce sent up to its sixth entry, then EOF")
	end += cutEntry * perBatch
	// The close may be seen before the fifth entry's append returns.
	testutil.WaitFor(t, robustIOTimeout, "five entries of a streamed request broken off in its sixth", func() (bool, string) {
		got := robustEndOffset(t, s.ctx, s.b.KafkaAddr, topic, 0)
		return got == end, fmt.Sprintf("log end %d, want %d", got, end)
	})

	conn = robustDial(t, s.b.KafkaAddr)
	conn.write(full)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	conn.recv(1, resp)
	for i, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("entry %d of the whole streamed request: %v", i, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	end += entries * perBatch
	if got := robustEndOffset(t, s.ctx, s.b.KafkaAddr, topic, 0); got != end {
		t.Fatalf("after the whole streamed request: log end %d, want %d", got, end)
	}
	t.Logf("a %d byte streamed produce: cut in its sixth entry it appended the five before (malformed and EOF alike); whole, all %d", len(full), entries)
}

// unknownAPIKey: keys the broker does not advertise close the connection,
// after the answers to requests pipelined before them.
func (s *robustBadInput) unknownAPIKey(t *testing.T) {
	for _, key := range []int16{9999, -1, 68 /* ConsumerGroupHeartbeat: kmsg knows it, Barge does not advertise it */, 1000, 32767} {
		conn := robustDial(t, s.b.KafkaAddr)
		conn.write(robustFrame(key, 0, 1, false, []byte{0, 0, 0, 0}))
		s.expectRefused(t, conn, fmt.Sprintf("api key %d", key), fmt.Sprintf("%s: key %d version 0", robustLogUnsupported, key))
	}

	// Pipelined: ApiVersions, then an unknown key. The first is answered,
	// then the connection closes.
	conn := robustDial(t, s.b.KafkaAddr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	first := robustEncode(av, 1)
	conn.write(append(first, robustFrame(9999, 0, 2, false, nil)...))
	resp := av.ResponseKind().(*kmsg.ApiVersionsResponse)
	conn.recv(1, resp)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("pipelined ApiVersions: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	s.expectRefused(t, conn, "unknown key after a pipelined ApiVersions", robustLogUnsupported+": key 9999 version 0")
}

// unsupportedVersion: a version outside the advertised range closes the
// connection for every API but ApiVersions, which answers
// UNSUPPORTED_VERSION with the advertised list in the v0 layout (response
// header v0) and keeps the connection.
func (s *robustBadInput) unsupportedVersion(t *testing.T) {
	for _, c := range []struct {
		req     kmsg.Request
		version int16
	}{
		{kmsg.NewPtrProduceRequest(), 2},  // below Produce's minimum, 3
		{kmsg.NewPtrProduceRequest(), 12}, // KIP-890, not served
		{kmsg.NewPtrProduceRequest(), -1},
		{kmsg.NewPtrFetchRequest(), 17}, // above v16, the newest served
		{kmsg.NewPtrFetchRequest(), 3},
		{kmsg.NewPtrListOffsetsRequest(), 0},
		{kmsg.NewPtrMetadataRequest(), 13},
		{kmsg.NewPtrMetadataRequest(), 999},
	} {
		c.req.SetVersion(c.version)
		conn := robustDial(t, s.b.KafkaAddr)
		conn.write(robustFrame(c.req.Key(), c.version, 1, c.version >= 0 && c.req.IsFlexible(), c.req.AppendTo(nil)))
		s.expectRefused(t, conn, fmt.Sprintf("%s v%d", kmsg.NameForKey(c.req.Key()), c.version),
			fmt.Sprintf("%s: key %d version %d", robustLogBadVersion, c.req.Key(), c.version))
	}

	conn := robustDial(t, s.b.KafkaAddr)
	cur := kmsg.NewPtrApiVersionsRequest()
	cur.SetVersion(3)
	want := conn.roundTrip(cur).(*kmsg.ApiVersionsResponse)
	if want.ErrorCode != 0 {
		t.Fatalf("ApiVersions v3: error %d", want.ErrorCode)
	}
	for _, version := range []int16{4, 5, 99, 32767, -1} {
		// The body is whatever the client's version would carry; the broker
		// must not read it. Encode it as v3 (kmsg cannot encode v99).
		body := cur.AppendTo(nil)
		corr := conn.nextCorr()
		conn.write(robustFrame(int16(kmsg.ApiVersions), version, corr, true, body))
		got := kmsg.NewPtrApiVersionsResponse()
		got.SetVersion(0) // the v0 layout, header v0
		conn.recv(corr, got)
		if got.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("ApiVersions v%d: error %d, want %d (UNSUPPORTED_VERSION)", version, got.ErrorCode, kerr.UnsupportedVersion.Code)
		}
		if fmt.Sprint(got.ApiKeys) != fmt.Sprint(want.ApiKeys) {
			t.Fatalf("ApiVersions v%d answered the keys\n%v\nbut v3 advertises\n%v", version, got.ApiKeys, want.ApiKeys)
		}
	}
	// The connection survived all of it.
	if again := conn.roundTrip(cur).(*kmsg.ApiVersionsResponse); again.ErrorCode != 0 {
		t.Fatalf("ApiVersions v3 after the unsupported versions: error %d", again.ErrorCode)
	}
	t.Logf("ApiVersions v4, v5, v99, v32767, v-1: error 35 with the %d advertised keys, connection kept", len(want.ApiKeys))
}

// negativeArrayLengths: kmsg reads a negative array length as null, also
// for arrays that are not nullable, so Barge serves those requests as empty
// ones and answers, keeping the connection (Kafka's generated code refuses a
// non-nullable array serialized as null, and closes). A null topics array in
// Metadata means all topics, as in Kafka. Negative records lengths are null
// records, refused per partition with INVALID_RECORD. A negative string
// length or an array longer than the frame is malformed and closes the
// connection. Nothing is ever appended.
func (s *robustBadInput) negativeArrayLengths(t *testing.T) {
	minus1 := []byte{0xff, 0xff, 0xff, 0xff}
	patchTail := func(body, with []byte) []byte {
		out := bytes.Clone(body)
		copy(out[len(out)-len(with):], with)
		return out
	}
	produce := func(version int16, topics ...string) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(version)
		req.Acks, req.TimeoutMillis = -1, 5000
		for _, topic := range topics {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
	// answered writes body under resp's key and version, decodes the answer
	// into resp, then proves the connection still serves an ApiVersions.
	answered := func(what string, resp kmsg.Response, body []byte) {
		t.Helper()
		conn := robustDial(t, s.b.KafkaAddr)
		corr := conn.nextCorr()
		conn.write(robustFrame(resp.Key(), resp.GetVersion(), corr, resp.IsFlexible(), body))
		conn.recv(corr, resp)
		av := kmsg.NewPtrApiVersionsRequest()
		if r := conn.roundTrip(av).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("%s: ApiVersions on the same connection afterwards: error %d", what, r.ErrorCode)
		}
		t.Logf("%s: answered, connection kept", what)
	}
	produceResp := func(version int16) *kmsg.ProduceResponse {
		r := kmsg.NewPtrProduceResponse()
		r.SetVersion(version)
		return r
	}

	// Produce v7 (non-flexible), topics = -1: an empty produce, answered empty.
	{
		resp := produceResp(7)
		answered("produce v7, topics array length -1", resp, patchTail(produce(7).AppendTo(nil), minus1))
		if len(resp.Topics) != 0 {
			t.Fatalf("produce with topics -1 answered %d topics", len(resp.Topics))
		}
	}
	// Produce v9 (flexible), compact topics length 0, meaning null.
	{
		body := produce(9).AppendTo(nil) // ... topics uvarint 1 (empty), tags 0
		body[len(body)-2] = 0
		resp := produceResp(9)
		answered("produce v9, compact topics array null", resp, body)
		if len(resp.Topics) != 0 {
			t.Fatalf("produce with null compact topics answered %d topics", len(resp.Topics))
		}
	}
	// Produce v7 to the known topic, partitions = -1.
	{
		resp := produceResp(7)
		answered("produce v7, partitions array length -1", resp, patchTail(produce(7, robustKnownTopic).AppendTo(nil), minus1))
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 0 {
			t.Fatalf("produce with partitions -1 answered %+v", resp.Topics)
		}
	}
	// Produce v7 to the known topic with records length -1 and -7: null
	// records, refused per partition.
	for _, n := range []int32{-1, -7} {
		req := robustProduceRequest(7, robustKnownTopic, 0, nil) // kmsg writes nil records as -1
		body := patchTail(req.AppendTo(nil), binary.BigEndian.AppendUint32(nil, uint32(n)))
		resp := produceResp(7)
		answered(fmt.Sprintf("produce v7, records length %d", n), resp, body)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
			t.Fatalf("produce with records length %d: error %d, want %d (INVALID_RECORD)", n, code, kerr.InvalidRecord.Code)
		}
	}
	// ListOffsets v4, topics = -1.
	{
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(4)
		req.ReplicaID = -1
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.SetVersion(4)
		answered("list offsets v4, topics array length -1", resp, patchTail(req.AppendTo(nil), minus1))
		if len(resp.Topics) != 0 {
			t.Fatalf("list offsets with topics -1 answered %d topics", len(resp.Topics))
		}
	}
	// Metadata v4, topics = -1: nullable since v1, null means all topics.
	{
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(4)
		req.Topics = []kmsg.MetadataRequestTopic{}
		body := req.AppendTo(nil) // topics int32 0, allow_auto_topic_creation
		copy(body[0:4], minus1)
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(4)
		answered("metadata v4, topics array length -1 (all topics)", resp, body)
		found := false
		for _, topic := range resp.Topics {
			found = found || topic.Topic != nil && *topic.Topic == robustKnownTopic
		}
		if !found {
			t.Fatalf("metadata for all topics does not list %s", robustKnownTopic)
		}
	}

	// Malformed: a negative string length, and an array longer than the frame.
	{
		body := produce(7, robustKnownTopic).AppendTo(nil)
		// transactional_id i16, acks i16, timeout i32, topics i32, then the topic name's i16 length.
		const nameLenAt = 2 + 2 + 4 + 4
		binary.BigEndian.PutUint16(body[nameLenAt:], 0xfffe)
		conn := robustDial(t, s.b.KafkaAddr)
		conn.write(robustFrame(int16(kmsg.Produce), 7, 1, false, body))
		s.expectRefused(t, conn, "produce v7, topic name length -2", robustLogMalformed+": key 0 version 7")
	}
	{
		body := patchTail(produce(7).AppendTo(nil), []byte{0x7f, 0xff, 0xff, 0xff})
		conn := robustDial(t, s.b.KafkaAddr)
		conn.write(robustFrame(int16(kmsg.Produce), 7, 1, false, body))
		s.expectRefused(t, conn, "produce v7, topics array length 2^31-1", robustLogMalformed+": key 0 version 7")
	}
	s.expectKnownEnd(t)
}

// robustProduceOnConn sends one Produce of records to topic/0 on conn and
// returns the partition's answer.
func robustProduceOnConn(t *testing.T, conn *robustConn, version int16, topic string, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := conn.roundTrip(robustProduceRequest(version, topic, 0, records)).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce v%d to %s: answer %+v, want one topic with one partition", version, topic, resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// corruptCRC: a batch with any byte of its CRC-32C range (or the CRC
// itself) flipped is refused with CORRUPT_MESSAGE and nothing is written;
// the connection stays usable, and the same batch unflipped is accepted.
func (s *robustBadInput) corruptCRC(t *testing.T) {
	values := [][]byte{[]byte("crc-0"), []byte("crc-1"), []byte("crc-2")}
	good := robustBatch(values...)
	for _, version := range []int16{7, 9} {
		conn := robustDial(t, s.b.KafkaAddr)
		for _, flip := range []struct {
			name string
			at   int
		}{
			{"crc field", 17},
			{"attributes", 22},
			{"base timestamp", 30},
			{"producer id", 50},
			{"records count", 60},
			{"first record", 61},
			{"last value byte", len(good) - 1},
		} {
			bad := bytes.Clone(good)
			bad[flip.at] ^= 0x10
			p := robustProduceOnConn(t, conn, version, robustKnownTopic, bad)
			if p.ErrorCode != kerr.CorruptMessage.Code {
				t.Fatalf("produce v%d, %s flipped: error %d (%v), want %d (CORRUPT_MESSAGE)",
					version, flip.name, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), kerr.CorruptMessage.Code)
			}
			s.expectKnownEnd(t)
		}
		// The builder is right: the unflipped batch goes in, on the same connection.
		p := robustProduceOnConn(t, conn, version, robustRawTopic, good)
		if p.ErrorCode != 0 {
			t.Fatalf("produce v%d of the unflipped batch: error %d (%v)", version, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
		}
		for i, v := range values {
			s.ledger.addAt(robustRawTopic, 0, p.BaseOffset+int64(i), fmt.Sprintf("k%d", i), string(v))
		}
	}
	t.Logf("7 flipped bytes x Produce v7 and v9: CORRUPT_MESSAGE, known log end offset still %d", s.knownEnd)
}

// produceTooLarge: a valid batch above the topic's max.message.bytes is
// refused with MESSAGE_TOO_LARGE and nothing is written; the limit is the
// topic's own, so the same batch goes into a topic with the default.
func (s *robustBadInput) produceTooLarge(t *testing.T) {
	value := bytes.Repeat([]byte("L"), 1024)
	batch := func(n int) ([]byte, [][]byte) {
		vs := make([][]byte, n)
		for i := range vs {
			vs[i] = value
		}
		return robustBatch(vs...), vs
	}
	conn := robustDial(t, s.b.KafkaAddr)
	large, values := batch(80) // ~82 KB: over the known topic's 64 KiB
	for _, version := range []int16{7, 9} {
		p := robustProduceOnConn(t, conn, version, robustKnownTopic, large)
		if p.ErrorCode != kerr.MessageTooLarge.Code {
			t.Fatalf("produce v%d of %d bytes to %s (max.message.bytes %d): error %d (%v), want %d (MESSAGE_TOO_LARGE)",
				version, len(large), robustKnownTopic, robustKnownMaxMessageBytes, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), kerr.MessageTooLarge.Code)
		}
		s.expectKnownEnd(t)
	}
	p := robustProduceOnConn(t, conn, 9, robustRawTopic, large)
	if p.ErrorCode != 0 {
		t.Fatalf("produce of %d bytes to %s (default max.message.bytes): error %d (%v)", len(large), robustRawTopic, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
	}
	for i, v := range values {
		s.ledger.addAt(robustRawTopic, 0, p.BaseOffset+int64(i), fmt.Sprintf("k%d", i), string(v))
	}

	huge, _ := batch(2048) // ~2.1 MB: over the broker default of 1 MiB
	rawEnd := robustEndOffset(t, s.ctx, s.b.KafkaAddr, robustRawTopic, 0)
	if p := robustProduceOnConn(t, conn, 9, robustRawTopic, huge); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("produce of %d bytes to %s: error %d (%v), want MESSAGE_TOO_LARGE", len(huge), robustRawTopic, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode))
	}
	if end := robustEndOffset(t, s.ctx, s.b.KafkaAddr, robustRawTopic, 0); end != rawEnd {
		t.Fatalf("%s: log end offset moved from %d to %d on a refused produce", robustRawTopic, rawEnd, end)
	}
	t.Logf("%d-byte batch: MESSAGE_TOO_LARGE on %s, accepted on %s; %d-byte batch: MESSAGE_TOO_LARGE on %s",
		len(large), robustKnownTopic, robustRawTopic, len(huge), robustRawTopic)
}

// robustBrokerGoroutines counts the broker's goroutines and, among them,
// the Kafka connections' read loops, from /debug/pprof/goroutine?debug=2.
func robustBrokerGoroutines(t *testing.T, b *harness.Broker) (total, conns int) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr + "/debug/pprof/goroutine?debug=2")
	if err != nil {
		t.Fatalf("goroutine dump: %v", err)
	}
	defer resp.Body.Close()
	dump, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("goroutine dump: %v", err)
	}
	for _, line := range strings.Split(string(dump), "\n") {
		switch {
		case strings.HasPrefix(line, "goroutine "):
			total++
		// One per connection: the read loop's stack holds conn.serve
		// (the write loop's holds conn.serve.func1).
		case strings.Contains(line, "netproto.(*conn).serve("):
			conns++
		}
	}
	return total, conns
}

// thousandConnections: 1,000 connections open at once (the broker serves a
// client meanwhile), then dropped in five ways: closed at once; closed
// inside the size prefix; half an ApiVersions frame, then closed or reset;
// a prefix announcing a 100 MiB frame and 1 KiB of it, then closed. The
// broker's connection goroutines all go and its goroutine count returns to
// the baseline.
func (s *robustBadInput) thousandConnections(t *testing.T) {
	const n = 1000
	var baseTotal int
	s.b.WaitFor(10*time.Second, "no Kafka connections open", func() bool {
		var conns int
		baseTotal, conns = robustBrokerGoroutines(t, s.b)
		return conns == 0
	})

	// Half of an ApiVersions frame: the size says 60, 20 bytes follow.
	half := robustFrame(int16(kmsg.ApiVersions), 0, 1, false, make([]byte, 60-10-len(robustClientID)))[:24]
	bigStart := append(binary.BigEndian.AppendUint32(nil, 100<<20-1), half[4:]...)
	bigStart = append(bigStart, make([]byte, 1024)...)
	firstBytes := func(i int) []byte {
		switch i % 5 {
		case 1:
			return half[:2]
		case 2, 3:
			return half
		case 4:
			return bigStart
		}
		return nil
	}
	conns := make([]*net.TCPConn, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dialErr error
	)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				nc, err := net.DialTimeout("tcp", s.b.KafkaAddr, robustIOTimeout)
				if b := firstBytes(i); err == nil && len(b) > 0 {
					_, err = nc.Write(b)
				}
				mu.Lock()
				if err != nil && dialErr == nil {
					dialErr = err
				}
				if nc != nil {
					conns[i] = nc.(*net.TCPConn)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	if dialErr != nil {
		t.Fatalf("opening %d connections: %v", n, dialErr)
	}
	var peakTotal, peakConns int
	s.b.WaitFor(10*time.Second, fmt.Sprintf("%d Kafka connections served", n), func() bool {
		peakTotal, peakConns = robustBrokerGoroutines(t, s.b)
		return peakConns >= n
	})
	rss, err := s.b.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections open: broker at %d goroutines (%d connection read loops), baseline %d; peak RSS so far %.1f MiB",
		n, peakTotal, peakConns, baseTotal, float64(rss)/(1<<20))
	s.checkServing(t, "1,000 connections opened")

	for i, nc := range conns {
		if i%5 == 2 {
			nc.SetLinger(0) // RST instead of FIN
		}
		nc.Close()
	}
	var total, open int
	s.b.WaitFor(10*time.Second, "connection goroutines to return to the baseline", func() bool {
		total, open = robustBrokerGoroutines(t, s.b)
		// A few goroutines of Raft, gossip and the HTTP server come and go.
		return open == 0 && total <= baseTotal+5
	})
	t.Logf("after dropping them: %d goroutines (baseline %d), %d connection read loops", total, baseTotal, open)
}
