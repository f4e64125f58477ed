package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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

// devRun is one `barge dev` process a test started.
type devRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string     // its --data
	env    cliEnv     // from the export lines it printed
	exited chan error // Wait's result, once
	// pids are every broker process dev.json ever named, for the checks
	// and for the cleanup of a failed run.
	pids map[int]bool
}

// startDev starts `barge dev --nodes n` on free ports with extra serve
// flags, its data in dir (a new directory if ""), and returns once it has
// printed the export lines. The cleanup kills whatever is left of it.
func startDev(t *testing.T, dir string, n int, extra ...string) *devRun {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "dev")
	}
	d := &devRun{t: t, dir: dir, exited: make(chan error, 1), pids: map[int]bool{}}
	args := append([]string{"dev", "--nodes", strconv.Itoa(n), "--data", d.dir, "--base-port", "0", "--"}, extra...)
	d.cmd = exec.Command(harness.Binary(t), args...)
	d.cmd.Env = cliEnv{}.environ()
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPath := filepath.Join(t.TempDir(), "dev.stderr")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stderr.Close() })
	d.cmd.Stderr = stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case err := <-d.exited:
			d.exited <- err
		default:
			// Kill dev; its brokers get SIGTERM from Pdeathsig, and
			// SIGKILL here in case they ignore it.
			d.cmd.Process.Kill()
			d.exited <- <-d.exited
		}
		for pid := range d.pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			out, _ := os.ReadFile(stderrPath)
			t.Logf("--- barge dev stderr ---\n%s", harness.Tail(out, 60))
			logs, _ := filepath.Glob(filepath.Join(d.dir, "broker-*.log"))
			for _, l := range logs {
				out, _ := os.ReadFile(l)
				t.Logf("--- %s ---\n%s", l, harness.Tail(out, 40))
			}
		}
	})

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exited <- d.cmd.Wait() // after the pipe is drained, as Wait requires
	}()
	timeout := time.After(time.Minute)
	for d.env.brokers == nil || d.env.admin == nil {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("barge dev exited before printing the export lines")
			}
			t.Log(line)
			if v, ok := strings.CutPrefix(line, "export BARGE_BROKERS="); ok {
				d.env.brokers = strings.Split(v, ",")
			}
			if v, ok := strings.CutPrefix(line, "export BARGE_ADMIN="); ok {
				d.env.admin = strings.Split(v, ",")
			}
		case <-timeout:
			t.Fatal("barge dev printed no export lines within a minute")
		}
	}
	go func() {
		for range lines { // keep dev's stdout drained
		}
	}()
	if st := d.state(); len(d.pids) != n || st.Pid != d.cmd.Process.Pid {
		t.Fatalf("dev.json: %+v, want %d brokers of pid %d", st, n, d.cmd.Process.Pid)
	}
	return d
}

// state reads dev.json and notes its broker pids.
func (d *devRun) state() devState {
	d.t.Helper()
	var st devState
	raw, err := os.ReadFile(filepath.Join(d.dir, "dev.json"))
	if err != nil {
		d.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		d.t.Fatalf("dev.json: %v", err)
	}
	for _, b := range st.Brokers {
		if b.Pid != 0 {
			d.pids[b.Pid] = true
		}
	}
	return st
}

// brokerPids are the running brokers' pids by id.
func (d *devRun) brokerPids() map[int]int {
	out := map[int]int{}
	for _, b := range d.state().Brokers {
		out[b.ID] = b.Pid
	}
	return out
}

// interrupt sends SIGINT and waits for a clean exit; then no broker
// process it ever started may exist.
func (d *devRun) interrupt() {
	t := d.t
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("barge dev after SIGINT: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("barge dev did not exit within 90s of SIGINT")
	}
	for pid := range d.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("broker pid %d left behind after barge dev exited (kill -0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "dev.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// TestDevCluster runs `barge dev --nodes 3` as a user would: it waits for
// the cluster it prints, writes to an RF=3 topic with acks=all, kills
// broker 2 with `barge dev --kill 2` from "another terminal", writes on,
// and ends dev with SIGINT; every broker process it started must be gone.
// A second dev on the same directory brings the same cluster back, with
// every acknowledged record.
func TestDevCluster(t *testing.T) {
	d := startDev(t, "", 3, "--replica-lag-time-max", "3s")
	env, dir := d.env, d.dir
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

	killedPid := d.brokerPids()[2]
	r := cliRun(t, env, "dev", "--data", dir, "--kill", "2").must(t, 0)
	mustContain(t, "dev --kill output", r.stdout, "broker 2 killed")
	if err := syscall.Kill(killedPid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("broker 2 (pid %d) still exists after --kill: %v", killedPid, err)
	}
	// Writes go on with broker 2 down: acks=all waits for the ISR, which
	// drops broker 2 when the controller fences it.
	produce(300, 300)
	testutil.WaitFor(t, 30*time.Second, "dev.json to show broker 2 stopped", func() (bool, string) {
		pid := d.brokerPids()[2]
		return pid == 0, fmt.Sprintf("pid %d", pid)
	})
	// Kill a second time: an error, not a crash of dev.
	cliRun(t, env, "dev", "--data", dir, "--kill", "2").must(t, 1)

	d.interrupt()
	// After dev is gone, the control commands say so (exit 3, unreachable).
	cliRun(t, env, "dev", "--data", dir, "--restart", "2").must(t, 3)

	// Again on the same data: same ports (from dev.json), same records.
	d2 := startDev(t, dir, 3)
	if !slices.Equal(d2.env.brokers, env.brokers) {
		t.Errorf("second dev on %s: brokers %v, want the first's %v", dir, d2.env.brokers, env.brokers)
	}
	cliRun(t, d2.env, "cluster", "health", "--exit-when-healthy", "--timeout", "90s").must(t, 0)
	r = cliRun(t, d2.env, "consume", topic, "-o", "start:end", "--output", "json")
	if n := len(cliJSONLines[map[string]any](t, r.must(t, 0))); n != 600 {
		t.Errorf("after the second start: %d records, want the 600 acknowledged", n)
	}
	d2.interrupt()
}
