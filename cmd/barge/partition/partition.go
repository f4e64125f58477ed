// Package partition is `barge partition`: leadership and placement of
// partitions, over the Kafka protocol (--brokers). Each verb lives in its
// own file and adds itself to the noun with addVerb.
package partition

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

// NewCommand builds `barge partition` and its verbs.
func NewCommand(deps *cli.Deps) *cobra.Command {
	cmd, c := cli.NewNoun(deps, "partition", "Elect leaders and move partitions",
		`Operate on partitions over the Kafka protocol (--brokers): leader
elections, and moves of replicas between brokers.`)
	for _, v := range verbs {
		cmd.AddCommand(v(c))
	}
	return cmd
}
