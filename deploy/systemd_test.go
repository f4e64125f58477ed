package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// unitFile is a systemd unit: section → key → values in order (keys may
// repeat).
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s line %d: not key=value in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// TestSystemdUnit checks the hardening and the shutdown budget of
// barge.service against the example config, and runs systemd-analyze
// verify on it where systemd is installed.
func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("systemd", "barge.service")
	u := readUnit(t, path)
	for key, want := range map[string]string{
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
		"PrivateTmp":      "yes",
		"Restart":         "on-failure",
		"KillSignal":      "SIGTERM",
		"User":            "barge",
	} {
		if got := u.get("Service", key); got != want {
			t.Errorf("%s: [Service] %s=%q, want %q", path, key, got, want)
		}
	}
	if u.get("Install", "WantedBy") == "" {
		t.Errorf("%s: no [Install] WantedBy", path)
	}

	// The example config's data directory is the one writable path, and
	// its shutdown-timeout fits in TimeoutStopSec.
	raw, err := os.ReadFile(filepath.Join("config", "barge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Data            string `json:"data"`
		ShutdownTimeout string `json:"shutdown-timeout"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if rw := strings.Fields(u.get("Service", "ReadWritePaths")); len(rw) != 1 || rw[0] != cfg.Data {
		t.Errorf("%s: ReadWritePaths=%v, want only the data directory %s of config/barge.yaml", path, rw, cfg.Data)
	}
	shutdown, err := time.ParseDuration(cfg.ShutdownTimeout)
	if err != nil {
		t.Fatalf("config/barge.yaml shutdown-timeout: %v", err)
	}
	stopSec, err := strconv.Atoi(u.get("Service", "TimeoutStopSec"))
	if err != nil || time.Duration(stopSec)*time.Second < shutdown+30*time.Second {
		t.Errorf("%s: TimeoutStopSec=%s, want shutdown-timeout (%v) plus 30 s at least", path, u.get("Service", "TimeoutStopSec"), shutdown)
	}
	if n, err := strconv.Atoi(u.get("Service", "LimitNOFILE")); err != nil || n < 100000 {
		t.Errorf("%s: LimitNOFILE=%s, want at least 100000 (segments, indexes, connections)", path, u.get("Service", "LimitNOFILE"))
	}
	exec0 := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec0) < 2 || !filepath.IsAbs(exec0[0]) || filepath.Base(exec0[0]) != "barge" || exec0[1] != "serve" {
		t.Fatalf("%s: ExecStart=%q, want /abs/path/barge serve", path, u.get("Service", "ExecStart"))
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd); the keys were checked above")
	}
	// verify insists that ExecStart's binary exists: point it at the
	// one just built, leaving the rest of the unit as it is.
	unit, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "barge.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), exec0[0], bargeBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		// Unknown keys are only warnings to systemd, so any output fails.
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}
