package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
	"github.com/barge-broker/barge/cmd/barge/internal/offsets"
)

// ConsumeSummary is the result of `perf consume`.
type ConsumeSummary struct {
	Topic   string `json:"topic"`
	Records int64  `json:"records"`
	// Bytes counts keys and values.
	Bytes int64 `json:"bytes"`
	// DurationSeconds runs from the first fetch to the last record.
	DurationSeconds float64 `json:"duration_seconds"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	MiBPerSec       float64 `json:"mib_per_sec"`
	// TimeToFirstRecordMs is from the first fetch to the first record.
	TimeToFirstRecordMs float64 `json:"time_to_first_record_ms"`
	Interrupted         bool    `json:"interrupted"`
}

type consumeFlags struct {
	records           int64
	fetchMaxBytes     int32
	fetchMaxPartBytes int32
	idleTimeout       time.Duration
	progress          bool
}

func newConsumeCommand(c *cli.Common) *cobra.Command {
	var f consumeFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Read records as fast as possible and report throughput",
		Long: `Read TOPIC from the start of every partition (assigned directly, no
group) as fast as possible and report throughput. --records 0 reads up to
the end offsets seen at the start. It fails if no record arrives for
--idle-timeout.`,
		Example: `  barge perf consume bench --records 2000000
  barge perf consume bench -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.records < 0:
				return cli.Usagef("--records must not be negative")
			case f.fetchMaxBytes <= 0 || f.fetchMaxPartBytes <= 0:
				return cli.Usagef("fetch sizes must be positive")
			case f.idleTimeout <= 0:
				return cli.Usagef("--idle-timeout must be positive")
			}
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			if !cmd.Flags().Changed("progress") {
				f.progress = cli.IsTerminal(c.Stderr)
			}
			return runConsume(ctx, c, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.Int64Var(&f.records, "records", 0, "records to read (0: up to the end offsets at the start)")
	fs.Int32Var(&f.fetchMaxBytes, "fetch-max-bytes", 50<<20, "most bytes a fetch returns")
	fs.Int32Var(&f.fetchMaxPartBytes, "fetch-max-partition-bytes", 10<<20, "most bytes a fetch returns per partition")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 10*time.Second, "fail when no record arrives for this long")
	fs.BoolVar(&f.progress, "progress", false, "print a progress line every second to stderr (default: when stderr is a terminal)")
	return cmd
}

func runConsume(ctx context.Context, c *cli.Common, topic string, f consumeFlags) error {
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		return err
	}
	adm, err := connect.AdminClient(ctx, c.Logger, brokers)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	parts, err := offsets.ResolveRange(rctx, adm, topic, nil, offsets.Range{From: offsets.Spec{Kind: offsets.Start}})
	cancel()
	adm.Close()
	if err != nil {
		return err
	}
	want := f.records
	assign := map[int32]kgo.Offset{}
	var available int64
	for _, p := range parts {
		assign[p.Partition] = kgo.NewOffset().At(p.From)
		available += p.Bounds.End - p.From
	}
	if want == 0 {
		want = available
	}
	if want == 0 {
		return fmt.Errorf("topic %q is empty: produce first (barge perf produce %s)", topic, topic)
	}
	cl, err := connect.Kafka(ctx, c.Logger, brokers,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchMaxBytes(f.fetchMaxBytes), kgo.FetchMaxPartitionBytes(f.fetchMaxPartBytes))
	if err != nil {
		return err
	}
	defer cl.Close()

	var cnt counters
	stop, done := make(chan struct{}), make(chan struct{})
	if f.progress {
		var prevRecords, prevBytes int64
		go progress(c.Stderr, time.Second, stop, done, func(elapsed, dt time.Duration) string {
			recs, bytes := cnt.records.Load(), cnt.bytes.Load()
			line := fmt.Sprintf("%6.1fs  %12s records/s  %8.1f MiB/s  %s of %s",
				elapsed.Seconds(), group(int64(rate(recs-prevRecords, dt))), rate(bytes-prevBytes, dt)/mib, group(recs), group(want))
			prevRecords, prevBytes = recs, bytes
			return line
		})
	} else {
		close(done)
	}

	start := time.Now()
	var first, last time.Time
	var records, bytes int64
	var runErr error
	for records < want {
		pctx, pcancel := context.WithTimeout(ctx, f.idleTimeout)
		fetches := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			break
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && fetchErr == nil {
				fetchErr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		n := int64(0)
		fetches.EachRecord(func(r *kgo.Record) {
			if records+n >= want {
				return
			}
			n++
			bytes += int64(len(r.Key) + len(r.Value))
		})
		if n == 0 {
			if fetchErr != nil {
				runErr = fetchErr
				break
			}
			if pctx.Err() != nil {
				runErr = fmt.Errorf("no record for --idle-timeout %v after %s of %s records", f.idleTimeout, group(records), group(want))
				break
			}
			continue
		}
		if first.IsZero() {
			first = time.Now()
		}
		records += n
		last = time.Now()
		cnt.records.Store(records)
		cnt.bytes.Store(bytes)
	}
	close(stop)
	<-done

	elapsed := last.Sub(start)
	sum := ConsumeSummary{Topic: topic, Records: records, Bytes: bytes, DurationSeconds: round(elapsed.Seconds(), 3), Interrupted: ctx.Err() != nil}
	sum.RecordsPerSec = round(rate(records, elapsed), 1)
	sum.MiBPerSec = round(rate(bytes, elapsed)/mib, 2)
	if !first.IsZero() {
		sum.TimeToFirstRecordMs = ms(first.Sub(start))
	}
	if err := c.Print(sum, func(w io.Writer) error {
		t := cli.NewTable(w)
		t.Row("TOPIC", sum.Topic)
		t.Row("RECORDS", fmt.Sprintf("%s (%s bytes)", group(sum.Records), group(sum.Bytes)))
		t.Row("DURATION", fmt.Sprintf("%.3fs", sum.DurationSeconds))
		t.Row("THROUGHPUT", fmt.Sprintf("%s records/s, %.2f MiB/s", group(int64(sum.RecordsPerSec)), sum.MiBPerSec))
		t.Row("FIRST RECORD AFTER", fmtMs(sum.TimeToFirstRecordMs))
		if sum.Interrupted {
			t.Row("INTERRUPTED", true)
		}
		return t.Flush()
	}); err != nil {
		return err
	}
	return runErr
}
