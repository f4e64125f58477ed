package netproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxSendfileChunk bounds one sendfile call; Linux moves at most
	// 0x7ffff000 bytes per call anyway.
	maxSendfileChunk = 1 << 30
	// copyChunkBytes is the pread+write buffer of the fallback path.
	copyChunkBytes = 256 << 10
)

// regionSender moves file regions onto one connection: with sendfile(2) on
// the socket's descriptor when the connection is a *net.TCPConn, otherwise
// (unix sockets, TLS, a kernel refusing sendfile) by pread into a buffer and
// write. It is used only by its connection's write goroutine.
type regionSender struct {
	nc          net.Conn
	raw         syscall.RawConn // nil: sendfile unavailable, copy instead
	buf         []byte          // fallback buffer, allocated on first use
	st          *counters
	sendTimeout time.Duration // > 0: each write must make progress within it
	// sent and copied total the record bytes this sender moved by
	// sendfile and by copying, so a response's share can be told apart.
	sent, copied uint64
}

func newRegionSender(nc net.Conn, st *counters, sendTimeout time.Duration) regionSender {
	s := regionSender{nc: nc, st: st, sendTimeout: sendTimeout}
	// Only TCP: sendfile to other socket kinds works on Linux too, but TCP
	// is what serves clients, and everything else exercises the fallback.
	if tc, ok := nc.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			s.raw = raw
		}
	}
	return s
}

// cork holds (on) or releases (off) partial TCP segments while a Fetch
// response is written: with TCP_NODELAY every small framing write before a
// sendfile would otherwise leave as its own packet. Releasing sends what is
// held at once. A no-op off TCP.
func (s *regionSender) cork(on bool) {
	if s.raw == nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	_ = s.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
}

// armSend moves the write deadline to SendTimeout from now; called before
// each write and after each sendfile that moved bytes, so only a client
// that reads nothing for that long hits it.
func (s *regionSender) armSend() {
	if s.sendTimeout > 0 {
		_ = s.nc.SetWriteDeadline(time.Now().Add(s.sendTimeout))
	}
}

// send writes the whole region to the connection, or fails. A file that
// ends before the region does gives ErrShortRegion, after part of the region
// may have been sent: the caller must close the connection.
func (s *regionSender) send(r FileRegion) error {
	pos, n := r.Position, r.Size
	if s.raw != nil && n > 0 {
		sent, fallback, err := s.sendfile(r)
		s.st.sendfileBytes.Add(uint64(sent))
		s.st.bytesOut.Add(uint64(sent))
		s.sent += uint64(sent)
		if err != nil {
			return err
		}
		pos, n = pos+sent, n-sent
		if fallback {
			// EINVAL/ENOSYS/EOPNOTSUPP: this socket, file system or kernel
			// cannot sendfile; stop trying on this connection.
			s.raw = nil
		}
	}
	return s.copy(r, pos, n)
}

// sendfile sends r with sendfile(2), waiting for writability through Go's
// poller (returning false from the RawConn.Write callback on EAGAIN), with an
// explicit offset so concurrent readers of one segment file stay
// independent. The file's descriptor is pinned with Control, so a concurrent
// Close cannot hand its number to another file mid-send. fallback reports
// that sendfile is unsupported here and the rest must be copied.
func (s *regionSender) sendfile(r FileRegion) (sent int64, fallback bool, err error) {
	fraw, err := r.File.SyscallConn()
	if err != nil {
		return 0, true, nil
	}
	pos, left := r.Position, r.Size
	var opErr error
	s.armSend()
	ctlErr := fraw.Control(func(ffd uintptr) {
		werr := s.raw.Write(func(sfd uintptr) bool {
			for left > 0 {
				m, err := unix.Sendfile(int(sfd), int(ffd), &pos, int(min(left, maxSendfileChunk)))
				if m > 0 {
					sent += int64(m)
					left -= int64(m)
					// Progress: the next wait for writability gets a
					// fresh deadline (setting it does not take the
					// descriptor's write lock this callback holds).
					s.armSend()
				}
				switch {
				case err == unix.EAGAIN:
					return false
				case err == unix.EINTR:
					continue
				case err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP:
					fallback = true
					return true
				case err != nil:
					opErr = fmt.Errorf("sendfile: %w", err)
					return true
				case m == 0:
					opErr = fmt.Errorf("%w: file %s ended at %d, region wanted %d more bytes", ErrShortRegion, r.File.Name(), pos, left)
					return true
				}
			}
			return true
		})
		if opErr == nil && werr != nil {
			opErr = werr
		}
	})
	if opErr == nil && ctlErr != nil {
		opErr = ctlErr
	}
	return sent, fallback, opErr
}

// copy sends n bytes of r's file from pos by pread and write.
func (s *regionSender) copy(r FileRegion, pos, n int64) error {
	if n == 0 {
		return nil
	}
	if s.buf == nil {
		s.buf = make([]byte, copyChunkBytes)
	}
	for n > 0 {
		want := int(min(n, int64(len(s.buf))))
		m, err := r.File.ReadAt(s.buf[:want], pos)
		if m < want {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: file %s ended at %d, region wanted %d more bytes", ErrShortRegion, r.File.Name(), pos+int64(m), n-int64(m))
			}
			return fmt.Errorf("pread %s: %w", r.File.Name(), err)
		}
		s.armSend()
		w, err := s.nc.Write(s.buf[:m])
		s.st.copiedBytes.Add(uint64(w))
		s.st.bytesOut.Add(uint64(w))
		s.copied += uint64(w)
		if err != nil {
			return err
		}
		pos, n = pos+int64(m), n-int64(m)
	}
	return nil
}
