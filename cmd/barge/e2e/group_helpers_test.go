package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupBrokerArgs shorten the initial rebalance delay (Kafka's 3 s) so
// group tests do not wait it out at every first join.
var groupBrokerArgs = []string{"--group-initial-rebalance-delay-ms", "100"}

// groupTracker records what group consumers were handed and what they
// committed, per partition of one topic, and finds the two failures a
// consumer group must not have: a record handed out again although a
// commit covered it, and a record never handed out.
type groupTracker struct {
	t          testing.TB
	mu         sync.Mutex
	deliveries map[int32]map[int64]int // partition → offset → times handed out
	committed  map[int32]int64         // partition → highest committed next offset
	violations []string
	dups       int
}

func newGroupTracker(t testing.TB) *groupTracker {
	return &groupTracker{t: t, deliveries: map[int32]map[int64]int{}, committed: map[int32]int64{}}
}

func (tr *groupTracker) deliver(consumer string, partition int32, offset int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.deliveries[partition] == nil {
		tr.deliveries[partition] = map[int64]int{}
	}
	tr.deliveries[partition][offset]++
	if tr.deliveries[partition][offset] > 1 {
		tr.dups++
	}
	if c := tr.committed[partition]; offset < c && len(tr.violations) < 20 {
		tr.violations = append(tr.violations, fmt.Sprintf("%s got partition %d offset %d again after a commit up to %d", consumer, partition, offset, c))
	}
}

func (tr *groupTracker) commit(partition int32, next int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.committed[partition] = max(tr.committed[partition], next)
}

// missing counts the offsets below ends never handed out.
func (tr *groupTracker) missing(ends map[int32]int64) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			if tr.deliveries[p][o] == 0 {
				n++
			}
		}
	}
	return n
}

// waitAll waits until every offset below ends was handed out.
func (tr *groupTracker) waitAll(ctx context.Context, ends map[int32]int64, what string) {
	tr.t.Helper()
	for {
		n := tr.missing(ends)
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			tr.t.Fatalf("%s: %d records never consumed", what, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// check fails the test on a record handed out again after a commit covered
// it, and reports duplicates of uncommitted records (allowed, at least once).
func (tr *groupTracker) check() {
	tr.t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.violations) > 0 {
		tr.t.Fatalf("records consumed again after their commit:\n%s", strings.Join(tr.violations, "\n"))
	}
	tr.t.Logf("records handed out twice before any commit covered them: %d", tr.dups)
}

// groupProduce writes n records round-robin over the topic's partitions
// and returns the end offset of each partition after them.
func groupProduce(ctx context.Context, t testing.TB, seeds []string, topic string, n int, ends map[int32]int64) {
	t.Helper()
	// Uncompressed: Debian's kafka-python has no snappy (kgo's default).
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("record-%d", i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			ends[r.Partition] = max(ends[r.Partition], r.Offset+1)
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// groupBackgroundProducer keeps producing batches of records to topic,
// recording end offsets in ends (under mu), until stop is called, which
// returns once the last batch is acknowledged.
func groupBackgroundProducer(ctx context.Context, t testing.TB, seeds []string, topic string, ends map[int32]int64) (stop func() int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		n := 0
		for pctx.Err() == nil {
			batch := make([]*kgo.Record, 20)
			for i := range batch {
				batch[i] = &kgo.Record{Value: []byte(fmt.Sprintf("flowing-%d", n))}
				n++
			}
			// ctx, not pctx: a batch begun is finished, so ends are exact.
			for _, r := range cl.ProduceSync(ctx, batch...) {
				if r.Err != nil {
					t.Errorf("produce: %v", r.Err)
					continue
				}
				ends[r.Record.Partition] = max(ends[r.Record.Partition], r.Record.Offset+1)
			}
		}
		done <- n
	}()
	return func() int {
		cancel()
		n := <-done
		cl.Close()
		return n
	}
}

// groupAdmin is a kadm client for the test's brokers.
func groupAdmin(t testing.TB, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// groupWaitCommitted waits until the group's committed offsets of topic
// equal ends.
func groupWaitCommitted(ctx context.Context, t testing.TB, adm *kadm.Client, group, topic string, ends map[int32]int64) {
	t.Helper()
	var last string
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			ok := true
			for p, end := range ends {
				o, found := offs.Lookup(topic, p)
				if !found || o.At != end {
					ok = false
				}
			}
			if ok {
				return
			}
			last = groupFormatOffsets(offs, topic)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s: committed offsets %s, want %v", group, last, ends)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func groupFormatOffsets(offs kadm.OffsetResponses, topic string) string {
	var parts []string
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			parts = append(parts, fmt.Sprintf("%d:%d", o.Partition, o.At))
		}
	})
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// groupStartBroker starts a single broker with the group test flags.
func groupStartBroker(t *testing.T) *harness.Broker {
	t.Helper()
	return harness.StartBroker(t, harness.Options{ExtraArgs: groupBrokerArgs})
}
