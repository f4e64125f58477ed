package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster v0-2: the live brokers, the controller and the cluster id
// (sarama pinned at 2.8+ asks for it). v2 (KIP-1073) lists the fenced
// brokers too when asked, marked IsFenced: `barge broker list` shows the
// brokers that are down that way.
func init() { register(kmsg.DescribeCluster, 0, 2, replying(handleDescribeCluster)) }

func handleDescribeCluster(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := b.node.Image()
	resp.ClusterID = img.ClusterID()
	resp.ControllerID = -1
	if id, ok := b.node.Controller(); ok {
		resp.ControllerID = id
	}
	listener := b.listenerFor(req.Conn.LocalAddr)
	brokers := img.LiveBrokers()
	if r.IncludeFencedBrokers {
		brokers = img.Brokers()
	}
	for _, br := range brokers {
		host, port, ok := advertisedAddr(br, listener)
		if !ok {
			continue
		}
		sb := kmsg.NewDescribeClusterResponseBroker()
		sb.NodeID, sb.Host, sb.Port, sb.IsFenced = br.ID, host, port, br.Fenced
		if br.Rack != "" {
			rack := br.Rack
			sb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, sb)
	}
	return resp
}
