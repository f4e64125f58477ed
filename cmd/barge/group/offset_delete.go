package group

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// OffsetDeleteResult is the outcome of `group offset-delete`.
type OffsetDeleteResult struct {
	Group      string            `json:"group"`
	Partitions []PartitionResult `json:"partitions"`
}

// PartitionResult is the outcome for one partition.
type PartitionResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Error is empty on success.
	Error string `json:"error"`
}

func newOffsetDeleteCommand(c *cli.Common) *cobra.Command {
	var (
		topics     []string
		partitions []int32
	)
	cmd := &cobra.Command{
		Use:   "offset-delete GROUP --topic TOPIC... [--partitions N,...]",
		Short: "Delete a group's committed offsets for some topics",
		Long: `Delete a group's committed offsets for topics (OffsetDelete), as
kafka-consumer-groups --delete-offsets does: for a topic the group stopped
consuming, or one that was deleted, so that it no longer shows as lag. The
group must be empty, or its members must not be subscribed to the topics.
Without --partitions, every partition the group has an offset for in each
topic is deleted. The group itself is deleted with its last offset, when it
has no members.`,
		Example: `  barge group offset-delete billing --topic old-orders
  barge group offset-delete billing --topic orders -p 0,1 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if len(topics) == 0 {
				return cli.Usagef("--topic is required: the topics to delete the group's offsets of (to delete the whole group, use 'barge group delete')")
			}
			if len(partitions) > 0 && len(topics) != 1 {
				return cli.Usagef("--partitions needs exactly one --topic")
			}
			if slices.ContainsFunc(partitions, func(p int32) bool { return p < 0 }) {
				return cli.Usagef("--partitions: partitions are numbered from 0")
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			set := kadm.TopicsSet{}
			if len(partitions) > 0 {
				set.Add(topics[0], partitions...)
			} else {
				committed, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return fmt.Errorf("fetch offsets of group %q: %s", group, errorText(group, "", err))
				}
				for _, t := range topics {
					ps := sortedPartitions(committed[t])
					if len(ps) == 0 {
						return fmt.Errorf("group %q has no committed offsets for topic %q (see 'barge group describe %s')", group, t, group)
					}
					set.Add(t, ps...)
				}
			}
			resps, err := adm.DeleteOffsets(ctx, group, set)
			if err != nil {
				return errors.New(errorText(group, "", err))
			}
			out := OffsetDeleteResult{Group: group, Partitions: []PartitionResult{}}
			failed := 0
			for _, t := range sortedTopics(set) {
				for _, p := range sortedPartitions(set[t]) {
					res := PartitionResult{Topic: t, Partition: p, Error: "no answer for this partition"}
					if perr, ok := resps.Lookup(t, p); ok {
						res.Error = errorText(group, t, perr)
						if errors.Is(perr, kerr.UnknownTopicOrPartition) {
							res.Error = "the partition does not exist and the group has no offset for it"
						}
					}
					if res.Error != "" {
						failed++
					}
					out.Partitions = append(out.Partitions, res)
				}
			}
			if err := c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITION", "STATUS")
				for _, r := range out.Partitions {
					status := "deleted"
					if r.Error != "" {
						status = r.Error
					}
					t.Row(r.Topic, r.Partition, status)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			return cli.Failed(failed, len(out.Partitions), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVarP(&topics, "topic", "t", nil, "topics whose offsets to delete (required); comma-separated or repeated")
	fs.Int32SliceVarP(&partitions, "partitions", "p", nil, "only these partitions, of the one --topic")
	return cmd
}
