// Package broker is `barge broker`: take a broker out of the cluster
// (decommission: its replicas move to the others, then it leaves the Raft
// configuration and the registry) or cancel that (recommission). Other
// verbs live in files of their own.
package broker

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// requestTimeout bounds a command once the cluster answered (--wait has
// its own --timeout).
const requestTimeout = 30 * time.Second

// NewCommand builds `barge broker` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "broker", "Decommission and recommission brokers",
		`Manage the brokers of the cluster. 'decommission' and 'recommission' use the
brokers' HTTP admin API (--admin), since Kafka has no API for them.`)
	for _, add := range verbs {
		cmd.AddCommand(add(c))
	}
	return cmd
}

// verbs are the verb constructors; each verb's file adds its own in init.
var verbs []func(*cli.Common) *cobra.Command
