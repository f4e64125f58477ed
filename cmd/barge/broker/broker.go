// Package broker is `barge broker`: the cluster's brokers one by one, over
// the Kafka protocol (--brokers). Each verb lives in its own file and adds
// itself to the noun with addVerb.
package broker

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// requestTimeout bounds a command once the cluster answered.
const requestTimeout = 30 * time.Second

// verbs build the noun's subcommands; each verb's file adds its own in init.
var verbs []func(c *cli.Common) *cobra.Command

func addVerb(v func(c *cli.Common) *cobra.Command) { verbs = append(verbs, v) }

// NewCommand builds `barge broker` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "broker", "List, describe and drain brokers",
		`Inspect and operate the cluster's brokers over the Kafka protocol (--brokers).`)
	for _, v := range verbs {
		cmd.AddCommand(v(c))
	}
	return cmd
}
