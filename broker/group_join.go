package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup v0-9 (v0 kept for librdkafka, whose balanced consumer needs
// the v0 minimums; v4+ go through MEMBER_ID_REQUIRED). The answer comes when
// the rebalance completes, so the request is parked, not answered here.
func init() { register(kmsg.JoinGroup, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, _ context.Context, req *netproto.Request, respond func(netproto.Response)) {
	b.groups.JoinGroup(groupClient(req), req.Body.(*kmsg.JoinGroupRequest), func(resp *kmsg.JoinGroupResponse) {
		respond(netproto.Response{Msg: resp})
	})
}
