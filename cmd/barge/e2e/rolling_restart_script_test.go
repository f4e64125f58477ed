package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// rollingRestartScript is deploy/scripts/rolling-restart.sh.
func rollingRestartScript(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "scripts", "rolling-restart.sh")
}

// runScript runs the rolling-restart script against the dev cluster d.
func runScript(t *testing.T, d *devRun, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(rollingRestartScript(t), args...)
	cmd.Env = append(d.env.environ(), "BARGE_BIN="+harness.Binary(t))
	out, err := func() ([]byte, error) {
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return []byte(stdout.String() + "\n--- stderr ---\n" + stderr.String()), err
	}()
	r := cliResult{args: args, code: exitCode(t, err), stdout: string(out)}
	t.Logf("rolling-restart.sh %s: exit %d\n%s", strings.Join(args, " "), r.code, out)
	return r
}

// TestRollingRestartScript restarts every broker of a `barge dev` cluster
// with deploy/scripts/rolling-restart.sh, the restart command being
// `barge dev --restart`: each broker gets a new process, one at a time,
// and the cluster ends healthy. A failing restart command stops the
// script at the first broker with exit 1.
func TestRollingRestartScript(t *testing.T) {
	d := startDev(t, "", 3, "--replica-lag-time-max", "3s")
	// Replicas on every broker, so each restart leaves partitions to
	// re-elect and to catch up before the cluster is healthy again.
	cliRun(t, d.env, "cluster", "health", "--exit-when-healthy", "--timeout", "90s").must(t, 0)
	cliRun(t, d.env, "topic", "create", "rolling", "-p", "6", "-r", "3").must(t, 0)
	before := d.brokerPids()
	restart := harness.Binary(t) + " dev --data " + d.dir + " --restart {}"

	r := runScript(t, d, "-c", "false {}", "-t", "90s", "1", "2", "3")
	if r.code != 1 || !strings.Contains(r.stdout, "not restarted: 2 3") {
		t.Fatalf("failing restart command: exit %d, want 1 naming the brokers not restarted", r.code)
	}
	if got := d.brokerPids(); got[1] != before[1] {
		t.Fatalf("a failed restart command changed broker 1: pid %d → %d", before[1], got[1])
	}

	r = runScript(t, d, "-c", restart, "-t", "90s", "1", "2", "3")
	if r.code != 0 {
		t.Fatalf("rolling restart: exit %d, want 0", r.code)
	}
	after := d.brokerPids()
	for id, pid := range before {
		if after[id] == 0 || after[id] == pid {
			t.Errorf("broker %d: pid %d before, %d after: not restarted", id, pid, after[id])
		}
	}
	cliRun(t, d.env, "cluster", "health").must(t, 0)
	d.interrupt()
}
