package broker

import (
	"context"
	"fmt"

	"github.com/barge-broker/barge/netproto"
	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce v3-11: RecordBatch v2 only (v3 is the first with it); v12 changes
// transaction semantics (KIP-890) and v13 names topics by id.
func init() { register(kmsg.Produce, 3, 11, handleProduce) }

// handleProduce appends each partition's batches to its log as they came,
// unopened. It runs on the connection's read goroutine, so the appends of
// one connection happen in request order, which idempotent producers with
// several requests in flight rely on. With one replica per partition the
// high watermark moves with the append, so acks=1 and acks=all are both
// answered at once; acks=0 gets no response at all.
func handleProduce(b *Broker, ctx context.Context, req *netproto.Request, respond func(netproto.Response)) {
	r := req.Body.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	acks := r.Acks
	if acks != 0 && acks != 1 && acks != -1 {
		resp.Topics = produceErrorAll(r, kerr.InvalidRequiredAcks.Code)
		respond(netproto.Response{Msg: resp})
		return
	}
	if r.TransactionID != nil {
		// Transactions are not served: no coordinator APIs are advertised,
		// so only a misbehaving client gets here.
		resp.Topics = produceErrorAll(r, kerr.TransactionalIDAuthorizationFailed.Code)
		respond(netproto.Response{Msg: resp})
		return
	}
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := b.produceOne(rt.Topic, rp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// The appends are done and the response holds no bytes of the request:
	// its frame can serve the next produce on this broker.
	req.Recycle()
	if acks == 0 {
		respond(netproto.Response{None: true})
		return
	}
	respond(netproto.Response{Msg: resp})
}

func (b *Broker) produceOne(topic string, rp kmsg.ProduceRequestTopicPartition) kmsg.ProduceResponseTopicPartition {
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
	p, code := b.leaderFor(topic, rp.Partition)
	switch {
	case code != 0:
		sp.ErrorCode = code
		return sp
	case isInternalTopic(topic):
		sp.ErrorCode = kerr.InvalidTopicException.Code
		sp.ErrorMessage = errorMessage(errInternalTopic(topic))
		return sp
	case len(rp.Records) == 0:
		sp.ErrorCode = kerr.InvalidRecord.Code
		msg := "produce request without a record batch"
		sp.ErrorMessage = &msg
		return sp
	case p.compacted.Load():
		if refused := refuseKeyless(&sp, topic, rp); refused {
			return sp
		}
	}
	res, err := p.log.Append(rp.Records, p.leaderEpoch.Load())
	b.metrics.produced(topic, len(rp.Records), err)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		sp.ErrorMessage = errorMessage(err)
		if sp.ErrorCode == kerr.UnknownServerError.Code || sp.ErrorCode == kerr.KafkaStorageError.Code {
			b.logger.Error("append failed", "topic", topic, "partition", rp.Partition, "err", err)
		}
		return sp
	}
	if !res.Duplicate {
		p.appended()
	}
	sp.BaseOffset = res.FirstOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return sp
}

// refuseKeyless fills sp with Kafka's answer to records without a key on a
// compacted topic: INVALID_RECORD with one record error per keyless record
// (KIP-467; clients older than Produce v8 see only the code), or the batch's
// own error when it does not parse. It reports whether it refused the
// partition's records.
func refuseKeyless(sp *kmsg.ProduceResponseTopicPartition, topic string, rp kmsg.ProduceRequestTopicPartition) bool {
	keyless, err := storage.FindKeylessRecords(rp.Records)
	if err != nil {
		sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
		return true
	}
	if len(keyless) == 0 {
		return false
	}
	why := fmt.Sprintf("compacted topic %s (cleanup.policy=compact) cannot accept a record without a key", topic)
	for _, k := range keyless {
		re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		re.RelativeOffset = int32(k.Record)
		re.ErrorMessage = &why
		sp.ErrorRecords = append(sp.ErrorRecords, re)
	}
	msg := fmt.Sprintf("%d of the records were refused: %s", len(keyless), why)
	sp.ErrorCode, sp.ErrorMessage = kerr.InvalidRecord.Code, &msg
	return true
}

// leaderFor returns the hosted partition this broker leads, or the code a
// client gets instead: UNKNOWN_TOPIC_OR_PARTITION when the metadata has no
// such partition, NOT_LEADER_OR_FOLLOWER when another broker leads it or it
// is not open here yet (both send the client back to Metadata).
func (b *Broker) leaderFor(topic string, partition int32) (*partition, int16) {
	p := b.replicas.get(topic, partition)
	switch {
	case p != nil && p.leader.Load():
		return p, 0
	case p == nil && !b.topicPartitionExists(topic, partition):
		return nil, kerr.UnknownTopicOrPartition.Code
	default:
		return nil, kerr.NotLeaderForPartition.Code
	}
}

// topicPartitionExists reports whether the metadata knows the partition, to
// tell UNKNOWN_TOPIC_OR_PARTITION from NOT_LEADER_OR_FOLLOWER.
func (b *Broker) topicPartitionExists(topic string, partition int32) bool {
	_, ok := b.node.Image().Partition(topic, partition)
	return ok
}

func produceErrorAll(r *kmsg.ProduceRequest, code int16) []kmsg.ProduceResponseTopic {
	var out []kmsg.ProduceResponseTopic
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}
