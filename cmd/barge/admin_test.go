package main

import (
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/broker"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// adminLeaves are the runnable admin commands (everything but serve, dev,
// which runs brokers like serve, and cobra's help and completion).
func adminLeaves(t *testing.T) []*cobra.Command {
	deps, _, _ := testDeps(t)
	var out []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			switch sub.Name() {
			case "serve", "healthcheck", "dev", "help", "completion": // not admin commands: they act on this machine
				continue
			}
			if sub.HasSubCommands() {
				walk(sub)
				continue
			}
			out = append(out, sub)
		}
	}
	walk(newRootCommand(deps, noServer(t)))
	return out
}

// TestAdminCommandsShareTheConventions: every admin command has examples
// and an --output flag, and every one that talks to a cluster has
// --brokers and --admin.
func TestAdminCommandsShareTheConventions(t *testing.T) {
	leaves := adminLeaves(t)
	if len(leaves) < 15 {
		t.Fatalf("only %d admin commands", len(leaves))
	}
	for _, c := range leaves {
		if c.Example == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		if c.Flags().Lookup("output") == nil && c.InheritedFlags().Lookup("output") == nil {
			t.Errorf("%s has no --output", c.CommandPath())
		}
		if c.Name() == "dump-log" {
			continue // reads files, talks to no broker
		}
		for _, f := range []string{"brokers", "admin"} {
			if c.Flags().Lookup(f) == nil && c.InheritedFlags().Lookup(f) == nil {
				t.Errorf("%s has no --%s", c.CommandPath(), f)
			}
		}
	}
}

func TestAdminExitCodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want int
		says string
	}{
		{"unknown verb", []string{"topic", "craete"}, cli.ExitUsage, `did you mean "create"?`},
		{"missing argument", []string{"topic", "describe"}, cli.ExitUsage, "requires at least 1 arg"},
		{"bad output", []string{"cluster", "info", "-o", "csv"}, cli.ExitUsage, "want table, json or yaml"},
		{"consume has no -o output", []string{"consume", "t", "--output", "json", "-o", "nope"}, cli.ExitUsage, `"nope"`},
		{"bad health interval", []string{"cluster", "health", "--interval", "-1s"}, cli.ExitUsage, "--interval"},
		{"unreachable brokers", []string{"topic", "list", "--brokers", dead}, cli.ExitUnreachable, dead},
		{"unreachable admin", []string{"cluster", "health", "--admin", dead}, cli.ExitUnreachable, dead},
		{"noun alone prints help", []string{"topic"}, cli.ExitOK, ""},
		{"dump-log of nothing", []string{"dump-log", "/nonexistent/0.log"}, cli.ExitFailure, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBarge(t, noServer(t), tc.args...)
			if r.code != tc.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tc.want, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.says) {
				t.Errorf("stderr does not say %q:\n%s", tc.says, r.stderr)
			}
		})
	}
}

// TestServeKnowsTheCLIEnvironment: BARGE_BROKERS and BARGE_ADMIN belong to
// the admin CLI; serve does not warn about them.
func TestServeKnowsTheCLIEnvironment(t *testing.T) {
	t.Setenv(cli.BrokersEnv, "kafka1:9092")
	t.Setenv(cli.AdminEnv, "kafka1:9644")
	var got broker.Config
	r := runBarge(t, capture(&got), "serve")
	if r.code != cli.ExitOK || strings.Contains(r.stderr, "unknown environment variable") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
