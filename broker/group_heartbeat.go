package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat v0-4.
func init() { register(kmsg.Heartbeat, 0, 4, replying(handleHeartbeat)) }

func handleHeartbeat(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	return b.groups.Heartbeat(req.Body.(*kmsg.HeartbeatRequest))
}
