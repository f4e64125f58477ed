package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. The protocol layer maps each to one Kafka error code in a
// single place (see the comment on each); storage itself knows no codes.
var (
	// ErrCorruptBatch: framing or CRC-32C does not hold (CORRUPT_MESSAGE, 2).
	ErrCorruptBatch = errors.New("storage: corrupt record batch")
	// ErrInvalidRecord: well-framed but semantically wrong, e.g. a record
	// count that disagrees with lastOffsetDelta (INVALID_RECORD, 87).
	ErrInvalidRecord = errors.New("storage: invalid record batch")
	// ErrBatchTooLarge: a batch above max.message.bytes (MESSAGE_TOO_LARGE, 10).
	ErrBatchTooLarge = errors.New("storage: record batch larger than max.message.bytes")
	// ErrUnsupportedMagic: magic 0 or 1 message sets (UNSUPPORTED_VERSION, 35).
	ErrUnsupportedMagic = errors.New("storage: unsupported record batch magic")
	// ErrOffsetOutOfRange: a read below the log start or above the log end
	// (OFFSET_OUT_OF_RANGE, 1).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrOutOfOrderSequence: an idempotent batch whose sequence leaves a gap
	// (OUT_OF_ORDER_SEQUENCE_NUMBER, 45).
	ErrOutOfOrderSequence = errors.New("storage: out of order sequence number")
	// ErrInvalidProducerEpoch: an idempotent batch from a fenced (older) or
	// skipped-ahead producer epoch (INVALID_PRODUCER_EPOCH, 47).
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")
	// ErrNonMonotonicOffset: a follower append whose offsets do not continue
	// the log (a replication bug or divergence the caller must truncate away).
	ErrNonMonotonicOffset = errors.New("storage: batch offsets do not follow the log end")
	// ErrEpochBackwards: a follower append of a batch whose leader epoch is
	// older than the log's latest (the follower must truncate first).
	ErrEpochBackwards = errors.New("storage: batch leader epoch is older than the log's latest")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("storage: log closed")
	// ErrLogFailed: an earlier write failed in a way that left the log's
	// files in an unknown state; the log refuses writes until reopened
	// (KAFKA_STORAGE_ERROR, 56).
	ErrLogFailed = errors.New("storage: log is offline after an I/O error")
)

// BatchError says which batch of an append was refused and why. Its Unwrap
// gives one of the sentinels above, so callers test it with errors.Is.
type BatchError struct {
	Index  int   // position of the batch within the append, from 0
	Offset int   // byte position of the batch within the append's buffer
	Err    error // a sentinel, possibly wrapped with detail
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("batch %d at byte %d: %v", e.Index, e.Offset, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }
