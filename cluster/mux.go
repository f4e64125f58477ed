package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The Raft listener carries two protocols. Every connection opens with one
// byte naming its protocol; the mux reads it and hands the connection to the
// Raft transport or to the forwarding server. With a cluster secret the
// byte is the authenticated variant (see authenticated) and the handshake
// of auth.go runs before the connection is handed over.
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
	key       []byte // muxKey of the cluster secret; nil: no authentication
	ln        net.Listener
	advertise net.Addr
	raft      *subListener
	forward   *subListener
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newMux(ln net.Listener, advertise net.Addr, key []byte, log *slog.Logger) *mux {
	m := &mux{log: log, key: key, ln: ln, advertise: advertise}
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

// route reads the protocol byte, authenticates the peer when this broker
// has a cluster secret, and hands the connection over. A refused peer is
// logged and disconnected; nothing it sent is read as Raft or as a command.
func (m *mux) route(conn net.Conn) {
	defer m.wg.Done()
	var b [1]byte
	_ = conn.SetDeadline(time.Now().Add(muxSniffTimeout))
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	proto := b[0] &^ 0x20 // the plain byte of either spelling
	if proto != muxRaft && proto != muxForward {
		m.log.Warn("unknown protocol on raft port", "byte", b[0], "remote", conn.RemoteAddr())
		conn.Close()
		return
	}
	auth := b[0] == authenticated(proto)
	switch {
	case m.key == nil && auth:
		m.log.Warn("refusing raft-port connection: the peer authenticates with a cluster secret, this broker has none",
			"remote", conn.RemoteAddr(), "protocol", string(proto))
		conn.Close()
		return
	case m.key != nil && !auth:
		m.log.Warn("refusing raft-port connection: the peer did not authenticate (it has no --cluster-secret)",
			"remote", conn.RemoteAddr(), "protocol", string(proto))
		conn.Close()
		return
	case m.key != nil:
		if err := serverHandshake(conn, m.key, proto); err != nil {
			m.log.Warn("refusing raft-port connection: cluster-secret handshake failed",
				"remote", conn.RemoteAddr(), "protocol", string(proto), "err", err)
			conn.Close()
			return
		}
	}
	_ = conn.SetDeadline(time.Time{})
	if proto == muxRaft {
		m.raft.deliver(conn)
	} else {
		m.forward.deliver(conn)
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
type raftStream struct {
	*subListener
	key []byte // muxKey; nil: no authentication
}

// Dial implements raft.StreamLayer: it connects and sends the Raft byte
// (and authenticates).
func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialMux(string(address), muxRaft, timeout, s.key)
}

// dialMux connects to a broker's Raft port for proto and, with a key, runs
// the client side of the handshake, all within timeout.
func dialMux(addr string, proto byte, timeout time.Duration, key []byte) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if key == nil {
		_, err = conn.Write([]byte{proto})
	} else {
		err = clientHandshake(conn, key, proto)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("raft port %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}
