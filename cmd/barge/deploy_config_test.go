package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// The example configuration under deploy/ is documentation that must not
// drift from the settings: these tests fail when a setting is added to
// serve without a key in deploy/config/barge.yaml, or a key or variable
// there names no setting.

const deployDir = "../../deploy"

// commentedKey matches a key given only as a commented-out alternative,
// like "# log-retention-hours: 168".
var commentedKey = regexp.MustCompile(`^#\s*([a-z][a-z0-9-]*):`)

func TestDeployConfigHasEverySetting(t *testing.T) {
	path := filepath.Join(deployDir, "config", "barge.yaml")
	all := append(loggingFields(), serveFields()...)

	// Every key is a setting, once, with a value it parses.
	file, err := readConfigFile(path, all)
	if err != nil {
		t.Fatal(err)
	}
	// Every setting is a key, or, for a setting that shares its value with
	// another (log-retention-ms and -hours), a commented-out key: giving
	// both is an error.
	commented := map[string]bool{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := commentedKey.FindStringSubmatch(sc.Text()); m != nil {
			commented[m[1]] = true
		}
	}
	setGroups := map[string]bool{}
	for i := range all {
		if _, ok := file[all[i].name]; ok {
			setGroups[all[i].key()] = true
		}
	}
	for i := range all {
		fl := &all[i]
		_, set := file[fl.name]
		switch {
		case set:
		case commented[fl.name] && fl.group != "" && setGroups[fl.key()]:
		case commented[fl.name]:
			t.Errorf("%s: setting %q is only commented out; give it a value", path, fl.name)
		default:
			t.Errorf("%s: setting %q is missing (add it with its usage as a comment: %s)", path, fl.name, fl.usage)
		}
	}

	// The whole file through serve, as the broker would read it: values,
	// groups and broker.Config.Validate.
	var got broker.Config
	deps, _, _ := testDeps(t)
	deps.LookupEnv = func(string) (string, bool) { return "", false }
	deps.Environ = func() []string { return nil }
	if code := run([]string{"serve", "--config", path}, deps, capture(&got)); code != cli.ExitOK {
		t.Fatalf("barge serve --config %s: exit code %d, want 0", path, code)
	}
	if got.ID != 1 || got.DataDir != "/var/lib/barge" || len(got.Join) != 2 {
		t.Errorf("config read as id %d, data %q, join %v; want 1, /var/lib/barge, two brokers", got.ID, got.DataDir, got.Join)
	}
}

// TestDeploySystemdEnvNamesSettings checks that every variable the
// systemd example environment file sets, commented out or not, is one
// barge reads, and that the unit's data directory is the config's.
func TestDeploySystemdEnvNamesSettings(t *testing.T) {
	path := filepath.Join(deployDir, "systemd", "barge.env")
	all := append(loggingFields(), serveFields()...)
	known := map[string]bool{configEnv: true, cli.BrokersEnv: true, cli.AdminEnv: true}
	for i := range all {
		known[envName(all[i].name)] = true
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assign := regexp.MustCompile(`^#?\s*(BARGE_[A-Z0-9_]+)=`)
	n := 0
	for i, line := range strings.Split(string(raw), "\n") {
		m := assign.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		if !known[m[1]] {
			t.Errorf("%s line %d: %s is not a variable barge reads", path, i+1, m[1])
		}
	}
	if n == 0 {
		t.Errorf("%s sets no BARGE_ variable", path)
	}
	if !strings.Contains(string(raw), "\nBARGE_CONFIG=/etc/barge/barge.yaml") {
		t.Errorf("%s: want BARGE_CONFIG=/etc/barge/barge.yaml, the file deploy/config/barge.yaml installs as", path)
	}
}
