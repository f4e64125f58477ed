package run

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/netns"
)

// brokerArgs are the `barge serve` flags of every broker: second-scale
// failure detection and ISR shrinking, since the faults last seconds and
// the run should see failovers, not waits.
var brokerArgs = []string{"--fast-failure-detection", "--replica-lag-time-max", "3s"}

// tmpfsSize is each broker's data file system when the disk-full fault
// is on: large enough for a long run's logs, small enough to fill.
const tmpfsSize = "1g"

func checkPrereqs(name string) error {
	switch name {
	case "netns", "":
		return netns.CheckPrereqs()
	}
	return fmt.Errorf("run: unknown backend %q", name)
}

func setupBackend(ctx context.Context, o Options, barge string, tmpfs bool) (backend.Cluster, error) {
	size := ""
	if tmpfs {
		size = tmpfsSize
	}
	switch o.Backend {
	case "netns", "":
		c, err := netns.Setup(ctx, netns.Config{Barge: barge, Nodes: o.Nodes, Dir: o.Out, Log: o.Log, Args: brokerArgs, Tmpfs: size})
		if err != nil {
			return nil, err
		}
		return c.Backend(), nil
	}
	return nil, fmt.Errorf("run: unknown backend %q", o.Backend)
}

// Cleanup removes what any earlier run of any backend left behind.
func Cleanup(log *slog.Logger) ([]string, error) {
	err := netns.Cleanup(log)
	if e := backend.UnmountTmpfs(context.Background(), "/"); e != nil && err == nil {
		err = e
	}
	left, lerr := netns.Leftovers()
	left = append(left, backend.TmpfsMounts()...)
	if err == nil {
		err = lerr
	}
	return left, err
}
