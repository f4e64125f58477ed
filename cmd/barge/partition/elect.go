package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

func init() { addVerb(newElectCommand) }

// ElectResult is the outcome of `partition elect`: the plan, and whether
// it was carried out.
type ElectResult struct {
	Election string `json:"election"` // preferred or unclean
	// Executed is false for a dry run, which changes nothing.
	Executed   bool            `json:"executed"`
	Partitions []ElectedLeader `json:"partitions"`
}

// ElectedLeader is one partition of an election.
type ElectedLeader struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	// Leader is the leader before (-1: offline); NewLeader the one
	// planned, or after --execute the one the cluster reports (-1: none).
	Leader    int32 `json:"leader"`
	NewLeader int32 `json:"new_leader"`
	// Action is "elect" (the election is made, or would be),
	// "none" (already as asked: no change) or "refused".
	Action string `json:"action"`
	// Error says why it is refused; empty otherwise.
	Error string `json:"error"`
}

const electLong = `Elect partition leaders, as kafka-leader-election does, through the
Kafka ElectLeaders API.

--preferred (the default) gives each partition back to its preferred
replica, the first of its replica list, when that replica is alive and in
the ISR: after a failover the brokers that came back lead nothing until
then. The controller also does this by itself every
--leader-imbalance-check-interval-seconds unless
--auto-leader-rebalance-enable=false.

--unclean elects a leader for an offline partition (no live leader) from
any live replica, even one outside the ISR: the partition comes back, but
the records only the lost replicas held are gone. It refuses a partition
that has a leader.

Arguments name topics (every partition) or TOPIC:PARTITION; none means
every partition of the cluster that needs an election. By default this is
a dry run that prints the plan; --execute carries it out and prints what
the cluster reports afterwards. Exit code 1 when a partition is refused
(unknown, preferred replica out of the ISR or down, unclean election of a
healthy partition, ...), also when others were elected.`

const electExample = `  # Preview, then hand every partition back to its preferred replica:
  barge partition elect
  barge partition elect --execute

  # Two partitions of one topic and all of another:
  barge partition elect orders:0 orders:3 payments --execute

  # Bring back an offline partition whose in-sync replicas are lost:
  barge partition elect --unclean orders:2 --execute`

func newElectCommand(c *cli.Common) *cobra.Command {
	var preferred, unclean, execute bool
	cmd := &cobra.Command{
		Use:     "elect [--preferred|--unclean] [TOPIC[:PARTITION]]... [--execute]",
		Short:   "Elect preferred (or, for offline partitions, unclean) leaders (a dry run unless --execute)",
		Long:    electLong,
		Example: electExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if preferred && unclean {
				return cli.Usagef("--preferred and --unclean exclude each other")
			}
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			adm, ctx, cancel, err := connect.CommandAdmin(cmd, c, requestTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			res := ElectResult{Election: "preferred", Executed: execute}
			how := kadm.ElectPreferredReplica
			if unclean {
				res.Election, how = "unclean", kadm.ElectLiveReplica
			}
			if res.Partitions, err = planElection(ctx, adm, targets, unclean); err != nil {
				return err
			}
			if execute {
				if err := executeElection(ctx, adm, how, res.Partitions); err != nil {
					return err
				}
			}
			failed := 0
			for _, p := range res.Partitions {
				if p.Error != "" {
					failed++
				}
			}
			if err := c.Print(res, func(w io.Writer) error { return electTable(w, res) }); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d partitions refused", failed, len(res.Partitions))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&preferred, "preferred", false, "elect the preferred replicas (the default)")
	fs.BoolVar(&unclean, "unclean", false, "elect any live replica of offline partitions, even outside the ISR (may lose acknowledged records)")
	fs.BoolVar(&execute, "execute", false, "carry out the plan (without it: a dry run)")
	return cmd
}

// target is one argument: a topic (partition -1: all of them) or a
// TOPIC:PARTITION.
type target struct {
	topic     string
	partition int32
}

func parseTargets(args []string) ([]target, error) {
	var out []target
	for _, a := range args {
		// Topic names cannot hold ':'.
		topic, part, hasPart := strings.Cut(a, ":")
		if topic == "" {
			return nil, cli.Usagef("%q: want TOPIC or TOPIC:PARTITION", a)
		}
		t := target{topic: topic, partition: -1}
		if hasPart {
			n, err := strconv.ParseInt(part, 10, 32)
			if err != nil || n < 0 {
				return nil, cli.Usagef("%q: partition %q is not a partition number (0, 1, ...)", a, part)
			}
			t.partition = int32(n)
		}
		out = append(out, t)
	}
	return out, nil
}

// planElection reads the metadata and says, for each partition asked for,
// what the election would do. With no targets it lists the partitions of
// the cluster that need one (and those that cannot have it).
func planElection(ctx context.Context, adm *kadm.Client, targets []target, unclean bool) ([]ElectedLeader, error) {
	var topics []string
	for _, t := range targets {
		if !slices.Contains(topics, t.topic) {
			topics = append(topics, t.topic)
		}
	}
	md, err := adm.Metadata(fresh(ctx), topics...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	live := map[int32]bool{}
	for _, b := range md.Brokers {
		live[b.NodeID] = true // Barge's metadata lists the live brokers only
	}
	var out []ElectedLeader
	seen := map[target]bool{}
	add := func(topic string, p kadm.PartitionDetail, all bool) {
		if seen[target{topic, p.Partition}] {
			return
		}
		seen[target{topic, p.Partition}] = true
		e := planPartition(topic, p, live, unclean)
		if all && e.Action == "none" {
			return
		}
		out = append(out, e)
	}
	if len(targets) == 0 {
		for _, td := range md.Topics.Sorted() {
			for _, p := range td.Partitions.Sorted() {
				add(td.Topic, p, true)
			}
		}
		return out, nil
	}
	for _, t := range targets {
		td, ok := md.Topics[t.topic]
		if !ok || td.Err != nil {
			if !seen[t] {
				seen[t] = true
				out = append(out, refused(t.topic, t.partition, fmt.Sprintf("topic %q does not exist (see 'barge topic list')", t.topic)))
			}
			continue
		}
		if t.partition < 0 {
			for _, p := range td.Partitions.Sorted() {
				add(t.topic, p, false)
			}
			continue
		}
		p, ok := td.Partitions[t.partition]
		if !ok {
			if !seen[t] {
				seen[t] = true
				out = append(out, refused(t.topic, t.partition, fmt.Sprintf("topic %q has no partition %d (it has %d: 0 to %d)",
					t.topic, t.partition, len(td.Partitions), len(td.Partitions)-1)))
			}
			continue
		}
		add(t.topic, p, false)
	}
	return out, nil
}

func refused(topic string, partition int32, why string) ElectedLeader {
	return ElectedLeader{Topic: topic, Partition: partition, Replicas: []int32{}, ISR: []int32{},
		Leader: -1, NewLeader: -1, Action: "refused", Error: why}
}

// planPartition applies the controller's rules (cluster.ElectLeader) to
// what the metadata shows.
func planPartition(topic string, p kadm.PartitionDetail, live map[int32]bool, unclean bool) ElectedLeader {
	e := ElectedLeader{Topic: topic, Partition: p.Partition, Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR),
		Leader: p.Leader, NewLeader: p.Leader, Action: "none"}
	refuse := func(format string, args ...any) ElectedLeader {
		e.Action, e.NewLeader, e.Error = "refused", p.Leader, fmt.Sprintf(format, args...)
		return e
	}
	if len(p.Replicas) == 0 {
		return refuse("partition has no replicas")
	}
	if !unclean {
		pref := p.Replicas[0]
		switch {
		case p.Leader == pref:
			return e
		case !live[pref]:
			return refuse("preferred replica %d is down or fenced", pref)
		case !slices.Contains(p.ISR, pref):
			return refuse("preferred replica %d is not in the ISR [%s]: it has not caught up with the leader", pref, cli.Int32s(p.ISR))
		}
		e.Action, e.NewLeader = "elect", pref
		return e
	}
	if p.Leader >= 0 {
		return refuse("partition is led by broker %d: an unclean election is only for a partition without a live leader", p.Leader)
	}
	for _, group := range [][]int32{p.ISR, p.Replicas} {
		for _, r := range group {
			if live[r] {
				e.Action, e.NewLeader = "elect", r
				return e
			}
		}
	}
	return refuse("no replica of [%s] is alive", cli.Int32s(p.Replicas))
}

// executeElection sends the planned elections in one ElectLeaders request
// and records the answer and the leaders the cluster reports afterwards.
func executeElection(ctx context.Context, adm *kadm.Client, how kadm.ElectLeadersHow, plan []ElectedLeader) error {
	set := kadm.TopicsSet{}
	for _, p := range plan {
		if p.Action == "elect" {
			set.Add(p.Topic, p.Partition)
		}
	}
	if len(set) == 0 {
		return nil
	}
	results, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return fmt.Errorf("elect leaders: %w", err)
	}
	// The broker that took the request answered once its own metadata
	// named the new leaders; the others follow within a Raft heartbeat, so
	// the leaders are read until every elected partition shows its new
	// one (or, after a short while, as they are).
	var topics []string
	for t := range set {
		topics = append(topics, t)
	}
	for i := range plan {
		p := &plan[i]
		if p.Action != "elect" {
			continue
		}
		r, ok := results[p.Topic][p.Partition]
		switch {
		case !ok:
			p.Action, p.Error = "refused", "the cluster gave no answer for this partition"
		case errors.Is(r.Err, kerr.ElectionNotNeeded):
			p.Action = "none" // the leader moved there meanwhile
		case r.Err != nil:
			p.Action, p.Error = "refused", electionError(r.Err, r.ErrMessage)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		md, err := adm.Metadata(fresh(wctx), topics...)
		settled := err == nil
		for i := range plan {
			p := &plan[i]
			if p.Action == "refused" || !set.Lookup(p.Topic, p.Partition) {
				continue
			}
			p.NewLeader = -1
			if err == nil {
				if pd, ok := md.Topics[p.Topic].Partitions[p.Partition]; ok {
					p.NewLeader = pd.Leader
				}
			}
			if p.Action == "elect" && (p.NewLeader == p.Leader || p.NewLeader < 0) {
				settled = false
			}
		}
		if settled {
			return nil
		}
		select {
		case <-wctx.Done():
			return nil // report the leaders as last seen
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fresh makes kadm's Metadata ask a broker rather than answer from the
// client's cache (kept for MetadataMinAge, 5 s), which would still show the
// leaders from before an election: kadm bypasses the cache for requests
// that ask for authorized operations.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

// settleTimeout bounds the wait for every broker to report new leaders.
const settleTimeout = 5 * time.Second

// electionError explains the cluster's refusal.
func electionError(err error, msg string) string {
	why := ""
	switch {
	case errors.Is(err, kerr.PreferredLeaderNotAvailable):
		why = "the preferred replica is down or out of the ISR"
	case errors.Is(err, kerr.EligibleLeadersNotAvailable):
		why = "no live replica can lead"
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		why = "the partition does not exist"
	}
	s := err.Error()
	if why != "" {
		s += ": " + why
	}
	if msg != "" {
		s += " (" + msg + ")"
	}
	return s
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func electTable(w io.Writer, res ElectResult) error {
	if !res.Executed {
		fmt.Fprintf(w, "Dry run (%s election): nothing changed. Add --execute to elect.\n\n", res.Election)
	}
	if len(res.Partitions) == 0 {
		_, err := fmt.Fprintln(w, "Every partition already has the leader asked for; nothing to elect.")
		return err
	}
	newCol := "NEW-LEADER"
	if !res.Executed {
		newCol = "PLANNED-LEADER"
	}
	t := cli.NewTable(w, "TOPIC", "PARTITION", "REPLICAS", "ISR", "LEADER", newCol, "ACTION", "ERROR")
	for _, p := range res.Partitions {
		t.Row(p.Topic, p.Partition, "["+cli.Int32s(p.Replicas)+"]", "["+cli.Int32s(p.ISR)+"]", p.Leader, p.NewLeader, p.Action, p.Error)
	}
	return t.Flush()
}
