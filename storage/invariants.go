package storage

import "github.com/barge-broker/barge/internal/invariants"

// invariantBroken reports a broken internal invariant: a bug in this package,
// not bad input (see internal/invariants: it panics in race builds, which
// `make test` always uses; in production the caller passes the error up,
// which takes the log offline rather than corrupt it).
func invariantBroken(format string, args ...any) error {
	return invariants.Broken("storage", format, args...)
}
