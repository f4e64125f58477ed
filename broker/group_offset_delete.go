package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete v0: offsets of an empty group, or of topics a consumer group
// does not subscribe to.
func init() { register(kmsg.OffsetDelete, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, _ context.Context, req *netproto.Request, respond func(netproto.Response)) {
	b.groups.OffsetDelete(req.Body.(*kmsg.OffsetDeleteRequest), func(resp *kmsg.OffsetDeleteResponse) {
		respond(netproto.Response{Msg: resp})
	})
}
