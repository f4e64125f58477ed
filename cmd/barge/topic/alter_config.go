package topic

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func newAlterConfigCommand(c *cli.Common) *cobra.Command {
	var set, del []string
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC... [--set key=value]... [--delete key]...",
		Short: "Set or delete topic configs",
		Long: `Set or delete configs of topics, incrementally (IncrementalAlterConfigs):
configs not named keep their values. A deleted config falls back to the
broker's default.`,
		Example: `  barge topic alter-config orders --set retention.ms=86400000
  barge topic alter-config orders --delete retention.ms --set segment.bytes=134217728`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if len(set) == 0 && len(del) == 0 {
				return cli.Usagef("nothing to change: give --set key=value or --delete key")
			}
			var alters []kadm.AlterConfig
			for _, kv := range set {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return cli.Usagef("--set %q: want key=value", kv)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			for _, k := range del {
				if k == "" || strings.Contains(k, "=") {
					return cli.Usagef("--delete %q: want a config name", k)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			resps, err := adm.AlterTopicConfigs(ctx, alters, topics...)
			if err != nil {
				return fmt.Errorf("alter configs: %w", err)
			}
			out := struct {
				Topics []TopicResult `json:"topics"`
			}{}
			for _, t := range topics {
				res := TopicResult{Topic: t, Error: "no answer for this topic"}
				if r, err := resps.On(t, nil); err == nil {
					res.Error = errorText(t, r.Err, r.ErrMessage)
				}
				out.Topics = append(out.Topics, res)
			}
			if err := printResults(c, out.Topics, out); err != nil {
				return err
			}
			return cli.Failed(countFailed(out.Topics), len(topics), "topics")
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&set, "set", nil, "config to set, key=value; repeatable")
	fs.StringArrayVar(&del, "delete", nil, "config to delete (back to the default); repeatable")
	return cmd
}
