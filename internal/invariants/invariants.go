// Package invariants is the one switch for Barge's internal consistency
// checks, in pebble's on/off style: Enabled is true in race-detector builds
// (what `make test` runs) and with the `invariants` build tag, false in
// release builds. With it on, a broken invariant panics so a test stops at
// the fault; with it off, the caller gets an error and handles it as an
// operating failure (storage takes the log offline rather than corrupt it).
package invariants

import "fmt"

// Broken reports a broken invariant of package pkg: a bug, never bad
// input. Callers test the condition themselves (the hot path pays no
// argument boxing) and call Broken only when it fails.
func Broken(pkg, format string, args ...any) error {
	err := fmt.Errorf(pkg+": invariant broken: "+format, args...)
	if Enabled {
		panic(err)
	}
	return err
}
