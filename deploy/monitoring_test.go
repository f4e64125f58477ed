package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The alert rules and the dashboard may only use metrics the README
// documents (its Metrics table), and the dashboard shows all of them.

var metricName = regexp.MustCompile(`\bbarge_[a-z0-9_]+`)

// readmeMetrics are the metric names in the README's metrics table: the
// first column of the rows after "| metric | type | what |".
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "| metric | type |"):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in:
			cols := strings.Split(line, "|")
			for _, m := range metricName.FindAllString(cols[1], -1) {
				out[m] = true
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("README metrics table: found only %v", out)
	}
	return out
}

// documented reports whether name is a README metric or one of the series
// a documented histogram exports.
func documented(readme map[string]bool, name string) (string, bool) {
	if readme[name] {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && readme[base] {
			return base, true
		}
	}
	return "", false
}

func TestAlertRules(t *testing.T) {
	readme := readmeMetrics(t)
	raw, err := os.ReadFile(filepath.Join("monitoring", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				if _, ok := documented(readme, m); !ok {
					t.Errorf("alert %s uses %s, which the README's metrics table does not list", r.Alert, m)
				}
			}
		}
	}
	// Every alert has a unit test in alerts_test.yml.
	tests, err := os.ReadFile(filepath.Join("monitoring", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if !regexp.MustCompile(`alertname: ` + a + `\b[^\n]*\n\s+exp_alerts:\s*\n\s+- exp_labels`).Match(tests) {
			t.Errorf("alerts_test.yml never expects %s to fire", a)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (`make deps` installs the Debian package prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	readme := readmeMetrics(t)
	raw, err := os.ReadFile(filepath.Join("monitoring", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		Title  string  `json:"title"`
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q uid %q: want both", dash.Title, dash.UID)
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeats", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: a target without expr or refId", p.Title)
			}
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				base, ok := documented(readme, m)
				if !ok {
					t.Errorf("panel %q uses %s, which the README's metrics table does not list", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	var missing []string
	for m := range readme {
		if !used[m] {
			missing = append(missing, m)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard shows none of %v (documented in the README)", missing)
	}
}
