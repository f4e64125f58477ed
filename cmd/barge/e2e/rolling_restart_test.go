package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rollingGapCeiling fails the test when a partition goes this long without
// an acknowledgement during one restart. The goal is under a second, and
// 50-130 ms is typical here; the ceiling leaves room for a loaded test
// machine, and the test prints what it measured either way.
const rollingGapCeiling = 2 * time.Second

// Three brokers, RF=3, min.insync.replicas=2, an idempotent acks=all
// producer and a consumer running throughout, while each broker in turn
// gets SIGTERM and is restarted, the next one only once `barge cluster
// health --exit-when-healthy` returns: every acknowledged record is read
// back exactly once at its acknowledged offset, in order, and the test
// prints the longest time any partition went without acknowledgements.
func TestRollingRestartUnderLoad(t *testing.T) {
	const topic, partitions = "rolling", 6
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	seeds := harness.Seeds(brokers...)
	ctx := harness.Context(t, 5*time.Minute)
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	load := startAckLoad(t, ctx, seeds, topic, partitions, loadOptions{})
	ledger := load.ledger

	env := cliEnvOf(brokers...)
	waitHealthy := func(what string) {
		t.Helper()
		start := time.Now()
		r := cliRun(t, env, "cluster", "health", "--exit-when-healthy", "--timeout", "55s")
		if r.code != 0 {
			t.Fatalf("%s: barge cluster health --exit-when-healthy exited %d:\n%s\n%s", what, r.code, r.stdout, r.stderr)
		}
		t.Logf("%s: healthy after %v", what, time.Since(start).Round(time.Millisecond))
	}
	ackedEverywhere := func(what string) {
		t.Helper()
		since := time.Now()
		for !ledger.ackedAllSince(since) {
			if ctx.Err() != nil {
				t.Fatalf("%s: the producer made no progress on some partition", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHealthy("start")
	ackedEverywhere("start")
	ledger.takePhaseGap()
	var worst time.Duration
	for _, b := range brokers {
		faultAt := time.Now()
		if err := b.Stop(); err != nil {
			t.Fatalf("SIGTERM broker %d: %v", b.ID, err)
		}
		stopped := time.Since(faultAt)
		b.Restart()
		ready := time.Since(faultAt)
		what := fmt.Sprintf("broker %d restarted", b.ID)
		waitHealthy(what)
		ackedEverywhere(what)
		gap, from := ledger.takePhaseGap()
		worst = max(worst, gap)
		t.Logf("%s: stopped %v after SIGTERM, ready %v after it; longest gap without an ack on any partition %v (from %v after SIGTERM)",
			what, stopped.Round(time.Millisecond), ready.Round(time.Millisecond), gap.Round(time.Millisecond), from.Sub(faultAt).Round(time.Millisecond))
		if gap > rollingGapCeiling {
			t.Errorf("%s: a partition went %v without acknowledgements", what, gap.Round(time.Millisecond))
		}
	}
	load.finish(t, ctx)
	t.Logf("rolling restart: longest time any partition went without acknowledgements: %v", worst.Round(time.Millisecond))
}
