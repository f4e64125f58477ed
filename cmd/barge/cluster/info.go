package cluster

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

// Info is the JSON of `cluster info`.
type Info struct {
	ClusterID string `json:"cluster_id"`
	// ControllerID is -1 while the cluster has no controller.
	ControllerID int32        `json:"controller_id"`
	Brokers      []BrokerInfo `json:"brokers"`
}

// BrokerInfo is one live broker as the cluster advertises it.
type BrokerInfo struct {
	ID           int32  `json:"id"`
	Host         string `json:"host"`
	Port         int32  `json:"port"`
	Rack         string `json:"rack"`
	IsController bool   `json:"is_controller"`
}

func newInfoCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, the controller and the live brokers with their addresses and racks",
		Long: `Show the cluster id, the controller and the live brokers, as the Kafka
Metadata API reports them: each broker's advertised address (what clients
connect to) and rack. Fenced (down) brokers are not listed; see
'barge cluster health' for those.`,
		Example: `  barge cluster info
  barge cluster info --brokers kafka1:9092,kafka2:9092 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			return runInfo(ctx, c)
		},
	}
}

func runInfo(ctx context.Context, c *cli.Common) error {
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		return err
	}
	adm, err := connect.AdminClient(ctx, c.Logger, brokers)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	info := Info{ClusterID: md.Cluster, ControllerID: md.Controller, Brokers: []BrokerInfo{}}
	for _, b := range md.Brokers {
		bi := BrokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, IsController: b.NodeID == md.Controller}
		if b.Rack != nil {
			bi.Rack = *b.Rack
		}
		info.Brokers = append(info.Brokers, bi)
	}
	return c.Print(info, func(w io.Writer) error {
		t := cli.NewTable(w)
		t.Row("CLUSTER", info.ClusterID)
		t.Row("CONTROLLER", info.ControllerID)
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		t = cli.NewTable(w, "ID", "HOST", "PORT", "RACK")
		for _, b := range info.Brokers {
			id := fmt.Sprint(b.ID)
			if b.IsController {
				id += "*" // as rpk marks the controller
			}
			t.Row(id, b.Host, b.Port, b.Rack)
		}
		return t.Flush()
	})
}
