package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/docker"
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
	case "docker":
		return docker.CheckPrereqs()
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
	case "docker":
		c, err := docker.Setup(ctx, docker.Config{Barge: barge, Image: o.Image, Nodes: o.Nodes, Dir: o.Out, Log: o.Log, Args: brokerArgs, Tmpfs: size})
		if err != nil {
			return nil, err
		}
		return c.Backend(), nil
	}
	return nil, fmt.Errorf("run: unknown backend %q", o.Backend)
}

// Cleanup removes what any earlier run of any backend left behind: the
// netns backend's namespaces, links and rules, the docker backend's
// containers, networks and images (when docker is there), and tmpfs
// mounts. It returns what is still there after.
func Cleanup(log *slog.Logger) ([]string, error) {
	ctx := context.Background()
	errs := []error{netns.Cleanup(log)}
	withDocker := docker.CheckPrereqs() == nil
	if withDocker {
		errs = append(errs, docker.Cleanup(ctx))
	}
	errs = append(errs, backend.UnmountTmpfs(ctx, "/"))
	left, err := netns.Leftovers()
	errs = append(errs, err)
	if withDocker {
		d, err := docker.Leftovers(ctx)
		left = append(left, d...)
		errs = append(errs, err)
	}
	left = append(left, backend.TmpfsMounts()...)
	return left, errors.Join(errs...)
}
