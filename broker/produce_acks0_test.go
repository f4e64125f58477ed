package broker

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// An acks=0 produce gets no answer, but a partition error must not pass
// silently: the broker closes the connection (as Kafka does), so the
// client refreshes its metadata. A clean acks=0 produce keeps it open.
func TestAcksZeroErrorClosesTheConnection(t *testing.T) {
	b := startTestBroker(t, t.TempDir())
	conn, err := net.Dial("tcp", b.KafkaAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))

	produce := func(corr int32, topic string) {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 7, 0, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = encodeBatch([][]byte{[]byte("k")})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		writeRequest(t, conn, corr, req)
	}
	metadata := func(corr int32) {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 4
		writeRequest(t, conn, corr, req)
	}

	// A topic auto-created by a Metadata request, then a clean acks=0
	// produce: the connection stays open and answers the next request.
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 4
	topic := "acks0"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	req.AllowAutoTopicCreation = true
	writeRequest(t, conn, 1, req)
	readCorrelation(t, conn, 1)
	produce(2, "acks0")
	metadata(3)
	readCorrelation(t, conn, 3)

	// To a topic that does not exist: no answer, the connection closes.
	produce(4, "no-such-topic")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [4]byte
	_, err = io.ReadFull(conn, buf[:])
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("an acks=0 produce error was answered (a frame of %d bytes)", binary.BigEndian.Uint32(buf[:]))
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("connection still open 5s after an acks=0 produce error")
	}
}

func writeRequest(t *testing.T, conn net.Conn, corr int32, req kmsg.Request) {
	t.Helper()
	clientID := "acks0-test"
	frame := kbin.AppendInt32(nil, 0)
	frame = kbin.AppendInt16(frame, req.Key())
	frame = kbin.AppendInt16(frame, req.GetVersion())
	frame = kbin.AppendInt32(frame, corr)
	frame = kbin.AppendNullableString(frame, &clientID)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// readCorrelation reads one response frame and checks its correlation id.
func readCorrelation(t *testing.T, conn net.Conn, corr int32) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("response %d: %v", corr, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("response %d: %v", corr, err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		t.Fatalf("response correlation id %d, want %d", got, corr)
	}
}

// rawRoundTrip sends req at its own version on a new connection to addr,
// as no client library does (they cap versions at what ApiVersions offers),
// and decodes the answer into resp.
func rawRoundTrip(t *testing.T, addr string, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	writeRequest(t, conn, 1, req)
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatalf("response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatalf("response: %v", err)
	}
	body = body[4:] // correlation id
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		body = body[1:] // response header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding the response: %v", err)
	}
}
