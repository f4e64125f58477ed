package peer

import (
	"os"
	"testing"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
