package netproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of ServerConfig, Kafka's broker defaults.
const (
	DefaultMaxRequestBytes = 100 << 20        // socket.request.max.bytes
	DefaultIdleTimeout     = 10 * time.Minute // connections.max.idle.ms
	DefaultMaxInFlight     = 100
	DefaultSendTimeout     = 60 * time.Second
)

// ServerConfig configures a Server. Handler and Versions are required.
type ServerConfig struct {
	// Handler answers every decoded request.
	Handler Handler
	// Versions is the advertised table: the version range served for a
	// key, and whether the key is served at all. Requests outside it are
	// refused before their body is decoded. It is called from connection
	// goroutines concurrently and must not block.
	Versions func(key int16) (VersionRange, bool)
	// MaxRequestBytes is socket.request.max.bytes: a request whose size
	// prefix is larger closes its connection. 0 means 100 MiB.
	MaxRequestBytes int
	// IdleTimeout is connections.max.idle.ms: a connection with no request
	// read and no response pending or written for this long is closed.
	// 0 means 10 minutes; negative disables the check.
	IdleTimeout time.Duration
	// MaxInFlight bounds the requests of one connection that are read but
	// whose response is not yet written. At the bound the connection stops
	// reading until a response goes out. 0 means 100.
	MaxInFlight int
	// MaxConnections is max.connections: while this many connections are
	// open, the server stops accepting (the kernel's backlog holds new
	// ones) until one closes. 0 means no limit.
	MaxConnections int
	// MaxConnectionsPerIP is max.connections.per.ip: a connection from an
	// address that already has this many open is closed at once and
	// counted in Stats.ConnectionsOverIPLimit. 0 means no limit.
	MaxConnectionsPerIP int
	// QueuedMaxRequestBytes is queued.max.request.bytes: the bytes of
	// requests read but not yet answered, over all connections. A
	// connection whose next request does not fit stops reading it (back
	// pressure) until answers free room; a request larger than the whole
	// budget waits until it can take all of it. Requests under 64 KiB are
	// not counted and never wait, so small requests are served while large
	// ones hold the budget. 0 means no limit.
	QueuedMaxRequestBytes int64
	// SendTimeout closes a connection whose client reads nothing of a
	// response for this long (a client that stopped reading would
	// otherwise pin its goroutines, parked fetches and the files of deleted
	// segments). It counts in Stats.ConnectionsSendTimeout. 0 means
	// DefaultSendTimeout; negative disables it.
	SendTimeout time.Duration
	// StreamProduceMinBytes: Produce requests (v3-v12) of at least this
	// many bytes are served while they arrive, partition by partition
	// (Request.Produce); the Handler must read them so. 0 never streams.
	StreamProduceMinBytes int
	// Observer, if set, is told of every answered request.
	Observer Observer
	// Logger receives connection-level events (per-request detail at Debug
	// only). nil discards.
	Logger *slog.Logger
}

// Stats is a snapshot of a Server's counters, for /metrics. Counters only
// grow, except ConnectionsOpen.
type Stats struct {
	ConnectionsAccepted uint64
	ConnectionsOpen     int64
	// ConnectionsRefused counts connections closed for a protocol error: a
	// frame too large or too small, a malformed request, an unsupported key
	// or version (other than ApiVersions, which is answered).
	ConnectionsRefused uint64
	// ConnectionsIdle counts connections closed by IdleTimeout.
	ConnectionsIdle uint64
	Requests        uint64 // request frames read, refused ones included
	BytesIn         uint64 // request bytes read, size prefixes included
	BytesOut        uint64 // response bytes written, record bytes included
	// SendfileBytes counts record bytes moved by sendfile(2), CopiedBytes
	// those moved by the pread+write fallback.
	SendfileBytes uint64
	CopiedBytes   uint64
	// ReplicaSendfileBytes and ReplicaCopiedBytes are the parts of those
	// sent in responses marked Replica (to follower brokers).
	ReplicaSendfileBytes uint64
	ReplicaCopiedBytes   uint64
	// InFlightStalls counts the times a connection stopped reading because
	// MaxInFlight requests awaited their responses.
	InFlightStalls uint64
	// ConnectionsSendTimeout counts connections closed because the client
	// read nothing of a response for SendTimeout.
	ConnectionsSendTimeout uint64
	// ConnectionsOverIPLimit counts connections closed at accept because
	// their address had MaxConnectionsPerIP open.
	ConnectionsOverIPLimit uint64
	// AcceptStalls counts the times accepting paused at MaxConnections.
	AcceptStalls uint64
	// RequestBytesStalls counts the times a connection waited for room in
	// QueuedMaxRequestBytes before reading a request.
	RequestBytesStalls uint64
	// RequestCopiedBytes counts request bytes copied in user space while
	// reading: the head of a large frame that found no cached buffer of its
	// size (conn.readSized), and the part of a streamed request's large
	// records that came in with the header before them (chunkBody). Steady
	// produce traffic keeps it small.
	RequestCopiedBytes uint64
	// StreamedRequests counts the Produce requests served while they
	// arrived (ServerConfig.StreamProduceMinBytes).
	StreamedRequests uint64
	// QueuedRequestBytes is the request bytes held now against
	// QueuedMaxRequestBytes (a gauge).
	QueuedRequestBytes int64
}

// counters are the live values behind Stats, shared by all connections.
type counters struct {
	accepted, refused, idle, requests             atomic.Uint64
	bytesIn, bytesOut, sendfileBytes, copiedBytes atomic.Uint64
	replicaSendfileBytes, replicaCopiedBytes      atomic.Uint64
	stalls                                        atomic.Uint64
	sendTimeouts, overIPLimit, acceptStalls       atomic.Uint64
	requestBytesStalls, requestCopiedBytes        atomic.Uint64
	streamed                                      atomic.Uint64
	open                                          atomic.Int64
}

// Server accepts Kafka connections and serves them with a Handler. Each
// connection gets a read goroutine (which calls the Handler) and a write
// goroutine (which writes responses in request order); both are owned by
// the Server and gone when Shutdown or Close returns.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	st     counters
	nextID atomic.Uint64

	// done is closed when Shutdown or Close begins.
	done         chan struct{}
	shutdownOnce sync.Once

	// mu guards listeners, conns and closing; wg counts connections in
	// conns and is only Added under mu while !closing, so Wait is safe.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[string]int // guarded by mu: open connections by remote IP
	closing   bool
	wg        sync.WaitGroup

	// connSlots holds a token per open connection when MaxConnections is
	// set (nil otherwise); Serve takes one before each Accept.
	connSlots chan struct{}
	// requestBytes is the QueuedMaxRequestBytes budget (nil: no limit).
	requestBytes *byteBudget
	// frames keeps large request frames for reuse (framecache.go).
	frames *frameCache
}

// NewServer validates cfg, fills its defaults and returns a Server that
// serves nothing until Serve is called.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Handler == nil:
		return nil, fmt.Errorf("%w: nil Handler", ErrInvalidConfig)
	case cfg.Versions == nil:
		return nil, fmt.Errorf("%w: nil Versions", ErrInvalidConfig)
	case cfg.MaxRequestBytes < 0 || cfg.MaxRequestBytes > math.MaxInt32:
		return nil, fmt.Errorf("%w: MaxRequestBytes %d", ErrInvalidConfig, cfg.MaxRequestBytes)
	case cfg.MaxRequestBytes > 0 && cfg.MaxRequestBytes < minFrameBytes:
		return nil, fmt.Errorf("%w: MaxRequestBytes %d below a request header", ErrInvalidConfig, cfg.MaxRequestBytes)
	case cfg.MaxInFlight < 0:
		return nil, fmt.Errorf("%w: MaxInFlight %d", ErrInvalidConfig, cfg.MaxInFlight)
	case cfg.MaxConnections < 0 || cfg.MaxConnectionsPerIP < 0:
		return nil, fmt.Errorf("%w: MaxConnections %d, MaxConnectionsPerIP %d", ErrInvalidConfig, cfg.MaxConnections, cfg.MaxConnectionsPerIP)
	case cfg.QueuedMaxRequestBytes < 0:
		return nil, fmt.Errorf("%w: QueuedMaxRequestBytes %d", ErrInvalidConfig, cfg.QueuedMaxRequestBytes)
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:       cfg,
		log:       log.With("component", "netproto"),
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
	}
	if cfg.MaxConnections > 0 {
		s.connSlots = make(chan struct{}, cfg.MaxConnections)
	}
	if cfg.QueuedMaxRequestBytes > 0 {
		s.requestBytes = newByteBudget(cfg.QueuedMaxRequestBytes)
	}
	s.frames = newFrameCache(s.requestBytes)
	return s, nil
}

// Serve accepts connections on ln and serves each on its own goroutines. It
// blocks until Shutdown or Close (then returns ErrServerClosed, having
// closed ln) or until Accept fails for good (then returns that error and
// leaves ln to the caller). Serve may be called concurrently for several
// listeners. Temporary Accept failures (out of file descriptors) are
// retried with a backoff.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	log := s.log.With("listener", ln.Addr().String())
	log.Info("serving kafka protocol")

	var backoff time.Duration
	for {
		if !s.takeConnSlot() {
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			s.releaseConnSlot()
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			if !temporaryAcceptError(err) {
				return fmt.Errorf("netproto: accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed, retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

// temporaryAcceptError reports Accept failures that go away once other
// connections close or memory frees up.
func temporaryAcceptError(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// takeConnSlot waits for room under MaxConnections (Kafka's acceptor
// blocks the same way). false: the server is shutting down.
func (s *Server) takeConnSlot() bool {
	if s.connSlots == nil {
		return true
	}
	select {
	case s.connSlots <- struct{}{}:
		return true
	default:
	}
	s.st.acceptStalls.Add(1)
	select {
	case s.connSlots <- struct{}{}:
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) releaseConnSlot() {
	if s.connSlots != nil {
		<-s.connSlots
	}
}

// remoteIP is the address MaxConnectionsPerIP counts by.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addrString(a))
	if err != nil {
		return addrString(a)
	}
	return host
}

// startConn registers nc and starts its goroutines, or closes it if the
// server is shutting down or its address is over MaxConnectionsPerIP. It
// owns the connection slot Serve took for nc.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip := remoteIP(nc.RemoteAddr())
	switch {
	case s.closing:
		nc.Close()
		s.releaseConnSlot()
		return
	case s.cfg.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		s.st.overIPLimit.Add(1)
		s.log.Warn("closing connection: too many from its address", "remote", addrString(nc.RemoteAddr()), "max_connections_per_ip", s.cfg.MaxConnectionsPerIP)
		nc.Close()
		s.releaseConnSlot()
		return
	}
	c := newConn(s, nc, s.nextID.Add(1))
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.st.accepted.Add(1)
	s.st.open.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
		s.st.open.Add(-1)
		s.releaseConnSlot()
	}()
}

// Shutdown stops the server gracefully: listeners close (Serve returns
// ErrServerClosed), connections stop reading new requests, every
// connection's context is cancelled so handlers holding long polls answer,
// and each connection closes once the responses to the requests it already
// read are written. If ctx ends first, the remaining connections are closed
// at once (unwritten responses are dropped) and ctx's error is returned.
// Either way every connection goroutine has exited when Shutdown returns,
// which requires handlers to return from ServeKafka once their ctx is
// cancelled. Shutdown may be called more than once and together with Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	drained := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.frames.stop()
		close(drained)
	}()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		s.closeConns()
		<-drained
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, dropping
// unwritten responses, and waits for the connection goroutines to exit (see
// Shutdown). It is idempotent and always returns nil.
func (s *Server) Close() error {
	s.beginShutdown()
	s.closeConns()
	s.wg.Wait()
	s.frames.stop()
	return nil
}

func (s *Server) beginShutdown() {
	s.shutdownOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closing = true
		for ln := range s.listeners {
			ln.Close()
		}
		conns := s.connsLocked()
		s.mu.Unlock()
		for _, c := range conns {
			c.stopReading()
		}
	})
}

func (s *Server) closeConns() {
	s.mu.Lock()
	conns := s.connsLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
}

func (s *Server) connsLocked() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Stats returns a snapshot of the server's counters. Safe from any
// goroutine.
func (s *Server) Stats() Stats {
	return Stats{
		ConnectionsAccepted:  s.st.accepted.Load(),
		ConnectionsOpen:      s.st.open.Load(),
		ConnectionsRefused:   s.st.refused.Load(),
		ConnectionsIdle:      s.st.idle.Load(),
		Requests:             s.st.requests.Load(),
		BytesIn:              s.st.bytesIn.Load(),
		BytesOut:             s.st.bytesOut.Load(),
		SendfileBytes:        s.st.sendfileBytes.Load(),
		CopiedBytes:          s.st.copiedBytes.Load(),
		ReplicaSendfileBytes: s.st.replicaSendfileBytes.Load(),
		ReplicaCopiedBytes:   s.st.replicaCopiedBytes.Load(),
		InFlightStalls:       s.st.stalls.Load(),

		ConnectionsSendTimeout: s.st.sendTimeouts.Load(),
		ConnectionsOverIPLimit: s.st.overIPLimit.Load(),
		AcceptStalls:           s.st.acceptStalls.Load(),
		RequestBytesStalls:     s.st.requestBytesStalls.Load(),
		RequestCopiedBytes:     s.st.requestCopiedBytes.Load(),
		StreamedRequests:       s.st.streamed.Load(),
		QueuedRequestBytes:     s.requestBytes.held(),
	}
}
