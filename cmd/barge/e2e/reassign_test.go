package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// moveOutput is the JSON of `partition move` and `cluster balance`.
type moveOutput struct {
	Executed  bool  `json:"executed"`
	Throttle  int64 `json:"throttle_bytes_per_sec"`
	Completed bool  `json:"completed"`
	Moves     []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Replicas  []int32 `json:"replicas"`
		Target    []int32 `json:"target"`
		Error     string  `json:"error"`
	} `json:"moves"`
}

func newAdmin(t *testing.T, brokers ...*harness.Broker) *kadm.Client {
	t.Helper()
	// kgo answers metadata requests from a cache younger than
	// MetadataMinAge (5 s by default): the tests need it fresh.
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitBrokers waits until the metadata lists n brokers.
func waitBrokers(ctx context.Context, t *testing.T, adm *kadm.Client, n int) {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx)
		if err == nil && len(md.Brokers) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("metadata never listed %d brokers: %v", n, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startFourBrokers starts three brokers (three Raft voters) and joins a
// fourth (a non-voter).
func startFourBrokers(t *testing.T) []*harness.Broker {
	t.Helper()
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	return append(brokers, harness.JoinBroker(t, brokers, 3, harness.Options{ExtraArgs: replicationArgs}))
}

// segmentBytesOf is the size of the .log files of a partition directory.
func segmentBytesOf(t *testing.T, dir string) int {
	n := 0
	for _, data := range readSegments(t, dir) {
		n += len(data)
	}
	return n
}

// A fourth broker joins a three-broker cluster carrying an RF=3 topic under
// acks=all load; `barge cluster balance --execute` moves replicas onto it.
// Afterwards its segment files are byte-identical to the leaders', nothing
// acknowledged is lost, and the longest wait for an acknowledgement during
// the move is logged, without and with a replication throttle; the
// throttled move takes at least as long as its bytes at the rate allow.
func TestBalanceOntoNewBroker(t *testing.T) {
	for _, c := range []struct {
		name     string
		throttle int64
	}{{"unthrottled", 0}, {"throttled", 2 << 20}} {
		t.Run(c.name, func(t *testing.T) { runBalanceOntoNewBroker(t, c.throttle) })
	}
}

func runBalanceOntoNewBroker(t *testing.T, throttle int64) {
	const topic, partitions = "spread", 4
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	ctx := harness.Context(t, 3*time.Minute)
	adm := newAdmin(t, brokers...)
	segment, minISR := fmt.Sprint(1<<20), "2"
	if _, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"segment.bytes": &segment, "min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	load := startAckLoad(t, ctx, harness.Seeds(brokers...), topic, partitions, loadOptions{keyBytes: 1024})
	// About 8 MiB to copy, then a steady 400 KiB/s while it moves: less
	// than the throttle, or a throttled replica would never catch up.
	for ackedCount(load.ledger) < 8000 {
		if ctx.Err() != nil {
			t.Fatal("the producer made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.rate.Store(400)
	newcomer := harness.JoinBroker(t, brokers, 3, harness.Options{ExtraArgs: replicationArgs})
	all := append(slices.Clone(brokers), newcomer)
	waitBrokers(ctx, t, adm, 4)
	env := cliEnvOf(all...)

	var plan moveOutput
	cliRun(t, env, "cluster", "balance", "-o", "json").must(t, 0).json(t, &plan)
	onNew := 0
	for _, m := range plan.Moves {
		if slices.Contains(m.Target, 3) {
			onNew++
		}
	}
	if plan.Executed || onNew == 0 {
		t.Fatalf("dry-run plan: %+v", plan)
	}
	if md, _ := adm.Metadata(ctx, topic); slices.ContainsFunc(md.Topics[topic].Partitions.Sorted(), func(p kadm.PartitionDetail) bool { return slices.Contains(p.Replicas, 3) }) {
		t.Fatal("the dry run moved a replica")
	}
	load.ackedEverywhere(t, ctx, "before the move")
	load.ledger.takePhaseGap()
	start := time.Now()
	var done moveOutput
	cliRun(t, env, "cluster", "balance", "--execute", "--throttle", fmt.Sprint(throttle), "-o", "json").must(t, 0).json(t, &done)
	took := time.Since(start)
	gap, _ := load.ledger.takePhaseGap()
	if !done.Executed || !done.Completed {
		t.Fatalf("balance --execute: %+v", done)
	}
	load.finish(t, ctx)

	// Every partition now on broker 3 is byte-identical to its leader's.
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	copied, hosted := 0, 0
	for _, p := range md.Topics[topic].Partitions.Sorted() {
		if !slices.Contains(p.Replicas, 3) {
			continue
		}
		hosted++
		dir := fmt.Sprintf("%s-%d", topic, p.Partition)
		leader := all[p.Leader]
		// Long enough for a loaded machine's failovers to settle.
		var diff string
		t.Cleanup(func() {
			if t.Failed() && diff != "" {
				t.Logf("%s: leader %d against broker 3: %s", dir, leader.ID, diff)
			}
		})
		newcomer.WaitFor(90*time.Second, "identical segment files of "+dir+" on broker 3", func() bool {
			a, b := readSegments(t, filepath.Join(leader.DataDir, dir)), readSegments(t, filepath.Join(newcomer.DataDir, dir))
			diff = filesDiff(a, b)
			return sameFiles(a, b)
		})
		copied += segmentBytesOf(t, filepath.Join(newcomer.DataDir, dir))
	}
	if hosted != onNew {
		t.Fatalf("broker 3 hosts %d partitions, the plan moved %d there: %+v", hosted, onNew, md.Topics[topic].Partitions)
	}
	// The throttle is gone once the moves completed.
	cfgs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if strings.HasSuffix(c.Key, ".replication.throttled.rate") && c.MaybeValue() != "" {
				t.Errorf("throttle left behind: %s=%s", c.Key, c.MaybeValue())
			}
		}
	}
	t.Logf("throttle %d B/s: %d partitions moved onto broker 3, %d bytes of segments there (identical to the leaders'), balance --execute took %v (%.1f MiB/s); longest wait for an ack on any partition during the move %v",
		throttle, hosted, copied, took.Round(time.Millisecond), float64(copied)/took.Seconds()/(1<<20), gap.Round(time.Millisecond))
	if throttle > 0 {
		// The follower throttle starts with a second of tokens.
		if least := time.Duration(float64(copied)/float64(throttle)*float64(time.Second)) - 1500*time.Millisecond; took < least {
			t.Errorf("throttled move of %d bytes at %d B/s took %v, under %v", copied, throttle, took, least)
		}
	}
}

// franz-go's kadm moves, lists and cancels against Barge: a full move of
// an RF=2 partition to two other brokers, a move held in flight by a tiny
// throttle that ListPartitionReassignments shows and a cancel reverts
// (deleting the copy it had started), and bad moves refused with Kafka's
// codes and no change.
func TestKadmReassignListCancel(t *testing.T) {
	brokers := startFourBrokers(t)
	ctx := harness.Context(t, 2*time.Minute)
	adm := newAdmin(t, brokers...)
	waitBrokers(ctx, t, adm, 4)
	const topic = "kadm-moves"
	if _, err := adm.CreateTopics(ctx, 2, 2, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	replicasOf := func(p int32) []int32 {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return md.Topics[topic].Partitions[p].Replicas
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 4096)
	for i := 0; i < 100; i++ {
		for p := int32(0); p < 2; p++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A full move: both replicas replaced.
	from := replicasOf(0)
	var to []int32
	for id := int32(0); id < 4; id++ {
		if !slices.Contains(from, id) {
			to = append(to, id)
		}
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, 0, to)
	if resp, err := adm.AlterPartitionAssignments(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("full move %v -> %v: %v %v", from, to, err, resp.Error())
	}
	brokers[0].WaitFor(30*time.Second, fmt.Sprintf("move of %s-0 to %v", topic, to), func() bool {
		return slices.Equal(replicasOf(0), to)
	})
	waitFullISR(ctx, t, adm, topic)
	for _, id := range from {
		dir := filepath.Join(brokers[id].DataDir, topic+"-0")
		brokers[id].WaitFor(10*time.Second, "the log of the moved-away replica deleted", func() bool {
			_, err := os.Stat(dir)
			return errors.Is(err, os.ErrNotExist)
		})
	}
	t.Logf("full move of %s-0: %v -> %v; the old replicas' logs deleted", topic, from, to)

	// Held in flight by a 1 KiB/s leader throttle (the leader side alone:
	// the balance test sets both), listed, then cancelled.
	rate := "1024"
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: &rate}}); err != nil {
		t.Fatal(err)
	}
	orig := replicasOf(1)
	var spare int32
	for id := int32(0); id < 4; id++ {
		if !slices.Contains(orig, id) {
			spare = id
			break
		}
	}
	target := []int32{orig[0], spare}
	req = nil
	req.Assign(topic, 1, target)
	if resp, err := adm.AlterPartitionAssignments(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("move %v -> %v: %v %v", orig, target, err, resp.Error())
	}
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := listed[topic][1]
	if !ok || !slices.Equal(r.AddingReplicas, []int32{spare}) || !slices.Equal(r.RemovingReplicas, []int32{orig[1]}) || len(r.Replicas) != 3 {
		t.Fatalf("listed %+v, want adding [%d] removing [%d]", listed, spare, orig[1])
	}
	if _, ok := listed[topic][0]; ok {
		t.Fatalf("completed move still listed: %+v", listed)
	}
	spareDir := filepath.Join(brokers[spare].DataDir, topic+"-1")
	brokers[spare].WaitFor(10*time.Second, "the added replica's log created", func() bool {
		_, err := os.Stat(spareDir)
		return err == nil
	})
	// The throttle holds the copy back: observed for 1.5 s, the added
	// replica stays well short of the leader's log, still adding (without
	// a throttle the whole copy takes milliseconds, as the full move above).
	leaderDir := filepath.Join(brokers[orig[0]].DataDir, topic+"-1")
	for until := time.Now().Add(1500 * time.Millisecond); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		if got, full := segmentBytesOf(t, spareDir), segmentBytesOf(t, leaderDir); got > full/4 {
			t.Fatalf("the leader throttle let %d of %d bytes through", got, full)
		}
	}
	if listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {1: {}}}); err != nil || len(listed[topic]) != 1 {
		t.Fatalf("the throttled move is no longer in flight: %+v %v", listed, err)
	}
	t.Logf("throttled at 1 KiB/s: broker %d holds %d of the leader's %d bytes", spare, segmentBytesOf(t, spareDir), segmentBytesOf(t, leaderDir))
	req = nil
	req.CancelAssign(topic, 1)
	if resp, err := adm.AlterPartitionAssignments(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("cancel: %v %v", err, resp.Error())
	}
	if listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {1: {}}}); err != nil || len(listed[topic]) != 0 {
		t.Fatalf("after cancel: %+v %v", listed, err)
	}
	// The broker that took the cancel has applied it; the one answering
	// Metadata may be a moment behind.
	brokers[0].WaitFor(10*time.Second, fmt.Sprintf("replicas of %s-1 back to %v", topic, orig), func() bool {
		return slices.Equal(replicasOf(1), orig)
	})
	brokers[spare].WaitFor(10*time.Second, "the cancelled replica's log deleted", func() bool {
		_, err := os.Stat(spareDir)
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"}}); err != nil {
		t.Fatal(err)
	}

	// Bad moves: each refused with its code, nothing changed.
	before := [][]int32{replicasOf(0), replicasOf(1)}
	for _, c := range []struct {
		what      string
		topic     string
		partition int32
		replicas  []int32
		want      error
	}{
		{"unknown broker", topic, 0, []int32{to[0], 42}, kerr.InvalidReplicaAssignment},
		{"duplicate replicas", topic, 0, []int32{to[0], to[0]}, kerr.InvalidReplicaAssignment},
		{"cancel of nothing", topic, 0, nil, kerr.NoReassignmentInProgress},
		{"unknown topic", "no-such-topic", 0, []int32{0}, kerr.UnknownTopicOrPartition},
		{"unknown partition", topic, 9, []int32{0}, kerr.UnknownTopicOrPartition},
	} {
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign(c.topic, c.partition, c.replicas)
		resp, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		got := resp[c.topic][c.partition]
		if !errors.Is(got.Err, c.want) || got.ErrMessage == "" {
			t.Errorf("%s: %v (%q), want %v with a message", c.what, got.Err, got.ErrMessage, c.want)
		} else {
			t.Logf("%s: %v: %s", c.what, got.Err, got.ErrMessage)
		}
	}
	if after := [][]int32{replicasOf(0), replicasOf(1)}; !slices.EqualFunc(before, after, slices.Equal) {
		t.Fatalf("refused moves changed the replicas: %v -> %v", before, after)
	}

	// The same through the CLI: a clear message, exit 1, nothing changed.
	env := cliEnvOf(brokers...)
	r1 := cliRun(t, env, "partition", "move", topic, "-p", "0", "--replicas", fmt.Sprintf("%d,42", to[0]), "--execute").must(t, 1)
	mustContain(t, "move to an unknown broker", r1.stdout+r1.stderr, "INVALID_REPLICA_ASSIGNMENT", "broker 42")
	r2 := cliRun(t, env, "partition", "cancel", topic, "-p", "0").must(t, 1)
	mustContain(t, "cancel of nothing", r2.stdout+r2.stderr, "NO_REASSIGNMENT_IN_PROGRESS")
	r3 := cliRun(t, env, "partition", "move", topic, "--replicas", "0,1")
	r3.must(t, 0)
	mustContain(t, "dry run", r3.stderr, "Dry run")
	cliRun(t, env, "partition", "status", "-o", "json").must(t, 0)
	// A decommission that would leave fewer brokers than a topic's RF.
	if _, err := adm.CreateTopics(ctx, 1, 4, nil, "everywhere"); err != nil {
		t.Fatal(err)
	}
	r4 := cliRun(t, env, "broker", "decommission", "2").must(t, 1)
	mustContain(t, "decommission below RF", r4.stderr, "refused, nothing changed", "replication factor 4")
	var st struct {
		State string `json:"state"`
	}
	if err := brokers[0].GetJSON("/v1/brokers/2/decommission", &st); err != nil || st.State != "active" {
		t.Fatalf("after a refused decommission: %+v %v", st, err)
	}
	if after := [][]int32{replicasOf(0), replicasOf(1)}; !slices.EqualFunc(before, after, slices.Equal) {
		t.Fatalf("refused CLI commands changed the replicas: %v -> %v", before, after)
	}
}

// A broker that leads partitions is decommissioned under acks=all load:
// the command waits until it is safe to stop, it then hosts no replica, is
// gone from `barge cluster quorum` and the metadata, its logs are deleted,
// and nothing acknowledged is lost.
func TestDecommissionLeaderUnderLoad(t *testing.T) {
	const topic, partitions = "drained", 4
	brokers := startFourBrokers(t)
	ctx := harness.Context(t, 3*time.Minute)
	adm := newAdmin(t, brokers...)
	waitBrokers(ctx, t, adm, 4)
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := md.Topics[topic].Partitions[0].Leader
	led := 0
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader == victim {
			led++
		}
	}
	load := startAckLoad(t, ctx, harness.Seeds(brokers...), topic, partitions, loadOptions{keyBytes: 256, rate: 2000})
	load.ackedEverywhere(t, ctx, "before the decommission")
	load.ledger.takePhaseGap()
	env := cliEnvOf(brokers...)
	start := time.Now()
	var st struct {
		State      string `json:"state"`
		Replicas   int    `json:"replicas"`
		SafeToStop bool   `json:"safe_to_stop"`
	}
	r := cliRun(t, env, "broker", "decommission", fmt.Sprint(victim), "--wait", "--timeout", "90s", "-o", "json").must(t, 0)
	r.json(t, &st)
	took := time.Since(start)
	if !st.SafeToStop || st.State != "removed" || st.Replicas != 0 {
		t.Fatalf("after decommission --wait: %+v\n%s", st, r.stderr)
	}
	mustContain(t, "decommission", r.stderr, "safe to stop")
	load.ackedEverywhere(t, ctx, "after the decommission")
	gap, _ := load.ledger.takePhaseGap()
	var q struct {
		Voters    []struct{ ID int32 } `json:"voters"`
		NonVoters []struct{ ID int32 } `json:"non_voters"`
	}
	cliRun(t, env, "cluster", "quorum", "-o", "json").must(t, 0).json(t, &q)
	for _, m := range append(q.Voters, q.NonVoters...) {
		if m.ID == victim {
			t.Fatalf("broker %d still in the quorum: %+v", victim, q)
		}
	}
	if len(q.Voters) != 3 {
		t.Errorf("quorum has %d voters after the decommission, want 3: %+v", len(q.Voters), q)
	}
	rest := slices.DeleteFunc(slices.Clone(brokers), func(b *harness.Broker) bool { return int32(b.ID) == victim })
	md, err = newAdmin(t, rest...).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if slices.Contains(p.Replicas, victim) {
			t.Fatalf("partition %d still on broker %d: %v (metadata %+v)", p.Partition, victim, p.Replicas, md)
		}
	}
	if slices.Contains(md.Brokers.NodeIDs(), victim) {
		t.Fatalf("broker %d still in the metadata", victim)
	}
	for p := 0; p < partitions; p++ {
		dir := filepath.Join(brokers[victim].DataDir, fmt.Sprintf("%s-%d", topic, p))
		brokers[victim].WaitFor(10*time.Second, "the decommissioned broker's logs deleted", func() bool {
			_, err := os.Stat(dir)
			return errors.Is(err, os.ErrNotExist)
		})
	}
	if err := brokers[victim].Stop(); err != nil {
		t.Fatal(err)
	}
	load.finish(t, ctx)
	cliRun(t, cliEnvOf(rest...), "cluster", "health", "--exit-when-healthy", "--timeout", "30s").must(t, 0)
	t.Logf("decommissioned broker %d (leader of %d of %d partitions) under load in %v; longest wait for an ack on any partition meanwhile %v",
		victim, led, partitions, took.Round(time.Millisecond), gap.Round(time.Millisecond))
}
