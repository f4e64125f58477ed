package storage

import (
	"errors"
	"fmt"
	"io"
)

// errIndexMismatch: index files that parse but do not describe their
// segment. It never leaves the package: the caller rebuilds the indexes.
var errIndexMismatch = errors.New("storage: index does not match its segment")

// checkIndexes cross-checks indexes just read from their files against the
// segment's bytes before a reopen trusts them. It reads a few batch headers
// near the tail and at the time index's last entry, never the records, so a
// clean open stays cheap. The checks follow from how appends build the
// indexes (indexBatchLocked, persistIndexes):
//
//   - The walk from the last offset-index entry (or position 0) lands on
//     batch boundaries, starts at the entry's offset, and ends exactly at
//     size with the batch holding nextOffset-1.
//   - At most indexInterval bytes lie between the last entry and the final
//     batch: an append adds an entry once more than that has passed. A longer
//     gap means entries are missing; an .index file that a crash left empty
//     is the usual case, and it would make every fetch scan from position 0.
//   - A segment holding timestamps has a time index whose last entry names a
//     batch carrying exactly that timestamp, and no later batch exceeds it. An
//     empty or stale .timeindex would hide the segment's newest timestamp and
//     stop time retention.
//
// A changed index.interval.bytes can fail the second check once; the rebuild
// that follows costs a scan of the segment, which "rebuild when in doubt"
// accepts.
func (s *segment) checkIndexes(idx []offsetEntry, tidx []timeEntry, size, nextOffset int64, indexInterval int) error {
	if size == 0 {
		if len(idx) > 0 || len(tidx) > 0 {
			return fmt.Errorf("%w: entries for an empty segment", errIndexMismatch)
		}
		return nil
	}
	from, fromOffset := int64(0), s.baseOffset
	if len(idx) > 0 {
		last := idx[len(idx)-1]
		from, fromOffset = int64(last.position), s.baseOffset+int64(last.relOffset)
	}
	sc := newScanner(s.file.File, from, size, make([]byte, prefixScanBuffer))
	finalPos, finalNext := int64(-1), int64(-1)
	for first := true; ; first = false {
		p, base, _, delta, err := sc.nextPrefix()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: walk from position %d: %v", errIndexMismatch, from, err)
		}
		if first && base != fromOffset {
			return fmt.Errorf("%w: entry at position %d names offset %d, the batch there has %d", errIndexMismatch, from, fromOffset, base)
		}
		finalPos, finalNext = p, base+int64(delta)+1
	}
	if finalNext != nextOffset {
		return fmt.Errorf("%w: batches end before offset %d, the segment ends before %d", errIndexMismatch, finalNext, nextOffset)
	}
	if finalPos-from > int64(indexInterval) {
		return fmt.Errorf("%w: %d bytes without an entry before the final batch, interval %d", errIndexMismatch, finalPos-from, indexInterval)
	}
	final, err := s.headerAt(finalPos)
	if err != nil {
		return err
	}
	if len(tidx) == 0 {
		if final.MaxTimestamp >= 0 {
			return fmt.Errorf("%w: no time entry, the final batch has timestamp %d", errIndexMismatch, final.MaxTimestamp)
		}
		return nil
	}
	lastTime := tidx[len(tidx)-1]
	if final.MaxTimestamp > lastTime.timestamp {
		return fmt.Errorf("%w: final batch has timestamp %d, the time index ends at %d", errIndexMismatch, final.MaxTimestamp, lastTime.timestamp)
	}
	h, err := s.headerOfBatchAt(idx, s.baseOffset+int64(lastTime.relOffset), size)
	if err != nil {
		return err
	}
	if h.MaxTimestamp != lastTime.timestamp {
		return fmt.Errorf("%w: time entry %d at offset %d, the batch there has %d", errIndexMismatch, lastTime.timestamp, h.BaseOffset, h.MaxTimestamp)
	}
	return nil
}

// headerAt reads and parses the batch header at position pos.
func (s *segment) headerAt(pos int64) (BatchHeader, error) {
	var buf [BatchHeaderSize]byte
	if _, err := s.file.ReadAt(buf[:], pos); err != nil {
		return BatchHeader{}, fmt.Errorf("%w: read batch header at %d: %v", errIndexMismatch, pos, err)
	}
	h, err := ParseBatchHeader(buf[:])
	if err != nil {
		return BatchHeader{}, fmt.Errorf("%w: batch header at %d: %v", errIndexMismatch, pos, err)
	}
	return h, nil
}

// headerOfBatchAt finds, through the offset index entries idx, the batch
// whose base offset is baseOffset and returns its header.
func (s *segment) headerOfBatchAt(idx []offsetEntry, baseOffset, size int64) (BatchHeader, error) {
	pos := int64(0)
	for _, e := range idx {
		if s.baseOffset+int64(e.relOffset) > baseOffset {
			break
		}
		pos = int64(e.position)
	}
	sc := newScanner(s.file.File, pos, size, make([]byte, prefixScanBuffer))
	for {
		p, base, _, _, err := sc.nextPrefix()
		if err != nil {
			return BatchHeader{}, fmt.Errorf("%w: no batch at offset %d: %v", errIndexMismatch, baseOffset, err)
		}
		if base == baseOffset {
			return s.headerAt(p)
		}
		if base > baseOffset {
			return BatchHeader{}, fmt.Errorf("%w: no batch starts at offset %d", errIndexMismatch, baseOffset)
		}
	}
}
