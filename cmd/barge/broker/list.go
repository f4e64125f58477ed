package broker

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

func init() { addVerb(newListCommand) }

func newListCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registered brokers: address, rack, alive or fenced, leaders, replicas, log size",
		Long: `List every registered broker, also the fenced (down) ones that
'cluster info' leaves out: its advertised address and rack, whether it is
alive (unfenced) or fenced, whether it is the controller (marked *), how
many partitions it leads and holds a replica of, how many of its replicas
are out of their ISR, and the bytes of its partition logs (as
DescribeLogDirs reports them: the segment files; "-" for a broker that
cannot be asked).`,
		Example: `  barge broker list
  barge broker list -o json | jq '.brokers[] | select(.fenced)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, adm, ctx, cancel, err := connectAdmin(cmd, c)
			if err != nil {
				return err
			}
			defer cancel()
			brokers, err := gather(ctx, cl, adm, false)
			if err != nil {
				return err
			}
			out := struct {
				Brokers []Info `json:"brokers"`
			}{brokers}
			return c.Print(out, func(w io.Writer) error {
				t := cli.NewTable(w, "ID", "ADDRESS", "RACK", "STATE", "LEADERS", "REPLICAS", "OUT-OF-SYNC", "LOG-BYTES")
				for _, b := range brokers {
					t.Row(idMark(b), fmt.Sprintf("%s:%d", b.Host, b.Port), b.Rack, state(b), b.Leaders, b.Replicas, b.OutOfSync, bytesOrDash(b.LogDirBytes))
				}
				return t.Flush()
			})
		},
	}
}

// idMark is the broker id, with * for the controller as rpk marks it.
func idMark(b Info) string {
	if b.IsController {
		return fmt.Sprintf("%d*", b.ID)
	}
	return fmt.Sprint(b.ID)
}

func state(b Info) string {
	if b.Fenced {
		return "fenced"
	}
	return "alive"
}

func bytesOrDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
