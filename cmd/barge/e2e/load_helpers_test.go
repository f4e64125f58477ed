package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackLoad is the acks=all ledger load the replication, rolling restart,
// reassignment and decommission tests run under: an idempotent acks=all
// producer writing v-<seq> values round-robin over the topic's
// partitions, and a consumer reading them back, both recording into a
// replLedger so that finish can check nothing acknowledged was lost,
// duplicated or reordered, and report the longest wait for an ack.
type ackLoad struct {
	ledger             *replLedger
	producer, consumer *kgo.Client
	stop               context.CancelFunc
	wg                 sync.WaitGroup
	produceErrs        sync.Map
	// rate, when above 0, paces the producer at that many records/s.
	rate atomic.Int64
}

// loadOptions shape an ackLoad: keyBytes of padding in each record's key
// (the ledger reads only values; batches are then sent uncompressed, so the
// bytes are real), and a starting rate (0: as fast as the
// producer goes).
type loadOptions struct {
	keyBytes int
	rate     int64
}

// startAckLoad starts the producer and consumer on topic; finish stops
// them and checks the ledger.
func startAckLoad(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int, o loadOptions) *ackLoad {
	t.Helper()
	l := &ackLoad{ledger: newReplLedger(partitions)}
	l.rate.Store(o.rate)
	var err error
	opts := []kgo.Opt{}
	if o.keyBytes > 0 {
		// The padding is there to be copied: uncompressed.
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	l.producer, err = kgo.NewClient(append(opts, kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.RetryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000),
		// Look up a moved leader again quickly (kgo's default waits 5 s).
		kgo.MetadataMinAge(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.producer.Close)
	l.consumer, err = kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.consumer.Close)
	runCtx, stop := context.WithCancel(ctx)
	l.stop = stop
	key := bytes.Repeat([]byte("k"), o.keyBytes)
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		next := time.Now()
		for i := 0; runCtx.Err() == nil; i++ {
			if rate := l.rate.Load(); rate > 0 {
				// Pacing, not a wait for a condition.
				// At most a second of backlog after a stall.
				if floor := time.Now().Add(-time.Second); next.Before(floor) {
					next = floor
				}
				next = next.Add(time.Second / time.Duration(rate))
				if d := time.Until(next); d > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-time.After(d):
					}
				}
			}
			r := &kgo.Record{Key: key, Value: []byte(fmt.Sprintf("v-%09d", i))}
			l.producer.Produce(runCtx, r, func(r *kgo.Record, err error) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						l.produceErrs.Store(err.Error(), true)
					}
					return
				}
				l.ledger.ack(r)
			})
		}
	}()
	go func() {
		defer l.wg.Done()
		for runCtx.Err() == nil {
			l.consumer.PollFetches(runCtx).EachRecord(l.ledger.consume)
		}
	}()
	return l
}

// ackedEverywhere waits until every partition had an acknowledgement after
// now.
func (l *ackLoad) ackedEverywhere(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	since := time.Now()
	for !l.ledger.ackedAllSince(since) {
		if ctx.Err() != nil {
			t.Fatalf("%s: the producer made no progress on some partition", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish stops the load, waits for the producer's last acknowledgements,
// reads the rest and checks the ledger.
func (l *ackLoad) finish(t *testing.T, ctx context.Context) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	flushCtx, cancel := context.WithTimeout(ctx, time.Minute)
	l.producer.Flush(flushCtx)
	cancel()
	l.produceErrs.Range(func(k, _ any) bool {
		t.Logf("produce error (the record counts as not acknowledged): %v", k)
		return true
	})
	deadline := time.Now().Add(time.Minute)
	for l.ledger.missing() > 0 && time.Now().Before(deadline) {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		l.consumer.PollFetches(pollCtx).EachRecord(l.ledger.consume)
		cancel()
	}
	l.ledger.check(t)
}
