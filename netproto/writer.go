package netproto

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// flushBytes: buffered responses are written once this many bytes
	// wait, so a burst of pipelined small responses costs one write.
	flushBytes = 64 << 10
	// keepBufBytes: a buffer grown past this by one big response is
	// dropped after the flush rather than kept for the connection's life.
	keepBufBytes = 1 << 20
)

// respWriter frames responses onto one connection. Small responses and the
// non-record bytes of Fetch responses are batched in buf; record regions go
// out with sendfile after buf is flushed. It is used only by the
// connection's write goroutine.
type respWriter struct {
	nc   net.Conn
	rs   regionSender
	st   *counters
	buf  []byte
	cuts []fetchCut
	// noCork turns off corking Fetch responses (benchmarks compare).
	noCork bool
}

func newRespWriter(nc net.Conn, st *counters, sendTimeout time.Duration) *respWriter {
	return &respWriter{nc: nc, rs: newRegionSender(nc, st, sendTimeout), st: st}
}

// writeChunkBytes is how much one write may carry before the send deadline
// is moved on: the deadline bounds a client that reads nothing, not one
// that reads a large response slowly.
const writeChunkBytes = 256 << 10

// buffered reports how many bytes wait for a flush.
func (w *respWriter) buffered() int { return len(w.buf) }

// appendMsg buffers msg's frame, encoded at version, and returns its size.
func (w *respWriter) appendMsg(corr int32, version int16, msg kmsg.Response) int {
	before := len(w.buf)
	w.buf = appendResponseFrame(w.buf, corr, version, msg)
	return len(w.buf) - before
}

// writeFetch writes fr as a Fetch response at version: its framing goes
// through buf, its record regions with sendfile (each after flushing what
// precedes it). Bytes after the last region stay buffered. It returns the
// frame's size. fr.Release is called once, whatever happens.
func (w *respWriter) writeFetch(corr int32, version int16, fr *FetchResponse) (int64, error) {
	defer releaseFetch(fr)
	if fr.Replica {
		sent0, copied0 := w.rs.sent, w.rs.copied
		defer func() {
			w.st.replicaSendfileBytes.Add(w.rs.sent - sent0)
			w.st.replicaCopiedBytes.Add(w.rs.copied - copied0)
		}()
	}
	base := len(w.buf)
	buf, cuts, records, err := appendFetchFrame(w.buf, w.cuts[:0], corr, version, fr)
	defer func() {
		clear(cuts) // drop the *os.File references until the next fetch
		w.cuts = cuts[:0]
	}()
	if err != nil {
		w.buf = w.buf[:base]
		return 0, err
	}
	w.buf = buf
	size := int64(len(buf)-base) + records
	written := 0
	if len(cuts) > 0 && !w.noCork {
		w.rs.cork(true)
		defer w.rs.cork(false)
	}
	for _, cut := range cuts {
		if err := w.write(w.buf[written:cut.at]); err != nil {
			return 0, err
		}
		written = cut.at
		for _, r := range cut.regions {
			if err := w.rs.send(r); err != nil {
				return 0, err
			}
		}
	}
	w.buf = w.buf[:copy(w.buf, w.buf[written:])]
	return size, nil
}

// flush writes everything buffered.
func (w *respWriter) flush() error {
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > keepBufBytes {
		w.buf = nil
	}
	return err
}

func (w *respWriter) write(p []byte) error {
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunkBytes)]
		w.rs.armSend()
		n, err := w.nc.Write(chunk)
		w.st.bytesOut.Add(uint64(n))
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// releaseFetch gives back the file references of a Fetch response that was
// written or dropped. Each FetchResponse reaches it at most once.
func releaseFetch(fr *FetchResponse) {
	if fr != nil && fr.Release != nil {
		fr.Release()
	}
}

// written is a response buffered or sent but not yet flushed: once it is,
// its in-flight token is returned and the Observer told.
type written struct {
	meta  requestMeta
	bytes int
}

// writeLoop is the connection's write goroutine: it writes ready responses
// strictly in request order until the connection closes or drains.
func (c *conn) writeLoop() {
	w := newRespWriter(c.nc, &c.s.st, c.s.cfg.SendTimeout)
	var done []written
	for {
		s, err := c.next(w, &done)
		if err == nil {
			err = c.writeSlot(w, s, &done)
			if err == nil && w.buffered() >= flushBytes {
				err = c.flush(w, &done)
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, errConnClosed):
		case errors.Is(err, errDrained):
			c.log.Debug("connection drained")
		case errors.Is(err, errCloseRequested):
			c.log.Debug("handler closed the connection")
		case errors.Is(err, ErrInvalidResponse):
			c.log.Error("closing connection after an invalid response", "err", err)
		case errors.Is(err, ErrShortRegion):
			c.log.Warn("closing connection after a broken fetch response", "err", err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.s.st.sendTimeouts.Add(1)
			c.log.Warn("closing connection: the client read nothing of a response", "send_timeout", c.s.cfg.SendTimeout)
		default:
			c.log.Debug("write failed", "err", err)
		}
		c.closeNow()
		return
	}
}

// next returns the queue head once it is ready, flushing buffered
// responses before it waits. errDrained: reading stopped and everything is
// written; errConnClosed: the connection was closed.
func (c *conn) next(w *respWriter, done *[]written) (*slot, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return nil, errConnClosed
		case len(c.queue) > 0 && c.queue[0].ready:
			s := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return s, nil
		case len(c.queue) == 0 && c.readerDone:
			c.mu.Unlock()
			if err := c.flush(w, done); err != nil {
				return nil, err
			}
			return nil, errDrained
		}
		c.mu.Unlock()
		if w.buffered() > 0 || len(*done) > 0 {
			if err := c.flush(w, done); err != nil {
				return nil, err
			}
			continue
		}
		<-c.wake
	}
}

// writeSlot writes (or buffers) one response. The slot left the queue, so
// its Fetch is released here whatever happens.
func (c *conn) writeSlot(w *respWriter, s *slot, done *[]written) error {
	r := s.resp
	kinds := 0
	for _, set := range []bool{r.Msg != nil, r.Fetch != nil, r.None} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1 || (kinds == 0 && !r.Close):
		releaseFetch(r.Fetch)
		return fmt.Errorf("%w: key %d correlation id %d: want exactly one of Msg, Fetch, None or Close",
			ErrInvalidResponse, s.meta.key, s.meta.corr)
	case r.Msg != nil:
		if r.Msg.Key() != s.meta.key {
			return fmt.Errorf("%w: key %d response to a key %d request", ErrInvalidResponse, r.Msg.Key(), s.meta.key)
		}
		n := w.appendMsg(s.meta.corr, s.respVersion, r.Msg)
		*done = append(*done, written{s.meta, n})
	case r.Fetch != nil:
		if s.meta.key != fetchKey {
			releaseFetch(r.Fetch)
			return fmt.Errorf("%w: fetch response to a key %d request", ErrInvalidResponse, s.meta.key)
		}
		n, err := w.writeFetch(s.meta.corr, s.respVersion, r.Fetch)
		if err != nil {
			return err
		}
		*done = append(*done, written{s.meta, int(n)})
	case r.None:
		*done = append(*done, written{s.meta, 0})
	}
	if r.Close {
		if err := c.flush(w, done); err != nil {
			return err
		}
		return errCloseRequested
	}
	return nil
}

// flush writes buffered bytes, then completes the responses they held:
// in-flight tokens go back (the read loop may resume) and the Observer
// hears of each.
func (c *conn) flush(w *respWriter, done *[]written) error {
	if err := w.flush(); err != nil {
		return err
	}
	if len(*done) == 0 {
		return nil
	}
	now := time.Now()
	c.lastActive.Store(now.UnixNano())
	obs := c.s.cfg.Observer
	for _, d := range *done {
		c.pending.Add(-1)
		<-c.sem
		c.releaseHold(d.meta.reserved)
		if obs != nil {
			obs.ObserveRequest(d.meta.key, d.meta.version, now.Sub(d.meta.received), d.meta.size, d.bytes)
		}
	}
	clear(*done)
	*done = (*done)[:0]
	return nil
}
