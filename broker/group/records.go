package group

import (
	"encoding/binary"
	"fmt"

	"github.com/barge-broker/barge/storage"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Records in __consumer_offsets use Kafka's own key and value schemas
// (kmsg's OffsetCommitKey/Value and GroupMetadataKey/Value), so Kafka tools
// that read the topic understand them. The key starts with an int16 version
// that says what the record is; a record without a value (a tombstone)
// deletes its key.
const (
	offsetCommitKeyVersion  = 1 // versions 0 and 1 are offset commits
	groupMetadataKeyVersion = 2

	// offsetCommitValueVersion carries the leader epoch (Kafka 2.1+);
	// offsetCommitValueExpireVersion carries an explicit expire timestamp,
	// for OffsetCommit v2-v4 requests that set a retention time, as Kafka
	// writes them.
	offsetCommitValueVersion       = 3
	offsetCommitValueExpireVersion = 1
	// groupMetadataValueVersion is the one with static members (KIP-345).
	groupMetadataValueVersion = 3
)

// record is one key and value of __consumer_offsets; a nil value is a
// tombstone.
type record struct {
	key, value []byte
}

// recordOverhead approximates a record's framing inside a batch, for the
// live-bytes estimate that drives compaction.
const recordOverhead = 12

func (r record) size() int64 { return int64(len(r.key) + len(r.value) + recordOverhead) }

// offsetKey names a committed offset within a group.
type offsetKey struct {
	topic     string
	partition int32
}

// offsetCommit is a committed offset as stored.
type offsetCommit struct {
	offset          int64
	leaderEpoch     int32
	metadata        string
	commitTimestamp int64 // ms
	expireTimestamp int64 // ms; -1 when the broker's retention applies
}

func offsetCommitKeyBytes(group string, k offsetKey) []byte {
	key := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: group, Topic: k.topic, Partition: k.partition}
	return key.AppendTo(make([]byte, 0, 10+len(group)+len(k.topic)))
}

func offsetCommitRecord(group string, k offsetKey, c offsetCommit) record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	if c.expireTimestamp >= 0 {
		v.Version = offsetCommitValueExpireVersion
		v.ExpireTimestamp = c.expireTimestamp
	}
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = c.offset, c.leaderEpoch, c.metadata, c.commitTimestamp
	return record{key: offsetCommitKeyBytes(group, k), value: v.AppendTo(make([]byte, 0, 32+len(c.metadata)))}
}

func offsetTombstone(group string, k offsetKey) record {
	return record{key: offsetCommitKeyBytes(group, k)}
}

func groupMetadataKeyBytes(group string) []byte {
	key := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: group}
	return key.AppendTo(nil)
}

func groupMetadataRecord(group string, v *kmsg.GroupMetadataValue) record {
	return record{key: groupMetadataKeyBytes(group), value: v.AppendTo(nil)}
}

func groupTombstone(group string) record { return record{key: groupMetadataKeyBytes(group)} }

// appendBatches encodes recs as uncompressed RecordBatch v2 batches of at
// most maxBytes each (a record larger than that gets a batch of its own),
// timestamped nowMs, without a producer id. The log stamps base offsets
// and the leader epoch on append; those fields lie outside the CRC.
func appendBatches(dst []byte, recs []record, nowMs int64, maxBytes int) []byte {
	var body, scratch []byte
	first := 0
	flush := func(end int) {
		if end == first {
			return
		}
		rb := kmsg.RecordBatch{
			PartitionLeaderEpoch: -1,
			Magic:                2,
			LastOffsetDelta:      int32(end - first - 1),
			FirstTimestamp:       nowMs,
			MaxTimestamp:         nowMs,
			ProducerID:           -1,
			ProducerEpoch:        -1,
			FirstSequence:        -1,
			NumRecords:           int32(end - first),
			Records:              body,
		}
		start := len(dst)
		dst = rb.AppendTo(dst)
		storage.SealBatch(dst[start:])
		body, first = body[:0], end
	}
	for i, r := range recs {
		if len(body) > 0 && len(body)+len(r.key)+len(r.value)+recordOverhead > maxBytes {
			flush(i)
		}
		rec := kmsg.Record{OffsetDelta: int32(i - first), Key: r.key, Value: r.value}
		scratch = rec.AppendTo(scratch[:0])
		rec.Length = int32(len(scratch) - 1) // the zero length took one byte
		body = rec.AppendTo(body)
	}
	flush(len(recs))
	return dst
}

// walkBatches calls fn for every record at or above logStart in buf, which
// holds whole batches as the log returns them, and returns the offset after
// the last batch. Control, transactional and compressed batches are not the
// coordinator's (Barge writes none) and are skipped, counted in skipped. A
// batch that does not frame or fails its CRC is ErrCorruptBatch.
func walkBatches(buf []byte, logStart int64, fn func(offset int64, key, value []byte)) (next int64, skipped int, err error) {
	if len(buf) == 0 {
		return 0, 0, nil
	}
	// Framing and CRC by the log's own rules, then records by kmsg.
	headers, err := storage.ValidateBatches(buf, 0)
	if err != nil {
		return next, skipped, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	for _, h := range headers {
		batch := buf[:h.Length]
		buf = buf[h.Length:]
		next = h.NextOffset()
		if h.Compression() != 0 || h.Transactional() || h.Control() {
			skipped++
			continue
		}
		recs := batch[storage.BatchHeaderSize:]
		for i := int32(0); i < h.RecordCount; i++ {
			l, n := kbin.Varint(recs)
			if n <= 0 || l < 0 || n+int(l) > len(recs) { // n < 0: a varint overflow (found by fuzzing)
				return next, skipped, fmt.Errorf("%w: record %d of batch at offset %d", ErrCorruptBatch, i, h.BaseOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				return next, skipped, fmt.Errorf("%w: record %d of batch at offset %d: %v", ErrCorruptBatch, i, h.BaseOffset, err)
			}
			recs = recs[n+int(l):]
			if off := h.BaseOffset + int64(r.OffsetDelta); off >= logStart {
				fn(off, r.Key, r.Value)
			}
		}
	}
	return next, skipped, nil
}

// recordKind says what a __consumer_offsets key holds.
type recordKind int8

const (
	kindOther  recordKind = iota // a schema the classic coordinator does not use (KIP-848, transactions)
	kindOffset                   // an OffsetCommitKey
	kindGroup                    // a GroupMetadataKey
)

// decodedKey is a parsed __consumer_offsets key.
type decodedKey struct {
	kind   recordKind
	group  string
	offset offsetKey
}

func decodeKey(key []byte) (decodedKey, error) { return decodeKeyFrom(key, false) }

// decodeKeyAliasing is decodeKey without copies: the strings alias key,
// which must outlive them (the loader interns what it keeps).
func decodeKeyAliasing(key []byte) (decodedKey, error) { return decodeKeyFrom(key, true) }

func decodeKeyFrom(key []byte, alias bool) (decodedKey, error) {
	if len(key) < 2 {
		return decodedKey{}, fmt.Errorf("%w: key of %d bytes", ErrCorruptRecord, len(key))
	}
	read := func(m interface {
		ReadFrom([]byte) error
		UnsafeReadFrom([]byte) error
	}) error {
		if alias {
			return m.UnsafeReadFrom(key)
		}
		return m.ReadFrom(key)
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := read(&k); err != nil {
			return decodedKey{}, fmt.Errorf("%w: offset commit key: %v", ErrCorruptRecord, err)
		}
		return decodedKey{kind: kindOffset, group: k.Group, offset: offsetKey{k.Topic, k.Partition}}, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := read(&k); err != nil {
			return decodedKey{}, fmt.Errorf("%w: group metadata key: %v", ErrCorruptRecord, err)
		}
		return decodedKey{kind: kindGroup, group: k.Group}, nil
	}
	return decodedKey{kind: kindOther}, nil
}

// decodeOffsetCommit decodes an offset commit value; its metadata string
// aliases value (the loader copies the rare non-empty ones).
func decodeOffsetCommit(value []byte) (offsetCommit, error) {
	var v kmsg.OffsetCommitValue
	if err := v.UnsafeReadFrom(value); err != nil {
		return offsetCommit{}, fmt.Errorf("%w: offset commit value: %v", ErrCorruptRecord, err)
	}
	c := offsetCommit{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp, expireTimestamp: -1}
	if v.Version >= 3 {
		c.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		c.expireTimestamp = v.ExpireTimestamp
	}
	return c, nil
}

func decodeGroupMetadata(value []byte) (*kmsg.GroupMetadataValue, error) {
	v := new(kmsg.GroupMetadataValue)
	if err := v.ReadFrom(value); err != nil {
		return nil, fmt.Errorf("%w: group metadata value: %v", ErrCorruptRecord, err)
	}
	return v, nil
}
