package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

func newQuorumCommand(c *cli.Common) *cobra.Command {
	return &cobra.Command{
		Use:   "quorum",
		Short: "Show the metadata Raft quorum: leader, term, commit index, voters and non-voters with their lag",
		Long: `Show the metadata Raft group, as kafka-metadata-quorum describe does: the
leader (the controller), the term, the commit index, and each voter and
non-voter with its last log index, applied index and lag behind the
leader in log entries. A member that does not answer shows state
"unknown" and lag -1.

It reads GET /v1/cluster/quorum from the first --admin address that answers.`,
		Example: `  barge cluster quorum
  barge cluster quorum --admin kafka1:9644 -o json | jq '.voters[] | select(.lag > 100)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			return runQuorum(ctx, c)
		},
	}
}

func runQuorum(ctx context.Context, c *cli.Common) error {
	addrs, err := c.Cluster.Admin()
	if err != nil {
		return err
	}
	var q broker.QuorumStatus
	if _, err := connect.NewAdminAPI(addrs).GetJSON(ctx, "/v1/cluster/quorum", &q); err != nil {
		return err
	}
	return c.Print(q, func(w io.Writer) error {
		t := cli.NewTable(w)
		t.Row("LEADER", q.LeaderID)
		t.Row("TERM", q.Term)
		t.Row("COMMIT INDEX", q.CommitIndex)
		t.Row("ANSWERED BY", q.BrokerID)
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
		t = cli.NewTable(w, "ID", "ROLE", "STATE", "RAFT ADDRESS", "LAST LOG INDEX", "APPLIED INDEX", "LAG", "LAST CONTACT", "ERROR")
		row := func(role string, m broker.QuorumMember) {
			lag, contact := any(m.Lag), any(time.Duration(m.LastContactMs)*time.Millisecond)
			if m.Lag < 0 {
				lag = "?"
			}
			if m.LastContactMs < 0 {
				contact = "?"
			}
			t.Row(m.ID, role, m.State, m.RaftAddr, m.LastLogIndex, m.AppliedIndex, lag, contact, m.Error)
		}
		for _, m := range q.Voters {
			row("voter", m)
		}
		for _, m := range q.NonVoters {
			row("non-voter", m)
		}
		return t.Flush()
	})
}
