package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// TestCLIThreeBrokers runs the cluster commands against three brokers and
// gates on `cluster health` through a broker crash: unhealthy (exit 4)
// while a broker is killed, and --exit-when-healthy returns once it is
// back.
func TestCLIThreeBrokers(t *testing.T) {
	brokers := harness.StartCluster(t, 3, harness.Options{})
	env := cliEnvOf(brokers...)

	var info cliInfo
	cliRun(t, env, "cluster", "info", "-o", "json").must(t, 0).json(t, &info)
	var ids []int32
	controllers := 0
	for _, b := range info.Brokers {
		ids = append(ids, b.ID)
		if b.IsController {
			controllers++
			if b.ID != info.ControllerID {
				t.Errorf("broker %d is marked controller, controller_id is %d", b.ID, info.ControllerID)
			}
		}
	}
	if !slices.Equal(ids, []int32{0, 1, 2}) || controllers != 1 || info.ClusterID == "" {
		t.Fatalf("cluster info: %+v", info)
	}

	var q cliQuorum
	cliRun(t, env, "cluster", "quorum", "-o", "json").must(t, 0).json(t, &q)
	if q.LeaderID != info.ControllerID || len(q.Voters) != 3 || len(q.NonVoters) != 0 {
		t.Fatalf("quorum: %+v", q)
	}
	leaders := 0
	for _, v := range q.Voters {
		if !v.Reachable || v.Lag < 0 || v.LastLogIndex == 0 {
			t.Errorf("voter %+v", v)
		}
		if v.State == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d voters say they lead: %+v", leaders, q.Voters)
	}

	// Partitions on every broker with one replica each, so a crash
	// leaves some leaderless.
	cliRun(t, env, "topic", "create", "cli-spread", "-p", "6", "-r", "1").must(t, 0)
	d := cliDescribe(t, env, "cli-spread")
	ledBy := map[int32]int{}
	for _, p := range d.Partitions {
		ledBy[p.Leader]++
	}
	if len(ledBy) != 3 {
		t.Errorf("partition leaders %v, want all three brokers", ledBy)
	}
	var h cliHealth
	cliRun(t, env, "cluster", "health", "-o", "json").must(t, 0).json(t, &h)
	if !h.IsHealthy || !slices.Equal(h.Brokers, []int32{0, 1, 2}) || len(h.BrokersDown) != 0 {
		t.Fatalf("health before the crash: %+v", h)
	}

	// Kill a broker that is not the controller. The admin list names it
	// first, so the CLI also has to fall over to the next address.
	var victim *harness.Broker
	var others []*harness.Broker
	for _, b := range brokers {
		if int32(b.ID) != info.ControllerID && victim == nil {
			victim = b
		} else {
			others = append(others, b)
		}
	}
	gate := cliEnvOf(append([]*harness.Broker{victim}, others...)...)
	victim.Kill()
	r := cliWait(t, 30*time.Second, "health to report the killed broker", func() cliResult {
		return cliRun(t, gate, "cluster", "health", "-o", "json")
	}, func(r cliResult) bool {
		var h cliHealth
		return r.code == 4 && cliDecodes(r, &h) && slices.Contains(h.BrokersDown, int32(victim.ID)) && h.LeaderlessCount == ledBy[int32(victim.ID)]
	})
	r.json(t, &h)
	if h.IsHealthy || len(h.Reasons) == 0 || h.LeaderlessCount == 0 || len(h.LeaderlessPartitions) != h.LeaderlessCount {
		t.Errorf("health with a broker down: %+v", h)
	}
	for _, p := range h.LeaderlessPartitions {
		if p.Topic != "cli-spread" {
			t.Errorf("leaderless partition %+v", p)
		}
	}
	mustContain(t, "unhealthy verdict", r.stderr, "cluster unhealthy", "brokers down")
	r = cliRun(t, gate, "cluster", "health").must(t, 4)
	mustContain(t, "unhealthy table", r.stdout, "HEALTHY", "false", "REASONS")

	// The quorum still has a leader; the dead voter shows as unreachable.
	cliRun(t, gate, "cluster", "quorum", "-o", "json").must(t, 0).json(t, &q)
	for _, v := range q.Voters {
		if v.ID == int32(victim.ID) && (v.Reachable || v.Lag != -1 || v.State != "unknown") {
			t.Errorf("dead voter: %+v", v)
		}
	}

	// Gate on health while the broker comes back.
	waiter, waitOut, waitErr := cliCommand(t, gate, "", "cluster", "health", "--exit-when-healthy", "--timeout", "90s", "-o", "json")
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- waiter.Wait() }()
	select {
	case err := <-waited:
		t.Fatalf("--exit-when-healthy returned (%v) while a broker is down:\n%s\n%s", err, waitOut, waitErr)
	case <-time.After(500 * time.Millisecond):
	}
	restarted := time.Now()
	victim.Restart()
	select {
	case err := <-waited:
		if code := exitCode(t, err); code != 0 {
			t.Fatalf("--exit-when-healthy exited %d:\nstdout:\n%s\nstderr:\n%s", code, waitOut, waitErr)
		}
		t.Logf("healthy %v after the restart began", time.Since(restarted).Round(time.Millisecond))
	case <-time.After(90 * time.Second):
		waiter.Process.Kill()
		t.Fatalf("--exit-when-healthy did not return within 90s of the restart:\n%s\n%s", waitOut, waitErr)
	}
	mustContain(t, "--exit-when-healthy while waiting", waitErr.String(), "waiting for a healthy cluster")
	var final cliHealth
	cliResult{args: waiter.Args, stdout: waitOut.String()}.json(t, &final)
	if !final.IsHealthy || len(final.BrokersDown) != 0 || final.LeaderlessCount != 0 {
		t.Errorf("verdict --exit-when-healthy returned on: %+v", final)
	}
	cliRun(t, gate, "cluster", "health").must(t, 0)

	// The partitions the victim led got a leader again: elections, seen
	// by every broker that stayed up.
	for _, b := range others {
		m := cliScrape(t, b)
		if got := m["barge_leader_elections_total"]; got < float64(ledBy[int32(victim.ID)]) {
			t.Errorf("broker %d: barge_leader_elections_total = %v, want at least %d", b.ID, got, ledBy[int32(victim.ID)])
		}
		if got := m["barge_active_controller"]; (got == 1) != (int32(b.ID) == info.ControllerID) {
			t.Errorf("broker %d: barge_active_controller = %v (controller %d)", b.ID, got, info.ControllerID)
		}
	}

	// --watch prints a verdict per interval until its timeout, exiting with
	// the last verdict.
	r = cliRun(t, env, "cluster", "health", "--watch", "--interval", "300ms", "--timeout", "1s", "-o", "json").must(t, 0)
	if lines := cliJSONLines[cliHealth](t, r); len(lines) < 3 || !lines[len(lines)-1].IsHealthy {
		t.Errorf("--watch printed %d verdicts:\n%s", len(lines), r.stdout)
	}
	r = cliRun(t, env, "cluster", "health", "--watch", "--interval", "300ms", "--timeout", "700ms").must(t, 0)
	mustContain(t, "--watch table", r.stdout, "controller=", "healthy")

	cliRun(t, env, "cluster", "quorum", "-o", "json").must(t, 0).json(t, &q)
	for _, v := range q.Voters {
		if !v.Reachable {
			t.Errorf("voter %d unreachable after the restart: %+v", v.ID, v)
		}
	}
	r = cliRun(t, env, "cluster", "info").must(t, 0)
	if n := strings.Count(r.stdout, "127.0.0.1"); n != 3 {
		t.Errorf("cluster info lists %d brokers after the restart:\n%s", n, r.stdout)
	}
}

// cliDecodes reports whether r's stdout is JSON that decodes into v.
func cliDecodes(r cliResult, v any) bool {
	return json.Unmarshal([]byte(r.stdout), v) == nil
}
