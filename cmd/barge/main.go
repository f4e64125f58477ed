// Command barge is the Barge broker and its admin CLI: `barge serve` runs a
// broker; the other subcommands talk to a cluster.
//
// Exit codes: 0 success, 1 the operation failed (also when only some items
// failed), 2 usage error (unknown flag or command, malformed value, bad
// config file or environment variable), 3 cluster unreachable, 4 `cluster
// health` found the cluster unhealthy. Only main calls os.Exit.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	brokercmd "github.com/barge-broker/barge/cmd/barge/broker"
	clustercmd "github.com/barge-broker/barge/cmd/barge/cluster"
	"github.com/barge-broker/barge/cmd/barge/dumplog"
	"github.com/barge-broker/barge/cmd/barge/group"
	"github.com/barge-broker/barge/cmd/barge/internal/cli"
	"github.com/barge-broker/barge/cmd/barge/partition"
	"github.com/barge-broker/barge/cmd/barge/perf"
	"github.com/barge-broker/barge/cmd/barge/record"
	"github.com/barge-broker/barge/cmd/barge/topic"
)

func main() {
	deps := &cli.Deps{
		Stdin:         os.Stdin,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		LookupEnv:     os.LookupEnv,
		Environ:       os.Environ,
		InstallLogger: slog.SetDefault,
		Interrupt: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		},
	}
	os.Exit(run(os.Args[1:], deps, defaultServeHooks()))
}

// run executes the command line args and returns the exit code.
func run(args []string, deps *cli.Deps, hooks serveHooks) int {
	root := newRootCommand(deps, hooks)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return cli.ExitOK
	}
	code := cli.ExitCode(err)
	fmt.Fprintf(deps.Stderr, "Error: %v\n", err)
	if code == cli.ExitUsage && cmd != nil {
		fmt.Fprintf(deps.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

const rootLong = `Barge is a Kafka-compatible, replicated message broker.

'barge serve' runs a broker; the other commands administer a cluster over
the Kafka protocol (--brokers, env BARGE_BROKERS, default 127.0.0.1:9092)
and, where Kafka has no API, the brokers' HTTP admin API (--admin, env
BARGE_ADMIN, default 127.0.0.1:9644). They print tables, or JSON or YAML
with -o json|yaml; the JSON field names are a stable API.

Exit codes: 0 success; 1 the operation failed, also when only partly;
2 usage error; 3 cluster unreachable; 4 cluster unhealthy ('cluster health').`

const rootExample = `  # Run a single broker on 127.0.0.1:9092 with data in ./barge-data:
  barge serve

  # Administer it:
  barge topic create orders -p 6
  echo hello | barge produce orders
  barge consume orders -o start -n 1
  barge cluster health --exit-when-healthy

  # Log JSON at debug level:
  barge --log-format json --log-level debug serve`

// newRootCommand builds the `barge` command tree. The admin CLI adds one
// command per noun, built in cmd/barge/<noun> by <noun>.NewCommand(deps),
// with a file per verb.
func newRootCommand(deps *cli.Deps, hooks serveHooks) *cobra.Command {
	root := &cobra.Command{
		Use:           "barge",
		Short:         "Barge, a Kafka-compatible message broker",
		Long:          rootLong,
		Example:       rootExample,
		SilenceErrors: true, // run prints the error, once, and picks the exit code
		SilenceUsage:  true,
		// A runnable root with its own Args reports an unknown command as a
		// usage error; cobra's own check returns a plain error.
		Args:                       unknownCommand,
		SuggestionsMinimumDistance: 2,
		RunE:                       func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			l, err := load(loggingFields(), defaultSettings(), cmd.Flags(), deps.LookupEnv, "")
			if err != nil {
				return err
			}
			return installLogger(deps, l.settings)
		},
	}
	root.SetOut(deps.Stdout)
	root.SetErr(deps.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usage(err) })
	root.PersistentFlags().SortFlags = false
	addFlags(root.PersistentFlags(), loggingFields(), defaultSettings())

	root.AddCommand(newServeCommand(deps, hooks), newHealthcheckCommand(deps), newDevCommand(deps))
	// The admin CLI: one command per noun, built in cmd/barge/<noun>.
	root.AddCommand(
		clustercmd.NewCommand(deps),
		brokercmd.NewCommand(deps),
		partition.NewCommand(deps),
		topic.NewCommand(deps),
		group.NewCommand(deps),
		partition.NewCommand(deps),
		brokercmd.NewCommand(deps),
		record.NewProduceCommand(deps),
		record.NewConsumeCommand(deps),
		perf.NewCommand(deps),
		dumplog.NewCommand(deps),
	)

	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	argErrorsAreUsage(root)
	return root
}

// unknownCommand accepts no positional arguments on the root.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return cli.Usagef("%s", msg)
}

// argErrorsAreUsage makes the positional-argument checks of cmd and its
// subcommands return usage errors.
func argErrorsAreUsage(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error { return cli.Usage(check(c, args)) }
	}
	for _, sub := range cmd.Commands() {
		argErrorsAreUsage(sub)
	}
}

// loggingFields are the root's settings, shared by every command. They are
// flags and environment variables everywhere, and also keys of serve's
// config file.
func loggingFields() []field {
	return []field{
		choiceField("log-format", "log format: text or json", []string{"text", "json"},
			func(s *settings) *string { return &s.LogFormat }),
		choiceField("log-level", "lowest level logged: debug, info, warn or error", []string{"debug", "info", "warn", "error"},
			func(s *settings) *string { return &s.LogLevel }),
	}
}

// installLogger sets deps.Logger from the logging settings.
func installLogger(deps *cli.Deps, s settings) error {
	logger, err := newLogger(deps.Stderr, s.LogFormat, s.LogLevel)
	if err != nil {
		return cli.Usage(err)
	}
	deps.Logger = logger
	if deps.InstallLogger != nil {
		deps.InstallLogger(logger)
	}
	return nil
}

// newLogger writes records at level and above to w as text or JSON.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
