package topic

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/offsets"
)

// TrimResult is the outcome for one partition of `topic trim`.
type TrimResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// LogStartOffset is the partition's new first offset (-1 on error).
	LogStartOffset int64  `json:"log_start_offset"`
	Error          string `json:"error"`
}

func newTrimCommand(c *cli.Common) *cobra.Command {
	var (
		offset     string
		partitions []int32
	)
	cmd := &cobra.Command{
		Use:   "trim TOPIC --offset OFFSET",
		Short: "Delete the records before an offset (DeleteRecords)",
		Long: `Delete the records of a topic's partitions before an offset: the
partition's log start offset moves there (DeleteRecords, as rpk topic
trim-prefix and kafka-delete-records). The offset is one of:

  N        offset N       -N    N before the end
  end      everything     +N    N after the current start
  @TIME    the records before a time: unix seconds or milliseconds,
           RFC 3339, or a duration ago (@-24h)

Offsets are clamped to each partition's [log start, high watermark].`,
		Example: `  # Keep only the last 1000 records of each partition:
  barge topic trim orders --offset -1000

  # Drop everything in partitions 0 and 1:
  barge topic trim orders --offset end -p 0,1

  # Drop what is older than a day:
  barge topic trim orders --offset @-24h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if offset == "" {
				return cli.Usagef("--offset is required: the offset to delete records before")
			}
			spec, err := offsets.ParseSpec(offset, time.Now())
			if err != nil {
				return cli.Usage(err)
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resolved, err := offsets.ResolveRange(ctx, adm, name, partitions, offsets.Range{From: spec})
			if err != nil {
				return err
			}
			var req kadm.Offsets
			for _, p := range resolved {
				req.Add(kadm.Offset{Topic: name, Partition: p.Partition, At: p.From, LeaderEpoch: -1})
			}
			resps, err := adm.DeleteRecords(ctx, req)
			if err != nil {
				return fmt.Errorf("delete records: %w", err)
			}
			out := struct {
				Partitions []TrimResult `json:"partitions"`
			}{Partitions: []TrimResult{}}
			failed := 0
			for _, p := range resolved {
				res := TrimResult{Topic: name, Partition: p.Partition, LogStartOffset: -1, Error: "no answer for this partition"}
				if r, ok := resps.Lookup(name, p.Partition); ok {
					res.Error = ""
					if r.Err != nil {
						res.Error = r.Err.Error()
					} else {
						res.LogStartOffset = r.LowWatermark
					}
				}
				if res.Error != "" {
					failed++
				}
				out.Partitions = append(out.Partitions, res)
			}
			if err := c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITION", "LOG-START-OFFSET", "ERROR")
				for _, r := range out.Partitions {
					t.Row(r.Topic, r.Partition, r.LogStartOffset, r.Error)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			return cli.Failed(failed, len(resolved), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&offset, "offset", "", "delete the records before this offset (required)")
	fs.Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to trim (default: all)")
	return cmd
}
