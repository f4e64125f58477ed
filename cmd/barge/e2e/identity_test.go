package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
)

// clusterView is the part of /v1/cluster these tests read.
type clusterView struct {
	ClusterID    string `json:"cluster_id"`
	ControllerID int    `json:"controller_id"`
	Brokers      []struct {
		ID          int    `json:"id"`
		Fenced      bool   `json:"fenced"`
		DirectoryID string `json:"directory_id"`
	} `json:"brokers"`
}

func (v clusterView) ids() []int {
	var ids []int
	for _, b := range v.Brokers {
		ids = append(ids, b.ID)
	}
	return ids
}

// TestIdentityAndSecretProcesses, with real barge processes: three brokers
// with the same --cluster-secret form a cluster; a fourth, started with
// --bootstrap-expect 1, their secret and their seeds, runs a cluster of its
// own that the first never registers; and that broker, restarted on a data
// directory whose meta.properties names another broker id, exits 1 with an
// error naming the file.
func TestIdentityAndSecretProcesses(t *testing.T) {
	const secret = "e2e-cluster-secret-0123456789"
	a := harness.StartCluster(t, 3, harness.Options{ExtraArgs: []string{"--cluster-secret", secret}})
	var viewA clusterView
	if err := a[0].GetJSON("/v1/cluster", &viewA); err != nil {
		t.Fatal(err)
	}
	if viewA.ClusterID == "" || !slices.Equal(viewA.ids(), []int{0, 1, 2}) {
		t.Fatalf("cluster A: %+v", viewA)
	}
	for _, b := range viewA.Brokers {
		if b.DirectoryID == "" {
			t.Fatalf("broker %d registered without a directory id: %+v", b.ID, viewA)
		}
	}

	var seeds []string
	for _, b := range a {
		seeds = append(seeds, b.Gossip)
	}
	lone := harness.StartBroker(t, harness.Options{ExtraArgs: []string{
		"--cluster-secret", secret, "--id", "7", "--bootstrap-expect", "1", "--join", strings.Join(seeds, ","),
	}})
	var viewB clusterView
	lone.WaitFor(30*time.Second, "the lone broker's own cluster", func() bool {
		return lone.GetJSON("/v1/cluster", &viewB) == nil && viewB.ControllerID == 7 && viewB.ClusterID != ""
	})
	if viewB.ClusterID == viewA.ClusterID {
		t.Fatalf("both clusters have id %s", viewA.ClusterID)
	}
	// Longer than the fast gossip push/pull period (2 s), twice.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, b := range a {
			var v clusterView
			if err := b.GetJSON("/v1/cluster", &v); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(v.ids(), []int{0, 1, 2}) || v.ClusterID != viewA.ClusterID || v.ControllerID != viewA.ControllerID {
				t.Fatalf("cluster A changed: %+v", v)
			}
		}
		var v clusterView
		if err := lone.GetJSON("/v1/cluster", &v); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.ids(), []int{7}) || v.ControllerID != 7 {
			t.Fatalf("cluster B changed: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(lone.Log(), "refusing gossip merge") {
		t.Errorf("the lone broker's log does not say it refused the merge:\n%s", harness.Tail([]byte(lone.Log()), 40))
	}

	if err := lone.Stop(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(lone.DataDir, "meta.properties")
	meta, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(meta, []byte("broker.id=7\n")) || !bytes.Contains(meta, []byte("cluster.id="+viewB.ClusterID+"\n")) {
		t.Fatalf("meta.properties:\n%s", meta)
	}
	if err := os.WriteFile(path, bytes.Replace(meta, []byte("broker.id=7"), []byte("broker.id=1"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harness.Binary(t), "serve", "--id", "7", "--data", lone.DataDir,
		"--kafka", "127.0.0.1:0", "--http", "", "--raft", "127.0.0.1:0", "--gossip", "127.0.0.1:0",
		"--cluster-secret", secret, "--fast-failure-detection")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("a broker on another broker's data directory kept running:\n%s", stderr.String())
	}
	code := -1
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	}
	want := fmt.Sprintf("%s says the data directory belongs to broker 1, this broker is --id 7", path)
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit %d (%v), want 1 with %q in:\n%s", code, err, want, stderr.String())
	}
}
