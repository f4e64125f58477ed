// Package peer runs Kafka clients' own test suites — librdkafka's
// regression suite and franz-go's kgo integration tests, written against
// Apache Kafka by people who have never heard of Barge — against real
// `barge serve` processes.
//
// Every test of a suite must pass, except the ones listed in expected.txt
// with a reason: "fail" entries are run and must still fail (so the list
// cannot rot: a test that starts passing fails the run until its line is
// removed), "skip" entries are not run at all (tests that need Kafka's own
// shell tools, or that wait for a feature Barge lacks until their own
// deadline).
//
// The suites are slow and need things built outside Go, so they run only
// when `make peer` (part of `make test`) sets the variables below; a plain
// `go test ./...` skips them.
package peer

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// outcome is what one test of a peer suite did, in the suite's own words
// reduced to three.
type outcome string

const (
	passed  outcome = "pass"
	failed  outcome = "fail"
	skipped outcome = "skip"
	// flaky is an expectation only: a test whose timing depends on the
	// client's own threads (not on the broker) may fail while other tests
	// load the machine; it is then run once more on its own and must pass.
	flaky outcome = "flaky"
)

// expectation is one line of expected.txt.
type expectation struct {
	suite, test string
	outcome     outcome // failed or skipped
	reason      string
	line        int
}

// loadExpectations reads the entries of expected.txt for one suite run
// against a cluster of the given size, keyed by test name (for librdkafka a
// skip may also name a test number, which covers every test in that source
// file). An entry's suite is the suite's name, for every cluster size, or
// name@N for clusters of N brokers only.
func loadExpectations(t *testing.T, suite string, brokers int) map[string]expectation {
	t.Helper()
	f, err := os.Open("expected.txt")
	if err != nil {
		t.Fatalf("open expected.txt: %v", err)
	}
	defer f.Close()
	out := map[string]expectation{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 {
			t.Fatalf("expected.txt:%d: want `suite test fail|skip reason...`, got %q", n, line)
		}
		e := expectation{suite: fields[0], test: fields[1], outcome: outcome(fields[2]), reason: strings.Join(fields[3:], " "), line: n}
		if e.outcome != failed && e.outcome != skipped && e.outcome != flaky {
			t.Fatalf("expected.txt:%d: outcome %q is not fail, skip or flaky", n, e.outcome)
		}
		if e.suite != suite && e.suite != fmt.Sprintf("%s@%d", suite, brokers) {
			continue
		}
		if prev, dup := out[e.test]; dup {
			t.Fatalf("expected.txt:%d: %s %s already listed on line %d", n, suite, e.test, prev.line)
		}
		out[e.test] = e
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read expected.txt: %v", err)
	}
	return out
}

// result is one test's outcome with a short explanation (the failure
// message, the skip reason) and where its full output is.
type result struct {
	outcome outcome
	detail  string
	log     string
	// rerun says the test failed among the others and passed alone (a
	// "flaky" entry): detail keeps the first failure.
	rerun bool
}

// judge compares a suite's results with its expectations: it fails t for
// every test that failed unexpectedly, every "fail" entry that did not fail
// (it passes now, or no longer exists), and logs the counts and every
// expected failure with its reason, which is what the closing note of a
// change quotes.
func judge(t *testing.T, suite string, results map[string]result, exp map[string]expectation, last *digest) {
	t.Helper()
	counts := map[outcome]int{}
	var unexpected, stale, expectedFails []string
	for _, name := range sortedKeys(results) {
		r := results[name]
		counts[r.outcome]++
		e, listed := exp[name]
		switch {
		case r.outcome == failed && listed && e.outcome == failed:
			expectedFails = append(expectedFails, fmt.Sprintf("  %s: %s", name, e.reason))
		case r.outcome == failed:
			unexpected = append(unexpected, fmt.Sprintf("%s: %s (output: %s)", name, r.detail, r.log))
		case listed && e.outcome == failed:
			stale = append(stale, fmt.Sprintf("%s is listed to fail (expected.txt:%d, %s) but its outcome was %s: %s", name, e.line, e.reason, r.outcome, r.detail))
		}
	}
	for _, name := range sortedKeys(exp) {
		if e := exp[name]; e.outcome == failed {
			if _, ran := results[name]; !ran {
				stale = append(stale, fmt.Sprintf("%s is listed to fail (expected.txt:%d) but the suite has no such test", name, e.line))
			}
		}
	}
	var reruns []string
	for _, name := range sortedKeys(results) {
		if r := results[name]; r.rerun {
			reruns = append(reruns, fmt.Sprintf("  %s: failed among the others (%s), passed alone; expected.txt:%d: %s",
				name, firstLine(r.detail), exp[name].line, exp[name].reason))
		}
	}
	t.Logf("%s: %d passed (%d of them on a rerun), %d failed (%d of them expected), %d skipped",
		suite, counts[passed], len(reruns), counts[failed], len(expectedFails), counts[skipped])
	if len(reruns) > 0 {
		t.Logf("%s passed on a rerun:\n%s", suite, strings.Join(reruns, "\n"))
	}
	if len(expectedFails) > 0 {
		t.Logf("%s expected failures:\n%s", suite, strings.Join(expectedFails, "\n"))
	}
	var skips []string
	for _, name := range sortedKeys(results) {
		if r := results[name]; r.outcome == skipped {
			skips = append(skips, fmt.Sprintf("  %s: %s", name, r.detail))
		}
	}
	if len(skips) > 0 {
		t.Logf("%s skipped:\n%s", suite, strings.Join(skips, "\n"))
	}
	for _, u := range unexpected {
		t.Errorf("%s: unexpected failure %s", suite, u)
		last.add(t, fmt.Sprintf("%s: unexpected failure %s", suite, firstLine(u)))
	}
	for _, s := range stale {
		t.Errorf("%s: %s; update expected.txt", suite, s)
		last.add(t, fmt.Sprintf("%s: %s; update expected.txt", suite, s))
	}
}

// digest collects the failures of a suite's runs so that the suite's test
// repeats them at the very end of its output: the broker logs the harness
// prints for a failed test would bury them, and CI shows only the end.
type digest struct {
	mu    sync.Mutex
	lines []string
}

// repeatFailuresLast returns a digest whose lines t logs once everything
// else, its subtests' cleanups included, has run.
func repeatFailuresLast(t *testing.T) *digest {
	d := &digest{}
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.lines) > 0 {
			t.Logf("failures of this suite, repeated after the broker logs (full output above and in the logs directory):\n  %s", strings.Join(d.lines, "\n  "))
		}
	})
	return d
}

func (d *digest) add(t *testing.T, line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, t.Name()+": "+line)
}

// peerClusterSizes are the cluster sizes the suites run against, from
// BARGE_PEER_BROKERS (a comma-separated list of sizes, default 1).
func peerClusterSizes(t *testing.T) []int {
	spec := os.Getenv("BARGE_PEER_BROKERS")
	if spec == "" {
		spec = "1"
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 5 {
			t.Fatalf("BARGE_PEER_BROKERS=%q: want sizes from 1 to 5, such as 1,3", spec)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// startPeerCluster starts n brokers (one, or a cluster with every topic
// replicated n times by default) with extra flags, and returns their Kafka
// addresses.
func startPeerCluster(t *testing.T, n int, extra ...string) ([]*harness.Broker, []string) {
	var brokers []*harness.Broker
	extra = append(extra, "--log-level", "debug")
	if n == 1 {
		brokers = []*harness.Broker{harness.StartBroker(t, harness.Options{ExtraArgs: extra})}
	} else {
		extra = append(extra, "--default-replication-factor", strconv.Itoa(n))
		brokers = harness.StartCluster(t, n, harness.Options{ExtraArgs: extra})
	}
	return brokers, harness.Seeds(brokers...)
}

// keepBrokerLog copies a broker's log (debug level) next to the suite's
// logs, where CI keeps them, so a failure can be traced in the broker.
func keepBrokerLog(t *testing.T, b *harness.Broker, path string) {
	if err := os.WriteFile(path, []byte(b.Log()), 0o644); err != nil {
		t.Logf("keeping the log of broker %d: %v", b.ID, err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
