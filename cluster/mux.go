package cluster

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The Raft listener carries two protocols. Every connection opens with one
// byte naming its protocol; the mux reads it and hands the connection to the
// Raft transport or to the forwarding server.
const (
	muxRaft    byte = 'R'
	muxForward byte = 'F'
	// muxSniffTimeout bounds how long a connection may take to send its
	// protocol byte.
	muxSniffTimeout = 5 * time.Second
)

// mux owns the Raft listener and one accept goroutine, plus a short-lived
// goroutine per new connection that reads its protocol byte.
type mux struct {
	log       *slog.Logger
	ln        net.Listener
	advertise net.Addr
	raft      *subListener
	forward   *subListener
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newMux(ln net.Listener, advertise net.Addr, log *slog.Logger) *mux {
	m := &mux{log: log, ln: ln, advertise: advertise}
	m.raft = newSubListener(advertise)
	m.forward = newSubListener(advertise)
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warn("raft listener accept failed", "err", err)
			}
			return
		}
		m.wg.Add(1)
		go m.route(conn)
	}
}

// route reads the protocol byte and hands the connection over.
func (m *mux) route(conn net.Conn) {
	defer m.wg.Done()
	var b [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(muxSniffTimeout))
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	switch b[0] {
	case muxRaft:
		m.raft.deliver(conn)
	case muxForward:
		m.forward.deliver(conn)
	default:
		m.log.Warn("unknown protocol on raft port", "byte", b[0], "remote", conn.RemoteAddr())
		conn.Close()
	}
}

// Close stops accepting, closes both sub-listeners and waits for the
// routing goroutines. Idempotent.
func (m *mux) Close() error {
	m.closeOnce.Do(func() {
		m.ln.Close()
		m.raft.Close()
		m.forward.Close()
	})
	m.wg.Wait()
	return nil
}

// subListener is a net.Listener fed by the mux.
type subListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newSubListener(addr net.Addr) *subListener {
	return &subListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands conn to Accept, or closes it once the listener is closed.
func (l *subListener) deliver(conn net.Conn) {
	select {
	case l.conns <- conn:
	case <-l.closed:
		conn.Close()
	}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.addr }

// raftStream is the raft.StreamLayer over the mux.
type raftStream struct{ *subListener }

// Dial implements raft.StreamLayer: it connects and sends the Raft byte.
func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialMux(string(address), muxRaft, timeout)
}

func dialMux(addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
