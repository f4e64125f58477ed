package storage

import "fmt"

// invariantBroken reports a broken internal invariant: a bug in this package,
// not bad input. Callers test the condition themselves (so the hot path pays
// no argument boxing) and call this only when it fails. Under the race
// detector (which `make test` always uses) it panics so tests stop at the
// fault; in production it returns an error the caller passes up, which takes
// the log offline rather than corrupt it.
func invariantBroken(format string, args ...any) error {
	err := fmt.Errorf("storage: invariant broken: "+format, args...)
	if invariantsPanic {
		panic(err)
	}
	return err
}
