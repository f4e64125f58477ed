// Package testutil holds what Barge's tests share: bounded waiting for a
// condition, and seeded randomness that prints the line that reruns a
// failure with the same seed. It is imported by tests only.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the environment variable that fixes a test's seed.
const SeedEnv = "BARGE_SEED"

// WaitFor polls cond until it reports true, backing off from 1 ms to 50 ms
// between polls, or fails the test after d with cond's last explanation.
// It returns how long it waited.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	pause := time.Millisecond
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if why != "" {
				why = ": " + why
			}
			t.Fatalf("timed out after %v waiting for %s%s", d, what, why)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Wait is WaitFor for a condition without an explanation.
func Wait(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return WaitFor(t, d, what, func() (bool, string) { return cond(), "" })
}

// Seed returns the seed of a test's randomness: $BARGE_SEED when set, else
// the clock. It logs the seed, and when the test fails, the command that
// reruns it with the same seed.
func Seed(t testing.TB) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv(SeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
	}
	t.Logf("seed %d", seed)
	pkg := callerPackage()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("repro: %s=%d go test -count=1 -run '^%s$' %s", SeedEnv, seed, t.Name(), pkg)
		}
	})
	return seed
}

// callerPackage is the directory of Seed's caller relative to the module
// root ("./storage"), or "." when it cannot tell.
func callerPackage() string {
	_, file, _, ok := runtime.Caller(2)
	if !ok {
		return "."
	}
	dir := filepath.Dir(file)
	for root := dir; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, dir)
			if err != nil {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "."
		}
		root = parent
	}
}
