// Package workload is barge-jepsen's queue workload, talking to the
// cluster only as a Kafka client (franz-go): producers sending unique,
// self-checking values to the partitions of one topic at a fixed rate, an
// assign-mode consumer polling throughout, and a final full read of every
// partition through a fresh client. Every invocation and completion goes
// to a history.Recorder.
package workload

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/barge-broker/barge/jepsen/history"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Processes of the history: producers are 0..n-1.
const (
	ConsumerProcess = 100
	FinalProcess    = 200
	GroupProcess    = 300 // the first group member; the others follow
)

// Config is what every part of the workload needs.
type Config struct {
	Seeds      []string
	Topic      string
	Partitions int
	// Unsafe is the negative control's client side: acks=1, no
	// idempotence.
	Unsafe bool
	Rec    *history.Recorder
	Log    *slog.Logger
}

// Value is the self-checking value a producer sends: its process, its
// sequence number and a CRC of both, so a corrupted or made-up value is
// told apart from a real one.
func Value(process, seq int) string {
	body := fmt.Sprintf("p%d-%d", process, seq)
	return fmt.Sprintf("%s-%08x", body, crc32.ChecksumIEEE([]byte(body)))
}

// ValidValue reports whether v is a well-formed Value.
func ValidValue(v string) bool {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return false
	}
	sum, err := strconv.ParseUint(v[i+1:], 16, 32)
	return err == nil && uint32(sum) == crc32.ChecksumIEEE([]byte(v[:i]))
}

func clientOpts(cfg Config) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(cfg.Seeds...),
		// Leaders move with every fault: find the new one quickly.
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.DialTimeout(2 * time.Second),
	}
}

// paceSends calls send with sequence numbers 0, 1, ... at rate a second
// until ctx ends or send returns false. Sends go out in ticks of 10 ms so
// a high rate costs no timer per record: the time elapsed sets how many
// are due.
func paceSends(ctx context.Context, rate int, send func(seq int) bool) {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for seq := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for due := int(time.Since(start).Seconds() * float64(rate)); seq < due; seq++ {
			if !send(seq) {
				return
			}
		}
	}
}

// Produce sends rate values a second, round-robin over the partitions,
// until ctx ends, then waits up to drain for outstanding sends. Every send
// is an invoke and, when franz-go reports it, an ok (with the offset), a
// fail or an info; values are never retried above the client.
func Produce(ctx context.Context, cfg Config, process, rate int, drain time.Duration) error {
	opts := append(clientOpts(cfg),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(2*time.Millisecond),
		// Longer than any fault window, so a send outlives one failover;
		// bounded, so the drain at the end is bounded too.
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.MaxBufferedRecords(20000),
	)
	if cfg.Unsafe {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	} else {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("workload: producer %d: %w", process, err)
	}
	defer cl.Close()

	paceSends(ctx, rate, func(seq int) bool {
		part := int32(seq % cfg.Partitions)
		val := Value(process, seq)
		r := &kgo.Record{Partition: part, Value: []byte(val)}
		cfg.Rec.Add(history.Op{Process: process, Type: history.Invoke, F: history.FSend, Partition: part, Value: val, Client: ClientFranz})
		// Not ctx: a send in flight when the workload stops still
		// completes (or times out) and is recorded.
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			op := history.Op{Process: process, F: history.FSend, Partition: r.Partition, Value: string(r.Value), Client: ClientFranz}
			switch {
			case err == nil:
				off := r.Offset
				op.Type, op.Offset = history.OK, &off
			case definitelyFailed(err):
				op.Type, op.Error = history.Fail, err.Error()
			default:
				op.Type, op.Error = history.Info, err.Error()
			}
			cfg.Rec.Add(op)
		})
		return true
	})
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := cl.Flush(dctx); err != nil {
		cfg.Log.Warn("producer drain cut short; outstanding sends complete as info", "process", process, "err", err)
	}
	return nil
}

// definitelyFailed reports errors after which the value is certainly not
// in the log. Only a refusal before the append qualifies; timeouts and
// lost connections are info (Jepsen's rule), and so is anything that may
// follow an earlier attempt that did reach the log.
func definitelyFailed(err error) bool {
	return errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.TopicAuthorizationFailed)
}

// Consume polls every partition from offset 0 in assign mode (no group,
// no reassignment) until ctx ends, recording each poll: ok with what it
// returned (maybe nothing), or info when a partition reported an error.
func Consume(ctx context.Context, cfg Config) error {
	parts := map[int32]kgo.Offset{}
	for p := range cfg.Partitions {
		parts[int32(p)] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: parts}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("workload: consumer: %w", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		cfg.Rec.Add(history.Op{Process: ConsumerProcess, Type: history.Invoke, F: history.FPoll})
		fs := cl.PollFetches(pctx)
		cancel()
		reads, errs := collect(fs)
		op := history.Op{Process: ConsumerProcess, Type: history.OK, F: history.FPoll, Reads: reads}
		if len(errs) > 0 {
			op.Type, op.Error = history.Info, strings.Join(errs, "; ")
		}
		cfg.Rec.Add(op)
	}
	return nil
}

func collect(fs kgo.Fetches) (map[int32][]history.Record, []string) {
	var reads map[int32][]history.Record
	fs.EachRecord(func(r *kgo.Record) {
		if reads == nil {
			reads = map[int32][]history.Record{}
		}
		reads[r.Partition] = append(reads[r.Partition], history.Record{Offset: r.Offset, Value: string(r.Value)})
	})
	var errs []string
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		errs = append(errs, fmt.Sprintf("%s-%d: %v", topic, p, err))
	})
	return reads, errs
}

// FinalRead reads every partition from offset 0 up to its end offset
// (the high watermark, asked for first) through a fresh client, within
// limit, and records it as one final operation. A partition it could not
// finish is reported in the error, and the checker counts acknowledged
// values beyond what it read as unseen.
func FinalRead(ctx context.Context, cfg Config, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	admCl, err := kgo.NewClient(clientOpts(cfg)...)
	if err != nil {
		return fmt.Errorf("workload: final read: %w", err)
	}
	defer admCl.Close()
	ends := map[int32]int64{}
	for ctx.Err() == nil {
		lo, err := kadm.NewClient(admCl).ListEndOffsets(ctx, cfg.Topic)
		if err == nil {
			lo.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					ends[o.Partition] = o.Offset
				}
			})
		}
		if len(ends) == cfg.Partitions {
			break
		}
		time.Sleep(200 * time.Millisecond) // retry pacing while leaders settle
	}
	if len(ends) != cfg.Partitions {
		return fmt.Errorf("workload: final read: end offsets of %d of %d partitions known: %v", len(ends), cfg.Partitions, ctx.Err())
	}
	parts := map[int32]kgo.Offset{}
	for p := range cfg.Partitions {
		parts[int32(p)] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: parts}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("workload: final read: %w", err)
	}
	defer cl.Close()
	cfg.Rec.Add(history.Op{Process: FinalProcess, Type: history.Invoke, F: history.FFinal})
	all := map[int32][]history.Record{}
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	var errs []string
	for !done() && ctx.Err() == nil {
		reads, es := collect(cl.PollFetches(ctx))
		errs = es
		for p, rs := range reads {
			all[p] = append(all[p], rs...)
			next[p] = rs[len(rs)-1].Offset + 1
		}
	}
	op := history.Op{Process: FinalProcess, Type: history.OK, F: history.FFinal, Reads: all}
	var err2 error
	if !done() {
		op.Type = history.Info
		op.Error = fmt.Sprintf("read up to %v of end offsets %v: %v %s", next, ends, ctx.Err(), strings.Join(errs, "; "))
		err2 = fmt.Errorf("workload: final read incomplete: %s", op.Error)
	}
	cfg.Rec.Add(op)
	cfg.Log.Info("final read", "end_offsets", ends, "complete", err2 == nil)
	return err2
}
