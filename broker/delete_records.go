package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0-2: moves a partition's log start up (never past the high
// watermark) and drops the segments wholly below it; it answers once every
// replica's log start has followed (the followers learn it from their next
// fetch), or REQUEST_TIMED_OUT at the request's timeout, as Kafka does.
// Internal topics are refused (INVALID_TOPIC_EXCEPTION).
func init() { register(kmsg.DeleteRecords, 0, 2, replying(handleDeleteRecords)) }

func handleDeleteRecords(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	type pending struct {
		sp   *kmsg.DeleteRecordsResponseTopicPartition
		done <-chan struct{}
	}
	var waits []pending
	leaders := b.lookupLeaders(ctx)
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			p, code := leaders.leaderFor(rt.Topic, rp.Partition)
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
					p.wakeAll() // parked follower fetches carry the new log start at once
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Wait for the followers once every partition's local delete is done.
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			if sp.ErrorCode != 0 || sp.LowWatermark < 0 {
				continue
			}
			p := b.replicas.get(resp.Topics[ti].Topic, sp.Partition)
			if p == nil {
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				continue
			}
			done, ok := p.rep.WaitLowWatermark(sp.LowWatermark)
			if !ok {
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				continue
			}
			waits = append(waits, pending{sp, done})
		}
	}
	for _, w := range waits {
		select {
		case <-w.done:
		case <-ctx.Done():
			w.sp.ErrorCode = kerr.RequestTimedOut.Code
		}
	}
	return resp
}
