package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/reassign"
)

func init() { verbs = append(verbs, newMoveCommand, newStatusCommand, newCancelCommand) }

// MoveResult is the outcome of `partition move` and `partition cancel`.
type MoveResult struct {
	// Executed is false for a dry run, which changes nothing.
	Executed bool            `json:"executed"`
	Throttle int64           `json:"throttle_bytes_per_sec"`
	Moves    []reassign.Move `json:"moves"`
	// Completed says --wait saw every move started finish.
	Completed bool `json:"completed"`
}

const moveLong = `Move partitions of a topic to a new list of replicas (broker ids; the
first is the preferred leader), as kafka-reassign-partitions does. A move
can add replicas, remove them, replace them all ([1,2,3] -> [4,5,6]) or
change the replication factor.

By default this is a dry run: it prints each partition's replicas now and
the target, and changes nothing. Add --execute to start the moves. The new
replicas copy the data from the leader by follower fetches; the old ones
are dropped (and their logs deleted) only once every target replica is in
sync, so a move loses nothing acknowledged. --throttle caps the copying at
a byte rate per broker (leader.replication.throttled.rate and
follower.replication.throttled.rate), so the move does not starve
producers; with --wait the command waits for the moves to finish and then
removes the throttle.`

func newMoveCommand(c *cli.Common) *cobra.Command {
	var (
		partitions []int32
		replicas   []int32
		execute    bool
		wait       bool
		throttle   string
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "move TOPIC --replicas IDS [-p PARTITIONS] [--execute [--throttle RATE] [--wait]]",
		Short: "Move partitions to other brokers (a dry run unless --execute)",
		Long:  moveLong,
		Example: `  # Preview, then move every partition of orders to brokers 4, 5 and 6:
  barge partition move orders --replicas 4,5,6
  barge partition move orders --replicas 4,5,6 --execute --throttle 20MiB --wait

  # Move only partition 2, keeping 1 and 2 and adding 4:
  barge partition move orders -p 2 --replicas 1,2,4 --execute`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			if len(replicas) == 0 {
				return cli.Usagef("--replicas is required: the broker ids of the new replica list, e.g. --replicas 4,5,6")
			}
			if slices.ContainsFunc(partitions, func(p int32) bool { return p < 0 }) {
				return cli.Usagef("--partitions: partitions are numbered from 0")
			}
			rate, err := reassign.ParseRate(throttle)
			if err != nil {
				return cli.Usagef("--throttle: %v", err)
			}
			adm, ctx, cancel, err := adminClient(cmd, c, requestTimeout+timeout)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			moves, err := planMove(ctx, adm, topic, partitions, replicas)
			if err != nil {
				return err
			}
			res := MoveResult{Executed: execute, Throttle: rate, Moves: moves}
			failed, err := Run(ctx, c, adm, &res, wait, timeout)
			if err != nil {
				return err
			}
			if err := PrintMoves(c, res); err != nil {
				return err
			}
			return cli.Failed(failed, len(moves), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to move (default: all of the topic)")
	fs.Int32SliceVar(&replicas, "replicas", nil, "the new replica list, broker ids, first the preferred leader (required)")
	fs.BoolVar(&execute, "execute", false, "start the moves (without it, only show them)")
	fs.StringVar(&throttle, "throttle", "0", "with --execute: cap the copying at this rate per broker, e.g. 20MiB (0: no throttle)")
	fs.BoolVar(&wait, "wait", false, "with --execute: wait for the moves to finish, then remove the throttle")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: give up waiting after this long (the moves go on)")
	return cmd
}

// Run executes res.Moves when res.Executed (setting the throttle first,
// and with wait removing it once they finished) and returns how many were
// refused. Shared with `cluster balance`.
func Run(ctx context.Context, c *cli.Common, adm *kadm.Client, res *MoveResult, wait bool, timeout time.Duration) (int, error) {
	failed := 0
	for _, m := range res.Moves {
		if m.Error != "" {
			failed++
		}
	}
	if !res.Executed || failed == len(res.Moves) {
		return failed, nil
	}
	if res.Throttle > 0 {
		if err := reassign.SetThrottle(ctx, adm, res.Throttle); err != nil {
			return failed, err
		}
	}
	failed, err := reassign.Execute(ctx, adm, res.Moves)
	if err != nil {
		return failed, err
	}
	if !wait {
		if res.Throttle > 0 {
			fmt.Fprintf(c.Stderr, "The throttle stays until removed: run again with --wait, or 'barge partition status --clear-throttle' once done.\n")
		}
		return failed, nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := -1
	err = reassign.Wait(wctx, adm, res.Moves, 500*time.Millisecond, func(left int) {
		if left != last {
			fmt.Fprintf(c.Stderr, "%d move(s) in flight\n", left)
			last = left
		}
	})
	if err != nil {
		return failed, err
	}
	res.Completed = true
	if res.Throttle > 0 {
		if err := reassign.SetThrottle(ctx, adm, 0); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

func planMove(ctx context.Context, adm *kadm.Client, topic string, partitions, replicas []int32) ([]reassign.Move, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	t, ok := md.Topics[topic]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %q does not exist (see 'barge topic list')", topic)
	}
	if t.Err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, t.Err)
	}
	var out []reassign.Move
	for _, p := range t.Partitions.Sorted() {
		if len(partitions) > 0 && !slices.Contains(partitions, p.Partition) {
			continue
		}
		out = append(out, reassign.Move{Topic: topic, Partition: p.Partition, Replicas: p.Replicas, Target: replicas})
	}
	for _, p := range partitions {
		if _, ok := t.Partitions[p]; !ok {
			out = append(out, reassign.Move{Topic: topic, Partition: p, Target: replicas,
				Error: fmt.Sprintf("topic %q has no partition %d (it has %d)", topic, p, len(t.Partitions))})
		}
	}
	return out, nil
}

// PrintMoves prints a plan or its outcome (shared with `cluster balance`).
func PrintMoves(c *cli.Common, res MoveResult) error {
	if err := c.Print(res, func(w io.Writer) error {
		t := cli.NewTable(w, "TOPIC", "PARTITION", "REPLICAS", "TARGET", "ERROR")
		for _, m := range res.Moves {
			t.Row(m.Topic, m.Partition, reassign.FormatIDs(m.Replicas), reassign.FormatIDs(m.Target), m.Error)
		}
		return t.Flush()
	}); err != nil {
		return err
	}
	if !res.Executed {
		fmt.Fprintf(c.Stderr, "Dry run: nothing changed. Run again with --execute to start these moves.\n")
	}
	return nil
}
