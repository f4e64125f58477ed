package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestClusterSecretAuthenticatesControlChannels: three brokers with the
// same --cluster-secret form a cluster and forward commands to the
// controller. A forwarded command without the secret or with another one,
// and a Raft RequestVote with a far higher term without it, are refused
// before they are read: no topic appears and no broker takes the vote's
// term. Brokers without the secret or with another one never
// join the gossip cluster, and the cluster's brokers stay up.
func TestClusterSecretAuthenticatesControlChannels(t *testing.T) {
	t.Parallel()
	const secret, wrong = "correct horse battery staple", "incorrect mule battery staple"
	tc := newTestCluster(t)
	withSecret := func(c Config, s string) Config { c.ClusterSecret = s; return c }
	first := tc.start(withSecret(tc.config(1, 3, nil), secret))
	seeds := []string{first.GossipAddr()}
	tc.start(withSecret(tc.config(2, 3, seeds), secret))
	tc.start(withSecret(tc.config(3, 3, seeds), secret))
	ctrl := tc.waitController(20 * time.Second)
	tc.waitSameImage(20*time.Second, 3)

	ctx := ctxTimeout(t, 60*time.Second)
	var other *Node
	for _, n := range tc.nodes {
		if n != ctrl {
			other = n
		}
	}
	if _, err := other.Submit(ctx, NewCommand(CreateTopic{Name: "forwarded", NumPartitions: 1, ReplicationFactor: 3})); err != nil {
		t.Fatalf("forwarding with the secret: %v", err)
	}

	term := ctrl.raft.CurrentTerm()
	addr := ctrl.RaftAddr()

	// A forwarded command without the handshake: the connection is closed
	// without an answer.
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte{muxForward})
	_ = writeFrame(conn, forwardRequest{Command: NewCommand(CreateTopic{Name: "plain", NumPartitions: 1, ReplicationFactor: 1})})
	var resp forwardResponse
	if err := readFrame(bufio.NewReader(conn), &resp); err == nil {
		t.Fatalf("a forward without the secret was answered: %+v", resp)
	}
	conn.Close()

	// With another secret the handshake fails on both sides.
	_, err = tcpForwarder{dialTimeout: time.Second, key: muxKey(wrong)}.Forward(ctx, addr,
		NewCommand(CreateTopic{Name: "wrong", NumPartitions: 1, ReplicationFactor: 1}))
	if !errors.Is(err, ErrNoController) || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("forward with another secret: %v", err)
	}
	t.Logf("forward with another secret: %v", err)

	// A vote request far ahead of the controller's term would make it step
	// down, if it were read.
	for name, key := range map[string][]byte{"no secret": nil, "another secret": muxKey(wrong)} {
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: raftStream{newSubListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}), key}, MaxPool: 1, Timeout: time.Second,
		})
		var vote raft.RequestVoteResponse
		err := trans.RequestVote("9", raft.ServerAddress(addr), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("9"), Addr: []byte("127.0.0.1:1")},
			Term:      term + 100, LastLogIndex: 1 << 40, LastLogTerm: term + 100,
		}, &vote)
		_ = trans.Close()
		if err == nil {
			t.Fatalf("raft vote request with %s was answered: %+v", name, vote)
		}
		t.Logf("raft vote request with %s: %v", name, err)
	}

	// Brokers without the secret, or with another, do not get in.
	for i, s := range []string{"", wrong} {
		n, err := New(withSecret(tc.config(int32(4+i), 0, seeds), s))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.halt() })
		if err := n.Start(); err != nil {
			t.Fatalf("broker %d: %v", 4+i, err)
		}
	}
	holdFor(t, 2*LoopbackTimeouts().GossipPushPull, "a cluster of three", func() (bool, string) {
		for _, n := range tc.nodes {
			if ids := brokerIDs(n.Image()); !slices.Equal(ids, []int32{1, 2, 3}) {
				return false, fmt.Sprintf("broker %d registers %v", n.ID(), ids)
			}
			if len(n.Members()) != 3 {
				return false, fmt.Sprintf("broker %d gossips with %+v", n.ID(), n.Members())
			}
		}
		return true, ""
	})

	res, err := ctrl.Submit(ctx, NewCommand(CreateTopic{Name: "after", NumPartitions: 1, ReplicationFactor: 3}))
	if err != nil {
		t.Fatalf("controller commits after the refusals: %v", err)
	}
	for _, name := range []string{"plain", "wrong"} {
		if _, ok := res.Image.Topic(name); ok {
			t.Fatalf("topic %q was created by an unauthenticated peer", name)
		}
	}
	// A loaded machine may re-elect now and then; the refused request's
	// term was never adopted by anyone.
	for _, n := range tc.nodes {
		if got := n.raft.CurrentTerm(); got >= term+100 {
			t.Fatalf("broker %d took the term %d of a refused vote request (was %d)", n.ID(), got, term)
		}
	}
}
