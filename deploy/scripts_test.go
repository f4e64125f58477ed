package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The scripts' behaviour against a running cluster is tested in
// cmd/barge/e2e (TestRollingRestartScript, on `barge dev`); here they are
// linted and their usage errors checked, which needs no cluster.

func TestScriptsShellcheck(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("scripts", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in deploy/scripts (%v)", err)
	}
	for _, s := range scripts {
		if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", s, err)
		}
	}
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (`make deps` installs the Debian package shellcheck)")
	}
	if out, err := exec.Command(shellcheck, scripts...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

func TestRollingRestartUsage(t *testing.T) {
	script := filepath.Join("scripts", "rolling-restart.sh")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no restart command", []string{"b1"}, "-c RESTART_COMMAND is required"},
		{"no brokers", []string{"-c", "systemctl restart {}"}, "name at least one broker"},
		{"no placeholder", []string{"-c", "systemctl restart barge", "b1"}, "must contain {}"},
		{"no barge binary", []string{"-b", "/nonexistent/barge", "-c", "true {}", "b1"}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(script, tc.args...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("rolling-restart.sh %q: %v, want exit 2 saying %q\n%s", tc.args, err, tc.want, out)
			}
		})
	}
}
