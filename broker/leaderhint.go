package broker

import (
	"net"
	"slices"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderHints fills KIP-951's answer to a client that wrote to a broker
// that no longer leads: the partition's current leader and epoch, and how
// to reach that leader. Without it a client learns of the move only from
// its next Metadata request, which franz-go spaces by its metadata min age
// (5 s by default): after a failover every produce of those 5 s failed or
// waited. One leaderHints serves one response: the image is read once, on
// the first partition that needs it, and every leader it names is listed
// once among the response's endpoints.
type leaderHints struct {
	b        *Broker
	listener string // the listener the request came in on: its addresses are the ones the client can reach
	img      *cluster.Image
	leaders  []cluster.Broker // the leaders named so far, each once
}

func (b *Broker) leaderHints(local net.Addr) *leaderHints {
	return &leaderHints{b: b, listener: b.listenerFor(local)}
}

// hintable reports whether a partition error is one KIP-951 answers with
// the current leader: the client has the wrong broker or an old epoch.
func hintable(code int16) bool {
	return code == kerr.NotLeaderForPartition.Code || code == kerr.FencedLeaderEpoch.Code
}

// current returns the partition's leader and leader epoch as this broker's
// applied metadata has them (what its own replicas match, as Metadata
// answers), and records the leader's endpoint. ok is false when there is
// nothing useful to say: no leader, the leader is this broker (which has
// just said it is not, so its metadata is behind the client's), a fenced
// leader, or one without an address on the client's listener. With
// selfOK this broker may be the leader named (a client with an old epoch
// reached the right broker and learns the epoch).
func (h *leaderHints) current(topic string, partition int32, selfOK bool) (leader, epoch int32, ok bool) {
	if h.img == nil {
		h.img = h.b.metadataImage()
	}
	p, ok := h.img.Partition(topic, partition)
	if !ok || p.Leader == cluster.NoLeader || (p.Leader == h.b.cfg.ID && !selfOK) {
		return 0, 0, false
	}
	br, ok := h.img.Broker(p.Leader)
	if !ok || br.Fenced {
		return 0, 0, false
	}
	if _, _, ok := advertisedAddr(br, h.listener); !ok {
		return 0, 0, false
	}
	if !slices.ContainsFunc(h.leaders, func(l cluster.Broker) bool { return l.ID == br.ID }) {
		h.leaders = append(h.leaders, br)
	}
	return p.Leader, p.LeaderEpoch, true
}

// fillProduceHints fills KIP-951's hints into a produce response that
// refused a partition with NOT_LEADER_OR_FOLLOWER; the hints are made only
// then, so the answers that need none (nearly all) cost nothing.
func (b *Broker) fillProduceHints(local net.Addr, version int16, resp *kmsg.ProduceResponse) {
	if version < 10 {
		return
	}
	for _, t := range resp.Topics {
		for _, sp := range t.Partitions {
			if sp.ErrorCode == kerr.NotLeaderForPartition.Code {
				b.leaderHints(local).fillProduce(version, resp)
				return
			}
		}
	}
}

// fillProduce sets CurrentLeader on every partition of resp refused with
// NOT_LEADER_OR_FOLLOWER, and the leaders' endpoints (Produce v10+; older
// versions have neither field).
func (h *leaderHints) fillProduce(version int16, resp *kmsg.ProduceResponse) {
	if version < 10 {
		return
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			sp := &t.Partitions[pi]
			if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
				continue
			}
			if leader, epoch, ok := h.current(t.Topic, sp.Partition, false); ok {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
			}
		}
	}
	for _, n := range h.endpoints() {
		pb := kmsg.NewProduceResponseBroker()
		pb.NodeID, pb.Host, pb.Port, pb.Rack = n.NodeID, n.Host, n.Port, n.Rack
		resp.Brokers = append(resp.Brokers, pb)
	}
}

// endpoints are the addresses, on the client's listener, of the leaders
// named so far.
func (h *leaderHints) endpoints() []netproto.NodeEndpoint {
	var out []netproto.NodeEndpoint
	for _, br := range h.leaders {
		host, port, _ := advertisedAddr(br, h.listener)
		n := netproto.NodeEndpoint{NodeID: br.ID, Host: host, Port: port}
		if br.Rack != "" {
			rack := br.Rack
			n.Rack = &rack
		}
		out = append(out, n)
	}
	return out
}

// fetchCurrentLeader is the CurrentLeader of a Fetch v12+ partition
// answered with a leader error, or nil. From v16 the response also lists
// the endpoints of the leaders named (fillFetchEndpoints).
func (h *leaderHints) fetchCurrentLeader(version int16, topic string, fp *netproto.FetchPartition) *netproto.LeaderIDAndEpoch {
	if version < 12 || !hintable(fp.ErrorCode) {
		return nil
	}
	leader, epoch, ok := h.current(topic, fp.Partition, fp.ErrorCode == kerr.FencedLeaderEpoch.Code)
	if !ok {
		return nil
	}
	return &netproto.LeaderIDAndEpoch{LeaderID: leader, LeaderEpoch: epoch}
}

// fillFetchEndpoints lists, in a Fetch v16+ response, the endpoints of the
// leaders its partitions' CurrentLeader name.
func (h *leaderHints) fillFetchEndpoints(version int16, resp *netproto.FetchResponse) {
	if h == nil || version < 16 {
		return
	}
	resp.NodeEndpoints = h.endpoints()
}
