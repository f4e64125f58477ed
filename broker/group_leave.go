package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup v0-5 (v3+ remove several members, by member or instance id).
func init() { register(kmsg.LeaveGroup, 0, 5, replying(handleLeaveGroup)) }

func handleLeaveGroup(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	return b.groups.LeaveGroup(req.Body.(*kmsg.LeaveGroupRequest))
}
