package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/barge-broker/barge/cmd/barge/e2e/harness"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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

// TestWipedLeaderRejoinsAsNewReplica, with real processes: the leader of a
// replicated partition is killed and restarted at once, before the failure
// detector fences it, on an empty data directory with its old id and
// ports. It must not lead its partition with the empty log it has now: the
// controller registers it with its new directory id, which moves the
// leadership and takes it out of the ISR, and it comes back as a follower
// that copies the log. Every record acknowledged before and after is read
// back in order, the three replicas' segment files end up identical, and
// the Raft quorum has its three voters, all reachable.
func TestWipedLeaderRejoinsAsNewReplica(t *testing.T) {
	const topic = "wiped"
	brokers := harness.StartCluster(t, 3, harness.Options{ExtraArgs: replicationArgs})
	ctx := harness.Context(t, 3*time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFullISR(ctx, t, adm, topic)
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatalf("produce record %d: %v", i, err)
			}
		}
	}
	produce(0, 200)
	leader := func() int32 {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return md.Topics[topic].Partitions[0].Leader
	}
	victim := brokers[leader()]
	oldDir := directoryOf(t, brokers, victim.ID)

	victim.Kill()
	if err := os.RemoveAll(victim.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(victim.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim.Restart()
	if dir := directoryOf(t, brokers, victim.ID); dir == oldDir {
		t.Fatalf("broker %d still registered with directory %s", victim.ID, dir)
	}
	produce(200, 400)
	waitFullISR(ctx, t, adm, topic)
	produce(400, 500)

	consumer, err := kgo.NewClient(kgo.SeedBrokers(harness.Seeds(brokers...)...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	next := 0
	for next < 500 {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 500 records: %v", next, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != strconv.Itoa(next) || r.Offset != int64(next) {
				t.Fatalf("record at offset %d has key %s, want offset %d key %d", r.Offset, r.Key, next, next)
			}
			next++
		})
	}
	dir := topic + "-0"
	brokers[0].WaitFor(30*time.Second, "identical segment files of "+dir, func() bool {
		a := readSegments(t, filepath.Join(brokers[0].DataDir, dir))
		return sameFiles(a, readSegments(t, filepath.Join(brokers[1].DataDir, dir))) &&
			sameFiles(a, readSegments(t, filepath.Join(brokers[2].DataDir, dir)))
	})
	var quorum struct {
		Voters []struct {
			ID        int  `json:"id"`
			Reachable bool `json:"reachable"`
		} `json:"voters"`
	}
	victim.WaitFor(30*time.Second, "three reachable voters", func() bool {
		if victim.GetJSON("/v1/cluster/quorum", &quorum) != nil || len(quorum.Voters) != 3 {
			return false
		}
		for _, v := range quorum.Voters {
			if !v.Reachable {
				return false
			}
		}
		return true
	})
	if !strings.Contains(victim.Log(), "broker ready") {
		t.Fatalf("the wiped broker never got ready:\n%s", harness.Tail([]byte(victim.Log()), 40))
	}
}

// directoryOf waits until every running broker agrees on broker id's
// directory id and returns it.
func directoryOf(t *testing.T, brokers []*harness.Broker, id int) string {
	t.Helper()
	var dir string
	brokers[0].WaitFor(30*time.Second, fmt.Sprintf("one directory id of broker %d", id), func() bool {
		dir = ""
		for _, b := range brokers {
			var v clusterView
			if b.GetJSON("/v1/cluster", &v) != nil {
				return false
			}
			for _, br := range v.Brokers {
				if br.ID != id {
					continue
				}
				if br.Fenced || br.DirectoryID == "" || (dir != "" && dir != br.DirectoryID) {
					return false
				}
				dir = br.DirectoryID
			}
		}
		return dir != ""
	})
	return dir
}
