package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRobustKillDashNine: a broker SIGKILLed while an idempotent producer
// (acks=all) is writing to three partitions restarts with every
// acknowledged record at its acknowledged offset, no record twice, and
// nothing but whole records the producer sent. The restart runs a recovery
// scan, as there was no clean shutdown.
func TestRobustKillDashNine(t *testing.T) {
	const (
		topic      = "robust-crash"
		partitions = 3
		minAcked   = 30_000
	)
	b := harness.StartBroker(t, harness.Options{})
	ctx := harness.Context(t, 2*time.Minute)
	// Small segments, so the kill finds rolled segments as well as an
	// active one.
	segmentBytes := fmt.Sprint(1 << 20)
	robustCreateTopic(t, ctx, b.KafkaAddr, topic, partitions, map[string]*string{"segment.bytes": &segmentBytes})

	ledger := newRobustLedger()
	var acked, failed atomic.Int64
	cl := robustClient(t, b.KafkaAddr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	produceCtx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Stops the producer and fails what is still buffered; nothing is
	// retried against the restarted broker.
	closeProducer := sync.OnceFunc(func() {
		stopProducing()
		wg.Wait()
		cl.Close()
	})
	t.Cleanup(closeProducer)
	wg.Go(func() {
		for i := 0; produceCtx.Err() == nil; i++ {
			v := fmt.Sprintf("crash-%08d-%s", i, strings.Repeat("v", i%300))
			cl.Produce(produceCtx, &kgo.Record{Key: []byte(fmt.Sprint("k", i)), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
					return
				}
				ledger.add(r)
				acked.Add(1)
			})
		}
	})
	b.WaitFor(60*time.Second, fmt.Sprintf("%d acknowledged records", minAcked), func() bool { return acked.Load() >= minAcked })
	b.Kill()
	atKill := acked.Load()
	closeProducer()
	t.Logf("SIGKILL with %d records acknowledged (%d more acknowledged after it: answers already on the wire); %d failed after the kill",
		atKill, acked.Load()-atKill, failed.Load())

	start := time.Now()
	b.Restart()
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))
	// /readyz can turn ready before every partition is open again (see
	// the report of issue 5), so wait for the scans rather than assume them.
	var scans []string
	b.WaitFor(10*time.Second, fmt.Sprintf("a recovery scan of each of the %d partitions", partitions), func() bool {
		scans = scans[:0]
		for _, line := range strings.Split(b.Log(), "\n") {
			if strings.Contains(line, "recovered log after unclean shutdown") {
				scans = append(scans, robustLogTail(line))
			}
		}
		return len(scans) >= partitions
	})
	for _, line := range scans {
		t.Logf("broker: %s", line)
	}

	read := ledger.check(t, ctx, b.KafkaAddr)
	seen := map[string]int64{}
	total := 0
	for tp, recs := range read {
		for _, r := range recs {
			total++
			if !strings.HasPrefix(string(r.Value), "crash-") || !strings.HasPrefix(string(r.Key), "k") {
				t.Fatalf("%s/%d offset %d: key %q value %.40q was never produced", tp.topic, tp.partition, r.Offset, r.Key, r.Value)
			}
			if prev, dup := seen[string(r.Value)]; dup {
				t.Fatalf("%s/%d: %.20q at offset %d and again at %d", tp.topic, tp.partition, r.Value, prev, r.Offset)
			}
			seen[string(r.Value)] = r.Offset
		}
	}
	t.Logf("after restart: %d records, all %d acknowledged ones among them, %d written but not acknowledged before the kill",
		total, ledger.count(), total-ledger.count())
}
