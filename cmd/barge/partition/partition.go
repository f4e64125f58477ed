// Package partition is `barge partition`: leadership and placement of
// partitions over the Kafka protocol (--brokers): leader elections
// (elect, ElectLeaders), moves to other brokers (move), the moves in flight
// (status) and their cancel (cancel), over AlterPartitionReassignments and
// ListPartitionReassignments as kafka-reassign-partitions and rpk do. Each
// verb lives in its own file and adds itself to the noun with addVerb.
package partition

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// requestTimeout bounds a command once the cluster answered (--wait has
// its own --timeout).
const requestTimeout = 30 * time.Second

// verbs build the noun's subcommands; each verb's file adds its own in init.
var verbs []func(c *cli.Common) *cobra.Command

func addVerb(v func(c *cli.Common) *cobra.Command) { verbs = append(verbs, v) }

// NewCommand builds `barge partition` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "partition", "Elect leaders, move partitions between brokers, and watch or cancel the moves",
		`Manage partitions over the Kafka protocol (--brokers).

'elect' hands leadership back to preferred replicas (or, --unclean, to any
live replica of an offline partition). 'move' plans a move of partitions to
a new replica list and, with --execute, starts it: the new replicas copy the
log from the leader by ordinary follower fetches, and the controller
completes the move once they are all in sync (the leader moves if it is
removed, the old replicas drop their copies). 'status' lists the moves in
flight, 'cancel' reverts them.`)
	for _, v := range verbs {
		cmd.AddCommand(v(c))
	}
	return cmd
}

func adminClient(cmd *cobra.Command, c *cli.Common, timeout time.Duration) (*kadm.Client, context.Context, context.CancelFunc, error) {
	return connect.CommandAdmin(cmd, c, timeout)
}
