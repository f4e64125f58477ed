package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v2-8: v2 overlaps librdkafka's and kafka-python's minimum;
// v9 is KIP-848's. The answer follows the write to __consumer_offsets.
func init() { register(kmsg.OffsetCommit, 2, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, _ context.Context, req *netproto.Request, respond func(netproto.Response)) {
	b.groups.OffsetCommit(req.Body.(*kmsg.OffsetCommitRequest), func(resp *kmsg.OffsetCommitResponse) {
		respond(netproto.Response{Msg: resp})
	})
}
