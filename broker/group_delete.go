package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0-2: empty groups only, with their committed offsets.
func init() { register(kmsg.DeleteGroups, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, _ context.Context, req *netproto.Request, respond func(netproto.Response)) {
	b.groups.DeleteGroups(req.Body.(*kmsg.DeleteGroupsRequest), func(resp *kmsg.DeleteGroupsResponse) {
		respond(netproto.Response{Msg: resp})
	})
}
