package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// threeFaultyBrokers is threeBrokers with a gossipFault in front of each
// broker's gossip transport, and a topic of 6 partitions with 3 replicas.
func threeFaultyBrokers(t *testing.T) (*testCluster, map[int32]*gossipFault) {
	tc := newTestCluster(t)
	faults := map[int32]*gossipFault{}
	cfg := func(id int32, join []string) Config {
		c := tc.config(id, 3, join)
		c.wrapGossip = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			f := newGossipFault(inner)
			faults[id] = f
			return f
		}
		return c
	}
	first := tc.start(cfg(1, nil))
	seeds := []string{first.GossipAddr()}
	tc.start(cfg(2, seeds))
	tc.start(cfg(3, seeds))
	ctrl := tc.waitController(20 * time.Second)
	tc.waitSameImage(20*time.Second, 3)
	if _, err := ctrl.Submit(ctxTimeout(t, 10*time.Second), NewCommand(CreateTopic{Name: "t", NumPartitions: 6, ReplicationFactor: 3})); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	tc.waitSameImage(20*time.Second, 3)
	return tc, faults
}

// epochsAndFences sums the leader epochs of topic t and lists the fenced
// brokers in img.
func epochsAndFences(img *Image) (int32, []int32) {
	var sum int32
	if tp, ok := img.Topic("t"); ok {
		for _, p := range tp.Partitions {
			sum += p.LeaderEpoch
		}
	}
	var fenced []int32
	for _, b := range img.Brokers() {
		if b.Fenced {
			fenced = append(fenced, b.ID)
		}
	}
	return sum, fenced
}

// watchFences follows the controller's image until stop is closed and
// reports every fence it saw.
func watchFences(n *Node, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var seen []string
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- seen
				return
			case <-tick.C:
			}
			if _, fenced := epochsAndFences(n.Image()); len(fenced) > 0 {
				s := fmt.Sprint(fenced)
				if len(seen) == 0 || seen[len(seen)-1] != s {
					seen = append(seen, s)
				}
			}
		}
	}()
	return out
}

// A controller whose gossip is cut off (while Raft and forwarding work)
// sees no other broker in gossip; the others keep heartbeating, so it must
// fence nobody. On the code before heartbeats it fenced brokers within
// about a second.
func TestControllerWithGossipCutFencesNobody(t *testing.T) {
	tc, faults := threeFaultyBrokers(t)
	ctrl := tc.waitController(10 * time.Second)
	epochs, _ := epochsAndFences(ctrl.Image())
	stop := make(chan struct{})
	fences := watchFences(ctrl, stop)
	faults[ctrl.ID()].cut.Store(true)
	waitFor(t, 10*time.Second, "the controller's gossip to lose every peer", func() (bool, string) {
		m := ctrl.Members()
		return len(m) == 1, fmt.Sprintf("controller gossip sees %d members", len(m))
	})
	// Past the broker session timeout, the longest a heartbeating broker
	// could survive if the heartbeats were not counted.
	deadline := time.Now().Add(ctrl.cfg.Timeouts.BrokerSession + time.Second)
	for time.Now().Before(deadline) {
		if !ctrl.IsController() {
			close(stop)
			t.Fatalf("controller lost its Raft leadership (fences seen: %v); the test needs it to keep leading", <-fences)
		}
		time.Sleep(50 * time.Millisecond) // observing that nothing happens for a fixed window
	}
	close(stop)
	if seen := <-fences; len(seen) > 0 {
		t.Fatalf("gossip-cut controller fenced brokers: %v", seen)
	}
	if e, _ := epochsAndFences(ctrl.Image()); e != epochs {
		t.Fatalf("leader epochs moved from %d to %d", epochs, e)
	}
	faults[ctrl.ID()].cut.Store(false)
}

// A broker whose gossip is dropped repeatedly for short spells (long enough
// for gossip to declare it dead each time) while it still reaches the
// controller is never fenced, and no leader epoch moves. On the code
// before heartbeats each spell fenced it and bumped the epochs of the
// partitions it led.
func TestFlappingGossipBumpsNoLeaderEpochs(t *testing.T) {
	tc, faults := threeFaultyBrokers(t)
	ctrl := tc.waitController(10 * time.Second)
	var victim int32
	for id := range tc.nodes {
		if id != ctrl.ID() {
			victim = id
			break
		}
	}
	epochs, _ := epochsAndFences(ctrl.Image())
	stop := make(chan struct{})
	fences := watchFences(ctrl, stop)
	for spell := 0; spell < 4; spell++ {
		faults[victim].cut.Store(true)
		waitFor(t, 10*time.Second, "gossip to declare the victim dead", func() (bool, string) {
			return !slices.ContainsFunc(ctrl.Members(), func(m Member) bool { return m.ID == victim }),
				fmt.Sprintf("controller gossip still sees broker %d", victim)
		})
		faults[victim].cut.Store(false)
		waitFor(t, 10*time.Second, "gossip to see the victim again", func() (bool, string) {
			return slices.ContainsFunc(ctrl.Members(), func(m Member) bool { return m.ID == victim }),
				fmt.Sprintf("controller gossip does not see broker %d", victim)
		})
	}
	close(stop)
	if seen := <-fences; len(seen) > 0 {
		t.Fatalf("flapping gossip fenced brokers: %v", seen)
	}
	if e, _ := epochsAndFences(ctrl.Image()); e != epochs {
		t.Fatalf("leader epochs moved from %d to %d without a real failure", epochs, e)
	}
}

// heartbeatFault is a fault-injecting Forwarder: while dropping, it loses
// this broker's heartbeats on the way to the controller, as a broken link
// to the metadata quorum would, and passes every other command.
type heartbeatFault struct {
	inner    Forwarder
	dropping atomic.Bool
}

func (f *heartbeatFault) Forward(ctx context.Context, addr string, cmd Command) (uint64, error) {
	if _, ok := cmd.Payload.(BrokerHeartbeat); ok && f.dropping.Load() {
		return 0, notSent(errorf(ErrNoController, "heartbeat dropped by the test"))
	}
	return f.inner.Forward(ctx, addr, cmd)
}

// A broker that gossip sees alive but whose heartbeats do not reach the
// controller is fenced after the broker session timeout, is given no
// replicas of a new topic, and is unfenced once its heartbeats flow again
// (after the unfence hold).
func TestBrokerNotHeartbeatingIsFencedAfterSession(t *testing.T) {
	tc := newTestCluster(t)
	fault := &heartbeatFault{inner: tcpForwarder{dialTimeout: 2 * time.Second}}
	first := tc.start(tc.config(1, 3, nil))
	seeds := []string{first.GossipAddr()}
	tc.start(tc.config(2, 3, seeds))
	cfg := tc.config(3, 3, seeds)
	cfg.Forwarder = fault
	tc.start(cfg)
	ctrl := tc.waitController(20 * time.Second)
	tc.waitSameImage(20*time.Second, 3)
	if ctrl.ID() == 3 {
		if err := ctrl.raft.LeadershipTransfer().Error(); err != nil {
			t.Fatalf("move the controller off broker 3: %v", err)
		}
		ctrl = tc.waitController(20 * time.Second)
	}
	fault.dropping.Store(true)
	cut := time.Now()
	waitFor(t, 10*time.Second, "broker 3 fenced", func() (bool, string) {
		b, _ := ctrl.Image().Broker(3)
		return b.Fenced, fmt.Sprintf("broker 3: %+v", b)
	})
	if d := time.Since(cut); d < ctrl.cfg.Timeouts.BrokerSession-200*time.Millisecond {
		t.Fatalf("fenced %v after its heartbeats stopped, before the session timeout %v", d, ctrl.cfg.Timeouts.BrokerSession)
	}
	if !slices.ContainsFunc(ctrl.Members(), func(m Member) bool { return m.ID == 3 }) {
		t.Fatal("broker 3 left gossip too; the test needs it alive there")
	}
	res, err := ctrl.Submit(ctxTimeout(t, 10*time.Second), NewCommand(CreateTopic{Name: "u", NumPartitions: 4, ReplicationFactor: 2}))
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	tp, _ := res.Image.Topic("u")
	for _, p := range tp.Partitions {
		if slices.Contains(p.Replicas, 3) {
			t.Fatalf("broker 3, not heartbeating, was assigned %+v", p)
		}
	}
	fault.dropping.Store(false)
	waitFor(t, 10*time.Second, "broker 3 unfenced", func() (bool, string) {
		b, _ := ctrl.Image().Broker(3)
		return !b.Fenced, fmt.Sprintf("broker 3: %+v", b)
	})
}
