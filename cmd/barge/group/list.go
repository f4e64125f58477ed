package group

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// Listed is one group of `group list`.
type Listed struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
	MemberCount  int    `json:"member_count"`
	// LagTotal is the group's lag over the partitions whose lag is known
	// (as lag_total of `group describe`).
	LagTotal int64  `json:"lag_total"`
	Error    string `json:"error"`
}

// groupStates are the states of a classic group, as Kafka names them.
var groupStates = []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func newListCommand(c *cli.Common) *cobra.Command {
	var (
		states []string
		minLag int64
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state, members and total lag",
		Long: `List the consumer groups of the cluster (every broker is asked for the groups
it coordinates), each with its state, member count, coordinator and total
lag: the records between its committed offsets and the partitions' ends.
--min-lag keeps the groups at least that far behind; groups whose lag could
not be computed are always shown, with their error.`,
		Example: `  barge group list
  # Groups more than 10000 records behind:
  barge group list --min-lag 10000
  # Groups without members, as names:
  barge group list --state Empty -o json | jq -r '.groups[].group'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var filter []string
			for _, s := range states {
				i := indexFold(groupStates, s)
				if i < 0 {
					return cli.Usagef("--state %q: want one of %s", s, strings.Join(groupStates, ", "))
				}
				filter = append(filter, groupStates[i])
			}
			if minLag < 0 {
				return cli.Usagef("--min-lag must not be negative")
			}
			adm, ctx, cancel, err := adminClient(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			// Some brokers failing leaves their groups out: the rest is
			// printed, and the command fails after.
			listed, listErr := adm.ListGroups(ctx, filter...)
			var shardErrs *kadm.ShardErrors
			if listErr != nil && (!errors.As(listErr, &shardErrs) || shardErrs.AllFailed) {
				return fmt.Errorf("list groups: %w", listErr)
			}
			out := struct {
				Groups []Listed `json:"groups"`
			}{Groups: []Listed{}}
			failed := 0
			if names := listed.Groups(); len(names) > 0 {
				ds, err := describeGroups(ctx, adm, names)
				if err != nil {
					return err
				}
				for _, d := range ds {
					if d.State == "Dead" && len(d.Members) == 0 && len(d.Offsets) == 0 {
						continue // deleted since it was listed
					}
					l := Listed{Group: d.Group, State: d.State, ProtocolType: d.ProtocolType, Coordinator: d.Coordinator,
						MemberCount: len(d.Members), LagTotal: d.LagTotal, Error: d.Error}
					if lg, ok := listed[d.Group]; ok && l.State == "" {
						l.State, l.ProtocolType, l.Coordinator = lg.State, lg.ProtocolType, lg.Coordinator
					}
					for _, o := range d.Offsets {
						if l.Error == "" && o.Error != "" {
							l.Error = fmt.Sprintf("%s/%d: %s", o.Topic, o.Partition, o.Error)
						}
					}
					if l.Error == "" && l.LagTotal < minLag {
						continue
					}
					if l.Error != "" {
						failed++
					}
					out.Groups = append(out.Groups, l)
				}
			}
			if err := c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "GROUP", "STATE", "MEMBERS", "COORDINATOR", "LAG", "ERROR")
				for _, l := range out.Groups {
					t.Row(l.Group, l.State, l.MemberCount, l.Coordinator, l.LagTotal, l.Error)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			if listErr != nil {
				return fmt.Errorf("list groups: some brokers did not answer, their groups are missing: %w", listErr)
			}
			return cli.Failed(failed, len(out.Groups), "groups")
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&states, "state", nil, "only groups in these states: "+strings.Join(groupStates, ", ")+"; comma-separated or repeated")
	fs.Int64Var(&minLag, "min-lag", 0, "only groups with at least this total lag (records)")
	return cmd
}

// indexFold is the index of s in list, ignoring case; -1 when absent.
func indexFold(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}
