package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-4 for idempotent producers (v0 included: librdkafka
// enables idempotence only when the range overlaps its own from v0).
// Transactional ids are refused: Barge has no transaction coordinator.
func init() { register(kmsg.InitProducerID, 0, 4, replying(handleInitProducerID)) }

func handleInitProducerID(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	// A producer re-initialising (v3+ passes its id and epoch) simply gets a
	// fresh id: without transactions there is nothing to fence or recover.
	id, err := b.pids.allocate()
	if err != nil {
		b.logger.Error("allocating a producer id", "err", err)
		resp.ErrorCode = kerr.KafkaStorageError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}
