package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Forwarder carries a command from a broker that is not the controller to
// the controller, which prepares, commits and applies it. Node.Submit uses
// it; the default is the TCP forwarder on the Raft port (see doc.go). The
// broker may supply another one, e.g. over the Kafka protocol's forwarding
// (Envelope) requests.
type Forwarder interface {
	// Forward sends cmd to the controller listening at addr (its Raft
	// address) and returns the Raft index at which the command was applied
	// there. Errors wrap this package's sentinels as the controller
	// returned them (ErrNotController when addr has stopped being the
	// controller, ErrTopicExists, ...). It honours ctx's deadline and is
	// safe for concurrent use.
	Forward(ctx context.Context, addr string, cmd Command) (uint64, error)
}

// maxForwardFrame bounds one forwarding message.
const maxForwardFrame = 4 << 20

// forwardRequest and forwardResponse are the JSON frames of the forwarding
// protocol: one request and one response per connection, each a 4-byte
// big-endian length and a JSON body, after the mux's protocol byte.
type forwardRequest struct {
	Command   Command `json:"command"`
	TimeoutMs int64   `json:"timeout_ms"`
}

type forwardResponse struct {
	Index uint64 `json:"index,omitempty"`
	// Kind is the text of the sentinel the error wraps; Error its message.
	Kind  string `json:"kind,omitempty"`
	Error string `json:"error,omitempty"`
	// Retry says the command was not applied and may be sent again (the
	// broker was not the controller when it arrived).
	Retry bool `json:"retry,omitempty"`
}

// tcpForwarder is the default Forwarder.
type tcpForwarder struct {
	dialTimeout time.Duration
	key         []byte // muxKey of the cluster secret; nil: no authentication
}

// Forward implements Forwarder.
func (f tcpForwarder) Forward(ctx context.Context, addr string, cmd Command) (uint64, error) {
	timeout := f.dialTimeout
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = min(timeout, time.Until(deadline))
	}
	conn, err := dialMux(addr, muxForward, timeout, f.key)
	if err != nil {
		return 0, notSent(fmt.Errorf("%w: dial controller %s: %w", ErrNoController, addr, err))
	}
	defer conn.Close()
	// Closing the connection unblocks I/O when ctx ends first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if hasDeadline {
		_ = conn.SetDeadline(deadline)
	}
	req := forwardRequest{Command: cmd}
	if hasDeadline {
		req.TimeoutMs = time.Until(deadline).Milliseconds()
	}
	if err := writeFrame(conn, req); err != nil {
		return 0, f.ioError(ctx, addr, err)
	}
	var resp forwardResponse
	if err := readFrame(bufio.NewReader(conn), &resp); err != nil {
		return 0, f.ioError(ctx, addr, err)
	}
	if resp.Kind != "" || resp.Error != "" {
		err := decodeRemoteError(resp.Kind, resp.Error)
		if resp.Retry {
			err = notSent(err)
		}
		return 0, err
	}
	return resp.Index, nil
}

// ioError reports a failure after the command was sent: the controller may
// or may not have applied it, so it is not retried.
func (f tcpForwarder) ioError(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: forwarding to %s: %v", ErrTimeout, addr, ctx.Err())
	}
	return fmt.Errorf("%w: forwarding to %s (outcome unknown): %v", ErrNotController, addr, err)
}

func decodeRemoteError(kind, msg string) error {
	for _, s := range sentinels {
		if s.Error() == kind {
			return &remoteError{msg: msg, kind: s}
		}
	}
	return errors.New(msg)
}

func encodeRemoteError(err error) forwardResponse {
	var ns *notSentError
	resp := forwardResponse{Error: err.Error(), Retry: errors.As(err, &ns)}
	if s := sentinelOf(err); s != nil {
		resp.Kind = s.Error()
	}
	return resp
}

func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(body) > maxForwardFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(body), maxForwardFrame)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxForwardFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d", n, maxForwardFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// forwardServer answers forwarded commands on the controller. It owns an
// accept goroutine and one goroutine per connection, all stopped by Close.
type forwardServer struct {
	log     *slog.Logger
	ln      net.Listener
	handle  func(ctx context.Context, cmd Command) (uint64, error)
	maxWait time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu: open connections, closed by Close
}

func newForwardServer(ln net.Listener, maxWait time.Duration, log *slog.Logger,
	handle func(ctx context.Context, cmd Command) (uint64, error)) *forwardServer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &forwardServer{log: log, ln: ln, handle: handle, maxWait: maxWait, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *forwardServer) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(conn)
	}
}

func (s *forwardServer) serve(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	_ = conn.SetReadDeadline(time.Now().Add(muxSniffTimeout))
	var req forwardRequest
	if err := readFrame(bufio.NewReader(conn), &req); err != nil {
		resp := encodeRemoteError(fmt.Errorf("%w: forwarded request: %w", ErrInvalidCommand, err))
		_ = writeFrame(conn, resp)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	wait := s.maxWait
	if req.TimeoutMs > 0 {
		wait = min(wait, time.Duration(req.TimeoutMs)*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(s.ctx, wait)
	defer cancel()
	index, err := s.handle(ctx, req.Command)
	resp := forwardResponse{Index: index}
	if err != nil {
		resp = encodeRemoteError(err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(muxSniffTimeout))
	if err := writeFrame(conn, resp); err != nil {
		s.log.Debug("forward response not delivered", "remote", conn.RemoteAddr(), "err", err)
	}
}

// Close stops accepting, cancels commands in flight, closes connections and
// waits for the goroutines. Idempotent.
func (s *forwardServer) Close() {
	s.cancel()
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
