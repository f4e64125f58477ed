package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster v0-1: the live brokers, the controller and the cluster id
// (sarama pinned at 2.8+ asks for it).
func init() { register(kmsg.DescribeCluster, 0, 1, replying(handleDescribeCluster)) }

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
	for _, br := range img.LiveBrokers() {
		host, port, ok := advertisedAddr(br, listener)
		if !ok {
			continue
		}
		sb := kmsg.NewDescribeClusterResponseBroker()
		sb.NodeID, sb.Host, sb.Port = br.ID, host, port
		if br.Rack != "" {
			rack := br.Rack
			sb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, sb)
	}
	return resp
}
