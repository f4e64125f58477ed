package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	groupPartitions = 12
	groupBatch      = 1200 // records produced in each phase
)

// groupMember is a running group consumer that can be stopped (it leaves
// the group).
type groupMember interface{ stop() }

// TestGroupKgoCooperativeRebalances: two franz-go consumers (cooperative
// sticky) split a 12-partition topic and commit; a third joins, then one
// leaves, each with records flowing. No record is consumed again once a
// commit covered it, none is skipped, and kadm lists, describes and
// deletes the group and fetches and deletes its offsets.
func TestGroupKgoCooperativeRebalances(t *testing.T) {
	groupRebalanceScenario(t, "kgo", func(ctx context.Context, seeds []string, group, topic, name string, tr *groupTracker) groupMember {
		return groupStartKgo(ctx, t, seeds, group, topic, name, tr)
	})
}

// TestGroupSaramaRebalances is the same with sarama's group consumer (eager
// range assignment).
func TestGroupSaramaRebalances(t *testing.T) {
	groupRebalanceScenario(t, "sarama", func(ctx context.Context, seeds []string, group, topic, name string, tr *groupTracker) groupMember {
		return groupStartSarama(ctx, t, seeds, group, topic, name, tr)
	})
}

func groupRebalanceScenario(t *testing.T, client string, start func(ctx context.Context, seeds []string, group, topic, name string, tr *groupTracker) groupMember) {
	b := groupStartBroker(t)
	seeds := []string{b.KafkaAddr}
	ctx := harness.Context(t, 4*time.Minute)
	topic, group := "group-"+client, "group-"+client
	adm := groupAdmin(t, seeds)
	if _, err := adm.CreateTopic(ctx, groupPartitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	tr := newGroupTracker(t)
	ends := map[int32]int64{}

	phase := func(name string) {
		t.Helper()
		began := time.Now()
		groupProduce(ctx, t, seeds, topic, groupBatch, ends)
		tr.waitAll(ctx, ends, name)
		t.Logf("%s: %s: all %d records consumed in %v", client, name, groupBatch, time.Since(began).Round(time.Millisecond))
	}
	m1 := start(ctx, seeds, group, topic, client+"-1", tr)
	m2 := start(ctx, seeds, group, topic, client+"-2", tr)
	phase("two members")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)

	// Membership changes while records flow: a third member joins, then
	// the first leaves, each a rebalance (two for cooperative clients).
	began := time.Now()
	stopProducing := groupBackgroundProducer(ctx, t, seeds, topic, ends)
	m3 := start(ctx, seeds, group, topic, client+"-3", tr)
	groupWaitMembers(ctx, t, adm, group, 3)
	m1.stop()
	groupWaitMembers(ctx, t, adm, group, 2)
	flowing := stopProducing()
	tr.waitAll(ctx, ends, "join and leave with records flowing")
	t.Logf("%s: a member joined and one left while %d records were produced; all consumed in %v",
		client, flowing, time.Since(began).Round(time.Millisecond))
	phase("after the leave")
	groupWaitCommitted(ctx, t, adm, group, topic, ends)
	tr.check()

	// Admin view of the running group.
	listed, err := adm.ListGroups(ctx)
	if err != nil || listed[group].State != "Stable" || listed[group].ProtocolType != "consumer" {
		t.Fatalf("list groups: %+v %v", listed, err)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Stable" || len(described[group].Members) != 2 {
		t.Fatalf("describe group: %+v %v", described, err)
	}
	for _, m := range described[group].Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != groupPartitions/2 {
			t.Fatalf("member %s: assignment %+v", m.MemberID, m.Assigned)
		}
	}
	// Offsets of a subscribed topic cannot be deleted while members run.
	dres, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || !errors.Is(dres.Error(), kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete offsets of a subscribed topic: %+v %v", dres, err)
	}
	m2.stop()
	m3.stop()
	groupWaitMembers(ctx, t, adm, group, 0)
	if dres, err = adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}, 1: {}}}); err != nil || dres.Error() != nil {
		t.Fatalf("delete offsets: %+v %v", dres, err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := offs.Lookup(topic, 0); ok {
		t.Fatalf("offset of partition 0 still there after its deletion: %s", groupFormatOffsets(offs, topic))
	}
	if o, ok := offs.Lookup(topic, 2); !ok || o.At != ends[2] {
		t.Fatalf("offset of partition 2: %+v", o)
	}
	deleted, err := adm.DeleteGroups(ctx, group)
	if err != nil || deleted[group].Err != nil {
		t.Fatalf("delete group: %+v %v", deleted, err)
	}
	if listed, err := adm.ListGroups(ctx); err != nil || len(listed) != 0 {
		t.Fatalf("groups after the deletion: %+v %v", listed, err)
	}
}

// groupWaitMembers waits until the group has n members and is Stable (or
// Empty for n = 0).
func groupWaitMembers(ctx context.Context, t *testing.T, adm *kadm.Client, group string, n int) {
	t.Helper()
	want := "Stable"
	if n == 0 {
		want = "Empty"
	}
	for {
		d, err := adm.DescribeGroups(ctx, group)
		if err == nil && d[group].State == want && len(d[group].Members) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never had %d members in state %s: %+v %v", group, n, want, d[group], err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// groupKgo is a franz-go group consumer. Rebalances wait while a poll's
// records are handled and committed (BlockRebalanceOnPoll).
type groupKgo struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func groupStartKgo(ctx context.Context, t *testing.T, seeds []string, group, topic, name string, tr *groupTracker) *groupKgo {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	m := &groupKgo{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for cctx.Err() == nil {
			fs := cl.PollRecords(cctx, 200)
			fs.EachRecord(func(r *kgo.Record) { tr.deliver(name, r.Partition, r.Offset) })
			if offs := cl.UncommittedOffsets(); len(offs) > 0 {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Logf("%s: commit: %v", name, err)
				} else {
					for p, eo := range offs[topic] {
						tr.commit(p, eo.Offset)
					}
				}
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *groupKgo) stop() {
	m.cancel()
	<-m.done
	m.cl.Close() // leaves the group
}

// groupSarama is a sarama group consumer that commits synchronously after
// each run of records it was handed.
type groupSarama struct {
	t      *testing.T
	name   string
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

type groupSaramaHandler struct {
	name string
	tr   *groupTracker
}

func (groupSaramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (groupSaramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupSaramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.tr.deliver(h.name, msg.Partition, msg.Offset)
			sess.MarkMessage(msg, "")
			// Commit at the end of what was fetched: sarama sends commits
			// on the connection its fetches long-poll on, so a commit per
			// record would wait behind a fetch each time.
			if len(claim.Messages()) == 0 {
				sess.Commit()
				h.tr.commit(msg.Partition, msg.Offset+1)
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func groupStartSarama(ctx context.Context, t *testing.T, seeds []string, group, topic, name string, tr *groupTracker) *groupSarama {
	cfg := sarama.NewConfig()
	cfg.ClientID = name
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	cg, err := sarama.NewConsumerGroup(seeds, group, cfg)
	if err != nil {
		t.Fatalf("sarama: new consumer group: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	m := &groupSarama{t: t, name: name, cg: cg, cancel: cancel, done: make(chan struct{})}
	go func() {
		for err := range cg.Errors() {
			t.Logf("%s: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, groupSaramaHandler{name, tr}); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				t.Logf("%s: consume: %v", name, err)
				select { // back off before the next Consume
				case <-cctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	return m
}

func (m *groupSarama) stop() {
	m.cancel()
	<-m.done
	if err := m.cg.Close(); err != nil { // leaves the group
		m.t.Logf("%s: close: %v", m.name, err)
	}
}
