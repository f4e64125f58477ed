package deploy

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
)

var (
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bargeBinary builds ./cmd/barge once per test process (TestMain removes it).
func bargeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "barge-deploy-bin-"); buildErr != nil {
			return
		}
		binary = filepath.Join(binDir, "barge")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/barge")
		cmd.Dir = ".."
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

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z0-9-]+)\b`)

// serveFlags are the flags `barge serve --help` lists, the root's included.
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(bargeBinary(t), "serve", "--help").Output()
	if err != nil {
		t.Fatalf("barge serve --help: %v", err)
	}
	flags := map[string]bool{}
	for _, m := range helpFlag.FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	for _, want := range []string{"kafka", "http", "config", "log-format"} {
		if !flags[want] {
			t.Fatalf("barge serve --help lists no --%s; parsed %v from\n%s", want, flags, out)
		}
	}
	return flags
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBroker runs a single-node `barge serve` on loopback until the test
// ends and returns its HTTP address once /readyz answers 200.
func startBroker(t *testing.T) string {
	t.Helper()
	httpAddr := freeAddr(t)
	var log bytes.Buffer
	cmd := exec.Command(bargeBinary(t), "serve", "--id", "0", "--data", t.TempDir(),
		"--kafka", "127.0.0.1:0", "--http", httpAddr, "--raft", freeAddr(t), "--gossip", freeAddr(t))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- broker log ---\n%s", log.String())
		}
	})
	testutil.WaitFor(t, 30*time.Second, "broker ready", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("broker exited:\n%s", log.String())
		default:
		}
		code, err := httpStatus(httpAddr, "/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("status %d, %v", code, err)
	})
	return httpAddr
}

func httpStatus(addr, path string) (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// portOf is the port of a host:port argument.
func portOf(t *testing.T, hostport string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: port: %v", hostport, err)
	}
	return int32(n)
}
