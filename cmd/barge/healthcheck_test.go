package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			http.Error(w, "not ready: metadata not loaded yet", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	if r := runBarge(t, noServer(t), "healthcheck", "--http", addr); r.code != cli.ExitFailure || !strings.Contains(r.stderr, "not ready") {
		t.Errorf("not ready: exit %d, stderr %q; want %d and the reason", r.code, r.stderr, cli.ExitFailure)
	}
	ready.Store(true)
	if r := runBarge(t, noServer(t), "healthcheck", "--http", addr); r.code != cli.ExitOK {
		t.Errorf("ready: exit %d, stderr %q", r.code, r.stderr)
	}
	// The container's way: serve's BARGE_HTTP, its wildcard probed on loopback.
	t.Setenv("BARGE_HTTP", "0.0.0.0:"+port)
	if r := runBarge(t, noServer(t), "healthcheck"); r.code != cli.ExitOK {
		t.Errorf("from BARGE_HTTP: exit %d, stderr %q", r.code, r.stderr)
	}
	srv.Close()
	if r := runBarge(t, noServer(t), "healthcheck"); r.code != cli.ExitUnreachable {
		t.Errorf("no broker: exit %d, stderr %q; want %d", r.code, r.stderr, cli.ExitUnreachable)
	}
	if r := runBarge(t, noServer(t), "healthcheck", "--http", "nonsense"); r.code != cli.ExitUsage {
		t.Errorf("bad address: exit %d, stderr %q; want %d", r.code, r.stderr, cli.ExitUsage)
	}
}
