package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// waitGossipClusterID waits until every node of tc gossips the cluster id
// of its image, so that a foreign cluster's brokers can be told apart.
func waitGossipClusterID(tc *testCluster, timeout time.Duration) string {
	tc.t.Helper()
	var id string
	waitFor(tc.t, timeout, "cluster id in gossip metadata", func() (bool, string) {
		for _, n := range tc.nodes {
			id = n.Image().ClusterID()
			if id == "" || n.members.clusterID() != id {
				return false, fmt.Sprintf("broker %d: image %q gossip %q", n.ID(), id, n.members.clusterID())
			}
		}
		return true, ""
	})
	return id
}

// holdFor checks cond every 20 ms for d and fails the test the first time
// it does not hold.
func holdFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok, why := cond(); !ok {
			t.Fatalf("%s stopped holding: %s", what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func brokerIDs(img *Image) []int32 {
	var ids []int32
	for _, b := range img.Brokers() {
		ids = append(ids, b.ID)
	}
	return ids
}

// TestSecondClusterStaysApart: a broker started with --bootstrap-expect 1
// and the gossip seeds of a three-broker cluster that has just formed
// bootstraps a cluster of its own; the two never merge: each keeps its controller, its
// broker list and its Raft configuration, and neither gossips with the
// other.
func TestSecondClusterStaysApart(t *testing.T) {
	t.Parallel()
	a := threeBrokers(t)
	// At once: the brokers of A may not gossip their cluster id yet, and
	// their controller must still not take broker 4 in.
	b := newTestCluster(t)
	lone := b.start(b.config(4, 1, []string{a.nodes[1].GossipAddr(), a.nodes[2].GossipAddr()}))
	idA := waitGossipClusterID(a, 10*time.Second)
	b.waitController(10 * time.Second)
	b.waitSameImage(10*time.Second, 1)
	idB := waitGossipClusterID(b, 10*time.Second)
	if idB == idA {
		t.Fatalf("both clusters have id %s", idA)
	}

	// Longer than a gossip push/pull period and many reconciliations.
	hold := 2*LoopbackTimeouts().GossipPushPull + time.Second
	holdFor(t, hold, "two separate clusters", func() (bool, string) {
		for _, n := range a.nodes {
			if ids := brokerIDs(n.Image()); !slices.Equal(ids, []int32{1, 2, 3}) {
				return false, fmt.Sprintf("cluster A broker %d registers brokers %v", n.ID(), ids)
			}
			for _, m := range n.Members() {
				if m.ID == 4 {
					return false, fmt.Sprintf("cluster A broker %d gossips with broker 4", n.ID())
				}
			}
			// A loaded machine may re-elect within A; its controller
			// stays one of A's brokers.
			if c, ok := n.Controller(); ok && (c < 1 || c > 3) {
				return false, fmt.Sprintf("cluster A broker %d has controller %d", n.ID(), c)
			}
			if servers, err := n.Servers(); err != nil || len(servers) != 3 {
				return false, fmt.Sprintf("cluster A broker %d: raft servers %+v %v", n.ID(), servers, err)
			}
		}
		if ids := brokerIDs(lone.Image()); !slices.Equal(ids, []int32{4}) {
			return false, fmt.Sprintf("cluster B registers brokers %v", ids)
		}
		if !lone.IsController() || len(lone.Members()) != 1 {
			return false, fmt.Sprintf("cluster B: controller %v, members %+v", lone.IsController(), lone.Members())
		}
		if servers, err := lone.Servers(); err != nil || len(servers) != 1 {
			return false, fmt.Sprintf("cluster B raft servers %+v %v", servers, err)
		}
		return true, ""
	})
	if a.nodes[1].Image().ClusterID() != idA || lone.Image().ClusterID() != idB {
		t.Fatal("a cluster id changed")
	}
}

// TestWipedDataDirectoryIsANewReplica: broker 2, the last ISR member of a
// partition, dies and comes back with the same id and an empty data
// directory. The controller registers it with its new directory id but
// does not elect it from the stale ISR (the partition stays offline, 2 out
// of its ISR), and replaces it in the Raft configuration (removed and added
// back, a configuration change), after which the quorum has three voters
// again and commits through the wiped broker.
func TestWipedDataDirectoryIsANewReplica(t *testing.T) {
	t.Parallel()
	tc := threeBrokers(t)
	ctx := ctxTimeout(t, 90*time.Second)
	if _, err := tc.nodes[1].Submit(ctx, NewCommand(CreateTopic{Name: "t", Assignment: [][]int32{{2, 1}}})); err != nil {
		t.Fatal(err)
	}
	partition := func(n *Node) Partition {
		tp, ok := n.Image().Topic("t")
		if !ok {
			return Partition{Leader: -2}
		}
		return tp.Partitions[0]
	}
	// Leave broker 2 the only ISR member: kill 1, then bring it back (a
	// cluster test has no replication to add it back to the ISR).
	tc.kill(1)
	waitFor(t, 20*time.Second, "isr [2]", func() (bool, string) {
		p := partition(tc.nodes[3])
		return slices.Equal(p.ISR, []int32{2}), fmt.Sprintf("%+v", p)
	})
	tc.restart(1)
	tc.waitController(20 * time.Second)
	tc.waitSameImage(20*time.Second, 3)
	oldDir := tc.nodes[2].DirectoryID()

	tc.kill(2)
	waitFor(t, 20*time.Second, "partition offline with isr [2]", func() (bool, string) {
		p := partition(tc.nodes[3])
		return p.Leader == NoLeader && slices.Equal(p.ISR, []int32{2}), fmt.Sprintf("%+v", p)
	})
	ctrl := tc.waitController(20 * time.Second)
	removedAfter := func(n *Node, from uint64) bool { return removedAfter(n, 2, from) }
	before := ctrl.raft.LastIndex()

	cfg := tc.cfgs[2]
	cfg.DataDir = t.TempDir() // wiped: same id and addresses, nothing on disk
	wiped := tc.start(cfg)
	if wiped.DirectoryID() == oldDir || wiped.DirectoryID() == "" {
		t.Fatalf("directory id %q after the wipe, %q before", wiped.DirectoryID(), oldDir)
	}
	img := tc.waitSameImage(30*time.Second, 3)
	waitFor(t, 30*time.Second, "broker 2 registered with its new directory", func() (bool, string) {
		img = ctrl.Image()
		b, _ := img.Broker(2)
		return !b.Fenced && b.DirectoryID == wiped.DirectoryID(), fmt.Sprintf("%+v", b)
	})
	// A few reconciliations later it still leads nothing and is in no ISR.
	holdFor(t, time.Second, "wiped broker not elected", func() (bool, string) {
		for _, n := range tc.nodes {
			p := partition(n)
			if p.Leader == 2 || slices.Contains(p.ISR, 2) {
				return false, fmt.Sprintf("broker %d sees %+v", n.ID(), p)
			}
		}
		return true, ""
	})

	waitFor(t, 30*time.Second, "three voters after a configuration change", func() (bool, string) {
		ctrl = tc.waitController(20 * time.Second)
		f := ctrl.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return false, err.Error()
		}
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		return voters == 3 && removedAfter(ctrl, before),
			fmt.Sprintf("servers %+v; broker 2 removed after index %d: %v", f.Configuration().Servers, before, removedAfter(ctrl, before))
	})
	res, err := wiped.Submit(ctx, NewCommand(CreateTopic{Name: "after", NumPartitions: 1, ReplicationFactor: 3}))
	if err != nil {
		t.Fatalf("commit through the wiped broker: %v", err)
	}
	if tp, ok := res.Image.Topic("after"); !ok || len(tp.Partitions[0].ISR) != 3 {
		t.Fatalf("topic after: %+v", tp)
	}
}

// removedAfter reports whether n's Raft log holds, after index from, a
// configuration without broker id: its removal.
func removedAfter(n *Node, id int32, from uint64) bool {
	last, _ := n.store.LastIndex()
	for i := from + 1; i <= last; i++ {
		var l raft.Log
		if n.store.GetLog(i, &l) != nil || l.Type != raft.LogConfiguration {
			continue
		}
		c := raft.DecodeConfiguration(l.Data)
		if !slices.ContainsFunc(c.Servers, func(s raft.Server) bool { return s.ID == raftID(id) }) {
			return true
		}
	}
	return false
}

// TestWipedVoterReplacedOnceQuorumAllows: with one voter dead, another
// comes back wiped. Removing it would leave the controller and the dead
// voter with one live member, so the controller keeps it in the
// configuration (the cluster still commits) but does not register it with
// its new directory: it stays fenced. Once the dead voter is back it takes
// the wiped one out of the configuration, adds it again and registers it.
// (The controller stays up throughout: a new election would need the wiped
// voter's vote, which is the vote it must not give.)
func TestWipedVoterReplacedOnceQuorumAllows(t *testing.T) {
	t.Parallel()
	tc := threeBrokers(t)
	ctrl := tc.waitController(20 * time.Second)
	var others []int32
	for id := range tc.nodes {
		if id != ctrl.ID() {
			others = append(others, id)
		}
	}
	dead, wipedID := others[0], others[1]
	tc.kill(dead)
	tc.kill(wipedID)
	cfg := tc.cfgs[wipedID]
	cfg.DataDir = t.TempDir()
	wiped := tc.start(cfg)
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := wiped.Submit(ctx, NewCommand(CreateTopic{Name: "while-short", NumPartitions: 1, ReplicationFactor: 1})); err != nil {
		t.Fatalf("commit with the controller and the wiped voter: %v", err)
	}
	holdFor(t, time.Second, "the wiped voter kept and unregistered", func() (bool, string) {
		b, _ := ctrl.Image().Broker(wipedID)
		if b.DirectoryID == wiped.DirectoryID() || removedAfter(ctrl, wipedID, 0) {
			return false, fmt.Sprintf("registered %+v, removed %v", b, removedAfter(ctrl, wipedID, 0))
		}
		return true, ""
	})
	waitFor(t, 20*time.Second, "the wiped voter fenced", func() (bool, string) {
		b, _ := ctrl.Image().Broker(wipedID)
		return b.Fenced, fmt.Sprintf("%+v", b)
	})
	before := ctrl.raft.LastIndex()
	tc.restart(dead)
	waitFor(t, 30*time.Second, "the wiped broker removed, added back and registered", func() (bool, string) {
		ctrl = tc.waitController(20 * time.Second)
		servers, err := ctrl.Servers()
		voters := 0
		for _, s := range servers {
			if s.IsVoter {
				voters++
			}
		}
		b, _ := ctrl.Image().Broker(wipedID)
		// The restarted broker too must be unfenced (caught up) before an
		// RF=3 topic can be placed.
		back, _ := ctrl.Image().Broker(dead)
		return err == nil && voters == 3 && removedAfter(ctrl, wipedID, before) && !b.Fenced && b.DirectoryID == wiped.DirectoryID() && !back.Fenced,
			fmt.Sprintf("servers %+v %v; broker %+v; restarted %+v", servers, err, b, back)
	})
	if _, err := wiped.Submit(ctx, NewCommand(CreateTopic{Name: "after", NumPartitions: 1, ReplicationFactor: 3})); err != nil {
		t.Fatalf("commit after the replacement: %v", err)
	}
}

// TestMetaPropertiesMismatchRefusesStart: a lone broker writes its identity
// (broker id, directory id, cluster id) to meta.properties; a restart on a
// meta.properties of another broker id or another cluster id fails with
// ErrIdentityMismatch naming the file; with its own file it starts again.
func TestMetaPropertiesMismatchRefusesStart(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	n := tc.start(tc.config(0, 0, nil))
	tc.waitController(10 * time.Second)
	path := filepath.Join(tc.cfgs[0].DataDir, metaPropertiesFile)
	var orig []byte
	waitFor(t, 10*time.Second, "cluster id in meta.properties", func() (bool, string) {
		orig, _ = os.ReadFile(path)
		id := n.Image().ClusterID()
		return id != "" && strings.Contains(string(orig), "cluster.id="+id+"\n"), string(orig)
	})
	if !strings.Contains(string(orig), "broker.id=0\n") || !strings.Contains(string(orig), "directory.id="+n.DirectoryID()+"\n") {
		t.Fatalf("meta.properties:\n%s", orig)
	}
	clusterID := n.Image().ClusterID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	delete(tc.nodes, 0)

	for _, c := range []struct {
		name, from, to, want string
	}{
		{"other broker id", "broker.id=0", "broker.id=5", "belongs to broker 5"},
		{"other cluster id", "cluster.id=" + clusterID, "cluster.id=another-cluster", "names cluster another-cluster"},
	} {
		if err := os.WriteFile(path, []byte(strings.Replace(string(orig), c.from, c.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		node, err := New(tc.cfgs[0])
		if err != nil {
			t.Fatal(err)
		}
		err = node.Start()
		_ = node.Close()
		if !errors.Is(err, ErrIdentityMismatch) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: start returned %v, want ErrIdentityMismatch saying %q and naming %s", c.name, err, c.want, path)
		}
		t.Logf("%s: %v", c.name, err)
	}
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	n = tc.restart(0)
	if n.DirectoryID() == "" || !strings.Contains(string(orig), n.DirectoryID()) {
		t.Fatalf("directory id %q changed on restart", n.DirectoryID())
	}
	tc.waitController(10 * time.Second)
}

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     dirIdentity
		err      string
	}{
		{"full", "# c\nversion=1\nbroker.id=3\ndirectory.id=d\ncluster.id=c\n", dirIdentity{3, "d", "c"}, ""},
		{"no cluster yet", "version=1\nbroker.id=0\ndirectory.id=d\n", dirIdentity{0, "d", ""}, ""},
		{"unknown key kept out", "version=1\nbroker.id=0\ndirectory.id=d\nfuture=x\n", dirIdentity{0, "d", ""}, ""},
		{"no version", "broker.id=0\ndirectory.id=d\n", dirIdentity{}, "missing version"},
		{"newer version", "version=2\nbroker.id=0\ndirectory.id=d\n", dirIdentity{}, "version"},
		{"no directory", "version=1\nbroker.id=0\ndirectory.id=\n", dirIdentity{}, "missing directory.id"},
		{"bad broker id", "version=1\nbroker.id=-1\ndirectory.id=d\n", dirIdentity{}, "broker.id"},
		{"not key=value", "version=1\nbroker.id 0\n", dirIdentity{}, "line 2"},
		{"empty", "", dirIdentity{}, "missing"},
	} {
		got, err := parseIdentity([]byte(c.in))
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s: got %+v, %v; want %+v", c.name, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.err)
		}
	}
}
