// Command barge-jepsen tests a Barge cluster under faults, as Jepsen's
// Kafka workload does, and checks the history it took.
//
//	barge-jepsen run --barge bin/barge --nodes 3 --time 60s --nemesis kill,pause,partition --seed 7 --out DIR
//	barge-jepsen check DIR
//	barge-jepsen cleanup
//
// Exit status: 0 the history is valid, 1 the checker found an anomaly, 2
// usage error, 3 the cluster could not be set up (the reason on stderr) or
// the run was interrupted (Ctrl-C, SIGTERM; the cluster is removed first).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/barge-broker/barge/jepsen/checker"
	"github.com/barge-broker/barge/jepsen/nemesis"
	"github.com/barge-broker/barge/jepsen/run"
	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitValid   = 0
	exitAnomaly = 1
	exitUsage   = 2
	exitSetup   = 3
)

// exitError carries an exit status out of a command's RunE.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

func execute(args []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root := &cobra.Command{
		Use:           "barge-jepsen",
		Short:         "Test a Barge cluster under faults and check the history",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCommand(log, stdout), newCheckCommand(stdout), newCleanupCommand(log))
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitValid
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "barge-jepsen:", ee.err)
		}
		return ee.code
	}
	// Anything cobra itself refused (unknown flag or command) is usage.
	fmt.Fprintf(stderr, "barge-jepsen: %v (see --help)\n", err)
	return exitUsage
}

func newRunCommand(log *slog.Logger, stdout io.Writer) *cobra.Command {
	var o run.Options
	var nem, backend, workloadName string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the workload against a fresh cluster under faults, then check it",
		Example: `  # One minute, every fault, the safe configuration:
  barge-jepsen run --barge bin/barge --nodes 3 --time 60s --nemesis kill,pause,partition --seed 7 --out /tmp/j1

  # The negative control: acks=1, min.insync.replicas=1, unclean election, no idempotence:
  barge-jepsen run --barge bin/barge --time 45s --nemesis kill --seed 7 --out /tmp/j2 --unsafe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			usage := func(format string, args ...any) error {
				return &exitError{exitUsage, fmt.Errorf(format+" (see --help)", args...)}
			}
			switch {
			case o.Barge == "":
				return usage("--barge is required")
			case o.Out == "":
				return usage("--out is required")
			case backend != "netns" && backend != "docker":
				return usage("--backend %q: want netns or docker", backend)
			case workloadName != "queue":
				return usage("--workload %q: only queue is built", workloadName)
			case o.Nodes < 1 || o.Nodes > 9:
				return usage("--nodes %d: want 1 to 9", o.Nodes)
			case o.Rate < 1, o.Producers < 1, o.Partitions < 1:
				return usage("--rate, --producers and --partitions must be positive")
			case o.SaramaProducers < 0, o.GroupMembers < 0, o.PowerLossBytes < 1:
				return usage("--sarama-producers and --group-members must not be negative, --power-loss-bytes positive")
			case o.Time < 10*time.Second:
				return usage("--time %v: want at least 10s", o.Time)
			}
			kinds, err := nemesis.ParseKinds(nem)
			if err != nil {
				return usage("%v", err)
			}
			o.Nemesis, o.Log, o.Backend = kinds, log, backend
			// Ctrl-C or SIGTERM cancels the run; its deferred teardown
			// then removes the cluster before the process exits.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			v, err := run.Run(ctx, o)
			if errors.Is(err, run.ErrSetup) {
				return &exitError{exitSetup, err}
			}
			if errors.Is(err, context.Canceled) {
				return &exitError{exitSetup, fmt.Errorf("interrupted: the cluster was removed; the partial history is in %s", o.Out)}
			}
			if err != nil {
				return &exitError{exitSetup, fmt.Errorf("run: %w", err)}
			}
			return report(stdout, v, o.Out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Barge, "barge", "", "path of the barge binary to test")
	f.StringVar(&backend, "backend", "netns", "where brokers run: netns (each broker a local process in its own network namespace) or docker (containers of the FROM scratch image on a private network)")
	f.StringVar(&o.Image, "image", "", "docker backend: an existing image to run (e.g. barge:dev from make image); empty builds one from --barge")
	f.IntVar(&o.Nodes, "nodes", 3, "brokers")
	f.DurationVar(&o.Time, "time", 60*time.Second, "how long the workload and the faults run")
	f.StringVar(&nem, "nemesis", "kill,pause,partition", "faults, comma-separated: kill, pause, partition, netem, power-loss, disk-full, all, or none (clock is refused: the broker's clock cannot be faked)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the fault schedule: the same seed gives the same faults")
	f.StringVar(&o.Out, "out", "", "directory for history.jsonl, verdict.json, schedule.json and the node logs")
	f.IntVar(&o.Rate, "rate", 1000, "sends per second, over all producers")
	f.IntVar(&o.Producers, "producers", 2, "franz-go producer clients")
	f.IntVar(&o.SaramaProducers, "sarama-producers", 1, "IBM/sarama producer clients (a share of --rate)")
	f.IntVar(&o.GroupMembers, "group-members", 2, "subscribe-mode consumers in one group, besides the assign-mode consumer")
	f.IntVar(&o.PowerLossReplicas, "power-loss-replicas", 1, "replicas a power loss hits at once; above 1 (every broker killed, that many cut) is the limit test that acknowledged writes may not survive")
	f.Int64Var(&o.PowerLossBytes, "power-loss-bytes", 4096, "bytes a power loss cuts from the end of each newest segment")
	f.IntVar(&o.Partitions, "partitions", 3, "partitions of the topic")
	f.StringVar(&workloadName, "workload", "queue", "workload: queue")
	f.BoolVar(&o.Unsafe, "unsafe", false, "negative control: acks=1, min.insync.replicas=1, unclean.leader.election.enable=true, no idempotence; kills aim at leaders")
	f.BoolVar(&o.TargetLeader, "target-leader", false, "aim kills at partition leaders, cut off from the other brokers for 2s before the kill (always on with --unsafe)")
	return cmd
}

func newCheckCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "check DIR",
		Short:   "Check DIR/history.jsonl again and rewrite DIR/verdict.json",
		Example: "  barge-jepsen check /tmp/j1",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			v, err := run.CheckDir(args[0])
			if err != nil {
				return &exitError{exitUsage, err}
			}
			return report(stdout, v, args[0])
		},
	}
}

func newCleanupCommand(log *slog.Logger) *cobra.Command {
	return &cobra.Command{
		Use:   "cleanup",
		Short: "Remove namespaces, links and firewall rules that earlier runs left behind",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			left, err := run.Cleanup(log)
			if err != nil || len(left) > 0 {
				return &exitError{exitSetup, fmt.Errorf("left after cleanup: %v (%v)", left, err)}
			}
			return nil
		},
	}
}

// report prints the verdict's figures and turns it into the exit status.
func report(w io.Writer, v checker.Verdict, dir string) error {
	fmt.Fprintf(w, "valid: %v\nops: %d (sends ok %d, fail %d, info %d; acks by client %v; group polls %d, commits %d; white-box samples %d)\nfaults: %d %v\nworst unavailability: %d ms\nporcupine: %s\n",
		v.Valid, v.Ops, v.SendsOK, v.SendsFail, v.SendsInfo, v.Clients, v.GroupPolls, v.Commits, v.Observations,
		v.Faults, v.FaultsByKind, v.WorstUnavailabilityMs, v.Porcupine)
	for _, n := range checker.Names {
		fmt.Fprintf(w, "%s: %d\n", n, v.Anomalies[n])
		if v.Anomalies[n] == 0 {
			continue
		}
		for _, ex := range v.Examples[n] {
			fmt.Fprintf(w, "  e.g. %s\n", ex)
		}
	}
	fmt.Fprintf(w, "history: %s/history.jsonl, verdict: %s/verdict.json\n", dir, dir)
	if !v.Valid {
		return &exitError{exitAnomaly, nil}
	}
	return nil
}
