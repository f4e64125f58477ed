package peer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// librdkafkaTestsEnv names the variable that holds librdkafka's built
// tests/ directory (build-librdkafka.sh prints it).
const librdkafkaTestsEnv = "BARGE_LIBRDKAFKA_TESTS"

// librdkafkaKafkaVersion is the Kafka version the suite is told the broker
// is: it gates tests by broker version, and Barge's API ranges are those of
// a Kafka 3.x broker.
const librdkafkaKafkaVersion = "3.7.0"

// librdkafkaWorkers is how many test-runner processes run at once: the
// suite's tests mostly wait on timers and rebalances, so four share two
// cores well (the suite's own `make` default is parallel too).
const librdkafkaWorkers = 4

// librdkafkaTestTimeout bounds one test-runner process; the suite's own
// per-test timeouts are shorter, so this only catches a hang.
const librdkafkaTestTimeout = 6 * time.Minute

// TestLibrdkafkaSuite runs librdkafka's regression suite in quick mode
// (`test-runner -Q`, as its `make quick` does) against one broker whose
// auto-created topics get 4 partitions, as the suite's own test clusters
// have; with BARGE_PEER_BROKERS=1,3 also against three brokers replicating
// every topic three times (the suite's usual cluster). Each test number runs in its own test-runner process, so one
// test's leaked handle or crash is charged to it alone. Tests that run
// without a broker (-L: the suite's mock-cluster and unit tests) and the
// sockem tests that need its socket shim (-E, as `make quick`) are left to
// the suite's own CI.
func TestLibrdkafkaSuite(t *testing.T) {
	dir := os.Getenv(librdkafkaTestsEnv)
	if dir == "" {
		t.Skipf("%s is not set: `make peer-librdkafka` builds the suite and runs this", librdkafkaTestsEnv)
	}
	runner := filepath.Join(dir, "test-runner")
	if _, err := os.Stat(runner); err != nil {
		t.Fatalf("%s: %v", librdkafkaTestsEnv, err)
	}
	tests, err := librdkafkaTests(filepath.Join(dir, "test.c"))
	if err != nil {
		t.Fatal(err)
	}
	last := repeatFailuresLast(t)
	for _, n := range peerClusterSizes(t) {
		t.Run(fmt.Sprintf("%d-broker", n), func(t *testing.T) { runLibrdkafkaSuite(t, runner, dir, tests, n, last) })
	}
}

// runLibrdkafkaSuite runs the suite against clusters of n brokers, one per
// scenario.
func runLibrdkafkaSuite(t *testing.T, runner, dir string, tests map[string][]librdkafkaTest, n int, last *digest) {
	exp := loadExpectations(t, "librdkafka", n)

	logDir := os.Getenv("BARGE_PEER_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	}
	logDir = filepath.Join(logDir, fmt.Sprintf("librdkafka-%d", n))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}

	results := map[string]result{}
	toRun := map[string][]string{} // scenario -> test numbers with a test in it
	for _, num := range sortedKeys(tests) {
		names := tests[num]
		if e, ok := exp[num]; ok && e.outcome == skipped {
			for _, n := range names {
				results[n.name] = result{outcome: skipped, detail: e.reason}
			}
			continue
		}
		scenarios := map[string]bool{}
		for _, n := range names {
			switch e, ok := exp[n.name]; {
			case ok && e.outcome == skipped:
				t.Fatalf("expected.txt skips part of librdkafka test %s (%s): skip the number, the runner selects by number", num, n.name)
			case n.manual:
				results[n.name] = result{outcome: skipped, detail: "manual test: the suite runs it only when named"}
			default:
				s := n.runScenario()
				if _, known := librdkafkaScenarios[s]; !known {
					results[n.name] = result{outcome: skipped, detail: fmt.Sprintf("needs test scenario %q, which has no Barge broker set-up here", n.scenario)}
					continue
				}
				scenarios[s] = true
			}
		}
		for s := range scenarios {
			toRun[s] = append(toRun[s], num)
		}
	}

	for _, scenario := range sortedKeys(toRun) {
		nums := toRun[scenario]
		brokers, seeds := startPeerCluster(t, n, librdkafkaScenarios[scenario]...)
		conf := filepath.Join(t.TempDir(), "test.conf")
		if err := os.WriteFile(conf, []byte("metadata.broker.list="+strings.Join(seeds, ",")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var mu sync.Mutex
		work := make(chan string)
		var wg sync.WaitGroup
		for range librdkafkaWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for num := range work {
					got := runLibrdkafkaTest(runner, dir, conf, filepath.Join(logDir, num+"-"+scenario+".log"), scenario, num, tests[num])
					mu.Lock()
					for name, r := range got {
						results[name] = r
					}
					mu.Unlock()
				}
			}()
		}
		for _, num := range nums {
			work <- num
		}
		close(work)
		wg.Wait()
		// Tests listed as flaky that failed among the others run once
		// more, alone.
		for _, num := range nums {
			for _, tc := range tests[num] {
				r, ok := results[tc.name]
				if !ok || r.outcome != failed || exp[tc.name].outcome != flaky {
					continue
				}
				again := runLibrdkafkaTest(runner, dir, conf, filepath.Join(logDir, num+"-"+scenario+"-rerun.log"), scenario, num, tests[num])[tc.name]
				if again.outcome == passed {
					again.rerun, again.detail = true, r.detail
					results[tc.name] = again
				}
			}
		}
		t.Logf("librdkafka scenario %s (barge serve %s): %d test numbers in %v with %d test-runner processes at a time, logs in %s",
			scenario, strings.Join(librdkafkaScenarios[scenario], " "), len(nums), time.Since(start).Round(time.Second), librdkafkaWorkers, logDir)
		for _, b := range brokers {
			if !b.Running() {
				t.Errorf("broker %d exited during scenario %s:\n%s", b.ID, scenario, b.Log())
				last.add(t, fmt.Sprintf("broker %d exited during scenario %s", b.ID, scenario))
			}
			b.Stop()
			keepBrokerLog(t, b, filepath.Join(logDir, fmt.Sprintf("broker-%d-%s.log", b.ID, scenario)))
		}
	}
	judge(t, "librdkafka", results, exp, last)
}

// librdkafkaTest is one entry of the suite's test table.
type librdkafkaTest struct {
	name   string // e.g. 0022_consume_batch_local
	manual bool   // TEST_F_MANUAL: run only when named
	local  bool   // TEST_F_LOCAL: needs no broker, left out by -L
	// scenario is the entry's .scenario: the broker set-ups (from the
	// suite's scenarios/*.json) it runs against, comma-separated; empty is
	// "default".
	scenario string
}

// runScenario is the scenario the test is run in: default when it takes
// that one, else its first.
func (n librdkafkaTest) runScenario() string {
	if n.scenario == "" {
		return "default"
	}
	list := strings.Split(n.scenario, ",")
	for _, s := range list {
		if s == "default" {
			return s
		}
	}
	return list[0]
}

// librdkafkaScenarios are the suite's broker set-ups (tests/scenarios/*.json)
// as barge serve flags: 4 partitions per auto-created topic, and for
// noautocreate no auto-creation.
var librdkafkaScenarios = map[string][]string{
	"default":      {"--default-partitions", "4"},
	"noautocreate": {"--default-partitions", "4", "--auto-create-topics=false"},
}

var (
	librdkafkaTableEntry  = regexp.MustCompile(`(?m)^\s*_TEST\(((\d{4})_\w+),\s*([^,)]*)`)
	librdkafkaScenarioArg = regexp.MustCompile(`\.scenario\s*=\s*"([^"]*)"`)
)

// librdkafkaTests reads the suite's test table from test.c, grouped by test
// number (the runner's TESTS variable selects by number).
func librdkafkaTests(testC string) (map[string][]librdkafkaTest, error) {
	src, err := os.ReadFile(testC)
	if err != nil {
		return nil, fmt.Errorf("read the librdkafka test table: %w", err)
	}
	out := map[string][]librdkafkaTest{}
	entries := librdkafkaTableEntry.FindAllSubmatchIndex(src, -1)
	for i, loc := range entries {
		sub := func(i int) string { return string(src[loc[2*i]:loc[2*i+1]]) }
		entry := librdkafkaTest{
			name:   sub(1),
			manual: strings.Contains(sub(3), "TEST_F_MANUAL"),
			local:  strings.Contains(sub(3), "TEST_F_LOCAL"),
		}
		// The entry's other arguments run to the next entry.
		rest := src[loc[1]:]
		if i+1 < len(entries) {
			rest = src[loc[1]:entries[i+1][0]]
		}
		if m := librdkafkaScenarioArg.FindSubmatch(rest); m != nil {
			entry.scenario = string(m[1])
		}
		out[sub(2)] = append(out[sub(2)], entry)
	}
	if len(out) < 50 {
		return nil, fmt.Errorf("%s: found only %d test numbers in the test table", testC, len(out))
	}
	return out, nil
}

var (
	ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;]*[A-Za-z]|\([A-Z])`)
	// A row of the runner's summary table:
	// | 0081_admin | FAILED | 4.898s | <why>
	librdkafkaSummaryRow = regexp.MustCompile(`^\|\s*(\d{4}_\w+)\s*\|\s*(PASSED|FAILED|SKIPPED|RUNNING|DNS)\s*\|\s*[0-9.]+s\s*\|\s*(.*)$`)
	// The runner's failure banner, followed by a line saying why:
	// ### Test "0081_admin (do_test_CreateAcls:1115)" failed at ...: ###
	librdkafkaFailBanner = regexp.MustCompile(`^### Test "(\d{4}_\w+)[^"]*" failed at (.*): ###$`)
)

// runLibrdkafkaTest runs one test number in its own test-runner process and
// returns the outcome of each of its tests, read from the runner's summary
// table. A test without a row (the runner crashed or hung) failed; so did
// every test of a runner that exited non-zero although its rows passed (the
// suite fails a run that leaves client threads behind).
func runLibrdkafkaTest(runner, dir, conf, logPath, scenario, num string, names []librdkafkaTest) map[string]result {
	ctx, cancel := context.WithTimeout(context.Background(), librdkafkaTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runner, "-Q", "-E", "-L")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"TESTS="+num,
		"TEST_SCENARIO="+scenario,
		"RDKAFKA_TEST_CONF="+conf,
		"TEST_KAFKA_VERSION="+librdkafkaKafkaVersion,
		"LD_LIBRARY_PATH="+filepath.Join(dir, "..", "src")+":"+filepath.Join(dir, "..", "src-cpp"),
	)
	out, runErr := cmd.CombinedOutput()
	os.WriteFile(logPath, out, 0o644)
	clean := ansiEscape.ReplaceAll(out, nil)

	rows := map[string]result{}
	for _, line := range bytes.Split(clean, []byte("\n")) {
		m := librdkafkaSummaryRow.FindSubmatch(bytes.TrimSpace(line))
		if m == nil {
			continue
		}
		r := result{detail: strings.TrimSpace(string(m[3])), log: logPath}
		switch string(m[2]) {
		case "PASSED":
			r.outcome = passed
		case "SKIPPED":
			r.outcome = skipped
		default:
			r.outcome = failed
			if r.detail == "" {
				r.detail = "state " + string(m[2])
			}
		}
		rows[string(m[1])] = r
	}
	// A failing test makes a single-test runner abort before its summary
	// table; its banner says which test failed and why.
	lines := bytes.Split(clean, []byte("\n"))
	for i, line := range lines {
		m := librdkafkaFailBanner.FindSubmatch(bytes.TrimSpace(line))
		if m == nil {
			continue
		}
		if _, ok := rows[string(m[1])]; ok {
			continue
		}
		why := "failed at " + string(m[2])
		if i+1 < len(lines) {
			why = strings.TrimSpace(string(lines[i+1]))
		}
		rows[string(m[1])] = result{outcome: failed, detail: why, log: logPath}
	}
	exitNote := ""
	if runErr != nil {
		exitNote = fmt.Sprintf("test-runner: %v", runErr)
		if ctx.Err() != nil {
			exitNote = fmt.Sprintf("test-runner killed after %v", librdkafkaTestTimeout)
		}
	}
	got := map[string]result{}
	for _, n := range names {
		if n.manual || n.runScenario() != scenario {
			continue
		}
		r, ok := rows[n.name]
		if n.local && (!ok || r.outcome == skipped) {
			got[n.name] = result{outcome: skipped, detail: "runs without a broker (-L)"}
			continue
		}
		switch {
		case !ok:
			r = result{outcome: failed, detail: "no result row; " + exitNote, log: logPath}
		case exitNote != "" && r.outcome != failed:
			r = result{outcome: failed, detail: fmt.Sprintf("%s although the test's row says %s; %s", exitNote, r.outcome, harness.Tail(clean, 3)), log: logPath}
		}
		if r.outcome == failed {
			r.detail += "\n" + harness.Tail(clean, 25)
		}
		got[n.name] = r
	}
	return got
}
