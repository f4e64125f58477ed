package netproto

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The connection side of streamed produce requests (producestream.go):
// recognising one from its first bytes, serving it, and the chunked reads
// it is parsed from.

// serveProduceStream serves the frame of n bytes whose size prefix was just
// read as a ProduceStream, if it is a Produce request at least
// StreamProduceMinBytes long at a version the stream reads and the server
// serves; streamed false means the frame is still unread, for the usual
// path. A malformed header or body is a refusal, as on the usual path.
func (c *conn) serveProduceStream(n int) (streamed bool, err error) {
	minBytes := c.s.cfg.StreamProduceMinBytes
	if minBytes <= 0 || n < minBytes {
		return false, nil
	}
	head, err := c.peek(4)
	if err != nil {
		return false, err
	}
	key, version := int16(binary.BigEndian.Uint16(head)), int16(binary.BigEndian.Uint16(head[2:]))
	if key != produceKey || version < produceStreamMinVersion || version > produceStreamMaxVersion {
		return false, nil
	}
	if vr, ok := c.s.cfg.Versions(key); !ok || version < vr.Min || version > vr.Max {
		return false, nil // refused on the usual path, with the usual error
	}
	received := time.Now()
	c.s.st.requests.Add(1)
	c.s.st.streamed.Add(1)
	body := newChunkBody(c, n)
	defer body.close()
	stream := newProduceStream(body, n)
	req := &Request{Size: n, Received: received, Conn: c.info, Produce: stream}
	if err := stream.readHeader(req); err != nil {
		stream.finish()
		return true, err
	}
	s := c.push(requestMeta{req.Key, req.Version, req.CorrelationID, n, received, c.takeHold()}, req.Version)
	if s == nil {
		return true, errReadStopped
	}
	c.streaming.Store(1)
	c.dispatch(req, s)
	err = stream.finish()
	c.streaming.Store(0)
	if err != nil {
		return true, err
	}
	c.s.st.bytesIn.Add(uint64(4 + n))
	return true, nil
}

// produceKey is Produce's API key.
const produceKey = 0

// peek returns the next n bytes without reading them, riding out read
// deadlines that were only idle checks.
func (c *conn) peek(n int) ([]byte, error) {
	for {
		b, err := c.br.Peek(n)
		if err == nil {
			return b, nil
		}
		if err := c.readGoesOn(err); err != nil {
			return nil, err
		}
	}
}

// A streamed request is read through a chunk of streamChunkBytes: fills
// take what the socket holds (up to the frame's end) in few reads, and
// records up to streamInPlaceBytes are handed out in place, so a thousand
// partitions of 64 KiB cost a few dozen reads and no extra copy. Larger
// records get a pooled buffer of their own that the rest of them is read
// into directly; after such records the next fill is kept small, so that
// the next partition's header does not drag the start of its records
// into the chunk, to be copied out again.
const (
	streamChunkBytes   = 1 << 20
	streamInPlaceBytes = streamChunkBytes / 4
	streamSmallFill    = 512
)

// chunkBody is the bodySource of a stream read from its connection.
type chunkBody struct {
	c         *conn
	chunk     []byte // pooled; chunk[r:w] is read from the frame, not yet used
	r, w      int
	frameLeft int    // bytes of the frame not yet read from the connection
	small     bool   // the next fill reads little: the last records were read past the chunk
	own       []byte // the buffer of the last records read past the chunk, until released
}

func newChunkBody(c *conn, frame int) *chunkBody {
	// The first fill is small too: the header is short, and the first
	// partition's records may be large.
	return &chunkBody{c: c, chunk: getPooledFrame(min(frame, streamChunkBytes)), frameLeft: frame, small: true}
}

// need makes k bytes (k <= len(chunk)) readable at chunk[r:].
func (b *chunkBody) need(k int) error {
	if b.w-b.r >= k {
		return nil
	}
	if b.r+k > len(b.chunk) {
		b.w = copy(b.chunk, b.chunk[b.r:b.w])
		b.r = 0
	}
	for b.w-b.r < k {
		if b.frameLeft == 0 {
			return fmt.Errorf("%w: a streamed request read past its frame", ErrMalformedRequest)
		}
		limit := len(b.chunk)
		if b.small {
			limit = min(limit, b.r+k+streamSmallFill)
		}
		n, err := b.c.readSome(b.chunk[b.w:min(limit, b.w+b.frameLeft)])
		b.w += n
		b.frameLeft -= n
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *chunkBody) readFull(p []byte) error {
	for len(p) > 0 {
		if err := b.need(min(len(p), len(b.chunk))); err != nil {
			return err
		}
		n := copy(p, b.chunk[b.r:b.w])
		b.r += n
		p = p[n:]
	}
	return nil
}

func (b *chunkBody) readBuffer(n int) ([]byte, error) {
	if n <= streamInPlaceBytes && n <= len(b.chunk) {
		if err := b.need(n); err != nil {
			return nil, err
		}
		b.small = false
		p := b.chunk[b.r : b.r+n : b.r+n]
		b.r += n
		return p, nil
	}
	// What the chunk holds of the records is copied; the rest is read
	// straight into their buffer. A size over framePoolEager is trusted
	// with its buffer only once that much has come, as for whole frames.
	var own []byte
	if n <= framePoolEager {
		own = getPooledFrame(n)
	} else if cached, ok := b.c.s.frames.cached(n); ok {
		own = cached
	} else {
		head := getPooledFrame(framePoolEager)
		if err := b.readFull(head); err != nil {
			putPooledFrame(head)
			return nil, err
		}
		if n <= framePoolMax {
			own = b.c.s.frames.get(n)
		} else {
			own = make([]byte, n)
		}
		copy(own, head)
		b.c.s.st.requestCopiedBytes.Add(uint64(len(head)))
		putPooledFrame(head)
		if err := b.readDirect(own[framePoolEager:]); err != nil {
			b.c.s.frames.put(own)
			return nil, err
		}
		b.own, b.small = own, true
		return own, nil
	}
	if err := b.readDirect(own); err != nil {
		b.c.s.frames.put(own)
		return nil, err
	}
	b.own, b.small = own, true
	return own, nil
}

// readDirect fills p with what the chunk holds, then from the connection.
func (b *chunkBody) readDirect(p []byte) error {
	k := copy(p, b.chunk[b.r:b.w])
	b.r += k
	if k > 0 {
		b.c.s.st.requestCopiedBytes.Add(uint64(k))
	}
	if err := b.c.readFull(p[k:]); err != nil {
		return err
	}
	b.frameLeft -= len(p) - k
	return nil
}

func (b *chunkBody) releaseBuffer(p []byte) {
	if b.own != nil {
		b.c.s.frames.put(b.own)
		b.own = nil
	}
}

// close gives the chunk back.
func (b *chunkBody) close() {
	b.releaseBuffer(nil)
	putPooledFrame(b.chunk)
	b.chunk = nil
}

// readSome reads at least one byte into p (not empty), riding out read
// deadlines that were only idle checks.
func (c *conn) readSome(p []byte) (int, error) {
	for {
		n, err := c.br.Read(p)
		if n > 0 || err == nil {
			return n, nil
		}
		if err := c.readGoesOn(err); err != nil {
			return 0, err
		}
	}
}
