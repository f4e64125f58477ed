// Package backend is what barge-jepsen needs from a place brokers run:
// start, kill, pause and resume each broker, and run network tools
// (iptables, tc) inside its network namespace. netns (local processes in
// network namespaces) and docker (containers on a private network)
// implement it; an SSH backend to real hosts would too.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Cluster is a set of brokers, indexed 0..Size()-1; broker i has broker
// id i+1 and history name "n<i+1>".
type Cluster interface {
	Size() int
	// Seeds are the brokers' Kafka addresses; AdminAddrs their HTTP ones.
	Seeds() []string
	AdminAddrs() []string
	// IP is broker i's address on the cluster network; Iface the name of
	// its interface there, inside its network namespace.
	IP(i int) string
	Iface(i int) string
	// DataDir is broker i's data directory as the harness (on the host)
	// sees it; it exists before Start and may be a mount point.
	DataDir(i int) string
	Start(i int) error
	Running(i int) bool
	Kill(i int) error
	Pause(i int) error
	Resume(i int) error
	WaitReady(ctx context.Context, i int, d time.Duration) error
	// NetExec runs a command (iptables, tc) inside broker i's network
	// namespace, with the host's binaries.
	NetExec(ctx context.Context, i int, args ...string) error
	Teardown() error
}

// Name is broker i's name in histories.
func Name(i int) string { return fmt.Sprintf("n%d", i+1) }

// Names joins the names of brokers.
func Names(is []int) string {
	var out []string
	for _, i := range is {
		out = append(out, Name(i))
	}
	return strings.Join(out, ",")
}

// Drop makes broker from drop every packet it sends to broker to (one
// way; TCP then stalls both ways, UDP gossip only one way).
func Drop(ctx context.Context, c Cluster, from, to int) error {
	return c.NetExec(ctx, from, "iptables", "-w", "-A", "OUTPUT", "-d", c.IP(to), "-j", "DROP")
}

// Cut drops traffic between a and b both ways, with a rule in each.
func Cut(ctx context.Context, c Cluster, a, b int) error {
	return errors.Join(Drop(ctx, c, a, b), Drop(ctx, c, b, a))
}

// HealNetwork removes every rule and traffic shaping from every broker.
func HealNetwork(ctx context.Context, c Cluster) error {
	var errs []error
	for i := range c.Size() {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			if err := c.NetExec(ctx, i, "iptables", "-w", "-F", chain); err != nil {
				errs = append(errs, err)
			}
		}
		// No qdisc is no error: most brokers have none.
		if err := c.NetExec(ctx, i, "tc", "qdisc", "del", "dev", c.Iface(i), "root"); err != nil &&
			!strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run runs a host command with a bounded time and returns its output in
// the error.
func Run(ctx context.Context, args ...string) error {
	_, err := Output(ctx, args...)
	return err
}

// Output runs a host command with a bounded time and returns its output.
func Output(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// TmpfsSource names the tmpfs file systems barge-jepsen mounts (for the
// disk-full fault), so cleanup finds leftovers in /proc/mounts.
const TmpfsSource = "bjeptmpfs"

// MountTmpfs mounts a tmpfs of size (e.g. "1g") on dir, creating dir.
func MountTmpfs(ctx context.Context, dir, size string) error {
	if err := Run(ctx, "mkdir", "-p", dir); err != nil {
		return err
	}
	return Run(ctx, "mount", "-t", "tmpfs", "-o", "size="+size, TmpfsSource, dir)
}

// UnmountTmpfs unmounts every barge-jepsen tmpfs mounted under (or on)
// under; "/" for all of them.
func UnmountTmpfs(ctx context.Context, under string) error {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != TmpfsSource || !strings.HasPrefix(f[1], under) {
			continue
		}
		if err := Run(ctx, "umount", "-l", f[1]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TmpfsMounts lists the mount points of barge-jepsen tmpfs file systems.
func TmpfsMounts() []string {
	b, _ := os.ReadFile("/proc/mounts")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == TmpfsSource {
			out = append(out, f[1])
		}
	}
	return out
}
