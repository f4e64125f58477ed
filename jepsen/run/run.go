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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/barge-broker/barge/jepsen/backend"
	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/history"
	"github.com/barge-broker/barge/jepsen/nemesis"
	"github.com/barge-broker/barge/jepsen/report"
	"github.com/barge-broker/barge/jepsen/workload"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrSetup wraps every failure to bring the cluster up (exit status 3).
var ErrSetup = errors.New("run: cluster setup failed")

// Options are barge-jepsen run's flags.
type Options struct {
	Barge     string
	Nodes     int
	Time      time.Duration
	Nemesis   []string
	Seed      uint64
	Out       string
	Rate      int
	Producers int
	// SaramaProducers send part of the traffic through IBM/sarama.
	SaramaProducers int
	// GroupMembers consume in subscribe mode, in one group.
	GroupMembers int
	Partitions   int
	Unsafe       bool
	// Backend is netns or docker; Image an existing image for docker
	// (built from Barge when empty).
	Backend string
	Image   string
	// PowerLossBytes is how much of each newest segment a power loss cuts.
	PowerLossBytes int64
	// PowerLossReplicas > 1: the power-loss limit test (nemesis.Plan).
	PowerLossReplicas int
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
	if err := checkPrereqs(o.Backend); err != nil {
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
		Partitions: o.Partitions, Total: o.Time, TargetLeader: o.Unsafe || o.TargetLeader, PowerLossReplicas: o.PowerLossReplicas})
	if err := writeJSON(filepath.Join(o.Out, "schedule.json"), schedule); err != nil {
		return checker.Verdict{}, err
	}
	for _, f := range schedule {
		log.Info("planned fault", "fault", f.String())
	}

	c, err := setupBackend(ctx, o, barge, slices.Contains(o.Nemesis, nemesis.DiskFull))
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
	rate := max(1, o.Rate/(o.Producers+o.SaramaProducers))
	for p := range o.Producers {
		producers.Go(func() {
			if err := workload.Produce(wctx, wcfg, p, rate, 25*time.Second); err != nil {
				log.Error("producer", "process", p, "err", err)
			}
		})
	}
	for i := range o.SaramaProducers {
		p := o.Producers + i
		producers.Go(func() {
			if err := workload.ProduceSarama(wctx, wcfg, p, rate, 25*time.Second); err != nil {
				log.Error("sarama producer", "process", p, "err", err)
			}
		})
	}
	consumer.Go(func() {
		if err := workload.Consume(cctx, wcfg); err != nil {
			log.Error("consumer", "err", err)
		}
	})
	for i := range o.GroupMembers {
		consumer.Go(func() {
			// Members restart at different moments, so the group keeps
			// rebalancing with one member at a time leaving.
			if err := workload.ConsumeGroup(cctx, wcfg, workload.GroupProcess+i, time.Duration(15+7*i)*time.Second); err != nil {
				log.Error("group member", "process", workload.GroupProcess+i, "err", err)
			}
		})
	}
	var brokers []int32
	for i := range c.Size() {
		brokers = append(brokers, int32(i+1))
	}
	consumer.Go(func() {
		if err := workload.Observe(cctx, wcfg, brokers, 250*time.Millisecond); err != nil {
			log.Error("observer", "err", err)
		}
	})

	nem := &applier{c: c, rec: rec, log: log, seeds: c.Seeds(), netem: hasNetem(ctx, c),
		isolateLeader: o.Unsafe || o.TargetLeader, cutBytes: o.PowerLossBytes}
	log.Info("traffic shaping", "netem", nem.netem)
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
	if err := workload.FinalRead(ctx, wcfg, max(60*time.Second, o.Time/10)); err != nil {
		log.Warn("final read", "err", err)
	}
	// The brokers stopped (and, for docker, their logs saved), the logs
	// are scanned for panics and broken invariants, into the history so
	// that check sees them too.
	if err := c.Teardown(); err != nil {
		log.Error("teardown", "err", err)
	}
	rec.Add(history.Op{Process: history.NemesisProcess, Type: history.Invoke, F: history.FLogScan})
	rec.Add(history.Op{Process: history.NemesisProcess, Type: history.OK, F: history.FLogScan, Alerts: scanLogs(o.Out, c.Size())})
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
func startCluster(ctx context.Context, c backend.Cluster, barge string, o Options) error {
	for i := range c.Size() {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	for i := range c.Size() {
		if err := c.WaitReady(ctx, i, 60*time.Second); err != nil {
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
func waitHealthy(ctx context.Context, barge string, c backend.Cluster, d time.Duration) error {
	admin := c.AdminAddrs()
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

// alertMarks are log lines that mean a bug in the broker: a panic (which
// a broken invariant is in a build with -tags invariants), a runtime
// fatal error, a data race (a -race build), or a broken invariant
// reported as an error (a release build).
var alertMarks = []string{"panic:", "fatal error:", "WARNING: DATA RACE", "invariant broken"}

// scanLogs returns the alarming lines of the node logs, "nI.log: line".
func scanLogs(dir string, nodes int) []string {
	var out []string
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("n%d.log", i)
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			out = append(out, name+": unreadable: "+err.Error())
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, m := range alertMarks {
				if strings.Contains(line, m) {
					out = append(out, name+": "+line)
					break
				}
			}
		}
	}
	return out
}
