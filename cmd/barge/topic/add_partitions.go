package topic

import (
	"fmt"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func newAddPartitionsCommand(c *cli.Common) *cobra.Command {
	var num int
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC... --num N",
		Short: "Add partitions to topics",
		Long: `Add N partitions to each topic. Partitions can only be added: records keep
their partitions, but keyed records produced from now on may hash to a
different partition than before.`,
		Example: `  barge topic add-partitions orders --num 3`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if num <= 0 {
				return cli.Usagef("--num must be a positive number of partitions to add")
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resps, err := adm.CreatePartitions(ctx, num, topics...)
			if err != nil {
				return fmt.Errorf("add partitions: %w", err)
			}
			out := struct {
				Topics []TopicResult `json:"topics"`
			}{topicResults(topics, resps, func(r kadm.CreatePartitionsResponse) (error, string) { return r.Err, r.ErrMessage })}
			if err := printResults(c, out.Topics, out); err != nil {
				return err
			}
			return cli.Failed(countFailed(out.Topics), len(topics), "topics")
		},
	}
	cmd.Flags().IntVarP(&num, "num", "n", 0, "partitions to add to each topic")
	return cmd
}
