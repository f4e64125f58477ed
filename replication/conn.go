package replication

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerConn is a fetcher's connection to one leader: one request at a time,
// encoded and decoded with kmsg. It is owned by the fetcher goroutine.
type brokerConn struct {
	conn   net.Conn
	format *kmsg.RequestFormatter
	corr   int32
	buf    []byte
}

// maxResponseBytes bounds a response frame the fetcher accepts.
const maxResponseBytes = 128 << 20

func dialBroker(ctx context.Context, addr, clientID string) (*brokerConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &brokerConn{conn: c, format: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}, nil
}

func (c *brokerConn) Close() error { return c.conn.Close() }

// roundTrip sends req and decodes the response into resp, waiting until
// deadline.
func (c *brokerConn) roundTrip(req kmsg.Request, resp kmsg.Response, deadline time.Time) error {
	c.corr++
	c.buf = c.format.AppendRequest(c.buf[:0], req, c.corr)
	if err := c.conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.conn.Write(c.buf); err != nil {
		return fmt.Errorf("write %s v%d: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		return fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 4 || n > maxResponseBytes {
		return fmt.Errorf("%s response of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return fmt.Errorf("read %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != c.corr {
		return fmt.Errorf("%s response for correlation id %d, sent %d", kmsg.NameForKey(req.Key()), got, c.corr)
	}
	body = body[4:]
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return fmt.Errorf("%s response header: %w", kmsg.NameForKey(req.Key()), err)
		}
		body = r.Src
	}
	// The records of a fetch response alias body, which the next request
	// reuses: the caller is done with them before it sends again.
	if err := resp.ReadFrom(body); err != nil {
		return fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return nil
}
