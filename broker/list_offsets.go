package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets v1-7: v1 is the first with a single offset per partition
// (librdkafka's OffsetTime feature needs it); v7 adds MAX_TIMESTAMP (-3).
func init() { register(kmsg.ListOffsets, 1, 7, replying(handleListOffsets)) }

const (
	latestTimestamp   = -1
	earliestTimestamp = -2
	maxTimestamp      = -3
)

func handleListOffsets(b *Broker, ctx context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	leaders := b.lookupLeaders(ctx)
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, b.listOffset(&leaders, rt.Topic, rp, r.ReplicaID >= 0))
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) listOffset(leaders *leaderLookup, topic string, rp kmsg.ListOffsetsRequestTopicPartition, follower bool) kmsg.ListOffsetsResponseTopicPartition {
	sp := kmsg.NewListOffsetsResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
	p, code := leaders.leaderFor(topic, rp.Partition)
	if code != 0 {
		sp.ErrorCode = code
		return sp
	}
	epoch := p.leaderEpoch()
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, epoch); code != 0 {
		sp.ErrorCode = code
		return sp
	}
	upTo := p.highWatermark()
	if follower {
		upTo = p.log.LogEndOffset()
	} else if rp.Timestamp != earliestTimestamp && !p.rep.HighWatermarkReachedEpochStart() {
		// KIP-207: a new leader's HW may still be below the old one's.
		sp.ErrorCode = kerr.OffsetNotAvailable.Code
		return sp
	}
	switch rp.Timestamp {
	case latestTimestamp:
		sp.Offset, sp.LeaderEpoch = upTo, epoch
	case earliestTimestamp:
		sp.Offset = p.log.LogStartOffset()
		sp.LeaderEpoch = p.log.EpochForOffset(sp.Offset)
	case maxTimestamp:
		// The largest timestamp below the bound, not the log's largest
		// dropped when it lies at or past the high watermark.
		off, ts, ok, err := p.log.MaxTimestampBelow(upTo)
		if err != nil {
			sp.ErrorCode = errorCode(err)
		} else if ok {
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, p.log.EpochForOffset(off)
		}
	default:
		off, ts, ok, err := p.log.OffsetForTimestamp(rp.Timestamp, upTo)
		if err != nil {
			sp.ErrorCode = errorCode(err)
		} else if ok {
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, p.log.EpochForOffset(off)
		}
	}
	return sp
}
