package group

import (
	"errors"
	"syscall"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrCorruptRecord: a record of __consumer_offsets does not decode. The
	// loader skips such records and counts them.
	ErrCorruptRecord = errors.New("group: undecodable __consumer_offsets record")
	// ErrCorruptBatch: a batch read back from __consumer_offsets fails its
	// framing or CRC; the partition cannot be loaded.
	ErrCorruptBatch = errors.New("group: corrupt __consumer_offsets batch")
	// errStopped: a load was abandoned because the partition was unloaded.
	errStopped = errors.New("group: partition unloaded")
)

// storeErrorCode chooses the Kafka error for a failed write of group
// metadata (commit=false) or of offsets (commit=true), as Kafka's
// GroupMetadataManager does: the client either looks for the coordinator
// again or is told the write was refused.
func storeErrorCode(err error, commit bool) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrClosed),
		errors.Is(err, storage.ErrLogFailed),
		errors.Is(err, syscall.ENOSPC),
		errors.Is(err, syscall.EIO):
		// The partition moved or its disk failed: look for the coordinator
		// again (Kafka: NOT_LEADER_OR_FOLLOWER and KAFKA_STORAGE_ERROR).
		return kerr.NotCoordinator.Code
	case errors.Is(err, storage.ErrBatchTooLarge):
		if commit {
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	}
	return kerr.UnknownServerError.Code
}
