package storage

import "fmt"

// checkInvariant reports a broken internal invariant: a bug in this package,
// not bad input. Under the race detector (which `make test` always uses) it
// panics so tests stop at the fault; in production it returns an error the
// caller passes up, which takes the log offline rather than corrupt it.
func checkInvariant(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	err := fmt.Errorf("storage: invariant broken: "+format, args...)
	if invariantsPanic {
		panic(err)
	}
	return err
}
