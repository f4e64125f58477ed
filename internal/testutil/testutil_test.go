package testutil

import (
	"testing"
	"time"
)

func TestSeedFromEnvironment(t *testing.T) {
	t.Setenv(SeedEnv, "12345")
	if got := Seed(t); got != 12345 {
		t.Fatalf("Seed = %d with %s=12345", got, SeedEnv)
	}
}

func TestCallerPackage(t *testing.T) {
	if got := callerPackageOf(); got != "./internal/testutil" {
		t.Fatalf("caller package %q, want ./internal/testutil", got)
	}
}

// callerPackageOf calls callerPackage from one frame down, as Seed does.
func callerPackageOf() string { return callerPackage() }

func TestWaitForReturnsOnceTrue(t *testing.T) {
	n := 0
	if waited := Wait(t, 5*time.Second, "the third poll", func() bool { n++; return n == 3 }); waited > time.Second {
		t.Fatalf("waited %v for three polls", waited)
	}
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}
