package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/internal/connect"
)

type healthFlags struct {
	watch           bool
	exitWhenHealthy bool
	timeout         time.Duration
	interval        time.Duration
}

func newHealthCommand(c *cli.Common) *cobra.Command {
	var f healthFlags
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Report whether the cluster is healthy; exit 4 when it is not",
		Long: `Report whether the cluster is healthy: every registered broker is up, a
controller exists, every partition has a leader and no partition is
under-replicated. The verdict comes from GET /v1/cluster/health of the
first --admin address that answers.

Exit codes: 0 healthy, 4 unhealthy, 3 no admin address answered.

--watch prints the verdict every --interval until interrupted (exit code
of the last verdict). --exit-when-healthy waits until the cluster is
healthy and exits 0, or exits 4 (or 3) at --timeout; while it waits, an
unreachable cluster is not an error, so it can gate a rolling restart.`,
		Example: `  # One verdict, as a script would use it:
  barge cluster health --admin kafka1:9644,kafka2:9644 && echo healthy

  # Gate a chaos test step or a rolling restart:
  barge cluster health --exit-when-healthy --timeout 2m

  # Follow it, one JSON object per line:
  barge cluster health --watch -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.interval <= 0 {
				return cli.Usagef("--interval must be positive")
			}
			if f.timeout < 0 {
				return cli.Usagef("--timeout must not be negative")
			}
			ctx, cancel := c.Context(cmd.Context())
			defer cancel()
			return runHealth(ctx, c, f)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&f.watch, "watch", "w", false, "print the verdict every --interval until interrupted")
	fs.BoolVarP(&f.exitWhenHealthy, "exit-when-healthy", "e", false, "wait until the cluster is healthy, then exit 0")
	fs.DurationVar(&f.timeout, "timeout", 0, "with --watch or --exit-when-healthy: give up after this long (0: never)")
	fs.DurationVar(&f.interval, "interval", time.Second, "time between checks with --watch or --exit-when-healthy")
	return cmd
}

func runHealth(ctx context.Context, c *cli.Common, f healthFlags) error {
	addrs, err := c.Cluster.Admin()
	if err != nil {
		return err
	}
	api := connect.NewAdminAPI(addrs)
	check := func(ctx context.Context) (broker.ClusterHealth, error) {
		var h broker.ClusterHealth
		_, err := api.GetJSON(ctx, "/v1/cluster/health", &h)
		if err == nil && !h.IsHealthy {
			err = &cli.UnhealthyError{Reasons: h.Reasons}
		}
		return h, err
	}
	if !f.watch && !f.exitWhenHealthy {
		h, err := check(ctx)
		var unhealthy *cli.UnhealthyError
		if err != nil && !errors.As(err, &unhealthy) {
			return err
		}
		if perr := printHealth(c, h); perr != nil {
			return perr
		}
		return err
	}

	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	var lastErr error
	var lastReasons string
	for {
		h, err := check(ctx)
		if ctx.Err() != nil {
			break // the answer raced the deadline or an interrupt
		}
		lastErr = err
		if f.watch {
			if err := printHealthLine(c, h, err); err != nil {
				return err
			}
		} else if reasons := errString(err); err != nil && reasons != lastReasons {
			fmt.Fprintf(c.Stderr, "waiting for a healthy cluster: %s\n", reasons)
			lastReasons = reasons
		}
		if err == nil && f.exitWhenHealthy {
			if !f.watch {
				return printHealth(c, h)
			}
			return nil
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	if lastErr == nil && f.exitWhenHealthy {
		lastErr = fmt.Errorf("no verdict within --timeout %v", f.timeout)
	}
	if f.exitWhenHealthy && lastErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("not healthy within --timeout %v: %w", f.timeout, lastErr)
	}
	return lastErr
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// printHealth prints one full verdict.
func printHealth(c *cli.Common, h broker.ClusterHealth) error {
	return c.Print(h, func(w io.Writer) error {
		t := cli.NewTable(w)
		t.Row("HEALTHY", h.IsHealthy)
		t.Row("CONTROLLER", h.ControllerID)
		t.Row("BROKERS", cli.Int32s(h.Brokers))
		t.Row("BROKERS DOWN", cli.Int32s(h.BrokersDown))
		t.Row("LEADERLESS PARTITIONS", partitionList(h.LeaderlessCount, h.LeaderlessPartitions))
		t.Row("UNDER-REPLICATED PARTITIONS", partitionList(h.UnderReplicatedCount, h.UnderReplicatedPartitions))
		t.Row("ANSWERED BY", h.BrokerID)
		for i, r := range h.Reasons {
			label := ""
			if i == 0 {
				label = "REASONS"
			}
			t.Row(label, r)
		}
		return t.Flush()
	})
}

// printHealthLine prints one --watch line: a verdict, or why none came.
func printHealthLine(c *cli.Common, h broker.ClusterHealth, err error) error {
	var unhealthy *cli.UnhealthyError
	if err != nil && !errors.As(err, &unhealthy) {
		// No verdict (cluster unreachable): say so on stderr and go on.
		fmt.Fprintf(c.Stderr, "%s  %v\n", time.Now().Format(time.TimeOnly), err)
		return nil
	}
	return cli.PrintLine(c.Stdout, c.Out.Format, h, func(w io.Writer) error {
		verdict := "healthy"
		if !h.IsHealthy {
			verdict = "UNHEALTHY: " + strings.Join(h.Reasons, "; ")
		}
		_, err := fmt.Fprintf(w, "%s  controller=%d brokers_down=[%s] leaderless=%d under_replicated=%d  %s\n",
			time.Now().Format(time.TimeOnly), h.ControllerID, cli.Int32s(h.BrokersDown),
			h.LeaderlessCount, h.UnderReplicatedCount, verdict)
		return err
	})
}

// partitionList shows a count and the (capped) list: "2: orders/0 orders/3".
func partitionList(n int, ps []broker.PartitionID) string {
	if n == 0 {
		return "0"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s/%d", p.Topic, p.Partition)
	}
	s := fmt.Sprintf("%d: %s", n, strings.Join(parts, " "))
	if n > len(ps) {
		s += " ..."
	}
	return s
}
