package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// Produced is the outcome of one produced record.
type Produced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Timestamp is the record's timestamp in unix milliseconds.
	Timestamp int64  `json:"timestamp"`
	Error     string `json:"error"`
}

type produceFlags struct {
	format          string
	key             string
	partition       int32
	headers         []string
	acks            string
	compression     string
	deliveryTimeout time.Duration
	quiet           bool
}

// NewProduceCommand builds `barge produce`.
func NewProduceCommand(deps *cli.Deps) *cobra.Command {
	var f produceFlags
	var c *cli.Common
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from stdin",
		Long: `Produce records read from stdin to a topic that exists. Each record is
parsed with the -f format (default '%v\n': one record per line):

  %k key    %v value    %p partition    \n \r \t \\ \0 escapes, %% a percent

Fields need literal text between them, which ends them: '%k %v\n' reads a
key up to the first space and a value up to the end of the line. -k sets
the key of every record; -p sends every record to one partition.

Each record's partition and offset is printed once the cluster has
acknowledged it (not with -q). Exit code 1 when any record failed.`,
		Example: `  # One record per line:
  printf 'hello\nworld\n' | barge produce greetings

  # Keyed records, key and value split at the first space, with a header:
  printf 'k1 v1\nk2 v2\n' | barge produce greetings -f '%k %v\n' -H source=cli

  # A whole file as one record, zstd-compressed, to partition 2:
  barge produce blobs -f '%v' -p 2 -z zstd < image.png`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			return runProduce(ctx, c, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.format, "format", "f", `%v\n`, "how to read records from stdin")
	fs.StringVarP(&f.key, "key", "k", "", "key of every record")
	fs.Int32VarP(&f.partition, "partition", "p", -1, "partition of every record (-1: by key, or spread)")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, "header key=value of every record; repeatable")
	fs.StringVar(&f.acks, "acks", "all", "acknowledgement: all (-1), 1 or 0")
	fs.StringVarP(&f.compression, "compression", "z", "snappy", "compression: none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&f.deliveryTimeout, "delivery-timeout", 30*time.Second, "fail a record not acknowledged within this long")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing per record")
	c = cli.NewCommon(deps, fs, cli.FormatTable, "o")
	return cmd
}

// producerOpts turns the flags into kgo options.
func (f produceFlags) producerOpts(topic string) ([]kgo.Opt, error) {
	opts, err := connect.AcksOpts(f.acks)
	if err != nil {
		return nil, err
	}
	comp, err := connect.CompressionOpt(f.compression)
	if err != nil {
		return nil, err
	}
	if f.deliveryTimeout <= 0 {
		return nil, cli.Usagef("--delivery-timeout must be positive")
	}
	opts = append(opts, comp, kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(f.deliveryTimeout))
	return opts, nil
}

func runProduce(ctx context.Context, c *cli.Common, topic string, f produceFlags) error {
	format, err := ParseFormat(f.format, "kvp")
	if err != nil {
		return cli.Usage(err)
	}
	stdin := c.Stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	rd, err := NewReader(format, stdin)
	if err != nil {
		return cli.Usage(err)
	}
	var headers []kgo.RecordHeader
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return cli.Usagef("-H %q: want key=value", h)
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	opts, err := f.producerOpts(topic)
	if err != nil {
		return err
	}
	if f.partition >= 0 || format.Has('p') {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		return err
	}
	cl, err := connect.Kafka(ctx, c.Logger, brokers, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkTopic(ctx, kadm.NewClient(cl), topic, f.partition); err != nil {
		return err
	}

	out := newProducedPrinter(c, f.quiet)
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		total, failed int
		firstErr      error
	)
	promise := func(r *kgo.Record, err error) {
		defer wg.Done()
		p := Produced{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			p.Error, p.Offset = explainProduceError(topic, err), -1
			failed++
			if firstErr == nil {
				firstErr = errors.New(p.Error)
			}
		}
		out.print(p)
	}

	// stdin is read on its own goroutine so that an interrupt ends the
	// command even while a read blocks (a terminal); that goroutine then
	// ends with the process.
	type parsed struct {
		p   Parsed
		err error
	}
	records := make(chan parsed, 256)
	go func() {
		defer close(records)
		for {
			p, err := rd.Next()
			select {
			case records <- parsed{p, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var readErr error
read:
	for {
		select {
		case <-ctx.Done():
			break read
		case r, ok := <-records:
			if !ok {
				break read
			}
			if r.err == io.EOF {
				break read
			}
			if r.err != nil {
				readErr = fmt.Errorf("reading stdin: %w", r.err)
				break read
			}
			rec := &kgo.Record{Topic: topic, Value: r.p.Value, Headers: headers, Partition: f.partition}
			if r.p.Partition >= 0 {
				rec.Partition = r.p.Partition
			}
			if r.p.HasKey {
				rec.Key = r.p.Key
			}
			if f.key != "" {
				rec.Key = []byte(f.key)
			}
			total++
			wg.Add(1)
			cl.Produce(ctx, rec, promise)
		}
	}
	// Wait for every acknowledgement; an interrupt cancels ctx, which
	// fails the records still buffered.
	if err := cl.Flush(ctx); err != nil && ctx.Err() == nil {
		readErr = errors.Join(readErr, fmt.Errorf("flush: %w", err))
	}
	wg.Wait()
	if err := out.close(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case readErr != nil:
		return readErr
	case failed > 0:
		return fmt.Errorf("%d of %d records failed; the first: %w", failed, total, firstErr)
	}
	return nil
}

// checkTopic fails early, and plainly, when the topic or the partition
// does not exist (the producer would only retry until its timeout).
func checkTopic(ctx context.Context, adm *kadm.Client, topic string, partition int32) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// A broker learns of a topic when it applies the metadata log, a moment
	// after the broker that created it: right after `topic create` sent
	// elsewhere, look again for a short while before calling it missing.
	var td kadm.TopicDetail
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return fmt.Errorf("metadata of %q: %w", topic, err)
		}
		td = md.Topics[topic]
		if !errors.Is(td.Err, kerr.UnknownTopicOrPartition) || wait > 800*time.Millisecond {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("metadata of %q: %w", topic, ctx.Err())
		}
	}
	switch {
	case errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q does not exist: create it with 'barge topic create %s'", topic, topic)
	case td.Err != nil:
		return fmt.Errorf("topic %q: %w", topic, td.Err)
	case partition >= 0 && int(partition) >= len(td.Partitions):
		return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, partition, len(td.Partitions))
	}
	return nil
}

// explainProduceError names the likely cause of a failed record.
func explainProduceError(topic string, err error) string {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Sprintf("topic %q or its partition does not exist: %v", topic, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Sprintf("record too large for the topic's max.message.bytes: %v", err)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return fmt.Sprintf("not acknowledged within --delivery-timeout: %v", err)
	case errors.Is(err, context.Canceled):
		return "interrupted before it was acknowledged"
	}
	return err.Error()
}

// producedPrinter prints one line (or JSON object, or YAML document) per
// acknowledged record. Called under the promise lock.
type producedPrinter struct {
	c     *cli.Common
	quiet bool
	err   error
}

func newProducedPrinter(c *cli.Common, quiet bool) *producedPrinter {
	return &producedPrinter{c: c, quiet: quiet}
}

func (p *producedPrinter) print(r Produced) {
	if p.quiet || p.err != nil {
		return
	}
	p.err = cli.PrintLine(p.c.Stdout, p.c.Out.Format, r, func(w io.Writer) error {
		var err error
		if r.Error != "" {
			_, err = fmt.Fprintf(w, "Failed to produce to topic %s: %s\n", r.Topic, r.Error)
		} else {
			_, err = fmt.Fprintf(w, "Produced to partition %d at offset %d with timestamp %d.\n", r.Partition, r.Offset, r.Timestamp)
		}
		return err
	})
}

func (p *producedPrinter) close() error { return p.err }
