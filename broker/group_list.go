package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0-4 (v4 filters by state): the groups this broker
// coordinates; admin clients ask every broker.
func init() { register(kmsg.ListGroups, 0, 4, replying(handleListGroups)) }

func handleListGroups(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	return b.groups.ListGroups(req.Body.(*kmsg.ListGroupsRequest))
}
