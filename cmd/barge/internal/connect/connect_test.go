package connect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestKafkaUnreachable(t *testing.T) {
	dead := deadAddr(t)
	start := time.Now()
	_, err := Kafka(context.Background(), nil, []string{dead})
	var unreachable *cli.UnreachableError
	if !errors.As(err, &unreachable) {
		t.Fatalf("Kafka(%s) = %v, want an UnreachableError", dead, err)
	}
	for _, w := range []string{dead, "connection refused", "--brokers", cli.BrokersEnv} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a refused connection took %v to report", d)
	}
}

// TestKafkaNotKafka: a listener that accepts but never answers Kafka is
// unreachable after ProbeTimeout, with a hint about the port.
func TestKafkaNotKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the probe timeout")
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Kafka(context.Background(), nil, []string{srv.Listener.Addr().String()})
	var unreachable *cli.UnreachableError
	if !errors.As(err, &unreachable) || !strings.Contains(err.Error(), "Kafka") {
		t.Fatalf("Kafka against an HTTP server = %v", err)
	}
}

func TestAdminAPIFailsOver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/x" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer srv.Close()
	live := strings.TrimPrefix(srv.URL, "http://")
	dead := deadAddr(t)
	api := NewAdminAPI([]string{dead, live})
	var v struct {
		OK bool `json:"ok"`
	}
	addr, err := api.GetJSON(context.Background(), "/v1/x", &v)
	if err != nil || addr != live || !v.OK {
		t.Fatalf("GetJSON = %q, %v, %+v", addr, err, v)
	}
	var se *StatusError
	if _, err := api.GetJSON(context.Background(), "/v1/missing", &v); !errors.As(err, &se) || se.Status != 404 ||
		!strings.Contains(err.Error(), "--http address") {
		t.Errorf("GetJSON of a missing path = %v", err)
	}
	var unreachable *cli.UnreachableError
	_, err = NewAdminAPI([]string{dead}).GetJSON(context.Background(), "/v1/x", &v)
	if !errors.As(err, &unreachable) || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), cli.AdminEnv) {
		t.Errorf("GetJSON with no live address = %v", err)
	}
}

func TestDiagnose(t *testing.T) {
	for _, tc := range []struct {
		err  error
		says string
	}{
		{&net.DNSError{Name: "kafka-1", Err: "no such host"}, `cannot resolve host "kafka-1"`},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), "nothing listens there"},
		{context.DeadlineExceeded, "firewall"},
		{errors.New("dial tcp 10.0.0.1:9092: i/o timeout"), "firewall"},
		{errors.New("dial tcp: connect: no route to host"), "no route to host"},
		{errors.New("something else"), "something else"},
	} {
		if got := Diagnose(tc.err); !strings.Contains(got, tc.says) {
			t.Errorf("Diagnose(%v) = %q, want it to say %q", tc.err, got, tc.says)
		}
	}
	if got := withDefaultPort("kafka", 9092); got != "kafka:9092" {
		t.Errorf("withDefaultPort = %q", got)
	}
	if got := withDefaultPort("kafka:1", 9092); got != "kafka:1" {
		t.Errorf("withDefaultPort = %q", got)
	}
}

func TestAcksAndCompression(t *testing.T) {
	for _, ok := range []string{"all", "-1", "1", "0"} {
		if _, err := AcksOpts(ok); err != nil {
			t.Errorf("AcksOpts(%q): %v", ok, err)
		}
	}
	var usage *cli.UsageError
	if _, err := AcksOpts("2"); !errors.As(err, &usage) {
		t.Errorf("AcksOpts(2) = %v, want a usage error", err)
	}
	for _, ok := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		if _, err := CompressionOpt(ok); err != nil {
			t.Errorf("CompressionOpt(%q): %v", ok, err)
		}
	}
	if _, err := CompressionOpt("brotli"); !errors.As(err, &usage) {
		t.Errorf("CompressionOpt(brotli) = %v, want a usage error", err)
	}
}
