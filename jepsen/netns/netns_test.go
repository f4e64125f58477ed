package netns

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// Three brokers in namespaces form a cluster that a client on the host
// reaches through the bridge; kill, restart, pause and isolate work; and
// teardown leaves nothing with the prefix behind.
func TestClusterLifecycle(t *testing.T) {
	if err := CheckPrereqs(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Setup(ctx, Config{Barge: harness.Binary(t), Nodes: 3, Dir: testDir(t), Args: []string{"--fast-failure-detection"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Teardown(); err != nil {
			t.Error(err)
		}
		if left, err := Leftovers(); err != nil || len(left) > 0 {
			t.Errorf("left behind: %v (%v)", left, err)
		}
	}()
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		if err := c.WaitReady(ctx, n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping through the bridge: %v", err)
	}
	n1 := c.Nodes[0]
	if err := c.Isolate(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if err := c.HealNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(n1); err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(n1); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(n1); err != nil {
		t.Fatal(err)
	}
	if n1.Running() {
		t.Fatal("n1 running after kill")
	}
	if err := c.Start(n1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, n1, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// testDir is a temporary directory whose broker logs are printed if the
// test fails.
func testDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			if b, err := os.ReadFile(l); err == nil {
				t.Logf("--- %s ---\n%s", l, harness.Tail(b, 40))
			}
		}
	})
	return dir
}
