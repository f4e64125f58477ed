package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// compatSarama: IBM/sarama at its default protocol version (V2_8_0_0 in
// v1.61), its default hash partitioner and zstd compression. The first half
// of the records goes through a SyncProducer (acks=all), the second half
// through an idempotent AsyncProducer (acks=all, one request in flight, as
// sarama requires for idempotence). A partition consumer per partition reads
// them back from the oldest offset.
func compatSarama(t *testing.T, seeds []string, topic string) {
	ctx := harness.Context(t, compatScenarioTimeout)
	t.Logf("sarama: protocol version %v (sarama.DefaultVersion)", compatSaramaConfig().Version)
	acks := make([]compatAck, compatRecords)
	half := compatRecords / 2

	start := time.Now()
	compatSaramaSync(t, seeds, topic, 0, half, acks)
	t.Logf("sarama: sync producer wrote %d records in %v", half, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	start = time.Now()
	compatSaramaAsync(t, ctx, seeds, topic, half, compatRecords, acks)
	t.Logf("sarama: async producer wrote %d records in %v", compatRecords-half, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	ends := compatEndOffsets(t, ctx, seeds, topic)

	start = time.Now()
	consumed := compatSaramaConsume(t, ctx, seeds, topic, ends)
	t.Logf("sarama: read %d records in %v", len(consumed), time.Since(start).Round(time.Millisecond))
	compatCheck(t, consumed, acks, ends)
}

func compatSaramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "barge-compat-sarama"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = sarama.CompressionZSTD
	cfg.Consumer.Return.Errors = true
	return cfg
}

// compatSaramaSync writes sequences [from, to) with a SyncProducer, in
// SendMessages calls of 1,000 so that the test does not pay a round trip per
// record; each call returns only when all its records are acknowledged, so
// produce order is kept across calls.
func compatSaramaSync(t *testing.T, seeds []string, topic string, from, to int, acks []compatAck) {
	p, err := sarama.NewSyncProducer(seeds, compatSaramaConfig())
	if err != nil {
		t.Fatalf("sarama: new sync producer: %v", err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("sarama: close sync producer: %v", err)
		}
	}()
	const chunk = 1000
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		msgs := make([]*sarama.ProducerMessage, 0, hi-lo)
		for seq := lo; seq < hi; seq++ {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(compatKey(seq)),
				Value: sarama.StringEncoder(compatValue("sync", seq)),
			})
		}
		if err := p.SendMessages(msgs); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				t.Fatalf("sarama: sync producer: %d of %d records failed; first: %v", len(perrs), len(msgs), perrs[0].Err)
			}
			t.Fatalf("sarama: sync producer: %v", err)
		}
		for i, m := range msgs {
			acks[lo+i] = compatAck{m.Partition, m.Offset}
		}
	}
}

// compatSaramaAsync writes sequences [from, to) with an idempotent
// AsyncProducer, feeding Input while draining Successes and Errors.
func compatSaramaAsync(t *testing.T, ctx context.Context, seeds []string, topic string, from, to int, acks []compatAck) {
	cfg := compatSaramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Errors = true
	p, err := sarama.NewAsyncProducer(seeds, cfg)
	if err != nil {
		t.Fatalf("sarama: new async producer: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := from; seq < to; seq++ {
			select {
			case p.Input() <- &sarama.ProducerMessage{
				Topic:    topic,
				Key:      sarama.StringEncoder(compatKey(seq)),
				Value:    sarama.StringEncoder(compatValue("async", seq)),
				Metadata: seq,
			}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		failed   int
		firstErr error
	)
	for done := 0; done < to-from; done++ {
		select {
		case m := <-p.Successes():
			seq := m.Metadata.(int)
			acks[seq] = compatAck{m.Partition, m.Offset}
		case e := <-p.Errors():
			if firstErr == nil {
				firstErr = e.Err
			}
			failed++
		case <-ctx.Done():
			p.AsyncClose()
			wg.Wait()
			t.Fatalf("sarama: async producer: %d of %d records acknowledged before the deadline", done, to-from)
		}
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Errorf("sarama: close async producer: %v", err)
	}
	if failed > 0 {
		t.Fatalf("sarama: async producer: %d of %d records failed; first: %v", failed, to-from, firstErr)
	}
}

// compatSaramaConsume reads each partition from the oldest offset up to its
// end offset with one PartitionConsumer each.
func compatSaramaConsume(t *testing.T, ctx context.Context, seeds []string, topic string, ends map[int32]int64) []compatRecord {
	c, err := sarama.NewConsumer(seeds, compatSaramaConfig())
	if err != nil {
		t.Fatalf("sarama: new consumer: %v", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("sarama: partitions of %s: %v", topic, err)
	}
	if len(parts) != compatPartitions {
		t.Fatalf("sarama: %s has partitions %v, want %d", topic, parts, compatPartitions)
	}
	perPartition := make([][]compatRecord, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama: consume %s/%d: %v", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			next := int64(0)
			for next < ends[p] {
				select {
				case m := <-pc.Messages():
					perPartition[i] = append(perPartition[i], compatRecord{m.Partition, m.Offset, string(m.Key), string(m.Value)})
					next = m.Offset + 1
				case e := <-pc.Errors():
					errs[i] = e
					return
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
			}
		}()
	}
	wg.Wait()
	var consumed []compatRecord
	for i, rs := range perPartition {
		if errs[i] != nil {
			t.Errorf("sarama: partition %d after %d records: %v", parts[i], len(rs), errs[i])
		}
		consumed = append(consumed, rs...)
	}
	return consumed
}
