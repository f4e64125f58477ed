package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Raw Kafka wire helpers for the robustness tests: requests are encoded by
// kmsg and framed here by hand (PROTOCOL.md 1.1), so a test can cut, patch
// or garble any byte before it reaches the broker.

// robustIOTimeout bounds every read of a raw connection: a broker that
// neither answers nor closes within it is hanging.
const robustIOTimeout = 5 * time.Second

// robustClientID is the client id of every hand-made request header.
const robustClientID = "barge-robust"

// robustFrame frames body as one request: int32 size, request header v1
// (api key, version, correlation id, int16-length client id), the empty tag
// section of header v2 when flexible, then body.
func robustFrame(key, version int16, corr int32, flexible bool, body []byte) []byte {
	clientID := robustClientID
	dst := kbin.AppendInt32(nil, 0) // size, patched below
	dst = kbin.AppendInt16(dst, key)
	dst = kbin.AppendInt16(dst, version)
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendNullableString(dst, &clientID)
	if flexible {
		dst = append(dst, 0)
	}
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

// robustEncode frames req at the version set on it.
func robustEncode(req kmsg.Request, corr int32) []byte {
	return robustFrame(req.Key(), req.GetVersion(), corr, req.IsFlexible(), req.AppendTo(nil))
}

// robustCRC is CRC-32C (Castagnoli), the RecordBatch v2 checksum.
var robustCRC = crc32.MakeTable(crc32.Castagnoli)

// robustBatch builds an uncompressed RecordBatch v2 of values without a
// producer id, as a producer would send it: baseOffset 0, batchLength and
// the CRC-32C over bytes 21..end (PROTOCOL.md section 4) filled in.
func robustBatch(values ...[]byte) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k" + strconv.Itoa(i)), Value: v}
		// Length counts the bytes after itself; a zero Length is one varint byte.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], robustCRC))
	return raw
}

// robustProduceRequest is a Produce (acks=all) of records to one partition.
func robustProduceRequest(version int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// robustConn is one raw TCP connection to a broker's Kafka listener.
type robustConn struct {
	t    testing.TB
	nc   *net.TCPConn
	corr int32
}

func robustDial(t testing.TB, addr string) *robustConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, robustIOTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &robustConn{t: t, nc: nc.(*net.TCPConn)}
}

// write sends raw bytes.
func (c *robustConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(robustIOTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// nextCorr returns a fresh correlation id.
func (c *robustConn) nextCorr() int32 {
	c.corr++
	return c.corr
}

// send writes req framed at its version and returns its correlation id.
func (c *robustConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	corr := c.nextCorr()
	c.write(robustEncode(req, corr))
	return corr
}

// readFrame reads one response frame and returns the bytes after its size.
func (c *robustConn) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(robustIOTimeout))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// recv reads the response to corr into resp, which must be at the
// request's version. The response header is v0 (correlation id) for
// ApiVersions and non-flexible versions, v1 (plus a tag section) otherwise.
func (c *robustConn) recv(corr int32, resp kmsg.Response) {
	c.t.Helper()
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading the response to correlation id %d (%s v%d): %v",
			corr, kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	r := kbin.Reader{Src: frame}
	if got := r.Int32(); got != corr {
		c.t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		c.t.Fatalf("response to correlation id %d: truncated header", corr)
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		c.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// roundTrip sends req and returns its response, decoded at req's version.
func (c *robustConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	corr := c.send(req)
	resp := req.ResponseKind()
	c.recv(corr, resp)
	return resp
}

// robustClosedErr reports whether err means the peer closed the connection.
func robustClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// expectClosed fails unless the broker closes the connection within
// robustIOTimeout without sending a byte.
func (c *robustConn) expectClosed(why string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(robustIOTimeout))
	var buf [512]byte
	n, err := c.nc.Read(buf[:])
	switch {
	case n > 0:
		c.t.Fatalf("%s: broker answered (% x) instead of closing the connection", why, buf[:n])
	case os.IsTimeout(err):
		c.t.Fatalf("%s: connection still open %v later: the broker neither answered nor closed it", why, robustIOTimeout)
	case !robustClosedErr(err):
		c.t.Fatalf("%s: read: %v", why, err)
	}
}

// drainToClose reads and discards until the broker closes the connection,
// and returns how many bytes came first. A connection still open after
// robustIOTimeout without traffic fails the test.
func (c *robustConn) drainToClose(why string) int {
	c.t.Helper()
	total := 0
	var buf [4096]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(robustIOTimeout))
		n, err := c.nc.Read(buf[:])
		total += n
		switch {
		case err == nil:
			continue
		case os.IsTimeout(err):
			c.t.Fatalf("%s: connection still open %v after the last byte (%d bytes read)", why, robustIOTimeout, total)
		case !robustClosedErr(err):
			c.t.Fatalf("%s: read: %v", why, err)
		}
		return total
	}
}
