package topic

import (
	"fmt"
	"github.com/twmb/franz-go/pkg/kadm"
	"io"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func newDeleteCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:     "delete TOPIC...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Example: `  barge topic delete orders
  barge topic delete a b c -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			out := struct {
				Topics []TopicResult `json:"topics"`
			}{topicResults(topics, resps, func(r kadm.DeleteTopicResponse) (error, string) { return r.Err, r.ErrMessage })}
			if err := printResults(c, out.Topics, out); err != nil {
				return err
			}
			return cli.Failed(countFailed(out.Topics), len(topics), "topics")
		},
	}
}

// printResults prints per-topic outcomes: v in JSON or YAML, rs as a
// table.
func printResults(c *cli.Common, rs []TopicResult, v any) error {
	return c.Print(v, func(w io.Writer) error {
		t := cli.NewTable(w, "TOPIC", "STATUS")
		for _, r := range rs {
			status := "OK"
			if r.Error != "" {
				status = r.Error
			}
			t.Row(r.Topic, status)
		}
		return t.Flush()
	})
}
