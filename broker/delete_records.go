package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0-2: moves a partition's log start up (never past the high
// watermark) and drops the segments wholly below it. Internal topics are
// refused (INVALID_TOPIC_EXCEPTION).
func init() { register(kmsg.DeleteRecords, 0, 2, replying(handleDeleteRecords)) }

func handleDeleteRecords(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			p, code := b.leaderFor(rt.Topic, rp.Partition)
			switch {
			case code != 0:
				sp.ErrorCode = code
			case isInternalTopic(rt.Topic):
				// The coordinator rebuilds groups from this log: records
				// deleted here would be committed offsets lost at the next
				// load. Kafka refuses it the same way.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			default:
				hw := p.highWatermark()
				offset := rp.Offset
				if offset == -1 { // Kafka: -1 means up to the high watermark
					offset = hw
				}
				if offset < 0 || offset > hw {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				low, err := p.log.DeleteRecordsBefore(offset)
				sp.ErrorCode, sp.LowWatermark = errorCode(err), low
				if err == nil {
					b.logger.Info("deleted records", "topic", rt.Topic, "partition", rp.Partition, "log_start_offset", low)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
