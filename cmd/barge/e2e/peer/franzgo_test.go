package peer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// franzGoTestsEnv turns TestFranzGoSuite on (`make peer-franz-go` sets it).
const franzGoTestsEnv = "BARGE_FRANZGO_TESTS"

// franzGoPackage is the package whose integration tests run: franz-go's
// client, at the version in go.mod, from the module cache.
const franzGoPackage = "github.com/twmb/franz-go/pkg/kgo"

// TestFranzGoSuite runs the kgo package's own tests (its integration tests
// talk to KGO_SEEDS) against one broker, or each cluster size listed in
// BARGE_PEER_BROKERS with KGO_TEST_RF set to it. KGO_LOG_LEVEL defaults to none:
// at info the suite writes a few hundred megabytes of client logs; set it to
// info or debug to see them for a failing test.
func TestFranzGoSuite(t *testing.T) {
	if os.Getenv(franzGoTestsEnv) == "" {
		t.Skipf("%s is not set: `make peer-franz-go` runs this", franzGoTestsEnv)
	}
	last := repeatFailuresLast(t)
	for _, n := range peerClusterSizes(t) {
		t.Run(fmt.Sprintf("%d-broker", n), func(t *testing.T) { runFranzGoSuite(t, n, last) })
	}
}

// runFranzGoSuite runs the kgo tests against n brokers, with KGO_TEST_RF=n.
func runFranzGoSuite(t *testing.T, n int, last *digest) {
	exp := loadExpectations(t, "franz-go", n)
	var skips []string
	for _, name := range sortedKeys(exp) {
		if exp[name].outcome == skipped {
			if strings.Contains(name, "/") {
				t.Fatalf("expected.txt: franz-go skips name top-level tests, not %s", name)
			}
			skips = append(skips, regexp.QuoteMeta(name))
		}
	}

	brokers, seeds := startPeerCluster(t, n)
	logDir := os.Getenv("BARGE_PEER_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("franz-go-%d.jsonl", n))

	args := []string{"test", "-json", "-count=1", "-timeout", "12m"}
	if len(skips) > 0 {
		args = append(args, "-skip", "^("+strings.Join(skips, "|")+")$")
	}
	args = append(args, franzGoPackage)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	level := os.Getenv("KGO_LOG_LEVEL")
	if level == "" {
		level = "none"
	}
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+strings.Join(seeds, ","), "KGO_TEST_RF="+strconv.Itoa(n), "KGO_LOG_LEVEL="+level)
	start := time.Now()
	out, runErr := cmd.Output()
	os.WriteFile(logPath, out, 0o644)
	results, err := parseGoTestJSON(out, logPath)
	if err != nil {
		t.Fatalf("go test %s: %v (run error %v)", franzGoPackage, err, runErr)
	}
	if len(results) == 0 {
		msg := ""
		if ee, ok := runErr.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go test %s ran no test: %v\n%s\n%s", franzGoPackage, runErr, msg, harness.Tail(out, 20))
	}
	for _, name := range sortedKeys(exp) {
		if e := exp[name]; e.outcome == skipped {
			results[name] = result{outcome: skipped, detail: e.reason}
		}
	}
	t.Logf("franz-go %s: %d tests in %v, output in %s", franzGoVersion(t), len(results), time.Since(start).Round(time.Second), logPath)
	for _, b := range brokers {
		if !b.Running() {
			t.Errorf("broker %d exited during the suite:\n%s", b.ID, b.Log())
			last.add(t, fmt.Sprintf("broker %d exited during the suite", b.ID))
		}
	}
	judge(t, "franz-go", results, exp, last)
}

// goTestEvent is one line of `go test -json` (test2json) output.
type goTestEvent struct {
	Action string
	Test   string
	Output string
}

// parseGoTestJSON returns the outcome of every top-level test; a failing
// test's detail is the end of its own output. Subtests count through their
// parent, which fails when one of them does.
func parseGoTestJSON(out []byte, logPath string) (map[string]result, error) {
	results := map[string]result{}
	output := map[string]*strings.Builder{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev goTestEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // a line the build printed, not test2json
		}
		if ev.Test == "" {
			continue
		}
		top, _, _ := strings.Cut(ev.Test, "/")
		switch ev.Action {
		case "output":
			if output[top] == nil {
				output[top] = &strings.Builder{}
			}
			if output[top].Len() < 64<<10 {
				output[top].WriteString(ev.Output)
			}
		case "pass", "fail", "skip":
			if ev.Test != top {
				continue
			}
			r := result{outcome: map[string]outcome{"pass": passed, "fail": failed, "skip": skipped}[ev.Action], log: logPath}
			if b := output[top]; b != nil && r.outcome != passed {
				r.detail = testMessage(b.String(), r.outcome)
			}
			results[top] = r
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test2json output: %w", err)
	}
	return results, nil
}

// testMessage keeps what a failing or skipped test said about itself: the
// lines test2json got from t.Log/t.Error/t.Skip (indented file:line lines),
// without the === RUN / PAUSE / CONT bookkeeping.
func testMessage(output string, o outcome) string {
	var keep []string
	for _, line := range strings.Split(output, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "=== ") || strings.HasPrefix(trimmed, "--- ") {
			continue
		}
		keep = append(keep, trimmed)
	}
	n := 20
	if o == skipped {
		n = 2
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// moduleRoot is the directory of Barge's go.mod, where `go test` of a
// dependency's package uses the dependency's version from go.mod.
func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func franzGoVersion(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/twmb/franz-go").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/twmb/franz-go: %v", err)
	}
	return strings.TrimSpace(string(out))
}
