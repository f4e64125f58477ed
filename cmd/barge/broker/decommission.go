package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	brokerpkg "github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

func init() { verbs = append(verbs, newDecommissionCommand, newRecommissionCommand) }

const decommissionLong = `Take a broker out of the cluster for good, as rpk cluster brokers
decommission does. The controller moves every replica of the broker to the
other brokers (a few partitions at a time, keeping each partition on as many
racks as before, to the brokers holding the fewest replicas), each move
completing once the new replica is in sync; then it removes the broker from
the registry and from the metadata Raft configuration, and gives it no
replicas again.

It is refused (exit 1, nothing changes) when fewer live brokers than some
topic's replication factor would be left. Stop the broker only once the
command says it is safe to stop: with --wait it waits for that. Running it
again shows the progress. 'barge broker recommission ID' cancels (moves in
flight finish; the broker keeps what it still hosts).`

func newDecommissionCommand(c *cli.Common) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "decommission ID [--wait]",
		Short: "Move every replica off a broker, then remove it from the cluster",
		Long:  decommissionLong,
		Example: `  barge broker decommission 4 --wait --timeout 30m
  barge broker decommission 4 -o json | jq .replicas   # progress`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			api, err := adminFor(ctx, c, id)
			if err != nil {
				return err
			}
			var st brokerpkg.DecommissionStatus
			rctx, rcancel := context.WithTimeout(ctx, requestTimeout)
			err = api.Send(rctx, "POST", decommissionPath(id), &st)
			rcancel()
			if err != nil {
				return refused("decommission", id, err)
			}
			if wait && !st.SafeToStop {
				wctx, wcancel := context.WithTimeout(ctx, timeout)
				defer wcancel()
				last := ""
				if st, err = waitDecommissioned(wctx, api, id, func(s brokerpkg.DecommissionStatus) {
					if line := s.String(); line != last {
						fmt.Fprintln(c.Stderr, line)
						last = line
					}
				}); err != nil {
					return err
				}
			}
			if err := printStatus(c, st); err != nil {
				return err
			}
			if st.SafeToStop {
				fmt.Fprintf(c.Stderr, "Broker %d is decommissioned: it hosts no replica and is out of the cluster. It is safe to stop it now.\n", id)
			} else {
				fmt.Fprintf(c.Stderr, "Broker %d is being decommissioned: do not stop it yet. Run 'barge broker decommission %d --wait' to wait until it is safe to stop.\n", id, id)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the broker is safe to stop")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "with --wait: give up waiting after this long (the decommission goes on)")
	return cmd
}

func newRecommissionCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "recommission ID",
		Short: "Cancel a decommission: the broker stays (or, once removed, may join again)",
		Long: `Cancel the decommissioning of a broker: no more of its replicas are moved
(moves in flight finish) and it may get new replicas again. A broker already
removed may register again: restart it, and the controller adds it back.`,
		Example: `  barge broker recommission 4`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			ctx, rcancel := context.WithTimeout(ctx, requestTimeout)
			defer rcancel()
			api, err := adminFor(ctx, c, id)
			if err != nil {
				return err
			}
			var st brokerpkg.DecommissionStatus
			if err := api.Send(ctx, "DELETE", decommissionPath(id), &st); err != nil {
				return refused("recommission", id, err)
			}
			return printStatus(c, st)
		},
	}
}

func parseID(s string) (int32, error) {
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id < 0 {
		return 0, cli.Usagef("broker id %q: want a non-negative integer", s)
	}
	return int32(id), nil
}

func decommissionPath(id int32) string {
	return "/v1/brokers/" + strconv.Itoa(int(id)) + "/decommission"
}

// adminFor is the admin API with broker id's own address tried last: once
// out of the Raft configuration it no longer hears of metadata changes.
func adminFor(ctx context.Context, c *cli.Common, id int32) (*connect.AdminAPI, error) {
	addrs, err := c.Cluster.Admin()
	if err != nil {
		return nil, err
	}
	api := connect.NewAdminAPI(addrs)
	var view struct {
		Brokers []struct {
			ID       int32  `json:"id"`
			HTTPAddr string `json:"http_addr"`
		} `json:"brokers"`
	}
	if _, err := api.GetJSON(ctx, "/v1/cluster", &view); err != nil {
		return nil, err
	}
	for _, b := range view.Brokers {
		if b.ID == id {
			return api.Without(b.HTTPAddr), nil
		}
	}
	return api, nil
}

func waitDecommissioned(ctx context.Context, api *connect.AdminAPI, id int32, progress func(brokerpkg.DecommissionStatus)) (brokerpkg.DecommissionStatus, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		var st brokerpkg.DecommissionStatus
		if _, err := api.GetJSON(ctx, decommissionPath(id), &st); err != nil && ctx.Err() == nil {
			return st, err
		}
		progress(st)
		if st.SafeToStop {
			return st, nil
		}
		if st.State == "active" {
			return st, fmt.Errorf("broker %d was recommissioned while waiting", id)
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("broker %d not yet safe to stop (%s): %w", id, st.String(), ctx.Err())
		case <-t.C:
		}
	}
}

func refused(what string, id int32, err error) error {
	var re *connect.RefusedError
	if errors.As(err, &re) {
		return fmt.Errorf("%s broker %d refused, nothing changed: %s", what, id, re.Reason)
	}
	return err
}

func printStatus(c *cli.Common, st brokerpkg.DecommissionStatus) error {
	return c.Print(st, func(w io.Writer) error {
		t := cli.NewTable(w, "BROKER", "STATE", "REPLICAS", "MOVING", "IN RAFT CONFIG", "SAFE TO STOP")
		t.Row(st.ID, st.State, st.Replicas, st.Moving, st.InRaftConfig, st.SafeToStop)
		return t.Flush()
	})
}
