package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFetchConsumer is a minimal Kafka consumer for benchmarks: it sends
// Fetch v12 requests on one connection and reads each response into one
// reused buffer, counting record bytes and following offsets from the batch
// headers without decoding records. It measures what the broker can serve,
// apart from how much work a full client does per record.
type rawFetchConsumer struct {
	conn net.Conn
	buf  []byte
	corr int32
}

func newRawFetchConsumer(addr string) (*rawFetchConsumer, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawFetchConsumer{conn: c, buf: make([]byte, 32<<20)}, nil
}

// fetch asks for records of topic/partition from offset and returns the
// offset after the last whole batch received and the record bytes.
func (r *rawFetchConsumer) fetch(topic string, partition int32, offset int64, maxBytes int32) (int64, int, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 500, 1, maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = partition, offset, maxBytes, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	r.corr++
	frame := []byte{0, 0, 0, 0}
	frame = binary.BigEndian.AppendUint16(frame, uint16(kmsg.Fetch))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(r.corr))
	frame = binary.BigEndian.AppendUint16(frame, 0xffff) // null client id
	frame = append(frame, 0)                             // header tags (flexible)
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := r.conn.Write(frame); err != nil {
		return 0, 0, err
	}
	if _, err := io.ReadFull(r.conn, r.buf[:4]); err != nil {
		return 0, 0, err
	}
	n := int(binary.BigEndian.Uint32(r.buf[:4]))
	if n > len(r.buf) {
		return 0, 0, fmt.Errorf("response of %d bytes", n)
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.conn, body); err != nil {
		return 0, 0, err
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if err := resp.ReadFrom(body[5:]); err != nil { // correlation id + header tags
		return 0, 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, 0, fmt.Errorf("unexpected fetch response shape")
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return 0, 0, fmt.Errorf("fetch error %d", p.ErrorCode)
	}
	records := p.RecordBatches
	next := offset
	for len(records) >= 61 {
		length := int(binary.BigEndian.Uint32(records[8:])) + 12
		if length > len(records) {
			break
		}
		next = int64(binary.BigEndian.Uint64(records)) + int64(binary.BigEndian.Uint32(records[23:])) + 1
		records = records[length:]
	}
	return next, len(p.RecordBatches), nil
}

func (r *rawFetchConsumer) Close() error { return r.conn.Close() }
