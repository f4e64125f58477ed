package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch v2-4 (v2 is the first with current_leader_epoch;
// franz-go validates epochs only when a broker advertises v2+): where a
// leader epoch ended in this leader's log (KIP-101, KIP-279, KIP-320).
func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, replying(handleOffsetForLeaderEpoch)) }

func handleOffsetForLeaderEpoch(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	leaders := b.lookupLeaders(ctx)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			p, code := leaders.leaderFor(rt.Topic, rp.Partition)
			switch {
			case code != 0:
				sp.ErrorCode = code
			default:
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.leaderEpoch()); code != 0 {
					sp.ErrorCode = code
					break
				}
				// The epoch's end in the log, for consumers too, as Kafka
				// answers: not clamped to the high watermark. A leader's
				// HW can be below what consumers already read (after a
				// restart it starts from the periodic checkpoint), and a
				// clamped answer then tells a KIP-320 consumer that
				// records it read were truncated, so it rewinds and
				// reads them again (barge-jepsen's nonmonotonic-poll
				// after killing every broker). A consumer never holds a
				// position past the HW, so the log's own end of the epoch
				// is what tells real truncation apart.
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
