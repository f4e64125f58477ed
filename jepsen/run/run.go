// Package run drives one barge-jepsen test: it sets up a cluster on a
// backend, creates the topic, runs the workload while the nemesis applies
// its schedule, heals, reads everything back, checks the history and
// writes DIR/history.jsonl, DIR/schedule.json, DIR/verdict.json and
// DIR/report.html. The
// cluster is torn down on every path out, including cancellation.
package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/history"
	"github.com/barge-broker/barge/jepsen/nemesis"
	"github.com/barge-broker/barge/jepsen/netns"
	"github.com/barge-broker/barge/jepsen/report"
	"github.com/barge-broker/barge/jepsen/workload"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrSetup wraps every failure to bring the cluster up (exit status 3).
var ErrSetup = errors.New("run: cluster setup failed")

// Options are barge-jepsen run's flags.
type Options struct {
	Barge      string
	Nodes      int
	Time       time.Duration
	Nemesis    []string
	Seed       uint64
	Out        string
	Rate       int
	Producers  int
	Partitions int
	Unsafe     bool
	// TargetLeader aims kills at partition leaders, cut off for 2 s
	// first (isolateThenKill); the unsafe control always does.
	TargetLeader bool
	Log          *slog.Logger
}

const topic = "jepsen-queue"

// Run runs the test and returns its verdict. An error wrapping ErrSetup
// means no history was taken; any other error is an operating failure of
// the harness.
func Run(ctx context.Context, o Options) (checker.Verdict, error) {
	log := o.Log
	if err := netns.CheckPrereqs(); err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	barge, err := filepath.Abs(o.Barge)
	if err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if _, err := os.Stat(barge); err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: barge binary: %w", ErrSetup, err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	schedule := nemesis.Schedule(nemesis.Plan{Seed: o.Seed, Kinds: o.Nemesis, Nodes: o.Nodes,
		Partitions: o.Partitions, Total: o.Time, TargetLeader: o.Unsafe || o.TargetLeader})
	if err := writeJSON(filepath.Join(o.Out, "schedule.json"), schedule); err != nil {
		return checker.Verdict{}, err
	}
	for _, f := range schedule {
		log.Info("planned fault", "fault", f.String())
	}

	c, err := netns.Setup(ctx, netns.Config{Barge: barge, Nodes: o.Nodes, Dir: o.Out, Log: log,
		// Second-scale failure detection and ISR shrinking: the faults
		// last seconds, and the run should see failovers, not waits.
		Args: []string{"--fast-failure-detection", "--replica-lag-time-max", "3s"}})
	if err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	defer func() {
		if err := c.Teardown(); err != nil {
			log.Error("teardown", "err", err)
		}
	}()
	if err := startCluster(ctx, c, barge, o); err != nil {
		return checker.Verdict{}, fmt.Errorf("%w: %w (node logs in %s)", ErrSetup, err, o.Out)
	}
	log.Info("cluster up", "seeds", c.Seeds(), "unsafe", o.Unsafe)

	rec := history.NewRecorder()
	wcfg := workload.Config{Seeds: c.Seeds(), Topic: topic, Partitions: o.Partitions, Unsafe: o.Unsafe, Rec: rec, Log: log}
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var producers, consumer sync.WaitGroup
	for p := range o.Producers {
		producers.Go(func() {
			if err := workload.Produce(wctx, wcfg, p, max(1, o.Rate/o.Producers), 25*time.Second); err != nil {
				log.Error("producer", "process", p, "err", err)
			}
		})
	}
	consumer.Go(func() {
		if err := workload.Consume(cctx, wcfg); err != nil {
			log.Error("consumer", "err", err)
		}
	})

	nem := &applier{c: c, rec: rec, log: log, seeds: c.Seeds()}
	nem.run(wctx, schedule, time.Now(), o.Time)
	stopWorkload()
	producers.Wait()
	// The consumer polls on a little after the last send so it can see it.
	time.Sleep(time.Second)
	stopConsumer()
	consumer.Wait()
	nem.healAll(context.Background())

	if err := waitHealthy(ctx, barge, c, 60*time.Second); err != nil {
		log.Warn("cluster not healthy after healing; reading anyway", "err", err)
	}
	if err := workload.FinalRead(ctx, wcfg, 60*time.Second); err != nil {
		log.Warn("final read", "err", err)
	}
	if err := rec.WriteFile(filepath.Join(o.Out, "history.jsonl")); err != nil {
		return checker.Verdict{}, err
	}
	ops := rec.Ops()
	v := checker.Check(ops)
	if err := writeJSON(filepath.Join(o.Out, "verdict.json"), v); err != nil {
		return v, err
	}
	if err := report.Write(filepath.Join(o.Out, "report.html"), ops, v); err != nil {
		log.Warn("report.html not written", "err", err)
	}
	return v, ctx.Err()
}

// CheckDir rechecks DIR/history.jsonl and rewrites DIR/verdict.json and
// DIR/report.html.
func CheckDir(dir string) (checker.Verdict, error) {
	ops, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return checker.Verdict{}, err
	}
	v := checker.Check(ops)
	if err := writeJSON(filepath.Join(dir, "verdict.json"), v); err != nil {
		return v, err
	}
	return v, report.Write(filepath.Join(dir, "report.html"), ops, v)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("run: encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("run: write %s: %w", path, err)
	}
	return nil
}

// startCluster starts every broker, waits for health through the
// operator CLI, and creates the topic, safe or unsafe.
func startCluster(ctx context.Context, c *netns.Cluster, barge string, o Options) error {
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := c.WaitReady(ctx, n, 60*time.Second); err != nil {
			return err
		}
	}
	if err := waitHealthy(ctx, barge, c, 60*time.Second); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	minISR, unclean := "2", "false"
	if o.Unsafe {
		minISR, unclean = "1", "true"
	}
	configs := map[string]*string{"min.insync.replicas": &minISR, "unclean.leader.election.enable": &unclean}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := adm.CreateTopic(cctx, int32(o.Partitions), int16(min(3, o.Nodes)), configs, topic)
		if err == nil && (resp.Err == nil || strings.Contains(resp.Err.Error(), "TOPIC_ALREADY_EXISTS")) {
			break
		}
		if cctx.Err() != nil {
			return fmt.Errorf("create topic %s: %v %v", topic, err, resp.Err)
		}
		time.Sleep(500 * time.Millisecond) // retry pacing while the controller settles
	}
	// Every partition led and fully in sync before the first fault.
	for {
		td, err := adm.ListTopics(cctx, topic)
		if err == nil {
			if t, ok := td[topic]; ok && t.Err == nil && len(t.Partitions) == o.Partitions {
				full := true
				for _, p := range t.Partitions {
					full = full && p.Leader >= 0 && len(p.ISR) == min(3, o.Nodes)
				}
				if full {
					return nil
				}
			}
		}
		if cctx.Err() != nil {
			return fmt.Errorf("topic %s not fully in sync within 30s: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond) // poll pacing
	}
}

// waitHealthy asks the operator CLI, as a human would:
// `barge cluster health --exit-when-healthy`.
func waitHealthy(ctx context.Context, barge string, c *netns.Cluster, d time.Duration) error {
	var admin []string
	for _, n := range c.Nodes {
		admin = append(admin, n.HTTPAddr())
	}
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, barge, "cluster", "health", "--exit-when-healthy", "--timeout", d.String(),
		"--interval", "250ms", "--admin", strings.Join(admin, ","), "--brokers", strings.Join(c.Seeds(), ","))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("barge cluster health: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// applier applies a schedule to a cluster and records each fault.
type applier struct {
	c     *netns.Cluster
	rec   *history.Recorder
	log   *slog.Logger
	seeds []string

	mu      sync.Mutex // guards active
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

func (a *applier) begin(ctx context.Context, f nemesis.Fault) {
	idx := f.Node
	if idx == nemesis.Leader {
		idx = a.leaderOf(ctx, f.LeaderOf)
	}
	n := a.c.Nodes[idx]
	a.rec.Add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: f.Kind, Target: n.Name()})
	var err error
	var heal func(context.Context) error
	switch f.Kind {
	case nemesis.Kill:
		if f.Node == nemesis.Leader {
			err = a.isolateThenKill(ctx, n)
		} else {
			err = a.c.Kill(n)
		}
		heal = func(context.Context) error { return a.c.Start(n) }
	case nemesis.Pause:
		err = a.c.Pause(n)
		heal = func(context.Context) error { return a.c.Resume(n) }
	case nemesis.Partition:
		err = a.c.Isolate(ctx, n)
		heal = a.c.HealNetwork
	}
	op := history.Op{Process: history.NemesisProcess, Type: history.OK, F: f.Kind, Target: n.Name()}
	if err != nil {
		op.Type, op.Error = history.Info, err.Error()
	}
	a.rec.Add(op)
	a.log.Info("fault", "kind", f.Kind, "node", n.Name(), "err", err)
	a.mu.Lock()
	a.active = append(a.active, heal)
	a.targets = append(a.targets, f.Kind+" "+n.Name())
	a.mu.Unlock()
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
func (a *applier) isolateThenKill(ctx context.Context, n *netns.Node) error {
	if err := a.c.Isolate(ctx, n); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(unsafeLeadWindow):
	}
	err := a.c.Kill(n)
	return errors.Join(err, a.c.HealNetwork(ctx))
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

// leaderOf finds the node leading partition p now, or a seeded-stable
// fallback (node p mod n) when no leader is known.
func (a *applier) leaderOf(ctx context.Context, p int32) int {
	fallback := int(p) % len(a.c.Nodes)
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.seeds...), kgo.DialTimeout(time.Second))
	if err != nil {
		return fallback
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fallback
	}
	pd, ok := td[topic].Partitions[p]
	if !ok || pd.Leader < 1 || int(pd.Leader) > len(a.c.Nodes) {
		return fallback
	}
	a.log.Info("leader", "partition", p, "broker", strconv.Itoa(int(pd.Leader)))
	return int(pd.Leader) - 1 // broker ids are 1-based node numbers
}
