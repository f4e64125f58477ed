package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/history"
	"github.com/barge-broker/barge/jepsen/nemesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// applier applies a schedule to a cluster and records each fault.
type applier struct {
	c     backend.Cluster
	rec   *history.Recorder
	log   *slog.Logger
	seeds []string
	// netem: whether the kernel has sch_netem; without it delay becomes
	// a tbf rate limit (queueing delay) and loss an iptables random drop.
	netem bool
	// isolateLeader: leader-targeted kills cut the leader off first
	// (isolateThenKill); cutBytes: what a power loss cuts per segment.
	isolateLeader bool
	cutBytes      int64

	mu      sync.Mutex // guards active, targets
	active  []func(context.Context) error
	targets []string
}

func (a *applier) run(ctx context.Context, schedule []nemesis.Fault, start time.Time, total time.Duration) {
	sleepUntil := func(at time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Until(start.Add(at))):
			return true
		}
	}
	for _, f := range schedule {
		if !sleepUntil(f.Start) {
			return
		}
		a.begin(ctx, f)
		if !sleepUntil(f.End) {
			return
		}
		a.healAll(ctx)
	}
	sleepUntil(total)
}

// resolve turns a fault's target into node indices: the nodes the
// schedule fixed, every node, or the current leader or controller.
func (a *applier) resolve(ctx context.Context, f nemesis.Fault) []int {
	switch {
	case f.Target == nemesis.Leader:
		return []int{a.leaderOf(ctx, f.LeaderOf)}
	case f.Target == nemesis.Controller:
		return []int{a.controller(ctx)}
	case f.Shape == nemesis.All && f.Kind != nemesis.PowerLoss: // a power loss of all cuts f.Nodes only
		var all []int
		for i := range a.c.Size() {
			all = append(all, i)
		}
		return all
	}
	return f.Nodes
}

func (a *applier) begin(ctx context.Context, f nemesis.Fault) {
	nodes := a.resolve(ctx, f)
	target := backend.Names(nodes)
	if f.Kind == nemesis.Partition || f.Kind == nemesis.Netem {
		target = f.Shape + " " + target
	}
	a.rec.Add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: f.Kind, Target: target})
	heal, err := a.apply(ctx, f, nodes)
	op := history.Op{Process: history.NemesisProcess, Type: history.OK, F: f.Kind, Target: target}
	if err != nil {
		op.Type, op.Error = history.Info, err.Error()
	}
	a.rec.Add(op)
	a.log.Info("fault", "fault", f.String(), "target", target, "err", err)
	a.mu.Lock()
	a.active = append(a.active, heal)
	a.targets = append(a.targets, f.Kind+" "+target)
	a.mu.Unlock()
}

// apply starts fault f on nodes and returns what undoes it (always
// non-nil, so a half-applied fault is healed too).
func (a *applier) apply(ctx context.Context, f nemesis.Fault, nodes []int) (func(context.Context) error, error) {
	c := a.c
	restart := func(context.Context) error {
		var errs []error
		for _, i := range nodes {
			if !c.Running(i) {
				errs = append(errs, c.Start(i))
			}
		}
		return errors.Join(errs...)
	}
	healNet := func(ctx context.Context) error { return backend.HealNetwork(ctx, c) }
	var errs []error
	switch f.Kind {
	case nemesis.Kill:
		if f.Target == nemesis.Leader && a.isolateLeader {
			return restart, a.isolateThenKill(ctx, nodes[0])
		}
		for _, i := range nodes {
			errs = append(errs, c.Kill(i))
		}
		return restart, errors.Join(errs...)
	case nemesis.Pause:
		for _, i := range nodes {
			errs = append(errs, c.Pause(i))
		}
		return func(context.Context) error {
			var errs []error
			for _, i := range nodes {
				errs = append(errs, c.Resume(i))
			}
			return errors.Join(errs...)
		}, errors.Join(errs...)
	case nemesis.Partition:
		return healNet, a.partition(ctx, f.Shape, nodes)
	case nemesis.Netem:
		return healNet, a.shapeTraffic(ctx, f.Shape, nodes)
	case nemesis.PowerLoss:
		// One broker, or (the limit test, Shape All) every broker killed
		// and the ones in f.Nodes cut.
		killed := nodes
		if f.Shape == nemesis.All {
			killed = nil
			for i := range c.Size() {
				killed = append(killed, i)
			}
		}
		restart := func(context.Context) error {
			var errs []error
			for _, i := range killed {
				if !c.Running(i) {
					errs = append(errs, c.Start(i))
				}
			}
			return errors.Join(errs...)
		}
		for _, i := range killed {
			errs = append(errs, c.Kill(i))
		}
		for _, i := range nodes {
			cut, err := cutTails(c.DataDir(i), a.cutBytes)
			a.log.Info("power loss: cut segment tails", "node", backend.Name(i), "cut", cut)
			errs = append(errs, err)
		}
		return func(ctx context.Context) error {
			// Never a second replica before this one is back in every
			// ISR: a power loss is only survivable one replica at a time.
			return errors.Join(restart(ctx), a.waitFullISR(ctx, 90*time.Second))
		}, errors.Join(errs...)
	case nemesis.DiskFull:
		i := nodes[0]
		fill := filepath.Join(filepath.Dir(c.DataDir(i)), "fill")
		err := fillDisk(fill)
		return func(ctx context.Context) error {
			return errors.Join(os.Remove(fill), restart(ctx))
		}, err
	}
	return func(context.Context) error { return nil }, fmt.Errorf("run: unknown fault %q", f.Kind)
}

// partition applies one of the partition shapes between brokers; clients
// on the host still reach every broker.
func (a *applier) partition(ctx context.Context, shape string, nodes []int) error {
	c, n := a.c, a.c.Size()
	var errs []error
	cutPairs := func(sees func(x, y int) bool) {
		for x := range n {
			for y := x + 1; y < n; y++ {
				if !sees(x, y) {
					errs = append(errs, backend.Cut(ctx, c, x, y))
				}
			}
		}
	}
	in := func(i int, set []int) bool {
		for _, s := range set {
			if s == i {
				return true
			}
		}
		return false
	}
	switch shape {
	case nemesis.Isolate, nemesis.Halves, nemesis.One:
		cutPairs(func(x, y int) bool { return in(x, nodes) == in(y, nodes) })
	case nemesis.Bridge:
		// nodes[0] in the middle; the rest split by index in two halves.
		var rest []int
		for i := range n {
			if i != nodes[0] {
				rest = append(rest, i)
			}
		}
		left := rest[:len(rest)/2]
		cutPairs(func(x, y int) bool { return x == nodes[0] || y == nodes[0] || in(x, left) == in(y, left) })
	case nemesis.Ring:
		pos := map[int]int{}
		for k, i := range nodes {
			pos[i] = k
		}
		cutPairs(func(x, y int) bool {
			d := (pos[x] - pos[y] + n) % n
			return d == 1 || d == n-1
		})
	case nemesis.OneWay:
		for y := range n {
			if y != nodes[0] {
				errs = append(errs, backend.Drop(ctx, c, nodes[0], y))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("run: unknown partition shape %q", shape))
	}
	return errors.Join(errs...)
}

// shapeTraffic slows or drops one broker's packets (to everyone, clients
// included) with netem, or, on kernels without sch_netem, with a tbf rate
// limit (the queue adds delay) and an iptables random drop.
func (a *applier) shapeTraffic(ctx context.Context, shape string, nodes []int) error {
	var errs []error
	for _, i := range nodes {
		dev := a.c.Iface(i)
		switch {
		case shape == nemesis.Delay && a.netem:
			errs = append(errs, a.c.NetExec(ctx, i, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "100ms", "50ms"))
		case shape == nemesis.Loss && a.netem:
			errs = append(errs, a.c.NetExec(ctx, i, "tc", "qdisc", "add", "dev", dev, "root", "netem", "loss", "15%"))
		case shape == nemesis.Delay:
			errs = append(errs, a.c.NetExec(ctx, i, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "2mbit", "burst", "16kb", "latency", "300ms"))
		case shape == nemesis.Loss:
			for _, chain := range []string{"INPUT", "OUTPUT"} {
				errs = append(errs, a.c.NetExec(ctx, i, "iptables", "-w", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", "0.15", "-j", "DROP"))
			}
		}
	}
	return errors.Join(errs...)
}

// hasNetem probes the kernel for sch_netem on broker 0's link.
func hasNetem(ctx context.Context, c backend.Cluster) bool {
	if err := c.NetExec(ctx, 0, "tc", "qdisc", "add", "dev", c.Iface(0), "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	c.NetExec(ctx, 0, "tc", "qdisc", "del", "dev", c.Iface(0), "root")
	return true
}

// cutTails approximates losing what a power cut loses, as the kafka-fsync
// reproduction does: in every partition directory (<data>/<topic>-<p>/)
// the newest segment file loses its last n bytes (all of it if smaller).
// It returns what it cut, file → bytes.
func cutTails(dataDir string, n int64) (map[string]int64, error) {
	dirs, err := os.ReadDir(dataDir)
	if err != nil {
		return nil, fmt.Errorf("power loss: %w", err)
	}
	cut := map[string]int64{}
	var errs []error
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), topic+"-") {
			continue
		}
		segs, _ := filepath.Glob(filepath.Join(dataDir, d.Name(), "*.log"))
		if len(segs) == 0 {
			continue
		}
		sort.Strings(segs) // zero-padded base offsets: the last is the newest
		seg := segs[len(segs)-1]
		st, err := os.Stat(seg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := min(n, st.Size())
		if err := os.Truncate(seg, st.Size()-k); err != nil {
			errs = append(errs, fmt.Errorf("power loss: %w", err))
			continue
		}
		cut[filepath.Join(d.Name(), filepath.Base(seg))] = k
	}
	return cut, errors.Join(errs...)
}

// fillDisk allocates all the free space of path's file system to path.
func fillDisk(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("disk full: statfs: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("disk full: %w", err)
	}
	defer f.Close()
	// Fallocate in chunks reserves the blocks fast (tmpfs refuses one
	// request for all of it); writes of zeros take what is left.
	const chunk = 16 << 20
	var at int64
	for range int64(st.Blocks)*st.Bsize/chunk + 1 {
		if err := unix.Fallocate(int(f.Fd()), 0, at, chunk); err != nil {
			break
		}
		at += chunk
	}
	if _, err := f.Seek(at, 0); err != nil {
		return fmt.Errorf("disk full: %w", err)
	}
	buf := make([]byte, 4096)
	for range chunk / len(buf) {
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	if err := unix.Statfs(filepath.Dir(path), &st); err == nil && st.Bavail > 0 {
		return fmt.Errorf("disk full: %d blocks still free", st.Bavail)
	}
	return nil
}

// unsafeLeadWindow is how long the unsafe control's targeted leader is cut
// off from the other brokers before it is killed.
const unsafeLeadWindow = 2 * time.Second

// isolateThenKill is the unsafe control's leader kill, Kafka's 2013 loss
// made certain: a leader killed at a random moment has usually replicated
// everything it acknowledged (followers fetch within a millisecond), so
// the leader is first cut off from the other brokers while clients still
// reach it. With acks=1 it goes on acknowledging writes no follower gets;
// the controller meanwhile fences it and elects a follower, and the kill
// and restart make it truncate to the new leader's log. With acks=all the
// same steps acknowledge nothing while the leader is cut off.
func (a *applier) isolateThenKill(ctx context.Context, i int) error {
	if err := a.partition(ctx, nemesis.Isolate, []int{i}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(unsafeLeadWindow):
	}
	err := a.c.Kill(i)
	return errors.Join(err, backend.HealNetwork(ctx, a.c))
}

// healAll undoes every active fault. It is called at each window's end
// and once more after the workload, whatever happened before.
func (a *applier) healAll(ctx context.Context) {
	a.mu.Lock()
	active, targets := a.active, a.targets
	a.active, a.targets = nil, nil
	a.mu.Unlock()
	for i, heal := range active {
		a.rec.Add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FHeal, Target: targets[i]})
		op := history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FHeal, Target: targets[i]}
		if err := heal(ctx); err != nil {
			op.Type, op.Error = history.Info, err.Error()
			a.log.Error("heal", "fault", targets[i], "err", err)
		}
		a.rec.Add(op)
	}
}

func (a *applier) metadata(ctx context.Context) (kadm.Metadata, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.seeds...), kgo.DialTimeout(time.Second))
	if err != nil {
		return kadm.Metadata{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return kadm.NewClient(cl).Metadata(ctx, topic)
}

// leaderOf finds the node leading partition p now, or a stable fallback
// (node p mod n) when no leader is known.
func (a *applier) leaderOf(ctx context.Context, p int32) int {
	fallback := int(p) % a.c.Size()
	md, err := a.metadata(ctx)
	if err != nil {
		return fallback
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok || pd.Leader < 1 || int(pd.Leader) > a.c.Size() {
		return fallback
	}
	return int(pd.Leader) - 1 // broker ids are 1-based node numbers
}

// controller finds the node that is the Raft leader now (Metadata's
// controller id), or node 0.
func (a *applier) controller(ctx context.Context) int {
	md, err := a.metadata(ctx)
	if err != nil || md.Controller < 1 || int(md.Controller) > a.c.Size() {
		return 0
	}
	return int(md.Controller) - 1
}

// waitFullISR waits until every partition of the topic has a leader and
// all its replicas in sync, up to d.
func (a *applier) waitFullISR(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		md, err := a.metadata(ctx)
		if err == nil {
			full := len(md.Topics[topic].Partitions) > 0
			for _, p := range md.Topics[topic].Partitions {
				full = full && p.Leader >= 0 && len(p.ISR) == len(p.Replicas)
			}
			if full {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("run: ISRs not full within %v: %v", d, err)
		}
		time.Sleep(250 * time.Millisecond) // poll pacing
	}
}
