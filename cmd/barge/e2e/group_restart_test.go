package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestGroupOffsetsSurviveKill9: a group member consumes and commits, and a
// standalone consumer commits simple offsets; the broker is killed with
// SIGKILL and restarted. Every committed offset is there, and the member,
// still running, carries on in its generation: it reads only the records
// produced after the crash.
func TestGroupOffsetsSurviveKill9(t *testing.T) {
	b := groupStartBroker(t)
	seeds := []string{b.KafkaAddr}
	ctx := harness.Context(t, 3*time.Minute)
	const topic, group = "group-survivor", "group-survivor"
	adm := groupAdmin(t, seeds)
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	groupProduce(ctx, t, seeds, topic, 800, ends)
	tr := newGroupTracker(t)
	m := groupStartKgo(ctx, t, seeds, group, topic, "survivor", tr)
	defer m.stop()
	tr.waitAll(ctx, ends, "before the crash")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)

	simple := kadm.Offsets{}
	for p := int32(0); p < 8; p++ {
		simple.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(10 * p), LeaderEpoch: -1, Metadata: "standalone"})
	}
	if res, err := adm.CommitOffsets(ctx, "group-standalone", simple); err != nil || res.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, res.Error())
	}
	before, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}

	b.Kill()
	b.Restart()

	groupWaitCommitted(ctx, t, adm, group, topic, ends)
	offs, err := adm.FetchOffsets(ctx, "group-standalone")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 8; p++ {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != int64(10*p) || o.Metadata != "standalone" {
			t.Fatalf("simple offset of partition %d after the crash: %+v", p, o)
		}
	}
	after, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(after[group].Members) != 1 || after[group].Members[0].MemberID != before[group].Members[0].MemberID {
		t.Fatalf("group after the crash: %+v, before: %+v", after[group], before[group])
	}
	groupProduce(ctx, t, seeds, topic, 400, ends)
	tr.waitAll(ctx, ends, "after the crash")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)
	tr.check()
}

// TestGroupCoordinatorRestartInCluster: in a 3-broker cluster, the broker
// that coordinates a group is stopped. __consumer_offsets has three
// replicas, so another broker takes the group's partition over with every
// committed offset (commits are acknowledged only once replicated), the
// member carries on against it, and again after the stopped broker is back.
func TestGroupCoordinatorRestartInCluster(t *testing.T) {
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: groupBrokerArgs})
	seeds := harness.Seeds(brokers...)
	ctx := harness.Context(t, 4*time.Minute)
	const topic, group = "group-moving", "group-moving"
	adm := groupAdmin(t, seeds)
	if _, err := adm.CreateTopic(ctx, 6, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	groupProduce(ctx, t, seeds, topic, 600, ends)
	tr := newGroupTracker(t)
	m := groupStartKgo(ctx, t, seeds, group, topic, "mover", tr)
	defer m.stop()
	tr.waitAll(ctx, ends, "before the stop")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)

	coordinator := groupCoordinator(ctx, t, adm, group)
	var stopped *harness.Broker
	var others []string
	for _, b := range brokers {
		if int32(b.ID) == coordinator {
			stopped = b
		} else {
			others = append(others, b.KafkaAddr)
		}
	}
	t.Logf("group %s is coordinated by broker %d; stopping it", group, coordinator)
	if err := stopped.Stop(); err != nil {
		t.Fatalf("stop broker %d: %v", coordinator, err)
	}
	// A new admin client: kgo keeps a coordinator it cannot dial cached.
	adm = groupAdmin(t, others)
	for {
		if got := groupCoordinator(ctx, t, adm, group); got != coordinator {
			t.Logf("broker %d took the group over", got)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the coordinator never moved off the stopped broker")
		case <-time.After(100 * time.Millisecond):
		}
	}
	groupWaitCommitted(ctx, t, adm, group, topic, ends)
	groupProduce(ctx, t, seeds, topic, 300, ends)
	tr.waitAll(ctx, ends, "with the coordinator moved")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)

	stopped.Restart()
	groupProduce(ctx, t, seeds, topic, 300, ends)
	tr.waitAll(ctx, ends, "after the restart")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)
	tr.check()
}

// groupCoordinator waits until FindCoordinator names a broker for group.
func groupCoordinator(ctx context.Context, t *testing.T, adm *kadm.Client, group string) int32 {
	t.Helper()
	for {
		res := adm.FindGroupCoordinators(ctx, group)
		if r, ok := res[group]; ok && r.Err == nil {
			return r.NodeID
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no coordinator for %s: %+v", group, res)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
