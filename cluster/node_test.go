package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestSingleBrokerBootstrapAndRestart: a lone broker bootstraps itself,
// registers, refuses bad input through Submit with Kafka codes and an
// unchanged image, and after a restart from its data directory restores its
// image from the snapshot (at once) plus the log after it (once it leads).
func TestSingleBrokerBootstrapAndRestart(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	n := tc.start(tc.config(0, 0, nil))
	tc.waitController(10 * time.Second)
	waitFor(t, 10*time.Second, "broker registered", func() (bool, string) {
		img := n.Image()
		return len(img.LiveBrokers()) == 1 && img.ClusterID() != "", img.String()
	})
	ctx := ctxTimeout(t, 30*time.Second)
	res, err := n.Submit(ctx, NewCommand(CreateTopic{Name: "a", NumPartitions: 3, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "60000", "cleanup.policy": "compact"}}))
	if err != nil {
		t.Fatal(err)
	}
	if tp, ok := res.Image.Topic("a"); !ok || len(tp.Partitions) != 3 || tp.Partitions[2].Leader != 0 {
		t.Fatalf("topic a: %+v", tp)
	}

	before := n.Image()
	for _, bad := range []struct {
		cmd  Payload
		code int16
	}{
		{CreateTopic{Name: "a", NumPartitions: 1, ReplicationFactor: 1}, 36},
		{CreateTopic{Name: "b", NumPartitions: 1, ReplicationFactor: 2}, 38},
		{CreateTopic{Name: "b", NumPartitions: 0, ReplicationFactor: 1}, 37},
		{CreateTopic{Name: "b", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "x"}}, 40},
		{DeleteTopic{Name: "zzz"}, 3},
		{AlterConfigs{Topic: "zzz"}, 3},
		{FenceBroker{ID: 7}, 102},
	} {
		_, err := n.Submit(ctx, NewCommand(bad.cmd))
		if got := ErrorCode(err); got != bad.code {
			t.Fatalf("%T %+v: error %v has code %d, want %d", bad.cmd, bad.cmd, err, got, bad.code)
		}
	}
	if n.Image() != before {
		t.Fatal("refused commands changed the image")
	}

	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapIndex := n.Image().Index()
	for _, name := range []string{"b", "c"} {
		if _, err := n.Submit(ctx, NewCommand(CreateTopic{Name: name, NumPartitions: 2, ReplicationFactor: 1})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Submit(ctx, NewCommand(DeleteTopic{Name: "c"})); err != nil {
		t.Fatal(err)
	}
	want := n.Image()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(tc.cfgs[0].DataDir, "raft", "snapshots", "*")); len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	delete(tc.nodes, 0)

	n = tc.restart(0)
	if got := n.Image(); got.Index() < snapIndex || len(got.Topics()) == 0 {
		t.Fatalf("right after restart the image should come from the snapshot at %d: %v", snapIndex, got)
	}
	// The log after the snapshot is replayed once the broker leads again;
	// the new process then re-registers with a new broker epoch.
	oldBroker, _ := want.Broker(0)
	waitFor(t, 10*time.Second, "image replayed from the log", func() (bool, string) {
		img := n.Image()
		b, _ := img.Broker(0)
		return img.Index() > want.Index() && sameTopics(img, want) && img.ClusterID() == want.ClusterID() &&
				b.Epoch > oldBroker.Epoch && !b.Fenced,
			fmt.Sprintf("have %v %+v want %v", img, b, want)
	})
	if _, ok := n.Image().Topic("c"); ok {
		t.Fatal("deleted topic came back")
	}
	if _, err := n.Submit(ctx, NewCommand(CreateTopic{Name: "d", NumPartitions: 1, ReplicationFactor: 1})); err != nil {
		t.Fatalf("submit after restart: %v", err)
	}
}

// TestThreeBrokerClusterFailover: three brokers form a cluster through
// --bootstrap-expect 3; topics created through any broker reach every
// image; a stale AlterPartition is refused; killing the controller (no
// gossip goodbye) gets a new controller that fences it and moves its
// partitions' leadership to live ISR members with bumped epochs; the killed
// broker returns from its data directory unfenced, as a follower; with two
// brokers gone, Submit fails with NOT_CONTROLLER.
func TestThreeBrokerClusterFailover(t *testing.T) {
	t.Parallel()
	formed := time.Now()
	tc := threeBrokers(t)
	first := tc.nodes[1]
	t.Logf("cluster of 3 formed in %v", time.Since(formed).Round(time.Millisecond))
	servers, err := first.Servers()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if !s.IsVoter {
			t.Fatalf("bootstrap-expect 3 should give 3 voters: %+v", servers)
		}
	}
	if len(servers) != 3 {
		t.Fatalf("servers %+v", servers)
	}

	// Create through a broker that is not the controller (forwarding) and
	// through the controller.
	ctrl, _ := tc.controller()
	var other *Node
	for _, n := range tc.nodes {
		if n != ctrl {
			other = n
		}
	}
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := other.Submit(ctx, NewCommand(CreateTopic{Name: "orders", NumPartitions: 6, ReplicationFactor: 3})); err != nil {
		t.Fatalf("create through broker %d: %v", other.ID(), err)
	}
	if _, err := ctrl.Submit(ctx, NewCommand(CreateTopic{Name: "events", NumPartitions: 3, ReplicationFactor: 2})); err != nil {
		t.Fatalf("create through the controller: %v", err)
	}
	_, err = other.Submit(ctx, NewCommand(CreateTopic{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}))
	if !errors.Is(err, ErrTopicExists) || ErrorCode(err) != 36 {
		t.Fatalf("duplicate through forwarding: %v", err)
	}
	img := tc.waitSameImage(20*time.Second, 3)
	orders, ok := img.Topic("orders")
	if !ok {
		t.Fatal("orders missing")
	}
	leads := map[int32]int{}
	for _, p := range orders.Partitions {
		leads[p.Leader]++
	}
	if leads[1] != 2 || leads[2] != 2 || leads[3] != 2 {
		t.Fatalf("leaders of orders not balanced: %v", leads)
	}

	// Stale AlterPartition: the first shrink succeeds, its replay is stale.
	p0 := orders.Partitions[0]
	shrink := AlterPartition{Topic: "orders", Partition: 0, Leader: p0.Leader, LeaderEpoch: p0.LeaderEpoch,
		PartitionEpoch: p0.PartitionEpoch, ISR: p0.Replicas[:2]}
	if _, err := other.Submit(ctx, NewCommand(shrink)); err != nil {
		t.Fatalf("alter partition: %v", err)
	}
	_, err = other.Submit(ctx, NewCommand(shrink))
	if !errors.Is(err, ErrStalePartitionEpoch) || ErrorCode(err) != 95 {
		t.Fatalf("stale alter partition: %v", err)
	}
	stale := shrink
	stale.LeaderEpoch--
	if _, err := ctrl.Submit(ctx, NewCommand(stale)); !errors.Is(err, ErrStaleLeaderEpoch) {
		t.Fatalf("stale leader epoch: %v", err)
	}

	// Kill the controller without a goodbye.
	before := tc.waitSameImage(20*time.Second, 3)
	dead := ctrl.ID()
	tc.kill(dead)
	killed := time.Now()
	var newCtrl *Node
	failover := waitFor(t, 30*time.Second, "new controller fences the dead one and moves leadership", func() (bool, string) {
		c, why := tc.controller()
		if c == nil {
			return false, why
		}
		newCtrl = c
		for _, n := range tc.nodes {
			img := n.Image()
			if b, _ := img.Broker(dead); !b.Fenced {
				return false, fmt.Sprintf("broker %d still sees %d unfenced", n.ID(), dead)
			}
			for _, tp := range img.Topics() {
				for _, p := range tp.Partitions {
					if p.Leader == dead || slices.Contains(p.ISR, dead) && len(p.ISR) > 1 {
						return false, fmt.Sprintf("broker %d: %s-%d %+v", n.ID(), tp.Name, p.Index, p)
					}
				}
			}
		}
		return true, ""
	})
	t.Logf("failover: broker %d killed; broker %d took over as controller, fenced it and moved its leaderships in %v",
		dead, newCtrl.ID(), failover.Round(time.Millisecond))
	after := tc.waitSameImage(20*time.Second, 2)
	moved := 0
	for _, tp := range before.Topics() {
		for _, old := range tp.Partitions {
			now, _ := after.Partition(tp.Name, old.Index)
			if old.Leader != dead {
				if now.Leader != old.Leader || now.LeaderEpoch != old.LeaderEpoch {
					t.Fatalf("%s-%d moved though its leader lives: %+v -> %+v", tp.Name, old.Index, old, now)
				}
				continue
			}
			moved++
			if now.Leader == NoLeader || !slices.Contains(old.ISR, now.Leader) || now.LeaderEpoch != old.LeaderEpoch+1 ||
				now.PartitionEpoch <= old.PartitionEpoch {
				t.Fatalf("%s-%d: %+v -> %+v", tp.Name, old.Index, old, now)
			}
		}
	}
	if moved == 0 {
		t.Fatal("the dead controller led no partition")
	}
	t.Logf("failover moved %d partition leaderships in %v (total since kill %v)", moved, failover.Round(time.Millisecond),
		time.Since(killed).Round(time.Millisecond))
	// On a loaded machine the new controller can lose its lease right after
	// the election, and Submit then reports an ambiguous outcome; a client
	// retries, and a retry that finds the topic means the first one landed.
	for attempt := 1; ; attempt++ {
		_, err := newCtrl.Submit(ctx, NewCommand(CreateTopic{Name: "after", NumPartitions: 2, ReplicationFactor: 2}))
		if err == nil || (attempt > 1 && errors.Is(err, ErrTopicExists)) {
			break
		}
		if !errors.Is(err, ErrNotController) || attempt == 5 {
			t.Fatalf("create after failover (attempt %d): %v", attempt, err)
		}
		t.Logf("create after failover, attempt %d: %v; retrying", attempt, err)
	}

	// The dead broker returns from its data directory: unfenced, a
	// follower of its partitions, outside their ISRs until it catches up.
	back := tc.restart(dead)
	img = tc.waitSameImage(30*time.Second, 3)
	if b, _ := img.Broker(dead); b.Fenced || b.Epoch <= before.brokers[dead].Epoch {
		t.Fatalf("returned broker %+v", b)
	}
	for _, tp := range img.Topics() {
		for _, p := range tp.Partitions {
			if p.Leader == dead || (slices.Contains(p.ISR, dead) && tp.Name != "after") {
				t.Fatalf("%s-%d: returned broker should follow: %+v", tp.Name, p.Index, p)
			}
		}
	}
	if !back.Image().Equal(img) {
		t.Fatal("returned broker's image differs")
	}

	// Two of three gone: no quorum, a clear NOT_CONTROLLER.
	for id := range tc.nodes {
		if id != dead {
			tc.kill(id)
		}
	}
	short := ctxTimeout(t, 3*time.Second)
	_, err = back.Submit(short, NewCommand(CreateTopic{Name: "nope", NumPartitions: 1, ReplicationFactor: 1}))
	if !errors.Is(err, ErrNoController) && !errors.Is(err, ErrNotController) || ErrorCode(err) != 41 {
		t.Fatalf("submit without quorum: %v (code %d)", err, ErrorCode(err))
	}
	t.Logf("without quorum: %v", err)
}

// TestFiveBrokersThreeVoters: five brokers with --bootstrap-expect 3 keep
// three voters and two non-voters, all holding identical images; when a
// voter dies for good, a non-voter takes its place.
func TestFiveBrokersThreeVoters(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	first := tc.start(tc.config(1, 3, nil))
	seeds := []string{first.GossipAddr()}
	for id := int32(2); id <= 5; id++ {
		tc.start(tc.config(id, 3, seeds))
	}
	tc.waitController(30 * time.Second)
	voterCount := func(want, total int) func() (bool, string) {
		return func() (bool, string) {
			for _, n := range tc.nodes {
				servers, err := n.Servers()
				if err != nil {
					return false, err.Error()
				}
				voters := 0
				for _, s := range servers {
					if s.IsVoter {
						voters++
					}
				}
				if voters != want || len(servers) != total {
					return false, fmt.Sprintf("broker %d: %+v", n.ID(), servers)
				}
			}
			return true, ""
		}
	}
	waitFor(t, 30*time.Second, "3 voters and 2 non-voters", voterCount(3, 5))
	tc.waitSameImage(30*time.Second, 5)

	var nonvoter *Node
	servers, _ := first.Servers()
	for _, s := range servers {
		if !s.IsVoter {
			nonvoter = tc.nodes[s.ID]
		}
	}
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := nonvoter.Submit(ctx, NewCommand(CreateTopic{Name: "t", NumPartitions: 10, ReplicationFactor: 3})); err != nil {
		t.Fatalf("create through non-voter %d: %v", nonvoter.ID(), err)
	}
	img := tc.waitSameImage(30*time.Second, 5)
	if tp, ok := img.Topic("t"); !ok || len(tp.Partitions) != 10 {
		t.Fatalf("topic t: %+v", tp)
	}
	for _, n := range tc.nodes {
		if _, ok := n.Image().Topic("t"); !ok {
			t.Fatalf("broker %d lacks topic t", n.ID())
		}
	}

	// Kill a voter that is not the controller: after DeadVoterReplace a
	// non-voter is promoted, so three live voters remain.
	ctrl, _ := tc.controller()
	var victim int32 = -1
	for _, s := range servers {
		if s.IsVoter && s.ID != ctrl.ID() {
			victim = s.ID
		}
	}
	tc.kill(victim)
	took := waitFor(t, 30*time.Second, "dead voter replaced", func() (bool, string) {
		ok, why := voterCount(3, 4)()
		if !ok {
			return false, why
		}
		servers, _ := ctrl.Servers()
		for _, s := range servers {
			if s.ID == victim {
				return false, "dead voter still configured"
			}
		}
		return true, ""
	})
	t.Logf("voter %d replaced by a non-voter in %v", victim, took.Round(time.Millisecond))
	tc.waitSameImage(30*time.Second, 4)
}

// TestDuplicateBrokerIDRefused: a broker whose id a live broker already
// uses fails to start with ErrDuplicateBrokerID.
func TestDuplicateBrokerIDRefused(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	first := tc.start(tc.config(1, 0, nil))
	tc.waitController(10 * time.Second)
	dup, err := New(tc.config(1, 0, []string{first.GossipAddr()}))
	if err != nil {
		t.Fatal(err)
	}
	err = dup.Start()
	if !errors.Is(err, ErrDuplicateBrokerID) || ErrorCode(err) != 101 {
		t.Fatalf("second broker 1 started: %v", err)
	}
	t.Logf("refused: %v", err)
	if err := dup.Close(); err != nil {
		t.Fatal(err)
	}
	if got := first.Members(); len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("members after refusal: %+v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{ID: 1, DataDir: os.TempDir(), KafkaAddr: "127.0.0.1:9092", RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0"}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"negative id":           func(c *Config) { c.ID = -1 },
		"no data dir":           func(c *Config) { c.DataDir = "" },
		"no kafka addr":         func(c *Config) { c.KafkaAddr = "" },
		"bad raft addr":         func(c *Config) { c.RaftAddr = "nope" },
		"bad gossip port":       func(c *Config) { c.GossipAddr = "127.0.0.1:99999" },
		"expect above voters":   func(c *Config) { c.BootstrapExpect = 5 },
		"negative expect":       func(c *Config) { c.BootstrapExpect = -1 },
		"short cluster secret":  func(c *Config) { c.ClusterSecret = "short" },
		"lease above heartbeat": func(c *Config) { c.Timeouts = Timeouts{RaftHeartbeat: time.Second, RaftLeaderLease: 2 * time.Second} },
	} {
		c := good
		mut(&c)
		if _, err := New(c); !errors.Is(err, ErrInvalidNodeConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// sameTopics reports whether two images hold equal topics.
func sameTopics(a, b *Image) bool {
	if len(a.topics) != len(b.topics) {
		return false
	}
	for name, t := range a.topics {
		u, ok := b.topics[name]
		if !ok || !topicEqual(t, u) {
			return false
		}
	}
	return true
}

// A gossip address given by name (as in Compose or Kubernetes) is resolved:
// memberlist would otherwise advertise the unspecified address, which a
// peer cannot dial, and the image would record it.
func TestGossipAddressByName(t *testing.T) {
	tc := newTestCluster(t)
	named := func(id int32, expect int, join []string) Config {
		cfg := tc.config(id, expect, join)
		cfg.GossipAddr = "localhost:0"
		return cfg
	}
	first := tc.start(named(1, 2, nil))
	host, _, err := net.SplitHostPort(first.GossipAddr())
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Fatalf("gossip address %q: want a loopback IP (%v)", first.GossipAddr(), err)
	}
	tc.start(named(2, 2, []string{first.GossipAddr()}))
	tc.waitController(20 * time.Second)
	img := tc.waitSameImage(20*time.Second, 2)
	for _, id := range []int32{1, 2} {
		b, _ := img.Broker(id)
		if h, _, _ := net.SplitHostPort(b.GossipAddr); net.ParseIP(h) == nil || net.ParseIP(h).IsUnspecified() {
			t.Errorf("broker %d registered gossip address %q", id, b.GossipAddr)
		}
	}
}

// Brokers bound to the unspecified address are reachable through their
// advertised Raft and gossip addresses, and the image records those.
func TestAdvertisedRaftAndGossipAddresses(t *testing.T) {
	tc := newTestCluster(t)
	advertised := func(id int32, expect int, join []string) Config {
		cfg := tc.config(id, expect, join)
		raftPort, gossipPort := freeLoopbackPort(t), freeLoopbackPort(t)
		cfg.RaftAddr, cfg.AdvertisedRaftAddr = fmt.Sprintf("0.0.0.0:%d", raftPort), fmt.Sprintf("127.0.0.1:%d", raftPort)
		cfg.GossipAddr, cfg.AdvertisedGossipAddr = fmt.Sprintf("0.0.0.0:%d", gossipPort), fmt.Sprintf("127.0.0.1:%d", gossipPort)
		return cfg
	}
	c1 := advertised(1, 2, nil)
	first := tc.start(c1)
	c2 := advertised(2, 2, []string{first.GossipAddr()})
	tc.start(c2)
	tc.waitController(20 * time.Second)
	img := tc.waitSameImage(20*time.Second, 2)
	for _, c := range []Config{c1, c2} {
		b, _ := img.Broker(c.ID)
		if b.RaftAddr != c.AdvertisedRaftAddr || b.GossipAddr != c.AdvertisedGossipAddr {
			t.Errorf("broker %d registered raft %q gossip %q, want the advertised %q and %q",
				c.ID, b.RaftAddr, b.GossipAddr, c.AdvertisedRaftAddr, c.AdvertisedGossipAddr)
		}
	}
}

// freeLoopbackPort returns a TCP and UDP port free on 127.0.0.1 a moment
// ago, for a test that must know a port before the broker binds it.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free TCP+UDP port on 127.0.0.1")
	return 0
}

// TestDeadVoterTimingSurvivesControllerChange: the time a voter has been
// dead is kept across a change of controller, so the replacement does not
// start over with every new controller (under leadership churn none might
// last DeadVoterReplace). Leadership moves to the other live voter shortly
// before the dead voter is due; the new controller replaces it well before
// a full DeadVoterReplace of its own.
func TestDeadVoterTimingSurvivesControllerChange(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	first := tc.start(tc.config(1, 3, nil))
	for id := int32(2); id <= 4; id++ {
		tc.start(tc.config(id, 3, []string{first.GossipAddr()}))
	}
	tc.waitController(30 * time.Second)
	tc.waitSameImage(30*time.Second, 4)
	ctrl, _ := tc.controller()
	servers, _ := ctrl.Servers()
	var victim, heir int32 = -1, -1
	for _, s := range servers {
		switch {
		case !s.IsVoter || s.ID == ctrl.ID():
		case victim < 0:
			victim = s.ID
		default:
			heir = s.ID
		}
	}
	if victim < 0 || heir < 0 {
		t.Fatalf("want two voters besides the controller: %+v", servers)
	}
	replaceAfter := ctrl.cfg.Timeouts.DeadVoterReplace
	tc.kill(victim)
	waitFor(t, 10*time.Second, "the heir's gossip to see the victim dead", func() (bool, string) {
		ms := tc.nodes[heir].members.members()
		return !slices.ContainsFunc(ms, func(m Member) bool { return m.ID == victim }), fmt.Sprintf("%+v", ms)
	})
	time.Sleep(replaceAfter * 3 / 4) // the dead time under test: nothing to await
	if err := ctrl.raft.LeadershipTransferToServer(raftID(heir), raft.ServerAddress(tc.cfgs[heir].RaftAddr)).Error(); err != nil {
		t.Fatalf("leadership transfer to broker %d: %v", heir, err)
	}
	moved := time.Now()
	took := waitFor(t, 3*replaceAfter, "dead voter replaced by the new controller", func() (bool, string) {
		servers, err := tc.nodes[heir].Servers()
		if err != nil {
			return false, err.Error()
		}
		for _, s := range servers {
			if s.ID == victim {
				return false, fmt.Sprintf("%+v", servers)
			}
		}
		return true, ""
	})
	if c, _ := tc.controller(); c == nil || c.ID() != heir {
		t.Logf("controller moved on from broker %d during the test", heir)
	}
	if since := time.Since(moved); since >= replaceAfter {
		t.Fatalf("dead voter replaced %v after the controller changed (waited %v): the new controller timed it from scratch (%v)", since, took, replaceAfter)
	}
	t.Logf("dead voter replaced %v after the controller changed", time.Since(moved).Round(time.Millisecond))
}
