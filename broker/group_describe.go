package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0-5.
func init() { register(kmsg.DescribeGroups, 0, 5, replying(handleDescribeGroups)) }

func handleDescribeGroups(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	return b.groups.DescribeGroups(req.Body.(*kmsg.DescribeGroupsRequest))
}
