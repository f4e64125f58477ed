package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// waitFor bounds every wait on the code under test.
const waitFor = 10 * time.Second

// result is one run of the barge command line.
type result struct {
	code   int
	stdout string
	stderr string
}

// tWriter routes what a command writes to stderr into the test log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testDeps reads the real environment (tests set it with t.Setenv) and
// writes stderr to the test log as well as to the returned buffer.
func testDeps(t *testing.T) (*cli.Deps, *syncBuffer, *syncBuffer) {
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	return &cli.Deps{
		Stdout:    stdout,
		Stderr:    io.MultiWriter(stderr, tWriter{t}),
		LookupEnv: os.LookupEnv,
		Environ:   os.Environ,
	}, stdout, stderr
}

// runBarge runs the command line to completion with hooks.
func runBarge(t *testing.T, hooks serveHooks, args ...string) result {
	t.Helper()
	deps, stdout, stderr := testDeps(t)
	code := run(args, deps, hooks)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// fakeServer stands in for *broker.Broker.
type fakeServer struct {
	cfg      broker.Config
	startErr error

	started chan struct{} // closed by Start

	done chan struct{} // Done; the test closes it to simulate a fatal error
	err  error         // Err, set before done is closed

	shutdownCtx chan context.Context // Shutdown sends its ctx here (buffered)
	shutdownErr error
	release     chan struct{} // when non-nil, Shutdown blocks until it is closed
}

func newFakeServer(cfg broker.Config) *fakeServer {
	return &fakeServer{
		cfg:         cfg,
		started:     make(chan struct{}),
		done:        make(chan struct{}),
		shutdownCtx: make(chan context.Context, 1),
	}
}

func (f *fakeServer) Start() error {
	close(f.started)
	return f.startErr
}

func (f *fakeServer) Shutdown(ctx context.Context) error {
	f.shutdownCtx <- ctx
	if f.release != nil {
		<-f.release
	}
	return f.shutdownErr
}

func (f *fakeServer) Done() <-chan struct{} { return f.done }
func (f *fakeServer) Err() error            { return f.err }
func (f *fakeServer) KafkaAddr() string     { return "127.0.0.1:19092" }
func (f *fakeServer) HTTPAddr() string      { return "127.0.0.1:19644" }

// capture returns hooks whose broker records its config and stops at once,
// so that `barge serve` resolves its settings and exits 0. *got is the
// config the broker was given, Logger cleared.
func capture(got *broker.Config) serveHooks {
	return serveHooks{
		newServer: func(cfg broker.Config) (server, error) {
			cfg.Logger = nil
			*got = cfg
			f := newFakeServer(cfg)
			close(f.done)
			return f, nil
		},
		signals: func() (<-chan os.Signal, func()) { return nil, func() {} },
	}
}

// noServer fails the test if serve gets as far as building a broker.
func noServer(t *testing.T) serveHooks {
	return serveHooks{
		newServer: func(broker.Config) (server, error) {
			t.Error("serve built a broker; want a usage error before that")
			return nil, io.EOF
		},
		signals: func() (<-chan os.Signal, func()) { return nil, func() {} },
	}
}

// writeConfig writes a YAML config file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "barge.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
