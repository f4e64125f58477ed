package workload

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/barge-broker/barge/jepsen/history"
)

// Client libraries, as history entries name them.
const (
	ClientFranz  = "franz-go"
	ClientSarama = "sarama"
)

// ProduceSarama is Produce through IBM/sarama's AsyncProducer: a second
// client library for part of the traffic, since client bugs are part of
// what such a test finds. Safe: acks=all and idempotence (which sarama
// allows only with one request in flight); unsafe: acks=1, no
// idempotence. Like Produce, it never retries a value above the client.
func ProduceSarama(ctx context.Context, cfg Config, process, rate int, drain time.Duration) error {
	sc := sarama.NewConfig()
	sc.ClientID = fmt.Sprintf("barge-jepsen-sarama-%d", process)
	sc.Net.DialTimeout = 2 * time.Second
	sc.Metadata.RefreshFrequency = time.Second
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Flush.Frequency = 2 * time.Millisecond
	// Retries spanning a fault window (as franz-go's delivery timeout
	// does), so a send outlives one failover.
	sc.Producer.Retry.Max = 40
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	if cfg.Unsafe {
		sc.Producer.RequiredAcks = sarama.WaitForLocal
	} else {
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Idempotent = true
		sc.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewAsyncProducer(cfg.Seeds, sc)
	if err != nil {
		return fmt.Errorf("workload: sarama producer %d: %w", process, err)
	}
	// The completions: one goroutine per channel, both ending when
	// AsyncClose has flushed everything.
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range p.Successes() {
			off := m.Offset
			cfg.Rec.Add(history.Op{Process: process, Type: history.OK, F: history.FSend, Partition: m.Partition,
				Value: m.Metadata.(string), Offset: &off, Client: ClientSarama})
		}
	})
	wg.Go(func() {
		for e := range p.Errors() {
			cfg.Rec.Add(history.Op{Process: process, Type: history.Info, F: history.FSend, Partition: e.Msg.Partition,
				Value: e.Msg.Metadata.(string), Error: e.Err.Error(), Client: ClientSarama})
		}
	})

	paceSends(ctx, rate, func(seq int) bool {
		part := int32(seq % cfg.Partitions)
		val := Value(process, seq)
		cfg.Rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FSend, Partition: part, Value: val, Client: ClientSarama})
		select {
		case p.Input() <- &sarama.ProducerMessage{Topic: cfg.Topic, Partition: part, Value: sarama.StringEncoder(val), Metadata: val}:
			return true
		case <-ctx.Done():
			// Invoked but never handed over: it cannot be in the log.
			cfg.Rec.Add(history.Op{Process: process, Type: history.Fail, F: history.FSend, Partition: part, Value: val,
				Error: "workload stopped before the client took it", Client: ClientSarama})
			return false
		}
	})
	// AsyncClose flushes; sends still unacknowledged after drain are
	// closed forcibly by Close, and complete as errors (info).
	closed := make(chan struct{})
	go func() { wg.Wait(); close(closed) }()
	p.AsyncClose()
	select {
	case <-closed:
	case <-time.After(drain):
		cfg.Log.Warn("sarama producer drain cut short", "process", process)
		<-closed
	}
	return nil
}
