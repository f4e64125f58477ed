package topic

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// CreateResult is the outcome of creating one topic.
type CreateResult struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
	Error             string `json:"error"`
}

func newCreateCommand(c *cli.Common) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Long: `Create one or more topics. Without -p or -r the broker's defaults apply
(--default-partitions, --default-replication-factor). -c sets a topic
config, as kafka-topics --config does; repeat it for several.`,
		Example: `  barge topic create orders -p 6
  barge topic create audit -p 3 -r 3 -c retention.ms=604800000 -c max.message.bytes=2097152
  barge topic create a b c --dry-run -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			if partitions == 0 || partitions < -1 {
				return cli.Usagef("-p/--partitions must be positive (or -1 for the broker default)")
			}
			if replicas == 0 || replicas < -1 {
				return cli.Usagef("-r/--replicas must be positive (or -1 for the broker default)")
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			create := adm.CreateTopics
			if dryRun {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(ctx, partitions, replicas, cfg, topics...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			var out struct {
				Topics []CreateResult `json:"topics"`
			}
			failed := 0
			for _, t := range topics {
				r, ok := resps[t]
				res := CreateResult{Topic: t}
				switch {
				case !ok:
					res.Error = "no answer for this topic"
				case r.Err != nil:
					res.Error = errorText(t, r.Err, r.ErrMessage)
				default:
					res.TopicID, res.Partitions, res.ReplicationFactor = topicID(r.ID), r.NumPartitions, r.ReplicationFactor
				}
				if res.Error != "" {
					failed++
				}
				out.Topics = append(out.Topics, res)
			}
			if err := c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "STATUS")
				for _, r := range out.Topics {
					status := "OK"
					if dryRun {
						status = "OK (dry run)"
					}
					if r.Error != "" {
						status = r.Error
					}
					t.Row(r.Topic, status)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			return cli.Failed(failed, len(topics), "topics")
		},
	}
	fs := cmd.Flags()
	fs.Int32VarP(&partitions, "partitions", "p", -1, "partitions per topic (-1: the broker default)")
	fs.Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: the broker default)")
	fs.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value; repeatable")
	fs.BoolVar(&dryRun, "dry-run", false, "only validate the request")
	return cmd
}

// parseConfigs parses key=value flags into a kadm config map.
func parseConfigs(kvs []string) (map[string]*string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cli.Usagef("config %q: want key=value", kv)
		}
		out[k] = &v
	}
	return out, nil
}
