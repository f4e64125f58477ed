package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/barge-broker/barge/cluster"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker stopped while its topic is deleted and recreated (same name, new
// id) must not serve the old log when it comes back: its local metadata
// snapshot still names it the leader of the old topic's partition. Every
// record acknowledged after the restart must be in the new topic. On the
// code that hosted partitions from the local image at start, the restarted
// broker acknowledged produces into the deleted topic's log.
func TestRestartedBrokerServesNothingBeforeCatchingUp(t *testing.T) {
	brokers := startTestCluster(t, 3, nil)
	ctx := ctxFor(t, 60*time.Second)
	old := brokers[2]
	create := func(assignment [][]int32) cluster.TopicID {
		t.Helper()
		res, err := brokers[0].Node().Submit(ctx, cluster.NewCommand(cluster.CreateTopic{Name: "re", Assignment: assignment}))
		if err != nil {
			t.Fatalf("create topic: %v", err)
		}
		tp, _ := res.Image.Topic("re")
		return tp.ID
	}
	oldID := create([][]int32{{2}})
	waitFor(t, 10*time.Second, "broker 2 to lead the old topic", func() bool {
		p := old.replicas.get("re", 0)
		return p != nil && p.leads()
	})
	// The snapshot makes broker 2's next start begin from an image in
	// which it leads re-0 (Raft restores it before any contact).
	if err := old.Node().Snapshot(); err != nil {
		t.Fatal(err)
	}
	cfg := old.cfg
	cfg.KafkaAddr, cfg.RaftAddr, cfg.GossipAddr, cfg.HTTPAddr = old.KafkaAddr(), old.Node().RaftAddr(), old.Node().GossipAddr(), old.HTTPAddr()
	cfg.Join = []string{brokers[0].Node().GossipAddr()}
	shutCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := old.Shutdown(shutCtx); err != nil {
		t.Fatalf("shutdown broker 2: %v", err)
	}
	cancel()

	if _, err := brokers[0].Node().Submit(ctx, cluster.NewCommand(cluster.DeleteTopic{Name: "re"})); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	newID := create([][]int32{{0}})
	if newID == oldID {
		t.Fatal("recreated topic kept its id")
	}

	// Stay down long enough for the controller's Raft replication to
	// broker 2 to back off, as after any real outage, so the restarted
	// broker waits a while for the leader's contact; nothing to await.
	time.Sleep(3 * time.Second)
	restarted := launchTestBroker(t, cfg)
	newProducer := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(restarted.KafkaAddr()), kgo.DefaultProduceTopic("re"),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(20*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	acked := map[int64]string{}
	produce := func(cl *kgo.Client, v string) error {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		r, err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).First()
		if err == nil {
			acked[r.Offset] = v
		}
		return err
	}
	// From the moment it listens until a second after it is ready, a
	// client that knows only the restarted broker produces: whatever it
	// is acknowledged must be in the new topic. (franz-go keeps the topic
	// id it first learned, so once the old topic is gone this client may
	// get UNKNOWN_TOPIC_ID; that is the client's view, not a loss.)
	early := newProducer(kgo.DisableIdempotentWrite()) // no InitProducerID round first
	var readyAt time.Time
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; readyAt.IsZero() || time.Since(readyAt) < time.Second; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("restarted broker never became ready")
		}
		if readyAt.IsZero() && restarted.Ready() {
			readyAt = time.Now()
		}
		_ = produce(early, fmt.Sprintf("early-%d", i))
	}
	t.Logf("%d records acknowledged to the early client (from the restart until a second after ready)", len(acked))
	// A client that starts now is served fully.
	late := newProducer()
	for i := 0; i < 20; i++ {
		if err := produce(late, fmt.Sprintf("late-%d", i)); err != nil {
			t.Fatalf("produce through the caught-up broker: %v", err)
		}
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].KafkaAddr()), kgo.ConsumeTopics("re"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	read := map[int64]string{}
	readDeadline := time.Now().Add(20 * time.Second)
	for len(read) < len(acked) && time.Now().Before(readDeadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) { read[r.Offset] = string(r.Value) })
		cancel()
	}
	lost := 0
	for off, v := range acked {
		if read[off] != v {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged %q at offset %d, the new topic holds %q there", v, off, read[off])
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records are not in the new topic", lost, len(acked))
	}
	t.Logf("%d records acknowledged after the restart, all in the new topic", len(acked))
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
