package cluster

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
	"github.com/barge-broker/barge/cmd/barge/internal/reassign"
	"github.com/barge-broker/barge/cmd/barge/partition"
)

const balanceLong = `Plan moves that even out the replicas and the preferred leaders per
broker, for example onto a broker just added: replicas move one at a time
from the broker holding the most to the one holding the fewest, never
lowering the number of racks a partition spans, and leaders are evened by
reordering replica lists (which copies nothing; leadership follows at the
next preferred election). Partitions already moving are left alone.

By default this is a dry run: it prints the plan and changes nothing. With
--execute the moves start as partition reassignments under a replication
throttle (--throttle, per broker, 0 for none), and the command waits for
them to finish (--wait=false returns at once) and then removes the
throttle. The new replicas copy the data by follower fetches; the old ones
are dropped only once the new ones are in sync.`

func newBalanceCommand(c *cli.Common) *cobra.Command {
	var (
		execute  bool
		wait     bool
		throttle string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "balance [--execute [--throttle RATE] [--wait=false]]",
		Short: "Even out replicas and leaders per broker and rack (a dry run unless --execute)",
		Long:  balanceLong,
		Example: `  barge cluster balance                            # the plan
  barge cluster balance --execute --throttle 50MiB # run it, at most 50 MiB/s of copying per broker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rate, err := reassign.ParseRate(throttle)
			if err != nil {
				return cli.Usagef("--throttle: %v", err)
			}
			adm, ctx, cancel, err := connect.CommandAdmin(cmd, c, requestTimeout+timeout)
			if err != nil {
				return err
			}
			defer cancel()
			defer adm.Close()
			md, err := adm.Metadata(ctx)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			inFlight, err := reassign.InFlight(ctx, adm)
			if err != nil {
				return err
			}
			var brokers []reassign.Broker
			for _, b := range md.Brokers {
				rb := reassign.Broker{ID: b.NodeID}
				if b.Rack != nil {
					rb.Rack = *b.Rack
				}
				brokers = append(brokers, rb)
			}
			var parts []reassign.Partition
			for _, t := range md.Topics.Sorted() {
				for _, p := range t.Partitions.Sorted() {
					_, moving := inFlight[t.Topic][p.Partition]
					parts = append(parts, reassign.Partition{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas, Moving: moving})
				}
			}
			res := partition.MoveResult{Executed: execute, Throttle: rate, Moves: reassign.Balance(brokers, parts)}
			if len(res.Moves) == 0 {
				res.Moves = []reassign.Move{}
			}
			failed, err := partition.Run(ctx, c, adm, &res, wait, timeout)
			if err != nil {
				return err
			}
			if err := partition.PrintMoves(c, res); err != nil {
				return err
			}
			if len(res.Moves) == 0 {
				fmt.Fprintf(c.Stderr, "Balanced: replicas and leaders are within one of each other on every broker.\n")
			}
			return cli.Failed(failed, len(res.Moves), "partitions")
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&execute, "execute", false, "start the moves (without it, only show them)")
	fs.StringVar(&throttle, "throttle", "32MiB", "with --execute: cap the copying at this rate per broker (0: no throttle)")
	fs.BoolVar(&wait, "wait", true, "with --execute: wait for the moves to finish, then remove the throttle")
	fs.DurationVar(&timeout, "timeout", 30*time.Minute, "with --wait: give up waiting after this long (the moves go on)")
	return cmd
}
