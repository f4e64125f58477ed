// Package partition is `barge partition`: move partitions to other brokers
// (move), see the moves in flight (status) and cancel them (cancel), over
// Kafka's AlterPartitionReassignments and ListPartitionReassignments, as
// kafka-reassign-partitions and rpk cluster partitions do.
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

// NewCommand builds `barge partition` and its verbs. Other verbs (elect)
// are added in files of their own.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "partition", "Move partitions between brokers, and watch or cancel the moves",
		`Manage where partitions live, over the Kafka protocol (--brokers).

'move' plans a move of partitions to a new replica list and, with
--execute, starts it: the new replicas copy the log from the leader by
ordinary follower fetches, and the controller completes the move once they
are all in sync (the leader moves if it is removed, the old replicas drop
their copies). 'status' lists the moves in flight, 'cancel' reverts them.`)
	for _, add := range verbs {
		cmd.AddCommand(add(c))
	}
	return cmd
}

// verbs are the verb constructors; each verb's file adds its own in init,
// so verbs written apart need no edit here.
var verbs []func(*cli.Common) *cobra.Command

func adminClient(cmd *cobra.Command, c *cli.Common, timeout time.Duration) (*kadm.Client, context.Context, context.CancelFunc, error) {
	return connect.CommandAdmin(cmd, c, timeout)
}
