package broker

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func init() { addVerb(newDescribeCommand) }

func newDescribeCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "describe ID",
		Short: "Describe one broker: address, state, log directories and the replicas it hosts",
		Long: `Describe one registered broker: what 'broker list' shows, its log
directories (path, bytes of partition logs, the volume's total and usable
bytes) and every partition replica it holds, with whether it leads it, is
in its ISR, and the replica's size and offset lag from DescribeLogDirs
(offset lag is Kafka's: 0 for a current replica).`,
		Example: `  barge broker describe 2
  barge broker describe 2 -o json | jq '.partitions[] | select(.in_isr | not)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil || id < 0 {
				return cli.Usagef("broker id %q: want a non-negative integer", args[0])
			}
			cl, adm, ctx, cancel, err := connectAdmin(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			brokers, err := gather(ctx, cl, adm, true)
			if err != nil {
				return err
			}
			var b *Info
			for i := range brokers {
				if brokers[i].ID == int32(id) {
					b = &brokers[i]
				}
			}
			if b == nil {
				return fmt.Errorf("broker %d is not registered in the cluster (see 'barge broker list')", id)
			}
			if b.Partitions == nil {
				b.Partitions = []Hosted{}
			}
			return c.Print(b, func(w io.Writer) error { return describeTable(w, *b) })
		},
	}
}

func describeTable(w io.Writer, b Info) error {
	cli.Section(w, "BROKER")
	t := cli.NewTable(w)
	t.Row("ID", b.ID)
	t.Row("ADDRESS", fmt.Sprintf("%s:%d", b.Host, b.Port))
	t.Row("RACK", b.Rack)
	t.Row("STATE", state(b))
	t.Row("CONTROLLER", b.IsController)
	t.Row("LEADERS", b.Leaders)
	t.Row("REPLICAS", b.Replicas)
	t.Row("OUT-OF-SYNC", b.OutOfSync)
	t.Row("LOG-BYTES", bytesOrDash(b.LogDirBytes))
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	cli.Section(w, "LOG DIRS")
	t = cli.NewTable(w, "PATH", "BYTES", "TOTAL-BYTES", "USABLE-BYTES", "ERROR")
	for _, d := range b.LogDirs {
		t.Row(d.Path, d.Bytes, bytesOrDash(d.TotalBytes), bytesOrDash(d.UsableBytes), d.Error)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	cli.Section(w, "PARTITIONS")
	t = cli.NewTable(w, "TOPIC", "PARTITION", "LEADER", "IN-ISR", "BYTES", "OFFSET-LAG")
	for _, p := range b.Partitions {
		t.Row(p.Topic, p.Partition, p.Leader, p.InISR, bytesOrDash(p.Bytes), bytesOrDash(p.OffsetLag))
	}
	return t.Flush()
}
