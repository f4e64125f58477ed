package netproto

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// readBufBytes is the per-connection read buffer: most requests fit,
	// larger frames are read straight into their own buffer.
	readBufBytes = 16 << 10
	// refusedDrainTimeout bounds how long a connection refused for a bad
	// request keeps writing the responses to the requests before it.
	refusedDrainTimeout = 10 * time.Second
)

// slot is one request's place in its connection's ordered response queue.
// resp and ready are guarded by conn.mu.
type slot struct {
	meta        requestMeta
	respVersion int16 // version to encode resp.Msg at
	resp        Response
	ready       bool
}

// conn serves one client connection. serve runs the read loop on the
// goroutine the Server started and owns a write goroutine; respond is
// called by handlers from any goroutine.
//
// Lifecycle: a read error closes at once (closeNow). A protocol violation,
// like stopReading (Shutdown), stops reads and cancels ctx; the writer then
// drains the queue and closes (within refusedDrainTimeout after a
// violation). closeNow drops whatever is unwritten.
type conn struct {
	s      *Server
	nc     net.Conn
	info   ConnInfo
	log    *slog.Logger
	ctx    context.Context // cancelled by stopReading and closeNow
	cancel context.CancelFunc
	br     *bufio.Reader

	lastActive atomic.Int64  // unix nanos of the last bytes read or response written
	reserved   atomic.Int64  // request-budget bytes held by this connection's requests
	nextHold   int64         // read goroutine only: budget taken for the frame being read
	streaming  atomic.Int64  // 1 while a Produce request is streamed (its slot is queued while its body is read)
	pending    atomic.Int64  // slots queued whose response is not yet written
	sem        chan struct{} // MaxInFlight tokens: held from read to write
	readStop   chan struct{} // closed (stopOnce) when reading must stop
	wake       chan struct{} // cap 1: the queue head became ready, or state changed
	stopOnce   sync.Once
	closeOnce  sync.Once

	mu          sync.Mutex
	queue       []*slot // guarded by mu; request order
	readStopped bool    // guarded by mu; also set before the read deadline is forced
	readerDone  bool    // guarded by mu; the read loop will queue nothing more
	closed      bool    // guarded by mu
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s:        s,
		nc:       nc,
		info:     ConnInfo{ID: id, RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()},
		log:      s.log.With("conn_id", id, "remote", addrString(nc.RemoteAddr())),
		ctx:      ctx,
		cancel:   cancel,
		sem:      make(chan struct{}, s.cfg.MaxInFlight),
		readStop: make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	c.br = bufio.NewReaderSize(activityReader{c}, readBufBytes)
	c.lastActive.Store(time.Now().UnixNano())
	return c
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// activityReader records when bytes last arrived, for the idle check.
type activityReader struct{ c *conn }

func (r activityReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	if n > 0 {
		r.c.lastActive.Store(time.Now().UnixNano())
	}
	return n, err
}

// serve runs the connection until it closes: the read loop here, the write
// loop on a goroutine it waits for.
func (c *conn) serve() {
	c.log.Debug("connection opened")
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	switch {
	case errors.Is(err, errReadStopped):
		c.finishReading()
	case refusal(err):
		// Kafka reads one request at a time, so it has answered every
		// request before a bad one when it closes. Do the same: a client
		// that pipelined a produce before the bad frame must see its ack,
		// not a reset after the append. The drain is bounded, as a client
		// that sends garbage may not read either.
		c.logReadError(err)
		c.stopReading()
		c.finishReading()
		drainBound := time.AfterFunc(refusedDrainTimeout, c.closeNow)
		defer drainBound.Stop()
	default:
		c.logReadError(err)
		c.closeNow()
	}
	<-writerDone
	c.closeNow()
	// Requests dropped unanswered still hold budget; both goroutines are
	// done, so what is left is exactly that.
	c.s.requestBytes.release(c.reserved.Swap(0))
	c.log.Debug("connection closed")
}

// finishReading tells the writer that the read loop will queue nothing
// more: it closes the connection once the queue is written.
func (c *conn) finishReading() {
	c.mu.Lock()
	c.readerDone = true
	c.mu.Unlock()
	c.signal()
}

// stopReading makes the read loop stop before its next request and cancels
// the handlers' context; the writer closes the connection once the queue
// is drained. Safe from any goroutine, idempotent.
func (c *conn) stopReading() {
	c.mu.Lock()
	c.readStopped = true
	// Under mu, so the read loop cannot re-arm a later deadline after this
	// one (it checks readStopped under mu before arming).
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	c.stopOnce.Do(func() { close(c.readStop) })
	c.cancel()
}

// closeNow closes the connection, cancels ctx and drops unwritten
// responses, releasing their Fetch regions. Safe from any goroutine,
// idempotent.
func (c *conn) closeNow() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed, c.readStopped = true, true
		// Slots answered before the close are released here; a slot
		// answered later is released by respond, which sees c.closed.
		// Reading s.ready must happen under c.mu, as respond writes it.
		var dropped []*FetchResponse
		for _, s := range c.queue {
			if s.ready {
				dropped = append(dropped, s.resp.Fetch)
			}
		}
		c.queue = nil
		c.mu.Unlock()
		c.stopOnce.Do(func() { close(c.readStop) })
		c.cancel()
		c.nc.Close()
		for _, f := range dropped {
			releaseFetch(f)
		}
		c.signal()
	})
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// readLoop reads, decodes and dispatches requests until an error; it
// returns errReadStopped when told to stop.
func (c *conn) readLoop() error {
	for {
		if !c.acquire() {
			return errReadStopped
		}
		n, err := c.readSize()
		if err != nil {
			return err
		}
		if streamed, err := c.serveProduceStream(n); streamed || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		frame, err := c.readFrame(n)
		if err != nil {
			return err
		}
		received := time.Now()
		c.s.st.requests.Add(1)
		req, err := decodeRequest(frame, c.s.cfg.Versions)
		if err != nil {
			if req == nil || req.Key != apiVersionsKey || !errors.Is(err, ErrUnsupportedVersion) {
				return err
			}
			c.log.Debug("answering unsupported api versions request", "api_version", req.Version)
			s := c.push(requestMeta{req.Key, req.Version, req.CorrelationID, len(frame), received, c.takeHold()}, 0)
			if s == nil {
				return errReadStopped
			}
			c.respond(s, Response{Msg: unsupportedApiVersions(c.s.cfg.Versions)})
			continue
		}
		req.Received, req.Conn = received, c.info
		if len(frame) >= framePoolMin && len(frame) <= framePoolMax {
			req.pooled, req.frames = frame, c.s.frames // from the pools or the cache (readSized)
		}
		s := c.push(requestMeta{req.Key, req.Version, req.CorrelationID, len(frame), received, c.takeHold()}, req.Version)
		if s == nil {
			return errReadStopped
		}
		c.dispatch(req, s)
	}
}

// acquire takes an in-flight token, waiting (back-pressure) while
// MaxInFlight responses are outstanding. false: reading must stop.
func (c *conn) acquire() bool {
	select {
	case c.sem <- struct{}{}:
		return true
	default:
	}
	c.s.st.stalls.Add(1)
	select {
	case c.sem <- struct{}{}:
		return true
	case <-c.readStop:
		return false
	}
}

// readSize reads the size prefix of the next frame, checks it against the
// limits and takes its room in the request budget.
func (c *conn) readSize() (int, error) {
	if err := c.armDeadline(); err != nil {
		return 0, err
	}
	var size [4]byte
	if err := c.readFull(size[:]); err != nil {
		return 0, err
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	switch {
	case n > c.s.cfg.MaxRequestBytes:
		return 0, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, n, c.s.cfg.MaxRequestBytes)
	case n < minFrameBytes:
		return 0, fmt.Errorf("%w: %d bytes", ErrFrameTooSmall, n)
	}
	if err := c.reserve(int64(4 + frameAllocBytes(n))); err != nil {
		return 0, err
	}
	return n, nil
}

// readFrame reads the n bytes of a frame whose size prefix readSize read.
// The buffer is fresh: decoded requests alias it.
func (c *conn) readFrame(n int) ([]byte, error) {
	var frame []byte
	if n < framePoolMin {
		frame = make([]byte, n)
		if err := c.readFull(frame); err != nil {
			return nil, err
		}
	} else {
		var err error
		if frame, err = c.readSized(n); err != nil {
			return nil, err
		}
	}
	c.s.st.bytesIn.Add(uint64(4 + n))
	return frame, nil
}

// readSized reads n bytes (n >= framePoolMin) into a buffer of n's pool
// class, to be given back with frames.put.
func (c *conn) readSized(n int) ([]byte, error) {
	if n <= framePoolEager {
		frame := getPooledFrame(n)
		if err := c.readFull(frame); err != nil {
			putPooledFrame(frame)
			return nil, err
		}
		return frame, nil
	}
	if cached, ok := c.s.frames.cached(n); ok {
		// A frame of this class came back earlier: under a steady stream
		// of large produce requests every frame is read straight into its
		// buffer, with no copy at all.
		if err := c.readFull(cached); err != nil {
			c.s.frames.put(cached)
			return nil, err
		}
		return cached, nil
	}
	// A large frame with no buffer ready: its first framePoolEager bytes
	// go to an eager buffer; once they have come, the peer is sending what
	// it announced, and the rest goes straight into one buffer of the
	// frame's size. The eager bytes are copied once — not the whole frame
	// over and over as a doubling buffer would.
	head := getPooledFrame(framePoolEager)
	if err := c.readFull(head); err != nil {
		putPooledFrame(head)
		return nil, err
	}
	var frame []byte
	if n <= framePoolMax {
		frame = c.s.frames.get(n)
	} else {
		frame = make([]byte, n)
	}
	copy(frame, head)
	c.s.st.requestCopiedBytes.Add(uint64(len(head)))
	putPooledFrame(head)
	if err := c.readFull(frame[framePoolEager:]); err != nil {
		c.s.frames.put(frame)
		return nil, err
	}
	return frame, nil
}

// budgetExemptBytes: requests smaller than this never wait for the request
// budget. Metadata, fetch, offset and group requests are this small, so
// clients keep being served while large produce requests (or peers that
// announce large frames and send them slowly) hold the budget; what they use
// is bounded by the connections and their in-flight limit.
const budgetExemptBytes = 64 << 10

// reserve takes room for a request of n bytes from the server's budget
// before its body is read, waiting (and so not reading) while there is none.
// The request's meta carries it (takeHold) until its response is written.
func (c *conn) reserve(n int64) error {
	b := c.s.requestBytes
	if b == nil || n < budgetExemptBytes {
		return nil
	}
	taken, err := b.acquire(c.ctx, n, func() { c.s.st.requestBytesStalls.Add(1) })
	if err != nil {
		return errReadStopped
	}
	c.reserved.Add(taken)
	c.nextHold = taken
	return nil
}

// takeHold hands the budget taken for the frame just read to its request.
func (c *conn) takeHold() int64 {
	n := c.nextHold
	c.nextHold = 0
	return n
}

// releaseHold gives back the budget of an answered request.
func (c *conn) releaseHold(n int64) {
	if n > 0 {
		c.reserved.Add(-n)
		c.s.requestBytes.release(n)
	}
}

// readFull fills p, riding out read deadlines that were only idle checks.
func (c *conn) readFull(p []byte) error {
	for {
		n, err := io.ReadFull(c.br, p)
		if err == nil {
			return nil
		}
		p = p[n:]
		if err := c.readGoesOn(err); err != nil {
			return err
		}
	}
}

// readGoesOn returns nil when a read failed only on a read deadline that
// was an idle check finding the connection busy, so the read goes on; else
// the error that ends it (the read's own, idleness, or a stop).
func (c *conn) readGoesOn(err error) error {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	return c.onTimeout()
}

// armDeadline sets the read deadline to the next idle check before a
// request is read.
func (c *conn) armDeadline() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readStopped {
		return errReadStopped
	}
	return c.checkIdleLocked()
}

// onTimeout runs when a read hit its deadline: either reading was stopped,
// or it was an idle check.
func (c *conn) onTimeout() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readStopped {
		return errReadStopped
	}
	return c.checkIdleLocked()
}

// checkIdleLocked closes an idle connection (by returning errIdle) or sets
// the read deadline to when it could next become idle.
func (c *conn) checkIdleLocked() error {
	timeout := c.s.cfg.IdleTimeout
	if timeout < 0 {
		return c.nc.SetReadDeadline(time.Time{})
	}
	last := time.Unix(0, c.lastActive.Load())
	// A produce request being streamed has its slot queued already; it
	// is not a response the client waits for, so a peer that stops
	// sending in the middle of one is idle like any other.
	pending := c.pending.Load() - c.streaming.Load()
	idle, next := idleVerdict(time.Now(), last, pending > 0, timeout)
	if idle {
		return errIdle
	}
	return c.nc.SetReadDeadline(next)
}

// idleVerdict decides whether a connection last active at lastActive is
// idle at now: nothing read or written for timeout and no response pending
// (a long poll is not idleness). If not, next is when to ask again.
func idleVerdict(now, lastActive time.Time, pending bool, timeout time.Duration) (idle bool, next time.Time) {
	if pending {
		return false, now.Add(timeout)
	}
	if now.Sub(lastActive) >= timeout {
		return true, time.Time{}
	}
	return false, lastActive.Add(timeout)
}

// logReadError logs why the read loop ended and counts protocol refusals.
func (c *conn) logReadError(err error) {
	switch {
	case errors.Is(err, errIdle):
		c.s.st.idle.Add(1)
		c.log.Debug("closing idle connection", "idle_timeout", c.s.cfg.IdleTimeout)
	case refusal(err):
		c.s.st.refused.Add(1)
		c.log.Info("closing connection after a bad request", "err", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		c.log.Debug("client closed connection", "err", err)
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// refusal reports whether the read loop stopped on a protocol violation
// (as opposed to an I/O error, idleness or a stop request).
func refusal(err error) bool {
	return errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrFrameTooSmall) ||
		errors.Is(err, ErrMalformedRequest) || errors.Is(err, ErrUnsupportedRequest) ||
		errors.Is(err, ErrUnsupportedVersion)
}

// push queues a slot for a request about to be dispatched; nil if the
// connection is closed.
func (c *conn) push(meta requestMeta, respVersion int16) *slot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	s := &slot{meta: meta, respVersion: respVersion}
	c.queue = append(c.queue, s)
	c.pending.Add(1)
	return s
}

// respond records s's response; any goroutine, any time. A second response
// for one slot is a handler bug: it is logged and dropped. A response for
// a closed connection is dropped. Dropped Fetch responses are released.
func (c *conn) respond(s *slot, r Response) {
	c.mu.Lock()
	switch {
	case s.ready:
		first := s.resp.Fetch
		c.mu.Unlock()
		c.log.Error("handler responded twice to one request, ignoring the second response",
			"api_key", s.meta.key, "api_version", s.meta.version, "correlation_id", s.meta.corr)
		if r.Fetch != first { // the same FetchResponse twice is released once
			releaseFetch(r.Fetch)
		}
		return
	case c.closed:
		s.resp, s.ready = r, true
		c.mu.Unlock()
		releaseFetch(r.Fetch)
		return
	}
	s.resp, s.ready = r, true
	head := len(c.queue) > 0 && c.queue[0] == s
	c.mu.Unlock()
	// Later slots wait for the head anyway; the writer looks at them
	// right after writing it.
	if head {
		c.signal()
	}
}

// dispatch calls the handler for a request that owns slot s. A panic in a
// handler is a broker bug, but one client's request must not take the whole
// broker down with every other client's in-flight work: the panic is logged
// with its stack, the connection is closed after the responses before it,
// and the server goes on.
func (c *conn) dispatch(req *Request, s *slot) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("request handler panicked; closing the connection",
				"api_key", req.Key, "api_version", req.Version, "panic", p, "stack", string(debug.Stack()))
			c.respond(s, Response{Close: true})
		}
	}()
	c.s.cfg.Handler.ServeKafka(c.ctx, req, func(r Response) { c.respond(s, r) })
}
