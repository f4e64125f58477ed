package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/barge-broker/barge/cmd/barge/internal/cli"
)

// RefusedError is a change the cluster refused (an admin API answer of 4xx
// other than 404, or 503): its text is the broker's reason.
type RefusedError struct {
	Status int
	Reason string
}

func (e *RefusedError) Error() string { return e.Reason }

// Send makes a change (method POST or DELETE) at path and decodes the JSON
// answer into v, at the first address that answers. A refusal is a
// *RefusedError with the broker's reason and is not tried elsewhere: every
// broker forwards to the same controller.
func (a *AdminAPI) Send(ctx context.Context, method, path string, v any) error {
	var failed []string
	for _, addr := range a.addrs {
		err := a.send(ctx, addr, method, path, v)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *RefusedError
		var se *StatusError
		if errors.As(err, &re) || errors.As(err, &se) {
			return err
		}
		failed = append(failed, fmt.Sprintf("%s: %s", addr, Diagnose(err)))
	}
	return &cli.UnreachableError{Err: fmt.Errorf("no admin API reachable (%s); check --admin (env %s): it takes the brokers' --http addresses",
		strings.Join(failed, "; "), cli.AdminEnv)}
}

func (a *AdminAPI) send(ctx context.Context, addr, method, path string, v any) error {
	base := addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + withDefaultPort(base, 9644)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("admin API at %s: decoding %s: %w", addr, path, err)
		}
		return nil
	case resp.StatusCode == http.StatusNotFound:
		return &StatusError{Addr: addr, Path: path, Status: resp.StatusCode, Body: string(body)}
	default:
		return &RefusedError{Status: resp.StatusCode, Reason: strings.TrimSpace(string(body))}
	}
}

// Without returns a client of the same addresses with addr moved last: a
// broker being decommissioned stops receiving the metadata once it left
// the Raft configuration, so the others answer for it.
func (a *AdminAPI) Without(addr string) *AdminAPI {
	var first, last []string
	for _, x := range a.addrs {
		if addr != "" && (x == addr || strings.TrimPrefix(x, "http://") == addr) {
			last = append(last, x)
		} else {
			first = append(first, x)
		}
	}
	return &AdminAPI{addrs: append(first, last...), hc: a.hc}
}
