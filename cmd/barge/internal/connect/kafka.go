// Package connect opens the admin CLI's connections to a cluster: franz-go
// clients over the Kafka protocol (Kafka) and the brokers' HTTP admin API
// (Admin). Both check reachability up front, within a few seconds, and turn
// failures into a *cli.UnreachableError that names the address and its
// likely cause, so every command exits with code 3 the same way.
package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// Timeouts of the first contact. A cluster that does not answer within
// ProbeTimeout counts as unreachable.
const (
	DialTimeout  = 3 * time.Second
	ProbeTimeout = 5 * time.Second
)

// Kafka returns a client bootstrapped from brokers, after checking that one
// of them answers a Metadata request within ProbeTimeout and that the
// addresses the cluster advertises can be dialed from here. opts add to or
// override the defaults (DialTimeout, logging to logger at debug level).
// The caller closes the client. Errors: *cli.UnreachableError when no
// broker answers or none of the advertised addresses is reachable;
// *cli.UsageError for a malformed address.
func Kafka(ctx context.Context, logger *slog.Logger, brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := dialAny(ctx, brokers, "--brokers", cli.BrokersEnv); err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DialTimeout(DialTimeout),
		kgo.WithLogger(kgoLogger{logger.With("component", "kgo")}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, cli.Usagef("--brokers %s: %w", strings.Join(brokers, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
	resp, err := req.RequestWith(pctx, cl)
	if err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &cli.UnreachableError{Err: fmt.Errorf(
			"connected to %s but got no Kafka answer within %v (%v): is that the Kafka listener of a barge broker, not its --http or --raft port?",
			strings.Join(brokers, ","), ProbeTimeout, err)}
	}
	if err := checkAdvertised(ctx, logger, brokers, resp.Brokers); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// AdminClient returns a kadm client over Kafka(ctx, logger, brokers, opts...).
// Closing the kadm client closes the kgo client.
func AdminClient(ctx context.Context, logger *slog.Logger, brokers []string, opts ...kgo.Opt) (*kadm.Client, error) {
	cl, err := Kafka(ctx, logger, brokers, opts...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// dialAny dials the addresses in parallel and returns nil as soon as one
// connects. When none does, the error names each address and why.
func dialAny(ctx context.Context, addrs []string, flag, env string) error {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	type result struct {
		addr string
		err  error
	}
	results := make(chan result, len(addrs))
	for _, addr := range addrs {
		go func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", withDefaultPort(addr, 9092))
			if err == nil {
				conn.Close()
			}
			results <- result{addr, err}
		}()
	}
	var failed []string
	for range addrs {
		r := <-results
		if r.err == nil {
			return nil // the others end with ctx
		}
		failed = append(failed, fmt.Sprintf("%s: %s", r.addr, Diagnose(r.err)))
	}
	if err := ctx.Err(); err != nil && errors.Is(err, context.Canceled) {
		return err
	}
	return &cli.UnreachableError{Err: fmt.Errorf("no broker reachable (%s); check %s (env %s)",
		strings.Join(failed, "; "), flag, env)}
}

// checkAdvertised dials the Kafka addresses the cluster advertises: clients
// send every request after the first to those, so an address that only
// resolves inside the brokers' network (a container name, 0.0.0.0) fails
// later in confusing ways. None reachable is an error; some is a warning.
func checkAdvertised(ctx context.Context, logger *slog.Logger, seeds []string, brokers []kmsg.MetadataResponseBroker) error {
	if len(brokers) == 0 {
		return nil
	}
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for _, b := range brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, DialTimeout)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(dctx, "tcp", addr)
			if err != nil {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("broker %d at %s: %s", b.NodeID, addr, Diagnose(err)))
				mu.Unlock()
				return
			}
			conn.Close()
		}()
	}
	wg.Wait()
	switch {
	case len(bad) == len(brokers):
		return &cli.UnreachableError{Err: fmt.Errorf(
			"%s answered, but the broker addresses it advertises are unreachable from here (%s): set each broker's --advertise to an address clients can reach",
			strings.Join(seeds, ","), strings.Join(bad, "; "))}
	case len(bad) > 0:
		logger.Warn("some advertised broker addresses are unreachable; requests to those brokers will fail",
			"unreachable", strings.Join(bad, "; "))
	}
	return nil
}

// Diagnose turns a dial error into its likely cause.
func Diagnose(err error) string {
	var dnsErr *net.DNSError
	msg := err.Error()
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve host %q: wrong name, or one that only resolves inside the brokers' network", dnsErr.Name)
	case strings.Contains(msg, "connection refused"):
		return "connection refused: nothing listens there (broker down, or wrong port)"
	case strings.Contains(msg, "no route to host"), strings.Contains(msg, "network is unreachable"):
		return "no route to host: wrong address, or the host is down"
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(msg, "i/o timeout"):
		return "no answer in time: wrong host, or a firewall drops the traffic"
	case strings.Contains(msg, "missing port"):
		return "missing port: give host:port"
	}
	return msg
}

// withDefaultPort adds port when addr has none, as kgo does for seeds.
func withDefaultPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
}

// kgoLogger sends franz-go's logs to slog at debug level: the client logs
// retries and connection errors that the CLI reports itself, more plainly.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	k.l.Debug(msg, append([]any{"kgo_level", level.String()}, keyvals...)...)
}

// CommandAdmin connects an admin command to the cluster named by its global
// flags. The returned context bounds the command's requests by timeout; the
// caller closes the client and calls cancel.
func CommandAdmin(cmd *cobra.Command, c *cli.Common, timeout time.Duration) (*kadm.Client, context.Context, context.CancelFunc, error) {
	ctx, stop := c.Context(cmd.Context())
	brokers, err := c.Cluster.Brokers()
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	adm, err := AdminClient(ctx, c.Logger, brokers)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	adm.SetTimeoutMillis(int32(timeout / time.Millisecond))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return adm, ctx, func() { cancel(); stop() }, nil
}
