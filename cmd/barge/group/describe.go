package group

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// Described is one group of `group describe`.
type Described struct {
	Group string `json:"group"`
	// Coordinator is the id of the broker coordinating the group: the one
	// whose barge_consumer_group_lag metric carries it.
	Coordinator  int32    `json:"coordinator"`
	State        string   `json:"state"`
	ProtocolType string   `json:"protocol_type"` // "consumer" for Kafka consumers
	Protocol     string   `json:"protocol"`      // the assignor, while the group is Stable
	Members      []Member `json:"members"`
	// Offsets holds every partition the group has a committed offset for
	// or a member is assigned, by topic and partition.
	Offsets []PartitionLag `json:"offsets"`
	// LagTotal and LagByTopic sum the lag of the partitions whose lag is
	// known: those with a committed offset and a listed end.
	LagTotal   int64            `json:"lag_total"`
	LagByTopic map[string]int64 `json:"lag_by_topic"`
	Error      string           `json:"error"`
}

// Member is one member of a group and what it was assigned.
type Member struct {
	MemberID    string       `json:"member_id"`
	InstanceID  string       `json:"instance_id"` // group.instance.id of a static member, else ""
	ClientID    string       `json:"client_id"`
	Host        string       `json:"host"`
	Assignments []Assignment `json:"assignments"`
}

// Assignment is the partitions of one topic assigned to a member.
type Assignment struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// PartitionLag is one partition of a group: its committed offset, the
// partition's end (high watermark) and how far behind the group is.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the next offset the group reads; -1 when nothing is
	// committed yet.
	Committed int64 `json:"committed"`
	End       int64 `json:"end"` // -1 when it could not be listed
	// Lag is End - Committed (0 if negative); -1 when unknown: nothing
	// committed, or the end could not be listed (see error).
	Lag int64 `json:"lag"`
	// MemberID is the member assigned the partition, "" for none.
	MemberID string `json:"member_id"`
	Error    string `json:"error"`
}

// failed reports whether anything about the group could not be described.
func (d Described) failed() bool {
	return d.Error != "" || slices.ContainsFunc(d.Offsets, func(o PartitionLag) bool { return o.Error != "" })
}

func newDescribeCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Describe groups: members and assignments, committed offsets and lag",
		Long: `Describe consumer groups: the coordinator, the state, each member with its
client id, host and assigned partitions, and for each partition the group
has committed to or is assigned: the committed offset, the end (high
watermark) and the lag between them, summed per topic and in total.

Lag counts only partitions with a committed offset, as the opt-in metric
barge_consumer_group_lag does: where a member starts on a partition without
one depends on its auto.offset.reset, so such a partition shows lag -1 and
is left out of the sums. A group that does not exist (no members, no
offsets) is an error, as is a partition whose end could not be listed; the
command then exits 1.`,
		Example: `  barge group describe billing
  barge group describe billing audit -o json | jq '.groups[] | {group, lag_total, lag_by_topic}'
  # Partitions of a group more than 1000 records behind:
  barge group describe billing -o json | jq -r '.groups[0].offsets[] | select(.lag > 1000) | "\(.topic)/\(.partition) \(.lag)"'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			ds, err := describeGroups(ctx, adm, groups)
			if err != nil {
				return err
			}
			out := struct {
				Groups []Described `json:"groups"`
			}{Groups: ds}
			failed := 0
			for _, d := range ds {
				if d.failed() {
					failed++
				}
			}
			if err := c.Print(out, func(w io.Writer) error { return describeTable(w, ds) }); err != nil {
				return err
			}
			return cli.Failed(failed, len(ds), "groups")
		},
	}
}

// describeGroups describes groups with their lag (kadm's Lag: DescribeGroups,
// OffsetFetch, and ListOffsets of the topics involved), in the order given.
// Failures of one group land in its Error fields; an error is returned only
// when nothing could be described.
func describeGroups(ctx context.Context, adm *kadm.Client, groups []string) ([]Described, error) {
	// Lag reorders the slice it is given in place.
	lags, err := adm.Lag(ctx, slices.Clone(groups)...)
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	out := make([]Described, 0, len(groups))
	for _, g := range groups {
		l, ok := lags[g]
		if !ok {
			out = append(out, Described{Group: g, Coordinator: -1, Members: []Member{}, Offsets: []PartitionLag{},
				LagByTopic: map[string]int64{}, Error: "no answer for this group"})
			continue
		}
		out = append(out, described(l))
	}
	return out, nil
}

func described(l kadm.DescribedGroupLag) Described {
	d := Described{
		Group: l.Group, Coordinator: l.Coordinator.NodeID, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Members: []Member{}, Offsets: []PartitionLag{}, LagByTopic: map[string]int64{},
	}
	if err := l.Error(); err != nil {
		d.Error = errorText(l.Group, "", err)
		return d
	}
	for _, m := range l.Members {
		dm := Member{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assignments: []Assignment{}}
		if m.InstanceID != nil {
			dm.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				dm.Assignments = append(dm.Assignments, Assignment{Topic: t.Topic, Partitions: ps})
			}
			slices.SortFunc(dm.Assignments, func(a, b Assignment) int { return strings.Compare(a.Topic, b.Topic) })
		}
		d.Members = append(d.Members, dm)
	}
	for _, pl := range l.Lag.Sorted() {
		o := PartitionLag{Topic: pl.Topic, Partition: pl.Partition, Committed: pl.Commit.At, End: -1, Lag: pl.Lag}
		if pl.End.Err == nil {
			o.End = pl.End.Offset
		}
		if pl.Member != nil {
			o.MemberID = pl.Member.MemberID
		}
		if o.Committed < 0 {
			if o.MemberID == "" {
				// kadm lists every partition of a topic an empty group
				// committed to; one it never committed is not its own.
				continue
			}
			// Where a member starts without a commit depends on its
			// auto.offset.reset: the lag is unknown, not end - start
			// as kadm counts it.
			o.Lag = -1
		}
		if pl.Err != nil {
			o.Error = errorText(l.Group, pl.Topic, pl.Err)
		}
		d.Offsets = append(d.Offsets, o)
		if _, ok := d.LagByTopic[o.Topic]; !ok {
			d.LagByTopic[o.Topic] = 0
		}
		if o.Lag > 0 {
			d.LagTotal += o.Lag
			d.LagByTopic[o.Topic] += o.Lag
		}
	}
	// Kafka describes a group it does not know as Dead with nothing in it.
	if d.State == "Dead" && len(d.Members) == 0 && len(d.Offsets) == 0 {
		d.Error = errorText(l.Group, "", kerr.GroupIDNotFound)
	}
	return d
}

func describeTable(w io.Writer, ds []Described) error {
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if d.Error != "" && len(d.Members) == 0 && len(d.Offsets) == 0 {
			fmt.Fprintf(w, "%s: %s\n", d.Group, d.Error)
			continue
		}
		cli.Section(w, "SUMMARY")
		t := cli.NewTable(w)
		t.Row("GROUP", d.Group)
		t.Row("COORDINATOR", d.Coordinator)
		t.Row("STATE", d.State)
		protocol := d.ProtocolType
		if d.Protocol != "" {
			protocol += " (" + d.Protocol + ")"
		}
		t.Row("PROTOCOL", protocol)
		t.Row("MEMBERS", len(d.Members))
		t.Row("LAG", d.LagTotal)
		if d.Error != "" {
			t.Row("ERROR", d.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		if len(d.Members) > 0 {
			fmt.Fprintln(w)
			cli.Section(w, "MEMBERS")
			t = cli.NewTable(w, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS")
			for _, m := range d.Members {
				var as []string
				for _, a := range m.Assignments {
					as = append(as, a.Topic+":"+cli.Int32s(a.Partitions))
				}
				t.Row(m.MemberID, m.ClientID, m.Host, strings.Join(as, " "))
			}
			if err := t.Flush(); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
		cli.Section(w, "OFFSETS")
		t = cli.NewTable(w, "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER-ID", "ERROR")
		for _, o := range d.Offsets {
			t.Row(o.Topic, o.Partition, orDash(o.Committed), orDash(o.End), orDash(o.Lag), o.MemberID, o.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		cli.Section(w, "LAG BY TOPIC")
		t = cli.NewTable(w, "TOPIC", "LAG")
		for _, topic := range sortedTopics(d.LagByTopic) {
			t.Row(topic, d.LagByTopic[topic])
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
}
