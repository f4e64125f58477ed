package topic

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// ListedTopic is one topic of `topic list`.
type ListedTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func newListCommand(c *cli.Common) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Example: `  barge topic list
  barge topic list -i -o json | jq -r '.topics[].topic'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			details, err := list(ctx)
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			out := struct {
				Topics []ListedTopic `json:"topics"`
			}{Topics: []ListedTopic{}}
			for _, d := range details.Sorted() {
				out.Topics = append(out.Topics, ListedTopic{
					Topic: d.Topic, TopicID: topicID(d.ID), Partitions: len(d.Partitions),
					ReplicationFactor: d.Partitions.NumReplicas(), Internal: d.IsInternal,
				})
			}
			return c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITIONS", "REPLICAS")
				for _, d := range out.Topics {
					t.Row(d.Topic, d.Partitions, d.ReplicationFactor)
				}
				return t.Flush()
			})
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics (__consumer_offsets)")
	return cmd
}
