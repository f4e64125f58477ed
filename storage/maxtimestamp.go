package storage

import (
	"errors"
	"fmt"
	"io"
)

// OffsetOfMaxTimestamp answers ListOffsets MAX_TIMESTAMP over the whole log:
// MaxTimestampBelow(log end offset).
func (l *Log) OffsetOfMaxTimestamp() (offset, timestamp int64, ok bool, err error) {
	return l.MaxTimestampBelow(l.leo.Load())
}

// MaxTimestampBelow answers ListOffsets MAX_TIMESTAMP (KIP-734): among the
// records at or above the log start and strictly below upTo (the high
// watermark, for consumers), the largest timestamp and the offset of the
// earliest record carrying it. ok is false when no record in that range has
// a timestamp.
//
// It takes no lock, so appends go on meanwhile; it answers for the log as
// it was when it started. Most segments answer from their in-memory maximum;
// only a segment cut by the range (the one holding upTo, or the log start)
// is walked, and with the time index only from its last offset-index entry
// below upTo, unless the log start lies inside it. Records of a compressed
// CreateTime batch that straddles an end of the range cannot be told apart
// without decompressing; such a batch is left out rather than reported with
// an offset that does not carry its timestamp.
func (l *Log) MaxTimestampBelow(upTo int64) (offset, timestamp int64, ok bool, err error) {
	leo := l.leo.Load()
	logStart := l.logStartOffset.Load()
	segs := *l.segments.Load()
	hi := min(upTo, leo)
	best := maxTimestampAnswer{timestamp: -1}
	for i, s := range segs {
		lo, shi := max(logStart, s.baseOffset), min(hi, nextSegmentBase(segs, i, leo))
		// Strictly greater: on a tie the earlier segment's record wins, as
		// in Kafka (the first record with the largest timestamp).
		if lo >= shi || s.maxTimestamp.Load() <= best.timestamp {
			continue
		}
		if !s.file.acquire() {
			continue // removed since the list was loaded: below the log start now
		}
		a, err := s.maxTimestampIn(lo, shi)
		s.file.release()
		if err != nil {
			return 0, 0, false, fmt.Errorf("storage: max timestamp below %d in %s: %w", upTo, s.logPath(), err)
		}
		if a.timestamp > best.timestamp {
			best = a
		}
	}
	if best.timestamp < 0 {
		return 0, 0, false, nil
	}
	return best.offset, best.timestamp, true, nil
}

type maxTimestampAnswer struct{ offset, timestamp int64 }

// maxTimestampIn finds the largest timestamp of the records of s in
// [lo, hi), where lo is at or above the segment's base and hi at or below its
// end, and the earliest record carrying it.
func (s *segment) maxTimestampIn(lo, hi int64) (maxTimestampAnswer, error) {
	size := s.size.Load()
	best := maxTimestampAnswer{timestamp: -1}
	// Fast path: the batch the segment names as holding its maximum lies
	// wholly inside the range. The two fields are written without a lock
	// between them, so the batch's own header decides.
	if mb := s.offsetOfMaxTimestamp.Load(); mb >= lo && mb < hi {
		segMax := s.maxTimestamp.Load()
		batch, h, err := s.batchStartingAt(mb, size)
		if err != nil {
			return best, err
		}
		if h.LastOffset() < hi && h.MaxTimestamp >= segMax {
			return maxTimestampAnswer{offset: recordWithMaxTimestamp(batch, h), timestamp: h.MaxTimestamp}, nil
		}
	}

	// Walk from the last offset-index entry whose batch ends below hi: the
	// one before the last entry below hi (an entry's batch ends where the
	// next entry's begins). Every batch before the walk is covered by the
	// time index: its entries are running maxima recorded at the offset-index
	// entries, each naming a real batch, so the last entry naming a batch
	// before the walk's first either holds the largest timestamp there or
	// is beaten by the walk's first batch, which lies wholly in the range.
	// That holds only when no record before the walk is deleted, so with the
	// log start inside the segment the walk starts at lo instead.
	from := int64(0)
	var prefix timeEntry
	havePrefix := false
	if lo == s.baseOffset {
		if last, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) < hi }); ok {
			if e, ok := s.index.floor(func(e offsetEntry) bool { return e.relOffset < last.relOffset }); ok {
				from = int64(e.position)
				prefix, havePrefix = s.timeIndex.floor(func(t timeEntry) bool { return t.relOffset < e.relOffset })
			}
		}
	} else if e, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) <= lo }); ok {
		from = int64(e.position)
	}
	if havePrefix {
		pb, h, err := s.batchStartingAt(s.baseOffset+int64(prefix.relOffset), size)
		if err != nil {
			return best, err
		}
		best = maxTimestampAnswer{offset: recordWithMaxTimestamp(pb, h), timestamp: h.MaxTimestamp}
	}
	sc := newScanner(s.file.File, from, size, nil)
	for {
		_, batch, h, err := sc.nextBatch()
		if errors.Is(err, io.EOF) || (err == nil && h.BaseOffset >= hi) {
			break
		}
		if err != nil {
			return best, err
		}
		if h.LastOffset() < lo || h.MaxTimestamp <= best.timestamp {
			continue
		}
		if off, ts, ok := maxRecordIn(batch, h, lo, hi); ok && ts > best.timestamp {
			best = maxTimestampAnswer{offset: off, timestamp: ts}
		}
	}
	return best, nil
}

// batchStartingAt reads the whole batch of s whose base offset is
// baseOffset, found through the offset index.
func (s *segment) batchStartingAt(baseOffset, size int64) ([]byte, BatchHeader, error) {
	pos := int64(0)
	if e, ok := s.index.floor(func(e offsetEntry) bool { return s.baseOffset+int64(e.relOffset) <= baseOffset }); ok {
		pos = int64(e.position)
	}
	sc := newScanner(s.file.File, pos, size, nil)
	for {
		_, batch, h, err := sc.nextBatch()
		if err != nil {
			return nil, h, fmt.Errorf("find batch %d: %w", baseOffset, err)
		}
		if h.BaseOffset == baseOffset {
			return batch, h, nil
		}
		if h.BaseOffset > baseOffset {
			return nil, h, fmt.Errorf("%w: no batch starts at offset %d", ErrCorruptBatch, baseOffset)
		}
	}
}

// maxRecordIn returns the largest timestamp among the batch's records in
// [lo, hi) and the earliest record carrying it.
func maxRecordIn(batch []byte, h BatchHeader, lo, hi int64) (offset, timestamp int64, ok bool) {
	if h.BaseOffset >= lo && h.LastOffset() < hi {
		return recordWithMaxTimestamp(batch, h), h.MaxTimestamp, h.MaxTimestamp >= 0
	}
	if h.LogAppendTime() {
		return max(h.BaseOffset, lo), h.MaxTimestamp, h.MaxTimestamp >= 0
	}
	if h.Compression() != 0 {
		return 0, 0, false // see MaxTimestampBelow
	}
	timestamp = -1
	walkRecords(batch, h, func(offsetDelta int32, ts int64) bool {
		if off := h.BaseOffset + int64(offsetDelta); off >= lo && off < hi && ts > timestamp {
			offset, timestamp = off, ts
		}
		return true
	})
	return offset, timestamp, timestamp >= 0
}
