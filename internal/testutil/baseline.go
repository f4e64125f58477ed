package testutil

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// SendfileAll sends n bytes of f from pos on the socket with sendfile,
// waiting for writability through Go's poller as the protocol layer does:
// the baseline the benchmarks set Barge's zero-copy paths against.
func SendfileAll(rc syscall.RawConn, f *os.File, pos, n int64) error {
	var opErr error
	err := rc.Write(func(fd uintptr) bool {
		for n > 0 {
			m, err := unix.Sendfile(int(fd), int(f.Fd()), &pos, int(min(n, 1<<30)))
			if m > 0 {
				n -= int64(m)
			}
			switch {
			case err == unix.EAGAIN:
				return false
			case err == unix.EINTR:
				continue
			case err != nil:
				opErr = err
				return true
			case m == 0:
				opErr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return opErr
}

// DrainingConn returns the client side of a loopback TCP connection whose
// server side discards everything, and a function that closes both and
// waits for the server side.
func DrainingConn(tb testing.TB) (*net.TCPConn, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-done
		tb.Fatal(err)
	}
	return c.(*net.TCPConn), func() {
		c.Close()
		ln.Close()
		<-done
	}
}
