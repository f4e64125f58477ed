package record

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
	"github.com/barge-broker/barge/cmd/barge/internal/offsets"
)

// Consumed is one record as consume prints it by default (JSON, one object
// per line). Key and value are null for a null key or value.
type Consumed struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Timestamp is in unix milliseconds.
	Timestamp int64    `json:"timestamp"`
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Headers   []Header `json:"headers"`
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type consumeFlags struct {
	offset     string
	num        int
	partitions []int32
	group      string
	format     string
}

// NewConsumeCommand builds `barge consume`.
func NewConsumeCommand(deps *cli.Deps) *cobra.Command {
	var f consumeFlags
	var c *cli.Common
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Consume records to stdout",
		Long: `Consume records of a topic and print them, one JSON object per line by
default ({"topic","partition","offset","timestamp","key","value","headers"}),
or shaped by -f:

  %t topic  %p partition  %o offset  %d timestamp (unix ms)
  %k key    %v value      %h headers (k=v,k=v)   \n \t \\ escapes, %% a percent

-o picks where to start (rpk's syntax):

  start | end | N (offset N) | +N (N after the start) | -N (N before the end)
  @TIME: the first record at or after a time, as unix seconds or ms, an
         RFC 3339 time or date, or a duration ago (@-1h)
  ...:end stops at the end offsets seen at the start; ...:N stops before N

Without -g the partitions are assigned directly (all, or -p); with -g the
consumer joins the group, which commits what it printed, and -o applies
only to partitions the group has no offset for. Ctrl-C stops cleanly.
(-o is the offset here, as in rpk and kcat; the output format is --output.)`,
		Example: `  # Everything there is, then exit:
  barge consume orders -o start:end

  # Follow new records:
  barge consume orders -o end

  # The last 10 records of partition 0, as 'offset key value':
  barge consume orders -p 0 -o -10:end -f '%o %k %v\n'

  # The first record at or after a time:
  barge consume orders -o @2024-06-01T10:00:00Z -n 1

  # As a member of a group:
  barge consume orders -g billing`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			return runConsume(ctx, c, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.offset, "offset", "o", "start", "where to start, and optionally stop (see above)")
	fs.IntVarP(&f.num, "num", "n", 0, "stop after this many records (0: no limit)")
	fs.Int32SliceVarP(&f.partitions, "partitions", "p", nil, "partitions to consume (default: all); not with -g")
	fs.StringVarP(&f.group, "group", "g", "", "consume as a member of this consumer group")
	fs.StringVarP(&f.format, "format", "f", "", "output format string (default: a JSON object per record)")
	c = cli.NewCommon(deps, fs, cli.FormatJSON, "")
	return cmd
}

func runConsume(ctx context.Context, c *cli.Common, topic string, f consumeFlags) error {
	rng, err := offsets.Parse(f.offset, time.Now())
	if err != nil {
		return cli.Usage(fmt.Errorf("-o: %w", err))
	}
	if f.num < 0 {
		return cli.Usagef("-n must not be negative")
	}
	var format *Format
	if f.format != "" {
		if format, err = ParseFormat(f.format, "tpodkvh"); err != nil {
			return cli.Usage(err)
		}
	}
	if f.group != "" && len(f.partitions) > 0 {
		return cli.Usagef("-p and -g do not mix: a group assigns partitions itself")
	}
	if f.group != "" && rng.Until != nil {
		return cli.Usagef("-o %s: a stop offset does not mix with -g", f.offset)
	}
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		return err
	}
	probe, err := connect.Kafka(ctx, c.Logger, brokers)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(probe)
	defer adm.Close()
	if err := checkTopic(ctx, adm, topic, -1); err != nil {
		return err
	}

	// A fetch waits at most a second for records: a partition assigned
	// while one at its end long-polls would otherwise wait kgo's default
	// 5 s for its first records (one fetch in flight per broker).
	opts := []kgo.Opt{kgo.FetchMaxWait(time.Second)}
	stops := map[int32]int64{} // partition → offset to stop before
	if f.group == "" {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		parts, err := offsets.ResolveRange(rctx, adm, topic, f.partitions, rng)
		cancel()
		if err != nil {
			return err
		}
		assign := map[int32]kgo.Offset{}
		for _, p := range parts {
			if p.Done() {
				continue
			}
			assign[p.Partition] = kgo.NewOffset().At(p.From)
			if p.Until >= 0 {
				stops[p.Partition] = p.Until
			}
		}
		if len(assign) == 0 {
			return nil // every partition is already at its stop offset
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	} else {
		opts = append(opts, kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(resetOffset(rng.From)), kgo.AutoCommitMarks())
	}
	cl, err := connect.Kafka(ctx, c.Logger, brokers, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if f.group != "" {
			// Commit what was printed, even after an interrupt.
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := cl.CommitMarkedOffsets(cctx); err != nil {
				fmt.Fprintf(c.Stderr, "committing offsets of group %s: %v\n", f.group, err)
			}
			cancel()
		}
		cl.Close()
	}()

	w := bufio.NewWriterSize(c.Stdout, 64<<10)
	defer w.Flush()
	var line []byte
	printed := 0
	reported := map[string]bool{}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil // interrupted: a clean stop
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			msg := fmt.Sprintf("fetching %s/%d: %v", t, p, err)
			if !reported[msg] {
				reported[msg] = true
				fmt.Fprintln(c.Stderr, msg)
			}
		})
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if done {
				return
			}
			if stop, ok := stops[r.Partition]; ok && r.Offset >= stop {
				return
			}
			line = line[:0]
			if format != nil {
				line = format.Append(line, r)
			} else {
				line = appendRecord(line, c.Out.Format, r)
			}
			w.Write(line)
			if f.group != "" {
				cl.MarkCommitRecords(r)
			}
			printed++
			if f.num > 0 && printed >= f.num {
				done = true
			}
			if stop, ok := stops[r.Partition]; ok && r.Offset+1 >= stop {
				delete(stops, r.Partition)
				if len(stops) == 0 {
					done = true
				}
			}
		})
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		if done {
			return nil
		}
	}
}

// resetOffset is where a group member starts on a partition the group has
// no committed offset for.
func resetOffset(s offsets.Spec) kgo.Offset {
	o := kgo.NewOffset()
	switch s.Kind {
	case offsets.End:
		return o.AtEnd()
	case offsets.Exact:
		return o.At(s.N)
	case offsets.AfterStart:
		return o.AtStart().Relative(s.N)
	case offsets.BeforeEnd:
		return o.AtEnd().Relative(-s.N)
	case offsets.Time:
		return o.AfterMilli(s.Millis)
	}
	return o.AtStart()
}

// appendRecord renders r in the default shape: a JSON line, a YAML
// document, or a table-like line.
func appendRecord(dst []byte, f cli.Format, r *kgo.Record) []byte {
	c := Consumed{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Headers: []Header{}}
	if r.Key != nil {
		k := string(r.Key)
		c.Key = &k
	}
	if r.Value != nil {
		v := string(r.Value)
		c.Value = &v
	}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, Header{Key: h.Key, Value: string(h.Value)})
	}
	switch f {
	case cli.FormatYAML:
		out, err := cli.YAML(c)
		if err != nil {
			return fmt.Appendf(dst, "# %v\n", err)
		}
		return append(append(dst, "---\n"...), out...)
	case cli.FormatTable:
		key, value := "-", "-"
		if c.Key != nil {
			key = *c.Key
		}
		if c.Value != nil {
			value = *c.Value
		}
		return fmt.Appendf(dst, "%s/%d@%d  %s  %s  %s\n", c.Topic, c.Partition, c.Offset,
			time.UnixMilli(c.Timestamp).UTC().Format(time.RFC3339Nano), key, value)
	}
	out, err := json.Marshal(c)
	if err != nil {
		return fmt.Appendf(dst, "{\"error\":%q}\n", err.Error())
	}
	return append(append(dst, out...), '\n')
}
