package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Layout of a Kafka RecordBatch v2 header (magic 2). Every field the broker
// reads or stamps lives in the first 61 bytes; the records after it are never
// decoded on the append path.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// BatchHeaderSize is the size of a RecordBatch v2 header, records excluded.
	BatchHeaderSize = 61
	// batchLogOverhead is what batchLength does not count: baseOffset and
	// batchLength themselves.
	batchLogOverhead = 12
	// batchPrefixSize is how much of a header a log scan needs to walk from
	// batch to batch: up to and including lastOffsetDelta.
	batchPrefixSize = offBaseTimestamp

	attrCompressionMask = 0x07
	attrTimestampType   = 0x08 // 1 = LogAppendTime
	attrTransactional   = 0x10
	attrControl         = 0x20
	maxCompressionCodec = 4 // zstd
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded header of one RecordBatch v2. Internal readers
// (the group coordinator, dump tools) use it with ReadBatches.
type BatchHeader struct {
	BaseOffset      int64
	Length          int32 // whole batch in bytes, including baseOffset and batchLength
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch.
func (h BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int { return int(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps were set by the broker.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrTimestampType != 0 }

// Transactional reports the transactional attribute bit.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports the control-batch attribute bit.
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

func (h BatchHeader) producerBatch() producerBatch {
	return producerBatch{
		producerID:      h.ProducerID,
		producerEpoch:   h.ProducerEpoch,
		baseSequence:    h.BaseSequence,
		lastOffsetDelta: h.LastOffsetDelta,
		baseOffset:      h.BaseOffset,
		maxTimestamp:    h.MaxTimestamp,
	}
}

// ParseBatchHeader decodes the header at the start of b. It checks framing
// only (enough bytes for the header, a sane batchLength, magic 2); it does not
// check the CRC or that the whole batch is present.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < batchLogOverhead+5 {
		return h, fmt.Errorf("%w: %d bytes, too short for a batch header", ErrCorruptBatch, len(b))
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	batchLength := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	h.LeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	if h.Magic == 0 || h.Magic == 1 {
		return h, fmt.Errorf("%w: magic %d (legacy message set)", ErrUnsupportedMagic, h.Magic)
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: unknown magic %d", ErrCorruptBatch, h.Magic)
	}
	if batchLength < BatchHeaderSize-batchLogOverhead {
		return h, fmt.Errorf("%w: batchLength %d below the v2 header size", ErrCorruptBatch, batchLength)
	}
	if batchLength > math.MaxInt32-batchLogOverhead {
		// The whole length would overflow int32 (found by fuzzing: it
		// turned into a negative slice bound).
		return h, fmt.Errorf("%w: batchLength %d too large", ErrCorruptBatch, batchLength)
	}
	h.Length = batchLength + batchLogOverhead
	if len(b) < BatchHeaderSize {
		return h, fmt.Errorf("%w: %d bytes, too short for a batch header", ErrCorruptBatch, len(b))
	}
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	return h, nil
}

// parseBatchPrefix reads just the fields a log walk needs (baseOffset, length,
// epoch, magic, lastOffsetDelta) from the first batchPrefixSize bytes.
func parseBatchPrefix(b []byte) (baseOffset int64, length int32, lastOffsetDelta int32, err error) {
	if len(b) < batchPrefixSize {
		return 0, 0, 0, fmt.Errorf("%w: short batch prefix", ErrCorruptBatch)
	}
	batchLength := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if b[offMagic] != 2 || batchLength < BatchHeaderSize-batchLogOverhead || batchLength > math.MaxInt32-batchLogOverhead {
		return 0, 0, 0, fmt.Errorf("%w: bad framing (magic %d, batchLength %d)", ErrCorruptBatch, int8(b[offMagic]), batchLength)
	}
	lastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	if lastOffsetDelta < 0 {
		return 0, 0, 0, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorruptBatch, lastOffsetDelta)
	}
	return int64(binary.BigEndian.Uint64(b[offBaseOffset:])), batchLength + batchLogOverhead, lastOffsetDelta, nil
}

// batchCRC computes the CRC-32C a batch should carry: attributes to the end.
func batchCRC(batch []byte) uint32 { return crc32.Checksum(batch[offAttributes:], castagnoli) }

// SealBatch fills in the two header fields an encoder such as kmsg leaves
// to the writer of one whole batch b: batchLength, and the CRC-32C from the
// attributes on. Writers inside the broker (the group coordinator) use it.
func SealBatch(b []byte) {
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLogOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], batchCRC(b))
}

// CRCValid reports whether one whole batch's CRC-32C matches its header.
func CRCValid(batch []byte, h BatchHeader) bool { return batchCRC(batch) == h.CRC }

// validateBatch checks one complete batch (exactly h.Length bytes): the CRC,
// that the record count agrees with lastOffsetDelta, and a known codec.
// Size limits are the caller's: producers and followers differ.
func validateBatch(batch []byte, h BatchHeader) error {
	if got := batchCRC(batch); got != h.CRC {
		return fmt.Errorf("%w: crc 0x%08x, computed 0x%08x", ErrCorruptBatch, h.CRC, got)
	}
	if h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1 {
		return fmt.Errorf("%w: %d records but lastOffsetDelta %d", ErrInvalidRecord, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Compression() > maxCompressionCodec {
		return fmt.Errorf("%w: unknown compression codec %d", ErrCorruptBatch, h.Compression())
	}
	return nil
}

// ValidateBatches walks buf, which must be a whole number of RecordBatch v2
// batches, and checks each one's framing, CRC and record count, and its size
// against maxBatchBytes (≤0: no limit). It returns the headers, or a
// *BatchError naming the first bad batch. It reads buf and never modifies it.
func ValidateBatches(buf []byte, maxBatchBytes int) ([]BatchHeader, error) {
	var headers []BatchHeader
	for pos, i := 0, 0; pos < len(buf); i++ {
		h, err := ParseBatchHeader(buf[pos:])
		if err != nil {
			return nil, &BatchError{Index: i, Offset: pos, Err: err}
		}
		if int(h.Length) > len(buf)-pos {
			return nil, &BatchError{Index: i, Offset: pos, Err: fmt.Errorf("%w: batch of %d bytes but only %d given", ErrCorruptBatch, h.Length, len(buf)-pos)}
		}
		if maxBatchBytes > 0 && int(h.Length) > maxBatchBytes {
			return nil, &BatchError{Index: i, Offset: pos, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrBatchTooLarge, h.Length, maxBatchBytes)}
		}
		if err := validateBatch(buf[pos:pos+int(h.Length)], h); err != nil {
			return nil, &BatchError{Index: i, Offset: pos, Err: err}
		}
		headers = append(headers, h)
		pos += int(h.Length)
	}
	if len(headers) == 0 {
		return nil, &BatchError{Err: fmt.Errorf("%w: no record batch", ErrCorruptBatch)}
	}
	return headers, nil
}

// stampBatch rewrites the fields the leader owns, in place: baseOffset and
// partitionLeaderEpoch lie before the CRC-covered range, so the CRC holds.
func stampBatch(batch []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(leaderEpoch))
}

// stampLogAppendTime sets the timestamp-type bit and maxTimestamp to the
// broker's clock (as Kafka does; baseTimestamp stays) and recomputes the CRC,
// which covers both.
func stampLogAppendTime(batch []byte, nowMs int64) {
	attrs := binary.BigEndian.Uint16(batch[offAttributes:])
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs|attrTimestampType)
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint32(batch[offCRC:], batchCRC(batch))
}
