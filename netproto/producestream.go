package netproto

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A large Produce request is served while it arrives: a producer writing to a
// thousand partitions sends requests of tens of MiB, and read whole before
// the first append, each batch has left the CPU caches long before it is
// checked and written, so the CRC and the copy into the page cache read it
// back from memory (about a third more broker CPU per GB than the same
// batches in 2 MiB requests, measured), and the producer waits for the whole
// request to be processed after its last byte. Streamed, each partition's
// batches are read into a pooled buffer the size of that partition's records
// and appended while they are warm; the next partition reuses the buffer.
//
// A stream is one request: its batches are appended as they arrive, so a
// request cut short (a broken connection, a malformed tail) may leave the
// partitions before the break appended without an answer. To the producer
// that is a request whose response was lost, which it must handle anyway:
// it retries, and an idempotent producer's sequence numbers drop the
// duplicate.

// Produce versions a stream can read: 3 is the first with RecordBatch v2
// only, 9 the first flexible one; 12 keeps 11's layout (KIP-890 changed
// semantics only) and 13 names topics by id, which the stream does not read.
const (
	produceStreamMinVersion = 3
	produceStreamMaxVersion = 12
)

// bodySource is where a stream reads its request from: the connection, or
// a byte slice in tests. A stream never asks for more than its frame holds.
type bodySource interface {
	// readFull fills p.
	readFull(p []byte) error
	// readBuffer returns a buffer of length n, filled; the stream gives it
	// back with releaseBuffer.
	readBuffer(n int) ([]byte, error)
	releaseBuffer(b []byte)
}

// ProduceStream is the body of a Produce request being read from its
// connection while the handler serves it (Request.Produce). The handler walks
// it on the read goroutine, inside ServeKafka:
//
//	for topic, ok := s.NextTopic(); ok; topic, ok = s.NextTopic() {
//		for p, ok := s.NextPartition(); ok; p, ok = s.NextPartition() { ... }
//	}
//	if err := s.Err(); err != nil { ... respond with Close ... }
//
// A partition's Records stay valid only until the next call of NextPartition
// or NextTopic: the buffer is reused. Partitions or topics the handler skips
// are read and dropped. Whatever the handler leaves unread when ServeKafka
// returns is read and dropped by netproto before the next request. On an
// error (the connection broke, the body is malformed) the walk ends, Err
// says why, and the connection is closed after the responses before this
// request: the handler should answer it with Close.
type ProduceStream struct {
	TransactionalID *string
	Acks            int16
	TimeoutMillis   int32

	src        bodySource
	key        int16
	version    int16
	flexible   bool
	remain     int // bytes of the frame not yet read
	topicsLeft int // topics not yet started
	partsLeft  int // partitions of the current topic not yet read
	inTopic    bool
	ended      bool   // the last topic was passed and the request's tags read
	records    []byte // the buffer of the partition last returned
	err        error
	scratch    [8]byte
}

// newProduceStream starts a stream over a frame of size bytes whose first
// bytes (the request header) are next in src.
func newProduceStream(src bodySource, size int) *ProduceStream {
	return &ProduceStream{src: src, remain: size}
}

// readHeader reads the request header and the body's fixed fields, up to
// the topic count, into req.
func (s *ProduceStream) readHeader(req *Request) error {
	s.key, s.version = int16(s.int16()), int16(s.int16())
	req.Key, req.Version, req.CorrelationID = s.key, s.version, s.int32()
	if s.err != nil {
		return s.err
	}
	s.flexible = (&kmsg.ProduceRequest{Version: s.version}).IsFlexible()
	// client_id keeps its int16 length in flexible headers too (KIP-482).
	req.ClientID = s.nullableString(false)
	if s.flexible {
		s.skipTags()
	}
	s.TransactionalID = s.nullableString(s.flexible)
	s.Acks, s.TimeoutMillis = int16(s.int16()), s.int32()
	// A topic takes at least a name length and a partition count (and a
	// tag section when flexible).
	s.topicsLeft = s.arrayLen(s.pick(3, 2+4))
	if s.err != nil {
		return s.err
	}
	req.Body = &kmsg.ProduceRequest{Version: s.version, TransactionID: s.TransactionalID,
		Acks: s.Acks, TimeoutMillis: s.TimeoutMillis}
	return nil
}

// NextTopic moves to the next topic and returns its name; false when the
// request has no more topics or on an error. Partitions of the current
// topic not yet read are read and dropped.
func (s *ProduceStream) NextTopic() (string, bool) {
	s.release()
	if s.inTopic {
		for s.partsLeft > 0 && s.err == nil {
			s.NextPartition()
			s.release()
		}
		if s.flexible {
			s.skipTags()
		}
		s.inTopic = false
	}
	if s.err != nil || s.ended {
		return "", false
	}
	if s.topicsLeft == 0 {
		// The request's own tag section closes the body: read now, so
		// that a malformed end shows in Err before the handler answers.
		s.ended = true
		if s.flexible {
			s.skipTags()
		}
		return "", false
	}
	s.topicsLeft--
	name := s.nullableString(s.flexible)
	// A partition takes at least an index and a records length (and a
	// tag section when flexible).
	s.partsLeft = s.arrayLen(s.pick(4+1+1, 4+4))
	if s.err != nil {
		return "", false
	}
	if name == nil {
		s.fail("null topic name")
		return "", false
	}
	s.inTopic = true
	return *name, true
}

// NextPartition reads the next partition of the current topic, its records
// whole; false when the topic has no more or on an error.
func (s *ProduceStream) NextPartition() (kmsg.ProduceRequestTopicPartition, bool) {
	s.release()
	p := kmsg.NewProduceRequestTopicPartition()
	if s.err != nil || !s.inTopic || s.partsLeft == 0 {
		return p, false
	}
	s.partsLeft--
	p.Partition = s.int32()
	n, null := s.bytesLen()
	if s.err != nil {
		return p, false
	}
	if !null {
		b, err := s.src.readBuffer(n)
		if err != nil {
			s.err = err
			return p, false
		}
		s.remain -= n
		s.records, p.Records = b, b
	}
	if s.flexible {
		s.skipTags()
	}
	return p, s.err == nil
}

// pick is flexible's value when the version is flexible, else fixed's.
func (s *ProduceStream) pick(flexible, fixed int) int {
	if s.flexible {
		return flexible
	}
	return fixed
}

// Err is why the walk ended early, nil if it did not.
func (s *ProduceStream) Err() error { return s.err }

// finish reads and drops what the handler left unread (the rest of the
// request when a handler stopped early, or trailing bytes kmsg ignores
// too) and gives the buffer back. It returns the stream's
// error, if any.
func (s *ProduceStream) finish() error {
	for s.err == nil {
		if _, ok := s.NextTopic(); !ok {
			break
		}
	}
	if s.err == nil {
		s.skip(s.remain)
	}
	s.release()
	return s.err
}

// release gives back the buffer of the partition last returned.
func (s *ProduceStream) release() {
	if s.records != nil {
		s.src.releaseBuffer(s.records)
		s.records = nil
	}
}

func (s *ProduceStream) fail(detail string) {
	if s.err == nil {
		s.err = headerError(ErrMalformedRequest, s.key, s.version, detail)
	}
}

// read fills p from the frame; a field running past the frame's end is a
// malformed request.
func (s *ProduceStream) read(p []byte) bool {
	if s.err != nil {
		return false
	}
	if len(p) > s.remain {
		s.fail(fmt.Sprintf("a field of %d bytes runs past the end of the frame (%d left)", len(p), s.remain))
		return false
	}
	if err := s.src.readFull(p); err != nil {
		s.err = err
		return false
	}
	s.remain -= len(p)
	return true
}

func (s *ProduceStream) int16() uint16 {
	if !s.read(s.scratch[:2]) {
		return 0
	}
	return binary.BigEndian.Uint16(s.scratch[:2])
}

func (s *ProduceStream) int32() int32 {
	if !s.read(s.scratch[:4]) {
		return 0
	}
	return int32(binary.BigEndian.Uint32(s.scratch[:4]))
}

// uvarint reads an unsigned varint of at most 32 bits, as Kafka's compact
// lengths and tags are.
func (s *ProduceStream) uvarint() uint32 {
	var v uint64
	for i := 0; i < 5; i++ {
		if !s.read(s.scratch[:1]) {
			return 0
		}
		b := s.scratch[0]
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if v > 1<<32-1 {
				break
			}
			return uint32(v)
		}
	}
	s.fail("varint longer than 32 bits")
	return 0
}

// length reads a length: int32 (or int16 when short), or a compact
// uvarint length+1 when compact. -1 is null.
func (s *ProduceStream) length(compact, short bool) int {
	switch {
	case compact:
		return int(s.uvarint()) - 1
	case short:
		return int(int16(s.int16()))
	default:
		return int(s.int32())
	}
}

// arrayLen reads an array length, null counting as empty (as kmsg reads
// it); minElem is the fewest bytes one element takes, to refuse counts the
// frame cannot hold.
func (s *ProduceStream) arrayLen(minElem int) int {
	var n int
	if s.flexible {
		// A compact array length is an int32, so a uvarint of 2^31 or
		// more wraps to a negative count, which kmsg, like Kafka, reads
		// as null; strings and bytes do not wrap (see length).
		n = int(int32(s.uvarint()) - 1)
	} else {
		n = int(s.int32())
	}
	if s.err != nil {
		return 0
	}
	if n < 0 {
		return 0
	}
	if n > s.remain/minElem {
		s.fail(fmt.Sprintf("array of %d elements in %d bytes", n, s.remain))
		return 0
	}
	return n
}

// bytesLen reads the length of a nullable bytes field and checks it fits.
func (s *ProduceStream) bytesLen() (n int, null bool) {
	n = s.length(s.flexible, false)
	switch {
	case s.err != nil:
		return 0, true
	case n < 0:
		return 0, true
	case n > s.remain:
		s.fail(fmt.Sprintf("records of %d bytes in %d", n, s.remain))
		return 0, true
	}
	return n, false
}

func (s *ProduceStream) nullableString(compact bool) *string {
	n := s.length(compact, true)
	if s.err != nil || n < 0 {
		return nil
	}
	if n > s.remain {
		s.fail(fmt.Sprintf("string of %d bytes in %d", n, s.remain))
		return nil
	}
	b := make([]byte, n)
	if !s.read(b) {
		return nil
	}
	str := string(b)
	return &str
}

// skipTags reads a tag section and drops it: no tag of Produce is known.
func (s *ProduceStream) skipTags() {
	n := s.uvarint()
	for i := uint32(0); i < n && s.err == nil; i++ {
		s.uvarint() // the tag
		s.skip(int(s.uvarint()))
	}
}

// skip reads n bytes and drops them.
func (s *ProduceStream) skip(n int) {
	if n > s.remain {
		s.fail(fmt.Sprintf("%d bytes to skip in %d", n, s.remain))
		return
	}
	var drop [512]byte
	for n > 0 && s.err == nil {
		k := min(n, len(drop))
		s.read(drop[:k])
		n -= k
	}
}
