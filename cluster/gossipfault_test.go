package cluster

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipFault is a fault-injecting layer in front of memberlist's network
// transport: while cut, every gossip packet and stream to or from this
// broker is dropped, as if its gossip port were firewalled, while Raft and
// forwarding (another port) keep working.
type gossipFault struct {
	memberlist.NodeAwareTransport
	cut     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newGossipFault(inner memberlist.NodeAwareTransport) *gossipFault {
	f := &gossipFault{NodeAwareTransport: inner, packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn), done: make(chan struct{})}
	go func() {
		for {
			select {
			case p := <-inner.PacketCh():
				if f.cut.Load() {
					continue
				}
				select {
				case f.packets <- p:
				case <-f.done:
					return
				}
			case <-f.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case c := <-inner.StreamCh():
				if f.cut.Load() {
					c.Close()
					continue
				}
				select {
				case f.streams <- c:
				case <-f.done:
					c.Close()
					return
				}
			case <-f.done:
				return
			}
		}
	}()
	return f
}

var errGossipCut = &net.OpError{Op: "dial", Net: "tcp", Err: net.ErrClosed}

func (f *gossipFault) PacketCh() <-chan *memberlist.Packet { return f.packets }
func (f *gossipFault) StreamCh() <-chan net.Conn           { return f.streams }

func (f *gossipFault) WriteTo(b []byte, addr string) (time.Time, error) {
	if f.cut.Load() {
		return time.Now(), nil // lost on the wire
	}
	return f.NodeAwareTransport.WriteTo(b, addr)
}

func (f *gossipFault) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if f.cut.Load() {
		return time.Now(), nil
	}
	return f.NodeAwareTransport.WriteToAddress(b, addr)
}

func (f *gossipFault) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if f.cut.Load() {
		return nil, errGossipCut
	}
	return f.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (f *gossipFault) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if f.cut.Load() {
		return nil, errGossipCut
	}
	return f.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

func (f *gossipFault) Shutdown() error {
	f.once.Do(func() { close(f.done) })
	return f.NodeAwareTransport.Shutdown()
}
