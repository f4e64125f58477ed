package storage

import "encoding/binary"

// recordAtOrAfterTimestamp finds, within one whole batch, the first record
// at or above minOffset (the log start: records below it are deleted) whose
// timestamp is at or after target, for ListOffsets by timestamp.
//
// Only uncompressed batches are walked record by record (a few varints each).
// For a compressed batch the broker would have to decompress to be exact; it
// answers with the batch's base offset instead, which makes a consumer start
// at most one batch early, never late. With LogAppendTime every record
// carries the batch's maxTimestamp, so no walk is needed.
func recordAtOrAfterTimestamp(batch []byte, h BatchHeader, target, minOffset int64) (offset, timestamp int64, ok bool) {
	if h.MaxTimestamp < target || h.LastOffset() < minOffset {
		return 0, 0, false
	}
	if h.LogAppendTime() || h.Compression() != 0 {
		return max(h.BaseOffset, minOffset), h.MaxTimestamp, true
	}
	found, parsed := false, false
	walkRecords(batch, h, func(offsetDelta int32, ts int64) bool {
		parsed = true
		if off := h.BaseOffset + int64(offsetDelta); ts >= target && off >= minOffset {
			offset, timestamp, found = off, ts, true
			return false
		}
		return true
	})
	if !found && !parsed { // records do not parse; fall back to the batch
		return max(h.BaseOffset, minOffset), h.MaxTimestamp, true
	}
	return offset, timestamp, found
}

// recordWithMaxTimestamp returns the offset of the record carrying the batch's
// largest timestamp (the earliest such record), for ListOffsets MAX_TIMESTAMP.
// Compressed batches answer with their last offset.
func recordWithMaxTimestamp(batch []byte, h BatchHeader) int64 {
	if h.LogAppendTime() {
		return h.BaseOffset
	}
	if h.Compression() != 0 {
		return h.LastOffset()
	}
	best, bestTS := h.LastOffset(), int64(-1<<63)
	walkRecords(batch, h, func(offsetDelta int32, ts int64) bool {
		if ts > bestTS {
			best, bestTS = h.BaseOffset+int64(offsetDelta), ts
		}
		return true
	})
	return best
}

// walkRecords calls fn with each record's offset delta and timestamp in an
// uncompressed batch until fn returns false or the records run out or do not
// parse. It reads only the fields it needs and skips the rest by length.
func walkRecords(batch []byte, h BatchHeader, fn func(offsetDelta int32, ts int64) bool) {
	b := batch[BatchHeaderSize:]
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := binary.Varint(b)
		if n <= 0 || length < 0 || int64(len(b)-n) < length {
			return
		}
		rec := b[n : n+int(length)]
		b = b[n+int(length):]
		if len(rec) < 1 {
			return
		}
		rec = rec[1:] // record attributes, unused
		tsDelta, n := binary.Varint(rec)
		if n <= 0 {
			return
		}
		offsetDelta, n2 := binary.Varint(rec[n:])
		if n2 <= 0 {
			return
		}
		if !fn(int32(offsetDelta), h.BaseTimestamp+tsDelta) {
			return
		}
	}
}
