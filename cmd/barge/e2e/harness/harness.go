// Package harness starts real `barge serve` processes for end-to-end tests:
// it builds the binary once, picks free loopback ports, starts one broker or
// a cluster, waits until every broker is ready, and stops them (SIGTERM, or
// SIGKILL for crash tests). Tests then talk to the brokers with real Kafka
// clients.
package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds ./cmd/barge once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "barge-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "barge")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/barge")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/barge: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

var (
	portsMu sync.Mutex
	// portsGiven are the ports FreePort handed out in this test process:
	// the kernel may offer a port again once its probe listener closed, and
	// two addresses of one broker on the same port make it exit at start.
	portsGiven = map[int]bool{}
)

// Main runs a test package's tests and then removes the barge binary
// Binary built for them (tests remove what they create). A package whose
// tests use the harness calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	return code
}

// FreePort returns a loopback port that was free a moment ago and that it
// has not returned before in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no loopback port free that was not handed out already")
	return 0
}

// Broker is one running `barge serve` process.
type Broker struct {
	ID        int
	DataDir   string
	KafkaAddr string
	HTTPAddr  string
	RaftAddr  string
	Gossip    string
	Args      []string // extra flags given at start
	// ExternalPort, when not 0, gives the broker named listeners:
	// INTERNAL on KafkaAddr (what brokers replicate over) and EXTERNAL
	// bound on 127.0.0.1:ExternalPort, advertised as localhost:ExternalPort.
	ExternalPort int

	t       testing.TB
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	exitErr error
}

// Options shape a broker or cluster start.
type Options struct {
	// ExtraArgs are added to every broker's command line.
	ExtraArgs []string
	// DataParent, when set, holds the brokers' data directories (a new one
	// per start attempt) instead of the test's temporary directory: a
	// size-limited tmpfs the test mounted, say.
	DataParent string
	// NamedListeners gives every broker an INTERNAL and an EXTERNAL
	// listener (see Broker.ExternalPort).
	NamedListeners bool
}

// dataDir is a new data directory for broker id: in DataParent when set,
// else in the test's temporary directory.
func (o Options) dataDir(t testing.TB, id int) string {
	t.Helper()
	if o.DataParent == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(o.DataParent, fmt.Sprintf("broker-%d-", id))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// StartBroker starts a single-node broker with its data in a new temporary
// directory and waits until it is ready. Ports are picked free just before
// the start, so another process can take one first; the start is then
// retried on new ports (see compatStart).
func StartBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	return compatStart(t, 1, opts, false)[0]
}

// StartCluster starts n brokers that form one cluster with --bootstrap-expect
// n and waits until each is ready and sees all n brokers, retrying on new
// ports like StartBroker.
func StartCluster(t testing.TB, n int, opts Options) []*Broker {
	t.Helper()
	return compatStart(t, n, opts, true)
}

func newBroker(t testing.TB, id int, dataDir string, extra []string) *Broker {
	addr := func() string { return "127.0.0.1:" + strconv.Itoa(FreePort(t)) }
	b := &Broker{
		ID: id, DataDir: dataDir, t: t,
		KafkaAddr: addr(), HTTPAddr: addr(), RaftAddr: addr(), Gossip: addr(),
		Args: append([]string(nil), extra...),
	}
	t.Cleanup(func() { b.Stop() })
	return b
}

// Start launches the process with the broker's addresses and Args. Its
// output goes to a log file that is copied into the test log on failure.
func (b *Broker) Start() {
	b.t.Helper()
	listen := []string{"--kafka", b.KafkaAddr}
	if b.ExternalPort != 0 {
		ext := strconv.Itoa(b.ExternalPort)
		listen = []string{"--listeners", "INTERNAL=" + b.KafkaAddr + ",EXTERNAL=127.0.0.1:" + ext,
			"--advertised-listeners", "INTERNAL=" + b.KafkaAddr + ",EXTERNAL=localhost:" + ext,
			"--inter-broker-listener", "INTERNAL"}
	}
	args := append(append([]string{"serve",
		"--id", strconv.Itoa(b.ID), "--data", b.DataDir,
		"--http", b.HTTPAddr, "--raft", b.RaftAddr, "--gossip", b.Gossip,
		"--fast-failure-detection",
	}, listen...), b.Args...)
	b.logPath = filepath.Join(b.DataDir, fmt.Sprintf("broker-%d-%d.log", b.ID, time.Now().UnixNano()))
	logFile, err := os.Create(b.logPath)
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmd = exec.Command(Binary(b.t), args...)
	b.cmd.Env = brokerEnv(os.Environ())
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	if err := b.cmd.Start(); err != nil {
		logFile.Close()
		b.t.Fatalf("start broker %d: %v", b.ID, err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		b.exitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}(b.cmd, b.exited)
	t := b.t
	logPath := b.logPath
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("--- log of broker %d (%s) ---\n%s", b.ID, logPath, Tail(out, 200))
			}
		}
	})
}

// testOnlyEnv are the BARGE_ variables that configure the tests
// themselves, not a broker.
var testOnlyEnv = []string{"BARGE_PEER_LOGS", "BARGE_PEER_BROKERS", "BARGE_LIBRDKAFKA_TESTS",
	"BARGE_FRANZGO_TESTS", "BARGE_SEED", "BARGE_TEST_LOG", "BARGE_BIN"}

// brokerEnv is the test's environment without testOnlyEnv: barge serve
// reads BARGE_* as its settings and warns about every name it does not
// know. A setting given so (BARGE_LOG_LEVEL=debug, say) still reaches it.
func brokerEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(testOnlyEnv, name)
	})
}

// Pid is the process id of the running broker.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (b *Broker) Running() bool {
	select {
	case <-b.exited:
		return false
	default:
		return b.cmd != nil
	}
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (b *Broker) Stop() error {
	if b.cmd == nil || !b.Running() {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("broker %d did not stop within 30s of SIGTERM", b.ID)
	}
	return b.exitErr
}

// Kill stops the process with SIGKILL, as a crash would.
func (b *Broker) Kill() {
	if b.cmd == nil || !b.Running() {
		return
	}
	b.cmd.Process.Kill()
	<-b.exited
}

// Restart starts the process again on the same data directory and ports.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Start()
	b.WaitReady(60 * time.Second)
}

// Log returns what the process wrote so far.
func (b *Broker) Log() string {
	out, _ := os.ReadFile(b.logPath)
	return string(out)
}

// WaitReady waits until /readyz answers 200.
func (b *Broker) WaitReady(d time.Duration) {
	b.t.Helper()
	b.WaitFor(d, fmt.Sprintf("broker %d ready", b.ID), func() bool {
		resp, err := http.Get("http://" + b.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// WaitFor polls cond until it holds or d passes (then the test fails). It
// also fails at once when the process exits.
func (b *Broker) WaitFor(d time.Duration, what string, cond func() bool) {
	b.t.Helper()
	testutil.WaitFor(b.t, d, what, func() (bool, string) {
		if !b.Running() {
			b.t.Fatalf("broker %d exited (%v) while waiting for %s\n%s", b.ID, b.exitErr, what, Tail([]byte(b.Log()), 60))
		}
		return cond(), ""
	})
}

// GetJSON fetches an HTTP path of the broker and decodes it.
func (b *Broker) GetJSON(path string, v any) error {
	resp, err := http.Get("http://" + b.HTTPAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Metric returns the value of an unlabelled Prometheus metric from /metrics.
func (b *Broker) Metric(name string) (float64, error) {
	resp, err := http.Get("http://" + b.HTTPAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// PeakRSS is the process's peak resident set size (VmHWM) in bytes.
func (b *Broker) PeakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", b.Pid()))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", b.Pid())
}

// Seeds returns the Kafka addresses of brokers, for client bootstrap lists.
func Seeds(brokers ...*Broker) []string {
	var out []string
	for _, b := range brokers {
		out = append(out, b.KafkaAddr)
	}
	return out
}

// Context returns a context that ends with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Tail returns the last lines of b.
func Tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// JoinBroker starts broker id as a new member of the running cluster of
// brokers (gossip --join, no bootstrap) with its data in a new directory
// (in opts.DataParent when set), and waits until it is ready. A port taken meanwhile is
// retried on new ones, as StartCluster does.
func JoinBroker(t testing.TB, brokers []*Broker, id int, opts Options) *Broker {
	t.Helper()
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Gossip)
	}
	for attempt := 1; ; attempt++ {
		b := newBroker(t, id, opts.dataDir(t, id), opts.ExtraArgs)
		b.Args = append(b.Args, "--join", strings.Join(seeds, ","))
		b.Start()
		err := compatWaitListening([]*Broker{b}, 60*time.Second)
		if err == nil {
			return b
		}
		b.Stop()
		if !strings.Contains(err.Error(), "address already in use") || attempt == compatStartAttempts {
			t.Fatalf("join broker %d, attempt %d: %v", id, attempt, err)
		}
	}
}
