package connect

import (
	"fmt"
	"net/http"
	"strings"
)

// Unreachable clusters are reported as *cli.UnreachableError (exit code 3)
// by Kafka and AdminAPI.GetJSON; Diagnose names the likely cause of a dial
// error.

// StatusError is a non-200 answer of the admin API.
type StatusError struct {
	Addr, Path string
	Status     int
	Body       string
}

func (e *StatusError) Error() string {
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("admin API at %s has no %s: is it a barge broker's --http address, and a barge version that serves it?", e.Addr, e.Path)
	}
	return fmt.Sprintf("admin API at %s: GET %s: %d %s", e.Addr, e.Path, e.Status, strings.TrimSpace(e.Body))
}
