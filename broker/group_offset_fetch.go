package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch v1-8 (v8 asks for several groups; v9 is KIP-848's).
func init() { register(kmsg.OffsetFetch, 1, 8, replying(handleOffsetFetch)) }

func handleOffsetFetch(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	return b.groups.OffsetFetch(req.Body.(*kmsg.OffsetFetchRequest))
}
