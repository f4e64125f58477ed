package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compatKgo: franz-go's kgo with its defaults — idempotent, acks=all,
// snappy compression, sticky key partitioner (murmur2 on keys) — producing
// asynchronously, then a direct partition consumer reading from the start.
func compatKgo(t *testing.T, seeds []string, topic string) {
	ctx := harness.Context(t, compatScenarioTimeout)

	start := time.Now()
	acks := compatKgoProduce(t, ctx, seeds, topic)
	t.Logf("kgo: produced %d records in %v", compatRecords, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	ends := compatEndOffsets(t, ctx, seeds, topic)

	start = time.Now()
	consumed, compressed := compatKgoConsume(t, ctx, seeds, topic, ends)
	t.Logf("kgo: read %d records in %v", len(consumed), time.Since(start).Round(time.Millisecond))
	if compressed != len(consumed) {
		t.Errorf("kgo: %d of %d records came in snappy batches; the default producer should compress every batch", compressed, len(consumed))
	}
	compatCheck(t, consumed, acks, ends)
}

func compatKgoProduce(t *testing.T, ctx context.Context, seeds []string, topic string) []compatAck {
	// Defaults only: the point is kgo as most programs use it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acks := make([]compatAck, compatRecords)
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		firstErr      error
		failed        int
		notIdempotent int
	)
	wg.Add(compatRecords)
	for seq := range compatRecords {
		r := &kgo.Record{Key: []byte(compatKey(seq)), Value: []byte(compatValue("kgo", seq))}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				failed++
				mu.Unlock()
				return
			}
			acks[seq] = compatAck{r.Partition, r.Offset} // one writer per index
			if r.ProducerID < 0 {
				mu.Lock()
				notIdempotent++
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("kgo: flush: %v", err)
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("kgo: %d of %d records failed; first error: %v", failed, compatRecords, firstErr)
	}
	if notIdempotent > 0 {
		t.Errorf("kgo: %d of %d records were produced without a producer id; kgo's default producer is idempotent", notIdempotent, compatRecords)
	}
	return acks
}

// compatKgoConsume reads every partition from its start up to its end
// offset in ends and returns the records and how many came from
// snappy-compressed batches.
func compatKgoConsume(t *testing.T, ctx context.Context, seeds []string, topic string, ends map[int32]int64) ([]compatRecord, int) {
	offsets := map[int32]kgo.Offset{}
	for p := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var consumed []compatRecord
	compressed := 0
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo: read %d records before the deadline; positions %v, ends %v", len(consumed), next, ends)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("kgo: fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			consumed = append(consumed, compatRecord{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			if r.Attrs.CompressionType() == 2 { // snappy
				compressed++
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	return consumed, compressed
}
