package group

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/offsets"
)

// SeekResult is the outcome of `group seek`: the plan, and whether it was
// committed.
type SeekResult struct {
	Group string `json:"group"`
	To    string `json:"to"` // the --to value as given
	// Executed is false for a dry run, which changes nothing.
	Executed   bool            `json:"executed"`
	Partitions []SeekPartition `json:"partitions"`
}

// SeekPartition is one partition of a seek.
type SeekPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current"` // the committed offset before; -1 for none
	New       int64  `json:"new"`     // the offset planned (and committed with --execute); -1 on error
	Error     string `json:"error"`
}

// seekTarget is a parsed --to: an offset spec, or another group's offsets.
type seekTarget struct {
	spec  offsets.Spec
	group string // group:NAME; spec is unused then
}

func parseSeekTarget(s string, now time.Time) (seekTarget, error) {
	if name, ok := strings.CutPrefix(s, "group:"); ok {
		if name == "" {
			return seekTarget{}, cli.Usagef("--to group: needs a group name, as in group:billing")
		}
		return seekTarget{group: name}, nil
	}
	spec, err := offsets.ParseSpec(s, now)
	if err != nil {
		return seekTarget{}, cli.Usagef("--to: %v, or group:NAME", err)
	}
	return seekTarget{spec: spec}, nil
}

const seekLong = `Move a consumer group's committed offsets, as kafka-consumer-groups
--reset-offsets and rpk group seek do. The group must have no active
members: with consumers running, it refuses (exit 1), since they would
overwrite the new offsets with their own commits. Stop them first.

By default this is a dry run: it prints each partition's current committed
offset and the new one, and changes nothing. Add --execute to commit.

--to is one of:

  start        the log start offset, to read everything again
  end          the high watermark, to skip everything there is
  N            offset N           +N   N after the start
                                  -N   N before the end
  @TIME        the first record at or after a time: unix seconds or
               milliseconds, RFC 3339 (@2024-06-01T10:00:00Z), a date,
               or a duration ago (@-1h)
  group:NAME   where group NAME is (its committed offsets)

New offsets are clamped to each partition's [log start, high watermark].
The partitions that move: without --topic, those the group has offsets for;
with --topic, every partition of the topics named; with --partitions, those
of the one --topic. With group:NAME, only partitions NAME has offsets for.
A group that does not exist yet gets the offsets, so a new group can start
where you choose.`

const seekExample = `  # Preview, then apply: back to the start of what the group consumes
  barge group seek billing --to start
  barge group seek billing --to start --execute

  # Skip a topic's backlog:
  barge group seek billing --to end --topic orders --execute

  # Replay the last hour of partitions 0 and 1 of a topic:
  barge group seek billing --to @-1h --topic orders -p 0,1 --execute

  # Start a new group where another one is:
  barge group seek billing-v2 --to group:billing --execute`

func newSeekCommand(c *cli.Common) *cobra.Command {
	var (
		to         string
		topics     []string
		partitions []int32
		execute    bool
	)
	cmd := &cobra.Command{
		Use:     "seek GROUP --to start|end|OFFSET|@TIME|group:NAME [--topic TOPIC]... [--execute]",
		Short:   "Move a group's committed offsets (a dry run unless --execute)",
		Long:    seekLong,
		Example: seekExample,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if to == "" {
				return cli.Usagef("--to is required: start, end, an offset, @time or group:NAME")
			}
			tgt, err := parseSeekTarget(to, time.Now())
			if err != nil {
				return err
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
			plan, err := planSeek(ctx, adm, group, tgt, topics, partitions)
			if err != nil {
				return err
			}
			res := SeekResult{Group: group, To: to, Executed: execute, Partitions: plan}
			if execute {
				if err := commitSeek(ctx, adm, group, plan); err != nil {
					return err
				}
			}
			failed := 0
			for _, p := range plan {
				if p.Error != "" {
					failed++
				}
			}
			if err := c.Print(res, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITION", "CURRENT", "NEW", "ERROR")
				for _, p := range plan {
					t.Row(p.Topic, p.Partition, orDash(p.Current), orDash(p.New), p.Error)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			switch {
			case !execute:
				fmt.Fprintf(c.Stderr, "Dry run: nothing changed. Run again with --execute to commit these offsets.\n")
			case failed < len(plan):
				fmt.Fprintf(c.Stderr, "Committed the offsets of %d partition(s) for group %s.\n", len(plan)-failed, group)
			}
			return cli.Failed(failed, len(plan), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&to, "to", "", "where to move the offsets: start, end, N, +N, -N, @TIME or group:NAME (required)")
	fs.StringSliceVarP(&topics, "topic", "t", nil, "topics to move (default: those the group has offsets for); comma-separated or repeated")
	fs.Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to move, of the one --topic (default: all)")
	fs.BoolVar(&execute, "execute", false, "commit the new offsets (without it, only show them)")
	return cmd
}

// planSeek checks that the group has no active members and works out the
// new offset of each partition to move. Problems with single partitions
// land in their Error fields; a returned error stops the command.
func planSeek(ctx context.Context, adm *kadm.Client, group string, tgt seekTarget, topics []string, partitions []int32) ([]SeekPartition, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %q: %w", group, err)
	}
	if d, ok := described[group]; ok {
		if d.Err != nil {
			return nil, fmt.Errorf("describe group %q: %s", group, errorText(group, "", d.Err))
		}
		if active(d.State) {
			return nil, fmt.Errorf("group %q has %d active member(s) (state %s): refusing to move its offsets, which its consumers would overwrite with their own commits; stop them first (see 'barge group describe %s')",
				group, len(d.Members), d.State, group)
		}
	}
	current, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %s", group, errorText(group, "", err))
	}
	// from is the group whose committed partitions are moved by default.
	from := current
	var source kadm.OffsetResponses
	if tgt.group != "" {
		if source, err = adm.FetchOffsets(ctx, tgt.group); err != nil {
			return nil, fmt.Errorf("fetch offsets of group %q: %s", tgt.group, errorText(tgt.group, "", err))
		}
		source.DeleteFunc(func(o kadm.OffsetResponse) bool { return o.Err != nil || o.At < 0 })
		if len(source) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets to seek to", tgt.group)
		}
		from = source
	}
	explicit := len(topics) > 0
	if !explicit {
		if topics = sortedTopics(from); len(topics) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets: name the topics to seek with --topic", group)
		}
	}
	starts, err := listOffsets(adm.ListStartOffsets(ctx, topics...))
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := listOffsets(adm.ListEndOffsets(ctx, topics...))
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	var times kadm.ListedOffsets
	if tgt.group == "" && tgt.spec.Kind == offsets.Time {
		if times, err = listOffsets(adm.ListOffsetsAfterMilli(ctx, tgt.spec.Millis, topics...)); err != nil {
			return nil, fmt.Errorf("list offsets by time: %w", err)
		}
	}

	var plan []SeekPartition
	for _, t := range slices.Compact(slices.Sorted(slices.Values(topics))) {
		var ps []int32
		switch {
		case explicit && !topicExists(ends, t):
			return nil, fmt.Errorf("topic %q does not exist (see 'barge topic list')", t)
		case len(partitions) > 0:
			ps = slices.Compact(slices.Sorted(slices.Values(partitions)))
			for _, p := range ps {
				if _, ok := ends[t][p]; !ok {
					return nil, fmt.Errorf("topic %q has no partition %d (it has %d)", t, p, len(sortedPartitions(ends[t])))
				}
			}
		case explicit && tgt.group == "":
			ps = sortedPartitions(ends[t])
		default:
			ps = sortedPartitions(from[t])
		}
		for _, p := range ps {
			row := SeekPartition{Topic: t, Partition: p, Current: -1, New: -1}
			if o, ok := current.Lookup(t, p); ok && o.Err == nil {
				row.Current = o.At
			}
			row.New, row.Error = seekTo(group, tgt, source, starts, ends, times, t, p)
			plan = append(plan, row)
		}
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("nothing to seek: group %q has no committed offsets in the partitions asked for", tgt.group)
	}
	return plan, nil
}

// seekTo resolves the new offset of one partition, or says why it cannot.
func seekTo(group string, tgt seekTarget, source kadm.OffsetResponses, starts, ends, times kadm.ListedOffsets, t string, p int32) (int64, string) {
	start, err := listedOffset(starts, t, p)
	if err == nil {
		var end int64
		if end, err = listedOffset(ends, t, p); err == nil {
			b := offsets.Bounds{Start: start, End: end}
			if tgt.group != "" {
				o, ok := source.Lookup(t, p)
				if !ok {
					return -1, fmt.Sprintf("group %q has no committed offset for this partition", tgt.group)
				}
				return min(max(o.At, b.Start), b.End), ""
			}
			atTime := int64(-1)
			if tgt.spec.Kind == offsets.Time {
				if atTime, err = listedOffset(times, t, p); err != nil {
					return -1, errorText(group, t, err)
				}
			}
			return tgt.spec.Resolve(b, atTime), ""
		}
	}
	return -1, errorText(group, t, err)
}

// listOffsets passes a listing through, unless it failed entirely: with
// some brokers failing, their partitions are missing, which seekTo reports
// per partition.
func listOffsets(l kadm.ListedOffsets, err error) (kadm.ListedOffsets, error) {
	var se *kadm.ShardErrors
	if err != nil && (!errors.As(err, &se) || se.AllFailed) {
		return nil, err
	}
	return l, nil
}

// listedOffset is the listed offset of t/p, or why there is none.
func listedOffset(l kadm.ListedOffsets, t string, p int32) (int64, error) {
	if o, ok := l.Lookup(t, p); ok {
		return o.Offset, o.Err
	}
	if !topicExists(l, t) {
		return -1, kerr.UnknownTopicOrPartition
	}
	return -1, errors.New("its offsets could not be listed: the partition's leader did not answer")
}

// topicExists reports whether a listing has the topic; kadm lists a topic
// that does not exist as partition -1 with UNKNOWN_TOPIC_OR_PARTITION.
func topicExists(l kadm.ListedOffsets, t string) bool {
	if o, ok := l.Lookup(t, -1); ok && o.Err != nil {
		return false
	}
	return len(l[t]) > 0
}

// commitSeek commits the planned offsets without errors and records the
// outcome per partition. The commit is a simple one (no member, generation
// -1), which the coordinator accepts only while the group is empty.
func commitSeek(ctx context.Context, adm *kadm.Client, group string, plan []SeekPartition) error {
	var commit kadm.Offsets
	for _, p := range plan {
		if p.Error == "" {
			commit.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.New, LeaderEpoch: -1})
		}
	}
	if len(commit) == 0 {
		return nil
	}
	resps, err := adm.CommitOffsets(ctx, group, commit)
	if err != nil {
		return fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	for i := range plan {
		p := &plan[i]
		if p.Error != "" {
			continue
		}
		r, ok := resps.Lookup(p.Topic, p.Partition)
		switch {
		case !ok:
			p.Error = "no answer for this partition"
		case errors.Is(r.Err, kerr.UnknownMemberID), errors.Is(r.Err, kerr.IllegalGeneration), errors.Is(r.Err, kerr.RebalanceInProgress):
			p.Error = fmt.Sprintf("%v: group %q gained members meanwhile; stop its consumers first", r.Err, group)
		case r.Err != nil:
			p.Error = errorText(group, p.Topic, r.Err)
		}
	}
	return nil
}
