// The short barge-jepsen suite that `make test` runs: the real binaries,
// three brokers in network namespaces, the safe configuration under kill,
// pause and partition (must be valid) and the unsafe negative control
// (must lose acknowledged writes), and nothing left behind.
package jepsen_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/docker"
	"github.com/barge-broker/barge/jepsen/netns"
)

// build compiles ./cmd/barge and ./jepsen/cmd/barge-jepsen into a
// temporary directory.
func build(t *testing.T) (barge, jepsen string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	dir := t.TempDir()
	// barge with -tags invariants: a broken invariant panics, and the
	// log scan reports it as broker-alert.
	for _, b := range []struct{ out, pkg, tags string }{{"barge", "./cmd/barge", "invariants"}, {"barge-jepsen", "./jepsen/cmd/barge-jepsen", ""}} {
		cmd := exec.Command("go", "build", "-tags", b.tags, "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "barge"), filepath.Join(dir, "barge-jepsen")
}

// runJepsen runs barge-jepsen with args and returns its exit status and
// output.
func runJepsen(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	default:
		t.Fatalf("run %s: %v", bin, err)
		return -1, ""
	}
}

func readVerdict(t *testing.T, dir string) checker.Verdict {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "verdict.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v checker.Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func assertNothingLeft(t *testing.T) {
	t.Helper()
	if left, err := netns.Leftovers(); err != nil || len(left) > 0 {
		t.Errorf("left behind (namespaces, links, FORWARD rules): %v (%v)", left, err)
	}
	if m := backend.TmpfsMounts(); len(m) > 0 {
		t.Errorf("tmpfs left mounted: %v", m)
	}
	if docker.CheckPrereqs() == nil {
		if left, err := docker.Leftovers(context.Background()); err != nil || len(left) > 0 {
			t.Errorf("left behind (containers, networks, images): %v (%v)", left, err)
		}
	}
}

func TestJepsenSuite(t *testing.T) {
	if err := netns.CheckPrereqs(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("the suite takes about two minutes")
	}
	barge, jepsen := build(t)
	seed := "7" // its first three faults are one partition, one kill, one pause

	t.Run("usage and setup errors", func(t *testing.T) {
		if code, out := runJepsen(t, jepsen, "run", "--nemesis", "clock", "--barge", barge, "--out", t.TempDir()); code != 2 {
			t.Errorf("unknown fault: exit %d, want 2\n%s", code, out)
		}
		if code, out := runJepsen(t, jepsen, "run", "--barge", "/nonexistent/barge", "--out", t.TempDir()); code != 3 {
			t.Errorf("missing barge binary: exit %d, want 3\n%s", code, out)
		}
	})

	t.Run("not root", func(t *testing.T) {
		// The binary in a directory nobody may enter, run as nobody:
		// exit 3 with the reason, before anything is created.
		dir, err := os.MkdirTemp("", "bjep-nonroot-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "barge-jepsen")
		b, err := os.ReadFile(jepsen)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "run", "--barge", barge, "--out", filepath.Join(dir, "out"))
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out.String(), "need root") {
			t.Fatalf("run as nobody: %v, want exit 3 saying root is needed\n%s", err, out.String())
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		// Ctrl-C once the cluster is up: exit 3, everything removed.
		cmd, done := startUntilUp(t, jepsen, barge)
		cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			t.Fatal("no exit within 90s of SIGINT")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("interrupted run: %v, want exit 3", err)
		}
		assertNothingLeft(t)
	})

	t.Run("killed, then cleanup", func(t *testing.T) {
		// kill -9 leaves the brokers (their own process group), the
		// namespaces, links and FORWARD rule; cleanup removes them all.
		cmd, done := startUntilUp(t, jepsen, barge)
		cmd.Process.Kill()
		<-done
		if left, err := netns.Leftovers(); err != nil || len(left) == 0 {
			t.Fatalf("a killed run left nothing to clean (%v): the test shows nothing", err)
		}
		if code, out := runJepsen(t, jepsen, "cleanup"); code != 0 {
			t.Fatalf("cleanup: exit %d\n%s", code, out)
		}
		assertNothingLeft(t)
	})

	t.Run("safe", func(t *testing.T) {
		dir := t.TempDir()
		start := time.Now()
		code, out := runJepsen(t, jepsen, "run", "--barge", barge, "--nodes", "3", "--time", "60s",
			"--nemesis", "all", "--seed", seed, "--rate", "300", "--out", dir)
		t.Logf("safe run took %v:\n%s", time.Since(start).Round(time.Second), tailLines(out, 20))
		assertNothingLeft(t)
		v := readVerdict(t, dir)
		if code != 0 || !v.Valid {
			t.Fatalf("safe configuration: exit %d, verdict %+v\n%s", code, v, out)
		}
		if v.Faults < 5 || v.SendsOK < 5000 || v.Clients["sarama"] == 0 || v.Commits == 0 || v.Observations == 0 || v.Porcupine != "ok" {
			t.Fatalf("too little happened to mean anything: %+v", v)
		}
		// check reproduces run's verdict from the history alone.
		if code, out := runJepsen(t, jepsen, "check", dir); code != 0 {
			t.Fatalf("check of a valid history: exit %d\n%s", code, out)
		}
		for _, f := range []string{"history.jsonl", "schedule.json", "report.html", "n1.log", "n2.log", "n3.log"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("run left no %s: %v", f, err)
			}
		}
	})

	t.Run("unsafe control", func(t *testing.T) {
		dir := t.TempDir()
		start := time.Now()
		code, out := runJepsen(t, jepsen, "run", "--barge", barge, "--nodes", "3", "--time", "30s",
			"--nemesis", "kill", "--seed", seed, "--rate", "300", "--unsafe", "--out", dir)
		t.Logf("unsafe run took %v:\n%s", time.Since(start).Round(time.Second), tailLines(out, 30))
		assertNothingLeft(t)
		v := readVerdict(t, dir)
		if code != 1 || v.Valid || v.Anomalies[checker.LostWrite] == 0 {
			t.Fatalf("the unsafe configuration lost nothing the checker saw: exit %d, anomalies %v\n%s", code, v.Anomalies, out)
		}
		if code, _ := runJepsen(t, jepsen, "check", dir); code != 1 {
			t.Fatalf("check of an invalid history: exit %d, want 1", code)
		}
	})
}

func TestJepsenDocker(t *testing.T) {
	if err := docker.CheckPrereqs(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("the docker smoke run takes about a minute")
	}
	barge, jepsen := build(t)
	dir := t.TempDir()
	start := time.Now()
	code, out := runJepsen(t, jepsen, "run", "--backend", "docker", "--barge", barge, "--nodes", "3", "--time", "30s",
		"--nemesis", "kill,pause,partition", "--seed", "7", "--rate", "300", "--out", dir)
	t.Logf("docker run took %v:\n%s", time.Since(start).Round(time.Second), tailLines(out, 20))
	assertNothingLeft(t)
	v := readVerdict(t, dir)
	if code != 0 || !v.Valid || v.Faults < 2 || v.SendsOK < 3000 {
		t.Fatalf("docker backend, safe configuration: exit %d, verdict %+v\n%s", code, v, out)
	}
	for _, f := range []string{"n1.log", "n2.log", "n3.log"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Contains(b, []byte("broker stopped")) {
			t.Errorf("%s: no broker log saved from the container (%v)", f, err)
		}
	}
}

// startUntilUp starts a 60 s run and returns once its cluster is up, with
// a channel that gets the process's Wait result. Its output is drained
// until it exits.
func startUntilUp(t *testing.T, jepsen, barge string) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(jepsen, "run", "--barge", barge, "--time", "60s", "--rate", "100", "--out", t.TempDir())
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		done <- err
	}()
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "cluster up") {
				close(up)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-up:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("cluster not up within 90s")
	}
	return cmd, done
}

func tailLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
