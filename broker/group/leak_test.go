package group

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// coordinator's shard timers and loaders must stop with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
