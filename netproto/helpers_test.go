package netproto

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on a condition in these tests.
const waitTimeout = 10 * time.Second

// testLogWriter routes slog output to t.Log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, req *Request, respond func(Response))

func (f handlerFunc) ServeKafka(ctx context.Context, req *Request, respond func(Response)) {
	f(ctx, req, respond)
}

// testVersions advertises every key kmsg knows at 0..its max, except
// ApiVersions 0..3 and Fetch 4..15 as Barge serves it. A table lookup, as the
// broker's will be.
func testVersions(key int16) (VersionRange, bool) {
	if key < 0 || int(key) >= len(testVersionTable) {
		return VersionRange{}, false
	}
	vr := testVersionTable[key]
	return vr, vr.Max >= 0
}

var testVersionTable = func() (t [kmsg.MaxKey + 1]VersionRange) {
	for key := range t {
		t[key] = VersionRange{Min: 0, Max: -1}
		if r := kmsg.RequestForKey(int16(key)); r != nil {
			t[key] = VersionRange{Min: 0, Max: r.MaxVersion()}
		}
	}
	t[18] = VersionRange{Min: 0, Max: 3}
	t[1] = VersionRange{Min: 4, Max: 15}
	return t
}()

// answerDefault answers any request with the empty response of its kind.
func answerDefault(_ context.Context, req *Request, respond func(Response)) {
	respond(Response{Msg: req.Body.ResponseKind()})
}

// startServer starts a Server on a loopback TCP listener; it is closed at
// the end of the test.
func startServer(t testing.TB, cfg ServerConfig) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, ln), ln.Addr().String()
}

func serveOn(t testing.TB, cfg ServerConfig, ln net.Listener) *Server {
	t.Helper()
	if cfg.Versions == nil {
		cfg.Versions = testVersions
	}
	if cfg.Handler == nil {
		cfg.Handler = handlerFunc(answerDefault)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv
}

func dial(t testing.TB, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(waitTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

// appendRequest appends a request frame the way a client writes it: header
// v1, or v2 with tags (a nil tags gives the empty section) when req's
// version is flexible.
func appendRequest(dst []byte, corr int32, clientID *string, req kmsg.Request, tags []byte) []byte {
	start := len(dst)
	dst = kbin.AppendInt32(dst, 0)
	dst = kbin.AppendInt16(dst, req.Key())
	dst = kbin.AppendInt16(dst, req.GetVersion())
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendNullableString(dst, clientID)
	if req.IsFlexible() {
		if tags == nil {
			tags = []byte{0}
		}
		dst = append(dst, tags...)
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// rawFrame is a frame with an arbitrary header and body.
func rawFrame(key, version int16, corr int32, body []byte) []byte {
	dst := kbin.AppendInt32(nil, 0)
	dst = kbin.AppendInt16(dst, key)
	dst = kbin.AppendInt16(dst, version)
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendNullableString(dst, nil)
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

func send(t testing.TB, c net.Conn, frames ...[]byte) {
	t.Helper()
	var all []byte
	for _, f := range frames {
		all = append(all, f...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one response frame and returns it without the size.
func readFrame(t testing.TB, c net.Conn) []byte {
	t.Helper()
	f, err := tryReadFrame(c)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return f
}

func tryReadFrame(c net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	f := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c, f)
	return f, err
}

// readResponse reads a response frame, checks its correlation id, strips
// the header (v1 with a tag byte when flexible) and decodes the body into
// resp at version.
func readResponse(t testing.TB, c net.Conn, corr int32, version int16, resp kmsg.Response) {
	t.Helper()
	f := readFrame(t, c)
	if got := int32(binary.BigEndian.Uint32(f)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	f = f[4:]
	resp.SetVersion(version)
	if resp.IsFlexible() && resp.Key() != 18 {
		if f[0] != 0 {
			t.Fatalf("response header tag section %#x, want empty", f[0])
		}
		f = f[1:]
	}
	if err := resp.ReadFrom(f); err != nil {
		t.Fatalf("decoding %s v%d: %v", kmsg.NameForKey(resp.Key()), version, err)
	}
}

// expectClosed waits for the server to close c: a read returns EOF (or a
// reset) before any further byte.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	var b [1]byte
	n, err := c.Read(b[:])
	if err == nil || n > 0 {
		t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", waitTimeout)
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.Wait(t, waitTimeout, what, cond)
}

// tempFile writes data to a new file and returns it open for reading.
func tempFile(t testing.TB, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// recorder collects requests seen by a handler.
type recorder struct {
	mu   sync.Mutex
	reqs []*Request
}

func (r *recorder) add(req *Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return len(r.reqs)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func metadataRequest(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	for _, tp := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(tp)
		req.Topics = append(req.Topics, rt)
	}
	return req
}
