package broker

import (
	"context"
	"errors"
	"syscall"

	"github.com/barge-broker/barge/cluster"
	"github.com/barge-broker/barge/replication"
	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode is the one place where errors from storage and cluster become
// Kafka error codes for clients.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, storage.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, storage.ErrUnsupportedMagic):
		return kerr.UnsupportedVersion.Code // legacy message sets (magic 0 and 1) are not served
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, storage.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, storage.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, replication.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, replication.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, storage.ErrClosed):
		// The partition moved or was deleted under the request.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, storage.ErrLogFailed), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EIO):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	if code := cluster.ErrorCode(err); code != -1 {
		return code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the text some responses carry beside the code, or nil.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
