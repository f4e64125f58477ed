package broker

import (
	"context"

	"github.com/barge-broker/barge/broker/group"
	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0-4 (v4 asks for several keys at once). The coordinator
// of a group is the leader of its partition of __consumer_offsets, which is
// created on the first request. Transaction coordinators are refused:
// Barge has no transactions.
func init() { register(kmsg.FindCoordinator, 0, 4, replying(handleFindCoordinator)) }

func handleFindCoordinator(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	// The coordinator's address on the listener the client came in on.
	listener := b.listenerFor(req.Conn.LocalAddr)
	if req.Version < 4 {
		c := b.findCoordinator(ctx, listener, r.CoordinatorType, r.CoordinatorKey)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return resp
	}
	for _, key := range r.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, b.findCoordinator(ctx, listener, r.CoordinatorType, key))
	}
	return resp
}

func (b *Broker) findCoordinator(ctx context.Context, listener string, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID = key, -1
	fail := func(code int16, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode, c.ErrorMessage = code, &msg
		return c
	}
	switch keyType {
	case 0: // group
	case 1:
		return fail(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not supported")
	default:
		return fail(kerr.InvalidRequest.Code, "unknown coordinator type")
	}
	t, err := b.ensureOffsetsTopic(ctx)
	if err != nil {
		b.logger.Warn("no group coordinator", "err", err)
		return fail(kerr.CoordinatorNotAvailable.Code, err.Error())
	}
	index := group.PartitionFor(key, int32(len(t.Partitions)))
	p := cluster.Partition{Leader: cluster.NoLeader}
	for _, tp := range t.Partitions {
		if tp.Index == index {
			p = tp
		}
	}
	br, ok := b.node.Image().Broker(p.Leader)
	if p.Leader == cluster.NoLeader || !ok || br.Fenced {
		return fail(kerr.CoordinatorNotAvailable.Code, "the group's partition of __consumer_offsets has no live leader")
	}
	host, port, ok := advertisedAddr(br, listener)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable.Code, "the group's coordinator has no listener "+listener)
	}
	c.NodeID = p.Leader
	c.Host, c.Port = host, port
	return c
}
