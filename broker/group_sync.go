package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup v0-5. Members other than the leader wait for the leader's
// assignment to be stored.
func init() { register(kmsg.SyncGroup, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, _ context.Context, req *netproto.Request, respond func(netproto.Response)) {
	b.groups.SyncGroup(req.Body.(*kmsg.SyncGroupRequest), func(resp *kmsg.SyncGroupResponse) {
		respond(netproto.Response{Msg: resp})
	})
}
