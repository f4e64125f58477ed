// Package cluster is `barge cluster`: the cluster's brokers (info), its
// health verdict (health) and its metadata Raft quorum (quorum). info
// speaks Kafka; health and quorum read the brokers' HTTP admin API, which
// Kafka has no equivalent for.
package cluster

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// requestTimeout bounds a one-shot command once the cluster answered.
const requestTimeout = 30 * time.Second

// NewCommand builds `barge cluster` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "cluster", "Inspect the cluster: brokers, health, Raft quorum",
		`Inspect the cluster as a whole.

'info' lists the brokers over the Kafka protocol (--brokers). 'health' and
'quorum' ask the brokers' HTTP admin API (--admin, their --http addresses);
any one broker answers for the whole cluster.`)
	cmd.AddCommand(newInfoCommand(c), newHealthCommand(c), newQuorumCommand(c), newBalanceCommand(c))
	return cmd
}
