// Package cli holds what every `barge` command shares: the dependencies main
// hands to each command constructor, the mapping from errors to exit codes,
// the cluster-address and --output flags of the admin commands (flags.go,
// command.go) and the table/JSON/YAML printers (output.go). Commands live in
// package main (serve) and in cmd/barge/<noun> packages (the admin CLI),
// each built by a constructor taking *Deps; only main calls os.Exit.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Exit codes of the barge binary. They are an API: scripts test them.
const (
	ExitOK          = 0 // the command did what was asked
	ExitFailure     = 1 // the operation failed, also when only partly
	ExitUsage       = 2 // bad invocation: unknown flag or command, bad value, bad config file
	ExitUnreachable = 3 // no broker of the cluster could be reached
	ExitUnhealthy   = 4 // `cluster health` found the cluster unhealthy (or it stayed so until --timeout)
)

// Deps is the world a command runs in. main builds one from the process
// (os.Stdout, os.LookupEnv, ...); tests build their own. Commands keep the
// pointer and read Logger only from their RunE: the root command sets it
// after parsing --log-format and --log-level, before any RunE runs.
type Deps struct {
	Stdin  io.Reader // records for `produce`; nil reads as empty
	Stdout io.Writer // results (tables, JSON)
	Stderr io.Writer // diagnostics and logs

	// LookupEnv and Environ read the environment (os.LookupEnv, os.Environ).
	LookupEnv func(key string) (string, bool)
	Environ   func() []string

	// Logger writes to Stderr in the format and at the level asked for.
	Logger *slog.Logger
	// InstallLogger, when set, is called with every logger the root builds;
	// main passes slog.SetDefault so that code logging through the default
	// logger follows --log-format too. Tests leave it nil.
	InstallLogger func(*slog.Logger)

	// Interrupt, when set, returns a context that ends on SIGINT or SIGTERM
	// (main passes signal.NotifyContext). Long-running commands (consume,
	// perf, cluster health --watch) stop cleanly through it. Tests leave
	// it nil: the context then ends only with its parent.
	Interrupt func(context.Context) (context.Context, context.CancelFunc)
}

// Context returns the context a long-running command runs under: parent,
// ended also by SIGINT or SIGTERM when d.Interrupt is set. Call cancel when
// done, which also restores the default signal handling.
func (d *Deps) Context(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	if d.Interrupt == nil {
		return context.WithCancel(parent)
	}
	return d.Interrupt(parent)
}

// UsageError is an error the user fixes by invoking barge differently: an
// unknown flag or command, a malformed value, a bad config file or
// environment variable. It exits with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error; nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Usagef is fmt.Errorf marked as a usage error.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// UnreachableError says no broker answered; it exits with ExitUnreachable.
// Admin commands wrap their dial errors in it.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// UnhealthyError is the verdict of `cluster health` on an unhealthy
// cluster; it exits with ExitUnhealthy.
type UnhealthyError struct{ Reasons []string }

func (e *UnhealthyError) Error() string {
	if len(e.Reasons) == 0 {
		return "cluster unhealthy"
	}
	return "cluster unhealthy: " + strings.Join(e.Reasons, "; ")
}

// ExitCode is the process exit code for the error a command returned.
func ExitCode(err error) int {
	var usage *UsageError
	var unreachable *UnreachableError
	var unhealthy *UnhealthyError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage):
		return ExitUsage
	case errors.As(err, &unreachable):
		return ExitUnreachable
	case errors.As(err, &unhealthy):
		return ExitUnhealthy
	default:
		return ExitFailure
	}
}

// Failed returns the error of a command that acted on several items and
// printed a result for each: nil when none failed, else "n of total
// <items> failed" (exit code 1, also when only some failed).
func Failed(n, total int, items string) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d %s failed", n, total, items)
}
