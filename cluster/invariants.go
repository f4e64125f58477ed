package cluster

import "fmt"

// assertf reports a broken invariant: a bug, never an operating error. In
// race-enabled builds (tests, `make test`) it panics; otherwise the caller
// handles the failure as an error.
func assertf(ok bool, format string, args ...any) {
	if !ok && raceEnabled {
		panic(fmt.Sprintf("cluster: invariant violated: "+format, args...))
	}
}
