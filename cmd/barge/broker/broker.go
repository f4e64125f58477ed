// Package broker is `barge broker`: the cluster's brokers one by one: list
// and describe them over the Kafka protocol (--brokers), take one out of
// the cluster (decommission: its replicas move to the others, then it
// leaves the Raft configuration and the registry) or cancel that
// (recommission). Each verb lives in its own file and adds itself to the
// noun with addVerb.
package broker

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// requestTimeout bounds a command once the cluster answered (--wait has
// its own --timeout).
const requestTimeout = 30 * time.Second

// verbs build the noun's subcommands; each verb's file adds its own in init.
var verbs []func(c *cli.Common) *cobra.Command

func addVerb(v func(c *cli.Common) *cobra.Command) { verbs = append(verbs, v) }

// NewCommand builds `barge broker` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "broker", "List, describe, decommission and recommission brokers",
		`Inspect and operate the cluster's brokers. 'list' and 'describe' use the
Kafka protocol (--brokers); 'decommission' and 'recommission' use the
brokers' HTTP admin API (--admin), since Kafka has no API for them.`)
	for _, v := range verbs {
		cmd.AddCommand(v(c))
	}
	return cmd
}
