package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-broker/barge/internal/testutil"
)

// testLogger routes logs to t.Log until the test ends; later lines (from
// library goroutines still winding down) are dropped instead of panicking.
// BARGE_TEST_LOG=debug|info|warn picks the level (default info).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("BARGE_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	}
	w := &tbWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs after the nodes' Close
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tbWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// waitFor polls cond until it reports true or timeout passes, then fails
// the test with cond's last explanation. It returns how long it waited.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return testutil.WaitFor(t, timeout, what, cond)
}

// testCluster is a set of real nodes on loopback.
type testCluster struct {
	t     *testing.T
	log   *slog.Logger
	nodes map[int32]*Node
	cfgs  map[int32]Config
}

func newTestCluster(t *testing.T) *testCluster {
	tc := &testCluster{t: t, log: testLogger(t), nodes: map[int32]*Node{}, cfgs: map[int32]Config{}}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			_ = n.halt()
		}
	})
	return tc
}

// config returns a loopback config for broker id with free ports.
func (tc *testCluster) config(id int32, expect int, join []string) Config {
	return Config{
		ID:              id,
		DataDir:         tc.t.TempDir(),
		KafkaAddr:       fmt.Sprintf("127.0.0.1:%d", 19000+id),
		RaftAddr:        "127.0.0.1:0",
		GossipAddr:      "127.0.0.1:0",
		HTTPAddr:        fmt.Sprintf("127.0.0.1:%d", 29000+id),
		Join:            join,
		BootstrapExpect: expect,
		Timeouts:        LoopbackTimeouts(),
		Logger:          tc.log,
	}
}

// start creates and starts a node from cfg and records it (and the
// addresses it bound, so a restart reuses them).
func (tc *testCluster) start(cfg Config) *Node {
	tc.t.Helper()
	n, err := New(cfg)
	if err != nil {
		tc.t.Fatalf("New broker %d: %v", cfg.ID, err)
	}
	if err := n.Start(); err != nil {
		tc.t.Fatalf("Start broker %d: %v", cfg.ID, err)
	}
	// Halted by a cleanup registered after its data directory's (cleanups
	// run last-in first-out), so the directory is removed only once
	// nothing writes to it; halting twice is harmless.
	tc.t.Cleanup(func() { _ = n.halt() })
	cfg.RaftAddr, cfg.GossipAddr = n.RaftAddr(), n.GossipAddr()
	tc.nodes[cfg.ID] = n
	tc.cfgs[cfg.ID] = cfg
	return n
}

// kill stops a node like a crash and forgets it.
func (tc *testCluster) kill(id int32) {
	tc.t.Helper()
	if err := tc.nodes[id].halt(); err != nil {
		tc.t.Logf("halt broker %d: %v", id, err)
	}
	delete(tc.nodes, id)
}

// restart starts a killed broker again from its data directory and
// addresses.
func (tc *testCluster) restart(id int32) *Node {
	tc.t.Helper()
	return tc.start(tc.cfgs[id])
}

// controller returns the node that is the controller, if all live nodes
// agree on one.
func (tc *testCluster) controller() (*Node, string) {
	var ids []int32
	for _, n := range tc.nodes {
		c, ok := n.Controller()
		if !ok {
			return nil, fmt.Sprintf("broker %d knows no controller", n.ID())
		}
		ids = append(ids, c)
	}
	for _, c := range ids {
		if c != ids[0] {
			return nil, fmt.Sprintf("controllers disagree: %v", ids)
		}
	}
	n, ok := tc.nodes[ids[0]]
	if !ok || !n.IsController() {
		return nil, fmt.Sprintf("controller %d is not live or not leading", ids[0])
	}
	return n, ""
}

func (tc *testCluster) waitController(timeout time.Duration) *Node {
	tc.t.Helper()
	var ctrl *Node
	waitFor(tc.t, timeout, "one controller", func() (bool, string) {
		var why string
		ctrl, why = tc.controller()
		return ctrl != nil, why
	})
	return ctrl
}

// waitSameImage waits until every live node holds an equal image with
// n live brokers, and returns it.
func (tc *testCluster) waitSameImage(timeout time.Duration, liveBrokers int) *Image {
	tc.t.Helper()
	var img *Image
	waitFor(tc.t, timeout, "identical images", func() (bool, string) {
		img = nil
		for _, n := range tc.nodes {
			cur := n.Image()
			if len(cur.LiveBrokers()) != liveBrokers {
				return false, fmt.Sprintf("broker %d sees %d live brokers, want %d", n.ID(), len(cur.LiveBrokers()), liveBrokers)
			}
			if img == nil {
				img = cur
			} else if !img.Equal(cur) {
				return false, fmt.Sprintf("broker %d has %v, another %v", n.ID(), cur, img)
			}
		}
		return true, ""
	})
	return img
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// threeBrokers starts brokers 1, 2 and 3 with --bootstrap-expect 3 and waits
// for one controller and identical images.
func threeBrokers(t *testing.T) *testCluster {
	tc := newTestCluster(t)
	first := tc.start(tc.config(1, 3, nil))
	seeds := []string{first.GossipAddr()}
	tc.start(tc.config(2, 3, seeds))
	tc.start(tc.config(3, 3, seeds))
	tc.waitController(20 * time.Second)
	tc.waitSameImage(20*time.Second, 3)
	return tc
}
