package main

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// serving runs `barge serve args...` against a fake broker on a goroutine.
// The test drives it through the returned fake and signal channel, and
// reads the outcome from wait.
type serving struct {
	t       *testing.T
	fake    chan *fakeServer // the broker, once serve built it
	signals chan os.Signal
	exit    chan result
}

func startServe(t *testing.T, setup func(*fakeServer), args ...string) *serving {
	t.Helper()
	s := &serving{
		t:       t,
		fake:    make(chan *fakeServer, 1),
		signals: make(chan os.Signal, 2),
		exit:    make(chan result, 1),
	}
	hooks := serveHooks{
		newServer: func(cfg broker.Config) (server, error) {
			f := newFakeServer(cfg)
			if setup != nil {
				setup(f)
			}
			s.fake <- f
			return f, nil
		},
		signals: func() (<-chan os.Signal, func()) { return s.signals, func() {} },
	}
	deps, stdout, stderr := testDeps(t)
	go func() {
		code := run(append([]string{"serve"}, args...), deps, hooks)
		s.exit <- result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}()
	return s
}

// started waits until serve has started the broker.
func (s *serving) started() *fakeServer {
	s.t.Helper()
	select {
	case f := <-s.fake:
		select {
		case <-f.started:
			return f
		case <-time.After(waitFor):
		}
	case r := <-s.exit:
		s.t.Fatalf("serve exited %d before starting the broker:\n%s", r.code, r.stderr)
	case <-time.After(waitFor):
	}
	s.t.Fatal("serve did not start the broker")
	return nil
}

func (s *serving) wait() result {
	s.t.Helper()
	select {
	case r := <-s.exit:
		return r
	case <-time.After(waitFor):
		s.t.Fatal("serve did not return")
		return result{}
	}
}

func TestSignalShutsDownGracefully(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s := startServe(t, nil, "--shutdown-timeout", "7s")
			f := s.started()
			s.signals <- sig

			select {
			case ctx := <-f.shutdownCtx:
				deadline, ok := ctx.Deadline()
				if !ok {
					t.Fatal("Shutdown got a context without a deadline")
				}
				if left := time.Until(deadline); left < 6*time.Second || left > 7*time.Second {
					t.Errorf("Shutdown deadline in %v, want the --shutdown-timeout of 7s", left)
				}
			case <-time.After(waitFor):
				t.Fatal("no Shutdown after the signal")
			}
			r := s.wait()
			if r.code != cli.ExitOK {
				t.Errorf("exit code %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
			for _, w := range []string{"msg=serving", "kafka=127.0.0.1:19092", "http=127.0.0.1:19644", "msg=\"shutting down\""} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("log does not say %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func TestSecondSignalForcesExit(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // lets the abandoned Shutdown return
	s := startServe(t, func(f *fakeServer) { f.release = release })
	f := s.started()
	s.signals <- syscall.SIGTERM
	select {
	case <-f.shutdownCtx:
	case <-time.After(waitFor):
		t.Fatal("no Shutdown after the first signal")
	}
	s.signals <- syscall.SIGINT // Shutdown is still blocked
	r := s.wait()
	if r.code != cli.ExitFailure {
		t.Errorf("exit code %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "second interrupt") {
		t.Errorf("stderr does not explain the exit:\n%s", r.stderr)
	}
}

func TestBrokerFailureExits1(t *testing.T) {
	s := startServe(t, nil)
	f := s.started()
	f.err = errors.New("disk on fire")
	close(f.done)
	r := s.wait()
	if r.code != cli.ExitFailure {
		t.Errorf("exit code %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "broker stopped: disk on fire") {
		t.Errorf("stderr does not give the cause:\n%s", r.stderr)
	}
}

func TestStartAndShutdownErrorsExit1(t *testing.T) {
	t.Run("start", func(t *testing.T) {
		s := startServe(t, func(f *fakeServer) { f.startErr = errors.New("address in use") })
		r := s.wait()
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "address in use") {
			t.Errorf("exit code %d, want 1 with the cause; stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		s := startServe(t, func(f *fakeServer) { f.shutdownErr = errors.New("deadline exceeded") })
		s.started()
		s.signals <- syscall.SIGTERM
		r := s.wait()
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "shutdown: deadline exceeded") {
			t.Errorf("exit code %d, want 1 with the cause; stderr:\n%s", r.code, r.stderr)
		}
	})
}
