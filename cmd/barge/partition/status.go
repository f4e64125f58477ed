package partition

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/reassign"
)

// StatusResult is `partition status`: the moves in flight.
type StatusResult struct {
	Moves []MoveStatus `json:"moves"`
	// ThrottleCleared says --clear-throttle removed the throttle.
	ThrottleCleared bool `json:"throttle_cleared"`
}

// MoveStatus is one move in flight: the replicas now (the union of the old
// and the new ones), those being added and removed, and the ISR, which the
// added replicas join as they catch up.
type MoveStatus struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
	ISR       []int32 `json:"isr"`
}

func newStatusCommand(c *cli.Common) *cobra.Command {
	var clear bool
	cmd := &cobra.Command{
		Use:   "status [TOPIC...]",
		Short: "List the partition moves in flight, with the replicas being added and removed",
		Example: `  barge partition status
  barge partition status orders -o json | jq '.moves | length'
  barge partition status --clear-throttle   # once nothing moves, remove the replication throttle`,
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, ctx, cancel, err := adminClient(cmd, c, requestTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			inFlight, err := reassign.InFlight(ctx, adm, topics...)
			if err != nil {
				return err
			}
			md, err := adm.Metadata(ctx, topics...)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			res := StatusResult{Moves: []MoveStatus{}}
			for _, r := range inFlight.Sorted() {
				ms := MoveStatus{Topic: r.Topic, Partition: r.Partition, Replicas: r.Replicas, Adding: r.AddingReplicas, Removing: r.RemovingReplicas}
				if p, ok := md.Topics[r.Topic].Partitions[r.Partition]; ok {
					ms.ISR = p.ISR
				}
				res.Moves = append(res.Moves, ms)
			}
			if clear {
				if len(res.Moves) > 0 {
					return fmt.Errorf("%d move(s) still in flight: not removing the throttle", len(res.Moves))
				}
				if err := reassign.SetThrottle(ctx, adm, 0); err != nil {
					return err
				}
				res.ThrottleCleared = true
			}
			return c.Print(res, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING", "ISR", "IN SYNC")
				for _, m := range res.Moves {
					in := 0
					for _, a := range m.Adding {
						if slices.Contains(m.ISR, a) {
							in++
						}
					}
					t.Row(m.Topic, m.Partition, reassign.FormatIDs(m.Replicas), reassign.FormatIDs(m.Adding),
						reassign.FormatIDs(m.Removing), reassign.FormatIDs(m.ISR), fmt.Sprintf("%d/%d added", in, len(m.Adding)))
				}
				return t.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&clear, "clear-throttle", false, "remove the replication throttle (refused while moves are in flight)")
	return cmd
}

func newCancelCommand(c *cli.Common) *cobra.Command {
	var partitions []int32
	cmd := &cobra.Command{
		Use:   "cancel TOPIC [-p PARTITIONS]",
		Short: "Cancel moves in flight: each partition goes back to its original replicas",
		Long: `Cancel the moves in flight of a topic's partitions (all of them, or those
given with -p): each goes back to the replicas it had before the move, and
the replicas it was adding drop their copies. A partition with no move in
flight is an error (NO_REASSIGNMENT_IN_PROGRESS) and changes nothing.`,
		Example: `  barge partition cancel orders
  barge partition cancel orders -p 0,3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			adm, ctx, cancel, err := adminClient(cmd, c, requestTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			var moves []reassign.Move
			if len(partitions) == 0 {
				inFlight, err := reassign.InFlight(ctx, adm, topic)
				if err != nil {
					return err
				}
				for _, r := range inFlight.Sorted() {
					moves = append(moves, reassign.Move{Topic: r.Topic, Partition: r.Partition, Replicas: r.Replicas})
				}
				if len(moves) == 0 {
					return fmt.Errorf("topic %q has no move in flight to cancel", topic)
				}
			}
			for _, p := range partitions {
				moves = append(moves, reassign.Move{Topic: topic, Partition: p})
			}
			failed, err := reassign.Cancel(ctx, adm, moves)
			if err != nil {
				return err
			}
			res := MoveResult{Executed: true, Moves: moves}
			if err := c.Print(res, func(w io.Writer) error {
				t := cli.NewTable(w, "TOPIC", "PARTITION", "REPLICAS", "ERROR")
				for _, m := range moves {
					t.Row(m.Topic, m.Partition, reassign.FormatIDs(m.Replicas), m.Error)
				}
				return t.Flush()
			}); err != nil {
				return err
			}
			return cli.Failed(failed, len(moves), "partitions")
		},
	}
	cmd.Flags().Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions whose moves to cancel (default: every move of the topic)")
	return cmd
}
