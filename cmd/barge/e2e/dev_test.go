package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/barge-broker/barge/internal/testutil"
)

// devState is the part of `barge dev`'s dev.json the test reads.
type devState struct {
	Pid     int `json:"pid"`
	Brokers []struct {
		ID  int `json:"id"`
		Pid int `json:"pid"`
	} `json:"brokers"`
}

// TestDevCluster runs `barge dev --nodes 3` as a user would: it waits for
// the cluster it prints, writes to an RF=3 topic with acks=all, kills
// broker 2 with `barge dev --kill 2` from "another terminal", writes on,
// and ends dev with SIGINT; every broker process it started must be gone.
func TestDevCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	cmd := exec.Command(harness.Binary(t), "dev", "--nodes", "3", "--data", dir, "--base-port", "0",
		"--", "--replica-lag-time-max", "3s")
	cmd.Env = cliEnv{}.environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPath := filepath.Join(t.TempDir(), "dev.stderr")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	// pids are every broker process dev.json ever named, for the final
	// check and for the cleanup of a failed run.
	pids := map[int]bool{}
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			// Kill dev; its brokers get SIGTERM from Pdeathsig, and
			// SIGKILL here in case they ignore it.
			cmd.Process.Kill()
			<-exited
		}
		for pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			out, _ := os.ReadFile(stderrPath)
			t.Logf("--- barge dev stderr ---\n%s", harness.Tail(out, 60))
			logs, _ := filepath.Glob(filepath.Join(dir, "broker-*.log"))
			for _, l := range logs {
				out, _ := os.ReadFile(l)
				t.Logf("--- %s ---\n%s", l, harness.Tail(out, 40))
			}
		}
	})

	// The export lines dev prints are the CLI's environment.
	env := cliEnv{}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	timeout := time.After(time.Minute)
	for env.brokers == nil || env.admin == nil {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("barge dev exited before printing the export lines")
			}
			t.Log(line)
			if v, ok := strings.CutPrefix(line, "export BARGE_BROKERS="); ok {
				env.brokers = strings.Split(v, ",")
			}
			if v, ok := strings.CutPrefix(line, "export BARGE_ADMIN="); ok {
				env.admin = strings.Split(v, ",")
			}
		case <-timeout:
			t.Fatal("barge dev printed no export lines within a minute")
		}
	}
	go func() {
		for range lines { // keep dev's stdout drained
		}
	}()
	readState := func() devState {
		t.Helper()
		var st devState
		raw, err := os.ReadFile(filepath.Join(dir, "dev.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("dev.json: %v", err)
		}
		for _, b := range st.Brokers {
			if b.Pid != 0 {
				pids[b.Pid] = true
			}
		}
		return st
	}
	if st := readState(); len(pids) != 3 || st.Pid != cmd.Process.Pid {
		t.Fatalf("dev.json: %+v, want 3 brokers of pid %d", st, cmd.Process.Pid)
	}

	cliRun(t, env, "cluster", "health", "--exit-when-healthy", "--timeout", "90s").must(t, 0)
	const topic = "dev-rf3"
	cliRun(t, env, "topic", "create", topic, "-p", "3", "-r", "3").must(t, 0)

	ctx := harness.Context(t, 3*time.Minute)
	producer, err := kgo.NewClient(kgo.SeedBrokers(env.brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	produce := func(from, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "v-%06d", i)})
		}
		if err := producer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce records %d..%d: %v", from, from+n-1, err)
		}
	}
	produce(0, 300)

	killedPid := 0
	for _, b := range readState().Brokers {
		if b.ID == 2 {
			killedPid = b.Pid
		}
	}
	r := cliRun(t, env, "dev", "--data", dir, "--kill", "2").must(t, 0)
	mustContain(t, "dev --kill output", r.stdout, "broker 2 killed")
	if err := syscall.Kill(killedPid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("broker 2 (pid %d) still exists after --kill: %v", killedPid, err)
	}
	// Writes go on with broker 2 down: acks=all waits for the ISR, which
	// drops broker 2 when the controller fences it.
	produce(300, 300)
	testutil.WaitFor(t, 30*time.Second, "dev.json to show broker 2 stopped", func() (bool, string) {
		for _, b := range readState().Brokers {
			if b.ID == 2 {
				return b.Pid == 0, fmt.Sprintf("pid %d", b.Pid)
			}
		}
		return false, "no broker 2"
	})
	// Kill a second time: an error, not a crash of dev.
	cliRun(t, env, "dev", "--data", dir, "--kill", "2").must(t, 1)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("barge dev after SIGINT: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("barge dev did not exit within 90s of SIGINT")
	}
	for pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("broker pid %d left behind after barge dev exited (kill -0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dev.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
	// After dev is gone, the control commands say so (exit 3, unreachable).
	cliRun(t, env, "dev", "--data", dir, "--restart", "2").must(t, 3)
}
