package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startGroupTestBroker is startTestBroker with a short initial rebalance
// delay, in dir (kept across restarts).
func startGroupTestBroker(t *testing.T, dir string) *Broker {
	t.Helper()
	return startTestBrokerWith(t, dir, func(cfg *Config) {
		cfg.HTTPAddr = ""
		cfg.Group.InitialRebalanceDelay = 50 * time.Millisecond
	})
}

// TestGroupConsumersCommitAndResume: two kgo group consumers split a topic
// and commit; after a broker restart a new member of the group resumes
// from the commits; kadm sees, describes and deletes the group.
func TestGroupConsumersCommitAndResume(t *testing.T) {
	dir := t.TempDir()
	b := startGroupTestBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	produce := func(addr string, from, to int) {
		p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("events"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := from; i < to; i++ {
			p.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, nil)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(b.KafkaAddr(), 0, 600)

	var mu sync.Mutex
	seen := map[string]int{}
	// consume runs group consumers until the records seen number want.
	// Rebalances wait until a poll's records are committed
	// (BlockRebalanceOnPoll), so no record is consumed twice.
	consume := func(addr string, want int, consumers int) {
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		var wg sync.WaitGroup
		for c := 0; c < consumers; c++ {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("events"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cl.Close()
				for cctx.Err() == nil {
					fs := cl.PollFetches(cctx)
					mu.Lock()
					fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
					n := len(seen)
					mu.Unlock()
					if err := cl.CommitUncommittedOffsets(ctx); err != nil {
						t.Errorf("commit: %v", err)
					}
					cl.AllowRebalance()
					if n >= want {
						stop()
					}
				}
			}()
		}
		wg.Wait()
		if len(seen) < want {
			t.Fatalf("consumed %d of %d", len(seen), want)
		}
	}
	consume(b.KafkaAddr(), 600, 2)

	groups, err := adm.ListGroups(ctx)
	if err != nil || len(groups) != 1 || groups["g"].State != "Empty" {
		t.Fatalf("list groups: %+v %v", groups, err)
	}
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 600 {
		t.Fatalf("committed offsets sum to %d, want 600: %+v", total, offs)
	}
	admCl.Close()

	// Restart the broker on the same data: the commits are there and a
	// consumer of the group reads only the new records.
	ctxShut, cancelShut := context.WithTimeout(context.Background(), 10*time.Second)
	b.Shutdown(ctxShut)
	cancelShut()
	b = startGroupTestBroker(t, dir)
	produce(b.KafkaAddr(), 600, 700)
	consume(b.KafkaAddr(), 700, 1)
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", v, n)
		}
	}

	admCl, err = kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm = kadm.NewClient(admCl)
	described, err := adm.DescribeGroups(ctx, "g")
	if err != nil || described["g"].State != "Empty" {
		t.Fatalf("describe: %+v %v", described, err)
	}
	deleted, err := adm.DeleteGroups(ctx, "g")
	if err != nil || deleted["g"].Err != nil {
		t.Fatalf("delete: %+v %v", deleted, err)
	}
	offs, err = adm.FetchOffsets(ctx, "g")
	if err != nil || len(offs) != 0 {
		t.Fatalf("offsets after delete: %+v %v", offs, err)
	}
}
