package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// healthcheckHTTPEnv is serve's --http variable; healthcheck reads it so
// that a container's HEALTHCHECK needs no flags of its own.
var healthcheckHTTPEnv = envName("http")

const healthcheckLong = `Probe the broker on this machine: GET /readyz of its HTTP listener, and
exit 0 if it is ready (it has loaded the metadata and serves its
partitions), 1 if it answers not ready, 3 if it does not answer.

It is meant for a container's HEALTHCHECK, where no curl exists: the
address is --http, else ` + "BARGE_HTTP" + ` (the same variable barge serve reads),
else 127.0.0.1:9644; a wildcard host (0.0.0.0, [::]) is probed on loopback.

It judges this broker only; ` + "`barge cluster health`" + ` judges the cluster.`

// newHealthcheckCommand builds `barge healthcheck`.
func newHealthcheckCommand(deps *cli.Deps) *cobra.Command {
	var addr string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the broker on this machine is ready (for container health checks)",
		Long:  healthcheckLong,
		Example: `  # Dockerfile
  HEALTHCHECK CMD ["/barge", "healthcheck"]

  barge healthcheck --http 127.0.0.1:9644 && echo ready`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("http") {
				if v, ok := deps.LookupEnv(healthcheckHTTPEnv); ok && v != "" {
					addr = v
				}
			}
			if timeout <= 0 {
				return cli.Usagef("--timeout must be positive")
			}
			probe, err := loopbackFor(addr)
			if err != nil {
				return cli.Usagef("--http %q: %w", addr, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return healthcheck(ctx, deps, probe)
		},
	}
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:9644", "the broker's HTTP address (default: "+healthcheckHTTPEnv+", else 127.0.0.1:9644)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up on an answer after this long")
	return cmd
}

// loopbackFor is the address to probe a listener bound at addr on.
func loopbackFor(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func healthcheck(ctx context.Context, deps *cli.Deps, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &cli.UnreachableError{Err: fmt.Errorf("healthcheck: GET http://%s/readyz: %w", addr, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return errors.New("healthcheck: not ready: " + resp.Status + " " + msg)
	}
	fmt.Fprintln(deps.Stdout, "ready")
	return nil
}
