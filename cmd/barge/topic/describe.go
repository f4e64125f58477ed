package topic

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// Described is one topic of `topic describe`.
type Described struct {
	Topic             string               `json:"topic"`
	TopicID           string               `json:"topic_id"`
	Internal          bool                 `json:"internal"`
	ReplicationFactor int                  `json:"replication_factor"`
	Partitions        []DescribedPartition `json:"partitions"`
	Configs           []DescribedConfig    `json:"configs"`
	Error             string               `json:"error"`
}

// DescribedPartition is one partition: its replicas and offsets.
type DescribedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// LogStartOffset is the first offset still held; HighWatermark is the
	// end of what consumers can read (the log end offset while every
	// partition has one replica). -1 when they could not be listed.
	LogStartOffset int64  `json:"log_start_offset"`
	HighWatermark  int64  `json:"high_watermark"`
	Error          string `json:"error"`
}

// DescribedConfig is one topic config with where its value comes from:
// DYNAMIC_TOPIC_CONFIG (set on the topic) or DEFAULT_CONFIG (the broker's
// default), Kafka's names.
type DescribedConfig struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive"`
}

func newDescribeCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Describe topics: partitions with leader, replicas, ISR and offsets; configs with their source",
		Example: `  barge topic describe orders
  barge topic describe orders -o json | jq '.topics[0].partitions[] | {partition, high_watermark}'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			out := struct {
				Topics []Described `json:"topics"`
			}{}
			failed := 0
			for _, name := range topics {
				d := describe(ctx, adm, name)
				if d.Error != "" {
					failed++
				}
				out.Topics = append(out.Topics, d)
			}
			if err := c.Print(out, func(w io.Writer) error { return describeTable(w, out.Topics) }); err != nil {
				return err
			}
			return cli.Failed(failed, len(topics), "topics")
		},
	}
}

// describe gathers one topic's metadata, offsets and configs. Failures
// land in the Error fields.
func describe(ctx context.Context, adm *kadm.Client, name string) Described {
	d := Described{Topic: name, Partitions: []DescribedPartition{}, Configs: []DescribedConfig{}}
	md, err := adm.Metadata(ctx, name)
	if err != nil {
		d.Error = fmt.Sprintf("metadata: %v", err)
		return d
	}
	td := md.Topics[name]
	if td.Err != nil {
		d.Error = errorText(name, td.Err, "")
		return d
	}
	d.TopicID, d.Internal, d.ReplicationFactor = topicID(td.ID), td.IsInternal, td.Partitions.NumReplicas()
	starts, serr := adm.ListStartOffsets(ctx, name)
	ends, eerr := adm.ListEndOffsets(ctx, name)
	for _, p := range td.Partitions.Sorted() {
		dp := DescribedPartition{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStartOffset: -1, HighWatermark: -1,
		}
		errs := []error{p.Err, serr, eerr}
		if s, ok := starts.Lookup(name, p.Partition); ok {
			dp.LogStartOffset = s.Offset
			errs = append(errs, s.Err)
		}
		if e, ok := ends.Lookup(name, p.Partition); ok {
			dp.HighWatermark = e.Offset
			errs = append(errs, e.Err)
		}
		if p.Leader < 0 {
			dp.Error = "no leader: the partition is offline"
		}
		for _, err := range errs {
			if err != nil && dp.Error == "" {
				dp.Error = err.Error()
			}
		}
		d.Partitions = append(d.Partitions, dp)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err == nil && len(rcs) > 0 && rcs[0].Err != nil {
		err = rcs[0].Err
	}
	if err != nil {
		d.Error = fmt.Sprintf("configs: %v", err)
		return d
	}
	for _, rc := range rcs {
		for _, cfg := range rc.Configs {
			d.Configs = append(d.Configs, DescribedConfig{
				Name: cfg.Key, Value: cfg.MaybeValue(), Source: cfg.Source.String(), Sensitive: cfg.Sensitive,
			})
		}
	}
	slices.SortFunc(d.Configs, func(a, b DescribedConfig) int { return strings.Compare(a.Name, b.Name) })
	return d
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func describeTable(w io.Writer, ds []Described) error {
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if d.Error != "" && d.TopicID == "" {
			fmt.Fprintf(w, "%s: %s\n", d.Topic, d.Error)
			continue
		}
		cli.Section(w, "SUMMARY")
		t := cli.NewTable(w)
		t.Row("NAME", d.Topic)
		t.Row("ID", d.TopicID)
		t.Row("PARTITIONS", len(d.Partitions))
		t.Row("REPLICAS", d.ReplicationFactor)
		if d.Internal {
			t.Row("INTERNAL", true)
		}
		if d.Error != "" {
			t.Row("ERROR", d.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		cli.Section(w, "CONFIGS")
		t = cli.NewTable(w, "KEY", "VALUE", "SOURCE")
		for _, c := range d.Configs {
			t.Row(c.Name, c.Value, c.Source)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		cli.Section(w, "PARTITIONS")
		t = cli.NewTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK", "ERROR")
		for _, p := range d.Partitions {
			t.Row(p.Partition, p.Leader, p.LeaderEpoch, "["+cli.Int32s(p.Replicas)+"]", "["+cli.Int32s(p.ISR)+"]",
				p.LogStartOffset, p.HighWatermark, p.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
}
