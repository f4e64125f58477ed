package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// The admin CLI's end-to-end tests run the real `barge` binary against real
// brokers and check stdout (tables, and JSON parsed and asserted), stderr
// and exit codes, as a script would.

// cliTimeout bounds one CLI invocation.
const cliTimeout = 60 * time.Second

// cliResult is one run of the barge binary.
type cliResult struct {
	args    []string
	code    int
	stdout  string
	stderr  string
	elapsed time.Duration
}

// cliEnv is where the CLI finds the cluster, passed as BARGE_BROKERS and
// BARGE_ADMIN so that the tests also cover the environment variables.
type cliEnv struct {
	brokers []string // Kafka addresses
	admin   []string // HTTP addresses
}

func cliEnvOf(brokers ...*harness.Broker) cliEnv {
	var e cliEnv
	for _, b := range brokers {
		e.brokers = append(e.brokers, b.KafkaAddr)
		e.admin = append(e.admin, b.HTTPAddr)
	}
	return e
}

func (e cliEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BARGE_") {
			env = append(env, kv)
		}
	}
	return append(env, "BARGE_BROKERS="+strings.Join(e.brokers, ","), "BARGE_ADMIN="+strings.Join(e.admin, ","))
}

// cliCommand prepares a run of barge with args and stdin.
func cliCommand(t *testing.T, e cliEnv, stdin string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// cliRunIn runs barge with stdin to completion (killing it after
// cliTimeout) and returns what it did.
func cliRunIn(t *testing.T, e cliEnv, stdin string, args ...string) cliResult {
	t.Helper()
	cmd, stdout, stderr := cliCommand(t, e, stdin, args...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(cliTimeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("barge %s: still running after %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), cliTimeout, stdout, stderr)
	}
	return cliResult{args: args, code: exitCode(t, err), stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
}

func cliRun(t *testing.T, e cliEnv, args ...string) cliResult {
	t.Helper()
	return cliRunIn(t, e, "", args...)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// must fails the test unless r exited with code.
func (r cliResult) must(t *testing.T, code int) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("barge %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// json decodes stdout into v.
func (r cliResult) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("barge %s: stdout is not JSON: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
}

// jsonLines decodes stdout as one JSON object per line.
func cliJSONLines[T any](t *testing.T, r cliResult) []T {
	t.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("barge %s: line is not JSON: %v\n%s", strings.Join(r.args, " "), err, line)
		}
		out = append(out, v)
	}
	return out
}

// cliWait polls run until cond holds or d passes.
func cliWait(t *testing.T, d time.Duration, what string, run func() cliResult, cond func(cliResult) bool) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		r := run()
		if cond(r) {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s; last run: exit %d\nstdout:\n%s\nstderr:\n%s", d, what, r.code, r.stdout, r.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mustContain fails unless s holds every one of wants.
func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// cliBuffer is a bytes.Buffer that a running process writes while the
// test reads.
type cliBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cliBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *cliBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliMetricsPage fetches /metrics.
func cliMetricsPage(t *testing.T, b *harness.Broker) string {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
