package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// ProduceSummary is the result of `perf produce`.
type ProduceSummary struct {
	Topic string `json:"topic"`
	// Records were acknowledged; Failed were not.
	Records     int64  `json:"records"`
	Failed      int64  `json:"failed"`
	RecordSize  int    `json:"record_size"`
	Bytes       int64  `json:"bytes"`
	Producers   int    `json:"producers"`
	Acks        string `json:"acks"`
	Compression string `json:"compression"`
	// DurationSeconds runs from the first Produce to the last
	// acknowledgement.
	DurationSeconds float64 `json:"duration_seconds"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	MiBPerSec       float64 `json:"mib_per_sec"`
	// LatencyMs is per record, from Produce to its acknowledgement
	// (batching, queueing and the round trip included).
	LatencyMs   Latency `json:"latency_ms"`
	Interrupted bool    `json:"interrupted"`
}

type produceFlags struct {
	records     int64
	recordSize  int
	rate        float64
	acks        string
	batchBytes  int32
	linger      time.Duration
	compression string
	producers   int
	partitions  int32
	progress    bool
}

func newProduceCommand(c *cli.Common) *cobra.Command {
	var f produceFlags
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records as fast as allowed and report throughput and latency",
		Long: `Produce --records records of --record-size random bytes (one payload for
all records, as kafka-producer-perf-test) to TOPIC, created with
--partitions if it does not exist, and report throughput and latency
percentiles. Latency is per record, from Produce to the acknowledgement.
--rate caps records per second over all producers (0: unlimited).`,
		Example: `  barge perf produce bench --records 2000000 --record-size 1024
  barge perf produce bench --rate 50000 --acks 1 --compression zstd --producers 4 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			if !cmd.Flags().Changed("progress") {
				f.progress = cli.IsTerminal(c.Stderr)
			}
			return runProduce(ctx, c, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.Int64Var(&f.records, "records", 1_000_000, "records to produce")
	fs.IntVar(&f.recordSize, "record-size", 1024, "bytes per record value")
	fs.Float64Var(&f.rate, "rate", 0, "records per second over all producers (0: unlimited)")
	fs.StringVar(&f.acks, "acks", "all", "acknowledgement: all (-1), 1 or 0")
	fs.Int32Var(&f.batchBytes, "batch-bytes", 1_000_012, "largest record batch per partition")
	fs.DurationVar(&f.linger, "linger", 10*time.Millisecond, "how long a partition's batch waits for more records")
	fs.StringVar(&f.compression, "compression", "none", "compression: none, gzip, snappy, lz4 or zstd")
	fs.IntVar(&f.producers, "producers", 1, "producer clients, each with its own connections")
	fs.Int32Var(&f.partitions, "partitions", -1, "partitions of the topic when it has to be created (-1: the broker default)")
	fs.BoolVar(&f.progress, "progress", false, "print a progress line every second to stderr (default: when stderr is a terminal)")
	return cmd
}

func (f produceFlags) validate() error {
	switch {
	case f.records <= 0:
		return cli.Usagef("--records must be positive")
	case f.recordSize < 0:
		return cli.Usagef("--record-size must not be negative")
	case f.rate < 0:
		return cli.Usagef("--rate must not be negative")
	case f.batchBytes <= 0:
		return cli.Usagef("--batch-bytes must be positive")
	case f.linger < 0:
		return cli.Usagef("--linger must not be negative")
	case f.producers <= 0:
		return cli.Usagef("--producers must be positive")
	case int64(f.producers) > f.records:
		return cli.Usagef("--producers %d is more than --records %d", f.producers, f.records)
	}
	return nil
}

func runProduce(ctx context.Context, c *cli.Common, topic string, f produceFlags) error {
	opts, err := connect.AcksOpts(f.acks)
	if err != nil {
		return err
	}
	comp, err := connect.CompressionOpt(f.compression)
	if err != nil {
		return err
	}
	opts = append(opts, comp, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(f.batchBytes),
		kgo.ProducerLinger(f.linger), kgo.RecordDeliveryTimeout(time.Minute))
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		return err
	}
	if err := ensureTopic(ctx, c, brokers, topic, f.partitions); err != nil {
		return err
	}
	clients := make([]*kgo.Client, f.producers)
	for i := range clients {
		if clients[i], err = connect.Kafka(ctx, c.Logger, brokers, opts...); err != nil {
			for _, cl := range clients[:i] {
				cl.Close()
			}
			return err
		}
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()

	payload := make([]byte, f.recordSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var (
		hist     histogram
		cnt      counters
		firstErr error
		errOnce  sync.Once
		pool     = sync.Pool{New: func() any { return new(kgo.Record) }}
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			cnt.failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		} else {
			hist.Record(time.Since(r.Timestamp))
			cnt.records.Add(1)
			cnt.bytes.Add(int64(len(r.Value)))
		}
		*r = kgo.Record{}
		pool.Put(r)
	}

	stop, done := make(chan struct{}), make(chan struct{})
	if f.progress {
		var prev *snapshot
		var prevRecords, prevBytes int64
		go progress(c.Stderr, time.Second, stop, done, func(elapsed, dt time.Duration) string {
			s := hist.snapshot()
			iv := s
			if prev != nil {
				iv = s.since(prev)
			}
			prev = s
			recs, bytes := cnt.records.Load(), cnt.bytes.Load()
			line := fmt.Sprintf("%6.1fs  %12s records/s  %8.1f MiB/s  p50 %8s  p99 %8s  %s of %s",
				elapsed.Seconds(), group(int64(rate(recs-prevRecords, dt))), rate(bytes-prevBytes, dt)/mib,
				fmtMs(ms(iv.Percentile(0.5))), fmtMs(ms(iv.Percentile(0.99))), group(recs), group(f.records))
			prevRecords, prevBytes = recs, bytes
			if n := cnt.failed.Load(); n > 0 {
				line += fmt.Sprintf("  (%s failed)", group(n))
			}
			return line
		})
	} else {
		close(done)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range clients {
		n := f.records / int64(f.producers)
		if int64(i) < f.records%int64(f.producers) {
			n++
		}
		perProducer := f.rate / float64(f.producers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			produceN(ctx, cl, n, perProducer, payload, &pool, promise)
			// An interrupt cancels ctx, which fails what is still buffered.
			_ = cl.Flush(ctx)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-done

	s := hist.snapshot()
	sum := ProduceSummary{
		Topic: topic, Records: cnt.records.Load(), Failed: cnt.failed.Load(), RecordSize: f.recordSize,
		Bytes: cnt.bytes.Load(), Producers: f.producers, Acks: f.acks, Compression: f.compression,
		DurationSeconds: round(elapsed.Seconds(), 3), LatencyMs: latencyOf(s), Interrupted: ctx.Err() != nil,
	}
	sum.RecordsPerSec = round(rate(sum.Records, elapsed), 1)
	sum.MiBPerSec = round(rate(sum.Bytes, elapsed)/mib, 2)
	if err := c.Print(sum, func(w io.Writer) error {
		t := cli.NewTable(w)
		t.Row("TOPIC", sum.Topic)
		t.Row("RECORDS", fmt.Sprintf("%s acknowledged, %s failed, %d bytes each", group(sum.Records), group(sum.Failed), sum.RecordSize))
		t.Row("SETTINGS", fmt.Sprintf("acks=%s compression=%s producers=%d batch-bytes=%d linger=%v", f.acks, f.compression, f.producers, f.batchBytes, f.linger))
		t.Row("DURATION", fmt.Sprintf("%.3fs", sum.DurationSeconds))
		t.Row("THROUGHPUT", fmt.Sprintf("%s records/s, %.2f MiB/s", group(int64(sum.RecordsPerSec)), sum.MiBPerSec))
		l := sum.LatencyMs
		t.Row("LATENCY", fmt.Sprintf("mean %s  p50 %s  p95 %s  p99 %s  p99.9 %s  max %s",
			fmtMs(l.Mean), fmtMs(l.P50), fmtMs(l.P95), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max)))
		if sum.Interrupted {
			t.Row("INTERRUPTED", true)
		}
		return t.Flush()
	}); err != nil {
		return err
	}
	if sum.Failed > 0 && !sum.Interrupted {
		return fmt.Errorf("%s of %s records failed; the first: %w", group(sum.Failed), group(f.records), firstErr)
	}
	return nil
}

// produceN produces n records on cl, paced to ratePerSec when positive.
func produceN(ctx context.Context, cl *kgo.Client, n int64, ratePerSec float64, payload []byte, pool *sync.Pool, promise func(*kgo.Record, error)) {
	start := time.Now()
	var interval time.Duration
	if ratePerSec > 0 {
		interval = time.Duration(float64(time.Second) / ratePerSec)
	}
	for i := int64(0); i < n; i++ {
		if ctx.Err() != nil {
			return
		}
		if interval > 0 {
			// Sleep only when a millisecond or more ahead of schedule:
			// sleeping per record would pace by the timer's granularity.
			if ahead := time.Until(start.Add(time.Duration(i) * interval)); ahead >= time.Millisecond {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
					return
				}
			}
		}
		r := pool.Get().(*kgo.Record)
		r.Value = payload
		r.Timestamp = time.Now() // the latency clock; kgo keeps a set timestamp
		cl.Produce(ctx, r, promise)
	}
}

// ensureTopic creates topic when it does not exist.
func ensureTopic(ctx context.Context, c *cli.Common, brokers []string, topic string, partitions int32) error {
	adm, err := connect.AdminClient(ctx, c.Logger, brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		fmt.Fprintf(c.Stderr, "created topic %s with %d partitions\n", topic, resp.NumPartitions)
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return nil
	case resp.ErrMessage != "":
		err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
	}
	return fmt.Errorf("create topic %q: %w", topic, err)
}
