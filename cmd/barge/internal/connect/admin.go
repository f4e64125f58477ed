package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// AdminTimeout bounds one request to one admin address.
const AdminTimeout = 3 * time.Second

// AdminAPI is a client of the brokers' HTTP admin API (their --http
// listener: /v1/cluster/health, /v1/cluster/quorum, ...). Any broker
// answers for the cluster, so a request goes to the addresses in order
// until one answers. Safe for concurrent use.
type AdminAPI struct {
	addrs []string
	hc    *http.Client
}

// NewAdminAPI returns a client of addrs (host:port, or http:// URLs).
func NewAdminAPI(addrs []string) *AdminAPI {
	return &AdminAPI{addrs: addrs, hc: &http.Client{Timeout: AdminTimeout}}
}

// GetJSON fetches path and decodes the JSON answer into v, from the first
// address that answers. It returns that address. When none answers the
// error is a *cli.UnreachableError naming each address and its likely
// cause; a non-200 answer is a *StatusError (not retried elsewhere: every
// broker would say the same).
func (a *AdminAPI) GetJSON(ctx context.Context, path string, v any) (string, error) {
	var failed []string
	for _, addr := range a.addrs {
		err := a.get(ctx, addr, path, v)
		if err == nil {
			return addr, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var se *StatusError
		if errors.As(err, &se) {
			return addr, err
		}
		failed = append(failed, fmt.Sprintf("%s: %s", addr, Diagnose(err)))
	}
	return "", &cli.UnreachableError{Err: fmt.Errorf("no admin API reachable (%s); check --admin (env %s): it takes the brokers' --http addresses",
		strings.Join(failed, "; "), cli.AdminEnv)}
}

func (a *AdminAPI) get(ctx context.Context, addr, path string, v any) error {
	base := addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + withDefaultPort(base, 9644)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &StatusError{Addr: addr, Path: path, Status: resp.StatusCode, Body: string(body)}
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("admin API at %s: decoding %s: %w", addr, path, err)
	}
	return nil
}
